//! Links, addresses and routes through rtnetlink (`rtnetlink(7)`).
//!
//! A network is a Linux bridge carrying the gateway address; a container is
//! attached by a veth pair (`veth(4)`) whose host end is a port of the bridge
//! and whose other end is created directly inside the container's network
//! namespace (`IFLA_NET_NS_FD` on the peer), named `eth0`. Addresses and the
//! default route inside the namespace are set from a short-lived thread that
//! has `setns(2)`-ed into it and opened its own netlink socket there (a
//! netlink socket talks to the namespace it was created in).
//!
//! Each public function runs its own current-thread tokio runtime, so
//! callers need no async context. No `ip` commands are run.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkInfo, LinkMessage,
};
use rtnetlink::{
    Handle, LinkBridge, LinkBridgePort, LinkMessageBuilder, LinkUnspec, RouteMessageBuilder,
};

/// Errors from netlink operations.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("netlink: cannot {what}: {source}")]
    Netlink {
        what: String,
        source: rtnetlink::Error,
    },
    #[error("netlink: cannot {what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("interface {0} does not exist")]
    NoLink(String),
    #[error("cannot open network namespace {path}: {source}")]
    Netns {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} exists but is not a bridge; remove it or pick another network")]
    NotBridge(String),
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

fn nl(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> LinkError {
    let what = what.into();
    move |source| LinkError::Netlink { what, source }
}

/// Runs `f` on a fresh current-thread runtime with a netlink handle of the
/// calling thread's network namespace.
fn with_handle<T, F, Fut>(f: F) -> Result<T, LinkError>
where
    F: FnOnce(Handle) -> Fut,
    Fut: Future<Output = Result<T, LinkError>>,
{
    let io = |source| LinkError::Io {
        what: "start netlink".into(),
        source,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(io)?;
    rt.block_on(async {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(io)?;
        let task = tokio::spawn(conn);
        let r = f(handle).await;
        task.abort();
        r
    })
}

/// Runs `f` inside the network namespace at `netns` (in a helper thread).
fn in_netns<T: Send + 'static>(
    netns: &Path,
    f: impl FnOnce() -> Result<T, LinkError> + Send + 'static,
) -> Result<T, LinkError> {
    let file = std::fs::File::open(netns).map_err(|source| LinkError::Netns {
        path: netns.to_path_buf(),
        source,
    })?;
    let path = netns.to_path_buf();
    std::thread::spawn(move || {
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
            LinkError::Netns {
                path,
                source: e.into(),
            }
        })?;
        f()
    })
    .join()
    .unwrap_or_else(|_| {
        Err(LinkError::Io {
            what: "configure the namespace".into(),
            source: std::io::Error::other("helper thread panicked"),
        })
    })
}

async fn index_of(handle: &Handle, name: &str) -> Result<Option<LinkMessage>, LinkError> {
    let mut s = handle.link().get().match_name(name.to_string()).execute();
    match s.try_next().await {
        Ok(m) => Ok(m),
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(nl(format!("look up {name}"))(e)),
    }
}

fn kind_of(msg: &LinkMessage) -> Option<InfoKind> {
    msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
            LinkInfo::Kind(k) => Some(k.clone()),
            _ => None,
        }),
        _ => None,
    })
}

async fn add_addr(
    handle: &Handle,
    index: u32,
    ip: Ipv4Addr,
    prefix: u8,
    ifname: &str,
) -> Result<(), LinkError> {
    match handle
        .address()
        .add(index, IpAddr::V4(ip), prefix)
        .execute()
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
        Err(e) => Err(nl(format!("add {ip}/{prefix} to {ifname}"))(e)),
    }
}

async fn set_up(handle: &Handle, index: u32, ifname: &str) -> Result<(), LinkError> {
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(nl(format!("set {ifname} up")))
}

/// Creates the bridge `name` with address `gateway/prefix` and sets it up.
/// Idempotent: an existing bridge is reused.
pub fn ensure_bridge(name: &str, gateway: Ipv4Addr, prefix: u8) -> Result<(), LinkError> {
    with_handle(|h| async move {
        let index = match index_of(&h, name).await? {
            Some(m) => {
                if kind_of(&m) != Some(InfoKind::Bridge) {
                    return Err(LinkError::NotBridge(name.to_string()));
                }
                m.header.index
            }
            None => {
                match h.link().add(LinkBridge::new(name).build()).execute().await {
                    Ok(()) => {}
                    Err(e) if errno(&e) == Some(libc::EEXIST) => {}
                    Err(e) => return Err(nl(format!("create bridge {name}"))(e)),
                }
                index_of(&h, name)
                    .await?
                    .ok_or_else(|| LinkError::NoLink(name.to_string()))?
                    .header
                    .index
            }
        };
        add_addr(&h, index, gateway, prefix, name).await?;
        set_up(&h, index, name).await
    })
}

/// Deletes the interface `name`; returns false when it did not exist.
/// Deleting one end of a veth pair deletes both.
pub fn delete_link(name: &str) -> Result<bool, LinkError> {
    with_handle(|h| async move {
        let Some(m) = index_of(&h, name).await? else {
            return Ok(false);
        };
        match h.link().del(m.header.index).execute().await {
            Ok(()) => Ok(true),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(nl(format!("delete {name}"))(e)),
        }
    })
}

/// Whether the interface `name` exists in berth's (the host's) namespace.
pub fn link_exists(name: &str) -> Result<bool, LinkError> {
    with_handle(|h| async move { Ok(index_of(&h, name).await?.is_some()) })
}

/// IPv4 addresses (with prefix) of the interface `name`.
pub fn addresses(name: &str) -> Result<Vec<(Ipv4Addr, u8)>, LinkError> {
    with_handle(|h| async move {
        let Some(m) = index_of(&h, name).await? else {
            return Err(LinkError::NoLink(name.to_string()));
        };
        let msgs: Vec<AddressMessage> = h
            .address()
            .get()
            .set_link_index_filter(m.header.index)
            .execute()
            .try_collect()
            .await
            .map_err(nl(format!("list addresses of {name}")))?;
        Ok(msgs
            .iter()
            .filter_map(|a| {
                a.attributes.iter().find_map(|at| match at {
                    AddressAttribute::Local(IpAddr::V4(ip))
                    | AddressAttribute::Address(IpAddr::V4(ip)) => Some((*ip, a.header.prefix_len)),
                    _ => None,
                })
            })
            .collect())
    })
}

/// What [`attach_veth`] sets up.
#[derive(Debug, Clone)]
pub struct VethSpec {
    /// The network's bridge.
    pub bridge: String,
    /// Host-side name of the veth (see `names::host_veth`).
    pub host_ifname: String,
    /// Path of the container's network namespace (`/proc/PID/ns/net`, a
    /// bind-mounted nsfs file under `/run/netns`, …).
    pub netns: PathBuf,
    /// Interface name inside the container (`eth0`, `eth1`, …).
    pub ifname: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    /// Add a default route via the gateway (the first network only).
    pub default_route: bool,
}

/// The container end's MAC address, derived from its IP as Docker does
/// (`02:42:` and the four address bytes: locally administered, unicast).
/// IPAM reuses released addresses, and the host's neighbour cache may still
/// map a reused address to the previous container's MAC; with the MAC a
/// function of the address, that cached entry stays right and a recreated
/// container is reachable at once.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = ip.octets();
    [0x02, 0x42, a, b, c, d]
}

/// Creates a veth pair between `spec.bridge` and the namespace, configures
/// the container end (address, up, loopback up, default route). On failure
/// the pair is deleted again.
pub fn attach_veth(spec: &VethSpec) -> Result<(), LinkError> {
    let netns = std::fs::File::open(&spec.netns).map_err(|source| LinkError::Netns {
        path: spec.netns.clone(),
        source,
    })?;
    let s = spec.clone();
    with_handle(|h| async move {
        let bridge = index_of(&h, &s.bridge)
            .await?
            .ok_or_else(|| LinkError::NoLink(s.bridge.clone()))?
            .header
            .index;
        let peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(s.ifname.clone())
            .address(mac_for(s.ip).to_vec())
            .setns_by_fd(netns.as_raw_fd())
            .build();
        let msg = LinkMessageBuilder::<LinkUnspec>::new_with_info_kind(InfoKind::Veth)
            .name(s.host_ifname.clone())
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .controller(bridge)
            .up()
            .build();
        h.link().add(msg).execute().await.map_err(nl(format!(
            "create veth {} for {}",
            s.host_ifname, s.bridge
        )))?;
        // Hairpin: with br_netfilter loaded, a container's packet DNAT-ed
        // back to itself (its own published port via a host address) is
        // bridged out of the port it came in on, which needs hairpin mode.
        let port = index_of(&h, &s.host_ifname)
            .await?
            .ok_or_else(|| LinkError::NoLink(s.host_ifname.clone()))?
            .header
            .index;
        let r = h
            .link()
            .set_port(LinkBridgePort::new(port).hairpin(true).build())
            .execute()
            .await
            .map_err(nl(format!("set hairpin mode on {}", s.host_ifname)));
        if r.is_err() {
            let _ = h.link().del(port).execute().await;
        }
        r
    })?;
    let s = spec.clone();
    let r = in_netns(&spec.netns, move || {
        with_handle(|h| async move {
            let lo = index_of(&h, "lo")
                .await?
                .ok_or_else(|| LinkError::NoLink("lo".into()))?;
            set_up(&h, lo.header.index, "lo").await?;
            let eth = index_of(&h, &s.ifname)
                .await?
                .ok_or_else(|| LinkError::NoLink(s.ifname.clone()))?
                .header
                .index;
            add_addr(&h, eth, s.ip, s.prefix, &s.ifname).await?;
            set_up(&h, eth, &s.ifname).await?;
            if s.default_route {
                let route = RouteMessageBuilder::<Ipv4Addr>::new()
                    .gateway(s.gateway)
                    .build();
                match h.route().add(route).execute().await {
                    Ok(()) => {}
                    Err(e) if errno(&e) == Some(libc::EEXIST) => {}
                    Err(e) => return Err(nl(format!("add default route via {}", s.gateway))(e)),
                }
            }
            Ok(())
        })
    });
    if r.is_err() {
        let _ = delete_link(&spec.host_ifname);
    }
    r
}

/// Names of the interfaces in the host namespace (for leak checks).
pub fn link_names() -> Result<Vec<String>, LinkError> {
    with_handle(|h| async move {
        let msgs: Vec<LinkMessage> = h
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(nl("list interfaces"))?;
        Ok(msgs
            .iter()
            .filter_map(|m| {
                m.attributes.iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n.clone()),
                    _ => None,
                })
            })
            .collect())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_follows_the_address_like_docker() {
        assert_eq!(
            mac_for(Ipv4Addr::new(10, 89, 0, 4)),
            [0x02, 0x42, 0x0a, 0x59, 0x00, 0x04]
        );
        assert_eq!(
            mac_for(Ipv4Addr::new(172, 17, 0, 2)),
            [0x02, 0x42, 0xac, 0x11, 0x00, 0x02]
        );
    }
}
