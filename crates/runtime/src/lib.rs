//! berth's OCI runtime library: from a bundle's `config.json` to an
//! isolated, running container, and the operations on it afterwards.
#![forbid(unsafe_code)]

pub mod cgroups;
pub mod error;
pub mod procfs;
pub mod seccomp;
pub mod spec;
pub mod state;

pub use error::{Error, Result};
