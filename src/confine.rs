//! Paths inside a root directory, resolved the way a process chrooted there
//! would see them: a symbolic link is followed with its target read
//! relative to the root (an absolute target starts at the root, `..` stops
//! at it), so no link in a hostile image or build context can lead outside.
//! This is what `openat2(RESOLVE_IN_ROOT)` does in the kernel
//! (<https://man7.org/linux/man-pages/man2/openat2.2.html>); done here over
//! path components so callers get the resolved path back.

use std::path::{Component, Path, PathBuf};

/// How many links one resolution follows before giving up (Linux's own
/// limit is 40, `MAXSYMLINKS`).
pub const MAX_LINKS: usize = 40;

/// More than [`MAX_LINKS`] links on the way (a loop, most likely).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many levels of symbolic links")]
pub struct TooManyLinks;

/// Resolves `path` (`/`-separated, relative to `root` whether or not it
/// starts with `/`) to the components of a path under `root`. With
/// `follow_last` a link in the last component is followed too; without,
/// the last component is returned as it is (a link stays a link).
pub fn resolve(root: &Path, path: &str, follow_last: bool) -> Result<Vec<String>, TooManyLinks> {
    let mut todo: Vec<String> = path
        .split('/')
        .filter(|c| !c.is_empty())
        .rev()
        .map(str::to_string)
        .collect();
    let mut done: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        match c.as_str() {
            "." => continue,
            ".." => {
                done.pop();
                continue;
            }
            _ => {}
        }
        let mut at = root.to_path_buf();
        at.extend(&done);
        at.push(&c);
        let follow = follow_last || !todo.is_empty();
        match std::fs::read_link(&at) {
            Ok(target) if follow => {
                hops += 1;
                if hops > MAX_LINKS {
                    return Err(TooManyLinks);
                }
                if target.is_absolute() {
                    done.clear();
                }
                for part in target.components().rev() {
                    match part {
                        Component::Normal(s) => todo.push(s.to_string_lossy().into_owned()),
                        Component::ParentDir => todo.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => done.push(c),
        }
    }
    Ok(done)
}

/// [`resolve`] as a path under `root`.
pub fn resolve_path(root: &Path, path: &str, follow_last: bool) -> Result<PathBuf, TooManyLinks> {
    let mut p = root.to_path_buf();
    p.extend(resolve(root, path, follow_last)?);
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn links_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::create_dir_all(r.join("usr/bin")).unwrap();
        symlink("/etc/shadow", r.join("etc/passwd")).unwrap();
        symlink("../../..", r.join("usr/up")).unwrap();
        symlink("usr/bin", r.join("bin")).unwrap();
        symlink("loop", r.join("loop")).unwrap();
        assert_eq!(
            resolve_path(r, "/etc/passwd", true),
            Ok(r.join("etc/shadow"))
        );
        assert_eq!(
            resolve_path(r, "/etc/passwd", false),
            Ok(r.join("etc/passwd"))
        );
        assert_eq!(resolve_path(r, "usr/up/etc", true), Ok(r.join("etc")));
        assert_eq!(resolve_path(r, "/../../x", true), Ok(r.join("x")));
        assert_eq!(resolve_path(r, "/bin/sh", false), Ok(r.join("usr/bin/sh")));
        assert_eq!(resolve_path(r, "/loop", true), Err(TooManyLinks));
        assert_eq!(resolve_path(r, "/loop", false), Ok(r.join("loop")));
        assert_eq!(resolve_path(r, "/loop/x", false), Err(TooManyLinks));
    }
}
