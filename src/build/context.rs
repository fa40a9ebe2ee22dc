//! The build context: the directory `berth build PATH` names, as the
//! Dockerfile's `COPY`/`ADD` see it.
//!
//! Sources are paths relative to the context root (a leading `/` means the
//! root too, as in Docker), may hold globs (`*`, `?`, `[a-z]`, matched per
//! path component like Go's `filepath.Match`), and never reach outside the
//! root: `..` that climbs above it is refused, and symbolic links met on the
//! way to a source are resolved *inside* the root (an absolute target is
//! taken relative to the root, `..` stops at it), as Docker's
//! `FollowSymlinkInScope` does. A source that is itself a symbolic link is
//! copied as its target (resolved the same way, under the link's name), as
//! both of Docker's builders do; links inside copied directories are copied
//! as links, never followed.
//! Paths excluded by `.dockerignore` are invisible
//! (<https://docs.docker.com/build/concepts/context/#dockerignore-files>).
//!
//! The selection has a content digest (relative paths, types, modes, owners,
//! sizes, link targets and file contents), which is part of the step's cache
//! key (see [`super::cache`]).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

/// Errors selecting sources from the build context.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("forbidden path outside the build context: {0}")]
    Outside(String),
    #[error("{0}: no such file or directory in the build context (or excluded by .dockerignore)")]
    NotFound(String),
    #[error("no source files were specified")]
    Empty,
    #[error("too many levels of symbolic links resolving {0} in the build context")]
    Loop(String),
    #[error("the build context {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ContextError + '_ {
    move |source| ContextError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What decides which context paths are invisible (`.dockerignore`).
pub trait Excludes {
    /// Whether the path (relative, `/`-separated) is excluded.
    fn is_excluded(&self, rel: &str) -> bool;
    /// Whether nothing under the directory can be re-included.
    fn excludes_dir_entirely(&self, dir: &str) -> bool;
}

/// Nothing is excluded.
pub struct NoExcludes;

impl Excludes for NoExcludes {
    fn is_excluded(&self, _: &str) -> bool {
        false
    }
    fn excludes_dir_entirely(&self, _: &str) -> bool {
        false
    }
}

/// The kind of a context entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink(PathBuf),
    /// A socket, fifo or device: not copied (reading a fifo would block).
    Other,
}

/// One file, directory or link of the context.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Path relative to the context root (`/`-separated; `""` is the root).
    pub rel: String,
    /// Where it is on disk.
    pub path: PathBuf,
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// Device, inode and link count: files sharing (dev, ino) are one
    /// hardlink group, written as tar hardlinks.
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
}

/// What one source operand selected.
#[derive(Debug, Clone)]
pub struct Selected {
    /// The matched path itself.
    pub top: Entry,
    /// For a directory, everything under it (paths relative to `top`),
    /// parents before children, sorted.
    pub children: Vec<(String, Entry)>,
}

/// A build context directory.
pub struct BuildContext {
    root: PathBuf,
    excludes: Box<dyn Excludes>,
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Lexically cleans `source` into components relative to the root.
fn clean(source: &str) -> Result<Vec<String>, ContextError> {
    let mut out: Vec<String> = Vec::new();
    for c in source.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if out.pop().is_none() {
                    return Err(ContextError::Outside(source.to_string()));
                }
            }
            c => out.push(c.to_string()),
        }
    }
    Ok(out)
}

/// Matches one path component against a glob component (`*`, `?`, `[...]`,
/// `\` escapes), as Go's `filepath.Match` does within a component.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    fn class(p: &[char], c: char) -> Option<(bool, usize)> {
        // p starts after '['; returns (matched, length consumed incl. ']').
        let mut i = 0;
        let negate = matches!(p.first(), Some('^') | Some('!'));
        if negate {
            i += 1;
        }
        let mut matched = false;
        let mut first = true;
        while i < p.len() {
            if p[i] == ']' && !first {
                return Some((matched != negate, i + 1));
            }
            first = false;
            let mut lo = p[i];
            if lo == '\\' && i + 1 < p.len() {
                i += 1;
                lo = p[i];
            }
            let mut hi = lo;
            if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
                hi = p[i + 2];
                i += 2;
            }
            if lo <= c && c <= hi {
                matched = true;
            }
            i += 1;
        }
        None
    }
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|k| go(&p[1..], &n[k..])),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('[') => match (
                n.first(),
                class(&p[1..], n.first().copied().unwrap_or('\0')),
            ) {
                (Some(_), Some((true, len))) => go(&p[1 + len..], &n[1..]),
                _ => false,
            },
            Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && go(&p[2..], &n[1..]),
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    go(&p, &n)
}

impl BuildContext {
    /// The context rooted at `root` (made absolute), hiding what `excludes` excludes.
    pub fn new(root: &Path, excludes: Box<dyn Excludes>) -> Result<Self, ContextError> {
        let root = root.canonicalize().map_err(io(root))?;
        Ok(Self { root, excludes })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn entry(&self, rel: String, path: PathBuf) -> Result<Entry, ContextError> {
        let meta = std::fs::symlink_metadata(&path).map_err(io(&path))?;
        let ft = meta.file_type();
        let kind = if ft.is_symlink() {
            EntryKind::Symlink(std::fs::read_link(&path).map_err(io(&path))?)
        } else if ft.is_dir() {
            EntryKind::Dir
        } else if ft.is_file() {
            EntryKind::File
        } else {
            EntryKind::Other
        };
        Ok(Entry {
            rel,
            path,
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            size: if ft.is_file() { meta.len() } else { 0 },
            dev: meta.dev(),
            ino: meta.ino(),
            nlink: meta.nlink(),
        })
    }

    /// Resolves cleaned components to a path inside the root, following
    /// links of all but the last component within the root. Returns the
    /// resolved relative components.
    fn resolve(&self, source: &str, comps: &[String]) -> Result<Vec<String>, ContextError> {
        crate::confine::resolve(&self.root, &comps.join("/"), false)
            .map_err(|_| ContextError::Loop(source.to_string()))
    }

    /// Selects what one `COPY`/`ADD` source operand names.
    pub fn select(&self, source: &str) -> Result<Vec<Selected>, ContextError> {
        let comps = clean(source)?;
        let paths: Vec<Vec<String>> = if comps.iter().any(|c| has_glob(c)) {
            let mut found = Vec::new();
            self.glob(&comps, Vec::new(), &mut found)?;
            if found.is_empty() {
                return Err(ContextError::NotFound(source.to_string()));
            }
            found.sort();
            found
        } else {
            vec![self.resolve(source, &comps)?]
        };
        let mut out = Vec::new();
        for p in paths {
            let rel = p.join("/");
            if !rel.is_empty() && self.excludes.is_excluded(&rel) {
                return Err(ContextError::NotFound(source.to_string()));
            }
            let mut path = self.root.clone();
            path.extend(&p);
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                return Err(ContextError::NotFound(source.to_string()));
            };
            // A source that is a link is copied as what it points at (inside
            // the root), under the link's own name, as Docker does.
            let mut walk_rel = rel.clone();
            if meta.file_type().is_symlink() {
                let target = crate::confine::resolve(&self.root, &rel, true)
                    .map_err(|_| ContextError::Loop(source.to_string()))?;
                path = self.root.clone();
                path.extend(&target);
                walk_rel = target.join("/");
                if std::fs::metadata(&path).is_err() {
                    return Err(ContextError::NotFound(source.to_string()));
                }
            }
            let top = self.entry(rel.clone(), path.clone())?;
            let mut children = Vec::new();
            if top.kind == EntryKind::Dir {
                self.walk(&path, &walk_rel, "", &mut children)?;
            }
            out.push(Selected { top, children });
        }
        Ok(out)
    }

    fn glob(
        &self,
        pattern: &[String],
        at: Vec<String>,
        found: &mut Vec<Vec<String>>,
    ) -> Result<(), ContextError> {
        let Some((first, rest)) = pattern.split_first() else {
            found.push(at);
            return Ok(());
        };
        let mut dir = self.root.clone();
        dir.extend(&at);
        if !has_glob(first) {
            let mut next = at.clone();
            next.push(first.clone());
            let mut p = self.root.clone();
            p.extend(&next);
            let is_dir = std::fs::symlink_metadata(&p)
                .map(|m| m.is_dir())
                .unwrap_or(false);
            if (rest.is_empty() && p.symlink_metadata().is_ok()) || is_dir {
                self.glob(rest, next, found)?;
            }
            return Ok(());
        }
        let Ok(rd) = std::fs::read_dir(&dir) else {
            return Ok(());
        };
        for e in rd {
            let e = e.map_err(io(&dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !glob_match(first, &name) {
                continue;
            }
            let mut next = at.clone();
            next.push(name);
            if self.excludes.is_excluded(&next.join("/")) {
                continue;
            }
            let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if rest.is_empty() || is_dir {
                self.glob(rest, next, found)?;
            }
        }
        Ok(())
    }

    fn walk(
        &self,
        dir: &Path,
        rel: &str,
        under: &str,
        out: &mut Vec<(String, Entry)>,
    ) -> Result<(), ContextError> {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(io(dir))?;
        names.sort();
        for name in names {
            let name = name.to_string_lossy().into_owned();
            let crel = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let cunder = if under.is_empty() {
                name.clone()
            } else {
                format!("{under}/{name}")
            };
            let path = dir.join(&name);
            let e = self.entry(crel.clone(), path.clone())?;
            if e.kind == EntryKind::Dir {
                if self.excludes.excludes_dir_entirely(&crel) {
                    continue;
                }
                let mark = out.len();
                out.push((cunder.clone(), e));
                self.walk(&path, &crel, &cunder, out)?;
                if self.excludes.is_excluded(&crel) && out.len() == mark + 1 {
                    out.pop();
                }
            } else if !self.excludes.is_excluded(&crel) {
                out.push((cunder, e));
            }
        }
        Ok(())
    }
}

/// The content digest of selected sources: `sha256:<hex>` over each
/// entry's relative path, type, mode, owner, size, link target and content.
pub fn content_digest(selection: &[Selected]) -> Result<String, ContextError> {
    let mut h = Sha256::new();
    let mut put = |s: &[u8]| {
        h.update((s.len() as u64).to_le_bytes());
        h.update(s);
    };
    for s in selection {
        for (name, e) in std::iter::once((String::new(), &s.top))
            .chain(s.children.iter().map(|(n, e)| (n.clone(), e)))
        {
            put(s.top.rel.as_bytes());
            put(name.as_bytes());
            let meta = format!("{} {} {} {}", e.mode, e.uid, e.gid, e.size);
            put(meta.as_bytes());
            match &e.kind {
                EntryKind::Dir => put(b"dir"),
                EntryKind::Other => put(b"other"),
                EntryKind::Symlink(t) => {
                    put(b"symlink");
                    put(t.as_os_str().as_encoded_bytes());
                }
                EntryKind::File => {
                    put(b"file");
                    let mut f = std::fs::File::open(&e.path).map_err(io(&e.path))?;
                    let mut fh = Sha256::new();
                    std::io::copy(&mut f, &mut fh).map_err(io(&e.path))?;
                    put(&fh.finalize());
                }
            }
        }
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    struct Ignore(Vec<&'static str>);
    impl Excludes for Ignore {
        fn is_excluded(&self, rel: &str) -> bool {
            self.0
                .iter()
                .any(|p| rel == *p || rel.starts_with(&format!("{p}/")))
        }
        fn excludes_dir_entirely(&self, dir: &str) -> bool {
            self.is_excluded(dir)
        }
    }

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("src/sub")).unwrap();
        std::fs::write(r.join("app.txt"), "app\n").unwrap();
        std::fs::write(r.join("b.txt"), "b\n").unwrap();
        std::fs::write(r.join("secret.env"), "k=v\n").unwrap();
        std::fs::write(r.join("src/main.c"), "int main;\n").unwrap();
        std::fs::write(r.join("src/sub/x.h"), "x\n").unwrap();
        symlink("/etc/passwd", r.join("passwd-link")).unwrap();
        symlink("/etc", r.join("etc-link")).unwrap();
        symlink("../../..", r.join("src/up")).unwrap();
        d
    }

    fn ctx(d: &tempfile::TempDir, ignore: Vec<&'static str>) -> BuildContext {
        BuildContext::new(d.path(), Box::new(Ignore(ignore))).unwrap()
    }

    fn rels(sel: &[Selected]) -> Vec<String> {
        let mut v = Vec::new();
        for s in sel {
            v.push(s.top.rel.clone());
            for (n, _) in &s.children {
                v.push(format!("{}:{n}", s.top.rel));
            }
        }
        v
    }

    #[test]
    fn selects_files_dirs_and_globs() {
        let d = tree();
        let c = ctx(&d, vec![]);
        assert_eq!(rels(&c.select("app.txt").unwrap()), ["app.txt"]);
        assert_eq!(rels(&c.select("/app.txt").unwrap()), ["app.txt"]);
        assert_eq!(rels(&c.select("./src/../app.txt").unwrap()), ["app.txt"]);
        assert_eq!(rels(&c.select("*.txt").unwrap()), ["app.txt", "b.txt"]);
        assert_eq!(rels(&c.select("src/*/x.?").unwrap()), ["src/sub/x.h"]);
        let src = rels(&c.select("src").unwrap());
        assert_eq!(
            src,
            ["src", "src:main.c", "src:sub", "src:sub/x.h", "src:up"]
        );
        assert!(matches!(c.select("nope"), Err(ContextError::NotFound(_))));
        assert!(matches!(c.select("*.nope"), Err(ContextError::NotFound(_))));
    }

    #[test]
    fn dockerignore_hides_paths() {
        let d = tree();
        let c = ctx(&d, vec!["secret.env", "src/sub"]);
        assert!(matches!(
            c.select("secret.env"),
            Err(ContextError::NotFound(_))
        ));
        assert!(matches!(
            c.select("src/sub/x.h"),
            Err(ContextError::NotFound(_))
        ));
        let all = rels(&c.select(".").unwrap());
        assert!(
            !all.iter()
                .any(|p| p.contains("secret") || p.contains("sub")),
            "{all:?}"
        );
        assert!(all.contains(&":app.txt".to_string()), "{all:?}");
        assert!(matches!(c.select("*.env"), Err(ContextError::NotFound(_))));
    }

    #[test]
    fn hostile_sources_stay_in_the_context() {
        let d = tree();
        let c = ctx(&d, vec![]);
        // Climbing out lexically is refused.
        assert!(matches!(
            c.select("../secret"),
            Err(ContextError::Outside(_))
        ));
        assert!(matches!(
            c.select("src/../../x"),
            Err(ContextError::Outside(_))
        ));
        // A link as the source is followed inside the root: /etc/passwd is
        // ROOT/etc/passwd, which does not exist.
        assert!(matches!(
            c.select("passwd-link"),
            Err(ContextError::NotFound(_))
        ));
        // One that points inside is copied as its target, under its own name.
        symlink("src/sub", d.path().join("sub-link")).unwrap();
        symlink("/app.txt", d.path().join("app-link")).unwrap();
        let s = c.select("app-link").unwrap();
        assert_eq!(
            (s[0].top.rel.as_str(), &s[0].top.kind),
            ("app-link", &EntryKind::File)
        );
        assert_eq!(s[0].top.path, c.root().join("app.txt"));
        let s = c.select("sub-link").unwrap();
        assert_eq!(s[0].top.kind, EntryKind::Dir);
        assert_eq!(rels(&s), ["sub-link", "sub-link:x.h"]);
        // Links on the way are resolved inside the root: etc-link/passwd is
        // ROOT/etc/passwd, which does not exist.
        assert!(matches!(
            c.select("etc-link/passwd"),
            Err(ContextError::NotFound(_))
        ));
        // ../../.. from src/ stops at the root: src/up/app.txt is ROOT/app.txt.
        let s = c.select("src/up/app.txt").unwrap();
        assert_eq!(s[0].top.rel, "app.txt");
        assert!(s[0].top.path.starts_with(c.root()));
        // A link inside a copied directory stays a link.
        let s = c.select("src").unwrap();
        let up = s[0].children.iter().find(|(n, _)| n == "up").unwrap();
        assert_eq!(up.1.kind, EntryKind::Symlink("../../..".into()));
    }

    #[test]
    fn special_files_are_not_read() {
        let d = tree();
        nix::unistd::mkfifo(
            &d.path().join("src/pipe"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        let c = ctx(&d, vec![]);
        let sel = c.select("src").unwrap();
        let pipe = sel[0].children.iter().find(|(n, _)| n == "pipe").unwrap();
        assert_eq!(pipe.1.kind, EntryKind::Other);
        // Digesting does not open (and block on) the fifo.
        content_digest(&sel).unwrap();
    }

    #[test]
    fn link_loops_are_reported() {
        let d = tempfile::tempdir().unwrap();
        symlink("b", d.path().join("a")).unwrap();
        symlink("a", d.path().join("b")).unwrap();
        let c = BuildContext::new(d.path(), Box::new(NoExcludes)).unwrap();
        assert!(matches!(c.select("a/x"), Err(ContextError::Loop(_))));
        assert!(matches!(c.select("a"), Err(ContextError::Loop(_))));
    }

    #[test]
    fn content_digest_follows_content_and_mode() {
        let d = tree();
        let c = ctx(&d, vec![]);
        let one = content_digest(&c.select("src").unwrap()).unwrap();
        assert_eq!(one, content_digest(&c.select("src").unwrap()).unwrap());
        std::fs::write(d.path().join("src/sub/x.h"), "y\n").unwrap();
        let two = content_digest(&c.select("src").unwrap()).unwrap();
        assert_ne!(one, two);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            d.path().join("src/main.c"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        assert_ne!(two, content_digest(&c.select("src").unwrap()).unwrap());
        // Touching (same content) keeps the digest.
        let three = content_digest(&c.select("src").unwrap()).unwrap();
        std::fs::write(d.path().join("src/sub/x.h"), "y\n").unwrap();
        assert_eq!(three, content_digest(&c.select("src").unwrap()).unwrap());
    }

    #[test]
    fn glob_components() {
        for (p, n, want) in [
            ("*.txt", "a.txt", true),
            ("*.txt", "a.txt.bak", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("[a-c]x", "bx", true),
            ("[!a-c]x", "bx", false),
            ("[^a-c]x", "dx", true),
            ("\\*", "*", true),
            ("\\*", "a", false),
            ("*", "", true),
        ] {
            assert_eq!(glob_match(p, n), want, "{p} {n}");
        }
    }
}
