//! Layer unpacking through the store, as root: metadata is kept, whiteouts
//! become overlay whiteouts, and a corpus of hostile layers (built here in
//! Rust) is rejected or confined — nothing appears outside the extraction
//! directory (a sentinel directory stays as it was) and the state root is
//! exactly as before.

mod common;
mod image_support;

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use berth::image::layer::{self, LayerError, UnpackOptions};
use berth::image::layout::{self, Descriptor, Manifest};
use berth::image::{Digest, Image, ImageStore, Reference};
use berth::state::StateRoot;
use common::TestRoot;
use image_support::{gzip, listing, store_listing, RawTar};

/// A layer blob and the diff_id to record for it.
struct Layer {
    blob: Vec<u8>,
    diff_id: Digest,
}

impl Layer {
    fn plain(tar: Vec<u8>) -> Self {
        Self {
            diff_id: Digest::of_bytes(&tar),
            blob: tar,
        }
    }
    fn gzip(tar: Vec<u8>) -> Self {
        Self {
            diff_id: Digest::of_bytes(&tar),
            blob: gzip(&tar),
        }
    }
    fn zstd(tar: Vec<u8>) -> Self {
        Self {
            diff_id: Digest::of_bytes(&tar),
            blob: zstd::encode_all(&tar[..], 3).unwrap(),
        }
    }
}

fn add_image(store: &ImageStore, name: &str, layers: Vec<Layer>) -> Image {
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for l in layers {
        let (d, n) = store.put_blob(&l.blob[..], None).unwrap();
        descs.push(Descriptor::new(layout::OCI_LAYER_GZIP, d, n));
        diff_ids.push(l.diff_id.to_string());
    }
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let cbytes = serde_json::to_vec(&config).unwrap();
    let (cd, cn) = store.put_blob(&cbytes[..], None).unwrap();
    let m = Manifest {
        schema_version: 2,
        media_type: Some(layout::OCI_MANIFEST.into()),
        config: Descriptor::new(layout::OCI_CONFIG, cd, cn),
        layers: descs,
        annotations: Default::default(),
    };
    let md = store
        .put_manifest(&m.to_bytes(), layout::OCI_MANIFEST)
        .unwrap();
    let r = Reference::parse(name).unwrap();
    store.tag(&r, &md).unwrap();
    store.resolve(name).unwrap()
}

fn open(root: &TestRoot) -> ImageStore {
    ImageStore::open(&StateRoot::open(root.path()).unwrap()).unwrap()
}

#[test]
fn unpacking_keeps_metadata_and_converts_whiteouts() {
    let root = TestRoot::new();
    let store = open(&root);
    let base = RawTar::new()
        .dir_with("./", 0, 0, 0o755, 1_500_000_000)
        .dir_with("home/u/", 1000, 1001, 0o750, 1_500_000_001)
        .file_with("home/u/f", b"data", 1234, 5678, 0o4755, 1_500_000_002)
        .hardlink("home/u/hl", "home/u/f")
        .symlink("lnk", "/etc/passwd")
        .device("dev/zero2", tar::EntryType::Char, 1, 5)
        .device("fifo", tar::EntryType::Fifo, 0, 0)
        .pax(&[
            ("SCHILY.xattr.user.note", b"hi"),
            ("SCHILY.xattr.trusted.overlay.redirect", b"/x"),
        ])
        .file("x", b"1")
        .file("dup", b"first")
        .file("dup", b"second")
        .dir("gone/")
        .file("gone/.wh.old", b"")
        .file("opq/.wh..wh..opq", b"")
        .file("opq/kept", b"k")
        .file(".wh..wh.plnk", b"")
        .finish();
    let second = RawTar::new().file("two", b"gz").finish();
    let third = RawTar::new().file("three", b"zst").finish();
    let img = add_image(
        &store,
        "meta",
        vec![Layer::plain(base), Layer::gzip(second), Layer::zstd(third)],
    );
    let dirs = store.layer_dirs(&img).unwrap();
    assert_eq!(dirs.len(), 3);
    let d = &dirs[0];
    let md = |p: &str| {
        d.join(p)
            .symlink_metadata()
            .unwrap_or_else(|e| panic!("{p}: {e}"))
    };
    let f = md("home/u/f");
    assert_eq!(
        (f.uid(), f.gid(), f.mode() & 0o7777, f.mtime()),
        (1234, 5678, 0o4755, 1_500_000_002)
    );
    assert_eq!(std::fs::read(d.join("home/u/f")).unwrap(), b"data");
    let u = md("home/u");
    assert_eq!(
        (u.uid(), u.gid(), u.mode() & 0o7777, u.mtime()),
        (1000, 1001, 0o750, 1_500_000_001)
    );
    assert_eq!(md(".").mtime(), 1_500_000_000);
    let hl = md("home/u/hl");
    assert_eq!((hl.ino(), hl.nlink()), (f.ino(), 2));
    assert_eq!(
        std::fs::read_link(d.join("lnk")).unwrap(),
        Path::new("/etc/passwd")
    );
    let dev = md("dev/zero2");
    assert!(dev.file_type().is_char_device());
    assert_eq!(dev.rdev(), libc::makedev(1, 5));
    assert!(md("fifo").file_type().is_fifo());
    assert_eq!(
        xattr::get(d.join("x"), "user.note").unwrap(),
        Some(b"hi".to_vec())
    );
    assert_eq!(
        xattr::get(d.join("x"), "trusted.overlay.redirect").unwrap(),
        None,
        "overlay xattrs never come from a layer"
    );
    assert_eq!(std::fs::read(d.join("dup")).unwrap(), b"second");
    let wh = md("gone/old");
    assert!(
        wh.file_type().is_char_device() && wh.rdev() == 0,
        "whiteout is a 0/0 char device"
    );
    assert!(!d.join("gone/.wh.old").exists());
    assert_eq!(
        xattr::get(d.join("opq"), "trusted.overlay.opaque").unwrap(),
        Some(b"y".to_vec())
    );
    assert!(!d.join("opq/.wh..wh..opq").exists());
    assert!(!d.join(".wh..wh.plnk").exists());
    assert_eq!(std::fs::read(dirs[1].join("two")).unwrap(), b"gz");
    assert_eq!(std::fs::read(dirs[2].join("three")).unwrap(), b"zst");
    // Layer dirs are keyed by chain id; the short links point at them.
    let chains = img.chain_ids().unwrap();
    for (dir, chain) in dirs.iter().zip(&chains) {
        assert_eq!(
            dir,
            &root.path().join("layers").join(chain.hex()).join("diff")
        );
    }
    let links = store.layer_link_dirs(&img).unwrap();
    for (link, dir) in links.iter().zip(&dirs) {
        assert!(link.starts_with(root.path().join("layers/l")));
        assert_eq!(link.canonicalize().unwrap(), dir.canonicalize().unwrap());
        assert!(link.file_name().unwrap().len() <= 16);
    }
    // Unpacked once: a second call changes nothing.
    let before = store_listing(root.path());
    assert_eq!(store.layer_dirs(&img).unwrap(), dirs);
    assert_eq!(store_listing(root.path()), before);
}

/// A gzip stream that inflates to a tar holding one file of `size` zero
/// bytes, built from concatenated gzip members so that making it is cheap.
fn gzip_bomb(size: u64) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_path("zeros").unwrap();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    let mut out = gzip(h.as_bytes());
    const MIB: u64 = 1 << 20;
    let chunk = gzip(&vec![0u8; MIB as usize]);
    for _ in 0..size.div_ceil(MIB) {
        out.extend_from_slice(&chunk);
    }
    out.extend_from_slice(&gzip(&[0u8; 1024]));
    out
}

/// A tar with a PAX header of `size` bytes (gzip'ed, so it is small).
fn pax_bomb(size: u64) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_path("PaxHeader").unwrap();
    h.set_size(size);
    h.set_entry_type(tar::EntryType::XHeader);
    h.set_cksum();
    let mut out = gzip(h.as_bytes());
    const MIB: u64 = 1 << 20;
    let chunk = gzip(&vec![b'a'; MIB as usize]);
    for _ in 0..size.div_ceil(MIB) {
        out.extend_from_slice(&chunk);
    }
    out
}

struct Case {
    name: &'static str,
    layers: Vec<Layer>,
    error: &'static str,
}

#[test]
fn hostile_layers_are_rejected_and_leave_nothing_behind() {
    let sentinel = tempfile::tempdir().unwrap();
    let s = sentinel.path().to_str().unwrap().to_string();
    std::fs::write(sentinel.path().join("victim"), b"keep me").unwrap();
    let sentinel_before = listing(sentinel.path());
    let abs_name = format!("/tmp/berth-abs-{}", std::process::id());
    let s_rel = |t: RawTar| Layer::plain(t.finish());
    let cases = vec![
        Case {
            name: "dotdot",
            layers: vec![s_rel(RawTar::new().file("../escape", b"x"))],
            error: "contains '..'",
        },
        Case {
            name: "dotdot-inner",
            layers: vec![s_rel(RawTar::new().dir("a/").file("a/../../escape", b"x"))],
            error: "contains '..'",
        },
        Case {
            name: "absolute",
            layers: vec![s_rel(RawTar::new().file(&abs_name, b"x"))],
            error: "absolute path",
        },
        Case {
            name: "symlink-then-file",
            layers: vec![s_rel(RawTar::new().symlink("s", &s).file("s/pwned", b"x"))],
            error: "is a symlink",
        },
        Case {
            name: "relative-symlink-then-file",
            layers: vec![s_rel(
                RawTar::new()
                    .symlink("up", "../../../../../..")
                    .file("up/pwned", b"x"),
            )],
            error: "is a symlink",
        },
        Case {
            name: "symlink-then-dir",
            layers: vec![s_rel(RawTar::new().symlink("s", &s).dir("s/newdir/"))],
            error: "is a symlink",
        },
        Case {
            name: "whiteout-through-symlink",
            layers: vec![s_rel(
                RawTar::new().symlink("w", &s).file("w/.wh.victim", b""),
            )],
            error: "is a symlink",
        },
        Case {
            name: "opaque-through-symlink",
            layers: vec![s_rel(
                RawTar::new().symlink("o", &s).file("o/.wh..wh..opq", b""),
            )],
            error: "is a symlink",
        },
        Case {
            name: "hardlink-dotdot",
            layers: vec![s_rel(RawTar::new().hardlink("h", "../../../../etc/passwd"))],
            error: "points outside the layer",
        },
        Case {
            name: "hardlink-absolute",
            layers: vec![s_rel(RawTar::new().hardlink("h", &format!("{s}/victim")))],
            error: "points outside the layer",
        },
        Case {
            name: "hardlink-through-symlink",
            layers: vec![s_rel(
                RawTar::new().symlink("e", &s).hardlink("h", "e/victim"),
            )],
            error: "is a symlink",
        },
        Case {
            name: "gzip-bomb-past-1gib",
            layers: vec![Layer {
                blob: gzip_bomb(1100 << 20),
                diff_id: Digest::of_bytes(b"unknown"),
            }],
            error: "inflates past 1073741824 bytes",
        },
        Case {
            name: "pax-header-bomb",
            layers: vec![Layer {
                blob: pax_bomb(64 << 20),
                diff_id: Digest::of_bytes(b"unknown"),
            }],
            error: "larger than 1 MiB",
        },
        Case {
            name: "diff-id-mismatch",
            layers: vec![Layer {
                blob: RawTar::new().file("f", b"real").finish(),
                diff_id: Digest::of_bytes(b"claimed"),
            }],
            error: "does not match its diff_id",
        },
        Case {
            name: "not-a-tar",
            layers: vec![Layer {
                blob: gzip(&[0x42; 4096]),
                diff_id: Digest::of_bytes(b"x"),
            }],
            error: "not a valid tar stream",
        },
    ];
    for case in cases {
        let root = TestRoot::new();
        let store = open(&root);
        let img = add_image(&store, &format!("hostile/{}", case.name), case.layers);
        let before = store_listing(root.path());
        let err = store.layer_dirs(&img).expect_err(case.name).to_string();
        assert!(err.contains(case.error), "{}: {err}", case.name);
        assert!(!err.contains('\n'), "{}: one line: {err}", case.name);
        assert_eq!(
            store_listing(root.path()),
            before,
            "{}: the store changed",
            case.name
        );
        assert_eq!(
            listing(sentinel.path()),
            sentinel_before,
            "{}: the sentinel changed",
            case.name
        );
        assert_eq!(
            xattr::get(sentinel.path(), "trusted.overlay.opaque").unwrap(),
            None
        );
        assert!(!Path::new(&abs_name).exists(), "{}", case.name);
        let escape = root.path().join("tmp/escape");
        assert!(
            !escape.exists() && !root.path().join("escape").exists(),
            "{}",
            case.name
        );
    }
}

#[test]
fn a_later_layer_cannot_write_through_an_earlier_layers_symlink() {
    // Each layer unpacks into its own directory: the later layer's `a/` is a
    // directory of its own, and overlay shows it above the earlier symlink.
    let sentinel = tempfile::tempdir().unwrap();
    let before = listing(sentinel.path());
    let root = TestRoot::new();
    let store = open(&root);
    let s = sentinel.path().to_str().unwrap();
    let img = add_image(
        &store,
        "confined",
        vec![
            Layer::plain(RawTar::new().symlink("a", s).finish()),
            Layer::plain(
                RawTar::new()
                    .file("a/pwned", b"x")
                    .file("a/.wh.victim", b"")
                    .finish(),
            ),
        ],
    );
    let dirs = store.layer_dirs(&img).unwrap();
    assert_eq!(
        listing(sentinel.path()),
        before,
        "nothing written through the symlink"
    );
    assert!(dirs[0]
        .join("a")
        .symlink_metadata()
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(dirs[1].join("a").symlink_metadata().unwrap().is_dir());
    assert_eq!(std::fs::read(dirs[1].join("a/pwned")).unwrap(), b"x");
    assert!(dirs[1]
        .join("a/victim")
        .symlink_metadata()
        .unwrap()
        .file_type()
        .is_char_device());
}

#[test]
fn the_size_cap_stops_a_stream_of_many_honest_entries() {
    // The cap counts the uncompressed stream, not only declared sizes.
    let mut t = RawTar::new();
    for i in 0..10 {
        t = t.file(&format!("f{i}"), &vec![0u8; 1 << 20]);
    }
    let tar = t.finish();
    let staging = tempfile::tempdir().unwrap();
    let dest = staging.path().join("final");
    let opts = UnpackOptions { max_bytes: 4 << 20 };
    let err = layer::unpack_staged(
        &gzip(&tar)[..],
        &dest,
        staging.path(),
        &Digest::of_bytes(&tar),
        &opts,
    )
    .unwrap_err();
    assert!(
        matches!(err, LayerError::TooLarge { limit } if limit == 4 << 20),
        "{err}"
    );
    let left: BTreeMap<String, String> = listing(staging.path());
    assert!(left.is_empty(), "staging removed: {left:?}");
    // Under the cap the same layer unpacks.
    let opts = UnpackOptions {
        max_bytes: 64 << 20,
    };
    layer::unpack_staged(
        &gzip(&tar)[..],
        &dest,
        staging.path(),
        &Digest::of_bytes(&tar),
        &opts,
    )
    .unwrap();
    assert_eq!(
        std::fs::metadata(dest.join("diff/f9")).unwrap().len(),
        1 << 20
    );
    let _: PathBuf = dest;
}

#[test]
fn aufs_metadata_directories_are_not_materialised() {
    let root = TestRoot::new();
    let store = open(&root);
    // AUFS keeps hard-link targets in `.wh..wh.plnk/` and its own data in
    // `.wh..wh.aufs`; Docker drops both and everything below them.
    let tar = RawTar::new()
        .dir(".wh..wh.plnk/")
        .file(".wh..wh.plnk/234.567", b"aufs hard link target")
        .dir("sub/.wh..wh.orph/")
        .file("sub/.wh..wh.orph/x", b"orphan")
        .file(".wh..wh.aufs", b"")
        .file("kept", b"k")
        .finish();
    let img = add_image(&store, "aufs", vec![Layer::plain(tar)]);
    let dirs = store.layer_dirs(&img).unwrap();
    let d = &dirs[0];
    assert_eq!(std::fs::read(d.join("kept")).unwrap(), b"k");
    for gone in [".wh..wh.plnk", ".wh..wh.aufs", "sub/.wh..wh.orph"] {
        assert!(
            d.join(gone).symlink_metadata().is_err(),
            "{gone} was materialised"
        );
    }
}

#[test]
fn a_refused_xattr_is_named_in_the_error() {
    let root = TestRoot::new();
    let store = open(&root);
    let tar = RawTar::new()
        .pax(&[("SCHILY.xattr.security.capability", b"junk")])
        .file("f", b"x")
        .finish();
    let img = add_image(&store, "xattr", vec![Layer::plain(tar)]);
    let err = store.layer_dirs(&img).unwrap_err();
    let text = format!("{:#}", anyhow::Error::from(err));
    assert!(
        text.contains("\"f\"") && text.contains("security.capability"),
        "{text}"
    );
    assert_eq!(
        text.matches("Invalid argument").count(),
        1,
        "the cause is said once: {text}"
    );
}
