//! Why an engine operation failed, with the exit code Docker's CLI gives
//! each case (125: the engine failed; 126/127: the command could not be
//! run/found; 1: the container's state forbids the operation).

use crate::image::store::StoreError;
use crate::network::NetError;
use crate::registry::RegistryError;
use crate::runtime::container::ContainerError;
use crate::runtime::log::LogError;
use crate::runtime::spec::SpecError;
use crate::volume::VolumeError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The request is refused before anything is made.
    #[error("{0}")]
    Invalid(String),
    /// The container's process could not be started.
    #[error("failed to start container {name}: {message}")]
    Start {
        name: String,
        code: i32,
        message: String,
    },
    /// An exec'd process could not be started.
    #[error("exec in container {container}: {message}")]
    Exec {
        container: String,
        code: i32,
        message: String,
    },
    #[error(
        "the supervisor of container {name} exited before starting it; see its supervisor.log"
    )]
    SupervisorGone { name: String },
    /// The container's state forbids the operation (`rm` of a running
    /// container, `kill` of a stopped one).
    #[error("{0}")]
    Conflict(String),
    #[error("invalid reference format {name:?}: {message}")]
    Reference { name: String, message: String },
    #[error("{0}")]
    Pull(#[from] RegistryError),
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Network(#[from] NetError),
    #[error(transparent)]
    Volume(#[from] VolumeError),
    #[error(transparent)]
    Image(#[from] StoreError),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Supervisor(#[from] crate::runtime::supervisor::SupervisorError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl EngineError {
    /// The exit code Docker's CLI gives this failure.
    pub fn code(&self) -> i32 {
        match self {
            Self::Start { code, .. } | Self::Exec { code, .. } => *code,
            Self::Conflict(_) => 1,
            _ => 125,
        }
    }

    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }
}
