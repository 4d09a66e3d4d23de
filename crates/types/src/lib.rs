//! Pure types shared by every berth crate. Nothing here does IO.
//!
//! - [`ErrorKind`]: the category of a failure, which each edge (CLI exit
//!   code, Docker API status, Kubernetes `Status`) maps to its own wire form.
//! - [`ContainerId`]: a validated container identifier.
#![forbid(unsafe_code)]

mod error_kind;
mod id;

pub use error_kind::ErrorKind;
pub use id::{ContainerId, InvalidId};
