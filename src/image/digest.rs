//! Content digests: `sha256:<64 lower-case hex>`, as the OCI image spec
//! defines them (<https://github.com/opencontainers/image-spec/blob/main/descriptor.md#digests>).
//!
//! berth addresses every blob by its SHA-256 digest; other registered
//! algorithms (`sha512`) parse as *unsupported* rather than malformed, so the
//! user learns why. [`DigestReader`] and [`DigestWriter`] hash and count bytes
//! as they stream, so nothing has to be held in memory to be verified.

use std::fmt;
use std::io::{Read, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// Errors from parsing a digest string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("unsupported digest algorithm {0:?} in {1:?}: berth supports only sha256")]
    Unsupported(String, String),
    #[error("invalid digest {0:?}: expected sha256:<64 lower-case hex characters>")]
    Malformed(String),
}

/// A validated `sha256:<hex>` digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// Parses `sha256:<64 hex>`.
    pub fn parse(s: &str) -> Result<Self, DigestError> {
        let Some((algo, hex)) = s.split_once(':') else {
            return Err(DigestError::Malformed(s.to_string()));
        };
        match algo {
            "sha256" => {
                if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                    Ok(Self {
                        hex: hex.to_string(),
                    })
                } else {
                    Err(DigestError::Malformed(s.to_string()))
                }
            }
            "sha384" | "sha512" | "blake3" => {
                if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Err(DigestError::Unsupported(algo.to_string(), s.to_string()))
                } else {
                    Err(DigestError::Malformed(s.to_string()))
                }
            }
            _ => Err(DigestError::Malformed(s.to_string())),
        }
    }

    /// Builds a digest from 64 hex characters (no algorithm prefix).
    pub fn from_hex(hex: &str) -> Result<Self, DigestError> {
        Self::parse(&format!("sha256:{hex}"))
    }

    /// The SHA-256 digest of `data`.
    pub fn of_bytes(data: &[u8]) -> Self {
        Self::from_hasher(Sha256::new_with_prefix(data))
    }

    fn from_hasher(h: Sha256) -> Self {
        Self {
            hex: hex::encode(h.finalize()),
        }
    }

    /// The 64 hex characters.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The algorithm, always `sha256`.
    pub fn algorithm(&self) -> &'static str {
        "sha256"
    }

    /// The first 12 hex characters: Docker's short image id.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }

    /// The digest as oci-spec's type, for descriptors.
    pub fn to_oci(&self) -> oci_spec::image::Digest {
        oci_spec::image::Digest::from_str(&self.to_string()).expect("a sha256 digest is valid")
    }

    /// Converts oci-spec's digest (any algorithm) into a berth digest.
    pub fn from_oci(d: &oci_spec::image::Digest) -> Result<Self, DigestError> {
        Self::parse(d.as_ref())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest(sha256:{})", self.hex)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A reader that hashes and counts everything read through it.
pub struct DigestReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> DigestReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The digest and size of everything read.
    pub fn finish(self) -> (Digest, u64) {
        (Digest::from_hasher(self.hasher), self.count)
    }

    /// The wrapped reader.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }
}

impl<R: Read> Read for DigestReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A writer that hashes and counts everything written through it.
pub struct DigestWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> DigestWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The digest and size of everything written, and the inner writer.
    pub fn finish(self) -> (Digest, u64, W) {
        (Digest::from_hasher(self.hasher), self.count, self.inner)
    }
}

impl<W: Write> Write for DigestWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_rejects() {
        let cases: &[(&str, Result<(), &str>)] = &[
            (EMPTY, Ok(())),
            ("sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", Err("invalid")),
            ("sha256:abc", Err("invalid")),
            ("sha256:", Err("invalid")),
            ("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", Err("invalid")),
            ("md5:abcd", Err("invalid")),
            ("sha512:", Err("invalid")),
            ("sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e", Err("unsupported")),
        ];
        for (input, want) in cases {
            let got = Digest::parse(input);
            match (want, &got) {
                (Ok(()), Ok(d)) => assert_eq!(&d.to_string(), input),
                (Err(w), Err(e)) => assert!(e.to_string().contains(w), "{input}: {e}"),
                _ => panic!("{input}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn hashes_streams() {
        assert_eq!(Digest::of_bytes(b"").to_string(), EMPTY);
        let mut r = DigestReader::new(&b"hello"[..]);
        std::io::copy(&mut r, &mut std::io::sink()).unwrap();
        let (d, n) = r.finish();
        assert_eq!((d.clone(), n), (Digest::of_bytes(b"hello"), 5));
        assert_eq!(d.short().len(), 12);
        let mut w = DigestWriter::new(Vec::new());
        w.write_all(b"hello").unwrap();
        let (d2, n2, v) = w.finish();
        assert_eq!((d2, n2, v), (d, 5, b"hello".to_vec()));
        let json = serde_json::to_string(&Digest::parse(EMPTY).unwrap()).unwrap();
        assert_eq!(json, format!("\"{EMPTY}\""));
        assert_eq!(
            serde_json::from_str::<Digest>(&json).unwrap().to_string(),
            EMPTY
        );
    }
}
