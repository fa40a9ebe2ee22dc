//! nftables rules: outbound masquerade, published ports (DNAT), forwarding.
//!
//! berth keeps every rule in its own table (`table ip berth`, or
//! `berth_<tag>` for a non-default state root, see [`super::names`]) and never
//! touches another table. Each change is one `nft -f -` transaction (see
//! `nft(8)`), so the kernel sees either the old or the new rule set. Rules
//! carry a comment naming their owner, `berth:net:<network id>` or
//! `berth:ctr:<container id>`, so one owner's rules are removed exactly (by
//! handle, read back with `nft -j -a list table`), and [`Nat::repair`]
//! removes the rules of owners that no longer exist after a crash.
//!
//! ```text
//! table ip berth
//!   prerouting  nat    dstnat : fib daddr type local jump publish
//!   output      nat    -100   : fib daddr type local jump publish
//!   postrouting nat    srcnat : jump masq
//!   forward     filter filter : jump allow
//!   raw_pre     filter raw    : jump guard
//!   publish : [ip daddr H] tcp|udp dport HP dnat to C:CP        (per container)
//!   masq    : ip saddr SUBNET oifname != BR masquerade          (per network)
//!             oifname BR ip saddr 127.0.0.0/8 masquerade        (loopback → container)
//!             oifname BR ip saddr SUBNET ct status dnat masquerade (hairpin)
//!   allow   : established/related, from the bridge, DNAT-ed to the bridge: accept
//!   guard   : iifname BR ip daddr 127.0.0.0/8 drop             (route_localnet guard)
//! ```
//!
//! Published ports reach the container from 127.0.0.1 through the output
//! chain: the kernel only routes a packet with a 127/8 source out of the
//! bridge when `route_localnet=1` on it, and the masquerade rule rewrites that
//! source to the gateway. The guard rule keeps containers from using
//! route_localnet to reach the host's loopback services.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;

use super::ipam::Ipv4Net;
use super::portspec::Proto;

/// Errors applying or reading nftables rules.
#[derive(Debug, thiserror::Error)]
pub enum NatError {
    #[error("cannot run nft (install the nftables package): {0}")]
    Spawn(std::io::Error),
    #[error("nft rejected berth's rules: {stderr}")]
    Nft { stderr: String },
    #[error("cannot parse nft's JSON output: {0}")]
    Json(String),
    #[error("cannot set {path}: {source}")]
    Sysctl {
        path: String,
        source: std::io::Error,
    },
}

/// The rules one network needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetRules {
    pub network_id: String,
    pub bridge: String,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub internal: bool,
    /// Forward DNS sent to the gateway to this loopback resolver.
    pub dns_forward: Option<Ipv4Addr>,
}

/// One published port of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dnat {
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub proto: Proto,
    pub container_ip: Ipv4Addr,
    pub container_port: u16,
}

/// A rule of berth's table as read back from the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub chain: String,
    pub handle: u64,
    pub owner: Option<String>,
}

const REGULAR: [&str; 4] = ["publish", "masq", "allow", "guard"];
const BASE: [(&str, &str, &str); 5] = [
    (
        "prerouting",
        "type nat hook prerouting priority dstnat; policy accept;",
        "fib daddr type local jump publish",
    ),
    (
        "output",
        "type nat hook output priority -100; policy accept;",
        "fib daddr type local jump publish",
    ),
    (
        "postrouting",
        "type nat hook postrouting priority srcnat; policy accept;",
        "jump masq",
    ),
    (
        "forward",
        "type filter hook forward priority filter; policy accept;",
        "jump allow",
    ),
    (
        "raw_pre",
        "type filter hook prerouting priority raw; policy accept;",
        "jump guard",
    ),
];

/// Owner tag of a network's rules.
pub fn net_owner(id: &str) -> String {
    format!("berth:net:{id}")
}

/// Owner tag of a container's rules.
pub fn ctr_owner(id: &str) -> String {
    format!("berth:ctr:{id}")
}

/// berth's table in the kernel.
#[derive(Debug, Clone)]
pub struct Nat {
    pub table: String,
}

impl Nat {
    pub fn new(table: &str) -> Self {
        Self {
            table: table.to_string(),
        }
    }

    /// The table, chains and jump rules (idempotent: base chains hold only
    /// berth's jumps, so they are flushed and refilled).
    pub fn skeleton(&self) -> String {
        let t = &self.table;
        let mut s = format!("add table ip {t}\n");
        for c in REGULAR {
            s += &format!("add chain ip {t} {c}\n");
        }
        for (c, spec, jump) in BASE {
            s += &format!("add chain ip {t} {c} {{ {spec} }}\nflush chain ip {t} {c}\nadd rule ip {t} {c} {jump}\n");
        }
        s
    }

    /// Rule lines for a network.
    pub fn network_rules(&self, n: &NetRules) -> String {
        let t = &self.table;
        let c = format!("comment \"{}\"", net_owner(&n.network_id));
        let (br, sn) = (&n.bridge, &n.subnet);
        let mut s = String::new();
        let mut add =
            |chain: &str, rule: String| s += &format!("add rule ip {t} {chain} {rule} {c}\n");
        add(
            "guard",
            format!("iifname \"{br}\" ip daddr 127.0.0.0/8 drop"),
        );
        add(
            "masq",
            format!("oifname \"{br}\" ip saddr 127.0.0.0/8 masquerade"),
        );
        add(
            "masq",
            format!("oifname \"{br}\" ip saddr {sn} ct status dnat masquerade"),
        );
        add(
            "allow",
            format!("oifname \"{br}\" ct state established,related accept"),
        );
        add("allow", format!("iifname \"{br}\" oifname \"{br}\" accept"));
        if n.internal {
            add("allow", format!("iifname \"{br}\" drop"));
            add("allow", format!("oifname \"{br}\" drop"));
        } else {
            add(
                "masq",
                format!("ip saddr {sn} oifname != \"{br}\" masquerade"),
            );
            add("allow", format!("iifname \"{br}\" accept"));
            add("allow", format!("oifname \"{br}\" ct status dnat accept"));
        }
        if let Some(dns) = n.dns_forward {
            for p in ["udp", "tcp"] {
                add(
                    "publish",
                    format!(
                        "iifname \"{br}\" ip daddr {} {p} dport 53 dnat to {dns}:53",
                        n.gateway
                    ),
                );
            }
        }
        s
    }

    /// Rule lines for a container's published ports.
    pub fn container_rules(&self, container_id: &str, ports: &[Dnat]) -> String {
        let t = &self.table;
        let c = format!("comment \"{}\"", ctr_owner(container_id));
        ports
            .iter()
            .map(|p| {
                let daddr = match p.host_ip {
                    Some(ip) if !ip.is_unspecified() => format!("ip daddr {ip} "),
                    _ => String::new(),
                };
                format!(
                    "add rule ip {t} publish {daddr}{} dport {} dnat to {}:{} {c}\n",
                    p.proto, p.host_port, p.container_ip, p.container_port
                )
            })
            .collect()
    }

    fn deletes(&self, rules: &[Rule], owners: &[String]) -> String {
        rules
            .iter()
            .filter(|r| r.owner.as_ref().is_some_and(|o| owners.contains(o)))
            .map(|r| {
                format!(
                    "delete rule ip {} {} handle {}\n",
                    self.table, r.chain, r.handle
                )
            })
            .collect()
    }

    /// Installs (or replaces) a network's rules in one transaction.
    pub fn add_network(&self, n: &NetRules) -> Result<(), NatError> {
        let owner = net_owner(&n.network_id);
        let rules = self.rules()?;
        apply(&format!(
            "{}{}{}",
            self.skeleton(),
            self.deletes(&rules, &[owner]),
            self.network_rules(n)
        ))
    }

    /// Installs the rules of a network that was just made: its id is new,
    /// so no rule can have it as owner and there is nothing to list first.
    pub fn add_new_network(&self, n: &NetRules) -> Result<(), NatError> {
        apply(&format!("{}{}", self.skeleton(), self.network_rules(n)))
    }

    /// Installs (or replaces) a container's DNAT rules in one transaction.
    pub fn add_container(&self, container_id: &str, ports: &[Dnat]) -> Result<(), NatError> {
        let owner = ctr_owner(container_id);
        let rules = self.rules()?;
        apply(&format!(
            "{}{}{}",
            self.skeleton(),
            self.deletes(&rules, &[owner]),
            self.container_rules(container_id, ports)
        ))
    }

    /// Removes every rule of the given owners in one transaction.
    pub fn remove_owners(&self, owners: &[String]) -> Result<usize, NatError> {
        let rules = self.rules()?;
        let script = self.deletes(&rules, owners);
        if script.is_empty() {
            return Ok(0);
        }
        apply(&script)?;
        Ok(script.lines().count())
    }

    /// Removes rules whose owner is neither a live container nor a live
    /// network (and untagged rules in berth's regular chains), given the
    /// current `rules` (from [`Nat::rules`]). Returns the owners removed.
    pub fn repair(
        &self,
        rules: &[Rule],
        live_containers: &[String],
        live_networks: &[String],
    ) -> Result<Vec<String>, NatError> {
        let is_live = |o: &str| {
            o.strip_prefix("berth:ctr:")
                .is_some_and(|c| live_containers.iter().any(|l| l == c))
                || o.strip_prefix("berth:net:")
                    .is_some_and(|n| live_networks.iter().any(|l| l == n))
        };
        let stale: Vec<&Rule> = rules
            .iter()
            .filter(|r| REGULAR.contains(&r.chain.as_str()))
            .filter(|r| !r.owner.as_deref().is_some_and(is_live))
            .collect();
        if stale.is_empty() {
            return Ok(Vec::new());
        }
        let script: String = stale
            .iter()
            .map(|r| {
                format!(
                    "delete rule ip {} {} handle {}\n",
                    self.table, r.chain, r.handle
                )
            })
            .collect();
        apply(&script)?;
        let mut owners: Vec<String> = stale
            .iter()
            .map(|r| r.owner.clone().unwrap_or_else(|| "(untagged)".into()))
            .collect();
        owners.sort();
        owners.dedup();
        Ok(owners)
    }

    /// Whether berth's table exists.
    pub fn exists(&self) -> Result<bool, NatError> {
        let out = nft(&["list", "table", "ip", &self.table])?;
        Ok(out.status.success())
    }

    /// Deletes berth's whole table with every rule in it (when no network
    /// is left), in one `nft` run: adding a table that exists is a no-op, so
    /// the pair succeeds whether or not the table is there.
    pub fn delete_table(&self) -> Result<(), NatError> {
        apply(&format!(
            "add table ip {t}\ndelete table ip {t}\n",
            t = self.table
        ))
    }

    /// The rules of berth's table (empty when the table does not exist).
    pub fn rules(&self) -> Result<Vec<Rule>, NatError> {
        let out = nft(&["-j", "-a", "list", "table", "ip", &self.table])?;
        if !out.status.success() {
            return Ok(Vec::new());
        }
        parse_rules(&String::from_utf8_lossy(&out.stdout))
    }
}

/// Parses `nft -j -a list table` output into rules.
pub fn parse_rules(json: &str) -> Result<Vec<Rule>, NatError> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| NatError::Json(e.to_string()))?;
    let items = v["nftables"]
        .as_array()
        .ok_or_else(|| NatError::Json("no nftables array".into()))?;
    Ok(items
        .iter()
        .filter_map(|i| i.get("rule"))
        .filter_map(|r| {
            Some(Rule {
                chain: r["chain"].as_str()?.to_string(),
                handle: r["handle"].as_u64()?,
                owner: r["comment"].as_str().map(str::to_string),
            })
        })
        .collect())
}

fn nft(args: &[&str]) -> Result<std::process::Output, NatError> {
    Command::new("nft")
        .args(args)
        .output()
        .map_err(NatError::Spawn)
}

/// Applies a script with `nft -f -` (one transaction).
pub fn apply(script: &str) -> Result<(), NatError> {
    tracing::debug!(script, "nft -f -");
    let out = super::feed::feed("nft", &["-f", "-"], script).map_err(NatError::Spawn)?;
    if !out.status.success() {
        return Err(NatError::Nft {
            stderr: String::from_utf8_lossy(&out.stderr)
                .trim()
                .replace('\n', "; "),
        });
    }
    Ok(())
}

fn sysctl(path: &str, value: &str) -> Result<(), NatError> {
    if std::fs::read_to_string(path).is_ok_and(|v| v.trim() == value) {
        return Ok(());
    }
    std::fs::write(path, value).map_err(|source| NatError::Sysctl {
        path: path.to_string(),
        source,
    })
}

/// Turns on IPv4 forwarding (`net.ipv4.ip_forward=1`), needed for NAT.
pub fn enable_forwarding() -> Result<(), NatError> {
    sysctl("/proc/sys/net/ipv4/ip_forward", "1")
}

/// Lets the kernel route 127/8-sourced packets out of `bridge`, so DNAT of
/// 127.0.0.1:PORT to a container works (`net.ipv4.conf.BR.route_localnet`).
pub fn enable_route_localnet(bridge: &str) -> Result<(), NatError> {
    sysctl(
        &format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet"),
        "1",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_text() {
        let nat = Nat::new("berth_t");
        let n = NetRules {
            network_id: "n1".into(),
            bridge: "br-n1".into(),
            subnet: "10.89.0.0/24".parse().unwrap(),
            gateway: "10.89.0.1".parse().unwrap(),
            internal: false,
            dns_forward: Some("127.0.0.53".parse().unwrap()),
        };
        let s = nat.network_rules(&n);
        assert!(s.contains("add rule ip berth_t masq ip saddr 10.89.0.0/24 oifname != \"br-n1\" masquerade comment \"berth:net:n1\"\n"), "{s}");
        assert!(s.contains("add rule ip berth_t publish iifname \"br-n1\" ip daddr 10.89.0.1 udp dport 53 dnat to 127.0.0.53:53"), "{s}");
        let internal = nat.network_rules(&NetRules {
            internal: true,
            dns_forward: None,
            ..n
        });
        assert!(
            !internal.contains("oifname != \"br-n1\" masquerade"),
            "{internal}"
        );
        assert!(internal.contains("iifname \"br-n1\" drop"), "{internal}");
        let c = nat.container_rules(
            "c1",
            &[
                Dnat {
                    host_ip: None,
                    host_port: 8080,
                    proto: Proto::Tcp,
                    container_ip: "10.89.0.2".parse().unwrap(),
                    container_port: 80,
                },
                Dnat {
                    host_ip: Some("127.0.0.1".parse().unwrap()),
                    host_port: 53,
                    proto: Proto::Udp,
                    container_ip: "10.89.0.2".parse().unwrap(),
                    container_port: 5353,
                },
            ],
        );
        assert_eq!(
            c,
            "add rule ip berth_t publish tcp dport 8080 dnat to 10.89.0.2:80 comment \"berth:ctr:c1\"\n\
             add rule ip berth_t publish ip daddr 127.0.0.1 udp dport 53 dnat to 10.89.0.2:5353 comment \"berth:ctr:c1\"\n"
        );
        let sk = nat.skeleton();
        assert!(sk.starts_with("add table ip berth_t\n"));
        assert!(sk.contains("flush chain ip berth_t output\nadd rule ip berth_t output fib daddr type local jump publish\n"));
    }

    #[test]
    fn json_rules_and_deletes() {
        let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"table": {"family": "ip", "name": "b", "handle": 1}},
          {"chain": {"family": "ip", "table": "b", "name": "publish", "handle": 1}},
          {"rule": {"family": "ip", "table": "b", "chain": "publish", "handle": 7, "comment": "berth:ctr:c1", "expr": []}},
          {"rule": {"family": "ip", "table": "b", "chain": "publish", "handle": 8, "comment": "berth:ctr:c2", "expr": []}},
          {"rule": {"family": "ip", "table": "b", "chain": "prerouting", "handle": 9, "expr": []}}]}"#;
        let rules = parse_rules(json).unwrap();
        assert_eq!(rules.len(), 3);
        assert_eq!(
            rules[0],
            Rule {
                chain: "publish".into(),
                handle: 7,
                owner: Some("berth:ctr:c1".into())
            }
        );
        let nat = Nat::new("b");
        assert_eq!(
            nat.deletes(&rules, &[ctr_owner("c2")]),
            "delete rule ip b publish handle 8\n"
        );
        assert!(parse_rules("nope").is_err());
    }
}
