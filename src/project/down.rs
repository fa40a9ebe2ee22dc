//! `down`'s orchestration, as a library: the project's containers stopped
//! and removed dependents first (the containers of one stage in
//! parallel), then its networks, with `-v` its volumes, and with `--rmi`
//! the images it built or used.

use std::time::Duration;

use super::executor::Backend;
use super::host::EngineBackend;
use super::model::ServiceModel;
use super::planner::{self, DownOptions};
use super::Project;
use crate::engine::Engine;
use crate::image::{ImageStore, StoreError};
use crate::state::StateRoot;

/// `down --rmi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveImages {
    /// Images built for services without their own `image` name (Compose's rule).
    Local,
    /// Every service's image.
    All,
}

/// What `down` removes besides the containers and networks.
#[derive(Debug, Clone, Default)]
pub struct DownRequest {
    pub volumes: bool,
    pub remove_orphans: bool,
    /// Seconds to wait for each container to stop (else its service's grace).
    pub timeout: Option<u64>,
    pub images: Option<RemoveImages>,
}

/// Why `down` failed.
#[derive(Debug, thiserror::Error)]
pub enum DownError {
    #[error(transparent)]
    Actual(#[from] super::actual::ActualError),
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    #[error("removing containers: {}", .0.join("; "))]
    Containers(Vec<String>),
    #[error("removing network {name}: {message}")]
    Network { name: String, message: String },
    #[error("removing volume {name}: {message}")]
    Volume { name: String, message: String },
}

/// Takes `desired`'s project off the machine.
pub fn down(root: &StateRoot, desired: &Project, req: &DownRequest) -> Result<(), DownError> {
    let actual = super::actual::read(root, &desired.name)?;
    let plan = planner::plan_down(
        desired,
        &actual,
        DownOptions {
            volumes: req.volumes,
            remove_orphans: req.remove_orphans,
        },
    );
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
    let backend = EngineBackend::new(Engine::open(root)?, &desired.name);
    let grace = |svc: &str| {
        req.timeout.map(Duration::from_secs).unwrap_or_else(|| {
            desired
                .services
                .get(svc)
                .map(|s| s.spec.stop_grace_period.0)
                .unwrap_or(super::model::DEFAULT_STOP_GRACE)
        })
    };
    let mut failed = Vec::new();
    // Dependents first: stages of the down plan are already reversed; the
    // containers of one stage go in parallel; orphans last.
    let all: Vec<&planner::ContainerPlan> = plan.containers().collect();
    for stage in plan
        .stages
        .iter()
        .cloned()
        .chain(std::iter::once(Vec::new()))
    {
        let batch: Vec<&&planner::ContainerPlan> = if stage.is_empty() {
            all.iter()
                .filter(|c| !desired.services.contains_key(&c.service))
                .collect()
        } else {
            all.iter().filter(|c| stage.contains(&c.service)).collect()
        };
        let errors = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for c in batch {
                let (backend, errors) = (&backend, &errors);
                let g = grace(&c.service);
                s.spawn(move || {
                    if let planner::Action::Remove { id, .. } = &c.action {
                        backend.progress(&format!("Container {}", c.name), "Stopping");
                        match backend.remove(id, g) {
                            Ok(()) => backend.progress(&format!("Container {}", c.name), "Removed"),
                            Err(e) => errors
                                .lock()
                                .expect("lock")
                                .push(format!("{}: {e}", c.name)),
                        }
                    }
                });
            }
        });
        failed.extend(errors.into_inner().expect("joined"));
    }
    if !failed.is_empty() {
        return Err(DownError::Containers(failed));
    }
    for n in &plan.networks {
        backend
            .remove_network(&n.name)
            .map_err(|message| DownError::Network {
                name: n.name.clone(),
                message,
            })?;
        backend.progress(&format!("Network {}", n.name), "Removed");
    }
    for v in &plan.volumes {
        backend
            .remove_volume(&v.name)
            .map_err(|message| DownError::Volume {
                name: v.name.clone(),
                message,
            })?;
        backend.progress(&format!("Volume {}", v.name), "Removed");
    }
    if let Some(kind) = req.images {
        remove_images(root, desired, kind, &backend);
    }
    Ok(())
}

/// `--rmi`: removes the images (a missing one is no error; one still in
/// use is a warning).
fn remove_images(root: &StateRoot, desired: &Project, kind: RemoveImages, backend: &EngineBackend) {
    let local = |s: &ServiceModel| {
        s.spec.build.is_some() && s.spec.image == format!("{}-{}", desired.name, s.name)
    };
    let mut images: Vec<&String> = desired
        .services
        .values()
        .filter(|s| kind == RemoveImages::All || local(s))
        .map(|s| &s.spec.image)
        .collect();
    images.sort();
    images.dedup();
    let store = match ImageStore::open(root) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("warning: opening the image store: {e}");
            return;
        }
    };
    let in_use = crate::engine::image::images_in_use(&store);
    for image in images {
        match store.remove(image, false, &in_use) {
            Ok(_) => backend.progress(&format!("Image {image}"), "Removed"),
            Err(StoreError::NotFound(_)) => {}
            Err(e) => eprintln!("warning: removing image {image}: {e}"),
        }
    }
}
