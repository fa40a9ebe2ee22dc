//! The image builder: Dockerfiles in, images out.
//!
//! `dockerfile` parses a Dockerfile into stages of instructions (BuildKit's
//! syntax: line continuations, `# escape=`, comments, JSON and shell forms,
//! here-documents) and expands `$VAR`s as Docker does; `ignore` reads
//! `.dockerignore`.

pub mod cache;
pub mod context;
pub mod derive;
pub mod dockerfile;
pub mod engine;
pub mod layer;
pub mod rootview;
pub mod run;
