//! `berth watch [SERVICE...] [--no-up] [--prune]` (also `berth compose
//! watch` and `berth up --watch`): Compose's `docker compose watch`
//! (<https://docs.docker.com/compose/how-tos/file-watch/>).
//!
//! First does what `up -d` does (unless `--no-up`), then watches the
//! services' `develop.watch` paths and the manifest files, `.env` and `env_file`s
//! ([`crate::watch::events`]). For each debounced batch of changes:
//!
//! - a service any of whose `rebuild` rules is hit is rebuilt through the
//!   same builder `up --build` uses; only when the image id changed is the
//!   service re-planned and applied as `up -d --no-deps SERVICE` would (its
//!   containers recreated); otherwise nothing is touched. Its sync rules
//!   are not run for that batch (the new image has the files);
//! - otherwise the sync rules copy and delete files inside every running
//!   replica ([`crate::watch::write`]), then `sync+restart`/`restart`
//!   restart the service's containers and `sync+exec` runs its command in
//!   each running replica;
//! - a change to a manifest file, `.env` or an `env_file` re-loads the project, prints the
//!   plan and applies it (as `up -d`); a manifest that no longer loads is
//!   reported (`berth.toml:3:9: …`) and watch goes on with the project as
//!   it was.
//!
//! Restarts, `exec` and image pruning run berth's own verbs as child
//! processes (`berth restart`, `berth exec`, `berth rmi`): the watcher has
//! threads (inotify, the debouncer), and the runtime never forks into a
//! container from a multi-threaded process. Ctrl-C (or SIGTERM) ends watch
//! with status 0 and leaves the project running, as Compose does.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail};

use super::compose::{self, BuildPolicy, PullPolicy, UpArgs};
use super::project::ProjectArgs;
use super::Context;
use crate::project::actual::{self, ProjectContainer};
use crate::project::manifest::WatchAction;
use crate::project::{self, PlanOptions, Project};
use crate::runtime::container::ContainerStore;
use crate::watch::events::{host_kind, watch_points, Watcher};
use crate::watch::rules::{read_dockerignore, Rule, Rules};
use crate::watch::sync::{self, HostKind};
use crate::watch::write::{self, Owner};

/// `berth watch`.
#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Do not build and start the services before watching
    #[arg(long = "no-up")]
    pub no_up: bool,
    /// Remove a service's previous image after a rebuild replaced it, if nothing else uses it
    #[arg(long)]
    pub prune: bool,
    /// Services to watch (default: every service with `develop.watch` rules)
    pub services: Vec<String>,
}

/// `berth watch`: `up -d` unless `--no-up`, then watch.
pub fn watch(ctx: &Context, args: WatchArgs) -> anyhow::Result<()> {
    let (_, project) = args.project.resolve(&project::ImageDigests::new())?;
    if let Some(s) = args
        .services
        .iter()
        .find(|s| !project.services.contains_key(*s))
    {
        bail!("no such service: {s}");
    }
    if !args.no_up {
        compose::up(
            ctx,
            UpArgs::detached(args.project.clone(), args.services.clone()),
        )?;
    }
    run(ctx, &args.project, &args.services, args.prune)
}

/// Watches the project until Ctrl-C (the project is already up).
pub fn run(
    ctx: &Context,
    project_args: &ProjectArgs,
    services: &[String],
    prune: bool,
) -> anyhow::Result<()> {
    let mut session = Session::new(ctx, project_args, services, prune)?;
    let mut watcher = Watcher::new()?;
    watcher.set_points(session.points())?;
    super::interrupt::catch();
    session.initial_sync();
    eprintln!("Watch enabled");
    while !super::interrupt::interrupted() {
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
struct Session<'a> {
    ctx: &'a Context,
    args: &'a ProjectArgs,
    /// The services named on the command line (empty: all).
    selected: Vec<String>,
    prune: bool,
    /// The project as last applied (image digests included).
    project: Project,
    /// Manifest files and `.env`.
    config_files: Vec<PathBuf>,
    rules: Rules,
}

impl<'a> Session<'a> {
    fn new(
        ctx: &'a Context,
        args: &'a ProjectArgs,
        services: &[String],
        prune: bool,
    ) -> anyhow::Result<Self> {
        let project = compose::resolve_with_images(ctx, args, None)?;
        let config_files = config_files(args)?;
        for s in services {
            if !project.services.contains_key(s) {
                bail!("no such service: {s}");
            }
        }
        let rules = build_rules(&project, services)?;
        if rules.rules.is_empty() {
            bail!("none of the selected services is configured for watch, consider setting a `develop.watch` section");
        }
        Ok(Session {
            ctx,
            args,
            selected: services.to_vec(),
            prune,
            project,
            config_files,
            rules,
        })
    }

    fn points(&self) -> BTreeMap<PathBuf, crate::watch::events::Depth> {
        let rule_paths: Vec<PathBuf> = self.rules.roots();
        watch_points(&rule_paths, &self.config_files, &host_kind)
    }

    /// The rules with `initial_sync`: all of their path into every running
    /// replica, before the first change is awaited.
    fn initial_sync(&self) {
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
    fn handle(&mut self, paths: &BTreeSet<PathBuf>) {
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
            let engine = match self.ctx.root().map(|r| crate::engine::Engine::open(&r)) {
                Ok(Ok(e)) => e,
                Ok(Err(e)) => return eprintln!("error: {e}"),
                Err(e) => return eprintln!("error: {e:#}"),
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
            .arg(&self.ctx.global.root)
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
        let root = match self.ctx.root() {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {e:#}");
                return;
            }
        };
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
            let built_image = crate::project::up::build_service(
                &root,
                name,
                &svc.spec.image,
                spec,
                false,
                false,
                Some(&super::interrupt::INTERRUPTED),
            );
            if super::interrupt::interrupted() {
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
    fn apply(&mut self, options: PlanOptions, show: bool) -> anyhow::Result<()> {
        let _lock = self.args.lock(self.ctx, "watch")?;
        let (desired, plan) = compose::desired_and_plan(
            self.ctx,
            self.args,
            Some((PullPolicy::Missing, BuildPolicy::Missing)),
            options,
        )?;
        if show && !plan.is_noop() {
            let text = project::render(&plan);
            eprint!("{text}");
            if !text.ends_with('\n') {
                eprintln!();
            }
        }
        crate::project::up::apply(&self.ctx.root()?, &desired, &plan)?;
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
        if let Ok(files) = config_files(self.args) {
            self.config_files = files;
        }
    }

    /// The service's containers, as the runtime has them now.
    fn containers(&self, service: &str) -> anyhow::Result<Vec<ProjectContainer>> {
        let store = ContainerStore::open(&self.ctx.root()?)?;
        Ok(actual::project_containers(&store, &self.project.name)
            .into_iter()
            .filter(|c| c.service() == service)
            .collect())
    }
}

/// The manifest files of the project, its `.env` and the services'
/// `env_file`s.
fn config_files(args: &ProjectArgs) -> anyhow::Result<Vec<PathBuf>> {
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
fn build_rules(project: &Project, selected: &[String]) -> anyhow::Result<Rules> {
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
            rules.push(Rule::new(name, i, spec, ctx).map_err(|e| anyhow!("{e}"))?);
        }
    }
    Ok(Rules { rules })
}
