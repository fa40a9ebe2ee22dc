//! `berth info`: the state root and what the host offers (cgroup mode,
//! kernel), like the top of `docker info`.

use super::Context;
use crate::cli::output::print_json;

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct Info {
    root: String,
    cgroup_version: String,
    kernel_version: String,
    operating_system: String,
}

pub fn run(ctx: &Context) -> anyhow::Result<()> {
    let root = ctx.root()?;
    let info = Info {
        root: root.path().display().to_string(),
        cgroup_version: cgroup_mode().to_string(),
        kernel_version: nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default(),
        operating_system: os_release_name(),
    };
    if ctx.format(None) == super::OutputFormat::Json {
        return print_json(&info);
    }
    println!("Root Dir: {}", info.root);
    println!("Cgroup Version: {}", info.cgroup_version);
    println!("Kernel Version: {}", info.kernel_version);
    println!("Operating System: {}", info.operating_system);
    Ok(())
}

/// `2` on a pure cgroup v2 host, `1` on a v1 or hybrid host.
pub fn cgroup_mode() -> &'static str {
    match nix::sys::statfs::statfs("/sys/fs/cgroup") {
        Ok(fs) if fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC => "2",
        _ => "1",
    }
}

fn os_release_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| "unknown".into())
}

/// `berth version [--format TEMPLATE]`.
#[derive(Debug, clap::Args)]
pub struct VersionArgs {
    /// Format output: json, or a Go template ('{{.Client.Version}}')
    #[arg(short = 'f', long)]
    pub format: Option<String>,
}

/// What `berth version` reports. berth has no server: the engine is built
/// in, so `Engine` describes the same binary (Docker prints `Server:`).
fn version_object() -> serde_json::Value {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    serde_json::json!({
        "Client": {
            "Version": env!("CARGO_PKG_VERSION"),
            "Os": std::env::consts::OS,
            "Arch": arch,
        },
        "Engine": {
            "Runtime": "libcontainer (youki), embedded",
            "Daemon": false,
            "CgroupVersion": cgroup_mode(),
            "KernelVersion": nix::sys::utsname::uname()
                .map(|u| u.release().to_string_lossy().into_owned())
                .unwrap_or_default(),
        },
    })
}

pub fn version(ctx: &Context, args: VersionArgs) -> anyhow::Result<()> {
    use crate::format::template::{render_one, Format};
    let v = version_object();
    match Format::parse(ctx.global.json, args.format.as_deref()) {
        Format::Json => println!("{v}"),
        Format::Template { text, .. } => println!("{}", render_one(&text, &v)?),
        Format::Table => {
            let c = &v["Client"];
            let e = &v["Engine"];
            println!("Client: berth");
            println!(" Version:          {}", c["Version"].as_str().unwrap_or(""));
            println!(
                " OS/Arch:          {}/{}",
                c["Os"].as_str().unwrap_or(""),
                c["Arch"].as_str().unwrap_or("")
            );
            println!();
            println!("Engine: built in (no daemon)");
            println!(" Runtime:          {}", e["Runtime"].as_str().unwrap_or(""));
            println!(
                " Cgroup Version:   {}",
                e["CgroupVersion"].as_str().unwrap_or("")
            );
            println!(
                " Kernel Version:   {}",
                e["KernelVersion"].as_str().unwrap_or("")
            );
        }
    }
    Ok(())
}

/// `berth completion SHELL`.
#[derive(Debug, clap::Args)]
pub struct CompletionArgs {
    /// The shell to complete for
    pub shell: clap_complete::Shell,
}

/// Prints a completion script generated from berth's own clap definitions,
/// e.g. `berth completion bash > /etc/bash_completion.d/berth`.
pub fn completion(args: CompletionArgs) -> anyhow::Result<()> {
    use clap::CommandFactory;
    let mut cmd = super::Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "berth", &mut std::io::stdout());
    Ok(())
}

/// `berth __man [DIR]`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write berth.1 and berth-COMMAND.1 pages into this directory (default:
    /// print berth.1 on stdout)
    pub dir: Option<std::path::PathBuf>,
}

/// Man pages from the clap definitions (`clap_mangen`): one definition,
/// the help text, completions and the manual all come from it.
pub fn man(args: ManArgs) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use clap::CommandFactory;
    let cmd = super::Cli::command();
    let Some(dir) = args.dir else {
        clap_mangen::Man::new(cmd).render(&mut std::io::stdout())?;
        return Ok(());
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_mangen::generate_to(cmd, &dir)
        .with_context(|| format!("writing man pages to {}", dir.display()))?;
    Ok(())
}
