//! Integration: `berth watch` on a busybox project with `build`, as root.
//!
//! Each test writes a project (a Dockerfile `FROM busybox` that COPYs
//! `src/`), starts `berth watch` as a child process with its output in a
//! file, waits for `Watch enabled`, then edits files on the host and polls
//! (never timing anything) until the containers show the effect: synced
//! and deleted files, links in the container that must not lead a write
//! out, rebuilds that recreate only when the image changed, manifest edits,
//! and SIGINT ending watch with status 0 while the project keeps running.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use common::{busybox_rootfs_tar, TestRoot};

/// A project directory plus the root it runs in; `down` on drop.
struct Project {
    root: TestRoot,
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Project {
    fn new(manifest: &str, dockerfile: &str) -> Self {
        let root = TestRoot::new();
        let tar = busybox_rootfs_tar();
        root.ok(&["import", tar.to_str().unwrap(), "busybox"]);
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(format!("w{}", std::process::id()));
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(dir.join("berth.toml"), manifest).unwrap();
        std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
        std::fs::write(dir.join("src/greeting"), "v1").unwrap();
        Self {
            root,
            _tmp: tmp,
            dir,
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.root.cmd();
        c.current_dir(&self.dir).args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        common::succeeded(args, &self.run(args))
    }

    /// The replica's container name (a container name needs no manifest:
    /// `exec` by service name would fail while the manifest is broken).
    fn web(&self) -> String {
        format!("{}-web-1", self.dir.file_name().unwrap().to_str().unwrap())
    }

    /// Full ids of every container in the root (without the manifest).
    fn ids(&self) -> Vec<String> {
        self.ok(&["ps", "-aq", "--no-trunc"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// `cat PATH` in the service's container, if it succeeds.
    fn cat(&self, path: &str) -> Option<String> {
        let out = self.run(&["exec", &self.web(), "cat", path]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// (name, id, state) of the project's containers.
    fn containers(&self) -> Vec<(String, String, String)> {
        let o = self.ok(&["compose", "ps", "-a", "--format", "json"]);
        common::compose_ps_rows(&o)
    }

    fn web_id(&self) -> String {
        let cs = self.containers();
        assert_eq!(cs.len(), 1, "{cs:?}");
        cs[0].1.clone()
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// Starts `berth watch ARGS` with its output in a file.
    fn watch(&self, args: &[&str]) -> Watch {
        let mut verb = vec!["watch"];
        verb.extend_from_slice(args);
        self.watch_with(&verb)
    }

    /// Starts `berth ARGS` (`watch …` or `up --watch …`), output in a file.
    fn watch_with(&self, args: &[&str]) -> Watch {
        let log = self.dir.parent().unwrap().join("watch.log");
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = self.cmd(&[]);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        let w = Watch {
            child: Some(cmd.spawn().unwrap()),
            log,
        };
        w.wait_for("Watch enabled");
        w
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self.run(&["down", "-t", "0", "--remove-orphans", "--volumes"]);
        self.root.remove_all_containers();
    }
}

/// A running `berth watch`; killed on drop if a test fails first.
struct Watch {
    child: Option<Child>,
    log: PathBuf,
}

impl Watch {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn count(&self, text: &str) -> usize {
        self.log().matches(text).count()
    }

    /// Polls until the log holds `text` at least `n` times.
    fn wait_for_n(&self, text: &str, n: usize) {
        let mut last = String::new();
        let what = format!("{n}x {text:?} in the watch log");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while std::time::Instant::now() < deadline {
            last = self.log();
            if last.matches(text).count() >= n {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("gave up waiting for {what}; log:\n{last}");
    }

    /// Polls until `f` holds; on giving up, shows the watch log.
    fn until(&self, what: &str, mut f: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while std::time::Instant::now() < deadline {
            if f() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("gave up waiting for: {what}; log:\n{}", self.log());
    }

    fn wait_for(&self, text: &str) {
        self.wait_for_n(text, 1)
    }

    /// SIGINT, then the exit status.
    fn interrupt(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        child.wait().unwrap()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

const DOCKERFILE: &str = "FROM busybox\nCOPY src /app/src\nCMD [\"sleep\", \"100000\"]\n";

/// A host directory outside every container that a hostile link names.
struct Victim(PathBuf);

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn sync_copies_deletes_and_never_writes_through_links_out() {
    let manifest = r#"
[services.web]
build = "."
stop_signal = "KILL"

[[services.web.develop.watch]]
action = "sync"
path = "./src"
target = "/app/src"
ignore = ["*.tmp"]
"#;
    let p = Project::new(manifest, DOCKERFILE);
    let mut w = p.watch(&[]);
    let id = p.web_id();
    assert_eq!(p.cat("/app/src/greeting").as_deref(), Some("v1"));

    // (a) A new file, a changed one, a new directory: synced.
    p.write("src/new.txt", "hello");
    p.write("src/greeting", "v2");
    w.until("new.txt synced", || {
        p.cat("/app/src/new.txt").as_deref() == Some("hello")
    });
    w.until("greeting synced", || {
        p.cat("/app/src/greeting").as_deref() == Some("v2")
    });
    p.write("src/sub/deep/x.txt", "deep");
    w.until("a new directory synced", || {
        p.cat("/app/src/sub/deep/x.txt").as_deref() == Some("deep")
    });
    assert!(
        w.log().contains("Syncing service \"web\" after"),
        "{}",
        w.log()
    );

    // Ignored (the rule's `*.tmp`, an editor's swap file), then a marker:
    // once the marker is there, the earlier files were handled too.
    p.write("src/scratch.tmp", "no");
    p.write("src/.greeting.swp", "no");
    p.write("src/marker", "m");
    w.until("marker synced", || p.cat("/app/src/marker").is_some());
    assert_eq!(p.cat("/app/src/scratch.tmp"), None);
    assert_eq!(p.cat("/app/src/.greeting.swp"), None);

    // Deleted on the host: deleted in the container, directories too.
    std::fs::remove_file(p.dir.join("src/new.txt")).unwrap();
    std::fs::remove_dir_all(p.dir.join("src/sub")).unwrap();
    w.until("new.txt deleted", || p.cat("/app/src/new.txt").is_none());
    w.until("sub deleted", || {
        !p.run(&["exec", "web", "test", "-e", "/app/src/sub"])
            .status
            .success()
    });

    // (b) Links in the container that lead out of the target. `evil` ->
    // /etc: written naively through /proc/PID/root, the host's /etc;
    // `evil2` -> a host directory holding a file to overwrite.
    let unique = format!("berth-watch-{}", std::process::id());
    let victim = Victim(std::env::temp_dir().join(format!("{unique}-victim")));
    std::fs::create_dir_all(&victim.0).unwrap();
    std::fs::write(victim.0.join("file"), "untouched").unwrap();
    p.write("src/evil/.keep", "");
    p.write("src/evil2/.keep", "");
    w.until("evil dirs synced", || {
        p.cat("/app/src/evil/.keep").is_some() && p.cat("/app/src/evil2/.keep").is_some()
    });
    let victim_s = victim.0.to_str().unwrap().to_string();
    p.ok(&[
        "exec",
        "web",
        "sh",
        "-c",
        &format!(
            "rm -rf /app/src/evil /app/src/evil2 && ln -s /etc /app/src/evil && ln -s {victim_s} /app/src/evil2"
        ),
    ]);
    let refusals = w.count("refusing to sync");
    p.write(&format!("src/evil/{unique}"), "pwned");
    p.write("src/evil2/file", "pwned");
    w.wait_for_n("refusing to sync", refusals + 2);
    assert!(!Path::new("/etc").join(&unique).exists());
    assert_eq!(
        std::fs::read_to_string(victim.0.join("file")).unwrap(),
        "untouched"
    );
    // Nor inside the container's own /etc.
    assert_eq!(p.cat(&format!("/etc/{unique}")), None);
    // Watch goes on.
    p.write("src/after", "still syncing");
    w.until("sync after a refusal", || {
        p.cat("/app/src/after").as_deref() == Some("still syncing")
    });
    assert_eq!(p.web_id(), id, "a sync recreated the container");

    // (e) SIGINT: exit 0, the project keeps running; `down` removes it.
    let status = w.interrupt();
    assert!(status.success(), "{status:?}\n{}", w.log());
    let cs = p.containers();
    assert_eq!(cs.len(), 1);
    assert_eq!(cs[0].2, "running", "{cs:?}");
    p.ok(&["down", "-t", "0"]);
    assert!(p.containers().is_empty());
}

#[test]
fn rebuild_recreates_only_when_the_image_changed() {
    let manifest = r#"
[services.web]
build = "."
stop_signal = "KILL"

[[services.web.develop.watch]]
action = "rebuild"
path = "./src"
"#;
    let p = Project::new(manifest, DOCKERFILE);
    std::fs::write(p.dir.join(".dockerignore"), "src/notes.md\n").unwrap();
    let mut w = p.watch(&["--prune"]);
    let id1 = p.web_id();
    assert_eq!(p.cat("/app/src/greeting").as_deref(), Some("v1"));

    // (c) A file the Dockerfile COPYs: rebuilt, recreated, new content.
    p.write("src/greeting", "v2");
    w.wait_for("successfully built");
    w.until("a new container with the new content", || {
        let cs = p.containers();
        cs.len() == 1
            && cs[0].1 != id1
            && cs[0].2 == "running"
            && p.cat("/app/src/greeting").as_deref() == Some("v2")
    });
    let id2 = p.web_id();
    assert!(
        w.log().contains("Rebuilding service(s) [\"web\"]"),
        "{}",
        w.log()
    );

    // Ignored files (.dockerignore, an editor's temp files, which the
    // editor removes again), then the same content written again: one
    // rebuild, all cache, no recreate.
    let rebuilds = w.count("Rebuilding service(s)");
    p.write("src/notes.md", "not in the image");
    p.write("src/greeting~", "backup");
    p.write("src/4913", "");
    std::fs::remove_file(p.dir.join("src/greeting~")).unwrap();
    std::fs::remove_file(p.dir.join("src/4913")).unwrap();
    p.write("src/greeting", "v2");
    w.wait_for("service \"web\" is up to date");
    assert_eq!(
        w.count("Rebuilding service(s)"),
        rebuilds + 1,
        "ignored files triggered a rebuild:\n{}",
        w.log()
    );
    assert_eq!(
        p.web_id(),
        id2,
        "an unchanged image recreated the container"
    );

    let status = w.interrupt();
    assert!(status.success(), "{status:?}\n{}", w.log());
    assert_eq!(p.containers()[0].2, "running");
}

/// Ctrl-C during a rebuild stops the build (its RUN is killed) and ends
/// watch with status 0; no build container is left, the project runs on.
#[test]
fn ctrl_c_stops_a_rebuild_in_progress() {
    let manifest = r#"
[services.web]
build = "."
stop_signal = "KILL"

[[services.web.develop.watch]]
action = "rebuild"
path = "./src"
"#;
    // The RUN takes long only once src/slow exists.
    let dockerfile = "FROM busybox\nCOPY src /app/src\nRUN if [ -e /app/src/slow ]; then echo slow-build-started; sleep 300; fi\nCMD [\"sleep\", \"100000\"]\n";
    let p = Project::new(manifest, dockerfile);
    let mut w = p.watch(&[]);
    let id = p.web_id();
    p.write("src/slow", "yes");
    w.wait_for("slow-build-started");
    let status = w.interrupt();
    assert!(status.success(), "{status:?}\n{}", w.log());
    assert!(w.log().contains("Watch disabled"), "{}", w.log());
    // Only the project's container is left, unchanged and running.
    assert_eq!(p.ids(), vec![id], "a build container was left behind");
    assert_eq!(p.containers()[0].2, "running");
}

/// `up --watch` in the foreground: the services' logs with their prefixes
/// beside watch's lines; Ctrl-C ends both and stops the project (130), as a
/// foreground `up` does.
#[test]
fn up_watch_in_the_foreground_follows_logs_and_ctrl_c_stops() {
    let manifest = r#"
[services.web]
build = "."
stop_signal = "KILL"
command = ["sh", "-c", "echo hello-from-web; exec sleep 100000"]

[[services.web.develop.watch]]
action = "sync"
path = "./src"
target = "/app/src"
"#;
    let p = Project::new(manifest, DOCKERFILE);
    let mut w = p.watch_with(&["up", "--watch"]);
    w.wait_for("web-1 | hello-from-web");
    p.write("src/new", "synced");
    w.until("the sync", || {
        p.cat("/app/src/new").as_deref() == Some("synced")
    });
    let status = w.interrupt();
    assert_eq!(status.code(), Some(130), "{}", w.log());
    let cs = p.containers();
    assert_eq!(cs.len(), 1);
    assert_ne!(cs[0].2, "running", "Ctrl-C stops the project: {cs:?}");
}

/// `initial_sync`: what is already in `path` when watch starts is synced
/// before the first change (and what the rule ignores is not).
#[test]
fn initial_sync_copies_the_whole_path_at_start() {
    let manifest = r#"
[services.web]
build = "."
stop_signal = "KILL"

[[services.web.develop.watch]]
action = "sync"
path = "./live"
target = "/srv/live"
ignore = ["*.log"]
initial_sync = true
"#;
    let p = Project::new(manifest, DOCKERFILE);
    p.write("live/before/deep.txt", "was there");
    p.write("live/debug.log", "ignored");
    let mut w = p.watch(&[]);
    // "Watch enabled" is printed after the initial sync.
    assert!(w.log().contains("initial sync"), "{}", w.log());
    assert_eq!(
        p.cat("/srv/live/before/deep.txt").as_deref(),
        Some("was there")
    );
    assert_eq!(
        p.cat("/srv/live/debug.log"),
        None,
        "an ignored file was synced"
    );
    let status = w.interrupt();
    assert!(status.success(), "{status:?}\n{}", w.log());
}

#[test]
fn manifest_edits_are_applied_and_broken_ones_reported() {
    let manifest = |value: &str| {
        format!(
            r#"
[services.web]
build = "."
stop_signal = "KILL"
environment = {{ GREETING = "{value}" }}

[[services.web.develop.watch]]
action = "sync"
path = "./src"
target = "/app/src"
"#
        )
    };
    let p = Project::new(&manifest("one"), DOCKERFILE);
    let mut w = p.watch(&[]);
    let id1 = p.web_id();
    let env = |p: &Project| {
        let out = p.run(&["exec", &p.web(), "sh", "-c", "echo $GREETING"]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(env(&p), "one");

    // (d) A changed value: re-planned, the service recreated.
    std::fs::write(p.dir.join("berth.toml"), manifest("two")).unwrap();
    w.until("recreated with the new environment", || {
        let cs = p.containers();
        cs.len() == 1 && cs[0].1 != id1 && cs[0].2 == "running" && env(&p) == "two"
    });
    assert!(w.log().contains("environment"), "{}", w.log());
    let id2 = p.web_id();

    // A manifest that does not load: its error with line:col, nothing
    // touched, watch goes on (syncing) with the project as it was.
    std::fs::write(
        p.dir.join("berth.toml"),
        manifest("two").replace("stop_signal", "stop_signall"),
    )
    .unwrap();
    w.wait_for("berth.toml:4:1: services.web.stop_signall: unknown key");
    p.write("src/after", "x");
    w.until("sync with the old project", || {
        p.cat("/app/src/after").is_some()
    });
    assert_eq!(p.ids(), vec![id2]);

    // Fixed again: applied.
    std::fs::write(p.dir.join("berth.toml"), manifest("three")).unwrap();
    w.until("recreated after the fix", || env(&p) == "three");

    // An env_file added, then edited: each edit is applied.
    p.write("web.env", "FROM_FILE=first\n");
    let with_env_file = manifest("three").replace(
        "stop_signal = \"KILL\"",
        "stop_signal = \"KILL\"\nenv_file = \"./web.env\"",
    );
    std::fs::write(p.dir.join("berth.toml"), with_env_file).unwrap();
    let from_file = |p: &Project| {
        let out = p.run(&["exec", &p.web(), "sh", "-c", "echo $FROM_FILE"]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    w.until("the env_file applied", || from_file(&p) == "first");
    p.write("web.env", "FROM_FILE=second\n");
    w.until("the env_file's edit applied", || from_file(&p) == "second");

    let status = w.interrupt();
    assert!(status.success(), "{status:?}\n{}", w.log());
}

#[test]
fn watch_without_rules_fails_and_no_up_needs_nothing_built() {
    let p = Project::new(
        "[services.web]\nbuild = \".\"\nstop_signal = \"KILL\"\n",
        DOCKERFILE,
    );
    let out = p.run(&["watch", "--no-up"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("none of the selected services is configured for watch"),
        "{err}"
    );
    // --no-up started nothing.
    assert!(p.containers().is_empty());
    // `up --watch` brings the project up, then watches: here, nothing to.
    let out = p.run(&["up", "--watch"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("configured for watch"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(p.containers().len(), 1);
    let out = p.run(&["compose", "watch", "nosuch"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no such service: nosuch"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sync_exec_and_restarts() {
    let manifest = r#"
[services.web]
build = "."
stop_signal = "KILL"
user = "1234:55"

[[services.web.develop.watch]]
action = "sync+exec"
path = "./src"
target = "/app/src"
exec = { command = "sh -c 'cat /app/src/greeting >> /tmp/exec.log'", user = "root" }

[[services.web.develop.watch]]
action = "sync+restart"
path = "./conf"
target = "/etc/app"

[[services.web.develop.watch]]
action = "restart"
path = "./reload"
"#;
    let dockerfile = "FROM busybox\nCOPY src /app/src\nCMD [\"sh\", \"-c\", \"echo started >> /tmp/starts; exec sleep 100000\"]\n";
    let p = Project::new(manifest, dockerfile);
    std::fs::create_dir_all(p.dir.join("conf")).unwrap();
    let mut w = p.watch(&[]);
    let id = p.web_id();
    let starts = |p: &Project| p.cat("/tmp/starts").map_or(0, |s| s.lines().count());
    w.until("first start", || starts(&p) == 1);

    // sync+exec: synced (owned by the service's numeric user), then run.
    p.write("src/greeting", "v2");
    w.until("the exec ran after the sync", || {
        p.cat("/tmp/exec.log").as_deref() == Some("v2")
    });
    let owner = p.ok(&["exec", &p.web(), "stat", "-c", "%u:%g", "/app/src/greeting"]);
    assert_eq!(owner.trim(), "1234:55");

    // sync+restart: the file is there and the container was restarted.
    p.write("conf/app.ini", "k=v");
    w.until("restarted after the sync", || starts(&p) == 2);
    assert_eq!(p.cat("/etc/app/app.ini").as_deref(), Some("k=v"));

    // restart: a file outside any sync rule.
    p.write("reload", "1");
    w.until("restarted again", || starts(&p) == 3);
    assert_eq!(p.web_id(), id, "a restart recreated the container");
    assert!(
        w.log().contains("Restarting service \"web\""),
        "{}",
        w.log()
    );

    let status = w.interrupt();
    assert!(status.success(), "{status:?}\n{}", w.log());
}

#[test]
fn sync_reaches_every_replica_and_mounted_volumes() {
    let manifest = r#"
[services.web]
build = "."
stop_signal = "KILL"
replicas = 2
volumes = ["data:/data"]

[volumes.data]

[[services.web.develop.watch]]
action = "sync"
path = "./src"
target = "/app/src"

[[services.web.develop.watch]]
action = "sync"
path = "./shared"
target = "/data/in"
"#;
    let p = Project::new(manifest, DOCKERFILE);
    std::fs::create_dir_all(p.dir.join("shared")).unwrap();
    let mut w = p.watch(&[]);
    assert_eq!(p.containers().len(), 2);
    // Each replica's own layer gets the file.
    p.write("src/each.txt", "to both");
    let name = p.dir.file_name().unwrap().to_str().unwrap().to_string();
    for n in [1, 2] {
        let c = format!("{name}-web-{n}");
        w.until(&format!("synced into {c}"), || {
            let out = p.run(&["exec", &c, "cat", "/app/src/each.txt"]);
            out.status.success() && out.stdout == b"to both"
        });
    }
    // A target inside a mounted volume: the file lands in the volume (the
    // mount the container sees), not in the layer under the mount point.
    p.write("shared/v.txt", "in the volume");
    let volume = p
        .root
        .path()
        .join(format!("volumes/{name}_data/_data/in/v.txt"));
    w.until("synced into the volume", || {
        std::fs::read_to_string(&volume).ok().as_deref() == Some("in the volume")
    });
    let status = w.interrupt();
    assert!(status.success(), "{status:?}\n{}", w.log());
}
