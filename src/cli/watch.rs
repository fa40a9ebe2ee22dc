//! `berth watch [SERVICE...] [--no-up] [--prune]` (also `berth compose
//! watch` and `berth up --watch`): Compose's `docker compose watch`
//! (<https://docs.docker.com/compose/how-tos/file-watch/>).
//!
//! First does what `up -d` does (unless `--no-up`), then watches the
//! services' `develop.watch` paths and the manifest files, `.env` and `env_file`s
//! ([`crate::watch::events`]). For each debounced batch of changes:
//!
//! - a service any of whose `rebuild` rules is hit is rebuilt through the
//!   same builder `up --build` uses; only when the image id changed is the
//!   service re-planned and applied as `up -d --no-deps SERVICE` would (its
//!   containers recreated); otherwise nothing is touched. Its sync rules
//!   are not run for that batch (the new image has the files);
//! - otherwise the sync rules copy and delete files inside every running
//!   replica ([`crate::watch::write`]), then `sync+restart`/`restart`
//!   restart the service's containers and `sync+exec` runs its command in
//!   each running replica;
//! - a change to a manifest file, `.env` or an `env_file` re-loads the project, prints the
//!   plan and applies it (as `up -d`); a manifest that no longer loads is
//!   reported (`berth.toml:3:9: …`) and watch goes on with the project as
//!   it was.
//!
//! The session itself is `crate::watch::session`. Ctrl-C (or SIGTERM)
//! ends watch with status 0 and leaves the project running, as Compose
//! does.

use super::project::ProjectArgs;
use super::Context;

/// `berth watch`.
#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Do not build and start the services before watching
    #[arg(long = "no-up")]
    pub no_up: bool,
    /// Remove a service's previous image after a rebuild replaced it, if nothing else uses it
    #[arg(long)]
    pub prune: bool,
    /// Services to watch (default: every service with `develop.watch` rules)
    pub services: Vec<String>,
}

/// Watches the project until Ctrl-C (the project is already up).
pub fn run(
    ctx: &Context,
    project_args: &ProjectArgs,
    services: &[String],
    prune: bool,
) -> anyhow::Result<()> {
    super::interrupt::catch();
    Ok(crate::watch::session::run(
        &ctx.root()?,
        project_args.selection(),
        services,
        prune,
        &super::interrupt::INTERRUPTED,
    )?)
}
