//! Image metadata in SQLite (WAL, safe for several processes at once).
//!
//! Schema 2:
//! ```text
//! meta(key PK, value)                      schema_version
//! images(id PK, manifest, manifest_media_type, index_digest, platform,
//!        created, size, added, parent)     id = the config digest (Docker's image ID);
//!                                          parent = the image a commit was made from
//! names(name PK, image_id, kind)           "docker.io/library/busybox:latest" (kind tag)
//!                                          "docker.io/library/busybox@sha256:.." (kind digest)
//! layers(blob PK, diff_id, media_type, size)   a layer blob and its uncompressed digest/size
//! snapshots(chain_id PK, parent, diff_id, dir, size, created)   unpacked layers
//! ```
//! Schema 1 had no `images.parent` (2 adds it, NULL for every image).

use std::path::Path;
use std::time::Duration;

use berth_types::Digest;
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Error, Result};

/// Current schema version.
pub const SCHEMA_VERSION: u32 = 2;

const MIGRATIONS: &[&str] = &[
    // 0 -> 1
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE images (
        id TEXT PRIMARY KEY,
        manifest TEXT NOT NULL,
        manifest_media_type TEXT NOT NULL,
        index_digest TEXT,
        platform TEXT NOT NULL,
        created TEXT,
        size INTEGER NOT NULL,
        added TEXT NOT NULL);
     CREATE TABLE names (
        name TEXT PRIMARY KEY,
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        kind TEXT NOT NULL CHECK (kind IN ('tag', 'digest')));
     CREATE INDEX names_by_image ON names(image_id);
     CREATE TABLE layers (
        blob TEXT PRIMARY KEY,
        diff_id TEXT NOT NULL,
        media_type TEXT NOT NULL,
        size INTEGER);
     CREATE INDEX layers_by_diff ON layers(diff_id);
     CREATE TABLE snapshots (
        chain_id TEXT PRIMARY KEY,
        parent TEXT,
        diff_id TEXT NOT NULL,
        dir TEXT NOT NULL,
        size INTEGER NOT NULL,
        created TEXT NOT NULL);",
    // 1 -> 2
    "ALTER TABLE images ADD COLUMN parent TEXT;",
];

/// An image row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRecord {
    /// Image ID: the config digest.
    pub id: Digest,
    /// The manifest digest.
    pub manifest: Digest,
    /// Its media type.
    pub manifest_media_type: String,
    /// The index (manifest list) it was selected from, if any.
    pub index_digest: Option<Digest>,
    /// `os/arch[/variant]`.
    pub platform: String,
    /// Creation time from the config.
    pub created: Option<String>,
    /// Uncompressed size of all layers.
    pub size: u64,
    /// When it was added here (RFC 3339).
    pub added: String,
    /// The image it was committed from (docker's `Parent`), a local fact
    /// that is not part of the image's content.
    pub parent: Option<Digest>,
}

/// A snapshot row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotRecord {
    /// Chain id.
    pub chain_id: Digest,
    /// Parent chain id.
    pub parent: Option<Digest>,
    /// The layer's diff id.
    pub diff_id: Digest,
    /// Directory name under `snapshots/`.
    pub dir: String,
    /// Bytes on disk.
    pub size: u64,
    /// When it was made.
    pub created: String,
}

/// The metadata database.
#[derive(Debug)]
pub struct Db {
    conn: Connection,
}

fn dig(s: String) -> rusqlite::Result<Digest> {
    s.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

impl Db {
    /// Opens (creating and migrating) the database at `path`.
    pub fn open(path: &Path) -> Result<Db> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let mut db = Db { conn };
        db.migrate()?;
        Ok(db)
    }

    /// The schema version stored in the database (0 = empty).
    pub fn version(&self) -> Result<u32> {
        let has_meta: bool = self
            .conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='meta'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)?;
        if !has_meta {
            return Ok(0);
        }
        let v: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key='schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    fn migrate(&mut self) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let current = {
            let has_meta: i64 = tx.query_row(
                "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='meta'",
                [],
                |r| r.get(0),
            )?;
            if has_meta == 0 {
                0
            } else {
                tx.query_row(
                    "SELECT value FROM meta WHERE key='schema_version'",
                    [],
                    |r| r.get::<_, String>(0),
                )
                .optional()?
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0)
            }
        };
        if current > SCHEMA_VERSION {
            return Err(Error::Invalid(format!(
                "the image database has schema {current}, newer than this berth understands ({SCHEMA_VERSION})"
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO meta(key, value) VALUES('schema_version', ?1)
                 ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                params![(i + 1).to_string()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Runs `f` in one immediate transaction.
    pub fn tx<T>(&mut self, f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>) -> Result<T> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let r = f(&tx)?;
        tx.commit()?;
        Ok(r)
    }

    /// Inserts or replaces an image row.
    pub fn put_image(tx: &rusqlite::Transaction<'_>, r: &ImageRecord) -> Result<()> {
        tx.execute(
            "INSERT INTO images(id, manifest, manifest_media_type, index_digest, platform, created, size, added, parent)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT(id) DO UPDATE SET manifest=excluded.manifest,
                manifest_media_type=excluded.manifest_media_type, index_digest=excluded.index_digest,
                size=excluded.size, parent=coalesce(excluded.parent, images.parent)",
            params![
                r.id.to_string(),
                r.manifest.to_string(),
                r.manifest_media_type,
                r.index_digest.as_ref().map(|d| d.to_string()),
                r.platform,
                r.created,
                r.size.min(i64::MAX as u64) as i64,
                r.added,
                r.parent.as_ref().map(|d| d.to_string())
            ],
        )?;
        Ok(())
    }

    fn image_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ImageRecord> {
        Ok(ImageRecord {
            id: dig(row.get(0)?)?,
            manifest: dig(row.get(1)?)?,
            manifest_media_type: row.get(2)?,
            index_digest: row.get::<_, Option<String>>(3)?.map(dig).transpose()?,
            platform: row.get(4)?,
            created: row.get(5)?,
            size: row.get::<_, i64>(6)?.max(0) as u64,
            added: row.get(7)?,
            parent: row.get::<_, Option<String>>(8)?.map(dig).transpose()?,
        })
    }

    const IMAGE_COLS: &'static str =
        "id, manifest, manifest_media_type, index_digest, platform, created, size, added, parent";

    /// The image with this id.
    pub fn image(&self, id: &Digest) -> Result<Option<ImageRecord>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {} FROM images WHERE id=?1", Self::IMAGE_COLS),
                params![id.to_string()],
                Self::image_from_row,
            )
            .optional()?)
    }

    /// Every image.
    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {} FROM images ORDER BY added DESC",
            Self::IMAGE_COLS
        ))?;
        let rows = st.query_map([], Self::image_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Image ids whose id starts with `prefix` (hex, without `sha256:`).
    pub fn images_with_prefix(&self, prefix: &str) -> Result<Vec<Digest>> {
        let mut st = self
            .conn
            .prepare("SELECT id FROM images WHERE id LIKE ?1")?;
        let rows = st.query_map(params![format!("sha256:{prefix}%")], |r| dig(r.get(0)?))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The image a name points at.
    pub fn resolve_name(&self, name: &str) -> Result<Option<Digest>> {
        Ok(self
            .conn
            .query_row(
                "SELECT image_id FROM names WHERE name=?1",
                params![name],
                |r| dig(r.get(0)?),
            )
            .optional()?)
    }

    /// Points `name` at `image`; returns the image it pointed at before.
    pub fn set_name(
        tx: &rusqlite::Transaction<'_>,
        name: &str,
        image: &Digest,
        kind: &str,
    ) -> Result<Option<Digest>> {
        let old: Option<Digest> = tx
            .query_row(
                "SELECT image_id FROM names WHERE name=?1",
                params![name],
                |r| dig(r.get(0)?),
            )
            .optional()?;
        tx.execute(
            "INSERT INTO names(name, image_id, kind) VALUES(?1, ?2, ?3)
             ON CONFLICT(name) DO UPDATE SET image_id=excluded.image_id, kind=excluded.kind",
            params![name, image.to_string(), kind],
        )?;
        Ok(old.filter(|o| o != image))
    }

    /// Removes a name; returns the image it pointed at.
    pub fn remove_name(tx: &rusqlite::Transaction<'_>, name: &str) -> Result<Option<Digest>> {
        let old: Option<Digest> = tx
            .query_row(
                "SELECT image_id FROM names WHERE name=?1",
                params![name],
                |r| dig(r.get(0)?),
            )
            .optional()?;
        tx.execute("DELETE FROM names WHERE name=?1", params![name])?;
        Ok(old)
    }

    /// Names of an image: (name, kind).
    pub fn names_of(&self, id: &Digest) -> Result<Vec<(String, String)>> {
        let mut st = self
            .conn
            .prepare("SELECT name, kind FROM names WHERE image_id=?1 ORDER BY name")?;
        let rows = st.query_map(params![id.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Number of names an image has (in a transaction).
    pub fn name_count(tx: &rusqlite::Transaction<'_>, id: &Digest) -> Result<u64> {
        Ok(tx.query_row(
            "SELECT count(*) FROM names WHERE image_id=?1",
            params![id.to_string()],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Deletes an image row (and its names).
    pub fn delete_image(tx: &rusqlite::Transaction<'_>, id: &Digest) -> Result<()> {
        tx.execute("DELETE FROM images WHERE id=?1", params![id.to_string()])?;
        Ok(())
    }

    /// Records a layer blob's diff id (and its uncompressed size, when
    /// known).
    pub fn put_layer(
        tx: &rusqlite::Transaction<'_>,
        blob: &Digest,
        diff_id: &Digest,
        media_type: &str,
        size: Option<u64>,
    ) -> Result<()> {
        tx.execute(
            "INSERT INTO layers(blob, diff_id, media_type, size) VALUES(?1, ?2, ?3, ?4)
             ON CONFLICT(blob) DO UPDATE SET size=coalesce(excluded.size, layers.size)",
            params![
                blob.to_string(),
                diff_id.to_string(),
                media_type,
                size.map(|s| s.min(i64::MAX as u64) as i64)
            ],
        )?;
        Ok(())
    }

    /// The diff id and uncompressed size of a layer blob.
    pub fn layer(&self, blob: &Digest) -> Result<Option<(Digest, Option<u64>)>> {
        Ok(self
            .conn
            .query_row(
                "SELECT diff_id, size FROM layers WHERE blob=?1",
                params![blob.to_string()],
                |r| {
                    Ok((
                        dig(r.get(0)?)?,
                        r.get::<_, Option<i64>>(1)?.map(|s| s.max(0) as u64),
                    ))
                },
            )
            .optional()?)
    }

    /// Blobs known to hold the layer with this diff id: (blob, media type).
    pub fn blobs_for_diff(&self, diff_id: &Digest) -> Result<Vec<(Digest, String)>> {
        let mut st = self
            .conn
            .prepare("SELECT blob, media_type FROM layers WHERE diff_id=?1")?;
        let rows = st.query_map(params![diff_id.to_string()], |r| {
            Ok((dig(r.get(0)?)?, r.get(1)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every layer blob row.
    pub fn layer_blobs(&self) -> Result<Vec<Digest>> {
        let mut st = self.conn.prepare("SELECT blob FROM layers")?;
        let rows = st.query_map([], |r| dig(r.get(0)?))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Forgets a layer blob row.
    pub fn delete_layer(&self, blob: &Digest) -> Result<()> {
        self.conn.execute(
            "DELETE FROM layers WHERE blob=?1",
            params![blob.to_string()],
        )?;
        Ok(())
    }

    /// The snapshot for a chain id.
    pub fn snapshot(&self, chain: &Digest) -> Result<Option<SnapshotRecord>> {
        Ok(self
            .conn
            .query_row(
                "SELECT chain_id, parent, diff_id, dir, size, created FROM snapshots WHERE chain_id=?1",
                params![chain.to_string()],
                Self::snapshot_from_row,
            )
            .optional()?)
    }

    fn snapshot_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SnapshotRecord> {
        Ok(SnapshotRecord {
            chain_id: dig(r.get(0)?)?,
            parent: r.get::<_, Option<String>>(1)?.map(dig).transpose()?,
            diff_id: dig(r.get(2)?)?,
            dir: r.get(3)?,
            size: r.get::<_, i64>(4)?.max(0) as u64,
            created: r.get(5)?,
        })
    }

    /// Records a snapshot; false if another process recorded it first.
    pub fn put_snapshot(tx: &rusqlite::Transaction<'_>, s: &SnapshotRecord) -> Result<bool> {
        let n = tx.execute(
            "INSERT INTO snapshots(chain_id, parent, diff_id, dir, size, created) VALUES(?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(chain_id) DO NOTHING",
            params![
                s.chain_id.to_string(),
                s.parent.as_ref().map(|p| p.to_string()),
                s.diff_id.to_string(),
                s.dir,
                s.size.min(i64::MAX as u64) as i64,
                s.created
            ],
        )?;
        Ok(n == 1)
    }

    /// Every snapshot.
    pub fn snapshots(&self) -> Result<Vec<SnapshotRecord>> {
        let mut st = self
            .conn
            .prepare("SELECT chain_id, parent, diff_id, dir, size, created FROM snapshots")?;
        let rows = st.query_map([], Self::snapshot_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every row of every table, as text, in a stable order (for tests
    /// that check an operation left the database as it was, and for
    /// debugging).
    pub fn dump(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for (table, cols) in [
            ("meta", "key, value"),
            (
                "images",
                "id, manifest, manifest_media_type, index_digest, platform, created, size, parent",
            ),
            ("names", "name, image_id, kind"),
            ("layers", "blob, diff_id, media_type, size"),
            ("snapshots", "chain_id, parent, diff_id, dir, size"),
        ] {
            let mut st = self
                .conn
                .prepare(&format!("SELECT {cols} FROM {table} ORDER BY 1"))?;
            let n = st.column_count();
            let rows = st.query_map([], |r| {
                let mut cells = Vec::with_capacity(n);
                for i in 0..n {
                    cells.push(match r.get_ref(i)? {
                        rusqlite::types::ValueRef::Null => "NULL".to_owned(),
                        rusqlite::types::ValueRef::Integer(v) => v.to_string(),
                        rusqlite::types::ValueRef::Real(v) => v.to_string(),
                        rusqlite::types::ValueRef::Text(t) => {
                            String::from_utf8_lossy(t).into_owned()
                        }
                        rusqlite::types::ValueRef::Blob(b) => hex::encode(b),
                    });
                }
                Ok(format!("{table}: {}", cells.join(" | ")))
            })?;
            for r in rows {
                out.push(r?);
            }
        }
        Ok(out)
    }

    /// Forgets a snapshot row.
    pub fn delete_snapshot(&self, chain: &Digest) -> Result<()> {
        self.conn.execute(
            "DELETE FROM snapshots WHERE chain_id=?1",
            params![chain.to_string()],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> Digest {
        format!("sha256:{}", c.to_string().repeat(64))
            .parse()
            .unwrap()
    }

    #[test]
    fn migrates_an_empty_database_and_refuses_newer_ones() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("images.db");
        let db = Db::open(&p).unwrap();
        assert_eq!(db.version().unwrap(), SCHEMA_VERSION);
        drop(db);
        // reopening is a no-op
        assert_eq!(Db::open(&p).unwrap().version().unwrap(), SCHEMA_VERSION);
        let c = Connection::open(&p).unwrap();
        c.execute("UPDATE meta SET value='99' WHERE key='schema_version'", [])
            .unwrap();
        drop(c);
        assert!(Db::open(&p).unwrap_err().to_string().contains("newer"));
    }

    #[test]
    fn schema_1_gains_the_parent_column() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("images.db");
        {
            // a schema 1 database with an image row, as berth 0.1 wrote it
            let c = Connection::open(&p).unwrap();
            c.execute_batch(MIGRATIONS[0]).unwrap();
            c.execute(
                "INSERT INTO meta(key, value) VALUES('schema_version', '1')",
                [],
            )
            .unwrap();
            c.execute(
                "INSERT INTO images VALUES(?1, ?2, 'm', NULL, 'linux/amd64', NULL, 7, 'then')",
                params![d('a').to_string(), d('b').to_string()],
            )
            .unwrap();
        }
        let mut db = Db::open(&p).unwrap();
        assert_eq!(db.version().unwrap(), 2);
        let old = db.image(&d('a')).unwrap().unwrap();
        assert_eq!((old.parent.clone(), old.size), (None, 7));
        // re-adding an image keeps a parent it was given
        let with = ImageRecord {
            parent: Some(d('c')),
            ..old.clone()
        };
        db.tx(|tx| Db::put_image(tx, &with)).unwrap();
        db.tx(|tx| Db::put_image(tx, &old)).unwrap();
        assert_eq!(db.image(&d('a')).unwrap().unwrap().parent, Some(d('c')));
    }

    #[test]
    fn images_names_layers_snapshots() {
        let t = tempfile::tempdir().unwrap();
        let mut db = Db::open(&t.path().join("images.db")).unwrap();
        let rec = ImageRecord {
            id: d('a'),
            manifest: d('b'),
            manifest_media_type: "m".into(),
            index_digest: None,
            platform: "linux/amd64".into(),
            created: None,
            size: 10,
            added: "now".into(),
            parent: Some(d('f')),
        };
        db.tx(|tx| {
            Db::put_image(tx, &rec)?;
            assert_eq!(
                Db::set_name(tx, "docker.io/library/x:latest", &rec.id, "tag")?,
                None
            );
            Ok(())
        })
        .unwrap();
        assert_eq!(
            db.resolve_name("docker.io/library/x:latest").unwrap(),
            Some(d('a'))
        );
        assert_eq!(db.image(&d('a')).unwrap().unwrap(), rec);
        assert_eq!(db.images_with_prefix("aaaa").unwrap(), vec![d('a')]);
        db.tx(|tx| {
            Db::delete_image(tx, &rec.id)?;
            Ok(())
        })
        .unwrap();
        assert_eq!(
            db.resolve_name("docker.io/library/x:latest").unwrap(),
            None,
            "names go with the image"
        );
        db.tx(|tx| Db::put_layer(tx, &d('c'), &d('e'), "t", Some(5)))
            .unwrap();
        assert_eq!(db.layer(&d('c')).unwrap(), Some((d('e'), Some(5))));
        let s = SnapshotRecord {
            chain_id: d('e'),
            parent: None,
            diff_id: d('e'),
            dir: "1".into(),
            size: 3,
            created: "x".into(),
        };
        assert!(db.tx(|tx| Db::put_snapshot(tx, &s)).unwrap());
        assert!(!db.tx(|tx| Db::put_snapshot(tx, &s)).unwrap());
        let dump = db.dump().unwrap();
        assert!(
            dump.contains(&format!(
                "snapshots: {} | NULL | {} | 1 | 3",
                d('e'),
                d('e')
            )),
            "{dump:?}"
        );
        assert_eq!(db.snapshot(&d('e')).unwrap().unwrap(), s);
    }
}
