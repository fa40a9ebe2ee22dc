//! Builds compared with what Docker does: a table of Dockerfiles, each with
//! the filesystem and config Docker's builders produce from the same input
//! written down (paths, types, modes, owners, link targets, hardlink groups,
//! `Env`, `ExposedPorts`), checked against the image berth builds.
//!
//! There is no Docker engine on the test machines, so the expectations come
//! from Docker's documented behaviour and its source (the classic builder's
//! `builder/dockerfile` and `pkg/archive`, BuildKit's `dockerfile2llb` and
//! `fsutil` copy); where the two Docker builders disagree, the case says so
//! and which one berth follows.
//!
//! The image is read from `berth save --format oci`: its layers are applied
//! in order (OCI whiteouts and opaque directories honoured) into one table
//! of entries, so what is checked is exactly what the image holds — a
//! container would add its own `/etc/hosts` mounts on top.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::symlink;
use std::path::Path;

use common::TestRoot;

/// One entry of an image's filesystem.
#[derive(Debug, Clone)]
struct Node {
    /// `dir`, `file`, `link`, `fifo`, `char`, `block`.
    kind: &'static str,
    mode: u32,
    uid: u64,
    gid: u64,
    /// A symlink's target.
    target: String,
    /// For a tar hardlink entry, the path it is another name of.
    hardlink_of: Option<String>,
}

impl Node {
    /// `TYPE MODE UID:GID`, `link -> TARGET` for symlinks.
    fn show(&self) -> String {
        match self.kind {
            "link" => format!("link -> {}", self.target),
            k => format!("{k} {:o} {}:{}", self.mode, self.uid, self.gid),
        }
    }
}

fn clean(name: &str) -> String {
    let t = name.trim_start_matches("./").trim_end_matches('/');
    format!("/{}", t.trim_start_matches('/'))
}

fn decompress(blob: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::new();
    if blob.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(&blob[..])
            .read_to_end(&mut out)
            .unwrap();
        out
    } else if blob.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        zstd::stream::read::Decoder::new(&blob[..])
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    } else {
        blob
    }
}

/// An image as its layers: each one's entries, in order.
struct Layers(Vec<Vec<(String, Node)>>);

impl Layers {
    fn of(root: &TestRoot, image: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("image.tar");
        root.ok(&[
            "save",
            "--format",
            "oci",
            "-o",
            file.to_str().unwrap(),
            image,
        ]);
        let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut a = tar::Archive::new(fs::File::open(&file).unwrap());
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            files.insert(name.trim_start_matches("./").to_string(), data);
        }
        let blob = |d: &str| {
            files
                .get(&format!("blobs/sha256/{}", d.trim_start_matches("sha256:")))
                .unwrap_or_else(|| panic!("no blob {d} in the saved image"))
                .clone()
        };
        let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
        let manifest: serde_json::Value =
            serde_json::from_slice(&blob(index["manifests"][0]["digest"].as_str().unwrap()))
                .unwrap();
        let mut layers = Vec::new();
        for l in manifest["layers"].as_array().unwrap() {
            let data = decompress(blob(l["digest"].as_str().unwrap()));
            let mut entries = Vec::new();
            let mut a = tar::Archive::new(&data[..]);
            for e in a.entries().unwrap() {
                let e = e.unwrap();
                let h = e.header();
                let name = clean(&e.path().unwrap().to_string_lossy());
                if name == "/" {
                    continue;
                }
                let link = e
                    .link_name()
                    .unwrap()
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let kind = match h.entry_type() {
                    tar::EntryType::Directory => "dir",
                    tar::EntryType::Symlink => "link",
                    tar::EntryType::Link => "hardlink",
                    tar::EntryType::Fifo => "fifo",
                    tar::EntryType::Char => "char",
                    tar::EntryType::Block => "block",
                    _ => "file",
                };
                entries.push((
                    name,
                    Node {
                        kind,
                        mode: h.mode().unwrap() & 0o7777,
                        uid: h.uid().unwrap(),
                        gid: h.gid().unwrap(),
                        target: link.clone(),
                        hardlink_of: (kind == "hardlink").then(|| clean(&link)),
                    },
                ));
            }
            layers.push(entries);
        }
        Self(layers)
    }

    /// The filesystem the layers make, hardlink entries resolved to what
    /// they name (keeping `hardlink_of`).
    fn merged(&self) -> BTreeMap<String, Node> {
        let mut fs: BTreeMap<String, Node> = BTreeMap::new();
        let under = |fs: &mut BTreeMap<String, Node>, dir: &str| {
            let prefix = format!("{}/", dir.trim_end_matches('/'));
            fs.retain(|k, _| !k.starts_with(&prefix));
        };
        for layer in &self.0 {
            for (name, _) in layer {
                let (dir, base) = name.rsplit_once('/').unwrap();
                if base == ".wh..wh..opq" {
                    under(&mut fs, dir);
                } else if let Some(gone) = base.strip_prefix(".wh.") {
                    let p = format!("{dir}/{gone}");
                    fs.remove(&p);
                    under(&mut fs, &p);
                }
            }
            for (name, node) in layer {
                if name.rsplit('/').next().unwrap().starts_with(".wh.") {
                    continue;
                }
                let mut node = node.clone();
                if let Some(of) = &node.hardlink_of {
                    let first = fs
                        .get(of)
                        .unwrap_or_else(|| panic!("{name}: hardlink to missing {of}"));
                    node = Node {
                        hardlink_of: Some(first.hardlink_of.clone().unwrap_or(of.clone())),
                        ..first.clone()
                    };
                }
                fs.insert(name.clone(), node);
            }
        }
        fs
    }
}

/// One Dockerfile and what Docker makes of it.
struct Case {
    name: &'static str,
    /// Writes the build context's files (the Dockerfile is written after).
    setup: fn(&Path),
    dockerfile: &'static str,
    /// Where the Dockerfile goes (`-f` when not `Dockerfile`).
    dockerfile_name: &'static str,
    /// More `berth build` arguments.
    args: &'static [&'static str],
    /// Entries as [`Node::show`] prints them.
    fs: &'static [(&'static str, &'static str)],
    absent: &'static [&'static str],
    /// Paths that must be one hardlink group (tar hardlink entries).
    hardlinks: &'static [&'static [&'static str]],
    /// The whole `Config.Env`, in order.
    env: Option<&'static [&'static str]>,
    /// The keys of `Config.ExposedPorts`, sorted.
    ports: Option<&'static [&'static str]>,
    /// Paths the last layer itself must not hold.
    not_in_last_layer: &'static [&'static str],
}

const CASE: Case = Case {
    name: "",
    setup: |_| {},
    dockerfile: "",
    dockerfile_name: "Dockerfile",
    args: &[],
    fs: &[],
    absent: &[],
    hardlinks: &[],
    env: None,
    ports: None,
    not_in_last_layer: &[],
};

/// A tar archive (gzip when the name ends in .gz) of (name, type, mode,
/// uid, gid, content or link target).
fn archive(path: &Path, entries: &[(&str, tar::EntryType, u32, u64, u64, &str)]) {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, mode, uid, gid, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(*mode);
        h.set_uid(*uid);
        h.set_gid(*gid);
        h.set_mtime(1_700_000_000);
        if *kind == tar::EntryType::Regular {
            h.set_size(data.len() as u64);
            b.append_data(&mut h, name, data.as_bytes()).unwrap();
        } else {
            h.set_size(0);
            if matches!(kind, tar::EntryType::Symlink | tar::EntryType::Link) {
                b.append_link(&mut h, name, data).unwrap();
            } else {
                b.append_data(&mut h, name, std::io::empty()).unwrap();
            }
        }
    }
    let bytes = b.into_inner().unwrap();
    if path.to_string_lossy().ends_with(".gz") {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&bytes).unwrap();
        fs::write(path, e.finish().unwrap()).unwrap();
    } else {
        fs::write(path, bytes).unwrap();
    }
}

fn rootfs_archive(ctx: &Path) {
    use tar::EntryType::{Directory, Regular};
    archive(
        &ctx.join("r.tar.gz"),
        &[
            ("./", Directory, 0o750, 123, 456, ""),
            ("./f", Regular, 0o640, 123, 456, "f\n"),
            ("./sub/", Directory, 0o700, 123, 456, ""),
            ("./sub/g", Regular, 0o600, 123, 456, "g\n"),
        ],
    );
}

fn write(ctx: &Path, rel: &str, content: &str) {
    let p = ctx.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

fn cases() -> Vec<Case> {
    vec![
        // Docker's pkg/archive Unpack skips the archive's "." entry when
        // the destination exists (it always does: ADD makes it first), so
        // /tmp stays 1777 root; the other entries keep the archive's
        // modes and owners. Both builders agree.
        Case {
            name: "add_archive_into_existing_dir",
            setup: rootfs_archive,
            dockerfile: "FROM busybox\nADD r.tar.gz /tmp/\nADD r.tar.gz /\n",
            fs: &[
                ("/tmp", "dir 1777 0:0"),
                ("/tmp/f", "file 640 123:456"),
                ("/tmp/sub", "dir 700 123:456"),
                ("/tmp/sub/g", "file 600 123:456"),
                ("/f", "file 640 123:456"),
                ("/sub/g", "file 600 123:456"),
                ("/etc", "dir 755 0:0"),
            ],
            ..CASE
        },
        // ADD --chown does not apply to what a local archive unpacks (the
        // classic builder untars without chown options; BuildKit's
        // unpacking copy keeps the archive's owners too); the directory
        // ADD makes for the destination takes the --chown owner.
        Case {
            name: "add_chown_archive_keeps_archive_owners",
            setup: rootfs_archive,
            dockerfile: "FROM busybox\nADD --chown=1:2 r.tar.gz /unpacked/\n",
            fs: &[
                ("/unpacked", "dir 755 1:2"),
                ("/unpacked/f", "file 640 123:456"),
                ("/unpacked/sub", "dir 700 123:456"),
            ],
            ..CASE
        },
        // A fifo a RUN leaves is a fifo entry of the layer (pkg/archive
        // writes fifos and devices; it skips sockets).
        Case {
            name: "run_leaves_a_fifo",
            dockerfile: "FROM busybox\n\
                         RUN mkfifo /p && mkfifo -m 600 /tmp/q && mknod -m 640 /zdev c 1 5\n\
                         RUN test -p /p && test -c /zdev && touch /unpacked\n",
            fs: &[
                ("/p", "fifo 644 0:0"),
                ("/tmp/q", "fifo 600 0:0"),
                ("/zdev", "char 640 0:0"),
                ("/unpacked", "file 644 0:0"),
            ],
            ..CASE
        },
        // Hardlinks made by a RUN stay one group (tar hardlink entries),
        // and so do hardlinks copied out of a stage or the context.
        Case {
            name: "hardlinks_are_kept",
            setup: |ctx| {
                write(ctx, "h/a", "same\n");
                fs::hard_link(ctx.join("h/a"), ctx.join("h/b")).unwrap();
            },
            dockerfile: "FROM busybox AS s\n\
                         RUN mkdir /src && echo x > /src/a && ln /src/a /src/b && ln /src/a /c\n\
                         FROM s\n\
                         COPY --from=s /src /dst/\n\
                         COPY h /ctx/\n",
            fs: &[("/src/a", "file 644 0:0"), ("/dst/b", "file 644 0:0")],
            hardlinks: &[
                &["/src/a", "/src/b", "/c"],
                &["/dst/a", "/dst/b"],
                &["/ctx/a", "/ctx/b"],
            ],
            ..CASE
        },
        // COPY --from keeps the stage's owners (both builders); --chown
        // overrides them; files from the context are root's.
        Case {
            name: "copy_from_keeps_owners",
            setup: |ctx| write(ctx, "f", "f\n"),
            dockerfile: "FROM busybox AS s\n\
                         RUN mkdir -p /o/in && echo o > /o/f && chown -R 1000:1001 /o\n\
                         FROM busybox\n\
                         COPY --from=s /o/f /kept\n\
                         COPY --from=s --chown=5:6 /o/f /chowned\n\
                         COPY --from=s /o /odir/\n\
                         COPY f /fromctx\n",
            fs: &[
                ("/kept", "file 644 1000:1001"),
                ("/chowned", "file 644 5:6"),
                ("/odir/f", "file 644 1000:1001"),
                ("/odir/in", "dir 755 1000:1001"),
                ("/fromctx", "file 644 0:0"),
            ],
            ..CASE
        },
        // A link named as a source is copied as its target (under the
        // link's name); links inside a copied directory stay links.
        Case {
            name: "symlink_source_copies_its_target",
            setup: |ctx| {
                write(ctx, "real.txt", "real\n");
                write(ctx, "dir/a", "a\n");
                symlink("real.txt", ctx.join("link.txt")).unwrap();
                symlink("dir", ctx.join("dirlink")).unwrap();
                symlink("a", ctx.join("dir/inner")).unwrap();
            },
            dockerfile: "FROM busybox\n\
                         COPY link.txt /x/\n\
                         COPY dirlink /y/\n\
                         COPY dir /z/\n\
                         COPY l*.txt /g/\n",
            fs: &[
                ("/x/link.txt", "file 644 0:0"),
                ("/y/a", "file 644 0:0"),
                ("/y/inner", "link -> a"),
                ("/z/inner", "link -> a"),
                ("/g/link.txt", "file 644 0:0"),
            ],
            absent: &["/x/real.txt", "/y/dirlink"],
            ..CASE
        },
        // The parents COPY --chown creates get the --chown owner (the
        // classic builder's MkdirAllAndChownNew, BuildKit's mkdir with the
        // same chown); existing ones are left alone.
        Case {
            name: "copy_chown_owns_the_parents_it_creates",
            setup: |ctx| write(ctx, "f", "f\n"),
            dockerfile: "FROM busybox\n\
                         ENV D=/v/w\n\
                         COPY --chown=7:8 f /new/deep/dst\n\
                         COPY --chown=7:8 f $D/dst\n\
                         COPY --chown=7:8 f /tmp/made/dst\n",
            fs: &[
                ("/new", "dir 755 7:8"),
                ("/new/deep", "dir 755 7:8"),
                ("/new/deep/dst", "file 644 7:8"),
                ("/v", "dir 755 7:8"),
                ("/v/w", "dir 755 7:8"),
                ("/v/w/dst", "file 644 7:8"),
                ("/tmp", "dir 1777 0:0"),
                ("/tmp/made", "dir 755 7:8"),
            ],
            ..CASE
        },
        // Both builders add Docker's default PATH to a stage whose base
        // has none (classic: dispatchState.setDefaultPath at FROM).
        Case {
            name: "default_path_when_the_base_has_none",
            dockerfile: "FROM busybox\nENV PATH=/opt/bin:$PATH\n",
            env: Some(&[
                "PATH=/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            ]),
            ..CASE
        },
        Case {
            name: "default_path_comes_first",
            dockerfile: "FROM busybox\nENV A=1\nLABEL x=y\n",
            env: Some(&[
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "A=1",
            ]),
            ..CASE
        },
        // EXPOSE takes nat.ParsePortSpecs' ranges: one key per port.
        Case {
            name: "expose_range",
            dockerfile: "FROM busybox\nEXPOSE 7000-7002 53/udp 8080/TCP\n",
            ports: Some(&["53/udp", "7000/tcp", "7001/tcp", "7002/tcp", "8080/tcp"]),
            ..CASE
        },
        // The classic builder's RUN layer holds none of the /etc mount
        // points (they live in its init layer); BuildKit removes the stubs
        // it made for /etc files too but may leave /dev, /proc, /sys (the
        // busybox base has those already).
        Case {
            name: "run_layer_has_no_mount_stubs",
            dockerfile: "FROM busybox\nRUN echo hi > /hi\n",
            fs: &[("/hi", "file 644 0:0")],
            absent: &["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"],
            not_in_last_layer: &["/etc", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf"],
            ..CASE
        },
        // A RUN that changes /etc itself keeps that change, stubs or not.
        Case {
            name: "run_layer_keeps_a_changed_etc",
            dockerfile: "FROM busybox\nRUN chmod 700 /etc\n",
            fs: &[("/etc", "dir 700 0:0")],
            absent: &["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"],
            ..CASE
        },
        // BuildKit reads <Dockerfile>.dockerignore beside the Dockerfile
        // before the context's .dockerignore (the classic builder knows
        // only the latter: berth follows BuildKit).
        Case {
            name: "dockerfile_specific_dockerignore",
            setup: |ctx| {
                write(ctx, "keep", "k\n");
                write(ctx, "secret", "s\n");
                write(ctx, "other", "o\n");
                write(ctx, ".dockerignore", "other\n");
                write(ctx, "app.Dockerfile.dockerignore", "secret\n");
            },
            dockerfile: "FROM busybox\nCOPY . /ctx/\n",
            dockerfile_name: "app.Dockerfile",
            fs: &[
                ("/ctx/keep", "file 644 0:0"),
                ("/ctx/other", "file 644 0:0"),
            ],
            absent: &["/ctx/secret"],
            ..CASE
        },
    ]
}

fn inspect(root: &TestRoot, image: &str) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(&root.ok(&["image", "inspect", image])).unwrap();
    if v.is_array() {
        v[0].clone()
    } else {
        v
    }
}

/// What differs between the image `tag` and the case's expectations.
fn check(root: &TestRoot, tag: &str, case: &Case) -> Vec<String> {
    let mut bad = Vec::new();
    let layers = Layers::of(root, tag);
    let fs = layers.merged();
    for (path, want) in case.fs {
        match fs.get(*path) {
            Some(n) if n.show() == *want => {}
            Some(n) => bad.push(format!("{path}: {} (Docker: {want})", n.show())),
            None => bad.push(format!("{path}: missing (Docker: {want})")),
        }
    }
    for path in case.absent {
        if let Some(n) = fs.get(*path) {
            bad.push(format!("{path}: {} (Docker: absent)", n.show()));
        }
    }
    for group in case.hardlinks {
        let roots: Vec<Option<String>> = group
            .iter()
            .map(|p| {
                fs.get(*p)
                    .map(|n| n.hardlink_of.clone().unwrap_or(p.to_string()))
            })
            .collect();
        if roots.iter().any(Option::is_none) || roots.windows(2).any(|w| w[0] != w[1]) {
            bad.push(format!(
                "{group:?}: not one hardlink group (each names {roots:?})"
            ));
        }
    }
    let last = layers.0.last().cloned().unwrap_or_default();
    for path in case.not_in_last_layer {
        if last.iter().any(|(n, _)| n == path) {
            bad.push(format!("{path}: in the last layer (Docker: not)"));
        }
    }
    let img = inspect(root, tag);
    if let Some(env) = case.env {
        let got: Vec<String> = img["Config"]["Env"]
            .as_array()
            .map(|a| a.iter().map(|e| e.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        if got != env {
            bad.push(format!("Env: {got:?} (Docker: {env:?})"));
        }
    }
    if let Some(ports) = case.ports {
        let got: Vec<String> = img["Config"]["ExposedPorts"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        if got != ports {
            bad.push(format!("ExposedPorts: {got:?} (Docker: {ports:?})"));
        }
    }
    bad
}

fn busybox_root() -> TestRoot {
    common::root_with_busybox("the build tests run containers")
}

/// Every case of the table, each in its own context; all differences are
/// reported together.
#[test]
fn builds_match_docker() {
    let root = busybox_root();
    let only = std::env::var("CASE").ok();
    let mut failures = Vec::new();
    for case in cases() {
        if only.as_deref().is_some_and(|o| o != case.name) {
            continue;
        }
        let ctx = tempfile::tempdir().unwrap();
        (case.setup)(ctx.path());
        let dockerfile = ctx.path().join(case.dockerfile_name);
        fs::write(&dockerfile, case.dockerfile).unwrap();
        let tag = format!("case-{}", case.name.replace('_', "-"));
        let mut args = vec!["build", "--network", "none", "-t", &tag];
        let f = dockerfile.to_str().unwrap().to_string();
        if case.dockerfile_name != "Dockerfile" {
            args.extend(["-f", &f]);
        }
        args.extend(case.args);
        let c = ctx.path().to_str().unwrap().to_string();
        args.push(&c);
        let out = root.run(&args);
        if !out.status.success() {
            failures.push(format!(
                "{}: the build failed: {}",
                case.name,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            continue;
        }
        for b in check(&root, &tag, &case) {
            failures.push(format!("{}: {b}", case.name));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

fn build_in(root: &TestRoot, ctx: &Path, extra: &[&str]) -> String {
    let mut args = vec!["build", "--network", "none"];
    args.extend_from_slice(extra);
    let c = ctx.to_str().unwrap().to_string();
    args.push(&c);
    root.ok(&args)
}

/// A changed `--build-arg` misses the cache first where the value is
/// used, not where it is declared (Dockerfile reference, "Impact on build
/// caching"; both builders): every RUN after the ARG (it sees the ARG as
/// an environment variable), and the other steps only when their expanded
/// words change. Steps after a rerun step rerun too (their parent changed).
#[test]
fn a_changed_build_arg_reruns_only_the_steps_that_use_it() {
    let root = busybox_root();
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), "f", "f\n");
    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox\n\
         ARG V=1\n\
         ARG U=a\n\
         LABEL fixed=yes\n\
         COPY f /f\n\
         LABEL u=$U\n\
         COPY <<EOF /h\n\
         u is $U\n\
         EOF\n\
         RUN echo \"v=$V\" > /v\n",
    );
    let first = build_in(&root, ctx.path(), &[]);
    assert_eq!(first.matches(" ---> Using cache\n").count(), 0, "{first}");
    let cached_steps = |out: &str| -> Vec<String> {
        let mut steps = Vec::new();
        let mut current = String::new();
        for l in out.lines() {
            if let Some(rest) = l.strip_prefix("Step ") {
                current = rest.split_once(" : ").unwrap().1.to_string();
            } else if l == " ---> Using cache" {
                steps.push(current.clone());
            }
        }
        steps
    };
    // V is used by the RUN only.
    let v2 = build_in(&root, ctx.path(), &["--build-arg", "V=2", "-t", "v2"]);
    assert_eq!(
        cached_steps(&v2),
        [
            "ARG V=1",
            "ARG U=a",
            "LABEL fixed=yes",
            "COPY f /f",
            "LABEL u=$U",
            "COPY <<EOF /h"
        ],
        "{v2}"
    );
    assert_eq!(v2.matches("Running in").count(), 1, "{v2}");
    // U changes the LABEL's and the here-document's expansion: they rerun,
    // and so does everything after them.
    let u = build_in(&root, ctx.path(), &["--build-arg", "U=b", "-t", "u"]);
    assert_eq!(
        cached_steps(&u),
        ["ARG V=1", "ARG U=a", "LABEL fixed=yes", "COPY f /f"],
        "{u}"
    );
    let img = inspect(&root, "u");
    assert_eq!(img["Config"]["Labels"]["u"], "b", "{img}");
    let h = Layers::of(&root, "u");
    assert!(h.merged().contains_key("/h"));
    // The defaults again: everything from the cache.
    let again = build_in(&root, ctx.path(), &[]);
    assert_eq!(cached_steps(&again).len(), 7, "{again}");
}

fn run_in(root: &TestRoot, image: &str, cmd: &[&str]) -> String {
    let mut args = vec!["run", "--rm", "--network", "none", image];
    args.extend_from_slice(cmd);
    root.ok(&args)
}

/// `RUN --mount=type=cache`: the directory outlives the step and the
/// build, so a changed step (a cache miss, as a changed `npm install`
/// line would be) finds what the last run left in it; its files are not
/// in the image; uid/gid/mode apply when it is made; a different id is a
/// different cache.
#[test]
fn cache_mounts_keep_their_files_across_builds() {
    let root = busybox_root();
    let ctx = tempfile::tempdir().unwrap();
    let dockerfile = |step: &str| {
        write(
            ctx.path(),
            "Dockerfile",
            &format!(
                "FROM busybox\n\
                 WORKDIR /app\n\
                 RUN --mount=type=cache,target=/cache,uid=1000,gid=1000,mode=0700 \
                     ls /cache > /seen; stat -c '%u:%g %a' /cache > /perm; \
                     echo {step} >> /cache/downloads\n\
                 RUN --mount=type=cache,target=deps,id=other,sharing=locked ls /app/deps > /other\n"
            ),
        )
    };
    dockerfile("first");
    build_in(&root, ctx.path(), &["-t", "c1"]);
    assert_eq!(run_in(&root, "c1", &["cat", "/seen"]), "");
    assert_eq!(run_in(&root, "c1", &["cat", "/perm"]), "1000:1000 700\n");
    dockerfile("second");
    let out = build_in(&root, ctx.path(), &["-t", "c2"]);
    assert_eq!(out.matches("Running in").count(), 2, "{out}");
    assert_eq!(
        run_in(&root, "c2", &["cat", "/seen"]),
        "downloads\n",
        "the second build's step found the first one's files"
    );
    assert_eq!(
        run_in(&root, "c2", &["cat", "/other"]),
        "",
        "another id, another cache"
    );
    let fs = Layers::of(&root, "c2").merged();
    for p in ["/cache", "/cache/downloads", "/app/deps"] {
        assert!(!fs.contains_key(p), "{p} is in the image: {:?}", fs.get(p));
    }
    assert!(fs.contains_key("/app"), "WORKDIR made /app");
    // The cache is in the state root, per id.
    let mounts: Vec<_> = fs::read_dir(root.path().join("build-mounts"))
        .unwrap()
        .collect();
    assert_eq!(mounts.len(), 2);
}

/// `RUN --mount=type=secret`: mounted read-only at /run/secrets/ID with
/// mode 0400, never in a layer, the saved image or the cache key (a new
/// secret value does not rerun the step, as in BuildKit); `required`
/// fails without it, an unrequired missing one is skipped.
#[test]
fn secret_mounts_reach_the_step_and_nothing_else() {
    let root = busybox_root();
    let ctx = tempfile::tempdir().unwrap();
    let secret_dir = tempfile::tempdir().unwrap();
    let secret = secret_dir.path().join("token");
    fs::write(&secret, "s3cret-value").unwrap();
    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox\n\
         RUN --mount=type=secret,id=tok test \"$(tr a-z A-Z < /run/secrets/tok)\" = S3CRET-VALUE \
             && stat -c '%a %u' /run/secrets/tok > /perm \
             && ! touch /run/secrets/tok 2>/dev/null\n\
         RUN --mount=type=secret,id=absent,target=/etc/absent test ! -e /etc/absent\n",
    );
    let src = format!("id=tok,src={}", secret.display());
    build_in(&root, ctx.path(), &["--secret", &src, "-t", "s"]);
    assert_eq!(run_in(&root, "s", &["cat", "/perm"]), "400 0\n");
    let fs = Layers::of(&root, "s").merged();
    for p in ["/run", "/run/secrets", "/run/secrets/tok", "/etc/absent"] {
        assert!(!fs.contains_key(p), "{p} is in the image");
    }
    let saved = tempfile::tempdir().unwrap();
    let file = saved.path().join("s.tar");
    root.ok(&["save", "-o", file.to_str().unwrap(), "s"]);
    let bytes = fs::read(&file).unwrap();
    assert!(
        !bytes.windows(12).any(|w| w == b"s3cret-value"),
        "the secret is in the saved image"
    );
    // Another value: the step is cached (secrets are not cache inputs).
    fs::write(&secret, "other-value").unwrap();
    let again = build_in(&root, ctx.path(), &["--secret", &src]);
    assert_eq!(again.matches(" ---> Using cache\n").count(), 2, "{again}");
    // A required secret that was not given.
    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox\nRUN --mount=type=secret,id=tok,required true\n",
    );
    let err = root.fails(&["build", ctx.path().to_str().unwrap()]);
    assert!(
        err.contains("line 2: secret \"tok\" is required by this RUN: pass it with berth build --secret id=tok,src=FILE"),
        "{err}"
    );
    let err = root.fails(&[
        "build",
        "--secret",
        "id=x,src=/nonexistent",
        ctx.path().to_str().unwrap(),
    ]);
    assert!(err.contains("/nonexistent is not a readable file"), "{err}");
}

/// `RUN --mount=type=bind` (and `type=tmpfs`): the context (or a stage) at the target,
/// read-only by default, writes of an `rw` one discarded, `.dockerignore`
/// honoured; its content is a cache input (a changed file reruns the
/// step); nothing of it is in the image.
#[test]
fn bind_mounts_from_the_context_and_a_stage() {
    let root = busybox_root();
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), "data.txt", "one\n");
    write(ctx.path(), "hidden.txt", "h\n");
    write(ctx.path(), ".dockerignore", "hidden.txt\n");
    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox AS s\n\
         RUN mkdir /out && echo from-stage > /out/x\n\
         FROM busybox\n\
         RUN --mount=type=bind,source=data.txt,target=/mnt/d cat /mnt/d > /copied \
             && (touch /mnt/d 2>/dev/null && echo rw || echo ro) > /mode\n\
         RUN --mount=type=bind,target=/ctx,rw ls /ctx > /listing && echo scribble > /ctx/data.txt\n\
         RUN --mount=type=bind,from=s,source=/out,target=/o cat /o/x > /staged\n\
         RUN --mount=type=tmpfs,target=/scratch,size=1m touch /scratch/x \
             && grep -q ' /scratch tmpfs ' /proc/mounts\n",
    );
    build_in(&root, ctx.path(), &["-t", "b"]);
    assert_eq!(
        run_in(
            &root,
            "b",
            &["cat", "/copied", "/mode", "/listing", "/staged"]
        ),
        "one\nro\nDockerfile\ndata.txt\nfrom-stage\n"
    );
    assert_eq!(
        fs::read_to_string(ctx.path().join("data.txt")).unwrap(),
        "one\n",
        "an rw bind mount does not write the context"
    );
    let fs = Layers::of(&root, "b").merged();
    for p in ["/mnt", "/mnt/d", "/ctx", "/o", "/scratch"] {
        assert!(!fs.contains_key(p), "{p} is in the image");
    }
    write(ctx.path(), "data.txt", "two\n");
    let again = build_in(&root, ctx.path(), &["-t", "b"]);
    assert_eq!(again.matches("Running in").count(), 4, "{again}");
    assert_eq!(run_in(&root, "b", &["cat", "/copied"]), "two\n");
    // A bad mount is reported at its line and column.
    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox\nRUN --mount=type=cache,target=/c,sharing=sometimes true\n",
    );
    let err = root.fails(&["build", ctx.path().to_str().unwrap()]);
    assert!(
        err.contains("line 2:5: --mount=type=cache,target=/c,sharing=sometimes: sharing=sometimes: give shared, private or locked"),
        "{err}"
    );
}
