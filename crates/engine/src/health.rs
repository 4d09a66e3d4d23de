//! Health checks (`HEALTHCHECK`, `--health-*`): the container's monitor
//! starts a short-lived `berth health-check ROOT ID` process every interval
//! (it never blocks on a check itself); that process runs the test as an
//! exec, with the timeout, and records the result in the container's
//! state under its lock: `starting` until the first success, `healthy`,
//! or `unhealthy` after `retries` failures in a row (failures during the
//! start period do not count). Docker's defaults: 30 s interval and
//! timeout, 3 retries, no start period.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use berth_types::image::HealthConfig;
use serde::{Deserialize, Serialize};

use crate::run::{Engine, Error, Result};

/// Kept results per container (docker keeps 5).
const KEEP: usize = 5;
/// Output kept per result (docker keeps 4 KiB).
const MAX_OUTPUT: usize = 4096;

/// A container's health, kept in its state (schema 1 used docker's
/// PascalCase names: read through the aliases).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Health {
    /// `starting`, `healthy`, `unhealthy`.
    #[serde(alias = "Status")]
    pub status: String,
    /// Failures in a row.
    #[serde(alias = "FailingStreak")]
    pub failing_streak: u32,
    /// The last results, oldest first.
    #[serde(alias = "Log")]
    pub log: Vec<HealthResult>,
}

/// One check.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthResult {
    /// RFC 3339.
    #[serde(alias = "Start")]
    pub start: String,
    /// RFC 3339.
    #[serde(alias = "End")]
    pub end: String,
    /// 0 healthy, 1 unhealthy, -1 could not run.
    #[serde(alias = "ExitCode")]
    pub exit_code: i32,
    /// What it printed (truncated).
    #[serde(alias = "Output")]
    pub output: String,
}

/// The check a container runs: its own settings over the image's.
/// `None`: no check (none set, or `NONE`).
pub fn effective(image: Option<&HealthConfig>, own: Option<&HealthConfig>) -> Option<HealthConfig> {
    let mut h = image.cloned().unwrap_or_default();
    if let Some(o) = own {
        if !o.test.is_empty() {
            h.test = o.test.clone();
        }
        for (dst, src) in [
            (&mut h.interval, o.interval),
            (&mut h.timeout, o.timeout),
            (&mut h.start_period, o.start_period),
            (&mut h.start_interval, o.start_interval),
            (&mut h.retries, o.retries),
        ] {
            if src != 0 {
                *dst = src;
            }
        }
    }
    match h.test.first().map(String::as_str) {
        None | Some("NONE") => None,
        _ => Some(h),
    }
}

/// The command of a test (`CMD …` as is, `CMD-SHELL x` through /bin/sh).
pub fn command(h: &HealthConfig) -> Result<Vec<String>> {
    match h.test.split_first() {
        Some((k, rest)) if k == "CMD" && !rest.is_empty() => Ok(rest.to_vec()),
        Some((k, rest)) if k == "CMD-SHELL" && rest.len() == 1 => {
            Ok(vec!["/bin/sh".into(), "-c".into(), rest[0].clone()])
        }
        _ => Err(Error::Invalid(format!(
            "invalid health check test {:?}",
            h.test
        ))),
    }
}

fn ns(v: i64, default: Duration) -> Duration {
    if v > 0 {
        Duration::from_nanos(v as u64)
    } else {
        default
    }
}

/// Interval between checks (docker: 30 s; `start_interval` during the
/// start period).
pub fn interval(h: &HealthConfig, in_start_period: bool) -> Duration {
    if in_start_period && h.start_interval > 0 {
        return Duration::from_nanos(h.start_interval as u64);
    }
    ns(h.interval, Duration::from_secs(30))
}

/// Entry point of `berth health-check ROOT ID`: leaves its parent (the
/// monitor, which must not wait), runs one check and records it.
pub fn check_main(root: &Path, id: &str) -> ! {
    if crate::monitor::leave_parent().is_err() {
        berth_sys::fork::exit_now(1)
    }
    let code = match run_check(root, id) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth health-check {id}: {e}");
            1
        }
    };
    berth_sys::fork::exit_now(code)
}

fn run_check(root: &Path, id: &str) -> Result<()> {
    let engine = Engine::open(root)?;
    let c = engine.container(id)?;
    let Some(h) = c.record.healthcheck.clone() else {
        return Ok(());
    };
    if c.state.status != crate::Status::Running {
        return Ok(());
    }
    let cmd = command(&h)?;
    let timeout = ns(h.timeout, Duration::from_secs(30));
    let start = berth_runtime::state::now_rfc3339();
    let began = Instant::now();
    let rec = crate::exec::ExecRecord {
        cmd,
        attach_stdout: true,
        attach_stderr: true,
        ..Default::default()
    };
    let (code, output) = match engine.exec_create(id, rec) {
        Err(e) => (-1, e.to_string()),
        Ok(eid) => {
            let mut sock = None;
            match engine.exec_start(&eid, || {
                sock = engine
                    .exec_attach(&eid, false, true, true)
                    .map(|a| a.socket);
                Ok(())
            }) {
                Err(e) => (-1, e.to_string()),
                Ok(()) => {
                    let mut out = Vec::new();
                    let mut timed_out = false;
                    if let Some(mut s) = sock {
                        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
                        let mut buf = [0u8; 8192];
                        loop {
                            if began.elapsed() > timeout {
                                timed_out = true;
                                break;
                            }
                            match s.read(&mut buf) {
                                Ok(0) => break,
                                Ok(n) => out.extend_from_slice(&buf[..n]),
                                Err(e)
                                    if matches!(
                                        e.kind(),
                                        std::io::ErrorKind::WouldBlock
                                            | std::io::ErrorKind::TimedOut
                                    ) => {}
                                Err(_) => break,
                            }
                        }
                    }
                    let r = engine.exec_inspect(&eid).ok();
                    if timed_out {
                        if let Some(pid) = r
                            .as_ref()
                            .map(|r| r.pid)
                            .filter(|p| *p > 0)
                            .and_then(rustix::process::Pid::from_raw)
                        {
                            let _ =
                                rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                        }
                        (
                            -1,
                            format!("Health check exceeded timeout ({}s)", timeout.as_secs_f64()),
                        )
                    } else {
                        let code = r.as_ref().and_then(|r| r.exit_code).unwrap_or(-1);
                        // docker keeps no record of a health check's exec
                        if r.is_some_and(|r| !r.running) {
                            crate::exec::forget(&engine.root, &engine.store.dir(id), &eid);
                        }
                        (if code == 0 { 0 } else { 1 }, demux(&out))
                    }
                }
            }
        }
    };
    let end = berth_runtime::state::now_rfc3339();
    let secs = |t: &str| berth_types::time::parse_rfc3339(t).map_or(0, |(s, _)| s);
    let started = secs(&c.state.started_at);
    let now = secs(&end);
    let in_start_period = h.start_period > 0 && (now - started) * 1_000_000_000 < h.start_period;
    let retries = if h.retries > 0 { h.retries as u32 } else { 3 };
    let mut changed = None;
    engine.store.update_state(id, |s| {
        let mut health = s.health.clone().unwrap_or_else(|| Health {
            status: "starting".into(),
            ..Default::default()
        });
        let before = health.status.clone();
        health.log.push(HealthResult {
            start: start.clone(),
            end: end.clone(),
            exit_code: code,
            output: output.clone(),
        });
        if health.log.len() > KEEP {
            let drop = health.log.len() - KEEP;
            health.log.drain(..drop);
        }
        if code == 0 {
            health.failing_streak = 0;
            health.status = "healthy".into();
        } else if !in_start_period {
            health.failing_streak += 1;
            if health.failing_streak >= retries {
                health.status = "unhealthy".into();
            }
        }
        if health.status != before {
            changed = Some(health.status.clone());
        }
        s.health = Some(health);
    })?;
    if let Some(st) = changed {
        engine.event(&c.record, &format!("health_status: {st}"), &[]);
    }
    Ok(())
}

/// The payload of docker's multiplexed frames, truncated.
fn demux(mut b: &[u8]) -> String {
    let mut out = Vec::new();
    while b.len() >= 8 {
        let len = u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize;
        let end = (8 + len).min(b.len());
        out.extend_from_slice(&b[8..end]);
        b = &b[end..];
    }
    out.truncate(MAX_OUTPUT);
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_durations_and_commands() {
        let img = HealthConfig {
            test: vec!["CMD-SHELL".into(), "true".into()],
            interval: 5,
            ..Default::default()
        };
        let own = HealthConfig {
            retries: 7,
            ..Default::default()
        };
        let h = effective(Some(&img), Some(&own)).unwrap();
        assert_eq!((h.interval, h.retries), (5, 7));
        assert_eq!(command(&h).unwrap(), ["/bin/sh", "-c", "true"]);
        let none = HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        };
        assert!(effective(Some(&img), Some(&none)).is_none());
        assert!(effective(None, None).is_none());
        assert_eq!(interval(&h, false), Duration::from_nanos(5));
        assert_eq!(demux(&[1, 0, 0, 0, 0, 0, 0, 2, b'o', b'k']), "ok");
    }
}
