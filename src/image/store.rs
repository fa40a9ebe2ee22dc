//! The local image store. It IS an OCI image layout
//! (<https://github.com/opencontainers/image-spec/blob/main/image-layout.md>)
//! at `ROOT/images/`, so skopeo and umoci read it directly
//! (`skopeo inspect oci:ROOT/images:docker.io/library/busybox:latest`):
//!
//! ```text
//! ROOT/images/oci-layout            {"imageLayoutVersion":"1.0.0"}
//! ROOT/images/index.json            one descriptor per tag, annotated with
//!                                   org.opencontainers.image.ref.name = full
//!                                   normalised reference; an untagged
//!                                   (dangling) image has a descriptor without it
//! ROOT/images/blobs/sha256/<hex>    manifests, configs, layers
//! ROOT/layers/<chainid>/diff        unpacked layers (overlay lower dirs)
//! ROOT/layers/<chainid>/link        the short name of that layer
//! ROOT/layers/l/<short>             symlink -> ../<chainid>/diff
//! ```
//!
//! Blobs stream into `ROOT/tmp`, are hashed while they stream, fsync'ed and
//! renamed into `blobs/` only when their digest is right. `index.json` is
//! rewritten atomically under the state lock, and only ever names manifests
//! whose config and layers are present.
//!
//! An image's id is its config digest (as in Docker); it is addressed by
//! reference, `repo@digest`, full id or a unique id prefix.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use oci_spec::image::{ImageConfiguration, ImageManifest};

use super::digest::{Digest, DigestWriter};
use super::layer::{self, LayerError, UnpackOptions};
use super::layout::{self, Descriptor, Index, Manifest, OciLayout, ANNOTATION_REF_NAME};
use super::reference::Reference;
use crate::state::{self, StateError, StateRoot};

use super::lease;

/// What [`ImageStore::rebuild_index`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexRebuild {
    /// Image manifests found among the blobs.
    pub images: usize,
    /// The names given back.
    pub names: Vec<String>,
    /// Images left without a name.
    pub untagged: usize,
}

/// The index before the last change (see `write_index`).
const PREVIOUS_INDEX: &str = "index.json.prev";

/// Largest manifest or config berth reads into memory.
pub const MAX_METADATA_BYTES: u64 = 4 << 20;
/// Length of the short layer link names under `ROOT/layers/l/`.
const LINK_LEN: usize = 16;

/// Errors from the image store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no such image: {0}")]
    NotFound(String),
    #[error("image id prefix {0:?} is ambiguous; give more characters")]
    Ambiguous(String),
    #[error("content does not match its digest: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("blob {0} is missing from the store")]
    MissingBlob(Digest),
    #[error("{what} is invalid: {reason}")]
    Invalid { what: String, reason: String },
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("the image index {path} is corrupt ({reason}): run `berth system check` to rebuild it from the stored manifests")]
    CorruptIndex { path: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Layer(#[from] LayerError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// An image in the store.
#[derive(Debug, Clone)]
pub struct Image {
    /// The config digest: Docker's image id.
    pub id: Digest,
    pub manifest_digest: Digest,
    /// The manifest's media type (OCI or Docker v2 schema 2).
    pub manifest_media_type: String,
    pub manifest: ImageManifest,
    pub config: ImageConfiguration,
    /// Tags naming this image.
    pub repo_tags: Vec<Reference>,
    /// `repo@digest` references naming this image.
    pub repo_digests: Vec<Reference>,
    /// Sum of the layer blob sizes as stored (bytes).
    pub size: u64,
    pub created: Option<chrono::DateTime<chrono::Utc>>,
    /// The raw manifest (descriptors as berth's own types).
    pub layout_manifest: Manifest,
}

impl Image {
    /// The layers' diff_ids from the config, bottom first.
    pub fn diff_ids(&self) -> Result<Vec<Digest>, StoreError> {
        self.config
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| {
                Digest::parse(d).map_err(|e| StoreError::Invalid {
                    what: format!("config of image {}", self.id.short()),
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// Chain ids of the layers, bottom first.
    pub fn chain_ids(&self) -> Result<Vec<Digest>, StoreError> {
        Ok(layer::chain_ids(&self.diff_ids()?))
    }

    /// Whether the image has neither tags nor digests naming it.
    pub fn is_dangling(&self) -> bool {
        self.repo_tags.is_empty() && self.repo_digests.is_empty()
    }
}

/// What removing an image did, in Docker's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    Untagged(Reference),
    Deleted(Digest),
}

/// What a prune removed.
#[derive(Debug, Default, Clone)]
pub struct PruneReport {
    pub removals: Vec<Removal>,
    pub reclaimed: u64,
}

/// The image store under a state root.
#[derive(Debug, Clone)]
pub struct ImageStore {
    root: StateRoot,
    dir: PathBuf,
    layers: PathBuf,
}

impl ImageStore {
    /// Opens (creating if needed) the store at `ROOT/images`.
    pub fn open(root: &StateRoot) -> Result<Self, StoreError> {
        let dir = root.path().join("images");
        let layers = root.path().join("layers");
        let store = Self {
            root: root.clone(),
            dir,
            layers,
        };
        if !store.dir.join("index.json").exists() || !store.dir.join("oci-layout").exists() {
            let _lock = root.lock()?;
            std::fs::create_dir_all(store.dir.join("blobs/sha256")).map_err(io(&store.dir))?;
            if !store.dir.join("oci-layout").exists() {
                state::write_json_atomic(&store.dir.join("oci-layout"), &OciLayout::default())?;
            }
            if !store.dir.join("index.json").exists() {
                state::write_json_atomic(&store.dir.join("index.json"), &Index::default())?;
            }
        }
        std::fs::create_dir_all(store.layers.join("l")).map_err(io(&store.layers))?;
        lease::prepare(root.path())?;
        Ok(store)
    }

    /// The OCI layout directory (`ROOT/images`).
    pub fn layout_dir(&self) -> &Path {
        &self.dir
    }

    /// The directory of unpacked layers (`ROOT/layers`); overlay mounts may
    /// chdir here and name lower dirs as `l/<short>`.
    pub fn layers_dir(&self) -> &Path {
        &self.layers
    }

    pub fn state_root(&self) -> &StateRoot {
        &self.root
    }

    /// Where a blob lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("blobs/sha256").join(digest.hex())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// A writer's lease ([`lease`]): while it is held, no prune or `rmi` in
    /// another process deletes unreferenced blobs, so what this process
    /// writes or decides to reuse is still there when it names it. Take it
    /// before looking at the store.
    pub fn lease(&self) -> Result<lease::Lease, StoreError> {
        Ok(lease::hold(self.root.path())?)
    }

    /// Opens a blob for streaming.
    pub fn open_blob(&self, digest: &Digest) -> Result<File, StoreError> {
        File::open(self.blob_path(digest)).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                StoreError::MissingBlob(digest.clone())
            } else {
                StoreError::Io {
                    path: self.blob_path(digest),
                    source: e,
                }
            }
        })
    }

    /// Reads a small blob (manifest, config; at most 4 MiB) and verifies it.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        let f = self.open_blob(digest)?;
        let mut data = Vec::new();
        f.take(MAX_METADATA_BYTES + 1)
            .read_to_end(&mut data)
            .map_err(io(&self.blob_path(digest)))?;
        if data.len() as u64 > MAX_METADATA_BYTES {
            return Err(StoreError::Invalid {
                what: format!("blob {digest}"),
                reason: "larger than 4 MiB; not a manifest or config".into(),
            });
        }
        let actual = Digest::of_bytes(&data);
        if &actual != digest {
            return Err(StoreError::DigestMismatch {
                expected: digest.clone(),
                actual,
            });
        }
        Ok(data)
    }

    /// Streams `reader` into the store. The bytes go to `ROOT/tmp` first, are
    /// hashed on the way, fsync'ed, and renamed into `blobs/` only if they
    /// match `expected` (when given). A mismatch leaves nothing behind.
    pub fn put_blob(
        &self,
        mut reader: impl Read,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64), StoreError> {
        let mut w = self.blob_writer()?;
        std::io::copy(&mut reader, &mut w).map_err(io(&self.root.tmp_dir()))?;
        w.commit(expected)
    }

    /// A writer for a new blob: bytes go to a temp file in `ROOT/tmp` and are
    /// hashed; [`BlobWriter::commit`] verifies and renames it into place,
    /// dropping it discards it.
    pub fn blob_writer(&self) -> Result<BlobWriter, StoreError> {
        let tmp_dir = self.root.tmp_dir();
        let tmp = tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(&tmp_dir)
            .map_err(io(&tmp_dir))?;
        Ok(BlobWriter {
            inner: DigestWriter::new(std::io::BufWriter::with_capacity(256 * 1024, tmp)),
            store: self.clone(),
        })
    }

    /// Moves a staged file under `ROOT/tmp`, already hashed as `digest`, into
    /// `blobs/` (a no-op if the blob is there).
    pub fn adopt_file(&self, file: &Path, digest: &Digest) -> Result<(), StoreError> {
        let dest = self.blob_path(digest);
        if dest.exists() {
            return Ok(());
        }
        File::open(file)
            .and_then(|f| f.sync_all())
            .map_err(io(file))?;
        let parent = dest.parent().expect("blob dir");
        std::fs::rename(file, &dest).map_err(io(&dest))?;
        state::atomic::sync_dir(parent).map_err(io(parent))?;
        Ok(())
    }

    /// Moves an already hashed temp file (in `ROOT/tmp`) into `blobs/`.
    fn adopt(&self, tmp: tempfile::NamedTempFile, digest: &Digest) -> Result<(), StoreError> {
        let dest = self.blob_path(digest);
        if dest.exists() {
            return Ok(());
        }
        tmp.as_file().sync_all().map_err(io(&dest))?;
        let parent = dest.parent().expect("blob dir");
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        tmp.persist(&dest).map_err(|e| StoreError::Io {
            path: dest.clone(),
            source: e.error,
        })?;
        state::atomic::sync_dir(parent).map_err(io(parent))?;
        Ok(())
    }

    /// Stores bytes as a blob.
    pub fn put_bytes(&self, data: &[u8]) -> Result<Digest, StoreError> {
        Ok(self.put_blob(data, None)?.0)
    }

    /// Stores an image manifest (OCI or Docker v2 schema 2) whose config and
    /// layers are already in the store, and records it in `index.json`
    /// (untagged until [`ImageStore::tag`]). Returns its digest.
    pub fn put_manifest(&self, bytes: &[u8], media_type: &str) -> Result<Digest, StoreError> {
        if !layout::is_manifest(media_type) {
            return Err(StoreError::Invalid {
                what: "manifest".into(),
                reason: format!("media type {media_type} is not an image manifest"),
            });
        }
        let digest = Digest::of_bytes(bytes);
        let _lock = self.root.lock()?;
        let m = self.check_manifest(bytes, &digest)?;
        let _ = m;
        self.put_blob(bytes, Some(&digest))?;
        let mut index = self.read_index()?;
        if !index.manifests.iter().any(|d| d.digest == digest) {
            index.manifests.push(Descriptor::new(
                media_type,
                digest.clone(),
                bytes.len() as u64,
            ));
            self.write_index(&index)?;
        }
        Ok(digest)
    }

    /// Parses a manifest and checks that its config and layers are present.
    fn check_manifest(&self, bytes: &[u8], digest: &Digest) -> Result<Manifest, StoreError> {
        let m = Manifest::parse(bytes).map_err(|reason| StoreError::Invalid {
            what: format!("manifest {digest}"),
            reason,
        })?;
        for d in std::iter::once(&m.config).chain(m.layers.iter()) {
            if !self.has_blob(&d.digest) {
                return Err(StoreError::MissingBlob(d.digest.clone()));
            }
        }
        let config = self.read_blob(&m.config.digest)?;
        let parsed: ImageConfiguration =
            serde_json::from_slice(&config).map_err(|e| StoreError::Invalid {
                what: format!("image config {}", m.config.digest),
                reason: e.to_string(),
            })?;
        if parsed.rootfs().diff_ids().len() != m.layers.len() {
            return Err(StoreError::Invalid {
                what: format!("manifest {digest}"),
                reason: format!(
                    "{} layers but the config lists {} diff_ids",
                    m.layers.len(),
                    parsed.rootfs().diff_ids().len()
                ),
            });
        }
        Ok(m)
    }

    /// Names the manifest `manifest_digest` with `reference`: a tag, or a
    /// `repo@digest` (whose digest must be the manifest's). A tag that named
    /// another image moves; that image stays, untagged, if nothing else names it.
    pub fn tag(&self, reference: &Reference, manifest_digest: &Digest) -> Result<(), StoreError> {
        let _lock = self.root.lock()?;
        self.tag_locked(reference, manifest_digest)
    }

    fn tag_locked(
        &self,
        reference: &Reference,
        manifest_digest: &Digest,
    ) -> Result<(), StoreError> {
        match (reference.tag(), reference.digest()) {
            (Some(_), Some(_)) => {
                return Err(StoreError::Invalid {
                    what: format!("reference {}", reference.familiar()),
                    reason: "refusing to create a tag with a digest reference".into(),
                })
            }
            (None, Some(d)) if d != manifest_digest => {
                return Err(StoreError::Invalid {
                    what: format!("reference {}", reference.familiar()),
                    reason: format!("its digest is not the manifest's ({manifest_digest})"),
                })
            }
            (None, None) => {
                return Err(StoreError::Invalid {
                    what: format!("reference {}", reference.familiar()),
                    reason: "a tag or digest is needed".into(),
                })
            }
            _ => {}
        }
        let bytes = self.read_blob(manifest_digest)?;
        let m = self.check_manifest(&bytes, manifest_digest)?;
        let mut index = self.read_index()?;
        let media_type = index
            .manifests
            .iter()
            .find(|d| &d.digest == manifest_digest)
            .map(|d| d.media_type.clone())
            .or(m.media_type.clone())
            .unwrap_or_else(|| layout::OCI_MANIFEST.to_string());
        let name = reference.to_string();
        let previous: Vec<Descriptor> = index
            .manifests
            .iter()
            .filter(|d| d.ref_name() == Some(&name))
            .cloned()
            .collect();
        index.manifests.retain(|d| {
            d.ref_name() != Some(&name) && !(&d.digest == manifest_digest && d.ref_name().is_none())
        });
        let mut desc = Descriptor::new(&media_type, manifest_digest.clone(), bytes.len() as u64);
        desc.annotations.insert(ANNOTATION_REF_NAME.into(), name);
        index.manifests.push(desc);
        for old in previous {
            keep_dangling(&mut index, &old);
        }
        self.write_index(&index)
    }

    /// Records `reference` (`name@digest`) as a repo digest of the manifest
    /// `manifest_digest`, as a pull or push does. The digest is the one the
    /// registry serves for the image: for a multi-platform image the index's,
    /// which differs from the stored manifest's. It replaces an older repo
    /// digest of the same repository for this manifest, and the same name
    /// given to another manifest.
    pub fn set_repo_digest(
        &self,
        reference: &Reference,
        manifest_digest: &Digest,
    ) -> Result<(), StoreError> {
        let _lock = self.root.lock()?;
        self.set_repo_digest_locked(reference, manifest_digest)
    }

    fn set_repo_digest_locked(
        &self,
        reference: &Reference,
        manifest_digest: &Digest,
    ) -> Result<(), StoreError> {
        if reference.digest().is_none() || reference.tag().is_some() {
            return Err(StoreError::Invalid {
                what: format!("reference {}", reference.familiar()),
                reason: "a repo digest is NAME@DIGEST, without a tag".into(),
            });
        }
        let mut index = self.read_index()?;
        let template = index
            .manifests
            .iter()
            .find(|d| &d.digest == manifest_digest)
            .cloned()
            .ok_or_else(|| StoreError::NotFound(manifest_digest.to_string()))?;
        let name = reference.to_string();
        let repo = reference.name();
        let removed: Vec<Descriptor> = index
            .manifests
            .iter()
            .filter(|d| {
                let same_repo_digest = &d.digest == manifest_digest
                    && d.ref_name()
                        .and_then(|n| Reference::parse(n).ok())
                        .is_some_and(|r| r.digest().is_some() && r.name() == repo);
                same_repo_digest || d.ref_name() == Some(&name)
            })
            .cloned()
            .collect();
        index.manifests.retain(|d| !removed.contains(d));
        index
            .manifests
            .retain(|d| !(&d.digest == manifest_digest && d.ref_name().is_none()));
        let mut desc = template;
        desc.annotations.clear();
        desc.annotations.insert(ANNOTATION_REF_NAME.into(), name);
        index.manifests.push(desc);
        for old in removed {
            keep_dangling(&mut index, &old);
        }
        self.write_index(&index)
    }

    /// Deletes those of `digests` that no manifest in the index refers to:
    /// the blobs a failed pull wrote, so that it leaves nothing behind. When
    /// a manifest in the index cannot be read, nothing is deleted.
    pub fn discard_unreferenced(&self, digests: &[Digest]) -> Result<(), StoreError> {
        let _lock = self.root.lock()?;
        let index = self.read_index()?;
        let mut keep: HashSet<Digest> = HashSet::new();
        for md in group(&index).into_keys() {
            let Ok(img) = self.load(&index, &md) else {
                return Ok(());
            };
            keep.insert(md);
            keep.insert(img.id.clone());
            keep.extend(img.layout_manifest.layers.iter().map(|l| l.digest.clone()));
        }
        for d in digests.iter().filter(|d| !keep.contains(d)) {
            let p = self.blob_path(d);
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&p)(e)),
            }
        }
        Ok(())
    }

    /// Removes the name `reference`. The image stays in the store, untagged
    /// (dangling), if nothing else names it. Returns the manifest it named.
    pub fn untag(&self, reference: &Reference) -> Result<Digest, StoreError> {
        let _lock = self.root.lock()?;
        let mut index = self.read_index()?;
        let name = reference.to_string();
        let Some(pos) = index
            .manifests
            .iter()
            .position(|d| d.ref_name() == Some(&name))
        else {
            return Err(StoreError::NotFound(reference.familiar()));
        };
        let old = index.manifests.remove(pos);
        keep_dangling(&mut index, &old);
        self.write_index(&index)?;
        Ok(old.digest)
    }

    /// Finds an image by reference (`busybox`, `busybox:1`, `repo@sha256:…`),
    /// full id (`sha256:…`) or a unique prefix of its id.
    pub fn resolve(&self, name_or_id: &str) -> Result<Image, StoreError> {
        let index = self.read_index()?;
        let entries = group(&index);
        // By id (full or prefix), when it looks like one.
        let hex = name_or_id.strip_prefix("sha256:");
        let looks_like_id = match hex {
            Some(h) => !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()),
            None => false,
        };
        if !looks_like_id {
            if let Ok(r) = Reference::parse(name_or_id) {
                if let Some(digest) = r.digest() {
                    // A repo digest recorded by a pull (for a multi-platform
                    // image, the index's digest, not the manifest's).
                    let name = r.to_string();
                    if let Some(d) = index.manifests.iter().find(|d| d.ref_name() == Some(&name)) {
                        return self.load(&index, &d.digest);
                    }
                    for md in entries.keys() {
                        if md == digest {
                            let img = self.load(&index, md)?;
                            let same_repo = img
                                .repo_tags
                                .iter()
                                .chain(img.repo_digests.iter())
                                .any(|t| t.name() == r.name());
                            if same_repo {
                                return Ok(img);
                            }
                        }
                    }
                } else {
                    let name = r.to_string();
                    if let Some(d) = index.manifests.iter().find(|d| d.ref_name() == Some(&name)) {
                        return self.load(&index, &d.digest);
                    }
                }
            }
        }
        let prefix = hex.unwrap_or(name_or_id);
        if !prefix.is_empty()
            && prefix.len() <= 64
            && prefix
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            let mut found: Vec<Image> = Vec::new();
            for md in entries.keys() {
                let img = self.load(&index, md)?;
                if img.id.hex().starts_with(prefix) && !found.iter().any(|f| f.id == img.id) {
                    found.push(img);
                }
            }
            match found.len() {
                0 => {}
                1 => return Ok(found.pop().expect("one")),
                _ => return Err(StoreError::Ambiguous(name_or_id.to_string())),
            }
        }
        Err(StoreError::NotFound(name_or_id.to_string()))
    }

    /// Every image in the store, newest first.
    pub fn list(&self) -> Result<Vec<Image>, StoreError> {
        let index = self.read_index()?;
        let mut out = Vec::new();
        for (md, _) in group(&index) {
            out.push(self.load(&index, &md)?);
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Reads the image whose manifest is `manifest_digest`.
    fn load(&self, index: &Index, manifest_digest: &Digest) -> Result<Image, StoreError> {
        let bytes = self.read_blob(manifest_digest)?;
        let layout_manifest = Manifest::parse(&bytes).map_err(|reason| StoreError::Invalid {
            what: format!("manifest {manifest_digest}"),
            reason,
        })?;
        let manifest: ImageManifest =
            serde_json::from_slice(&bytes).map_err(|e| StoreError::Invalid {
                what: format!("manifest {manifest_digest}"),
                reason: e.to_string(),
            })?;
        let id = layout_manifest.config.digest.clone();
        let config_bytes = self.read_blob(&id)?;
        let config: ImageConfiguration =
            serde_json::from_slice(&config_bytes).map_err(|e| StoreError::Invalid {
                what: format!("image config {id}"),
                reason: e.to_string(),
            })?;
        let mut repo_tags = Vec::new();
        let mut repo_digests = Vec::new();
        let mut media_type = None;
        for d in index
            .manifests
            .iter()
            .filter(|d| &d.digest == manifest_digest)
        {
            media_type.get_or_insert_with(|| d.media_type.clone());
            if let Some(r) = d.ref_name().and_then(|n| Reference::parse(n).ok()) {
                if r.digest().is_some() {
                    repo_digests.push(r);
                } else {
                    repo_tags.push(r);
                }
            }
        }
        repo_tags.sort();
        repo_digests.sort();
        let created = config
            .created()
            .as_deref()
            .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
            .map(|t| t.with_timezone(&chrono::Utc));
        let size = layout_manifest.layers.iter().map(|l| l.size).sum();
        Ok(Image {
            id,
            manifest_digest: manifest_digest.clone(),
            manifest_media_type: media_type.unwrap_or_else(|| layout::OCI_MANIFEST.to_string()),
            manifest,
            config,
            repo_tags,
            repo_digests,
            size,
            created,
            layout_manifest,
        })
    }

    /// The unpacked layer directories of `image`, bottom-most first, ready to
    /// be overlay lower dirs (overlay wants them top-most first: reverse).
    /// Missing layers are unpacked once, under the state lock.
    pub fn layer_dirs(&self, image: &Image) -> Result<Vec<PathBuf>, StoreError> {
        Ok(self
            .ensure_layers(image)?
            .into_iter()
            .map(|c| self.layers.join(c.hex()).join("diff"))
            .collect())
    }

    /// Like [`ImageStore::layer_dirs`], but as the short symlinks
    /// `ROOT/layers/l/<short>`; relative to [`ImageStore::layers_dir`] they
    /// are `l/<short>`, which keeps overlay's lowerdir option short.
    pub fn layer_link_dirs(&self, image: &Image) -> Result<Vec<PathBuf>, StoreError> {
        Ok(self
            .ensure_layers(image)?
            .into_iter()
            .map(|c| self.layers.join("l").join(link_name(&c)))
            .collect())
    }

    /// Unpacks any missing layer of `image`; returns its chain ids.
    fn ensure_layers(&self, image: &Image) -> Result<Vec<Digest>, StoreError> {
        let diff_ids = image.diff_ids()?;
        if diff_ids.len() != image.layout_manifest.layers.len() {
            return Err(StoreError::Invalid {
                what: format!("image {}", image.id.short()),
                reason: "layer count differs from the config's diff_ids".into(),
            });
        }
        let chains = layer::chain_ids(&diff_ids);
        let missing = |c: &Digest| !self.layers.join(c.hex()).join("diff").is_dir();
        if chains.iter().any(missing) {
            let _lock = self.root.lock()?;
            let opts = UnpackOptions::default();
            for ((desc, diff_id), chain) in image
                .layout_manifest
                .layers
                .iter()
                .zip(&diff_ids)
                .zip(&chains)
            {
                if !missing(chain) {
                    continue;
                }
                let blob = std::io::BufReader::new(self.open_blob(&desc.digest)?);
                let dest = self.layers.join(chain.hex());
                layer::unpack_staged(blob, &dest, &self.root.tmp_dir(), diff_id, &opts)?;
                state::write_atomic(&dest.join("link"), link_name(chain).as_bytes())?;
                self.make_link(chain)?;
            }
        }
        for chain in &chains {
            if !self.layers.join("l").join(link_name(chain)).exists() {
                self.make_link(chain)?;
            }
        }
        Ok(chains)
    }

    fn make_link(&self, chain: &Digest) -> Result<(), StoreError> {
        let l = self.layers.join("l");
        std::fs::create_dir_all(&l).map_err(io(&l))?;
        let link = l.join(link_name(chain));
        let tmp = l.join(format!(".tmp-{}", link_name(chain)));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(format!("../{}/diff", chain.hex()), &tmp).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &link).map_err(io(&link))?;
        Ok(())
    }

    /// Removes an image named by `name_or_id`, as `docker rmi` does: a
    /// reference is untagged, and the image deleted once nothing names it;
    /// an id deletes the image (with several names only if `force`).
    /// `in_use` is the set of image ids containers use: such an image is
    /// untagged but not deleted without `force`, and never deleted while in use.
    pub fn remove(
        &self,
        name_or_id: &str,
        force: bool,
        in_use: &HashSet<Digest>,
    ) -> Result<Vec<Removal>, StoreError> {
        let image = self.resolve(name_or_id)?;
        let _lock = self.root.lock()?;
        let mut index = self.read_index()?;
        let mut out = Vec::new();
        let template = index
            .manifests
            .iter()
            .find(|d| d.digest == image.manifest_digest)
            .cloned()
            .ok_or_else(|| StoreError::NotFound(name_or_id.to_string()))?;
        let by_reference = Reference::parse(name_or_id).ok().filter(|r| {
            image.repo_tags.contains(r)
                || image
                    .repo_digests
                    .iter()
                    .any(|d| d.name() == r.name() && r.digest().is_some())
        });
        let names: Vec<Reference> = image
            .repo_tags
            .iter()
            .chain(image.repo_digests.iter())
            .cloned()
            .collect();
        let mut untag: Vec<Reference> = match &by_reference {
            Some(r) => {
                // The last tag of an image also takes its repo digests.
                let remaining_tags = image.repo_tags.iter().filter(|t| *t != r).count();
                if remaining_tags == 0 {
                    names.clone()
                } else {
                    vec![r.clone()]
                }
            }
            None => {
                let repos: BTreeSet<String> = names.iter().map(|n| n.name()).collect();
                if repos.len() > 1 && !force {
                    return Err(StoreError::Conflict(format!(
                        "unable to delete {} (must be forced) - image is referenced in multiple repositories",
                        image.id.short()
                    )));
                }
                names.clone()
            }
        };
        untag.sort();
        untag.dedup();
        let used = in_use.contains(&image.id);
        if used && (by_reference.is_none() || untag.len() == names.len()) && !force {
            return Err(StoreError::Conflict(format!(
                "unable to delete {} (must be forced) - image is being used by a container",
                image.id.short()
            )));
        }
        for r in &untag {
            let name = r.to_string();
            index.manifests.retain(|d| d.ref_name() != Some(&name));
            out.push(Removal::Untagged(r.clone()));
        }
        let still_named = index
            .manifests
            .iter()
            .any(|d| d.digest == image.manifest_digest && d.ref_name().is_some());
        if !still_named && !used {
            index
                .manifests
                .retain(|d| d.digest != image.manifest_digest);
            self.write_index(&index)?;
            self.delete_unreferenced(&index, Some(&image))?;
            out.push(Removal::Deleted(image.id.clone()));
        } else {
            keep_dangling(&mut index, &template);
            self.write_index(&index)?;
        }
        Ok(out)
    }

    /// Removes dangling images (all unused images with `all`), then every
    /// blob and layer directory nothing in the index refers to.
    ///
    /// A blob a concurrent writer (a pull) has stored but not yet named in a
    /// manifest counts as unreferenced and may go; that writer then fails
    /// cleanly, because `put_manifest` and `tag` check under the lock that
    /// every blob a manifest names is present.
    pub fn prune(&self, all: bool, in_use: &HashSet<Digest>) -> Result<PruneReport, StoreError> {
        self.prune_matching(|img| !in_use.contains(&img.id) && (img.is_dangling() || all))
    }

    /// Removes every image for which `remove` holds (its names too), then
    /// the blobs and layers nothing references any more; as [`Self::prune`].
    pub fn prune_matching(
        &self,
        remove: impl Fn(&Image) -> bool,
    ) -> Result<PruneReport, StoreError> {
        let images = self.list()?;
        let _lock = self.root.lock()?;
        let mut index = self.read_index()?;
        let mut report = PruneReport::default();
        for img in images {
            if !remove(&img) {
                continue;
            }
            for r in img.repo_tags.iter().chain(img.repo_digests.iter()) {
                report.removals.push(Removal::Untagged(r.clone()));
            }
            index.manifests.retain(|d| d.digest != img.manifest_digest);
            report.removals.push(Removal::Deleted(img.id.clone()));
        }
        self.write_index(&index)?;
        report.reclaimed = self.delete_unreferenced(&index, None)?;
        Ok(report)
    }

    /// Deletes blobs and layer dirs that no manifest in `index` refers to:
    /// only those of `only` when given, else all of them. Returns bytes freed.
    /// Deletes nothing while another process writes to the store ([`lease`]).
    fn delete_unreferenced(&self, index: &Index, only: Option<&Image>) -> Result<u64, StoreError> {
        let collection = lease::collect(self.root.path())?;
        if collection.writers {
            tracing::info!(
                "another berth command is writing images: unreferenced blobs stay until the next prune"
            );
            return Ok(0);
        }
        let mut keep_blobs: HashSet<Digest> = HashSet::new();
        let mut keep_chains: HashSet<Digest> = HashSet::new();
        for md in group(index).into_keys() {
            keep_blobs.insert(md.clone());
            let Ok(img) = self.load(index, &md) else {
                continue;
            };
            keep_blobs.insert(img.id.clone());
            keep_blobs.extend(img.layout_manifest.layers.iter().map(|l| l.digest.clone()));
            if let Ok(chains) = img.chain_ids() {
                keep_chains.extend(chains);
            }
        }
        let (blobs, chains): (Vec<Digest>, Vec<Digest>) = match only {
            Some(img) => (
                std::iter::once(img.manifest_digest.clone())
                    .chain(std::iter::once(img.id.clone()))
                    .chain(img.layout_manifest.layers.iter().map(|l| l.digest.clone()))
                    .collect(),
                img.chain_ids().unwrap_or_default(),
            ),
            None => (self.all_blobs()?, self.all_chains()?),
        };
        let mut freed = 0;
        for b in blobs.into_iter().filter(|b| !keep_blobs.contains(b)) {
            let p = self.blob_path(&b);
            if let Ok(md) = std::fs::symlink_metadata(&p) {
                freed += md.len();
                std::fs::remove_file(&p).map_err(io(&p))?;
            }
        }
        for c in chains.into_iter().filter(|c| !keep_chains.contains(c)) {
            let dir = self.layers.join(c.hex());
            if dir.exists() {
                freed += dir_size(&dir);
                let _ = std::fs::remove_file(self.layers.join("l").join(link_name(&c)));
                // Rename first so a crash never leaves a half-deleted layer in place.
                let trash = self.root.tmp_dir().join(format!("rm-{}", c.hex()));
                std::fs::rename(&dir, &trash).map_err(io(&dir))?;
                std::fs::remove_dir_all(&trash).map_err(io(&trash))?;
            }
        }
        Ok(freed)
    }

    fn all_blobs(&self) -> Result<Vec<Digest>, StoreError> {
        let dir = self.dir.join("blobs/sha256");
        let mut out = Vec::new();
        for e in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let e = e.map_err(io(&dir))?;
            if let Ok(d) = Digest::from_hex(&e.file_name().to_string_lossy()) {
                out.push(d);
            }
        }
        Ok(out)
    }

    fn all_chains(&self) -> Result<Vec<Digest>, StoreError> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.layers).map_err(io(&self.layers))? {
            let e = e.map_err(io(&self.layers))?;
            if let Ok(d) = Digest::from_hex(&e.file_name().to_string_lossy()) {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Reads `index.json`.
    pub fn read_index(&self) -> Result<Index, StoreError> {
        let p = self.dir.join("index.json");
        let data = std::fs::read(&p).map_err(io(&p))?;
        serde_json::from_slice(&data).map_err(|e| StoreError::CorruptIndex {
            path: p.clone(),
            reason: e.to_string(),
        })
    }

    /// Rebuilds a corrupt `index.json` from the store's own blobs: every
    /// stored image manifest whose config and layers are present becomes
    /// an image again, named as the index before the last change
    /// (`index.json.prev`) named it, and by the names in `names`
    /// (reference, config digest: what containers say they were made
    /// from); the others are untagged. Returns the images found and the
    /// names restored; `None` when the index was sound and is left alone.
    pub fn rebuild_index(
        &self,
        names: &[(String, String)],
    ) -> Result<Option<IndexRebuild>, StoreError> {
        let _lock = self.root.lock()?;
        match self.read_index() {
            Err(StoreError::CorruptIndex { .. }) => {}
            other => return other.map(|_| None),
        }
        let mut index = Index::default();
        let mut configs: BTreeMap<String, Descriptor> = BTreeMap::new();
        for digest in self.all_blobs()? {
            let path = self.blob_path(&digest);
            if std::fs::metadata(&path).map_or(true, |m| m.len() > MAX_METADATA_BYTES) {
                continue;
            }
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let Ok(m) = self.check_manifest(&bytes, &digest) else {
                continue;
            };
            let media_type = m.media_type.as_deref().unwrap_or(layout::OCI_MANIFEST);
            let desc = Descriptor::new(media_type, digest, bytes.len() as u64);
            configs.insert(m.config.digest.to_string(), desc.clone());
            index.manifests.push(desc);
        }
        let found = index.manifests.len();
        let mut restored = Vec::new();
        let previous: Vec<(String, Digest)> = std::fs::read(self.dir.join(PREVIOUS_INDEX))
            .ok()
            .and_then(|b| serde_json::from_slice::<Index>(&b).ok())
            .map(|i| {
                i.manifests
                    .iter()
                    .filter_map(|d| Some((d.ref_name()?.to_string(), d.digest.clone())))
                    .collect()
            })
            .unwrap_or_default();
        let by_manifest = |digest: &Digest| {
            index
                .manifests
                .iter()
                .find(|d| &d.digest == digest)
                .cloned()
        };
        let mut wanted: Vec<(String, Descriptor)> = previous
            .iter()
            .filter_map(|(name, digest)| Some((name.clone(), by_manifest(digest)?)))
            .collect();
        for (name, config) in names {
            if let (Ok(reference), Some(desc)) = (Reference::parse(name), configs.get(config)) {
                wanted.push((reference.to_string(), desc.clone()));
            }
        }
        for (full, desc) in wanted {
            if index
                .manifests
                .iter()
                .any(|d| d.ref_name() == Some(full.as_str()))
            {
                continue;
            }
            let mut tagged = desc.clone();
            tagged.annotations.clear();
            tagged
                .annotations
                .insert(ANNOTATION_REF_NAME.into(), full.clone());
            index
                .manifests
                .retain(|d| d.digest != desc.digest || d.ref_name().is_some());
            index.manifests.push(tagged);
            restored.push(full);
        }
        let untagged = index
            .manifests
            .iter()
            .filter(|d| d.ref_name().is_none())
            .count();
        self.write_index(&index)?;
        Ok(Some(IndexRebuild {
            images: found,
            names: restored,
            untagged,
        }))
    }

    fn write_index(&self, index: &Index) -> Result<(), StoreError> {
        let mut index = index.clone();
        index.manifests.sort_by(|a, b| {
            (a.ref_name().unwrap_or(""), &a.digest).cmp(&(b.ref_name().unwrap_or(""), &b.digest))
        });
        // The index being replaced stays as `index.json.prev` (a hard link,
        // no copy), so a damaged `index.json` can get its names back
        // ([`Self::rebuild_index`]). Best effort: it only helps a repair.
        let current = self.dir.join("index.json");
        let link = self.dir.join(".index.json.prev.tmp");
        let _ = std::fs::remove_file(&link);
        if std::fs::hard_link(&current, &link).is_ok() {
            let _ = std::fs::rename(&link, self.dir.join(PREVIOUS_INDEX));
        }
        state::write_json_atomic(&current, &index)?;
        Ok(())
    }

    /// Runs `f` holding the state lock, for callers that add several
    /// manifests and tags as one step (e.g. `load`). Inside, use the
    /// `*_locked` methods only.
    pub fn with_lock<T>(
        &self,
        f: impl FnOnce(&Locked<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _lock = self.root.lock()?;
        f(&Locked { store: self })
    }
}

/// A blob being written: see [`ImageStore::blob_writer`].
pub struct BlobWriter {
    inner: DigestWriter<std::io::BufWriter<tempfile::NamedTempFile>>,
    store: ImageStore,
}

impl BlobWriter {
    /// Verifies the digest (when `expected` is given) and moves the blob
    /// into the store. On error nothing is left behind.
    pub fn commit(self, expected: Option<&Digest>) -> Result<(Digest, u64), StoreError> {
        let (digest, size, buf) = self.inner.finish();
        let tmp = buf.into_inner().map_err(|e| StoreError::Io {
            path: self.store.root.tmp_dir(),
            source: e.into_error(),
        })?;
        if let Some(expected) = expected {
            if expected != &digest {
                return Err(StoreError::DigestMismatch {
                    expected: expected.clone(),
                    actual: digest,
                });
            }
        }
        self.store.adopt(tmp, &digest)?;
        Ok((digest, size))
    }
}

impl std::io::Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The store while the caller holds the state lock.
pub struct Locked<'a> {
    store: &'a ImageStore,
}

impl Locked<'_> {
    /// [`ImageStore::tag`] without taking the lock again.
    pub fn tag(&self, reference: &Reference, manifest_digest: &Digest) -> Result<(), StoreError> {
        self.store.tag_locked(reference, manifest_digest)
    }

    /// [`ImageStore::set_repo_digest`] without taking the lock again.
    pub fn set_repo_digest(
        &self,
        reference: &Reference,
        manifest_digest: &Digest,
    ) -> Result<(), StoreError> {
        self.store
            .set_repo_digest_locked(reference, manifest_digest)
    }

    /// [`ImageStore::put_manifest`] without taking the lock again.
    pub fn put_manifest(&self, bytes: &[u8], media_type: &str) -> Result<Digest, StoreError> {
        let digest = Digest::of_bytes(bytes);
        self.store.check_manifest(bytes, &digest)?;
        self.store.put_blob(bytes, Some(&digest))?;
        let mut index = self.store.read_index()?;
        if !index.manifests.iter().any(|d| d.digest == digest) {
            index.manifests.push(Descriptor::new(
                media_type,
                digest.clone(),
                bytes.len() as u64,
            ));
            self.store.write_index(&index)?;
        }
        Ok(digest)
    }
}

/// Adds an unnamed copy of `desc` if nothing in the index names its
/// manifest any more, so that a moved tag leaves a dangling image as Docker does.
fn keep_dangling(index: &mut Index, desc: &Descriptor) {
    if index.manifests.iter().any(|d| d.digest == desc.digest) {
        return;
    }
    let mut d = desc.clone();
    d.annotations.clear();
    index.manifests.push(d);
}

/// Manifest digests in the index, each with its descriptors.
fn group(index: &Index) -> BTreeMap<Digest, Vec<&Descriptor>> {
    let mut out: BTreeMap<Digest, Vec<&Descriptor>> = BTreeMap::new();
    for d in &index.manifests {
        out.entry(d.digest.clone()).or_default().push(d);
    }
    out
}

/// The short link name of a layer.
pub fn link_name(chain: &Digest) -> String {
    chain.hex()[..LINK_LEN].to_string()
}

/// Bytes of the files under `dir` (links not followed).
pub fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            if let Ok(md) = e.path().symlink_metadata() {
                if md.is_dir() {
                    stack.push(e.path());
                } else {
                    total += md.len();
                }
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(1_700_000_000);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn add_image(store: &ImageStore, layers: &[Vec<u8>], created: &str) -> Digest {
        let mut descs = Vec::new();
        let mut diff_ids = Vec::new();
        for l in layers {
            let (d, n) = store.put_blob(&l[..], None).unwrap();
            diff_ids.push(d.to_string());
            descs.push(Descriptor::new(layout::OCI_LAYER_TAR, d, n));
        }
        let config = serde_json::json!({
            "created": created, "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let cbytes = serde_json::to_vec(&config).unwrap();
        let (cd, cn) = store.put_blob(&cbytes[..], None).unwrap();
        let m = Manifest {
            schema_version: 2,
            media_type: Some(layout::OCI_MANIFEST.into()),
            config: Descriptor::new(layout::OCI_CONFIG, cd, cn),
            layers: descs,
            annotations: BTreeMap::new(),
        };
        store
            .put_manifest(&m.to_bytes(), layout::OCI_MANIFEST)
            .unwrap()
    }

    #[test]
    fn tags_resolves_lists_unpacks_and_removes() {
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::open(dir.path()).unwrap();
        let store = ImageStore::open(&root).unwrap();
        let md = add_image(
            &store,
            &[layer_tar(&[("a", b"one")]), layer_tar(&[("b", b"two")])],
            "2024-01-01T00:00:00Z",
        );
        let r = Reference::parse("busybox").unwrap();
        store.tag(&r, &md).unwrap();
        store.tag(&Reference::parse("x/y:1").unwrap(), &md).unwrap();
        let img = store.resolve("busybox:latest").unwrap();
        assert_eq!(img.manifest_digest, md);
        assert_eq!(img.repo_tags.len(), 2);
        assert_eq!(store.resolve(&img.id.to_string()).unwrap().id, img.id);
        assert_eq!(store.resolve(&img.id.hex()[..6]).unwrap().id, img.id);
        assert_eq!(store.resolve(&format!("busybox@{md}")).unwrap().id, img.id);
        assert!(matches!(
            store.resolve("nope"),
            Err(StoreError::NotFound(_))
        ));
        let dirs = store.layer_dirs(&img).unwrap();
        assert_eq!(std::fs::read(dirs[0].join("a")).unwrap(), b"one");
        assert_eq!(std::fs::read(dirs[1].join("b")).unwrap(), b"two");
        let links = store.layer_link_dirs(&img).unwrap();
        assert_eq!(std::fs::read(links[1].join("b")).unwrap(), b"two");
        assert_eq!(links[0].file_name().unwrap().len(), LINK_LEN);
        // Moving the only tag leaves a dangling image.
        let md2 = add_image(&store, &[layer_tar(&[("c", b"3")])], "2024-02-01T00:00:00Z");
        store.tag(&r, &md2).unwrap();
        let all = store.list().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].manifest_digest, md2, "newest first");
        store.untag(&Reference::parse("x/y:1").unwrap()).unwrap();
        assert!(store
            .list()
            .unwrap()
            .iter()
            .any(|i| i.is_dangling() && i.manifest_digest == md));
        let report = store.prune(false, &HashSet::new()).unwrap();
        assert_eq!(report.removals, vec![Removal::Deleted(img.id.clone())]);
        assert!(!dirs[1].exists() && !store.has_blob(&md));
        let removed = store.remove("busybox", false, &HashSet::new()).unwrap();
        assert_eq!(removed.len(), 2);
        assert!(store.list().unwrap().is_empty());
        assert_eq!(store.all_blobs().unwrap(), Vec::<Digest>::new());
    }

    #[test]
    fn put_blob_rejects_a_mismatch_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::open(dir.path()).unwrap();
        let store = ImageStore::open(&root).unwrap();
        let wrong = Digest::of_bytes(b"other");
        assert!(matches!(
            store.put_blob(&b"data"[..], Some(&wrong)),
            Err(StoreError::DigestMismatch { .. })
        ));
        assert_eq!(std::fs::read_dir(root.tmp_dir()).unwrap().count(), 0);
        assert!(store.all_blobs().unwrap().is_empty());
        // A manifest whose blobs are absent is refused.
        let m = Manifest {
            schema_version: 2,
            media_type: None,
            config: Descriptor::new(layout::OCI_CONFIG, wrong.clone(), 5),
            layers: vec![],
            annotations: BTreeMap::new(),
        };
        assert!(matches!(
            store.put_manifest(&m.to_bytes(), layout::OCI_MANIFEST),
            Err(StoreError::MissingBlob(_))
        ));
    }

    #[test]
    fn reads_docker_v2_schema2_manifests() {
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::open(dir.path()).unwrap();
        let store = ImageStore::open(&root).unwrap();
        let tar = layer_tar(&[("f", b"docker")]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        let gz = gz.finish().unwrap();
        let (ld, ln) = store.put_blob(&gz[..], None).unwrap();
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux", "created": "2023-05-01T10:00:00.123456789Z",
            "config": {"Cmd": ["sh"]}, "container_config": {}, "docker_version": "24.0.0",
            "rootfs": {"type": "layers", "diff_ids": [Digest::of_bytes(&tar).to_string()]},
        });
        let cbytes = serde_json::to_vec(&config).unwrap();
        let (cd, cn) = store.put_blob(&cbytes[..], None).unwrap();
        let m = Manifest {
            schema_version: 2,
            media_type: Some(layout::DOCKER_MANIFEST.into()),
            config: Descriptor::new(layout::DOCKER_CONFIG, cd.clone(), cn),
            layers: vec![Descriptor::new(layout::DOCKER_LAYER_GZIP, ld, ln)],
            annotations: BTreeMap::new(),
        };
        let md = store
            .put_manifest(&m.to_bytes(), layout::DOCKER_MANIFEST)
            .unwrap();
        let r = Reference::parse("library/busybox:1").unwrap();
        store.tag(&r, &md).unwrap();
        store.tag(&r.with_digest(md.clone()), &md).unwrap();
        let img = store.resolve("busybox:1").unwrap();
        assert_eq!(img.id, cd);
        assert_eq!(img.manifest_media_type, layout::DOCKER_MANIFEST);
        assert_eq!(img.repo_digests, vec![r.with_digest(md.clone())]);
        assert_eq!(img.created.unwrap().timestamp(), 1_682_935_200);
        let dirs = store.layer_dirs(&img).unwrap();
        assert_eq!(std::fs::read(dirs[0].join("f")).unwrap(), b"docker");
        let index = store.read_index().unwrap();
        assert!(index
            .manifests
            .iter()
            .all(|d| d.media_type == layout::DOCKER_MANIFEST));
    }
}
