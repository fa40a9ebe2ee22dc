//! A watch session: what `berth watch` knows between batches of changed
//! files, and what it does with each batch (see the module above): sync
//! rules write into every running replica, `restart` rules restart the
//! service's containers through the engine, `sync+exec` runs its command
//! in each replica, `rebuild` rules rebuild through `project::up`'s
//! builder and re-plan the services whose image changed, and a changed
//! manifest, `.env` or `env_file` re-plans the project.
//!
//! The session has threads (inotify, the debouncer), so `sync+exec` runs
//! `berth exec` as a child process: entering a container forks through
//! libcontainer, which only a single-threaded process may do. Restarts go
//! through the engine in-process (it forks nothing but a fresh
//! supervisor by exec).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::events::{host_kind, watch_points, Watcher};
use super::rules::{read_dockerignore, Rule, Rules};
use super::sync::{self, HostKind};
use super::write::{self, Owner};
use crate::engine::Engine;
use crate::project::actual::{self, ProjectContainer};
use crate::project::manifest::WatchAction;
use crate::project::selection::Selection;
use crate::project::up::{self, BuildPolicy, PullPolicy};
use crate::project::{self, PlanOptions, Project};
use crate::runtime::container::ContainerStore;
use crate::state::StateRoot;

/// Why a watch session could not start (errors inside a batch are
/// reported and watch goes on).
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("no such service: {0}")]
    NoSuchService(String),
    #[error("none of the selected services is configured for watch, consider setting a `develop.watch` section")]
    NoRules,
    #[error(transparent)]
    Load(#[from] crate::project::LoadError),
    #[error(transparent)]
    Selection(#[from] crate::project::selection::SelectionError),
    #[error(transparent)]
    Up(#[from] up::UpError),
    #[error(transparent)]
    Rule(#[from] super::rules::RuleError),
    #[error(transparent)]
    Events(#[from] super::events::EventsError),
    #[error(transparent)]
    Container(#[from] crate::runtime::container::ContainerError),
}

/// Watches until `interrupted` is set (the project is already up).
pub fn run(
    root: &StateRoot,
    args: Selection,
    services: &[String],
    prune: bool,
    interrupted: &'static AtomicBool,
) -> Result<(), WatchError> {
    let mut session = Session::new(root, args, services, prune, interrupted)?;
    let mut watcher = Watcher::new()?;
    watcher.set_points(session.points())?;
    session.initial_sync();
    eprintln!("Watch enabled");
    while !interrupted.load(Ordering::SeqCst) {
        let Some((paths, errors)) = watcher.next(Duration::from_millis(200)) else {
            continue;
        };
        for e in errors {
            eprintln!("warning: watching files: {e}");
        }
        session.handle(&paths);
        // New directories may have appeared, rules may have changed.
        if let Err(e) = watcher.set_points(session.points()) {
            eprintln!("warning: {e}");
        }
    }
    eprintln!("Watch disabled");
    Ok(())
}

/// What watch knows between batches.
pub struct Session {
    root: StateRoot,
    args: Selection,
    interrupted: &'static AtomicBool,
    /// The services named on the command line (empty: all).
    selected: Vec<String>,
    prune: bool,
    /// The project as last applied (image digests included).
    project: Project,
    /// Manifest files and `.env`.
    config_files: Vec<PathBuf>,
    rules: Rules,
}

impl Session {
    /// A session for the selected project's `services` (all with rules
    /// when empty); `interrupted` stops a rebuild at its next step.
    pub fn new(
        root: &StateRoot,
        args: Selection,
        services: &[String],
        prune: bool,
        interrupted: &'static AtomicBool,
    ) -> Result<Self, WatchError> {
        let loaded = args.load()?;
        let project = up::resolve_with_images(root, &loaded, &args.profiles(), None)?;
        let config_files = config_files(&args)?;
        for s in services {
            if !project.services.contains_key(s) {
                return Err(WatchError::NoSuchService(s.clone()));
            }
        }
        let rules = build_rules(&project, services)?;
        if rules.rules.is_empty() {
            return Err(WatchError::NoRules);
        }
        Ok(Session {
            root: root.clone(),
            args,
            interrupted,
            selected: services.to_vec(),
            prune,
            project,
            config_files,
            rules,
        })
    }

    /// The paths to watch and how deep.
    pub fn points(&self) -> BTreeMap<PathBuf, crate::watch::events::Depth> {
        let rule_paths: Vec<PathBuf> = self.rules.roots();
        watch_points(&rule_paths, &self.config_files, &host_kind)
    }

    /// The rules with `initial_sync`: all of their path into every running
    /// replica, before the first change is awaited.
    pub fn initial_sync(&self) {
        for rule in self.rules.rules.iter().filter(|r| r.initial_sync) {
            let service = &rule.service;
            let containers = match self.containers(service) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: service {service:?}: {e:#}");
                    continue;
                }
            };
            let running: Vec<&ProjectContainer> = containers.iter().filter(|c| c.running).collect();
            if running.is_empty() {
                eprintln!("warning: service {service:?} has no running container to sync to");
                continue;
            }
            eprintln!(
                "Syncing service {service:?}: initial sync of {}",
                rule.path.display()
            );
            let owner = self.owner_of(service);
            self.sync_rule(rule, &[PathBuf::new()], &running, owner);
        }
    }

    /// Who owns what a sync creates in `service`'s containers.
    fn owner_of(&self, service: &str) -> Owner {
        Owner::from_user(
            self.project
                .services
                .get(service)
                .and_then(|s| s.spec.user.as_deref()),
        )
    }

    /// Handles one batch of changed host paths.
    pub fn handle(&mut self, paths: &BTreeSet<PathBuf>) {
        // Hits by rule, in rule order.
        let mut hits: BTreeMap<usize, Vec<PathBuf>> = BTreeMap::new();
        for p in paths {
            for h in self.rules.hits(p) {
                hits.entry(h.rule).or_default().push(h.rel);
            }
        }
        let mut by_service: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for rule in hits.keys() {
            by_service
                .entry(self.rules.rules[*rule].service.clone())
                .or_default()
                .push(*rule);
        }
        let mut rebuild = Vec::new();
        for (service, rules) in &by_service {
            if rules
                .iter()
                .any(|r| self.rules.rules[*r].action == WatchAction::Rebuild)
            {
                rebuild.push(service.clone());
            } else {
                self.refresh(service, rules, &hits);
            }
        }
        if !rebuild.is_empty() {
            self.rebuild(&rebuild);
        }
        if paths.iter().any(|p| self.config_files.contains(p)) {
            self.reload();
        }
    }

    /// The sync, restart and exec rules of one service.
    fn refresh(&self, service: &str, rules: &[usize], hits: &BTreeMap<usize, Vec<PathBuf>>) {
        let containers = match self.containers(service) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: service {service:?}: {e:#}");
                return;
            }
        };
        let running: Vec<&ProjectContainer> = containers.iter().filter(|c| c.running).collect();
        let syncing: Vec<usize> = rules
            .iter()
            .copied()
            .filter(|r| self.rules.rules[*r].action.syncs())
            .collect();
        if !syncing.is_empty() {
            let n: usize = syncing.iter().map(|r| hits[r].len()).sum();
            eprintln!(
                "Syncing service {service:?} after {n} {} detected",
                if n == 1 { "change was" } else { "changes were" }
            );
            let owner = self.owner_of(service);
            if running.is_empty() {
                eprintln!("warning: service {service:?} has no running container to sync to");
            }
            for r in &syncing {
                self.sync_rule(&self.rules.rules[*r], &hits[r], &running, owner);
            }
        }
        let restart = rules.iter().any(|r| {
            matches!(
                self.rules.rules[*r].action,
                WatchAction::SyncRestart | WatchAction::Restart
            )
        });
        if restart {
            eprintln!("Restarting service {service:?} after changes were detected");
            let grace = self
                .project
                .services
                .get(service)
                .map(|s| s.spec.stop_grace_period.0.as_secs())
                .unwrap_or(10);
            let engine = match Engine::open(&self.root) {
                Ok(e) => e,
                Err(e) => return eprintln!("error: {e}"),
            };
            let opts = crate::engine::StartOptions::default();
            for c in &containers {
                match engine.restart(&c.config.id, Some(grace), None, &opts) {
                    Ok(()) => eprintln!(" Container {}  Restarted", c.config.name),
                    Err(e) => eprintln!("error: restarting {}: {e}", c.config.name),
                }
            }
        }
        for r in rules {
            let rule = &self.rules.rules[*r];
            if rule.action != WatchAction::SyncExec {
                continue;
            }
            if let Some(exec) = &rule.exec {
                for c in &running {
                    self.exec(c, exec);
                }
            }
        }
    }

    fn sync_rule(
        &self,
        rule: &Rule,
        rels: &[PathBuf],
        running: &[&ProjectContainer],
        owner: Owner,
    ) {
        let Some(target) = &rule.target else {
            return;
        };
        let changes: Vec<(PathBuf, HostKind)> = rels
            .iter()
            .map(|rel| {
                let kind = if rel.as_os_str().is_empty() {
                    // The rule's own path: a link there is the user's way
                    // of naming the directory or file to sync.
                    match std::fs::metadata(&rule.path) {
                        Ok(m) if m.is_dir() => HostKind::Dir,
                        Ok(_) => HostKind::File,
                        Err(_) => HostKind::Missing,
                    }
                } else {
                    HostKind::of(&rule.path.join(rel))
                };
                (rel.clone(), kind)
            })
            .collect();
        let ops = sync::plan(&rule.path, target, &changes);
        for c in running {
            let root = PathBuf::from(format!("/proc/{}/root", c.state.pid));
            for op in &ops {
                if let Err(e) = write::apply(&root, target, op, owner, &|p: &Path| rule.ignores(p))
                {
                    eprintln!("error: service {:?} ({}): {e}", rule.service, c.config.name);
                }
            }
        }
    }

    fn exec(&self, c: &ProjectContainer, exec: &crate::project::model::WatchExecSpec) {
        let exe = match std::env::current_exe() {
            Ok(e) => e,
            Err(e) => {
                eprintln!("error: locating the berth binary: {e}");
                return;
            }
        };
        let mut cmd = Command::new(exe);
        cmd.arg("--root")
            .arg(self.root.path())
            .arg("exec")
            .env_remove("BERTH_ROOT")
            .stdin(Stdio::null());
        if let Some(u) = &exec.user {
            cmd.args(["-u", u]);
        }
        if let Some(w) = &exec.working_dir {
            cmd.args(["-w", w]);
        }
        for (k, v) in &exec.environment {
            cmd.arg("-e").arg(format!("{k}={v}"));
        }
        cmd.arg(&c.config.id).args(&exec.command);
        match cmd.status() {
            Ok(s) if s.success() => {}
            Ok(s) => eprintln!(
                "error: {:?} in {} exited with {}",
                exec.command.join(" "),
                c.config.name,
                s.code().unwrap_or(-1)
            ),
            Err(e) => eprintln!("error: running berth exec: {e}"),
        }
    }

    /// Rebuilds the services' images; recreates those whose image changed.
    fn rebuild(&mut self, services: &[String]) {
        eprintln!("Rebuilding service(s) {services:?} after changes were detected...");
        let root = self.root.clone();
        let mut changed = Vec::new();
        let mut old_images = Vec::new();
        let mut built = Vec::new();
        for name in services {
            let Some(svc) = self.project.services.get(name) else {
                continue;
            };
            let Some(spec) = &svc.spec.build else {
                eprintln!("error: service {name:?} has no `build`; cannot rebuild it");
                continue;
            };
            // Ctrl-C stops a build at its next step (a RUN is killed).
            let built_image = up::build_service(
                &root,
                name,
                &svc.spec.image,
                spec,
                false,
                false,
                Some(self.interrupted),
            );
            if self.interrupted.load(Ordering::SeqCst) {
                return;
            }
            match built_image {
                Ok(img) => {
                    built.push(name.clone());
                    let new = img.id.to_string();
                    if svc.spec.image_digest.as_deref() == Some(new.as_str()) {
                        eprintln!("service {name:?} is up to date");
                    } else {
                        changed.push(name.clone());
                        if let Some(old) = &svc.spec.image_digest {
                            old_images.push(old.clone());
                        }
                    }
                }
                Err(e) => eprintln!("error: {e:#}"),
            }
        }
        if !built.is_empty() {
            eprintln!("service(s) {built:?} successfully built");
        }
        if changed.is_empty() {
            return;
        }
        let options = PlanOptions {
            services: changed.clone(),
            no_deps: true,
            force_recreate: false,
            remove_orphans: false,
        };
        if let Err(e) = self.apply(options, false) {
            eprintln!("error: recreating {changed:?}: {e:#}");
            return;
        }
        if self.prune {
            let Ok(store) = crate::image::ImageStore::open(&root) else {
                return;
            };
            let in_use = crate::engine::image::images_in_use(&store);
            for old in old_images {
                // Removal by id refuses an image that is tagged elsewhere
                // or that a container uses; those stay.
                if store.remove(&old, false, &in_use).is_ok() {
                    eprintln!("Pruned image {old}");
                }
            }
        }
    }

    /// Plans and applies (as `up -d`), then takes the result as the
    /// project; `show` prints the plan first.
    fn apply(&mut self, options: PlanOptions, show: bool) -> Result<(), WatchError> {
        let _lock = self.args.lock(&self.root, "watch")?;
        let loaded = self.args.load()?;
        let (desired, plan) = up::desired_and_plan(
            &self.root,
            &loaded,
            &self.args.profiles(),
            Some((PullPolicy::Missing, BuildPolicy::Missing)),
            &options,
        )?;
        if show && !plan.is_noop() {
            let text = project::render(&plan);
            eprint!("{text}");
            if !text.ends_with('\n') {
                eprintln!();
            }
        }
        up::apply(&self.root, &desired, &plan)?;
        self.project = desired;
        Ok(())
    }

    /// The manifest, `.env` or an `env_file` changed: load, plan and apply again.
    fn reload(&mut self) {
        eprintln!("Project configuration changed, reloading");
        // A manifest that does not load leaves everything as it was.
        if let Err(e) = self.args.resolve(&project::ImageDigests::new()) {
            eprintln!("error: {e:#}");
            eprintln!("watch goes on with the project as it was; fix the manifest to apply it");
            return;
        }
        let options = PlanOptions {
            services: self.selected.clone(),
            no_deps: false,
            force_recreate: false,
            remove_orphans: false,
        };
        if let Err(e) = self.apply(options, true) {
            eprintln!("error: {e:#}");
            return;
        }
        match build_rules(&self.project, &self.selected) {
            Ok(rules) => self.rules = rules,
            Err(e) => eprintln!("error: {e:#}; keeping the previous watch rules"),
        }
        if let Ok(files) = config_files(&self.args) {
            self.config_files = files;
        }
    }

    /// The service's containers, as the runtime has them now.
    fn containers(&self, service: &str) -> Result<Vec<ProjectContainer>, WatchError> {
        let store = ContainerStore::open(&self.root)?;
        Ok(actual::project_containers(&store, &self.project.name)
            .into_iter()
            .filter(|c| c.service() == service)
            .collect())
    }
}

/// The manifest files of the project, its `.env` and the services'
/// `env_file`s.
fn config_files(args: &Selection) -> Result<Vec<PathBuf>, WatchError> {
    let loaded = args.load()?;
    let mut files = loaded.files.clone();
    files.push(loaded.project_dir.join(".env"));
    for svc in loaded.manifest.services.values() {
        for file in &svc.env_file.0 {
            let path = crate::project::load::normalise_path(&loaded.project_dir.join(file));
            if !files.contains(&path) {
                files.push(path);
            }
        }
    }
    Ok(files)
}

/// The watch rules of the selected services (all when none is named).
fn build_rules(project: &Project, selected: &[String]) -> Result<Rules, WatchError> {
    let mut rules = Vec::new();
    for (name, svc) in &project.services {
        if !selected.is_empty() && !selected.contains(name) {
            continue;
        }
        let context = svc.spec.build.as_ref().map(|b| b.context.clone());
        let dockerignore = match &context {
            Some(c) => read_dockerignore(c)?,
            None => None,
        };
        for (i, spec) in svc.watch.iter().enumerate() {
            let ctx = context.as_deref().map(|c| (c, dockerignore.as_deref()));
            rules.push(Rule::new(name, i, spec, ctx)?);
        }
    }
    Ok(Rules { rules })
}
