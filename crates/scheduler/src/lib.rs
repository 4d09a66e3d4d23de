//! berth's scheduler (layer 3): places pending pods on nodes.
//!
//! The core is pure: a cache of nodes and the pods on them, filters (can
//! this pod run there?) and scores (how good a place is it?), as
//! kube-scheduler's plugins define them. The loop around it watches the
//! cluster through the Kubernetes API and binds through `pods/binding`.
#![forbid(unsafe_code)]
