//! The build engine: a parsed Dockerfile and a context in, an image out, the
//! way Docker's classic builder does it
//! (<https://docs.docker.com/reference/dockerfile/>).
//!
//! Every step makes an image (intermediate images are untagged): `RUN` runs
//! a build container and commits its changes ([`super::run`]), `COPY`/`ADD`
//! write a layer straight from the sources ([`super::layer`]), the other
//! instructions only edit the config (a history entry with `empty_layer`).
//! Each step is first looked up in the build cache by its key
//! ([`super::cache`]); a hit reuses the image. The output is the classic
//! one: `Step 2/5 : RUN …`, ` ---> Running in …`, ` ---> Using cache`,
//! ` ---> 38ec9aea7e10`, `Successfully built …`, `Successfully tagged …`.
//!
//! Stages: `--target` (or the last stage) and the stages it needs (as its
//! base or through `COPY --from`) are built, in file order; others are
//! skipped. `ARG` before the first `FROM` feeds `FROM` lines; `ARG` in a
//! stage declares a build argument for that stage, whose value is
//! `--build-arg` or its default; ENV wins over ARG when both name a
//! variable.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

use super::cache::{self, CacheIndex, StepInputs};
use super::config::{absolute, edit_config, strip_onbuild};
use super::context::{self, BuildContext, ContextError, Excludes, NoExcludes, Selected};
use super::derive;
use super::dockerfile::{self, Command, CopySpec, Dockerfile, Instruction, Kind, Stage};
use super::ignore::DockerIgnore;
use super::layer::{self, CopyOpts, LayerWriter};
use super::mount::{self, Prepared, SecretSource};
use super::rootview::{self, RootView, ViewError};
use super::run::{self, RunError, RunSpec};
use crate::image::digest::Digest;
use crate::image::reference::Reference;
use crate::image::store::{Image, ImageStore, StoreError};
use crate::state::StateRoot;

/// What to build.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// The build context directory.
    pub context: PathBuf,
    /// The Dockerfile (default: `Dockerfile` in the context).
    pub dockerfile: Option<PathBuf>,
    /// Tags for the final image.
    pub tags: Vec<Reference>,
    /// `--build-arg K=V`.
    pub build_args: BTreeMap<String, String>,
    /// `--target`: the stage to build (default: the last).
    pub target: Option<String>,
    /// `--no-cache`: rerun every step (results are still recorded).
    pub no_cache: bool,
    /// `--pull`: pull base images even when present.
    pub pull: bool,
    /// `-q`: print nothing (the caller prints the id).
    pub quiet: bool,
    /// `--network` of RUN containers (default: `default`, the bridge, as Docker).
    pub network: Option<String>,
    /// `--secret id=…`: what `RUN --mount=type=secret` mounts, by id.
    pub secrets: BTreeMap<String, SecretSource>,
    /// Set (by a signal handler) to stop the build before its next step; a
    /// running build container is removed.
    pub interrupted: Option<&'static AtomicBool>,
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("reading the Dockerfile {path}: {source}")]
    Dockerfile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("dockerfile parse error {0}")]
    Parse(String),
    #[error(".dockerignore: {0}")]
    Ignore(String),
    #[error("the Dockerfile has no FROM: nothing to build")]
    NoStages,
    #[error("ARG {name} before FROM: {message}")]
    GlobalArg { name: String, message: String },
    #[error("no image was generated: the target stage is FROM scratch with no instructions")]
    NoImage,
    #[error("failed to reach build target {0} in Dockerfile")]
    UnknownTarget(String),
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
    #[error("The command '{command}' returned a non-zero code: {code}")]
    RunFailed { command: String, code: i32 },
    #[error("line {line}: {source}")]
    Context { line: usize, source: ContextError },
    #[error(transparent)]
    ContextRoot(ContextError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    View(#[from] ViewError),
    #[error(transparent)]
    Layer(#[from] layer::LayerError),
    #[error(transparent)]
    Cache(#[from] cache::CacheError),
    #[error("pulling {reference}: {message}")]
    Pull { reference: String, message: String },
    #[error("writing the build output: {0}")]
    Output(#[from] std::io::Error),
    #[error("the build was interrupted")]
    Interrupted,
}

struct IgnoreRules(DockerIgnore);

impl Excludes for IgnoreRules {
    fn is_excluded(&self, rel: &str) -> bool {
        self.0.is_excluded(rel)
    }
    fn excludes_dir_entirely(&self, dir: &str) -> bool {
        self.0.excludes_dir_entirely(dir)
    }
}

const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// The mutable state of one stage while its steps run.
struct StageState {
    image: Option<Image>,
    /// Build args declared in the stage, with their values.
    args: BTreeMap<String, String>,
    shell: Vec<String>,
    cmd_set: bool,
    /// The base image's ONBUILD triggers ran: the next step's image drops them.
    clear_onbuild: bool,
}

impl StageState {
    /// The stage's environment: the image's `Env`, with Docker's default
    /// `PATH` when the base has none (as every step's image will have it).
    fn env(&self, store: &ImageStore) -> Result<Vec<(String, String)>, BuildError> {
        let mut cfg = derive::parent_config(store, self.image.as_ref())?;
        derive::ensure_path(&mut cfg);
        Ok(cfg["config"]["Env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e.as_str()?.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .unwrap_or_default())
    }

    fn config(&self, store: &ImageStore) -> Result<Value, BuildError> {
        Ok(derive::parent_config(store, self.image.as_ref())?)
    }
}

/// Builds the image `req` describes; progress goes to `out` (nothing when
/// `req.quiet`). Returns the final image.
pub fn build(
    root: &StateRoot,
    req: &BuildRequest,
    out: &mut dyn Write,
) -> Result<Image, BuildError> {
    let mut sink = std::io::sink();
    let out: &mut dyn Write = if req.quiet { &mut sink } else { out };
    let path = req
        .dockerfile
        .clone()
        .unwrap_or_else(|| req.context.join("Dockerfile"));
    let text = std::fs::read_to_string(&path).map_err(|source| BuildError::Dockerfile {
        path: path.clone(),
        source,
    })?;
    let file = dockerfile::parse(&text).map_err(|e| BuildError::Parse(e.to_string()))?;
    let escape = escape_of(&text);
    let excludes: Box<dyn Excludes> = match read_ignore_file(&path, &req.context)? {
        Some(t) => Box::new(IgnoreRules(
            DockerIgnore::parse(&t).map_err(|e| BuildError::Ignore(e.to_string()))?,
        )),
        None => Box::new(NoExcludes),
    };
    let ctx = BuildContext::new(&req.context, excludes).map_err(BuildError::ContextRoot)?;
    for id in run::reap_orphans(root)? {
        tracing::info!("removed build container {id}: its build was killed");
    }
    let store = ImageStore::open(root)?;
    // Each step's layer and config are written before its image is indexed.
    let _lease = store.lease()?;
    let cache = CacheIndex::open(&root.path().join("build-cache"))?;
    let mut b = Builder {
        root,
        req,
        store,
        cache,
        ctx,
        out,
        consumed: BTreeSet::new(),
        escape,
        step: 0,
        total: 0,
        built: BTreeMap::new(),
    };
    let image = b.run(&file)?;
    let unused: Vec<&String> = req
        .build_args
        .keys()
        .filter(|k| !b.consumed.contains(*k))
        .collect();
    if !unused.is_empty() {
        let names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
        writeln!(
            b.out,
            "[Warning] One or more build-args [{}] were not consumed",
            names.join(" ")
        )?;
    }
    writeln!(b.out, "Successfully built {}", image.id.short())?;
    for t in &req.tags {
        b.store.with_lock(|l| l.tag(t, &image.manifest_digest))?;
        writeln!(b.out, "Successfully tagged {}", t.familiar())?;
    }
    Ok(b.store.resolve(&image.id.to_string())?)
}

/// The ignore file of a build, BuildKit's rule
/// (<https://docs.docker.com/build/concepts/context/#filename-and-location>):
/// `<Dockerfile>.dockerignore` next to the Dockerfile (`app.Dockerfile` →
/// `app.Dockerfile.dockerignore`) when it exists, else the context's
/// `.dockerignore`; `None` when neither does.
fn read_ignore_file(
    dockerfile: &std::path::Path,
    context: &std::path::Path,
) -> Result<Option<String>, BuildError> {
    let mut beside = dockerfile.as_os_str().to_owned();
    beside.push(".dockerignore");
    for p in [PathBuf::from(beside), context.join(".dockerignore")] {
        match std::fs::read_to_string(&p) {
            Ok(t) => return Ok(Some(t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(BuildError::Ignore(format!("{}: {e}", p.display()))),
        }
    }
    Ok(None)
}

struct Builder<'a> {
    root: &'a StateRoot,
    req: &'a BuildRequest,
    store: ImageStore,
    cache: CacheIndex,
    ctx: BuildContext,
    out: &'a mut dyn Write,
    consumed: BTreeSet<String>,
    /// The `# escape=` character words were written with.
    escape: char,
    step: usize,
    total: usize,
    /// Results of built stages, by index.
    built: BTreeMap<usize, Option<Image>>,
}

/// The stage `name` (a name or an index) refers to among `stages[..before]`.
fn stage_ref(stages: &[Stage], before: usize, name: &str) -> Option<usize> {
    let lower = name.to_ascii_lowercase();
    if let Some(s) = stages[..before]
        .iter()
        .rev()
        .find(|s| s.name.as_deref() == Some(lower.as_str()))
    {
        return Some(s.index);
    }
    match name.parse::<usize>() {
        Ok(n) if n < before => Some(n),
        _ => None,
    }
}

/// `FROM …` as written (the syntax tree keeps its parts).
fn from_text(s: &Stage) -> String {
    let mut t = String::from("FROM ");
    if let Some(p) = &s.platform {
        t.push_str(&format!("--platform={p} "));
    }
    t.push_str(&s.base);
    if let Some(n) = &s.name {
        t.push_str(&format!(" AS {n}"));
    }
    t
}

/// The escape character of a Dockerfile: its `# escape=` parser directive
/// (among the directives at the very top), else `\`.
pub fn escape_of(text: &str) -> char {
    for line in text.trim_start_matches('\u{feff}').lines() {
        let Some(rest) = line.trim_start().strip_prefix('#') else {
            break;
        };
        let Some((key, value)) = rest.split_once('=') else {
            break;
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "escape" => return if value.trim() == "`" { '`' } else { '\\' },
            "syntax" | "check" => {}
            _ => break,
        }
    }
    '\\'
}

fn expand_with(
    word: &str,
    escape: char,
    line: usize,
    vars: &BTreeMap<String, String>,
) -> Result<String, BuildError> {
    expand_by(dockerfile::expand, word, escape, line, vars)
}

/// The shape of the parser's expanders (`expand`, `expand_heredoc`).
type Expander =
    fn(&str, char, &dyn Fn(&str) -> Option<String>) -> Result<String, dockerfile::ExpandError>;

/// Runs one of the parser's expanders over `vars`, errors placed at `line`.
fn expand_by(
    expander: Expander,
    text: &str,
    escape: char,
    line: usize,
    vars: &BTreeMap<String, String>,
) -> Result<String, BuildError> {
    let lookup = |k: &str| vars.get(k).cloned();
    expander(text, escape, &lookup).map_err(|e| BuildError::Line {
        line,
        message: e.to_string(),
    })
}

fn short(id: &Digest) -> &str {
    id.short()
}

impl Builder<'_> {
    /// The stages needed for the target, in order.
    fn plan(
        &self,
        file: &Dockerfile,
        globals: &BTreeMap<String, String>,
    ) -> Result<Vec<usize>, BuildError> {
        let target = match &self.req.target {
            Some(t) => {
                let lower = t.to_ascii_lowercase();
                file.stages
                    .iter()
                    .find(|s| s.name.as_deref() == Some(lower.as_str()))
                    .map(|s| s.index)
                    .ok_or_else(|| BuildError::UnknownTarget(t.clone()))?
            }
            None => file.stages.len() - 1,
        };
        let mut need = BTreeSet::new();
        let mut todo = vec![target];
        while let Some(i) = todo.pop() {
            if !need.insert(i) {
                continue;
            }
            let s = &file.stages[i];
            let base = expand_with(&s.base, self.escape, s.line, globals)?;
            if let Some(d) = stage_ref(&file.stages, i, &base) {
                todo.push(d);
            }
            for ins in &s.instructions {
                // (--from may use global ARGs; stage ARGs are not known yet.)
                let expand = |f: &str| {
                    expand_with(f, self.escape, ins.line, globals).unwrap_or_else(|_| f.to_string())
                };
                let from = match &ins.kind {
                    Kind::Copy(c) | Kind::Add(c) => c.from.iter().map(|f| expand(f)).collect(),
                    // RUN --mount=type=bind,from=STAGE
                    Kind::Run { flags, .. } => flags
                        .iter()
                        .filter_map(|f| f.strip_prefix("--mount="))
                        .filter_map(|m| mount::parse(&expand(m)).ok())
                        .filter_map(|m| match m.kind {
                            mount::Kind::Bind { from, .. } => from,
                            _ => None,
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                for f in from {
                    if let Some(d) = stage_ref(&file.stages, i, &f) {
                        todo.push(d);
                    }
                }
            }
        }
        Ok(need.into_iter().collect())
    }

    fn run(&mut self, file: &Dockerfile) -> Result<Image, BuildError> {
        if file.stages.is_empty() {
            return Err(BuildError::NoStages);
        }
        // Global ARGs: usable in FROM lines.
        let mut globals = BTreeMap::new();
        for a in &file.global_args {
            let v = match self.req.build_args.get(&a.name) {
                Some(v) => {
                    self.consumed.insert(a.name.clone());
                    Some(v.clone())
                }
                None => match &a.default {
                    Some(d) => Some(
                        dockerfile::expand(d, self.escape, &|k: &str| globals.get(k).cloned())
                            .map_err(|e| BuildError::GlobalArg {
                                name: a.name.clone(),
                                message: e.to_string(),
                            })?,
                    ),
                    None => None,
                },
            };
            if let Some(v) = v {
                globals.insert(a.name.clone(), v);
            }
        }
        let plan = self.plan(file, &globals)?;
        self.total = plan
            .iter()
            .map(|&i| 1 + file.stages[i].instructions.len())
            .sum();
        let mut last = None;
        for &i in &plan {
            let img = self.stage(file, &file.stages[i], &globals)?;
            self.built.insert(i, img.clone());
            last = img;
        }
        last.ok_or(BuildError::NoImage)
    }

    fn interrupted(&self) -> bool {
        self.req
            .interrupted
            .is_some_and(|f| f.load(Ordering::SeqCst))
    }

    fn header(&mut self, text: &str) -> Result<(), BuildError> {
        if self.interrupted() {
            return Err(BuildError::Interrupted);
        }
        self.step += 1;
        writeln!(self.out, "Step {}/{} : {}", self.step, self.total, text)?;
        Ok(())
    }

    /// Finds an image by name, pulling it when missing or asked to.
    fn base_image(&mut self, name: &str, line: usize) -> Result<Image, BuildError> {
        if !self.req.pull {
            match self.store.resolve(name) {
                Ok(i) => return Ok(i),
                Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let reference = Reference::parse(name).map_err(|e| BuildError::Line {
            line,
            message: format!("invalid image name {name:?}: {e}"),
        })?;
        let pulled = if self.req.pull {
            crate::registry::pull(
                self.root,
                &reference,
                None,
                &crate::registry::progress::Progress::auto(),
            )
        } else {
            crate::registry::pull_missing(self.root, &reference, None)
        };
        pulled.map_err(|e| BuildError::Pull {
            reference: reference.familiar(),
            message: e.to_string(),
        })
    }

    fn stage(
        &mut self,
        file: &Dockerfile,
        stage: &Stage,
        globals: &BTreeMap<String, String>,
    ) -> Result<Option<Image>, BuildError> {
        self.header(&from_text(stage))?;
        let base = expand_with(&stage.base, self.escape, stage.line, globals)?;
        let image = if let Some(d) = stage_ref(&file.stages, stage.index, &base) {
            self.built.get(&d).cloned().flatten()
        } else if base.eq_ignore_ascii_case("scratch") {
            None
        } else {
            Some(self.base_image(&base, stage.line)?)
        };
        if let Some(i) = &image {
            writeln!(self.out, " ---> {}", short(&i.id))?;
        }
        let mut st = StageState {
            shell: image
                .as_ref()
                .and_then(|i| {
                    derive::parent_config(&self.store, Some(i))
                        .ok()
                        .and_then(|c| {
                            serde_json::from_value::<Vec<String>>(c["config"]["Shell"].clone()).ok()
                        })
                })
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| DEFAULT_SHELL.iter().map(|s| s.to_string()).collect()),
            image,
            args: BTreeMap::new(),
            cmd_set: false,
            clear_onbuild: false,
        };
        // The base image's ONBUILD triggers run first, as part of FROM.
        let triggers: Vec<String> = match &st.image {
            Some(_) => st.config(&self.store)?["config"]["OnBuild"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            None => Vec::new(),
        };
        if !triggers.is_empty() {
            let n = triggers.len();
            writeln!(
                self.out,
                "# Executing {n} build trigger{}",
                if n == 1 { "" } else { "s" }
            )?;
            st.clear_onbuild = true;
            for t in &triggers {
                let parsed = dockerfile::parse(&format!("FROM scratch\n{t}\n"))
                    .map_err(|e| BuildError::Parse(format!("in ONBUILD trigger {t:?}: {e}")))?;
                let Some(ins) = parsed.stages.first().and_then(|s| s.instructions.first()) else {
                    continue;
                };
                if matches!(ins.kind, Kind::Onbuild(_) | Kind::Maintainer(_)) {
                    return Err(BuildError::Line {
                        line: stage.line,
                        message: format!("ONBUILD trigger {t:?} is not allowed in a trigger"),
                    });
                }
                let ins = Instruction {
                    line: stage.line,
                    ..ins.clone()
                };
                self.instruction(file, stage, globals, &mut st, &ins)?;
                st.clear_onbuild = false;
            }
        }
        for ins in &stage.instructions {
            self.header(&ins.text)?;
            self.instruction(file, stage, globals, &mut st, ins)?;
            st.clear_onbuild = false;
        }
        Ok(st.image)
    }

    /// Variables visible to expansion: ARGs, overridden by ENV.
    fn vars(&self, st: &StageState) -> Result<BTreeMap<String, String>, BuildError> {
        let mut v = st.args.clone();
        for (k, val) in st.env(&self.store)? {
            v.insert(k, val);
        }
        Ok(v)
    }

    fn cached(&mut self, key: &str) -> Result<Option<Image>, BuildError> {
        if self.req.no_cache {
            return Ok(None);
        }
        let Some(id) = self.cache.get(key) else {
            return Ok(None);
        };
        match self.store.resolve(&id.to_string()) {
            Ok(img) => {
                writeln!(self.out, " ---> Using cache")?;
                writeln!(self.out, " ---> {}", short(&img.id))?;
                Ok(Some(img))
            }
            Err(_) => Ok(None),
        }
    }

    fn done(&mut self, key: &str, img: Image) -> Result<Image, BuildError> {
        self.cache.put(key, &img.id)?;
        writeln!(self.out, " ---> {}", short(&img.id))?;
        Ok(img)
    }

    fn instruction(
        &mut self,
        file: &Dockerfile,
        stage: &Stage,
        globals: &BTreeMap<String, String>,
        st: &mut StageState,
        ins: &Instruction,
    ) -> Result<(), BuildError> {
        let line = ins.line;
        let vars = self.vars(st)?;
        let escape = self.escape;
        let x = |w: &str| expand_with(w, escape, line, &vars);
        // The instruction as expanded (its canonical form is the cache key's).
        let expanded: Kind = match &ins.kind {
            Kind::Env(kv) => Kind::Env(
                kv.iter()
                    .map(|(k, v)| Ok((k.clone(), x(v)?)))
                    .collect::<Result<_, BuildError>>()?,
            ),
            Kind::Label(kv) => Kind::Label(
                kv.iter()
                    .map(|(k, v)| Ok((x(k)?, x(v)?)))
                    .collect::<Result<_, BuildError>>()?,
            ),
            Kind::Workdir(w) => Kind::Workdir(x(w)?),
            Kind::User(u) => Kind::User(x(u)?),
            Kind::Expose(p) => Kind::Expose(p.iter().map(|w| x(w)).collect::<Result<_, _>>()?),
            Kind::Volume(p) => Kind::Volume(p.iter().map(|w| x(w)).collect::<Result<_, _>>()?),
            Kind::StopSignal(s) => Kind::StopSignal(x(s)?),
            Kind::Copy(c) => Kind::Copy(expand_copy(c, &x)?),
            Kind::Add(c) => Kind::Add(expand_copy(c, &x)?),
            other => other.clone(),
        };
        if let Kind::Arg(decls) = &expanded {
            for a in decls {
                let v = match self.req.build_args.get(&a.name) {
                    Some(v) => {
                        self.consumed.insert(a.name.clone());
                        Some(v.clone())
                    }
                    None => match &a.default {
                        Some(d) => Some(x(d)?),
                        None => globals.get(&a.name).cloned(),
                    },
                };
                match v {
                    Some(v) => {
                        st.args.insert(a.name.clone(), v);
                    }
                    None => {
                        st.args.remove(&a.name);
                    }
                }
            }
        }
        let canonical = if st.clear_onbuild {
            format!("{expanded:?} (base ONBUILD triggers dropped)")
        } else {
            format!("{expanded:?}")
        };
        let clear = st.clear_onbuild;
        match &expanded {
            Kind::Run {
                command,
                heredocs,
                flags,
            } => {
                if let Some(f) = flags
                    .iter()
                    .find(|f| !f.starts_with("--network=") && !f.starts_with("--mount="))
                {
                    return Err(BuildError::Line {
                        line,
                        message: format!("RUN {f} is not supported by berth's builder"),
                    });
                }
                let at_line = |e: mount::MountError| BuildError::Line {
                    line,
                    message: e.to_string(),
                };
                let workdir = st.config(&self.store)?["config"]["WorkingDir"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                let mut mounts = Vec::new();
                for spec in flags.iter().filter_map(|f| f.strip_prefix("--mount=")) {
                    let mut m = mount::parse(&x(spec)?).map_err(at_line)?;
                    m.target = absolute(&workdir, &m.target);
                    mounts.push(m);
                }
                // Bind sources: selected now, for the key and the copy.
                let mut views = Vec::new();
                let mut bind_sources = Vec::new();
                let mut bind_digests = String::new();
                for m in &mounts {
                    let mount::Kind::Bind { source, from, .. } = &m.kind else {
                        continue;
                    };
                    let sel = match from {
                        None => self.ctx.select(source),
                        Some(f) => {
                            let img = match stage_ref(&file.stages, stage.index, f) {
                                Some(d) => self.built.get(&d).cloned().flatten(),
                                None => Some(self.base_image(f, line)?),
                            };
                            let view = RootView::open(&self.store, img.as_ref())?;
                            let c = BuildContext::new(view.path(), Box::new(NoExcludes))
                                .map_err(|source| BuildError::Context { line, source })?;
                            views.push(view);
                            c.select(source)
                        }
                    }
                    .map_err(|source| BuildError::Context { line, source })?;
                    if sel.len() != 1 {
                        return Err(BuildError::Line {
                            line,
                            message: format!(
                                "RUN --mount=type=bind,source={source}: the source must name one file or directory"
                            ),
                        });
                    }
                    bind_digests.push_str(
                        &context::content_digest(&sel)
                            .map_err(|source| BuildError::Context { line, source })?,
                    );
                    bind_digests.push('\n');
                    bind_sources.extend(sel);
                }
                let canonical = if mounts.is_empty() {
                    canonical.clone()
                } else {
                    format!("{canonical} mounts {mounts:?}")
                };
                let network = flags
                    .iter()
                    .find_map(|f| f.strip_prefix("--network="))
                    .map(str::to_string)
                    .or_else(|| self.req.network.clone())
                    .unwrap_or_else(|| "default".into());
                let argv = run_argv(&st.shell, command, heredocs);
                // A RUN sees every ARG in scope as an environment variable
                // (unless an ENV of the same name hides it): all of them
                // are its inputs (BuildKit's rule, see super::cache).
                let env_names: BTreeSet<String> =
                    st.env(&self.store)?.into_iter().map(|(k, _)| k).collect();
                let run_args: BTreeMap<String, String> = st
                    .args
                    .iter()
                    .filter(|(k, _)| !env_names.contains(*k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let bind_content = Digest::of_bytes(bind_digests.as_bytes()).to_string();
                let key = cache::key(&StepInputs {
                    parent: st.image.as_ref().map(|i| &i.id),
                    instruction: &canonical,
                    args: run_args.clone(),
                    content: (!bind_sources.is_empty()).then_some(bind_content.as_str()),
                });
                if let Some(img) = self.cached(&key)? {
                    st.image = Some(img);
                    return Ok(());
                }
                let Some(parent) = st.image.clone() else {
                    return Err(BuildError::Line {
                        line,
                        message:
                            "RUN needs a base image with a shell; FROM scratch has nothing to run"
                                .into(),
                    });
                };
                let env = run_args.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let tmp = self.root.tmp_dir();
                let mut prepared = Prepared::default();
                let mut binds = bind_sources.iter();
                for m in &mounts {
                    match &m.kind {
                        mount::Kind::Cache { .. } => {
                            prepared.cache(self.root.path(), &tmp, &m.target, &m.kind)
                        }
                        mount::Kind::Secret { .. } => {
                            prepared.secret(&tmp, &m.target, &m.kind, &self.req.secrets)
                        }
                        mount::Kind::Bind {
                            from, readwrite, ..
                        } => {
                            let sel = binds.next().expect("one selection per bind mount");
                            prepared.bind_copy(&tmp, &m.target, sel, from.is_some(), *readwrite)
                        }
                        mount::Kind::Tmpfs { size } => {
                            prepared.tmpfs(&m.target, size.as_deref());
                            Ok(())
                        }
                    }
                    .map_err(at_line)?;
                }
                drop(views);
                let spec = RunSpec {
                    image: parent.id.clone(),
                    argv: argv.clone(),
                    env,
                    network,
                    volumes: prepared.volumes.clone(),
                    tmpfs: prepared.tmpfs.clone(),
                };
                let container = run::create(self.root, &spec)?;
                let cid = container.id.chars().take(12).collect::<String>();
                writeln!(self.out, " ---> Running in {cid}")?;
                let code = container.start(self.out, self.req.interrupted)?;
                if code != 0 {
                    drop(container);
                    if self.interrupted() {
                        return Err(BuildError::Interrupted);
                    }
                    return Err(BuildError::RunFailed {
                        command: argv.join(" "),
                        code,
                    });
                }
                let layer = container.layer(self.root, &self.store, &parent, &prepared.targets)?;
                let created_by = argv.join(" ");
                let img =
                    derive::derive(&self.store, Some(&parent), Some(layer), &created_by, |c| {
                        strip_onbuild(c, clear)
                    })?;
                drop(container);
                writeln!(self.out, "Removing intermediate container {cid}")?;
                st.image = Some(self.done(&key, img)?);
            }
            Kind::Copy(c) | Kind::Add(c) => {
                let is_add = matches!(expanded, Kind::Add(_));
                self.copy(file, stage, st, line, &canonical, c, is_add)?;
            }
            other => {
                // What a config step makes depends on the args only through
                // its expanded words, which the canonical form holds.
                let key = cache::key(&StepInputs {
                    parent: st.image.as_ref().map(|i| &i.id),
                    instruction: &canonical,
                    args: BTreeMap::new(),
                    content: None,
                });
                if let Some(img) = self.cached(&key)? {
                    if let Kind::Shell(s) = other {
                        st.shell = s.clone();
                    }
                    if matches!(other, Kind::Cmd(_)) {
                        st.cmd_set = true;
                    }
                    st.image = Some(img);
                    return Ok(());
                }
                let cfg = st.config(&self.store)?;
                let old_workdir = cfg["config"]["WorkingDir"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                // WORKDIR makes the directory when the image lacks it.
                let mut layer = None;
                if let Kind::Workdir(w) = other {
                    let dir = absolute(&old_workdir, w);
                    let view = RootView::open(&self.store, st.image.as_ref())?;
                    if !view.is_dir(&dir) {
                        let rel = view.real_path(&dir);
                        let mut blob = self.store.blob_writer()?;
                        let mut w = LayerWriter::new(&mut blob);
                        w.parents(&rel, &|p| view.exists(p), (0, 0))?;
                        w.dir(&rel, 0o755, (0, 0), now())?;
                        w.finish()?;
                        layer = Some(blob.commit(None)?);
                    }
                }
                let shell = st.shell.clone();
                let cmd_set = st.cmd_set;
                let mut bad: Option<String> = None;
                let img = derive::derive(
                    &self.store,
                    st.image.as_ref(),
                    layer,
                    &format!("/bin/sh -c #(nop) {}", ins.text),
                    |c| {
                        strip_onbuild(c, clear);
                        if let Err(e) = edit_config(c, other, &shell, cmd_set, &old_workdir) {
                            bad = Some(e);
                        }
                    },
                )?;
                if let Some(message) = bad {
                    return Err(BuildError::Line { line, message });
                }
                match other {
                    Kind::Shell(s) => st.shell = s.clone(),
                    Kind::Cmd(_) => st.cmd_set = true,
                    _ => {}
                }
                st.image = Some(self.done(&key, img)?);
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn copy(
        &mut self,
        file: &Dockerfile,
        stage: &Stage,
        st: &mut StageState,
        line: usize,
        canonical: &str,
        c: &CopySpec,
        is_add: bool,
    ) -> Result<(), BuildError> {
        let what = if is_add { "ADD" } else { "COPY" };
        // Where sources come from: the context, or an image's files.
        let from_view = match &c.from {
            None => None,
            Some(f) => {
                let img = match stage_ref(&file.stages, stage.index, f) {
                    Some(d) => self.built.get(&d).cloned().flatten(),
                    None => Some(self.base_image(f, line)?),
                };
                Some(RootView::open(&self.store, img.as_ref())?)
            }
        };
        let from_ctx = match &from_view {
            Some(v) => Some(
                BuildContext::new(v.path(), Box::new(NoExcludes))
                    .map_err(|source| BuildError::Context { line, source })?,
            ),
            None => None,
        };
        let ctx = from_ctx.as_ref().unwrap_or(&self.ctx);
        enum Src<'h> {
            /// A here-document and its body (expanded when it expands).
            Heredoc(&'h dockerfile::Heredoc, String),
            Files(Vec<Selected>),
        }
        let mut sources = Vec::new();
        let mut digest_input = String::new();
        for s in &c.sources {
            if let Some(h) = c.heredocs.iter().find(|h| &h.name == s) {
                let body = if h.expand {
                    let vars = self.vars(st)?;
                    expand_heredoc(&h.content, self.escape, line, &vars)?
                } else {
                    h.content.clone()
                };
                digest_input.push_str(&format!("heredoc {} {body:?}\n", h.name));
                sources.push((s.clone(), Src::Heredoc(h, body)));
                continue;
            }
            if s.contains("://") || s.starts_with("git@") {
                return Err(BuildError::Line {
                    line,
                    message: format!(
                        "{what} {s}: remote sources are not supported (berth builds offline): download the file into the build context and {what} it from there"
                    ),
                });
            }
            let sel = ctx
                .select(s)
                .map_err(|source| BuildError::Context { line, source })?;
            digest_input.push_str(
                &context::content_digest(&sel)
                    .map_err(|source| BuildError::Context { line, source })?,
            );
            digest_input.push('\n');
            sources.push((s.clone(), Src::Files(sel)));
        }
        if sources.is_empty() {
            return Err(BuildError::Context {
                line,
                source: ContextError::Empty,
            });
        }
        let content = Digest::of_bytes(digest_input.as_bytes()).to_string();
        // The args reach a copy only through its expanded words and
        // here-documents, which the canonical form and content hold.
        let key = cache::key(&StepInputs {
            parent: st.image.as_ref().map(|i| &i.id),
            instruction: canonical,
            args: BTreeMap::new(),
            content: Some(&content),
        });
        if let Some(img) = self.cached(&key)? {
            st.image = Some(img);
            return Ok(());
        }
        let view = RootView::open(&self.store, st.image.as_ref())?;
        let cfg = st.config(&self.store)?;
        let workdir = cfg["config"]["WorkingDir"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let opts = CopyOpts {
            chown: match &c.chown {
                Some(spec) => Some(
                    chown_ids(&view, spec).map_err(|message| BuildError::Line { line, message })?,
                ),
                None => None,
            },
            chmod: match &c.chmod {
                Some(m) => Some(
                    u32::from_str_radix(m, 8)
                        .ok()
                        .filter(|m| *m <= 0o7777)
                        .ok_or_else(|| BuildError::Line {
                            line,
                            message: format!(
                                "invalid --chmod={m}: give octal permission bits such as 0755"
                            ),
                        })?,
                ),
                None => None,
            },
            keep_owner: c.from.is_some(),
        };
        let dest_abs = absolute(&workdir, &c.dest);
        let many = sources.len() > 1
            || sources
                .iter()
                .any(|(_, s)| matches!(s, Src::Files(v) if v.len() > 1));
        let dest_is_dir = c.dest.ends_with('/')
            || c.dest.ends_with("/.")
            || dest_abs == "/"
            || view.is_dir(&dest_abs);
        // Links on the way are followed inside the image, as Docker does
        // (a layer must not replace `/bin -> usr/bin` with a directory).
        let dest = if dest_is_dir {
            view.real_path(&dest_abs)
        } else {
            let (parent, name) = dest_abs.rsplit_once('/').unwrap_or(("", &dest_abs));
            layer::join(&view.real_path(parent), name)
        };
        if many && !dest_is_dir {
            return Err(BuildError::Line {
                line,
                message: format!("when using {what} with more than one source file, the destination must be a directory and end with a /"),
            });
        }
        let exists = |p: &str| view.exists(&format!("/{p}"));
        let mut blob = self.store.blob_writer()?;
        let mut w = LayerWriter::new(&mut blob);
        // Directories the copy creates: the --chown owner, else root.
        let owner = opts.chown.unwrap_or((0, 0));
        for (_, src) in &sources {
            match src {
                Src::Heredoc(h, body) => {
                    let target = if dest_is_dir {
                        layer::join(&dest, &h.name)
                    } else {
                        dest.clone()
                    };
                    w.parents(&target, &exists, owner)?;
                    w.bytes(&target, body.as_bytes(), opts)?;
                }
                Src::Files(sel) => {
                    for s in sel {
                        match s.top.kind {
                            context::EntryKind::Dir => {
                                if !dest.is_empty() {
                                    w.parents(&dest, &exists, owner)?;
                                    if !exists(&dest) {
                                        w.dir(&dest, 0o755, owner, now())?;
                                    }
                                }
                                for (rel, e) in &s.children {
                                    let target = layer::join(&dest, rel);
                                    w.entry(&target, e, opts)?;
                                }
                            }
                            _ if is_add
                                && s.top.kind == context::EntryKind::File
                                && layer::is_archive(&s.top.path) =>
                            {
                                if !dest.is_empty() {
                                    w.parents(&dest, &exists, owner)?;
                                    if !exists(&dest) {
                                        w.dir(&dest, 0o755, owner, now())?;
                                    }
                                }
                                let f = std::fs::File::open(&s.top.path)?;
                                let r = crate::image::layer::decompress(f)?;
                                w.archive(&s.top.rel, &dest, r, opts)?;
                            }
                            _ => {
                                let name = s.top.rel.rsplit('/').next().unwrap_or(&s.top.rel);
                                let target = if dest_is_dir {
                                    layer::join(&dest, name)
                                } else {
                                    dest.clone()
                                };
                                w.parents(&target, &exists, owner)?;
                                w.entry(&target, &s.top, opts)?;
                            }
                        }
                    }
                }
            }
        }
        w.finish()?;
        let layer = blob.commit(None)?;
        drop(view);
        drop(from_view);
        let created_by = format!("/bin/sh -c #(nop) {what} {content} in {dest_abs}");
        let clear = st.clear_onbuild;
        let img = derive::derive(
            &self.store,
            st.image.as_ref(),
            Some(layer),
            &created_by,
            |c| strip_onbuild(c, clear),
        )?;
        st.image = Some(self.done(&key, img)?);
        Ok(())
    }
}

fn expand_copy(
    c: &CopySpec,
    x: &dyn Fn(&str) -> Result<String, BuildError>,
) -> Result<CopySpec, BuildError> {
    let heredoc_names: BTreeSet<&str> = c.heredocs.iter().map(|h| h.name.as_str()).collect();
    Ok(CopySpec {
        sources: c
            .sources
            .iter()
            .map(|s| {
                if heredoc_names.contains(s.as_str()) {
                    Ok(s.clone())
                } else {
                    x(s)
                }
            })
            .collect::<Result<_, _>>()?,
        dest: x(&c.dest)?,
        from: c.from.as_deref().map(x).transpose()?,
        chown: c.chown.as_deref().map(x).transpose()?,
        chmod: c.chmod.as_deref().map(x).transpose()?,
        link: c.link,
        heredocs: c.heredocs.clone(),
    })
}

/// Expands `$VAR`s of a heredoc body (quotes are content there).
fn expand_heredoc(
    body: &str,
    escape: char,
    line: usize,
    vars: &BTreeMap<String, String>,
) -> Result<String, BuildError> {
    expand_by(dockerfile::expand_heredoc, body, escape, line, vars)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The argv of a RUN: SHELL + command, the exec form as is; a command that
/// is only a here-document runs the document's body.
pub fn run_argv(
    shell: &[String],
    command: &Command,
    heredocs: &[dockerfile::Heredoc],
) -> Vec<String> {
    match command {
        Command::Exec(v) => v.clone(),
        Command::Shell(s) => {
            let trimmed = s.trim();
            let script = if heredocs.len() == 1
                && trimmed.starts_with("<<")
                && !trimmed.contains(char::is_whitespace)
            {
                heredocs[0].content.clone()
            } else if heredocs.is_empty() {
                s.clone()
            } else {
                // The shell reads the documents itself.
                let mut t = s.clone();
                t.push('\n');
                for h in heredocs {
                    t.push_str(&h.content);
                    if !h.content.ends_with('\n') {
                        t.push('\n');
                    }
                    t.push_str(&h.name);
                    t.push('\n');
                }
                t
            };
            let mut v = shell.to_vec();
            v.push(script);
            v
        }
    }
}

/// `--chown=user[:group]` as numeric ids, names looked up in the image.
fn chown_ids(view: &RootView, spec: &str) -> Result<(u32, u32), String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = view.read_to_string("/etc/passwd");
    let groups = view.read_to_string("/etc/group");
    let (uid, _) = rootview::lookup_user(passwd.as_deref(), user)
        .ok_or_else(|| format!("--chown={spec}: no user {user:?} in the image's /etc/passwd"))?;
    let gid = match group {
        Some(g) => rootview::lookup_group(groups.as_deref(), g)
            .ok_or_else(|| format!("--chown={spec}: no group {g:?} in the image's /etc/group"))?,
        None => uid,
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh() -> Vec<String> {
        DEFAULT_SHELL.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn escape_directive() {
        assert_eq!(escape_of("FROM x\n"), '\\');
        assert_eq!(escape_of("# escape=`\nFROM x\n"), '`');
        assert_eq!(
            escape_of("# syntax=docker/dockerfile:1\n#escape = `\nFROM x\n"),
            '`'
        );
        assert_eq!(escape_of("# a comment\n# escape=`\nFROM x\n"), '\\');
        assert_eq!(escape_of("FROM x\n# escape=`\n"), '\\');
    }

    #[test]
    fn run_argv_forms() {
        assert_eq!(
            run_argv(&sh(), &Command::Shell("echo hi".into()), &[]),
            ["/bin/sh", "-c", "echo hi"]
        );
        assert_eq!(
            run_argv(&sh(), &Command::Exec(vec!["true".into()]), &[]),
            ["true"]
        );
        let doc = dockerfile::Heredoc {
            name: "EOF".into(),
            content: "echo one\necho two\n".into(),
            expand: true,
            strip_tabs: false,
        };
        assert_eq!(
            run_argv(
                &sh(),
                &Command::Shell("<<EOF".into()),
                std::slice::from_ref(&doc)
            ),
            ["/bin/sh", "-c", "echo one\necho two\n"]
        );
        assert_eq!(
            run_argv(&sh(), &Command::Shell("cat <<EOF > /f".into()), &[doc]),
            ["/bin/sh", "-c", "cat <<EOF > /f\necho one\necho two\nEOF\n"]
        );
    }

    #[test]
    fn stage_references() {
        let st = |i: usize, n: Option<&str>| Stage {
            index: i,
            name: n.map(str::to_string),
            base: "busybox".into(),
            platform: None,
            line: 1,
            instructions: vec![],
        };
        let stages = vec![st(0, Some("builder")), st(1, None), st(2, Some("final"))];
        assert_eq!(stage_ref(&stages, 2, "builder"), Some(0));
        assert_eq!(stage_ref(&stages, 2, "BUILDER"), Some(0));
        assert_eq!(stage_ref(&stages, 2, "1"), Some(1));
        assert_eq!(stage_ref(&stages, 1, "1"), None, "only earlier stages");
        assert_eq!(stage_ref(&stages, 2, "final"), None);
        assert_eq!(stage_ref(&stages, 2, "busybox"), None);
    }
}
