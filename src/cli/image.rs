//! Image commands: `import`, `save`, `load`, `images`, `tag`, `rmi`,
//! `inspect`, `image prune`, and the `image` group that aliases them
//! (`berth image ls|rm|inspect|prune|save|load|import|tag`), with Docker's
//! flags and output shapes.

use std::collections::HashSet;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context as _};
use serde_json::{json, Value};

use super::output::{human_age, human_size, print_json};
use super::{Context, Exit};
use crate::image::archive::{self, ArchiveFormat};
use crate::image::import::{self, ImportOptions};
use crate::image::store::Removal;
use crate::image::{Digest, Image, ImageStore, Reference, StoreError};

/// `berth import FILE|- [REPOSITORY[:TAG]]`
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Rootfs tarball (plain, gzip or zstd), or - for stdin
    pub file: String,
    /// Name for the new image
    pub reference: Option<String>,
    /// Apply a Dockerfile instruction to the image config
    /// (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR)
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
    /// Commit message for the imported image
    #[arg(short = 'm', long)]
    pub message: Option<String>,
}

/// `berth save [-o FILE] [--format docker|oci] IMAGE...`
#[derive(Debug, clap::Args)]
pub struct SaveArgs {
    /// Write to a file instead of stdout
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// Archive format: docker (docker-archive, as docker save) or oci
    #[arg(long, default_value = "docker", value_parser = ["docker", "oci"])]
    pub format: String,
    /// Images to save
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// `berth load [-i FILE]`
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Read from a file instead of stdin (OCI archive or docker-archive, optionally gzip'ed)
    #[arg(short = 'i', long)]
    pub input: Option<PathBuf>,
    /// Print only the loaded image names
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// `berth images [REPOSITORY[:TAG]]`
#[derive(Debug, clap::Args)]
pub struct ImagesArgs {
    /// Show all images (default hides the builder's intermediate images)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Format output: table, json, a Go template ('{{json .}}'), or 'table TEMPLATE'
    #[arg(long)]
    pub format: Option<String>,
    /// Only images of this repository (and tag)
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

/// `berth tag SOURCE TARGET`
#[derive(Debug, clap::Args)]
pub struct TagArgs {
    /// Existing image (name, id or id prefix)
    pub source: String,
    /// New name
    pub target: String,
}

/// `berth rmi [-f] IMAGE...`
#[derive(Debug, clap::Args)]
pub struct RmiArgs {
    /// Force removal of an image with several names or in use
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// `berth inspect IMAGE...`
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Format each image with a Go template, e.g. '{{.Config.Cmd}}'
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// `berth image prune [-a] [-f]`
#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Remove all images not used by a container, not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

/// `berth image ...`
#[derive(Debug, clap::Subcommand)]
pub enum ImageCommand {
    /// List images
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    /// Remove images
    #[command(visible_alias = "remove")]
    Rm(RmiArgs),
    /// Show images as JSON
    Inspect(InspectArgs),
    /// Remove unused images, blobs and layers
    Prune(PruneArgs),
    /// Write images to a tar archive
    Save(SaveArgs),
    /// Load images from a tar archive
    Load(LoadArgs),
    /// Make an image from a rootfs tarball
    Import(ImportArgs),
    /// Give an image another name
    Tag(TagArgs),
    /// Build an image from a Dockerfile
    Build(super::build::BuildArgs),
}

/// Runs an `image` sub-command.
pub fn run_group(ctx: &Context, cmd: ImageCommand) -> anyhow::Result<()> {
    match cmd {
        ImageCommand::Ls(a) => images(ctx, a),
        ImageCommand::Rm(a) => rmi(ctx, a),
        ImageCommand::Inspect(a) => inspect(ctx, a),
        ImageCommand::Prune(a) => prune(ctx, a),
        ImageCommand::Save(a) => save(ctx, a),
        ImageCommand::Load(a) => load(ctx, a),
        ImageCommand::Import(a) => import_cmd(ctx, a),
        ImageCommand::Build(a) => super::build::run(ctx, a),
        ImageCommand::Tag(a) => tag(ctx, a),
    }
}

pub(crate) fn store(ctx: &Context) -> anyhow::Result<ImageStore> {
    let root = ctx.root()?;
    ImageStore::open(&root).context("opening the image store")
}

/// The ids of images that containers use, which `rmi` and `prune` must
/// keep: the image id of every container under `ROOT/containers/`.
/// The images a prune must keep besides tagged ones: those containers use
/// and, without `--all`, the intermediate images of every image that stays
/// (they have a child, so they are not dangling, as in Docker).
pub fn kept_by_prune(store: &ImageStore, all: bool) -> anyhow::Result<HashSet<Digest>> {
    let mut keep = images_in_use(store);
    if !all {
        let list = store.list()?;
        let stays = |i: &Image| !i.is_dangling() || keep.contains(&i.id);
        let ancestors = crate::build::derive::ancestor_ids(&list, stays);
        keep.extend(ancestors);
    }
    Ok(keep)
}

pub fn images_in_use(store: &ImageStore) -> HashSet<Digest> {
    crate::engine::image::images_in_use(store)
}

pub fn import_cmd(ctx: &Context, args: ImportArgs) -> anyhow::Result<()> {
    let store = store(ctx)?;
    let reference = args
        .reference
        .as_deref()
        .map(Reference::parse)
        .transpose()?;
    let opts = ImportOptions {
        changes: args.changes,
        message: args.message,
        source: args.file.clone(),
    };
    let image = if args.file == "-" {
        import::import(&store, std::io::stdin().lock(), reference.as_ref(), &opts)
    } else {
        let f =
            std::fs::File::open(&args.file).with_context(|| format!("opening {}", args.file))?;
        import::import(
            &store,
            std::io::BufReader::new(f),
            reference.as_ref(),
            &opts,
        )
    }
    .with_context(|| format!("importing {}", args.file))?;
    println!("{}", image.id);
    Ok(())
}

pub fn save(ctx: &Context, args: SaveArgs) -> anyhow::Result<()> {
    let store = store(ctx)?;
    let format = if args.format == "oci" {
        ArchiveFormat::Oci
    } else {
        ArchiveFormat::Docker
    };
    let mut images = Vec::new();
    for name in &args.images {
        let image = store.resolve(name)?;
        let asked = Reference::parse(name)
            .ok()
            .filter(|r| image.repo_tags.contains(r));
        images.push((image, asked));
    }
    match &args.output {
        Some(path) => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let mut tmp = tempfile::Builder::new()
                .prefix(".berth-save-")
                .tempfile_in(dir)
                .with_context(|| format!("creating a file in {}", dir.display()))?;
            archive::save(
                &store,
                &images,
                format,
                std::io::BufWriter::new(tmp.as_file_mut()),
            )?;
            tmp.as_file().sync_all()?;
            tmp.persist(path)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        None => {
            let stdout = std::io::stdout();
            if stdout.is_terminal() {
                bail!("cowardly refusing to save to a terminal; use the -o flag or redirect");
            }
            archive::save(
                &store,
                &images,
                format,
                std::io::BufWriter::new(stdout.lock()),
            )?;
        }
    }
    Ok(())
}

pub fn load(ctx: &Context, args: LoadArgs) -> anyhow::Result<()> {
    let store = store(ctx)?;
    let loaded = match &args.input {
        Some(path) => {
            let f =
                std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
            archive::load(&store, std::io::BufReader::new(f))
        }
        None => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                bail!("requested load from stdin, but stdin is empty; use -i FILE or redirect");
            }
            archive::load(&store, stdin.lock())
        }
    }
    .context("loading images")?;
    let mut out = std::io::stdout().lock();
    for l in loaded {
        if l.names.is_empty() {
            writeln!(out, "Loaded image ID: {}", l.image.id)?;
        }
        for n in &l.names {
            writeln!(out, "Loaded image: {}", n.familiar())?;
        }
    }
    Ok(())
}

fn short_id(id: &Digest, no_trunc: bool) -> String {
    if no_trunc {
        id.to_string()
    } else {
        id.short().to_string()
    }
}

pub fn images(ctx: &Context, args: ImagesArgs) -> anyhow::Result<()> {
    let store = store(ctx)?;
    let filter = args
        .reference
        .as_deref()
        .map(Reference::parse_name_only)
        .transpose()?;
    let list = store.list()?;
    let intermediate = if args.all {
        HashSet::new()
    } else {
        crate::build::derive::parent_ids(&list)
    };
    struct Row {
        repo: String,
        tag: String,
        digest: String,
        image: Image,
    }
    let mut rows = Vec::new();
    for img in list {
        let digest_for = |name: &str| {
            img.repo_digests
                .iter()
                .find(|d| d.name() == name)
                .and_then(|d| d.digest().map(|x| x.to_string()))
                .unwrap_or_else(|| "<none>".into())
        };
        if img.repo_tags.is_empty() {
            if filter.is_some() || intermediate.contains(&img.id) {
                continue;
            }
            let (repo, digest) = match img.repo_digests.first() {
                Some(d) => (
                    d.familiar_name(),
                    d.digest().map(|x| x.to_string()).unwrap_or_default(),
                ),
                None => ("<none>".into(), "<none>".into()),
            };
            rows.push(Row {
                repo,
                tag: "<none>".into(),
                digest,
                image: img.clone(),
            });
            continue;
        }
        for t in &img.repo_tags {
            if let Some(f) = &filter {
                if f.name() != t.name() || f.tag().is_some_and(|ft| Some(ft) != t.tag()) {
                    continue;
                }
            }
            rows.push(Row {
                repo: t.familiar_name(),
                tag: t.tag().unwrap_or("<none>").to_string(),
                digest: digest_for(&t.name()),
                image: img.clone(),
            });
        }
    }
    if args.quiet {
        let mut seen = HashSet::new();
        for r in &rows {
            if seen.insert(r.image.id.clone()) {
                println!("{}", short_id(&r.image.id, args.no_trunc));
            }
        }
        return Ok(());
    }
    let objects: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "Repository": r.repo,
                "Tag": r.tag,
                "Digest": r.digest,
                "ID": short_id(&r.image.id, args.no_trunc),
                "CreatedAt": r.image.created.map(|c| c.to_rfc3339()),
                "CreatedSince": r.image.created.map(human_age).unwrap_or_else(|| "N/A".into()),
                "Size": human_size(r.image.size),
                "VirtualSize": r.image.size,
            })
        })
        .collect();
    let default = if args.digests {
        "{{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    } else {
        "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    };
    super::output::print_listing(
        ctx,
        args.format.as_deref(),
        super::output::JsonShape::Document,
        &objects,
        IMAGES_COLUMNS,
        default,
    )
}

/// `docker images`'s fields and the headers its tables give them.
const IMAGES_COLUMNS: &[(&str, &str)] = &[
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("ID", "IMAGE ID"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedSince", "CREATED"),
    ("Size", "SIZE"),
    ("VirtualSize", "VIRTUAL SIZE"),
];

pub fn tag(ctx: &Context, args: TagArgs) -> anyhow::Result<()> {
    let store = store(ctx)?;
    let image = store.resolve(&args.source)?;
    let target = Reference::parse(&args.target)?;
    if target.digest().is_some() {
        bail!("refusing to create a tag with a digest reference");
    }
    store.tag(&target, &image.manifest_digest)?;
    Ok(())
}

pub fn rmi(ctx: &Context, args: RmiArgs) -> anyhow::Result<()> {
    let store = store(ctx)?;
    let in_use = images_in_use(&store);
    let mut failed = 0;
    let mut out = std::io::stdout().lock();
    for name in &args.images {
        match store.remove(name, args.force, &in_use) {
            Ok(removals) => {
                for r in removals {
                    match r {
                        Removal::Untagged(r) => writeln!(out, "Untagged: {}", r.familiar())?,
                        Removal::Deleted(d) => writeln!(out, "Deleted: {d}")?,
                    }
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {e}");
            }
        }
    }
    if failed > 0 {
        return Err(Exit::silent(1).into());
    }
    Ok(())
}

/// Docker's `image inspect` object for one image.
pub fn inspect_json(store: &ImageStore, img: &Image) -> anyhow::Result<Value> {
    let raw: Value = serde_json::from_slice(&store.read_blob(&img.id)?)?;
    let diff_ids = raw["rootfs"]["diff_ids"].clone();
    let comment = raw["history"]
        .as_array()
        .and_then(|h| h.last())
        .and_then(|h| h["comment"].as_str())
        .unwrap_or("")
        .to_string();
    Ok(json!({
        "Id": img.id.to_string(),
        "RepoTags": img.repo_tags.iter().map(Reference::familiar).collect::<Vec<_>>(),
        "RepoDigests": img.repo_digests.iter().map(Reference::familiar).collect::<Vec<_>>(),
        "Parent": "",
        "Comment": comment,
        "Created": raw["created"].clone(),
        "Author": raw.get("author").cloned().unwrap_or(json!("")),
        "Config": raw.get("config").cloned().unwrap_or(json!({})),
        "Architecture": raw["architecture"].clone(),
        "Variant": raw.get("variant").cloned(),
        "Os": raw["os"].clone(),
        "Size": img.size,
        "RootFS": {"Type": raw["rootfs"]["type"].clone(), "Layers": diff_ids},
        "Descriptor": {
            "mediaType": img.manifest_media_type,
            "digest": img.manifest_digest.to_string(),
            "size": store.blob_path(&img.manifest_digest).metadata().map(|m| m.len()).unwrap_or(0),
        },
    }))
}

pub fn inspect(ctx: &Context, args: InspectArgs) -> anyhow::Result<()> {
    let store = store(ctx)?;
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for name in &args.images {
        match store.resolve(name) {
            Ok(img) => out.push(inspect_json(&store, &img)?),
            Err(StoreError::NotFound(n)) => missing.push(n),
            Err(e) => return Err(e.into()),
        }
    }
    match args.format.as_deref() {
        None | Some("json") => print_json(&out)?,
        Some(template) => {
            for v in &out {
                println!("{}", crate::format::template::render_one(template, v)?);
            }
        }
    }
    if !missing.is_empty() {
        return Err(Exit {
            code: 1,
            message: format!("no such image: {}", missing.join(", ")),
        }
        .into());
    }
    Ok(())
}

pub fn prune(ctx: &Context, args: PruneArgs) -> anyhow::Result<()> {
    let store = store(ctx)?;
    if !args.force {
        let what = if args.all {
            "all images without at least one container associated to them"
        } else {
            "all dangling images"
        };
        eprint!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .take(64)
            .read_to_string(&mut answer)
            .ok();
        if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            return Ok(());
        }
    }
    let report = store.prune(args.all, &kept_by_prune(&store, args.all)?)?;
    if !report.removals.is_empty() {
        println!("Deleted Images:");
        for r in &report.removals {
            match r {
                Removal::Untagged(r) => println!("untagged: {}", r.familiar()),
                Removal::Deleted(d) => println!("deleted: {d}"),
            }
        }
        println!();
    }
    println!("Total reclaimed space: {}", human_size(report.reclaimed));
    Ok(())
}
