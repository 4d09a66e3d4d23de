//! Blob endpoints: pull with `Range`, delete, and every upload flavour
//! (monolithic, POST+PUT, chunked, streamed, mount, cancel), with their
//! error cases.

mod common;

use common::*;
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn ping_and_unknown_endpoints() {
    let reg = Registry::start().await;
    let r = reg.get("/v2/").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        header(&r, "Docker-Distribution-API-Version"),
        "registry/2.0"
    );
    let r = reg.get("/v2/a/nothing-here").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "UNSUPPORTED");
    let r = reg.req(Method::POST, "/v2/a/tags/list").await;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(error_code(r).await, "UNSUPPORTED");
}

#[tokio::test]
async fn invalid_names_and_digests() {
    let reg = Registry::start().await;
    for path in [
        "/v2/Upper/tags/list",
        "/v2/a..b/tags/list",
        "/v2/a//b/manifests/latest",
        "/v2/-a/blobs/uploads/",
        "/v2/a_/referrers/sha256:00",
    ] {
        let r = reg.get(path).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(error_code(r).await, "NAME_INVALID", "{path}");
    }
    for path in [
        "/v2/a/blobs/sha256:abc",
        "/v2/a/blobs/md5:0000",
        "/v2/a/manifests/sha256:baddigeststring",
        "/v2/a/referrers/sha256:xyz",
    ] {
        let r = reg.get(path).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(error_code(r).await, "DIGEST_INVALID", "{path}");
    }
}

#[tokio::test]
async fn monolithic_push_head_get_range_and_delete() {
    let reg = Registry::start().await;
    let data: Vec<u8> = (0..2048u32).map(|i| (i % 251) as u8).collect();
    let d = reg.push_blob("org/app", &data).await;

    let r = reg
        .req(Method::HEAD, &format!("/v2/org/app/blobs/{d}"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "Content-Length"), "2048");
    assert_eq!(header(&r, "Docker-Content-Digest"), d);
    assert!(r.bytes().await.unwrap().is_empty());

    let r = reg.get(&format!("/v2/org/app/blobs/{d}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "Docker-Content-Digest"), d);
    assert_eq!(r.bytes().await.unwrap(), data);

    let range = |spec: &'static str| {
        let reg = &reg;
        let d = d.clone();
        async move {
            reg.client
                .get(reg.url(&format!("/v2/org/app/blobs/{d}")))
                .header("Range", spec)
                .send()
                .await
                .unwrap()
        }
    };
    for (spec, a, b) in [
        ("bytes=500-1499", 500, 1499),
        ("bytes=500-", 500, 2047),
        ("bytes=-500", 1548, 2047),
        ("bytes=2000-5000", 2000, 2047),
    ] {
        let r = range(spec).await;
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT, "{spec}");
        assert_eq!(
            header(&r, "Content-Range"),
            format!("bytes {a}-{b}/2048"),
            "{spec}"
        );
        assert_eq!(header(&r, "Content-Length"), (b - a + 1).to_string());
        assert_eq!(r.bytes().await.unwrap(), &data[a..=b], "{spec}");
    }
    for spec in ["bytes=500-0", "bytes=5000-10000"] {
        let r = range(spec).await;
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE, "{spec}");
        assert_eq!(header(&r, "Content-Range"), "bytes */2048");
    }

    // the blob is only visible in the repository it was pushed to
    let r = reg.get(&format!("/v2/org/other/blobs/{d}")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "BLOB_UNKNOWN");

    let r = reg
        .req(Method::DELETE, &format!("/v2/org/app/blobs/{d}"))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = reg
        .req(Method::HEAD, &format!("/v2/org/app/blobs/{d}"))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = reg
        .req(Method::DELETE, &format!("/v2/org/app/blobs/{d}"))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "BLOB_UNKNOWN");
    // nothing links it any more: the content store dropped it
    assert_eq!(count_files(&reg.root.join("content/blobs")), 0);
}

#[tokio::test]
async fn bad_digest_stores_nothing() {
    let reg = Registry::start().await;
    let wrong = sha256(b"something else");
    let r = reg
        .client
        .post(reg.url(&format!("/v2/a/blobs/uploads/?digest={wrong}")))
        .body("the real content")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r).await, "DIGEST_INVALID");

    // POST then PUT with a wrong digest: 400, and the session is gone
    let r = reg.req(Method::POST, "/v2/a/blobs/uploads/").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let loc = header(&r, "Location");
    let r = reg
        .client
        .put(reg.url(&format!("{loc}?digest={wrong}")))
        .body("the real content")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
    let r = reg.get(&loc).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "BLOB_UPLOAD_UNKNOWN");

    // closing without a digest is refused and keeps the session
    let r = reg.req(Method::POST, "/v2/a/blobs/uploads/").await;
    let loc = header(&r, "Location");
    let r = reg.req(Method::PUT, &loc).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
    assert_eq!(reg.get(&loc).await.status(), StatusCode::NO_CONTENT);

    assert_eq!(count_files(&reg.root.join("content/blobs")), 0);
    assert_eq!(count_files(&reg.root.join("content/ingest")), 0);
    // only the still-open session's file
    assert_eq!(count_files(&reg.root.join("uploads")), 1);
}

#[tokio::test]
async fn chunked_upload_in_order_out_of_order_status_and_put_chunk() {
    let reg = Registry::start().await;
    let data: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 256) as u8).collect();
    let d = sha256(&data);

    let r = reg.req(Method::POST, "/v2/x/y/blobs/uploads/").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&r, "Range"), "0-0");
    let uuid = header(&r, "Docker-Upload-UUID");
    let loc = header(&r, "Location");
    assert_eq!(loc, format!("/v2/x/y/blobs/uploads/{uuid}"));

    let patch = |loc: String, range: String, body: Vec<u8>| {
        let reg = &reg;
        async move {
            reg.client
                .patch(reg.url(&loc))
                .header("Content-Type", "application/octet-stream")
                .header("Content-Range", range)
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    let r = patch(loc.clone(), "0-999".into(), data[..1000].to_vec()).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&r, "Range"), "0-999");
    let loc = header(&r, "Location");

    // a chunk that skips ahead, and one that starts over: 416
    for range in ["2000-2999", "0-999"] {
        let (a, b): (usize, usize) = {
            let (a, b) = range.split_once('-').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        };
        let r = patch(loc.clone(), range.into(), data[a..=b].to_vec()).await;
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
        assert_eq!(header(&r, "Range"), "0-999");
        assert_eq!(error_code(r).await, "BLOB_UPLOAD_INVALID");
    }
    // a chunk shorter than its Content-Range says is refused and undone
    let r = patch(loc.clone(), "1000-1999".into(), data[1000..1500].to_vec()).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r).await, "SIZE_INVALID");

    let r = reg.get(&loc).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "Range"), "0-999");
    assert_eq!(header(&r, "Docker-Upload-UUID"), uuid);

    let r = patch(loc.clone(), "1000-1999".into(), data[1000..2000].to_vec()).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&r, "Range"), "0-1999");

    // the last chunk travels with the closing PUT
    let r = reg
        .client
        .put(reg.url(&format!("{loc}?digest={d}")))
        .header("Content-Range", "2000-2999")
        .body(data[2000..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "Location"), format!("/v2/x/y/blobs/{d}"));
    assert_eq!(header(&r, "Docker-Content-Digest"), d);
    let r = reg.get(&format!("/v2/x/y/blobs/{d}")).await;
    assert_eq!(r.bytes().await.unwrap(), data);
    // the session is over
    assert_eq!(reg.get(&loc).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(count_files(&reg.root.join("uploads")), 0);
}

#[tokio::test]
async fn streamed_patch_post_put_sha512_and_cancel() {
    let reg = Registry::start().await;
    // PATCH without Content-Range appends the whole body
    let data = b"streamed without a content range".to_vec();
    let r = reg.req(Method::POST, "/v2/s/blobs/uploads/").await;
    let r = reg
        .client
        .patch(reg.url(&header(&r, "Location")))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&r, "Range"), format!("0-{}", data.len() - 1));
    let loc = header(&r, "Location");
    let r = reg
        .req(Method::PUT, &format!("{loc}?digest={}", sha256(&data)))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    // sha512, announced with digest-algorithm and not
    for announce in [true, false] {
        let data = format!("sha512 content {announce}").into_bytes();
        let d = sha512(&data);
        let start = if announce {
            "/v2/s/blobs/uploads/?digest-algorithm=sha512"
        } else {
            "/v2/s/blobs/uploads/"
        };
        let r = reg.req(Method::POST, start).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let r = reg
            .client
            .put(reg.url(&format!("{}?digest={d}", header(&r, "Location"))))
            .body(data.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "announce {announce}");
        assert_eq!(header(&r, "Docker-Content-Digest"), d);
        let r = reg.get(&format!("/v2/s/blobs/{d}")).await;
        assert_eq!(r.bytes().await.unwrap(), data);
    }
    let r = reg
        .req(Method::POST, "/v2/s/blobs/uploads/?digest-algorithm=md5")
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // the empty blob, monolithically
    let d = reg.push_blob("s", b"").await;
    let r = reg.req(Method::HEAD, &format!("/v2/s/blobs/{d}")).await;
    assert_eq!(header(&r, "Content-Length"), "0");

    // cancel
    let r = reg.req(Method::POST, "/v2/s/blobs/uploads/").await;
    let loc = header(&r, "Location");
    let r = reg.req(Method::DELETE, &loc).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = reg.req(Method::DELETE, &loc).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "BLOB_UPLOAD_UNKNOWN");

    // a session belongs to its repository
    let r = reg.req(Method::POST, "/v2/s/blobs/uploads/").await;
    let uuid = header(&r, "Docker-Upload-UUID");
    let r = reg.get(&format!("/v2/other/blobs/uploads/{uuid}")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = reg.get("/v2/s/blobs/uploads/not-a-session").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn mount_from_another_repository() {
    let reg = Registry::start().await;
    let d = reg.push_blob("src/repo", b"shared layer").await;

    let r = reg
        .req(
            Method::POST,
            &format!("/v2/dst/repo/blobs/uploads/?mount={d}&from=src/repo"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "Location"), format!("/v2/dst/repo/blobs/{d}"));
    assert_eq!(header(&r, "Docker-Content-Digest"), d);
    let r = reg.get(&format!("/v2/dst/repo/blobs/{d}")).await;
    assert_eq!(r.bytes().await.unwrap(), "shared layer");

    // not in the named source: an upload session instead
    let r = reg
        .req(
            Method::POST,
            &format!("/v2/third/blobs/uploads/?mount={d}&from=nowhere"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert!(header(&r, "Location").starts_with("/v2/third/blobs/uploads/"));
    let missing = sha256(b"never pushed");
    let r = reg
        .req(
            Method::POST,
            &format!("/v2/third/blobs/uploads/?mount={missing}&from=src/repo"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);

    // without `from`, any repository holding it will do
    let r = reg
        .req(
            Method::POST,
            &format!("/v2/fourth/blobs/uploads/?mount={d}"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    // one copy in the store; deleting from one repository keeps it for the others
    assert_eq!(count_files(&reg.root.join("content/blobs")), 1);
    let r = reg
        .req(Method::DELETE, &format!("/v2/src/repo/blobs/{d}"))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(
        reg.get(&format!("/v2/dst/repo/blobs/{d}")).await.status(),
        StatusCode::OK
    );
    assert_eq!(count_files(&reg.root.join("content/blobs")), 1);
    for repo in ["dst/repo", "fourth"] {
        let r = reg
            .req(Method::DELETE, &format!("/v2/{repo}/blobs/{d}"))
            .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    assert_eq!(count_files(&reg.root.join("content/blobs")), 0);
}

#[tokio::test]
async fn state_survives_a_restart_and_stale_uploads_are_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::start_at(dir.path(), |_| {}).await;
    let (m, d) = reg.push_image("keep/me", "v1", "restart").await;
    let r = reg.req(Method::POST, "/v2/keep/me/blobs/uploads/").await;
    let loc = header(&r, "Location");
    assert_eq!(count_files(&dir.path().join("uploads")), 1);
    reg.stop().await;

    let reg = Registry::start_at(dir.path(), |_| {}).await;
    let r = reg.get("/v2/keep/me/manifests/v1").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "Docker-Content-Digest"), d);
    assert_eq!(r.bytes().await.unwrap(), m);
    assert_eq!(reg.get(&loc).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(count_files(&dir.path().join("uploads")), 0);
    reg.stop().await;
}

#[tokio::test]
async fn concurrent_uploads_of_the_same_blob() {
    let reg = Registry::start().await;
    let data = vec![42u8; 1 << 20];
    let d = sha256(&data);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (client, url) = (
            reg.client.clone(),
            reg.url(&format!("/v2/c{i}/blobs/uploads/?digest={d}")),
        );
        let data = data.clone();
        tasks.push(tokio::spawn(async move {
            client.post(url).body(data).send().await.unwrap().status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::CREATED);
    }
    assert_eq!(count_files(&reg.root.join("content/blobs")), 1);
    for i in 0..8 {
        let r = reg.req(Method::HEAD, &format!("/v2/c{i}/blobs/{d}")).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
}
