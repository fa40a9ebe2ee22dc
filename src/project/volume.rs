//! Named volumes: directories berth owns under `ROOT/volumes/NAME/`, as
//! Docker's `local` driver keeps them (`_data/` is what containers mount,
//! `volume.json` the record with its labels). A volume is bind-mounted into
//! containers; it outlives them and goes only with `down -v`.
//!
//! Creation is crash-safe: the directory is assembled under `ROOT/tmp/` and
//! renamed into place, so a volume either exists whole or not at all.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::state::{self, StateRoot};

/// Errors of the volume store.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("invalid volume name {0:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    BadName(String),
    #[error("volume {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    State(#[from] state::StateError),
}

/// A volume's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub name: String,
    pub created: chrono::DateTime<chrono::Utc>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// The volumes of one state root.
#[derive(Debug, Clone)]
pub struct VolumeStore {
    root: StateRoot,
    dir: PathBuf,
}

fn valid(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

impl VolumeStore {
    pub fn open(root: &StateRoot) -> Result<Self, VolumeError> {
        Ok(Self {
            root: root.clone(),
            dir: root.subdir("volumes")?,
        })
    }

    /// The directory containers mount.
    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("_data")
    }

    /// Every volume, by name.
    pub fn list(&self) -> Result<Vec<Volume>, VolumeError> {
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(VolumeError::Io {
                    path: self.dir.clone(),
                    source,
                })
            }
        };
        let mut out: Vec<Volume> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| std::fs::read(e.path().join("volume.json")).ok())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Creates a volume (a no-op when it exists).
    pub fn create(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<Volume, VolumeError> {
        if !valid(name) {
            return Err(VolumeError::BadName(name.to_string()));
        }
        let vol = Volume {
            name: name.to_string(),
            created: chrono::Utc::now(),
            labels: labels.clone(),
        };
        let dest = self.dir.join(name);
        if dest.join("volume.json").is_file() {
            return Ok(vol);
        }
        let _lock = self.root.lock()?;
        let io = |path: &PathBuf| {
            let path = path.clone();
            move |source| VolumeError::Io { path, source }
        };
        let staging = self
            .root
            .tmp_dir()
            .join(format!("volume-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(staging.join("_data")).map_err(io(&staging))?;
        state::write_json_atomic(&staging.join("volume.json"), &vol)?;
        // A half-made volume of a crashed run has no volume.json: replace it.
        if dest.exists() {
            std::fs::remove_dir_all(&dest).map_err(io(&dest))?;
        }
        std::fs::rename(&staging, &dest).map_err(io(&dest))?;
        Ok(vol)
    }

    /// Removes a volume and its data; true when it existed.
    pub fn remove(&self, name: &str) -> Result<bool, VolumeError> {
        if !valid(name) {
            return Err(VolumeError::BadName(name.to_string()));
        }
        let dest = self.dir.join(name);
        if !dest.exists() {
            return Ok(false);
        }
        let _lock = self.root.lock()?;
        // Rename first, so a crash never leaves a half-deleted volume in place.
        let doomed = self
            .root
            .tmp_dir()
            .join(format!("volume-rm-{name}-{}", std::process::id()));
        std::fs::rename(&dest, &doomed).map_err(|source| VolumeError::Io {
            path: dest.clone(),
            source,
        })?;
        std::fs::remove_dir_all(&doomed).map_err(|source| VolumeError::Io {
            path: doomed,
            source,
        })?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_list_remove() {
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::open(dir.path()).unwrap();
        let store = VolumeStore::open(&root).unwrap();
        let labels = BTreeMap::from([("berth.project".to_string(), "p".to_string())]);
        store.create("p_data", &labels).unwrap();
        store.create("p_data", &labels).unwrap();
        assert!(store.data_dir("p_data").is_dir());
        let all = store.list().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].labels, labels);
        assert!(store.remove("p_data").unwrap());
        assert!(!store.remove("p_data").unwrap());
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn hostile_names() {
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::open(dir.path()).unwrap();
        let store = VolumeStore::open(&root).unwrap();
        for bad in ["", "../x", "a/b", ".hidden", "x\ny"] {
            assert!(matches!(
                store.create(bad, &BTreeMap::new()),
                Err(VolumeError::BadName(_))
            ));
        }
    }
}
