//! `berth oci …`: an OCI runtime command line (runc's verbs, flags and state
//! JSON) over berth's engine, so tooling that drives runc can drive berth.
//!
//! The lifecycle is the runtime spec's
//! (<https://github.com/opencontainers/runtime-spec/blob/main/runtime.md>):
//! `create` sets up the container from a bundle and leaves its init waiting,
//! `start` runs the user's process, `state` reports, `kill` signals,
//! `delete` removes. `run` is create+start+wait. State lives in `ROOT/oci/`
//! (runc's `--root` is berth's `--root/oci`).

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use nix::sys::wait::{waitpid, WaitStatus};
use serde_json::json;

use super::{Context, Exit};
use crate::runtime::engine::{self, ExecOptions, Stdio};

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

fn state_root(ctx: &Context) -> anyhow::Result<PathBuf> {
    Ok(ctx.root()?.subdir("oci")?)
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

/// Dispatches `berth oci …`.
pub fn run(ctx: &Context, cmd: OciCommand) -> anyhow::Result<()> {
    let root = state_root(ctx)?;
    match cmd {
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
        OciCommand::Delete(a) => Ok(engine::delete(&a.id, &root, a.force)?),
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
