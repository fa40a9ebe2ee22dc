//! Integration: `up`, `plan`, `down` and the service verbs on the
//! three-service busybox project (examples/three-services), as root.

mod common;

use std::os::fd::AsRawFd;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{busybox_rootfs_tar, TestRoot};

/// A project directory plus the root it runs in; `down` on drop.
struct Project {
    root: TestRoot,
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    env: Vec<(String, String)>,
    name: Option<String>,
}

impl Project {
    fn new(root: TestRoot, subdir: &str, manifest: &str) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(subdir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("berth.toml"), manifest).unwrap();
        Self {
            root,
            _tmp: tmp,
            dir,
            env: Vec::new(),
            name: None,
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.root.cmd();
        c.current_dir(&self.dir);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        // `-p` goes right after the command (`berth up -p X`, `berth
        // compose -p X logs`): `exec` takes the rest.
        c.args(&args[..1.min(args.len())]);
        if let Some(p) = &self.name {
            c.arg("-p").arg(p);
        }
        c.args(&args[1.min(args.len())..]);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> (String, String) {
        let out = self.run(args);
        let (o, e) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert!(out.status.success(), "berth {args:?} failed\n{o}\n{e}");
        (o, e)
    }

    /// (name, id, state) of the project's containers.
    fn containers(&self) -> Vec<(String, String, String)> {
        let (o, _) = self.ok(&["compose", "ps", "-a", "--format", "json"]);
        common::compose_ps_rows(&o)
    }

    fn id_of(&self, name: &str) -> String {
        self.containers()
            .into_iter()
            .find(|c| c.0 == name)
            .unwrap_or_else(|| panic!("no container {name}"))
            .1
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self.run(&["down", "-t", "0", "--remove-orphans", "--volumes"]);
        // Containers a test made beside the project (`berth run`).
        self.root.remove_all_containers();
    }
}

fn with_busybox() -> TestRoot {
    let root = TestRoot::new();
    let tar = busybox_rootfs_tar();
    root.ok(&["import", tar.to_str().unwrap(), "busybox"]);
    root
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn example() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/three-services/berth.toml"),
    )
    .unwrap()
    .replace("#:schema ../../schema/berth.schema.json\n", "")
    // A free host port per test, through interpolation.
    .replace("\"8080:80\"", "\"${WEB_PORT:-8080}:80\"")
}

fn three(root: TestRoot, project: &str) -> Project {
    let mut p = Project::new(root, "three", &example());
    p.env.push(("WEB_PORT".into(), free_port().to_string()));
    p.name = Some(project.to_string());
    p
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", std::process::id() % 100000)
}

/// What the kernel holds for a state root: mounts under it, cgroups of
/// the given containers, links and nft rules naming the given network ids.
fn kernel_traces(root: &Path, ids: &[String], net_ids: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let root_s = root.to_string_lossy().to_string();
    for l in std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
    {
        if l.split(' ').nth(4).is_some_and(|p| p.starts_with(&root_s)) {
            out.push(format!("mount {l}"));
        }
    }
    for id in ids {
        for cg in [
            format!("/sys/fs/cgroup/berth/{id}"),
            format!("/sys/fs/cgroup/memory/berth/{id}"),
            format!("/sys/fs/cgroup/pids/berth/{id}"),
        ] {
            if Path::new(&cg).exists() {
                out.push(format!("cgroup {cg}"));
            }
        }
    }
    let links = String::from_utf8_lossy(
        &Command::new("ip")
            .args(["-o", "link", "show"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    let nft = String::from_utf8_lossy(
        &Command::new("nft")
            .args(["list", "ruleset"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    for n in net_ids {
        let bridge = format!("br-{}", &n[..12]);
        if links.contains(&bridge) {
            out.push(format!("link {bridge}"));
        }
        for l in nft
            .lines()
            .filter(|l| l.contains(&format!("berth:net:{n}")))
        {
            out.push(format!("nft {l}"));
        }
    }
    for id in ids {
        for l in nft
            .lines()
            .filter(|l| l.contains(&format!("berth:ctr:{id}")))
        {
            out.push(format!("nft {l}"));
        }
        for n in net_ids {
            let veth = berth::network::names::host_veth(id, n);
            if links.contains(&format!(" {veth}@")) || links.contains(&format!(" {veth}:")) {
                out.push(format!("veth {veth}"));
            }
        }
    }
    out
}

/// The body of `GET /` on 127.0.0.1:PORT sent from local port `from` (0:
/// any), and the local port used. Reusing a source port makes the kernel
/// look up the connection tracking entry of the earlier connection.
fn http_get_from(port: u16, from: u16) -> (String, u16) {
    use nix::sys::socket::{
        bind, connect, getsockname, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType,
        SockaddrIn,
    };
    use std::io::{Read, Write};
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    setsockopt(&fd, sockopt::ReuseAddr, &true).unwrap();
    bind(fd.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, from)).unwrap();
    let local: SockaddrIn = getsockname(fd.as_raw_fd()).unwrap();
    // A bounded wait for the connection: a stale entry makes it hang.
    let timeout = nix::sys::time::TimeVal::new(10, 0);
    setsockopt(&fd, sockopt::SendTimeout, &timeout).unwrap();
    connect(fd.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, port)).unwrap_or_else(|e| {
        let table = std::process::Command::new("conntrack")
            .args(["-L"])
            .output()
            .unwrap();
        panic!(
            "connecting from 127.0.0.1:{} (asked {from}) to port {port}: {e}\nconntrack:\n{}",
            local.port(),
            String::from_utf8_lossy(&table.stdout)
                .lines()
                .filter(|l| l.contains(&format!("={port} "))
                    || l.contains(&format!("={} ", local.port())))
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    let mut s = std::net::TcpStream::from(fd);
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut r = String::new();
    s.read_to_string(&mut r).unwrap();
    let body = r
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or(r);
    (body, local.port())
}

fn network_ids(root: &Path) -> Vec<String> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(root.join("networks")) {
        for e in rd.flatten() {
            if let Ok(b) = std::fs::read(e.path()) {
                if let Ok(j) = serde_json::from_slice::<serde_json::Value>(&b) {
                    if let Some(id) = j["id"].as_str() {
                        v.push(id.to_string());
                    }
                }
            }
        }
    }
    v
}

#[test]
fn three_services_up_plan_recreate_noop_down() {
    let name = unique("three");
    let p = three(with_busybox(), &name);
    p.ok(&["up", "-d", "--wait"]);
    let cs = p.containers();
    assert_eq!(cs.len(), 3, "{cs:?}");
    assert!(cs.iter().all(|c| c.2 == "running"), "{cs:?}");
    let (ps, _) = p.ok(&["compose", "ps"]);
    assert!(ps.contains("(healthy)"), "db reports healthy: {ps}");
    // web answers on its published port on the host's loopback.
    let port: u16 = p.env[0].1.parse().unwrap();
    let (page, first_port) = http_get_from(port, 0);
    assert_eq!(page.trim(), "hello from berth");
    let (published, _) = p.ok(&["compose", "port", "web", "80"]);
    assert!(
        published.trim().ends_with(&format!(":{port}")),
        "{published}"
    );
    // api reaches db by its service name on the project network.
    p.ok(&["compose", "exec", "api", "ping", "-c", "1", "-W", "2", "db"]);
    let (logs, _) = p.ok(&["compose", "logs", "api"]);
    assert!(logs.contains("api-1 | api is up"), "{logs}");

    let before: Vec<String> = ["db", "api", "web"]
        .iter()
        .map(|s| p.id_of(&format!("{name}-{s}-1")))
        .collect();

    // Only web's environment changes.
    let mut p = p;
    p.env.push(("GREETING".into(), "bonjour".into()));
    let (plan, _) = p.ok(&["plan"]);
    assert!(
        plan.contains("~ web-1 recreate: environment.GREETING \"hello\" -> \"bonjour\""),
        "{plan}"
    );
    assert!(plan.contains("= db-1 unchanged"), "{plan}");
    assert!(plan.contains("= api-1 unchanged"), "{plan}");
    p.ok(&["up", "-d", "--wait"]);
    let after: Vec<String> = ["db", "api", "web"]
        .iter()
        .map(|s| p.id_of(&format!("{name}-{s}-1")))
        .collect();
    assert_eq!(before[0], after[0], "db untouched");
    assert_eq!(before[1], after[1], "api untouched");
    assert_ne!(before[2], after[2], "web recreated");
    // Through the published port again, from the very source port of the
    // first request: the removed container's connection tracking entries
    // are gone, so the connection reaches the new container.
    let (page, _) = http_get_from(port, first_port);
    assert_eq!(page.trim(), "bonjour from berth");

    // Again: nothing changes, and it says so.
    let (_, err) = p.ok(&["up", "-d"]);
    assert!(err.contains("nothing changed"), "{err}");
    let again: Vec<String> = ["db", "api", "web"]
        .iter()
        .map(|s| p.id_of(&format!("{name}-{s}-1")))
        .collect();
    assert_eq!(after, again);

    // Down leaves nothing of the project in the kernel or the store.
    let nets = network_ids(p.root.path());
    assert!(!nets.is_empty(), "the project network exists while up");
    p.ok(&["down", "-t", "1"]);
    assert!(p.containers().is_empty());
    assert!(network_ids(p.root.path()).is_empty());
    let traces = kernel_traces(p.root.path(), &again, &nets);
    assert!(traces.is_empty(), "left behind: {traces:#?}");
}

#[test]
fn sigkill_half_way_then_up_converges() {
    let name = unique("kill");
    let p = three(with_busybox(), &name);
    let mut child = p.cmd(&["up", "-d"]).spawn().unwrap();
    // Kill it once db exists (it then waits for db to be healthy).
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let ids = std::fs::read_dir(p.root.path().join("containers"))
            .map(|rd| rd.count())
            .unwrap_or(0);
        if ids >= 1 || Instant::now() > end {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let half = p.containers().len();
    assert!(half < 3, "killed half-way: {half} containers");
    p.ok(&["up", "-d", "--wait"]);
    let cs = p.containers();
    assert_eq!(cs.len(), 3, "{cs:?}");
    assert!(cs.iter().all(|c| c.2 == "running"), "{cs:?}");
    let (_, err) = p.ok(&["up", "-d"]);
    assert!(err.contains("nothing changed"), "{err}");
}

#[test]
fn same_directory_name_different_projects() {
    let manifest = "[services.s]\nimage = \"busybox\"\ncommand = [\"sleep\", \"1000\"]\nstop_signal = \"KILL\"\n";
    let root = with_busybox();
    let root_path = root.path().to_path_buf();
    let mut a = Project::new(root, "app", manifest);
    let one = unique("one");
    a.name = Some(one.clone());
    a.ok(&["up", "-d", "--wait"]);
    // A second root handle on the same state root, another `app` directory.
    let b_root = TestRoot {
        dir: tempfile::Builder::new()
            .prefix("unused-")
            .tempdir()
            .unwrap(),
    };
    let mut b = Project::new(b_root, "app", manifest);
    let two = unique("two");
    b.name = Some(two.clone());
    b.env
        .push(("BERTH_ROOT".into(), root_path.to_string_lossy().into()));
    b.ok(&["up", "-d", "--wait"]);
    assert_eq!(a.containers().len(), 1);
    assert_eq!(b.containers().len(), 1);
    assert_eq!(a.containers()[0].0, format!("{one}-s-1"));
    assert_eq!(b.containers()[0].0, format!("{two}-s-1"));
    b.ok(&["down", "-t", "0"]);
    assert!(b.containers().is_empty());
    let cs = a.containers();
    assert_eq!(cs.len(), 1);
    assert_eq!(
        cs[0].2, "running",
        "project {one} untouched by down of {two}"
    );
}

#[test]
fn services_with_build_are_built_by_up_and_rebuilt_with_build() {
    let manifest = "[services.app]\nbuild = \".\"\nstop_signal = \"KILL\"\n";
    let mut p = Project::new(with_busybox(), "b", manifest);
    let name = unique("bld");
    p.name = Some(name.clone());
    std::fs::write(
        p.dir.join("Dockerfile"),
        "FROM busybox\nCOPY greeting /greeting\nCMD [\"sh\", \"-c\", \"cat /greeting; exec sleep 1000\"]\n",
    )
    .unwrap();
    std::fs::write(p.dir.join("greeting"), "hello v1\n").unwrap();

    // Missing image: up builds it, named PROJECT-SERVICE as Compose does.
    let (_, err) = p.ok(&["up", "-d", "--wait"]);
    assert!(err.contains("Building app"), "{err}");
    assert!(err.contains("Step 1/3 : FROM busybox"), "{err}");
    assert!(
        err.contains(&format!("Successfully tagged {name}-app:latest")),
        "{err}"
    );
    let (logs, _) = p.ok(&["compose", "logs", "--no-log-prefix", "app"]);
    assert_eq!(logs, "hello v1\n");
    // Present image: no build.
    let (_, err) = p.ok(&["up", "-d"]);
    assert!(!err.contains("Building app"), "{err}");
    assert!(err.contains("nothing changed"), "{err}");

    // A changed file and --build: rebuilt from the COPY on, and the new
    // image digest recreates the container.
    std::fs::write(p.dir.join("greeting"), "hello v2\n").unwrap();
    let (_, err) = p.ok(&["up", "-d", "--wait", "--build"]);
    let step2 = err.split("Step 2/3").nth(1).unwrap_or_default();
    assert!(
        !step2.starts_with(" : COPY greeting /greeting\n ---> Using cache"),
        "{err}"
    );
    assert!(err.contains("Recreate"), "{err}");
    common::eventually("the rebuilt service logs v2", || {
        let (logs, _) = p.ok(&["compose", "logs", "--no-log-prefix", "app"]);
        logs == "hello v2\n"
    });
    // Nothing changed since: `compose build` is all cache.
    let (_, err) = p.ok(&["compose", "build"]);
    assert_eq!(err.matches("Using cache").count(), 2, "{err}");

    // down --rmi local removes the built image.
    p.ok(&["down", "-t", "0", "--rmi", "local"]);
    let images = p.root.ok(&["images"]);
    assert!(!images.contains(&format!("{name}-app")), "{images}");
    assert!(images.contains("busybox"), "{images}");
}

#[test]
fn top_level_verbs_take_service_names_inside_a_project() {
    let name = unique("names");
    let manifest = format!(
        "name = \"{name}\"\n\n[services.app]\nimage = \"busybox\"\ncommand = [\"sh\", \"-c\", \"echo hello-from-app; exec sleep 1000\"]\nstop_signal = \"KILL\"\nreplicas = 2\n\n[services.one]\nimage = \"busybox\"\ncommand = [\"sh\", \"-c\", \"echo one-says-hi; exec sleep 1000\"]\nstop_signal = \"KILL\"\n\n[services.later]\nimage = \"busybox\"\nprofiles = [\"extra\"]\n"
    );
    let p = Project::new(with_busybox(), "names", &manifest);
    p.ok(&["up", "-d", "--wait"]);

    // One container: Docker's plain output.
    let (logs, _) = p.ok(&["logs", "one"]);
    assert_eq!(logs.trim(), "one-says-hi");
    // Two replicas: merged, with Compose's prefixes.
    let (logs, _) = p.ok(&["logs", "app"]);
    assert!(logs.contains("app-1 | hello-from-app"), "{logs}");
    assert!(logs.contains("app-2 | hello-from-app"), "{logs}");
    // A one-container verb means replica 1.
    let (by_service, _) = p.ok(&["exec", "app", "hostname"]);
    let (by_name, _) = p.ok(&["exec", &format!("{name}-app-1"), "hostname"]);
    assert_eq!(by_service, by_name);
    p.ok(&["port", "one"]);
    p.ok(&["top", "one"]);

    // Many-container verbs take every replica.
    p.ok(&["stop", "-t", "0", "app"]);
    let states: Vec<(String, String)> = p.containers().into_iter().map(|c| (c.0, c.2)).collect();
    for r in 1..=2 {
        let n = format!("{name}-app-{r}");
        let st = &states.iter().find(|s| s.0 == n).unwrap().1;
        assert_ne!(st, "running", "{n} stopped: {states:?}");
    }
    p.ok(&["start", "app"]);
    assert_eq!(
        p.containers().iter().filter(|c| c.2 == "running").count(),
        3
    );

    // A container's own name wins over a service's, as in Docker.
    p.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "one",
        "busybox",
        "sh",
        "-c",
        "echo plain-one; exec sleep 1000",
    ]);
    common::eventually("the plain container named one logs", || {
        let (logs, _) = p.ok(&["logs", "one"]);
        logs.trim() == "plain-one"
    });

    // A declared service without containers says how to get them; a name
    // that is neither is Docker's error.
    let out = p.run(&["logs", "later"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("service later of project"), "{err}");
    assert!(err.contains("has no containers"), "{err}");
    let out = p.run(&["logs", "nosuch"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("No such container: nosuch"), "{err}");

    // Outside the project directory the names mean nothing.
    let out = p
        .root
        .cmd()
        .current_dir("/")
        .args(["logs", "app"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn compose_logs_follow_is_dash_f() {
    let mut p = Project::new(
        with_busybox(),
        "cf",
        "[services.a]\nimage = \"busybox\"\ncommand = [\"sh\", \"-c\", \"echo first; sleep 1; echo second\"]\n",
    );
    p.name = Some(unique("cf"));
    p.ok(&["up", "-d"]);
    // Follows until the container exits, so it sees the line printed later.
    let (logs, _) = p.ok(&["compose", "logs", "-f", "--no-log-prefix"]);
    assert_eq!(logs, "first\nsecond\n");
}

#[test]
fn unknown_service_is_an_error() {
    let p = three(with_busybox(), &unique("unk"));
    let out = p.run(&["compose", "stop", "nosuch"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such service: nosuch"));
}

#[test]
fn foreground_up_follows_logs_and_ctrl_c_stops_the_project() {
    let manifest = "[services.a]\nimage = \"busybox\"\ncommand = [\"sh\", \"-c\", \"echo from-a; exec sleep 1000\"]\nstop_signal = \"KILL\"\n\n[services.b]\nimage = \"busybox\"\ncommand = [\"sh\", \"-c\", \"echo from-b; exec sleep 1000\"]\nstop_signal = \"KILL\"\ndepends_on = [\"a\"]\n";
    let mut p = Project::new(with_busybox(), "fg", manifest);
    p.name = Some(unique("fg"));
    let child = p
        .cmd(&["up"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(60);
    while p.containers().iter().filter(|c| c.2 == "running").count() < 2 {
        assert!(Instant::now() < end, "project did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("a-1 | from-a"), "{stdout}");
    assert!(stdout.contains("b-1 | from-b"), "{stdout}");
    let cs = p.containers();
    assert_eq!(cs.len(), 2);
    assert!(cs.iter().all(|c| c.2 != "running"), "{cs:?}");
}

#[test]
fn up_wait_names_the_service_that_is_not_running() {
    let manifest = "[services.ok]\nimage = \"busybox\"\ncommand = [\"sleep\", \"1000\"]\nstop_signal = \"KILL\"\n\n[services.broken]\nimage = \"busybox\"\ncommand = [\"sh\", \"-c\", \"exit 3\"]\n";
    let mut p = Project::new(with_busybox(), "w", manifest);
    p.name = Some(unique("wait"));
    let out = p.run(&["up", "-d", "--wait"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error: service broken is not running (exited 3)"),
        "{err}"
    );
}

#[test]
fn plan_never_pulls_and_shows_creates() {
    let p = Project::new(
        with_busybox(),
        "pl",
        "[services.x]\nimage = \"localhost:1/absent\"\n",
    );
    let (plan, _) = p.ok(&["plan"]);
    assert!(plan.contains("+ x-1 create"), "{plan}");
    let out = p.run(&["up", "-d", "--pull", "never"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--pull never"));
}

#[test]
fn anonymous_volumes_are_carried_over_on_recreate_and_go_with_down_v() {
    let root = with_busybox();
    // An image declaring VOLUME /seed with content in it.
    common::make_seeded_image(&root);
    let manifest = "[services.s]\nimage = \"seeded\"\ncommand = [\"sh\", \"-c\", \"date +%s%N >> /cache/runs; echo run >> /seed/runs; exec sleep 1000\"]\nstop_signal = \"KILL\"\nvolumes = [\"/cache\"]\n";
    let mut p = Project::new(root, "anon", manifest);
    let name = unique("anon");
    p.name = Some(name.clone());
    p.ok(&["up", "-d", "--wait"]);
    let (seed, _) = p.ok(&["compose", "exec", "s", "cat", "/seed/file"]);
    assert_eq!(
        seed, "from the image\n",
        "the image's VOLUME is filled from the image"
    );
    let before = p.id_of(&format!("{name}-s-1"));
    p.ok(&["up", "-d", "--wait", "--force-recreate"]);
    assert_ne!(before, p.id_of(&format!("{name}-s-1")), "recreated");
    // Both anonymous volumes kept the first container's writes.
    let (runs, _) = p.ok(&["compose", "exec", "s", "cat", "/cache/runs"]);
    assert_eq!(runs.lines().count(), 2, "{runs}");
    let (runs, _) = p.ok(&["compose", "exec", "s", "cat", "/seed/runs"]);
    assert_eq!(runs, "run\nrun\n");
    let vols = |p: &Project| -> Vec<String> {
        let out = p.root.run(&["volume", "ls", "-q"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    };
    let anon = vols(&p);
    assert_eq!(anon.len(), 2, "{anon:?}");
    assert!(
        anon.iter().all(|v| v.starts_with(&format!("{name}-s-1_"))),
        "{anon:?}"
    );
    p.ok(&["down", "-t", "0"]);
    assert_eq!(vols(&p).len(), 2, "down keeps volumes");
    p.ok(&["down", "-t", "0", "-v"]);
    assert!(vols(&p).is_empty(), "down -v removes them: {:?}", vols(&p));
}

#[test]
fn named_volume_outlives_containers_until_down_v() {
    let manifest = "[services.s]\nimage = \"busybox\"\ncommand = [\"sh\", \"-c\", \"echo $$RANDOM >> /data/runs; exec sleep 1000\"]\nstop_signal = \"KILL\"\nvolumes = [\"data:/data\"]\n\n[volumes.data]\n";
    let mut p = Project::new(with_busybox(), "vol", manifest);
    let name = unique("vol");
    p.name = Some(name.clone());
    p.ok(&["up", "-d", "--wait"]);
    p.ok(&["up", "-d", "--wait", "--force-recreate"]);
    let (runs, _) = p.ok(&["compose", "exec", "s", "cat", "/data/runs"]);
    assert_eq!(
        runs.lines().count(),
        2,
        "the volume kept the first run's line"
    );
    let data = p.root.path().join("volumes").join(format!("{name}_data"));
    p.ok(&["down", "-t", "0"]);
    assert!(data.is_dir(), "down keeps volumes");
    p.ok(&["down", "-t", "0", "-v"]);
    assert!(!data.exists(), "down -v removes them");
}
