//! `up`'s orchestration, as a library: the project's images built or
//! pulled per policy before planning, the plan applied by the executor
//! over the in-process engine (and taken back when it fails), readiness
//! waits, and stopping in dependency order. `cli/compose.rs` parses the
//! flags and calls these; watch calls the same ones.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::actual::{self, ProjectContainer};
use super::executor::{self, ApplyOptions, Backend, ExecError, Observed};
use super::host::{port_request, EngineBackend};
use super::model::BuildSpec;
use super::{ImageDigests, LoadError, Loaded, Plan, PlanOptions, Project};
use crate::engine::{Engine, EngineError};
use crate::image::{Image, ImageStore, Reference, StoreError};
use crate::network::Networks;
use crate::state::StateRoot;

/// Why `up` (or a part of it) failed.
#[derive(Debug, thiserror::Error)]
pub enum UpError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Plan(#[from] super::planner::PlanError),
    #[error(transparent)]
    Actual(#[from] super::actual::ActualError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error("looking up image {image}: {source}")]
    Image { image: String, source: StoreError },
    #[error("service {service}: {message}")]
    Service { service: String, message: String },
    #[error("service {service}: {source}")]
    Pull {
        service: String,
        source: Box<crate::registry::RegistryError>,
    },
    #[error("building the image of service {service}: {source}")]
    Build {
        service: String,
        source: Box<crate::build::engine::BuildError>,
    },
    #[error("service {service} cannot publish its ports: {message}; nothing was started (free the port or change services.{service}.ports)")]
    PortHeld { service: String, message: String },
    #[error("service {service} is not ready after {secs}s: {status}")]
    NotReady {
        service: String,
        secs: u64,
        status: String,
    },
    #[error("service {service} {why}")]
    Failed { service: String, why: String },
    #[error(transparent)]
    Network(#[from] crate::network::NetError),
    #[error(transparent)]
    Container(#[from] crate::runtime::container::ContainerError),
}

/// `--pull` policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    Missing,
    Never,
}

/// When `up` builds the images of services with `build`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildPolicy {
    /// Build when the image is not in the store (Compose's default).
    Missing,
    /// `--build`: always (the cache makes an unchanged build cheap).
    Always,
    /// `--no-build`: never; a missing image is an error.
    Never,
}

/// Resolves the project with the digests of its images, building and
/// pulling per policy (`None`: only look in the store, never fail for a
/// missing image).
pub fn resolve_with_images(
    root: &StateRoot,
    loaded: &Loaded,
    profiles: &[String],
    images: Option<(PullPolicy, BuildPolicy)>,
) -> Result<Project, UpError> {
    let first = super::resolve(loaded, profiles, &ImageDigests::new())?;
    let store = ImageStore::open(root).map_err(|source| UpError::Image {
        image: String::new(),
        source,
    })?;
    let mut digests = ImageDigests::new();
    for (name, svc) in &first.services {
        let image = &svc.spec.image;
        if digests.contains_key(image) {
            continue;
        }
        let found = match store.resolve(image) {
            Ok(img) => Some(img),
            Err(StoreError::NotFound(_)) => None,
            Err(source) => {
                return Err(UpError::Image {
                    image: image.clone(),
                    source,
                })
            }
        };
        let Some((pull, build)) = images else {
            if let Some(img) = found {
                digests.insert(image.clone(), img.id.to_string());
            }
            continue;
        };
        let refused = |message: String| UpError::Service {
            service: name.clone(),
            message,
        };
        if let Some(spec) = &svc.spec.build {
            match (build, &found) {
                (BuildPolicy::Always, _) | (BuildPolicy::Missing, None) => {
                    let img = build_service(root, name, image, spec, false, false, None)?;
                    digests.insert(image.clone(), img.id.to_string());
                    continue;
                }
                (BuildPolicy::Never, None) => {
                    return Err(refused(format!(
                        "needs image {image}, which is not in the store, and --no-build was given"
                    )))
                }
                (_, Some(_)) => {}
            }
        }
        let reference = || {
            Reference::parse(image).map_err(|e| refused(format!("invalid image {image:?}: {e}")))
        };
        let pulled = |r| UpError::Pull {
            service: name.clone(),
            source: Box::new(r),
        };
        let img = match (pull, found) {
            (PullPolicy::Always, _) if svc.spec.build.is_none() => crate::registry::pull(
                root,
                &reference()?,
                None,
                &crate::registry::Progress::auto(),
            )
            .map_err(pulled)?,
            (_, Some(img)) => img,
            (PullPolicy::Never, None) => {
                return Err(refused(format!(
                    "image {image} is not in the store and --pull never was given"
                )))
            }
            (_, None) => {
                crate::registry::pull_missing(root, &reference()?, None).map_err(pulled)?
            }
        };
        digests.insert(image.clone(), img.id.to_string());
    }
    Ok(super::resolve(loaded, profiles, &digests)?)
}

/// Builds the image of `service` from its `build` section, tagged `image`,
/// with the builder's classic output on stderr.
pub fn build_service(
    root: &StateRoot,
    service: &str,
    image: &str,
    spec: &BuildSpec,
    no_cache: bool,
    pull: bool,
    interrupted: Option<&'static AtomicBool>,
) -> Result<Image, UpError> {
    let tag = Reference::parse(image).map_err(|e| UpError::Service {
        service: service.to_string(),
        message: format!("invalid image name {image:?}: {e}"),
    })?;
    eprintln!("Building {service}");
    let req = crate::build::engine::BuildRequest {
        context: spec.context.clone(),
        dockerfile: Some(spec.context.join(&spec.dockerfile)),
        tags: vec![tag],
        build_args: spec.args.clone(),
        target: spec.target.clone(),
        no_cache,
        pull,
        interrupted,
        ..Default::default()
    };
    crate::build::engine::build(root, &req, &mut std::io::stderr()).map_err(|source| {
        UpError::Build {
            service: service.to_string(),
            source: Box::new(source),
        }
    })
}

/// The desired project (images built and pulled per `images`; `None`
/// never pulls), and the plan from what exists of it.
pub fn desired_and_plan(
    root: &StateRoot,
    loaded: &Loaded,
    profiles: &[String],
    images: Option<(PullPolicy, BuildPolicy)>,
    options: &PlanOptions,
) -> Result<(Project, Plan), UpError> {
    let desired = resolve_with_images(root, loaded, profiles, images)?;
    let actual = actual::read(root, &desired.name)?;
    let plan = super::plan(&desired, &actual, options)?;
    Ok((desired, plan))
}

/// Refuses `up` before it builds, pulls or creates anything when a host
/// port that a service publishes is held by a process or by a container of
/// another project (the project's own containers keep or hand over theirs).
pub fn check_ports_free(
    root: &StateRoot,
    project: &Project,
    services: &[String],
) -> Result<(), UpError> {
    let engine = Engine::open(root)?;
    let ours: Vec<String> = actual::project_containers(engine.store(), &project.name)
        .into_iter()
        .map(|c| c.config.id)
        .collect();
    let nets = Networks::open(root)?;
    for (name, svc) in &project.services {
        if !services.is_empty() && !services.contains(name) {
            continue;
        }
        let held = |message: String| UpError::PortHeld {
            service: name.clone(),
            message,
        };
        let requests = svc
            .spec
            .ports
            .iter()
            .map(port_request)
            .collect::<Result<Vec<_>, _>>()
            .map_err(held)?;
        nets.check_free_requests(&requests, &ours)
            .map_err(|e| held(e.to_string()))?;
    }
    Ok(())
}

/// Applies a plan as `up` does (warnings, then the executor over the
/// engine); on failure, removes the containers and networks this run made
/// (volumes stay: they may hold data). Returns the backend for what
/// follows (waits, logs).
pub fn apply(root: &StateRoot, desired: &Project, plan: &Plan) -> Result<EngineBackend, UpError> {
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
    let backend = EngineBackend::new(Engine::open(root)?, &desired.name);
    if plan.is_noop() {
        eprintln!("project {}: nothing changed", desired.name);
        return Ok(backend);
    }
    let recorder = executor::Recorder::new(&backend);
    if let Err(e) = executor::apply(desired, plan, &recorder, ApplyOptions::default()) {
        let (networks, containers) = recorder.made();
        for name in containers.iter().rev() {
            if let Ok(id) = backend.engine.resolve(name) {
                if backend.engine.remove(&id, true, false).is_ok() {
                    backend.progress(&format!("Container {name}"), "Removed");
                }
            }
        }
        for n in networks.iter().rev() {
            if backend.remove_network(n).is_ok() {
                backend.progress(&format!("Network {n}"), "Removed");
            }
        }
        return Err(e.into());
    }
    Ok(backend)
}

/// Waits until every container of `services` is ready (`up --wait`).
pub fn wait_ready(
    backend: &EngineBackend,
    services: &[String],
    timeout: Duration,
) -> Result<(), UpError> {
    let end = Instant::now() + timeout;
    loop {
        let now: BTreeMap<String, Vec<Observed>> = services
            .iter()
            .map(|s| (s.clone(), backend.observe(s)))
            .collect();
        match executor::readiness(&now) {
            Ok(None) => return Ok(()),
            Ok(Some((service, status))) if Instant::now() > end => {
                return Err(UpError::NotReady {
                    service,
                    secs: timeout.as_secs(),
                    status,
                })
            }
            Ok(Some(_)) => {}
            Err((service, why)) => return Err(UpError::Failed { service, why }),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The containers of the given services of project `name`.
pub fn project_services(engine: &Engine, name: &str, services: &[String]) -> Vec<ProjectContainer> {
    actual::project_containers(engine.store(), name)
        .into_iter()
        .filter(|c| services.iter().any(|s| s == c.service()))
        .collect()
}

/// Stops the running containers, dependents first (`services` is in
/// dependency order), each with its service's grace period.
pub fn stop_in_order(
    engine: &Engine,
    project: &Project,
    services: &[String],
    containers: &[ProjectContainer],
) {
    eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
    let mut order: Vec<&ProjectContainer> = containers.iter().collect();
    order.sort_by_key(|c| std::cmp::Reverse(services.iter().position(|s| s == c.service())));
    for c in order.into_iter().filter(|c| c.running) {
        let grace = project
            .services
            .get(c.service())
            .map(|s| s.spec.stop_grace_period.0.as_secs())
            .unwrap_or(crate::engine::DEFAULT_STOP_TIMEOUT);
        eprintln!(" Container {}  Stopping", c.config.name);
        let _ = engine.stop(&c.config.id, Some(grace), None);
        eprintln!(" Container {}  Stopped", c.config.name);
    }
}
