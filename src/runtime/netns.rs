//! The container's network namespace, made before its process starts.
//!
//! A network namespace (network_namespaces(7)) gives the container its own
//! interfaces, routes and ports. berth creates it itself rather than letting
//! the engine do it, so it exists at a known path (a bind mount of
//! `/proc/<pid>/ns/net` on `containers/<id>/netns`, like `ip netns`) before
//! the container's process starts: loopback is brought up here, and the
//! network layer attaches bridges/veths to the same path ([`create`] is the
//! one hook). The spec then names the path and the engine joins it.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};

use super::rootfs::{is_mount_point, unmount_if_mounted, RootfsError};

/// Errors making or removing a network namespace.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("cannot create network namespace at {path}: {reason}")]
    Create { path: PathBuf, reason: String },
    #[error(transparent)]
    Unmount(#[from] RootfsError),
}

/// Creates a network namespace bound at `path` with loopback up; a no-op
/// when one is already bound there. Forks (call from a single-threaded
/// process).
pub fn create(path: &Path) -> Result<PathBuf, NetnsError> {
    let err = |reason: String| NetnsError::Create {
        path: path.to_path_buf(),
        reason,
    };
    if is_mount_point(path) {
        return Ok(path.to_path_buf());
    }
    std::fs::File::create(path).map_err(|e| err(e.to_string()))?;
    // SAFETY: the child only makes async-signal-safe syscalls and exits.
    match unsafe { fork() }.map_err(|e| err(e.to_string()))? {
        ForkResult::Child => {
            let code = match child(path) {
                Ok(()) => 0,
                Err(_) => 1,
            };
            // SAFETY: leave the forked child without running destructors.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, 0)) => Ok(path.to_path_buf()),
            other => Err(err(format!(
                "setup process failed ({other:?}); is this run as root?"
            ))),
        },
    }
}

fn child(path: &Path) -> nix::Result<()> {
    unshare(CloneFlags::CLONE_NEWNET)?;
    loopback_up()?;
    mount(
        Some("/proc/self/ns/net"),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
}

/// Sets `lo` up with SIOCSIFFLAGS in the current network namespace.
fn loopback_up() -> nix::Result<()> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is plain data; the name is NUL-terminated.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (i, b) in b"lo\0".iter().enumerate() {
        req.ifr_name[i] = *b as libc::c_char;
    }
    // SAFETY: valid socket and ifreq.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(nix::Error::last());
    }
    // SAFETY: reading/writing the flags member of the union.
    unsafe {
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    }
    // SAFETY: valid socket and ifreq.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(nix::Error::last());
    }
    Ok(())
}

/// Unbinds (and so frees, once no process is inside) the namespace at `path`.
pub fn remove(path: &Path) -> Result<(), NetnsError> {
    unmount_if_mounted(path)?;
    let _ = std::fs::remove_file(path);
    Ok(())
}
