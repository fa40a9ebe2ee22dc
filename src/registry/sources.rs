//! Which repositories a blob is known to live in, for cross-repository mounts.
//!
//! When berth pulls or pushes a blob it records `registry/repository` for it
//! in `ROOT/registry/sources.json`. A later push of the same blob to another
//! repository of that registry first asks for a mount
//! (`POST /v2/NAME/blobs/uploads/?mount=DIGEST&from=OTHER`, see the
//! distribution spec's "Mount Blob") so the bytes are not sent again; this is
//! Docker's "Mounted from library/busybox". The file is a hint: losing it only
//! costs an upload.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::state::{StateError, StateRoot};

/// At most this many sources are kept per blob.
const MAX_SOURCES: usize = 8;

/// The recorded sources of blobs.
#[derive(Debug, Default)]
pub struct Sources {
    path: PathBuf,
    map: BTreeMap<String, Vec<String>>,
}

impl Sources {
    /// Loads the record (empty when missing or unreadable: it is a hint).
    pub fn load(root: &StateRoot) -> Self {
        let path = root.path().join("registry/sources.json");
        let map = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Self { path, map }
    }

    /// Repositories (`registry/repository`) on `registry` holding `digest`.
    pub fn on_registry(&self, digest: &str, registry: &str) -> Vec<String> {
        let prefix = format!("{registry}/");
        self.map
            .get(digest)
            .map(|list| {
                list.iter()
                    .filter_map(|s| s.strip_prefix(&prefix).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Notes that `digest` is in `registry/repository`.
    pub fn add(&mut self, digest: &str, registry: &str, repository: &str) {
        let entry = format!("{registry}/{repository}");
        let list = self.map.entry(digest.to_string()).or_default();
        list.retain(|s| s != &entry);
        list.insert(0, entry);
        list.truncate(MAX_SOURCES);
    }

    /// Writes the record atomically, merging with what others wrote since
    /// it was loaded; the caller holds the state root's lock.
    pub fn save(&self, root: &StateRoot) -> Result<(), StateError> {
        root.subdir("registry")?;
        let mut merged: BTreeMap<String, Vec<String>> = std::fs::read(&self.path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        for (digest, list) in &self.map {
            let entry = merged.entry(digest.clone()).or_default();
            for s in list.iter().rev() {
                entry.retain(|x| x != s);
                entry.insert(0, s.clone());
            }
            entry.truncate(MAX_SOURCES);
        }
        crate::state::write_json_atomic(&self.path, &merged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_and_query() {
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::open(dir.path()).unwrap();
        let mut s = Sources::load(&root);
        s.add("sha256:a", "reg:5000", "one");
        s.add("sha256:a", "reg:5000", "two");
        s.add("sha256:a", "other", "x");
        s.save(&root).unwrap();
        let s = Sources::load(&root);
        assert_eq!(s.on_registry("sha256:a", "reg:5000"), vec!["two", "one"]);
        assert_eq!(s.on_registry("sha256:a", "other"), vec!["x"]);
        assert!(s.on_registry("sha256:b", "reg:5000").is_empty());
        // A corrupt file is ignored.
        std::fs::write(root.path().join("registry/sources.json"), "{").unwrap();
        assert!(Sources::load(&root)
            .on_registry("sha256:a", "other")
            .is_empty());
    }
}
