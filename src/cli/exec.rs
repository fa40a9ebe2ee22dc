//! `berth exec`: a new process in a running container's namespaces, cgroup,
//! user and confinement (libcontainer's tenant container).
//!
//! Without `-t` the process gets pipes (`exec_stdio.rs`), as with Docker,
//! never this command's own stdin/stdout/stderr. It starts in the
//! container's working directory unless `-w` says otherwise, and with `-t`
//! gets `TERM=xterm` (as Docker) unless `-e` sets it.
//! With `-t` it gets a terminal of its own, as with Docker: a new pty in the
//! container's devpts (the OCI `process.terminal`; libcontainer sends the
//! master over a console socket), so a shell has job control and its own
//! window size; this command copies between its terminal (raw mode with
//! `-i`) and the master, and passes its window size on at start and on each
//! SIGWINCH. berth runs from a sealed copy of itself here (see `main.rs`)
//! because the process forked into the container is berth until it execs.

use anyhow::Context as _;
use clap::Args;

use super::{Context, Exit};
use crate::engine::exec::{ExecRequest, PreparedExec};
use crate::engine::Engine;
use crate::terminal::attach;
use crate::terminal::pipes::Pipes;
use crate::terminal::pty::{self, PtyEnd};

/// The flags of `exec`, shared with `compose exec`.
#[derive(Debug, Clone, Args)]
pub struct ExecFlags {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep STDIN open
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
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
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub flags: ExecFlags,
    pub container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

pub fn exec(ctx: &Context, args: ExecArgs) -> anyhow::Result<()> {
    let engine = Engine::open(&ctx.root()?)?;
    let req = ExecRequest {
        command: args.command.clone(),
        user: args.flags.user.clone(),
        workdir: args.flags.workdir.clone(),
        env: args.flags.env.clone(),
        tty: args.flags.tty,
    };
    let prep = engine.exec_prepare(&args.container, &req)?;
    if args.flags.tty && !args.flags.detach {
        return exec_with_pty(&engine, &prep, &args);
    }
    let mut pipes = None;
    let stdio = if args.flags.detach {
        crate::terminal::pipes::null_stdio()?
    } else {
        // Pipes, never our own fds: they may be the caller's terminal.
        let (stdio, ours) = Pipes::new(args.flags.interactive)?;
        pipes = Some(ours);
        stdio
    };
    let pid = engine.exec_spawn(&prep, stdio, args.flags.detach)?;
    let Some(pipes) = pipes else {
        return Ok(());
    };
    let code = pipes.run(pid)?;
    if code != 0 {
        return Err(Exit::silent(code).into());
    }
    Ok(())
}

/// `exec -t`: the process on a new pty, relayed to our terminal.
fn exec_with_pty(engine: &Engine, prep: &PreparedExec, args: &ExecArgs) -> anyhow::Result<()> {
    let (pid, master) = engine.exec_on_pty(prep, attach::window_size())?;
    match pty::relay(pid, master, args.flags.interactive).context("relaying the exec's terminal")? {
        PtyEnd::Exited(0) | PtyEnd::Detached => Ok(()),
        PtyEnd::Exited(code) => Err(Exit::silent(code).into()),
    }
}
