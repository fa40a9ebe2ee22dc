//! The reconciler's brain: a pure function from (desired project, actual
//! state) to a [`Plan`].
//!
//! The actual state is plain data the executor reads from the runtime:
//! containers with berth's labels (`berth.project`, `berth.service`,
//! `berth.replica`, `berth.config-hash`), the spec each was created from, and
//! whether it runs; the project's networks and volumes. For each replica of
//! each service the plan says create (missing), recreate (config hash
//! differs, with the fields that changed; or `force_recreate`), start
//! (exists with the same hash but stopped), restart (a dependency declared
//! with `restart = true` is being created or recreated), or unchanged.
//! Replicas beyond `replicas` are removed; containers of services no
//! longer in the manifest are orphans, removed only with `remove_orphans`
//! and otherwise named in a warning. Services come in dependency order
//! (petgraph's topological sort) and in **stages**: the services of one
//! stage depend only on earlier stages, so the executor may run a stage's
//! services in parallel. Networks and volumes to create come first.
//!
//! [`render`] prints a plan like a diff, one line per container:
//! `+ db-1 create`, `~ web-1 recreate: environment.GREETING "hi" -> "hello"`,
//! `= api-1 unchanged`, or `nothing to do` when the machine already matches.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use petgraph::graph::DiGraph;
use serde::{Deserialize, Serialize};

use super::manifest::Dependency;
use super::model::{
    ContainerSpec, Project, LABEL_CONFIG_HASH, LABEL_PROJECT, LABEL_REPLICA, LABEL_SERVICE,
    LABEL_VOLUME_TARGET,
};

/// What exists on the machine for a project, as the runtime reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ActualState {
    /// Containers labelled `berth.project` = the project's name.
    pub containers: Vec<ActualContainer>,
    /// Networks that exist, by actual name (the project's and any others
    /// the project names as external).
    pub networks: Vec<ActualResource>,
    /// Volumes that exist, by actual name.
    pub volumes: Vec<ActualResource>,
}

/// A container as it exists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActualContainer {
    pub id: String,
    pub name: String,
    /// All its labels; berth's own say which service and replica it is and
    /// which config hash it was created from.
    pub labels: BTreeMap<String, String>,
    /// The spec it was created from, as recorded then (for field diffs).
    pub spec: Option<ContainerSpec>,
    pub status: ContainerStatus,
}

/// Whether a container runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerStatus {
    /// Created, never started.
    Created,
    Running,
    /// Exited, with its exit code when known.
    Exited(Option<i32>),
    /// Its init runs but its supervisor died: nobody logs, checks its
    /// health or restarts it.
    Unsupervised,
    /// Its state record cannot be read (whatever runs in its cgroup keeps
    /// its ports).
    Corrupt,
}

/// A network or volume that exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActualResource {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl ActualContainer {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }
    fn replica(&self) -> Option<u32> {
        self.label(LABEL_REPLICA).and_then(|r| r.parse().ok())
    }
    fn running(&self) -> bool {
        matches!(
            self.status,
            ContainerStatus::Running | ContainerStatus::Unsupervised | ContainerStatus::Corrupt
        )
    }
}

/// Options of `up` that shape the plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlanOptions {
    /// Only these services (and, unless `no_deps`, what they depend on);
    /// empty means all.
    pub services: Vec<String>,
    pub no_deps: bool,
    pub force_recreate: bool,
    pub remove_orphans: bool,
}

/// Why a plan cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("no such service {name:?} in project {project}{hint}")]
    UnknownService {
        name: String,
        project: String,
        hint: String,
    },
    #[error("external {kind} {name:?} not found: create it first (`berth {kind} create {name}`)")]
    MissingExternal { kind: &'static str, name: String },
}

/// The plan for one network or volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourcePlan {
    /// The manifest key.
    pub key: String,
    /// The actual name.
    pub name: String,
    pub action: ResourceAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceAction {
    Create,
    /// Exists (or is external and exists): nothing to do.
    Exists,
    Remove,
}

/// One field that differs between the recorded and the desired spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    /// `environment.GREETING`, `ports[0].host_port`, `image_digest`.
    pub field: String,
    /// JSON text of the old value, `null` when absent.
    pub old: String,
    pub new: String,
}

/// Why a container is recreated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecreateReason {
    ConfigChanged,
    Forced,
    /// It runs without its supervisor ([`ContainerStatus::Unsupervised`]).
    SupervisorDied,
    /// Its state record is corrupt ([`ContainerStatus::Corrupt`]).
    CorruptRecord,
}

/// Why a container is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemoveReason {
    /// Its service is no longer in the manifest.
    Orphan,
    /// Its replica number is above the service's `replicas`, or it
    /// duplicates another container of the same replica.
    ScaledDown,
    /// `down`.
    Down,
}

/// What to do with one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    Create,
    /// Stop (if running) and remove `id`, then create anew.
    Recreate {
        id: String,
        reason: RecreateReason,
        changes: Vec<FieldChange>,
    },
    /// Exists with the desired config, not running.
    Start {
        id: String,
    },
    /// Unchanged, but a dependency declared with `restart = true` is
    /// being created or recreated.
    Restart {
        id: String,
        dependency: String,
    },
    Unchanged {
        id: String,
    },
    /// Stop (when `running`) and remove.
    Remove {
        id: String,
        running: bool,
        reason: RemoveReason,
    },
}

/// One container's step in the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerPlan {
    pub service: String,
    pub replica: Option<u32>,
    /// The container's name (`PROJECT-SERVICE-N`).
    pub name: String,
    #[serde(flatten)]
    pub action: Action,
}

impl ContainerPlan {
    /// `SERVICE-N` as the plan prints it.
    pub fn short_name(&self) -> String {
        match self.replica {
            Some(r) if !self.service.is_empty() => format!("{}-{r}", self.service),
            _ => self.name.clone(),
        }
    }
}

/// The plan of one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePlan {
    pub service: String,
    /// Dependencies inside the plan, with what to wait for.
    pub depends_on: BTreeMap<String, Dependency>,
    /// One entry per desired replica, in replica order, then removals of
    /// surplus replicas.
    pub containers: Vec<ContainerPlan>,
}

/// What `up` will do, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub project: String,
    /// First: networks, then volumes.
    pub networks: Vec<ResourcePlan>,
    pub volumes: Vec<ResourcePlan>,
    /// Services in dependency order.
    pub services: Vec<ServicePlan>,
    /// Ready sets: each stage's services depend only on earlier stages.
    pub stages: Vec<Vec<String>>,
    /// Orphan containers to remove (only with `remove_orphans`).
    pub orphans: Vec<ContainerPlan>,
    pub warnings: Vec<String>,
}

impl Plan {
    /// All container steps: orphans first, then services in order.
    pub fn containers(&self) -> impl Iterator<Item = &ContainerPlan> {
        self.orphans
            .iter()
            .chain(self.services.iter().flat_map(|s| s.containers.iter()))
    }

    /// True when applying the plan would change nothing.
    pub fn is_noop(&self) -> bool {
        self.networks
            .iter()
            .chain(&self.volumes)
            .all(|r| r.action == ResourceAction::Exists)
            && self
                .containers()
                .all(|c| matches!(c.action, Action::Unchanged { .. }))
    }

    /// The service plan by name.
    pub fn service(&self, name: &str) -> Option<&ServicePlan> {
        self.services.iter().find(|s| s.service == name)
    }
}

/// Services to plan: the selected ones and (unless `no_deps`) their
/// dependencies, transitively.
fn selected_services(project: &Project, opts: &PlanOptions) -> Result<BTreeSet<String>, PlanError> {
    if opts.services.is_empty() {
        return Ok(project.services.keys().cloned().collect());
    }
    let names: Vec<&str> = project.services.keys().map(String::as_str).collect();
    let mut out = BTreeSet::new();
    let mut todo: Vec<String> = Vec::new();
    for s in &opts.services {
        if !project.services.contains_key(s) {
            let hint = match super::de::did_you_mean(s, &names) {
                Some(m) => format!(", did you mean {m:?}?"),
                None => String::new(),
            };
            return Err(PlanError::UnknownService {
                name: s.clone(),
                project: project.name.clone(),
                hint,
            });
        }
        todo.push(s.clone());
    }
    while let Some(s) = todo.pop() {
        if out.insert(s.clone()) && !opts.no_deps {
            todo.extend(project.services[&s].depends_on.keys().cloned());
        }
    }
    Ok(out)
}

/// Orders services by dependency and groups them into ready sets.
fn order(project: &Project, selected: &BTreeSet<String>) -> (Vec<String>, Vec<Vec<String>>) {
    let mut graph = DiGraph::<&str, ()>::new();
    let mut index = BTreeMap::new();
    for s in selected {
        index.insert(s.as_str(), graph.add_node(s.as_str()));
    }
    for s in selected {
        for dep in project.services[s].depends_on.keys() {
            if let Some(&d) = index.get(dep.as_str()) {
                graph.add_edge(d, index[s.as_str()], ());
            }
        }
    }
    // Cycles are rejected when the manifest is loaded.
    let sorted = petgraph::algo::toposort(&graph, None).unwrap_or_default();
    let mut level: BTreeMap<&str, usize> = BTreeMap::new();
    for n in &sorted {
        let name = graph[*n];
        let l = graph
            .neighbors_directed(*n, petgraph::Direction::Incoming)
            .map(|d| level[graph[d]] + 1)
            .max()
            .unwrap_or(0);
        level.insert(name, l);
    }
    let mut stages: Vec<Vec<String>> = Vec::new();
    for (name, l) in &level {
        if stages.len() <= *l {
            stages.resize(*l + 1, Vec::new());
        }
        stages[*l].push(name.to_string());
    }
    let ordered = stages.iter().flatten().cloned().collect();
    (ordered, stages)
}

/// Field-by-field differences between two specs.
pub fn diff_specs(old: &ContainerSpec, new: &ContainerSpec) -> Vec<FieldChange> {
    let old = serde_json::to_value(old).expect("a spec serialises");
    let new = serde_json::to_value(new).expect("a spec serialises");
    let mut out = Vec::new();
    diff_values("", &old, &new, &mut out);
    out
}

fn diff_values(
    path: &str,
    old: &serde_json::Value,
    new: &serde_json::Value,
    out: &mut Vec<FieldChange>,
) {
    use serde_json::Value;
    if old == new {
        return;
    }
    let join = |k: &str| {
        let bare = k
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let k = if bare {
            k.to_string()
        } else {
            format!("{k:?}")
        };
        if path.is_empty() {
            k
        } else {
            format!("{path}.{k}")
        }
    };
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                diff_values(
                    &join(k),
                    a.get(k.as_str()).unwrap_or(&Value::Null),
                    b.get(k.as_str()).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (Value::Array(a), Value::Array(b)) if !a.is_empty() && !b.is_empty() => {
            for i in 0..a.len().max(b.len()) {
                diff_values(
                    &format!("{path}[{i}]"),
                    a.get(i).unwrap_or(&Value::Null),
                    b.get(i).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        _ => out.push(FieldChange {
            field: path.to_string(),
            old: old.to_string(),
            new: new.to_string(),
        }),
    }
}

/// Plans `up`: what to do to make `actual` match `project`.
pub fn plan(
    project: &Project,
    actual: &ActualState,
    opts: &PlanOptions,
) -> Result<Plan, PlanError> {
    let selected = selected_services(project, opts)?;
    let (ordered, stages) = order(project, &selected);
    let mut warnings = Vec::new();

    let resource =
        |kind: &'static str, key: &str, name: &str, external: bool, existing: &[ActualResource]| {
            let exists = existing.iter().any(|r| r.name == name);
            match (exists, external) {
                (true, _) => Ok(ResourcePlan {
                    key: key.to_string(),
                    name: name.to_string(),
                    action: ResourceAction::Exists,
                }),
                (false, true) => Err(PlanError::MissingExternal {
                    kind,
                    name: name.to_string(),
                }),
                (false, false) => Ok(ResourcePlan {
                    key: key.to_string(),
                    name: name.to_string(),
                    action: ResourceAction::Create,
                }),
            }
        };
    // Only the networks and volumes the planned services use.
    let used_networks: BTreeSet<&String> = selected
        .iter()
        .flat_map(|s| project.services[s].spec.networks.keys())
        .collect();
    let used_volumes: BTreeSet<&String> = selected
        .iter()
        .flat_map(|s| {
            project.services[s]
                .spec
                .mounts
                .iter()
                .filter_map(|m| m.source.as_ref())
        })
        .collect();
    let mut networks = Vec::new();
    for (key, net) in &project.networks {
        if used_networks.contains(&net.name) {
            networks.push(resource(
                "network",
                key,
                &net.name,
                net.external,
                &actual.networks,
            )?);
        }
    }
    let mut volumes = Vec::new();
    for (key, vol) in &project.volumes {
        if used_volumes.contains(&vol.name) {
            volumes.push(resource(
                "volume",
                key,
                &vol.name,
                vol.external,
                &actual.volumes,
            )?);
        }
    }

    // The project's containers, by service.
    let mut by_service: BTreeMap<&str, Vec<&ActualContainer>> = BTreeMap::new();
    for c in &actual.containers {
        if c.label(LABEL_PROJECT) != Some(project.name.as_str()) {
            continue;
        }
        by_service
            .entry(c.label(LABEL_SERVICE).unwrap_or(""))
            .or_default()
            .push(c);
    }

    let mut orphans = Vec::new();
    let mut orphan_names = Vec::new();
    for (service, containers) in &by_service {
        if project.services.contains_key(*service)
            || project.disabled_services.iter().any(|d| d == service)
        {
            continue;
        }
        for c in containers {
            if opts.remove_orphans {
                orphans.push(ContainerPlan {
                    service: service.to_string(),
                    replica: c.replica(),
                    name: c.name.clone(),
                    action: Action::Remove {
                        id: c.id.clone(),
                        running: c.running(),
                        reason: RemoveReason::Orphan,
                    },
                });
            } else {
                orphan_names.push(c.name.clone());
            }
        }
    }
    if !orphan_names.is_empty() {
        orphan_names.sort();
        warnings.push(format!(
            "found orphan containers ({}) for this project; if you removed or renamed their service, run with --remove-orphans to clean them up",
            orphan_names.join(", ")
        ));
    }

    let mut services: Vec<ServicePlan> = Vec::new();
    // Services whose containers are created or recreated, for `restart`.
    let mut changed: BTreeSet<String> = BTreeSet::new();
    for name in &ordered {
        let svc = &project.services[name];
        let existing = by_service.get(name.as_str()).cloned().unwrap_or_default();
        let mut containers = Vec::new();
        let mut used: BTreeSet<&str> = BTreeSet::new();
        let restart_because = svc
            .depends_on
            .iter()
            .find(|(d, dep)| dep.restart && changed.contains(*d))
            .map(|(d, _)| d.clone());
        for instance in &svc.containers {
            let current = existing
                .iter()
                .filter(|c| c.replica() == Some(instance.replica))
                .min_by_key(|c| (!c.running(), c.name != instance.name, c.id.clone()));
            let action = match current {
                None => Action::Create,
                Some(c) => {
                    used.insert(&c.id);
                    let old_hash = c.label(LABEL_CONFIG_HASH).unwrap_or("");
                    if old_hash != svc.config_hash {
                        let changes = match &c.spec {
                            Some(old) => diff_specs(old, &svc.spec),
                            None => Vec::new(),
                        };
                        let changes = if changes.is_empty() {
                            vec![FieldChange {
                                field: "config-hash".into(),
                                old: format!("{:?}", short_hash(old_hash)),
                                new: format!("{:?}", short_hash(&svc.config_hash)),
                            }]
                        } else {
                            changes
                        };
                        Action::Recreate {
                            id: c.id.clone(),
                            reason: RecreateReason::ConfigChanged,
                            changes,
                        }
                    } else if let Some(reason) = match c.status {
                        ContainerStatus::Unsupervised => Some(RecreateReason::SupervisorDied),
                        ContainerStatus::Corrupt => Some(RecreateReason::CorruptRecord),
                        _ => None,
                    } {
                        Action::Recreate {
                            id: c.id.clone(),
                            reason,
                            changes: Vec::new(),
                        }
                    } else if opts.force_recreate {
                        Action::Recreate {
                            id: c.id.clone(),
                            reason: RecreateReason::Forced,
                            changes: Vec::new(),
                        }
                    } else if !c.running() {
                        Action::Start { id: c.id.clone() }
                    } else if let Some(dep) = &restart_because {
                        Action::Restart {
                            id: c.id.clone(),
                            dependency: dep.clone(),
                        }
                    } else {
                        Action::Unchanged { id: c.id.clone() }
                    }
                }
            };
            if matches!(action, Action::Create | Action::Recreate { .. }) {
                changed.insert(name.clone());
            }
            containers.push(ContainerPlan {
                service: name.clone(),
                replica: Some(instance.replica),
                name: instance.name.clone(),
                action,
            });
        }
        let mut surplus: Vec<&&ActualContainer> = existing
            .iter()
            .filter(|c| !used.contains(c.id.as_str()))
            .collect();
        surplus.sort_by_key(|c| (c.replica(), c.name.clone()));
        for c in surplus {
            containers.push(ContainerPlan {
                service: name.clone(),
                replica: c.replica(),
                name: c.name.clone(),
                action: Action::Remove {
                    id: c.id.clone(),
                    running: c.running(),
                    reason: RemoveReason::ScaledDown,
                },
            });
        }
        services.push(ServicePlan {
            service: name.clone(),
            depends_on: svc
                .depends_on
                .iter()
                .filter(|(d, _)| selected.contains(*d))
                .map(|(d, c)| (d.clone(), c.clone()))
                .collect(),
            containers,
        });
    }

    Ok(Plan {
        project: project.name.clone(),
        networks,
        volumes,
        services,
        stages,
        orphans,
        warnings,
    })
}

/// Options of `down`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DownOptions {
    /// Also remove the project's named volumes (`-v`).
    pub volumes: bool,
    /// Also remove containers of services no longer in the manifest.
    pub remove_orphans: bool,
}

/// Plans `down`: every container of the project's services (dependents
/// before their dependencies), orphans with `remove_orphans`, then the
/// project's networks, and its volumes with `volumes`. External networks
/// and volumes are never removed.
pub fn plan_down(project: &Project, actual: &ActualState, opts: DownOptions) -> Plan {
    let all: BTreeSet<String> = project.services.keys().cloned().collect();
    let (mut ordered, mut stages) = order(project, &all);
    ordered.reverse();
    stages.reverse();
    let mut services = Vec::new();
    let mut orphans = Vec::new();
    let mut warnings = Vec::new();
    let ours: Vec<&ActualContainer> = actual
        .containers
        .iter()
        .filter(|c| c.label(LABEL_PROJECT) == Some(project.name.as_str()))
        .collect();
    let remove = |c: &ActualContainer, reason| ContainerPlan {
        service: c.label(LABEL_SERVICE).unwrap_or("").to_string(),
        replica: c.replica(),
        name: c.name.clone(),
        action: Action::Remove {
            id: c.id.clone(),
            running: c.running(),
            reason,
        },
    };
    for name in &ordered {
        let mut containers: Vec<ContainerPlan> = ours
            .iter()
            .filter(|c| c.label(LABEL_SERVICE) == Some(name.as_str()))
            .map(|c| remove(c, RemoveReason::Down))
            .collect();
        containers.sort_by_key(|c| (c.replica, c.name.clone()));
        services.push(ServicePlan {
            service: name.clone(),
            depends_on: BTreeMap::new(),
            containers,
        });
    }
    let mut orphan_names = Vec::new();
    for c in &ours {
        let service = c.label(LABEL_SERVICE).unwrap_or("");
        if project.services.contains_key(service) {
            continue;
        }
        if opts.remove_orphans {
            orphans.push(remove(c, RemoveReason::Orphan));
        } else if !project.disabled_services.iter().any(|d| d == service) {
            orphan_names.push(c.name.clone());
        }
    }
    if !orphan_names.is_empty() {
        orphan_names.sort();
        warnings.push(format!(
            "found orphan containers ({}) for this project; run with --remove-orphans to remove them too",
            orphan_names.join(", ")
        ));
    }
    let gone = |name: &str, existing: &[ActualResource]| existing.iter().any(|r| r.name == name);
    let networks = project
        .networks
        .iter()
        .filter(|(_, n)| !n.external && gone(&n.name, &actual.networks))
        .map(|(k, n)| ResourcePlan {
            key: k.clone(),
            name: n.name.clone(),
            action: ResourceAction::Remove,
        })
        .collect();
    let volumes = if opts.volumes {
        let named = project
            .volumes
            .iter()
            .filter(|(_, v)| !v.external && gone(&v.name, &actual.volumes))
            .map(|(k, v)| ResourcePlan {
                key: k.clone(),
                name: v.name.clone(),
                action: ResourceAction::Remove,
            });
        // The replicas' anonymous volumes (labelled with project and mount
        // point), also of services no longer in the manifest.
        let anonymous = actual
            .volumes
            .iter()
            .filter(|v| {
                v.labels.get(LABEL_PROJECT) == Some(&project.name)
                    && v.labels.contains_key(LABEL_VOLUME_TARGET)
            })
            .map(|v| ResourcePlan {
                key: v.name.clone(),
                name: v.name.clone(),
                action: ResourceAction::Remove,
            });
        named.chain(anonymous).collect()
    } else {
        Vec::new()
    };
    Plan {
        project: project.name.clone(),
        networks,
        volumes,
        services,
        stages,
        orphans,
        warnings,
    }
}

fn short_hash(h: &str) -> &str {
    &h[..h.len().min(12)]
}

/// The plan as text, like a diff.
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    for w in &plan.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    if plan.is_noop() {
        let n = plan.containers().count();
        let _ = writeln!(
            out,
            "nothing to do: project {} is up to date ({n} container{})",
            plan.project,
            if n == 1 { "" } else { "s" }
        );
        return out;
    }
    let resources = |out: &mut String, removals: bool| {
        for (kind, list) in [("network", &plan.networks), ("volume", &plan.volumes)] {
            for r in list {
                let line = match r.action {
                    ResourceAction::Create if !removals => format!("+ {kind} {} create", r.name),
                    ResourceAction::Exists if !removals => format!("= {kind} {} exists", r.name),
                    ResourceAction::Remove if removals => format!("- {kind} {} remove", r.name),
                    _ => continue,
                };
                let _ = writeln!(out, "{line}");
            }
        }
    };
    // Networks and volumes are made before containers, removed after them.
    resources(&mut out, false);
    for c in plan.containers() {
        let name = c.short_name();
        match &c.action {
            Action::Create => {
                let _ = writeln!(out, "+ {name} create");
            }
            Action::Recreate {
                reason: RecreateReason::Forced,
                ..
            } => {
                let _ = writeln!(out, "~ {name} recreate (forced)");
            }
            Action::Recreate {
                reason: RecreateReason::SupervisorDied,
                ..
            } => {
                let _ = writeln!(out, "~ {name} recreate (its supervisor died)");
            }
            Action::Recreate {
                reason: RecreateReason::CorruptRecord,
                ..
            } => {
                let _ = writeln!(out, "~ {name} recreate (its state record is corrupt)");
            }
            Action::Recreate { changes, .. } => match changes.as_slice() {
                [one] => {
                    let _ = writeln!(
                        out,
                        "~ {name} recreate: {} {} -> {}",
                        one.field,
                        shown(&one.old),
                        shown(&one.new)
                    );
                }
                many => {
                    let _ = writeln!(out, "~ {name} recreate:");
                    for ch in many {
                        let _ = writeln!(
                            out,
                            "    {} {} -> {}",
                            ch.field,
                            shown(&ch.old),
                            shown(&ch.new)
                        );
                    }
                }
            },
            Action::Start { .. } => {
                let _ = writeln!(out, "> {name} start");
            }
            Action::Restart { dependency, .. } => {
                let _ = writeln!(out, "* {name} restart (dependency {dependency} changes)");
            }
            Action::Unchanged { .. } => {
                let _ = writeln!(out, "= {name} unchanged");
            }
            Action::Remove {
                running, reason, ..
            } => {
                let what = match reason {
                    RemoveReason::Orphan => "orphan",
                    RemoveReason::ScaledDown => "scaled down",
                    RemoveReason::Down => "down",
                };
                let verb = if *running {
                    "stop and remove"
                } else {
                    "remove"
                };
                let _ = writeln!(out, "- {name} {verb} ({what})");
            }
        }
    }
    resources(&mut out, true);
    out
}

/// A JSON value as the plan prints it: `null` (absent) as `(unset)`.
fn shown(json: &str) -> &str {
    if json == "null" {
        "(unset)"
    } else {
        json
    }
}
