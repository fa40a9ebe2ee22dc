//! Helpers for data-driven (golden-file) unit tests: case directories under
//! `tests/<corpus>/{ok,bad}/`, and comparing output with an expectation file
//! that `BERTH_BLESS=1` rewrites instead.

use std::path::{Path, PathBuf};

/// The case directories of `tests/<corpus>/<kind>`, sorted.
pub fn case_dirs(corpus: &str, kind: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(corpus)
        .join(kind);
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// Compares `actual` with the file at `path` (or, with `BERTH_BLESS` set,
/// writes it there); a difference is added to `failures`.
pub fn check(path: &Path, actual: String, failures: &mut Vec<String>) {
    if std::env::var_os("BERTH_BLESS").is_some() {
        std::fs::write(path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    if expected != actual {
        failures.push(format!(
            "{}:\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        ));
    }
}
