//! The executor over a recording fake of the engine: ordering, parallel
//! stages, `depends_on` conditions, recreate, orphans and failures, all
//! without root. The fake ([`Fake`]) keeps per-service containers the way
//! the engine would report them and a log of every call.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::executor::{apply, ApplyOptions, Backend, ExecError, Observed};
use super::model::{ContainerInstance, Project, ServiceModel, LABEL_CONFIG_HASH};
use super::planner::{ActualContainer, ActualState, ContainerStatus};
use super::{load, plan, resolve, ImageDigests, LoadOptions, Plan, PlanOptions};

/// How the fake engine behaves for one service.
#[derive(Default, Clone)]
struct Behaviour {
    /// `create` fails with this message.
    fail: Option<String>,
    /// The container exits at once with this code (a one-shot job).
    exits: Option<i32>,
    /// It has a health check that turns healthy after this many observations.
    healthy_after: Option<usize>,
    /// It turns unhealthy instead.
    unhealthy: bool,
}

#[derive(Default)]
struct Fake {
    behaviour: BTreeMap<String, Behaviour>,
    calls: Mutex<Vec<String>>,
    containers: Mutex<BTreeMap<String, Vec<Observed>>>,
    observed: Mutex<BTreeMap<String, usize>>,
    delay: Duration,
    active: AtomicUsize,
    most_active: AtomicUsize,
}

impl Fake {
    fn with(behaviour: &[(&str, Behaviour)]) -> Self {
        Fake {
            behaviour: behaviour
                .iter()
                .map(|(s, b)| (s.to_string(), b.clone()))
                .collect(),
            ..Default::default()
        }
    }
    fn record(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
    fn position(&self, call: &str) -> usize {
        self.calls()
            .iter()
            .position(|c| c == call)
            .unwrap_or_else(|| panic!("no call {call:?} in {:?}", self.calls()))
    }
}

impl Backend for Fake {
    fn create_network(&self, project: &Project, key: &str) -> Result<(), String> {
        self.record(format!("network {}", project.networks[key].name));
        Ok(())
    }
    fn remove_network(&self, name: &str) -> Result<(), String> {
        self.record(format!("rm network {name}"));
        Ok(())
    }
    fn create_volume(&self, project: &Project, key: &str) -> Result<(), String> {
        self.record(format!("volume {}", project.volumes[key].name));
        Ok(())
    }
    fn remove_volume(&self, name: &str) -> Result<(), String> {
        self.record(format!("rm volume {name}"));
        Ok(())
    }
    fn create(&self, service: &ServiceModel, instance: &ContainerInstance) -> Result<(), String> {
        let now = self.active.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_active.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(self.delay);
        self.active.fetch_sub(1, Ordering::SeqCst);
        self.record(format!("create {}", instance.name));
        let b = self
            .behaviour
            .get(&service.name)
            .cloned()
            .unwrap_or_default();
        if let Some(message) = b.fail {
            return Err(message);
        }
        let o = Observed {
            running: b.exits.is_none(),
            status: if b.exits.is_some() {
                "exited"
            } else {
                "running"
            }
            .into(),
            exit_code: b.exits.unwrap_or(0),
            health: (b.healthy_after.is_some() || b.unhealthy).then(|| "starting".into()),
            up_for: Duration::from_secs(1),
        };
        self.containers
            .lock()
            .unwrap()
            .entry(service.name.clone())
            .or_default()
            .push(o);
        Ok(())
    }
    fn start(&self, id: &str) -> Result<(), String> {
        self.record(format!("start {id}"));
        Ok(())
    }
    fn restart(&self, id: &str, _grace: Duration) -> Result<(), String> {
        self.record(format!("restart {id}"));
        Ok(())
    }
    fn remove(&self, id: &str, grace: Duration) -> Result<(), String> {
        self.record(format!("remove {id} {}s", grace.as_secs()));
        Ok(())
    }
    fn observe(&self, service: &str) -> Vec<Observed> {
        let n = {
            let mut seen = self.observed.lock().unwrap();
            let n = seen.entry(service.to_string()).or_default();
            *n += 1;
            *n
        };
        let b = self.behaviour.get(service).cloned().unwrap_or_default();
        let mut all = self.containers.lock().unwrap();
        let list = all.entry(service.to_string()).or_default();
        for o in list.iter_mut() {
            if b.unhealthy {
                o.health = Some("unhealthy".into());
            } else if b.healthy_after.is_some_and(|after| n >= after) {
                o.health = Some("healthy".into());
            }
        }
        list.clone()
    }
    fn progress(&self, _name: &str, _what: &str) {}
}

/// The project of a manifest text (project name `p`).
fn project(manifest: &str) -> Project {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("berth.toml"), manifest).unwrap();
    let loaded = load(&LoadOptions {
        files: vec!["berth.toml".into()],
        cwd: dir.path().to_path_buf(),
        project_name: Some("p".into()),
        env: BTreeMap::new(),
    })
    .unwrap();
    resolve(&loaded, &[], &ImageDigests::new()).unwrap()
}

fn plan_for(p: &Project, actual: &ActualState) -> Plan {
    plan(p, actual, &PlanOptions::default()).unwrap()
}

fn run(p: &Project, plan: &Plan, fake: &Fake) -> Result<(), ExecError> {
    apply(
        p,
        plan,
        fake,
        ApplyOptions {
            dependency_timeout: Duration::from_secs(5),
        },
    )
}

const CHAIN: &str = r#"
[services.db]
image = "busybox"
[services.api]
image = "busybox"
depends_on = ["db"]
[services.web]
image = "busybox"
depends_on = ["api"]
"#;

#[test]
fn dependencies_are_created_before_their_dependents() {
    let p = project(CHAIN);
    let fake = Fake::default();
    run(&p, &plan_for(&p, &ActualState::default()), &fake).unwrap();
    assert_eq!(fake.calls()[0], "network p_default");
    assert!(fake.position("create p-db-1") < fake.position("create p-api-1"));
    assert!(fake.position("create p-api-1") < fake.position("create p-web-1"));
}

#[test]
fn the_services_of_one_stage_are_created_in_parallel() {
    let p = project(
        r#"
[services.a]
image = "busybox"
[services.b]
image = "busybox"
[services.c]
image = "busybox"
"#,
    );
    let fake = Fake {
        delay: Duration::from_millis(200),
        ..Default::default()
    };
    let t = std::time::Instant::now();
    run(&p, &plan_for(&p, &ActualState::default()), &fake).unwrap();
    assert_eq!(fake.most_active.load(Ordering::SeqCst), 3);
    assert!(
        t.elapsed() < Duration::from_millis(550),
        "{:?}",
        t.elapsed()
    );
}

const HEALTHY: &str = r#"
[services.db]
image = "busybox"
[services.db.healthcheck]
test = ["CMD", "true"]
[services.api]
image = "busybox"
[services.api.depends_on.db]
condition = "service_healthy"
"#;

#[test]
fn a_healthy_condition_waits_for_the_health_check() {
    let p = project(HEALTHY);
    let fake = Fake::with(&[(
        "db",
        Behaviour {
            healthy_after: Some(3),
            ..Default::default()
        },
    )]);
    run(&p, &plan_for(&p, &ActualState::default()), &fake).unwrap();
    assert!(fake.position("create p-db-1") < fake.position("create p-api-1"));
    assert!(
        fake.observed.lock().unwrap()["db"] >= 3,
        "api waited for db to be healthy"
    );
}

#[test]
fn an_unhealthy_dependency_fails_its_dependents_and_names_it() {
    let p = project(HEALTHY);
    let fake = Fake::with(&[(
        "db",
        Behaviour {
            unhealthy: true,
            ..Default::default()
        },
    )]);
    let err = run(&p, &plan_for(&p, &ActualState::default()), &fake).unwrap_err();
    assert!(
        err.to_string().contains("container of db is unhealthy"),
        "{err}"
    );
    assert!(!fake.calls().contains(&"create p-api-1".to_string()));
}

const JOB: &str = r#"
[services.migrate]
image = "busybox"
[services.api]
image = "busybox"
[services.api.depends_on.migrate]
condition = "service_completed_successfully"
"#;

#[test]
fn completed_successfully_waits_for_exit_zero() {
    let p = project(JOB);
    let ok = Fake::with(&[(
        "migrate",
        Behaviour {
            exits: Some(0),
            ..Default::default()
        },
    )]);
    run(&p, &plan_for(&p, &ActualState::default()), &ok).unwrap();
    assert!(ok.position("create p-migrate-1") < ok.position("create p-api-1"));
    let failed = Fake::with(&[(
        "migrate",
        Behaviour {
            exits: Some(3),
            ..Default::default()
        },
    )]);
    let err = run(&p, &plan_for(&p, &ActualState::default()), &failed).unwrap_err();
    assert!(
        err.to_string()
            .contains("service migrate didn't complete successfully: exit 3"),
        "{err}"
    );
    assert!(!failed.calls().contains(&"create p-api-1".to_string()));
}

#[test]
fn a_failed_create_stops_the_dependents_and_names_the_cause() {
    let p = project(CHAIN);
    let fake = Fake::with(&[(
        "api",
        Behaviour {
            fail: Some("image not found".into()),
            ..Default::default()
        },
    )]);
    let err = run(&p, &plan_for(&p, &ActualState::default()), &fake).unwrap_err();
    assert_eq!(err.to_string(), "container p-api-1: image not found");
    assert!(fake.calls().contains(&"create p-db-1".to_string()));
    assert!(!fake.calls().contains(&"create p-web-1".to_string()));
}

fn existing(p: &Project, service: &str, hash: &str) -> ActualContainer {
    let svc = &p.services[service];
    let mut labels = svc.containers[0].labels.clone();
    labels.insert(LABEL_CONFIG_HASH.into(), hash.into());
    ActualContainer {
        id: format!("id-{service}"),
        name: svc.containers[0].name.clone(),
        labels,
        spec: None,
        status: ContainerStatus::Running,
    }
}

#[test]
fn a_changed_service_is_removed_then_created_and_others_are_left() {
    let p = project(CHAIN);
    let actual = ActualState {
        containers: vec![
            existing(&p, "db", &p.services["db"].config_hash),
            existing(&p, "api", "an-older-hash"),
            existing(&p, "web", &p.services["web"].config_hash),
        ],
        networks: vec![super::planner::ActualResource {
            name: "p_default".into(),
            labels: p.networks.values().next().unwrap().labels.clone(),
        }],
        volumes: vec![],
    };
    let fake = Fake::default();
    for service in ["db", "web"] {
        fake.containers.lock().unwrap().insert(
            service.into(),
            vec![Observed {
                running: true,
                status: "running".into(),
                exit_code: 0,
                health: None,
                up_for: Duration::from_secs(60),
            }],
        );
    }
    run(&p, &plan_for(&p, &actual), &fake).unwrap();
    let calls = fake.calls();
    assert!(fake.position("remove id-api 10s") < fake.position("create p-api-1"));
    assert!(
        !calls.iter().any(|c| c.contains("db") || c.contains("web")),
        "{calls:?}"
    );
    assert!(!calls.iter().any(|c| c.starts_with("network")), "{calls:?}");
}

#[test]
fn orphans_go_before_the_services_with_remove_orphans() {
    let p = project(CHAIN);
    let mut orphan = existing(&p, "db", "x");
    orphan.id = "id-old".into();
    orphan.name = "p-old-1".into();
    orphan
        .labels
        .insert(super::model::LABEL_SERVICE.into(), "old".into());
    let actual = ActualState {
        containers: vec![orphan],
        ..Default::default()
    };
    let opts = PlanOptions {
        remove_orphans: true,
        ..Default::default()
    };
    let plan = plan(&p, &actual, &opts).unwrap();
    let fake = Fake::default();
    run(&p, &plan, &fake).unwrap();
    assert!(fake.position("remove id-old 10s") < fake.position("create p-db-1"));
}
