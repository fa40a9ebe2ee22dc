//! The image builder: Dockerfiles in, images out.
//!
//! `dockerfile` parses a Dockerfile into stages of instructions (BuildKit's
//! syntax: line continuations, `# escape=`, comments, JSON and shell forms,
//! here-documents) and expands `$VAR`s as Docker does; `ignore` reads
//! `.dockerignore` and says which context paths are left out. `engine` runs
//! the build: `context` selects COPY sources, `layer` writes COPY layers,
//! `run` runs RUN containers (`mount`: their `--mount`s), `config` applies config-only steps, `derive` stores each step's image, `rootview`
//! reads an image's files, `cache` keys and records steps.

pub mod cache;
pub mod config;
pub mod context;
pub mod derive;
pub mod dockerfile;
pub mod engine;
pub mod ignore;
pub mod layer;
pub mod mount;
pub mod prune;
pub mod rootview;
pub mod run;
