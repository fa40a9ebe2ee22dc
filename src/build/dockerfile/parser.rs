//! The Dockerfile parser, following BuildKit's front end
//! (`frontend/dockerfile/parser` and `instructions`):
//!
//! - parser directives at the very top (`# escape=` with `\` or `` ` ``,
//!   `# syntax=` and `# check=` accepted and ignored); the first comment,
//!   blank line or instruction ends them;
//! - `#` comment lines (after leading whitespace) are dropped, also between
//!   continuation lines, and so are blank continuation lines;
//! - a line ending in the escape character (trailing blanks allowed)
//!   continues on the next one; the escape and the newline are removed and
//!   the pieces joined as they are;
//! - instruction names are case-insensitive; `--flag[=value]` words right
//!   after the name are flags, checked per instruction;
//! - a JSON array of strings is the exec form, anything else (also invalid
//!   JSON) the shell form;
//! - here-documents (`<<EOF`, `<<-EOF`, `<<"EOF"`) for RUN, COPY and ADD:
//!   their bodies follow the instruction line and are neither comments nor
//!   continuations.
//!
//! Words are kept unexpanded (see [`super::expand`]); ENV, LABEL and ARG
//! values have their quotes removed by [`super::remove_quotes`], which keeps
//! what the quotes meant for a later [`super::expand`].
//!
//! Reference: <https://docs.docker.com/reference/dockerfile/>.

use std::collections::HashSet;

use super::ast::*;
use super::expand::{expand, remove_quotes};

/// A Dockerfile that cannot be parsed, with the 1-based line and column of
/// the offending text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}:{column}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

const INSTRUCTIONS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Parses a Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut p = Parser {
        lines,
        next: 0,
        escape: '\\',
    };
    p.directives()?;

    let mut df = Dockerfile {
        global_args: Vec::new(),
        stages: Vec::new(),
    };
    let mut names = HashSet::new();
    while let Some(logical) = p.logical_line() {
        if logical.text.trim().is_empty() {
            // A lone escape character continued into nothing.
            continue;
        }
        let (keyword, kw_off) = first_word(&logical.text, 0);
        let upper = keyword.to_ascii_uppercase();
        if !INSTRUCTIONS.contains(&upper.as_str()) {
            return Err(logical.error(kw_off, unknown_instruction(keyword)));
        }
        if df.stages.is_empty() && upper != "FROM" && upper != "ARG" {
            return Err(logical.error(
                kw_off,
                format!(
                    "{upper} before the first FROM: a Dockerfile starts with FROM \
                     (only ARG may come before it)"
                ),
            ));
        }
        let args_off = skip_ws(&logical.text, kw_off + keyword.len());
        let (flags, rest_off) = extract_flags(&logical.text, args_off);
        let mut bodies = Vec::new();
        if matches!(upper.as_str(), "RUN" | "COPY" | "ADD") {
            for (opener, off, name_off) in heredoc_openers(&logical.text, rest_off, p.escape) {
                let doc = p.heredoc_body(opener, &logical, off)?;
                bodies.push(Placed { doc, off, name_off });
            }
        }
        let line = logical.segs[0].line;
        let cx = Cx {
            logical: &logical,
            upper: &upper,
            args_off,
            escape: p.escape,
        };
        let kind = instruction(&cx, &flags, rest_off, bodies)?;
        let text = logical.text.trim_end().to_string();
        match kind {
            Parsed::From {
                base,
                name,
                platform,
                name_off,
            } => {
                if let Some(n) = &name {
                    if !names.insert(n.clone()) {
                        return Err(logical.error(name_off, format!("duplicate stage name {n:?}")));
                    }
                }
                df.stages.push(Stage {
                    index: df.stages.len(),
                    name,
                    base,
                    platform,
                    line,
                    instructions: Vec::new(),
                });
            }
            Parsed::Kind(Kind::Arg(args)) if df.stages.is_empty() => {
                df.global_args.extend(args);
            }
            Parsed::Kind(kind) => {
                let stage = df.stages.last_mut().expect("checked above");
                stage.instructions.push(Instruction { line, text, kind });
            }
        }
    }
    if df.stages.is_empty() {
        let line = text.lines().count().max(1);
        return Err(ParseError {
            line,
            column: 1,
            message: "no FROM instruction: a Dockerfile needs at least one stage".into(),
        });
    }
    Ok(df)
}

fn unknown_instruction(word: &str) -> String {
    let upper = word.to_ascii_uppercase();
    let best = INSTRUCTIONS
        .iter()
        .map(|i| (strsim::damerau_levenshtein(&upper, i), *i))
        .min();
    match best {
        Some((d, i)) if d <= 2 && d < upper.len() => {
            format!("unknown instruction: {word} (did you mean {i}?)")
        }
        _ => format!("unknown instruction: {word}"),
    }
}

struct Parser<'a> {
    lines: Vec<&'a str>,
    /// Index of the next unread line.
    next: usize,
    escape: char,
}

/// Where a piece of a logical line came from.
struct Seg {
    offset: usize,
    line: usize,
    column: usize,
}

/// An instruction's lines joined, with a map back to the source.
struct Logical {
    text: String,
    segs: Vec<Seg>,
}

impl Logical {
    /// The line and column of a byte offset in `text`.
    fn pos(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let seg = self
            .segs
            .iter()
            .rev()
            .find(|s| s.offset <= offset)
            .unwrap_or(&self.segs[0]);
        let chars = self
            .text
            .get(seg.offset..offset)
            .map_or(0, |s| s.chars().count());
        (seg.line, seg.column + chars)
    }

    fn error(&self, offset: usize, message: impl Into<String>) -> ParseError {
        let (line, column) = self.pos(offset);
        ParseError {
            line,
            column,
            message: message.into(),
        }
    }
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

impl Parser<'_> {
    /// Reads the parser directives at the top of the file.
    fn directives(&mut self) -> Result<(), ParseError> {
        let mut seen = HashSet::new();
        while let Some(line) = self.lines.get(self.next) {
            let Some((key, value, col)) = directive(line) else {
                return Ok(());
            };
            let key = key.to_ascii_lowercase();
            if !matches!(key.as_str(), "escape" | "syntax" | "check") {
                // Unknown directives are comments, which end the directives.
                return Ok(());
            }
            let no = self.next + 1;
            if !seen.insert(key.clone()) {
                return Err(ParseError {
                    line: no,
                    column: 1,
                    message: format!("only one {key} parser directive can be used"),
                });
            }
            if key == "escape" {
                self.escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(ParseError {
                            line: no,
                            column: col,
                            message: format!("invalid escape token {value:?}: use \\ or `"),
                        })
                    }
                };
            }
            self.next += 1;
        }
        Ok(())
    }

    /// If `line` ends in the escape character (blanks after it allowed,
    /// and not itself escaped), the line without it.
    fn continued<'l>(&self, line: &'l str) -> Option<&'l str> {
        let body = line.trim_end_matches([' ', '\t']);
        let before = body.strip_suffix(self.escape)?;
        if before.ends_with(self.escape) {
            return None;
        }
        Some(before)
    }

    /// The next instruction's lines joined, or `None` at the end.
    fn logical_line(&mut self) -> Option<Logical> {
        while let Some(line) = self.lines.get(self.next) {
            if line.trim().is_empty() || is_comment(line) {
                self.next += 1;
                continue;
            }
            let lead = line.len() - line.trim_start().len();
            let first = &line[lead..];
            let mut logical = Logical {
                text: String::new(),
                segs: vec![Seg {
                    offset: 0,
                    line: self.next + 1,
                    column: line[..lead].chars().count() + 1,
                }],
            };
            self.next += 1;
            let Some(body) = self.continued(first) else {
                logical.text.push_str(first);
                return Some(logical);
            };
            logical.text.push_str(body);
            while let Some(line) = self.lines.get(self.next) {
                self.next += 1;
                if is_comment(line) || line.trim().is_empty() {
                    continue;
                }
                logical.segs.push(Seg {
                    offset: logical.text.len(),
                    line: self.next,
                    column: 1,
                });
                match self.continued(line) {
                    Some(body) => logical.text.push_str(body),
                    None => {
                        logical.text.push_str(line);
                        break;
                    }
                }
            }
            return Some(logical);
        }
        None
    }

    /// Reads the body of a here-document from the lines that follow.
    fn heredoc_body(
        &mut self,
        (name, expand, strip_tabs): Opener,
        logical: &Logical,
        off: usize,
    ) -> Result<Heredoc, ParseError> {
        let mut content = String::new();
        while let Some(line) = self.lines.get(self.next) {
            self.next += 1;
            let line = if strip_tabs {
                line.trim_start_matches('\t')
            } else {
                line
            };
            if line == name {
                return Ok(Heredoc {
                    name,
                    content,
                    expand,
                    strip_tabs,
                });
            }
            content.push_str(line);
            content.push('\n');
        }
        Err(logical.error(
            off,
            format!("unterminated here-document: no line {name:?} ends it"),
        ))
    }
}

/// `# key=value` at the top of the file: key, value and the value's column.
fn directive(line: &str) -> Option<(&str, &str, usize)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let key_len = rest
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_alphabetic() || (*i > 0 && c.is_ascii_digit())))
        .map_or(rest.len(), |(i, _)| i);
    if key_len == 0 {
        return None;
    }
    let (key, after) = rest.split_at(key_len);
    let value = after.trim_start().strip_prefix('=')?.trim();
    if value.is_empty() {
        return None;
    }
    let col = line.len() - line.trim_start_matches(['#', ' ', '\t']).len();
    let col = col + line[col..].find(value).unwrap_or(0) + 1;
    Some((key, value, col))
}

/// A here-document with where its opener stands in the instruction.
struct Placed {
    doc: Heredoc,
    /// Offset of the `<<` word.
    off: usize,
    /// Offset of the delimiter when it is a word of its own (`<< EOF`).
    name_off: Option<usize>,
}

/// The here-document openers of a shell-form RUN/COPY/ADD line, in order:
/// (name, expand, strip tabs), offset of `<<`, offset of a separate
/// delimiter word. Words are split quote-aware, so `echo "a <<EOF"` holds
/// none; `<< EOF` (with a space) counts, as in BuildKit since v0.22.
fn heredoc_openers(
    text: &str,
    rest_off: usize,
    escape: char,
) -> Vec<(Opener, usize, Option<usize>)> {
    let mut out = Vec::new();
    if json_array(&text[rest_off..]).is_some() {
        return out;
    }
    let words = words_quoted(text, rest_off, escape);
    let mut i = 0;
    while i < words.len() {
        let (word, off) = (words[i].0.as_str(), words[i].1);
        i += 1;
        let bare = word.trim_start_matches(|c: char| c.is_ascii_digit());
        if bare == "<<" || bare == "<<-" {
            if let Some((name, name_off)) = words.get(i) {
                if let Some(h) = heredoc_word(&format!("{word}{name}"), escape) {
                    out.push((h, off, Some(*name_off)));
                    i += 1;
                }
            }
        } else if let Some(h) = heredoc_word(word, escape) {
            out.push((h, off, None));
        }
    }
    out
}

/// A heredoc opener: delimiter name, whether to expand, whether to strip tabs.
type Opener = (String, bool, bool);

/// `<<EOF`, `<<-EOF`, `<<"EOF"`, `2<<EOF`: its [`Opener`].
fn heredoc_word(word: &str, escape: char) -> Option<Opener> {
    let word = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let rest = word.strip_prefix("<<")?;
    let (strip, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let name = expand(rest, escape, &|_| None).ok()?;
    if name.is_empty() {
        return None;
    }
    let quoted = rest.contains(['\'', '"']);
    Some((name, !quoted, strip))
}

/// The first whitespace-separated word at or after `from`, and its offset.
fn first_word(text: &str, from: usize) -> (&str, usize) {
    let start = skip_ws(text, from);
    let end = text[start..]
        .find(char::is_whitespace)
        .map_or(text.len(), |i| start + i);
    (&text[start..end], start)
}

fn skip_ws(text: &str, from: usize) -> usize {
    let from = from.min(text.len());
    text.len() - text[from..].trim_start().len()
}

/// Whitespace-separated words from `from` on, with their offsets.
fn split_ws(text: &str, from: usize) -> Vec<(&str, usize)> {
    let mut out = Vec::new();
    let mut pos = skip_ws(text, from);
    while pos < text.len() {
        let (word, start) = first_word(text, pos);
        out.push((word, start));
        pos = skip_ws(text, start + word.len());
    }
    out
}

/// A JSON array of strings (the exec form), if `text` is one.
fn json_array(text: &str) -> Option<Vec<String>> {
    let t = text.trim();
    if !t.starts_with('[') {
        return None;
    }
    serde_json::from_str(t).ok()
}

/// The `--flag[=value]` words after an instruction name, quotes removed as
/// BuildKit does, with offsets; and the offset of what follows them.
fn extract_flags(text: &str, from: usize) -> (Vec<(String, usize)>, usize) {
    let mut flags = Vec::new();
    let mut pos = skip_ws(text, from);
    loop {
        let rest = &text[pos..];
        if !rest.starts_with("--") {
            return (flags, pos);
        }
        let mut word = String::new();
        let mut quote = None;
        let mut end = text.len();
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match quote {
                None if c.is_whitespace() => {
                    end = pos + i;
                    break;
                }
                None if c == '"' || c == '\'' => quote = Some(c),
                Some(q) if c == q => quote = None,
                Some('\'') => word.push(c),
                _ if c == '\\' => {
                    if let Some((_, n)) = chars.next() {
                        word.push(n);
                    }
                }
                _ => word.push(c),
            }
        }
        if word == "--" {
            return (flags, skip_ws(text, end));
        }
        flags.push((word, pos));
        pos = skip_ws(text, end);
    }
}

/// What one instruction parses to.
enum Parsed {
    From {
        base: String,
        name: Option<String>,
        platform: Option<String>,
        name_off: usize,
    },
    Kind(Kind),
}

/// The instruction being parsed.
struct Cx<'a> {
    logical: &'a Logical,
    upper: &'a str,
    args_off: usize,
    escape: char,
}

impl Cx<'_> {
    fn error(&self, offset: usize, message: impl Into<String>) -> ParseError {
        self.logical.error(offset, message)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum FlagType {
    Str,
    Bool,
    Multi,
}

fn allowed_flags(upper: &str) -> &'static [(&'static str, FlagType)] {
    use FlagType::*;
    match upper {
        "FROM" => &[("platform", Str)],
        "RUN" => &[("mount", Multi), ("network", Str), ("security", Str)],
        "COPY" => &[
            ("from", Str),
            ("chown", Str),
            ("chmod", Str),
            ("link", Bool),
        ],
        "ADD" => &[("chown", Str), ("chmod", Str), ("link", Bool)],
        "HEALTHCHECK" => &[
            ("interval", Str),
            ("timeout", Str),
            ("start-period", Str),
            ("start-interval", Str),
            ("retries", Str),
        ],
        _ => &[],
    }
}

/// Checked flags: (name, value) in order; bool flags as `true`/`false`.
fn check_flags(
    cx: &Cx,
    flags: &[(String, usize)],
) -> Result<Vec<(&'static str, String)>, ParseError> {
    let allowed = allowed_flags(cx.upper);
    let mut out: Vec<(&'static str, String)> = Vec::new();
    for (word, off) in flags {
        let body = &word[2..];
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let Some(&(known, ty)) = allowed.iter().find(|(n, _)| *n == name) else {
            let message = if allowed.is_empty() {
                format!("unknown flag --{name}: {} takes no flags", cx.upper)
            } else {
                let best = allowed
                    .iter()
                    .map(|(n, _)| (strsim::damerau_levenshtein(name, n), *n))
                    .min()
                    .filter(|(d, _)| *d <= 2);
                match best {
                    Some((_, n)) => {
                        format!(
                            "unknown flag --{name} for {} (did you mean --{n}?)",
                            cx.upper
                        )
                    }
                    None => format!(
                        "unknown flag --{name} for {} (it takes {})",
                        cx.upper,
                        allowed
                            .iter()
                            .map(|(n, _)| format!("--{n}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }
            };
            return Err(cx.error(*off, message));
        };
        if ty != FlagType::Multi && out.iter().any(|(n, _)| *n == known) {
            return Err(cx.error(*off, format!("flag --{known} given twice")));
        }
        let value = match (ty, value) {
            (FlagType::Bool, None) => "true".to_string(),
            (FlagType::Bool, Some(v)) if v == "true" || v == "false" => v.to_string(),
            (FlagType::Bool, Some(v)) => {
                return Err(cx.error(
                    *off,
                    format!("flag --{known} takes true or false, not {v:?}"),
                ))
            }
            (_, Some(v)) if !v.is_empty() => v.to_string(),
            _ => {
                return Err(cx.error(
                    *off,
                    format!("flag --{known} needs a value (--{known}=...)"),
                ))
            }
        };
        out.push((known, value));
    }
    Ok(out)
}

fn flag(flags: &[(&str, String)], name: &str) -> Option<String> {
    flags
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.clone())
}

/// Parses the arguments of one instruction (its name known and checked).
fn instruction(
    cx: &Cx,
    raw_flags: &[(String, usize)],
    rest_off: usize,
    heredocs: Vec<Placed>,
) -> Result<Parsed, ParseError> {
    let flags = check_flags(cx, raw_flags)?;
    let text = cx.logical.text.as_str();
    let rest = text[rest_off..].trim_end();
    let upper = cx.upper;
    // Where "missing argument" errors point: just after the name.
    let missing = |what: &str| {
        Err(cx.error(
            rest_off.max(cx.args_off),
            format!("{upper} requires {what}"),
        ))
    };
    if rest.is_empty() {
        return missing("at least one argument");
    }
    let kind = match upper {
        "FROM" => {
            let words = split_ws(text, rest_off);
            let (base, name, name_off) = match words.as_slice() {
                [(base, _)] => (base.to_string(), None, 0),
                [(base, _), (as_, _), (name, off)] if as_.eq_ignore_ascii_case("as") => {
                    (base.to_string(), Some(name.to_ascii_lowercase()), *off)
                }
                _ => {
                    return Err(cx.error(
                        rest_off,
                        "FROM requires either one or three arguments: FROM image [AS name]",
                    ))
                }
            };
            if let Some(n) = &name {
                if !valid_stage_name(n) {
                    return Err(cx.error(
                        name_off,
                        format!(
                            "invalid stage name {n:?}: it must start with a letter and \
                             hold only letters, digits, '-', '_' and '.'"
                        ),
                    ));
                }
            }
            return Ok(Parsed::From {
                base,
                name,
                platform: flag(&flags, "platform"),
                name_off,
            });
        }
        "RUN" if json_array(rest).is_some_and(|l| l.is_empty()) => {
            return missing("a command: the exec form [] is empty");
        }
        "RUN" => {
            for (word, off) in raw_flags {
                if let Some(spec) = word.strip_prefix("--mount=") {
                    crate::build::mount::parse(spec).map_err(|e| cx.error(*off, e.to_string()))?;
                }
            }
            Kind::Run {
            command: command(rest),
            heredocs: heredocs.into_iter().map(|p| p.doc).collect(),
            flags: flags
                .iter()
                .map(|(n, v)| format!("--{n}={v}"))
                .collect(),
            }
        }
        "CMD" => Kind::Cmd(command(rest)),
        "ENTRYPOINT" => Kind::Entrypoint(command(rest)),
        "COPY" | "ADD" => {
            let spec = copy_spec(cx, &flags, rest_off, heredocs)?;
            if upper == "COPY" {
                Kind::Copy(spec)
            } else {
                Kind::Add(spec)
            }
        }
        "ENV" | "LABEL" => Kind::Env(name_values(cx, rest_off)?),
        "ARG" => {
            let mut args = Vec::new();
            for (word, off) in words_quoted(text, rest_off, cx.escape) {
                let (name, default) = match word.split_once('=') {
                    Some((n, d)) => (n, Some(remove_quotes(d, cx.escape))),
                    None => (word.as_str(), None),
                };
                if name.is_empty() {
                    return Err(cx.error(off, "ARG names can not be blank"));
                }
                args.push(ArgDecl {
                    name: remove_quotes(name, cx.escape),
                    default,
                });
            }
            Kind::Arg(args)
        }
        "WORKDIR" => Kind::Workdir(rest.to_string()),
        "USER" => Kind::User(rest.to_string()),
        "MAINTAINER" => Kind::Maintainer(rest.to_string()),
        "STOPSIGNAL" => {
            let words = split_ws(text, rest_off);
            if words.len() != 1 {
                return Err(cx.error(rest_off, "STOPSIGNAL requires exactly one argument"));
            }
            Kind::StopSignal(rest.to_string())
        }
        "EXPOSE" => Kind::Expose(
            split_ws(text, rest_off)
                .into_iter()
                .map(|(w, _)| w.to_string())
                .collect(),
        ),
        "VOLUME" => {
            let list = match json_array(rest) {
                Some(list) => list,
                None => split_ws(text, rest_off)
                    .into_iter()
                    .map(|(w, _)| w.to_string())
                    .collect(),
            };
            if list.is_empty() {
                return missing("at least one argument");
            }
            if list.iter().any(|v| v.trim().is_empty()) {
                return Err(cx.error(rest_off, "VOLUME specified can not be an empty string"));
            }
            Kind::Volume(list)
        }
        "SHELL" => match json_array(rest) {
            Some(list) if list.is_empty() => return missing("at least one argument"),
            Some(list) => Kind::Shell(list),
            None => {
                return Err(cx.error(
                    rest_off,
                    "SHELL requires the arguments to be in JSON form: SHELL [\"executable\", \"parameters\"]",
                ))
            }
        },
        "HEALTHCHECK" => Kind::Healthcheck(healthcheck(cx, raw_flags, &flags, rest_off)?),
        "ONBUILD" => {
            onbuild(cx, rest_off)?;
            Kind::Onbuild(rest.to_string())
        }
        _ => unreachable!("instruction names are checked before"),
    };
    let kind = match (upper, kind) {
        ("LABEL", Kind::Env(pairs)) => Kind::Label(pairs),
        (_, kind) => kind,
    };
    Ok(Parsed::Kind(kind))
}

fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_' || c == '.'
        })
}

fn command(rest: &str) -> Command {
    match json_array(rest) {
        Some(list) => Command::Exec(list),
        None => Command::Shell(rest.to_string()),
    }
}

fn copy_spec(
    cx: &Cx,
    flags: &[(&str, String)],
    rest_off: usize,
    heredocs: Vec<Placed>,
) -> Result<CopySpec, ParseError> {
    let text = &cx.logical.text;
    let mut list: Vec<String> = match json_array(&text[rest_off..]) {
        Some(list) => list,
        None => split_ws(text, rest_off)
            .into_iter()
            // The delimiter of `<< EOF` is part of the heredoc before it.
            .filter(|(_, off)| !heredocs.iter().any(|p| p.name_off == Some(*off)))
            .map(|(word, off)| {
                // A heredoc word is a source named after its delimiter.
                match heredocs.iter().find(|p| p.off == off) {
                    Some(p) => p.doc.name.clone(),
                    None => word.to_string(),
                }
            })
            .collect(),
    };
    if list.len() < 2 {
        return Err(cx.error(
            rest_off,
            format!(
                "{} requires at least two arguments, but only {} provided: \
                 the destination could not be determined",
                cx.upper,
                if list.is_empty() {
                    "none was"
                } else {
                    "one was"
                }
            ),
        ));
    }
    let dest = list.pop().unwrap_or_default();
    Ok(CopySpec {
        sources: list,
        dest,
        from: flag(flags, "from"),
        chown: flag(flags, "chown"),
        chmod: flag(flags, "chmod"),
        link: flag(flags, "link").is_some_and(|v| v == "true"),
        heredocs: heredocs.into_iter().map(|p| p.doc).collect(),
    })
}

/// Words as BuildKit's `parseWords` splits them: on whitespace outside
/// quotes, quotes and escapes kept.
fn words_quoted(text: &str, from: usize, escape: char) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut start = None;
    let mut quote: Option<char> = None;
    let mut chars = text[from..].char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let off = from + i;
        match quote {
            None if c.is_whitespace() => {
                if let Some(s) = start.take() {
                    out.push((std::mem::take(&mut word), s));
                }
            }
            None => {
                start.get_or_insert(off);
                if c == '\'' || c == '"' {
                    quote = Some(c);
                }
                word.push(c);
                if c == escape {
                    if let Some((_, n)) = chars.next() {
                        word.push(n);
                    }
                }
            }
            Some(q) => {
                word.push(c);
                if c == q {
                    quote = None;
                } else if c == escape && q != '\'' {
                    if let Some((_, n)) = chars.next() {
                        word.push(n);
                    }
                }
            }
        }
    }
    if let Some(s) = start {
        out.push((word, s));
    }
    out
}

/// `ENV`/`LABEL` pairs: `K=V ...` or the legacy `K V with spaces`.
fn name_values(cx: &Cx, rest_off: usize) -> Result<Vec<(String, String)>, ParseError> {
    let text = &cx.logical.text;
    let words = words_quoted(text, rest_off, cx.escape);
    let upper = cx.upper;
    let blank = |off| {
        Err(cx.error(
            off,
            format!("{upper} names can not be blank: write {upper} name=value"),
        ))
    };
    if !words.first().is_some_and(|(w, _)| w.contains('=')) {
        // Legacy: the name, then everything else is the value.
        let rest = text[rest_off..].trim_end();
        let (name, value) = match rest.find(char::is_whitespace) {
            Some(i) => (&rest[..i], rest[i..].trim_start()),
            None => (rest, ""),
        };
        if value.is_empty() {
            return Err(cx.error(
                rest_off,
                format!("{upper} must have two arguments: {upper} name=value"),
            ));
        }
        return Ok(vec![(
            remove_quotes(name, cx.escape),
            remove_quotes(value, cx.escape),
        )]);
    }
    let mut pairs = Vec::new();
    for (word, off) in words {
        let Some((name, value)) = word.split_once('=') else {
            return Err(cx.error(
                off,
                format!("syntax error: can't find = in {word:?}, write {upper} name=value"),
            ));
        };
        let name = remove_quotes(name, cx.escape);
        if name.is_empty() {
            return blank(off);
        }
        pairs.push((name, remove_quotes(value, cx.escape)));
    }
    Ok(pairs)
}

fn healthcheck(
    cx: &Cx,
    raw_flags: &[(String, usize)],
    flags: &[(&str, String)],
    rest_off: usize,
) -> Result<Healthcheck, ParseError> {
    let text = &cx.logical.text;
    let (kind, kind_off) = first_word(text, rest_off);
    let after = skip_ws(text, kind_off + kind.len());
    match kind.to_ascii_uppercase().as_str() {
        "NONE" => {
            if !raw_flags.is_empty() || after < text.trim_end().len() {
                return Err(cx.error(rest_off, "HEALTHCHECK NONE takes no arguments"));
            }
            return Ok(Healthcheck::None);
        }
        "CMD" => {}
        _ => {
            return Err(cx.error(
                kind_off,
                format!("unknown type {kind:?} in HEALTHCHECK: use CMD or NONE"),
            ))
        }
    }
    let rest = text[after..].trim_end();
    if rest.is_empty() {
        return Err(cx.error(after, "HEALTHCHECK CMD requires a command"));
    }
    let flag_off = |name: &str| {
        raw_flags
            .iter()
            .find(|(w, _)| w[2..].split('=').next() == Some(name))
            .map_or(rest_off, |(_, o)| *o)
    };
    for name in ["interval", "timeout", "start-period", "start-interval"] {
        if let Some(v) = flag(flags, name) {
            if !go_duration(&v) {
                return Err(cx.error(
                    flag_off(name),
                    format!("--{name} takes a duration such as 30s or 1m30s, not {v:?}"),
                ));
            }
        }
    }
    let retries = match flag(flags, "retries") {
        None => None,
        Some(v) => match v.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                return Err(cx.error(
                    flag_off("retries"),
                    format!("--retries takes a whole number of at least 0, not {v:?}"),
                ))
            }
        },
    };
    Ok(Healthcheck::Check {
        command: command(rest),
        interval: flag(flags, "interval"),
        timeout: flag(flags, "timeout"),
        start_period: flag(flags, "start-period"),
        start_interval: flag(flags, "start-interval"),
        retries,
    })
}

/// A Go `time.ParseDuration` string that is not negative: `0`, `30s`,
/// `1m30s`, `1.5h`, `500ms`.
fn go_duration(s: &str) -> bool {
    if s == "0" {
        return true;
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    let mut rest = s;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let num = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n = &rest[..num];
        if n.is_empty() || n == "." || n.matches('.').count() > 1 {
            return false;
        }
        rest = &rest[num..];
        let unit = ["ns", "us", "µs", "μs", "ms", "s", "m", "h"]
            .iter()
            .find(|u| rest.starts_with(**u));
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
    }
    true
}

/// Checks an ONBUILD trigger as the instruction it names.
fn onbuild(cx: &Cx, rest_off: usize) -> Result<(), ParseError> {
    let text = &cx.logical.text;
    let (word, off) = first_word(text, rest_off);
    let upper = word.to_ascii_uppercase();
    match upper.as_str() {
        "ONBUILD" => {
            return Err(cx.error(off, "chaining ONBUILD via ONBUILD ONBUILD isn't allowed"))
        }
        "FROM" | "MAINTAINER" => {
            return Err(cx.error(off, format!("{upper} isn't allowed as an ONBUILD trigger")))
        }
        _ if !INSTRUCTIONS.contains(&upper.as_str()) => {
            return Err(cx.error(off, unknown_instruction(word)))
        }
        _ => {}
    }
    let args_off = skip_ws(text, off + word.len());
    let (flags, inner_rest) = extract_flags(text, args_off);
    let inner = Cx {
        logical: cx.logical,
        upper: &upper,
        args_off,
        escape: cx.escape,
    };
    instruction(&inner, &flags, inner_rest, Vec::new()).map(|_| ())
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn durations() {
        for ok in ["0", "30s", "1m30s", "1.5h", "500ms", "10us"] {
            assert!(go_duration(ok), "{ok}");
        }
        for bad in ["", "s", "30", "-1s", "1x", "1..2s", "5 s"] {
            assert!(!go_duration(bad), "{bad}");
        }
    }

    #[test]
    fn stage_names() {
        for ok in ["a", "build-1", "x_y.z"] {
            assert!(valid_stage_name(ok), "{ok}");
        }
        for bad in ["", "1a", "-a", "a/b", "a b", "Ä"] {
            assert!(!valid_stage_name(bad), "{bad}");
        }
    }

    #[test]
    fn flags_unquoted_as_buildkit_does() {
        let text = "RUN --mount=type=secret,id=\"a b\" --network=none -- echo";
        let (flags, rest) = extract_flags(text, 4);
        let words: Vec<_> = flags.iter().map(|(w, _)| w.as_str()).collect();
        assert_eq!(words, ["--mount=type=secret,id=a b", "--network=none"]);
        assert_eq!(&text[rest..], "echo");
    }
}
