//! Which project a command means — the `-f` files, `-p` name, profiles
//! and lock behaviour its flags carry — and the three things every
//! project command does with it: load the manifest(s), resolve them, and
//! take the project's lock. The CLI's `ProjectArgs` becomes a
//! [`Selection`]; `watch`'s session holds one to reload on every edit.

use std::path::PathBuf;

use super::lock::{self, LockError, ProjectLock, Wait};
use super::{ImageDigests, LoadError, LoadOptions, Loaded, Project};
use crate::state::StateRoot;

#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Manifest files, later ones merged over earlier ones; none: found
    /// from the current directory.
    pub files: Vec<PathBuf>,
    pub project_name: Option<String>,
    /// Active profiles (`--profile`); none: `BERTH_PROFILES`.
    pub profiles: Vec<String>,
    /// Fail at once when another berth holds the project's lock.
    pub no_lock_wait: bool,
}

impl Selection {
    /// The active profiles: the selection's, else `BERTH_PROFILES=a,b`.
    pub fn profiles(&self) -> Vec<String> {
        if !self.profiles.is_empty() {
            return self.profiles.clone();
        }
        std::env::var("BERTH_PROFILES")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// Finds, reads and validates the manifest(s); its notes go to stderr
    /// once per process (a command may load its project more than once,
    /// `watch` on every edit).
    pub fn load(&self) -> Result<Loaded, LoadError> {
        let opts = LoadOptions::from_process(self.files.clone(), self.project_name.clone())
            .map_err(|source| LoadError::Read {
                path: PathBuf::from("."),
                source,
            })?;
        let loaded = super::load(&opts)?;
        print_notes(&loaded.notes);
        Ok(loaded)
    }

    /// Loads and resolves the project with the image digests the caller knows.
    pub fn resolve(&self, digests: &ImageDigests) -> Result<(Loaded, Project), LoadError> {
        let loaded = self.load()?;
        let project = super::resolve(&loaded, &self.profiles(), digests)?;
        Ok((loaded, project))
    }

    /// Takes the project's lock for `command`, saying on stderr what it
    /// waits for, or failing at once with `no_lock_wait`.
    pub fn lock(&self, root: &StateRoot, command: &str) -> Result<ProjectLock, SelectionError> {
        let name = self.load()?.project_name;
        let wait = if self.no_lock_wait {
            Wait::FailFast
        } else {
            Wait::Block
        };
        Ok(lock::acquire(root, &name, command, wait, |holder| {
            eprintln!("waiting for another berth ({holder}) on project {name:?}")
        })?)
    }
}

/// Why a selected project could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum SelectionError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Lock(#[from] LockError),
}

fn print_notes(notes: &[String]) {
    static SHOWN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut shown = SHOWN.lock().unwrap_or_else(|e| e.into_inner());
    for n in notes {
        if !shown.contains(n) {
            eprintln!("note: {n}");
            shown.push(n.clone());
        }
    }
}
