//! The registry client: pull and push images over the distribution API.
//!
//! The protocol is the OCI distribution spec
//! (<https://github.com/opencontainers/distribution-spec/blob/main/spec.md>),
//! which is Docker's registry API v2: manifests under
//! `/v2/NAME/manifests/REFERENCE`, blobs under `/v2/NAME/blobs/DIGEST`,
//! uploads through `/v2/NAME/blobs/uploads/`. The parts:
//!
//! - [`config`]: berth's config file (mirrors, insecure registries, CAs);
//! - [`credentials`]: Docker's `config.json` and credential helpers;
//! - [`auth`]: `WWW-Authenticate` challenges and bearer tokens;
//! - [`client`]: one endpoint: scheme, TLS, auth, the redirect policy;
//! - [`manifest`], [`platform`]: checked manifests and platform choice;
//! - [`progress`]: progress bars or plain lines.

pub mod auth;
pub mod client;
pub mod compress;
pub mod config;
pub mod credentials;
pub mod login;
pub mod manifest;
pub mod platform;
pub mod progress;
pub mod pull;
pub mod push;
pub mod sources;

pub use config::RegistryConfig;
pub use platform::Platform;
pub use progress::Progress;
pub use pull::{pull, pull_async, pull_missing, pull_outcome, PullOutcome};
pub use push::{push, push_async, PushOutcome};

/// Errors talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Credentials(#[from] credentials::CredentialError),
    #[error("registry {registry} is unreachable: {message}; check the address and that the registry is running")]
    Unreachable { registry: String, message: String },
    #[error("TLS with registry {registry} failed: {message}")]
    Tls { registry: String, message: String },
    #[error("{what} not found in registry {registry} ({detail}); check the name and tag")]
    NotFound {
        registry: String,
        what: String,
        detail: String,
    },
    #[error("access denied by registry {registry} ({detail}); run `berth login {registry}` or check the repository name")]
    Unauthorized { registry: String, detail: String },
    #[error("registry {registry} answered {detail}")]
    Status { registry: String, detail: String },
    #[error("registry {registry}: {message}")]
    Protocol { registry: String, message: String },
    #[error("invalid manifest {digest} from registry {registry}: {source}")]
    Manifest {
        registry: String,
        digest: String,
        source: manifest::ManifestError,
    },
    #[error("{what} from registry {registry} failed verification: expected {expected}, got {actual}; the registry served corrupt or tampered data")]
    DigestMismatch {
        registry: String,
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{what} from registry {registry} has the wrong size: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        registry: String,
        what: String,
        expected: u64,
        actual: String,
    },
    #[error("no matching manifest for {platform} in the manifest list entries (available: {available}); choose one with --platform")]
    NoMatchingPlatform { platform: String, available: String },
    #[error("image platform {actual} does not match the requested {wanted}")]
    PlatformMismatch { wanted: String, actual: String },
    #[error("transfer from registry {registry} failed: {message}")]
    Transfer { registry: String, message: String },
    #[error(transparent)]
    Store(#[from] crate::image::StoreError),
    #[error("an image does not exist locally with the tag: {0}")]
    NotLocal(String),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("{action} {reference}: {source}")]
    For {
        action: &'static str,
        reference: String,
        #[source]
        source: Box<RegistryError>,
    },
}

impl RegistryError {
    /// Adds the action and reference (`pulling busybox:latest: …`).
    pub fn context(self, action: &'static str, reference: impl ToString) -> Self {
        match self {
            e @ RegistryError::For { .. } => e,
            e => RegistryError::For {
                action,
                reference: reference.to_string(),
                source: Box::new(e),
            },
        }
    }
}
