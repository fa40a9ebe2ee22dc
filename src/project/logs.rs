//! The logs of a project's containers, merged in time order with Compose's
//! coloured `service-N | ` prefixes (`compose logs`, foreground `up`,
//! `logs SERVICE` of a multi-replica service). The set of containers is
//! read afresh on every poll, so a recreated container is followed.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use super::actual::{self, ProjectContainer};
use crate::runtime::container::ContainerStore;

/// How [`merged_logs`] prints.
pub struct MergedLogs {
    pub follow: bool,
    pub timestamps: bool,
    /// Lines from the end of each container's log.
    pub tail: Option<usize>,
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Print the `service-N | ` prefix.
    pub prefix: bool,
}

/// Prints the logs of `project`'s containers of `services` (all when empty)
/// merged in time order; with `follow`, until none of them runs. The set of
/// containers is read afresh on every poll, so a recreated one is followed.
pub fn merged_logs(
    store: &ContainerStore,
    project: &str,
    services: &[String],
    how: &MergedLogs,
) -> std::io::Result<()> {
    let mut follower = LogFollower::new(how.prefix, how.timestamps, how.since);
    let pick = || -> Vec<ProjectContainer> {
        actual::project_containers(store, project)
            .into_iter()
            .filter(|c| services.is_empty() || services.iter().any(|s| s == c.service()))
            .collect()
    };
    let cs = pick();
    follower.poll(store, &cs, how.tail)?;
    if how.follow {
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let cs = pick();
            follower.poll(store, &cs, None)?;
            if !cs
                .iter()
                .any(|c| c.running || c.state.status == "restarting")
            {
                follower.poll(store, &cs, None)?;
                break;
            }
        }
    }
    Ok(())
}

/// Reads the containers' `log.json` files from where it left off and prints
/// new records merged in time order, with coloured `service-N | ` prefixes.
pub struct LogFollower {
    followers: BTreeMap<String, crate::runtime::log::Follower>,
    prefix: bool,
    timestamps: bool,
    since: Option<chrono::DateTime<chrono::Utc>>,
    colour: bool,
}

const COLOURS: &[&str] = &["36", "33", "32", "35", "34", "96", "93", "92", "95", "94"];

impl LogFollower {
    pub fn new(
        prefix: bool,
        timestamps: bool,
        since: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Self {
        Self {
            followers: BTreeMap::new(),
            prefix,
            timestamps,
            since,
            colour: std::io::IsTerminal::is_terminal(&std::io::stdout()),
        }
    }

    pub fn poll(
        &mut self,
        store: &ContainerStore,
        containers: &[ProjectContainer],
        tail: Option<usize>,
    ) -> std::io::Result<()> {
        let width = containers
            .iter()
            .map(|c| c.service().len() + 1 + c.replica().to_string().len())
            .max()
            .unwrap_or(0);
        let mut records: Vec<(chrono::DateTime<chrono::Utc>, usize, String)> = Vec::new();
        for (i, c) in containers.iter().enumerate() {
            let path: PathBuf = store.dir(&c.config.id).join("log.json");
            let mut recs = Vec::new();
            if !self.followers.contains_key(&c.config.id) {
                let (old, follower) = crate::runtime::log::Follower::history(&path)?;
                recs = old;
                self.followers.insert(c.config.id.clone(), follower);
            }
            if let Some(f) = self.followers.get_mut(&c.config.id) {
                recs.extend(f.read()?);
            }
            let recs = crate::runtime::log::select(recs, self.since, tail);
            let name = format!("{}-{}", c.service(), c.replica());
            let colour = COLOURS[i % COLOURS.len()];
            for r in recs {
                let mut line = String::new();
                if self.prefix {
                    let p = format!("{name:<width$} | ");
                    if self.colour {
                        line.push_str(&format!("\x1b[{colour}m{p}\x1b[0m"));
                    } else {
                        line.push_str(&p);
                    }
                }
                if self.timestamps {
                    line.push_str(&r.time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true));
                    line.push(' ');
                }
                line.push_str(r.log.trim_end_matches('\n'));
                records.push((r.time, i, line));
            }
        }
        records.sort_by_key(|r| (r.0, r.1));
        let mut out = std::io::stdout().lock();
        for (_, _, line) in records {
            if writeln!(out, "{line}").is_err() {
                return Ok(());
            }
        }
        let _ = out.flush();
        Ok(())
    }
}
