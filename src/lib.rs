//! berth: a daemonless, Compose-like container orchestrator.
//!
//! See ARCHITECTURE.md for the bird's-eye view and the code map.

pub mod build;
pub mod cli;
pub mod confine;
pub mod engine;
pub mod format;
#[cfg(test)]
mod golden;
pub mod image;
pub mod network;
pub mod project;
pub mod registry;
pub mod runtime;
pub mod state;
pub mod terminal;
pub mod volume;
pub mod watch;
