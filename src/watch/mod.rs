//! `berth watch`: Compose's file watch
//! (<https://docs.docker.com/compose/how-tos/file-watch/>) over berth's
//! projects.
//!
//! A service's `develop.watch` rules name host paths and an action. The
//! command (`cli/watch.rs`) brings the project up, watches those paths with
//! inotify (the `notify` crate) through a debouncer, and for each batch of
//! changes:
//!
//! - [`rules`] decides which rule each changed path hits — the path is under
//!   the rule's `path` and not ignored by the rule's `ignore`, the build
//!   context's `.dockerignore`, `.git/` or an editor's temporary files;
//! - [`sync`] turns the changes of a sync rule into copy and delete
//!   operations on container paths (pure), and [`write`] carries them out
//!   inside each running replica's root, as seen through
//!   `/proc/PID/root`, every path resolved by [`crate::confine`] and opened
//!   component by component with `O_NOFOLLOW`, so that no symbolic link in
//!   the container makes a write land outside it (or outside the rule's
//!   `target`);
//! - [`events`] owns the watcher: it coalesces events for
//!   [`events::DEBOUNCE`] and hands batches over a channel, so changes made
//!   while a rebuild runs are queued and handled after it.

pub mod events;
pub mod rules;
pub mod session;
pub mod sync;
pub mod write;
