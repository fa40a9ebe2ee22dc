//! The engine: youki's `libcontainer` driving one container from a bundle.
//!
//! libcontainer implements the OCI runtime (namespaces, pivot_root, cgroups
//! v1/v2, seccomp, capabilities): given a bundle (a directory with
//! `config.json`), `build` forks the container's init process (a child of the
//! caller, cloned with CLONE_PARENT) and leaves it waiting; `start` lets it
//! exec the user's command. Its own state (`state.json` per container) lives
//! in a root directory we choose: `containers/<id>/lc/`. libcontainer forks,
//! so every function here must be called from a single-threaded process
//! (the supervisor, or the CLI before it starts any thread).

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::signal::Signal;
use libcontainer::syscall::syscall::SyscallType;
use nix::unistd::Pid;

/// Errors from the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Libcontainer(String),
}

impl From<libcontainer::error::LibcontainerError> for EngineError {
    fn from(e: libcontainer::error::LibcontainerError) -> Self {
        EngineError::Libcontainer(e.to_string())
    }
}

/// Docker's exit code for a failure to start a container's command: 127 when
/// the command was not found, 126 when it cannot be executed, 125 otherwise.
pub fn start_failure_code(message: &str) -> i32 {
    if message.contains("not found in $PATH") || message.contains("No such file or directory") {
        127
    } else if message.contains("does not have correct permissions")
        || message.contains("Permission denied")
        || message.contains("invalid executable")
    {
        126
    } else {
        125
    }
}

/// The container's standard streams.
#[derive(Default)]
pub struct Stdio {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    /// For a tty: the unix socket the engine sends the pty master to.
    pub console_socket: Option<PathBuf>,
}

fn builder(id: &str, lc_root: &Path, stdio: Stdio) -> Result<ContainerBuilder, EngineError> {
    let mut b = ContainerBuilder::new(id.to_string(), SyscallType::default())
        .with_root_path(lc_root)?
        .with_console_socket(stdio.console_socket);
    if let Some(fd) = stdio.stdin {
        b = b.with_stdin(fd);
    }
    if let Some(fd) = stdio.stdout {
        b = b.with_stdout(fd);
    }
    if let Some(fd) = stdio.stderr {
        b = b.with_stderr(fd);
    }
    Ok(b)
}

/// Creates the container (init waiting for `start`).
pub fn create(
    id: &str,
    lc_root: &Path,
    bundle: &Path,
    stdio: Stdio,
    pid_file: Option<PathBuf>,
) -> Result<Container, EngineError> {
    let mut b = builder(id, lc_root, stdio)?;
    if let Some(p) = pid_file {
        b = b.with_pid_file(Some(p))?;
    }
    let c = b
        .as_init(bundle)
        .with_systemd(false)
        .with_detach(true)
        .build()?;
    Ok(c)
}

/// Loads a container libcontainer knows.
pub fn load(id: &str, lc_root: &Path) -> Result<Container, EngineError> {
    let mut c = Container::load(lc_root.join(id))?;
    c.refresh_status()?;
    Ok(c)
}

/// Starts a created container.
pub fn start(id: &str, lc_root: &Path) -> Result<(), EngineError> {
    load(id, lc_root)?.start()?;
    Ok(())
}

/// Sends a signal to the container's init (all processes with `all`).
pub fn kill(id: &str, lc_root: &Path, signal: &str, all: bool) -> Result<(), EngineError> {
    let sig = Signal::try_from(signal).map_err(|e| EngineError::Libcontainer(e.to_string()))?;
    load(id, lc_root)?.kill(sig, all)?;
    Ok(())
}

/// Deletes libcontainer's state and the cgroup; `force` kills first.
pub fn delete(id: &str, lc_root: &Path, force: bool) -> Result<(), EngineError> {
    if !lc_root.join(id).exists() {
        super::recover::remove_empty_cgroups(id);
        return Ok(());
    }
    let deleted = load(id, lc_root)?.delete(force);
    super::recover::remove_empty_cgroups(id);
    deleted?;
    Ok(())
}

/// A process to run inside a running container.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub args: Vec<String>,
    pub env: HashMap<String, String>,
    pub cwd: Option<PathBuf>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub additional_gids: Vec<u32>,
    pub detach: bool,
    /// A process.json (OCI `process`) used as is instead of the fields
    /// above, e.g. for a process with its own terminal.
    pub process: Option<PathBuf>,
}

/// Starts a process in the container's namespaces and cgroup; returns its pid
/// (a child of the caller).
pub fn exec(id: &str, lc_root: &Path, opts: ExecOptions, stdio: Stdio) -> Result<Pid, EngineError> {
    let pid = builder(id, lc_root, stdio)?
        .as_tenant()
        .with_container_args(opts.args)
        .with_env(opts.env)
        .with_cwd(opts.cwd)
        .with_user(opts.uid)
        .with_group(opts.gid)
        .with_additional_gids(opts.additional_gids)
        .with_no_new_privs(true)
        .with_detach(opts.detach)
        .with_process(opts.process)
        .build()?;
    Ok(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_failure_codes() {
        assert_eq!(
            start_failure_code("executable 'nope' not found in $PATH"),
            127
        );
        assert_eq!(
            start_failure_code(
                "executable '/etc' at path '\"/etc\"' does not have correct permissions"
            ),
            126
        );
        assert_eq!(start_failure_code("cgroup error"), 125);
    }
}
