//! Saying which device is full. An `ENOSPC` from deep inside a write is
//! reported as `no space left on DEVICE (PATH)` — the device found from
//! the mount table (the longest mount point that holds PATH) — so the user
//! knows what to free, instead of whatever the caller was doing when it hit
//! the error (e.g. "not a tar archive").

use std::path::Path;

/// Whether `e` is "no space left on device" (or a quota exceeded).
pub fn is_no_space(e: &std::io::Error) -> bool {
    // (Wrapped errors, like tempfile's "… at path …", keep the kind only.)
    e.kind() == std::io::ErrorKind::StorageFull
        || matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// The mount source (device) of the filesystem holding `path`.
pub fn device_of(path: &Path) -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let path = path.to_string_lossy();
    let mut best: Option<(usize, String)> = None;
    for line in info.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let point = fields.get(4)?.replace("\\040", " ");
        let under = path == point.as_str()
            || point == "/"
            || path.starts_with(&format!("{}/", point.trim_end_matches('/')));
        // After the optional fields: " - FSTYPE SOURCE OPTIONS".
        let dash = fields.iter().position(|f| *f == "-")?;
        let source = fields.get(dash + 2)?.to_string();
        if under && best.as_ref().is_none_or(|(len, _)| point.len() >= *len) {
            best = Some((point.len(), source));
        }
    }
    best.map(|(_, s)| s)
}

/// `e` as a user should read it: `no space left on DEVICE (PATH)` when
/// the disk is full, else the error itself.
pub fn describe_io(e: &std::io::Error, path: &Path) -> String {
    if is_no_space(e) {
        let device = device_of(path).unwrap_or_else(|| "device".into());
        format!("no space left on {device} ({})", path.display())
    } else {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_names_its_device_and_path() {
        let e = std::io::Error::from_raw_os_error(libc::ENOSPC);
        let msg = describe_io(&e, Path::new("/proc/self/status"));
        assert_eq!(msg, "no space left on proc (/proc/self/status)");
        let other = std::io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(describe_io(&other, Path::new("/x")), other.to_string());
        assert!(device_of(Path::new("/")).is_some());
    }
}
