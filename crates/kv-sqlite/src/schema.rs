//! The database's schema, its version and the migrations between versions.
//!
//! Version 1:
//!
//! ```sql
//! CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
//! -- rows: schema_version, compact_revision
//! CREATE TABLE log (
//!     id INTEGER PRIMARY KEY,           -- the revision
//!     name BLOB NOT NULL,               -- the key's UTF-8 bytes (BLOB: byte order)
//!     created INTEGER NOT NULL,         -- 1: this row starts a life of the key
//!     deleted INTEGER NOT NULL,         -- 1: this row deletes the key
//!     create_revision INTEGER NOT NULL, -- the revision that started this life
//!     prev_revision INTEGER NOT NULL,   -- the key's previous row (0: none)
//!     expires_at INTEGER,               -- unix ms; set on a key's latest row only
//!     value BLOB NOT NULL               -- empty on a deletion (the previous row holds it)
//! );
//! CREATE INDEX log_name_id ON log (name, id);
//! CREATE INDEX log_expires_at ON log (expires_at) WHERE expires_at IS NOT NULL;
//! ```
//!
//! Names are BLOBs so that SQLite compares them byte by byte, as the
//! contract orders keys, and so that a prefix's end (which need not be
//! UTF-8) compares with them.

use std::path::Path;

use berth_kv::Error;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = 1;

/// Takes a database from version 0 (empty) to version 1.
const V1: &str = "
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE log (
    id INTEGER PRIMARY KEY,
    name BLOB NOT NULL,
    created INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    expires_at INTEGER,
    value BLOB NOT NULL
);
CREATE INDEX log_name_id ON log (name, id);
CREATE INDEX log_expires_at ON log (expires_at) WHERE expires_at IS NOT NULL;
INSERT INTO meta (key, value) VALUES ('compact_revision', 0);
";

/// `MIGRATIONS[n]` takes a database from version `n` to version `n + 1`.
const MIGRATIONS: &[&str] = &[V1];

/// Brings the database at `path` (open on `conn`) to [`SCHEMA_VERSION`],
/// in one transaction. Refuses a database of a newer version, or one that
/// is not a berth store.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), Error> {
    let sql = |e: rusqlite::Error| {
        Error::Backend(format!(
            "migrating the store {} to schema version {SCHEMA_VERSION}: {e}",
            path.display()
        ))
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql)?;
    let found = version(&tx, path)?;
    if found > SCHEMA_VERSION {
        return Err(Error::Backend(format!(
            "the store {} has schema version {found}, newer than this berth's {SCHEMA_VERSION}: \
             it was written by a newer berth (downgrades are not supported)",
            path.display()
        )));
    }
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    for (from, step) in MIGRATIONS.iter().enumerate().skip(to_index(found)) {
        tx.execute_batch(step).map_err(|e| {
            Error::Backend(format!(
                "migrating the store {} from schema version {from}: {e}",
                path.display()
            ))
        })?;
    }
    tx.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?1)",
        [SCHEMA_VERSION],
    )
    .map_err(sql)?;
    tx.commit().map_err(sql)?;
    tracing::info!(
        path = %path.display(),
        from = found,
        to = SCHEMA_VERSION,
        "store schema migrated"
    );
    Ok(())
}

fn to_index(version: i64) -> usize {
    usize::try_from(version).unwrap_or(0)
}

/// The schema version of the database: 0 when it is empty.
fn version(conn: &Connection, path: &Path) -> Result<i64, Error> {
    let sql = |e: rusqlite::Error| {
        Error::Backend(format!(
            "reading the schema version of the store {}: {e}",
            path.display()
        ))
    };
    let tables: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |row| row.get(0),
        )
        .map_err(sql)?;
    if tables == 0 {
        return Ok(0);
    }
    let has_meta: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
            [],
            |row| row.get(0),
        )
        .map_err(sql)?;
    let found: Option<i64> = if has_meta == 0 {
        None
    } else {
        conn.query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(sql)?
    };
    match found {
        Some(version) if version >= 1 => Ok(version),
        _ => Err(Error::Backend(format!(
            "{} is an SQLite database but not a berth store (it has tables but no schema version)",
            path.display()
        ))),
    }
}
