//! Forgetting a removed container's connections.
//!
//! Published ports are DNAT rules, and the kernel's connection tracker
//! (netfilter conntrack) remembers each translated connection until it
//! times out. When a container goes away, its entries stay: on loopback the
//! kernel may reuse a source port still in TIME_WAIT (`tcp_tw_reuse`), and
//! such a new connection follows the stale entry to the old container's
//! address and hangs until it times out (minutes). Docker deletes these
//! entries when it unmaps a port; berth does the same when a container is
//! unplugged, with Debian's `conntrack` tool (conntrack-tools): the entries
//! whose reply comes from the container's address are exactly the
//! connections DNAT translated to it. (Its own outbound connections are
//! harmless once it is gone: nothing new can match them.)
//!
//! See conntrack(8) and
//! <https://www.netfilter.org/projects/conntrack-tools/manpage.html>.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

/// Deletes the conntrack entries of connections translated to `addr`.
/// Absent entries are not an error; neither is a host without the
/// `conntrack` tool, where stale entries simply expire (logged, since a
/// reused source port may then stall until they do).
pub fn forget(addr: Ipv4Addr) {
    let status = Command::new("conntrack")
        .args(["-D", "-f", "ipv4", "--reply-src", &addr.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if let Err(e) = status {
        tracing::info!(
            "cannot clear connection tracking entries of {addr} ({e}); \
             install conntrack so that a recreated container's published ports answer at once"
        );
    }
}
