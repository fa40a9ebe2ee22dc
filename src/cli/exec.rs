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

use std::os::fd::OwnedFd;

use anyhow::Context as _;
use clap::Args;
use nix::sys::wait::{waitpid, WaitStatus};

use super::{Context, Exit};
use crate::engine::exec::{ExecRequest, PreparedExec};
use crate::engine::Engine;
use crate::runtime::engine::Stdio;

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
    } else {
        // Pipes, never our own fds: they may be the caller's terminal.
        let (stdio, ours) = super::exec_stdio::Pipes::new(args.flags.interactive)?;
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

/// `exec -t`: the process on a new pty; copies between our terminal and the
/// master until the process's side closes, then returns its exit code.
fn exec_with_pty(engine: &Engine, prep: &PreparedExec, args: &ExecArgs) -> anyhow::Result<()> {
    use std::io::{Read, Write};

    let (pid, master) = engine.exec_on_pty(prep, super::stream::window_size())?;
    let _raw = args.flags.interactive.then(super::stream::RawMode::enter);

    // Window-size changes: SIGWINCH, blocked here before any thread starts
    // so that only the waiting thread takes it.
    {
        use nix::sys::signal::{SigSet, Signal};
        let mut set = SigSet::empty();
        set.add(Signal::SIGWINCH);
        if set.thread_block().is_ok() {
            let m = master.try_clone()?;
            std::thread::spawn(move || loop {
                if set.wait().is_ok() {
                    if let Some((r, c)) = super::stream::window_size() {
                        crate::runtime::supervisor::set_window_size(&m, r, c);
                    }
                }
            });
        }
    }
    let detached = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    if args.flags.interactive {
        let mut m = master.try_clone()?;
        let detached = detached.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut keys = super::stream::DetachKeys::default();
            let mut stdin = std::io::stdin().lock();
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        // EOF: the terminal's end-of-file character.
                        let _ = m.write_all(&[0x04]);
                        return;
                    }
                    Ok(n) => {
                        let (data, detach) = keys.feed(&buf[..n]);
                        if m.write_all(&data).is_err() {
                            return;
                        }
                        if detach {
                            detached.store(true, std::sync::atomic::Ordering::SeqCst);
                            return;
                        }
                    }
                }
            }
        });
    }
    // Output until the slave side is closed by every process holding it
    // (read gives EIO then), or until the user detaches.
    let mut out = std::io::stdout().lock();
    let mut buf = [0u8; 16 * 1024];
    let mut reader = &master;
    loop {
        if detached.load(std::sync::atomic::Ordering::SeqCst) {
            drop(_raw);
            return keep_running_detached(master);
        }
        {
            use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
            let mut pfd = [PollFd::new(
                std::os::fd::AsFd::as_fd(&master),
                PollFlags::POLLIN,
            )];
            match poll(&mut pfd, PollTimeout::from(100u16)) {
                Ok(0) => continue,
                Err(nix::Error::EINTR) => continue,
                _ => {}
            }
        }
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if out.write_all(&buf[..n]).and_then(|_| out.flush()).is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
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
    drop(_raw);
    if code != 0 {
        return Err(Exit::silent(code).into());
    }
    Ok(())
}

/// After ctrl-p ctrl-q the exec'd process keeps running, as under Docker,
/// whose daemon holds the terminal. berth has no daemon, and a pty whose
/// master closes hangs up its processes, so a small detached process
/// (`berth __pty-drain`, its own session) takes over the master and reads
/// and discards the output until the process's side closes.
fn keep_running_detached(master: std::fs::File) -> anyhow::Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let fd = master.as_raw_fd();
    let mut cmd = std::process::Command::new("/proc/self/exe");
    cmd.arg("__pty-drain")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: between fork and exec only async-signal-safe calls (dup2,
    // setsid) on descriptors we own.
    unsafe {
        cmd.pre_exec(move || {
            // dup2 onto itself would keep close-on-exec: clear it instead.
            let moved = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, 3)
            };
            if moved < 0 || libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
        .context("handing the exec's terminal to a drain process")?;
    Ok(())
}

/// `berth __pty-drain`: reads the terminal master on fd 3 until the other
/// side closes (see [`keep_running_detached`]).
pub fn pty_drain() -> anyhow::Result<()> {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    // SAFETY: fd 3 was dup2'd for this process by keep_running_detached.
    let mut master = unsafe { std::fs::File::from_raw_fd(3) };
    let mut buf = [0u8; 16 * 1024];
    loop {
        match master.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Ok(()),
        }
    }
}
