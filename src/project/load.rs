//! Finding, reading and validating a project: discovery of `berth.toml`,
//! `-f` files merged in order, `.env`, interpolation, typed deserialisation
//! and the cross-checks serde cannot do (service names, `depends_on` targets
//! and cycles, references to undeclared networks and volumes), all before
//! anything on the host is touched.
//!
//! Project names follow Compose
//! (<https://docs.docker.com/compose/how-tos/project-name/>): `-p NAME`,
//! else `BERTH_PROJECT_NAME` (from the environment or `.env`), else `name` in
//! the manifest, else the project directory's name normalised to lowercase
//! `[a-z0-9_-]`. An explicit name must already be in that form.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use petgraph::graph::{DiGraph, NodeIndex};

use super::de::{from_node, from_node_at, DeError};
use super::error::{Diagnostic, LoadError};
use super::interpolate::{interpolate_tree, parse_dotenv};
use super::manifest::{Manifest, MountType, Service, WatchAction, WatchRule};
use super::source::{self, KeyPath, Node, Sources, SyntaxError};

/// The most replicas one service may ask for.
pub const MAX_REPLICAS: u32 = 1000;

/// The manifest's file name.
pub const MANIFEST_NAME: &str = "berth.toml";

/// What `load` needs from the command line and the process.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-f` files in order; empty means discover `berth.toml` from `cwd` up.
    pub files: Vec<PathBuf>,
    /// The directory relative paths are resolved against.
    pub cwd: PathBuf,
    /// `-p NAME`.
    pub project_name: Option<String>,
    /// The process environment (wins over `.env`).
    pub env: BTreeMap<String, String>,
}

impl LoadOptions {
    /// Options from the real process: its cwd and environment.
    pub fn from_process(
        files: Vec<PathBuf>,
        project_name: Option<String>,
    ) -> std::io::Result<Self> {
        Ok(LoadOptions {
            files,
            cwd: std::env::current_dir()?,
            project_name,
            env: std::env::vars().collect(),
        })
    }
}

/// A loaded, validated manifest and what it was loaded from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub manifest: Manifest,
    pub project_name: String,
    /// The directory of the first manifest file; relative paths start here.
    pub project_dir: PathBuf,
    pub files: Vec<PathBuf>,
    /// Variables for interpolation: `.env` overlaid by the process environment.
    pub variables: BTreeMap<String, String>,
    /// The interpolated tree and its sources, for placing later errors.
    pub tree: Node,
    pub sources: Sources,
    /// What the user should know that is not an error (`FILE:LINE:COL: …`),
    /// such as an obsolete Compose `version` that was ignored.
    pub notes: Vec<String>,
}

impl Loaded {
    /// A diagnostic at `path` in the manifest.
    pub fn diagnostic(&self, path: &KeyPath, message: impl Into<String>) -> Diagnostic {
        Diagnostic::at(&self.sources, self.tree.span_at(&path.0), path, message)
    }
}

/// The names a project file may have, in the order each directory is
/// searched: berth's own, then Compose's (`compose.yaml` first, as Compose).
pub const MANIFEST_NAMES: &[&str] = &[
    MANIFEST_NAME,
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// Finds the project file in `dir` or the nearest parent that has one:
/// `berth.toml`, else a Compose file.
pub fn discover(dir: &Path) -> Option<PathBuf> {
    dir.ancestors().find_map(|d| {
        MANIFEST_NAMES
            .iter()
            .map(|n| d.join(n))
            .find(|p| p.is_file())
    })
}

/// Finds a Compose file (not `berth.toml`) in `dir` or the nearest parent
/// that has one: what `berth convert` converts when no file is named.
pub fn discover_compose(dir: &Path) -> Option<PathBuf> {
    dir.ancestors().find_map(|d| {
        MANIFEST_NAMES[1..]
            .iter()
            .map(|n| d.join(n))
            .find(|p| p.is_file())
    })
}

/// Whether `path` is a Compose (YAML) file rather than TOML.
pub fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

/// Parses one project file's text by its kind: TOML, or Compose YAML (whose
/// notes, such as an ignored `version`, go to `notes`).
pub fn parse_file(
    sources: &Sources,
    file: usize,
    notes: &mut Vec<String>,
) -> Result<Node, SyntaxError> {
    if !is_yaml(sources.path(file)) {
        return source::parse(sources.text(file), file);
    }
    let parsed = crate::project::yaml::parse(sources.text(file), file).map_err(|mut e| {
        e.message = format!("invalid YAML: {}", e.message);
        e
    })?;
    notes.extend(
        parsed
            .notes
            .into_iter()
            .map(|(span, note)| format!("{}: {note}", sources.location(span))),
    );
    Ok(parsed.node)
}

/// Lexically normalises a path: removes `.` and resolves `..` (no I/O).
pub fn normalise_path(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// Compose's normalisation of a directory name into a project name:
/// lowercase, only `[a-z0-9_-]`, starting with a letter or digit.
pub fn normalise_project_name(raw: &str) -> String {
    let lower: String = raw
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    lower
        .trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// Whether `name` is a valid explicit project name.
pub fn is_valid_project_name(name: &str) -> bool {
    !name.is_empty() && normalise_project_name(name) == name
}

/// Service names as Compose accepts them: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
fn is_valid_service_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Loads the project the options name; every problem is found before returning.
/// The project files `opts` names (or discovery finds), with the names to
/// show for them in messages.
fn manifest_files(opts: &LoadOptions) -> Result<(Vec<PathBuf>, Vec<String>), LoadError> {
    Ok(if opts.files.is_empty() {
        let found = discover(&opts.cwd).ok_or_else(|| LoadError::NotFound(opts.cwd.clone()))?;
        let display = match (found.parent(), found.file_name()) {
            (Some(p), Some(name)) if p == opts.cwd => name.to_string_lossy().into_owned(),
            _ => found.display().to_string(),
        };
        (vec![found], vec![display])
    } else {
        opts.files
            .iter()
            .map(|f| (normalise_path(&opts.cwd.join(f)), f.display().to_string()))
            .unzip()
    })
}

/// The project files as written: parsed and merged, not interpolated (what
/// `berth convert` writes out).
#[derive(Debug)]
pub struct RawTree {
    pub tree: Node,
    pub sources: Sources,
    pub notes: Vec<String>,
    pub files: Vec<PathBuf>,
    /// How the first file is named in messages.
    pub display: String,
}

/// Reads the project files `opts` names into one uninterpolated tree.
pub fn raw_tree(opts: &LoadOptions) -> Result<RawTree, LoadError> {
    let (files, displays) = manifest_files(opts)?;
    let mut sources = Sources::default();
    let mut notes = Vec::new();
    let mut tree: Option<Node> = None;
    let mut diagnostics = Vec::new();
    for (path, display) in files.iter().zip(&displays) {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: path.clone(),
            source,
        })?;
        let file = sources.add(display.clone(), path.clone(), text);
        match parse_file(&sources, file, &mut notes) {
            Ok(mut node) => match &mut tree {
                None => tree = Some(node),
                Some(base) => {
                    source::normalise_lists(base);
                    source::normalise_lists(&mut node);
                    source::merge(base, node)
                }
            },
            Err(e) => diagnostics.push(Diagnostic {
                location: sources.location(e.span),
                path: String::new(),
                message: e.message.replace('\n', " "),
            }),
        }
    }
    if !diagnostics.is_empty() {
        return Err(LoadError::Invalid(diagnostics));
    }
    Ok(RawTree {
        tree: tree.expect("at least one manifest file"),
        sources,
        notes,
        files,
        display: displays[0].clone(),
    })
}

pub fn load(opts: &LoadOptions) -> Result<Loaded, LoadError> {
    let (files, displays) = manifest_files(opts)?;
    let project_dir = files[0]
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| opts.cwd.clone());

    // Variables: .env beside the (first) manifest, the process environment wins.
    let mut variables = BTreeMap::new();
    let dotenv = project_dir.join(".env");
    if dotenv.is_file() {
        let text = read_utf8(&dotenv, &dotenv.display().to_string())?;
        let env = &opts.env;
        let pairs = parse_dotenv(&text, &|k| env.get(k).cloned()).map_err(|e| {
            LoadError::Invalid(vec![Diagnostic {
                location: format!("{}:{}", dotenv.display(), e.line),
                path: String::new(),
                message: e.message,
            }])
        })?;
        variables.extend(pairs);
    }
    variables.extend(opts.env.iter().map(|(k, v)| (k.clone(), v.clone())));

    let mut sources = Sources::default();
    let mut tree: Option<Node> = None;
    let mut diagnostics = Vec::new();
    let mut notes = Vec::new();
    let mut unset = BTreeSet::new();
    for (path, display) in files.iter().zip(&displays) {
        let text = read_utf8(path, display)?;
        let file = sources.add(display.clone(), path.clone(), text);
        match parse_file(&sources, file, &mut notes) {
            Ok(mut node) => {
                // As Compose: each file is interpolated, then files merge.
                let mut errors = Vec::new();
                interpolate_tree(
                    &mut node,
                    &KeyPath::root(),
                    &|k| variables.get(k).cloned(),
                    &mut errors,
                    &mut unset,
                );
                diagnostics.extend(
                    errors
                        .into_iter()
                        .map(|e| Diagnostic::at(&sources, e.span, &e.path, e.error.to_string())),
                );
                source::normalise_lists(&mut node);
                match &mut tree {
                    None => tree = Some(node),
                    Some(base) => source::merge(base, node),
                }
            }
            Err(e) => diagnostics.push(Diagnostic {
                location: sources.location(e.span),
                path: String::new(),
                message: if is_yaml(path) {
                    e.message.replace('\n', " ")
                } else {
                    format!("invalid TOML: {}", e.message.replace('\n', " "))
                },
            }),
        }
    }
    if !diagnostics.is_empty() {
        return Err(LoadError::Invalid(diagnostics));
    }
    // As Compose warns: `The "X" variable is not set. Defaulting to a blank string.`
    notes.extend(
        unset
            .into_iter()
            .map(|name| format!("the {name:?} variable is not set; substituting a blank string")),
    );
    let tree = tree.expect("at least one manifest file");
    let (manifest, project_name) = load_tree(
        &tree,
        &sources,
        &variables,
        opts.project_name.as_deref(),
        &project_dir,
    )?;
    Ok(Loaded {
        manifest,
        project_name,
        project_dir,
        files,
        variables,
        tree,
        sources,
        notes,
    })
}

/// Deserialises and validates an interpolated, merged tree; returns the
/// manifest and the project name.
pub fn load_tree(
    tree: &Node,
    sources: &Sources,
    variables: &BTreeMap<String, String>,
    explicit_name: Option<&str>,
    project_dir: &Path,
) -> Result<(Manifest, String), LoadError> {
    let placed = |e: DeError| {
        let path = e.path.clone().unwrap_or_default();
        let span = e.span.unwrap_or(tree.span);
        Diagnostic::at(sources, span, &path, e.message)
    };
    let mut manifest: Manifest = match from_node(tree) {
        Ok(m) => m,
        Err(first) => {
            // Serde stops at the first error; look at each service on its
            // own too, so one run reports a problem in every service.
            let mut all = vec![placed(first)];
            if let Some(services) = tree.get("services") {
                if let source::Value::Table(entries) = &services.node.value {
                    let base = KeyPath::root().key("services");
                    for entry in entries {
                        let path = base.key(&entry.key);
                        if let Err(e) = from_node_at::<Service>(&entry.node, &path) {
                            let d = placed(e);
                            if !all.contains(&d) {
                                all.push(d);
                            }
                        }
                    }
                }
            }
            all.sort_by_key(Diagnostic::sort_key);
            return Err(LoadError::Invalid(all));
        }
    };
    let mut diagnostics = fold_deploy(&mut manifest, tree, sources);
    diagnostics.extend(validate(&manifest, tree, sources));
    if !diagnostics.is_empty() {
        return Err(LoadError::Invalid(diagnostics));
    }
    let name = match explicit_name.map(str::to_string).or_else(|| {
        variables
            .get("BERTH_PROJECT_NAME")
            .cloned()
            .filter(|n| !n.is_empty())
    }) {
        Some(n) if is_valid_project_name(&n) => n,
        Some(n) => return Err(LoadError::ProjectName(n)),
        None => match &manifest.name {
            Some(n) if is_valid_project_name(n) => n.clone(),
            Some(n) => {
                let path = KeyPath::root().key("name");
                return Err(LoadError::Invalid(vec![Diagnostic::at(
                    sources,
                    tree.span_at(&path.0),
                    &path,
                    format!("invalid project name {n:?}: use only lowercase letters, digits, dashes and underscores, starting with a letter or digit"),
                )]));
            }
            None => {
                let dir = project_dir
                    .file_name()
                    .map(|d| d.to_string_lossy().into_owned());
                match dir.map(|d| normalise_project_name(&d)) {
                    Some(n) if !n.is_empty() => n,
                    _ => return Err(LoadError::NoProjectName(project_dir.to_path_buf())),
                }
            }
        },
    };
    Ok((manifest, name))
}

/// Folds Compose's `deploy.replicas` and `deploy.resources.limits` into
/// `replicas` and `resources`; both forms at once must agree.
fn fold_deploy(manifest: &mut Manifest, tree: &Node, sources: &Sources) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, service) in manifest.services.iter_mut() {
        let Some(deploy) = service.deploy.take() else {
            continue;
        };
        let here = KeyPath::root().key("services").key(name).key("deploy");
        let conflict = |key: &str, path: KeyPath| {
            Diagnostic::at(
                sources,
                tree.span_at(&path.0),
                &path,
                format!("{key} is also set outside deploy, differently: keep one"),
            )
        };
        if let Some(n) = deploy.replicas {
            match service.replicas {
                Some(r) if r != n => out.push(conflict("replicas", here.key("replicas"))),
                _ => service.replicas = Some(n),
            }
        }
        if let Some(limits) = deploy.resources.and_then(|r| r.limits) {
            match &service.resources {
                Some(r) if *r != limits => {
                    out.push(conflict("resources", here.key("resources").key("limits")))
                }
                _ => service.resources = Some(limits),
            }
        }
    }
    out
}

/// The checks across keys: names, references, and dependency cycles.
fn validate(manifest: &Manifest, tree: &Node, sources: &Sources) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let at = |path: KeyPath, message: String| {
        Diagnostic::at(sources, tree.span_at(&path.0), &path, message)
    };
    let services = KeyPath::root().key("services");
    let names: Vec<&str> = manifest.services.keys().map(String::as_str).collect();
    // A host port published twice: the second container could not start.
    // (Services in profiles may never run together; they are not checked.)
    let mut published: Vec<(&str, &super::manifest::Port)> = Vec::new();
    for (name, service) in manifest
        .services
        .iter()
        .filter(|(_, s)| s.profiles.is_empty())
    {
        for (i, entry) in service.ports.iter().enumerate() {
            let p = &entry.0;
            let Some(r) = p.published else { continue };
            let clash = published.iter().find(|(_, q)| {
                q.published
                    .is_some_and(|o| o.start <= r.end && r.start <= o.end)
                    && q.protocol == p.protocol
                    && (q.host_ip.is_none() || p.host_ip.is_none() || q.host_ip == p.host_ip)
            });
            if let Some((other, q)) = clash {
                let port = q.published.map_or(r.start, |o| o.start.max(r.start));
                out.push(at(
                    services.key(name).key("ports").index(i),
                    format!("host port {port} is published twice (also by service {other:?}): the second container could not start; choose another host port"),
                ));
            }
            published.push((name, p));
        }
    }
    for (name, service) in &manifest.services {
        let here = services.key(name);
        if !is_valid_service_name(name) {
            out.push(at(
                here.clone(),
                format!("invalid service name {name:?}: use letters, digits, `_`, `.` and `-`, starting with a letter or digit"),
            ));
        }
        if service.image.is_none() && service.build.is_none() {
            out.push(at(
                here.clone(),
                format!("service {name:?} has neither `image` nor `build`: set one of them"),
            ));
        }
        // What `run` would refuse, found before `up` makes anything.
        if let Some(image) = &service.image {
            if let Err(e) = crate::image::Reference::parse(image) {
                out.push(at(
                    here.key("image"),
                    format!("invalid image reference {image:?}: {e}"),
                ));
            }
        }
        if let Some(dir) = service
            .working_dir
            .as_deref()
            .filter(|d| !d.starts_with('/'))
        {
            out.push(at(
                here.key("working_dir"),
                format!("working_dir {dir:?} is not an absolute path: start it with /"),
            ));
        }
        if let Some(c) = &service.container_name {
            let valid = c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
                && c.len() > 1
                && c.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '.' | '-'));
            if !valid {
                out.push(at(
                    here.key("container_name"),
                    format!("invalid container name {c:?}: use letters, digits, `_`, `.` and `-`, starting with a letter or digit"),
                ));
            } else if service.replicas.unwrap_or(1) > 1 {
                out.push(at(
                    here.key("container_name"),
                    format!("container_name {c:?} names one container, but replicas is {}: remove one of them", service.replicas.unwrap_or(1)),
                ));
            } else if let Some(other) = manifest
                .services
                .iter()
                .find(|(n, s)| *n < name && s.container_name.as_deref() == Some(c.as_str()))
            {
                out.push(at(
                    here.key("container_name"),
                    format!(
                        "container_name {c:?} is also the name of service {}'s container",
                        other.0
                    ),
                ));
            }
        }
        // The kernel's limit (HOST_NAME_MAX): longer fails only at start.
        if let Some(h) = service.hostname.as_deref().filter(|h| h.len() > 64) {
            out.push(at(
                here.key("hostname"),
                format!(
                    "hostname {h:?} is {} bytes long; the kernel takes at most 64",
                    h.len()
                ),
            ));
        }
        for dep in service.depends_on.0.keys() {
            if dep == name {
                out.push(at(
                    here.key("depends_on").key(dep),
                    format!("service {name:?} depends on itself"),
                ));
            } else if !manifest.services.contains_key(dep) {
                let hint = match super::de::did_you_mean(dep, &names) {
                    Some(m) => format!(", did you mean {m:?}?"),
                    None => format!("; services are: {}", names.join(", ")),
                };
                out.push(at(
                    here.key("depends_on").key(dep),
                    format!("depends on unknown service {dep:?}{hint}"),
                ));
            }
        }
        if let Some(nets) = &service.networks {
            for (net, opts) in &nets.0 {
                let def = manifest.networks.get(net);
                if net != "default" && def.is_none() {
                    out.push(at(
                        here.key("networks").key(net),
                        format!("network {net:?} is not declared: add a [networks.{net}] table"),
                    ));
                }
                if let Some(ip) = opts.ipv4_address {
                    let path = here.key("networks").key(net).key("ipv4_address");
                    match def.and_then(|d| d.subnet) {
                        None => out.push(at(
                            path,
                            format!("a fixed address needs a network with a `subnet`: set networks.{net}.subnet"),
                        )),
                        Some(subnet) if !subnet.contains(ip) => out.push(at(
                            path,
                            format!("address {ip} is not in network {net:?}'s subnet {subnet}"),
                        )),
                        Some(_) => {}
                    }
                }
            }
        }
        for (i, mount) in service.volumes.iter().enumerate() {
            let m = &mount.0;
            if let (MountType::Volume, Some(src)) = (m.kind, &m.source) {
                if !manifest.volumes.contains_key(src) {
                    out.push(at(
                        here.key("volumes").index(i),
                        format!("volume {src:?} is not declared: add a [volumes.{src}] table, or start a host path with ./ or /"),
                    ));
                }
            }
        }
        if service.replicas.unwrap_or(1) > MAX_REPLICAS {
            out.push(at(
                here.key("replicas"),
                format!("replicas = {} is more than berth runs for one service (at most {MAX_REPLICAS})", service.replicas.unwrap_or(1)),
            ));
        }
        if service.replicas.unwrap_or(1) > 1
            && service.ports.iter().any(|p| p.0.published.is_some())
        {
            out.push(at(
                here.key("replicas"),
                format!("service {name:?} publishes a fixed host port and has more than one replica; the replicas would collide: leave out the host port or use one replica"),
            ));
        }
        if let Some(develop) = &service.develop {
            for (i, rule) in develop.watch.iter().enumerate() {
                let rule_path = here.key("develop").key("watch").index(i);
                out.extend(check_watch_rule(name, service, rule).into_iter().map(
                    |(key, message)| {
                        at(
                            match key {
                                Some(k) => rule_path.key(k),
                                None => rule_path.clone(),
                            },
                            message,
                        )
                    },
                ));
            }
        }
    }
    for (name, net) in &manifest.networks {
        if net.external && (net.subnet.is_some() || net.internal) {
            out.push(at(
                KeyPath::root().key("networks").key(name),
                "an external network takes no `subnet` or `internal`: berth does not create it"
                    .to_string(),
            ));
        }
    }
    if let Some(cycle) = find_cycle(manifest) {
        let path = services.key(&cycle[0]).key("depends_on").key(&cycle[1]);
        out.push(at(
            path,
            format!("dependency cycle: {}", cycle.join(" -> ")),
        ));
    }
    out
}

/// The checks of one `develop.watch` rule across its keys: each problem
/// with the key it is about (none: the rule as a whole).
fn check_watch_rule(
    service_name: &str,
    service: &Service,
    rule: &WatchRule,
) -> Vec<(Option<&'static str>, String)> {
    let mut out = Vec::new();
    let action = rule.action;
    if rule.path.trim().is_empty() {
        out.push((
            Some("path"),
            "`path` is empty: name a file or directory, relative to the project directory"
                .to_string(),
        ));
    }
    match (&rule.target, action.syncs()) {
        (None, true) => out.push((
            None,
            format!("action `{action}` needs a `target`: the path in the container to sync `path` to"),
        )),
        (Some(t), true) if !t.starts_with('/') => out.push((
            Some("target"),
            format!("target {t:?} is not an absolute path: write the path in the container, like \"/app\""),
        )),
        (Some(_), false) => out.push((
            Some("target"),
            format!("`target` is only used by the sync actions, not by `{action}`: remove it"),
        )),
        _ => {}
    }
    match (&rule.exec, action) {
        (None, WatchAction::SyncExec) => out.push((
            None,
            "action `sync+exec` needs an `exec` table with the `command` to run".to_string(),
        )),
        (Some(e), WatchAction::SyncExec) if e.command.0.is_empty() => out.push((
            Some("exec"),
            "`exec.command` is empty: give the command to run in the container".to_string(),
        )),
        (Some(_), WatchAction::SyncExec) | (None, _) => {}
        (Some(_), _) => out.push((
            Some("exec"),
            format!("`exec` is only used by action `sync+exec`, not by `{action}`: remove it or use \"sync+exec\""),
        )),
    }
    if rule.initial_sync && !action.syncs() {
        out.push((
            Some("initial_sync"),
            format!(
                "`initial_sync` is only used by the sync actions, not by `{action}`: remove it"
            ),
        ));
    }
    if action == WatchAction::Rebuild && service.build.is_none() {
        out.push((
            Some("action"),
            format!("action `rebuild` needs a service with `build`, and {service_name:?} only has an `image`: add `build` or use another action"),
        ));
    }
    out
}

/// A dependency cycle, as the list of services around it (first repeated
/// at the end), if there is one.
pub fn find_cycle(manifest: &Manifest) -> Option<Vec<String>> {
    let mut graph = DiGraph::<&str, ()>::new();
    let mut index: BTreeMap<&str, NodeIndex> = BTreeMap::new();
    for name in manifest.services.keys() {
        index.insert(name, graph.add_node(name));
    }
    for (name, service) in &manifest.services {
        for dep in service.depends_on.0.keys() {
            if let Some(&to) = index.get(dep.as_str()) {
                if dep != name {
                    graph.add_edge(index[name.as_str()], to, ());
                }
            }
        }
    }
    let mut sccs: Vec<Vec<NodeIndex>> = petgraph::algo::tarjan_scc(&graph)
        .into_iter()
        .filter(|scc| scc.len() > 1)
        .collect();
    sccs.sort_by_key(|scc| scc.iter().map(|n| graph[*n]).min());
    let scc = sccs.first()?;
    let members: BTreeSet<NodeIndex> = scc.iter().copied().collect();
    let start = *scc.iter().min_by_key(|n| graph[**n])?;
    // Breadth-first search inside the component for the shortest way back.
    let mut prev: BTreeMap<NodeIndex, NodeIndex> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(n) = queue.pop_front() {
        let mut next: Vec<NodeIndex> = graph.neighbors(n).filter(|m| members.contains(m)).collect();
        next.sort_by_key(|m| graph[*m]);
        for m in next {
            if m == start {
                // Walk back from n to start, then read it forwards.
                let mut path = vec![graph[start].to_string()];
                let mut cur = n;
                while cur != start {
                    path.push(graph[cur].to_string());
                    cur = prev[&cur];
                }
                path.push(graph[start].to_string());
                path.reverse();
                return Some(path);
            }
            if let std::collections::btree_map::Entry::Vacant(e) = prev.entry(m) {
                e.insert(n);
                queue.push_back(m);
            }
        }
    }
    None
}

/// Reads a manifest or `.env` file; a file that is not UTF-8 is an error
/// at the line and column of its first bad byte (`display` names it).
fn read_utf8(path: &Path, display: &str) -> Result<String, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let bad = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let valid = std::str::from_utf8(&bytes[..bad]).expect("valid up to here");
        let line = valid.matches('\n').count() + 1;
        let col = valid.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        LoadError::Invalid(vec![Diagnostic {
            location: format!("{display}:{line}:{col}"),
            path: String::new(),
            message: format!(
                "the file is not UTF-8 text (byte 0x{:02x}): save it as UTF-8",
                bytes[bad]
            ),
        }])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names() {
        assert_eq!(normalise_project_name("My App.v2"), "myappv2");
        assert_eq!(normalise_project_name("__x"), "x");
        assert_eq!(normalise_project_name("-_-"), "");
        assert!(is_valid_project_name("web_1-a"));
        assert!(!is_valid_project_name("Web"));
        assert!(!is_valid_project_name("_web"));
    }

    #[test]
    fn cycles_are_named_in_order() {
        let text = "[services.a]\nimage='x'\ndepends_on=['b']\n[services.b]\nimage='x'\ndepends_on=['c']\n[services.c]\nimage='x'\ndepends_on=['a']\n[services.d]\nimage='x'\ndepends_on=['a']\n";
        let node = source::parse(text, 0).unwrap();
        let m: Manifest = from_node(&node).unwrap();
        assert_eq!(find_cycle(&m).unwrap(), ["a", "b", "c", "a"]);
    }
}
