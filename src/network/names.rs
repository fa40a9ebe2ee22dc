//! Names of the kernel objects berth creates, derived from ids.
//!
//! Interface names are limited to IFNAMSIZ-1 = 15 bytes (see
//! `include/uapi/linux/if.h`), so they are short prefixes plus a hash of the
//! ids they belong to: unique per network / (container, network) pair and the
//! same every time they are derived, so cleanup never needs a lookup table.
//!
//! Every state root other than the default one gets its own nft table and
//! default bridge name (suffixed with a hash of the root's path), so parallel
//! berth roots (tests, several users) never touch each other's objects.

use sha2::{Digest, Sha256};
use std::path::Path;

use crate::state::DEFAULT_ROOT;

/// Linux's IFNAMSIZ minus the terminating NUL.
pub const MAX_IFNAME: usize = 15;

/// A random 64-hex-digit id (Docker's id shape).
pub fn random_id() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

fn short_hash(parts: &[&str], len: usize) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())[..len].to_string()
}

/// A tag identifying a state root: empty for the default root.
pub fn root_tag(root: &Path) -> String {
    if root == Path::new(DEFAULT_ROOT) {
        String::new()
    } else {
        short_hash(&[&root.to_string_lossy()], 6)
    }
}

/// berth's nft table name for a state root: `berth` or `berth_<tag>`.
pub fn nft_table(root: &Path) -> String {
    match root_tag(root) {
        t if t.is_empty() => "berth".into(),
        t => format!("berth_{t}"),
    }
}

/// Bridge of the default network: `berth0` or `berth<tag>` for other roots.
pub fn default_bridge(root: &Path) -> String {
    match root_tag(root) {
        t if t.is_empty() => "berth0".into(),
        t => format!("berth{t}"),
    }
}

/// Bridge of a user network: `br-` and 12 hex digits of its id (as Docker).
pub fn bridge_for(network_id: &str) -> String {
    format!("br-{}", &network_id[..12.min(network_id.len())])
}

/// Host end of a container's veth on a network: `bv` and 12 hex digits.
pub fn host_veth(container_id: &str, network_id: &str) -> String {
    format!("bv{}", short_hash(&[container_id, network_id], 12))
}

/// Whether `name` is a valid Linux interface name.
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_IFNAME
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0)
}

/// Whether `name` is a valid network or alias name (Docker's rule).
pub fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
        && name.len() <= 128
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_ifnamsiz_and_are_stable() {
        let id = random_id();
        let c = random_id();
        for n in [
            bridge_for(&id),
            host_veth(&c, &id),
            default_bridge(Path::new("/tmp/x")),
            default_bridge(Path::new(DEFAULT_ROOT)),
        ] {
            assert!(valid_ifname(&n), "{n}");
        }
        assert_eq!(host_veth(&c, &id), host_veth(&c, &id));
        assert_ne!(host_veth(&c, &id), host_veth(&id, &c));
        assert_eq!(nft_table(Path::new(DEFAULT_ROOT)), "berth");
        assert_ne!(nft_table(Path::new("/a")), nft_table(Path::new("/b")));
    }

    #[test]
    fn name_rules() {
        for ok in ["web", "a", "my_net.1-x", "9lives"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "-x", ".x", "a b", "a/b", "é"] {
            assert!(!valid_name(bad), "{bad}");
        }
        for bad in ["", "a234567890123456", "a/b", "a b", "..", "a:b"] {
            assert!(!valid_ifname(bad), "{bad}");
        }
    }
}
