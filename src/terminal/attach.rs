//! The client side of attach: copies a container's output frames to our
//! stdout/stderr, our stdin to the container, and for a tty puts the local
//! terminal in raw mode, forwards window-size changes and detaches on
//! ctrl-p ctrl-q.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use nix::sys::termios::{self, SetArg, Termios};

use crate::runtime::attach;

/// How a stream session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The container exited with this code.
    Exited(i32),
    /// The user detached (ctrl-p ctrl-q).
    Detached,
    /// The supervisor closed the connection without an exit code.
    Lost,
}

/// Restores the terminal mode on drop.
pub struct RawMode(Option<Termios>);

impl RawMode {
    pub fn enter() -> Self {
        let stdin = std::io::stdin();
        match termios::tcgetattr(&stdin) {
            Ok(orig) => {
                let mut raw = orig.clone();
                termios::cfmakeraw(&mut raw);
                let _ = termios::tcsetattr(&stdin, SetArg::TCSANOW, &raw);
                Self(Some(orig))
            }
            Err(_) => Self(None),
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(orig) = &self.0 {
            let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, orig);
        }
    }
}

/// The terminal size of our stdin, if it is a terminal.
pub fn window_size() -> Option<(u16, u16)> {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ fills a winsize.
    let r = unsafe { libc::ioctl(std::io::stdin().as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
}

/// Docker's sig-proxy: signals this command receives (SIGINT, SIGTERM, …)
/// are passed to the container's process by `forward` instead of ending us.
/// Blocks them in the calling thread, so call before spawning other threads.
pub fn proxy_signals(forward: impl Fn(nix::sys::signal::Signal) + Send + 'static) {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
        set.add(s);
    }
    if set.thread_block().is_err() {
        return;
    }
    std::thread::spawn(move || loop {
        if let Ok(sig) = set.wait() {
            forward(sig);
        }
    });
}

/// Docker's detach keys, ctrl-p ctrl-q, found in what the user types. A
/// ctrl-p not followed by ctrl-q is passed on (late, with the next byte),
/// as Docker does; the sequence may be split across reads.
#[derive(Debug, Default)]
pub struct DetachKeys {
    pending_ctrl_p: bool,
}

impl DetachKeys {
    const CTRL_P: u8 = 0x10;
    const CTRL_Q: u8 = 0x11;

    /// The bytes to forward, and whether the user asked to detach (the
    /// bytes before the sequence are still forwarded).
    pub fn feed(&mut self, data: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(data.len() + 1);
        for &b in data {
            if std::mem::take(&mut self.pending_ctrl_p) {
                if b == Self::CTRL_Q {
                    return (out, true);
                }
                out.push(Self::CTRL_P);
            }
            if b == Self::CTRL_P {
                self.pending_ctrl_p = true;
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

/// Runs a session over `stream` until the container exits or we detach.
pub fn session(stream: UnixStream, forward_stdin: bool, tty: bool) -> std::io::Result<Ended> {
    let _raw = if tty && forward_stdin {
        Some(RawMode::enter())
    } else {
        None
    };
    let (detach_tx, detach_rx) = std::sync::mpsc::channel::<()>();
    if forward_stdin {
        let mut writer = stream.try_clone()?;
        std::thread::spawn(move || {
            let mut last_size = None;
            let mut buf = [0u8; 4096];
            let mut keys = DetachKeys::default();
            let stdin = std::io::stdin();
            loop {
                if tty {
                    let size = window_size();
                    if size.is_some() && size != last_size {
                        last_size = size;
                        let (r, c) = size.unwrap_or((24, 80));
                        if writer.write_all(&attach::resize_frame(r, c)).is_err() {
                            return;
                        }
                    }
                }
                let mut pfd = [nix::poll::PollFd::new(
                    stdin.as_fd_borrowed(),
                    nix::poll::PollFlags::POLLIN,
                )];
                match nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(200u16)) {
                    Ok(0) => continue,
                    Err(nix::Error::EINTR) => continue,
                    Err(_) => return,
                    Ok(_) => {}
                }
                let n = match stdin.lock().read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = writer.write_all(&attach::encode(attach::STDIN_EOF, &[]));
                        return;
                    }
                    Ok(n) => n,
                };
                let (data, detach) = if tty {
                    keys.feed(&buf[..n])
                } else {
                    (buf[..n].to_vec(), false)
                };
                if detach {
                    if !data.is_empty() {
                        let _ = writer.write_all(&attach::encode(attach::STDIN, &data));
                    }
                    let _ = detach_tx.send(());
                    let _ = writer.shutdown(std::net::Shutdown::Both);
                    return;
                }
                if !data.is_empty()
                    && writer
                        .write_all(&attach::encode(attach::STDIN, &data))
                        .is_err()
                {
                    return;
                }
            }
        });
    } else if tty {
        if let Some((r, c)) = window_size() {
            (&stream).write_all(&attach::resize_frame(r, c))?;
        }
    }
    let mut reader = stream;
    let mut decoder = attach::Decoder::default();
    let mut buf = [0u8; 16 * 1024];
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    loop {
        let n = match reader.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => 0,
        };
        if n == 0 {
            if detach_rx.recv_timeout(Duration::from_millis(10)).is_ok() {
                return Ok(Ended::Detached);
            }
            return Ok(Ended::Lost);
        }
        decoder.feed(&buf[..n]);
        while let Some((kind, payload)) = decoder
            .next_frame()
            .map_err(|e| std::io::Error::other(e.to_string()))?
        {
            match kind {
                attach::STDOUT => {
                    let mut o = stdout.lock();
                    o.write_all(&payload)?;
                    o.flush()?;
                }
                attach::STDERR => {
                    let mut e = stderr.lock();
                    e.write_all(&payload)?;
                    e.flush()?;
                }
                attach::EXIT => return Ok(Ended::Exited(attach::exit_code(&payload))),
                _ => {}
            }
        }
    }
}

trait AsFdBorrowed {
    fn as_fd_borrowed(&self) -> std::os::fd::BorrowedFd<'_>;
}

impl AsFdBorrowed for std::io::Stdin {
    fn as_fd_borrowed(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.as_fd()
    }
}

#[cfg(test)]
mod detach_tests {
    use super::DetachKeys;

    #[test]
    fn ctrl_p_ctrl_q_detaches_and_a_lone_ctrl_p_passes_through() {
        // (reads, forwarded in all, detached)
        type Case<'a> = (&'a [&'a [u8]], &'a [u8], bool);
        let cases: &[Case] = &[
            (&[b"ls\r"], b"ls\r", false),
            (&[b"ab\x10\x11cd"], b"ab", true),
            (&[b"ab\x10", b"\x11"], b"ab", true),
            (&[b"\x10x"], b"\x10x", false),
            (&[b"\x10", b"x"], b"\x10x", false),
            (&[b"\x10\x10\x11"], b"\x10", true),
            (&[b"\x11"], b"\x11", false),
        ];
        for (reads, want, want_detach) in cases {
            let mut keys = DetachKeys::default();
            let mut got = Vec::new();
            let mut detached = false;
            for r in *reads {
                let (out, d) = keys.feed(r);
                got.extend(out);
                if d {
                    detached = true;
                    break;
                }
            }
            assert_eq!((&got[..], detached), (*want, *want_detach), "{reads:?}");
        }
    }
}
