//! The executor's backend on this machine: [`executor::Backend`] over the
//! in-process [`Engine`], and the mapping of a service's container spec to
//! the engine's [`ContainerRequest`].
//!
//! A replica becomes one `Engine::create` + `Engine::start`, with the
//! service's spec (as JSON) in the `berth.spec` label of the same atomic
//! record, so the next `up` plans from exactly what made it. All of a
//! service's networks are joined at create, the first carrying the
//! published ports. Anonymous volumes are named after the replica and the
//! mount point, so a recreated container mounts the same ones (Compose
//! carries anonymous volumes over).
//!
//! A SIGKILLed `up` leaves at most: a container record without a started
//! supervisor (the next plan starts it), a supervisor starting it (the
//! next `up` waits for it), or networks and volumes (idempotent to create
//! again) — the same states the subprocess backend could leave.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::actual::{self, ProjectContainer, LABEL_SPEC};
use super::executor::{Backend, Observed};
use super::manifest::{MountType, Protocol, Restart};
use super::model::{
    ContainerInstance, PortMapping, Project, ServiceModel, LABEL_PROJECT, LABEL_SERVICE,
    LABEL_VOLUME_TARGET,
};
use crate::engine::{
    ContainerRequest, Engine, EngineError, HealthRequest, ImageSource, MountRequest, StartOptions,
};
use crate::image::ImageStore;
use crate::network::portspec::{HostPort, PortRequest, Proto};
use crate::network::{CreateOptions, Join, Networks};
use crate::runtime::container::{RestartPolicy, STATUS_CORRUPT};
use crate::runtime::spec::Resources;
use crate::volume::VolumeStore;

/// The volume behind an anonymous mount of a service replica (a manifest
/// volume without a name, or an image `VOLUME`): named after the replica and
/// the mount point, so a recreated container mounts the same one, as
/// Compose carries anonymous volumes over.
pub fn anonymous_volume_name(instance: &ContainerInstance, target: &str) -> String {
    use sha2::Digest as _;
    let hash = hex::encode(sha2::Sha256::digest(
        target.trim_end_matches('/').as_bytes(),
    ));
    format!("{}_{}", instance.name, &hash[..12])
}

/// The image's `VOLUME`s that no mount of the service covers.
fn uncovered_image_volumes(svc: &ServiceModel, image_volumes: &[String]) -> Vec<String> {
    let norm = |p: &str| p.trim_end_matches('/').to_string();
    let covered: Vec<String> = svc.spec.mounts.iter().map(|m| norm(&m.target)).collect();
    let mut out: Vec<String> = Vec::new();
    for v in image_volumes {
        if v.starts_with('/') && !covered.contains(&norm(v)) && !out.contains(&norm(v)) {
            out.push(norm(v));
        }
    }
    out
}

/// The anonymous volumes of a replica: (volume name, mount point).
pub fn anonymous_volumes(
    svc: &ServiceModel,
    instance: &ContainerInstance,
    image_volumes: &[String],
) -> Vec<(String, String)> {
    svc.spec
        .mounts
        .iter()
        .filter(|m| m.kind == MountType::Volume && m.source.is_none())
        .map(|m| m.target.clone())
        .chain(uncovered_image_volumes(svc, image_volumes))
        .map(|t| (anonymous_volume_name(instance, &t), t))
        .collect()
}

/// A service port as the network layer's port request.
pub fn port_request(p: &PortMapping) -> Result<PortRequest, String> {
    let proto = match p.protocol {
        Protocol::Tcp => Proto::Tcp,
        Protocol::Udp => Proto::Udp,
        Protocol::Sctp => {
            return Err(format!(
                "port {}/sctp: berth publishes tcp and udp ports only",
                p.container_port
            ))
        }
    };
    Ok(PortRequest {
        host_ip: p.host_ip,
        host: p.host_port.map_or(HostPort::Random, HostPort::Fixed),
        container_port: p.container_port,
        proto,
    })
}

fn ns(d: &super::manifest::Duration) -> u64 {
    d.0.as_nanos() as u64
}

/// The engine request that creates `instance` of `svc`: pure, but for the
/// image's `VOLUME`s, which the caller reads from the store.
pub fn container_request(
    svc: &ServiceModel,
    instance: &ContainerInstance,
    image_volumes: &[String],
) -> Result<ContainerRequest, String> {
    let spec = &svc.spec;
    let mut labels = instance.labels.clone();
    labels.insert(
        LABEL_SPEC.to_string(),
        serde_json::to_string(spec).map_err(|e| e.to_string())?,
    );
    let restart = match spec.restart {
        Restart::No => "no".to_string(),
        Restart::Always => "always".into(),
        Restart::UnlessStopped => "unless-stopped".into(),
        Restart::OnFailure(None) => "on-failure".into(),
        Restart::OnFailure(Some(n)) => format!("on-failure:{n}"),
    };
    let mut log_opts = Vec::new();
    if let Some(n) = spec.logging.max_size {
        log_opts.push(format!("max-size={n}"));
    }
    if let Some(n) = spec.logging.max_file {
        log_opts.push(format!("max-file={n}"));
    }
    let health = match &spec.healthcheck {
        None => HealthRequest::default(),
        Some(h) => HealthRequest {
            disable: h
                .test
                .as_deref()
                .is_some_and(|t| t.first().is_some_and(|k| k == "NONE")),
            test: h
                .test
                .clone()
                .filter(|t| t.first().is_some_and(|k| k != "NONE")),
            interval_ns: Some(ns(&h.interval)),
            timeout_ns: Some(ns(&h.timeout)),
            start_period_ns: Some(ns(&h.start_period)),
            start_interval_ns: Some(ns(&h.start_interval)),
            retries: Some(h.retries),
        },
    };
    let mut mounts = Vec::new();
    for m in &spec.mounts {
        mounts.push(match m.kind {
            MountType::Bind => MountRequest::Bind {
                source: m
                    .source
                    .as_deref()
                    .ok_or("bind mount without a source")?
                    .into(),
                target: m.target.clone(),
                readonly: m.read_only,
                create_source: m.create_host_path,
            },
            MountType::Volume => MountRequest::Volume {
                name: Some(match m.source.as_deref() {
                    Some(name) => name.to_string(),
                    None => anonymous_volume_name(instance, &m.target),
                }),
                target: m.target.clone(),
                readonly: m.read_only,
                nocopy: m.nocopy,
            },
            MountType::Tmpfs => {
                let mut opts = Vec::new();
                if let Some(s) = m.tmpfs_size {
                    opts.push(format!("size={s}"));
                }
                if let Some(mode) = m.tmpfs_mode {
                    opts.push(format!("mode={mode:o}"));
                }
                MountRequest::Tmpfs {
                    target: m.target.clone(),
                    options: opts.join(","),
                }
            }
        });
    }
    for target in uncovered_image_volumes(svc, image_volumes) {
        mounts.push(MountRequest::Volume {
            name: Some(anonymous_volume_name(instance, &target)),
            target,
            readonly: false,
            nocopy: false,
        });
    }
    let joins: Vec<Join> = spec
        .networks
        .iter()
        .map(|(net, att)| Join {
            network: Some(net.clone()),
            aliases: att.aliases.clone(),
        })
        .collect();
    Ok(ContainerRequest {
        name: Some(instance.name.clone()),
        image: ImageSource::Image(spec.image.clone()),
        entrypoint: spec.entrypoint.clone(),
        command: spec.command.clone().unwrap_or_default(),
        env: spec
            .environment
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
        workdir: spec.working_dir.clone(),
        user: spec.user.clone(),
        hostname: spec.hostname.clone(),
        restart: RestartPolicy::parse(&restart).ok_or("invalid restart policy")?,
        auto_remove: false,
        resources: Resources {
            memory: spec.resources.memory.map(|m| m as i64),
            cpus: spec.resources.cpus,
            pids_limit: spec.resources.pids,
        },
        mounts,
        network: spec
            .networks
            .keys()
            .next()
            .cloned()
            .unwrap_or_else(|| "default".into()),
        joins,
        publish: spec
            .ports
            .iter()
            .map(port_request)
            .collect::<Result<_, _>>()?,
        publish_all: false,
        tty: spec.tty,
        open_stdin: spec.stdin_open,
        init: spec.init,
        stop_signal: Some(spec.stop_signal.clone()),
        stop_timeout: Some(spec.stop_grace_period.0.as_secs()),
        health,
        labels,
        log_opts,
    })
}

/// The executor's backend over the in-process engine.
pub struct EngineBackend {
    pub engine: Engine,
    pub project: String,
    /// No progress lines.
    pub quiet: bool,
}

impl EngineBackend {
    pub fn new(engine: Engine, project: &str) -> Self {
        Self {
            engine,
            project: project.to_string(),
            quiet: false,
        }
    }

    /// The project's containers of `service` as they are now.
    pub fn containers(&self, service: &str) -> Vec<ProjectContainer> {
        actual::project_containers(self.engine.store(), &self.project)
            .into_iter()
            .filter(|c| c.service() == service)
            .collect()
    }

    /// Stops (when it runs) and removes a container, with `grace` seconds.
    pub fn stop_and_remove(&self, id: &str, grace: Duration) -> Result<(), EngineError> {
        let store = self.engine.store();
        let Ok(st) = store.observed_state(id) else {
            return Ok(()); // already gone
        };
        // A corrupt record cannot take a stop request: the forced removal
        // kills what its cgroup holds.
        if actual::is_running(&st) && st.status != STATUS_CORRUPT {
            self.engine.stop(id, Some(grace.as_secs()), None)?;
        }
        self.engine.remove(id, true, false)
    }
}

fn err_string<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

impl Backend for EngineBackend {
    fn create_network(&self, project: &Project, key: &str) -> Result<(), String> {
        let n = &project.networks[key];
        let subnet = n
            .subnet
            .as_deref()
            .map(|s| s.parse().map_err(|e| format!("invalid subnet {s:?}: {e}")))
            .transpose()?;
        let nets = Networks::open(self.engine.root()).map_err(err_string)?;
        if nets.get(&n.name).is_ok() {
            return Ok(());
        }
        nets.create(&CreateOptions {
            name: n.name.clone(),
            subnet,
            internal: n.internal,
            labels: n.labels.clone(),
        })
        .map(|_| ())
        .map_err(err_string)
    }
    fn remove_network(&self, name: &str) -> Result<(), String> {
        let nets = Networks::open(self.engine.root()).map_err(err_string)?;
        nets.remove(name).map(|_| ()).map_err(err_string)
    }
    fn create_volume(&self, project: &Project, key: &str) -> Result<(), String> {
        let v = &project.volumes[key];
        VolumeStore::open(self.engine.root())
            .and_then(|s| s.create(&v.name, &v.labels))
            .map(|_| ())
            .map_err(err_string)
    }
    fn remove_volume(&self, name: &str) -> Result<(), String> {
        VolumeStore::open(self.engine.root())
            .and_then(|s| s.remove(name))
            .map(|_| ())
            .map_err(err_string)
    }
    fn create(&self, svc: &ServiceModel, instance: &ContainerInstance) -> Result<(), String> {
        let root = self.engine.root();
        let volumes = VolumeStore::open(root).map_err(err_string)?;
        let image_volumes = ImageStore::open(root)
            .map_err(err_string)
            .and_then(|store| {
                crate::engine::image::image_volumes(&store, &svc.spec.image).map_err(err_string)
            })?;
        for (name, target) in anonymous_volumes(svc, instance, &image_volumes) {
            let labels = BTreeMap::from([
                (LABEL_PROJECT.to_string(), self.project.clone()),
                (LABEL_SERVICE.to_string(), svc.name.clone()),
                (LABEL_VOLUME_TARGET.to_string(), target),
            ]);
            volumes
                .create_with(&name, &labels, true)
                .map_err(err_string)?;
        }
        // A container of this name left by an interrupted run is replaced.
        if let Ok(id) = self.engine.resolve(&instance.name) {
            self.engine.remove(&id, true, false).map_err(err_string)?;
        }
        let req = container_request(svc, instance, &image_volumes)?;
        let config = self.engine.create(&req).map_err(err_string)?;
        self.engine
            .start(&config.id, &StartOptions::default())
            .map(|_| ())
            .map_err(err_string)
    }
    fn start(&self, id: &str) -> Result<(), String> {
        // A start in flight (e.g. from a run of `up` that was killed while
        // its supervisor went on): let it finish rather than race it.
        let store = self.engine.store();
        let end = Instant::now() + Duration::from_secs(30);
        while let Ok(st) = store.state(id) {
            // A supervisor spawned just before its parent died may not
            // have recorded itself yet: give a fresh record a moment.
            let fresh = store
                .config(id)
                .map(|c| chrono::Utc::now() - c.created < chrono::Duration::seconds(3))
                .unwrap_or(false);
            let starting = st.status == "created"
                && ((st.supervisor_pid > 0
                    && crate::runtime::container::pid_alive(st.supervisor_pid))
                    || (st.supervisor_pid == 0 && fresh));
            if actual::is_running(&st) {
                return Ok(());
            }
            if !starting || Instant::now() > end {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.engine
            .start(id, &StartOptions::default())
            .map(|_| ())
            .map_err(err_string)
    }
    fn restart(&self, id: &str, grace: Duration) -> Result<(), String> {
        self.engine
            .restart(id, Some(grace.as_secs()), None, &StartOptions::default())
            .map_err(err_string)
    }
    fn remove(&self, id: &str, grace: Duration) -> Result<(), String> {
        self.stop_and_remove(id, grace).map_err(err_string)
    }
    fn observe(&self, service: &str) -> Vec<Observed> {
        self.containers(service).iter().map(observed).collect()
    }
    fn progress(&self, name: &str, what: &str) {
        if !self.quiet {
            eprintln!(" {name}  {what}");
        }
    }
}

/// What the executor sees of a container.
pub fn observed(c: &ProjectContainer) -> Observed {
    use super::planner::ContainerStatus;
    let sound = !matches!(
        c.status(),
        ContainerStatus::Unsupervised | ContainerStatus::Corrupt
    );
    Observed {
        running: c.running && sound,
        status: match c.status() {
            ContainerStatus::Unsupervised => "unsupervised".into(),
            ContainerStatus::Corrupt => "corrupt".into(),
            _ if c.running => "running".into(),
            _ => c.state.status.clone(),
        },
        exit_code: c.state.exit_code,
        health: c.health().map(str::to_string),
        up_for: match c.state.started_at {
            Some(at) if c.running => (chrono::Utc::now() - at).to_std().unwrap_or_default(),
            _ => Duration::ZERO,
        },
    }
}
