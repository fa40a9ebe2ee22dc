//! `exec -t`: relaying our terminal to a process on a new pty.
//!
//! The process's side of the pty is its terminal; we hold the master and
//! copy between it and our stdin/stdout until every process holding the
//! slave has closed it (a read gives EIO then), forwarding window-size
//! changes (SIGWINCH) and detaching on ctrl-p ctrl-q as `docker exec -it`
//! does. A detached process keeps running: see [`keep_running_detached`].

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use super::attach::{window_size, DetachKeys, RawMode};

/// How a pty relay ended.
#[derive(Debug, PartialEq, Eq)]
pub enum PtyEnd {
    /// The process exited with this status (128+N for a signal).
    Exited(i32),
    /// The user detached; the process runs on.
    Detached,
}

/// Copies between our terminal and `master` (the pty of process `pid`)
/// until the process's side closes or the user detaches. With
/// `interactive`, our stdin is in raw mode and forwarded.
pub fn relay(pid: Pid, master: std::fs::File, interactive: bool) -> std::io::Result<PtyEnd> {
    let raw = interactive.then(RawMode::enter);
    forward_window_size(&master)?;
    let detached = Arc::new(AtomicBool::new(false));
    if interactive {
        forward_stdin(master.try_clone()?, detached.clone());
    }
    let mut out = std::io::stdout().lock();
    let mut buf = [0u8; 16 * 1024];
    let mut reader = &master;
    loop {
        if detached.load(Ordering::SeqCst) {
            drop(raw);
            keep_running_detached(master)?;
            return Ok(PtyEnd::Detached);
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
            Err(e) => return Err(e.into()),
        }
    };
    drop(raw);
    Ok(PtyEnd::Exited(code))
}

/// Window-size changes: SIGWINCH, blocked here before any thread starts
/// so that only the waiting thread takes it.
fn forward_window_size(master: &std::fs::File) -> std::io::Result<()> {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGWINCH);
    if set.thread_block().is_ok() {
        let m = master.try_clone()?;
        std::thread::spawn(move || loop {
            if set.wait().is_ok() {
                if let Some((r, c)) = window_size() {
                    crate::runtime::supervisor::set_window_size(&m, r, c);
                }
            }
        });
    }
    Ok(())
}

/// Our stdin to the pty, on a thread, until EOF (sent on as the terminal's
/// end-of-file character) or ctrl-p ctrl-q (which sets `detached`).
fn forward_stdin(mut m: std::fs::File, detached: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut keys = DetachKeys::default();
        let mut stdin = std::io::stdin().lock();
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = m.write_all(&[0x04]);
                    return;
                }
                Ok(n) => {
                    let (data, detach) = keys.feed(&buf[..n]);
                    if m.write_all(&data).is_err() {
                        return;
                    }
                    if detach {
                        detached.store(true, Ordering::SeqCst);
                        return;
                    }
                }
            }
        }
    });
}

/// After ctrl-p ctrl-q the exec'd process keeps running, as under Docker,
/// whose daemon holds the terminal. berth has no daemon, and a pty whose
/// master closes hangs up its processes, so a small detached process
/// (`berth __pty-drain`, its own session) takes over the master and reads
/// and discards the output until the process's side closes.
fn keep_running_detached(master: std::fs::File) -> std::io::Result<()> {
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
    cmd.spawn().map(drop).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("handing the exec's terminal to a drain process: {e}"),
        )
    })
}

/// `berth __pty-drain`: reads the terminal master on fd 3 until the other
/// side closes (see [`keep_running_detached`]).
pub fn drain() {
    use std::os::fd::FromRawFd;
    // SAFETY: fd 3 was dup2'd for this process by keep_running_detached.
    let mut master = unsafe { std::fs::File::from_raw_fd(3) };
    let mut buf = [0u8; 16 * 1024];
    loop {
        match master.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}
