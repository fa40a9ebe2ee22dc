//! `berth inspect NAME...`: like `docker inspect`, a name is looked up among
//! containers first and then among images (`--type` narrows it), and the
//! result is one JSON array, or one line per object with `-f TEMPLATE`.

use clap::Args;

use super::Context;
use crate::image::store::StoreError;
use crate::runtime::container::ContainerStore;

/// `berth inspect [-f TEMPLATE] [--type container|image] NAME...`
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format each object with a Go-style template, e.g. '{{.State.ExitCode}}'
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Only look for objects of this type
    #[arg(long = "type", value_parser = ["container", "image"])]
    pub kind: Option<String>,
    #[arg(required = true, value_name = "NAME|ID")]
    pub names: Vec<String>,
}

pub fn run(ctx: &Context, args: InspectArgs) -> anyhow::Result<()> {
    let root = ctx.root()?;
    let containers = ContainerStore::open(&root)?;
    let images = super::image::store(ctx)?;
    let want = |kind: &str| args.kind.as_deref().is_none_or(|k| k == kind);
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for name in &args.names {
        if want("container") {
            if let Ok(id) = containers.resolve(name) {
                let config = containers.config(&id)?;
                let state = containers.observed_state(&id)?;
                out.push(super::ps::inspect_json(&containers, &config, &state));
                continue;
            }
        }
        if want("image") {
            match images.resolve(name) {
                Ok(image) => {
                    out.push(super::image::inspect_json(&images, &image)?);
                    continue;
                }
                Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        missing.push(name.clone());
    }
    match args.format.as_deref() {
        None | Some("json") => super::output::print_json(&out)?,
        Some(template) => {
            for value in &out {
                println!("{}", crate::format::template::render_one(template, value)?);
            }
        }
    }
    if !missing.is_empty() {
        for name in &missing {
            eprintln!("error: no such object: {name}");
        }
        return Err(super::Exit::silent(1).into());
    }
    Ok(())
}
