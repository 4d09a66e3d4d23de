//! Registry metadata in SQLite (WAL): which repositories exist, which blobs
//! are linked into which repository, the manifests of each repository with
//! their media type and referrers data, tags, and upload sessions. The bytes
//! of blobs and manifests live in the content store; this only says who may
//! see them.
//!
//! Schema 1:
//! ```text
//! meta(key PK, value)                                   schema_version
//! repositories(id PK, name UNIQUE, created)
//! blob_links(repo, digest, size, linked)                PK (repo, digest)
//! manifests(repo, digest, media_type, size, artifact_type, subject,
//!           annotations, pushed)                        PK (repo, digest)
//! tags(repo, name, digest, updated)                     PK (repo, name);
//!                                                       (repo, digest) -> manifests, cascade
//! uploads(id PK, repo, algorithm, started)              open upload sessions
//! ```
//! Times are Unix seconds.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_types::Digest;
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Error;

/// Current schema version.
pub(crate) const SCHEMA_VERSION: u32 = 1;

const MIGRATIONS: &[&str] = &[
    // 0 -> 1
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE repositories (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created INTEGER NOT NULL);
     CREATE TABLE blob_links (
        repo INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
        digest TEXT NOT NULL,
        size INTEGER NOT NULL,
        linked INTEGER NOT NULL,
        PRIMARY KEY (repo, digest)) WITHOUT ROWID;
     CREATE INDEX blob_links_by_digest ON blob_links(digest);
     CREATE TABLE manifests (
        repo INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
        digest TEXT NOT NULL,
        media_type TEXT NOT NULL,
        size INTEGER NOT NULL,
        artifact_type TEXT,
        subject TEXT,
        annotations TEXT,
        pushed INTEGER NOT NULL,
        PRIMARY KEY (repo, digest)) WITHOUT ROWID;
     CREATE INDEX manifests_by_digest ON manifests(digest);
     CREATE INDEX manifests_by_subject ON manifests(repo, subject) WHERE subject IS NOT NULL;
     CREATE TABLE tags (
        repo INTEGER NOT NULL,
        name TEXT NOT NULL,
        digest TEXT NOT NULL,
        updated INTEGER NOT NULL,
        PRIMARY KEY (repo, name),
        FOREIGN KEY (repo, digest) REFERENCES manifests(repo, digest) ON DELETE CASCADE)
        WITHOUT ROWID;
     CREATE INDEX tags_by_digest ON tags(repo, digest);
     CREATE TABLE uploads (
        id TEXT PRIMARY KEY,
        repo TEXT NOT NULL,
        algorithm TEXT NOT NULL,
        started INTEGER NOT NULL);",
];

/// A stored manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ManifestRow {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    /// What the referrers API reports as `artifactType`.
    pub artifact_type: Option<String>,
    /// The `subject` digest, if any.
    pub subject: Option<Digest>,
    /// The manifest's annotations as a JSON object, if any.
    pub annotations: Option<String>,
}

/// The metadata database (one connection; callers serialise access).
#[derive(Debug)]
pub(crate) struct Db {
    conn: Connection,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64
}

fn digest_col(s: String) -> rusqlite::Result<Digest> {
    s.parse().map_err(|e: berth_types::InvalidDigest| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

impl Db {
    /// Opens (creating, migrating) the database at `path`.
    pub(crate) fn open(path: &Path) -> Result<Db, Error> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let mut db = Db { conn };
        db.migrate()?;
        Ok(db)
    }

    fn migrate(&mut self) -> Result<(), Error> {
        let has_meta: bool = self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta')",
            [],
            |r| r.get(0),
        )?;
        let version: u32 = if has_meta {
            self.conn
                .query_row(
                    "SELECT value FROM meta WHERE key = 'schema_version'",
                    [],
                    |r| r.get::<_, String>(0),
                )
                .optional()?
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        } else {
            0
        };
        if version > SCHEMA_VERSION {
            return Err(Error::Schema(format!(
                "schema version {version} is newer than this berth understands ({SCHEMA_VERSION})"
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [(i + 1).to_string()],
            )?;
            tx.commit()?;
        }
        Ok(())
    }

    /// The id of repository `name`, if it exists.
    pub(crate) fn repo_id(&self, name: &str) -> rusqlite::Result<Option<i64>> {
        self.conn
            .query_row("SELECT id FROM repositories WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
    }

    fn ensure_repo(&self, name: &str) -> rusqlite::Result<i64> {
        self.conn.execute(
            "INSERT INTO repositories (name, created) VALUES (?1, ?2)
             ON CONFLICT (name) DO NOTHING",
            params![name, now()],
        )?;
        self.conn
            .query_row("SELECT id FROM repositories WHERE name = ?1", [name], |r| {
                r.get(0)
            })
    }

    /// Removes the repository if nothing is left in it.
    fn prune_repo(&self, id: i64) -> rusqlite::Result<()> {
        self.conn.execute(
            "DELETE FROM repositories WHERE id = ?1
               AND NOT EXISTS (SELECT 1 FROM blob_links WHERE repo = ?1)
               AND NOT EXISTS (SELECT 1 FROM manifests WHERE repo = ?1)",
            [id],
        )?;
        Ok(())
    }

    /// Whether `digest` is linked into `repo` as a blob.
    pub(crate) fn blob_linked(&self, repo: &str, digest: &Digest) -> rusqlite::Result<bool> {
        self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM blob_links l JOIN repositories r ON r.id = l.repo
                            WHERE r.name = ?1 AND l.digest = ?2)",
            params![repo, digest.to_string()],
            |r| r.get(0),
        )
    }

    /// Whether `digest` may be read from `repo` through the blob endpoint:
    /// a linked blob or one of the repository's manifests.
    pub(crate) fn blob_visible(&self, repo: &str, digest: &Digest) -> rusqlite::Result<bool> {
        self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM blob_links l JOIN repositories r ON r.id = l.repo
                            WHERE r.name = ?1 AND l.digest = ?2)
                 OR EXISTS (SELECT 1 FROM manifests m JOIN repositories r ON r.id = m.repo
                            WHERE r.name = ?1 AND m.digest = ?2)",
            params![repo, digest.to_string()],
            |r| r.get(0),
        )
    }

    /// Whether any repository links `digest` as a blob.
    pub(crate) fn blob_linked_anywhere(&self, digest: &Digest) -> rusqlite::Result<bool> {
        self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM blob_links WHERE digest = ?1)",
            [digest.to_string()],
            |r| r.get(0),
        )
    }

    /// Links `digest` into `repo` (creating the repository).
    pub(crate) fn link_blob(&self, repo: &str, digest: &Digest, size: u64) -> rusqlite::Result<()> {
        let id = self.ensure_repo(repo)?;
        self.conn.execute(
            "INSERT INTO blob_links (repo, digest, size, linked) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (repo, digest) DO UPDATE SET size = excluded.size",
            params![id, digest.to_string(), size as i64, now()],
        )?;
        Ok(())
    }

    /// Removes the link of `digest` from `repo`; whether there was one.
    pub(crate) fn unlink_blob(&self, repo: &str, digest: &Digest) -> rusqlite::Result<bool> {
        let Some(id) = self.repo_id(repo)? else {
            return Ok(false);
        };
        let n = self.conn.execute(
            "DELETE FROM blob_links WHERE repo = ?1 AND digest = ?2",
            params![id, digest.to_string()],
        )?;
        self.prune_repo(id)?;
        Ok(n > 0)
    }

    /// Whether anything (a blob link or a manifest, in any repository)
    /// still needs the content `digest`.
    pub(crate) fn digest_referenced(&self, digest: &Digest) -> rusqlite::Result<bool> {
        self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM blob_links WHERE digest = ?1)
                 OR EXISTS (SELECT 1 FROM manifests WHERE digest = ?1)",
            [digest.to_string()],
            |r| r.get(0),
        )
    }

    /// Whether `repo` has the manifest `digest`.
    pub(crate) fn has_manifest(&self, repo: &str, digest: &Digest) -> rusqlite::Result<bool> {
        self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM manifests m JOIN repositories r ON r.id = m.repo
                            WHERE r.name = ?1 AND m.digest = ?2)",
            params![repo, digest.to_string()],
            |r| r.get(0),
        )
    }

    /// The manifest `digest` of `repo`.
    pub(crate) fn manifest(
        &self,
        repo: &str,
        digest: &Digest,
    ) -> rusqlite::Result<Option<ManifestRow>> {
        self.conn
            .query_row(
                "SELECT m.digest, m.media_type, m.size, m.artifact_type, m.subject, m.annotations
                 FROM manifests m JOIN repositories r ON r.id = m.repo
                 WHERE r.name = ?1 AND m.digest = ?2",
                params![repo, digest.to_string()],
                |r| {
                    Ok(ManifestRow {
                        digest: digest_col(r.get(0)?)?,
                        media_type: r.get(1)?,
                        size: r.get::<_, i64>(2)? as u64,
                        artifact_type: r.get(3)?,
                        subject: r.get::<_, Option<String>>(4)?.map(digest_col).transpose()?,
                        annotations: r.get(5)?,
                    })
                },
            )
            .optional()
    }

    /// The digest tag `tag` of `repo` points at.
    pub(crate) fn tag(&self, repo: &str, tag: &str) -> rusqlite::Result<Option<Digest>> {
        self.conn
            .query_row(
                "SELECT t.digest FROM tags t JOIN repositories r ON r.id = t.repo
                 WHERE r.name = ?1 AND t.name = ?2",
                params![repo, tag],
                |r| digest_col(r.get(0)?),
            )
            .optional()
    }

    /// Stores (or replaces) a manifest of `repo` and points `tags` at it.
    pub(crate) fn put_manifest(
        &mut self,
        repo: &str,
        row: &ManifestRow,
        tags: &[String],
    ) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        let t = now();
        tx.execute(
            "INSERT INTO repositories (name, created) VALUES (?1, ?2)
             ON CONFLICT (name) DO NOTHING",
            params![repo, t],
        )?;
        let id: i64 = tx.query_row("SELECT id FROM repositories WHERE name = ?1", [repo], |r| {
            r.get(0)
        })?;
        let digest = row.digest.to_string();
        tx.execute(
            "INSERT INTO manifests
                (repo, digest, media_type, size, artifact_type, subject, annotations, pushed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (repo, digest) DO UPDATE SET
                media_type = excluded.media_type, size = excluded.size,
                artifact_type = excluded.artifact_type, subject = excluded.subject,
                annotations = excluded.annotations",
            params![
                id,
                digest,
                row.media_type,
                row.size as i64,
                row.artifact_type,
                row.subject.as_ref().map(|d| d.to_string()),
                row.annotations,
                t
            ],
        )?;
        for tag in tags {
            tx.execute(
                "INSERT INTO tags (repo, name, digest, updated) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (repo, name) DO UPDATE SET
                    digest = excluded.digest, updated = excluded.updated",
                params![id, tag, digest, t],
            )?;
        }
        tx.commit()
    }

    /// Deletes manifest `digest` of `repo` and the tags that point at it;
    /// whether it existed.
    pub(crate) fn delete_manifest(&self, repo: &str, digest: &Digest) -> rusqlite::Result<bool> {
        let Some(id) = self.repo_id(repo)? else {
            return Ok(false);
        };
        let n = self.conn.execute(
            "DELETE FROM manifests WHERE repo = ?1 AND digest = ?2",
            params![id, digest.to_string()],
        )?;
        self.prune_repo(id)?;
        Ok(n > 0)
    }

    /// Deletes a tag; whether it existed.
    pub(crate) fn delete_tag(&self, repo: &str, tag: &str) -> rusqlite::Result<bool> {
        let Some(id) = self.repo_id(repo)? else {
            return Ok(false);
        };
        let n = self.conn.execute(
            "DELETE FROM tags WHERE repo = ?1 AND name = ?2",
            params![id, tag],
        )?;
        Ok(n > 0)
    }

    /// Up to `limit` tags of `repo` after `last`, in byte order; `None` if
    /// the repository does not exist.
    pub(crate) fn tags(
        &self,
        repo: &str,
        last: Option<&str>,
        limit: usize,
    ) -> rusqlite::Result<Option<Vec<String>>> {
        let Some(id) = self.repo_id(repo)? else {
            return Ok(None);
        };
        let mut stmt = self.conn.prepare_cached(
            "SELECT name FROM tags WHERE repo = ?1 AND name > ?2 ORDER BY name LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            params![id, last.unwrap_or(""), limit.min(i64::MAX as usize) as i64],
            |r| r.get(0),
        )?;
        rows.collect::<rusqlite::Result<Vec<String>>>().map(Some)
    }

    /// Up to `limit` repository names after `last`, in byte order.
    pub(crate) fn repositories(
        &self,
        last: Option<&str>,
        limit: usize,
    ) -> rusqlite::Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT name FROM repositories WHERE name > ?1 ORDER BY name LIMIT ?2",
        )?;
        let rows = stmt.query_map(
            params![last.unwrap_or(""), limit.min(i64::MAX as usize) as i64],
            |r| r.get(0),
        )?;
        rows.collect()
    }

    /// The manifests of `repo` whose subject is `subject`, optionally only
    /// those of `artifact_type`.
    pub(crate) fn referrers(
        &self,
        repo: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> rusqlite::Result<Vec<ManifestRow>> {
        let Some(id) = self.repo_id(repo)? else {
            return Ok(Vec::new());
        };
        let mut stmt = self.conn.prepare_cached(
            "SELECT digest, media_type, size, artifact_type, subject, annotations
             FROM manifests
             WHERE repo = ?1 AND subject = ?2 AND (?3 IS NULL OR artifact_type = ?3)
             ORDER BY pushed, digest",
        )?;
        let rows = stmt.query_map(params![id, subject.to_string(), artifact_type], |r| {
            Ok(ManifestRow {
                digest: digest_col(r.get(0)?)?,
                media_type: r.get(1)?,
                size: r.get::<_, i64>(2)? as u64,
                artifact_type: r.get(3)?,
                subject: r.get::<_, Option<String>>(4)?.map(digest_col).transpose()?,
                annotations: r.get(5)?,
            })
        })?;
        rows.collect()
    }

    /// Records an upload session.
    pub(crate) fn add_upload(&self, id: &str, repo: &str, algorithm: &str) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT INTO uploads (id, repo, algorithm, started) VALUES (?1, ?2, ?3, ?4)",
            params![id, repo, algorithm, now()],
        )?;
        Ok(())
    }

    /// Forgets an upload session.
    pub(crate) fn remove_upload(&self, id: &str) -> rusqlite::Result<()> {
        self.conn
            .execute("DELETE FROM uploads WHERE id = ?1", [id])?;
        Ok(())
    }

    /// Forgets every upload session, returning their ids.
    pub(crate) fn clear_uploads(&mut self) -> rusqlite::Result<Vec<String>> {
        let tx = self.conn.transaction()?;
        let ids = {
            let mut stmt = tx.prepare("SELECT id FROM uploads")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<Vec<String>>>()?
        };
        tx.execute("DELETE FROM uploads", [])?;
        tx.commit()?;
        Ok(ids)
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

    fn row(digest: Digest, subject: Option<Digest>, at: Option<&str>) -> ManifestRow {
        ManifestRow {
            digest,
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: 10,
            artifact_type: at.map(str::to_owned),
            subject,
            annotations: None,
        }
    }

    #[test]
    fn links_manifests_tags_and_pruning() {
        let t = tempfile::tempdir().unwrap();
        let db = Db::open(&t.path().join("r.db")).unwrap();
        // reopening migrates nothing and keeps data
        db.link_blob("a/b", &d('1'), 5).unwrap();
        drop(db);
        let mut db = Db::open(&t.path().join("r.db")).unwrap();
        assert!(db.blob_linked("a/b", &d('1')).unwrap());
        assert!(!db.blob_linked("a/c", &d('1')).unwrap());
        assert!(db.blob_linked_anywhere(&d('1')).unwrap());
        db.put_manifest("a/b", &row(d('2'), None, None), &["v1".into(), "v2".into()])
            .unwrap();
        db.put_manifest("a/b", &row(d('3'), Some(d('2')), Some("x/y")), &[])
            .unwrap();
        assert_eq!(db.tag("a/b", "v1").unwrap(), Some(d('2')));
        assert_eq!(
            db.tags("a/b", None, 10).unwrap().unwrap(),
            vec!["v1".to_string(), "v2".into()]
        );
        assert_eq!(
            db.tags("a/b", Some("v1"), 10).unwrap().unwrap(),
            vec!["v2".to_string()]
        );
        assert_eq!(db.tags("nope", None, 10).unwrap(), None);
        assert_eq!(db.referrers("a/b", &d('2'), None).unwrap().len(), 1);
        assert_eq!(db.referrers("a/b", &d('2'), Some("x/y")).unwrap().len(), 1);
        assert_eq!(db.referrers("a/b", &d('2'), Some("q")).unwrap().len(), 0);
        assert!(db.blob_visible("a/b", &d('2')).unwrap());
        // deleting a manifest drops its tags
        assert!(db.delete_manifest("a/b", &d('2')).unwrap());
        assert_eq!(db.tag("a/b", "v1").unwrap(), None);
        assert!(!db.delete_manifest("a/b", &d('2')).unwrap());
        assert!(db.delete_manifest("a/b", &d('3')).unwrap());
        assert_eq!(db.repositories(None, 10).unwrap(), vec!["a/b".to_string()]);
        // the last link gone, the repository goes too
        assert!(db.unlink_blob("a/b", &d('1')).unwrap());
        assert!(!db.digest_referenced(&d('1')).unwrap());
        assert!(db.repositories(None, 10).unwrap().is_empty());
        db.add_upload("u1", "a/b", "sha256").unwrap();
        assert_eq!(db.clear_uploads().unwrap(), vec!["u1".to_string()]);
        assert!(db.clear_uploads().unwrap().is_empty());
    }
}
