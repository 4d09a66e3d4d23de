//! `docker manifest`-style lookups without pulling: what a reference
//! resolves to in its registry (dockerd's `GET /distribution/{name}/json`):
//! the manifest's (or index's) descriptor and the platforms it serves.

use berth_types::Reference;
use berth_types::image::{self, Descriptor, ManifestDoc, Platform};
use reqwest::Method;

use super::client::{Client, failure, read_limited};
use super::pull::fetch_manifest;
use crate::error::{Error, Result};

/// The largest image config read to learn a manifest's platform.
const MAX_CONFIG: usize = 32 << 20;

/// What a reference is in its registry.
#[derive(Clone, Debug)]
pub struct Distribution {
    /// The manifest or index the reference names.
    pub descriptor: Descriptor,
    /// The platforms it has images for (an index's entries; a manifest's
    /// config's).
    pub platforms: Vec<Platform>,
}

impl Client {
    /// Looks `r` up in its registry (the first endpoint that answers).
    pub async fn distribution(&self, r: &Reference) -> Result<Distribution> {
        let ep = self
            .endpoints(r.domain(), true)
            .into_iter()
            .find(|e| !e.mirror)
            .ok_or_else(|| Error::Registry(format!("no endpoint for {}", r.domain())))?;
        let repo = r.path();
        let reference = match (r.digest(), r.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_owned(),
            (None, None) => "latest".to_owned(),
        };
        let (bytes, digest, ct) = fetch_manifest(self, &ep, repo, &reference, r.digest()).await?;
        let doc = image::parse_manifest(&bytes, Some(ct.as_str()).filter(|c| !c.is_empty()))
            .map_err(|e| Error::Invalid(format!("{}: {e}", r.familiar())))?;
        let media_type = if ct.is_empty() {
            match &doc {
                ManifestDoc::Index(_) => image::media::OCI_INDEX.to_owned(),
                ManifestDoc::Manifest(_) => image::media::OCI_MANIFEST.to_owned(),
            }
        } else {
            ct
        };
        let descriptor = Descriptor::new(&media_type, digest, bytes.len() as u64);
        let platforms = match doc {
            ManifestDoc::Index(idx) => idx
                .manifests
                .iter()
                .filter_map(|d| d.platform.clone())
                .collect(),
            ManifestDoc::Manifest(m) => {
                let scope = format!("repository:{repo}:pull");
                let path = format!("/v2/{repo}/blobs/{}", m.config.digest);
                let resp = self
                    .send(&ep, &scope, |h, base| {
                        Ok(Client::request(h, Method::GET, base, &path))
                    })
                    .await?;
                if !resp.status().is_success() {
                    return Err(failure(&format!("config {}", m.config.digest), resp).await);
                }
                let cfg = image::parse_config(&read_limited(resp, MAX_CONFIG).await?)
                    .map_err(|e| Error::Invalid(format!("config {}: {e}", m.config.digest)))?;
                vec![Platform {
                    architecture: cfg.architecture,
                    os: cfg.os,
                    variant: cfg.variant,
                    ..Default::default()
                }]
            }
        };
        Ok(Distribution {
            descriptor,
            platforms,
        })
    }

    /// [`Client::distribution`] for callers without a runtime (blocking).
    pub fn distribution_blocking(&self, r: &Reference) -> Result<Distribution> {
        super::pull::runtime()?.block_on(self.distribution(r))
    }
}
