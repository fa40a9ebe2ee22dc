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
