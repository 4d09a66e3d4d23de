//! berth's node agent (layer 3): the kubelet's job for one node.
#![forbid(unsafe_code)]

pub mod server;
