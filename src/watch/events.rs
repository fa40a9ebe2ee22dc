//! File events: inotify (through the `notify` crate), debounced.
//!
//! Editors save in bursts (write a temporary file, rename it over the old
//! one, touch a backup), and a `git checkout` changes many files at once.
//! [`Watcher::next`] waits for a first event, then keeps collecting until
//! no new event has come for [`DEBOUNCE`] — 500 ms, Compose's own quiet
//! period (its `pkg/compose/watch.go`) — and returns the changed paths as
//! one batch. Events arrive over a channel from notify's thread: while the
//! command handles one batch (a rebuild may take a while), later events
//! wait in the channel and make up the next batch.
//!
//! Only changes count: notify also reports inotify's `IN_OPEN` (an
//! `Access` event), so a watcher that reads the files it watches — the
//! manifest on reload, the sources it syncs or builds from — would
//! otherwise wake itself up forever. That is why this is a small debouncer
//! of its own rather than `notify-debouncer-mini`, which keeps no event
//! kinds to filter on.
//!
//! What is watched ([`watch_points`]): each rule path that is a directory,
//! recursively; a rule path that is a file, through its directory (editors
//! replace files by rename, which would end a watch on the file itself); a
//! rule path that does not exist yet, through its nearest existing parent;
//! and the directories of the manifest files and `.env`, not recursively.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};

/// How long a burst of events must be quiet before it is handled.
pub const DEBOUNCE: Duration = Duration::from_millis(500);

/// The longest a batch collects: a file written without pause (a log in a
/// watched tree, even an ignored one) must not hold back every other change.
pub const MAX_BATCH: Duration = Duration::from_secs(5);

/// The watcher could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("cannot watch files: {0}")]
    Notify(#[from] notify::Error),
    #[error("cannot watch {}: {source}", .path.display())]
    Watch {
        path: PathBuf,
        source: notify::Error,
    },
}

/// A directory to watch, and whether to watch below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Depth {
    Recursive,
    Flat,
}

/// The directories to watch for `rule_paths` and `files` (manifests,
/// `.env`): `kind(path)` says whether a path is a directory (`Some(true)`),
/// something else (`Some(false)`) or missing (`None`). A directory watched
/// recursively covers the flat watches under it.
pub fn watch_points(
    rule_paths: &[PathBuf],
    files: &[PathBuf],
    kind: &dyn Fn(&Path) -> Option<bool>,
) -> BTreeMap<PathBuf, Depth> {
    let mut points: BTreeMap<PathBuf, Depth> = BTreeMap::new();
    let mut add = |p: PathBuf, d: Depth| {
        let e = points.entry(p).or_insert(d);
        if d == Depth::Recursive {
            *e = Depth::Recursive;
        }
    };
    for p in rule_paths {
        match kind(p) {
            Some(true) => add(p.clone(), Depth::Recursive),
            _ => {
                if let Some(parent) = p.ancestors().skip(1).find(|a| kind(a) == Some(true)) {
                    add(parent.to_path_buf(), Depth::Flat);
                }
            }
        }
    }
    for f in files {
        if let Some(parent) = f.parent() {
            if kind(parent) == Some(true) {
                add(parent.to_path_buf(), Depth::Flat);
            }
        }
    }
    let recursive: Vec<PathBuf> = points
        .iter()
        .filter(|(_, d)| **d == Depth::Recursive)
        .map(|(p, _)| p.clone())
        .collect();
    // A path under a recursive watch (other than that watch itself) is covered.
    points.retain(|p, _| !recursive.iter().any(|r| r != p && p.starts_with(r)));
    points
}

/// The host's answer for [`watch_points`].
pub fn host_kind(p: &Path) -> Option<bool> {
    std::fs::metadata(p).ok().map(|m| m.is_dir())
}

/// Whether an event is a change: not a mere open or read (a close after
/// writing counts).
pub fn is_change(kind: &EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode};
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// A debounced watcher over a set of directories.
pub struct Watcher {
    watcher: RecommendedWatcher,
    rx: Receiver<notify::Result<Event>>,
    points: BTreeMap<PathBuf, Depth>,
}

impl Watcher {
    pub fn new() -> Result<Self, EventsError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let watcher = notify::recommended_watcher(move |e: notify::Result<Event>| {
            if e.as_ref().map_or(true, |e| is_change(&e.kind)) {
                let _ = tx.send(e);
            }
        })?;
        Ok(Watcher {
            watcher,
            rx,
            points: BTreeMap::new(),
        })
    }

    /// Watches exactly `points` from now on.
    pub fn set_points(&mut self, points: BTreeMap<PathBuf, Depth>) -> Result<(), EventsError> {
        for (p, d) in &self.points {
            if points.get(p) != Some(d) {
                let _ = self.watcher.unwatch(p);
            }
        }
        for (p, d) in &points {
            if self.points.get(p) != Some(d) {
                let mode = match d {
                    Depth::Recursive => RecursiveMode::Recursive,
                    Depth::Flat => RecursiveMode::NonRecursive,
                };
                self.watcher
                    .watch(p, mode)
                    .map_err(|source| EventsError::Watch {
                        path: p.clone(),
                        source,
                    })?;
            }
        }
        self.points = points;
        Ok(())
    }

    /// The next batch of changed paths: waits up to `timeout` for a first
    /// change, then collects until none has come for [`DEBOUNCE`] (or for
    /// [`MAX_BATCH`] in all). Watch
    /// errors come back as messages (the watcher goes on).
    pub fn next(&self, timeout: Duration) -> Option<(BTreeSet<PathBuf>, Vec<String>)> {
        let first = match self.rx.recv_timeout(timeout) {
            Ok(e) => e,
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
        };
        let mut paths = BTreeSet::new();
        let mut errors = Vec::new();
        let mut take = |e: notify::Result<Event>| match e {
            Ok(event) => paths.extend(event.paths),
            Err(e) => errors.push(e.to_string()),
        };
        take(first);
        let end = Instant::now() + MAX_BATCH;
        let mut quiet_until = Instant::now() + DEBOUNCE;
        loop {
            let left = quiet_until
                .min(end)
                .saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.rx.recv_timeout(left) {
                Ok(e) => {
                    take(e);
                    quiet_until = Instant::now() + DEBOUNCE;
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        Some((paths, errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_a_file_is_no_change() {
        use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind};
        assert!(!is_change(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!is_change(&EventKind::Access(AccessKind::Read)));
        assert!(is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(is_change(&EventKind::Create(CreateKind::File)));
        assert!(is_change(&EventKind::Modify(ModifyKind::Any)));
        assert!(is_change(&EventKind::Remove(
            notify::event::RemoveKind::Any
        )));
    }

    #[test]
    fn points_for_rules_and_manifests() {
        let dirs = ["/p", "/p/src", "/p/src/lib", "/p/conf", "/q"];
        let files = ["/p/berth.toml", "/p/conf/app.ini", "/p/package.json"];
        let kind = |p: &Path| {
            let s = p.to_str().unwrap();
            if dirs.contains(&s) || s == "/" {
                Some(true)
            } else if files.contains(&s) {
                Some(false)
            } else {
                None
            }
        };
        let got = watch_points(
            &[
                PathBuf::from("/p/src"),
                PathBuf::from("/p/src/lib"),
                PathBuf::from("/p/conf/app.ini"),
                PathBuf::from("/p/new/dir"),
                PathBuf::from("/q"),
            ],
            &[PathBuf::from("/p/berth.toml"), PathBuf::from("/p/.env")],
            &kind,
        );
        let want: BTreeMap<PathBuf, Depth> = [
            ("/p", Depth::Flat),
            ("/p/conf", Depth::Flat),
            ("/p/src", Depth::Recursive),
            ("/q", Depth::Recursive),
        ]
        .into_iter()
        .map(|(p, d)| (PathBuf::from(p), d))
        .collect();
        assert_eq!(got, want);
    }
}
