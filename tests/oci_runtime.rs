//! `berth oci` as a runc-compatible runtime, as containerd and Podman drive
//! one: their global flags (`--root` as runc's state directory, `--log`,
//! `--log-format`, `--systemd-cgroup`), `disableOOMKiller`, and `delete`'s
//! answers for a failing poststop hook and an unknown id.
//!
//! The flags are driven directly, in the order the shims pass them, and
//! Debian's Podman runs containers with berth as its runtime.

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

/// Podman (Debian's) with `--runtime` pointing at berth: a wrapper that
/// runs `berth oci "$@"`, as a runtime binary must be one executable.
/// Podman passes its own global flags (`--root`, `--log`, `--log-format`,
/// `--systemd-cgroup` where it uses systemd) and drives create, start,
/// state, kill and delete; a container's output, exit code, `ps` and `stop`
/// come back as with runc. Podman's own state lives in the test's
/// directory (vfs storage, private containers.conf).
#[test]
fn podman_runs_containers_with_berth_as_its_runtime() {
    require("podman");
    assert!(nix::unistd::geteuid().is_root(), "the OCI tests need root");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let wrapper = p.join("berth-runtime");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nexec {} oci \"$@\"\n", berth_bin().display()),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(
        p.join("storage.conf"),
        format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{0}/graph\"\nrunroot = \"{0}/run\"\n",
            p.display()
        ),
    )
    .unwrap();
    // Podman's default rlimits are above this machine's hard limits, which
    // a runtime cannot raise without CAP_SYS_RESOURCE.
    std::fs::write(
        p.join("containers.conf"),
        format!(
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n\
             [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n\
             events_logfile_path = \"{0}/events.log\"\ntmp_dir = \"{0}/tmp\"\n",
            p.display()
        ),
    )
    .unwrap();
    let podman = |args: &[&str]| -> Output {
        std::process::Command::new("podman")
            .env("CONTAINERS_STORAGE_CONF", p.join("storage.conf"))
            .env("CONTAINERS_CONF", p.join("containers.conf"))
            .arg("--runtime")
            .arg(&wrapper)
            .args(args)
            .output()
            .unwrap()
    };
    // Podman's own parent cgroups (`libpod_parent`, with conmon's): made by
    // this test when they were not there, so removed by it too.
    let podman_cgroups: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path().join("libpod_parent"))
                .collect()
        })
        .unwrap_or_default();
    let ours: Vec<PathBuf> = podman_cgroups.into_iter().filter(|c| !c.exists()).collect();
    struct Cleanup<'a>(&'a dyn Fn(&[&str]) -> Output, Vec<PathBuf>);
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            let _ = (self.0)(&["rm", "-af", "-t", "0"]);
            let _ = (self.0)(&["rmi", "-af"]);
            for parent in &self.1 {
                let _ = std::fs::remove_dir(parent.join("conmon"));
                let _ = std::fs::remove_dir(parent);
            }
        }
    }
    let _cleanup = Cleanup(&podman, ours);
    let imported = std::process::Command::new("podman")
        .env("CONTAINERS_STORAGE_CONF", p.join("storage.conf"))
        .env("CONTAINERS_CONF", p.join("containers.conf"))
        .arg("import")
        .arg(busybox_rootfs_tar())
        .arg("bb:latest")
        .output()
        .unwrap();
    succeeded(&["podman", "import"], &imported);

    let out = podman(&[
        "run",
        "--rm",
        "--network",
        "none",
        "bb",
        "echo",
        "hi from berth",
    ]);
    assert_eq!(succeeded(&["podman", "run"], &out), "hi from berth\n");
    let out = podman(&[
        "run",
        "--rm",
        "--network",
        "none",
        "bb",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = podman(&[
        "run",
        "-d",
        "--name",
        "bsleep",
        "--network",
        "none",
        "bb",
        "sleep",
        "1000",
    ]);
    succeeded(&["podman", "run", "-d"], &out);
    let ps = podman(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    let ps = succeeded(&["podman", "ps"], &ps);
    assert!(ps.contains("bsleep Up"), "{ps}");
    let out = podman(&["stop", "-t", "1", "bsleep"]);
    succeeded(&["podman", "stop"], &out);
    let out = podman(&["rm", "bsleep"]);
    succeeded(&["podman", "rm"], &out);
}
