//! kubebench: the Kubernetes API of `berth server`, measured from a client
//! on loopback — start to ready (cold and warm), idle RSS, create rate, get
//! and list latency with 10,000 and 100,000 ConfigMaps in a namespace, a
//! list of 10,000 pods, 1,000 watchers receiving an update, and the
//! server's RSS along the way.
//!
//! Usage: kubebench --berth PATH --dir DIR [--small 10000] [--large 100000]
//!        [--pods 10000] [--watchers 1000] [--rounds 20] [--concurrency 32]
//!        [--gets 2000] [--lists 20] [--starts 3]
//! Every `berth server` it starts is its child, killed by its PID when the
//! program ends; DIR holds their roots and logs.
#![forbid(unsafe_code)]
#![deny(clippy::string_slice)]

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use berth_bench::{Flags, Samples, mib, ms, status_kb};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// A running `berth server`, killed by its PID when dropped.
struct ServerProcess {
    child: Child,
    port: u16,
}

impl ServerProcess {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// VmRSS and VmHWM, for a report line.
    fn memory(&self) -> String {
        let rss = status_kb(self.pid(), "VmRSS").unwrap_or(0);
        let hwm = status_kb(self.pid(), "VmHWM").unwrap_or(0);
        format!("rss={} hwm={}", mib(rss), mib(hwm))
    }

    /// SIGTERM, then waits (SIGKILL after 30 s).
    fn stop(mut self) -> Result<Duration> {
        let t = Instant::now();
        let pid = rustix::process::Pid::from_raw(i32::try_from(self.pid())?)
            .ok_or_else(|| anyhow!("server pid 0"))?;
        rustix::process::kill_process(pid, rustix::process::Signal::TERM)?;
        while t.elapsed() < Duration::from_secs(30) {
            if self.child.try_wait()?.is_some() {
                return Ok(t.elapsed());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        bail!("berth server did not stop within 30 s of SIGTERM")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Starts `berth --root ROOT server` and polls /readyz (anonymous, every
/// 2 ms) until it answers 200: the server and the time it took.
async fn start_server(berth: &Path, root: &Path, log: &Path) -> Result<(ServerProcess, Duration)> {
    let port = free_port()?;
    let log_file = std::fs::File::create(log)?;
    let started = Instant::now();
    let child = Command::new(berth)
        .arg("--root")
        .arg(root)
        .arg("server")
        .arg("--https-port")
        .arg(port.to_string())
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()
        .with_context(|| format!("run {}", berth.display()))?;
    let mut server = ServerProcess { child, port };
    let probe = reqwest::Client::builder()
        .no_proxy()
        .tls_danger_accept_invalid_certs(true)
        .http1_only()
        .timeout(Duration::from_secs(2))
        .build()?;
    let url = format!("https://127.0.0.1:{port}/readyz");
    loop {
        if let Ok(answer) = probe.get(&url).send().await
            && answer.status() == reqwest::StatusCode::OK
        {
            return Ok((server, started.elapsed()));
        }
        if let Some(status) = server.child.try_wait()? {
            bail!(
                "berth server exited ({status}) before it was ready: see {}",
                log.display()
            );
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!(
                "berth server was not ready within 60 s: see {}",
                log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The admin kubeconfig's CA and client identity.
struct Credentials {
    ca: Vec<u8>,
    identity: Vec<u8>,
}

fn credentials(root: &Path) -> Result<Credentials> {
    let path = root.join("server").join("admin.kubeconfig");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    let config: Value = serde_yaml_ng::from_str(&text)?;
    let field = |pointer: &str| -> Result<Vec<u8>> {
        let data = config
            .pointer(pointer)
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("{} has no {pointer}", path.display()))?;
        Ok(base64::engine::general_purpose::STANDARD.decode(data)?)
    };
    let ca = field("/clusters/0/cluster/certificate-authority-data")?;
    let mut identity = field("/users/0/user/client-certificate-data")?;
    identity.push(b'\n');
    identity.extend(field("/users/0/user/client-key-data")?);
    Ok(Credentials { ca, identity })
}

fn client(creds: &Credentials, http1: bool) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([reqwest::Certificate::from_pem(&creds.ca)?])
        .identity(reqwest::Identity::from_pem(&creds.identity)?)
        .pool_max_idle_per_host(4096);
    if http1 {
        builder = builder.http1_only();
    }
    Ok(builder.build()?)
}

/// The API at one address.
#[derive(Clone)]
struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    async fn send(&self, request: reqwest::RequestBuilder, what: &str) -> Result<Value> {
        let answer = request.send().await.with_context(|| what.to_owned())?;
        let status = answer.status();
        let body = answer.bytes().await.with_context(|| what.to_owned())?;
        if !status.is_success() {
            bail!("{what}: {status}: {}", String::from_utf8_lossy(&body));
        }
        Ok(serde_json::from_slice(&body)?)
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        self.send(self.client.post(&url).json(body), &format!("POST {path}"))
            .await
    }

    async fn put(&self, path: &str, body: &Value) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        self.send(self.client.put(&url).json(body), &format!("PUT {path}"))
            .await
    }

    async fn get(&self, path: &str) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        self.send(self.client.get(&url), &format!("GET {path}"))
            .await
    }

    /// A GET whose body is only counted (lists), its size in bytes.
    async fn get_len(&self, path: &str) -> Result<usize> {
        let url = format!("{}{path}", self.base);
        let answer = self.client.get(&url).send().await?;
        let status = answer.status();
        let body = answer.bytes().await?;
        if !status.is_success() {
            bail!("GET {path}: {status}: {}", String::from_utf8_lossy(&body));
        }
        Ok(body.len())
    }
}

fn configmap(name: &str) -> Value {
    let filler: String = std::iter::repeat_n('x', 900).collect();
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"app": "bench", "tier": "load"}},
        "data": {"payload": filler}
    })
}

fn pod(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "bench"}},
        "spec": {
            "containers": [{
                "name": "main",
                "image": "registry.example/app:1.0",
                "command": ["/app", "--serve"],
                "ports": [{"containerPort": 8080, "name": "http"}],
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                "env": [{"name": "MODE", "value": "bench"}]
            }]
        }
    })
}

/// Creates objects `from..to` (named by `name`) in `collection` with
/// `concurrency` requests in flight: the time it took and each latency.
async fn create_many(
    api: &Api,
    collection: &str,
    from: usize,
    to: usize,
    concurrency: usize,
    make: fn(&str) -> Value,
    prefix: &'static str,
) -> Result<(Duration, Samples)> {
    let next = Arc::new(AtomicUsize::new(from));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let api = api.clone();
        let next = next.clone();
        let collection = collection.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= to {
                    return Ok::<_, anyhow::Error>(samples);
                }
                let body = make(&format!("{prefix}{i:06}"));
                let t = Instant::now();
                api.post(&collection, &body).await?;
                samples.push(t.elapsed());
            }
        }));
    }
    let mut all = Samples::new();
    for task in tasks {
        all.extend(task.await??);
    }
    Ok((started.elapsed(), all))
}

/// `count` GETs of random objects among `0..objects`, one at a time.
async fn gets(api: &Api, ns: &str, objects: usize, count: usize) -> Result<Samples> {
    let mut samples = Samples::new();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..count {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let i = usize::try_from(seed % objects as u64)?;
        let path = format!("/api/v1/namespaces/{ns}/configmaps/cm-{i:06}");
        let t = Instant::now();
        api.get(&path).await?;
        samples.push(t.elapsed());
    }
    Ok(samples)
}

/// `runs` lists of `path` (after one unmeasured), and the body size.
async fn lists(api: &Api, path: &str, runs: usize) -> Result<(Samples, usize)> {
    let mut samples = Samples::new();
    let mut size = 0;
    for run in 0..=runs {
        let t = Instant::now();
        size = api.get_len(path).await?;
        if run > 0 {
            samples.push(t.elapsed());
        }
    }
    Ok((samples, size))
}

/// Where `needle` starts in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The round number in a watch event line (`"round":"<n>"`).
fn round_of(line: &[u8]) -> Option<usize> {
    let marker = b"\"round\":\"";
    let at = find(line, marker)? + marker.len();
    let digits: Vec<u8> = line
        .get(at..)?
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .copied()
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

/// One watcher: reads the watch's lines and reports each round's arrival.
async fn watcher(
    client: reqwest::Client,
    url: String,
    arrivals: mpsc::UnboundedSender<(usize, Instant)>,
    connected: mpsc::UnboundedSender<()>,
) -> Result<()> {
    let answer = client.get(&url).send().await?;
    if !answer.status().is_success() {
        bail!("watch: {}", answer.status());
    }
    let _ = connected.send(());
    let mut stream = answer.bytes_stream();
    let mut pending: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        let now = Instant::now();
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            if let Some(round) = round_of(&line) {
                let _ = arrivals.send((round, now));
            }
        }
    }
    Ok(())
}

/// `watchers` watches of one ConfigMap's namespace; `rounds` updates of
/// it. The delay from each update's acknowledgement (the PUT's answer) to
/// each watcher's receipt, and from the PUT's start.
async fn watch_bench(
    api: &Api,
    creds: &Credentials,
    watchers: usize,
    rounds: usize,
) -> Result<(Samples, Samples, usize, Duration)> {
    let ns = "watch";
    api.post(
        "/api/v1/namespaces",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    )
    .await?;
    let path = format!("/api/v1/namespaces/{ns}/configmaps");
    let mut object = api
        .post(
            &path,
            &json!({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "target"}, "data": {"round": "0"}}),
        )
        .await?;
    let rv = object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("the created ConfigMap has no resourceVersion"))?
        .to_owned();
    let url = format!(
        "{}{path}?watch=1&resourceVersion={rv}&timeoutSeconds=3600",
        api.base
    );
    // One HTTP/1.1 connection per watcher, as separate clients would hold.
    let watch_client = client(creds, true)?;
    let (arrivals_tx, mut arrivals) = mpsc::unbounded_channel();
    let (connected_tx, mut connected) = mpsc::unbounded_channel();
    let connect_started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..watchers {
        tasks.push(tokio::spawn(watcher(
            watch_client.clone(),
            url.clone(),
            arrivals_tx.clone(),
            connected_tx.clone(),
        )));
        // Handshakes in waves of 50.
        if w % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    drop(arrivals_tx);
    drop(connected_tx);
    for _ in 0..watchers {
        tokio::time::timeout(Duration::from_secs(60), connected.recv())
            .await
            .context("watchers did not connect within 60 s")?
            .ok_or_else(|| anyhow!("a watcher failed to connect"))?;
    }
    let connect_took = connect_started.elapsed();
    let mut from_ack = Samples::new();
    let mut from_start = Samples::new();
    let mut early = 0;
    // Round 1 warms up (first event on every connection); rounds 2.. count.
    for round in 1..=rounds + 1 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        object["data"]["round"] = json!(round.to_string());
        let t_start = Instant::now();
        object = api.put(&format!("{path}/target"), &object).await?;
        let t_ack = Instant::now();
        let mut received = 0;
        while received < watchers {
            let (r, at) = tokio::time::timeout(Duration::from_secs(30), arrivals.recv())
                .await
                .with_context(|| format!("round {round}: {received} of {watchers} received"))?
                .ok_or_else(|| anyhow!("the watchers ended"))?;
            if r != round {
                continue;
            }
            received += 1;
            if round > 1 {
                if at < t_ack {
                    early += 1;
                }
                from_ack.push(at.saturating_duration_since(t_ack));
                from_start.push(at.saturating_duration_since(t_start));
            }
        }
    }
    for task in tasks {
        task.abort();
    }
    Ok((from_ack, from_start, early, connect_took))
}

struct Plan {
    berth: PathBuf,
    dir: PathBuf,
    small: usize,
    large: usize,
    pods: usize,
    watchers: usize,
    rounds: usize,
    concurrency: usize,
    gets: usize,
    lists: usize,
    starts: usize,
}

async fn run(plan: Plan) -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let settle = Duration::from_secs(2);

    // Start to ready: cold (a fresh root each time), then warm (the same root).
    let mut cold = Samples::new();
    for i in 0..plan.starts {
        let root = plan.dir.join(format!("cold-{i}"));
        let (server, took) =
            start_server(&plan.berth, &root, &plan.dir.join(format!("cold-{i}.log"))).await?;
        cold.push(took);
        println!(
            "start cold #{i}: ready in {} ({})",
            ms(took),
            server.memory()
        );
        tokio::time::sleep(settle).await;
        println!("  idle after 2 s: {}", server.memory());
        server.stop()?;
        std::fs::remove_dir_all(&root)?;
    }
    let root = plan.dir.join("root");
    let (server, took) = start_server(&plan.berth, &root, &plan.dir.join("first.log")).await?;
    server.stop()?;
    println!("start cold (the root used below): ready in {}", ms(took));
    let mut warm = Samples::new();
    let mut last = None;
    for i in 0..plan.starts {
        if let Some(server) = last.take() {
            ServerProcess::stop(server)?;
        }
        let (server, took) =
            start_server(&plan.berth, &root, &plan.dir.join(format!("warm-{i}.log"))).await?;
        warm.push(took);
        println!(
            "start warm #{i}: ready in {} ({})",
            ms(took),
            server.memory()
        );
        last = Some(server);
    }
    let server = last.ok_or_else(|| anyhow!("--starts must be at least 1"))?;
    tokio::time::sleep(settle).await;
    println!("RESULT ready cold {}", cold.summary());
    println!("RESULT ready warm {}", warm.summary());
    println!("RESULT idle {} (pid {})", server.memory(), server.pid());

    let creds = credentials(&root)?;
    let api = Api {
        client: client(&creds, false)?,
        base: format!("https://127.0.0.1:{}", server.port),
    };
    for ns in ["bench", "pods"] {
        api.post(
            "/api/v1/namespaces",
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .await?;
    }
    let cms = "/api/v1/namespaces/bench/configmaps";

    // 10,000 ConfigMaps.
    let (took, lat) =
        create_many(&api, cms, 0, plan.small, plan.concurrency, configmap, "cm-").await?;
    println!(
        "RESULT create configmaps 0..{} rate={:.0}/s ({} in flight) latency {}",
        plan.small,
        plan.small as f64 / took.as_secs_f64(),
        plan.concurrency,
        lat.summary()
    );
    println!(
        "RESULT memory after creating {} configmaps (no list yet): {}",
        plan.small,
        server.memory()
    );
    println!(
        "RESULT get at {} {}",
        plan.small,
        gets(&api, "bench", plan.small, plan.gets).await?.summary()
    );
    let (lat, size) = lists(&api, cms, plan.lists).await?;
    println!(
        "RESULT list configmaps {} ({} bytes) {}",
        plan.small,
        size,
        lat.summary()
    );
    println!(
        "RESULT memory after {} lists of {} configmaps: {}",
        plan.lists + 1,
        plan.small,
        server.memory()
    );

    // 10,000 pods, and their list.
    let pods = "/api/v1/namespaces/pods/pods";
    let (took, lat) = create_many(&api, pods, 0, plan.pods, plan.concurrency, pod, "pod-").await?;
    println!(
        "RESULT create pods 0..{} rate={:.0}/s latency {}",
        plan.pods,
        plan.pods as f64 / took.as_secs_f64(),
        lat.summary()
    );
    println!("RESULT memory after creating the pods: {}", server.memory());
    let (lat, size) = lists(&api, pods, plan.lists).await?;
    println!(
        "RESULT list pods {} ({} bytes) {}",
        plan.pods,
        size,
        lat.summary()
    );
    let (lat, size) = lists(&api, &format!("{pods}?limit=500"), plan.lists).await?;
    println!(
        "RESULT list pods first page of 500 ({size} bytes) {}",
        lat.summary()
    );

    // Watchers.
    let (from_ack, from_start, early, connect) =
        watch_bench(&api, &creds, plan.watchers, plan.rounds).await?;
    println!(
        "RESULT watch {} watchers connected in {}; {} rounds; from the ack {}; from the PUT's start {}; {} deliveries before the ack",
        plan.watchers,
        ms(connect),
        plan.rounds,
        from_ack.summary(),
        from_start.summary(),
        early
    );
    println!(
        "RESULT memory with {} watchers: {}",
        plan.watchers,
        server.memory()
    );

    // Up to 100,000 ConfigMaps.
    let (took, lat) = create_many(
        &api,
        cms,
        plan.small,
        plan.large,
        plan.concurrency,
        configmap,
        "cm-",
    )
    .await?;
    println!(
        "RESULT create configmaps {}..{} rate={:.0}/s latency {}",
        plan.small,
        plan.large,
        (plan.large - plan.small) as f64 / took.as_secs_f64(),
        lat.summary()
    );
    println!(
        "RESULT memory after creating {} configmaps: {}",
        plan.large,
        server.memory()
    );
    println!(
        "RESULT get at {} {}",
        plan.large,
        gets(&api, "bench", plan.large, plan.gets).await?.summary()
    );
    let (lat, size) = lists(&api, &format!("{cms}?limit=500"), plan.lists).await?;
    println!(
        "RESULT list configmaps first page of 500 at {} ({size} bytes) {}",
        plan.large,
        lat.summary()
    );
    let (lat, size) = lists(&api, cms, 3).await?;
    println!(
        "RESULT list configmaps {} ({} bytes) {}",
        plan.large,
        size,
        lat.summary()
    );
    let (lat, _) = lists(&api, pods, plan.lists).await?;
    println!(
        "RESULT list pods {} at {} objects {}",
        plan.pods,
        plan.large + plan.pods,
        lat.summary()
    );
    println!(
        "RESULT memory at {} objects: {}",
        plan.large + plan.pods,
        server.memory()
    );
    drop(api);
    let stopped = server.stop()?;
    println!("stop: {}", ms(stopped));

    // Warm start with everything in the store.
    let (server, took) = start_server(&plan.berth, &root, &plan.dir.join("warm-full.log")).await?;
    println!(
        "RESULT ready warm with {} objects: {} ({})",
        plan.large + plan.pods,
        ms(took),
        server.memory()
    );
    tokio::time::sleep(settle).await;
    println!(
        "RESULT idle with {} objects after 2 s: {}",
        plan.large + plan.pods,
        server.memory()
    );
    server.stop()?;
    Ok(())
}

fn main() -> Result<()> {
    let flags = Flags::from_env();
    let plan = Plan {
        berth: PathBuf::from(flags.get("berth").context("--berth PATH is required")?),
        dir: PathBuf::from(flags.get("dir").context("--dir DIR is required")?),
        small: flags.num("small", 10_000)?,
        large: flags.num("large", 100_000)?,
        pods: flags.num("pods", 10_000)?,
        watchers: flags.num("watchers", 1000)?,
        rounds: flags.num("rounds", 20)?,
        concurrency: flags.num("concurrency", 32)?,
        gets: flags.num("gets", 2000)?,
        lists: flags.num("lists", 20)?,
        starts: flags.num("starts", 3)?,
    };
    if plan.large < plan.small || plan.small == 0 {
        bail!("--large must be at least --small, and --small above 0");
    }
    std::fs::create_dir_all(&plan.dir)?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(plan))
}
