//! `--init`: a minimal init for PID 1 inside the container (`berth __init -- CMD`).
//!
//! PID 1 of a pid namespace gets no default signal handlers and inherits
//! every orphan (pid_namespaces(7)); most programs are not written for that.
//! Like Docker's tini, this runs the command as a child, forwards the
//! signals it receives to it, reaps zombies, and exits with the child's code
//! (128+N for a signal).

use std::ffi::CString;

use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{execvp, fork, ForkResult, Pid};

/// Runs `args` as the child and returns the exit code to exit with.
pub fn run(args: &[String]) -> i32 {
    let Some(first) = args.first() else {
        eprintln!("berth-init: no command given");
        return 127;
    };
    let mut all = SigSet::all();
    all.remove(Signal::SIGSEGV);
    all.remove(Signal::SIGBUS);
    all.remove(Signal::SIGILL);
    all.remove(Signal::SIGFPE);
    let old = SigSet::thread_get_mask().unwrap_or_else(|_| SigSet::empty());
    let _ = all.thread_block();
    // SAFETY: the child only execs (or exits).
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let _ = old.thread_set_mask();
            let cargs: Vec<CString> = args
                .iter()
                .filter_map(|a| CString::new(a.as_bytes()).ok())
                .collect();
            let Ok(prog) = CString::new(first.as_bytes()) else {
                std::process::exit(127)
            };
            let err = execvp(&prog, &cargs).unwrap_err();
            eprintln!("berth-init: exec {first}: {err}");
            std::process::exit(if err == nix::Error::ENOENT { 127 } else { 126 });
        }
        Ok(ForkResult::Parent { child }) => supervise(child, &all),
        Err(e) => {
            eprintln!("berth-init: fork: {e}");
            125
        }
    }
}

fn supervise(child: Pid, set: &SigSet) -> i32 {
    loop {
        match set.wait() {
            Ok(Signal::SIGCHLD) => loop {
                match waitpid(
                    Pid::from_raw(-1),
                    Some(nix::sys::wait::WaitPidFlag::WNOHANG),
                ) {
                    Ok(WaitStatus::Exited(pid, code)) if pid == child => return code,
                    Ok(WaitStatus::Signaled(pid, sig, _)) if pid == child => {
                        return 128 + sig as i32
                    }
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(_) => {}
                }
            },
            Ok(sig) => {
                let _ = kill(child, sig);
            }
            Err(_) => {}
        }
    }
}
