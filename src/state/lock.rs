//! An advisory lock (flock(2)) on `ROOT/lock` serialising commands that
//! change shared state. It is released when the handle drops or the process
//! dies, so a crashed command never leaves the root locked.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use super::StateError;

/// Holds the exclusive lock on the state root until dropped.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

impl StateLock {
    /// Blocks until the exclusive lock on `path` is held.
    pub fn acquire(path: &Path) -> Result<Self, StateError> {
        Self::acquire_as(path, libc::LOCK_EX)
    }

    /// Blocks until a shared lock on `path` is held (many holders at once,
    /// none while someone holds it exclusively).
    pub fn acquire_shared(path: &Path) -> Result<Self, StateError> {
        Self::acquire_as(path, libc::LOCK_SH)
    }

    fn acquire_as(path: &Path, operation: libc::c_int) -> Result<Self, StateError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|source| StateError::Lock {
                path: path.to_path_buf(),
                source,
            })?;
        loop {
            // SAFETY: flock on a valid, owned fd.
            let rc = unsafe { libc::flock(file.as_raw_fd(), operation) };
            if rc == 0 {
                break;
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(StateError::Lock {
                    path: path.to_path_buf(),
                    source: e,
                });
            }
        }
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_is_reacquirable_after_drop() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lock");
        drop(StateLock::acquire(&p).unwrap());
        let _again = StateLock::acquire(&p).unwrap();
    }
}
