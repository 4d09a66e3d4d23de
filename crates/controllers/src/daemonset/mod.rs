//! The DaemonSet controller (`daemon-set-controller`): one pod on every
//! eligible node (node selector, required node affinity, taints against
//! the template's and the daemon tolerations), pinned to its node by a
//! required node affinity on `metadata.name` for the scheduler to bind;
//! rolling updates by ControllerRevision (maxUnavailable, maxSurge) or
//! OnDelete.

pub mod core;
pub mod eligibility;
pub mod sync;

pub use sync::run;

#[cfg(test)]
mod tests;
