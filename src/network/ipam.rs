//! IP address management: IPv4 subnets, choosing a free subnet for a new
//! network, and handing out container addresses inside one.
//!
//! A network's allocations live in its record (`ROOT/networks/<id>.json`,
//! see [`super::store`]), written atomically under `StateRoot::lock()`, so
//! an address is either recorded as taken or free after a crash, never
//! half. The gateway (the bridge's address) is the subnet's first host
//! address; containers get the lowest free address after it. An allocation
//! is made when a container is attached and kept (same address) until it is
//! released; [`reconcile`] frees the allocations of containers that no
//! longer exist, so a crash between "container gone" and "address released"
//! can never make two containers share an address.
//!
//! New subnets come from a pool (10.89.0.0/24, 10.89.1.0/24, … up to
//! 10.127.255.0/24) and must not overlap any route of the host (read from
//! `/proc/net/route`, see `route(8)`) nor another network of this root.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use super::store::{Endpoint, NetworkRecord};

/// Errors from address management.
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    #[error("invalid subnet {0:?}: expected an IPv4 CIDR such as 10.89.3.0/24")]
    BadSubnet(String),
    #[error("subnet {0} is too small: use a prefix of /30 or shorter")]
    TooSmall(Ipv4Net),
    #[error("subnet {subnet} overlaps {other}; pick another with --subnet")]
    Overlap { subnet: Ipv4Net, other: String },
    #[error("no free subnet left in the pool 10.89.0.0-10.127.255.0; remove unused networks (berth network prune)")]
    PoolExhausted,
    #[error("network {0} has no free address left; remove containers or use a larger --subnet")]
    Full(String),
    #[error("cannot read the host's routes from /proc/net/route: {0}")]
    Routes(std::io::Error),
}

/// An IPv4 network in CIDR form, normalised to its network address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Net {
    /// Makes a network from any address inside it and a prefix length.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Option<Self> {
        if prefix > 32 {
            return None;
        }
        let mask = Self::mask_of(prefix);
        Some(Self {
            addr: Ipv4Addr::from(u32::from(addr) & mask),
            prefix,
        })
    }

    fn mask_of(prefix: u8) -> u32 {
        if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        }
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    fn first(&self) -> u32 {
        u32::from(self.addr)
    }

    fn last(&self) -> u32 {
        self.first() | !Self::mask_of(self.prefix)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (self.first()..=self.last()).contains(&u32::from(ip))
    }

    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        self.first() <= other.last() && other.first() <= self.last()
    }

    /// The gateway address: the first host address.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.first() + 1)
    }

    /// Host addresses a container may get: after the gateway, before broadcast.
    pub fn container_hosts(&self) -> impl Iterator<Item = Ipv4Addr> {
        (self.first() + 2..self.last()).map(Ipv4Addr::from)
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv4Net {
    type Err = IpamError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || IpamError::BadSubnet(s.to_string());
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.len() > 2 {
            return Err(bad());
        }
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        let net = Self::new(addr, prefix).ok_or_else(bad)?;
        if net.addr != addr {
            return Err(bad());
        }
        if prefix > 30 {
            return Err(IpamError::TooSmall(net));
        }
        Ok(net)
    }
}

impl serde::Serialize for Ipv4Net {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Ipv4Net {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One route of the host, as far as overlap checks care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoute {
    pub iface: String,
    pub net: Ipv4Net,
}

/// Parses `/proc/net/route` (addresses are little-endian hex).
pub fn parse_proc_route(text: &str) -> Vec<HostRoute> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        let (Ok(dst), Ok(mask)) = (u32::from_str_radix(f[1], 16), u32::from_str_radix(f[7], 16))
        else {
            continue;
        };
        let dst = Ipv4Addr::from(u32::from_be(dst));
        let mask = u32::from_be(mask);
        if mask == 0 {
            continue; // the default route overlaps everything and is no conflict
        }
        let prefix = mask.count_ones() as u8;
        if let Some(net) = Ipv4Net::new(dst, prefix) {
            out.push(HostRoute {
                iface: f[0].to_string(),
                net,
            });
        }
    }
    out
}

/// The host's IPv4 routes (main table), without the default route.
pub fn host_routes() -> Result<Vec<HostRoute>, IpamError> {
    let text = std::fs::read_to_string("/proc/net/route").map_err(IpamError::Routes)?;
    Ok(parse_proc_route(&text))
}

/// Checks that `subnet` overlaps neither a host route nor a known network.
pub fn check_free(
    subnet: Ipv4Net,
    routes: &[HostRoute],
    networks: &[(String, Ipv4Net)],
) -> Result<(), IpamError> {
    if let Some(r) = routes.iter().find(|r| r.net.overlaps(&subnet)) {
        return Err(IpamError::Overlap {
            subnet,
            other: format!("the host route {} on {}", r.net, r.iface),
        });
    }
    if let Some((name, n)) = networks.iter().find(|(_, n)| n.overlaps(&subnet)) {
        return Err(IpamError::Overlap {
            subnet,
            other: format!("network {name} ({n})"),
        });
    }
    Ok(())
}

/// Picks the first /24 of the pool that is free.
pub fn pick_subnet(
    routes: &[HostRoute],
    networks: &[(String, Ipv4Net)],
) -> Result<Ipv4Net, IpamError> {
    let start = u32::from(Ipv4Addr::new(10, 89, 0, 0));
    let end = u32::from(Ipv4Addr::new(10, 127, 255, 0));
    let mut n = start;
    while n <= end {
        let cand = Ipv4Net::new(Ipv4Addr::from(n), 24).expect("valid prefix");
        if check_free(cand, routes, networks).is_ok() {
            return Ok(cand);
        }
        n += 256;
    }
    Err(IpamError::PoolExhausted)
}

/// Allocates (or returns the existing) address of `container` on `net`.
pub fn allocate(
    net: &mut NetworkRecord,
    container: &str,
    name: &str,
    aliases: &[String],
) -> Result<Ipv4Addr, IpamError> {
    if let Some(ep) = net.endpoints.get_mut(container) {
        ep.name = name.to_string();
        ep.aliases = aliases.to_vec();
        return Ok(ep.ip);
    }
    let used: HashSet<Ipv4Addr> = net.endpoints.values().map(|e| e.ip).collect();
    let ip = net
        .subnet
        .container_hosts()
        .find(|ip| !used.contains(ip))
        .ok_or_else(|| IpamError::Full(net.name.clone()))?;
    net.endpoints.insert(
        container.to_string(),
        Endpoint {
            container_id: container.to_string(),
            name: name.to_string(),
            aliases: aliases.to_vec(),
            ip,
            endpoint_id: super::names::random_id(),
            ifname: "eth0".into(),
            hostname: None,
        },
    );
    Ok(ip)
}

/// Releases `container`'s address on `net`; returns the endpoint it had.
pub fn release(net: &mut NetworkRecord, container: &str) -> Option<Endpoint> {
    net.endpoints.remove(container)
}

/// Frees every allocation whose container is not in `live`; returns them.
pub fn reconcile(net: &mut NetworkRecord, live: &HashSet<String>) -> Vec<Endpoint> {
    let dead: Vec<String> = net
        .endpoints
        .keys()
        .filter(|c| !live.contains(*c))
        .cloned()
        .collect();
    dead.into_iter()
        .filter_map(|c| net.endpoints.remove(&c))
        .collect()
}

/// Endpoints grouped by address: more than one entry per address is a bug
/// that [`reconcile`] and [`allocate`] together rule out.
pub fn by_address(net: &NetworkRecord) -> BTreeMap<Ipv4Addr, Vec<String>> {
    let mut out: BTreeMap<Ipv4Addr, Vec<String>> = BTreeMap::new();
    for e in net.endpoints.values() {
        out.entry(e.ip).or_default().push(e.container_id.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(subnet: &str) -> NetworkRecord {
        NetworkRecord::new("n1", subnet.parse().unwrap(), "br-test", false)
    }

    #[test]
    fn subnet_parsing() {
        let ok = [
            ("10.88.0.0/16", "10.88.0.0/16", "10.88.0.1"),
            ("192.168.7.0/24", "192.168.7.0/24", "192.168.7.1"),
        ];
        for (text, shown, gw) in ok {
            let n: Ipv4Net = text.parse().unwrap();
            assert_eq!(n.to_string(), shown);
            assert_eq!(n.gateway().to_string(), gw);
        }
        for bad in [
            "10.88.0.0",
            "10.88.0.1/16",
            "10.88.0.0/33",
            "x/24",
            "10.88.0.0/",
            "10.88.0.0/+8",
            "::1/64",
            "10.0.0.0/31",
        ] {
            assert!(bad.parse::<Ipv4Net>().is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn overlap_rules() {
        let a: Ipv4Net = "10.88.0.0/16".parse().unwrap();
        let b: Ipv4Net = "10.88.5.0/24".parse().unwrap();
        let c: Ipv4Net = "10.89.0.0/24".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
    }

    #[test]
    fn proc_route_parsing_and_picking() {
        // eth0 192.0.2.0/24, br 10.89.0.0/24, default route ignored.
        let text =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
br-x\t0000590A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        let routes = parse_proc_route(text);
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[0].net.to_string(), "192.0.2.0/24");
        assert_eq!(routes[1].net.to_string(), "10.89.0.0/24");
        let known = vec![("other".to_string(), "10.89.1.0/24".parse().unwrap())];
        assert_eq!(
            pick_subnet(&routes, &known).unwrap().to_string(),
            "10.89.2.0/24"
        );
        let e = check_free("10.89.0.0/16".parse().unwrap(), &routes, &known).unwrap_err();
        assert!(
            e.to_string().contains("host route 10.89.0.0/24 on br-x"),
            "{e}"
        );
        let e = check_free("10.89.1.128/25".parse().unwrap(), &[], &known).unwrap_err();
        assert!(e.to_string().contains("network other"), "{e}");
    }

    #[test]
    fn allocation_is_sticky_and_released() {
        let mut n = net("10.89.9.0/24");
        let a = allocate(&mut n, "c1", "web", &[]).unwrap();
        let b = allocate(&mut n, "c2", "db", &[]).unwrap();
        assert_eq!(a.to_string(), "10.89.9.2");
        assert_eq!(b.to_string(), "10.89.9.3");
        assert_eq!(allocate(&mut n, "c1", "web", &["w".into()]).unwrap(), a);
        assert_eq!(release(&mut n, "c1").unwrap().ip, a);
        // The freed lowest address is reused.
        assert_eq!(allocate(&mut n, "c3", "x", &[]).unwrap(), a);
    }

    #[test]
    fn full_network_errors() {
        let mut n = net("10.89.9.0/30"); // one container address: .2
        allocate(&mut n, "c1", "a", &[]).unwrap();
        let e = allocate(&mut n, "c2", "b", &[]).unwrap_err();
        assert!(e.to_string().contains("no free address"), "{e}");
    }

    #[test]
    fn reconcile_frees_dead_and_no_address_is_shared() {
        let mut n = net("10.89.9.0/24");
        for c in ["c1", "c2", "c3"] {
            allocate(&mut n, c, c, &[]).unwrap();
        }
        let live: HashSet<String> = ["c2".to_string()].into_iter().collect();
        let freed: Vec<String> = reconcile(&mut n, &live)
            .into_iter()
            .map(|e| e.container_id)
            .collect();
        assert_eq!(freed, vec!["c1", "c3"]);
        for c in ["c4", "c5", "c6"] {
            allocate(&mut n, c, c, &[]).unwrap();
        }
        assert!(by_address(&n).values().all(|v| v.len() == 1));
        assert_eq!(n.endpoints.len(), 4);
    }
}
