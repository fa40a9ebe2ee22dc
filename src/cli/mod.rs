//! The command line: clap definitions, global options and dispatch.
//!
//! This is the only layer that uses `anyhow`; everything below returns typed
//! errors, and each handler here adds the context a user needs ("pulling
//! busybox: ..."). Errors print as one line, `error: ...`, and exit non-zero
//! (Docker's 125 for a command that could not run, or the code a handler
//! chooses through [`Exit`]).

pub mod image;
pub mod info;
pub mod network;
pub mod output;
pub mod project;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::state::{StateRoot, DEFAULT_ROOT};
pub use output::{OutputFormat, Table};

/// berth: a daemonless, Compose-like container orchestrator.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts.
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalOpts {
    /// State root directory
    #[arg(long, global = true, env = "BERTH_ROOT", default_value = DEFAULT_ROOT)]
    pub root: PathBuf,
    /// Log level (error, warn, info, debug, trace); -v is debug
    #[arg(long = "log-level", global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// More logging (repeat for more)
    #[arg(short = 'v', long = "verbose", global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print JSON instead of tables (same as --format json)
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show where berth keeps its state and what the host supports
    Info,
    /// Make an image from a rootfs tarball
    Import(image::ImportArgs),
    /// Write images to a tar archive (docker-archive or OCI)
    Save(image::SaveArgs),
    /// Load images from a tar archive
    Load(image::LoadArgs),
    /// List images
    Images(image::ImagesArgs),
    /// Give an image another name
    Tag(image::TagArgs),
    /// Remove images
    Rmi(image::RmiArgs),
    /// Show images as JSON
    Inspect(image::InspectArgs),
    /// Manage images
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Print the project's resolved manifest (after interpolation, merging and defaults)
    Config(project::ConfigArgs),
    /// Print the JSON Schema of berth.toml
    #[command(name = "__schema", hide = true)]
    Schema,
    /// Manage networks
    #[command(subcommand)]
    Network(network::NetworkCmd),
}

/// What a handler needs from the command line beyond its own arguments.
#[derive(Debug, Clone)]
pub struct Context {
    pub global: GlobalOpts,
}

impl Context {
    /// Opens the state root named by `--root`.
    pub fn root(&self) -> anyhow::Result<StateRoot> {
        use anyhow::Context as _;
        StateRoot::open(&self.global.root)
            .with_context(|| format!("opening state root {}", self.global.root.display()))
    }

    /// The output format: `--json` wins over a command's own `--format`.
    pub fn format(&self, format: Option<&str>) -> OutputFormat {
        if self.global.json {
            OutputFormat::Json
        } else {
            OutputFormat::parse(format)
        }
    }
}

/// An error that carries its own exit code (e.g. a container's exit status).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    pub code: i32,
    pub message: String,
}

impl Exit {
    /// Exit with `code` and print nothing more.
    pub fn silent(code: i32) -> Self {
        Self {
            code,
            message: String::new(),
        }
    }
}

fn init_logging(global: &GlobalOpts) {
    let level = match (&global.log_level, global.verbose) {
        (Some(level), _) => level.clone(),
        (None, 0) => "warn".to_string(),
        (None, 1) => "debug".to_string(),
        (None, _) => "trace".to_string(),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
        // netlink-packet-route warns about every attribute newer than
        // itself (e.g. IFLA_INET6_CONF on new kernels): noise for users.
        .unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(format!("{level},netlink_packet_route=error"))
        });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
}

/// Entry point: parses arguments, runs the command, returns the exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    init_logging(&cli.global);
    let ctx = Context { global: cli.global };
    match run(&ctx, cli.command) {
        Ok(()) => 0,
        Err(err) => report(&err),
    }
}

/// Prints an error as one line and chooses the exit code.
pub fn report(err: &anyhow::Error) -> i32 {
    if let Some(exit) = err.downcast_ref::<Exit>() {
        if !exit.message.is_empty() {
            eprintln!("error: {}", exit.message);
        }
        return exit.code;
    }
    eprintln!("error: {err:#}");
    125
}

fn run(ctx: &Context, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Info => info::run(ctx),
        Command::Import(a) => image::import_cmd(ctx, a),
        Command::Save(a) => image::save(ctx, a),
        Command::Load(a) => image::load(ctx, a),
        Command::Images(a) => image::images(ctx, a),
        Command::Tag(a) => image::tag(ctx, a),
        Command::Rmi(a) => image::rmi(ctx, a),
        Command::Inspect(a) => image::inspect(ctx, a),
        Command::Image(c) => image::run_group(ctx, c),
        Command::Config(args) => project::config(ctx, args),
        Command::Schema => project::schema(),
        Command::Network(cmd) => network::run(ctx, cmd),
    }
}
