//! Ctrl-C (SIGINT) and SIGTERM for the commands that finish their work
//! before leaving: `build` (stops before its next step and removes its
//! build container), foreground `up` (stops the project), `watch` (ends
//! after the current batch, stopping a rebuild).
//!
//! The handler only sets [`INTERRUPTED`] (async-signal-safe, see
//! signal-safety(7)); the command polls it. `SA_RESTART` keeps blocking
//! reads and waits from failing with EINTR.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set once SIGINT or SIGTERM arrived (after [`catch`]).
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// From now on, SIGINT and SIGTERM set [`INTERRUPTED`] instead of ending
/// the process.
pub fn catch() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for s in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe).
        let _ = unsafe { sigaction(s, &action) };
    }
}

/// Whether SIGINT or SIGTERM arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}
