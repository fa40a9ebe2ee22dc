//! The registry client against real registries (Debian's docker-registry,
//! plain and TLS + htpasswd), skopeo for interop, and tiny hand-written
//! servers for answers no real registry gives (hostile manifests, redirects
//! and token realms on other hosts).

mod common;

use std::fs;
use std::path::Path;
use std::sync::atomic::Ordering;

use common::registry::*;
use common::{busybox_rootfs_tar, TestRoot};
use serde_json::Value;

/// A berth config dir (config.toml + certs.d) and a Docker config dir.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("config.toml"), config).unwrap();
        fs::create_dir_all(dir.path().join("docker")).unwrap();
        Self { dir }
    }

    fn trust(&self, host: &str) {
        let d = self.dir.path().join("certs.d").join(host);
        fs::create_dir_all(&d).unwrap();
        fs::copy(tls_fixture().ca, d.join("ca.crt")).unwrap();
    }

    fn docker_config(&self) -> std::path::PathBuf {
        self.dir.path().join("docker/config.json")
    }

    fn run(&self, root: &TestRoot, args: &[&str], stdin: Option<&str>) -> std::process::Output {
        use std::io::Write;
        let mut cmd = root.cmd();
        cmd.env("BERTH_CONFIG", self.dir.path().join("config.toml"))
            .env("DOCKER_CONFIG", self.dir.path().join("docker"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .stdin(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    fn ok(&self, root: &TestRoot, args: &[&str]) -> (String, String) {
        let out = self.run(root, args, None);
        let (o, e) = (text(&out.stdout), text(&out.stderr));
        assert!(
            out.status.success(),
            "berth {args:?} failed\nstdout: {o}\nstderr: {e}"
        );
        (o, e)
    }

    /// Runs a command that must fail; returns (exit code, stderr).
    fn fails(&self, root: &TestRoot, args: &[&str]) -> (i32, String) {
        let out = self.run(root, args, None);
        assert!(
            !out.status.success(),
            "berth {args:?} unexpectedly succeeded\nstdout: {}",
            text(&out.stdout)
        );
        (out.status.code().unwrap_or(-1), text(&out.stderr))
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts stderr is exactly one `error:` line mentioning every needle.
fn one_error_line(stderr: &str, needles: &[&str]) {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "expected one line on stderr, got:\n{stderr}"
    );
    assert!(lines[0].starts_with("error: "), "{stderr}");
    for n in needles {
        assert!(lines[0].contains(n), "{n:?} missing from: {}", lines[0]);
    }
}

/// Blob files in a state root's store.
fn stored_blobs(root: &TestRoot) -> Vec<String> {
    let dir = root.path().join("images/blobs/sha256");
    let mut out: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| format!("sha256:{}", e.file_name().to_string_lossy()))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn images_lines(env: &Env, root: &TestRoot) -> Vec<String> {
    let (out, _) = env.ok(root, &["images", "--digests", "--no-trunc"]);
    out.lines().skip(1).map(str::to_string).collect()
}

#[test]
fn skopeo_pushed_image_is_pulled_with_docker_output() {
    let (layout, w) = busybox_layout();
    let reg = Registry::start();
    reg.skopeo_push(&layout, "latest", "test/busybox:1");
    let env = Env::new("");
    let root = TestRoot::new();
    let name = format!("{}/test/busybox:1", reg.host());
    let (out, err) = env.ok(&root, &["pull", &name]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        vec![
            format!("Digest: {}", w.digest).as_str(),
            format!("Status: Downloaded newer image for {name}").as_str(),
            name.as_str(),
        ],
        "stderr: {err}"
    );
    // Plain progress lines on stderr (not a terminal).
    let short = &w.layer_digests[0]["sha256:".len()..][..12];
    assert!(err.contains("1: Pulling from test/busybox"), "{err}");
    assert!(err.contains(&format!("{short}: Pull complete")), "{err}");
    // The repo digest is recorded and shown.
    let imgs = images_lines(&env, &root);
    assert!(
        imgs.iter()
            .any(|l| l.contains(&format!("{}/test/busybox", reg.host())) && l.contains(&w.digest)),
        "{imgs:?}"
    );
    // A second pull finds it up to date; a pull by digest too.
    let (out, _) = env.ok(&root, &["pull", &name]);
    assert!(
        out.contains(&format!("Status: Image is up to date for {name}")),
        "{out}"
    );
    let by_digest = format!("{}/test/busybox@{}", reg.host(), w.digest);
    let (out, _) = env.ok(&root, &["pull", "-q", &by_digest]);
    assert_eq!(out.trim(), by_digest);
    // Another name for the same image: its layer is already here.
    reg.skopeo_push(&layout, "latest", "test/other:1");
    let (_, err) = env.ok(&root, &["pull", &format!("{}/test/other:1", reg.host())]);
    assert!(err.contains(&format!("{short}: Already exists")), "{err}");
    // The store is an OCI layout skopeo reads, with the same manifest.
    let store = format!("oci:{}/images:{name}", root.path().display());
    let raw = std::process::Command::new("skopeo")
        .args(["--insecure-policy", "inspect", "--raw", &store])
        .output()
        .unwrap();
    assert!(raw.status.success(), "{}", text(&raw.stderr));
    assert_eq!(sha256_digest(&raw.stdout), w.digest);
}

/// The tutorial's first command against a registry: `run` finds the image
/// missing, says so as Docker does, pulls it, runs it, and removes the
/// container (`--rm`); a second `run` uses the stored image without a pull.
#[test]
fn run_pulls_a_missing_image_then_runs_it() {
    let (layout, w) = busybox_layout();
    let reg = Registry::start();
    reg.skopeo_push(&layout, "latest", "test/busybox:run");
    let env = Env::new("");
    let root = TestRoot::new();
    let name = format!("{}/test/busybox:run", reg.host());
    let args = [
        "run",
        "--rm",
        "--network",
        "none",
        &name,
        "echo",
        "hi there",
    ];
    let (out, err) = env.ok(&root, &args);
    assert_eq!(out, "hi there\n", "stderr: {err}");
    assert!(
        err.contains(&format!("Unable to find image '{name}' locally")),
        "{err}"
    );
    assert!(err.contains(&format!("Digest: {}", w.digest)), "{err}");
    let (out, err) = env.ok(&root, &args);
    assert_eq!(out, "hi there\n");
    assert!(!err.contains("Unable to find image"), "{err}");
    let (ps, _) = env.ok(&root, &["ps", "-aq"]);
    assert_eq!(ps, "", "--rm left a container behind");
}

#[test]
fn using_default_tag_and_quiet() {
    let (layout, _) = busybox_layout();
    let reg = Registry::start();
    reg.skopeo_push(&layout, "latest", "quiet/busybox:latest");
    let env = Env::new("");
    let root = TestRoot::new();
    let name = format!("{}/quiet/busybox", reg.host());
    let (out, _) = env.ok(&root, &["pull", &name]);
    assert!(out.starts_with("Using default tag: latest\n"), "{out}");
    assert!(out.ends_with(&format!("{name}:latest\n")), "{out}");
    env.ok(&root, &["rmi", &name]);
    let (out, err) = env.ok(&root, &["pull", "-q", &name]);
    assert_eq!(out, format!("{name}:latest\n"));
    assert_eq!(err, "");
}

#[test]
fn multi_platform_index_is_resolved_for_the_platform() {
    let dir = tempfile::tempdir().unwrap();
    let layout = OciLayout::new(dir.path());
    let host = host_platform();
    let native = layout.image(&[&busybox_layer()], &host, &["sh"]);
    let arm_layer = random_layer("arm.bin", 64 * 1024, 7);
    let arm = layout.image(&[&arm_layer], "linux/arm/v7", &["sh"]);
    let s390 = layout.image(
        &[&random_layer("s390.bin", 1024, 8)],
        "linux/s390x",
        &["sh"],
    );
    let (index, size) = layout.index(&[
        (&native, &host),
        (&arm, "linux/arm/v7"),
        (&s390, "linux/s390x"),
    ]);
    layout.tag(
        &index,
        size,
        "application/vnd.oci.image.index.v1+json",
        "multi",
    );
    let reg = Registry::start();
    reg.skopeo_push(dir.path(), "multi", "multi/app:v1");
    assert_eq!(reg.skopeo_digest("multi/app:v1"), index);

    let env = Env::new("");
    let root = TestRoot::new();
    let name = format!("{}/multi/app:v1", reg.host());
    let (out, _) = env.ok(&root, &["pull", &name]);
    // Docker prints the index digest; the store holds the host's image.
    assert!(out.contains(&format!("Digest: {index}")), "{out}");
    let blobs = stored_blobs(&root);
    assert!(blobs.contains(&native.digest), "{blobs:?}");
    assert!(!blobs.contains(&arm.digest));
    let imgs = images_lines(&env, &root);
    assert!(imgs.iter().any(|l| l.contains(&index)), "{imgs:?}");

    // --platform picks another entry.
    let root2 = TestRoot::new();
    let (out, _) = env.ok(&root2, &["pull", "--platform", "linux/arm/v7", &name]);
    assert!(out.contains(&format!("Digest: {index}")), "{out}");
    let blobs = stored_blobs(&root2);
    assert!(
        blobs.contains(&arm.digest) && blobs.contains(&arm_layer.digest()),
        "{blobs:?}"
    );
    assert!(!blobs.contains(&native.digest));

    // A platform the index lacks: one line naming it and what there is.
    let root3 = TestRoot::new();
    let (code, err) = env.fails(&root3, &["pull", "--platform", "linux/riscv64", &name]);
    assert_eq!(code, 1);
    one_error_line(&err, &["linux/riscv64", "linux/arm/v7", "multi/app:v1"]);
    let (_, err) = env.fails(&root3, &["pull", "--platform", "linux", &name]);
    assert!(err.contains("invalid platform"), "{err}");
    // A single-platform image must match an explicit --platform.
    let (layout, _) = busybox_layout();
    reg.skopeo_push(&layout, "latest", "single/busybox:latest");
    let single = format!("{}/single/busybox:latest", reg.host());
    let (code, err) = env.fails(&root3, &["pull", "--platform", "linux/s390x", &single]);
    assert_eq!(code, 1);
    one_error_line(
        &err,
        &["does not match the requested linux/s390x", "single/busybox"],
    );
    assert!(images_lines(&env, &root3).is_empty());
    env.ok(&root3, &["pull", "-q", "--platform", &host, &single]);
}

#[test]
fn push_rmi_pull_round_trip_with_mount_and_skopeo() {
    let (layout, w) = busybox_layout();
    let reg = Registry::start();
    reg.skopeo_push(&layout, "latest", "src/busybox:latest");
    let env = Env::new("");
    let root = TestRoot::new();
    let src = format!("{}/src/busybox:latest", reg.host());
    env.ok(&root, &["pull", "-q", &src]);

    // Push under a new name: the layer is mounted from src/busybox.
    let dst = format!("{}/round/trip:v1", reg.host());
    env.ok(&root, &["tag", &src, &dst]);
    let (out, err) = env.ok(&root, &["push", &dst]);
    assert!(
        out.starts_with(&format!(
            "The push refers to repository [{}/round/trip]\n",
            reg.host()
        )),
        "{out}"
    );
    assert!(
        out.ends_with(&format!("v1: digest: {} size: {}\n", w.digest, w.size)),
        "{out}"
    );
    let short = &w.layer_digests[0]["sha256:".len()..][..12];
    assert!(
        err.contains(&format!("{short}: Mounted from src/busybox")),
        "{err}"
    );
    // Pushing again finds everything there.
    let (_, err) = env.ok(&root, &["push", &dst]);
    assert!(
        err.contains(&format!("{short}: Layer already exists")),
        "{err}"
    );

    // skopeo pulls what berth pushed, with the same digests.
    assert_eq!(reg.skopeo_digest("round/trip:v1"), w.digest);
    let out_dir = tempfile::tempdir().unwrap();
    let copy = std::process::Command::new("skopeo")
        .args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--src-tls-verify=false",
        ])
        .arg(format!("docker://{dst}"))
        .arg(format!("oci:{}:v1", out_dir.path().display()))
        .output()
        .unwrap();
    assert!(copy.status.success(), "{}", text(&copy.stderr));
    let index = fs::read_to_string(out_dir.path().join("index.json")).unwrap();
    assert!(index.contains(&w.digest), "{index}");
    for d in w.layer_digests.iter().chain([&w.config_digest]) {
        assert!(
            out_dir.path().join("blobs/sha256").join(&d[7..]).exists(),
            "{d}"
        );
    }

    // rmi everything, pull back: same digests.
    env.ok(&root, &["rmi", &src, &dst]);
    assert!(images_lines(&env, &root).is_empty());
    let (out, _) = env.ok(&root, &["pull", &dst]);
    assert!(out.contains(&format!("Digest: {}", w.digest)), "{out}");

    // A fresh (unmountable) push of a new image uploads its blobs.
    let fresh = tempfile::tempdir().unwrap();
    let fl = OciLayout::new(fresh.path());
    let big = random_layer("big.bin", 20 * 1024 * 1024, 11);
    let small = random_layer("small.bin", 1000, 12);
    let fw = fl.image(&[&busybox_layer(), &big, &small], &host_platform(), &["sh"]);
    fl.tag(
        &fw.digest,
        fw.size,
        "application/vnd.oci.image.manifest.v1+json",
        "x",
    );
    reg.skopeo_push(fresh.path(), "x", "staging/fresh:x");
    let root2 = TestRoot::new();
    let staging = format!("{}/staging/fresh:x", reg.host());
    env.ok(&root2, &["pull", "-q", &staging]);
    let reg2 = Registry::start();
    let target = format!("{}/chunked/fresh:x", reg2.host());
    env.ok(&root2, &["tag", &staging, &target]);
    let (out, err) = env.ok(&root2, &["push", &target]);
    assert!(out.contains(&fw.digest), "{out}");
    assert!(
        err.contains(&format!("{}: Pushed", &big.digest()[7..19])),
        "{err}"
    );
    assert_eq!(reg2.skopeo_digest("chunked/fresh:x"), fw.digest);
}

/// berth keeps the layers it makes uncompressed; a push gzips them, as
/// Docker pushes, with the same image id (diff_ids), and a second push
/// finds the compressed layers there without compressing again.
#[test]
fn push_compresses_plain_layers_and_the_image_comes_back_the_same() {
    let reg = Registry::start();
    let env = Env::new("");
    let root = TestRoot::new();
    let tar = busybox_rootfs_tar();
    env.ok(&root, &["import", tar.to_str().unwrap(), "plain"]);
    let local: Value =
        serde_json::from_str(&env.ok(&root, &["image", "inspect", "plain"]).0).unwrap();
    let image_id = local[0]["Id"].as_str().unwrap().to_string();
    let dst = format!("{}/zipped/bb:v1", reg.host());
    env.ok(&root, &["tag", "plain", &dst]);
    let (out, _) = env.ok(&root, &["push", &dst]);
    let manifest: Value = serde_json::from_slice(&reg.skopeo_raw("zipped/bb:v1")).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest}");
    let layer = &layers[0];
    assert!(
        layer["mediaType"].as_str().unwrap().ends_with("tar+gzip")
            || layer["mediaType"] == "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "{manifest}"
    );
    let tar_size = fs::metadata(&tar).unwrap().len();
    let blob = fs::read(reg.blob_data(layer["digest"].as_str().unwrap())).unwrap();
    assert_eq!(blob.len() as u64, layer["size"].as_u64().unwrap());
    assert!(
        (blob.len() as u64) < tar_size / 2,
        "pushed {} bytes for a {tar_size}-byte layer",
        blob.len()
    );
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&blob[..]), &mut unzipped)
        .unwrap();
    let diff_id = local[0]["RootFS"]["Layers"][0].as_str().unwrap();
    assert_eq!(
        sha256_digest(&unzipped),
        diff_id,
        "the blob is the layer, gzipped"
    );
    // The digest push prints is the manifest the registry serves.
    let served = reg.skopeo_digest("zipped/bb:v1");
    assert!(out.contains(&format!("v1: digest: {served} ")), "{out}");

    // A second push finds the compressed layer there. (Docker names a
    // layer in push output by its diff_id.)
    let (_, err) = env.ok(&root, &["push", &dst]);
    let short = &diff_id["sha256:".len()..][..12];
    assert!(
        err.contains(&format!("{short}: Layer already exists")),
        "{err}"
    );
    assert_eq!(
        reg.skopeo_digest("zipped/bb:v1"),
        served,
        "the same manifest again"
    );

    // Pulled back elsewhere: the same image id, and it runs.
    let other = TestRoot::new();
    env.ok(&other, &["pull", "-q", &dst]);
    let back: Value = serde_json::from_str(&env.ok(&other, &["image", "inspect", &dst]).0).unwrap();
    assert_eq!(back[0]["Id"], image_id.as_str());
    let (echo, _) = env.ok(
        &other,
        &["run", "--rm", "--network", "none", &dst, "echo", "unzipped"],
    );
    assert_eq!(echo, "unzipped\n");
}

#[test]
fn push_of_missing_image_fails_clearly() {
    let env = Env::new("");
    let root = TestRoot::new();
    let (code, err) = env.fails(&root, &["push", "127.0.0.1:1/none:x"]);
    assert_eq!(code, 1);
    one_error_line(&err, &["does not exist locally", "127.0.0.1:1/none:x"]);
}

#[test]
fn tls_registry_with_basic_auth_login_pull_push_logout() {
    let (layout, w) = busybox_layout();
    let reg = Registry::start_tls_auth();
    reg.skopeo_push(&layout, "latest", "secure/busybox:latest");
    let host = reg.host();
    let name = format!("{host}/secure/busybox:latest");

    // Without the CA: a TLS error that says what to do.
    let untrusted = Env::new("");
    let root = TestRoot::new();
    let (code, err) = untrusted.fails(&root, &["pull", &name]);
    assert_eq!(code, 1);
    one_error_line(&err, &[&host, "certs.d", "secure/busybox"]);

    let env = Env::new("");
    env.trust(&host);
    // Trusted but anonymous: access denied, one line.
    let (code, err) = env.fails(&root, &["pull", &name]);
    assert_eq!(code, 1);
    one_error_line(
        &err,
        &[
            &host,
            "access denied",
            "berth login",
            "secure/busybox:latest",
        ],
    );

    // A wrong password is refused and nothing is written.
    let out = env.run(
        &root,
        &["login", "-u", USER, "--password-stdin", &host],
        Some("wrong\n"),
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("access denied"),
        "{}",
        text(&out.stderr)
    );
    assert!(!env.docker_config().exists());

    let out = env.run(
        &root,
        &["login", "-u", USER, "--password-stdin", &host],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "Login Succeeded\n");
    let config: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(env.docker_config()).unwrap()).unwrap();
    assert!(config["auths"][&host]["auth"].is_string(), "{config}");

    let (out, _) = env.ok(&root, &["pull", &name]);
    assert!(out.contains(&format!("Digest: {}", w.digest)), "{out}");
    let pushed = format!("{host}/secure/copy:v2");
    env.ok(&root, &["tag", &name, &pushed]);
    let (out, _) = env.ok(&root, &["push", &pushed]);
    assert!(out.contains(&w.digest), "{out}");
    assert_eq!(reg.skopeo_digest("secure/copy:v2"), w.digest);

    let (out, _) = env.ok(&root, &["logout", &host]);
    assert_eq!(out, format!("Removing login credentials for {host}\n"));
    let config: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(env.docker_config()).unwrap()).unwrap();
    assert!(config["auths"].get(&host).is_none(), "{config}");
    let (out, _) = env.ok(&root, &["logout", &host]);
    assert_eq!(out, format!("Not logged in to {host}\n"));
}

#[test]
fn mirror_serves_docker_io() {
    let (layout, w) = busybox_layout();
    let mirror = Registry::start();
    mirror.skopeo_push(&layout, "latest", "library/busybox:latest");
    // A dead first mirror is skipped.
    let dead = free_port();
    let env = Env::new(&format!(
        "[registry-mirrors]\n\"docker.io\" = [\"http://127.0.0.1:{dead}\", \"http://{}\"]\n",
        mirror.host()
    ));
    let root = TestRoot::new();
    let (out, err) = env.ok(&root, &["pull", "busybox"]);
    assert!(out.starts_with("Using default tag: latest\n"), "{out}");
    assert!(out.contains(&format!("Digest: {}", w.digest)), "{out}");
    assert!(
        out.contains("Status: Downloaded newer image for busybox:latest"),
        "{out}"
    );
    assert!(out.ends_with("docker.io/library/busybox:latest\n"), "{out}");
    assert!(
        err.contains("latest: Pulling from library/busybox"),
        "{err}"
    );
    let imgs = images_lines(&env, &root);
    assert!(imgs.iter().any(|l| l.starts_with("busybox ")), "{imgs:?}");
}

#[test]
fn tampered_blob_is_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let layout = OciLayout::new(dir.path());
    let layers = [
        random_layer("a.bin", 300 * 1024, 1),
        random_layer("b.bin", 300 * 1024, 2),
        random_layer("c.bin", 300 * 1024, 3),
    ];
    let w = layout.image(
        &layers.iter().collect::<Vec<_>>(),
        &host_platform(),
        &["sh"],
    );
    layout.tag(
        &w.digest,
        w.size,
        "application/vnd.oci.image.manifest.v1+json",
        "t",
    );
    let reg = Registry::start();
    reg.skopeo_push(dir.path(), "t", "tamper/me:t");
    let data = reg.blob_data(&w.layer_digests[1]);
    let original = fs::read(&data).unwrap();
    let mut bad = original.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    fs::write(&data, &bad).unwrap();

    let env = Env::new("");
    let root = TestRoot::new();
    let name = format!("{}/tamper/me:t", reg.host());
    let (code, err) = env.fails(&root, &["pull", "-q", &name]);
    assert_eq!(code, 1);
    one_error_line(
        &err,
        &[
            "failed verification",
            &w.layer_digests[1],
            &reg.host(),
            "tamper/me:t",
        ],
    );
    assert!(stored_blobs(&root).is_empty(), "{:?}", stored_blobs(&root));
    assert!(images_lines(&env, &root).is_empty());
    let tmp: Vec<_> = fs::read_dir(root.path().join("tmp")).unwrap().collect();
    assert!(tmp.is_empty(), "staging files left: {tmp:?}");

    // Repaired, the next pull completes.
    fs::write(&data, &original).unwrap();
    let (out, _) = env.ok(&root, &["pull", &name]);
    assert!(out.contains(&format!("Digest: {}", w.digest)), "{out}");
}

#[test]
fn interrupted_transfers_are_retried_or_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let layout = OciLayout::new(dir.path());
    let layers = [
        random_layer("a.bin", 1 << 20, 21),
        random_layer("b.bin", 1 << 20, 22),
    ];
    let w = layout.image(
        &layers.iter().collect::<Vec<_>>(),
        &host_platform(),
        &["sh"],
    );
    layout.tag(
        &w.digest,
        w.size,
        "application/vnd.oci.image.manifest.v1+json",
        "t",
    );
    let reg = Registry::start();
    reg.skopeo_push(dir.path(), "t", "cut/me:t");
    let proxy = CuttingProxy::start(reg.port, 256 * 1024);
    let env = Env::new("");
    let name = format!("127.0.0.1:{}/cut/me:t", proxy.port);

    // One connection cut mid-blob: retried, the pull succeeds.
    proxy.cuts.store(1, Ordering::SeqCst);
    let root = TestRoot::new();
    let (out, err) = env.ok(&root, &["pull", &name]);
    assert!(out.contains(&format!("Digest: {}", w.digest)), "{out}");
    assert!(err.contains("Retrying"), "{err}");
    assert_eq!(proxy.cuts.load(Ordering::SeqCst), 0);

    // Every connection cut: the pull fails, no image and no blobs remain.
    proxy.cuts.store(usize::MAX, Ordering::SeqCst);
    let root = TestRoot::new();
    let (code, err) = env.fails(&root, &["pull", "-q", &name]);
    assert_eq!(code, 1);
    one_error_line(&err, &["cut/me:t", &format!("127.0.0.1:{}", proxy.port)]);
    assert!(images_lines(&env, &root).is_empty());
    assert!(stored_blobs(&root).is_empty(), "{:?}", stored_blobs(&root));

    // The connection is healthy again: the next pull completes.
    proxy.cuts.store(0, Ordering::SeqCst);
    let (out, _) = env.ok(&root, &["pull", &name]);
    assert!(out.contains(&format!("Digest: {}", w.digest)), "{out}");
}

#[test]
fn not_found_unauthorized_and_unreachable_are_one_line_each() {
    let reg = Registry::start();
    let env = Env::new("");
    let root = TestRoot::new();
    let name = format!("{}/nope/missing:latest", reg.host());
    let (code, err) = env.fails(&root, &["pull", &name]);
    assert_eq!(code, 1);
    one_error_line(&err, &[&name, "not found", &reg.host()]);

    let secure = Registry::start_tls_auth();
    let env = Env::new("");
    env.trust(&secure.host());
    let name = format!("{}/locked/away:latest", secure.host());
    let (code, err) = env.fails(&root, &["pull", &name]);
    assert_eq!(code, 1);
    one_error_line(&err, &[&name, "access denied", &secure.host()]);

    let dead = format!("127.0.0.1:{}", free_port());
    let name = format!("{dead}/gone/away:latest");
    let (code, err) = env.fails(&root, &["pull", &name]);
    assert_eq!(code, 1);
    one_error_line(&err, &[&name, "unreachable", &dead]);
    assert!(images_lines(&env, &root).is_empty());

    // `run` of a missing image says what it was pulling once, not twice.
    let out = env.run(&root, &["run", "--rm", &name, "true"], None);
    assert_eq!(out.status.code(), Some(125));
    let err = text(&out.stderr);
    let error = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_default();
    assert_eq!(error.matches("gone/away").count(), 1, "{err}");
    assert_eq!(error.matches("pulling").count(), 1, "{err}");
}

/// A fake registry serving `manifest` (with `content_type`) for every tag.
fn fake_registry(manifest: String, content_type: &'static str) -> FakeServer {
    FakeServer::start("127.0.0.1", move |req| {
        if req.path == "/v2/" {
            Response::new(200)
        } else if req.path.contains("/manifests/") {
            Response::new(200)
                .header("Content-Type", content_type)
                .body(manifest.clone())
        } else {
            Response::new(404)
        }
    })
}

#[test]
fn bad_manifests_are_refused() {
    let d = format!("sha256:{}", "ab".repeat(32));
    let image = |media_type: &str, extra: &str| {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{media_type}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{d}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{d}","size":2}}]{extra}}}"#
        )
    };
    let oci = "application/vnd.oci.image.manifest.v1+json";
    let docker = "application/vnd.docker.distribution.manifest.v2+json";
    let cases = [
        (image(docker, ""), oci, "contradicts its Content-Type"),
        (
            image(oci, r#","manifests":[]"#),
            oci,
            "both \"manifests\" and \"layers\"",
        ),
        (
            r#"{"schemaVersion":1,"name":"x","fsLayers":[]}"#.to_string(),
            "application/json",
            "schema 1",
        ),
        ("<html>not json</html>".to_string(), oci, "not valid JSON"),
        (
            image(oci, "").replace(&d, "sha256:xyz"),
            oci,
            "invalid digest",
        ),
    ];
    let env = Env::new("");
    for (manifest, ct, needle) in cases {
        let server = fake_registry(manifest, ct);
        let root = TestRoot::new();
        let name = format!("{}/bad/manifest:x", server.host());
        let (code, err) = env.fails(&root, &["pull", &name]);
        assert_eq!(code, 1);
        one_error_line(&err, &[needle, &name, &server.host()]);
        assert!(stored_blobs(&root).is_empty());
    }
}

/// The base64 Basic credentials for `user:secret`.
fn basic(user: &str, secret: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"))
    )
}

fn write_auths(env: &Env, hosts: &[String]) {
    use base64::Engine;
    let mut auths = serde_json::Map::new();
    for h in hosts {
        auths.insert(
            h.clone(),
            serde_json::json!({"auth": base64::engine::general_purpose::STANDARD.encode("leaky:hunter2")}),
        );
    }
    fs::write(
        env.docker_config(),
        serde_json::json!({ "auths": auths }).to_string(),
    )
    .unwrap();
}

#[test]
fn credentials_never_follow_redirects_or_realms_to_other_hosts() {
    let expected = basic("leaky", "hunter2");
    // Another host (127.0.0.2) that records what it is sent.
    let elsewhere = FakeServer::start("127.0.0.2", |req| {
        if req.path.starts_with("/token") {
            Response::new(200).body(r#"{"token":"anon-token"}"#)
        } else {
            Response::new(404)
        }
    });
    let other = elsewhere.host();

    // 1. A registry that wants Basic auth and redirects the manifest.
    let want = expected.clone();
    let target = format!("http://{other}/storage/manifest");
    let redirecting = FakeServer::start("127.0.0.1", move |req| {
        if req.header("authorization") != Some(want.as_str()) {
            return Response::new(401).header("WWW-Authenticate", r#"Basic realm="fake""#);
        }
        if req.path == "/v2/" {
            Response::new(200)
        } else {
            Response::new(307).header("Location", &target)
        }
    });
    // 2. A registry whose token realm is on the other host.
    let realm = format!("http://{other}/token");
    let realm_elsewhere =
        FakeServer::start("127.0.0.1", move |req| match req.header("authorization") {
            Some(a) if a.starts_with("Bearer ") => Response::new(404),
            _ => Response::new(401).header(
                "WWW-Authenticate",
                &format!(r#"Bearer realm="{realm}",service="fake""#),
            ),
        });
    // 3. Control: a registry whose realm is itself gets the credentials.
    let same = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let same_host = same.clone();
    let realm_here = FakeServer::start("127.0.0.1", move |req| {
        if req.path.starts_with("/token") {
            return Response::new(200).body(r#"{"token":"t"}"#);
        }
        match req.header("authorization") {
            Some(a) if a.starts_with("Bearer ") => Response::new(404),
            _ => Response::new(401).header(
                "WWW-Authenticate",
                &format!(
                    r#"Bearer realm="http://{}/token",service="fake""#,
                    same_host.lock().unwrap()
                ),
            ),
        }
    });
    *same.lock().unwrap() = realm_here.host();

    let env = Env::new("");
    write_auths(
        &env,
        &[
            redirecting.host(),
            realm_elsewhere.host(),
            realm_here.host(),
        ],
    );
    let root = TestRoot::new();
    for server in [&redirecting, &realm_elsewhere, &realm_here] {
        let (code, _) = env.fails(
            &root,
            &["pull", "-q", &format!("{}/leak/test:x", server.host())],
        );
        assert_eq!(code, 1);
    }

    // The redirecting registry got the credentials; the redirect target not.
    assert!(redirecting
        .requests()
        .iter()
        .any(|r| r.header("authorization") == Some(expected.as_str())));
    let seen = elsewhere.requests();
    assert!(
        seen.iter().any(|r| r.path == "/storage/manifest"),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|r| r.path.starts_with("/token")),
        "{seen:?}"
    );
    for r in &seen {
        assert_eq!(
            r.header("authorization"),
            None,
            "leaked to {}: {r:?}",
            other
        );
    }
    // A mirror never gets the credentials of the registry it mirrors.
    let mirror = FakeServer::start("127.0.0.1", |_| {
        Response::new(401).header("WWW-Authenticate", r#"Basic realm="mirror""#)
    });
    let dead = format!("127.0.0.1:{}", free_port());
    let mirrored = Env::new(&format!(
        "[registry-mirrors]\n\"{dead}\" = [\"http://{}\"]\n",
        mirror.host()
    ));
    write_auths(&mirrored, std::slice::from_ref(&dead));
    let (code, _) = mirrored.fails(&root, &["pull", "-q", &format!("{dead}/leak/test:x")]);
    assert_eq!(code, 1);
    let seen = mirror.requests();
    assert!(!seen.is_empty());
    assert!(
        seen.iter().all(|r| r.header("authorization").is_none()),
        "{seen:?}"
    );

    // The control realm on the registry's own host did receive them.
    assert!(realm_here
        .requests()
        .iter()
        .any(|r| r.path.starts_with("/token")
            && r.header("authorization") == Some(expected.as_str())));
}

#[test]
fn identity_tokens_use_the_oauth_refresh_grant() {
    let same = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let realm_host = same.clone();
    let server = FakeServer::start("127.0.0.1", move |req| {
        if req.path.starts_with("/token") {
            let body = String::from_utf8_lossy(&req.body);
            if req.method == "POST"
                && body.contains("grant_type=refresh_token")
                && body.contains("refresh_token=refresh-me")
            {
                return Response::new(200).body(r#"{"access_token":"granted"}"#);
            }
            return Response::new(401);
        }
        match req.header("authorization") {
            Some("Bearer granted") => Response::new(404),
            _ => Response::new(401).header(
                "WWW-Authenticate",
                &format!(
                    r#"Bearer realm="http://{}/token",service="fake",scope="repository:id/tok:pull""#,
                    realm_host.lock().unwrap()
                ),
            ),
        }
    });
    *same.lock().unwrap() = server.host();
    let env = Env::new("");
    fs::write(
        env.docker_config(),
        serde_json::json!({"auths": {server.host(): {"identitytoken": "refresh-me"}}}).to_string(),
    )
    .unwrap();
    let root = TestRoot::new();
    let name = format!("{}/id/tok:x", server.host());
    let (code, err) = env.fails(&root, &["pull", &name]);
    assert_eq!(code, 1);
    // The token was granted and accepted: the registry said 404, not 401.
    one_error_line(&err, &["not found", &name]);
    let posts: Vec<Request> = server
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/token"))
        .collect();
    assert!(
        posts
            .iter()
            .all(|r| r.method == "POST" && r.header("authorization").is_none()),
        "{posts:?}"
    );
}

#[test]
fn login_refuses_bad_usage() {
    let env = Env::new("");
    let root = TestRoot::new();
    let (_, err) = env.fails(&root, &["login", "--password-stdin", "127.0.0.1:1"]);
    assert!(err.contains("--username"), "{err}");
    let (_, err) = env.fails(&root, &["login", "-u", "x", "127.0.0.1:1"]);
    assert!(err.contains("non TTY"), "{err}");
    let (code, err) = env.fails(&root, &["login", "-u", "x", "-p", "y", "127.0.0.1:1"]);
    assert_eq!(code, 1);
    assert!(err.contains("unreachable"), "{err}");
    assert!(!Path::new(&env.docker_config()).exists());
}
