//! `berth oci …`: an OCI runtime command line (runc's verbs, flags and state
//! JSON) over berth's engine, so tooling that drives runc can drive berth.
//!
//! The lifecycle is the runtime spec's
//! (<https://github.com/opencontainers/runtime-spec/blob/main/runtime.md>):
//! `create` sets up the container from a bundle and leaves its init waiting,
//! `start` runs the user's process, `state` reports, `kill` signals,
//! `delete` removes. `run` is create+start+wait.
//!
//! The global flags containerd's shim and Podman pass to a runtime keep
//! runc's meaning: `berth oci --root DIR` is the state directory itself (as
//! `runc --root DIR`; without it, berth's own state root's `oci/`), `--log
//! FILE` appends every error there as well, in logrus's `text` or `json`
//! shape (`--log-format`), which is where containerd reads a runtime's
//! failure from, and `--systemd-cgroup` asks for systemd's cgroup driver.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use nix::sys::wait::{waitpid, WaitStatus};
use serde_json::json;

use super::{Context, Exit};
use crate::runtime::engine::{self, ExecOptions, Stdio};

/// `berth oci`'s own flags (runc's global ones) and its verb.
#[derive(Debug, Args)]
pub struct OciArgs {
    /// File to append the runtime's errors to (runc's --log)
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Format of --log lines: text or json
    #[arg(long = "log-format", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Use systemd's cgroup driver (cgroupsPath as slice:prefix:name)
    #[arg(long = "systemd-cgroup")]
    pub systemd_cgroup: bool,
    #[command(subcommand)]
    pub command: OciCommand,
}

#[derive(Debug, Subcommand)]
pub enum OciCommand {
    /// Create a container (its init waits for `start`)
    Create(CreateArgs),
    /// Start a created container's user process
    Start(IdArg),
    /// Output the state of a container as JSON
    State(IdArg),
    /// Send a signal (default SIGTERM) to the container's init
    Kill(KillArgs),
    /// Delete a container's resources
    Delete(DeleteArgs),
    /// Create and start a container, wait for it, delete it
    Run(RunArgs),
    /// Run a new process inside a container
    Exec(ExecArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Path to the bundle directory
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// File to write the init process's pid to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket to send the pty master to (terminal: true)
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Path to the bundle directory
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// File to write the init process's pid to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Do not wait: leave the container running
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Unix socket to send the pty master to (terminal: true)
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct IdArg {
    pub id: String,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Send the signal to all processes of the container
    #[arg(short = 'a', long)]
    pub all: bool,
    pub id: String,
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Kill the container first if it is running
    #[arg(short = 'f', long)]
    pub force: bool,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Run in the background
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Environment variables (K=V)
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Working directory
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// UID[:GID]
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// File to write the process's pid to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    pub id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

/// runc's `--root` when given on the command line, else `ROOT/oci`.
fn state_root(ctx: &Context) -> anyhow::Result<PathBuf> {
    if ctx.global.root_on_command_line {
        let dir = &ctx.global.root;
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the runtime state directory {}", dir.display()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting {}", dir.display()))?;
        return Ok(dir.canonicalize()?);
    }
    Ok(ctx.root()?.subdir("oci")?)
}

/// One `--log` line for `message`, as runc (logrus) writes them.
fn log_line(format: &str, level: &str, message: &str) -> String {
    let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    if format == "json" {
        json!({"level": level, "msg": message, "time": time}).to_string()
    } else {
        format!("time={time:?} level={level} msg={message:?}")
    }
}

/// Dispatches `berth oci …`; an error is also appended to `--log`.
pub fn run(ctx: &Context, args: OciArgs) -> anyhow::Result<()> {
    let (log, format) = (args.log.clone(), args.log_format.clone());
    let result = dispatch(ctx, args);
    if let (Err(err), Some(log)) = (&result, &log) {
        use std::io::Write as _;
        let message = match err.downcast_ref::<Exit>() {
            Some(exit) => exit.message.clone(),
            None => format!("{err:#}"),
        };
        if !message.is_empty() {
            let line = log_line(&format, "error", &message);
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .with_context(|| format!("opening the runtime log {}", log.display()))?;
            writeln!(f, "{line}").with_context(|| format!("writing {}", log.display()))?;
        }
    }
    result
}

fn bundle_path(p: &std::path::Path) -> anyhow::Result<PathBuf> {
    let b = p
        .canonicalize()
        .with_context(|| format!("bundle {}", p.display()))?;
    if !b.join("config.json").is_file() {
        bail!("bundle {} has no config.json", b.display());
    }
    Ok(b)
}

fn status_name(s: libcontainer::container::ContainerStatus) -> &'static str {
    use libcontainer::container::ContainerStatus::*;
    match s {
        Creating => "creating",
        Created => "created",
        Running => "running",
        Stopped => "stopped",
        Paused => "paused",
    }
}

fn wait_exit(pid: nix::unistd::Pid) -> anyhow::Result<i32> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, c)) => return Ok(c),
            Ok(WaitStatus::Signaled(_, s, _)) => return Ok(128 + s as i32),
            Ok(_) | Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e).context("waiting for the container process"),
        }
    }
}

fn dispatch(ctx: &Context, args: OciArgs) -> anyhow::Result<()> {
    if args.systemd_cgroup {
        // runc's own refusal where systemd is not the init: its driver
        // talks to systemd over D-Bus. berth's engine has only cgroupfs.
        if !std::path::Path::new("/run/systemd/system").exists() {
            bail!("systemd cgroup flag passed, but systemd support for managing cgroups is not available: this host does not run systemd");
        }
        bail!("--systemd-cgroup: berth's engine manages cgroups through cgroupfs only; configure the runtime with the cgroupfs driver (containerd: SystemdCgroup = false; podman: --cgroup-manager cgroupfs)");
    }
    let root = state_root(ctx)?;
    match args.command {
        OciCommand::Create(a) => {
            let bundle = bundle_path(&a.bundle)?;
            let stdio = Stdio {
                console_socket: a.console_socket,
                ..Default::default()
            };
            engine::create(&a.id, &root, &bundle, stdio, a.pid_file.map(absolute))?;
            Ok(())
        }
        OciCommand::Start(a) => Ok(engine::start(&a.id, &root)?),
        OciCommand::State(a) => {
            let c = engine::load(&a.id, &root)?;
            let rootfs = oci_spec::runtime::Spec::load(c.bundle().join("config.json"))
                .ok()
                .and_then(|s| s.root().as_ref().map(|r| c.bundle().join(r.path())))
                .unwrap_or_default();
            let v = json!({
                "ociVersion": "1.0.2",
                "id": c.id(),
                "pid": c.pid().map(|p| p.as_raw()).unwrap_or(0),
                "status": status_name(c.status()),
                "bundle": c.bundle(),
                "rootfs": rootfs,
                "created": c.created(),
                "owner": "",
            });
            super::output::print_json(&v)
        }
        OciCommand::Kill(a) => {
            let sig = if a.signal.starts_with("SIG") || a.signal.parse::<i32>().is_ok() {
                a.signal.clone()
            } else {
                format!("SIG{}", a.signal)
            };
            Ok(engine::kill(&a.id, &root, &sig, a.all)?)
        }
        OciCommand::Delete(a) => {
            // As runc: an unknown id is an error, unless --force.
            if !root.join(&a.id).exists() {
                if a.force {
                    return Ok(());
                }
                bail!("container {} does not exist", a.id);
            }
            Ok(engine::delete(&a.id, &root, a.force)?)
        }
        OciCommand::Run(a) => {
            let bundle = bundle_path(&a.bundle)?;
            let stdio = Stdio {
                console_socket: a.console_socket,
                ..Default::default()
            };
            let mut c = engine::create(&a.id, &root, &bundle, stdio, a.pid_file.map(absolute))?;
            if let Err(e) = c.start() {
                let _ = engine::delete(&a.id, &root, true);
                let msg = e.to_string();
                return Err(Exit {
                    code: engine::start_failure_code(&msg),
                    message: msg,
                }
                .into());
            }
            if a.detach {
                return Ok(());
            }
            let pid = c.pid().context("the container has no init pid")?;
            let code = wait_exit(pid)?;
            let _ = engine::delete(&a.id, &root, true);
            if code != 0 {
                return Err(Exit::silent(code).into());
            }
            Ok(())
        }
        OciCommand::Exec(a) => {
            let (uid, gid) = match a.user.as_deref() {
                Some(u) => {
                    let (u, g) = u.split_once(':').unwrap_or((u, ""));
                    (
                        Some(u.parse().context("--user takes UID[:GID]")?),
                        if g.is_empty() {
                            None
                        } else {
                            Some(g.parse().context("--user takes UID[:GID]")?)
                        },
                    )
                }
                None => (None, None),
            };
            let env: HashMap<String, String> = a
                .env
                .iter()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let pid = engine::exec(
                &a.id,
                &root,
                ExecOptions {
                    args: a.command,
                    env,
                    cwd: a.cwd,
                    uid,
                    gid,
                    additional_gids: Vec::new(),
                    process: None,
                    detach: a.detach,
                },
                Stdio::default(),
            )
            .map_err(|e| {
                let msg = e.to_string();
                Exit {
                    code: engine::start_failure_code(&msg),
                    message: msg,
                }
            })?;
            if let Some(f) = a.pid_file {
                std::fs::write(&f, pid.to_string())
                    .with_context(|| format!("writing {}", f.display()))?;
            }
            if a.detach {
                return Ok(());
            }
            let code = wait_exit(pid)?;
            if code != 0 {
                return Err(Exit::silent(code).into());
            }
            Ok(())
        }
    }
}

fn absolute(p: PathBuf) -> PathBuf {
    if p.is_absolute() {
        p
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    }
}
