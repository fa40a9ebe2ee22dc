//! Variable interpolation in manifest values, and `.env` files, with
//! Compose's rules.
//!
//! Every string value of the manifest (never a key) is expanded before it is
//! turned into typed values (<https://docs.docker.com/compose/how-tos/environment-variables/variable-interpolation/>):
//!
//! | form | result |
//! |------|--------|
//! | `$VAR`, `${VAR}` | the value, or empty when unset |
//! | `${VAR:-default}` / `${VAR-default}` | `default` when unset or empty / only when unset |
//! | `${VAR:+alt}` / `${VAR+alt}` | `alt` when set and non-empty / when set, else empty |
//! | `${VAR:?msg}` / `${VAR?msg}` | an error naming VAR when unset or empty / when unset |
//! | `$$` | a literal `$` |
//!
//! Defaults and alternatives may themselves contain interpolations
//! (`${A:-${B:-x}}`), as in Compose. A `$` that starts none of these
//! (`$1`, `$(date)`, `5$`) stays as written, as in Compose; a malformed
//! `${…}` is an error. A variable that is not set is substituted blank and
//! named in a note (Compose's warning). Variables come from the process
//! environment and from `.env` beside the manifest; the process wins.
//!
//! `.env` files (also used for `env_file`) follow Compose's dotenv format:
//! `KEY=VALUE` lines, optional `export `, a bare `KEY` taking KEY from the
//! environment (undefined when it is not set there), `#` comments (also
//! after an unquoted value, when preceded by a space), single quotes literal
//! (a `\'` inside does not end them and is kept), double quotes with
//! `\n \t \\ \"` escapes and possibly spanning lines; unquoted and double
//! quoted values are interpolated with the variables defined above them and
//! then the environment.

use super::source::{KeyPath, Node, Span, Value};

/// Why a string could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpolateError {
    #[error("required variable {name} is missing a value{}", if .message.is_empty() { String::new() } else { format!(": {}", .message) })]
    Required { name: String, message: String },
    #[error("invalid interpolation in {template:?}: {reason}")]
    Invalid { template: String, reason: String },
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// How deeply `${A:-${B:-...}}` may nest; deeper is refused rather than
/// recursing without bound on hostile input.
const MAX_NESTING: usize = 16;

/// Expands `template` with variables from `lookup`.
pub fn interpolate(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpolateError> {
    interpolate_noting(template, lookup, &mut |_| {})
}

/// [`interpolate`], telling `unset` the name of every variable that was
/// substituted blank because it is not set (`$NAME`, `${NAME}`), which
/// Compose warns about.
pub fn interpolate_noting(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut dyn FnMut(&str),
) -> Result<String, InterpolateError> {
    let missing = std::cell::RefCell::new(Vec::new());
    let out = interpolate_nested(template, lookup, 0, &missing)?;
    for name in missing.into_inner() {
        unset(&name);
    }
    Ok(out)
}

type Missing = std::cell::RefCell<Vec<String>>;

fn interpolate_nested(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    depth: usize,
    missing: &Missing,
) -> Result<String, InterpolateError> {
    let chars: Vec<char> = template.chars().collect();
    let invalid = |reason: &str| InterpolateError::Invalid {
        template: template.to_string(),
        reason: reason.to_string(),
    };
    if depth > MAX_NESTING {
        return Err(invalid("interpolations nested more than 16 deep"));
    }
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '$' {
            out.push(c);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => {
                out.push('$');
                i += 2;
            }
            Some(&c) if is_name_start(c) => {
                let start = i + 1;
                let mut end = start;
                while end < chars.len() && is_name_char(chars[end]) {
                    end += 1;
                }
                let name: String = chars[start..end].iter().collect();
                match lookup(&name) {
                    Some(v) => out.push_str(&v),
                    None => missing.borrow_mut().push(name),
                }
                i = end;
            }
            Some('{') => {
                // Find the matching close brace, allowing nested `${...}`.
                let start = i + 2;
                let mut depth = 1;
                let mut j = start;
                while j < chars.len() {
                    match chars[j] {
                        '$' if chars.get(j + 1) == Some(&'$') => j += 1,
                        '$' if chars.get(j + 1) == Some(&'{') => {
                            depth += 1;
                            j += 1;
                        }
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                if depth != 0 {
                    return Err(invalid("missing closing `}`"));
                }
                let body: String = chars[start..j].iter().collect();
                out.push_str(&expand_braced(&body, lookup, &invalid, depth, missing)?);
                i = j + 1;
            }
            // Anything else (`$1`, `$(…)`, `5$`) stays as written, as in
            // Compose, whose pattern only matches `$$`, `$NAME` and `${…}`.
            _ => {
                out.push('$');
                i += 1;
            }
        }
    }
    Ok(out)
}

fn expand_braced(
    body: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    invalid: &dyn Fn(&str) -> InterpolateError,
    depth: usize,
    missing: &Missing,
) -> Result<String, InterpolateError> {
    let name_len = body
        .char_indices()
        .find(|(_, c)| !is_name_char(*c))
        .map(|(i, _)| i)
        .unwrap_or(body.len());
    let name = &body[..name_len];
    if name.is_empty() || !name.starts_with(is_name_start) {
        return Err(invalid("expected a variable name after `${`"));
    }
    let rest = &body[name_len..];
    let value = lookup(name);
    if rest.is_empty() {
        if value.is_none() {
            missing.borrow_mut().push(name.to_string());
        }
        return Ok(value.unwrap_or_default());
    }
    let (colon, op_and_arg) = match rest.strip_prefix(':') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let mut op_chars = op_and_arg.chars();
    let op = op_chars.next();
    let arg = op_chars.as_str();
    // With `:`, an empty value counts as unset.
    let set = match &value {
        Some(v) => !(colon && v.is_empty()),
        None => false,
    };
    match op {
        Some('-') => {
            if set {
                Ok(value.unwrap_or_default())
            } else {
                interpolate_nested(arg, lookup, depth + 1, missing)
            }
        }
        Some('+') => {
            if set {
                interpolate_nested(arg, lookup, depth + 1, missing)
            } else {
                Ok(String::new())
            }
        }
        Some('?') => {
            if set {
                Ok(value.unwrap_or_default())
            } else {
                Err(InterpolateError::Required {
                    name: name.to_string(),
                    message: interpolate_nested(arg, lookup, depth + 1, missing)?,
                })
            }
        }
        _ => Err(invalid(&format!(
            "unexpected {:?} after variable name {name}; expected `}}`, `:-`, `-`, `:+`, `+`, `:?` or `?`",
            rest
        ))),
    }
}

/// An interpolation error at a place in the manifest.
#[derive(Debug, Clone)]
pub struct PlacedError {
    pub span: Span,
    pub path: KeyPath,
    pub error: InterpolateError,
}

/// Interpolates every string value under `node` in place, collecting errors.
/// Names of unset variables that were substituted blank go to `unset`.
pub fn interpolate_tree(
    node: &mut Node,
    path: &KeyPath,
    lookup: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<PlacedError>,
    unset: &mut std::collections::BTreeSet<String>,
) {
    match &mut node.value {
        Value::String(s) if s.contains('$') => match interpolate_noting(s, lookup, &mut |n| {
            unset.insert(n.to_string());
        }) {
            Ok(v) => *s = v,
            Err(error) => errors.push(PlacedError {
                span: node.span,
                path: path.clone(),
                error,
            }),
        },
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate_tree(item, &path.index(i), lookup, errors, unset);
            }
        }
        Value::Table(entries) => {
            for entry in entries {
                let child = path.key(&entry.key);
                interpolate_tree(&mut entry.node, &child, lookup, errors, unset);
            }
        }
        _ => {}
    }
}

/// An error in a dotenv file, at a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct DotenvError {
    pub line: usize,
    pub message: String,
}

/// Parses a dotenv file into `(key, value)` pairs in file order.
pub fn parse_dotenv(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, DotenvError> {
    let mut vars: Vec<(String, String)> = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut line = 1;
    let err = |line: usize, message: String| DotenvError { line, message };
    while i < chars.len() {
        // Skip blank space and whole-line comments.
        match chars[i] {
            '\n' => {
                line += 1;
                i += 1;
                continue;
            }
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            _ => {}
        }
        let line_no = line;
        let mut key = String::new();
        while i < chars.len() && !matches!(chars[i], '=' | '\n') {
            key.push(chars[i]);
            i += 1;
        }
        let mut key = key.trim().to_string();
        if let Some(rest) = key.strip_prefix("export ") {
            key = rest.trim().to_string();
        }
        if (i >= chars.len() || chars[i] == '\n')
            && !key.is_empty()
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            // A bare `VAR` takes VAR from the environment, if it is set.
            if let Some(v) = lookup(&key) {
                match vars.iter_mut().find(|(k, _)| *k == key) {
                    Some(existing) => existing.1 = v,
                    None => vars.push((key, v)),
                }
            }
            continue;
        }
        if i >= chars.len() || chars[i] != '=' {
            return Err(err(line_no, format!("expected KEY=VALUE, found {key:?}")));
        }
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err(err(line_no, format!("invalid variable name {key:?}")));
        }
        i += 1; // '='
        while i < chars.len() && matches!(chars[i], ' ' | '\t') {
            i += 1;
        }
        let value = match chars.get(i) {
            Some('\'') => {
                i += 1;
                let start = i;
                // Literal, but `\'` does not end it (kept as written, as in
                // Compose's dotenv).
                while i < chars.len() && !(chars[i] == '\'' && chars[i - 1] != '\\') {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
                if i >= chars.len() {
                    return Err(err(line_no, format!("unterminated single quote in {key}")));
                }
                let v: String = chars[start..i].iter().collect();
                i += 1;
                skip_to_eol(&chars, &mut i);
                v
            }
            Some('"') => {
                i += 1;
                let mut v = String::new();
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(err(line_no, format!("unterminated double quote in {key}")))
                        }
                        Some('"') => break,
                        Some('\\') => {
                            i += 1;
                            match chars.get(i) {
                                Some('n') => v.push('\n'),
                                Some('r') => v.push('\r'),
                                Some('t') => v.push('\t'),
                                Some('"') => v.push('"'),
                                Some('\\') => v.push('\\'),
                                Some('$') => v.push_str("$$"),
                                Some(c) => {
                                    v.push('\\');
                                    v.push(*c);
                                }
                                None => {}
                            }
                        }
                        Some(c) => {
                            if *c == '\n' {
                                line += 1;
                            }
                            v.push(*c);
                        }
                    }
                    i += 1;
                }
                i += 1;
                skip_to_eol(&chars, &mut i);
                expand(&v, &vars, lookup).map_err(|e| err(line_no, e.to_string()))?
            }
            _ => {
                let start = i;
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                let raw: String = chars[start..i].iter().collect();
                let raw = match raw.find(" #").or_else(|| raw.find("\t#")) {
                    Some(p) => raw[..p].to_string(),
                    None => raw,
                };
                expand(raw.trim_end(), &vars, lookup).map_err(|e| err(line_no, e.to_string()))?
            }
        };
        match vars.iter_mut().find(|(k, _)| *k == key) {
            Some(existing) => existing.1 = value,
            None => vars.push((key, value)),
        }
    }
    Ok(vars)
}

fn skip_to_eol(chars: &[char], i: &mut usize) {
    while *i < chars.len() && chars[*i] != '\n' {
        *i += 1;
    }
}

fn expand(
    value: &str,
    vars: &[(String, String)],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpolateError> {
    interpolate(value, &|name| {
        vars.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .or_else(|| lookup(name))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "SET" => Some("value".into()),
            "EMPTY" => Some(String::new()),
            "OTHER" => Some("other".into()),
            _ => None,
        }
    }

    #[test]
    fn compose_forms() {
        let cases: &[(&str, &str)] = &[
            ("plain", "plain"),
            ("$SET", "value"),
            ("${SET}", "value"),
            ("x${SET}y", "xvaluey"),
            ("$SET-suffix", "value-suffix"),
            ("$UNSET", ""),
            ("${UNSET:-d}", "d"),
            ("${EMPTY:-d}", "d"),
            ("${EMPTY-d}", ""),
            ("${UNSET-d}", "d"),
            ("${SET:-d}", "value"),
            ("${SET:+alt}", "alt"),
            ("${EMPTY:+alt}", ""),
            ("${EMPTY+alt}", "alt"),
            ("${UNSET+alt}", ""),
            ("${SET:?boom}", "value"),
            ("${EMPTY?boom}", ""),
            ("$$SET", "$SET"),
            ("$${SET}", "${SET}"),
            ("a$$b", "a$b"),
            ("${UNSET:-${OTHER}}", "other"),
            ("${UNSET:-${ALSO_UNSET:-deep}}", "deep"),
            ("${UNSET:-a:b-c}", "a:b-c"),
            ("${UNSET:-}", ""),
            ("${SET:+${OTHER}x}", "otherx"),
            ("${UNSET:-$$}", "$"),
            // A `$` that starts no interpolation stays as written.
            ("cost: 5$", "cost: 5$"),
            ("$1 and $(date)", "$1 and $(date)"),
            ("$ x", "$ x"),
            ("a$", "a$"),
            ("$-", "$-"),
            ("${SET}$", "value$"),
        ];
        for (template, want) in cases {
            assert_eq!(
                interpolate(template, &env).as_deref(),
                Ok(*want),
                "{template}"
            );
        }
    }

    #[test]
    fn errors() {
        assert_eq!(
            interpolate("${UNSET:?set UNSET to the tag}", &env)
                .unwrap_err()
                .to_string(),
            "required variable UNSET is missing a value: set UNSET to the tag"
        );
        assert_eq!(
            interpolate("${EMPTY:?}", &env).unwrap_err().to_string(),
            "required variable EMPTY is missing a value"
        );
        assert!(interpolate("${UNSET?x}", &env).is_err());
        for bad in ["${SET", "${}", "${1A}", "${SET:x}", "${SET!}"] {
            assert!(
                matches!(
                    interpolate(bad, &env),
                    Err(InterpolateError::Invalid { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn unset_variables_are_named() {
        let cases: &[(&str, &[&str])] = &[
            ("$UNSET", &["UNSET"]),
            ("${UNSET}x$SET", &["UNSET"]),
            ("${UNSET:-d}", &[]),
            ("${UNSET-d}", &[]),
            ("${UNSET:+x}", &[]),
            ("${SET:+$NOPE}", &["NOPE"]),
            ("$$UNSET", &[]),
            ("$EMPTY", &[]),
        ];
        for (template, want) in cases {
            let mut got = Vec::new();
            interpolate_noting(template, &env, &mut |n| got.push(n.to_string())).unwrap();
            assert_eq!(got, *want, "{template}");
        }
    }

    #[test]
    fn dotenv_quotes_and_bare_names_as_compose_reads_them() {
        let text = "Q='Let\\'s go!'\nSET\nNOT_SET\nafter=1\n";
        let vars = parse_dotenv(text, &env).unwrap();
        let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("Q"), Some("Let\\'s go!"));
        assert_eq!(
            get("SET"),
            Some("value"),
            "a bare name comes from the environment"
        );
        assert_eq!(get("NOT_SET"), None, "an unset bare name is not defined");
        assert_eq!(get("after"), Some("1"));
    }

    #[test]
    fn dotenv() {
        let text = "# comment\nexport A=1\nB = two words # note\nC='lit $A #x'\nD=\"q\\n$A\"\nE=\"multi\nline\"\nF=${A}${SET}\n\nG=\nH=a#b\n";
        let vars = parse_dotenv(text, &env).unwrap();
        let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("A"), Some("1"));
        assert_eq!(get("B"), Some("two words"));
        assert_eq!(get("C"), Some("lit $A #x"));
        assert_eq!(get("D"), Some("q\n1"));
        assert_eq!(get("E"), Some("multi\nline"));
        assert_eq!(get("F"), Some("1value"));
        assert_eq!(get("G"), Some(""));
        assert_eq!(get("H"), Some("a#b"));
        assert_eq!(
            parse_dotenv("A=1\nJUNK JUNK\n", &env).unwrap_err(),
            DotenvError {
                line: 2,
                message: "expected KEY=VALUE, found \"JUNK JUNK\"".into()
            }
        );
        assert_eq!(parse_dotenv("A=\"x\n", &env).unwrap_err().line, 1);
    }
}
