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
