//! Pulling: manifest (and index, with platform selection), config and
//! layers into the content store, every byte verified against its digest
//! while it streams in, then the image registered and unpacked. Nothing is
//! named until everything is in.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use berth_types::image::{self, Descriptor, ManifestDoc, Platform, media};
use berth_types::{Digest, Reference};
use bytes::Bytes;
use futures::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE, RANGE};
use reqwest::{Method, StatusCode};

use super::client::{Client, Endpoint, error_chain, failure, read_limited};
use super::{Progress, Status};
use crate::db::ImageRecord;
use crate::error::{Error, Result};
use crate::images::ImageStore;
use crate::store::{ContentStore, Expect, Hasher};
use crate::transaction::Transaction;

/// Every manifest type berth can use, for `Accept`.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// The largest image config berth accepts.
const MAX_CONFIG: u64 = 32 << 20;

/// The result of a pull.
#[derive(Clone, Debug)]
pub struct Pulled {
    /// The image.
    pub record: ImageRecord,
    /// The digest the reference resolved to (an index's, if it was one).
    pub digest: Digest,
    /// Whether the name already pointed at this image.
    pub up_to_date: bool,
}

/// What `fetch` brought into the content store.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// The image manifest.
    pub manifest: Digest,
    /// The index it was selected from.
    pub index: Option<Digest>,
    /// The names to give the image.
    pub names: Vec<Reference>,
    /// Layer blobs (for progress after unpacking).
    pub layers: Vec<Digest>,
}

fn short(d: &Digest) -> String {
    d.short().to_owned()
}

/// Fetches a manifest (by tag or digest) and verifies it: returns its
/// bytes, digest and media type.
pub async fn fetch_manifest(
    client: &Client,
    ep: &Endpoint,
    repo: &str,
    reference: &str,
    want: Option<&Digest>,
) -> Result<(Vec<u8>, Digest, String)> {
    let scope = format!("repository:{repo}:pull");
    let path = format!("/v2/{repo}/manifests/{reference}");
    let resp = client
        .send(ep, &scope, |h, base| {
            Ok(Client::request(h, Method::GET, base, &path).header(ACCEPT, ACCEPT_MANIFESTS))
        })
        .await?;
    if !resp.status().is_success() {
        return Err(failure(
            &format!("manifest for {}/{repo}:{reference}", ep.host),
            resp,
        )
        .await);
    }
    let ct = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.split(';').next().unwrap_or("").trim().to_owned())
        .unwrap_or_default();
    let header_digest = resp
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<Digest>().ok());
    let bytes = read_limited(resp, image::MAX_MANIFEST_SIZE).await?;
    let digest = match want {
        Some(w) => {
            let mut h = Hasher::new(w.algorithm());
            h.update(&bytes);
            let got = h.finish();
            if &got != w {
                return Err(Error::Integrity(format!(
                    "manifest {w} from {}: the content's digest is {got}",
                    ep.host
                )));
            }
            got
        }
        None => {
            let mut h = Hasher::new(
                header_digest
                    .as_ref()
                    .map_or(berth_types::Algorithm::Sha256, |d| d.algorithm()),
            );
            h.update(&bytes);
            let got = h.finish();
            if let Some(hd) = header_digest
                && hd != got
            {
                return Err(Error::Integrity(format!(
                    "manifest {repo}:{reference} from {}: Docker-Content-Digest says {hd}, the content's digest is {got}",
                    ep.host
                )));
            }
            got
        }
    };
    Ok((bytes, digest, ct))
}

enum Chunk {
    Data(Bytes),
    Commit,
}

impl Client {
    /// Downloads one blob into the content store (resuming after network
    /// failures); verified against `desc`'s digest and size.
    async fn fetch_blob(
        &self,
        ep: &Endpoint,
        repo: &str,
        desc: &Descriptor,
        content: &ContentStore,
        progress: &dyn Progress,
        max: Option<u64>,
    ) -> Result<()> {
        let id = short(&desc.digest);
        if let Some(m) = max
            && desc.size > m
        {
            return Err(Error::Limit(format!(
                "blob {} declares {} bytes; the limit is {m}",
                desc.digest, desc.size
            )));
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Chunk>(32);
        let store = content.clone();
        let expect = Expect {
            digest: Some(desc.digest.clone()),
            size: Some(desc.size),
            max: None,
        };
        let writer = tokio::task::spawn_blocking(move || -> Result<Digest> {
            let mut w = store.writer(expect)?;
            while let Some(c) = rx.blocking_recv() {
                match c {
                    Chunk::Data(b) => w.write_all(&b).map_err(|e| match e.kind() {
                        std::io::ErrorKind::InvalidData => Error::Integrity(e.to_string()),
                        _ => Error::Io {
                            context: "write blob".into(),
                            source: e,
                        },
                    })?,
                    Chunk::Commit => return w.commit(),
                }
            }
            Err(Error::Registry("download cancelled".into()))
        });
        let scope = format!("repository:{repo}:pull");
        let path = format!("/v2/{repo}/blobs/{}", desc.digest);
        let mut written: u64 = 0;
        let mut attempt = 0;
        let mut last_report = 0u64;
        let transfer: Result<()> = loop {
            let from = written;
            let one = async {
                let resp = self
                    .send(ep, &scope, |h, base| {
                        let mut rb = Client::request(h, Method::GET, base, &path);
                        if from > 0 {
                            rb = rb.header(RANGE, format!("bytes={from}-"));
                        }
                        Ok(rb)
                    })
                    .await
                    .map_err(|e| {
                        let retry = matches!(e, Error::Registry(_));
                        (e, retry)
                    })?;
                let status = resp.status();
                if !(status == StatusCode::OK || status == StatusCode::PARTIAL_CONTENT) {
                    let e = failure(&format!("blob {}", desc.digest), resp).await;
                    return Err((
                        e,
                        status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS,
                    ));
                }
                if status == StatusCode::PARTIAL_CONTENT {
                    let cr = resp
                        .headers()
                        .get(reqwest::header::CONTENT_RANGE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    if !cr.starts_with(&format!("bytes {from}-")) {
                        return Err((
                            Error::Registry(format!(
                                "blob {}: asked for bytes {from}-, got range {cr:?}",
                                desc.digest
                            )),
                            false,
                        ));
                    }
                }
                // a registry that ignores Range starts over: skip what we have
                let mut skip = if status == StatusCode::OK { from } else { 0 };
                let mut stream = resp.bytes_stream();
                while let Some(chunk) = stream.next().await {
                    let mut chunk = chunk.map_err(|e| {
                        (
                            Error::Registry(format!("blob {}: {}", desc.digest, error_chain(&e))),
                            true,
                        )
                    })?;
                    if skip > 0 {
                        let n = skip.min(chunk.len() as u64) as usize;
                        let _ = chunk.split_to(n);
                        skip -= n as u64;
                        if chunk.is_empty() {
                            continue;
                        }
                    }
                    written += chunk.len() as u64;
                    if written > desc.size {
                        return Err((
                            Error::Integrity(format!(
                                "blob {}: the registry sent more than the {} bytes declared",
                                desc.digest, desc.size
                            )),
                            false,
                        ));
                    }
                    tx.send(Chunk::Data(chunk))
                        .await
                        .map_err(|_| (Error::Registry("the blob writer stopped".into()), false))?;
                    if written - last_report >= 256 << 10 || written == desc.size {
                        last_report = written;
                        progress.layer(
                            &id,
                            Status::Downloading {
                                current: written,
                                total: desc.size,
                            },
                        );
                    }
                }
                if written < desc.size {
                    return Err((
                        Error::Registry(format!(
                            "blob {}: the transfer ended after {written} of {} bytes",
                            desc.digest, desc.size
                        )),
                        true,
                    ));
                }
                Ok(())
            }
            .await;
            match one {
                Ok(()) => break Ok(()),
                Err((e, retryable)) if retryable && attempt < self.opts.retries => {
                    attempt += 1;
                    progress.layer(
                        &id,
                        Status::Retrying {
                            attempt,
                            error: e.to_string(),
                        },
                    );
                    tracing::info!("retrying {} (attempt {attempt}): {e}", desc.digest);
                    tokio::time::sleep(backoff(self.opts.retry_delay, attempt)).await;
                }
                Err((e, _)) => break Err(e),
            }
        };
        if transfer.is_ok() {
            let _ = tx.send(Chunk::Commit).await;
        }
        drop(tx);
        let committed = writer
            .await
            .map_err(|e| Error::Registry(format!("blob writer: {e}")))?;
        transfer?;
        committed?;
        Ok(())
    }

    /// Brings `r` (an image; for an index, the entry for `platform`) and
    /// everything it references into `content`.
    pub async fn fetch(
        &self,
        content: &ContentStore,
        r: &Reference,
        platform: &Platform,
        progress: &dyn Progress,
    ) -> Result<Fetched> {
        let eps = self.endpoints(r.domain(), true);
        let mut last = None;
        for ep in &eps {
            match self.fetch_from(ep, content, r, platform, progress).await {
                Ok(f) => return Ok(f),
                Err(e) if ep.mirror => {
                    tracing::warn!("mirror {} failed, trying the next: {e}", ep.host);
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Registry("no endpoint".into())))
    }

    async fn fetch_from(
        &self,
        ep: &Endpoint,
        content: &ContentStore,
        r: &Reference,
        platform: &Platform,
        progress: &dyn Progress,
    ) -> Result<Fetched> {
        let repo = r.path();
        let reference = match (r.digest(), r.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_owned(),
            (None, None) => "latest".to_owned(),
        };
        let (bytes, digest, ct) = fetch_manifest(self, ep, repo, &reference, r.digest()).await?;
        let doc = image::parse_manifest(
            &bytes,
            Some(&ct).filter(|c| !c.is_empty()).map(|s| s.as_str()),
        )
        .map_err(|e| Error::Invalid(format!("{}: {e}", r.familiar())))?;
        let mut keep = vec![(bytes, digest.clone())];
        let (manifest, m_digest, index) = match doc {
            ManifestDoc::Index(idx) => {
                let Some(d) = idx.select(platform).cloned() else {
                    let listed: Vec<String> = idx
                        .manifests
                        .iter()
                        .filter_map(|d| d.platform.as_ref())
                        .map(|p| p.display())
                        .collect();
                    return Err(Error::NotFound(format!(
                        "no matching manifest for {} in the manifest list entries (it has: {})",
                        platform.display(),
                        if listed.is_empty() {
                            "none".into()
                        } else {
                            listed.join(", ")
                        }
                    )));
                };
                if d.size > image::MAX_MANIFEST_SIZE as u64 {
                    return Err(Error::Limit(format!(
                        "manifest {} declares {} bytes",
                        d.digest, d.size
                    )));
                }
                let (b, md, ct) =
                    fetch_manifest(self, ep, repo, &d.digest.to_string(), Some(&d.digest)).await?;
                if b.len() as u64 != d.size {
                    return Err(Error::Integrity(format!(
                        "manifest {}: {} bytes, the index says {}",
                        d.digest,
                        b.len(),
                        d.size
                    )));
                }
                let m = match image::parse_manifest(
                    &b,
                    Some(&ct).filter(|c| !c.is_empty()).map(|s| s.as_str()),
                )
                .map_err(|e| Error::Invalid(format!("{}: {e}", d.digest)))?
                {
                    ManifestDoc::Manifest(m) => m,
                    ManifestDoc::Index(_) => {
                        return Err(Error::Unsupported(format!("nested index {}", d.digest)));
                    }
                };
                keep.push((b, md.clone()));
                (m, md, Some(digest.clone()))
            }
            ManifestDoc::Manifest(m) => (m, digest.clone(), None),
        };
        if manifest.config.media_type != media::OCI_CONFIG
            && manifest.config.media_type != media::DOCKER_CONFIG
        {
            return Err(Error::Unsupported(format!(
                "{} is not a container image (config media type {}{})",
                r.familiar(),
                manifest.config.media_type,
                manifest
                    .artifact_type
                    .as_deref()
                    .map(|a| format!(", artifact type {a}"))
                    .unwrap_or_default()
            )));
        }
        for l in &manifest.layers {
            if !media::is_layer(&l.media_type) {
                return Err(Error::Unsupported(format!(
                    "layer media type {}",
                    l.media_type
                )));
            }
        }
        // the config first: it says what the layers must unpack to
        if !content.has(&manifest.config.digest) {
            self.fetch_blob(
                ep,
                repo,
                &manifest.config,
                content,
                &super::Quiet,
                Some(MAX_CONFIG),
            )
            .await?;
        }
        let cfg = image::parse_config(&content.read(&manifest.config.digest, MAX_CONFIG as usize)?)
            .map_err(|e| Error::Invalid(format!("image config {}: {e}", manifest.config.digest)))?;
        if cfg.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(Error::Invalid(format!(
                "the image config lists {} layers, the manifest {}",
                cfg.rootfs.diff_ids.len(),
                manifest.layers.len()
            )));
        }
        let layers: Vec<&Descriptor> = {
            let mut seen = std::collections::BTreeSet::new();
            manifest
                .layers
                .iter()
                .filter(|l| seen.insert(l.digest.clone()))
                .collect()
        };
        for l in &layers {
            progress.layer(
                &short(&l.digest),
                if content.has(&l.digest) {
                    Status::AlreadyExists
                } else {
                    Status::Waiting
                },
            );
        }
        let results: Vec<Result<()>> = futures::stream::iter(layers.iter().filter(|l| !content.has(&l.digest)))
            .map(|l| async move {
                let r = self.fetch_blob(ep, repo, l, content, progress, None).await;
                match &r {
                    Ok(()) => progress.layer(&short(&l.digest), Status::DownloadComplete),
                    Err(Error::NotFound(_)) if l.media_type == media::DOCKER_FOREIGN_LAYER || !l.urls.is_empty() => {
                        return Err(Error::Unsupported(format!(
                            "foreign layer {}: the registry does not have it, and berth never downloads from a layer's urls",
                            l.digest
                        )));
                    }
                    Err(_) => {}
                }
                r
            })
            .buffer_unordered(self.opts.max_concurrent.max(1))
            .collect()
            .await;
        for r in results {
            r?;
        }
        // manifests last: a manifest in the store means its blobs are too
        for (b, d) in keep {
            content.put(&b, Some(&d))?;
        }
        let mut names = Vec::new();
        match (r.tag(), r.digest()) {
            (Some(t), None) => {
                names.push(r.with_tag(t).map_err(|e| Error::Invalid(e.to_string()))?);
                names.push(r.with_digest(digest.clone()));
            }
            _ => names.push(r.with_digest(digest.clone())),
        }
        Ok(Fetched {
            manifest: m_digest,
            index,
            names,
            layers: manifest.layers.iter().map(|l| l.digest.clone()).collect(),
        })
    }
}

/// A runtime for the blocking entry points (the CLI's).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Io {
            context: "start the async runtime".into(),
            source: e,
        })
}

impl Transaction<'_> {
    /// Checks, unpacks and records what `fetch` brought in through this
    /// transaction's content store, naming the image only when all of it
    /// is in place.
    pub fn finish_pull(mut self, f: &Fetched, progress: &dyn Progress) -> Result<Pulled> {
        let store = self.store();
        let before = f
            .names
            .first()
            .and_then(|n| store.db().resolve_name(&n.to_string()).ok().flatten());
        for l in &f.layers {
            progress.layer(&short(l), Status::Extracting);
        }
        let record = self.stage(&f.manifest, f.index.as_ref(), &f.names)?;
        self.commit()?;
        let record = store.db().image(&record.id)?.unwrap_or(record);
        for l in &f.layers {
            progress.layer(&short(l), Status::PullComplete);
        }
        Ok(Pulled {
            up_to_date: before.as_ref() == Some(&record.id),
            digest: f.index.clone().unwrap_or_else(|| f.manifest.clone()),
            record,
        })
    }
}

impl ImageStore {
    /// Pulls `r` for `platform` (blocking; runs its own async runtime), as
    /// one transaction: a failed pull leaves the store as it was.
    pub fn pull(
        &self,
        client: &Client,
        r: &Reference,
        platform: &Platform,
        progress: Arc<dyn Progress>,
    ) -> Result<Pulled> {
        let tx = self.begin()?;
        let rt = runtime()?;
        let fetched = rt.block_on(client.fetch(tx.content(), r, platform, &*progress))?;
        drop(rt);
        tx.finish_pull(&fetched, &*progress)
    }
}

/// How long retry number `attempt` (from 1) waits: doubling from `base`,
/// at most a minute.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    base.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
        .min(Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        let b = Duration::from_millis(500);
        assert_eq!(backoff(b, 1), b);
        assert_eq!(backoff(b, 3), Duration::from_secs(2));
        assert_eq!(backoff(b, 1000), Duration::from_secs(60));
    }
}
