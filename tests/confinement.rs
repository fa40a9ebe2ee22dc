//! Confinement holes found by an outside attack run (issue 11), one test
//! per hole, as root with the busybox fixture: what other host users can
//! reach under the state root, whether a container can write its own
//! cgroup limits, whether `:ro` binds are read-only all the way down, and
//! which mount destinations are refused.
//!
//! The unprivileged-user checks run as a real host user that the test
//! creates with `useradd` (a unique name) and removes with `userdel` when
//! it ends, also on failure.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

/// A state root plus cleanup of every container made in it; the busybox
/// image is imported as `busybox`.
struct Engine {
    root: TestRoot,
}

impl Engine {
    fn new() -> Self {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the confinement tests need root (containers, mounts, cgroups, users)"
        );
        let e = Self {
            root: TestRoot::new(),
        };
        let tar = busybox_rootfs_tar();
        e.ok(&[
            "import",
            "-c",
            "CMD [\"sh\"]",
            tar.to_str().unwrap(),
            "busybox",
        ]);
        e
    }

    fn run(&self, args: &[&str]) -> Output {
        self.root.run(args)
    }

    fn ok(&self, args: &[&str]) -> String {
        self.root.ok(args)
    }

    /// (exit code, stdout, stderr).
    fn code(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.run(args);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.root.remove_all_containers();
    }
}

/// A host user made for one test (no home, no login shell), removed on drop.
struct HostUser {
    name: String,
}

impl HostUser {
    fn new() -> Self {
        require("useradd");
        require("runuser");
        let name = format!(
            "bsec{}{:x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let name: String = name.chars().take(31).collect();
        let st = Command::new("useradd")
            .args(["--system", "--no-create-home", "--user-group"])
            .args(["--shell", "/usr/sbin/nologin", &name])
            .status()
            .expect("running useradd");
        assert!(st.success(), "useradd {name} failed");
        let user = Self { name };
        let out = user.run(&["id", "-u"]);
        assert_ne!(String::from_utf8_lossy(&out.stdout).trim(), "0");
        user
    }

    /// Runs `argv` as this user. `runuser` switches fully: `setpriv
    /// --reuid` alone keeps root's capabilities until the exec, so the
    /// exec's own path lookup would still bypass directory modes.
    fn run(&self, argv: &[&str]) -> Output {
        Command::new("runuser")
            .args(["-u", &self.name, "--"])
            .args(argv)
            .output()
            .expect("running runuser")
    }
}

impl Drop for HostUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).status();
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .mode()
        & 0o7777
}

/// Every path under `dir` (not following links).
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        out.push(p.clone());
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            walk(&p, out);
        }
    }
}

// ------------------------------------------------- other users and the root

/// A rootfs tarball: busybox plus a setuid-root copy of the host's `id` and a
/// world-writable character device (the harmless 1:3, /dev/null's numbers).
fn hostile_rootfs_tar(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    make_busybox_rootfs(&rootfs);
    let id = rootfs.join("bin/suid-id");
    std::fs::copy("/usr/bin/id", &id).unwrap();
    std::fs::set_permissions(&id, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let node = std::ffi::CString::new(rootfs.join("dev/open-null").to_str().unwrap()).unwrap();
    // SAFETY: mknod of a char device at a path we own.
    assert_eq!(
        unsafe { libc::mknod(node.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) },
        0
    );
    std::fs::set_permissions(
        rootfs.join("dev/open-null"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    let tar = dir.join("hostile.tar");
    let st = Command::new("tar")
        .args(["--numeric-owner", "-C"])
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    tar
}

#[test]
fn other_users_cannot_reach_image_or_container_content() {
    let root = TestRoot::new();
    // The state root's parent is open to everyone, as /var/lib is.
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = root.path().join("state");
    let berth = |args: &[&str]| {
        let out = Command::new(berth_bin())
            .env("BERTH_ROOT", &state)
            .env_remove("BERTH_LOG")
            .args(args)
            .output()
            .unwrap();
        succeeded(args, &out)
    };
    let tar = hostile_rootfs_tar(root.path());
    berth(&["import", tar.to_str().unwrap(), "hostile"]);
    berth(&[
        "run",
        "--name",
        "once",
        "--network",
        "none",
        "hostile",
        "true",
    ]);
    let _cleanup = scopeguard(|| {
        let _ = Command::new(berth_bin())
            .env("BERTH_ROOT", &state)
            .args(["rm", "-f", "once"])
            .output();
    });
    let mut all = Vec::new();
    walk(&state, &mut all);
    let suid = all
        .iter()
        .find(|p| p.ends_with("diff/bin/suid-id"))
        .expect("the layer holds bin/suid-id")
        .clone();
    let node = all
        .iter()
        .find(|p| p.ends_with("diff/dev/open-null"))
        .expect("the layer holds dev/open-null")
        .clone();
    assert_eq!(mode(&suid), 0o4755, "the layer keeps the image's modes");

    let user = HostUser::new();
    let out = user.run(&[suid.to_str().unwrap()]);
    assert!(
        !out.status.success(),
        "{} ran a setuid binary from the image: {}",
        user.name,
        String::from_utf8_lossy(&out.stdout)
    );
    let out = user.run(&["sh", "-c", &format!("exec 3<> {}", node.display())]);
    assert!(
        !out.status.success(),
        "{} opened a layer's device",
        user.name
    );
    let out = user.run(&["ls", state.to_str().unwrap()]);
    assert!(!out.status.success(), "{} lists the state root", user.name);

    // Docker's modes: the root 0710, what holds content 0700.
    assert_eq!(mode(&state), 0o710);
    for sub in ["layers", "images", "containers", "volumes", "tmp"] {
        assert_eq!(mode(&state.join(sub)), 0o700, "{sub}");
    }

    // An existing root with open modes (an older berth made them 0755) is
    // repaired by the next command.
    for p in [
        state.clone(),
        state.join("layers"),
        state.join("containers"),
    ] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    berth(&["ps", "-a"]);
    assert_eq!(mode(&state), 0o710);
    assert_eq!(mode(&state.join("layers")), 0o700);
    assert_eq!(mode(&state.join("containers")), 0o700);
    let out = user.run(&[suid.to_str().unwrap()]);
    assert!(
        !out.status.success(),
        "setuid binary reachable after repair"
    );
}

/// Runs `f` when dropped.
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f()
            }
        }
    }
    Guard(Some(f))
}

// ------------------------------------------------------------------ cgroups

#[test]
fn the_cgroup_filesystem_is_read_only_inside() {
    let e = Engine::new();
    // Every file under /sys/fs/cgroup, written with its own value (so a
    // write that got through changes nothing), and a new directory in each
    // hierarchy.
    let script = r#"
        n=0
        for f in $(find /sys/fs/cgroup -type f); do
            n=$((n+1))
            v=$(head -n1 "$f" 2>/dev/null)
            if (echo "$v" > "$f") 2>/dev/null; then echo "WRITABLE $f"; fi
        done
        for d in $(find /sys/fs/cgroup -maxdepth 1) ; do
            if mkdir "$d/berth-probe" 2>/dev/null; then echo "MKDIR $d"; rmdir "$d/berth-probe"; fi
        done
        echo "tried $n"
        (echo max > /sys/fs/cgroup/pids/pids.max) 2>&1 || true
        cat /sys/fs/cgroup/pids/pids.max
    "#;
    let (code, out, err) = e.code(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--pids-limit",
        "50",
        "-m",
        "64m",
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!out.contains("WRITABLE"), "{out}");
    assert!(!out.contains("MKDIR"), "{out}");
    let tried: usize = out
        .lines()
        .find_map(|l| l.strip_prefix("tried "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(tried > 20, "only {tried} cgroup files seen: {out}");
    assert!(out.contains("Read-only file system"), "{out}");
    assert_eq!(out.lines().last(), Some("50"), "{out}");
    // On a unified (v2) host the container also has its own cgroup
    // namespace: it sees its cgroup as the root. (This machine is v1
    // hybrid, where Docker shares the host's cgroup namespace too; the
    // spec's unit test `host_network_and_v2` covers the namespace there.)
    let v2 = nix::sys::statfs::statfs("/sys/fs/cgroup")
        .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false);
    if v2 {
        let own = e.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "cat",
            "/proc/self/cgroup",
        ]);
        assert_eq!(own.trim(), "0::/", "{own}");
    }
}

// ------------------------------------------------------------------- mounts

#[test]
fn ro_binds_are_read_only_all_the_way_down() {
    let e = Engine::new();
    // A host tree with a submount, as /dev has /dev/shm.
    let hd = e.root.path().join("hd");
    std::fs::create_dir_all(hd.join("shm")).unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "berth-test-shm"])
        .arg(hd.join("shm"))
        .status()
        .unwrap();
    assert!(st.success(), "mounting a tmpfs under the test's tree");
    let _umount = scopeguard(|| unmount_under(&hd));
    let vol = format!("{}:/hd:ro", hd.display());
    let (code, _, err) = e.code(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &vol,
        "busybox",
        "touch",
        "/hd/shm/x",
    ]);
    assert_ne!(code, 0, "wrote below a read-only bind");
    assert!(err.contains("Read-only file system"), "{err}");
    assert!(!hd.join("shm/x").exists());
    let (code, _, _) = e.code(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &vol,
        "busybox",
        "touch",
        "/hd/y",
    ]);
    assert_ne!(code, 0);
    // Writable binds stay writable below.
    let rw = format!("{}:/hd", hd.display());
    e.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &rw,
        "busybox",
        "touch",
        "/hd/shm/x",
    ]);
    assert!(hd.join("shm/x").exists());
}

#[test]
fn mounts_onto_proc_and_sys_are_refused() {
    let e = Engine::new();
    let host = e.root.path().join("host");
    std::fs::create_dir_all(&host).unwrap();
    let h = host.display().to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["-v".into(), format!("{h}:/proc/sys/kernel")],
            "/proc/sys/kernel",
        ),
        (vec!["-v".into(), format!("{h}:/proc")], "/proc"),
        (
            vec!["-v".into(), format!("{h}:/sys/fs/cgroup:ro")],
            "/sys/fs/cgroup",
        ),
        (
            vec!["-v".into(), format!("{h}:/tmp/../proc/self/attr")],
            "/proc/self/attr",
        ),
        (vec!["-v".into(), "/proc/sys/net".into()], "/proc/sys/net"),
        (vec!["-v".into(), "vol1:/sys/kernel".into()], "/sys/kernel"),
        (vec!["--tmpfs".into(), "/proc/sys".into()], "/proc/sys"),
        (vec!["--tmpfs".into(), "//sys/".into()], "/sys"),
    ];
    for (flags, shown) in &cases {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend(flags.iter().map(String::as_str));
        args.extend(["busybox", "true"]);
        let (code, _, err) = e.code(&args);
        assert_eq!(code, 125, "{flags:?} was accepted: {err}");
        assert!(
            err.contains(&format!("refusing to mount onto {shown}"))
                && err.contains("/proc and /sys"),
            "{flags:?}: {err}"
        );
    }
    assert_eq!(
        e.ok(&["ps", "-aq"]),
        "",
        "a refused run leaves no container"
    );
    assert_eq!(e.ok(&["volume", "ls", "-q"]), "", "nor a volume");
    // An image's VOLUME onto /proc (the CVE-2019-16884 pattern).
    for (i, vol) in ["/proc/self/attr", "/proc/sys/kernel"].iter().enumerate() {
        let tag = format!("procvol{i}");
        let tar = busybox_rootfs_tar();
        e.ok(&[
            "import",
            "-c",
            &format!("VOLUME {vol}"),
            tar.to_str().unwrap(),
            &tag,
        ]);
        let (code, _, err) = e.code(&["run", "--rm", "--network", "none", &tag, "true"]);
        assert_eq!(code, 125, "image VOLUME {vol} was accepted: {err}");
        assert!(
            err.contains(&format!("refusing to mount onto {vol}")) && err.contains("VOLUME"),
            "{err}"
        );
    }
    // Through a link in the image: /p -> /proc.
    let rootfs = e.root.path().join("linkfs");
    make_busybox_rootfs(&rootfs);
    std::os::unix::fs::symlink("/proc", rootfs.join("p")).unwrap();
    let (code, _, err) = e.code(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{h}:/p/sys/kernel"),
        "--rootfs",
        rootfs.to_str().unwrap(),
        "true",
    ]);
    assert_ne!(code, 0, "a bind reached /proc through a link: {err}");
    assert!(
        err.contains("/p/sys/kernel") && err.contains("proc"),
        "{err}"
    );
    // Near misses are fine.
    e.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{h}:/procfs"),
        "--tmpfs",
        "/system",
        "busybox",
        "true",
    ]);
}

// ----------------------------------------------------------------- lifecycle

#[test]
fn run_rm_removes_its_container_and_volumes_when_the_start_fails() {
    let e = Engine::new();
    let (code, _, err) = e.code(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "/data",
        "busybox",
        "/no/such/command",
    ]);
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("/no/such/command"), "{err}");
    assert_eq!(e.ok(&["ps", "-aq"]), "", "the container stayed: {err}");
    assert_eq!(
        e.ok(&["volume", "ls", "-q"]),
        "",
        "its anonymous volume stayed"
    );
    // Without --rm the failed container stays, as in Docker.
    let (code, _, _) = e.code(&[
        "run",
        "--name",
        "kept",
        "--network",
        "none",
        "busybox",
        "/nope",
    ]);
    assert_eq!(code, 127);
    assert_eq!(e.ok(&["ps", "-aq"]).lines().count(), 1);
}

/// Runs `berth ARGS` with a terminal as its stdin, stdout and stderr
/// (through `script`); returns (exit code, what the terminal showed).
fn on_a_terminal(e: &Engine, args: &[&str]) -> (i32, String) {
    require("script");
    let mut cmdline = vec![berth_bin().display().to_string()];
    cmdline.extend(args.iter().map(|a| shell_words::quote(a).into_owned()));
    let out = Command::new("script")
        .args(["-qec", &cmdline.join(" "), "/dev/null"])
        .env("BERTH_ROOT", e.root.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn exec_without_t_gives_the_process_pipes_not_the_callers_terminal() {
    let e = Engine::new();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "ex",
        "--network",
        "none",
        "busybox",
        "sleep",
        "1000",
    ]);
    let probe =
        "for n in 0 1 2; do if [ -t $n ]; then echo fd$n=tty; else echo fd$n=no; fi; done; \
                 readlink /proc/self/fd/1; echo to-stderr >&2; exit 3";
    for flags in [&[][..], &["-i"][..]] {
        let mut args = vec!["exec"];
        args.extend(flags);
        args.extend(["ex", "sh", "-c", probe]);
        let (code, out) = on_a_terminal(&e, &args);
        assert_eq!(code, 3, "{flags:?}: {out}");
        for n in 0..3 {
            assert!(
                out.contains(&format!("fd{n}=no")),
                "{flags:?}: fd {n} is the caller's terminal: {out}"
            );
        }
        assert!(out.contains("pipe:"), "{flags:?}: {out}");
        assert!(out.contains("to-stderr"), "{flags:?}: {out}");
    }
    // Input still flows with -i, output and the exit code come back.
    let out = e
        .root
        .cmd()
        .args(["exec", "-i", "ex", "sh", "-c", "tr a-z A-Z; exit 4"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"hello\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "HELLO\n");
}

#[test]
fn a_host_directory_never_becomes_the_containers_dev() {
    let e = Engine::new();
    let dir = e.root.path().join("devdir");
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.display().to_string();
    for v in [
        format!("{d}:/dev"),
        format!("{d}:/dev/"),
        "/dev".to_string(),
        "devvol:/dev".to_string(),
    ] {
        let (code, _, err) = e.code(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            &v,
            "busybox",
            "mknod",
            "/dev/sda",
            "b",
            "8",
            "0",
        ]);
        assert_eq!(code, 125, "-v {v} was accepted: {err}");
        assert!(
            err.contains("refusing to mount onto /dev") && err.contains("device nodes"),
            "{err}"
        );
    }
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "device nodes in the host directory"
    );
    // Below /dev a host directory is mounted nodev: nodes made there do not open.
    let v = format!("{d}:/dev/hostdir");
    let out = e.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &v,
        "busybox",
        "sh",
        "-c",
        "grep ' /dev/hostdir ' /proc/mounts",
    ]);
    assert!(out.contains("nodev"), "{out}");
}

// ----------------------------------------------------------------- messages

#[test]
fn refusals_name_what_was_refused_and_why() {
    let e = Engine::new();
    let run = |extra: &[&str], cmd: &[&str]| {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend(extra);
        args.push("busybox");
        args.extend(cmd);
        e.code(&args)
    };
    // A mount the kernel refuses: which one, with its options.
    let (code, _, err) = run(&["--tmpfs", "/x:size=abc"], &["true"]);
    assert_eq!(code, 125);
    assert!(
        err.contains("onto /x") && err.contains("size=abc") && err.contains("Invalid argument"),
        "{err}"
    );
    let (code, _, err) = run(&["-v", "/etc/hostname:/etc"], &["true"]);
    assert_eq!(code, 125);
    assert!(err.contains("/etc/hostname onto /etc"), "{err}");
    // A working directory that is not one.
    let (code, _, err) = run(&["-w", "/bin/sh"], &["true"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("working directory /bin/sh") && err.contains("Not a directory"),
        "{err}"
    );
    assert!(!err.contains("failed to unix syscall"), "{err}");
    // An entrypoint whose interpreter is missing.
    let rootfs = e.root.path().join("interp");
    make_busybox_rootfs(&rootfs);
    std::fs::write(rootfs.join("bad.sh"), "#!/no/such/interp\necho hi\n").unwrap();
    std::fs::set_permissions(
        rootfs.join("bad.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let (code, _, err) = e.code(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--rootfs",
        rootfs.to_str().unwrap(),
        "/bad.sh",
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("exec /bad.sh") && err.contains("/no/such/interp"),
        "{err}"
    );
}
