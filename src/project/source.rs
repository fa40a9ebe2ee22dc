//! Manifest sources: TOML text parsed into a tree that remembers where every
//! key and value came from.
//!
//! berth reports manifest errors as `FILE:LINE:COL: KEY.PATH: what was wrong`,
//! so the tree the rest of `project` works on carries, for every node, the
//! file it came from and its byte range there. The TOML is parsed with
//! `toml_edit` (the parser behind `toml`), whose document keeps the byte span
//! of every key and value (TOML 1.0: <https://toml.io/en/v1.0.0>). Several
//! `-f` files merge into one tree the way Compose merges override files
//! (<https://docs.docker.com/compose/how-tos/multiple-compose-files/merge/>):
//! tables merge key by key, scalars and arrays are replaced, except the
//! sequences Compose merges (`ports` are unioned, `volumes` merged by target)
//! and the mappings Compose accepts as lists (`environment`, `labels`,
//! `build.args`, `depends_on`, `networks`), which are turned into tables first
//! so a list in one file and a table in another still merge.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where a node came from: a file (index into [`Sources`]) and a byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub file: usize,
    pub start: usize,
    pub end: usize,
}

/// A TOML value with spans on itself and on every key and value inside it.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
}

/// The TOML value kinds. Datetimes are kept as their text: no berth key takes
/// one, so they only ever appear in "wrong type" errors.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    String(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
    Datetime(String),
    Array(Vec<Node>),
    Table(Vec<Entry>),
}

/// One `key = value` of a table, the key with its own span.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_span: Span,
    pub node: Node,
}

impl Value {
    /// The TOML name of the value's type, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::String(_) => "string",
            Value::Integer(_) => "integer",
            Value::Float(_) => "float",
            Value::Boolean(_) => "boolean",
            Value::Datetime(_) => "datetime",
            Value::Array(_) => "array",
            Value::Table(_) => "table",
        }
    }
}

impl Node {
    pub fn table(entries: Vec<Entry>, span: Span) -> Self {
        Node {
            value: Value::Table(entries),
            span,
        }
    }

    /// The entry `key` of a table node.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        match &self.value {
            Value::Table(entries) => entries.iter().find(|e| e.key == key),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Entry> {
        match &mut self.value {
            Value::Table(entries) => entries.iter_mut().find(|e| e.key == key),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The span of the node at `path` (keys and array indices), or of the
    /// deepest node on the way there that exists.
    pub fn span_at(&self, path: &[PathSeg]) -> Span {
        let mut node = self;
        let mut span = self.span;
        for seg in path {
            let next = match (seg, &node.value) {
                (PathSeg::Key(k), Value::Table(entries)) => entries
                    .iter()
                    .find(|e| &e.key == k)
                    .map(|e| (e.key_span, &e.node)),
                (PathSeg::Index(i), Value::Array(items)) => items.get(*i).map(|n| (n.span, n)),
                _ => None,
            };
            match next {
                Some((key_span, child)) => {
                    span = if matches!(seg, PathSeg::Key(_)) && path.last() == Some(seg) {
                        key_span
                    } else {
                        child.span
                    };
                    node = child;
                }
                None => break,
            }
        }
        span
    }
}

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSeg {
    Key(String),
    Index(usize),
}

/// A key path as berth prints it: `services.web.ports[0]`, with keys that are
/// not bare TOML keys quoted (`labels."com.example.x"`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(pub Vec<PathSeg>);

impl KeyPath {
    pub fn root() -> Self {
        KeyPath(Vec::new())
    }
    pub fn key(&self, k: &str) -> Self {
        let mut p = self.clone();
        p.0.push(PathSeg::Key(k.to_string()));
        p
    }
    pub fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.0.push(PathSeg::Index(i));
        p
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                PathSeg::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    let bare = !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if bare {
                        f.write_str(k)?;
                    } else {
                        write!(f, "{k:?}")?;
                    }
                }
                PathSeg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// The manifest files read so far, by index, to turn spans into `file:line:col`.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    files: Vec<SourceFile>,
}

#[derive(Debug, Clone)]
struct SourceFile {
    display: String,
    path: PathBuf,
    text: String,
}

impl Sources {
    /// Adds a file's text; `display` is how errors name it.
    pub fn add(
        &mut self,
        display: impl Into<String>,
        path: impl Into<PathBuf>,
        text: String,
    ) -> usize {
        self.files.push(SourceFile {
            display: display.into(),
            path: path.into(),
            text,
        });
        self.files.len() - 1
    }

    pub fn path(&self, file: usize) -> &Path {
        &self.files[file].path
    }

    pub fn text(&self, file: usize) -> &str {
        &self.files[file].text
    }

    /// `file:line:col` of a span's start, lines and columns counted from 1,
    /// columns in characters.
    pub fn location(&self, span: Span) -> String {
        let Some(file) = self.files.get(span.file) else {
            return "<unknown>".to_string();
        };
        let (line, col) = line_col(&file.text, span.start);
        format!("{}:{}:{}", file.display, line, col)
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// A TOML syntax error: the span and the parser's message.
#[derive(Debug, Clone)]
pub struct SyntaxError {
    pub span: Span,
    pub message: String,
}

/// Parses TOML text into a spanned tree tagged with `file`.
pub fn parse(text: &str, file: usize) -> Result<Node, SyntaxError> {
    let doc = toml_edit::ImDocument::parse(text).map_err(|e| {
        let range = e.span().unwrap_or(0..0);
        SyntaxError {
            span: Span {
                file,
                start: range.start,
                end: range.end,
            },
            message: e.message().trim().to_string(),
        }
    })?;
    let root_span = Span {
        file,
        start: 0,
        end: text.len(),
    };
    Ok(convert_table(doc.as_table(), root_span, file))
}

fn span_of(range: Option<std::ops::Range<usize>>, fallback: Span, file: usize) -> Span {
    match range {
        Some(r) => Span {
            file,
            start: r.start,
            end: r.end,
        },
        None => fallback,
    }
}

fn convert_table(table: &toml_edit::Table, span: Span, file: usize) -> Node {
    let mut entries = Vec::new();
    for (key, item) in table.iter() {
        let key_span = table
            .get_key_value(key)
            .and_then(|(k, _)| k.span())
            .map(|r| Span {
                file,
                start: r.start,
                end: r.end,
            })
            .unwrap_or(span);
        if let Some(node) = convert_item(item, key_span, file) {
            entries.push(Entry {
                key: key.to_string(),
                key_span,
                node,
            });
        }
    }
    Node::table(entries, span)
}

fn convert_item(item: &toml_edit::Item, fallback: Span, file: usize) -> Option<Node> {
    match item {
        toml_edit::Item::None => None,
        toml_edit::Item::Value(v) => Some(convert_value(v, fallback, file)),
        toml_edit::Item::Table(t) => {
            // A `[header]` table's value span is its header; an implicit
            // table (`services` in `[services.web]`) has none: use the key.
            let span = span_of(t.span(), fallback, file);
            Some(convert_table(t, span, file))
        }
        toml_edit::Item::ArrayOfTables(a) => {
            let span = span_of(a.span(), fallback, file);
            let items = a
                .iter()
                .map(|t| {
                    let s = span_of(t.span(), span, file);
                    convert_table(t, s, file)
                })
                .collect();
            Some(Node {
                value: Value::Array(items),
                span,
            })
        }
    }
}

fn convert_value(v: &toml_edit::Value, fallback: Span, file: usize) -> Node {
    let span = span_of(v.span(), fallback, file);
    let value = match v {
        toml_edit::Value::String(s) => Value::String(s.value().clone()),
        toml_edit::Value::Integer(i) => Value::Integer(*i.value()),
        toml_edit::Value::Float(f) => Value::Float(*f.value()),
        toml_edit::Value::Boolean(b) => Value::Boolean(*b.value()),
        toml_edit::Value::Datetime(d) => Value::Datetime(d.value().to_string()),
        toml_edit::Value::Array(a) => {
            Value::Array(a.iter().map(|v| convert_value(v, span, file)).collect())
        }
        toml_edit::Value::InlineTable(t) => {
            let mut entries = Vec::new();
            for (key, value) in t.iter() {
                let key_span = t
                    .get_key_value(key)
                    .and_then(|(k, _)| k.span())
                    .map(|r| Span {
                        file,
                        start: r.start,
                        end: r.end,
                    })
                    .unwrap_or(span);
                entries.push(Entry {
                    key: key.to_string(),
                    key_span,
                    node: convert_value(value, key_span, file),
                });
            }
            Value::Table(entries)
        }
    };
    Node { value, span }
}

/// Rewrites the list forms Compose accepts for mappings into tables, so that
/// files merge key by key: `environment`/`labels`/`build.args` `["K=V"]`,
/// `depends_on = ["db"]`, `networks = ["front"]`. Items that are not strings
/// are left alone for the typed layer to reject with their own span.
pub fn normalise_lists(root: &mut Node) {
    let Some(services) = root.get_mut("services") else {
        return;
    };
    let Value::Table(services) = &mut services.node.value else {
        return;
    };
    for service in services {
        for key in ["environment", "labels"] {
            if let Some(entry) = service.node.get_mut(key) {
                list_to_table(&mut entry.node, ListKind::KeyValue);
            }
        }
        if let Some(build) = service.node.get_mut("build") {
            if let Some(args) = build.node.get_mut("args") {
                list_to_table(&mut args.node, ListKind::KeyValue);
            }
        }
        if let Some(entry) = service.node.get_mut("depends_on") {
            list_to_table(&mut entry.node, ListKind::Names("started"));
        }
        if let Some(entry) = service.node.get_mut("networks") {
            list_to_table(&mut entry.node, ListKind::Names(""));
        }
    }
}

enum ListKind {
    /// `K=V` strings; a bare `K` (take it from the environment) stays a list.
    KeyValue,
    /// Names; each becomes `name = <empty table>` or `name = "<value>"`.
    Names(&'static str),
}

fn list_to_table(node: &mut Node, kind: ListKind) {
    let Value::Array(items) = &node.value else {
        return;
    };
    let mut entries: Vec<Entry> = Vec::new();
    for item in items {
        let Value::String(s) = &item.value else {
            return;
        };
        let entry = match kind {
            ListKind::KeyValue => {
                let Some((k, v)) = s.split_once('=') else {
                    return;
                };
                if k.is_empty() {
                    return;
                }
                Entry {
                    key: k.to_string(),
                    key_span: item.span,
                    node: Node {
                        value: Value::String(v.to_string()),
                        span: item.span,
                    },
                }
            }
            ListKind::Names(default) => Entry {
                key: s.clone(),
                key_span: item.span,
                node: if default.is_empty() {
                    Node::table(Vec::new(), item.span)
                } else {
                    Node {
                        value: Value::String(default.to_string()),
                        span: item.span,
                    }
                },
            },
        };
        if entries.iter().any(|e| e.key == entry.key) {
            // A duplicate: keep the list so the typed layer reports it.
            return;
        }
        entries.push(entry);
    }
    node.value = Value::Table(entries);
}

/// Merges `over` into `base` as Compose merges override files.
pub fn merge(base: &mut Node, over: Node) {
    merge_at(base, over, &mut Vec::new());
}

fn merge_at(base: &mut Node, over: Node, path: &mut Vec<String>) {
    match (&mut base.value, over.value) {
        (Value::Table(base_entries), Value::Table(over_entries)) => {
            for entry in over_entries {
                match base_entries.iter_mut().find(|e| e.key == entry.key) {
                    Some(existing) => {
                        path.push(entry.key.clone());
                        merge_at(&mut existing.node, entry.node, path);
                        path.pop();
                    }
                    None => base_entries.push(entry),
                }
            }
        }
        (Value::Array(base_items), Value::Array(over_items)) if is_service_key(path, "ports") => {
            for item in over_items {
                if !base_items.iter().any(|b| b.value == item.value) {
                    base_items.push(item);
                }
            }
        }
        (Value::Array(base_items), Value::Array(over_items)) if is_service_key(path, "volumes") => {
            for item in over_items {
                let target = volume_target(&item);
                match base_items
                    .iter_mut()
                    .find(|b| target.is_some() && volume_target(b) == target)
                {
                    Some(existing) => *existing = item,
                    None => base_items.push(item),
                }
            }
        }
        (_, value) => {
            base.value = value;
            base.span = over.span;
        }
    }
}

fn is_service_key(path: &[String], key: &str) -> bool {
    path.len() == 3 && path[0] == "services" && path[2] == key
}

/// The container path of a volume entry, short (`src:dst[:mode]`) or long.
fn volume_target(node: &Node) -> Option<String> {
    match &node.value {
        Value::String(s) => {
            let parts: Vec<&str> = s.split(':').collect();
            match parts.len() {
                1 => Some(parts[0].to_string()),
                _ => Some(parts[1].to_string()),
            }
        }
        Value::Table(_) => node
            .get("target")
            .and_then(|e| e.node.as_str())
            .map(str::to_string),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_point_at_keys_and_values() {
        let text = "name = \"x\"\n[services.web]\nimage = \"busybox\"\nports = [\"80\", { target = 81 }]\n";
        let mut sources = Sources::default();
        let file = sources.add("berth.toml", "berth.toml", text.to_string());
        let root = parse(text, file).unwrap();
        let web = &root.get("services").unwrap().node.get("web").unwrap().node;
        let image = web.get("image").unwrap();
        assert_eq!(sources.location(image.key_span), "berth.toml:3:1");
        assert_eq!(sources.location(image.node.span), "berth.toml:3:9");
        let path = KeyPath::root()
            .key("services")
            .key("web")
            .key("ports")
            .index(1);
        let span = root.span_at(&path.0);
        assert_eq!(sources.location(span), "berth.toml:4:16");
        assert_eq!(path.to_string(), "services.web.ports[1]");
        assert_eq!(
            KeyPath::root().key("labels").key("a.b").to_string(),
            "labels.\"a.b\""
        );
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncé d", 7), (2, 4));
        assert_eq!(line_col("", 5), (1, 1));
    }

    #[test]
    fn merge_follows_compose() {
        let base = "[services.web]\nimage = \"a\"\nports = [\"80:80\"]\nvolumes = [\"d:/data\", \"/x:/y\"]\nenvironment = [\"A=1\", \"B=2\"]\ncommand = [\"x\", \"y\"]\n";
        let over = "[services.web]\nimage = \"b\"\nports = [\"80:80\", \"443:443\"]\nvolumes = [\"e:/data\"]\nenvironment = { B = \"3\" }\ncommand = [\"z\"]\n";
        let mut a = parse(base, 0).unwrap();
        let mut b = parse(over, 1).unwrap();
        normalise_lists(&mut a);
        normalise_lists(&mut b);
        merge(&mut a, b);
        let web = &a.get("services").unwrap().node.get("web").unwrap().node;
        assert_eq!(web.get("image").unwrap().node.as_str(), Some("b"));
        let Value::Array(ports) = &web.get("ports").unwrap().node.value else {
            panic!()
        };
        assert_eq!(ports.len(), 2);
        let Value::Array(vols) = &web.get("volumes").unwrap().node.value else {
            panic!()
        };
        assert_eq!(vols.len(), 2);
        assert_eq!(vols[0].as_str(), Some("e:/data"));
        assert_eq!(vols[0].span.file, 1);
        let env = &web.get("environment").unwrap().node;
        assert_eq!(env.get("A").unwrap().node.as_str(), Some("1"));
        assert_eq!(env.get("B").unwrap().node.as_str(), Some("3"));
        let Value::Array(cmd) = &web.get("command").unwrap().node.value else {
            panic!()
        };
        assert_eq!(cmd.len(), 1);
    }
}
