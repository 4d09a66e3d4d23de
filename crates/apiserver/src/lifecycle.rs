//! Namespace deletion: a namespace marked for deletion (phase
//! Terminating, finalizer `kubernetes`) has its content deleted, then
//! its `kubernetes` finalizer removed, then it goes.
//!
//! This is the namespace controller's job (kube-controller-manager's); it
//! runs here until berth's controllers arrive (issue 14), where it moves
//! as a client of the API.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

use crate::api::Api;
use crate::api::objects::{DeleteOptions, delete_object};
use crate::error::ApiError;
use crate::meta;
use crate::request::Target;
use crate::storage::{Change, decode};

/// Runs the namespace finalizer until the process ends.
pub fn spawn(api: Arc<Api>) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = run(&api).await {
                tracing::warn!(error = %e.message, "namespace finalizer restarts");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

async fn run(api: &Arc<Api>) -> Result<(), ApiError> {
    let (namespaces, revision) = api.objects.list_all("/registry/namespaces/", 0).await?;
    for ns in namespaces {
        if !meta::meta_str(&ns, "deletionTimestamp").is_empty() {
            schedule(api.clone(), meta::meta_str(&ns, "name").to_owned());
        }
    }
    let mut events = api
        .objects
        .store()
        .watch("/registry/namespaces/", revision)
        .await?;
    while let Some(event) = events.next().await {
        let event = event?;
        if event.kind != berth_kv::EventKind::Put {
            continue;
        }
        let ns = decode(&event.kv)?;
        if !meta::meta_str(&ns, "deletionTimestamp").is_empty() {
            schedule(api.clone(), meta::meta_str(&ns, "name").to_owned());
        }
    }
    Ok(())
}

/// Finalizes a namespace, retrying while content remains.
fn schedule(api: Arc<Api>, name: String) {
    tokio::spawn(async move {
        let mut wait = Duration::from_millis(200);
        loop {
            match finalize(&api, &name).await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) if e.code == 404 => return,
                Err(e) => {
                    tracing::warn!(namespace = %name, error = %e.message, "namespace finalization")
                }
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    });
}

/// One pass: deletes what is left in the namespace; when nothing is,
/// removes the `kubernetes` finalizer (and the namespace, if no other
/// finalizer holds it). Returns whether the namespace is done.
async fn finalize(api: &Api, name: &str) -> Result<bool, ApiError> {
    let mut remaining = 0usize;
    let mut seen_prefixes = std::collections::HashSet::new();
    for resource in api.registry.all() {
        if !resource.namespaced
            || resource.virtual_only
            || !seen_prefixes.insert(resource.key_prefix.clone())
        {
            continue;
        }
        let target = Target {
            resource: resource.clone(),
            namespace: name.to_owned(),
            name: String::new(),
            subresource: String::new(),
        };
        let (items, _) = api.objects.list_all(&target.key(), 0).await?;
        for item in items {
            remaining += 1;
            if !meta::meta_str(&item, "deletionTimestamp").is_empty() {
                continue;
            }
            let mut one = target.clone();
            one.name = meta::meta_str(&item, "name").to_owned();
            let options = DeleteOptions {
                propagation: Some("Background".to_owned()),
                ..DeleteOptions::default()
            };
            match delete_object(api, &one, &options, false).await {
                Ok((_, true)) => remaining -= 1,
                Ok((_, false)) => {}
                Err(e) if e.code == 404 => remaining -= 1,
                Err(e) => return Err(e),
            }
        }
    }
    let Some(resource) = api.registry.get("", "v1", "namespaces") else {
        return Ok(true);
    };
    let target = Target {
        resource,
        namespace: String::new(),
        name: name.to_owned(),
        subresource: String::new(),
    };
    let now = meta::now();
    let (_, gone) = api
        .objects
        .update(&target, None, None, |mut ns| {
            if meta::meta_str(&ns, "deletionTimestamp").is_empty() {
                return Ok(Change::Keep);
            }
            if remaining > 0 {
                let condition = json!({
                    "type": "NamespaceContentRemaining", "status": "True", "lastTransitionTime": now,
                    "reason": "SomeResourcesRemain", "message": format!("Some resources are remaining: {remaining} objects"),
                });
                if ns["status"]["conditions"].as_array().is_some_and(|c| c.contains(&condition)) {
                    return Ok(Change::Keep);
                }
                ns["status"]["conditions"] = json!([condition]);
                return Ok(Change::Put(ns));
            }
            let spec_finalizers: Vec<Value> = ns["spec"]["finalizers"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|f| f != "kubernetes")
                .collect();
            let meta_finalizers = meta::metadata(&ns).get("finalizers").and_then(Value::as_array).is_some_and(|f| !f.is_empty());
            if spec_finalizers.is_empty() && !meta_finalizers {
                return Ok(Change::Delete);
            }
            ns["spec"]["finalizers"] = Value::Array(spec_finalizers);
            Ok(Change::Put(ns))
        })
        .await?;
    Ok(gone || remaining == 0)
}

/// The owner finalizers the garbage collector serves.
const FOREGROUND: &str = "foregroundDeletion";
const ORPHAN: &str = "orphan";

/// Runs the owner finalizers (`foregroundDeletion`, `orphan`) until the
/// process ends: the garbage collector's part of a deletion with
/// `propagationPolicy: Foreground|Orphan`, so that such a delete ends. It
/// moves to the garbage collector of issue 14 with the rest of this file.
pub fn spawn_owner_finalizers(api: Arc<Api>) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = run_owner_finalizers(&api).await {
                tracing::warn!(error = %e.message, "owner finalizers restart");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

fn owner_finalizer(obj: &Value) -> bool {
    !meta::meta_str(obj, "deletionTimestamp").is_empty()
        && meta::metadata(obj)
            .get("finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| f.iter().any(|x| x == FOREGROUND || x == ORPHAN))
}

async fn run_owner_finalizers(api: &Arc<Api>) -> Result<(), ApiError> {
    let page = api
        .objects
        .store()
        .list("/registry/", &berth_kv::ListOptions::default())
        .await?;
    for kv in &page.items {
        let obj = decode(kv)?;
        if owner_finalizer(&obj) {
            schedule_owner(api.clone(), kv.key.clone());
        }
    }
    let mut events = api
        .objects
        .store()
        .watch("/registry/", page.revision)
        .await?;
    while let Some(event) = events.next().await {
        let event = event?;
        if event.kind != berth_kv::EventKind::Put {
            continue;
        }
        // Cheap test before decoding: only objects naming the finalizers.
        let text = &event.kv.value;
        if !contains(text, FOREGROUND.as_bytes()) && !contains(text, ORPHAN.as_bytes()) {
            continue;
        }
        if owner_finalizer(&decode(&event.kv)?) {
            schedule_owner(api.clone(), event.kv.key.clone());
        }
    }
    Ok(())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The served resource and names of a store key.
fn target_for_key(api: &Api, key: &str) -> Option<Target> {
    let rest = key.strip_prefix("/registry/")?;
    let resource = api
        .registry
        .all()
        .into_iter()
        .filter(|r| {
            r.storage_version && !r.virtual_only && rest.starts_with(&format!("{}/", r.key_prefix))
        })
        .max_by_key(|r| r.key_prefix.len())?;
    let names = rest.get(resource.key_prefix.len() + 1..)?;
    let (namespace, name) = if resource.namespaced {
        let (ns, name) = names.split_once('/')?;
        (ns.to_owned(), name.to_owned())
    } else {
        (String::new(), names.to_owned())
    };
    Some(Target {
        resource,
        namespace,
        name,
        subresource: String::new(),
    })
}

fn schedule_owner(api: Arc<Api>, key: String) {
    tokio::spawn(async move {
        let mut wait = Duration::from_millis(100);
        loop {
            match finish_owner(&api, &key).await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) if e.code == 404 => return,
                Err(e) => tracing::warn!(key, error = %e.message, "owner finalizer"),
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    });
}

/// One pass for an owner being deleted: orphans or deletes its dependents,
/// then drops the finalizer (and the owner, when no finalizer is left).
async fn finish_owner(api: &Api, key: &str) -> Result<bool, ApiError> {
    let Some(owner_target) = target_for_key(api, key) else {
        return Ok(true);
    };
    let Some((owner, _)) = api.objects.get_key(key).await? else {
        return Ok(true);
    };
    if !owner_finalizer(&owner) {
        return Ok(true);
    }
    let uid = meta::meta_str(&owner, "uid").to_owned();
    let finalizers: Vec<Value> = meta::metadata(&owner)
        .get("finalizers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let orphan = finalizers.iter().any(|f| f == ORPHAN);
    let page = api
        .objects
        .store()
        .list("/registry/", &berth_kv::ListOptions::default())
        .await?;
    let mut dependents_left = 0;
    for kv in &page.items {
        let obj = decode(kv)?;
        let owned = meta::metadata(&obj)
            .get("ownerReferences")
            .and_then(Value::as_array)
            .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid.as_str()));
        if !owned {
            continue;
        }
        let Some(dependent) = target_for_key(api, &kv.key) else {
            continue;
        };
        if orphan {
            api.objects
                .update(&dependent, None, None, |mut current| {
                    let meta = meta::metadata_mut(&mut current);
                    let mut refs: Vec<Value> = meta
                        .get("ownerReferences")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    refs.retain(|r| r["uid"] != uid.as_str());
                    // Go leaves an empty list out (omitempty).
                    if refs.is_empty() {
                        meta.remove("ownerReferences");
                    } else {
                        meta.insert("ownerReferences".to_owned(), Value::Array(refs));
                    }
                    Ok(Change::Put(current))
                })
                .await?;
        } else {
            dependents_left += 1;
            if meta::meta_str(&obj, "deletionTimestamp").is_empty() {
                let options = DeleteOptions {
                    propagation: Some("Foreground".to_owned()),
                    ..DeleteOptions::default()
                };
                match delete_object(api, &dependent, &options, false).await {
                    Ok((_, true)) => dependents_left -= 1,
                    Ok(_) => {}
                    Err(e) if e.code == 404 => dependents_left -= 1,
                    Err(e) => return Err(e),
                }
            }
        }
    }
    if dependents_left > 0 {
        return Ok(false);
    }
    let done = if orphan { ORPHAN } else { FOREGROUND };
    api.objects
        .update(&owner_target, None, None, |mut current| {
            let left: Vec<Value> = meta::metadata(&current)
                .get("finalizers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|f| f != done)
                .collect();
            if left.is_empty()
                && !meta::meta_str(&current, "deletionTimestamp").is_empty()
                && owner_target.resource.plural != "namespaces"
            {
                return Ok(Change::Delete);
            }
            meta::metadata_mut(&mut current).insert("finalizers".to_owned(), Value::Array(left));
            Ok(Change::Put(current))
        })
        .await?;
    Ok(true)
}
