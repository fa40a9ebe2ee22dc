//! Integration: the faults a developer's machine meets (issue 12):
//! overlapping commands on one project, corrupt records, a dead
//! supervisor, orphan container directories, runaway logs, a full state
//! root, and SIGKILLed `up`/`down` — each as root, each with its own state
//! root, leaving nothing behind.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use common::{busybox_rootfs_tar, eventually, TestRoot};

/// A project directory in its own state root; `down` on drop.
struct Project {
    root: TestRoot,
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    name: String,
}

impl Project {
    fn new(prefix: &str, manifest: &str) -> Self {
        let root = TestRoot::new();
        let tar = busybox_rootfs_tar();
        root.ok(&["import", tar.to_str().unwrap(), "busybox"]);
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("app");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("berth.toml"), manifest).unwrap();
        Self {
            root,
            _tmp: tmp,
            dir,
            name: format!("{prefix}{}", std::process::id() % 100000),
        }
    }

    /// `berth VERB -p NAME REST…` in the project directory.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.root.cmd();
        c.current_dir(&self.dir);
        c.arg(args[0]).arg("-p").arg(&self.name).args(&args[1..]);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        common::succeeded(args, &self.run(args))
    }

    fn spawn(&self, args: &[&str]) -> Child {
        self.cmd(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// (name, id, state) of the project's containers.
    fn containers(&self) -> Vec<(String, String, String)> {
        let out = self.ok(&["compose", "ps", "-a", "--format", "json"]);
        common::compose_ps_rows(&out)
    }

    fn id_of(&self, service: &str) -> String {
        let name = format!("{}-{service}-1", self.name);
        self.containers()
            .into_iter()
            .find(|c| c.0 == name)
            .unwrap_or_else(|| panic!("no container {name}"))
            .1
    }

    /// The networks in the state root.
    fn networks(&self) -> Vec<String> {
        let out = self.root.ok(&["network", "ls", "--format", "json"]);
        let all: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
        all.iter()
            .filter_map(|n| n["Name"].as_str())
            .filter(|n| n.starts_with(&self.name))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self.run(&["down", "-t", "0", "--remove-orphans", "--volumes"]);
        self.root.remove_all_containers();
    }
}

const THREE: &str = r#"
[services.db]
image = "busybox"
command = ["sleep", "100000"]
stop_signal = "KILL"

[services.api]
image = "busybox"
command = ["sleep", "100000"]
stop_signal = "KILL"
depends_on = ["db"]

[services.web]
image = "busybox"
command = ["sleep", "100000"]
stop_signal = "KILL"
depends_on = ["api"]
"#;

/// Removes every container of a root on drop (tests that use a root
/// without a project).
struct Containers<'a>(&'a TestRoot);

impl Drop for Containers<'_> {
    fn drop(&mut self) {
        self.0.remove_all_containers();
    }
}

/// Waits for `child`, returning its output and when it ended.
fn finish(mut child: Child) -> (Output, Instant) {
    loop {
        if child.try_wait().unwrap().is_some() {
            let at = Instant::now();
            return (child.wait_with_output().unwrap(), at);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The project is exactly what `up` makes: three running containers and
/// its network; or, after `down`, nothing.
fn assert_is(p: &Project, up: bool, round: usize) {
    let cs = p.containers();
    let nets = p.networks();
    if up {
        assert_eq!(cs.len(), 3, "round {round}: up was last: {cs:?}");
        assert!(cs.iter().all(|c| c.2 == "running"), "round {round}: {cs:?}");
        assert_eq!(nets.len(), 1, "round {round}: {nets:?}");
    } else {
        assert!(cs.is_empty(), "round {round}: down was last: {cs:?}");
        assert!(nets.is_empty(), "round {round}: down was last: {nets:?}");
    }
}

// ---------------------------------------------------------------- 1: lock

#[test]
fn overlapping_up_and_down_end_as_the_last_command_says() {
    let p = Project::new("overlap", THREE);
    for round in 0..20 {
        let delay = Duration::from_millis(rand::random::<u64>() % 400);
        let up = p.spawn(&["up", "-d"]);
        std::thread::sleep(delay);
        let down = p.spawn(&["down", "-t", "0"]);
        let ((up_out, up_end), (down_out, down_end)) = (finish(up), finish(down));
        for (what, out) in [("up", &up_out), ("down", &down_out)] {
            assert!(
                out.status.success(),
                "round {round} ({delay:?}): {what} failed ({:?})\n{}",
                out.status.code(),
                text(&out.stderr)
            );
        }
        let waited = |o: &Output| text(&o.stderr).contains("waiting for another berth");
        // The one that waited ran second; without overlap, the later one.
        let up_last = if waited(&up_out) || waited(&down_out) {
            waited(&up_out)
        } else {
            up_end > down_end
        };
        assert_is(&p, up_last, round);
    }
}

#[test]
fn two_ups_at_once_both_succeed_and_the_second_says_what_it_waits_for() {
    let p = Project::new("twoup", THREE);
    let (a, b) = (p.spawn(&["up", "-d"]), p.spawn(&["up", "-d"]));
    let ((a, _), (b, _)) = (finish(a), finish(b));
    for out in [&a, &b] {
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let said = format!("{}{}", text(&a.stderr), text(&b.stderr));
    assert!(
        said.contains("waiting for another berth (pid ") && said.contains(", \"up\") on project"),
        "{said}"
    );
    assert_is(&p, true, 0);
}

#[test]
fn no_lock_wait_fails_at_once_and_a_killed_holder_releases_the_lock() {
    let p = Project::new("nowait", THREE);
    // Hold the lock the way a command does, from a process we then kill.
    let lock = p
        .root
        .path()
        .join("projects")
        .join(format!("{}.lock", p.name));
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    // (Its own process group: killing it kills flock and the sleep
    // that inherits the locked descriptor.)
    let mut holder = Command::new("flock")
        .arg(&lock)
        .args(["sleep", "1000"])
        .process_group(0)
        .spawn()
        .unwrap();
    eventually("the holder has the lock", || {
        Command::new("flock")
            .args(["-n", lock.to_str().unwrap(), "true"])
            .status()
            .is_ok_and(|s| !s.success())
    });
    let started = Instant::now();
    let out = p.run(&["up", "-d", "--no-lock-wait"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("is busy"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(p.containers().is_empty(), "nothing was made");
    // The same flag through `compose`.
    let out = p.run(&["compose", "--no-lock-wait", "stop"]);
    assert!(!out.status.success(), "{}", text(&out.stderr));
    let group = nix::unistd::Pid::from_raw(-(holder.id() as i32));
    nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL).unwrap();
    holder.wait().unwrap();
    p.ok(&["up", "-d", "--no-lock-wait"]);
    assert_is(&p, true, 0);
}

// ---------------------------------------------------------------- 3: corrupt records

/// Truncates `path` to half its length.
fn truncate(path: &Path) {
    let len = std::fs::metadata(path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(len / 2).unwrap();
}

#[test]
fn a_truncated_state_json_is_shown_planned_around_and_removable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let manifest = format!(
        "[services.web]\nimage = \"busybox\"\ncommand = [\"httpd\", \"-f\", \"-p\", \"80\"]\nports = [\"{port}:80\"]\nstop_signal = \"KILL\"\n"
    );
    let p = Project::new("corrupt", &manifest);
    p.ok(&["up", "-d", "--wait"]);
    let id = p.id_of("web");
    let state = p
        .root
        .path()
        .join("containers")
        .join(&id)
        .join("state.json");
    truncate(&state);
    let ps = p.root.ok(&["ps", "-a"]);
    assert!(ps.contains(&id[..12]) && ps.contains("Corrupt"), "{ps}");
    // `ps` without -a too: it still runs from its cgroup.
    assert!(p.root.ok(&["ps"]).contains(&id[..12]));
    let inspect = p.root.ok(&["inspect", &id]);
    assert!(inspect.contains("corrupt"), "{inspect}");
    // No duplicate is planned beside it while it holds the port.
    let plan = p.ok(&["plan"]);
    assert!(
        plan.contains("web-1 recreate (its state record is corrupt)"),
        "{plan}"
    );
    // Plain `rm` refuses (it may run), `rm -f` kills what its cgroup holds.
    let err = p.root.fails(&["rm", &id]);
    assert!(err.contains("corrupt"), "{err}");
    p.root.ok(&["rm", "-f", &id]);
    assert!(!p.root.path().join("containers").join(&id).exists());
    for cg in ["pids", "memory", "cpu"] {
        let dir = PathBuf::from(format!("/sys/fs/cgroup/{cg}/berth/{id}"));
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
    // The port is free again: `up` makes the service anew.
    p.ok(&["up", "-d", "--wait"]);
    assert_eq!(p.containers().len(), 1);
}

#[test]
fn up_replaces_a_container_with_a_corrupt_record() {
    let p = Project::new("corruptup", THREE);
    p.ok(&["up", "-d", "--wait"]);
    let old = p.id_of("db");
    truncate(
        &p.root
            .path()
            .join("containers")
            .join(&old)
            .join("state.json"),
    );
    p.ok(&["up", "-d", "--wait"]);
    let new = p.id_of("db");
    assert_ne!(old, new);
    assert_eq!(p.containers().len(), 3, "{:?}", p.containers());
}

#[test]
fn system_check_repairs_a_corrupt_state_record() {
    let root = TestRoot::new();
    root.ok(&["import", busybox_rootfs_tar().to_str().unwrap(), "busybox"]);
    let _cleanup = Containers(&root);
    let name = format!("chk{}", std::process::id());
    let id = root
        .ok(&["run", "-d", "--name", &name, "busybox", "sleep", "1000"])
        .trim()
        .to_string();
    let gone = root
        .ok(&["create", "--name", &format!("{name}-b"), "busybox", "true"])
        .trim()
        .to_string();
    truncate(&root.path().join("containers").join(&id).join("state.json"));
    truncate(
        &root
            .path()
            .join("containers")
            .join(&gone)
            .join("state.json"),
    );
    let out = root.ok(&["system", "check"]);
    assert!(out.contains(&id[..12]) && out.contains("repaired"), "{out}");
    // The running one is running again as far as its record says, the
    // other one exited.
    let ps = root.ok(&["ps", "-a", "--format", "json"]);
    let state = |who: &str| {
        ps.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|v| v["ID"].as_str().unwrap() == &who[..12])
            .unwrap()["State"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(state(&id), "running");
    assert_eq!(state(&gone), "exited");
    assert!(root.ok(&["system", "check"]).contains("no problems"));
    root.ok(&["rm", "-f", &id, &gone]);
}

#[test]
fn a_truncated_image_index_is_rebuilt_from_the_blobs() {
    let root = TestRoot::new();
    root.ok(&["import", busybox_rootfs_tar().to_str().unwrap(), "busybox"]);
    root.ok(&["tag", "busybox", "other:1"]);
    root.ok(&["tag", "busybox", "last:1"]);
    // A container names the last tag (the saved previous index does not).
    let _cleanup = Containers(&root);
    root.ok(&[
        "create",
        "--name",
        &format!("idx{}", std::process::id()),
        "last:1",
        "true",
    ]);
    // (Not CreatedSince: "2 seconds ago" may turn 3 in between.)
    let listing = "{{.Repository}}:{{.Tag}} {{.ID}} {{.CreatedAt}} {{.Size}} {{.Digest}}";
    let before = root.ok(&["images", "--format", listing]);
    truncate(&root.path().join("images/index.json"));
    let err = root.fails(&["images"]);
    assert!(err.contains("berth system check"), "says what to do: {err}");
    let out = root.ok(&["system", "check"]);
    assert!(out.contains("index.json"), "{out}");
    let after = root.ok(&["images", "--format", listing]);
    assert_eq!(before, after);
}

// ---------------------------------------------------------------- 4: dead supervisor

fn supervisor_of(root: &TestRoot, id: &str) -> i32 {
    let st: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.path().join("containers").join(id).join("state.json")).unwrap(),
    )
    .unwrap();
    st["supervisor_pid"].as_i64().unwrap() as i32
}

#[test]
fn a_dead_supervisor_is_noticed_and_up_replaces_its_container() {
    let manifest = r#"
[services.db]
image = "busybox"
command = ["sh", "-c", "touch /tmp/ready && exec sleep 100000"]
stop_signal = "KILL"
restart = "always"
[services.db.healthcheck]
test = ["CMD", "test", "-f", "/tmp/ready"]
interval = "1s"
"#;
    let p = Project::new("unsup", manifest);
    p.ok(&["up", "-d", "--wait"]);
    let old = p.id_of("db");
    assert!(p.ok(&["compose", "ps"]).contains("(healthy)"));
    let sup = supervisor_of(&p.root, &old);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sup),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    eventually("the supervisor is gone", || {
        !Path::new(&format!("/proc/{sup}")).exists()
            || std::fs::read_to_string(format!("/proc/{sup}/stat")).is_ok_and(|s| s.contains(") Z"))
    });
    assert!(p.root.ok(&["ps"]).contains("(supervisor dead)"));
    let ps = p.ok(&["compose", "ps"]);
    assert!(
        ps.contains("unsupervised") && !ps.contains("healthy"),
        "{ps}"
    );
    let plan = p.ok(&["plan"]);
    assert!(
        plan.contains("db-1 recreate (its supervisor died)"),
        "{plan}"
    );
    p.ok(&["up", "-d", "--wait"]);
    let new = p.id_of("db");
    assert_ne!(old, new, "replaced");
    assert!(p.ok(&["compose", "ps"]).contains("(healthy)"));
    // The restart policy works again: kill the init, it comes back.
    let st = |id: &str| -> serde_json::Value {
        serde_json::from_slice(
            &std::fs::read(p.root.path().join("containers").join(id).join("state.json")).unwrap(),
        )
        .unwrap()
    };
    let pid = st(&new)["pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    eventually("restarted", || {
        let s = st(&new);
        s["restart_count"].as_u64() >= Some(1) && s["status"] == "running"
    });
}

// ---------------------------------------------------------------- 6: orphans

#[test]
fn orphan_container_directories_are_collected_by_the_next_listing() {
    let root = TestRoot::new();
    let containers = root.path().join("containers");
    std::fs::create_dir_all(&containers).unwrap();
    // A kill between mkdir and the first record write, a while ago.
    let orphan = containers.join("a".repeat(64));
    std::fs::create_dir(&orphan).unwrap();
    std::fs::write(orphan.join("state.json"), "{}").unwrap();
    let status = Command::new("touch")
        .args(["-d", "1 hour ago"])
        .arg(&orphan)
        .status()
        .unwrap();
    assert!(status.success());
    root.ok(&["ps", "-a"]);
    assert!(!orphan.exists(), "collected");
}

// ---------------------------------------------------------------- 8: crash consistency

#[test]
fn sigkilled_up_and_down_at_random_points_converge_with_nothing_left() {
    let p = Project::new("crash", THREE);
    let rounds: usize = std::env::var("BERTH_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(4);
    let mut ids = std::collections::BTreeSet::new();
    for round in 0..rounds {
        let verb: &[&str] = if round % 2 == 0 {
            &["up", "-d"]
        } else {
            &["down", "-t", "0"]
        };
        let mut child = p.spawn(verb);
        std::thread::sleep(Duration::from_millis(rand::random::<u64>() % 700));
        let _ = child.kill();
        let _ = child.wait();
        p.ok(&["up", "-d", "--wait"]);
        assert_is(&p, true, round);
        let nothing = p.ok(&["plan"]);
        assert!(
            nothing.contains("nothing to do"),
            "round {round}: converged, yet: {nothing}"
        );
        ids.extend(p.containers().into_iter().map(|c| c.1));
    }
    p.ok(&["down", "-t", "0"]);
    assert_is(&p, false, rounds);
    let left: Vec<_> = std::fs::read_dir(p.root.path().join("containers"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // Nothing in the kernel either: mounts under the root, cgroups.
    let root = p.root.path().to_string_lossy().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&format!("{root}/")), "mounts left");
    for id in &ids {
        for cg in ["pids", "memory", "cpu"] {
            let dir = format!("/sys/fs/cgroup/{cg}/berth/{id}");
            assert!(!Path::new(&dir).exists(), "{dir} left behind");
        }
    }
}

// ---------------------------------------------------------------- 5: logs

/// Bytes of `containers/ID/log.json*`.
fn log_bytes(root: &TestRoot, id: &str) -> u64 {
    std::fs::read_dir(root.path().join("containers").join(id))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("log.json"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

fn busybox_root() -> TestRoot {
    let root = TestRoot::new();
    root.ok(&["import", busybox_rootfs_tar().to_str().unwrap(), "busybox"]);
    root
}

#[test]
fn a_log_flood_stays_bounded_by_log_opts_and_by_the_configured_default() {
    let root = busybox_root();
    let _cleanup = Containers(&root);
    let flagged = root
        .ok(&[
            "run",
            "-d",
            "--network",
            "none",
            "--log-opt",
            "max-size=200k",
            "--log-opt",
            "max-file=2",
            "busybox",
            "yes",
        ])
        .trim()
        .to_string();
    // The state root's default, from ROOT/config.toml.
    std::fs::write(
        root.path().join("config.toml"),
        "[log]\nmax-size = \"300k\"\nmax-file = 3\n",
    )
    .unwrap();
    let configured = root
        .ok(&["run", "-d", "--network", "none", "busybox", "yes"])
        .trim()
        .to_string();
    std::thread::sleep(Duration::from_secs(3));
    let (a, b) = (log_bytes(&root, &flagged), log_bytes(&root, &configured));
    let inspect = root.ok(&["inspect", &configured]);
    root.ok(&["rm", "-f", &flagged, &configured]);
    // Unbounded, `yes` writes tens of MB a second.
    assert!(a > 100 << 10 && a <= (2 * 200) << 10, "{a} bytes");
    assert!(b > 100 << 10 && b <= (3 * 300) << 10, "{b} bytes");
    assert!(inspect.contains("\"max-size\": \"307200\""), "{inspect}");
}

#[test]
fn logs_and_logs_follow_read_across_rotated_files() {
    let root = busybox_root();
    let _cleanup = Containers(&root);
    let script =
        "sleep 1; i=0; while [ $i -lt 600 ]; do echo line-$i; i=$((i+1)); usleep 2000; done";
    let id = root
        .ok(&[
            "run",
            "-d",
            "--network",
            "none",
            "--log-opt",
            "max-size=4k",
            "--log-opt",
            "max-file=3",
            "busybox",
            "sh",
            "-c",
            script,
        ])
        .trim()
        .to_string();
    let follow = root
        .cmd()
        .args(["logs", "-f", &id])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = follow.wait_with_output().unwrap();
    let followed: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    let want: Vec<String> = (0..600).map(|i| format!("line-{i}")).collect();
    assert_eq!(followed, want, "logs -f saw every line once, in order");
    let rotated = std::fs::read_dir(root.path().join("containers").join(&id))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("log.json"))
        .count();
    assert_eq!(rotated, 3);
    // `logs` reads the kept files oldest first, ending with the last line.
    let kept = root.ok(&["logs", &id]);
    let kept: Vec<&str> = kept.lines().collect();
    assert_eq!(kept.last(), Some(&"line-599"));
    assert!(kept.len() < 600 && kept.len() > 50, "{}", kept.len());
    let first: usize = kept[0].trim_start_matches("line-").parse().unwrap();
    assert!(kept
        .iter()
        .zip(first..)
        .all(|(l, i)| *l == format!("line-{i}")));
    assert_eq!(root.ok(&["logs", "-n", "2", &id]), "line-598\nline-599\n");
}

#[test]
fn a_services_logging_key_bounds_its_logs() {
    let manifest = r#"
[services.chatty]
image = "busybox"
command = ["yes"]
stop_signal = "KILL"
logging = { driver = "json-file", options = { max-size = "100k", max-file = "2" } }
"#;
    let p = Project::new("logging", manifest);
    p.ok(&["up", "-d"]);
    let id = p.id_of("chatty");
    std::thread::sleep(Duration::from_secs(2));
    let bytes = log_bytes(&p.root, &id);
    assert!(
        bytes > 50 << 10 && bytes <= (2 * 100) << 10,
        "{bytes} bytes"
    );
    let inspect = p.root.ok(&["inspect", &id]);
    assert!(inspect.contains("\"max-file\": \"2\""), "{inspect}");
}

// ---------------------------------------------------------------- 2: full disk

/// Bytes free on the filesystem holding `path`.
fn free_bytes(path: &Path) -> u64 {
    let s = nix::sys::statvfs::statvfs(path).unwrap();
    s.blocks_available() as u64 * s.fragment_size() as u64
}

#[test]
fn a_full_state_root_can_be_freed_through_berth() {
    let root = TestRoot::new();
    // A small root of its own, unmounted by TestRoot's drop.
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64m", "berth-full-test"])
        .arg(root.path())
        .status()
        .unwrap();
    assert!(status.success());
    root.ok(&["import", busybox_rootfs_tar().to_str().unwrap(), "busybox"]);
    let _cleanup = Containers(&root);
    let run = |args: &[&str]| {
        let mut a = vec!["run", "-d", "--network", "none", "busybox"];
        a.extend_from_slice(args);
        root.ok(&a).trim().to_string()
    };
    let stopped = run(&["sleep", "1000"]);
    let killed = run(&["sleep", "1000"]);
    let created = root
        .ok(&["create", "--network", "none", "busybox", "true"])
        .trim()
        .to_string();
    let filler = run(&[
        "sh",
        "-c",
        "dd if=/dev/zero of=/fill bs=1M; while true; do echo still here; sleep 0.1; done",
    ]);
    eventually("the disk is full", || free_bytes(root.path()) < 64 << 10);
    // Its log cannot be written: said once in its state.
    let mut last = String::new();
    let reported = (0..300).any(|_| {
        last = root.ok(&["inspect", &filler]);
        std::thread::sleep(Duration::from_millis(100));
        last.contains("cannot write the container's log")
            && last.contains("no space left on berth-full-test (")
    });
    assert!(reported, "the lost log is reported: {last}");
    // A run that cannot be recorded says why and leaves no directory
    // without its records.
    let dirs = || {
        std::fs::read_dir(root.path().join("containers"))
            .unwrap()
            .count()
    };
    let err = root.fails(&["run", "--network", "none", "busybox", "true"]);
    assert!(err.contains("no space left on"), "{err}");
    // Said once, not again as the OS's "No space left on device".
    assert!(!err.contains("os error 28"), "{err}");
    for e in std::fs::read_dir(root.path().join("containers")).unwrap() {
        let e = e.unwrap().path();
        assert!(
            e.join("config.json").exists() && e.join("state.json").exists(),
            "{e:?}"
        );
    }
    let err = root.fails(&["import", busybox_rootfs_tar().to_str().unwrap(), "again"]);
    assert!(
        err.contains("no space left on berth-full-test (") && !err.contains("tar archive"),
        "{err}"
    );
    // Stopping, killing and pruning work on the full disk.
    root.ok(&["stop", "-t", "1", &stopped]);
    root.ok(&["kill", &killed]);
    let ps = root.ok(&["ps", "-a"]);
    assert!(ps.matches("Exited").count() >= 2, "{ps}");
    let pruned = root.ok(&["container", "prune", "-f"]);
    for id in [&stopped, &killed, &created] {
        assert!(pruned.contains(id.as_str()), "{pruned}");
    }
    root.ok(&["system", "prune", "-f"]);
    // And removing the one that filled it frees the space.
    root.ok(&["rm", "-f", &filler]);
    assert!(free_bytes(root.path()) > 32 << 20);
    assert_eq!(dirs(), 0);
}

// ---------------------------------------------------------------- 7: a failed up

#[test]
fn a_failed_up_takes_back_what_it_made() {
    // b's working directory is a file in the image: the manifest is sound
    // (plan passes, nothing is held), and the machine refuses b only when
    // it starts, once a and the network exist. (A held host port is now
    // refused before anything is made, so it no longer serves here.)
    let manifest = "[services.a]\nimage = \"busybox\"\ncommand = [\"sleep\", \"1000\"]\nstop_signal = \"KILL\"\n\n[services.b]\nimage = \"busybox\"\ncommand = [\"sleep\", \"1000\"]\nstop_signal = \"KILL\"\nworking_dir = \"/bin/sh\"\ndepends_on = [\"a\"]\n".to_string();
    let p = Project::new("undo", &manifest);
    p.ok(&["plan"]);
    let out = p.run(&["up", "-d"]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("working directory /bin/sh"), "{err}");
    assert!(err.contains("Removed"), "says what it took back: {err}");
    assert!(p.containers().is_empty(), "{:?}", p.containers());
    assert!(p.networks().is_empty(), "{:?}", p.networks());
}
