//! Dockerfiles: the syntax tree ([`ast`]).
//!
//! Reference: <https://docs.docker.com/reference/dockerfile/>.

pub mod ast;

pub use ast::*;
