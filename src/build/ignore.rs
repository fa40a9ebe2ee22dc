//! `.dockerignore`: which files of the build context are not sent to the
//! builder.
//!
//! The rules, as Docker's `patternmatcher` applies them:
//! - one pattern per line; lines starting with `#` are comments, blank
//!   lines are skipped, surrounding whitespace is trimmed;
//! - patterns are cleaned like Go's `filepath.Clean` (`./a` is `a`, `a/`
//!   is `a`, `a//b` is `a/b`) and a leading `/` is dropped;
//! - `*` matches any run of characters except `/`, `?` one character
//!   except `/`, `[a-z]`/`[^a]` a class, `\` escapes the next character,
//!   `**` any number of directories (also none), `**` at the end anything;
//! - a pattern excludes a path when it matches the path or one of its
//!   parent directories, so a pattern naming a directory excludes
//!   everything under it;
//! - `!pattern` re-includes what it matches; the last matching line wins.
//!
//! Reference: <https://docs.docker.com/build/concepts/context/#dockerignore-files>.

/// A `.dockerignore` that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(".dockerignore line {line}: {message}")]
pub struct IgnoreError {
    pub line: usize,
    pub message: String,
}

/// The parsed rules of a `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    /// `!pattern`: re-includes.
    exception: bool,
    tokens: Vec<Tok>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(char),
    /// `*`: any run without `/`.
    Star,
    /// `?`: one character but `/`.
    Quest,
    /// `[...]`: ranges, maybe negated.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `**` (with its `/`) before more pattern: empty, or anything ending in `/`.
    Dirs,
    /// `**` at the end: anything.
    Rest,
}

impl DockerIgnore {
    /// Parses the text of a `.dockerignore`.
    pub fn parse(text: &str) -> Result<Self, IgnoreError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut rules = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            if line.starts_with('#') {
                continue;
            }
            let mut pattern = line.trim();
            if pattern.is_empty() {
                continue;
            }
            let exception = pattern.starts_with('!');
            if exception {
                pattern = pattern[1..].trim();
                if pattern.is_empty() {
                    return Err(IgnoreError {
                        line: line_no,
                        message:
                            "illegal exclusion pattern \"!\": write !path to re-include a path"
                                .into(),
                    });
                }
            }
            let mut cleaned = clean(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
            let tokens = compile(&cleaned).map_err(|why| IgnoreError {
                line: line_no,
                message: format!("bad pattern {pattern:?}: {why}"),
            })?;
            rules.push(Rule { exception, tokens });
        }
        Ok(Self { rules })
    }

    /// Whether the file or directory at `rel_path` (`/`-separated, relative
    /// to the context root) is left out of the context.
    pub fn is_excluded(&self, rel_path: &str) -> bool {
        let Some(path) = normalize(rel_path) else {
            return false;
        };
        let parents = parents(&path);
        let mut excluded = false;
        for rule in &self.rules {
            if rule.exception != excluded {
                // It could not change the outcome.
                continue;
            }
            if rule.matches_or_parent(&path, &parents) {
                excluded = !rule.exception;
            }
        }
        excluded
    }

    /// Whether `dir` is excluded and no `!` rule can re-include anything
    /// under it, so that a walker need not descend into it. Conservative:
    /// any `!` rule after the last rule excluding `dir` that could match a
    /// path under it makes this false (even if a later rule undoes it).
    pub fn excludes_dir_entirely(&self, dir: &str) -> bool {
        let Some(path) = normalize(dir) else {
            return false;
        };
        if !self.is_excluded(&path) {
            return false;
        }
        let parents = parents(&path);
        // The last excluding rule matching the directory matches everything
        // under it too: only exceptions after it can re-include.
        let Some(last) = self
            .rules
            .iter()
            .rposition(|r| !r.exception && r.matches_or_parent(&path, &parents))
        else {
            return false;
        };
        let below: Vec<char> = format!("{path}/").chars().collect();
        !self.rules[last + 1..]
            .iter()
            .any(|r| r.exception && run(&r.tokens, &below, true))
    }
}

impl Rule {
    fn matches_or_parent(&self, path: &str, parents: &[String]) -> bool {
        let chars: Vec<char> = path.chars().collect();
        run(&self.tokens, &chars, false)
            || parents.iter().any(|p| {
                let chars: Vec<char> = p.chars().collect();
                run(&self.tokens, &chars, false)
            })
    }
}

/// `a/b/c` → `["a", "a/b"]`.
fn parents(path: &str) -> Vec<String> {
    path.match_indices('/')
        .map(|(i, _)| path[..i].to_string())
        .collect()
}

/// A context-relative path, cleaned; `None` for the root itself.
fn normalize(rel_path: &str) -> Option<String> {
    let p = clean(rel_path);
    let p = p.trim_start_matches('/');
    if p.is_empty() || p == "." {
        None
    } else {
        Some(p.to_string())
    }
}

/// Go's `filepath.Clean` for `/`-separated paths.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

fn compile(pattern: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                toks.push(if i == chars.len() {
                    Tok::Rest
                } else {
                    Tok::Dirs
                });
            }
            '*' => toks.push(Tok::Star),
            '?' => toks.push(Tok::Quest),
            '\\' => match chars.get(i) {
                Some(&n) => {
                    toks.push(Tok::Lit(n));
                    i += 1;
                }
                None => toks.push(Tok::Lit('\\')),
            },
            '[' => {
                let negated = chars.get(i) == Some(&'^');
                if negated {
                    i += 1;
                }
                let mut ranges = Vec::new();
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err("unterminated character class".into());
                    };
                    i += 1;
                    if c == ']' && !ranges.is_empty() {
                        break;
                    }
                    let lo = class_char(c, &chars, &mut i)?;
                    let mut hi = lo;
                    if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|n| *n != ']') {
                        let c = chars[i + 1];
                        i += 2;
                        hi = class_char(c, &chars, &mut i)?;
                        if hi < lo {
                            return Err(format!("bad range {lo}-{hi} in character class"));
                        }
                    }
                    ranges.push((lo, hi));
                }
                toks.push(Tok::Class { negated, ranges });
            }
            _ => toks.push(Tok::Lit(c)),
        }
    }
    Ok(toks)
}

/// A character inside `[...]`, `\` escaping the next one.
fn class_char(c: char, chars: &[char], i: &mut usize) -> Result<char, String> {
    if c != '\\' {
        return Ok(c);
    }
    let n = *chars
        .get(*i)
        .ok_or_else(|| "unterminated character class".to_string())?;
    *i += 1;
    Ok(n)
}

/// Whether `toks` match all of `text`; with `prefix`, whether they can
/// match some string that starts with `text`. Dynamic programming over
/// (token, position) from the end, so hostile patterns stay linear in
/// tokens times characters and nothing recurses.
fn run(toks: &[Tok], text: &[char], prefix: bool) -> bool {
    let n = text.len();
    // next[j]: tokens t+1.. match text[j..]; cur[j]: tokens t.. do.
    let mut next: Vec<bool> = (0..=n).map(|j| j == n).collect();
    let mut cur = vec![false; n + 1];
    for tok in toks.iter().rev() {
        // For `Dirs`: some `/` at or after j with a match after it.
        let mut slash_then_match = false;
        for j in (0..=n).rev() {
            let c = text.get(j).copied();
            cur[j] = if j == n && prefix {
                // Whatever the rest of the pattern needs can follow.
                true
            } else {
                match tok {
                    Tok::Lit(l) => c == Some(*l) && next[j + 1],
                    Tok::Quest => c.is_some_and(|c| c != '/') && next[j + 1],
                    Tok::Class { negated, ranges } => {
                        c.is_some_and(|c| {
                            c != '/'
                                && ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c))
                                    != *negated
                        }) && next[j + 1]
                    }
                    Tok::Star => next[j] || (c.is_some_and(|c| c != '/') && cur[j + 1]),
                    Tok::Rest => true,
                    Tok::Dirs => {
                        if c == Some('/') && next[j + 1] {
                            slash_then_match = true;
                        }
                        next[j] || slash_then_match
                    }
                }
            };
        }
        std::mem::swap(&mut next, &mut cur);
    }
    next[0] || (prefix && n == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ig(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text).unwrap()
    }

    #[test]
    fn exclusion_table() {
        // (rules, path, excluded)
        let cases: &[(&str, &str, bool)] = &[
            ("", "a", false),
            ("a", "a", true),
            ("a", "a/b/c", true),
            ("a", "b/a", false),
            ("a", "ab", false),
            ("/a", "a", true),
            ("./a", "a/x", true),
            ("a/", "a/x", true),
            ("a//b", "a/b", true),
            ("a/../b", "b", true),
            ("*.md", "README.md", true),
            ("*.md", "docs/README.md", false),
            ("*/*.md", "docs/README.md", true),
            ("**/*.md", "README.md", true),
            ("**/*.md", "a/b/c/README.md", true),
            ("**/*.md", "a/b/c/README.txt", false),
            ("docs/**", "docs/a/b", true),
            ("docs/**", "docs", false),
            ("docs/**/x", "docs/x", true),
            ("docs/**/x", "docs/a/b/x", true),
            ("docs/**/x", "docsx", false),
            ("**", "anything/at/all", true),
            ("a?c", "abc", true),
            ("a?c", "a/c", false),
            ("[a-c]x", "bx", true),
            ("[^a-c]x", "bx", false),
            ("[^a-c]x", "dx", true),
            ("\\*", "*", true),
            ("\\*", "a", false),
            ("node_modules", "node_modules/x/y.js", true),
            ("*", "a/b", true),
            ("*.log\n!keep.log", "keep.log", false),
            ("*.log\n!keep.log", "other.log", true),
            ("!keep.log\n*.log", "keep.log", true),
            ("a\n!a/b", "a/b/c", false),
            ("a\n!a/b", "a/c", true),
            ("a\n!a/b", "a", true),
            ("a\n!a/b\na/b/c", "a/b/c/d", true),
            ("a\n!a/b\na/b/c", "a/b/d", false),
            ("**\n!src\n**/*.tmp", "src/x.rs", false),
            ("**\n!src\n**/*.tmp", "src/x.tmp", true),
            ("**\n!src\n**/*.tmp", "target/x", true),
            ("# comment\n\n  a  \n", "a", true),
            ("# comment", "# comment", false),
            ("Dockerfile\n.dockerignore", "Dockerfile", true),
            ("Dockerfile\n.dockerignore", ".dockerignore", true),
            ("a", "./a/b", true),
            ("a", "/a", true),
            ("a", "", false),
        ];
        for (rules, path, want) in cases {
            assert_eq!(
                ig(rules).is_excluded(path),
                *want,
                "rules {rules:?}, path {path:?}"
            );
        }
    }

    #[test]
    fn whole_directories() {
        // (rules, dir, can skip)
        let cases: &[(&str, &str, bool)] = &[
            ("a", "a", true),
            ("a", "b", false),
            ("a/**", "a", false),
            ("a\n!a/b", "a", false),
            ("a\n!a/b", "a/c", true),
            ("a\n!*/keep", "a", false),
            ("a\n!**/keep", "a", false),
            ("a\n!**/keep", "a/deep/er", false),
            ("a\n!b/keep", "a", true),
            ("!a/keep\na", "a", true),
            // Conservative: an exception after the directory's rule keeps
            // the walker going even if a later rule excludes it again.
            ("a\n!a/b\na/b", "a", false),
            ("**\n!src", "target", true),
            ("**\n!src", "src", false),
            ("**\n!src/*.rs", "src", false),
            ("**\n!src/*.rs", "src/x", true),
            ("*.txt", "dir.txt", true),
        ];
        for (rules, dir, want) in cases {
            assert_eq!(
                ig(rules).excludes_dir_entirely(dir),
                *want,
                "rules {rules:?}, dir {dir:?}"
            );
        }
    }

    #[test]
    fn bad_files() {
        let e = DockerIgnore::parse("a\n!\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e
            .to_string()
            .starts_with(".dockerignore line 2: illegal exclusion"));
        let e = DockerIgnore::parse("x[ab").unwrap_err();
        assert_eq!(
            e.to_string(),
            ".dockerignore line 1: bad pattern \"x[ab\": unterminated character class"
        );
        assert!(DockerIgnore::parse("[z-a]").is_err());
    }

    #[test]
    fn hostile_patterns_stay_fast() {
        let rules = ig(&format!("{}b", "*a".repeat(40)));
        let path = "a".repeat(2000);
        assert!(!rules.is_excluded(&path));
        let rules = ig(&"**/".repeat(30));
        let deep = vec!["d"; 300].join("/");
        assert!(rules.is_excluded(&deep));
    }

    #[test]
    fn random_rules_never_panic_and_skipped_dirs_stay_excluded() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let alphabet: Vec<char> = "ab/*?[]^-!\\.#\n ".chars().chain(['é']).collect();
        let pick = |rng: &mut rand::rngs::StdRng, n: usize| -> String {
            (0..rng.gen_range(0..n))
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect()
        };
        let mut parsed = 0;
        let mut skipped = 0;
        for _ in 0..3000 {
            let rules = pick(&mut rng, 40);
            let Ok(ig) = DockerIgnore::parse(&rules) else {
                continue;
            };
            parsed += 1;
            for _ in 0..5 {
                let path = pick(&mut rng, 20);
                let excluded = ig.is_excluded(&path);
                if ig.excludes_dir_entirely(&path) {
                    // Skipping a directory is only ever allowed for excluded
                    // ones, and nothing under it may come back.
                    assert!(excluded, "{rules:?} {path:?}");
                    skipped += 1;
                    for _ in 0..5 {
                        let child = format!("{path}/{}", pick(&mut rng, 12));
                        assert!(ig.is_excluded(&child), "{rules:?} {child:?}");
                    }
                }
            }
        }
        assert!(parsed > 100, "only {parsed} rule sets parsed");
        assert!(skipped > 20, "only {skipped} skippable directories drawn");
    }

    #[test]
    fn cleaning() {
        assert_eq!(clean("./a/"), "a");
        assert_eq!(clean("/../a"), "/a");
        assert_eq!(clean("../a"), "../a");
        assert_eq!(clean(""), ".");
        assert_eq!(clean("a/./b/../c"), "a/c");
    }
}
