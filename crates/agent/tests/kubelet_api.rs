//! The kubelet API against a real engine: a pod sandbox with real
//! containers (busybox, labelled as the agent labels them), the server on
//! loopback with certificates from the cluster PKI, and a client that
//! speaks HTTPS and WebSocket (channel.k8s.io v4/v5) as the API server does.
//!
//! No test harness: the engine starts `/proc/self/exe monitor …` for each
//! container and exec, so this binary answers as berth's monitor when asked
//! to. Needs root (skipped otherwise).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use berth_agent::server::{KubeletServer, ServerTls};
use berth_engine::sandbox::{QosClass, SandboxNetwork, SandboxSpec};
use berth_engine::{ContainerSpec, Engine, PodRuntime};
use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const NS: &str = "team";
const POD: &str = "web";
const UID: &str = "0b6f9a52-5c1e-4b8e-9d7e-1f2a3b4c5d6e";

/// Runs the engine's helper processes when this binary is started as one.
fn engine_helpers(args: &[OsString]) {
    let arg = |i: usize| args.get(i).map(|a| a.to_string_lossy().into_owned());
    if arg(1).as_deref() == Some("monitor") {
        let root = PathBuf::from(arg(2).unwrap_or_default());
        let id = arg(3).unwrap_or_default();
        if args.len() == 4 || (args.len() == 6 && arg(4).as_deref() == Some("--exec")) {
            berth_engine::monitor::main(&root, &id, arg(5).as_deref());
        }
        if arg(4).as_deref() == Some("--resume") {
            let rest: Vec<String> = args[5..]
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            berth_engine::monitor::resume_main(&root, &id, &rest);
        }
    }
    if let Some((root, id)) = berth_engine::sandbox::pause_request(args) {
        berth_engine::sandbox::pause_main(&root, &id);
    }
    if arg(1).as_deref() == Some("health-check") && args.len() == 4 {
        berth_engine::health::check_main(
            Path::new(&arg(2).unwrap_or_default()),
            &arg(3).unwrap_or_default(),
        );
    }
    if arg(1).as_deref() == Some("dns-server") && args.len() == 3 {
        berth_engine::network::dns_server_main(Path::new(&arg(2).unwrap_or_default()));
    }
}

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    engine_helpers(&args);
    if !berth_testutil::root_or_skip("kubelet_api") {
        return;
    }
    let filter = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .find(|a| !a.starts_with('-'));
    let node = Node::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tests: Vec<(&str, TestFn)> = vec![
        ("logs_read_as_kubelet_serves_them", |f| {
            Box::pin(logs_read_as_kubelet_serves_them(f))
        }),
        ("log_errors_are_kubelet_s", |f| {
            Box::pin(log_errors_are_kubelet_s(f))
        }),
        (
            "exec_v5_streams_stdio_half_closes_stdin_and_reports_the_exit_code",
            |f| Box::pin(exec_v5_streams_stdio_half_closes_stdin_and_reports_the_exit_code(f)),
        ),
        ("exec_v4_reports_success", |f| {
            Box::pin(exec_v4_reports_success(f))
        }),
        ("exec_with_a_terminal_follows_resize", |f| {
            Box::pin(exec_with_a_terminal_follows_resize(f))
        }),
        (
            "attach_talks_to_the_container_and_a_followed_log_sees_it",
            |f| Box::pin(attach_talks_to_the_container_and_a_followed_log_sees_it(f)),
        ),
        ("port_forward_reaches_a_port_inside_the_pod_network", |f| {
            Box::pin(port_forward_reaches_a_port_inside_the_pod_network(f))
        }),
        (
            "port_forward_speaks_spdy_tunnelled_in_websocket_as_kubectl_does",
            |f| Box::pin(port_forward_speaks_spdy_tunnelled_in_websocket_as_kubectl_does(f)),
        ),
        ("port_forward_speaks_plain_spdy", |f| {
            Box::pin(port_forward_speaks_plain_spdy(f))
        }),
        (
            "kubectl_logs_exec_and_port_forward_through_the_api_server",
            |f| Box::pin(kubectl_logs_exec_and_port_forward_through_the_api_server(f)),
        ),
        ("exec_over_spdy_as_older_kubectl_does", |f| {
            Box::pin(exec_over_spdy_as_older_kubectl_does(f))
        }),
        ("only_the_api_server_is_served", |f| {
            Box::pin(only_the_api_server_is_served(f))
        }),
    ];
    let fixture = runtime.block_on(node.serve());
    *fixture.root.lock().unwrap() = Some(node.root.clone());
    let mut ran = 0;
    for (name, test) in tests {
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        println!("test {name} ...");
        runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(60), test(Arc::clone(&fixture)))
                .await
                .unwrap_or_else(|_| panic!("{name} timed out"))
        });
        println!("test {name} ... ok");
        ran += 1;
    }
    println!("test result: ok. {ran} passed");
    drop(fixture);
    drop(node);
}

/// One test: an async function of the shared fixture.
type TestFn = fn(Arc<Fixture>) -> futures::future::BoxFuture<'static, ()>;

/// The engine, the pod and its containers.
struct Node {
    dir: tempfile::TempDir,
    root: PathBuf,
    engine: Engine,
}

impl Drop for Node {
    fn drop(&mut self) {
        let name = format!("{NS}_{POD}_{UID}");
        if let Err(e) = self.engine.remove_sandbox(&name) {
            eprintln!("remove the sandbox: {e}");
        }
    }
}

fn pod_labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("io.kubernetes.pod.name".to_owned(), POD.to_owned()),
        ("io.kubernetes.pod.namespace".to_owned(), NS.to_owned()),
        ("io.kubernetes.pod.uid".to_owned(), UID.to_owned()),
    ])
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Node {
    fn start() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let engine = Engine::open(&root).unwrap();
        let tar = berth_testutil::busybox_tar(dir.path());
        let reference = berth_types::Reference::parse("bb:1").unwrap();
        engine
            .import_image(
                std::fs::File::open(&tar).unwrap(),
                Default::default(),
                None,
                Some(&reference),
            )
            .unwrap();
        let sandbox = engine
            .run_sandbox(&SandboxSpec {
                name: format!("{NS}_{POD}_{UID}"),
                hostname: POD.to_owned(),
                fqdn: None,
                network: SandboxNetwork::None,
                ports: Vec::new(),
                dns: Default::default(),
                extra_hosts: Vec::new(),
                qos: QosClass::BestEffort,
                resources: Default::default(),
                shm_size: None,
                sysctls: BTreeMap::new(),
                labels: pod_labels(),
                share_pid: false,
            })
            .unwrap();
        let node = Node { dir, root, engine };
        let first = node.container(&sandbox, "app", 0, "echo first", false);
        wait_until("the first attempt to exit", || {
            node.engine
                .container(&first)
                .is_ok_and(|c| c.state.status != berth_engine::Status::Running)
        });
        node.container(
            &sandbox,
            "app",
            1,
            "echo one; sleep 0.2; echo two >&2; mkdir -p /www; echo hello-www > /www/index.html; head -c 3000000 /dev/zero > /www/big; exec httpd -f -p 8080 -h /www",
            false,
        );
        node.container(
            &sandbox,
            "talk",
            0,
            "while read l; do echo got:$l; done",
            true,
        );
        node
    }

    fn container(
        &self,
        sandbox: &str,
        name: &str,
        attempt: u32,
        script: &str,
        stdin: bool,
    ) -> String {
        let mut labels = pod_labels();
        labels.insert("io.kubernetes.container.name".into(), name.into());
        labels.insert(
            "io.kubernetes.container.restartCount".into(),
            attempt.to_string(),
        );
        labels.insert("berth.dev/container-kind".into(), "container".into());
        let spec = ContainerSpec {
            name: Some(format!("k8s_{name}_{POD}_{NS}_{UID}_{attempt}")),
            image: "bb:1".into(),
            cmd: Some(vec!["sh".into(), "-c".into(), script.into()]),
            open_stdin: stdin,
            labels,
            ..Default::default()
        };
        let created = self.engine.create_in_sandbox(sandbox, &spec).unwrap();
        self.engine.start(&created.id, || Ok(())).unwrap();
        created.id
    }

    async fn serve(&self) -> Arc<Fixture> {
        let pki =
            berth_apiserver::auth::pki::Pki::load_or_create(&self.dir.path().join("pki"), &[])
                .unwrap();
        let (cert_pem, key_pem) = pki
            .issue_kubelet_serving_cert("node-1", &["127.0.0.1".parse().unwrap()])
            .unwrap();
        let tls = ServerTls {
            cert_pem,
            key_pem,
            client_ca_pem: pki.ca_pem().to_owned(),
        };
        let server = KubeletServer::bind("127.0.0.1:0".parse().unwrap(), tls, self.root.clone())
            .await
            .unwrap();
        let addr = server.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        let anonymous = {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(pki.ca_der().unwrap()).unwrap();
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth()
        };
        Arc::new(Fixture {
            root: std::sync::Mutex::new(None),
            addr,
            client: pki.kubelet_client_config().unwrap(),
            jane: {
                let (cert, key) = pki.issue_client_cert("jane", &["devs".into()]).unwrap();
                berth_apiserver::auth::pki::client_config(pki.ca_pem(), &cert, &key).unwrap()
            },
            anonymous: Arc::new(anonymous),
            _stop: stop,
        })
    }
}

/// The server and how to reach it.
struct Fixture {
    /// The engine's root (for a second kubelet API server).
    root: std::sync::Mutex<Option<PathBuf>>,
    addr: SocketAddr,
    client: Arc<rustls::ClientConfig>,
    /// A user the CA signed who is not the API server.
    jane: Arc<rustls::ClientConfig>,
    anonymous: Arc<rustls::ClientConfig>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

type Tls = TlsStream<TcpStream>;
type Ws = WebSocketStream<Tls>;

impl Fixture {
    async fn connect(&self, config: &Arc<rustls::ClientConfig>) -> std::io::Result<Tls> {
        let tcp = TcpStream::connect(self.addr).await?;
        tokio_rustls::TlsConnector::from(Arc::clone(config))
            .connect(
                rustls::pki_types::ServerName::IpAddress(self.addr.ip().into()),
                tcp,
            )
            .await
    }

    async fn request(
        &self,
        path: &str,
        upgrade: Option<&str>,
    ) -> hyper::Response<hyper::body::Incoming> {
        let stream = self.connect(&self.client).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection.with_upgrades());
        let mut request = hyper::Request::get(path).header("host", "node-1");
        if let Some(u) = upgrade {
            request = request.header("connection", "Upgrade").header("upgrade", u);
        }
        sender
            .send_request(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let response = self.request(path, None).await;
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(Body::new(response.into_body()), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    async fn ws(&self, path: &str, protocols: &str) -> (Ws, String) {
        let stream = self.connect(&self.client).await.unwrap();
        let mut request = format!("wss://{}{path}", self.addr)
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("sec-websocket-protocol", protocols.parse().unwrap());
        let (ws, response) = tokio_tungstenite::client_async(request, stream)
            .await
            .unwrap();
        let chosen = response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        (ws, chosen)
    }
}

/// Everything a stream sent until it closed: stdout, stderr, the error channel.
async fn collect(ws: &mut Ws) -> (String, String, Option<Value>) {
    let (mut out, mut err, mut status) = (String::new(), String::new(), None);
    while let Some(message) = ws.next().await {
        let Ok(Message::Binary(b)) = message else {
            break;
        };
        match b.first() {
            Some(1) => out.push_str(&String::from_utf8_lossy(&b[1..])),
            Some(2) => err.push_str(&String::from_utf8_lossy(&b[1..])),
            Some(3) => status = Some(serde_json::from_slice(&b[1..]).unwrap()),
            _ => {}
        }
    }
    (out, err, status)
}

async fn poll_get(f: &Fixture, path: &str, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = f.get(path).await;
        if status == 200 && body == want {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{path}: {status} {body:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn logs_read_as_kubelet_serves_them(f: Arc<Fixture>) {
    let base = format!("/containerLogs/{NS}/{POD}/app");
    poll_get(&f, &base, "one\ntwo\n").await;
    poll_get(&f, &format!("{base}?tailLines=1"), "two\n").await;
    poll_get(&f, &format!("{base}?limitBytes=5"), "one\nt").await;
    poll_get(&f, &format!("{base}?previous=true"), "first\n").await;
    let (status, body) = f.get(&format!("{base}?timestamps=true")).await;
    assert_eq!(status, 200);
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 2, "{body}");
    for (line, text) in lines.iter().zip(["one", "two"]) {
        let (time, rest) = line.split_once(' ').unwrap();
        assert_eq!(rest, text);
        // 2026-01-02T03:04:05.123456789Z
        assert_eq!(time.len(), 30, "{time}");
        assert!(time.ends_with('Z') && time.as_bytes()[19] == b'.', "{time}");
    }
    let (status, body) = f.get(&format!("{base}?sinceSeconds=3600")).await;
    assert_eq!((status, body.as_str()), (200, "one\ntwo\n"));
    let (status, body) = f
        .get(&format!("{base}?sinceTime=2200-01-01T00:00:00Z"))
        .await;
    assert_eq!((status, body.as_str()), (200, ""));
}

async fn log_errors_are_kubelet_s(f: Arc<Fixture>) {
    let (status, body) = f
        .get(&format!("/containerLogs/{NS}/{POD}/talk?previous=true"))
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        "previous terminated container \"talk\" in pod \"web\" not found"
    );
    let (status, body) = f.get(&format!("/containerLogs/{NS}/{POD}/nope")).await;
    assert_eq!(status, 400);
    assert_eq!(body, "container \"nope\" in pod \"web\" is not available");
    let (status, body) = f.get(&format!("/containerLogs/{NS}/ghost/app")).await;
    assert_eq!(status, 404);
    assert_eq!(body, "pod \"ghost\" does not exist");
    let (status, body) = f
        .get(&format!("/containerLogs/{NS}/{POD}/app?tailLines=-1"))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body, "tailLines: must be greater than or equal to 0");
}

async fn exec_v5_streams_stdio_half_closes_stdin_and_reports_the_exit_code(f: Arc<Fixture>) {
    let path = format!(
        "/exec/{NS}/{POD}/app?command=sh&command=-c&command=cat%3B%20echo%20err%20%3E%262%3B%20exit%203&stdin=1&stdout=1&stderr=1"
    );
    let (mut ws, chosen) = f.ws(&path, "v5.channel.k8s.io, v4.channel.k8s.io").await;
    assert_eq!(chosen, "v5.channel.k8s.io");
    ws.send(Message::Binary(b"\x00hello\n".to_vec().into()))
        .await
        .unwrap();
    ws.send(Message::Binary(vec![255, 0].into())).await.unwrap();
    let (out, err, status) = collect(&mut ws).await;
    assert_eq!(out, "hello\n");
    assert_eq!(err, "err\n");
    let status = status.expect("a status on the error channel");
    assert_eq!(status["status"], "Failure");
    assert_eq!(status["reason"], "NonZeroExitCode");
    assert_eq!(
        status["details"]["causes"][0],
        serde_json::json!({"reason": "ExitCode", "message": "3"})
    );
}

async fn exec_v4_reports_success(f: Arc<Fixture>) {
    let path = format!("/exec/{NS}/{POD}/app?command=echo&command=hi&stdout=1&stderr=1");
    let (mut ws, chosen) = f.ws(&path, "v4.channel.k8s.io").await;
    assert_eq!(chosen, "v4.channel.k8s.io");
    let (out, err, status) = collect(&mut ws).await;
    assert_eq!((out.as_str(), err.as_str()), ("hi\n", ""));
    assert_eq!(
        status.unwrap(),
        serde_json::json!({"metadata": {}, "status": "Success"})
    );
}

async fn attach_talks_to_the_container_and_a_followed_log_sees_it(f: Arc<Fixture>) {
    let response = f
        .request(&format!("/containerLogs/{NS}/{POD}/talk?follow=true"), None)
        .await;
    assert_eq!(response.status(), 200);
    let mut followed = Body::new(response.into_body()).into_data_stream();

    let path = format!("/attach/{NS}/{POD}/talk?stdin=1&stdout=1&stderr=1");
    let (mut ws, chosen) = f.ws(&path, "v5.channel.k8s.io").await;
    assert_eq!(chosen, "v5.channel.k8s.io");
    ws.send(Message::Binary(b"\x00ping\n".to_vec().into()))
        .await
        .unwrap();
    let mut out = String::new();
    while !out.contains("got:ping\n") {
        match ws.next().await {
            Some(Ok(Message::Binary(b))) if b.first() == Some(&1) => {
                out.push_str(&String::from_utf8_lossy(&b[1..]));
            }
            Some(Ok(_)) => {}
            other => panic!("attach ended early: {other:?} after {out:?}"),
        }
    }
    let _ = ws.close(None).await;

    let mut logged = String::new();
    while !logged.contains("got:ping\n") {
        let chunk = followed
            .next()
            .await
            .expect("the followed log ended")
            .unwrap();
        logged.push_str(&String::from_utf8_lossy(&chunk));
    }
}

async fn port_forward_reaches_a_port_inside_the_pod_network(f: Arc<Fixture>) {
    // httpd starts after the log lines
    poll_get(&f, &format!("/containerLogs/{NS}/{POD}/app"), "one\ntwo\n").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let path = format!("/portForward/{NS}/{POD}?port=8080");
        let (mut ws, chosen) = f.ws(&path, "v4.channel.k8s.io").await;
        assert_eq!(chosen, "v4.channel.k8s.io");
        let mut preambles = Vec::new();
        while preambles.len() < 2 {
            match ws.next().await {
                Some(Ok(Message::Binary(b))) => preambles.push(b.to_vec()),
                other => panic!("no port preamble: {other:?}"),
            }
        }
        assert_eq!(preambles, vec![vec![0, 0x90, 0x1f], vec![1, 0x90, 0x1f]]);
        ws.send(Message::Binary(
            b"\x00GET /index.html HTTP/1.0\r\n\r\n".to_vec().into(),
        ))
        .await
        .unwrap();
        let (mut data, mut error) = (String::new(), String::new());
        while let Some(Ok(Message::Binary(b))) = ws.next().await {
            match b.first() {
                Some(0) => data.push_str(&String::from_utf8_lossy(&b[1..])),
                Some(1) => error.push_str(&String::from_utf8_lossy(&b[1..])),
                _ => {}
            }
        }
        if data.contains("hello-www") {
            assert!(
                data.starts_with("HTTP/1.") && data.contains(" 200 OK"),
                "{data}"
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no answer through the forwarded port: data {data:?}, error {error:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn only_the_api_server_is_served(f: Arc<Fixture>) {
    // a CA-signed user other than the API server is refused as kubelet does
    let stream = f.connect(&f.jane).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let response = sender
        .send_request(
            hyper::Request::get(format!("/containerLogs/{NS}/{POD}/app"))
                .header("host", "node-1")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body = axum::body::to_bytes(Body::new(response.into_body()), 1 << 16)
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&body),
        "Forbidden (user=jane, verb=get, resource=nodes, subresource=proxy)"
    );

    // TLS 1.3: the refusal arrives after the client's handshake.
    let refused = match f.connect(&f.anonymous).await {
        Err(_) => true,
        Ok(stream) => {
            let attempt = async {
                let (mut sender, connection) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                tokio::spawn(connection);
                sender
                    .send_request(
                        hyper::Request::get("/healthz")
                            .header("host", "node-1")
                            .body(Body::empty())
                            .unwrap(),
                    )
                    .await
            };
            attempt.await.is_err()
        }
    };
    assert!(refused, "a client without a certificate was served");
}

/// A SPDY client connection: over WebSocket messages or raw bytes.
enum SpdyConn {
    Ws(Box<Ws>),
    Raw(TokioIo<hyper::upgrade::Upgraded>),
}

impl SpdyConn {
    async fn send(&mut self, bytes: Vec<u8>) {
        match self {
            SpdyConn::Ws(ws) => ws.send(Message::Binary(bytes.into())).await.unwrap(),
            SpdyConn::Raw(io) => {
                use tokio::io::AsyncWriteExt;
                io.write_all(&bytes).await.unwrap()
            }
        }
    }

    async fn recv(&mut self) -> Option<Vec<u8>> {
        match self {
            SpdyConn::Ws(ws) => match ws.next().await {
                Some(Ok(Message::Binary(b))) => Some(b.to_vec()),
                Some(Ok(Message::Ping(_))) => Some(Vec::new()),
                _ => None,
            },
            SpdyConn::Raw(io) => {
                use tokio::io::AsyncReadExt;
                let mut buf = vec![0u8; 32 * 1024];
                match io.read(&mut buf).await {
                    Ok(0) | Err(_) => None,
                    Ok(n) => {
                        buf.truncate(n);
                        Some(buf)
                    }
                }
            }
        }
    }
}

/// Plays kubectl's port-forward over a SPDY connection: two requests, one
/// to httpd in the pod, one to a port nothing listens on.
async fn kubectl_port_forward(mut conn: SpdyConn) {
    use berth_agent::server::spdy::{self, FLAG_FIN, Frame, Headers};
    let mut writer = spdy::Writer::new();
    let mut reader = spdy::Reader::new();
    let headers = |kind: &str, port: u16, request: u32| -> Headers {
        [
            ("streamtype", kind.to_owned()),
            ("port", port.to_string()),
            ("requestid", request.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), vec![v]))
        .collect()
    };
    let mut frames: Vec<Frame> = Vec::new();
    async fn next(conn: &mut SpdyConn, reader: &mut spdy::Reader) -> Frame {
        loop {
            if let Some(f) = reader.next_frame().unwrap() {
                return f;
            }
            let bytes = conn.recv().await.expect("the connection ended");
            reader.feed(&bytes);
        }
    }
    for (request, port) in [(0u32, 8080u16), (1, 1)] {
        let (error_id, data_id) = (request * 4 + 1, request * 4 + 3);
        conn.send(writer.syn_stream(error_id, 0, &headers("error", port, request)))
            .await;
        // kubectl closes its side of the error stream at once
        conn.send(spdy::data(error_id, FLAG_FIN, &[])).await;
        conn.send(writer.syn_stream(data_id, 0, &headers("data", port, request)))
            .await;
        conn.send(spdy::data(data_id, 0, b"GET /index.html HTTP/1.0\r\n\r\n"))
            .await;
        let (mut data, mut error) = (String::new(), String::new());
        let (mut data_fin, mut error_fin, mut replies) = (false, false, 0);
        while !(data_fin && error_fin && replies == 2) {
            let frame = next(&mut conn, &mut reader).await;
            match &frame {
                Frame::SynReply { stream, .. } if *stream == error_id || *stream == data_id => {
                    replies += 1
                }
                Frame::Data {
                    stream,
                    flags,
                    data: d,
                } if *stream == data_id => {
                    data.push_str(&String::from_utf8_lossy(d));
                    data_fin |= flags & FLAG_FIN != 0;
                }
                Frame::Data {
                    stream,
                    flags,
                    data: d,
                } if *stream == error_id => {
                    error.push_str(&String::from_utf8_lossy(d));
                    error_fin |= flags & FLAG_FIN != 0;
                }
                _ => {}
            }
            frames.push(frame);
        }
        if port == 8080 {
            assert!(data.contains("hello-www"), "{data:?} {error:?}");
            assert_eq!(error, "");
        } else {
            assert_eq!(data, "");
            assert!(
                error.starts_with(&format!(
                    "error forwarding port 1 to pod {POD}, uid {UID}: "
                )),
                "{error:?}"
            );
        }
    }
    // pings come back
    conn.send(spdy::ping(11)).await;
    loop {
        if next(&mut conn, &mut reader).await == Frame::Ping(11) {
            break;
        }
    }
}

async fn port_forward_speaks_spdy_tunnelled_in_websocket_as_kubectl_does(f: Arc<Fixture>) {
    poll_get(&f, &format!("/containerLogs/{NS}/{POD}/app"), "one\ntwo\n").await;
    let (ws, chosen) = f
        .ws(
            &format!("/portForward/{NS}/{POD}"),
            "SPDY/3.1+portforward.k8s.io",
        )
        .await;
    assert_eq!(chosen, "SPDY/3.1+portforward.k8s.io");
    kubectl_port_forward(SpdyConn::Ws(Box::new(ws))).await;
}

async fn port_forward_speaks_plain_spdy(f: Arc<Fixture>) {
    poll_get(&f, &format!("/containerLogs/{NS}/{POD}/app"), "one\ntwo\n").await;
    let stream = f.connect(&f.client).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection.with_upgrades());
    let request = hyper::Request::post(format!("/portForward/{NS}/{POD}"))
        .header("host", "node-1")
        .header("connection", "Upgrade")
        .header("upgrade", "SPDY/3.1")
        .header("x-stream-protocol-version", "portforward.k8s.io")
        .body(Body::empty())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 101);
    assert_eq!(
        response.headers()["x-stream-protocol-version"],
        "portforward.k8s.io"
    );
    let upgraded = hyper::upgrade::on(response).await.unwrap();
    kubectl_port_forward(SpdyConn::Raw(TokioIo::new(upgraded))).await;
}

/// Runs kubectl with a kubeconfig; returns (exit code, stdout, stderr).
fn kubectl(kubeconfig: &Path, args: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut child = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// kubectl 1.33 against the API server in process, which reaches this
/// node's kubelet API: logs (and --previous), exec with its exit code and
/// stdin, port-forward (SPDY tunnelled in WebSocket).
async fn kubectl_logs_exec_and_port_forward_through_the_api_server(f: Arc<Fixture>) {
    if !berth_testutil::have_kubectl() {
        return;
    }
    poll_get(&f, &format!("/containerLogs/{NS}/{POD}/app"), "one\ntwo\n").await;
    let dir = tempfile::tempdir().unwrap();
    let plane = berth_apiserver::start(
        Arc::new(berth_kv::memory::MemoryStore::new()),
        berth_apiserver::Config {
            dir: dir.path().to_path_buf(),
            bind: "127.0.0.1:0".parse().unwrap(),
            tls_sans: Vec::new(),
            kubeconfig: None,
            token_file: None,
            compaction_interval: None,
            service_cluster_ip_range: Default::default(),
            service_node_port_range: Default::default(),
            advertise_address: None,
        },
    )
    .await
    .unwrap();
    let kubeconfig = plane.kubeconfig.clone();
    let (cert_pem, key_pem) = plane
        .pki
        .issue_kubelet_serving_cert("node-1", &["127.0.0.1".parse().unwrap()])
        .unwrap();
    let root = f.root.lock().unwrap().clone().unwrap();
    let kubelet = KubeletServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        ServerTls {
            cert_pem,
            key_pem,
            client_ca_pem: plane.pki.ca_pem().to_owned(),
        },
        root,
    )
    .await
    .unwrap();
    let kubelet_port = kubelet.local_addr().unwrap().port();
    tokio::spawn(kubelet.run(std::future::pending()));
    let api = plane.api.clone();
    tokio::spawn(plane.server.run(std::future::pending()));
    let put = |plural: &'static str, namespace: &'static str, obj: Value| {
        let api = api.clone();
        async move {
            let target = berth_apiserver::request::Target {
                resource: api.registry.get("", "v1", plural).unwrap(),
                namespace: namespace.to_owned(),
                name: obj["metadata"]["name"].as_str().unwrap().to_owned(),
                subresource: String::new(),
            };
            api.objects.create(&target, &obj, None).await.unwrap();
        }
    };
    put(
        "namespaces",
        "",
        serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS},
        }),
    )
    .await;
    put(
        "nodes",
        "",
        serde_json::json!({
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"},
            "status": {
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
            },
        }),
    )
    .await;
    put(
        "pods",
        NS,
        serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": POD, "namespace": NS, "uid": UID},
            "spec": {"nodeName": "node-1", "containers": [
                {"name": "app", "image": "bb:1"}, {"name": "talk", "image": "bb:1", "stdin": true},
            ]},
            "status": {"phase": "Running"},
        }),
    )
    .await;

    let kc = kubeconfig.clone();
    let results = tokio::task::spawn_blocking(move || {
        (
            kubectl(&kc, &["-n", NS, "logs", POD, "-c", "app"], ""),
            kubectl(&kc, &["-n", NS, "logs", POD, "-c", "app", "--previous"], ""),
            kubectl(
                &kc,
                &[
                    "-n",
                    NS,
                    "logs",
                    POD,
                    "-c",
                    "app",
                    "--tail=1",
                    "--timestamps",
                ],
                "",
            ),
            kubectl(
                &kc,
                &[
                    "-n",
                    NS,
                    "exec",
                    POD,
                    "-c",
                    "app",
                    "--",
                    "sh",
                    "-c",
                    "echo out; echo err >&2; exit 3",
                ],
                "",
            ),
            kubectl(
                &kc,
                &["-n", NS, "exec", "-i", POD, "-c", "app", "--", "cat"],
                "piped\n",
            ),
        )
    })
    .await
    .unwrap();
    let (logs, previous, tail, failing, piped) = results;
    // kubectl 1.29 streams exec over SPDY only
    let old = Path::new("/usr/lib/google-cloud-sdk/bin/kubectl.1.29");
    if old.exists() {
        let kc = kubeconfig.clone();
        let out = tokio::task::spawn_blocking(move || {
            let o = std::process::Command::new("/usr/lib/google-cloud-sdk/bin/kubectl.1.29")
                .arg("--kubeconfig")
                .arg(&kc)
                .args([
                    "-n",
                    NS,
                    "exec",
                    POD,
                    "-c",
                    "app",
                    "--",
                    "sh",
                    "-c",
                    "echo spdy; exit 4",
                ])
                .output()
                .unwrap();
            (
                o.status.code(),
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        })
        .await
        .unwrap();
        assert_eq!(
            (out.0, out.1.as_str()),
            (Some(4), "spdy\n"),
            "kubectl 1.29 exec: {out:?}"
        );
    }
    assert_eq!(logs, (0, "one\ntwo\n".to_owned(), String::new()), "logs");
    assert_eq!(
        previous,
        (0, "first\n".to_owned(), String::new()),
        "logs --previous"
    );
    assert_eq!(tail.0, 0, "{tail:?}");
    assert!(
        tail.1.ends_with("Z two\n") && tail.1.lines().count() == 1,
        "{tail:?}"
    );
    assert_eq!((failing.0, failing.1.as_str()), (3, "out\n"), "{failing:?}");
    assert!(failing.2.contains("err\n"), "{failing:?}");
    assert_eq!(piped, (0, "piped\n".to_owned(), String::new()), "exec -i");

    // attach -i talks to the container; logs -f follows what it answers
    let spawn = |args: &[&str], stdin: bool| {
        std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(args)
            .stdin(if stdin {
                std::process::Stdio::piped()
            } else {
                std::process::Stdio::null()
            })
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut follow = spawn(&["-n", NS, "logs", "-f", POD, "-c", "talk"], false);
    let mut attach = spawn(&["-n", NS, "attach", "-i", POD, "-c", "talk"], true);
    let (follow_out, attach_out) = (follow.stdout.take().unwrap(), attach.stdout.take().unwrap());
    let mut attach_in = attach.stdin.take().unwrap();
    let seen = tokio::task::spawn_blocking(move || {
        use std::io::{BufRead, Write};
        let wait_for = |out: std::process::ChildStdout| {
            std::thread::spawn(move || {
                std::io::BufReader::new(out)
                    .lines()
                    .map_while(Result::ok)
                    .any(|l| l == "got:e2e")
            })
        };
        let (followed, attached) = (wait_for(follow_out), wait_for(attach_out));
        // the attach may take a moment to connect: say it until answered
        let mut said = 0;
        while !attached.is_finished() && said < 50 {
            let _ = attach_in.write_all(b"e2e\n");
            let _ = attach_in.flush();
            said += 1;
            std::thread::sleep(Duration::from_millis(200));
        }
        (
            attached.join().unwrap_or(false),
            followed.join().unwrap_or(false),
        )
    });
    let seen = tokio::time::timeout(Duration::from_secs(30), seen).await;
    let _ = follow.kill();
    let _ = attach.kill();
    let (follow_done, attach_done) = (
        follow.wait_with_output().unwrap(),
        attach.wait_with_output().unwrap(),
    );
    assert!(
        matches!(seen, Ok(Ok((true, true)))),
        "attach and logs -f: {seen:?}; attach said {}; logs said {}",
        String::from_utf8_lossy(&attach_done.stderr),
        String::from_utf8_lossy(&follow_done.stderr)
    );

    // port-forward: kubectl listens on a free local port and says which
    let mut child = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["-n", NS, "port-forward", &format!("pod/{POD}"), ":8080"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let local = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(stdout).lines();
        // Forwarding from 127.0.0.1:41235 -> 8080
        let line = lines.next()?.ok()?;
        let port = line
            .split(" -> ")
            .next()?
            .rsplit(':')
            .next()?
            .parse::<u16>()
            .ok()?;
        std::thread::spawn(move || for _ in lines {});
        Some(port)
    })
    .await
    .unwrap();
    let answer = match local {
        Some(port) => tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").unwrap();
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            // a download far beyond SPDY's 64 KiB initial window
            let mut big = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            big.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            big.write_all(b"GET /big HTTP/1.0\r\n\r\n").unwrap();
            let mut body = Vec::new();
            let _ = big.read_to_end(&mut body);
            let zeros = body.iter().rev().take_while(|b| **b == 0).count();
            format!("{out}\nbig: {zeros}")
        })
        .await
        .unwrap(),
        None => String::new(),
    };
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    assert!(
        answer.contains("hello-www") && answer.ends_with("big: 3000000"),
        "port-forward answered {answer:?}; kubectl said {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// exec over plain SPDY (kubectl before 1.30): a stream per channel, stdin
/// half-closed with FIN, the Status on the error stream.
async fn exec_over_spdy_as_older_kubectl_does(f: Arc<Fixture>) {
    use berth_agent::server::spdy::{self, FLAG_FIN, Frame, Headers};
    let stream = f.connect(&f.client).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection.with_upgrades());
    let request = hyper::Request::post(format!(
        "/exec/{NS}/{POD}/app?command=sh&command=-c&command=cat%3B%20echo%20err%20%3E%262%3B%20exit%203&stdin=1&stdout=1&stderr=1"
    ))
    .header("host", "node-1")
    .header("connection", "Upgrade")
    .header("upgrade", "SPDY/3.1")
    .header("x-stream-protocol-version", "v4.channel.k8s.io")
    .header("x-stream-protocol-version", "v3.channel.k8s.io")
    .body(Body::empty())
    .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 101);
    assert_eq!(
        response.headers()["x-stream-protocol-version"],
        "v4.channel.k8s.io"
    );
    let mut conn = SpdyConn::Raw(TokioIo::new(hyper::upgrade::on(response).await.unwrap()));
    let mut writer = spdy::Writer::new();
    let mut reader = spdy::Reader::new();
    for (id, kind) in [(1, "error"), (3, "stdin"), (5, "stdout"), (7, "stderr")] {
        let headers: Headers = [("streamtype".to_owned(), vec![kind.to_owned()])]
            .into_iter()
            .collect();
        conn.send(writer.syn_stream(id, 0, &headers)).await;
    }
    conn.send(spdy::data(3, 0, b"hello\n")).await;
    conn.send(spdy::data(3, FLAG_FIN, &[])).await;
    let mut got: BTreeMap<u32, (String, bool)> = BTreeMap::new();
    while !(got.get(&1).is_some_and(|g| g.1) && got.get(&5).is_some_and(|g| g.1)) {
        let frame = loop {
            if let Some(f) = reader.next_frame().unwrap() {
                break f;
            }
            let bytes = conn.recv().await.expect("the connection ended");
            reader.feed(&bytes);
        };
        if let Frame::Data {
            stream,
            flags,
            data,
        } = frame
        {
            let e = got.entry(stream).or_default();
            e.0.push_str(&String::from_utf8_lossy(&data));
            e.1 |= flags & FLAG_FIN != 0;
        }
    }
    assert_eq!(got[&5].0, "hello\n");
    assert_eq!(got[&7].0, "err\n");
    let status: Value = serde_json::from_str(&got[&1].0).unwrap();
    assert_eq!(status["reason"], "NonZeroExitCode");
    assert_eq!(status["details"]["causes"][0]["message"], "3");
}

/// A terminal exec: one output stream, and the size the client sends on
/// the resize channel is the terminal's.
async fn exec_with_a_terminal_follows_resize(f: Arc<Fixture>) {
    let path = format!(
        "/exec/{NS}/{POD}/app?command=sh&command=-c&command=read%20x%3B%20stty%20size&stdin=1&stdout=1&stderr=1&tty=1"
    );
    let (mut ws, chosen) = f.ws(&path, "v5.channel.k8s.io").await;
    assert_eq!(chosen, "v5.channel.k8s.io");
    ws.send(Message::Binary(
        b"\x04{\"Width\":123,\"Height\":45}".to_vec().into(),
    ))
    .await
    .unwrap();
    // client-go's heartbeat: a ping is answered while the process waits
    ws.send(Message::Ping(b"heartbeat".to_vec().into()))
        .await
        .unwrap();
    loop {
        match ws.next().await {
            Some(Ok(Message::Pong(p))) => {
                assert_eq!(&p[..], b"heartbeat");
                break;
            }
            Some(Ok(_)) => {}
            other => panic!("no pong: {other:?}"),
        }
    }
    // messages are handled in order: the size is set before the line arrives
    ws.send(Message::Binary(b"\x00go\n".to_vec().into()))
        .await
        .unwrap();
    let (out, err, status) = collect(&mut ws).await;
    assert!(out.contains("45 123"), "{out:?}");
    assert_eq!(err, "");
    assert_eq!(status.unwrap()["status"], "Success");
}
