//! berth's node agent (layer 3): the kubelet's job for one node.
//!
//! It registers the node, renews its Lease every 10 s, and runs the pods
//! the scheduler binds to it through the engine's [`PodRuntime`]
//! (`berth_engine::PodRuntime`): one sandbox per pod holding its network,
//! IPC and host name, one engine container per container attempt. Each
//! pod has a worker ([`worker`]) that keeps what runs in line with the
//! pod and reports its status. Everything goes through the Kubernetes API
//! with a `kube::Client`: `berth server` hands it the API server's router
//! in process, `berth agent --server URL --token T` a client over HTTPS —
//! the same code.
//!
//! An agent that dies leaves its pods running (each container has its
//! own monitor); the next one finds them by their names and labels
//! ([`names`]) and adopts them: nothing is restarted because the agent
//! was gone.
#![forbid(unsafe_code)]

pub mod dns;
pub mod env;
pub mod ephemeral;
pub mod eviction;
pub mod kubelet_metrics;
pub mod names;
pub mod netpol;
pub mod node;
pub mod probe;
pub mod proxy;
pub mod server;
pub mod status;
pub mod translate;
pub mod volumes;
mod worker;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_engine::{Engine, PodRuntime};
use futures::TryStreamExt;
use k8s_openapi::api::core::v1::{
    ConfigMap, ObjectReference, PersistentVolume, PersistentVolumeClaim, Pod, Secret,
};
use kube::api::Api;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;

use crate::env::{NodeAllocatable, Sources};
use crate::names::PodKey;
use crate::translate::NodeDns;
use crate::volumes::Claims;

/// The version the agent reports as its kubelet's.
pub const KUBELET_VERSION: &str = "v1.33.0";

/// How the agent runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// The node's name (the host name, lowercased, by default).
    pub node_name: String,
    /// The node's address (`InternalIP`).
    pub node_ip: IpAddr,
    /// berth's root (the engine's state, pod volumes under `kubelet/`).
    pub root: PathBuf,
    /// The port of the agent's kubelet API.
    pub kubelet_port: u16,
    /// The range pods of this node get addresses from.
    pub pod_cidr: Option<String>,
    /// Extra node labels.
    pub labels: BTreeMap<String, String>,
    /// The kubelet API's TLS material (`None`: no kubelet API, so no logs,
    /// exec or port-forward through the API server).
    pub kubelet_tls: Option<server::ServerTls>,
    /// Eviction thresholds.
    pub eviction: eviction::Config,
    /// The Services' address range (`None`: no service proxy on this node).
    pub service_cidr: Option<(std::net::Ipv4Addr, u8)>,
    /// The cluster DNS Service's address pods of `dnsPolicy: ClusterFirst`
    /// get (the kubelet's `--cluster-dns`); with it the node serves the
    /// cluster zone at its pods' gateway ([`dns`]). `None`: pods get the
    /// node's resolvers and the node serves no DNS.
    pub cluster_dns: Option<IpAddr>,
    /// The cluster's DNS domain (`cluster.local`).
    pub cluster_domain: String,
}

/// Errors that stop the agent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The engine.
    #[error("engine: {0}")]
    Engine(String),
    /// The API.
    #[error("kubernetes API: {0}")]
    Api(#[from] kube::Error),
}

/// Issued ServiceAccount tokens: (pod uid, path) → (token, issued at, lifetime).
type TokenCache = HashMap<(String, String), (String, std::time::Instant, Duration)>;

/// What every worker shares.
pub(crate) struct Shared {
    pub(crate) client: kube::Client,
    pub(crate) engine: Arc<Engine>,
    pub(crate) cfg: Config,
    pub(crate) recorder: Recorder,
    pub(crate) allocatable: NodeAllocatable,
    pub(crate) dns: NodeDns,
    /// ServiceAccount tokens by (pod uid, path), with when they were issued
    /// and their lifetime: renewed at 80 % of it, as the kubelet does.
    pub(crate) tokens: std::sync::Mutex<TokenCache>,
    /// The node's pressure conditions (the eviction manager's).
    pub(crate) pressure: std::sync::RwLock<eviction::NodePressure>,
    /// Held while the node's status is written: the periodic heartbeat and
    /// the eviction manager's immediate one never interleave (a heartbeat
    /// that read the pressure before a change could otherwise overwrite
    /// the change's status after it).
    pub(crate) status_writes: tokio::sync::Mutex<()>,
    /// Pods to evict (uid → the kubelet's message), taken by their workers.
    pub(crate) evictions: std::sync::Mutex<HashMap<String, String>>,
    /// The kubelet's counters (served on the kubelet API's `/metrics`).
    pub(crate) metrics: Arc<kubelet_metrics::KubeletMetrics>,
}

impl Shared {
    /// Writes the node's conditions (with the pressure as it is when the
    /// write starts) and images; one writer at a time.
    pub(crate) async fn post_node_status(&self) -> Result<(), kube::Error> {
        let _one = self.status_writes.lock().await;
        let pressure = *self.pressure.read().unwrap_or_else(|e| e.into_inner());
        node::heartbeat(&self.client, &self.cfg, &self.engine, &pressure).await
    }
}

/// Runs blocking engine work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("engine task: {e}"))
}

/// Pulls `image` (the node's registry settings); returns its size.
/// `docker_config`: a Docker config file with the pod's pull secrets'
/// credentials (`None`: the node's own).
pub(crate) fn pull(
    engine: &Engine,
    image: &str,
    docker_config: Option<PathBuf>,
) -> Result<u64, String> {
    struct Quiet;
    impl berth_image::registry::Progress for Quiet {
        fn layer(&self, _: &str, _: berth_image::registry::Status) {}
        fn message(&self, _: &str) {}
    }
    let mut settings = berth_image::config::Settings::load().map_err(|e| e.to_string())?;
    if docker_config.is_some() {
        settings.registry.docker_config = docker_config;
    }
    let client = berth_image::registry::Client::new(settings.registry);
    let r = berth_types::Reference::parse(image).map_err(|e| e.to_string())?;
    let pulled = engine
        .pull_image(
            &client,
            &r,
            &berth_types::image::Platform::host(),
            Arc::new(Quiet),
        )
        .map_err(|e| e.to_string())?;
    Ok(pulled.record.size)
}

/// The kubelet's wording of a container that could not start.
pub(crate) fn start_error_message(e: &str) -> String {
    e.to_owned()
}

impl Shared {
    pub(crate) async fn event(&self, pod: &Pod, warning: bool, reason: &str, note: String) {
        let reference = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: pod.metadata.name.clone(),
            namespace: pod.metadata.namespace.clone(),
            uid: pod.metadata.uid.clone(),
            resource_version: pod.metadata.resource_version.clone(),
            ..Default::default()
        };
        let ev = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.to_owned(),
            note: Some(note.chars().take(1024).collect()),
            action: reason.to_owned(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &reference).await {
            tracing::debug!(error = %e, reason, "event not recorded");
        }
    }

    /// The ConfigMaps and Secrets the pod refers to.
    pub(crate) async fn sources(&self, pod: &Pod) -> Sources {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let (cms, secrets) = env::referenced(pod);
        let mut s = Sources::default();
        let cm_api: Api<ConfigMap> = Api::namespaced(self.client.clone(), ns);
        for name in cms {
            let v = cm_api.get_opt(&name).await.ok().flatten().map(|cm| {
                let mut m: BTreeMap<String, Vec<u8>> = cm
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.into_bytes()))
                    .collect();
                for (k, v) in cm.binary_data.unwrap_or_default() {
                    m.insert(k, v.0);
                }
                m
            });
            s.config_maps.insert(name, v);
        }
        let sec_api: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        for name in secrets {
            let v = sec_api.get_opt(&name).await.ok().flatten().map(|sec| {
                let mut m: BTreeMap<String, Vec<u8>> = sec
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0))
                    .collect();
                for (k, v) in sec.string_data.unwrap_or_default() {
                    m.insert(k, v.into_bytes());
                }
                m
            });
            s.secrets.insert(name, v);
        }
        s
    }

    /// The Service variables of a container of `pod` (the namespace's
    /// Services and `default/kubernetes`; none when they cannot be read).
    pub(crate) async fn service_env(&self, pod: &Pod) -> Vec<(String, String)> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let links = pod
            .spec
            .as_ref()
            .and_then(|s| s.enable_service_links)
            .unwrap_or(true);
        let mut services = Vec::new();
        let lp = kube::api::ListParams::default();
        if links {
            let api: Api<k8s_openapi::api::core::v1::Service> =
                Api::namespaced(self.client.clone(), ns);
            if let Ok(l) = api.list(&lp).await {
                services.extend(l.items);
            }
        }
        if ns != "default" || !links {
            let api: Api<k8s_openapi::api::core::v1::Service> =
                Api::namespaced(self.client.clone(), "default");
            if let Ok(Some(k)) = api.get_opt("kubernetes").await {
                services.push(k);
            }
        }
        env::service_env(ns, links, &services)
    }

    /// The pod's `imagePullSecrets` as one Docker config file (their
    /// `auths` merged) under the pod's directory, 0600; `Ok(None)` when the
    /// pod names none. A secret that is missing or of another type is
    /// reported as the kubelet does (the pull is tried without it).
    pub(crate) async fn pull_config(&self, pod: &Pod) -> (Option<PathBuf>, Vec<String>) {
        let names: Vec<String> = pod
            .spec
            .iter()
            .flat_map(|s| s.image_pull_secrets.iter().flatten())
            .map(|r| r.name.clone())
            .filter(|n| !n.is_empty())
            .collect();
        if names.is_empty() {
            return (None, Vec::new());
        }
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let api: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        let mut auths = serde_json::Map::new();
        let mut missing = Vec::new();
        for name in names {
            let secret = api.get_opt(&name).await.ok().flatten();
            let data = secret.as_ref().and_then(|s| s.data.as_ref());
            let parsed = data
                .and_then(|d| d.get(".dockerconfigjson"))
                .and_then(|v| serde_json::from_slice::<serde_json::Value>(&v.0).ok())
                .and_then(|v| v.get("auths").and_then(|a| a.as_object().cloned()))
                .or_else(|| {
                    data.and_then(|d| d.get(".dockercfg"))
                        .and_then(|v| serde_json::from_slice::<serde_json::Value>(&v.0).ok())
                        .and_then(|v| v.as_object().cloned())
                });
            match parsed {
                Some(a) => auths.extend(a),
                None => missing.push(name),
            }
        }
        if auths.is_empty() {
            return (None, missing);
        }
        let dir = volumes::pod_dir(
            &self.cfg.root,
            pod.metadata.uid.as_deref().unwrap_or("none"),
        );
        let path = dir.join("pull-config.json");
        let body = serde_json::json!({"auths": auths}).to_string();
        let written = std::fs::create_dir_all(&dir).and_then(|()| {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)?;
            f.write_all(body.as_bytes())
        });
        match written {
            Ok(()) => (Some(path), missing),
            Err(e) => {
                tracing::warn!(error = %e, "write the pod's pull credentials");
                (None, missing)
            }
        }
    }

    /// The host paths of the pod's bound PersistentVolumeClaims.
    pub(crate) async fn claims(&self, pod: &Pod) -> Claims {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), ns);
        let pvs: Api<PersistentVolume> = Api::all(self.client.clone());
        let mut out = Claims::new();
        for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
            let Some(c) = &v.persistent_volume_claim else {
                continue;
            };
            let mut path = None;
            if let Ok(Some(pvc)) = pvcs.get_opt(&c.claim_name).await
                && let Some(vol) = pvc
                    .spec
                    .and_then(|s| s.volume_name)
                    .filter(|n| !n.is_empty())
                && pvc.status.and_then(|s| s.phase).as_deref() == Some("Bound")
                && let Ok(Some(pv)) = pvs.get_opt(&vol).await
                && let Some(spec) = pv.spec
            {
                path = spec
                    .host_path
                    .map(|h| PathBuf::from(h.path))
                    .or_else(|| spec.local.map(|l| PathBuf::from(l.path)));
            }
            out.insert(c.claim_name.clone(), path);
        }
        out
    }

    /// Tokens for the pod's projected serviceAccountToken sources, by path.
    pub(crate) async fn tokens(&self, pod: &Pod) -> Result<BTreeMap<String, String>, String> {
        let mut out = BTreeMap::new();
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let sa = pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into());
        for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
            for src in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
                let Some(t) = &src.service_account_token else {
                    continue;
                };
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                let cache_key = (uid, t.path.clone());
                if let Ok(cache) = self.tokens.lock()
                    && let Some((token, at, ttl)) = cache.get(&cache_key)
                    && at.elapsed() < ttl.mul_f64(0.8)
                {
                    out.insert(t.path.clone(), token.clone());
                    continue;
                }
                let req = serde_json::json!({
                    "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                    "spec": {
                        "audiences": t.audience.clone().map(|a| vec![a]).unwrap_or_default(),
                        "expirationSeconds": t.expiration_seconds.unwrap_or(3607),
                        "boundObjectRef": {"apiVersion": "v1", "kind": "Pod",
                            "name": pod.metadata.name, "uid": pod.metadata.uid}
                    }
                });
                let url = format!("/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token");
                let body = serde_json::to_vec(&req).map_err(|e| e.to_string())?;
                let request = http::Request::post(url)
                    .header("content-type", "application/json")
                    .body(body)
                    .map_err(|e| e.to_string())?;
                let resp: serde_json::Value =
                    self.client.request(request).await.map_err(|e| {
                        format!("request a token for serviceaccount {ns}/{sa}: {e}")
                    })?;
                let token = resp["status"]["token"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let ttl = Duration::from_secs(t.expiration_seconds.unwrap_or(3607).max(600) as u64);
                if let Ok(mut cache) = self.tokens.lock() {
                    cache.retain(|_, (_, at, ttl)| at.elapsed() < *ttl);
                    cache.insert(cache_key, (token.clone(), std::time::Instant::now(), ttl));
                }
                out.insert(t.path.clone(), token);
            }
        }
        Ok(out)
    }
}

/// Runs the agent until the process ends: registration, heartbeats and
/// the pods bound to this node. `ready` is told once the node is registered.
pub async fn run(
    client: kube::Client,
    cfg: Config,
    ready: Option<tokio::sync::oneshot::Sender<()>>,
) -> Result<(), Error> {
    let root = cfg.root.clone();
    let engine = blocking(move || Engine::open(&root))
        .await
        .map_err(Error::Engine)?
        .map_err(|e| Error::Engine(e.to_string()))?;
    let engine = Arc::new(engine);
    {
        // containers whose monitors outlived a restart: their networks come back
        let engine = engine.clone();
        let _ = blocking(move || engine.recover()).await;
    }
    let node = loop {
        match node::register(&client, &cfg, &engine).await {
            Ok(n) => break n,
            Err(e) => {
                tracing::warn!(error = %e, "node registration failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let metrics = Arc::new(kubelet_metrics::KubeletMetrics::default());
    if let Some(tls) = cfg.kubelet_tls.clone() {
        let addr = std::net::SocketAddr::new(cfg.node_ip, cfg.kubelet_port);
        match server::KubeletServer::bind_with_engine(addr, tls, engine.clone(), cfg.root.clone())
            .await
        {
            Ok(s) => {
                let s = s
                    .with_metrics(&cfg.node_name, metrics.clone())
                    .with_authorizer(client.clone());
                tokio::spawn(s.run(std::future::pending()));
            }
            Err(e) => {
                tracing::error!(%addr, error = %e, "the kubelet API cannot listen: no logs, exec or port-forward")
            }
        }
    }
    let node_uid = node.metadata.uid.clone();
    if let Err(e) = node::renew_lease(&client, &cfg, node_uid.as_deref()).await {
        tracing::warn!(error = %e, "lease");
    }
    if let Some(r) = ready {
        let _ = r.send(());
    }
    let shared = Arc::new(Shared {
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: "kubelet".into(),
                instance: Some(cfg.node_name.clone()),
            },
        ),
        allocatable: NodeAllocatable {
            cpu_millis: node::cpus() * 1000,
            memory: node::memory_bytes(),
            ephemeral_storage: 0,
        },
        dns: NodeDns {
            host: host_dns(),
            cluster: cfg.cluster_dns.map(|server| translate::ClusterDns {
                server,
                domain: cfg.cluster_domain.clone(),
            }),
        },
        client: client.clone(),
        engine,
        cfg,
        tokens: std::sync::Mutex::new(HashMap::new()),
        pressure: std::sync::RwLock::new(eviction::NodePressure::default()),
        status_writes: tokio::sync::Mutex::new(()),
        evictions: std::sync::Mutex::new(HashMap::new()),
        metrics,
    });
    tokio::spawn({
        let shared = shared.clone();
        async move {
            loop {
                tokio::time::sleep(node::LEASE_RENEW).await;
                let (client, cfg) = (&shared.client, &shared.cfg);
                if let Err(e) = node::renew_lease(client, cfg, node_uid.as_deref()).await {
                    tracing::warn!(error = %e, "lease renewal failed");
                }
                if let Err(e) = shared.post_node_status().await {
                    tracing::warn!(error = %e, "node status update failed");
                }
            }
        }
    });
    tokio::spawn(eviction::manager::run(shared.clone()));
    if let Some(service_cidr) = shared.cfg.service_cidr {
        tokio::spawn(proxy::run(
            shared.client.clone(),
            proxy::ProxySettings {
                node: shared.cfg.node_name.clone(),
                root: shared.cfg.root.clone(),
                service_cidr,
                cluster_cidr: shared.cfg.pod_cidr.clone(),
            },
        ));
    }
    if shared.cfg.service_cidr.is_some() {
        tokio::spawn(netpol::run(
            shared.client.clone(),
            shared.cfg.node_name.clone(),
            shared.cfg.root.clone(),
        ));
    }
    if shared.cfg.cluster_dns.is_some() {
        match berth_net::NetConfig::load(&shared.cfg.root) {
            Ok(net) => {
                tokio::spawn(dns::run(
                    shared.client.clone(),
                    dns::DnsSettings {
                        domain: shared.cfg.cluster_domain.clone(),
                        listen: std::net::SocketAddrV4::new(net.default_gateway(), 53),
                        ttl: berth_net::cluster_dns::DEFAULT_TTL,
                    },
                ));
            }
            Err(e) => tracing::error!(error = %e, "no cluster DNS on this node"),
        }
    }
    run_pods(shared).await
}

/// The node's own resolvers.
fn host_dns() -> berth_engine::config::Dns {
    let mut d = berth_engine::config::Dns::default();
    if let Ok(text) = std::fs::read_to_string("/etc/resolv.conf") {
        for line in text.lines() {
            let mut f = line.split_whitespace();
            match f.next() {
                Some("nameserver") => {
                    if let Some(ip) = f.next().and_then(|s| s.parse().ok()) {
                        d.servers.push(ip);
                    }
                }
                Some("search") => d.search = f.map(str::to_owned).collect(),
                Some("options") => d.options = f.map(str::to_owned).collect(),
                _ => {}
            }
        }
    }
    d
}

async fn run_pods(shared: Arc<Shared>) -> Result<(), Error> {
    let pods: Api<Pod> = Api::all(shared.client.clone());
    let cfg = watcher::Config::default().fields(&format!("spec.nodeName={}", shared.cfg.node_name));
    let mut workers: HashMap<String, watch::Sender<Option<Pod>>> = HashMap::new();
    let mut init: Option<HashSet<String>> = None;
    loop {
        let stream = watcher(pods.clone(), cfg.clone())
            .modify(|p: &mut Pod| p.metadata.managed_fields = None);
        futures::pin_mut!(stream);
        loop {
            let ev = match stream.try_next().await {
                Ok(Some(ev)) => ev,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "pod watch");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            match ev {
                watcher::Event::Init => init = Some(HashSet::new()),
                watcher::Event::InitApply(p) => {
                    if let Some(s) = init.as_mut()
                        && let Some(uid) = &p.metadata.uid
                    {
                        s.insert(uid.clone());
                    }
                    dispatch(&shared, &mut workers, p);
                }
                watcher::Event::InitDone => {
                    if let Some(live) = init.take() {
                        // pods deleted while no agent watched
                        for (uid, tx) in &workers {
                            if !live.contains(uid) {
                                let _ = tx.send(None);
                            }
                        }
                        sweep_orphans(&shared, &live, &mut workers).await;
                    }
                }
                watcher::Event::Apply(p) => dispatch(&shared, &mut workers, p),
                watcher::Event::Delete(p) => {
                    if let Some(uid) = &p.metadata.uid
                        && let Some(tx) = workers.get(uid)
                    {
                        let _ = tx.send(None);
                    }
                }
            }
            workers.retain(|_, tx| !tx.is_closed());
        }
    }
}

fn dispatch(
    shared: &Arc<Shared>,
    workers: &mut HashMap<String, watch::Sender<Option<Pod>>>,
    pod: Pod,
) {
    let Some(uid) = pod.metadata.uid.clone() else {
        return;
    };
    if let Some(tx) = workers.get(&uid)
        && !tx.is_closed()
    {
        let _ = tx.send(Some(pod));
        return;
    }
    let key = translate::pod_key(&pod);
    let (tx, rx) = watch::channel(Some(pod));
    workers.insert(uid, tx);
    let w = worker::Worker::new(shared.clone(), key);
    tokio::spawn(w.run(rx));
}

/// Sandboxes of pods that no longer exist (deleted while no agent ran):
/// their containers, sandboxes and volumes are removed.
async fn sweep_orphans(
    shared: &Arc<Shared>,
    live: &HashSet<String>,
    workers: &mut HashMap<String, watch::Sender<Option<Pod>>>,
) {
    let engine = shared.engine.clone();
    let sandboxes = blocking(move || engine.sandboxes())
        .await
        .unwrap_or_default();
    for sb in sandboxes {
        let Some(key) = PodKey::from_labels(&sb.labels) else {
            continue;
        };
        if live.contains(&key.uid) || workers.contains_key(&key.uid) {
            continue;
        }
        let (tx, rx) = watch::channel(None);
        workers.insert(key.uid.clone(), tx);
        tokio::spawn(worker::Worker::new(shared.clone(), key).run(rx));
    }
}
