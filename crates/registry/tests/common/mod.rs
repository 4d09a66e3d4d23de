//! Shared helpers: a registry on 127.0.0.1:0 in-process, an HTTP client,
//! and small builders for blobs and manifests.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};

use berth_registry::Config;
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256, Sha512};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// Installs ring as rustls' provider (reqwest is built without one).
pub fn crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn client() -> Client {
    crypto();
    Client::builder().build().unwrap()
}

/// A running registry.
pub struct Registry {
    pub base: String,
    pub root: PathBuf,
    pub client: Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), berth_registry::Error>>>,
    _dir: Option<tempfile::TempDir>,
}

impl Registry {
    /// A registry over a fresh temporary directory.
    pub async fn start() -> Registry {
        Registry::start_with(|_| {}).await
    }

    /// A registry whose config `f` adjusts (root is a fresh tempdir).
    pub async fn start_with(f: impl FnOnce(&mut Config)) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Registry::start_at(dir.path(), f).await;
        r._dir = Some(dir);
        r
    }

    /// A registry over `root` (kept).
    pub async fn start_at(root: &Path, f: impl FnOnce(&mut Config)) -> Registry {
        let mut config = Config {
            addr: "127.0.0.1:0".parse().unwrap(),
            root: root.to_path_buf(),
            ..Default::default()
        };
        f(&mut config);
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let server = berth_registry::bind(config).await.unwrap();
        let addr = server.local_addr();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(server.run(async {
            let _ = rx.await;
        }));
        Registry {
            base: format!("{scheme}://{addr}"),
            root: root.to_path_buf(),
            client: client(),
            stop: Some(tx),
            task: Some(task),
            _dir: None,
        }
    }

    /// `host:port`.
    pub fn host(&self) -> &str {
        self.base.split("://").nth(1).unwrap()
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn req(&self, method: Method, path: &str) -> Response {
        self.client
            .request(method, self.url(path))
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> Response {
        self.req(Method::GET, path).await
    }

    /// Pushes a blob monolithically (`POST ?digest=`).
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let d = sha256(data);
        let r = self
            .client
            .post(self.url(&format!("/v2/{repo}/blobs/uploads/?digest={d}")))
            .header("Content-Type", "application/octet-stream")
            .body(data.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "push blob {d}");
        d
    }

    /// Pushes a manifest; returns the response.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Response {
        self.client
            .put(self.url(&format!("/v2/{repo}/manifests/{reference}")))
            .header("Content-Type", media_type)
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
    }

    /// Pushes a small image (config + one layer) to `repo:tag`; returns the
    /// manifest bytes and digest.
    pub async fn push_image(&self, repo: &str, tag: &str, seed: &str) -> (Vec<u8>, String) {
        let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":"{seed}"}}"#);
        let layer = format!("layer of {seed}");
        let cd = self.push_blob(repo, config.as_bytes()).await;
        let ld = self.push_blob(repo, layer.as_bytes()).await;
        let m = manifest(
            (OCI_CONFIG, &cd, config.len()),
            &[(OCI_LAYER, &ld, layer.len())],
            None,
        );
        let r = self.put_manifest(repo, tag, OCI_MANIFEST, &m).await;
        assert_eq!(r.status(), StatusCode::CREATED, "push image {repo}:{tag}");
        let d = sha256(&m);
        (m, d)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

pub fn sha256(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

pub fn sha512(b: &[u8]) -> String {
    format!("sha512:{}", hex::encode(Sha512::digest(b)))
}

/// An OCI image manifest; `extra` is merged in at the top level.
pub fn manifest(
    config: (&str, &str, usize),
    layers: &[(&str, &str, usize)],
    extra: Option<Value>,
) -> Vec<u8> {
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": config.0, "digest": config.1, "size": config.2},
        "layers": layers.iter().map(|(mt, d, s)| json!({"mediaType": mt, "digest": d, "size": s})).collect::<Vec<_>>(),
    });
    if let Some(Value::Object(extra)) = extra {
        for (k, v) in extra {
            m[k] = v;
        }
    }
    serde_json::to_vec(&m).unwrap()
}

/// An OCI index of `(media type, digest, size)`.
pub fn index(entries: &[(&str, &str, usize)], extra: Option<Value>) -> Vec<u8> {
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": entries.iter().map(|(mt, d, s)| json!({"mediaType": mt, "digest": d, "size": s})).collect::<Vec<_>>(),
    });
    if let Some(Value::Object(extra)) = extra {
        for (k, v) in extra {
            m[k] = v;
        }
    }
    serde_json::to_vec(&m).unwrap()
}

/// The first error code of a spec error body.
pub async fn error_code(r: Response) -> String {
    let v: Value = r.json().await.unwrap();
    v["errors"][0]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

pub fn header(r: &Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// Files under `dir`, recursively.
pub fn count_files(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| {
            if e.path().is_dir() {
                count_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}
