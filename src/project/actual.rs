//! The actual state of a project, read from the machine: the runtime's
//! container records (`ROOT/containers/*/config.json` + `state.json`), the
//! network layer's records (`ROOT/networks/`) and the project volumes
//! (`ROOT/volumes/`).
//!
//! A container belongs to a project when its `berth.project` label says so;
//! the spec it was created from travels with it as the `berth.spec` label
//! (JSON of [`ContainerSpec`]), written in the same atomic record as the
//! container itself, so `plan` can name the fields that changed. Whether a
//! container runs is checked against the processes, not only `state.json`
//! (a supervisor killed with the machine leaves "running" behind).

use super::model::{ContainerSpec, LABEL_PROJECT, LABEL_REPLICA, LABEL_SERVICE};
use super::planner::{ActualContainer, ActualResource, ActualState, ContainerStatus};
use crate::network::Networks;
use crate::runtime::container::{
    pid_alive, supervisor_alive, ContainerConfig, ContainerState, ContainerStore, STATUS_CORRUPT,
};
use crate::state::StateRoot;
use crate::volume::VolumeStore;

/// The label carrying the JSON of the spec a container was created from.
pub const LABEL_SPEC: &str = "berth.spec";

/// Errors reading the actual state.
#[derive(Debug, thiserror::Error)]
pub enum ActualError {
    #[error("reading containers: {0}")]
    Containers(#[from] crate::runtime::container::ContainerError),
    #[error("reading networks: {0}")]
    Networks(#[from] crate::network::NetError),
    #[error("reading volumes: {0}")]
    Volumes(#[from] crate::volume::VolumeError),
}

/// One container of a project with what the executor needs beyond the plan.
#[derive(Debug, Clone)]
pub struct ProjectContainer {
    pub config: ContainerConfig,
    pub state: ContainerState,
    /// The init process is alive.
    pub running: bool,
}

impl ProjectContainer {
    pub fn service(&self) -> &str {
        self.config
            .labels
            .get(LABEL_SERVICE)
            .map(String::as_str)
            .unwrap_or("")
    }
    pub fn replica(&self) -> u32 {
        self.config
            .labels
            .get(LABEL_REPLICA)
            .and_then(|r| r.parse().ok())
            .unwrap_or(0)
    }
    /// `healthy`, `unhealthy`, `starting`, or none without a health check;
    /// `unknown` while nobody checks it (its supervisor died, or its
    /// record is corrupt).
    pub fn health(&self) -> Option<&str> {
        if matches!(
            self.status(),
            ContainerStatus::Unsupervised | ContainerStatus::Corrupt
        ) {
            return self.state.health.as_ref().map(|_| "unknown");
        }
        self.state.health.as_ref().map(|h| h.status.as_str())
    }
    /// Compose's status word for the container.
    pub fn status(&self) -> ContainerStatus {
        status_of(&self.state, self.running)
    }
}

/// Whether the container's init process is alive per its state record.
pub fn is_running(st: &ContainerState) -> bool {
    matches!(
        st.status.as_str(),
        "running" | "restarting" | STATUS_CORRUPT
    ) && st.pid > 0
        && pid_alive(st.pid)
}

fn status_of(st: &ContainerState, running: bool) -> ContainerStatus {
    if st.status == STATUS_CORRUPT {
        ContainerStatus::Corrupt
    } else if running && !supervisor_alive(st) {
        ContainerStatus::Unsupervised
    } else if running {
        ContainerStatus::Running
    } else if st.status == "created" {
        ContainerStatus::Created
    } else if st.status == "restarting" {
        // Between two runs under a restart policy: it is being kept up.
        ContainerStatus::Running
    } else {
        ContainerStatus::Exited(Some(st.exit_code))
    }
}

/// The containers of `project`, sorted by service and replica.
pub fn project_containers(store: &ContainerStore, project: &str) -> Vec<ProjectContainer> {
    let mut out: Vec<ProjectContainer> = store
        .list()
        .into_iter()
        .filter(|(c, _)| c.labels.get(LABEL_PROJECT).map(String::as_str) == Some(project))
        .map(|(config, state)| {
            let running = is_running(&state);
            ProjectContainer {
                config,
                state,
                running,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (a.service(), a.replica(), &a.config.name).cmp(&(b.service(), b.replica(), &b.config.name))
    });
    out
}

/// Reads what exists for `project`.
pub fn read(root: &StateRoot, project: &str) -> Result<ActualState, ActualError> {
    let store = ContainerStore::open(root)?;
    let containers = project_containers(&store, project)
        .into_iter()
        .map(|c| {
            let spec = c
                .config
                .labels
                .get(LABEL_SPEC)
                .and_then(|s| serde_json::from_str::<ContainerSpec>(s).ok());
            let status = c.status();
            let mut labels = c.config.labels;
            labels.remove(LABEL_SPEC);
            ActualContainer {
                id: c.config.id,
                name: c.config.name,
                labels,
                spec,
                status,
            }
        })
        .collect();
    let networks = Networks::open(root)?
        .list()?
        .into_iter()
        .map(|n| ActualResource {
            name: n.name,
            labels: n.labels,
        })
        .collect();
    let volumes = VolumeStore::open(root)?
        .list()?
        .into_iter()
        .map(|v| ActualResource {
            name: v.name,
            labels: v.labels,
        })
        .collect();
    Ok(ActualState {
        containers,
        networks,
        volumes,
    })
}
