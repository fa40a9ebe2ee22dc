//! A serde `Deserializer` over the spanned tree of [`super::source`].
//!
//! The manifest types are ordinary `#[derive(Deserialize)]` structs with
//! `deny_unknown_fields`; this deserializer feeds them from the interpolated
//! tree and, as an error travels up from the innermost value that caused it,
//! stamps it with that value's key path and span. So serde's own messages
//! ("missing field", "invalid type", "unknown field") and the custom ones of
//! berth's value types ("invalid port ...") all come out as
//! `FILE:LINE:COL: services.web.ports[0]: ...`. Unknown keys get a "did you
//! mean" from `strsim` against the keys serde says it expected.

use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use super::source::{Entry, KeyPath, Node, Span, Value};

/// A deserialization error with the place it happened, once known.
#[derive(Debug, Clone)]
pub struct DeError {
    pub message: String,
    pub span: Option<Span>,
    pub path: Option<KeyPath>,
}

impl DeError {
    fn at(mut self, span: Span, path: &KeyPath) -> Self {
        if self.span.is_none() {
            self.span = Some(span);
            self.path = Some(path.clone());
        }
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

/// The closest of `candidates` to `word`, if close enough to suggest.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .filter(|c| {
            strsim::jaro_winkler(word, c) >= 0.88
                || strsim::damerau_levenshtein(word, c) <= (c.len() / 3).max(1)
        })
        .min_by(|a, b| {
            let key = |c: &str| {
                (
                    strsim::damerau_levenshtein(word, c),
                    -strsim::jaro_winkler(word, c),
                )
            };
            key(a)
                .partial_cmp(&key(b))
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .copied()
}

fn one_of(expected: &[&str]) -> String {
    match expected {
        [] => "no keys here".to_string(),
        [one] => format!("`{one}`"),
        many => {
            let list: Vec<String> = many.iter().map(|e| format!("`{e}`")).collect();
            format!("one of {}", list.join(", "))
        }
    }
}

fn toml_unexpected(unexp: de::Unexpected<'_>) -> String {
    match unexp {
        de::Unexpected::Map => "table".to_string(),
        de::Unexpected::Seq => "array".to_string(),
        de::Unexpected::Signed(i) => format!("integer `{i}`"),
        de::Unexpected::Unsigned(i) => format!("integer `{i}`"),
        de::Unexpected::Float(f) => format!("float `{f}`"),
        de::Unexpected::Str(s) => format!("string {s:?}"),
        other => other.to_string(),
    }
}

/// serde's names for what it expected, in TOML's words.
fn toml_expected(exp: &dyn de::Expected) -> String {
    let text = exp.to_string();
    match text.as_str() {
        "a map" => "a table".into(),
        "a sequence" => "an array".into(),
        "u8" | "u16" | "u32" | "u64" | "usize" => "a non-negative integer".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "an integer".into(),
        "f32" | "f64" => "a number".into(),
        "a boolean" | "a string" => text,
        _ => text,
    }
}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            span: None,
            path: None,
        }
    }

    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::custom(format_args!(
            "wrong type: found {}, expected {}",
            toml_unexpected(unexp),
            toml_expected(exp)
        ))
    }

    fn invalid_value(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::custom(format_args!(
            "invalid value: {}, expected {}",
            toml_unexpected(unexp),
            toml_expected(exp)
        ))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        match did_you_mean(field, expected) {
            Some(m) => Self::custom(format_args!("unknown key `{field}`, did you mean `{m}`?")),
            None => Self::custom(format_args!(
                "unknown key `{field}`, expected {}",
                one_of(expected)
            )),
        }
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        match did_you_mean(variant, expected) {
            Some(m) => Self::custom(format_args!(
                "unknown value {variant:?}, did you mean {m:?}? (expected {})",
                one_of(expected)
            )),
            None => Self::custom(format_args!(
                "unknown value {variant:?}, expected {}",
                one_of(expected)
            )),
        }
    }

    fn missing_field(field: &'static str) -> Self {
        Self::custom(format_args!("missing key `{field}`"))
    }

    fn duplicate_field(field: &'static str) -> Self {
        Self::custom(format_args!("duplicate key `{field}`"))
    }
}

/// Deserializes `T` from a node, with errors carrying span and key path.
pub fn from_node<'de, T: de::Deserialize<'de>>(node: &'de Node) -> Result<T, DeError> {
    let root = KeyPath::root();
    T::deserialize(NodeDe {
        node,
        path: root.clone(),
    })
    .map_err(|e| e.at(node.span, &root))
}

/// Deserializes `T` from a node that sits at `path` in the manifest.
pub fn from_node_at<'de, T: de::Deserialize<'de>>(
    node: &'de Node,
    path: &KeyPath,
) -> Result<T, DeError> {
    T::deserialize(NodeDe {
        node,
        path: path.clone(),
    })
    .map_err(|e| e.at(node.span, path))
}

/// The deserializer for one node at one key path.
pub struct NodeDe<'a> {
    pub node: &'a Node,
    pub path: KeyPath,
}

impl<'de> de::Deserializer<'de> for NodeDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let span = self.node.span;
        let result = match &self.node.value {
            Value::String(s) => visitor.visit_str(s),
            Value::Integer(i) => visitor.visit_i64(*i),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Boolean(b) => visitor.visit_bool(*b),
            Value::Datetime(d) => Err(de::Error::invalid_type(
                de::Unexpected::Other(&format!("datetime {d}")),
                &visitor,
            )),
            Value::Array(items) => visitor.visit_seq(SeqAccess {
                items: items.iter(),
                index: 0,
                path: &self.path,
            }),
            Value::Table(entries) => visitor.visit_map(MapAccess {
                entries: entries.iter(),
                current: None,
                path: &self.path,
            }),
        };
        result.map_err(|e| e.at(span, &self.path))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let span = self.node.span;
        match &self.node.value {
            Value::String(s) => visitor
                .visit_enum(s.as_str().into_deserializer())
                .map_err(|e: DeError| e.at(span, &self.path)),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

struct SeqAccess<'a, 'p> {
    items: std::slice::Iter<'a, Node>,
    index: usize,
    path: &'p KeyPath,
}

impl<'de> de::SeqAccess<'de> for SeqAccess<'de, '_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(node) = self.items.next() else {
            return Ok(None);
        };
        let path = self.path.index(self.index);
        self.index += 1;
        seed.deserialize(NodeDe {
            node,
            path: path.clone(),
        })
        .map(Some)
        .map_err(|e| e.at(node.span, &path))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapAccess<'a, 'p> {
    entries: std::slice::Iter<'a, Entry>,
    current: Option<&'a Entry>,
    path: &'p KeyPath,
}

impl<'de> de::MapAccess<'de> for MapAccess<'de, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some(entry) = self.entries.next() else {
            return Ok(None);
        };
        self.current = Some(entry);
        let path = self.path.key(&entry.key);
        seed.deserialize(KeyDe(&entry.key))
            .map(Some)
            .map_err(|e| e.at(entry.key_span, &path))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let entry = self.current.take().expect("value requested before key");
        let path = self.path.key(&entry.key);
        seed.deserialize(NodeDe {
            node: &entry.node,
            path: path.clone(),
        })
        .map_err(|e| e.at(entry.node.span, &path))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

struct KeyDe<'a>(&'a str);

impl<'de> de::Deserializer<'de> for KeyDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_borrowed_str(self.0)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_enum(self.0.into_deserializer())
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct seq tuple tuple_struct map struct identifier
        ignored_any
    }
}
