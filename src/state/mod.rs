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
//! Other host users must not reach anything under the root: layers hold
//! images' setuid binaries and device nodes with the modes the image gave
//! them, so a world-traversable path to them hands root to any local user.
//! As Docker keeps `/var/lib/docker` (0710, its layer directories 0700),
//! the root is 0710 and every directory directly under it 0700; [`StateRoot::open`]
//! checks and repairs both on every command, so a root made by an older
//! berth (0755) is closed at the next use.
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

/// The state root's mode: traversable by its group only, as Docker's root.
pub const ROOT_MODE: u32 = 0o710;

/// The mode of every directory directly under the state root.
pub const SUBDIR_MODE: u32 = 0o700;

/// Errors from opening or using the state root.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot create state root {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot restrict the mode of {path} (other users must not reach it): {source}")]
    Mode {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot lock state root {path}: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    /// (`error`, not `source`: the message already says what the I/O
    /// error was, with the device when it is full; as a source it would be
    /// printed a second time.)
    #[error("cannot write {path}: {}", describe_io(error, path))]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// Sets `dir`'s permission bits to `mode` unless they already are (a
/// directory that is a link is left alone: `symlink_metadata` says so).
fn restrict(dir: &Path, mode: u32) -> Result<(), StateError> {
    use std::os::unix::fs::PermissionsExt;
    let err = |source| StateError::Mode {
        path: dir.to_path_buf(),
        source,
    };
    let meta = std::fs::symlink_metadata(dir).map_err(err)?;
    if !meta.is_dir() || meta.permissions().mode() & 0o7777 == mode {
        return Ok(());
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).map_err(err)
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
        restrict(&path, ROOT_MODE)?;
        let entries = std::fs::read_dir(&path).map_err(|source| StateError::Create {
            path: path.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                restrict(&entry.path(), SUBDIR_MODE)?;
            }
        }
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
        if let Some(top) = Path::new(name).components().next() {
            restrict(&self.path.join(top), SUBDIR_MODE)?;
        }
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
