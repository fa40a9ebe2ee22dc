//! A container's life after `create`: start (its supervisor spawned with a
//! plain exec, waited for until the process runs), stop with a grace,
//! kill, restart, wait, remove, prune.
//!
//! Fork safety: nothing here forks through libcontainer. The supervisor
//! (`berth __supervise ID`) is a fresh single-threaded process started by
//! fork+exec, which is safe from a multi-threaded caller (a parallel `up`);
//! it is the supervisor that creates the container.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use chrono::Utc;
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

use super::{Engine, EngineError};
use crate::network::Networks;
use crate::runtime::container::{pid_alive, supervisor_alive, ContainerStore, STATUS_CORRUPT};
use crate::runtime::supervisor;

/// How to start a container.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Hand back the supervisor's end of an attach stream (`run` without
    /// `-d`, `start -a`).
    pub attach: bool,
    /// The caller's terminal size (rows, cols), for a container with a tty.
    pub tty_size: Option<(u16, u16)>,
    /// The supervisor's `--log-level`.
    pub log_level: Option<String>,
}

/// A started container.
#[derive(Debug)]
pub struct Started {
    /// The attach stream, when asked for.
    pub attach: Option<std::os::unix::net::UnixStream>,
}

/// What became of a start request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOutcome {
    Started,
    /// It was running already.
    AlreadyRunning,
}

/// How long `stop` waits when neither the caller nor the container says.
pub const DEFAULT_STOP_TIMEOUT: u64 = 10;

impl Engine {
    /// Starts a created or stopped container and waits until its process
    /// runs (or its start failed). A container already running is left so.
    pub fn start(
        &self,
        id: &str,
        opts: &StartOptions,
    ) -> Result<(StartOutcome, Started), EngineError> {
        let st = self.store.state(id)?;
        if supervisor_alive(&st) && st.status == "running" {
            return Ok((StartOutcome::AlreadyRunning, Started { attach: None }));
        }
        if supervisor_alive(&st) && st.status != "restarting" {
            // A supervisor finishing its teardown after the exit.
            wait_pid_gone(st.supervisor_pid, Duration::from_secs(10));
        }
        let st = self.store.state(id)?;
        if supervisor_alive(&st) {
            return Err(EngineError::Conflict(format!(
                "container {id} is {}; try again when it has stopped",
                st.status
            )));
        }
        let config = self.store.config(id)?;
        let spawned = self.spawn_supervisor(id, opts)?;
        wait_ready(spawned.ready, &config.name)?;
        Ok((
            StartOutcome::Started,
            Started {
                attach: spawned.attach,
            },
        ))
    }

    /// Spawns `berth __supervise ID`, detached in its own session.
    fn spawn_supervisor(&self, id: &str, opts: &StartOptions) -> Result<Spawned, EngineError> {
        let io = EngineError::io;
        // Start the supervisor straight from a read-only view of the binary
        // (it would otherwise re-exec itself into one, see runtime::seal).
        // (Kept at fd >= 10 so the dup2 onto 3 and 4 below cannot clobber it.)
        let view = crate::runtime::seal::open_readonly_view()
            .ok()
            .and_then(|f| {
                nix::fcntl::fcntl(f.as_raw_fd(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10))
                    .ok()
                    // SAFETY: F_DUPFD_CLOEXEC returned a new fd we now own.
                    .map(|fd| unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) })
            });
        let exe = match &view {
            Some(f) => PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd())),
            None => std::env::current_exe().map_err(io("locating the berth binary"))?,
        };
        let (ready_r, ready_w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| io("pipe")(e.into()))?;
        let (ours, theirs) = if opts.attach {
            let (a, b) = std::os::unix::net::UnixStream::pair().map_err(io("socketpair"))?;
            (Some(a), Some(OwnedFd::from(b)))
        } else {
            (None, None)
        };
        let errlog = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.store.dir(id).join("supervisor.log"))
            .map_err(io("opening the supervisor log"))?;
        let mut cmd = std::process::Command::new(exe);
        cmd.arg0("berth")
            .arg("--root")
            .arg(self.root.path())
            .arg("__supervise")
            .arg(id)
            .arg("--ready-fd")
            .arg("4")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(errlog)
            .env_remove("BERTH_ROOT");
        if let Some(level) = &opts.log_level {
            cmd.arg("--log-level").arg(level);
        }
        if theirs.is_some() {
            cmd.arg("--attach-fd").arg("3");
            if let Some((rows, cols)) = opts.tty_size {
                cmd.arg("--tty-size").arg(format!("{rows}x{cols}"));
            }
        }
        let ready_raw = ready_w.as_raw_fd();
        let attach_raw = theirs.as_ref().map(|f| f.as_raw_fd());
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                libc::setsid();
                if let Some(fd) = attach_raw {
                    if libc::dup2(fd, 3) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if libc::dup2(ready_raw, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // dup2 onto the same number keeps FD_CLOEXEC: clear it.
                libc::fcntl(4, libc::F_SETFD, 0);
                if attach_raw.is_some() {
                    libc::fcntl(3, libc::F_SETFD, 0);
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(io("starting the container supervisor"))?;
        drop(child);
        drop(view);
        drop(ready_w);
        drop(theirs);
        Ok(Spawned {
            ready: std::fs::File::from(ready_r),
            attach: ours,
        })
    }

    /// Stops a container: its stop signal (or `signal`), then SIGKILL after
    /// `grace` seconds (the container's `--stop-timeout`, else 10).
    pub fn stop(
        &self,
        id: &str,
        grace: Option<u64>,
        signal: Option<&str>,
    ) -> Result<(), EngineError> {
        let store = &self.store;
        let config = store.config(id)?;
        let st = store.update_state(id, |s| s.stop_requested = true)?;
        if st.pid > 0 && pid_alive(st.pid) {
            let sig = parse_signal(signal.or(config.stop_signal.as_deref()).unwrap_or("TERM"))?;
            let pid = Pid::from_raw(st.pid);
            let _ = signal::kill(pid, sig);
            let grace = grace
                .or(config.stop_timeout)
                .unwrap_or(DEFAULT_STOP_TIMEOUT);
            if !wait_pid_gone(st.pid, Duration::from_secs(grace)) {
                let _ = signal::kill(pid, Signal::SIGKILL);
                wait_pid_gone(st.pid, Duration::from_secs(10));
            }
            settle(store, id, 137)?;
        } else if supervisor_alive(&st) {
            // Restarting: the supervisor sees stop_requested during its backoff.
            settle(store, id, 0)?;
        } else if st.status == "running" {
            settle(store, id, 137)?;
        }
        Ok(())
    }

    /// Sends `signal` to a running container's process; a SIGKILL (or its
    /// stop signal) counts as a requested stop for its restart policy.
    pub fn kill(&self, id: &str, signal_name: &str) -> Result<(), EngineError> {
        let sig = parse_signal(signal_name)?;
        let config = self.store.config(id)?;
        let st = self.store.state(id)?;
        if st.pid <= 0 || !pid_alive(st.pid) {
            return Err(EngineError::Conflict(format!(
                "cannot kill container: {}: container {id} is not running",
                config.name
            )));
        }
        let stop_sig = parse_signal(config.stop_signal.as_deref().unwrap_or("TERM"))?;
        if sig == Signal::SIGKILL || sig == stop_sig {
            self.store.update_state(id, |s| s.stop_requested = true)?;
        }
        signal::kill(Pid::from_raw(st.pid), sig).map_err(|e| {
            EngineError::io(format!("signalling container {}", config.name))(e.into())
        })?;
        if sig == Signal::SIGKILL {
            wait_pid_gone(st.pid, Duration::from_secs(10));
            settle(&self.store, id, 137)?;
        }
        Ok(())
    }

    /// Stops then starts a container.
    pub fn restart(
        &self,
        id: &str,
        grace: Option<u64>,
        signal: Option<&str>,
        opts: &StartOptions,
    ) -> Result<(), EngineError> {
        self.stop(id, grace, signal)?;
        let config = self.store.config(id)?;
        let spawned = self.spawn_supervisor(id, opts)?;
        wait_ready(spawned.ready, &config.name)
    }

    /// Waits for a container to stop; its exit code.
    pub fn wait(&self, id: &str) -> Result<i32, EngineError> {
        loop {
            let st = match self.store.state(id) {
                Ok(st) => st,
                Err(_) => {
                    return Err(EngineError::Conflict(format!(
                        "container {id} was removed while waiting"
                    )))
                }
            };
            let done = match st.status.as_str() {
                "running" | "restarting" => !supervisor_alive(&st) && !pid_alive(st.pid),
                _ => !supervisor_alive(&st),
            };
            if done {
                return Ok(st.exit_code);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Removes a container (`force`: kill it first), and with `volumes`
    /// its anonymous volumes.
    pub fn remove(&self, id: &str, force: bool, volumes: bool) -> Result<(), EngineError> {
        let config = self.store.config(id).ok();
        remove_one(&self.store, id, force)?;
        if let (true, Some(config)) = (volumes, config) {
            supervisor::remove_anonymous_volumes(&self.store, &config)?;
        }
        Ok(())
    }

    /// Removes every stopped container; their ids and the bytes freed.
    pub fn prune(&self) -> Result<(Vec<String>, u64), EngineError> {
        let store = &self.store;
        let mut ids = Vec::new();
        let mut bytes = 0;
        for (c, st) in store.list() {
            let running = (st.pid > 0 && pid_alive(st.pid)) || supervisor_alive(&st);
            if running {
                continue;
            }
            bytes += crate::image::store::dir_size(&store.dir(&c.id).join("upper"))
                + crate::runtime::log::size(&store.dir(&c.id).join("log.json"));
            remove_one(store, &c.id, false)?;
            ids.push(c.id);
        }
        Ok((ids, bytes))
    }
}

/// A supervisor process being started.
struct Spawned {
    ready: std::fs::File,
    attach: Option<std::os::unix::net::UnixStream>,
}

/// Waits for the supervisor's first start.
fn wait_ready(ready: std::fs::File, name: &str) -> Result<(), EngineError> {
    use std::io::BufRead;
    let mut line = String::new();
    let _ = std::io::BufReader::new(ready).read_line(&mut line);
    let line = line.trim();
    if line == "ok" {
        return Ok(());
    }
    if let Some(rest) = line.strip_prefix("err ") {
        let (code, msg) = rest.split_once(' ').unwrap_or((rest, ""));
        return Err(EngineError::Start {
            name: name.to_string(),
            code: code.parse().unwrap_or(125),
            message: msg.to_string(),
        });
    }
    Err(EngineError::SupervisorGone {
        name: name.to_string(),
    })
}

/// A signal by name (`KILL`, `SIGTERM`) or number.
pub fn parse_signal(s: &str) -> Result<Signal, EngineError> {
    use std::str::FromStr;
    let invalid = || EngineError::Invalid(format!("invalid signal: {s}"));
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| invalid());
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    Signal::from_str(&name).map_err(|_| invalid())
}

/// Waits until `pid` is gone or `timeout` passes; true when gone.
pub fn wait_pid_gone(pid: i32, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if !pid_alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    !pid_alive(pid)
}

/// Waits for the supervisor to record the exit (or die); cleans up after a
/// dead supervisor.
fn settle(store: &ContainerStore, id: &str, code_if_orphaned: i32) -> Result<(), EngineError> {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let st = match store.state(id) {
            Ok(st) => st,
            Err(_) => return Ok(()), // removed (--rm)
        };
        if st.status != "running" && st.status != "restarting" {
            // Wait for the supervisor's teardown as well.
            if !supervisor_alive(&st) || Instant::now() > end {
                return Ok(());
            }
        } else if !supervisor_alive(&st) {
            // The supervisor died: finish its job.
            let config = store.config(id)?;
            supervisor::teardown(store, &config);
            store.update_state(id, |s| {
                s.status = "exited".into();
                s.exit_code = code_if_orphaned;
                s.pid = 0;
                s.finished_at = Some(Utc::now());
            })?;
            return Ok(());
        }
        if Instant::now() > end {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Removes one container (`force`: kill it first).
fn remove_one(store: &ContainerStore, id: &str, force: bool) -> Result<(), EngineError> {
    let st = store.observed_state(id)?;
    if st.status == STATUS_CORRUPT {
        // Nothing of the record can be trusted: kill what its cgroup and
        // supervisor hold, then remove as usual.
        let live = st.pid > 0 || st.supervisor_pid > 0;
        if live && !force {
            return Err(EngineError::Conflict(format!(
                "cannot remove container {id}: its state record is corrupt and it may still run: force remove (rm -f) to kill and remove it"
            )));
        }
        crate::runtime::recover::kill_all(id);
    }
    let running =
        st.status != STATUS_CORRUPT && ((st.pid > 0 && pid_alive(st.pid)) || supervisor_alive(&st));
    if running {
        if !force {
            return Err(EngineError::Conflict(format!(
                "cannot remove container {id}: container is {}: stop the container before removing or force remove",
                st.status
            )));
        }
        store.update_state(id, |s| s.stop_requested = true)?;
        if st.pid > 0 {
            let _ = signal::kill(Pid::from_raw(st.pid), Signal::SIGKILL);
            wait_pid_gone(st.pid, Duration::from_secs(10));
        }
        settle(store, id, 137)?;
        let st = store.state(id).unwrap_or_default();
        if supervisor_alive(&st) {
            let _ = signal::kill(Pid::from_raw(st.supervisor_pid), Signal::SIGKILL);
            wait_pid_gone(st.supervisor_pid, Duration::from_secs(5));
        }
    }
    if let Ok(config) = store.config(id) {
        supervisor::teardown(store, &config);
    }
    // Free the bulk first (its writes, its logs): on a full disk, the
    // network records written next need the room.
    let dir = store.dir(id);
    let _ = std::fs::remove_dir_all(dir.join("upper"));
    let _ = std::fs::remove_file(dir.join("log.json"));
    crate::runtime::log::remove_rotated(&dir.join("log.json"));
    Networks::open(store.state_root())?.release(id)?;
    if store.dir(id).exists() {
        store.remove(id)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("sigterm").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert!(parse_signal("NOPE").is_err());
    }
}
