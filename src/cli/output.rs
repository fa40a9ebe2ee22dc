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

pub use crate::format::table::Table;

/// Prints a serialisable value as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

pub use crate::engine::inspect::human_age;
pub use crate::format::human_size;

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
    use crate::format::template::{render_rows, Format};
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
}
