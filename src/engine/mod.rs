//! berth's engine: the typed container operations every caller shares.
//!
//! The CLI's single-container verbs (`run`, `create`, `start`, `stop`,
//! `kill`, `restart`, `rm`, `wait`, `container prune`), the project
//! executor's backend (`project::host`) and watch all call these, in
//! process: a verb is argument parsing, one call, and printing. An
//! [`Engine`] is a handle on one state root's container store; it is
//! cheap to open and `Sync`, so a parallel `up` shares one across its
//! threads.
//!
//! - [`request`]: [`ContainerRequest`], what a caller asks for (Docker's
//!   `ContainerCreate` in spirit: image, command, env, mounts, networks,
//!   ports, limits, health, restart, labels, log options).
//! - [`image`]: what a container takes from its image (pulled if missing).
//! - `create.rs`: the request completed from the image, checked, and
//!   recorded with its network allocations — or nothing made at all.
//! - `lifecycle.rs`: start (the supervisor spawned by fork+exec, waited for
//!   until the process runs), stop with a grace, kill, restart, wait,
//!   remove, prune.
//!
//! Invariant (fork safety): no engine call forks through libcontainer in
//! the caller's process. What enters a container runs in the supervisor,
//! a single-threaded process of its own, so the engine may be called from
//! many threads at once.

mod create;
mod error;
pub mod exec;
pub mod image;
pub mod inspect;
mod lifecycle;
pub mod request;

pub use error::EngineError;
pub use lifecycle::{
    parse_signal, wait_pid_gone, StartOptions, StartOutcome, Started, DEFAULT_STOP_TIMEOUT,
};
pub use request::{ContainerRequest, HealthRequest, ImageSource, MountRequest};

use crate::runtime::container::ContainerStore;
use crate::state::StateRoot;

/// The engine of one state root.
#[derive(Clone)]
pub struct Engine {
    root: StateRoot,
    store: ContainerStore,
}

impl Engine {
    pub fn open(root: &StateRoot) -> Result<Self, EngineError> {
        Ok(Self {
            root: root.clone(),
            store: ContainerStore::open(root)?,
        })
    }

    pub fn root(&self) -> &StateRoot {
        &self.root
    }

    /// The container records (for listings and inspection).
    pub fn store(&self) -> &ContainerStore {
        &self.store
    }

    /// A container's id from its name, id or unique id prefix.
    pub fn resolve(&self, query: &str) -> Result<String, EngineError> {
        Ok(self.store.resolve(query)?)
    }
}
