//! `import`: a root filesystem tarball becomes a one-layer image, as
//! `docker import` does (<https://docs.docker.com/reference/cli/docker/image/import/>).
//!
//! The tarball (plain, gzip or zstd) is decompressed and stored as an
//! uncompressed OCI layer (so its digest is its diff_id, as Docker keeps
//! layers locally); it is parsed as tar while it streams, so input that is
//! not a tar archive, or is truncated, fails before anything is stored.
//! The config gets this host's platform, the `--change` instructions and a
//! history entry; the manifest is OCI.

use std::io::{Read, Write};

use serde_json::{json, Map, Value};

use super::changes::{self, ChangeError};
use super::digest::Digest;
use super::layout::{self, Descriptor, Manifest};
use super::reference::Reference;
use super::store::{Image, ImageStore, StoreError};

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Change(#[from] ChangeError),
    #[error("{0} is not a tar archive: {1}")]
    NotTar(String, String),
    #[error("reading {0}: {1}")]
    Read(String, std::io::Error),
    #[error("storing the layer: {0}")]
    Write(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What to put in the imported image's config.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// `--change` instructions.
    pub changes: Vec<String>,
    /// `-m`: the history comment.
    pub message: Option<String>,
    /// Where the tarball came from (`-` for stdin), for the history entry.
    pub source: String,
}

/// Copies everything read into a writer as well, keeping the first write
/// error (the reader of a tee sees any error as a bad archive).
struct Tee<'a, R, W> {
    inner: R,
    copy: W,
    failed: &'a std::cell::RefCell<Option<std::io::Error>>,
}

impl<R: Read, W: Write> Read for Tee<'_, R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Err(e) = self.copy.write_all(&buf[..n]) {
            let again = std::io::Error::new(e.kind(), e.to_string());
            self.failed.borrow_mut().get_or_insert(e);
            return Err(again);
        }
        Ok(n)
    }
}

/// Imports the tarball read from `input`, tagging it `reference` if given.
pub fn import(
    store: &ImageStore,
    input: impl Read,
    reference: Option<&Reference>,
    opts: &ImportOptions,
) -> Result<Image, ImportError> {
    let _lease = store.lease()?;
    let mut config_map = Map::new();
    for c in &opts.changes {
        changes::apply(&mut config_map, c)?;
    }
    let staging = store.state_root().tmp_dir();
    let failed = std::cell::RefCell::new(None);
    // Said as what it is (e.g. the disk is full), not as a bad archive.
    let not_tar = |e: &std::io::Error| match failed.borrow_mut().take() {
        Some(w) => ImportError::Write(crate::state::describe_io(&w, &staging)),
        None => ImportError::NotTar(opts.source.clone(), super::one_line(&e.to_string())),
    };
    let plain =
        super::layer::decompress(input).map_err(|e| ImportError::Read(opts.source.clone(), e))?;
    let mut blob = store.blob_writer()?;
    let entries = {
        let tee = Tee {
            inner: plain,
            copy: &mut blob,
            failed: &failed,
        };
        let mut archive = tar::Archive::new(tee);
        let mut n = 0u64;
        for entry in archive.entries().map_err(|e| not_tar(&e))? {
            let mut entry = entry.map_err(|e| not_tar(&e))?;
            entry.path().map_err(|e| not_tar(&e))?;
            std::io::copy(&mut entry, &mut std::io::sink()).map_err(|e| not_tar(&e))?;
            n += 1;
        }
        let mut rest = archive.into_inner();
        std::io::copy(&mut rest, &mut std::io::sink()).map_err(|e| not_tar(&e))?;
        n
    };
    if entries == 0 {
        return Err(ImportError::NotTar(
            opts.source.clone(),
            "it holds no files".into(),
        ));
    }
    let (diff_id, size) = blob.commit(None)?;
    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let (arch, os) = layout::host_platform();
    let comment = opts
        .message
        .clone()
        .unwrap_or_else(|| format!("Imported from {}", opts.source));
    let mut config = json!({
        "architecture": arch,
        "os": os,
        "created": created,
        "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
        "history": [{"created": created, "created_by": "berth import", "comment": comment}],
    });
    if !config_map.is_empty() {
        config["config"] = Value::Object(config_map);
    }
    let config_bytes = serde_json::to_vec(&config).expect("config serialises");
    let (config_digest, config_size) = store.put_blob(&config_bytes[..], None)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(layout::OCI_MANIFEST.to_string()),
        config: Descriptor::new(layout::OCI_CONFIG, config_digest, config_size),
        layers: vec![Descriptor::new(layout::OCI_LAYER_TAR, diff_id, size)],
        annotations: Default::default(),
    };
    let bytes = manifest.to_bytes();
    let md: Digest = store.with_lock(|l| {
        let md = l.put_manifest(&bytes, layout::OCI_MANIFEST)?;
        if let Some(r) = reference {
            l.tag(r, &md)?;
        }
        Ok(md)
    })?;
    let image = match reference {
        Some(r) => store.resolve(&r.to_string())?,
        None => store.resolve(&manifest.config.digest.to_string())?,
    };
    debug_assert_eq!(image.manifest_digest, md);
    Ok(image)
}
