//! berth beside Docker: with iptables' FORWARD policy at DROP (what Docker
//! sets when it starts), containers on a berth network still reach each
//! other and the world outside the host, because berth keeps its own accept
//! rules at the top of that chain — also when the policy changed after the
//! network was made — and removes them with the network.
//!
//! Everything runs in a private network namespace (berth through `nsenter
//! --net`), with a second namespace as "the world outside" joined by a veth
//! pair, so the policy change touches nothing else on the machine. Needs
//! root, iproute2 and iptables.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

use common::*;

/// Two network namespaces, `host` (where berth runs) and `world` (a peer at
/// 198.51.100.2 behind a veth); deleted on drop with all they hold.
struct Namespaces {
    host: String,
    world: String,
}

impl Namespaces {
    fn new() -> Self {
        let tag = std::process::id() % 100000;
        let ns = Self {
            host: format!("berth-fwh-{tag}"),
            world: format!("berth-fww-{tag}"),
        };
        for n in [&ns.host, &ns.world] {
            sh(&["ip", "netns", "add", n]);
            sh(&["ip", "-n", n, "link", "set", "lo", "up"]);
        }
        let (a, b) = (format!("bfa{tag}"), format!("bfb{tag}"));
        sh(&[
            "ip", "-n", &ns.host, "link", "add", &a, "type", "veth", "peer", "name", &b, "netns",
            &ns.world,
        ]);
        sh(&[
            "ip",
            "-n",
            &ns.host,
            "addr",
            "add",
            "198.51.100.1/24",
            "dev",
            &a,
        ]);
        sh(&["ip", "-n", &ns.host, "link", "set", &a, "up"]);
        sh(&[
            "ip",
            "-n",
            &ns.world,
            "addr",
            "add",
            "198.51.100.2/24",
            "dev",
            &b,
        ]);
        sh(&["ip", "-n", &ns.world, "link", "set", &b, "up"]);
        ns
    }

    fn in_host(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.host))
            .arg(program);
        c
    }

    fn iptables(&self, args: &[&str]) -> String {
        let out = self
            .in_host("iptables")
            .arg("-w")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "iptables {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in [&self.host, &self.world] {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
    }
}

fn sh(argv: &[&str]) {
    let out = Command::new(argv[0]).args(&argv[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{argv:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// berth in the `host` namespace, with its own state root; removes its
/// containers and networks on drop (before the namespaces go).
struct Berth<'a> {
    ns: &'a Namespaces,
    root: TestRoot,
    rootfs: PathBuf,
}

impl Berth<'_> {
    fn run(&self, args: &[&str]) -> Output {
        let mut c = self.ns.in_host(berth_bin().to_str().unwrap());
        c.env("BERTH_ROOT", self.root.path())
            .env_remove("BERTH_LOG");
        for a in args {
            if *a == "@bb" {
                c.arg("--rootfs").arg(&self.rootfs);
            } else {
                c.arg(a);
            }
        }
        c.output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        common::succeeded(args, &self.run(args))
    }
}

impl Drop for Berth<'_> {
    fn drop(&mut self) {
        let out = self.run(&["ps", "-aq", "--no-trunc"]);
        for id in String::from_utf8_lossy(&out.stdout).lines() {
            let _ = self.run(&["rm", "-f", id]);
        }
        let _ = self.run(&["network", "rm", "fwnet"]);
    }
}

fn berth_rules(ns: &Namespaces) -> Vec<String> {
    ns.iptables(&["-S", "FORWARD"])
        .lines()
        .filter(|l| l.contains(":net:"))
        .map(str::to_string)
        .collect()
}

#[test]
fn dropping_forward_policy_does_not_cut_containers_off() {
    assert!(nix::unistd::geteuid().is_root(), "needs root");
    let ns = Namespaces::new();
    let b = Berth {
        ns: &ns,
        root: TestRoot::new(),
        rootfs: busybox_rootfs(),
    };
    // br_netfilter, when loaded (Docker loads it), sends even bridged
    // traffic through iptables: turn it on here as Docker would.
    let _ = ns
        .in_host("sh")
        .args([
            "-c",
            "echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables",
        ])
        .output();

    // Made while forwarding is accepted: berth adds nothing.
    ns.iptables(&["-P", "FORWARD", "ACCEPT"]);
    b.ok(&["network", "create", "fwnet"]);
    assert!(berth_rules(&ns).is_empty(), "{:?}", berth_rules(&ns));
    b.ok(&[
        "run",
        "-d",
        "--network",
        "fwnet",
        "--name",
        "srv",
        "@bb",
        "sleep",
        "1000",
    ]);

    // Docker starts: FORWARD drops. The running container is cut off...
    ns.iptables(&["-P", "FORWARD", "DROP"]);
    let cut = b.run(&["exec", "srv", "ping", "-c", "1", "-W", "1", "198.51.100.2"]);
    assert!(
        !cut.status.success(),
        "the DROP policy must bite in this namespace, or the test proves nothing"
    );
    // ...until berth next wires a container: it puts its rules in.
    for target in ["198.51.100.2", "srv"] {
        b.ok(&[
            "run",
            "--rm",
            "--network",
            "fwnet",
            "@bb",
            "ping",
            "-c",
            "1",
            "-W",
            "2",
            target,
        ]);
    }
    b.ok(&["exec", "srv", "ping", "-c", "1", "-W", "2", "198.51.100.2"]);
    let rules = berth_rules(&ns);
    assert_eq!(rules.len(), 2, "{rules:?}");

    // A network made while the policy drops gets its rules at once.
    b.ok(&["network", "create", "fwnet2"]);
    assert_eq!(berth_rules(&ns).len(), 4);
    b.ok(&["network", "rm", "fwnet2"]);
    assert_eq!(berth_rules(&ns).len(), 2);

    // The rules go with the network.
    b.ok(&["rm", "-f", "srv"]);
    b.ok(&["network", "rm", "fwnet"]);
    let left: Vec<String> = berth_rules(&ns)
        .into_iter()
        .filter(|r| !r.contains(" -i berth") && !r.contains(" -o berth"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
