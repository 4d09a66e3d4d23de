//! Watches: one JSON event per line, from a resourceVersion (or from the
//! current state as ADDED events), filtered by the selectors as lists are,
//! with bookmarks and the in-stream 410 kube-apiserver sends for a
//! compacted resourceVersion.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_kv::EventKind;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::objects::{collection_prefix, partial_metadata, selectors, stamp};
use super::{Api, Ctx};
use crate::error::ApiError;
use crate::request::{Output, Target};
use crate::storage::{self, parse_rv};
use crate::table;

/// How often a watch that asked for bookmarks gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(60);

/// The event line for an object.
struct Framer {
    api: Arc<Api>,
    target: Target,
    output: Output,
    sent_columns: bool,
}

impl Framer {
    fn line(&mut self, kind: &str, mut obj: Value) -> Bytes {
        stamp(&self.target, &mut obj);
        let object = match self.output {
            Output::Json => obj,
            Output::Metadata => partial_metadata(&obj),
            Output::Table => {
                let mut t = table::table(
                    &self.api,
                    &self.target.resource,
                    std::slice::from_ref(&obj),
                    "",
                    !self.sent_columns,
                );
                if self.sent_columns {
                    t["columnDefinitions"] = Value::Null;
                }
                self.sent_columns = true;
                t["metadata"] =
                    json!({"resourceVersion": crate::meta::meta_str(&obj, "resourceVersion")});
                t
            }
        };
        let mut text =
            serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
        text.push(b'\n');
        Bytes::from(text)
    }

    fn bookmark(&self, revision: i64, initial_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": revision.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = json!({
            "kind": self.target.resource.kind,
            "apiVersion": self.target.resource.api_version(),
            "metadata": metadata,
        });
        let mut text =
            serde_json::to_vec(&json!({"type": "BOOKMARK", "object": object})).unwrap_or_default();
        text.push(b'\n');
        Bytes::from(text)
    }
}

fn error_line(error: &ApiError) -> Bytes {
    let mut text =
        serde_json::to_vec(&json!({"type": "ERROR", "object": error.status()})).unwrap_or_default();
    text.push(b'\n');
    Bytes::from(text)
}

/// A random watch length between `base` and twice it (kube spreads
/// reconnects the same way).
fn default_timeout() -> Duration {
    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) * 1800 / 255;
    Duration::from_secs(1800 + jitter)
}

/// Serves a watch.
pub async fn serve(api: Arc<Api>, target: &Target, ctx: &Ctx) -> Result<Response, ApiError> {
    let (labels, mut fields) = selectors(target, ctx)?;
    if !target.name.is_empty() {
        // A watch on an item URL is a watch on the collection for it.
        fields = crate::selectors::FieldSelector::parse(
            &format!("metadata.name={}", target.name),
            &target.resource.group,
            &target.resource.plural,
        )?;
    }
    let timeout = match ctx.query.int("timeoutSeconds")? {
        Some(secs) if secs > 0 => Duration::from_secs(u64::try_from(secs).unwrap_or(1)),
        _ => default_timeout(),
    };
    let bookmarks = ctx.query.flag("allowWatchBookmarks");
    let send_initial = ctx.query.get("sendInitialEvents").map(|v| v == "true");
    let rv = ctx.query.get("resourceVersion").unwrap_or("").to_owned();
    let mut collection = target.clone();
    collection.name.clear();
    let prefix = collection_prefix(&collection);
    let store = api.objects.store().clone();

    let mut framer = Framer {
        api: api.clone(),
        target: collection,
        output: ctx.output,
        sent_columns: false,
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);

    // The starting state: the current objects as ADDED (no resourceVersion
    // or "0", or sendInitialEvents), else the history after `rv`.
    let mut initial = Vec::new();
    let from;
    let initial_events = send_initial.unwrap_or(rv.is_empty() || rv == "0");
    if initial_events {
        let (items, revision) = api.objects.list_all(&prefix, 0).await?;
        for item in items {
            if labels.matches(&item) && fields.matches(&item) {
                initial.push(item);
            }
        }
        from = revision;
    } else {
        from = parse_rv(&rv)?;
    }
    let stream = match store.watch(&prefix, from).await {
        Ok(stream) => Ok(stream),
        Err(berth_kv::Error::Compacted {
            requested,
            compacted,
        }) => Err(ApiError::expired(format!(
            "too old resource version: {requested} ({compacted})"
        ))),
        Err(berth_kv::Error::FutureRevision { requested, current }) => Err(ApiError::timeout(
            format!("Too large resource version: {requested}, current: {current}"),
        )),
        Err(e) => Err(e.into()),
    };
    api.metrics.watch_started();
    let metrics_api = api.clone();
    tokio::spawn(async move {
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut stream = match stream {
            Ok(stream) => stream,
            Err(error) => {
                let _ = tx.send(Ok(error_line(&error))).await;
                metrics_api.metrics.watch_ended();
                return;
            }
        };
        for item in initial {
            if tx.send(Ok(framer.line("ADDED", item))).await.is_err() {
                metrics_api.metrics.watch_ended();
                return;
            }
        }
        if send_initial == Some(true) && bookmarks {
            let _ = tx.send(Ok(framer.bookmark(from, true))).await;
        }
        let mut last = from;
        let mut ticker = tokio::time::interval(BOOKMARK_EVERY);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                _ = tx.closed() => break,
                _ = ticker.tick(), if bookmarks => {
                    if tx.send(Ok(framer.bookmark(last, false))).await.is_err() {
                        break;
                    }
                }
                event = stream.next() => {
                    let Some(event) = event else { break };
                    let event = match event {
                        Ok(event) => event,
                        Err(berth_kv::Error::WatcherLagged) => {
                            // kube closes a watch that cannot keep up; the
                            // client re-watches from its last resourceVersion.
                            break;
                        }
                        Err(e) => {
                            let _ = tx.send(Ok(error_line(&ApiError::from(e)))).await;
                            break;
                        }
                    };
                    last = event.revision();
                    let Some(line) = frame_event(&mut framer, &labels, &fields, &event) else { continue };
                    if tx.send(Ok(line)).await.is_err() {
                        break;
                    }
                }
            }
        }
        metrics_api.metrics.watch_ended();
    });
    let body = Body::from_stream(tokio_stream_from(rx));
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(response)
}

/// A receiver as a stream.
fn tokio_stream_from(
    rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

/// One store event as a watch event line, or nothing when the selectors
/// see no change.
fn frame_event(
    framer: &mut Framer,
    labels: &crate::selectors::LabelSelector,
    fields: &crate::selectors::FieldSelector,
    event: &berth_kv::Event,
) -> Option<Bytes> {
    let matches = |obj: &Value| labels.matches(obj) && fields.matches(obj);
    let prev = event.prev.as_ref().and_then(|kv| storage::decode(kv).ok());
    match event.kind {
        EventKind::Put => {
            let new = storage::decode(&event.kv).ok()?;
            let was = prev.as_ref().is_some_and(&matches);
            let is = matches(&new);
            match (was, is) {
                (false, true) => Some(framer.line("ADDED", new)),
                (true, true) => Some(framer.line("MODIFIED", new)),
                (true, false) => Some(framer.line("DELETED", new)),
                (false, false) => None,
            }
        }
        EventKind::Delete => {
            let mut old = prev?;
            if !matches(&old) {
                return None;
            }
            crate::meta::metadata_mut(&mut old).insert(
                "resourceVersion".to_owned(),
                json!(event.revision().to_string()),
            );
            Some(framer.line("DELETED", old))
        }
    }
}
