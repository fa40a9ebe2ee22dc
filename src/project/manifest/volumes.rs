//! Service mounts: Compose's short `volumes` strings and long tables.
//!
//! Short syntax (<https://docs.docker.com/reference/compose-file/services/#volumes>):
//! `SOURCE:TARGET[:MODE]` or just `TARGET` (an anonymous volume). A source
//! that starts with `.`, `/` or `~` is a bind mount of a host path (relative
//! to the project directory); anything else names a volume of the project.
//! MODE is `ro` or `rw`. Long syntax: `{ type = "volume" | "bind" |
//! "tmpfs", source, target, read_only, bind = { create_host_path },
//! tmpfs = { size, mode } }`.

use std::fmt;

use schemars::gen::SchemaGenerator;
use schemars::schema::Schema;
use schemars::JsonSchema;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::units::{schema, ByteSize};

/// What kind of mount a `volumes` entry is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    /// A named (or anonymous) volume of the project.
    Volume,
    /// A host path.
    Bind,
    /// An in-memory filesystem.
    Tmpfs,
}

/// Options of a bind mount.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize, JsonSchema,
)]
#[serde(deny_unknown_fields, expecting = "a table of bind options")]
pub struct BindOptions {
    /// Create the host path as a directory when it does not exist (default true, as Compose's short syntax).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_host_path: Option<bool>,
}

/// Options of a volume mount.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize, JsonSchema,
)]
#[serde(deny_unknown_fields, expecting = "a table of volume options")]
pub struct VolumeOptions {
    /// Don't fill an empty volume with what the image has at the target (default false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nocopy: bool,
}

/// Options of a tmpfs mount.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize, JsonSchema,
)]
#[serde(deny_unknown_fields, expecting = "a table of tmpfs options")]
pub struct TmpfsOptions {
    /// Size limit, like "64m".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<ByteSize>,
    /// File mode of the mount's root, as an integer (e.g. 0o1777 written 1023).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

/// A mount of a service, in long form.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(
    deny_unknown_fields,
    expecting = "a mount table with `type` and `target`"
)]
pub struct Mount {
    /// `volume`, `bind` or `tmpfs`.
    #[serde(rename = "type")]
    pub kind: MountType,
    /// The volume name or host path; absent for tmpfs and anonymous volumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The absolute path inside the container.
    pub target: String,
    /// Mount read-only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    /// Bind mount options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<BindOptions>,
    /// Volume options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeOptions>,
    /// Tmpfs options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<TmpfsOptions>,
}

fn is_host_path(source: &str) -> bool {
    source.starts_with('.') || source.starts_with('/') || source.starts_with('~')
}

/// Parses the short syntax `[SOURCE:]TARGET[:MODE]`.
pub fn parse_volume_spec(spec: &str) -> Result<Mount, String> {
    let bad = |why: &str| format!("invalid volume {spec:?}: {why}");
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [t] => (None, *t, None),
        [s, t] => (Some(*s), *t, None),
        [s, t, m] => (Some(*s), *t, Some(*m)),
        _ => return Err(bad("expected [source:]target[:ro|rw]")),
    };
    if !target.starts_with('/') {
        return Err(bad("the target must be an absolute path in the container"));
    }
    let read_only = match mode {
        None | Some("rw") => false,
        Some("ro") => true,
        Some(m) => return Err(bad(&format!("unknown mode {m:?}, expected ro or rw"))),
    };
    let source = match source {
        Some("") => return Err(bad("empty source")),
        s => s,
    };
    let kind = match source {
        Some(s) if is_host_path(s) => MountType::Bind,
        _ => MountType::Volume,
    };
    if let (MountType::Volume, Some(name)) = (kind, source) {
        check_volume_name(name).map_err(|e| bad(&e))?;
    }
    Ok(Mount {
        kind,
        source: source.map(str::to_string),
        target: target.to_string(),
        read_only,
        bind: None,
        volume: None,
        tmpfs: None,
    })
}

/// Volume names as Docker accepts them: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn check_volume_name(name: &str) -> Result<(), String> {
    let ok = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "volume name {name:?} must match [a-zA-Z0-9][a-zA-Z0-9_.-]* (start a host path with ./ or /)"
        ))
    }
}

fn check_long(m: &Mount) -> Result<(), String> {
    if !m.target.starts_with('/') {
        return Err(format!(
            "invalid mount target {:?}: must be an absolute path in the container",
            m.target
        ));
    }
    match m.kind {
        MountType::Bind if m.source.is_none() => Err("a bind mount needs a `source`".into()),
        MountType::Tmpfs if m.source.is_some() => Err("a tmpfs mount takes no `source`".into()),
        MountType::Volume => match &m.source {
            Some(name) => check_volume_name(name),
            None => Ok(()),
        },
        _ => Ok(()),
    }?;
    if m.bind.is_some() && m.kind != MountType::Bind {
        return Err("`bind` options need type = \"bind\"".into());
    }
    if m.tmpfs.is_some() && m.kind != MountType::Tmpfs {
        return Err("`tmpfs` options need type = \"tmpfs\"".into());
    }
    Ok(())
}

/// A `volumes` entry as written: a short string or a long table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MountEntry(pub Mount);

impl<'de> Deserialize<'de> for MountEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MountEntry;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a volume string like \"data:/var/lib/data:ro\" or a mount table")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<MountEntry, E> {
                parse_volume_spec(s).map(MountEntry).map_err(E::custom)
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<MountEntry, A::Error> {
                let m = Mount::deserialize(de::value::MapAccessDeserializer::new(map))?;
                check_long(&m).map_err(de::Error::custom)?;
                Ok(MountEntry(m))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for MountEntry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl JsonSchema for MountEntry {
    fn schema_name() -> String {
        "MountEntry".into()
    }
    fn json_schema(gen: &mut SchemaGenerator) -> Schema {
        let long = gen.subschema_for::<Mount>();
        schema(serde_json::json!({
            "description": "A mount: \"[source:]target[:ro|rw]\" (a source starting with . / or ~ is a host path, otherwise a volume name) or a long table",
            "anyOf": [ { "type": "string" }, long ]
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_syntax() {
        let m = parse_volume_spec("data:/var/lib/data:ro").unwrap();
        assert_eq!(
            (m.kind, m.source.as_deref(), m.target.as_str(), m.read_only),
            (MountType::Volume, Some("data"), "/var/lib/data", true)
        );
        let m = parse_volume_spec("./src:/app").unwrap();
        assert_eq!((m.kind, m.read_only), (MountType::Bind, false));
        let m = parse_volume_spec("/cache").unwrap();
        assert_eq!((m.kind, m.source), (MountType::Volume, None));
        for bad in ["data:rel", "a:/b:rx", "a:/b:ro:x", ":/b", "bad name:/x"] {
            assert!(parse_volume_spec(bad).is_err(), "{bad}");
        }
    }
}
