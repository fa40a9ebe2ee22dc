//! Running a network tool with a script on its standard input (`nft -f -`,
//! `iptables-restore`): one process applies a whole batch as one
//! transaction, instead of one process per rule.

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Runs `program ARGS` with `script` on stdin; its stdout is discarded and
/// its stderr captured in the returned output.
pub fn feed(program: &str, args: &[&str], script: &str) -> std::io::Result<Output> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let written = child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(script.as_bytes());
    // Wait even when the write failed (the tool exited early): no zombie.
    let out = child.wait_with_output()?;
    written?;
    Ok(out)
}
