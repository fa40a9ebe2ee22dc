//! `berth system prune`, `berth system df` and `berth builder prune`:
//! Docker's disk-usage report and clean-up across containers, images,
//! networks, the build cache and (with `--volumes`) unused anonymous
//! volumes. Layers that several images share are counted once, as Docker
//! counts them; the build cache is measured by [`crate::build::prune`].

use std::collections::HashSet;
use std::io::Read;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use super::output::{human_size, Table};
use super::{Context, OutputFormat};
use crate::image::digest::Digest;
use crate::image::store::{ImageStore, Removal};
use crate::network::Networks;
use crate::runtime::container::ContainerStore;
use crate::volume::VolumeStore;

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Remove stopped containers, unused networks and dangling (or, with -a, unused) images
    Prune(PruneArgs),
    /// Show disk usage
    Df(DfArgs),
    /// Find and repair what a crash or a damaged disk left: corrupt container records, orphan container directories, a corrupt image index
    Check,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Prune anonymous volumes no container uses
    #[arg(long)]
    pub volumes: bool,
}

/// `berth builder ...`.
#[derive(Debug, Subcommand)]
pub enum BuilderCommand {
    /// Remove build cache (dangling only, or all with -a)
    Prune(BuilderPruneArgs),
}

#[derive(Debug, Args)]
pub struct BuilderPruneArgs {
    /// Remove all build cache, not just dangling cache
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct DfArgs {
    /// Format output (json)
    #[arg(long)]
    pub format: Option<String>,
}

pub fn run(ctx: &Context, cmd: SystemCommand) -> anyhow::Result<()> {
    match cmd {
        SystemCommand::Prune(a) => prune(ctx, a),
        SystemCommand::Df(a) => df(ctx, a),
        SystemCommand::Check => check(ctx),
    }
}

pub fn run_builder(ctx: &Context, cmd: BuilderCommand) -> anyhow::Result<()> {
    match cmd {
        BuilderCommand::Prune(a) => builder_prune(ctx, a),
    }
}

fn builder_prune(ctx: &Context, args: BuilderPruneArgs) -> anyhow::Result<()> {
    let what = if args.all {
        "all build cache"
    } else {
        "all dangling build cache"
    };
    if !args.force && !super::container::confirm(&format!("WARNING! This will remove {what}."))? {
        return Ok(());
    }
    let root = ctx.root()?;
    let images = ImageStore::open(&root).context("opening the image store")?;
    let reclaimed = prune_build_cache(&images, args.all)?;
    println!("Total reclaimed space: {}", human_size(reclaimed));
    Ok(())
}

/// Prints what a build-cache prune removed, as Docker does; returns the
/// bytes it freed.
fn prune_build_cache(images: &ImageStore, all: bool) -> anyhow::Result<u64> {
    let index =
        crate::build::cache::CacheIndex::open(&images.state_root().path().join("build-cache"))?;
    let in_use = super::image::images_in_use(images);
    let done = crate::build::prune::prune(images, &index, all, &in_use)
        .context("pruning the build cache")?;
    let deleted: Vec<String> = done
        .images
        .removals
        .iter()
        .filter_map(|r| match r {
            Removal::Deleted(d) => Some(d.short().to_string()),
            Removal::Untagged(_) => None,
        })
        .collect();
    if !deleted.is_empty() {
        println!("Deleted build cache objects:");
        for d in &deleted {
            println!("{d}");
        }
        println!();
    }
    if done.mounts.0 > 0 {
        println!("Deleted cache mounts: {}\n", done.mounts.0);
    }
    Ok(done.images.reclaimed + done.mounts.1)
}

/// `berth system check`: reports each problem found and what was done.
fn check(ctx: &Context) -> anyhow::Result<()> {
    let root = ctx.root()?;
    let containers = ContainerStore::open(&root)?;
    let mut problems = 0;
    for orphan in containers.collect_orphans() {
        problems += 1;
        println!(
            "container directory {} had no records: removed",
            orphan.display()
        );
    }
    for id in containers.ids() {
        if let Err(e) = containers.config(&id) {
            problems += 1;
            println!(
                "container {}: {e}: cannot be repaired; remove it with `berth rm -f {id}`",
                &id[..12]
            );
            continue;
        }
        match containers.repair_state(&id) {
            Ok(Some(st)) => {
                problems += 1;
                println!(
                    "container {}: state record was corrupt: repaired as {}{}",
                    &id[..12],
                    st.status,
                    if st.status == "running" && st.supervisor_pid == 0 {
                        " (without a supervisor: `berth up` or `berth restart` replaces it)"
                    } else {
                        ""
                    }
                );
            }
            Ok(None) => {}
            Err(e) => {
                problems += 1;
                println!(
                    "container {}: cannot repair its state record: {e}",
                    &id[..12]
                );
            }
        }
    }
    let images = ImageStore::open(&root).context("opening the image store")?;
    // What containers say they were made from names images again.
    let names: Vec<(String, String)> = containers
        .list()
        .into_iter()
        .map(|(c, _)| (c.image, c.image_id))
        .collect();
    if let Some(r) = images.rebuild_index(&names)? {
        problems += 1;
        println!(
            "image index {} was corrupt: rebuilt from the stored manifests: {} images{}",
            images.layout_dir().join("index.json").display(),
            r.images,
            if r.names.is_empty() {
                String::new()
            } else {
                format!(", names restored: {}", r.names.join(", "))
            }
        );
        if r.untagged > 0 {
            println!(
                "{} images are left untagged (their names were lost): name them again with `berth tag IMAGE-ID NAME`",
                r.untagged
            );
        }
    }
    if problems == 0 {
        println!("no problems found");
    }
    Ok(())
}

fn prune(ctx: &Context, args: PruneArgs) -> anyhow::Result<()> {
    let root = ctx.root()?;
    if !args.force {
        let images = if args.all {
            "all images without at least one container associated to them"
        } else {
            "all dangling images"
        };
        let volumes = if args.volumes {
            "\n  - all anonymous volumes not used by at least one container"
        } else {
            ""
        };
        let cache = if args.all {
            "all build cache"
        } else {
            "unused build cache"
        };
        eprint!(
            "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container{volumes}\n  - {images}\n  - {cache}\n\nAre you sure you want to continue? [y/N] "
        );
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
    let containers = ContainerStore::open(&root)?;
    let (ids, container_bytes) = crate::engine::Engine::open(&root)?.prune()?;
    if !ids.is_empty() {
        println!("Deleted Containers:");
        for id in &ids {
            println!("{id}");
        }
        println!();
    }
    let networks = Networks::open(&root)
        .context("opening the networks")?
        .prune()
        .context("pruning networks")?;
    if !networks.is_empty() {
        println!("Deleted Networks:");
        for n in &networks {
            println!("{n}");
        }
        println!();
    }
    let mut volume_bytes = 0;
    if args.volumes {
        let volumes = VolumeStore::open(&root)?;
        let used = super::volume::in_use(&containers);
        let mut deleted = Vec::new();
        for v in volumes.list()? {
            if v.anonymous && !used.contains_key(&v.name) {
                volume_bytes += crate::image::store::dir_size(&volumes.data_dir(&v.name));
                if volumes.remove(&v.name)? {
                    deleted.push(v.name);
                }
            }
        }
        if !deleted.is_empty() {
            println!("Deleted Volumes:\n{}\n", deleted.join("\n"));
        }
    }
    let images = ImageStore::open(&root).context("opening the image store")?;
    let report = images.prune(args.all, &super::image::kept_by_prune(&images, args.all)?)?;
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
    let cache_bytes = prune_build_cache(&images, args.all)?;
    println!(
        "Total reclaimed space: {}",
        human_size(container_bytes + volume_bytes + report.reclaimed + cache_bytes)
    );
    Ok(())
}

fn percent(part: u64, total: u64) -> String {
    match (part * 100).checked_div(total) {
        Some(pct) => format!("{} ({pct}%)", human_size(part)),
        None => "0B".to_string(),
    }
}

fn df(ctx: &Context, args: DfArgs) -> anyhow::Result<()> {
    let root = ctx.root()?;
    let containers = ContainerStore::open(&root)?;
    let images = ImageStore::open(&root).context("opening the image store")?;
    let all = containers.list();
    let in_use: HashSet<Digest> = all
        .iter()
        .filter_map(|(c, _)| Digest::parse(&c.image_id).ok())
        .collect();
    let image_list = images.list()?;
    let usage = crate::build::prune::usage(root.path(), &image_list, &in_use);
    let mut c_size = 0;
    let mut c_reclaimable = 0;
    let mut c_active = 0;
    for (c, st) in &all {
        let size = crate::image::store::dir_size(&containers.dir(&c.id).join("upper"));
        c_size += size;
        if super::ps::observe(st).running {
            c_active += 1;
        } else {
            c_reclaimable += size;
        }
    }
    let volumes = VolumeStore::open(&root)?;
    let used = super::volume::in_use(&containers);
    let (mut v_total, mut v_active, mut v_size, mut v_reclaimable) = (0, 0, 0, 0);
    for v in volumes.list()? {
        let size = crate::image::store::dir_size(&volumes.data_dir(&v.name));
        v_total += 1;
        v_size += size;
        if used.contains_key(&v.name) {
            v_active += 1;
        } else {
            v_reclaimable += size;
        }
    }
    let rows = [
        (
            "Images",
            usage.images,
            usage.images_active,
            usage.images_size,
            usage.images_reclaimable,
        ),
        ("Containers", all.len(), c_active, c_size, c_reclaimable),
        ("Local Volumes", v_total, v_active, v_size, v_reclaimable),
        (
            "Build Cache",
            usage.cache_images + usage.cache_mounts,
            0,
            usage.cache_size,
            usage.cache_size,
        ),
    ];
    if ctx.format(args.format.as_deref()) == OutputFormat::Json {
        for (t, total, active, size, rec) in rows {
            println!(
                "{}",
                serde_json::json!({
                    "Type": t, "TotalCount": total.to_string(), "Active": active.to_string(),
                    "Size": human_size(size), "Reclaimable": percent(rec, size),
                })
            );
        }
        return Ok(());
    }
    let mut t = Table::new(["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]);
    for (ty, total, active, size, rec) in rows {
        t.row([
            ty.to_string(),
            total.to_string(),
            active.to_string(),
            human_size(size),
            percent(rec, size),
        ]);
    }
    t.print();
    Ok(())
}
