//! The keys Compose lets you write in more than one shape, each read into
//! one canonical shape (which is also how `berth config` prints it).
//!
//! - `command`/`entrypoint`: an array, or a string split as a POSIX shell
//!   would split it (quotes and backslashes, no expansion).
//! - `environment`/`labels`/`build.args`: a table, or a list of `K=V` (a bare
//!   `K` in `environment` takes its value from berth's own environment).
//! - `env_file`, `profiles`: a string or a list of strings.
//! - `build`: a context path, or a table.
//! - `depends_on`: a list of services, or a table whose values are a
//!   condition (`started`, `healthy`, `completed_successfully`) or Compose's
//!   `{ condition = "service_healthy", required, restart }`.
//! - `networks`: a list of names, or a table of names to `{ aliases }`.
//! - healthcheck `test`: an array `["CMD", ...]`/`["CMD-SHELL", "..."]`/
//!   `["NONE"]`, or a string (run with the container's shell).
//! - `restart`: `no`, `always`, `on-failure[:N]`, `unless-stopped`.
//! - `stop_signal`: a signal name (`SIGTERM`, `TERM`) or number.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use schemars::gen::SchemaGenerator;
use schemars::schema::Schema;
use schemars::JsonSchema;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::units::schema;

/// A command line: an array of arguments, or a string split like a shell.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(transparent)]
pub struct CommandLine(pub Vec<String>);

impl<'de> Deserialize<'de> for CommandLine {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CommandLine;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of strings or a command string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<CommandLine, E> {
                shell_words::split(s)
                    .map(CommandLine)
                    .map_err(|e| E::custom(format!("invalid command string {s:?}: {e}")))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<CommandLine, A::Error> {
                Vec::<String>::deserialize(de::value::SeqAccessDeserializer::new(seq))
                    .map(CommandLine)
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for CommandLine {
    fn schema_name() -> String {
        "CommandLine".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schema(serde_json::json!({
            "description": "A command: an array of arguments, or a string split as a shell would split it",
            "anyOf": [
                { "type": "string" },
                { "type": "array", "items": { "type": "string" } }
            ]
        }))
    }
}

/// One or more strings: `"a"` or `["a", "b"]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(transparent)]
pub struct StringList(pub Vec<String>);

impl<'de> Deserialize<'de> for StringList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StringList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<StringList, E> {
                Ok(StringList(vec![s.to_string()]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<StringList, A::Error> {
                Vec::<String>::deserialize(de::value::SeqAccessDeserializer::new(seq))
                    .map(StringList)
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for StringList {
    fn schema_name() -> String {
        "StringList".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schema(serde_json::json!({
            "anyOf": [
                { "type": "string" },
                { "type": "array", "items": { "type": "string" } }
            ]
        }))
    }
}

/// A scalar written where a string is meant: numbers and booleans become
/// their text (`PORT = 8080` is `"8080"`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Scalar, E> {
                Ok(Scalar(s.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A mapping of names to values: a table, or a list of `K=V` strings. A
/// list item without `=` has no value (`None`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyValues(pub BTreeMap<String, Option<String>>);

impl KeyValues {
    /// The values, a name without one taking it from `vars` (the shell's
    /// environment over `.env`, as Compose does for build args and exec
    /// environments); names in neither are left out.
    pub fn resolve(&self, vars: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        self.0
            .iter()
            .filter_map(|(k, v)| {
                v.clone()
                    .or_else(|| vars.get(k).cloned())
                    .map(|v| (k.clone(), v))
            })
            .collect()
    }
}

impl<'de> Deserialize<'de> for KeyValues {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyValues;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table or an array of \"KEY=VALUE\" strings")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<KeyValues, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    let Scalar(value) = map.next_value()?;
                    out.insert(key, Some(value));
                }
                Ok(KeyValues(out))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<KeyValues, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(item) = seq.next_element::<String>()? {
                    let (k, v) = match item.split_once('=') {
                        Some((k, v)) => (k.to_string(), Some(v.to_string())),
                        None => (item.clone(), None),
                    };
                    if k.is_empty() {
                        return Err(de::Error::custom(format!(
                            "invalid entry {item:?}: expected KEY=VALUE"
                        )));
                    }
                    if out.insert(k.clone(), v).is_some() {
                        return Err(de::Error::custom(format!("duplicate key {k:?}")));
                    }
                }
                Ok(KeyValues(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for KeyValues {
    /// As a table; a valueless entry prints as an empty string.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v.as_deref().unwrap_or(""))))
    }
}

impl JsonSchema for KeyValues {
    fn schema_name() -> String {
        "KeyValues".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schema(serde_json::json!({
            "description": "A table of names to values, or an array of \"KEY=VALUE\" strings",
            "anyOf": [
                { "type": "object", "additionalProperties": { "type": ["string", "number", "boolean"] } },
                { "type": "array", "items": { "type": "string" } }
            ]
        }))
    }
}

/// How to build a service's image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a build table")]
pub struct BuildTable {
    /// The build context directory, relative to the project directory.
    #[serde(default = "dot")]
    pub context: String,
    /// The Dockerfile, relative to the context (default `Dockerfile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// Build arguments (`ARG`s).
    #[serde(default, skip_serializing_if = "is_empty_kv")]
    pub args: KeyValues,
    /// The stage to build in a multi-stage Dockerfile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

fn dot() -> String {
    ".".into()
}

pub(crate) fn is_empty_kv(kv: &KeyValues) -> bool {
    kv.0.is_empty()
}

/// `build`: a context path or a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Build(pub BuildTable);

impl<'de> Deserialize<'de> for Build {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Build;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a context path or a build table")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Build, E> {
                Ok(Build(BuildTable {
                    context: s.to_string(),
                    dockerfile: None,
                    args: KeyValues::default(),
                    target: None,
                }))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Build, A::Error> {
                BuildTable::deserialize(de::value::MapAccessDeserializer::new(map)).map(Build)
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Build {
    fn schema_name() -> String {
        "Build".into()
    }
    fn json_schema(gen: &mut SchemaGenerator) -> Schema {
        let table = gen.subschema_for::<BuildTable>();
        schema(serde_json::json!({
            "description": "How to build the image: a context directory, or a table",
            "anyOf": [ { "type": "string" }, table ]
        }))
    }
}

/// What a dependent waits for before it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The dependency's containers have started.
    #[default]
    Started,
    /// The dependency's health check passes.
    Healthy,
    /// The dependency ran to completion and exited 0.
    CompletedSuccessfully,
}

const CONDITIONS: &[&str] = &[
    "started",
    "healthy",
    "completed_successfully",
    "service_started",
    "service_healthy",
    "service_completed_successfully",
];

impl JsonSchema for Condition {
    fn schema_name() -> String {
        "Condition".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schema(serde_json::json!({
            "type": "string",
            "description": "What to wait for: started, healthy (the health check passes) or completed_successfully (exited 0); Compose's service_ prefixed names are accepted too",
            "enum": CONDITIONS
        }))
    }
}

impl FromStr for Condition {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.strip_prefix("service_").unwrap_or(s) {
            "started" => Ok(Condition::Started),
            "healthy" => Ok(Condition::Healthy),
            "completed_successfully" => Ok(Condition::CompletedSuccessfully),
            _ => Err(match crate::project::de::did_you_mean(s, CONDITIONS) {
                Some(m) => format!("unknown condition {s:?}, did you mean {m:?}?"),
                None => format!(
                    "unknown condition {s:?}, expected started, healthy or completed_successfully"
                ),
            }),
        }
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Condition::Started => "started",
            Condition::Healthy => "healthy",
            Condition::CompletedSuccessfully => "completed_successfully",
        })
    }
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// A dependency on another service, in long form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a dependency table with `condition`")]
pub struct Dependency {
    /// `started` (default), `healthy` or `completed_successfully` (Compose's
    /// `service_` prefixed names are accepted too).
    #[serde(default)]
    pub condition: Condition,
    /// When false, a dependency that is not part of the project is ignored
    /// instead of being an error.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub required: bool,
    /// Restart this service after its dependency is recreated or restarted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restart: bool,
}

impl Default for Dependency {
    fn default() -> Self {
        Dependency {
            condition: Condition::Started,
            required: true,
            restart: false,
        }
    }
}

struct DependencyValue(Dependency);

impl<'de> Deserialize<'de> for DependencyValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = DependencyValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a condition (started, healthy, completed_successfully) or a table with `condition`")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<DependencyValue, E> {
                let condition = s.parse().map_err(E::custom)?;
                Ok(DependencyValue(Dependency {
                    condition,
                    ..Dependency::default()
                }))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<DependencyValue, A::Error> {
                Dependency::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(DependencyValue)
            }
        }
        d.deserialize_any(V)
    }
}

/// `depends_on`: a list of service names or a table of name to condition.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(transparent)]
pub struct DependsOn(pub BTreeMap<String, Dependency>);

impl<'de> Deserialize<'de> for DependsOn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = DependsOn;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of service names or a table of service names to conditions")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<DependsOn, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(name) = seq.next_element::<String>()? {
                    if out.insert(name.clone(), Dependency::default()).is_some() {
                        return Err(de::Error::custom(format!("duplicate dependency {name:?}")));
                    }
                }
                Ok(DependsOn(out))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<DependsOn, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(name) = map.next_key::<String>()? {
                    let DependencyValue(dep) = map.next_value()?;
                    out.insert(name, dep);
                }
                Ok(DependsOn(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for DependsOn {
    fn schema_name() -> String {
        "DependsOn".into()
    }
    fn json_schema(gen: &mut SchemaGenerator) -> Schema {
        let dep = gen.subschema_for::<Dependency>();
        schema(serde_json::json!({
            "description": "Services this one needs: a list of names, or a table of names to a condition (\"started\", \"healthy\", \"completed_successfully\") or a dependency table",
            "anyOf": [
                { "type": "array", "items": { "type": "string" } },
                { "type": "object", "additionalProperties": { "anyOf": [
                    { "type": "string", "enum": CONDITIONS },
                    dep
                ] } }
            ]
        }))
    }
}

/// How a service joins one network.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a table with `aliases` or `ipv4_address`"
)]
pub struct ServiceNetwork {
    /// Extra names the service is known by on this network (the service name always is).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// A fixed IPv4 address on this network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<std::net::Ipv4Addr>,
}

/// `networks` of a service: a list of names or a table of name to options.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(transparent)]
pub struct ServiceNetworks(pub BTreeMap<String, ServiceNetwork>);

impl<'de> Deserialize<'de> for ServiceNetworks {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ServiceNetworks;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of network names or a table of network names to options")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<ServiceNetworks, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(name) = seq.next_element::<String>()? {
                    if out
                        .insert(name.clone(), ServiceNetwork::default())
                        .is_some()
                    {
                        return Err(de::Error::custom(format!("duplicate network {name:?}")));
                    }
                }
                Ok(ServiceNetworks(out))
            }
            fn visit_map<A: de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<ServiceNetworks, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(name) = map.next_key::<String>()? {
                    out.insert(name, map.next_value()?);
                }
                Ok(ServiceNetworks(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for ServiceNetworks {
    fn schema_name() -> String {
        "ServiceNetworks".into()
    }
    fn json_schema(gen: &mut SchemaGenerator) -> Schema {
        let net = gen.subschema_for::<ServiceNetwork>();
        schema(serde_json::json!({
            "description": "Networks the service joins: a list of names, or a table of names to options",
            "anyOf": [
                { "type": "array", "items": { "type": "string" } },
                { "type": "object", "additionalProperties": net }
            ]
        }))
    }
}

/// A health check command in canonical form: `["CMD", args...]`,
/// `["CMD-SHELL", "command"]` or `["NONE"]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct HealthTest(pub Vec<String>);

impl<'de> Deserialize<'de> for HealthTest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = HealthTest;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a shell command string or an array starting with \"CMD\", \"CMD-SHELL\" or \"NONE\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<HealthTest, E> {
                Ok(HealthTest(vec!["CMD-SHELL".into(), s.to_string()]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<HealthTest, A::Error> {
                let items = Vec::<String>::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                match items.first().map(String::as_str) {
                    Some("NONE") if items.len() == 1 => Ok(HealthTest(items)),
                    Some("CMD") if items.len() >= 2 => Ok(HealthTest(items)),
                    Some("CMD-SHELL") if items.len() == 2 => Ok(HealthTest(items)),
                    _ => Err(de::Error::custom(format!(
                        "invalid health check test {items:?}: expected [\"CMD\", args...], [\"CMD-SHELL\", \"command\"] or [\"NONE\"]"
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for HealthTest {
    fn schema_name() -> String {
        "HealthTest".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schema(serde_json::json!({
            "description": "The check: a shell command string, or [\"CMD\", args...], [\"CMD-SHELL\", \"command\"] or [\"NONE\"]",
            "anyOf": [
                { "type": "string" },
                { "type": "array", "minItems": 1, "items": { "type": "string" } }
            ]
        }))
    }
}

/// When the supervisor restarts a container that exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Restart {
    /// Never (the default).
    #[default]
    No,
    /// Always, also after a reboot.
    Always,
    /// When it exits non-zero, at most `N` times if given.
    OnFailure(Option<u32>),
    /// Always, unless it was stopped by the user.
    UnlessStopped,
}

impl FromStr for Restart {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("invalid restart policy {s:?}: expected no, always, on-failure[:N] or unless-stopped")
        };
        match s {
            "no" | "" => Ok(Restart::No),
            "always" => Ok(Restart::Always),
            "unless-stopped" => Ok(Restart::UnlessStopped),
            "on-failure" => Ok(Restart::OnFailure(None)),
            _ => match s.strip_prefix("on-failure:") {
                Some(n) => n
                    .parse()
                    .map(|n| Restart::OnFailure(Some(n)))
                    .map_err(|_| bad()),
                None => Err(bad()),
            },
        }
    }
}

impl fmt::Display for Restart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Restart::No => f.write_str("no"),
            Restart::Always => f.write_str("always"),
            Restart::UnlessStopped => f.write_str("unless-stopped"),
            Restart::OnFailure(None) => f.write_str("on-failure"),
            Restart::OnFailure(Some(n)) => write!(f, "on-failure:{n}"),
        }
    }
}

impl<'de> Deserialize<'de> for Restart {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(de::Error::custom)
    }
}

impl Serialize for Restart {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for Restart {
    fn schema_name() -> String {
        "Restart".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schema(serde_json::json!({
            "type": "string",
            "description": "Restart policy: no, always, on-failure[:N] or unless-stopped",
            "pattern": "^(no|always|unless-stopped|on-failure(:[0-9]+)?)$"
        }))
    }
}

/// A signal, stored by its canonical name (`SIGTERM`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalName(pub String);

impl FromStr for SignalName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let sig = if let Ok(n) = s.parse::<i32>() {
            nix::sys::signal::Signal::try_from(n).ok()
        } else {
            let upper = s.to_ascii_uppercase();
            let name = if upper.starts_with("SIG") {
                upper
            } else {
                format!("SIG{upper}")
            };
            nix::sys::signal::Signal::from_str(&name).ok()
        };
        sig.map(|s| SignalName(s.as_str().to_string()))
            .ok_or_else(|| {
                format!("invalid signal {s:?}: expected a name like SIGTERM or TERM, or a number")
            })
    }
}

impl<'de> Deserialize<'de> for SignalName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SignalName;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a signal name like \"SIGTERM\" or a signal number")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<SignalName, E> {
                s.parse().map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SignalName, E> {
                v.to_string().parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for SignalName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl JsonSchema for SignalName {
    fn schema_name() -> String {
        "SignalName".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schema(serde_json::json!({
            "description": "A signal: a name like \"SIGTERM\" or \"TERM\", or a number",
            "anyOf": [ { "type": "string" }, { "type": "integer", "minimum": 1 } ]
        }))
    }
}

/// A CPU quota in CPUs (`0.5` is half a CPU), from a number or a string.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct Cpus(pub f64);

impl<'de> Deserialize<'de> for Cpus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Cpus;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a positive number of CPUs like 0.5")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Cpus, E> {
                if v.is_finite() && v > 0.0 {
                    Ok(Cpus(v))
                } else {
                    Err(E::custom(format!(
                        "invalid cpus {v}: must be a positive number"
                    )))
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Cpus, E> {
                self.visit_f64(v as f64)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Cpus, E> {
                self.visit_f64(v as f64)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Cpus, E> {
                let v: f64 = s.parse().map_err(|_| {
                    E::custom(format!("invalid cpus {s:?}: expected a number like 0.5"))
                })?;
                self.visit_f64(v)
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Cpus {
    fn schema_name() -> String {
        "Cpus".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schema(serde_json::json!({
            "description": "CPUs the service may use, like 0.5 or 2",
            "anyOf": [
                { "type": "number", "exclusiveMinimum": 0 },
                { "type": "string", "pattern": "^[0-9]*\\.?[0-9]+$" }
            ]
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies() {
        for s in [
            "no",
            "always",
            "on-failure",
            "on-failure:3",
            "unless-stopped",
        ] {
            assert_eq!(s.parse::<Restart>().unwrap().to_string(), s);
        }
        assert!("sometimes".parse::<Restart>().is_err());
        assert!("on-failure:x".parse::<Restart>().is_err());
    }

    #[test]
    fn signals() {
        for (s, want) in [
            ("SIGTERM", "SIGTERM"),
            ("term", "SIGTERM"),
            ("9", "SIGKILL"),
            ("SIGUSR1", "SIGUSR1"),
        ] {
            assert_eq!(s.parse::<SignalName>().unwrap().0, want);
        }
        assert!("SIGNOPE".parse::<SignalName>().is_err());
        assert!("999".parse::<SignalName>().is_err());
    }

    #[test]
    fn conditions() {
        assert_eq!(
            "service_healthy".parse::<Condition>(),
            Ok(Condition::Healthy)
        );
        assert_eq!(
            "helthy".parse::<Condition>().unwrap_err(),
            "unknown condition \"helthy\", did you mean \"healthy\"?"
        );
    }
}
