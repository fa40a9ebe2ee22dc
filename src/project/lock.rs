//! The project lock: commands that change a project (`up`, `down`, watch's
//! applies, the `compose` verbs that start, stop or remove containers) take
//! an exclusive flock(2) on `ROOT/projects/NAME.lock` for as long as they
//! read the actual state, plan and apply, so two of them never interleave
//! (an `up` racing a `down` left half a project and a network "with active
//! endpoints"; two `up`s both tried to create the same containers).
//!
//! The holder writes its pid and command into the file, so a second command
//! can say what it waits for (`waiting for another berth (pid 123, "up") on
//! project "demo"`) or, when asked not to wait, fail naming it. The kernel
//! drops a flock with its last descriptor, so a killed holder releases the
//! lock; the stale text left in the file is only read while someone else
//! holds the lock and has rewritten it.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use crate::state::StateRoot;

/// Errors from taking a project lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("project {project:?} is busy: another berth ({holder}) is changing it; wait for it to finish, or run without --no-lock-wait to wait")]
    Busy { project: String, holder: Holder },
    #[error("cannot lock project {project:?} at {path}: {source}")]
    Io {
        project: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Who holds a project lock, as its holder wrote it (either part may be
/// unknown in the instant between the holder's flock and its write).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holder {
    pub pid: Option<u32>,
    pub command: Option<String>,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.pid, &self.command) {
            (Some(pid), Some(cmd)) => write!(f, "pid {pid}, {cmd:?}"),
            (Some(pid), None) => write!(f, "pid {pid}"),
            (None, Some(cmd)) => write!(f, "{cmd:?}"),
            (None, None) => write!(f, "pid unknown"),
        }
    }
}

impl Holder {
    fn parse(text: &str) -> Self {
        let mut lines = text.lines();
        let pid = lines.next().and_then(|l| l.trim().parse().ok());
        let command = lines
            .next()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string);
        Holder { pid, command }
    }
}

/// Whether a second command waits for the lock or fails at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    Block,
    FailFast,
}

/// An exclusive lock on one project; released on drop (or when the process
/// dies).
#[derive(Debug)]
pub struct ProjectLock {
    _file: File,
}

/// Where project `name`'s lock lives.
pub fn path(root: &StateRoot, name: &str) -> PathBuf {
    root.path().join("projects").join(format!("{name}.lock"))
}

/// Takes project `name`'s lock for `command` (e.g. `"up"`). When another
/// command holds it, `on_wait` is told who, once, before blocking (with
/// [`Wait::Block`]); with [`Wait::FailFast`] it is [`LockError::Busy`].
pub fn acquire(
    root: &StateRoot,
    name: &str,
    command: &str,
    wait: Wait,
    on_wait: impl FnOnce(&Holder),
) -> Result<ProjectLock, LockError> {
    let path = path(root, name);
    let io = |source| LockError::Io {
        project: name.to_string(),
        path: path.clone(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io)?;
    if !flock(&file, libc::LOCK_EX | libc::LOCK_NB).map_err(io)? {
        let holder = read_holder(&mut file);
        if wait == Wait::FailFast {
            return Err(LockError::Busy {
                project: name.to_string(),
                holder,
            });
        }
        on_wait(&holder);
        while !flock(&file, libc::LOCK_EX).map_err(io)? {}
    }
    // Who we are, for whoever comes next. Best effort: on a full disk the
    // lock still serialises, the next waiter just cannot name us.
    let _ = file.set_len(0).and_then(|()| {
        file.rewind()?;
        file.write_all(format!("{}\n{command}\n", std::process::id()).as_bytes())
    });
    Ok(ProjectLock { _file: file })
}

/// flock(2); `Ok(false)` when non-blocking and held elsewhere, or when
/// interrupted (the caller retries).
fn flock(file: &File, op: libc::c_int) -> std::io::Result<bool> {
    // SAFETY: flock on a valid fd we own.
    if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EWOULDBLOCK) | Some(libc::EINTR) => Ok(false),
        _ => Err(e),
    }
}

fn read_holder(file: &mut File) -> Holder {
    let mut text = String::new();
    let _ = file.rewind().and_then(|()| file.read_to_string(&mut text));
    Holder::parse(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_is_told_who_holds_it_or_fails_fast() {
        let tmp = tempfile::tempdir().unwrap();
        let root = StateRoot::open(tmp.path()).unwrap();
        let held = acquire(&root, "demo", "up", Wait::Block, |_| panic!("free")).unwrap();
        let err = acquire(&root, "demo", "down", Wait::FailFast, |_| {}).unwrap_err();
        let LockError::Busy { holder, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(holder.pid, Some(std::process::id()));
        assert_eq!(holder.command.as_deref(), Some("up"));
        assert!(
            err.to_string()
                .contains(&format!("pid {}, \"up\"", std::process::id())),
            "{err}"
        );
        // Another project is not held up.
        let _other = acquire(&root, "other", "up", Wait::FailFast, |_| {}).unwrap();
        // A blocked taker gets the lock once the holder lets go.
        let root2 = root.clone();
        let waiter = std::thread::spawn(move || {
            let mut told = None;
            let _l = acquire(&root2, "demo", "down", Wait::Block, |h| {
                told = Some(h.clone())
            })
            .unwrap();
            told
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        drop(held);
        let told = waiter.join().unwrap().expect("it waited");
        assert_eq!(told.command.as_deref(), Some("up"));
    }

    #[test]
    fn holder_text_parses_partially() {
        assert_eq!(Holder::parse(""), Holder::default());
        assert_eq!(Holder::parse("12\n").pid, Some(12));
        assert_eq!(Holder::parse("x\nup\n").command.as_deref(), Some("up"));
        assert_eq!(Holder::default().to_string(), "pid unknown");
    }
}
