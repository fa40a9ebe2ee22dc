//! Project commands that change the machine: `up`, `down`, `plan`, and the
//! service-addressed container verbs under `berth compose VERB`.
//!
//! The flags and output shapes only: the orchestration is
//! `project::up` / `project::down` / `project::logs`, and the executor
//! reaches the containers through the in-process engine
//! (`project::host::EngineBackend`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{anyhow, bail};

use super::project::ProjectArgs;
use super::{Context, Exit};
use crate::engine::{Engine, StartOptions};
use crate::project::actual::{self, ProjectContainer};
use crate::project::down::{DownRequest, RemoveImages};
pub use crate::project::logs::{merged_logs, LogFollower, MergedLogs};
use crate::project::planner;
pub use crate::project::up::BuildPolicy;
use crate::project::up::{self as orchestrate, project_services, stop_in_order};
use crate::project::{self, ImageDigests, PlanOptions, Project};
use crate::state::StateRoot;

/// `--pull` policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PullPolicy {
    Always,
    Missing,
    Never,
}

/// `berth up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Detached mode: start the containers in the background
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Wait for services to be running or healthy (implies -d)
    #[arg(long)]
    pub wait: bool,
    /// Seconds --wait waits at most
    #[arg(long = "wait-timeout", value_name = "SECONDS", default_value_t = 300)]
    pub wait_timeout: u64,
    /// Remove containers of services not in the manifest
    #[arg(long = "remove-orphans")]
    pub remove_orphans: bool,
    /// Recreate containers even if their configuration is unchanged
    #[arg(long = "force-recreate")]
    pub force_recreate: bool,
    /// Don't start linked services
    #[arg(long = "no-deps")]
    pub no_deps: bool,
    /// Pull images before starting: always, missing (default), never
    #[arg(long, value_enum, default_value = "missing")]
    pub pull: PullPolicy,
    /// Build images before starting containers (default: only missing ones)
    #[arg(long, conflicts_with = "no_build")]
    pub build: bool,
    /// Don't build an image, even if it's missing
    #[arg(long = "no-build")]
    pub no_build: bool,
    /// Watch source code and rebuild/refresh containers when files are updated (as `berth watch`), following the logs unless -d
    #[arg(long)]
    pub watch: bool,
    /// Only these services (and what they depend on)
    pub services: Vec<String>,
}

impl UpArgs {
    /// `up -d` for `services` with every other flag at its default.
    pub fn detached(project: ProjectArgs, services: Vec<String>) -> Self {
        UpArgs {
            project,
            detach: true,
            wait: false,
            wait_timeout: 300,
            remove_orphans: false,
            force_recreate: false,
            no_deps: false,
            pull: PullPolicy::Missing,
            build: false,
            no_build: false,
            watch: false,
            services,
        }
    }
}

impl UpArgs {
    fn build_policy(&self) -> BuildPolicy {
        match (self.build, self.no_build) {
            (true, _) => BuildPolicy::Always,
            (_, true) => BuildPolicy::Never,
            _ => BuildPolicy::Missing,
        }
    }
}

impl From<PullPolicy> for orchestrate::PullPolicy {
    fn from(p: PullPolicy) -> Self {
        match p {
            PullPolicy::Always => Self::Always,
            PullPolicy::Missing => Self::Missing,
            PullPolicy::Never => Self::Never,
        }
    }
}

/// What `plan` and `up` share: the desired project (images pulled per
/// `pull`; `None` never pulls), what exists of it, and the plan between them.
pub(crate) fn desired_and_plan(
    ctx: &Context,
    project_args: &ProjectArgs,
    images: Option<(PullPolicy, BuildPolicy)>,
    options: PlanOptions,
) -> anyhow::Result<(Project, project::Plan)> {
    let loaded = project_args.load()?;
    Ok(orchestrate::desired_and_plan(
        &ctx.root()?,
        &loaded,
        &project_args.profiles(),
        images.map(|(p, b)| (p.into(), b)),
        &options,
    )?)
}

/// `berth plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Plan as if with --remove-orphans
    #[arg(long = "remove-orphans")]
    pub remove_orphans: bool,
    /// Plan as if with --force-recreate
    #[arg(long = "force-recreate")]
    pub force_recreate: bool,
    /// Plan as if with --no-deps
    #[arg(long = "no-deps")]
    pub no_deps: bool,
    /// Print the plan as JSON
    #[arg(long, value_name = "FORMAT", value_parser = ["text", "json"])]
    pub format: Option<String>,
    pub services: Vec<String>,
}

/// `berth down`.
#[derive(Debug, clap::Args)]
pub struct DownArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Remove the project's named volumes too
    #[arg(short = 'v', long = "volumes")]
    pub volumes: bool,
    /// Remove images used by services: local (built without an `image` name) or all
    #[arg(long, value_name = "TYPE", value_parser = ["local", "all"])]
    pub rmi: Option<String>,
    /// Shutdown timeout in seconds (default: each service's stop_grace_period)
    #[arg(short = 't', long = "timeout")]
    pub timeout: Option<u64>,
    /// Remove containers of services not in the manifest
    #[arg(long = "remove-orphans")]
    pub remove_orphans: bool,
}

/// `berth compose [-f FILE] [-p NAME] VERB`: the project flags come before
/// the verb, as with `docker compose`, so `logs -f` can mean follow.
#[derive(Debug, clap::Args)]
pub struct ComposeArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    #[command(subcommand)]
    pub command: ComposeCommand,
}

/// The container verbs by service name.
#[derive(Debug, clap::Subcommand)]
pub enum ComposeCommand {
    /// List the project's containers
    Ps(ComposePs),
    /// Show the services' logs, merged in time order
    Logs(ComposeLogs),
    /// Run a command in a service's container
    Exec(ComposeExec),
    /// Start services' existing containers
    Start(ComposeServices),
    /// Stop services
    Stop(ComposeStop),
    /// Restart services
    Restart(ComposeStop),
    /// Kill services' containers
    Kill(ComposeKill),
    /// Remove services' stopped containers
    Rm(ComposeRm),
    /// Show the processes of services' containers
    Top(ComposeServices),
    /// Print the host address a service's port is published on
    Port(ComposePort),
    /// Build or rebuild the images of services with `build`
    Build(ComposeBuild),
    /// Bring the project up (same as `berth up`)
    Up(UpArgs),
    /// Tear the project down (same as `berth down`)
    Down(DownArgs),
    /// Show what `up` would change (same as `berth plan`)
    Plan(PlanArgs),
    /// Watch the services' files and sync, restart or rebuild them (same as `berth watch`)
    Watch(super::watch::WatchArgs),
}

#[derive(Debug, clap::Args)]
pub struct ComposeBuild {
    /// Do not use the cache when building
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Always try to pull a newer version of the base images
    #[arg(long)]
    pub pull: bool,
    /// Set build-time variables, over the manifest's `build.args`
    #[arg(long = "build-arg", value_name = "K=V")]
    pub build_args: Vec<String>,
    pub services: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct ComposePs {
    /// Show all containers, stopped ones too (default: running only)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Format output: table, json, a Go template ('{{json .}}'), or 'table TEMPLATE'
    #[arg(long)]
    pub format: Option<String>,
    pub services: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct ComposeLogs {
    /// Follow log output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Number of lines to show from the end of each container's log
    #[arg(short = 'n', long = "tail")]
    pub tail: Option<usize>,
    /// Don't print the `service-1 |` prefix
    #[arg(long = "no-log-prefix")]
    pub no_prefix: bool,
    pub services: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct ComposeExec {
    /// Which replica (default 1)
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    #[command(flatten)]
    pub flags: super::exec::ExecFlags,
    pub service: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct ComposePort {
    /// Which replica (default 1)
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    pub service: String,
    /// PRIVATE_PORT[/PROTO]
    pub port: String,
}

#[derive(Debug, clap::Args)]
pub struct ComposeServices {
    pub services: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct ComposeStop {
    /// Seconds to wait before killing
    #[arg(short = 't', long = "timeout")]
    pub timeout: Option<u64>,
    pub services: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct ComposeKill {
    /// Signal to send
    #[arg(short = 's', long, default_value = "KILL")]
    pub signal: String,
    pub services: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct ComposeRm {
    /// Don't ask; (stopped containers only unless -s)
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Stop the containers first
    #[arg(short = 's', long)]
    pub stop: bool,
    pub services: Vec<String>,
}

// ---------------------------------------------------------------- commands

/// `berth plan`.
pub fn plan(ctx: &Context, args: PlanArgs) -> anyhow::Result<()> {
    // Planning never pulls: an image not in the store is hashed without a
    // digest (and its services show as created).
    let (_, plan) = desired_and_plan(
        ctx,
        &args.project,
        None,
        PlanOptions {
            services: args.services.clone(),
            no_deps: args.no_deps,
            force_recreate: args.force_recreate,
            remove_orphans: args.remove_orphans,
        },
    )?;
    if ctx.global.json || args.format.as_deref() == Some("json") {
        super::output::print_json(&plan)?;
    } else {
        let text = project::render(&plan);
        print!("{text}");
        if !text.ends_with('\n') {
            println!();
        }
    }
    Ok(())
}

/// `berth up`.
pub fn up(ctx: &Context, args: UpArgs) -> anyhow::Result<()> {
    // Held while planning, applying and waiting; not while watching or
    // following logs.
    let lock = args.project.lock(ctx, "up")?;
    let root = ctx.root()?;
    {
        let (_, project) = args.project.resolve(&ImageDigests::new())?;
        orchestrate::check_ports_free(&root, &project, &args.services)?;
    }
    let (desired, plan) = desired_and_plan(
        ctx,
        &args.project,
        Some((args.pull, args.build_policy())),
        PlanOptions {
            services: args.services.clone(),
            no_deps: args.no_deps,
            force_recreate: args.force_recreate,
            remove_orphans: args.remove_orphans,
        },
    )?;
    let backend = orchestrate::apply(&root, &desired, &plan)?;
    let selected: Vec<String> = plan.services.iter().map(|s| s.service.clone()).collect();
    if args.wait {
        orchestrate::wait_ready(&backend, &selected, Duration::from_secs(args.wait_timeout))?;
    }
    drop(lock);
    if args.watch && args.detach {
        return super::watch::run(ctx, &args.project, &args.services, false);
    }
    if args.watch {
        return watch_in_foreground(ctx, &args, &backend.engine, &desired, &selected);
    }
    if args.wait || args.detach {
        return Ok(());
    }
    follow_until_interrupted(&backend.engine, &desired, &selected)
}

/// `up --watch` without `-d`: the services' logs, prefixed, beside watch's
/// own lines; Ctrl-C ends watch and stops the project, as a foreground `up`.
fn watch_in_foreground(
    ctx: &Context,
    args: &UpArgs,
    engine: &Engine,
    project: &Project,
    services: &[String],
) -> anyhow::Result<()> {
    static DONE: AtomicBool = AtomicBool::new(false);
    let logs = {
        let (engine, name, services) = (engine.clone(), project.name.clone(), services.to_vec());
        std::thread::spawn(move || -> std::io::Result<()> {
            let mut follower = LogFollower::new(true, false, None);
            while !DONE.load(Ordering::SeqCst) {
                let containers = project_services(&engine, &name, &services);
                follower.poll(engine.store(), &containers, None)?;
                std::thread::sleep(Duration::from_millis(100));
            }
            Ok(())
        })
    };
    let watched = super::watch::run(ctx, &args.project, &args.services, false);
    DONE.store(true, Ordering::SeqCst);
    let followed = logs
        .join()
        .map_err(|_| anyhow!("the log follower panicked"))?;
    watched?;
    followed?;
    stop_in_order(
        engine,
        project,
        services,
        &project_services(engine, &project.name, services),
    );
    Err(Exit::silent(130).into())
}

/// Foreground `up`: follows every service's log; Ctrl-C stops the project.
fn follow_until_interrupted(
    engine: &Engine,
    project: &Project,
    services: &[String],
) -> anyhow::Result<()> {
    super::interrupt::catch();
    let mut follower = LogFollower::new(true, false, None);
    loop {
        let containers = project_services(engine, &project.name, services);
        follower.poll(engine.store(), &containers, None)?;
        if super::interrupt::interrupted() {
            stop_in_order(engine, project, services, &containers);
            return Err(Exit::silent(130).into());
        }
        if !containers.is_empty()
            && containers
                .iter()
                .all(|c| !c.running && c.state.status != "restarting")
        {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `berth watch`: `up -d` unless `--no-up`, then watch.
pub fn watch(ctx: &Context, args: super::watch::WatchArgs) -> anyhow::Result<()> {
    let (_, project) = args.project.resolve(&ImageDigests::new())?;
    if let Some(s) = args
        .services
        .iter()
        .find(|s| !project.services.contains_key(*s))
    {
        bail!("no such service: {s}");
    }
    if !args.no_up {
        up(
            ctx,
            UpArgs::detached(args.project.clone(), args.services.clone()),
        )?;
    }
    super::watch::run(ctx, &args.project, &args.services, args.prune)
}

/// `berth down`.
pub fn down(ctx: &Context, args: DownArgs) -> anyhow::Result<()> {
    let _lock = args.project.lock(ctx, "down")?;
    let (_, desired) = args.project.resolve(&ImageDigests::new())?;
    let req = DownRequest {
        volumes: args.volumes,
        remove_orphans: args.remove_orphans,
        timeout: args.timeout,
        images: args.rmi.as_deref().map(|k| match k {
            "all" => RemoveImages::All,
            _ => RemoveImages::Local,
        }),
    };
    Ok(crate::project::down::down(&ctx.root()?, &desired, &req)?)
}

// ---------------------------------------------------------------- verbs

/// The project's containers of `services` (all when empty); unknown service
/// names are an error.
fn containers_of(
    ctx: &Context,
    project: &ProjectArgs,
    services: &[String],
) -> anyhow::Result<(StateRoot, Project, Vec<ProjectContainer>)> {
    let (_, desired) = project.resolve(&ImageDigests::new())?;
    for s in services {
        if !desired.services.contains_key(s) {
            bail!("no such service: {s}");
        }
    }
    let root = ctx.root()?;
    let store = crate::runtime::container::ContainerStore::open(&root)?;
    let all = actual::project_containers(&store, &desired.name)
        .into_iter()
        .filter(|c| services.is_empty() || services.iter().any(|s| s == c.service()))
        .collect();
    Ok((root, desired, all))
}

/// A container verb of the engine, by service.
enum Verb<'a> {
    Start,
    Stop(u64),
    Restart(u64),
    Kill(&'a str),
    Remove,
}

fn each_container(
    ctx: &Context,
    containers: &[ProjectContainer],
    verb: Verb,
) -> anyhow::Result<()> {
    let engine = Engine::open(&ctx.root()?)?;
    let opts = StartOptions {
        log_level: ctx.global.log_level.clone(),
        ..Default::default()
    };
    let mut failed = false;
    for c in containers {
        let id = &c.config.id;
        let (done, result) = match verb {
            Verb::Start => ("Started", engine.start(id, &opts).map(|_| ())),
            Verb::Stop(t) => ("Stopped", engine.stop(id, Some(t), None)),
            Verb::Restart(t) => ("Restarted", engine.restart(id, Some(t), None, &opts)),
            Verb::Kill(sig) => ("Killed", engine.kill(id, sig)),
            Verb::Remove => ("Removed", engine.remove(id, true, false)),
        };
        match result {
            Ok(()) => eprintln!(" Container {}  {done}", c.config.name),
            Err(e) => {
                eprintln!("error: {}: {e}", c.config.name);
                failed = true;
            }
        }
    }
    if failed {
        return Err(Exit::silent(1).into());
    }
    Ok(())
}

/// `berth compose VERB`.
pub fn run_group(ctx: &Context, args: ComposeArgs) -> anyhow::Result<()> {
    let project = &args.project;
    // The verbs that change containers take the project's lock.
    let _lock = match &args.command {
        ComposeCommand::Start(_) => Some("start"),
        ComposeCommand::Stop(_) => Some("stop"),
        ComposeCommand::Restart(_) => Some("restart"),
        ComposeCommand::Kill(_) => Some("kill"),
        ComposeCommand::Rm(_) => Some("rm"),
        _ => None,
    }
    .map(|verb| project.lock(ctx, verb))
    .transpose()?;
    match args.command {
        ComposeCommand::Up(mut a) => {
            a.project = a.project.or(project);
            up(ctx, a)
        }
        ComposeCommand::Down(mut a) => {
            a.project = a.project.or(project);
            down(ctx, a)
        }
        ComposeCommand::Plan(mut a) => {
            a.project = a.project.or(project);
            plan(ctx, a)
        }
        ComposeCommand::Watch(mut a) => {
            a.project = a.project.or(project);
            watch(ctx, a)
        }
        ComposeCommand::Build(a) => build(ctx, project, a),
        ComposeCommand::Ps(a) => ps(ctx, project, a),
        ComposeCommand::Logs(a) => logs(ctx, project, a),
        ComposeCommand::Exec(a) => exec(ctx, project, a),
        ComposeCommand::Port(a) => {
            let (_, _, cs) = containers_of(ctx, project, std::slice::from_ref(&a.service))?;
            let c = cs.iter().find(|c| c.replica() == a.index).ok_or_else(|| {
                anyhow!(
                    "service {} has no container with index {}",
                    a.service,
                    a.index
                )
            })?;
            super::network::port(
                ctx,
                super::network::PortArgs {
                    container: c.config.id.clone(),
                    port: Some(a.port),
                },
            )
        }
        ComposeCommand::Start(a) => {
            let (_, _, cs) = containers_of(ctx, project, &a.services)?;
            let cs: Vec<_> = cs.into_iter().filter(|c| !c.running).collect();
            each_container(ctx, &cs, Verb::Start)
        }
        ComposeCommand::Stop(a) => {
            let (_, p, mut cs) = containers_of(ctx, project, &a.services)?;
            cs.reverse();
            let cs: Vec<_> = cs.into_iter().filter(|c| c.running).collect();
            for c in &cs {
                let t = a.timeout.unwrap_or_else(|| {
                    p.services
                        .get(c.service())
                        .map(|s| s.spec.stop_grace_period.0.as_secs())
                        .unwrap_or(10)
                });
                each_container(ctx, std::slice::from_ref(c), Verb::Stop(t))?;
            }
            Ok(())
        }
        ComposeCommand::Restart(a) => {
            let (_, _, cs) = containers_of(ctx, project, &a.services)?;
            let t = a.timeout.unwrap_or(crate::engine::DEFAULT_STOP_TIMEOUT);
            each_container(ctx, &cs, Verb::Restart(t))
        }
        ComposeCommand::Kill(a) => {
            let (_, _, cs) = containers_of(ctx, project, &a.services)?;
            let cs: Vec<_> = cs.into_iter().filter(|c| c.running).collect();
            crate::engine::parse_signal(&a.signal)?;
            each_container(ctx, &cs, Verb::Kill(&a.signal))
        }
        ComposeCommand::Rm(a) => {
            let (_, _, cs) = containers_of(ctx, project, &a.services)?;
            let cs: Vec<_> = cs.into_iter().filter(|c| a.stop || !c.running).collect();
            if cs.is_empty() {
                eprintln!("No stopped containers");
                return Ok(());
            }
            if !a.force {
                let names: Vec<&str> = cs.iter().map(|c| c.config.name.as_str()).collect();
                if !super::container::confirm(&format!("Going to remove {}", names.join(", ")))? {
                    return Ok(());
                }
            }
            each_container(ctx, &cs, Verb::Remove)
        }
        ComposeCommand::Top(a) => {
            let (_, _, cs) = containers_of(ctx, project, &a.services)?;
            for c in cs.iter().filter(|c| c.running) {
                println!("{}", c.config.name);
                super::ps::top(
                    ctx,
                    super::ps::TopArgs {
                        container: c.config.id.clone(),
                    },
                )?;
                println!();
            }
            Ok(())
        }
    }
}

fn build(ctx: &Context, project: &ProjectArgs, a: ComposeBuild) -> anyhow::Result<()> {
    let (_, desired) = project.resolve(&ImageDigests::new())?;
    for s in &a.services {
        if !desired.services.contains_key(s) {
            bail!("no such service: {s}");
        }
    }
    let root = ctx.root()?;
    let mut extra = BTreeMap::new();
    for kv in &a.build_args {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| anyhow!("invalid --build-arg {kv:?}: use KEY=VALUE"))?;
        extra.insert(k.to_string(), v.to_string());
    }
    for (name, svc) in &desired.services {
        if !a.services.is_empty() && !a.services.contains(name) {
            continue;
        }
        let Some(spec) = &svc.spec.build else {
            eprintln!("{name} uses an image, skipping");
            continue;
        };
        let mut spec = spec.clone();
        spec.args.extend(extra.clone());
        orchestrate::build_service(
            &root,
            name,
            &svc.spec.image,
            &spec,
            a.no_cache,
            a.pull,
            None,
        )?;
    }
    Ok(())
}

fn ps(ctx: &Context, project: &ProjectArgs, a: ComposePs) -> anyhow::Result<()> {
    let (root, p, cs) = containers_of(ctx, project, &a.services)?;
    // Compose lists running containers unless -a asks for all.
    let cs: Vec<_> = cs.into_iter().filter(|c| a.all || c.running).collect();
    if a.quiet {
        for c in &cs {
            println!("{}", c.config.id);
        }
        return Ok(());
    }
    let published = crate::network::Networks::open(&root)?.published(None)?;
    let objects: Vec<serde_json::Value> = cs
        .iter()
        .map(|c| {
            let obs = super::ps::observe(&c.state);
            let mine: Vec<_> = published
                .iter()
                .filter(|x| x.container_id == c.config.id && c.running)
                .cloned()
                .collect();
            serde_json::json!({
                "ID": c.config.id, "Name": c.config.name, "Project": p.name,
                "Service": c.service(), "Image": c.config.image,
                "Command": super::ps::command_text(&c.config, true),
                "CreatedAt": c.config.created.to_rfc3339(),
                "RunningFor": super::output::human_age(c.config.created),
                "State": if c.running { "running" } else { c.state.status.as_str() },
                "Status": match c.status() {
                    planner::ContainerStatus::Unsupervised => super::ps::status_text(&c.state, &obs)
                        .replace("(supervisor dead)", "(unsupervised)"),
                    _ => super::ps::status_text(&c.state, &obs),
                },
                "Health": c.health().unwrap_or(""), "ExitCode": c.state.exit_code,
                "Ports": crate::network::store::ps_ports(&mine),
            })
        })
        .collect();
    super::output::print_listing(
        ctx,
        a.format.as_deref(),
        super::output::JsonShape::Document,
        &objects,
        &[
            ("ID", "CONTAINER ID"),
            ("Name", "NAME"),
            ("Image", "IMAGE"),
            ("Command", "COMMAND"),
            ("Service", "SERVICE"),
            ("RunningFor", "CREATED"),
            ("CreatedAt", "CREATED AT"),
            ("Status", "STATUS"),
            ("Ports", "PORTS"),
        ],
        "{{.Name}}\t{{.Image}}\t{{.Command}}\t{{.Service}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}",
    )
}

fn exec(ctx: &Context, project: &ProjectArgs, a: ComposeExec) -> anyhow::Result<()> {
    let (_, _, cs) = containers_of(ctx, project, std::slice::from_ref(&a.service))?;
    let c = cs.iter().find(|c| c.replica() == a.index).ok_or_else(|| {
        anyhow!(
            "service {} has no container with index {}",
            a.service,
            a.index
        )
    })?;
    super::exec::exec(
        ctx,
        super::exec::ExecArgs {
            flags: a.flags,
            container: c.config.id.clone(),
            command: a.command,
        },
    )
}

fn logs(ctx: &Context, project: &ProjectArgs, a: ComposeLogs) -> anyhow::Result<()> {
    let (root, desired, _) = containers_of(ctx, project, &a.services)?;
    let store = crate::runtime::container::ContainerStore::open(&root)?;
    merged_logs(
        &store,
        &desired.name,
        &a.services,
        &MergedLogs {
            follow: a.follow,
            timestamps: a.timestamps,
            tail: a.tail,
            since: None,
            prefix: !a.no_prefix,
        },
    )?;
    Ok(())
}
