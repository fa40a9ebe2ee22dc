//! Where `run`/`create` get an image from: the name as the user typed it,
//! resolved to the layer directories and config a container needs.

use anyhow::Context as _;

use super::container::ImageInfo;
use super::{Context, Exit};
use crate::image::{Image, ImageStore, Reference, StoreError};

/// Docker's display form of a reference: `busybox` is `busybox:latest`.
pub fn display_reference(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if name.contains('@') || last.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

/// Resolves `name` for a new container: the image from the store (pulled
/// through the registry client when missing), its layers unpacked as the
/// overlay's lower dirs (the short `layers/l/` links), and the defaults its
/// config gives a container (env, entrypoint, cmd, workdir, user, stop signal).
pub fn resolve_for_container(ctx: &Context, name: &str) -> anyhow::Result<ImageInfo> {
    let root = ctx.root()?;
    let store = ImageStore::open(&root).context("opening the image store")?;
    let image = match store.resolve(name) {
        Ok(image) => image,
        Err(StoreError::NotFound(_)) => {
            let reference = Reference::parse(name)
                .map_err(|e| anyhow::anyhow!("invalid reference format {name:?}: {e}"))?;
            crate::registry::pull_missing(&root, &reference, None).map_err(|e| Exit {
                code: 125,
                message: format!(
                    "pulling {}: {}",
                    display_reference(name),
                    crate::image::one_line(&e.to_string())
                ),
            })?
        }
        Err(e) => return Err(e).with_context(|| format!("looking up image {name}")),
    };
    image_info(&store, &image)
}

/// What a container takes from a stored image.
pub fn image_info(store: &ImageStore, image: &Image) -> anyhow::Result<ImageInfo> {
    let lowers = store
        .layer_link_dirs(image)
        .with_context(|| format!("unpacking the layers of image {}", image.id.short()))?;
    if lowers.is_empty() {
        anyhow::bail!("image {} has no layers", image.id.short());
    }
    let cfg = image.config.config().clone().unwrap_or_default();
    Ok(ImageInfo {
        id: image.id.to_string(),
        lowers,
        env: cfg.env().clone().unwrap_or_default(),
        entrypoint: cfg.entrypoint().clone().unwrap_or_default(),
        cmd: cfg.cmd().clone().unwrap_or_default(),
        workdir: cfg.working_dir().clone().unwrap_or_default(),
        user: cfg.user().clone().unwrap_or_default(),
        stop_signal: cfg.stop_signal().clone(),
        health: None,
        exposed_ports: cfg.exposed_ports().clone().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert_eq!(display_reference("busybox"), "busybox:latest");
        assert_eq!(display_reference("busybox:1.36"), "busybox:1.36");
        assert_eq!(
            display_reference("localhost:5000/app"),
            "localhost:5000/app:latest"
        );
        assert_eq!(display_reference("a@sha256:00"), "a@sha256:00");
    }
}
