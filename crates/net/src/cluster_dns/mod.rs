//! A cluster DNS server: an authoritative zone (`cluster.local` in a
//! Kubernetes cluster) filled by its owner, everything else forwarded to
//! the node's resolvers, as CoreDNS's `kubernetes` plugin with `forward . /etc/resolv.conf`
//! answers.
//!
//! This module knows no Kubernetes type: the node agent turns Services,
//! EndpointSlices and Pods into a neutral record table ([`Zone`]: names →
//! A, SRV, PTR and CNAME records) and swaps it in, as a whole or per name,
//! through a [`ZoneHandle`]; [`server::start`] answers from whatever the
//! handle holds at the time of each query.
//!
//! - [`zone`]: the table and the pure answer function (unit-tested).
//! - [`server`]: UDP and TCP on one address, port 53 (`IP_FREEBIND`; the
//!   forwarding and socket code is [`crate::dns_io`], shared with the
//!   docker networks' resolver).

pub mod server;
pub mod zone;

pub use server::{Server, ServerOptions, start};
pub use zone::{Rdata, Zone, ZoneHandle, answer};

/// The TTL of cluster answers: CoreDNS's `kubernetes` plugin default (5 s).
pub const DEFAULT_TTL: u32 = 5;
