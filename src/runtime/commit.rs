//! `commit`: a container's changes as a new image.
//!
//! The new image is the container's image plus one layer: the overlay upper
//! directory written as an OCI layer ([`super::diff`], uncompressed, so its
//! digest is also its diff_id). The config is the base image's config with
//! the layer's diff_id appended to `rootfs.diff_ids`, a history entry, a new
//! `created` time, and the `-c` Dockerfile instructions applied (as `import
//! --change` does). The manifest lists the base layers then the new one
//! (<https://github.com/opencontainers/image-spec/blob/main/manifest.md>).

use serde_json::{json, Map, Value};

use super::container::ContainerConfig;
use super::diff::{self, DiffError};
use crate::image::changes::{self, ChangeError};
use crate::image::digest::Digest;
use crate::image::layout::{self, Descriptor};
use crate::image::reference::Reference;
use crate::image::store::{Image, ImageStore, StoreError};

/// Errors committing a container.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("container {0} was made from a root filesystem directory, not an image: nothing to commit onto")]
    NoImage(String),
    #[error(transparent)]
    Diff(#[from] DiffError),
    #[error(transparent)]
    Change(#[from] ChangeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the config of image {0} is not valid JSON: {1}")]
    Config(String, serde_json::Error),
}

/// What to record besides the layer.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    pub changes: Vec<String>,
    pub message: Option<String>,
    pub author: Option<String>,
}

/// Commits the upper dir of `container` (whose files are under `dir`) as a
/// new image, tagged `reference` when given.
pub fn commit(
    store: &ImageStore,
    container: &ContainerConfig,
    upper: &std::path::Path,
    reference: Option<&Reference>,
    opts: &CommitOptions,
) -> Result<Image, CommitError> {
    let _lease = store.lease()?;
    let base_id = Digest::parse(&container.image_id)
        .map_err(|_| CommitError::NoImage(container.name.clone()))?;
    let base = store.resolve(&base_id.to_string())?;
    let mut config: Value = serde_json::from_slice(&store.read_blob(&base.id)?)
        .map_err(|e| CommitError::Config(base.id.short().to_string(), e))?;

    let mut blob = store.blob_writer()?;
    diff::write_layer(upper, &mut blob)?;
    let (diff_id, size) = blob.commit(None)?;

    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    if !config.is_object() {
        config = json!({});
    }
    config["created"] = json!(created);
    if !config["config"].is_object() {
        config["config"] = Value::Object(Map::new());
    }
    if let Some(map) = config["config"].as_object_mut() {
        for c in &opts.changes {
            changes::apply(map, c)?;
        }
    }
    if !config["rootfs"]["diff_ids"].is_array() {
        config["rootfs"] = json!({"type": "layers", "diff_ids": []});
    }
    if let Some(ids) = config["rootfs"]["diff_ids"].as_array_mut() {
        ids.push(json!(diff_id.to_string()));
    }
    let mut entry = json!({
        "created": created,
        "created_by": shell_words::join(&container.args),
    });
    if let Some(m) = &opts.message {
        entry["comment"] = json!(m);
    }
    if let Some(a) = &opts.author {
        entry["author"] = json!(a);
        config["author"] = json!(a);
    }
    match config["history"].as_array_mut() {
        Some(h) => h.push(entry),
        None => config["history"] = json!([entry]),
    }
    let config_bytes = serde_json::to_vec(&config).expect("config serialises");
    let (config_digest, config_size) = store.put_blob(&config_bytes[..], None)?;

    let mut manifest = base.layout_manifest.clone();
    for l in &mut manifest.layers {
        l.media_type = oci_layer_type(&l.media_type).to_string();
    }
    manifest.schema_version = 2;
    manifest.media_type = Some(layout::OCI_MANIFEST.to_string());
    manifest.config = Descriptor::new(layout::OCI_CONFIG, config_digest.clone(), config_size);
    manifest
        .layers
        .push(Descriptor::new(layout::OCI_LAYER_TAR, diff_id, size));
    manifest.annotations.clear();
    let bytes = manifest.to_bytes();
    store.with_lock(|l| {
        let md = l.put_manifest(&bytes, layout::OCI_MANIFEST)?;
        if let Some(r) = reference {
            l.tag(r, &md)?;
        }
        Ok(md)
    })?;
    Ok(store.resolve(&config_digest.to_string())?)
}

/// The OCI media type of a layer given as Docker's (an OCI type is kept).
pub fn oci_layer_type(media_type: &str) -> &str {
    match media_type {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        }
        "application/vnd.docker.image.rootfs.diff.tar" => "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_media_types() {
        assert_eq!(
            oci_layer_type("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        assert_eq!(
            oci_layer_type("application/vnd.oci.image.layer.v1.tar+zstd"),
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
    }
}
