//! The canonical manifest that `berth config` prints: the project after
//! interpolation, merging and defaults, every value in its long form.
//!
//! Like `docker compose config`, it is itself a valid manifest: `name` is
//! the resolved project name, only active services are listed, `env_file`s
//! are folded into `environment`, bare `environment`/`build.args` entries
//! take their value from the environment (or are dropped when unset),
//! relative host paths are absolute, a built service names its image
//! (`PROJECT-SERVICE`), every service lists its networks, and Compose's
//! defaults (restart `no`, stop signal `SIGTERM`, grace `10s`, one replica,
//! the health check timings) are written out. Loading it gives the same
//! container specs, and so the same config hashes.

use std::collections::BTreeMap;

use super::error::LoadError;
use super::load::Loaded;
use super::manifest::{
    Build, BuildTable, HealthTest, Healthcheck, KeyValues, Manifest, MountEntry, MountType,
    ServiceNetwork, ServiceNetworks, SignalName, StringList,
};
use super::model::{self, ImageDigests, Project};

/// The canonical form of a loaded manifest under the given profiles.
pub fn canonical_manifest(loaded: &Loaded, profiles: &[String]) -> Result<Manifest, LoadError> {
    // Resolving checks everything (env files, profiles) and gives the values.
    let project: Project = model::resolve(loaded, profiles, &ImageDigests::new())?;
    let m = &loaded.manifest;
    let mut out = Manifest {
        name: Some(project.name.clone()),
        services: BTreeMap::new(),
        volumes: m
            .volumes
            .iter()
            .filter(|(k, _)| project.volumes.contains_key(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        networks: m
            .networks
            .iter()
            .filter(|(k, _)| project.networks.contains_key(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    for (name, resolved) in &project.services {
        let mut svc = m.services[name].clone();
        let spec = &resolved.spec;
        svc.image = Some(spec.image.clone());
        svc.build = spec.build.as_ref().map(|b| {
            Build(BuildTable {
                context: b.context.display().to_string(),
                dockerfile: Some(b.dockerfile.clone()),
                args: KeyValues(
                    b.args
                        .iter()
                        .map(|(k, v)| (k.clone(), Some(v.clone())))
                        .collect(),
                ),
                target: b.target.clone(),
            })
        });
        svc.environment = KeyValues(
            spec.environment
                .iter()
                .map(|(k, v)| (k.clone(), Some(v.clone())))
                .collect(),
        );
        svc.env_file = StringList::default();
        for (entry, mount) in svc.volumes.iter_mut().zip(&spec.mounts) {
            if entry.0.kind == MountType::Bind {
                *entry = MountEntry(super::manifest::Mount {
                    source: mount.source.clone(),
                    ..entry.0.clone()
                });
            }
        }
        let nets = svc.networks.take().unwrap_or_else(|| {
            ServiceNetworks(BTreeMap::from([(
                "default".to_string(),
                ServiceNetwork::default(),
            )]))
        });
        svc.networks = Some(nets);
        svc.depends_on
            .0
            .retain(|d, _| resolved.depends_on.contains_key(d));
        svc.healthcheck = spec.healthcheck.as_ref().map(|h| Healthcheck {
            test: match &h.test {
                Some(t) if t.as_slice() == ["NONE"] => None,
                t => t.clone().map(HealthTest),
            },
            interval: Some(h.interval),
            timeout: Some(h.timeout),
            retries: Some(h.retries),
            start_period: Some(h.start_period),
            start_interval: Some(h.start_interval),
            disable: h.test.as_ref().is_some_and(|t| t.as_slice() == ["NONE"]),
        });
        svc.restart = Some(spec.restart);
        svc.stop_signal = Some(SignalName(spec.stop_signal.clone()));
        svc.stop_grace_period = Some(spec.stop_grace_period);
        svc.init = Some(spec.init);
        svc.replicas = Some(resolved.containers.len() as u32);
        if let Some(develop) = &mut svc.develop {
            for (rule, spec) in develop.watch.iter_mut().zip(&resolved.watch) {
                rule.path = spec.path.display().to_string();
            }
        }
        out.services.insert(name.clone(), svc);
    }
    Ok(out)
}

/// A manifest as TOML text, `$` written `$$` so it reads back unchanged.
pub fn to_toml(m: &Manifest) -> Result<String, toml::ser::Error> {
    let mut value = toml::Value::try_from(m)?;
    escape_toml(&mut value);
    toml::to_string(&value)
}

/// A manifest as JSON, `$` written `$$` as in the TOML form.
pub fn to_json(m: &Manifest) -> serde_json::Value {
    let mut value = serde_json::to_value(m).expect("a manifest serialises");
    escape_json(&mut value);
    value
}

fn escape_toml(v: &mut toml::Value) {
    match v {
        toml::Value::String(s) => *s = s.replace('$', "$$"),
        toml::Value::Array(items) => items.iter_mut().for_each(escape_toml),
        toml::Value::Table(t) => t.iter_mut().for_each(|(_, v)| escape_toml(v)),
        _ => {}
    }
}

fn escape_json(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => *s = s.replace('$', "$$"),
        serde_json::Value::Array(items) => items.iter_mut().for_each(escape_json),
        serde_json::Value::Object(o) => o.values_mut().for_each(escape_json),
        _ => {}
    }
}
