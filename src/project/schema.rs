//! The JSON Schema of `berth.toml`, generated from the manifest types.
//!
//! `schema/berth.schema.json` is this schema, committed so editors can use
//! it (taplo: `#:schema ./schema/berth.schema.json` at the top of a
//! manifest, or a `taplo.toml` rule). It is JSON Schema draft-07
//! (<https://json-schema.org/draft-07>), generated with schemars from the
//! same serde types that read manifests; the doc comments on fields are the
//! descriptions. TOML has no null, so optional keys are simply not
//! required. Regenerate with `berth __schema > schema/berth.schema.json`; a
//! test fails when the committed file is stale.

use schemars::gen::SchemaSettings;

use super::manifest::Manifest;

/// The schema as pretty JSON text, ending in a newline.
pub fn schema_json() -> String {
    let settings = SchemaSettings::draft07().with(|s| {
        s.option_add_null_type = false;
        s.option_nullable = false;
    });
    let schema = settings.into_generator().into_root_schema_for::<Manifest>();
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serialises");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn committed_path() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/berth.schema.json")
    }

    #[test]
    fn committed_schema_is_current() {
        let committed = std::fs::read_to_string(committed_path()).unwrap_or_default();
        assert!(
            committed == schema_json(),
            "schema/berth.schema.json is stale: regenerate it with `cargo run -q -- __schema > schema/berth.schema.json`"
        );
    }

    fn toml_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                toml_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "toml")
                && !matches!(
                    path.file_name().and_then(|n| n.to_str()),
                    Some("case.toml" | "plan.toml")
                )
            {
                out.push(path);
            }
        }
    }

    /// Every example and valid test manifest satisfies the schema, and so
    /// does the canonical form `berth config` prints.
    #[test]
    fn valid_manifests_satisfy_the_schema() {
        let schema: serde_json::Value = serde_json::from_str(&schema_json()).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for dir in ["examples", "tests/manifests/ok", "tests/plans"] {
            toml_files(&root.join(dir), &mut files);
        }
        assert!(files.len() >= 10, "{files:?}");
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap();
            let value: toml::Value = toml::from_str(&text).unwrap();
            let json = serde_json::to_value(value).unwrap();
            let errors: Vec<String> = validator
                .iter_errors(&json)
                .map(|e| format!("{} at {}", e, e.instance_path))
                .collect();
            assert!(
                errors.is_empty(),
                "{}: {}",
                file.display(),
                errors.join("; ")
            );
        }
        for dir in std::fs::read_dir(root.join("tests/manifests/ok")).unwrap() {
            let dir = dir.unwrap().path();
            let loaded = crate::project::tests::load_case(&dir);
            let canonical =
                crate::project::canonical::canonical_manifest(&loaded.0, &loaded.1).unwrap();
            let json = crate::project::canonical::to_json(&canonical);
            let errors: Vec<String> = validator
                .iter_errors(&json)
                .map(|e| format!("{} at {}", e, e.instance_path))
                .collect();
            assert!(
                errors.is_empty(),
                "canonical form of {}: {}",
                dir.display(),
                errors.join("; ")
            );
        }
    }

    /// The schema rejects some of what the loader rejects, so editors flag it.
    #[test]
    fn schema_rejects_unknown_keys_and_bad_shapes() {
        let schema: serde_json::Value = serde_json::from_str(&schema_json()).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        for bad in [
            "[services.web]\nimag = \"busybox\"\n",
            "[services.web]\nimage = \"busybox\"\nreplicas = \"two\"\n",
            "[services.web]\nimage = \"busybox\"\nrestart = \"sometimes\"\n",
            "[services.web]\nimage = \"busybox\"\nstop_grace_period = \"soon\"\n",
            "[services.web]\nimage = \"busybox\"\nports = [{ target = 80, publised = 8080 }]\n",
            "[service.web]\nimage = \"busybox\"\n",
        ] {
            let value: toml::Value = toml::from_str(bad).unwrap();
            let json = serde_json::to_value(value).unwrap();
            assert!(!validator.is_valid(&json), "schema accepted:\n{bad}");
        }
    }
}
