//! What callers see of a container: its observed state (a dead
//! supervisor noticed), Docker's status text (`Up 3 seconds (healthy)`,
//! `Exited (0) 5 seconds ago`), Docker's `inspect` object, and the
//! processes in its cgroup. `ps`, `inspect`, `compose ps` and the Engine
//! API show the same things.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::runtime::container::{
    pid_alive, ContainerConfig, ContainerState, ContainerStore, STATUS_CORRUPT,
};

/// "2 minutes ago" style age of a timestamp, as Docker prints CREATED.
pub fn human_age(when: chrono::DateTime<chrono::Utc>) -> String {
    let secs = (chrono::Utc::now() - when).num_seconds().max(0);
    let (n, unit) = match secs {
        0..=1 => return "Less than a second ago".to_string(),
        2..=59 => (secs, "second"),
        60..=3599 => (secs / 60, "minute"),
        3600..=86_399 => (secs / 3600, "hour"),
        86_400..=1_209_599 => (secs / 86_400, "day"),
        1_209_600..=5_183_999 => (secs / 604_800, "week"),
        5_184_000..=31_535_999 => (secs / 2_592_000, "month"),
        _ => (secs / 31_536_000, "year"),
    };
    if n == 1 {
        let article = if unit == "hour" { "An" } else { "A" };
        format!("{article} {unit} ago")
    } else {
        format!("{n} {unit}s ago")
    }
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

pub fn ago(t: Option<DateTime<Utc>>) -> String {
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
