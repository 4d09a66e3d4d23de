//! LimitRanger: the LimitRanges of a namespace default the requests and
//! limits of a pod's containers (on create) and bound them: per
//! Container (min, max, maxLimitRequestRatio), per Pod (the same over
//! the pod's totals) and per PersistentVolumeClaim (min and max of
//! requested storage). Violations are 403 with kube's texts.

use serde_json::{Map, Value, json};

use super::quantity::Quantity;
use super::{ResourceList, aggregate, bad_quantity, containers, forbidden, resource_list};
use crate::api::Api;
use crate::error::ApiError;
use crate::meta;
use crate::resources::Resource;

/// The annotation naming what LimitRanger set.
pub const ANNOTATION: &str = "kubernetes.io/limit-ranger";

/// The LimitRanges of a namespace.
pub async fn load(api: &Api, namespace: &str) -> Result<Vec<Value>, ApiError> {
    let prefix = format!("{}/", super::key_prefix(api, "", "limitranges", namespace));
    Ok(api.objects.list_all(&prefix, 0).await?.0)
}

/// One item of a LimitRange, parsed (invalid quantities are skipped:
/// the LimitRange was checked when written).
#[derive(Debug, Default)]
struct Item {
    kind: String,
    max: ResourceList,
    min: ResourceList,
    default: ResourceList,
    default_request: ResourceList,
    ratio: ResourceList,
}

fn lenient(value: Option<&Value>) -> ResourceList {
    let mut list = ResourceList::new();
    for (k, v) in value.and_then(Value::as_object).into_iter().flatten() {
        if let Ok(q) = super::quantity(v) {
            list.insert(k.clone(), q);
        }
    }
    list
}

/// kube's LimitRangeItem defaults for Container items: default ← max,
/// defaultRequest ← default, then ← min.
fn default_item(item: &mut Item) {
    if item.kind != "Container" {
        return;
    }
    for (k, v) in &item.max {
        item.default.entry(k.clone()).or_insert(*v);
    }
    for (k, v) in &item.default {
        item.default_request.entry(k.clone()).or_insert(*v);
    }
    for (k, v) in &item.min {
        item.default_request.entry(k.clone()).or_insert(*v);
    }
}

fn items(range: &Value) -> Vec<Item> {
    range
        .pointer("/spec/limits")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|v| {
            let mut item = Item {
                kind: v
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                max: lenient(v.get("max")),
                min: lenient(v.get("min")),
                default: lenient(v.get("default")),
                default_request: lenient(v.get("defaultRequest")),
                ratio: lenient(v.get("maxLimitRequestRatio")),
            };
            default_item(&mut item);
            item
        })
        .collect()
}

/// Defaulting of a LimitRange being written (kube's defaults of its
/// Container items); its quantities must parse.
pub fn default_limit_range(resource: &Resource, obj: &mut Value) -> Result<(), ApiError> {
    let Some(limits) = obj
        .pointer_mut("/spec/limits")
        .and_then(Value::as_array_mut)
    else {
        return Ok(());
    };
    for limit in limits.iter_mut() {
        for field in [
            "max",
            "min",
            "default",
            "defaultRequest",
            "maxLimitRequestRatio",
        ] {
            resource_list(limit.get(field)).map_err(|e| bad_quantity(resource, &e))?;
        }
        if limit.get("type").and_then(Value::as_str) != Some("Container") {
            continue;
        }
        let Some(map) = limit.as_object_mut() else {
            continue;
        };
        let copy_missing = |map: &mut Map<String, Value>, from: &str, to: &str| {
            let source = map.get(from).and_then(Value::as_object).cloned();
            let Some(source) = source else { return };
            let entry = map.entry(to).or_insert_with(|| json!({}));
            if !entry.is_object() {
                *entry = json!({});
            }
            if let Some(dest) = entry.as_object_mut() {
                for (k, v) in source {
                    dest.entry(k).or_insert(v);
                }
            }
        };
        copy_missing(map, "max", "default");
        copy_missing(map, "default", "defaultRequest");
        copy_missing(map, "min", "defaultRequest");
    }
    Ok(())
}

/// kube's pod defaulting: a container with a limit and no request for a
/// resource requests its limit.
pub fn default_requests_from_limits(pod: &mut Value) {
    for list in ["containers", "initContainers"] {
        for c in pod
            .pointer_mut(&format!("/spec/{list}"))
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            let Some(limits) = c.pointer("/resources/limits").and_then(Value::as_object) else {
                continue;
            };
            let limits = limits.clone();
            let Some(resources) = c.get_mut("resources").and_then(Value::as_object_mut) else {
                continue;
            };
            let requests = resources.entry("requests").or_insert_with(|| json!({}));
            if !requests.is_object() {
                *requests = json!({});
            }
            if let Some(requests) = requests.as_object_mut() {
                for (k, v) in limits {
                    requests.entry(k).or_insert(v);
                }
                if requests.is_empty() {
                    resources.remove("requests");
                }
            }
        }
    }
}

/// Applies the defaults of each LimitRange's Container items to the
/// pod's containers, recording them in the `kubernetes.io/limit-ranger`
/// annotation; the QoS class follows.
pub fn mutate_pod(ranges: &[Value], resource: &Resource, pod: &mut Value) -> Result<(), ApiError> {
    for range in ranges {
        let mut limits = ResourceList::new();
        let mut requests = ResourceList::new();
        for item in items(range).into_iter().filter(|i| i.kind == "Container") {
            limits.extend(item.default);
            requests.extend(item.default_request);
        }
        if limits.is_empty() && requests.is_empty() {
            continue;
        }
        let mut notes = Vec::new();
        for (list, label) in [
            ("containers", "container"),
            ("initContainers", "init container"),
        ] {
            for c in pod
                .pointer_mut(&format!("/spec/{list}"))
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                let name = c
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                let set_limits = merge(c, "limits", &limits);
                let set_requests = merge(c, "requests", &requests);
                if !set_requests.is_empty() {
                    notes.push(format!(
                        "{} request for {label} {name}",
                        set_requests.join(", ")
                    ));
                }
                if !set_limits.is_empty() {
                    notes.push(format!(
                        "{} limit for {label} {name}",
                        set_limits.join(", ")
                    ));
                }
            }
        }
        if !notes.is_empty() {
            let annotations = meta::metadata_mut(pod)
                .entry("annotations")
                .or_insert_with(|| json!({}));
            if !annotations.is_object() {
                *annotations = json!({});
            }
            if let Some(a) = annotations.as_object_mut() {
                a.insert(
                    ANNOTATION.to_owned(),
                    json!(format!("LimitRanger plugin set: {}", notes.join("; "))),
                );
            }
        }
    }
    // The QoS class is computed after admission in kube.
    let spec = pod.get("spec").cloned().unwrap_or(Value::Null);
    let qos = qos_class(&spec).map_err(|e| bad_quantity(resource, &e))?;
    if let Some(status) = pod.get_mut("status").and_then(Value::as_object_mut) {
        status.insert("qosClass".to_owned(), json!(qos));
    }
    Ok(())
}

/// Sets the defaults a container lacks in `resources.<field>`; returns
/// the names set, sorted.
fn merge(container: &mut Value, field: &str, defaults: &ResourceList) -> Vec<String> {
    let mut set = Vec::new();
    if defaults.is_empty() {
        return set;
    }
    let Some(c) = container.as_object_mut() else {
        return set;
    };
    let resources = c.entry("resources").or_insert_with(|| json!({}));
    if !resources.is_object() {
        *resources = json!({});
    }
    let Some(resources) = resources.as_object_mut() else {
        return set;
    };
    let list = resources.entry(field).or_insert_with(|| json!({}));
    if !list.is_object() {
        *list = json!({});
    }
    let Some(list) = list.as_object_mut() else {
        return set;
    };
    for (k, v) in defaults {
        if !list.contains_key(k) {
            list.insert(k.clone(), json!(v.to_string()));
            set.push(k.clone());
        }
    }
    set
}

/// kube's QoS class of a pod spec.
fn qos_class(spec: &Value) -> Result<&'static str, super::quantity::QuantityError> {
    let mut any = false;
    let mut guaranteed = true;
    for (_, c) in containers(spec) {
        let requests = resource_list(c.pointer("/resources/requests"))?;
        let limits = resource_list(c.pointer("/resources/limits"))?;
        let relevant = |l: &ResourceList| l.keys().any(|k| k == "cpu" || k == "memory");
        if relevant(&requests) || relevant(&limits) {
            any = true;
        }
        for name in ["cpu", "memory"] {
            let limit = limits.get(name);
            let request = requests.get(name).or(limit);
            if limit.is_none() || request != limit {
                guaranteed = false;
            }
        }
    }
    Ok(if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    })
}

fn min_constraint(
    kind: &str,
    name: &str,
    enforced: &Quantity,
    requests: &ResourceList,
    limits: &ResourceList,
) -> Option<String> {
    let Some(req) = requests.get(name) else {
        return Some(format!(
            "minimum {name} usage per {kind} is {enforced}.  No request is specified"
        ));
    };
    if req < enforced {
        return Some(format!(
            "minimum {name} usage per {kind} is {enforced}, but request is {req}"
        ));
    }
    match limits.get(name) {
        Some(lim) if lim < enforced => Some(format!(
            "minimum {name} usage per {kind} is {enforced}, but limit is {lim}"
        )),
        _ => None,
    }
}

fn max_constraint(
    kind: &str,
    name: &str,
    enforced: &Quantity,
    requests: &ResourceList,
    limits: &ResourceList,
) -> Option<String> {
    let Some(lim) = limits.get(name) else {
        return Some(format!(
            "maximum {name} usage per {kind} is {enforced}.  No limit is specified"
        ));
    };
    if lim > enforced {
        return Some(format!(
            "maximum {name} usage per {kind} is {enforced}, but limit is {lim}"
        ));
    }
    match requests.get(name) {
        Some(req) if req > enforced => Some(format!(
            "maximum {name} usage per {kind} is {enforced}, but request is {req}"
        )),
        _ => None,
    }
}

fn max_request_constraint(
    kind: &str,
    name: &str,
    enforced: &Quantity,
    requests: &ResourceList,
) -> Option<String> {
    let Some(req) = requests.get(name) else {
        return Some(format!(
            "maximum {name} usage per {kind} is {enforced}.  No request is specified"
        ));
    };
    (req > enforced)
        .then(|| format!("maximum {name} usage per {kind} is {enforced}, but request is {req}"))
}

fn ratio_constraint(
    kind: &str,
    name: &str,
    enforced: &Quantity,
    requests: &ResourceList,
    limits: &ResourceList,
) -> Option<String> {
    let req = requests.get(name).filter(|q| !q.is_zero());
    let Some(req) = req else {
        return Some(format!(
            "{name} max limit to request ratio per {kind} is {enforced}, but no request is specified or request is 0"
        ));
    };
    let lim = limits.get(name).filter(|q| !q.is_zero());
    let Some(lim) = lim else {
        return Some(format!(
            "{name} max limit to request ratio per {kind} is {enforced}, but no limit is specified or limit is 0"
        ));
    };
    lim.ratio_exceeds(req, enforced).then(|| {
        format!(
            "{name} max limit to request ratio per {kind} is {enforced}, but provided ratio is {:.6}",
            lim.ratio(req)
        )
    })
}

fn check(item: &Item, requests: &ResourceList, limits: &ResourceList, errors: &mut Vec<String>) {
    let kind = item.kind.as_str();
    for (name, q) in &item.min {
        errors.extend(min_constraint(kind, name, q, requests, limits));
    }
    for (name, q) in &item.max {
        errors.extend(max_constraint(kind, name, q, requests, limits));
    }
    for (name, q) in &item.ratio {
        errors.extend(ratio_constraint(kind, name, q, requests, limits));
    }
}

fn add_into(total: &mut ResourceList, more: &ResourceList) {
    for (k, v) in more {
        match total.get_mut(k) {
            Some(t) => *t = t.checked_add(v).unwrap_or(*t),
            None => {
                total.insert(k.clone(), *v);
            }
        }
    }
}

fn max_into(total: &mut ResourceList, more: &ResourceList) {
    for (k, v) in more {
        if total.get(k).is_none_or(|t| v > t) {
            total.insert(k.clone(), *v);
        }
    }
}

/// A pod's total requests or limits (`field`): the sum over containers
/// and sidecars, at least the largest init container (kube's rule).
pub fn pod_total(
    spec: &Value,
    field: &str,
) -> Result<ResourceList, super::quantity::QuantityError> {
    let pointer = format!("/resources/{field}");
    let mut total = ResourceList::new();
    for c in spec
        .get("containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        add_into(&mut total, &resource_list(c.pointer(&pointer))?);
    }
    let mut sidecars = ResourceList::new();
    let mut init_max = ResourceList::new();
    for c in spec
        .get("initContainers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let own = resource_list(c.pointer(&pointer))?;
        if c.get("restartPolicy").and_then(Value::as_str) == Some("Always") {
            add_into(&mut total, &own);
            add_into(&mut sidecars, &own);
            max_into(&mut init_max, &sidecars);
        } else {
            let mut with = own;
            add_into(&mut with, &sidecars);
            max_into(&mut init_max, &with);
        }
    }
    max_into(&mut total, &init_max);
    Ok(total)
}

/// Checks a pod against the Container and Pod items of the LimitRanges.
pub fn validate_pod(ranges: &[Value], resource: &Resource, pod: &Value) -> Result<(), ApiError> {
    let spec = pod.get("spec").cloned().unwrap_or(Value::Null);
    let bad = |e: super::quantity::QuantityError| bad_quantity(resource, &e);
    let mut errors = Vec::new();
    for range in ranges {
        for item in items(range) {
            match item.kind.as_str() {
                "Container" => {
                    for list in ["containers", "initContainers"] {
                        for c in spec
                            .get(list)
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                        {
                            let requests =
                                resource_list(c.pointer("/resources/requests")).map_err(bad)?;
                            let limits =
                                resource_list(c.pointer("/resources/limits")).map_err(bad)?;
                            check(&item, &requests, &limits, &mut errors);
                        }
                    }
                }
                "Pod" => {
                    let requests = pod_total(&spec, "requests").map_err(bad)?;
                    let limits = pod_total(&spec, "limits").map_err(bad)?;
                    check(&item, &requests, &limits, &mut errors);
                }
                _ => {}
            }
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    Err(forbidden(resource, pod, &aggregate(&errors)))
}

/// Checks a claim's requested storage against PersistentVolumeClaim items.
pub fn validate_pvc(ranges: &[Value], resource: &Resource, pvc: &Value) -> Result<(), ApiError> {
    let requests = resource_list(pvc.pointer("/spec/resources/requests"))
        .map_err(|e| bad_quantity(resource, &e))?;
    let mut errors = Vec::new();
    for range in ranges {
        for item in items(range)
            .into_iter()
            .filter(|i| i.kind == "PersistentVolumeClaim")
        {
            for (name, q) in &item.min {
                errors.extend(min_constraint(
                    &item.kind,
                    name,
                    q,
                    &requests,
                    &ResourceList::new(),
                ));
            }
            for (name, q) in &item.max {
                errors.extend(max_request_constraint(&item.kind, name, q, &requests));
            }
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    Err(forbidden(resource, pvc, &aggregate(&errors)))
}
