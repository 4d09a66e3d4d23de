//! Pure types shared by every berth crate. Nothing here does IO.
//!
//! - [`ErrorKind`]: the category of a failure, which each edge (CLI exit
//!   code, Docker API status, Kubernetes `Status`) maps to its own wire form.
//! - [`ContainerId`]: a validated container identifier.
//! - [`Digest`], [`Reference`]: content digests and image references.
//! - [`image`]: OCI and Docker image manifests, indexes and configs.
//! - [`time`]: RFC 3339 formatting and parsing.
//! - [`Signal`]: Linux signals by name and number.
//! - [`labels`]: label selectors evaluated against labels.
//! - [`prom`]: the Prometheus text exposition format, written and read.
#![forbid(unsafe_code)]
#![deny(clippy::string_slice)]

mod digest;
mod error_kind;
mod id;
pub mod image;
pub mod labels;
pub mod prom;
pub mod quantity;
mod reference;
mod signal;
pub mod time;

pub use digest::{Algorithm, Digest, InvalidDigest};
pub use error_kind::ErrorKind;
pub use id::{ContainerId, InvalidId, short_id};
pub use reference::{DOCKER_HUB, InvalidReference, Reference};
pub use signal::{InvalidSignal, Signal};
