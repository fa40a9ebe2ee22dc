//! Docker's `--format` for listings and `inspect`: Go's `text/template`
//! language (through the `gtmpl` crate) over the same objects that
//! `--format json` prints, with the functions Docker's CLI adds (`json`,
//! `join`, `split`, `lower`, `upper`, `title`, `truncate`, `pad`).
//!
//! A format is one of (docs.docker.com/config/formatting/):
//! - `json`: each object as one JSON line;
//! - `table`: the command's default table;
//! - `table TEMPLATE`: a table whose columns are the template's `\t`-separated
//!   cells, with a header row made by rendering the template over each
//!   field's header name (`{{.ID}}` → `CONTAINER ID`);
//! - `TEMPLATE`: the template rendered once per object, one per line.
//!
//! A field that does not exist is an error naming it, as in Docker
//! (`can't evaluate field Foo`), not an empty string.

use std::collections::HashMap;

use gtmpl::{Context as TemplateContext, Template};
use gtmpl_value::{FuncError, Number, Value};

use super::table::Table;

/// What `--format` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// The command's default table.
    Table,
    /// One JSON object per line (`--format json`, or `--json`).
    Json,
    /// A Go template; `table` says whether it was given as `table TEMPLATE`.
    Template { text: String, table: bool },
}

impl Format {
    /// Interprets a `--format` value (`--json` wins over it).
    pub fn parse(json_flag: bool, format: Option<&str>) -> Self {
        if json_flag {
            return Self::Json;
        }
        let Some(f) = format else {
            return Self::Table;
        };
        let trimmed = f.trim();
        if trimmed.eq_ignore_ascii_case("json") {
            return Self::Json;
        }
        if trimmed == "table" || trimmed.is_empty() {
            return Self::Table;
        }
        match f.strip_prefix("table ") {
            Some(rest) => Self::Template {
                text: rest.to_string(),
                table: true,
            },
            None => Self::Template {
                text: f.to_string(),
                table: false,
            },
        }
    }
}

/// A template that cannot be parsed or run.
#[derive(Debug, thiserror::Error)]
#[error("invalid --format template {template:?}: {reason}")]
pub struct TemplateError {
    pub template: String,
    pub reason: String,
}

fn compile(text: &str) -> Result<Template, TemplateError> {
    // Docker's CLI turns the two-character sequences `\t` and `\n` typed on
    // a command line into a tab and a newline before parsing.
    let text = text.replace("\\t", "\t").replace("\\n", "\n");
    let mut t = Template::default();
    t.add_funcs(&[
        ("json", json as gtmpl_value::Func),
        ("join", join),
        ("split", split),
        ("lower", lower),
        ("upper", upper),
        ("title", title),
        ("truncate", truncate),
        ("pad", pad),
    ]);
    t.parse(text.as_str()).map_err(|e| TemplateError {
        template: text.clone(),
        reason: e.to_string(),
    })?;
    Ok(t)
}

fn run(t: &Template, original: &str, value: Value) -> Result<String, TemplateError> {
    t.render(&TemplateContext::from(value))
        .map_err(|e| TemplateError {
            template: original.to_string(),
            reason: without_value_dump(&e.to_string()),
        })
}

/// gtmpl's "no field X for {…the whole object…}" names the field and then
/// dumps the object; the field is what the user needs.
fn without_value_dump(reason: &str) -> String {
    match reason.find(" for {").or_else(|| reason.find(" for [")) {
        Some(i) => reason[..i].to_string(),
        None => reason.to_string(),
    }
}

/// Renders `text` over one object (`inspect --format`).
pub fn render_one(text: &str, value: &serde_json::Value) -> Result<String, TemplateError> {
    let t = compile(text)?;
    run(&t, text, to_template_value(value))
}

/// Renders a listing: `rows` are the objects `--format json` prints,
/// `headers` maps field names to the header Docker prints for them (fields
/// not listed get their name in upper case).
pub fn render_rows(
    text: &str,
    table: bool,
    rows: &[serde_json::Value],
    headers: &[(&str, &str)],
) -> Result<String, TemplateError> {
    let t = compile(text)?;
    let mut lines = Vec::with_capacity(rows.len() + 1);
    if table {
        let mut header = HashMap::new();
        let fields = rows
            .first()
            .and_then(|r| r.as_object())
            .map(|o| o.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default();
        for field in fields
            .iter()
            .map(String::as_str)
            .chain(headers.iter().map(|(f, _)| *f))
        {
            let name = headers
                .iter()
                .find(|(f, _)| *f == field)
                .map(|(_, h)| h.to_string())
                .unwrap_or_else(|| field.to_uppercase());
            header.insert(field.to_string(), Value::String(name));
        }
        lines.push(run(&t, text, Value::Object(header))?);
    }
    for row in rows {
        lines.push(run(&t, text, to_template_value(row))?);
    }
    if !table {
        let mut out = lines.join("\n");
        if !rows.is_empty() {
            out.push('\n');
        }
        return Ok(out);
    }
    let cells: Vec<Vec<String>> = lines
        .iter()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect();
    let columns = cells.iter().map(Vec::len).max().unwrap_or(0);
    let pad = |mut row: Vec<String>| {
        row.resize(columns, String::new());
        row
    };
    let mut cells = cells.into_iter();
    let mut out = Table::new(pad(cells.next().unwrap_or_default()));
    for row in cells {
        out.row(pad(row));
    }
    Ok(out.render())
}

/// JSON → template values: objects become Go structs (a missing field is an
/// error, as with Docker's typed contexts), numbers stay numbers.
fn to_template_value(v: &serde_json::Value) -> Value {
    match v {
        // What Go prints for a key whose value is null in decoded JSON.
        serde_json::Value::Null => Value::NoValue,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Value::Number(Number::from(u)),
            (_, Some(i), _) => Value::Number(Number::from(i)),
            (_, _, Some(f)) => Value::Number(Number::from(f)),
            _ => Value::Nil,
        },
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(a) => Value::Array(a.iter().map(to_template_value).collect()),
        serde_json::Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), to_template_value(v)))
                .collect(),
        ),
    }
}

fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::NoValue | Value::Nil | Value::Function(_) => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                u.into()
            } else if let Some(i) = n.as_i64() {
                i.into()
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map(serde_json::Value::Number)
                    .unwrap_or(serde_json::Value::Null)
            }
        }
        Value::Array(a) => serde_json::Value::Array(a.iter().map(to_json).collect()),
        Value::Object(o) | Value::Map(o) => {
            // Sorted, so the output does not depend on hash order.
            let sorted: std::collections::BTreeMap<_, _> = o.iter().collect();
            serde_json::Value::Object(
                sorted
                    .into_iter()
                    .map(|(k, v)| (k.clone(), to_json(v)))
                    .collect(),
            )
        }
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn one<'a>(name: &str, args: &'a [Value]) -> Result<&'a Value, FuncError> {
    match args {
        [v] => Ok(v),
        _ => Err(FuncError::ExactlyXArgs(name.into(), 1)),
    }
}

fn two<'a>(name: &str, args: &'a [Value]) -> Result<(&'a Value, &'a Value), FuncError> {
    match args {
        [a, b] => Ok((a, b)),
        _ => Err(FuncError::ExactlyXArgs(name.into(), 2)),
    }
}

fn int_arg(name: &str, v: &Value) -> Result<usize, FuncError> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .map(|u| u as usize)
            .ok_or_else(|| FuncError::Generic(format!("{name}: expected a whole number"))),
        _ => Err(FuncError::Generic(format!("{name}: expected a number"))),
    }
}

fn json(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(to_json(one("json", args)?).to_string()))
}

fn join(args: &[Value]) -> Result<Value, FuncError> {
    let (list, sep) = two("join", args)?;
    let items: Vec<String> = match list {
        Value::Array(a) => a.iter().map(text_of).collect(),
        other => vec![text_of(other)],
    };
    Ok(Value::String(items.join(&text_of(sep))))
}

fn split(args: &[Value]) -> Result<Value, FuncError> {
    let (s, sep) = two("split", args)?;
    Ok(Value::Array(
        text_of(s)
            .split(text_of(sep).as_str())
            .map(|p| Value::String(p.to_string()))
            .collect(),
    ))
}

fn lower(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(text_of(one("lower", args)?).to_lowercase()))
}

fn upper(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(text_of(one("upper", args)?).to_uppercase()))
}

fn title(args: &[Value]) -> Result<Value, FuncError> {
    let s = text_of(one("title", args)?);
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    Ok(Value::String(out))
}

fn truncate(args: &[Value]) -> Result<Value, FuncError> {
    let (s, n) = two("truncate", args)?;
    let n = int_arg("truncate", n)?;
    Ok(Value::String(text_of(s).chars().take(n).collect()))
}

fn pad(args: &[Value]) -> Result<Value, FuncError> {
    let [s, left, right] = args else {
        return Err(FuncError::ExactlyXArgs("pad".into(), 3));
    };
    let (l, r) = (int_arg("pad", left)?, int_arg("pad", right)?);
    Ok(Value::String(format!(
        "{}{}{}",
        " ".repeat(l),
        text_of(s),
        " ".repeat(r)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HEADERS: &[(&str, &str)] = &[("ID", "CONTAINER ID"), ("Names", "NAMES")];

    fn rows() -> Vec<serde_json::Value> {
        vec![
            json!({"ID": "0123456789ab", "Names": "web", "State": {"ExitCode": 3}, "Labels": "a=1,b=2"}),
            json!({"ID": "ba9876543210", "Names": "database", "State": {"ExitCode": 0}, "Labels": ""}),
        ]
    }

    #[test]
    fn formats_parse_as_docker_reads_them() {
        let cases: &[(bool, Option<&str>, Format)] = &[
            (false, None, Format::Table),
            (false, Some("table"), Format::Table),
            (false, Some("json"), Format::Json),
            (false, Some("JSON"), Format::Json),
            (true, Some("{{.ID}}"), Format::Json),
            (
                false,
                Some("{{.ID}}"),
                Format::Template {
                    text: "{{.ID}}".into(),
                    table: false,
                },
            ),
            (
                false,
                Some("table {{.ID}}\t{{.Names}}"),
                Format::Template {
                    text: "{{.ID}}\t{{.Names}}".into(),
                    table: true,
                },
            ),
        ];
        for (json_flag, text, want) in cases {
            assert_eq!(&Format::parse(*json_flag, *text), want, "{text:?}");
        }
    }

    #[test]
    fn templates_render_each_row() {
        let cases: &[(&str, &str)] = &[
            ("{{.Names}}", "web\ndatabase\n"),
            (
                "{{.ID}} {{.Names}}",
                "0123456789ab web\nba9876543210 database\n",
            ),
            ("{{.State.ExitCode}}", "3\n0\n"),
            ("{{json .State}}", "{\"ExitCode\":3}\n{\"ExitCode\":0}\n"),
            ("{{upper .Names}}", "WEB\nDATABASE\n"),
            ("{{truncate .ID 4}}", "0123\nba98\n"),
            ("{{join (split .Labels \",\") \";\"}}", "a=1;b=2\n\n"),
            ("{{if eq .Names \"web\"}}yes{{else}}no{{end}}", "yes\nno\n"),
            ("{{title .Names}}", "Web\nDatabase\n"),
            ("[{{pad .Names 1 2}}]", "[ web  ]\n[ database  ]\n"),
        ];
        for (text, want) in cases {
            assert_eq!(
                render_rows(text, false, &rows(), HEADERS).unwrap(),
                *want,
                "{text}"
            );
        }
    }

    #[test]
    fn table_templates_get_docker_headers_and_aligned_columns() {
        let out = render_rows("{{.ID}}\\t{{.Names}}", true, &rows(), HEADERS).unwrap();
        assert_eq!(
            out,
            "CONTAINER ID   NAMES\n0123456789ab   web\nba9876543210   database\n"
        );
        let out = render_rows("{{.Names}}\t{{.State}}", true, &rows()[..1], HEADERS).unwrap();
        assert!(out.starts_with("NAMES   STATE\n"), "{out}");
    }

    #[test]
    fn an_empty_listing_prints_only_the_header() {
        assert_eq!(
            render_rows("{{.ID}}\t{{.Names}}", true, &[], HEADERS).unwrap(),
            "CONTAINER ID   NAMES\n"
        );
        assert_eq!(render_rows("{{.ID}}", false, &[], HEADERS).unwrap(), "");
    }

    #[test]
    fn a_missing_field_or_a_bad_template_is_an_error() {
        for bad in [
            "{{.Nope}}",
            "{{.ID",
            "{{nosuchfunc .ID}}",
            "{{truncate .ID}}",
        ] {
            let e = render_rows(bad, false, &rows(), HEADERS).unwrap_err();
            assert!(
                e.to_string().starts_with("invalid --format template"),
                "{bad}: {e}"
            );
            assert!(
                !e.to_string().contains("database"),
                "no dump of the row: {e}"
            );
        }
    }

    #[test]
    fn inspect_renders_one_object() {
        let v = json!({"Name": "/web", "State": {"Status": "running", "ExitCode": 0}});
        assert_eq!(
            render_one("{{.Name}} is {{.State.Status}}", &v).unwrap(),
            "/web is running"
        );
        assert_eq!(
            render_one("{{json .State}}", &v).unwrap(),
            r#"{"ExitCode":0,"Status":"running"}"#
        );
        let v = json!({"State": {"Health": null}});
        assert_eq!(render_one("{{.State.Health}}", &v).unwrap(), "<no value>");
        assert_eq!(
            render_one("{{if .State.Health}}yes{{else}}none{{end}}", &v).unwrap(),
            "none"
        );
    }
}
