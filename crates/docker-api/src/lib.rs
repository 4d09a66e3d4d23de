//! The Docker Engine API over berth's engine: what `docker` (CLI 28) and
//! docker-py send, as ../shared/specs/api-surface.md Part A captured it.
//! HTTP/1.1 on a unix socket with keep-alive, version prefixes, hijacked
//! (101) attach streams, streaming responses whose headers go out at once,
//! docker's error bodies and status codes. The daemon holds no state of its
//! own beyond attach requests waiting for their container to start: every
//! container lives on disk and in its monitor, so the CLI and the daemon
//! see the same containers.
#![forbid(unsafe_code)]
#![deny(clippy::string_slice)]
#![recursion_limit = "512"]

mod api;
pub mod detach;
mod error;
mod http;
pub mod images_api;
pub mod model;
pub mod server;
pub mod shapes;
pub mod syntax;

pub use server::{API_VERSION, Listener, MIN_API_VERSION, mutual_tls, serve};
