//! ResourceQuota: objects created in a namespace are charged against its
//! ResourceQuotas (`spec.hard`); a create that would pass a limit is 403
//! `exceeded quota: …`, and a quota constraining cpu or memory requires
//! pods to state them. `status.hard` and `status.used` are kept: `used`
//! is recounted from the store on every admitted create (and written
//! with the new object charged, under the quota's resourceVersion, so
//! concurrent creates retry), after deletes, after a pod ends and when
//! a quota changes.
//!
//! Tracked: pods (`pods`, `cpu`/`memory`/`ephemeral-storage`,
//! `requests.*`, `limits.*`), services (`services`,
//! `services.loadbalancers`, `services.nodeports`), configmaps, secrets,
//! replicationcontrollers, resourcequotas, persistentvolumeclaims
//! (`persistentvolumeclaims`, `requests.storage`, per storage class), and
//! `count/<resource>[.<group>]` of any resource. Scopes (`Terminating`,
//! `NotTerminating`, `BestEffort`, `NotBestEffort`, and `PriorityClass`
//! in a scopeSelector) apply to pods; a scoped quota ignores other kinds.

use serde_json::{Value, json};

use super::quantity::Quantity;
use super::{ResourceList, bad_quantity, forbidden, list_json, resource_list};
use crate::api::Api;
use crate::error::ApiError;
use crate::meta;
use crate::request::Target;
use crate::resources::Resource;
use crate::storage::Change;

/// The resources whose presence a quota on them requires of every
/// container (kube's backward-compatible rule).
const VALIDATION: &[&str] = &[
    "cpu",
    "memory",
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
];

/// The (group, plural) whose objects a quota key counts.
fn evaluator(key: &str) -> Option<(String, String)> {
    let core = |p: &str| Some((String::new(), p.to_owned()));
    if let Some(rest) = key.strip_prefix("count/") {
        return match rest.split_once('.') {
            Some((plural, group)) => Some((group.to_owned(), plural.to_owned())),
            None => core(rest),
        };
    }
    match key {
        "pods" | "cpu" | "memory" | "ephemeral-storage" => core("pods"),
        "services" | "services.loadbalancers" | "services.nodeports" => core("services"),
        "configmaps" | "secrets" | "replicationcontrollers" | "resourcequotas" => core(key),
        "persistentvolumeclaims" | "requests.storage" => core("persistentvolumeclaims"),
        _ if key.ends_with(".storageclass.storage.k8s.io/requests.storage")
            || key.ends_with(".storageclass.storage.k8s.io/persistentvolumeclaims") =>
        {
            core("persistentvolumeclaims")
        }
        _ if key.starts_with("requests.") || key.starts_with("limits.") => core("pods"),
        _ => None,
    }
}

fn handles(group: &str, plural: &str, key: &str) -> bool {
    evaluator(key).is_some_and(|(g, p)| g == group && p == plural)
}

fn count_key(group: &str, plural: &str) -> String {
    if group.is_empty() {
        format!("count/{plural}")
    } else {
        format!("count/{plural}.{group}")
    }
}

fn one() -> Quantity {
    Quantity::from_int(1)
}

fn is_terminal(pod: &Value) -> bool {
    matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    )
}

/// What one object of `group`/`plural` uses.
pub fn usage_of(
    group: &str,
    plural: &str,
    obj: &Value,
) -> Result<ResourceList, super::quantity::QuantityError> {
    let mut usage = ResourceList::new();
    usage.insert(count_key(group, plural), one());
    if !group.is_empty() {
        return Ok(usage);
    }
    match plural {
        "pods" => {
            if is_terminal(obj) {
                return Ok(usage);
            }
            usage.insert("pods".to_owned(), one());
            let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
            let mut requests = super::limitranger::pod_total(&spec, "requests")?;
            let mut limits = super::limitranger::pod_total(&spec, "limits")?;
            // Pod overhead is charged too.
            let overhead = resource_list(spec.get("overhead"))?;
            for (k, v) in &overhead {
                for list in [&mut requests, &mut limits] {
                    if let Some(q) = list.get_mut(k) {
                        *q = q.checked_add(v).unwrap_or(*q);
                    }
                }
            }
            for (k, v) in requests {
                if matches!(k.as_str(), "cpu" | "memory" | "ephemeral-storage") {
                    usage.insert(k.clone(), v);
                }
                usage.insert(format!("requests.{k}"), v);
            }
            for (k, v) in limits {
                usage.insert(format!("limits.{k}"), v);
            }
        }
        "services" => {
            usage.insert("services".to_owned(), one());
            let kind = obj
                .pointer("/spec/type")
                .and_then(Value::as_str)
                .unwrap_or("ClusterIP");
            let ports = obj
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let ports = i64::try_from(ports).unwrap_or(i64::MAX);
            if kind == "LoadBalancer" {
                usage.insert("services.loadbalancers".to_owned(), one());
            }
            let node_ports = kind == "NodePort"
                || (kind == "LoadBalancer"
                    && obj
                        .pointer("/spec/allocateLoadBalancerNodePorts")
                        .and_then(Value::as_bool)
                        != Some(false));
            usage.insert(
                "services.nodeports".to_owned(),
                Quantity::from_int(if node_ports { ports } else { 0 }),
            );
        }
        "persistentvolumeclaims" => {
            usage.insert("persistentvolumeclaims".to_owned(), one());
            let class = obj
                .pointer("/spec/storageClassName")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !class.is_empty() {
                usage.insert(
                    format!("{class}.storageclass.storage.k8s.io/persistentvolumeclaims"),
                    one(),
                );
            }
            if let Some(storage) = obj.pointer("/spec/resources/requests/storage") {
                let q = super::quantity(storage)?;
                usage.insert("requests.storage".to_owned(), q);
                if !class.is_empty() {
                    usage.insert(
                        format!("{class}.storageclass.storage.k8s.io/requests.storage"),
                        q,
                    );
                }
            }
        }
        "configmaps" | "secrets" | "replicationcontrollers" | "resourcequotas" => {
            usage.insert(plural.to_owned(), one());
        }
        _ => {}
    }
    Ok(usage)
}

/// A quota's scopes, from `spec.scopes` and `spec.scopeSelector`.
fn scope_matches(quota: &Value, pod: &Value) -> bool {
    let terminating = pod
        .pointer("/spec/activeDeadlineSeconds")
        .is_some_and(|v| !v.is_null());
    let best_effort = super::containers(pod.get("spec").unwrap_or(&Value::Null)).all(|(_, c)| {
        ["requests", "limits"].iter().all(|f| {
            c.pointer(&format!("/resources/{f}"))
                .and_then(Value::as_object)
                .is_none_or(|m| !m.contains_key("cpu") && !m.contains_key("memory"))
        })
    });
    let priority = pod
        .pointer("/spec/priorityClassName")
        .and_then(Value::as_str)
        .unwrap_or("");
    let scope = |name: &str| match name {
        "Terminating" => terminating,
        "NotTerminating" => !terminating,
        "BestEffort" => best_effort,
        "NotBestEffort" => !best_effort,
        _ => true,
    };
    let plain = quota
        .pointer("/spec/scopes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .all(scope);
    let selected = quota
        .pointer("/spec/scopeSelector/matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .all(|e| {
            let name = e.get("scopeName").and_then(Value::as_str).unwrap_or("");
            let op = e.get("operator").and_then(Value::as_str).unwrap_or("");
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if name == "PriorityClass" {
                match op {
                    "In" => values.contains(&priority),
                    "NotIn" => !values.contains(&priority),
                    "Exists" => !priority.is_empty(),
                    "DoesNotExist" => priority.is_empty(),
                    _ => false,
                }
            } else {
                scope(name)
            }
        });
    plain && selected
}

fn is_scoped(quota: &Value) -> bool {
    quota
        .pointer("/spec/scopes")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty())
        || quota
            .pointer("/spec/scopeSelector/matchExpressions")
            .and_then(Value::as_array)
            .is_some_and(|s| !s.is_empty())
}

/// A quota's `spec.hard`, leniently (entries that do not parse are left
/// out: the quota was checked when written).
fn hard_of(quota: &Value) -> ResourceList {
    let mut hard = ResourceList::new();
    for (k, v) in quota
        .pointer("/spec/hard")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if let Ok(q) = super::quantity(v) {
            hard.insert(k.clone(), q);
        }
    }
    hard
}

/// What the namespace's stored objects use of `keys` under `quota`'s
/// scopes (every key a known kind counts gets an entry, zero or not).
async fn used(
    api: &Api,
    ns: &str,
    quota: &Value,
    keys: &[&String],
) -> Result<ResourceList, ApiError> {
    let mut kinds: Vec<(String, String)> = keys.iter().filter_map(|k| evaluator(k)).collect();
    kinds.sort();
    kinds.dedup();
    let scoped = is_scoped(quota);
    let mut total = ResourceList::new();
    for (group, plural) in kinds {
        if scoped && !(group.is_empty() && plural == "pods") {
            continue;
        }
        for key in keys.iter().filter(|k| handles(&group, &plural, k)) {
            total.insert((*key).clone(), Quantity::zero());
        }
        let prefix = format!("{}/", super::key_prefix(api, &group, &plural, ns));
        let (items, _) = api.objects.list_all(&prefix, 0).await?;
        for item in items {
            if scoped && !scope_matches(quota, &item) {
                continue;
            }
            // Objects stored with bad quantities count only by number.
            let usage = usage_of(&group, &plural, &item)
                .unwrap_or_else(|_| usage_of(&group, "", &item).unwrap_or_default());
            for (k, v) in usage {
                if let Some(t) = total.get_mut(&k) {
                    *t = t.checked_add(&v).unwrap_or(*t);
                }
            }
        }
    }
    Ok(total)
}

/// kube's `a=1,b=2` of a resource list.
fn pretty(list: &ResourceList, keys: &[String]) -> String {
    keys.iter()
        .filter_map(|k| list.get(k).map(|q| format!("{k}={q}")))
        .collect::<Vec<_>>()
        .join(",")
}

/// The containers of a pod that leave out a resource the quota requires.
fn missing(pod: &Value, required: &[&str]) -> Option<String> {
    if required.is_empty() {
        return None;
    }
    let spec = pod.get("spec").unwrap_or(&Value::Null);
    let mut by_resource: std::collections::BTreeMap<&str, std::collections::BTreeSet<String>> =
        std::collections::BTreeMap::new();
    for (_, c) in super::containers(spec) {
        let has = |field: &str, name: &str| {
            c.pointer(&format!("/resources/{field}/{name}"))
                .is_some_and(|v| !v.is_null())
        };
        let name = c
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        for r in required {
            let present = match *r {
                "cpu" | "requests.cpu" => has("requests", "cpu"),
                "memory" | "requests.memory" => has("requests", "memory"),
                "limits.cpu" => has("limits", "cpu"),
                "limits.memory" => has("limits", "memory"),
                _ => true,
            };
            if !present {
                by_resource.entry(r).or_default().insert(name.clone());
            }
        }
    }
    if by_resource.is_empty() {
        return None;
    }
    let parts: Vec<String> = by_resource
        .iter()
        .map(|(r, names)| {
            format!(
                "{r} for: {}",
                names.iter().cloned().collect::<Vec<_>>().join(",")
            )
        })
        .collect();
    Some(format!("must specify {}", parts.join("; ")))
}

fn quota_target(api: &Api, ns: &str, name: &str) -> Option<Target> {
    Some(Target {
        resource: super::resource(api, "", "resourcequotas")?,
        namespace: ns.to_owned(),
        name: name.to_owned(),
        subresource: String::new(),
    })
}

fn status_of(hard: &ResourceList, used: &ResourceList) -> Value {
    json!({"hard": list_json(hard), "used": list_json(used)})
}

/// Admission of a create: the object is charged to each quota of its
/// namespace that tracks it. A new ResourceQuota gets its status.
pub async fn admit_create(
    api: &Api,
    target: &Target,
    obj: &mut Value,
    dry_run: bool,
) -> Result<(), ApiError> {
    let resource = &target.resource;
    let ns = target.namespace.as_str();
    if !resource.namespaced || ns.is_empty() {
        return Ok(());
    }
    if resource.group.is_empty() && resource.plural == "resourcequotas" {
        let hard =
            resource_list(obj.pointer("/spec/hard")).map_err(|e| bad_quantity(resource, &e))?;
        let keys: Vec<&String> = hard.keys().collect();
        let mut usage = used(api, ns, obj, &keys).await?;
        // The quota counts itself.
        if let Some(q) = usage.get_mut("resourcequotas") {
            *q = q.checked_add(&one()).unwrap_or(*q);
        }
        if let Some(q) = usage.get_mut("count/resourcequotas") {
            *q = q.checked_add(&one()).unwrap_or(*q);
        }
        obj["status"] = status_of(&hard, &usage);
        // Other quotas count the new quota as an object too.
    }
    let quota_prefix = format!("{}/", super::key_prefix(api, "", "resourcequotas", ns));
    let delta =
        usage_of(&resource.group, &resource.plural, obj).map_err(|e| bad_quantity(resource, &e))?;
    for _attempt in 0..8 {
        let (quotas, _) = api.objects.list_all(&quota_prefix, 0).await?;
        let mut writes = Vec::new();
        for quota in &quotas {
            let name = meta::meta_str(quota, "name");
            let hard = hard_of(quota);
            if is_scoped(quota)
                && !(resource.group.is_empty()
                    && resource.plural == "pods"
                    && scope_matches(quota, obj))
            {
                continue;
            }
            let matched: Vec<&String> = hard
                .keys()
                .filter(|k| handles(&resource.group, &resource.plural, k))
                .collect();
            if matched.is_empty() {
                continue;
            }
            if resource.group.is_empty() && resource.plural == "pods" {
                let required: Vec<&str> = VALIDATION
                    .iter()
                    .copied()
                    .filter(|v| matched.iter().any(|m| m.as_str() == *v))
                    .collect();
                if let Some(why) = missing(obj, &required) {
                    return Err(forbidden(
                        resource,
                        obj,
                        &format!("failed quota: {name}: {why}"),
                    ));
                }
            }
            let all_keys: Vec<&String> = hard.keys().collect();
            let current = used(api, ns, quota, &all_keys).await?;
            let mut exceeded = Vec::new();
            let mut next = current.clone();
            for key in &matched {
                let Some(requested) = delta.get(*key) else {
                    continue;
                };
                let before = current.get(*key).copied().unwrap_or_else(Quantity::zero);
                let after = before.checked_add(requested).unwrap_or(before);
                next.insert((*key).clone(), after);
                if hard.get(*key).is_some_and(|h| after > *h) {
                    exceeded.push((*key).clone());
                }
            }
            if !exceeded.is_empty() {
                let zero = |list: &ResourceList| {
                    let mut l = list.clone();
                    for k in &exceeded {
                        l.entry(k.clone()).or_insert_with(Quantity::zero);
                    }
                    l
                };
                return Err(forbidden(
                    resource,
                    obj,
                    &format!(
                        "exceeded quota: {name}, requested: {}, used: {}, limited: {}",
                        pretty(&delta, &exceeded),
                        pretty(&zero(&current), &exceeded),
                        pretty(&hard, &exceeded),
                    ),
                ));
            }
            let rv = meta::meta_str(quota, "resourceVersion").parse::<i64>().ok();
            writes.push((name.to_owned(), rv, status_of(&hard, &next)));
        }
        if dry_run {
            return Ok(());
        }
        let mut conflict = false;
        for (name, rv, status) in writes {
            let Some(t) = quota_target(api, ns, &name) else {
                continue;
            };
            let result = api
                .objects
                .update(&t, rv, None, |mut current| {
                    if current.get("status") == Some(&status) {
                        return Ok(Change::Keep);
                    }
                    current["status"] = status.clone();
                    Ok(Change::Put(current))
                })
                .await;
            match result {
                Ok(_) => {}
                Err(e) if e.code == 409 => {
                    conflict = true;
                    break;
                }
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        if !conflict {
            return Ok(());
        }
    }
    Err(ApiError::conflict(
        &resource.group,
        &resource.plural,
        meta::meta_str(obj, "name"),
        "the quota of the namespace kept changing; try again",
    ))
}

/// Update of a ResourceQuota: `spec.hard` must parse and `status.hard`
/// follows it (`used` is recounted after the write).
pub fn update_hard(resource: &Resource, obj: &mut Value) -> Result<(), ApiError> {
    let hard = resource_list(obj.pointer("/spec/hard")).map_err(|e| bad_quantity(resource, &e))?;
    let used = obj
        .pointer("/status/used")
        .map(|u| {
            let mut l = ResourceList::new();
            for (k, v) in u.as_object().into_iter().flatten() {
                if hard.contains_key(k)
                    && let Ok(q) = super::quantity(v)
                {
                    l.insert(k.clone(), q);
                }
            }
            l
        })
        .unwrap_or_default();
    obj["status"] = status_of(&hard, &used);
    Ok(())
}

/// Recounts one quota's status and writes it when it changed.
pub async fn refresh_one(api: &Api, quota: &Value) -> Result<(), ApiError> {
    let ns = meta::meta_str(quota, "namespace");
    let name = meta::meta_str(quota, "name");
    let hard = hard_of(quota);
    let keys: Vec<&String> = hard.keys().collect();
    let usage = used(api, ns, quota, &keys).await?;
    let status = status_of(&hard, &usage);
    if quota.get("status") == Some(&status) {
        return Ok(());
    }
    let Some(t) = quota_target(api, ns, name) else {
        return Ok(());
    };
    match api
        .objects
        .update(&t, None, None, |mut current| {
            if current.get("status") == Some(&status) {
                return Ok(Change::Keep);
            }
            current["status"] = status.clone();
            Ok(Change::Put(current))
        })
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Recounts the quotas of `ns` that track `group`/`plural`.
pub async fn recompute(api: &Api, ns: &str, group: &str, plural: &str) -> Result<(), ApiError> {
    if ns.is_empty() {
        return Ok(());
    }
    let prefix = format!("{}/", super::key_prefix(api, "", "resourcequotas", ns));
    let (quotas, _) = api.objects.list_all(&prefix, 0).await?;
    for quota in quotas {
        if hard_of(&quota).keys().any(|k| handles(group, plural, k)) {
            refresh_one(api, &quota).await?;
        }
    }
    Ok(())
}
