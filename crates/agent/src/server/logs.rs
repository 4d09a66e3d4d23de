//! `GET /containerLogs/{ns}/{pod}/{container}`: a container's log as
//! kubelet serves it — `follow`, `previous`, `tailLines`, `sinceSeconds`,
//! `sinceTime`, `timestamps` (each line prefixed with its RFC 3339 time,
//! nine fraction digits, as kubelet writes them) and `limitBytes`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use berth_engine::logs::{Entry, LogOptions};
use bytes::Bytes;
use hyper::{Response, header};

use super::State;
use super::http::{Failure, flag, query_get, query_pairs};
use super::lookup::{self, Target};

/// How often a followed log is looked at for new lines.
const FOLLOW_EVERY: Duration = Duration::from_millis(150);

/// The options of a log request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogParams {
    /// Keep streaming while the container runs.
    pub follow: bool,
    /// The previous attempt's log.
    pub previous: bool,
    /// The last N lines.
    pub tail_lines: Option<usize>,
    /// Lines at or after this time (nanoseconds since the epoch).
    pub since_nanos: Option<i64>,
    /// Prefix each line with its time.
    pub timestamps: bool,
    /// Stop after this many bytes.
    pub limit_bytes: Option<u64>,
}

impl LogParams {
    /// Reads the query; `now_nanos` is the present (for `sinceSeconds`).
    pub fn parse(query: Option<&str>, now_nanos: i64) -> Result<LogParams, String> {
        let pairs = query_pairs(query);
        let get = |k: &str| query_get(&pairs, k);
        let number = |k: &str| -> Result<Option<i64>, String> {
            get(k)
                .filter(|v| !v.is_empty())
                .map(|v| {
                    v.parse::<i64>()
                        .map_err(|_| format!("invalid value {v:?} for {k}: not an integer"))
                })
                .transpose()
        };
        let tail = number("tailLines")?;
        if tail.is_some_and(|t| t < 0) {
            return Err("tailLines: must be greater than or equal to 0".into());
        }
        let limit = number("limitBytes")?;
        if limit.is_some_and(|l| l < 1) {
            return Err("limitBytes: must be greater than 0".into());
        }
        let since_seconds = number("sinceSeconds")?;
        if since_seconds.is_some_and(|s| s < 1) {
            return Err("sinceSeconds: must be greater than 0".into());
        }
        let since_time = get("sinceTime").filter(|v| !v.is_empty());
        if since_seconds.is_some() && since_time.is_some() {
            return Err("at most one of `sinceTime` or `sinceSeconds` may be specified".into());
        }
        let since_nanos = match (since_seconds, since_time) {
            (Some(s), _) => Some(now_nanos.saturating_sub(s.saturating_mul(1_000_000_000))),
            (_, Some(t)) => Some(
                berth_engine::events::rfc3339_nanos(t)
                    .ok_or_else(|| format!("invalid value {t:?} for sinceTime: not RFC 3339"))?,
            ),
            _ => None,
        };
        Ok(LogParams {
            follow: flag(get("follow")),
            previous: flag(get("previous")),
            tail_lines: tail.map(|t| usize::try_from(t).unwrap_or(usize::MAX)),
            since_nanos,
            timestamps: flag(get("timestamps")),
            limit_bytes: limit.map(|l| l.unsigned_abs()),
        })
    }

    /// The engine's read options.
    pub fn engine_options(&self) -> LogOptions {
        LogOptions {
            stdout: true,
            stderr: true,
            since: self.since_nanos,
            until: None,
            tail: self.tail_lines,
            follow: self.follow,
        }
    }
}

/// An instant as kubelet prints it: RFC 3339, UTC, nine fraction digits.
pub fn kubelet_time(nanos: i64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos)).ok()?;
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond()
    ))
}

/// What an entry looks like on the wire.
pub fn render(entry: &Entry, timestamps: bool) -> Vec<u8> {
    if !timestamps {
        return entry.line.clone();
    }
    let time = kubelet_time(entry.time_nano).unwrap_or_else(|| entry.time.clone());
    let mut out = Vec::with_capacity(time.len() + 1 + entry.line.len());
    out.extend_from_slice(time.as_bytes());
    out.push(b' ');
    out.extend_from_slice(&entry.line);
    out
}

/// Counts bytes against `limitBytes`.
#[derive(Debug)]
pub struct Limiter {
    left: Option<u64>,
}

impl Limiter {
    /// A limiter for an optional limit.
    pub fn new(limit: Option<u64>) -> Limiter {
        Limiter { left: limit }
    }

    /// The part of `data` still allowed; `None` once the limit is spent.
    pub fn take(&mut self, mut data: Vec<u8>) -> Option<Vec<u8>> {
        match self.left.as_mut() {
            None => Some(data),
            Some(0) => None,
            Some(left) => {
                let n = (*left).min(data.len() as u64);
                data.truncate(usize::try_from(n).unwrap_or(usize::MAX));
                *left -= n;
                Some(data)
            }
        }
    }

    /// Whether nothing more may go out.
    pub fn spent(&self) -> bool {
        self.left == Some(0)
    }
}

fn now_nanos() -> i64 {
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    i64::try_from(now).unwrap_or(i64::MAX)
}

/// Serves a log request.
pub(crate) async fn serve(
    state: &Arc<State>,
    namespace: &str,
    pod: &str,
    container: &str,
    query: Option<&str>,
) -> Result<Response<Body>, Failure> {
    let params = LogParams::parse(query, now_nanos()).map_err(Failure::bad_request)?;
    let target = Target::new(namespace, pod, container);
    let previous = params.previous;
    let opts = params.engine_options();
    let opened = state
        .blocking(move |engine| {
            let found = lookup::find(engine, &target, previous)
                .map_err(|(code, message)| Failure::new(code, message))?;
            let (_, entries, cursor) = engine.log_cursor(&found.id, &opts)?;
            Ok::<_, Failure>((found, entries, cursor))
        })
        .await??;
    let (found, entries, mut cursor) = opened;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    let engine = Arc::clone(&state.engine);
    let follow = params.follow && !previous;
    let timestamps = params.timestamps;
    let mut limiter = Limiter::new(params.limit_bytes);
    tokio::task::spawn_blocking(move || {
        let send = |limiter: &mut Limiter, entries: Vec<Entry>| -> bool {
            for e in &entries {
                let Some(data) = limiter.take(render(e, timestamps)) else {
                    return false;
                };
                if !data.is_empty() && tx.blocking_send(Ok(Bytes::from(data))).is_err() {
                    return false;
                }
                if limiter.spent() {
                    return false;
                }
            }
            true
        };
        if !send(&mut limiter, entries) || !follow {
            return;
        }
        loop {
            std::thread::sleep(FOLLOW_EVERY);
            if tx.is_closed() {
                return;
            }
            let running = engine
                .container(&found.id)
                .map(|c| c.state.status == berth_engine::Status::Running && c.state.is_active())
                .unwrap_or(false);
            if !send(&mut limiter, cursor.read_new()) || !running {
                return;
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000_000_000;

    #[test]
    fn parameters_read_as_kubelet_reads_them() {
        let p = LogParams::parse(
            Some("follow=true&previous=1&tailLines=5&timestamps=true&limitBytes=10"),
            NOW,
        )
        .unwrap();
        assert_eq!(
            p,
            LogParams {
                follow: true,
                previous: true,
                tail_lines: Some(5),
                since_nanos: None,
                timestamps: true,
                limit_bytes: Some(10),
            }
        );
        assert_eq!(LogParams::parse(None, NOW).unwrap(), LogParams::default());
        let p = LogParams::parse(Some("sinceSeconds=10"), NOW).unwrap();
        assert_eq!(p.since_nanos, Some(NOW - 10_000_000_000));
        let p = LogParams::parse(Some("sinceTime=2026-01-02T03:04:05Z"), NOW).unwrap();
        assert_eq!(
            p.since_nanos,
            berth_engine::events::rfc3339_nanos("2026-01-02T03:04:05Z")
        );
    }

    #[test]
    fn bad_parameters_are_refused_with_kube_s_words() {
        for (query, want) in [
            (
                "tailLines=-1",
                "tailLines: must be greater than or equal to 0",
            ),
            ("limitBytes=0", "limitBytes: must be greater than 0"),
            ("sinceSeconds=0", "sinceSeconds: must be greater than 0"),
            (
                "sinceSeconds=1&sinceTime=2026-01-02T03:04:05Z",
                "at most one of `sinceTime` or `sinceSeconds` may be specified",
            ),
            (
                "tailLines=x",
                "invalid value \"x\" for tailLines: not an integer",
            ),
            (
                "sinceTime=yesterday",
                "invalid value \"yesterday\" for sinceTime: not RFC 3339",
            ),
        ] {
            assert_eq!(
                LogParams::parse(Some(query), NOW).unwrap_err(),
                want,
                "{query}"
            );
        }
    }

    #[test]
    fn timestamps_have_nine_fraction_digits_in_utc() {
        assert_eq!(
            kubelet_time(1_767_323_045_000_000_100).unwrap(),
            "2026-01-02T03:04:05.000000100Z"
        );
        let e = Entry {
            stream: 1,
            time: "x".into(),
            time_nano: 1_767_323_045_123_000_000,
            line: b"hi\n".to_vec(),
        };
        assert_eq!(render(&e, true), b"2026-01-02T03:04:05.123000000Z hi\n");
        assert_eq!(render(&e, false), b"hi\n");
    }

    #[test]
    fn the_limit_cuts_the_last_piece_and_then_stops() {
        let mut l = Limiter::new(Some(5));
        assert_eq!(l.take(b"abc".to_vec()), Some(b"abc".to_vec()));
        assert!(!l.spent());
        assert_eq!(l.take(b"defg".to_vec()), Some(b"de".to_vec()));
        assert!(l.spent());
        assert_eq!(l.take(b"h".to_vec()), None);
        let mut none = Limiter::new(None);
        assert_eq!(none.take(b"abc".to_vec()), Some(b"abc".to_vec()));
    }
}
