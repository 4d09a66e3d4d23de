//! The Job controller (`job-controller`): runs a Job's pods to its
//! completions under its parallelism, retries failures with a backoff up
//! to the backoff limit, applies the pod failure policy, the active
//! deadline and suspension, counts finished pods through the
//! `batch.kubernetes.io/job-tracking` finalizer and writes the Job's
//! status and conditions; and the TTL-after-finished controller, which
//! deletes finished Jobs once their `ttlSecondsAfterFinished` passed.

pub mod core;
pub mod indexes;
pub mod policy;
pub mod sync;
pub mod ttl;

pub use sync::run;

#[cfg(test)]
mod tests;
