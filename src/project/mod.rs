//! Projects: `berth.toml`, the resolved model, and the planner.
//!
//! The pipeline, all pure but for reading the files it is given:
//! [`source`] parses TOML keeping spans and merges `-f` files,
//! [`interpolate`] expands `${VAR}` with `.env` and the environment,
//! [`de`] feeds the spanned tree to the serde types of [`manifest`],
//! [`load`] ties these together with discovery and project naming,
//! [`model`] resolves the manifest into per-replica container specs with
//! config hashes, and [`planner`] compares that with the actual state.

pub mod de;
pub mod error;
pub mod interpolate;
pub mod load;
pub mod manifest;
pub mod source;

pub use error::{Diagnostic, LoadError};
pub use load::{load, LoadOptions, Loaded};
pub mod model;

pub use model::{resolve, ContainerSpec, ImageDigests, Project};
pub mod canonical;

pub mod planner;
pub mod schema;
#[cfg(test)]
mod tests;

pub use planner::{plan, plan_down, render, ActualState, Plan, PlanOptions};
