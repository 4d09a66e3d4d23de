//! Image archives built in memory for tests: plain, gzip and zstd tar
//! layers, layers that inflate far beyond their size (generated as a
//! stream: the uncompressed bytes never exist at once), and docker-archives
//! (`docker save` tarballs) around them.

use std::io::Write;

use sha2::Digest as _;

/// `sha256:<hex>` of `b`.
pub fn sha256(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(b)))
}

/// A layer blob and the digest of its uncompressed tar (its diff id).
#[derive(Clone, Debug)]
pub struct Layer {
    /// The bytes as stored (plain, gzip or zstd).
    pub blob: Vec<u8>,
    /// `sha256:` of the uncompressed tar.
    pub diff_id: String,
}

/// How a layer is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

/// An encoder that also hashes what goes in.
struct Encoder {
    hash: sha2::Sha256,
    sink: Sink,
}

enum Sink {
    Plain(Vec<u8>),
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

fn encoder(c: Compression) -> Encoder {
    let sink = match c {
        Compression::None => Sink::Plain(Vec::new()),
        Compression::Gzip => Sink::Gzip(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::best(),
        )),
        Compression::Zstd => {
            Sink::Zstd(zstd::stream::write::Encoder::new(Vec::new(), 3).expect("zstd"))
        }
    };
    Encoder {
        hash: sha2::Sha256::new(),
        sink,
    }
}

impl Encoder {
    fn write(&mut self, b: &[u8]) {
        self.hash.update(b);
        match &mut self.sink {
            Sink::Plain(v) => v.extend_from_slice(b),
            Sink::Gzip(e) => e.write_all(b).expect("gzip"),
            Sink::Zstd(e) => e.write_all(b).expect("zstd"),
        }
    }

    fn finish(self) -> Layer {
        Layer {
            diff_id: format!("sha256:{}", hex::encode(self.hash.finalize())),
            blob: match self.sink {
                Sink::Plain(v) => v,
                Sink::Gzip(e) => e.finish().expect("gzip"),
                Sink::Zstd(e) => e.finish().expect("zstd"),
            },
        }
    }
}

fn header(name: &str, kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_path(name).expect("tar path");
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    h
}

/// A tar layer with these regular files (and their parent directories as
/// the tar lists them: not at all).
pub fn layer(files: &[(&str, &[u8])], c: Compression) -> Layer {
    let mut e = encoder(c);
    for (name, data) in files {
        let h = header(name, tar::EntryType::Regular, data.len() as u64, 0o644);
        e.write(h.as_bytes());
        e.write(data);
        e.write(&vec![0u8; (512 - data.len() % 512) % 512]);
    }
    e.write(&[0u8; 1024]);
    e.finish()
}

/// A layer of `files` files of `each` zero bytes: `files × each` bytes
/// uncompressed, a tiny fraction of that compressed. Generated as a stream.
pub fn zeros_layer(files: usize, each: u64, c: Compression) -> Layer {
    assert_eq!(each % 512, 0, "whole tar blocks");
    let mut e = encoder(c);
    let zeros = vec![0u8; 1 << 20];
    for i in 0..files {
        let h = header(&format!("zero-{i}"), tar::EntryType::Regular, each, 0o644);
        e.write(h.as_bytes());
        let mut left = each;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            e.write(&zeros[..n]);
            left -= n as u64;
        }
    }
    e.write(&[0u8; 1024]);
    e.finish()
}

/// A docker-archive (`docker save` output) being put together.
#[derive(Debug, Default)]
pub struct DockerArchive {
    files: Vec<(String, Vec<u8>)>,
    manifest: Vec<serde_json::Value>,
}

impl DockerArchive {
    /// An empty archive.
    pub fn new() -> DockerArchive {
        DockerArchive::default()
    }

    /// Adds an image: `config` gets `rootfs` from `layers` (and `os`,
    /// `architecture` if it has none); the layers are stored by digest.
    pub fn image(
        &mut self,
        mut config: serde_json::Value,
        layers: &[&Layer],
        tags: &[&str],
    ) -> &mut DockerArchive {
        let diff_ids: Vec<&str> = layers.iter().map(|l| l.diff_id.as_str()).collect();
        config["rootfs"] = serde_json::json!({"type": "layers", "diff_ids": diff_ids});
        for (k, v) in [("os", "linux"), ("architecture", host_arch())] {
            if config.get(k).is_none() {
                config[k] = v.into();
            }
        }
        let config = config.to_string().into_bytes();
        let config_name = format!("{}.json", &sha256(&config)[7..]);
        self.files.push((config_name.clone(), config));
        let mut paths = Vec::new();
        for l in layers {
            let path = format!("{}/layer.tar", &sha256(&l.blob)[7..]);
            if !self.files.iter().any(|(p, _)| *p == path) {
                self.files.push((path.clone(), l.blob.clone()));
            }
            paths.push(path);
        }
        self.manifest.push(serde_json::json!({
            "Config": config_name, "RepoTags": tags, "Layers": paths,
        }));
        self
    }

    /// Adds a file as it is (for archives that lie).
    pub fn file(&mut self, path: &str, data: &[u8]) -> &mut DockerArchive {
        self.files.push((path.to_owned(), data.to_vec()));
        self
    }

    /// The archive, with `manifest.json` last (as `docker save` writes it).
    pub fn bytes(&self) -> Vec<u8> {
        let mut t = tar::Builder::new(Vec::new());
        let manifest = serde_json::to_vec(&self.manifest).expect("json");
        for (path, data) in self
            .files
            .iter()
            .map(|(p, d)| (p.as_str(), d.as_slice()))
            .chain([("manifest.json", manifest.as_slice())])
        {
            let mut h = header(path, tar::EntryType::Regular, data.len() as u64, 0o644);
            t.append_data(&mut h, path, data).expect("tar");
        }
        t.into_inner().expect("tar")
    }

    /// Writes the archive to `path`.
    pub fn write(&self, path: &std::path::Path) {
        std::fs::write(path, self.bytes()).expect("write the archive");
    }
}

/// The host's architecture as image configs name it.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}
