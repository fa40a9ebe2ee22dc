//! The sync plan: which copies and deletions bring a container's `target`
//! in line with the host after a batch of changes (pure, but for
//! [`HostKind::of`], one `lstat`).
//!
//! Compose's `sync` action copies each changed file or directory from the
//! rule's host `path` to the same place under `target` in every running
//! container, and deletes in the container what was deleted on the host.
//! The input is each changed path (relative to the rule's path) with what
//! is there now on the host; the output is the operations in the order to
//! apply them: deletions first, then copies, parents before children, and
//! nothing copied twice (a directory copy is recursive, so changes under a
//! directory being copied are covered by it — deletions under it are not,
//! and are kept).

use std::path::{Path, PathBuf};

use super::rules::slash_path;

/// What is at a changed path on the host now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HostKind {
    File,
    Dir,
    Symlink,
    /// Deleted (or moved away).
    Missing,
}

impl HostKind {
    /// What is at `path`, not following a final symbolic link.
    pub fn of(path: &Path) -> HostKind {
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => HostKind::Symlink,
            Ok(m) if m.is_dir() => HostKind::Dir,
            Ok(_) => HostKind::File,
            Err(_) => HostKind::Missing,
        }
    }
}

/// One operation in a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOp {
    /// Copy the host file, link or directory (recursively) to `target`.
    Copy {
        host: PathBuf,
        target: String,
        kind: HostKind,
    },
    /// Remove `target` (recursively), if it is there.
    Delete { target: String },
}

impl SyncOp {
    /// The container path the operation writes.
    pub fn target(&self) -> &str {
        match self {
            SyncOp::Copy { target, .. } | SyncOp::Delete { target } => target,
        }
    }
}

/// The container path of `rel` (relative to the rule's path) under `target`.
pub fn container_path(target: &str, rel: &Path) -> String {
    let rel = slash_path(rel);
    let base = target.trim_end_matches('/');
    match (rel.is_empty(), base.is_empty()) {
        (true, true) => "/".to_string(),
        (true, false) => base.to_string(),
        (false, _) => format!("{base}/{rel}"),
    }
}

/// The operations for the changes of one rule: `rule_path` is the rule's
/// host path, `target` its container path, `changes` the changed paths
/// relative to `rule_path` with what is at each now.
pub fn plan(rule_path: &Path, target: &str, changes: &[(PathBuf, HostKind)]) -> Vec<SyncOp> {
    let mut changes: Vec<(PathBuf, HostKind)> = changes.to_vec();
    // Path order puts parents before their children.
    changes.sort_by(|a, b| a.0.cmp(&b.0));
    changes.dedup_by(|a, b| a.0 == b.0);
    let mut deletes = Vec::new();
    let mut copies = Vec::new();
    let mut deleted: Vec<&Path> = Vec::new();
    let mut copied_dirs: Vec<&Path> = Vec::new();
    for (rel, kind) in &changes {
        let target_path = container_path(target, rel);
        match kind {
            HostKind::Missing => {
                if deleted.iter().any(|d| rel.starts_with(d)) {
                    continue;
                }
                deleted.push(rel);
                deletes.push(SyncOp::Delete {
                    target: target_path,
                });
            }
            kind => {
                if copied_dirs.iter().any(|d| rel.starts_with(d)) {
                    continue;
                }
                if *kind == HostKind::Dir {
                    copied_dirs.push(rel);
                }
                copies.push(SyncOp::Copy {
                    host: if rel.as_os_str().is_empty() {
                        rule_path.to_path_buf()
                    } else {
                        rule_path.join(rel)
                    },
                    target: target_path,
                    kind: *kind,
                });
            }
        }
    }
    deletes.extend(copies);
    deletes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(word: &str) -> HostKind {
        match word {
            "file" => HostKind::File,
            "dir" => HostKind::Dir,
            "link" => HostKind::Symlink,
            "gone" => HostKind::Missing,
            other => panic!("unknown kind {other}"),
        }
    }

    /// Cases: `changes` lines are `rel kind`; `ops` lines are
    /// `copy HOST TARGET KIND` or `delete TARGET`.
    #[test]
    fn plans_from_changes() {
        let cases = [
            (
                "one file",
                "/app",
                "a.js file",
                "copy /h/src/a.js /app/a.js file",
            ),
            (
                "a deletion and a new file",
                "/app/",
                "old.js gone\nnew.js file",
                "delete /app/old.js\ncopy /h/src/new.js /app/new.js file",
            ),
            (
                "a new directory covers its files, not its deletions",
                "/app",
                "lib/x.js file\nlib dir\nlib/y.js gone\nlib/sub/z.js file",
                "delete /app/lib/y.js\ncopy /h/src/lib /app/lib dir",
            ),
            (
                "a deleted directory covers its files",
                "/app",
                "lib gone\nlib/x.js gone\nlibx gone",
                "delete /app/lib\ndelete /app/libx",
            ),
            (
                "a link is copied as a link",
                "/app",
                "cur link",
                "copy /h/src/cur /app/cur link",
            ),
            (
                "the rule's path itself (a file rule)",
                "/etc/app.conf",
                " file",
                "copy /h/src /etc/app.conf file",
            ),
            (
                "duplicates collapse",
                "/app",
                "a file\na file",
                "copy /h/src/a /app/a file",
            ),
            ("nothing", "/app", "", ""),
        ];
        for (name, target, changes, want) in cases {
            let changes: Vec<(PathBuf, HostKind)> = changes
                .lines()
                .map(|l| {
                    let (rel, k) = l.rsplit_once(' ').unwrap();
                    (PathBuf::from(rel), kind(k))
                })
                .collect();
            let got: Vec<String> = plan(Path::new("/h/src"), target, &changes)
                .iter()
                .map(|op| match op {
                    SyncOp::Copy { host, target, kind } => format!(
                        "copy {} {target} {}",
                        host.display(),
                        format!("{kind:?}")
                            .to_lowercase()
                            .replace("symlink", "link")
                    ),
                    SyncOp::Delete { target } => format!("delete {target}"),
                })
                .collect();
            let want: Vec<&str> = want.lines().collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn container_paths() {
        assert_eq!(container_path("/app", Path::new("")), "/app");
        assert_eq!(container_path("/app/", Path::new("a/b")), "/app/a/b");
        assert_eq!(container_path("/", Path::new("a")), "/a");
        assert_eq!(container_path("/", Path::new("")), "/");
    }
}
