//! Layers compressed for a push, as Docker pushes them.
//!
//! berth stores the layers it makes (`build`, `commit`, `import`) as plain
//! tars (`application/vnd.oci.image.layer.v1.tar`, digest = diff_id), which
//! unpack fastest. A registry is another matter: Docker pushes gzip, and
//! an uncompressed push costs the user's upload and the registry's disk
//! several times over. So a push gzips each uncompressed layer into a
//! staging file, uploads that (`…tar+gzip`, or Docker's
//! `rootfs.diff.tar.gzip`), and sends a manifest that names the compressed
//! blobs; the image config, and so the diff_ids and the image id, stay the
//! same (the image-spec's layer rules:
//! <https://github.com/opencontainers/image-spec/blob/main/layer.md>).
//!
//! The compressed blob is not kept: `ROOT/registry/compressed.json` records
//! which compressed digest and size each plain layer gave, so a later push
//! asks the registry for that digest first and compresses nothing when it
//! is there (Docker's "Layer already exists"). gzip output is deterministic
//! for the same input and level, so a layer compressed again has the same
//! digest. The record is a hint: losing it only costs a compression.

use std::collections::BTreeMap;
use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;

use crate::image::digest::{Digest, DigestWriter};
use crate::image::layout::{DOCKER_LAYER_GZIP, DOCKER_LAYER_TAR, OCI_LAYER_GZIP, OCI_LAYER_TAR};
use crate::image::{ImageStore, StoreError};
use crate::state::{StateError, StateRoot};

/// The media type a plain layer of `media_type` is pushed as, or `None`
/// when it is pushed as stored (already compressed, or not a layer tar).
pub fn compressed_type(media_type: &str) -> Option<&'static str> {
    match media_type {
        OCI_LAYER_TAR => Some(OCI_LAYER_GZIP),
        DOCKER_LAYER_TAR => Some(DOCKER_LAYER_GZIP),
        _ => None,
    }
}

/// What a plain layer compressed to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CompressedBlob {
    pub digest: Digest,
    pub size: u64,
}

/// The record of compressions, `ROOT/registry/compressed.json`.
#[derive(Debug, Default)]
pub struct Compressions {
    path: PathBuf,
    map: BTreeMap<String, CompressedBlob>,
}

impl Compressions {
    /// Loads the record (empty when missing or unreadable: it is a hint).
    pub fn load(root: &StateRoot) -> Self {
        let path = root.path().join("registry/compressed.json");
        let map = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Self { path, map }
    }

    /// What `plain` compressed to last time, if known.
    pub fn get(&self, plain: &Digest) -> Option<&CompressedBlob> {
        self.map.get(&plain.to_string())
    }

    pub fn insert(&mut self, plain: &Digest, compressed: CompressedBlob) {
        self.map.insert(plain.to_string(), compressed);
    }

    /// Writes the record atomically, merged with what others wrote since it
    /// was loaded; the caller holds the state root's lock.
    pub fn save(&self, root: &StateRoot) -> Result<(), StateError> {
        root.subdir("registry")?;
        let mut merged: BTreeMap<String, CompressedBlob> = std::fs::read(&self.path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        merged.extend(self.map.clone());
        crate::state::write_json_atomic(&self.path, &merged)
    }
}

/// gzips the stored blob `plain` into a staging file under `ROOT/tmp`
/// (removed when the returned file is dropped); returns it with its digest
/// and size. CPU-bound: call it off the async runtime's threads.
pub fn gzip_blob(
    store: &ImageStore,
    plain: &Digest,
) -> Result<(tempfile::NamedTempFile, CompressedBlob), StoreError> {
    let tmp = store.state_root().tmp_dir();
    let io = |path: PathBuf| move |source| StoreError::Io { path, source };
    std::fs::create_dir_all(&tmp).map_err(io(tmp.clone()))?;
    let staging = tempfile::Builder::new()
        .prefix("push-gzip-")
        .tempfile_in(&tmp)
        .map_err(io(tmp.clone()))?;
    let source = store.open_blob(plain)?;
    let out = DigestWriter::new(BufWriter::new(
        staging.as_file().try_clone().map_err(io(tmp.clone()))?,
    ));
    let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    std::io::copy(&mut BufReader::new(source), &mut gz).map_err(io(store.blob_path(plain)))?;
    let out = gz.finish().map_err(io(staging.path().to_path_buf()))?;
    let (digest, size, mut writer) = out.finish();
    writer.flush().map_err(io(staging.path().to_path_buf()))?;
    Ok((staging, CompressedBlob { digest, size }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_layer_tars_are_compressed() {
        assert_eq!(compressed_type(OCI_LAYER_TAR), Some(OCI_LAYER_GZIP));
        assert_eq!(compressed_type(DOCKER_LAYER_TAR), Some(DOCKER_LAYER_GZIP));
        for kept in [
            OCI_LAYER_GZIP,
            DOCKER_LAYER_GZIP,
            crate::image::layout::OCI_LAYER_ZSTD,
            "application/vnd.oci.image.config.v1+json",
        ] {
            assert_eq!(compressed_type(kept), None, "{kept}");
        }
    }

    #[test]
    fn gzip_is_deterministic_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::open(dir.path()).unwrap();
        let store = ImageStore::open(&root).unwrap();
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let plain = store.put_bytes(&data).unwrap();
        let (f1, c1) = gzip_blob(&store, &plain).unwrap();
        let (_f2, c2) = gzip_blob(&store, &plain).unwrap();
        assert_eq!(c1, c2, "the same layer compresses to the same digest");
        assert!(c1.size < data.len() as u64 / 2, "{c1:?}");
        let bytes = std::fs::read(f1.path()).unwrap();
        assert_eq!(Digest::of_bytes(&bytes), c1.digest);
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut back)
            .unwrap();
        assert_eq!(back, data);

        let mut record = Compressions::load(&root);
        record.insert(&plain, c1.clone());
        record.save(&root).unwrap();
        assert_eq!(Compressions::load(&root).get(&plain), Some(&c1));
    }
}
