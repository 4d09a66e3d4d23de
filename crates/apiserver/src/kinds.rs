//! Defaulting, validation and the immutable-field rules of the built-in
//! kinds, plus metadata rules every object follows. Errors are
//! Kubernetes's 422 `Invalid` with causes.

use serde_json::{Map, Value, json};

use crate::api::Api;
use crate::error::{ApiError, Cause};
use crate::meta;
use crate::request::Query;
use crate::resources::Resource;

/// Create or update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A new object.
    Create,
    /// A change to an existing object.
    Update,
}

/// `fieldValidation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    /// Unknown or duplicate fields are errors.
    Strict,
    /// They are warnings (kube's default).
    Warn,
    /// They are dropped silently.
    Ignore,
}

impl FieldValidation {
    /// From the query.
    pub fn from_query(query: &Query) -> Result<FieldValidation, ApiError> {
        match query.get("fieldValidation").unwrap_or("Warn") {
            "Strict" => Ok(FieldValidation::Strict),
            "Warn" | "" => Ok(FieldValidation::Warn),
            "Ignore" => Ok(FieldValidation::Ignore),
            other => Err(ApiError::bad_request(format!(
                "fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\", got \"{other}\""
            ))),
        }
    }
}

/// Defaults and validates `obj` for a write; returns warnings.
pub fn prepare(
    api: &Api,
    resource: &Resource,
    op: Op,
    old: Option<&Value>,
    obj: &mut Value,
    validation: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    // Decoding (crate::schema): unknown fields are dropped; Strict fails, Warn warns.
    let warnings = crate::schema::decode(api, resource, obj, validation)?;
    let name = meta::meta_str(obj, "name").to_owned();
    let mut causes = Vec::new();
    let rule = meta::name_rule(&resource.group, &resource.plural);
    if let Some(cause) = meta::validate_name(&name, rule, "metadata.name") {
        causes.push(cause);
    }
    let md = meta::metadata(obj).clone();
    if let Some(labels) = md.get("labels") {
        match labels.as_object() {
            Some(l) => causes.extend(meta::validate_labels(l, "metadata.labels")),
            None if labels.is_null() => {}
            None => causes.push(Cause::invalid(
                "metadata.labels",
                labels,
                "must be a map of strings",
            )),
        }
    }
    if let Some(annotations) = md.get("annotations").and_then(Value::as_object) {
        let total: usize = annotations
            .iter()
            .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
            .sum();
        for (k, v) in annotations {
            if let Some(why) = meta::qualified_name_error(k) {
                causes.push(Cause::invalid("metadata.annotations", &json!(k), &why));
            }
            if !v.is_string() {
                causes.push(Cause::invalid(
                    format!("metadata.annotations.{k}"),
                    v,
                    "annotation values must be strings",
                ));
            }
        }
        if total > 256 * 1024 {
            causes.push(Cause::new(
                "FieldValueTooLong",
                "metadata.annotations",
                "Too long: must have at most 262144 bytes",
            ));
        }
    }
    if let Some(old) = old {
        if meta::meta_str(old, "name") != name {
            causes.push(Cause::invalid(
                "metadata.name",
                &json!(name),
                "field is immutable",
            ));
        }
        // generation: bumped by any change outside metadata and status.
        let mut generation = meta::metadata(old)
            .get("generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if meta::spec_part(old) != meta::spec_part(obj) {
            generation += 1;
        }
        if generation > 0 {
            meta::metadata_mut(obj).insert("generation".to_owned(), json!(generation));
        }
    } else if obj.get("spec").is_some() || !resource.group.is_empty() {
        meta::metadata_mut(obj).insert("generation".to_owned(), json!(1));
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid(
            &resource.group,
            &resource.kind,
            &name,
            causes,
        ));
    }
    let causes = match (resource.group.as_str(), resource.kind.as_str()) {
        ("", "Pod") => pod(op, old, obj),
        ("", "Namespace") => namespace(op, obj),
        ("", "PersistentVolumeClaim") | ("", "PersistentVolume") => {
            storage_defaults(&resource.kind, op, obj);
            Vec::new()
        }
        ("", "Service") => service(old, obj),
        ("", "ConfigMap") | ("", "Secret") => config(&resource.kind, old, obj),
        ("apps", "Deployment")
        | ("apps", "ReplicaSet")
        | ("apps", "StatefulSet")
        | ("apps", "DaemonSet")
        | ("", "ReplicationController") => workload(&resource.kind, old, obj),
        ("batch", "Job") => job(old, obj),
        ("batch", "CronJob") => cronjob(obj),
        ("networking.k8s.io", "NetworkPolicy") => crate::netpol::prepare(obj),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(old, obj),
        _ => Vec::new(),
    };
    if !causes.is_empty() {
        return Err(ApiError::invalid(
            &resource.group,
            &resource.kind,
            &name,
            causes,
        ));
    }
    Ok(warnings)
}

/// kube's defaults of claims and volumes: phase Pending on create,
/// volumeMode Filesystem, and Retain for a volume's reclaim policy.
fn storage_defaults(kind: &str, op: Op, obj: &mut Value) {
    if let Some(spec) = obj_mut(obj, "spec") {
        set_default(spec, "volumeMode", json!("Filesystem"));
        if kind == "PersistentVolume" {
            set_default(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
        }
    }
    if op == Op::Create
        && let Some(status) = obj_mut(obj, "status")
    {
        set_default(status, "phase", json!("Pending"));
    }
}

fn set_default(map: &mut Map<String, Value>, key: &str, value: Value) {
    if map.get(key).is_none_or(Value::is_null) {
        map.insert(key.to_owned(), value);
    }
}

fn obj_mut<'a>(parent: &'a mut Value, key: &str) -> Option<&'a mut Map<String, Value>> {
    let map = parent.as_object_mut()?;
    let entry = map.entry(key).or_insert_with(|| json!({}));
    if entry.is_null() {
        *entry = json!({});
    }
    entry.as_object_mut()
}

/// kube's defaults of a PodSpec.
pub fn default_pod_spec(spec: &mut Map<String, Value>) {
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    set_default(spec, "enableServiceLinks", json!(true));
    set_default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    set_default(spec, "priority", json!(0));
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for c in spec
            .get_mut(list)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            let Some(c) = c.as_object_mut() else { continue };
            set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
            set_default(c, "terminationMessagePolicy", json!("File"));
            let image = c.get("image").and_then(Value::as_str).unwrap_or("");
            let last = image.rsplit('/').next().unwrap_or("");
            let tagged = last.contains(':') && !last.ends_with(":latest");
            let policy = if image.contains('@') || tagged {
                "IfNotPresent"
            } else {
                "Always"
            };
            set_default(c, "imagePullPolicy", json!(policy));
            if list != "ephemeralContainers" {
                set_default(c, "resources", json!({}));
            }
            for p in c
                .get_mut("ports")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Some(p) = p.as_object_mut() {
                    set_default(p, "protocol", json!("TCP"));
                }
            }
        }
    }
}

fn validate_containers(spec: &Value, field: &str, causes: &mut Vec<Cause>) {
    let containers = spec.get("containers").and_then(Value::as_array);
    if containers.is_none_or(Vec::is_empty) {
        causes.push(Cause::required(format!("{field}.containers")));
    }
    let mut seen = std::collections::HashSet::new();
    for list in ["initContainers", "containers"] {
        for (i, c) in spec
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let at = format!("{field}.{list}[{i}]");
            let name = c.get("name").and_then(Value::as_str).unwrap_or("");
            if name.is_empty() {
                causes.push(Cause::required(format!("{at}.name")));
            } else if !meta::is_dns1123_label(name) {
                causes.push(Cause::invalid(format!("{at}.name"), &json!(name), "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"));
            } else if !seen.insert(name.to_owned()) {
                causes.push(Cause::duplicate(format!("{at}.name"), &json!(name)));
            }
            if c.get("image")
                .and_then(Value::as_str)
                .is_none_or(|s| s.trim().is_empty())
            {
                causes.push(Cause::required(format!("{at}.image")));
            }
            for (j, p) in c
                .get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let port = p.get("containerPort").and_then(Value::as_i64).unwrap_or(0);
                if !(1..=65535).contains(&port) {
                    causes.push(Cause::invalid(
                        format!("{at}.ports[{j}].containerPort"),
                        p.get("containerPort").unwrap_or(&Value::Null),
                        "must be between 1 and 65535, inclusive",
                    ));
                }
            }
        }
    }
    // kube keeps both in the internal PodSecurityContext: the field path
    // names it
    if spec.get("shareProcessNamespace") == Some(&json!(true))
        && spec.get("hostPID") == Some(&json!(true))
    {
        causes.push(Cause::invalid(
            format!("{field}.securityContext.shareProcessNamespace"),
            &json!(true),
            "ShareProcessNamespace and HostPID cannot both be enabled",
        ));
    }
    if let Some(policy) = spec.get("restartPolicy").and_then(Value::as_str)
        && !matches!(policy, "Always" | "OnFailure" | "Never")
    {
        causes.push(Cause::not_supported(
            format!("{field}.restartPolicy"),
            &json!(policy),
            &["Always", "Never", "OnFailure"],
        ));
    }
}

/// The QoS class of a pod (`status.qosClass`).
fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = ["initContainers", "containers"]
        .iter()
        .flat_map(|l| spec.get(*l).and_then(Value::as_array).into_iter().flatten())
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        let requests = c.pointer("/resources/requests").and_then(Value::as_object);
        let limits = c.pointer("/resources/limits").and_then(Value::as_object);
        if requests.is_some_and(|r| !r.is_empty()) || limits.is_some_and(|l| !l.is_empty()) {
            any = true;
        }
        for resource in ["cpu", "memory"] {
            let limit = limits.and_then(|l| l.get(resource));
            let request = requests.and_then(|r| r.get(resource)).or(limit);
            if limit.is_none() || request != limit {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// kube's text for a pod update that changes more than it may.
pub(crate) const POD_UPDATE_FORBIDDEN: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

fn pod(op: Op, old: Option<&Value>, obj: &mut Value) -> Vec<Cause> {
    if let Some(spec) = obj_mut(obj, "spec") {
        default_pod_spec(spec);
    }
    let mut causes = Vec::new();
    validate_containers(&obj["spec"], "spec", &mut causes);
    match (op, old) {
        (Op::Create, _) => {
            let qos = qos_class(&obj["spec"]);
            let status = obj_mut(obj, "status").expect("made above");
            set_default(status, "phase", json!("Pending"));
            status.insert("qosClass".to_owned(), json!(qos));
        }
        (Op::Update, Some(old)) => {
            // Only images, activeDeadlineSeconds, tolerations (added),
            // terminationGracePeriodSeconds and scheduling gates may change.
            let strip = |spec: &Value| {
                let mut spec = spec.clone();
                for list in ["containers", "initContainers"] {
                    for c in spec
                        .get_mut(list)
                        .and_then(Value::as_array_mut)
                        .into_iter()
                        .flatten()
                    {
                        if let Some(c) = c.as_object_mut() {
                            c.remove("image");
                        }
                    }
                }
                if let Some(s) = spec.as_object_mut() {
                    for f in [
                        "activeDeadlineSeconds",
                        "tolerations",
                        "terminationGracePeriodSeconds",
                        "schedulingGates",
                        "ephemeralContainers",
                    ] {
                        s.remove(f);
                    }
                }
                spec
            };
            let old_node = old.pointer("/spec/nodeName").cloned();
            let new_node = obj.pointer("/spec/nodeName").cloned();
            if strip(&old["spec"]) != strip(&obj["spec"])
                || (old_node.is_some() && old_node != new_node)
            {
                causes.push(Cause::forbidden("spec", POD_UPDATE_FORBIDDEN));
            }
        }
        _ => {}
    }
    causes
}

fn namespace(op: Op, obj: &mut Value) -> Vec<Cause> {
    if op == Op::Create {
        if let Some(spec) = obj_mut(obj, "spec") {
            set_default(spec, "finalizers", json!(["kubernetes"]));
        }
        if let Some(status) = obj_mut(obj, "status") {
            set_default(status, "phase", json!("Active"));
        }
        let name = meta::meta_str(obj, "name").to_owned();
        let labels = meta::metadata_mut(obj)
            .entry("labels")
            .or_insert_with(|| json!({}));
        if let Some(l) = labels.as_object_mut() {
            l.insert("kubernetes.io/metadata.name".to_owned(), json!(name));
        }
    }
    Vec::new()
}

fn service(old: Option<&Value>, obj: &mut Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    // kube's update rules first: allocated values a write leaves out are
    // kept, those the new type has no use for are dropped.
    if let Some(old) = old {
        crate::alloc::service::carry_allocations(old, obj);
    }
    if let Some(spec) = obj_mut(obj, "spec") {
        set_default(spec, "type", json!("ClusterIP"));
        set_default(spec, "sessionAffinity", json!("None"));
        let kind = spec
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if kind != "ExternalName" {
            set_default(spec, "internalTrafficPolicy", json!("Cluster"));
        }
        if matches!(kind.as_str(), "NodePort" | "LoadBalancer") {
            set_default(spec, "externalTrafficPolicy", json!("Cluster"));
        }
        if kind == "LoadBalancer" {
            set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
        }
        let mut seen = std::collections::HashSet::new();
        let mut node_ports = std::collections::HashSet::new();
        for (i, p) in spec
            .get_mut("ports")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let Some(p) = p.as_object_mut() else { continue };
            set_default(p, "protocol", json!("TCP"));
            let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
            if !(1..=65535).contains(&port) {
                causes.push(Cause::invalid(
                    format!("spec.ports[{i}].port"),
                    p.get("port").unwrap_or(&Value::Null),
                    "must be between 1 and 65535, inclusive",
                ));
            }
            let proto = p
                .get("protocol")
                .and_then(Value::as_str)
                .unwrap_or("TCP")
                .to_owned();
            if !seen.insert((port, proto.clone())) {
                causes.push(Cause::duplicate(
                    format!("spec.ports[{i}]"),
                    &json!({"port": port}),
                ));
            }
            let node_port = p.get("nodePort").and_then(Value::as_i64).unwrap_or(0);
            if node_port != 0 {
                if !matches!(kind.as_str(), "NodePort" | "LoadBalancer") {
                    causes.push(Cause::forbidden(
                        format!("spec.ports[{i}].nodePort"),
                        &format!("may not be used when `type` is '{kind}'"),
                    ));
                } else if !(1..=65535).contains(&node_port) {
                    causes.push(Cause::invalid(
                        format!("spec.ports[{i}].nodePort"),
                        &json!(node_port),
                        "must be between 1 and 65535, inclusive",
                    ));
                } else if !node_ports.insert((node_port, proto)) {
                    causes.push(Cause::duplicate(
                        format!("spec.ports[{i}].nodePort"),
                        &json!(node_port),
                    ));
                }
            }
            if let Some(target) = p.get("port").cloned() {
                set_default(p, "targetPort", target);
            }
        }
        if !matches!(
            kind.as_str(),
            "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName"
        ) {
            causes.push(Cause::not_supported(
                "spec.type",
                &json!(kind),
                &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
            ));
        }
        if kind != "ExternalName"
            && spec
                .get("ports")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
            && spec.get("clusterIP").and_then(Value::as_str) != Some("None")
        {
            causes.push(Cause::required("spec.ports"));
        }
        if spec
            .get("externalIPs")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
        {
            // CVE-2020-8554: externalIPs let a user take over traffic to
            // any address; kube's DenyServiceExternalIPs admission refuses.
            causes.push(Cause::forbidden(
                "spec.externalIPs",
                "externalIPs are denied by berth's admission (CVE-2020-8554)",
            ));
        }
        let hc = spec
            .get("healthCheckNodePort")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let local = spec.get("externalTrafficPolicy").and_then(Value::as_str) == Some("Local");
        if hc != 0 && !(kind == "LoadBalancer" && local) {
            causes.push(Cause::invalid(
                "spec.healthCheckNodePort",
                &json!(hc),
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            ));
        }
        if !matches!(kind.as_str(), "NodePort" | "LoadBalancer")
            && let Some(policy) = spec.get("externalTrafficPolicy").cloned()
        {
            causes.push(Cause::invalid(
                "spec.externalTrafficPolicy",
                &policy,
                "may only be set for externally-accessible services",
            ));
        }
        if kind != "ExternalName" {
            causes.extend(service_addresses(spec, old));
        }
    }
    if let Some(old) = old {
        let old_ip = old
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .unwrap_or("");
        let new_ip = obj
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .unwrap_or("");
        let external = obj.pointer("/spec/type").and_then(Value::as_str) == Some("ExternalName");
        if old_ip != new_ip && !old_ip.is_empty() && !external {
            causes.push(Cause::invalid(
                "spec.clusterIPs[0]",
                &json!(new_ip),
                "may not change once set",
            ));
        }
    }
    causes
}

/// The address fields of a Service with a cluster IP: `clusterIP` and
/// `clusterIPs` filled from each other, `ipFamilyPolicy` (the old one on
/// update, else SingleStack; RequireDualStack for a headless Service
/// without selector, as kube) and `ipFamilies` defaulted, and what a
/// single-stack IPv4 cluster refuses.
fn service_addresses(spec: &mut Map<String, Value>, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let ip = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let ips: Vec<String> = spec
        .get("clusterIPs")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    match (ip.is_empty(), ips.first()) {
        (false, None) => {
            spec.insert("clusterIPs".to_owned(), json!([ip]));
        }
        (true, Some(first)) => {
            spec.insert("clusterIP".to_owned(), json!(first));
        }
        (false, Some(first)) if *first != ip => {
            causes.push(Cause::invalid(
                "spec.clusterIPs[0]",
                &json!(first),
                "must match `clusterIP` when set",
            ));
        }
        _ => {}
    }
    let ip = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if !ip.is_empty() && ip != "None" && ip.parse::<std::net::Ipv4Addr>().is_err() {
        if ip.parse::<std::net::IpAddr>().is_ok() {
            causes.push(Cause::invalid(
                "spec.clusterIPs[0]",
                &json!([ip]),
                "IPv6 is not configured on this cluster",
            ));
        } else {
            causes.push(Cause::invalid(
                "spec.clusterIPs[0]",
                &json!(ip),
                "must be a valid IP address",
            ));
        }
    }
    if ips.len() > 1 {
        causes.push(Cause::invalid(
            "spec.ipFamilyPolicy",
            &json!(
                spec.get("ipFamilyPolicy")
                    .and_then(Value::as_str)
                    .unwrap_or("SingleStack")
            ),
            "this cluster is not configured for dual-stack services",
        ));
    }
    let headless_selectorless = ip == "None"
        && spec
            .get("selector")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty);
    if !spec.get("ipFamilyPolicy").is_some_and(Value::is_string) {
        let policy = old
            .and_then(|o| o.pointer("/spec/ipFamilyPolicy"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| {
                if headless_selectorless {
                    "RequireDualStack".to_owned()
                } else {
                    "SingleStack".to_owned()
                }
            });
        spec.insert("ipFamilyPolicy".to_owned(), json!(policy));
    }
    let policy = spec
        .get("ipFamilyPolicy")
        .and_then(Value::as_str)
        .unwrap_or("SingleStack")
        .to_owned();
    if !matches!(
        policy.as_str(),
        "SingleStack" | "PreferDualStack" | "RequireDualStack"
    ) {
        causes.push(Cause::not_supported(
            "spec.ipFamilyPolicy",
            &json!(policy),
            &["PreferDualStack", "RequireDualStack", "SingleStack"],
        ));
        return causes;
    }
    if headless_selectorless {
        let families = spec.entry("ipFamilies").or_insert_with(|| json!(["IPv4"]));
        if policy != "SingleStack"
            && let Some(list) = families.as_array_mut()
            && list.len() < 2
        {
            let other = if list.first().and_then(Value::as_str) == Some("IPv6") {
                "IPv4"
            } else {
                "IPv6"
            };
            list.push(json!(other));
        }
        return causes;
    }
    if policy == "RequireDualStack" {
        causes.push(Cause::invalid(
            "spec.ipFamilyPolicy",
            &json!(policy),
            "this cluster is not configured for dual-stack services",
        ));
    }
    let families = spec.entry("ipFamilies").or_insert_with(|| json!(["IPv4"]));
    if families.as_array().is_some_and(Vec::is_empty) {
        *families = json!(["IPv4"]);
    }
    for (i, f) in families.as_array().into_iter().flatten().enumerate() {
        if f.as_str() != Some("IPv4") {
            causes.push(Cause::invalid(
                format!("spec.ipFamilies[{i}]"),
                f,
                "not configured on this cluster",
            ));
        }
    }
    causes
}

fn config(kind: &str, old: Option<&Value>, obj: &mut Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    if kind == "Secret" {
        if let Some(map) = obj.as_object_mut() {
            set_default(map, "type", json!("Opaque"));
            // stringData is write-only: merged into data (base64).
            if let Some(Value::Object(string_data)) = map.remove("stringData") {
                use base64::Engine;
                let data = map.entry("data").or_insert_with(|| json!({}));
                if let Some(d) = data.as_object_mut() {
                    for (k, v) in string_data {
                        let text = v.as_str().unwrap_or("").to_owned();
                        d.insert(
                            k,
                            json!(base64::engine::general_purpose::STANDARD.encode(text)),
                        );
                    }
                }
            }
        }
        for (k, v) in obj
            .get("data")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            use base64::Engine;
            let ok = v
                .as_str()
                .is_some_and(|s| base64::engine::general_purpose::STANDARD.decode(s).is_ok());
            if !ok {
                causes.push(Cause::invalid(
                    format!("data[{k}]"),
                    &json!("<secret contents redacted>"),
                    "illegal base64 data",
                ));
            }
        }
    }
    for field in ["data", "binaryData"] {
        for k in obj
            .get(field)
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            let ok = !k.is_empty()
                && k.len() <= 253
                && k.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
            if !ok {
                causes.push(Cause::invalid(format!("{field}[{k}]"), &json!(k), "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"));
            }
        }
    }
    if let Some(old) = old
        && old.get("immutable").and_then(Value::as_bool) == Some(true)
    {
        for field in ["data", "binaryData", "immutable", "type"] {
            if old.get(field) != obj.get(field) {
                let path = if field == "immutable" {
                    "immutable"
                } else {
                    field
                };
                causes.push(Cause::forbidden(
                    path,
                    "field is immutable when `immutable` is set",
                ));
            }
        }
    }
    causes
}

fn workload(kind: &str, old: Option<&Value>, obj: &mut Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    if let Some(spec) = obj_mut(obj, "spec") {
        if kind != "DaemonSet" {
            set_default(spec, "replicas", json!(1));
        }
        set_default(spec, "revisionHistoryLimit", json!(10));
        match kind {
            "Deployment" => {
                set_default(
                    spec,
                    "strategy",
                    json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
                );
                set_default(spec, "progressDeadlineSeconds", json!(600));
            }
            "StatefulSet" => {
                set_default(spec, "podManagementPolicy", json!("OrderedReady"));
                set_default(
                    spec,
                    "updateStrategy",
                    json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
                );
                set_default(
                    spec,
                    "persistentVolumeClaimRetentionPolicy",
                    json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
                );
            }
            "DaemonSet" => {
                set_default(
                    spec,
                    "updateStrategy",
                    json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
                );
            }
            "ReplicaSet" | "ReplicationController" => {
                spec.remove("revisionHistoryLimit");
            }
            _ => {}
        }
        if kind == "ReplicationController"
            && spec.get("selector").is_none()
            && let Some(labels) = spec
                .get("template")
                .and_then(|t| t.pointer("/metadata/labels"))
                .cloned()
        {
            spec.insert("selector".to_owned(), labels);
        }
        if let Some(template_spec) = spec.get_mut("template").and_then(|t| obj_mut(t, "spec")) {
            default_pod_spec(template_spec);
        }
        if spec
            .get("replicas")
            .and_then(Value::as_i64)
            .is_some_and(|r| r < 0)
        {
            causes.push(Cause::invalid(
                "spec.replicas",
                &spec["replicas"],
                "must be greater than or equal to 0",
            ));
        }
    }
    let selector = obj.pointer("/spec/selector").cloned();
    let template_labels = obj
        .pointer("/spec/template/metadata/labels")
        .cloned()
        .unwrap_or(json!({}));
    match selector {
        None | Some(Value::Null) => causes.push(Cause::required("spec.selector")),
        Some(sel) => {
            let parsed = if kind == "ReplicationController" {
                crate::selectors::LabelSelector::from_object(&json!({"matchLabels": sel}))
            } else {
                crate::selectors::LabelSelector::from_object(&sel)
            };
            match parsed {
                Ok(s) if s.is_empty() => causes.push(Cause::invalid(
                    "spec.selector",
                    &sel,
                    "empty selector is invalid for deployment",
                )),
                Ok(s) => {
                    if !s.matches(&json!({"metadata": {"labels": template_labels}})) {
                        causes.push(Cause::invalid(
                            "spec.template.metadata.labels",
                            &template_labels,
                            "`selector` does not match template `labels`",
                        ));
                    }
                }
                Err(why) => causes.push(Cause::invalid("spec.selector", &sel, &why)),
            }
            if let Some(old) = old
                && kind != "ReplicationController"
                && old.pointer("/spec/selector") != Some(&sel)
            {
                causes.push(Cause::invalid("spec.selector", &sel, "field is immutable"));
            }
        }
    }
    if obj.pointer("/spec/template").is_some() {
        validate_containers(
            &obj["spec"]["template"]["spec"],
            "spec.template.spec",
            &mut causes,
        );
    } else {
        causes.push(Cause::required("spec.template"));
    }
    causes
}

fn job(old: Option<&Value>, obj: &mut Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let uid = meta::meta_str(obj, "uid").to_owned();
    let name = meta::meta_str(obj, "name").to_owned();
    if let Some(spec) = obj_mut(obj, "spec") {
        set_default(spec, "parallelism", json!(1));
        if spec.get("completions").is_none()
            && spec.get("completionMode").and_then(Value::as_str) != Some("Indexed")
        {
            spec.insert("completions".to_owned(), json!(1));
        }
        set_default(spec, "backoffLimit", json!(6));
        set_default(spec, "completionMode", json!("NonIndexed"));
        set_default(spec, "suspend", json!(false));
        set_default(spec, "podReplacementPolicy", json!("TerminatingOrFailed"));
        if old.is_none() && spec.get("manualSelector").and_then(Value::as_bool) != Some(true) {
            let labels = json!({
                "batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
                "controller-uid": uid, "job-name": name,
            });
            spec.insert(
                "selector".to_owned(),
                json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
            );
            if let Some(template) = spec.get_mut("template") {
                let meta = obj_mut(template, "metadata").expect("made");
                let l = meta.entry("labels").or_insert_with(|| json!({}));
                if let (Some(l), Some(add)) = (l.as_object_mut(), labels.as_object()) {
                    for (k, v) in add {
                        l.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        if let Some(template_spec) = spec.get_mut("template").and_then(|t| obj_mut(t, "spec")) {
            default_pod_spec(template_spec);
            // A Job's pods never restart in place by default… but kube
            // requires the user to choose Never or OnFailure.
        }
    }
    let policy = obj
        .pointer("/spec/template/spec/restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !matches!(policy, "Never" | "OnFailure") {
        causes.push(Cause::not_supported(
            "spec.template.spec.restartPolicy",
            &json!(policy),
            &["OnFailure", "Never"],
        ));
    }
    validate_containers(
        &obj["spec"]["template"]["spec"],
        "spec.template.spec",
        &mut causes,
    );
    if let Some(old) = old {
        if old.pointer("/spec/selector") != obj.pointer("/spec/selector") {
            causes.push(Cause::invalid(
                "spec.selector",
                obj.pointer("/spec/selector").unwrap_or(&Value::Null),
                "field is immutable",
            ));
        }
        if old.pointer("/spec/template") != obj.pointer("/spec/template") {
            causes.push(Cause::invalid(
                "spec.template",
                &json!("<template>"),
                "field is immutable",
            ));
        }
    }
    causes
}

fn cronjob(obj: &mut Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    if let Some(spec) = obj_mut(obj, "spec") {
        set_default(spec, "concurrencyPolicy", json!("Allow"));
        set_default(spec, "suspend", json!(false));
        set_default(spec, "successfulJobsHistoryLimit", json!(3));
        set_default(spec, "failedJobsHistoryLimit", json!(1));
        if spec
            .get("schedule")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            causes.push(Cause::required("spec.schedule"));
        } else if let Some(schedule) = spec
            .get("schedule")
            .filter(|s| s.as_str().is_some_and(|s| s.contains("TZ")))
        {
            // kube refuses a time zone in the schedule: `timeZone` says it.
            causes.push(Cause::invalid(
                "spec.schedule",
                schedule,
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        }
        if let Some(template_spec) = spec
            .get_mut("jobTemplate")
            .and_then(|t| t.get_mut("spec"))
            .and_then(|s| s.get_mut("template"))
            .and_then(|t| obj_mut(t, "spec"))
        {
            default_pod_spec(template_spec);
        }
    }
    causes
}

fn crd(old: Option<&Value>, obj: &mut Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let spec = obj.get("spec").cloned().unwrap_or(json!({}));
    let group = spec["group"].as_str().unwrap_or("");
    let plural = spec
        .pointer("/names/plural")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = spec
        .pointer("/names/kind")
        .and_then(Value::as_str)
        .unwrap_or("");
    if group.is_empty() || !group.contains('.') {
        causes.push(Cause::invalid(
            "spec.group",
            &spec["group"],
            "should be a domain with at least one dot",
        ));
    }
    if plural.is_empty() {
        causes.push(Cause::required("spec.names.plural"));
    }
    if kind.is_empty() {
        causes.push(Cause::required("spec.names.kind"));
    }
    let expected = format!("{plural}.{group}");
    if meta::meta_str(obj, "name") != expected {
        causes.push(Cause::invalid(
            "metadata.name",
            &json!(meta::meta_str(obj, "name")),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        causes.push(Cause::required("spec.versions"));
    }
    if versions
        .iter()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .count()
        != 1
    {
        causes.push(Cause::invalid(
            "spec.versions",
            &json!(versions.len()),
            "must have exactly one version marked as storage version",
        ));
    }
    if !matches!(spec["scope"].as_str(), Some("Namespaced" | "Cluster")) {
        causes.push(Cause::not_supported(
            "spec.scope",
            &spec["scope"],
            &["Cluster", "Namespaced"],
        ));
    }
    if let Some(old) = old
        && old.pointer("/spec/group") != obj.pointer("/spec/group")
    {
        causes.push(Cause::invalid(
            "spec.group",
            &spec["group"],
            "field is immutable",
        ));
    }
    if causes.is_empty() {
        let names = spec["names"].clone();
        let now = meta::now();
        let mut accepted = names.clone();
        if let Some(a) = accepted.as_object_mut() {
            a.entry("singular")
                .or_insert_with(|| json!(kind.to_ascii_lowercase()));
            a.entry("listKind")
                .or_insert_with(|| json!(format!("{kind}List")));
        }
        if let Some(status) = obj_mut(obj, "status") {
            status.insert("acceptedNames".to_owned(), accepted);
            status.insert(
                "storedVersions".to_owned(),
                json!(
                    versions
                        .iter()
                        .filter(|v| v["storage"].as_bool() == Some(true))
                        .map(|v| v["name"].clone())
                        .collect::<Vec<_>>()
                ),
            );
            status.insert("conditions".to_owned(), json!([
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now},
            ]));
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn causes_of(spec: Value, field: &str) -> Vec<String> {
        let mut causes = Vec::new();
        validate_containers(&spec, field, &mut causes);
        causes
            .iter()
            .map(|c| format!("{} {}: {}", c.reason, c.field, c.message))
            .collect()
    }

    #[test]
    fn share_process_namespace_and_host_pid_are_exclusive() {
        let c = json!([{"name": "a", "image": "i"}]);
        for (share, host, refused) in [
            (json!(true), json!(true), true),
            (json!(true), json!(false), false),
            (json!(false), json!(true), false),
            (Value::Null, json!(true), false),
        ] {
            let spec = json!({"containers": c, "shareProcessNamespace": share, "hostPID": host});
            let got = causes_of(spec, "spec.template.spec");
            assert_eq!(!got.is_empty(), refused, "{share} {host}: {got:?}");
            if refused {
                assert!(
                    got[0].contains("spec.template.spec.securityContext.shareProcessNamespace")
                        && got[0].contains(
                            "Invalid value: true: ShareProcessNamespace and HostPID cannot both be enabled"
                        ),
                    "{got:?}"
                );
            }
        }
    }
}
