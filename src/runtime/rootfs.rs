//! The container's root filesystem: an overlay of the image's layers.
//!
//! overlayfs (<https://docs.kernel.org/filesystems/overlayfs.html>) stacks
//! read-only lower directories (the image's unpacked layers, top-most first in
//! the `lowerdir` option) under a writable upper directory that is private to
//! the container; `workdir` is overlay's scratch space on the upper's
//! filesystem. Files a container creates or changes land in `upper/`, which is
//! also what `commit` turns into a layer. The mount option string is limited
//! to a page, so the mount is made from inside the state root with paths
//! relative to it whenever the layers live there.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// Errors mounting or unmounting a root filesystem.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("cannot prepare {path}: {source}")]
    Prepare {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("overlay mount on {path} failed: {source} (options: {options})")]
    Mount {
        path: PathBuf,
        options: String,
        source: nix::Error,
    },
    #[error("unmounting {path} failed: {source}")]
    Unmount { path: PathBuf, source: nix::Error },
    #[error("an image needs at least one layer directory")]
    NoLayers,
}

/// The overlay directories of one container.
#[derive(Debug, Clone)]
pub struct Overlay {
    /// Directory the option paths are relative to (the state root).
    pub base: PathBuf,
    /// Lower directories, bottom-most first (as the image store lists them).
    pub lowers: Vec<PathBuf>,
    /// `containers/<id>/` directory holding upper/, work/ and rootfs/.
    pub dir: PathBuf,
}

fn rel<'a>(base: &Path, p: &'a Path) -> std::borrow::Cow<'a, str> {
    match p.strip_prefix(base) {
        Ok(r) => std::borrow::Cow::Owned(r.to_string_lossy().into_owned()),
        Err(_) => p.to_string_lossy(),
    }
}

impl Overlay {
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }
    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }
    pub fn target(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// An empty lower dir for an image without layers.
    pub fn empty_lower(&self) -> PathBuf {
        self.dir.join("empty-lower")
    }

    /// The `lowerdir=…,upperdir=…,workdir=…` option string, relative to `base`.
    pub fn options(&self) -> Result<String, RootfsError> {
        if self.lowers.is_empty() {
            return Err(RootfsError::NoLayers);
        }
        let lowers: Vec<_> = self
            .lowers
            .iter()
            .rev()
            .map(|p| rel(&self.base, p).into_owned())
            .collect();
        Ok(format!(
            "lowerdir={},upperdir={},workdir={}",
            lowers.join(":"),
            rel(&self.base, &self.upper()),
            rel(&self.base, &self.work())
        ))
    }

    /// Whether the rootfs is currently mounted.
    pub fn is_mounted(&self) -> bool {
        is_mount_point(&self.target())
    }

    /// Mounts the overlay on `rootfs/` (creating upper/work/rootfs); a no-op
    /// when already mounted. Changes the working directory to `base`.
    pub fn mount(&self) -> Result<PathBuf, RootfsError> {
        for d in [self.upper(), self.work(), self.target()] {
            std::fs::create_dir_all(&d).map_err(|source| RootfsError::Prepare {
                path: d.clone(),
                source,
            })?;
        }
        let target = self.target();
        if self.is_mounted() {
            return Ok(target);
        }
        let options = if self.lowers.is_empty() {
            // An image without layers: overlay needs a lower dir.
            let empty = self.empty_lower();
            std::fs::create_dir_all(&empty).map_err(|source| RootfsError::Prepare {
                path: empty.clone(),
                source,
            })?;
            Overlay {
                lowers: vec![empty],
                ..self.clone()
            }
            .options()?
        } else {
            self.options()?
        };
        std::env::set_current_dir(&self.base).map_err(|source| RootfsError::Prepare {
            path: self.base.clone(),
            source,
        })?;
        mount(
            Some("overlay"),
            &target,
            Some("overlay"),
            MsFlags::empty(),
            Some(options.as_str()),
        )
        .map_err(|source| RootfsError::Mount {
            path: target.clone(),
            options,
            source,
        })?;
        Ok(target)
    }

    /// Unmounts the rootfs if mounted.
    pub fn unmount(&self) -> Result<(), RootfsError> {
        unmount_if_mounted(&self.target())
    }
}

/// Detaches a mount point if something is mounted there.
pub fn unmount_if_mounted(path: &Path) -> Result<(), RootfsError> {
    if !is_mount_point(path) {
        return Ok(());
    }
    umount2(path, MntFlags::MNT_DETACH).map_err(|source| RootfsError::Unmount {
        path: path.to_path_buf(),
        source,
    })
}

/// Whether `path` is a mount point (listed in /proc/self/mountinfo).
pub fn is_mount_point(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.to_string_lossy();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|p| unescape_mountinfo(p) == want)
}

fn unescape_mountinfo(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_relative_and_top_first() {
        let o = Overlay {
            base: "/var/lib/berth".into(),
            lowers: vec![
                "/var/lib/berth/layers/l/AAA".into(),
                "/var/lib/berth/layers/l/BBB".into(),
                "/elsewhere/rootfs".into(),
            ],
            dir: "/var/lib/berth/containers/abc".into(),
        };
        assert_eq!(
            o.options().unwrap(),
            "lowerdir=/elsewhere/rootfs:layers/l/BBB:layers/l/AAA,\
             upperdir=containers/abc/upper,workdir=containers/abc/work"
        );
        let empty = Overlay {
            lowers: vec![],
            ..o
        };
        assert!(matches!(empty.options(), Err(RootfsError::NoLayers)));
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
    }
}
