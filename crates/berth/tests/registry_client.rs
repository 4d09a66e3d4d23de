//! `berth pull` / `berth push` against the reference registry (Debian's
//! docker-registry, distribution 2.8) and against a scripted server that
//! plays token services, flaky networks and hostile registries.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use berth_testutil::fake_registry::{FakeServer, Request, Response};
use berth_testutil::{Berth, busybox_tar, docker_registry, root_or_skip};
use sha2::Digest as _;

fn berth() -> Berth {
    Berth::new(Path::new(env!("CARGO_BIN_EXE_berth")))
}

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(b)))
}

#[test]
fn push_and_pull_with_the_reference_registry() {
    if !root_or_skip("registry push/pull") {
        return;
    }
    let Some(reg) = docker_registry(None) else {
        return;
    };
    let b = berth();
    let tar = busybox_tar(b.dir.path());
    b.ok(&[
        "import",
        "-c",
        r#"CMD ["echo", "pulled and running"]"#,
        tar.to_str().unwrap(),
        "local/bb:1",
    ]);
    let a = format!("{}/team/app:v1", reg.addr());
    let other = format!("{}/other/app:v2", reg.addr());
    b.ok(&["tag", "local/bb:1", &a]);
    let out = b.ok(&["push", &a]);
    assert!(
        out.starts_with(&format!(
            "The push refers to repository [{}/team/app]",
            reg.addr()
        )),
        "{out}"
    );
    assert!(out.contains(": Pushed"), "{out}");
    let pushed = out.lines().last().unwrap().to_owned();
    assert!(
        pushed.starts_with("v1: digest: sha256:") && pushed.contains(" size: "),
        "{pushed}"
    );
    let digest = pushed.split_whitespace().nth(2).unwrap().to_owned();
    // the same layer to another repository is mounted, not uploaded
    b.ok(&["tag", "local/bb:1", &other]);
    let out = b.ok(&["push", &other]);
    assert!(out.contains("Mounted from team/app"), "{out}");
    // pushing again: the registry has everything
    let out = b.ok(&["push", &a]);
    assert!(out.contains("Layer already exists"), "{out}");

    // the registry has what berth pushed, byte for byte
    let o = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{a}"),
        ])
        .output();
    if let Ok(o) = o {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(
            sha(&o.stdout),
            digest,
            "skopeo sees the manifest berth pushed"
        );
    }

    b.ok(&["rmi", "local/bb:1", &a, &other]);
    assert_eq!(b.ok(&["images", "-q"]).trim(), "");
    let out = b.ok(&["pull", &a]);
    assert!(out.contains("v1: Pulling from team/app"), "{out}");
    assert!(out.contains("Pull complete"), "{out}");
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {a}")),
        "{out}"
    );
    assert_eq!(out.lines().last().unwrap(), a);
    let out = b.ok(&["pull", &a]);
    assert!(out.contains("Status: Image is up to date"), "{out}");
    let repo_digests = b.ok(&["image", "inspect", "--format", "{{json .RepoDigests}}", &a]);
    assert!(
        repo_digests.contains(&format!("{}/team/app@{digest}", reg.addr())),
        "{repo_digests}"
    );
    assert_eq!(b.ok(&["run", "--rm", &a]).trim(), "pulled and running");

    // by digest
    b.ok(&["rmi", &a]);
    let by_digest = format!("{}/team/app@{digest}", reg.addr());
    b.ok(&["pull", &by_digest]);
    assert_eq!(
        b.ok(&["run", "--rm", &by_digest]).trim(),
        "pulled and running"
    );

    // run pulls what is missing
    let o = b.run(&["run", "--rm", &other]);
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "pulled and running"
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Unable to find image"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // missing tags and repositories: clear errors, nothing named
    let before = b.ok(&["images", "-q"]);
    let err = b.fails(&["pull", &format!("{}/team/app:nosuch", reg.addr())]);
    assert!(
        err.contains("manifest unknown") || err.contains("not found"),
        "{err}"
    );
    let err = b.fails(&["pull", &format!("{}/nobody/here:1", reg.addr())]);
    assert!(!err.is_empty());
    assert_eq!(b.ok(&["images", "-q"]), before);
    let err = b.fails(&["push", &format!("{}/team/app:notlocal", reg.addr())]);
    assert!(err.contains("does not exist locally"), "{err}");
}

#[test]
fn basic_auth_with_the_docker_config_file() {
    if !root_or_skip("registry basic auth") {
        return;
    }
    let Ok(hash) = Command::new("htpasswd")
        .args(["-Bbn", "alice", "s3cret"])
        .output()
    else {
        eprintln!("skipping: htpasswd is not installed (apt-get install apache2-utils)");
        return;
    };
    let Some(reg) = docker_registry(Some(&String::from_utf8_lossy(&hash.stdout))) else {
        return;
    };
    let b = berth();
    let tar = busybox_tar(b.dir.path());
    let name = format!("{}/private/bb:1", reg.addr());
    b.ok(&["import", tar.to_str().unwrap(), &name]);
    let err = b.fails(&["push", &name]);
    assert!(err.contains("requires a user name and password"), "{err}");
    use base64_encode as enc;
    b.docker_config(&serde_json::json!({"auths": {reg.addr(): {"auth": enc("alice:wrong")}}}));
    let err = b.fails(&["push", &name]);
    assert!(
        err.to_lowercase().contains("unauthorized") || err.contains("401"),
        "{err}"
    );
    b.docker_config(&serde_json::json!({"auths": {reg.addr(): {"auth": enc("alice:s3cret")}}}));
    b.ok(&["push", &name]);
    b.ok(&["rmi", &name]);
    b.ok(&["pull", &name]);
}

fn base64_encode(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn docker_hub_names_come_from_a_mirror() {
    if !root_or_skip("registry mirror") {
        return;
    }
    let Some(reg) = docker_registry(None) else {
        return;
    };
    let b = berth();
    let tar = busybox_tar(b.dir.path());
    // the mirror holds library/busybox, as a pull-through cache would
    let on_mirror = format!("{}/library/busybox:latest", reg.addr());
    b.ok(&[
        "import",
        "-c",
        r#"CMD ["echo", "from the mirror"]"#,
        tar.to_str().unwrap(),
        &on_mirror,
    ]);
    b.ok(&["push", &on_mirror]);
    b.ok(&["rmi", &on_mirror]);
    b.config(&serde_json::json!({"registry-mirrors": [format!("http://{}", reg.addr())]}));
    let out = b.ok(&["pull", "busybox"]);
    assert!(
        out.starts_with("Using default tag: latest\nlatest: Pulling from library/busybox"),
        "{out}"
    );
    assert_eq!(
        out.lines().last().unwrap(),
        "docker.io/library/busybox:latest"
    );
    assert_eq!(
        b.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
            .trim(),
        "busybox:latest"
    );
    assert_eq!(b.ok(&["run", "--rm", "busybox"]).trim(), "from the mirror");
}

/// A one-layer image (an uncompressed tar layer) as a registry serves it.
#[derive(Clone)]
struct Img {
    config: Vec<u8>,
    layer: Vec<u8>,
    manifest: Vec<u8>,
}

impl Img {
    fn new(dir: &Path, size: usize, layer_type: &str) -> Img {
        let d = dir.join(format!("layer-src-{size}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("data.bin"),
            (0..size).map(|i| (i * 7 % 251) as u8).collect::<Vec<_>>(),
        )
        .unwrap();
        std::fs::write(d.join("hello"), "hi\n").unwrap();
        let t = dir.join(format!("layer-{size}.tar"));
        assert!(
            Command::new("tar")
                .arg("-C")
                .arg(&d)
                .arg("-cf")
                .arg(&t)
                .args(["data.bin", "hello"])
                .status()
                .unwrap()
                .success()
        );
        let layer = std::fs::read(&t).unwrap();
        let config = serde_json::json!({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/hello"]},
            "rootfs": {"type": "layers", "diff_ids": [sha(&layer)]}})
        .to_string()
        .into_bytes();
        let manifest = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&config), "size": config.len()},
            "layers": [{"mediaType": layer_type, "digest": sha(&layer), "size": layer.len()}]})
        .to_string()
        .into_bytes();
        Img {
            config,
            layer,
            manifest,
        }
    }
}

impl Img {
    /// An image of one layer blob (any compression) with the diff id its
    /// config claims.
    fn of(layer: Vec<u8>, layer_type: &str, diff_id: &str) -> Img {
        let config = serde_json::json!({"architecture": berth_testutil::archives::host_arch(), "os": "linux",
            "config": {"Cmd": ["/hello"]}, "rootfs": {"type": "layers", "diff_ids": [diff_id]}})
        .to_string()
        .into_bytes();
        let manifest = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&config), "size": config.len()},
            "layers": [{"mediaType": layer_type, "digest": sha(&layer), "size": layer.len()}]})
        .to_string()
        .into_bytes();
        Img {
            config,
            layer,
            manifest,
        }
    }
}

/// Serves `img` as `t/img:1`; `tweak` may answer first.
fn serve(
    img: Img,
    tweak: impl Fn(&Request) -> Option<Response> + Send + Sync + 'static,
) -> FakeServer {
    FakeServer::start(move |req| {
        if let Some(r) = tweak(req) {
            return r;
        }
        let blob = |b: &[u8]| {
            if let Some(from) = req
                .header("range")
                .and_then(|r| r.strip_prefix("bytes="))
                .and_then(|r| r.strip_suffix('-'))
            {
                let from: usize = from.parse().unwrap();
                return Response::new(206, b[from..].to_vec()).header(
                    "Content-Range",
                    &format!("bytes {from}-{}/{}", b.len() - 1, b.len()),
                );
            }
            Response::new(200, b.to_vec())
        };
        let p = req.path.as_str();
        if p == "/v2/" {
            Response::new(200, "{}")
        } else if p == "/v2/t/img/manifests/1"
            || p == format!("/v2/t/img/manifests/{}", sha(&img.manifest))
        {
            Response::new(200, img.manifest.clone())
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        } else if p == format!("/v2/t/img/blobs/{}", sha(&img.config)) {
            blob(&img.config)
        } else if p == format!("/v2/t/img/blobs/{}", sha(&img.layer)) {
            blob(&img.layer)
        } else {
            Response::new(
                404,
                r#"{"errors":[{"code":"NOT_FOUND","message":"not here"}]}"#,
            )
        }
    })
}

fn blob_gets(s: &FakeServer, digest: &str) -> Vec<Request> {
    s.requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.ends_with(digest))
        .collect()
}

fn assert_nothing_kept(b: &Berth) {
    assert_eq!(b.ok(&["images", "-q"]).trim(), "", "no image named");
    let ingest = b.root().join("content/ingest");
    assert_eq!(
        std::fs::read_dir(&ingest).map(|d| d.count()).unwrap_or(0),
        0,
        "no partial downloads left"
    );
}

#[test]
fn bearer_tokens_from_the_realm_with_configured_credentials() {
    let b = berth();
    let img = Img::new(b.dir.path(), 1000, "application/vnd.oci.image.layer.v1.tar");
    let realm_hits = Arc::new(AtomicUsize::new(0));
    let hits = realm_hits.clone();
    let s = serve(img, move |req| {
        if req.path.starts_with("/token?") {
            hits.fetch_add(1, Ordering::Relaxed);
            if req.header("authorization") != Some(&format!("Basic {}", base64_encode("bob:pw"))) {
                return Some(Response::new(401, "no"));
            }
            return Some(Response::new(200, r#"{"token":"T-123","expires_in":300}"#));
        }
        if req.header("authorization") != Some("Bearer T-123") {
            let realm = format!("http://{}/token", req.header("host").unwrap_or_default());
            return Some(
                Response::new(
                    401,
                    r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
                )
                .header(
                    "WWW-Authenticate",
                    &format!(
                        r#"Bearer realm="{realm}",service="fake",scope="repository:t/img:pull""#
                    ),
                ),
            );
        }
        None
    });
    let name = format!("{}/t/img:1", s.addr);
    let err = b.fails(&["pull", &name]);
    assert!(err.contains("refused the credentials"), "{err}");
    b.docker_config(
        &serde_json::json!({"auths": {s.addr.clone(): {"username": "bob", "password": "pw"}}}),
    );
    b.ok(&["pull", &name]);
    let token_reqs: Vec<_> = s
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/token?"))
        .collect();
    let last = token_reqs.last().unwrap();
    assert!(
        last.path.contains("service=fake")
            && last.path.contains("scope=repository%3At%2Fimg%3Apull"),
        "{}",
        last.path
    );
    assert!(realm_hits.load(Ordering::Relaxed) >= 2);
}

#[test]
fn a_truncated_download_resumes_with_a_range_request() {
    let b = berth();
    let img = Img::new(
        b.dir.path(),
        3 << 20,
        "application/vnd.oci.image.layer.v1.tar",
    );
    let layer = sha(&img.layer);
    let full = img.layer.clone();
    let l2 = layer.clone();
    let s = serve(img, move |req| {
        if req.path.ends_with(&l2) && req.header("range").is_none() {
            return Some(Response {
                cut_after: Some(full.len() / 3),
                ..Response::new(200, full.clone())
            });
        }
        None
    });
    let out = b.ok(&["pull", &format!("{}/t/img:1", s.addr)]);
    assert!(out.contains("Retrying (1)"), "{out}");
    let gets = blob_gets(&s, &layer);
    assert_eq!(gets.len(), 2, "one cut, one resumed");
    let range = gets[1].header("range").unwrap();
    assert!(
        range.starts_with("bytes=") && range != "bytes=0-",
        "resumed where it stopped: {range}"
    );
    let id = b.ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}}",
        &format!("{}/t/img:1", s.addr),
    ]);
    assert!(id.starts_with("sha256:"));
}

#[test]
fn corrupt_or_hostile_registries_fail_clearly_and_leave_nothing() {
    let b = berth();
    b.config(&serde_json::json!({"max-download-attempts": 2}));
    let img = Img::new(b.dir.path(), 5000, "application/vnd.oci.image.layer.v1.tar");
    let layer = sha(&img.layer);

    // a blob whose bytes do not match its digest
    let l = layer.clone();
    let s = serve(img.clone(), move |req| {
        req.path
            .ends_with(&l)
            .then(|| Response::new(200, vec![b'x'; 5000 + 10240]))
    });
    let err = b.fails(&["pull", &format!("{}/t/img:1", s.addr)]);
    assert!(
        err.contains("mismatch") || err.contains("more than"),
        "{err}"
    );
    assert_nothing_kept(&b);
    assert!(
        !b.root()
            .join(format!("content/blobs/sha256/{}", &layer[7..]))
            .exists()
    );

    // garbage instead of a manifest; a schema 1 manifest; an oversize one
    for (body, want) in [
        (b"<html>oops</html>".to_vec(), "invalid manifest"),
        (br#"{"schemaVersion":1,"name":"x","tag":"1","fsLayers":[]}"#.to_vec(), "schema 1"),
        (br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":null,"layers":null}"#.to_vec(), "invalid manifest"),
        (vec![b' '; 5 << 20], "limit"),
    ] {
        let s = serve(img.clone(), move |req| {
            req.path.contains("/manifests/").then(|| Response::new(200, body.clone()).header("Content-Type", "application/vnd.oci.image.manifest.v1+json"))
        });
        let err = b.fails(&["pull", &format!("{}/t/img:1", s.addr)]);
        assert!(err.contains(want), "want {want:?}: {err}");
        assert_nothing_kept(&b);
    }

    // a manifest that is not what the digest names
    let m = sha(&img.manifest);
    let s = serve(img.clone(), move |req| {
        req.path
            .contains("/manifests/sha256:")
            .then(|| Response::new(200, br#"{"schemaVersion":2}"#.to_vec()))
    });
    let err = b.fails(&["pull", &format!("{}/t/img@{m}", s.addr)]);
    assert!(err.contains("digest"), "{err}");
    assert_nothing_kept(&b);

    // a registry failing with 500: retried (max-download-attempts), then a clear error
    let l = layer.clone();
    let s = serve(img.clone(), move |req| {
        req.path.ends_with(&l).then(|| Response::new(500, "boom"))
    });
    let err = b.fails(&["pull", &format!("{}/t/img:1", s.addr)]);
    assert!(err.contains("500"), "{err}");
    assert_eq!(blob_gets(&s, &layer).len(), 2, "two attempts");
    assert_nothing_kept(&b);

    // a layer media type berth cannot unpack
    let odd = Img::new(b.dir.path(), 100, "application/x-unknown-layer");
    let s = serve(odd, |_| None);
    let err = b.fails(&["pull", &format!("{}/t/img:1", s.addr)]);
    assert!(
        err.contains("not supported yet") && err.contains("application/x-unknown-layer"),
        "{err}"
    );
    assert_nothing_kept(&b);

    // nothing listening at all
    let err = b.fails(&["pull", "127.0.0.1:9/t/img:1"]);
    // dockerd's words: `Get "http://127.0.0.1:9/v2/": dial tcp …: connection refused`
    assert!(
        err.contains("dial tcp 127.0.0.1:9") && err.contains("connection refused"),
        "{err}"
    );
}

#[test]
fn foreign_layer_urls_are_never_fetched() {
    let b = berth();
    let img = Img::new(
        b.dir.path(),
        100,
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    );
    let elsewhere = FakeServer::start(|_| Response::new(200, "should never be asked"));
    let mut m: serde_json::Value = serde_json::from_slice(&img.manifest).unwrap();
    m["layers"][0]["urls"] = serde_json::json!([format!("http://{}/layer", elsewhere.addr)]);
    let img = Img {
        manifest: m.to_string().into_bytes(),
        ..img
    };
    let l = sha(&img.layer);
    let s = serve(img, move |req| {
        req.path.ends_with(&l).then(|| Response::new(404, ""))
    });
    let err = b.fails(&["pull", &format!("{}/t/img:1", s.addr)]);
    assert!(err.contains("never downloads from a layer's urls"), "{err}");
    assert!(elsewhere.requests().is_empty());
}

#[test]
fn an_index_yields_the_host_platform_or_lists_what_it_has() {
    let b = berth();
    let img = Img::new(b.dir.path(), 100, "application/vnd.oci.image.layer.v1.tar");
    let entry = |arch: &str, digest: &str, size: usize| {
        serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": size,
            "platform": {"os": "linux", "architecture": arch}})
    };
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry("arm64", &format!("sha256:{}", "a".repeat(64)), 10), entry("amd64", &sha(&img.manifest), img.manifest.len())]})
    .to_string();
    let idx = index.clone();
    let s = serve(img.clone(), move |req| {
        (req.path == "/v2/t/img/manifests/multi").then(|| {
            Response::new(200, idx.clone())
                .header("Content-Type", "application/vnd.oci.image.index.v1+json")
        })
    });
    let name = format!("{}/t/img:multi", s.addr);
    let out = b.ok(&["pull", &name]);
    assert!(
        out.contains(&format!("Digest: {}", sha(index.as_bytes()))),
        "the name records the index digest: {out}"
    );
    let inspect = b.ok(&["image", "inspect", "--format", "{{.Architecture}}", &name]);
    assert_eq!(inspect.trim(), "amd64");
    let err = b.fails(&["pull", "--platform", "linux/s390x", &name]);
    assert!(
        err.contains("no matching manifest for linux/s390x")
            && err.contains("linux/arm64")
            && err.contains("linux/amd64"),
        "{err}"
    );
}

/// `berth registry serve` (TLS, basic auth) as the registry of `berth push`
/// and `berth pull`, and skopeo reading what berth pushed.
#[test]
fn berth_registry_serve_with_tls_and_auth() {
    if !root_or_skip("berth registry") {
        return;
    }
    let b = berth();
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert, key) = (b.dir.path().join("cert.pem"), b.dir.path().join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let port = berth_testutil::free_port();
    let reg_root = b.dir.path().join("registry-root");
    let mut server = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["registry", "serve", "--addr", &format!("127.0.0.1:{port}")])
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .env("BERTH_ROOT", &reg_root)
        .env("BERTH_REGISTRY_AUTH", "alice:pw")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    berth_testutil::cli::wait_port(port, &mut server, "berth registry");
    let _server = Kill(server);
    assert!(
        reg_root.join("registry/registry.db").exists(),
        "the registry keeps its data under <root>/registry"
    );

    let tar = busybox_tar(b.dir.path());
    let name = format!("127.0.0.1:{port}/me/bb:1");
    b.ok(&[
        "import",
        "-c",
        r#"CMD ["echo", "via berth registry"]"#,
        tar.to_str().unwrap(),
        &name,
    ]);
    let err = b.fails(&["push", &name]);
    assert!(err.contains("requires a user name and password"), "{err}");
    b.docker_config(&serde_json::json!({"auths": {format!("127.0.0.1:{port}"): {"auth": base64_encode("alice:pw")}}}));
    let out = b.ok(&["push", &name]);
    let digest = out
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .nth(2)
        .unwrap()
        .to_owned();
    b.ok(&["rmi", &name]);
    b.ok(&["pull", &name]);
    assert_eq!(b.ok(&["run", "--rm", &name]).trim(), "via berth registry");

    if let Ok(o) = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            "alice:pw",
            &format!("docker://{name}"),
        ])
        .output()
    {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(sha(&o.stdout), digest);
    }
}

/// A pull that fails, at any stage, leaves the store exactly as it was:
/// the tag keeps pointing at the image it had, and no row, blob, snapshot
/// or partial download of the failed pull is left.
#[test]
fn a_failed_pull_leaves_the_store_as_it_was() {
    use berth_testutil::archives::{Compression, layer, zeros_layer};
    let b = berth();
    b.config(&serde_json::json!({"max-download-attempts": 1}));
    const GZ: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    let good = layer(&[("hello", b"good\n")], Compression::Gzip);
    let other = layer(&[("hello", b"other\n")], Compression::Gzip);
    let bomb = zeros_layer(24, 4 << 20, Compression::Gzip);
    let images = [
        // 0: what the tag points at first
        Img::of(good.blob.clone(), GZ, &good.diff_id),
        // 1: a layer whose bytes are not what its config says
        Img::of(other.blob.clone(), GZ, &good.diff_id),
        // 2: a layer that inflates past its limit
        Img::of(bomb.blob.clone(), GZ, &bomb.diff_id),
        // 3: the registry serves wrong bytes for the layer's digest (below)
        Img::of(other.blob.clone(), GZ, &other.diff_id),
        // 4: the registry lacks the layer (below)
        Img::of(other.blob.clone(), GZ, &other.diff_id),
    ];
    let mode = Arc::new(AtomicUsize::new(0));
    let m = mode.clone();
    let s = FakeServer::start(move |req| {
        let n = m.load(Ordering::Relaxed);
        let img = &images[n];
        let p = req.path.as_str();
        if p == "/v2/" {
            Response::new(200, "{}")
        } else if p == "/v2/t/img/manifests/1" {
            Response::new(200, img.manifest.clone())
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        } else if p == format!("/v2/t/img/blobs/{}", sha(&img.config)) {
            Response::new(200, img.config.clone())
        } else if p == format!("/v2/t/img/blobs/{}", sha(&img.layer)) && n != 4 {
            let mut body = img.layer.clone();
            if n == 3 {
                body[20] ^= 0xff;
            }
            Response::new(200, body)
        } else {
            Response::new(
                404,
                r#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}"#,
            )
        }
    });
    let name = format!("{}/t/img:1", s.addr);
    b.ok(&["pull", &name]);
    let first = b.ok(&["image", "inspect", "--format", "{{.Id}}", &name]);
    let before = b.store_state();
    for (n, want) in [
        (1, "diff id mismatch"),
        (2, "max-layer-expansion"),
        (3, "mismatch"),
        (4, "blob unknown"),
    ] {
        mode.store(n, Ordering::Relaxed);
        let err = b.fails(&["pull", &name]);
        assert!(err.contains(want), "case {n}: {err}");
        assert_eq!(b.store_state(), before, "case {n}");
        assert_eq!(
            b.ok(&["image", "inspect", "--format", "{{.Id}}", &name]),
            first,
            "the tag did not move"
        );
    }
    // and a good new version then pulls
    mode.store(0, Ordering::Relaxed);
    b.ok(&["pull", &name]);
}

/// `kill -9` during a download leaves a partial blob in `content/ingest/`:
/// the next berth to open the root removes it, but not while its pull is
/// still running (here: stalled by the registry).
#[test]
fn a_killed_pull_is_swept_and_a_running_one_is_not() {
    use berth_testutil::cli::{names_in, wait_for};
    use std::sync::atomic::AtomicBool;
    let b = berth();
    let empty = b.store_state();
    let img = Img::new(
        b.dir.path(),
        3 << 20,
        "application/vnd.oci.image.layer.v1.tar",
    );
    let layer = sha(&img.layer);
    let full = img.layer.clone();
    let go = Arc::new(AtomicBool::new(false));
    let g = go.clone();
    let s = serve(img, move |req| {
        req.path.ends_with(&layer).then(|| Response {
            stall_after: Some((full.len() / 2, g.clone())),
            ..Response::new(200, full.clone())
        })
    });
    let mut child = berth_testutil::cli::Reaped(
        b.cmd(&["pull", &format!("{}/t/img:1", s.addr)])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let ingest = b.root().join("content/ingest");
    let half = (3 << 20) / 2;
    let partial = wait_for("the pull to write half the layer", || {
        names_in(&ingest)
            .into_iter()
            .find(|n| std::fs::metadata(ingest.join(n)).is_ok_and(|m| m.len() >= half))
    });
    b.ok(&["images"]);
    assert!(
        ingest.join(&partial).exists(),
        "a running pull's partial blob is not swept"
    );
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    go.store(true, Ordering::Relaxed);
    assert_eq!(names_in(&ingest), [partial], "left behind");
    b.ok(&["images"]);
    assert_eq!(
        names_in(&ingest),
        Vec::<String>::new(),
        "swept at the next open"
    );
    // the config blob it had stored is unreferenced: prune takes it
    b.ok(&["image", "prune", "-f"]);
    assert_eq!(b.store_state(), empty);
}

/// A store of the image library's own (per-request credentials are an API
/// for the Docker API and the cluster agent, not a CLI flag).
fn lib_store(dir: &Path) -> berth_image::ImageStore {
    berth_image::ImageStore::open_with(
        dir,
        berth_image::unpack::UnpackOptions {
            unprivileged: !rustix::process::geteuid().is_root(),
            ..Default::default()
        },
    )
    .unwrap()
}

/// A client that reads no Docker config file.
fn bare_client(opts: berth_image::registry::RegistryOptions) -> berth_image::registry::Client {
    berth_image::registry::Client::new(berth_image::registry::RegistryOptions {
        docker_config: None,
        retries: 0,
        ..opts
    })
}

fn pull_lib(
    store: &berth_image::ImageStore,
    client: &berth_image::registry::Client,
    name: &str,
) -> berth_image::Result<berth_image::registry::Pulled> {
    store.pull(
        client,
        &berth_types::Reference::parse(name).unwrap(),
        &berth_types::image::Platform::host(),
        Arc::new(berth_image::registry::Quiet),
    )
}

/// A tool a test needs: missing is a failure under CI=true, else a skip.
fn have(tool: &str, probe: &[&str]) -> bool {
    let ok = Command::new(tool).args(probe).output().is_ok();
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{tool} is not installed (CI=true)"
        );
        eprintln!("skipping: {tool} is not installed");
    }
    ok
}

/// Credentials given for one request (Docker's X-Registry-Auth) against
/// the reference registry with htpasswd: with them push and pull work,
/// without them (and with no config file) the registry refuses; they are
/// never written anywhere.
#[test]
fn per_request_credentials_with_the_reference_registry() {
    use berth_image::registry::AuthConfig;
    use berth_types::ErrorKind;
    if !have("htpasswd", &["-h"]) || !have("docker-registry", &["--version"]) {
        return;
    }
    let hash = Command::new("htpasswd")
        .args(["-Bbn", "alice", "s3cret-pw"])
        .output()
        .unwrap();
    let reg = docker_registry(Some(&String::from_utf8_lossy(&hash.stdout))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = lib_store(&dir.path().join("a"));
    let name = format!("{}/private/img:1", reg.addr());
    let r = berth_types::Reference::parse(&name).unwrap();
    let l = berth_testutil::archives::layer(
        &[("hello", b"hi\n")],
        berth_testutil::archives::Compression::None,
    );
    store
        .import(
            std::io::Cursor::new(l.blob),
            Default::default(),
            None,
            Some(&r),
        )
        .unwrap();
    let client = bare_client(Default::default());
    let quiet = || Arc::new(berth_image::registry::Quiet);
    let err = store.push(&client, &name, &r, quiet()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    let wrong = client.with_auth(&reg.addr(), AuthConfig::basic("alice", "nope"));
    let err = store.push(&wrong, &name, &r, quiet()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    let alice = client.with_auth(&reg.addr(), AuthConfig::basic("alice", "s3cret-pw"));
    store.push(&alice, &name, &r, quiet()).unwrap();

    let other = lib_store(&dir.path().join("b"));
    let err = pull_lib(&other, &client, &name).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    assert!(
        err.to_string()
            .contains("requires a user name and password"),
        "{err}"
    );
    let elsewhere = client.with_auth(
        "registry.example:5000",
        AuthConfig::basic("alice", "s3cret-pw"),
    );
    let err = pull_lib(&other, &elsewhere, &name).unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Unauthorized,
        "credentials for another registry: {err}"
    );
    assert!(other.list().unwrap().is_empty());
    let pulled = pull_lib(&other, &alice, &name).unwrap();
    assert_eq!(other.resolve(&name).unwrap().id, pulled.record.id);
    // never persisted: no file under either root holds the password
    let out = Command::new("grep")
        .args(["-rl", "s3cret-pw"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Docker's other two kinds of request credentials: an identity token is
/// exchanged at the token service with an OAuth2 refresh-token POST, a
/// registry token goes to the registry as is.
#[test]
fn identity_and_registry_tokens_from_the_request() {
    use berth_image::registry::AuthConfig;
    let dir = tempfile::tempdir().unwrap();
    let img = Img::new(dir.path(), 100, "application/vnd.oci.image.layer.v1.tar");
    let s = serve(img.clone(), move |req| {
        if req.path == "/token" {
            let body = String::from_utf8_lossy(&req.body);
            let ok = req.method == "POST"
                && body.contains("grant_type=refresh_token")
                && body.contains("refresh_token=R-1")
                && body.contains("scope=repository%3At%2Fimg%3Apull");
            return Some(if ok {
                Response::new(200, r#"{"access_token":"A-1","expires_in":300}"#)
            } else {
                Response::new(401, "no")
            });
        }
        if req.header("authorization") != Some("Bearer A-1") {
            let realm = format!("http://{}/token", req.header("host").unwrap_or_default());
            return Some(Response::new(401, "").header(
                "WWW-Authenticate",
                &format!(r#"Bearer realm="{realm}",service="fake""#),
            ));
        }
        None
    });
    let name = format!("{}/t/img:1", s.addr);
    let client = bare_client(Default::default());
    let store = lib_store(&dir.path().join("a"));
    let err = pull_lib(&store, &client, &name).unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");
    let with = client.with_auth(
        &s.addr,
        AuthConfig {
            identity_token: "R-1".into(),
            ..Default::default()
        },
    );
    pull_lib(&store, &with, &name).unwrap();
    let posts: Vec<_> = s
        .requests()
        .into_iter()
        .filter(|r| r.path == "/token" && r.method == "POST")
        .collect();
    assert!(!posts.is_empty());
    assert!(posts.iter().all(|r| r.header("authorization").is_none()));

    // a registry token: no token service at all
    let s = serve(img, move |req| {
        (req.path != "/v2/" && req.header("authorization") != Some("Bearer RT-9"))
            .then(|| Response::new(401, "").header("WWW-Authenticate", r#"Basic realm="x""#))
    });
    let name = format!("{}/t/img:1", s.addr);
    let store = lib_store(&dir.path().join("b"));
    let with = client.with_auth(
        &s.addr,
        AuthConfig {
            registry_token: "RT-9".into(),
            ..Default::default()
        },
    );
    pull_lib(&store, &with, &name).unwrap();
}

/// Request credentials for Docker Hub never reach a mirror, and a
/// registry redirecting a blob elsewhere does not pass them on.
#[test]
fn request_credentials_never_reach_a_mirror_or_a_redirect() {
    use berth_image::registry::{AuthConfig, RegistryOptions};
    let dir = tempfile::tempdir().unwrap();
    let img = Img::new(dir.path(), 100, "application/vnd.oci.image.layer.v1.tar");
    // a mirror of Docker Hub holding t/img
    let mirror = serve(img.clone(), |_| None);
    let client = bare_client(RegistryOptions {
        mirrors: vec![format!("http://{}", mirror.addr)],
        ..Default::default()
    })
    .with_auth("docker.io", AuthConfig::basic("hub-user", "hub-pw"));
    let store = lib_store(&dir.path().join("a"));
    pull_lib(&store, &client, "t/img:1").unwrap();
    assert!(!mirror.requests().is_empty());
    assert!(
        mirror
            .requests()
            .iter()
            .all(|r| r.header("authorization").is_none()),
        "the mirror saw credentials"
    );

    // blobs redirected to another host
    let img_layer = img.layer.clone();
    let elsewhere = serve(img.clone(), |_| None);
    let target = elsewhere.addr.clone();
    let layer = sha(&img.layer);
    let s = serve(img, move |req| {
        if req.header("authorization").is_none() {
            return Some(Response::new(401, "").header("WWW-Authenticate", r#"Basic realm="x""#));
        }
        req.path.ends_with(&layer).then(|| {
            Response::new(307, "").header("Location", &format!("http://{target}{}", req.path))
        })
    });
    let name = format!("{}/t/img:1", s.addr);
    let client = bare_client(Default::default()).with_auth(&s.addr, AuthConfig::basic("u", "p"));
    let store = lib_store(&dir.path().join("b"));
    pull_lib(&store, &client, &name).unwrap();
    let got: Vec<_> = elsewhere.requests();
    assert!(
        got.iter().any(|r| r.path.ends_with(&sha(&img_layer))),
        "the blob came from the redirect target: {got:?}"
    );
    assert!(
        got.iter().all(|r| r.header("authorization").is_none()),
        "the redirect target saw credentials"
    );
}
