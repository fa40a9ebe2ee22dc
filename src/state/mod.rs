//! The state root: the one directory berth owns on the host.
//!
//! Everything berth creates lives under it (default `/var/lib/berth`,
//! `--root` or `BERTH_ROOT` to change it):
//!
//! ```text
//! ROOT/
//!   lock                 flock(2) serialising writers of shared state
//!   images/              an OCI image layout (oci-layout, index.json, blobs/sha256/…)
//!   layers/              unpacked layer directories keyed by chain id
//!   image-leases/        writers' leases on the image store (image::lease)
//!   tmp/                 staging area; anything here after a crash is garbage
//! ```
//!
//! Writes that matter go through [`atomic::write_atomic`] (temp file, fsync,
//! rename, fsync of the directory) while the caller holds [`lock::StateLock`],
//! so a crash at any point leaves either the old or the new file, never a torn
//! one. Later parts (containers, networks, projects) add their own
//! sub-directories here.

pub mod atomic;
pub mod lock;
pub mod process;
pub mod space;

use std::path::{Path, PathBuf};

pub use atomic::{write_atomic, write_json_atomic};
pub use lock::StateLock;
pub use space::describe_io;

/// Default location of the state root.
pub const DEFAULT_ROOT: &str = "/var/lib/berth";

/// Errors from opening or using the state root.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot create state root {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot lock state root {path}: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {}", describe_io(source, path))]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A handle on the state root directory.
#[derive(Debug, Clone)]
pub struct StateRoot {
    path: PathBuf,
}

impl StateRoot {
    /// Opens (creating if needed) the state root at `path`.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, StateError> {
        let path = path.into();
        for dir in [path.clone(), path.join("tmp")] {
            std::fs::create_dir_all(&dir).map_err(|source| StateError::Create {
                path: dir.clone(),
                source,
            })?;
        }
        let path = path.canonicalize().map_err(|source| StateError::Create {
            path: path.clone(),
            source,
        })?;
        Ok(Self { path })
    }

    /// The root directory itself.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A sub-directory of the root, created if missing.
    pub fn subdir(&self, name: &str) -> Result<PathBuf, StateError> {
        let dir = self.path.join(name);
        std::fs::create_dir_all(&dir).map_err(|source| StateError::Create {
            path: dir.clone(),
            source,
        })?;
        Ok(dir)
    }

    /// The staging directory: temp files are made here so that a rename into
    /// place stays on one filesystem.
    pub fn tmp_dir(&self) -> PathBuf {
        self.path.join("tmp")
    }

    /// Takes the exclusive writer lock for shared state (blocking).
    pub fn lock(&self) -> Result<StateLock, StateError> {
        StateLock::acquire(&self.path.join("lock"))
    }
}
