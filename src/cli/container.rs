//! Container verbs: `run`, `create`, `start`, `stop`, `kill`, `restart`,
//! `rm`, `wait`, `attach`, `container prune`, and the hidden `__supervise`
//! and `__init` entry points.
//!
//! Flags, output and exit codes follow Docker: `run -d`/`create` print the
//! full id; `start`/`stop`/`kill`/`rm` echo the names they were given; a
//! foreground `run` exits with the container's code (125 when berth failed,
//! 126/127 when the command could not be executed/found).

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio as ProcStdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use chrono::Utc;
use clap::Args;

use std::collections::HashSet;

use super::stream::{self, Ended};
use super::{Context, Exit};
use crate::network::{Join, Networks, Prepare};
use crate::runtime::container::{
    new_id, pid_alive, supervisor_alive, ContainerConfig, ContainerStore, HealthConfig,
    RestartPolicy, STATUS_CORRUPT,
};
use crate::runtime::spec::{self, BindMount, Resources};
use crate::runtime::{engine, names, supervisor};
use crate::volume::{VolumeMount, VolumeStore};

/// Flags shared by `run` and `create`.
#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables (K=V, or K to copy from this environment)
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Read environment variables from a file
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Container host name
    #[arg(long)]
    pub hostname: Option<String>,
    /// Restart policy (no, always, on-failure[:N], unless-stopped)
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// Memory limit (e.g. 64m, 1g)
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Number of CPUs
    #[arg(long, allow_negative_numbers = true)]
    pub cpus: Option<f64>,
    /// Tune container pids limit (-1 for unlimited)
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    /// Bind mount a host path (/SRC:DST[:ro]), mount a named volume
    /// (NAME:DST[:ro,nocopy]) or an anonymous one (DST)
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    /// Mount a tmpfs directory (DST[:OPTIONS])
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Connect to a network: default (berth0), a user network, none, host
    #[arg(long = "network", alias = "net", default_value = "default")]
    pub network: String,
    /// Add a network-scoped alias for the container (user networks)
    #[arg(long = "network-alias", value_name = "ALIAS")]
    pub network_alias: Vec<String>,
    /// Publish a container's port(s) to the host ([IP:][HOSTPORT:]CONTAINERPORT[/tcp|/udp])
    #[arg(short = 'p', long = "publish", value_name = "SPEC")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random host ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Keep STDIN open
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Signal to stop the container
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout")]
    pub stop_timeout: Option<u64>,
    /// Logging driver: json-file (the only one)
    #[arg(long = "log-driver", value_name = "DRIVER")]
    pub log_driver: Option<String>,
    /// Log driver options: max-size=SIZE (e.g. 10m; -1: unbounded), max-file=N (default: [log] of ROOT/config.toml, else 10m and 3)
    #[arg(long = "log-opt", value_name = "OPT")]
    pub log_opt: Vec<String>,
    /// Command to run to check health
    #[arg(long = "health-cmd")]
    pub health_cmd: Option<String>,
    /// Time between running the check (e.g. 30s)
    #[arg(long = "health-interval")]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run
    #[arg(long = "health-timeout")]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries")]
    pub health_retries: Option<u32>,
    /// Start period for the container to initialize before counting retries
    #[arg(long = "health-start-period")]
    pub health_start_period: Option<String>,
    /// Time between running the check during the start period
    #[arg(long = "health-start-interval")]
    pub health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Set metadata on a container
    #[arg(short = 'l', long = "label")]
    pub label: Vec<String>,
    /// The first argument is a root filesystem directory, not an image
    #[arg(long)]
    pub rootfs: bool,
    /// Image (or, with --rootfs, a directory)
    pub image: String,
    /// Command and arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    #[command(flatten)]
    pub create: CreateArgs,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short = 'i', long)]
    pub interactive: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "time", alias = "timeout")]
    pub time: Option<u64>,
    /// Signal to send to the container
    #[arg(short = 's', long)]
    pub signal: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    pub volumes: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    pub container: String,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct SuperviseArgs {
    pub id: String,
    #[arg(long = "attach-fd")]
    pub attach_fd: Option<i32>,
    #[arg(long = "ready-fd")]
    pub ready_fd: Option<i32>,
    /// Initial terminal size ROWSxCOLS
    #[arg(long = "tty-size")]
    pub tty_size: Option<String>,
}

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

fn resolve_rootfs(dir: &str) -> anyhow::Result<ImageInfo> {
    let path = Path::new(dir)
        .canonicalize()
        .with_context(|| format!("rootfs directory {dir}"))?;
    if !path.is_dir() {
        bail!("rootfs {} is not a directory", path.display());
    }
    Ok(ImageInfo {
        id: String::new(),
        lowers: vec![path],
        cmd: vec!["sh".into()],
        ..Default::default()
    })
}

/// Finds the image a container is created from.
pub fn resolve_image(ctx: &Context, args: &CreateArgs) -> anyhow::Result<ImageInfo> {
    if args.rootfs {
        return resolve_rootfs(&args.image);
    }
    super::container_image::resolve_for_container(ctx, &args.image)
}

/// Parses `64m`, `1g`, `512k`, `1024` (bytes) as Docker does.
pub fn parse_bytes(s: &str) -> Option<i64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1i64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        't' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    let v: f64 = num.parse().ok()?;
    (v > 0.0).then_some((v * mult as f64) as i64)
}

fn parse_duration_ns(s: &str) -> anyhow::Result<u64> {
    let d = humantime::parse_duration(s).map_err(|e| anyhow!("invalid duration {s:?}: {e}"))?;
    Ok(d.as_nanos() as u64)
}

/// `--label K=V` flags as a map (`--label K` is an empty value, as Docker).
pub fn parse_labels(flags: &[String]) -> std::collections::BTreeMap<String, String> {
    flags
        .iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// One `-v` argument: a host path, or a volume (named, or anonymous when
/// only the container path is given).
#[derive(Debug, Clone, PartialEq)]
enum VolumeArg {
    Bind(BindMount),
    Volume(VolumeMount),
}

/// Parses Docker's `-v` forms: `/host:/dst[:OPTS]` (bind), `NAME:/dst[:OPTS]`
/// (named volume), `/dst` (anonymous volume); OPTS is a comma list of
/// `ro`, `rw` and `nocopy`.
fn parse_volume(v: &str) -> anyhow::Result<VolumeArg> {
    let parts: Vec<&str> = v.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [d] => ("", *d, ""),
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => bail!("invalid volume specification {v:?}: use SRC:DST[:ro], NAME:DST[:ro] or DST"),
    };
    if !dst.starts_with('/') {
        bail!("invalid volume {v:?}: the container path must be absolute");
    }
    if dst == "/" {
        bail!("invalid volume {v:?}: cannot mount over the container's root");
    }
    let (mut readonly, mut nocopy) = (false, false);
    for opt in mode.split(',').filter(|o| !o.is_empty()) {
        match opt {
            "rw" => readonly = false,
            "ro" => readonly = true,
            "nocopy" => nocopy = true,
            other => bail!("invalid volume option {other:?} in {v:?}: use ro, rw or nocopy"),
        }
    }
    if src.starts_with('/') {
        if nocopy {
            bail!("invalid volume {v:?}: nocopy applies to volumes, not host paths");
        }
        // Docker's `-v` makes a missing host directory (its `--mount` would not).
        if !Path::new(src).exists() {
            std::fs::create_dir_all(src)
                .with_context(|| format!("creating bind source directory {src}"))?;
        }
        let source = Path::new(src)
            .canonicalize()
            .with_context(|| format!("bind source path {src}"))?;
        return Ok(VolumeArg::Bind(BindMount {
            source,
            destination: dst.to_string(),
            readonly,
        }));
    }
    let anonymous = src.is_empty();
    if !anonymous && !crate::volume::valid(src) {
        bail!(
            "invalid volume name {src:?} in {v:?}: use [a-zA-Z0-9][a-zA-Z0-9_.-]*, or an absolute host path for a bind mount"
        );
    }
    Ok(VolumeArg::Volume(VolumeMount {
        name: if anonymous {
            VolumeStore::anonymous_name()
        } else {
            src.to_string()
        },
        destination: dst.to_string(),
        readonly,
        nocopy,
        anonymous,
    }))
}

/// The bind mounts and volumes of `-v`, plus an anonymous volume for every
/// image `VOLUME` that no `-v` or `--tmpfs` covers (as Docker does).
fn mounts(
    args: &CreateArgs,
    image_volumes: &[String],
    tmpfs: &[(String, String)],
) -> anyhow::Result<(Vec<BindMount>, Vec<VolumeMount>)> {
    let (mut binds, mut volumes) = (Vec::new(), Vec::new());
    for v in &args.volume {
        match parse_volume(v)? {
            VolumeArg::Bind(b) => binds.push(b),
            VolumeArg::Volume(m) => volumes.push(m),
        }
    }
    let norm = |p: &str| p.trim_end_matches('/').to_string();
    let mut taken: Vec<String> = binds
        .iter()
        .map(|b| norm(&b.destination))
        .chain(volumes.iter().map(|m| norm(&m.destination)))
        .chain(tmpfs.iter().map(|(d, _)| norm(d)))
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for d in &taken {
        if !seen.insert(d.clone()) {
            bail!("duplicate mount point: {d}");
        }
    }
    for b in &binds {
        let origin = format!("-v {}:{}", b.source.display(), b.destination);
        spec::check_destination(&b.destination, true, &origin)?;
    }
    for m in &volumes {
        let origin = if m.anonymous {
            format!("-v {}", m.destination)
        } else {
            format!("-v {}:{}", m.name, m.destination)
        };
        spec::check_destination(&m.destination, false, &origin)?;
    }
    for (d, _) in tmpfs {
        spec::check_destination(d, false, &format!("--tmpfs {d}"))?;
    }
    for dst in image_volumes {
        if !dst.starts_with('/') || taken.contains(&norm(dst)) {
            continue;
        }
        spec::check_destination(dst, false, &format!("the image's VOLUME {dst}"))?;
        taken.push(norm(dst));
        volumes.push(VolumeMount {
            name: VolumeStore::anonymous_name(),
            destination: dst.clone(),
            readonly: false,
            nocopy: false,
            anonymous: true,
        });
    }
    Ok((binds, volumes))
}

fn read_env_file(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading env file {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            if l.contains('=') {
                Some(l.to_string())
            } else {
                std::env::var(l).ok().map(|v| format!("{l}={v}"))
            }
        })
        .collect())
}

/// Builds the container record from the flags and the image.
pub fn build_config(
    ctx: &Context,
    store: &ContainerStore,
    args: &CreateArgs,
    auto_remove: bool,
) -> anyhow::Result<ContainerConfig> {
    let image = resolve_image(ctx, args)?;
    let id = new_id();
    let name = match &args.name {
        Some(n) => n.trim_start_matches('/').to_string(),
        None => loop {
            let n = names::generate();
            if store.resolve(&n).is_err() {
                break n;
            }
        },
    };
    let command = if let Some(ep) = &args.entrypoint {
        let mut v = if ep.is_empty() {
            vec![]
        } else {
            vec![ep.clone()]
        };
        v.extend(args.command.iter().cloned());
        v
    } else {
        let mut v = image.entrypoint.clone();
        if args.command.is_empty() {
            v.extend(image.cmd.iter().cloned());
        } else {
            v.extend(args.command.iter().cloned());
        }
        v
    };
    if command.is_empty() {
        bail!("no command specified");
    }
    let mut env = Vec::new();
    for f in &args.env_file {
        env.extend(read_env_file(f)?);
    }
    for e in &args.env {
        if e.contains('=') {
            env.push(e.clone());
        } else if let Ok(v) = std::env::var(e) {
            env.push(format!("{e}={v}"));
        }
    }
    let restart = RestartPolicy::parse(&args.restart).ok_or_else(|| {
        anyhow!(
            "invalid restart policy {:?}: use no, always, on-failure[:N] or unless-stopped",
            args.restart
        )
    })?;
    if auto_remove && restart.name != "no" {
        bail!("conflicting options: cannot specify both --restart and --rm");
    }
    let memory = match &args.memory {
        Some(m) => Some(parse_bytes(m).ok_or_else(|| anyhow!("invalid memory size {m:?}"))?),
        None => None,
    };
    if memory.is_some_and(|m| m < 6 << 20) {
        bail!("minimum memory limit allowed is 6MB");
    }
    if args.cpus.is_some_and(|c| c <= 0.0 || !c.is_finite()) {
        bail!("invalid --cpus value: must be a positive number");
    }
    match crate::network::mode_network(&args.network) {
        None if !args.publish.is_empty() || args.publish_all => bail!(
            "cannot publish ports with --network {}: publishing needs a berth network",
            args.network
        ),
        None | Some(None) if !args.network_alias.is_empty() => bail!(
            "network-scoped aliases are supported only for containers in user-defined networks"
        ),
        Some(Some(name)) => {
            crate::network::Networks::open(&ctx.root()?)?.get(name)?;
        }
        _ => {}
    }
    let tmpfs = args
        .tmpfs
        .iter()
        .map(|t| {
            let (d, o) = t.split_once(':').unwrap_or((t, ""));
            if !d.starts_with('/') {
                bail!("invalid tmpfs {t:?}: the path must be absolute");
            }
            Ok((d.to_string(), o.to_string()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (binds, volumes) = mounts(args, &image.volumes, &tmpfs)?;
    let mut health = image.health.clone();
    if let Some(cmd) = &args.health_cmd {
        health = Some(HealthConfig {
            test: vec!["CMD-SHELL".into(), cmd.clone()],
            ..health.unwrap_or_default()
        });
    }
    if args.no_healthcheck {
        health = None;
    }
    if let Some(h) = health.as_mut() {
        if let Some(i) = &args.health_interval {
            h.interval_ns = parse_duration_ns(i)?;
        }
        if let Some(t) = &args.health_timeout {
            h.timeout_ns = parse_duration_ns(t)?;
        }
        if let Some(s) = &args.health_start_period {
            h.start_period_ns = parse_duration_ns(s)?;
        }
        if let Some(s) = &args.health_start_interval {
            h.start_interval_ns = parse_duration_ns(s)?;
        }
        if let Some(r) = args.health_retries {
            h.retries = r;
        }
        if h.interval_ns == 0 {
            h.interval_ns = 30_000_000_000;
        }
    }
    let labels = parse_labels(&args.label);
    if let Some(d) = args.log_driver.as_deref().filter(|d| *d != "json-file") {
        bail!("logging driver {d:?} is not supported: berth writes json-file logs");
    }
    let log = crate::runtime::log::LogOptions::configured(ctx.root()?.path())?
        .with_flags(&args.log_opt)?;
    Ok(ContainerConfig {
        id: id.clone(),
        name,
        created: Utc::now(),
        image: args.image.clone(),
        image_id: image.id,
        lowers: image.lowers,
        args: command,
        env,
        image_env: image.env,
        cwd: args.workdir.clone().unwrap_or(image.workdir),
        user: args.user.clone().unwrap_or(image.user),
        hostname: args
            .hostname
            .clone()
            .unwrap_or_else(|| id[..12].to_string()),
        tty: args.tty,
        open_stdin: args.interactive,
        restart,
        auto_remove,
        resources: Resources {
            memory,
            cpus: args.cpus,
            pids_limit: args.pids_limit.filter(|p| *p > 0),
        },
        binds,
        volumes,
        tmpfs,
        network: args.network.clone(),
        stop_signal: args.stop_signal.clone().or(image.stop_signal),
        stop_timeout: args.stop_timeout,
        health,
        init: args.init,
        labels,
        log,
    })
}

fn store(ctx: &Context) -> anyhow::Result<ContainerStore> {
    Ok(ContainerStore::open(&ctx.root()?)?)
}

/// Checks the network flags and the requested host ports before anything
/// is created; returns what `Networks::prepare` will need.
fn network_plan(
    ctx: &Context,
    store: &ContainerStore,
    config: &ContainerConfig,
    args: &CreateArgs,
    image: &ImageInfo,
) -> anyhow::Result<Option<(Networks, Prepare)>> {
    let Some(network) = crate::network::mode_network(&config.network) else {
        return Ok(None);
    };
    let nets = Networks::open(&ctx.root()?)?;
    // A crash may have left allocations of containers that are gone.
    let live = || store.ids().into_iter().collect::<HashSet<String>>();
    nets.repair(live).context("repairing network state")?;
    let mut requests = crate::network::portspec::parse_all(&args.publish)?;
    if args.publish_all {
        requests.extend(crate::network::portspec::exposed(&image.exposed_ports)?);
    }
    let ports = nets.preflight_requests(&requests)?;
    Ok(Some((
        nets,
        Prepare {
            container_id: config.id.clone(),
            name: config.name.clone(),
            hostname: Some(config.hostname.clone()),
            joins: vec![Join {
                network: network.map(str::to_string),
                aliases: args.network_alias.clone(),
            }],
            ports,
        },
    )))
}

/// Records a new container: flags and ports are checked first, then the
/// container and its network allocations are made (or nothing is).
fn create_container(
    ctx: &Context,
    store: &ContainerStore,
    args: &CreateArgs,
    auto_remove: bool,
) -> anyhow::Result<ContainerConfig> {
    let image = resolve_image(ctx, args)?;
    let config = build_config(ctx, store, args, auto_remove)?;
    let plan = network_plan(ctx, store, &config, args, &image)?;
    // Named volumes exist from `create` on (`volume ls` shows them, as in
    // Docker); anonymous ones are made when the container first starts.
    let volumes = VolumeStore::open(store.state_root())?;
    for m in config.volumes.iter().filter(|m| !m.anonymous) {
        volumes
            .create(&m.name, &Default::default())
            .with_context(|| format!("creating volume {}", m.name))?;
    }
    store.create(&config)?;
    if let Some((nets, prepare)) = plan {
        if let Err(e) = nets.prepare(&prepare) {
            let _ = nets.release(&config.id);
            let _ = store.remove(&config.id);
            return Err(e.into());
        }
    }
    Ok(config)
}

/// `berth create`.
pub fn create(ctx: &Context, args: CreateArgs) -> anyhow::Result<()> {
    let store = store(ctx)?;
    let config = create_container(ctx, &store, &args, false)?;
    println!("{}", config.id);
    Ok(())
}

/// A supervisor process being started.
struct Spawned {
    ready: std::fs::File,
    attach: Option<std::os::unix::net::UnixStream>,
}

/// Spawns `berth __supervise ID`, detached in its own session.
fn spawn_supervisor(
    ctx: &Context,
    store: &ContainerStore,
    id: &str,
    attach: bool,
) -> anyhow::Result<Spawned> {
    // Start the supervisor straight from a read-only view of the binary
    // (it would otherwise re-exec itself into one, see runtime::seal).
    // (Kept at fd >= 10 so the dup2 onto 3 and 4 below cannot clobber it.)
    let view = crate::runtime::seal::open_readonly_view()
        .ok()
        .and_then(|f| {
            nix::fcntl::fcntl(f.as_raw_fd(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10))
                .ok()
                // SAFETY: F_DUPFD_CLOEXEC returned a new fd we now own.
                .map(|fd| unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) })
        });
    let exe = match &view {
        Some(f) => PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd())),
        None => std::env::current_exe().context("locating the berth binary")?,
    };
    let (ready_r, ready_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe")?;
    let (ours, theirs) = if attach {
        let (a, b) = std::os::unix::net::UnixStream::pair().context("socketpair")?;
        (Some(a), Some(OwnedFd::from(b)))
    } else {
        (None, None)
    };
    let errlog = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(store.dir(id).join("supervisor.log"))
        .context("opening the supervisor log")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg0("berth")
        .arg("--root")
        .arg(ctx.root()?.path())
        .arg("__supervise")
        .arg(id)
        .arg("--ready-fd")
        .arg("4")
        .stdin(ProcStdio::null())
        .stdout(ProcStdio::null())
        .stderr(errlog)
        .env_remove("BERTH_ROOT");
    if let Some(level) = &ctx.global.log_level {
        cmd.arg("--log-level").arg(level);
    }
    if theirs.is_some() {
        cmd.arg("--attach-fd").arg("3");
        if let Some((rows, cols)) = stream::window_size() {
            cmd.arg("--tty-size").arg(format!("{rows}x{cols}"));
        }
    }
    let ready_raw = ready_w.as_raw_fd();
    let attach_raw = theirs.as_ref().map(|f| f.as_raw_fd());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            if let Some(fd) = attach_raw {
                if libc::dup2(fd, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if libc::dup2(ready_raw, 4) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // dup2 onto the same number keeps FD_CLOEXEC: clear it.
            libc::fcntl(4, libc::F_SETFD, 0);
            if attach_raw.is_some() {
                libc::fcntl(3, libc::F_SETFD, 0);
            }
            Ok(())
        });
    }
    let child = cmd.spawn().context("starting the container supervisor")?;
    drop(child);
    drop(view);
    drop(ready_w);
    drop(theirs);
    Ok(Spawned {
        ready: std::fs::File::from(ready_r),
        attach: ours,
    })
}

/// Waits for the supervisor's first start; maps a failure to an [`Exit`].
fn wait_ready(ready: std::fs::File, name: &str) -> anyhow::Result<()> {
    use std::io::BufRead;
    let mut line = String::new();
    let _ = std::io::BufReader::new(ready).read_line(&mut line);
    let line = line.trim();
    if line == "ok" {
        return Ok(());
    }
    if let Some(rest) = line.strip_prefix("err ") {
        let (code, msg) = rest.split_once(' ').unwrap_or((rest, ""));
        let code: i32 = code.parse().unwrap_or(125);
        return Err(Exit {
            code,
            message: format!("failed to start container {name}: {msg}"),
        }
        .into());
    }
    Err(Exit {
        code: 125,
        message: format!(
            "the supervisor of container {name} exited before starting it; see its supervisor.log"
        ),
    }
    .into())
}

fn finish_session(ended: Ended, name: &str) -> anyhow::Result<()> {
    match ended {
        Ended::Exited(0) | Ended::Detached => Ok(()),
        Ended::Exited(code) => Err(Exit::silent(code).into()),
        Ended::Lost => Err(Exit {
            code: 125,
            message: format!("lost the connection to the supervisor of container {name}"),
        }
        .into()),
    }
}

/// `berth run`.
pub fn run(ctx: &Context, args: RunArgs) -> anyhow::Result<()> {
    let store = store(ctx)?;
    let config = create_container(ctx, &store, &args.create, args.rm)?;
    let spawned = spawn_supervisor(ctx, &store, &config.id, !args.detach)?;
    wait_ready(spawned.ready, &config.name)?;
    if args.detach {
        println!("{}", config.id);
        return Ok(());
    }
    let stream = spawned.attach.expect("attach socket requested");
    if !args.create.tty {
        proxy_signals_to(&store, &config.id);
    }
    let ended = stream::session(stream, args.create.interactive, args.create.tty)?;
    finish_session(ended, &config.name)
}

/// Passes our signals to the container's current init process.
fn proxy_signals_to(store: &ContainerStore, id: &str) {
    let store = store.clone();
    let id = id.to_string();
    stream::proxy_signals(move |sig| {
        if let Ok(st) = store.state(&id) {
            if st.pid > 0 {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(st.pid), sig);
            }
        }
    });
}

/// `berth start`.
pub fn start(ctx: &Context, args: StartArgs) -> anyhow::Result<()> {
    let store = store(ctx)?;
    if args.attach && args.containers.len() > 1 {
        bail!("you cannot start and attach multiple containers at once");
    }
    let mut failed = false;
    for q in &args.containers {
        let res = (|| -> anyhow::Result<()> {
            let id = store.resolve(q)?;
            let st = store.state(&id)?;
            let config = store.config(&id)?;
            if supervisor_alive(&st) && st.status == "running" {
                if !args.attach {
                    println!("{q}");
                }
                return Ok(());
            }
            if supervisor_alive(&st) && st.status != "restarting" {
                // A supervisor finishing its teardown after the exit.
                wait_pid_gone(st.supervisor_pid, Duration::from_secs(10));
            }
            let st = store.state(&id)?;
            if supervisor_alive(&st) {
                bail!(
                    "container {q} is {}; try again when it has stopped",
                    st.status
                );
            }
            let spawned = spawn_supervisor(ctx, &store, &id, args.attach)?;
            wait_ready(spawned.ready, &config.name)?;
            if args.attach {
                let stream = spawned.attach.expect("attach socket requested");
                if !config.tty {
                    proxy_signals_to(&store, &id);
                }
                let ended = stream::session(stream, args.interactive, config.tty)?;
                return finish_session(ended, &config.name);
            }
            println!("{q}");
            Ok(())
        })();
        if let Err(e) = res {
            if args.attach {
                return Err(e);
            }
            eprintln!("error: {e:#}");
            failed = true;
        }
    }
    if failed {
        bail!("failed to start containers: {}", args.containers.join(", "));
    }
    Ok(())
}

fn parse_signal(s: &str) -> anyhow::Result<nix::sys::signal::Signal> {
    use std::str::FromStr;
    if let Ok(n) = s.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(n).map_err(|_| anyhow!("invalid signal: {s}"));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    nix::sys::signal::Signal::from_str(&name).map_err(|_| anyhow!("invalid signal: {s}"))
}

/// Waits until `pid` is gone or `timeout` passes; true when gone.
fn wait_pid_gone(pid: i32, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if !pid_alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    !pid_alive(pid)
}

/// Waits for the supervisor to record the exit (or die); cleans up after a
/// dead supervisor.
fn settle(store: &ContainerStore, id: &str, code_if_orphaned: i32) -> anyhow::Result<()> {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let st = match store.state(id) {
            Ok(st) => st,
            Err(_) => return Ok(()), // removed (--rm)
        };
        if st.status != "running" && st.status != "restarting" {
            // Wait for the supervisor's teardown as well.
            if !supervisor_alive(&st) || Instant::now() > end {
                return Ok(());
            }
        } else if !supervisor_alive(&st) {
            // The supervisor died: finish its job.
            let config = store.config(id)?;
            supervisor::teardown(store, &config);
            store.update_state(id, |s| {
                s.status = "exited".into();
                s.exit_code = code_if_orphaned;
                s.pid = 0;
                s.finished_at = Some(Utc::now());
            })?;
            return Ok(());
        }
        if Instant::now() > end {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stops one container: its stop signal, then SIGKILL after `grace`.
fn stop_one(
    store: &ContainerStore,
    id: &str,
    grace: Option<u64>,
    signal: Option<&str>,
) -> anyhow::Result<()> {
    let config = store.config(id)?;
    let st = store.update_state(id, |s| s.stop_requested = true)?;
    if st.pid > 0 && pid_alive(st.pid) {
        let sig = parse_signal(signal.or(config.stop_signal.as_deref()).unwrap_or("TERM"))?;
        let pid = nix::unistd::Pid::from_raw(st.pid);
        let _ = nix::sys::signal::kill(pid, sig);
        let grace = grace.or(config.stop_timeout).unwrap_or(10);
        if !wait_pid_gone(st.pid, Duration::from_secs(grace)) {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            wait_pid_gone(st.pid, Duration::from_secs(10));
        }
        settle(store, id, 137)?;
    } else if supervisor_alive(&st) {
        // Restarting: the supervisor sees stop_requested during its backoff.
        settle(store, id, 0)?;
    } else if st.status == "running" {
        settle(store, id, 137)?;
    }
    Ok(())
}

/// `berth stop`.
pub fn stop(ctx: &Context, args: StopArgs) -> anyhow::Result<()> {
    let store = store(ctx)?;
    each(&args.containers, |q| {
        let id = store.resolve(q)?;
        stop_one(&store, &id, args.time, args.signal.as_deref())
    })
}

/// Runs `f` on each name, printing the name on success and Docker's error
/// line otherwise; fails (exit 1) when any failed.
pub fn each(items: &[String], mut f: impl FnMut(&str) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let mut failed = false;
    for q in items {
        match f(q) {
            Ok(()) => println!("{q}"),
            Err(e) => {
                eprintln!("error: {e:#}");
                failed = true;
            }
        }
    }
    if failed {
        return Err(Exit::silent(1).into());
    }
    Ok(())
}

/// `berth kill`.
pub fn kill(ctx: &Context, args: KillArgs) -> anyhow::Result<()> {
    let store = store(ctx)?;
    let sig = parse_signal(&args.signal)?;
    each(&args.containers, |q| {
        let id = store.resolve(q)?;
        let config = store.config(&id)?;
        let st = store.state(&id)?;
        if st.pid <= 0 || !pid_alive(st.pid) {
            bail!("cannot kill container: {q}: container {id} is not running");
        }
        let stop_sig = parse_signal(config.stop_signal.as_deref().unwrap_or("TERM"))?;
        if sig == nix::sys::signal::Signal::SIGKILL || sig == stop_sig {
            store.update_state(&id, |s| s.stop_requested = true)?;
        }
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(st.pid), sig)
            .with_context(|| format!("signalling container {q}"))?;
        if sig == nix::sys::signal::Signal::SIGKILL {
            wait_pid_gone(st.pid, Duration::from_secs(10));
            settle(&store, &id, 137)?;
        }
        Ok(())
    })
}

/// `berth restart`.
pub fn restart(ctx: &Context, args: StopArgs) -> anyhow::Result<()> {
    let store = store(ctx)?;
    each(&args.containers, |q| {
        let id = store.resolve(q)?;
        stop_one(&store, &id, args.time, args.signal.as_deref())?;
        let config = store.config(&id)?;
        let spawned = spawn_supervisor(ctx, &store, &id, false)?;
        wait_ready(spawned.ready, &config.name)
    })
}

/// Removes one container (`force`: kill it first).
pub fn remove_one(store: &ContainerStore, id: &str, force: bool) -> anyhow::Result<()> {
    let st = store.observed_state(id)?;
    if st.status == STATUS_CORRUPT {
        // Nothing of the record can be trusted: kill what its cgroup and
        // supervisor hold, then remove as usual.
        let live = st.pid > 0 || st.supervisor_pid > 0;
        if live && !force {
            return Err(Exit {
                code: 1,
                message: format!(
                    "cannot remove container {id}: its state record is corrupt and it may still run: force remove (rm -f) to kill and remove it"
                ),
            }
            .into());
        }
        crate::runtime::recover::kill_all(id);
    }
    let running =
        st.status != STATUS_CORRUPT && ((st.pid > 0 && pid_alive(st.pid)) || supervisor_alive(&st));
    if running {
        if !force {
            return Err(Exit {
                code: 1,
                message: format!(
                    "cannot remove container {id}: container is {}: stop the container before removing or force remove",
                    st.status
                ),
            }
            .into());
        }
        store.update_state(id, |s| s.stop_requested = true)?;
        if st.pid > 0 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(st.pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            wait_pid_gone(st.pid, Duration::from_secs(10));
        }
        settle(store, id, 137)?;
        let st = store.state(id).unwrap_or_default();
        if supervisor_alive(&st) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(st.supervisor_pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            wait_pid_gone(st.supervisor_pid, Duration::from_secs(5));
        }
    }
    if let Ok(config) = store.config(id) {
        supervisor::teardown(store, &config);
    }
    // Free the bulk first (its writes, its logs): on a full disk, the
    // network records written next need the room.
    let dir = store.dir(id);
    let _ = std::fs::remove_dir_all(dir.join("upper"));
    let _ = std::fs::remove_file(dir.join("log.json"));
    crate::runtime::log::remove_rotated(&dir.join("log.json"));
    Networks::open(store.state_root())?
        .release(id)
        .context("releasing the container's network resources")?;
    let dir = store.dir(id);
    if dir.exists() {
        store.remove(id)?;
    }
    Ok(())
}

/// `berth rm`.
pub fn rm(ctx: &Context, args: RmArgs) -> anyhow::Result<()> {
    let store = store(ctx)?;
    each(&args.containers, |q| {
        let id = store.resolve(q)?;
        let config = store.config(&id).ok();
        remove_one(&store, &id, args.force)?;
        if let (true, Some(config)) = (args.volumes, config) {
            supervisor::remove_anonymous_volumes(&store, &config)
                .context("removing the container's anonymous volumes")?;
        }
        Ok(())
    })
}

/// `berth wait`.
pub fn wait(ctx: &Context, args: WaitArgs) -> anyhow::Result<()> {
    let store = store(ctx)?;
    each_quiet(&args.containers, |q| {
        let id = store.resolve(q)?;
        loop {
            let st = match store.state(&id) {
                Ok(st) => st,
                Err(_) => bail!("container {q} was removed while waiting"),
            };
            let done = match st.status.as_str() {
                "running" | "restarting" => !supervisor_alive(&st) && !pid_alive(st.pid),
                _ => !supervisor_alive(&st),
            };
            if done {
                println!("{}", st.exit_code);
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
}

fn each_quiet(
    items: &[String],
    mut f: impl FnMut(&str) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut failed = false;
    for q in items {
        if let Err(e) = f(q) {
            eprintln!("error: {e:#}");
            failed = true;
        }
    }
    if failed {
        return Err(Exit::silent(1).into());
    }
    Ok(())
}

/// `berth attach`.
pub fn attach(ctx: &Context, args: AttachArgs) -> anyhow::Result<()> {
    let store = store(ctx)?;
    let id = store.resolve(&args.container)?;
    let st = store.state(&id)?;
    let config = store.config(&id)?;
    if st.status != "running" || !supervisor_alive(&st) {
        bail!("you cannot attach to a stopped container, start it first");
    }
    let stream = supervisor::connect_short(&store.dir(&id).join("attach.sock"))
        .context("connecting to the container's attach socket")?;
    let ended = stream::session(stream, !args.no_stdin && config.open_stdin, config.tty)?;
    finish_session(ended, &config.name)
}

/// `berth container prune`.
pub fn prune(ctx: &Context, args: PruneArgs) -> anyhow::Result<()> {
    let store = store(ctx)?;
    if !args.force && !confirm("WARNING! This will remove all stopped containers.")? {
        return Ok(());
    }
    let (ids, bytes) = prune_stopped(&store)?;
    println!("Deleted Containers:");
    for id in &ids {
        println!("{id}");
    }
    println!();
    println!(
        "Total reclaimed space: {}",
        super::output::human_size(bytes)
    );
    Ok(())
}

/// Removes every stopped container; returns their ids and the bytes freed.
pub fn prune_stopped(store: &ContainerStore) -> anyhow::Result<(Vec<String>, u64)> {
    let mut ids = Vec::new();
    let mut bytes = 0;
    for (c, st) in store.list() {
        let running = (st.pid > 0 && pid_alive(st.pid)) || supervisor_alive(&st);
        if running {
            continue;
        }
        bytes += dir_size(&store.dir(&c.id).join("upper"))
            + crate::runtime::log::size(&store.dir(&c.id).join("log.json"));
        remove_one(store, &c.id, false)?;
        ids.push(c.id);
    }
    Ok((ids, bytes))
}

/// Bytes used by the files under `path` (not following symlinks).
pub fn dir_size(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}

/// Asks `question [y/N]` on the terminal.
pub fn confirm(question: &str) -> anyhow::Result<bool> {
    print!("{question}\nAre you sure you want to continue? [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// `berth __supervise ID` (hidden): the per-container supervisor.
pub fn supervise(ctx: &Context, args: SuperviseArgs) -> anyhow::Result<()> {
    use std::os::fd::FromRawFd;
    let store = store(ctx)?;
    // SAFETY: the spawning CLI placed these fds at these numbers for us.
    let attach = args.attach_fd.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
    let ready = args.ready_fd.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
    let tty_size = args.tty_size.as_deref().and_then(|s| {
        let (r, c) = s.split_once('x')?;
        Some((r.parse().ok()?, c.parse().ok()?))
    });
    let code = supervisor::run(store, &args.id, attach, ready, tty_size)?;
    let _ = code;
    Ok(())
}

/// Exit code a foreground start failure maps to.
pub fn start_failure_code(msg: &str) -> i32 {
    engine::start_failure_code(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("64m"), Some(64 << 20));
        assert_eq!(parse_bytes("1g"), Some(1 << 30));
        assert_eq!(parse_bytes("512K"), Some(512 << 10));
        assert_eq!(parse_bytes("100"), Some(100));
        assert_eq!(parse_bytes("1.5m"), Some(1572864));
        for bad in ["", "m", "-1m", "abc", "0"] {
            assert_eq!(parse_bytes(bad), None, "{bad}");
        }
    }

    #[test]
    fn volumes() {
        let VolumeArg::Bind(b) = parse_volume("/tmp:/data:ro").unwrap() else {
            panic!("a host path is a bind mount");
        };
        assert!(b.readonly);
        assert_eq!(b.destination, "/data");
        let VolumeArg::Volume(n) = parse_volume("named:/data:ro,nocopy").unwrap() else {
            panic!("a name is a volume");
        };
        assert_eq!(
            (n.name.as_str(), n.readonly, n.nocopy, n.anonymous),
            ("named", true, true, false)
        );
        let VolumeArg::Volume(a) = parse_volume("/cache").unwrap() else {
            panic!("a lone container path is an anonymous volume");
        };
        assert!(a.anonymous && a.name.len() == 64 && a.destination == "/cache");
        assert!(parse_volume("/tmp:rel").is_err());
        assert!(parse_volume("/tmp:/d:rx").is_err());
        assert!(parse_volume("/tmp:/d:nocopy").is_err());
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("made/by/berth");
        let spec = format!("{}:/d", missing.display());
        assert!(matches!(parse_volume(&spec), Ok(VolumeArg::Bind(_))));
        assert!(
            missing.is_dir(),
            "-v makes a missing host directory, as Docker"
        );
        assert!(parse_volume("../x:/d").is_err());
        assert!(parse_volume("rel").is_err());
        assert!(parse_volume("v:/").is_err());
        assert!(parse_volume("a:b:c:d").is_err());
    }

    #[test]
    fn signals() {
        assert_eq!(
            parse_signal("KILL").unwrap(),
            nix::sys::signal::Signal::SIGKILL
        );
        assert_eq!(
            parse_signal("sigterm").unwrap(),
            nix::sys::signal::Signal::SIGTERM
        );
        assert_eq!(
            parse_signal("9").unwrap(),
            nix::sys::signal::Signal::SIGKILL
        );
        assert!(parse_signal("NOPE").is_err());
    }
}
