//! `taplo check` (the TOML toolkit editors use) validates every example and
//! valid test manifest against the committed schema/berth.schema.json, and
//! rejects malformed ones, so the schema editors load is the one berth
//! enforces. taplo is installed by scripts/test.sh (`npm install -g @taplo/cli`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn manifests(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            manifests(&path, out);
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

fn taplo_check(files: &[PathBuf]) -> std::process::Output {
    let schema = format!(
        "file://{}",
        root().join("schema/berth.schema.json").display()
    );
    Command::new("taplo")
        .args(["check", "--schema", &schema])
        .args(files)
        .env("RUST_LOG", "warn")
        .output()
        .expect("running taplo")
}

#[test]
fn taplo_accepts_every_example_and_valid_test_manifest() {
    common::require("taplo");
    let mut files = Vec::new();
    for dir in ["examples", "tests/manifests/ok", "tests/plans"] {
        manifests(&root().join(dir), &mut files);
    }
    assert!(files.len() >= 20, "{files:?}");
    let out = taplo_check(&files);
    assert!(
        out.status.success(),
        "taplo check failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn taplo_rejects_manifests_the_schema_can_see_are_wrong() {
    common::require("taplo");
    for case in [
        "unknown-key",
        "unknown-top-level-key",
        "wrong-type",
        "service-not-a-table",
        "bad-restart",
        "long-port-typo",
        "unknown-healthcheck-key",
        "bad-condition",
        "watch-unknown-action",
        "watch-unknown-key",
    ] {
        let file = root()
            .join("tests/manifests/bad")
            .join(case)
            .join("berth.toml");
        let out = taplo_check(&[file]);
        assert!(!out.status.success(), "taplo accepted bad manifest {case}");
    }
}
