//! Dockerfiles: the syntax tree ([`ast`]), the parser ([`parser`]) and
//! variable expansion ([`expand`]).
//!
//! Reference: <https://docs.docker.com/reference/dockerfile/>.

pub mod ast;
pub mod expand;
pub mod parser;

#[cfg(test)]
mod tests;

pub use ast::*;
pub use expand::{expand, expand_heredoc, expand_words, remove_quotes, ExpandError};
pub use parser::{parse, ParseError};
