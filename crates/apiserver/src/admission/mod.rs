//! Admission: the plugins kube-apiserver enables by default that berth
//! implements here, run on every create and update of the main resource
//! (subresources are left alone, as kube's plugins leave them).
//!
//! Mutating, in kube's order: LimitRanger (default requests and limits),
//! ServiceAccount (`spec.serviceAccountName: default`),
//! DefaultTolerationSeconds, DefaultStorageClass, DefaultIngressClass. Validating: LimitRanger (min, max, ratio),
//! ServiceAccount (the account must exist), PodSecurity (namespace labels
//! `pod-security.kubernetes.io/*`), ResourceQuota (last).
//!
//! NamespaceLifecycle lives in the create path and the default
//! ServiceAccount of a namespace in [`crate::api::Api::after_write`].

pub mod ingressclass;
pub mod limitranger;
pub mod podsecurity;
/// Resource quantities (shared with the scheduler and the agent).
pub use berth_types::quantity;
pub mod quota;
pub mod serviceaccount;
pub mod storageclass;
pub mod tolerations;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::api::Api;
use crate::error::ApiError;
pub use crate::kinds::Op;
use crate::meta;
use crate::request::Target;
use crate::resources::Resource;
use quantity::{Quantity, QuantityError};

/// A resource list (`requests`, `limits`, `hard`): name → quantity.
pub type ResourceList = BTreeMap<String, Quantity>;

/// Mutating then validating admission for a write of `obj` (`old` = the
/// current object on update). Returns warnings.
pub async fn admit(
    api: &Api,
    target: &Target,
    op: Op,
    old: Option<&Value>,
    obj: &mut Value,
    dry_run: bool,
) -> Result<Vec<String>, ApiError> {
    if !target.subresource.is_empty() {
        return Ok(Vec::new());
    }
    match (op, old) {
        (Op::Update, Some(old)) => prepare_update(api, target)
            .await?
            .admit(target, old, obj, dry_run),
        (Op::Update, None) => Ok(Vec::new()),
        (Op::Create, _) => admit_create(api, target, obj, dry_run).await,
    }
}

async fn admit_create(
    api: &Api,
    target: &Target,
    obj: &mut Value,
    dry_run: bool,
) -> Result<Vec<String>, ApiError> {
    let resource = &target.resource;
    let ns = target.namespace.as_str();
    let mut warnings = Vec::new();
    match (resource.group.as_str(), resource.plural.as_str()) {
        ("", "pods") => {
            // Mutating.
            limitranger::default_requests_from_limits(obj);
            let ranges = limitranger::load(api, ns).await?;
            limitranger::mutate_pod(&ranges, resource, obj)?;
            serviceaccount::default_name(obj);
            tolerations::apply(obj);
            // Validating.
            limitranger::validate_pod(&ranges, resource, obj)?;
            serviceaccount::check(api, ns, obj).await?;
            serviceaccount::mount_token(api, ns, obj).await?;
            let policy = podsecurity::namespace_policy(api, ns).await?;
            warnings.extend(podsecurity::admit_pod(&policy, obj)?);
        }
        ("", "persistentvolumeclaims") => {
            storageclass::default_class(api, obj).await?;
            let ranges = limitranger::load(api, ns).await?;
            limitranger::validate_pvc(&ranges, resource, obj)?;
        }
        ("networking.k8s.io", "ingresses") => ingressclass::default_class(api, obj).await?,
        ("", "limitranges") => limitranger::default_limit_range(resource, obj)?,
        ("", "namespaces") => podsecurity::validate_namespace(obj)?,
        _ => {
            if let Some(template) = podsecurity::template(resource, obj) {
                let policy = podsecurity::namespace_policy(api, ns).await?;
                warnings.extend(podsecurity::template_warnings(&policy, template));
            }
        }
    }
    quota::admit_create(api, target, obj, dry_run).await?;
    Ok(warnings)
}

/// What update admission needs, loaded before the read-modify-write
/// loop (whose closure is synchronous).
#[derive(Debug, Default)]
pub struct UpdateAdmission {
    /// LimitRanges of the namespace (PersistentVolumeClaim updates).
    ranges: Vec<Value>,
    /// The namespace's PodSecurity policy (workload updates).
    policy: Option<podsecurity::Policy>,
    /// The pods of a namespace being updated (PodSecurity warns about
    /// existing pods when the enforce level tightens).
    pods: Vec<Value>,
}

/// Loads what [`UpdateAdmission::admit`] needs for an update of `target`.
pub async fn prepare_update(api: &Api, target: &Target) -> Result<UpdateAdmission, ApiError> {
    let mut prepared = UpdateAdmission::default();
    if !target.subresource.is_empty() {
        return Ok(prepared);
    }
    let resource = &target.resource;
    let ns = target.namespace.as_str();
    match (resource.group.as_str(), resource.plural.as_str()) {
        ("", "persistentvolumeclaims") => prepared.ranges = limitranger::load(api, ns).await?,
        ("", "namespaces") => {
            let prefix = format!("{}/", key_prefix(api, "", "pods", &target.name));
            prepared.pods = api.objects.list_all(&prefix, 0).await?.0;
        }
        _ if podsecurity::is_workload(resource) => {
            prepared.policy = Some(podsecurity::namespace_policy(api, ns).await?);
        }
        _ => {}
    }
    Ok(prepared)
}

impl UpdateAdmission {
    /// Update admission of `obj` replacing `old` (synchronous: runs inside
    /// the store's read-modify-write). Returns warnings.
    pub fn admit(
        &self,
        target: &Target,
        old: &Value,
        obj: &mut Value,
        dry_run: bool,
    ) -> Result<Vec<String>, ApiError> {
        let _ = dry_run;
        if !target.subresource.is_empty() {
            return Ok(Vec::new());
        }
        let resource = &target.resource;
        let mut warnings = Vec::new();
        match (resource.group.as_str(), resource.plural.as_str()) {
            ("", "pods") => tolerations::apply(obj),
            ("", "persistentvolumeclaims") => {
                limitranger::validate_pvc(&self.ranges, resource, obj)?;
            }
            ("", "limitranges") => limitranger::default_limit_range(resource, obj)?,
            ("", "resourcequotas") => quota::update_hard(resource, obj)?,
            ("", "namespaces") => {
                podsecurity::validate_namespace(obj)?;
                warnings.extend(podsecurity::namespace_warnings(old, obj, &self.pods));
            }
            _ => {
                if let (Some(policy), Some(template)) =
                    (&self.policy, podsecurity::template(resource, obj))
                    && podsecurity::template(resource, old) != Some(template)
                {
                    warnings.extend(podsecurity::template_warnings(policy, template));
                }
            }
        }
        Ok(warnings)
    }
}

/// Hook after an object was written: a quota's status follows its spec,
/// and a pod reaching a terminal phase frees quota.
pub async fn after_write(api: &Api, resource: &Resource, obj: &Value) {
    let ns = meta::meta_str(obj, "namespace");
    let result = match (resource.group.as_str(), resource.plural.as_str()) {
        ("", "resourcequotas") => quota::refresh_one(api, obj).await,
        ("", "pods")
            if matches!(
                obj.pointer("/status/phase").and_then(Value::as_str),
                Some("Succeeded" | "Failed")
            ) =>
        {
            quota::recompute(api, ns, &resource.group, &resource.plural).await
        }
        _ => Ok(()),
    };
    if let Err(e) = result {
        tracing::warn!(error = %e.message, "quota status");
    }
}

/// Hook after an object was deleted: the quotas that count it are
/// recomputed.
pub async fn after_delete(api: &Api, resource: &Resource, obj: &Value) {
    if !resource.namespaced {
        return;
    }
    let ns = meta::meta_str(obj, "namespace");
    if let Err(e) = quota::recompute(api, ns, &resource.group, &resource.plural).await {
        tracing::warn!(error = %e.message, "quota status");
    }
}

/// The store prefix of a resource's objects in a namespace
/// (`/registry/pods/<ns>`), from the registry (kube's layout when the
/// resource is not served).
pub fn key_prefix(api: &Api, group: &str, plural: &str, ns: &str) -> String {
    let found = api
        .registry
        .all()
        .into_iter()
        .find(|r| r.group == group && r.plural == plural);
    match found {
        Some(r) => r.key(ns, "").trim_end_matches('/').to_owned(),
        None => format!("/registry/{plural}/{ns}"),
    }
}

/// The served resource `group`/`plural` (its storage version).
pub fn resource(api: &Api, group: &str, plural: &str) -> Option<std::sync::Arc<Resource>> {
    let all = api.registry.all();
    all.iter()
        .find(|r| r.group == group && r.plural == plural && r.storage_version)
        .or_else(|| all.iter().find(|r| r.group == group && r.plural == plural))
        .cloned()
}

/// One quantity from JSON (a string, or a number as YAML gives).
pub fn quantity(value: &Value) -> Result<Quantity, QuantityError> {
    match value {
        Value::String(s) => Quantity::parse(s),
        Value::Number(n) => Quantity::parse(&n.to_string()),
        _ => Err(QuantityError::Format),
    }
}

/// A resource list from JSON (absent = empty).
pub fn resource_list(value: Option<&Value>) -> Result<ResourceList, QuantityError> {
    let mut list = ResourceList::new();
    if let Some(map) = value.and_then(Value::as_object) {
        for (name, v) in map {
            list.insert(name.clone(), quantity(v)?);
        }
    }
    Ok(list)
}

/// A resource list as JSON, in canonical form.
pub fn list_json(list: &ResourceList) -> Value {
    Value::Object(
        list.iter()
            .map(|(k, q)| (k.clone(), Value::String(q.to_string())))
            .collect::<Map<String, Value>>(),
    )
}

/// kube's decode error for a quantity that does not parse.
pub fn bad_quantity(resource: &Resource, error: &QuantityError) -> ApiError {
    ApiError::bad_request(format!(
        "{kind} in version \"{version}\" cannot be handled as a {kind}: {error}",
        kind = resource.kind,
        version = resource.version,
    ))
}

/// `pods "x" is forbidden: why`.
pub fn forbidden(resource: &Resource, obj: &Value, why: &str) -> ApiError {
    ApiError::forbidden_on(
        &resource.group,
        &resource.plural,
        meta::meta_str(obj, "name"),
        why,
    )
}

/// kube's aggregate of error texts: one as is, several (deduplicated)
/// as `[a, b]`.
pub fn aggregate(messages: &[String]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for m in messages {
        if !seen.contains(&m.as_str()) {
            seen.push(m);
        }
    }
    match seen.as_slice() {
        [one] => (*one).to_owned(),
        many => format!("[{}]", many.join(", ")),
    }
}

/// The containers of a pod spec, init containers after regular ones,
/// with the list they are in.
pub fn containers(spec: &Value) -> impl Iterator<Item = (&'static str, &Value)> {
    ["containers", "initContainers"]
        .into_iter()
        .flat_map(move |list| {
            spec.get(list)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(move |c| (list, c))
        })
}
