//! Networking through the container verbs: `run -p/--network/--network-alias`,
//! `port`, `ps`, `network connect/disconnect`, and cleanup on `rm`, with
//! busybox containers (the busybox rootfs fixture, `--rootfs`).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use berth::network::Networks;
use berth::state::StateRoot;
use common::*;

/// A state root whose containers, networks and nft table go on drop.
struct Env {
    root: TestRoot,
    rootfs: PathBuf,
}

impl Env {
    fn new() -> Self {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the network tests need root"
        );
        Self {
            root: TestRoot::new(),
            rootfs: busybox_rootfs(),
        }
    }
    fn args(&self, args: &[&str]) -> Vec<String> {
        args.iter()
            .flat_map(|a| {
                if *a == "@bb" {
                    vec!["--rootfs".to_string(), self.rootfs.display().to_string()]
                } else {
                    vec![a.to_string()]
                }
            })
            .collect()
    }
    fn run(&self, args: &[&str]) -> std::process::Output {
        self.root.cmd().args(self.args(args)).output().unwrap()
    }
    fn ok(&self, args: &[&str]) -> String {
        common::succeeded(args, &self.run(args))
    }
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "berth {args:?} unexpectedly succeeded"
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
    fn nets(&self) -> Networks {
        Networks::open(&StateRoot::open(self.root.path()).unwrap()).unwrap()
    }
    /// berth's kernel objects of this root: nft rules and our links.
    fn kernel_objects(&self) -> Vec<String> {
        let nets = self.nets();
        let mut out: Vec<String> = nets
            .nat()
            .rules()
            .unwrap()
            .iter()
            .map(|r| format!("rule {} {:?}", r.chain, r.owner))
            .collect();
        if nets.nat().exists().unwrap() {
            out.push(format!("table {}", nets.nat().table));
        }
        let mut names = vec![berth::network::names::default_bridge(self.root.path())];
        names.extend(nets.list().unwrap().iter().map(|n| n.bridge.clone()));
        for l in berth::network::link::link_names().unwrap() {
            if names.contains(&l) {
                out.push(format!("link {l}"));
            }
        }
        out
    }
    fn eventually(&self, what: &str, f: impl FnMut() -> bool) {
        common::eventually(what, f)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.root.remove_all_containers();
        let nets = self.nets();
        let _ = nets.remove_all();
        let _ = nets.nat().delete_table();
    }
}

fn get(addr: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(3)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.contains("200 OK").then_some(body)
}

fn suffix() -> String {
    format!("{:08x}", rand::random::<u32>())
}

#[test]
fn run_publish_port_ps_and_rm_cleans_up() {
    let e = Env::new();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        "127.0.0.1::80",
        "-p",
        "127.0.0.1::81/udp",
        "@bb",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/var/www",
    ]);
    let port_out = e.ok(&["port", "web"]);
    let tcp = port_out
        .lines()
        .find(|l| l.starts_with("80/tcp -> 127.0.0.1:"))
        .unwrap_or_else(|| panic!("{port_out}"));
    let hp = tcp.rsplit(':').next().unwrap().to_string();
    assert!(port_out.contains("81/udp -> 127.0.0.1:"), "{port_out}");
    assert_eq!(
        e.ok(&["port", "web", "80"]).trim(),
        format!("127.0.0.1:{hp}")
    );
    let err = e.fails(&["port", "web", "82"]);
    assert!(
        err.contains("no public port '82/tcp' published for web"),
        "{err}"
    );
    let mut body = None;
    e.eventually("httpd answers through the published port", || {
        body = get(&format!("127.0.0.1:{hp}"));
        body.is_some()
    });
    assert!(body.unwrap().contains("hello from berth"));
    let ps = e.ok(&["ps"]);
    assert!(ps.contains(&format!("127.0.0.1:{hp}->80/tcp")), "{ps}");
    let ip = e.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web"]);
    assert!(ip.trim().starts_with("10."), "{ip}");
    // Another container cannot take the port: the holder is named.
    let err = e.fails(&[
        "run",
        "-d",
        "--name",
        "web2",
        "-p",
        &format!("{hp}:80"),
        "@bb",
        "sleep",
        "60",
    ]);
    assert!(
        err.contains(&format!("0.0.0.0:{hp} is in use by container web"))
            || err.contains(&format!("127.0.0.1:{hp} is in use by container web")),
        "{err}"
    );
    assert!(!e.ok(&["ps", "-a"]).contains("web2"));
    e.ok(&["rm", "-f", "web"]);
    assert!(
        e.kernel_objects().is_empty(),
        "left behind: {:?}",
        e.kernel_objects()
    );
    assert!(e.nets().list().unwrap().is_empty());
}

#[test]
fn taken_port_and_bad_specs_fail_before_anything_is_created() {
    let e = Env::new();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let err = e.fails(&[
        "run",
        "-d",
        "--name",
        "x",
        "-p",
        &format!("127.0.0.1:{port}:80"),
        "@bb",
        "sleep",
        "60",
    ]);
    assert!(
        err.contains(&format!(
            "127.0.0.1:{port} is in use by pid {} (",
            std::process::id()
        )),
        "{err}"
    );
    for (spec, msg) in [
        ("8080:80:90", "\"8080\" is not an IP address"),
        ("abc", "\"abc\" is not a number"),
        ("70000:80", "host port 70000 is out of range 1-65535"),
        (
            "80-85:90-92",
            "host range 80-85 has 6 ports but container range 90-92 has 3",
        ),
    ] {
        let err = e.fails(&["run", "-d", "-p", spec, "@bb", "sleep", "60"]);
        assert!(err.contains(msg), "{spec}: {err}");
    }
    assert!(e.ok(&["ps", "-aq"]).trim().is_empty());
    assert!(e.nets().list().unwrap().is_empty());
    assert!(e.kernel_objects().is_empty(), "{:?}", e.kernel_objects());
    let err = e.fails(&["run", "-d", "--network", "nope", "@bb", "sleep", "60"]);
    assert!(err.contains("network nope not found"), "{err}");
    let err = e.fails(&["run", "-d", "--network-alias", "a", "@bb", "sleep", "60"]);
    assert!(err.contains("user-defined networks"), "{err}");
    let err = e.fails(&[
        "run",
        "-d",
        "--network",
        "none",
        "-p",
        "80",
        "@bb",
        "sleep",
        "60",
    ]);
    assert!(
        err.contains("cannot publish ports with --network none"),
        "{err}"
    );
}

#[test]
fn peers_resolve_names_and_aliases_also_after_recreation() {
    let e = Env::new();
    let net = format!("n{}", suffix());
    e.ok(&["network", "create", &net]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        &net,
        "--network-alias",
        "database",
        "@bb",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/var/www",
    ]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "app",
        "--network",
        &net,
        "@bb",
        "sleep",
        "300",
    ]);
    let fetch = |host: &str| {
        let out = e.run(&[
            "exec",
            "app",
            "wget",
            "-q",
            "-O",
            "-",
            &format!("http://{host}/index.html"),
        ]);
        String::from_utf8_lossy(&out.stdout).contains("hello from berth")
    };
    e.eventually("app reaches db by name", || fetch("db"));
    assert!(fetch("database"), "alias does not resolve");
    let old_ip = e.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "db"]);
    // Recreate db after another container took its old address.
    e.ok(&["rm", "-f", "db"]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "filler",
        "--network",
        &net,
        "@bb",
        "sleep",
        "300",
    ]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        &net,
        "--network-alias",
        "database",
        "@bb",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/var/www",
    ]);
    let new_ip = e.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "db"]);
    assert_ne!(old_ip, new_ip);
    e.eventually("app reaches the recreated db by name", || fetch("db"));
    assert!(fetch("database"));
    let hosts = e.ok(&["exec", "app", "cat", "/etc/hosts"]);
    assert!(
        hosts.contains(&format!("{}\tdb database", new_ip.trim())),
        "{hosts}"
    );
    // network connect/disconnect of a running container.
    let other = format!("o{}", suffix());
    e.ok(&["network", "create", &other]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "lone",
        "--network",
        &other,
        "@bb",
        "sleep",
        "300",
    ]);
    e.ok(&["network", "connect", "--alias", "solo", &net, "lone"]);
    let out = e.ok(&["exec", "lone", "ip", "-4", "-o", "addr"]);
    assert!(out.contains("eth1"), "{out}");
    let lone_hosts = e.ok(&["exec", "lone", "cat", "/etc/hosts"]);
    assert!(lone_hosts.contains("\tdb database"), "{lone_hosts}");
    let app_hosts = e.ok(&["exec", "app", "cat", "/etc/hosts"]);
    assert!(app_hosts.contains("\tlone solo"), "{app_hosts}");
    e.ok(&["network", "disconnect", &net, "lone"]);
    let app_hosts = e.ok(&["exec", "app", "cat", "/etc/hosts"]);
    assert!(!app_hosts.contains("lone"), "{app_hosts}");
    let err = e.fails(&["network", "rm", &net]);
    assert!(err.contains("has active endpoints"), "{err}");
}

#[test]
fn apt_get_update_works_in_a_debian_container() {
    // Outbound NAT and resolv.conf: the container reaches the Debian archive
    // the host reaches.
    let e = Env::new();
    let debian = debian_rootfs();
    let out = e.run(&[
        "run",
        "--rm",
        "--rootfs",
        debian.to_str().unwrap(),
        "apt-get",
        "update",
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "apt-get update failed: {text}");
    assert!(text.contains("Reading package lists"), "{text}");
    assert!(!text.contains("Err:") && !text.contains("W: "), "{text}");
    // --rm: the supervisor removes the container (and with it the last
    // user of the default bridge) once it has exited.
    e.eventually(
        "the default network is gone with the --rm container",
        || e.kernel_objects().is_empty(),
    );
}
