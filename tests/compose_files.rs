//! Compose files as berth's input: a corpus of compose.yaml files (in
//! `tests/compose/`) loads through the same model as berth.toml, converts
//! with `berth convert` to a berth.toml that gives the same config hashes,
//! comes up and answers; and bad YAML is refused with its place, touching
//! nothing.

mod common;

use std::path::Path;
use std::process::Output;

use common::TestRoot;

fn berth_in(root: &TestRoot, dir: &Path, args: &[&str]) -> Output {
    root.cmd()
        .current_dir(dir)
        .env_remove("BERTH_PROJECT_NAME")
        .env_remove("BERTH_PROFILES")
        .env_remove("WEB_PORT")
        .args(args)
        .output()
        .unwrap()
}

fn ok(root: &TestRoot, dir: &Path, args: &[&str]) -> String {
    let out = berth_in(root, dir, args);
    common::succeeded(args, &out)
}

/// A copy of the corpus project `name` in a fresh directory (named after
/// it, so the project name is the same wherever the test runs).
fn project(name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/compose")
        .join(name);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    (tmp, dir)
}

const CORPUS: &[&str] = &["web-db", "anchors", "build-args", "profiles-networks"];

#[test]
fn the_corpus_loads_and_converts_to_the_same_project() {
    let root = TestRoot::new();
    let entries = |p: &Path| std::fs::read_dir(p).map(|d| d.count()).unwrap_or(0);
    let before = entries(root.path());
    for name in CORPUS {
        let (_tmp, dir) = project(name);
        // Found without -f (compose.yaml or docker-compose.yml).
        let from_yaml = ok(&root, &dir, &["config", "--hash"]);
        assert!(!from_yaml.trim().is_empty(), "{name}: no services");
        let canonical = ok(&root, &dir, &["config"]);
        ok(&root, &dir, &["convert", "-o", "berth.toml"]);
        let converted = std::fs::read_to_string(dir.join("berth.toml")).unwrap();
        assert!(converted.starts_with("#:schema "), "{name}: {converted}");
        // berth.toml now wins discovery: the same hashes from the TOML.
        assert_eq!(
            ok(&root, &dir, &["config", "--hash"]),
            from_yaml,
            "{name}: converted\n{converted}"
        );
        assert_eq!(ok(&root, &dir, &["config"]), canonical, "{name}");
    }
    assert_eq!(
        entries(root.path()),
        before,
        "config and convert make nothing in the state root"
    );
}

#[test]
fn compose_isms_mean_what_compose_means() {
    let root = TestRoot::new();
    let (_tmp, dir) = project("anchors");
    let json: serde_json::Value =
        serde_json::from_str(&ok(&root, &dir, &["config", "--format", "json"])).unwrap();
    let api = &json["services"]["api"];
    // Merge keys fill in what the service does not set.
    assert_eq!(api["image"], "busybox");
    assert_eq!(api["restart"], "unless-stopped");
    // x- keys are dropped, but not inside labels.
    assert_eq!(api["labels"]["x-team"], "platform");
    assert!(json.get("x-common").is_none());
    // The environment merges the anchor; `TOKEN:` (null) comes from the
    // shell, as a bare name does.
    assert_eq!(api["environment"]["LOG_LEVEL"], "info");
    assert_eq!(api["environment"]["PORT"], "3000");
    let with_token = root
        .cmd()
        .current_dir(&dir)
        .env("TOKEN", "s3cret")
        .args(["config", "--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&with_token.stdout).unwrap();
    assert_eq!(v["services"]["api"]["environment"]["TOKEN"], "s3cret");

    // `version` is accepted with a note naming where it stands.
    let (_tmp, dir) = project("web-db");
    let out = berth_in(&root, &dir, &["config", "--services"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("note: compose.yaml:2:1: the top-level `version` key is obsolete"),
        "{err}"
    );

    // An unset variable is substituted blank, with one note naming it; a
    // `$` that starts no interpolation stays as written.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  web:\n    image: busybox\n    command: [echo, \"$NOPE ${NOPE} costs 5$\"]\n",
    )
    .unwrap();
    let out = berth_in(&root, dir.path(), &["config", "--format", "json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.matches("the \"NOPE\" variable is not set").count(),
        1,
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // (config prints a manifest that loads back the same: `$` as `$$`.)
    assert_eq!(v["services"]["web"]["command"][1], "  costs 5$$");
}

#[test]
fn bad_compose_files_are_refused_with_their_place() {
    let root = TestRoot::new();
    let dir = tempfile::tempdir().unwrap();
    let mut bomb = String::from("services:\n  web:\n    image: busybox\nx-a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..9 {
        let p = i - 1;
        bomb.push_str(&format!(
            "x-a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let cases: Vec<(&str, String, &str)> = vec![
        ("bomb.yaml", bomb, "bomb.yaml:"),
        (
            "dup.yaml",
            "services:\n  web:\n    image: a\n    image: b\n".into(),
            "dup.yaml:4:5: invalid YAML: mapping key \"image\" is given twice",
        ),
        (
            "typo.yaml",
            "services:\n  web:\n    imgae: busybox\n".into(),
            "typo.yaml:3:5: services.web.imgae: unknown key `imgae`",
        ),
        (
            "type.yaml",
            "services:\n  web:\n    image: busybox\n    ports: 80\n".into(),
            "type.yaml:4:12: services.web.ports",
        ),
        (
            "syntax.yaml",
            "services:\n  web: [unclosed\n".into(),
            "syntax.yaml:",
        ),
    ];
    for (file, text, want) in &cases {
        std::fs::write(dir.path().join(file), text).unwrap();
        for verb in ["config", "plan", "up"] {
            let args: Vec<&str> = if verb == "up" {
                vec!["up", "-d", "-f", file]
            } else {
                vec![verb, "-f", file]
            };
            let out = berth_in(&root, dir.path(), &args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{file} {verb}");
            assert!(err.contains(want), "{file} {verb}: {err}");
        }
    }
    let e = String::from_utf8_lossy(
        &berth_in(&root, dir.path(), &["config", "-f", "bomb.yaml"]).stderr,
    )
    .into_owned();
    assert!(e.contains("YAML bomb"), "{e}");
    assert!(
        !root.path().join("containers").exists() && !root.path().join("networks").exists(),
        "a refused compose file touches nothing"
    );
}

/// A compose.yaml comes up with `berth up -d --wait`, answers on its
/// published port, and goes with `berth down`.
#[test]
fn a_compose_project_comes_up_and_answers() {
    let root = common::root_with_busybox("bringing a project up runs containers");
    let (_tmp, dir) = project("web-db");
    let port = common::registry::free_port();
    let up = root
        .cmd()
        .current_dir(&dir)
        .env("WEB_PORT", port.to_string())
        .args(["up", "-d", "--wait"])
        .output()
        .unwrap();
    let cleanup = Down(&root, dir.clone());
    common::succeeded(&["up", "-d", "--wait"], &up);
    let page = http_get(port);
    assert!(page.contains("200 OK") || page.contains("404"), "{page}");
    let ps = ok(&root, &dir, &["compose", "ps"]);
    assert!(ps.contains("(healthy)"), "{ps}");
    // `container_name` names db's container; the project still owns it.
    let names = root.ok(&["ps", "--format", "{{.Names}}"]);
    assert!(names.lines().any(|n| n == "webdb-database"), "{names}");
    assert!(ps.contains("webdb-database"), "{ps}");
    // `tty: true`: web's process runs on a terminal.
    let fd0 = ok(&root, &dir, &["exec", "web", "readlink", "/proc/1/fd/0"]);
    assert!(fd0.starts_with("/dev/pts/"), "{fd0}");
    drop(cleanup);
    assert_eq!(root.ok(&["ps", "-aq"]), "");
}

struct Down<'a>(&'a TestRoot, std::path::PathBuf);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = berth_in(self.0, &self.1, &["down", "-v"]);
    }
}

fn http_get(port: u16) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}
