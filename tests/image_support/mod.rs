//! Helpers for the image tests: hand-made tar entries (including hostile
//! ones the `tar` crate's safe API refuses to write), OCI JSON Schema
//! validation, and snapshots of a state root to show it did not change.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Builds a tar stream entry by entry, writing names verbatim.
pub struct RawTar {
    pub b: tar::Builder<Vec<u8>>,
}

impl Default for RawTar {
    fn default() -> Self {
        Self::new()
    }
}

impl RawTar {
    pub fn new() -> Self {
        Self {
            b: tar::Builder::new(Vec::new()),
        }
    }

    fn header(name: &str, kind: tar::EntryType, size: u64, link: Option<&str>) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        {
            let gnu = h.as_gnu_mut().unwrap();
            assert!(name.len() < 100, "test names stay short");
            gnu.name = [0; 100];
            gnu.name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(l) = link {
                gnu.linkname = [0; 100];
                gnu.linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
        }
        h.set_cksum();
        h
    }

    pub fn file(mut self, name: &str, data: &[u8]) -> Self {
        let h = Self::header(name, tar::EntryType::Regular, data.len() as u64, None);
        self.b.append(&h, data).unwrap();
        self
    }

    /// A file with explicit owner, mode and mtime.
    pub fn file_with(
        mut self,
        name: &str,
        data: &[u8],
        uid: u64,
        gid: u64,
        mode: u32,
        mtime: u64,
    ) -> Self {
        let mut h = Self::header(name, tar::EntryType::Regular, data.len() as u64, None);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mode(mode);
        h.set_mtime(mtime);
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    pub fn dir(mut self, name: &str) -> Self {
        let h = Self::header(name, tar::EntryType::Directory, 0, None);
        self.b.append(&h, std::io::empty()).unwrap();
        self
    }

    pub fn dir_with(mut self, name: &str, uid: u64, gid: u64, mode: u32, mtime: u64) -> Self {
        let mut h = Self::header(name, tar::EntryType::Directory, 0, None);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mode(mode);
        h.set_mtime(mtime);
        h.set_cksum();
        self.b.append(&h, std::io::empty()).unwrap();
        self
    }

    pub fn symlink(mut self, name: &str, target: &str) -> Self {
        let h = Self::header(name, tar::EntryType::Symlink, 0, Some(target));
        self.b.append(&h, std::io::empty()).unwrap();
        self
    }

    pub fn hardlink(mut self, name: &str, target: &str) -> Self {
        let h = Self::header(name, tar::EntryType::Link, 0, Some(target));
        self.b.append(&h, std::io::empty()).unwrap();
        self
    }

    pub fn device(mut self, name: &str, kind: tar::EntryType, major: u32, minor: u32) -> Self {
        let mut h = Self::header(name, kind, 0, None);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        h.set_mode(0o666);
        h.set_cksum();
        self.b.append(&h, std::io::empty()).unwrap();
        self
    }

    /// A PAX extended header applying to the next entry.
    pub fn pax(mut self, records: &[(&str, &[u8])]) -> Self {
        let mut data = Vec::new();
        for (k, v) in records {
            let body_len = 1 + k.len() + 1 + v.len() + 1;
            let mut len = body_len + 1;
            while len != body_len + len.to_string().len() {
                len = body_len + len.to_string().len();
            }
            data.extend_from_slice(format!("{len} {k}=").as_bytes());
            data.extend_from_slice(v);
            data.push(b'\n');
        }
        let h = Self::header(
            "PaxHeader",
            tar::EntryType::XHeader,
            data.len() as u64,
            None,
        );
        self.b.append(&h, &data[..]).unwrap();
        self
    }

    pub fn finish(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn sha256(data: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// Every path under `dir` with its type, size and (for files) content hash.
pub fn listing(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            let md = p.symlink_metadata().unwrap();
            let desc = if md.is_dir() {
                stack.push(p.clone());
                "dir".to_string()
            } else if md.file_type().is_symlink() {
                format!("link -> {}", std::fs::read_link(&p).unwrap().display())
            } else if md.is_file() {
                format!(
                    "file {} {}",
                    md.len(),
                    sha256(&std::fs::read(&p).unwrap_or_default())
                )
            } else {
                // Devices and fifos: never read them.
                use std::os::unix::fs::MetadataExt;
                format!("special {:o} {}", md.mode(), md.rdev())
            };
            out.insert(rel, desc);
        }
    }
    out
}

/// The state root minus the lock file: what must not change after a failure.
pub fn store_listing(root: &Path) -> BTreeMap<String, String> {
    let mut l = listing(root);
    l.remove("lock");
    l
}

/// Asserts `ROOT/tmp` is empty.
pub fn assert_tmp_empty(root: &Path) {
    let tmp = root.join("tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in {}: {left:?}", tmp.display());
}

pub fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oci-schema")
}

/// Resolves the schemas' `$ref`s to the copies in tests/fixtures/oci-schema
/// by file name (they are written relative to varying `id`s).
struct LocalSchemas;

impl jsonschema::Retrieve for LocalSchemas {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<&str>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let path = uri.path().as_str();
        let name = path.rsplit('/').next().unwrap_or(path);
        let file = schema_dir().join(name);
        load_schema(&file)
    }
}

/// Reads a schema and drops its draft-04 `id`s: the spec's files re-base
/// their `$ref`s with nested ids (`…/descriptor/mediaType`) that do not
/// resolve offline; without them every `$ref` is relative to the file it is
/// in, which is how the files sit side by side.
fn load_schema(file: &Path) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                if m.get("id").is_some_and(Value::is_string) {
                    m.remove("id");
                }
                m.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let data = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut v: Value = serde_json::from_slice(&data)?;
    strip(&mut v);
    Ok(v)
}

/// Validates `doc` against one of the OCI schemas (file name), panicking
/// with every error found.
pub fn validate(schema_file: &str, doc: &Value) {
    let mut schema = load_schema(&schema_dir().join(schema_file)).unwrap();
    schema["id"] = Value::String(format!("file:///oci-schema/{schema_file}"));
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .with_retriever(LocalSchemas)
        .build(&schema)
        .unwrap_or_else(|e| panic!("schema {schema_file}: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{schema_file} rejects {doc}:\n{}",
        errors.join("\n")
    );
}
