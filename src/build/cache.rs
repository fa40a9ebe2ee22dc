//! The build cache: which image a build step made, by the step's inputs.
//!
//! As in Docker's builders, a step is identified by a key that hashes
//! everything its result depends on: the image it starts from (the parent
//! step's image id), the instruction as expanded and, for `COPY`/`ADD`, the
//! content digest of the files it copies (paths, modes, owners, contents;
//! see [`super::context`]) and of its expanded here-documents. Build
//! arguments count where they are used, not where they are declared
//! (<https://docs.docker.com/reference/dockerfile/#impact-on-build-caching>):
//! a `RUN` sees every ARG in scope as an environment variable, so the
//! values of all of them (but those an ENV of the same name hides) are in
//! its key; any other step sees an ARG only through its expanded words,
//! already in the instruction, so its key has no args. `RUN` adds nothing
//! more: its result is assumed to depend only on those. A rebuild therefore
//! reruns exactly the steps whose inputs changed and every step after them
//! (their parent id changes). The key also holds [`BUILDER_VERSION`], so a
//! berth that builds differently from the same inputs does not reuse an
//! older one's results.
//!
//! The index is one small file per key, `ROOT/build-cache/<key>`, holding
//! the image id; written atomically; an entry is valid only while its image
//! is still in the store (the caller checks).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::image::digest::Digest;
use crate::state::{self, StateError};

/// Errors reading or writing the cache index.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("build cache entry {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    State(#[from] StateError),
}

/// What a step's result depends on.
#[derive(Debug, Clone, Default)]
pub struct StepInputs<'a> {
    /// The image the step starts from (`None` for `FROM scratch`).
    pub parent: Option<&'a Digest>,
    /// The instruction after variable expansion.
    pub instruction: &'a str,
    /// The build arguments the step sees and their values (for `RUN`: the
    /// ARGs in scope; empty for other steps).
    pub args: BTreeMap<String, String>,
    /// For `COPY`/`ADD`: the digest of the selected sources.
    pub content: Option<&'a str>,
}

/// The version of what a step makes from its inputs (see [`key`]).
pub const BUILDER_VERSION: &str = "2";

/// The key of a step: sha256 over its inputs, each length-prefixed so that
/// no two different input sets hash the same bytes.
pub fn key(inputs: &StepInputs) -> String {
    let mut h = Sha256::new();
    let mut field = |tag: &str, v: &str| {
        h.update(tag.as_bytes());
        h.update((v.len() as u64).to_le_bytes());
        h.update(v.as_bytes());
    };
    // What the builder makes of the same inputs: bumped when that changes
    // (2: default PATH, RUN layers without mount stubs, hardlinks, owners
    // kept by COPY --from), so entries of an older berth are not reused.
    field("builder", BUILDER_VERSION);
    field(
        "parent",
        &inputs.parent.map(|d| d.to_string()).unwrap_or_default(),
    );
    field("instruction", inputs.instruction);
    for (k, v) in &inputs.args {
        field("arg-name", k);
        field("arg-value", v);
    }
    field("content", inputs.content.unwrap_or(""));
    hex::encode(h.finalize())
}

/// The cache index under the state root.
#[derive(Debug, Clone)]
pub struct CacheIndex {
    dir: PathBuf,
}

impl CacheIndex {
    /// The index in `dir` (`ROOT/build-cache`), created if missing.
    pub fn open(dir: &Path) -> Result<Self, CacheError> {
        std::fs::create_dir_all(dir).map_err(|source| CacheError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// The image id recorded for `key`, if any.
    pub fn get(&self, key: &str) -> Option<Digest> {
        let text = std::fs::read_to_string(self.dir.join(key)).ok()?;
        Digest::parse(text.trim()).ok()
    }

    /// Records that `key` made image `id`.
    pub fn put(&self, key: &str, id: &Digest) -> Result<(), CacheError> {
        state::write_atomic(&self.dir.join(key), id.to_string().as_bytes())?;
        Ok(())
    }

    /// Every entry: (key, the image id it names, if it still parses).
    pub fn entries(&self) -> Result<Vec<(String, Option<Digest>)>, CacheError> {
        let io = |source| CacheError::Io {
            path: self.dir.clone(),
            source,
        };
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir).map_err(io)? {
            let name = e.map_err(io)?.file_name().to_string_lossy().into_owned();
            // Keys are 64 hex digits; anything else is a temp file of a
            // write in progress.
            if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
                let id = self.get(&name);
                out.push((name, id));
            }
        }
        Ok(out)
    }

    /// Forgets `key` (a missing entry is not an error).
    pub fn remove(&self, key: &str) -> Result<(), CacheError> {
        match std::fs::remove_file(self.dir.join(key)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(CacheError::Io {
                path: self.dir.join(key),
                source: e,
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(c: char) -> Digest {
        Digest::from_hex(&c.to_string().repeat(64)).unwrap()
    }

    #[test]
    fn every_input_changes_the_key() {
        let p = digest('a');
        let base = StepInputs {
            parent: Some(&p),
            instruction: "RUN echo hi",
            args: BTreeMap::from([("V".into(), "1".into())]),
            content: None,
        };
        let k = key(&base);
        assert_eq!(k, key(&base.clone()), "the key is deterministic");
        let q = digest('b');
        let variants = [
            StepInputs {
                parent: Some(&q),
                ..base.clone()
            },
            StepInputs {
                parent: None,
                ..base.clone()
            },
            StepInputs {
                instruction: "RUN echo ho",
                ..base.clone()
            },
            StepInputs {
                args: BTreeMap::from([("V".into(), "2".into())]),
                ..base.clone()
            },
            StepInputs {
                args: BTreeMap::new(),
                ..base.clone()
            },
            StepInputs {
                content: Some("sha256:00"),
                ..base.clone()
            },
        ];
        for v in &variants {
            assert_ne!(key(v), k, "{v:?}");
        }
    }

    #[test]
    fn fields_do_not_run_together() {
        let a = StepInputs {
            instruction: "RUN a",
            args: BTreeMap::from([("B".into(), "".into())]),
            ..Default::default()
        };
        let b = StepInputs {
            instruction: "RUN aB",
            args: BTreeMap::new(),
            ..Default::default()
        };
        assert_ne!(key(&a), key(&b));
    }

    #[test]
    fn index_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let idx = CacheIndex::open(&d.path().join("build-cache")).unwrap();
        assert_eq!(idx.get("k"), None);
        idx.put("k", &digest('c')).unwrap();
        assert_eq!(idx.get("k"), Some(digest('c')));
        idx.put("k", &digest('d')).unwrap();
        assert_eq!(idx.get("k"), Some(digest('d')));
    }

    #[test]
    fn entries_lists_keys_and_remove_forgets_them() {
        let d = tempfile::tempdir().unwrap();
        let idx = CacheIndex::open(&d.path().join("build-cache")).unwrap();
        let (k1, k2) = ("1".repeat(64), "2".repeat(64));
        idx.put(&k1, &digest('c')).unwrap();
        idx.put(&k2, &digest('d')).unwrap();
        std::fs::write(d.path().join("build-cache/.tmp-partial"), "x").unwrap();
        let mut got = idx.entries().unwrap();
        got.sort();
        assert_eq!(
            got,
            vec![
                (k1.clone(), Some(digest('c'))),
                (k2.clone(), Some(digest('d')))
            ]
        );
        idx.remove(&k1).unwrap();
        idx.remove(&k1).unwrap();
        assert_eq!(idx.entries().unwrap(), vec![(k2, Some(digest('d')))]);
    }
}
