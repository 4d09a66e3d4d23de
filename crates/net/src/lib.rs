//! berth's bridge networking, Docker style, as a synchronous library.
//!
//! - [`Net`] is a root's networks: create/inspect/remove/prune networks
//!   ([`Network`]), attach and detach containers ([`Net::attach`] →
//!   [`Endpoint`]), address management ([`ipam`]) and published ports.
//! - [`netns`] makes and removes persistent network namespaces; a run's
//!   end ([`Net::release`]) leaves its veth pairs to the namespace's end
//!   ([`release`]).
//! - [`rules`] compiles the nftables rule set from what is on disk (pure);
//!   [`nft`] applies it atomically: per container only the published ports'
//!   rules, in-process over netlink ([`nft_netlink`]); the whole table with
//!   `nft -f` when the networks changed.
//! - [`services`] and [`policy`] compile the service proxy's and the
//!   NetworkPolicy tables the node agent feeds (pure).
//! - [`dns`] is the embedded resolver for user-defined networks;
//!   [`cluster_dns`] the cluster DNS (a zone its owner fills, e.g. the node
//!   agent with `cluster.local`); both share [`dns_io`] (sockets, forwarding).
//!
//! All state lives under `<root>/networks/` (layout in [`store`]) and is
//! safe for several processes at once. The API is blocking and needs no
//! async runtime: the per-container monitor calls it directly and a tokio
//! daemon through `spawn_blocking`.
//!
//! Dependencies: `netlink-packet-route` + `netlink-sys` (rtnetlink messages
//! over a blocking socket), `hickory-proto` (DNS wire format), `rustix`
//! (flock, setns, mounts), `berth-sys` (unshare), `serde_json` (records).
#![forbid(unsafe_code)]
#![deny(clippy::string_slice)]

pub mod cluster_dns;
pub mod config;
pub mod dns;
pub mod dns_io;
pub mod endpoint;
pub mod error;
pub mod ipam;
pub mod netlink;
pub mod netns;
pub mod network;
pub mod nft;
pub mod nft_netlink;
mod ops;
pub mod policy;
pub mod ports;
pub mod release;
pub mod rules;
pub mod services;
pub mod store;
pub mod subnet;
pub mod sysctl;
pub mod timing;

pub use config::NetConfig;
pub use endpoint::{AttachRequest, Endpoint};
pub use error::{Error, Result};
pub use network::{CreateNetwork, Network};
pub use ops::Net;
pub use ports::{PortBinding, PortRequest, Proto};
pub use subnet::Subnet;
