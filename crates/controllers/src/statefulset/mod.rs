//! The StatefulSet controller (`statefulset-controller`): pods with
//! stable names `<set>-<ordinal>`, created in order (OrderedReady) or all
//! at once (Parallel), each with its claims from the volume claim
//! templates; rolling updates by ControllerRevision with a partition and
//! maxUnavailable; claim retention on deletion and scale-down.

pub mod core;
pub mod sync;

pub use sync::run;

#[cfg(test)]
mod tests;
