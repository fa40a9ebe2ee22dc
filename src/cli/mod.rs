//! The command line: clap definitions, global options and dispatch.
//!
//! This is the only layer that uses `anyhow`; everything below returns typed
//! errors, and each handler here adds the context a user needs ("pulling
//! busybox: ..."). Errors print as one line, `error: ...`, and exit non-zero
//! (Docker's 125 for a command that could not run, or the code a handler
//! chooses through [`Exit`]).

pub mod build;
pub mod commit;
pub mod compose;
pub mod container;
pub mod container_image;
pub mod exec;
pub mod image;
pub mod info;
pub mod inspect;
pub mod interrupt;
pub mod network;
pub mod oci;
pub mod output;
pub mod project;
pub mod ps;
pub mod registry;
pub mod service_names;
pub mod system;
pub mod volume;
pub mod watch;

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
    /// More logging (repeat for more); before the command only, because
    /// after it `-v` is Docker's volume flag (`berth run -v SRC:DST`)
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print JSON instead of tables (same as --format json)
    #[arg(long, global = true)]
    pub json: bool,
    /// Whether `--root` was given on the command line (not from
    /// `BERTH_ROOT` or the default): `berth oci` then reads it as runc does.
    #[arg(skip)]
    pub root_on_command_line: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show where berth keeps its state and what the host supports
    Info,
    /// Show berth's version and what it is built from
    Version(info::VersionArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completion(info::CompletionArgs),
    /// Write berth's man pages (berth.1 and one per command)
    #[command(name = "__man", hide = true)]
    Man(info::ManArgs),
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
    /// Show containers or images as JSON (containers first, like docker inspect)
    Inspect(inspect::InspectArgs),
    /// Manage images
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Print the project's resolved manifest (after interpolation, merging and defaults)
    Config(project::ConfigArgs),
    /// Create and start the project's containers (berth.toml)
    Up(compose::UpArgs),
    /// Stop and remove the project's containers and networks
    Down(compose::DownArgs),
    /// Show what `up` would change, field by field
    Plan(compose::PlanArgs),
    /// Watch the project's files; sync, restart or rebuild services as they change
    Watch(watch::WatchArgs),
    /// The project's verbs, Compose-style: berth compose [-f FILE] [-p NAME] VERB
    Compose(compose::ComposeArgs),
    /// Write a Compose file (compose.yaml) as a berth.toml
    Convert(project::ConvertArgs),
    /// Write a starter berth.toml in this directory
    Init(project::InitArgs),
    /// Print the JSON Schema of berth.toml (for editors: taplo, VS Code)
    #[command(name = "schema", alias = "__schema")]
    Schema,
    /// Download an image from a registry
    Pull(registry::PullArgs),
    /// Upload an image to a registry
    Push(registry::PushArgs),
    /// Log in to a registry
    Login(registry::LoginArgs),
    /// Log out from a registry
    Logout(registry::LogoutArgs),
    /// Create and run a new container from an image
    Run(container::RunArgs),
    /// Create a new container
    Create(container::CreateArgs),
    /// Start one or more stopped containers (or, in a project, services)
    Start(container::StartArgs),
    /// Stop one or more running containers (or, in a project, services)
    Stop(container::StopArgs),
    /// Kill one or more running containers (or, in a project, services)
    Kill(container::KillArgs),
    /// Restart one or more containers (or, in a project, services)
    Restart(container::StopArgs),
    /// Remove one or more containers (or, in a project, services')
    Rm(container::RmArgs),
    /// List containers
    Ps(ps::PsArgs),
    /// Fetch the logs of a container (or, in a project, a service)
    Logs(ps::LogsArgs),
    /// Execute a command in a running container (or, in a project, a service)
    Exec(exec::ExecArgs),
    /// Attach to a running container's input and output
    Attach(container::AttachArgs),
    /// Block until containers stop, then print their exit codes
    Wait(container::WaitArgs),
    /// Display the running processes of a container
    Top(ps::TopArgs),
    /// Create a new image from a container's changes
    Commit(commit::CommitArgs),
    /// Build an image from a Dockerfile
    Build(build::BuildArgs),
    /// Manage berth (disk usage, clean-up)
    #[command(subcommand)]
    System(system::SystemCommand),
    /// Manage the build cache
    #[command(subcommand)]
    Builder(system::BuilderCommand),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCommand),
    /// OCI runtime command line (runc-compatible) over berth's engine
    Oci(oci::OciArgs),
    #[command(name = "__supervise", hide = true)]
    Supervise(container::SuperviseArgs),
    /// Holds a detached `exec -it`'s terminal (see cli/exec.rs)
    #[command(name = "__pty-drain", hide = true)]
    PtyDrain,
    /// Manage networks
    #[command(subcommand)]
    Network(network::NetworkCmd),
    /// Manage volumes
    #[command(subcommand)]
    Volume(volume::VolumeCommand),
    /// List port mappings of a container
    Port(network::PortArgs),
}

/// `berth container ...`.
#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// Remove all stopped containers
    Prune(container::PruneArgs),
    /// List containers
    #[command(alias = "list")]
    Ls(ps::PsArgs),
    /// Return low-level information on containers
    Inspect(ps::InspectArgs),
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
        (None, 0) => "warn,libcontainer=off,libcgroups=off".to_string(),
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
    use clap::{CommandFactory, FromArgMatches};
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|m| Ok((Cli::from_arg_matches(&m)?, m)));
    let cli = match parsed {
        Ok((mut cli, m)) => {
            cli.global.root_on_command_line = root_given(&m);
            cli
        }
        Err(e) => {
            let _ = e.print();
            // Help and version go to stdout and succeed; a usage error exits
            // 125 as Docker's CLI does, so it is never mistaken for the exit
            // status of a container's command.
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                _ => 125,
            };
        }
    };
    init_logging(&cli.global);
    quiet_on_broken_pipe();
    let ctx = Context { global: cli.global };
    match run(&ctx, cli.command) {
        Ok(()) => 0,
        Err(err) => report(&err),
    }
}

/// A reader that stops early (`berth ps | head -1`) closes the pipe; what is
/// left to print has nobody to read it, and that is not a failure. Rust
/// ignores SIGPIPE, so the write fails with EPIPE: through `println!` that
/// is a panic, which this hook turns into a quiet exit 0; through
/// `writeln!` an error, which [`report`] treats the same way.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.contains("Broken pipe") && stdout_reader_gone() {
            std::process::exit(0);
        }
        default(info);
    }));
}

/// An EPIPE from writing our own output, not from a pipe to a child
/// process (`nft -f -`), whose failure must still be reported: the error is
/// a broken pipe and stdout's reader is gone (poll reports POLLERR on a
/// pipe's write end once no reader is left).
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    let epipe = err.chain().any(|e| {
        let kind = e
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind)
            .or_else(|| {
                e.downcast_ref::<serde_json::Error>()
                    .and_then(serde_json::Error::io_error_kind)
            });
        kind == Some(std::io::ErrorKind::BrokenPipe)
    });
    epipe && stdout_reader_gone()
}

fn stdout_reader_gone() -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let stdout = std::io::stdout();
    let mut fds = [PollFd::new(stdout.as_fd(), PollFlags::POLLOUT)];
    poll(&mut fds, PollTimeout::ZERO).is_ok()
        && fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLERR))
}

/// Whether `--root` came from the command line, at any subcommand depth
/// (it is a global flag).
fn root_given(m: &clap::ArgMatches) -> bool {
    if m.value_source("root") == Some(clap::parser::ValueSource::CommandLine) {
        return true;
    }
    m.subcommand().is_some_and(|(_, sub)| root_given(sub))
}

/// Prints an error as one line and chooses the exit code.
pub fn report(err: &anyhow::Error) -> i32 {
    if is_broken_pipe(err) {
        return 0;
    }
    if let Some(exit) = err.downcast_ref::<Exit>() {
        if !exit.message.is_empty() {
            eprintln!("error: {}", exit.message);
        }
        return exit.code;
    }
    eprintln!("error: {}", one_line(err));
    err.downcast_ref::<crate::engine::EngineError>()
        .map_or(125, |e| e.code())
}

/// The error and its causes on one line, as `{:#}` prints them, but
/// without a cause whose text the line already holds: many errors embed
/// their source in their own message (`cannot write X: {source}`) and
/// also return it as their source, which would print it twice.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

fn run(ctx: &Context, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Info => info::run(ctx),
        Command::Version(a) => info::version(ctx, a),
        Command::Completion(a) => info::completion(a),
        Command::Man(a) => info::man(a),
        Command::Import(a) => image::import_cmd(ctx, a),
        Command::Save(a) => image::save(ctx, a),
        Command::Load(a) => image::load(ctx, a),
        Command::Images(a) => image::images(ctx, a),
        Command::Tag(a) => image::tag(ctx, a),
        Command::Rmi(a) => image::rmi(ctx, a),
        Command::Inspect(a) => inspect::run(ctx, a),
        Command::Image(c) => image::run_group(ctx, c),
        Command::Config(args) => project::config(ctx, args),
        Command::Convert(args) => project::convert(args),
        Command::Init(args) => project::init(args),
        Command::Schema => project::schema(),
        Command::Up(a) => compose::up(ctx, a),
        Command::Down(a) => compose::down(ctx, a),
        Command::Plan(a) => compose::plan(ctx, a),
        Command::Watch(a) => compose::watch(ctx, a),
        Command::Compose(c) => compose::run_group(ctx, c),
        Command::Pull(a) => registry::pull(ctx, a),
        Command::Push(a) => registry::push(ctx, a),
        Command::Login(a) => registry::login(ctx, a),
        Command::Logout(a) => registry::logout(ctx, a),
        Command::Network(cmd) => network::run(ctx, cmd),
        Command::Volume(cmd) => volume::run(ctx, cmd),
        Command::Port(mut a) => {
            a.container = service_names::expand_one(ctx, &a.container)?;
            network::port(ctx, a)
        }
        Command::Run(a) => container::run(ctx, a),
        Command::Create(a) => container::create(ctx, a),
        Command::Start(mut a) => {
            a.containers = service_names::expand_all(ctx, &a.containers)?;
            container::start(ctx, a)
        }
        Command::Stop(mut a) => {
            a.containers = service_names::expand_all(ctx, &a.containers)?;
            container::stop(ctx, a)
        }
        Command::Kill(mut a) => {
            a.containers = service_names::expand_all(ctx, &a.containers)?;
            container::kill(ctx, a)
        }
        Command::Restart(mut a) => {
            a.containers = service_names::expand_all(ctx, &a.containers)?;
            container::restart(ctx, a)
        }
        Command::Rm(mut a) => {
            a.containers = service_names::expand_all(ctx, &a.containers)?;
            container::rm(ctx, a)
        }
        Command::Ps(a) => ps::ps(ctx, a),
        Command::Logs(a) => ps::logs_by_name(ctx, a),
        Command::Exec(mut a) => {
            a.container = service_names::expand_one(ctx, &a.container)?;
            exec::exec(ctx, a)
        }
        Command::Attach(mut a) => {
            a.container = service_names::expand_one(ctx, &a.container)?;
            container::attach(ctx, a)
        }
        Command::Wait(mut a) => {
            a.containers = service_names::expand_all(ctx, &a.containers)?;
            container::wait(ctx, a)
        }
        Command::Top(mut a) => {
            a.container = service_names::expand_one(ctx, &a.container)?;
            ps::top(ctx, a)
        }
        Command::Commit(a) => commit::run(ctx, a),
        Command::Build(a) => build::run(ctx, a),
        Command::System(c) => system::run(ctx, c),
        Command::Builder(c) => system::run_builder(ctx, c),
        Command::Container(ContainerCommand::Prune(a)) => container::prune(ctx, a),
        Command::Container(ContainerCommand::Ls(a)) => ps::ps(ctx, a),
        Command::Container(ContainerCommand::Inspect(a)) => ps::inspect(ctx, a),
        Command::Oci(c) => oci::run(ctx, c),
        Command::Supervise(a) => container::supervise(ctx, a),
        Command::PtyDrain => {
            crate::terminal::pty::drain();
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot write /x: {source}")]
    struct Embeds {
        source: std::io::Error,
    }

    #[test]
    fn a_cause_is_printed_once() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let err = anyhow::Error::from(Embeds { source: io }).context("writing berth.toml");
        assert_eq!(
            one_line(&err),
            "writing berth.toml: cannot write /x: entity not found"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(one_line(&plain), "outer: inner");
    }
}
