//! `berth agent`: the node agent on its own, joined to a cluster's API
//! server over HTTPS (`--server URL --token T`) — the same agent
//! `berth server` runs in process for its own host.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

/// Flags naming this node (shared by `berth server` and `berth agent`).
#[derive(Args, Debug, Clone)]
pub struct NodeArgs {
    /// The node's name (default: the host name, lowercased).
    #[arg(long)]
    pub node_name: Option<String>,
    /// The node's address (default: the address of the interface with the
    /// default route, else 127.0.0.1).
    #[arg(long)]
    pub node_ip: Option<IpAddr>,
    /// The port of the node's kubelet API (logs, exec, port-forward).
    #[arg(long, default_value_t = 10250)]
    pub kubelet_port: u16,
    /// Extra node labels (key=value, repeatable).
    #[arg(long = "node-label")]
    pub node_label: Vec<String>,
    /// Hard eviction thresholds, the kubelet's syntax
    /// (`memory.available<100Mi,nodefs.available<10%`; empty: none).
    #[arg(
        long,
        default_value = "memory.available<100Mi,nodefs.available<10%,nodefs.inodesFree<5%,imagefs.available<15%"
    )]
    pub eviction_hard: String,
    /// How long a pressure condition stays after the node recovered (a Go
    /// duration).
    #[arg(long, default_value = "5m0s")]
    pub eviction_pressure_transition_period: String,
    /// The Services' address range (routed to the node's pods' bridge by
    /// its service proxy).
    #[arg(long, default_value = "198.19.0.0/20")]
    pub service_cidr: String,
    /// The cluster DNS Service's address given to pods (the kubelet's
    /// flag; default: the tenth address of the service range, 198.19.0.10).
    #[arg(long)]
    pub cluster_dns: Option<IpAddr>,
    /// The cluster's DNS domain.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
}

/// `berth agent` flags (k3s agent's names).
#[derive(Args, Debug)]
pub struct AgentArgs {
    /// The API server (https://host:port).
    #[arg(long)]
    server: String,
    /// A bearer token of a user in the system:nodes group.
    #[arg(long)]
    token: String,
    /// The cluster's CA certificate (PEM).
    #[arg(long)]
    certificate_authority: PathBuf,
    /// The kubelet API's serving certificate (PEM, signed by the cluster
    /// CA); without it the node serves no logs, exec or port-forward.
    #[arg(long, requires = "kubelet_private_key")]
    kubelet_certificate: Option<PathBuf>,
    /// Its private key (PEM).
    #[arg(long, requires = "kubelet_certificate")]
    kubelet_private_key: Option<PathBuf>,
    #[command(flatten)]
    node: NodeArgs,
}

/// The agent's configuration from the node flags.
pub fn agent_config(root: &Path, n: &NodeArgs) -> Result<berth_agent::Config> {
    let node_name = match &n.node_name {
        Some(name) => name.clone(),
        None => rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .to_lowercase(),
    };
    if node_name.is_empty()
        || node_name.len() > 253
        || !node_name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        bail!("invalid node name {node_name:?}: a lowercase DNS subdomain is needed (--node-name)");
    }
    let mut labels = BTreeMap::new();
    for l in &n.node_label {
        let (k, v) = l
            .split_once('=')
            .with_context(|| format!("invalid --node-label {l:?}: key=value"))?;
        labels.insert(k.to_owned(), v.to_owned());
    }
    let hard = berth_agent::eviction::thresholds::parse(&n.eviction_hard)
        .map_err(|e| anyhow::anyhow!("invalid --eviction-hard: {e}"))?;
    let transition = berth_types::time::parse_go_duration(&n.eviction_pressure_transition_period)
        .ok()
        .and_then(|ns| u64::try_from(ns).ok())
        .map(std::time::Duration::from_nanos)
        .with_context(|| {
            format!(
                "invalid --eviction-pressure-transition-period {:?}: a non-negative duration such as 5m0s",
                n.eviction_pressure_transition_period
            )
        })?;
    let service_cidr = n
        .service_cidr
        .split_once('/')
        .and_then(|(ip, len)| {
            Some((
                ip.parse().ok()?,
                len.parse::<u8>().ok().filter(|l| *l <= 32)?,
            ))
        })
        .with_context(|| {
            format!(
                "invalid --service-cidr {:?}: an IPv4 range such as 198.19.0.0/20",
                n.service_cidr
            )
        })?;
    let cluster_dns = n.cluster_dns.unwrap_or_else(|| {
        let (base, _) = service_cidr;
        IpAddr::V4(std::net::Ipv4Addr::from(u32::from(base).wrapping_add(10)))
    });
    let pod_cidr = berth_net::NetConfig::load(root)
        .map(|c| c.default_subnet.to_string())
        .ok();
    Ok(berth_agent::Config {
        node_name,
        node_ip: n.node_ip.unwrap_or_else(default_ip),
        root: root.to_owned(),
        kubelet_port: n.kubelet_port,
        pod_cidr,
        labels,
        kubelet_tls: None,
        eviction: berth_agent::eviction::Config { hard, transition },
        service_cidr: Some(service_cidr),
        cluster_dns: Some(cluster_dns),
        cluster_domain: n.cluster_domain.trim_end_matches('.').to_ascii_lowercase(),
    })
}

/// The address of the interface that routes outward: a UDP socket
/// "connected" to a documentation address (nothing is sent).
fn default_ip() -> IpAddr {
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| {
            s.connect("198.51.100.1:9")?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

/// Runs `berth agent`.
pub fn run(root: &Path, a: &AgentArgs) -> Result<()> {
    let mut cfg = agent_config(root, &a.node)?;
    if let (Some(cert), Some(key)) = (&a.kubelet_certificate, &a.kubelet_private_key) {
        let read = |p: &PathBuf| {
            std::fs::read_to_string(p).with_context(|| format!("read {}", p.display()))
        };
        cfg.kubelet_tls = Some(berth_agent::server::ServerTls {
            cert_pem: read(cert)?,
            key_pem: read(key)?,
            client_ca_pem: read(&a.certificate_authority)?,
        });
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    runtime.block_on(async {
        let ca = std::fs::read(&a.certificate_authority)
            .with_context(|| format!("read {}", a.certificate_authority.display()))?;
        let ca_b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &ca);
        let kubeconfig: kube::config::Kubeconfig = serde_yaml_ng::from_value(serde_yaml_ng::to_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "c", "cluster": {"server": a.server, "certificate-authority-data": ca_b64}}],
            "users": [{"name": "u", "user": {"token": a.token}}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "x"
        }))?)?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
            .await
            .context("client configuration")?;
        let client = kube::Client::try_from(config).context("client")?;
        eprintln!("berth agent: node {} joining {}", cfg.node_name, a.server);
        tokio::select! {
            r = berth_agent::run(client, cfg, None) => r.context("agent")?,
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok(())
    })
}
