//! Data-driven tests of manifest -> model and of malformed manifests.
//!
//! Each directory under `tests/manifests/ok/` and `tests/manifests/bad/` is
//! one case: `berth.toml` (and any other files it names), optionally `.env`
//! and a `case.toml` with `files` (the `-f` list), `env` (the process
//! environment), `profiles`, `project` (`-p`) and `digests`. An ok case's
//! resolved model must equal `expected.json` (the case directory's path
//! written as `$CASE`); a bad case's error text must equal `expected.txt`.
//! `BERTH_BLESS=1 cargo test --lib project::tests` rewrites the expectations.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{load, resolve, LoadError, LoadOptions, Project};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    #[serde(default)]
    files: Vec<PathBuf>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    profiles: Vec<String>,
    project: Option<String>,
    #[serde(default)]
    digests: BTreeMap<String, String>,
}

pub(crate) fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/manifests")
}

fn read_case(dir: &Path) -> Case {
    match std::fs::read_to_string(dir.join("case.toml")) {
        Ok(text) => toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", dir.display())),
        Err(_) => Case::default(),
    }
}

/// Loads and resolves the project of a case directory.
pub(crate) fn run_case(dir: &Path) -> Result<Project, LoadError> {
    let case = read_case(dir);
    let mut env = case.env.clone();
    env.entry("HOME".into()).or_insert_with(|| "/home/user".into());
    let opts = LoadOptions {
        files: if case.files.is_empty() {
            vec![PathBuf::from("berth.toml")]
        } else {
            case.files.clone()
        },
        cwd: dir.to_path_buf(),
        project_name: case.project.clone(),
        env,
    };
    let loaded = load(&opts)?;
    resolve(&loaded, &case.profiles, &case.digests)
}

fn check(dir: &Path, file: &str, actual: String, failures: &mut Vec<String>) {
    let path = dir.join(file);
    if std::env::var_os("BERTH_BLESS").is_some() {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != actual {
        failures.push(format!(
            "{}:\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        ));
    }
}

fn case_dirs(kind: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(cases_dir().join(kind))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn manifests_resolve_to_expected_models() {
    let dirs = case_dirs("ok");
    assert!(dirs.len() >= 5, "too few ok cases");
    let mut failures = Vec::new();
    for dir in dirs {
        match run_case(&dir) {
            Ok(project) => {
                let json = serde_json::to_string_pretty(&project).unwrap();
                let json = json.replace(&dir.display().to_string(), "$CASE") + "\n";
                check(&dir, "expected.json", json, &mut failures);
            }
            Err(e) => failures.push(format!("{}: unexpected error: {e}", dir.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn malformed_manifests_give_located_errors() {
    let dirs = case_dirs("bad");
    assert!(dirs.len() >= 15, "the malformed corpus needs at least 15 cases");
    let mut failures = Vec::new();
    for dir in dirs {
        match run_case(&dir) {
            Ok(_) => failures.push(format!("{}: loaded without error", dir.display())),
            Err(e) => {
                let text = e.to_string().replace(&dir.display().to_string(), "$CASE") + "\n";
                check(&dir, "expected.txt", text, &mut failures);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The canonical manifest `config` prints reads back to the same model.
#[test]
fn canonical_manifest_round_trips() {
    for dir in case_dirs("ok") {
        let case = read_case(&dir);
        let project = run_case(&dir).unwrap();
        let text = super::canonical::to_toml(&project_manifest(&dir)).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("berth.toml");
        std::fs::write(&file, &text).unwrap();
        let mut env = case.env.clone();
        env.entry("HOME".into()).or_insert_with(|| "/home/user".into());
        let loaded = load(&LoadOptions {
            files: vec![file],
            cwd: tmp.path().to_path_buf(),
            project_name: case.project.clone(),
            env,
        })
        .unwrap_or_else(|e| panic!("{}: canonical form does not load: {e}\n{text}", dir.display()));
        let again = resolve(&loaded, &case.profiles, &case.digests).unwrap();
        for (name, svc) in &project.services {
            assert_eq!(
                svc.spec,
                again.services[name].spec,
                "{}: service {name} differs after round trip\n{text}",
                dir.display()
            );
        }
    }
}

fn project_manifest(dir: &Path) -> super::manifest::Manifest {
    let case = read_case(dir);
    let mut env = case.env.clone();
    env.entry("HOME".into()).or_insert_with(|| "/home/user".into());
    let loaded = load(&LoadOptions {
        files: if case.files.is_empty() {
            vec![PathBuf::from("berth.toml")]
        } else {
            case.files.clone()
        },
        cwd: dir.to_path_buf(),
        project_name: case.project.clone(),
        env,
    })
    .unwrap();
    super::canonical::canonical_manifest(&loaded, &case.profiles).unwrap()
}
