//! Containers end to end, as root, with the busybox fixture: the Docker
//! tutorial's scenarios, confinement checked from inside, the supervisor's
//! behaviours, and the host binary's protection.
//!
//! Every test has its own state root; an [`Engine`] guard force-removes all
//! of its containers (processes, mounts, cgroups) when the test ends, even
//! when it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::*;

/// A state root plus cleanup of every container made in it.
struct Engine {
    root: TestRoot,
    rootfs: PathBuf,
}

impl Engine {
    fn new() -> Self {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the runtime tests need root (containers, mounts, cgroups)"
        );
        let e = Self {
            root: TestRoot::new(),
            rootfs: busybox_rootfs(),
        };
        // The busybox image, as Docker's: CMD ["sh"].
        let tar = busybox_rootfs_tar();
        e.root.ok(&[
            "import",
            "-c",
            "CMD [\"sh\"]",
            tar.to_str().unwrap(),
            "busybox",
        ]);
        e
    }

    /// `berth ARGS`, where `@bb` stands for the busybox image and `@rootfs`
    /// for its root filesystem directory (`--rootfs DIR`).
    fn args(&self, args: &[&str]) -> Vec<String> {
        let mut v = Vec::new();
        for a in args {
            match *a {
                "@bb" => v.push("busybox".to_string()),
                "@rootfs" => {
                    v.push("--rootfs".to_string());
                    v.push(self.rootfs.display().to_string());
                }
                _ => v.push(a.to_string()),
            }
        }
        v
    }

    fn run(&self, args: &[&str]) -> Output {
        self.root
            .cmd()
            .args(self.args(args))
            .output()
            .expect("running berth")
    }

    fn ok(&self, args: &[&str]) -> String {
        common::succeeded(args, &self.run(args))
    }

    /// Runs and returns (exit code, stdout, stderr).
    fn code(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.run(args);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn inspect(&self, name: &str, template: &str) -> String {
        self.ok(&["inspect", "-f", template, name])
            .trim()
            .to_string()
    }

    /// Polls until `f` holds (panics after a generous limit, which is a
    /// failure, not a timing assertion).
    fn eventually(&self, what: &str, f: impl FnMut() -> bool) {
        common::eventually(what, f)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.root.remove_all_containers();
    }
}

/// The static probe binary (tests/fixtures/probe.c), built once.
fn probe() -> PathBuf {
    let path = fixtures_dir().join("probe");
    once(&path, |path| {
        require("cc");
        let staging = path.with_extension("staging");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/probe.c");
        let st = std::process::Command::new("cc")
            .args(["-static", "-O1", "-o"])
            .arg(&staging)
            .arg(&src)
            .status()
            .expect("running cc");
        assert!(
            st.success(),
            "building the probe failed (needs gcc and libc6-dev)"
        );
        std::fs::rename(&staging, path).unwrap();
    })
}

fn probe_mount() -> String {
    format!("{}:/probe:ro", probe().display())
}

// ---------------------------------------------------------------- tutorial

#[test]
fn run_echo_prints_output() {
    let e = Engine::new();
    assert_eq!(e.ok(&["run", "@bb", "echo", "hi", "there"]), "hi there\n");
}

#[test]
fn run_from_a_rootfs_directory_and_missing_images() {
    let e = Engine::new();
    assert_eq!(
        e.ok(&["run", "@rootfs", "echo", "from", "dir"]),
        "from dir\n"
    );
    // The image's default command.
    assert_eq!(e.ok(&["run", "-i", "@bb"]), "");
    let (code, _, err) = e.code(&["run", "localhost:1/nosuch", "true"]);
    assert_eq!(code, 125, "{err}");
    assert!(
        err.starts_with("Unable to find image 'localhost:1/nosuch:latest' locally\n"),
        "{err}"
    );
    assert!(err.contains("localhost:1/nosuch"), "{err}");
    assert_eq!(e.ok(&["ps", "-aq"]).lines().count(), 2);
}

#[test]
fn run_ls_lists_the_image_root() {
    let e = Engine::new();
    let out = e.ok(&["run", "@bb", "ls", "/"]);
    for entry in ["bin", "etc", "proc", "var"] {
        assert!(out.lines().any(|l| l == entry), "{entry} missing in {out}");
    }
}

#[test]
fn missing_command_is_127_and_not_executable_is_126() {
    let e = Engine::new();
    let (code, _, err) = e.code(&["run", "@bb", "no-such-command"]);
    assert_eq!(code, 127, "{err}");
    assert!(
        err.contains("no-such-command") && err.contains("not found"),
        "{err}"
    );
    let (code, _, err) = e.code(&["run", "@bb", "/etc/passwd"]);
    assert_eq!(code, 126, "{err}");
}

#[test]
fn exit_code_is_returned() {
    let e = Engine::new();
    let (code, _, _) = e.code(&["run", "@bb", "sh", "-c", "exit 42"]);
    assert_eq!(code, 42);
}

#[test]
fn ps_shows_running_and_ps_a_shows_exited() {
    let e = Engine::new();
    e.ok(&["run", "--name", "short", "@bb", "true"]);
    e.ok(&["run", "-d", "--name", "long", "@bb", "sleep", "1000"]);
    let ps = e.ok(&["ps"]);
    assert!(ps.starts_with("CONTAINER ID"), "{ps}");
    assert!(ps.contains("long") && !ps.contains("short"), "{ps}");
    assert!(ps.contains("Up "), "{ps}");
    let all = e.ok(&["ps", "-a"]);
    assert!(all.contains("long") && all.contains("short"), "{all}");
    assert!(all.contains("Exited (0)"), "{all}");
    let q = e.ok(&["ps", "-aq"]);
    assert_eq!(q.lines().count(), 2);
    assert!(q.lines().all(|l| l.len() == 12));
    let exited = e.ok(&["ps", "-a", "--filter", "status=exited", "-q"]);
    assert_eq!(exited.lines().count(), 1);
    let json = e.ok(&["ps", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(v["Names"], "long");
    assert_eq!(v["State"], "running");
}

/// `--format` takes Docker's Go templates on every listing, as `docker ps`
/// and `docker images` do (it used to be ignored silently).
#[test]
fn listings_take_docker_format_templates() {
    let e = Engine::new();
    e.ok(&["run", "--name", "done", "@bb", "true"]);
    e.ok(&["run", "-d", "--name", "long", "@bb", "sleep", "1000"]);
    assert_eq!(e.ok(&["ps", "--format", "{{.Names}}"]), "long\n");
    assert_eq!(
        e.ok(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]),
        "long running\ndone exited\n"
    );
    let table = e.ok(&["ps", "-a", "--format", "table {{.Names}}\t{{.Image}}"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0], "NAMES   IMAGE", "{table}");
    assert_eq!(lines[1], "long    busybox", "{table}");
    assert_eq!(lines.len(), 3, "{table}");
    let one: serde_json::Value =
        serde_json::from_str(&e.ok(&["ps", "--format", "{{json .}}"])).unwrap();
    assert_eq!(one["Names"], "long");
    assert_eq!(
        e.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]),
        "busybox:latest\n"
    );
    let images = e.ok(&["images", "--format", "table {{.Repository}}\t{{.Tag}}"]);
    assert!(
        images.starts_with("REPOSITORY   TAG\nbusybox      latest\n"),
        "{images}"
    );
    // The default table is Docker's own template.
    assert!(e
        .ok(&["ps"])
        .starts_with("CONTAINER ID   IMAGE     COMMAND"));
    let (code, _, err) = e.code(&["ps", "--format", "{{.Nope}}"]);
    assert_eq!(code, 125);
    assert!(
        err.contains("invalid --format template") && err.contains("Nope"),
        "{err}"
    );
}

#[test]
fn create_then_start_attach_prints_and_reruns() {
    let e = Engine::new();
    let id = e.ok(&["create", "--name", "c1", "@bb", "echo", "hello"]);
    assert_eq!(id.trim().len(), 64);
    assert_eq!(e.inspect("c1", "{{.State.Status}}"), "created");
    assert_eq!(e.ok(&["start", "-a", "c1"]), "hello\n");
    assert_eq!(e.inspect("c1", "{{.State.Status}}"), "exited");
    // Starting an exited container runs its original command again.
    assert_eq!(e.ok(&["start", "-a", "c1"]), "hello\n");
    assert_eq!(e.ok(&["logs", "c1"]), "hello\nhello\n");
    // By unique id prefix.
    assert_eq!(e.ok(&["start", "-a", &id[..6]]), "hello\n");
}

#[test]
fn logs_of_an_exited_container() {
    let e = Engine::new();
    e.ok(&[
        "run",
        "--name",
        "c-l",
        "@bb",
        "sh",
        "-c",
        "echo one; echo two >&2; echo three",
    ]);
    let out = e.run(&["logs", "c-l"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\nthree\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "two\n");
    // Order across stdout and stderr is not defined (two pipes), so -n on stdout only.
    e.ok(&[
        "run",
        "--name",
        "c-n",
        "@bb",
        "sh",
        "-c",
        "echo one; echo two; echo three",
    ]);
    assert_eq!(e.ok(&["logs", "-n", "2", "c-n"]), "two\nthree\n");
    let ts = e.ok(&["logs", "-t", "c-l"]);
    assert!(
        ts.lines().all(|l| l.contains('T') && l.contains("Z ")),
        "{ts}"
    );
    let path = e.root.path().join("containers");
    let dir = std::fs::read_dir(path)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let raw = std::fs::read_to_string(dir.join("log.json")).unwrap();
    let first: serde_json::Value = serde_json::from_str(raw.lines().next().unwrap()).unwrap();
    assert_eq!(first["log"], "one\n");
    assert_eq!(first["stream"], "stdout");
    assert!(first["time"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn logs_follow_ends_when_container_exits() {
    let e = Engine::new();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "c-f",
        "@bb",
        "sh",
        "-c",
        "echo a; sleep 1; echo b",
    ]);
    assert_eq!(e.ok(&["logs", "-f", "c-f"]), "a\nb\n");
}

#[test]
fn stop_escalates_to_sigkill_after_grace() {
    let e = Engine::new();
    // PID 1 ignores SIGTERM (no handler), so only SIGKILL ends it.
    e.ok(&["run", "-d", "--name", "c-s", "@bb", "sleep", "1000"]);
    assert_eq!(e.ok(&["stop", "-t", "1", "c-s"]), "c-s\n");
    assert_eq!(e.inspect("c-s", "{{.State.ExitCode}}"), "137");
    assert_eq!(e.inspect("c-s", "{{.State.Running}}"), "false");
    // The rootfs is unmounted once stopped.
    let merged = e.inspect("c-s", "{{.GraphDriver.Data.MergedDir}}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&merged), "rootfs still mounted");
}

#[test]
fn stop_with_a_handler_exits_cleanly() {
    let e = Engine::new();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "c-t",
        "@bb",
        "sh",
        "-c",
        "trap 'exit 0' TERM; while true; do sleep 0.1; done",
    ]);
    e.ok(&["stop", "c-t"]);
    assert_eq!(e.inspect("c-t", "{{.State.ExitCode}}"), "0");
}

#[test]
fn kill_ends_at_once() {
    let e = Engine::new();
    e.ok(&["run", "-d", "--name", "c-k", "@bb", "sleep", "1000"]);
    assert_eq!(e.ok(&["kill", "c-k"]), "c-k\n");
    assert_eq!(e.inspect("c-k", "{{.State.Status}}"), "exited");
    assert_eq!(e.inspect("c-k", "{{.State.ExitCode}}"), "137");
    let (code, _, err) = e.code(&["kill", "c-k"]);
    assert_ne!(code, 0);
    assert!(err.contains("not running"), "{err}");
}

#[test]
fn containers_do_not_share_files() {
    let e = Engine::new();
    e.ok(&[
        "run",
        "--name",
        "c-a",
        "@bb",
        "sh",
        "-c",
        "echo x > /created-here",
    ]);
    let (code, _, _) = e.code(&["run", "@bb", "test", "-e", "/created-here"]);
    assert_eq!(code, 1);
    // The fixture (the image's layer) is untouched.
    assert!(!e.rootfs.join("created-here").exists());
}

/// A process started by `exec` is confined like the container's own: the
/// same seccomp filter (mode 2), no_new_privs and capabilities, with and
/// without a terminal.
#[test]
fn exec_runs_under_the_seccomp_filter() {
    let e = Engine::new();
    e.ok(&["run", "-d", "--name", "c-sc", "@bb", "sleep", "1000"]);
    let fields = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| {
                l.starts_with("Seccomp:")
                    || l.starts_with("NoNewPrivs:")
                    || l.starts_with("CapEff:")
            })
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    };
    let init = fields(&e.ok(&["exec", "c-sc", "cat", "/proc/1/status"]));
    let exec = fields(&e.ok(&["exec", "c-sc", "cat", "/proc/self/status"]));
    assert_eq!(
        exec,
        vec!["CapEff: 00000000a80425fb", "NoNewPrivs: 1", "Seccomp: 2"],
        "exec'd process"
    );
    assert_eq!(exec, init, "exec'd process vs the container's init");
    let out = e.ok(&[
        "exec",
        "-d",
        "c-sc",
        "sh",
        "-c",
        "grep Seccomp: /proc/self/status > /tmp/d",
    ]);
    assert_eq!(out, "");
    e.eventually("exec -d wrote its status", || {
        e.run(&["exec", "c-sc", "cat", "/tmp/d"])
            .stdout
            .starts_with(b"Seccomp:")
    });
    assert_eq!(
        e.ok(&["exec", "c-sc", "cat", "/tmp/d"])
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["Seccomp:", "2"]
    );
}

#[test]
fn exec_runs_in_the_container() {
    let e = Engine::new();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "c-x",
        "--hostname",
        "box",
        "@bb",
        "sleep",
        "1000",
    ]);
    assert_eq!(
        e.ok(&["exec", "c-x", "sh", "-c", "echo $(hostname)"]),
        "box\n"
    );
    let ps = e.ok(&["exec", "c-x", "ps"]);
    assert!(ps.contains("sleep 1000"), "{ps}");
    let (code, _, _) = e.code(&["exec", "c-x", "sh", "-c", "exit 7"]);
    assert_eq!(code, 7);
    let (code, _, _) = e.code(&["exec", "c-x", "nope"]);
    assert_eq!(code, 127);
    assert_eq!(e.ok(&["exec", "-u", "www-data", "c-x", "id", "-u"]), "33\n");
    assert_eq!(e.ok(&["exec", "-w", "/etc", "c-x", "pwd"]), "/etc\n");
    assert_eq!(
        e.ok(&["exec", "-e", "A=b", "c-x", "sh", "-c", "echo $A"]),
        "b\n"
    );
    let top = e.ok(&["top", "c-x"]);
    assert!(top.contains("sleep 1000"), "{top}");
}

/// Runs `berth ARGS` under a pseudo-terminal (util-linux `script`), feeding
/// `input` lines with pauses; returns (exit code, transcript).
fn under_pty(e: &Engine, args: &[&str], input: &[&str]) -> (i32, String) {
    require("script");
    let mut cmdline = vec![common::berth_bin().display().to_string()];
    cmdline.extend(
        e.args(args)
            .into_iter()
            .map(|a| shell_words::quote(&a).into_owned()),
    );
    let mut child = std::process::Command::new("script")
        .args(["-qec", &cmdline.join(" "), "/dev/null"])
        .env("BERTH_ROOT", e.root.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let lines: Vec<String> = input.iter().map(|s| s.to_string()).collect();
    let feeder = std::thread::spawn(move || {
        use std::io::Write;
        std::thread::sleep(Duration::from_millis(1500));
        for l in lines {
            let _ = stdin.write_all(l.as_bytes());
            let _ = stdin.flush();
            std::thread::sleep(Duration::from_millis(700));
        }
        std::thread::sleep(Duration::from_millis(1500));
    });
    let out = child.wait_with_output().unwrap();
    let _ = feeder.join();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn run_it_is_a_real_terminal() {
    let e = Engine::new();
    let (code, out) = under_pty(
        &e,
        &["run", "-it", "--name", "tty", "@bb", "sh"],
        &["tty; echo TERM=$TERM\r", "exit 5\r"],
    );
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("/dev/pts/0"), "{out}");
    assert!(out.contains("TERM=xterm"), "{out}");
}

#[test]
fn run_it_passes_the_window_size() {
    let e = Engine::new();
    require("script");
    let cmdline = format!(
        "stty rows 41 cols 103; {} run -it --rootfs {} sh -c 'stty size'",
        common::berth_bin().display(),
        e.rootfs.display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &cmdline, "/dev/null"])
        .env("BERTH_ROOT", e.root.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("41 103"), "{text}");
}

#[test]
fn run_it_ctrl_c_reaches_the_process() {
    let e = Engine::new();
    let (code, out) = under_pty(
        &e,
        &[
            "run",
            "-it",
            "@bb",
            "sh",
            "-c",
            "trap 'echo got-int; exit 3' INT; echo ready; while true; do sleep 0.1; done",
        ],
        &["\x03"],
    );
    assert!(out.contains("got-int"), "{out}");
    assert_eq!(code, 3, "{out}");
}

#[test]
fn run_it_detaches_with_ctrl_p_ctrl_q() {
    let e = Engine::new();
    let (code, out) = under_pty(
        &e,
        &["run", "-it", "--name", "c-d", "@bb", "sh"],
        &["\x10\x11"],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(e.inspect("c-d", "{{.State.Running}}"), "true");
}

#[test]
fn exec_it_through_a_pty() {
    let e = Engine::new();
    e.ok(&["run", "-d", "--name", "c-x", "@bb", "sleep", "1000"]);
    let (code, out) = under_pty(
        &e,
        &["exec", "-it", "c-x", "sh"],
        &["echo inside-$(hostname)\r", "exit 4\r"],
    );
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("inside-"), "{out}");
}

/// Docker's exec: TERM=xterm with -t (not the caller's TERM, whose
/// terminfo the image may lack) unless -e sets it; ctrl-p ctrl-q detaches
/// and leaves the process running.
#[test]
fn exec_it_sets_term_and_detaches_with_ctrl_p_ctrl_q() {
    let e = Engine::new();
    e.ok(&["run", "-d", "--name", "c-xt", "@bb", "sleep", "1000"]);
    let (code, out) = under_pty(
        &e,
        &["exec", "-it", "c-xt", "sh", "-c", "echo TERM=$TERM"],
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("TERM=xterm"), "{out}");
    assert!(
        !out.contains("TERM=xterm-"),
        "the caller's TERM leaked: {out}"
    );
    let (_, out) = under_pty(
        &e,
        &[
            "exec",
            "-it",
            "-e",
            "TERM=vt100",
            "c-xt",
            "sh",
            "-c",
            "echo TERM=$TERM",
        ],
        &[],
    );
    assert!(out.contains("TERM=vt100"), "{out}");
    let (code, out) = under_pty(
        &e,
        &[
            "exec",
            "-it",
            "c-xt",
            "sh",
            "-c",
            "echo $$ > /tmp/detached.pid; exec sleep 1000",
        ],
        &["\x10\x11"],
    );
    assert_eq!(code, 0, "detaching is a success: {out}");
    let pid = e.ok(&["exec", "c-xt", "cat", "/tmp/detached.pid"]);
    let pid = pid.trim();
    let alive = e.ok(&[
        "exec",
        "c-xt",
        "sh",
        "-c",
        &format!("kill -0 {pid} && echo alive"),
    ]);
    assert_eq!(alive.trim(), "alive", "the detached exec keeps running");
}

/// exec without -t, and health checks, start in the container's working
/// directory as with Docker (they started in / before).
#[test]
fn exec_and_health_checks_start_in_the_working_directory() {
    let e = Engine::new();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "c-wd",
        "-w",
        "/tmp",
        "--health-cmd",
        "test \"$(pwd)\" = /tmp",
        "--health-interval",
        "1s",
        "@bb",
        "sleep",
        "1000",
    ]);
    assert_eq!(e.ok(&["exec", "c-wd", "pwd"]), "/tmp\n");
    assert_eq!(e.ok(&["exec", "-w", "/", "c-wd", "pwd"]), "/\n");
    eventually("the health check passes in /tmp", || {
        e.inspect("c-wd", "{{.State.Health.Status}}") == "healthy"
    });
}

#[test]
fn run_i_forwards_stdin() {
    let e = Engine::new();
    let mut child = e
        .root
        .cmd()
        .args(e.args(&["run", "-i", "@bb", "sh", "-c", "tr a-z A-Z"]))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"hello stdin\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "HELLO STDIN\n");
}

#[test]
fn run_rm_removes_the_container() {
    let e = Engine::new();
    assert_eq!(e.ok(&["run", "--rm", "@bb", "echo", "bye"]), "bye\n");
    assert_eq!(e.ok(&["ps", "-aq"]), "");
}

#[test]
fn names_ids_and_rm() {
    let e = Engine::new();
    let id = e.ok(&["create", "@bb", "true"]).trim().to_string();
    let name = e.inspect(&id, "{{.Name}}");
    let (adj, noun) = name
        .trim_start_matches('/')
        .split_once('_')
        .expect("adjective_noun");
    assert!(!adj.is_empty() && !noun.is_empty());
    e.ok(&["create", "--name", "web", "@bb", "true"]);
    let (code, _, err) = e.code(&["create", "--name", "web", "@bb", "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("already in use"), "{err}");
    e.ok(&["run", "-d", "--name", "up", "@bb", "sleep", "100"]);
    let (code, _, err) = e.code(&["rm", "up"]);
    assert_eq!(code, 1);
    assert!(err.contains("stop the container"), "{err}");
    assert_eq!(
        e.ok(&["rm", "-f", "up", "web", &id[..12]]),
        format!("up\nweb\n{}\n", &id[..12])
    );
    assert_eq!(e.ok(&["ps", "-aq"]), "");
    let (code, _, err) = e.code(&["rm", "nothing-here"]);
    assert_eq!(code, 1);
    assert!(err.contains("No such container"), "{err}");
}

#[test]
fn inspect_has_docker_shape() {
    let e = Engine::new();
    e.ok(&[
        "run",
        "--name",
        "c-i",
        "-e",
        "FOO=bar",
        "-w",
        "/tmp",
        "--memory",
        "32m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "50",
        "@bb",
        "sh",
        "-c",
        "echo $FOO; pwd",
    ]);
    assert_eq!(e.ok(&["logs", "c-i"]), "bar\n/tmp\n");
    let v: serde_json::Value = serde_json::from_str(&e.ok(&["inspect", "c-i"])).unwrap();
    let c = &v[0];
    assert_eq!(c["Id"].as_str().unwrap().len(), 64);
    assert_eq!(c["Name"], "/c-i");
    assert_eq!(c["State"]["Status"], "exited");
    assert_eq!(c["State"]["Running"], false);
    assert_eq!(c["State"]["ExitCode"], 0);
    assert_eq!(c["State"]["OOMKilled"], false);
    assert!(c["State"]["StartedAt"].as_str().unwrap().starts_with("20"));
    assert!(c["State"]["FinishedAt"].as_str().unwrap().starts_with("20"));
    assert_eq!(c["HostConfig"]["Memory"], 32 << 20);
    assert_eq!(c["HostConfig"]["NanoCpus"], 500_000_000);
    assert_eq!(c["HostConfig"]["PidsLimit"], 50);
    assert_eq!(c["Config"]["WorkingDir"], "/tmp");
    assert_eq!(e.ok(&["wait", "c-i"]), "0\n");
}

#[test]
fn user_and_environment() {
    let e = Engine::new();
    assert_eq!(
        e.ok(&["run", "-u", "www-data", "@bb", "id"]),
        "uid=33(www-data) gid=33(www-data) groups=33(www-data)\n"
    );
    assert_eq!(
        e.ok(&["run", "-u", "1234:5678", "@bb", "id", "-u"]),
        "1234\n"
    );
    let (code, _, err) = e.code(&["run", "-u", "nobody-here", "@bb", "id"]);
    assert_eq!(code, 125);
    assert!(err.contains("unable to find user nobody-here"), "{err}");
    let env = e.ok(&["run", "--hostname", "h1", "@bb", "env"]);
    assert!(env.contains("HOSTNAME=h1"), "{env}");
    assert!(env.contains("PATH=/usr/local/sbin"), "{env}");
    assert!(env.contains("HOME=/root"), "{env}");
    let envfile = e.root.path().join("env.list");
    std::fs::write(&envfile, "# comment\nX=1\n\nY=two words\n").unwrap();
    let out = e.ok(&[
        "run",
        "--env-file",
        envfile.to_str().unwrap(),
        "@bb",
        "sh",
        "-c",
        "echo $X-$Y",
    ]);
    assert_eq!(out, "1-two words\n");
    assert_eq!(
        e.ok(&["run", "--entrypoint", "echo", "@bb", "via", "entrypoint"]),
        "via entrypoint\n"
    );
}

#[test]
fn volumes_and_tmpfs() {
    let e = Engine::new();
    let host = e.root.path().join("shared");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("in.txt"), "from host\n").unwrap();
    let v = format!("{}:/data", host.display());
    assert_eq!(
        e.ok(&[
            "run",
            "--volume",
            &v,
            "@bb",
            "sh",
            "-c",
            "cat /data/in.txt; echo back > /data/out.txt"
        ]),
        "from host\n"
    );
    assert_eq!(
        std::fs::read_to_string(host.join("out.txt")).unwrap(),
        "back\n"
    );
    let ro = format!("{}:/data:ro", host.display());
    let (code, _, _) = e.code(&["run", "-v", &ro, "@bb", "touch", "/data/x"]);
    assert_eq!(code, 1);
    let out = e.ok(&[
        "run",
        "--tmpfs",
        "/scratch:size=1m",
        "@bb",
        "sh",
        "-c",
        "grep /scratch /proc/mounts",
    ]);
    assert!(out.contains("tmpfs") && out.contains("size=1024k"), "{out}");
}

#[test]
fn init_reaps_and_forwards_signals() {
    let e = Engine::new();
    let out = e.ok(&["run", "--init", "@bb", "ps", "-o", "pid,args"]);
    assert!(out.contains("1 /sbin/docker-init"), "{out}");
    e.ok(&[
        "run", "-d", "--init", "--name", "in", "@bb", "sleep", "1000",
    ]);
    // With an init, SIGTERM reaches sleep (not PID 1) and ends it quickly.
    e.ok(&["stop", "-t", "30", "in"]);
    assert_eq!(e.inspect("in", "{{.State.ExitCode}}"), "143");
}

// ---------------------------------------------------------------- confinement

#[test]
fn capabilities_are_dockers_defaults() {
    let e = Engine::new();
    let out = e.ok(&["run", "@bb", "grep", "^Cap", "/proc/self/status"]);
    for (k, v) in [
        ("CapInh", "0000000000000000"),
        ("CapPrm", "00000000a80425fb"),
        ("CapEff", "00000000a80425fb"),
        ("CapBnd", "00000000a80425fb"),
        ("CapAmb", "0000000000000000"),
    ] {
        assert!(out.contains(&format!("{k}:\t{v}")), "{k} in {out}");
    }
    let nnp = e.ok(&["run", "@bb", "grep", "NoNewPrivs", "/proc/self/status"]);
    assert!(nnp.contains('1'), "{nnp}");
}

#[test]
fn privileged_syscalls_fail_with_eperm() {
    let e = Engine::new();
    let pm = probe_mount();
    for call in ["unshare", "mount", "keyctl"] {
        let (code, out, err) = e.code(&["run", "--volume", &pm, "@bb", "/probe", call]);
        assert_eq!(out.trim(), "EPERM", "{call}: {out} {err}");
        assert_eq!(code, 1);
    }
}

#[test]
fn proc_and_sys_are_confined() {
    let e = Engine::new();
    // /proc/kcore is masked (empty) when the kernel has it.
    let out = e.ok(&[
        "run",
        "@bb",
        "sh",
        "-c",
        "if [ -e /proc/kcore ]; then wc -c < /proc/kcore; else echo 0; fi",
    ]);
    assert_eq!(out.trim(), "0");
    let (code, _, err) = e.code(&[
        "run",
        "@bb",
        "sh",
        "-c",
        "echo 1 > /proc/sys/kernel/domainname",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("Read-only"), "{err}");
    let (code, _, _) = e.code(&["run", "@bb", "touch", "/sys/x"]);
    assert_ne!(code, 0);
    // Only the container's processes are visible.
    let ps = e.ok(&["run", "@bb", "ps", "-o", "pid"]);
    assert_eq!(ps.lines().count(), 2, "{ps}");
    // Host files are invisible.
    let (code, _, _) = e.code(&["run", "@bb", "test", "-e", env!("CARGO_MANIFEST_DIR")]);
    assert_eq!(code, 1);
    // Only fds 0-2 are passed in (ls itself opens one more).
    let fds = e.ok(&["run", "@bb", "ls", "/proc/self/fd"]);
    assert_eq!(
        fds.split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "2", "3"],
        "{fds}"
    );
    // Devices: default-deny with the standard nodes.
    let (code, _, _) = e.code(&[
        "run",
        "@bb",
        "sh",
        "-c",
        "mknod /tmp/sda b 8 0 && head -c1 /tmp/sda",
    ]);
    assert_ne!(code, 0);
    assert_eq!(
        e.ok(&["run", "@bb", "sh", "-c", "head -c 3 /dev/zero | wc -c"])
            .trim(),
        "3"
    );
    let shm = e.ok(&["run", "@bb", "sh", "-c", "grep /dev/shm /proc/mounts"]);
    assert!(shm.contains("size=65536k"), "{shm}");
}

#[test]
fn proc_self_fd_escape_fails() {
    let e = Engine::new();
    // A working directory through an inherited fd would reach the host.
    let (code, _, err) = e.code(&["run", "-w", "/proc/self/fd/3", "@bb", "ls"]);
    assert_ne!(code, 0, "{err}");
    let (code, out, _) = e.code(&[
        "run",
        "@bb",
        "sh",
        "-c",
        "ls /proc/1/fd; cd /proc/self/fd/3 2>/dev/null && ls ..",
    ]);
    assert!(!out.contains(env!("CARGO_MANIFEST_DIR")), "{out} {code}");
}

#[test]
fn network_modes_default_none_host() {
    let e = Engine::new();
    let count = "ip link | grep -c '^[0-9]'";
    // The default network (berth0): loopback and eth0.
    assert_eq!(e.ok(&["run", "@bb", "sh", "-c", count]), "2\n");
    let lo = e.ok(&["run", "@bb", "ip", "link", "show", "lo"]);
    assert!(lo.contains("UP"), "{lo}");
    let eth0 = e.ok(&["run", "@bb", "ip", "-4", "-o", "addr", "show", "eth0"]);
    assert!(eth0.contains("inet 10."), "{eth0}");
    assert_eq!(
        e.ok(&["run", "--network", "none", "@bb", "sh", "-c", count]),
        "1\n"
    );
    // The host's links (other tests add and remove theirs meanwhile, so
    // compare names that stay: the host's own interfaces, not a count).
    let routes = std::fs::read_to_string("/proc/net/route").unwrap();
    let uplink = routes
        .lines()
        .skip(1)
        .find(|l| l.split_whitespace().nth(1) == Some("00000000"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("lo")
        .to_string();
    let out = e.ok(&["run", "--network", "host", "@bb", "ip", "-o", "link"]);
    assert!(out.contains(&format!(": {uplink}:")), "{uplink} in {out}");
    assert!(out.contains(": lo:"), "{out}");
}

#[test]
fn memory_limit_oom_kills() {
    let e = Engine::new();
    let (code, _, err) = e.code(&[
        "run",
        "--name",
        "oom",
        "--memory",
        "16m",
        "@bb",
        "sh",
        "-c",
        "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived",
    ]);
    assert_eq!(code, 137, "{err}");
    assert_eq!(e.inspect("oom", "{{.State.OOMKilled}}"), "true");
}

#[test]
fn pids_limit_stops_a_fork_bomb() {
    let e = Engine::new();
    let (code, out, err) = e.code(&[
        "run",
        "--pids-limit",
        "20",
        "@bb",
        "sh",
        "-c",
        "for i in $(seq 1 100); do sleep 5 & done; echo all-forked",
    ]);
    assert!(
        !out.contains("all-forked"),
        "100 processes under a limit of 20: {out}"
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("can't fork") || err.contains("Resource temporarily unavailable"),
        "{err}"
    );
}

fn sha256(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

#[test]
fn host_binary_survives_writes_to_proc_exe() {
    let e = Engine::new();
    let bin = common::berth_bin();
    let before = sha256(&bin);
    let pm = probe_mount();
    e.ok(&["run", "-d", "--name", "evil", "--volume", &pm, "@bb", "sh", "-c",
        "while true; do for p in /proc/[0-9]*; do readlink $p/exe >> /tmp/seen; /probe write $p/exe >> /tmp/tried; done; sleep 0.05; done"]);
    // berth processes enter the container during exec: the loop tries them.
    for _ in 0..10 {
        let _ = e.run(&["exec", "evil", "true"]);
    }
    let (_, out, _) = e.code(&["exec", "evil", "/probe", "write", "/proc/self/exe"]);
    assert_ne!(out.trim(), "ok", "writing /proc/self/exe succeeded");
    // The supervisor runs from a read-only view (EROFS) or a sealed memfd,
    // never from the writable host binary.
    let pid = e.inspect("evil", "{{.State.SupervisorPid}}");
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert_ne!(exe, bin, "the supervisor runs the host binary itself");
    if !exe.to_string_lossy().contains("memfd") {
        let err = std::fs::OpenOptions::new()
            .append(true)
            .open(format!("/proc/{pid}/exe"))
            .expect_err("the supervisor's exe is writable");
        assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
    }
    e.ok(&["rm", "-f", "evil"]);
    assert_eq!(sha256(&bin), before, "the host berth binary was modified");
}

// ---------------------------------------------------------------- supervisor

fn status_of(e: &Engine, name: &str) -> String {
    e.inspect(name, "{{.State.Status}}")
}

#[test]
fn run_d_returns_and_container_keeps_running() {
    let e = Engine::new();
    let id = e.ok(&["run", "-d", "--name", "bg", "@bb", "sleep", "1000"]);
    assert_eq!(id.trim().len(), 64);
    // The CLI has exited (we have its output); the container runs on.
    assert_eq!(status_of(&e, "bg"), "running");
    let pid: i32 = e.inspect("bg", "{{.State.Pid}}").parse().unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    // The supervisor is small.
    let sup = e.inspect("bg", "{{.State.SupervisorPid}}");
    let status = std::fs::read_to_string(format!("/proc/{sup}/status")).unwrap();
    let rss_kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap();
    eprintln!("supervisor VmRSS: {rss_kb} kB");
    assert!(rss_kb < 12 * 1024, "supervisor RSS {rss_kb} kB");
}

#[test]
fn on_failure_restarts_three_times_then_stays_exited() {
    let e = Engine::new();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "of",
        "--restart",
        "on-failure:3",
        "@bb",
        "sh",
        "-c",
        "echo try; exit 3",
    ]);
    e.eventually("three restarts then exited", || {
        status_of(&e, "of") == "exited"
            && e.inspect("of", "{{.RestartCount}}") == "3"
            && !Path::new(&format!(
                "/proc/{}",
                e.inspect("of", "{{.State.SupervisorPid}}")
            ))
            .exists()
    });
    assert_eq!(e.ok(&["logs", "of"]), "try\ntry\ntry\ntry\n");
    assert_eq!(e.inspect("of", "{{.State.ExitCode}}"), "3");
}

#[test]
fn always_restarts_after_the_process_is_killed() {
    let e = Engine::new();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "al",
        "--restart",
        "always",
        "@bb",
        "sleep",
        "1000",
    ]);
    let pid = e.inspect("al", "{{.State.Pid}}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid.parse().unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // One read of status, pid and count: separate reads can straddle the
    // supervisor's "exited, pid 0" step between the kill and the restart.
    e.eventually("restarted with a new pid", || {
        let now = e.inspect("al", "{{.State.Status}} {{.State.Pid}} {{.RestartCount}}");
        let f: Vec<&str> = now.split(' ').collect();
        f[0] == "running" && f[1] != pid && f[1] != "0" && f[2] == "1"
    });
    // A user's stop is final.
    e.ok(&["stop", "-t", "1", "al"]);
    assert_eq!(status_of(&e, "al"), "exited");
}

#[test]
fn failing_health_check_turns_unhealthy() {
    let e = Engine::new();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "c-h",
        "--health-cmd",
        "test -e /healthy",
        "--health-interval",
        "300ms",
        "--health-retries",
        "2",
        "@bb",
        "sleep",
        "1000",
    ]);
    e.eventually("unhealthy", || {
        e.inspect("c-h", "{{.State.Health.Status}}") == "unhealthy"
    });
    let ps = e.ok(&["ps"]);
    assert!(ps.contains("(unhealthy)"), "{ps}");
    e.ok(&["exec", "c-h", "touch", "/healthy"]);
    e.eventually("healthy", || {
        e.inspect("c-h", "{{.State.Health.Status}}") == "healthy"
    });
    assert!(e.ok(&["ps"]).contains("(healthy)"));
}

/// berth probes early (before the first interval) while a container is
/// starting; an early failure does not count, and a start interval is
/// honoured during the start period.
#[test]
fn health_is_known_before_the_first_interval() {
    let e = Engine::new();
    let health = |name: &str| -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(&e.ok(&["inspect", name])).unwrap();
        v[0]["State"]["Health"].clone()
    };
    // Each container: `--health-interval 60s` and sleeps; Docker would
    // run no probe in the first minute.
    let run = |name: &str, check: &str, flags: &[&str]| {
        let mut args = vec!["run", "-d", "--name", name, "--health-cmd", check];
        args.extend_from_slice(&["--health-interval", "60s"]);
        args.extend_from_slice(flags);
        args.extend_from_slice(&["@bb", "sleep", "1000"]);
        e.ok(&args);
    };
    // Healthy long before the interval.
    run("h-early", "true", &[]);
    // Failing early probes: still starting, nothing counted, even with one retry.
    run("h-fail", "false", &["--health-retries", "1"]);
    // A start period with a short start interval (Docker 25's rule).
    run(
        "h-period",
        "true",
        &[
            "--health-start-period",
            "60s",
            "--health-start-interval",
            "100ms",
        ],
    );
    e.eventually("h-early healthy", || {
        health("h-early")["Status"] == "healthy"
    });
    e.eventually("h-period healthy", || {
        health("h-period")["Status"] == "healthy"
    });
    e.eventually("three early probes of h-fail", || {
        health("h-fail")["Log"].as_array().map_or(0, Vec::len) >= 3
    });
    let h = health("h-fail");
    assert_eq!(h["Status"], "starting", "{h}");
    assert_eq!(h["FailingStreak"], 0, "{h}");
}

#[test]
fn dead_supervisor_is_reported_and_stop_still_works() {
    let e = Engine::new();
    e.ok(&["run", "-d", "--name", "orph", "@bb", "sleep", "1000"]);
    let sup: i32 = e
        .inspect("orph", "{{.State.SupervisorPid}}")
        .parse()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sup),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    e.eventually("supervisor gone", || {
        !Path::new(&format!("/proc/{sup}/status")).exists()
            || std::fs::read_to_string(format!("/proc/{sup}/status"))
                .unwrap_or_default()
                .contains("zombie")
    });
    let ps = e.ok(&["ps"]);
    assert!(ps.contains("supervisor dead"), "{ps}");
    e.ok(&["stop", "-t", "1", "orph"]);
    assert_eq!(status_of(&e, "orph"), "exited");
    e.ok(&["rm", "orph"]);
    assert_eq!(e.ok(&["ps", "-aq"]), "");
}

#[test]
fn restart_and_attach_and_prune() {
    let e = Engine::new();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "c-r",
        "@bb",
        "sh",
        "-c",
        "echo started; sleep 1000",
    ]);
    e.ok(&["restart", "-t", "1", "c-r"]);
    e.eventually("two starts logged", || {
        e.ok(&["logs", "c-r"]) == "started\nstarted\n"
    });
    assert_eq!(status_of(&e, "c-r"), "running");
    e.ok(&["run", "--name", "done1", "@bb", "true"]);
    e.ok(&["create", "--name", "done2", "@bb", "true"]);
    let out = e.ok(&["container", "prune", "-f"]);
    assert!(out.starts_with("Deleted Containers:"), "{out}");
    assert!(out.contains("Total reclaimed space:"), "{out}");
    assert_eq!(out.lines().filter(|l| l.len() == 64).count(), 2, "{out}");
    let left = e.ok(&["ps", "-a", "--format", "json"]);
    assert_eq!(left.lines().count(), 1);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "talk",
        "@bb",
        "sh",
        "-c",
        "sleep 1; echo late; exit 9",
    ]);
    let (code, out, _) = e.code(&["attach", "talk"]);
    assert_eq!(out, "late\n");
    assert_eq!(code, 9);
}

// ---------------------------------------------------------------- OCI runtime CLI

#[test]
fn oci_run_matches_runc_on_the_same_bundle() {
    let e = Engine::new();
    require("runc");
    let bundle = e.root.path().join("bundle");
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
    spec["process"]["args"] = serde_json::json!([
        "sh",
        "-c",
        "echo out; echo err >&2; id; hostname; ls /; cat /proc/self/status | grep CapEff; exit 3"
    ]);
    spec["root"]["path"] = e.rootfs.display().to_string().into();
    std::fs::write(&path, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();

    let runc = std::process::Command::new("runc")
        .arg("--root")
        .arg(e.root.path().join("runc-state"))
        .args(["run", "--bundle"])
        .arg(&bundle)
        .arg("cmp-runc")
        .output()
        .unwrap();
    let berth = e.run(&[
        "oci",
        "run",
        "--bundle",
        bundle.to_str().unwrap(),
        "cmp-berth",
    ]);
    assert_eq!(berth.status.code(), runc.status.code());
    assert_eq!(runc.status.code(), Some(3));
    assert_eq!(
        String::from_utf8_lossy(&berth.stdout),
        String::from_utf8_lossy(&runc.stdout)
    );
    assert_eq!(String::from_utf8_lossy(&berth.stderr), "err\n");

    // The lifecycle verbs and runc's state JSON.
    spec["process"]["args"] = serde_json::json!(["sleep", "1000"]);
    std::fs::write(&path, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
    let b = bundle.to_str().unwrap();
    let pidfile = e.root.path().join("pid");
    // As with runc, the container's init inherits create's stdio: don't pipe it.
    let st = e
        .root
        .cmd()
        .args([
            "oci",
            "create",
            "--bundle",
            b,
            "--pid-file",
            pidfile.to_str().unwrap(),
            "life",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    let guard = OciGuard(&e, "life");
    assert!(st.success());
    let state: serde_json::Value = serde_json::from_str(&e.ok(&["oci", "state", "life"])).unwrap();
    assert_eq!(state["status"], "created");
    assert_eq!(state["id"], "life");
    assert_eq!(
        state["pid"].as_i64().unwrap().to_string(),
        std::fs::read_to_string(&pidfile).unwrap().trim()
    );
    e.ok(&["oci", "start", "life"]);
    let state: serde_json::Value = serde_json::from_str(&e.ok(&["oci", "state", "life"])).unwrap();
    assert_eq!(state["status"], "running");
    assert_eq!(e.ok(&["oci", "exec", "life", "echo", "in"]), "in\n");
    e.ok(&["oci", "kill", "life", "KILL"]);
    e.eventually("stopped", || {
        let s: serde_json::Value = serde_json::from_str(&e.ok(&["oci", "state", "life"])).unwrap();
        s["status"] == "stopped"
    });
    e.ok(&["oci", "delete", "life"]);
    let (code, _, _) = e.code(&["oci", "state", "life"]);
    assert_ne!(code, 0);
    drop(guard);
}

/// Force-deletes an OCI container when a test ends.
struct OciGuard<'a>(&'a Engine, &'static str);

impl Drop for OciGuard<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(&["oci", "delete", "--force", self.1]);
    }
}

#[test]
fn overlay_whiteouts_become_oci_whiteouts_in_a_layer() {
    let _e = Engine::new(); // asserts root: mknod of a whiteout and trusted.* xattrs need it
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("var/cache")).unwrap();
    nix::sys::stat::mknod(
        &d.path().join("var/gone"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        0,
    )
    .unwrap();
    xattr::set(d.path().join("var/cache"), "trusted.overlay.opaque", b"y").unwrap();
    let mut out = Vec::new();
    berth::runtime::diff::write_layer(d.path(), &mut out).unwrap();
    let mut names: Vec<String> = tar::Archive::new(&out[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["var", "var/.wh.gone", "var/cache", "var/cache/.wh..wh..opq"]
    );
}

#[test]
fn hostile_flags_fail_cleanly_with_125() {
    let e = Engine::new();
    for (args, needle) in [
        (
            vec!["run", "--restart", "sometimes", "@bb", "true"],
            "invalid restart policy",
        ),
        (
            vec!["run", "--memory", "lots", "@bb", "true"],
            "invalid memory size",
        ),
        (
            vec!["run", "--memory", "1k", "@bb", "true"],
            "minimum memory limit",
        ),
        (vec!["run", "--cpus", "-1", "@bb", "true"], "--cpus"),
        (
            vec!["run", "--volume", "../escape:/data", "@bb", "true"],
            "invalid volume name",
        ),
        (
            vec!["run", "--name", "../../etc", "@bb", "true"],
            "invalid container name",
        ),
        (
            vec!["run", "--network", "bridge0", "@bb", "true"],
            "network bridge0 not found",
        ),
        (
            vec!["run", "--rm", "--restart", "always", "@bb", "true"],
            "conflicting options",
        ),
        (
            vec!["run", "--rootfs", "/definitely/missing", "true"],
            "rootfs directory",
        ),
        (
            vec![
                "run",
                "--health-cmd",
                "true",
                "--health-interval",
                "soon",
                "@bb",
                "true",
            ],
            "invalid duration",
        ),
    ] {
        let (code, _, err) = e.code(&args);
        assert_eq!(code, 125, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(
            err.lines().count(),
            1,
            "{args:?}: one-line error expected: {err}"
        );
    }
    assert_eq!(e.ok(&["ps", "-aq"]), "", "no container is left behind");
    let (code, _, err) = e.code(&["logs", "nope"]);
    assert_ne!(code, 0);
    assert!(err.contains("No such container"), "{err}");
}

#[test]
fn foreground_run_passes_signals_to_the_container() {
    let e = Engine::new();
    let child = e
        .root
        .cmd()
        .args(e.args(&[
            "run",
            "--name",
            "c-sig",
            "@bb",
            "sh",
            "-c",
            "trap 'echo got-term; exit 7' TERM; echo ready; while true; do sleep 0.1; done",
        ]))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    e.eventually("running", || {
        let (_, out, _) = e.code(&["inspect", "-f", "{{.State.Status}}", "c-sig"]);
        out.trim() == "running"
    });
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ready\ngot-term\n");
}

#[test]
fn commit_makes_an_image_whose_command_runs() {
    let e = Engine::new();
    e.ok(&[
        "run",
        "--name",
        "mk",
        "@bb",
        "sh",
        "-c",
        "echo made > /hello.txt; rm /etc/group; mkdir /data; echo 1 > /data/x",
    ]);
    let id = e.ok(&[
        "commit",
        "-c",
        "CMD [\"cat\", \"/hello.txt\"]",
        "-m",
        "my change",
        "mk",
        "mine:v1",
    ]);
    assert!(
        id.trim().starts_with("sha256:") && id.trim().len() == 71,
        "{id}"
    );
    assert_eq!(e.ok(&["run", "mine:v1"]), "made\n");
    // Deletions are whiteouts in the new layer; additions are there.
    let (code, out, _) = e.code(&[
        "run",
        "mine:v1",
        "sh",
        "-c",
        "cat /data/x; test -e /etc/group",
    ]);
    assert_eq!(out, "1\n");
    assert_eq!(code, 1, "the deleted file came back");
    let images = e.ok(&["images"]);
    assert!(images.contains("mine") && images.contains("v1"), "{images}");
    // A container from a directory has no image to commit onto.
    e.ok(&["create", "--name", "dir", "@rootfs", "true"]);
    let (code, _, err) = e.code(&["commit", "dir", "x:y"]);
    assert_eq!(code, 125);
    assert!(err.contains("not an image"), "{err}");
}

#[test]
fn system_prune_reclaims_and_reports() {
    let e = Engine::new();
    e.ok(&[
        "run",
        "--name",
        "big",
        "@bb",
        "sh",
        "-c",
        "head -c 300000 /dev/urandom > /blob",
    ]);
    e.ok(&["commit", "big", "junk:1"]);
    e.ok(&["run", "-d", "--name", "keep", "@bb", "sleep", "1000"]);
    let df = e.ok(&["system", "df"]);
    assert!(df.starts_with("TYPE"), "{df}");
    assert!(
        df.lines()
            .any(|l| l.starts_with("Containers") && l.contains(" 2 ") && l.contains(" 1 ")),
        "{df}"
    );
    // Without -f it asks, and "no" keeps everything.
    let mut child = e
        .root
        .cmd()
        .args(["system", "prune"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"n\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("Are you sure"));
    assert_eq!(e.ok(&["ps", "-aq"]).lines().count(), 2);
    let out = e.ok(&["system", "prune", "-a", "-f"]);
    assert!(out.contains("Deleted Containers:"), "{out}");
    assert!(out.contains("untagged: junk:1"), "{out}");
    let reclaimed = out.lines().last().unwrap();
    assert!(reclaimed.starts_with("Total reclaimed space: "), "{out}");
    assert!(
        reclaimed.ends_with("kB") || reclaimed.ends_with("MB"),
        "{reclaimed}"
    );
    // The running container and its image stay.
    assert_eq!(e.ok(&["ps", "-q"]).lines().count(), 1);
    assert!(e.ok(&["images"]).contains("busybox"));
}

#[test]
fn exec_it_gets_its_own_pty_with_job_control() {
    let e = Engine::new();
    e.ok(&["run", "-d", "--name", "c-xpty", "@bb", "sleep", "1000"]);
    let (code, out) = under_pty(
        &e,
        &["exec", "-it", "c-xpty", "sh"],
        &[
            // A pty of the container's devpts (the caller's terminal is not
            // visible in there), a controlling terminal, and job control:
            // `sleep &` shows as job [1].
            "tty; echo ctty=$(ls -l /proc/self/fd/0 | sed 's/.*-> //')\r",
            "sleep 30 & jobs; kill %1\r",
            "exit 6\r",
        ],
    );
    assert_eq!(code, 6, "{out}");
    assert!(out.contains("ctty=/dev/pts/"), "{out}");
    assert!(out.contains("[1]"), "{out}");
    assert!(!out.contains("can't access tty"), "{out}");
    assert!(!out.contains("job control turned off"), "{out}");
}

#[test]
fn exec_t_passes_the_window_size() {
    let e = Engine::new();
    e.ok(&["run", "-d", "--name", "c-xsize", "@bb", "sleep", "1000"]);
    require("script");
    let cmdline = format!(
        "stty rows 37 cols 91; {} exec -t c-xsize stty size",
        common::berth_bin().display(),
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &cmdline, "/dev/null"])
        .env("BERTH_ROOT", e.root.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("37 91"), "{text}");
}
