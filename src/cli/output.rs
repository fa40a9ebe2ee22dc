//! Output shapes: Docker-style aligned tables and JSON.
//!
//! Tables are padded columns separated by three spaces with an upper-case
//! header, as `docker ps` and `docker images` print them. With `--json` (or
//! `--format json`) the same rows are printed as JSON, one document.

use std::io::Write;

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Json,
}

impl OutputFormat {
    /// Interprets a `--format` value; anything but `json` means a table.
    pub fn parse(format: Option<&str>) -> Self {
        match format {
            Some(f) if f.eq_ignore_ascii_case("json") => Self::Json,
            _ => Self::Table,
        }
    }
}

/// A table of strings printed with aligned columns.
#[derive(Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Self {
        Self {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row<S: Into<String>>(&mut self, row: impl IntoIterator<Item = S>) {
        self.rows.push(row.into_iter().map(Into::into).collect());
    }

    /// Renders the table, header first, as text with aligned columns.
    pub fn render(&self) -> String {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(self.rows.iter()) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate().take(columns) {
                if i + 1 == columns {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<w$}   ", w = widths[i]));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// Prints the table to stdout.
    pub fn print(&self) {
        let _ = std::io::stdout().write_all(self.render().as_bytes());
    }
}

/// Prints a serialisable value as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Human-readable size as Docker prints it (`4.26MB`, decimal units).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{:.3}", value)
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
            + UNITS[unit]
    }
}

/// "2 minutes ago" style age of a timestamp, as Docker prints CREATED.
pub fn human_age(when: chrono::DateTime<chrono::Utc>) -> String {
    let secs = (chrono::Utc::now() - when).num_seconds().max(0);
    let (n, unit) = match secs {
        0..=1 => return "Less than a second ago".to_string(),
        2..=59 => (secs, "second"),
        60..=3599 => (secs / 60, "minute"),
        3600..=86_399 => (secs / 3600, "hour"),
        86_400..=1_209_599 => (secs / 86_400, "day"),
        1_209_600..=5_183_999 => (secs / 604_800, "week"),
        5_184_000..=31_535_999 => (secs / 2_592_000, "month"),
        _ => (secs / 31_536_000, "year"),
    };
    if n == 1 {
        let article = if unit == "hour" { "An" } else { "A" };
        format!("{article} {unit} ago")
    } else {
        format!("{n} {unit}s ago")
    }
}

/// How a listing prints as JSON: one object a line (`ps`, as Docker's
/// `--format json`) or one array (berth's `--json` for the others).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonShape {
    Lines,
    Document,
}

/// Prints a listing's objects as `--format` asks: the default table
/// (`default_template`, Docker's own), JSON, or a user's template.
pub fn print_listing(
    ctx: &super::Context,
    format: Option<&str>,
    shape: JsonShape,
    objects: &[serde_json::Value],
    columns: &[(&str, &str)],
    default_template: &str,
) -> anyhow::Result<()> {
    use super::template::{render_rows, Format};
    let text = match Format::parse(ctx.global.json, format) {
        Format::Json if shape == JsonShape::Document => {
            return print_json(objects);
        }
        Format::Json => {
            let mut out = std::io::stdout().lock();
            for v in objects {
                writeln!(out, "{v}")?;
            }
            return Ok(());
        }
        Format::Table => render_rows(default_template, true, objects, columns)?,
        Format::Template { text, table } => render_rows(&text, table, objects, columns)?,
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let mut t = Table::new(["REPOSITORY", "TAG", "IMAGE ID"]);
        t.row(["busybox", "latest", "abc"]);
        t.row(["docker.io/library/alpine", "3", "def"]);
        assert_eq!(
            t.render(),
            "REPOSITORY                 TAG      IMAGE ID\n\
             busybox                    latest   abc\n\
             docker.io/library/alpine   3        def\n"
        );
    }

    #[test]
    fn sizes_print_like_docker() {
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4_261_000), "4.261MB");
        assert_eq!(human_size(1_500_000_000), "1.5GB");
    }
}
