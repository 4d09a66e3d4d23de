use super::*;
use k8s_openapi::api::core::v1::{ContainerStatus, PodCondition, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::SignedDuration;

fn now() -> Timestamp {
    Timestamp::from_second(1_700_000_000).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn ago(secs: i64) -> Timestamp {
    now() - SignedDuration::from_secs(secs)
}

#[derive(Default, Clone)]
struct P {
    name: &'static str,
    node: &'static str,
    phase: &'static str,
    ready_since: Option<i64>,
    created: i64,
    restarts: i32,
    cost: Option<&'static str>,
}

fn pod(p: &P) -> Pod {
    let mut pod = Pod::default();
    pod.metadata.name = Some(p.name.to_owned());
    pod.metadata.uid = Some(p.name.to_owned());
    pod.metadata.creation_timestamp = Some(Time(ago(p.created)));
    pod.metadata.labels = Some([("app".to_owned(), "web".to_owned())].into());
    if let Some(c) = p.cost {
        pod.metadata.annotations = Some([(POD_DELETION_COST.to_owned(), c.to_owned())].into());
    }
    pod.spec = Some(PodSpec {
        node_name: (!p.node.is_empty()).then(|| p.node.to_owned()),
        ..Default::default()
    });
    pod.status = Some(PodStatus {
        phase: Some(
            if p.phase.is_empty() {
                "Running"
            } else {
                p.phase
            }
            .to_owned(),
        ),
        conditions: p.ready_since.map(|s| {
            vec![PodCondition {
                type_: "Ready".to_owned(),
                status: "True".to_owned(),
                last_transition_time: Some(Time(ago(s))),
                ..Default::default()
            }]
        }),
        container_statuses: Some(vec![ContainerStatus {
            restart_count: p.restarts,
            ..Default::default()
        }]),
        ..Default::default()
    });
    pod
}

fn first_deleted(a: P, b: P) -> &'static str {
    let (pa, pb) = (pod(&a), pod(&b));
    let chosen = pods_to_delete(&[&pa, &pb], &[], 1, now());
    let name = chosen[0].metadata.name.clone().unwrap_or_default();
    if name == a.name { a.name } else { b.name }
}

#[test]
fn ranking_follows_kube_order() {
    let base = P {
        node: "n1",
        ready_since: Some(1000),
        created: 2000,
        ..Default::default()
    };
    let cases: Vec<(&str, P, P, &str)> = vec![
        (
            "unassigned first",
            P {
                name: "a",
                node: "",
                ..base.clone()
            },
            P {
                name: "b",
                ..base.clone()
            },
            "a",
        ),
        (
            "pending before running",
            P {
                name: "a",
                phase: "Running",
                ..base.clone()
            },
            P {
                name: "b",
                phase: "Pending",
                ready_since: None,
                ..base.clone()
            },
            "b",
        ),
        (
            "unknown before running",
            P {
                name: "a",
                phase: "Unknown",
                ..base.clone()
            },
            P {
                name: "b",
                ..base.clone()
            },
            "a",
        ),
        (
            "not ready before ready",
            P {
                name: "a",
                ..base.clone()
            },
            P {
                name: "b",
                ready_since: None,
                ..base.clone()
            },
            "b",
        ),
        (
            "lower cost first",
            P {
                name: "a",
                cost: Some("10"),
                ..base.clone()
            },
            P {
                name: "b",
                cost: Some("-5"),
                ..base.clone()
            },
            "b",
        ),
        (
            "invalid cost is 0",
            P {
                name: "a",
                cost: Some("x"),
                ..base.clone()
            },
            P {
                name: "b",
                cost: Some("1"),
                ..base.clone()
            },
            "a",
        ),
        (
            "ready for less time first",
            P {
                name: "a",
                ready_since: Some(4000),
                ..base.clone()
            },
            P {
                name: "b",
                ready_since: Some(10),
                ..base.clone()
            },
            "b",
        ),
        (
            "more restarts first",
            P {
                name: "a",
                restarts: 1,
                ..base.clone()
            },
            P {
                name: "b",
                restarts: 3,
                ..base.clone()
            },
            "b",
        ),
        (
            "newer first",
            P {
                name: "a",
                created: 100_000,
                ..base.clone()
            },
            P {
                name: "b",
                created: 5,
                ready_since: Some(1000),
                ..base.clone()
            },
            "b",
        ),
        (
            "same age bucket by uid",
            P {
                name: "b",
                created: 1000,
                ..base.clone()
            },
            P {
                name: "a",
                created: 1001,
                ..base.clone()
            },
            "a",
        ),
    ];
    for (what, a, b, want) in cases {
        assert_eq!(first_deleted(a, b), want, "{what}");
    }
}

#[test]
fn doubled_up_pods_go_first() {
    let a = pod(&P {
        name: "a",
        node: "n1",
        ready_since: Some(10),
        created: 10,
        ..Default::default()
    });
    let b = pod(&P {
        name: "b",
        node: "n2",
        ready_since: Some(10),
        created: 10,
        ..Default::default()
    });
    let c = pod(&P {
        name: "c",
        node: "n2",
        ready_since: Some(10),
        created: 10,
        ..Default::default()
    });
    let related = [&a, &b, &c];
    let chosen = pods_to_delete(&[&a, &b], &related, 1, now());
    assert_eq!(chosen[0].metadata.name.as_deref(), Some("b"));
}

#[test]
fn scale_and_batches() {
    assert_eq!(scale(3, 3), Scale::Keep);
    assert_eq!(scale(1, 3), Scale::Create(2));
    assert_eq!(scale(5, 3), Scale::Delete(2));
    assert_eq!(scale(0, 1000), Scale::Create(BURST_REPLICAS));
    assert_eq!(scale(2, -1), Scale::Delete(2));
    assert_eq!(slow_start_batches(0), Vec::<usize>::new());
    assert_eq!(slow_start_batches(1), vec![1]);
    assert_eq!(slow_start_batches(10), vec![1, 2, 4, 3]);
    assert_eq!(slow_start_batches(15), vec![1, 2, 4, 8]);
}

#[test]
fn status_counts_and_failure_condition() {
    let ready = pod(&P {
        name: "a",
        node: "n",
        ready_since: Some(3),
        created: 5,
        ..Default::default()
    });
    let old_ready = pod(&P {
        name: "b",
        node: "n",
        ready_since: Some(60),
        created: 70,
        ..Default::default()
    });
    let mut unlabeled = pod(&P {
        name: "c",
        node: "n",
        created: 5,
        ..Default::default()
    });
    unlabeled.metadata.labels = None;
    let labels: BTreeMap<String, String> = [("app".to_owned(), "web".to_owned())].into();
    let failure = Failure {
        reason: "FailedCreate",
        message: "exceeded quota".to_owned(),
    };
    let s = calculate_status(
        &ReplicaSetStatus::default(),
        &labels,
        10,
        &[&ready, &old_ready, &unlabeled],
        Some(&failure),
        now(),
    );
    assert_eq!(s.replicas, 3);
    assert_eq!(s.fully_labeled_replicas, Some(2));
    assert_eq!(s.ready_replicas, Some(2));
    assert_eq!(s.available_replicas, Some(1));
    let cond = &s.conditions.clone().unwrap_or_default()[0];
    assert_eq!(
        (cond.type_.as_str(), cond.reason.as_deref()),
        ("ReplicaFailure", Some("FailedCreate"))
    );
    // The condition stays as it was while failures go on, and goes with them.
    let again = calculate_status(&s, &labels, 10, &[], Some(&failure), now());
    assert_eq!(again.conditions, s.conditions);
    let cleared = calculate_status(&s, &labels, 10, &[], None, now());
    assert_eq!(cleared.conditions, None);
    assert!(status_changed(&s, &cleared, None));
    assert!(!status_changed(&cleared, &cleared, None));
    assert!(status_changed(&cleared, &cleared, Some(2)));
}
