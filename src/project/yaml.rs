//! Compose files (`compose.yaml`) read into the same spanned tree as
//! `berth.toml`, so both go through one interpolation, merge, typed layer
//! and error format (`compose.yaml:12:9: services.web.ports[0]: …`).
//!
//! YAML (<https://yaml.org/spec/1.2.2/>) is parsed by `yaml-rust2`, whose
//! event parser gives the byte offset of every node; this module builds
//! [`Node`]s from those events:
//! - plain scalars are typed by YAML 1.2's core schema (`true`, `42`,
//!   `1.5`, `null`, `~`); quoted ones are strings, as in Compose (Go's
//!   yaml.v3), so `8080:80` stays a string;
//! - anchors and aliases are resolved, with a bound on how far aliases may
//!   expand (a "billion laughs" document is refused, not expanded);
//! - merge keys (`<<: *base`, `<<: [*a, *b]`) fill in the keys a mapping
//!   does not set itself (<https://yaml.org/type/merge.html>);
//! - a key given twice in one mapping is an error, as in Compose;
//! - Compose's extension fields (`x-…`) are dropped wherever they may
//!   stand (every mapping but free-form ones such as `labels`), and the
//!   obsolete top-level `version` is dropped with a note;
//! - `null` has no TOML form, so it takes Compose's meaning: an empty
//!   definition under `volumes`/`networks`/`secrets`/`configs` and a
//!   service's `networks`, a variable taken from the environment in an
//!   `environment` mapping (the mapping becomes the list form `["K"]`), and
//!   an unset key anywhere else.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::source::{Entry, Node, Span, SyntaxError, Value};

/// At most this many nodes, counting every alias's expansion.
pub const MAX_NODES: usize = 100_000;

/// Keys whose mappings are free-form (their keys are data, not fields), so
/// an `x-…` key inside them is kept.
const FREE_FORM: &[&str] = &[
    "labels",
    "environment",
    "args",
    "annotations",
    "driver_opts",
    "options",
    "sysctls",
    "extra_hosts",
];

/// Sections whose entries may be written as bare names (`db:` = `db: {}`).
const DEFINITIONS: &[&str] = &["volumes", "networks", "secrets", "configs"];

/// A parsed Compose file: the tree and notes for the user.
#[derive(Debug)]
pub struct Parsed {
    pub node: Node,
    /// Things berth accepted but ignores (`version`), with where they stand.
    pub notes: Vec<(Span, String)>,
}

/// Parses a Compose file's text (file index `file` in the sources).
pub fn parse(text: &str, file: usize) -> Result<Parsed, SyntaxError> {
    let mut builder = Builder::new(file);
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, false) {
        let at = e.marker().index().min(text.len());
        return Err(SyntaxError {
            message: e.info().to_string(),
            span: Span {
                file,
                start: at,
                end: at,
            },
        });
    }
    if let Some(e) = builder.error {
        return Err(e);
    }
    let Some(mut node) = builder.root.map(|n| n.resolve_nulls(&[])) else {
        // An empty file: an empty project, which the typed layer reports.
        return Ok(Parsed {
            node: Node::table(
                Vec::new(),
                Span {
                    file,
                    start: 0,
                    end: 0,
                },
            ),
            notes: Vec::new(),
        });
    };
    let mut notes = Vec::new();
    if let Value::Table(entries) = &mut node.value {
        if let Some(i) = entries.iter().position(|e| e.key == "version") {
            let e = entries.remove(i);
            notes.push((
                e.key_span,
                "the top-level `version` key is obsolete and ignored (as Compose ignores it)"
                    .to_string(),
            ));
        }
    }
    strip_extensions(&mut node, None);
    Ok(Parsed { node, notes })
}

/// A value with YAML's null, before [`Yaml::resolve_nulls`] gives nulls
/// their Compose meaning.
#[derive(Debug, Clone)]
enum Yaml {
    Null(Span),
    Node(Node),
    Map(Vec<(String, Span, Yaml)>, Span),
    Seq(Vec<Yaml>, Span),
}

impl Yaml {
    fn span(&self) -> Span {
        match self {
            Yaml::Null(s) | Yaml::Map(_, s) | Yaml::Seq(_, s) => *s,
            Yaml::Node(n) => n.span,
        }
    }

    fn count(&self) -> usize {
        match self {
            Yaml::Null(_) | Yaml::Node(_) => 1,
            Yaml::Map(entries, _) => 1 + entries.iter().map(|(_, _, v)| v.count()).sum::<usize>(),
            Yaml::Seq(items, _) => 1 + items.iter().map(Yaml::count).sum::<usize>(),
        }
    }

    /// Turns the tree into [`Node`]s; `path` is the keys above this value.
    fn resolve_nulls(self, path: &[&str]) -> Node {
        match self {
            Yaml::Node(n) => n,
            Yaml::Null(span) => Node::table(Vec::new(), span),
            Yaml::Seq(items, span) => Node {
                value: Value::Array(items.into_iter().map(|i| i.resolve_nulls(path)).collect()),
                span,
            },
            Yaml::Map(entries, span) => {
                let is_environment = path.last() == Some(&"environment") && path.len() == 3;
                if is_environment && entries.iter().any(|(_, _, v)| matches!(v, Yaml::Null(_))) {
                    // `K:` takes K from the environment: the list form says so.
                    let items = entries
                        .into_iter()
                        .map(|(k, key_span, v)| match v {
                            Yaml::Null(_) => Node {
                                value: Value::String(k),
                                span: key_span,
                            },
                            other => {
                                let node = other.resolve_nulls(path);
                                let text = scalar_text(&node).unwrap_or_default();
                                Node {
                                    value: Value::String(format!("{k}={text}")),
                                    span: node.span,
                                }
                            }
                        })
                        .collect();
                    return Node {
                        value: Value::Array(items),
                        span,
                    };
                }
                let definitions = (path.len() == 1 && DEFINITIONS.contains(&path[0]))
                    || (path.len() == 3 && path[0] == "services" && path[2] == "networks")
                    || path == ["services"];
                let mut out = Vec::with_capacity(entries.len());
                for (key, key_span, v) in entries {
                    let node = match v {
                        Yaml::Null(s) if definitions => Node::table(Vec::new(), s),
                        // Anywhere else `key: null` leaves the key unset.
                        Yaml::Null(_) => continue,
                        other => {
                            let mut sub: Vec<&str> = path.to_vec();
                            sub.push(&key);
                            other.resolve_nulls(&sub)
                        }
                    };
                    out.push(Entry {
                        key,
                        key_span,
                        node,
                    });
                }
                Node::table(out, span)
            }
        }
    }
}

fn scalar_text(node: &Node) -> Option<String> {
    Some(match &node.value {
        Value::String(s) => s.clone(),
        Value::Integer(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Boolean(b) => b.to_string(),
        _ => return None,
    })
}

/// One open mapping or sequence.
enum Frame {
    Map {
        entries: Vec<(String, Span, Yaml)>,
        key: Option<(String, Span)>,
        start: usize,
        anchor: usize,
    },
    Seq {
        items: Vec<Yaml>,
        start: usize,
        anchor: usize,
    },
}

struct Builder {
    file: usize,
    stack: Vec<Frame>,
    anchors: std::collections::HashMap<usize, Yaml>,
    nodes: usize,
    root: Option<Yaml>,
    error: Option<SyntaxError>,
}

impl Builder {
    fn new(file: usize) -> Self {
        Self {
            file,
            stack: Vec::new(),
            anchors: Default::default(),
            nodes: 0,
            root: None,
            error: None,
        }
    }

    fn span(&self, start: usize, end: usize) -> Span {
        Span {
            file: self.file,
            start,
            end: end.max(start),
        }
    }

    fn fail(&mut self, at: Span, message: String) {
        if self.error.is_none() {
            self.error = Some(SyntaxError { message, span: at });
        }
    }

    /// Adds a finished value to the innermost open collection.
    fn push(&mut self, value: Yaml) {
        let span = value.span();
        let top = match self.stack.last_mut() {
            None => {
                self.root = Some(value);
                return;
            }
            Some(top) => top,
        };
        match top {
            Frame::Seq { items, .. } => items.push(value),
            Frame::Map { entries, key, .. } => match key.take() {
                Some((k, key_span)) => {
                    if k != "<<" && entries.iter().any(|(e, _, _)| *e == k) {
                        self.fail(key_span, format!("mapping key {k:?} is given twice"));
                        return;
                    }
                    entries.push((k, key_span, value));
                }
                None => {
                    let name = match &value {
                        Yaml::Node(n) => scalar_text(n),
                        Yaml::Null(_) => Some(String::new()),
                        _ => None,
                    };
                    match name {
                        Some(k) => *key = Some((k, span)),
                        None => self.fail(
                            span,
                            "a mapping key must be a plain value, not a mapping or a list".into(),
                        ),
                    }
                }
            },
        }
    }

    fn count(&mut self, n: usize, at: Span) -> bool {
        self.nodes += n;
        if self.nodes > MAX_NODES {
            self.fail(
                at,
                format!(
                    "the document expands to more than {MAX_NODES} values through its aliases; refusing it (a YAML bomb?)"
                ),
            );
            return false;
        }
        true
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let at = mark.index();
        match ev {
            Event::MappingStart(anchor, _) => {
                if self.count(1, self.span(at, at)) {
                    self.stack.push(Frame::Map {
                        entries: Vec::new(),
                        key: None,
                        start: at,
                        anchor,
                    });
                }
            }
            Event::SequenceStart(anchor, _) => {
                if self.count(1, self.span(at, at)) {
                    self.stack.push(Frame::Seq {
                        items: Vec::new(),
                        start: at,
                        anchor,
                    });
                }
            }
            Event::MappingEnd => {
                let Some(Frame::Map {
                    entries,
                    start,
                    anchor,
                    ..
                }) = self.stack.pop()
                else {
                    return;
                };
                let span = self.span(start, at);
                let value = match merge_keys(entries) {
                    Ok(entries) => Yaml::Map(entries, span),
                    Err((s, m)) => return self.fail(s, m),
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, value.clone());
                }
                self.push(value);
            }
            Event::SequenceEnd => {
                let Some(Frame::Seq {
                    items,
                    start,
                    anchor,
                }) = self.stack.pop()
                else {
                    return;
                };
                let value = Yaml::Seq(items, self.span(start, at));
                if anchor > 0 {
                    self.anchors.insert(anchor, value.clone());
                }
                self.push(value);
            }
            Event::Scalar(text, style, anchor, tag) => {
                let span = self.span(at, at + text.len());
                if !self.count(1, span) {
                    return;
                }
                let value = scalar(text, style, tag.as_ref().map(|t| t.suffix.as_str()), span);
                if anchor > 0 {
                    self.anchors.insert(anchor, value.clone());
                }
                self.push(value);
            }
            Event::Alias(id) => {
                let span = self.span(at, at);
                match self.anchors.get(&id).cloned() {
                    Some(v) => {
                        if self.count(v.count(), span) {
                            self.push(v);
                        }
                    }
                    None => self.fail(
                        span,
                        "an alias names an anchor that is not defined before it".into(),
                    ),
                }
            }
            Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd
            | Event::Nothing => {}
        }
    }
}

/// Applies `<<` entries: their mappings' keys that the mapping does not set
/// itself are added (the first mapping listed wins among several).
#[allow(clippy::type_complexity)]
fn merge_keys(
    entries: Vec<(String, Span, Yaml)>,
) -> Result<Vec<(String, Span, Yaml)>, (Span, String)> {
    if !entries.iter().any(|(k, _, _)| k == "<<") {
        return Ok(entries);
    }
    let (merges, mut own): (Vec<_>, Vec<_>) = entries.into_iter().partition(|(k, _, _)| k == "<<");
    for (_, key_span, value) in merges {
        let sources = match value {
            Yaml::Map(m, _) => vec![m],
            Yaml::Seq(items, _) => {
                let mut maps = Vec::new();
                for item in items {
                    match item {
                        Yaml::Map(m, _) => maps.push(m),
                        other => {
                            return Err((other.span(), "a merge key (<<) takes mappings".into()))
                        }
                    }
                }
                maps
            }
            other => {
                return Err((
                    other.span().min_with(key_span),
                    "a merge key (<<) takes a mapping or a list of mappings".into(),
                ))
            }
        };
        for source in sources {
            for (k, s, v) in source {
                if !own.iter().any(|(o, _, _)| *o == k) {
                    own.push((k, s, v));
                }
            }
        }
    }
    Ok(own)
}

trait MinWith {
    fn min_with(self, other: Span) -> Span;
}

impl MinWith for Span {
    fn min_with(self, other: Span) -> Span {
        if other.start < self.start {
            other
        } else {
            self
        }
    }
}

/// A scalar typed by YAML 1.2's core schema (plain style only).
fn scalar(text: String, style: TScalarStyle, tag: Option<&str>, span: Span) -> Yaml {
    let node = |value| Yaml::Node(Node { value, span });
    if style != TScalarStyle::Plain || tag == Some("str") {
        return node(Value::String(text));
    }
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Yaml::Null(span),
        "true" | "True" | "TRUE" => return node(Value::Boolean(true)),
        "false" | "False" | "FALSE" => return node(Value::Boolean(false)),
        _ => {}
    }
    if let Some(i) = core_int(&text) {
        return node(Value::Integer(i));
    }
    if let Some(f) = core_float(&text) {
        return node(Value::Float(f));
    }
    node(Value::String(text))
}

fn core_int(s: &str) -> Option<i64> {
    if let Some(oct) = s.strip_prefix("0o") {
        return i64::from_str_radix(oct, 8).ok();
    }
    if let Some(hex) = s.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16).ok();
    }
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    None
}

fn core_float(s: &str) -> Option<f64> {
    match s {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        _ => {}
    }
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let digits_ok = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some((a, b)) => digits_ok(a) && digits_ok(b) && !(a.is_empty() && b.is_empty()),
        None => !mantissa.is_empty() && digits_ok(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits_ok(e)
    });
    (mantissa_ok && exponent_ok && (mantissa.contains('.') || exponent.is_some()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Drops `x-…` keys from every mapping but free-form ones.
fn strip_extensions(node: &mut Node, key: Option<&str>) {
    match &mut node.value {
        Value::Table(entries) => {
            if !key.is_some_and(|k| FREE_FORM.contains(&k)) {
                entries.retain(|e| !e.key.starts_with("x-"));
            }
            for e in entries {
                strip_extensions(&mut e.node, Some(&e.key));
            }
        }
        Value::Array(items) => {
            for i in items {
                strip_extensions(i, key);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tree as compact text: tables `{k: v, …}`, arrays `[…]`,
    /// strings quoted.
    fn show(n: &Node) -> String {
        match &n.value {
            Value::String(s) => format!("{s:?}"),
            Value::Integer(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Boolean(b) => b.to_string(),
            Value::Datetime(d) => d.clone(),
            Value::Array(items) => {
                format!(
                    "[{}]",
                    items.iter().map(show).collect::<Vec<_>>().join(", ")
                )
            }
            Value::Table(entries) => format!(
                "{{{}}}",
                entries
                    .iter()
                    .map(|e| format!("{}: {}", e.key, show(&e.node)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    #[test]
    fn documents_become_the_same_tree_as_toml() {
        let cases: &[(&str, &str)] = &[
            ("a: 1", "{a: 1}"),
            ("a: '1'", "{a: \"1\"}"),
            ("p: 8080:80", "{p: \"8080:80\"}"),
            ("b: true\nc: False\nd: yes", "{b: true, c: false, d: \"yes\"}"),
            ("f: 1.5\ng: 1e3\nh: .5\ni: 1.", "{f: 1.5, g: 1000, h: 0.5, i: 1}"),
            ("o: 0o17\nx: 0x1f\nn: -3", "{o: 15, x: 31, n: -3}"),
            ("s: [a, 'b', 3]", "{s: [\"a\", \"b\", 3]}"),
            ("m:\n  - k: v\n  - k2: v2", "{m: [{k: \"v\"}, {k2: \"v2\"}]}"),
            ("t: !!str 42", "{t: \"42\"}"),
            ("c: \"${A:-x}\"", "{c: \"${A:-x}\"}"),
            // Anchors, aliases and merge keys.
            (
                "base: &b {image: busybox, restart: always}\nweb:\n  <<: *b\n  restart: 'no'",
                "{base: {image: \"busybox\", restart: \"always\"}, web: {restart: \"no\", image: \"busybox\"}}",
            ),
            (
                "a: &a {x: 1}\nb: &b {x: 2, y: 2}\nc: {<<: [*a, *b]}",
                "{a: {x: 1}, b: {x: 2, y: 2}, c: {x: 1, y: 2}}",
            ),
            ("l: &l [1, 2]\nm: *l", "{l: [1, 2], m: [1, 2]}"),
            // Null takes Compose's meaning.
            ("volumes:\n  db:\n  logs: {}", "{volumes: {db: {}, logs: {}}}"),
            (
                "services:\n  web:\n    image: x\n    command:\n    networks:\n      front:",
                "{services: {web: {image: \"x\", networks: {front: {}}}}}",
            ),
            (
                "services:\n  web:\n    environment:\n      A: 1\n      B:",
                "{services: {web: {environment: [\"A=1\", \"B\"]}}}",
            ),
            // Extensions go except in free-form mappings; version goes.
            (
                "version: '3.8'\nx-common: {a: 1}\nservices:\n  web:\n    x-note: hi\n    labels: {x-team: core}",
                "{services: {web: {labels: {x-team: \"core\"}}}}",
            ),
            ("", "{}"),
        ];
        for (yaml, want) in cases {
            let parsed = parse(yaml, 0).unwrap_or_else(|e| panic!("{yaml:?}: {e:?}"));
            assert_eq!(show(&parsed.node), *want, "{yaml:?}");
        }
    }

    #[test]
    fn version_is_noted_where_it_stands() {
        let parsed = parse("services: {}\nversion: '3'\n", 0).unwrap();
        assert_eq!(parsed.notes.len(), 1);
        assert_eq!(parsed.notes[0].0.start, 13);
        assert!(parsed.notes[0].1.contains("obsolete"));
    }

    #[test]
    fn spans_point_at_keys_and_values() {
        let text = "services:\n  web:\n    image: busybox\n";
        let node = parse(text, 3).unwrap().node;
        let web = &node.get("services").unwrap().node.get("web").unwrap().node;
        let image = web.get("image").unwrap();
        assert_eq!(&text[image.key_span.start..image.key_span.end], "image");
        assert_eq!(&text[image.node.span.start..image.node.span.end], "busybox");
        assert_eq!(image.node.span.file, 3);
    }

    #[test]
    fn bad_documents_are_errors_with_a_place() {
        let cases: &[(&str, &str, usize)] = &[
            ("a: 1\na: 2\n", "given twice", 5),
            ("a: [1, 2\n", "", 0),
            ("a: *nope\n", "anchor", 3),
            ("a: {<<: 1}\n", "merge key", 0),
            ("? [a, b]\n: 1\n", "plain value", 2),
        ];
        for (yaml, needle, _) in cases {
            let e = parse(yaml, 0).unwrap_err();
            assert!(e.message.contains(needle), "{yaml:?}: {}", e.message);
        }
        let e = parse("a: 1\na: 2\n", 0).unwrap_err();
        assert_eq!(e.span.start, 5, "the second `a`");
    }

    #[test]
    fn a_billion_laughs_is_refused_quickly() {
        let mut doc = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..10 {
            let prev = i - 1;
            doc.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let started = std::time::Instant::now();
        let e = parse(&doc, 0).unwrap_err();
        assert!(e.message.contains("YAML bomb"), "{}", e.message);
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }
}
