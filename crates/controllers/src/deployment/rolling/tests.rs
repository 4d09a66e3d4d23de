use super::*;
use k8s_openapi::api::apps::v1::{
    DeploymentSpec, DeploymentStatus, DeploymentStrategy, ReplicaSetSpec, ReplicaSetStatus,
    RollingUpdateDeployment,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

fn ios(s: &str) -> IntOrString {
    match s.parse::<i32>() {
        Ok(n) => IntOrString::Int(n),
        Err(_) => IntOrString::String(s.to_owned()),
    }
}

pub(crate) fn deployment(replicas: i32, surge: &str, unavailable: &str) -> Deployment {
    Deployment {
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_owned()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(ios(surge)),
                    max_unavailable: Some(ios(unavailable)),
                }),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(crate) fn rs(name: &str, age: i64, replicas: i32, available: i32) -> ReplicaSet {
    let mut r = ReplicaSet::default();
    r.metadata.name = Some(name.to_owned());
    r.metadata.creation_timestamp = Some(Time(
        Timestamp::from_second(1_700_000_000 - age).unwrap_or(Timestamp::UNIX_EPOCH),
    ));
    r.spec = Some(ReplicaSetSpec {
        replicas: Some(replicas),
        ..Default::default()
    });
    r.status = Some(ReplicaSetStatus {
        replicas,
        available_replicas: Some(available),
        ready_replicas: Some(available),
        ..Default::default()
    });
    r
}

#[test]
fn fenceposts_round_like_kube() {
    // (replicas, maxSurge, maxUnavailable) -> (surge, unavailable)
    let cases = [
        (10, "25%", "25%", (3, 2)),
        (4, "25%", "25%", (1, 1)),
        (1, "25%", "25%", (1, 0)),
        (3, "0", "0", (0, 1)),
        (3, "1", "0", (1, 0)),
        (5, "50%", "50%", (3, 2)),
        (10, "0%", "10%", (0, 1)),
        (0, "25%", "25%", (0, 1)),
    ];
    for (replicas, surge, unavailable, want) in cases {
        let d = deployment(replicas, surge, unavailable);
        assert_eq!(fenceposts(&d), want, "{replicas} {surge} {unavailable}");
    }
    assert_eq!(max_unavailable(&deployment(2, "0", "5")), 2);
    assert_eq!(max_unavailable(&deployment(0, "0", "5")), 0);
    let mut recreate = deployment(3, "1", "1");
    if let Some(s) = recreate.spec.as_mut() {
        s.strategy = Some(DeploymentStrategy {
            type_: Some("Recreate".to_owned()),
            rolling_update: None,
        });
    }
    assert_eq!((max_surge(&recreate), max_unavailable(&recreate)), (0, 0));
    assert!(scaled_value(&IntOrString::String("x%".to_owned()), 3, true).is_err());
}

/// A rollout of 3 replicas (maxSurge 1, maxUnavailable 0), step by step,
/// as kube takes it: the new set grows by one, an old pod goes only when a
/// new one is available.
#[test]
fn rolling_update_steps_surge_1_unavailable_0() {
    let d = deployment(3, "1", "0");
    let old = rs("old", 100, 3, 3);
    let new = rs("new", 1, 0, 0);
    assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 1);
    let new = rs("new", 1, 1, 0);
    // 4 pods (the max); nothing more, and nothing may go: the new pod is not available.
    assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 1);
    assert_eq!(max_scaled_down(&d, &[&old, &new], Some(&new)), 0);
    // The new pod is available: one old pod may go.
    let new = rs("new", 1, 1, 1);
    assert_eq!(max_scaled_down(&d, &[&old, &new], Some(&new)), 1);
    assert_eq!(cleanup_unhealthy(&[&old], 1), vec![]);
    assert_eq!(scale_down_old(&d, &[&old, &new], &[&old]), vec![(0, 2)]);
    let old = rs("old", 100, 2, 2);
    assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 2);
}

#[test]
fn rolling_update_steps_surge_0_unavailable_1() {
    let d = deployment(3, "0", "1");
    let old = rs("old", 100, 3, 3);
    let new = rs("new", 1, 0, 0);
    // No surge: the new set cannot grow first.
    assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 0);
    assert_eq!(max_scaled_down(&d, &[&old, &new], Some(&new)), 1);
    assert_eq!(scale_down_old(&d, &[&old, &new], &[&old]), vec![(0, 2)]);
    let old = rs("old", 100, 2, 2);
    assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 1);
}

#[test]
fn unhealthy_old_pods_go_first_oldest_set_first() {
    let older = rs("a", 200, 2, 0);
    let old = rs("b", 100, 3, 1);
    assert_eq!(cleanup_unhealthy(&[&old, &older], 3), vec![(1, 0), (0, 2)]);
    assert_eq!(cleanup_unhealthy(&[&old, &older], 1), vec![(1, 1)]);
}

#[test]
fn never_below_min_available() {
    let d = deployment(10, "25%", "25%"); // surge 3, unavailable 2: min available 8
    let old = rs("old", 100, 10, 8);
    let new = rs("new", 1, 3, 0);
    assert_eq!(scale_down_old(&d, &[&old, &new], &[&old]), vec![]);
    let old = rs("old", 100, 10, 10);
    assert_eq!(scale_down_old(&d, &[&old, &new], &[&old]), vec![(0, 8)]);
}

#[test]
fn proportional_scaling_like_kube() {
    // 10 replicas, surge 3: old 8 + new 5 = 13 (max). Scaled to 20 (max 23):
    // 10 to add, split by each set's share of the old max (13).
    let mut d = deployment(20, "3", "2");
    d.status = Some(DeploymentStatus {
        replicas: Some(13),
        ..Default::default()
    });
    let mut old = rs("old", 100, 8, 8);
    let mut new = rs("new", 1, 5, 5);
    for r in [&mut old, &mut new] {
        r.metadata.annotations = Some(
            [(
                super::super::revision::MAX_REPLICAS.to_owned(),
                "13".to_owned(),
            )]
            .into(),
        );
    }
    let (plan, op) = proportional(&d, &[&old, &new]);
    assert_eq!(op, "up");
    // old: round(8*23/13)=14 (+6), new: round(5*23/13)=9 (+4); leftover 0 to the largest.
    assert_eq!(plan, vec![(0, 14), (1, 9)]);
    // Scale down to 5 (max 8): 5 to remove.
    let mut small = deployment(5, "3", "2");
    small.status = d.status.clone();
    let (plan, op) = proportional(&small, &[&old, &new]);
    assert_eq!(op, "down");
    assert_eq!(plan.iter().map(|(_, s)| s).sum::<i32>(), 8);
    // To zero: everything goes.
    let zero = deployment(0, "3", "2");
    let (plan, _) = proportional(&zero, &[&old, &new]);
    assert_eq!(plan, vec![(0, 0), (1, 0)]);
}
