//! The layer of a `COPY`/`ADD` step, written straight from the sources as an
//! uncompressed OCI layer tar
//! (<https://github.com/opencontainers/image-spec/blob/main/layer.md>), no
//! container needed.
//!
//! Entries from the build context are owned by root, entries copied out of
//! an image (`COPY --from`) keep their owners, and `--chown` overrides both;
//! they keep their mode (or take `--chmod`) and modification time. Files
//! that are hardlinks of each other in the source stay one hardlink group
//! (the first as a file, the others as tar hardlink entries to it). Parent
//! directories of a destination that the image lacks are added as `0755`
//! directories owned by the `--chown` owner (root without one), as Docker
//! creates them. A local tar archive given to `ADD` is unpacked into the
//! destination: its entries are re-rooted there with the owners the archive
//! stores (`--chown` does not apply to them, as in Docker), its root entry
//! (`./`) is skipped so the destination directory keeps its mode and owner
//! (Docker's `Unpack` skips `.` when it exists), and an entry that climbs
//! out with `..` is refused. Names starting with `.wh.` are refused too: in
//! a layer they mean "delete" (OCI whiteouts), not a file.

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Write};
use std::path::Path;

use super::context::{Entry, EntryKind};

/// Errors writing a layer.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("writing the layer entry {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}: names starting with .wh. are reserved for layer whiteouts and cannot be copied into an image")]
    Whiteout(String),
    #[error("archive {archive}: entry {entry} points outside the destination")]
    ArchiveEscape { archive: String, entry: String },
}

fn io(path: &str) -> impl FnOnce(std::io::Error) -> LayerError + '_ {
    move |source| LayerError::Io {
        path: path.to_string(),
        source,
    }
}

/// Ownership and mode overrides of a copy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyOpts {
    /// `--chown` as numeric ids.
    pub chown: Option<(u32, u32)>,
    /// `--chmod` bits.
    pub chmod: Option<u32>,
    /// Without `--chown`, keep the sources' owners (`COPY --from`) instead
    /// of making them root's (the build context).
    pub keep_owner: bool,
}

impl CopyOpts {
    /// The owner an entry of `uid:gid` gets.
    pub fn owner(&self, uid: u32, gid: u32) -> (u32, u32) {
        match self.chown {
            Some(o) => o,
            None if self.keep_owner => (uid, gid),
            None => (0, 0),
        }
    }
}

/// Normalises an image path to tar form: no leading `/`, no `.`/empty
/// components, `..` resolved (never above the root).
pub fn image_rel(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.join("/")
}

/// Joins an image path under a directory (both in tar form).
pub fn join(dir: &str, name: &str) -> String {
    image_rel(&format!("{dir}/{name}"))
}

/// Writes the entries of one layer.
pub struct LayerWriter<W: Write> {
    tar: tar::Builder<W>,
    dirs: BTreeSet<String>,
    mtime: u64,
    /// The first path written of each (dev, ino) with more than one link.
    links: HashMap<(u64, u64), String>,
}

impl<W: Write> LayerWriter<W> {
    pub fn new(out: W) -> Self {
        let mut tar = tar::Builder::new(out);
        tar.follow_symlinks(false);
        let mtime = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Self {
            tar,
            dirs: BTreeSet::new(),
            mtime,
            links: HashMap::new(),
        }
    }

    fn check_name(rel: &str) -> Result<(), LayerError> {
        match rel.rsplit('/').next() {
            Some(n) if n.starts_with(".wh.") => Err(LayerError::Whiteout(rel.to_string())),
            _ => Ok(()),
        }
    }

    /// Adds the missing parent directories of `rel`, owned by `owner`;
    /// `exists` says whether the image already has a path.
    pub fn parents(
        &mut self,
        rel: &str,
        exists: &dyn Fn(&str) -> bool,
        owner: (u32, u32),
    ) -> Result<(), LayerError> {
        let comps: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
        for i in 1..comps.len() {
            let p = comps[..i].join("/");
            if self.dirs.contains(&p) || exists(&p) {
                continue;
            }
            self.dir(&p, 0o755, owner, self.mtime)?;
        }
        Ok(())
    }

    /// Adds a hardlink entry: `rel` is another name of `target`.
    pub fn hardlink(
        &mut self,
        rel: &str,
        target: &str,
        mode: u32,
        owner: (u32, u32),
        mtime: u64,
    ) -> Result<(), LayerError> {
        Self::check_name(rel)?;
        let mut h = header(tar::EntryType::Link, mode, owner, mtime);
        h.set_size(0);
        self.tar.append_link(&mut h, rel, target).map_err(io(rel))
    }

    /// Adds a directory entry (once).
    pub fn dir(
        &mut self,
        rel: &str,
        mode: u32,
        owner: (u32, u32),
        mtime: u64,
    ) -> Result<(), LayerError> {
        if rel.is_empty() || !self.dirs.insert(rel.to_string()) {
            return Ok(());
        }
        Self::check_name(rel)?;
        let mut h = header(tar::EntryType::Directory, mode, owner, mtime);
        h.set_size(0);
        self.tar
            .append_data(&mut h, format!("{rel}/"), std::io::empty())
            .map_err(io(rel))
    }

    /// Adds a regular file with the given content.
    pub fn file(
        &mut self,
        rel: &str,
        mode: u32,
        owner: (u32, u32),
        mtime: u64,
        size: u64,
        content: impl Read,
    ) -> Result<(), LayerError> {
        Self::check_name(rel)?;
        let mut h = header(tar::EntryType::Regular, mode, owner, mtime);
        h.set_size(size);
        self.tar.append_data(&mut h, rel, content).map_err(io(rel))
    }

    /// Adds a symbolic link.
    pub fn symlink(
        &mut self,
        rel: &str,
        target: &Path,
        owner: (u32, u32),
        mtime: u64,
    ) -> Result<(), LayerError> {
        Self::check_name(rel)?;
        let mut h = header(tar::EntryType::Symlink, 0o777, owner, mtime);
        h.set_size(0);
        self.tar.append_link(&mut h, rel, target).map_err(io(rel))
    }

    /// Adds a heredoc or other in-memory file (mode 0644 unless `--chmod`).
    pub fn bytes(&mut self, rel: &str, data: &[u8], opts: CopyOpts) -> Result<(), LayerError> {
        let owner = opts.owner(0, 0);
        let mode = opts.chmod.unwrap_or(0o644);
        self.file(rel, mode, owner, self.mtime, data.len() as u64, data)
    }

    /// Adds a context entry at `rel`.
    pub fn entry(&mut self, rel: &str, e: &Entry, opts: CopyOpts) -> Result<(), LayerError> {
        let owner = opts.owner(e.uid, e.gid);
        let mtime = std::fs::symlink_metadata(&e.path)
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
            .unwrap_or(self.mtime);
        match &e.kind {
            EntryKind::Dir => self.dir(rel, opts.chmod.unwrap_or(e.mode), owner, mtime),
            // Sockets, fifos and devices of the context are not copied.
            EntryKind::Other => Ok(()),
            EntryKind::Symlink(t) => self.symlink(rel, t, owner, mtime),
            EntryKind::File => {
                let mode = opts.chmod.unwrap_or(e.mode);
                if e.nlink > 1 {
                    match self.links.get(&(e.dev, e.ino)) {
                        Some(first) => {
                            let first = first.clone();
                            return self.hardlink(rel, &first, mode, owner, mtime);
                        }
                        None => {
                            self.links.insert((e.dev, e.ino), rel.to_string());
                        }
                    }
                }
                let f = std::fs::File::open(&e.path).map_err(io(rel))?;
                let size = f.metadata().map_err(io(rel))?.len();
                self.file(rel, mode, owner, mtime, size, f.take(size))
            }
        }
    }

    /// Unpacks the tar archive `data` (already decompressed) under `dest`.
    pub fn archive(
        &mut self,
        name: &str,
        dest: &str,
        data: impl Read,
        opts: CopyOpts,
    ) -> Result<(), LayerError> {
        let mut a = tar::Archive::new(data);
        for entry in a.entries().map_err(io(name))? {
            let mut entry = entry.map_err(io(name))?;
            let raw = entry
                .path()
                .map_err(io(name))?
                .to_string_lossy()
                .into_owned();
            let escape = || LayerError::ArchiveEscape {
                archive: name.to_string(),
                entry: raw.clone(),
            };
            if raw.split('/').any(|c| c == "..") {
                return Err(escape());
            }
            let rel = join(dest, &raw);
            // The archive's root (`./`) would replace the destination's own
            // mode and owner: Docker skips it.
            if rel.is_empty() || rel == image_rel(dest) {
                continue;
            }
            let h = entry.header().clone();
            // The owners the archive stores, whatever `--chown` says.
            let owner = (h.uid().unwrap_or(0) as u32, h.gid().unwrap_or(0) as u32);
            let mode = opts.chmod.unwrap_or(h.mode().unwrap_or(0o644) & 0o7777);
            let mtime = h.mtime().unwrap_or(self.mtime);
            match h.entry_type() {
                tar::EntryType::Directory => self.dir(&rel, mode, owner, mtime)?,
                tar::EntryType::Symlink => {
                    let t = entry
                        .link_name()
                        .map_err(io(name))?
                        .map(|p| p.into_owned())
                        .unwrap_or_default();
                    self.symlink(&rel, &t, owner, mtime)?
                }
                tar::EntryType::Link => {
                    let t = entry
                        .link_name()
                        .map_err(io(name))?
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    if t.split('/').any(|c| c == "..") {
                        return Err(escape());
                    }
                    self.hardlink(&rel, &join(dest, &t), mode, owner, mtime)?;
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = h.size().unwrap_or(0);
                    self.file(&rel, mode, owner, mtime, size, &mut entry)?
                }
                // Devices, fifos and metadata entries are not taken from archives.
                _ => {}
            }
        }
        Ok(())
    }

    /// Ends the tar stream.
    pub fn finish(mut self) -> Result<W, LayerError> {
        self.tar.finish().map_err(io("end of layer"))?;
        self.tar.into_inner().map_err(io("end of layer"))
    }
}

fn header(kind: tar::EntryType, mode: u32, owner: (u32, u32), mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(owner.0 as u64);
    h.set_gid(owner.1 as u64);
    h.set_mtime(mtime);
    h
}

/// Whether `path` is a tar archive (plain, gzip or zstd), as `ADD` unpacks.
pub fn is_archive(path: &Path) -> bool {
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let Ok(mut r) = crate::image::layer::decompress(f) else {
        return false;
    };
    let mut head = [0u8; 512];
    let mut got = 0;
    while got < head.len() {
        match r.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(_) => return false,
        }
    }
    got == 512 && &head[257..262] == b"ustar"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(bytes: &[u8]) -> Vec<(String, u64, u64, u32)> {
        let mut a = tar::Archive::new(bytes);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    h.mode().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn paths_are_normalised() {
        assert_eq!(image_rel("/app/./x/../y/"), "app/y");
        assert_eq!(image_rel("/../../etc"), "etc");
        assert_eq!(join("/app", "../../x"), "x");
        assert_eq!(join("", "a"), "a");
    }

    #[test]
    fn parents_owner_and_mode() {
        let mut w = LayerWriter::new(Vec::new());
        w.parents("app/sub/f", &|p| p == "app", (5, 6)).unwrap();
        w.bytes(
            "app/sub/f",
            b"hi",
            CopyOpts {
                chown: Some((5, 6)),
                chmod: Some(0o700),
                keep_owner: false,
            },
        )
        .unwrap();
        let out = w.finish().unwrap();
        assert_eq!(
            list(&out),
            [
                ("app/sub/".to_string(), 5, 6, 0o755),
                ("app/sub/f".to_string(), 5, 6, 0o700)
            ]
        );
    }

    #[test]
    fn whiteout_names_are_refused() {
        let mut w = LayerWriter::new(Vec::new());
        assert!(matches!(
            w.bytes("etc/.wh.passwd", b"", CopyOpts::default()),
            Err(LayerError::Whiteout(_))
        ));
    }

    fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o640);
            h.set_entry_type(tar::EntryType::Regular);
            // Bypass the builder's own path checks to write hostile names.
            h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn archives_are_rerooted_and_escapes_refused() {
        let mut w = LayerWriter::new(Vec::new());
        let a = tar_of(&[("a/b.txt", b"x"), ("c", b"yy")]);
        w.archive("t.tar", "/opt/", &a[..], CopyOpts::default())
            .unwrap();
        let out = w.finish().unwrap();
        let names: Vec<String> = list(&out).into_iter().map(|e| e.0).collect();
        assert_eq!(names, ["opt/a/b.txt", "opt/c"]);

        let mut w = LayerWriter::new(Vec::new());
        let a = tar_of(&[("../../etc/passwd", b"root::0:0::/:/bin/sh\n")]);
        assert!(matches!(
            w.archive("evil.tar", "/opt", &a[..], CopyOpts::default()),
            Err(LayerError::ArchiveEscape { .. })
        ));
    }

    #[test]
    fn archive_detection() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("t.tar");
        std::fs::write(&t, tar_of(&[("x", b"1")])).unwrap();
        assert!(is_archive(&t));
        let gz = d.path().join("t.tar.gz");
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&std::fs::read(&t).unwrap()).unwrap();
        std::fs::write(&gz, e.finish().unwrap()).unwrap();
        assert!(is_archive(&gz));
        let txt = d.path().join("t.txt");
        std::fs::write(&txt, "hello").unwrap();
        assert!(!is_archive(&txt));
    }
}
