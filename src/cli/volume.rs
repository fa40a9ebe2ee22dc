//! `berth volume create|ls|inspect|rm|prune`: Docker's volume verbs over
//! [`crate::volume::VolumeStore`].
//!
//! A volume is in use while any container (running or not) mounts it, and
//! then cannot be removed, as in Docker. `prune` removes unused anonymous
//! volumes, or every unused volume with `--all` (Docker 23's rule).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};

use super::{Context, Exit};
use crate::runtime::container::ContainerStore;
use crate::volume::{Volume, VolumeStore};

#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume
    Create(CreateArgs),
    /// List volumes
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on volumes
    Inspect(InspectArgs),
    /// Remove volumes
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove unused volumes
    Prune(PruneArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Set metadata on the volume (KEY=VALUE)
    #[arg(long)]
    pub label: Vec<String>,
    /// Volume name (default: a random one)
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only display volume names
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Filter: dangling=true|false, label=KEY[=VALUE], name=SUBSTRING
    #[arg(short = 'f', long)]
    pub filter: Vec<String>,
    /// Format output: table, json, a Go template ('{{json .}}'), or 'table TEMPLATE'
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Accepted for Docker compatibility (a volume in use is never removed)
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all unused volumes, not only anonymous ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

pub fn run(ctx: &Context, cmd: VolumeCommand) -> anyhow::Result<()> {
    match cmd {
        VolumeCommand::Create(a) => create(ctx, a),
        VolumeCommand::Ls(a) => ls(ctx, a),
        VolumeCommand::Inspect(a) => inspect(ctx, a),
        VolumeCommand::Rm(a) => rm(ctx, a),
        VolumeCommand::Prune(a) => prune(ctx, a),
    }
}

fn store(ctx: &Context) -> anyhow::Result<VolumeStore> {
    Ok(VolumeStore::open(&ctx.root()?)?)
}

/// Volume name -> the names of the containers that mount it.
fn users(ctx: &Context) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    Ok(in_use(&ContainerStore::open(&ctx.root()?)?))
}

/// Volume name -> the names of the containers (running or not) that mount it.
pub fn in_use(containers: &ContainerStore) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (config, _) in containers.list() {
        for m in &config.volumes {
            out.entry(m.name.clone())
                .or_default()
                .push(config.name.clone());
        }
    }
    out
}

fn create(ctx: &Context, a: CreateArgs) -> anyhow::Result<()> {
    let labels = super::container::parse_labels(&a.label);
    let name = a.name.unwrap_or_else(VolumeStore::anonymous_name);
    if !crate::volume::valid(&name) {
        bail!("invalid volume name {name:?}: use [a-zA-Z0-9][a-zA-Z0-9_.-]*");
    }
    store(ctx)?
        .create(&name, &labels)
        .with_context(|| format!("creating volume {name}"))?;
    println!("{name}");
    Ok(())
}

fn matches(filter: &str, v: &Volume, in_use: bool) -> anyhow::Result<bool> {
    let (key, value) = filter
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("invalid filter {filter:?}: use KEY=VALUE"))?;
    Ok(match key {
        "dangling" => match value {
            "true" | "1" => !in_use,
            "false" | "0" => in_use,
            _ => bail!("invalid filter {filter:?}: dangling is true or false"),
        },
        "label" => match value.split_once('=') {
            Some((k, want)) => v.labels.get(k).is_some_and(|x| x == want),
            None => v.labels.contains_key(value),
        },
        "name" => v.name.contains(value),
        _ => bail!("invalid filter {key:?}: use dangling, label or name"),
    })
}

fn ls(ctx: &Context, a: LsArgs) -> anyhow::Result<()> {
    let users = users(ctx)?;
    let mut shown = Vec::new();
    for v in store(ctx)?.list()? {
        let in_use = users.contains_key(&v.name);
        let mut keep = true;
        for f in &a.filter {
            keep &= matches(f, &v, in_use)?;
        }
        if keep {
            shown.push(v);
        }
    }
    if a.quiet {
        for v in &shown {
            println!("{}", v.name);
        }
        return Ok(());
    }
    let store = store(ctx)?;
    let objects: Vec<_> = shown.iter().map(|v| describe(&store, v)).collect();
    super::output::print_listing(
        ctx,
        a.format.as_deref(),
        super::output::JsonShape::Document,
        &objects,
        &[
            ("Driver", "DRIVER"),
            ("Name", "VOLUME NAME"),
            ("Mountpoint", "MOUNTPOINT"),
            ("Scope", "SCOPE"),
            ("Labels", "LABELS"),
            ("CreatedAt", "CREATED AT"),
        ],
        "{{.Driver}}\t{{.Name}}",
    )
}

/// `docker volume inspect`'s shape.
fn describe(store: &VolumeStore, v: &Volume) -> serde_json::Value {
    serde_json::json!({
        "CreatedAt": v.created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "Driver": "local",
        "Labels": v.labels,
        "Mountpoint": store.data_dir(&v.name),
        "Name": v.name,
        "Options": null,
        "Scope": "local",
        "Anonymous": v.anonymous,
    })
}

fn inspect(ctx: &Context, a: InspectArgs) -> anyhow::Result<()> {
    let store = store(ctx)?;
    let mut out = Vec::new();
    let mut missing = false;
    for name in &a.names {
        match crate::volume::valid(name)
            .then(|| store.get(name))
            .transpose()?
            .flatten()
        {
            Some(v) => out.push(describe(&store, &v)),
            None => {
                eprintln!("error: no such volume: {name}");
                missing = true;
            }
        }
    }
    super::output::print_json(&out)?;
    if missing {
        return Err(Exit::silent(1).into());
    }
    Ok(())
}

fn rm(ctx: &Context, a: RmArgs) -> anyhow::Result<()> {
    let store = store(ctx)?;
    let users = users(ctx)?;
    super::container::each(&a.names, |name| {
        if let Some(who) = users.get(name) {
            bail!(
                "remove {name}: volume is in use by {}: remove the container first",
                who.join(", ")
            );
        }
        if !crate::volume::valid(name) || !store.remove(name)? {
            bail!("no such volume: {name}");
        }
        Ok(())
    })
}

fn prune(ctx: &Context, a: PruneArgs) -> anyhow::Result<()> {
    if !a.force {
        let what = if a.all {
            "all volumes not used by at least one container"
        } else {
            "all anonymous volumes not used by at least one container"
        };
        if !super::container::confirm(&format!("WARNING! This will remove {what}."))? {
            return Ok(());
        }
    }
    let store = store(ctx)?;
    let used: BTreeSet<String> = users(ctx)?.into_keys().collect();
    println!("Deleted Volumes:");
    for v in store.list()? {
        if used.contains(&v.name) || !(a.all || v.anonymous) {
            continue;
        }
        if store.remove(&v.name)? {
            println!("{}", v.name);
        }
    }
    Ok(())
}
