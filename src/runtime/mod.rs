//! Containers: the OCI spec with Docker's defaults, the overlay root
//! filesystem, youki's `libcontainer` as the engine, and the per-container
//! supervisor that owns a container's init process, its log and its restarts.
//!
//! See ARCHITECTURE.md ("runtime") for how the pieces fit.

pub mod attach;
pub mod commit;
pub mod container;
pub mod diff;
pub mod engine;
pub mod health_schedule;
pub mod log;
pub mod names;
pub mod netns;
pub mod recover;
pub mod rootfs;
pub mod seal;
pub mod seccomp;
pub mod spec;
pub mod supervisor;
pub mod user;
