//! Project commands that need no runtime: `config` (the resolved manifest)
//! and the hidden `__schema` (prints the manifest's JSON Schema).
//!
//! [`ProjectArgs`] are the flags every project command takes (`-f FILE`
//! repeatable, `-p NAME`, `--profile`); `up`, `down`, `plan` and the
//! service-addressed verbs flatten it into their own arguments and call
//! [`ProjectArgs::load`] / [`ProjectArgs::resolve`].

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;

use super::{Context, OutputFormat};
use crate::project::{self, canonical, ImageDigests, LoadOptions, Loaded, Project};

/// Flags naming the project a command works on.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ProjectArgs {
    /// Manifest file (repeatable: later files merge over earlier ones); default: berth.toml in this directory or above
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Project name (default: `name` in berth.toml, else the directory's name)
    #[arg(short = 'p', long = "project-name", value_name = "NAME")]
    pub project_name: Option<String>,
    /// Enable services of this profile (repeatable; also BERTH_PROFILES=a,b)
    #[arg(long = "profile", value_name = "PROFILE")]
    pub profiles: Vec<String>,
    /// Fail at once when another berth command is changing this project (default: wait for it)
    #[arg(long = "no-lock-wait")]
    pub no_lock_wait: bool,
}

impl ProjectArgs {
    /// These flags, each falling back to `outer`'s where not given here
    /// (`berth compose -p X up` and `berth compose up -p X` both work).
    pub fn or(self, outer: &ProjectArgs) -> ProjectArgs {
        ProjectArgs {
            files: if self.files.is_empty() {
                outer.files.clone()
            } else {
                self.files
            },
            project_name: self.project_name.or_else(|| outer.project_name.clone()),
            profiles: if self.profiles.is_empty() {
                outer.profiles.clone()
            } else {
                self.profiles
            },
            no_lock_wait: self.no_lock_wait || outer.no_lock_wait,
        }
    }

    /// The library's view of these flags.
    pub fn selection(&self) -> project::selection::Selection {
        project::selection::Selection {
            files: self.files.clone(),
            project_name: self.project_name.clone(),
            profiles: self.profiles.clone(),
            no_lock_wait: self.no_lock_wait,
        }
    }

    /// Takes the project's lock for `command` (waiting, or failing at once
    /// with `--no-lock-wait`).
    pub fn lock(&self, ctx: &Context, command: &str) -> anyhow::Result<project::lock::ProjectLock> {
        Ok(self.selection().lock(&ctx.root()?, command)?)
    }

    /// The active profiles: `--profile` flags, else `BERTH_PROFILES`.
    pub fn profiles(&self) -> Vec<String> {
        self.selection().profiles()
    }

    /// Finds, reads and validates the manifest(s).
    pub fn load(&self) -> anyhow::Result<Loaded> {
        Ok(self.selection().load()?)
    }

    /// Loads and resolves the project with the image digests the caller knows.
    pub fn resolve(&self, digests: &ImageDigests) -> anyhow::Result<(Loaded, Project)> {
        Ok(self.selection().resolve(digests)?)
    }
}

/// `berth init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The project's name (default: this directory's name, normalised)
    #[arg(long)]
    pub name: Option<String>,
}

/// A starter manifest: one service, commented, that `berth up` runs as it
/// is (busybox serving this directory's files on port 8080).
const STARTER: &str = r#"#:schema ./berth.schema.json
# A berth project: `berth up -d` starts it, `berth down` removes it, `berth
# plan` shows what `up` would change. `berth schema > berth.schema.json`
# writes the schema that editors (taplo, VS Code) check this file with.
name = "NAME"

[services.web]
image = "busybox"
command = ["httpd", "-f", "-p", "8080", "-h", "/www"]
ports = ["127.0.0.1:8080:8080"]
volumes = ["./:/www:ro"]
# build = "."                        # build the image from ./Dockerfile instead
# environment = { GREETING = "hi" }
# healthcheck = { test = ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/"], interval = "5s" }
# depends_on = { db = "healthy" }
"#;

/// Writes a starter `berth.toml` here; never over an existing one.
pub fn init(args: InitArgs) -> anyhow::Result<()> {
    use std::io::Write as _;
    let dir = std::env::current_dir().context("reading the current directory")?;
    let name = match args.name {
        Some(n) => n,
        None => project::load::normalise_project_name(
            &dir.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
    };
    if !project::load::is_valid_project_name(&name) {
        anyhow::bail!(
            "invalid project name {name:?}: use only lowercase letters, digits, dashes and underscores (give one with --name)"
        );
    }
    let path = dir.join(project::load::MANIFEST_NAME);
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => anyhow::bail!(
            "{} already exists; berth init writes a new project only",
            path.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("writing {}", path.display())),
    };
    file.write_all(STARTER.replace("NAME", &name).as_bytes())?;
    println!(
        "wrote {} (project {name:?}); berth up -d starts it",
        path.display()
    );
    Ok(())
}

/// `berth convert`.
#[derive(Debug, clap::Args)]
pub struct ConvertArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Write the berth.toml here (default: standard output)
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Writes the project's Compose file(s) as a berth.toml, then loads the
/// result: what berth cannot honour is listed on stderr (exit 1), never
/// dropped.
pub fn convert(args: ConvertArgs) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut opts = LoadOptions::from_process(
        args.project.files.clone(),
        args.project.project_name.clone(),
    )
    .context("reading the current directory")?;
    if opts.files.is_empty() {
        let found = project::load::discover_compose(&opts.cwd).ok_or_else(|| {
            anyhow::anyhow!(
                "no compose.yaml, compose.yml, docker-compose.yaml or docker-compose.yml in {} or any parent directory; name the file with -f",
                opts.cwd.display()
            )
        })?;
        opts.files.push(found);
    }
    let raw = project::load::raw_tree(&opts)?;
    let text = project::convert::to_toml(&raw.tree, &raw.display, &raw.notes);
    // The converted file loads as the Compose file does (one tree, one
    // typed layer), so the Compose file's own diagnostics, at its own lines,
    // say what the converted file lacks.
    let checked = project::load(&opts);
    match &args.output {
        Some(path) => {
            // Replaced whole, in its own directory (which must exist).
            let path = opts.cwd.join(path);
            let dir = path.parent().unwrap_or(std::path::Path::new("/"));
            let mut tmp = tempfile::Builder::new()
                .prefix(".berth-convert-")
                .tempfile_in(dir)
                .with_context(|| format!("writing {}", path.display()))?;
            tmp.write_all(text.as_bytes())?;
            tmp.persist(&path)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    if let Err(project::LoadError::Invalid(diagnostics)) = &checked {
        eprintln!("berth cannot honour these yet (written through unchanged; remove them or keep the Compose file):");
        for d in diagnostics {
            eprintln!("  {d}");
        }
        return Err(super::Exit::silent(1).into());
    }
    checked?;
    Ok(())
}

/// `berth config`.
#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Output format: toml (default) or json
    #[arg(long, value_name = "FORMAT", value_parser = ["toml", "json"])]
    pub format: Option<String>,
    /// Print the active services' names, one per line
    #[arg(long, conflicts_with = "hash")]
    pub services: bool,
    /// Print `SERVICE HASH` lines: each service's config hash. Image digests
    /// are not consulted here, so the hash covers the image reference only
    /// (`up` and `plan` hash with the digest of the image they run)
    #[arg(long)]
    pub hash: bool,
}

/// Prints the resolved project.
/// (A reader that stops early, `| head`, is handled by `cli::report`.)
pub fn config(ctx: &Context, args: ConfigArgs) -> anyhow::Result<()> {
    let (loaded, project) = args.project.resolve(&ImageDigests::new())?;
    let mut out = std::io::stdout().lock();
    if args.services {
        for name in project.services.keys() {
            writeln!(out, "{name}")?;
        }
        return Ok(());
    }
    if args.hash {
        for (name, svc) in &project.services {
            writeln!(out, "{name} {}", svc.config_hash)?;
        }
        return Ok(());
    }
    let manifest = canonical::canonical_manifest(&loaded, &args.project.profiles())?;
    let json = ctx.global.json || args.format.as_deref() == Some("json");
    match if json {
        OutputFormat::Json
    } else {
        OutputFormat::Table
    } {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &canonical::to_json(&manifest))?;
            writeln!(out)?;
        }
        OutputFormat::Table => {
            let text = canonical::to_toml(&manifest).context("printing the manifest as TOML")?;
            out.write_all(text.as_bytes())?;
        }
    }
    Ok(())
}

/// `berth __schema`: the JSON Schema of berth.toml.
pub fn schema() -> anyhow::Result<()> {
    std::io::stdout().write_all(project::schema::schema_json().as_bytes())?;
    Ok(())
}
