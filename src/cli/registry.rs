//! `pull`, `push`, `login` and `logout`: the registry commands, with
//! Docker's output shapes. Per-layer progress goes to stderr (bars on a
//! terminal, plain lines otherwise); the summary lines go to stdout. A
//! failure prints one line naming the reference and the registry and exits 1,
//! as `docker pull`/`docker push` do.

use std::io::{BufRead, IsTerminal, Read, Write};

use anyhow::{bail, Context as _};

use super::{Context, Exit};
use crate::image::Reference;
use crate::registry::credentials::{server_key, Credentials};
use crate::registry::{self, login as reglogin, Platform, Progress};

/// Arguments of `berth pull`.
#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// Set platform if the image is multi-platform (OS/ARCH[/VARIANT])
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Image to pull: NAME[:TAG|@DIGEST]
    pub image: String,
}

/// Arguments of `berth push`.
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Image to push: NAME[:TAG]
    pub image: String,
}

/// Arguments of `berth login`.
#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// Username
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Password (prefer --password-stdin)
    #[arg(short = 'p', long)]
    pub password: Option<String>,
    /// Take the password from stdin
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
    /// Registry server (default: Docker Hub)
    pub server: Option<String>,
}

/// Arguments of `berth logout`.
#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    /// Registry server (default: Docker Hub)
    pub server: Option<String>,
}

fn registry_exit(err: registry::RegistryError) -> anyhow::Error {
    Exit {
        code: 1,
        message: err.to_string(),
    }
    .into()
}

/// Parses a reference the way `docker pull` does, saying whether a tag was added.
fn parse_reference(image: &str) -> anyhow::Result<(Reference, bool)> {
    let bare = Reference::parse_name_only(image)?;
    let defaulted = bare.tag().is_none() && bare.digest().is_none();
    Ok((Reference::parse(image)?, defaulted))
}

/// `berth pull`.
pub fn pull(ctx: &Context, args: PullArgs) -> anyhow::Result<()> {
    let (reference, defaulted) = parse_reference(&args.image)?;
    let platform = args
        .platform
        .as_deref()
        .map(str::parse::<Platform>)
        .transpose()?;
    let root = ctx.root()?;
    let mut out = std::io::stdout().lock();
    if defaulted && !args.quiet {
        writeln!(out, "Using default tag: latest")?;
        out.flush()?;
    }
    let progress = if args.quiet {
        Progress::quiet()
    } else {
        Progress::auto()
    };
    let outcome = registry::pull_outcome(&root, &reference, platform.as_ref(), &progress)
        .map_err(registry_exit)?;
    // Let the bars settle before the summary lines.
    drop(progress);
    if !args.quiet {
        writeln!(out, "Digest: {}", outcome.digest)?;
        if outcome.downloaded {
            writeln!(
                out,
                "Status: Downloaded newer image for {}",
                reference.familiar()
            )?;
        } else {
            writeln!(
                out,
                "Status: Image is up to date for {}",
                reference.familiar()
            )?;
        }
    }
    writeln!(out, "{reference}")?;
    Ok(())
}

/// `berth push`.
pub fn push(ctx: &Context, args: PushArgs) -> anyhow::Result<()> {
    let (reference, _) = parse_reference(&args.image)?;
    if reference.digest().is_some() {
        bail!(
            "cannot push a digest reference ({}); push a tag",
            args.image
        );
    }
    let root = ctx.root()?;
    let mut out = std::io::stdout().lock();
    if !args.quiet {
        writeln!(
            out,
            "The push refers to repository [{}]",
            reference.familiar_name()
        )?;
        out.flush()?;
    }
    let progress = if args.quiet {
        Progress::quiet()
    } else {
        Progress::auto()
    };
    let outcome = registry::push(&root, &reference, &progress).map_err(registry_exit)?;
    drop(progress);
    if args.quiet {
        writeln!(out, "{reference}")?;
    } else {
        writeln!(
            out,
            "{}: digest: {} size: {}",
            outcome.tag, outcome.digest, outcome.size
        )?;
    }
    Ok(())
}

/// Reads a line from the terminal, optionally without echo.
fn prompt(label: &str, echo: bool) -> anyhow::Result<String> {
    use std::os::fd::AsFd;
    let stdin = std::io::stdin();
    eprint!("{label}");
    std::io::stderr().flush()?;
    let saved = if echo {
        None
    } else {
        let fd = stdin.as_fd();
        let saved = nix::sys::termios::tcgetattr(fd).context("reading terminal settings")?;
        let mut quiet = saved.clone();
        quiet
            .local_flags
            .remove(nix::sys::termios::LocalFlags::ECHO);
        nix::sys::termios::tcsetattr(fd, nix::sys::termios::SetArg::TCSANOW, &quiet)
            .context("turning off echo")?;
        Some(saved)
    };
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(saved) = saved {
        let _ =
            nix::sys::termios::tcsetattr(stdin.as_fd(), nix::sys::termios::SetArg::TCSANOW, &saved);
        eprintln!();
    }
    read.context("reading from the terminal")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// `berth login`.
pub fn login(_ctx: &Context, args: LoginArgs) -> anyhow::Result<()> {
    let registry = reglogin::server_host(args.server.as_deref());
    if args.password.is_some() && args.password_stdin {
        bail!("--password and --password-stdin are mutually exclusive");
    }
    let interactive = std::io::stdin().is_terminal();
    let mut password = args.password.clone();
    if password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    if args.password_stdin {
        if args.username.is_none() {
            bail!("must provide --username with --password-stdin");
        }
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the password from stdin")?;
        password = Some(text.trim_end_matches(['\n', '\r']).to_string());
    }
    let username = match args.username {
        Some(u) => u,
        None if interactive => prompt("Username: ", true)?,
        None => bail!("cannot perform an interactive login from a non TTY device; use -u and --password-stdin"),
    };
    let password = match password {
        Some(p) => p,
        None if interactive => prompt("Password: ", false)?,
        None => {
            bail!("cannot perform an interactive login from a non TTY device; use --password-stdin")
        }
    };
    if username.is_empty() {
        bail!("username is empty");
    }
    if password.is_empty() {
        bail!("password is empty");
    }
    let path = reglogin::login(
        &registry,
        Credentials {
            username,
            secret: password,
        },
    )
    .map_err(registry_exit)?;
    tracing::debug!(path = %path.display(), "credentials stored");
    println!("Login Succeeded");
    Ok(())
}

/// `berth logout`.
pub fn logout(_ctx: &Context, args: LogoutArgs) -> anyhow::Result<()> {
    let registry = reglogin::server_host(args.server.as_deref());
    let key = server_key(&registry);
    if reglogin::logout(&registry).map_err(registry_exit)? {
        println!("Removing login credentials for {key}");
    } else {
        println!("Not logged in to {key}");
    }
    Ok(())
}
