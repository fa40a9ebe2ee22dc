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
    env.entry("HOME".into())
        .or_insert_with(|| "/home/user".into());
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
    crate::golden::check(&dir.join(file), actual, failures);
}

fn case_dirs(kind: &str) -> Vec<PathBuf> {
    crate::golden::case_dirs("manifests", kind)
}

/// A copy of a case directory at a fixed path, so that the absolute paths
/// a model holds (build contexts, bind sources) and the config hashes over
/// them are the same wherever the repository is checked out. The lock keeps
/// concurrent test processes from sharing the copy.
struct FixedCopy {
    path: PathBuf,
    _lock: std::fs::File,
}

impl FixedCopy {
    fn of(case: &Path) -> Self {
        use std::os::fd::AsRawFd;
        let base = Path::new("/tmp/berth-manifest-case");
        std::fs::create_dir_all(base).unwrap();
        let lock = std::fs::File::create(base.join("lock")).unwrap();
        // SAFETY: flock on an owned fd.
        assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
        // Keep the case's own directory name: project names derive from it.
        let path = base.join("case").join(case.file_name().unwrap());
        let _ = std::fs::remove_dir_all(base.join("case"));
        copy_dir(case, &path);
        Self { path, _lock: lock }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn manifests_resolve_to_expected_models() {
    let dirs = case_dirs("ok");
    assert!(dirs.len() >= 5, "too few ok cases");
    let mut failures = Vec::new();
    for dir in dirs {
        let copy = FixedCopy::of(&dir);
        match run_case(&copy.path) {
            Ok(project) => {
                let json = serde_json::to_string_pretty(&project).unwrap();
                let json = json.replace(&copy.path.display().to_string(), "$CASE") + "\n";
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
    assert!(
        dirs.len() >= 15,
        "the malformed corpus needs at least 15 cases"
    );
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
        env.entry("HOME".into())
            .or_insert_with(|| "/home/user".into());
        let loaded = load(&LoadOptions {
            files: vec![file],
            cwd: tmp.path().to_path_buf(),
            project_name: case.project.clone(),
            env,
        })
        .unwrap_or_else(|e| {
            panic!(
                "{}: canonical form does not load: {e}\n{text}",
                dir.display()
            )
        });
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

/// Loads a case's manifest; returns it with the case's profiles.
pub(crate) fn load_case(dir: &Path) -> (super::Loaded, Vec<String>) {
    let case = read_case(dir);
    let mut env = case.env.clone();
    env.entry("HOME".into())
        .or_insert_with(|| "/home/user".into());
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
    (loaded, case.profiles)
}

fn project_manifest(dir: &Path) -> super::manifest::Manifest {
    let case = read_case(dir);
    let mut env = case.env.clone();
    env.entry("HOME".into())
        .or_insert_with(|| "/home/user".into());
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

/// A planner case: `berth.toml` (desired), optionally `before.toml` (the
/// manifest the existing containers were made from: all running, with its
/// networks and volumes existing), and `plan.toml` with tweaks and options.
/// The rendered plan must equal `expected.txt`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanCase {
    /// Short names (`web-1`) of existing containers that are stopped.
    #[serde(default)]
    stopped: Vec<String>,
    /// Short names of containers of `before` that do not exist.
    #[serde(default)]
    missing: Vec<String>,
    /// Short names of containers running without their supervisor.
    #[serde(default)]
    unsupervised: Vec<String>,
    /// Short names of containers whose state record is corrupt.
    #[serde(default)]
    corrupt: Vec<String>,
    /// Short names of containers without a recorded spec.
    #[serde(default)]
    no_spec: Vec<String>,
    /// Networks that exist (default: those of `before`).
    networks: Option<Vec<String>>,
    /// Volumes that exist (default: those of `before`).
    volumes: Option<Vec<String>>,
    #[serde(default)]
    before_digests: BTreeMap<String, String>,
    #[serde(default)]
    digests: BTreeMap<String, String>,
    #[serde(default)]
    options: super::PlanOptions,
    /// Plan `down` (with these options) instead of `up`.
    down: Option<super::planner::DownOptions>,
}

fn plan_case(dir: &Path) -> Result<String, String> {
    use super::planner::{ActualContainer, ActualResource, ActualState, ContainerStatus};
    let case: PlanCase = match std::fs::read_to_string(dir.join("plan.toml")) {
        Ok(text) => toml::from_str(&text).map_err(|e| e.to_string())?,
        Err(_) => PlanCase::default(),
    };
    let load_file = |file: &str, digests: &BTreeMap<String, String>| {
        let loaded = load(&LoadOptions {
            files: vec![PathBuf::from(file)],
            cwd: dir.to_path_buf(),
            project_name: None,
            env: BTreeMap::from([("HOME".to_string(), "/home/user".to_string())]),
        })
        .map_err(|e| e.to_string())?;
        resolve(&loaded, &[], digests).map_err(|e| e.to_string())
    };
    let desired = load_file("berth.toml", &case.digests)?;
    let mut actual = ActualState::default();
    if dir.join("before.toml").exists() {
        let before = load_file("before.toml", &case.before_digests)?;
        for svc in before.services.values() {
            for c in &svc.containers {
                let short = format!("{}-{}", svc.name, c.replica);
                if case.missing.contains(&short) {
                    continue;
                }
                actual.containers.push(ActualContainer {
                    id: format!("id-{short}"),
                    name: c.name.clone(),
                    labels: c.labels.clone(),
                    spec: (!case.no_spec.contains(&short)).then(|| svc.spec.clone()),
                    status: if case.stopped.contains(&short) {
                        ContainerStatus::Exited(Some(0))
                    } else if case.unsupervised.contains(&short) {
                        ContainerStatus::Unsupervised
                    } else if case.corrupt.contains(&short) {
                        ContainerStatus::Corrupt
                    } else {
                        ContainerStatus::Running
                    },
                });
            }
        }
        actual.networks = before
            .networks
            .values()
            .map(|n| ActualResource {
                name: n.name.clone(),
                labels: n.labels.clone(),
            })
            .collect();
        actual.volumes = before
            .volumes
            .values()
            .map(|v| ActualResource {
                name: v.name.clone(),
                labels: v.labels.clone(),
            })
            .collect();
    }
    let named = |names: &Vec<String>| {
        names
            .iter()
            .map(|n| ActualResource {
                name: n.clone(),
                labels: BTreeMap::new(),
            })
            .collect()
    };
    if let Some(n) = &case.networks {
        actual.networks = named(n);
    }
    if let Some(v) = &case.volumes {
        actual.volumes = named(v);
    }
    let plan = match case.down {
        Some(opts) => super::plan_down(&desired, &actual, opts),
        None => super::plan(&desired, &actual, &case.options).map_err(|e| e.to_string())?,
    };
    let mut text = super::render(&plan);
    let stages: Vec<String> = plan.stages.iter().map(|s| s.join(" ")).collect();
    text.push_str(&format!("stages: {}\n", stages.join(" | ")));
    Ok(text)
}

#[test]
fn plans_match_expected_text() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plans");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 10, "too few planner cases");
    let mut failures = Vec::new();
    for dir in dirs {
        let text = plan_case(&dir).unwrap_or_else(|e| format!("error: {e}\n"));
        check(&dir, "expected.txt", text, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Every example project loads, and the three-service example resolves to
/// what the issue describes: `api` waits for `db` healthy, `web` publishes
/// 8080 -> 80, containers `PROJECT-SERVICE-N` on `PROJECT_default`.
#[test]
fn examples_load() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut count = 0;
    for dir in std::fs::read_dir(&examples).unwrap() {
        let dir = dir.unwrap().path();
        if dir.join("berth.toml").is_file() {
            run_case(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            count += 1;
        }
    }
    assert!(count >= 1);
    let p = run_case(&examples.join("three-services")).unwrap();
    assert_eq!(p.name, "three");
    assert_eq!(
        p.services["api"].depends_on["db"].condition,
        super::manifest::Condition::Healthy
    );
    let web = &p.services["web"];
    assert_eq!(web.containers[0].name, "three-web-1");
    assert_eq!(web.spec.ports[0].host_port, Some(8080));
    assert_eq!(web.spec.ports[0].container_port, 80);
    assert!(web.spec.networks.contains_key("three_default"));
    assert_eq!(web.spec.environment["GREETING"], "hello");
    assert_eq!(
        web.containers[0].labels["berth.config-hash"],
        web.config_hash
    );
    let plan = super::plan(&p, &Default::default(), &Default::default()).unwrap();
    assert_eq!(plan.stages, [vec!["db"], vec!["api"], vec!["web"]]);
}
