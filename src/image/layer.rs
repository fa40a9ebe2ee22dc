//! Unpacking image layers
//! (<https://github.com/opencontainers/image-spec/blob/main/layer.md>) into
//! directories that overlayfs can stack as lower dirs.
//!
//! A layer is a tar stream (uncompressed, gzip or zstd; the compression is
//! sniffed from the magic bytes). Each layer is unpacked on its own into an
//! empty directory; OCI whiteouts become overlayfs whiteouts:
//!
//! * `DIR/.wh.NAME` → a 0/0 character device `DIR/NAME`;
//! * `DIR/.wh..wh..opq` → the xattr `trusted.overlay.opaque=y` on `DIR`.
//!
//! Ownership, modes, xattrs (PAX `SCHILY.xattr.*`), hardlinks, symlinks,
//! device nodes and mtimes are kept.
//!
//! Confinement: every path is walked from a directory fd of the target with
//! `openat(O_NOFOLLOW)`, one component at a time, so nothing the layer
//! creates (a symlink, say) can redirect a later write; `..` and absolute
//! names are rejected; hardlink targets are resolved the same way, so they
//! point inside. xattrs in the `trusted.overlay.` namespace are never taken
//! from a layer. The uncompressed stream is hashed while it streams and must
//! match the diff_id; it is counted and stopped past a cap (1 GiB by
//! default, `BERTH_LAYER_MAX_BYTES` to change), so a decompression bomb ends
//! with an error; memory stays bounded (one copy buffer and the list of
//! directory mtimes to set last).

use std::cell::Cell;
use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};
use std::rc::Rc;

use super::digest::{Digest, DigestReader};

/// Default cap on a layer's uncompressed size.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;
/// Environment variable overriding the cap (bytes).
pub const MAX_BYTES_ENV: &str = "BERTH_LAYER_MAX_BYTES";

const OPAQUE: &str = ".wh..wh..opq";
/// AUFS's own metadata names (`.wh..wh.plnk`, `.wh..wh.aufs`, …).
const AUFS_META_PREFIX: &str = ".wh..wh.";
const WHITEOUT_PREFIX: &str = ".wh.";
const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Why a layer could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("layer entry {path:?} is not allowed: {reason}")]
    Unsafe { path: String, reason: String },
    #[error("layer inflates past {limit} bytes (a decompression bomb?); raise {MAX_BYTES_ENV} if it is genuine")]
    TooLarge { limit: u64 },
    #[error("layer content does not match its diff_id: expected {expected}, got {actual}")]
    DiffIdMismatch { expected: Digest, actual: Digest },
    #[error("layer refused: {0}")]
    Refused(String),
    #[error("layer is not a valid tar stream: {0}")]
    Corrupt(String),
    // `error`, not `source`: the message already says it, and a source
    // would make `{:#}` say it twice.
    #[error("unpacking layer entry {path:?}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("unpacking layer entry {path:?}: the filesystem refused its extended attribute {name}: {error}")]
    Xattr {
        path: String,
        name: String,
        error: std::io::Error,
    },
}

/// Limits for unpacking.
#[derive(Debug, Clone)]
pub struct UnpackOptions {
    /// Maximum uncompressed bytes in one layer.
    pub max_bytes: u64,
}

impl Default for UnpackOptions {
    fn default() -> Self {
        let max_bytes = std::env::var(MAX_BYTES_ENV)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(DEFAULT_MAX_BYTES);
        Self { max_bytes }
    }
}

/// What an unpacked layer held.
#[derive(Debug, Clone, Default)]
pub struct LayerStats {
    /// Size of the uncompressed tar stream.
    pub tar_size: u64,
    /// Entries written.
    pub entries: u64,
}

/// The chain ids of a stack of diff_ids, bottom first:
/// `chain(0) = diff(0)`, `chain(n) = sha256(chain(n-1) + " " + diff(n))`.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => Digest::of_bytes(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// Wraps a reader that may be gzip, zstd or plain tar, by magic bytes.
pub fn decompress<'a, R: Read + 'a>(reader: R) -> std::io::Result<Box<dyn Read + 'a>> {
    let mut buf = BufReader::with_capacity(64 * 1024, reader);
    let head = buf.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(buf))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(buf)?)
    } else {
        Box::new(buf)
    })
}

/// Counts bytes and fails once more than `limit` have passed.
struct CapReader<R> {
    inner: R,
    count: u64,
    limit: u64,
    tripped: Rc<Cell<bool>>,
}

impl<R: Read> Read for CapReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        if self.count > self.limit {
            self.tripped.set(true);
            return Err(std::io::Error::other("layer size cap exceeded"));
        }
        Ok(n)
    }
}

/// Largest tar metadata entry (PAX header, GNU long name) berth accepts:
/// the tar crate reads those into memory.
pub const MAX_TAR_METADATA: u64 = 1 << 20;

/// Follows the tar stream's block structure as it passes and stops it at a
/// metadata entry (PAX `x`/`g`, GNU `L`/`K`) larger than
/// [`MAX_TAR_METADATA`], which the tar crate would otherwise read whole into
/// memory. It honours PAX `size` records, as tar readers do.
struct TarGuard<R> {
    inner: R,
    /// Bytes of entry data (padded to 512) still to pass before a header.
    data_left: u64,
    header: Vec<u8>,
    /// The data of the PAX header being passed, to find a `size` record.
    pax: Option<Vec<u8>>,
    pax_size: Option<u64>,
    problem: Rc<Cell<Option<&'static str>>>,
}

impl<R> TarGuard<R> {
    fn new(inner: R, problem: Rc<Cell<Option<&'static str>>>) -> Self {
        Self {
            inner,
            data_left: 0,
            header: Vec::with_capacity(512),
            pax: None,
            pax_size: None,
            problem,
        }
    }

    fn into_inner(self) -> R {
        self.inner
    }

    fn fail(&self, why: &'static str) -> std::io::Error {
        self.problem.set(Some(why));
        std::io::Error::other(why)
    }

    /// Parses a complete 512-byte header.
    fn on_header(&mut self) -> std::io::Result<()> {
        let h = std::mem::take(&mut self.header);
        if h.iter().all(|b| *b == 0) {
            return Ok(());
        }
        let size = parse_size(&h[124..136])
            .ok_or_else(|| std::io::Error::other("a tar header has an invalid size field"))?;
        let kind = h[156];
        let size = match kind {
            b'x' | b'g' | b'L' | b'K' => {
                if size > MAX_TAR_METADATA {
                    return Err(self.fail(
                        "a tar metadata entry (PAX header or long name) is larger than 1 MiB",
                    ));
                }
                if kind == b'x' {
                    self.pax = Some(Vec::with_capacity(size as usize));
                }
                size
            }
            b'S' => return Err(self.fail("GNU sparse entries are not supported in layers")),
            _ => self.pax_size.take().unwrap_or(size),
        };
        self.data_left = size.div_ceil(512) * 512;
        if self.data_left == 0 {
            self.finish_pax();
        }
        Ok(())
    }

    fn finish_pax(&mut self) {
        if let Some(data) = self.pax.take() {
            for rec in tar_pax_records(&data) {
                if let Some(v) = rec.strip_prefix(b"size=") {
                    self.pax_size = std::str::from_utf8(v).ok().and_then(|v| v.parse().ok());
                }
            }
        }
    }
}

/// `len key=value\n` records of a PAX extended header.
fn tar_pax_records(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let Some(sp) = data.iter().position(|b| *b == b' ') {
        let Some(len) = std::str::from_utf8(&data[..sp])
            .ok()
            .and_then(|l| l.parse::<usize>().ok())
        else {
            break;
        };
        if len <= sp + 1 || len > data.len() {
            break;
        }
        out.push(&data[sp + 1..len - 1]);
        data = &data[len..];
    }
    out
}

/// A tar size field: octal text, or base-256 when the top bit is set.
fn parse_size(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        let mut v: u64 = (field[0] & 0x7f) as u64;
        for b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(*b as u64)?;
        }
        return Some(v);
    }
    let text: Vec<u8> = field
        .iter()
        .copied()
        .filter(|b| *b != 0 && *b != b' ')
        .collect();
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(std::str::from_utf8(&text).ok()?, 8).ok()
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut chunk = &buf[..n];
        while !chunk.is_empty() {
            if self.data_left > 0 {
                let take = (self.data_left.min(chunk.len() as u64)) as usize;
                if let Some(p) = self.pax.as_mut() {
                    let want = p.capacity().saturating_sub(p.len()).min(take);
                    p.extend_from_slice(&chunk[..want]);
                }
                self.data_left -= take as u64;
                chunk = &chunk[take..];
                if self.data_left == 0 {
                    self.finish_pax();
                }
            } else {
                let take = (512 - self.header.len()).min(chunk.len());
                self.header.extend_from_slice(&chunk[..take]);
                chunk = &chunk[take..];
                if self.header.len() == 512 {
                    self.on_header()?;
                }
            }
        }
        Ok(n)
    }
}

/// Unpacks the (possibly compressed) layer `blob` into the empty directory
/// `target`, checking the uncompressed stream against `diff_id`.
///
/// On error `target` may hold a partial tree: callers unpack into a staging
/// directory and remove it on failure ([`unpack_staged`] does both).
pub fn unpack(
    blob: impl Read,
    target: &Path,
    diff_id: &Digest,
    opts: &UnpackOptions,
) -> Result<LayerStats, LayerError> {
    let tripped = Rc::new(Cell::new(false));
    let problem: Rc<Cell<Option<&'static str>>> = Rc::new(Cell::new(None));
    let bomb = |e: LayerError, tripped: &Rc<Cell<bool>>| {
        if let Some(why) = problem.get() {
            LayerError::Refused(why.to_string())
        } else if tripped.get() {
            LayerError::TooLarge {
                limit: opts.max_bytes,
            }
        } else {
            e
        }
    };
    let plain =
        decompress(blob).map_err(|e| LayerError::Corrupt(super::one_line(&e.to_string())))?;
    let capped = CapReader {
        inner: plain,
        count: 0,
        limit: opts.max_bytes,
        tripped: tripped.clone(),
    };
    let hashed = DigestReader::new(capped);
    let mut archive = tar::Archive::new(TarGuard::new(hashed, problem.clone()));
    let root = Root::open(target).map_err(|e| io_err("", e))?;
    let mut state = Unpacker {
        root,
        dir_times: Vec::new(),
        stats: LayerStats::default(),
        max_bytes: opts.max_bytes,
    };
    let entries = archive.entries().map_err(|e| {
        bomb(
            LayerError::Corrupt(super::one_line(&e.to_string())),
            &tripped,
        )
    })?;
    for entry in entries {
        let entry = entry.map_err(|e| {
            bomb(
                LayerError::Corrupt(super::one_line(&e.to_string())),
                &tripped,
            )
        })?;
        state.entry(entry).map_err(|e| match e {
            LayerError::Io { .. } | LayerError::Xattr { .. } | LayerError::Corrupt(_) => {
                bomb(e, &tripped)
            }
            other => other,
        })?;
    }
    // Hash the rest of the stream (end-of-archive blocks and padding).
    let mut hashed = archive.into_inner().into_inner();
    std::io::copy(&mut hashed, &mut std::io::sink()).map_err(|e| {
        bomb(
            LayerError::Corrupt(super::one_line(&e.to_string())),
            &tripped,
        )
    })?;
    let (actual, size) = hashed.finish();
    if &actual != diff_id {
        return Err(LayerError::DiffIdMismatch {
            expected: diff_id.clone(),
            actual,
        });
    }
    state.finish()?;
    state.stats.tar_size = size;
    Ok(state.stats)
}

/// Unpacks `blob` into `final_dir/diff` through a staging directory under
/// `staging_parent` (same filesystem), renaming it into place when complete
/// and removing it on failure. `final_dir` must not exist yet.
pub fn unpack_staged(
    blob: impl Read,
    final_dir: &Path,
    staging_parent: &Path,
    diff_id: &Digest,
    opts: &UnpackOptions,
) -> Result<LayerStats, LayerError> {
    let staging = tempfile::Builder::new()
        .prefix("layer-")
        .tempdir_in(staging_parent)
        .map_err(|e| io_err("", e))?;
    let diff = staging.path().join("diff");
    std::fs::create_dir(&diff).map_err(|e| io_err("", e))?;
    std::fs::set_permissions(&diff, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(|e| io_err("", e))?;
    let stats = unpack(blob, &diff, diff_id, opts)?;
    let staged = staging.keep();
    if let Err(e) = std::fs::rename(&staged, final_dir) {
        let _ = std::fs::remove_dir_all(&staged);
        return Err(io_err("", e));
    }
    if let Some(parent) = final_dir.parent() {
        let _ = crate::state::atomic::sync_dir(parent);
    }
    Ok(stats)
}

fn io_err(path: &str, source: std::io::Error) -> LayerError {
    LayerError::Io {
        path: path.to_string(),
        error: source,
    }
}

fn unsafe_entry(path: &str, reason: impl Into<String>) -> LayerError {
    LayerError::Unsafe {
        path: path.to_string(),
        reason: reason.into(),
    }
}

/// A directory fd that every write goes through.
struct Root {
    fd: OwnedFd,
}

fn cstr(name: &OsStr) -> CString {
    CString::new(name.as_bytes()).unwrap_or_else(|_| CString::new("invalid").unwrap())
}

fn check(rc: libc::c_int) -> std::io::Result<libc::c_int> {
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn openat_dir(dir: RawFd, name: &CStr) -> std::io::Result<OwnedFd> {
    // SAFETY: openat with a valid dir fd and NUL-terminated name.
    let fd = check(unsafe {
        libc::openat(
            dir,
            name.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: fd was just returned by openat and is owned here.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl Root {
    fn open(path: &Path) -> std::io::Result<Self> {
        let c = CString::new(path.as_os_str().as_bytes())?;
        Ok(Self {
            fd: openat_dir(libc::AT_FDCWD, &c)?,
        })
    }

    /// Opens the directory holding the last of `comps`, walking each
    /// component with O_NOFOLLOW and creating missing ones if `create`.
    fn parent(&self, shown: &str, comps: &[&OsStr], create: bool) -> Result<OwnedFd, LayerError> {
        let mut cur = self.fd.try_clone().map_err(|e| io_err(shown, e))?;
        for comp in comps {
            let name = cstr(comp);
            cur = match openat_dir(cur.as_raw_fd(), &name) {
                Ok(fd) => fd,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) && create => {
                    // SAFETY: mkdirat with valid fd and name.
                    check(unsafe { libc::mkdirat(cur.as_raw_fd(), name.as_ptr(), 0o755) })
                        .map_err(|e| io_err(shown, e))?;
                    openat_dir(cur.as_raw_fd(), &name).map_err(|e| io_err(shown, e))?
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR)) => {
                    return Err(unsafe_entry(
                        shown,
                        format!(
                            "its parent {:?} is a symlink or not a directory; berth does not follow links inside a layer",
                            comp
                        ),
                    ));
                }
                Err(e) => return Err(io_err(shown, e)),
            };
        }
        Ok(cur)
    }
}

/// Splits a tar path into clean components, rejecting `..` and absolute names.
fn components(shown: &str, path: &Path) -> Result<Vec<std::ffi::OsString>, LayerError> {
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n.to_os_string()),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(unsafe_entry(shown, "it contains '..'"));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(unsafe_entry(shown, "it is an absolute path"));
            }
        }
    }
    Ok(out)
}

struct Unpacker {
    root: Root,
    /// Directories whose mtime is set after all entries are written.
    dir_times: Vec<(Vec<std::ffi::OsString>, i64)>,
    stats: LayerStats,
    max_bytes: u64,
}

#[derive(PartialEq)]
enum Existing {
    None,
    Dir,
    Other,
}

fn existing(dir: RawFd, name: &CStr) -> std::io::Result<Existing> {
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstatat into a zeroed stat buffer.
    let rc = unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        return if e.raw_os_error() == Some(libc::ENOENT) {
            Ok(Existing::None)
        } else {
            Err(e)
        };
    }
    Ok(if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        Existing::Dir
    } else {
        Existing::Other
    })
}

/// Removes `name` (recursively if a directory) inside `dir`, without
/// following symlinks.
fn remove_at(dir: RawFd, name: &CStr) -> std::io::Result<()> {
    match existing(dir, name)? {
        Existing::None => Ok(()),
        Existing::Other => {
            // SAFETY: unlinkat on a valid fd and name.
            check(unsafe { libc::unlinkat(dir, name.as_ptr(), 0) }).map(|_| ())
        }
        Existing::Dir => {
            let sub = openat_dir(dir, name)?;
            let d = nix::dir::Dir::from_fd(std::os::fd::IntoRawFd::into_raw_fd(sub.try_clone()?))
                .map_err(std::io::Error::from)?;
            let mut names = Vec::new();
            for ent in d.into_iter() {
                let ent = ent.map_err(std::io::Error::from)?;
                let n = ent.file_name();
                if n.to_bytes() != b"." && n.to_bytes() != b".." {
                    names.push(n.to_owned());
                }
            }
            for n in names {
                remove_at(sub.as_raw_fd(), &n)?;
            }
            // SAFETY: unlinkat on a valid fd and name.
            check(unsafe { libc::unlinkat(dir, name.as_ptr(), libc::AT_REMOVEDIR) }).map(|_| ())
        }
    }
}

fn set_times_at(dir: RawFd, name: &CStr, mtime: i64) -> std::io::Result<()> {
    let ts = libc::timespec {
        tv_sec: mtime as libc::time_t,
        tv_nsec: 0,
    };
    let times = [ts, ts];
    // SAFETY: utimensat with a valid fd, name and two timespecs.
    check(unsafe {
        libc::utimensat(
            dir,
            name.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
    .map(|_| ())
}

impl Unpacker {
    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<(), LayerError> {
        let path = entry
            .path()
            .map_err(|e| LayerError::Corrupt(super::one_line(&e.to_string())))?
            .into_owned();
        let shown = path.to_string_lossy().into_owned();
        let comps = components(&shown, &path)?;
        let header = entry.header().clone();
        let kind = header.entry_type();
        if entry.size() > self.max_bytes {
            return Err(LayerError::TooLarge {
                limit: self.max_bytes,
            });
        }
        let uid = header.uid().unwrap_or(0) as libc::uid_t;
        let gid = header.gid().unwrap_or(0) as libc::gid_t;
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let mtime = header.mtime().unwrap_or(0) as i64;
        let xattrs = pax_xattrs(&mut entry);

        if comps.is_empty() {
            // "." : the layer root itself.
            if kind.is_dir() {
                let fd = self.root.fd.as_raw_fd();
                // SAFETY: fchown/fchmod on the root dir fd.
                check(unsafe { libc::fchown(fd, uid, gid) }).map_err(|e| io_err(&shown, e))?;
                check(unsafe { libc::fchmod(fd, mode as libc::mode_t) })
                    .map_err(|e| io_err(&shown, e))?;
                self.dir_times.push((Vec::new(), mtime));
            }
            return Ok(());
        }
        let (last, parents) = comps.split_last().expect("non-empty");
        let parents: Vec<&OsStr> = parents.iter().map(|s| s.as_os_str()).collect();
        // Below AUFS metadata directories (`.wh..wh.plnk/`, which holds
        // AUFS's hard-link targets; `.wh..wh.orph/`): not content either,
        // and Docker skips them whole.
        if parents
            .iter()
            .any(|p| p.as_bytes().starts_with(AUFS_META_PREFIX.as_bytes()))
        {
            return Ok(());
        }
        let last_bytes = last.as_bytes();

        // Whiteouts.
        if last_bytes == OPAQUE.as_bytes() {
            let dir = self.root.parent(&shown, &parents, true)?;
            xattr::FileExt::set_xattr(&fd_file(&dir), OVERLAY_OPAQUE_XATTR, b"y")
                .map_err(|e| io_err(&shown, e))?;
            self.stats.entries += 1;
            return Ok(());
        }
        if let Some(hidden) = last_bytes.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            if hidden.starts_with(WHITEOUT_PREFIX.as_bytes()) {
                // Other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): not content.
                return Ok(());
            }
            if hidden.is_empty() || hidden == b"." || hidden == b".." {
                return Err(unsafe_entry(&shown, "whiteout of an invalid name"));
            }
            let dir = self.root.parent(&shown, &parents, true)?;
            let name = CString::new(hidden).map_err(|_| unsafe_entry(&shown, "NUL in name"))?;
            remove_at(dir.as_raw_fd(), &name).map_err(|e| io_err(&shown, e))?;
            // SAFETY: mknodat of a 0/0 char device in a dir fd.
            check(unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), libc::S_IFCHR, 0) })
                .map_err(|e| io_err(&shown, e))?;
            // SAFETY: fchownat without following links.
            check(unsafe {
                libc::fchownat(
                    dir.as_raw_fd(),
                    name.as_ptr(),
                    uid,
                    gid,
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            })
            .map_err(|e| io_err(&shown, e))?;
            self.stats.entries += 1;
            return Ok(());
        }

        let dir = self.root.parent(&shown, &parents, true)?;
        let dfd = dir.as_raw_fd();
        let name = CString::new(last_bytes).map_err(|_| unsafe_entry(&shown, "NUL in name"))?;
        let present = existing(dfd, &name).map_err(|e| io_err(&shown, e))?;
        if !(kind.is_dir() && present == Existing::Dir) {
            remove_at(dfd, &name).map_err(|e| io_err(&shown, e))?;
        }
        let chown_at = || {
            // SAFETY: fchownat without following links.
            check(unsafe {
                libc::fchownat(dfd, name.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW)
            })
            .map_err(|e| io_err(&shown, e))
        };
        match kind {
            tar::EntryType::Directory => {
                if present != Existing::Dir {
                    // SAFETY: mkdirat with valid fd and name.
                    check(unsafe { libc::mkdirat(dfd, name.as_ptr(), 0o700) })
                        .map_err(|e| io_err(&shown, e))?;
                }
                let sub = openat_dir(dfd, &name).map_err(|e| io_err(&shown, e))?;
                let f = fd_file(&sub);
                std::os::unix::fs::fchown(&f, Some(uid), Some(gid))
                    .map_err(|e| io_err(&shown, e))?;
                f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
                    .map_err(|e| io_err(&shown, e))?;
                set_xattrs(&f, &xattrs, &shown)?;
                self.dir_times.push((comps.clone(), mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                // SAFETY: openat creating a new file, never following a link.
                let fd = check(unsafe {
                    libc::openat(
                        dfd,
                        name.as_ptr(),
                        libc::O_WRONLY
                            | libc::O_CREAT
                            | libc::O_EXCL
                            | libc::O_NOFOLLOW
                            | libc::O_CLOEXEC,
                        0o600,
                    )
                })
                .map_err(|e| io_err(&shown, e))?;
                // SAFETY: fd was just returned by openat and is owned here.
                let mut f = unsafe { File::from_raw_fd(fd) };
                std::io::copy(&mut entry, &mut f).map_err(|e| io_err(&shown, e))?;
                std::os::unix::fs::fchown(&f, Some(uid), Some(gid))
                    .map_err(|e| io_err(&shown, e))?;
                f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
                    .map_err(|e| io_err(&shown, e))?;
                set_xattrs(&f, &xattrs, &shown)?;
                let t = filetime::FileTime::from_unix_time(mtime, 0);
                filetime::set_file_handle_times(&f, Some(t), Some(t))
                    .map_err(|e| io_err(&shown, e))?;
            }
            tar::EntryType::Symlink => {
                let target = entry.link_name_bytes().ok_or_else(|| {
                    LayerError::Corrupt(format!("symlink {shown:?} has no target"))
                })?;
                let target = CString::new(target.into_owned())
                    .map_err(|_| unsafe_entry(&shown, "NUL in link target"))?;
                // SAFETY: symlinkat with valid strings and dir fd.
                check(unsafe { libc::symlinkat(target.as_ptr(), dfd, name.as_ptr()) })
                    .map_err(|e| io_err(&shown, e))?;
                chown_at()?;
                set_times_at(dfd, &name, mtime).map_err(|e| io_err(&shown, e))?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(|e| LayerError::Corrupt(super::one_line(&e.to_string())))?
                    .ok_or_else(|| {
                        LayerError::Corrupt(format!("hardlink {shown:?} has no target"))
                    })?
                    .into_owned();
                let tcomps = components(&shown, &target).map_err(|_| {
                    unsafe_entry(
                        &shown,
                        format!("hardlink target {target:?} points outside the layer"),
                    )
                })?;
                let Some((tlast, tparents)) = tcomps.split_last() else {
                    return Err(unsafe_entry(&shown, "hardlink to the layer root"));
                };
                let tparents: Vec<&OsStr> = tparents.iter().map(|s| s.as_os_str()).collect();
                let tdir = self.root.parent(&shown, &tparents, false)?;
                let tname = cstr(tlast);
                // SAFETY: linkat without AT_SYMLINK_FOLLOW: links the entry itself.
                check(unsafe {
                    libc::linkat(tdir.as_raw_fd(), tname.as_ptr(), dfd, name.as_ptr(), 0)
                })
                .map_err(|e| io_err(&shown, e))?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                let ftype = match kind {
                    tar::EntryType::Char => libc::S_IFCHR,
                    tar::EntryType::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                let dev = libc::makedev(major, minor);
                // SAFETY: mknodat with valid fd and name.
                check(unsafe {
                    libc::mknodat(dfd, name.as_ptr(), ftype | mode as libc::mode_t, dev)
                })
                .map_err(|e| io_err(&shown, e))?;
                chown_at()?;
                // SAFETY: fchmodat on the node just made (not a symlink).
                check(unsafe { libc::fchmodat(dfd, name.as_ptr(), mode as libc::mode_t, 0) })
                    .map_err(|e| io_err(&shown, e))?;
                set_times_at(dfd, &name, mtime).map_err(|e| io_err(&shown, e))?;
            }
            tar::EntryType::XGlobalHeader
            | tar::EntryType::XHeader
            | tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink => return Ok(()),
            other => {
                return Err(LayerError::Corrupt(format!(
                    "entry {shown:?} has unsupported type {other:?}"
                )));
            }
        }
        self.stats.entries += 1;
        Ok(())
    }

    /// Sets directory mtimes, deepest first, once their content is written.
    fn finish(&mut self) -> Result<(), LayerError> {
        let mut times = std::mem::take(&mut self.dir_times);
        times.sort_by_key(|(c, _)| std::cmp::Reverse(c.len()));
        for (comps, mtime) in times {
            let shown = comps
                .iter()
                .map(|c| c.to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            match comps.split_last() {
                None => {
                    let t = filetime::FileTime::from_unix_time(mtime, 0);
                    filetime::set_file_handle_times(&fd_file(&self.root.fd), Some(t), Some(t))
                        .map_err(|e| io_err(&shown, e))?;
                }
                Some((last, parents)) => {
                    let parents: Vec<&OsStr> = parents.iter().map(|s| s.as_os_str()).collect();
                    // A later entry may have replaced the directory; skip it then.
                    let Ok(dir) = self.root.parent(&shown, &parents, false) else {
                        continue;
                    };
                    let name = cstr(last);
                    if existing(dir.as_raw_fd(), &name).ok() == Some(Existing::Dir) {
                        set_times_at(dir.as_raw_fd(), &name, mtime)
                            .map_err(|e| io_err(&shown, e))?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// A `File` view of a directory fd (for fd-based metadata calls).
fn fd_file(fd: &OwnedFd) -> File {
    File::from(fd.try_clone().expect("dup of an open fd"))
}

/// The xattrs a PAX header carries (`SCHILY.xattr.NAME`), minus overlay's own.
fn pax_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(Some(exts)) = entry.pax_extensions() {
        for ext in exts.flatten() {
            if let Ok(key) = ext.key() {
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    if !name.starts_with("trusted.overlay.") {
                        out.push((name.to_string(), ext.value_bytes().to_vec()));
                    }
                }
            }
        }
    }
    out
}

fn set_xattrs(f: &File, xattrs: &[(String, Vec<u8>)], shown: &str) -> Result<(), LayerError> {
    for (k, v) in xattrs {
        xattr::FileExt::set_xattr(f, k, v).map_err(|error| LayerError::Xattr {
            path: shown.to_string(),
            name: k.clone(),
            error,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = Digest::of_bytes(b"a");
        let b = Digest::of_bytes(b"b");
        let chains = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(chains[0], a);
        assert_eq!(chains[1], Digest::of_bytes(format!("{a} {b}").as_bytes()));
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn tar_fields_parse() {
        let cases: &[(&[u8], Option<u64>)] = &[
            (b"00000000012\0", Some(0o12)),
            (b"        777 ", Some(0o777)),
            (b"\0\0\0\0\0\0\0\0\0\0\0\0", Some(0)),
            (&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0], Some(256)),
            (b"0000000009x\0", None),
        ];
        for (field, want) in cases {
            assert_eq!(parse_size(field), *want, "{field:?}");
        }
        let recs = tar_pax_records(b"12 size=100\n18 path=a/long/nm\nbroken");
        assert_eq!(recs, vec![&b"size=100"[..], &b"path=a/long/nm"[..]]);
    }

    #[test]
    fn the_guard_stops_oversized_metadata_and_follows_pax_sizes() {
        let build = |kind: tar::EntryType, size: u64| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_size(size);
            h.set_cksum();
            h.as_bytes().to_vec()
        };
        let problem = Rc::new(Cell::new(None));
        let big = build(tar::EntryType::XHeader, MAX_TAR_METADATA + 1);
        let mut g = TarGuard::new(&big[..], problem.clone());
        assert!(std::io::copy(&mut g, &mut std::io::sink()).is_err());
        assert!(problem.get().unwrap().contains("larger than 1 MiB"));
        // A PAX size record moves the next header: the guard follows it.
        let pax = b"12 size=600\n";
        let mut stream = build(tar::EntryType::XHeader, pax.len() as u64);
        stream.extend_from_slice(pax);
        stream.resize(1024, 0);
        stream.extend(build(tar::EntryType::Regular, 0));
        stream.extend(vec![7u8; 1024]); // 600 bytes of data padded to 1024
        stream.extend(build(tar::EntryType::Regular, 0));
        let problem = Rc::new(Cell::new(None));
        let mut g = TarGuard::new(&stream[..], problem.clone());
        std::io::copy(&mut g, &mut std::io::sink()).unwrap();
        assert_eq!((g.data_left, g.header.len()), (0, 0));
        assert_eq!(problem.get(), None);
    }
}
