//! `state.json`: the life of a container — status, pids, exit code, the
//! monitor holding it, health results. Written by whichever process changes
//! it (a monitor, an engine operation) under the container's lock.

use std::fs;

use serde::{Deserialize, Serialize};

/// The schema `state.json` is written in.
pub const STATE_SCHEMA: u32 = 2;

/// Docker's zero time, for timestamps that have not happened.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The life of a container, as docker names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Made, never started.
    #[default]
    Created,
    /// Its process runs.
    Running,
    /// Frozen.
    Paused,
    /// Waiting to be restarted by its policy.
    Restarting,
    /// Its process ended.
    Exited,
    /// Being removed.
    Removing,
    /// Broken beyond use.
    Dead,
}

impl Status {
    /// Docker's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
            Status::Removing => "removing",
            Status::Dead => "dead",
        }
    }
}

/// The state of a container. Schema 2 (snake_case); schema 1 files
/// (docker's PascalCase names) are read through the aliases.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    /// Schema version.
    #[serde(alias = "Schema")]
    pub schema: u32,
    /// Status.
    #[serde(alias = "Status")]
    pub status: Status,
    /// Pid of the container's process on the host (0 when not running).
    #[serde(alias = "Pid")]
    pub pid: i32,
    /// Exit code of the last run.
    #[serde(alias = "ExitCode")]
    pub exit_code: i32,
    /// Why the last start failed.
    #[serde(alias = "Error")]
    pub error: String,
    /// RFC 3339.
    #[serde(alias = "StartedAt")]
    pub started_at: String,
    /// RFC 3339.
    #[serde(alias = "FinishedAt")]
    pub finished_at: String,
    /// Restarts done by the policy.
    #[serde(alias = "RestartCount")]
    pub restart_count: u32,
    /// The last exit was the OOM killer's.
    #[serde(alias = "OomKilled")]
    pub oom_killed: bool,
    /// The user stopped it (policies do not restart it).
    #[serde(alias = "ManualStop")]
    pub manual_stop: bool,
    /// Pid of the monitor process (0: none).
    #[serde(alias = "MonitorPid")]
    pub monitor_pid: i32,
    /// Start time of the monitor (/proc/<pid>/stat field 22), against pid reuse.
    #[serde(alias = "MonitorStart")]
    pub monitor_start: u64,
    /// Health check results (containers with a check).
    #[serde(alias = "Health")]
    pub health: Option<crate::health::Health>,
}

impl Default for State {
    fn default() -> State {
        State {
            schema: STATE_SCHEMA,
            status: Status::Created,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            started_at: ZERO_TIME.into(),
            finished_at: ZERO_TIME.into(),
            restart_count: 0,
            oom_killed: false,
            manual_stop: false,
            monitor_pid: 0,
            monitor_start: 0,
            health: None,
        }
    }
}

/// Start time of a process (clock ticks since boot), `None` if it is gone.
pub fn process_start(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the command may hold spaces and parentheses: fields start after the last ')'
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let state = rest.split(' ').next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    rest.split(' ').nth(19)?.parse().ok()
}

impl State {
    /// Whether the monitor recorded in the state is still alive.
    pub fn monitor_alive(&self) -> bool {
        self.monitor_pid > 0 && process_start(self.monitor_pid) == Some(self.monitor_start)
    }

    /// Running or paused or restarting, with a live monitor.
    pub fn is_active(&self) -> bool {
        matches!(
            self.status,
            Status::Running | Status::Paused | Status::Restarting
        ) && self.monitor_alive()
    }
}
