//! What a container takes from its image: the layer directories and the
//! config fields (`Env`, `Entrypoint`, `Cmd`, `WorkingDir`, `User`,
//! `StopSignal`, `Healthcheck`, `ExposedPorts`, `Volumes`) of the OCI /
//! Docker image config, found in the store or pulled when missing.

use std::path::{Path, PathBuf};

use super::request::ImageSource;
use super::EngineError;
use crate::image::reference::Reference;
use crate::image::store::{ImageStore, StoreError};
use crate::runtime::container::HealthConfig;
use crate::state::StateRoot;

/// What a container needs from its image.
#[derive(Debug, Clone, Default)]
pub struct ImageInfo {
    pub id: String,
    pub lowers: Vec<PathBuf>,
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub workdir: String,
    pub user: String,
    pub stop_signal: Option<String>,
    pub health: Option<HealthConfig>,
    /// The image's `ExposedPorts` keys (`80/tcp`), for `-P`.
    pub exposed_ports: Vec<String>,
    /// The image's `Volumes` keys (`/var/lib/db`): anonymous volumes.
    pub volumes: Vec<String>,
}

/// Resolves the image of a new container: a `--rootfs` directory, or an
/// image from the store, pulled when missing (Docker's `Unable to find
/// image '…' locally`, then the pull, on stderr).
pub fn resolve(root: &StateRoot, source: &ImageSource) -> Result<ImageInfo, EngineError> {
    match source {
        ImageSource::Rootfs(dir) => resolve_rootfs(dir),
        ImageSource::Image(name) => resolve_image(root, name),
    }
}

fn resolve_rootfs(dir: &Path) -> Result<ImageInfo, EngineError> {
    let path = dir.canonicalize().map_err(EngineError::io(format!(
        "rootfs directory {}",
        dir.display()
    )))?;
    if !path.is_dir() {
        return Err(EngineError::Invalid(format!(
            "rootfs {} is not a directory",
            path.display()
        )));
    }
    Ok(ImageInfo {
        lowers: vec![path],
        cmd: vec!["sh".into()],
        ..Default::default()
    })
}

fn resolve_image(root: &StateRoot, name: &str) -> Result<ImageInfo, EngineError> {
    let store = ImageStore::open(root)?;
    let image = match store.resolve(name) {
        Ok(image) => image,
        Err(StoreError::NotFound(_)) => {
            let reference = Reference::parse(name).map_err(|e| EngineError::Reference {
                name: name.to_string(),
                message: e.to_string(),
            })?;
            // The error already says `pulling NAME: …`.
            crate::registry::pull_missing(root, &reference, None)?
        }
        Err(e) => return Err(e.into()),
    };
    let lowers = store.layer_link_dirs(&image)?;
    let raw = config_json(&store, &image.id, name)?;
    Ok(info_from_config(image.id.to_string(), lowers, &raw))
}

fn config_json(
    store: &ImageStore,
    id: &crate::image::Digest,
    name: &str,
) -> Result<serde_json::Value, EngineError> {
    serde_json::from_slice(&store.read_blob(id)?).map_err(|e| {
        EngineError::Invalid(format!(
            "the config of image {name} is not valid JSON ({e}); pull or build it again"
        ))
    })
}

/// The `VOLUME`s of the image `name` in the store (none when it is absent).
pub fn image_volumes(store: &ImageStore, name: &str) -> Result<Vec<String>, EngineError> {
    let image = match store.resolve(name) {
        Ok(image) => image,
        Err(StoreError::NotFound(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let raw = config_json(store, &image.id, name)?;
    Ok(raw["config"]["Volumes"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default())
}

/// The images that containers were created from (a removal keeps them).
pub fn images_in_use(store: &ImageStore) -> std::collections::HashSet<crate::image::Digest> {
    // Looking must not create ROOT/containers/.
    if !store.state_root().path().join("containers").is_dir() {
        return Default::default();
    }
    let Ok(containers) = crate::runtime::container::ContainerStore::open(store.state_root()) else {
        return Default::default();
    };
    containers
        .list()
        .into_iter()
        .filter_map(|(c, _)| crate::image::Digest::parse(&c.image_id).ok())
        .collect()
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
