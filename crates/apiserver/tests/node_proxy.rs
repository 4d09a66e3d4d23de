//! The streaming subresources through the API server to a fake kubelet (a
//! small TLS server that requires the cluster CA's client certificates):
//! a followed log streams as the kubelet writes it, a kubelet's error
//! becomes a Status, an exec WebSocket is relayed both ways after the
//! kubelet's 101, a pod without a node is refused as kube refuses it, and
//! nodes/{name}/proxy reaches the kubelet's path.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use berth_apiserver::Api;
use berth_apiserver::auth::pki::{Pki, client_config};
use berth_apiserver::request::Target;
use futures::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::Role;

/// What the fake kubelet saw.
#[derive(Default)]
struct Seen {
    requests: Vec<String>,
    client_names: Vec<String>,
}

struct FakeKubelet {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    release: Arc<tokio::sync::Notify>,
}

async fn fake_kubelet(pki: &Pki) -> FakeKubelet {
    let (cert, key) = pki
        .issue_kubelet_serving_cert("node-1", &["127.0.0.1".parse().unwrap()])
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der().unwrap()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let release = Arc::new(tokio::sync::Notify::new());
    let (s, r) = (seen.clone(), release.clone());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let Ok(tls) = acceptor.accept(tcp).await else {
                continue;
            };
            let cn = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|der| {
                    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
                    let cn = cert
                        .subject()
                        .iter_common_name()
                        .next()?
                        .as_str()
                        .ok()?
                        .to_owned();
                    Some(cn)
                })
                .unwrap_or_default();
            s.lock().unwrap().client_names.push(cn);
            let (s, r) = (s.clone(), r.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let (s, r) = (s.clone(), r.clone());
                    async move { Ok::<_, std::convert::Infallible>(kubelet(req, s, r).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    FakeKubelet {
        addr,
        seen,
        release,
    }
}

/// The fake kubelet's answers.
async fn kubelet(
    mut req: Request<Incoming>,
    seen: Arc<Mutex<Seen>>,
    release: Arc<tokio::sync::Notify>,
) -> Response<Body> {
    let path = req.uri().to_string();
    seen.lock().unwrap().requests.push(path.clone());
    if path.starts_with("/containerLogs/team/web/app?previous=true") {
        let mut r = Response::new(Body::from(
            "previous terminated container \"app\" in pod \"web\" not found",
        ));
        *r.status_mut() = hyper::StatusCode::BAD_REQUEST;
        return r;
    }
    if path.starts_with("/containerLogs/team/web/app") {
        let stream = futures::stream::unfold(0, move |step| {
            let release = release.clone();
            async move {
                match step {
                    0 => Some((Ok::<_, std::io::Error>(bytes::Bytes::from("line1\n")), 1)),
                    1 => {
                        release.notified().await;
                        Some((Ok(bytes::Bytes::from("line2\n")), 2))
                    }
                    _ => None,
                }
            }
        });
        return Response::new(Body::from_stream(stream));
    }
    if path.starts_with("/exec/team/web/app") {
        let key = req.headers().get("sec-websocket-key").cloned().unwrap();
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            let upgraded = on_upgrade.await.unwrap();
            let mut ws =
                WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
            while let Some(Ok(Message::Binary(b))) = ws.next().await {
                match b.first() {
                    Some(0) => {
                        let mut out = b.to_vec();
                        out[0] = 1;
                        ws.send(Message::Binary(out.into())).await.unwrap();
                    }
                    Some(255) => {
                        let status = json!({"metadata": {}, "status": "Success"});
                        let mut out = vec![3];
                        out.extend(serde_json::to_vec(&status).unwrap());
                        ws.send(Message::Binary(out.into())).await.unwrap();
                        let _ = ws.close(None).await;
                        return;
                    }
                    _ => {}
                }
            }
        });
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        return Response::builder()
            .status(101)
            .header("upgrade", "websocket")
            .header("connection", "Upgrade")
            .header("sec-websocket-accept", accept)
            .header("sec-websocket-protocol", "v5.channel.k8s.io")
            .body(Body::empty())
            .unwrap();
    }
    if path == "/healthz" {
        return Response::new(Body::from("ok"));
    }
    let mut r = Response::new(Body::from("404 page not found"));
    *r.status_mut() = hyper::StatusCode::NOT_FOUND;
    r
}

async fn put(api: &Api, plural: &str, namespace: &str, obj: Value) {
    let target = Target {
        resource: api.registry.get("", "v1", plural).unwrap(),
        namespace: namespace.to_owned(),
        name: obj["metadata"]["name"].as_str().unwrap().to_owned(),
        subresource: String::new(),
    };
    api.objects.create(&target, &obj, None).await.unwrap();
}

struct Client {
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
}

impl Client {
    async fn connect(&self) -> tokio_rustls::client::TlsStream<TcpStream> {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(
                rustls::pki_types::ServerName::IpAddress(self.addr.ip().into()),
                tcp,
            )
            .await
            .unwrap()
    }

    async fn request(&self, path: &str, upgrade: bool) -> Response<Incoming> {
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(self.connect().await))
                .await
                .unwrap();
        tokio::spawn(connection.with_upgrades());
        let mut req = Request::get(path).header("host", "localhost");
        if upgrade {
            req = req
                .header("connection", "Upgrade")
                .header("upgrade", "websocket")
                .header("sec-websocket-version", "13")
                .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
        }
        sender
            .send_request(req.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    async fn json(&self, path: &str, upgrade: bool) -> (u16, Value) {
        let r = self.request(path, upgrade).await;
        let status = r.status().as_u16();
        let body = axum::body::to_bytes(Body::new(r.into_body()), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_reach_the_pod_s_kubelet() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(tmp.path(), &[]).unwrap();
    let kubelet = fake_kubelet(&pki).await;

    let api = Api::new(Arc::new(berth_kv::memory::MemoryStore::new()), None);
    api.set_kubelet_client(pki.kubelet_client_config().unwrap());
    put(&api, "nodes", "", json!({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"},
        "status": {
            "addresses": [{"type": "Hostname", "address": "node-1"}, {"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet.addr.port()}},
        },
    }))
    .await;
    put(
        &api,
        "pods",
        "team",
        json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "team"},
            "spec": {"nodeName": "node-1", "containers": [{"name": "app", "image": "bb"}]},
        }),
    )
    .await;
    put(
        &api,
        "pods",
        "team",
        json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pending", "namespace": "team"},
            "spec": {"containers": [{"name": "a", "image": "bb"}, {"name": "b", "image": "bb"}]},
        }),
    )
    .await;
    let server = berth_apiserver::server::Server::bind(
        "127.0.0.1:0".parse().unwrap(),
        pki.server_config(),
        api.clone(),
    )
    .await
    .unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.run(std::future::pending()));
    let client = Client {
        addr,
        tls: client_config(pki.ca_pem(), pki.admin_cert_pem(), pki.admin_key_pem()).unwrap(),
    };

    // A followed log streams as the kubelet writes it.
    let r = client
        .request(
            "/api/v1/namespaces/team/pods/web/log?follow=true&tailLines=3",
            false,
        )
        .await;
    assert_eq!(r.status(), 200);
    let mut body = Body::new(r.into_body()).into_data_stream();
    let first = tokio::time::timeout(Duration::from_secs(10), body.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(&first[..], b"line1\n");
    kubelet.release.notify_one();
    let mut rest = Vec::new();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), body.next())
        .await
        .unwrap()
    {
        rest.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(rest, b"line2\n");
    {
        let seen = kubelet.seen.lock().unwrap();
        assert_eq!(
            seen.requests[0],
            "/containerLogs/team/web/app?follow=true&tailLines=3"
        );
        assert_eq!(seen.client_names[0], "kube-apiserver-kubelet-client");
    }

    // The kubelet's error is the answer's Status.
    let (code, status) = client
        .json("/api/v1/namespaces/team/pods/web/log?previous=true", false)
        .await;
    assert_eq!(code, 400);
    assert_eq!(status["reason"], "BadRequest");
    assert_eq!(
        status["message"],
        "previous terminated container \"app\" in pod \"web\" not found"
    );

    // kube's own refusals, before any kubelet.
    let (code, status) = client
        .json("/api/v1/namespaces/team/pods/pending/log", false)
        .await;
    assert_eq!(code, 400);
    assert_eq!(
        status["message"],
        "a container name must be specified for pod pending, choose one of: [a b]"
    );
    let (code, status) = client
        .json(
            "/api/v1/namespaces/team/pods/pending/exec?container=a&command=ls&stdout=true",
            true,
        )
        .await;
    assert_eq!(code, 400);
    assert_eq!(
        status["message"],
        "pod pending does not have a host assigned"
    );

    // An exec WebSocket is relayed both ways after the kubelet's 101.
    let mut request = format!(
        "wss://{addr}/api/v1/namespaces/team/pods/web/exec?command=cat&stdin=true&stdout=true"
    )
    .into_client_request()
    .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "v5.channel.k8s.io,v4.channel.k8s.io".parse().unwrap(),
    );
    let (mut ws, response) = tokio_tungstenite::client_async(request, client.connect().await)
        .await
        .unwrap();
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "v5.channel.k8s.io"
    );
    ws.send(Message::Binary(b"\x00hello".to_vec().into()))
        .await
        .unwrap();
    let echoed = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(echoed.into_data().to_vec(), b"\x01hello".to_vec());
    ws.send(Message::Binary(vec![255, 0].into())).await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .into_data();
    assert_eq!(status[0], 3);
    assert_eq!(
        serde_json::from_slice::<Value>(&status[1..]).unwrap()["status"],
        "Success"
    );
    assert!(
        kubelet
            .seen
            .lock()
            .unwrap()
            .requests
            .iter()
            .any(|r| r == "/exec/team/web/app?command=cat&stdin=1&stdout=1"),
        "{:?}",
        kubelet.seen.lock().unwrap().requests
    );

    // nodes/{name}/proxy/{path} is the kubelet's {path}.
    let r = client
        .request("/api/v1/nodes/node-1/proxy/healthz", false)
        .await;
    assert_eq!(r.status(), 200);
    let body = axum::body::to_bytes(Body::new(r.into_body()), 1 << 10)
        .await
        .unwrap();
    assert_eq!(&body[..], b"ok");
}
