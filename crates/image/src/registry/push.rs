//! Pushing: each blob the registry lacks is mounted from another
//! repository on the same registry when berth knows one that has it, or
//! uploaded (retried from the start after a network failure); the manifest
//! goes last, byte for byte as stored, so its digest is preserved.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use berth_types::image::{self, Descriptor, ManifestDoc};
use berth_types::{Digest, Reference};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode};
use tokio::io::AsyncReadExt;

use super::client::{Client, Endpoint, failure};
use super::pull::backoff;
use super::{Progress, Status};
use crate::error::{Error, Result};
use crate::images::ImageStore;
use crate::store::ContentStore;

/// The result of a push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pushed {
    /// The manifest's digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
}

fn short(d: &Digest) -> String {
    d.short().to_owned()
}

/// The upload URL from a `Location` header (absolute, or relative to `base`).
fn location(base: &str, resp: &reqwest::Response) -> Result<String> {
    let loc = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            Error::Registry("the registry started an upload without a Location".into())
        })?;
    Ok(
        if loc.starts_with("http://") || loc.starts_with("https://") {
            loc.to_owned()
        } else {
            format!("{base}{loc}")
        },
    )
}

fn with_digest(url: &str, d: &Digest) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}digest={d}")
}

/// A file body that counts what it sent.
fn file_body(path: std::path::PathBuf, sent: Arc<AtomicU64>) -> reqwest::Body {
    let stream = futures::stream::unfold(None::<tokio::fs::File>, move |f| {
        let path = path.clone();
        let sent = sent.clone();
        async move {
            let mut f = match f {
                Some(f) => f,
                None => match tokio::fs::File::open(&path).await {
                    Ok(f) => f,
                    Err(e) => return Some((Err(e), None)),
                },
            };
            let mut buf = vec![0u8; 256 << 10];
            match f.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    sent.fetch_add(n as u64, Ordering::Relaxed);
                    Some((Ok(bytes::Bytes::from(buf)), Some(f)))
                }
                Err(e) => Some((Err(e), None)),
            }
        }
    });
    reqwest::Body::wrap_stream(stream)
}

impl Client {
    /// Makes sure `repo` on `ep` has blob `desc` (mounting it from one of
    /// `sources` if possible). Returns what happened.
    async fn push_blob(
        &self,
        ep: &Endpoint,
        repo: &str,
        desc: &Descriptor,
        content: &ContentStore,
        sources: &[String],
        progress: Option<&Arc<dyn Progress>>,
    ) -> Result<Status> {
        let id = short(&desc.digest);
        let mut scope = format!("repository:{repo}:pull,push");
        let from = sources.iter().find(|s| s.as_str() != repo).cloned();
        if let Some(f) = &from {
            scope.push_str(&format!(" repository:{f}:pull"));
        }
        let head_path = format!("/v2/{repo}/blobs/{}", desc.digest);
        let resp = self
            .send(ep, &scope, |h, base| {
                Ok(Client::request(h, Method::HEAD, base, &head_path))
            })
            .await?;
        if resp.status().is_success() {
            return Ok(Status::LayerExists);
        }
        if resp.status() != StatusCode::NOT_FOUND {
            return Err(failure(&format!("blob {}", desc.digest), resp).await);
        }
        let path = content.path(&desc.digest);
        let mut attempt = 0;
        loop {
            let start = match &from {
                Some(f) => format!("/v2/{repo}/blobs/uploads/?mount={}&from={f}", desc.digest),
                None => format!("/v2/{repo}/blobs/uploads/"),
            };
            let resp = self
                .send(ep, &scope, |h, base| {
                    Ok(Client::request(h, Method::POST, base, &start).header(CONTENT_LENGTH, 0))
                })
                .await?;
            if resp.status() == StatusCode::CREATED && from.is_some() {
                return Ok(Status::Mounted(from.clone().unwrap_or_default()));
            }
            if resp.status() != StatusCode::ACCEPTED {
                return Err(failure(&format!("start the upload of {}", desc.digest), resp).await);
            }
            let base = self.shared_base(ep);
            let url = with_digest(&location(&base, &resp)?, &desc.digest);
            let sent = Arc::new(AtomicU64::new(0));
            let ticker = progress.map(|progress| {
                let sent = sent.clone();
                let progress = progress.clone();
                let id = id.clone();
                let total = desc.size;
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        progress.layer(
                            &id,
                            Status::Pushing {
                                current: sent.load(Ordering::Relaxed).min(total),
                                total,
                            },
                        );
                    }
                })
            });
            let size = desc.size;
            let r = self
                .send(ep, &scope, |h, _| {
                    Ok(h.put(&url)
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .header(CONTENT_LENGTH, size)
                        .body(file_body(path.clone(), sent.clone())))
                })
                .await;
            if let Some(t) = ticker {
                t.abort();
            }
            let e = match r {
                Ok(resp) if resp.status() == StatusCode::CREATED => {
                    if let Some(p) = progress {
                        p.layer(
                            &id,
                            Status::Pushing {
                                current: size,
                                total: size,
                            },
                        );
                    }
                    return Ok(Status::Pushed);
                }
                Ok(resp) => {
                    let s = resp.status();
                    let e = failure(&format!("upload {}", desc.digest), resp).await;
                    if !(s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS) {
                        return Err(e);
                    }
                    e
                }
                // network failures are retried from a fresh upload
                Err(e @ Error::Registry(_)) => e,
                Err(e) => return Err(e),
            };
            if attempt >= self.opts.retries {
                return Err(e);
            }
            attempt += 1;
            if let Some(p) = progress {
                p.layer(
                    &id,
                    Status::Retrying {
                        attempt,
                        error: e.to_string(),
                    },
                );
            }
            tokio::time::sleep(backoff(self.opts.retry_delay, attempt)).await;
        }
    }

    fn shared_base(&self, ep: &Endpoint) -> String {
        self.base_of(&ep.host)
            .unwrap_or_else(|| format!("https://{}", ep.host))
    }

    /// Pushes a manifest (given as stored bytes) and everything it
    /// references to `target`. `sources` maps blobs to other repositories
    /// on the same registry that are known to hold them.
    pub async fn push_manifest(
        &self,
        content: &ContentStore,
        target: &Reference,
        manifest: &Digest,
        sources: &BTreeMap<Digest, Vec<String>>,
        progress: Arc<dyn Progress>,
    ) -> Result<Pushed> {
        let ep = self.endpoints(target.domain(), false).remove(0);
        let repo = target.path();
        let bytes = content.read(manifest, image::MAX_MANIFEST_SIZE)?;
        let (m, media_type) =
            match image::parse_manifest(&bytes, None).map_err(|e| Error::Invalid(e.to_string()))? {
                ManifestDoc::Manifest(m) => {
                    let mt = m
                        .media_type
                        .clone()
                        .unwrap_or_else(|| image::media::OCI_MANIFEST.to_owned());
                    (m, mt)
                }
                ManifestDoc::Index(_) => return Err(Error::Unsupported("pushing an index".into())),
            };
        let mut blobs: Vec<&Descriptor> = Vec::new();
        let mut seen = BTreeSet::new();
        for d in m.layers.iter().chain(std::iter::once(&m.config)) {
            if seen.insert(d.digest.clone()) {
                blobs.push(d);
            }
        }
        for d in &blobs {
            if !content.has(&d.digest) {
                return Err(Error::NotFound(format!(
                    "blob {} is not in the local store",
                    d.digest
                )));
            }
            if d.digest != m.config.digest {
                progress.layer(&short(&d.digest), Status::Preparing);
            }
        }
        use futures::StreamExt;
        let config_digest = &m.config.digest;
        let results: Vec<Result<()>> = futures::stream::iter(blobs.iter())
            .map(|d| {
                let progress = progress.clone();
                let ep = &ep;
                async move {
                    let empty = Vec::new();
                    let is_layer = &d.digest != config_digest;
                    let s = self
                        .push_blob(
                            ep,
                            repo,
                            d,
                            content,
                            sources.get(&d.digest).unwrap_or(&empty),
                            is_layer.then_some(&progress),
                        )
                        .await?;
                    if is_layer {
                        progress.layer(&short(&d.digest), s);
                    }
                    Ok(())
                }
            })
            .buffer_unordered(self.opts.max_concurrent.max(1))
            .collect()
            .await;
        for r in results {
            r?;
        }
        let reference = target
            .tag()
            .map(str::to_owned)
            .unwrap_or_else(|| manifest.to_string());
        let path = format!("/v2/{repo}/manifests/{reference}");
        let scope = format!("repository:{repo}:pull,push");
        let resp = self
            .send(&ep, &scope, |h, base| {
                Ok(Client::request(h, Method::PUT, base, &path)
                    .header(CONTENT_TYPE, media_type.as_str())
                    .body(bytes.clone()))
            })
            .await?;
        if resp.status() != StatusCode::CREATED && !resp.status().is_success() {
            return Err(failure(&format!("manifest {}", target.familiar()), resp).await);
        }
        if let Some(d) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.parse::<Digest>().ok())
            && d.algorithm() == manifest.algorithm()
            && &d != manifest
        {
            return Err(Error::Integrity(format!(
                "the registry stored manifest {manifest} as {d}"
            )));
        }
        Ok(Pushed {
            digest: manifest.clone(),
            size: bytes.len() as u64,
        })
    }
}

impl ImageStore {
    /// Other repositories on `domain` that hold each blob, from the names
    /// of local images (candidates for a cross-repository mount).
    pub fn blob_sources(&self, domain: &str) -> Result<BTreeMap<Digest, Vec<String>>> {
        let mut out: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
        for s in self.list()? {
            let repos: BTreeSet<String> = self
                .names(&s.record.id)?
                .into_iter()
                .filter_map(|(n, _)| Reference::parse(&n).ok())
                .filter(|r| r.domain() == domain)
                .map(|r| r.path().to_owned())
                .collect();
            if repos.is_empty() {
                continue;
            }
            let Ok(m) = self.manifest(&s.record) else {
                continue;
            };
            for l in m.layers.iter().chain(std::iter::once(&m.config)) {
                let e = out.entry(l.digest.clone()).or_default();
                for r in &repos {
                    if !e.contains(r) {
                        e.push(r.clone());
                    }
                }
            }
        }
        Ok(out)
    }

    /// Pushes local image `source` as `target` (blocking).
    pub fn push(
        &self,
        client: &Client,
        source: &str,
        target: &Reference,
        progress: Arc<dyn Progress>,
    ) -> Result<Pushed> {
        let rec = self.resolve(source)?;
        let sources = self.blob_sources(target.domain())?;
        let rt = super::pull::runtime()?;
        rt.block_on(client.push_manifest(self.content(), target, &rec.manifest, &sources, progress))
    }
}
