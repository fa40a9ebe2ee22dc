//! Variable expansion in Dockerfile words, as BuildKit's shell lexer
//! (`shell.Lex.ProcessWord`) does it: `$VAR`, `${VAR}`, `${VAR:-word}`,
//! `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`, `${VAR:?message}` and
//! `${VAR?message}`; the escape character (`\`, or `` ` `` after
//! `# escape=``) makes the next character literal; quotes are removed,
//! single-quoted text is taken literally and double-quoted text still
//! expands. Unset variables expand to nothing.
//!
//! Reference: <https://docs.docker.com/reference/dockerfile/#environment-replacement>.

/// A word that cannot be expanded: a bad `${...}`, an unterminated quote,
/// or a `${VAR:?message}` whose variable is unset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExpandError {
    pub message: String,
}

fn err<T>(message: impl Into<String>) -> Result<T, ExpandError> {
    Err(ExpandError {
        message: message.into(),
    })
}

/// Expands one word (as ENV, LABEL, WORKDIR, USER... values are): quotes
/// removed, variables replaced; whitespace is kept.
pub fn expand(
    word: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    let mut sink = Sink::new(false);
    Lexer::new(word, escape, lookup).process(None, &mut sink)?;
    Ok(sink.finish().join(""))
}

/// Expands and splits a list (EXPOSE, shell-form VOLUME, COPY sources):
/// unquoted whitespace, also inside expanded values, separates words;
/// quoted whitespace does not; `""` is an empty word.
pub fn expand_words(
    text: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ExpandError> {
    let mut sink = Sink::new(true);
    Lexer::new(text, escape, lookup).process(None, &mut sink)?;
    Ok(sink.finish())
}

/// Expands the body of a here-document whose delimiter was not quoted,
/// as BuildKit does for COPY/ADD (`ExpandRaw`): variables are replaced and
/// the escape character works as usual, but quotes stay in the text (a
/// single-quoted part is still not expanded, and an unmatched quote is an
/// error, as in BuildKit; quoting the delimiter avoids expansion).
pub fn expand_heredoc(
    content: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    let mut sink = Sink::new(false);
    let mut lexer = Lexer::new(content, escape, lookup);
    lexer.raw_quotes = true;
    lexer.process(None, &mut sink)?;
    Ok(sink.finish().join(""))
}

/// Rewrites a word without its quotes and without expanding it, escaping
/// what the quotes protected, so that `expand(&remove_quotes(w), ..)`
/// equals `expand(w, ..)` (`'$HOME'` becomes `\$HOME`, `"a b"` becomes
/// `a b`). A word with an unterminated quote is returned unchanged, so
/// that expanding it reports the error.
pub fn remove_quotes(word: &str, escape: char) -> String {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::with_capacity(word.len());
    let mut i = 0;
    let special = |c: char| c == '$' || c == escape || c == '\'' || c == '"';
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c == escape {
            if let Some(&n) = chars.get(i) {
                out.push(escape);
                out.push(n);
                i += 1;
            }
        } else if c == '\'' {
            loop {
                match chars.get(i) {
                    None => return word.to_string(),
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(&q) => {
                        if special(q) {
                            out.push(escape);
                        }
                        out.push(q);
                        i += 1;
                    }
                }
            }
        } else if c == '"' {
            loop {
                match chars.get(i) {
                    None => return word.to_string(),
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(&q) if q == escape => {
                        i += 1;
                        match chars.get(i) {
                            None => {}
                            Some(&n) if n == '"' || n == '$' || n == escape => {
                                out.push(escape);
                                out.push(n);
                                i += 1;
                            }
                            // A lone escape inside double quotes is literal.
                            Some(_) => {
                                out.push(escape);
                                out.push(escape);
                            }
                        }
                    }
                    Some('$') => {
                        out.push('$');
                        i += 1;
                        if chars.get(i) == Some(&'{') {
                            // Copy `${...}` as written: its inside is
                            // processed the same wherever it stands.
                            let mut depth = 0usize;
                            while let Some(&b) = chars.get(i) {
                                out.push(b);
                                i += 1;
                                if b == '{' {
                                    depth += 1;
                                } else if b == '}' {
                                    depth -= 1;
                                    if depth == 0 {
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    Some('\'') => {
                        out.push(escape);
                        out.push('\'');
                        i += 1;
                    }
                    Some(&q) => {
                        out.push(q);
                        i += 1;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Collects output characters into words.
struct Sink {
    split: bool,
    words: Vec<String>,
    cur: String,
    started: bool,
}

impl Sink {
    fn new(split: bool) -> Self {
        Self {
            split,
            words: Vec::new(),
            cur: String::new(),
            started: false,
        }
    }

    /// A character that was quoted or escaped: never a separator.
    fn raw(&mut self, c: char) {
        self.cur.push(c);
        self.started = true;
    }

    /// An unquoted character: whitespace separates words when splitting.
    fn plain(&mut self, c: char) {
        if self.split && c.is_whitespace() {
            self.end_word();
        } else {
            self.raw(c);
        }
    }

    fn end_word(&mut self) {
        if self.started {
            self.words.push(std::mem::take(&mut self.cur));
        }
        self.started = false;
    }

    fn finish(mut self) -> Vec<String> {
        self.end_word();
        self.words
    }
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    /// Keep quote characters in the output (BuildKit's `RawQuotes`).
    raw_quotes: bool,
    /// How many `${...:-word}` words we are inside.
    depth: usize,
}

/// Deeper nesting is refused rather than risking the stack.
const MAX_DEPTH: usize = 64;

impl<'a> Lexer<'a> {
    fn new(text: &str, escape: char, lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self {
            chars: text.chars().collect(),
            pos: 0,
            escape,
            lookup,
            raw_quotes: false,
            depth: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Processes up to `stop` (consumed) or the end; says whether `stop` was found.
    fn process(&mut self, stop: Option<char>, out: &mut Sink) -> Result<bool, ExpandError> {
        while let Some(c) = self.next() {
            if Some(c) == stop {
                return Ok(true);
            }
            if c == self.escape {
                // An escape at the very end is dropped.
                if let Some(n) = self.next() {
                    out.raw(n);
                }
            } else if c == '\'' || c == '"' {
                if self.raw_quotes {
                    out.raw(c);
                }
                if c == '\'' {
                    self.single_quoted(out)?;
                } else {
                    self.double_quoted(out)?;
                }
                if self.raw_quotes {
                    out.raw(c);
                }
            } else if c == '$' {
                let value = self.dollar()?;
                for v in value.chars() {
                    out.plain(v);
                }
            } else {
                out.plain(c);
            }
        }
        Ok(false)
    }

    fn single_quoted(&mut self, out: &mut Sink) -> Result<(), ExpandError> {
        out.started = true;
        loop {
            match self.next() {
                None => {
                    return err(
                        "unexpected end of statement while looking for matching single-quote",
                    )
                }
                Some('\'') => return Ok(()),
                Some(c) => out.raw(c),
            }
        }
    }

    fn double_quoted(&mut self, out: &mut Sink) -> Result<(), ExpandError> {
        out.started = true;
        loop {
            match self.next() {
                None => {
                    return err(
                        "unexpected end of statement while looking for matching double-quote",
                    )
                }
                Some('"') => return Ok(()),
                Some('$') => {
                    let value = self.dollar()?;
                    for v in value.chars() {
                        out.raw(v);
                    }
                }
                Some(c) if c == self.escape => match self.peek() {
                    None => {}
                    Some(n) if n == '"' || n == '$' || n == self.escape => {
                        self.pos += 1;
                        out.raw(n);
                    }
                    Some(_) => out.raw(c),
                },
                Some(c) => out.raw(c),
            }
        }
    }

    /// After a `$`: the value it stands for.
    fn dollar(&mut self) -> Result<String, ExpandError> {
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok((self.lookup)(&name).unwrap_or_default());
        }
        self.pos += 1;
        let name = self.name();
        if name.is_empty() {
            return err("bad substitution: a variable name must follow ${");
        }
        let (colon, op) = match self.next() {
            None => return err(format!("missing '}}' after ${{{name}")),
            Some('}') => return Ok((self.lookup)(&name).unwrap_or_default()),
            Some(':') => match self.next() {
                Some(op @ ('-' | '+' | '?')) => (true, op),
                Some(other) => {
                    return err(format!(
                        "unsupported modifier (:{other}) in substitution of {name}"
                    ))
                }
                None => return err(format!("missing '}}' after ${{{name}:")),
            },
            Some(op @ ('-' | '+' | '?')) => (false, op),
            Some(other) => {
                return err(format!(
                    "unsupported modifier ({other}) in substitution of {name}"
                ))
            }
        };
        if self.depth >= MAX_DEPTH {
            return err(format!(
                "substitutions nested more than {MAX_DEPTH} deep in ${{{name}...}}"
            ));
        }
        let mut sink = Sink::new(false);
        self.depth += 1;
        let closed = self.process(Some('}'), &mut sink);
        self.depth -= 1;
        if !closed? {
            return err(format!("missing '}}' in substitution of {name}"));
        }
        let word = sink.finish().join("");
        let value = (self.lookup)(&name);
        // With the colon, an empty value counts as unset.
        let set = match &value {
            Some(v) => !(colon && v.is_empty()),
            None => false,
        };
        match op {
            '-' => Ok(if set { value.unwrap_or_default() } else { word }),
            '+' => Ok(if set { word } else { String::new() }),
            _ => {
                if set {
                    Ok(value.unwrap_or_default())
                } else if word.is_empty() {
                    let why = if value.is_none() { "unset" } else { "empty" };
                    err(format!("{name}: is not allowed to be {why}"))
                } else {
                    err(format!("{name}: {word}"))
                }
            }
        }
    }

    /// A variable name: letters, digits and `_`; or digits; or one
    /// special parameter character.
    fn name(&mut self) -> String {
        let mut name = String::new();
        match self.peek() {
            Some(c) if c.is_ascii_digit() => {
                while let Some(d) = self.peek().filter(|d| d.is_ascii_digit()) {
                    name.push(d);
                    self.pos += 1;
                }
                return name;
            }
            Some(c @ ('@' | '*' | '#' | '?' | '-' | '$' | '!')) => {
                self.pos += 1;
                name.push(c);
                return name;
            }
            _ => {}
        }
        while let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
            name.push(c);
            self.pos += 1;
        }
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("a".into()),
            "SP" => Some("x  y".into()),
            "EMPTY" => Some(String::new()),
            "HOME" => Some("/root".into()),
            "1" => Some("one".into()),
            _ => None,
        }
    }

    #[test]
    fn expand_table() {
        let cases: &[(&str, char, Result<&str, &str>)] = &[
            ("plain", '\\', Ok("plain")),
            ("$A", '\\', Ok("a")),
            ("${A}", '\\', Ok("a")),
            ("x${A}y", '\\', Ok("xay")),
            ("$A.b", '\\', Ok("a.b")),
            ("$Ab", '\\', Ok("")),
            ("$UNSET", '\\', Ok("")),
            ("$", '\\', Ok("$")),
            ("a$", '\\', Ok("a$")),
            ("$/x", '\\', Ok("$/x")),
            ("$1x", '\\', Ok("onex")),
            ("${UNSET:-d}", '\\', Ok("d")),
            ("${EMPTY:-d}", '\\', Ok("d")),
            ("${EMPTY-d}", '\\', Ok("")),
            ("${UNSET-d}", '\\', Ok("d")),
            ("${A:-d}", '\\', Ok("a")),
            ("${A:+w}", '\\', Ok("w")),
            ("${EMPTY:+w}", '\\', Ok("")),
            ("${EMPTY+w}", '\\', Ok("w")),
            ("${UNSET+w}", '\\', Ok("")),
            ("${UNSET:-$HOME/x}", '\\', Ok("/root/x")),
            ("${UNSET:-${A}-${HOME}}", '\\', Ok("a-/root")),
            ("${UNSET:-'$A'}", '\\', Ok("$A")),
            ("${A:?must be set}", '\\', Ok("a")),
            ("${UNSET:?must be set}", '\\', Err("UNSET: must be set")),
            ("${EMPTY:?}", '\\', Err("EMPTY: is not allowed to be empty")),
            ("${EMPTY?}", '\\', Ok("")),
            ("${UNSET?}", '\\', Err("UNSET: is not allowed to be unset")),
            ("\\$A", '\\', Ok("$A")),
            ("\\\\$A", '\\', Ok("\\a")),
            ("`$A", '`', Ok("$A")),
            ("\\$A", '`', Ok("\\a")),
            ("'$A'", '\\', Ok("$A")),
            ("'a\\b'", '\\', Ok("a\\b")),
            ("\"$A b\"", '\\', Ok("a b")),
            ("\"\\$A\"", '\\', Ok("$A")),
            ("\"a\\b\"", '\\', Ok("a\\b")),
            ("\"it's\"", '\\', Ok("it's")),
            ("a\\ b", '\\', Ok("a b")),
            ("end\\", '\\', Ok("end")),
            ("$SP", '\\', Ok("x  y")),
            ("${A", '\\', Err("missing '}' after ${A")),
            ("${A:-x", '\\', Err("missing '}' in substitution of A")),
            (
                "${}",
                '\\',
                Err("bad substitution: a variable name must follow ${"),
            ),
            (
                "${A#x}",
                '\\',
                Err("unsupported modifier (#) in substitution of A"),
            ),
            (
                "${A:=x}",
                '\\',
                Err("unsupported modifier (:=) in substitution of A"),
            ),
            (
                "'open",
                '\\',
                Err("unexpected end of statement while looking for matching single-quote"),
            ),
            (
                "\"open",
                '\\',
                Err("unexpected end of statement while looking for matching double-quote"),
            ),
        ];
        for (word, esc, want) in cases {
            let got = expand(word, *esc, &env);
            match (want, &got) {
                (Ok(w), Ok(g)) => assert_eq!(g, w, "expand({word:?})"),
                (Err(w), Err(g)) => assert_eq!(&g.message, w, "expand({word:?})"),
                _ => panic!("expand({word:?}) = {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let deep = "${A:-".repeat(100_000) + &"}".repeat(100_000);
        let e = expand(&deep, '\\', &env).unwrap_err();
        assert!(e.message.contains("nested more than 64 deep"), "{e}");
        let ok = "${U:-".repeat(10) + "x" + &"}".repeat(10);
        assert_eq!(expand(&ok, '\\', &env).unwrap(), "x");
    }

    #[test]
    fn expand_words_table() {
        let cases: &[(&str, &[&str])] = &[
            ("a b  c", &["a", "b", "c"]),
            ("$SP z", &["x", "y", "z"]),
            ("\"$SP\" z", &["x  y", "z"]),
            ("'a b' \"\" c", &["a b", "", "c"]),
            ("a\\ b", &["a b"]),
            ("$UNSET", &[]),
            ("  ", &[]),
            ("80/tcp ${A}43", &["80/tcp", "a43"]),
        ];
        for (text, want) in cases {
            assert_eq!(
                expand_words(text, '\\', &env).unwrap(),
                want.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                "expand_words({text:?})"
            );
        }
        assert!(expand_words("'x", '\\', &env).is_err());
    }

    #[test]
    fn heredoc_bodies_keep_quotes() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("hi $A\n", Ok("hi a\n")),
            ("\"$A\" and '$A'\n", Ok("\"a\" and '$A'\n")),
            ("<?xml version=\"1.0\"?>\n", Ok("<?xml version=\"1.0\"?>\n")),
            ("cost \\$5\n", Ok("cost $5\n")),
            ("${UNSET:-x}\n", Ok("x\n")),
            (
                "don't\n",
                Err("unexpected end of statement while looking for matching single-quote"),
            ),
        ];
        for (body, want) in cases {
            let got = expand_heredoc(body, '\\', &env);
            match (want, &got) {
                (Ok(w), Ok(g)) => assert_eq!(g, w, "expand_heredoc({body:?})"),
                (Err(w), Err(g)) => assert_eq!(&g.message, w, "expand_heredoc({body:?})"),
                _ => panic!("expand_heredoc({body:?}) = {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn remove_quotes_keeps_meaning() {
        let cases = [
            ("plain", "plain"),
            ("\"a b\"", "a b"),
            ("'$A'", "\\$A"),
            ("\"$A\"", "$A"),
            ("\"${UNSET:-x y}\"", "${UNSET:-x y}"),
            ("'it''s'", "its"),
            ("\"say \\\"hi\\\"\"", "say \\\"hi\\\""),
            ("\"a\\b\"", "a\\\\b"),
            ("\"it's\"", "it\\'s"),
            ("a\\ b", "a\\ b"),
            ("'open", "'open"),
        ];
        for (word, want) in cases {
            let got = remove_quotes(word, '\\');
            assert_eq!(got, want, "remove_quotes({word:?})");
            assert_eq!(
                expand(&got, '\\', &env).ok(),
                expand(word, '\\', &env).ok(),
                "meaning of {word:?}"
            );
        }
        assert_eq!(remove_quotes("'$A`'", '`'), "`$A``");
        assert_eq!(expand("`$A``", '`', &env).unwrap(), "$A`");
    }
}
