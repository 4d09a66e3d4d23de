//! Image archives: `docker save` tarballs (docker-archive, including the
//! OCI layout newer Docker versions put inside), OCI image layouts and
//! oci-archives, and plain rootfs tarballs (`import`).

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::path::{Component, Path};

use berth_types::image::{self, Descriptor, ImageConfig, Index, Manifest, ManifestDoc, media};
use berth_types::{Digest, Reference};
use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};
use crate::images::{ImageStore, now};
use crate::store::{Expect, sha256};
use crate::transaction::Transaction;
use crate::unpack::{self, Compression};

/// An image an archive held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    /// Image ID.
    pub id: Digest,
    /// The names it was given.
    pub names: Vec<Reference>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default, deserialize_with = "null_vec")]
    repo_tags: Vec<String>,
    #[serde(default, deserialize_with = "null_vec")]
    layers: Vec<String>,
}

fn null_vec<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// Cleans an archive path (`./a/b` → `a/b`); None if it climbs out.
fn clean(p: &str) -> Option<String> {
    let mut out: Vec<String> = Vec::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(n) => out.push(n.to_string_lossy().into_owned()),
            Component::ParentDir => {
                out.pop()?;
            }
            _ => {}
        }
    }
    Some(out.join("/"))
}

const SMALL: &[&str] = &["manifest.json", "repositories", "index.json", "oci-layout"];

/// What an archive contained, file by file.
#[derive(Default)]
struct Scanned {
    small: HashMap<String, Vec<u8>>,
    blobs: HashMap<String, (Digest, u64)>,
    links: HashMap<String, String>,
}

impl Scanned {
    fn resolve(&self, path: &str) -> Option<&(Digest, u64)> {
        let mut p = clean(path)?;
        for _ in 0..16 {
            if let Some(b) = self.blobs.get(&p) {
                return Some(b);
            }
            let target = self.links.get(&p)?;
            let base = Path::new(&p)
                .parent()
                .map(|b| b.to_string_lossy().into_owned())
                .unwrap_or_default();
            p = if target.starts_with('/') {
                clean(target)?
            } else {
                clean(&format!("{base}/{target}"))?
            };
        }
        None
    }
}

impl ImageStore {
    /// Loads every image of a docker-archive or oci-archive stream (`docker
    /// load`), unpacking their layers. Nothing is registered unless every
    /// blob verifies.
    pub fn load(&self, input: impl Read) -> Result<Vec<Loaded>> {
        let mut tx = self.begin()?;
        let mut archive = tar::Archive::new(input);
        let mut scanned = Scanned::default();
        for entry in archive
            .entries()
            .map_err(|e| Error::Invalid(format!("archive: {e}")))?
        {
            let mut entry =
                entry.map_err(|e| Error::Invalid(format!("archive: malformed tar: {e}")))?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let Some(path) = clean(&raw) else {
                return Err(Error::Invalid(format!(
                    "archive entry {raw:?} climbs out of the archive"
                )));
            };
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    if SMALL.contains(&path.as_str()) {
                        let mut b = Vec::new();
                        (&mut entry)
                            .take(16 << 20)
                            .read_to_end(&mut b)
                            .ctx(|| format!("read {path}"))?;
                        scanned.small.insert(path, b);
                    } else {
                        let mut w = tx.content().writer(Expect {
                            size: Some(entry.size()),
                            ..Default::default()
                        })?;
                        io::copy(&mut entry, &mut w)
                            .ctx(|| format!("read {path} from the archive"))?;
                        let size = w.written();
                        let d = w.commit()?;
                        scanned.blobs.insert(path, (d, size));
                    }
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    if let Some(t) = entry.link_name_bytes() {
                        let t = String::from_utf8_lossy(&t).into_owned();
                        let t = if entry.header().entry_type() == tar::EntryType::Link {
                            format!("/{t}")
                        } else {
                            t
                        };
                        scanned.links.insert(path, t);
                    }
                }
                _ => {}
            }
        }
        let loaded = if let Some(m) = scanned.small.get("manifest.json") {
            load_docker(&mut tx, m, &scanned)?
        } else if scanned.small.contains_key("index.json") {
            load_oci_scanned(&mut tx, &scanned)?
        } else {
            return Err(Error::Invalid(
                "not an image archive: it has neither manifest.json (docker save) nor index.json (OCI)".into(),
            ));
        };
        tx.commit()?;
        Ok(loaded)
    }

    /// Loads an OCI image layout directory.
    pub fn load_oci_dir(&self, dir: &Path) -> Result<Vec<Loaded>> {
        let mut tx = self.begin()?;
        let index = std::fs::read(dir.join("index.json"))
            .ctx(|| format!("read {}/index.json", dir.display()))?;
        for alg in ["sha256", "sha512"] {
            let bdir = dir.join("blobs").join(alg);
            let Ok(rd) = std::fs::read_dir(&bdir) else {
                continue;
            };
            for e in rd.flatten() {
                let want: Digest = format!("{alg}:{}", e.file_name().to_string_lossy())
                    .parse()
                    .map_err(|_| {
                        Error::Invalid(format!("unexpected file {}", e.path().display()))
                    })?;
                if tx.content().has(&want) {
                    continue;
                }
                let mut f =
                    std::fs::File::open(e.path()).ctx(|| format!("open {}", e.path().display()))?;
                let mut w = tx.content().writer(Expect {
                    digest: Some(want),
                    ..Default::default()
                })?;
                io::copy(&mut f, &mut w).ctx(|| format!("read {}", e.path().display()))?;
                w.commit()?;
            }
        }
        let loaded = load_oci_index(&mut tx, &index)?;
        tx.commit()?;
        Ok(loaded)
    }

    /// Writes `images` (names or ids) as a docker-archive (`docker save`).
    pub fn save_docker(&self, images: &[String], out: impl Write) -> Result<()> {
        let mut tar = tar::Builder::new(out);
        tar.mode(tar::HeaderMode::Deterministic);
        let mut manifest = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut written: std::collections::HashSet<String> = Default::default();
        for what in images {
            let rec = self.resolve(what)?;
            let m = self.manifest(&rec)?;
            let config = self.config(&rec.id)?;
            let config_name = format!("{}.json", rec.id.hex());
            if written.insert(config_name.clone()) {
                let bytes = self.content().read(&rec.id, 16 << 20)?;
                append_bytes(&mut tar, &config_name, &bytes)?;
            }
            let mut layer_paths = Vec::new();
            for (l, diff) in m.layers.iter().zip(&config.rootfs.diff_ids) {
                let path = format!("{}/layer.tar", diff.hex());
                if written.insert(path.clone()) {
                    append_bytes(&mut tar, &format!("{}/VERSION", diff.hex()), b"1.0")?;
                    self.append_uncompressed_layer(&mut tar, &path, &l.digest)?;
                }
                layer_paths.push(path);
            }
            // The names to record: those that match what was asked for
            // when it was a name, else all of the image's tags.
            let tags: Vec<String> = match Reference::parse(what) {
                Ok(r)
                    if r.tag().is_some()
                        && self
                            .names(&rec.id)?
                            .iter()
                            .any(|(n, _)| *n == r.to_string()) =>
                {
                    vec![r.familiar()]
                }
                _ => self
                    .names(&rec.id)?
                    .into_iter()
                    .filter(|(_, k)| k == "tag")
                    .filter_map(|(n, _)| Reference::parse(&n).ok().map(|r| r.familiar()))
                    .collect(),
            };
            for t in &tags {
                if let Ok(r) = Reference::parse(t) {
                    repositories
                        .entry(r.familiar_repository())
                        .or_default()
                        .insert(
                            r.tag().unwrap_or("latest").to_owned(),
                            rec.id.hex().to_owned(),
                        );
                }
            }
            manifest.push(DockerManifestEntry {
                config: config_name,
                repo_tags: tags,
                layers: layer_paths,
            });
        }
        append_bytes(
            &mut tar,
            "manifest.json",
            &serde_json::to_vec(&manifest).map_err(|e| Error::Invalid(e.to_string()))?,
        )?;
        append_bytes(
            &mut tar,
            "repositories",
            &serde_json::to_vec(&repositories).map_err(|e| Error::Invalid(e.to_string()))?,
        )?;
        tar.finish().ctx(|| "write the archive")?;
        Ok(())
    }

    fn append_uncompressed_layer<W: Write>(
        &self,
        tar: &mut tar::Builder<W>,
        path: &str,
        blob: &Digest,
    ) -> Result<()> {
        let mut head = [0u8; 4];
        let n = std::io::Read::read(&mut self.content().open_blob(blob)?, &mut head)
            .ctx(|| "read layer")?;
        let comp = Compression::detect(&head[..n]);
        let size = match comp {
            Compression::None => self.content().size(blob).unwrap_or(0),
            _ => match self.db().layer(blob)?.and_then(|(_, s)| s) {
                Some(s) => s,
                None => {
                    let never = std::sync::atomic::AtomicU64::new(u64::MAX);
                    let budget = self.unpack_options().budget(
                        blob.to_string(),
                        self.content().size(blob).unwrap_or(0),
                        None,
                    );
                    let (_, n) = unpack::decode_stream(
                        self.content().open_blob(blob)?,
                        |_| Ok(()),
                        &budget,
                        &never,
                        u64::MAX,
                    )
                    .map_err(|e| unpack::stream_error(e, &format!("layer {blob}")))?;
                    n
                }
            },
        };
        let mut h = tar::Header::new_gnu();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        let f = self.content().open_blob(blob)?;
        let reader: Box<dyn Read> = match comp {
            Compression::None => Box::new(f),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(io::BufReader::new(f))),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(f).ctx(|| "zstd")?),
        };
        tar.append_data(&mut h, path, reader)
            .ctx(|| format!("write {path}"))
    }

    /// Writes `images` as an oci-archive (an OCI image layout in a tar).
    pub fn save_oci(&self, images: &[String], out: impl Write) -> Result<()> {
        let mut tar = tar::Builder::new(out);
        tar.mode(tar::HeaderMode::Deterministic);
        append_bytes(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        let mut index = Index {
            schema_version: 2,
            media_type: Some(media::OCI_INDEX.into()),
            artifact_type: None,
            manifests: Vec::new(),
            subject: None,
            annotations: BTreeMap::new(),
        };
        let mut written: std::collections::HashSet<Digest> = Default::default();
        for what in images {
            let rec = self.resolve(what)?;
            let m = self.manifest(&rec)?;
            let mut blobs = vec![rec.manifest.clone(), rec.id.clone()];
            blobs.extend(m.layers.iter().map(|l| l.digest.clone()));
            for b in blobs {
                if written.insert(b.clone()) {
                    let path = format!("blobs/{}/{}", b.algorithm().as_str(), b.hex());
                    let mut h = tar::Header::new_gnu();
                    h.set_size(self.content().size(&b).unwrap_or(0));
                    h.set_mode(0o644);
                    tar.append_data(&mut h, &path, self.content().open_blob(&b)?)
                        .ctx(|| format!("write {path}"))?;
                }
            }
            let mut desc = Descriptor::new(
                &rec.manifest_media_type,
                rec.manifest.clone(),
                self.content().size(&rec.manifest).unwrap_or(0),
            );
            let name = match Reference::parse(what) {
                Ok(r) if r.tag().is_some() => Some(r),
                _ => self
                    .names(&rec.id)?
                    .into_iter()
                    .find(|(_, k)| k == "tag")
                    .and_then(|(n, _)| Reference::parse(&n).ok()),
            };
            if let Some(n) = name {
                desc.annotations
                    .insert("io.containerd.image.name".into(), n.to_string());
                desc.annotations.insert(
                    "org.opencontainers.image.ref.name".into(),
                    n.tag().unwrap_or("latest").to_owned(),
                );
            }
            index.manifests.push(desc);
        }
        append_bytes(
            &mut tar,
            "index.json",
            &serde_json::to_vec(&index).map_err(|e| Error::Invalid(e.to_string()))?,
        )?;
        tar.finish().ctx(|| "write the archive")?;
        Ok(())
    }

    /// Creates a one-layer image from a root filesystem tarball (plain,
    /// gzip or zstd), as `docker import` does. `config` supplies what
    /// `--change` set; `comment` is the history's (docker's
    /// `Imported from -` when none is given).
    pub fn import(
        &self,
        input: impl Read,
        config: berth_types::image::ContainerConfig,
        comment: Option<&str>,
        name: Option<&Reference>,
    ) -> Result<Digest> {
        let mut tx = self.begin()?;
        let mut w = tx.content().writer(Expect::default())?;
        let size = io::copy(&mut { input }, &mut w).ctx(|| "read the rootfs tarball")?;
        let blob = w.commit()?;
        let mut head = [0u8; 4];
        let n = self
            .content()
            .open_blob(&blob)?
            .read(&mut head)
            .ctx(|| "read")?;
        let mt = match Compression::detect(&head[..n]) {
            Compression::None => media::DOCKER_LAYER,
            Compression::Gzip => media::DOCKER_LAYER_GZIP,
            Compression::Zstd => media::OCI_LAYER_ZSTD,
        };
        let never = std::sync::atomic::AtomicU64::new(u64::MAX);
        let budget =
            self.unpack_options()
                .budget(format!("{blob} (the rootfs tarball)"), size, None);
        let (diff_id, _) = unpack::decode_stream(
            self.content().open_blob(&blob)?,
            |_| Ok(()),
            &budget,
            &never,
            u64::MAX,
        )
        .map_err(|e| unpack::stream_error(e, "the rootfs tarball"))?;
        let host = image::Platform::host();
        let cfg = ImageConfig {
            created: Some(now()),
            author: None,
            architecture: host.architecture.clone(),
            os: host.os.clone(),
            variant: host.variant.clone(),
            config: Some(config),
            rootfs: image::RootFs {
                kind: "layers".into(),
                diff_ids: vec![diff_id],
            },
            history: vec![image::History {
                created: Some(now()),
                comment: Some(comment.unwrap_or("Imported from -").to_owned()),
                ..Default::default()
            }],
            extra: BTreeMap::new(),
        };
        let names: Vec<Reference> = name.cloned().into_iter().collect();
        let rec = tx.stage_new(&cfg, vec![Descriptor::new(mt, blob, size)], &names, None)?;
        tx.commit()?;
        Ok(rec.id)
    }
}

fn load_docker(tx: &mut Transaction<'_>, manifest_json: &[u8], s: &Scanned) -> Result<Vec<Loaded>> {
    let store = tx.store();
    let entries: Vec<DockerManifestEntry> = serde_json::from_slice(manifest_json)
        .map_err(|e| Error::Invalid(format!("archive manifest.json: {e}")))?;
    let mut out = Vec::new();
    for e in entries {
        let (config_digest, config_size) = s
            .resolve(&e.config)
            .cloned()
            .ok_or_else(|| Error::Invalid(format!("archive: config {} is missing", e.config)))?;
        let config = store.config(&config_digest)?;
        if config.rootfs.diff_ids.len() != e.layers.len() {
            return Err(Error::Invalid(format!(
                "archive: {} lists {} layers, its config {}",
                e.config,
                e.layers.len(),
                config.rootfs.diff_ids.len()
            )));
        }
        let mut layers = Vec::new();
        for (path, diff) in e.layers.iter().zip(&config.rootfs.diff_ids) {
            let (d, size) = s
                .resolve(path)
                .cloned()
                .ok_or_else(|| Error::Invalid(format!("archive: layer {path} is missing")))?;
            let mt = layer_media_type(store, &d)?;
            if mt == media::DOCKER_LAYER && d != *diff {
                return Err(Error::Integrity(format!(
                    "archive layer {path}: digest {d} does not match its diff id {diff}"
                )));
            }
            layers.push(Descriptor::new(mt, d, size));
        }
        let m = Manifest {
            schema_version: 2,
            media_type: Some(media::DOCKER_MANIFEST.into()),
            artifact_type: None,
            config: Descriptor::new(media::DOCKER_CONFIG, config_digest, config_size),
            layers,
            subject: None,
            annotations: BTreeMap::new(),
        };
        let bytes = serde_json::to_vec(&m).map_err(|e| Error::Invalid(e.to_string()))?;
        let md = tx.content().put(&bytes, None)?;
        let names: Vec<Reference> = e
            .repo_tags
            .iter()
            .map(|t| Reference::parse(t).map_err(|e| Error::Invalid(format!("archive: {e}"))))
            .collect::<Result<_>>()?;
        let rec = tx.stage(&md, None, &names)?;
        out.push(Loaded { id: rec.id, names });
    }
    Ok(out)
}

fn load_oci_scanned(tx: &mut Transaction<'_>, s: &Scanned) -> Result<Vec<Loaded>> {
    let index_bytes = &s.small["index.json"];
    let blob_path = |d: &Digest| format!("blobs/{}/{}", d.algorithm().as_str(), d.hex());
    // Blobs were stored by content; check each named one matches its path.
    for (path, (d, _)) in &s.blobs {
        if let Some(rest) = path.strip_prefix("blobs/")
            && rest.replacen('/', ":", 1) != d.to_string()
        {
            return Err(Error::Integrity(format!(
                "archive blob {path} does not match its digest ({d})"
            )));
        }
    }
    let _ = blob_path;
    load_oci_index(tx, index_bytes)
}

/// Loads the images an OCI layout's index.json names (its blobs already
/// in the content store).
fn load_oci_index(tx: &mut Transaction<'_>, index_bytes: &[u8]) -> Result<Vec<Loaded>> {
    let index: Index = match image::parse_manifest(index_bytes, Some(media::OCI_INDEX))
        .map_err(|e| Error::Invalid(format!("index.json: {e}")))?
    {
        ManifestDoc::Index(i) => i,
        ManifestDoc::Manifest(_) => {
            return Err(Error::Invalid("index.json is not an index".into()));
        }
    };
    let mut out = Vec::new();
    for desc in &index.manifests {
        let name = desc
            .annotations
            .get("io.containerd.image.name")
            .or_else(|| desc.annotations.get("org.opencontainers.image.ref.name"))
            .and_then(|n| {
                Reference::parse(n)
                    .ok()
                    .filter(|_| n.contains('/') || n.contains(':'))
            });
        let names: Vec<Reference> = name.into_iter().collect();
        let (manifest, index_digest) = if media::is_index(&desc.media_type) {
            let bytes = tx.content().read(&desc.digest, image::MAX_MANIFEST_SIZE)?;
            let ManifestDoc::Index(inner) =
                image::parse_manifest(&bytes, None).map_err(|e| Error::Invalid(e.to_string()))?
            else {
                return Err(Error::Invalid(format!("{} is not an index", desc.digest)));
            };
            let chosen = inner.select(&image::Platform::host()).ok_or_else(|| {
                Error::NotFound(format!(
                    "no manifest for {} in {}",
                    image::Platform::host().display(),
                    desc.digest
                ))
            })?;
            (chosen.digest.clone(), Some(desc.digest.clone()))
        } else {
            (desc.digest.clone(), None)
        };
        let rec = tx.stage(&manifest, index_digest.as_ref(), &names)?;
        out.push(Loaded { id: rec.id, names });
    }
    Ok(out)
}

fn layer_media_type(store: &ImageStore, blob: &Digest) -> Result<&'static str> {
    let mut head = [0u8; 4];
    let n = store
        .content()
        .open_blob(blob)?
        .read(&mut head)
        .ctx(|| "read layer")?;
    Ok(match Compression::detect(&head[..n]) {
        Compression::None => media::DOCKER_LAYER,
        Compression::Gzip => media::DOCKER_LAYER_GZIP,
        Compression::Zstd => media::OCI_LAYER_ZSTD,
    })
}

fn append_bytes<W: Write>(tar: &mut tar::Builder<W>, path: &str, bytes: &[u8]) -> Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(bytes.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut h, path, bytes)
        .ctx(|| format!("write {path}"))
}

/// A digest for raw bytes, for callers that build documents.
pub fn digest_of(b: &[u8]) -> Digest {
    sha256(b)
}
