//! The caller's side of a container's stdio: the local terminal (raw
//! mode, window size, ctrl-p ctrl-q, signal proxying) and the relays that
//! connect it to a container — an attach session over the supervisor's
//! socket ([attach]), `exec`'s pipes ([pipes]) and `exec -t`'s pty ([pty]).
//!
//! The engine hands out the streams (an attach socket, a prepared exec);
//! these relays copy them to our own stdin/stdout/stderr. A caller that is
//! not a terminal user (an API server) would copy the same streams to its
//! connection instead.

pub mod attach;
pub mod pipes;
pub mod pty;
