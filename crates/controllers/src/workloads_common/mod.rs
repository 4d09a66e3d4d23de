//! Helpers shared by the Job, CronJob, DaemonSet and StatefulSet
//! controllers: owner references, pod states, label selectors,
//! ControllerRevisions and the watch → queue → reconcile loop.

pub mod adopt;
pub mod owner;
pub mod pods;
pub mod revision;
pub mod runner;
pub mod scale;
pub mod selector;
