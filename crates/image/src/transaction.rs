//! Adding images as one transaction (pull, load, import, commit): blobs go
//! into the content store as they arrive and layers are unpacked into
//! snapshot directories, but nothing is recorded in the image database
//! until [`Transaction::commit`], which writes every row (layers,
//! snapshots, images, names) in one SQLite transaction, after the unpacked
//! files are durable.
//!
//! A transaction dropped without committing (an error anywhere, a panic)
//! removes the snapshot directories it made and the blobs it added that
//! no image references. The blobs go only when no other operation is
//! adding content at that moment (a non-blocking try of gc's exclusive
//! lock); otherwise they stay as unreferenced content for the next
//! `image prune` / gc. Either way the database, `images -a` and every
//! name are exactly as before.

use std::path::PathBuf;
use std::sync::Arc;

use berth_types::image::{self, Descriptor, ImageConfig, Manifest, ManifestDoc, media};
use berth_types::{Digest, Reference};

use crate::db::{Db, ImageRecord};
use crate::error::{Error, Result};
use crate::images::{ImageStore, Lease, chain_ids, now};
use crate::snapshots::Staged;
use crate::store::{ContentStore, Journal};
use crate::unpack;

/// An operation adding images; see the module docs.
#[derive(Debug)]
pub struct Transaction<'a> {
    store: &'a ImageStore,
    lease: Option<Lease>,
    journal: Arc<Journal>,
    content: ContentStore,
    snapshots: Vec<Staged>,
    layers: Vec<(Digest, Digest, String, Option<u64>)>,
    images: Vec<(ImageRecord, Vec<Reference>)>,
    committed: bool,
}

impl ImageStore {
    /// Starts adding images (holding off garbage collection until the
    /// transaction ends).
    pub fn begin(&self) -> Result<Transaction<'_>> {
        let lease = self.lease()?;
        let journal = Arc::new(Journal::default());
        Ok(Transaction {
            store: self,
            lease: Some(lease),
            content: self.content().journaled(journal.clone()),
            journal,
            snapshots: Vec::new(),
            layers: Vec::new(),
            images: Vec::new(),
            committed: false,
        })
    }
}

impl<'a> Transaction<'a> {
    /// The content store, recording what this transaction adds: every
    /// blob of the operation must be written through it.
    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    /// The store.
    pub fn store(&self) -> &'a ImageStore {
        self.store
    }

    /// Checks the image whose manifest (and config and layer blobs) are in
    /// the content store, unpacks its layers, and stages it with `names`
    /// (recorded at commit). Returns the record it will have.
    pub fn stage(
        &mut self,
        manifest: &Digest,
        index: Option<&Digest>,
        names: &[Reference],
    ) -> Result<ImageRecord> {
        let bytes = self.content.read(manifest, image::MAX_MANIFEST_SIZE)?;
        let m =
            match image::parse_manifest(&bytes, None).map_err(|e| Error::Invalid(e.to_string()))? {
                ManifestDoc::Manifest(m) => m,
                ManifestDoc::Index(_) => {
                    return Err(Error::Invalid(
                        "expected an image manifest, found an index".into(),
                    ));
                }
            };
        let config = self.store.config(&m.config.digest)?;
        self.stage_layers(&m, &config)?;
        let platform = match &config.variant {
            Some(v) => format!("{}/{}/{v}", config.os, config.architecture),
            None => format!("{}/{}", config.os, config.architecture),
        };
        let record = ImageRecord {
            id: m.config.digest.clone(),
            manifest: manifest.clone(),
            manifest_media_type: m
                .media_type
                .clone()
                .unwrap_or_else(|| media::OCI_MANIFEST.to_owned()),
            index_digest: index.cloned(),
            platform,
            created: config.created.clone(),
            size: self.size_of(&config.rootfs.diff_ids),
            added: now(),
            parent: None,
        };
        self.images.push((record.clone(), names.to_vec()));
        Ok(record)
    }

    /// Stores a config and a manifest over layer blobs in the store and
    /// stages the image (import, commit), recording `parent` as the image
    /// it was made from.
    pub fn stage_new(
        &mut self,
        cfg: &ImageConfig,
        layers: Vec<Descriptor>,
        names: &[Reference],
        parent: Option<&Digest>,
    ) -> Result<ImageRecord> {
        let cbytes = serde_json::to_vec(cfg).map_err(|e| Error::Invalid(e.to_string()))?;
        let cd = self.content.put(&cbytes, None)?;
        let m = Manifest {
            schema_version: 2,
            media_type: Some(media::DOCKER_MANIFEST.into()),
            artifact_type: None,
            config: Descriptor::new(media::DOCKER_CONFIG, cd, cbytes.len() as u64),
            layers,
            subject: None,
            annotations: Default::default(),
        };
        let mbytes = serde_json::to_vec(&m).map_err(|e| Error::Invalid(e.to_string()))?;
        let md = self.content.put(&mbytes, None)?;
        let mut rec = self.stage(&md, None, names)?;
        rec.parent = parent.cloned();
        if let Some((staged, _)) = self.images.last_mut() {
            staged.parent = rec.parent.clone();
        }
        Ok(rec)
    }

    /// Checks an image's layers against its config and unpacks those no
    /// snapshot (recorded, or staged here) holds yet.
    pub(crate) fn stage_layers(&mut self, m: &Manifest, config: &ImageConfig) -> Result<()> {
        let diff_ids = &config.rootfs.diff_ids;
        if diff_ids.len() != m.layers.len() {
            return Err(Error::Invalid(format!(
                "the image config lists {} layers, the manifest {}",
                diff_ids.len(),
                m.layers.len()
            )));
        }
        for l in &m.layers {
            if !media::is_layer(&l.media_type) {
                return Err(Error::Unsupported(format!(
                    "layer media type {}",
                    l.media_type
                )));
            }
            if !self.content.has(&l.digest) {
                return Err(Error::NotFound(format!(
                    "layer {} is missing from the content store",
                    l.digest
                )));
            }
        }
        let chains = chain_ids(diff_ids);
        let recorded = |c: &Digest| self.store.db().snapshot(c).ok().flatten();
        let missing: Vec<usize> = (0..chains.len())
            .filter(|&i| self.staged(&chains[i]).is_none() && recorded(&chains[i]).is_none())
            .collect();
        let staged = self
            .store
            .unpack_layers(&m.layers, diff_ids, &chains, &missing, &|j| {
                self.staged(&chains[j])
                    .map(|s| s.path.join("fs"))
                    .or_else(|| recorded(&chains[j]).map(|r| self.store.snapshot_dir(&r)))
            })?;
        for (i, (l, diff)) in m.layers.iter().zip(diff_ids).enumerate() {
            let size = match staged.iter().find(|s| s.record.chain_id == chains[i]) {
                Some(s) => Some(s.uncompressed),
                // A snapshot of this diff id exists: the blob must still be
                // shown to hold it, unless it already was.
                None => self.verify_layer(&l.digest, diff)?,
            };
            self.layers
                .push((l.digest.clone(), diff.clone(), l.media_type.clone(), size));
        }
        self.snapshots.extend(staged);
        Ok(())
    }

    /// Checks that layer blob `blob` uncompresses to `diff` (decoding it
    /// unless the database or this transaction already knows it does).
    /// Returns the uncompressed size when it had to decode.
    fn verify_layer(&self, blob: &Digest, diff: &Digest) -> Result<Option<u64>> {
        if self
            .layers
            .iter()
            .any(|(b, d, _, _)| b == blob && d == diff)
        {
            return Ok(None);
        }
        match self.store.db().layer(blob)? {
            Some((known, _)) if known == *diff => return Ok(None),
            Some((known, _)) => {
                return Err(Error::Integrity(format!(
                    "layer {blob} holds {known}, the image config says {diff}"
                )));
            }
            None => {}
        }
        let f = self.content.open_blob(blob)?;
        let size = f
            .metadata()
            .map_err(|e| Error::Io {
                context: format!("stat blob {blob}"),
                source: e,
            })?
            .len();
        let budget = self
            .store
            .unpack_options()
            .budget(blob.to_string(), size, None);
        let never = std::sync::atomic::AtomicU64::new(u64::MAX);
        let (got, n) = unpack::decode_stream(f, |_| Ok(()), &budget, &never, u64::MAX)
            .map_err(|e| unpack::stream_error(e, &format!("layer {blob}")))?;
        if got != *diff {
            return Err(Error::Integrity(format!(
                "layer {blob}: layer diff id mismatch: expected {diff}, got {got}"
            )));
        }
        Ok(Some(n))
    }

    fn staged(&self, chain: &Digest) -> Option<&Staged> {
        self.snapshots.iter().find(|s| s.record.chain_id == *chain)
    }

    /// Bytes the layers of an image take (recorded and staged snapshots).
    fn size_of(&self, diff_ids: &[Digest]) -> u64 {
        let db = self.store.db();
        chain_ids(diff_ids)
            .iter()
            .filter_map(|c| match self.staged(c) {
                Some(s) => Some(s.record.size),
                None => db.snapshot(c).ok().flatten().map(|s| s.size),
            })
            .fold(0u64, u64::saturating_add)
    }

    /// Records everything staged, in one database transaction. Returns the
    /// images, in the order they were staged.
    pub fn commit(mut self) -> Result<Vec<ImageRecord>> {
        // the unpacked files are durable before a row points at them
        if let Some(s) = self.snapshots.first()
            && let Ok(f) = std::fs::File::open(&s.path)
        {
            let _ = rustix::fs::syncfs(&f);
        }
        let mut lost: Vec<PathBuf> = Vec::new();
        self.store.db().tx(|tx| {
            for (blob, diff, mt, size) in &self.layers {
                Db::put_layer(tx, blob, diff, mt, *size)?;
            }
            for s in &self.snapshots {
                if !Db::put_snapshot(tx, &s.record)? {
                    // another process recorded this layer first: keep theirs
                    lost.push(s.path.clone());
                }
            }
            for (rec, names) in &self.images {
                Db::put_image(tx, rec)?;
                for n in names {
                    let kind = if n.digest().is_some() && n.tag().is_none() {
                        "digest"
                    } else {
                        "tag"
                    };
                    Db::set_name(tx, &n.to_string(), &rec.id, kind)?;
                }
            }
            Ok(())
        })?;
        self.committed = true;
        for p in lost {
            let _ = unpack::remove_tree(&p);
        }
        self.lease = None;
        Ok(std::mem::take(&mut self.images)
            .into_iter()
            .map(|(r, _)| r)
            .collect())
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        for s in &self.snapshots {
            let _ = unpack::remove_tree(&s.path);
        }
        self.lease = None;
        let added = self.journal.take();
        if !added.is_empty()
            && let Err(e) = self.store.forget_blobs(&added)
        {
            tracing::warn!("removing the blobs of a failed operation: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::unpack::UnpackOptions;

    fn store(dir: &std::path::Path) -> ImageStore {
        ImageStore::open_with(
            dir,
            UnpackOptions {
                unprivileged: !rustix::process::geteuid().is_root(),
                ..UnpackOptions::default()
            },
        )
        .unwrap()
    }

    /// A tar with one file named `name` (any bytes: the tar crate's
    /// builder refuses `..`, a hostile layer does not).
    fn tar_with(name: &[u8]) -> Vec<u8> {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_size(3);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        let mut t = h.as_bytes().to_vec();
        t.extend(b"hi\n");
        t.extend([0u8; 509 + 1024]);
        t
    }

    #[test]
    fn a_failed_import_leaves_nothing_unless_another_operation_may_use_its_blobs() {
        let t = tempfile::tempdir().unwrap();
        let s = store(t.path());
        let name = Reference::parse("x:1").unwrap();
        let empty = s.db().dump().unwrap();
        let bad = tar_with(b"../../escape");
        let err = s
            .import(
                Cursor::new(bad.clone()),
                Default::default(),
                None,
                Some(&name),
            )
            .unwrap_err();
        assert!(err.to_string().contains("climbs out"), "{err}");
        assert_eq!(s.db().dump().unwrap(), empty);
        assert_eq!(
            s.content().list().unwrap(),
            vec![],
            "tarball, config, manifest gone"
        );
        assert_eq!(
            std::fs::read_dir(t.path().join("snapshots"))
                .unwrap()
                .count(),
            0
        );

        // another operation adding content right now may be about to use
        // the same blobs: they stay, unreferenced, for gc
        let other = s.begin().unwrap();
        s.import(Cursor::new(bad), Default::default(), None, Some(&name))
            .unwrap_err();
        assert_eq!(s.db().dump().unwrap(), empty);
        assert_eq!(s.content().list().unwrap().len(), 3);
        drop(other);
        let gc = s.gc(&|_| false).unwrap();
        assert_eq!(gc.blobs.len(), 3);
        assert_eq!(s.content().list().unwrap(), vec![]);

        // a good import records everything at once
        let id = s
            .import(
                Cursor::new(tar_with(b"hello")),
                Default::default(),
                None,
                Some(&name),
            )
            .unwrap();
        assert_eq!(s.resolve("x:1").unwrap().id, id);
        assert_eq!(s.db().snapshots().unwrap().len(), 1);
        assert!(s.prepare(&id).unwrap()[0].join("hello").is_file());
    }

    #[test]
    fn gc_removes_snapshot_directories_nothing_records() {
        let t = tempfile::tempdir().unwrap();
        let s = store(t.path());
        let id = s
            .import(
                Cursor::new(tar_with(b"hello")),
                Default::default(),
                None,
                None,
            )
            .unwrap();
        // a layer moved into place by an operation killed before commit
        let orphan = t.path().join("snapshots/0123456789ab");
        std::fs::create_dir_all(orphan.join("fs")).unwrap();
        s.gc(&|_| false).unwrap();
        assert!(!orphan.exists());
        assert!(s.prepare(&id).unwrap()[0].join("hello").is_file());
    }
}
