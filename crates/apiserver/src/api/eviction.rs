//! `pods/eviction`: a delete that respects PodDisruptionBudgets, as
//! kube's EvictionREST: a pod that is terminal, pending or already being
//! deleted goes at once; otherwise its one matching budget must allow a
//! disruption, which the eviction takes (decrementing
//! `status.disruptionsAllowed` and recording the pod in
//! `status.disruptedPods`, a read-modify-write of the budget's current
//! version) before the pod gets the DisruptionTarget condition and is
//! deleted.

use axum::response::Response;
use serde_json::{Value, json};

use super::objects::{self, DeleteOptions};
use super::{Api, Ctx, body_json, respond};
use crate::error::ApiError;
use crate::meta;
use crate::request::Target;
use crate::selectors::LabelSelector;
use crate::storage::Change;

/// kube's refusal when a budget allows no disruption.
pub const VIOLATION: &str = "Cannot evict pod as it would violate the pod's disruption budget.";
/// More evictions in flight than a budget may record.
const MAX_DISRUPTED_PODS: usize = 2000;

/// Serves `POST pods/{name}/eviction`; `pod` is the pod's target.
pub async fn evict(api: &Api, pod: &Target, ctx: &Ctx, body: &[u8]) -> Result<Response, ApiError> {
    let eviction = body_json(body, &ctx.headers)?;
    let name = meta::meta_str(&eviction, "name");
    if !name.is_empty() && name != pod.name {
        return Err(ApiError::bad_request(format!(
            "name in URL does not match name in Eviction object: {} vs {name}",
            pod.name
        )));
    }
    let mut options = DeleteOptions::default();
    let mut dry_run = ctx.query.dry_run()?;
    if let Some(d) = eviction.get("deleteOptions") {
        options.grace = d.get("gracePeriodSeconds").and_then(Value::as_i64);
        options.propagation = d
            .get("propagationPolicy")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let precondition = |f: &str| {
            d.pointer(&format!("/preconditions/{f}"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        options.uid = precondition("uid");
        options.resource_version = precondition("resourceVersion");
        dry_run |= d
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v == "All"));
    }
    let (current, _) = api.objects.get(pod).await?;
    if !can_ignore_budget(&current) {
        let budgets = matching_budgets(api, pod, &current).await?;
        if budgets.len() > 1 {
            return Err(ApiError::internal(
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            ));
        }
        if let Some(budget) = budgets.first() {
            take_disruption(api, pod, budget, &current, dry_run).await?;
        }
    }
    if !dry_run {
        mark_disruption_target(api, pod).await?;
    }
    objects::delete_object(api, pod, &options, dry_run).await?;
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
    Ok(respond(201, &status, &ctx.warnings))
}

fn phase(pod: &Value) -> &str {
    pod.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Terminal and pending pods disrupt nothing, nor do pods already going.
fn can_ignore_budget(pod: &Value) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed" | "Pending")
        || !meta::meta_str(pod, "deletionTimestamp").is_empty()
}

fn ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// The budgets of the pod's namespace whose selector matches it (a
/// missing or empty selector matches nothing here, as in kube).
async fn matching_budgets(api: &Api, pod: &Target, obj: &Value) -> Result<Vec<Target>, ApiError> {
    let Some(resource) = crate::admission::resource(api, "policy", "poddisruptionbudgets") else {
        return Ok(Vec::new());
    };
    let prefix = format!(
        "{}/",
        crate::admission::key_prefix(api, "policy", "poddisruptionbudgets", &pod.namespace)
    );
    let (budgets, _) = api.objects.list_all(&prefix, 0).await?;
    let mut matching = Vec::new();
    for budget in budgets {
        let Some(selector) = budget.pointer("/spec/selector") else {
            continue;
        };
        let Ok(selector) = LabelSelector::from_object(selector) else {
            continue;
        };
        if selector.is_empty() || !selector.matches(obj) {
            continue;
        }
        matching.push(Target {
            resource: resource.clone(),
            namespace: pod.namespace.clone(),
            name: meta::meta_str(&budget, "name").to_owned(),
            subresource: String::new(),
        });
    }
    Ok(matching)
}

fn too_many_requests(cause: String) -> ApiError {
    let mut e = ApiError::too_many_requests(VIOLATION);
    e.details = Some(json!({"causes": [{"reason": "DisruptionBudget", "message": cause}]}));
    e
}

/// Checks the budget allows a disruption and takes it, on the budget's
/// current version (retried by the store when it changed meanwhile).
async fn take_disruption(
    api: &Api,
    pod: &Target,
    budget: &Target,
    obj: &Value,
    dry_run: bool,
) -> Result<(), ApiError> {
    let unhealthy = !ready(obj);
    api.objects
        .update(budget, None, None, |mut pdb| {
            let policy = pdb
                .pointer("/spec/unhealthyPodEvictionPolicy")
                .and_then(Value::as_str)
                .unwrap_or("IfHealthyBudget");
            let status = pdb.get("status").cloned().unwrap_or(json!({}));
            let int = |f: &str| status.get(f).and_then(Value::as_i64).unwrap_or(0);
            if unhealthy
                && (policy == "AlwaysAllow"
                    || (int("currentHealthy") >= int("desiredHealthy") && int("desiredHealthy") > 0))
            {
                // An unhealthy pod going takes nothing from the budget.
                return Ok(Change::Keep);
            }
            let name = meta::meta_str(&pdb, "name").to_owned();
            let generation = pdb.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
            if int("observedGeneration") < generation {
                return Err(too_many_requests(format!(
                    "The disruption budget {name} is still being processed by the server."
                )));
            }
            let allowed = int("disruptionsAllowed");
            if allowed < 0 {
                return Err(ApiError::forbidden_on("policy", "poddisruptionbudget", &name, "pdb disruptions allowed is negative"));
            }
            let disrupted = status.get("disruptedPods").and_then(Value::as_object).map_or(0, |m| m.len());
            if disrupted > MAX_DISRUPTED_PODS {
                return Err(ApiError::forbidden_on(
                    "policy",
                    "poddisruptionbudget",
                    &name,
                    "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
                ));
            }
            if allowed == 0 {
                return Err(too_many_requests(format!(
                    "The disruption budget {name} needs {} healthy pods and has {} currently",
                    int("desiredHealthy"),
                    int("currentHealthy")
                )));
            }
            if dry_run {
                return Ok(Change::Keep);
            }
            let now = meta::now();
            let st = &mut pdb["status"];
            st["disruptionsAllowed"] = json!(allowed - 1);
            if !st.get("disruptedPods").is_some_and(Value::is_object) {
                st["disruptedPods"] = json!({});
            }
            st["disruptedPods"][pod.name.as_str()] = json!(now);
            if allowed - 1 == 0 {
                set_insufficient(st, &now);
            }
            Ok(Change::Put(pdb))
        })
        .await?;
    Ok(())
}

/// The DisruptionAllowed condition turned False (InsufficientPods).
fn set_insufficient(status: &mut Value, now: &str) {
    let generation = status
        .get("observedGeneration")
        .cloned()
        .unwrap_or(Value::Null);
    if !status.get("conditions").is_some_and(Value::is_array) {
        status["conditions"] = json!([]);
    }
    let Some(conditions) = status["conditions"].as_array_mut() else {
        return;
    };
    let fresh = json!({"type": "DisruptionAllowed", "status": "False", "reason": "InsufficientPods",
        "message": "", "observedGeneration": generation, "lastTransitionTime": now});
    match conditions
        .iter_mut()
        .find(|c| c["type"] == "DisruptionAllowed")
    {
        Some(c) => {
            if c["status"] != "False" {
                c["lastTransitionTime"] = json!(now);
            }
            c["status"] = json!("False");
            c["reason"] = json!("InsufficientPods");
            c["message"] = json!("");
            c["observedGeneration"] = generation;
        }
        None => conditions.push(fresh),
    }
}

/// The pod's DisruptionTarget condition (EvictionByEvictionAPI), unless
/// it is terminal.
async fn mark_disruption_target(api: &Api, pod: &Target) -> Result<(), ApiError> {
    let result = api
        .objects
        .update(pod, None, None, |mut current| {
            if matches!(phase(&current), "Succeeded" | "Failed") {
                return Ok(Change::Keep);
            }
            let now = meta::now();
            if !current.pointer("/status/conditions").is_some_and(Value::is_array) {
                current["status"]["conditions"] = json!([]);
            }
            let Some(conditions) = current
                .pointer_mut("/status/conditions")
                .and_then(Value::as_array_mut)
            else {
                return Ok(Change::Keep);
            };
            let fresh = json!({"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
                "message": "Eviction API: evicting", "lastProbeTime": null, "lastTransitionTime": now});
            match conditions.iter_mut().find(|c| c["type"] == "DisruptionTarget") {
                Some(c) if c["status"] == "True" && c["reason"] == "EvictionByEvictionAPI" => {
                    return Ok(Change::Keep);
                }
                Some(c) => *c = fresh,
                None => conditions.push(fresh),
            }
            Ok(Change::Put(current))
        })
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.reason == "NotFound" => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Method, Request};
    use serde_json::{Value, json};
    use tower::ServiceExt;

    use crate::api::Api;

    struct Server {
        router: axum::Router,
    }

    impl Server {
        async fn new() -> Server {
            let api = Api::new(Arc::new(berth_kv::memory::MemoryStore::new()), None);
            let server = Server {
                router: crate::api::router(api),
            };
            let (status, _) = server
                .call(
                    Method::POST,
                    "/api/v1/namespaces",
                    json!({"metadata": {"name": "team"}}),
                )
                .await;
            assert_eq!(status, 201);
            server
        }

        async fn call(&self, method: Method, path: &str, body: Value) -> (u16, Value) {
            let content_type = if method == Method::PATCH {
                "application/merge-patch+json"
            } else {
                "application/json"
            };
            let request = Request::builder()
                .method(method)
                .uri(path)
                .header("content-type", content_type)
                .body(if body.is_null() {
                    Body::empty()
                } else {
                    Body::from(body.to_string())
                })
                .expect("request");
            let response = self
                .router
                .clone()
                .oneshot(request)
                .await
                .expect("response");
            let status = response.status().as_u16();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("body");
            (
                status,
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            )
        }

        /// A running pod, ready or not, labelled app=web.
        async fn pod(&self, name: &str, ready: bool) {
            let (status, body) = self
                .call(
                    Method::POST,
                    "/api/v1/namespaces/team/pods",
                    json!({"metadata": {"name": name, "labels": {"app": "web"}},
                           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
                )
                .await;
            assert_eq!(status, 201, "{body}");
            let (status, body) = self
                .call(
                    Method::PATCH,
                    &format!("/api/v1/namespaces/team/pods/{name}/status"),
                    json!({"status": {"phase": "Running", "conditions": [
                        {"type": "Ready", "status": if ready { "True" } else { "False" }}]}}),
                )
                .await;
            assert_eq!(status, 200, "{body}");
        }

        /// A budget over app=web with the status the controller would write.
        async fn budget(&self, name: &str, spec: Value, status: Value) {
            let (code, body) = self
                .call(
                    Method::POST,
                    "/apis/policy/v1/namespaces/team/poddisruptionbudgets",
                    json!({"metadata": {"name": name}, "spec": spec}),
                )
                .await;
            assert_eq!(code, 201, "{body}");
            let (code, body) = self
                .call(
                    Method::PATCH,
                    &format!("/apis/policy/v1/namespaces/team/poddisruptionbudgets/{name}/status"),
                    json!({"status": status}),
                )
                .await;
            assert_eq!(code, 200, "{body}");
        }

        async fn evict(&self, pod: &str) -> (u16, Value) {
            self.call(
                Method::POST,
                &format!("/api/v1/namespaces/team/pods/{pod}/eviction"),
                json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod, "namespace": "team"}}),
            )
            .await
        }

        async fn get(&self, path: &str) -> (u16, Value) {
            self.call(Method::GET, path, Value::Null).await
        }
    }

    fn selector() -> Value {
        json!({"matchLabels": {"app": "web"}})
    }

    fn status(allowed: i64, current: i64, desired: i64) -> Value {
        json!({"disruptionsAllowed": allowed, "currentHealthy": current, "desiredHealthy": desired,
               "expectedPods": current, "observedGeneration": 1})
    }

    #[tokio::test]
    async fn a_pod_without_a_budget_is_deleted() {
        let s = Server::new().await;
        s.pod("a", true).await;
        let (code, body) = s.evict("a").await;
        assert_eq!(code, 201, "{body}");
        assert_eq!(body["status"], "Success");
        assert_eq!(s.get("/api/v1/namespaces/team/pods/a").await.0, 404);
    }

    #[tokio::test]
    async fn refused_with_429_then_allowed_taking_a_disruption() {
        let s = Server::new().await;
        s.pod("a", true).await;
        s.pod("b", true).await;
        s.budget(
            "web",
            json!({"minAvailable": 2, "selector": selector()}),
            status(0, 2, 2),
        )
        .await;
        let (code, body) = s.evict("a").await;
        assert_eq!(code, 429, "{body}");
        assert_eq!(body["reason"], "TooManyRequests");
        assert_eq!(
            body["message"],
            "Cannot evict pod as it would violate the pod's disruption budget."
        );
        assert_eq!(
            body["details"]["causes"],
            json!([{"reason": "DisruptionBudget", "message": "The disruption budget web needs 2 healthy pods and has 2 currently"}])
        );
        assert_eq!(s.get("/api/v1/namespaces/team/pods/a").await.0, 200);

        // The controller allows one.
        let (code, _) = s
            .call(
                Method::PATCH,
                "/apis/policy/v1/namespaces/team/poddisruptionbudgets/web/status",
                json!({"status": status(1, 2, 1)}),
            )
            .await;
        assert_eq!(code, 200);
        let (code, body) = s.evict("a").await;
        assert_eq!(code, 201, "{body}");
        let (_, pdb) = s
            .get("/apis/policy/v1/namespaces/team/poddisruptionbudgets/web")
            .await;
        assert_eq!(pdb["status"]["disruptionsAllowed"], 0);
        assert!(pdb["status"]["disruptedPods"]["a"].is_string(), "{pdb}");
        let condition = &pdb["status"]["conditions"][0];
        assert_eq!(condition["type"], "DisruptionAllowed");
        assert_eq!(condition["status"], "False");
        assert_eq!(condition["reason"], "InsufficientPods");
        // The pod went (no node holds it), and the next one is refused.
        assert_eq!(s.get("/api/v1/namespaces/team/pods/a").await.0, 404);
        assert_eq!(s.evict("b").await.0, 429);
    }

    #[tokio::test]
    async fn a_budget_not_yet_observed_refuses() {
        let s = Server::new().await;
        s.pod("a", true).await;
        s.budget(
            "web",
            json!({"maxUnavailable": 1, "selector": selector()}),
            json!({"disruptionsAllowed": 1, "observedGeneration": 0}),
        )
        .await;
        let (code, body) = s.evict("a").await;
        assert_eq!(code, 429);
        assert_eq!(
            body["details"]["causes"][0]["message"],
            "The disruption budget web is still being processed by the server."
        );
    }

    #[tokio::test]
    async fn two_budgets_are_an_internal_error() {
        let s = Server::new().await;
        s.pod("a", true).await;
        s.budget(
            "one",
            json!({"minAvailable": 0, "selector": selector()}),
            status(1, 1, 0),
        )
        .await;
        s.budget(
            "two",
            json!({"minAvailable": 0, "selector": selector()}),
            status(1, 1, 0),
        )
        .await;
        let (code, body) = s.evict("a").await;
        assert_eq!(code, 500);
        assert_eq!(
            body["message"],
            "Internal error occurred: This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
        );
        // A budget with an empty selector matches nothing here.
        let s = Server::new().await;
        s.pod("a", true).await;
        s.budget(
            "all",
            json!({"minAvailable": 5, "selector": {}}),
            status(0, 0, 5),
        )
        .await;
        assert_eq!(s.evict("a").await.0, 201);
    }

    #[tokio::test]
    async fn unhealthy_pods_and_the_eviction_policy() {
        // IfHealthyBudget: an unready pod goes if the budget is met...
        let s = Server::new().await;
        s.pod("sick", false).await;
        s.budget(
            "web",
            json!({"minAvailable": 1, "selector": selector()}),
            status(0, 1, 1),
        )
        .await;
        assert_eq!(s.evict("sick").await.0, 201);
        let (_, pdb) = s
            .get("/apis/policy/v1/namespaces/team/poddisruptionbudgets/web")
            .await;
        assert_eq!(pdb["status"]["disruptionsAllowed"], 0);
        assert!(pdb["status"]["disruptedPods"].is_null());
        // ...and not if it is not.
        let s = Server::new().await;
        s.pod("sick", false).await;
        s.budget(
            "web",
            json!({"minAvailable": 2, "selector": selector()}),
            status(0, 1, 2),
        )
        .await;
        assert_eq!(s.evict("sick").await.0, 429);
        // AlwaysAllow: it goes anyway.
        let s = Server::new().await;
        s.pod("sick", false).await;
        s.budget(
            "web",
            json!({"minAvailable": 2, "selector": selector(), "unhealthyPodEvictionPolicy": "AlwaysAllow"}),
            status(0, 1, 2),
        )
        .await;
        assert_eq!(s.evict("sick").await.0, 201);
        // A pending pod ignores budgets.
        let s = Server::new().await;
        s.call(
            Method::POST,
            "/api/v1/namespaces/team/pods",
            json!({"metadata": {"name": "p", "labels": {"app": "web"}},
                   "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
        )
        .await;
        s.budget(
            "web",
            json!({"minAvailable": 2, "selector": selector()}),
            status(0, 0, 2),
        )
        .await;
        assert_eq!(s.evict("p").await.0, 201);
    }

    #[tokio::test]
    async fn a_name_mismatch_is_a_bad_request() {
        let s = Server::new().await;
        s.pod("a", true).await;
        let (code, _) = s
            .call(
                Method::POST,
                "/api/v1/namespaces/team/pods/a/eviction",
                json!({"metadata": {"name": "b"}}),
            )
            .await;
        assert_eq!(code, 400);
    }
}
