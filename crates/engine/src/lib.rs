//! berth's engine: containers with Docker's semantics over berth's root,
//! shared by every process that opens it (the CLI, `berth daemon`, the
//! node agent). It is driven by a typed [`ContainerSpec`] and keeps its
//! own typed records; it knows no wire format and no command-line syntax
//! (ADR 0017). A container is a directory with its record and state; while
//! it runs it belongs to its monitor process (`monitor`), which outlives
//! whoever started it. Pods are sandboxes holding shared namespaces
//! ([`sandbox::PodRuntime`]).
#![forbid(unsafe_code)]
#![deny(clippy::string_slice)]
#![recursion_limit = "256"]

pub mod archive;
pub mod changes;
pub mod config;
pub mod container;
pub mod create;
pub mod embedded;
pub mod events;
pub mod exec;
pub mod filter;
pub mod health;
pub mod images;
pub mod lifecycle;
pub mod logs;
pub mod monitor;
pub mod network;
pub mod oci;
pub mod query;
pub mod recover;
pub mod run;
pub mod sandbox;
pub mod stats;
pub mod streams;
pub mod system;
pub mod top;
pub mod user;
pub mod volume_mount;
pub mod volumes;
pub mod watch;

pub use changes::CommitOptions;
pub use config::ContainerSpec;
pub use container::{Record, State, Status};
pub use create::Created;
pub use query::Container;
pub use run::{Engine, Error, Result};
pub use sandbox::PodRuntime;
pub use streams::WaitCondition;
