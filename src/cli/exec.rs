//! `berth exec`: a new process in a running container's namespaces, cgroup,
//! user and confinement (libcontainer's tenant container).
//!
//! The process inherits this command's stdin/stdout/stderr, so with `-it` on
//! a terminal it talks to that terminal directly. berth runs from a sealed
//! copy of itself here (see `main.rs`) because the process forked into the
//! container is berth until it execs.

use std::collections::HashMap;
use std::os::fd::OwnedFd;

use anyhow::{bail, Context as _};
use clap::Args;
use nix::sys::wait::{waitpid, WaitStatus};

use super::{Context, Exit};
use crate::runtime::container::ContainerStore;
use crate::runtime::engine::{self, ExecOptions, Stdio};
use crate::runtime::{spec, user};

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep STDIN open
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY (the process uses this command's terminal)
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    pub container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

pub fn exec(ctx: &Context, args: ExecArgs) -> anyhow::Result<()> {
    let store = ContainerStore::open(&ctx.root()?)?;
    let id = store.resolve(&args.container)?;
    let config = store.config(&id)?;
    let st = store.state(&id)?;
    if !super::ps::observe(&st).running {
        return Err(Exit {
            code: 1,
            message: format!("container {id} is not running"),
        }
        .into());
    }
    let rootfs = store.dir(&id).join("rootfs");
    let who = args.user.clone().unwrap_or(config.user.clone());
    let u = user::resolve_in_rootfs(&who, &rootfs)?;
    let mut env: HashMap<String, String> = HashMap::new();
    let mut extra = args.env.clone();
    if args.tty {
        extra.push(format!(
            "TERM={}",
            std::env::var("TERM").unwrap_or_else(|_| "xterm".into())
        ));
    }
    for kv in spec::build_env(
        &config.image_env,
        &config.env,
        &config.hostname,
        &u.home,
        false,
    )
    .into_iter()
    .chain(extra)
    {
        if let Some((k, v)) = kv.split_once('=') {
            env.insert(k.to_string(), v.to_string());
        }
    }
    let cwd = args.workdir.clone().map(std::path::PathBuf::from);
    if cwd.as_ref().is_some_and(|c| c.is_relative()) {
        bail!("the working directory must be an absolute path");
    }
    let stdio = if args.detach {
        let null = |w: bool| -> anyhow::Result<OwnedFd> {
            Ok(OwnedFd::from(
                std::fs::OpenOptions::new()
                    .read(!w)
                    .write(w)
                    .open("/dev/null")?,
            ))
        };
        Stdio {
            stdin: Some(null(false)?),
            stdout: Some(null(true)?),
            stderr: Some(null(true)?),
            console_socket: None,
        }
    } else if !args.interactive {
        Stdio {
            stdin: Some(OwnedFd::from(std::fs::File::open("/dev/null")?)),
            ..Default::default()
        }
    } else {
        Stdio::default()
    };
    let lc = store.dir(&id).join("lc");
    let pid = match engine::exec(
        &id,
        &lc,
        ExecOptions {
            args: args.command.clone(),
            env,
            cwd,
            uid: Some(u.uid),
            gid: Some(u.gid),
            additional_gids: u.additional_gids,
            detach: args.detach,
        },
        stdio,
    ) {
        Ok(pid) => pid,
        Err(e) => {
            let msg = e.to_string();
            return Err(Exit {
                code: engine::start_failure_code(&msg),
                message: format!("exec in container {}: {msg}", args.container),
            }
            .into());
        }
    };
    if args.detach {
        return Ok(());
    }
    let code = loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, c)) => break c,
            Ok(WaitStatus::Signaled(_, s, _)) => break 128 + s as i32,
            Ok(_) => continue,
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e).context("waiting for the exec'd process"),
        }
    };
    if code != 0 {
        return Err(Exit::silent(code).into());
    }
    Ok(())
}
