//! berth's image builder. [`dockerfile`] parses a Dockerfile into typed
//! instructions (pure: no I/O, fuzzed) and expands variables the way
//! Docker's shell lexer does; [`context`] reads a build context (a
//! directory, with `.dockerignore`), resolves COPY/ADD sources in it
//! without ever leaving it, hashes them for the cache and streams them as
//! a layer-shaped tar. The builder runs a parsed file's stages through the
//! engine library. This crate knows no HTTP (DESIGN.md, layer 3).
#![forbid(unsafe_code)]
#![deny(clippy::string_slice)]

pub mod builder;
pub mod context;
pub mod dockerfile;
pub mod intake;
