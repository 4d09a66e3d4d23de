//! berth's Kubernetes API server (layer 4): the Kubernetes API over the
//! `kv` store contract. It never names a store backend.
#![forbid(unsafe_code)]

pub mod auth;
pub mod patch;
