//! Server-side printing: `meta.k8s.io/v1` Tables with kubectl's columns
//! for the built-in kinds, CRDs' additionalPrinterColumns, and Name/Age
//! (kube's "Created At") for the rest.

use serde_json::{Value, json};

use crate::api::Api;
use crate::meta;
use crate::resources::Resource;

/// A column: name, type, priority (1 = only with `-o wide`).
type Column = (&'static str, &'static str, u8);

/// kube's `duration.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    let secs = secs.max(0);
    if secs < 60 * 2 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        let s = secs % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let days = (hours / 24) % 365;
        return if days == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{days}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// The age of a timestamp field, or `<unknown>`.
fn age_of(stamp: &str) -> String {
    match berth_types::time::parse_rfc3339(stamp) {
        Ok((secs, _)) => human_duration(meta::unix_now().0 - secs),
        Err(_) => "<unknown>".to_owned(),
    }
}

fn age(obj: &Value) -> Value {
    json!(age_of(meta::meta_str(obj, "creationTimestamp")))
}

fn s(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn or_none(text: String) -> Value {
    if text.is_empty() {
        json!("<none>")
    } else {
        json!(text)
    }
}

fn int(obj: &Value, ptr: &str) -> i64 {
    obj.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

fn name(obj: &Value) -> Value {
    json!(meta::meta_str(obj, "name"))
}

fn pod_cells(pod: &Value) -> Vec<Value> {
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let statuses = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let ready = statuses
        .iter()
        .filter(|c| c.get("ready").and_then(Value::as_bool) == Some(true))
        .count();
    let restarts: i64 = statuses
        .iter()
        .map(|c| c.get("restartCount").and_then(Value::as_i64).unwrap_or(0))
        .sum();
    let mut status = s(pod.pointer("/status/reason"));
    if status.is_empty() {
        status = s(pod.pointer("/status/phase"));
    }
    for c in &statuses {
        if let Some(reason) = c.pointer("/state/waiting/reason").and_then(Value::as_str) {
            status = reason.to_owned();
        } else if let Some(reason) = c
            .pointer("/state/terminated/reason")
            .and_then(Value::as_str)
        {
            status = reason.to_owned();
        }
    }
    if !meta::meta_str(pod, "deletionTimestamp").is_empty() {
        status = "Terminating".to_owned();
    }
    if status.is_empty() {
        status = "Pending".to_owned();
    }
    let readiness_gates = pod
        .pointer("/spec/readinessGates")
        .and_then(Value::as_array)
        .map(|g| {
            let conditions = pod
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let ok = g
                .iter()
                .filter(|gate| {
                    let t = gate.get("conditionType");
                    conditions.iter().any(|c| {
                        c.get("type") == t
                            && c.get("status").and_then(Value::as_str) == Some("True")
                    })
                })
                .count();
            format!("{ok}/{}", g.len())
        });
    vec![
        name(pod),
        json!(format!("{ready}/{containers}")),
        json!(status),
        json!(restarts.to_string()),
        age(pod),
        or_none(s(pod.pointer("/status/podIP"))),
        or_none(s(pod.pointer("/spec/nodeName"))),
        or_none(s(pod.pointer("/status/nominatedNodeName"))),
        or_none(readiness_gates.unwrap_or_default()),
    ]
}

const POD: &[Column] = &[
    ("Name", "string", 0),
    ("Ready", "string", 0),
    ("Status", "string", 0),
    ("Restarts", "string", 0),
    ("Age", "string", 0),
    ("IP", "string", 1),
    ("Node", "string", 1),
    ("Nominated Node", "string", 1),
    ("Readiness Gates", "string", 1),
];

fn joined(values: Option<&Value>, field: &str) -> String {
    values
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.get(field).and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn selector_text(sel: Option<&Value>) -> String {
    match sel {
        Some(Value::Object(map))
            if map.contains_key("matchLabels") || map.contains_key("matchExpressions") =>
        {
            crate::selectors::LabelSelector::from_object(&Value::Object(map.clone()))
                .map(|s| s.to_text())
                .unwrap_or_default()
        }
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect::<Vec<_>>()
            .join(","),
        _ => String::new(),
    }
}

fn template_columns(obj: &Value, template: &str) -> [Value; 3] {
    let containers = obj.pointer(&format!("{template}/spec/containers"));
    [
        json!(joined(containers, "name")),
        json!(joined(containers, "image")),
        or_none(selector_text(obj.pointer("/spec/selector"))),
    ]
}

fn service_ports(svc: &Value) -> String {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ports| {
            ports
                .iter()
                .map(|p| {
                    let port = p.get("port").map(|v| s(Some(v))).unwrap_or_default();
                    let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
                    match p.get("nodePort") {
                        Some(np) => format!("{port}:{}/{proto}", s(Some(np))),
                        None => format!("{port}/{proto}"),
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "<none>".to_owned())
}

/// An HPA's TARGETS cell as kubectl 1.33 prints it (`cpu: 250%/50%`,
/// `<unknown>` before a reading).
fn hpa_targets(hpa: &Value) -> String {
    let current = hpa
        .pointer("/status/currentMetrics")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut cells = Vec::new();
    if let Some(pct) = hpa.pointer("/spec/targetCPUUtilizationPercentage") {
        let now = hpa
            .pointer("/status/currentCPUUtilizationPercentage")
            .map(|v| format!("{}%", s(Some(v))))
            .unwrap_or_else(|| "<unknown>".to_owned());
        cells.push(format!("cpu: {now}/{}%", s(Some(pct))));
    }
    for m in hpa
        .pointer("/spec/metrics")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let kind = m.get("type").and_then(Value::as_str).unwrap_or("");
        let key = match kind {
            "Resource" => "resource",
            "ContainerResource" => "containerResource",
            _ => {
                cells.push(format!("<{kind} metric>"));
                continue;
            }
        };
        let at = |v: &Value, path: &str| v.pointer(&format!("/{key}/{path}")).cloned();
        let resource = s(at(m, "name").as_ref());
        let seen = current.iter().find(|c| {
            c.get("type").and_then(Value::as_str) == Some(kind)
                && s(at(c, "name").as_ref()) == resource
                && at(c, "container") == at(m, "container")
        });
        if let Some(u) = at(m, "target/averageUtilization") {
            let now = seen
                .and_then(|c| at(c, "current/averageUtilization"))
                .map(|v| format!("{}%", s(Some(&v))))
                .unwrap_or_else(|| "<unknown>".to_owned());
            cells.push(format!("{resource}: {now}/{}%", s(Some(&u))));
        } else {
            let now = seen
                .and_then(|c| at(c, "current/averageValue"))
                .map(|v| s(Some(&v)))
                .unwrap_or_else(|| "<unknown>".to_owned());
            cells.push(format!(
                "{resource}: {now}/{}",
                s(at(m, "target/averageValue").as_ref())
            ));
        }
    }
    if cells.is_empty() {
        "<none>".to_owned()
    } else {
        cells.join(", ")
    }
}

fn node_status(node: &Value) -> String {
    let conditions = node
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut status = match conditions
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
    {
        Some(c) if c.get("status").and_then(Value::as_str) == Some("True") => "Ready".to_owned(),
        Some(_) => "NotReady".to_owned(),
        None => "Unknown".to_owned(),
    };
    if node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    status
}

fn node_roles(node: &Value) -> String {
    let mut roles: Vec<&str> = meta::labels(node)
        .map(|l| {
            l.keys()
                .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                .collect()
        })
        .unwrap_or_default();
    roles.sort_unstable();
    if roles.is_empty() {
        "<none>".to_owned()
    } else {
        roles.join(",")
    }
}

fn address(node: &Value, kind: &str) -> Value {
    let found = node
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .and_then(|a| {
            a.iter()
                .find(|x| x.get("type").and_then(Value::as_str) == Some(kind))
        })
        .and_then(|x| x.get("address"))
        .and_then(Value::as_str)
        .unwrap_or("<none>");
    json!(found)
}

/// Columns and cells for a built-in kind; `None` for the generic form.
fn builtin(group: &str, kind: &str, obj: &Value) -> Option<(&'static [Column], Vec<Value>)> {
    Some(match (group, kind) {
        ("", "Pod") => (POD, pod_cells(obj)),
        ("", "Namespace") => (
            &[
                ("Name", "string", 0),
                ("Status", "string", 0),
                ("Age", "string", 0),
            ],
            vec![name(obj), json!(s(obj.pointer("/status/phase"))), age(obj)],
        ),
        ("", "Node") => (
            &[
                ("Name", "string", 0),
                ("Status", "string", 0),
                ("Roles", "string", 0),
                ("Age", "string", 0),
                ("Version", "string", 0),
                ("Internal-IP", "string", 1),
                ("External-IP", "string", 1),
                ("OS-Image", "string", 1),
                ("Kernel-Version", "string", 1),
                ("Container-Runtime", "string", 1),
            ],
            vec![
                name(obj),
                json!(node_status(obj)),
                json!(node_roles(obj)),
                age(obj),
                json!(s(obj.pointer("/status/nodeInfo/kubeletVersion"))),
                address(obj, "InternalIP"),
                address(obj, "ExternalIP"),
                or_none(s(obj.pointer("/status/nodeInfo/osImage"))),
                or_none(s(obj.pointer("/status/nodeInfo/kernelVersion"))),
                or_none(s(obj.pointer("/status/nodeInfo/containerRuntimeVersion"))),
            ],
        ),
        ("", "Service") => {
            let external = obj
                .pointer("/spec/externalIPs")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(",")
                });
            let lb = joined(obj.pointer("/status/loadBalancer/ingress"), "ip");
            let external = match s(obj.pointer("/spec/type")).as_str() {
                "LoadBalancer" if lb.is_empty() => "<pending>".to_owned(),
                "LoadBalancer" => lb,
                "ExternalName" => s(obj.pointer("/spec/externalName")),
                _ => external
                    .filter(|e| !e.is_empty())
                    .unwrap_or_else(|| "<none>".to_owned()),
            };
            (
                &[
                    ("Name", "string", 0),
                    ("Type", "string", 0),
                    ("Cluster-IP", "string", 0),
                    ("External-IP", "string", 0),
                    ("Port(s)", "string", 0),
                    ("Age", "string", 0),
                    ("Selector", "string", 1),
                ],
                vec![
                    name(obj),
                    json!(s(obj.pointer("/spec/type"))),
                    or_none(s(obj.pointer("/spec/clusterIP"))),
                    json!(external),
                    json!(service_ports(obj)),
                    age(obj),
                    or_none(selector_text(obj.pointer("/spec/selector"))),
                ],
            )
        }
        ("", "ConfigMap") => (
            &[
                ("Name", "string", 0),
                ("Data", "integer", 0),
                ("Age", "string", 0),
            ],
            vec![
                name(obj),
                json!(
                    obj.get("data")
                        .and_then(Value::as_object)
                        .map_or(0, |m| m.len())
                        + obj
                            .get("binaryData")
                            .and_then(Value::as_object)
                            .map_or(0, |m| m.len())
                ),
                age(obj),
            ],
        ),
        ("", "Secret") => (
            &[
                ("Name", "string", 0),
                ("Type", "string", 0),
                ("Data", "integer", 0),
                ("Age", "string", 0),
            ],
            vec![
                name(obj),
                json!(s(obj.get("type"))),
                json!(
                    obj.get("data")
                        .and_then(Value::as_object)
                        .map_or(0, |m| m.len())
                ),
                age(obj),
            ],
        ),
        ("", "ServiceAccount") => (
            &[
                ("Name", "string", 0),
                ("Secrets", "string", 0),
                ("Age", "string", 0),
            ],
            vec![
                name(obj),
                json!(
                    obj.get("secrets")
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len)
                ),
                age(obj),
            ],
        ),
        ("", "Endpoints") => {
            let mut addrs = Vec::new();
            for subset in obj
                .get("subsets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let ports: Vec<String> = subset
                    .get("ports")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|p| s(p.get("port")))
                    .collect();
                for a in subset
                    .get("addresses")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let ip = s(a.get("ip"));
                    if ports.is_empty() {
                        addrs.push(ip.clone());
                    }
                    for p in &ports {
                        addrs.push(format!("{ip}:{p}"));
                    }
                }
            }
            (
                &[
                    ("Name", "string", 0),
                    ("Endpoints", "string", 0),
                    ("Age", "string", 0),
                ],
                vec![name(obj), or_none(addrs.join(",")), age(obj)],
            )
        }
        ("", "Event") => {
            let last = obj
                .get("lastTimestamp")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .or_else(|| obj.get("eventTime").and_then(Value::as_str))
                .unwrap_or_else(|| meta::meta_str(obj, "creationTimestamp"));
            (
                &[
                    ("Last Seen", "string", 0),
                    ("Type", "string", 0),
                    ("Reason", "string", 0),
                    ("Object", "string", 0),
                    ("Message", "string", 0),
                ],
                vec![
                    json!(age_of(last)),
                    json!(s(obj.get("type"))),
                    json!(s(obj.get("reason"))),
                    json!(format!(
                        "{}/{}",
                        s(obj.pointer("/involvedObject/kind")).to_ascii_lowercase(),
                        s(obj.pointer("/involvedObject/name"))
                    )),
                    json!(s(obj.get("message"))),
                ],
            )
        }
        ("", "PersistentVolumeClaim") => (
            &[
                ("Name", "string", 0),
                ("Status", "string", 0),
                ("Volume", "string", 0),
                ("Capacity", "string", 0),
                ("Access Modes", "string", 0),
                ("StorageClass", "string", 0),
                ("Age", "string", 0),
            ],
            vec![
                name(obj),
                json!(s(obj.pointer("/status/phase"))),
                json!(s(obj.pointer("/spec/volumeName"))),
                json!(s(obj.pointer("/status/capacity/storage"))),
                json!(access_modes(obj.pointer("/spec/accessModes"))),
                json!(s(obj.pointer("/spec/storageClassName"))),
                age(obj),
            ],
        ),
        ("", "PersistentVolume") => (
            &[
                ("Name", "string", 0),
                ("Capacity", "string", 0),
                ("Access Modes", "string", 0),
                ("Reclaim Policy", "string", 0),
                ("Status", "string", 0),
                ("Claim", "string", 0),
                ("StorageClass", "string", 0),
                ("Age", "string", 0),
            ],
            vec![
                name(obj),
                json!(s(obj.pointer("/spec/capacity/storage"))),
                json!(access_modes(obj.pointer("/spec/accessModes"))),
                json!(s(obj.pointer("/spec/persistentVolumeReclaimPolicy"))),
                json!(s(obj.pointer("/status/phase"))),
                json!(match obj.pointer("/spec/claimRef") {
                    Some(c) => format!("{}/{}", s(c.get("namespace")), s(c.get("name"))),
                    None => String::new(),
                }),
                json!(s(obj.pointer("/spec/storageClassName"))),
                age(obj),
            ],
        ),
        ("apps", "Deployment") => {
            let [containers, images, selector] = template_columns(obj, "/spec/template");
            (
                &[
                    ("Name", "string", 0),
                    ("Ready", "string", 0),
                    ("Up-to-date", "integer", 0),
                    ("Available", "integer", 0),
                    ("Age", "string", 0),
                    ("Containers", "string", 1),
                    ("Images", "string", 1),
                    ("Selector", "string", 1),
                ],
                vec![
                    name(obj),
                    json!(format!(
                        "{}/{}",
                        int(obj, "/status/readyReplicas"),
                        int(obj, "/spec/replicas")
                    )),
                    json!(int(obj, "/status/updatedReplicas")),
                    json!(int(obj, "/status/availableReplicas")),
                    age(obj),
                    containers,
                    images,
                    selector,
                ],
            )
        }
        ("apps", "ReplicaSet") | ("", "ReplicationController") => {
            let [containers, images, selector] = template_columns(obj, "/spec/template");
            (
                &[
                    ("Name", "string", 0),
                    ("Desired", "integer", 0),
                    ("Current", "integer", 0),
                    ("Ready", "integer", 0),
                    ("Age", "string", 0),
                    ("Containers", "string", 1),
                    ("Images", "string", 1),
                    ("Selector", "string", 1),
                ],
                vec![
                    name(obj),
                    json!(int(obj, "/spec/replicas")),
                    json!(int(obj, "/status/replicas")),
                    json!(int(obj, "/status/readyReplicas")),
                    age(obj),
                    containers,
                    images,
                    selector,
                ],
            )
        }
        ("apps", "StatefulSet") => {
            let [containers, images, _] = template_columns(obj, "/spec/template");
            (
                &[
                    ("Name", "string", 0),
                    ("Ready", "string", 0),
                    ("Age", "string", 0),
                    ("Containers", "string", 1),
                    ("Images", "string", 1),
                ],
                vec![
                    name(obj),
                    json!(format!(
                        "{}/{}",
                        int(obj, "/status/readyReplicas"),
                        int(obj, "/spec/replicas")
                    )),
                    age(obj),
                    containers,
                    images,
                ],
            )
        }
        ("apps", "DaemonSet") => {
            let [containers, images, selector] = template_columns(obj, "/spec/template");
            let node_selector = selector_text(obj.pointer("/spec/template/spec/nodeSelector"));
            (
                &[
                    ("Name", "string", 0),
                    ("Desired", "integer", 0),
                    ("Current", "integer", 0),
                    ("Ready", "integer", 0),
                    ("Up-to-date", "integer", 0),
                    ("Available", "integer", 0),
                    ("Node Selector", "string", 0),
                    ("Age", "string", 0),
                    ("Containers", "string", 1),
                    ("Images", "string", 1),
                    ("Selector", "string", 1),
                ],
                vec![
                    name(obj),
                    json!(int(obj, "/status/desiredNumberScheduled")),
                    json!(int(obj, "/status/currentNumberScheduled")),
                    json!(int(obj, "/status/numberReady")),
                    json!(int(obj, "/status/updatedNumberScheduled")),
                    json!(int(obj, "/status/numberAvailable")),
                    or_none(node_selector),
                    age(obj),
                    containers,
                    images,
                    selector,
                ],
            )
        }
        ("autoscaling", "HorizontalPodAutoscaler") => {
            let target = obj.pointer("/spec/scaleTargetRef");
            let reference = format!(
                "{}/{}",
                s(target.and_then(|t| t.get("kind"))),
                s(target.and_then(|t| t.get("name")))
            );
            let min = obj
                .pointer("/spec/minReplicas")
                .map(|v| s(Some(v)))
                .unwrap_or_else(|| "<unset>".to_owned());
            (
                &[
                    ("Name", "string", 0),
                    ("Reference", "string", 0),
                    ("Targets", "string", 0),
                    ("MinPods", "string", 0),
                    ("MaxPods", "string", 0),
                    ("Replicas", "string", 0),
                    ("Age", "string", 0),
                ],
                vec![
                    name(obj),
                    json!(reference),
                    json!(hpa_targets(obj)),
                    json!(min),
                    json!(s(obj.pointer("/spec/maxReplicas"))),
                    json!(int(obj, "/status/currentReplicas").to_string()),
                    age(obj),
                ],
            )
        }
        ("batch", "Job") => {
            let [containers, images, selector] = template_columns(obj, "/spec/template");
            let completions = obj.pointer("/spec/completions").and_then(Value::as_i64);
            let succeeded = int(obj, "/status/succeeded");
            let conditions = obj
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let has = |t: &str| {
                conditions.iter().any(|c| {
                    c.get("type").and_then(Value::as_str) == Some(t)
                        && c.get("status").and_then(Value::as_str) == Some("True")
                })
            };
            let status = if has("Complete") {
                "Complete"
            } else if has("Failed") {
                "Failed"
            } else if has("Suspended") {
                "Suspended"
            } else {
                "Running"
            };
            let duration = match (
                obj.pointer("/status/startTime").and_then(Value::as_str),
                obj.pointer("/status/completionTime")
                    .and_then(Value::as_str),
            ) {
                (Some(start), Some(end)) => match (
                    berth_types::time::parse_rfc3339(start),
                    berth_types::time::parse_rfc3339(end),
                ) {
                    (Ok((a, _)), Ok((b, _))) => human_duration(b - a),
                    _ => String::new(),
                },
                (Some(start), None) => age_of(start),
                _ => String::new(),
            };
            (
                &[
                    ("Name", "string", 0),
                    ("Status", "string", 0),
                    ("Completions", "string", 0),
                    ("Duration", "string", 0),
                    ("Age", "string", 0),
                    ("Containers", "string", 1),
                    ("Images", "string", 1),
                    ("Selector", "string", 1),
                ],
                vec![
                    name(obj),
                    json!(status),
                    json!(match completions {
                        Some(c) => format!("{succeeded}/{c}"),
                        None =>
                            format!("{succeeded}/1 of {}", int(obj, "/spec/parallelism").max(1)),
                    }),
                    json!(duration),
                    age(obj),
                    containers,
                    images,
                    selector,
                ],
            )
        }
        ("batch", "CronJob") => {
            let [containers, images, selector] =
                template_columns(obj, "/spec/jobTemplate/spec/template");
            (
                &[
                    ("Name", "string", 0),
                    ("Schedule", "string", 0),
                    ("Timezone", "string", 0),
                    ("Suspend", "boolean", 0),
                    ("Active", "integer", 0),
                    ("Last Schedule", "string", 0),
                    ("Age", "string", 0),
                    ("Containers", "string", 1),
                    ("Images", "string", 1),
                    ("Selector", "string", 1),
                ],
                vec![
                    name(obj),
                    json!(s(obj.pointer("/spec/schedule"))),
                    or_none(s(obj.pointer("/spec/timeZone"))),
                    json!(
                        obj.pointer("/spec/suspend")
                            .and_then(Value::as_bool)
                            .unwrap_or(false)
                    ),
                    json!(
                        obj.pointer("/status/active")
                            .and_then(Value::as_array)
                            .map_or(0, Vec::len)
                    ),
                    json!(
                        obj.pointer("/status/lastScheduleTime")
                            .and_then(Value::as_str)
                            .map_or("<none>".to_owned(), age_of)
                    ),
                    age(obj),
                    containers,
                    images,
                    selector,
                ],
            )
        }
        ("rbac.authorization.k8s.io", "Role") | ("rbac.authorization.k8s.io", "ClusterRole") => (
            &[("Name", "string", 0), ("Created At", "date", 0)],
            vec![name(obj), json!(meta::meta_str(obj, "creationTimestamp"))],
        ),
        ("rbac.authorization.k8s.io", "RoleBinding")
        | ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            let subjects = |kind: &str| {
                obj.get("subjects")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter(|x| x.get("kind").and_then(Value::as_str) == Some(kind))
                            .map(|x| {
                                if kind == "ServiceAccount" {
                                    format!("{}/{}", s(x.get("namespace")), s(x.get("name")))
                                } else {
                                    s(x.get("name"))
                                }
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default()
            };
            (
                &[
                    ("Name", "string", 0),
                    ("Role", "string", 0),
                    ("Age", "string", 0),
                    ("Users", "string", 1),
                    ("Groups", "string", 1),
                    ("ServiceAccounts", "string", 1),
                ],
                vec![
                    name(obj),
                    json!(format!(
                        "{}/{}",
                        s(obj.pointer("/roleRef/kind")),
                        s(obj.pointer("/roleRef/name"))
                    )),
                    age(obj),
                    json!(subjects("User")),
                    json!(subjects("Group")),
                    json!(subjects("ServiceAccount")),
                ],
            )
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => (
            &[("Name", "string", 0), ("Created At", "date", 0)],
            vec![name(obj), json!(meta::meta_str(obj, "creationTimestamp"))],
        ),
        ("coordination.k8s.io", "Lease") => (
            &[
                ("Name", "string", 0),
                ("Holder", "string", 0),
                ("Age", "string", 0),
            ],
            vec![
                name(obj),
                json!(s(obj.pointer("/spec/holderIdentity"))),
                age(obj),
            ],
        ),
        ("scheduling.k8s.io", "PriorityClass") => (
            &[
                ("Name", "string", 0),
                ("Value", "integer", 0),
                ("Global-Default", "boolean", 0),
                ("Age", "string", 0),
                ("PreemptionPolicy", "string", 0),
            ],
            vec![
                name(obj),
                json!(int(obj, "/value")),
                json!(
                    obj.get("globalDefault")
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                ),
                age(obj),
                json!(s(obj.get("preemptionPolicy"))),
            ],
        ),
        ("storage.k8s.io", "StorageClass") => (
            &[
                ("Name", "string", 0),
                ("Provisioner", "string", 0),
                ("ReclaimPolicy", "string", 0),
                ("VolumeBindingMode", "string", 0),
                ("AllowVolumeExpansion", "string", 0),
                ("Age", "string", 0),
            ],
            vec![
                json!(if meta::metadata(obj)
                    .get("annotations")
                    .and_then(|a| a.get("storageclass.kubernetes.io/is-default-class"))
                    .and_then(Value::as_str)
                    == Some("true")
                {
                    format!("{} (default)", meta::meta_str(obj, "name"))
                } else {
                    meta::meta_str(obj, "name").to_owned()
                }),
                json!(s(obj.get("provisioner"))),
                json!(s(obj.get("reclaimPolicy"))),
                json!(s(obj.get("volumeBindingMode"))),
                json!(
                    obj.get("allowVolumeExpansion")
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                        .to_string()
                ),
                age(obj),
            ],
        ),
        ("networking.k8s.io", "IPAddress") => (
            &[
                ("Name", "string", 0),
                ("ParentRef", "string", 0),
                ("Age", "string", 0),
            ],
            vec![
                name(obj),
                json!(match obj.pointer("/spec/parentRef") {
                    Some(r) => {
                        let group = s(r.get("group"));
                        let resource = s(r.get("resource"));
                        let mut text = if group.is_empty() {
                            resource.to_lowercase()
                        } else {
                            format!("{resource}.{group}").to_lowercase()
                        };
                        let ns = s(r.get("namespace"));
                        if !ns.is_empty() {
                            text = format!("{text}/{ns}");
                        }
                        format!("{text}/{}", s(r.get("name")))
                    }
                    None => "<none>".to_owned(),
                }),
                age(obj),
            ],
        ),
        ("networking.k8s.io", "ServiceCIDR") => (
            &[
                ("Name", "string", 0),
                ("CIDRs", "string", 0),
                ("Age", "string", 0),
            ],
            vec![
                name(obj),
                json!(
                    obj.pointer("/spec/cidrs")
                        .and_then(Value::as_array)
                        .map(|a| a
                            .iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(","))
                        .unwrap_or_default()
                ),
                age(obj),
            ],
        ),
        ("networking.k8s.io", "Ingress") => (
            &[
                ("Name", "string", 0),
                ("Class", "string", 0),
                ("Hosts", "string", 0),
                ("Address", "string", 0),
                ("Ports", "string", 0),
                ("Age", "string", 0),
            ],
            vec![
                name(obj),
                or_none(s(obj.pointer("/spec/ingressClassName"))),
                json!(
                    Some(joined(obj.pointer("/spec/rules"), "host"))
                        .filter(|h| !h.is_empty())
                        .unwrap_or_else(|| "*".to_owned())
                ),
                json!(joined(obj.pointer("/status/loadBalancer/ingress"), "ip")),
                json!(if obj.pointer("/spec/tls").is_some() {
                    "80, 443"
                } else {
                    "80"
                }),
                age(obj),
            ],
        ),
        ("policy", "PodDisruptionBudget") => (
            &[
                ("Name", "string", 0),
                ("Min Available", "string", 0),
                ("Max Unavailable", "string", 0),
                ("Allowed Disruptions", "integer", 0),
                ("Age", "string", 0),
            ],
            vec![
                name(obj),
                json!(
                    obj.pointer("/spec/minAvailable")
                        .map_or("N/A".to_owned(), |v| s(Some(v)))
                ),
                json!(
                    obj.pointer("/spec/maxUnavailable")
                        .map_or("N/A".to_owned(), |v| s(Some(v)))
                ),
                json!(int(obj, "/status/disruptionsAllowed")),
                age(obj),
            ],
        ),
        _ => return None,
    })
}

fn access_modes(modes: Option<&Value>) -> String {
    modes
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|m| match m {
                    "ReadWriteOnce" => "RWO",
                    "ReadOnlyMany" => "ROX",
                    "ReadWriteMany" => "RWX",
                    "ReadWriteOncePod" => "RWOP",
                    other => other,
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// A Table of `items` (with column definitions when `with_columns`).
pub fn table(
    api: &Api,
    resource: &Resource,
    items: &[Value],
    _unused: &str,
    with_columns: bool,
) -> Value {
    let custom = crate::crd::printer_columns(api, resource);
    let columns: Vec<Value>;
    let mut rows = Vec::new();
    let describe = |(n, t, p): &Column| json!({"name": n, "type": t, "format": if *n == "Name" { "name" } else { "" }, "description": "", "priority": p});
    if let Some((defs, _)) = &custom {
        columns = defs.clone();
    } else if let Some((defs, _)) = items
        .first()
        .and_then(|o| builtin(&resource.group, &resource.kind, o))
    {
        columns = defs.iter().map(describe).collect();
    } else if let Some((defs, _)) = builtin(&resource.group, &resource.kind, &json!({})) {
        columns = defs.iter().map(describe).collect();
    } else {
        columns = vec![
            describe(&("Name", "string", 0)),
            json!({"name": "Created At", "type": "date", "format": "", "description": "", "priority": 0}),
        ];
    }
    for obj in items {
        let cells = if let Some((_, cells_of)) = &custom {
            cells_of(obj)
        } else if let Some((_, cells)) = builtin(&resource.group, &resource.kind, obj) {
            cells
        } else {
            vec![name(obj), json!(meta::meta_str(obj, "creationTimestamp"))]
        };
        rows.push(json!({
            "cells": cells,
            "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta::metadata(obj)},
        }));
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": if with_columns { Value::Array(columns) } else { Value::Null },
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_kubectl_prints_them() {
        for (secs, want) in [
            (5, "5s"),
            (119, "119s"),
            (150, "2m30s"),
            (600, "10m"),
            (3 * 3600 + 60, "3h1m"),
            (30 * 3600, "30h"),
            (3 * 86400, "3d"),
            (3 * 86400 + 3600, "3d1h"),
            (400 * 86400, "400d"),
            (3 * 365 * 86400, "3y"),
        ] {
            assert_eq!(human_duration(secs), want, "{secs}");
        }
    }
}
