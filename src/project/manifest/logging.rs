//! A service's `logging` key, Compose's shape in TOML:
//!
//! ```toml
//! [services.web.logging]
//! driver = "json-file"
//! options = { max-size = "10m", max-file = "3" }
//! ```
//!
//! berth writes Docker's json-file logs only; its options bound them (see
//! `runtime::log`). Values are checked here, so a bad one is a manifest
//! error with its line and column, found by `plan` before `up` runs.

use std::fmt;

use schemars::gen::SchemaGenerator;
use schemars::schema::Schema;
use schemars::JsonSchema;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::units::{schema, ByteSize};

/// How the containers' output is logged.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a logging table")]
pub struct Logging {
    /// The logging driver: "json-file" (the only one berth has; the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<LogDriver>,
    /// The json-file driver's options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<LogOptions>,
}

/// A logging driver berth has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(expecting = "a logging driver: \"json-file\"")]
pub enum LogDriver {
    #[serde(rename = "json-file")]
    JsonFile,
}

/// json-file's bounds (default: `[log]` of ROOT/config.toml, else 10m and 3).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a table of json-file options")]
pub struct LogOptions {
    /// Rotate the log when it reaches this size, like "10m".
    #[serde(rename = "max-size", default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<ByteSize>,
    /// How many log files to keep, the current one included (at least 1).
    #[serde(rename = "max-file", default, skip_serializing_if = "Option::is_none")]
    pub max_file: Option<FileCount>,
}

/// A number of files, at least 1: an integer or a string of one (Compose
/// writes `max-file = "3"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileCount(pub u32);

impl<'de> Deserialize<'de> for FileCount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = FileCount;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number of files (at least 1), like 3 or \"3\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<FileCount, E> {
                u32::try_from(v)
                    .ok()
                    .filter(|n| *n >= 1)
                    .map(FileCount)
                    .ok_or_else(|| E::custom(format!("invalid max-file {v}: must be at least 1")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<FileCount, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(-1))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<FileCount, E> {
                s.trim()
                    .parse::<i64>()
                    .map_err(|_| E::custom(format!("invalid max-file {s:?}: expected a number")))
                    .and_then(|v| self.visit_i64(v))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for FileCount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(i64::from(self.0))
    }
}

impl JsonSchema for FileCount {
    fn schema_name() -> String {
        "FileCount".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schema(serde_json::json!({
            "description": "A number of files, at least 1: an integer or a string of one",
            "anyOf": [
                { "type": "integer", "minimum": 1 },
                { "type": "string", "pattern": "^[1-9][0-9]*$" }
            ]
        }))
    }
}
