//! Images: references, digests, the local store (an OCI image layout),
//! layer unpacking, and the archive formats of `save`/`load`/`import`.
//!
//! * [`digest`] — `sha256:` digests and hashing readers/writers;
//! * [`reference`] — Docker's reference grammar and normalisation;
//! * [`layout`] — the OCI layout file formats and media types;
//! * [`store`] — the content-addressed store under `ROOT/images`;
//! * [`layer`] — confined layer unpacking with whiteout conversion.

pub mod archive;
pub mod changes;
pub mod digest;
pub mod import;
pub mod layer;
pub mod layout;
pub mod lease;
pub mod reference;
pub mod store;

pub use digest::{Digest, DigestReader, DigestWriter};
pub use reference::{Reference, ReferenceError};
pub use store::{Image, ImageStore, StoreError};

/// Makes a message from foreign input (tar headers, JSON errors) fit on one
/// printable line: control characters are escaped and it is cut at 200
/// characters.
pub fn one_line(msg: &str) -> String {
    let mut out = String::new();
    for c in msg.chars() {
        if out.chars().count() >= 200 {
            out.push('…');
            break;
        }
        if c.is_control() || c == '\u{fffd}' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}
