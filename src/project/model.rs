//! The resolved project: what should run, container by container.
//!
//! [`resolve`] turns a loaded manifest into a [`Project`]: the active
//! services (profiles applied), each with one [`ContainerSpec`] shared by its
//! replicas — image or build, command and entrypoint, the environment
//! (`env_file`s, then `environment`), ports with ranges expanded, mounts with
//! host paths made absolute and volume names prefixed by the project,
//! networks with aliases, labels (including berth's own), health check with
//! Compose's defaults filled in, restart, resources, user, working
//! directory, hostname, stop signal and grace period, init — and a **config
//! hash**: SHA-256 over the spec's canonical JSON, which includes the image
//! digest when the caller knows it. Names follow Compose: containers
//! `PROJECT-SERVICE-N`, the default network `PROJECT_default`, volumes and
//! networks `PROJECT_NAME`.
//!
//! Nothing here touches the host beyond reading `env_file`s.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::{Diagnostic, LoadError};
use super::interpolate::parse_dotenv;
use super::load::{normalise_path, Loaded};
use super::manifest::{Condition, Dependency, Duration, MountType, Protocol, Restart, WatchAction};
use super::source::KeyPath;

/// Labels berth puts on what it creates for a project.
pub const LABEL_PROJECT: &str = "berth.project";
pub const LABEL_SERVICE: &str = "berth.service";
pub const LABEL_REPLICA: &str = "berth.replica";
pub const LABEL_CONFIG_HASH: &str = "berth.config-hash";
pub const LABEL_NETWORK: &str = "berth.network";
pub const LABEL_VOLUME: &str = "berth.volume";
/// On a replica's anonymous volume: the mount point it serves.
pub const LABEL_VOLUME_TARGET: &str = "berth.volume.target";

/// Image digests the caller knows, by image reference as written in the
/// manifest (or `PROJECT-SERVICE` for built images): `"busybox" ->
/// "sha256:..."`. A reference not in the map is hashed without a digest.
pub type ImageDigests = BTreeMap<String, String>;

/// A resolved project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Project {
    pub name: String,
    /// The project directory (the first manifest's directory).
    pub working_dir: PathBuf,
    /// Active services by name.
    pub services: BTreeMap<String, ServiceModel>,
    /// Networks the active services use, by manifest key.
    pub networks: BTreeMap<String, NetworkModel>,
    /// Named volumes the active services use, by manifest key.
    pub volumes: BTreeMap<String, VolumeModel>,
    /// Services left out because none of their profiles is active.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disabled_services: Vec<String>,
}

/// One service: its spec, hash, dependencies and containers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceModel {
    pub name: String,
    /// Dependencies on active services, with the condition to wait for.
    pub depends_on: BTreeMap<String, Dependency>,
    pub spec: ContainerSpec,
    /// SHA-256 (hex) of the spec's canonical JSON.
    pub config_hash: String,
    /// One per replica, in replica order.
    pub containers: Vec<ContainerInstance>,
    /// `develop.watch` rules, for `berth watch`. Not part of the spec:
    /// editing them recreates nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watch: Vec<WatchSpec>,
}

/// A `develop.watch` rule with its path made absolute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchSpec {
    pub action: WatchAction,
    /// Absolute host path (normalised).
    pub path: PathBuf,
    /// Absolute path in the container (the sync actions).
    pub target: Option<String>,
    /// `.dockerignore`-syntax patterns relative to `path`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<String>,
    /// `sync+exec`'s command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<WatchExecSpec>,
    /// Sync all of `path` when watch starts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub initial_sync: bool,
}

/// The command of a `sync+exec` rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchExecSpec {
    pub command: Vec<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub environment: BTreeMap<String, String>,
}

/// One replica of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerInstance {
    /// `PROJECT-SERVICE-N`.
    pub name: String,
    /// N, from 1.
    pub replica: u32,
    /// The spec's labels plus `berth.replica` and `berth.config-hash`.
    pub labels: BTreeMap<String, String>,
}

/// Everything that defines a container of a service. Two containers with
/// equal specs are interchangeable; the config hash is over this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// The image reference to run (for a build: the image it produces).
    pub image: String,
    /// The image's digest, when known to the caller of [`resolve`].
    pub image_digest: Option<String>,
    pub build: Option<BuildSpec>,
    pub entrypoint: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    pub environment: BTreeMap<String, String>,
    /// One mapping per port (ranges expanded).
    pub ports: Vec<PortMapping>,
    pub mounts: Vec<MountSpec>,
    /// By actual network name.
    pub networks: BTreeMap<String, NetworkAttachment>,
    /// User labels plus `berth.project` and `berth.service`.
    pub labels: BTreeMap<String, String>,
    pub healthcheck: Option<HealthcheckSpec>,
    pub restart: Restart,
    pub resources: ResourcesSpec,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub hostname: Option<String>,
    pub stop_signal: String,
    pub stop_grace_period: Duration,
    pub init: bool,
    /// json-file bounds the service sets (`logging.options`); absent ones
    /// are the machine's default. Left out of the JSON when unset, so
    /// specs recorded before it existed keep their hash.
    #[serde(default, skip_serializing_if = "LogSpec::is_empty")]
    pub logging: LogSpec,
    /// `tty` and `stdin_open` (left out when false, so older specs keep
    /// their hash).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tty: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stdin_open: bool,
    /// `container_name`: the one replica's name (left out when unset, so
    /// older specs keep their hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
}

/// A service's json-file options, as `--log-opt` takes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_file: Option<u32>,
}

impl LogSpec {
    pub fn is_empty(&self) -> bool {
        self.max_size.is_none() && self.max_file.is_none()
    }
}

/// How to build an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildSpec {
    /// Absolute context directory.
    pub context: PathBuf,
    /// Dockerfile path relative to the context.
    pub dockerfile: String,
    pub args: BTreeMap<String, String>,
    pub target: Option<String>,
}

/// One published or exposed port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PortMapping {
    pub container_port: u16,
    /// None: published on an ephemeral host port chosen at start (as Compose does).
    pub host_port: Option<u16>,
    pub host_ip: Option<IpAddr>,
    pub protocol: Protocol,
}

/// One mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    #[serde(rename = "type")]
    pub kind: MountType,
    /// Bind: absolute host path. Volume: the actual volume name, or none for
    /// an anonymous volume. Tmpfs: none.
    pub source: Option<String>,
    pub target: String,
    pub read_only: bool,
    /// Bind: create the host directory if missing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub create_host_path: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs_mode: Option<u32>,
    /// Volume: don't fill it from the image when empty.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nocopy: bool,
}

/// How a container joins a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkAttachment {
    /// DNS names on the network: the service name first, then any aliases.
    pub aliases: Vec<String>,
    pub ipv4_address: Option<Ipv4Addr>,
}

/// A health check with Compose's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthcheckSpec {
    /// `["CMD", ...]`, `["CMD-SHELL", "..."]`, `["NONE"]` (disabled), or none
    /// to keep the image's test with these timings.
    pub test: Option<Vec<String>>,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub start_period: Duration,
    pub start_interval: Duration,
}

/// Resource limits.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ResourcesSpec {
    pub memory: Option<u64>,
    pub cpus: Option<f64>,
    pub pids: Option<i64>,
}

/// A network of the project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkModel {
    /// The actual name: `PROJECT_KEY`, or `name`, or KEY when external.
    pub name: String,
    pub external: bool,
    pub internal: bool,
    pub subnet: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// A named volume of the project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeModel {
    /// The actual name: `PROJECT_KEY`, or `name`, or KEY when external.
    pub name: String,
    pub external: bool,
    pub labels: BTreeMap<String, String>,
}

/// The defaults Compose (and Docker) use.
pub const DEFAULT_STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);
const DEFAULT_HEALTH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);
const DEFAULT_HEALTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
const DEFAULT_HEALTH_START_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);
const DEFAULT_HEALTH_RETRIES: u32 = 3;

/// The config hash of a spec: SHA-256 of its canonical JSON, hex.
pub fn config_hash(spec: &ContainerSpec) -> String {
    let json = serde_json::to_vec(spec).expect("a spec serialises");
    hex::encode(Sha256::digest(&json))
}

/// Whether a service is active under the given profiles.
fn active(profiles: &[String], active: &[String]) -> bool {
    profiles.is_empty() || profiles.iter().any(|p| active.contains(p))
}

fn expand_home(path: &str, vars: &BTreeMap<String, String>) -> String {
    match path.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            format!(
                "{}{rest}",
                vars.get("HOME").map(String::as_str).unwrap_or("/root")
            )
        }
        _ => path.to_string(),
    }
}

fn absolute(dir: &Path, path: &str) -> PathBuf {
    normalise_path(&dir.join(path))
}

/// Resolves a loaded manifest into a project. `profiles` are the active
/// profiles; `digests` the image digests known to the caller.
pub fn resolve(
    loaded: &Loaded,
    profiles: &[String],
    digests: &ImageDigests,
) -> Result<Project, LoadError> {
    let m = &loaded.manifest;
    let project = loaded.project_name.as_str();
    let vars = &loaded.variables;
    let mut diagnostics: Vec<Diagnostic> = Vec::new();
    let services_path = KeyPath::root().key("services");

    let mut disabled = Vec::new();
    for (name, svc) in &m.services {
        if !active(&svc.profiles, profiles) {
            disabled.push(name.clone());
        }
    }

    let network_name = |key: &str| -> String {
        match m.networks.get(key) {
            Some(def) => match (&def.name, def.external) {
                (Some(n), _) => n.clone(),
                (None, true) => key.to_string(),
                (None, false) => format!("{project}_{key}"),
            },
            None => format!("{project}_{key}"),
        }
    };
    let volume_name = |key: &str| -> String {
        match m.volumes.get(key) {
            Some(def) => match (&def.name, def.external) {
                (Some(n), _) => n.clone(),
                (None, true) => key.to_string(),
                (None, false) => format!("{project}_{key}"),
            },
            None => format!("{project}_{key}"),
        }
    };

    let mut services = BTreeMap::new();
    let mut used_networks: Vec<String> = Vec::new();
    let mut used_volumes: Vec<String> = Vec::new();
    for (name, svc) in &m.services {
        if disabled.contains(name) {
            continue;
        }
        let here = services_path.key(name);

        // Dependencies on disabled services: an error unless not required.
        let mut depends_on = BTreeMap::new();
        for (dep, d) in &svc.depends_on.0 {
            if disabled.contains(dep) {
                if d.required {
                    diagnostics.push(loaded.diagnostic(
                        &here.key("depends_on").key(dep),
                        format!(
                            "service {name:?} depends on {dep:?}, which no active profile enables (profiles: {})",
                            m.services[dep].profiles.join(", ")
                        ),
                    ));
                }
                continue;
            }
            depends_on.insert(dep.clone(), d.clone());
        }

        // Environment: env_file(s) in order, then `environment`.
        let mut environment = BTreeMap::new();
        for (i, file) in svc.env_file.0.iter().enumerate() {
            let path = absolute(&loaded.project_dir, &expand_home(file, vars));
            let at = if svc.env_file.0.len() == 1 {
                here.key("env_file")
            } else {
                here.key("env_file").index(i)
            };
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    match parse_dotenv(&text, &|k| vars.get(k).cloned()) {
                        Ok(pairs) => environment.extend(pairs),
                        Err(e) => diagnostics.push(loaded.diagnostic(
                            &at,
                            format!("{}:{}: {}", path.display(), e.line, e.message),
                        )),
                    }
                }
                Err(e) => diagnostics.push(
                    loaded.diagnostic(&at, format!("cannot read env file {}: {e}", path.display())),
                ),
            }
        }
        for (k, v) in &svc.environment.0 {
            match v {
                Some(v) => {
                    environment.insert(k.clone(), v.clone());
                }
                None => {
                    if let Some(v) = vars.get(k) {
                        environment.insert(k.clone(), v.clone());
                    }
                }
            }
        }

        let build = svc.build.as_ref().map(|b| {
            let b = &b.0;
            BuildSpec {
                context: absolute(&loaded.project_dir, &expand_home(&b.context, vars)),
                dockerfile: b.dockerfile.clone().unwrap_or_else(|| "Dockerfile".into()),
                args: b.args.resolve(vars),
                target: b.target.clone(),
            }
        });
        let image = svc
            .image
            .clone()
            .unwrap_or_else(|| format!("{project}-{name}"));

        let mut ports = Vec::new();
        for p in &svc.ports {
            let p = &p.0;
            for offset in 0..p.target.len() {
                ports.push(PortMapping {
                    container_port: (u32::from(p.target.start) + offset) as u16,
                    host_port: p.published.map(|h| (u32::from(h.start) + offset) as u16),
                    host_ip: p.host_ip,
                    protocol: p.protocol,
                });
            }
        }

        let mut mounts = Vec::new();
        for mount in &svc.volumes {
            let mt = &mount.0;
            let source = match (mt.kind, &mt.source) {
                (MountType::Bind, Some(s)) => Some(
                    absolute(&loaded.project_dir, &expand_home(s, vars))
                        .display()
                        .to_string(),
                ),
                (MountType::Volume, Some(s)) => {
                    if !used_volumes.contains(s) {
                        used_volumes.push(s.clone());
                    }
                    Some(volume_name(s))
                }
                _ => None,
            };
            mounts.push(MountSpec {
                kind: mt.kind,
                source,
                target: mt.target.clone(),
                read_only: mt.read_only,
                create_host_path: mt.kind == MountType::Bind
                    && mt
                        .bind
                        .as_ref()
                        .and_then(|b| b.create_host_path)
                        .unwrap_or(true),
                tmpfs_size: mt.tmpfs.as_ref().and_then(|t| t.size).map(|s| s.0),
                tmpfs_mode: mt.tmpfs.as_ref().and_then(|t| t.mode),
                nocopy: mt.kind == MountType::Volume
                    && mt.volume.as_ref().is_some_and(|v| v.nocopy),
            });
        }

        let mut networks = BTreeMap::new();
        let declared: Vec<(String, super::manifest::ServiceNetwork)> = match &svc.networks {
            Some(n) => n.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            None => vec![("default".to_string(), Default::default())],
        };
        for (key, net) in declared {
            if !used_networks.contains(&key) {
                used_networks.push(key.clone());
            }
            let mut aliases = vec![name.clone()];
            for a in net.aliases {
                if !aliases.contains(&a) {
                    aliases.push(a);
                }
            }
            networks.insert(
                network_name(&key),
                NetworkAttachment {
                    aliases,
                    ipv4_address: net.ipv4_address,
                },
            );
        }

        let mut labels: BTreeMap<String, String> = svc
            .labels
            .0
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().unwrap_or_default()))
            .collect();
        for k in labels.keys() {
            if k.starts_with("berth.") {
                diagnostics.push(loaded.diagnostic(
                    &here.key("labels").key(k),
                    format!("label {k:?} is reserved: berth.* labels are set by berth"),
                ));
            }
        }
        labels.insert(LABEL_PROJECT.into(), project.to_string());
        labels.insert(LABEL_SERVICE.into(), name.clone());

        let healthcheck = svc.healthcheck.as_ref().map(|h| HealthcheckSpec {
            test: if h.disable {
                Some(vec!["NONE".to_string()])
            } else {
                h.test.as_ref().map(|t| t.0.clone())
            },
            interval: h.interval.unwrap_or(Duration(DEFAULT_HEALTH_INTERVAL)),
            timeout: h.timeout.unwrap_or(Duration(DEFAULT_HEALTH_TIMEOUT)),
            retries: h.retries.unwrap_or(DEFAULT_HEALTH_RETRIES),
            start_period: h.start_period.unwrap_or_default(),
            start_interval: h
                .start_interval
                .unwrap_or(Duration(DEFAULT_HEALTH_START_INTERVAL)),
        });
        if let Some(dep) = depends_on.iter().find(|(d, c)| {
            c.condition == Condition::Healthy && {
                let h = &m.services[*d].healthcheck;
                h.as_ref()
                    .is_some_and(|h| h.disable || h.test.as_ref().is_some_and(|t| t.0 == ["NONE"]))
            }
        }) {
            diagnostics.push(loaded.diagnostic(
                &here.key("depends_on").key(dep.0),
                format!(
                    "waits for {:?} to be healthy, but its health check is disabled",
                    dep.0
                ),
            ));
        }

        let resources = svc
            .resources
            .as_ref()
            .map(|r| ResourcesSpec {
                memory: r.memory.map(|m| m.0),
                cpus: r.cpus.map(|c| c.0),
                pids: r.pids,
            })
            .unwrap_or_default();

        let spec = ContainerSpec {
            image_digest: digests.get(&image).cloned(),
            image,
            build,
            entrypoint: svc.entrypoint.as_ref().map(|c| c.0.clone()),
            command: svc.command.as_ref().map(|c| c.0.clone()),
            environment,
            ports,
            mounts,
            networks,
            labels,
            healthcheck,
            restart: svc.restart.unwrap_or_default(),
            resources,
            user: svc.user.clone(),
            working_dir: svc.working_dir.clone(),
            hostname: svc.hostname.clone(),
            stop_signal: svc
                .stop_signal
                .as_ref()
                .map(|s| s.0.clone())
                .unwrap_or_else(|| "SIGTERM".into()),
            stop_grace_period: svc
                .stop_grace_period
                .unwrap_or(Duration(DEFAULT_STOP_GRACE)),
            init: svc.init.unwrap_or(false),
            logging: svc
                .logging
                .as_ref()
                .and_then(|l| l.options.as_ref())
                .map(|o| LogSpec {
                    max_size: o.max_size.map(|b| b.0),
                    max_file: o.max_file.map(|f| f.0),
                })
                .unwrap_or_default(),
            container_name: svc.container_name.clone(),
            tty: svc.tty,
            stdin_open: svc.stdin_open,
        };
        let hash = config_hash(&spec);
        let containers = (1..=svc.replicas.unwrap_or(1))
            .map(|n| {
                let mut labels = spec.labels.clone();
                labels.insert(LABEL_REPLICA.into(), n.to_string());
                labels.insert(LABEL_CONFIG_HASH.into(), hash.clone());
                ContainerInstance {
                    name: spec
                        .container_name
                        .clone()
                        .unwrap_or_else(|| format!("{project}-{name}-{n}")),
                    replica: n,
                    labels,
                }
            })
            .collect();
        let watch = svc
            .develop
            .iter()
            .flat_map(|d| &d.watch)
            .map(|rule| WatchSpec {
                action: rule.action,
                path: absolute(&loaded.project_dir, &expand_home(&rule.path, vars)),
                target: rule.target.clone(),
                ignore: rule.ignore.clone(),
                exec: rule.exec.as_ref().map(|e| WatchExecSpec {
                    command: e.command.0.clone(),
                    user: e.user.clone(),
                    working_dir: e.working_dir.clone(),
                    environment: e.environment.resolve(vars),
                }),
                initial_sync: rule.initial_sync,
            })
            .collect();
        services.insert(
            name.clone(),
            ServiceModel {
                name: name.clone(),
                depends_on,
                spec,
                config_hash: hash,
                containers,
                watch,
            },
        );
    }
    if !diagnostics.is_empty() {
        return Err(LoadError::Invalid(diagnostics));
    }

    let base_labels = |kind: &str, key: &str| {
        let mut l = BTreeMap::new();
        l.insert(LABEL_PROJECT.to_string(), project.to_string());
        l.insert(kind.to_string(), key.to_string());
        l
    };
    let networks = used_networks
        .iter()
        .map(|key| {
            let def = m.networks.get(key).cloned().unwrap_or_default();
            let mut labels = base_labels(LABEL_NETWORK, key);
            labels.extend(
                def.labels
                    .0
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone().unwrap_or_default())),
            );
            (
                key.clone(),
                NetworkModel {
                    name: network_name(key),
                    external: def.external,
                    internal: def.internal,
                    subnet: def.subnet.map(|s| s.to_string()),
                    labels,
                },
            )
        })
        .collect();
    let volumes = used_volumes
        .iter()
        .map(|key| {
            let def = m.volumes.get(key).cloned().unwrap_or_default();
            let mut labels = base_labels(LABEL_VOLUME, key);
            labels.extend(
                def.labels
                    .0
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone().unwrap_or_default())),
            );
            (
                key.clone(),
                VolumeModel {
                    name: volume_name(key),
                    external: def.external,
                    labels,
                },
            )
        })
        .collect();

    Ok(Project {
        name: project.to_string(),
        working_dir: loaded.project_dir.clone(),
        services,
        networks,
        volumes,
        disabled_services: disabled,
    })
}
