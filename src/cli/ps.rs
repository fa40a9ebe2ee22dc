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

use super::output::{human_age, Table};
use super::Context;
use crate::runtime::container::{
    pid_alive, ContainerConfig, ContainerState, ContainerStore, STATUS_CORRUPT,
};
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

/// A container's state as observed now (a dead supervisor noticed).
#[derive(Debug, Clone)]
pub struct Observed {
    pub status: String,
    pub running: bool,
    pub supervisor_dead: bool,
}

/// Observes a container: trusts `state.json` but checks the processes.
pub fn observe(st: &ContainerState) -> Observed {
    let sup = pid_alive(st.supervisor_pid);
    let init = st.pid > 0 && pid_alive(st.pid);
    match st.status.as_str() {
        "running" | "restarting" if !sup => Observed {
            status: if init { "running" } else { "dead" }.into(),
            running: init,
            supervisor_dead: true,
        },
        s => Observed {
            status: s.to_string(),
            // A corrupt record's pid is what its cgroup holds.
            running: (s == "running" || s == STATUS_CORRUPT) && init,
            supervisor_dead: false,
        },
    }
}

fn ago(t: Option<DateTime<Utc>>) -> String {
    t.map(human_age).unwrap_or_default()
}

fn up_for(t: Option<DateTime<Utc>>) -> String {
    let secs = t
        .map(|t| (Utc::now() - t).num_seconds().max(0))
        .unwrap_or(0);
    match secs {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{secs} seconds"),
        60..=119 => "About a minute".into(),
        120..=3599 => format!("{} minutes", secs / 60),
        3600..=7199 => "About an hour".into(),
        _ => format!("{} hours", secs / 3600),
    }
}

/// Docker's STATUS column.
pub fn status_text(st: &ContainerState, obs: &Observed) -> String {
    let health = st
        .health
        .as_ref()
        .map(|h| match h.status.as_str() {
            "starting" => " (health: starting)".to_string(),
            s => format!(" ({s})"),
        })
        .unwrap_or_default();
    match obs.status.as_str() {
        "running" if obs.supervisor_dead => {
            format!("Up {} (supervisor dead)", up_for(st.started_at))
        }
        "running" => format!("Up {}{health}", up_for(st.started_at)),
        "restarting" => format!("Restarting ({}) {}", st.exit_code, ago(st.finished_at)),
        "exited" => format!("Exited ({}) {}", st.exit_code, ago(st.finished_at)),
        "dead" => "Dead (supervisor died)".into(),
        STATUS_CORRUPT if obs.running => "Corrupt (state record unreadable; still running)".into(),
        STATUS_CORRUPT => "Corrupt (state record unreadable)".into(),
        _ => "Created".into(),
    }
}

/// Docker's COMMAND column (quoted, truncated unless --no-trunc).
pub fn command_text(c: &ContainerConfig, trunc: bool) -> String {
    let cmd = shell_words::join(&c.args);
    let cmd = if trunc && cmd.chars().count() > 20 {
        format!("{}…", cmd.chars().take(19).collect::<String>())
    } else {
        cmd
    };
    format!("\"{cmd}\"")
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

fn rfc3339(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".into())
}

/// The container as `docker inspect` shows it.
pub fn inspect_json(
    store: &ContainerStore,
    c: &ContainerConfig,
    st: &ContainerState,
) -> serde_json::Value {
    let obs = observe(st);
    let dir = store.dir(&c.id);
    json!({
        "Id": c.id,
        "Created": rfc3339(Some(c.created)),
        "Path": c.args.first().cloned().unwrap_or_default(),
        "Args": c.args.iter().skip(1).collect::<Vec<_>>(),
        "State": {
            "Status": obs.status,
            "Running": obs.running,
            "Paused": false,
            "Restarting": obs.status == "restarting",
            "OOMKilled": st.oom_killed,
            "Dead": obs.status == "dead",
            "Pid": if obs.running { st.pid } else { 0 },
            "ExitCode": st.exit_code,
            "Error": st.error,
            "StartedAt": rfc3339(st.started_at),
            "FinishedAt": rfc3339(st.finished_at),
            "Health": st.health,
            "SupervisorPid": st.supervisor_pid,
            "SupervisorAlive": !obs.supervisor_dead && pid_alive(st.supervisor_pid),
        },
        "Image": c.image_id,
        "ResolvConfPath": dir.join("resolv.conf"),
        "HostnamePath": dir.join("hostname"),
        "HostsPath": dir.join("hosts"),
        "LogPath": dir.join("log.json"),
        "Name": format!("/{}", c.name),
        "RestartCount": st.restart_count,
        "Driver": "overlay",
        "Platform": "linux",
        "HostConfig": {
            "Binds": c.binds.iter().map(|b| format!("{}:{}{}", b.source.display(), b.destination, if b.readonly { ":ro" } else { "" })).collect::<Vec<_>>(),
            "NetworkMode": c.network,
            "RestartPolicy": c.restart,
            "AutoRemove": c.auto_remove,
            "Memory": c.resources.memory.unwrap_or(0),
            "NanoCpus": c.resources.cpus.map(|x| (x * 1e9) as i64).unwrap_or(0),
            "PidsLimit": c.resources.pids_limit,
            "Tmpfs": c.tmpfs.iter().map(|(d, o)| (d.clone(), o.clone())).collect::<std::collections::BTreeMap<_, _>>(),
            "Init": c.init,
            "LogConfig": {
                "Type": "json-file",
                "Config": {
                    "max-size": if c.log.max_size == 0 { "-1".to_string() } else { c.log.max_size.to_string() },
                    "max-file": c.log.max_file.to_string(),
                },
            },
        },
        "GraphDriver": {
            "Name": "overlay",
            "Data": {
                "LowerDir": c.lowers.iter().rev().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":"),
                "UpperDir": dir.join("upper"),
                "WorkDir": dir.join("work"),
                "MergedDir": dir.join("rootfs"),
            },
        },
        "Config": {
            "Hostname": c.hostname,
            "User": c.user,
            "Tty": c.tty,
            "OpenStdin": c.open_stdin,
            "Env": c.image_env.iter().chain(c.env.iter()).collect::<Vec<_>>(),
            "Cmd": c.args,
            "Image": c.image,
            "WorkingDir": c.cwd,
            "Labels": c.labels,
            "StopSignal": c.stop_signal,
            "StopTimeout": c.stop_timeout,
            "Healthcheck": c.health,
        },
        "NetworkSettings": network_settings(store, c, &dir),
    })
}

/// Docker's `NetworkSettings`: sandbox, published ports, networks.
fn network_settings(
    store: &ContainerStore,
    c: &ContainerConfig,
    dir: &std::path::Path,
) -> serde_json::Value {
    let sandbox = if c.network == "host" {
        serde_json::Value::Null
    } else {
        json!(dir.join("netns"))
    };
    let Ok(nets) = crate::network::Networks::open(store.state_root()) else {
        return json!({ "SandboxKey": sandbox });
    };
    let mut ports = serde_json::Map::new();
    for p in nets.published(Some(&c.id)).unwrap_or_default() {
        let key = format!("{}/{}", p.container_port, p.proto);
        let entry = ports.entry(key).or_insert_with(|| json!([]));
        if let Some(a) = entry.as_array_mut() {
            a.push(json!({
                "HostIp": p.host_ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into()),
                "HostPort": p.host_port.to_string(),
            }));
        }
    }
    let mut networks = serde_json::Map::new();
    let all = nets.list().unwrap_or_default();
    for n in &all {
        if let Some(e) = n.endpoints.get(&c.id) {
            networks.insert(
                n.name.clone(),
                json!({
                    "Aliases": e.aliases,
                    "NetworkID": n.id,
                    "EndpointID": e.endpoint_id,
                    "Gateway": n.gateway.to_string(),
                    "IPAddress": e.ip.to_string(),
                    "IPPrefixLen": n.subnet.prefix(),
                }),
            );
        }
    }
    let first = all.iter().find_map(|n| {
        n.endpoints
            .get(&c.id)
            .filter(|e| e.ifname == "eth0")
            .map(|e| (e.ip.to_string(), n.gateway.to_string()))
    });
    let (ip, gw) = first.unwrap_or_default();
    json!({
        "SandboxKey": sandbox,
        "Ports": ports,
        "IPAddress": ip,
        "Gateway": gw,
        "Networks": networks,
    })
}

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
                println!("{}", super::template::render_one(f, v)?);
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

/// The pids in the container's cgroup.
pub fn container_pids(id: &str) -> Vec<i32> {
    for p in [
        format!("/sys/fs/cgroup/pids/berth/{id}/cgroup.procs"),
        format!("/sys/fs/cgroup/memory/berth/{id}/cgroup.procs"),
        format!("/sys/fs/cgroup/berth/{id}/cgroup.procs"),
    ] {
        if let Ok(s) = std::fs::read_to_string(p) {
            return s.lines().filter_map(|l| l.trim().parse().ok()).collect();
        }
    }
    Vec::new()
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
        use crate::cli::template::render_one as format_template;
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
