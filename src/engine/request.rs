//! What a caller asks the engine for: a typed container request.
//!
//! The CLI's `run`/`create` flags and a project's service model both
//! become a [`ContainerRequest`]; the engine fills in the image's defaults
//! (entrypoint, command, environment, working directory, user, stop
//! signal, health check, `VOLUME`s) and checks it before anything is made.
//! The shape follows Docker's `ContainerCreate` body (Config + HostConfig)
//! where it can, so the Engine API and `kube play` map onto it too.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::network::portspec::PortRequest;
use crate::network::Join;
use crate::runtime::container::RestartPolicy;
use crate::runtime::spec::Resources;

/// Where the container's root filesystem comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageSource {
    /// An image reference, pulled when the store lacks it.
    Image(String),
    /// A directory used as the only (read-only) lower layer (`--rootfs`).
    Rootfs(PathBuf),
}

impl Default for ImageSource {
    fn default() -> Self {
        Self::Image(String::new())
    }
}

/// One mount of the container.
#[derive(Debug, Clone, PartialEq)]
pub enum MountRequest {
    /// A host path. `create_source` makes a missing directory first
    /// (Docker's `-v`; its `--mount` would refuse).
    Bind {
        source: PathBuf,
        target: String,
        readonly: bool,
        create_source: bool,
    },
    /// A named volume, or an anonymous one when `name` is `None`.
    Volume {
        name: Option<String>,
        target: String,
        readonly: bool,
        nocopy: bool,
    },
    /// A tmpfs with mount options (`size=64m,mode=1777`).
    Tmpfs { target: String, options: String },
}

impl MountRequest {
    pub fn target(&self) -> &str {
        match self {
            Self::Bind { target, .. }
            | Self::Volume { target, .. }
            | Self::Tmpfs { target, .. } => target,
        }
    }
}

/// Changes to the image's health check (`--health-*`, a service's
/// `healthcheck`): a field left `None` keeps the image's value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthRequest {
    /// No health check at all, even the image's (`--no-healthcheck`).
    pub disable: bool,
    /// The test (`["CMD-SHELL", "curl -f …"]` or `["CMD", …]`).
    pub test: Option<Vec<String>>,
    pub interval_ns: Option<u64>,
    pub timeout_ns: Option<u64>,
    pub start_period_ns: Option<u64>,
    pub start_interval_ns: Option<u64>,
    pub retries: Option<u32>,
}

/// A container to create.
#[derive(Debug, Clone, Default)]
pub struct ContainerRequest {
    /// A generated name when `None`.
    pub name: Option<String>,
    pub image: ImageSource,
    /// Replaces the image's entrypoint; `Some(vec![])` clears it.
    pub entrypoint: Option<Vec<String>>,
    /// Replaces the image's command when not empty.
    pub command: Vec<String>,
    /// `K=V` pairs, over the image's environment.
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    /// The first 12 characters of the id when `None`.
    pub hostname: Option<String>,
    pub restart: RestartPolicy,
    /// Remove the container when it exits (`--rm`).
    pub auto_remove: bool,
    pub resources: Resources,
    pub mounts: Vec<MountRequest>,
    /// The network mode: `default`, `none`, `host`, or a network name.
    /// With more than one network, the first is this and the others are
    /// [`ContainerRequest::joins`] after the first.
    pub network: String,
    /// The networks joined, with aliases, when the mode is a berth
    /// network; empty means `network` alone without aliases.
    pub joins: Vec<Join>,
    /// Ports to publish (on the first network).
    pub publish: Vec<PortRequest>,
    /// Publish every port the image exposes on a random host port (`-P`).
    pub publish_all: bool,
    pub tty: bool,
    pub open_stdin: bool,
    pub init: bool,
    pub stop_signal: Option<String>,
    /// Seconds.
    pub stop_timeout: Option<u64>,
    pub health: HealthRequest,
    pub labels: BTreeMap<String, String>,
    /// json-file log options (`max-size=10m`, `max-file=3`) over the
    /// configured defaults.
    pub log_opts: Vec<String>,
}

impl ContainerRequest {
    /// A request for `image` running `command`, everything else default.
    pub fn new(image: &str, command: &[&str]) -> Self {
        Self {
            image: ImageSource::Image(image.to_string()),
            command: command.iter().map(|s| s.to_string()).collect(),
            network: "default".into(),
            restart: RestartPolicy::parse("no").expect("valid"),
            ..Default::default()
        }
    }
}
