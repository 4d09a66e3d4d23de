//! Reads: a pool of read connections (WAL lets them read while the writer
//! writes), each read one snapshot, run on tokio's blocking threads.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_kv::{Error, Event, EventKind, KeyValue, ListOptions, ListResult, Revision};
use bytes::Bytes;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};

use crate::{backend, open_connection, range_end};

/// The read connections of one store.
pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    max_idle: usize,
}

impl Readers {
    /// A pool for the store at `path`, with one connection opened now (so
    /// that a store that cannot be read fails to open).
    pub(crate) fn new(path: &Path, max_idle: usize) -> Result<Self, Error> {
        let first = Self::connect(path)?;
        Ok(Self {
            path: path.to_owned(),
            idle: Mutex::new(vec![first]),
            max_idle: max_idle.max(1),
        })
    }

    fn connect(path: &Path) -> Result<Connection, Error> {
        let conn = open_connection(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.pragma_update(None, "query_only", true)
            .map_err(backend("making a read connection read-only"))?;
        Ok(conn)
    }

    /// Runs `read` on a pooled connection on a blocking thread.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, read: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, Error> + Send + 'static,
    {
        let readers = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = readers.take()?;
            let result = read(&mut conn);
            readers.give_back(conn);
            result
        })
        .await
        .map_err(|e| Error::Backend(format!("a store read failed: {e}")))?
    }

    fn take(&self) -> Result<Connection, Error> {
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        match pooled {
            Some(conn) => Ok(conn),
            None => Self::connect(&self.path),
        }
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
    }
}

/// The current and the compacted revision in a read's snapshot.
pub(crate) fn snapshot(tx: &Transaction<'_>) -> Result<(Revision, Revision), Error> {
    let (max_id, compacted): (Revision, Revision) = tx
        .prepare_cached(
            "SELECT (SELECT IFNULL(MAX(id), 0) FROM log), \
             (SELECT value FROM meta WHERE key = 'compact_revision')",
        )
        .and_then(|mut stmt| stmt.query_row([], |row| Ok((row.get(0)?, row.get(1)?))))
        .map_err(backend("reading the store's revisions"))?;
    // Compaction may remove the latest row (a deletion), never a later one.
    Ok((max_id.max(compacted), compacted))
}

/// The revision a read asked for (0 = current), checked against the range.
fn read_revision(
    current: Revision,
    compacted: Revision,
    revision: Revision,
) -> Result<Revision, Error> {
    if revision == 0 {
        return Ok(current);
    }
    if revision > current {
        return Err(Error::FutureRevision {
            requested: revision,
            current,
        });
    }
    if revision < compacted {
        return Err(Error::Compacted {
            requested: revision,
            compacted,
        });
    }
    Ok(revision)
}

fn key_of(name: Vec<u8>) -> Result<String, Error> {
    String::from_utf8(name)
        .map_err(|e| Error::Backend(format!("the store holds a key that is not UTF-8: {e}")))
}

fn begin(conn: &mut Connection) -> Result<Transaction<'_>, Error> {
    conn.transaction()
        .map_err(backend("starting a read transaction"))
}

/// The key at `revision` (0 = current).
pub(crate) fn get(
    conn: &mut Connection,
    key: &str,
    revision: Revision,
) -> Result<(Revision, Option<KeyValue>), Error> {
    let tx = begin(conn)?;
    let (current, compacted) = snapshot(&tx)?;
    let revision = read_revision(current, compacted, revision)?;
    let row = tx
        .prepare_cached(
            "SELECT id, deleted, create_revision, value FROM log \
             WHERE name = ?1 AND id <= ?2 ORDER BY id DESC LIMIT 1",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![key.as_bytes(), revision], |row| {
                Ok((
                    row.get::<_, Revision>(0)?,
                    row.get::<_, bool>(1)?,
                    row.get::<_, Revision>(2)?,
                    row.get::<_, Vec<u8>>(3)?,
                ))
            })
            .optional()
        })
        .map_err(backend("reading a key"))?;
    let found = row
        .filter(|(_, deleted, _, _)| !deleted)
        .map(|(id, _, create_revision, value)| KeyValue {
            key: key.to_owned(),
            value: Bytes::from(value),
            create_revision,
            mod_revision: id,
        });
    Ok((revision, found))
}

/// The live keys in a name range at a revision, in name order, at most
/// `?4`: `?1` the range's start (inclusive or not), `?2` its end, `?3` the
/// revision. Walks the name index in order and stops at the limit.
fn live_rows(start_inclusive: bool) -> String {
    let op = if start_inclusive { ">=" } else { ">" };
    format!(
        "SELECT l.name, l.value, l.create_revision, l.id FROM log AS l \
         WHERE l.name {op} ?1 AND l.name < ?2 AND l.id <= ?3 \
         AND l.id = (SELECT MAX(id) FROM log WHERE name = l.name AND id <= ?3) \
         AND l.deleted = 0 ORDER BY l.name LIMIT ?4"
    )
}

/// How many keys in a name range are live at a revision (same parameters
/// as [`live_rows`] but the limit).
fn count_live(start_inclusive: bool) -> String {
    let op = if start_inclusive { ">=" } else { ">" };
    format!(
        "SELECT COUNT(*) FROM \
         (SELECT MAX(id) AS id FROM log WHERE name {op} ?1 AND name < ?2 AND id <= ?3 \
          GROUP BY name) AS m \
         JOIN log AS l ON l.id = m.id WHERE l.deleted = 0"
    )
}

/// Keys under `prefix`, a page at a time.
pub(crate) fn list(
    conn: &mut Connection,
    prefix: &str,
    options: &ListOptions,
) -> Result<ListResult, Error> {
    let tx = begin(conn)?;
    let (current, compacted) = snapshot(&tx)?;
    let revision = read_revision(current, compacted, options.revision)?;
    let end = range_end(prefix);
    let (start, inclusive) = match &options.start_after {
        Some(after) if after.as_str() >= prefix => (after.as_bytes(), false),
        _ => (prefix.as_bytes(), true),
    };
    let limit = if options.limit == 0 {
        -1
    } else {
        i64::try_from(options.limit).unwrap_or(i64::MAX)
    };
    let rows = tx
        .prepare_cached(&live_rows(inclusive))
        .and_then(|mut stmt| {
            stmt.query_map(params![start, end, revision, limit], |row| {
                Ok((
                    row.get::<_, Vec<u8>>(0)?,
                    row.get::<_, Vec<u8>>(1)?,
                    row.get::<_, Revision>(2)?,
                    row.get::<_, Revision>(3)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(backend("listing keys"))?;
    let mut items = Vec::with_capacity(rows.len());
    for (name, value, create_revision, mod_revision) in rows {
        items.push(KeyValue {
            key: key_of(name)?,
            value: Bytes::from(value),
            create_revision,
            mod_revision,
        });
    }
    let remaining = match items.last() {
        Some(last) if options.limit != 0 && items.len() >= options.limit => tx
            .prepare_cached(&count_live(false))
            .and_then(|mut stmt| {
                stmt.query_row(params![last.key.as_bytes(), end, revision], |row| {
                    row.get::<_, i64>(0)
                })
            })
            .map_err(backend("counting the keys after a page"))?,
        _ => 0,
    };
    Ok(ListResult {
        revision,
        items,
        more: remaining > 0,
        remaining,
    })
}

/// How many live keys are under `prefix` now.
pub(crate) fn count(conn: &mut Connection, prefix: &str) -> Result<(Revision, i64), Error> {
    let tx = begin(conn)?;
    let (current, _) = snapshot(&tx)?;
    let count = tx
        .prepare_cached(&count_live(true))
        .and_then(|mut stmt| {
            stmt.query_row(
                params![prefix.as_bytes(), range_end(prefix), current],
                |row| row.get::<_, i64>(0),
            )
        })
        .map_err(backend("counting keys"))?;
    Ok((current, count))
}

/// A page of the changes under `prefix` after revision `after`, at most
/// `limit`, in revision order. Fails with [`Error::Compacted`] when the
/// history after `after` is no longer whole.
pub(crate) fn changes(
    conn: &mut Connection,
    prefix: &str,
    after: Revision,
    limit: usize,
) -> Result<Vec<Event>, Error> {
    let tx = begin(conn)?;
    let (_, compacted) = snapshot(&tx)?;
    if after < compacted {
        return Err(Error::Compacted {
            requested: after,
            compacted,
        });
    }
    changes_in(&tx, prefix, after, limit)
}

/// [`changes`] in an open snapshot whose range the caller checked.
pub(crate) fn changes_in(
    tx: &Transaction<'_>,
    prefix: &str,
    after: Revision,
    limit: usize,
) -> Result<Vec<Event>, Error> {
    // `+l.name`: walk the log by revision from `after` (usually a short
    // tail) rather than every version of every key under the prefix.
    let rows = tx
        .prepare_cached(
            "SELECT l.id, l.name, l.created, l.deleted, l.create_revision, l.value, \
                    p.id, p.create_revision, p.value \
             FROM log AS l LEFT JOIN log AS p ON p.id = l.prev_revision AND l.created = 0 \
             WHERE l.id > ?1 AND +l.name >= ?2 AND +l.name < ?3 \
             ORDER BY l.id LIMIT ?4",
        )
        .and_then(|mut stmt| {
            stmt.query_map(
                params![
                    after,
                    prefix.as_bytes(),
                    range_end(prefix),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                |row| {
                    Ok(Change {
                        revision: row.get(0)?,
                        name: row.get(1)?,
                        created: row.get(2)?,
                        deleted: row.get(3)?,
                        create_revision: row.get(4)?,
                        value: row.get(5)?,
                        prev_revision: row.get(6)?,
                        prev_create_revision: row.get(7)?,
                        prev_value: row.get(8)?,
                    })
                },
            )?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(backend("reading the store's history"))?;
    rows.into_iter().map(Change::into_event).collect()
}

/// One row of the log with its previous version.
struct Change {
    revision: Revision,
    name: Vec<u8>,
    created: bool,
    deleted: bool,
    create_revision: Revision,
    value: Vec<u8>,
    prev_revision: Option<Revision>,
    prev_create_revision: Option<Revision>,
    prev_value: Option<Vec<u8>>,
}

impl Change {
    fn into_event(self) -> Result<Event, Error> {
        let key = key_of(self.name)?;
        let prev = match (
            self.prev_revision,
            self.prev_create_revision,
            self.prev_value,
        ) {
            (Some(mod_revision), Some(create_revision), Some(value)) => Some(KeyValue {
                key: key.clone(),
                value: Bytes::from(value),
                create_revision,
                mod_revision,
            }),
            _ => None,
        };
        if !self.created && prev.is_none() {
            return Err(Error::Backend(format!(
                "the store's log is damaged: revision {} of {key} has lost its previous version",
                self.revision
            )));
        }
        if self.deleted {
            let value = prev.as_ref().map(|p| p.value.clone()).unwrap_or_default();
            return Ok(Event {
                kind: EventKind::Delete,
                kv: KeyValue {
                    key,
                    value,
                    create_revision: self.create_revision,
                    mod_revision: self.revision,
                },
                prev,
            });
        }
        Ok(Event {
            kind: EventKind::Put,
            kv: KeyValue {
                key,
                value: Bytes::from(self.value),
                create_revision: self.create_revision,
                mod_revision: self.revision,
            },
            prev,
        })
    }
}
