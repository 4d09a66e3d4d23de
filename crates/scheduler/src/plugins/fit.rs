//! NodeResourcesFit (filter and the LeastAllocated score) and
//! NodeResourcesBalancedAllocation.

use std::borrow::Cow;

use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;
use crate::status::{Code, Status};

/// The highest score a plugin gives.
pub const MAX_SCORE: i64 = 100;

/// Rejects a node without room for the pod's requests, listing every
/// resource that is short.
pub fn filter(pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
    let mut reasons: Vec<Cow<'static, str>> = Vec::new();
    let mut code = Code::Unschedulable;
    if node.pods.len() as i64 + 1 > node.allowed_pods {
        reasons.push("Too many pods".into());
    }
    let req = &pod.requests;
    if !req.is_zero() {
        let alloc = &node.allocatable;
        let used = &node.requested;
        let mut check = |want: i64, have: i64, in_use: i64, reason: Cow<'static, str>| {
            if want > 0 && want > have - in_use {
                if want > have {
                    code = Code::UnschedulableAndUnresolvable;
                }
                reasons.push(reason);
            }
        };
        check(
            req.milli_cpu,
            alloc.milli_cpu,
            used.milli_cpu,
            "Insufficient cpu".into(),
        );
        check(
            req.memory,
            alloc.memory,
            used.memory,
            "Insufficient memory".into(),
        );
        check(
            req.ephemeral_storage,
            alloc.ephemeral_storage,
            used.ephemeral_storage,
            "Insufficient ephemeral-storage".into(),
        );
        for (name, want) in &req.scalar {
            check(
                *want,
                alloc.scalar(name),
                used.scalar(name),
                format!("Insufficient {name}").into(),
            );
        }
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(Status { code, reasons })
    }
}

/// LeastAllocated over cpu and memory (weight 1 each), with the scoring
/// defaults for containers that request nothing.
pub fn least_allocated(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let pairs = [
        (
            node.non_zero_requested.milli_cpu + pod.non_zero.milli_cpu,
            node.allocatable.milli_cpu,
        ),
        (
            node.non_zero_requested.memory + pod.non_zero.memory,
            node.allocatable.memory,
        ),
    ];
    let mut sum = 0;
    let mut weights = 0;
    for (requested, capacity) in pairs {
        if capacity == 0 {
            continue;
        }
        let score = if requested > capacity {
            0
        } else {
            (capacity - requested) * MAX_SCORE / capacity
        };
        sum += score;
        weights += 1;
    }
    if weights == 0 { 0 } else { sum / weights }
}

/// Whether BalancedAllocation skips the pod (it requests no cpu nor memory).
pub fn balanced_skips(pod: &PodInfo) -> bool {
    pod.requests.milli_cpu == 0 && pod.requests.memory == 0
}

/// BalancedAllocation: 100 × (1 − the spread of the cpu and memory
/// fractions the node would have in use).
pub fn balanced_allocation(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let pairs = [
        (
            node.requested.milli_cpu + pod.requests.milli_cpu,
            node.allocatable.milli_cpu,
        ),
        (
            node.requested.memory + pod.requests.memory,
            node.allocatable.memory,
        ),
    ];
    let mut fractions = Vec::with_capacity(2);
    for (requested, capacity) in pairs {
        if capacity == 0 {
            continue;
        }
        fractions.push((requested as f64 / capacity as f64).min(1.0));
    }
    let std = if fractions.len() == 2 {
        ((fractions[0] - fractions[1]) / 2.0).abs()
    } else {
        0.0
    };
    ((1.0 - std) * MAX_SCORE as f64) as i64
}
