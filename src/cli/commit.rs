//! `berth commit`: a container's changes as a new image (see
//! `runtime::commit`), printing the new image id like `docker commit`.

use anyhow::Context as _;
use clap::Args;

use super::Context;
use crate::image::reference::Reference;
use crate::image::store::ImageStore;
use crate::runtime::commit::{self, CommitOptions};
use crate::runtime::container::ContainerStore;

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Apply a Dockerfile instruction to the image config (CMD, ENTRYPOINT, ENV, …)
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
    /// Commit message
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Author (e.g. "Jane Doe <jane@example.com>")
    #[arg(short = 'a', long)]
    pub author: Option<String>,
    pub container: String,
    /// Repository[:tag] for the new image
    pub reference: Option<String>,
}

pub fn run(ctx: &Context, args: CommitArgs) -> anyhow::Result<()> {
    let root = ctx.root()?;
    let containers = ContainerStore::open(&root)?;
    let id = containers.resolve(&args.container)?;
    let config = containers.config(&id)?;
    let reference = args
        .reference
        .as_deref()
        .map(Reference::parse)
        .transpose()
        .context("the image name")?;
    let images = ImageStore::open(&root).context("opening the image store")?;
    let image = commit::commit(
        &images,
        &config,
        &containers.dir(&id).join("upper"),
        reference.as_ref(),
        &CommitOptions {
            changes: args.changes,
            message: args.message,
            author: args.author,
        },
    )
    .with_context(|| format!("committing container {}", args.container))?;
    println!("{}", image.id);
    Ok(())
}
