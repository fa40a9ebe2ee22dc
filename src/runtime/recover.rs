//! Finding a container's processes without trusting its `state.json`: the
//! processes in its cgroup (`/berth/<id>` in every hierarchy, see
//! `supervisor::prepare`'s `cgroups_path`) and its supervisor (the process
//! whose command line is `berth … __supervise <id> …`).
//!
//! This is what lets a container whose state record is corrupt still be
//! shown as running, removed (`rm -f` kills what its cgroup holds) and
//! repaired (`system check` rewrites the record from what runs).

use std::path::Path;

/// The cgroup directories a container may have (v1 controllers, v2).
fn cgroup_dirs(id: &str) -> Vec<std::path::PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    let mut dirs = vec![base.join("berth").join(id)];
    if let Ok(rd) = std::fs::read_dir(base) {
        for e in rd.flatten() {
            dirs.push(e.path().join("berth").join(id));
        }
    }
    dirs
}

/// Removes what is left of container `id`'s cgroups once its processes
/// are gone. libcontainer removes them on delete, but on cgroup v1 a
/// memory cgroup can refuse `rmdir` (EBUSY) for a moment after its last
/// process exits, while the kernel uncharges it; the delete then leaves
/// the directory behind. Empty leftovers are removed here, retrying EBUSY
/// for up to a second; a directory with processes in it is never touched.
pub fn remove_empty_cgroups(id: &str) {
    for dir in cgroup_dirs(id) {
        for attempt in 0..20 {
            if !dir.exists() {
                break;
            }
            let busy_with_processes = std::fs::read_to_string(dir.join("cgroup.procs"))
                .map(|s| !s.trim().is_empty())
                .unwrap_or(false);
            if busy_with_processes {
                break;
            }
            match std::fs::remove_dir(&dir) {
                Ok(()) => break,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 19 => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(_) => break,
            }
        }
    }
}

/// The pids in container `id`'s cgroup, lowest first (the init is the
/// first process the container ran, so normally the lowest).
pub fn cgroup_pids(id: &str) -> Vec<i32> {
    let mut pids: Vec<i32> = cgroup_dirs(id)
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|s| {
            s.lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// The container's init as its cgroup shows it: the process of the cgroup
/// whose parent is outside it.
pub fn init_pid(id: &str) -> Option<i32> {
    let pids = cgroup_pids(id);
    pids.iter()
        .copied()
        .find(|p| parent(*p).is_none_or(|pp| !pids.contains(&pp)))
}

fn parent(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The pid of container `id`'s supervisor, found by its command line.
pub fn supervisor_pid(id: &str) -> Option<i32> {
    let rd = std::fs::read_dir("/proc").ok()?;
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
                args.windows(2)
                    .any(|w| w[0] == b"__supervise" && w[1] == id.as_bytes())
            })
        })
}

/// SIGKILLs container `id`'s supervisor and everything in its cgroup, and
/// waits (up to a few seconds) until they are gone.
pub fn kill_all(id: &str) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    if let Some(sup) = supervisor_pid(id) {
        let _ = kill(Pid::from_raw(sup), Signal::SIGKILL);
    }
    let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let pids = cgroup_pids(id);
        if pids.is_empty() || std::time::Instant::now() > end {
            break;
        }
        for p in pids {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while supervisor_pid(id).is_some() && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_found_for_an_unknown_container() {
        let id = "f".repeat(64);
        assert!(cgroup_pids(&id).is_empty());
        assert_eq!(init_pid(&id), None);
        assert_eq!(supervisor_pid(&id), None);
        assert_eq!(
            parent(std::process::id() as i32),
            Some(std::os::unix::process::parent_id() as i32)
        );
    }
}
