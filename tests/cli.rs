//! The CLI frame: global options, state root creation, output formats.

mod common;

use common::TestRoot;

#[test]
fn info_reports_the_state_root_it_was_given() {
    let root = TestRoot::new();
    let out = root.ok(&["info"]);
    assert!(
        out.contains(&format!("Root Dir: {}", root.path().display())),
        "{out}"
    );
    let json: serde_json::Value = serde_json::from_str(&root.ok(&["--json", "info"])).unwrap();
    assert_eq!(json["Root"], root.path().display().to_string());
    assert!(matches!(json["CgroupVersion"].as_str(), Some("1" | "2")));
}

#[test]
fn unknown_command_fails_with_usage() {
    let root = TestRoot::new();
    let err = root.fails(&["no-such-command"]);
    assert!(err.contains("unrecognized subcommand"), "{err}");
}

#[test]
fn usage_errors_exit_125_like_docker_and_help_succeeds() {
    let root = TestRoot::new();
    let out = root.run(&["images", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-such-flag"));
    let help = root.run(&["run", "--help"]);
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("-v, --volume"), "{text}");
}

#[test]
fn verbose_is_a_flag_before_the_command() {
    let root = TestRoot::new();
    let out = root.run(&["-vv", "info"]);
    assert!(out.status.success());
}

#[test]
fn version_prints_the_build_and_takes_a_template() {
    let root = TestRoot::new();
    let out = root.ok(&["version"]);
    assert!(out.starts_with("Client: berth\n"), "{out}");
    assert!(
        out.contains(&format!(
            " Version:          {}\n",
            env!("CARGO_PKG_VERSION")
        )),
        "{out}"
    );
    assert!(out.contains("Engine: built in (no daemon)"), "{out}");
    assert_eq!(
        root.ok(&["version", "--format", "{{.Client.Version}}"])
            .trim(),
        env!("CARGO_PKG_VERSION")
    );
    let json: serde_json::Value =
        serde_json::from_str(&root.ok(&["version", "--format", "json"])).unwrap();
    assert_eq!(json["Client"]["Os"], "linux");
    let err = root.fails(&["version", "--format", "{{.Client.Nope}}"]);
    assert!(
        err.contains("invalid --format template") && err.contains("Nope"),
        "{err}"
    );
}

#[test]
fn completions_and_man_pages_come_from_the_command_definitions() {
    let root = TestRoot::new();
    let bash = root.ok(&["completion", "bash"]);
    assert!(
        bash.contains("_berth()"),
        "{}",
        &bash[..bash.len().min(200)]
    );
    for verb in ["run", "compose", "watch", "build"] {
        assert!(bash.contains(verb), "bash completion lacks {verb}");
    }
    assert!(root.ok(&["completion", "zsh"]).contains("#compdef berth"));
    assert!(root
        .ok(&["completion", "fish"])
        .contains("complete -c berth"));
    let page = root.ok(&["__man"]);
    assert!(
        page.contains(".TH berth 1"),
        "{}",
        &page[..page.len().min(200)]
    );
    let dir = tempfile::tempdir().unwrap();
    root.ok(&["__man", dir.path().to_str().unwrap()]);
    for page in ["berth.1", "berth-run.1", "berth-compose-up.1"] {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap();
        assert!(text.contains(".TH"), "{page}");
    }
    let run = std::fs::read_to_string(dir.path().join("berth-run.1")).unwrap();
    assert!(run.contains("publish"), "berth-run.1 documents -p");
}

/// `berth … | head -1`: the reader leaving early is not an error (no
/// panic, no `error: Broken pipe`, exit 0), whether the command prints
/// through `println!` or a writer.
#[test]
fn a_reader_that_stops_early_is_not_an_error() {
    use std::io::Read;
    use std::process::Stdio;
    let root = TestRoot::new();
    let project = tempfile::tempdir().unwrap();
    let mut manifest = String::from("name = \"pipe\"\n");
    for i in 0..3000 {
        manifest.push_str(&format!(
            "[services.s{i}]\nimage = \"busybox\"\ncommand = [\"sleep\", \"{i}\"]\n"
        ));
    }
    std::fs::write(project.path().join("berth.toml"), manifest).unwrap();
    for args in [
        &["config", "--json"][..],
        &["config"],
        &["completion", "bash"],
        &["__schema"],
    ] {
        let mut child = root
            .cmd()
            .args(args)
            .current_dir(project.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 16];
        child.stdout.take().unwrap().read_exact(&mut first).unwrap();
        // stdout's read end is dropped here: the rest hits a closed pipe.
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("error"),
            "{args:?}: {err}"
        );
    }
}

/// `berth init` writes a starter berth.toml that loads as it is, named
/// after the directory, and never overwrites one.
#[test]
fn init_writes_a_starter_manifest_that_loads() {
    let root = TestRoot::new();
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("My App");
    std::fs::create_dir(&dir).unwrap();
    let run = |args: &[&str]| root.cmd().current_dir(&dir).args(args).output().unwrap();
    let out = run(&["init"]);
    common::succeeded(&["init"], &out);
    let text = std::fs::read_to_string(dir.join("berth.toml")).unwrap();
    assert!(text.starts_with("#:schema "), "{text}");
    let services = common::succeeded(&["config", "--services"], &run(&["config", "--services"]));
    assert_eq!(services, "web\n");
    let json: serde_json::Value = serde_json::from_str(&common::succeeded(
        &["config"],
        &run(&["config", "--format", "json"]),
    ))
    .unwrap();
    assert_eq!(
        json["name"], "myapp",
        "as Compose normalises a directory name"
    );
    let again = run(&["init"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert_eq!(
        std::fs::read_to_string(dir.join("berth.toml")).unwrap(),
        text
    );
}
