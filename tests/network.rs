//! Networks against the real kernel: bridges, veths into namespaces,
//! NAT/DNAT through berth's nft table, port preflight, hosts files, and the
//! `network` commands. Network namespaces made with `ip netns add` stand in
//! for containers; every kernel object has a unique name and is removed by
//! Drop guards even when a test fails.

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream, UdpSocket};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use berth::network::{self, Join, Networks, Prepare};
use berth::state::StateRoot;
use common::TestRoot;

fn suffix() -> String {
    format!("{:08x}", rand::random::<u32>())
}

/// A network namespace standing in for a container.
struct Netns {
    name: String,
}

impl Netns {
    fn new() -> Self {
        common::require("ip");
        let name = format!("bt-{}", suffix());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap()
            .success();
        assert!(ok, "ip netns add {name} failed");
        Self { name }
    }
    fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.name))
    }
    fn exec(&self, args: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .output()
            .unwrap()
    }
    fn spawn(&self, args: &[&str]) -> Killed {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Killed(child)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A child process killed on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A state root whose networks, links and nft table are removed on drop.
struct Env {
    root: TestRoot,
    nets: Networks,
    containers: Vec<String>,
}

impl Env {
    fn new() -> Self {
        let root = TestRoot::new();
        let nets = Networks::open(&StateRoot::open(root.path()).unwrap()).unwrap();
        Self {
            root,
            nets,
            containers: Vec::new(),
        }
    }
    fn create(&self, name: &str) -> network::NetworkRecord {
        self.nets
            .create(&network::CreateOptions {
                name: name.into(),
                ..Default::default()
            })
            .unwrap()
    }
    /// Prepares and plugs a "container" into `ns`.
    fn start(
        &mut self,
        name: &str,
        ns: &Netns,
        joins: Vec<Join>,
        ports: &[&str],
    ) -> network::Prepared {
        let id = berth::network::names::random_id();
        self.containers.push(id.clone());
        let bindings = self.nets.preflight(ports).unwrap();
        let p = self
            .nets
            .prepare(&Prepare {
                container_id: id.clone(),
                name: name.into(),
                hostname: Some(id[..12].to_string()),
                joins,
                ports: bindings,
            })
            .unwrap();
        self.nets.plug(&id, &ns.path()).unwrap();
        p
    }
    fn id_of(&self, name: &str) -> String {
        self.nets
            .list()
            .unwrap()
            .iter()
            .flat_map(|n| n.endpoints.values())
            .find(|e| e.name == name)
            .unwrap()
            .container_id
            .clone()
    }
    /// Names of this root's kernel objects: links and nft rules.
    fn kernel_objects(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut ours: HashSet<String> = HashSet::new();
        for n in self.nets.list().unwrap() {
            ours.insert(n.bridge.clone());
            for c in &self.containers {
                ours.insert(berth::network::names::host_veth(c, &n.id));
            }
        }
        ours.insert(berth::network::names::default_bridge(self.root.path()));
        for l in berth::network::link::link_names().unwrap() {
            if ours.contains(&l) {
                out.push(format!("link {l}"));
            }
        }
        if self.nets.nat().exists().unwrap() {
            out.push(format!("table {}", self.nets.nat().table));
        }
        for r in self.nets.nat().rules().unwrap() {
            out.push(format!("rule {} {}", r.chain, r.handle));
        }
        out
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = self.nets.release(c);
        }
        if let Err(e) = self.nets.remove_all() {
            eprintln!("cleanup: {e}");
        }
        let _ = self.nets.nat().delete_table();
    }
}

fn ping(ns: &Netns, ip: Ipv4Addr) -> bool {
    ns.exec(&["busybox", "ping", "-c", "1", "-W", "3", &ip.to_string()])
        .status
        .success()
}

fn http_get(addr: &str) -> String {
    let mut last = String::new();
    for _ in 0..50 {
        match TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(3)) {
            Ok(mut s) => {
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                s.write_all(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")
                    .unwrap();
                let mut body = String::new();
                let _ = s.read_to_string(&mut body);
                if body.contains("200 OK") {
                    return body;
                }
                last = body;
            }
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("GET {addr} failed: {last}");
}

/// The host's first global IPv4 address (not loopback).
fn host_address() -> String {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter(|l| !l.split_whitespace().nth(1).unwrap_or("").starts_with("br-"))
        .filter(|l| {
            !l.split_whitespace()
                .nth(1)
                .unwrap_or("")
                .starts_with("berth")
        })
        .find_map(|l| {
            l.split_whitespace()
                .nth(3)
                .and_then(|a| a.split('/').next())
                .map(str::to_string)
        })
        .expect("the host has no global IPv4 address to test publishing on")
}

fn www_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("index.html"), "hello from berth\n").unwrap();
    d
}

#[test]
fn namespaces_reach_gateway_and_each_other() {
    let mut env = Env::new();
    let net = env.create(&format!("t{}", suffix()));
    let (a, b) = (Netns::new(), Netns::new());
    let j = || {
        vec![Join {
            network: Some(net.name.clone()),
            aliases: vec![],
        }]
    };
    let pa = env.start("a", &a, j(), &[]);
    let pb = env.start("b", &b, j(), &[]);
    let (ipa, ipb) = (pa.endpoints[0].1.ip, pb.endpoints[0].1.ip);
    assert_ne!(ipa, ipb);
    assert!(net.subnet.contains(ipa) && net.subnet.contains(ipb));
    assert!(ping(&a, net.gateway), "a cannot reach the gateway");
    assert!(ping(&a, ipb), "a cannot reach b");
    assert!(ping(&b, ipa), "b cannot reach a");
    // eth0 inside, with the address and a default route via the gateway.
    let out = String::from_utf8_lossy(&a.exec(&["ip", "-4", "route"]).stdout).to_string();
    assert!(
        out.contains(&format!("default via {}", net.gateway)),
        "{out}"
    );
    let out = String::from_utf8_lossy(&a.exec(&["ip", "-4", "-o", "addr", "show", "eth0"]).stdout)
        .to_string();
    assert!(out.contains(&ipa.to_string()), "{out}");
}

#[test]
fn published_port_reachable_on_loopback_and_host_address() {
    common::require("busybox");
    let mut env = Env::new();
    let net = env.create(&format!("t{}", suffix()));
    let ns = Netns::new();
    let www = www_dir();
    let p = env.start(
        "web",
        &ns,
        vec![Join {
            network: Some(net.name.clone()),
            aliases: vec![],
        }],
        &["80"],
    );
    let _httpd = ns.spawn(&[
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        www.path().to_str().unwrap(),
    ]);
    let port = p.ports[0].host_port;
    // Straight to the container, through loopback, through the host address.
    http_get(&format!("{}:80", p.endpoints[0].1.ip));
    assert!(http_get(&format!("127.0.0.1:{port}")).contains("hello from berth"));
    assert!(http_get(&format!("{}:{port}", host_address())).contains("hello from berth"));
    // Hairpin: the container reaches its own published port through the
    // host's address (DNAT back onto the bridge plus masquerade).
    let url = format!("http://{}:{port}/index.html", host_address());
    let out = ns.exec(&["busybox", "wget", "-q", "-O", "-", &url]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("hello from berth"),
        "hairpin fetch of {url} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The port is now berth's: preflight names the container.
    let e = env
        .nets
        .preflight(&[format!("{port}:80")])
        .unwrap_err()
        .to_string();
    assert_eq!(e, format!("0.0.0.0:{port} is in use by container web"));
    // After release the rules are gone and nothing answers.
    let id = env.id_of("web");
    env.nets.release(&id).unwrap();
    assert!(env
        .nets
        .nat()
        .rules()
        .unwrap()
        .iter()
        .all(|r| r.owner.as_deref() != Some(&*format!("berth:ctr:{id}"))));
    assert!(env.nets.published(None).unwrap().is_empty());
}

#[test]
fn udp_round_trip_through_published_port() {
    let mut env = Env::new();
    let net = env.create(&format!("t{}", suffix()));
    let ns = Netns::new();
    let p = env.start(
        "udp",
        &ns,
        vec![Join {
            network: Some(net.name.clone()),
            aliases: vec![],
        }],
        &["127.0.0.1::5353/udp"],
    );
    // A UDP echo server inside the namespace (a thread that setns-ed there).
    let nspath = ns.path();
    let (tx, rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        let f = std::fs::File::open(nspath).unwrap();
        nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let s = UdpSocket::bind("0.0.0.0:5353").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        tx.send(()).unwrap();
        let mut buf = [0u8; 64];
        if let Ok((n, from)) = s.recv_from(&mut buf) {
            s.send_to(&buf[..n], from).unwrap();
        }
    });
    rx.recv().unwrap();
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.send_to(b"ping-berth", ("127.0.0.1", p.ports[0].host_port))
        .unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = c
        .recv_from(&mut buf)
        .expect("no UDP reply through the published port");
    assert_eq!(&buf[..n], b"ping-berth");
    server.join().unwrap();
}

#[test]
fn taken_port_names_its_holder_and_bad_specs_create_nothing() {
    let env = Env::new();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let e = env
        .nets
        .preflight(&[format!("127.0.0.1:{port}:80")])
        .unwrap_err()
        .to_string();
    let want = format!("127.0.0.1:{port} is in use by pid {} (", std::process::id());
    assert!(e.starts_with(&want), "{e}");
    for (spec, msg) in [
        ("8080:80:90", "\"8080\" is not an IP address"),
        ("abc", "\"abc\" is not a number"),
        ("70000:80", "70000 is out of range"),
        ("80-85:90-92", "must be equally long"),
    ] {
        let e = env.nets.preflight(&[spec]).unwrap_err().to_string();
        assert!(e.contains(msg), "{spec}: {e}");
    }
    assert!(env.nets.list().unwrap().is_empty());
    assert!(
        env.kernel_objects().is_empty(),
        "{:?}",
        env.kernel_objects()
    );
}

#[test]
fn hosts_files_follow_peers_and_recreation() {
    let mut env = Env::new();
    let net = env.create(&format!("t{}", suffix()));
    let (a, b, b2) = (Netns::new(), Netns::new(), Netns::new());
    let join = |alias: &str| {
        vec![Join {
            network: Some(net.name.clone()),
            aliases: vec![alias.to_string()],
        }]
    };
    let pa = env.start("web", &a, join("frontend"), &[]);
    let ino = std::fs::metadata(&pa.hosts).unwrap().ino();
    let pb = env.start("db", &b, join("database"), &[]);
    let text = std::fs::read_to_string(&pa.hosts).unwrap();
    assert!(
        text.contains(&format!("{}\tdb database\n", pb.endpoints[0].1.ip)),
        "{text}"
    );
    let own = std::fs::read_to_string(&pb.hosts).unwrap();
    assert!(own.contains("\tweb frontend\n"), "{own}");
    // The peer can be reached by the address its name maps to.
    assert!(ping(&a, pb.endpoints[0].1.ip));
    // Recreate db with a new address: web's file follows, same inode.
    let db = env.id_of("db");
    env.nets.release(&db).unwrap();
    drop(b);
    let _hold = env.start("hold", &b2, join("h"), &[]); // takes db's freed address
    let b3 = Netns::new();
    let pb2 = env.start("db", &b3, join("database"), &[]);
    assert_ne!(pb2.endpoints[0].1.ip, pb.endpoints[0].1.ip);
    let text = std::fs::read_to_string(&pa.hosts).unwrap();
    assert!(
        text.contains(&format!("{}\tdb database\n", pb2.endpoints[0].1.ip)),
        "{text}"
    );
    assert!(
        !text.contains(&format!("{}\tdb", pb.endpoints[0].1.ip)),
        "{text}"
    );
    assert_eq!(std::fs::metadata(&pa.hosts).unwrap().ino(), ino);
    assert!(ping(&a, pb2.endpoints[0].1.ip));
    let resolv = std::fs::read_to_string(&pa.resolv_conf).unwrap();
    assert!(resolv.contains("nameserver "), "{resolv}");
    assert!(!resolv.contains("nameserver 127."), "{resolv}");
}

#[test]
fn repair_frees_dead_containers_and_stale_rules() {
    let mut env = Env::new();
    let net = env.create(&format!("t{}", suffix()));
    let (a, b) = (Netns::new(), Netns::new());
    let j = || {
        vec![Join {
            network: Some(net.name.clone()),
            aliases: vec![],
        }]
    };
    env.start("alive", &a, j(), &["127.0.0.1::80"]);
    let pdead = env.start("dead", &b, j(), &["127.0.0.1::80"]);
    let alive = env.id_of("alive");
    let dead = env.id_of("dead");
    // "Crash": berth never released dead; its netns vanished.
    drop(b);
    let live: HashSet<String> = [alive.clone()].into_iter().collect();
    let report = env.nets.repair(|| live.clone()).unwrap();
    assert_eq!(report.freed_endpoints, vec![format!("{}:dead", net.name)]);
    assert_eq!(report.removed_ports, 1);
    assert_eq!(
        report.removed_rule_owners,
        vec![format!("berth:ctr:{dead}")]
    );
    let rec = env.nets.get(&net.name).unwrap();
    assert_eq!(rec.endpoints.keys().collect::<Vec<_>>(), vec![&alive]);
    // The freed address is handed out again, never shared.
    let c = Netns::new();
    let pc = env.start("new", &c, j(), &[]);
    assert_eq!(pc.endpoints[0].1.ip, pdead.endpoints[0].1.ip);
    let rec = env.nets.get(&net.name).unwrap();
    let ips: HashSet<Ipv4Addr> = rec.endpoints.values().map(|e| e.ip).collect();
    assert_eq!(ips.len(), rec.endpoints.len());
    // Rules flushed behind berth's back come back with the next repair.
    let table = env.nets.nat().table.clone();
    let ok = Command::new("nft")
        .args(["flush", "table", "ip", &table])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let live: HashSet<String> = rec.endpoints.keys().cloned().collect();
    let report = env.nets.repair(|| live.clone()).unwrap();
    assert_eq!(report.restored_rules, vec![net.name.clone(), alive.clone()]);
    assert!(env
        .nets
        .nat()
        .rules()
        .unwrap()
        .iter()
        .any(|r| r.owner.as_deref() == Some(&*format!("berth:ctr:{alive}"))));
    assert!(env
        .nets
        .nat()
        .rules()
        .unwrap()
        .iter()
        .any(|r| r.chain == "masq"));
    // A second repair has nothing to do.
    let live: HashSet<String> = rec.endpoints.keys().cloned().collect();
    assert_eq!(
        env.nets.repair(|| live.clone()).unwrap(),
        Default::default()
    );
}

#[test]
fn nothing_is_left_behind() {
    let before_links = berth::network::link::link_names().unwrap().len();
    let mut env = Env::new();
    assert!(env.kernel_objects().is_empty());
    let net = env.create(&format!("t{}", suffix()));
    let ns = Netns::new();
    env.start(
        "x",
        &ns,
        vec![Join {
            network: Some(net.name.clone()),
            aliases: vec![],
        }],
        &["127.0.0.1::80", "127.0.0.1::53/udp"],
    );
    let during = env.kernel_objects();
    assert!(
        during.iter().any(|o| o.starts_with("link bv")),
        "{during:?}"
    );
    assert!(
        during.iter().any(|o| o == &format!("link {}", net.bridge)),
        "{during:?}"
    );
    assert!(
        during.iter().filter(|o| o.starts_with("rule ")).count() >= 2,
        "{during:?}"
    );
    let gw = format!("{}/{}", net.gateway, net.subnet.prefix());
    let addrs = berth::network::link::addresses(&net.bridge).unwrap();
    assert!(
        addrs.iter().any(|(ip, p)| format!("{ip}/{p}") == gw),
        "{addrs:?}"
    );
    let id = env.id_of("x");
    env.nets.release(&id).unwrap();
    env.nets.remove(&net.name).unwrap();
    drop(ns);
    assert!(
        env.kernel_objects().is_empty(),
        "left behind: {:?}",
        env.kernel_objects()
    );
    assert!(!berth::network::link::link_exists(&net.bridge).unwrap());
    // Other engineers' tests create links in parallel; ours are all gone,
    // so the count can only have moved by theirs.
    let _ = before_links;
    let routes = std::fs::read_to_string("/proc/net/route").unwrap();
    assert!(
        !routes.contains(&net.bridge),
        "route of {} left behind",
        net.bridge
    );
}

#[test]
fn cli_network_commands() {
    let env = Env::new();
    let root = &env.root;
    let name = format!("t{}", suffix());
    let id = root.ok(&["network", "create", &name]).trim().to_string();
    assert_eq!(id.len(), 64, "{id}");
    let e = root.fails(&["network", "create", &name]);
    assert!(
        e.contains(&format!("network with name {name} already exists")),
        "{e}"
    );
    let e = root.fails(&["network", "create", "--subnet", "10.89.0.0", "x1"]);
    assert!(e.contains("invalid subnet"), "{e}");
    let internal = format!("i{}", suffix());
    root.ok(&["network", "create", "--internal", &internal]);
    let ls = root.ok(&["network", "ls"]);
    assert!(ls.starts_with("NETWORK ID"), "{ls}");
    assert!(
        ls.contains(&id[..12]) && ls.contains(&name) && ls.contains("bridge"),
        "{ls}"
    );
    let q = root.ok(&["network", "ls", "-q"]);
    assert_eq!(q.lines().count(), 2, "{q}");
    let inspect: serde_json::Value =
        serde_json::from_str(&root.ok(&["network", "inspect", &name])).unwrap();
    assert_eq!(inspect[0]["Name"], name.as_str());
    assert_eq!(inspect[0]["Id"], id.as_str());
    assert_eq!(inspect[0]["Driver"], "bridge");
    assert!(inspect[0]["IPAM"]["Config"][0]["Subnet"]
        .as_str()
        .unwrap()
        .ends_with("/24"));
    let inspect: serde_json::Value =
        serde_json::from_str(&root.ok(&["network", "inspect", &internal])).unwrap();
    assert_eq!(inspect[0]["Internal"], true);
    let e = root.fails(&["network", "inspect", "nope"]);
    assert!(e.contains("network nope not found"), "{e}");
    let js: serde_json::Value =
        serde_json::from_str(&root.ok(&["--json", "network", "ls"])).unwrap();
    assert_eq!(js.as_array().unwrap().len(), 2);
    assert_eq!(root.ok(&["network", "rm", &name]).trim(), name);
    let pruned = root.ok(&["network", "prune", "-f"]);
    assert_eq!(pruned, format!("Deleted Networks:\n{internal}\n"));
    assert!(root.ok(&["network", "ls", "-q"]).trim().is_empty());
    assert!(
        env.kernel_objects().is_empty(),
        "{:?}",
        env.kernel_objects()
    );
    let e = root.fails(&["network", "create", "bad name"]);
    assert!(e.contains("invalid network name"), "{e}");
}

/// "The outside world": a namespace reached only through the host over a
/// random /30 of 198.18.0.0/15 that has no route back to container subnets,
/// so a container reaches it only through berth's masquerade. Returns the
/// namespace (its drop deletes the veth pair) and its address.
fn outside_world() -> (Netns, Ipv4Addr) {
    let outside = Netns::new();
    let third = 1 + rand::random::<u8>() % 250;
    let fourth = (rand::random::<u8>() % 63) * 4;
    let (hip, oip) = (
        format!("198.18.{third}.{}", fourth + 1),
        format!("198.18.{third}.{}", fourth + 2),
    );
    let (h, o) = (format!("bo{}", suffix()), format!("bp{}", suffix()));
    let ip = |args: &[&str]| {
        assert!(
            Command::new("ip").args(args).status().unwrap().success(),
            "ip {args:?}"
        )
    };
    ip(&["link", "add", &h, "type", "veth", "peer", "name", &o]);
    ip(&["link", "set", &o, "netns", &outside.name]);
    ip(&["addr", "add", &format!("{hip}/30"), "dev", &h]);
    ip(&["link", "set", &h, "up"]);
    ip(&[
        "-n",
        &outside.name,
        "addr",
        "add",
        &format!("{oip}/30"),
        "dev",
        &o,
    ]);
    ip(&["-n", &outside.name, "link", "set", &o, "up"]);
    (outside, oip.parse().unwrap())
}

#[test]
fn outbound_nat_masquerades_to_a_host_side_peer() {
    // "The outside world" is another namespace reached only through the
    // host over a /30 that knows no route back to the container subnet: the
    // container reaches it only if berth masquerades.
    let mut env = Env::new();
    let net = env.create(&format!("t{}", suffix()));
    let (outside, oip) = outside_world();
    let ns = Netns::new();
    env.start(
        "out",
        &ns,
        vec![Join {
            network: Some(net.name.clone()),
            aliases: vec![],
        }],
        &[],
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
            .unwrap()
            .trim(),
        "1"
    );
    assert!(ping(&ns, oip), "container cannot reach {oip} through NAT");
    // Deleting `outside` deletes the veth pair with it.
    drop(outside);
}

#[test]
fn internal_network_has_no_way_out_and_busy_network_is_kept() {
    let mut env = Env::new();
    let name = format!("i{}", suffix());
    let net = env
        .nets
        .create(&network::CreateOptions {
            name: name.clone(),
            internal: true,
            ..Default::default()
        })
        .unwrap();
    let (a, b) = (Netns::new(), Netns::new());
    let j = || {
        vec![Join {
            network: Some(name.clone()),
            aliases: vec![],
        }]
    };
    let pb = env.start("b", &b, j(), &[]);
    env.start("a", &a, j(), &[]);
    assert!(
        ping(&a, pb.endpoints[0].1.ip),
        "peers on an internal network must reach each other"
    );
    let (_outside, oip) = outside_world();
    assert!(
        !ping(&a, oip),
        "a container on an internal network reached {oip}"
    );
    let e = env.nets.remove(&name).unwrap_err().to_string();
    assert!(
        e.contains("has active endpoints (a, b)") || e.contains("has active endpoints (b, a)"),
        "{e}"
    );
    assert!(berth::network::link::link_exists(&net.bridge).unwrap());
    for bad in ["../../etc", "a/b", "", "-x"] {
        let e = env
            .nets
            .create(&network::CreateOptions {
                name: bad.into(),
                ..Default::default()
            })
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid network name"), "{bad}: {e}");
    }
}
