//! Data-driven tests of the Dockerfile parser.
//!
//! Each directory under `tests/dockerfiles/ok/` and `tests/dockerfiles/bad/`
//! is one case holding a `Dockerfile`. An ok case's parsed tree, rendered
//! with `{:#?}`, must equal `expected.txt`; a bad case's error
//! (`line L:C: message`) must equal `expected.txt`.
//! `BERTH_BLESS=1 cargo test --lib build::dockerfile::tests` rewrites the
//! expectations.

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};

use super::parse;

fn case_dirs(kind: &str) -> Vec<PathBuf> {
    crate::golden::case_dirs("dockerfiles", kind)
}

fn read_dockerfile(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("Dockerfile"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

fn check(dir: &Path, actual: String, failures: &mut Vec<String>) {
    crate::golden::check(&dir.join("expected.txt"), actual, failures);
}

#[test]
fn dockerfiles_parse_to_expected_trees() {
    let dirs = case_dirs("ok");
    assert!(dirs.len() >= 10, "too few ok cases");
    let mut failures = Vec::new();
    for dir in dirs {
        match parse(&read_dockerfile(&dir)) {
            Ok(tree) => check(&dir, format!("{tree:#?}\n"), &mut failures),
            Err(e) => failures.push(format!("{}: unexpected error: {e}", dir.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn malformed_dockerfiles_give_located_errors() {
    let dirs = case_dirs("bad");
    assert!(
        dirs.len() >= 12,
        "the malformed corpus needs at least 12 cases"
    );
    let mut failures = Vec::new();
    for dir in dirs {
        match parse(&read_dockerfile(&dir)) {
            Ok(tree) => failures.push(format!("{}: parsed: {tree:?}", dir.display())),
            Err(e) => check(&dir, format!("{e}\n"), &mut failures),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Every prefix of every case, and random bytes, must give a result
/// (tree or error), never a panic.
#[test]
fn parse_never_panics() {
    let mut count = 0usize;
    for kind in ["ok", "bad"] {
        for dir in case_dirs(kind) {
            let text = read_dockerfile(&dir);
            for (i, _) in text.char_indices() {
                let _ = parse(&text[..i]);
                count += 1;
            }
        }
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let alphabet =
        b"FROM RUN COPY <<-EOF\n\\`#=\"'[]{}$:-,.\t escape= AS --from=x ONBUILD HEALTHCHECK";
    for _ in 0..2000 {
        let len = rng.gen_range(0..200);
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                if rng.gen_bool(0.8) {
                    alphabet[rng.gen_range(0..alphabet.len())]
                } else {
                    rng.gen()
                }
            })
            .collect();
        let _ = parse(&String::from_utf8_lossy(&bytes));
        count += 1;
    }
    assert!(count > 2000);
}
