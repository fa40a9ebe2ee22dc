//! `exec` without `-t`: the process gets pipes, never this command's own
//! file descriptors.
//!
//! Handing the caller's stdin/stdout/stderr to a process inside the
//! container would give it the caller's terminal when there is one: it
//! could read from it, change its modes, or push input into it
//! (`TIOCSTI`). Docker's exec copies through the daemon, so the process
//! only ever sees pipes; berth does the same here. Stdin is a pipe only
//! with `-i` (else `/dev/null`); what the process writes is copied to our
//! stdout and stderr until it closes them, or, once it has exited, until a
//! short pause shows nothing more is coming (a background child that kept
//! the pipes does not hold `exec` open, which Docker's would).

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::runtime::engine::Stdio;

/// Our ends of the process's pipes.
pub struct Pipes {
    stdin: Option<OwnedFd>,
    stdout: OwnedFd,
    stderr: OwnedFd,
}

/// Stdio for a detached process: `/dev/null` on all three.
pub fn null_stdio() -> std::io::Result<Stdio> {
    let null = |write: bool| -> std::io::Result<OwnedFd> {
        Ok(OwnedFd::from(
            std::fs::OpenOptions::new()
                .read(!write)
                .write(write)
                .open("/dev/null")?,
        ))
    };
    Ok(Stdio {
        stdin: Some(null(false)?),
        stdout: Some(null(true)?),
        stderr: Some(null(true)?),
        console_socket: None,
    })
}

/// How long output is still awaited after the process has exited.
const AFTER_EXIT: Duration = Duration::from_millis(100);

impl Pipes {
    /// The process's [`Stdio`] (pipes; stdin `/dev/null` without `interactive`)
    /// and our ends.
    pub fn new(interactive: bool) -> std::io::Result<(Stdio, Pipes)> {
        let pipe =
            || nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from);
        let (their_in, our_in) = if interactive {
            let (r, w) = pipe()?;
            (r, Some(w))
        } else {
            (OwnedFd::from(std::fs::File::open("/dev/null")?), None)
        };
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        Ok((
            Stdio {
                stdin: Some(their_in),
                stdout: Some(out_w),
                stderr: Some(err_w),
                console_socket: None,
            },
            Pipes {
                stdin: our_in,
                stdout: out_r,
                stderr: err_r,
            },
        ))
    }

    /// Copies between our stdio and the pipes until the process `pid` has
    /// exited and its output is drained; returns its exit status (128+N
    /// for a signal). Call after the fork into the container: stdin is
    /// copied on a thread.
    pub fn run(self, pid: Pid) -> std::io::Result<i32> {
        if let Some(w) = self.stdin {
            std::thread::spawn(move || {
                let mut w = std::fs::File::from(w);
                let mut input = std::io::stdin().lock();
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n) = input.read(&mut buf) {
                    if n == 0 || w.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                // Dropping `w` is the process's end of input.
            });
        }
        let mut open = [Some(self.stdout), Some(self.stderr)];
        let mut code = None;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if code.is_none() {
                code = match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::Exited(_, c)) => Some(c),
                    Ok(WaitStatus::Signaled(_, s, _)) => Some(128 + s as i32),
                    Ok(_) | Err(nix::Error::EINTR) => None,
                    Err(e) => return Err(e.into()),
                };
            }
            if open.iter().all(Option::is_none) {
                if let Some(c) = code {
                    return Ok(c);
                }
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            let wait = if code.is_some() {
                PollTimeout::try_from(AFTER_EXIT).unwrap_or(PollTimeout::ZERO)
            } else {
                PollTimeout::from(50u8)
            };
            let ready: Vec<bool> = {
                let fds: Vec<(usize, &OwnedFd)> = open
                    .iter()
                    .enumerate()
                    .filter_map(|(i, f)| f.as_ref().map(|f| (i, f)))
                    .collect();
                let mut pfds: Vec<PollFd> = fds
                    .iter()
                    .map(|(_, f)| PollFd::new(f.as_fd(), PollFlags::POLLIN))
                    .collect();
                match poll(&mut pfds, wait) {
                    Ok(_) | Err(nix::Error::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
                let mut ready = vec![false; 2];
                for ((i, _), p) in fds.iter().zip(&pfds) {
                    ready[*i] = p.revents().is_some_and(|r| !r.is_empty());
                }
                ready
            };
            if code.is_some() && !ready.iter().any(|r| *r) {
                // Exited, and nothing more within the pause.
                return Ok(code.unwrap_or(0));
            }
            for (i, slot) in open.iter_mut().enumerate() {
                if !ready[i] {
                    continue;
                }
                let Some(fd) = slot.as_ref() else { continue };
                match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
                    Ok(0) => *slot = None,
                    Ok(n) => {
                        let _ = if i == 0 {
                            let mut o = std::io::stdout().lock();
                            o.write_all(&buf[..n]).and_then(|_| o.flush())
                        } else {
                            let mut o = std::io::stderr().lock();
                            o.write_all(&buf[..n]).and_then(|_| o.flush())
                        };
                    }
                    Err(nix::Error::EINTR) | Err(nix::Error::EAGAIN) => {}
                    Err(_) => *slot = None,
                }
            }
        }
    }
}
