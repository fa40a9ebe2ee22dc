//! Carrying out a sync plan inside a running container, from the host.
//!
//! The container's filesystem, mounts included (volumes, tmpfs), is reached
//! through `/proc/PID/root` of its init process (proc(5)): no tar, shell or
//! helper is needed in the image. Every container path is first resolved as
//! a process chrooted there would see it ([`crate::confine`]), and the
//! operation is refused when the resolved place of a changed path is not
//! inside the rule's resolved `target` — a symbolic link in the container
//! such as `/app/src/evil -> /etc` does not let a sync write into `/etc`,
//! let alone outside the container. The resolved directories are then
//! opened one component at a time with `O_NOFOLLOW` from a descriptor of
//! the root, so a link swapped in after the check fails the open
//! (`ELOOP`/`ENOTDIR`) instead of being followed. Files are written to a
//! temporary name beside their destination and renamed over it (a link
//! already at the destination is replaced, never followed).
//!
//! Modes are the host's permission bits. Owner: the service's `user` when
//! it is numeric (`UID` or `UID:GID`; without a GID the group is 0, as
//! Docker runs a UID that has no passwd entry), otherwise root — a user
//! name would have to be looked up in the container's `/etc/passwd`, which
//! is the container's to forge.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::fcntl::{openat, renameat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstatat, mkdirat, Mode, SFlag};
use nix::unistd::{fchown, fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

use super::sync::{HostKind, SyncOp};
use crate::confine;

/// Who owns what a sync creates in the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

impl Owner {
    /// The owner for a service's `user`: numeric `UID[:GID]`, else root.
    pub fn from_user(user: Option<&str>) -> Owner {
        let Some(user) = user else {
            return Owner::default();
        };
        let (u, g) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user, None),
        };
        match (u.parse::<u32>(), g.map(str::parse::<u32>)) {
            (Ok(uid), None) => Owner { uid, gid: 0 },
            (Ok(uid), Some(Ok(gid))) => Owner { uid, gid },
            _ => Owner::default(),
        }
    }
}

/// A sync operation that could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("refusing to sync {target}: it lies behind a symbolic link in the container that leads outside {limit} (to {resolved})")]
    Escapes {
        target: String,
        limit: String,
        resolved: String,
    },
    #[error("refusing to sync {target}: a directory on the way was replaced by a symbolic link while syncing")]
    Swapped { target: String },
    #[error("cannot sync {target}: too many levels of symbolic links in the container")]
    Loop { target: String },
    #[error("cannot sync {target}: {what}: {source}")]
    Io {
        target: String,
        what: String,
        source: std::io::Error,
    },
}

fn io_err(target: &str, what: impl Into<String>) -> impl FnOnce(Errno) -> WriteError + '_ {
    let what = what.into();
    move |e| WriteError::Io {
        target: target.to_string(),
        what,
        source: std::io::Error::from(e),
    }
}

fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful open and is owned by
    // nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Splits a container path into its components.
fn components(path: &str) -> Vec<&str> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect()
}

fn display(comps: &[String]) -> String {
    format!("/{}", comps.join("/"))
}

/// Applies one operation of a rule whose container path is `rule_target`
/// inside the container root `root` (normally `/proc/PID/root`). `skip`
/// says which host paths a recursive copy leaves out (the rule's ignores).
pub fn apply(
    root: &Path,
    rule_target: &str,
    op: &SyncOp,
    owner: Owner,
    skip: &dyn Fn(&Path) -> bool,
) -> Result<(), WriteError> {
    let target = op.target();
    let loop_err = |_| WriteError::Loop {
        target: target.to_string(),
    };
    // The rule's own target is the container's to lay out: follow links.
    let limit = confine::resolve(root, rule_target, true).map_err(loop_err)?;
    let rule_comps = components(rule_target);
    let op_comps = components(target);
    let (parent, name): (Vec<String>, Option<String>) = if op_comps == rule_comps {
        match limit.split_last() {
            Some((last, parent)) => (parent.to_vec(), Some(last.clone())),
            None => (Vec::new(), None),
        }
    } else {
        let Some(rel) = op_comps.strip_prefix(rule_comps.as_slice()) else {
            return Err(WriteError::Escapes {
                target: target.to_string(),
                limit: rule_target.to_string(),
                resolved: target.to_string(),
            });
        };
        let (last, between) = rel.split_last().expect("a path under the target");
        let mut parent_path = display(&limit);
        for c in between {
            parent_path.push('/');
            parent_path.push_str(c);
        }
        let parent = confine::resolve(root, &parent_path, true).map_err(loop_err)?;
        if !parent.starts_with(&limit) {
            return Err(WriteError::Escapes {
                target: target.to_string(),
                limit: rule_target.to_string(),
                resolved: display(&parent),
            });
        }
        (parent, Some((*last).to_string()))
    };
    if matches!(name.as_deref(), Some("..")) {
        return Err(WriteError::Escapes {
            target: target.to_string(),
            limit: rule_target.to_string(),
            resolved: target.to_string(),
        });
    }

    let root_fd = nix::fcntl::open(
        root,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(owned)
    .map_err(io_err(target, format!("opening {}", root.display())))?;
    let w = Writer {
        target,
        owner,
        skip,
    };
    match op {
        SyncOp::Copy { host, kind, .. } => {
            let dir = w.open_dirs(&root_fd, &parent, true)?.expect("created");
            match &name {
                Some(name) => w.copy_entry(&dir, name, host, *kind),
                None if *kind == HostKind::Dir => w.copy_dir_contents(&dir, host),
                None => Err(WriteError::Io {
                    target: target.to_string(),
                    what: "writing over the container's root directory".into(),
                    source: std::io::Error::from(Errno::EISDIR),
                }),
            }
        }
        SyncOp::Delete { .. } => {
            let Some(name) = &name else {
                return Ok(()); // never remove the root itself
            };
            match w.open_dirs(&root_fd, &parent, false)? {
                Some(dir) => w.remove_at(&dir, name),
                None => Ok(()),
            }
        }
    }
}

struct Writer<'a> {
    target: &'a str,
    owner: Owner,
    skip: &'a dyn Fn(&Path) -> bool,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Writer<'_> {
    fn err(&self, what: impl Into<String>) -> impl FnOnce(Errno) -> WriteError + '_ {
        io_err(self.target, what)
    }

    /// Opens `comps` under `root` without following links; missing
    /// directories are made when `create`, else the result is `None`.
    fn open_dirs(
        &self,
        root: &OwnedFd,
        comps: &[String],
        create: bool,
    ) -> Result<Option<OwnedFd>, WriteError> {
        let flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
        let mut cur = root.try_clone().map_err(|e| WriteError::Io {
            target: self.target.to_string(),
            what: "duplicating a descriptor".into(),
            source: e,
        })?;
        for c in comps {
            let fd = match openat(Some(cur.as_raw_fd()), c.as_str(), flags, Mode::empty()) {
                Ok(fd) => owned(fd),
                Err(Errno::ENOENT) if create => {
                    match mkdirat(
                        Some(cur.as_raw_fd()),
                        c.as_str(),
                        Mode::from_bits_truncate(0o755),
                    ) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(self.err(format!("creating directory {c}"))(e)),
                    }
                    let fd = owned(
                        openat(Some(cur.as_raw_fd()), c.as_str(), flags, Mode::empty())
                            .map_err(|e| self.open_error(c, e))?,
                    );
                    self.chown(&fd)?;
                    fd
                }
                Err(Errno::ENOENT) => return Ok(None),
                Err(e) => return Err(self.open_error(c, e)),
            };
            cur = fd;
        }
        Ok(Some(cur))
    }

    fn open_error(&self, c: &str, e: Errno) -> WriteError {
        match e {
            Errno::ELOOP | Errno::ENOTDIR => WriteError::Swapped {
                target: self.target.to_string(),
            },
            e => self.err(format!("opening {c}"))(e),
        }
    }

    fn chown(&self, fd: &OwnedFd) -> Result<(), WriteError> {
        if self.owner == Owner::default() {
            return Ok(());
        }
        fchown(
            fd.as_raw_fd(),
            Some(Uid::from_raw(self.owner.uid)),
            Some(Gid::from_raw(self.owner.gid)),
        )
        .map_err(self.err("setting the owner"))
    }

    fn host_err<'b>(&'b self, host: &'b Path) -> impl FnOnce(std::io::Error) -> WriteError + 'b {
        move |source| WriteError::Io {
            target: self.target.to_string(),
            what: format!("reading {}", host.display()),
            source,
        }
    }

    fn tmp_name() -> String {
        format!(
            ".berth-sync-{}-{}",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Copies the host `host` (of `kind`) to `name` in `dir`.
    fn copy_entry(
        &self,
        dir: &OwnedFd,
        name: &str,
        host: &Path,
        kind: HostKind,
    ) -> Result<(), WriteError> {
        match kind {
            HostKind::File => {
                let meta = std::fs::metadata(host).map_err(self.host_err(host))?;
                let mut src = File::open(host).map_err(self.host_err(host))?;
                let tmp = Self::tmp_name();
                let fd = openat(
                    Some(dir.as_raw_fd()),
                    tmp.as_str(),
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map(owned)
                .map_err(self.err("creating a temporary file"))?;
                let result = (|| {
                    let mut out = File::from(fd.try_clone().map_err(|e| WriteError::Io {
                        target: self.target.to_string(),
                        what: "duplicating a descriptor".into(),
                        source: e,
                    })?);
                    std::io::copy(&mut src, &mut out).map_err(|source| WriteError::Io {
                        target: self.target.to_string(),
                        what: format!("copying {}", host.display()),
                        source,
                    })?;
                    self.chown(&fd)?;
                    fchmod(
                        fd.as_raw_fd(),
                        Mode::from_bits_truncate(meta.permissions().mode() & 0o7777),
                    )
                    .map_err(self.err("setting the mode"))?;
                    self.rename_over(dir, &tmp, name)
                })();
                Self::discard_on_error(dir, &tmp, result)
            }
            HostKind::Symlink => {
                let link = std::fs::read_link(host).map_err(self.host_err(host))?;
                let tmp = Self::tmp_name();
                symlinkat(&link, Some(dir.as_raw_fd()), tmp.as_str())
                    .map_err(self.err("creating a symbolic link"))?;
                let result = (|| {
                    if self.owner != Owner::default() {
                        fchownat(
                            Some(dir.as_raw_fd()),
                            tmp.as_str(),
                            Some(Uid::from_raw(self.owner.uid)),
                            Some(Gid::from_raw(self.owner.gid)),
                            AtFlags::AT_SYMLINK_NOFOLLOW,
                        )
                        .map_err(self.err("setting the owner"))?;
                    }
                    self.rename_over(dir, &tmp, name)
                })();
                Self::discard_on_error(dir, &tmp, result)
            }
            HostKind::Dir => {
                let meta = std::fs::metadata(host).map_err(self.host_err(host))?;
                match fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                    Ok(st)
                        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT
                            == SFlag::S_IFDIR => {}
                    Ok(_) => {
                        self.remove_at(dir, name)?;
                        self.mkdir(dir, name)?;
                    }
                    Err(Errno::ENOENT) => self.mkdir(dir, name)?,
                    Err(e) => return Err(self.err(format!("looking at {name}"))(e)),
                }
                let child = openat(
                    Some(dir.as_raw_fd()),
                    name,
                    OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map(owned)
                .map_err(|e| self.open_error(name, e))?;
                self.chown(&child)?;
                fchmod(
                    child.as_raw_fd(),
                    Mode::from_bits_truncate(meta.permissions().mode() & 0o7777),
                )
                .map_err(self.err("setting the mode"))?;
                self.copy_dir_contents(&child, host)
            }
            HostKind::Missing => self.remove_at(dir, name),
        }
    }

    fn mkdir(&self, dir: &OwnedFd, name: &str) -> Result<(), WriteError> {
        match mkdirat(Some(dir.as_raw_fd()), name, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => Ok(()),
            Err(e) => Err(self.err(format!("creating directory {name}"))(e)),
        }
    }

    /// Copies what is in the host directory `host` into `dir`, leaving
    /// out what `skip` says.
    fn copy_dir_contents(&self, dir: &OwnedFd, host: &Path) -> Result<(), WriteError> {
        let mut entries: Vec<_> = std::fs::read_dir(host)
            .map_err(self.host_err(host))?
            .filter_map(Result::ok)
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            if (self.skip)(&path) {
                continue;
            }
            let kind = HostKind::of(&path);
            if kind == HostKind::Missing {
                continue; // gone since listing
            }
            let name = entry.file_name();
            self.copy_entry(dir, &name.to_string_lossy(), &path, kind)?;
        }
        Ok(())
    }

    /// Renames `tmp` over `name` in `dir`, replacing a directory there.
    /// Removes the temporary `tmp` in `dir` when `result` is an error
    /// (before it was renamed into place); passes `result` on.
    fn discard_on_error(
        dir: &OwnedFd,
        tmp: &str,
        result: Result<(), WriteError>,
    ) -> Result<(), WriteError> {
        if result.is_err() {
            let _ = unlinkat(Some(dir.as_raw_fd()), tmp, UnlinkatFlags::NoRemoveDir);
        }
        result
    }

    fn rename_over(&self, dir: &OwnedFd, tmp: &str, name: &str) -> Result<(), WriteError> {
        let fd = Some(dir.as_raw_fd());
        match renameat(fd, tmp, fd, name) {
            Ok(()) => Ok(()),
            Err(Errno::EISDIR | Errno::ENOTEMPTY | Errno::EEXIST | Errno::ENOTDIR) => {
                self.remove_at(dir, name)?;
                renameat(fd, tmp, fd, name).map_err(self.err(format!("renaming into {name}")))
            }
            Err(e) => Err(self.err(format!("renaming into {name}"))(e)),
        }
    }

    /// Removes `name` in `dir`, recursively, never following a link.
    fn remove_at(&self, dir: &OwnedFd, name: &str) -> Result<(), WriteError> {
        let fd = Some(dir.as_raw_fd());
        match unlinkat(fd, name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => return Ok(()),
            Err(Errno::EISDIR | Errno::EPERM) => {}
            Err(e) => return Err(self.err(format!("removing {name}"))(e)),
        }
        let child = match openat(
            fd,
            name,
            OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(c) => owned(c),
            Err(Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(self.open_error(name, e)),
        };
        let names: Vec<String> = {
            let mut d = nix::dir::Dir::from_fd(
                nix::unistd::dup(child.as_raw_fd())
                    .map_err(self.err("duplicating a descriptor"))?,
            )
            .map_err(self.err(format!("listing {name}")))?;
            d.iter()
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != "." && n != "..")
                .collect()
        };
        for n in names {
            self.remove_at(&child, &n)?;
        }
        match unlinkat(fd, name, UnlinkatFlags::RemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(self.err(format!("removing directory {name}"))(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt};
    use std::path::PathBuf;

    #[test]
    fn owners_from_user() {
        assert_eq!(Owner::from_user(None), Owner { uid: 0, gid: 0 });
        assert_eq!(Owner::from_user(Some("1000")), Owner { uid: 1000, gid: 0 });
        assert_eq!(
            Owner::from_user(Some("1000:50")),
            Owner { uid: 1000, gid: 50 }
        );
        assert_eq!(Owner::from_user(Some("nobody")), Owner::default());
        assert_eq!(Owner::from_user(Some("1000:staff")), Owner::default());
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        host: PathBuf,
        root: PathBuf,
        outside: PathBuf,
    }

    /// A host tree `host/`, a container root `root/` with `/app/src`, and
    /// a directory `outside/` next to them that no sync may touch.
    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("host");
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        for d in [&host, &root.join("app/src"), &root.join("etc"), &outside] {
            std::fs::create_dir_all(d).unwrap();
        }
        Fixture {
            host,
            root,
            outside,
            _dir: dir,
        }
    }

    fn copy(f: &Fixture, rel: &str, kind: HostKind) -> Result<(), WriteError> {
        let op = SyncOp::Copy {
            host: f.host.join(rel),
            target: format!("/app/src/{rel}"),
            kind,
        };
        apply(&f.root, "/app/src", &op, Owner::default(), &|_| false)
    }

    #[test]
    fn copies_files_dirs_and_links_keeping_modes() {
        let f = fixture();
        std::fs::create_dir_all(f.host.join("lib/sub")).unwrap();
        std::fs::write(f.host.join("run.sh"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            f.host.join("run.sh"),
            std::fs::Permissions::from_mode(0o751),
        )
        .unwrap();
        std::fs::write(f.host.join("lib/sub/a.txt"), "a").unwrap();
        std::fs::write(f.host.join("lib/skip.me"), "x").unwrap();
        symlink("sub/a.txt", f.host.join("lib/cur")).unwrap();
        copy(&f, "run.sh", HostKind::File).unwrap();
        let op = SyncOp::Copy {
            host: f.host.join("lib"),
            target: "/app/src/lib".into(),
            kind: HostKind::Dir,
        };
        apply(&f.root, "/app/src", &op, Owner::default(), &|p| {
            p.ends_with("skip.me")
        })
        .unwrap();
        let c = f.root.join("app/src");
        assert_eq!(
            std::fs::read_to_string(c.join("run.sh")).unwrap(),
            "#!/bin/sh\n"
        );
        assert_eq!(
            std::fs::metadata(c.join("run.sh")).unwrap().mode() & 0o7777,
            0o751
        );
        assert_eq!(
            std::fs::read_to_string(c.join("lib/sub/a.txt")).unwrap(),
            "a"
        );
        assert_eq!(
            std::fs::read_link(c.join("lib/cur")).unwrap(),
            PathBuf::from("sub/a.txt")
        );
        assert!(!c.join("lib/skip.me").exists());
        // No temporary files are left behind.
        let names: Vec<_> = std::fs::read_dir(&c)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn deletes_files_and_directories() {
        let f = fixture();
        let c = f.root.join("app/src");
        std::fs::create_dir_all(c.join("d/e")).unwrap();
        std::fs::write(c.join("d/e/x"), "x").unwrap();
        std::fs::write(c.join("f"), "f").unwrap();
        for rel in ["d", "f", "never/was/here"] {
            let op = SyncOp::Delete {
                target: format!("/app/src/{rel}"),
            };
            apply(&f.root, "/app/src", &op, Owner::default(), &|_| false).unwrap();
        }
        assert!(!c.join("d").exists());
        assert!(!c.join("f").exists());
        assert!(c.exists());
    }

    #[test]
    fn a_link_at_the_destination_is_replaced_not_followed() {
        let f = fixture();
        let victim = f.outside.join("victim");
        std::fs::write(&victim, "original").unwrap();
        // An absolute link: confined, it would mean the container's own path;
        // written through naively, the host's.
        symlink(&victim, f.root.join("app/src/a.txt")).unwrap();
        std::fs::write(f.host.join("a.txt"), "new").unwrap();
        copy(&f, "a.txt", HostKind::File).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "original");
        let dst = f.root.join("app/src/a.txt");
        assert!(!std::fs::symlink_metadata(&dst)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(dst).unwrap(), "new");
    }

    /// Hostile links on the way: each case makes `/app/src/evil` a link,
    /// syncs `evil/passwd`, and nothing outside `/app/src` may change.
    #[test]
    fn links_leading_out_of_the_target_are_refused() {
        for link in ["/etc", "../../etc", "/", "../../../../..", "/app"] {
            let f = fixture();
            let outside_abs = f.outside.display().to_string();
            std::fs::write(f.root.join("etc/passwd"), "root").unwrap();
            std::fs::write(f.outside.join("passwd"), "host").unwrap();
            symlink(link, f.root.join("app/src/evil")).unwrap();
            std::fs::create_dir_all(f.host.join("evil")).unwrap();
            std::fs::write(f.host.join("evil/passwd"), "pwned").unwrap();
            let err = copy(&f, "evil/passwd", HostKind::File).unwrap_err();
            assert!(matches!(err, WriteError::Escapes { .. }), "{link}: {err}");
            assert!(err.to_string().contains("outside /app/src"), "{err}");
            let del = SyncOp::Delete {
                target: "/app/src/evil/passwd".into(),
            };
            assert!(apply(&f.root, "/app/src", &del, Owner::default(), &|_| false).is_err());
            assert_eq!(
                std::fs::read_to_string(f.root.join("etc/passwd")).unwrap(),
                "root"
            );
            assert_eq!(
                std::fs::read_to_string(f.outside.join("passwd")).unwrap(),
                "host"
            );
            assert!(!f.root.join("passwd").exists(), "{outside_abs}");
        }
    }

    #[test]
    fn links_inside_the_target_are_followed() {
        let f = fixture();
        std::fs::create_dir_all(f.root.join("app/src/real")).unwrap();
        symlink("real", f.root.join("app/src/alias")).unwrap();
        std::fs::create_dir_all(f.host.join("alias")).unwrap();
        std::fs::write(f.host.join("alias/x"), "x").unwrap();
        copy(&f, "alias/x", HostKind::File).unwrap();
        assert_eq!(
            std::fs::read_to_string(f.root.join("app/src/real/x")).unwrap(),
            "x"
        );
    }

    #[test]
    fn the_target_itself_may_be_a_link_inside_the_container() {
        let f = fixture();
        std::fs::remove_dir(f.root.join("app/src")).unwrap();
        std::fs::create_dir_all(f.root.join("srv/code")).unwrap();
        symlink("/srv/code", f.root.join("app/src")).unwrap();
        std::fs::write(f.host.join("m.py"), "print()").unwrap();
        copy(&f, "m.py", HostKind::File).unwrap();
        assert_eq!(
            std::fs::read_to_string(f.root.join("srv/code/m.py")).unwrap(),
            "print()"
        );
    }

    #[test]
    fn missing_parents_are_created_and_owned() {
        let f = fixture();
        std::fs::create_dir_all(f.host.join("a/b")).unwrap();
        std::fs::write(f.host.join("a/b/c"), "c").unwrap();
        let op = SyncOp::Copy {
            host: f.host.join("a/b/c"),
            target: "/app/src/a/b/c".into(),
            kind: HostKind::File,
        };
        // Only root may give files away (elsewhere chown fails, loudly).
        let root = nix::unistd::geteuid().is_root();
        let owner = if root {
            Owner { uid: 1234, gid: 55 }
        } else {
            Owner::default()
        };
        apply(&f.root, "/app/src", &op, owner, &|_| false).unwrap();
        for p in ["app/src/a", "app/src/a/b", "app/src/a/b/c"] {
            let m = std::fs::metadata(f.root.join(p)).unwrap();
            if root {
                assert_eq!((m.uid(), m.gid()), (1234, 55), "{p}");
            }
        }
    }

    #[test]
    fn a_file_rule_writes_the_target_file() {
        let f = fixture();
        std::fs::write(f.host.join("app.conf"), "k=v").unwrap();
        let op = SyncOp::Copy {
            host: f.host.join("app.conf"),
            target: "/etc/app.conf".into(),
            kind: HostKind::File,
        };
        apply(&f.root, "/etc/app.conf", &op, Owner::default(), &|_| false).unwrap();
        assert_eq!(
            std::fs::read_to_string(f.root.join("etc/app.conf")).unwrap(),
            "k=v"
        );
    }
}
