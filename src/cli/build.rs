//! `berth build` (and `berth image build`): `docker build`'s flags over the
//! library builder ([`crate::build::engine::build`]), printing the classic
//! builder's output (`Step 1/4 : FROM busybox`, ` ---> 3d09eb5cb50d`, …,
//! `Successfully built …`); `-q` prints only the image id.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use super::{Context, Exit};
use crate::build::engine::{self, BuildError, BuildRequest};
use crate::image::reference::Reference;

#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    /// Name and optionally a tag for the image (name:tag); repeatable
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,
    /// Name of the Dockerfile (default: PATH/Dockerfile)
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// Set the target build stage to build
    #[arg(long)]
    pub target: Option<String>,
    /// Set build-time variables (K=V, or K to take its value from this environment)
    #[arg(long = "build-arg", value_name = "K=V")]
    pub build_args: Vec<String>,
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Suppress the build output and print the image ID on success
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Always attempt to pull newer versions of the base images
    #[arg(long)]
    pub pull: bool,
    /// Network of the RUN containers (default, none, host, or a network)
    #[arg(long)]
    pub network: Option<String>,
    /// A secret for RUN --mount=type=secret (id=ID,src=FILE or id=ID,env=VAR); repeatable
    #[arg(long = "secret", value_name = "id=ID,src=FILE")]
    pub secrets: Vec<String>,
    /// The build context directory
    pub path: PathBuf,
}

/// Turns the flags into a request.
pub fn request(args: &BuildArgs) -> anyhow::Result<BuildRequest> {
    let mut build_args = BTreeMap::new();
    for a in &args.build_args {
        match a.split_once('=') {
            Some((k, v)) => {
                build_args.insert(k.to_string(), v.to_string());
            }
            None => {
                if let Ok(v) = std::env::var(a) {
                    build_args.insert(a.clone(), v);
                }
            }
        }
    }
    let mut secrets = BTreeMap::new();
    for s in &args.secrets {
        let (id, source) =
            crate::build::mount::parse_secret_flag(s, &|k: &str| std::env::var(k).ok())
                .map_err(|message| Exit { code: 1, message })?;
        if let crate::build::mount::SecretSource::File(p) = &source {
            if !p.is_file() {
                return Err(Exit {
                    code: 1,
                    message: format!("--secret {s}: {} is not a readable file", p.display()),
                }
                .into());
            }
        }
        secrets.insert(id, source);
    }
    let tags = args
        .tags
        .iter()
        .map(|t| Reference::parse(t).with_context(|| format!("invalid tag {t:?}")))
        .collect::<anyhow::Result<_>>()?;
    if !args.path.is_dir() {
        return Err(Exit {
            code: 1,
            message: format!(
                "unable to prepare context: path {:?} not found or not a directory",
                args.path.display().to_string()
            ),
        }
        .into());
    }
    Ok(BuildRequest {
        context: args.path.clone(),
        dockerfile: args.file.clone(),
        tags,
        build_args,
        target: args.target.clone(),
        no_cache: args.no_cache,
        pull: args.pull,
        quiet: args.quiet,
        network: args.network.clone(),
        secrets,
        // SIGINT/SIGTERM: the build stops before its next step and removes
        // its build container (the signal also reaches the container through
        // `berth start -a`, which is in our process group).
        interrupted: Some(&super::interrupt::INTERRUPTED),
    })
}

/// `berth build`.
pub fn run(ctx: &Context, args: BuildArgs) -> anyhow::Result<()> {
    let req = request(&args)?;
    let root = ctx.root()?;
    super::interrupt::catch();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match engine::build(&root, &req, &mut out) {
        Ok(image) => {
            if req.quiet {
                writeln!(out, "{}", image.id)?;
            }
            Ok(())
        }
        Err(BuildError::Interrupted) => Err(Exit {
            code: 130,
            message: "the build was interrupted".into(),
        }
        .into()),
        Err(e @ BuildError::RunFailed { .. }) => {
            let _ = out.flush();
            eprintln!("{e}");
            Err(Exit::silent(1).into())
        }
        Err(e) => Err(Exit {
            code: 1,
            message: e.to_string(),
        }
        .into()),
    }
}
