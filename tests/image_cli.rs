//! The image commands end to end, as root, each test with its own state
//! root: import, images, tag, rmi, inspect, save, load, image prune, the
//! `image` group, interop with skopeo, and malformed input to each command.

mod common;
mod image_support;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{busybox_rootfs_tar, require, TestRoot};
use image_support::{assert_tmp_empty, gzip, store_listing};
use serde_json::Value;

fn inspect(root: &TestRoot, name: &str) -> Value {
    let v: Value = serde_json::from_str(&root.ok(&["inspect", name])).unwrap();
    v[0].clone()
}

fn import_busybox(root: &TestRoot, name: &str) -> String {
    let tar = busybox_rootfs_tar();
    root.ok(&[
        "import",
        "--change",
        r#"CMD ["sh"]"#,
        tar.to_str().unwrap(),
        name,
    ])
    .trim()
    .to_string()
}

/// Runs berth with `input` on stdin.
fn run_stdin(root: &TestRoot, args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = root
        .cmd()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn manifest_digest(root: &TestRoot, name: &str) -> String {
    inspect(root, name)["Descriptor"]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn import_applies_changes_and_images_lists_it() {
    let root = TestRoot::new();
    let tar = busybox_rootfs_tar();
    let id = root
        .ok(&[
            "import",
            "-c",
            r#"CMD ["sh"]"#,
            "-c",
            "ENV A=1 B=2",
            "-c",
            "EXPOSE 80 53/udp",
            "-c",
            "WORKDIR /srv",
            "-c",
            "USER 33",
            "-c",
            "LABEL team=berth",
            "-c",
            "STOPSIGNAL SIGQUIT",
            "-c",
            "VOLUME /data",
            "-c",
            r#"ENTRYPOINT ["/bin/busybox"]"#,
            "-m",
            "hello",
            tar.to_str().unwrap(),
            "example/app:1",
        ])
        .trim()
        .to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    let v = inspect(&root, "example/app:1");
    assert_eq!(v["Id"], id.as_str());
    assert_eq!(v["RepoTags"], serde_json::json!(["example/app:1"]));
    assert_eq!(v["Comment"], "hello");
    let c = &v["Config"];
    assert_eq!(c["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/busybox"]));
    assert_eq!(c["Env"], serde_json::json!(["A=1", "B=2"]));
    assert_eq!(
        c["ExposedPorts"],
        serde_json::json!({"80/tcp": {}, "53/udp": {}})
    );
    assert_eq!(c["WorkingDir"], "/srv");
    assert_eq!(c["User"], "33");
    assert_eq!(c["Labels"], serde_json::json!({"team": "berth"}));
    assert_eq!(c["StopSignal"], "SIGQUIT");
    assert_eq!(c["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(v["Os"], "linux");
    assert_eq!(v["RootFS"]["Type"], "layers");
    let layer = v["RootFS"]["Layers"][0].as_str().unwrap();
    // The layer is stored uncompressed: its digest is the tarball's.
    assert_eq!(layer, image_support::sha256(&std::fs::read(&tar).unwrap()));
    assert_eq!(v["Size"], std::fs::metadata(&tar).unwrap().len());

    let table = root.ok(&["images"]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap()
        .split("   ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(header, ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]);
    let row = lines.next().unwrap();
    assert!(
        row.starts_with("example/app   1 ") && row.contains(&id[7..19]),
        "{table}"
    );
    assert_eq!(root.ok(&["images", "-q"]).trim(), &id[7..19]);
    assert_eq!(root.ok(&["images", "-q", "--no-trunc"]).trim(), id);
    assert!(root
        .ok(&["images", "--digests"])
        .lines()
        .next()
        .unwrap()
        .contains("DIGEST"));
    let json: Value = serde_json::from_str(&root.ok(&["images", "--json"])).unwrap();
    assert_eq!(json[0]["Repository"], "example/app");
    assert_eq!(json[0]["Tag"], "1");
    // Filters by repository and tag.
    assert_eq!(root.ok(&["images", "-q", "example/app"]).trim(), &id[7..19]);
    assert_eq!(root.ok(&["images", "-q", "example/app:2"]).trim(), "");
    assert_eq!(root.ok(&["images", "-q", "busybox"]).trim(), "");
    // The image group aliases the same commands.
    assert_eq!(root.ok(&["image", "ls", "-q"]).trim(), &id[7..19]);
    assert_eq!(root.ok(&["image", "list", "-q"]).trim(), &id[7..19]);
    let v2: Value = serde_json::from_str(&root.ok(&["image", "inspect", &id[7..15]])).unwrap();
    assert_eq!(v2[0]["Id"], id.as_str());
}

#[test]
fn import_reads_compressed_stdin_and_skopeo_reads_the_live_store() {
    require("skopeo");
    let root = TestRoot::new();
    let gz = gzip(&std::fs::read(busybox_rootfs_tar()).unwrap());
    let out = run_stdin(&root, &["import", "-", "busybox"], &gz);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let v = inspect(&root, "busybox");
    assert_eq!(v["Comment"], "Imported from -");
    assert_eq!(v["RepoTags"], serde_json::json!(["busybox:latest"]));
    // skopeo finds the image by the full normalised name in index.json.
    let layout = root.path().join("images");
    let out = Command::new("skopeo")
        .arg("inspect")
        .arg(format!(
            "oci:{}:docker.io/library/busybox:latest",
            layout.display()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sk: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sk["Digest"], manifest_digest(&root, "busybox").as_str());
    assert_eq!(sk["Layers"], v["RootFS"]["Layers"]);
    let out = Command::new("skopeo")
        .arg("inspect")
        .arg("--config")
        .arg(format!(
            "oci:{}:docker.io/library/busybox:latest",
            layout.display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success());
    let config: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(config["config"]["Cmd"], Value::Null, "no --change given");
    assert!(!id.is_empty());
}

#[test]
fn tag_and_rmi_behave_like_docker() {
    let root = TestRoot::new();
    let id = import_busybox(&root, "busybox");
    root.ok(&["tag", "busybox", "busybox:two"]);
    root.ok(&["tag", &id[7..19], "localhost:5000/team/bb:v1"]);
    let v = inspect(&root, "busybox:two");
    assert_eq!(
        v["RepoTags"],
        serde_json::json!(["busybox:latest", "busybox:two", "localhost:5000/team/bb:v1"])
    );
    // An id naming several repositories needs -f.
    let err = root.fails(&["rmi", &id[7..19]]);
    assert!(
        err.contains("must be forced") && err.lines().count() == 1,
        "{err}"
    );
    // Removing one tag only untags.
    assert_eq!(root.ok(&["rmi", "busybox:two"]), "Untagged: busybox:two\n");
    assert_eq!(
        root.ok(&["image", "rm", "localhost:5000/team/bb:v1"]),
        "Untagged: localhost:5000/team/bb:v1\n"
    );
    // The last tag deletes the image and its blobs.
    assert_eq!(
        root.ok(&["rmi", "busybox"]),
        format!("Untagged: busybox:latest\nDeleted: {id}\n")
    );
    assert_eq!(root.ok(&["images", "-q"]), "");
    let blobs: Vec<_> = std::fs::read_dir(root.path().join("images/blobs/sha256"))
        .unwrap()
        .collect();
    assert!(blobs.is_empty(), "{blobs:?}");
    // -f deletes an image with several repositories at once.
    let id = import_busybox(&root, "a:1");
    root.ok(&["tag", "a:1", "b:1"]);
    let out = root.ok(&["rmi", "-f", &id]);
    assert_eq!(
        out,
        format!("Untagged: a:1\nUntagged: b:1\nDeleted: {id}\n")
    );
    // Unknown images: an error line each, exit 1, the others still removed.
    import_busybox(&root, "c");
    let out = root.run(&["rmi", "nope", "c"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: no such image: nope\n"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Untagged: c:latest"));
}

#[test]
fn a_moved_tag_leaves_a_dangling_image_that_prune_removes() {
    let root = TestRoot::new();
    let first = import_busybox(&root, "app");
    let second = import_busybox(&root, "app");
    assert_ne!(first, second, "created timestamps differ");
    let table = root.ok(&["images"]);
    assert!(
        table.contains("<none>") && table.contains(&first[7..19]),
        "{table}"
    );
    // Unpack the dangling image's layer so prune has a layer dir to remove.
    let before_layers = std::fs::read_dir(root.path().join("layers"))
        .unwrap()
        .count();
    let out = root.ok(&["image", "prune", "-f"]);
    assert!(out.starts_with("Deleted Images:\n"), "{out}");
    assert!(out.contains(&format!("deleted: {first}")), "{out}");
    assert!(
        out.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("Total reclaimed space: "),
        "{out}"
    );
    assert!(
        !out.contains("Total reclaimed space: 0B"),
        "the config blob at least was freed: {out}"
    );
    assert_eq!(root.ok(&["images", "-q", "--no-trunc"]).trim(), second);
    assert_eq!(
        std::fs::read_dir(root.path().join("layers"))
            .unwrap()
            .count(),
        before_layers
    );
    // Nothing dangling: nothing to do.
    assert_eq!(
        root.ok(&["image", "prune", "-f"]),
        "Total reclaimed space: 0B\n"
    );
    // Without -f it asks, and "n" keeps everything.
    let out = run_stdin(&root, &["image", "prune", "-a"], b"n\n");
    assert!(out.status.success());
    assert_eq!(root.ok(&["images", "-q", "--no-trunc"]).trim(), second);
    // -a removes tagged images too.
    let out = root.ok(&["image", "prune", "-a", "-f"]);
    assert!(
        out.contains("untagged: app:latest") && out.contains(&format!("deleted: {second}")),
        "{out}"
    );
    assert_eq!(root.ok(&["images", "-q"]), "");
    assert_eq!(
        std::fs::read_dir(root.path().join("images/blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
}

fn save_load_round_trip(format: &str) {
    let src = TestRoot::new();
    let id = import_busybox(&src, "busybox");
    src.ok(&["tag", "busybox", "example.com/x/bb:2"]);
    let md = manifest_digest(&src, "busybox");
    let file = src.path().join("out.tar");
    src.ok(&[
        "save",
        "--format",
        format,
        "-o",
        file.to_str().unwrap(),
        "busybox",
        "example.com/x/bb:2",
    ]);
    let dst = TestRoot::new();
    let out = dst.ok(&["load", "-i", file.to_str().unwrap()]);
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "Loaded image: busybox:latest",
            "Loaded image: example.com/x/bb:2"
        ]
    );
    assert_eq!(inspect(&dst, "busybox")["Id"], id.as_str());
    assert_eq!(
        manifest_digest(&dst, "busybox"),
        md,
        "identical manifest digest"
    );
    assert_eq!(manifest_digest(&dst, "example.com/x/bb:2"), md);
    // Saving to stdout gives the same bytes (the archive is deterministic).
    let out = src
        .cmd()
        .args(["save", "--format", format, "busybox", "example.com/x/bb:2"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, std::fs::read(&file).unwrap());
    // Loading from stdin, gzip-compressed.
    let third = TestRoot::new();
    let out = run_stdin(&third, &["image", "load"], &gzip(&out.stdout));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(manifest_digest(&third, "busybox"), md);
    assert_tmp_empty(third.path());
}

#[test]
fn save_then_load_gives_identical_digests_docker_archive() {
    save_load_round_trip("docker");
}

#[test]
fn save_then_load_gives_identical_digests_oci_archive() {
    save_load_round_trip("oci");
}

fn skopeo(args: &[&str]) -> Vec<u8> {
    let out = Command::new("skopeo").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn skopeo_reads_berths_archives_and_berth_loads_skopeos() {
    require("skopeo");
    let root = TestRoot::new();
    let id = import_busybox(&root, "busybox:1");
    let md = manifest_digest(&root, "busybox:1");
    let dir = root.path().join("x");
    std::fs::create_dir(&dir).unwrap();
    let docker = dir.join("d.tar");
    let oci = dir.join("o.tar");
    root.ok(&["save", "-o", docker.to_str().unwrap(), "busybox:1"]);
    root.ok(&[
        "save",
        "--format",
        "oci",
        "-o",
        oci.to_str().unwrap(),
        "busybox:1",
    ]);

    // skopeo finds the image by the tag in manifest.json.
    let d: Value = serde_json::from_slice(&skopeo(&[
        "inspect",
        &format!("docker-archive:{}:busybox:1", docker.display()),
    ]))
    .unwrap();
    assert_eq!(d["Name"], "docker.io/library/busybox", "{d}");
    assert_eq!(d["Layers"], inspect(&root, "busybox:1")["RootFS"]["Layers"]);
    let config: Value = serde_json::from_slice(&skopeo(&[
        "inspect",
        "--config",
        &format!("docker-archive:{}", docker.display()),
    ]))
    .unwrap();
    assert_eq!(config["config"]["Cmd"], serde_json::json!(["sh"]));
    let o: Value = serde_json::from_slice(&skopeo(&[
        "inspect",
        &format!("oci-archive:{}:docker.io/library/busybox:1", oci.display()),
    ]))
    .unwrap();
    assert_eq!(o["Digest"], md.as_str());
    // skopeo copies them (reading every blob and verifying digests).
    skopeo(&[
        "copy",
        "-q",
        &format!("docker-archive:{}", docker.display()),
        &format!("dir:{}", dir.join("fromdocker").display()),
    ]);
    skopeo(&[
        "copy",
        "-q",
        &format!("oci-archive:{}", oci.display()),
        &format!("dir:{}", dir.join("fromoci").display()),
    ]);
    assert!(
        dir.join("fromoci").join(&id[7..]).exists(),
        "config blob under its digest"
    );

    // A docker-archive and an OCI archive written by skopeo load into berth.
    let sk_docker = dir.join("sk-d.tar");
    let sk_oci = dir.join("sk-o.tar");
    let src = format!(
        "oci:{}:docker.io/library/busybox:1",
        root.path().join("images").display()
    );
    skopeo(&[
        "copy",
        "-q",
        &src,
        &format!("docker-archive:{}:skopeo/made:it", sk_docker.display()),
    ]);
    skopeo(&[
        "copy",
        "-q",
        &src,
        &format!("oci-archive:{}:skopeo/made:oci", sk_oci.display()),
    ]);
    let other = TestRoot::new();
    assert_eq!(
        other.ok(&["load", "-i", sk_docker.to_str().unwrap()]),
        "Loaded image: skopeo/made:it\n"
    );
    assert_eq!(inspect(&other, "skopeo/made:it")["Id"], id.as_str());
    assert_eq!(
        other.ok(&["load", "-i", sk_oci.to_str().unwrap()]),
        "Loaded image: skopeo/made:oci\n"
    );
    assert_eq!(inspect(&other, "skopeo/made:oci")["Id"], id.as_str());
    // And berth's store can unpack what it loaded from skopeo.
    let v: Value = serde_json::from_str(&other.ok(&["images", "--json"])).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
}

/// Asserts a failed command printed one error line, exited non-zero and
/// left the state root exactly as it was.
fn fails_cleanly(root: &TestRoot, args: &[&str], stdin: Option<&[u8]>, want: &str) {
    let before = store_listing(root.path());
    let out = match stdin {
        Some(data) => run_stdin(root, args, data),
        None => root.run(args),
    };
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "berth {args:?} succeeded");
    assert_eq!(
        err.lines().count(),
        1,
        "berth {args:?}: one error line, got {err:?}"
    );
    assert!(
        err.starts_with("error: ") && err.contains(want),
        "berth {args:?}: {err:?} lacks {want:?}"
    );
    assert_eq!(
        store_listing(root.path()),
        before,
        "berth {args:?} changed the store"
    );
    assert_tmp_empty(root.path());
}

#[test]
fn malformed_input_fails_with_one_line_and_changes_nothing() {
    let root = TestRoot::new();
    import_busybox(&root, "busybox");
    let dir = tempfile::tempdir().unwrap();
    let rootfs = std::fs::read(busybox_rootfs_tar()).unwrap();
    let p = |name: &str, data: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, data).unwrap();
        path.to_str().unwrap().to_string()
    };
    let truncated_tar = p("truncated.tar", &rootfs[..rootfs.len() / 2]);
    let random: Vec<u8> = (0..10_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let junk = p("junk.bin", &random);
    let empty = p("empty.tar", &[0u8; 1024]);
    let gz = gzip(&rootfs);
    let truncated_gz = p("truncated.tar.gz", &gz[..gz.len() / 2]);
    let saved = dir.path().join("saved.tar");
    root.ok(&["save", "-o", saved.to_str().unwrap(), "busybox"]);
    let saved_bytes = std::fs::read(&saved).unwrap();
    let truncated_archive = p(
        "truncated-archive.tar",
        &saved_bytes[..saved_bytes.len() - 3000],
    );
    let rootfs_path = busybox_rootfs_tar().to_str().unwrap().to_string();

    // import
    fails_cleanly(
        &root,
        &["import", &truncated_tar, "x"],
        None,
        "not a tar archive",
    );
    fails_cleanly(&root, &["import", &junk, "x"], None, "not a tar archive");
    fails_cleanly(&root, &["import", &empty, "x"], None, "holds no files");
    fails_cleanly(
        &root,
        &["import", &truncated_gz, "x"],
        None,
        "not a tar archive",
    );
    fails_cleanly(
        &root,
        &["import", "-", "x"],
        Some(&random),
        "not a tar archive",
    );
    fails_cleanly(&root, &["import", "/nonexistent.tar"], None, "No such file");
    fails_cleanly(
        &root,
        &["import", &rootfs_path, "Bad:Name"],
        None,
        "must be lowercase",
    );
    fails_cleanly(
        &root,
        &["import", "-c", "RUN true", &rootfs_path],
        None,
        "RUN is not supported",
    );
    // load
    fails_cleanly(&root, &["load", "-i", &truncated_archive], None, "corrupt");
    fails_cleanly(
        &root,
        &["load", "-i", &rootfs_path],
        None,
        "not an image archive",
    );
    fails_cleanly(&root, &["load", "-i", &junk], None, "corrupt");
    fails_cleanly(&root, &["load", "-i", &truncated_gz], None, "corrupt");
    fails_cleanly(
        &root,
        &["load"],
        Some(&saved_bytes[..saved_bytes.len() / 3]),
        "corrupt",
    );
    // save
    let out = dir.path().join("never.tar");
    fails_cleanly(
        &root,
        &["save", "-o", out.to_str().unwrap(), "busybox", "nope:1"],
        None,
        "no such image: nope:1",
    );
    assert!(!out.exists(), "no partial archive");
    assert_eq!(
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| e
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".berth-save"))
            .count(),
        0
    );
    // tag, inspect, rmi
    fails_cleanly(&root, &["tag", "nope", "x"], None, "no such image: nope");
    fails_cleanly(
        &root,
        &["tag", "busybox", "UPPER"],
        None,
        "must be lowercase",
    );
    fails_cleanly(
        &root,
        &["tag", "busybox", "a:b:c"],
        None,
        "invalid reference format",
    );
    fails_cleanly(&root, &["rmi", "nope"], None, "no such image: nope");
    fails_cleanly(
        &root,
        &["image", "rm", "sha256:0000"],
        None,
        "no such image",
    );
    let out = root.run(&["inspect", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: no such object: nope\n"
    );
}

#[test]
fn a_corrupt_blob_in_an_archive_is_rejected() {
    // An OCI archive whose layer does not match its digest.
    let root = TestRoot::new();
    import_busybox(&root, "busybox");
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("o.tar");
    root.ok(&[
        "save",
        "--format",
        "oci",
        "-o",
        saved.to_str().unwrap(),
        "busybox",
    ]);
    let extracted = dir.path().join("x");
    std::fs::create_dir(&extracted).unwrap();
    assert!(Command::new("tar")
        .arg("-xf")
        .arg(&saved)
        .arg("-C")
        .arg(&extracted)
        .status()
        .unwrap()
        .success());
    let layer = inspect(&root, "busybox")["RootFS"]["Layers"][0]
        .as_str()
        .unwrap()
        .to_string();
    let layer_path = extracted.join("blobs/sha256").join(&layer[7..]);
    let mut data = std::fs::read(&layer_path).unwrap();
    data[600] ^= 0xff;
    std::fs::write(&layer_path, data).unwrap();
    let bad = dir.path().join("bad.tar");
    assert!(Command::new("tar")
        .arg("-cf")
        .arg(&bad)
        .arg("-C")
        .arg(&extracted)
        .arg(".")
        .status()
        .unwrap()
        .success());
    let other = TestRoot::new();
    other.ok(&["images"]);
    fails_cleanly(
        &other,
        &["load", "-i", bad.to_str().unwrap()],
        None,
        "does not match its digest",
    );
    assert_eq!(other.ok(&["images", "-q"]), "");
}

/// A prune or `rmi` while another berth process writes images (holds a
/// lease) deletes no unreferenced blob: they may be the writer's, not yet
/// named. Once the writer is gone, the next prune reclaims them.
#[test]
fn gc_waits_for_writers_leases() {
    let root = TestRoot::new();
    import_busybox(&root, "victim");
    let blobs = |r: &TestRoot| {
        std::fs::read_dir(r.path().join("images/blobs/sha256"))
            .unwrap()
            .count()
    };
    assert!(blobs(&root) >= 3, "manifest, config, layer");
    // A live process holding a lease, as a pull in progress would.
    let mut writer = Command::new("sleep").arg("60").spawn().unwrap();
    let identity = berth::state::process::identity(writer.id()).unwrap();
    let leases = root.path().join("image-leases");
    std::fs::create_dir_all(&leases).unwrap();
    std::fs::write(leases.join(&identity), b"").unwrap();

    root.ok(&["rmi", "victim"]);
    assert!(!root.ok(&["images"]).contains("victim"));
    assert!(blobs(&root) >= 3, "rmi deleted blobs under a writer");
    root.ok(&["image", "prune", "-f"]);
    assert!(blobs(&root) >= 3, "prune deleted blobs under a writer");

    writer.kill().unwrap();
    writer.wait().unwrap();
    root.ok(&["image", "prune", "-f"]);
    assert_eq!(blobs(&root), 0, "the writer is gone: its blobs are garbage");
    assert!(
        !leases.join(&identity).exists(),
        "a dead writer's lease goes"
    );
}

/// Writes `data` as a blob of the OCI layout at `dir`; returns (digest, size).
fn put_layout_blob(dir: &std::path::Path, data: &[u8]) -> (String, usize) {
    let digest = image_support::sha256(data);
    std::fs::write(dir.join("blobs/sha256").join(&digest[7..]), data).unwrap();
    (digest, data.len())
}

#[test]
fn load_verifies_layers_against_their_diff_ids() {
    // An OCI archive whose blobs all match their digests, but whose config
    // names a diff_id the layer's content does not have.
    let root = TestRoot::new();
    import_busybox(&root, "busybox");
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("o.tar");
    root.ok(&[
        "save",
        "--format",
        "oci",
        "-o",
        saved.to_str().unwrap(),
        "busybox",
    ]);
    let x = dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    assert!(Command::new("tar")
        .arg("-xf")
        .arg(&saved)
        .arg("-C")
        .arg(&x)
        .status()
        .unwrap()
        .success());
    let read = |d: &str| -> Value {
        serde_json::from_slice(&std::fs::read(x.join("blobs/sha256").join(&d[7..])).unwrap())
            .unwrap()
    };
    let mut index: Value =
        serde_json::from_slice(&std::fs::read(x.join("index.json")).unwrap()).unwrap();
    let mdigest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mut manifest = read(&mdigest);
    let mut config = read(manifest["config"]["digest"].as_str().unwrap());
    config["rootfs"]["diff_ids"][0] = image_support::sha256(b"some other layer").into();
    let (cd, cn) = put_layout_blob(&x, &serde_json::to_vec(&config).unwrap());
    manifest["config"]["digest"] = cd.into();
    manifest["config"]["size"] = cn.into();
    let (md, mn) = put_layout_blob(&x, &serde_json::to_vec(&manifest).unwrap());
    index["manifests"][0]["digest"] = md.into();
    index["manifests"][0]["size"] = mn.into();
    std::fs::write(x.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    let bad = dir.path().join("bad.tar");
    assert!(Command::new("tar")
        .arg("-cf")
        .arg(&bad)
        .arg("-C")
        .arg(&x)
        .arg(".")
        .status()
        .unwrap()
        .success());
    let other = TestRoot::new();
    other.ok(&["images"]);
    fails_cleanly(
        &other,
        &["load", "-i", bad.to_str().unwrap()],
        None,
        "does not match its diff_id",
    );
    assert_eq!(other.ok(&["images", "-q"]), "");
}
