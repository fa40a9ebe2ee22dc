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
//! modes, times, symlinks, hard links within the layer, xattrs aside).

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
    let mut builder = tar::Builder::new(out);
    builder.follow_symlinks(false);
    let mut count = 0;
    let mut stack = vec![upper.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .map_err(io(&dir))?
            .filter_map(|e| e.ok())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let rel = path.strip_prefix(upper).unwrap_or(&path).to_path_buf();
            let meta = std::fs::symlink_metadata(&path).map_err(io(&path))?;
            let ft = meta.file_type();
            if ft.is_char_device() && meta.rdev() == 0 {
                // overlay whiteout: deleted file.
                let name = rel.file_name().unwrap_or_default().to_string_lossy();
                let wh = rel.with_file_name(format!(".wh.{name}"));
                let mut h = empty_entry(meta.mtime().max(0) as u64);
                builder
                    .append_data(&mut h, &wh, std::io::empty())
                    .map_err(io(&path))?;
                count += 1;
                continue;
            }
            builder
                .append_path_with_name(&path, &rel)
                .map_err(io(&path))?;
            count += 1;
            if ft.is_dir() {
                if is_opaque(&path) {
                    let mut h = empty_entry(meta.mtime().max(0) as u64);
                    builder
                        .append_data(&mut h, rel.join(".wh..wh..opq"), std::io::empty())
                        .map_err(io(&path))?;
                    count += 1;
                }
                stack.push(path);
            }
        }
    }
    builder.finish().map_err(io(upper))?;
    Ok(count)
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
}
