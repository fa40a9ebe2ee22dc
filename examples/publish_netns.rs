//! Bench/demo helper: attaches an existing network namespace to a berth
//! network as if it were a container and publishes ports into it, through
//! the same library calls the runtime uses.
//!
//! ```text
//! publish_netns ROOT NETNS_NAME NETWORK_NAME [PORTSPEC...]
//! ```
//!
//! Prints `CONTAINER_IP HOSTPORT...` on one line, then waits until its
//! standard input closes and removes everything it made (the network too).

use std::io::Read;

use berth::network::{CreateOptions, Join, Networks, Prepare};
use berth::state::StateRoot;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: publish_netns ROOT NETNS_NAME NETWORK_NAME [PORTSPEC...]");
        std::process::exit(2);
    }
    let root = StateRoot::open(&args[0]).expect("opening state root");
    let nets = Networks::open(&root).expect("opening networks");
    let netns = std::path::PathBuf::from(format!("/run/netns/{}", args[1]));
    nets.create(&CreateOptions {
        name: args[2].clone(),
        ..Default::default()
    })
    .expect("creating network");
    let id = berth::network::names::random_id();
    let result = (|| {
        let bindings = nets.preflight(&args[3..])?;
        let prepared = nets.prepare(&Prepare {
            container_id: id.clone(),
            name: "bench".into(),
            hostname: None,
            joins: vec![Join {
                network: Some(args[2].clone()),
                aliases: vec![],
            }],
            ports: bindings,
        })?;
        nets.plug(&id, &netns)?;
        Ok::<_, berth::network::NetError>(prepared)
    })();
    match result {
        Ok(p) => {
            let ports: Vec<String> = p.ports.iter().map(|p| p.host_port.to_string()).collect();
            println!("{} {}", p.endpoints[0].1.ip, ports.join(" "));
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        }
        Err(e) => eprintln!("error: {e}"),
    }
    let _ = nets.release(&id);
    let _ = nets.remove_all();
}
