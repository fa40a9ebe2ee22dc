//! Projects: `berth.toml`, the resolved model, and the planner.
//!
//! The pipeline, all pure but for reading the files it is given:
//! [`source`] parses TOML keeping spans and merges `-f` files,
//! [`interpolate`] expands `${VAR}` with `.env` and the environment,
//! [`de`] feeds the spanned tree to the serde types of [`manifest`],
//! [`mod@load`] ties these together with discovery and project naming,
//! [`model`] resolves the manifest into per-replica container specs with
//! config hashes, [`canonical`] prints it back as `berth config` does, and
//! [`planner`] compares the model with the actual state.
//!
//! # How a command that changes the machine uses this
//!
//! ```text
//! let loaded  = project::load(&LoadOptions::from_process(files, project_name)?)?;   // all manifest errors here
//! let first   = project::resolve(&loaded, &profiles, &ImageDigests::new())?;        // which images are needed
//! //  ... pull/build per --pull, then map each `spec.image` (as written) to its digest ...
//! let desired = project::resolve(&loaded, &profiles, &digests)?;                    // hashes include digests
//! let actual  = ActualState { containers, networks, volumes };                      // read from the runtime
//! let plan    = project::plan(&desired, &actual, &PlanOptions { .. })?;
//! print!("{}", project::render(&plan));                                             // `berth plan`
//! //  apply: plan.networks / plan.volumes (Create), plan.orphans (Remove), then
//! //  for stage in plan.stages (services of a stage in parallel):
//! //      wait for plan.service(s).depends_on conditions, then apply each
//! //      ContainerPlan.action, creating containers from desired.services[s].spec
//! //      with the ContainerInstance's name and labels, and recording the spec
//! //      (JSON) with the container so the next ActualState can carry it.
//! ```

pub mod actual;
pub mod canonical;
pub mod convert;
pub mod de;
pub mod down;
pub mod error;
pub mod executor;
pub mod host;
pub mod interpolate;
pub mod load;
pub mod lock;
pub mod logs;
pub mod manifest;
pub mod model;
pub mod planner;
pub mod schema;
pub mod selection;
pub mod source;
pub mod up;
pub mod yaml;

#[cfg(test)]
mod executor_tests;
#[cfg(test)]
mod tests;

pub use error::{Diagnostic, LoadError};
pub use load::{load, LoadOptions, Loaded};
pub use model::{resolve, ContainerSpec, ImageDigests, Project};
pub use planner::{plan, plan_down, render, ActualState, Plan, PlanOptions};
