//! `RUN`: a build container through berth's own runtime.
//!
//! As Docker's classic builder does, the step creates a container from the
//! previous step's image (its ENV, WORKDIR and USER come from that image's
//! config; the build arguments in scope are added to the environment),
//! running the stage's SHELL with the command (or the exec form as given),
//! attaches to its output, and after it exits turns the container's overlay
//! upper directory into the step's layer ([`crate::runtime::diff`]:
//! overlay whiteouts become OCI whiteouts; the mount points the runtime
//! made are left out). The container is removed whatever happens.
//!
//! The container is made and started by the berth binary itself
//! (`berth create` / `berth start -a` / `berth rm -f -v`), so a build runs
//! containers exactly as `berth run` does (supervisor, cgroups, seccomp,
//! networks).
//!
//! A build killed with SIGKILL cannot remove its container. Each build
//! container is therefore labelled with its builder's pid and that
//! process's start time ([`BUILDER_LABEL`]), and every build first removes
//! the build containers whose builder is gone ([`reap_orphans`]); the start
//! time tells a reused pid from the builder.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::image::digest::Digest;
use std::cell::OnceCell;
use std::os::unix::fs::MetadataExt;

use super::rootview::RootView;
use crate::image::store::{Image, ImageStore, StoreError};
use crate::runtime::container::ContainerStore;
use crate::runtime::diff::{self, DiffError};
use crate::state::{process, StateRoot};

/// Errors running a build container.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("locating the berth binary to run build containers: {0}")]
    Exe(std::io::Error),
    #[error("running `berth {verb}` for a build container: {source}")]
    Spawn {
        verb: &'static str,
        source: std::io::Error,
    },
    #[error("creating the build container failed: {0}")]
    Create(String),
    #[error("the build container's files: {0}")]
    Container(#[from] crate::runtime::container::ContainerError),
    #[error(transparent)]
    Diff(#[from] DiffError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the build output: {0}")]
    Output(std::io::Error),
}

/// The label naming a build container's builder: `PID:STARTTIME`, the
/// start time in clock ticks after boot (`/proc/PID/stat`, field 22).
pub const BUILDER_LABEL: &str = "berth.build.builder";

/// Removes the build containers whose builder process is gone (a build
/// killed with SIGKILL); returns their ids.
pub fn reap_orphans(root: &StateRoot) -> Result<Vec<String>, RunError> {
    let exe = std::env::current_exe().map_err(RunError::Exe)?;
    let mut reaped = Vec::new();
    for (config, _) in ContainerStore::open(root)?.list() {
        let Some(builder) = config.labels.get(BUILDER_LABEL) else {
            continue;
        };
        if !process::alive(builder) {
            remove(&exe, root.path(), &config.id);
            reaped.push(config.id);
        }
    }
    Ok(reaped)
}

/// The files the runtime bind-mounts into every container (and so makes,
/// empty, in its upper directory when the image lacks them). Docker's
/// classic builder keeps them in the container's init layer, out of the
/// step's diff, and a RUN cannot change them (its writes go to the mounted
/// file): they are never part of a RUN layer.
pub const MOUNT_STUBS: [&str; 3] = ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"];

/// What to run.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// The image id to run.
    pub image: Digest,
    /// The full command (SHELL + command, or the exec form).
    pub argv: Vec<String>,
    /// `K=V` added to the image's environment (build args).
    pub env: Vec<String>,
    /// `--network` of the container (`default`, `none`, `host`, a network).
    pub network: String,
    /// `-v SRC:DST[:ro]` bind mounts (the RUN's `--mount`s).
    pub volumes: Vec<String>,
    /// `--tmpfs DST[:OPTS]` mounts.
    pub tmpfs: Vec<String>,
}

/// A build container, removed on drop.
pub struct BuildContainer {
    exe: PathBuf,
    root: PathBuf,
    pub id: String,
}

impl BuildContainer {
    fn berth(&self) -> Command {
        berth(&self.exe, &self.root)
    }

    /// The container's overlay upper directory.
    pub fn upper(&self, root: &StateRoot) -> Result<PathBuf, RunError> {
        Ok(ContainerStore::open(root)?.dir(&self.id).join("upper"))
    }

    /// Runs it attached; its output (stdout and stderr, in order) goes to
    /// `out`. Returns the exit code. Once `interrupted` is set, the
    /// container is killed (and `berth start` returns).
    pub fn start(
        &self,
        out: &mut dyn Write,
        interrupted: Option<&AtomicBool>,
    ) -> Result<i32, RunError> {
        let (r, w): (OwnedFd, OwnedFd) = nix::unistd::pipe().map_err(|e| RunError::Spawn {
            verb: "start",
            source: e.into(),
        })?;
        let w2 = w.try_clone().map_err(|source| RunError::Spawn {
            verb: "start",
            source,
        })?;
        let mut child = self
            .berth()
            .args(["start", "-a", &self.id])
            .stdin(Stdio::null())
            .stdout(Stdio::from(w))
            .stderr(Stdio::from(w2))
            .spawn()
            .map_err(|source| RunError::Spawn {
                verb: "start",
                source,
            })?;
        let mut reader = std::fs::File::from(r);
        let mut buf = [0u8; 8192];
        let mut killed = false;
        loop {
            if !killed && interrupted.is_some_and(|f| f.load(Ordering::SeqCst)) {
                killed = true;
                let _ = self
                    .berth()
                    .args(["kill", &self.id])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
            let ready = {
                let mut pfd = [PollFd::new(reader.as_fd(), PollFlags::POLLIN)];
                poll(&mut pfd, PollTimeout::from(200u16))
            };
            match ready {
                Ok(0) => continue,
                Err(nix::errno::Errno::EINTR) => continue,
                _ => {}
            }
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    out.write_all(&buf[..n]).map_err(RunError::Output)?;
                    out.flush().map_err(RunError::Output)?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(RunError::Output(e)),
            }
        }
        let status = child.wait().map_err(|source| RunError::Spawn {
            verb: "start",
            source,
        })?;
        Ok(status.code().unwrap_or(128))
    }

    /// Writes the container's changes as a layer blob; returns (diff_id,
    /// size). The mount points the runtime made for the container are left
    /// out: [`MOUNT_STUBS`] and `mount_points` (image paths, `/etc/x`),
    /// with the directories made only to hold them.
    /// A directory that holds only such mount points stays when its mode or
    /// owner differ from `parent`'s (a RUN changed it).
    pub fn layer(
        &self,
        root: &StateRoot,
        store: &ImageStore,
        parent: &Image,
        mount_points: &[String],
    ) -> Result<(Digest, u64), RunError> {
        let upper = self.upper(root)?;
        let stubs: Vec<PathBuf> = MOUNT_STUBS
            .iter()
            .map(|s| s.to_string())
            .chain(mount_points.iter().cloned())
            .map(|p| PathBuf::from(p.trim_start_matches('/')))
            .collect();
        let skip = |rel: &Path| stubs.iter().any(|s| s == rel);
        // The parent's files, looked at only when a directory is in question.
        let view: OnceCell<Option<RootView>> = OnceCell::new();
        let changed_dir = |rel: &Path, meta: &std::fs::Metadata| {
            let Some(v) = view.get_or_init(|| RootView::open(store, Some(parent)).ok()) else {
                return true;
            };
            let Ok(p) = crate::confine::resolve_path(v.path(), &rel.to_string_lossy(), false)
            else {
                return true;
            };
            match std::fs::symlink_metadata(p) {
                Ok(m) => {
                    !m.is_dir()
                        || (m.mode() & 0o7777, m.uid(), m.gid())
                            != (meta.mode() & 0o7777, meta.uid(), meta.gid())
                }
                // Made only for the mount points.
                Err(_) => false,
            }
        };
        let mut blob = store.blob_writer()?;
        if upper.is_dir() {
            diff::write_layer_except(&upper, &mut blob, &skip, &changed_dir)?;
        } else {
            diff::write_layer(&empty_dir(root)?, &mut blob)?;
        }
        Ok(blob.commit(None)?)
    }
}

fn empty_dir(root: &StateRoot) -> Result<PathBuf, RunError> {
    let p = root.tmp_dir().join("build-empty-upper");
    std::fs::create_dir_all(&p).map_err(|e| RunError::Create(e.to_string()))?;
    Ok(p)
}

impl Drop for BuildContainer {
    fn drop(&mut self) {
        remove(&self.exe, &self.root, &self.id);
    }
}

/// `berth rm -f -v ID`: the build container and its anonymous volumes,
/// whatever state it is in; failures are left to the next build's reaping.
fn remove(exe: &Path, root: &Path, id: &str) {
    let _ = berth(exe, root)
        .args(["rm", "-f", "-v", id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn berth(exe: &Path, root: &Path) -> Command {
    let mut c = Command::new(exe);
    c.arg("--root").arg(root).env_remove("BERTH_ROOT");
    c
}

/// Creates the build container for `spec`.
pub fn create(root: &StateRoot, spec: &RunSpec) -> Result<BuildContainer, RunError> {
    let exe = std::env::current_exe().map_err(RunError::Exe)?;
    let Some((first, rest)) = spec.argv.split_first() else {
        return Err(RunError::Create("the command is empty".into()));
    };
    let mut cmd = berth(&exe, root.path());
    // The image's HEALTHCHECK is for the containers it runs, not for builds.
    cmd.arg("create")
        .arg("--no-healthcheck")
        .arg("--network")
        .arg(&spec.network);
    if let Some(me) = process::own_identity() {
        cmd.arg("--label").arg(format!("{BUILDER_LABEL}={me}"));
    }
    for e in &spec.env {
        cmd.arg("-e").arg(e);
    }
    for v in &spec.volumes {
        cmd.arg("-v").arg(v);
    }
    for t in &spec.tmpfs {
        cmd.arg("--tmpfs").arg(t);
    }
    cmd.arg("--entrypoint")
        .arg(first)
        .arg(spec.image.to_string())
        .args(rest)
        .stdin(Stdio::null());
    let out = cmd.output().map_err(|source| RunError::Spawn {
        verb: "create",
        source,
    })?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr);
        let msg = msg.trim().trim_start_matches("error: ");
        return Err(RunError::Create(msg.to_string()));
    }
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok(BuildContainer {
        exe,
        root: root.path().to_path_buf(),
        id,
    })
}
