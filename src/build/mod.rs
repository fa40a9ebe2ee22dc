//! The image builder: Dockerfiles in, images out.
//!
//! `dockerfile` parses a Dockerfile into stages of instructions (BuildKit's
//! syntax: line continuations, `# escape=`, comments, JSON and shell forms,
//! here-documents) and expands `$VAR`s as Docker does; `ignore` reads
//! `.dockerignore` and says which context paths are left out.

pub mod dockerfile;
pub mod ignore;
