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
