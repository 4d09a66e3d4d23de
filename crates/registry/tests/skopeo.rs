//! Interoperability with a real client: skopeo copies a hand-made OCI
//! layout into the registry and back out, and the manifest survives byte
//! for byte. Skipped (with the reason printed) where skopeo is missing.

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::{Value, json};

/// Writes `bytes` as a blob of the layout at `dir`; returns its descriptor
/// fields.
fn blob(dir: &Path, bytes: &[u8]) -> (String, usize) {
    let d = sha256(bytes);
    let path = dir
        .join("blobs/sha256")
        .join(d.strip_prefix("sha256:").unwrap());
    std::fs::write(path, bytes).unwrap();
    (d, bytes.len())
}

/// A one-layer image in OCI layout at `dir`, tagged `tag`; returns the
/// manifest bytes.
fn make_layout(dir: &Path, tag: &str) -> Vec<u8> {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    // a layer: hello.txt, as tar, gzipped
    let mut tar = tar::Builder::new(Vec::new());
    let content = b"hello from berth's registry\n";
    let mut h = tar::Header::new_ustar();
    h.set_path("hello.txt").unwrap();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    tar.append(&h, &content[..]).unwrap();
    let tar = tar.into_inner().unwrap();
    let diff_id = sha256(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    let layer = gz.finish().unwrap();
    let (ld, ls) = blob(dir, &layer);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/true"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }))
    .unwrap();
    let (cd, cs) = blob(dir, &config);
    let manifest = manifest(
        (OCI_CONFIG, &cd, cs),
        &[(OCI_LAYER, &ld, ls)],
        Some(json!({"annotations": {"org.example.test": "skopeo"}})),
    );
    let (md, ms) = blob(dir, &manifest);
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": OCI_MANIFEST, "digest": md, "size": ms,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    }))
    .unwrap();
    std::fs::write(dir.join("index.json"), index).unwrap();
    manifest
}

fn skopeo(args: &[&str]) -> std::process::Output {
    let out = Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_round_trip_keeps_the_manifest() {
    if Command::new("skopeo").arg("--version").output().is_err() {
        eprintln!("skipping: skopeo is not installed");
        return;
    }
    let reg = Registry::start().await;
    let work = tempfile::tempdir().unwrap();
    let (src, back) = (work.path().join("src"), work.path().join("back"));
    let manifest = make_layout(&src, "v1");
    let digest = sha256(&manifest);
    let remote = format!("docker://{}/test/img:v1", reg.host());
    let src_ref = format!("oci:{}:v1", src.display());
    let back_ref = format!("oci:{}:v1", back.display());

    tokio::task::spawn_blocking(move || {
        skopeo(&["copy", "--dest-tls-verify=false", &src_ref, &remote]);
        let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &remote]);
        assert_eq!(raw.stdout, manifest, "the registry serves the pushed bytes");
        skopeo(&["copy", "--src-tls-verify=false", &remote, &back_ref]);
    })
    .await
    .unwrap();

    // the registry agrees on the digest
    let r = reg.get("/v2/test/img/manifests/v1").await;
    assert_eq!(header(&r, "Docker-Content-Digest"), digest);
    assert_eq!(header(&r, "Content-Type"), OCI_MANIFEST);
    // and the copy that came back names the same manifest
    let index: Value =
        serde_json::from_slice(&std::fs::read(back.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], digest);
    let hex = digest.strip_prefix("sha256:").unwrap();
    assert_eq!(
        sha256(&std::fs::read(back.join("blobs/sha256").join(hex)).unwrap()),
        digest
    );
    let r = reg.get("/v2/_catalog").await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["repositories"], json!(["test/img"]));
}
