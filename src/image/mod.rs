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
pub mod reference;
pub mod store;

pub use digest::{Digest, DigestReader, DigestWriter};
pub use reference::{Reference, ReferenceError};
pub use store::{Image, ImageStore, StoreError};
