//! `save` and `load`: image archives as tar streams.
//!
//! * **OCI archive** — a tarred OCI image layout (`oci-layout`, `index.json`,
//!   `blobs/sha256/…`), as `skopeo copy … oci-archive:` writes it
//!   (<https://github.com/opencontainers/image-spec/blob/main/image-layout.md>).
//! * **docker-archive** — what `docker save` writes: `manifest.json`
//!   (`[{"Config": …, "RepoTags": […], "Layers": […]}]`) naming a config and
//!   layer tarballs by path. Since Docker 25 the same archive also holds an
//!   OCI layout, and berth writes it that way too, so `load` of berth's own
//!   archive gives back identical manifest digests, and older readers (skopeo's
//!   `docker-archive:`) still find `manifest.json`.
//!
//! `load` reads the tar stream once (it may come from stdin), staging every
//! file under `ROOT/tmp` while hashing it; only when the whole archive is read
//! and every manifest, config and layer checks out are the blobs moved into the
//! store and the images named. A failure leaves the store as it was.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use super::digest::{Digest, DigestReader, DigestWriter};
use super::layout::{
    self, Descriptor, Index, Manifest, OciLayout, ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME,
};
use super::reference::Reference;
use super::store::{Image, ImageStore, StoreError, MAX_METADATA_BYTES};

/// Why saving or loading failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("the input is not an image archive: {0}")]
    NotImage(String),
    #[error("the archive is corrupt: {0}")]
    Corrupt(String),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Archive formats `save` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// docker-archive (with an OCI layout inside, as Docker 25+ writes).
    Docker,
    /// OCI image layout.
    Oci,
}

/// Writes `images` (each with the name it was asked for, if any) as an
/// archive to `out`.
pub fn save(
    store: &ImageStore,
    images: &[(Image, Option<Reference>)],
    format: ArchiveFormat,
    out: impl Write,
) -> Result<(), ArchiveError> {
    let werr = |e: std::io::Error| ArchiveError::Io("writing the archive".into(), e);
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Deterministic);
    let file = |tar: &mut tar::Builder<_>, path: &str, size: u64, data: &mut dyn Read| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_mtime(0);
        tar.append_data(&mut h, path, data)
    };
    let dir = |tar: &mut tar::Builder<_>, path: &str| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        h.set_mode(0o755);
        h.set_mtime(0);
        tar.append_data(&mut h, path, std::io::empty())
    };
    let layout_bytes = serde_json::to_vec(&OciLayout::default()).expect("serialises");
    file(
        &mut tar,
        "oci-layout",
        layout_bytes.len() as u64,
        &mut &layout_bytes[..],
    )
    .map_err(werr)?;
    dir(&mut tar, "blobs/").map_err(werr)?;
    dir(&mut tar, "blobs/sha256/").map_err(werr)?;
    let mut written: std::collections::HashSet<Digest> = Default::default();
    let mut index = Index::default();
    let mut docker: Vec<serde_json::Value> = Vec::new();
    for (img, name) in images {
        let blobs = std::iter::once((img.manifest_digest.clone(), 0u64))
            .chain(std::iter::once((img.id.clone(), 0)))
            .chain(
                img.layout_manifest
                    .layers
                    .iter()
                    .map(|l| (l.digest.clone(), l.size)),
            );
        for (d, _) in blobs {
            if !written.insert(d.clone()) {
                continue;
            }
            let mut f = store.open_blob(&d)?;
            let size = f
                .metadata()
                .map_err(|e| ArchiveError::Io(format!("blob {d}"), e))?
                .len();
            file(&mut tar, &format!("blobs/sha256/{}", d.hex()), size, &mut f).map_err(werr)?;
        }
        let manifest_size = store
            .open_blob(&img.manifest_digest)?
            .metadata()
            .map_err(|e| ArchiveError::Io("manifest".into(), e))?
            .len();
        let mut desc = Descriptor::new(
            &img.manifest_media_type,
            img.manifest_digest.clone(),
            manifest_size,
        );
        if let Some(r) = name {
            desc.annotations
                .insert(ANNOTATION_REF_NAME.into(), r.to_string());
            desc.annotations
                .insert(ANNOTATION_CONTAINERD_NAME.into(), r.to_string());
        }
        index.manifests.push(desc);
        if format == ArchiveFormat::Docker {
            let tags: Vec<String> = name
                .iter()
                .filter(|r| r.tag().is_some())
                .map(|r| r.familiar())
                .collect();
            // One manifest.json entry per image, with all the tags asked for.
            if let Some(existing) = docker
                .iter_mut()
                .find(|e| e["Config"] == format!("blobs/sha256/{}", img.id.hex()))
            {
                if let Some(list) = existing["RepoTags"].as_array_mut() {
                    list.extend(tags.into_iter().map(serde_json::Value::from));
                }
            } else {
                docker.push(serde_json::json!({
                    "Config": format!("blobs/sha256/{}", img.id.hex()),
                    "RepoTags": tags,
                    "Layers": img.layout_manifest.layers.iter().map(|l| format!("blobs/sha256/{}", l.digest.hex())).collect::<Vec<_>>(),
                }));
            }
        }
    }
    let index_bytes = serde_json::to_vec(&index).expect("serialises");
    file(
        &mut tar,
        "index.json",
        index_bytes.len() as u64,
        &mut &index_bytes[..],
    )
    .map_err(werr)?;
    if format == ArchiveFormat::Docker {
        let m = serde_json::to_vec(&docker).expect("serialises");
        file(&mut tar, "manifest.json", m.len() as u64, &mut &m[..]).map_err(werr)?;
    }
    tar.into_inner().map_err(werr)?.flush().map_err(werr)?;
    Ok(())
}

/// An image `load` added, with the names it was given.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub image: Image,
    pub names: Vec<Reference>,
}

/// A file of the archive, staged under `ROOT/tmp`.
#[derive(Debug, Clone)]
struct Staged {
    file: PathBuf,
    digest: Digest,
    size: u64,
}

/// What the archive's tar stream held.
#[derive(Default)]
struct Contents {
    files: HashMap<PathBuf, Staged>,
    links: HashMap<PathBuf, PathBuf>,
    meta: HashMap<String, Vec<u8>>,
}

const META_FILES: [&str; 4] = ["manifest.json", "index.json", "oci-layout", "repositories"];

impl Contents {
    fn get(&self, path: &Path) -> Option<&Staged> {
        let mut p = clean(path)?;
        for _ in 0..16 {
            if let Some(s) = self.files.get(&p) {
                return Some(s);
            }
            p = self.links.get(&p)?.clone();
        }
        None
    }

    fn blob(&self, d: &Descriptor) -> Result<&Staged, ArchiveError> {
        let p = PathBuf::from(format!("blobs/sha256/{}", d.digest.hex()));
        let s = self
            .get(&p)
            .ok_or_else(|| ArchiveError::Corrupt(format!("blob {} is missing", d.digest)))?;
        if s.digest != d.digest {
            return Err(ArchiveError::Corrupt(format!(
                "blob {} does not match its digest (got {})",
                d.digest, s.digest
            )));
        }
        Ok(s)
    }

    fn read_small(&self, s: &Staged) -> Result<Vec<u8>, ArchiveError> {
        if s.size > MAX_METADATA_BYTES {
            return Err(ArchiveError::Corrupt(format!(
                "{} is too large for metadata",
                s.digest
            )));
        }
        std::fs::read(&s.file).map_err(|e| ArchiveError::Io("staged file".into(), e))
    }
}

/// A relative, `..`-free path; None for anything else.
fn clean(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

/// Reads an archive (OCI or docker-archive, optionally gzip/zstd-compressed)
/// from `input` into the store.
pub fn load(store: &ImageStore, input: impl Read) -> Result<Vec<Loaded>, ArchiveError> {
    let _lease = store.lease()?;
    let staging = tempfile::Builder::new()
        .prefix("load-")
        .tempdir_in(store.state_root().tmp_dir())
        .map_err(|e| ArchiveError::Io("staging".into(), e))?;
    let contents = read_archive(input, staging.path())?;
    let plan = if contents.meta.contains_key("index.json") {
        plan_oci(&contents)?
    } else if contents.meta.contains_key("manifest.json") {
        plan_docker(&contents)?
    } else {
        return Err(ArchiveError::NotImage(
            "it has neither index.json (OCI) nor manifest.json (docker-archive)".into(),
        ));
    };
    if plan.is_empty() {
        return Err(ArchiveError::NotImage("it names no images".into()));
    }
    // Everything checked: move the blobs in, then record and name the images.
    for p in &plan {
        for s in &p.blobs {
            store.adopt_file(&s.file, &s.digest)?;
        }
        store.put_bytes(&p.manifest)?;
    }
    let digests = store.with_lock(|l| {
        let mut out = Vec::new();
        for p in &plan {
            let md = l.put_manifest(&p.manifest, &p.media_type)?;
            for n in &p.names {
                l.tag(n, &md)?;
            }
            out.push(md);
        }
        Ok(out)
    })?;
    let mut loaded = Vec::new();
    for (p, md) in plan.iter().zip(digests) {
        let image = match p.names.first() {
            Some(n) => store.resolve(&n.to_string())?,
            None => store
                .list()?
                .into_iter()
                .find(|i| i.manifest_digest == md)
                .ok_or_else(|| StoreError::NotFound(md.to_string()))?,
        };
        loaded.push(Loaded {
            image,
            names: p.names.clone(),
        });
    }
    Ok(loaded)
}

fn read_archive(input: impl Read, staging: &Path) -> Result<Contents, ArchiveError> {
    let corrupt = |e: std::io::Error| ArchiveError::Corrupt(super::one_line(&e.to_string()));
    let plain = super::layer::decompress(input).map_err(corrupt)?;
    let mut archive = tar::Archive::new(plain);
    let mut contents = Contents::default();
    let mut n = 0usize;
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let raw = entry.path().map_err(corrupt)?.into_owned();
        let path = clean(&raw).ok_or_else(|| {
            ArchiveError::Corrupt(format!("entry {raw:?} is absolute or contains '..'"))
        })?;
        let kind = entry.header().entry_type();
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let name = path.to_string_lossy().to_string();
                if META_FILES.contains(&name.as_str()) {
                    let mut data = Vec::new();
                    (&mut entry)
                        .take(MAX_METADATA_BYTES + 1)
                        .read_to_end(&mut data)
                        .map_err(corrupt)?;
                    if data.len() as u64 > MAX_METADATA_BYTES {
                        return Err(ArchiveError::Corrupt(format!(
                            "{name} is larger than 4 MiB"
                        )));
                    }
                    contents.meta.insert(name, data);
                    continue;
                }
                n += 1;
                let file = staging.join(n.to_string());
                let f = std::fs::File::create(&file)
                    .map_err(|e| ArchiveError::Io("staging".into(), e))?;
                let mut w = DigestWriter::new(std::io::BufWriter::with_capacity(256 * 1024, f));
                std::io::copy(&mut entry, &mut w).map_err(corrupt)?;
                let (digest, size, mut buf) = w.finish();
                buf.flush()
                    .map_err(|e| ArchiveError::Io("staging".into(), e))?;
                contents.files.insert(path, Staged { file, digest, size });
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(corrupt)?
                    .ok_or_else(|| ArchiveError::Corrupt(format!("link {raw:?} has no target")))?
                    .into_owned();
                let resolved = if kind == tar::EntryType::Symlink {
                    path.parent().unwrap_or(Path::new("")).join(&target)
                } else {
                    target
                };
                // Resolve `..` lexically, inside the archive.
                let mut out = PathBuf::new();
                for c in resolved.components() {
                    match c {
                        Component::Normal(x) => out.push(x),
                        Component::ParentDir => {
                            if !out.pop() {
                                return Err(ArchiveError::Corrupt(format!(
                                    "link {raw:?} points outside the archive"
                                )));
                            }
                        }
                        Component::CurDir => {}
                        _ => {
                            return Err(ArchiveError::Corrupt(format!("link {raw:?} is absolute")))
                        }
                    }
                }
                contents.links.insert(path, out);
            }
            _ => {}
        }
    }
    let mut rest = archive.into_inner();
    std::io::copy(&mut rest, &mut std::io::sink()).map_err(corrupt)?;
    Ok(contents)
}

/// One image to add: its manifest bytes, the blobs it needs, its names.
struct Planned {
    manifest: Vec<u8>,
    media_type: String,
    blobs: Vec<Staged>,
    names: Vec<Reference>,
}

/// Checks a manifest's config and layers against the staged files.
fn check(contents: &Contents, m: &Manifest) -> Result<Vec<Staged>, ArchiveError> {
    let config = contents.blob(&m.config)?;
    let bytes = contents.read_small(config)?;
    let parsed: oci_spec::image::ImageConfiguration = serde_json::from_slice(&bytes)
        .map_err(|e| ArchiveError::Corrupt(format!("config {}: {e}", m.config.digest)))?;
    if parsed.rootfs().diff_ids().len() != m.layers.len() {
        return Err(ArchiveError::Corrupt(format!(
            "config {} lists {} diff_ids for {} layers",
            m.config.digest,
            parsed.rootfs().diff_ids().len(),
            m.layers.len()
        )));
    }
    let mut blobs = vec![config.clone()];
    for (l, diff_id) in m.layers.iter().zip(parsed.rootfs().diff_ids()) {
        let staged = contents.blob(l)?;
        verify_diff_id(staged, diff_id, &l.digest.to_string())?;
        blobs.push(staged.clone());
    }
    Ok(blobs)
}

/// Checks that a staged layer's uncompressed content has the config's
/// `diff_id` (as a pull does while it unpacks), before anything is named:
/// an archive whose layers are not what its config says is refused whole.
/// The stream is cut at the layer size cap, so a compression bomb costs
/// no more than unpacking it would.
fn verify_diff_id(staged: &Staged, diff_id: &str, shown: &str) -> Result<(), ArchiveError> {
    let io =
        |e: std::io::Error| ArchiveError::Corrupt(super::one_line(&format!("layer {shown}: {e}")));
    let file = std::fs::File::open(&staged.file)
        .map_err(|e| ArchiveError::Io("staged layer".into(), e))?;
    let cap = super::layer::UnpackOptions::default().max_bytes;
    let mut reader = DigestReader::new(super::layer::decompress(file).map_err(io)?.take(cap + 1));
    std::io::copy(&mut reader, &mut std::io::sink()).map_err(io)?;
    let (got, n) = reader.finish();
    if n > cap {
        return Err(ArchiveError::Corrupt(format!(
            "layer {shown} is larger than the {cap}-byte layer size cap uncompressed"
        )));
    }
    if got.to_string() != diff_id {
        return Err(ArchiveError::Corrupt(format!(
            "layer {shown} does not match its diff_id {diff_id} (got {got})"
        )));
    }
    Ok(())
}

fn plan_oci(contents: &Contents) -> Result<Vec<Planned>, ArchiveError> {
    let index: Index = serde_json::from_slice(&contents.meta["index.json"])
        .map_err(|e| ArchiveError::Corrupt(format!("index.json: {e}")))?;
    let mut by_manifest: BTreeMap<Digest, Planned> = BTreeMap::new();
    let mut queue: Vec<(Descriptor, Option<Reference>)> = index
        .manifests
        .iter()
        .map(|d| (d.clone(), oci_name(d)))
        .collect();
    let mut seen = 0;
    while let Some((desc, name)) = queue.pop() {
        seen += 1;
        if seen > 1000 {
            return Err(ArchiveError::Corrupt("too many nested indexes".into()));
        }
        let staged = contents.blob(&desc)?;
        let bytes = contents.read_small(staged)?;
        if layout::is_index(&desc.media_type) {
            let nested: Index = serde_json::from_slice(&bytes)
                .map_err(|e| ArchiveError::Corrupt(format!("index {}: {e}", desc.digest)))?;
            let (arch, os) = layout::host_platform();
            let pick = nested
                .manifests
                .iter()
                .find(|d| {
                    d.platform
                        .as_ref()
                        .is_some_and(|p| p.architecture == arch && p.os == os)
                })
                .or(if nested.manifests.len() == 1 {
                    nested.manifests.first()
                } else {
                    None
                })
                .ok_or_else(|| {
                    ArchiveError::NotImage(format!(
                        "index {} has no image for {os}/{arch}",
                        desc.digest
                    ))
                })?;
            queue.push((pick.clone(), name));
            continue;
        }
        if !layout::is_manifest(&desc.media_type) {
            return Err(ArchiveError::NotImage(format!(
                "unsupported media type {}",
                desc.media_type
            )));
        }
        let m = Manifest::parse(&bytes)
            .map_err(|e| ArchiveError::Corrupt(format!("manifest {}: {e}", desc.digest)))?;
        let blobs = check(contents, &m)?;
        let entry = by_manifest
            .entry(desc.digest.clone())
            .or_insert_with(|| Planned {
                manifest: bytes,
                media_type: desc.media_type.clone(),
                blobs,
                names: Vec::new(),
            });
        if let Some(n) = name {
            if !entry.names.contains(&n) {
                entry.names.push(n);
            }
        }
    }
    Ok(by_manifest.into_values().collect())
}

/// The name an OCI index entry gives its image: a full reference in
/// `org.opencontainers.image.ref.name`, or (when that is only a tag, as Docker
/// writes it) `io.containerd.image.name`.
fn oci_name(d: &Descriptor) -> Option<Reference> {
    let ref_name = d.annotations.get(ANNOTATION_REF_NAME);
    let full = ref_name.filter(|n| n.contains('/') || n.contains(':') || n.contains('@'));
    full.or(d.annotations.get(ANNOTATION_CONTAINERD_NAME))
        .and_then(|n| Reference::parse(n).ok())
        .filter(|r| r.tag().is_some() && r.digest().is_none())
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn plan_docker(contents: &Contents) -> Result<Vec<Planned>, ArchiveError> {
    let entries: Vec<DockerEntry> = serde_json::from_slice(&contents.meta["manifest.json"])
        .map_err(|e| ArchiveError::Corrupt(format!("manifest.json: {e}")))?;
    let mut out = Vec::new();
    for e in entries {
        let missing = |p: &str| {
            ArchiveError::Corrupt(format!(
                "manifest.json names {p:?}, which is not in the archive"
            ))
        };
        let config = contents
            .get(Path::new(&e.config))
            .ok_or_else(|| missing(&e.config))?
            .clone();
        let config_bytes = contents.read_small(&config)?;
        let parsed: oci_spec::image::ImageConfiguration = serde_json::from_slice(&config_bytes)
            .map_err(|err| ArchiveError::Corrupt(format!("config {}: {err}", e.config)))?;
        let diff_ids = parsed.rootfs().diff_ids();
        if diff_ids.len() != e.layers.len() {
            return Err(ArchiveError::Corrupt(format!(
                "config {} lists {} diff_ids for {} layers",
                e.config,
                diff_ids.len(),
                e.layers.len()
            )));
        }
        let mut layers = Vec::new();
        let mut blobs = vec![config.clone()];
        for (path, diff_id) in e.layers.iter().zip(diff_ids) {
            let s = contents
                .get(Path::new(path))
                .ok_or_else(|| missing(path))?
                .clone();
            let mut head = [0u8; 4];
            let n = std::fs::File::open(&s.file)
                .and_then(|mut f| f.read(&mut head))
                .map_err(|err| ArchiveError::Io("staged layer".into(), err))?;
            let media_type = if head[..n].starts_with(&[0x1f, 0x8b]) {
                layout::OCI_LAYER_GZIP
            } else if head[..n].starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                layout::OCI_LAYER_ZSTD
            } else {
                layout::OCI_LAYER_TAR
            };
            verify_diff_id(&s, diff_id, path)?;
            layers.push(Descriptor::new(media_type, s.digest.clone(), s.size));
            blobs.push(s);
        }
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(layout::OCI_MANIFEST.to_string()),
            config: Descriptor::new(layout::OCI_CONFIG, config.digest.clone(), config.size),
            layers,
            annotations: Default::default(),
        };
        let mut names = Vec::new();
        for t in e.repo_tags.unwrap_or_default() {
            let r = Reference::parse(&t)
                .map_err(|err| ArchiveError::Corrupt(format!("manifest.json tag {t:?}: {err}")))?;
            names.push(r);
        }
        out.push(Planned {
            manifest: manifest.to_bytes(),
            media_type: layout::OCI_MANIFEST.to_string(),
            blobs,
            names,
        });
    }
    Ok(out)
}
