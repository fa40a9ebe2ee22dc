//! Fixtures for the tutorial's examples (`examples/redis`, `simpleweb`,
//! `visits`): the stand-in base images that `scripts/base-images.sh` makes
//! under Docker Hub's names, a shared Node base, copies of the examples to
//! edit, and tiny HTTP and redis clients.
//!
//! The Node base is the first two steps of `examples/simpleweb/Dockerfile`
//! (`FROM debian:bookworm-slim` and its `RUN apt-get … nodejs npm`), which
//! take minutes. It is built once per `target/` in a scratch root, saved
//! with `berth save` together with `debian:bookworm-slim`, and loaded into
//! each test's root with `berth load` together with that scratch root's
//! build-cache entries: image ids are config digests, so the loaded images
//! keep their ids and the entries (step key → image id) are valid in the
//! new root. A build of the unchanged example then reports those steps as
//! `Using cache`, exactly as a second build on a user's machine does. The
//! fixture's directory is named after the RUN line, so an edit to it makes
//! a new fixture.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use super::{fixtures_dir, once, TestRoot};

/// The repository's root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The rootfs tarball of a stand-in base image (`busybox:latest`,
/// `debian:bookworm-slim`, `hello-world:latest`), made by
/// `scripts/base-images.sh make` (cached; the script locks).
pub fn base_tar(image: &str) -> PathBuf {
    let file = match image {
        "busybox:latest" => "busybox.tar",
        "debian:bookworm-slim" => "debian-bookworm-slim.tar",
        "hello-world:latest" => "hello-world.tar",
        other => panic!("no stand-in base image {other}"),
    };
    let path = fixtures_dir().join("base-images").join(file);
    if !path.exists() {
        let out = Command::new("bash")
            .arg(repo().join("scripts/base-images.sh"))
            .arg("make")
            .output()
            .expect("running scripts/base-images.sh");
        assert!(
            out.status.success(),
            "scripts/base-images.sh make failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    path
}

/// The config each stand-in image is imported with (as the real one has).
fn base_cmd(image: &str) -> &'static str {
    match image {
        "busybox:latest" => r#"CMD ["sh"]"#,
        "debian:bookworm-slim" => r#"CMD ["bash"]"#,
        _ => r#"CMD ["/hello"]"#,
    }
}

/// Imports a stand-in base image into `root` under its Docker Hub name.
pub fn import_base(root: &TestRoot, image: &str) {
    let tar = base_tar(image);
    root.ok(&[
        "import",
        "-c",
        base_cmd(image),
        tar.to_str().unwrap(),
        image,
    ]);
}

/// The lines of `examples/simpleweb/Dockerfile` up to and including its
/// first `RUN` (comments and blank lines left out).
fn node_base_dockerfile() -> String {
    let text = fs::read_to_string(repo().join("examples/simpleweb/Dockerfile")).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if t.starts_with("RUN ") {
            return out;
        }
    }
    panic!("examples/simpleweb/Dockerfile has no RUN line")
}

/// The Node base fixture: `images.tar` and `build-cache/` (built once).
fn node_base_fixture() -> PathBuf {
    let dockerfile = node_base_dockerfile();
    let hash = hex(&Sha256::digest(dockerfile.as_bytes()))[..12].to_string();
    let dir = fixtures_dir().join(format!("node-base-{hash}"));
    once(&dir, |dir| {
        let staging = dir.with_extension("staging");
        let _ = fs::remove_dir_all(&staging);
        fs::create_dir_all(staging.join("build-cache")).unwrap();
        let root = TestRoot::new();
        import_base(&root, "debian:bookworm-slim");
        let ctx = tempfile::tempdir().unwrap();
        fs::write(ctx.path().join("Dockerfile"), &dockerfile).unwrap();
        root.ok(&[
            "build",
            "-t",
            "berth-fixture/node-base",
            ctx.path().to_str().unwrap(),
        ]);
        let archive = staging.join("images.tar");
        root.ok(&[
            "save",
            "-o",
            archive.to_str().unwrap(),
            "debian:bookworm-slim",
            "berth-fixture/node-base",
        ]);
        for entry in fs::read_dir(root.path().join("build-cache")).unwrap() {
            let entry = entry.unwrap();
            fs::copy(
                entry.path(),
                staging.join("build-cache").join(entry.file_name()),
            )
            .unwrap();
        }
        fs::rename(&staging, dir).unwrap();
    });
    dir
}

/// Loads `debian:bookworm-slim` and the Node base into `root`, with the
/// build-cache entries that make the examples' first steps cached.
pub fn load_node_base(root: &TestRoot) {
    let fixture = node_base_fixture();
    root.ok(&["load", "-i", fixture.join("images.tar").to_str().unwrap()]);
    let cache = root.path().join("build-cache");
    fs::create_dir_all(&cache).unwrap();
    for entry in fs::read_dir(fixture.join("build-cache")).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), cache.join(entry.file_name())).unwrap();
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Copies `examples/NAME` for each name into a fresh temp dir (side by
/// side, so `build = "../redis"` still resolves); returns the temp dir.
pub fn copy_examples(names: &[&str]) -> tempfile::TempDir {
    let tmp = tempfile::Builder::new()
        .prefix("berth-tutorial-")
        .tempdir()
        .unwrap();
    for name in names {
        let status = Command::new("cp")
            .arg("-a")
            .arg(repo().join("examples").join(name))
            .arg(tmp.path())
            .status()
            .unwrap();
        assert!(status.success(), "copying examples/{name}");
    }
    tmp
}

/// Replaces `from` with `to` in a file (which must contain it).
pub fn edit(path: &Path, from: &str, to: &str) {
    let text = fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} has no {from:?}", path.display());
    fs::write(path, text.replace(from, to)).unwrap();
}

/// `GET /` on 127.0.0.1:PORT; the body if the server answered 200.
pub fn http_get(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).ok()?;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200")
        .then(|| body.to_string())
        .or_else(|| head.starts_with("HTTP/1.0 200").then(|| body.to_string()))
}

/// Sends one inline command to a redis server on 127.0.0.1:PORT; returns
/// its first answer line (`+PONG`, `+OK`, `$1`…) and, for a bulk string,
/// the value on the next line.
pub fn redis(port: u16, command: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(format!("{command}\r\nQUIT\r\n").as_bytes())
        .ok()?;
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let mut lines = answer.split("\r\n");
    let first = lines.next()?.to_string();
    if first.starts_with('$') && first != "$-1" {
        return Some(lines.next()?.to_string());
    }
    (!first.is_empty()).then_some(first)
}
