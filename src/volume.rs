//! Volumes: directories berth owns under `ROOT/volumes/NAME/`, as Docker's
//! `local` driver keeps them (`_data/` is what containers mount,
//! `volume.json` the record with its labels). A volume is bind-mounted into
//! containers and outlives them.
//!
//! Named volumes (`-v NAME:/dst`, a project's `[volumes]`) live until
//! `volume rm` / `down -v`. Anonymous volumes (`-v /dst`, and every `VOLUME`
//! the image declares that no other mount covers) get a random 64-hex name
//! and go with their container on `rm -v` and `run --rm`, as in Docker
//! (<https://docs.docker.com/engine/storage/volumes/>).
//!
//! A volume that is empty when a container starts is first filled with what
//! the image has at the mount point — files, ownership and modes, symlinks
//! as symlinks — unless the mount says `nocopy` (Docker's copy-up). The
//! mount point is resolved inside the container's mounted rootfs with links
//! kept inside it ([`crate::confine`]), and nothing below it is followed,
//! so a hostile image cannot make berth copy host files.
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
    /// Made for one container (`-v /dst`, an image `VOLUME`); removed with it
    /// on `rm -v` / `run --rm`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub anonymous: bool,
}

/// A volume mounted into a container, as the container's record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeMount {
    pub name: String,
    pub destination: String,
    #[serde(default)]
    pub readonly: bool,
    /// Don't fill an empty volume with the image's content.
    #[serde(default)]
    pub nocopy: bool,
    #[serde(default)]
    pub anonymous: bool,
}

/// The volumes of one state root.
#[derive(Debug, Clone)]
pub struct VolumeStore {
    root: StateRoot,
    dir: PathBuf,
}

/// Whether `name` is a valid volume name (Docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]*`).
pub fn valid(name: &str) -> bool {
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

    /// The record of one volume, if it exists.
    pub fn get(&self, name: &str) -> Result<Option<Volume>, VolumeError> {
        if !valid(name) {
            return Err(VolumeError::BadName(name.to_string()));
        }
        let path = self.dir.join(name).join("volume.json");
        match std::fs::read(&path) {
            Ok(b) => Ok(serde_json::from_slice(&b).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(VolumeError::Io { path, source }),
        }
    }

    /// A new name for an anonymous volume (64 hex digits, as Docker's).
    pub fn anonymous_name() -> String {
        hex::encode(rand::random::<[u8; 32]>())
    }

    /// Creates a volume (a no-op when it exists).
    pub fn create(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<Volume, VolumeError> {
        self.create_with(name, labels, false)
    }

    /// Creates a volume, anonymous or not (a no-op when it exists).
    pub fn create_with(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        anonymous: bool,
    ) -> Result<Volume, VolumeError> {
        if !valid(name) {
            return Err(VolumeError::BadName(name.to_string()));
        }
        if let Some(existing) = self.get(name)? {
            return Ok(existing);
        }
        let vol = Volume {
            name: name.to_string(),
            created: chrono::Utc::now(),
            labels: labels.clone(),
            anonymous,
        };
        let dest = self.dir.join(name);
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

    /// Fills the empty volume `name` with the directory at `destination`
    /// inside `rootfs` (Docker's copy-up); false when there was nothing to do
    /// (volume not empty, no such directory in the image, or a symlink on
    /// the way, which is never followed).
    pub fn populate(
        &self,
        name: &str,
        rootfs: &std::path::Path,
        destination: &str,
    ) -> Result<bool, VolumeError> {
        let data = self.data_dir(name);
        let io = |path: &std::path::Path| {
            let path = path.to_path_buf();
            move |source| VolumeError::Io { path, source }
        };
        if std::fs::read_dir(&data)
            .map_err(io(&data))?
            .next()
            .is_some()
        {
            return Ok(false);
        }
        let Some(source) = copy_up::resolve_in(rootfs, destination) else {
            return Ok(false);
        };
        copy_up::copy_tree(&source, &data).map_err(io(&source))?;
        Ok(true)
    }
}

/// Docker's copy-up: the image's content at a mount point into a volume.
mod copy_up {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::path::{Path, PathBuf};

    /// The directory `destination` names inside `rootfs`, links followed
    /// inside `rootfs` only; none when it is not a directory there.
    pub fn resolve_in(rootfs: &Path, destination: &str) -> Option<PathBuf> {
        let path = crate::confine::resolve_path(rootfs, destination, true).ok()?;
        std::fs::symlink_metadata(&path)
            .ok()?
            .is_dir()
            .then_some(path)
    }

    fn own_like(meta: &std::fs::Metadata, dst: &Path) -> std::io::Result<()> {
        std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid()))
    }

    /// Copies the tree at `src` into the existing directory `dst`: regular
    /// files, directories and symlinks with owners and modes; device nodes,
    /// fifos and sockets are skipped. `dst` itself takes `src`'s owner and
    /// mode (a database's data directory keeps its user).
    pub fn copy_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
        let meta = std::fs::symlink_metadata(src)?;
        for entry in std::fs::read_dir(src)? {
            let entry = entry?;
            let from = entry.path();
            let to = dst.join(entry.file_name());
            let m = std::fs::symlink_metadata(&from)?;
            let kind = m.file_type();
            if kind.is_symlink() {
                std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
                own_like(&m, &to)?;
            } else if kind.is_dir() {
                std::fs::create_dir(&to)?;
                copy_tree(&from, &to)?;
            } else if kind.is_file() {
                std::fs::copy(&from, &to)?;
                own_like(&m, &to)?;
                std::fs::set_permissions(&to, std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
            }
        }
        own_like(&meta, dst)?;
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
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
    fn copy_up_fills_only_an_empty_volume_and_links_stay_in_the_rootfs() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::open(dir.path().join("root")).unwrap();
        let store = VolumeStore::open(&root).unwrap();
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("srv/data/sub")).unwrap();
        std::fs::write(rootfs.join("srv/data/sub/f"), "hello").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", rootfs.join("srv/data/link")).unwrap();
        std::fs::set_permissions(
            rootfs.join("srv/data"),
            std::fs::Permissions::from_mode(0o750),
        )
        .unwrap();
        // A symlink on the way to the mount point is read inside the rootfs
        // (where there is no /etc), never as the host's /etc.
        std::os::unix::fs::symlink("/etc", rootfs.join("evil")).unwrap();
        std::os::unix::fs::symlink("/srv/data", rootfs.join("alias")).unwrap();

        store.create("v", &BTreeMap::new()).unwrap();
        assert!(store.populate("v", &rootfs, "/srv/data").unwrap());
        let data = store.data_dir("v");
        assert_eq!(
            std::fs::read_to_string(data.join("sub/f")).unwrap(),
            "hello"
        );
        assert_eq!(
            std::fs::read_link(data.join("link")).unwrap(),
            std::path::Path::new("/etc/passwd")
        );
        assert_eq!(
            std::fs::metadata(&data).unwrap().permissions().mode() & 0o777,
            0o750
        );
        // Not empty any more: a second start copies nothing.
        std::fs::write(rootfs.join("srv/data/new"), "x").unwrap();
        assert!(!store.populate("v", &rootfs, "/srv/data").unwrap());
        assert!(!data.join("new").exists());

        store.create("w", &BTreeMap::new()).unwrap();
        assert!(!store.populate("w", &rootfs, "/evil").unwrap());
        assert!(!store.populate("w", &rootfs, "/evil/passwd").unwrap());
        // A link inside the rootfs is followed there, as Docker does.
        store.create("a", &BTreeMap::new()).unwrap();
        assert!(store.populate("a", &rootfs, "/alias").unwrap());
        assert!(store.data_dir("a").join("sub/f").is_file());
        assert!(!store.populate("w", &rootfs, "/evil/passwd").unwrap());
        assert!(!store.populate("w", &rootfs, "/../../etc").unwrap());
        assert!(!store.populate("w", &rootfs, "/absent").unwrap());
        assert_eq!(std::fs::read_dir(store.data_dir("w")).unwrap().count(), 0);
    }

    #[test]
    fn anonymous_volumes_say_so() {
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::open(dir.path()).unwrap();
        let store = VolumeStore::open(&root).unwrap();
        let name = VolumeStore::anonymous_name();
        assert_eq!(name.len(), 64);
        store.create_with(&name, &BTreeMap::new(), true).unwrap();
        assert!(store.get(&name).unwrap().unwrap().anonymous);
        assert!(store.get("absent").unwrap().is_none());
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
