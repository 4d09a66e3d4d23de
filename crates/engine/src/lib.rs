//! berth's engine: containers with Docker's semantics. So far: turning an
//! image and `docker run`-style options into an OCI runtime spec, and
//! running such a container in the foreground.
#![forbid(unsafe_code)]

pub mod run;
pub mod spec;
pub mod user;

pub use run::{Engine, Error, Network, Result, RunOptions};
pub use spec::{RunSpec, build_spec};
