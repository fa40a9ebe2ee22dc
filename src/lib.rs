//! berth: a daemonless, Compose-like container orchestrator.
//!
//! See ARCHITECTURE.md for the bird's-eye view and the code map.

pub mod cli;
pub mod network;
pub mod state;
