//! Container networking: bridges, address management, NAT, published ports
//! and names. [`Networks`] is the one entry point other parts use.
//!
//! A network is a Linux bridge with a gateway address and an IPv4 subnet
//! ([`ipam`], persisted by [`store`] in `ROOT/networks/`). A container is
//! attached by a veth pair into its network namespace ([`link`]), its
//! traffic leaves through masquerade and published ports come in through
//! DNAT, all in berth's own nftables table ([`nat`]). Host ports are checked
//! before anything is created ([`ports`]), and each container gets an
//! `/etc/hosts` kept current with its peers plus an `/etc/resolv.conf`
//! ([`hosts`]).
//!
//! Container lifecycle, as the runtime drives it:
//!
//! 1. [`Networks::preflight`] — parse `-p` specs, check and choose host
//!    ports; creates nothing.
//! 2. [`Networks::prepare`] — on create: allocate addresses, record the
//!    published ports, write `hosts` and `resolv.conf` (to bind-mount).
//! 3. [`Networks::plug`] — on start, once the netns exists and before the
//!    container's process runs: veths, addresses, routes, DNAT rules, and
//!    peers' hosts files.
//! 4. [`Networks::unplug`] — on stop: veths and DNAT rules go, the
//!    addresses stay allocated (the container keeps them on restart).
//! 5. [`Networks::release`] — on rm: everything of the container goes.
//!
//! [`Networks::repair`] is run by the next command after a crash with (a
//! function returning) the set of containers that still exist.

pub mod conntrack;
pub mod feed;
pub mod forward_policy;
pub mod hosts;
pub mod ipam;
pub mod link;
pub mod names;
pub mod nat;
pub mod ports;
pub mod portspec;
pub mod store;

use std::collections::{BTreeSet, HashSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::state::{StateLock, StateRoot};
use ipam::Ipv4Net;
pub use ports::PortBinding;
pub use portspec::{PortRequest, Proto};
pub use store::{Endpoint, NetworkRecord, PublishedPort};

/// Name of the default network of `run`.
pub const DEFAULT_NETWORK: &str = "berth0";

/// Errors of network operations.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error(transparent)]
    Ipam(#[from] ipam::IpamError),
    #[error(transparent)]
    Link(#[from] link::LinkError),
    #[error(transparent)]
    Nat(#[from] nat::NatError),
    #[error(transparent)]
    Ports(#[from] ports::PortsError),
    #[error(transparent)]
    PortSpec(#[from] portspec::PortSpecError),
    #[error(transparent)]
    Hosts(#[from] hosts::HostsError),
    #[error("network {0} not found")]
    NotFound(String),
    #[error("network id prefix {0} is ambiguous; give more of the id or the name")]
    Ambiguous(String),
    #[error("network with name {0} already exists")]
    Exists(String),
    #[error("invalid network name {0:?}: use letters, digits, '_', '.', '-', starting with a letter or digit")]
    BadName(String),
    #[error(
        "invalid alias {0:?}: use letters, digits, '_', '.', '-', starting with a letter or digit"
    )]
    BadAlias(String),
    #[error("network {name} has active endpoints ({containers}); remove or disconnect them first")]
    InUse { name: String, containers: String },
    #[error("{0} is berth's default network and cannot be removed")]
    Default(String),
    #[error("invalid network config in {path}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error("container {container} is not connected to network {network}")]
    NotConnected { container: String, network: String },
    #[error("container {container} is already connected to network {network}")]
    AlreadyConnected { container: String, network: String },
}

/// Options of `network create`.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub name: String,
    pub subnet: Option<Ipv4Net>,
    pub internal: bool,
    pub labels: std::collections::BTreeMap<String, String>,
}

/// One network a container joins, with its aliases there.
#[derive(Debug, Clone)]
pub struct Join {
    /// Network name or id; the default network when `None`.
    pub network: Option<String>,
    pub aliases: Vec<String>,
}

/// What [`Networks::prepare`] needs to know about a container.
#[derive(Debug, Clone)]
pub struct Prepare {
    pub container_id: String,
    pub name: String,
    pub hostname: Option<String>,
    /// Networks in order; the first one carries the default route and the
    /// published ports. Empty means the default network.
    pub joins: Vec<Join>,
    /// Host ports chosen by [`Networks::preflight`].
    pub ports: Vec<PortBinding>,
}

/// The files a container bind-mounts and what it was given.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub hosts: PathBuf,
    pub resolv_conf: PathBuf,
    /// (network name, endpoint) in interface order.
    pub endpoints: Vec<(String, Endpoint)>,
    pub ports: Vec<PublishedPort>,
}

/// What [`Networks::repair`] cleaned up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    pub freed_endpoints: Vec<String>,
    pub removed_ports: usize,
    pub removed_rule_owners: Vec<String>,
    pub recreated_bridges: Vec<String>,
    /// Networks whose nft rules were missing and were put back.
    pub restored_rules: Vec<String>,
}

/// Network settings from the `[network]` table of `ROOT/config.toml`:
/// `default_subnet = "10.88.0.0/16"` (the subnet of the default network).
#[derive(Debug, Clone, Default)]
pub struct NetConfig {
    pub default_subnet: Option<Ipv4Net>,
}

impl NetConfig {
    pub fn load(root: &StateRoot) -> Result<Self, NetError> {
        let path = root.path().join("config.toml");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => {
                return Err(NetError::Config {
                    path,
                    reason: e.to_string(),
                })
            }
        };
        let bad = |reason: String| NetError::Config {
            path: path.clone(),
            reason,
        };
        let v: toml::Value = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let subnet = match v.get("network").and_then(|n| n.get("default_subnet")) {
            None => None,
            Some(s) => Some(
                s.as_str()
                    .ok_or_else(|| bad("network.default_subnet must be a string".into()))?
                    .parse::<Ipv4Net>()
                    .map_err(|e| bad(e.to_string()))?,
            ),
        };
        Ok(Self {
            default_subnet: subnet,
        })
    }
}

/// The subnet tried for the default network when none is configured.
pub const DEFAULT_SUBNET: &str = "10.88.0.0/16";

/// Host-wide lock serialising subnet choice and bridge creation between
/// state roots (two roots must not pick the same free subnet at once).
fn host_lock() -> Result<StateLock, NetError> {
    let dir = Path::new("/run/berth");
    std::fs::create_dir_all(dir).map_err(|source| crate::state::StateError::Create {
        path: dir.to_path_buf(),
        source,
    })?;
    Ok(StateLock::acquire(&dir.join("subnets.lock"))?)
}

/// The networks of one state root.
#[derive(Debug, Clone)]
pub struct Networks {
    root: StateRoot,
    nat: nat::Nat,
    config: NetConfig,
}

impl Networks {
    pub fn open(root: &StateRoot) -> Result<Self, NetError> {
        Ok(Self {
            root: root.clone(),
            nat: nat::Nat::new(&names::nft_table(root.path())),
            config: NetConfig::load(root)?,
        })
    }

    /// berth's nft table for this root.
    pub fn nat(&self) -> &nat::Nat {
        &self.nat
    }

    pub fn list(&self) -> Result<Vec<NetworkRecord>, NetError> {
        Ok(store::load_all(&self.root)?)
    }

    /// Finds a network by name, full id or unique id prefix.
    pub fn get(&self, key: &str) -> Result<NetworkRecord, NetError> {
        find(&self.list()?, key).cloned()
    }

    /// Creates a network and its bridge and rules.
    pub fn create(&self, opts: &CreateOptions) -> Result<NetworkRecord, NetError> {
        if !names::valid_name(&opts.name) {
            return Err(NetError::BadName(opts.name.clone()));
        }
        let _lock = self.root.lock()?;
        self.create_locked(opts, false)
    }

    fn create_locked(
        &self,
        opts: &CreateOptions,
        default: bool,
    ) -> Result<NetworkRecord, NetError> {
        let all = self.list()?;
        if all.iter().any(|n| n.name == opts.name) {
            return Err(NetError::Exists(opts.name.clone()));
        }
        let _host = host_lock()?;
        let routes = ipam::host_routes()?;
        let known: Vec<(String, Ipv4Net)> =
            all.iter().map(|n| (n.name.clone(), n.subnet)).collect();
        let subnet = match opts.subnet {
            Some(s) => {
                ipam::check_free(s, &routes, &known)?;
                s
            }
            None if default => {
                let want: Ipv4Net = DEFAULT_SUBNET.parse().expect("valid default subnet");
                if ipam::check_free(want, &routes, &known).is_ok() {
                    want
                } else {
                    ipam::pick_subnet(&routes, &known)?
                }
            }
            None => ipam::pick_subnet(&routes, &known)?,
        };
        let mut rec = NetworkRecord::new(&opts.name, subnet, "", opts.internal);
        rec.bridge = if default {
            names::default_bridge(self.root.path())
        } else {
            names::bridge_for(&rec.id)
        };
        rec.default = default;
        rec.labels = opts.labels.clone();
        // Record first: a crash after this leaves a record whose kernel
        // objects `repair` re-creates, never kernel objects nobody owns.
        store::save(&self.root, &rec)?;
        if let Err(e) = self.setup_kernel(&rec, true) {
            let _ = self.teardown_kernel(&rec);
            let _ = store::delete(&self.root, &rec);
            return Err(e);
        }
        Ok(rec)
    }

    fn net_rules(&self, rec: &NetworkRecord) -> nat::NetRules {
        let (host, upstream) = hosts::host_resolv();
        let (_, via_gateway) = hosts::render_resolv(&host, upstream.as_deref(), rec.gateway);
        let dns_forward = via_gateway.then(|| loopback_resolver(&host)).flatten();
        nat::NetRules {
            network_id: rec.id.clone(),
            bridge: rec.bridge.clone(),
            subnet: rec.subnet,
            gateway: rec.gateway,
            internal: rec.internal,
            dns_forward,
        }
    }

    /// Makes the network's bridge and rules; `fresh` for a network just
    /// made (no earlier rules of it can exist).
    fn setup_kernel(&self, rec: &NetworkRecord, fresh: bool) -> Result<(), NetError> {
        link::ensure_bridge(&rec.bridge, rec.gateway, rec.subnet.prefix())?;
        nat::enable_forwarding()?;
        nat::enable_route_localnet(&rec.bridge)?;
        if fresh {
            self.nat.add_new_network(&self.net_rules(rec))?;
        } else {
            self.nat.add_network(&self.net_rules(rec))?;
        }
        if let Err(e) = forward_policy::ensure(&self.nat.table, &forward_bridge(rec)) {
            tracing::warn!("containers on network {} may not reach anything: iptables' FORWARD chain drops forwarded packets and berth could not add its accept rules: {e}", rec.name);
        }
        Ok(())
    }

    /// Keeps berth's accept rules in a dropping iptables FORWARD chain in
    /// step with the networks (see [`forward_policy`]); a failure is a
    /// warning, since most machines need no such rules at all.
    fn reconcile_forward_policy(&self, all: &[NetworkRecord]) {
        let bridges: Vec<forward_policy::Bridge> = all.iter().map(forward_bridge).collect();
        if let Err(e) = forward_policy::reconcile(&self.nat.table, &bridges) {
            tracing::warn!("cannot keep berth's accept rules in iptables' FORWARD chain: {e}");
        }
    }

    fn remove_forward_rules(&self, rec: &NetworkRecord) {
        if let Err(e) = forward_policy::remove(&self.nat.table, &forward_bridge(rec)) {
            tracing::warn!("cannot remove berth's accept rules from iptables' FORWARD chain: {e}");
        }
    }

    fn teardown_kernel(&self, rec: &NetworkRecord) -> Result<(), NetError> {
        self.remove_forward_rules(rec);
        self.nat.remove_owners(&[nat::net_owner(&rec.id)])?;
        link::delete_link(&rec.bridge)?;
        Ok(())
    }

    /// The default network, created on first use.
    pub fn ensure_default(&self) -> Result<NetworkRecord, NetError> {
        let _lock = self.root.lock()?;
        self.ensure_default_locked()
    }

    fn ensure_default_locked(&self) -> Result<NetworkRecord, NetError> {
        if let Some(n) = self.list()?.into_iter().find(|n| n.default) {
            return Ok(n);
        }
        let opts = CreateOptions {
            name: DEFAULT_NETWORK.into(),
            subnet: self.config.default_subnet,
            ..Default::default()
        };
        self.create_locked(&opts, true)
    }

    /// Removes a user network with no endpoints.
    pub fn remove(&self, key: &str) -> Result<NetworkRecord, NetError> {
        let _lock = self.root.lock()?;
        let rec = self.get(key)?;
        if rec.default {
            return Err(NetError::Default(rec.name));
        }
        self.remove_locked(rec)
    }

    fn remove_locked(&self, rec: NetworkRecord) -> Result<NetworkRecord, NetError> {
        if !rec.endpoints.is_empty() {
            return Err(NetError::InUse {
                name: rec.name.clone(),
                containers: rec
                    .endpoints
                    .values()
                    .map(|e| e.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let last = self.list()?.iter().all(|n| n.id == rec.id);
        if last {
            // The table goes below, and every rule with it: no need to find
            // this network's rules first.
            self.remove_forward_rules(&rec);
            link::delete_link(&rec.bridge)?;
        } else {
            self.teardown_kernel(&rec)?;
        }
        store::delete(&self.root, &rec)?;
        if last {
            self.nat.delete_table()?;
        }
        Ok(rec)
    }

    /// Removes every user network without endpoints; returns their names.
    pub fn prune(&self) -> Result<Vec<String>, NetError> {
        let _lock = self.root.lock()?;
        let mut out = Vec::new();
        for rec in self.list()? {
            if !rec.default && rec.endpoints.is_empty() {
                out.push(self.remove_locked(rec)?.name);
            }
        }
        Ok(out)
    }

    /// Removes every network, the default one included, if none has
    /// endpoints (for `system prune` and test teardown).
    pub fn remove_all(&self) -> Result<Vec<String>, NetError> {
        let _lock = self.root.lock()?;
        let mut out = Vec::new();
        for rec in self.list()? {
            out.push(self.remove_locked(rec)?.name);
        }
        self.nat.delete_table()?;
        Ok(out)
    }

    /// Parses `-p` specs, checks every host port (against the host's
    /// sockets and berth's own published ports) and chooses ports for
    /// ranges and random requests. Creates nothing.
    pub fn preflight<S: AsRef<str>>(&self, specs: &[S]) -> Result<Vec<PortBinding>, NetError> {
        let reqs = portspec::parse_all(specs)?;
        self.preflight_requests(&reqs)
    }

    /// [`Networks::preflight`] for already parsed requests (e.g. `-P`).
    pub fn preflight_requests(&self, reqs: &[PortRequest]) -> Result<Vec<PortBinding>, NetError> {
        let table = store::load_ports(&self.root)?;
        Ok(ports::preflight(reqs, &table)?)
    }

    /// Checks the fixed host ports of `-p` specs before anything is made
    /// for them (`berth up` does, for every service it may start, before it
    /// builds or creates): each must be free on the host and in berth's
    /// table, where the ports of the containers in `reusable` (a project's
    /// own, which `up` keeps or replaces) count as free. Random and range
    /// requests are left to the container's own preflight.
    pub fn check_free<S: AsRef<str>>(
        &self,
        specs: &[S],
        reusable: &[String],
    ) -> Result<(), NetError> {
        self.check_free_requests(&portspec::parse_all(specs)?, reusable)
    }

    /// [`Networks::check_free`] of parsed requests.
    pub fn check_free_requests(
        &self,
        requests: &[PortRequest],
        reusable: &[String],
    ) -> Result<(), NetError> {
        let fixed: Vec<PortRequest> = requests
            .iter()
            .filter(|r| matches!(r.host, portspec::HostPort::Fixed(_)))
            .copied()
            .collect();
        let mut table = store::load_ports(&self.root)?;
        table.retain(|p| !reusable.contains(&p.container_id));
        ports::preflight(&fixed, &table)?;
        Ok(())
    }

    /// Published ports of all containers (or of one).
    pub fn published(&self, container_id: Option<&str>) -> Result<Vec<PublishedPort>, NetError> {
        let mut t = store::load_ports(&self.root)?;
        if let Some(c) = container_id {
            t.retain(|p| p.container_id == c);
        }
        Ok(t)
    }

    /// Allocates addresses, records ports and writes the name files.
    pub fn prepare(&self, p: &Prepare) -> Result<Prepared, NetError> {
        for j in &p.joins {
            if let Some(a) = j.aliases.iter().find(|a| !names::valid_name(a)) {
                return Err(NetError::BadAlias(a.clone()));
            }
        }
        let _lock = self.root.lock()?;
        let joins = if p.joins.is_empty() {
            vec![Join {
                network: None,
                aliases: Vec::new(),
            }]
        } else {
            p.joins.clone()
        };
        // Resolve all networks before changing anything.
        let mut recs = Vec::new();
        for j in &joins {
            let rec = match &j.network {
                None => self.ensure_default_locked()?,
                Some(k) if k == DEFAULT_NETWORK => self.ensure_default_locked()?,
                Some(k) => self.get(k)?,
            };
            recs.push(rec);
        }
        // Ports are checked again under the lock: another command may have
        // taken one since the caller's preflight.
        let mut table = store::load_ports(&self.root)?;
        table.retain(|t| t.container_id != p.container_id);
        for b in &p.ports {
            if let Some(e) = ports::holder(b.host_ip, b.host_port, b.proto, &[], &table) {
                return Err(e.into());
            }
        }
        let mut endpoints = Vec::new();
        let mut changed = Vec::new();
        for (i, (mut rec, j)) in recs.into_iter().zip(&joins).enumerate() {
            ipam::allocate(&mut rec, &p.container_id, &p.name, &j.aliases)?;
            let ep = rec
                .endpoints
                .get_mut(&p.container_id)
                .expect("just allocated");
            ep.ifname = format!("eth{i}");
            ep.hostname = p.hostname.clone();
            endpoints.push((rec.name.clone(), ep.clone()));
            changed.push(rec);
        }
        for rec in &changed {
            store::save(&self.root, rec)?;
        }
        let first_ip = endpoints[0].1.ip;
        let mine: Vec<PublishedPort> = p
            .ports
            .iter()
            .map(|b| PublishedPort {
                container_id: p.container_id.clone(),
                container_name: p.name.clone(),
                host_ip: b.host_ip,
                host_port: b.host_port,
                proto: b.proto,
                container_ip: first_ip,
                container_port: b.container_port,
            })
            .collect();
        table.extend(mine.iter().cloned());
        store::save_ports(&self.root, &table)?;
        let dir = store::container_dir(&self.root, &p.container_id)?;
        let (host, upstream) = hosts::host_resolv();
        let (resolv, _) = hosts::render_resolv(&host, upstream.as_deref(), changed[0].gateway);
        hosts::write_in_place(&dir.join("resolv.conf"), &resolv)?;
        self.refresh_hosts(&changed.iter().map(|r| r.id.clone()).collect::<Vec<_>>())?;
        Ok(Prepared {
            hosts: dir.join("hosts"),
            resolv_conf: dir.join("resolv.conf"),
            endpoints,
            ports: mine,
        })
    }

    /// Rewrites the hosts file of every container on the given networks.
    fn refresh_hosts(&self, network_ids: &[String]) -> Result<(), NetError> {
        let all = self.list()?;
        let mut containers: BTreeSet<String> = BTreeSet::new();
        for n in all.iter().filter(|n| network_ids.contains(&n.id)) {
            containers.extend(n.endpoints.keys().cloned());
        }
        for c in containers {
            let mut own = Vec::new();
            let mut peers = Vec::new();
            for n in all.iter().filter(|n| n.endpoints.contains_key(&c)) {
                let me = &n.endpoints[&c];
                let mut names: Vec<String> = me.hostname.iter().cloned().collect();
                names.push(me.name.clone());
                names.extend(me.aliases.iter().cloned());
                own.push(hosts::HostEntry { ip: me.ip, names });
                for (id, e) in &n.endpoints {
                    if id != &c {
                        let mut names = vec![e.name.clone()];
                        names.extend(e.aliases.iter().cloned());
                        peers.push(hosts::HostEntry { ip: e.ip, names });
                    }
                }
            }
            let dir = store::container_dir(&self.root, &c)?;
            hosts::write_in_place(&dir.join("hosts"), &hosts::render_hosts(&own, &peers))?;
        }
        Ok(())
    }

    /// Connects the prepared container to its networks inside `netns` and
    /// installs its published ports. On failure, what was made is removed.
    pub fn plug(&self, container_id: &str, netns: &Path) -> Result<(), NetError> {
        let _lock = self.root.lock()?;
        let mut eps: Vec<(NetworkRecord, Endpoint)> = self
            .list()?
            .into_iter()
            .filter_map(|n| n.endpoints.get(container_id).cloned().map(|e| (n, e)))
            .collect();
        eps.sort_by(|a, b| a.1.ifname.cmp(&b.1.ifname));
        let r = (|| {
            for (n, e) in &eps {
                self.plug_one(n, e, netns)?;
            }
            let table = store::load_ports(&self.root)?;
            let dnat: Vec<nat::Dnat> = table
                .iter()
                .filter(|p| p.container_id == container_id)
                .map(|p| nat::Dnat {
                    host_ip: p.host_ip,
                    host_port: p.host_port,
                    proto: p.proto,
                    container_ip: p.container_ip,
                    container_port: p.container_port,
                })
                .collect();
            if !dnat.is_empty() {
                self.nat.add_container(container_id, &dnat)?;
            }
            Ok(())
        })();
        if r.is_err() {
            let _ = self.unplug_locked(container_id);
        }
        r
    }

    fn plug_one(&self, n: &NetworkRecord, e: &Endpoint, netns: &Path) -> Result<(), NetError> {
        // After a reboot the bridge is gone: make it again.
        if !link::link_exists(&n.bridge)? {
            self.setup_kernel(n, false)?;
        }
        let host_if = names::host_veth(&e.container_id, &n.id);
        link::delete_link(&host_if)?; // a stale pair of an earlier start
        link::attach_veth(&link::VethSpec {
            bridge: n.bridge.clone(),
            host_ifname: host_if,
            netns: netns.to_path_buf(),
            ifname: e.ifname.clone(),
            ip: e.ip,
            prefix: n.subnet.prefix(),
            gateway: n.gateway,
            default_route: e.ifname == "eth0",
        })?;
        Ok(())
    }

    /// Removes the container's veths and DNAT rules; keeps its addresses.
    pub fn unplug(&self, container_id: &str) -> Result<(), NetError> {
        let _lock = self.root.lock()?;
        self.unplug_locked(container_id)
    }

    fn unplug_locked(&self, container_id: &str) -> Result<(), NetError> {
        // DNAT rules exist only for containers with published ports (`plug`
        // installs them from the ports table, which keeps them until
        // `release`); skip the two `nft` runs (~20 ms each) otherwise, which
        // is every `--network none` container.
        let has_ports = store::load_ports(&self.root)?
            .iter()
            .any(|p| p.container_id == container_id);
        if has_ports {
            self.nat.remove_owners(&[nat::ctr_owner(container_id)])?;
        }
        for n in self.list()? {
            if let Some(endpoint) = n.endpoints.get(container_id) {
                link::delete_link(&names::host_veth(container_id, &n.id))?;
                if has_ports {
                    conntrack::forget(endpoint.ip);
                }
            }
        }
        Ok(())
    }

    /// Everything of a removed container goes: veths, rules, addresses,
    /// published ports, name files; peers' hosts files are rewritten.
    pub fn release(&self, container_id: &str) -> Result<(), NetError> {
        let _lock = self.root.lock()?;
        self.release_locked(container_id)
    }

    fn release_locked(&self, container_id: &str) -> Result<(), NetError> {
        self.unplug_locked(container_id)?;
        let mut changed = Vec::new();
        for mut n in self.list()? {
            if ipam::release(&mut n, container_id).is_some() {
                store::save(&self.root, &n)?;
                changed.push(n.id.clone());
            }
        }
        let mut table = store::load_ports(&self.root)?;
        let before = table.len();
        table.retain(|p| p.container_id != container_id);
        if table.len() != before {
            store::save_ports(&self.root, &table)?;
        }
        let dir = self
            .root
            .path()
            .join("networks/containers")
            .join(container_id);
        let _ = std::fs::remove_dir_all(dir);
        self.refresh_hosts(&changed)?;
        self.drop_empty_default()
    }

    /// The default network exists only while a container uses it: berth has
    /// no daemon to own an idle bridge, so an empty one is removed (and made
    /// again by the next container that needs it).
    fn drop_empty_default(&self) -> Result<(), NetError> {
        if let Some(d) = self
            .list()?
            .into_iter()
            .find(|n| n.default && n.endpoints.is_empty())
        {
            self.remove_locked(d)?;
        }
        Ok(())
    }

    /// Connects an existing container to one more network (`network
    /// connect`). `netns` is given when the container is running.
    pub fn connect(
        &self,
        container_id: &str,
        name: &str,
        network: &str,
        aliases: &[String],
        netns: Option<&Path>,
    ) -> Result<Endpoint, NetError> {
        if let Some(a) = aliases.iter().find(|a| !names::valid_name(a)) {
            return Err(NetError::BadAlias(a.clone()));
        }
        let _lock = self.root.lock()?;
        let all = self.list()?;
        let mut rec = find(&all, network)?.clone();
        if rec.endpoints.contains_key(container_id) {
            return Err(NetError::AlreadyConnected {
                container: name.into(),
                network: rec.name,
            });
        }
        let used: Vec<&str> = all
            .iter()
            .filter_map(|n| n.endpoints.get(container_id))
            .map(|e| e.ifname.as_str())
            .collect();
        let ifname = (0..)
            .map(|i| format!("eth{i}"))
            .find(|n| !used.contains(&n.as_str()))
            .expect("unbounded");
        let hostname = all
            .iter()
            .find_map(|n| n.endpoints.get(container_id))
            .and_then(|e| e.hostname.clone());
        ipam::allocate(&mut rec, container_id, name, aliases)?;
        let ep = rec.endpoints.get_mut(container_id).expect("allocated");
        ep.ifname = ifname;
        ep.hostname = hostname;
        let ep = ep.clone();
        if let Some(ns) = netns {
            self.plug_one(&rec, &ep, ns)?;
        }
        store::save(&self.root, &rec)?;
        self.refresh_hosts(&[rec.id.clone()])?;
        Ok(ep)
    }

    /// Disconnects a container from one network (`network disconnect`).
    pub fn disconnect(&self, container_id: &str, network: &str) -> Result<(), NetError> {
        let _lock = self.root.lock()?;
        let mut rec = self.get(network)?;
        let Some(ep) = ipam::release(&mut rec, container_id) else {
            return Err(NetError::NotConnected {
                container: container_id.into(),
                network: rec.name,
            });
        };
        link::delete_link(&names::host_veth(container_id, &rec.id))?;
        store::save(&self.root, &rec)?;
        self.refresh_hosts(&[rec.id.clone()])?;
        // The container's own file no longer lists this network's peers.
        let _ = ep;
        self.refresh_container(container_id)
    }

    fn refresh_container(&self, container_id: &str) -> Result<(), NetError> {
        let ids: Vec<String> = self
            .list()?
            .into_iter()
            .filter(|n| n.endpoints.contains_key(container_id))
            .map(|n| n.id)
            .collect();
        self.refresh_hosts(&ids)
    }

    /// Frees what belongs to containers not in `live` (allocations, ports,
    /// veths, rules, name files), removes rules of vanished networks and
    /// re-creates missing bridges of known networks. Safe to run any time.
    ///
    /// `live` is evaluated under the root lock: a container recorded before
    /// its network allocations are made (the runtime's order) can then never
    /// be mistaken for a dead one by a concurrent repair.
    pub fn repair(&self, live: impl FnOnce() -> HashSet<String>) -> Result<RepairReport, NetError> {
        let _lock = self.root.lock()?;
        let live = &live();
        let mut report = RepairReport::default();
        let mut changed = Vec::new();
        // One listing of berth's rules serves the whole repair; it is read
        // again only after something was re-added (each `nft` run costs).
        let mut rules = self.nat.rules()?;
        let mut rules_changed = false;
        for mut n in self.list()? {
            let freed = ipam::reconcile(&mut n, live);
            if !freed.is_empty() {
                for e in &freed {
                    link::delete_link(&names::host_veth(&e.container_id, &n.id))?;
                    report
                        .freed_endpoints
                        .push(format!("{}:{}", n.name, e.name));
                }
                store::save(&self.root, &n)?;
                changed.push(n.id.clone());
            }
            if !link::link_exists(&n.bridge)? {
                self.setup_kernel(&n, false)?;
                report.recreated_bridges.push(n.bridge.clone());
                rules_changed = true;
            } else if !rules
                .iter()
                .any(|r| r.owner.as_deref() == Some(&*nat::net_owner(&n.id)))
            {
                // The bridge survived but berth's rules did not (e.g. someone
                // flushed the ruleset): put them back.
                self.setup_kernel(&n, false)?;
                report.restored_rules.push(n.name.clone());
                rules_changed = true;
            }
        }
        if rules_changed {
            rules = self.nat.rules()?;
            rules_changed = false;
        }
        let mut table = store::load_ports(&self.root)?;
        let before = table.len();
        table.retain(|p| live.contains(&p.container_id));
        report.removed_ports = before - table.len();
        if report.removed_ports > 0 {
            store::save_ports(&self.root, &table)?;
        }
        // Running containers (their veth exists) whose DNAT rules vanished
        // get them back.
        let all = self.list()?;
        let mut by_ctr: std::collections::BTreeMap<&str, Vec<nat::Dnat>> = Default::default();
        for p in &table {
            by_ctr.entry(&p.container_id).or_default().push(nat::Dnat {
                host_ip: p.host_ip,
                host_port: p.host_port,
                proto: p.proto,
                container_ip: p.container_ip,
                container_port: p.container_port,
            });
        }
        for (c, dnat) in by_ctr {
            let owner = nat::ctr_owner(c);
            let plugged = all.iter().any(|n| {
                n.endpoints.contains_key(c)
                    && link::link_exists(&names::host_veth(c, &n.id)).unwrap_or(false)
            });
            if plugged && !rules.iter().any(|r| r.owner.as_deref() == Some(&*owner)) {
                self.nat.add_container(c, &dnat)?;
                report.restored_rules.push(c.to_string());
                rules_changed = true;
            }
        }
        self.reconcile_forward_policy(&all);
        let nets: Vec<String> = all.into_iter().map(|n| n.id).collect();
        let live_v: Vec<String> = live.iter().cloned().collect();
        if rules_changed {
            rules = self.nat.rules()?;
        }
        report.removed_rule_owners = self.nat.repair(&rules, &live_v, &nets)?;
        if let Ok(dirs) = std::fs::read_dir(self.root.path().join("networks/containers")) {
            for d in dirs.flatten() {
                if !live.contains(&*d.file_name().to_string_lossy()) {
                    let _ = std::fs::remove_dir_all(d.path());
                }
            }
        }
        self.refresh_hosts(&changed)?;
        self.drop_empty_default()?;
        Ok(report)
    }
}

/// What `--network MODE` means for berth networks: `None` for `none` and
/// `host` (no berth network), `Some(None)` for the default network
/// (`default`, `bridge`, `berth0`), `Some(Some(name))` for a user network.
pub fn mode_network(mode: &str) -> Option<Option<&str>> {
    match mode {
        "none" | "host" => None,
        "default" | "bridge" | DEFAULT_NETWORK => Some(None),
        name => Some(Some(name)),
    }
}

impl Networks {
    /// The container's generated `hosts` and `resolv.conf`, if it was
    /// prepared on a berth network.
    pub fn files(&self, container_id: &str) -> Option<(PathBuf, PathBuf)> {
        let dir = self
            .root
            .path()
            .join("networks/containers")
            .join(container_id);
        let (h, r) = (dir.join("hosts"), dir.join("resolv.conf"));
        (h.is_file() && r.is_file()).then_some((h, r))
    }

    /// The container's endpoints as (network name, endpoint), in interface
    /// order.
    pub fn endpoints_of(&self, container_id: &str) -> Result<Vec<(String, Endpoint)>, NetError> {
        let mut out: Vec<(String, Endpoint)> = self
            .list()?
            .into_iter()
            .filter_map(|n| n.endpoints.get(container_id).cloned().map(|e| (n.name, e)))
            .collect();
        out.sort_by(|a, b| a.1.ifname.cmp(&b.1.ifname));
        Ok(out)
    }
}

/// Finds a network by name, full id or unique id prefix.
fn find<'a>(all: &'a [NetworkRecord], key: &str) -> Result<&'a NetworkRecord, NetError> {
    if let Some(n) = all.iter().find(|n| n.name == key || n.id == key) {
        return Ok(n);
    }
    let hits: Vec<&NetworkRecord> = all
        .iter()
        .filter(|n| !key.is_empty() && n.id.starts_with(key))
        .collect();
    match hits.as_slice() {
        [one] => Ok(one),
        [] => Err(NetError::NotFound(key.to_string())),
        _ => Err(NetError::Ambiguous(key.to_string())),
    }
}

/// The host's first IPv4 loopback name server (e.g. 127.0.0.53).
fn loopback_resolver(resolv: &str) -> Option<Ipv4Addr> {
    resolv.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        (w.next() == Some("nameserver"))
            .then(|| w.next()?.parse::<Ipv4Addr>().ok())
            .flatten()
            .filter(|ip| ip.is_loopback())
    })
}

fn forward_bridge(rec: &NetworkRecord) -> forward_policy::Bridge {
    forward_policy::Bridge {
        network_id: rec.id.clone(),
        name: rec.bridge.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_by_name_id_and_prefix() {
        let mut a = NetworkRecord::new("web", "10.89.1.0/24".parse().unwrap(), "br-a", false);
        a.id = format!("abc{}", "0".repeat(61));
        let mut b = NetworkRecord::new("db", "10.89.2.0/24".parse().unwrap(), "br-b", false);
        b.id = format!("abd{}", "0".repeat(61));
        let all = vec![a, b];
        assert_eq!(find(&all, "web").unwrap().name, "web");
        assert_eq!(find(&all, "abd").unwrap().name, "db");
        assert!(matches!(find(&all, "ab"), Err(NetError::Ambiguous(_))));
        assert!(matches!(find(&all, "zz"), Err(NetError::NotFound(_))));
        assert!(matches!(find(&all, ""), Err(NetError::NotFound(_))));
    }

    #[test]
    fn network_modes() {
        assert_eq!(mode_network("none"), None);
        assert_eq!(mode_network("host"), None);
        assert_eq!(mode_network("default"), Some(None));
        assert_eq!(mode_network("bridge"), Some(None));
        assert_eq!(mode_network("berth0"), Some(None));
        assert_eq!(mode_network("web"), Some(Some("web")));
    }

    #[test]
    fn loopback_resolver_is_found() {
        assert_eq!(
            loopback_resolver("nameserver 127.0.0.53\n"),
            Some("127.0.0.53".parse().unwrap())
        );
        assert_eq!(loopback_resolver("nameserver 1.1.1.1\n"), None);
    }

    #[test]
    fn config_default_subnet() {
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::open(dir.path()).unwrap();
        assert!(NetConfig::load(&root).unwrap().default_subnet.is_none());
        std::fs::write(
            dir.path().join("config.toml"),
            "[registry]\nx = 1\n[network]\ndefault_subnet = \"10.77.0.0/16\"\n",
        )
        .unwrap();
        assert_eq!(
            NetConfig::load(&root)
                .unwrap()
                .default_subnet
                .unwrap()
                .to_string(),
            "10.77.0.0/16"
        );
        std::fs::write(
            dir.path().join("config.toml"),
            "[network]\ndefault_subnet = \"10.77.0.1/16\"\n",
        )
        .unwrap();
        let e = NetConfig::load(&root).unwrap_err().to_string();
        assert!(e.contains("invalid subnet"), "{e}");
    }
}
