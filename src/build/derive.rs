//! Each build step's result as an image: the parent image's config with the
//! step's edits, its layer (if any) appended to `rootfs.diff_ids` and the
//! manifest, and one history entry (`empty_layer: true` for steps that only
//! change the config), as Docker's classic builder records them
//! (<https://github.com/opencontainers/image-spec/blob/main/config.md>).
//! Intermediate images are stored untagged.

use serde_json::{json, Map, Value};

use crate::image::digest::Digest;
use crate::image::layout::{self, Descriptor, Manifest};
use crate::image::store::{Image, ImageStore, StoreError};
use crate::runtime::commit::oci_layer_type;

/// The config JSON of `parent` (a fresh one for `scratch`).
pub fn parent_config(store: &ImageStore, parent: Option<&Image>) -> Result<Value, StoreError> {
    let (arch, os) = layout::host_platform();
    let fresh = json!({
        "architecture": arch,
        "os": os,
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": []
    });
    let Some(p) = parent else {
        return Ok(fresh);
    };
    let v: Value =
        serde_json::from_slice(&store.read_blob(&p.id)?).map_err(|e| StoreError::Invalid {
            what: format!("config of image {}", p.id.short()),
            reason: e.to_string(),
        })?;
    Ok(if v.is_object() { v } else { fresh })
}

/// Docker's default `PATH` (`system.DefaultPathEnvUnix`), which both of its
/// builders add to a stage's config when the base image has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Appends `PATH=`[`DEFAULT_PATH`] to the config's `Env` when it has no
/// `PATH` (the classic builder's `setDefaultPath` at `FROM`, BuildKit's
/// the same), so every image a stage makes from such a base carries it.
pub fn ensure_path(config: &mut Value) {
    let env = &mut config["config"]["Env"];
    if !env.is_array() {
        *env = json!([]);
    }
    let list = env.as_array_mut().expect("an array");
    if !list
        .iter()
        .any(|e| e.as_str().is_some_and(|s| s.starts_with("PATH=")))
    {
        list.push(json!(format!("PATH={DEFAULT_PATH}")));
    }
}

/// Stores a new image: `parent` + `layer` (uncompressed tar: digest = diff_id),
/// with `edit` applied to the whole image configuration (its `config` object
/// exists when `edit` runs).
pub fn derive(
    store: &ImageStore,
    parent: Option<&Image>,
    layer: Option<(Digest, u64)>,
    created_by: &str,
    edit: impl FnOnce(&mut Value),
) -> Result<Image, StoreError> {
    let mut config = parent_config(store, parent)?;
    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    config["created"] = json!(created);
    if !config["config"].is_object() {
        config["config"] = Value::Object(Map::new());
    }
    ensure_path(&mut config);
    edit(&mut config);
    if !config["rootfs"]["diff_ids"].is_array() {
        config["rootfs"] = json!({"type": "layers", "diff_ids": []});
    }
    if let Some((diff_id, _)) = &layer {
        if let Some(ids) = config["rootfs"]["diff_ids"].as_array_mut() {
            ids.push(json!(diff_id.to_string()));
        }
    }
    let mut entry = json!({"created": created, "created_by": created_by});
    if layer.is_none() {
        entry["empty_layer"] = json!(true);
    }
    match config["history"].as_array_mut() {
        Some(h) => h.push(entry),
        None => config["history"] = json!([entry]),
    }
    let bytes = serde_json::to_vec(&config).expect("config serialises");
    let (config_digest, config_size) = store.put_blob(&bytes[..], None)?;

    let mut manifest = match parent {
        Some(p) => p.layout_manifest.clone(),
        None => Manifest {
            schema_version: 2,
            media_type: None,
            config: Descriptor::new(layout::OCI_CONFIG, config_digest.clone(), config_size),
            layers: Vec::new(),
            annotations: Default::default(),
        },
    };
    for l in &mut manifest.layers {
        l.media_type = oci_layer_type(&l.media_type).to_string();
    }
    manifest.schema_version = 2;
    manifest.media_type = Some(layout::OCI_MANIFEST.to_string());
    manifest.config = Descriptor::new(layout::OCI_CONFIG, config_digest.clone(), config_size);
    if let Some((diff_id, size)) = layer {
        manifest
            .layers
            .push(Descriptor::new(layout::OCI_LAYER_TAR, diff_id, size));
    }
    manifest.annotations.clear();
    let mbytes = manifest.to_bytes();
    store.with_lock(|l| l.put_manifest(&mbytes, layout::OCI_MANIFEST))?;
    store.resolve(&config_digest.to_string())
}

/// Ids of the images that are the parent of another image in `images`
/// (their history and layers are a proper prefix of the other's): the
/// builder's intermediate images, which `images` hides without `-a` as
/// Docker does.
pub fn parent_ids(images: &[Image]) -> std::collections::HashSet<Digest> {
    ancestor_ids(images, |_| true)
}

/// Ids of the images in `images` that are an ancestor (see [`parent_ids`])
/// of at least one image for which `descendant` holds. `image prune` keeps
/// the ancestors of the images that stay, as Docker keeps a tagged image's
/// intermediate images (they are not dangling: they have a child), so a
/// prune does not throw away the build cache of images still there.
pub fn ancestor_ids(
    images: &[Image],
    descendant: impl Fn(&Image) -> bool,
) -> std::collections::HashSet<Digest> {
    let facts: Vec<(Vec<Value>, Vec<String>)> = images
        .iter()
        .map(|i| {
            let h = i
                .config
                .history()
                .as_ref()
                .map(|h| {
                    h.iter()
                        .filter_map(|e| serde_json::to_value(e).ok())
                        .collect()
                })
                .unwrap_or_default();
            (h, i.config.rootfs().diff_ids().clone())
        })
        .collect();
    let mut out = std::collections::HashSet::new();
    for (a, (ha, la)) in images.iter().zip(&facts) {
        if ha.is_empty() {
            continue;
        }
        let is_ancestor = images.iter().zip(&facts).any(|(b, (hb, lb))| {
            hb.len() > ha.len() && hb.starts_with(ha) && lb.starts_with(la) && descendant(b)
        });
        if is_ancestor {
            out.insert(a.id.clone());
        }
    }
    out
}
