//! Container records on disk: `ROOT/containers/<id>/config.json` (what was
//! asked for, fixed at create) and `state.json` (what is happening: status,
//! pids, exit code, times, health), both written atomically.
//!
//! IDs are 64 hex digits, shown as 12 and matched by unique prefix; names are
//! unique. `state.json` has several writers (the supervisor, and the CLI for
//! `stop`/`kill` requests), so read-modify-write happens under a per-container
//! flock (`containers/<id>/lock`).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::spec::{BindMount, Resources};
use crate::state::{self, StateRoot};

/// Errors from the container records.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("No such container: {0}")]
    NotFound(String),
    #[error("multiple containers match {0:?}: use more of the id")]
    Ambiguous(String),
    #[error("the container name \"/{0}\" is already in use; remove it or choose another name")]
    NameInUse(String),
    #[error("invalid container name {0:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName(String),
    #[error("container record {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("container record {path} is corrupt: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{message}")]
    NoSpace { message: String },
    #[error(transparent)]
    State(#[from] state::StateError),
}

/// A restart policy (`--restart`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartPolicy {
    /// `no`, `always`, `on-failure`, `unless-stopped`.
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "MaximumRetryCount")]
    pub max_retries: u32,
}

impl RestartPolicy {
    /// Parses `no`, `always`, `unless-stopped`, `on-failure[:N]`.
    pub fn parse(s: &str) -> Option<Self> {
        let (name, count) = match s.split_once(':') {
            Some((n, c)) => (n, Some(c)),
            None => (s, None),
        };
        match (name, count) {
            ("" | "no", None) => Some(Self {
                name: "no".into(),
                max_retries: 0,
            }),
            ("always" | "unless-stopped", None) => Some(Self {
                name: name.into(),
                max_retries: 0,
            }),
            ("on-failure", None) => Some(Self {
                name: name.into(),
                max_retries: 0,
            }),
            ("on-failure", Some(c)) => c.parse().ok().map(|n| Self {
                name: name.into(),
                max_retries: n,
            }),
            _ => None,
        }
    }

    /// Whether to restart after an exit with `code` that was the
    /// `restarts`-th restart so far; `stopped` when the user stopped it.
    pub fn should_restart(&self, code: i32, restarts: u32, stopped: bool) -> bool {
        if stopped {
            return false;
        }
        match self.name.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => code != 0 && (self.max_retries == 0 || restarts < self.max_retries),
            _ => false,
        }
    }
}

/// A health check (`--health-*`), in nanoseconds like Docker's config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthConfig {
    #[serde(rename = "Test")]
    pub test: Vec<String>,
    #[serde(rename = "Interval")]
    pub interval_ns: u64,
    #[serde(rename = "Timeout")]
    pub timeout_ns: u64,
    #[serde(rename = "StartPeriod")]
    pub start_period_ns: u64,
    /// Time between checks during the start period (Docker 25's
    /// `--health-start-interval`); 0 means Docker's default, 5 s.
    #[serde(rename = "StartInterval", default)]
    pub start_interval_ns: u64,
    #[serde(rename = "Retries")]
    pub retries: u32,
}

/// What the container was created with (immutable after create).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContainerConfig {
    pub id: String,
    pub name: String,
    pub created: DateTime<Utc>,
    /// The image as the user named it (or the rootfs path with `--rootfs`).
    pub image: String,
    pub image_id: String,
    /// Overlay lower dirs, bottom-most first.
    pub lowers: Vec<PathBuf>,
    /// Entrypoint + command, resolved.
    pub args: Vec<String>,
    /// `-e`/`--env-file` as given plus the image's, merged at spec time.
    pub env: Vec<String>,
    pub image_env: Vec<String>,
    pub cwd: String,
    pub user: String,
    pub hostname: String,
    pub tty: bool,
    pub open_stdin: bool,
    pub restart: RestartPolicy,
    pub auto_remove: bool,
    pub resources: Resources,
    pub binds: Vec<BindMount>,
    /// Named and anonymous volumes (`-v NAME:/dst`, `-v /dst`, image `VOLUME`s).
    #[serde(default)]
    pub volumes: Vec<crate::volume::VolumeMount>,
    pub tmpfs: Vec<(String, String)>,
    /// `default` (own namespace, loopback), `none`, `host`.
    pub network: String,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<u64>,
    pub health: Option<HealthConfig>,
    pub init: bool,
    pub labels: std::collections::BTreeMap<String, String>,
    /// The json-file log's bounds (`--log-opt`; records made before
    /// berth had them get the default).
    #[serde(default)]
    pub log: super::log::LogOptions,
}

impl ContainerConfig {
    /// The directory the container's processes start in: its `-w`/WORKDIR,
    /// `/` without one. `exec` and health checks start there too, as in
    /// Docker.
    pub fn working_dir(&self) -> &str {
        if self.cwd.is_empty() {
            "/"
        } else {
            &self.cwd
        }
    }
}

/// A health check's outcome.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HealthLog {
    #[serde(rename = "Start")]
    pub start: DateTime<Utc>,
    #[serde(rename = "End")]
    pub end: DateTime<Utc>,
    #[serde(rename = "ExitCode")]
    pub exit_code: i32,
    #[serde(rename = "Output")]
    pub output: String,
}

/// Health as inspect shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Health {
    /// `starting`, `healthy`, `unhealthy`.
    #[serde(rename = "Status")]
    pub status: String,
    #[serde(rename = "FailingStreak")]
    pub failing_streak: u32,
    #[serde(rename = "Log")]
    pub log: Vec<HealthLog>,
}

/// What is happening to the container.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContainerState {
    /// `created`, `running`, `restarting`, `exited`, `dead`.
    pub status: String,
    pub pid: i32,
    pub supervisor_pid: i32,
    pub exit_code: i32,
    pub error: String,
    pub oom_killed: bool,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub restart_count: u32,
    /// Set by `stop`/`kill`/`rm -f`: no restart follows.
    pub stop_requested: bool,
    pub health: Option<Health>,
}

/// The containers directory of a state root.
#[derive(Debug, Clone)]
pub struct ContainerStore {
    root: StateRoot,
    dir: PathBuf,
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ContainerError> {
    let bytes = std::fs::read(path).map_err(|source| ContainerError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| ContainerError::Corrupt {
        path: path.to_path_buf(),
        source,
    })
}

/// Name prefix of a container directory being made (see
/// [`ContainerStore::create`]).
const STAGING_PREFIX: &str = ".new-";

/// How long a directory in `containers/` without records must have been
/// left alone before [`ContainerStore::collect_orphans`] removes it.
pub const ORPHAN_AGE: std::time::Duration = std::time::Duration::from_secs(30);

/// A flock on one container's record; released on drop.
pub struct RecordLock(#[allow(dead_code)] std::fs::File);

impl ContainerStore {
    pub fn open(root: &StateRoot) -> Result<Self, ContainerError> {
        let dir = root.subdir("containers")?;
        Ok(Self {
            root: root.clone(),
            dir,
        })
    }

    pub fn state_root(&self) -> &StateRoot {
        &self.root
    }

    /// `containers/<id>/`.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// All container ids.
    pub fn ids(&self) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut ids: Vec<String> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
            .filter(|n| self.dir.join(n).join("config.json").exists())
            .collect();
        ids.sort();
        ids
    }

    pub fn config(&self, id: &str) -> Result<ContainerConfig, ContainerError> {
        read_json(&self.dir(id).join("config.json"))
    }

    pub fn state(&self, id: &str) -> Result<ContainerState, ContainerError> {
        read_json(&self.dir(id).join("state.json"))
    }

    /// `state.json`, or when it is corrupt, what can be seen without it:
    /// status `corrupt`, the error saying what to do, and the pids of the
    /// init (from the container's cgroup) and supervisor (by its command
    /// line), so that it shows as running and `rm -f` can kill it.
    pub fn observed_state(&self, id: &str) -> Result<ContainerState, ContainerError> {
        match self.state(id) {
            Err(e @ ContainerError::Corrupt { .. }) => Ok(ContainerState {
                status: STATUS_CORRUPT.into(),
                pid: super::recover::init_pid(id).unwrap_or(0),
                supervisor_pid: super::recover::supervisor_pid(id).unwrap_or(0),
                error: format!(
                    "{e}; `berth rm -f` removes the container, `berth system check` repairs its record"
                ),
                ..Default::default()
            }),
            other => other,
        }
    }

    /// Rewrites a corrupt `state.json` from what can be observed (see
    /// [`Self::observed_state`]): `running` with the init and supervisor
    /// found, else `exited`. Returns the new state, or `None` when the
    /// record was sound (or is gone).
    pub fn repair_state(&self, id: &str) -> Result<Option<ContainerState>, ContainerError> {
        let _lock = self.lock(id)?;
        let seen = match self.state(id) {
            Err(ContainerError::Corrupt { .. }) => self.observed_state(id)?,
            _ => return Ok(None),
        };
        let running = seen.pid > 0 && pid_alive(seen.pid);
        let since = |pid: i32| {
            std::fs::metadata(format!("/proc/{pid}"))
                .and_then(|m| m.modified())
                .ok()
                .map(DateTime::<Utc>::from)
        };
        let st = ContainerState {
            status: if running { "running" } else { "exited" }.into(),
            pid: if running { seen.pid } else { 0 },
            supervisor_pid: seen.supervisor_pid,
            exit_code: if running { 0 } else { 255 },
            error: "its state record was corrupt and was rebuilt by `berth system check`".into(),
            started_at: if running { since(seen.pid) } else { None },
            finished_at: (!running).then(Utc::now),
            ..Default::default()
        };
        write_state(&self.dir(id).join("state.json"), &st)?;
        Ok(Some(st))
    }

    /// All containers with their records, oldest first (collecting the
    /// orphans a crash left, see [`Self::collect_orphans`]).
    pub fn list(&self) -> Vec<(ContainerConfig, ContainerState)> {
        self.collect_orphans();
        let mut all: Vec<_> = self
            .ids()
            .into_iter()
            .filter_map(|id| Some((self.config(&id).ok()?, self.observed_state(&id).ok()?)))
            .collect();
        all.sort_by_key(|(c, _)| c.created);
        all
    }

    /// Finds a container by full id, name, or unique id prefix.
    pub fn resolve(&self, query: &str) -> Result<String, ContainerError> {
        let query = query.trim_start_matches('/');
        let ids = self.ids();
        if ids.iter().any(|id| id == query) {
            return Ok(query.to_string());
        }
        for id in &ids {
            if self.config(id).map(|c| c.name == query).unwrap_or(false) {
                return Ok(id.clone());
            }
        }
        if query.is_empty() || !query.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ContainerError::NotFound(query.to_string()));
        }
        let matches: Vec<&String> = ids.iter().filter(|id| id.starts_with(query)).collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(ContainerError::NotFound(query.to_string())),
            _ => Err(ContainerError::Ambiguous(query.to_string())),
        }
    }

    /// Creates the record of a new container (name checked unique under the
    /// state root's lock).
    pub fn create(&self, config: &ContainerConfig) -> Result<(), ContainerError> {
        if !super::names::is_valid(&config.name) {
            return Err(ContainerError::InvalidName(config.name.clone()));
        }
        let _lock = self.root.lock()?;
        if self
            .list()
            .iter()
            .any(|(c, _)| c.name == config.name && c.id != config.id)
        {
            return Err(ContainerError::NameInUse(config.name.clone()));
        }
        // Made whole in a staging directory and renamed into place, so a
        // crash (or a full disk) never leaves `containers/<id>/` without
        // its records.
        let dir = self.dir(&config.id);
        let staging = self.dir.join(format!("{STAGING_PREFIX}{}", config.id));
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ContainerError::Io { path, source }
        };
        let made = (|| {
            std::fs::create_dir(&staging).map_err(io(&staging))?;
            state::write_json_atomic(
                &staging.join("state.json"),
                &ContainerState {
                    status: "created".into(),
                    ..Default::default()
                },
            )?;
            state::write_json_atomic(&staging.join("config.json"), config)?;
            std::fs::rename(&staging, &dir).map_err(io(&dir))?;
            state::atomic::sync_dir(&self.dir).map_err(io(&self.dir))
        })();
        if made.is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        made
    }

    /// Removes what a crash left in `containers/`: staging directories and
    /// container directories without their `config.json` (from berth
    /// versions that wrote the records in place), once they have been left
    /// alone for [`ORPHAN_AGE`] (a directory being removed right now is
    /// younger: removing entries touches it). Returns what it removed.
    pub fn collect_orphans(&self) -> Vec<PathBuf> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut removed = Vec::new();
        for e in rd.filter_map(|e| e.ok()) {
            let name = e.file_name().to_string_lossy().into_owned();
            let hex = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
            let path = e.path();
            let orphan = (name.starts_with(STAGING_PREFIX)
                || (hex && !path.join("config.json").exists()))
                && e.file_type().is_ok_and(|t| t.is_dir())
                && std::fs::symlink_metadata(&path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > ORPHAN_AGE);
            if orphan && std::fs::remove_dir_all(&path).is_ok() {
                removed.push(path);
            }
        }
        removed
    }

    /// Locks one container's record.
    pub fn lock(&self, id: &str) -> Result<RecordLock, ContainerError> {
        use std::os::fd::AsRawFd;
        let path = self.dir(id).join("lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| ContainerError::Io {
                path: path.clone(),
                source,
            })?;
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(ContainerError::Io {
                path,
                source: std::io::Error::last_os_error(),
            });
        }
        Ok(RecordLock(file))
    }

    /// Read-modify-write of `state.json` under the record lock.
    pub fn update_state(
        &self,
        id: &str,
        f: impl FnOnce(&mut ContainerState),
    ) -> Result<ContainerState, ContainerError> {
        let _lock = self.lock(id)?;
        let mut st = self.state(id)?;
        f(&mut st);
        write_state(&self.dir(id).join("state.json"), &st)?;
        Ok(st)
    }

    /// Removes a container's directory.
    pub fn remove(&self, id: &str) -> Result<(), ContainerError> {
        let dir = self.dir(id);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ContainerError::Io {
                path: dir,
                source: e,
            }),
            _ => Ok(()),
        }
    }
}

/// Writes `state.json` atomically; on a full disk, where the temporary
/// file cannot be made, overwrites it in place when the new record fits
/// in the space the old one holds (it always does in practice: a page).
/// Stopping, killing and removing must work on a full disk, as they are
/// how a user frees it. The record lock is held, so no reader of ours
/// sees it half-written; a crash in that instant leaves a corrupt record,
/// which `ps` shows and `system check` repairs.
fn write_state(path: &Path, st: &ContainerState) -> Result<(), ContainerError> {
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;
    let err = match state::write_json_atomic(path, st) {
        Ok(()) => return Ok(()),
        Err(state::StateError::Write { error: source, .. })
            if state::space::is_no_space(&source) =>
        {
            source
        }
        Err(e) => return Err(e.into()),
    };
    let data = serde_json::to_vec_pretty(st).expect("a state record serialises");
    let room = std::fs::metadata(path)
        .map(|m| m.blocks() * 512)
        .unwrap_or(0);
    let io = |source: std::io::Error| ContainerError::NoSpace {
        message: state::describe_io(&source, path),
    };
    if data.len() as u64 > room {
        return Err(io(err));
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io)?;
    f.write_all(&data).map_err(io)?;
    f.set_len(data.len() as u64).map_err(io)?;
    f.sync_all().map_err(io)
}

/// A new random 64-hex-digit id.
pub fn new_id() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

/// The status of a container whose `state.json` cannot be read.
pub const STATUS_CORRUPT: &str = "corrupt";

/// Whether the container's supervisor is alive (its pid runs
/// `berth __supervise`).
pub fn supervisor_alive(st: &ContainerState) -> bool {
    pid_alive(st.supervisor_pid)
        && std::fs::read(format!("/proc/{}/cmdline", st.supervisor_pid))
            .map(|c| c.windows(11).any(|w| w == b"__supervise"))
            .unwrap_or(false)
}

/// Whether process `pid` exists.
pub fn pid_alive(pid: i32) -> bool {
    pid > 0
        && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies() {
        let p = |s: &str| RestartPolicy::parse(s);
        assert_eq!(p("no").unwrap().name, "no");
        assert_eq!(p("on-failure:3").unwrap().max_retries, 3);
        for bad in ["sometimes", "always:3", "on-failure:x", "no:1"] {
            assert!(p(bad).is_none(), "{bad}");
        }
        let of = p("on-failure:3").unwrap();
        assert!(of.should_restart(1, 0, false));
        assert!(of.should_restart(1, 2, false));
        assert!(!of.should_restart(1, 3, false));
        assert!(!of.should_restart(0, 0, false));
        assert!(!of.should_restart(1, 0, true));
        let always = p("always").unwrap();
        assert!(always.should_restart(0, 100, false));
        assert!(!always.should_restart(0, 0, true));
        assert!(!p("no").unwrap().should_restart(1, 0, false));
    }

    #[test]
    fn records_appear_whole_and_orphans_are_collected_when_old() {
        let tmp = tempfile::tempdir().unwrap();
        let root = StateRoot::open(tmp.path()).unwrap();
        let store = ContainerStore::open(&root).unwrap();
        let id = new_id();
        store
            .create(&ContainerConfig {
                id: id.clone(),
                name: "whole".into(),
                ..Default::default()
            })
            .unwrap();
        let names: Vec<String> = std::fs::read_dir(store.dir.clone())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec![id.clone()], "no staging directory is left");
        // A kill between mkdir and the first record, old and fresh.
        let old = store.dir(&new_id());
        let staging = store.dir.join(format!("{STAGING_PREFIX}{}", new_id()));
        let fresh = store.dir(&new_id());
        for d in [&old, &staging, &fresh] {
            std::fs::create_dir(d).unwrap();
        }
        let long_ago = std::time::SystemTime::now() - 2 * ORPHAN_AGE;
        for d in [&old, &staging] {
            std::fs::File::open(d)
                .unwrap()
                .set_modified(long_ago)
                .unwrap();
        }
        assert_eq!(store.list().len(), 1);
        assert!(!old.exists() && !staging.exists());
        assert!(
            fresh.exists(),
            "a directory being made or removed now stays"
        );
        assert!(store.dir(&id).join("config.json").exists());
    }

    #[test]
    fn resolve_by_name_and_prefix() {
        let tmp = tempfile::tempdir().unwrap();
        let root = StateRoot::open(tmp.path()).unwrap();
        let store = ContainerStore::open(&root).unwrap();
        let mk = |id: &str, name: &str| ContainerConfig {
            id: id.into(),
            name: name.into(),
            ..Default::default()
        };
        let a = format!("abc{}", "0".repeat(61));
        let b = format!("abd{}", "1".repeat(61));
        store.create(&mk(&a, "web")).unwrap();
        store.create(&mk(&b, "db")).unwrap();
        assert!(matches!(
            store.create(&mk(&new_id(), "web")),
            Err(ContainerError::NameInUse(_))
        ));
        assert!(matches!(
            store.create(&mk(&new_id(), "../x")),
            Err(ContainerError::InvalidName(_))
        ));
        assert_eq!(store.resolve("web").unwrap(), a);
        assert_eq!(store.resolve("/db").unwrap(), b);
        assert_eq!(store.resolve("abc").unwrap(), a);
        assert_eq!(store.resolve(&b).unwrap(), b);
        assert!(matches!(
            store.resolve("ab"),
            Err(ContainerError::Ambiguous(_))
        ));
        assert!(matches!(
            store.resolve("ff"),
            Err(ContainerError::NotFound(_))
        ));
        assert!(matches!(
            store.resolve("../.."),
            Err(ContainerError::NotFound(_))
        ));
        let st = store.update_state(&a, |s| s.pid = 7).unwrap();
        assert_eq!(st.pid, 7);
        assert_eq!(store.state(&a).unwrap().status, "created");
    }
}
