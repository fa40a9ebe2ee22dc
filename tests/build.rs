//! `berth build` end to end, as root, with the busybox image: the classic
//! builder's output, RUN/COPY/ENV/WORKDIR/CMD results visible to `berth
//! run`, the cache (a rebuild reuses every step; a changed file reruns from
//! its COPY on), whiteouts, multi-stage builds with `COPY --from` and
//! `--target`, build args, `.dockerignore`, a failing RUN, and hostile
//! sources that try to leave the build context.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Output;

use common::TestRoot;

/// A state root with the busybox image and a build context directory.
struct Bench {
    root: TestRoot,
    ctx: tempfile::TempDir,
}

impl Bench {
    fn new() -> Self {
        let root = common::root_with_busybox("the build tests run containers");
        let ctx = tempfile::tempdir().unwrap();
        Self { root, ctx }
    }

    fn ctx(&self) -> &Path {
        self.ctx.path()
    }

    fn write(&self, rel: &str, content: &str) {
        let p = self.ctx().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }

    fn build(&self, extra: &[&str]) -> Output {
        let mut args = vec!["build"];
        args.extend_from_slice(extra);
        let ctx = self.ctx().to_str().unwrap().to_string();
        args.push(&ctx);
        self.root.run(&args)
    }

    /// Builds, asserts success, returns stdout.
    fn build_ok(&self, extra: &[&str]) -> String {
        let out = self.build(extra);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "berth build {extra:?} failed:\nstdout:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    fn run(&self, image: &str, cmd: &[&str]) -> String {
        let mut args = vec!["run", "--rm", "--network", "none", image];
        args.extend_from_slice(cmd);
        self.root.ok(&args)
    }

    fn no_containers_left(&self) {
        let ps = self.root.ok(&["ps", "-a", "-q"]);
        assert_eq!(ps.trim(), "", "containers left behind: {ps}");
    }
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

fn built_id(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("Successfully built "))
        .unwrap_or_else(|| panic!("no 'Successfully built' in:\n{out}"))
        .to_string()
}

#[test]
fn build_run_and_rebuild_from_cache() {
    let b = Bench::new();
    b.write("app.txt", "version one\n");
    b.write(
        "Dockerfile",
        "FROM busybox\n\
         ENV GREETING=hello\n\
         WORKDIR /app\n\
         COPY app.txt ./\n\
         RUN echo \"$GREETING from $(pwd)\" > greeting && rm /bin/vi\n\
         CMD [\"sh\", \"-c\", \"cat /app/greeting /app/app.txt\"]\n",
    );
    let out = b.build_ok(&["--network", "none", "-t", "myapp:1", "-t", "myapp"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "Step 1/6 : FROM busybox", "{out}");
    assert!(
        lines[1].starts_with(" ---> ") && lines[1].len() == 18,
        "{out}"
    );
    assert!(out.contains("Step 4/6 : COPY app.txt ./\n"), "{out}");
    assert!(
        out.contains("Step 5/6 : RUN echo \"$GREETING from $(pwd)\" > greeting && rm /bin/vi\n ---> Running in "),
        "{out}"
    );
    assert_eq!(count(&out, "Removing intermediate container "), 1, "{out}");
    assert_eq!(count(&out, "Using cache"), 0, "{out}");
    let id = built_id(&out);
    assert!(out.ends_with(&format!(
        "Successfully built {id}\nSuccessfully tagged myapp:1\nSuccessfully tagged myapp:latest\n"
    )));
    assert_eq!(
        b.run("myapp:1", &[]),
        "hello from /app\nversion one\n",
        "CMD, ENV, WORKDIR, COPY and RUN all show"
    );
    // The RUN's rm is a whiteout in its layer: the file is gone.
    let ls = b
        .root
        .run(&["run", "--rm", "--network", "none", "myapp", "ls", "/bin/vi"]);
    assert!(!ls.status.success(), "/bin/vi is still there");
    assert!(b.run("myapp", &["ls", "/bin/sh"]).contains("/bin/sh"));
    b.no_containers_left();
    // Intermediate images are hidden from `images`, as in Docker, but listed by -a.
    let images = b.root.ok(&["images"]);
    assert!(!images.contains("<none>"), "{images}");
    let all = b.root.ok(&["images", "-a"]);
    assert_eq!(count(&all, "<none>"), 2 * 4, "{all}");

    // A rebuild reuses every step.
    let again = b.build_ok(&["--network", "none", "-t", "myapp"]);
    assert_eq!(count(&again, " ---> Using cache\n"), 5, "{again}");
    assert_eq!(count(&again, "Running in"), 0, "{again}");
    assert_eq!(built_id(&again), id);
    // `image prune` keeps a tagged image's intermediate images (they have a
    // child, so they are not dangling): the cache survives it.
    b.root.ok(&["image", "prune", "-f"]);
    let pruned = b.build_ok(&["--network", "none", "-t", "myapp"]);
    assert_eq!(count(&pruned, " ---> Using cache\n"), 5, "{pruned}");

    // New content in the copied file: the steps before the COPY are cached,
    // the COPY and everything after rerun.
    b.write("app.txt", "version two\n");
    let changed = b.build_ok(&["--network", "none", "-t", "myapp"]);
    assert_eq!(count(&changed, " ---> Using cache\n"), 2, "{changed}");
    assert_eq!(count(&changed, "Running in"), 1, "{changed}");
    assert_ne!(built_id(&changed), id);
    assert_eq!(b.run("myapp", &[]), "hello from /app\nversion two\n");

    // --no-cache reruns everything.
    let fresh = b.build_ok(&["--network", "none", "--no-cache"]);
    assert_eq!(count(&fresh, "Using cache"), 0, "{fresh}");

    // -q prints the id only.
    let quiet = b.build_ok(&["--network", "none", "-q"]);
    assert!(
        quiet.starts_with("sha256:") && quiet.trim().len() == 71 && quiet.lines().count() == 1,
        "{quiet}"
    );
    b.no_containers_left();
}

#[test]
fn multi_stage_copy_from_and_target() {
    let b = Bench::new();
    b.write(
        "Dockerfile",
        "FROM busybox AS builder\n\
         RUN mkdir /out && echo built > /out/artifact\n\
         \n\
         FROM busybox AS unused\n\
         RUN echo never > /never\n\
         \n\
         FROM busybox\n\
         COPY --from=builder /out/artifact /dist/\n\
         COPY --from=0 /out /copied\n\
         CMD [\"cat\", \"/dist/artifact\", \"/copied/artifact\"]\n",
    );
    let out = b.build_ok(&["--network", "none", "-t", "multi"]);
    assert!(
        !out.contains("AS unused"),
        "a stage nobody needs is skipped:\n{out}"
    );
    assert!(
        out.contains("Step 1/6 : FROM busybox AS builder\n"),
        "{out}"
    );
    assert!(out.contains("Step 3/6 : FROM busybox\n"), "{out}");
    assert_eq!(b.run("multi", &[]), "built\nbuilt\n");
    let ls = b
        .root
        .run(&["run", "--rm", "--network", "none", "multi", "ls", "/out"]);
    assert!(
        !ls.status.success(),
        "the builder's files stay in the builder"
    );

    let target = b.build_ok(&["--network", "none", "--target", "builder", "-t", "stage1"]);
    assert!(target.contains("Step 2/2 : RUN mkdir"), "{target}");
    assert!(target.contains(" ---> Using cache"), "{target}");
    assert_eq!(b.run("stage1", &["cat", "/out/artifact"]), "built\n");

    let bad = b.build(&["--target", "nope"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("failed to reach build target nope"));
    b.no_containers_left();
}

#[test]
fn build_args_and_default_network() {
    let b = Bench::new();
    b.write(
        "Dockerfile",
        "ARG BASE=busybox\n\
         FROM $BASE\n\
         ARG WHO=world\n\
         ARG UNSET\n\
         RUN echo \"hello $WHO [$UNSET]\" > /msg\n\
         ENV WHO=env-wins\n\
         RUN echo \"$WHO\" > /env\n",
    );
    // The default network (as Docker's builds) for this one.
    let out = b.build_ok(&[
        "--build-arg",
        "WHO=berth",
        "--build-arg",
        "NOPE=1",
        "-t",
        "args",
    ]);
    assert!(
        out.contains("[Warning] One or more build-args [NOPE] were not consumed\n"),
        "{out}"
    );
    assert_eq!(
        b.run("args", &["cat", "/msg", "/env"]),
        "hello berth []\nenv-wins\n"
    );
    // Build args are not in the image's environment.
    assert!(!b.run("args", &["env"]).contains("WHO=berth"));

    // Another value reruns the steps that see it.
    let other = b.build_ok(&["--network", "none", "--build-arg", "WHO=you", "-t", "args"]);
    assert!(!other.contains("[Warning]"), "{other}");
    assert_eq!(b.run("args", &["cat", "/msg"]), "hello you []\n");
    let defaults = b.build_ok(&["--network", "none", "-t", "args"]);
    assert_eq!(count(&defaults, "Running in"), 2, "{defaults}");
    assert_eq!(b.run("args", &["cat", "/msg"]), "hello world []\n");
    b.no_containers_left();
}

#[test]
fn dockerignore_hides_files() {
    let b = Bench::new();
    b.write("keep.txt", "keep\n");
    b.write("secret.env", "TOKEN=1\n");
    b.write("logs/a.log", "log\n");
    b.write(".dockerignore", "secret.env\nlogs\n");
    b.write("Dockerfile", "FROM busybox\nCOPY . /ctx/\n");
    b.build_ok(&["-t", "ign"]);
    let ls = b.run("ign", &["ls", "-A", "/ctx"]);
    assert!(ls.contains("keep.txt") && ls.contains("Dockerfile"), "{ls}");
    assert!(!ls.contains("secret.env") && !ls.contains("logs"), "{ls}");

    b.write("Dockerfile", "FROM busybox\nCOPY secret.env /\n");
    let out = b.build(&[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("secret.env: no such file or directory in the build context"),
        "{err}"
    );
}

#[test]
fn failing_run_leaves_no_container() {
    let b = Bench::new();
    let before = b.root.ok(&["images", "-a", "-q"]);
    b.write(
        "Dockerfile",
        "FROM busybox\nRUN echo ok > /ok\nRUN echo about to fail && false\nRUN echo never\n",
    );
    let out = b.build(&["--network", "none", "-t", "broken"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("about to fail\n"), "{stdout}");
    assert!(!stdout.contains("never"), "{stdout}");
    assert_eq!(
        stderr.trim(),
        "The command '/bin/sh -c echo about to fail && false' returned a non-zero code: 1"
    );
    b.no_containers_left();
    let after = b.root.ok(&["images", "-a", "-q"]);
    assert_eq!(
        after.lines().count(),
        before.lines().count() + 1,
        "only the successful step's image was added:\n{after}"
    );
    assert!(b.root.run(&["image", "inspect", "broken"]).status.code() != Some(0));
    // The successful step is cached for the next try.
    b.write("Dockerfile", "FROM busybox\nRUN echo ok > /ok\nRUN true\n");
    let retry = b.build_ok(&["--network", "none"]);
    assert_eq!(count(&retry, "Using cache"), 1, "{retry}");
}

#[test]
fn hostile_sources_stay_in_the_context() {
    let b = Bench::new();
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret"), "outside\n").unwrap();
    // The context is a subdirectory next to the secret.
    let ctx = b.ctx().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(b.ctx().join("secret"), "next door\n").unwrap();
    symlink("/etc/passwd", ctx.join("passwd-link")).unwrap();
    symlink("/etc", ctx.join("etc-link")).unwrap();
    symlink(outside.path(), ctx.join("outside-link")).unwrap();
    let build = |dockerfile: &str| {
        fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
        b.root
            .run(&["build", "-t", "hostile", ctx.to_str().unwrap()])
    };
    // Climbing out with ..
    let out = build("FROM busybox\nCOPY ../secret /x\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("forbidden path outside the build context")
    );
    // A link on the way out is resolved inside the context: not found.
    for src in ["etc-link/passwd", "outside-link/secret"] {
        let out = build(&format!("FROM busybox\nCOPY {src} /x\n"));
        assert_eq!(out.status.code(), Some(1), "{src}");
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .contains("no such file or directory in the build context"),
            "{src}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A link as the source is followed as Docker does, inside the context:
    // /etc/passwd there is CONTEXT/etc/passwd, which does not exist.
    let out = build("FROM busybox\nCOPY passwd-link /link\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("passwd-link: no such file or directory in the build context"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Links inside a copied directory stay links.
    let out = build("FROM busybox\nCOPY . /all/\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        b.run("hostile", &["readlink", "/all/passwd-link"]),
        "/etc/passwd\n"
    );
    assert_eq!(
        b.run("hostile", &["readlink", "/all/outside-link"]).trim(),
        outside.path().to_str().unwrap()
    );
    let ls = b.root.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "hostile",
        "cat",
        "/all/outside-link/secret",
    ]);
    assert!(!ls.status.success(), "the outside file is not in the image");
}

#[test]
fn copy_flags_heredocs_archives_and_scratch() {
    let b = Bench::new();
    b.write("f.txt", "file\n");
    b.write("dir/a", "a\n");
    b.write("dir/sub/b", "b\n");
    let tar = b.ctx().join("bundle.tar");
    let status = std::process::Command::new("tar")
        .arg("-C")
        .arg(b.ctx().join("dir"))
        .arg("-cf")
        .arg(&tar)
        .args(["a", "sub"])
        .status()
        .unwrap();
    assert!(status.success());
    b.write(
        "Dockerfile",
        "FROM busybox\n\
         COPY --chown=www-data:www-data f.txt /owned\n\
         COPY --chown=1234 --chmod=0600 f.txt /numeric\n\
         COPY dir /tree/\n\
         COPY d*/s?b/b /glob/\n\
         ADD bundle.tar /unpacked\n\
         COPY bundle.tar /packed/\n\
         ENV NAME=berth\n\
         COPY <<EOF /etc/motd\n\
         welcome to $NAME \"quoted\"\n\
         EOF\n\
         RUN <<EOF\n\
         echo from a heredoc > /hd\n\
         EOF\n",
    );
    b.build_ok(&["--network", "none", "-t", "flags"]);
    let stat = |p: &str| b.run("flags", &["stat", "-c", "%u:%g %a", p]);
    assert_eq!(stat("/owned"), "33:33 644\n");
    assert_eq!(stat("/numeric"), "1234:1234 600\n");
    assert_eq!(
        b.run("flags", &["cat", "/tree/a", "/tree/sub/b", "/glob/b"]),
        "a\nb\nb\n"
    );
    assert_eq!(
        b.run("flags", &["cat", "/unpacked/a", "/unpacked/sub/b"]),
        "a\nb\n"
    );
    assert_eq!(b.run("flags", &["ls", "/packed"]), "bundle.tar\n");
    assert_eq!(
        b.run("flags", &["cat", "/etc/motd", "/hd"]),
        "welcome to berth \"quoted\"\nfrom a heredoc\n"
    );

    // ADD from a URL is refused (offline builds).
    b.write("Dockerfile", "FROM busybox\nADD http://example.com/x /x\n");
    let out = b.build(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("remote sources are not supported"));

    // FROM scratch: an image made of COPY layers only.
    b.write(
        "Dockerfile",
        "FROM scratch\nCOPY f.txt /\nLABEL kind=scratch\n",
    );
    let out = b.build_ok(&["-t", "tiny"]);
    assert!(
        out.contains("Step 1/3 : FROM scratch\nStep 2/3 : COPY f.txt /\n"),
        "{out}"
    );
    let inspect = b.root.ok(&["image", "inspect", "tiny"]);
    assert_eq!(
        b.root
            .ok(&["image", "inspect", "-f", "{{.Config.Labels.kind}}", "tiny"])
            .trim(),
        "scratch"
    );
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    let img = if v.is_array() { &v[0] } else { &v };
    assert_eq!(img["Config"]["Labels"]["kind"], "scratch", "{inspect}");
    assert_eq!(
        img["RootFS"]["Layers"].as_array().map(Vec::len),
        Some(1),
        "{inspect}"
    );
}

#[test]
fn onbuild_triggers_run_in_the_child_build() {
    let b = Bench::new();
    b.write("f.txt", "from the child's context\n");
    b.write(
        "Dockerfile",
        "FROM busybox\nONBUILD COPY f.txt /onbuild.txt\nONBUILD RUN echo triggered > /trig\n",
    );
    b.build_ok(&["--network", "none", "-t", "parent"]);
    let parent = b.root.ok(&["image", "inspect", "parent"]);
    assert!(
        parent.contains("ONBUILD") || parent.contains("COPY f.txt /onbuild.txt"),
        "{parent}"
    );
    b.write("Dockerfile", "FROM parent\nRUN cat /trig /onbuild.txt\n");
    let out = b.build_ok(&["--network", "none", "-t", "child"]);
    assert!(out.contains("# Executing 2 build triggers\n"), "{out}");
    assert!(
        out.contains("triggered\nfrom the child's context\n"),
        "{out}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&b.root.ok(&["image", "inspect", "child"])).unwrap();
    let img = if v.is_array() { &v[0] } else { &v };
    assert!(
        img["Config"]["OnBuild"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "the triggers ran and are not inherited further: {img}"
    );
    b.no_containers_left();
}

#[test]
fn interrupt_stops_the_build_and_removes_its_container() {
    use std::io::BufRead;
    let b = Bench::new();
    b.write(
        "Dockerfile",
        "FROM busybox\nRUN echo started && sleep 120\nRUN echo never\n",
    );
    let mut child = b
        .root
        .cmd()
        .args(["build", "--network", "none", b.ctx().to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    for l in lines.by_ref() {
        let l = l.unwrap();
        seen.push_str(&l);
        seen.push('\n');
        if l == "started" {
            break;
        }
    }
    assert!(seen.contains("started"), "{seen}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{seen}{rest:?}");
    assert!(!rest.iter().any(|l| l.contains("never")), "{rest:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("the build was interrupted"));
    b.no_containers_left();
}

/// A SIGKILLed build cannot clean up; the next build removes its container.
#[test]
fn the_next_build_removes_the_container_of_a_killed_build() {
    use std::io::BufRead;
    let b = Bench::new();
    b.write(
        "Dockerfile",
        "FROM busybox\nRUN echo started && sleep 120\n",
    );
    let mut child = b
        .root
        .cmd()
        .args(["build", "--network", "none", b.ctx().to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let seen: Vec<String> = lines
        .map(|l| l.unwrap())
        .take_while(|l| l != "started")
        .collect();
    child.kill().unwrap();
    child.wait().unwrap();
    let orphans = b.root.ok(&["ps", "-a", "-q"]);
    assert_eq!(
        orphans.lines().count(),
        1,
        "the killed build's container: {seen:?}"
    );
    b.write("Dockerfile", "FROM busybox\nRUN echo another\n");
    b.build_ok(&["--network", "none"]);
    b.no_containers_left();
}

#[test]
fn copy_and_workdir_follow_links_inside_the_image() {
    let b = Bench::new();
    b.write("f.txt", "file\n");
    b.write(
        "Dockerfile",
        "FROM busybox\n\
         RUN mkdir -p /usr/lib2 /real && echo kept > /usr/lib2/old && ln -s usr/lib2 /lib2 && ln -s /real /wd\n\
         COPY f.txt /lib2/\n\
         COPY f.txt /lib2/renamed.txt\n\
         WORKDIR /wd/sub\n\
         COPY f.txt ./\n",
    );
    b.build_ok(&["--network", "none", "-t", "links"]);
    // The link is still a link, and what was behind it is still there.
    assert_eq!(b.run("links", &["readlink", "/lib2"]), "usr/lib2\n");
    assert_eq!(
        b.run("links", &["ls", "/usr/lib2"]),
        "f.txt\nold\nrenamed.txt\n"
    );
    assert_eq!(b.run("links", &["readlink", "/wd"]), "/real\n");
    assert_eq!(b.run("links", &["cat", "/real/sub/f.txt"]), "file\n");
}

#[test]
fn the_image_healthcheck_does_not_run_in_build_containers() {
    let b = Bench::new();
    b.write(
        "Dockerfile",
        "FROM busybox\nHEALTHCHECK --interval=1s --start-period=0s CMD touch /health-ran\n",
    );
    b.build_ok(&["--network", "none", "-t", "checked"]);
    b.write("Dockerfile", "FROM checked\nRUN sleep 3\n");
    b.build_ok(&["--network", "none", "-t", "after"]);
    let ls = b.root.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--no-healthcheck",
        "after",
        "ls",
        "/health-ran",
    ]);
    assert!(
        !ls.status.success(),
        "the health check ran during the build"
    );
    let v: serde_json::Value =
        serde_json::from_str(&b.root.ok(&["image", "inspect", "after"])).unwrap();
    let img = if v.is_array() { &v[0] } else { &v };
    assert_eq!(
        img["Config"]["Healthcheck"]["Test"][1], "touch /health-ran",
        "{img}"
    );
}
