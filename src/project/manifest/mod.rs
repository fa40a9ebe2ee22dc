//! `berth.toml`: the serde types of a project manifest.
//!
//! The keys follow the Compose specification
//! (<https://docs.docker.com/reference/compose-file/>) where Compose has one,
//! written the TOML way: `[services.web]` tables instead of YAML mappings,
//! arrays and inline tables for lists and maps. Every table denies unknown
//! keys (an unknown key is an error with a "did you mean"). Values that
//! Compose lets you write in several shapes are read into one canonical shape
//! by the types of [`forms`], [`ports`], [`volumes`] and [`units`]; serialising
//! a [`Manifest`] prints that canonical shape, which reads back the same.
//!
//! The same types generate `schema/berth.schema.json` (schemars); the doc
//! comments on fields are the descriptions editors show.

pub mod develop;
pub mod forms;
pub mod logging;
pub mod ports;
pub mod units;
pub mod volumes;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use develop::{Develop, WatchAction, WatchExec, WatchRule};
pub use forms::{
    Build, BuildTable, CommandLine, Condition, Cpus, Dependency, DependsOn, HealthTest, KeyValues,
    Restart, ServiceNetwork, ServiceNetworks, SignalName, StringList,
};
pub use logging::{LogDriver, Logging};
pub use ports::{Port, PortEntry, PortRange, Protocol};
pub use units::{ByteSize, Duration};
pub use volumes::{Mount, MountEntry, MountType};

use forms::is_empty_kv;

/// A berth project: services, and the volumes and networks they share.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a manifest table")]
#[schemars(title = "berth.toml")]
pub struct Manifest {
    /// The project name (lowercase letters, digits, `-` and `_`); defaults to
    /// the directory name. `-p NAME` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The services of the project, by name.
    #[serde(default)]
    pub services: BTreeMap<String, Service>,
    /// Named volumes services can mount.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub volumes: BTreeMap<String, VolumeDef>,
    /// Networks services can join; every project also has `default`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, NetworkDef>,
}

/// One service: a container (or `replicas` of them) run from one image.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a service table")]
pub struct Service {
    /// The image to run, like "busybox" or "registry.example/app:1.2".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Build the image from a Dockerfile: a context directory or a table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
    /// Overrides the image's entrypoint: an array, or a string split like a shell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<CommandLine>,
    /// Overrides the image's command: an array, or a string split like a shell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandLine>,
    /// Environment variables: a table, or a list of "KEY=VALUE" (a bare "KEY" takes berth's own value).
    #[serde(default, skip_serializing_if = "is_empty_kv")]
    pub environment: KeyValues,
    /// Files of KEY=VALUE lines to add to the environment (`environment` wins).
    #[serde(default, skip_serializing_if = "is_empty_list")]
    pub env_file: StringList,
    /// Ports: `[ip:][host:]container[/proto]` strings or tables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortEntry>,
    /// Mounts: `[source:]target[:ro]` strings or tables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<MountEntry>,
    /// Networks to join (default: the project's `default` network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networks: Option<ServiceNetworks>,
    /// Services to start first, and what to wait for.
    #[serde(default, skip_serializing_if = "is_empty_deps")]
    pub depends_on: DependsOn,
    /// How to check that the service is healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    /// Restart policy: no, always, `on-failure[:N]`, unless-stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<Restart>,
    /// User (and group) to run as: "name", "uid", "uid:gid".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Working directory inside the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Hostname inside the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The container's name, instead of `PROJECT-SERVICE-1` (one replica
    /// only, as in Compose).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    /// Labels on the containers: a table or a list of "KEY=VALUE".
    #[serde(default, skip_serializing_if = "is_empty_kv")]
    pub labels: KeyValues,
    /// Resource limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// Compose's `deploy`: `replicas` and `resources.limits`, the same as
    /// `replicas` and `resources` here (loading folds them in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<Deploy>,
    /// Signal that asks the service to stop (default SIGTERM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<SignalName>,
    /// How long to wait after the stop signal before SIGKILL (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<Duration>,
    /// Run a minimal init as PID 1 that reaps zombies and forwards signals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    /// Give the container a terminal (`run -t`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tty: bool,
    /// Keep the container's standard input open (`run -i`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stdin_open: bool,
    /// How many containers to run (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// The service only runs when one of these profiles is active.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    /// Development workflow: `develop.watch` rules for `berth watch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub develop: Option<Develop>,
    /// Logging: the json-file driver and its bounds (`options = { max-size = "10m", max-file = "3" }`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<Logging>,
}

fn is_empty_list(l: &StringList) -> bool {
    l.0.is_empty()
}

fn is_empty_deps(d: &DependsOn) -> bool {
    d.0.is_empty()
}

/// A health check, run by the container's supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a healthcheck table")]
pub struct Healthcheck {
    /// The check: a shell command string, or ["CMD", args...], ["CMD-SHELL", "command"], ["NONE"].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<HealthTest>,
    /// Time between checks (default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// Time a check may take before it counts as failed (default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Consecutive failures before the service is unhealthy (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Grace time after start during which failures do not count (default 0s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<Duration>,
    /// Time between checks during the start period (default 5s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<Duration>,
    /// Turn off any health check, including the image's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disable: bool,
}

/// Resource limits of each container of a service.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a resources table")]
pub struct Resources {
    /// Memory limit: bytes, or a size like "512m", "1g".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<ByteSize>,
    /// CPU limit in CPUs, like 0.5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<Cpus>,
    /// Maximum number of processes (-1 for no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<i64>,
}

/// Compose's `deploy` key, as far as one machine honours it; what it does
/// not name here (`reservations`, `placement`, `restart_policy`, …) is an
/// unknown key, reported with its place.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a deploy table")]
pub struct Deploy {
    /// How many containers to run (as `replicas`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// `resources.limits` (as `resources`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<DeployResources>,
}

/// `deploy.resources`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a deploy.resources table")]
pub struct DeployResources {
    /// The limits (as the service's `resources`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Resources>,
}

/// A named volume of the project.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a volume table")]
pub struct VolumeDef {
    /// The volume exists already and is not managed by berth.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub external: bool,
    /// The actual volume name (default: PROJECT_NAME, or NAME when external).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Labels on the volume.
    #[serde(default, skip_serializing_if = "is_empty_kv")]
    pub labels: KeyValues,
}

/// A network of the project.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a network table")]
pub struct NetworkDef {
    /// The network exists already and is not managed by berth.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub external: bool,
    /// No route out of the network (no outbound NAT, no published ports).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub internal: bool,
    /// The IPv4 subnet in CIDR form, like "10.89.0.0/24" (default: allocated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<Subnet>,
    /// The actual network name (default: PROJECT_NAME, or NAME when external).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Labels on the network.
    #[serde(default, skip_serializing_if = "is_empty_kv")]
    pub labels: KeyValues,
}

/// An IPv4 subnet in CIDR form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subnet {
    pub addr: std::net::Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    /// Whether `ip` lies inside the subnet.
    pub fn contains(&self, ip: std::net::Ipv4Addr) -> bool {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0);
        u32::from(ip) & mask == u32::from(self.addr)
    }
}

impl std::str::FromStr for Subnet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid subnet {s:?}: expected IPv4 CIDR like \"10.89.0.0/24\"");
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: std::net::Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if prefix > 30 {
            return Err(format!(
                "invalid subnet {s:?}: the prefix must be at most /30"
            ));
        }
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
        if u32::from(addr) & !mask != 0 {
            return Err(format!(
                "invalid subnet {s:?}: host bits are set; did you mean \"{}/{prefix}\"?",
                std::net::Ipv4Addr::from(u32::from(addr) & mask)
            ));
        }
        Ok(Subnet { addr, prefix })
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl<'de> Deserialize<'de> for Subnet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for Subnet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for Subnet {
    fn schema_name() -> String {
        "Subnet".into()
    }
    fn json_schema(_: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {
        units::schema(serde_json::json!({
            "type": "string",
            "description": "An IPv4 subnet in CIDR form, like \"10.89.0.0/24\"",
            "pattern": "^[0-9]{1,3}(\\.[0-9]{1,3}){3}/[0-9]{1,2}$"
        }))
    }
}
