//! Looking at containers: `ps`, `inspect`, `logs`, `top`.
//!
//! Status strings are Docker's (`Up 3 seconds (healthy)`,
//! `Exited (0) 5 seconds ago`, `Created`, `Restarting (1) …`). A container
//! whose supervisor died is reported as such rather than as running.

use std::io::Write;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use chrono::{DateTime, Utc};
use clap::Args;
use serde_json::json;

use super::output::Table;
use super::Context;
pub use crate::engine::inspect::{
    ago, command_text, container_pids, inspect_json, observe, status_text, Observed,
};
use crate::runtime::container::{ContainerConfig, ContainerState, ContainerStore};
use crate::runtime::log;

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Filter output (status=, name=, id=, label=, exited=)
    #[arg(short = 'f', long)]
    pub filter: Vec<String>,
    /// Format output: table, json, a Go template ('{{json .}}'), or 'table TEMPLATE'
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output (json is the default)
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long = "tail")]
    pub tail: Option<String>,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Show logs since a timestamp (RFC 3339) or relative (e.g. 42m)
    #[arg(long)]
    pub since: Option<String>,
    pub container: String,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    pub container: String,
}

fn matches_filter(
    c: &ContainerConfig,
    st: &ContainerState,
    obs: &Observed,
    f: &str,
) -> anyhow::Result<bool> {
    let (k, v) = f
        .split_once('=')
        .ok_or_else(|| anyhow!("invalid filter {f:?}: use KEY=VALUE"))?;
    Ok(match k {
        "status" => obs.status == v,
        "name" => c.name.contains(v),
        "id" => c.id.starts_with(v),
        "exited" => obs.status == "exited" && st.exit_code.to_string() == v,
        "label" => match v.split_once('=') {
            Some((lk, lv)) => c.labels.get(lk).is_some_and(|x| x == lv),
            None => c.labels.contains_key(v),
        },
        "health" => st.health.as_ref().is_some_and(|h| h.status == v),
        other => bail!("invalid filter {other:?}: use status, name, id, label, exited or health"),
    })
}

/// `berth ps`.
pub fn ps(ctx: &Context, args: PsArgs) -> anyhow::Result<()> {
    let store = ContainerStore::open(&ctx.root()?)?;
    let published = crate::network::Networks::open(store.state_root())?.published(None)?;
    let ports_of = |c: &ContainerConfig, running: bool| {
        if !running {
            return String::new();
        }
        let mine: Vec<_> = published
            .iter()
            .filter(|p| p.container_id == c.id)
            .cloned()
            .collect();
        crate::network::store::ps_ports(&mine)
    };
    let mut rows = Vec::new();
    for (c, st) in store.list().into_iter().rev() {
        let obs = observe(&st);
        let has_status_filter = args.filter.iter().any(|f| f.starts_with("status="));
        if !args.all && !has_status_filter && !obs.running {
            continue;
        }
        let mut keep = true;
        for f in &args.filter {
            keep &= matches_filter(&c, &st, &obs, f)?;
        }
        if keep {
            rows.push((c, st, obs));
        }
    }
    if args.quiet {
        for (c, _, _) in rows {
            println!(
                "{}",
                if args.no_trunc {
                    &c.id[..]
                } else {
                    &c.id[..12]
                }
            );
        }
        return Ok(());
    }
    let objects: Vec<serde_json::Value> = rows
        .iter()
        .map(|(c, st, obs)| {
            json!({
                "ID": if args.no_trunc { &c.id[..] } else { &c.id[..12] },
                "Image": c.image,
                "Command": command_text(c, !args.no_trunc),
                "CreatedAt": c.created.to_rfc3339(),
                "RunningFor": ago(Some(c.created)),
                "State": obs.status,
                "Status": status_text(st, obs),
                "Ports": ports_of(c, obs.running),
                "Names": c.name,
                "Labels": c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
            })
        })
        .collect();
    super::output::print_listing(
        ctx,
        args.format.as_deref(),
        super::output::JsonShape::Lines,
        &objects,
        PS_COLUMNS,
        "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}",
    )
}

/// `docker ps`'s fields and the headers its tables give them.
pub const PS_COLUMNS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Ports", "PORTS"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
];

/// `berth inspect` / `berth container inspect`.
pub fn inspect(ctx: &Context, args: InspectArgs) -> anyhow::Result<()> {
    let store = ContainerStore::open(&ctx.root()?)?;
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for q in &args.containers {
        match store.resolve(q) {
            Ok(id) => {
                let c = store.config(&id)?;
                let st = store.observed_state(&id)?;
                out.push(inspect_json(&store, &c, &st));
            }
            Err(_) => missing.push(q.clone()),
        }
    }
    match args.format.as_deref() {
        None | Some("json") => super::output::print_json(&out)?,
        Some(f) => {
            for v in &out {
                println!("{}", crate::format::template::render_one(f, v)?);
            }
        }
    }
    if !missing.is_empty() {
        for m in &missing {
            eprintln!("Error: No such container: {m}");
        }
        return Err(super::Exit::silent(1).into());
    }
    Ok(())
}

fn parse_since(s: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(secs) = s.parse::<i64>() {
        return DateTime::from_timestamp(secs, 0).ok_or_else(|| anyhow!("invalid --since {s:?}"));
    }
    let d = humantime::parse_duration(s).map_err(|_| {
        anyhow!("invalid --since {s:?}: use RFC 3339, a unix time, or a duration like 10m")
    })?;
    Ok(Utc::now() - chrono::Duration::from_std(d)?)
}

fn print_records(records: &[log::Record], timestamps: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    for r in records {
        let line = if timestamps {
            format!(
                "{} {}",
                r.time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                r.log
            )
        } else {
            r.log.clone()
        };
        if r.stream == "stderr" {
            err.write_all(line.as_bytes())?;
        } else {
            out.write_all(line.as_bytes())?;
        }
    }
    out.flush()?;
    Ok(())
}

/// `berth logs`.
/// `berth logs NAME`: a container, or inside a project a service; a
/// service with several replicas prints them merged with `service-N |`
/// prefixes, as `docker compose logs` does.
pub fn logs_by_name(ctx: &Context, mut args: LogsArgs) -> anyhow::Result<()> {
    use super::service_names::{Resolver, Target};
    let resolver = Resolver::new(ctx)?;
    match resolver.resolve(&args.container)? {
        Target::Container(_) => logs(ctx, args),
        Target::Service { containers, .. } if containers.len() == 1 => {
            args.container = containers[0].config.name.clone();
            logs(ctx, args)
        }
        Target::Service {
            project, service, ..
        } => {
            let store = ContainerStore::open(&ctx.root()?)?;
            crate::project::logs::merged_logs(
                &store,
                &project,
                &[service],
                &crate::project::logs::MergedLogs {
                    follow: args.follow,
                    timestamps: args.timestamps,
                    tail: parse_tail(args.tail.as_deref())?,
                    since: args.since.as_deref().map(parse_since).transpose()?,
                    prefix: true,
                },
            )?;
            Ok(())
        }
    }
}

fn parse_tail(tail: Option<&str>) -> anyhow::Result<Option<usize>> {
    match tail {
        None | Some("all") => Ok(None),
        Some(n) => {
            Ok(Some(n.parse::<usize>().map_err(|_| {
                anyhow!("invalid --tail {n:?}: use a number or all")
            })?))
        }
    }
}

pub fn logs(ctx: &Context, args: LogsArgs) -> anyhow::Result<()> {
    let store = ContainerStore::open(&ctx.root()?)?;
    let id = store.resolve(&args.container)?;
    let path = store.dir(&id).join("log.json");
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let tail = parse_tail(args.tail.as_deref())?;
    // Across rotated files (`log::Follower` goes on where this stops).
    let (mut records, mut follower) =
        log::Follower::history(&path).with_context(|| format!("reading {}", path.display()))?;
    records.extend(follower.read()?);
    print_records(&log::select(records, since, tail), args.timestamps)?;
    if !args.follow {
        return Ok(());
    }
    loop {
        let st = store.state(&id).ok();
        let running = st
            .as_ref()
            .is_some_and(|s| observe(s).running || s.status == "restarting");
        print_records(&log::select(follower.read()?, since, None), args.timestamps)?;
        if !running {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `berth top`.
pub fn top(ctx: &Context, args: TopArgs) -> anyhow::Result<()> {
    let store = ContainerStore::open(&ctx.root()?)?;
    let id = store.resolve(&args.container)?;
    let st = store.state(&id)?;
    if !observe(&st).running {
        bail!("container {} is not running", args.container);
    }
    let mut t = Table::new(["UID", "PID", "PPID", "CMD"]);
    for pid in container_pids(&id) {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        let field = |k: &str| {
            status
                .lines()
                .find(|l| l.starts_with(k))
                .and_then(|l| l.split_whitespace().nth(1))
                .unwrap_or("")
                .to_string()
        };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| {
                c.split(|&b| b == 0)
                    .filter(|s| !s.is_empty())
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        t.row([field("Uid:"), pid.to_string(), field("PPid:"), cmd]);
    }
    t.print();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        use crate::format::template::render_one as format_template;
        let v = json!({"State": {"ExitCode": 3, "Status": "exited", "Health": null}, "Name": "/x"});
        assert_eq!(format_template("{{.State.ExitCode}}", &v).unwrap(), "3");
        assert_eq!(
            format_template("{{.Name}} is {{.State.Status}}", &v).unwrap(),
            "/x is exited"
        );
        assert_eq!(
            format_template("{{json .State}}", &v).unwrap(),
            v["State"].to_string()
        );
        assert_eq!(
            format_template("{{.State.Health}}", &v).unwrap(),
            "<no value>"
        );
        assert!(format_template("{{.Nope}}", &v).is_err());
        assert!(format_template("{{.Name", &v).is_err());
    }

    #[test]
    fn statuses() {
        let mut st = ContainerState {
            status: "exited".into(),
            exit_code: 3,
            finished_at: Some(Utc::now() - chrono::Duration::seconds(5)),
            ..Default::default()
        };
        let obs = Observed {
            status: "exited".into(),
            running: false,
            supervisor_dead: false,
        };
        assert_eq!(status_text(&st, &obs), "Exited (3) 5 seconds ago");
        st.started_at = Some(Utc::now() - chrono::Duration::seconds(3));
        st.health = Some(crate::runtime::container::Health {
            status: "healthy".into(),
            ..Default::default()
        });
        let obs = Observed {
            status: "running".into(),
            running: true,
            supervisor_dead: false,
        };
        assert_eq!(status_text(&st, &obs), "Up 3 seconds (healthy)");
        assert!(parse_since("10m").is_ok());
        assert!(parse_since("2024-01-01T00:00:00Z").is_ok());
        assert!(parse_since("yesterday").is_err());
    }
}
