//! `berth oci` as a runc-compatible runtime, as containerd and Podman drive
//! one: their global flags (`--root` as runc's state directory, `--log`,
//! `--log-format`, `--systemd-cgroup`), `disableOOMKiller`, and `delete`'s
//! answers for a failing poststop hook and an unknown id.
//!
//! Neither containerd nor Podman is installed on the test machine, so the
//! flags are driven directly, in the order the shims pass them.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;

struct Oci {
    root: TestRoot,
    ids: std::cell::RefCell<Vec<(Option<PathBuf>, String)>>,
}

impl Oci {
    fn new() -> Self {
        assert!(nix::unistd::geteuid().is_root(), "the OCI tests need root");
        Self {
            root: TestRoot::new(),
            ids: Default::default(),
        }
    }

    /// A bundle running `args` from the busybox rootfs, with `edit` applied
    /// to runc's default spec.
    fn bundle(
        &self,
        name: &str,
        args: &[&str],
        edit: impl FnOnce(&mut serde_json::Value),
    ) -> PathBuf {
        require("runc");
        let bundle = self.root.path().join(name);
        std::fs::create_dir_all(&bundle).unwrap();
        let st = std::process::Command::new("runc")
            .arg("spec")
            .current_dir(&bundle)
            .status()
            .unwrap();
        assert!(st.success(), "runc spec failed");
        let path = bundle.join("config.json");
        let mut spec: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        spec["process"]["terminal"] = false.into();
        spec["process"]["args"] = serde_json::json!(args);
        spec["root"]["path"] = busybox_rootfs().display().to_string().into();
        spec["linux"]["cgroupsPath"] =
            format!("/berth/oci-test-{}-{name}", std::process::id()).into();
        edit(&mut spec);
        std::fs::write(&path, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
        bundle
    }

    fn run(&self, args: &[&str]) -> Output {
        self.root.run(args)
    }

    /// `berth oci [GLOBAL…] create --bundle B ID`, with stdio not piped (the
    /// init inherits it, as with runc); remembered for cleanup.
    fn create(&self, global: &[&str], bundle: &Path, id: &str) {
        let mut cmd = self.root.cmd();
        cmd.arg("oci").args(global);
        cmd.args(["create", "--bundle", bundle.to_str().unwrap(), id]);
        let state_dir = global
            .iter()
            .position(|a| *a == "--root")
            .map(|i| PathBuf::from(global[i + 1]));
        self.ids.borrow_mut().push((state_dir, id.to_string()));
        let st = cmd
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "oci create {id} failed");
    }
}

impl Drop for Oci {
    fn drop(&mut self) {
        for (dir, id) in self.ids.borrow().iter() {
            let mut args = vec!["oci".to_string()];
            if let Some(d) = dir {
                args.extend(["--root".to_string(), d.display().to_string()]);
            }
            args.extend(["delete".into(), "--force".into(), id.clone()]);
            let _ = self.root.cmd().args(&args).output();
        }
    }
}

#[test]
fn disable_oom_killer_is_honoured() {
    let o = Oci::new();
    let cg = format!("/berth/oci-test-{}-oom", std::process::id());
    let bundle = o.bundle("oom", &["sleep", "1000"], |s| {
        s["linux"]["resources"]["memory"] =
            serde_json::json!({"limit": 64 << 20, "disableOOMKiller": true});
    });
    o.create(&[], &bundle, "oom");
    let control = if Path::new("/sys/fs/cgroup/memory").is_dir() {
        format!("/sys/fs/cgroup/memory{cg}/memory.oom_control")
    } else {
        // cgroup v2 has no switch: memory.oom.group is the closest, and
        // runc ignores disableOOMKiller there too.
        return;
    };
    let text = std::fs::read_to_string(&control).unwrap();
    assert!(text.contains("oom_kill_disable 1"), "{control}: {text}");
}

#[test]
fn global_runtime_flags_have_runcs_meaning() {
    let o = Oci::new();
    let state = o.root.path().join("runc-root");
    let log = o.root.path().join("runtime.log");
    let s = state.to_str().unwrap();
    let l = log.to_str().unwrap();
    let global = ["--root", s, "--log", l, "--log-format", "json"];
    let bundle = o.bundle("flags", &["sleep", "1000"], |_| {});
    o.create(&global, &bundle, "flags");
    // --root is the state directory itself, as runc's.
    assert!(state.join("flags").is_dir(), "no state under --root");
    assert!(!o.root.path().join("oci/flags").exists());
    let mut args = vec!["oci"];
    args.extend(global);
    args.extend(["state", "flags"]);
    let st: serde_json::Value = serde_json::from_str(&o.root.ok(&args)).unwrap();
    assert_eq!(st["status"], "created");
    // A failure is also written to --log, one JSON object a line (logrus's
    // shape, which containerd reads back).
    let mut args = vec!["oci"];
    args.extend(global);
    args.extend(["start", "no-such-container"]);
    let out = o.run(&args);
    assert!(!out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error", "{text}");
    assert!(
        last["msg"].as_str().unwrap().contains("no-such-container"),
        "{text}"
    );
    assert!(last["time"].is_string(), "{text}");
    // Text format: logrus's key=value line.
    let out = o.run(&["oci", "--log", l, "--log-format", "text", "start", "nope2"]);
    assert!(!out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text.lines().last().unwrap();
    assert!(
        line.starts_with("time=\"") && line.contains("level=error msg=\""),
        "{line}"
    );
    // --systemd-cgroup is understood (and, without systemd on the host,
    // refused with runc's reason rather than as an unknown flag).
    let out = o.run(&["oci", "--systemd-cgroup", "state", "flags"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("unexpected argument"), "{err}");
    if !Path::new("/run/systemd/system").exists() {
        assert!(!out.status.success());
        assert!(err.contains("systemd"), "{err}");
    }
    let out = o.run(&["oci", "--log-format", "yaml", "state", "flags"]);
    assert!(!out.status.success());
}

#[test]
fn a_failing_poststop_hook_does_not_block_delete() {
    let o = Oci::new();
    let bundle = o.bundle("hook", &["sleep", "1000"], |s| {
        s["hooks"] = serde_json::json!({"poststop": [{"path": "/bin/false"}]});
    });
    for (id, force) in [("hook1", false), ("hook2", true)] {
        o.create(&[], &bundle, id);
        if !force {
            o.root.ok(&["oci", "kill", id, "KILL"]);
            eventually("stopped", || {
                let out = o.run(&["oci", "state", id]);
                String::from_utf8_lossy(&out.stdout).contains("\"stopped\"")
            });
        }
        let mut args = vec!["oci", "delete"];
        if force {
            args.push("--force");
        }
        args.push(id);
        o.root.ok(&args);
        assert!(
            !o.run(&["oci", "state", id]).status.success(),
            "{id} still known"
        );
        assert!(!o.root.path().join("oci").join(id).exists());
    }
}

#[test]
fn delete_of_an_unknown_id_is_an_error() {
    let o = Oci::new();
    let out = o.run(&["oci", "delete", "never-made"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("never-made") && err.contains("does not exist"),
        "{err}"
    );
    // As runc: --force makes a missing container no error.
    o.root.ok(&["oci", "delete", "--force", "never-made"]);
}

#[test]
fn an_init_killed_while_setting_up_is_explained() {
    let o = Oci::new();
    // A seccomp profile that kills on every system call: the init dies
    // right after loading it, before it can say anything.
    let bundle = o.bundle("killed", &["true"], |s| {
        s["linux"]["seccomp"] =
            serde_json::json!({"defaultAction": "SCMP_ACT_KILL", "syscalls": []});
    });
    o.ids.borrow_mut().push((None, "killed".into()));
    let out = o.run(&["oci", "run", "--bundle", bundle.to_str().unwrap(), "killed"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("BrokenChannel"), "{err}");
    assert!(
        err.contains("init process died") && err.contains("seccomp"),
        "{err}"
    );
}
