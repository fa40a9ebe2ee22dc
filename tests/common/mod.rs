//! Shared harness for integration tests.
//!
//! Every test gets its own state root ([`TestRoot`]) under a fresh temp dir
//! and removes it (unmounting anything left under it) when dropped, even when
//! the test panics. Fixtures are made on first use and cached in
//! `target/fixtures/`, guarded by a file lock so parallel tests build them once.
//!
//! Fixtures come only from Debian packages installed by `scripts/test.sh`:
//! the busybox image's rootfs is `/bin/busybox` from `busybox-static` plus its
//! applet links, `/etc/passwd` and `/etc/group`.

#![allow(dead_code)]

pub mod registry;
pub mod tutorial;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Path of the berth binary under test.
pub fn berth_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_berth"))
}

/// A private state root for one test; removed on drop.
pub struct TestRoot {
    pub dir: tempfile::TempDir,
}

impl TestRoot {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-")
            .tempdir_in(std::env::temp_dir())
            .expect("creating a temp state root");
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A `berth` command using this state root.
    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new(berth_bin());
        cmd.env("BERTH_ROOT", self.path());
        cmd.env_remove("BERTH_LOG");
        cmd
    }

    /// Runs `berth ARGS...` and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("running berth")
    }

    /// Runs `berth ARGS...`, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        succeeded(args, &self.run(args))
    }

    /// Runs `berth ARGS...`, asserts failure, returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "berth {:?} unexpectedly succeeded\nstdout: {}",
            args,
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

impl TestRoot {
    /// Force-removes every container of this state root (for Drop guards:
    /// errors are ignored, the point is to leave nothing behind).
    pub fn remove_all_containers(&self) {
        let out = self.run(&["ps", "-aq", "--no-trunc"]);
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        if !ids.is_empty() {
            let mut args = vec!["rm".to_string(), "-f".to_string()];
            args.extend(ids);
            let _ = self.cmd().args(&args).output();
        }
    }
}

/// Polls until `f` holds; panics after a generous limit, which is a
/// failure, not a timing assertion.
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("gave up waiting for: {what}");
}

impl Drop for TestRoot {
    fn drop(&mut self) {
        unmount_under(self.path());
    }
}

/// A new state root holding the busybox fixture as Docker's `busybox`
/// image (`CMD ["sh"]`); `why` says what needs root, for the message when
/// the tests do not run as root.
pub fn root_with_busybox(why: &str) -> TestRoot {
    assert!(
        nix::unistd::geteuid().is_root(),
        "{why} and must run as root"
    );
    let root = TestRoot::new();
    let tar = busybox_rootfs_tar();
    root.ok(&[
        "import",
        "-c",
        "CMD [\"sh\"]",
        tar.to_str().unwrap(),
        "busybox",
    ]);
    root
}

/// Makes the image `seeded` in `root` from its `busybox` image: busybox plus
/// `VOLUME /seed` holding `/seed/file` ("from the image"), owned by 33:33.
pub fn make_seeded_image(root: &TestRoot) {
    root.ok(&[
        "run",
        "--network",
        "none",
        "--name",
        "mk-seeded",
        "busybox",
        "sh",
        "-c",
        "mkdir /seed && echo from the image > /seed/file && chown -R 33:33 /seed",
    ]);
    root.ok(&["commit", "-c", "VOLUME /seed", "mk-seeded", "seeded"]);
    root.ok(&["rm", "mk-seeded"]);
}

/// Asserts that `berth ARGS` (whose output is `out`) succeeded, showing its
/// exit code and both streams if not; returns its stdout.
pub fn succeeded(args: &[&str], out: &Output) -> String {
    assert!(
        out.status.success(),
        "berth {:?} failed ({:?})\nstdout: {}\nstderr: {}",
        args,
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// (name, id, state) of each container in `compose ps --format json` output.
pub fn compose_ps_rows(json: &str) -> Vec<(String, String, String)> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let field = |k: &str| c[k].as_str().unwrap().to_string();
            (field("Name"), field("ID"), field("State"))
        })
        .collect()
}

/// Lazily unmounts every mount point at or below `dir` (deepest first).
pub fn unmount_under(dir: &Path) {
    let Ok(mounts) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = dir.to_string_lossy().to_string();
    let mut points: Vec<String> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|p| p == &prefix || p.starts_with(&format!("{prefix}/")))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let c = std::ffi::CString::new(p).unwrap();
        // SAFETY: plain umount2 syscall on a path we own.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

/// Directory where fixtures are cached (`target/fixtures`).
pub fn fixtures_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fixtures");
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `make` once across parallel tests, guarded by a lock file, unless
/// `path` already exists. `make` must create `path` atomically.
pub fn once(path: &Path, make: impl FnOnce(&Path)) -> PathBuf {
    use std::os::fd::AsRawFd;
    if path.exists() {
        return path.to_path_buf();
    }
    // `path.lock`, not `with_extension`: `x.tar` and `x` must not share a
    // lock, or a fixture built from another deadlocks on it.
    let mut lock_name = path.as_os_str().to_owned();
    lock_name.push(".lock");
    let lock = fs::File::create(PathBuf::from(lock_name)).unwrap();
    // SAFETY: flock on an owned fd.
    unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    if !path.exists() {
        make(path);
    }
    path.to_path_buf()
}

/// The busybox binary from Debian's busybox-static package.
pub fn busybox_static() -> PathBuf {
    let p = PathBuf::from("/bin/busybox");
    assert!(
        p.exists() && is_static(&p),
        "fixture missing: /bin/busybox from Debian's busybox-static; run scripts/test.sh \
         (it installs the packages the tests need)"
    );
    p
}

fn is_static(path: &Path) -> bool {
    let out = Command::new("file").arg("-L").arg(path).output();
    match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout).contains("statically linked"),
        // No `file` tool: trust the package.
        Err(_) => true,
    }
}

/// A directory holding a busybox root filesystem (cached).
pub fn busybox_rootfs() -> PathBuf {
    let path = fixtures_dir().join("busybox-rootfs");
    once(&path, |path| {
        let staging = path.with_extension("staging");
        let _ = fs::remove_dir_all(&staging);
        make_busybox_rootfs(&staging);
        fs::rename(&staging, path).unwrap();
    })
}

/// Writes a busybox root filesystem into `dir`.
pub fn make_busybox_rootfs(dir: &Path) {
    let busybox = busybox_static();
    for d in [
        "bin", "etc", "tmp", "root", "home", "var/www", "proc", "sys", "dev",
    ] {
        fs::create_dir_all(dir.join(d)).unwrap();
    }
    fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::copy(&busybox, dir.join("bin/busybox")).unwrap();
    fs::set_permissions(dir.join("bin/busybox"), fs::Permissions::from_mode(0o755)).unwrap();
    let list = Command::new(&busybox).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet == "busybox" || applet.is_empty() {
            continue;
        }
        let _ = std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet));
    }
    fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n\
         daemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
         www-data:x:33:33:www-data:/var/www:/bin/false\n\
         nobody:x:65534:65534:nobody:/home:/bin/false\n",
    )
    .unwrap();
    fs::write(
        dir.join("etc/group"),
        "root:x:0:\ndaemon:x:1:\nwww-data:x:33:\nnogroup:x:65534:\n",
    )
    .unwrap();
    fs::write(dir.join("var/www/index.html"), "hello from berth\n").unwrap();
}

/// A rootfs tarball of the busybox fixture (cached), for `berth import`.
pub fn busybox_rootfs_tar() -> PathBuf {
    let path = fixtures_dir().join("busybox-rootfs.tar");
    once(&path, |path| {
        let rootfs = busybox_rootfs();
        let staging = path.with_extension("tar.staging");
        let status = Command::new("tar")
            .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
            .arg(&rootfs)
            .arg("-cf")
            .arg(&staging)
            .arg(".")
            .status()
            .unwrap();
        assert!(status.success(), "tar of the busybox rootfs failed");
        fs::rename(&staging, path).unwrap();
    })
}

/// Whether a command is on PATH.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Asserts a tool the tests need is installed (scripts/test.sh installs it).
pub fn require(tool: &str) {
    assert!(
        have(tool),
        "{tool} is not installed; run scripts/test.sh, which installs every package the tests need"
    );
}

/// A minimal Debian root filesystem made with `debootstrap` from the host's
/// release (cached; needs the debootstrap package and the Debian archive,
/// which scripts/test.sh and the machine provide).
pub fn debian_rootfs() -> PathBuf {
    require("debootstrap");
    let path = fixtures_dir().join("debian-rootfs");
    once(&path, |path| {
        let os = fs::read_to_string("/etc/os-release").unwrap_or_default();
        let suite = os
            .lines()
            .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
            .unwrap_or("bookworm")
            .trim_matches('"')
            .to_string();
        let staging = path.with_extension("staging");
        let _ = fs::remove_dir_all(&staging);
        let out = Command::new("debootstrap")
            .args(["--variant=minbase", &suite])
            .arg(&staging)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "debootstrap {suite} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        fs::rename(&staging, path).unwrap();
    })
}
