//! A container's changes as an OCI layer: the overlay upper directory,
//! written as a tar stream with overlay's whiteouts turned into OCI ones.
//!
//! overlayfs records a deleted file as a character device 0/0 with the
//! file's name, and a directory whose lower contents are hidden as a
//! directory carrying the xattr `trusted.overlay.opaque=y`. The OCI image
//! spec (<https://github.com/opencontainers/image-spec/blob/main/layer.md#whiteouts>)
//! writes the first as an empty file `.wh.<name>` and the second as an empty
//! file `.wh..wh..opq` inside the directory. Everything else in the upper
//! directory is a regular change and goes into the tar as it is (owners,
//! modes, times, symlinks, hard links within the layer, fifos and devices;
//! sockets left out and xattrs aside, as Docker's `pkg/archive` does).

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// Errors writing a layer.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("writing the layer from {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DiffError + '_ {
    move |source| DiffError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn is_opaque(path: &Path) -> bool {
    matches!(
        xattr::get(path, "trusted.overlay.opaque"),
        Ok(Some(v)) if v == b"y"
    )
}

fn empty_entry(mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(0);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h
}

/// Writes the layer tar of `upper` to `out`; returns the number of entries.
pub fn write_layer<W: Write>(upper: &Path, out: W) -> Result<u64, DiffError> {
    write_layer_except(upper, out, &|_| false, &|_, _| true)
}

/// One entry to write, found by the walk.
struct Item {
    path: std::path::PathBuf,
    rel: std::path::PathBuf,
    meta: std::fs::Metadata,
}

/// [`write_layer`] leaving out the paths (relative to `upper`) for which
/// `skip` holds, and the directories left with nothing but skipped entries
/// (the mount points a build container's runtime made, and their parents)
/// unless `changed_dir` says the directory itself changed (its mode or
/// owner differ from the image's). An empty directory is a change of its
/// own and stays.
///
/// Entries are written as Docker's `pkg/archive` writes them: regular
/// files, directories, symbolic links, fifos and character/block devices
/// with their modes, owners and times; a second name of a file already
/// written (same inode) as a tar hardlink to the first; sockets are left
/// out (a socket cannot be archived; Docker skips them too).
pub fn write_layer_except<W: Write>(
    upper: &Path,
    out: W,
    skip: &dyn Fn(&Path) -> bool,
    changed_dir: &dyn Fn(&Path, &std::fs::Metadata) -> bool,
) -> Result<u64, DiffError> {
    let mut items = Vec::new();
    collect(upper, upper, skip, changed_dir, &mut items)?;
    let mut builder = tar::Builder::new(out);
    let mut first_names: std::collections::HashMap<(u64, u64), std::path::PathBuf> =
        Default::default();
    let mut count = 0;
    for Item { path, rel, meta } in items {
        let ft = meta.file_type();
        let mtime = meta.mtime().max(0) as u64;
        if ft.is_char_device() && meta.rdev() == 0 {
            // overlay whiteout: deleted file.
            let name = rel.file_name().unwrap_or_default().to_string_lossy();
            let wh = rel.with_file_name(format!(".wh.{name}"));
            let mut h = empty_entry(mtime);
            builder
                .append_data(&mut h, &wh, std::io::empty())
                .map_err(io(&path))?;
            count += 1;
            continue;
        }
        let mut h = tar::Header::new_gnu();
        h.set_mode(meta.mode() & 0o7777);
        h.set_uid(meta.uid() as u64);
        h.set_gid(meta.gid() as u64);
        h.set_mtime(mtime);
        h.set_size(0);
        if ft.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            builder
                .append_data(&mut h, &rel, std::io::empty())
                .map_err(io(&path))?;
            count += 1;
            if is_opaque(&path) {
                let mut h = empty_entry(mtime);
                builder
                    .append_data(&mut h, rel.join(".wh..wh..opq"), std::io::empty())
                    .map_err(io(&path))?;
                count += 1;
            }
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&path).map_err(io(&path))?;
            h.set_entry_type(tar::EntryType::Symlink);
            builder
                .append_link(&mut h, &rel, &target)
                .map_err(io(&path))?;
            count += 1;
        } else if ft.is_file() {
            if meta.nlink() > 1 {
                if let Some(first) = first_names.get(&(meta.dev(), meta.ino())) {
                    h.set_entry_type(tar::EntryType::Link);
                    builder
                        .append_link(&mut h, &rel, first)
                        .map_err(io(&path))?;
                    count += 1;
                    continue;
                }
                first_names.insert((meta.dev(), meta.ino()), rel.clone());
            }
            let f = std::fs::File::open(&path).map_err(io(&path))?;
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(meta.len());
            builder
                .append_data(&mut h, &rel, std::io::Read::take(f, meta.len()))
                .map_err(io(&path))?;
            count += 1;
        } else if ft.is_fifo() || ft.is_char_device() || ft.is_block_device() {
            h.set_entry_type(if ft.is_fifo() {
                tar::EntryType::Fifo
            } else if ft.is_char_device() {
                tar::EntryType::Char
            } else {
                tar::EntryType::Block
            });
            let rdev = meta.rdev();
            h.set_device_major(libc::major(rdev)).map_err(io(&path))?;
            h.set_device_minor(libc::minor(rdev)).map_err(io(&path))?;
            builder
                .append_data(&mut h, &rel, std::io::empty())
                .map_err(io(&path))?;
            count += 1;
        }
        // Sockets: left out.
    }
    builder.finish().map_err(io(upper))?;
    Ok(count)
}

/// Walks `dir` (parents before children, names sorted) into `items`;
/// returns whether it kept anything or found nothing to skip.
fn collect(
    upper: &Path,
    dir: &Path,
    skip: &dyn Fn(&Path) -> bool,
    changed_dir: &dyn Fn(&Path, &std::fs::Metadata) -> bool,
    items: &mut Vec<Item>,
) -> Result<bool, DiffError> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    let mut kept_any = false;
    let mut skipped_any = false;
    for entry in entries {
        let path = entry.path();
        let rel = path.strip_prefix(upper).unwrap_or(&path).to_path_buf();
        if skip(&rel) {
            skipped_any = true;
            continue;
        }
        let meta = std::fs::symlink_metadata(&path).map_err(io(&path))?;
        if meta.file_type().is_socket() {
            continue;
        }
        if meta.file_type().is_dir() {
            let mark = items.len();
            let keep = is_opaque(&path) || changed_dir(&rel, &meta);
            items.push(Item {
                path: path.clone(),
                rel,
                meta,
            });
            if !collect(upper, &path, skip, changed_dir, items)? && !keep {
                // Only there for what was skipped.
                items.truncate(mark);
                skipped_any = true;
                continue;
            }
        } else {
            items.push(Item { path, rel, meta });
        }
        kept_any = true;
    }
    Ok(kept_any || !skipped_any)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(tar_bytes: &[u8]) -> Vec<String> {
        let mut a = tar::Archive::new(tar_bytes);
        let mut v: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn plain_changes_are_written_as_is() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc/app")).unwrap();
        std::fs::write(d.path().join("etc/app/conf"), "x=1\n").unwrap();
        std::os::unix::fs::symlink("conf", d.path().join("etc/app/link")).unwrap();
        let mut out = Vec::new();
        assert_eq!(write_layer(d.path(), &mut out).unwrap(), 4);
        assert_eq!(
            names(&out),
            ["etc", "etc/app", "etc/app/conf", "etc/app/link"]
        );
    }

    #[test]
    fn fifos_hardlinks_and_sockets_as_docker_writes_them() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        nix::unistd::mkfifo(
            &r.join("p"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        std::fs::write(r.join("a"), "same").unwrap();
        std::fs::create_dir(r.join("d")).unwrap();
        std::fs::hard_link(r.join("a"), r.join("d/b")).unwrap();
        let _sock = std::os::unix::net::UnixListener::bind(r.join("s")).unwrap();
        let mut out = Vec::new();
        write_layer(r, &mut out).unwrap();
        let mut a = tar::Archive::new(&out[..]);
        let got: Vec<(String, tar::EntryType, u32, String)> = a
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let link = e
                    .link_name()
                    .unwrap()
                    .map(|l| l.to_string_lossy().into_owned())
                    .unwrap_or_default();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.header().entry_type(),
                    e.header().mode().unwrap(),
                    link,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("a".into(), tar::EntryType::Regular, 0o644, "".into()),
                ("d".into(), tar::EntryType::Directory, 0o755, "".into()),
                ("d/b".into(), tar::EntryType::Link, 0o644, "a".into()),
                ("p".into(), tar::EntryType::Fifo, 0o600, "".into()),
            ],
            "the socket is left out"
        );
    }

    #[test]
    fn skipped_paths_and_the_dirs_made_for_them_are_left_out() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::write(r.join("etc/hosts"), "").unwrap();
        std::fs::create_dir_all(r.join("run/secrets")).unwrap();
        std::fs::write(r.join("run/secrets/tok"), "").unwrap();
        std::fs::create_dir_all(r.join("var/log")).unwrap();
        std::fs::write(r.join("var/log/x"), "").unwrap();
        std::fs::write(r.join("var/kept"), "k").unwrap();
        std::fs::create_dir_all(r.join("empty")).unwrap();
        let skip = |p: &Path| {
            p == Path::new("etc/hosts")
                || p == Path::new("run/secrets/tok")
                || p == Path::new("var/log/x")
        };
        let mut out = Vec::new();
        write_layer_except(r, &mut out, &skip, &|_, _| false).unwrap();
        assert_eq!(names(&out), ["empty", "var", "var/kept"]);
        // A directory that changed itself stays, with nothing in it.
        let mut out = Vec::new();
        write_layer_except(r, &mut out, &skip, &|p, _| p == Path::new("etc")).unwrap();
        assert_eq!(names(&out), ["empty", "etc", "var", "var/kept"]);
    }
}
