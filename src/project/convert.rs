//! `berth convert`: a Compose file (or several, merged) written out as a
//! `berth.toml`.
//!
//! Both formats are read into the same spanned tree ([`super::source`],
//! [`super::yaml`]), and berth's keys are Compose's written the TOML way, so
//! the conversion is that tree written as TOML *before* interpolation:
//! `${VAR:-x}` stays a reference, and loading the converted file gives the
//! same project, and the same config hashes, as loading the Compose file.
//! What the YAML reader adapted (an ignored `version`, `null`s given their
//! Compose meaning) is said in comments at the top; keys that berth does not
//! know are written through unchanged, so nothing is dropped silently, and
//! the caller reports them (the converted file does not load until they are
//! removed or berth learns them).

use super::source::{Node, Value};

/// The TOML text for `tree`, with `#:schema` first and `notes` as comments.
pub fn to_toml(tree: &Node, from: &str, notes: &[String]) -> String {
    let mut out = String::from("#:schema ./berth.schema.json\n");
    out.push_str(&format!(
        "# Converted from {from} by `berth convert`; `berth schema > berth.schema.json`\n# writes the schema editors use to check this file.\n"
    ));
    for n in notes {
        out.push_str(&format!("# note: {n}\n"));
    }
    out.push('\n');
    let value = to_value(tree);
    let body = match value {
        toml::Value::Table(t) => toml::to_string_pretty(&t).unwrap_or_default(),
        _ => String::new(),
    };
    out.push_str(&body);
    out
}

fn to_value(node: &Node) -> toml::Value {
    match &node.value {
        Value::String(s) => toml::Value::String(s.clone()),
        Value::Integer(i) => toml::Value::Integer(*i),
        Value::Float(f) => toml::Value::Float(*f),
        Value::Boolean(b) => toml::Value::Boolean(*b),
        Value::Datetime(d) => toml::Value::String(d.clone()),
        Value::Array(items) => toml::Value::Array(items.iter().map(to_value).collect()),
        Value::Table(entries) => toml::Value::Table(
            entries
                .iter()
                .map(|e| (e.key.clone(), to_value(&e.node)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_trees_come_out_as_toml_that_parses_to_the_same_tree() {
        let yaml = "services:\n  web:\n    image: busybox\n    ports: [\"8080:80\"]\n    environment:\n      A: \"${A:-1}\"\n    healthcheck:\n      test: [CMD, \"true\"]\n      retries: 3\nvolumes:\n  data:\n";
        let tree = super::super::yaml::parse(yaml, 0).unwrap().node;
        let text = to_toml(&tree, "compose.yaml", &["a note".into()]);
        assert!(text.starts_with("#:schema "), "{text}");
        assert!(text.contains("# note: a note"), "{text}");
        let back = super::super::source::parse(&text, 0).unwrap();
        let strip = |n: &Node| to_value(n);
        assert_eq!(strip(&back), strip(&tree), "{text}");
    }
}
