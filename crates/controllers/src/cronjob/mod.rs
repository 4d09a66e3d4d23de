//! The CronJob controller (`cronjob-controller`): creates a Job for each
//! scheduled time, keeps `status.active`, `lastScheduleTime` and
//! `lastSuccessfulTime`, applies the concurrency policy and the starting
//! deadline, and deletes Jobs beyond the history limits.

pub mod core;
pub mod schedule;
pub mod sync;

pub use sync::run;

#[cfg(test)]
mod tests;
