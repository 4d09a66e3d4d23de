//! An in-memory store: the contract's reference implementation, for tests
//! and tools. Nothing survives the process.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::broadcast;

use crate::{
    Error, Event, EventKind, KeyValue, ListOptions, ListResult, Revision, Store, WatchStream,
};

/// How many changes a watcher may fall behind before it is dropped.
const WATCH_BUFFER: usize = 16 * 1024;

#[derive(Debug, Clone)]
struct Version {
    create_revision: Revision,
    mod_revision: Revision,
    /// `None` for a deletion.
    value: Option<Bytes>,
    expires: Option<Instant>,
}

#[derive(Debug, Default)]
struct State {
    /// Each key's versions, oldest first.
    keys: BTreeMap<String, Vec<Version>>,
    /// Changes after `compacted`, in order.
    history: VecDeque<Arc<Event>>,
    revision: Revision,
    compacted: Revision,
}

/// The in-memory store.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    changes: broadcast::Sender<Arc<Event>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store. Inside a tokio runtime, a task deletes expired
    /// keys every second (reads and writes also do, when they come first).
    pub fn new() -> Self {
        let (changes, _) = broadcast::channel(WATCH_BUFFER);
        let store = Self {
            state: Arc::default(),
            changes,
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let state = Arc::downgrade(&store.state);
            let changes = store.changes.clone();
            runtime.spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    let Some(state) = state.upgrade() else { return };
                    let store = MemoryStore {
                        state,
                        changes: changes.clone(),
                    };
                    let mut locked = store.lock();
                    store.expire(&mut locked);
                }
            });
        }
        store
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half
        // changed (every write is applied after its checks), so a poisoned
        // lock still holds consistent state.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Deletes keys whose time is up, each at its own revision.
    fn expire(&self, state: &mut State) {
        let now = Instant::now();
        let expired: Vec<String> = state
            .keys
            .iter()
            .filter(|(_, versions)| {
                versions
                    .last()
                    .is_some_and(|v| v.value.is_some() && v.expires.is_some_and(|at| at <= now))
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in expired {
            let _ = self.delete_locked(state, &key, None);
        }
    }

    fn record(&self, state: &mut State, event: Event) {
        let event = Arc::new(event);
        state.history.push_back(event.clone());
        // No receiver is not an error: nobody watches.
        let _ = self.changes.send(event);
    }

    fn delete_locked(
        &self,
        state: &mut State,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<KeyValue, Error> {
        let current = live(state, key).ok_or_else(|| Error::NotFound(key.to_owned()))?;
        if let Some(expected) = expected
            && expected != current.mod_revision
        {
            return Err(Error::Conflict {
                key: key.to_owned(),
                expected,
                current: Box::new(current),
            });
        }
        state.revision += 1;
        let revision = state.revision;
        let deleted = KeyValue {
            mod_revision: revision,
            ..current.clone()
        };
        if let Some(versions) = state.keys.get_mut(key) {
            versions.push(Version {
                create_revision: current.create_revision,
                mod_revision: revision,
                value: None,
                expires: None,
            });
        }
        self.record(
            state,
            Event {
                kind: EventKind::Delete,
                kv: deleted.clone(),
                prev: Some(current),
            },
        );
        Ok(deleted)
    }

    fn put_locked(
        &self,
        state: &mut State,
        key: &str,
        value: Bytes,
        prev: Option<KeyValue>,
        ttl: Option<Duration>,
    ) -> KeyValue {
        state.revision += 1;
        let revision = state.revision;
        let create_revision = prev.as_ref().map_or(revision, |p| p.create_revision);
        let kv = KeyValue {
            key: key.to_owned(),
            value: value.clone(),
            create_revision,
            mod_revision: revision,
        };
        state.keys.entry(key.to_owned()).or_default().push(Version {
            create_revision,
            mod_revision: revision,
            value: Some(value),
            expires: ttl.map(|ttl| Instant::now() + ttl),
        });
        self.record(
            state,
            Event {
                kind: EventKind::Put,
                kv: kv.clone(),
                prev,
            },
        );
        kv
    }
}

/// The live version of `key` now.
fn live(state: &State, key: &str) -> Option<KeyValue> {
    at(key, state.keys.get(key)?, state.revision)
}

/// The version of `key` at `revision`, if it was live then.
fn at(key: &str, versions: &[Version], revision: Revision) -> Option<KeyValue> {
    let version = versions.iter().rev().find(|v| v.mod_revision <= revision)?;
    Some(KeyValue {
        key: key.to_owned(),
        value: version.value.clone()?,
        create_revision: version.create_revision,
        mod_revision: version.mod_revision,
    })
}

/// The revision a read asked for, checked against the store's range.
fn read_revision(state: &State, revision: Revision) -> Result<Revision, Error> {
    if revision == 0 {
        return Ok(state.revision);
    }
    if revision > state.revision {
        return Err(Error::FutureRevision {
            requested: revision,
            current: state.revision,
        });
    }
    if revision < state.compacted {
        return Err(Error::Compacted {
            requested: revision,
            compacted: state.compacted,
        });
    }
    Ok(revision)
}

#[async_trait]
impl Store for MemoryStore {
    async fn current_revision(&self) -> Result<Revision, Error> {
        Ok(self.lock().revision)
    }

    async fn compacted_revision(&self) -> Result<Revision, Error> {
        Ok(self.lock().compacted)
    }

    async fn get(
        &self,
        key: &str,
        revision: Revision,
    ) -> Result<(Revision, Option<KeyValue>), Error> {
        let mut state = self.lock();
        self.expire(&mut state);
        let revision = read_revision(&state, revision)?;
        let found = state
            .keys
            .get(key)
            .and_then(|versions| at(key, versions, revision));
        Ok((revision, found))
    }

    async fn list(&self, prefix: &str, options: &ListOptions) -> Result<ListResult, Error> {
        let mut state = self.lock();
        self.expire(&mut state);
        let revision = read_revision(&state, options.revision)?;
        let start = match &options.start_after {
            Some(after) if after.as_str() >= prefix => Bound::Excluded(after.clone()),
            _ => Bound::Included(prefix.to_owned()),
        };
        let mut items = Vec::new();
        let mut remaining = 0i64;
        for (key, versions) in state.keys.range((start, Bound::Unbounded)) {
            if !key.starts_with(prefix) {
                break;
            }
            let Some(kv) = at(key, versions, revision) else {
                continue;
            };
            if options.limit != 0 && items.len() >= options.limit {
                remaining += 1;
            } else {
                items.push(kv);
            }
        }
        Ok(ListResult {
            revision,
            items,
            more: remaining > 0,
            remaining,
        })
    }

    async fn count(&self, prefix: &str) -> Result<(Revision, i64), Error> {
        let mut state = self.lock();
        self.expire(&mut state);
        let revision = state.revision;
        let count = state
            .keys
            .range(prefix.to_owned()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .filter(|(_, versions)| versions.last().is_some_and(|v| v.value.is_some()))
            .count();
        Ok((revision, i64::try_from(count).unwrap_or(i64::MAX)))
    }

    async fn create(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> Result<KeyValue, Error> {
        let mut state = self.lock();
        self.expire(&mut state);
        if live(&state, key).is_some() {
            return Err(Error::Exists(key.to_owned()));
        }
        Ok(self.put_locked(&mut state, key, value, None, ttl))
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
        ttl: Option<Duration>,
    ) -> Result<KeyValue, Error> {
        let mut state = self.lock();
        self.expire(&mut state);
        let current = live(&state, key).ok_or_else(|| Error::NotFound(key.to_owned()))?;
        if current.mod_revision != expected {
            return Err(Error::Conflict {
                key: key.to_owned(),
                expected,
                current: Box::new(current),
            });
        }
        Ok(self.put_locked(&mut state, key, value, Some(current), ttl))
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue, Error> {
        let mut state = self.lock();
        self.expire(&mut state);
        self.delete_locked(&mut state, key, expected)
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, Error> {
        let mut state = self.lock();
        self.expire(&mut state);
        let after = if after == 0 { state.revision } else { after };
        if after < state.compacted {
            return Err(Error::Compacted {
                requested: after,
                compacted: state.compacted,
            });
        }
        if after > state.revision {
            return Err(Error::FutureRevision {
                requested: after,
                current: state.revision,
            });
        }
        let receiver = self.changes.subscribe();
        let backlog: Vec<Arc<Event>> = state
            .history
            .iter()
            .filter(|e| e.revision() > after && e.kv.key.starts_with(prefix))
            .cloned()
            .collect();
        let last = state.revision;
        drop(state);
        let prefix = prefix.to_owned();
        let live = futures::stream::unfold(Some(receiver), move |receiver| {
            let prefix = prefix.clone();
            async move {
                let mut receiver = receiver?;
                loop {
                    match receiver.recv().await {
                        Ok(event)
                            if event.revision() > last && event.kv.key.starts_with(&prefix) =>
                        {
                            return Some((Ok(Event::clone(&event)), Some(receiver)));
                        }
                        Ok(_) => continue,
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            return Some((Err(Error::WatcherLagged), None));
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        });
        let backlog = futures::stream::iter(backlog.into_iter().map(|e| Ok(Event::clone(&e))));
        Ok(backlog.chain(live).boxed())
    }

    async fn compact(&self, revision: Revision) -> Result<(), Error> {
        let mut state = self.lock();
        if revision > state.revision {
            return Err(Error::FutureRevision {
                requested: revision,
                current: state.revision,
            });
        }
        if revision <= state.compacted {
            return Err(Error::Compacted {
                requested: revision,
                compacted: state.compacted,
            });
        }
        state.compacted = revision;
        while state
            .history
            .front()
            .is_some_and(|e| e.revision() <= revision)
        {
            state.history.pop_front();
        }
        state.keys.retain(|_, versions| {
            // The version visible at `revision` and everything after it.
            let keep_from = versions
                .iter()
                .rposition(|v| v.mod_revision <= revision)
                .unwrap_or(0);
            versions.drain(..keep_from);
            if versions
                .first()
                .is_some_and(|v| v.mod_revision <= revision && v.value.is_none())
            {
                versions.remove(0);
            }
            !versions.is_empty()
        });
        Ok(())
    }
}

#[cfg(all(test, feature = "testsuite"))]
mod tests {
    crate::testsuite::backend_tests!(async { crate::memory::MemoryStore::new() });
}
