//! Naming a process so that a reused pid is not mistaken for it.
//!
//! A pid alone is recycled by the kernel; a pid together with the process's
//! start time (field 22 of `/proc/PID/stat`, in clock ticks after boot; see
//! proc(5)) names one process for the life of the machine. Records that must
//! outlive a crash of their owner (a build container's builder, an image
//! store writer's lease) carry this `PID:STARTTIME` identity, and whoever
//! finds them later asks whether that process still runs.

/// `PID:STARTTIME` of process `pid`, or `None` when it does not exist.
pub fn identity(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count the
    // fields after its closing parenthesis (field 3 is the first of them).
    let after = &stat[stat.rfind(')')? + 1..];
    let start = after.split_whitespace().nth(19)?;
    Some(format!("{pid}:{start}"))
}

/// This process's identity.
pub fn own_identity() -> Option<String> {
    identity(std::process::id())
}

/// Whether the process named by `identity` (as made by [`identity`]) runs.
pub fn alive(id: &str) -> bool {
    id.split_once(':')
        .and_then(|(pid, _)| pid.parse::<u32>().ok())
        .and_then(identity)
        .is_some_and(|now| now == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_is_known_by_pid_and_start_time() {
        let me = own_identity().expect("this process exists");
        let (pid, start) = me.split_once(':').unwrap();
        assert_eq!(pid, std::process::id().to_string());
        assert!(start.parse::<u64>().is_ok(), "{me}");
        assert!(alive(&me));
        // The same pid with another start time is another process.
        assert!(!alive(&format!("{pid}:1")));
        assert_eq!(identity(u32::MAX), None);
        assert!(!alive("not-an-identity"));
    }
}
