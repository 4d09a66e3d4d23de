//! Probes (exec, httpGet, tcpSocket, grpc) as the kubelet runs them, and
//! the per-container bookkeeping of thresholds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_engine::Engine;
use k8s_openapi::api::core::v1::Probe;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

mod grpc;
mod http;

/// One probe's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Passed.
    Success,
    /// Failed, with the kubelet's text.
    Failure(String),
}

/// Where the probe finds the container.
#[derive(Clone, Debug)]
pub struct Target {
    /// The engine's container id (for exec).
    pub container_id: String,
    /// The pod's address.
    pub ip: String,
    /// The container's named ports.
    pub ports: Vec<(String, i32)>,
}

fn port(p: &IntOrString, t: &Target) -> Result<u16, String> {
    let n = match p {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => match name.parse::<i32>() {
            Ok(n) => n,
            Err(_) => t
                .ports
                .iter()
                .find(|(pn, _)| pn == name)
                .map(|(_, n)| *n)
                .ok_or_else(|| format!("couldn't find port {name:?}"))?,
        },
    };
    u16::try_from(n).map_err(|_| format!("invalid port number: {n}"))
}

/// Runs `probe` once against `t`.
pub async fn run(engine: &Arc<Engine>, probe: &Probe, t: &Target) -> Outcome {
    let timeout = Duration::from_secs(probe.timeout_seconds.unwrap_or(1).max(1) as u64);
    if let Some(e) = &probe.exec {
        return exec(engine, e.command.clone().unwrap_or_default(), t, timeout).await;
    }
    if let Some(h) = &probe.http_get {
        let port = match port(&h.port, t) {
            Ok(p) => p,
            Err(e) => return Outcome::Failure(e),
        };
        let host = h
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| t.ip.clone());
        let path = h
            .path
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".into());
        let headers: Vec<(String, String)> = h
            .http_headers
            .iter()
            .flatten()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect();
        let tls = h.scheme.as_deref() == Some("HTTPS");
        let scheme = if tls { "https" } else { "http" };
        let get = http::get(tls, &host, port, &path, &headers);
        return match tokio::time::timeout(timeout, get).await {
            Ok(r) => r,
            Err(_) => Outcome::Failure(format!(
                "Get \"{scheme}://{host}:{port}{path}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
            )),
        };
    }
    if let Some(s) = &probe.tcp_socket {
        let port = match port(&s.port, t) {
            Ok(p) => p,
            Err(e) => return Outcome::Failure(e),
        };
        let host = s
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| t.ip.clone());
        let addr = format!("{host}:{port}");
        return match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&addr)).await {
            Ok(Ok(_)) => Outcome::Success,
            Ok(Err(e)) => Outcome::Failure(format!("dial tcp {addr}: connect: {e}")),
            Err(_) => Outcome::Failure(format!("dial tcp {addr}: i/o timeout")),
        };
    }
    if let Some(g) = &probe.grpc {
        let Ok(port) = u16::try_from(g.port) else {
            return Outcome::Failure(format!("invalid port number: {}", g.port));
        };
        let service = g.service.clone().unwrap_or_default();
        return grpc::check(&t.ip, port, &service, timeout).await;
    }
    Outcome::Failure("probe has no handler".into())
}

async fn exec(engine: &Arc<Engine>, cmd: Vec<String>, t: &Target, timeout: Duration) -> Outcome {
    let engine = engine.clone();
    let id = t.container_id.clone();
    let started = tokio::task::spawn_blocking(move || -> Result<(Arc<Engine>, String), String> {
        let r = berth_engine::exec::ExecRecord {
            cmd,
            ..Default::default()
        };
        let eid = engine.exec_create(&id, r).map_err(|e| e.to_string())?;
        engine
            .exec_start(&eid, || Ok(()))
            .map_err(|e| e.to_string())?;
        Ok((engine, eid))
    })
    .await;
    let (engine, eid) = match started {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => return Outcome::Failure(e),
        Err(e) => return Outcome::Failure(e.to_string()),
    };
    let deadline = Instant::now() + timeout;
    loop {
        let r = {
            let engine = engine.clone();
            let eid = eid.clone();
            tokio::task::spawn_blocking(move || engine.exec_inspect(&eid)).await
        };
        match r {
            Ok(Ok(rec)) if !rec.running && rec.exit_code.is_some() => {
                return match rec.exit_code {
                    Some(0) => Outcome::Success,
                    Some(code) => Outcome::Failure(format!("command exited with {code}")),
                    None => Outcome::Failure("command did not run".into()),
                };
            }
            Ok(Ok(rec)) if !rec.running && !rec.error.is_empty() => {
                return Outcome::Failure(rec.error);
            }
            Ok(Err(e)) => return Outcome::Failure(e.to_string()),
            Err(e) => return Outcome::Failure(e.to_string()),
            _ => {}
        }
        if Instant::now() > deadline {
            return Outcome::Failure(format!("command timed out after {}s", timeout.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The thresholds' state of one probe of one container.
#[derive(Clone, Debug)]
pub struct Tracker {
    /// When the container (attempt) started.
    pub since: Instant,
    /// When the probe last ran.
    pub last: Option<Instant>,
    /// Consecutive successes.
    pub successes: i32,
    /// Consecutive failures.
    pub failures: i32,
    /// The current verdict.
    pub ok: bool,
}

impl Tracker {
    /// A tracker for an attempt that started at `since`, with the initial
    /// verdict `ok`.
    pub fn new(since: Instant, ok: bool) -> Tracker {
        Tracker {
            since,
            last: None,
            successes: 0,
            failures: 0,
            ok,
        }
    }

    /// Whether the probe is due now.
    pub fn due(&self, p: &Probe, now: Instant) -> bool {
        let delay = Duration::from_secs(p.initial_delay_seconds.unwrap_or(0).max(0) as u64);
        let period = Duration::from_secs(p.period_seconds.unwrap_or(10).max(1) as u64);
        if now < self.since + delay {
            return false;
        }
        self.last.is_none_or(|l| now >= l + period)
    }

    /// Records an outcome; returns whether the verdict changed.
    pub fn record(&mut self, p: &Probe, ok: bool, now: Instant) -> bool {
        self.last = Some(now);
        if ok {
            self.successes += 1;
            self.failures = 0;
        } else {
            self.failures += 1;
            self.successes = 0;
        }
        let before = self.ok;
        if ok && self.successes >= p.success_threshold.unwrap_or(1).max(1) {
            self.ok = true;
        }
        if !ok && self.failures >= p.failure_threshold.unwrap_or(3).max(1) {
            self.ok = false;
        }
        before != self.ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds() {
        let p: Probe = serde_json::from_value(
            serde_json::json!({"failureThreshold": 2, "successThreshold": 1, "periodSeconds": 1}),
        )
        .unwrap();
        let now = Instant::now();
        let mut t = Tracker::new(now, true);
        assert!(t.due(&p, now));
        assert!(!t.record(&p, false, now));
        assert!(!t.due(&p, now));
        assert!(t.record(&p, false, now + Duration::from_secs(1)));
        assert!(!t.ok);
        assert!(t.record(&p, true, now + Duration::from_secs(2)));
        assert!(t.ok);
    }
}
