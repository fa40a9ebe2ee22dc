//! Protection of the host binary (CVE-2019-5736).
//!
//! A process that berth forks into a container is berth until it execs the
//! container's command; meanwhile (and for the supervisor, for ever) its
//! `/proc/<pid>/exe` is visible from inside the container, and a container
//! process that opens it for writing could replace the host's berth binary.
//! Commands that fork into containers therefore first re-execute berth from
//! an immutable view of itself, as runc 1.2 does: preferably the binary seen
//! through a read-only overlayfs mount that is detached right after opening
//! it (no copy, so page-cache pages stay shared and the supervisor's resident
//! memory small; writes through `/proc/<pid>/exe` fail with EROFS and the
//! detached mount cannot be reached to remount it), otherwise a sealed memfd
//! copy (the `pentacle` crate: memfd_create(2) with
//! F_SEAL_WRITE/SHRINK/GROW/SEAL).

/// Subcommands that fork into containers (or become a supervisor).
const SEALED_COMMANDS: &[&str] = &["__supervise", "exec", "oci"];

/// The first positional argument (the subcommand), skipping global options.
pub fn subcommand(args: &[String]) -> Option<&str> {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--root" | "--log-level" => {
                it.next();
            }
            s if s.starts_with('-') => {}
            s => return Some(s),
        }
    }
    None
}

/// Whether this invocation must run from a sealed copy.
pub fn needs_seal(args: &[String]) -> bool {
    subcommand(args).is_some_and(|c| SEALED_COMMANDS.contains(&c))
}

/// Set across the re-exec so a failed read-only view cannot loop.
const REEXEC_ENV: &str = "_BERTH_RO_REEXEC";

/// Whether the running binary cannot be written through /proc/self/exe.
pub fn is_protected() -> bool {
    if pentacle::is_sealed() {
        return true;
    }
    nix::sys::statvfs::statvfs("/proc/self/exe")
        .map(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
        .unwrap_or(false)
}

/// Re-executes from a protected view when this invocation needs it (no-op
/// when already protected).
pub fn ensure_sealed_if_needed() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if !needs_seal(&args) || is_protected() {
        std::env::remove_var(REEXEC_ENV);
        return Ok(());
    }
    if std::env::var_os(REEXEC_ENV).is_none() {
        std::env::set_var(REEXEC_ENV, "1");
        // Only returns on failure; fall back to the memfd copy then.
        let _ = exec_from_readonly_overlay(&args);
    }
    std::env::remove_var(REEXEC_ENV);
    pentacle::ensure_sealed()
}

/// Opens the running binary through a read-only overlayfs view of its
/// directory whose mount is detached at once: the returned file can be
/// executed (`fexecve`, or `/proc/self/fd/N`) and nobody can write through it.
pub fn open_readonly_view() -> std::io::Result<std::fs::File> {
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    let exe = std::fs::read_link("/proc/self/exe")?;
    let (Some(dir), Some(name)) = (exe.parent(), exe.file_name()) else {
        return Err(std::io::Error::other("binary path has no directory"));
    };
    let dir_s = dir.to_string_lossy();
    if dir_s.contains([',', ':', '\\']) {
        return Err(std::io::Error::other(
            "binary directory unusable in overlay options",
        ));
    }
    // overlayfs without an upper dir needs two distinct lower dirs.
    let view = tempfile::Builder::new().prefix(".berth-exe-").tempdir()?;
    let empty = view.path().join("empty");
    let target = view.path().join("mnt");
    std::fs::create_dir(&empty)?;
    std::fs::create_dir(&target)?;
    let options = format!("lowerdir={dir_s}:{}", empty.display());
    mount(
        Some("overlay"),
        &target,
        Some("overlay"),
        MsFlags::MS_RDONLY | MsFlags::MS_NODEV | MsFlags::MS_NOSUID,
        Some(options.as_str()),
    )?;
    let file = std::fs::File::open(target.join(name));
    let _ = umount2(&target, MntFlags::MNT_DETACH);
    file
}

/// Execs this program again from [`open_readonly_view`].
fn exec_from_readonly_overlay(args: &[String]) -> std::io::Result<()> {
    use std::ffi::CString;
    let file = open_readonly_view()?;
    let argv: Vec<CString> = args
        .iter()
        .filter_map(|a| CString::new(a.as_bytes()).ok())
        .collect();
    let envp: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.into_encoded_bytes();
            kv.push(b'=');
            kv.extend(v.into_encoded_bytes());
            CString::new(kv).ok()
        })
        .collect();
    nix::unistd::fexecve(std::os::fd::AsRawFd::as_raw_fd(&file), &argv, &envp)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn which_commands_are_sealed() {
        assert!(needs_seal(&v("berth __supervise abc")));
        assert!(needs_seal(&v("berth --root /x -v exec c sh")));
        assert!(needs_seal(&v("berth --log-level debug oci run x")));
        assert!(!needs_seal(&v("berth run busybox exec")));
        assert!(!needs_seal(&v("berth --root exec ps")));
        assert!(!needs_seal(&v("berth")));
    }
}
