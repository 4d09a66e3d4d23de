//! The image store: content, metadata and snapshots behind one API.
//! Images are identified as Docker does (the config digest is the image
//! ID) and named by normalised references (`docker.io/library/busybox:latest`
//! tags, `repo@sha256:...` digests).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use berth_types::image::{self, ImageConfig, Manifest, ManifestDoc, MountSpec};
use berth_types::{Digest, Reference};

use crate::config::Settings;
use crate::db::{Db, ImageRecord, SnapshotRecord};
use crate::error::{Context, Error, Result};
use crate::store::{ContentStore, sha256};
use crate::unpack::{self, UnpackOptions};

/// An image as listed.
#[derive(Clone, Debug)]
pub struct ImageSummary {
    /// The row.
    pub record: ImageRecord,
    /// Tag names (`docker.io/library/busybox:latest`).
    pub tags: Vec<String>,
    /// Digest names (`docker.io/library/busybox@sha256:...`).
    pub digests: Vec<String>,
}

/// What `remove` did, in Docker's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Removed {
    /// A name was removed.
    Untagged(String),
    /// An image was deleted.
    Deleted(Digest),
}

/// What a garbage collection freed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Blobs deleted.
    pub blobs: Vec<Digest>,
    /// Snapshots deleted.
    pub snapshots: Vec<Digest>,
    /// Bytes freed.
    pub bytes: u64,
}

/// A hold on garbage collection (see [`ImageStore::lease`]).
#[derive(Debug)]
pub struct Lease {
    _file: fs::File,
}

/// The store.
#[derive(Debug)]
pub struct ImageStore {
    root: PathBuf,
    content: ContentStore,
    db: Mutex<Db>,
    opts: UnpackOptions,
}

/// The current time in RFC 3339.
pub fn now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    berth_types::time::format_rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

/// The chain ids of a stack of layers.
pub(crate) fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    image::chain_ids(diff_ids, |b| sha256(b).hex().to_owned())
}

impl ImageStore {
    /// Opens the store under berth's root (`content/`, `snapshots/`,
    /// `images.db`), with the layer limits of berth's config file
    /// ([`crate::config`]). The root and snapshot directories are 0700:
    /// nobody but root may reach setuid files inside images
    /// (CVE-2021-41091).
    pub fn open(root: &Path) -> Result<ImageStore> {
        ImageStore::open_with(root, Settings::load()?.unpack)
    }

    /// Opens the store with these layer limits.
    pub fn open_with(root: &Path, opts: UnpackOptions) -> Result<ImageStore> {
        fs::create_dir_all(root).ctx(|| format!("create {}", root.display()))?;
        set_mode(root, 0o711)?;
        let content = ContentStore::open(&root.join("content"))?;
        set_mode(&root.join("content"), 0o700)?;
        let snaps = root.join("snapshots");
        fs::create_dir_all(&snaps).ctx(|| format!("create {}", snaps.display()))?;
        set_mode(&snaps, 0o700)?;
        let db = Db::open(&root.join("images.db"))?;
        let store = ImageStore {
            root: root.to_path_buf(),
            content,
            db: Mutex::new(db),
            opts,
        };
        if let Err(e) = store.sweep() {
            tracing::warn!(
                "sweeping what killed operations left in {}: {e}",
                root.display()
            );
        }
        Ok(store)
    }

    /// Removes what killed operations left: files in `content/ingest/`
    /// and `snapshots/tmp-…` directories whose owner no longer runs (those
    /// of live processes stay: another berth may be pulling into this root
    /// right now) and, when no operation is adding content, snapshot
    /// directories no row names. Blobs a killed operation committed stay
    /// as unreferenced content until `image prune` / gc. Runs whenever a
    /// store opens.
    pub fn sweep(&self) -> Result<()> {
        let files = self.content.sweep_ingest()?;
        let dirs = self.sweep_snapshot_tmp()?;
        let unrecorded = match self.try_lock_exclusive()? {
            Some(_exclusive) => self.remove_unrecorded_snapshots()?,
            None => Vec::new(),
        };
        if files > 0 || !dirs.is_empty() || !unrecorded.is_empty() {
            tracing::info!(
                "removed {files} partial downloads and {} partial layers of killed operations",
                dirs.len() + unrecorded.len()
            );
        }
        Ok(())
    }

    /// The layer limits.
    pub fn unpack_options(&self) -> &UnpackOptions {
        &self.opts
    }

    /// The content store.
    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    /// The metadata database.
    pub fn db(&self) -> MutexGuard<'_, Db> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// berth's root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    // ------------------------------------------------------------ lookup

    /// Finds an image by name (`busybox`, `busybox:1`, `repo@sha256:..`),
    /// full id (`sha256:...`) or unique id prefix (`abd3`, `sha256:abd3`).
    pub fn resolve(&self, what: &str) -> Result<ImageRecord> {
        let db = self.db();
        let hex = what.strip_prefix("sha256:").unwrap_or(what);
        if hex.len() >= 4
            && hex.len() <= 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            let found = db.images_with_prefix(hex)?;
            if found.len() == 1 {
                return db
                    .image(&found[0])?
                    .ok_or_else(|| Error::NotFound(format!("No such image: {what}")));
            }
            if found.len() > 1 && what.starts_with("sha256:") {
                return Err(Error::Invalid(format!(
                    "image id prefix {what} is ambiguous"
                )));
            }
        }
        let r = Reference::parse(what)
            .map_err(|_| Error::NotFound(format!("No such image: {what}")))?;
        let name = r.to_string();
        let id = match db.resolve_name(&name)? {
            Some(id) => Some(id),
            None => match r.digest() {
                // repo@digest of a manifest we hold under another name
                Some(d) => db
                    .images()?
                    .into_iter()
                    .find(|i| i.manifest == *d || i.index_digest.as_ref() == Some(d))
                    .map(|i| i.id),
                None => None,
            },
        };
        match id {
            Some(id) => db
                .image(&id)?
                .ok_or_else(|| Error::NotFound(format!("No such image: {what}"))),
            None => Err(Error::NotFound(format!("No such image: {}", r.familiar()))),
        }
    }

    /// Every image with its names.
    pub fn list(&self) -> Result<Vec<ImageSummary>> {
        let db = self.db();
        let mut out = Vec::new();
        for record in db.images()? {
            let mut tags = Vec::new();
            let mut digests = Vec::new();
            for (name, kind) in db.names_of(&record.id)? {
                if kind == "tag" {
                    tags.push(name)
                } else {
                    digests.push(name)
                }
            }
            out.push(ImageSummary {
                record,
                tags,
                digests,
            });
        }
        Ok(out)
    }

    /// Names of one image.
    pub fn names(&self, id: &Digest) -> Result<Vec<(String, String)>> {
        self.db().names_of(id)
    }

    /// The manifest of an image.
    pub fn manifest(&self, rec: &ImageRecord) -> Result<Manifest> {
        let bytes = self.content.read(&rec.manifest, image::MAX_MANIFEST_SIZE)?;
        match image::parse_manifest(&bytes, Some(&rec.manifest_media_type))
            .map_err(|e| Error::Invalid(e.to_string()))?
        {
            ManifestDoc::Manifest(m) => Ok(m),
            ManifestDoc::Index(_) => Err(Error::Invalid(format!(
                "{} is an index, not a manifest",
                rec.manifest
            ))),
        }
    }

    /// The configuration of an image.
    pub fn config(&self, id: &Digest) -> Result<ImageConfig> {
        let bytes = self.content.read(id, 16 << 20)?;
        image::parse_config(&bytes).map_err(Error::Invalid)
    }

    // ------------------------------------------------------------ adding

    /// Registers an image whose manifest (and config and layer blobs) are
    /// in the content store, unpacking its layers, and gives it `names`:
    /// one [`crate::transaction::Transaction`].
    pub fn add(
        &self,
        manifest: &Digest,
        index: Option<&Digest>,
        names: &[Reference],
    ) -> Result<ImageRecord> {
        let mut tx = self.begin()?;
        let rec = tx.stage(manifest, index, names)?;
        tx.commit()?;
        Ok(rec)
    }

    fn known_size(&self, diff_ids: &[Digest]) -> u64 {
        let db = self.db();
        chain_ids(diff_ids)
            .iter()
            .filter_map(|c| db.snapshot(c).ok().flatten())
            .map(|s| s.size)
            .fold(0u64, u64::saturating_add)
    }

    /// Gives an image another name (`docker tag`).
    pub fn tag(&self, source: &str, target: &Reference) -> Result<()> {
        if target.digest().is_some() {
            return Err(Error::Invalid(
                "refusing to create a tag with a digest reference".into(),
            ));
        }
        let rec = self.resolve(source)?;
        self.db().tx(|tx| {
            Db::set_name(tx, &target.to_string(), &rec.id, "tag")?;
            Ok(())
        })
    }

    /// Removes a name or an image, as `docker rmi` does. `in_use` says
    /// whether a container uses an image.
    pub fn remove(
        &self,
        what: &str,
        force: bool,
        in_use: &dyn Fn(&Digest) -> bool,
    ) -> Result<Vec<Removed>> {
        let rec = self.resolve(what)?;
        let by_name = {
            let hex = what.strip_prefix("sha256:").unwrap_or(what);
            !(rec.id.hex().starts_with(hex) && hex.len() >= 4)
        };
        let names = self.names(&rec.id)?;
        let mut out = Vec::new();
        let familiar = |n: &str| {
            Reference::parse(n)
                .map(|r| r.familiar())
                .unwrap_or_else(|_| n.to_owned())
        };
        if by_name {
            let name = Reference::parse(what)
                .map_err(|e| Error::Invalid(e.to_string()))?
                .to_string();
            let name = if names.iter().any(|(n, _)| *n == name) {
                name
            } else {
                // repo@digest of a held manifest: remove the whole image
                return self.remove(&rec.id.to_string(), force, in_use);
            };
            let tags_left = names
                .iter()
                .filter(|(n, k)| *n != name && k == "tag")
                .count();
            if tags_left == 0 && in_use(&rec.id) && !force {
                return Err(Error::Conflict(format!(
                    "conflict: unable to remove repository reference \"{}\" (must force) - container is using its referenced image {}",
                    familiar(&name),
                    rec.id.short()
                )));
            }
            self.db().tx(|tx| Db::remove_name(tx, &name).map(drop))?;
            out.push(Removed::Untagged(familiar(&name)));
            if tags_left == 0 && !in_use(&rec.id) {
                // digest names go with the last tag
                self.db().tx(|tx| {
                    for (n, _) in &names {
                        if *n != name {
                            Db::remove_name(tx, n)?;
                        }
                    }
                    Db::delete_image(tx, &rec.id)
                })?;
                for (n, _) in names.iter().filter(|(n, _)| *n != name) {
                    out.push(Removed::Untagged(familiar(n)));
                }
                out.push(Removed::Deleted(rec.id.clone()));
            }
            return Ok(out);
        }
        let tags = names.iter().filter(|(_, k)| k == "tag").count();
        if tags > 1 && !force {
            return Err(Error::Conflict(format!(
                "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                rec.id.short()
            )));
        }
        if in_use(&rec.id) {
            return Err(Error::Conflict(format!(
                "conflict: unable to delete {} (cannot be forced) - image is being used by a container",
                rec.id.short()
            )));
        }
        self.db().tx(|tx| {
            for (n, _) in &names {
                Db::remove_name(tx, n)?;
            }
            Db::delete_image(tx, &rec.id)
        })?;
        for (n, _) in &names {
            out.push(Removed::Untagged(familiar(n)));
        }
        out.push(Removed::Deleted(rec.id));
        Ok(out)
    }

    // ------------------------------------------------------------ snapshots

    /// Makes sure every layer of the image is unpacked (independent layers
    /// in parallel) and returns the layer directories, base first.
    pub fn prepare(&self, id: &Digest) -> Result<Vec<PathBuf>> {
        let rec = self
            .db()
            .image(id)?
            .ok_or_else(|| Error::NotFound(format!("No such image: {id}")))?;
        let chains = chain_ids(&self.config(id)?.rootfs.diff_ids);
        let complete = {
            let db = self.db();
            chains
                .iter()
                .all(|c| db.snapshot(c).ok().flatten().is_some())
        };
        if !complete {
            // an image recorded before its layers were (older berth), or
            // whose snapshots went: unpack what is missing
            let m = self.manifest(&rec)?;
            let config = self.config(id)?;
            let mut tx = self.begin()?;
            tx.stage_layers(&m, &config)?;
            tx.commit()?;
            let size = self.known_size(&config.rootfs.diff_ids);
            self.db().tx(|tx| {
                tx.execute(
                    "UPDATE images SET size=?1 WHERE id=?2",
                    rusqlite::params![size.min(i64::MAX as u64) as i64, id.to_string()],
                )?;
                Ok(())
            })?;
        }
        let db = self.db();
        chains
            .iter()
            .map(|c| {
                db.snapshot(c)?
                    .map(|s| self.snapshot_dir(&s))
                    .ok_or_else(|| Error::NotFound(format!("snapshot {c} vanished")))
            })
            .collect()
    }

    /// The mount that makes a container's root filesystem: the image's
    /// layers as read-only lower directories under the container's own
    /// `upper` and `work` directories (copy-on-write).
    pub fn rootfs_mount(&self, id: &Digest, upper: &Path, work: &Path) -> Result<MountSpec> {
        let layers = self.prepare(id)?;
        let lower: Vec<String> = if layers.is_empty() {
            // an image without layers: an empty lower directory
            let empty = self.root.join("snapshots/empty");
            fs::create_dir_all(&empty).ctx(|| "create the empty layer")?;
            vec![empty.display().to_string()]
        } else {
            layers
                .iter()
                .rev()
                .map(|p| p.display().to_string())
                .collect()
        };
        Ok(MountSpec {
            fstype: "overlay".into(),
            source: "overlay".into(),
            options: vec![
                format!("lowerdir={}", lower.join(":")),
                format!("upperdir={}", upper.display()),
                format!("workdir={}", work.display()),
                "index=off".into(),
            ],
        })
    }

    /// Reads a small file from an image's filesystem (top layer first,
    /// honouring whiteouts), e.g. `/etc/passwd` to resolve a user name.
    pub fn read_file(&self, id: &Digest, path: &str, max: usize) -> Result<Option<Vec<u8>>> {
        let layers = self.prepare(id)?;
        let rel = unpack::normalize(path.as_bytes())
            .ok_or_else(|| Error::Invalid(format!("bad path {path}")))?;
        for dir in layers.iter().rev() {
            let root = rustix::fs::open(
                dir,
                rustix::fs::OFlags::PATH
                    | rustix::fs::OFlags::DIRECTORY
                    | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .ctx(|| format!("open {}", dir.display()))?;
            match berth_sys::paths::open_flags(
                std::os::fd::AsFd::as_fd(&root),
                &rel,
                rustix::fs::OFlags::RDONLY,
            ) {
                Ok(fd) => {
                    let st = rustix::fs::fstat(&fd).ctx(|| "stat")?;
                    if rustix::fs::FileType::from_raw_mode(st.st_mode)
                        == rustix::fs::FileType::CharacterDevice
                        && st.st_rdev == 0
                    {
                        return Ok(None);
                    }
                    let mut buf = Vec::new();
                    std::io::Read::read_to_end(
                        &mut std::io::Read::take(fs::File::from(fd), max as u64),
                        &mut buf,
                    )
                    .ctx(|| format!("read {path}"))?;
                    return Ok(Some(buf));
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(_) => continue,
            }
        }
        Ok(None)
    }

    // ------------------------------------------------------------ gc

    /// Removes images without names that no container uses (`dangling`
    /// only), or every image no container uses (`all`).
    pub fn prune(
        &self,
        all: bool,
        in_use: &dyn Fn(&Digest) -> bool,
    ) -> Result<(Vec<Removed>, GcReport)> {
        let mut removed = Vec::new();
        for s in self.list()? {
            let dangling = s.tags.is_empty();
            if (all || dangling) && !in_use(&s.record.id) {
                removed.extend(self.remove(&s.record.id.to_string(), true, in_use)?);
            }
        }
        let gc = self.gc(in_use)?;
        Ok((removed, gc))
    }

    /// Deletes blobs and snapshots no image (or container) references,
    /// and snapshot directories the database does not know.
    pub fn gc(&self, in_use: &dyn Fn(&Digest) -> bool) -> Result<GcReport> {
        // no pull, load or import is between writing blobs and naming them
        let _exclusive = self.lock(true)?;
        let (keep_blobs, keep_chains) = self.referenced()?;
        let _ = in_use;
        let mut report = GcReport::default();
        // Snapshots first (they depend on nothing else).
        let snaps = self.db().snapshots()?;
        let by_chain: BTreeMap<Digest, SnapshotRecord> =
            snaps.into_iter().map(|s| (s.chain_id.clone(), s)).collect();
        for (chain, s) in &by_chain {
            if !keep_chains.contains(chain) {
                let dir = self.root.join("snapshots").join(&s.dir);
                self.db().delete_snapshot(chain)?;
                unpack::remove_tree(&dir).ctx(|| format!("remove {}", dir.display()))?;
                report.bytes = report.bytes.saturating_add(s.size);
                report.snapshots.push(chain.clone());
            }
        }
        for dir in self.remove_unrecorded_snapshots()? {
            tracing::info!("removed {}, which no snapshot row names", dir.display());
        }
        for d in self.content.list()? {
            if keep_blobs.contains(&d) {
                continue;
            }
            report.bytes = report
                .bytes
                .saturating_add(self.content.size(&d).unwrap_or(0));
            self.content.delete(&d)?;
            self.db().delete_layer(&d)?;
            report.blobs.push(d);
        }
        self.content.sweep_ingest()?;
        self.sweep_snapshot_tmp()?;
        let _ = self
            .content
            .clean_ingest(std::time::Duration::from_secs(24 * 3600));
        Ok(report)
    }

    /// The blobs and chain ids the recorded images use.
    fn referenced(&self) -> Result<(HashSet<Digest>, HashSet<Digest>)> {
        let mut blobs: HashSet<Digest> = HashSet::new();
        let mut chains: HashSet<Digest> = HashSet::new();
        for rec in self.db().images()? {
            blobs.insert(rec.manifest.clone());
            blobs.insert(rec.id.clone());
            if let Some(i) = &rec.index_digest {
                blobs.insert(i.clone());
            }
            if let Ok(m) = self.manifest(&rec) {
                blobs.extend(m.layers.iter().map(|l| l.digest.clone()));
            }
            if let Ok(c) = self.config(&rec.id) {
                chains.extend(chain_ids(&c.rootfs.diff_ids));
            }
        }
        Ok((blobs, chains))
    }

    /// Deletes blobs a failed operation added that no image references,
    /// if no other operation is adding content right now (they could be
    /// about to reference them); otherwise leaves them to gc.
    pub(crate) fn forget_blobs(&self, blobs: &[Digest]) -> Result<()> {
        let Some(_exclusive) = self.try_lock_exclusive()? else {
            tracing::debug!(
                "another operation is adding content: {} blobs stay for gc",
                blobs.len()
            );
            return Ok(());
        };
        let (keep, _) = self.referenced()?;
        for d in blobs.iter().filter(|d| !keep.contains(d)) {
            self.content.delete(d)?;
        }
        Ok(())
    }

    /// Holds off garbage collection while blobs are written but not yet
    /// referenced by an image (pulls, loads, imports); dropped when done.
    pub fn lease(&self) -> Result<Lease> {
        self.lock(false)
    }

    fn lock_file(&self) -> Result<fs::File> {
        let p = self.root.join("content/gc.lock");
        fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .ctx(|| format!("open {}", p.display()))
    }

    fn lock(&self, exclusive: bool) -> Result<Lease> {
        let f = self.lock_file()?;
        let op = if exclusive {
            rustix::fs::FlockOperation::LockExclusive
        } else {
            rustix::fs::FlockOperation::LockShared
        };
        rustix::fs::flock(&f, op).ctx(|| "lock content/gc.lock")?;
        Ok(Lease { _file: f })
    }

    /// gc's exclusive lock, if nobody holds the lock now.
    fn try_lock_exclusive(&self) -> Result<Option<Lease>> {
        let f = self.lock_file()?;
        match rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(Lease { _file: f })),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(e).ctx(|| "lock content/gc.lock"),
        }
    }

    /// Every chain id an image needs (for containers that keep snapshots).
    pub fn chain_ids_of(&self, id: &Digest) -> Result<BTreeSet<Digest>> {
        Ok(chain_ids(&self.config(id)?.rootfs.diff_ids)
            .into_iter()
            .collect())
    }

    /// Disk used: (blobs, snapshots).
    pub fn disk_usage(&self) -> Result<(u64, u64)> {
        let blobs: u64 = self
            .content
            .list()?
            .iter()
            .filter_map(|d| self.content.size(d))
            .fold(0u64, u64::saturating_add);
        let snaps: u64 = self
            .db()
            .snapshots()?
            .iter()
            .map(|s| s.size)
            .fold(0u64, u64::saturating_add);
        Ok((blobs, snaps))
    }
}

pub(crate) fn set_mode(p: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .ctx(|| format!("chmod {}", p.display()))
}
