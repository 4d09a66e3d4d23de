//! berth's OCI runtime library: from a bundle's `config.json` to an
//! isolated, running container, and the operations on it afterwards.
#![forbid(unsafe_code)]
#![deny(clippy::string_slice)]

pub mod caps;
pub mod cgroups;
pub mod console;
pub mod container;
pub mod error;
pub mod hooks;
pub mod mountopts;
pub mod proc_mounts;
pub mod process;
pub mod procfs;
pub mod rootfs;
pub mod seal;
pub mod seccomp;
pub mod spec;
pub mod state;
pub mod sync;

pub use container::{CreateOptions, ExecOptions, Listed, Runtime};
pub use error::{Error, Result};
