//! `metrics.k8s.io/v1beta1` (`kubectl top`), served by the API server
//! itself as metrics-server would: each node's kubelet is read
//! (`/metrics/resource`, Prometheus text) and CPU use is the rate between
//! two readings of the same node (the previous one kept here, or a second
//! one a second later when there is none recent), memory the working set
//! of the latest.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::response::Response;
use serde_json::{Value, json};

use super::{Api, Ctx, respond};
use crate::error::ApiError;
use crate::request::Target;
use crate::selectors::LabelSelector;

/// The group's name.
pub const GROUP: &str = "metrics.k8s.io";
/// A reading older than this is not used for a rate.
const STALE: Duration = Duration::from_secs(60);
/// The shortest window a rate is computed over.
const MIN_WINDOW: Duration = Duration::from_millis(900);

/// One reading of a kubelet.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reading {
    /// The node's CPU time, seconds.
    pub node_cpu: f64,
    /// The node's memory working set, bytes.
    pub node_memory: u64,
    /// (namespace, pod, container) → (CPU seconds, working set bytes).
    pub containers: BTreeMap<(String, String, String), (f64, u64)>,
}

/// The readings kept between requests, by node.
#[derive(Debug, Default)]
pub struct Readings(Mutex<HashMap<String, (Instant, Reading)>>);

/// Parses a kubelet's `/metrics/resource` (an exposition that cannot be
/// read gives an empty reading).
pub fn parse(text: &str) -> Reading {
    let mut r = Reading::default();
    let samples = match berth_types::prom::parse(text) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "a kubelet's resource metrics");
            return r;
        }
    };
    for s in samples {
        match s.name.as_str() {
            "node_cpu_usage_seconds_total" => r.node_cpu = s.value,
            "node_memory_working_set_bytes" => r.node_memory = s.value as u64,
            "container_cpu_usage_seconds_total" | "container_memory_working_set_bytes" => {
                let (Some(ns), Some(pod), Some(c)) =
                    (s.label("namespace"), s.label("pod"), s.label("container"))
                else {
                    continue;
                };
                let e = r
                    .containers
                    .entry((ns.to_owned(), pod.to_owned(), c.to_owned()))
                    .or_default();
                if s.name == "container_cpu_usage_seconds_total" {
                    e.0 = s.value;
                } else {
                    e.1 = s.value as u64;
                }
            }
            _ => {}
        }
    }
    r
}

/// CPU in nanocores as metrics-server writes it (`123456n`).
fn nanocores(seconds: f64, window: Duration) -> String {
    let n = (seconds.max(0.0) / window.as_secs_f64().max(1e-9) * 1e9).round() as u64;
    format!("{n}n")
}

fn memory(bytes: u64) -> String {
    berth_types::quantity::Quantity::from_bytes(bytes as i64).to_string()
}

fn window(w: Duration) -> String {
    let ms = w.as_millis();
    format!("{}.{:03}s", ms / 1000, ms % 1000)
}

/// Usage of one node between two readings: (node CPU, node memory, per
/// container (cpu, memory)).
struct Usage {
    at: String,
    window: Duration,
    node_cpu: String,
    node_memory: String,
    containers: BTreeMap<(String, String, String), (String, String)>,
}

async fn read(api: &Api, node: &Value) -> Result<Reading, ApiError> {
    let body = super::node_proxy::kubelet_get(api, node, "/metrics/resource").await?;
    Ok(parse(&String::from_utf8_lossy(&body)))
}

/// The usage of `node` now (taking one or two readings).
async fn usage(api: &Api, node: &Value) -> Result<Usage, ApiError> {
    let name = crate::meta::meta_str(node, "name").to_owned();
    let before = api
        .resource_metrics
        .0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&name)
        .cloned()
        .filter(|(at, _)| at.elapsed() < STALE);
    let (t0, r0) = match before {
        Some((at, r)) if at.elapsed() >= MIN_WINDOW => (at, r),
        _ => {
            let r = read(api, node).await?;
            let at = Instant::now();
            tokio::time::sleep(
                MIN_WINDOW.saturating_sub(at.elapsed()) + Duration::from_millis(100),
            )
            .await;
            (at, r)
        }
    };
    let r1 = read(api, node).await?;
    let t1 = Instant::now();
    api.resource_metrics
        .0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(name, (t1, r1.clone()));
    let w = t1.duration_since(t0);
    let containers = r1
        .containers
        .iter()
        .map(|(k, (cpu, mem))| {
            let prev = r0.containers.get(k).map_or(*cpu, |p| p.0);
            (k.clone(), (nanocores(cpu - prev, w), memory(*mem)))
        })
        .collect();
    Ok(Usage {
        at: crate::meta::now(),
        window: w,
        node_cpu: nanocores(r1.node_cpu - r0.node_cpu, w),
        node_memory: memory(r1.node_memory),
        containers,
    })
}

async fn list(api: &Api, plural: &str) -> Result<Vec<Value>, ApiError> {
    let resource = api
        .registry
        .get("", "v1", plural)
        .ok_or_else(|| ApiError::internal(format!("{plural} are not registered")))?;
    let (items, _) = api
        .objects
        .list_all(&format!("/registry/{}/", resource.key_prefix), 0)
        .await?;
    Ok(items)
}

fn meta(obj: &Value) -> Value {
    let m = crate::meta::metadata(obj);
    let mut out = serde_json::Map::new();
    for k in ["name", "namespace", "labels"] {
        if let Some(v) = m.get(k) {
            out.insert(k.to_owned(), v.clone());
        }
    }
    out.insert("creationTimestamp".into(), json!(crate::meta::now()));
    Value::Object(out)
}

/// Serves a get or list of `nodes` or `pods` in the metrics group.
pub async fn serve(
    api: &Api,
    target: &Target,
    ctx: &Ctx,
    verb: &str,
) -> Result<Response, ApiError> {
    if verb != "get" && verb != "list" {
        return Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        ));
    }
    let selector = LabelSelector::parse(ctx.query.get("labelSelector").unwrap_or(""))?;
    let nodes = list(api, "nodes").await?;
    let mut usages = Vec::new();
    for n in &nodes {
        match usage(api, n).await {
            Ok(u) => usages.push((n, u)),
            Err(e) => {
                tracing::debug!(node = crate::meta::meta_str(n, "name"), error = %e.message, "metrics")
            }
        }
    }
    let (kind, items): (&str, Vec<Value>) = if target.resource.plural == "nodes" {
        let items = usages
            .iter()
            .filter(|(n, _)| selector.matches(n))
            .filter(|(n, _)| {
                target.name.is_empty() || crate::meta::meta_str(n, "name") == target.name
            })
            .map(|(n, u)| {
                json!({"metadata": meta(n), "timestamp": u.at, "window": window(u.window),
                       "usage": {"cpu": u.node_cpu, "memory": u.node_memory}})
            })
            .collect();
        ("NodeMetrics", items)
    } else {
        let pods = list(api, "pods").await?;
        let mut items = Vec::new();
        for p in &pods {
            let ns = crate::meta::meta_str(p, "namespace");
            let name = crate::meta::meta_str(p, "name");
            if (!target.namespace.is_empty() && ns != target.namespace)
                || (!target.name.is_empty() && name != target.name)
                || !selector.matches(p)
            {
                continue;
            }
            for (_, u) in &usages {
                let containers: Vec<Value> = u
                    .containers
                    .iter()
                    .filter(|((cns, cpod, _), _)| cns == ns && cpod == name)
                    .map(|((_, _, c), (cpu, mem))| json!({"name": c, "usage": {"cpu": cpu, "memory": mem}}))
                    .collect();
                if !containers.is_empty() {
                    items.push(
                        json!({"metadata": meta(p), "timestamp": u.at, "window": window(u.window),
                                      "containers": containers}),
                    );
                }
            }
        }
        ("PodMetrics", items)
    };
    let api_version = format!("{GROUP}/v1beta1");
    if !target.name.is_empty() {
        let Some(mut item) = items.into_iter().next() else {
            let what = if target.namespace.is_empty() {
                target.name.clone()
            } else {
                format!("{}/{}", target.namespace, target.name)
            };
            return Err(ApiError::not_found(
                GROUP,
                &format!(
                    "{}metrics",
                    kind.trim_end_matches("Metrics").to_ascii_lowercase()
                ),
                &what,
            ));
        };
        item["kind"] = json!(kind);
        item["apiVersion"] = json!(api_version);
        return Ok(respond(200, &item, &ctx.warnings));
    }
    let body = json!({"kind": format!("{kind}List"), "apiVersion": api_version, "metadata": {}, "items": items});
    Ok(respond(200, &body, &ctx.warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_kubelet_format() {
        let text = "# HELP x\nnode_cpu_usage_seconds_total 12.5 1700000000000\nnode_memory_working_set_bytes 1048576 1\n\
            container_cpu_usage_seconds_total{container=\"c\",namespace=\"default\",pod=\"web\"} 0.25 1\n\
            container_memory_working_set_bytes{container=\"c\",namespace=\"default\",pod=\"web\"} 2048 1\n\
            container_memory_working_set_bytes{container=\"q\\\"x\",namespace=\"n\",pod=\"p\"} 7 1\nscrape_error 0\n";
        let r = parse(text);
        assert_eq!(r.node_cpu, 12.5);
        assert_eq!(r.node_memory, 1 << 20);
        assert_eq!(
            r.containers[&("default".into(), "web".into(), "c".into())],
            (0.25, 2048)
        );
        assert_eq!(r.containers[&("n".into(), "p".into(), "q\"x".into())].1, 7);
    }

    #[test]
    fn quantities_as_metrics_server_writes_them() {
        assert_eq!(nanocores(0.5, Duration::from_secs(1)), "500000000n");
        assert_eq!(nanocores(-1.0, Duration::from_secs(1)), "0n");
        assert_eq!(memory(2 << 20), "2Mi");
        assert_eq!(window(Duration::from_millis(1002)), "1.002s");
    }
}
