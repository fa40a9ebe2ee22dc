//! The parsed form of a Dockerfile: stages of instructions, with the line
//! each came from. Words are kept as written (`$VAR` unexpanded): which
//! instructions expand variables, and with which values, is the builder's
//! business (see [`super::expand`]), because ARG and ENV change them from
//! step to step.
//!
//! Reference: <https://docs.docker.com/reference/dockerfile/>.

/// A whole Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// `ARG`s before the first `FROM` (usable in `FROM` lines only, unless
    /// redeclared inside a stage).
    pub global_args: Vec<ArgDecl>,
    pub stages: Vec<Stage>,
}

/// One `FROM` and what follows it up to the next `FROM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Zero-based position, which `COPY --from=N` may name.
    pub index: usize,
    /// `FROM image AS name`: the name, lower-cased.
    pub name: Option<String>,
    /// The base as written (may hold `$VAR`s from global ARGs); `scratch`
    /// for an empty base; may name an earlier stage.
    pub base: String,
    /// `FROM --platform=...`, as written.
    pub platform: Option<String>,
    /// 1-based line of the `FROM`.
    pub line: usize,
    pub instructions: Vec<Instruction>,
}

/// One instruction with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based line where the instruction starts.
    pub line: usize,
    /// The instruction as written, continuation lines joined with a space
    /// and the escape-newline removed, comments inside it dropped
    /// (`RUN apt-get update &&     apt-get install x`); shown in
    /// `Step N/M : ...` and part of the cache key.
    pub text: String,
    pub kind: Kind,
}

/// A command given in shell form (run through the stage's SHELL) or exec form (JSON array).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Shell(String),
    Exec(Vec<String>),
}

/// `ARG NAME[=default]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    pub default: Option<String>,
}

/// A here-document (`<<EOF` ... `EOF`, `<<-EOF` strips leading tabs,
/// `<<"EOF"`/`<<'EOF'` means no expansion).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word (`EOF`), which is also the file name for COPY.
    pub name: String,
    /// The body, lines joined with `\n`, ending with `\n`.
    pub content: String,
    /// Whether `$VAR`s in the body are expanded (delimiter not quoted).
    pub expand: bool,
    /// `<<-`: leading tabs were stripped from the body lines.
    pub strip_tabs: bool,
}

/// `COPY`/`ADD` flags and operands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySpec {
    /// Sources as written (context paths, may hold globs and `$VAR`s); for
    /// heredoc sources, the heredoc's name (and see `heredocs`).
    pub sources: Vec<String>,
    /// Destination as written.
    pub dest: String,
    /// `--from=stage|index|image`.
    pub from: Option<String>,
    /// `--chown=user[:group]`.
    pub chown: Option<String>,
    /// `--chmod=0755` (octal, as written).
    pub chmod: Option<String>,
    /// `--link` (accepted; berth's layers are always independent).
    pub link: bool,
    pub heredocs: Vec<Heredoc>,
}

/// `HEALTHCHECK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`.
    None,
    Check {
        /// `CMD` in shell or exec form.
        command: Command,
        /// Durations as written (`30s`, `1m30s`).
        interval: Option<String>,
        timeout: Option<String>,
        start_period: Option<String>,
        start_interval: Option<String>,
        retries: Option<u32>,
    },
}

/// What an instruction does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `RUN [--mount=...] cmd`, with its here-documents (their bodies are
    /// fed to the shell as the command when the command is only heredocs,
    /// as BuildKit does).
    Run {
        command: Command,
        heredocs: Vec<Heredoc>,
        /// `--network=...`, `--mount=...` etc. as written (the builder
        /// rejects those it does not support).
        flags: Vec<String>,
    },
    Cmd(Command),
    Entrypoint(Command),
    Copy(CopySpec),
    Add(CopySpec),
    /// `ENV K=V K2="v 2"` or the legacy `ENV K V`; values as written (quotes removed).
    Env(Vec<(String, String)>),
    Arg(Vec<ArgDecl>),
    /// `LABEL k=v ...`, quotes removed.
    Label(Vec<(String, String)>),
    Workdir(String),
    User(String),
    /// `EXPOSE 80 443/tcp`, as written.
    Expose(Vec<String>),
    /// `VOLUME ["/a"]` or `VOLUME /a /b`.
    Volume(Vec<String>),
    StopSignal(String),
    Healthcheck(Healthcheck),
    /// `SHELL ["/bin/bash", "-c"]` (exec form only).
    Shell(Vec<String>),
    /// `MAINTAINER name` (deprecated; becomes the `author`).
    Maintainer(String),
    /// `ONBUILD INSTRUCTION`: the trigger text, recorded in the config.
    Onbuild(String),
}
