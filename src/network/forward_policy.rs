//! Living beside Docker: accept rules in iptables' `FORWARD` chain.
//!
//! A forwarded packet passes every base chain on the netfilter forward hook,
//! in every table; an `accept` in berth's own nft table does not overrule a
//! `drop` in another one (see "Netfilter hooks" in the nftables wiki,
//! <https://wiki.nftables.org/wiki-nftables/index.php/Netfilter_hooks>).
//! Docker, since 1.13, sets the policy of iptables' `filter FORWARD` chain to
//! DROP when it turns on IP forwarding, and loads `br_netfilter`, so that
//! even bridged traffic between two containers on one bridge goes through
//! that chain. On a machine where Docker runs, berth's containers could then
//! reach neither each other nor anything outside.
//!
//! So, as Podman's netavark does, where iptables' `FORWARD` chain drops by
//! default berth inserts two rules per network at its top, through the
//! `iptables` commands (which drive both the nf_tables and the legacy
//! backend; both rules in one `iptables-restore --noflush` transaction):
//!
//! ```text
//! -A FORWARD -i BR -m comment --comment TAG -j ACCEPT
//! -A FORWARD -o BR -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment TAG -j ACCEPT
//! ```
//!
//! where `TAG` is `<berth's nft table>:net:<network id>`, so each state root
//! only ever touches its own rules. berth's own table still applies its own
//! filtering (an internal network stays internal: its drop still wins).
//! The rules are removed with the network, and [`reconcile`] (run whenever
//! berth repairs its network state, i.e. before every container it wires)
//! adds missing ones — Docker may have started after the network was made —
//! and removes those of networks that no longer exist. Without `iptables`,
//! or with an accepting policy, nothing is done.

use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Errors driving `iptables`.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("iptables {args}: {stderr}")]
    Iptables { args: String, stderr: String },
    #[error("cannot run iptables: {0}")]
    Spawn(std::io::Error),
}

/// One berth network as far as forwarding goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bridge {
    pub network_id: String,
    pub name: String,
}

/// The `FORWARD` chain as `iptables -S FORWARD` prints it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardChain {
    /// `ACCEPT`, `DROP`, ...
    pub policy: String,
    /// berth's rules of the given table: (network id, bridge).
    pub ours: Vec<Bridge>,
}

impl ForwardChain {
    pub fn drops(&self) -> bool {
        self.policy != "ACCEPT"
    }
}

/// The comment tagging a network's rules.
pub fn tag(table: &str, network_id: &str) -> String {
    format!("{table}:net:{network_id}")
}

/// The two rules of `bridge`, as `iptables` arguments after `-I FORWARD` /
/// `-D FORWARD`.
pub fn rules(table: &str, bridge: &Bridge) -> [Vec<String>; 2] {
    let tag = tag(table, &bridge.network_id);
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    [
        s(&[
            "-i",
            &bridge.name,
            "-m",
            "comment",
            "--comment",
            &tag,
            "-j",
            "ACCEPT",
        ]),
        s(&[
            "-o",
            &bridge.name,
            "-m",
            "conntrack",
            "--ctstate",
            "RELATED,ESTABLISHED,DNAT",
            "-m",
            "comment",
            "--comment",
            &tag,
            "-j",
            "ACCEPT",
        ]),
    ]
}

/// Parses `iptables -S FORWARD` output, keeping the rules tagged for `table`.
pub fn parse(table: &str, listing: &str) -> ForwardChain {
    let mut chain = ForwardChain {
        policy: "ACCEPT".into(),
        ours: Vec::new(),
    };
    let prefix = format!("{table}:net:");
    for line in listing.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let ["-P", "FORWARD", policy] = words.as_slice() {
            chain.policy = policy.to_string();
            continue;
        }
        let comment = words
            .windows(2)
            .find(|w| w[0] == "--comment")
            .map(|w| w[1].trim_matches('"'));
        let Some(id) = comment.and_then(|c| c.strip_prefix(&prefix)) else {
            continue;
        };
        let bridge = words
            .windows(2)
            .find(|w| w[0] == "-i" || w[0] == "-o")
            .map(|w| w[1].to_string());
        if let Some(name) = bridge {
            let b = Bridge {
                network_id: id.to_string(),
                name,
            };
            if !chain.ours.contains(&b) {
                chain.ours.push(b);
            }
        }
    }
    chain
}

fn iptables(args: &[String]) -> Result<Option<String>, ForwardError> {
    let out = match Command::new("iptables").arg("-w").args(args).output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ForwardError::Spawn(e)),
    };
    if !out.status.success() {
        return Err(ForwardError::Iptables {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// What this process last read of the chain, for which table, and when.
/// `run` reads it twice within milliseconds (repair, then the new network's
/// setup) and each `iptables` run costs about 10 ms; a supervisor that lives
/// for hours must not trust an old reading, hence [`FRESH`]. Forgotten
/// whenever berth changes the chain itself.
static LAST_READ: Mutex<Option<(Instant, String, Option<ForwardChain>)>> = Mutex::new(None);

/// How long a reading of the chain is trusted within one process.
const FRESH: Duration = Duration::from_secs(2);

fn forget_reading() {
    *LAST_READ.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

/// Reads the chain; `None` without iptables or without a filter table.
pub fn read(table: &str) -> Result<Option<ForwardChain>, ForwardError> {
    let mut last = LAST_READ.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((at, t, chain)) = &*last {
        if t == table && at.elapsed() < FRESH {
            return Ok(chain.clone());
        }
    }
    let chain = read_now(table)?;
    *last = Some((Instant::now(), table.to_string(), chain.clone()));
    Ok(chain)
}

fn read_now(table: &str) -> Result<Option<ForwardChain>, ForwardError> {
    match iptables(&["-S".into(), "FORWARD".into()]) {
        Ok(Some(listing)) => Ok(Some(parse(table, &listing))),
        Ok(None) => Ok(None),
        // No filter table (no iptables user on this machine): nothing drops.
        Err(ForwardError::Iptables { stderr, .. })
            if stderr.contains("does not exist") || stderr.contains("No chain") =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Makes the chain hold rules for exactly the live `bridges` that need them:
/// adds the missing ones when the policy drops, removes those of networks
/// not in `bridges` (of this table only).
pub fn reconcile(table: &str, bridges: &[Bridge]) -> Result<(), ForwardError> {
    let Some(chain) = read(table)? else {
        return Ok(());
    };
    for stale in chain.ours.iter().filter(|b| !bridges.contains(b)) {
        delete(table, stale)?;
    }
    if chain.drops() {
        for b in bridges.iter().filter(|b| !chain.ours.contains(b)) {
            insert(table, b)?;
        }
    }
    Ok(())
}

/// Adds `bridge`'s rules if the chain drops by default and they are absent.
pub fn ensure(table: &str, bridge: &Bridge) -> Result<(), ForwardError> {
    match read(table)? {
        Some(chain) if chain.drops() && !chain.ours.contains(bridge) => insert(table, bridge),
        _ => Ok(()),
    }
}

/// Removes `bridge`'s rules, if any.
pub fn remove(table: &str, bridge: &Bridge) -> Result<(), ForwardError> {
    match read(table)? {
        Some(chain) if chain.ours.contains(bridge) => delete(table, bridge),
        _ => Ok(()),
    }
}

/// Both rules of `bridge` added (`-I`) or removed (`-D`) in one
/// `iptables-restore --noflush` transaction: one run instead of two.
pub fn batch(op: &str, table: &str, bridge: &Bridge) -> String {
    let mut script = String::from("*filter\n");
    for rule in rules(table, bridge) {
        script.push_str(&format!("{op} FORWARD {}\n", rule.join(" ")));
    }
    script.push_str("COMMIT\n");
    script
}

/// Runs `iptables-restore -w --noflush` on `script`; `false` when it could
/// not run or refused (the caller then goes rule by rule).
fn restore(script: &str) -> bool {
    super::feed::feed("iptables-restore", &["-w", "--noflush"], script)
        .is_ok_and(|out| out.status.success())
}

fn insert(table: &str, bridge: &Bridge) -> Result<(), ForwardError> {
    change("-I", table, bridge)
}

fn delete(table: &str, bridge: &Bridge) -> Result<(), ForwardError> {
    change("-D", table, bridge)
}

/// Adds (`-I`) or removes (`-D`) both rules of `bridge`: in one
/// transaction, or, where that fails (no `iptables-restore`; when removing,
/// one rule already gone because someone flushed the chain), rule by rule.
fn change(op: &str, table: &str, bridge: &Bridge) -> Result<(), ForwardError> {
    forget_reading();
    if restore(&batch(op, table, bridge)) {
        return Ok(());
    }
    for rule in rules(table, bridge) {
        let mut args = vec![op.to_string(), "FORWARD".to_string()];
        args.extend(rule);
        match iptables(&args) {
            Ok(_) => {}
            // Removing a rule that is already gone is fine.
            Err(ForwardError::Iptables { stderr, .. })
                if op == "-D"
                    && (stderr.contains("does a matching rule exist")
                        || stderr.contains("Bad rule")) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = r#"-P FORWARD DROP
-A FORWARD -i br-0123456789ab -m comment --comment berth_abc123:net:0123 -j ACCEPT
-A FORWARD -o br-0123456789ab -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment "berth_abc123:net:0123" -j ACCEPT
-A FORWARD -i berth0 -m comment --comment berth:net:ffff -j ACCEPT
-A FORWARD -j DOCKER-USER
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
"#;

    #[test]
    fn parses_policy_and_only_this_tables_rules() {
        let chain = parse("berth_abc123", LISTING);
        assert_eq!(chain.policy, "DROP");
        assert!(chain.drops());
        assert_eq!(
            chain.ours,
            vec![Bridge {
                network_id: "0123".into(),
                name: "br-0123456789ab".into()
            }]
        );
        let default = parse("berth", LISTING);
        assert_eq!(default.ours.len(), 1);
        assert_eq!(default.ours[0].name, "berth0");
    }

    #[test]
    fn both_rules_go_in_one_restore_transaction() {
        let b = Bridge {
            network_id: "0123".into(),
            name: "br-0123".into(),
        };
        assert_eq!(
            batch("-I", "berth_t", &b),
            "*filter\n\
             -I FORWARD -i br-0123 -m comment --comment berth_t:net:0123 -j ACCEPT\n\
             -I FORWARD -o br-0123 -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment berth_t:net:0123 -j ACCEPT\n\
             COMMIT\n"
        );
    }

    #[test]
    fn accepting_chain_needs_nothing() {
        let chain = parse("berth", "-P FORWARD ACCEPT\n-A FORWARD -j DOCKER-USER\n");
        assert!(!chain.drops());
        assert!(chain.ours.is_empty());
    }

    #[test]
    fn rules_are_tagged_and_name_the_bridge() {
        let b = Bridge {
            network_id: "ab".into(),
            name: "br-x".into(),
        };
        let [from, to] = rules("berth", &b);
        assert_eq!(
            from.join(" "),
            "-i br-x -m comment --comment berth:net:ab -j ACCEPT"
        );
        assert!(to.join(" ").starts_with("-o br-x -m conntrack"));
        // What berth writes, it parses back as its own.
        let listing = format!(
            "-P FORWARD DROP\n-A FORWARD {}\n-A FORWARD {}\n",
            from.join(" "),
            to.join(" ")
        );
        assert_eq!(parse("berth", &listing).ours, vec![b]);
    }
}
