//! `RUN --mount=…`, BuildKit's RUN mounts
//! (<https://docs.docker.com/reference/dockerfile/#run---mount>): what a
//! flag says ([`parse`], pure; the parser calls it to report errors at the
//! flag's `line:col`) and what a RUN container gets for it ([`Prepared`]).
//!
//! - `type=cache`: a directory kept under the state root,
//!   `ROOT/build-mounts/<sha256 of id>/data` (`id` defaults to the
//!   target), made with `mode` (0755), `uid`/`gid` (0) the first time, and
//!   mounted read-write (`ro` for read-only) for every RUN naming that id,
//!   in any build. `sharing=shared` (the default) lets RUNs use it at once
//!   (a shared lock), `locked` waits for the others (an exclusive lock),
//!   `private` takes it when no one else has it and otherwise gets a fresh
//!   empty directory of its own, discarded after the step. Its content is
//!   not part of the step's cache key (that is what makes a rerun of
//!   `npm install` or `apt-get` find the downloads of the last one).
//! - `type=secret`: `berth build --secret id=ID,src=FILE` (or `env=VAR`)
//!   mounted read-only at `target` (default `/run/secrets/ID`) with `mode`
//!   (0400), `uid`/`gid` (0), from a private copy under `ROOT/tmp` removed
//!   after the step. Neither the file nor its content reaches a layer or a
//!   cache key. A missing secret is skipped, or an error with `required`.
//! - `type=bind`: `source` (default the root) from the build context, or
//!   from a stage or image with `from=`, read-only unless `rw` (writes are
//!   then discarded). The files are copied to a scratch directory first, so
//!   `.dockerignore` holds, the context cannot be written through, and the
//!   copy's content digest goes into the cache key (BuildKit checksums bind
//!   sources the way it checksums COPY sources).
//! - `type=tmpfs`: a tmpfs at `target` (`size=` passed through).
//!
//! Mount points a RUN container needed that the image lacked are left out
//! of the step's layer ([`super::run`]), as BuildKit removes its stubs.
//! `type=ssh` and cache mounts seeded `from=` a stage are refused with a
//! message saying so.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use sha2::{Digest as _, Sha256};

use super::context::{EntryKind, Selected};

/// Why a `--mount` flag is wrong, or a mount could not be made.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("--mount={spec}: {message}")]
    Invalid { spec: String, message: String },
    #[error(
        "secret {0:?} is required by this RUN: pass it with berth build --secret id={0},src=FILE"
    )]
    MissingSecret(String),
    #[error("preparing the RUN mount at {target}: {source}")]
    Io {
        target: String,
        source: std::io::Error,
    },
}

/// `sharing=` of a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    Shared,
    Private,
    Locked,
}

/// What kind of mount, with its own options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Bind {
        source: String,
        from: Option<String>,
        readwrite: bool,
    },
    Cache {
        id: String,
        sharing: Sharing,
        mode: u32,
        uid: u32,
        gid: u32,
        readonly: bool,
    },
    Secret {
        id: String,
        required: bool,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Tmpfs {
        size: Option<String>,
    },
}

/// One `--mount` flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMount {
    /// Where it goes in the container, as written (relative: under WORKDIR).
    pub target: String,
    pub kind: Kind,
}

const KEYS: &str =
    "type, target, source, from, id, sharing, mode, uid, gid, readonly, rw, required, size";

/// Parses the value of one `--mount=` flag (BuildKit's comma-separated
/// `key=value` fields; `type` defaults to `bind`).
pub fn parse(spec: &str) -> Result<RunMount, MountError> {
    let bad = |message: String| MountError::Invalid {
        spec: spec.to_string(),
        message,
    };
    let mut fields: BTreeMap<&'static str, String> = BTreeMap::new();
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.to_string())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let key: &'static str = match k.as_str() {
            "type" => "type",
            "target" | "dst" | "destination" => "target",
            "source" | "src" => "source",
            "from" => "from",
            "id" => "id",
            "sharing" => "sharing",
            "mode" => "mode",
            "uid" => "uid",
            "gid" => "gid",
            "readonly" | "ro" => "readonly",
            "readwrite" | "rw" => "rw",
            "required" => "required",
            "size" => "size",
            "env" => return Err(bad("secrets as environment variables (env=) are not supported by berth's builder; mount the secret as a file and read it from there".into())),
            other => return Err(bad(format!("unknown key {other:?} (it takes {KEYS})"))),
        };
        let bool_key = matches!(key, "readonly" | "rw" | "required");
        let value = match (v, bool_key) {
            (Some(v), true) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" => "true".to_string(),
                "false" | "0" => "false".to_string(),
                _ => return Err(bad(format!("{k}={v}: give true or false"))),
            },
            (None, true) => "true".to_string(),
            (Some(v), false) if !v.is_empty() => v,
            _ => return Err(bad(format!("{k} needs a value ({k}=...)"))),
        };
        if fields.insert(key, value).is_some() {
            return Err(bad(format!("{key} is given twice")));
        }
    }
    let get = |k: &str| fields.get(k).cloned();
    let flag = |k: &str| fields.get(k).is_some_and(|v| v == "true");
    let number = |k: &str, default: u32| -> Result<u32, MountError> {
        match fields.get(k) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| bad(format!("{k}={v}: give a number"))),
        }
    };
    let mode = |default: u32| -> Result<u32, MountError> {
        match fields.get("mode") {
            None => Ok(default),
            Some(v) => u32::from_str_radix(v, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .ok_or_else(|| bad(format!("mode={v}: give octal permission bits such as 0755"))),
        }
    };
    let allow = |ty: &str, allowed: &[&str]| -> Result<(), MountError> {
        match fields
            .keys()
            .find(|k| **k != "type" && !allowed.contains(k))
        {
            Some(k) => Err(bad(format!("{k} does not apply to type={ty}"))),
            None => Ok(()),
        }
    };
    let ty = get("type").unwrap_or_else(|| "bind".into());
    let target = get("target");
    let need_target = || {
        target
            .clone()
            .ok_or_else(|| bad(format!("type={ty} needs a target (target=/path)")))
    };
    let kind = match ty.as_str() {
        "bind" => {
            allow("bind", &["target", "source", "from", "readonly", "rw"])?;
            Kind::Bind {
                source: get("source").unwrap_or_else(|| "/".into()),
                from: get("from"),
                readwrite: flag("rw") || fields.get("readonly").is_some_and(|v| v == "false"),
            }
        }
        "cache" => {
            allow(
                "cache",
                &["target", "id", "sharing", "mode", "uid", "gid", "readonly", "rw", "from", "source"],
            )?;
            if fields.contains_key("from") || fields.contains_key("source") {
                return Err(bad(
                    "cache mounts seeded from a stage (from=, source=) are not supported by berth's builder".into(),
                ));
            }
            let target = need_target()?;
            Kind::Cache {
                id: get("id").unwrap_or_else(|| target.clone()),
                sharing: match get("sharing").as_deref() {
                    None | Some("shared") => Sharing::Shared,
                    Some("private") => Sharing::Private,
                    Some("locked") => Sharing::Locked,
                    Some(s) => {
                        return Err(bad(format!(
                            "sharing={s}: give shared, private or locked"
                        )))
                    }
                },
                mode: mode(0o755)?,
                uid: number("uid", 0)?,
                gid: number("gid", 0)?,
                readonly: flag("readonly"),
            }
        }
        "secret" => {
            allow("secret", &["target", "id", "required", "mode", "uid", "gid"])?;
            let id = match (get("id"), &target) {
                (Some(id), _) => id,
                (None, Some(t)) => t.rsplit('/').next().unwrap_or(t).to_string(),
                (None, None) => return Err(bad("type=secret needs an id (id=NAME) or a target".into())),
            };
            if id.is_empty() {
                return Err(bad("the secret's id is empty".into()));
            }
            let target = target.clone().unwrap_or_else(|| format!("/run/secrets/{id}"));
            return Ok(RunMount {
                target,
                kind: Kind::Secret {
                    id,
                    required: flag("required"),
                    mode: mode(0o400)?,
                    uid: number("uid", 0)?,
                    gid: number("gid", 0)?,
                },
            });
        }
        "tmpfs" => {
            allow("tmpfs", &["target", "size"])?;
            Kind::Tmpfs { size: get("size") }
        }
        "ssh" => {
            return Err(bad(
                "type=ssh is not supported by berth's builder (there is no SSH agent forwarding); use a secret".into(),
            ))
        }
        other => {
            return Err(bad(format!(
                "unknown mount type {other:?}: give bind, cache, secret or tmpfs"
            )))
        }
    };
    let target = need_target()?;
    Ok(RunMount { target, kind })
}

/// Where a secret comes from (`berth build --secret`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    Value(Vec<u8>),
}

/// Parses `--secret id=ID[,src=FILE|,env=VAR]` (`type=file|env` accepted;
/// `id` alone reads the environment variable of that name, as buildx does).
pub fn parse_secret_flag(
    spec: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, SecretSource), String> {
    let mut id = None;
    let mut src = None;
    let mut var = None;
    for field in spec.split(',') {
        match field.split_once('=') {
            Some(("id", v)) => id = Some(v.to_string()),
            Some(("src" | "source", v)) => src = Some(v.to_string()),
            Some(("env", v)) => var = Some(v.to_string()),
            Some(("type", "file" | "env")) => {}
            _ => {
                return Err(format!(
                    "invalid --secret {spec:?}: give id=ID,src=FILE or id=ID,env=VAR"
                ))
            }
        }
    }
    let id = id
        .filter(|i| !i.is_empty())
        .ok_or_else(|| format!("invalid --secret {spec:?}: it needs an id (id=ID)"))?;
    let source = match (src, var) {
        (Some(s), None) => SecretSource::File(PathBuf::from(s)),
        (None, v) => {
            let name = v.unwrap_or_else(|| id.clone());
            SecretSource::Value(
                env(&name)
                    .ok_or_else(|| {
                        format!("--secret {spec:?}: the environment variable {name} is not set")
                    })?
                    .into_bytes(),
            )
        }
        (Some(_), Some(_)) => {
            return Err(format!(
                "invalid --secret {spec:?}: give src= or env=, not both"
            ))
        }
    };
    Ok((id, source))
}

/// What the RUN container gets for its mounts; dropping it releases the
/// cache locks and removes the scratch copies.
#[derive(Default)]
pub struct Prepared {
    /// `berth create -v` arguments.
    pub volumes: Vec<String>,
    /// `berth create --tmpfs` arguments.
    pub tmpfs: Vec<String>,
    /// Image paths of the mount points (left out of the layer).
    pub targets: Vec<String>,
    locks: Vec<Flock<File>>,
    scratch: Vec<tempfile::TempDir>,
}

fn io(target: &str) -> impl FnOnce(std::io::Error) -> MountError + '_ {
    move |source| MountError::Io {
        target: target.to_string(),
        source,
    }
}

impl Prepared {
    /// A cache mount at `target` (absolute).
    pub fn cache(
        &mut self,
        root: &Path,
        tmp: &Path,
        target: &str,
        m: &Kind,
    ) -> Result<(), MountError> {
        let Kind::Cache {
            id,
            sharing,
            mode,
            uid,
            gid,
            readonly,
        } = m
        else {
            unreachable!("Prepared::cache takes cache mounts");
        };
        let dir = root
            .join("build-mounts")
            .join(hex::encode(Sha256::digest(id.as_bytes())));
        let data = dir.join("data");
        std::fs::create_dir_all(&dir).map_err(io(target))?;
        if !data.is_dir() {
            // Made whole, then named: a concurrent first use sees one.
            let fresh = tempfile::Builder::new()
                .prefix(".data-")
                .tempdir_in(&dir)
                .map_err(io(target))?;
            init_dir(fresh.path(), *mode, *uid, *gid).map_err(io(target))?;
            let made = fresh.keep();
            if std::fs::rename(&made, &data).is_err() {
                // Another build named its own first.
                let _ = std::fs::remove_dir_all(&made);
                if !data.is_dir() {
                    return Err(io(target)(std::io::Error::other(
                        "the cache directory could not be made",
                    )));
                }
            }
        }
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))
            .map_err(io(target))?;
        let source = match sharing {
            Sharing::Shared => {
                self.locks.push(
                    Flock::lock(lock, FlockArg::LockShared)
                        .map_err(|(_, e)| io(target)(e.into()))?,
                );
                data
            }
            Sharing::Locked => {
                self.locks.push(
                    Flock::lock(lock, FlockArg::LockExclusive)
                        .map_err(|(_, e)| io(target)(e.into()))?,
                );
                data
            }
            Sharing::Private => match Flock::lock(lock, FlockArg::LockExclusiveNonblock) {
                Ok(l) => {
                    self.locks.push(l);
                    data
                }
                Err(_) => {
                    let own = self.scratch_dir(tmp, target)?;
                    init_dir(&own, *mode, *uid, *gid).map_err(io(target))?;
                    own
                }
            },
        };
        self.bind(&source, target, *readonly);
        Ok(())
    }

    /// A secret mount at `target` (absolute); `None` when the build has no
    /// such secret (an error if it is required).
    pub fn secret(
        &mut self,
        tmp: &Path,
        target: &str,
        m: &Kind,
        secrets: &BTreeMap<String, SecretSource>,
    ) -> Result<(), MountError> {
        let Kind::Secret {
            id,
            required,
            mode,
            uid,
            gid,
        } = m
        else {
            unreachable!("Prepared::secret takes secret mounts");
        };
        let Some(src) = secrets.get(id) else {
            return if *required {
                Err(MountError::MissingSecret(id.clone()))
            } else {
                Ok(())
            };
        };
        let bytes = match src {
            SecretSource::File(p) => std::fs::read(p).map_err(io(target))?,
            SecretSource::Value(v) => v.clone(),
        };
        let dir = self.scratch_dir(tmp, target)?;
        let file = dir.join("secret");
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = File::options()
                .create_new(true)
                .write(true)
                .mode(0o600)
                .open(&file)
                .map_err(io(target))?;
            f.write_all(&bytes).map_err(io(target))?;
        }
        std::os::unix::fs::chown(&file, Some(*uid), Some(*gid)).map_err(io(target))?;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(*mode))
            .map_err(io(target))?;
        self.bind(&file, target, true);
        Ok(())
    }

    /// A bind mount of `selection` (a copy of it) at `target`.
    pub fn bind_copy(
        &mut self,
        tmp: &Path,
        target: &str,
        selection: &Selected,
        keep_owner: bool,
        readwrite: bool,
    ) -> Result<(), MountError> {
        let dir = self.scratch_dir(tmp, target)?;
        let top = dir.join("m");
        copy_entry(&top, &selection.top, keep_owner).map_err(io(target))?;
        for (rel, e) in &selection.children {
            copy_entry(&top.join(rel), e, keep_owner).map_err(io(target))?;
        }
        self.bind(&top, target, !readwrite);
        Ok(())
    }

    /// A tmpfs at `target`.
    pub fn tmpfs(&mut self, target: &str, size: Option<&str>) {
        self.tmpfs.push(match size {
            Some(s) => format!("{target}:size={s}"),
            None => target.to_string(),
        });
        self.targets.push(target.to_string());
    }

    fn bind(&mut self, source: &Path, target: &str, readonly: bool) {
        let mut v = format!("{}:{target}", source.display());
        if readonly {
            v.push_str(":ro");
        }
        self.volumes.push(v);
        self.targets.push(target.to_string());
    }

    fn scratch_dir(&mut self, tmp: &Path, target: &str) -> Result<PathBuf, MountError> {
        std::fs::create_dir_all(tmp).map_err(io(target))?;
        let d = tempfile::Builder::new()
            .prefix("build-mount-")
            .tempdir_in(tmp)
            .map_err(io(target))?;
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o711))
            .map_err(io(target))?;
        let p = d.path().to_path_buf();
        self.scratch.push(d);
        Ok(p)
    }
}

fn init_dir(dir: &Path, mode: u32, uid: u32, gid: u32) -> std::io::Result<()> {
    if !dir.exists() {
        std::fs::DirBuilder::new().mode(0o700).create(dir)?;
    }
    std::os::unix::fs::chown(dir, Some(uid), Some(gid))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
}

/// Copies one selected entry (no links followed; fifos and the like left out).
fn copy_entry(to: &Path, e: &super::context::Entry, keep_owner: bool) -> std::io::Result<()> {
    match &e.kind {
        EntryKind::Dir => {
            std::fs::create_dir_all(to)?;
            std::fs::set_permissions(to, std::fs::Permissions::from_mode(e.mode))?;
        }
        EntryKind::File => {
            std::fs::copy(&e.path, to)?;
            std::fs::set_permissions(to, std::fs::Permissions::from_mode(e.mode))?;
        }
        EntryKind::Symlink(t) => std::os::unix::fs::symlink(t, to)?,
        EntryKind::Other => return Ok(()),
    }
    let (uid, gid) = if keep_owner { (e.uid, e.gid) } else { (0, 0) };
    std::os::unix::fs::lchown(to, Some(uid), Some(gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_parse_with_buildkit_defaults() {
        assert_eq!(
            parse("type=cache,target=/root/.npm").unwrap(),
            RunMount {
                target: "/root/.npm".into(),
                kind: Kind::Cache {
                    id: "/root/.npm".into(),
                    sharing: Sharing::Shared,
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                    readonly: false
                }
            }
        );
        assert_eq!(
            parse("type=cache,id=apt,dst=/var/cache/apt,sharing=locked,uid=1000,gid=1000,mode=0700,ro")
                .unwrap()
                .kind,
            Kind::Cache {
                id: "apt".into(),
                sharing: Sharing::Locked,
                mode: 0o700,
                uid: 1000,
                gid: 1000,
                readonly: true
            }
        );
        assert_eq!(
            parse("type=secret,id=tok").unwrap(),
            RunMount {
                target: "/run/secrets/tok".into(),
                kind: Kind::Secret {
                    id: "tok".into(),
                    required: false,
                    mode: 0o400,
                    uid: 0,
                    gid: 0
                }
            }
        );
        assert_eq!(
            parse("type=secret,target=/etc/creds,required")
                .unwrap()
                .kind,
            Kind::Secret {
                id: "creds".into(),
                required: true,
                mode: 0o400,
                uid: 0,
                gid: 0
            }
        );
        assert_eq!(
            parse("target=/src").unwrap().kind,
            Kind::Bind {
                source: "/".into(),
                from: None,
                readwrite: false
            }
        );
        assert_eq!(
            parse("type=bind,from=build,source=/out,target=/o,rw")
                .unwrap()
                .kind,
            Kind::Bind {
                source: "/out".into(),
                from: Some("build".into()),
                readwrite: true
            }
        );
        assert_eq!(
            parse("type=tmpfs,target=/t,size=64m").unwrap().kind,
            Kind::Tmpfs {
                size: Some("64m".into())
            }
        );
    }

    #[test]
    fn bad_mounts_say_what_is_wrong() {
        let err = |s: &str| parse(s).unwrap_err().to_string();
        assert!(err("type=cache").contains("type=cache needs a target"));
        assert!(err("type=cache,target=/c,sharing=sometimes")
            .contains("give shared, private or locked"));
        assert!(err("type=cache,target=/c,mode=9").contains("octal"));
        assert!(err("type=cache,target=/c,uid=me").contains("uid=me: give a number"));
        assert!(err("type=volume,target=/c").contains("unknown mount type \"volume\""));
        assert!(err("type=bind,target=/c,sharing=locked")
            .contains("sharing does not apply to type=bind"));
        assert!(err("type=bind,tagret=/c").contains("unknown key \"tagret\""));
        assert!(err("type=secret").contains("needs an id"));
        assert!(err("type=ssh").contains("not supported"));
        assert!(err("type=cache,target=/a,target=/b").contains("given twice"));
        assert!(err("type=cache,target=/a,ro=maybe").contains("true or false"));
    }

    #[test]
    fn cache_sharing_modes() {
        if !nix::unistd::geteuid().is_root() {
            return; // the cache directory is chowned
        }
        let d = tempfile::tempdir().unwrap();
        let (root, tmp) = (d.path().join("root"), d.path().join("tmp"));
        let cache = |sharing| Kind::Cache {
            id: "x".into(),
            sharing,
            mode: 0o750,
            uid: 0,
            gid: 0,
            readonly: false,
        };
        let source = |p: &Prepared| p.volumes[0].split(':').next().unwrap().to_string();
        let mut locked = Prepared::default();
        locked
            .cache(&root, &tmp, "/c", &cache(Sharing::Locked))
            .unwrap();
        let data = source(&locked);
        assert!(data.ends_with("/data"), "{data}");
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&data).unwrap().mode() & 0o7777, 0o750);
        // While one holds it, a private user gets a directory of its own.
        let mut private = Prepared::default();
        private
            .cache(&root, &tmp, "/c", &cache(Sharing::Private))
            .unwrap();
        let own = source(&private);
        assert_ne!(own, data);
        assert!(own.starts_with(tmp.to_str().unwrap()));
        drop(private);
        assert!(!Path::new(&own).exists(), "the private copy is discarded");
        drop(locked);
        let mut private = Prepared::default();
        private
            .cache(&root, &tmp, "/c", &cache(Sharing::Private))
            .unwrap();
        assert_eq!(source(&private), data, "free again: the shared directory");
        drop(private);
        // Shared users use it at once.
        let (mut a, mut b) = (Prepared::default(), Prepared::default());
        a.cache(&root, &tmp, "/c", &cache(Sharing::Shared)).unwrap();
        b.cache(&root, &tmp, "/c", &cache(Sharing::Shared)).unwrap();
        assert_eq!((source(&a), source(&b)), (data.clone(), data));
    }

    #[test]
    fn secret_flags() {
        let env = |k: &str| (k == "TOKEN").then(|| "t0k".to_string());
        assert_eq!(
            parse_secret_flag("id=a,src=/f", &env).unwrap(),
            ("a".into(), SecretSource::File("/f".into()))
        );
        assert_eq!(
            parse_secret_flag("id=a,env=TOKEN", &env).unwrap(),
            ("a".into(), SecretSource::Value(b"t0k".to_vec()))
        );
        assert_eq!(
            parse_secret_flag("id=TOKEN", &env).unwrap(),
            ("TOKEN".into(), SecretSource::Value(b"t0k".to_vec()))
        );
        assert!(parse_secret_flag("id=a,env=NOPE", &env)
            .unwrap_err()
            .contains("not set"));
        assert!(parse_secret_flag("src=/f", &env)
            .unwrap_err()
            .contains("needs an id"));
        assert!(parse_secret_flag("id=a,bogus=1", &env).is_err());
    }
}
