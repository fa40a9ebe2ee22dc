//! Service names where Docker takes container names: inside a project
//! directory, `berth logs web`, `berth exec web sh` and `berth stop web api`
//! address the project's `web` (and `api`) containers, as `docker compose
//! logs web` would, without the `compose` word.
//!
//! Docker's meaning always wins: a name that is a container's name or ID
//! (or a unique ID prefix) means that container, exactly as `docker stop X`
//! does. Only a name that is no container is looked up as a service of the
//! project found the way `berth up` finds it (berth.toml here or above,
//! `BERTH_PROJECT_NAME`); it then means that service's containers, named
//! `PROJECT-SERVICE-N` (all replicas, or replica 1 for the verbs that take a
//! single container). A name that is neither is passed through unchanged so
//! the verb reports "no such container" as before.
//!
//! The project is loaded at most once per command and only when a name is
//! not a container, so plain Docker-style use pays nothing for this.

use std::cell::OnceCell;

use anyhow::bail;

use super::project::ProjectArgs;
use super::Context;
use crate::project::actual::{self, ProjectContainer};
use crate::project::LoadError;
use crate::runtime::container::{ContainerError, ContainerStore};

/// What a command-line name turned out to mean.
#[derive(Debug)]
pub enum Target {
    /// A container name or ID (or something unknown, left for the verb to
    /// report): passed to the verb unchanged.
    Container(String),
    /// A service of the project in this directory, with its containers
    /// (replica order).
    Service {
        project: String,
        service: String,
        containers: Vec<ProjectContainer>,
    },
}

/// The project found from the current directory, as far as names go.
#[derive(Debug)]
struct ProjectScope {
    name: String,
    declared: Vec<String>,
    containers: Vec<ProjectContainer>,
}

/// Resolves names against the container store, then the project.
pub struct Resolver {
    store: ContainerStore,
    project: OnceCell<Option<ProjectScope>>,
}

impl Resolver {
    pub fn new(ctx: &Context) -> anyhow::Result<Self> {
        Ok(Self {
            store: ContainerStore::open(&ctx.root()?)?,
            project: OnceCell::new(),
        })
    }

    /// What `name` means (see the module header for the order).
    pub fn resolve(&self, name: &str) -> anyhow::Result<Target> {
        match self.store.resolve(name) {
            Ok(_) => return Ok(Target::Container(name.to_string())),
            // An ambiguous ID prefix is the verb's error to report.
            Err(ContainerError::NotFound(_)) => {}
            Err(_) => return Ok(Target::Container(name.to_string())),
        }
        let Some(scope) = self.project() else {
            return Ok(Target::Container(name.to_string()));
        };
        let containers: Vec<ProjectContainer> = scope
            .containers
            .iter()
            .filter(|c| c.service() == name)
            .cloned()
            .collect();
        if containers.is_empty() {
            if scope.declared.iter().any(|s| s == name) {
                bail!(
                    "service {name} of project {} has no containers: create them with `berth up {name}`",
                    scope.name
                );
            }
            return Ok(Target::Container(name.to_string()));
        }
        Ok(Target::Service {
            project: scope.name.clone(),
            service: name.to_string(),
            containers,
        })
    }

    /// Names for a verb that takes many containers: every container of a
    /// named service, in replica order; other names unchanged.
    pub fn expand_all(&self, names: &[String]) -> anyhow::Result<Vec<String>> {
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            match self.resolve(name)? {
                Target::Container(n) => out.push(n),
                Target::Service { containers, .. } => {
                    out.extend(containers.into_iter().map(|c| c.config.name))
                }
            }
        }
        Ok(out)
    }

    /// The name for a verb that takes one container: a service means its
    /// first replica (as `docker compose exec` does without `--index`).
    pub fn expand_one(&self, name: &str) -> anyhow::Result<String> {
        Ok(match self.resolve(name)? {
            Target::Container(n) => n,
            Target::Service { containers, .. } => containers
                .into_iter()
                .next()
                .map(|c| c.config.name)
                .unwrap_or_else(|| name.to_string()),
        })
    }

    fn project(&self) -> Option<&ProjectScope> {
        self.project.get_or_init(|| self.load_project()).as_ref()
    }

    fn load_project(&self) -> Option<ProjectScope> {
        let loaded = match ProjectArgs::default().load() {
            Ok(l) => l,
            Err(e) => {
                // No manifest here: names are only container names. A broken
                // one is worth a word, since the user may have meant a service.
                if !matches!(e.downcast_ref::<LoadError>(), Some(LoadError::NotFound(_))) {
                    eprintln!("warning: not looking up service names: {e:#}");
                }
                return None;
            }
        };
        Some(ProjectScope {
            containers: actual::project_containers(&self.store, &loaded.project_name),
            declared: loaded.manifest.services.keys().cloned().collect(),
            name: loaded.project_name,
        })
    }
}

/// Shorthand: expands names for a many-container verb.
pub fn expand_all(ctx: &Context, names: &[String]) -> anyhow::Result<Vec<String>> {
    Resolver::new(ctx)?.expand_all(names)
}

/// Shorthand: expands a name for a one-container verb.
pub fn expand_one(ctx: &Context, name: &str) -> anyhow::Result<String> {
    Resolver::new(ctx)?.expand_one(name)
}
