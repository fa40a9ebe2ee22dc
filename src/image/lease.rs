//! Writer leases: a prune must not delete what a writer is about to name.
//!
//! A pull, load, import, commit or build writes blobs first and names them
//! in `index.json` last; until then they are unreferenced, and so is an
//! existing blob a pull decided not to download again because it is there.
//! A garbage collection at that moment (`image prune`, `system prune`, or
//! `rmi` deleting an image's blobs) would delete them under the writer, which
//! then fails or, worse, indexes a manifest whose blobs are gone. containerd
//! protects such content with leases; berth's leases are files.
//!
//! - For the length of such a write (a pull, load, import, commit or
//!   build), a process holds its lease, the file
//!   `ROOT/image-leases/PID:STARTTIME` ([`crate::state::process`]); a dead
//!   process's lease means nothing, so a crash leaves nothing held.
//! - Garbage collection holds `ROOT/image-leases/.lock` exclusively and,
//!   while any other process's lease is live, deletes no unreferenced blob
//!   or layer (the images it was asked to remove still leave the index; the
//!   space is reclaimed by the next collection). It removes dead leases.
//! - A writer makes its lease holding the same lock shared, before it looks
//!   at the store, so either the collection sees the lease, or the writer
//!   starts after the collection and sees what it deleted.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::state::{process, StateError, StateLock};

/// How many [`Lease`]s this process holds, per state root.
static HELD: Mutex<Option<HashMap<PathBuf, usize>>> = Mutex::new(None);

/// Where the leases of the store of state root `root` live.
pub fn leases_dir(root: &Path) -> PathBuf {
    root.join("image-leases")
}

fn lock_path(root: &Path) -> PathBuf {
    leases_dir(root).join(LOCK)
}

const LOCK: &str = ".lock";

/// Makes the leases directory and its lock file (if missing). The store
/// calls it when it is opened, so a first lease or collection then changes
/// nothing but its own file; both call it too, for a store opened earlier.
pub fn prepare(root: &Path) -> Result<(), StateError> {
    let dir = leases_dir(root);
    let io = |error| StateError::Write {
        path: dir.clone(),
        error,
    };
    if !lock_path(root).exists() {
        std::fs::create_dir_all(&dir).map_err(io)?;
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lock_path(root))
            .map_err(io)?;
    }
    Ok(())
}

/// This process's lease in the image store of a state root, held while
/// the value lives; nested leases share one file.
#[derive(Debug)]
pub struct Lease {
    root: PathBuf,
    file: Option<PathBuf>,
}

/// Makes (or joins) this process's lease in the image store of state root
/// `root`, for a write that names its blobs at the end.
pub fn hold(root: &Path) -> Result<Lease, StateError> {
    let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
    let count = held
        .get_or_insert_with(HashMap::new)
        .entry(root.to_path_buf())
        .or_insert(0);
    let Some(me) = process::own_identity() else {
        return Ok(Lease {
            root: root.to_path_buf(),
            file: None,
        });
    };
    let file = leases_dir(root).join(me);
    if *count == 0 {
        prepare(root)?;
        let _shared = StateLock::acquire_shared(&lock_path(root))?;
        std::fs::write(&file, b"").map_err(|error| StateError::Write {
            path: file.clone(),
            error,
        })?;
    }
    *count += 1;
    Ok(Lease {
        root: root.to_path_buf(),
        file: Some(file),
    })
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(file) = &self.file else {
            return;
        };
        let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = held.as_mut().and_then(|m| m.get_mut(&self.root)) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                let _ = std::fs::remove_file(file);
            }
        }
    }
}

/// Held by a garbage collection for its whole run.
pub struct Collection {
    _lock: StateLock,
    /// Whether another live process holds a lease.
    pub writers: bool,
}

/// Starts a garbage collection in the store of state root `root`: waits for writers
/// making their leases, removes the leases of dead processes, and says
/// whether a live one (other than this process's own) remains.
pub fn collect(root: &Path) -> Result<Collection, StateError> {
    prepare(root)?;
    let dir = leases_dir(root);
    let lock = StateLock::acquire(&lock_path(root))?;
    let me = process::own_identity();
    let mut writers = false;
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == LOCK || Some(&name) == me.as_ref() {
                continue;
            }
            if process::alive(&name) {
                writers = true;
            } else {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok(Collection {
        _lock: lock,
        writers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_leases_hold_collection_and_dead_ones_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // Only this process's lease: it does not hold back its own prune.
        let outer = hold(root).unwrap();
        let inner = hold(root).unwrap();
        let mine = leases_dir(root).join(process::own_identity().unwrap());
        assert!(mine.exists());
        assert!(!collect(root).unwrap().writers);
        // Nested leases share the file; it goes with the last one.
        drop(inner);
        assert!(mine.exists());
        drop(outer);
        assert!(!mine.exists());
        // A dead process's lease goes.
        let dead = leases_dir(root).join("4194304:1");
        std::fs::write(&dead, b"").unwrap();
        assert!(!collect(root).unwrap().writers);
        assert!(!dead.exists());
        // A live process (pid 1) holds the collection back.
        let init = process::identity(1).expect("pid 1 exists");
        std::fs::write(leases_dir(root).join(&init), b"").unwrap();
        assert!(collect(root).unwrap().writers);
        assert!(leases_dir(root).join(&init).exists());
    }
}
