//! berth's images: the content-addressed blob store, image metadata in
//! SQLite, safe layer unpacking, overlay snapshots shared by containers,
//! docker-archive and OCI-layout archives, and the registry client.
#![forbid(unsafe_code)]
#![deny(clippy::string_slice)]

pub mod archive;
pub mod config;
pub mod db;
pub mod error;
pub mod fetch;
pub mod images;
mod owner;
pub mod registry;
mod snapshots;
pub mod store;
pub mod transaction;
pub mod unpack;

pub use error::{Error, Result};
pub use images::{ImageStore, ImageSummary, Removed};
pub use transaction::Transaction;
