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

use std::collections::HashMap;
use std::os::fd::OwnedFd;

use anyhow::{bail, Context as _};
use clap::Args;
use nix::sys::wait::{waitpid, WaitStatus};

use super::{Context, Exit};
use crate::runtime::container::ContainerStore;
use crate::runtime::engine::{self, ExecOptions, Stdio};
use crate::runtime::{spec, user};

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
    let who = args.flags.user.clone().unwrap_or(config.user.clone());
    let u = user::resolve_in_rootfs(&who, &rootfs)?;
    let mut env: HashMap<String, String> = HashMap::new();
    // Docker's TERM for a terminal it makes, not the caller's (whose
    // terminfo the image rarely has); `-e TERM=…` still wins.
    let mut extra = Vec::new();
    if args.flags.tty {
        extra.push("TERM=xterm".to_string());
    }
    extra.extend(args.flags.env.iter().cloned());
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
    // Without -w, the container's working directory (Docker's rule for
    // exec, with or without -t).
    let cwd = std::path::PathBuf::from(
        args.flags
            .workdir
            .clone()
            .unwrap_or_else(|| config.working_dir().to_string()),
    );
    if cwd.is_relative() {
        bail!("the working directory must be an absolute path");
    }
    let cwd = Some(cwd);
    if args.flags.tty && !args.flags.detach {
        return exec_with_pty(&store, &id, &args, env, cwd, u);
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
            detach: args.flags.detach,
            process: None,
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
    let Some(pipes) = pipes else {
        return Ok(());
    };
    let code = pipes.run(pid)?;
    if code != 0 {
        return Err(Exit::silent(code).into());
    }
    Ok(())
}

/// Removes a socket file on drop.
struct Unlink(std::path::PathBuf);

impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `exec -t`: the process on a new pty; copies between our terminal and the
/// master until the process's side closes, then returns its exit code.
fn exec_with_pty(
    store: &ContainerStore,
    id: &str,
    args: &ExecArgs,
    env: HashMap<String, String>,
    cwd: Option<std::path::PathBuf>,
    u: user::ResolvedUser,
) -> anyhow::Result<()> {
    use std::io::{Read, Write};

    let dir = store.dir(id);
    // The container's own process (capabilities, rlimits, no_new_privileges,
    // ...) with the exec's command, environment, user and a terminal.
    let spec = oci_spec::runtime::Spec::load(dir.join("bundle/config.json"))
        .context("reading the container's spec")?;
    let mut process = spec
        .process()
        .clone()
        .context("the container's spec has no process")?;
    let mut envv: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    envv.sort();
    process.set_args(Some(args.command.clone()));
    process.set_env(Some(envv));
    if let Some(c) = cwd {
        process.set_cwd(c);
    }
    let mut puser = process.user().clone();
    puser.set_uid(u.uid);
    puser.set_gid(u.gid);
    puser.set_additional_gids(Some(u.additional_gids.clone()));
    process.set_user(puser);
    process.set_terminal(Some(true));
    let size = super::stream::window_size();
    // The pty starts at the caller's size (patched libcontainer applies
    // consoleSize before the process runs): a program that asks at once,
    // like `stty size`, must not see 0x0.
    if let Some((rows, cols)) = size {
        process.set_console_size(Some(
            oci_spec::runtime::BoxBuilder::default()
                .height(u64::from(rows))
                .width(u64::from(cols))
                .build()
                .context("the console size")?,
        ));
    }
    let process_file = tempfile::Builder::new()
        .prefix("exec-")
        .suffix(".json")
        .tempfile_in(&dir)
        .context("writing the exec process file")?;
    serde_json::to_writer(process_file.as_file(), &process)?;

    let sock_name = format!("exec-{}.sock", std::process::id());
    let listener = crate::runtime::supervisor::bind_short(&dir, &sock_name)?;
    let _unlink = Unlink(dir.join(&sock_name));
    let pid = engine::exec(
        id,
        &dir.join("lc"),
        ExecOptions {
            args: args.command.clone(),
            detach: true,
            process: Some(process_file.path().to_path_buf()),
            ..Default::default()
        },
        Stdio {
            console_socket: Some(dir.join(&sock_name)),
            ..Default::default()
        },
    )
    .map_err(|e| {
        let msg = e.to_string();
        anyhow::Error::from(Exit {
            code: engine::start_failure_code(&msg),
            message: format!("exec in container {}: {msg}", args.container),
        })
    })?;
    drop(process_file);
    // The process sent the master before exec; wait for it, bounded.
    listener.set_nonblocking(true)?;
    {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut pfd = [PollFd::new(
            std::os::fd::AsFd::as_fd(&listener),
            PollFlags::POLLIN,
        )];
        if !matches!(poll(&mut pfd, PollTimeout::from(10_000u16)), Ok(n) if n > 0) {
            bail!("exec in container {}: no terminal received", args.container);
        }
    }
    let (conn, _) = listener.accept().context("accepting the console socket")?;
    conn.set_nonblocking(false)?;
    let master = std::fs::File::from(
        crate::runtime::supervisor::recv_fd(&conn).context("receiving the terminal")?,
    );
    drop(conn);
    if let Some((r, c)) = size {
        crate::runtime::supervisor::set_window_size(&master, r, c);
    }
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
