//! Where `run`/`create` get an image from: the name as the user typed it,
//! resolved to the layer directories and config a container needs.

use std::path::PathBuf;

use anyhow::Context as _;

use super::container::ImageInfo;
use super::{Context, Exit};
use crate::image::reference::Reference;
use crate::image::store::{ImageStore, StoreError};
use crate::runtime::container::HealthConfig;

/// Docker's display form of a reference: `busybox` is `busybox:latest`.
pub fn display_reference(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if name.contains('@') || last.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

/// Resolves `name` for a new container: from the store, or pulled when
/// missing (Docker's `Unable to find image '…' locally`, then the pull).
pub fn resolve_for_container(ctx: &Context, name: &str) -> anyhow::Result<ImageInfo> {
    let root = ctx.root()?;
    let store = ImageStore::open(&root).context("opening the image store")?;
    let image = match store.resolve(name) {
        Ok(image) => image,
        Err(StoreError::NotFound(_)) => {
            let reference = Reference::parse(name).map_err(|e| Exit {
                code: 125,
                message: format!("invalid reference format {name:?}: {e}"),
            })?;
            // The error already says `pulling NAME: …`.
            crate::registry::pull_missing(&root, &reference, None).map_err(|e| Exit {
                code: 125,
                message: e.to_string(),
            })?
        }
        Err(e) => return Err(e).context(format!("looking up image {name}")),
    };
    let lowers = store
        .layer_link_dirs(&image)
        .with_context(|| format!("unpacking the layers of {name}"))?;
    let raw: serde_json::Value = serde_json::from_slice(&store.read_blob(&image.id)?)
        .with_context(|| format!("reading the config of {name}"))?;
    Ok(info_from_config(image.id.to_string(), lowers, &raw))
}

/// The `VOLUME`s of the image `name` in the store (none when it is absent).
pub fn image_volumes(store: &ImageStore, name: &str) -> anyhow::Result<Vec<String>> {
    let image = match store.resolve(name) {
        Ok(image) => image,
        Err(StoreError::NotFound(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e).context(format!("looking up image {name}")),
    };
    let raw: serde_json::Value = serde_json::from_slice(&store.read_blob(&image.id)?)
        .with_context(|| format!("reading the config of {name}"))?;
    Ok(raw["config"]["Volumes"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default())
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// What a container takes from an image config (the `config` object of the
/// OCI/Docker image config JSON, including Docker's `Healthcheck`).
pub fn info_from_config(id: String, lowers: Vec<PathBuf>, raw: &serde_json::Value) -> ImageInfo {
    let c = &raw["config"];
    let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    let health = c.get("Healthcheck").and_then(|h| {
        let test = strings(&h["Test"]);
        if test.is_empty() || test[0] == "NONE" {
            return None;
        }
        Some(HealthConfig {
            test,
            interval_ns: h["Interval"].as_u64().unwrap_or(0),
            timeout_ns: h["Timeout"].as_u64().unwrap_or(0),
            start_period_ns: h["StartPeriod"].as_u64().unwrap_or(0),
            start_interval_ns: h["StartInterval"].as_u64().unwrap_or(0),
            retries: h["Retries"].as_u64().unwrap_or(0) as u32,
        })
    });
    ImageInfo {
        id,
        lowers,
        env: strings(&c["Env"]),
        entrypoint: strings(&c["Entrypoint"]),
        cmd: strings(&c["Cmd"]),
        workdir: text("WorkingDir"),
        user: text("User"),
        stop_signal: c["StopSignal"].as_str().map(String::from),
        health,
        exposed_ports: c["ExposedPorts"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default(),
        volumes: c["Volumes"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default(),
    }
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

    #[test]
    fn image_config_fields() {
        let raw = serde_json::json!({"config": {
            "Env": ["PATH=/bin", "A=1"], "Entrypoint": ["/init"], "Cmd": ["serve", "-v"],
            "WorkingDir": "/srv", "User": "www-data", "StopSignal": "SIGQUIT",
            "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
            "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 1000000000, "Retries": 2}
        }});
        let i = info_from_config("sha256:x".into(), vec![], &raw);
        assert_eq!(i.env, ["PATH=/bin", "A=1"]);
        assert_eq!(i.entrypoint, ["/init"]);
        assert_eq!(i.cmd, ["serve", "-v"]);
        assert_eq!(i.workdir, "/srv");
        assert_eq!(i.user, "www-data");
        assert_eq!(i.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(i.exposed_ports, ["53/udp", "80/tcp"]);
        let h = i.health.unwrap();
        assert_eq!(h.test, ["CMD-SHELL", "true"]);
        assert_eq!((h.interval_ns, h.retries), (1_000_000_000, 2));
        let none = serde_json::json!({"config": {"Healthcheck": {"Test": ["NONE"]}}});
        assert!(info_from_config(String::new(), vec![], &none)
            .health
            .is_none());
        let empty = info_from_config(String::new(), vec![], &serde_json::json!({}));
        assert!(empty.cmd.is_empty() && empty.user.is_empty());
    }
}
