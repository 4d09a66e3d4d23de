//! The routing table of the Ingresses this controller serves (pure):
//! which Ingresses are ours (class `berth`, or none when `berth` is the
//! default class), their host and path rules with kube's matching
//! (exact hosts and `*.` wildcards of one label; Exact and Prefix paths,
//! ImplementationSpecific as Prefix; the longest match wins, Exact before
//! Prefix), default backends, and TLS hosts with their Secrets. A backend
//! is the Service's ClusterIP and port: the node's service proxy spreads
//! the requests over the ready endpoints.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend, IngressClass};

/// This controller's name in `IngressClass.spec.controller`.
pub const CONTROLLER: &str = "berth.dev/ingress-controller";
/// The annotation that makes a class the default.
pub const DEFAULT_CLASS: &str = "ingressclass.kubernetes.io/is-default-class";

/// Where a request goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A Service's address and port.
    Service(SocketAddr),
    /// The backend cannot be reached (`503`), and why.
    Unavailable(String),
}

/// How a path matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathType {
    /// The whole path.
    Exact,
    /// Whole `/`-separated elements at the start.
    Prefix,
}

/// One path of one host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathRule {
    /// Its type.
    pub path_type: PathType,
    /// The path.
    pub path: String,
    /// The backend.
    pub target: Target,
}

/// Everything the servers need.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    /// Host (`""`: any host; `*.example.com`) → its paths.
    pub hosts: BTreeMap<String, Vec<PathRule>>,
    /// The default backend (the first Ingress's, by namespace and name).
    pub default: Option<Target>,
    /// TLS host → (certificate chain PEM, key PEM).
    pub tls: BTreeMap<String, (Vec<u8>, Vec<u8>)>,
}

/// Whether `class` is one of ours.
fn ours(class: &IngressClass) -> bool {
    class.spec.as_ref().and_then(|s| s.controller.as_deref()) == Some(CONTROLLER)
}

/// Whether this controller serves `ing`.
pub fn serves(ing: &Ingress, classes: &[IngressClass]) -> bool {
    let named = ing
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.clone())
        .or_else(|| {
            ing.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("kubernetes.io/ingress.class").cloned())
        });
    match named {
        Some(n) => classes
            .iter()
            .any(|c| c.metadata.name.as_deref() == Some(n.as_str()) && ours(c)),
        None => classes.iter().any(|c| {
            ours(c)
                && c.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(DEFAULT_CLASS))
                    .is_some_and(|v| v == "true")
        }),
    }
}

fn target(ns: &str, backend: &IngressBackend, services: &[Service]) -> Target {
    let Some(sb) = &backend.service else {
        return Target::Unavailable("not supported yet: resource backends".into());
    };
    let Some(svc) = services.iter().find(|s| {
        s.metadata.namespace.as_deref() == Some(ns)
            && s.metadata.name.as_deref() == Some(sb.name.as_str())
    }) else {
        return Target::Unavailable(format!("service \"{ns}/{}\" not found", sb.name));
    };
    let spec = svc.spec.clone().unwrap_or_default();
    let Some(ip) = spec
        .cluster_ip
        .as_deref()
        .and_then(|ip| ip.parse::<IpAddr>().ok())
    else {
        return Target::Unavailable(format!("service \"{ns}/{}\" has no cluster IP", sb.name));
    };
    let want = sb.port.as_ref();
    let port = spec.ports.iter().flatten().find(|p| match want {
        Some(w) if w.number.is_some() => w.number == Some(p.port),
        Some(w) => w.name.is_some() && w.name == p.name,
        None => true,
    });
    match port.and_then(|p| u16::try_from(p.port).ok()) {
        Some(p) => Target::Service(SocketAddr::new(ip, p)),
        None => Target::Unavailable(format!("service \"{ns}/{}\" has no such port", sb.name)),
    }
}

/// The table for `ingresses` (those of our class only).
pub fn build(
    ingresses: &[Ingress],
    classes: &[IngressClass],
    services: &[Service],
    secrets: &[Secret],
) -> Table {
    let mut mine: Vec<&Ingress> = ingresses.iter().filter(|i| serves(i, classes)).collect();
    mine.sort_by_key(|i| (i.metadata.namespace.clone(), i.metadata.name.clone()));
    let mut t = Table::default();
    for ing in mine {
        let ns = ing.metadata.namespace.clone().unwrap_or_default();
        let Some(spec) = &ing.spec else { continue };
        if t.default.is_none()
            && let Some(b) = &spec.default_backend
        {
            t.default = Some(target(&ns, b, services));
        }
        for rule in spec.rules.iter().flatten() {
            let host = rule.host.clone().unwrap_or_default().to_ascii_lowercase();
            let paths = t.hosts.entry(host).or_default();
            for p in rule.http.iter().flat_map(|h| h.paths.iter()) {
                let path_type = if p.path_type == "Exact" {
                    PathType::Exact
                } else {
                    PathType::Prefix
                };
                let path = p.path.clone().unwrap_or_else(|| "/".into());
                // the first Ingress to claim a host and path keeps it
                if paths
                    .iter()
                    .any(|r| r.path == path && r.path_type == path_type)
                {
                    continue;
                }
                paths.push(PathRule {
                    path_type,
                    path,
                    target: target(&ns, &p.backend, services),
                });
            }
        }
        for tls in spec.tls.iter().flatten() {
            let Some(name) = &tls.secret_name else {
                continue;
            };
            let Some(secret) = secrets.iter().find(|s| {
                s.metadata.namespace.as_deref() == Some(ns.as_str())
                    && s.metadata.name.as_deref() == Some(name.as_str())
            }) else {
                continue;
            };
            let data = secret.data.clone().unwrap_or_default();
            let (Some(crt), Some(key)) = (data.get("tls.crt"), data.get("tls.key")) else {
                continue;
            };
            for h in tls.hosts.iter().flatten() {
                t.tls
                    .entry(h.to_ascii_lowercase())
                    .or_insert_with(|| (crt.0.clone(), key.0.clone()));
            }
        }
    }
    t
}

/// What keeps an Ingress from being served as written, as (event reason,
/// message) pairs: a backend Service or port that does not exist, a TLS
/// Secret that is missing or lacks `tls.crt`/`tls.key` (its hosts get the
/// fallback certificate, as ingress-nginx serves its fake one).
pub fn problems(ing: &Ingress, services: &[Service], secrets: &[Secret]) -> Vec<(String, String)> {
    let ns = ing.metadata.namespace.clone().unwrap_or_default();
    let Some(spec) = &ing.spec else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let backends = spec
        .default_backend
        .iter()
        .chain(spec.rules.iter().flatten().flat_map(|r| {
            r.http
                .iter()
                .flat_map(|h| h.paths.iter().map(|p| &p.backend))
        }));
    for b in backends {
        if let Target::Unavailable(why) = target(&ns, b, services) {
            let m = (String::from("BackendUnavailable"), why);
            if !out.contains(&m) {
                out.push(m);
            }
        }
    }
    for tls in spec.tls.iter().flatten() {
        let Some(name) = &tls.secret_name else {
            continue;
        };
        let secret = secrets.iter().find(|s| {
            s.metadata.namespace.as_deref() == Some(ns.as_str())
                && s.metadata.name.as_deref() == Some(name.as_str())
        });
        let why = match secret {
            None => format!("secret \"{ns}/{name}\" not found; serving the default certificate"),
            Some(s) => {
                let data = s.data.clone().unwrap_or_default();
                match (data.get("tls.crt"), data.get("tls.key")) {
                    (Some(crt), Some(key)) => match crate::tls::check(&crt.0, &key.0) {
                        Ok(()) => continue,
                        Err(e) => {
                            format!("secret \"{ns}/{name}\": {e}; serving the default certificate")
                        }
                    },
                    _ => format!(
                        "secret \"{ns}/{name}\" has no tls.crt and tls.key; serving the default certificate"
                    ),
                }
            }
        };
        out.push(("TLSSecretInvalid".into(), why));
    }
    out
}

/// Whether `host` matches a rule's host (`""` any, `*.a.b` one label).
pub fn host_matches(rule: &str, host: &str) -> bool {
    if rule.is_empty() || rule == host {
        return true;
    }
    match rule.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(first, rest)| !first.is_empty() && rest == suffix),
        None => false,
    }
}

fn path_matches(rule: &PathRule, path: &str) -> bool {
    match rule.path_type {
        PathType::Exact => rule.path == path,
        PathType::Prefix => {
            let want: Vec<&str> = rule.path.split('/').filter(|s| !s.is_empty()).collect();
            let have: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
            have.len() >= want.len() && have.iter().zip(&want).all(|(a, b)| a == b)
        }
    }
}

/// Where a request for `host` and `path` goes (`None`: 404).
pub fn route<'a>(t: &'a Table, host: &str, path: &str) -> Option<&'a Target> {
    let host = host
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h)
        .to_ascii_lowercase();
    // an exact host before a wildcard before any host
    let mut candidates: Vec<(&String, &Vec<PathRule>)> = t
        .hosts
        .iter()
        .filter(|(h, _)| host_matches(h, &host))
        .collect();
    candidates.sort_by_key(|(h, _)| {
        if h.is_empty() {
            2
        } else if h.starts_with("*.") {
            1
        } else {
            0
        }
    });
    for (_, paths) in candidates {
        let best = paths
            .iter()
            .filter(|r| path_matches(r, path))
            .max_by_key(|r| (r.path.len(), r.path_type == PathType::Exact));
        if let Some(r) = best {
            return Some(&r.target);
        }
    }
    t.default.as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn objects() -> (Vec<IngressClass>, Vec<Service>) {
        let class: IngressClass = serde_json::from_value(json!({"metadata": {"name": "berth",
            "annotations": {DEFAULT_CLASS: "true"}}, "spec": {"controller": CONTROLLER}}))
        .unwrap();
        let svc = |name: &str, ip: &str| -> Service {
            serde_json::from_value(json!({"metadata": {"name": name, "namespace": "default"},
                "spec": {"clusterIP": ip, "ports": [{"name": "http", "port": 80}]}}))
            .unwrap()
        };
        (
            vec![class],
            vec![svc("web", "198.19.0.30"), svc("api", "198.19.0.31")],
        )
    }

    fn ingress(v: serde_json::Value) -> Ingress {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn hosts_and_paths_route_as_kube_says() {
        let (classes, services) = objects();
        let ing = ingress(
            json!({"metadata": {"name": "i", "namespace": "default"}, "spec": {
            "defaultBackend": {"service": {"name": "web", "port": {"number": 80}}},
            "rules": [
                {"host": "shop.example", "http": {"paths": [
                    {"path": "/api", "pathType": "Prefix", "backend": {"service": {"name": "api", "port": {"name": "http"}}}},
                    {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
                    {"path": "/exact", "pathType": "Exact", "backend": {"service": {"name": "api", "port": {"number": 80}}}}]}},
                {"host": "*.example", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "api", "port": {"number": 80}}}}]}},
                {"http": {"paths": [
                    {"path": "/missing", "pathType": "Prefix", "backend": {"service": {"name": "nope", "port": {"number": 80}}}}]}}]}}),
        );
        let t = build(&[ing], &classes, &services, &[]);
        let web = Target::Service("198.19.0.30:80".parse().unwrap());
        let api = Target::Service("198.19.0.31:80".parse().unwrap());
        assert_eq!(route(&t, "shop.example", "/api/v1"), Some(&api));
        assert_eq!(
            route(&t, "shop.example:8080", "/apix"),
            Some(&web),
            "elements, not characters"
        );
        assert_eq!(route(&t, "SHOP.example", "/exact"), Some(&api));
        assert_eq!(route(&t, "shop.example", "/exact/more"), Some(&web));
        assert_eq!(route(&t, "a.example", "/"), Some(&api));
        assert_eq!(
            route(&t, "a.b.example", "/"),
            Some(&web),
            "a wildcard is one label"
        );
        assert!(
            matches!(route(&t, "other", "/missing/x"), Some(Target::Unavailable(m)) if m.contains("\"default/nope\" not found"))
        );
        assert_eq!(route(&t, "other", "/"), Some(&web), "the default backend");
    }

    #[test]
    fn problems_name_missing_services_ports_and_secrets() {
        let (_, services) = objects();
        let secret = |name: &str, data: serde_json::Value| -> Secret {
            serde_json::from_value(
                json!({"metadata": {"name": name, "namespace": "default"}, "data": data}),
            )
            .unwrap()
        };
        let secrets = vec![
            secret("empty", json!({})),
            secret(
                "junk",
                json!({"tls.crt": "bm90IGEgY2VydA==", "tls.key": "bm90IGEga2V5"}),
            ),
        ];
        let ing = ingress(
            json!({"metadata": {"name": "i", "namespace": "default"}, "spec": {
            "tls": [{"hosts": ["a.example"], "secretName": "missing"},
                    {"hosts": ["b.example"], "secretName": "empty"},
                    {"hosts": ["c.example"], "secretName": "junk"}],
            "rules": [{"http": {"paths": [
                {"path": "/a", "pathType": "Prefix", "backend": {"service": {"name": "nope", "port": {"number": 80}}}},
                {"path": "/b", "pathType": "Prefix", "backend": {"service": {"name": "nope", "port": {"number": 80}}}},
                {"path": "/c", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 81}}}},
                {"path": "/d", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"name": "http"}}}}]}}]}}),
        );
        let p = problems(&ing, &services, &secrets);
        let texts: Vec<String> = p.iter().map(|(r, m)| format!("{r}: {m}")).collect();
        assert_eq!(texts.len(), 5, "{texts:#?}");
        assert_eq!(
            texts[0],
            "BackendUnavailable: service \"default/nope\" not found"
        );
        assert_eq!(
            texts[1],
            "BackendUnavailable: service \"default/web\" has no such port"
        );
        assert!(texts[2].starts_with("TLSSecretInvalid: secret \"default/missing\" not found"));
        assert!(texts[3].contains("\"default/empty\" has no tls.crt and tls.key"));
        assert!(
            texts[4].contains("\"default/junk\": tls.crt"),
            "{}",
            texts[4]
        );
    }

    #[test]
    fn only_our_class() {
        let (classes, services) = objects();
        let other = ingress(
            json!({"metadata": {"name": "o", "namespace": "default"}, "spec": {"ingressClassName": "nginx",
            "defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}}),
        );
        assert_eq!(build(&[other], &classes, &services, &[]), Table::default());
        let unnamed = ingress(
            json!({"metadata": {"name": "u", "namespace": "default"}, "spec": {
            "defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}}),
        );
        assert!(
            build(&[unnamed], &classes, &services, &[])
                .default
                .is_some()
        );
    }
}
