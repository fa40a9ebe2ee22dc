//! Name resolution for containers: a kept-current `/etc/hosts` per
//! container, and an `/etc/resolv.conf` derived from the host's.
//!
//! berth has no daemon, so instead of an embedded DNS server each container
//! gets a generated hosts file (`hosts(5)`) listing itself and every peer on
//! every network it is attached to, by name and alias. Whenever a peer
//! joins, leaves or changes address, berth rewrites the hosts file of every
//! container on that network. The runtime bind-mounts the file into the
//! container, so the file is rewritten *in place* (same inode: a rename would
//! leave the container looking at the old inode), with the whole content in
//! one `write(2)` followed by a truncate, the way Docker's libnetwork does it.
//!
//! `resolv.conf(5)`: the host's file with loopback name servers (127.0.0.53
//! of systemd-resolved, a local dnsmasq…) removed, because a container's
//! loopback is its own. systemd-resolved's upstream list
//! (`/run/systemd/resolve/resolv.conf`) is preferred when the host points at
//! 127.0.0.53. If no server is left, the network's gateway is used and berth
//! forwards DNS sent to the gateway to the host's loopback resolver (see
//! [`super::nat`]).

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

/// Errors writing a container's name files (`error`, not `source`: the
/// message says it, with the full device named, once).
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {}", crate::state::describe_io(error, path))]
pub struct HostsError {
    pub path: std::path::PathBuf,
    pub error: std::io::Error,
}

/// One line of a hosts file: an address and its names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    pub ip: Ipv4Addr,
    pub names: Vec<String>,
}

/// Renders a container's hosts file: localhost lines, itself, then peers.
pub fn render_hosts(own: &[HostEntry], peers: &[HostEntry]) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         ff00::0\tip6-mcastprefix\n\
         ff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
    for e in own.iter().chain(peers) {
        let mut names: Vec<&str> = Vec::new();
        for n in &e.names {
            if !names.contains(&n.as_str()) {
                names.push(n);
            }
        }
        if !names.is_empty() {
            s.push_str(&format!("{}\t{}\n", e.ip, names.join(" ")));
        }
    }
    s
}

/// Name servers of a resolv.conf text.
fn nameservers(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver"))
                .then(|| w.next())
                .flatten()
                .and_then(|a| a.split('%').next()?.parse().ok())
        })
        .collect()
}

/// Renders a container's resolv.conf from the host's.
///
/// `upstream` is systemd-resolved's list, used when the host only names
/// loopback servers. Returns the text and whether the gateway had to be used
/// (then DNS to the gateway must be forwarded to the host's resolver).
pub fn render_resolv(host: &str, upstream: Option<&str>, gateway: Ipv4Addr) -> (String, bool) {
    let usable = |t: &str| {
        nameservers(t)
            .into_iter()
            .filter(|ip| !ip.is_loopback() && !matches!(ip, IpAddr::V6(_)))
            .collect::<Vec<_>>()
    };
    let mut servers = usable(host);
    if servers.is_empty() {
        if let Some(up) = upstream {
            servers = usable(up);
        }
    }
    let via_gateway = servers.is_empty();
    if via_gateway {
        servers.push(IpAddr::V4(gateway));
    }
    let mut out = String::new();
    for l in host.lines() {
        let t = l.trim_start();
        if t.starts_with("search ") || t.starts_with("domain ") || t.starts_with("options ") {
            out.push_str(l);
            out.push('\n');
        }
    }
    for s in servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    (out, via_gateway)
}

/// The host's resolv.conf and systemd-resolved's upstream list, if any.
pub fn host_resolv() -> (String, Option<String>) {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let upstream = std::fs::read_to_string("/run/systemd/resolve/resolv.conf").ok();
    (host, upstream)
}

/// Writes `text` to `path` keeping its inode (bind mounts stay current).
pub fn write_in_place(path: &Path, text: &str) -> Result<(), HostsError> {
    let err = |error| HostsError {
        path: path.to_path_buf(),
        error,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)?;
    f.set_len(text.len() as u64).map_err(err)?;
    f.sync_data().map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn a_full_disk_is_said_once_with_its_device() {
        let e = HostsError {
            path: "/proc/self/hosts".into(),
            error: std::io::Error::from_raw_os_error(libc::ENOSPC),
        };
        let chain = crate::cli::one_line(&anyhow::Error::from(e));
        assert_eq!(
            chain,
            "cannot write /proc/self/hosts: no space left on proc (/proc/self/hosts)"
        );
    }

    fn e(ip: &str, names: &[&str]) -> HostEntry {
        HostEntry {
            ip: ip.parse().unwrap(),
            names: names.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn hosts_lists_self_and_peers() {
        let text = render_hosts(
            &[e("10.89.0.2", &["web", "web", "frontend"])],
            &[e("10.89.0.3", &["db", "postgres"]), e("10.89.0.4", &[])],
        );
        assert!(text.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(text.contains("\n10.89.0.2\tweb frontend\n"), "{text}");
        assert!(text.ends_with("10.89.0.3\tdb postgres\n"), "{text}");
        assert!(!text.contains("10.89.0.4"));
    }

    #[test]
    fn resolv_cases() {
        let gw: Ipv4Addr = "10.89.0.1".parse().unwrap();
        let cases: &[(&str, Option<&str>, &str, bool)] = &[
            (
                "nameserver 10.255.255.53\n",
                None,
                "nameserver 10.255.255.53\n",
                false,
            ),
            (
                "search lan\nnameserver 127.0.0.53\noptions edns0\n",
                Some("nameserver 9.9.9.9\nnameserver ::1\n"),
                "search lan\noptions edns0\nnameserver 9.9.9.9\n",
                false,
            ),
            (
                "nameserver 127.0.0.1\nnameserver 1.1.1.1\n",
                None,
                "nameserver 1.1.1.1\n",
                false,
            ),
            (
                "nameserver 127.0.0.1\n",
                None,
                "nameserver 10.89.0.1\n",
                true,
            ),
            ("", None, "nameserver 10.89.0.1\n", true),
            (
                "nameserver fe80::1%eth0\nnameserver ::1\n",
                None,
                "nameserver 10.89.0.1\n",
                true,
            ),
        ];
        for (host, up, want, gw_used) in cases {
            let (got, via) = render_resolv(host, *up, gw);
            assert_eq!(&got, want, "host {host:?}");
            assert_eq!(via, *gw_used, "host {host:?}");
        }
    }

    #[test]
    fn rewrite_keeps_inode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hosts");
        write_in_place(&p, "a long first version of the file\n").unwrap();
        let ino = std::fs::metadata(&p).unwrap().ino();
        write_in_place(&p, "short\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "short\n");
        assert_eq!(std::fs::metadata(&p).unwrap().ino(), ino);
    }
}
