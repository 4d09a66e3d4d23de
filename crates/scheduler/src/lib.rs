//! berth's scheduler (layer 3): places pending pods on nodes.
//!
//! The core is pure: a cache of nodes and the pods on them, filters (can
//! this pod run there?) and scores (how good a place is it?), as
//! kube-scheduler's plugins define them. The loop around it ([`run`])
//! watches the cluster through the Kubernetes API and binds through
//! `pods/binding`.
#![forbid(unsafe_code)]
#![deny(clippy::string_slice)]

pub mod cache;
pub mod node_info;
pub mod plugins;
pub mod pod_info;
pub mod preempt;
pub mod quantity;
pub mod resources;
pub mod run;
pub mod schedule;
pub mod selectors;
pub mod status;

pub use cache::Cache;
pub use node_info::NodeInfo;
pub use pod_info::PodInfo;
pub use preempt::{Pdb, Preemption};
pub use run::{run, spawn};
pub use schedule::{Decision, Scheduler};
pub use status::{Code, Diagnosis, FitError, ScheduleError, Status};

#[cfg(test)]
mod tests;
