//! Creating a container: the request checked and completed from its image
//! into the immutable record (`config.json`), its named volumes made and
//! its network allocations (addresses, host ports) taken — or nothing at
//! all when any of it is refused.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use chrono::Utc;

use super::image::ImageInfo;
use super::request::{ContainerRequest, HealthRequest, MountRequest};
use super::{Engine, EngineError};
use crate::network::{Join, Networks, Prepare};
use crate::runtime::container::{new_id, ContainerConfig, HealthConfig};
use crate::runtime::names;
use crate::runtime::spec::{self, BindMount};
use crate::volume::{VolumeMount, VolumeStore};

const MIN_MEMORY: i64 = 6 << 20;
const DEFAULT_HEALTH_INTERVAL_NS: u64 = 30_000_000_000;

impl Engine {
    /// Creates the container `req` asks for (pulling its image if the
    /// store lacks it) and returns its record; it is not started.
    pub fn create(&self, req: &ContainerRequest) -> Result<ContainerConfig, EngineError> {
        let image = super::image::resolve(&self.root, &req.image)?;
        let config = self.config_of(req, &image)?;
        let plan = self.network_plan(&config, req, &image)?;
        // Named volumes exist from `create` on (`volume ls` shows them, as
        // in Docker); anonymous ones are made when the container starts.
        let volumes = VolumeStore::open(&self.root)?;
        for m in config.volumes.iter().filter(|m| !m.anonymous) {
            volumes.create(&m.name, &Default::default())?;
        }
        self.store.create(&config)?;
        if let Some((nets, prepare)) = plan {
            if let Err(e) = nets.prepare(&prepare) {
                let _ = nets.release(&config.id);
                let _ = self.store.remove(&config.id);
                return Err(e.into());
            }
        }
        Ok(config)
    }

    /// The record of a new container: the request over the image's defaults.
    fn config_of(
        &self,
        req: &ContainerRequest,
        image: &ImageInfo,
    ) -> Result<ContainerConfig, EngineError> {
        let invalid = |m: String| EngineError::Invalid(m);
        let id = new_id();
        let name = match &req.name {
            Some(n) => n.trim_start_matches('/').to_string(),
            None => loop {
                let n = names::generate();
                if self.store.resolve(&n).is_err() {
                    break n;
                }
            },
        };
        let command = match &req.entrypoint {
            Some(ep) => ep.iter().chain(&req.command).cloned().collect::<Vec<_>>(),
            None if req.command.is_empty() => {
                image.entrypoint.iter().chain(&image.cmd).cloned().collect()
            }
            None => image
                .entrypoint
                .iter()
                .chain(&req.command)
                .cloned()
                .collect(),
        };
        if command.is_empty() {
            return Err(invalid("no command specified".into()));
        }
        if req.auto_remove && req.restart.name != "no" {
            return Err(invalid(
                "conflicting options: cannot specify both --restart and --rm".into(),
            ));
        }
        if req.resources.memory.is_some_and(|m| m < MIN_MEMORY) {
            return Err(invalid("minimum memory limit allowed is 6MB".into()));
        }
        if req
            .resources
            .cpus
            .is_some_and(|c| c <= 0.0 || !c.is_finite())
        {
            return Err(invalid(
                "invalid --cpus value: must be a positive number".into(),
            ));
        }
        let aliases = req.joins.iter().any(|j| !j.aliases.is_empty());
        match crate::network::mode_network(&req.network) {
            None if !req.publish.is_empty() || req.publish_all => {
                return Err(invalid(format!(
                    "cannot publish ports with --network {}: publishing needs a berth network",
                    req.network
                )))
            }
            None | Some(None) if aliases => return Err(invalid(
                "network-scoped aliases are supported only for containers in user-defined networks"
                    .into(),
            )),
            Some(Some(_)) => {
                let nets = Networks::open(&self.root)?;
                for j in self.joins_of(req) {
                    if let Some(n) = &j.network {
                        nets.get(n)?;
                    }
                }
            }
            _ => {}
        }
        let (binds, volumes, tmpfs) = mounts(&req.mounts, &image.volumes)?;
        let health = health_of(image.health.clone(), &req.health);
        let log = crate::runtime::log::LogOptions::configured(self.root.path())?
            .with_flags(&req.log_opts)?;
        Ok(ContainerConfig {
            id: id.clone(),
            name,
            created: Utc::now(),
            image: match &req.image {
                super::ImageSource::Image(name) => name.clone(),
                super::ImageSource::Rootfs(dir) => dir.display().to_string(),
            },
            image_id: image.id.clone(),
            lowers: image.lowers.clone(),
            args: command,
            env: req.env.clone(),
            image_env: image.env.clone(),
            cwd: req.workdir.clone().unwrap_or_else(|| image.workdir.clone()),
            user: req.user.clone().unwrap_or_else(|| image.user.clone()),
            hostname: req.hostname.clone().unwrap_or_else(|| id[..12].to_string()),
            tty: req.tty,
            open_stdin: req.open_stdin,
            restart: req.restart.clone(),
            auto_remove: req.auto_remove,
            resources: spec::Resources {
                pids_limit: req.resources.pids_limit.filter(|p| *p > 0),
                ..req.resources.clone()
            },
            binds,
            volumes,
            tmpfs,
            network: req.network.clone(),
            stop_signal: req
                .stop_signal
                .clone()
                .or_else(|| image.stop_signal.clone()),
            stop_timeout: req.stop_timeout,
            health,
            init: req.init,
            labels: req.labels.clone(),
            log,
        })
    }

    /// The networks a request joins: its `joins`, or its network mode alone.
    fn joins_of(&self, req: &ContainerRequest) -> Vec<Join> {
        if !req.joins.is_empty() {
            return req.joins.clone();
        }
        let network = crate::network::mode_network(&req.network)
            .flatten()
            .map(str::to_string);
        vec![Join {
            network,
            aliases: Vec::new(),
        }]
    }

    /// Checks the networks and the requested host ports before anything is
    /// created; returns what `Networks::prepare` will need.
    fn network_plan(
        &self,
        config: &ContainerConfig,
        req: &ContainerRequest,
        image: &ImageInfo,
    ) -> Result<Option<(Networks, Prepare)>, EngineError> {
        if crate::network::mode_network(&config.network).is_none() {
            return Ok(None);
        }
        let nets = Networks::open(&self.root)?;
        // A crash may have left allocations of containers that are gone.
        let live = || self.store.ids().into_iter().collect::<HashSet<String>>();
        nets.repair(live)?;
        let mut requests = req.publish.clone();
        if req.publish_all {
            requests.extend(
                crate::network::portspec::exposed(&image.exposed_ports)
                    .map_err(|e| EngineError::Invalid(e.to_string()))?,
            );
        }
        let ports = nets.preflight_requests(&requests)?;
        Ok(Some((
            nets,
            Prepare {
                container_id: config.id.clone(),
                name: config.name.clone(),
                hostname: Some(config.hostname.clone()),
                joins: self.joins_of(req),
                ports,
            },
        )))
    }
}

/// The image's health check with the request's changes.
fn health_of(image: Option<HealthConfig>, req: &HealthRequest) -> Option<HealthConfig> {
    if req.disable {
        return None;
    }
    let mut health = match &req.test {
        Some(test) => Some(HealthConfig {
            test: test.clone(),
            ..image.unwrap_or_default()
        }),
        None => image,
    }?;
    if let Some(v) = req.interval_ns {
        health.interval_ns = v;
    }
    if let Some(v) = req.timeout_ns {
        health.timeout_ns = v;
    }
    if let Some(v) = req.start_period_ns {
        health.start_period_ns = v;
    }
    if let Some(v) = req.start_interval_ns {
        health.start_interval_ns = v;
    }
    if let Some(v) = req.retries {
        health.retries = v;
    }
    if health.interval_ns == 0 {
        health.interval_ns = DEFAULT_HEALTH_INTERVAL_NS;
    }
    Some(health)
}

type Mounts = (Vec<BindMount>, Vec<VolumeMount>, Vec<(String, String)>);

/// The bind mounts, volumes and tmpfs mounts of a request, plus an
/// anonymous volume for every image `VOLUME` that none of them covers (as
/// Docker does); every destination is checked before anything is made but
/// a missing bind source directory (Docker's `-v` makes it).
fn mounts(requested: &[MountRequest], image_volumes: &[String]) -> Result<Mounts, EngineError> {
    let (mut binds, mut volumes, mut tmpfs) = (Vec::new(), Vec::new(), Vec::new());
    let norm = |p: &str| p.trim_end_matches('/').to_string();
    let mut seen = BTreeSet::new();
    for m in requested {
        let target = m.target();
        if !target.starts_with('/') {
            return Err(EngineError::Invalid(format!(
                "invalid mount {target:?}: the container path must be absolute"
            )));
        }
        if !seen.insert(norm(target)) {
            return Err(EngineError::Invalid(format!(
                "duplicate mount point: {}",
                norm(target)
            )));
        }
    }
    for m in requested {
        match m {
            MountRequest::Bind { source, target, .. } => {
                let origin = format!("-v {}:{target}", source.display());
                spec::check_destination(target, true, &origin)?;
            }
            MountRequest::Volume { name, target, .. } => {
                let origin = match name {
                    None => format!("-v {target}"),
                    Some(n) => format!("-v {n}:{target}"),
                };
                spec::check_destination(target, false, &origin)?;
            }
            MountRequest::Tmpfs { target, .. } => {
                spec::check_destination(target, false, &format!("--tmpfs {target}"))?;
            }
        }
    }
    for m in requested {
        match m {
            MountRequest::Bind {
                source,
                target,
                readonly,
                create_source,
            } => {
                if *create_source && !source.exists() {
                    std::fs::create_dir_all(source).map_err(EngineError::io(format!(
                        "creating bind source directory {}",
                        source.display()
                    )))?;
                }
                let source = canonical(source)?;
                binds.push(BindMount {
                    source,
                    destination: target.clone(),
                    readonly: *readonly,
                });
            }
            MountRequest::Volume {
                name,
                target,
                readonly,
                nocopy,
            } => {
                if let Some(n) = name.as_deref().filter(|n| !crate::volume::valid(n)) {
                    return Err(EngineError::Invalid(format!(
                        "invalid volume name {n:?}: use [a-zA-Z0-9][a-zA-Z0-9_.-]*, or an absolute host path for a bind mount"
                    )));
                }
                volumes.push(VolumeMount {
                    name: name.clone().unwrap_or_else(VolumeStore::anonymous_name),
                    destination: target.clone(),
                    readonly: *readonly,
                    nocopy: *nocopy,
                    anonymous: name.is_none(),
                });
            }
            MountRequest::Tmpfs { target, options } => {
                tmpfs.push((target.clone(), options.clone()));
            }
        }
    }
    for dst in image_volumes {
        if !dst.starts_with('/') || !seen.insert(norm(dst)) {
            continue;
        }
        spec::check_destination(dst, false, &format!("the image's VOLUME {dst}"))?;
        volumes.push(VolumeMount {
            name: VolumeStore::anonymous_name(),
            destination: dst.clone(),
            readonly: false,
            nocopy: false,
            anonymous: true,
        });
    }
    Ok((binds, volumes, tmpfs))
}

fn canonical(source: &Path) -> Result<std::path::PathBuf, EngineError> {
    source.canonicalize().map_err(EngineError::io(format!(
        "bind source path {}",
        source.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(src: &str, dst: &str) -> MountRequest {
        MountRequest::Bind {
            source: src.into(),
            target: dst.into(),
            readonly: false,
            create_source: false,
        }
    }

    #[test]
    fn image_volumes_not_covered_become_anonymous_volumes() {
        let reqs = [bind("/tmp", "/data/")];
        let (binds, volumes, _) =
            mounts(&reqs, &["/data".into(), "/cache".into(), "rel".into()]).unwrap();
        assert_eq!(binds.len(), 1);
        assert_eq!(volumes.len(), 1);
        assert!(volumes[0].anonymous && volumes[0].destination == "/cache");
    }

    #[test]
    fn mounts_are_refused_before_anything_is_made() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("made");
        let reqs = [
            MountRequest::Bind {
                source: missing.clone(),
                target: "/d".into(),
                readonly: false,
                create_source: true,
            },
            bind("/tmp", "/proc/x"),
        ];
        assert!(matches!(mounts(&reqs, &[]), Err(EngineError::Spec(_))));
        assert!(!missing.exists(), "nothing is made for a refused request");
        let dup = [bind("/tmp", "/d"), bind("/var", "/d/")];
        assert!(matches!(mounts(&dup, &[]), Err(EngineError::Invalid(_))));
        let bad = [MountRequest::Volume {
            name: Some("../x".into()),
            target: "/d".into(),
            readonly: false,
            nocopy: false,
        }];
        assert!(mounts(&bad, &[]).is_err());
    }

    #[test]
    fn health_changes_apply_over_the_images() {
        let image = HealthConfig {
            test: vec!["CMD".into(), "true".into()],
            retries: 3,
            ..Default::default()
        };
        let h = health_of(
            Some(image.clone()),
            &HealthRequest {
                retries: Some(5),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!((h.retries, h.interval_ns), (5, DEFAULT_HEALTH_INTERVAL_NS));
        assert_eq!(h.test, image.test);
        let off = HealthRequest {
            disable: true,
            ..Default::default()
        };
        assert!(health_of(Some(image), &off).is_none());
        assert!(health_of(None, &HealthRequest::default()).is_none());
    }
}
