//! The writer: one thread owns the write connection. It takes every write
//! queued, applies each at its own revision (checks first, in order) inside
//! one transaction, commits once (one fsync), then publishes the events and
//! answers. Between batches it deletes keys whose time is up and compacts.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use berth_kv::{Error, Event, EventKind, KeyValue, Revision};
use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use crate::{Options, Shared};

/// How many revisions one automatic compaction step removes history up to.
const COMPACT_STEP: Revision = 10_000;
/// How many due keys one batch deletes (the rest go in the next batch).
const EXPIRE_STEP: i64 = 1024;

/// What a write did.
#[derive(Debug)]
pub(crate) enum Written {
    /// A create, update or delete: the version it returns.
    Kv(KeyValue),
    /// A compaction.
    Compacted,
}

/// Where a write's answer goes.
pub(crate) type Reply = oneshot::Sender<Result<Written, Error>>;

/// A write for the writer thread.
pub(crate) struct Request {
    pub(crate) op: Op,
    pub(crate) reply: Reply,
}

/// The writes.
pub(crate) enum Op {
    Create {
        key: String,
        value: Bytes,
        ttl: Option<Duration>,
    },
    Update {
        key: String,
        value: Bytes,
        expected: Revision,
        ttl: Option<Duration>,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
    Compact {
        revision: Revision,
    },
}

/// A key's latest row.
struct Latest {
    id: Revision,
    deleted: bool,
    create_revision: Revision,
    value: Bytes,
    expires_at: Option<i64>,
}

/// The writer thread's state.
pub(crate) struct Writer {
    pub(crate) conn: Connection,
    pub(crate) path: PathBuf,
    pub(crate) shared: Arc<Shared>,
    pub(crate) options: Options,
    /// The last revision written.
    pub(crate) revision: Revision,
    pub(crate) compacted: Revision,
    /// Held while the writer runs: no other process writes the store.
    pub(crate) lock: File,
    /// The earliest expiry of a live key (unix ms).
    next_expiry: Option<i64>,
    /// When the automatic compactor runs next.
    next_compaction: Option<Instant>,
    /// How far the automatic compactor is to compact (in steps).
    compact_target: Revision,
    /// This batch's changes, published after the commit.
    events: Vec<Event>,
}

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn expiry(ttl: Option<Duration>) -> Option<i64> {
    let ttl = ttl?;
    Some(now_ms().saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)))
}

impl Writer {
    /// A writer over `conn`, whose store is at `revision` and `compacted`.
    pub(crate) fn new(
        conn: Connection,
        path: PathBuf,
        shared: Arc<Shared>,
        options: Options,
        revision: Revision,
        compacted: Revision,
        lock: File,
    ) -> Self {
        let next_compaction = options.compact_interval.map(|every| Instant::now() + every);
        let mut writer = Self {
            conn,
            path,
            shared,
            options,
            revision,
            compacted,
            lock,
            next_expiry: None,
            next_compaction,
            compact_target: compacted,
            events: Vec::new(),
        };
        writer.load_next_expiry();
        writer
    }

    /// Serves `requests` until every sender is gone.
    pub(crate) fn run(mut self, requests: Receiver<Request>) {
        loop {
            let first = match self.wait() {
                None => match requests.recv() {
                    Ok(request) => Some(request),
                    Err(_) => break,
                },
                Some(wait) => match requests.recv_timeout(wait) {
                    Ok(request) => Some(request),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                },
            };
            let mut batch: Vec<Request> = first.into_iter().collect();
            while batch.len() < self.options.max_batch.max(1) {
                match requests.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            self.batch(batch);
            self.auto_compact();
        }
        tracing::debug!(path = %self.path.display(), "store writer stopped");
        // The connection closes before the lock is released.
        drop(self.conn);
        drop(self.lock);
    }

    /// How long to wait for a request before there is work of our own
    /// (`None`: none planned).
    fn wait(&mut self) -> Option<Duration> {
        let mut wait: Option<Duration> = None;
        if let Some(at) = self.next_expiry {
            let ms = u64::try_from(at.saturating_sub(now_ms())).unwrap_or(0);
            wait = Some(Duration::from_millis(ms));
        }
        if self.compact_target > self.compacted {
            wait = Some(Duration::ZERO);
        }
        if let Some(at) = self.next_compaction {
            let until = at.saturating_duration_since(Instant::now());
            wait = Some(wait.map_or(until, |w| w.min(until)));
        }
        wait
    }

    /// Applies `batch` (and deletes due keys) in one transaction.
    fn batch(&mut self, batch: Vec<Request>) {
        let due = self.next_expiry.is_some_and(|at| at <= now_ms());
        if batch.is_empty() && !due {
            return;
        }
        let (revision, compacted) = (self.revision, self.compacted);
        let (ops, replies): (Vec<Op>, Vec<Reply>) =
            batch.into_iter().map(|r| (r.op, r.reply)).unzip();
        let mut outcomes = Vec::with_capacity(ops.len());
        let applied = self.apply_all(ops, due, &mut outcomes);
        let committed = applied.and_then(|()| self.conn.execute_batch("COMMIT"));
        if let Err(e) = committed {
            let message = format!(
                "writing to the store {} failed, nothing was written: {e}",
                self.path.display()
            );
            tracing::error!("{message}");
            if !self.conn.is_autocommit()
                && let Err(e) = self.conn.execute_batch("ROLLBACK")
            {
                tracing::error!(error = %e, "rolling back a failed store write");
            }
            self.revision = revision;
            self.compacted = compacted;
            self.events.clear();
            for reply in replies {
                let _ = reply.send(Err(Error::Backend(message.clone())));
            }
            self.load_next_expiry();
            // Due keys are retried in a second, not in a busy loop.
            let retry = now_ms().saturating_add(1000);
            self.next_expiry = self.next_expiry.map(|at| at.max(retry));
            return;
        }
        self.shared.current.store(self.revision, Ordering::SeqCst);
        self.shared
            .compacted
            .store(self.compacted, Ordering::SeqCst);
        for event in self.events.drain(..) {
            // No receiver is not an error: nobody watches.
            let _ = self.shared.changes.send(Arc::new(event));
        }
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            // A caller that went away does not want its answer.
            let _ = reply.send(outcome);
        }
        self.load_next_expiry();
    }

    fn apply_all(
        &mut self,
        ops: Vec<Op>,
        due: bool,
        outcomes: &mut Vec<Result<Written, Error>>,
    ) -> rusqlite::Result<()> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        if due {
            self.expire()?;
        }
        for op in ops {
            let outcome = match op {
                Op::Create { key, value, ttl } => self.create(&key, value, ttl)?.map(Written::Kv),
                Op::Update {
                    key,
                    value,
                    expected,
                    ttl,
                } => self.update(&key, value, expected, ttl)?.map(Written::Kv),
                Op::Delete { key, expected } => self.delete(&key, expected)?.map(Written::Kv),
                Op::Compact { revision } => self.compact(revision)?.map(|()| Written::Compacted),
            };
            outcomes.push(outcome);
        }
        Ok(())
    }

    fn latest(&self, key: &str) -> rusqlite::Result<Option<Latest>> {
        self.conn
            .prepare_cached(
                "SELECT id, deleted, create_revision, value, expires_at FROM log \
                 WHERE name = ?1 ORDER BY id DESC LIMIT 1",
            )?
            .query_row([key.as_bytes()], |row| {
                Ok(Latest {
                    id: row.get(0)?,
                    deleted: row.get(1)?,
                    create_revision: row.get(2)?,
                    value: Bytes::from(row.get::<_, Vec<u8>>(3)?),
                    expires_at: row.get(4)?,
                })
            })
            .optional()
    }

    /// Appends the next revision's row for `key`; `prev` is the key's
    /// latest row, whose expiry (if any) moves to the new row.
    fn append(
        &mut self,
        key: &str,
        prev: Option<&Latest>,
        live_prev: bool,
        deleted: bool,
        value: &[u8],
        expires_at: Option<i64>,
    ) -> rusqlite::Result<Revision> {
        let revision = self.revision + 1;
        let create_revision = match prev {
            Some(p) if live_prev => p.create_revision,
            _ => revision,
        };
        self.conn
            .prepare_cached(
                "INSERT INTO log (id, name, created, deleted, create_revision, prev_revision, \
                 expires_at, value) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                revision,
                key.as_bytes(),
                !live_prev,
                deleted,
                create_revision,
                prev.map_or(0, |p| p.id),
                expires_at,
                value
            ])?;
        if let Some(p) = prev
            && p.expires_at.is_some()
        {
            self.conn
                .prepare_cached("UPDATE log SET expires_at = NULL WHERE id = ?1")?
                .execute([p.id])?;
        }
        self.revision = revision;
        Ok(revision)
    }

    fn create(
        &mut self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> rusqlite::Result<Result<KeyValue, Error>> {
        let prev = self.latest(key)?;
        if prev.as_ref().is_some_and(|p| !p.deleted) {
            return Ok(Err(Error::Exists(key.to_owned())));
        }
        let revision = self.append(key, prev.as_ref(), false, false, &value, expiry(ttl))?;
        let kv = KeyValue {
            key: key.to_owned(),
            value,
            create_revision: revision,
            mod_revision: revision,
        };
        self.events.push(Event {
            kind: EventKind::Put,
            kv: kv.clone(),
            prev: None,
        });
        Ok(Ok(kv))
    }

    /// The key's live version, checked against `expected`.
    fn live_at(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> rusqlite::Result<Result<(Latest, KeyValue), Error>> {
        let Some(latest) = self.latest(key)?.filter(|l| !l.deleted) else {
            return Ok(Err(Error::NotFound(key.to_owned())));
        };
        let current = KeyValue {
            key: key.to_owned(),
            value: latest.value.clone(),
            create_revision: latest.create_revision,
            mod_revision: latest.id,
        };
        if let Some(expected) = expected
            && expected != latest.id
        {
            return Ok(Err(Error::Conflict {
                key: key.to_owned(),
                expected,
                current: Box::new(current),
            }));
        }
        Ok(Ok((latest, current)))
    }

    fn update(
        &mut self,
        key: &str,
        value: Bytes,
        expected: Revision,
        ttl: Option<Duration>,
    ) -> rusqlite::Result<Result<KeyValue, Error>> {
        let (latest, current) = match self.live_at(key, Some(expected))? {
            Ok(found) => found,
            Err(e) => return Ok(Err(e)),
        };
        let revision = self.append(key, Some(&latest), true, false, &value, expiry(ttl))?;
        let kv = KeyValue {
            key: key.to_owned(),
            value,
            create_revision: latest.create_revision,
            mod_revision: revision,
        };
        self.events.push(Event {
            kind: EventKind::Put,
            kv: kv.clone(),
            prev: Some(current),
        });
        Ok(Ok(kv))
    }

    fn delete(
        &mut self,
        key: &str,
        expected: Option<Revision>,
    ) -> rusqlite::Result<Result<KeyValue, Error>> {
        let (latest, current) = match self.live_at(key, expected)? {
            Ok(found) => found,
            Err(e) => return Ok(Err(e)),
        };
        let revision = self.append(key, Some(&latest), true, true, &[], None)?;
        let deleted = KeyValue {
            mod_revision: revision,
            ..current.clone()
        };
        self.events.push(Event {
            kind: EventKind::Delete,
            kv: deleted.clone(),
            prev: Some(current),
        });
        Ok(Ok(deleted))
    }

    /// Deletes keys whose time is up, each at its own revision.
    fn expire(&mut self) -> rusqlite::Result<()> {
        let due: Vec<(Revision, Vec<u8>)> = self
            .conn
            .prepare_cached(
                "SELECT id, name FROM log WHERE expires_at IS NOT NULL AND expires_at <= ?1 \
                 ORDER BY expires_at, id LIMIT ?2",
            )?
            .query_map(params![now_ms(), EXPIRE_STEP], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })?
            .collect::<Result<_, _>>()?;
        for (id, name) in due {
            let Ok(key) = String::from_utf8(name) else {
                tracing::error!(
                    revision = id,
                    "an expiring key is not UTF-8; its TTL is dropped"
                );
                self.conn
                    .prepare_cached("UPDATE log SET expires_at = NULL WHERE id = ?1")?
                    .execute([id])?;
                continue;
            };
            if let Err(e) = self.delete(&key, Some(id))? {
                // Only the latest live row has an expiry; anything else is
                // a damaged log. Drop the expiry so that it is not retried.
                tracing::error!(%key, revision = id, error = %e, "expiring a key");
                self.conn
                    .prepare_cached("UPDATE log SET expires_at = NULL WHERE id = ?1")?
                    .execute([id])?;
            }
        }
        Ok(())
    }

    fn load_next_expiry(&mut self) {
        let next = self
            .conn
            .prepare_cached("SELECT MIN(expires_at) FROM log WHERE expires_at IS NOT NULL")
            .and_then(|mut stmt| stmt.query_row([], |row| row.get::<_, Option<i64>>(0)));
        self.next_expiry = match next {
            Ok(next) => next,
            Err(e) => {
                tracing::error!(error = %e, "reading the store's next expiry; retrying in 1 s");
                Some(now_ms().saturating_add(1000))
            }
        };
    }

    /// Forgets history before `revision`: every row that a later row at or
    /// before `revision` supersedes, and deletions at or before it.
    fn compact(&mut self, revision: Revision) -> rusqlite::Result<Result<(), Error>> {
        if revision > self.revision {
            return Ok(Err(Error::FutureRevision {
                requested: revision,
                current: self.revision,
            }));
        }
        if revision <= self.compacted {
            return Ok(Err(Error::Compacted {
                requested: revision,
                compacted: self.compacted,
            }));
        }
        // Rows before the last compaction that are still there are the
        // latest of their key then; only a row since can supersede them,
        // and each row names the one it supersedes.
        self.conn
            .prepare_cached(
                "DELETE FROM log WHERE id IN (SELECT prev_revision FROM log \
                 WHERE id > ?1 AND id <= ?2 AND prev_revision > 0)",
            )?
            .execute(params![self.compacted, revision])?;
        self.conn
            .prepare_cached("DELETE FROM log WHERE id > ?1 AND id <= ?2 AND deleted = 1")?
            .execute(params![self.compacted, revision])?;
        self.conn
            .prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'compact_revision'")?
            .execute([revision])?;
        self.compacted = revision;
        Ok(Ok(()))
    }

    /// The automatic compactor: when its time comes, it plans to keep the
    /// last `compact_keep` revisions, then compacts in steps between
    /// batches so that writers never wait long.
    fn auto_compact(&mut self) {
        let Some(every) = self.options.compact_interval else {
            return;
        };
        if self.next_compaction.is_some_and(|at| at <= Instant::now()) {
            self.next_compaction = Some(Instant::now() + every);
            let target = self.revision - self.options.compact_keep.max(0);
            self.compact_target = self.compact_target.max(target);
        }
        if self.compact_target <= self.compacted {
            return;
        }
        let step = self.compact_target.min(self.compacted + COMPACT_STEP);
        let compacted = self.compacted;
        let result = self.conn.execute_batch("BEGIN IMMEDIATE").and_then(|()| {
            let outcome = self.compact(step)?;
            self.conn.execute_batch("COMMIT")?;
            Ok(outcome)
        });
        match result {
            Ok(Ok(())) => {
                self.shared
                    .compacted
                    .store(self.compacted, Ordering::SeqCst);
                tracing::debug!(revision = step, "store compacted");
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "automatic compaction");
                self.compact_target = self.compacted;
            }
            Err(e) => {
                tracing::error!(error = %e, path = %self.path.display(), "automatic compaction failed");
                if !self.conn.is_autocommit() {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                self.compacted = compacted;
                // Try again at the next interval.
                self.compact_target = compacted;
            }
        }
    }
}
