//! `system df`, `builder prune` and `system prune` on the build cache, as
//! root with the busybox image: shared layers are counted once, the build
//! cache is measured and can be removed (dangling, or all with -a), and an
//! image that keeps its name keeps working after its cache is gone.

mod common;

use std::fs;

use common::TestRoot;

fn root_with_busybox() -> TestRoot {
    common::root_with_busybox("the disk-usage tests build images")
}

/// `system df --format json` rows by type: (total, active, size text).
fn df(root: &TestRoot) -> std::collections::HashMap<String, (String, String, String)> {
    root.ok(&["system", "df", "--format", "json"])
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let s = |k: &str| v[k].as_str().unwrap().to_string();
            (s("Type"), (s("TotalCount"), s("Active"), s("Size")))
        })
        .collect()
}

/// The bytes of a size as berth prints it (`2.13MB`, `512B`, `0B`).
fn bytes(text: &str) -> f64 {
    let split = text.find(|c: char| c.is_ascii_alphabetic()).unwrap();
    let (n, unit) = text.split_at(split);
    let n: f64 = n.parse().unwrap();
    n * match unit {
        "B" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        other => panic!("unit {other}"),
    }
}

fn build(root: &TestRoot, ctx: &std::path::Path, tag: &str) -> String {
    root.ok(&["build", "-t", tag, ctx.to_str().unwrap()])
}

#[test]
fn shared_layers_count_once_and_the_build_cache_is_measured_and_pruned() {
    let root = root_with_busybox();
    let base = df(&root);
    let busybox_size = bytes(&base["Images"].2);
    assert_eq!(base["Build Cache"].0, "0");

    let ctx = tempfile::tempdir().unwrap();
    fs::write(ctx.path().join("big"), vec![b'x'; 300_000]).unwrap();
    fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nCOPY big /big\nRUN head -c 200000 /dev/zero > /zeros\nCMD [\"cat\", \"/big\"]\n",
    )
    .unwrap();
    build(&root, ctx.path(), "app");
    // Two tagged images share busybox's layer: it counts once, so the
    // images hold busybox + the two new layers (~0.5 MB), not twice busybox.
    let after = df(&root);
    assert_eq!(after["Images"].0, "2", "{after:?}");
    let images = bytes(&after["Images"].2);
    assert!(
        images > busybox_size + 450_000.0 && images < busybox_size + 700_000.0,
        "images {images} vs busybox {busybox_size}: {after:?}"
    );
    // The intermediate images are the build cache; their layers are the
    // tagged image's too, so they add no bytes of their own.
    let cache_count: usize = after["Build Cache"].0.parse().unwrap();
    assert!(cache_count >= 2, "{after:?}");
    assert_eq!(bytes(&after["Build Cache"].2), 0.0, "{after:?}");

    // Dangling cache only: the cache of a named image stays, and the
    // rebuild is fully cached.
    root.ok(&["builder", "prune", "-f"]);
    let rebuild = build(&root, ctx.path(), "app");
    assert_eq!(rebuild.matches("Using cache").count(), 3, "{rebuild}");

    // An edit leaves the old image dangling and its two intermediates
    // (COPY, RUN) with nothing named below them: that cache is dangling and
    // goes; the current image's cache stays.
    fs::write(ctx.path().join("big"), vec![b'y'; 300_000]).unwrap();
    build(&root, ctx.path(), "app");
    let before: usize = df(&root)["Build Cache"].0.parse().unwrap();
    let pruned = root.ok(&["builder", "prune", "-f"]);
    assert!(pruned.contains("Deleted build cache objects:"), "{pruned}");
    assert!(pruned.contains("Total reclaimed space:"), "{pruned}");
    let after: usize = df(&root)["Build Cache"].0.parse().unwrap();
    assert_eq!(after, before - 2, "{pruned}");
    let rebuild = build(&root, ctx.path(), "app");
    assert_eq!(rebuild.matches("Using cache").count(), 3, "{rebuild}");

    // -a: all of it; the image keeps working and the next build reruns.
    let all = root.ok(&["builder", "prune", "-a", "-f"]);
    assert!(all.contains("Deleted build cache objects:"), "{all}");
    assert_eq!(df(&root)["Build Cache"].0, "0");
    let out = root.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "app",
        "sh",
        "-c",
        "wc -c < /big",
    ]);
    assert_eq!(out.trim(), "300000");
    let rebuild = build(&root, ctx.path(), "app");
    assert_eq!(rebuild.matches("Using cache").count(), 0, "{rebuild}");

    // system prune -a clears the build cache too.
    assert_ne!(df(&root)["Build Cache"].0, "0");
    root.ok(&["system", "prune", "-a", "-f"]);
    assert_eq!(df(&root)["Build Cache"].0, "0");
}

#[test]
fn builder_prune_asks_first() {
    let root = root_with_busybox();
    let out = root
        .cmd()
        .args(["builder", "prune"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("WARNING! This will remove all dangling build cache."),
        "{text}"
    );
    assert!(
        !text.contains("Total reclaimed space"),
        "nothing was pruned: {text}"
    );
}

/// `RUN --mount=type=cache` directories are build cache: `system df`
/// counts them and `builder prune -a` removes them.
#[test]
fn cache_mounts_are_build_cache() {
    let root = root_with_busybox();
    let ctx = tempfile::tempdir().unwrap();
    fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nRUN --mount=type=cache,target=/cache head -c 400000 /dev/zero > /cache/blob && echo done > /done\n",
    )
    .unwrap();
    build(&root, ctx.path(), "mounted");
    let mounts = root.path().join("build-mounts");
    assert_eq!(fs::read_dir(&mounts).unwrap().count(), 1);
    let usage = df(&root);
    assert!(bytes(&usage["Build Cache"].2) >= 400_000.0, "{usage:?}");
    root.ok(&["builder", "prune", "-f"]);
    assert_eq!(
        fs::read_dir(&mounts).unwrap().count(),
        1,
        "dangling prune keeps mounts"
    );
    let out = root.ok(&["builder", "prune", "-a", "-f"]);
    assert!(out.contains("Deleted cache mounts: 1"), "{out}");
    assert_eq!(fs::read_dir(&mounts).unwrap().count(), 0);
    assert_eq!(df(&root)["Build Cache"].0, "0");
}
