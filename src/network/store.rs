//! Persistent network records: `ROOT/networks/<id>.json`, one per network,
//! holding its definition and its address allocations (endpoints), and
//! `ROOT/networks/ports.json`, the table of published host ports.
//!
//! Records are written with `state::write_json_atomic` while the caller
//! holds `StateRoot::lock()`; readers may read without the lock and always
//! see a complete file.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ipam::Ipv4Net;
use super::portspec::Proto;
use crate::state::{self, StateRoot};

/// Errors reading or writing network records.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("corrupt network record {path}: {source}; remove it and run berth network prune")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot remove {path}: {source}")]
    Remove {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One container's attachment to a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub container_id: String,
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub ip: Ipv4Addr,
    pub endpoint_id: String,
    /// Interface name inside the container (`eth0` for its first network).
    #[serde(default = "default_ifname")]
    pub ifname: String,
    /// The container's hostname, listed with its own address.
    #[serde(default)]
    pub hostname: Option<String>,
}

fn default_ifname() -> String {
    "eth0".into()
}

/// A network: a bridge, its subnet and the addresses handed out on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub id: String,
    pub name: String,
    pub driver: String,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub bridge: String,
    pub internal: bool,
    /// The default network of `run` (cannot be removed by `network rm`).
    #[serde(default)]
    pub default: bool,
    pub created: chrono::DateTime<chrono::Utc>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Allocations by container id.
    #[serde(default)]
    pub endpoints: BTreeMap<String, Endpoint>,
}

impl NetworkRecord {
    /// A fresh record with a random id.
    pub fn new(name: &str, subnet: Ipv4Net, bridge: &str, internal: bool) -> Self {
        Self {
            id: super::names::random_id(),
            name: name.to_string(),
            driver: "bridge".into(),
            gateway: subnet.gateway(),
            subnet,
            bridge: bridge.to_string(),
            internal,
            default: false,
            created: chrono::Utc::now(),
            labels: BTreeMap::new(),
            endpoints: BTreeMap::new(),
        }
    }
}

/// A host port published to a container port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedPort {
    pub container_id: String,
    pub container_name: String,
    /// `None`: every host address.
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub proto: Proto,
    pub container_ip: Ipv4Addr,
    pub container_port: u16,
}

impl PublishedPort {
    /// Docker's `port` line: `80/tcp -> 0.0.0.0:8080`.
    pub fn docker_line(&self) -> String {
        let ip = match self.host_ip {
            None => "0.0.0.0".to_string(),
            Some(IpAddr::V6(v6)) => format!("[{v6}]"),
            Some(ip) => ip.to_string(),
        };
        format!(
            "{}/{} -> {}:{}",
            self.container_port, self.proto, ip, self.host_port
        )
    }
}

/// `docker ps`'s PORTS text: `0.0.0.0:8080->80/tcp, 127.0.0.1:9000->53/udp`.
pub fn ps_ports(ports: &[PublishedPort]) -> String {
    ports
        .iter()
        .map(|p| {
            let ip = match p.host_ip {
                None => "0.0.0.0".to_string(),
                Some(IpAddr::V6(v6)) => format!("[{v6}]"),
                Some(ip) => ip.to_string(),
            };
            format!("{ip}:{}->{}/{}", p.host_port, p.container_port, p.proto)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn dir(root: &StateRoot) -> Result<PathBuf, StoreError> {
    Ok(root.subdir("networks")?)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, StoreError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| StoreError::Corrupt {
                    path: path.to_path_buf(),
                    source,
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StoreError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// All network records, sorted by name.
pub fn load_all(root: &StateRoot) -> Result<Vec<NetworkRecord>, StoreError> {
    let d = dir(root)?;
    let entries = std::fs::read_dir(&d).map_err(|source| StoreError::Read {
        path: d.clone(),
        source,
    })?;
    let mut out = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if name.len() == 69 && name.ends_with(".json") {
            if let Some(rec) = read_json::<NetworkRecord>(&p)? {
                out.push(rec);
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Writes `rec` atomically (caller holds the root lock).
pub fn save(root: &StateRoot, rec: &NetworkRecord) -> Result<(), StoreError> {
    let p = dir(root)?.join(format!("{}.json", rec.id));
    Ok(state::write_json_atomic(&p, rec)?)
}

/// Removes `rec`'s file (caller holds the root lock).
pub fn delete(root: &StateRoot, rec: &NetworkRecord) -> Result<(), StoreError> {
    let p = dir(root)?.join(format!("{}.json", rec.id));
    match std::fs::remove_file(&p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StoreError::Remove { path: p, source }),
    }
}

/// The table of published ports.
pub fn load_ports(root: &StateRoot) -> Result<Vec<PublishedPort>, StoreError> {
    Ok(read_json(&dir(root)?.join("ports.json"))?.unwrap_or_default())
}

/// Writes the table of published ports (caller holds the root lock).
pub fn save_ports(root: &StateRoot, ports: &[PublishedPort]) -> Result<(), StoreError> {
    let p = dir(root)?.join("ports.json");
    Ok(state::write_json_atomic(&p, &ports)?)
}

/// Directory of a container's generated `hosts` and `resolv.conf`.
pub fn container_dir(root: &StateRoot, container_id: &str) -> Result<PathBuf, StoreError> {
    Ok(root.subdir(&format!("networks/containers/{container_id}"))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_list() {
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::open(dir.path()).unwrap();
        let mut a = NetworkRecord::new("b", "10.89.1.0/24".parse().unwrap(), "br-x", false);
        super::super::ipam::allocate(&mut a, "c1", "web", &["w".into()]).unwrap();
        let c = NetworkRecord::new("a", "10.89.2.0/24".parse().unwrap(), "br-y", true);
        save(&root, &a).unwrap();
        save(&root, &c).unwrap();
        let all = load_all(&root).unwrap();
        assert_eq!(
            all.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(all[1], a);
        delete(&root, &a).unwrap();
        assert_eq!(load_all(&root).unwrap().len(), 1);
        assert!(load_ports(&root).unwrap().is_empty());
    }

    #[test]
    fn corrupt_record_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::open(dir.path()).unwrap();
        let p = root
            .subdir("networks")
            .unwrap()
            .join(format!("{}.json", "0".repeat(64)));
        std::fs::write(&p, "{not json").unwrap();
        let e = load_all(&root).unwrap_err().to_string();
        assert!(e.contains("corrupt network record"), "{e}");
    }

    #[test]
    fn docker_port_line() {
        let p = PublishedPort {
            container_id: "c".into(),
            container_name: "web".into(),
            host_ip: None,
            host_port: 8080,
            proto: Proto::Tcp,
            container_ip: "10.89.0.2".parse().unwrap(),
            container_port: 80,
        };
        assert_eq!(p.docker_line(), "80/tcp -> 0.0.0.0:8080");
        let q = PublishedPort {
            host_ip: Some("127.0.0.1".parse().unwrap()),
            proto: Proto::Udp,
            ..p.clone()
        };
        assert_eq!(
            ps_ports(&[p, q]),
            "0.0.0.0:8080->80/tcp, 127.0.0.1:8080->80/udp"
        );
    }
}
