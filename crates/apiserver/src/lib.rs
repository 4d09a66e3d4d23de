//! berth's Kubernetes API server (layer 4): the Kubernetes API over the
//! `kv` store contract. It never names a store backend.
//!
//! - [`api`]: routing, verbs, watch, patch, subresources, discovery;
//! - [`kinds`]: defaulting and validation of built-in kinds; [`crd`]:
//!   custom resources; [`table`]: server-side printing;
//! - [`auth`] and [`security`]: the PKI, kubeconfig, authentication, RBAC;
//! - [`admission`]: LimitRanger, ResourceQuota, PodSecurity, ServiceAccount,
//!   DefaultTolerationSeconds;
//! - [`alloc`]: Service cluster IPs and node ports, the `kubernetes`
//!   Service;
//! - [`storage`]: objects over the store; [`server`]: the HTTPS listener.
#![forbid(unsafe_code)]

pub mod admission;
pub mod alloc;
pub mod api;
pub mod auth;
pub mod bootstrap;
pub mod conversion;
pub mod crd;
mod decode;
pub mod error;
pub mod kinds;
pub mod meta;
mod metrics;
mod netpol;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod request;
pub mod resources;
mod reviews;
pub mod schema;
pub mod security;
pub mod selectors;
pub mod server;
pub mod storage;
pub mod table;

pub use api::{Api, router};
pub use bootstrap::{Config, ControlPlane, start};
