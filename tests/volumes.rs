//! Volumes through the container verbs, as Docker users know them:
//! `run -v NAME:/dst` (created on demand, filled from the image when empty,
//! outliving the container), `run -v /dst` and image `VOLUME`s (anonymous,
//! going with `rm -v` and `run --rm`), and `berth volume
//! create|ls|inspect|rm|prune` with the in-use rule. As root.

mod common;

use common::*;

/// A state root with `busybox` and `seeded` (see [`make_seeded_image`]).
fn root_with_images() -> TestRoot {
    let root = TestRoot::new();
    let tar = busybox_rootfs_tar();
    root.ok(&["import", tar.to_str().unwrap(), "busybox"]);
    make_seeded_image(&root);
    root
}

/// Removes every container of the root on drop (the root removes the rest).
struct Cleanup<'a>(&'a TestRoot);
impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        self.0.remove_all_containers();
    }
}

fn volumes(root: &TestRoot) -> Vec<String> {
    root.ok(&["volume", "ls", "-q"])
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn named_volume_is_filled_from_the_image_and_outlives_its_containers() {
    let root = root_with_images();
    let _c = Cleanup(&root);
    let run = |args: &[&str]| {
        let mut a = vec!["run", "--rm", "--network", "none", "-v", "data:/seed"];
        a.extend_from_slice(args);
        root.ok(&a)
    };
    // First use: created, and filled with what the image has at /seed,
    // ownership included.
    let out = run(&[
        "seeded",
        "sh",
        "-c",
        "cat /seed/file; stat -c %u:%g /seed; echo kept > /seed/mine",
    ]);
    assert_eq!(out, "from the image\n33:33\n");
    assert_eq!(volumes(&root), vec!["data"]);
    // A later container sees the volume, not a fresh copy.
    let out = run(&["busybox", "cat", "/seed/mine", "/seed/file"]);
    assert_eq!(out, "kept\nfrom the image\n");

    // nocopy: an empty volume stays empty.
    let out = root.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "empty:/seed:nocopy",
        "seeded",
        "ls",
        "-A",
        "/seed",
    ]);
    assert_eq!(out, "");
    // ro is read-only.
    let out = root.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "data:/seed:ro",
        "busybox",
        "touch",
        "/seed/x",
    ]);
    assert!(!out.status.success());

    // In use: not removable; after rm, it is.
    root.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "holder",
        "-v",
        "data:/d",
        "busybox",
        "sleep",
        "1000",
    ]);
    let err = root.fails(&["volume", "rm", "data"]);
    assert!(err.contains("volume is in use by holder"), "{err}");
    root.ok(&["rm", "-f", "holder"]);
    root.ok(&["volume", "rm", "data", "empty"]);
    assert!(volumes(&root).is_empty());
    let err = root.fails(&["volume", "rm", "data"]);
    assert!(err.contains("no such volume: data"), "{err}");
}

#[test]
fn anonymous_volumes_go_with_rm_v_and_run_rm() {
    let root = root_with_images();
    let _c = Cleanup(&root);
    // `-v /cache` plus the image's VOLUME /seed: two anonymous volumes,
    // the image's one filled from the image.
    root.ok(&[
        "run",
        "--network",
        "none",
        "--name",
        "anon-a",
        "-v",
        "/cache",
        "seeded",
        "cat",
        "/seed/file",
    ]);
    let anon = volumes(&root);
    assert_eq!(anon.len(), 2, "{anon:?}");
    assert!(anon.iter().all(|v| v.len() == 64), "{anon:?}");
    let logs = root.ok(&["logs", "anon-a"]);
    assert_eq!(logs, "from the image\n");
    // rm without -v keeps them (Docker does); prune takes unused anonymous ones.
    root.ok(&["rm", "anon-a"]);
    assert_eq!(volumes(&root).len(), 2);
    root.ok(&["volume", "create", "--label", "keep=yes", "named"]);
    let pruned = root.ok(&["volume", "prune", "-f"]);
    assert_eq!(pruned.lines().count(), 3, "{pruned}");
    assert_eq!(volumes(&root), vec!["named"]);
    assert_eq!(
        root.ok(&["volume", "ls", "-q", "--filter", "label=keep=yes"]),
        "named\n"
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&root.ok(&["volume", "inspect", "named"])).unwrap();
    assert_eq!(inspect[0]["Labels"]["keep"], "yes");
    assert!(inspect[0]["Mountpoint"]
        .as_str()
        .unwrap()
        .ends_with("/volumes/named/_data"));

    // rm -v takes them.
    root.ok(&[
        "run",
        "--network",
        "none",
        "--name",
        "anon-b",
        "-v",
        "/cache",
        "seeded",
        "true",
    ]);
    assert_eq!(volumes(&root).len(), 3);
    root.ok(&["rm", "-v", "anon-b"]);
    assert_eq!(volumes(&root), vec!["named"]);
    // So does run --rm.
    root.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "/cache",
        "seeded",
        "true",
    ]);
    common::eventually("run --rm removed its anonymous volumes", || {
        volumes(&root) == vec!["named".to_string()]
    });
    // system df counts them; system prune --volumes takes unused anonymous ones.
    root.ok(&[
        "run",
        "--network",
        "none",
        "--name",
        "anon-c",
        "-v",
        "/cache",
        "busybox",
        "true",
    ]);
    root.ok(&["rm", "anon-c"]);
    let df = root.ok(&["system", "df", "--format", "json"]);
    let line = df.lines().find(|l| l.contains("Local Volumes")).unwrap();
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["TotalCount"], "2", "{df}");
    root.ok(&["system", "prune", "-f", "--volumes"]);
    assert_eq!(volumes(&root), vec!["named"]);
    root.ok(&["volume", "prune", "-af"]);
    assert!(volumes(&root).is_empty());
}

#[test]
fn bad_volume_arguments_fail_before_anything_is_made() {
    let root = root_with_images();
    let _c = Cleanup(&root);
    for (arg, says) in [
        ("../x:/d", "invalid volume name"),
        ("v:relative", "must be absolute"),
        ("v:/d:rx", "invalid volume option"),
        ("/tmp:/d:nocopy", "nocopy applies to volumes"),
        ("v:/", "cannot mount over the container's root"),
    ] {
        let err = root.fails(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            arg,
            "busybox",
            "true",
        ]);
        assert!(err.contains(says), "{arg}: {err}");
    }
    assert!(volumes(&root).is_empty());
    assert!(root.ok(&["ps", "-aq"]).is_empty());
}
