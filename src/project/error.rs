//! Errors of loading a project: each manifest problem is a [`Diagnostic`]
//! naming the file, line and column, the key path and what was expected,
//! printed as `berth.toml:12:9: services.web.ports[0]: invalid port ...`.

use std::fmt;
use std::path::PathBuf;

use super::source::{KeyPath, Sources, Span};

/// One problem in a manifest (or a file it names), with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// `file:line:col`, or just `file` when there is no position.
    pub location: String,
    /// The key path, like `services.web.ports[0]`; empty for the whole file.
    pub path: String,
    pub message: String,
}

impl Diagnostic {
    pub fn at(sources: &Sources, span: Span, path: &KeyPath, message: impl Into<String>) -> Self {
        Diagnostic {
            location: sources.location(span),
            path: path.to_string(),
            message: message.into(),
        }
    }
}

impl Diagnostic {
    /// Orders diagnostics by file, then line and column as numbers.
    pub fn sort_key(&self) -> (String, usize, usize) {
        let mut parts = self.location.rsplitn(3, ':');
        let col = parts.next().and_then(|c| c.parse().ok());
        let line = parts.next().and_then(|l| l.parse().ok());
        match (parts.next(), line, col) {
            (Some(file), Some(line), Some(col)) => (file.to_string(), line, col),
            _ => (self.location.clone(), 0, 0),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.location, self.message)
        } else {
            write!(f, "{}: {}: {}", self.location, self.path, self.message)
        }
    }
}

/// Why a project could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("no berth.toml found in {} or any parent directory, nor a compose.yaml; create one or name it with -f", .0.display())]
    NotFound(PathBuf),
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// One or more problems in the manifest, one per line.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Diagnostic>),
    #[error("invalid project name {0:?}: use only lowercase letters, digits, dashes and underscores, starting with a letter or digit")]
    ProjectName(String),
    #[error("cannot derive a project name from directory {}: set `name` in berth.toml or pass -p NAME", .0.display())]
    NoProjectName(PathBuf),
}

impl LoadError {
    /// The diagnostics, when the error is about the manifest's content.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            LoadError::Invalid(d) => d,
            _ => &[],
        }
    }
}
