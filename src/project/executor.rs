//! The executor: applies a [`Plan`] to the machine through a [`Backend`].
//!
//! Order (as Compose): networks and volumes first, then orphans removed,
//! then services stage by stage (`Plan::stages`, from the petgraph
//! ordering of the planner); the services of one stage run in parallel on
//! threads. Before a service's containers are touched, each `depends_on`
//! condition is waited for: `started` (the dependency's containers run),
//! `healthy` (the supervisor's health check reports healthy; unhealthy or
//! exited fails), `completed_successfully` (every container exited 0).
//!
//! The backend does the host work: [`super::host::EngineBackend`] over
//! the in-process engine (which forks nothing into a container from these
//! threads: supervisors are started by exec), and a recording fake in the
//! unit tests (`executor_tests.rs`).
//! Every step is idempotent against the recorded state: a run killed
//! half-way leaves containers that the next plan (read afresh) finishes.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::manifest::Condition;
use super::model::{ContainerInstance, Project, ServiceModel};
use super::planner::{Action, ContainerPlan, Plan, ResourceAction};

/// What a dependency looks like now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub running: bool,
    /// `created`, `running`, `exited`, …
    pub status: String,
    pub exit_code: i32,
    /// `starting`, `healthy`, `unhealthy`, or none without a check.
    pub health: Option<String>,
    /// How long it has been running (zero when it is not).
    pub up_for: Duration,
}

/// How long `up --wait` wants a container without a health check to have
/// been running before it counts as ready: one that exits at once (a typo
/// in its command, a missing file) is then reported instead of passing
/// because it was caught in its first milliseconds.
pub const SETTLE: Duration = Duration::from_millis(500);

/// The host operations the executor needs. Errors are one-line messages.
pub trait Backend: Sync {
    fn create_network(&self, project: &Project, key: &str) -> Result<(), String>;
    fn remove_network(&self, name: &str) -> Result<(), String>;
    fn create_volume(&self, project: &Project, key: &str) -> Result<(), String>;
    fn remove_volume(&self, name: &str) -> Result<(), String>;
    /// Creates and starts a container of `service` as `instance`.
    fn create(&self, service: &ServiceModel, instance: &ContainerInstance) -> Result<(), String>;
    fn start(&self, id: &str) -> Result<(), String>;
    fn restart(&self, id: &str, grace: Duration) -> Result<(), String>;
    /// Stops (within `grace`) and removes.
    fn remove(&self, id: &str, grace: Duration) -> Result<(), String>;
    /// The containers of a service as they are now (by name order).
    fn observe(&self, service: &str) -> Vec<Observed>;
    /// A progress line (`Container three-web-1  Started`).
    fn progress(&self, name: &str, what: &str);
}

/// A [`Backend`] that remembers the networks and containers it made, so
/// that a failed apply can take back what that run made
/// ([`Recorder::made`]); volumes are kept (they may hold data).
pub struct Recorder<'a, B: Backend> {
    inner: &'a B,
    networks: Mutex<Vec<String>>,
    containers: Mutex<Vec<String>>,
}

impl<'a, B: Backend> Recorder<'a, B> {
    pub fn new(inner: &'a B) -> Self {
        Self {
            inner,
            networks: Default::default(),
            containers: Default::default(),
        }
    }

    /// (networks, container names) made, in the order they were made.
    pub fn made(&self) -> (Vec<String>, Vec<String>) {
        (
            self.networks.lock().expect("lock").clone(),
            self.containers.lock().expect("lock").clone(),
        )
    }
}

impl<B: Backend> Backend for Recorder<'_, B> {
    fn create_network(&self, project: &Project, key: &str) -> Result<(), String> {
        if let Some(n) = project.networks.get(key) {
            self.networks.lock().expect("lock").push(n.name.clone());
        }
        self.inner.create_network(project, key)
    }
    fn remove_network(&self, name: &str) -> Result<(), String> {
        self.inner.remove_network(name)
    }
    fn create_volume(&self, project: &Project, key: &str) -> Result<(), String> {
        self.inner.create_volume(project, key)
    }
    fn remove_volume(&self, name: &str) -> Result<(), String> {
        self.inner.remove_volume(name)
    }
    fn create(&self, service: &ServiceModel, instance: &ContainerInstance) -> Result<(), String> {
        self.containers
            .lock()
            .expect("lock")
            .push(instance.name.clone());
        self.inner.create(service, instance)
    }
    fn start(&self, id: &str) -> Result<(), String> {
        self.inner.start(id)
    }
    fn restart(&self, id: &str, grace: Duration) -> Result<(), String> {
        self.inner.restart(id, grace)
    }
    fn remove(&self, id: &str, grace: Duration) -> Result<(), String> {
        self.inner.remove(id, grace)
    }
    fn observe(&self, service: &str) -> Vec<Observed> {
        self.inner.observe(service)
    }
    fn progress(&self, name: &str, what: &str) {
        self.inner.progress(name, what)
    }
}

/// Why applying a plan failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("network {name}: {message}")]
    Network { name: String, message: String },
    #[error("volume {name}: {message}")]
    Volume { name: String, message: String },
    #[error("container {name}: {message}")]
    Container { name: String, message: String },
    #[error("dependency failed to start: {message}")]
    Dependency { message: String },
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Several(Vec<ExecError>),
}

/// How long `depends_on` waits before giving up.
#[derive(Debug, Clone, Copy)]
pub struct ApplyOptions {
    pub dependency_timeout: Duration,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            dependency_timeout: Duration::from_secs(300),
        }
    }
}

/// Applies `plan` (made for `project`).
pub fn apply(
    project: &Project,
    plan: &Plan,
    backend: &dyn Backend,
    opts: ApplyOptions,
) -> Result<(), ExecError> {
    for n in plan
        .networks
        .iter()
        .filter(|n| n.action == ResourceAction::Create)
    {
        backend.progress(&format!("Network {}", n.name), "Creating");
        backend
            .create_network(project, &n.key)
            .map_err(|message| ExecError::Network {
                name: n.name.clone(),
                message,
            })?;
        backend.progress(&format!("Network {}", n.name), "Created");
    }
    for v in plan
        .volumes
        .iter()
        .filter(|v| v.action == ResourceAction::Create)
    {
        backend
            .create_volume(project, &v.key)
            .map_err(|message| ExecError::Volume {
                name: v.name.clone(),
                message,
            })?;
        backend.progress(&format!("Volume {}", v.name), "Created");
    }
    for c in &plan.orphans {
        step(project, c, backend)?;
    }
    for stage in &plan.stages {
        let errors = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for name in stage {
                let Some(sp) = plan.service(name) else {
                    continue;
                };
                let errors = &errors;
                s.spawn(move || {
                    let r = (|| {
                        for (dep, d) in &sp.depends_on {
                            wait_condition(dep, d.condition, backend, opts.dependency_timeout)?;
                        }
                        for c in &sp.containers {
                            step(project, c, backend)?;
                        }
                        Ok(())
                    })();
                    if let Err(e) = r {
                        errors.lock().expect("no panics hold it").push(e);
                    }
                });
            }
        });
        let mut errors = errors.into_inner().expect("threads joined");
        match errors.len() {
            0 => {}
            1 => return Err(errors.pop().expect("one")),
            _ => return Err(ExecError::Several(errors)),
        }
    }
    Ok(())
}

fn grace_of(project: &Project, service: &str) -> Duration {
    project
        .services
        .get(service)
        .map(|s| s.spec.stop_grace_period.0)
        .unwrap_or(super::model::DEFAULT_STOP_GRACE)
}

/// Applies one container's step.
fn step(project: &Project, c: &ContainerPlan, backend: &dyn Backend) -> Result<(), ExecError> {
    let fail = |message: String| ExecError::Container {
        name: c.name.clone(),
        message,
    };
    let label = format!("Container {}", c.name);
    let instance = || {
        let svc = project
            .services
            .get(&c.service)
            .ok_or_else(|| fail(format!("service {} is not in the project", c.service)))?;
        let inst = svc
            .containers
            .iter()
            .find(|i| Some(i.replica) == c.replica)
            .ok_or_else(|| fail(format!("replica {:?} is not in the project", c.replica)))?;
        Ok::<_, ExecError>((svc, inst))
    };
    match &c.action {
        Action::Create => {
            let (svc, inst) = instance()?;
            backend.progress(&label, "Creating");
            backend.create(svc, inst).map_err(fail)?;
            backend.progress(&label, "Started");
        }
        Action::Recreate { id, .. } => {
            let (svc, inst) = instance()?;
            backend.progress(&label, "Recreate");
            backend
                .remove(id, grace_of(project, &c.service))
                .map_err(fail)?;
            backend.create(svc, inst).map_err(fail)?;
            backend.progress(&label, "Recreated");
        }
        Action::Start { id } => {
            backend.progress(&label, "Starting");
            backend.start(id).map_err(fail)?;
            backend.progress(&label, "Started");
        }
        Action::Restart { id, .. } => {
            backend.progress(&label, "Restarting");
            backend
                .restart(id, grace_of(project, &c.service))
                .map_err(fail)?;
            backend.progress(&label, "Restarted");
        }
        Action::Unchanged { .. } => backend.progress(&label, "Running"),
        Action::Remove { id, .. } => {
            backend.progress(&label, "Stopping");
            backend
                .remove(id, grace_of(project, &c.service))
                .map_err(fail)?;
            backend.progress(&label, "Removed");
        }
    }
    Ok(())
}

/// What a condition says about a service's containers right now:
/// `Ok(true)` met, `Ok(false)` not yet, `Err` never will be.
pub fn condition_met(service: &str, cond: Condition, now: &[Observed]) -> Result<bool, String> {
    if now.is_empty() {
        return Ok(false);
    }
    for o in now {
        match cond {
            Condition::Started => {
                if !o.running && o.status != "exited" {
                    return Ok(false);
                }
            }
            Condition::Healthy => match o.health.as_deref() {
                Some("healthy") if o.running => {}
                Some("unhealthy") => return Err(format!("container of {service} is unhealthy")),
                None => {
                    return Err(format!(
                        "service {service} has no health check to wait for (depends_on condition healthy)"
                    ))
                }
                _ if !o.running && o.status == "exited" => {
                    return Err(format!(
                        "container of {service} exited ({}) before it became healthy",
                        o.exit_code
                    ))
                }
                _ => return Ok(false),
            },
            Condition::CompletedSuccessfully => {
                if o.running || o.status != "exited" {
                    return Ok(false);
                }
                if o.exit_code != 0 {
                    return Err(format!(
                        "service {service} didn't complete successfully: exit {}",
                        o.exit_code
                    ));
                }
            }
        }
    }
    Ok(true)
}

fn wait_condition(
    service: &str,
    cond: Condition,
    backend: &dyn Backend,
    timeout: Duration,
) -> Result<(), ExecError> {
    let end = Instant::now() + timeout;
    let mut announced = false;
    loop {
        match condition_met(service, cond, &backend.observe(service)) {
            Ok(true) => {
                if announced {
                    backend.progress(&format!("Service {service}"), condition_word(cond));
                }
                return Ok(());
            }
            Ok(false) => {}
            Err(message) => return Err(ExecError::Dependency { message }),
        }
        if !announced && cond != Condition::Started {
            backend.progress(&format!("Service {service}"), "Waiting");
            announced = true;
        }
        if Instant::now() > end {
            return Err(ExecError::Dependency {
                message: format!(
                    "service {service} is not {} after {}s",
                    condition_word(cond).to_lowercase(),
                    timeout.as_secs()
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn condition_word(cond: Condition) -> &'static str {
    match cond {
        Condition::Started => "Started",
        Condition::Healthy => "Healthy",
        Condition::CompletedSuccessfully => "Exited",
    }
}

/// `up --wait`: the first service whose containers are not running (or not
/// healthy when they have a health check), with why; `Ok(None)` when all are.
pub fn readiness(
    services: &BTreeMap<String, Vec<Observed>>,
) -> Result<Option<(String, String)>, (String, String)> {
    let mut pending = None;
    for (name, now) in services {
        if now.is_empty() {
            return Err((name.clone(), "has no container".into()));
        }
        for o in now {
            if !o.running {
                if matches!(
                    o.status.as_str(),
                    "exited" | "dead" | "unsupervised" | "corrupt"
                ) {
                    return Err((
                        name.clone(),
                        format!("is not running ({} {})", o.status, o.exit_code),
                    ));
                }
                // Created, or exited but not yet recorded by its supervisor.
                pending.get_or_insert_with(|| (name.clone(), o.status.clone()));
                continue;
            }
            match o.health.as_deref() {
                Some("unhealthy") => return Err((name.clone(), "is unhealthy".into())),
                Some("healthy") => {}
                None if o.up_for >= SETTLE => {}
                None => {
                    pending.get_or_insert_with(|| (name.clone(), "starting".into()));
                }
                Some(other) => {
                    pending.get_or_insert_with(|| (name.clone(), other.to_string()));
                }
            }
        }
    }
    Ok(pending)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(running: bool, status: &str, code: i32, health: Option<&str>) -> Observed {
        Observed {
            running,
            status: status.into(),
            exit_code: code,
            health: health.map(str::to_string),
            up_for: if running { SETTLE } else { Duration::ZERO },
        }
    }

    #[test]
    fn conditions() {
        use Condition::*;
        let cases: &[(Condition, Observed, Result<bool, ()>)] = &[
            (Started, obs(true, "running", 0, None), Ok(true)),
            (Started, obs(false, "created", 0, None), Ok(false)),
            (
                Healthy,
                obs(true, "running", 0, Some("starting")),
                Ok(false),
            ),
            (Healthy, obs(true, "running", 0, Some("healthy")), Ok(true)),
            (Healthy, obs(true, "running", 0, Some("unhealthy")), Err(())),
            (Healthy, obs(true, "running", 0, None), Err(())),
            (Healthy, obs(false, "exited", 1, Some("starting")), Err(())),
            (
                CompletedSuccessfully,
                obs(true, "running", 0, None),
                Ok(false),
            ),
            (
                CompletedSuccessfully,
                obs(false, "exited", 0, None),
                Ok(true),
            ),
            (
                CompletedSuccessfully,
                obs(false, "exited", 3, None),
                Err(()),
            ),
        ];
        for (cond, o, want) in cases {
            let got = condition_met("db", *cond, std::slice::from_ref(o)).map_err(|_| ());
            assert_eq!(&got, want, "{cond:?} {o:?}");
        }
        assert_eq!(condition_met("db", Started, &[]), Ok(false));
    }

    #[test]
    fn wait_readiness() {
        let mut m = BTreeMap::new();
        let just_started = Observed {
            up_for: Duration::from_millis(20),
            ..obs(true, "running", 0, None)
        };
        m.insert("a".to_string(), vec![just_started]);
        assert_eq!(
            readiness(&m),
            Ok(Some(("a".into(), "starting".into()))),
            "a container without a health check settles first"
        );
        m.insert("a".to_string(), vec![obs(true, "running", 0, None)]);
        assert_eq!(readiness(&m), Ok(None));
        m.insert(
            "b".to_string(),
            vec![obs(true, "running", 0, Some("starting"))],
        );
        assert_eq!(readiness(&m), Ok(Some(("b".into(), "starting".into()))));
        m.insert("c".to_string(), vec![obs(false, "exited", 2, None)]);
        assert_eq!(readiness(&m).unwrap_err().0, "c");
    }
}
