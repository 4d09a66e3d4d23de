//! Images as docker shows and changes them: the list with docker's
//! filters, an image's history, and the operations that add, name or
//! remove images (tag, rmi, prune, import, load, save, pull, push), each
//! reporting its events once, here, as dockerd does (`Type` image, the
//! image's labels and a `name` in the attributes). The CLI and the daemon
//! both come through here.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use berth_image::archive::Loaded;
use berth_image::images::GcReport;
use berth_image::registry::{Client, Progress, Pulled, Pushed};
use berth_image::{ImageSummary, Removed};
use berth_types::image::{ContainerConfig, Platform};
use berth_types::{Digest, Reference};

use crate::filter::{Filters, IMAGE_FILTERS, IMAGE_PRUNE_FILTERS, path_match};
use crate::run::{Engine, Result};

/// An image as `docker images` lists it.
#[derive(Clone, Debug)]
pub struct ListedImage {
    /// The row and its names (only those a `reference` filter matched).
    pub summary: ImageSummary,
    /// Its configuration's labels.
    pub labels: BTreeMap<String, String>,
}

/// One entry of `docker history`, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The image this step made, where one is known (the image itself and
    /// the parents it was committed from); `None` shows as `<missing>`.
    pub id: Option<Digest>,
    /// When (RFC 3339).
    pub created: Option<String>,
    /// The instruction.
    pub created_by: String,
    /// The comment.
    pub comment: String,
    /// Bytes the step's layer holds (0 for steps without one).
    pub size: u64,
    /// That image's tags, familiar (`busybox:latest`).
    pub tags: Vec<String>,
}

fn nanos(t: Option<&str>) -> i64 {
    t.and_then(crate::events::rfc3339_nanos).unwrap_or(0)
}

fn familiar(name: &str) -> String {
    Reference::parse(name)
        .map(|r| r.familiar())
        .unwrap_or_else(|_| name.to_owned())
}

/// Whether `name` (a stored, normalised name) matches a `reference`
/// pattern: its familiar form or its familiar repository (docker's
/// `FamiliarMatch`).
fn reference_matches(pattern: &str, name: &str) -> Result<bool> {
    let Ok(r) = Reference::parse(name) else {
        return Ok(false);
    };
    Ok(path_match(pattern, &r.familiar())? || path_match(pattern, &r.familiar_repository())?)
}

impl Engine {
    /// The labels of an image's configuration.
    fn image_labels(&self, id: &Digest) -> BTreeMap<String, String> {
        self.images
            .config(id)
            .ok()
            .and_then(|c| c.config)
            .map(|c| c.labels)
            .unwrap_or_default()
    }

    /// Records an image event: the image's labels and `name`.
    pub(crate) fn image_event(&self, action: &str, id: &Digest, name: &str) {
        self.image_event_as(action, &id.to_string(), id, name);
    }

    fn image_event_as(&self, action: &str, actor: &str, id: &Digest, name: &str) {
        let mut attrs = self.image_labels(id);
        attrs.insert("name".into(), name.to_owned());
        crate::events::emit(&self.root, "image", action, actor, attrs);
    }

    /// `docker images`: the images passing `f` (see [`IMAGE_FILTERS`]),
    /// newest first; images without names that other images were made
    /// from only with `all`. A `reference` filter narrows the names shown.
    pub fn list_images(&self, f: &Filters, all: bool) -> Result<Vec<ListedImage>> {
        f.check(IMAGE_FILTERS)?;
        let dangling = match f.get("dangling") {
            [] => None,
            v if v.iter().any(|x| x == "true") => Some(true),
            v if v.iter().any(|x| x == "false") => Some(false),
            _ => return Err(f.invalid_value("dangling")),
        };
        let created_of = |key: &str| -> Result<Vec<i64>> {
            f.get(key)
                .iter()
                .map(|v| Ok(nanos(self.images.resolve(v)?.created.as_deref())))
                .collect()
        };
        let before = created_of("before")?;
        let since = created_of("since")?;
        let patterns = f.get("reference");
        for p in patterns {
            path_match(p, "")?;
        }
        let summaries = self.images.list()?;
        let parents: BTreeSet<Digest> = summaries
            .iter()
            .filter_map(|s| s.record.parent.clone())
            .collect();
        let mut out = Vec::new();
        for mut s in summaries {
            let created = nanos(s.record.created.as_deref());
            if (!before.is_empty() && !before.iter().any(|b| created < *b))
                || (!since.is_empty() && !since.iter().any(|t| created > *t))
            {
                continue;
            }
            let labels = self.image_labels(&s.record.id);
            if !f.labels(&labels) {
                continue;
            }
            if !patterns.is_empty() {
                let keep = |names: &mut Vec<String>| -> Result<()> {
                    let mut kept = Vec::new();
                    for n in names.drain(..) {
                        let mut hit = false;
                        for p in patterns {
                            hit = hit || reference_matches(p, &n)?;
                        }
                        if hit {
                            kept.push(n);
                        }
                    }
                    *names = kept;
                    Ok(())
                };
                keep(&mut s.tags)?;
                keep(&mut s.digests)?;
                if s.tags.is_empty() && s.digests.is_empty() {
                    continue;
                }
            }
            if s.tags.is_empty() && s.digests.is_empty() {
                if dangling == Some(false) || (!all && parents.contains(&s.record.id)) {
                    continue;
                }
            } else if dangling == Some(true) && !s.tags.is_empty() {
                continue;
            }
            out.push(ListedImage { summary: s, labels });
        }
        out.sort_by(|a, b| {
            nanos(b.summary.record.created.as_deref())
                .cmp(&nanos(a.summary.record.created.as_deref()))
                .then_with(|| a.summary.record.id.cmp(&b.summary.record.id))
        });
        Ok(out)
    }

    /// `docker history`: one entry per step of the image's history, newest
    /// first, with the ids of the image and of the images it was committed
    /// from.
    pub fn image_history(&self, name: &str) -> Result<Vec<HistoryEntry>> {
        let rec = self.images.resolve(name)?;
        let cfg = self.images.config(&rec.id)?;
        // the layers' sizes need their snapshots
        let _ = self.images.prepare(&rec.id);
        let chains = berth_types::image::chain_ids(&cfg.rootfs.diff_ids, |b| {
            berth_image::store::sha256(b).hex().to_owned()
        });
        let mut layer = 0usize;
        let mut out = Vec::new();
        for h in &cfg.history {
            let size = if h.empty_layer {
                0
            } else {
                let s = chains
                    .get(layer)
                    .and_then(|c| self.images.db().snapshot(c).ok().flatten())
                    .map_or(0, |s| s.size);
                layer += 1;
                s
            };
            out.push(HistoryEntry {
                id: None,
                created: h.created.clone(),
                created_by: h.created_by.clone().unwrap_or_default(),
                comment: h.comment.clone().unwrap_or_default(),
                size,
                tags: Vec::new(),
            });
        }
        out.reverse();
        // the image, then the images it was made from, down the entries
        let mut id = Some(rec.id.clone());
        for e in out.iter_mut() {
            let Some(cur) = id.take() else { break };
            e.tags = self
                .images
                .names(&cur)?
                .into_iter()
                .filter(|(_, k)| k == "tag")
                .map(|(n, _)| familiar(&n))
                .collect();
            id = self.images.db().image(&cur)?.and_then(|r| r.parent);
            e.id = Some(cur);
        }
        Ok(out)
    }

    /// `docker tag`.
    pub fn tag_image(&self, source: &str, target: &Reference) -> Result<()> {
        let rec = self.images.resolve(source)?;
        self.images.tag(&rec.id.to_string(), target)?;
        self.image_event("tag", &rec.id, &target.familiar());
        Ok(())
    }

    /// `docker rmi`: an untag event per name removed (the digest names of
    /// a repository that lost its tag go silently, as dockerd's do, unless
    /// the image goes) and a delete event for the image.
    pub fn remove_image(&self, what: &str, force: bool) -> Result<Vec<Removed>> {
        let in_use = self.images_in_use();
        let id = self.images.resolve(what)?.id;
        let removed = self.images.remove(what, force, &|d| in_use.contains(d))?;
        self.removal_events(&id, &removed);
        Ok(removed)
    }

    fn removal_events(&self, id: &Digest, removed: &[Removed]) {
        let deleted = removed.iter().any(|r| matches!(r, Removed::Deleted(_)));
        for r in removed {
            match r {
                Removed::Untagged(n) if deleted || !n.contains('@') => {
                    self.image_event("untag", id, &id.to_string());
                }
                Removed::Untagged(_) => {}
                Removed::Deleted(d) => {
                    let attrs = BTreeMap::from([("name".to_owned(), d.to_string())]);
                    crate::events::emit(&self.root, "image", "delete", &d.to_string(), attrs);
                }
            }
        }
    }

    /// `docker image prune`: images no container uses that pass `f` (see
    /// [`IMAGE_PRUNE_FILTERS`]; `until` comes parsed, in nanoseconds):
    /// those without names, or with `dangling=false` all of them. Nothing
    /// is removed when a filter is refused.
    pub fn prune_images(
        &self,
        f: &Filters,
        until: Option<i64>,
    ) -> Result<(Vec<Removed>, GcReport)> {
        f.check(IMAGE_PRUNE_FILTERS)?;
        let dangling_only = match f.get("dangling") {
            [] => true,
            v if v.iter().any(|x| x == "false" || x == "0") => false,
            v if v.iter().any(|x| x == "true" || x == "1") => true,
            _ => return Err(f.invalid_value("dangling")),
        };
        let in_use = self.images_in_use();
        let mut removed = Vec::new();
        for s in self.images.list()? {
            let id = &s.record.id;
            if in_use.contains(id)
                || (dangling_only && !(s.tags.is_empty() && s.digests.is_empty()))
                || until.is_some_and(|u| nanos(s.record.created.as_deref()) > u)
                || !f.labels(&self.image_labels(id))
            {
                continue;
            }
            let r = self
                .images
                .remove(&id.to_string(), true, &|d| in_use.contains(d))?;
            self.removal_events(id, &r);
            removed.extend(r);
        }
        let gc = self.images.gc(&|d| in_use.contains(d))?;
        let attrs = BTreeMap::from([("reclaimed".to_owned(), gc.bytes.to_string())]);
        crate::events::emit(&self.root, "image", "prune", "", attrs);
        Ok((removed, gc))
    }

    /// `docker import`: `config` is what `--change` made of the image's
    /// configuration, `comment` the history's (`Imported from -` when
    /// none). A tag event for the name, then an import event.
    pub fn import_image(
        &self,
        input: impl Read,
        config: ContainerConfig,
        comment: Option<&str>,
        name: Option<&Reference>,
    ) -> Result<Digest> {
        let id = self.images.import(input, config, comment, name)?;
        if let Some(n) = name {
            self.image_event("tag", &id, &n.familiar());
        }
        self.image_event("import", &id, &id.to_string());
        Ok(id)
    }

    /// `docker load`: a load event per image.
    pub fn load_images(&self, input: impl Read) -> Result<Vec<Loaded>> {
        let loaded = self.images.load(input)?;
        self.load_events(&loaded);
        Ok(loaded)
    }

    /// `berth load` of an OCI layout directory: a load event per image.
    pub fn load_oci_dir(&self, dir: &Path) -> Result<Vec<Loaded>> {
        let loaded = self.images.load_oci_dir(dir)?;
        self.load_events(&loaded);
        Ok(loaded)
    }

    fn load_events(&self, loaded: &[Loaded]) {
        for l in loaded {
            self.image_event("load", &l.id, &l.id.to_string());
        }
    }

    /// `docker save` as a docker-archive: a save event per image once it
    /// is written.
    pub fn save_images(&self, names: &[String], out: impl Write) -> Result<()> {
        self.save_with(names, |store| store.save_docker(names, out))
    }

    /// `berth save --format oci-archive`: a save event per image once it
    /// is written.
    pub fn save_images_oci(&self, names: &[String], out: impl Write) -> Result<()> {
        self.save_with(names, |store| store.save_oci(names, out))
    }

    fn save_with(
        &self,
        names: &[String],
        write: impl FnOnce(&berth_image::ImageStore) -> berth_image::Result<()>,
    ) -> Result<()> {
        let mut ids = Vec::new();
        for n in names {
            let id = self.images.resolve(n)?.id;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        write(&self.images)?;
        for id in &ids {
            self.image_event("save", id, &id.to_string());
        }
        Ok(())
    }

    /// `docker pull`: a pull event (the reference as the actor, the
    /// repository as its name).
    pub fn pull_image(
        &self,
        client: &Client,
        r: &Reference,
        platform: &Platform,
        progress: Arc<dyn Progress>,
    ) -> Result<Pulled> {
        let pulled = self.images.pull(client, r, platform, progress)?;
        self.image_event_as(
            "pull",
            &r.familiar(),
            &pulled.record.id,
            &r.familiar_repository(),
        );
        Ok(pulled)
    }

    /// `docker push` of local image `source` as `target`: a push event.
    pub fn push_image(
        &self,
        client: &Client,
        source: &str,
        target: &Reference,
        progress: Arc<dyn Progress>,
    ) -> Result<Pushed> {
        let id = self.images.resolve(source)?.id;
        let pushed = self.images.push(client, source, target, progress)?;
        self.image_event_as(
            "push",
            &target.familiar(),
            &id,
            &target.familiar_repository(),
        );
        Ok(pushed)
    }
}

impl Engine {
    /// An image's filesystem, read-only, as a directory fd (the builder's
    /// `COPY --from`): its one layer's snapshot, or a detached overlay of
    /// its layers, which goes when the fd is closed (nothing to unmount,
    /// nothing to leak).
    pub fn image_root(&self, id: &Digest) -> Result<std::os::fd::OwnedFd> {
        use rustix::fs::{Mode, OFlags};
        let layers = self.images.prepare(id)?;
        let open = |p: &Path| {
            rustix::fs::open(
                p,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| crate::Error::Io(format!("open {}", p.display()), e.into()))
        };
        match layers.as_slice() {
            [] => {
                let empty = self.root.join("snapshots/empty");
                std::fs::create_dir_all(&empty)
                    .map_err(|e| crate::Error::Io("create the empty layer".into(), e))?;
                open(&empty)
            }
            [one] => open(one),
            many => {
                let lower: Vec<String> =
                    many.iter().rev().map(|p| p.display().to_string()).collect();
                let spec = berth_types::image::MountSpec {
                    fstype: "overlay".into(),
                    source: "overlay".into(),
                    options: vec![format!("lowerdir={}", lower.join(":")), "index=off".into()],
                };
                Ok(berth_runtime::rootfs::open_detached(&spec)?)
            }
        }
    }
}
