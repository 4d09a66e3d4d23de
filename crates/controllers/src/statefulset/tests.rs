//! Table-style tests of the StatefulSet controller's pure decisions.
#![allow(clippy::type_complexity)]

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use serde_json::{Value, json};

use super::core::{self, Plan};
use crate::util::revisions as revision;

fn now() -> Timestamp {
    "2024-01-01T01:00:00Z".parse().expect("ts")
}

fn set(spec: Value) -> StatefulSet {
    let mut s = json!({
        "replicas": 3, "serviceName": "nginx", "podManagementPolicy": "OrderedReady",
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}},
        "volumeClaimTemplates": [{"metadata": {"name": "www"},
                                  "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
    });
    if let (Some(base), Some(over)) = (s.as_object_mut(), spec.as_object()) {
        for (k, v) in over {
            base.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "default", "uid": "s1", "generation": 2},
        "spec": s
    }))
    .expect("set")
}

/// The revision of the set's current template.
fn rev_of(s: &StatefulSet, number: i64) -> ControllerRevision {
    let spec = s.spec.clone().unwrap_or_default();
    revision::new_revision(
        crate::util::owner::controller_ref_for(s),
        "default",
        None,
        revision::template_patch(&spec.template),
        number,
        None,
    )
}

fn pod(name: &str, state: &str, rev: &str) -> Pod {
    let mut p = json!({
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"),
                     "labels": {"app": "web", "controller-revision-hash": rev},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "s1", "controller": true}]},
        "status": {"phase": "Pending"}
    });
    match state {
        "ready" => {
            p["status"] = json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}]});
        }
        "running" => p["status"] = json!({"phase": "Running"}),
        "failed" => p["status"] = json!({"phase": "Failed"}),
        "deleting" => {
            p["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:59:00Z");
            p["status"] = json!({"phase": "Running"});
        }
        _ => {}
    }
    serde_json::from_value(p).expect("pod")
}

fn claims_for(names: &[&str]) -> BTreeMap<String, PersistentVolumeClaim> {
    names
        .iter()
        .map(|n| {
            let c: PersistentVolumeClaim =
                serde_json::from_value(json!({"metadata": {"name": n, "namespace": "default"}}))
                    .expect("pvc");
            ((*n).to_owned(), c)
        })
        .collect()
}

fn created(p: &Plan) -> Vec<String> {
    p.create_pods
        .iter()
        .map(|p| p.metadata.name.clone().unwrap_or_default())
        .collect()
}

#[test]
fn ordinals_parse_only_from_the_sets_own_names() {
    let cases = [
        ("web-0", Some(0)),
        ("web-12", Some(12)),
        ("web-01", None),
        ("web-", None),
        ("webx-1", None),
        ("web-a", None),
        ("db-1", None),
    ];
    for (name, want) in cases {
        assert_eq!(core::ordinal("web", name), want, "{name}");
    }
}

#[test]
fn ordered_ready_creates_one_at_a_time_and_parallel_all() {
    let s = set(json!({}));
    let r = rev_of(&s, 1);
    let h = r.metadata.name.clone().unwrap_or_default();
    let cases: [(Value, Vec<Pod>, Vec<&str>, Vec<&str>); 6] = [
        (json!({}), vec![], vec!["web-0"], vec![]),
        (
            json!({}),
            vec![pod("web-0", "pending", &h)],
            vec![],
            vec!["www-web-0"],
        ),
        (
            json!({}),
            vec![pod("web-0", "running", &h)],
            vec![],
            vec!["www-web-0"],
        ),
        (
            json!({}),
            vec![pod("web-0", "ready", &h)],
            vec!["web-1"],
            vec!["www-web-0"],
        ),
        (
            json!({"podManagementPolicy": "Parallel"}),
            vec![],
            vec!["web-0", "web-1", "web-2"],
            vec![],
        ),
        // A gap is filled before going on.
        (
            json!({}),
            vec![pod("web-0", "ready", &h), pod("web-2", "ready", &h)],
            vec!["web-1"],
            vec!["www-web-0", "www-web-2"],
        ),
    ];
    for (spec, pods, want, existing_claims) in cases {
        let s = set(spec.clone());
        let p = core::plan(
            &s,
            &pods,
            std::slice::from_ref(&r),
            &claims_for(&existing_claims),
            now(),
        );
        assert_eq!(created(&p), want, "{spec} {existing_claims:?}");
        let claims: Vec<String> = p
            .create_claims
            .iter()
            .map(|c| c.metadata.name.clone().unwrap_or_default())
            .collect();
        let want_claims: Vec<String> = want.iter().map(|n| format!("www-{n}")).collect();
        assert_eq!(claims, want_claims);
    }
}

#[test]
fn pods_carry_identity_and_claims() {
    let s = set(json!({}));
    let p = core::plan(&s, &[], &[], &BTreeMap::new(), now());
    let rev = p.create_revision.clone().expect("first revision");
    assert_eq!(rev.revision, 1);
    let h = rev.metadata.name.clone().unwrap_or_default();
    assert!(h.starts_with("web-"));
    let pod = &p.create_pods[0];
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels["statefulset.kubernetes.io/pod-name"], "web-0");
    assert_eq!(labels["apps.kubernetes.io/pod-index"], "0");
    assert_eq!(labels["controller-revision-hash"], h);
    let spec = pod.spec.clone().unwrap_or_default();
    assert_eq!(spec.hostname.as_deref(), Some("web-0"));
    assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
    let vol = &spec.volumes.unwrap_or_default()[0];
    assert_eq!(
        vol.persistent_volume_claim
            .as_ref()
            .map(|c| c.claim_name.as_str()),
        Some("www-web-0")
    );
    let claim = &p.create_claims[0];
    assert_eq!(
        claim.metadata.labels.clone().unwrap_or_default()["app"],
        "web"
    );
    assert!(claim.metadata.owner_references.is_none());
    assert_eq!(p.status.replicas, 1);
    assert_eq!(p.status.update_revision.as_deref(), Some(h.as_str()));
    assert_eq!(p.status.observed_generation, Some(2));
}

#[test]
fn scale_down_in_reverse_order() {
    let s3 = set(json!({}));
    let r = rev_of(&s3, 1);
    let h = r.metadata.name.clone().unwrap_or_default();
    let three = |states: [&str; 3]| -> Vec<Pod> {
        states
            .iter()
            .enumerate()
            .map(|(i, st)| pod(&format!("web-{i}"), st, &h))
            .collect()
    };
    let cases: [(Value, Vec<Pod>, Vec<&str>); 5] = [
        (
            json!({"replicas": 1}),
            three(["ready", "ready", "ready"]),
            vec!["web-2"],
        ),
        (
            json!({"replicas": 1, "podManagementPolicy": "Parallel"}),
            three(["ready", "ready", "ready"]),
            vec!["web-2", "web-1"],
        ),
        // Waits while a pod is being deleted.
        (
            json!({"replicas": 1}),
            three(["ready", "ready", "deleting"]),
            vec![],
        ),
        // Waits while another pod is unhealthy…
        (
            json!({"replicas": 1}),
            three(["running", "ready", "ready"]),
            vec![],
        ),
        // …unless it is the condemned pod itself.
        (
            json!({"replicas": 1}),
            three(["ready", "ready", "running"]),
            vec!["web-2"],
        ),
    ];
    for (spec, pods, want) in cases {
        let s = set(spec.clone());
        let p = core::plan(
            &s,
            &pods,
            std::slice::from_ref(&r),
            &claims_for(&["www-web-0", "www-web-1", "www-web-2"]),
            now(),
        );
        assert_eq!(p.delete_pods, want, "{spec}");
    }
}

#[test]
fn rolling_update_from_the_top_down_to_the_partition() {
    let old_set = set(json!({}));
    let old = rev_of(&old_set, 1);
    let oh = old.metadata.name.clone().unwrap_or_default();
    let pods: Vec<Pod> = (0..3)
        .map(|i| pod(&format!("web-{i}"), "ready", &oh))
        .collect();
    let claims = claims_for(&["www-web-0", "www-web-1", "www-web-2"]);
    let new_tpl = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:2"}]}});
    let cases: [(Value, Vec<&str>); 4] = [
        (json!({"template": new_tpl.clone()}), vec!["web-2"]),
        (
            json!({"template": new_tpl.clone(), "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}),
            vec!["web-2"],
        ),
        (
            json!({"template": new_tpl.clone(), "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 3}}}),
            vec![],
        ),
        (
            json!({"template": new_tpl.clone(), "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}}}),
            vec!["web-2", "web-1"],
        ),
    ];
    for (spec, want) in cases {
        let mut s = set(spec.clone());
        s.status = Some(
            serde_json::from_value(json!({"replicas": 3, "currentRevision": oh})).expect("status"),
        );
        let p = core::plan(&s, &pods, std::slice::from_ref(&old), &claims, now());
        let new = p.create_revision.clone().expect("new revision");
        assert_eq!(new.revision, 2);
        assert_eq!(p.delete_pods, want, "{spec}");
        assert_eq!(p.status.current_revision.as_deref(), Some(oh.as_str()));
        assert_eq!(p.status.update_revision, new.metadata.name);
    }
    // OnDelete: nothing is deleted.
    let mut s = set(json!({"template": new_tpl.clone(), "updateStrategy": {"type": "OnDelete"}}));
    s.status = Some(serde_json::from_value(json!({"currentRevision": oh})).expect("status"));
    let p = core::plan(&s, &pods, std::slice::from_ref(&old), &claims, now());
    assert!(p.delete_pods.is_empty());
    // A recreated pod below the partition keeps the current revision.
    let mut s = set(
        json!({"template": new_tpl, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}),
    );
    s.status = Some(serde_json::from_value(json!({"currentRevision": oh})).expect("status"));
    let p = core::plan(&s, &pods[1..], std::slice::from_ref(&old), &claims, now());
    let labels = p.create_pods[0].metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels["controller-revision-hash"], oh);
    let image = p.create_pods[0].spec.clone().unwrap_or_default().containers[0]
        .image
        .clone();
    assert_eq!(image.as_deref(), Some("nginx:1"));
}

#[test]
fn rollout_completes_when_all_pods_are_updated_and_ready() {
    let s = set(json!({}));
    let r = rev_of(&s, 1);
    let h = r.metadata.name.clone().unwrap_or_default();
    let mut s = s;
    s.status = Some(serde_json::from_value(json!({"currentRevision": "web-old"})).expect("status"));
    let pods: Vec<Pod> = (0..3)
        .map(|i| pod(&format!("web-{i}"), "ready", &h))
        .collect();
    let p = core::plan(
        &s,
        &pods,
        std::slice::from_ref(&r),
        &claims_for(&["www-web-0", "www-web-1", "www-web-2"]),
        now(),
    );
    assert_eq!(p.status.current_revision.as_deref(), Some(h.as_str()));
    assert_eq!(
        (
            p.status.replicas,
            p.status.ready_replicas,
            p.status.updated_replicas,
            p.status.current_replicas
        ),
        (3, Some(3), Some(3), Some(3))
    );
    assert_eq!(p.status.available_replicas, Some(3));
}

#[test]
fn claim_retention_policy_sets_owner_references() {
    let cases = [
        ("Retain", "Retain", None, None),
        ("Delete", "Retain", Some("StatefulSet"), Some("StatefulSet")),
        ("Retain", "Delete", None, Some("Pod")),
        ("Delete", "Delete", Some("StatefulSet"), Some("Pod")),
    ];
    for (deleted, scaled, kept_owner, condemned_owner) in cases {
        let s = set(
            json!({"replicas": 1, "persistentVolumeClaimRetentionPolicy": {"whenDeleted": deleted, "whenScaled": scaled}}),
        );
        let r = rev_of(&s, 1);
        let h = r.metadata.name.clone().unwrap_or_default();
        let pods = [pod("web-0", "ready", &h), pod("web-1", "ready", &h)];
        let p = core::plan(
            &s,
            &pods,
            std::slice::from_ref(&r),
            &claims_for(&["www-web-0", "www-web-1"]),
            now(),
        );
        let owner_of = |claim: &str| -> Option<String> {
            p.update_claims
                .iter()
                .find(|c| c.metadata.name.as_deref() == Some(claim))
                .and_then(|c| c.metadata.owner_references.clone())
                .map(|r| r[0].kind.clone())
        };
        assert_eq!(
            owner_of("www-web-0").as_deref(),
            kept_owner,
            "{deleted}/{scaled}"
        );
        assert_eq!(
            owner_of("www-web-1").as_deref(),
            condemned_owner,
            "{deleted}/{scaled}"
        );
    }
}

#[test]
fn failed_pods_are_replaced_and_old_revisions_pruned() {
    let s = set(json!({"revisionHistoryLimit": 1}));
    let r = rev_of(&s, 5);
    let h = r.metadata.name.clone().unwrap_or_default();
    let p = core::plan(
        &s,
        &[pod("web-0", "failed", &h)],
        std::slice::from_ref(&r),
        &claims_for(&["www-web-0"]),
        now(),
    );
    assert_eq!(p.delete_pods, vec!["web-0"]);
    assert_eq!(
        p.events,
        vec![(
            true,
            "RecreatingFailedPod",
            "StatefulSet default/web is recreating failed Pod web-0".to_owned()
        )]
    );
    let mut olds: Vec<ControllerRevision> = (1..=3)
        .map(|i| {
            let mut o = rev_of(&set(json!({"template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": format!("nginx:old{i}")}]}}})), i);
            o.revision = i;
            o
        })
        .collect();
    olds.push(r.clone());
    let p = core::plan(&s, &[], &olds, &BTreeMap::new(), now());
    assert_eq!(
        p.delete_revisions,
        vec![
            olds[0].metadata.name.clone().unwrap_or_default(),
            olds[1].metadata.name.clone().unwrap_or_default()
        ]
    );
    assert!(p.create_revision.is_none());
}
