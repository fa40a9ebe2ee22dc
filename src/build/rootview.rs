//! A read-only view of an image's root filesystem, for the build steps that
//! read the image without running it: `COPY --from` copies out of it,
//! `--chown=name` looks names up in its `/etc/passwd` and `/etc/group`,
//! `COPY`/`WORKDIR` check which directories exist.
//!
//! An image of one layer is that layer's unpacked directory; more layers are
//! stacked as a read-only overlay (lower dirs only, no upper:
//! <https://docs.kernel.org/filesystems/overlayfs.html#multiple-lower-layers>)
//! mounted under the state root's `tmp/`, unmounted when the view is
//! dropped. Paths inside the view are resolved with symbolic links kept
//! inside it (an absolute link target means the view's root), so a hostile
//! image cannot point the builder at the host's files.

use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};

use crate::image::store::{Image, ImageStore, StoreError};
use crate::runtime::rootfs;

/// Errors making a view.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("preparing the image view {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("mounting a read-only view of image {image}: {source}")]
    Mount { image: String, source: nix::Error },
}

/// A mounted (or plain) view of an image's files.
pub struct RootView {
    path: PathBuf,
    /// The scratch directory to remove (and mount point to unmount) on drop.
    scratch: Option<PathBuf>,
}

impl RootView {
    /// The view of `image` (`None`: an empty root, `FROM scratch`).
    pub fn open(store: &ImageStore, image: Option<&Image>) -> Result<Self, ViewError> {
        let lowers = match image {
            Some(i) => store.layer_link_dirs(i)?,
            None => Vec::new(),
        };
        if lowers.len() == 1 {
            let path = lowers[0].canonicalize().map_err(|source| ViewError::Io {
                path: lowers[0].clone(),
                source,
            })?;
            return Ok(Self {
                path,
                scratch: None,
            });
        }
        let tmp = store.state_root().tmp_dir();
        std::fs::create_dir_all(&tmp).map_err(|source| ViewError::Io {
            path: tmp.clone(),
            source,
        })?;
        let scratch = tempfile::Builder::new()
            .prefix("build-view-")
            .tempdir_in(&tmp)
            .map_err(|source| ViewError::Io {
                path: tmp.clone(),
                source,
            })?
            .keep();
        let target = scratch.join("root");
        std::fs::create_dir_all(&target).map_err(|source| ViewError::Io {
            path: target.clone(),
            source,
        })?;
        let view = Self {
            path: target.clone(),
            scratch: Some(scratch),
        };
        if lowers.is_empty() {
            return Ok(view);
        }
        // Paths relative to the layers dir keep the option under a page.
        let base = store.layers_dir().to_path_buf();
        let rel: Vec<String> = lowers
            .iter()
            .rev()
            .map(|p| {
                p.strip_prefix(&base)
                    .unwrap_or(p)
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        let options = format!("lowerdir={}", rel.join(":"));
        let old = std::env::current_dir().ok();
        std::env::set_current_dir(&base).map_err(|source| ViewError::Io {
            path: base.clone(),
            source,
        })?;
        let r = mount(
            Some("overlay"),
            &target,
            Some("overlay"),
            MsFlags::MS_RDONLY,
            Some(options.as_str()),
        );
        if let Some(old) = old {
            let _ = std::env::set_current_dir(old);
        }
        r.map_err(|source| ViewError::Mount {
            image: image.map(|i| i.id.short().to_string()).unwrap_or_default(),
            source,
        })?;
        Ok(view)
    }

    /// The view's root directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Resolves an absolute image path to a host path inside the view,
    /// following every symbolic link (the last one too) within the view.
    pub fn resolve(&self, image_path: &str) -> PathBuf {
        resolve_in(&self.path, image_path)
    }

    /// `image_path` with its symbolic links followed (inside the image), in
    /// tar form (no leading `/`): where a write to it really lands.
    pub fn real_path(&self, image_path: &str) -> String {
        let p = self.resolve(image_path);
        p.strip_prefix(&self.path)
            .map(|r| r.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Whether the image has something at `image_path`.
    pub fn exists(&self, image_path: &str) -> bool {
        std::fs::symlink_metadata(self.resolve(image_path)).is_ok()
    }

    /// Whether `image_path` is a directory in the image.
    pub fn is_dir(&self, image_path: &str) -> bool {
        std::fs::metadata(self.resolve(image_path)).is_ok_and(|m| m.is_dir())
    }

    /// Reads a (small) text file of the image, if present.
    pub fn read_to_string(&self, image_path: &str) -> Option<String> {
        std::fs::read_to_string(self.resolve(image_path)).ok()
    }
}

impl Drop for RootView {
    fn drop(&mut self) {
        if let Some(s) = &self.scratch {
            let _ = rootfs::unmount_if_mounted(&self.path);
            if !rootfs::is_mount_point(&self.path) {
                let _ = std::fs::remove_dir_all(s);
            }
        }
    }
}

/// Resolves `image_path` under `root`, links followed inside `root`
/// ([`crate::confine`]); a link loop leaves its last link unresolved.
pub fn resolve_in(root: &Path, image_path: &str) -> PathBuf {
    crate::confine::resolve_path(root, image_path, true)
        .or_else(|_| crate::confine::resolve_path(root, image_path, false))
        .unwrap_or_else(|_| root.to_path_buf())
}

/// Looks a user up: numeric, or a name in `passwd` text; returns (uid, primary gid).
pub fn lookup_user(passwd: Option<&str>, user: &str) -> Option<(u32, Option<u32>)> {
    if let Ok(n) = user.parse::<u32>() {
        return Some((n, None));
    }
    passwd?.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4 && f[0] == user).then(|| Some((f[2].parse().ok()?, f[3].parse().ok())))?
    })
}

/// Looks a group up: numeric, or a name in `group` text.
pub fn lookup_group(group: Option<&str>, name: &str) -> Option<u32> {
    if let Ok(n) = name.parse::<u32>() {
        return Some(n);
    }
    group?.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 3 && f[0] == name).then(|| f[2].parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn links_stay_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        symlink("/etc/shadow", r.join("etc/passwd")).unwrap();
        symlink("../../../../", r.join("up")).unwrap();
        assert_eq!(resolve_in(r, "/etc/passwd"), r.join("etc/shadow"));
        assert_eq!(resolve_in(r, "/up/etc"), r.join("etc"));
        assert_eq!(resolve_in(r, "/../../x"), r.join("x"));
        symlink("loop", r.join("loop")).unwrap();
        assert!(resolve_in(r, "/loop").starts_with(r));
    }

    #[test]
    fn users_and_groups() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n";
        let group = "root:x:0:\nstaff:x:50:app\n";
        assert_eq!(lookup_user(Some(passwd), "app"), Some((1000, Some(1001))));
        assert_eq!(lookup_user(Some(passwd), "42"), Some((42, None)));
        assert_eq!(lookup_user(Some(passwd), "nobody"), None);
        assert_eq!(lookup_user(None, "app"), None);
        assert_eq!(lookup_group(Some(group), "staff"), Some(50));
        assert_eq!(lookup_group(Some(group), "7"), Some(7));
        assert_eq!(lookup_group(Some(group), "wheel"), None);
    }
}
