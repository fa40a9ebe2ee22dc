//! Protection of the host binary (CVE-2019-5736).
//!
//! A process that berth forks into a container is berth until it execs the
//! container's command; meanwhile (and for the supervisor, for ever) its
//! `/proc/<pid>/exe` is visible from inside the container, and a container
//! process that opens it for writing could replace the host's berth binary.
//! Commands that fork into containers therefore first re-execute berth from a
//! sealed memfd copy (the `pentacle` crate: memfd_create(2) with
//! F_SEAL_WRITE/SHRINK/GROW/SEAL), so `/proc/<pid>/exe` is an immutable
//! anonymous file rather than the host binary.

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

/// Re-executes from a sealed copy when this invocation needs it (no-op when
/// already sealed).
pub fn ensure_sealed_if_needed() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if needs_seal(&args) {
        pentacle::ensure_sealed()?;
    }
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
