//! A container's environment as the kubelet builds it: `envFrom` first,
//! then `env` in order (later entries win), each value with `$(VAR)`
//! references to earlier ones expanded; values from the pod's own fields
//! (`fieldRef`), its resources (`resourceFieldRef`), ConfigMaps and Secrets.

use std::collections::BTreeMap;

use berth_types::quantity::Quantity;
use k8s_openapi::api::core::v1::{Container, EnvVar, Pod};

/// The ConfigMaps and Secrets of the pod's namespace a pod refers to,
/// fetched before the pure steps run (`None`: it does not exist).
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// ConfigMaps by name: their `data` and `binaryData` (as bytes).
    pub config_maps: BTreeMap<String, Option<BTreeMap<String, Vec<u8>>>>,
    /// Secrets by name: their `data`.
    pub secrets: BTreeMap<String, Option<BTreeMap<String, Vec<u8>>>>,
    /// The Services' variables ([`service_env`]), before the container's
    /// own (which may use and override them).
    pub service_env: Vec<(String, String)>,
}

/// The kubelet's Service variables for a pod in `namespace`: for each
/// Service with a ClusterIP — those of the namespace when
/// `enableServiceLinks` (the default), and `default/kubernetes` always —
/// `{NAME}_SERVICE_HOST`, `{NAME}_SERVICE_PORT`,
/// `{NAME}_SERVICE_PORT_{PORT_NAME}` and Docker's link variables
/// (`{NAME}_PORT=tcp://ip:port`, `{NAME}_PORT_{port}_{PROTO}[_PROTO|_PORT|_ADDR]`),
/// ordered by Service name.
pub fn service_env(
    namespace: &str,
    links: bool,
    services: &[k8s_openapi::api::core::v1::Service],
) -> Vec<(String, String)> {
    let mut chosen: BTreeMap<String, &k8s_openapi::api::core::v1::Service> = BTreeMap::new();
    for s in services {
        let ns = s.metadata.namespace.as_deref().unwrap_or("");
        let name = s.metadata.name.clone().unwrap_or_default();
        let ip = s
            .spec
            .as_ref()
            .and_then(|p| p.cluster_ip.as_deref())
            .unwrap_or("");
        if ip.is_empty() || ip == "None" {
            continue;
        }
        let master = ns == "default" && name == "kubernetes";
        if (links && ns == namespace) || master {
            // a namespace's own Service of the same name wins over default's
            if master && chosen.contains_key(&name) && namespace != "default" {
                continue;
            }
            chosen.insert(name, s);
        }
    }
    let mut out = Vec::new();
    for (name, s) in chosen {
        let spec = s.spec.clone().unwrap_or_default();
        let ip = spec.cluster_ip.clone().unwrap_or_default();
        let prefix = name.to_ascii_uppercase().replace('-', "_");
        let ports = spec.ports.unwrap_or_default();
        let Some(first) = ports.first() else { continue };
        out.push((format!("{prefix}_SERVICE_HOST"), ip.clone()));
        out.push((format!("{prefix}_SERVICE_PORT"), first.port.to_string()));
        for p in &ports {
            if let Some(n) = p.name.as_deref().filter(|n| !n.is_empty()) {
                out.push((
                    format!(
                        "{prefix}_SERVICE_PORT_{}",
                        n.to_ascii_uppercase().replace('-', "_")
                    ),
                    p.port.to_string(),
                ));
            }
        }
        let proto = |p: &k8s_openapi::api::core::v1::ServicePort| {
            p.protocol.clone().unwrap_or_else(|| "TCP".into())
        };
        out.push((
            format!("{prefix}_PORT"),
            format!(
                "{}://{ip}:{}",
                proto(first).to_ascii_lowercase(),
                first.port
            ),
        ));
        for p in &ports {
            let pr = proto(p);
            let base = format!("{prefix}_PORT_{}_{}", p.port, pr.to_ascii_uppercase());
            out.push((
                base.clone(),
                format!("{}://{ip}:{}", pr.to_ascii_lowercase(), p.port),
            ));
            out.push((format!("{base}_PROTO"), pr.to_ascii_lowercase()));
            out.push((format!("{base}_PORT"), p.port.to_string()));
            out.push((format!("{base}_ADDR"), ip.clone()));
        }
    }
    out
}

/// Why a container cannot be given its configuration
/// (`CreateContainerConfigError`, the kubelet's texts).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Expands `$(NAME)` references in `text` with `vars` as the kubelet does:
/// `$$` is a literal `$`, an unknown name stays as written.
pub fn expand(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('(') {
            match body.find(')') {
                Some(end) => {
                    let name = &body[..end];
                    match vars.get(name) {
                        Some(v) => out.push_str(v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &body[end + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = body;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The names of the ConfigMaps and Secrets a pod's containers and volumes
/// refer to (what to fetch into [`Sources`]).
pub fn referenced(pod: &Pod) -> (Vec<String>, Vec<String>) {
    let mut cms = Vec::new();
    let mut secrets = Vec::new();
    let Some(spec) = &pod.spec else {
        return (cms, secrets);
    };
    let containers = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter());
    for c in containers {
        for e in c.env_from.iter().flatten() {
            if let Some(r) = &e.config_map_ref {
                cms.push(r.name.clone());
            }
            if let Some(r) = &e.secret_ref {
                secrets.push(r.name.clone());
            }
        }
        for e in c.env.iter().flatten() {
            if let Some(from) = &e.value_from {
                if let Some(r) = &from.config_map_key_ref {
                    cms.push(r.name.clone());
                }
                if let Some(r) = &from.secret_key_ref {
                    secrets.push(r.name.clone());
                }
            }
        }
    }
    for v in spec.volumes.iter().flatten() {
        if let Some(c) = &v.config_map {
            cms.push(c.name.clone());
        }
        if let Some(s) = &v.secret
            && let Some(n) = &s.secret_name
        {
            secrets.push(n.clone());
        }
        if let Some(p) = &v.projected {
            for src in p.sources.iter().flatten() {
                if let Some(c) = &src.config_map {
                    cms.push(c.name.clone());
                }
                if let Some(s) = &src.secret {
                    secrets.push(s.name.clone());
                }
            }
        }
    }
    cms.sort();
    cms.dedup();
    secrets.sort();
    secrets.dedup();
    (cms, secrets)
}

/// A value of the pod's own fields (`fieldRef` and the downward API).
pub fn field_value(pod: &Pod, path: &str) -> Result<String, ConfigError> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let key_of = |prefix: &str| -> Option<String> {
        let inner = path.strip_prefix(prefix)?.strip_suffix("']")?;
        Some(inner.to_owned())
    };
    let v = match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "metadata.labels" => format_map(meta.labels.as_ref()),
        "metadata.annotations" => format_map(meta.annotations.as_ref()),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" => status.and_then(|s| s.host_ip.clone()).unwrap_or_default(),
        "status.hostIPs" => status
            .and_then(|s| s.host_ips.as_ref())
            .map(|ips| {
                ips.iter()
                    .map(|i| i.ip.clone())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default(),
        "status.podIP" => status.and_then(|s| s.pod_ip.clone()).unwrap_or_default(),
        "status.podIPs" => status
            .and_then(|s| s.pod_ips.as_ref())
            .map(|ips| {
                ips.iter()
                    .map(|i| i.ip.clone())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default(),
        _ => {
            if let Some(k) = key_of("metadata.labels['") {
                meta.labels
                    .as_ref()
                    .and_then(|l| l.get(&k).cloned())
                    .unwrap_or_default()
            } else if let Some(k) = key_of("metadata.annotations['") {
                meta.annotations
                    .as_ref()
                    .and_then(|l| l.get(&k).cloned())
                    .unwrap_or_default()
            } else {
                return Err(ConfigError(format!("unsupported fieldPath: {path}")));
            }
        }
    };
    Ok(v)
}

/// `key="value"` lines, sorted, as the downward API writes maps.
fn format_map(m: Option<&BTreeMap<String, String>>) -> String {
    m.map(|m| {
        m.iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join("\n")
    })
    .unwrap_or_default()
}

/// The node's allocatable resources, for limits a container leaves unset.
#[derive(Clone, Debug, Default)]
pub struct NodeAllocatable {
    /// CPU in millicores.
    pub cpu_millis: i64,
    /// Memory in bytes.
    pub memory: i64,
    /// Ephemeral storage in bytes.
    pub ephemeral_storage: i64,
}

/// A container's resource value (`resourceFieldRef`) divided by `divisor`,
/// rounded up as the kubelet rounds.
pub fn resource_value(
    c: &Container,
    resource: &str,
    divisor: Option<&str>,
    node: &NodeAllocatable,
) -> Result<String, ConfigError> {
    let res = c.resources.as_ref();
    let get = |which: &str, key: &str| -> Option<Quantity> {
        let list = match which {
            "limits" => res.and_then(|r| r.limits.as_ref()),
            _ => res.and_then(|r| r.requests.as_ref()),
        }?;
        Quantity::parse(&list.get(key)?.0).ok()
    };
    let (which, key) = resource
        .split_once('.')
        .ok_or_else(|| ConfigError(format!("unsupported container resource: {resource}")))?;
    let fallback = |key: &str| -> Quantity {
        match key {
            "cpu" => Quantity::parse(&format!("{}m", node.cpu_millis))
                .unwrap_or_else(|_| Quantity::zero()),
            "memory" => Quantity::from_int(node.memory),
            _ => Quantity::from_int(node.ephemeral_storage),
        }
    };
    let value = match (which, key) {
        ("limits", "cpu" | "memory" | "ephemeral-storage") => {
            get("limits", key).unwrap_or_else(|| fallback(key))
        }
        ("requests", "cpu" | "memory" | "ephemeral-storage") => {
            get("requests", key).unwrap_or_else(Quantity::zero)
        }
        _ => {
            return Err(ConfigError(format!(
                "unsupported container resource: {resource}"
            )));
        }
    };
    let divisor = match divisor {
        Some(d) => Quantity::parse(d).map_err(|e| ConfigError(format!("divisor {d:?}: {e}")))?,
        None => Quantity::from_int(1),
    };
    if divisor.nanos() <= 0 {
        return Err(ConfigError(format!("invalid divisor for {resource}")));
    }
    let n = value.nanos();
    let d = divisor.nanos();
    let mut q = n / d;
    if n % d != 0 {
        q += 1;
    }
    // kube: cpu values are at least 1
    if key == "cpu" && q == 0 && n > 0 {
        q = 1;
    }
    Ok(q.to_string())
}

/// The environment of container `c` of `pod`, as `KEY=value` entries in
/// the kubelet's order.
pub fn container_env(
    pod: &Pod,
    c: &Container,
    sources: &Sources,
    node: &NodeAllocatable,
) -> Result<Vec<(String, String)>, ConfigError> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut order: Vec<String> = Vec::new();
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    let set =
        |k: String, v: String, order: &mut Vec<String>, vars: &mut BTreeMap<String, String>| {
            if !vars.contains_key(&k) {
                order.push(k.clone());
            }
            vars.insert(k, v);
        };
    for (k, v) in &sources.service_env {
        set(k.clone(), v.clone(), &mut order, &mut vars);
    }
    for from in c.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let (data, optional, what, name) = if let Some(r) = &from.config_map_ref {
            (
                sources.config_maps.get(&r.name).cloned().flatten(),
                r.optional.unwrap_or(false),
                "configmap",
                r.name.clone(),
            )
        } else if let Some(r) = &from.secret_ref {
            (
                sources.secrets.get(&r.name).cloned().flatten(),
                r.optional.unwrap_or(false),
                "secret",
                r.name.clone(),
            )
        } else {
            continue;
        };
        match data {
            Some(d) => {
                for (k, v) in d {
                    set(format!("{prefix}{k}"), text(&v), &mut order, &mut vars);
                }
            }
            None if optional => {}
            None => return Err(ConfigError(format!("{what} \"{name}\" not found"))),
        }
    }
    for e in c.env.iter().flatten() {
        if let Some(v) = env_value(pod, c, e, ns, sources, node, &vars)? {
            set(e.name.clone(), v, &mut order, &mut vars);
        }
    }
    Ok(order
        .into_iter()
        .filter_map(|k| vars.get(&k).map(|v| (k.clone(), v.clone())))
        .collect())
}

fn env_value(
    pod: &Pod,
    c: &Container,
    e: &EnvVar,
    ns: &str,
    sources: &Sources,
    node: &NodeAllocatable,
    vars: &BTreeMap<String, String>,
) -> Result<Option<String>, ConfigError> {
    let Some(from) = &e.value_from else {
        return Ok(Some(expand(e.value.as_deref().unwrap_or(""), vars)));
    };
    if let Some(f) = &from.field_ref {
        return field_value(pod, &f.field_path).map(Some);
    }
    if let Some(r) = &from.resource_field_ref {
        let target = match r.container_name.as_deref() {
            Some(name) if !name.is_empty() => pod
                .spec
                .iter()
                .flat_map(|s| {
                    s.containers
                        .iter()
                        .chain(s.init_containers.iter().flatten())
                })
                .find(|x| x.name == name)
                .ok_or_else(|| ConfigError(format!("container {name:?} not found")))?,
            _ => c,
        };
        return resource_value(
            target,
            &r.resource,
            r.divisor.as_ref().map(|d| d.0.as_str()),
            node,
        )
        .map(Some);
    }
    let (map, key, name, optional, kind, label) = if let Some(r) = &from.config_map_key_ref {
        (
            sources.config_maps.get(&r.name).cloned().flatten(),
            &r.key,
            &r.name,
            r.optional.unwrap_or(false),
            "configmap",
            "ConfigMap",
        )
    } else if let Some(r) = &from.secret_key_ref {
        (
            sources.secrets.get(&r.name).cloned().flatten(),
            &r.key,
            &r.name,
            r.optional.unwrap_or(false),
            "secret",
            "Secret",
        )
    } else {
        return Ok(None);
    };
    match map {
        None if optional => Ok(None),
        None => Err(ConfigError(format!("{kind} \"{name}\" not found"))),
        Some(m) => match m.get(key) {
            Some(v) => Ok(Some(text(v))),
            None if optional => Ok(None),
            None => Err(ConfigError(format!(
                "couldn't find key {key} in {label} {ns}/{name}"
            ))),
        },
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn service_variables_as_the_kubelet_writes_them() {
        let svc = |ns: &str, name: &str, ip: &str| -> k8s_openapi::api::core::v1::Service {
            serde_json::from_value(serde_json::json!({"metadata": {"name": name, "namespace": ns},
                "spec": {"clusterIP": ip, "ports": [{"name": "https", "port": 443, "protocol": "TCP"}]}}))
            .unwrap()
        };
        let all = [
            svc("default", "kubernetes", "198.19.0.1"),
            svc("shop", "web-api", "198.19.0.40"),
            svc("other", "db", "198.19.0.41"),
            svc("shop", "headless", "None"),
        ];
        let env = service_env("shop", true, &all);
        let get = |k: &str| env.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str());
        assert_eq!(get("KUBERNETES_SERVICE_HOST"), Some("198.19.0.1"));
        assert_eq!(get("KUBERNETES_SERVICE_PORT"), Some("443"));
        assert_eq!(get("KUBERNETES_SERVICE_PORT_HTTPS"), Some("443"));
        assert_eq!(get("WEB_API_SERVICE_HOST"), Some("198.19.0.40"));
        assert_eq!(get("WEB_API_PORT"), Some("tcp://198.19.0.40:443"));
        assert_eq!(get("WEB_API_PORT_443_TCP_ADDR"), Some("198.19.0.40"));
        assert_eq!(get("DB_SERVICE_HOST"), None, "another namespace's");
        assert_eq!(get("HEADLESS_SERVICE_HOST"), None);
        // enableServiceLinks: false keeps only the API server's
        let env = service_env("shop", false, &all);
        assert!(
            env.iter().all(|(k, _)| k.starts_with("KUBERNETES_")),
            "{env:?}"
        );
    }
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn expansion_follows_the_kubelet() {
        let v = vars(&[("A", "1"), ("NAME", "名前")]);
        assert_eq!(expand("x$(A)y", &v), "x1y");
        assert_eq!(expand("$(NAME)-$(A)", &v), "名前-1");
        assert_eq!(expand("$$(A)", &v), "$(A)");
        assert_eq!(expand("$(MISSING)", &v), "$(MISSING)");
        assert_eq!(expand("$(A", &v), "$(A");
        assert_eq!(expand("a$b", &v), "a$b");
        assert_eq!(expand("é$", &v), "é$");
    }

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).expect("pod")
    }

    #[test]
    fn env_order_refs_and_errors() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{
                "name": "c", "image": "i",
                "resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "250m"}},
                "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
                "env": [
                    {"name": "A", "value": "a"},
                    {"name": "B", "value": "$(A)-$(CM_k)"},
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                    {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                    {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu"}}},
                    {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw"}}},
                    {"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "none", "key": "x", "optional": true}}}
                ]
            }]}
        }));
        let mut src = Sources::default();
        src.config_maps.insert(
            "cm".into(),
            Some(BTreeMap::from([("k".into(), b"v".to_vec())])),
        );
        src.secrets.insert(
            "s".into(),
            Some(BTreeMap::from([("pw".into(), b"hunter2".to_vec())])),
        );
        src.secrets.insert("none".into(), None);
        let c = &p.spec.as_ref().unwrap().containers[0];
        let env = container_env(&p, c, &src, &NodeAllocatable::default()).unwrap();
        let got: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            got,
            [
                "CM_k=v",
                "A=a",
                "B=a-v",
                "POD=p",
                "APP=web",
                "MEM=64",
                "CPU=1",
                "S=hunter2"
            ]
        );
        src.secrets.insert(
            "s".into(),
            Some(BTreeMap::from([("other".into(), b"x".to_vec())])),
        );
        assert_eq!(
            container_env(&p, c, &src, &NodeAllocatable::default())
                .unwrap_err()
                .0,
            "couldn't find key pw in Secret ns/s"
        );
        src.config_maps.insert("cm".into(), None);
        assert_eq!(
            container_env(&p, c, &src, &NodeAllocatable::default())
                .unwrap_err()
                .0,
            "configmap \"cm\" not found"
        );
    }
}
