//! The HorizontalPodAutoscaler controller (autoscaling/v2, kube's
//! `horizontal-pod-autoscaler` account): every 15 s per HPA it reads the
//! target's scale, the pods its selector picks and their usage from
//! `metrics.k8s.io`, asks [`compute`] for the replicas, sets the scale and
//! writes the status (current metrics, replicas, the AbleToScale,
//! ScalingActive and ScalingLimited conditions) and events as kube does.
//! Resource metrics (CPU, memory) are supported; other metric types are
//! reported as not supported yet in ScalingActive.

pub mod compute;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::autoscaling::v2::{
    HPAScalingRules, HorizontalPodAutoscaler, HorizontalPodAutoscalerCondition,
    ResourceMetricSource,
};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::discovery::ApiResource;
use serde_json::{Value, json};

use crate::Clients;
use crate::util::events::Recorder;
use crate::util::informer::Informer;
use crate::util::queue::WorkQueue;
use crate::util::queue_metrics::QueueMetrics;
use crate::util::workers::{Next, spawn_workers};
use compute::{PodSample, Policy, Rules, Target};

/// The ServiceAccount it acts as.
pub const ACCOUNT: &str = "horizontal-pod-autoscaler";
/// kube's `--horizontal-pod-autoscaler-sync-period`.
pub const SYNC_PERIOD: Duration = Duration::from_secs(15);

/// What the controller remembers per HPA: recommendations and scale
/// changes with when they were made.
#[derive(Default)]
struct Memory {
    recommendations: Vec<(Instant, i32)>,
    events: Vec<(Instant, i32)>,
}

/// Starts the controller; it runs until the process ends.
/// `queues`: where its work queue (`horizontalpodautoscaler`) reports.
pub fn spawn(clients: &Clients, queues: &QueueMetrics) {
    tokio::spawn(run(clients(ACCOUNT), queues.clone()));
}

async fn run(client: kube::Client, queues: QueueMetrics) {
    let queue: WorkQueue<String> = WorkQueue::named("horizontalpodautoscaler", &queues);
    let q = queue.clone();
    let hpas = Informer::<HorizontalPodAutoscaler>::spawn(
        Api::all(client.clone()),
        Arc::new(move |old, new| {
            // a new or changed spec is looked at at once; status writes
            // (ours) do not change the generation
            let changed = match (old, new) {
                (Some(o), Some(n)) => o.metadata.generation != n.metadata.generation,
                _ => true,
            };
            if let Some(h) = new.filter(|_| changed) {
                q.add(format!(
                    "{}/{}",
                    h.namespace().unwrap_or_default(),
                    h.name_any()
                ));
            }
        }),
    );
    let store = hpas.store();
    hpas.ready().await;
    let memory: Arc<Mutex<HashMap<String, Memory>>> = Arc::default();
    let recorder = Recorder::new(client.clone(), ACCOUNT);
    spawn_workers("horizontal-pod-autoscaler", queue, 2, move |k: String| {
        let (store, client, memory, recorder) = (
            store.clone(),
            client.clone(),
            memory.clone(),
            recorder.clone(),
        );
        async move {
            let Some((ns, name)) = k.split_once('/') else {
                return Ok::<_, kube::Error>(Next::Done);
            };
            let Some(hpa) = store
                .state()
                .into_iter()
                .find(|h| h.namespace().as_deref() == Some(ns) && h.name_any() == name)
            else {
                memory.lock().unwrap_or_else(|e| e.into_inner()).remove(&k);
                return Ok(Next::Done);
            };
            sync(&client, &hpa, &memory, &k, &recorder).await?;
            Ok(Next::After(SYNC_PERIOD))
        }
    });
    let _keep = hpas;
    std::future::pending::<()>().await;
}

fn condition(
    type_: &str,
    ok: bool,
    reason: &str,
    message: &str,
    old: &[HorizontalPodAutoscalerCondition],
) -> Value {
    let status = if ok { "True" } else { "False" };
    let since = old
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .map(|t| json!(t))
        .unwrap_or_else(|| json!(crate::util::now()));
    json!({"type": type_, "status": status, "reason": reason, "message": message, "lastTransitionTime": since})
}

fn rules(r: Option<&HPAScalingRules>, default: Rules) -> Rules {
    let Some(r) = r else { return default };
    let policies: Vec<Policy> = match &r.policies {
        Some(p) => p
            .iter()
            .map(|p| {
                let per = Duration::from_secs(p.period_seconds.max(0) as u64);
                if p.type_ == "Pods" {
                    Policy::Pods(p.value, per)
                } else {
                    Policy::Percent(p.value, per)
                }
            })
            .collect(),
        None => default.policies.clone(),
    };
    Rules {
        window: r
            .stabilization_window_seconds
            .map_or(default.window, |s| Duration::from_secs(s.max(0) as u64)),
        policies,
        select: r.select_policy.clone().unwrap_or(default.select),
    }
}

/// The plural of a scalable kind.
fn plural(kind: &str) -> String {
    match kind {
        "Deployment" => "deployments".into(),
        "StatefulSet" => "statefulsets".into(),
        "ReplicaSet" => "replicasets".into(),
        "ReplicationController" => "replicationcontrollers".into(),
        other => format!("{}s", other.to_ascii_lowercase()),
    }
}

fn millis(q: &str, resource: &str) -> Option<i64> {
    let q = berth_types::quantity::Quantity::parse(q).ok()?;
    Some(if resource == "cpu" {
        q.milli_value()
    } else {
        q.value()
    })
}

/// One sync: read, decide, scale, report.
async fn sync(
    client: &kube::Client,
    hpa: &HorizontalPodAutoscaler,
    memory: &Arc<Mutex<HashMap<String, Memory>>>,
    key: &str,
    recorder: &Recorder,
) -> Result<(), kube::Error> {
    let ns = hpa.namespace().unwrap_or_default();
    let spec = hpa.spec.clone().unwrap_or_default();
    let old_conds = hpa
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let target_ref = &spec.scale_target_ref;
    let (group, version) = match target_ref
        .api_version
        .as_deref()
        .unwrap_or("v1")
        .split_once('/')
    {
        Some((g, v)) => (g.to_owned(), v.to_owned()),
        None => (
            String::new(),
            target_ref
                .api_version
                .clone()
                .unwrap_or_else(|| "v1".into()),
        ),
    };
    let ar = ApiResource {
        group: group.clone(),
        version: version.clone(),
        api_version: target_ref
            .api_version
            .clone()
            .unwrap_or_else(|| "v1".into()),
        kind: target_ref.kind.clone(),
        plural: plural(&target_ref.kind),
    };
    let scalable: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), &ns);
    let write_status = |status: Value| {
        let hpas = hpas.clone();
        let name = hpa.name_any();
        async move {
            hpas.patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"status": status})),
            )
            .await
            .map(drop)
        }
    };
    let scale = match scalable.get_scale(&target_ref.name).await {
        Ok(s) => s,
        Err(e) => {
            let msg =
                format!("the HPA controller was unable to get the target's current scale: {e}");
            recorder
                .record(
                    "autoscaling/v2",
                    "HorizontalPodAutoscaler",
                    &hpa.metadata,
                    "Warning",
                    "FailedGetScale",
                    &msg,
                )
                .await;
            return write_status(json!({"conditions": [
                condition("AbleToScale", false, "FailedGetScale", &msg, &old_conds)]}))
            .await;
        }
    };
    let current = scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    let selector = scale
        .status
        .as_ref()
        .and_then(|s| s.selector.clone())
        .unwrap_or_default();
    let min = spec.min_replicas.unwrap_or(1);
    let max = spec.max_replicas;
    let able = condition(
        "AbleToScale",
        true,
        "SucceededGetScale",
        "the HPA controller was able to get the target's current scale",
        &old_conds,
    );
    if current == 0 && min > 0 {
        // scaled to zero by hand: autoscaling is off until it is scaled up
        return write_status(json!({"currentReplicas": 0, "desiredReplicas": 0, "conditions": [able,
            condition("ScalingActive", false, "ScalingDisabled", "scaling is disabled since the replica count of the target is zero", &old_conds)]}))
        .await;
    }
    // the pods and their metrics
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let lp = ListParams::default().labels(&selector);
    let pods: Vec<Pod> = pods_api
        .list(&lp)
        .await?
        .items
        .into_iter()
        .filter(|p| {
            p.metadata.deletion_timestamp.is_none()
                && !matches!(
                    p.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Failed" | "Succeeded")
                )
        })
        .collect();
    let metrics_ar = ApiResource {
        group: "metrics.k8s.io".into(),
        version: "v1beta1".into(),
        api_version: "metrics.k8s.io/v1beta1".into(),
        kind: "PodMetrics".into(),
        plural: "pods".into(),
    };
    let metrics: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &metrics_ar);
    let usage: HashMap<String, Value> = match metrics.list(&lp).await {
        Ok(l) => l
            .items
            .into_iter()
            .map(|m| {
                (
                    m.name_any(),
                    m.data.get("containers").cloned().unwrap_or(Value::Null),
                )
            })
            .collect(),
        Err(_) => HashMap::new(),
    };
    let mut proposal_max: Option<i32> = None;
    let mut current_metrics = Vec::new();
    let mut failure: Option<(String, String)> = None;
    let mut reason_text = String::new();
    for m in spec.metrics.iter().flatten() {
        // a Resource metric over whole pods, or a ContainerResource one
        // over one container of each
        let per_container;
        let (res, container): (&ResourceMetricSource, Option<&str>) = match (
            m.type_.as_str(),
            &m.resource,
            &m.container_resource,
        ) {
            ("Resource", Some(r), _) => (r, None),
            ("ContainerResource", _, Some(c)) => {
                // the same shape as a Resource source, for one container
                per_container = ResourceMetricSource {
                    name: c.name.clone(),
                    target: c.target.clone(),
                };
                (&per_container, Some(c.container.as_str()))
            }
            (other, _, _) => {
                let reason = match other {
                    "Pods" => "FailedGetPodsMetric",
                    "Object" => "FailedGetObjectMetric",
                    "ContainerResource" => "FailedGetContainerResourceMetric",
                    _ => "FailedGetExternalMetric",
                };
                failure = Some((
                    reason.into(),
                    format!(
                        "not supported yet: {other} metrics (berth serves no custom or external metrics API)"
                    ),
                ));
                continue;
            }
        };
        let target = match (
            res.target.type_.as_str(),
            res.target.average_utilization,
            res.target.average_value.as_ref(),
        ) {
            ("Utilization", Some(u), _) => Target::Utilization(u),
            ("AverageValue", _, Some(v)) => {
                Target::AverageValue(millis(&v.0, &res.name).unwrap_or(0))
            }
            _ => {
                failure = Some((
                    "InvalidMetricSourceType".into(),
                    format!("invalid target for the {} resource metric", res.name),
                ));
                continue;
            }
        };
        let samples: Vec<PodSample> = pods
            .iter()
            .map(|p| {
                let name = p.name_any();
                let used = usage.get(&name).and_then(Value::as_array).map(|cs| {
                    cs.iter()
                        .filter(|c| container.is_none_or(|want| c["name"] == want))
                        .filter_map(|c| {
                            millis(
                                c.pointer(&format!("/usage/{}", res.name))?.as_str()?,
                                &res.name,
                            )
                        })
                        .sum::<i64>()
                });
                let request = p.spec.as_ref().map(|s| {
                    s.containers
                        .iter()
                        .filter(|c| container.is_none_or(|want| c.name == want))
                        .map(|c| {
                            c.resources
                                .as_ref()
                                .and_then(|r| r.requests.as_ref())
                                .and_then(|r| r.get(&res.name))
                                .and_then(|q| millis(&q.0, &res.name))
                        })
                        .sum::<Option<i64>>()
                });
                PodSample {
                    usage: used,
                    request: request.flatten(),
                    ready: crate::util::pods::is_ready(p),
                }
            })
            .collect();
        match compute::replicas_for(current, &samples, target, &res.name) {
            Ok(p) => {
                let avg = if res.name == "cpu" {
                    format!("{}m", p.average)
                } else {
                    berth_types::quantity::Quantity::from_bytes(p.average).to_string()
                };
                let mut cur = json!({"averageValue": avg});
                if let Some(u) = p.utilization {
                    cur["averageUtilization"] = json!(u);
                }
                current_metrics.push(match container {
                    None => {
                        json!({"type": "Resource", "resource": {"name": res.name, "current": cur}})
                    }
                    Some(c) => json!({"type": "ContainerResource", "containerResource":
                        {"name": res.name, "container": c, "current": cur}}),
                });
                if proposal_max.is_none_or(|m| p.replicas > m) {
                    proposal_max = Some(p.replicas);
                    reason_text = match p.utilization {
                        Some(_) if p.replicas > current => format!(
                            "{} resource utilization (percentage of request) above target",
                            res.name
                        ),
                        Some(_) => "All metrics below target".to_owned(),
                        None if p.replicas > current => {
                            format!("{} resource above target", res.name)
                        }
                        None => "All metrics below target".into(),
                    };
                }
            }
            Err(e) => {
                failure = Some((
                    "FailedGetResourceMetric".into(),
                    format!(
                        "the HPA was unable to compute the replica count: failed to get {} utilization: {e}",
                        res.name
                    ),
                ));
            }
        }
    }
    let Some(proposal) = proposal_max else {
        let (reason, message) =
            failure.unwrap_or_else(|| ("FailedGetResourceMetric".into(), "no metrics".into()));
        recorder
            .record(
                "autoscaling/v2",
                "HorizontalPodAutoscaler",
                &hpa.metadata,
                "Warning",
                &reason,
                &message,
            )
            .await;
        return write_status(
            json!({"currentReplicas": current, "desiredReplicas": current, "conditions": [able,
            condition("ScalingActive", false, &reason, &message, &old_conds)]}),
        )
        .await;
    };
    let now = Instant::now();
    let (desired, limited) = {
        let mut mem = memory.lock().unwrap_or_else(|e| e.into_inner());
        let m = mem.entry(key.to_owned()).or_default();
        m.recommendations
            .retain(|(t, _)| now.duration_since(*t) < Duration::from_secs(3600));
        m.events
            .retain(|(t, _)| now.duration_since(*t) < Duration::from_secs(1800));
        let recs: Vec<(Duration, i32)> = m
            .recommendations
            .iter()
            .map(|(t, r)| (now.duration_since(*t), *r))
            .collect();
        let evs: Vec<(Duration, i32)> = m
            .events
            .iter()
            .map(|(t, n)| (now.duration_since(*t), *n))
            .collect();
        let behavior = spec.behavior.as_ref();
        let up = rules(
            behavior.and_then(|b| b.scale_up.as_ref()),
            Rules::default_up(),
        );
        let down = rules(
            behavior.and_then(|b| b.scale_down.as_ref()),
            Rules::default_down(),
        );
        let out = compute::decide(current, proposal, &recs, &evs, &up, &down, min..=max);
        m.recommendations.push((now, proposal));
        if out.0 != current {
            m.events.push((now, out.0 - current));
        }
        out
    };
    let mut status = json!({
        "currentReplicas": current,
        "desiredReplicas": desired,
        "currentMetrics": current_metrics,
        "conditions": [
            condition("AbleToScale", true, if desired != current { "SucceededRescale" } else { "ReadyForNewScale" },
                if desired != current { "the HPA controller was able to update the target scale" } else { "recommended size matches current size" }, &old_conds),
            condition("ScalingActive", true, "ValidMetricFound", "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)", &old_conds),
            condition("ScalingLimited", limited.limited, limited.reason, limited.message, &old_conds),
        ],
    });
    if desired != current {
        scalable
            .patch_scale(
                &target_ref.name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"spec": {"replicas": desired}})),
            )
            .await?;
        status["lastScaleTime"] = json!(crate::util::now());
        let message = format!("New size: {desired}; reason: {reason_text}");
        recorder
            .record(
                "autoscaling/v2",
                "HorizontalPodAutoscaler",
                &hpa.metadata,
                "Normal",
                "SuccessfulRescale",
                &message,
            )
            .await;
    } else if let Some(t) = hpa.status.as_ref().and_then(|s| s.last_scale_time.clone()) {
        status["lastScaleTime"] = json!(t);
    }
    write_status(status).await
}
