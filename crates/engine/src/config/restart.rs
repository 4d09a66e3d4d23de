//! Restart policies and when they restart a container.

use serde::{Deserialize, Serialize};

/// What the monitor does when the container exits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Never restart.
    #[default]
    No,
    /// Always restart, also after the engine's host restarts.
    Always,
    /// As `Always`, unless a user stopped it.
    UnlessStopped,
    /// Restart after a non-zero exit, at most `max_retries` times (0: no
    /// limit).
    OnFailure {
        /// The most restarts (0: no limit).
        #[serde(default)]
        max_retries: u32,
    },
}

impl RestartPolicy {
    /// Docker's name of the policy (`no`, `always`, `unless-stopped`,
    /// `on-failure`).
    pub fn name(self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
            RestartPolicy::OnFailure { .. } => "on-failure",
        }
    }

    /// The retry limit (0 for policies without one).
    pub fn max_retries(self) -> u32 {
        match self {
            RestartPolicy::OnFailure { max_retries } => max_retries,
            _ => 0,
        }
    }

    /// Whether it restarts at all.
    pub fn restarts(self) -> bool {
        self != RestartPolicy::No
    }

    /// Whether the monitor restarts a container that exited with `code`
    /// after `restarts` restarts. A container stopped by the user is never
    /// restarted.
    pub fn should_restart(self, code: i32, restarts: u32, manual_stop: bool) -> bool {
        if manual_stop {
            return false;
        }
        match self {
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
            RestartPolicy::OnFailure { max_retries } => {
                code != 0 && (max_retries == 0 || restarts < max_retries)
            }
            RestartPolicy::No => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_like_docker() {
        let of = RestartPolicy::OnFailure { max_retries: 3 };
        assert!(of.should_restart(1, 2, false));
        assert!(!of.should_restart(1, 3, false));
        assert!(!of.should_restart(0, 0, false));
        assert!(RestartPolicy::Always.should_restart(0, 99, false));
        assert!(!RestartPolicy::Always.should_restart(0, 0, true));
        assert!(!RestartPolicy::No.should_restart(1, 0, false));
        let j = serde_json::to_string(&of).unwrap();
        assert_eq!(j, r#"{"name":"on-failure","max_retries":3}"#);
        assert_eq!(serde_json::from_str::<RestartPolicy>(&j).unwrap(), of);
        assert_eq!(
            serde_json::from_str::<RestartPolicy>(r#"{"name":"unless-stopped"}"#).unwrap(),
            RestartPolicy::UnlessStopped
        );
    }
}
