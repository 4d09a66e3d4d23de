//! etcd's watch responses as the contract's stream of events.

use std::collections::VecDeque;

use berth_kv::{Error, Event, EventKind, KeyValue, Revision, WatchStream};
use bytes::Bytes;
use etcd_client as etcd;
use futures::StreamExt;

use crate::convert::{backend, caller_key, from_etcd, key_value};

/// What the stream holds between two items.
struct State {
    stream: etcd::WatchStream,
    /// Events of the last response not handed out yet.
    queue: VecDeque<Event>,
    /// The store's key prefix, taken off every key.
    prefix: String,
    /// The revision the watch was asked to follow, for a compacted error.
    after: Revision,
}

/// Waits for etcd to confirm the watch, then streams its events. Every
/// failure ends the stream after one error item.
pub(crate) async fn events(
    mut stream: etcd::WatchStream,
    prefix: String,
    after: Revision,
) -> Result<WatchStream, Error> {
    // The first answer says whether etcd took the watch; events only come
    // after it.
    let first = stream.message().await.map_err(backend)?;
    let queue = match first {
        Some(response) => {
            if let Some(error) = cancelled(&response, after) {
                return Err(error);
            }
            convert(&prefix, &response)?
        }
        None => {
            return Err(Error::Backend(
                "etcd closed the watch before confirming it".to_owned(),
            ));
        }
    };
    let state = State {
        stream,
        queue,
        prefix,
        after,
    };
    Ok(futures::stream::unfold(Some(state), next).boxed())
}

/// The next item; `None` state once the stream has failed.
async fn next(state: Option<State>) -> Option<(Result<Event, Error>, Option<State>)> {
    let mut state = state?;
    loop {
        if let Some(event) = state.queue.pop_front() {
            return Some((Ok(event), Some(state)));
        }
        let response = match state.stream.message().await {
            Ok(Some(response)) => response,
            Ok(None) => {
                return Some((
                    Err(Error::Backend("the etcd watch stream ended".to_owned())),
                    None,
                ));
            }
            Err(error) => return Some((Err(backend(error)), None)),
        };
        if let Some(error) = cancelled(&response, state.after) {
            return Some((Err(error), None));
        }
        match convert(&state.prefix, &response) {
            Ok(events) => state.queue = events,
            Err(error) => return Some((Err(error), None)),
        }
    }
}

/// The error of a response that ends the watch.
fn cancelled(response: &etcd::WatchResponse, after: Revision) -> Option<Error> {
    if response.compact_revision() > 0 {
        return Some(Error::Compacted {
            requested: after,
            compacted: from_etcd(response.compact_revision()),
        });
    }
    if response.canceled() {
        return Some(Error::Backend(format!(
            "etcd cancelled the watch: {}",
            response.cancel_reason()
        )));
    }
    None
}

/// The events of one watch response.
fn convert(prefix: &str, response: &etcd::WatchResponse) -> Result<VecDeque<Event>, Error> {
    response
        .events()
        .iter()
        .map(|event| {
            let kv = event.kv().ok_or_else(|| {
                Error::Backend("etcd sent a watch event without a key".to_owned())
            })?;
            let prev = event
                .prev_kv()
                .map(|prev| key_value(prefix, prev))
                .transpose()?;
            Ok(match event.event_type() {
                etcd::EventType::Put => Event {
                    kind: EventKind::Put,
                    kv: key_value(prefix, kv)?,
                    prev,
                },
                etcd::EventType::Delete => Event {
                    kind: EventKind::Delete,
                    // The deleted version at the deletion's revision.
                    kv: KeyValue {
                        key: caller_key(prefix, kv.key())?,
                        value: prev.as_ref().map_or_else(Bytes::new, |p| p.value.clone()),
                        create_revision: prev.as_ref().map_or(0, |p| p.create_revision),
                        mod_revision: from_etcd(kv.mod_revision()),
                    },
                    prev,
                },
            })
        })
        .collect()
}
