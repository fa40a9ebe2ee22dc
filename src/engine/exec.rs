//! `exec`: a new process in a running container's namespaces, cgroup,
//! user and confinement (libcontainer's tenant container). The engine
//! resolves what the process gets — the user through the container's own
//! passwd/group, the container's environment under the request's, its
//! working directory unless one is asked for, `TERM=xterm` with a terminal
//! — and starts it with pipes or null devices, or on a new pty whose
//! master it hands back.
//!
//! Fork safety: libcontainer forks here, so these calls belong in a
//! single-threaded process (the CLI's `exec`, a health check in the
//! supervisor); a multi-threaded caller (watch) runs `berth exec`.

use std::collections::HashMap;
use std::path::PathBuf;

use super::{Engine, EngineError};
use crate::runtime::engine::{self as youki, ExecOptions, Stdio};
use crate::runtime::{spec, user};

/// A process to run in a container.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    pub command: Vec<String>,
    /// The container's user when `None`.
    pub user: Option<String>,
    /// The container's working directory when `None`.
    pub workdir: Option<String>,
    /// `K=V`, over the container's environment.
    pub env: Vec<String>,
    /// A terminal of its own (`TERM=xterm` unless `env` sets it).
    pub tty: bool,
}

/// An exec resolved against its container, ready to start.
#[derive(Debug, Clone)]
pub struct PreparedExec {
    pub id: String,
    /// How the caller named the container (for messages).
    pub name: String,
    dir: PathBuf,
    pub options: ExecOptions,
}

impl Engine {
    /// Resolves `req` in the running container `query`.
    pub fn exec_prepare(
        &self,
        query: &str,
        req: &ExecRequest,
    ) -> Result<PreparedExec, EngineError> {
        let id = self.resolve(query)?;
        let config = self.store.config(&id)?;
        let st = self.store.state(&id)?;
        if !super::inspect::observe(&st).running {
            return Err(EngineError::Conflict(format!(
                "container {id} is not running"
            )));
        }
        let rootfs = self.store.dir(&id).join("rootfs");
        let who = req.user.clone().unwrap_or(config.user.clone());
        let u = user::resolve_in_rootfs(&who, &rootfs)
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        // Docker's TERM for a terminal it makes, not the caller's (whose
        // terminfo the image rarely has); `-e TERM=…` still wins.
        let mut extra = Vec::new();
        if req.tty {
            extra.push("TERM=xterm".to_string());
        }
        extra.extend(req.env.iter().cloned());
        let mut env: HashMap<String, String> = HashMap::new();
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
        // Without -w, the container's working directory (Docker's rule).
        let cwd = PathBuf::from(
            req.workdir
                .clone()
                .unwrap_or_else(|| config.working_dir().to_string()),
        );
        if cwd.is_relative() {
            return Err(EngineError::Invalid(
                "the working directory must be an absolute path".into(),
            ));
        }
        Ok(PreparedExec {
            dir: self.store.dir(&id),
            id,
            name: query.to_string(),
            options: ExecOptions {
                args: req.command.clone(),
                env,
                cwd: Some(cwd),
                uid: Some(u.uid),
                gid: Some(u.gid),
                additional_gids: u.additional_gids,
                detach: false,
                process: None,
            },
        })
    }

    /// Starts a prepared exec on `stdio`; its pid. `detach`: nobody waits.
    pub fn exec_spawn(
        &self,
        prep: &PreparedExec,
        stdio: Stdio,
        detach: bool,
    ) -> Result<nix::unistd::Pid, EngineError> {
        let options = ExecOptions {
            detach,
            ..prep.options.clone()
        };
        youki::exec(&prep.id, &prep.dir.join("lc"), options, stdio).map_err(|e| failed(prep, e))
    }

    /// Starts a prepared exec on a new pty of the container's devpts, at
    /// `size` (rows, cols); its pid and the pty's master.
    pub fn exec_on_pty(
        &self,
        prep: &PreparedExec,
        size: Option<(u16, u16)>,
    ) -> Result<(nix::unistd::Pid, std::fs::File), EngineError> {
        let dir = &prep.dir;
        let io = EngineError::io;
        // The container's own process (capabilities, rlimits,
        // no_new_privileges, ...) with the exec's command, environment,
        // user and a terminal.
        let spec = oci_spec::runtime::Spec::load(dir.join("bundle/config.json"))
            .map_err(|e| EngineError::Invalid(format!("reading the container's spec: {e}")))?;
        let mut process = spec
            .process()
            .clone()
            .ok_or_else(|| EngineError::Invalid("the container's spec has no process".into()))?;
        let o = &prep.options;
        let mut envv: Vec<String> = o.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        envv.sort();
        process.set_args(Some(o.args.clone()));
        process.set_env(Some(envv));
        if let Some(c) = &o.cwd {
            process.set_cwd(c.clone());
        }
        let mut puser = process.user().clone();
        puser.set_uid(o.uid.unwrap_or(0));
        puser.set_gid(o.gid.unwrap_or(0));
        puser.set_additional_gids(Some(o.additional_gids.clone()));
        process.set_user(puser);
        process.set_terminal(Some(true));
        // The pty starts at the caller's size (patched libcontainer applies
        // consoleSize before the process runs): a program that asks at
        // once, like `stty size`, must not see 0x0.
        if let Some((rows, cols)) = size {
            process.set_console_size(Some(
                oci_spec::runtime::BoxBuilder::default()
                    .height(u64::from(rows))
                    .width(u64::from(cols))
                    .build()
                    .map_err(|e| EngineError::Invalid(format!("the console size: {e}")))?,
            ));
        }
        let process_file = tempfile::Builder::new()
            .prefix("exec-")
            .suffix(".json")
            .tempfile_in(dir)
            .map_err(io("writing the exec process file"))?;
        serde_json::to_writer(process_file.as_file(), &process)
            .map_err(|e| io("writing the exec process file")(e.into()))?;
        let sock_name = format!("exec-{}.sock", std::process::id());
        let listener = crate::runtime::supervisor::bind_short(dir, &sock_name)?;
        let _unlink = Unlink(dir.join(&sock_name));
        let pid = youki::exec(
            &prep.id,
            &dir.join("lc"),
            ExecOptions {
                args: o.args.clone(),
                detach: true,
                process: Some(process_file.path().to_path_buf()),
                ..Default::default()
            },
            Stdio {
                console_socket: Some(dir.join(&sock_name)),
                ..Default::default()
            },
        )
        .map_err(|e| failed(prep, e))?;
        drop(process_file);
        // The process sent the master before exec; wait for it, bounded.
        listener
            .set_nonblocking(true)
            .map_err(io("the console socket"))?;
        {
            use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
            let mut pfd = [PollFd::new(
                std::os::fd::AsFd::as_fd(&listener),
                PollFlags::POLLIN,
            )];
            if !matches!(poll(&mut pfd, PollTimeout::from(10_000u16)), Ok(n) if n > 0) {
                return Err(EngineError::Exec {
                    container: prep.name.clone(),
                    code: 126,
                    message: "no terminal received".into(),
                });
            }
        }
        let (conn, _) = listener
            .accept()
            .map_err(io("accepting the console socket"))?;
        conn.set_nonblocking(false)
            .map_err(io("the console socket"))?;
        let master = std::fs::File::from(crate::runtime::supervisor::recv_fd(&conn)?);
        if let Some((r, c)) = size {
            crate::runtime::supervisor::set_window_size(&master, r, c);
        }
        Ok((pid, master))
    }
}

fn failed(prep: &PreparedExec, e: impl std::fmt::Display) -> EngineError {
    let message = e.to_string();
    EngineError::Exec {
        container: prep.name.clone(),
        code: youki::start_failure_code(&message),
        message,
    }
}

/// Removes a socket file on drop.
struct Unlink(PathBuf);

impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
