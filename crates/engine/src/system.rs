//! `docker system df` and the prunes behind `docker system prune`:
//! stopped containers, unused images, networks and volumes, with the
//! space each takes or frees.

use std::path::Path;

use crate::run::{Engine, Result};

/// Bytes of the files under `p` (not following links).
pub fn dir_size(p: &Path) -> u64 {
    disk_usage(p).0
}

/// Bytes and inodes used under `p`, staying on its filesystem (what is
/// mounted below, a tmpfs say, is not counted) and not following links.
pub fn disk_usage(p: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let Ok(top) = p.symlink_metadata() else {
        return (0, 0);
    };
    let dev = top.dev();
    let (mut bytes, mut inodes) = (0, 0);
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if let Ok(m) = e.path().symlink_metadata() {
                if m.dev() != dev {
                    continue;
                }
                inodes += 1;
                if m.is_dir() {
                    stack.push(e.path());
                } else {
                    bytes += m.len();
                }
            }
        }
    }
    (bytes, inodes)
}

/// One container's line in `system df`.
#[derive(Clone, Debug)]
pub struct ContainerUsage {
    /// The container.
    pub container: crate::Container,
    /// Bytes it wrote (its upper layer).
    pub size_rw: u64,
}

impl Engine {
    /// Bytes a container wrote to its own layer.
    pub fn container_size(&self, id: &str) -> u64 {
        dir_size(&self.store.dir(id).join("upper"))
    }

    /// `ps --size`: the bytes a container wrote, and those with its
    /// image's under them (docker's `SizeRw` and `SizeRootFs`).
    pub fn container_sizes(&self, c: &crate::Container) -> (u64, u64) {
        let rw = self.container_size(&c.record.id);
        let image = self
            .images
            .resolve(&c.record.image_id)
            .map(|i| i.size)
            .unwrap_or(0);
        (rw, image.saturating_add(rw))
    }

    /// `docker container prune`: removes every container that does not
    /// run; returns their ids and the bytes freed (and records docker's
    /// `prune` event with the bytes reclaimed).
    pub fn prune_containers(
        &self,
        f: &crate::filter::Filters,
        until_ns: Option<i64>,
    ) -> Result<(Vec<String>, u64)> {
        f.check(&["label", "label!", "until"])?;
        let mut ids = Vec::new();
        let mut bytes = 0;
        for c in self.list() {
            if c.state.is_active() || !f.labels(&c.record.labels) {
                continue;
            }
            if let Some(u) = until_ns
                && crate::events::rfc3339_nanos(&c.record.created).is_none_or(|t| t >= u)
            {
                continue;
            }
            let size = self.container_size(&c.record.id);
            if self.remove(&c.record.id, false, false).is_ok() {
                bytes += size;
                ids.push(c.record.id.clone());
            }
        }
        let mut a = std::collections::BTreeMap::new();
        a.insert("reclaimed".to_owned(), bytes.to_string());
        crate::events::emit(&self.root, "container", "prune", "", a);
        Ok((ids, bytes))
    }

    /// Every container with the bytes it wrote.
    pub fn container_usage(&self) -> Vec<ContainerUsage> {
        self.list()
            .into_iter()
            .map(|c| {
                let size_rw = self.container_size(&c.record.id);
                ContainerUsage {
                    container: c,
                    size_rw,
                }
            })
            .collect()
    }
}
