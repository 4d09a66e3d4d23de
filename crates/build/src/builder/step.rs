//! Ending a step: its cache key's inputs, berth's own records, a
//! `--cache-from` image's matching step, or the step made anew.

use berth_types::Digest;
use berth_types::image::{History, ImageConfig};

use super::cache::{self, Key};
use super::error::BuildError;
use super::eval::PROXY_ARGS;
use super::output::short;
use super::stage::{Builder, StageState};

impl Builder<'_> {
    /// The arguments in scope as cache input.
    pub fn args_key(&self, key: &mut Key, st: &StageState) {
        for (k, v) in &st.args {
            if PROXY_ARGS.contains(&k.as_str()) {
                continue;
            }
            key.add(
                "arg",
                format!("{k}={}", v.as_deref().unwrap_or("\0")).as_bytes(),
            );
        }
    }

    /// Ends a step: the cached image for `key`, or `make`'s, recorded.
    pub fn finish_step(
        &mut self,
        st: &mut StageState,
        key: Key,
        make: impl FnOnce(&mut Self, &mut ImageConfig) -> Result<Digest, BuildError>,
        mut cfg: ImageConfig,
    ) -> Result<(), BuildError> {
        let described = (key.created_by.clone(), key.empty_layer);
        let key = key.finish();
        let hit = if st.no_cache {
            None
        } else {
            cache::lookup(self.engine, &key).or_else(|| {
                let (created_by, empty) = &described;
                self.cached_in_sources(st, created_by.as_deref()?, *empty, &cfg)
            })
        };
        if let Some(hit) = hit {
            self.out.stream(" ---> Using cache\n");
            self.out
                .stream(&format!(" ---> {}\n", short(&hit.to_string())));
            let _ = cache::record(self.engine, &key, &hit);
            st.set_image(self.engine, hit)?;
            return Ok(());
        }
        let id = make(self, &mut cfg)?;
        let _ = cache::record(self.engine, &key, &id);
        self.out
            .stream(&format!(" ---> {}\n", short(&id.to_string())));
        st.set_image(self.engine, id)?;
        Ok(())
    }

    /// A step taken from a `--cache-from` image (trusted because the user
    /// named it, as `docker build --cache-from`): one whose history and
    /// layers begin with the parent's and whose next history entry is this
    /// step's. The step's image is made of the parent, that entry and
    /// (unless it adds no layer) that image's next layer.
    fn cached_in_sources(
        &self,
        st: &StageState,
        created_by: &str,
        empty_layer: Option<bool>,
        cfg: &ImageConfig,
    ) -> Option<Digest> {
        let parent_hist = &st.config.history;
        let parent_layers = &st.config.rootfs.diff_ids;
        for name in &self.opts.cache_from {
            let Ok(rec) = self.engine.images().resolve(name) else {
                continue;
            };
            let Ok(c) = self.engine.images().config(&rec.id) else {
                continue;
            };
            let same = |a: &History, b: &History| {
                a.created_by == b.created_by && a.empty_layer == b.empty_layer
            };
            let Some(h) = c.history.get(parent_hist.len()) else {
                continue;
            };
            if !parent_hist.iter().zip(&c.history).all(|(a, b)| same(a, b))
                || !c.rootfs.diff_ids.starts_with(parent_layers)
                || h.created_by.as_deref() != Some(created_by)
                || empty_layer.is_some_and(|e| e != h.empty_layer)
            {
                continue;
            }
            let mut new = cfg.clone();
            new.history = parent_hist.clone();
            new.history.push(h.clone());
            new.rootfs.diff_ids = parent_layers.clone();
            new.created = h.created.clone();
            let mut extra = Vec::new();
            if !h.empty_layer {
                let i = parent_layers.len();
                let (Some(diff), Ok(m)) = (
                    c.rootfs.diff_ids.get(i),
                    self.engine.images().manifest(&rec),
                ) else {
                    continue;
                };
                let Some(desc) = m.layers.get(i) else {
                    continue;
                };
                new.rootfs.diff_ids.push(diff.clone());
                extra.push(desc.clone());
            }
            if let Ok(id) = self
                .engine
                .derive_image_with(st.image.as_ref(), &new, extra)
            {
                return Some(id);
            }
        }
        None
    }
}
