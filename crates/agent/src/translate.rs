//! A pod in the engine's terms: its sandbox (`SandboxSpec`) and each
//! container attempt (`ContainerSpec`), pure functions of the pod and what
//! was resolved for it (environment, volumes).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use berth_engine::config::{
    ContainerSpec, Dns, HostAddr, HostEntry, IpcMode, Mount, MountKind, NetworkMode, PidMode,
    PortBinding, Propagation, Resources, Seccomp, UtsMode,
};
use berth_engine::sandbox::{QosClass, Sandbox, SandboxNetwork, SandboxSpec};
use berth_types::quantity::Quantity;
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, SecurityContext};

use crate::names::{Kind, PodKey};
use crate::volumes::{self, Ready};

/// Why a container's configuration cannot be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// The pod's identity.
pub fn pod_key(pod: &Pod) -> PodKey {
    PodKey {
        namespace: pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        name: pod.metadata.name.clone().unwrap_or_default(),
        uid: pod.metadata.uid.clone().unwrap_or_default(),
    }
}

fn quantity(
    list: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
    key: &str,
) -> Option<Quantity> {
    Quantity::parse(&list?.get(key)?.0).ok()
}

/// A container's (requests, limits) of cpu in millicores and memory in bytes.
/// (cpu millicores, memory bytes), each when given.
type CpuMem = (Option<i64>, Option<i64>);

fn container_resources(c: &Container) -> (CpuMem, CpuMem) {
    let r = c.resources.as_ref();
    let lim = r.and_then(|r| r.limits.as_ref());
    let req = r.and_then(|r| r.requests.as_ref());
    let cpu =
        |q: Option<Quantity>| q.map(|q| i64::try_from(q.nanos() / 1_000_000).unwrap_or(i64::MAX));
    let mem = |q: Option<Quantity>| {
        q.map(|q| i64::try_from(q.nanos() / 1_000_000_000).unwrap_or(i64::MAX))
    };
    let limits = (cpu(quantity(lim, "cpu")), mem(quantity(lim, "memory")));
    // requests default to limits (the API server defaults them too)
    let requests = (
        cpu(quantity(req, "cpu")).or(limits.0),
        mem(quantity(req, "memory")).or(limits.1),
    );
    (requests, limits)
}

/// The pod's quality-of-service class, as the kubelet computes it.
pub fn qos_class(spec: &PodSpec) -> QosClass {
    let all: Vec<&Container> = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &all {
        let ((rc, rm), (lc, lm)) = container_resources(c);
        if rc.is_some() || rm.is_some() || lc.is_some() || lm.is_some() {
            any = true;
        }
        if lc.is_none() || lm.is_none() || rc != lc || rm != lm {
            guaranteed = false;
        }
    }
    if !any {
        QosClass::BestEffort
    } else if guaranteed {
        QosClass::Guaranteed
    } else {
        QosClass::Burstable
    }
}

/// The kubelet's name for a QoS class (`status.qosClass`).
pub fn qos_name(q: QosClass) -> &'static str {
    match q {
        QosClass::Guaranteed => "Guaranteed",
        QosClass::Burstable => "Burstable",
        QosClass::BestEffort => "BestEffort",
    }
}

/// What the node gives pods for DNS when a pod does not bring its own.
#[derive(Clone, Debug, Default)]
pub struct NodeDns {
    /// The node's resolvers (`dnsPolicy: Default`).
    pub host: Dns,
    /// The cluster DNS (`ClusterFirst`), once there is one.
    pub cluster: Option<ClusterDns>,
}

/// The cluster DNS the kubelet hands pods (`--cluster-dns`,
/// `--cluster-domain`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterDns {
    /// The DNS Service's address.
    pub server: IpAddr,
    /// The cluster domain (`cluster.local`).
    pub domain: String,
}

impl ClusterDns {
    /// A pod of `namespace`'s resolv.conf, as the kubelet writes it for
    /// `ClusterFirst`: the cluster DNS only; its namespace's, the
    /// Services' and the cluster's domains, then the node's search list;
    /// `ndots:5` (the node's options are not kept).
    pub fn for_namespace(&self, namespace: &str, host: &Dns) -> Dns {
        let d = &self.domain;
        let mut search = vec![
            format!("{namespace}.svc.{d}"),
            format!("svc.{d}"),
            d.clone(),
        ];
        search.extend(host.search.iter().cloned());
        Dns {
            servers: vec![self.server],
            search: dedup(search),
            options: vec!["ndots:5".into()],
        }
    }
}

fn dedup<T: PartialEq>(list: Vec<T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(list.len());
    for x in list {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

/// The kubelet's limit on name servers in a pod's resolv.conf.
const MAX_NAMESERVERS: usize = 3;

/// The pod's resolv.conf (the kubelet's `GetPodDNS`): by `dnsPolicy`,
/// then `dnsConfig` appended (name servers and search domains without
/// duplicates, options replacing the same-named ones).
pub fn pod_dns(spec: &PodSpec, namespace: &str, dns: &NodeDns) -> Result<Dns, Invalid> {
    let host_network = spec.host_network.unwrap_or(false);
    let cluster = |dns: &NodeDns| match &dns.cluster {
        Some(c) => c.for_namespace(namespace, &dns.host),
        // no cluster DNS: the node's, as the kubelet falls back
        None => dns.host.clone(),
    };
    let mut resolv = match spec.dns_policy.as_deref().unwrap_or("ClusterFirst") {
        "None" => Dns::default(),
        "Default" => dns.host.clone(),
        "ClusterFirstWithHostNet" => cluster(dns),
        _ if host_network => dns.host.clone(),
        _ => cluster(dns),
    };
    if let Some(cfg) = &spec.dns_config {
        for ns in cfg.nameservers.iter().flatten() {
            resolv.servers.push(
                ns.parse()
                    .map_err(|_| Invalid(format!("invalid nameserver {ns:?}")))?,
            );
        }
        resolv.servers = dedup(std::mem::take(&mut resolv.servers));
        resolv.search.extend(cfg.searches.iter().flatten().cloned());
        resolv.search = dedup(std::mem::take(&mut resolv.search));
        for o in cfg.options.iter().flatten() {
            let name = o.name.clone().unwrap_or_default();
            let text = match &o.value {
                Some(v) => format!("{name}:{v}"),
                None => name.clone(),
            };
            resolv
                .options
                .retain(|x| x.split(':').next().unwrap_or(x) != name);
            resolv.options.push(text);
        }
    }
    resolv.servers.truncate(MAX_NAMESERVERS);
    Ok(resolv)
}

/// The pod's fully qualified name, as the kubelet puts it in /etc/hosts:
/// `<hostname>.<subdomain>.<ns>.svc.<domain>` for a pod with a subdomain
/// (not on the host's network; the domain of the cluster DNS).
pub fn pod_fqdn(spec: &PodSpec, hostname: &str, namespace: &str, dns: &NodeDns) -> Option<String> {
    if spec.host_network.unwrap_or(false) {
        return None;
    }
    let sub = spec.subdomain.as_deref().filter(|s| !s.is_empty())?;
    let domain = dns
        .cluster
        .as_ref()
        .map(|c| c.domain.as_str())
        .unwrap_or("cluster.local");
    Some(format!("{hostname}.{sub}.{namespace}.svc.{domain}"))
}

/// The pod's sandbox.
pub fn sandbox_spec(pod: &Pod, node_hostname: &str, dns: &NodeDns) -> Result<SandboxSpec, Invalid> {
    let key = pod_key(pod);
    let spec = pod
        .spec
        .as_ref()
        .ok_or_else(|| Invalid("pod has no spec".into()))?;
    let host_network = spec.host_network.unwrap_or(false);
    let hostname = if host_network {
        node_hostname.to_owned()
    } else {
        let h = spec.hostname.clone().unwrap_or_else(|| key.name.clone());
        h.chars()
            .take(63)
            .collect::<String>()
            .trim_end_matches(['-', '.'])
            .to_owned()
    };
    let mut ports = Vec::new();
    for c in &spec.containers {
        for p in c.ports.iter().flatten() {
            let Some(host_port) = p.host_port.filter(|h| *h > 0) else {
                continue;
            };
            if host_network {
                continue; // the container's own port is the host's
            }
            let proto = match p.protocol.as_deref().unwrap_or("TCP") {
                "TCP" => berth_net::Proto::Tcp,
                "UDP" => berth_net::Proto::Udp,
                other => {
                    return Err(Invalid(format!(
                        "not supported yet: protocol {other} for hostPort"
                    )));
                }
            };
            ports.push(PortBinding {
                container_port: u16::try_from(p.container_port).map_err(|_| {
                    Invalid(format!("containerPort {} out of range", p.container_port))
                })?,
                proto,
                host_ip: match p.host_ip.as_deref() {
                    Some(ip) if !ip.is_empty() => Some(
                        ip.parse::<IpAddr>()
                            .map_err(|_| Invalid(format!("invalid hostIP {ip:?}")))?,
                    ),
                    _ => None,
                },
                host_port: u16::try_from(host_port)
                    .map_err(|_| Invalid(format!("hostPort {host_port} out of range")))?,
            });
        }
    }
    let resolv = pod_dns(spec, &key.namespace, dns)?;
    let mut extra_hosts = Vec::new();
    for a in spec.host_aliases.iter().flatten() {
        let ip: IpAddr =
            a.ip.parse()
                .map_err(|_| Invalid(format!("invalid hostAliases ip {:?}", a.ip)))?;
        for h in a.hostnames.iter().flatten() {
            extra_hosts.push(HostEntry {
                name: h.clone(),
                addr: HostAddr::Ip(ip),
            });
        }
    }
    let qos = qos_class(spec);
    let mut resources = Resources::default();
    if qos != QosClass::BestEffort {
        // the pod's cgroup: the sum of its containers' limits when all have one
        let lims: Vec<_> = spec
            .containers
            .iter()
            .map(|c| container_resources(c).1)
            .collect();
        if lims.iter().all(|(_, m)| m.is_some()) {
            resources.memory = lims
                .iter()
                .filter_map(|(_, m)| *m)
                .fold(0i64, i64::saturating_add);
            resources.memory_swap = resources.memory;
        }
        if lims.iter().all(|(c, _)| c.is_some()) {
            let milli = lims
                .iter()
                .filter_map(|(c, _)| *c)
                .fold(0i64, i64::saturating_add);
            resources.cpu_period = 100_000;
            resources.cpu_quota = (milli.saturating_mul(100)).max(1000);
        }
    }
    let mut sysctls = BTreeMap::new();
    for s in spec
        .security_context
        .as_ref()
        .and_then(|s| s.sysctls.as_ref())
        .into_iter()
        .flatten()
    {
        sysctls.insert(s.name.clone(), s.value.clone());
    }
    Ok(SandboxSpec {
        name: key.sandbox_name(),
        fqdn: pod_fqdn(spec, &hostname, &key.namespace, dns),
        hostname,
        network: if host_network {
            SandboxNetwork::Host
        } else {
            SandboxNetwork::Bridge {
                network: "bridge".into(),
                aliases: Vec::new(),
                ip: None,
            }
        },
        ports,
        dns: resolv,
        extra_hosts,
        qos,
        resources,
        shm_size: None,
        sysctls,
        labels: key.labels(),
        // hostPID wins (the API server refuses both together)
        share_pid: spec.share_process_namespace.unwrap_or(false) && !spec.host_pid.unwrap_or(false),
    })
}

/// What a container attempt is made from besides the pod.
#[derive(Debug)]
pub struct ContainerInputs<'a> {
    /// The container.
    pub container: &'a Container,
    /// Init, app or ephemeral.
    pub kind: Kind,
    /// The attempt number.
    pub attempt: u32,
    /// The environment (resolved, in order).
    pub env: Vec<(String, String)>,
    /// The pod's volumes on the host.
    pub volumes: &'a BTreeMap<String, Ready>,
    /// The host file that is the container's termination-message file.
    pub termination_log: PathBuf,
    /// berth's root (for Localhost seccomp profiles).
    pub root: &'a Path,
}

fn effective_security(pod: &PodSpec, c: &Container) -> (Option<i64>, Option<i64>, Option<bool>) {
    let p = pod.security_context.as_ref();
    let s = c.security_context.as_ref();
    (
        s.and_then(|s| s.run_as_user)
            .or(p.and_then(|p| p.run_as_user)),
        s.and_then(|s| s.run_as_group)
            .or(p.and_then(|p| p.run_as_group)),
        s.and_then(|s| s.run_as_non_root)
            .or(p.and_then(|p| p.run_as_non_root)),
    )
}

fn seccomp(pod: &PodSpec, sc: Option<&SecurityContext>, root: &Path) -> Result<Seccomp, Invalid> {
    let profile = sc.and_then(|s| s.seccomp_profile.as_ref()).or(pod
        .security_context
        .as_ref()
        .and_then(|p| p.seccomp_profile.as_ref()));
    match profile.map(|p| (p.type_.as_str(), p.localhost_profile.as_deref())) {
        None | Some(("RuntimeDefault", _)) => Ok(Seccomp::Default),
        Some(("Unconfined", _)) => Ok(Seccomp::Unconfined),
        Some(("Localhost", Some(path))) => {
            if !volumes::safe_relative(path) {
                return Err(Invalid(format!("invalid localhostProfile {path:?}")));
            }
            let file = root.join("kubelet").join("seccomp").join(path);
            std::fs::read_to_string(&file)
                .map(Seccomp::Profile)
                .map_err(|e| {
                    Invalid(format!(
                        "failed to load seccomp profile {}: {e}",
                        file.display()
                    ))
                })
        }
        Some((other, _)) => Err(Invalid(format!("invalid seccomp profile type {other:?}"))),
    }
}

/// One attempt of a container, in the sandbox `sandbox`.
pub fn container_spec(
    pod: &Pod,
    sandbox: &Sandbox,
    i: &ContainerInputs<'_>,
) -> Result<ContainerSpec, Invalid> {
    let key = pod_key(pod);
    let spec = pod
        .spec
        .as_ref()
        .ok_or_else(|| Invalid("pod has no spec".into()))?;
    let c = i.container;
    let vars: BTreeMap<String, String> = i.env.iter().cloned().collect();
    let expand_all = |v: &Option<Vec<String>>| {
        v.as_ref().map(|v| {
            v.iter()
                .map(|a| crate::env::expand(a, &vars))
                .collect::<Vec<_>>()
        })
    };
    let entrypoint = expand_all(&c.command);
    let mut cmd = expand_all(&c.args);
    if entrypoint.is_some() && cmd.is_none() {
        cmd = Some(Vec::new());
    }
    let (uid, gid, non_root) = effective_security(spec, c);
    if non_root == Some(true) && uid == Some(0) {
        return Err(Invalid(format!(
            "container's runAsUser breaks non-root policy (pod: \"{}_{}({})\", container: {})",
            key.name, key.namespace, key.uid, c.name
        )));
    }
    let user = match (uid, gid) {
        (Some(u), Some(g)) => Some(format!("{u}:{g}")),
        (Some(u), None) => Some(u.to_string()),
        (None, Some(g)) => Some(format!("0:{g}")),
        (None, None) => None,
    };
    let psc = spec.security_context.as_ref();
    let mut group_add: Vec<String> = psc
        .and_then(|p| p.supplemental_groups.as_ref())
        .into_iter()
        .flatten()
        .map(|g| g.to_string())
        .collect();
    if let Some(g) = psc.and_then(|p| p.fs_group) {
        group_add.push(g.to_string());
    }
    let sc = c.security_context.as_ref();
    let mut security = berth_engine::config::Security {
        privileged: sc.and_then(|s| s.privileged).unwrap_or(false),
        read_only_rootfs: sc
            .and_then(|s| s.read_only_root_filesystem)
            .unwrap_or(false),
        no_new_privileges: sc.and_then(|s| s.allow_privilege_escalation) == Some(false),
        seccomp: seccomp(spec, sc, i.root)?,
        ..Default::default()
    };
    if let Some(caps) = sc.and_then(|s| s.capabilities.as_ref()) {
        security.cap_add = caps.add.clone().unwrap_or_default();
        security.cap_drop = caps.drop.clone().unwrap_or_default();
    }
    let mut mounts = Vec::new();
    for m in c.volume_mounts.iter().flatten() {
        let vol = i.volumes.get(&m.name).ok_or_else(|| {
            Invalid(format!(
                "volume {:?} of volumeMount {:?} is not in the pod",
                m.name, m.mount_path
            ))
        })?;
        let sub = match (&m.sub_path, &m.sub_path_expr) {
            (Some(s), _) if !s.is_empty() => Some(s.clone()),
            (_, Some(e)) if !e.is_empty() => Some(crate::env::expand(e, &vars)),
            _ => None,
        };
        let source = match sub {
            Some(s) => volumes::sub_path(&vol.path, &s).map_err(Invalid)?,
            None => vol.path.clone(),
        };
        let propagation = match m.mount_propagation.as_deref() {
            Some("HostToContainer") => Some(Propagation::Rslave),
            Some("Bidirectional") => Some(Propagation::Rshared),
            _ => Some(Propagation::Rprivate),
        };
        mounts.push(Mount {
            kind: MountKind::Bind,
            source: Some(source.to_string_lossy().into_owned()),
            target: m.mount_path.clone(),
            read_only: m.read_only.unwrap_or(false) || vol.read_only,
            propagation,
            ..Default::default()
        });
    }
    let tpath = c
        .termination_message_path
        .clone()
        .unwrap_or_else(|| "/dev/termination-log".into());
    if !mounts.iter().any(|m| m.target == tpath) {
        mounts.push(Mount {
            kind: MountKind::Bind,
            source: Some(i.termination_log.to_string_lossy().into_owned()),
            target: tpath,
            read_only: false,
            ..Default::default()
        });
    }
    let ((req_cpu, req_mem), (lim_cpu, lim_mem)) = container_resources(c);
    let mut resources = Resources::default();
    if let Some(m) = lim_mem {
        resources.memory = m;
        resources.memory_swap = m;
    }
    if let Some(milli) = lim_cpu {
        resources.cpu_period = 100_000;
        resources.cpu_quota = milli.saturating_mul(100).max(1000);
    }
    resources.cpu_shares = match req_cpu {
        Some(milli) => (milli.saturating_mul(1024) / 1000).max(2),
        None => 2,
    };
    let qos = sandbox.qos;
    let oom_score_adj = match qos {
        QosClass::BestEffort => 1000,
        QosClass::Guaranteed => 0, // kube: -997; lowering needs CAP_SYS_RESOURCE
        QosClass::Burstable => {
            let mem = req_mem.unwrap_or(0);
            let cap = crate::node::memory_bytes().max(1);
            (1000 - (1000 * i128::from(mem) / i128::from(cap)) as i32).clamp(2, 999)
        }
    };
    let grace = spec.termination_grace_period_seconds.unwrap_or(30);
    let host_ipc = spec.host_ipc.unwrap_or(false);
    let host_pid = spec.host_pid.unwrap_or(false);
    let mut out = ContainerSpec {
        name: Some(key.container_name(&c.name, i.attempt)),
        image: c.image.clone().unwrap_or_default(),
        cmd,
        entrypoint,
        env: i.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        working_dir: c.working_dir.clone().filter(|w| !w.is_empty()),
        user,
        tty: c.tty.unwrap_or(false),
        open_stdin: c.stdin.unwrap_or(false),
        stdin_once: c.stdin_once.unwrap_or(false),
        labels: key.container_labels(&c.name, i.kind, i.attempt),
        stop_timeout: Some(grace),
        mounts,
        resources,
        security,
        group_add,
        oom_score_adj,
        cgroup_parent: Some(sandbox.cgroup_parent.clone()),
        ..Default::default()
    };
    out.network.mode = NetworkMode::Sandbox(sandbox.id.clone());
    out.namespaces.ipc = if host_ipc {
        IpcMode::Host
    } else {
        IpcMode::Sandbox(sandbox.id.clone())
    };
    out.namespaces.uts = UtsMode::Sandbox(sandbox.id.clone());
    // the kubelet's order: the host's, else the pod's shared one (its
    // sandbox holds it), else the container's own
    if host_pid {
        out.namespaces.pid = PidMode::Host;
    } else if sandbox.share_pid {
        out.namespaces.pid = PidMode::Sandbox(sandbox.id.clone());
    }
    if out.image.is_empty() {
        return Err(Invalid(format!("container {:?} has no image", c.name)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).expect("pod")
    }

    #[test]
    fn qos_classes() {
        let be = pod(serde_json::json!({"spec": {"containers": [{"name": "a"}]}}));
        assert_eq!(qos_class(be.spec.as_ref().unwrap()), QosClass::BestEffort);
        let g = pod(serde_json::json!({"spec": {"containers": [{"name": "a",
            "resources": {"limits": {"cpu": "1", "memory": "64Mi"}}}]}}));
        assert_eq!(qos_class(g.spec.as_ref().unwrap()), QosClass::Guaranteed);
        let b = pod(serde_json::json!({"spec": {"containers": [{"name": "a",
            "resources": {"requests": {"cpu": "100m"}}}]}}));
        assert_eq!(qos_class(b.spec.as_ref().unwrap()), QosClass::Burstable);
    }

    #[test]
    fn sandbox_of_a_pod() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "u1"},
            "spec": {"hostname": "h", "containers": [{"name": "a", "ports": [{"containerPort": 80, "hostPort": 8080}]}],
                     "hostAliases": [{"ip": "198.18.9.9", "hostnames": ["x"]}],
                     "dnsPolicy": "None", "dnsConfig": {"nameservers": ["198.18.0.53"], "searches": ["s"], "options": [{"name": "ndots", "value": "2"}]}}
        }));
        let s = sandbox_spec(&p, "node", &NodeDns::default()).unwrap();
        assert_eq!(s.name, "ns_web_u1");
        assert_eq!(s.hostname, "h");
        assert_eq!(s.ports.len(), 1);
        assert_eq!(s.ports[0].host_port, 8080);
        assert_eq!(s.dns.options, ["ndots:2"]);
        assert_eq!(s.extra_hosts[0].name, "x");
        assert_eq!(s.fqdn, None);
        let p = pod(serde_json::json!({
            "metadata": {"name": "db-0", "namespace": "ns", "uid": "u2"},
            "spec": {"hostname": "db-0", "subdomain": "db", "containers": [{"name": "a"}]}
        }));
        let s = sandbox_spec(&p, "node", &NodeDns::default()).unwrap();
        assert_eq!(s.fqdn.as_deref(), Some("db-0.db.ns.svc.cluster.local"));
    }

    #[test]
    fn resolv_conf_by_dns_policy() {
        let host = Dns {
            servers: vec!["198.51.100.53".parse().unwrap()],
            search: vec!["corp.example".into()],
            options: vec!["edns0".into()],
        };
        let node = NodeDns {
            host: host.clone(),
            cluster: Some(ClusterDns {
                server: "198.19.0.10".parse().unwrap(),
                domain: "cluster.local".into(),
            }),
        };
        let cluster = |ns: &str| Dns {
            servers: vec!["198.19.0.10".parse().unwrap()],
            search: vec![
                format!("{ns}.svc.cluster.local"),
                "svc.cluster.local".into(),
                "cluster.local".into(),
                "corp.example".into(),
            ],
            options: vec!["ndots:5".into()],
        };
        let spec = |v: serde_json::Value| -> PodSpec { serde_json::from_value(v).unwrap() };
        let table: Vec<(serde_json::Value, &str, Dns)> = vec![
            // ClusterFirst is the default
            (
                serde_json::json!({"containers": []}),
                "default",
                cluster("default"),
            ),
            (
                serde_json::json!({"containers": [], "dnsPolicy": "ClusterFirst"}),
                "prod",
                cluster("prod"),
            ),
            // host network: the node's unless ClusterFirstWithHostNet
            (
                serde_json::json!({"containers": [], "hostNetwork": true}),
                "prod",
                host.clone(),
            ),
            (
                serde_json::json!({"containers": [], "hostNetwork": true, "dnsPolicy": "ClusterFirstWithHostNet"}),
                "prod",
                cluster("prod"),
            ),
            (
                serde_json::json!({"containers": [], "dnsPolicy": "Default"}),
                "prod",
                host.clone(),
            ),
            (
                serde_json::json!({"containers": [], "dnsPolicy": "None",
                    "dnsConfig": {"nameservers": ["198.51.100.1"], "searches": ["a.example"]}}),
                "prod",
                Dns {
                    servers: vec!["198.51.100.1".parse().unwrap()],
                    search: vec!["a.example".into()],
                    options: vec![],
                },
            ),
            // dnsConfig appended: duplicates dropped, options replaced by name
            (
                serde_json::json!({"containers": [], "dnsConfig": {
                    "nameservers": ["198.19.0.10", "198.51.100.2"],
                    "searches": ["svc.cluster.local", "extra.example"],
                    "options": [{"name": "ndots", "value": "2"}, {"name": "single-request"}]}}),
                "default",
                Dns {
                    servers: vec![
                        "198.19.0.10".parse().unwrap(),
                        "198.51.100.2".parse().unwrap(),
                    ],
                    search: vec![
                        "default.svc.cluster.local".into(),
                        "svc.cluster.local".into(),
                        "cluster.local".into(),
                        "corp.example".into(),
                        "extra.example".into(),
                    ],
                    options: vec!["ndots:2".into(), "single-request".into()],
                },
            ),
        ];
        for (v, ns, want) in table {
            assert_eq!(pod_dns(&spec(v.clone()), ns, &node).unwrap(), want, "{v}");
        }
        // no cluster DNS: the node's
        let bare = NodeDns {
            host: host.clone(),
            cluster: None,
        };
        assert_eq!(
            pod_dns(&spec(serde_json::json!({"containers": []})), "x", &bare).unwrap(),
            host
        );
        assert!(
            pod_dns(
                &spec(
                    serde_json::json!({"containers": [], "dnsConfig": {"nameservers": ["bogus"]}})
                ),
                "x",
                &node
            )
            .is_err()
        );
    }

    fn sandbox_of(share_pid: bool) -> Sandbox {
        Sandbox {
            schema: 1,
            id: "f".repeat(64),
            name: "ns_web_u1".into(),
            created: String::new(),
            hostname: "web".into(),
            network: SandboxNetwork::None,
            ports: Vec::new(),
            dns: Dns::default(),
            extra_hosts: Vec::new(),
            qos: QosClass::BestEffort,
            cgroup_parent: "/berth/pods/besteffort/x".into(),
            resources: Resources::default(),
            shm_size: None,
            sysctls: BTreeMap::new(),
            labels: BTreeMap::new(),
            state: berth_engine::sandbox::SandboxState::Ready,
            ip: None,
            gateway: None,
            share_pid,
            pause_pid: 0,
            pause_start: 0,
            fqdn: None,
        }
    }

    #[test]
    fn share_process_namespace_makes_one_pid_namespace_for_every_container_kind() {
        // (shareProcessNamespace, hostPID) -> sandbox shares, container's mode
        for (share, host, shares, mode) in [
            (Some(true), None, true, "sandbox"),
            (Some(true), Some(false), true, "sandbox"),
            (Some(false), None, false, "private"),
            (None, None, false, "private"),
            (None, Some(true), false, "host"),
            // refused by the API server; hostPID wins, as in the kubelet
            (Some(true), Some(true), false, "host"),
        ] {
            let p = pod(serde_json::json!({
                "metadata": {"name": "web", "namespace": "ns", "uid": "u1"},
                "spec": {"shareProcessNamespace": share, "hostPID": host,
                         "initContainers": [{"name": "i", "image": "bb"}],
                         "containers": [{"name": "a", "image": "bb"}]}
            }));
            let s = sandbox_spec(&p, "node", &NodeDns::default()).unwrap();
            assert_eq!(s.share_pid, shares, "{share:?} {host:?}");
            let sb = sandbox_of(s.share_pid);
            let spec = p.spec.as_ref().unwrap();
            let volumes = BTreeMap::new();
            for (c, kind) in [
                (&spec.init_containers.as_ref().unwrap()[0], Kind::Init),
                (&spec.containers[0], Kind::Container),
                (&spec.containers[0], Kind::Ephemeral),
            ] {
                let inputs = ContainerInputs {
                    container: c,
                    kind,
                    attempt: 0,
                    env: Vec::new(),
                    volumes: &volumes,
                    termination_log: PathBuf::from("/nonexistent"),
                    root: Path::new("/nonexistent"),
                };
                let out = container_spec(&p, &sb, &inputs).unwrap();
                let want = match mode {
                    "sandbox" => PidMode::Sandbox(sb.id.clone()),
                    "host" => PidMode::Host,
                    _ => PidMode::Private,
                };
                assert_eq!(out.namespaces.pid, want, "{share:?} {host:?} {kind:?}");
            }
        }
    }
}
