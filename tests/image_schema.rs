//! Every manifest, config and index berth writes validates against the OCI
//! image spec's JSON Schemas (copied to tests/fixtures/oci-schema/).

mod common;
mod image_support;

use std::path::Path;

use common::{busybox_rootfs_tar, TestRoot};
use image_support::validate;
use serde_json::Value;

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Validates an OCI layout directory: oci-layout, index.json, and every
/// manifest the index names with its config.
fn validate_layout(dir: &Path) -> usize {
    validate(
        "image-layout-schema.json",
        &read_json(&dir.join("oci-layout")),
    );
    let index = read_json(&dir.join("index.json"));
    validate("image-index-schema.json", &index);
    let mut n = 0;
    for m in index["manifests"].as_array().unwrap() {
        let hex = m["digest"]
            .as_str()
            .unwrap()
            .strip_prefix("sha256:")
            .unwrap();
        let manifest = read_json(&dir.join("blobs/sha256").join(hex));
        validate("image-manifest-schema.json", &manifest);
        let chex = manifest["config"]["digest"]
            .as_str()
            .unwrap()
            .strip_prefix("sha256:")
            .unwrap();
        validate(
            "config-schema.json",
            &read_json(&dir.join("blobs/sha256").join(chex)),
        );
        n += 1;
    }
    n
}

#[test]
fn the_validator_rejects_what_the_spec_forbids() {
    // Guards against a validator that accepts everything.
    let bad = serde_json::json!({"schemaVersion": 3, "config": {}, "layers": "x"});
    let schema: Value = serde_json::from_slice(
        &std::fs::read(image_support::schema_dir().join("image-manifest-schema.json")).unwrap(),
    )
    .unwrap();
    let r = std::panic::catch_unwind(|| validate("image-manifest-schema.json", &bad));
    assert!(r.is_err(), "an invalid manifest passed {schema}");
    let bad_digest = serde_json::json!({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "no-algorithm", "size": 1}]});
    assert!(std::panic::catch_unwind(|| validate("image-index-schema.json", &bad_digest)).is_err());
}

#[test]
fn store_and_archives_validate_against_the_oci_schemas() {
    let root = TestRoot::new();
    let tar = busybox_rootfs_tar();
    let tar = tar.to_str().unwrap();
    root.ok(&[
        "import",
        "--change",
        r#"CMD ["sh"]"#,
        "--change",
        "ENV A=1",
        "--change",
        "EXPOSE 80",
        "--change",
        "VOLUME /data",
        "--change",
        "LABEL x=y",
        "--change",
        "USER 1000",
        "--change",
        "WORKDIR /srv",
        "--change",
        "STOPSIGNAL SIGINT",
        "--change",
        "ENTRYPOINT [\"/bin/busybox\"]",
        tar,
        "busybox:1",
    ]);
    root.ok(&["import", tar]); // untagged
    root.ok(&["tag", "busybox:1", "localhost:5000/x/y:z"]);
    assert_eq!(validate_layout(&root.path().join("images")), 3);

    for format in ["oci", "docker"] {
        let out = root.path().join(format!("save-{format}.tar"));
        root.ok(&[
            "save",
            "--format",
            format,
            "-o",
            out.to_str().unwrap(),
            "busybox:1",
            "localhost:5000/x/y:z",
        ]);
        let dir = tempfile::tempdir().unwrap();
        let st = std::process::Command::new("tar")
            .arg("-xf")
            .arg(&out)
            .arg("-C")
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(st.success());
        assert_eq!(validate_layout(dir.path()), 2, "{format} archive");
    }

    // A docker-archive berth converts on load (skopeo writes it) validates too.
    common::require("skopeo");
    let sk = root.path().join("sk.tar");
    let src = format!(
        "oci:{}:docker.io/library/busybox:1",
        root.path().join("images").display()
    );
    let st = std::process::Command::new("skopeo")
        .args([
            "copy",
            "-q",
            &src,
            &format!("docker-archive:{}:conv/img:1", sk.display()),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let other = TestRoot::new();
    other.ok(&["load", "-i", sk.to_str().unwrap()]);
    assert_eq!(validate_layout(&other.path().join("images")), 1);
}
