//! Snapshots: each layer unpacked once into `snapshots/<name>/fs`, shared
//! read-only by every image and container that has it (keyed by chain id).
//!
//! A layer is unpacked into a temporary directory (`snapshots/tmp-…`,
//! owned by the unpacking process), then moved to a name of its own; the
//! image database records it only when the operation that unpacked it
//! commits ([`crate::transaction`]). Directories under `snapshots/` that
//! the database does not know are removed by garbage collection, which no
//! operation runs alongside.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_types::Digest;
use berth_types::image::Descriptor;

use crate::db::SnapshotRecord;
use crate::error::{Context, Error, Result};
use crate::images::{ImageStore, now, set_mode};
use crate::unpack::{self, SpaceBudget};

/// A layer unpacked and moved into place, not yet recorded.
#[derive(Debug)]
pub(crate) struct Staged {
    /// The row to write.
    pub record: SnapshotRecord,
    /// `snapshots/<dir>`.
    pub path: PathBuf,
    /// The blob's uncompressed size.
    pub uncompressed: u64,
}

impl ImageStore {
    /// The directory of a snapshot (`snapshots/<dir>/fs`).
    pub(crate) fn snapshot_dir(&self, rec: &SnapshotRecord) -> PathBuf {
        self.root().join("snapshots").join(&rec.dir).join("fs")
    }

    /// Unpacks the layers `missing` (indexes into `layers`, whose diff ids
    /// and chain ids are given) into new snapshot directories, independent
    /// layers in parallel. `lower(j)` is the directory of an earlier layer
    /// this call does not unpack (hardlinks into lower layers are copied
    /// from there). Returns the staged snapshots in layer order; on error
    /// nothing it made is left.
    pub(crate) fn unpack_layers(
        &self,
        layers: &[Descriptor],
        diff_ids: &[Digest],
        chains: &[Digest],
        missing: &[usize],
        lower: &dyn Fn(usize) -> Option<PathBuf>,
    ) -> Result<Vec<Staged>> {
        let snaps = self.root().join("snapshots");
        // The layers share the free space of the snapshots' filesystem.
        let space = Arc::new(SpaceBudget::of(&snaps)?);
        let width = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .max(1);
        let mut results: Vec<(usize, PathBuf, Result<unpack::Unpacked>)> = Vec::new();
        for batch in missing.chunks(width) {
            let out = std::thread::scope(|s| {
                let handles: Vec<_> = batch
                    .iter()
                    .map(|&i| {
                        let tmp = snaps.join(format!(
                            "{}{}-{i}",
                            crate::owner::prefix(),
                            chains[i].short()
                        ));
                        let blob = layers[i].digest.clone();
                        let want = diff_ids[i].clone();
                        let opts = self.unpack_options();
                        let content = self.content();
                        let space = space.clone();
                        s.spawn(move || {
                            let r = (|| {
                                let _ = unpack::remove_tree(&tmp);
                                fs::create_dir_all(tmp.join("fs"))
                                    .ctx(|| format!("create {}", tmp.display()))?;
                                set_mode(&tmp, 0o700)?;
                                let f = content.open_blob(&blob)?;
                                let size = f.metadata().ctx(|| format!("stat blob {blob}"))?.len();
                                let budget = opts.budget(blob.to_string(), size, Some(space));
                                unpack::unpack(f, &tmp.join("fs"), Some(&want), opts, &budget)
                            })();
                            (i, tmp, r)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("unpack thread"))
                    .collect::<Vec<_>>()
            });
            results.extend(out);
        }
        // Any failure: remove everything this call made.
        if let Some(pos) = results.iter().position(|r| r.2.is_err()) {
            for (_, tmp, _) in &results {
                let _ = unpack::remove_tree(tmp);
            }
            let (i, _, r) = results.swap_remove(pos);
            return Err(match r {
                Err(Error::Integrity(m)) => Error::Integrity(format!("layer {}: {m}", diff_ids[i])),
                Err(other) => other,
                Ok(_) => Error::Invalid("unpacking failed".into()),
            });
        }
        // Move into place bottom-up: hardlinks into lower layers need them.
        results.sort_by_key(|r| r.0);
        let mut staged: Vec<Staged> = Vec::new();
        let mut pending = results.into_iter();
        while let Some((i, tmp, r)) = pending.next() {
            let one = (|| {
                let u = r?;
                if !u.lower_links.is_empty() {
                    let lowers: Vec<PathBuf> = (0..i)
                        .rev()
                        .filter_map(|j| {
                            staged
                                .iter()
                                .find(|s| s.record.chain_id == chains[j])
                                .map(|s| s.path.join("fs"))
                                .or_else(|| lower(j))
                        })
                        .collect();
                    unpack::resolve_lower_links(&tmp.join("fs"), &u.lower_links, &lowers)?;
                }
                let (dir, path) = move_into_place(&tmp, &snaps, &chains[i])?;
                Ok(Staged {
                    record: SnapshotRecord {
                        chain_id: chains[i].clone(),
                        parent: (i > 0).then(|| chains[i - 1].clone()),
                        diff_id: diff_ids[i].clone(),
                        dir,
                        size: u.size,
                        created: now(),
                    },
                    path,
                    uncompressed: u.uncompressed,
                })
            })();
            match one {
                Ok(s) => staged.push(s),
                Err(e) => {
                    let _ = unpack::remove_tree(&tmp);
                    for (_, t, _) in pending.by_ref() {
                        let _ = unpack::remove_tree(&t);
                    }
                    for s in &staged {
                        let _ = unpack::remove_tree(&s.path);
                    }
                    return Err(e);
                }
            }
        }
        Ok(staged)
    }

    /// Removes the temporary directories under `snapshots/` of processes
    /// that no longer run (see [`crate::owner`]).
    pub(crate) fn sweep_snapshot_tmp(&self) -> Result<Vec<PathBuf>> {
        let snaps = self.root().join("snapshots");
        let mut removed = Vec::new();
        for e in fs::read_dir(&snaps)
            .ctx(|| format!("list {}", snaps.display()))?
            .flatten()
        {
            if crate::owner::owner_gone(&e.file_name().to_string_lossy()) == Some(true) {
                unpack::remove_tree(&e.path()).ctx(|| format!("remove {}", e.path().display()))?;
                removed.push(e.path());
            }
        }
        Ok(removed)
    }

    /// Removes directories under `snapshots/` that no snapshot row names
    /// (left by an operation killed between moving a layer into place and
    /// committing). Only safe while no operation runs: garbage collection
    /// calls it under its exclusive lock, and so does the sweep when it
    /// can take it. Temporary directories are left to their owners.
    pub(crate) fn remove_unrecorded_snapshots(&self) -> Result<Vec<PathBuf>> {
        let known: std::collections::HashSet<String> =
            self.db().snapshots()?.into_iter().map(|s| s.dir).collect();
        let snaps = self.root().join("snapshots");
        let mut removed = Vec::new();
        for e in fs::read_dir(&snaps)
            .ctx(|| format!("list {}", snaps.display()))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == "empty" || name.starts_with("tmp-") || known.contains(&name) {
                continue;
            }
            unpack::remove_tree(&e.path()).ctx(|| format!("remove {}", e.path().display()))?;
            removed.push(e.path());
        }
        Ok(removed)
    }
}

/// Moves an unpacked layer to `snaps/<name>`: the chain id's first 12 hex
/// digits, more when another snapshot has those, never replacing anything.
fn move_into_place(tmp: &Path, snaps: &Path, chain: &Digest) -> Result<(String, PathBuf)> {
    let hex = chain.hex();
    let names = (12..=hex.len())
        .step_by(4)
        .filter_map(|n| hex.get(..n).map(str::to_owned))
        .chain((0..64).map(|k| format!("{hex}-{}-{k}", std::process::id())));
    for name in names {
        let dest = snaps.join(&name);
        match rustix::fs::renameat_with(
            rustix::fs::CWD,
            tmp,
            rustix::fs::CWD,
            &dest,
            rustix::fs::RenameFlags::NOREPLACE,
        ) {
            Ok(()) => return Ok((name, dest)),
            Err(rustix::io::Errno::EXIST) | Err(rustix::io::Errno::NOTEMPTY) => continue,
            Err(rustix::io::Errno::INVAL) if !dest.exists() => {
                // a filesystem without RENAME_NOREPLACE
                fs::rename(tmp, &dest).ctx(|| format!("commit snapshot {name}"))?;
                return Ok((name, dest));
            }
            Err(e) => {
                return Err(Error::Io {
                    context: format!("commit snapshot {name}"),
                    source: e.into(),
                });
            }
        }
    }
    Err(Error::Conflict(format!(
        "no free snapshot name for {chain} in {}",
        snaps.display()
    )))
}
