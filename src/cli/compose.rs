//! Project commands that change the machine: `up`, `down`, `plan`, and the
//! service-addressed container verbs under `berth compose VERB`.
//!
//! `up` reads the actual state afresh, plans ([`project::plan`]) and applies
//! the plan with [`project::executor::apply`] over [`CliBackend`], which runs
//! berth's own container verbs (`run -d`, `start`, `stop`, `rm -f`) as child
//! processes: the very code paths of the single-container commands, one
//! process per container, so parallel services never fork from a
//! multi-threaded process. Networks and volumes are made in-process.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};

use super::project::ProjectArgs;
use super::{Context, Exit};
use crate::image::{ImageStore, Reference, StoreError};
use crate::network::{CreateOptions, Networks};
use crate::project::actual::{self, ProjectContainer, LABEL_SPEC};
use crate::project::executor::{self, ApplyOptions, Backend, Observed};
use crate::project::manifest::{MountType, Protocol, Restart};
use crate::project::model::{
    ContainerInstance, ServiceModel, LABEL_PROJECT, LABEL_SERVICE, LABEL_VOLUME_TARGET,
};
use crate::project::planner::{self, DownOptions};
use crate::project::{self, ImageDigests, PlanOptions, Project};
use crate::runtime::container::{ContainerStore, STATUS_CORRUPT};
use crate::state::StateRoot;
use crate::volume::VolumeStore;

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

/// When `up` builds the images of services with `build`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildPolicy {
    /// Build when the image is not in the store (Compose's default).
    Missing,
    /// `--build`: always (the cache makes an unchanged build cheap).
    Always,
    /// `--no-build`: never; a missing image is an error.
    Never,
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

/// What `plan` and `up` share: the desired project (images pulled per
/// `pull`; `None` never pulls), what exists of it, and the plan between them.
pub(crate) fn desired_and_plan(
    ctx: &Context,
    project_args: &ProjectArgs,
    images: Option<(PullPolicy, BuildPolicy)>,
    options: PlanOptions,
) -> anyhow::Result<(Project, project::Plan)> {
    let desired = resolve_with_images(ctx, project_args, images)?;
    let actual = actual::read(&ctx.root()?, &desired.name)?;
    let plan = project::plan(&desired, &actual, &options)?;
    Ok((desired, plan))
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

// ---------------------------------------------------------------- backend

/// Runs `berth --root ROOT ARGS...`; the error is its last stderr line.
pub(crate) fn berth(root: &Path, args: &[String]) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| format!("locating the berth binary: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.arg("--root")
        .arg(root)
        .args(args)
        .env_remove("BERTH_ROOT")
        .stdin(Stdio::null());
    // If `up` is killed, its in-flight steps die with it (the supervisors
    // they already spawned live on in their own sessions): the next `up`
    // then finds either no container, a created one, or a started one.
    // SAFETY: prctl is async-signal-safe.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let out = cmd.output().map_err(|e| format!("running berth: {e}"))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| l.strip_prefix("error: ").unwrap_or(l))
        .collect();
    if lines.is_empty() {
        return Err(format!("berth {} failed ({})", args[0], out.status));
    }
    Err(lines.join("; "))
}

/// Whether `run` on this build has a flag (the network layer adds `-p`,
/// `--network-alias`, user networks to `--network`).
fn run_has_flag(id: &str) -> bool {
    use clap::Args as _;
    let cmd = super::container::RunArgs::augment_args(clap::Command::new("run"));
    let found = cmd.get_arguments().any(|a| a.get_id() == id);
    found
}

fn ms(d: &crate::project::manifest::Duration) -> String {
    format!("{}ms", d.0.as_millis())
}

/// The volume behind an anonymous mount of a service replica (a manifest
/// volume without a name, or an image `VOLUME`): named after the replica and
/// the mount point, so a recreated container mounts the same one, as
/// Compose carries anonymous volumes over.
pub fn anonymous_volume_name(instance: &ContainerInstance, target: &str) -> String {
    use sha2::Digest as _;
    let hash = hex::encode(sha2::Sha256::digest(
        target.trim_end_matches('/').as_bytes(),
    ));
    format!("{}_{}", instance.name, &hash[..12])
}

/// The image's `VOLUME`s that no mount of the service covers.
fn uncovered_image_volumes(svc: &ServiceModel, image_volumes: &[String]) -> Vec<String> {
    let norm = |p: &str| p.trim_end_matches('/').to_string();
    let covered: Vec<String> = svc.spec.mounts.iter().map(|m| norm(&m.target)).collect();
    let mut out: Vec<String> = Vec::new();
    for v in image_volumes {
        if v.starts_with('/') && !covered.contains(&norm(v)) && !out.contains(&norm(v)) {
            out.push(norm(v));
        }
    }
    out
}

/// The anonymous volumes of a replica: (volume name, mount point).
pub fn anonymous_volumes(
    svc: &ServiceModel,
    instance: &ContainerInstance,
    image_volumes: &[String],
) -> Vec<(String, String)> {
    svc.spec
        .mounts
        .iter()
        .filter(|m| m.kind == MountType::Volume && m.source.is_none())
        .map(|m| m.target.clone())
        .chain(uncovered_image_volumes(svc, image_volumes))
        .map(|t| (anonymous_volume_name(instance, &t), t))
        .collect()
}

/// The `berth run -d` arguments that create `instance` of `svc`.
pub fn run_argv(
    svc: &ServiceModel,
    instance: &ContainerInstance,
    networks_wired: bool,
    image_volumes: &[String],
) -> Result<Vec<String>, String> {
    let spec = &svc.spec;
    let mut a: Vec<String> = vec![
        "run".into(),
        "-d".into(),
        "--name".into(),
        instance.name.clone(),
    ];
    let mut push = |k: &str, v: String| {
        a.push(k.to_string());
        a.push(v);
    };
    let mut labels = instance.labels.clone();
    labels.insert(
        LABEL_SPEC.to_string(),
        serde_json::to_string(spec).map_err(|e| e.to_string())?,
    );
    for (k, v) in &labels {
        push("--label", format!("{k}={v}"));
    }
    for (k, v) in &spec.environment {
        push("--env", format!("{k}={v}"));
    }
    if let Some(u) = &spec.user {
        push("--user", u.clone());
    }
    if let Some(w) = &spec.working_dir {
        push("--workdir", w.clone());
    }
    if let Some(h) = &spec.hostname {
        push("--hostname", h.clone());
    }
    let restart = match spec.restart {
        Restart::No => "no".to_string(),
        Restart::Always => "always".into(),
        Restart::UnlessStopped => "unless-stopped".into(),
        Restart::OnFailure(None) => "on-failure".into(),
        Restart::OnFailure(Some(n)) => format!("on-failure:{n}"),
    };
    push("--restart", restart);
    if let Some(m) = spec.resources.memory {
        push("--memory", m.to_string());
    }
    if let Some(c) = spec.resources.cpus {
        push("--cpus", c.to_string());
    }
    if let Some(p) = spec.resources.pids {
        push("--pids-limit", p.to_string());
    }
    push("--stop-signal", spec.stop_signal.clone());
    push(
        "--stop-timeout",
        spec.stop_grace_period.0.as_secs().to_string(),
    );
    if let Some(n) = spec.logging.max_size {
        push("--log-opt", format!("max-size={n}"));
    }
    if let Some(n) = spec.logging.max_file {
        push("--log-opt", format!("max-file={n}"));
    }
    if spec.init {
        a.push("--init".into());
    }
    if spec.tty {
        a.push("-t".into());
    }
    if spec.stdin_open {
        a.push("-i".into());
    }
    if let Some(h) = &spec.healthcheck {
        let cmd = match h.test.as_deref() {
            Some([kind, rest @ ..]) if kind == "CMD" => Some(shell_words::join(rest)),
            Some([kind, s]) if kind == "CMD-SHELL" => Some(s.clone()),
            _ => None,
        };
        if let Some(cmd) = cmd {
            a.push("--health-cmd".into());
            a.push(cmd);
            a.push("--health-interval".into());
            a.push(ms(&h.interval));
            a.push("--health-timeout".into());
            a.push(ms(&h.timeout));
            a.push("--health-start-period".into());
            a.push(ms(&h.start_period));
            a.push("--health-start-interval".into());
            a.push(ms(&h.start_interval));
            a.push("--health-retries".into());
            a.push(h.retries.to_string());
        }
    }
    for m in &spec.mounts {
        let ro = if m.read_only { ":ro" } else { "" };
        match m.kind {
            MountType::Bind => {
                let src = m.source.as_deref().ok_or("bind mount without a source")?;
                if m.create_host_path {
                    std::fs::create_dir_all(src)
                        .map_err(|e| format!("creating bind source {src}: {e}"))?;
                }
                a.push("--volume".into());
                a.push(format!("{src}:{}{ro}", m.target));
            }
            MountType::Volume => {
                let name = match m.source.as_deref() {
                    Some(name) => name.to_string(),
                    None => anonymous_volume_name(instance, &m.target),
                };
                let opts = match (m.read_only, m.nocopy) {
                    (false, false) => "",
                    (true, false) => ":ro",
                    (false, true) => ":nocopy",
                    (true, true) => ":ro,nocopy",
                };
                a.push("--volume".into());
                a.push(format!("{name}:{}{opts}", m.target));
            }
            MountType::Tmpfs => {
                let mut opts = Vec::new();
                if let Some(s) = m.tmpfs_size {
                    opts.push(format!("size={s}"));
                }
                if let Some(mode) = m.tmpfs_mode {
                    opts.push(format!("mode={mode:o}"));
                }
                a.push("--tmpfs".into());
                a.push(if opts.is_empty() {
                    m.target.clone()
                } else {
                    format!("{}:{}", m.target, opts.join(","))
                });
            }
        }
    }
    for target in uncovered_image_volumes(svc, image_volumes) {
        a.push("--volume".into());
        a.push(format!(
            "{}:{target}",
            anonymous_volume_name(instance, &target)
        ));
    }
    if networks_wired {
        if let Some((net, att)) = spec.networks.iter().next() {
            a.push("--network".into());
            a.push(net.clone());
            for alias in &att.aliases {
                a.push("--network-alias".into());
                a.push(alias.clone());
            }
        }
        for p in &spec.ports {
            a.push("--publish".into());
            a.push(publish_spec(p));
        }
    }
    let command = spec.command.clone();
    match &spec.entrypoint {
        Some(ep) => {
            a.push("--entrypoint".into());
            a.push(ep.first().cloned().unwrap_or_default());
            a.push(spec.image.clone());
            a.extend(ep.iter().skip(1).cloned());
            a.extend(command.unwrap_or_default());
        }
        None => {
            a.push(spec.image.clone());
            a.extend(command.unwrap_or_default());
        }
    }
    Ok(a)
}

/// The executor's backend over berth's own commands.
pub struct CliBackend {
    pub root: StateRoot,
    pub project: String,
    pub networks_wired: bool,
    pub quiet: bool,
}

impl CliBackend {
    fn root_path(&self) -> &Path {
        self.root.path()
    }
}

fn err_string<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

impl Backend for CliBackend {
    fn create_network(&self, project: &Project, key: &str) -> Result<(), String> {
        let n = &project.networks[key];
        let subnet = n
            .subnet
            .as_deref()
            .map(|s| s.parse().map_err(|e| format!("invalid subnet {s:?}: {e}")))
            .transpose()?;
        let nets = Networks::open(&self.root).map_err(err_string)?;
        if nets.get(&n.name).is_ok() {
            return Ok(());
        }
        nets.create(&CreateOptions {
            name: n.name.clone(),
            subnet,
            internal: n.internal,
            labels: n.labels.clone(),
        })
        .map(|_| ())
        .map_err(err_string)
    }
    fn remove_network(&self, name: &str) -> Result<(), String> {
        let nets = Networks::open(&self.root).map_err(err_string)?;
        nets.remove(name).map(|_| ()).map_err(err_string)
    }
    fn create_volume(&self, project: &Project, key: &str) -> Result<(), String> {
        let v = &project.volumes[key];
        VolumeStore::open(&self.root)
            .and_then(|s| s.create(&v.name, &v.labels))
            .map(|_| ())
            .map_err(err_string)
    }
    fn remove_volume(&self, name: &str) -> Result<(), String> {
        VolumeStore::open(&self.root)
            .and_then(|s| s.remove(name))
            .map(|_| ())
            .map_err(err_string)
    }
    fn create(&self, svc: &ServiceModel, instance: &ContainerInstance) -> Result<(), String> {
        let volumes = VolumeStore::open(&self.root).map_err(err_string)?;
        let image_volumes = ImageStore::open(&self.root)
            .map_err(err_string)
            .and_then(|store| {
                super::container_image::image_volumes(&store, &svc.spec.image).map_err(err_string)
            })?;
        for (name, target) in anonymous_volumes(svc, instance, &image_volumes) {
            let labels = BTreeMap::from([
                (LABEL_PROJECT.to_string(), self.project.clone()),
                (LABEL_SERVICE.to_string(), svc.name.clone()),
                (LABEL_VOLUME_TARGET.to_string(), target),
            ]);
            volumes
                .create_with(&name, &labels, true)
                .map_err(err_string)?;
        }
        // A container of this name left by an interrupted run is replaced.
        if let Ok(store) = ContainerStore::open(&self.root) {
            if let Ok(id) = store.resolve(&instance.name) {
                berth(self.root_path(), &["rm".into(), "-f".into(), id])?;
            }
        }
        let argv = run_argv(svc, instance, self.networks_wired, &image_volumes)?;
        berth(self.root_path(), &argv)?;
        if self.networks_wired {
            // `run` joins the first network; the others are connected.
            for (net, att) in svc.spec.networks.iter().skip(1) {
                let mut a = vec!["network".to_string(), "connect".into()];
                for alias in &att.aliases {
                    a.push("--alias".into());
                    a.push(alias.clone());
                }
                a.push(net.clone());
                a.push(instance.name.clone());
                berth(self.root_path(), &a)?;
            }
        }
        Ok(())
    }
    fn start(&self, id: &str) -> Result<(), String> {
        // A start in flight (e.g. from a run of `up` that was killed while
        // its `run -d` went on): let it finish rather than race it.
        let store = ContainerStore::open(&self.root).map_err(err_string)?;
        let end = Instant::now() + Duration::from_secs(30);
        while let Ok(st) = store.state(id) {
            // A supervisor spawned just before its parent died may not
            // have recorded itself yet: give a fresh record a moment.
            let fresh = store
                .config(id)
                .map(|c| chrono::Utc::now() - c.created < chrono::Duration::seconds(3))
                .unwrap_or(false);
            let starting = st.status == "created"
                && ((st.supervisor_pid > 0
                    && crate::runtime::container::pid_alive(st.supervisor_pid))
                    || (st.supervisor_pid == 0 && fresh));
            if actual::is_running(&st) {
                return Ok(());
            }
            if !starting || Instant::now() > end {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        berth(self.root_path(), &["start".into(), id.into()]).map(|_| ())
    }
    fn restart(&self, id: &str, grace: Duration) -> Result<(), String> {
        let t = grace.as_secs().to_string();
        berth(
            self.root_path(),
            &["restart".into(), "-t".into(), t, id.into()],
        )
        .map(|_| ())
    }
    fn remove(&self, id: &str, grace: Duration) -> Result<(), String> {
        let t = grace.as_secs().to_string();
        let store = ContainerStore::open(&self.root).map_err(err_string)?;
        if let Ok(st) = store.observed_state(id) {
            // A corrupt record cannot take a stop request: `rm -f` kills
            // what its cgroup holds.
            if actual::is_running(&st) && st.status != STATUS_CORRUPT {
                berth(
                    self.root_path(),
                    &["stop".into(), "-t".into(), t, id.into()],
                )?;
            }
        } else {
            return Ok(()); // already gone
        }
        berth(self.root_path(), &["rm".into(), "-f".into(), id.into()]).map(|_| ())
    }
    fn observe(&self, service: &str) -> Vec<Observed> {
        let Ok(store) = ContainerStore::open(&self.root) else {
            return Vec::new();
        };
        actual::project_containers(&store, &self.project)
            .into_iter()
            .filter(|c| c.service() == service)
            .map(|c| observed(&c))
            .collect()
    }
    fn progress(&self, name: &str, what: &str) {
        if !self.quiet {
            eprintln!(" {name}  {what}");
        }
    }
}

fn observed(c: &ProjectContainer) -> Observed {
    use crate::project::planner::ContainerStatus;
    let sound = !matches!(
        c.status(),
        ContainerStatus::Unsupervised | ContainerStatus::Corrupt
    );
    Observed {
        running: c.running && sound,
        status: match c.status() {
            ContainerStatus::Unsupervised => "unsupervised".into(),
            ContainerStatus::Corrupt => "corrupt".into(),
            _ if c.running => "running".into(),
            _ => c.state.status.clone(),
        },
        exit_code: c.state.exit_code,
        health: c.health().map(str::to_string),
        up_for: match c.state.started_at {
            Some(at) if c.running => (chrono::Utc::now() - at).to_std().unwrap_or_default(),
            _ => Duration::ZERO,
        },
    }
}

// ---------------------------------------------------------------- images

/// Resolves the project with the digests of its images, building and
/// pulling per policy (`None`: only look in the store, never fail for a
/// missing image).
pub(crate) fn resolve_with_images(
    ctx: &Context,
    args: &ProjectArgs,
    images: Option<(PullPolicy, BuildPolicy)>,
) -> anyhow::Result<Project> {
    let root = ctx.root()?;
    let (loaded, first) = args.resolve(&ImageDigests::new())?;
    let store = ImageStore::open(&root).context("opening the image store")?;
    let mut digests = ImageDigests::new();
    for (name, svc) in &first.services {
        let image = &svc.spec.image;
        if digests.contains_key(image) {
            continue;
        }
        let found = match store.resolve(image) {
            Ok(img) => Some(img),
            Err(StoreError::NotFound(_)) => None,
            Err(e) => return Err(e).with_context(|| format!("looking up image {image}")),
        };
        let Some((pull, build)) = images else {
            if let Some(img) = found {
                digests.insert(image.clone(), img.id.to_string());
            }
            continue;
        };
        if let Some(spec) = &svc.spec.build {
            match (build, &found) {
                (BuildPolicy::Always, _) | (BuildPolicy::Missing, None) => {
                    let img = build_service(&root, name, image, spec, false, false, None)?;
                    digests.insert(image.clone(), img.id.to_string());
                    continue;
                }
                (BuildPolicy::Never, None) => bail!(
                    "service {name} needs image {image}, which is not in the store, and --no-build was given"
                ),
                (_, Some(_)) => {}
            }
        }
        let img = match (pull, found) {
            (PullPolicy::Always, _) if svc.spec.build.is_none() => {
                let r = Reference::parse(image)
                    .map_err(|e| anyhow!("service {name}: invalid image {image:?}: {e}"))?;
                crate::registry::pull(&root, &r, None, &crate::registry::Progress::auto())
                    .with_context(|| format!("service {name}"))?
            }
            (_, Some(img)) => img,
            (PullPolicy::Never, None) => {
                bail!("image {image} of service {name} is not in the store and --pull never was given")
            }
            (_, None) => {
                let r = Reference::parse(image)
                    .map_err(|e| anyhow!("service {name}: invalid image {image:?}: {e}"))?;
                crate::registry::pull_missing(&root, &r, None)
                    .with_context(|| format!("service {name}"))?
            }
        };
        digests.insert(image.clone(), img.id.to_string());
    }
    Ok(project::resolve(&loaded, &args.profiles(), &digests)?)
}

/// Builds the image of `service` from its `build` section, tagged `image`,
/// with the builder's classic output on stderr.
pub(crate) fn build_service(
    root: &StateRoot,
    service: &str,
    image: &str,
    spec: &crate::project::model::BuildSpec,
    no_cache: bool,
    pull: bool,
    interrupted: Option<&'static AtomicBool>,
) -> anyhow::Result<crate::image::store::Image> {
    let tag = Reference::parse(image)
        .map_err(|e| anyhow!("service {service}: invalid image name {image:?}: {e}"))?;
    eprintln!("Building {service}");
    let req = crate::build::engine::BuildRequest {
        context: spec.context.clone(),
        dockerfile: Some(spec.context.join(&spec.dockerfile)),
        tags: vec![tag],
        build_args: spec.args.clone(),
        target: spec.target.clone(),
        no_cache,
        pull,
        interrupted,
        ..Default::default()
    };
    crate::build::engine::build(root, &req, &mut std::io::stderr())
        .with_context(|| format!("building the image of service {service}"))
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

/// A port mapping as `run`'s `--publish` value.
fn publish_spec(p: &crate::project::model::PortMapping) -> String {
    let proto = match p.protocol {
        Protocol::Tcp => "",
        Protocol::Udp => "/udp",
        Protocol::Sctp => "/sctp",
    };
    let host = match (p.host_ip, p.host_port) {
        (Some(ip), Some(port)) => format!("{ip}:{port}:"),
        (Some(ip), None) => format!("{ip}::"),
        (None, Some(port)) => format!("{port}:"),
        (None, None) => String::new(),
    };
    format!("{host}{}{proto}", p.container_port)
}

/// Refuses `up` before it builds, pulls or creates anything when a host
/// port that a service publishes is held by a process or by a container of
/// another project (the project's own containers keep or hand over theirs).
fn check_ports_free(ctx: &Context, args: &UpArgs) -> anyhow::Result<()> {
    let (_, project) = args.project.resolve(&ImageDigests::new())?;
    let root = ctx.root()?;
    let store = ContainerStore::open(&root)?;
    let ours: Vec<String> = actual::project_containers(&store, &project.name)
        .into_iter()
        .map(|c| c.config.id)
        .collect();
    let nets = Networks::open(&root)?;
    for (name, svc) in &project.services {
        if !args.services.is_empty() && !args.services.contains(name) {
            continue;
        }
        let specs: Vec<String> = svc.spec.ports.iter().map(publish_spec).collect();
        nets.check_free(&specs, &ours).map_err(|e| {
            anyhow!("service {name} cannot publish its ports: {e}; nothing was started (free the port or change services.{name}.ports)")
        })?;
    }
    Ok(())
}

/// `berth up`.
pub fn up(ctx: &Context, args: UpArgs) -> anyhow::Result<()> {
    // Held while planning, applying and waiting; not while watching or
    // following logs.
    let lock = args.project.lock(ctx, "up")?;
    if run_has_flag("publish") {
        check_ports_free(ctx, &args)?;
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
    let backend = apply_plan(ctx, &desired, &plan)?;
    let selected: Vec<String> = plan.services.iter().map(|s| s.service.clone()).collect();
    if args.wait {
        wait_ready(&backend, &selected, Duration::from_secs(args.wait_timeout))?;
    }
    drop(lock);
    if args.watch && args.detach {
        return super::watch::run(ctx, &args.project, &args.services, false);
    }
    if args.watch {
        return watch_in_foreground(ctx, &args, &backend.root, &desired, &selected);
    }
    if args.wait || args.detach {
        return Ok(());
    }
    follow_until_interrupted(&backend.root, &desired, &selected)
}

/// `up --watch` without `-d`: the services' logs, prefixed, beside watch's
/// own lines; Ctrl-C ends watch and stops the project, as a foreground `up`.
fn watch_in_foreground(
    ctx: &Context,
    args: &UpArgs,
    root: &StateRoot,
    project: &Project,
    services: &[String],
) -> anyhow::Result<()> {
    static DONE: AtomicBool = AtomicBool::new(false);
    let logs = {
        let (root, name, services) = (root.clone(), project.name.clone(), services.to_vec());
        std::thread::spawn(move || -> anyhow::Result<()> {
            let store = ContainerStore::open(&root)?;
            let mut follower = LogFollower::new(true, false, None);
            while !DONE.load(Ordering::SeqCst) {
                let containers = project_services(&store, &name, &services);
                follower.poll(&store, &containers, None)?;
                std::thread::sleep(Duration::from_millis(100));
            }
            Ok(())
        })
    };
    let watched = super::watch::run(ctx, &args.project, &args.services, false);
    DONE.store(true, Ordering::SeqCst);
    let followed = logs
        .join()
        .unwrap_or_else(|_| Err(anyhow!("the log follower panicked")));
    watched?;
    followed?;
    let store = ContainerStore::open(root)?;
    stop_in_order(
        root,
        project,
        services,
        &project_services(&store, &project.name, services),
    );
    Err(Exit::silent(130).into())
}

/// The containers of the given services of project `name`.
fn project_services(
    store: &ContainerStore,
    name: &str,
    services: &[String],
) -> Vec<ProjectContainer> {
    actual::project_containers(store, name)
        .into_iter()
        .filter(|c| services.iter().any(|s| s == c.service()))
        .collect()
}

/// Stops the running containers, dependents first (`services` is in
/// dependency order), each with its service's grace period.
fn stop_in_order(
    root: &StateRoot,
    project: &Project,
    services: &[String],
    containers: &[ProjectContainer],
) {
    eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
    let mut order: Vec<&ProjectContainer> = containers.iter().collect();
    order.sort_by_key(|c| std::cmp::Reverse(services.iter().position(|s| s == c.service())));
    for c in order.into_iter().filter(|c| c.running) {
        let grace = project
            .services
            .get(c.service())
            .map(|s| s.spec.stop_grace_period.0.as_secs())
            .unwrap_or(10);
        eprintln!(" Container {}  Stopping", c.config.name);
        let _ = berth(
            root.path(),
            &[
                "stop".into(),
                "-t".into(),
                grace.to_string(),
                c.config.id.clone(),
            ],
        );
        eprintln!(" Container {}  Stopped", c.config.name);
    }
}

/// Applies a plan as `up` does (warnings, then the executor over
/// [`CliBackend`]); returns the backend for what follows.
pub(crate) fn apply_plan(
    ctx: &Context,
    desired: &Project,
    plan: &project::Plan,
) -> anyhow::Result<CliBackend> {
    let root = ctx.root()?;
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
    let networks_wired = run_has_flag("publish");
    if !networks_wired {
        for (name, svc) in &desired.services {
            if !svc.spec.ports.is_empty() {
                eprintln!(
                    "warning: service {name}: ports are not published: this build's container runtime does not attach containers to networks yet"
                );
            }
        }
    }
    let backend = CliBackend {
        root,
        project: desired.name.clone(),
        networks_wired,
        quiet: false,
    };
    if plan.is_noop() {
        eprintln!("project {}: nothing changed", desired.name);
    } else {
        let recorder = executor::Recorder::new(&backend);
        if let Err(e) = executor::apply(desired, plan, &recorder, ApplyOptions::default()) {
            // Take back what this run made: its containers, then its networks.
            let (networks, containers) = recorder.made();
            let store = ContainerStore::open(&backend.root)?;
            for name in containers.iter().rev() {
                if let Ok(id) = store.resolve(name) {
                    if berth(backend.root_path(), &["rm".into(), "-f".into(), id]).is_ok() {
                        backend.progress(&format!("Container {name}"), "Removed");
                    }
                }
            }
            for n in networks.iter().rev() {
                if backend.remove_network(n).is_ok() {
                    backend.progress(&format!("Network {n}"), "Removed");
                }
            }
            return Err(anyhow!("{e}"));
        }
    }
    Ok(backend)
}

fn wait_ready(backend: &CliBackend, services: &[String], timeout: Duration) -> anyhow::Result<()> {
    let end = Instant::now() + timeout;
    loop {
        let now: BTreeMap<String, Vec<Observed>> = services
            .iter()
            .map(|s| (s.clone(), backend.observe(s)))
            .collect();
        match executor::readiness(&now) {
            Ok(None) => return Ok(()),
            Ok(Some((svc, status))) if Instant::now() > end => {
                bail!(
                    "service {svc} is not ready after {}s: {status}",
                    timeout.as_secs()
                )
            }
            Ok(Some(_)) => {}
            Err((svc, why)) => bail!("service {svc} {why}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Foreground `up`: follows every service's log; Ctrl-C stops the project.
fn follow_until_interrupted(
    root: &StateRoot,
    project: &Project,
    services: &[String],
) -> anyhow::Result<()> {
    super::interrupt::catch();
    let store = ContainerStore::open(root)?;
    let mut follower = LogFollower::new(true, false, None);
    loop {
        let containers = project_services(&store, &project.name, services);
        follower.poll(&store, &containers, None)?;
        if super::interrupt::interrupted() {
            stop_in_order(root, project, services, &containers);
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

/// `berth down`.
pub fn down(ctx: &Context, args: DownArgs) -> anyhow::Result<()> {
    let _lock = args.project.lock(ctx, "down")?;
    let (_, desired) = args.project.resolve(&ImageDigests::new())?;
    let root = ctx.root()?;
    let actual = actual::read(&root, &desired.name)?;
    let plan = planner::plan_down(
        &desired,
        &actual,
        DownOptions {
            volumes: args.volumes,
            remove_orphans: args.remove_orphans,
        },
    );
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
    let backend = CliBackend {
        root: root.clone(),
        project: desired.name.clone(),
        networks_wired: false,
        quiet: false,
    };
    let grace = |svc: &str| {
        args.timeout.map(Duration::from_secs).unwrap_or_else(|| {
            desired
                .services
                .get(svc)
                .map(|s| s.spec.stop_grace_period.0)
                .unwrap_or(crate::project::model::DEFAULT_STOP_GRACE)
        })
    };
    let mut failed = Vec::new();
    // Dependents first: stages of the down plan are already reversed; the
    // containers of one stage go in parallel.
    let all: Vec<&planner::ContainerPlan> = plan.containers().collect();
    for stage in plan
        .stages
        .iter()
        .cloned()
        .chain(std::iter::once(Vec::new()))
    {
        let batch: Vec<&&planner::ContainerPlan> = if stage.is_empty() {
            all.iter()
                .filter(|c| !desired.services.contains_key(&c.service))
                .collect()
        } else {
            all.iter().filter(|c| stage.contains(&c.service)).collect()
        };
        let errors = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for c in batch {
                let (backend, errors) = (&backend, &errors);
                let g = grace(&c.service);
                s.spawn(move || {
                    if let planner::Action::Remove { id, .. } = &c.action {
                        backend.progress(&format!("Container {}", c.name), "Stopping");
                        match backend.remove(id, g) {
                            Ok(()) => backend.progress(&format!("Container {}", c.name), "Removed"),
                            Err(e) => errors
                                .lock()
                                .expect("lock")
                                .push(format!("{}: {e}", c.name)),
                        }
                    }
                });
            }
        });
        failed.extend(errors.into_inner().expect("joined"));
    }
    if !failed.is_empty() {
        bail!("removing containers: {}", failed.join("; "));
    }
    for n in &plan.networks {
        backend
            .remove_network(&n.name)
            .map_err(|e| anyhow!("removing network {}: {e}", n.name))?;
        backend.progress(&format!("Network {}", n.name), "Removed");
    }
    for v in &plan.volumes {
        backend
            .remove_volume(&v.name)
            .map_err(|e| anyhow!("removing volume {}: {e}", v.name))?;
        backend.progress(&format!("Volume {}", v.name), "Removed");
    }
    if let Some(kind) = &args.rmi {
        // `local`: images built for services without their own `image`
        // name (Compose's rule); `all`: every service's image.
        let local = |s: &ServiceModel| {
            s.spec.build.is_some() && s.spec.image == format!("{}-{}", desired.name, s.name)
        };
        {
            let mut images: Vec<&String> = desired
                .services
                .values()
                .filter(|s| kind == "all" || local(s))
                .map(|s| &s.spec.image)
                .collect();
            images.sort();
            images.dedup();
            for image in images {
                match berth(root.path(), &["rmi".into(), image.clone()]) {
                    Ok(_) => backend.progress(&format!("Image {image}"), "Removed"),
                    Err(e) if e.contains("No such image") || e.contains("not found") => {}
                    Err(e) => eprintln!("warning: removing image {image}: {e}"),
                }
            }
        }
    }
    Ok(())
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
    let store = ContainerStore::open(&root)?;
    let all = actual::project_containers(&store, &desired.name)
        .into_iter()
        .filter(|c| services.is_empty() || services.iter().any(|s| s == c.service()))
        .collect();
    Ok((root, desired, all))
}

fn each_container(
    root: &StateRoot,
    containers: &[ProjectContainer],
    verb: &[&str],
) -> anyhow::Result<()> {
    let mut failed = false;
    for c in containers {
        let mut argv: Vec<String> = verb.iter().map(|s| s.to_string()).collect();
        argv.push(c.config.id.clone());
        match berth(root.path(), &argv) {
            Ok(_) => eprintln!(" Container {}  {}", c.config.name, done_word(verb[0])),
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

fn done_word(verb: &str) -> &'static str {
    match verb {
        "start" => "Started",
        "stop" => "Stopped",
        "restart" => "Restarted",
        "kill" => "Killed",
        "rm" => "Removed",
        _ => "Done",
    }
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
            super::watch::watch(ctx, a)
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
            let (root, _, cs) = containers_of(ctx, project, &a.services)?;
            let cs: Vec<_> = cs.into_iter().filter(|c| !c.running).collect();
            each_container(&root, &cs, &["start"])
        }
        ComposeCommand::Stop(a) => {
            let (root, p, mut cs) = containers_of(ctx, project, &a.services)?;
            cs.reverse();
            let cs: Vec<_> = cs.into_iter().filter(|c| c.running).collect();
            for c in &cs {
                let t = a.timeout.unwrap_or_else(|| {
                    p.services
                        .get(c.service())
                        .map(|s| s.spec.stop_grace_period.0.as_secs())
                        .unwrap_or(10)
                });
                each_container(
                    &root,
                    std::slice::from_ref(c),
                    &["stop", "-t", &t.to_string()],
                )?;
            }
            Ok(())
        }
        ComposeCommand::Restart(a) => {
            let (root, _, cs) = containers_of(ctx, project, &a.services)?;
            let t = a.timeout.unwrap_or(10).to_string();
            each_container(&root, &cs, &["restart", "-t", &t])
        }
        ComposeCommand::Kill(a) => {
            let (root, _, cs) = containers_of(ctx, project, &a.services)?;
            let cs: Vec<_> = cs.into_iter().filter(|c| c.running).collect();
            each_container(&root, &cs, &["kill", "-s", &a.signal])
        }
        ComposeCommand::Rm(a) => {
            let (root, _, cs) = containers_of(ctx, project, &a.services)?;
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
            each_container(&root, &cs, &["rm", "-f"])
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
        build_service(
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
    let store = ContainerStore::open(&root)?;
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
    )
}

/// How [`merged_logs`] prints.
pub struct MergedLogs {
    pub follow: bool,
    pub timestamps: bool,
    /// Lines from the end of each container's log.
    pub tail: Option<usize>,
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Print the `service-N | ` prefix.
    pub prefix: bool,
}

/// Prints the logs of `project`'s containers of `services` (all when empty)
/// merged in time order; with `follow`, until none of them runs. The set of
/// containers is read afresh on every poll, so a recreated one is followed.
pub fn merged_logs(
    store: &ContainerStore,
    project: &str,
    services: &[String],
    how: &MergedLogs,
) -> anyhow::Result<()> {
    let mut follower = LogFollower::new(how.prefix, how.timestamps, how.since);
    let pick = || -> Vec<ProjectContainer> {
        actual::project_containers(store, project)
            .into_iter()
            .filter(|c| services.is_empty() || services.iter().any(|s| s == c.service()))
            .collect()
    };
    let cs = pick();
    follower.poll(store, &cs, how.tail)?;
    if how.follow {
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let cs = pick();
            follower.poll(store, &cs, None)?;
            if !cs
                .iter()
                .any(|c| c.running || c.state.status == "restarting")
            {
                follower.poll(store, &cs, None)?;
                break;
            }
        }
    }
    Ok(())
}

/// Reads the containers' `log.json` files from where it left off and prints
/// new records merged in time order, with coloured `service-N | ` prefixes.
struct LogFollower {
    followers: BTreeMap<String, crate::runtime::log::Follower>,
    prefix: bool,
    timestamps: bool,
    since: Option<chrono::DateTime<chrono::Utc>>,
    colour: bool,
}

const COLOURS: &[&str] = &["36", "33", "32", "35", "34", "96", "93", "92", "95", "94"];

impl LogFollower {
    fn new(prefix: bool, timestamps: bool, since: Option<chrono::DateTime<chrono::Utc>>) -> Self {
        Self {
            followers: BTreeMap::new(),
            prefix,
            timestamps,
            since,
            colour: std::io::IsTerminal::is_terminal(&std::io::stdout()),
        }
    }

    fn poll(
        &mut self,
        store: &ContainerStore,
        containers: &[ProjectContainer],
        tail: Option<usize>,
    ) -> anyhow::Result<()> {
        let width = containers
            .iter()
            .map(|c| c.service().len() + 1 + c.replica().to_string().len())
            .max()
            .unwrap_or(0);
        let mut records: Vec<(chrono::DateTime<chrono::Utc>, usize, String)> = Vec::new();
        for (i, c) in containers.iter().enumerate() {
            let path: PathBuf = store.dir(&c.config.id).join("log.json");
            let mut recs = Vec::new();
            if !self.followers.contains_key(&c.config.id) {
                let (old, follower) = crate::runtime::log::Follower::history(&path)?;
                recs = old;
                self.followers.insert(c.config.id.clone(), follower);
            }
            if let Some(f) = self.followers.get_mut(&c.config.id) {
                recs.extend(f.read()?);
            }
            let recs = crate::runtime::log::select(recs, self.since, tail);
            let name = format!("{}-{}", c.service(), c.replica());
            let colour = COLOURS[i % COLOURS.len()];
            for r in recs {
                let mut line = String::new();
                if self.prefix {
                    let p = format!("{name:<width$} | ");
                    if self.colour {
                        line.push_str(&format!("\x1b[{colour}m{p}\x1b[0m"));
                    } else {
                        line.push_str(&p);
                    }
                }
                if self.timestamps {
                    line.push_str(&r.time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true));
                    line.push(' ');
                }
                line.push_str(r.log.trim_end_matches('\n'));
                records.push((r.time, i, line));
            }
        }
        records.sort_by_key(|r| (r.0, r.1));
        let mut out = std::io::stdout().lock();
        for (_, _, line) in records {
            if writeln!(out, "{line}").is_err() {
                return Ok(());
            }
        }
        let _ = out.flush();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_has_known_flags() {
        assert!(run_has_flag("name"));
        assert!(!run_has_flag("no-such-flag"));
    }
}
