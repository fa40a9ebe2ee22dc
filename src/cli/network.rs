//! `berth network …`: create, ls, rm, inspect, prune (Docker's shapes).

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde_json::json;

use super::{Context, Exit};
use crate::network::{CreateOptions, NetworkRecord, Networks};
use crate::runtime::container::{pid_alive, ContainerStore};

/// Manage networks
#[derive(Debug, Subcommand)]
pub enum NetworkCmd {
    /// Create a network
    Create(CreateArgs),
    /// List networks
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Remove one or more networks
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true, value_name = "NETWORK")]
        networks: Vec<String>,
    },
    /// Display detailed information on one or more networks
    Inspect {
        #[arg(required = true, value_name = "NETWORK")]
        networks: Vec<String>,
        /// Output format (json)
        #[arg(short = 'f', long)]
        format: Option<String>,
    },
    /// Remove all unused networks
    Prune {
        /// Do not prompt for confirmation
        #[arg(short = 'f', long)]
        force: bool,
    },
    /// Connect a container to a network
    Connect {
        /// Add a network-scoped alias for the container
        #[arg(long = "alias")]
        aliases: Vec<String>,
        network: String,
        container: String,
    },
    /// Disconnect a container from a network
    Disconnect {
        /// Accepted for Docker compatibility
        #[arg(short = 'f', long)]
        force: bool,
        network: String,
        container: String,
    },
}

/// Arguments of `berth port`.
#[derive(Debug, Args)]
pub struct PortArgs {
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    pub port: Option<String>,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Subnet in CIDR format, e.g. 10.89.7.0/24 (default: the next free /24)
    #[arg(long)]
    pub subnet: Option<String>,
    /// Restrict external access to the network
    #[arg(long)]
    pub internal: bool,
    /// Driver to manage the network (only bridge)
    #[arg(short = 'd', long, default_value = "bridge")]
    pub driver: String,
    /// Set metadata on a network (KEY=VALUE)
    #[arg(long = "label")]
    pub labels: Vec<String>,
    pub name: String,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only display network IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate the output
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output: table, json, a Go template ('{{json .}}'), or 'table TEMPLATE'
    #[arg(long)]
    pub format: Option<String>,
}

pub fn run(ctx: &Context, cmd: NetworkCmd) -> anyhow::Result<()> {
    let root = ctx.root()?;
    let nets = Networks::open(&root).context("reading network config")?;
    let store = ContainerStore::open(&root)?;
    // The next command repairs what a crash left behind.
    nets.repair(|| store.ids().into_iter().collect())
        .context("repairing network state")?;
    match cmd {
        NetworkCmd::Connect {
            aliases,
            network,
            container,
        } => connect(&nets, &store, &network, &container, &aliases),
        NetworkCmd::Disconnect {
            network, container, ..
        } => {
            let id = store.resolve(&container)?;
            nets.disconnect(&id, &network)?;
            Ok(())
        }
        NetworkCmd::Create(a) => create(&nets, a),
        NetworkCmd::Ls(a) => ls(ctx, &nets, a),
        NetworkCmd::Rm { networks } => rm(&nets, &networks),
        NetworkCmd::Inspect { networks, .. } => inspect(&nets, &networks),
        NetworkCmd::Prune { force } => prune(&nets, force),
    }
}

fn create(nets: &Networks, a: CreateArgs) -> anyhow::Result<()> {
    if a.driver != "bridge" {
        anyhow::bail!(
            "driver {:?} is not supported: berth networks use the bridge driver",
            a.driver
        );
    }
    let subnet = a.subnet.as_deref().map(str::parse).transpose()?;
    let mut labels = BTreeMap::new();
    for l in &a.labels {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let rec = nets
        .create(&CreateOptions {
            name: a.name.clone(),
            subnet,
            internal: a.internal,
            labels,
        })
        .with_context(|| format!("creating network {}", a.name))?;
    println!("{}", rec.id);
    Ok(())
}

fn ls(ctx: &Context, nets: &Networks, a: LsArgs) -> anyhow::Result<()> {
    let all = nets.list()?;
    let id = |r: &NetworkRecord| {
        if a.no_trunc {
            r.id.clone()
        } else {
            r.id[..12].to_string()
        }
    };
    if a.quiet {
        for r in &all {
            println!("{}", id(r));
        }
        return Ok(());
    }
    let objects: Vec<_> = all
        .iter()
        .map(|r| {
            json!({"ID": id(r), "Name": r.name, "Driver": r.driver, "Scope": "local",
                   "IPv6": false, "Internal": r.internal, "CreatedAt": r.created.to_rfc3339()})
        })
        .collect();
    super::output::print_listing(
        ctx,
        a.format.as_deref(),
        super::output::JsonShape::Document,
        &objects,
        &[
            ("ID", "NETWORK ID"),
            ("Name", "NAME"),
            ("Driver", "DRIVER"),
            ("Scope", "SCOPE"),
            ("IPv6", "IPV6"),
            ("Internal", "INTERNAL"),
            ("CreatedAt", "CREATED AT"),
        ],
        "{{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
    )
}

fn rm(nets: &Networks, names: &[String]) -> anyhow::Result<()> {
    let mut failed = false;
    for n in names {
        match nets.remove(n) {
            Ok(_) => println!("{n}"),
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    if failed {
        return Err(Exit::silent(1).into());
    }
    Ok(())
}

/// Docker's `network inspect` object.
pub fn inspect_json(r: &NetworkRecord) -> serde_json::Value {
    let containers: serde_json::Map<String, serde_json::Value> = r
        .endpoints
        .values()
        .map(|e| {
            (
                e.container_id.clone(),
                json!({"Name": e.name, "EndpointID": e.endpoint_id, "MacAddress": "",
                       "IPv4Address": format!("{}/{}", e.ip, r.subnet.prefix()), "IPv6Address": ""}),
            )
        })
        .collect();
    json!({
        "Name": r.name,
        "Id": r.id,
        "Created": r.created.to_rfc3339(),
        "Scope": "local",
        "Driver": r.driver,
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": {}, "Config": [{"Subnet": r.subnet.to_string(), "Gateway": r.gateway.to_string()}]},
        "Internal": r.internal,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": {"com.docker.network.bridge.name": r.bridge, "com.docker.network.bridge.default_bridge": r.default.to_string()},
        "Labels": r.labels,
    })
}

fn inspect(nets: &Networks, names: &[String]) -> anyhow::Result<()> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for n in names {
        match nets.get(n) {
            Ok(r) => out.push(inspect_json(&r)),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !out.is_empty() || errors.is_empty() {
        super::output::print_json(&out)?;
    }
    if !errors.is_empty() {
        return Err(Exit {
            code: 1,
            message: errors.join("; "),
        }
        .into());
    }
    Ok(())
}

fn prune(nets: &Networks, force: bool) -> anyhow::Result<()> {
    if !force {
        eprint!(
            "WARNING! This will remove all custom networks not used by at least one container.\n\
             Are you sure you want to continue? [y/N] "
        );
        std::io::stderr().flush().ok();
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        if !matches!(line.trim(), "y" | "Y" | "yes") {
            return Ok(());
        }
    }
    let removed = nets.prune()?;
    if !removed.is_empty() {
        println!("Deleted Networks:");
        for n in removed {
            println!("{n}");
        }
    }
    Ok(())
}

fn connect(
    nets: &Networks,
    store: &ContainerStore,
    network: &str,
    container: &str,
    aliases: &[String],
) -> anyhow::Result<()> {
    let id = store.resolve(container)?;
    let config = store.config(&id)?;
    if crate::network::mode_network(&config.network).is_none() {
        anyhow::bail!(
            "container {container} uses --network {}: it cannot join a berth network",
            config.network
        );
    }
    let st = store.state(&id)?;
    let netns = store.dir(&id).join("netns");
    let running = st.status == "running" && st.pid > 0 && pid_alive(st.pid);
    nets.connect(
        &id,
        &config.name,
        network,
        aliases,
        running.then_some(netns.as_path()),
    )?;
    Ok(())
}

/// `berth port CONTAINER [PRIVATE_PORT[/PROTO]]`.
pub fn port(ctx: &Context, args: PortArgs) -> anyhow::Result<()> {
    let root = ctx.root()?;
    let store = ContainerStore::open(&root)?;
    let id = store.resolve(&args.container)?;
    let ports = Networks::open(&root)?.published(Some(&id))?;
    let Some(filter) = &args.port else {
        for p in &ports {
            println!("{}", p.docker_line());
        }
        return Ok(());
    };
    let (num, proto) = filter.split_once('/').unwrap_or((filter, "tcp"));
    let want: u16 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid port {filter:?}: use PORT[/tcp|/udp]"))?;
    let hits: Vec<_> = ports
        .iter()
        .filter(|p| p.container_port == want && p.proto.to_string() == proto)
        .collect();
    if hits.is_empty() {
        return Err(Exit {
            code: 1,
            message: format!(
                "no public port '{want}/{proto}' published for {}",
                args.container
            ),
        }
        .into());
    }
    for p in hits {
        let line = p.docker_line();
        println!("{}", line.split(" -> ").nth(1).unwrap_or(&line));
    }
    Ok(())
}
