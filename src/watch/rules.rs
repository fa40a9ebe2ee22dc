//! Which watch rule a changed host path hits.
//!
//! As Compose does (<https://docs.docker.com/compose/how-tos/file-watch/>):
//! a path hits a rule when it is the rule's `path` or lies under it, and is
//! not ignored. Ignored are
//! - what the rule's `ignore` patterns exclude (`.dockerignore` syntax,
//!   relative to the rule's `path`);
//! - what the service's build context `.dockerignore` excludes (relative
//!   to the context), when the path is inside the context;
//! - `.git` directories, and the temporary and backup files of editors —
//!   Compose's list (its `pkg/watch/ephemeral.go`), taken as it is:
//!   JetBrains `*___jb_old___`, `*___jb_tmp___` and `.idea/`; Emacs `.#*`
//!   and `#*#`; Vim `4913`, `*~`, `.*.swp`, `.*.swx`, `.*.swo`, `.*.swn`;
//!   Kate `.*.kate-swp`; Go's `*-go-tmp-umask`. `*.tmp` is not on it (a
//!   project can list it in `ignore`).

use std::path::{Path, PathBuf};

use crate::build::ignore::{DockerIgnore, IgnoreError};
use crate::project::manifest::WatchAction;
use crate::project::model::{WatchExecSpec, WatchSpec};

/// A rule that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("service {service:?}: develop.watch[{index}].ignore: {source}")]
    Ignore {
        service: String,
        index: usize,
        source: IgnoreError,
    },
    #[error("service {service:?}: {}: {source}", .path.display())]
    DockerIgnore {
        service: String,
        path: PathBuf,
        source: IgnoreError,
    },
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One rule, ready to match paths.
#[derive(Debug, Clone)]
pub struct Rule {
    pub service: String,
    /// The rule's index in the service's `develop.watch`.
    pub index: usize,
    pub action: WatchAction,
    /// Absolute host path.
    pub path: PathBuf,
    pub target: Option<String>,
    pub exec: Option<WatchExecSpec>,
    /// Sync all of `path` when watch starts.
    pub initial_sync: bool,
    ignore: DockerIgnore,
    /// The build context and its `.dockerignore`.
    context: Option<(PathBuf, DockerIgnore)>,
}

/// A changed path that hits a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Index into [`Rules::rules`].
    pub rule: usize,
    /// The path relative to the rule's path (empty: the path itself).
    pub rel: PathBuf,
}

impl Rule {
    /// A rule of `service` from its spec; `context` is the service's build
    /// context with the text of its `.dockerignore` (if it has one).
    pub fn new(
        service: &str,
        index: usize,
        spec: &WatchSpec,
        context: Option<(&Path, Option<&str>)>,
    ) -> Result<Self, RuleError> {
        let ignore =
            DockerIgnore::parse(&spec.ignore.join("\n")).map_err(|source| RuleError::Ignore {
                service: service.to_string(),
                index,
                source,
            })?;
        let context = match context {
            Some((dir, text)) => Some((
                dir.to_path_buf(),
                DockerIgnore::parse(text.unwrap_or("")).map_err(|source| {
                    RuleError::DockerIgnore {
                        service: service.to_string(),
                        path: dir.join(".dockerignore"),
                        source,
                    }
                })?,
            )),
            None => None,
        };
        Ok(Rule {
            service: service.to_string(),
            index,
            action: spec.action,
            path: spec.path.clone(),
            target: spec.target.clone(),
            exec: spec.exec.clone(),
            initial_sync: spec.initial_sync,
            ignore,
            context,
        })
    }

    /// The path relative to the rule's path, if `path` hits the rule.
    pub fn hit(&self, path: &Path) -> Option<PathBuf> {
        let rel = path.strip_prefix(&self.path).ok()?;
        if self.ignores(path) {
            return None;
        }
        Some(rel.to_path_buf())
    }

    /// Whether `path` (absolute, at or under the rule's path) is ignored.
    pub fn ignores(&self, path: &Path) -> bool {
        let Ok(rel) = path.strip_prefix(&self.path) else {
            return true;
        };
        if is_default_ignored(rel)
            || path
                .file_name()
                .is_some_and(|n| is_editor_temp(&n.to_string_lossy()))
        {
            return true;
        }
        let rel_text = slash_path(rel);
        if !rel_text.is_empty() && self.ignore.is_excluded(&rel_text) {
            return true;
        }
        if let Some((dir, di)) = &self.context {
            if let Ok(in_ctx) = path.strip_prefix(dir) {
                let text = slash_path(in_ctx);
                if !text.is_empty() && di.is_excluded(&text) {
                    return true;
                }
            }
        }
        false
    }
}

/// A path as `/`-separated text.
pub fn slash_path(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether a relative path lies in (or is) a `.git` or `.idea` directory,
/// or ends in an editor's temporary file.
pub fn is_default_ignored(rel: &Path) -> bool {
    let names: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    names.iter().any(|n| n == ".git" || n == ".idea")
        || names.last().is_some_and(|n| is_editor_temp(n))
}

/// Whether a file name is one of the temporary or backup files editors
/// write next to the file they save (Compose's list).
pub fn is_editor_temp(name: &str) -> bool {
    name.ends_with("___jb_old___")
        || name.ends_with("___jb_tmp___")
        || name.starts_with(".#")
        || (name.len() >= 2 && name.starts_with('#') && name.ends_with('#'))
        || name == "4913"
        || name.ends_with('~')
        || (name.starts_with('.')
            && [".swp", ".swx", ".swo", ".swn", ".kate-swp"]
                .iter()
                .any(|s| name.ends_with(s)))
        || name.ends_with("-go-tmp-umask")
}

/// The rules of a project's watched services.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub rules: Vec<Rule>,
}

impl Rules {
    /// Every rule `path` hits.
    pub fn hits(&self, path: &Path) -> Vec<Hit> {
        self.rules
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.hit(path).map(|rel| Hit { rule: i, rel }))
            .collect()
    }

    /// The paths to watch: each rule's path, without duplicates and
    /// without paths under another one.
    pub fn roots(&self) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = self.rules.iter().map(|r| r.path.clone()).collect();
        paths.sort();
        paths.dedup();
        let mut out: Vec<PathBuf> = Vec::new();
        for p in paths {
            if !out.iter().any(|o| p.starts_with(o)) {
                out.push(p);
            }
        }
        out
    }
}

/// Reads a build context's `.dockerignore`, if it has one.
pub fn read_dockerignore(context: &Path) -> Result<Option<String>, RuleError> {
    let path = context.join(".dockerignore");
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(RuleError::Read { path, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(action: WatchAction, path: &str, ignore: &[&str]) -> WatchSpec {
        WatchSpec {
            action,
            path: PathBuf::from(path),
            target: action.syncs().then(|| "/app".to_string()),
            ignore: ignore.iter().map(|s| s.to_string()).collect(),
            exec: None,
            initial_sync: false,
        }
    }

    fn rules() -> Rules {
        let ctx = Path::new("/p");
        let di = Some("src/gen\nsrc/*.log\n!src/keep.log\n");
        Rules {
            rules: vec![
                Rule::new(
                    "web",
                    0,
                    &spec(WatchAction::Sync, "/p/src", &["*.tmp", "cache/"]),
                    Some((ctx, di)),
                )
                .unwrap(),
                Rule::new(
                    "web",
                    1,
                    &spec(WatchAction::Rebuild, "/p/package.json", &[]),
                    Some((ctx, di)),
                )
                .unwrap(),
                Rule::new("api", 0, &spec(WatchAction::Restart, "/p", &[]), None).unwrap(),
            ],
        }
    }

    /// Each line: a changed path, then the `service#index:rel` hits.
    #[test]
    fn paths_hit_rules() {
        let table = "\
/p/src/a.js              web#0:a.js api#0:src/a.js
/p/src                   web#0: api#0:src
/p/src/sub/dir/b.css     web#0:sub/dir/b.css api#0:src/sub/dir/b.css
/p/src/x.tmp             api#0:src/x.tmp
/p/src/cache/c           api#0:src/cache/c
/p/src/cache             api#0:src/cache
/p/src/gen/m.js          api#0:src/gen/m.js
/p/src/node_modules/m.js web#0:node_modules/m.js api#0:src/node_modules/m.js
/p/src/debug.log         api#0:src/debug.log
/p/src/keep.log          web#0:keep.log api#0:src/keep.log
/p/package.json          web#1: api#0:package.json
/p/package.json.bak      api#0:package.json.bak
/p/src/.a.js.swp         -
/p/src/a.js~             -
/p/src/4913              -
/p/src/.#a.js            -
/p/src/#a.js#            -
/p/src/a.js___jb_tmp___  -
/p/.git/index            -
/p/src/.git              -
/p/.idea/workspace.xml   -
/p/main.go-go-tmp-umask  -
/q/src/a.js              -
/psrc/a.js               -
";
        let rules = rules();
        for line in table.lines() {
            let mut words = line.split_whitespace();
            let path = words.next().unwrap();
            let want: Vec<&str> = words.filter(|w| *w != "-").collect();
            let got: Vec<String> = rules
                .hits(Path::new(path))
                .iter()
                .map(|h| {
                    let r = &rules.rules[h.rule];
                    format!("{}#{}:{}", r.service, r.index, slash_path(&h.rel))
                })
                .collect();
            assert_eq!(got, want, "{path}");
        }
    }

    #[test]
    fn node_modules_in_context_dockerignore_only_applies_inside_the_context() {
        let r = Rule::new(
            "web",
            0,
            &spec(WatchAction::Sync, "/elsewhere", &[]),
            Some((Path::new("/p"), Some("node_modules"))),
        )
        .unwrap();
        assert!(r.hit(Path::new("/elsewhere/node_modules/x")).is_some());
    }

    #[test]
    fn editor_temp_files() {
        for yes in [
            "a~",
            ".a.swp",
            ".a.swx",
            ".a.swo",
            ".a.swn",
            "4913",
            ".#a",
            "#a#",
            "a___jb_old___",
            ".a.kate-swp",
            "x-go-tmp-umask",
        ] {
            assert!(is_editor_temp(yes), "{yes}");
        }
        for no in ["a.swp", "a", "a.tmp", "#", "49130", "swp", ".swpx", "a#"] {
            assert!(!is_editor_temp(no), "{no}");
        }
    }

    #[test]
    fn watched_roots_drop_nested_paths() {
        let r = rules();
        assert_eq!(r.roots(), vec![PathBuf::from("/p")]);
    }

    #[test]
    fn bad_ignore_pattern_is_an_error() {
        let e = Rule::new("web", 2, &spec(WatchAction::Sync, "/p", &["!"]), None).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("service \"web\": develop.watch[2].ignore: "),
            "{e}"
        );
    }
}
