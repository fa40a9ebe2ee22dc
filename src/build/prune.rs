//! The build cache as a whole, as `docker system df` and `docker builder
//! prune` see it (<https://docs.docker.com/reference/cli/docker/builder/prune/>).
//!
//! berth's build cache is what Docker's classic builder keeps: the
//! intermediate image of every step (untagged images that are an ancestor
//! of another image, hidden from `images` unless `-a`) and the step index
//! `ROOT/build-cache/<key>` that names them (see [`super::cache`]). Its size
//! is the bytes of the layers that only cache images hold: a layer that a
//! tagged image also has belongs to the image, and is counted once, there.
//!
//! `builder prune` removes the *dangling* cache: index entries whose image
//! is gone, and intermediate images that no longer lead to any image with a
//! name (what is left of an image that was untagged or removed).
//! `builder prune -a` removes all of it: every index entry, every
//! intermediate image and every `RUN --mount=type=cache` directory
//! (`ROOT/build-mounts/`, see [`super::mount`]) that no build holds, so
//! the next build runs every step again. Images with names are never
//! touched, and their layers stay (their own manifests reference them).

use std::collections::{HashMap, HashSet};

use super::cache::{CacheError, CacheIndex};
use super::derive::{ancestor_ids, parent_ids};
use crate::image::digest::Digest;
use crate::image::store::{Image, ImageStore, PruneReport, StoreError};

/// Errors while measuring or pruning the build cache.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Cache(#[from] CacheError),
}

/// Disk usage of images and of the build cache, shared layers counted once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// Images with a place in `berth images` (tagged, or dangling).
    pub images: usize,
    /// Of those, the ones a container uses.
    pub images_active: usize,
    /// Bytes of every layer those images hold, each layer once.
    pub images_size: u64,
    /// Bytes of the layers only unused images hold.
    pub images_reclaimable: u64,
    /// Intermediate images.
    pub cache_images: usize,
    /// Bytes of the layers only intermediate images hold, and of the cache
    /// mounts.
    pub cache_size: u64,
    /// `RUN --mount=type=cache` directories.
    pub cache_mounts: usize,
}

/// The cache mount directories under the state root `root`.
pub fn cache_mount_dirs(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(root.join("build-mounts"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.join("data").is_dir())
                .collect()
        })
        .unwrap_or_default()
}

/// Removes the cache mounts no build holds (an exclusive, non-blocking
/// flock on each one's `lock`, which a build holds while it uses it);
/// returns how many went and the bytes freed.
pub fn remove_cache_mounts(root: &std::path::Path) -> (usize, u64) {
    use nix::fcntl::{Flock, FlockArg};
    let mut removed = (0, 0);
    for dir in cache_mount_dirs(root) {
        let Ok(lock) = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))
        else {
            continue;
        };
        let Ok(_held) = Flock::lock(lock, FlockArg::LockExclusiveNonblock) else {
            continue;
        };
        let size = crate::image::store::dir_size(&dir);
        // Renamed away first, so a build never finds a half-removed cache.
        let trash = root.join("tmp").join(format!(
            "rm-mount-{}",
            dir.file_name().unwrap_or_default().to_string_lossy()
        ));
        let _ = std::fs::create_dir_all(root.join("tmp"));
        if std::fs::rename(&dir, &trash).is_ok() {
            let _ = std::fs::remove_dir_all(&trash);
            removed.0 += 1;
            removed.1 += size;
        }
    }
    removed
}

/// The images that are build cache: untagged ancestors of other images.
pub fn cache_images(list: &[Image]) -> HashSet<Digest> {
    let parents = parent_ids(list);
    list.iter()
        .filter(|i| i.is_dangling() && parents.contains(&i.id))
        .map(|i| i.id.clone())
        .collect()
}

/// Measures `list` and the cache mounts under the state root `root`;
/// `in_use` are the image ids containers run.
pub fn usage(root: &std::path::Path, list: &[Image], in_use: &HashSet<Digest>) -> Usage {
    let cache = cache_images(list);
    let mut sizes: HashMap<&Digest, u64> = HashMap::new();
    let mut held_by_image: HashSet<&Digest> = HashSet::new();
    let mut held_by_used: HashSet<&Digest> = HashSet::new();
    let mut u = Usage::default();
    for img in list {
        let is_cache = cache.contains(&img.id);
        if is_cache {
            u.cache_images += 1;
        } else {
            u.images += 1;
            if in_use.contains(&img.id) {
                u.images_active += 1;
            }
        }
        for l in &img.layout_manifest.layers {
            sizes.insert(&l.digest, l.size);
            if !is_cache {
                held_by_image.insert(&l.digest);
                if in_use.contains(&img.id) {
                    held_by_used.insert(&l.digest);
                }
            }
        }
    }
    for (digest, size) in sizes {
        if held_by_image.contains(digest) {
            u.images_size += size;
            if !held_by_used.contains(digest) {
                u.images_reclaimable += size;
            }
        } else {
            u.cache_size += size;
        }
    }
    for dir in cache_mount_dirs(root) {
        u.cache_mounts += 1;
        u.cache_size += crate::image::store::dir_size(&dir);
    }
    u
}

/// What a prune removed.
#[derive(Debug, Default)]
pub struct CachePrune {
    /// Index entries forgotten.
    pub entries: usize,
    /// Cache mounts removed, and their bytes.
    pub mounts: (usize, u64),
    /// The images removed and the bytes freed.
    pub images: PruneReport,
}

/// `builder prune` (`all`: `-a`). Images in `in_use` (a running build's
/// container, say) stay.
pub fn prune(
    store: &ImageStore,
    index: &CacheIndex,
    all: bool,
    in_use: &HashSet<Digest>,
) -> Result<CachePrune, PruneError> {
    let list = store.list()?;
    let present: HashSet<Digest> = list.iter().map(|i| i.id.clone()).collect();
    let cache = cache_images(&list);
    let named_leads = ancestor_ids(&list, |i| !i.is_dangling());
    let doomed: HashSet<Digest> = cache
        .iter()
        .filter(|id| !in_use.contains(*id) && (all || !named_leads.contains(*id)))
        .cloned()
        .collect();
    let mut entries = 0;
    for (key, id) in index.entries()? {
        let stale = match &id {
            Some(id) => !present.contains(id) || doomed.contains(id),
            None => true,
        };
        if all || stale {
            index.remove(&key)?;
            entries += 1;
        }
    }
    let images = if doomed.is_empty() {
        PruneReport::default()
    } else {
        store.prune_matching(|img| doomed.contains(&img.id))?
    };
    let mounts = if all {
        remove_cache_mounts(store.state_root().path())
    } else {
        (0, 0)
    };
    Ok(CachePrune {
        entries,
        mounts,
        images,
    })
}
