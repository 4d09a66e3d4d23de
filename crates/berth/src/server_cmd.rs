//! `berth server`: the cluster's control plane in one process — the
//! Kubernetes API server over the cluster store (embedded SQLite by
//! default, etcd with `--datastore etcd://…`). It writes an admin
//! kubeconfig and serves until SIGTERM or SIGINT.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;

/// `berth server` flags (k3s's and kube-apiserver's names).
#[derive(Args, Debug)]
pub struct ServerArgs {
    /// The address the API server listens on.
    #[arg(long, default_value = "127.0.0.1")]
    bind_address: IpAddr,
    /// The HTTPS port (0 picks a free one).
    #[arg(long, default_value_t = 6443)]
    https_port: u16,
    /// Extra host names or addresses for the serving certificate (repeatable).
    #[arg(long = "tls-san")]
    tls_san: Vec<String>,
    /// Where to write the admin kubeconfig (default: <root>/server/admin.kubeconfig).
    #[arg(long)]
    write_kubeconfig: Option<PathBuf>,
    /// The cluster store: `sqlite` (embedded, the default), `etcd://host:port[,host:port…]`,
    /// or `memory` (nothing kept; for trials).
    #[arg(long, default_value = "sqlite")]
    datastore: String,
    /// A static token file (kube-apiserver's CSV: token,user,uid,"group1,group2").
    #[arg(long)]
    token_auth_file: Option<PathBuf>,
    /// How often the store's history is compacted, in seconds (history of
    /// at least one interval is kept for watches; 0 = never).
    #[arg(long, default_value_t = 300)]
    compaction_interval: u64,
    /// The Service IP range (kube-apiserver's flag; IPv4).
    #[arg(long, default_value = berth_apiserver::alloc::DEFAULT_SERVICE_CIDR)]
    service_cluster_ip_range: berth_apiserver::alloc::ServiceCidr,
    /// The NodePort range (`30000-32767`, or `base+size`).
    #[arg(long, default_value = "30000-32767")]
    service_node_port_range: berth_apiserver::alloc::PortRange,
    /// The address the `kubernetes` Service's endpoints name (default: the
    /// bind address, or this host's address toward its default route).
    #[arg(long)]
    advertise_address: Option<IpAddr>,
    /// Run only the control plane: no node agent on this host (k3s's flag).
    #[arg(long)]
    disable_agent: bool,
    /// The built-in Ingress controller's HTTP port on every address
    /// (0: off; it runs with the node agent).
    #[arg(long, default_value_t = 80)]
    ingress_http_port: u16,
    /// Its HTTPS port (0: off).
    #[arg(long, default_value_t = 443)]
    ingress_https_port: u16,
    #[command(flatten)]
    node: crate::agent_cmd::NodeArgs,
}

async fn open_store(
    root: &Path,
    datastore: &str,
    compaction: u64,
) -> Result<Arc<dyn berth_kv::Store>> {
    if datastore == "memory" {
        return Ok(Arc::new(berth_kv::memory::MemoryStore::new()));
    }
    if let Some(rest) = datastore.strip_prefix("etcd://") {
        let endpoints: Vec<String> = rest
            .split(',')
            .filter(|e| !e.is_empty())
            .map(|e| format!("http://{e}"))
            .collect();
        if endpoints.is_empty() {
            bail!("--datastore etcd:// names no endpoint (etcd://127.0.0.1:2379)");
        }
        let store = berth_kv_etcd::EtcdStore::connect(&endpoints, "")
            .await
            .with_context(|| format!("connect to etcd at {rest}"))?;
        return Ok(Arc::new(store));
    }
    if datastore == "sqlite" {
        let dir = root.join("server").join("db");
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        return open_sqlite(&dir.join("state.db"), compaction);
    }
    bail!("unknown --datastore {datastore:?}: use sqlite, etcd://host:port[,host:port] or memory")
}

/// Runs the control plane until SIGTERM/SIGINT.
pub fn run(root: &Path, a: &ServerArgs) -> Result<()> {
    berth_sys::malloc::tune_for_server();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    runtime.block_on(async {
        let started = std::time::Instant::now();
        let store = open_store(root, &a.datastore, a.compaction_interval).await?;
        let dir = root.join("server");
        let config = berth_apiserver::Config {
            dir: dir.clone(),
            bind: SocketAddr::new(a.bind_address, a.https_port),
            tls_sans: a.tls_san.clone(),
            kubeconfig: a.write_kubeconfig.clone(),
            token_file: a.token_auth_file.clone(),
            compaction_interval: (a.compaction_interval > 0)
                .then(|| std::time::Duration::from_secs(a.compaction_interval)),
            service_cluster_ip_range: a.service_cluster_ip_range,
            service_node_port_range: a.service_node_port_range,
            advertise_address: a.advertise_address,
        };
        let plane = berth_apiserver::start(store, config)
            .await
            .context("start the API server")?;
        tracing::info!(
            addr = %plane.addr,
            kubeconfig = %plane.kubeconfig.display(),
            took_ms = started.elapsed().as_millis() as u64,
            "berth server ready"
        );
        eprintln!(
            "berth server: Kubernetes API on https://{} (kubeconfig {}), ready in {} ms",
            plane.addr,
            plane.kubeconfig.display(),
            started.elapsed().as_millis()
        );
        // the services, in readiness order: scheduler, controllers, then
        // this host's node agent; each a client of the API in process
        let as_user = |name: &str, groups: &[&str]| {
            let user = berth_apiserver::auth::authn::UserInfo {
                username: name.to_owned(),
                groups: groups.iter().map(|g| (*g).to_owned()).collect(),
                ..Default::default()
            };
            kube::Client::new(
                berth_apiserver::server::in_process(plane.api.clone(), user),
                "default",
            )
        };
        // the scheduler's and the controllers' series, on the API server's /metrics
        let scheduler_metrics = berth_scheduler::run::SchedulerMetrics::default();
        let queue_metrics = berth_controllers::util::queue_metrics::QueueMetrics::default();
        plane
            .api
            .metrics
            .add_source(Arc::new(scheduler_metrics.clone()));
        plane
            .api
            .metrics
            .add_source(Arc::new(queue_metrics.clone()));
        berth_scheduler::run::spawn(
            as_user("system:kube-scheduler", &["system:authenticated"]),
            scheduler_metrics,
        );
        let controller_clients: berth_controllers::Clients = {
            let api = plane.api.clone();
            Arc::new(move |name: &str| {
                let user = berth_apiserver::auth::authn::UserInfo {
                    username: format!("system:serviceaccount:kube-system:{name}"),
                    groups: vec![
                        "system:serviceaccounts".to_owned(),
                        "system:serviceaccounts:kube-system".to_owned(),
                        "system:authenticated".to_owned(),
                    ],
                    ..Default::default()
                };
                kube::Client::new(
                    berth_apiserver::server::in_process(api.clone(), user),
                    "default",
                )
            })
        };
        berth_controllers::spawn_all(
            &controller_clients,
            &berth_controllers::Options {
                storage_dir: root.join("storage"),
                ca_pem: plane.ca_pem.clone(),
                queues: queue_metrics,
            },
        );
        if !a.disable_agent {
            let port = |p: u16| (p != 0).then(|| SocketAddr::from(([0, 0, 0, 0], p)));
            tokio::spawn(berth_ingress::run(
                controller_clients(berth_ingress::ACCOUNT),
                berth_ingress::Settings {
                    http: port(a.ingress_http_port),
                    https: port(a.ingress_https_port),
                },
            ));
            let mut cfg = crate::agent_cmd::agent_config(root, &a.node)?;
            let (cert_pem, key_pem) = plane
                .pki
                .issue_kubelet_serving_cert(&cfg.node_name, &[cfg.node_ip])
                .context("the node's kubelet serving certificate")?;
            cfg.kubelet_tls = Some(berth_agent::server::ServerTls {
                cert_pem,
                key_pem,
                client_ca_pem: plane.pki.ca_pem().to_owned(),
            });
            let user = berth_apiserver::auth::authn::UserInfo {
                username: format!("system:node:{}", cfg.node_name),
                groups: vec!["system:nodes".into(), "system:authenticated".into()],
                ..Default::default()
            };
            let client = kube::Client::new(
                berth_apiserver::server::in_process(plane.api.clone(), user),
                "default",
            );
            // the cluster DNS's Service, pointing at this node's DNS server
            if let (Some(dns_ip), Ok(net)) = (cfg.cluster_dns, berth_net::NetConfig::load(root)) {
                let admin = as_user(
                    "system:berth-server",
                    &["system:masters", "system:authenticated"],
                );
                let node = cfg.node_name.clone();
                let at = IpAddr::V4(net.default_gateway());
                tokio::spawn(async move {
                    for attempt in 0..30 {
                        match crate::kube_dns::ensure(admin.clone(), dns_ip, &node, at).await {
                            Ok(()) => return,
                            Err(e) if attempt == 29 => {
                                tracing::error!(error = %format!("{e:#}"), "the kube-dns Service");
                                eprintln!("berth server: the kube-dns Service: {e:#}");
                            }
                            Err(_) => tokio::time::sleep(std::time::Duration::from_secs(1)).await,
                        }
                    }
                });
            }
            let (tx, rx) = tokio::sync::oneshot::channel();
            tokio::spawn(async move {
                if let Err(e) = berth_agent::run(client, cfg, Some(tx)).await {
                    tracing::error!(error = %e, "the node agent stopped");
                    eprintln!("berth server: the node agent stopped: {e}");
                }
            });
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), rx).await;
            eprintln!(
                "berth server: node agent registered ({} ms)",
                started.elapsed().as_millis()
            );
        }
        let shutdown = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            tracing::info!("shutting down");
        };
        plane.server.run(shutdown).await;
        Ok(())
    })
}

fn open_sqlite(path: &Path, compaction: u64) -> Result<Arc<dyn berth_kv::Store>> {
    // The API server compacts (so that every backend keeps the same
    // history); the store's own compactor stays off.
    let _ = compaction;
    let options = berth_kv_sqlite::Options {
        compact_interval: None,
        ..berth_kv_sqlite::Options::default()
    };
    let store = berth_kv_sqlite::SqliteStore::open_with(path, options)
        .with_context(|| format!("open the cluster store {}", path.display()))?;
    Ok(Arc::new(store))
}
