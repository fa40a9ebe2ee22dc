//! Container verbs: `run`, `create`, `start`, `stop`, `kill`, `restart`,
//! `rm`, `wait`, `attach`, `container prune`, and the hidden `__supervise`
//! and `__init` entry points.
//!
//! Flags, output and exit codes follow Docker: `run -d`/`create` print the
//! full id; `start`/`stop`/`kill`/`rm` echo the names they were given; a
//! foreground `run` exits with the container's code (125 when berth failed,
//! 126/127 when the command could not be executed/found).

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _};
use clap::Args;

use super::{Context, Exit};
use crate::engine::{
    ContainerRequest, Engine, HealthRequest, ImageSource, MountRequest, StartOptions, StartOutcome,
};
use crate::network::Join;
use crate::runtime::container::{supervisor_alive, ContainerStore, RestartPolicy};
use crate::runtime::spec::Resources;
use crate::runtime::supervisor;
use crate::terminal::attach::{self as stream, Ended};

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

/// Parses Docker's `-v` forms: `/host:/dst[:OPTS]` (bind; a missing host
/// directory is made, as Docker's `-v` does), `NAME:/dst[:OPTS]` (named
/// volume), `/dst` (anonymous volume); OPTS is a comma list of `ro`, `rw`
/// and `nocopy`.
fn parse_volume(v: &str) -> anyhow::Result<MountRequest> {
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
        return Ok(MountRequest::Bind {
            source: PathBuf::from(src),
            target: dst.to_string(),
            readonly,
            create_source: true,
        });
    }
    let anonymous = src.is_empty();
    if !anonymous && !crate::volume::valid(src) {
        bail!(
            "invalid volume name {src:?} in {v:?}: use [a-zA-Z0-9][a-zA-Z0-9_.-]*, or an absolute host path for a bind mount"
        );
    }
    Ok(MountRequest::Volume {
        name: (!anonymous).then(|| src.to_string()),
        target: dst.to_string(),
        readonly,
        nocopy,
    })
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

/// The engine request `run`/`create`'s flags ask for.
pub fn request_from_args(args: &CreateArgs, auto_remove: bool) -> anyhow::Result<ContainerRequest> {
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
    let memory = match &args.memory {
        Some(m) => Some(parse_bytes(m).ok_or_else(|| anyhow!("invalid memory size {m:?}"))?),
        None => None,
    };
    let mut mounts = args
        .volume
        .iter()
        .map(|v| parse_volume(v))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for t in &args.tmpfs {
        let (d, o) = t.split_once(':').unwrap_or((t, ""));
        if !d.starts_with('/') {
            bail!("invalid tmpfs {t:?}: the path must be absolute");
        }
        mounts.push(MountRequest::Tmpfs {
            target: d.to_string(),
            options: o.to_string(),
        });
    }
    let ns = |v: &Option<String>| v.as_deref().map(parse_duration_ns).transpose();
    let health = HealthRequest {
        disable: args.no_healthcheck,
        test: args
            .health_cmd
            .as_ref()
            .map(|cmd| vec!["CMD-SHELL".into(), cmd.clone()]),
        interval_ns: ns(&args.health_interval)?,
        timeout_ns: ns(&args.health_timeout)?,
        start_period_ns: ns(&args.health_start_period)?,
        start_interval_ns: ns(&args.health_start_interval)?,
        retries: args.health_retries,
    };
    if let Some(d) = args.log_driver.as_deref().filter(|d| *d != "json-file") {
        bail!("logging driver {d:?} is not supported: berth writes json-file logs");
    }
    let joins = match crate::network::mode_network(&args.network) {
        Some(network) if !args.network_alias.is_empty() => vec![Join {
            network: network.map(str::to_string),
            aliases: args.network_alias.clone(),
        }],
        None if !args.network_alias.is_empty() => vec![Join {
            network: None,
            aliases: args.network_alias.clone(),
        }],
        _ => Vec::new(),
    };
    Ok(ContainerRequest {
        name: args.name.clone(),
        image: if args.rootfs {
            ImageSource::Rootfs(PathBuf::from(&args.image))
        } else {
            ImageSource::Image(args.image.clone())
        },
        entrypoint: args.entrypoint.as_ref().map(|ep| {
            if ep.is_empty() {
                vec![]
            } else {
                vec![ep.clone()]
            }
        }),
        command: args.command.clone(),
        env,
        workdir: args.workdir.clone(),
        user: args.user.clone(),
        hostname: args.hostname.clone(),
        restart,
        auto_remove,
        resources: Resources {
            memory,
            cpus: args.cpus,
            pids_limit: args.pids_limit,
        },
        mounts,
        network: args.network.clone(),
        joins,
        publish: crate::network::portspec::parse_all(&args.publish)?,
        publish_all: args.publish_all,
        tty: args.tty,
        open_stdin: args.interactive,
        init: args.init,
        stop_signal: args.stop_signal.clone(),
        stop_timeout: args.stop_timeout,
        health,
        labels: parse_labels(&args.label),
        log_opts: args.log_opt.clone(),
    })
}

fn engine(ctx: &Context) -> anyhow::Result<Engine> {
    Ok(Engine::open(&ctx.root()?)?)
}

/// How this CLI starts a container (its terminal's size, its log level).
fn start_options(ctx: &Context, attach: bool) -> StartOptions {
    StartOptions {
        attach,
        tty_size: if attach { stream::window_size() } else { None },
        log_level: ctx.global.log_level.clone(),
    }
}

/// `berth create`.
pub fn create(ctx: &Context, args: CreateArgs) -> anyhow::Result<()> {
    let req = request_from_args(&args, false)?;
    let config = engine(ctx)?.create(&req)?;
    println!("{}", config.id);
    Ok(())
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
    let engine = engine(ctx)?;
    let req = request_from_args(&args.create, args.rm)?;
    let config = engine.create(&req)?;
    let (_, started) = engine.start(&config.id, &start_options(ctx, !args.detach))?;
    if args.detach {
        println!("{}", config.id);
        return Ok(());
    }
    let stream = started.attach.expect("attach socket requested");
    if !args.create.tty {
        proxy_signals_to(engine.store(), &config.id);
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
    let engine = engine(ctx)?;
    if args.attach && args.containers.len() > 1 {
        bail!("you cannot start and attach multiple containers at once");
    }
    let mut failed = false;
    for q in &args.containers {
        let res = (|| -> anyhow::Result<()> {
            let id = engine.resolve(q)?;
            let config = engine.store().config(&id)?;
            let (outcome, started) = engine.start(&id, &start_options(ctx, args.attach))?;
            match (outcome, started.attach) {
                (StartOutcome::Started, Some(stream)) => {
                    if !config.tty {
                        proxy_signals_to(engine.store(), &id);
                    }
                    let ended = stream::session(stream, args.interactive, config.tty)?;
                    finish_session(ended, &config.name)
                }
                _ if args.attach => Ok(()),
                _ => {
                    println!("{q}");
                    Ok(())
                }
            }
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

/// `berth stop`.
pub fn stop(ctx: &Context, args: StopArgs) -> anyhow::Result<()> {
    let engine = engine(ctx)?;
    each(&args.containers, |q| {
        let id = engine.resolve(q)?;
        Ok(engine.stop(&id, args.time, args.signal.as_deref())?)
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
    let engine = engine(ctx)?;
    crate::engine::parse_signal(&args.signal)?;
    each(&args.containers, |q| {
        let id = engine.resolve(q)?;
        Ok(engine.kill(&id, &args.signal)?)
    })
}

/// `berth restart`.
pub fn restart(ctx: &Context, args: StopArgs) -> anyhow::Result<()> {
    let engine = engine(ctx)?;
    each(&args.containers, |q| {
        let id = engine.resolve(q)?;
        let opts = start_options(ctx, false);
        Ok(engine.restart(&id, args.time, args.signal.as_deref(), &opts)?)
    })
}

/// `berth rm`.
pub fn rm(ctx: &Context, args: RmArgs) -> anyhow::Result<()> {
    let engine = engine(ctx)?;
    each(&args.containers, |q| {
        let id = engine.resolve(q)?;
        Ok(engine.remove(&id, args.force, args.volumes)?)
    })
}

/// `berth wait`.
pub fn wait(ctx: &Context, args: WaitArgs) -> anyhow::Result<()> {
    let engine = engine(ctx)?;
    each_quiet(&args.containers, |q| {
        let id = engine.resolve(q)?;
        let code = engine
            .wait(&id)
            .map_err(|_| anyhow!("container {q} was removed while waiting"))?;
        println!("{code}");
        Ok(())
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
    let engine = engine(ctx)?;
    let id = engine.resolve(&args.container)?;
    let st = engine.store().state(&id)?;
    let config = engine.store().config(&id)?;
    if st.status != "running" || !supervisor_alive(&st) {
        bail!("you cannot attach to a stopped container, start it first");
    }
    let stream = supervisor::connect_short(&engine.store().dir(&id).join("attach.sock"))
        .context("connecting to the container's attach socket")?;
    let ended = stream::session(stream, !args.no_stdin && config.open_stdin, config.tty)?;
    finish_session(ended, &config.name)
}

/// `berth container prune`.
pub fn prune(ctx: &Context, args: PruneArgs) -> anyhow::Result<()> {
    let engine = engine(ctx)?;
    if !args.force && !confirm("WARNING! This will remove all stopped containers.")? {
        return Ok(());
    }
    let (ids, bytes) = engine.prune()?;
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
    let store = ContainerStore::open(&ctx.root()?)?;
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
        let MountRequest::Bind {
            readonly, target, ..
        } = parse_volume("/tmp:/data:ro").unwrap()
        else {
            panic!("a host path is a bind mount");
        };
        assert!(readonly);
        assert_eq!(target, "/data");
        let MountRequest::Volume {
            name,
            readonly,
            nocopy,
            ..
        } = parse_volume("named:/data:ro,nocopy").unwrap()
        else {
            panic!("a name is a volume");
        };
        assert_eq!(
            (name.as_deref(), readonly, nocopy),
            (Some("named"), true, true)
        );
        let MountRequest::Volume { name, target, .. } = parse_volume("/cache").unwrap() else {
            panic!("a lone container path is an anonymous volume");
        };
        assert!(name.is_none() && target == "/cache");
        assert!(parse_volume("/tmp:rel").is_err());
        assert!(parse_volume("/tmp:/d:rx").is_err());
        assert!(parse_volume("/tmp:/d:nocopy").is_err());
        assert!(parse_volume("../x:/d").is_err());
        assert!(parse_volume("rel").is_err());
        assert!(parse_volume("v:/").is_err());
        assert!(parse_volume("a:b:c:d").is_err());
    }
}
