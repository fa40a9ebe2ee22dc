//! `develop.watch`: the rules `berth watch` (and `up --watch`) follow.
//!
//! This is Compose's Develop Specification
//! (<https://docs.docker.com/reference/compose-file/develop/>, how-to:
//! <https://docs.docker.com/compose/how-tos/file-watch/>) written the TOML
//! way, one `[[services.NAME.develop.watch]]` table per rule:
//!
//! ```toml
//! [[services.web.develop.watch]]
//! action = "sync"              # sync | rebuild | sync+restart | restart | sync+exec
//! path = "./src"               # relative to the project directory
//! target = "/app/src"          # for the sync actions
//! ignore = ["*.tmp", "node_modules/"]
//! initial_sync = true          # sync all of path when watch starts
//! ```
//!
//! The checks across keys (`target` only and always for the sync actions,
//! `exec` only and always for `sync+exec`, `rebuild` only for a service
//! with `build`) are in `load.rs` with the other cross-key checks.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::forms::{is_empty_kv, CommandLine, KeyValues};

/// Development-time settings of a service.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a develop table")]
pub struct Develop {
    /// Files to watch and what to do when they change (`berth watch`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watch: Vec<WatchRule>,
}

/// One watch rule: a host path and the action a change under it triggers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a watch rule table")]
pub struct WatchRule {
    /// What to do: sync, rebuild, sync+restart, restart or sync+exec.
    pub action: WatchAction,
    /// The file or directory to watch, relative to the project directory.
    pub path: String,
    /// Where `path` goes in the containers (an absolute path); the sync actions only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Paths under `path` to leave alone, in `.dockerignore` syntax, relative to `path`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<String>,
    /// The command `sync+exec` runs in each container after syncing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<WatchExec>,
    /// Sync the whole of `path` into the containers when watch starts, not
    /// only what changes later (the sync actions only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub initial_sync: bool,
}

/// The command a `sync+exec` rule runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "an exec table with `command`")]
pub struct WatchExec {
    /// The command: an array, or a string split like a shell.
    pub command: CommandLine,
    /// User to run it as (default: the container's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Working directory (default: the container's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Extra environment variables.
    #[serde(default, skip_serializing_if = "is_empty_kv")]
    pub environment: KeyValues,
}

/// What a watch rule does when files under its path change.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum WatchAction {
    /// Copy the changed files into the running containers.
    #[serde(rename = "sync")]
    Sync,
    /// Rebuild the image and recreate the containers if it changed.
    #[serde(rename = "rebuild")]
    Rebuild,
    /// Sync, then restart the containers.
    #[serde(rename = "sync+restart")]
    SyncRestart,
    /// Restart the containers.
    #[serde(rename = "restart")]
    Restart,
    /// Sync, then run `exec.command` in each container.
    #[serde(rename = "sync+exec")]
    SyncExec,
}

impl WatchAction {
    /// Whether the action copies files (and so needs a `target`).
    pub fn syncs(self) -> bool {
        matches!(
            self,
            WatchAction::Sync | WatchAction::SyncRestart | WatchAction::SyncExec
        )
    }
}

impl fmt::Display for WatchAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WatchAction::Sync => "sync",
            WatchAction::Rebuild => "rebuild",
            WatchAction::SyncRestart => "sync+restart",
            WatchAction::Restart => "restart",
            WatchAction::SyncExec => "sync+exec",
        })
    }
}
