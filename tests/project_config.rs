//! `berth config`: discovery, `-f`/`-p`, `.env` and the environment, the
//! canonical output (TOML and JSON), `--services`, `--hash`, and located
//! errors for malformed manifests that leave the state root untouched.

mod common;

use std::path::Path;
use std::process::Command;

use common::TestRoot;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn berth_in(root: &TestRoot, dir: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd: Command = root.cmd();
    cmd.current_dir(dir)
        .env_remove("BERTH_PROJECT_NAME")
        .env_remove("BERTH_PROFILES")
        .args(args);
    cmd.output().unwrap()
}

fn stdout(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "berth failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const MANIFEST: &str = r#"
[services.db]
image = "busybox"

[services.web]
image = "busybox:${TAG:-latest}"
ports = ["8080:80"]
depends_on = ["db"]
environment = { GREETING = "${GREETING}" }

[services.debug]
image = "busybox"
profiles = ["debug"]
"#;

#[test]
fn config_discovers_the_manifest_from_a_subdirectory_and_names_the_project_after_its_directory() {
    let root = TestRoot::new();
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("My.Shop");
    write(&project.join("berth.toml"), MANIFEST);
    write(&project.join(".env"), "TAG=1.36\nGREETING=from-dotenv\n");
    std::fs::create_dir_all(project.join("src/deep")).unwrap();

    let out = stdout(&berth_in(&root, &project.join("src/deep"), &["config"]));
    assert!(out.contains("name = \"myshop\""), "{out}");
    assert!(out.contains("image = \"busybox:1.36\""), "{out}");
    assert!(out.contains("GREETING = \"from-dotenv\""), "{out}");
    assert!(!out.contains("debug"), "profile service listed: {out}");

    // The shell environment wins over .env; -p overrides the name.
    let mut cmd = root.cmd();
    cmd.current_dir(&project)
        .env("GREETING", "from-shell")
        .args(["config", "--format", "json", "-p", "shop2"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&cmd.output().unwrap())).unwrap();
    assert_eq!(json["name"], "shop2");
    assert_eq!(
        json["services"]["web"]["environment"]["GREETING"],
        "from-shell"
    );
    assert_eq!(json["services"]["web"]["ports"][0]["published"], 8080);

    let services = stdout(&berth_in(
        &root,
        &project,
        &["config", "--services", "--profile", "debug"],
    ));
    assert_eq!(services, "db\ndebug\nweb\n");
}

#[test]
fn config_hash_changes_only_for_the_changed_service_and_round_trips() {
    let root = TestRoot::new();
    let tmp = tempfile::tempdir().unwrap();
    write(&tmp.path().join("berth.toml"), MANIFEST);
    let hashes = |greeting: &str| {
        let mut cmd = root.cmd();
        cmd.current_dir(tmp.path())
            .env("GREETING", greeting)
            .args(["config", "--hash"]);
        let out = stdout(&cmd.output().unwrap());
        out.lines()
            .map(|l| {
                let (s, h) = l.split_once(' ').unwrap();
                assert_eq!(h.len(), 64, "{l}");
                (s.to_string(), h.to_string())
            })
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let a = hashes("hi");
    let b = hashes("hello");
    assert_eq!(a.keys().collect::<Vec<_>>(), ["db", "web"]);
    assert_eq!(a["db"], b["db"]);
    assert_ne!(a["web"], b["web"]);

    // The printed config is itself a manifest with the same hashes.
    let mut cmd = root.cmd();
    cmd.current_dir(tmp.path())
        .env("GREETING", "hi")
        .arg("config");
    let printed = stdout(&cmd.output().unwrap());
    let other = tempfile::tempdir().unwrap();
    write(&other.path().join("berth.toml"), &printed);
    let again = stdout(&berth_in(&root, other.path(), &["config", "--hash"]));
    let again: std::collections::BTreeMap<String, String> = again
        .lines()
        .map(|l| {
            let (s, h) = l.split_once(' ').unwrap();
            (s.to_string(), h.to_string())
        })
        .collect();
    assert_eq!(again, a);
}

#[test]
fn later_files_merge_over_earlier_ones() {
    let root = TestRoot::new();
    let tmp = tempfile::tempdir().unwrap();
    write(&tmp.path().join("base.toml"), MANIFEST);
    write(
        &tmp.path().join("prod.toml"),
        "name = \"prod\"\n[services.web]\nports = [\"8443:443\"]\nenvironment = { MODE = \"prod\" }\n",
    );
    let out = stdout(&berth_in(
        &root,
        tmp.path(),
        &["--json", "config", "-f", "base.toml", "-f", "prod.toml"],
    ));
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["name"], "prod");
    let web = &json["services"]["web"];
    assert_eq!(web["ports"].as_array().unwrap().len(), 2);
    assert_eq!(web["environment"]["MODE"], "prod");
    assert_eq!(web["image"], "busybox:latest");
}

#[test]
fn malformed_manifest_fails_with_its_location_and_touches_nothing() {
    let root = TestRoot::new();
    let before: Vec<_> = std::fs::read_dir(root.path()).unwrap().collect();
    let tmp = tempfile::tempdir().unwrap();
    write(
        &tmp.path().join("berth.toml"),
        "[services.web]\nimage = \"busybox\"\nports = [\"8080:80\", \"80:90:100\"]\n",
    );
    let out = berth_in(&root, tmp.path(), &["config"]);
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim_end(),
        "error: berth.toml:3:21: services.web.ports[1]: invalid port \"80:90:100\": expected [ip:][host:]container[/proto]"
    );
    let after: Vec<_> = std::fs::read_dir(root.path()).unwrap().collect();
    assert_eq!(before.len(), after.len());

    let empty = tempfile::tempdir().unwrap();
    let out = berth_in(&root, empty.path(), &["config"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no berth.toml found"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    write(&empty.path().join("berth.toml"), MANIFEST);
    let out = berth_in(&root, empty.path(), &["config", "-p", "Bad Name"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid project name \"Bad Name\""));
}

#[test]
fn schema_command_prints_the_committed_schema() {
    let root = TestRoot::new();
    let out = root.ok(&["__schema"]);
    let committed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/berth.schema.json"),
    )
    .unwrap();
    assert_eq!(out, committed);
}
