//! The classic Docker tutorial, walked with berth, as root, with no
//! container registry on the internet: the stand-in base images of
//! `scripts/base-images.sh` (Docker Hub's names), hello-world pulled through
//! a local registry configured as docker.io's mirror, and the examples as
//! the tutorial uses them — `examples/redis` (build, run, exec, commit,
//! tag, push, pull), `examples/simpleweb` (the build cache lessons, port
//! 8080 published, `berth watch`) and `examples/visits` (node + redis with
//! `depends_on` healthy). Plus what goes wrong on this path: a failing RUN
//! and a published port that is already held.
//!
//! Each test copies the examples it edits into a temp dir and runs them in
//! its own state root; the Node base (minutes of `apt-get install nodejs
//! npm`) is built once per `target/` and loaded with its cache entries
//! (`common::tutorial`), so the examples' Dockerfiles are built unchanged.

mod common;

use std::path::Path;
use std::process::{Child, Output, Stdio};

use common::registry::{free_port, Registry};
use common::tutorial::{copy_examples, edit, http_get, import_base, load_node_base, redis};
use common::{eventually, succeeded, TestRoot};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `berth ARGS` in `dir` with `root`; asserts success; returns stdout.
fn ok_in(root: &TestRoot, dir: &Path, args: &[&str]) -> String {
    let out = root.cmd().current_dir(dir).args(args).output().unwrap();
    succeeded(args, &out)
}

/// Each build step of classic `berth build` output: (instruction, cached).
fn steps(out: &str) -> Vec<(String, bool)> {
    let mut steps: Vec<(String, bool)> = Vec::new();
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix("Step ") {
            let instruction = rest.split_once(" : ").map(|(_, i)| i).unwrap_or(rest);
            steps.push((instruction.to_string(), false));
        } else if line == " ---> Using cache" {
            steps.last_mut().expect("Using cache before a step").1 = true;
        }
    }
    steps
}

/// The instructions of the steps that were not cached (FROM never is).
fn rerun(out: &str) -> Vec<String> {
    steps(out)
        .into_iter()
        .filter(|(i, cached)| !cached && !i.starts_with("FROM "))
        .map(|(i, _)| i)
        .collect()
}

/// Removes a project's containers, networks and volumes on drop.
struct Down<'a> {
    root: &'a TestRoot,
    dir: std::path::PathBuf,
}

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = self
            .root
            .cmd()
            .current_dir(&self.dir)
            .args(["down", "-t", "0", "--remove-orphans", "--volumes"])
            .output();
        self.root.remove_all_containers();
    }
}

/// Removes every container of a root on drop (for `berth run` tests).
struct RmAll<'a>(&'a TestRoot);

impl Drop for RmAll<'_> {
    fn drop(&mut self) {
        self.0.remove_all_containers();
    }
}

#[test]
fn hello_world_is_pulled_through_the_local_mirror_once() {
    let registry = Registry::start();
    let seed = TestRoot::new();
    import_base(&seed, "hello-world:latest");
    let there = format!("{}/library/hello-world:latest", registry.host());
    seed.ok(&["tag", "hello-world", &there]);
    seed.ok(&["push", &there]);

    let config = tempfile::tempdir().unwrap();
    let config_file = config.path().join("config.toml");
    std::fs::write(
        &config_file,
        format!(
            "[registry-mirrors]\n\"docker.io\" = [\"http://{}\"]\n",
            registry.host()
        ),
    )
    .unwrap();
    let root = TestRoot::new();
    let _rm = RmAll(&root);
    let run = || -> Output {
        root.cmd()
            .env("BERTH_CONFIG", &config_file)
            .args(["run", "hello-world"])
            .output()
            .unwrap()
    };
    let first = run();
    let (out, err) = (text(&first.stdout), text(&first.stderr));
    assert!(first.status.success(), "{out}\n{err}");
    assert!(
        err.starts_with("Unable to find image 'hello-world:latest' locally\n"),
        "{err}"
    );
    assert!(
        err.contains("latest: Pulling from library/hello-world"),
        "{err}"
    );
    assert!(
        err.contains("Status: Downloaded newer image for hello-world:latest"),
        "{err}"
    );
    assert!(out.starts_with("\nHello from Docker!\n"), "{out}");
    assert!(
        out.contains("This message shows that your installation appears to be working correctly."),
        "{out}"
    );

    let second = run();
    let (out2, err2) = (text(&second.stdout), text(&second.stderr));
    assert!(second.status.success(), "{out2}\n{err2}");
    assert_eq!(out2, out, "the same text again");
    assert!(!err2.contains("Unable to find image"), "{err2}");
    assert!(!err2.contains("Pulling"), "{err2}");
    // Two exited containers, as `docker ps -a` shows after two runs.
    let ps = root.ok(&["ps", "-a"]);
    let lines: Vec<&str> = ps.lines().skip(1).collect();
    assert_eq!(lines.len(), 2, "{ps}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains(" hello-world ") && l.contains(" Exited (0) ")),
        "{ps}"
    );
}

#[test]
fn redis_image_is_built_run_exec_committed_pushed_and_pulled() {
    let root = TestRoot::new();
    let _rm = RmAll(&root);
    import_base(&root, "debian:bookworm-slim");
    let examples = copy_examples(&["redis"]);
    let dir = examples.path().join("redis");
    let built = ok_in(&root, &dir, &["build", "-t", "you/redis", "."]);
    assert!(
        built.ends_with("Successfully tagged you/redis:latest\n"),
        "{built}"
    );

    let port = free_port();
    let publish = format!("127.0.0.1:{port}:6379");
    let id = root.ok(&["run", "-d", "-p", &publish, "you/redis"]);
    let id = id.trim();
    eventually("redis answers PING through exec", || {
        root.run(&["exec", id, "redis-cli", "ping"]).stdout == b"PONG\n"
    });
    assert_eq!(
        root.ok(&["exec", id, "redis-cli", "set", "greeting", "hi there"]),
        "OK\n"
    );
    assert_eq!(
        root.ok(&["exec", id, "redis-cli", "get", "greeting"]),
        "hi there\n"
    );
    // The published port: the same server from the host.
    assert_eq!(redis(port, "PING").as_deref(), Some("+PONG"));
    assert_eq!(redis(port, "GET greeting").as_deref(), Some("hi there"));
    assert_eq!(redis(port, "SET number 5").as_deref(), Some("+OK"));
    assert_eq!(root.ok(&["exec", id, "redis-cli", "get", "number"]), "5\n");
    // A shell in the container (the tutorial's `exec -it ID sh`).
    assert_eq!(
        root.ok(&["exec", id, "sh", "-c", "echo $0 in $(pwd)"]),
        "sh in /\n"
    );

    // stop sends SIGTERM (redis saves and exits 0); kill sends SIGKILL.
    root.ok(&["stop", id]);
    let state = root.ok(&["inspect", "-f", "{{.State.ExitCode}}", id]);
    assert_eq!(state.trim(), "0", "redis exits 0 on SIGTERM");
    root.ok(&["start", id]);
    root.ok(&["kill", id]);
    let state = root.ok(&["inspect", "-f", "{{.State.ExitCode}}", id]);
    assert_eq!(state.trim(), "137", "SIGKILL");

    // commit -c, tag, push to a local registry, pull back.
    let committed = root.ok(&["commit", "-c", r#"CMD ["redis-server"]"#, id]);
    let committed = committed.trim().trim_start_matches("sha256:");
    let registry = Registry::start();
    let there = format!("{}/you/redis:latest", registry.host());
    root.ok(&["tag", &committed[..12], &there]);
    let pushed = root.ok(&["push", &there]);
    assert!(pushed.contains("latest: digest: sha256:"), "{pushed}");
    let other = TestRoot::new();
    let _rm_other = RmAll(&other);
    let pulled = other.ok(&["pull", &there]);
    assert!(
        pulled.contains("Status: Downloaded newer image"),
        "{pulled}"
    );
    let cmd = other.ok(&["inspect", "-f", "{{json .Config.Cmd}}", &there]);
    assert_eq!(cmd.trim(), r#"["redis-server"]"#);
    let id2 = other.ok(&["run", "-d", &there]);
    let id2 = id2.trim();
    eventually("the pulled image runs redis", || {
        other.run(&["exec", id2, "redis-cli", "ping"]).stdout == b"PONG\n"
    });
    // The data of the committed container came along (SET before the stop).
    assert_eq!(
        other.ok(&["exec", id2, "redis-cli", "get", "greeting"]),
        "hi there\n"
    );

    // The same image as a project: berth.toml's health check, volume and
    // port (moved to a free one).
    edit(
        &dir.join("berth.toml"),
        "\"127.0.0.1:6379:6379\"",
        &format!("\"127.0.0.1:{}:6379\"", free_port()),
    );
    {
        let _down = Down {
            root: &root,
            dir: dir.clone(),
        };
        let up = root
            .cmd()
            .current_dir(&dir)
            .args(["up", "-d", "--wait"])
            .output()
            .unwrap();
        succeeded(&["up", "-d", "--wait"], &up);
        assert!(
            !text(&up.stderr).contains("Step 1/"),
            "the image was there: no build"
        );
        assert_eq!(
            ok_in(&root, &dir, &["exec", "redis", "redis-cli", "ping"]),
            "PONG\n"
        );
        ok_in(&root, &dir, &["down", "-v"]);
    }
}

#[test]
fn simpleweb_is_served_and_a_code_edit_keeps_npm_install_cached() {
    let root = TestRoot::new();
    let _rm = RmAll(&root);
    load_node_base(&root);
    let examples = copy_examples(&["simpleweb"]);
    let dir = examples.path().join("simpleweb");
    let first = ok_in(&root, &dir, &["build", "-t", "you/simpleweb", "."]);
    // apt-get install nodejs npm is the Node base's cached step.
    assert_eq!(
        rerun(&first),
        [
            "WORKDIR /usr/app",
            "COPY ./package.json ./",
            "RUN npm install",
            "COPY ./ ./",
            r#"CMD ["npm", "start"]"#
        ],
        "{first}"
    );
    assert!(first.contains("added "), "npm install ran: {first}");

    let port = free_port();
    let publish = format!("{port}:8080");
    let id = root.ok(&["run", "-d", "-p", &publish, "you/simpleweb"]);
    eventually("simpleweb says hi there", || {
        http_get(port).as_deref() == Some("hi there")
    });
    root.ok(&["rm", "-f", id.trim()]);

    // The tutorial's lesson: an edit to the code reruns only the steps
    // from the COPY of the code on; npm install comes from the cache.
    edit(&dir.join("index.js"), "hi there", "bye there");
    let second = ok_in(&root, &dir, &["build", "-t", "you/simpleweb", "."]);
    assert_eq!(
        rerun(&second),
        ["COPY ./ ./", r#"CMD ["npm", "start"]"#],
        "{second}"
    );
    assert!(
        second.contains("Step 5/7 : RUN npm install\n ---> Using cache\n"),
        "{second}"
    );
    assert!(
        !second.contains("added "),
        "npm install ran again: {second}"
    );
    let id = root.ok(&["run", "-d", "-p", &publish, "you/simpleweb"]);
    eventually("simpleweb says bye there", || {
        http_get(port).as_deref() == Some("bye there")
    });
    root.ok(&["rm", "-f", id.trim()]);

    // A new dependency in package.json reruns npm install.
    edit(
        &dir.join("package.json"),
        "\"private\": true,",
        "\"private\": true,\n  \"description\": \"hi\",",
    );
    let third = ok_in(&root, &dir, &["build", "-t", "you/simpleweb", "."]);
    assert_eq!(
        rerun(&third),
        [
            "COPY ./package.json ./",
            "RUN npm install",
            "COPY ./ ./",
            r#"CMD ["npm", "start"]"#
        ],
        "{third}"
    );
}

#[test]
fn cache_lessons_a_step_in_the_middle_and_a_swap() {
    let root = TestRoot::new();
    import_base(&root, "busybox:latest");
    let ctx = tempfile::tempdir().unwrap();
    let build = |dockerfile: &str| -> String {
        std::fs::write(ctx.path().join("Dockerfile"), dockerfile).unwrap();
        ok_in(&root, ctx.path(), &["build", "--network", "none", "."])
    };
    let base = "FROM busybox\nRUN echo one > /one\nRUN echo two > /two\nCMD [\"sh\"]\n";
    build(base);
    assert_eq!(rerun(&build(base)), Vec::<String>::new(), "all cached");
    // A step added in the middle: the steps above it stay cached, it and
    // everything below it run.
    let middle = "FROM busybox\nRUN echo one > /one\nRUN echo mid > /mid\nRUN echo two > /two\nCMD [\"sh\"]\n";
    let out = build(middle);
    assert_eq!(
        rerun(&out),
        [
            "RUN echo mid > /mid",
            "RUN echo two > /two",
            r#"CMD ["sh"]"#
        ],
        "{out}"
    );
    // Two steps swapped: everything from the swap reruns, even though
    // each step was built before (its parent differs).
    let swapped = "FROM busybox\nRUN echo two > /two\nRUN echo one > /one\nCMD [\"sh\"]\n";
    let out = build(swapped);
    assert_eq!(
        rerun(&out),
        [
            "RUN echo two > /two",
            "RUN echo one > /one",
            r#"CMD ["sh"]"#
        ],
        "{out}"
    );
    let ps = root.ok(&["ps", "-aq"]);
    assert_eq!(ps, "", "no build container left");
}

#[test]
fn simpleweb_edit_through_watch_reaches_the_running_container() {
    let root = TestRoot::new();
    load_node_base(&root);
    let examples = copy_examples(&["simpleweb"]);
    let dir = examples.path().join("simpleweb");
    let port = free_port();
    edit(
        &dir.join("berth.toml"),
        "\"8090:8080\"",
        &format!("\"{port}:8080\""),
    );
    let _down = Down {
        root: &root,
        dir: dir.clone(),
    };
    let log = examples.path().join("watch.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut watch = Watch(
        root.cmd()
            .current_dir(&dir)
            .arg("watch")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap(),
    );
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let until = |what: &str, f: &mut dyn FnMut() -> bool| {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(180);
        while std::time::Instant::now() < end {
            if f() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        panic!("gave up waiting for {what}; watch log:\n{}", read_log());
    };
    until("Watch enabled", &mut || {
        read_log().contains("Watch enabled")
    });
    until("hi there", &mut || {
        http_get(port).as_deref() == Some("hi there")
    });
    let before = ok_in(&root, &dir, &["compose", "ps", "-q"]);
    edit(&dir.join("index.js"), "hi there", "hi from watch");
    until("the edit served", &mut || {
        http_get(port).as_deref() == Some("hi from watch")
    });
    // Synced and restarted, not rebuilt: the same container.
    assert_eq!(ok_in(&root, &dir, &["compose", "ps", "-q"]), before);
    let synced = ok_in(&root, &dir, &["exec", "web", "cat", "/usr/app/index.js"]);
    assert!(synced.contains("hi from watch"), "{synced}");
    assert_eq!(
        read_log().matches("Step 1/").count(),
        1,
        "one build (up's), no rebuild: {}",
        read_log()
    );
    let status = watch.interrupt();
    assert!(
        status.success(),
        "watch ended with {status}: {}",
        read_log()
    );
}

/// A running `berth watch`; killed on drop if the test fails first.
struct Watch(Child);

impl Watch {
    fn interrupt(&mut self) -> std::process::ExitStatus {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
        self.0.wait().unwrap()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn visits_count_across_requests_and_survive_a_redis_restart() {
    let root = TestRoot::new();
    load_node_base(&root);
    let examples = copy_examples(&["redis", "visits"]);
    let dir = examples.path().join("visits");
    let port = free_port();
    edit(
        &dir.join("berth.toml"),
        "\"4001:8081\"",
        &format!("\"{port}:8081\""),
    );
    let down = Down {
        root: &root,
        dir: dir.clone(),
    };
    ok_in(&root, &dir, &["up", "-d", "--wait"]);
    let policy = root.ok(&[
        "inspect",
        "-f",
        "{{.HostConfig.RestartPolicy.Name}}",
        "visits-web-1",
    ]);
    assert_eq!(policy.trim(), "on-failure");
    let visits = |n: u32| format!("Number of visits is {n}");
    assert_eq!(http_get(port), Some(visits(1)));
    assert_eq!(http_get(port), Some(visits(2)));

    // redis restarts (SIGTERM: it saves its data); the count goes on.
    ok_in(&root, &dir, &["restart", "redis"]);
    eventually("the app reaches redis again", || {
        http_get(port) == Some(visits(3))
    });
    assert_eq!(http_get(port), Some(visits(4)));

    // down leaves nothing: no container, no project network.
    ok_in(&root, &dir, &["down"]);
    assert_eq!(root.ok(&["ps", "-aq"]), "");
    let nets = root.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.contains("visits"), "{nets}");
    drop(down);
}

#[test]
fn a_failing_run_names_its_step_code_and_output_and_leaves_nothing() {
    let root = TestRoot::new();
    import_base(&root, "debian:bookworm-slim");
    let before = root.ok(&["images", "-a", "-q"]);
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM debian:bookworm-slim\n\
         RUN apt-get update && apt-get install -y --no-install-recommends no-such-package-berth\n\
         CMD [\"bash\"]\n",
    )
    .unwrap();
    let out = root
        .cmd()
        .current_dir(ctx.path())
        .args(["build", "-t", "broken", "."])
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("Step 2/3 : RUN apt-get update && apt-get install -y --no-install-recommends no-such-package-berth\n"),
        "{stdout}"
    );
    // The step's last lines of output, then the step and its exit code.
    assert!(
        stdout.contains("E: Unable to locate package no-such-package-berth"),
        "{stdout}"
    );
    assert!(!stdout.contains("Step 3/3"), "{stdout}");
    assert!(stderr.contains("returned a non-zero code: 100"), "{stderr}");
    assert!(stderr.contains("no-such-package-berth"), "{stderr}");
    assert_eq!(root.ok(&["ps", "-aq"]), "", "no build container left");
    assert!(!root.run(&["image", "inspect", "broken"]).status.success());
    assert_eq!(root.ok(&["images", "-a", "-q"]), before, "no image added");
}

#[test]
fn a_held_port_is_refused_before_anything_starts_naming_its_holder() {
    let root = TestRoot::new();
    import_base(&root, "busybox:latest");
    let examples = copy_examples(&["simpleweb"]);
    let dir = examples.path().join("simpleweb");
    // Someone else holds the port (this test process).
    let holder = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    edit(
        &dir.join("berth.toml"),
        "\"8090:8080\"",
        &format!("\"{port}:8080\""),
    );
    let _down = Down {
        root: &root,
        dir: dir.clone(),
    };
    let out = root
        .cmd()
        .current_dir(&dir)
        .args(["up", "-d"])
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    let me = std::process::id();
    assert!(
        stderr.contains(&format!("0.0.0.0:{port} is in use by pid {me}")),
        "{stderr}"
    );
    // Nothing was built, created or started.
    assert!(
        !stdout.contains("Step 1/"),
        "built before checking: {stdout}"
    );
    assert_eq!(root.ok(&["ps", "-aq"]), "");
    let nets = root.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.contains("simpleweb"), "{nets}");
    drop(holder);
}
