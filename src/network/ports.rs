//! Port preflight: before anything is created for a container, every host
//! port it asks for is checked, and a taken one is reported with its holder.
//!
//! Listening sockets come from `/proc/net/{tcp,tcp6,udp,udp6}` (format:
//! `Documentation/networking/proc_net_tcp.rst`; TCP state `0A` is LISTEN,
//! a bound UDP socket shows state `07`), and a socket inode is mapped to its
//! process by reading the `socket:[INODE]` links under `/proc/PID/fd`. Ports
//! berth itself publishes through DNAT have no socket, so the caller passes
//! berth's own table ([`super::store::PublishedPort`]) to name those holders
//! by container.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::portspec::{HostPort, PortRequest, Proto};
use super::store::PublishedPort;

/// Errors from the port preflight.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortsError {
    #[error("{addr} is in use by {holder}")]
    InUse { addr: String, holder: String },
    #[error("host port {0} is requested twice")]
    Duplicate(String),
    #[error("no free host port in {range}/{proto}")]
    RangeFull { range: String, proto: Proto },
    #[error("cannot find a free host port: {0}")]
    NoRandom(String),
    #[error("publishing on {0} is not supported: berth's networks are IPv4-only; publish on 127.0.0.1, 0.0.0.0 or leave the address out")]
    Ipv6(IpAddr),
}

/// A bound socket of the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub proto: Proto,
    pub ip: IpAddr,
    pub port: u16,
    pub inode: u64,
}

/// A host port chosen for a container port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortBinding {
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub proto: Proto,
    pub container_port: u16,
}

fn parse_hex_addr(text: &str) -> Option<(IpAddr, u16)> {
    let (a, p) = text.split_once(':')?;
    let port = u16::from_str_radix(p, 16).ok()?;
    let ip = match a.len() {
        8 => IpAddr::V4(Ipv4Addr::from(u32::from_be(
            u32::from_str_radix(a, 16).ok()?,
        ))),
        32 => {
            // Four 32-bit words, each in host (little-endian) order.
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                let w = u32::from_str_radix(&a[i * 8..i * 8 + 8], 16).ok()?;
                bytes[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
            }
            let v6 = Ipv6Addr::from(bytes);
            match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            }
        }
        _ => return None,
    };
    Some((ip, port))
}

/// Parses one `/proc/net/{tcp,udp}[6]` file, keeping listening/bound sockets.
pub fn parse_proc_net(text: &str, proto: Proto) -> Vec<Listener> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 {
            continue;
        }
        let wanted = match proto {
            Proto::Tcp => f[3] == "0A",
            Proto::Udp => f[3] == "07",
        };
        if !wanted {
            continue;
        }
        let (Some((ip, port)), Ok(inode)) = (parse_hex_addr(f[1]), f[9].parse::<u64>()) else {
            continue;
        };
        out.push(Listener {
            proto,
            ip,
            port,
            inode,
        });
    }
    out
}

/// Every listening TCP and bound UDP socket of the current network namespace.
pub fn listeners() -> Vec<Listener> {
    let mut out = Vec::new();
    for (file, proto) in [
        ("tcp", Proto::Tcp),
        ("tcp6", Proto::Tcp),
        ("udp", Proto::Udp),
        ("udp6", Proto::Udp),
    ] {
        if let Ok(text) = std::fs::read_to_string(format!("/proc/net/{file}")) {
            out.extend(parse_proc_net(&text, proto));
        }
    }
    out
}

/// Maps socket inodes to (pid, command name) by scanning `/proc/*/fd`.
pub fn socket_owners(inodes: &HashSet<u64>) -> HashMap<u64, (u32, String)> {
    let mut out = HashMap::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for p in procs.flatten() {
        let Ok(pid) = p.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let t = target.to_string_lossy();
            let Some(inode) = t
                .strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            if inodes.contains(&inode) && !out.contains_key(&inode) {
                let comm = std::fs::read_to_string(p.path().join("comm"))
                    .map(|s| s.trim().to_string())
                    .unwrap_or_else(|_| "?".into());
                out.insert(inode, (pid, comm));
            }
        }
        if out.len() == inodes.len() {
            break;
        }
    }
    out
}

/// Whether a listener on `have` blocks publishing on `want` (None = all).
fn addr_clash(want: Option<IpAddr>, have: IpAddr) -> bool {
    match want {
        None => true,
        Some(w) => have.is_unspecified() || w.is_unspecified() || w == have,
    }
}

fn show_addr(ip: Option<IpAddr>, port: u16, proto: Proto) -> String {
    let ip = ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let s = SocketAddr::new(ip, port).to_string();
    match proto {
        Proto::Tcp => s,
        Proto::Udp => format!("{s}/udp"),
    }
}

/// Who holds `port`: a host socket or one of berth's published ports.
pub fn holder(
    want: Option<IpAddr>,
    port: u16,
    proto: Proto,
    host: &[Listener],
    berth: &[PublishedPort],
) -> Option<PortsError> {
    if let Some(p) = berth.iter().find(|p| {
        p.host_port == port
            && p.proto == proto
            && (p.host_ip.is_none() || addr_clash(want, p.host_ip.unwrap()))
    }) {
        return Some(PortsError::InUse {
            addr: show_addr(p.host_ip, port, proto),
            holder: format!("container {}", p.container_name),
        });
    }
    let l = host
        .iter()
        .find(|l| l.port == port && l.proto == proto && addr_clash(want, l.ip))?;
    let owners = socket_owners(&[l.inode].into_iter().collect());
    let holder = match owners.get(&l.inode) {
        Some((pid, comm)) => format!("pid {pid} ({comm})"),
        None => format!("a process berth cannot see (socket inode {})", l.inode),
    };
    Some(PortsError::InUse {
        addr: show_addr(Some(l.ip), port, proto),
        holder,
    })
}

fn kernel_port(ip: Option<IpAddr>, proto: Proto) -> Result<u16, PortsError> {
    let ip = ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let addr = SocketAddr::new(ip, 0);
    let r = match proto {
        Proto::Tcp => std::net::TcpListener::bind(addr).and_then(|s| s.local_addr()),
        Proto::Udp => std::net::UdpSocket::bind(addr).and_then(|s| s.local_addr()),
    };
    r.map(|a| a.port())
        .map_err(|e| PortsError::NoRandom(e.to_string()))
}

/// Checks every request against the host's sockets and berth's table and
/// chooses host ports for ranges and random requests. Creates nothing.
pub fn preflight(
    requests: &[PortRequest],
    berth: &[PublishedPort],
) -> Result<Vec<PortBinding>, PortsError> {
    preflight_with(requests, berth, &listeners())
}

/// [`preflight`] against a given list of host sockets.
pub fn preflight_with(
    requests: &[PortRequest],
    berth: &[PublishedPort],
    host: &[Listener],
) -> Result<Vec<PortBinding>, PortsError> {
    let mut chosen: Vec<PortBinding> = Vec::new();
    let taken_by_us = |chosen: &[PortBinding], ip: Option<IpAddr>, port: u16, proto: Proto| {
        chosen.iter().any(|b| {
            b.host_port == port
                && b.proto == proto
                && (b.host_ip.is_none() || addr_clash(ip, b.host_ip.unwrap()))
        })
    };
    for r in requests {
        if let Some(ip @ IpAddr::V6(_)) = r.host_ip {
            return Err(PortsError::Ipv6(ip));
        }
        let port = match r.host {
            HostPort::Fixed(p) => {
                if taken_by_us(&chosen, r.host_ip, p, r.proto) {
                    return Err(PortsError::Duplicate(show_addr(r.host_ip, p, r.proto)));
                }
                if let Some(e) = holder(r.host_ip, p, r.proto, host, berth) {
                    return Err(e);
                }
                p
            }
            HostPort::AnyOf(range) => range
                .ports()
                .find(|&p| {
                    !taken_by_us(&chosen, r.host_ip, p, r.proto)
                        && holder_quick(r.host_ip, p, r.proto, host, berth)
                })
                .ok_or(PortsError::RangeFull {
                    range: format!("{}-{}", range.start, range.end),
                    proto: r.proto,
                })?,
            HostPort::Random => {
                let mut found = None;
                for _ in 0..32 {
                    let p = kernel_port(r.host_ip, r.proto)?;
                    if !taken_by_us(&chosen, r.host_ip, p, r.proto)
                        && holder_quick(r.host_ip, p, r.proto, host, berth)
                    {
                        found = Some(p);
                        break;
                    }
                }
                found.ok_or_else(|| PortsError::NoRandom("every port tried is taken".into()))?
            }
        };
        chosen.push(PortBinding {
            host_ip: r.host_ip,
            host_port: port,
            proto: r.proto,
            container_port: r.container_port,
        });
    }
    Ok(chosen)
}

/// True when `port` is free (no owner lookup: used while searching).
fn holder_quick(
    want: Option<IpAddr>,
    port: u16,
    proto: Proto,
    host: &[Listener],
    berth: &[PublishedPort],
) -> bool {
    !berth.iter().any(|p| {
        p.host_port == port
            && p.proto == proto
            && (p.host_ip.is_none() || addr_clash(want, p.host_ip.unwrap()))
    }) && !host
        .iter()
        .any(|l| l.port == port && l.proto == proto && addr_clash(want, l.ip))
}

#[cfg(test)]
mod tests {
    use super::super::portspec;
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4244 1 0000000000000000 100 0 0 10 0\n\
   2: 0100007F:1F93 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 4243 1 0000000000000000 100 0 0 10 0\n";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 77 1 0000000000000000 100 0 0 10 0\n\
   1: 00000000000000000000000001000000:1F92 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 78 1 0000000000000000 100 0 0 10 0\n";
    const UDP: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
  1: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 99 2 0000000000000000 0\n";

    fn host() -> Vec<Listener> {
        let mut v = parse_proc_net(TCP, Proto::Tcp);
        v.extend(parse_proc_net(TCP6, Proto::Tcp));
        v.extend(parse_proc_net(UDP, Proto::Udp));
        v
    }

    #[test]
    fn proc_net_parsing() {
        let h = host();
        let shown: Vec<String> = h
            .iter()
            .map(|l| format!("{}/{}:{}#{}", l.proto, l.ip, l.port, l.inode))
            .collect();
        assert_eq!(
            shown,
            [
                "tcp/127.0.0.1:8080#4242",
                "tcp/127.0.0.1:8081#4244",
                "tcp/:::80#77",
                "tcp/::1:8082#78",
                "udp/0.0.0.0:53#99"
            ]
        );
    }

    fn check(spec: &str, berth: &[PublishedPort]) -> Result<Vec<PortBinding>, PortsError> {
        preflight_with(&portspec::parse(spec).unwrap(), berth, &host())
    }

    #[test]
    fn conflicts_and_free_ports() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("8080:80", Err("127.0.0.1:8080 is in use by")),
            ("127.0.0.1:8080:80", Err("127.0.0.1:8080 is in use by")),
            ("127.0.0.2:8080:80", Ok("8080")),
            ("8080:80/udp", Ok("8080")),
            ("80:80", Err("[::]:80 is in use by")),
            ("53:53/udp", Err("0.0.0.0:53/udp is in use by")),
            ("8083:80", Ok("8083")),
            ("8079-8081:80", Ok("8079")),
            ("8080-8081:80", Err("no free host port in 8080-8081/tcp")),
            ("8080-8081:80/udp", Ok("8080")),
            ("[::1]:9000:80", Err("IPv4-only")),
        ];
        for (spec, want) in cases {
            let got = check(spec, &[]);
            match (want, got) {
                (Ok(port), Ok(b)) => assert_eq!(b[0].host_port.to_string(), *port, "{spec}"),
                (Err(msg), Err(e)) => assert!(e.to_string().contains(msg), "{spec}: {e}"),
                (w, g) => panic!("{spec}: want {w:?}, got {g:?}"),
            }
        }
    }

    #[test]
    fn berth_ports_name_the_container_and_ranges_skip_them() {
        let berth = vec![PublishedPort {
            container_id: "c".into(),
            container_name: "web-1".into(),
            host_ip: None,
            host_port: 9000,
            proto: Proto::Tcp,
            container_ip: "10.89.0.2".parse().unwrap(),
            container_port: 80,
        }];
        let e = check("127.0.0.1:9000:80", &berth).unwrap_err();
        assert_eq!(e.to_string(), "0.0.0.0:9000 is in use by container web-1");
        assert_eq!(check("9000-9001:80", &berth).unwrap()[0].host_port, 9001);
        assert!(check("9000:80/udp", &berth).is_ok());
    }

    #[test]
    fn duplicates_and_random() {
        let reqs = portspec::parse_all(&["9100:80", "9100:81"]).unwrap();
        let e = preflight_with(&reqs, &[], &[]).unwrap_err();
        assert!(e.to_string().contains("requested twice"), "{e}");
        let reqs = portspec::parse_all(&["127.0.0.1::80", "127.0.0.1::81"]).unwrap();
        let b = preflight_with(&reqs, &[], &[]).unwrap();
        assert_ne!(b[0].host_port, b[1].host_port);
        assert!(b.iter().all(|b| b.host_port > 0));
    }

    #[test]
    fn own_socket_is_named_with_pid() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let e = preflight(
            &portspec::parse(&format!("127.0.0.1:{port}:80")).unwrap(),
            &[],
        )
        .unwrap_err();
        let want = format!("127.0.0.1:{port} is in use by pid {} (", std::process::id());
        assert!(e.to_string().starts_with(&want), "{e}");
    }
}
