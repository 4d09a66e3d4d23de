//! berth's engine: containers with Docker's semantics over berth's root,
//! shared by every process that opens it (the CLI and `berth daemon`).
//! A container is a directory with its record and state; while it runs it
//! belongs to its monitor process (`monitor`), which outlives whoever
//! started it.
#![forbid(unsafe_code)]

pub mod archive;
pub mod changes;
pub mod container;
pub mod embedded;
pub mod events;
pub mod exec;
pub mod health;
pub mod logs;
pub mod monitor;
pub mod network;
pub mod ops;
pub mod run;
pub mod spec;
pub mod stats;
pub mod system;
pub mod user;
pub mod volume_mount;
pub mod volumes;

pub use container::{Record, RestartPolicy, State, Status};
pub use ops::{Container, CreateConfig, WaitCondition};
pub use run::{Engine, Error, Result};
pub use spec::{Resources, RunSpec, build_spec};
