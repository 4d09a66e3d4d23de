//! HTTP Basic authentication and TLS.

mod common;

use berth_registry::Auth;
use common::*;
use reqwest::StatusCode;

#[tokio::test]
async fn basic_auth_plain_password() {
    let reg = Registry::start_with(|c| {
        c.auth = Some(Auth::from_user_password("alice:wonderland").unwrap());
    })
    .await;
    for path in ["/v2/", "/v2/_catalog", "/v2/a/tags/list"] {
        let r = reg.get(path).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(header(&r, "WWW-Authenticate"), "Basic realm=\"berth\"");
        assert_eq!(error_code(r).await, "UNAUTHORIZED");
    }
    let r = reg
        .client
        .get(reg.url("/v2/"))
        .basic_auth("alice", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = reg
        .client
        .get(reg.url("/v2/"))
        .basic_auth("alice", Some("wonderland"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = reg
        .client
        .post(reg.url(&format!("/v2/a/blobs/uploads/?digest={}", sha256(b"x"))))
        .basic_auth("alice", Some("wonderland"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn basic_auth_htpasswd_bcrypt() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("htpasswd");
    let hash = bcrypt::hash("hunter2", 4).unwrap();
    std::fs::write(
        &file,
        format!("# registry users\nbob:{hash}\ncarol:plain\n"),
    )
    .unwrap();
    let auth = Auth::from_htpasswd(&file).unwrap();
    let reg = Registry::start_with(|c| c.auth = Some(auth)).await;
    for (user, pass, want) in [
        ("bob", "hunter2", StatusCode::OK),
        ("bob", "hunter2", StatusCode::OK), // remembered the second time
        ("bob", "hunter3", StatusCode::UNAUTHORIZED),
        ("carol", "plain", StatusCode::OK),
        ("dave", "plain", StatusCode::UNAUTHORIZED),
    ] {
        let r = reg
            .client
            .get(reg.url("/v2/"))
            .basic_auth(user, Some(pass))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), want, "{user}:{pass}");
    }
    std::fs::write(&file, "eve:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n").unwrap();
    assert!(matches!(
        Auth::from_htpasswd(&file),
        Err(berth_registry::Error::Auth(_))
    ));
}

#[tokio::test]
async fn tls_with_a_self_signed_certificate() {
    crypto();
    let dir = tempfile::tempdir().unwrap();
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert_pem = ck.cert.pem();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, &cert_pem).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let reg = Registry::start_with(|c| c.tls = Some((cert.clone(), key.clone()))).await;
    assert!(reg.base.starts_with("https://"));

    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap()])
        .build()
        .unwrap();
    let r = client.get(reg.url("/v2/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.version(), reqwest::Version::HTTP_2, "ALPN offers h2");
    let d = sha256(b"over tls");
    let r = client
        .post(reg.url(&format!("/v2/t/blobs/uploads/?digest={d}")))
        .body("over tls")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = client
        .get(reg.url(&format!("/v2/t/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap(), "over tls");

    // plain HTTP to the TLS port fails; a client that does not trust the
    // certificate is refused
    let plain = reqwest::Client::new()
        .get(format!("http://{}/v2/", reg.host()))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    let untrusting = reqwest::Client::new().get(reg.url("/v2/")).send().await;
    assert!(untrusting.is_err());

    // a missing key file is a clear error
    let bad = berth_registry::bind(berth_registry::Config {
        addr: "127.0.0.1:0".parse().unwrap(),
        root: dir.path().join("root2"),
        tls: Some((cert, dir.path().join("missing.pem"))),
        ..Default::default()
    })
    .await;
    assert!(matches!(bad, Err(berth_registry::Error::Tls(_))));
}
