//! The supervisor: one small process per running container.
//!
//! `berth __supervise <id>` is berth re-executed (from a sealed copy of the
//! binary, see `main.rs`), detached with setsid(2), so `run -d` returns while
//! the container lives on without a daemon. It is the parent of the
//! container's init process and so the one that learns its exit status
//! (SIGCHLD via signalfd(2)). One thread and one poll(2) loop: it copies the
//! container's stdout/stderr into the json-lines log and to attached clients
//! (`attach.sock`, see `attach.rs`), feeds stdin and terminal resizes back,
//! runs health checks through exec, records state transitions in
//! `state.json`, applies the restart policy with exponential backoff, and on
//! the final exit unmounts the rootfs and frees the network namespace.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::attach;
use super::container::{ContainerConfig, ContainerStore, Health, HealthLog};
use super::engine::{self, Stdio};
use super::health_schedule::Schedule;
use super::log::{self, LineBuffer};
use super::netns;
use super::rootfs::Overlay;
use super::spec::{self, NetworkNs, SpecOptions};
use super::user;

/// Errors preparing or running a container.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error(transparent)]
    Container(#[from] super::container::ContainerError),
    #[error(transparent)]
    Rootfs(#[from] super::rootfs::RootfsError),
    #[error(transparent)]
    Netns(#[from] netns::NetnsError),
    #[error("connecting the container to its network: {0}")]
    Network(#[from] crate::network::NetError),
    #[error(transparent)]
    User(#[from] user::UserError),
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    #[error("preparing the container's volumes: {0}")]
    Volume(#[from] crate::volume::VolumeError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{context}: {source}")]
    Sys { context: String, source: nix::Error },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> SupervisorError {
    let context = context.into();
    move |source| SupervisorError::Io { context, source }
}

fn sys(context: impl Into<String>) -> impl FnOnce(nix::Error) -> SupervisorError {
    let context = context.into();
    move |source| SupervisorError::Sys { context, source }
}

/// Paths of one container's files.
pub struct Paths {
    pub dir: PathBuf,
}

impl Paths {
    pub fn new(store: &ContainerStore, id: &str) -> Self {
        Self { dir: store.dir(id) }
    }
    pub fn lc_root(&self) -> PathBuf {
        self.dir.join("lc")
    }
    pub fn bundle(&self) -> PathBuf {
        self.dir.join("bundle")
    }
    pub fn netns(&self) -> PathBuf {
        self.dir.join("netns")
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join("log.json")
    }
    pub fn attach_socket(&self) -> PathBuf {
        self.dir.join("attach.sock")
    }
    pub fn console_socket(&self) -> PathBuf {
        self.dir.join("console.sock")
    }
}

/// The overlay of a container.
pub fn overlay(store: &ContainerStore, config: &ContainerConfig) -> Overlay {
    Overlay {
        base: store.state_root().path().to_path_buf(),
        lowers: config.lowers.clone(),
        dir: store.dir(&config.id),
    }
}

fn resolv_conf(own_netns: bool) -> String {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    if !own_netns {
        return host;
    }
    // Loopback resolvers of the host are unreachable from another namespace.
    let mut out: Vec<&str> = host
        .lines()
        .filter(|l| {
            !(l.starts_with("nameserver")
                && l.split_whitespace()
                    .nth(1)
                    .is_some_and(|a| a.starts_with("127.") || a == "::1"))
        })
        .collect();
    if !out.iter().any(|l| l.starts_with("nameserver")) {
        out.push("nameserver 8.8.8.8");
        out.push("nameserver 8.8.4.4");
    }
    out.join("\n") + "\n"
}

/// The container's volumes as bind mounts of their `_data` directories:
/// each is made if missing (anonymous ones on first start) and, when empty,
/// filled with the image's content at its mount point unless `nocopy`.
fn mount_volumes(
    store: &ContainerStore,
    config: &ContainerConfig,
    rootfs: &std::path::Path,
) -> Result<Vec<spec::BindMount>, SupervisorError> {
    if config.volumes.is_empty() {
        return Ok(Vec::new());
    }
    let volumes = crate::volume::VolumeStore::open(store.state_root())?;
    let mut binds = Vec::new();
    for m in &config.volumes {
        volumes.create_with(&m.name, &Default::default(), m.anonymous)?;
        if !m.nocopy {
            volumes.populate(&m.name, rootfs, &m.destination)?;
        }
        binds.push(spec::BindMount {
            source: volumes.data_dir(&m.name),
            destination: m.destination.clone(),
            readonly: m.readonly,
        });
    }
    Ok(binds)
}

/// Mounts the rootfs, makes the network namespace and writes the bundle.
pub fn prepare(
    store: &ContainerStore,
    config: &ContainerConfig,
) -> Result<PathBuf, SupervisorError> {
    let paths = Paths::new(store, &config.id);
    let rootfs = overlay(store, config).mount()?;
    let network = match config.network.as_str() {
        "host" => NetworkNs::Host,
        _ => NetworkNs::Path(netns::create(&paths.netns())?),
    };
    let own_netns = network != NetworkNs::Host;
    let hosts = paths.dir.join("hosts");
    // On a berth network: veths, addresses, routes and published ports go
    // into the namespace now, before the container's process exists, and
    // the network layer's kept-current hosts/resolv.conf are mounted.
    let berth_net = match &network {
        NetworkNs::Path(ns) if crate::network::mode_network(&config.network).is_some() => {
            let nets = crate::network::Networks::open(store.state_root())?;
            nets.plug(&config.id, ns)?;
            nets.files(&config.id)
        }
        _ => None,
    };
    let hosts_text = if own_netns {
        format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{}\n",
            config.hostname
        )
    } else {
        std::fs::read_to_string("/etc/hosts").unwrap_or_default()
    };
    std::fs::write(&hosts, hosts_text).map_err(io("writing hosts file"))?;
    let resolv = paths.dir.join("resolv.conf");
    std::fs::write(&resolv, resolv_conf(own_netns)).map_err(io("writing resolv.conf"))?;
    let (hosts, resolv) = berth_net.unwrap_or((hosts, resolv));
    let hostname = paths.dir.join("hostname");
    std::fs::write(&hostname, format!("{}\n", config.hostname)).map_err(io("writing hostname"))?;
    let user = user::resolve_in_rootfs(&config.user, &rootfs)?;
    let env = spec::build_env(
        &config.image_env,
        &config.env,
        &config.hostname,
        &user.home,
        config.tty,
    );
    let mut args = config.args.clone();
    let mut binds = config.binds.clone();
    binds.extend(mount_volumes(store, config, &rootfs)?);
    // Parents before children (`/data` before `/data/cache`), as Docker
    // sorts its mounts.
    binds.sort_by_key(|b| b.destination.trim_end_matches('/').matches('/').count());
    if config.init {
        // Docker's --init: tini, static, bind-mounted read-only as PID 1.
        let init = find_init().ok_or_else(|| SupervisorError::Io {
            context: "--init".into(),
            source: std::io::Error::other(format!(
                "no static init binary found (looked for {}); install Debian's tini package",
                INIT_CANDIDATES.join(", ")
            )),
        })?;
        binds.push(spec::BindMount {
            source: init,
            destination: "/sbin/docker-init".into(),
            readonly: true,
        });
        let mut v = vec!["/sbin/docker-init".to_string(), "--".into()];
        v.append(&mut args);
        args = v;
    }
    let opts = SpecOptions {
        args,
        env,
        cwd: config.working_dir().into(),
        user,
        hostname: config.hostname.clone(),
        tty: config.tty,
        rootfs: rootfs.clone(),
        etc_files: vec![
            (hosts, "/etc/hosts"),
            (resolv, "/etc/resolv.conf"),
            (hostname, "/etc/hostname"),
        ],
        binds,
        tmpfs: config.tmpfs.clone(),
        resources: config.resources.clone(),
        network,
        cgroups_path: format!("/berth/{}", config.id),
        cgroup_v2: spec::host_cgroup_v2(),
        nofile_hard: spec::nofile_hard(),
    };
    let spec = spec::build(&opts)?;
    let bundle = paths.bundle();
    std::fs::create_dir_all(&bundle).map_err(io("creating bundle"))?;
    crate::state::write_json_atomic(&bundle.join("config.json"), &spec)
        .map_err(|e| io("writing bundle")(std::io::Error::other(e.to_string())))?;
    Ok(bundle)
}

/// Where `--init` looks for a static init (tini), in order.
pub const INIT_CANDIDATES: &[&str] = &[
    "/usr/bin/tini-static",
    "/usr/libexec/docker/docker-init",
    "/usr/bin/docker-init",
];

fn find_init() -> Option<PathBuf> {
    INIT_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Unmounts the rootfs and frees the network namespace.
pub fn teardown(store: &ContainerStore, config: &ContainerConfig) {
    let paths = Paths::new(store, &config.id);
    let _ = engine::delete(&config.id, &paths.lc_root(), true);
    // veths and published-port rules go; the addresses stay allocated.
    if let Ok(nets) = crate::network::Networks::open(store.state_root()) {
        let _ = nets.unplug(&config.id);
    }
    let _ = netns::remove(&paths.netns());
    let _ = overlay(store, config).unmount();
}

/// Removes the container's anonymous volumes (`rm -v`, `run --rm`).
pub fn remove_anonymous_volumes(
    store: &ContainerStore,
    config: &ContainerConfig,
) -> Result<(), crate::volume::VolumeError> {
    let volumes = crate::volume::VolumeStore::open(store.state_root())?;
    for m in config.volumes.iter().filter(|m| m.anonymous) {
        volumes.remove(&m.name)?;
    }
    Ok(())
}

/// Whether the memory cgroup of the container recorded an OOM kill.
fn oom_killed(id: &str) -> bool {
    let v1 = format!("/sys/fs/cgroup/memory/berth/{id}/memory.oom_control");
    if let Ok(s) = std::fs::read_to_string(v1) {
        return s
            .lines()
            .any(|l| l.starts_with("oom_kill ") && l.trim_end() != "oom_kill 0");
    }
    let v2 = format!("/sys/fs/cgroup/berth/{id}/memory.events");
    if let Ok(s) = std::fs::read_to_string(v2) {
        return s
            .lines()
            .any(|l| l.starts_with("oom_kill ") && l.trim_end() != "oom_kill 0");
    }
    false
}

fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

struct Client {
    stream: UnixStream,
    decoder: attach::Decoder,
}

struct Running {
    pid: i32,
    stdout: Option<File>,
    stderr: Option<File>,
    /// Where client stdin goes (pipe write end or pty master).
    stdin: Option<File>,
    pty: Option<File>,
    out_buf: LineBuffer,
    err_buf: LineBuffer,
}

struct HealthRun {
    pid: Pid,
    started: chrono::DateTime<Utc>,
    deadline: Instant,
    output: File,
}

/// The supervisor of one container.
pub struct Supervisor {
    store: ContainerStore,
    config: ContainerConfig,
    paths: Paths,
    /// Read end of the self-pipe the signal handler writes to.
    wake: File,
    listener: UnixListener,
    clients: Vec<Client>,
    log: log::Writer,
    /// Whether a failed log write has been recorded in `state.json`.
    log_failure_recorded: bool,
    ready: Option<File>,
    /// The attaching client's terminal size, applied before the start.
    tty_size: Option<(u16, u16)>,
}

/// What a readiness pipe carries: `ok` or `err CODE MESSAGE`.
pub fn ready_message(result: &Result<(), (i32, String)>) -> String {
    match result {
        Ok(()) => "ok\n".into(),
        Err((code, msg)) => format!("err {code} {}\n", msg.replace('\n', " ")),
    }
}

/// Runs the supervisor for container `id` until the container is finally
/// stopped. `attach_fd` is an already-connected client; `ready_fd` receives
/// one line once the first start succeeded or failed; `tty_size` (rows,
/// cols) is the client's terminal size for a tty container.
pub fn run(
    store: ContainerStore,
    id: &str,
    attach_fd: Option<OwnedFd>,
    ready_fd: Option<OwnedFd>,
    tty_size: Option<(u16, u16)>,
) -> Result<i32, SupervisorError> {
    let config = store.config(id)?;
    let paths = Paths::new(&store, id);
    let wake = install_signal_handlers()?;
    let _ = std::fs::remove_file(paths.attach_socket());
    let listener = bind_short(&paths.dir, "attach.sock")?;
    listener
        .set_nonblocking(true)
        .map_err(io("attach socket"))?;
    let log = log::Writer::open(&paths.log(), config.log).map_err(io("opening log"))?;
    let mut clients = Vec::new();
    if let Some(fd) = attach_fd {
        let stream = UnixStream::from(fd);
        stream.set_nonblocking(true).map_err(io("attach fd"))?;
        clients.push(Client {
            stream,
            decoder: attach::Decoder::default(),
        });
    }
    let mut sup = Supervisor {
        store,
        config,
        paths,
        wake,
        listener,
        clients,
        log,
        log_failure_recorded: false,
        ready: ready_fd.map(File::from),
        tty_size,
    };
    sup.store.update_state(id, |s| {
        s.supervisor_pid = std::process::id() as i32;
        s.stop_requested = false;
    })?;
    let code = sup.lifecycle();
    let _ = std::fs::remove_file(sup.paths.attach_socket());
    code
}

/// Drops the page-table entries of the binary's read-only mappings (code and
/// constants): start-up touched far more code (argument parsing, spec
/// building, libcontainer) than the steady-state loop needs; the pages stay
/// in the shared page cache and fault back in on use. Also returns freed heap
/// to the kernel. Keeps the supervisor's resident memory to what it uses.
fn trim_resident() {
    let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
        return;
    };
    let exe = exe.to_string_lossy().into_owned();
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms)) = (f.next(), f.next()) else {
            continue;
        };
        let offset = line.split_whitespace().nth(2).unwrap_or("");
        let path = line.split_whitespace().nth(5).unwrap_or("");
        // Code, and the read-only data before it (never the RELRO segment:
        // its pages hold relocated private copies).
        let safe =
            perms == "r-xp" || (perms == "r--p" && offset.trim_start_matches('0').is_empty());
        if path != exe || !safe {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) else {
            continue;
        };
        // SAFETY: a read-only private file mapping of our own binary;
        // MADV_DONTNEED only drops PTEs, contents are re-read on access.
        unsafe { libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_DONTNEED) };
    }
    // SAFETY: glibc's malloc_trim has no preconditions.
    unsafe { libc::malloc_trim(0) };
}

/// Write end of the self-pipe, for the async-signal-safe handler.
static WAKE_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

extern "C" fn on_signal(_sig: libc::c_int) {
    let fd = WAKE_FD.load(std::sync::atomic::Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; a full pipe just drops the byte.
        unsafe { libc::write(fd, [1u8].as_ptr().cast(), 1) };
    }
}

/// Catches SIGCHLD (to wake the loop) and SIGTERM/SIGINT/SIGHUP/SIGPIPE (to
/// survive them) with a handler rather than a blocked mask or SIG_IGN: both
/// of those would be inherited by the container's process through fork and
/// exec, while handlers reset to the default on exec.
fn install_signal_handlers() -> Result<File, SupervisorError> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
        .map_err(sys("pipe"))?;
    WAKE_FD.store(
        std::os::fd::IntoRawFd::into_raw_fd(w),
        std::sync::atomic::Ordering::Relaxed,
    );
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART | SaFlags::SA_NOCLDSTOP,
        SigSet::empty(),
    );
    for sig in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGPIPE,
    ] {
        // SAFETY: the handler only calls write(2).
        unsafe { sigaction(sig, &action) }.map_err(sys("installing signal handlers"))?;
    }
    Ok(File::from(r))
}

/// Binds a unix socket by a path relative to `dir` (socket paths are limited
/// to 108 bytes; the state root may be deep).
pub fn bind_short(dir: &Path, name: &str) -> Result<UnixListener, SupervisorError> {
    let prev = std::env::current_dir().ok();
    std::env::set_current_dir(dir).map_err(io("entering container dir"))?;
    let _ = std::fs::remove_file(name);
    let l = UnixListener::bind(name).map_err(io(format!("binding {name}")));
    if let Some(p) = prev {
        let _ = std::env::set_current_dir(p);
    }
    l
}

/// Connects to a unix socket by a path relative to its directory.
pub fn connect_short(path: &Path) -> std::io::Result<UnixStream> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().unwrap_or_default();
    if path.as_os_str().len() < 100 {
        return UnixStream::connect(path);
    }
    // /proc/self/fd/N of an O_PATH fd names the directory briefly.
    let d = File::open(dir)?;
    let p = PathBuf::from(format!("/proc/self/fd/{}", d.as_raw_fd())).join(name);
    UnixStream::connect(p)
}

impl Supervisor {
    fn id(&self) -> &str {
        &self.config.id
    }

    fn signal_ready(&mut self, result: Result<(), (i32, String)>) {
        if let Some(mut f) = self.ready.take() {
            let _ = f.write_all(ready_message(&result).as_bytes());
        }
    }

    /// `--rm`: the record, the network allocation and, as in Docker, the
    /// anonymous volumes go.
    fn remove_if_auto(&self) {
        if self.config.auto_remove {
            if let Ok(nets) = crate::network::Networks::open(self.store.state_root()) {
                let _ = nets.release(self.id());
            }
            let _ = self.store.remove(self.id());
            let _ = remove_anonymous_volumes(&self.store, &self.config);
        }
    }

    fn lifecycle(&mut self) -> Result<i32, SupervisorError> {
        let mut restarts = self.store.state(self.id())?.restart_count;
        let mut backoff = Duration::from_millis(100);
        loop {
            let started = Instant::now();
            let code = match self.start_once() {
                Ok(running) => {
                    self.signal_ready(Ok(()));
                    self.watch(running)?
                }
                Err(e) => {
                    let msg = e.to_string();
                    let code = match &e {
                        SupervisorError::Engine(_) => engine::start_failure_code(&msg),
                        _ => 125,
                    };
                    let id = self.id().to_string();
                    self.store.update_state(&id, |s| {
                        s.status = if s.started_at.is_some() {
                            "exited"
                        } else {
                            "created"
                        }
                        .into();
                        s.exit_code = code;
                        s.error = msg.clone();
                        s.pid = 0;
                    })?;
                    teardown(&self.store, &self.config);
                    // `run --rm` whose start failed leaves nothing behind
                    // either (gone before the caller hears of the failure).
                    self.remove_if_auto();
                    self.signal_ready(Err((code, msg)));
                    self.finish_clients(code);
                    return Ok(code);
                }
            };
            let st = self.store.state(self.id())?;
            if !self
                .config
                .restart
                .should_restart(code, restarts, st.stop_requested)
            {
                teardown(&self.store, &self.config);
                self.remove_if_auto();
                self.finish_clients(code);
                return Ok(code);
            }
            // Docker resets the backoff after a run of 10 s or more.
            if started.elapsed() >= Duration::from_secs(10) {
                backoff = Duration::from_millis(100);
            }
            restarts += 1;
            let id = self.id().to_string();
            self.store.update_state(&id, |s| {
                s.status = "restarting".into();
                s.restart_count = restarts;
            })?;
            self.finish_clients(code);
            let _ = engine::delete(&id, &self.paths.lc_root(), true);
            if self.sleep_interruptible(backoff) {
                teardown(&self.store, &self.config);
                self.store
                    .update_state(&id, |s| s.status = "exited".into())?;
                return Ok(code);
            }
            backoff = (backoff * 2).min(Duration::from_secs(60));
        }
    }

    /// Sleeps, serving new attach clients; returns true when a stop was
    /// requested meanwhile.
    fn sleep_interruptible(&mut self, d: Duration) -> bool {
        let end = Instant::now() + d;
        while Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50).min(end - Instant::now()));
            if self
                .store
                .state(self.id())
                .map(|s| s.stop_requested)
                .unwrap_or(false)
            {
                return true;
            }
        }
        false
    }

    fn start_once(&mut self) -> Result<Running, SupervisorError> {
        let bundle = prepare(&self.store, &self.config)?;
        let lc = self.paths.lc_root();
        let _ = engine::delete(self.id(), &lc, true);
        std::fs::create_dir_all(&lc).map_err(io("creating engine state dir"))?;
        let mut stdio = Stdio::default();
        let mut running = Running {
            pid: 0,
            stdout: None,
            stderr: None,
            stdin: None,
            pty: None,
            out_buf: LineBuffer::default(),
            err_buf: LineBuffer::default(),
        };
        let console = if self.config.tty {
            let l = bind_short(&self.paths.dir, "console.sock")?;
            stdio.console_socket = Some(self.paths.console_socket());
            Some(l)
        } else {
            let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(sys("pipe"))?;
            running.stdout = Some(File::from(r));
            stdio.stdout = Some(w);
            let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(sys("pipe"))?;
            running.stderr = Some(File::from(r));
            stdio.stderr = Some(w);
            if self.config.open_stdin {
                let (r, w) =
                    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(sys("pipe"))?;
                running.stdin = Some(File::from(w));
                stdio.stdin = Some(r);
            } else {
                let null = File::open("/dev/null").map_err(io("opening /dev/null"))?;
                stdio.stdin = Some(OwnedFd::from(null));
            }
            None
        };
        let mut container = engine::create(self.id(), &lc, &bundle, stdio, None)?;
        if let Some(l) = console {
            let (stream, _) = l.accept().map_err(io("accepting console socket"))?;
            let master = recv_fd(&stream)?;
            let _ = std::fs::remove_file(self.paths.console_socket());
            let master = File::from(master);
            // The size is set before the process starts, so its first look
            // at the terminal sees the client's.
            let (rows, cols) = self.tty_size.unwrap_or((24, 80));
            set_window_size(&master, rows, cols);
            running.stdin = Some(master.try_clone().map_err(io("dup pty"))?);
            running.pty = Some(master);
        }
        container.start().map_err(engine::EngineError::from)?;
        let pid = container.pid().map(|p| p.as_raw()).unwrap_or(0);
        running.pid = pid;
        for f in [&running.stdout, &running.stderr, &running.pty]
            .into_iter()
            .flatten()
        {
            set_nonblocking(f.as_raw_fd());
        }
        let id = self.id().to_string();
        let health = self.config.health.as_ref().map(|_| Health {
            status: "starting".into(),
            failing_streak: 0,
            log: Vec::new(),
        });
        self.store.update_state(&id, |s| {
            s.status = "running".into();
            s.pid = pid;
            s.exit_code = 0;
            s.error.clear();
            s.oom_killed = false;
            s.started_at = Some(Utc::now());
            s.finished_at = None;
            s.health = health;
        })?;
        trim_resident();
        Ok(running)
    }

    /// Serves the running container until its init exits; returns its code.
    fn watch(&mut self, mut running: Running) -> Result<i32, SupervisorError> {
        let started = Instant::now();
        let schedule = self.config.health.as_ref().map(Schedule::of);
        let mut probes = 0u32;
        let mut next_health = schedule.map(|s| Instant::now() + s.next(Duration::ZERO, true, 0));
        let mut health_run: Option<HealthRun> = None;
        let mut exited: Option<i32> = None;
        let mut drain_deadline: Option<Instant> = None;
        loop {
            // Build the poll set.
            let mut fds: Vec<RawFd> = vec![self.wake.as_raw_fd(), self.listener.as_raw_fd()];
            let out_fd = running.stdout.as_ref().map(|f| f.as_raw_fd());
            let err_fd = running.stderr.as_ref().map(|f| f.as_raw_fd());
            let pty_fd = running.pty.as_ref().map(|f| f.as_raw_fd());
            fds.extend(out_fd.iter().chain(err_fd.iter()).chain(pty_fd.iter()));
            let client_base = fds.len();
            fds.extend(self.clients.iter().map(|c| c.stream.as_raw_fd()));
            let timeout = match (next_health, &health_run) {
                (_, Some(h)) => h.deadline.saturating_duration_since(Instant::now()),
                (Some(t), None) => t.saturating_duration_since(Instant::now()),
                _ => Duration::from_secs(60),
            };
            let timeout = if exited.is_some() {
                Duration::from_millis(10)
            } else {
                timeout
            };
            let revents: Vec<PollFlags> = {
                // SAFETY: every fd is owned by self/running for this iteration.
                let mut pfds: Vec<PollFd> = fds
                    .iter()
                    .map(|&fd| {
                        PollFd::new(unsafe { BorrowedFd::borrow_raw(fd) }, PollFlags::POLLIN)
                    })
                    .collect();
                let ms = timeout.as_millis().min(60_000) as u16;
                match poll(&mut pfds, PollTimeout::from(ms)) {
                    Ok(_) | Err(nix::Error::EINTR) => {}
                    Err(e) => return Err(sys("poll")(e)),
                }
                pfds.iter()
                    .map(|p| p.revents().unwrap_or(PollFlags::empty()))
                    .collect()
            };
            let ready = |i: usize| !revents[i].is_empty();
            if ready(0) {
                let mut drain = [0u8; 64];
                while matches!(self.wake.read(&mut drain), Ok(n) if n > 0) {}
            }
            {
                loop {
                    match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                        Ok(WaitStatus::StillAlive) | Err(_) => break,
                        Ok(status) => {
                            let pid = status.pid().map(|p| p.as_raw());
                            if pid == Some(running.pid) {
                                exited = exit_code(status);
                            } else if let Some(h) = &health_run {
                                if pid == Some(h.pid.as_raw()) {
                                    let h = health_run.take().expect("health run present");
                                    let starting =
                                        self.health_result(h, exit_code(status).unwrap_or(1))?;
                                    probes += 1;
                                    next_health = schedule.map(|s| {
                                        Instant::now() + s.next(started.elapsed(), starting, probes)
                                    });
                                }
                            }
                        }
                    }
                }
            }
            if ready(1) {
                while let Ok((stream, _)) = self.listener.accept() {
                    let _ = stream.set_nonblocking(true);
                    self.clients.push(Client {
                        stream,
                        decoder: attach::Decoder::default(),
                    });
                }
            }
            let mut idx = 2;
            for (fd, kind) in [
                (out_fd, attach::STDOUT),
                (err_fd, attach::STDERR),
                (pty_fd, attach::STDOUT),
            ] {
                if fd.is_none() {
                    continue;
                }
                let is_ready = ready(idx);
                idx += 1;
                if is_ready || exited.is_some() {
                    self.pump(&mut running, kind, fd == pty_fd);
                }
            }
            let _ = client_base;
            self.serve_clients(&mut running);
            // Health checks.
            if let Some(h) = &health_run {
                if Instant::now() >= h.deadline {
                    let _ = nix::sys::signal::kill(h.pid, Signal::SIGKILL);
                }
            }
            if let (Some(t), None, None) = (next_health, &health_run, exited) {
                if Instant::now() >= t {
                    match self.spawn_health() {
                        Ok(h) => health_run = Some(h),
                        Err(e) => {
                            let now = Utc::now();
                            let starting = self.record_health(HealthLog {
                                start: now,
                                end: now,
                                exit_code: -1,
                                output: e.to_string(),
                            })?;
                            probes += 1;
                            next_health = schedule.map(|s| {
                                Instant::now() + s.next(started.elapsed(), starting, probes)
                            });
                        }
                    }
                }
            }
            if let Some(code) = exited {
                let drained =
                    running.stdout.is_none() && running.stderr.is_none() && running.pty.is_none();
                let deadline =
                    *drain_deadline.get_or_insert_with(|| Instant::now() + Duration::from_secs(2));
                if drained || Instant::now() >= deadline {
                    for (kind, pty) in [
                        (attach::STDOUT, false),
                        (attach::STDERR, false),
                        (attach::STDOUT, true),
                    ] {
                        self.close_stream(&mut running, kind, pty);
                    }
                    return self.record_exit(code);
                }
            }
        }
    }

    /// Reads available output of one stream into the log and to clients;
    /// closes the stream at EOF.
    fn pump(&mut self, running: &mut Running, kind: u8, is_pty: bool) {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let file = match (kind, is_pty) {
                (_, true) => running.pty.as_mut(),
                (attach::STDOUT, false) => running.stdout.as_mut(),
                _ => running.stderr.as_mut(),
            };
            let Some(file) = file else { return };
            match file.read(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Ok(0) | Err(_) => {
                    // EOF (or EIO on a pty whose slave side closed).
                    self.close_stream(running, kind, is_pty);
                    return;
                }
                Ok(n) => {
                    let data = &buf[..n];
                    let lines = if kind == attach::STDERR {
                        running.err_buf.feed(data)
                    } else {
                        running.out_buf.feed(data)
                    };
                    self.write_log(stream_name(kind), &lines);
                    self.broadcast(&attach::encode(kind, data));
                }
            }
        }
    }

    /// Appends to the log; the first failure (e.g. a full disk) is
    /// recorded in the container's state, where `inspect` and `ps` show it
    /// (once: until that record could be written, it is tried again).
    fn write_log(&mut self, stream: &str, lines: &[String]) {
        let Err(e) = self.log.append(stream, lines) else {
            return;
        };
        if self.log_failure_recorded {
            return;
        }
        let msg = format!(
            "cannot write the container's log {}: {}; its output is being dropped",
            self.paths.log().display(),
            crate::state::describe_io(&e, &self.paths.log())
        );
        // (Not also traced: tracing-subscriber panics when it cannot
        // write to stderr, i.e. supervisor.log on the same full disk.)
        if self
            .store
            .update_state(&self.config.id, |s| s.error = msg.clone())
            .is_ok()
        {
            self.log_failure_recorded = true;
        }
    }

    fn close_stream(&mut self, running: &mut Running, kind: u8, is_pty: bool) {
        let rest = if kind == attach::STDERR {
            running.err_buf.finish()
        } else {
            running.out_buf.finish()
        };
        if let Some(rest) = rest {
            self.write_log(stream_name(kind), &[rest]);
        }
        match (kind, is_pty) {
            (_, true) => {
                running.pty = None;
                running.stdin = None;
            }
            (attach::STDOUT, false) => running.stdout = None,
            _ => running.stderr = None,
        }
    }

    fn broadcast(&mut self, frame: &[u8]) {
        self.clients
            .retain_mut(|c| write_all_blocking(&mut c.stream, frame).is_ok());
    }

    fn serve_clients(&mut self, running: &mut Running) {
        let mut buf = [0u8; 16 * 1024];
        let mut keep = Vec::new();
        for mut c in std::mem::take(&mut self.clients) {
            let mut alive = true;
            loop {
                match c.stream.read(&mut buf) {
                    Ok(0) => {
                        alive = false;
                        break;
                    }
                    Ok(n) => c.decoder.feed(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        alive = false;
                        break;
                    }
                }
            }
            loop {
                match c.decoder.next_frame() {
                    Ok(Some((attach::STDIN, data))) => {
                        if let Some(w) = running.stdin.as_mut() {
                            if write_all_blocking_file(w, &data).is_err() {
                                running.stdin = None;
                            }
                        }
                    }
                    Ok(Some((attach::STDIN_EOF, _))) => {
                        if running.pty.is_none() {
                            running.stdin = None;
                        }
                    }
                    Ok(Some((attach::RESIZE, p))) if p.len() == 4 => {
                        if let Some(pty) = &running.pty {
                            set_window_size(
                                pty,
                                u16::from_be_bytes([p[0], p[1]]),
                                u16::from_be_bytes([p[2], p[3]]),
                            );
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => {
                        alive = false;
                        break;
                    }
                }
            }
            if alive {
                keep.push(c);
            }
        }
        self.clients = keep;
    }

    fn record_exit(&mut self, code: i32) -> Result<i32, SupervisorError> {
        let oom = oom_killed(self.id());
        let id = self.id().to_string();
        self.store.update_state(&id, |s| {
            s.status = "exited".into();
            s.exit_code = code;
            s.oom_killed = oom;
            s.pid = 0;
            s.finished_at = Some(Utc::now());
        })?;
        Ok(code)
    }

    fn finish_clients(&mut self, code: i32) {
        self.broadcast(&attach::exit_frame(code));
        for c in &self.clients {
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
        }
        self.clients.clear();
    }

    fn spawn_health(&mut self) -> Result<HealthRun, SupervisorError> {
        let cfg = self.config.health.clone().unwrap_or_default();
        let args = match cfg.test.first().map(String::as_str) {
            Some("CMD-SHELL") => vec!["/bin/sh".into(), "-c".into(), cfg.test[1..].join(" ")],
            Some("CMD") => cfg.test[1..].to_vec(),
            _ => cfg.test.clone(),
        };
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(sys("pipe"))?;
        let w2 = w.try_clone().map_err(io("dup"))?;
        let null = File::open("/dev/null").map_err(io("opening /dev/null"))?;
        let rootfs = self.paths.dir.join("rootfs");
        let user = user::resolve_in_rootfs(&self.config.user, &rootfs)?;
        let env = spec::build_env(
            &self.config.image_env,
            &self.config.env,
            &self.config.hostname,
            &user.home,
            false,
        )
        .into_iter()
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
        let pid = engine::exec(
            self.id(),
            &self.paths.lc_root(),
            engine::ExecOptions {
                args,
                env,
                cwd: Some(self.config.working_dir().into()),
                uid: Some(user.uid),
                gid: Some(user.gid),
                additional_gids: user.additional_gids,
                process: None,
                detach: true,
            },
            Stdio {
                stdin: Some(OwnedFd::from(null)),
                stdout: Some(w),
                stderr: Some(w2),
                console_socket: None,
            },
        )?;
        let output = File::from(r);
        set_nonblocking(output.as_raw_fd());
        let timeout = Duration::from_nanos(if cfg.timeout_ns == 0 {
            30_000_000_000
        } else {
            cfg.timeout_ns
        });
        Ok(HealthRun {
            pid,
            started: Utc::now(),
            deadline: Instant::now() + timeout,
            output,
        })
    }

    /// Records a finished probe; returns whether the health is still `starting`.
    fn health_result(&mut self, mut h: HealthRun, code: i32) -> Result<bool, SupervisorError> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while out.len() < 4096 {
            match h.output.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        self.record_health(HealthLog {
            start: h.started,
            end: Utc::now(),
            exit_code: code,
            output: String::from_utf8_lossy(&out).into_owned(),
        })
    }

    /// Applies a probe's result to the health status (failures count per
    /// [`Schedule::failure_counts`]); returns whether it is still `starting`.
    fn record_health(&mut self, entry: HealthLog) -> Result<bool, SupervisorError> {
        let cfg = self.config.health.clone().unwrap_or_default();
        let schedule = Schedule::of(&cfg);
        let retries = if cfg.retries == 0 { 3 } else { cfg.retries };
        let id = self.id().to_string();
        let mut starting = false;
        self.store.update_state(&id, |s| {
            let since_start = s
                .started_at
                .and_then(|t| (entry.start - t).to_std().ok())
                .unwrap_or(Duration::MAX);
            let h = s.health.get_or_insert_with(|| Health {
                status: "starting".into(),
                ..Default::default()
            });
            if entry.exit_code == 0 {
                h.status = "healthy".into();
                h.failing_streak = 0;
            } else if schedule.failure_counts(since_start, h.status == "starting") {
                h.failing_streak += 1;
                if h.failing_streak >= retries {
                    h.status = "unhealthy".into();
                }
            }
            starting = h.status == "starting";
            h.log.push(entry);
            let excess = h.log.len().saturating_sub(5);
            h.log.drain(..excess);
        })?;
        Ok(starting)
    }
}

fn stream_name(kind: u8) -> &'static str {
    if kind == attach::STDERR {
        "stderr"
    } else {
        "stdout"
    }
}

/// TIOCSWINSZ on a pty master (the kernel sends SIGWINCH to the foreground
/// process group of the terminal).
pub fn set_window_size(pty: &File, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ on a pty master we own, with a valid winsize.
    unsafe { libc::ioctl(pty.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on an fd we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
}

fn write_all_blocking(stream: &mut UnixStream, mut data: &[u8]) -> std::io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !data.is_empty() {
        match stream.write(data) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    return Err(e);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn write_all_blocking_file(file: &mut File, mut data: &[u8]) -> std::io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !data.is_empty() {
        match file.write(data) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    return Err(e);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Receives one fd sent with SCM_RIGHTS (the pty master from the engine).
pub fn recv_fd(stream: &UnixStream) -> Result<OwnedFd, SupervisorError> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        stream.as_fd().as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .map_err(sys("receiving the pty"))?;
    for c in msg.cmsgs().map_err(sys("receiving the pty"))? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just gave us this fd.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(SupervisorError::Io {
        context: "receiving the pty".into(),
        source: std::io::Error::other("no file descriptor in the console message"),
    })
}
