//! Manifest endpoints, referrers, tag listing and the catalog.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

#[tokio::test]
async fn push_pull_head_by_tag_and_digest() {
    let reg = Registry::start().await;
    let (m, d) = reg.push_image("lib/app", "v1", "one").await;
    for reference in ["v1", d.as_str()] {
        let r = reg.get(&format!("/v2/lib/app/manifests/{reference}")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "Content-Type"), OCI_MANIFEST);
        assert_eq!(header(&r, "Docker-Content-Digest"), d);
        assert_eq!(header(&r, "Content-Length"), m.len().to_string());
        assert_eq!(r.bytes().await.unwrap(), m, "byte for byte");
        let r = reg
            .req(Method::HEAD, &format!("/v2/lib/app/manifests/{reference}"))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "Content-Length"), m.len().to_string());
        assert_eq!(header(&r, "Docker-Content-Digest"), d);
    }
    // pushing by digest: the Location names the digest
    let r = reg.put_manifest("lib/app", &d, OCI_MANIFEST, &m).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "Location"), format!("/v2/lib/app/manifests/{d}"));
    assert_eq!(header(&r, "Docker-Content-Digest"), d);

    // unknown ones
    let r = reg.get("/v2/lib/app/manifests/nope").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "MANIFEST_UNKNOWN");
    let r = reg.get("/v2/no/such/repo/manifests/v1").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "NAME_UNKNOWN");
    let r = reg
        .get(&format!("/v2/lib/app/manifests/{}", sha256(b"x")))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn refused_manifests_store_nothing() {
    let reg = Registry::start_with(|c| c.max_manifest_bytes = 64 * 1024).await;
    let cd = reg.push_blob("r", b"{}").await;
    let missing = sha256(b"a layer nobody pushed");
    let files = || count_files(&reg.root.join("content/blobs"));
    let before = files();

    // a layer the repository does not have
    let m = manifest((OCI_CONFIG, &cd, 2), &[(OCI_LAYER, &missing, 21)], None);
    let r = reg.put_manifest("r", "t", OCI_MANIFEST, &m).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["errors"][0]["code"], "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(v["errors"][0]["detail"]["digest"], missing);

    // the digest in the URL does not match the body
    let good = manifest((OCI_CONFIG, &cd, 2), &[], None);
    let r = reg
        .put_manifest("r", &sha256(b"other"), OCI_MANIFEST, &good)
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
    let r = reg
        .put_manifest("r", "sha256:baddigeststring", OCI_MANIFEST, &good)
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // too large: 413, with and without a declared length
    let big = manifest(
        (OCI_CONFIG, &cd, 2),
        &[],
        Some(json!({"annotations": {"pad": "x".repeat(70 * 1024)}})),
    );
    let r = reg.put_manifest("r", "big", OCI_MANIFEST, &big).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(r).await, "MANIFEST_INVALID");
    let stream = futures::stream::iter(
        big.chunks(8192)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let r = reg
        .client
        .put(reg.url("/v2/r/manifests/big"))
        .header("Content-Type", OCI_MANIFEST)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // schema 1, bad JSON, a transport/document mismatch, unknown types
    let schema1 = br#"{"schemaVersion":1,"name":"r","tag":"t","fsLayers":[]}"#;
    let r = reg
        .put_manifest(
            "r",
            "s1",
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            schema1,
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r).await, "MANIFEST_INVALID");
    let r = reg
        .put_manifest("r", "bad", OCI_MANIFEST, b"{not json")
        .await;
    assert_eq!(error_code(r).await, "MANIFEST_INVALID");
    let r = reg.put_manifest("r", "bad", OCI_INDEX, &good).await;
    assert_eq!(error_code(r).await, "MANIFEST_INVALID");
    let r = reg
        .put_manifest(
            "r",
            "bad",
            "application/vnd.oci.artifact.manifest.v1+json",
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.artifact.manifest.v1+json"}"#,
        )
        .await;
    assert_eq!(error_code(r).await, "MANIFEST_INVALID");
    let r = reg.put_manifest("r", "-bad-tag", OCI_MANIFEST, &good).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // an index whose entry is not in the repository
    let idx = index(&[(OCI_MANIFEST, &sha256(b"nope"), 10)], None);
    let r = reg.put_manifest("r", "idx", OCI_INDEX, &idx).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r).await, "MANIFEST_BLOB_UNKNOWN");

    assert_eq!(files(), before, "nothing new in the content store");
    let r = reg.get("/v2/r/tags/list").await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["tags"], json!([]));
}

#[tokio::test]
async fn docker_types_indexes_tag_params_and_deletes() {
    let reg = Registry::start().await;
    let cd = reg.push_blob("d", b"{\"os\":\"linux\"}").await;
    let ld = reg.push_blob("d", b"docker layer").await;
    let dm = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "digest": cd, "size": 15},
        "layers": [
            {"mediaType": DOCKER_LAYER, "digest": ld, "size": 12},
            {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
             "digest": sha256(b"foreign"), "size": 7, "urls": ["https://example.invalid/x"]}
        ],
    }))
    .unwrap();
    let r = reg.put_manifest("d", "docker", DOCKER_MANIFEST, &dm).await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "foreign layers need not exist"
    );
    let dd = sha256(&dm);
    let list = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST,
        "manifests": [{"mediaType": DOCKER_MANIFEST, "digest": dd, "size": dm.len(),
                       "platform": {"architecture": "amd64", "os": "linux"}}],
    }))
    .unwrap();
    let ld_ = sha256(&list);
    let r = reg
        .client
        .put(reg.url(&format!("/v2/d/manifests/{ld_}?tag=a&tag=b")))
        .header("Content-Type", DOCKER_LIST)
        .body(list.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let tags: Vec<_> = r
        .headers()
        .get_all("OCI-Tag")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(tags, ["a", "b"]);
    let r = reg.get("/v2/d/manifests/b").await;
    assert_eq!(header(&r, "Content-Type"), DOCKER_LIST);
    assert_eq!(r.bytes().await.unwrap(), list);

    // an OCI index (no mediaType field: told by Content-Type)
    let oci_idx = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": DOCKER_MANIFEST, "digest": dd, "size": dm.len()}],
    }))
    .unwrap();
    let r = reg
        .put_manifest("d", "oci-index", OCI_INDEX, &oci_idx)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = reg.get("/v2/d/manifests/oci-index").await;
    assert_eq!(header(&r, "Content-Type"), OCI_INDEX);

    // deleting a tag leaves the manifest
    let r = reg.req(Method::DELETE, "/v2/d/manifests/a").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(
        reg.get("/v2/d/manifests/a").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        reg.get(&format!("/v2/d/manifests/{ld_}")).await.status(),
        StatusCode::OK
    );
    let r = reg.req(Method::DELETE, "/v2/d/manifests/a").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "MANIFEST_UNKNOWN");
    // deleting by digest removes it and its remaining tags
    let r = reg
        .req(Method::DELETE, &format!("/v2/d/manifests/{ld_}"))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    for reference in [ld_.as_str(), "b"] {
        let r = reg
            .req(Method::HEAD, &format!("/v2/d/manifests/{reference}"))
            .await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
    let r = reg
        .req(Method::DELETE, &format!("/v2/d/manifests/{ld_}"))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn sha512_manifest_by_digest() {
    let reg = Registry::start().await;
    let cd = reg.push_blob("h", b"{}").await;
    let m = manifest((OCI_CONFIG, &cd, 2), &[], None);
    let d = sha512(&m);
    let r = reg.put_manifest("h", &d, OCI_MANIFEST, &m).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "Docker-Content-Digest"), d);
    let r = reg.get(&format!("/v2/h/manifests/{d}")).await;
    assert_eq!(header(&r, "Docker-Content-Digest"), d);
    assert_eq!(r.bytes().await.unwrap(), m);
}

#[tokio::test]
async fn referrers_with_subject_and_filters() {
    let reg = Registry::start().await;
    let repo = "ref/repo";
    let (subject, sd) = reg.push_image(repo, "base", "subject").await;
    let empty = reg.push_blob(repo, b"{}").await;
    let sig = reg.push_blob(repo, b"signature bytes").await;
    let subj = json!({"mediaType": OCI_MANIFEST, "digest": sd, "size": subject.len()});

    // an artifact with artifactType
    let a1 = manifest(
        (OCI_EMPTY, &empty, 2),
        &[("application/vnd.example.sig", &sig, 15)],
        Some(json!({
            "artifactType": "application/vnd.example.sig",
            "subject": subj,
            "annotations": {"org.example.k": "v1"},
        })),
    );
    let r = reg
        .put_manifest(repo, &sha256(&a1), OCI_MANIFEST, &a1)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "OCI-Subject"), sd);
    // one without: its config media type stands in
    let cfg = reg.push_blob(repo, b"{\"sbom\":true}").await;
    let a2 = manifest(
        ("application/vnd.example.sbom.config", &cfg, 13),
        &[],
        Some(json!({"subject": subj})),
    );
    let r = reg.put_manifest(repo, "sbom", OCI_MANIFEST, &a2).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "OCI-Subject"), sd);
    // an index with a subject and no artifactType
    let a3 = index(
        &[(OCI_MANIFEST, &sha256(&a1), a1.len())],
        Some(json!({"subject": subj, "annotations": {"x": "y"}})),
    );
    let r = reg.put_manifest(repo, &sha256(&a3), OCI_INDEX, &a3).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // a subject that does not exist (yet) is fine
    let ghost = json!({"mediaType": OCI_MANIFEST, "digest": sha256(b"ghost"), "size": 5});
    let a4 = manifest(
        (OCI_EMPTY, &empty, 2),
        &[],
        Some(json!({"artifactType": "application/vnd.example.sig", "subject": ghost})),
    );
    let r = reg.put_manifest(repo, "ghost", OCI_MANIFEST, &a4).await;
    assert_eq!(r.status(), StatusCode::CREATED);

    let r = reg.get(&format!("/v2/{repo}/referrers/{sd}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "Content-Type"), OCI_INDEX);
    assert!(header(&r, "OCI-Filters-Applied").is_empty());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["schemaVersion"], 2);
    assert_eq!(v["mediaType"], OCI_INDEX);
    let entries = v["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    let find = |d: &str| entries.iter().find(|e| e["digest"] == d).unwrap().clone();
    let e1 = find(&sha256(&a1));
    assert_eq!(e1["artifactType"], "application/vnd.example.sig");
    assert_eq!(e1["mediaType"], OCI_MANIFEST);
    assert_eq!(e1["size"], a1.len());
    assert_eq!(e1["annotations"]["org.example.k"], "v1");
    let e2 = find(&sha256(&a2));
    assert_eq!(e2["artifactType"], "application/vnd.example.sbom.config");
    let e3 = find(&sha256(&a3));
    assert_eq!(e3["mediaType"], OCI_INDEX);
    assert!(e3.get("artifactType").is_none());
    assert_eq!(e3["annotations"]["x"], "y");

    let r = reg
        .get(&format!(
            "/v2/{repo}/referrers/{sd}?artifactType=application/vnd.example.sig"
        ))
        .await;
    assert_eq!(header(&r, "OCI-Filters-Applied"), "artifactType");
    let v: Value = r.json().await.unwrap();
    let entries = v["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["digest"], sha256(&a1));

    // no referrers, or no such repository: an empty index, never 404
    for path in [
        format!("/v2/{repo}/referrers/{}", sha256(b"nothing")),
        format!("/v2/not/there/referrers/{sd}"),
    ] {
        let r = reg.get(&path).await;
        assert_eq!(r.status(), StatusCode::OK);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["manifests"], json!([]));
    }

    // deleting a referrer removes it from the list
    let r = reg
        .req(
            Method::DELETE,
            &format!("/v2/{repo}/manifests/{}", sha256(&a3)),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let v: Value = reg
        .get(&format!("/v2/{repo}/referrers/{sd}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn tag_list_pagination() {
    let reg = Registry::start().await;
    let (m, _) = reg.push_image("p", "b", "tags").await;
    for t in ["a", "C", "d", "e"] {
        let r = reg.put_manifest("p", t, OCI_MANIFEST, &m).await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let list = |q: &'static str| {
        let reg = &reg;
        async move {
            let r = reg.get(&format!("/v2/p/tags/list{q}")).await;
            assert_eq!(r.status(), StatusCode::OK, "{q}");
            let link = header(&r, "Link");
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["name"], "p");
            (v["tags"].clone(), link)
        }
    };
    let (all, link) = list("").await;
    assert_eq!(all, json!(["C", "a", "b", "d", "e"]), "ASCIIbetical");
    assert!(link.is_empty());
    let (page, link) = list("?n=2").await;
    assert_eq!(page, json!(["C", "a"]));
    assert_eq!(link, "</v2/p/tags/list?n=2&last=a>; rel=\"next\"");
    let next = link
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .to_owned();
    let r = reg.get(&next).await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["tags"], json!(["b", "d"]));
    let (page, link) = list("?n=2&last=d").await;
    assert_eq!(page, json!(["e"]));
    assert!(link.is_empty());
    let (page, _) = list("?last=b").await;
    assert_eq!(page, json!(["d", "e"]));
    let (page, link) = list("?n=0").await;
    assert_eq!(page, json!([]));
    assert!(link.is_empty());

    let r = reg.get("/v2/p/tags/list?n=-1").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = reg.get("/v2/unknown/tags/list").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "NAME_UNKNOWN");
}

#[tokio::test]
async fn catalog_pagination_and_cap() {
    let reg = Registry::start_with(|c| c.max_catalog_n = 3).await;
    for repo in ["b/x", "a", "c", "b", "d/e/f"] {
        reg.push_blob(repo, repo.as_bytes()).await;
    }
    let get = |q: &'static str| {
        let reg = &reg;
        async move {
            let r = reg.get(&format!("/v2/_catalog{q}")).await;
            assert_eq!(r.status(), StatusCode::OK);
            let link = header(&r, "Link");
            let v: Value = r.json().await.unwrap();
            (v["repositories"].clone(), link)
        }
    };
    let (page, link) = get("").await;
    assert_eq!(page, json!(["a", "b", "b/x"]), "capped at max_catalog_n");
    assert_eq!(link, "</v2/_catalog?n=3&last=b/x>; rel=\"next\"");
    let (page, link) = get("?n=100&last=b/x").await;
    assert_eq!(page, json!(["c", "d/e/f"]));
    assert!(link.is_empty());
    let (page, link) = get("?n=1").await;
    assert_eq!(page, json!(["a"]));
    assert_eq!(link, "</v2/_catalog?n=1&last=a>; rel=\"next\"");
    let (page, link) = get("?n=0").await;
    assert_eq!(page, json!([]));
    assert!(link.is_empty());

    // a repository whose last blob is deleted leaves the catalog
    let d = sha256(b"a");
    let r = reg.req(Method::DELETE, &format!("/v2/a/blobs/{d}")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let (page, _) = get("?n=1").await;
    assert_eq!(page, json!(["b"]));
}
