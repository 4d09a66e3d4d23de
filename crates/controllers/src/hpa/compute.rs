//! The HorizontalPodAutoscaler's arithmetic, as kube's replica calculator
//! and its behavior rules do it (Resource metrics: CPU and memory, as a
//! utilization of the requests or an average value):
//!
//! - usage ratio = observed / target; within the tolerance (10 %) nothing
//!   changes;
//! - pods without metrics count as using nothing when scaling up and their
//!   full request when scaling down; pods not Ready are left out of a CPU
//!   scale-up;
//! - the recommendation is stabilized (scale-down takes the highest of the
//!   last 300 s by default, scale-up the lowest of its window, 0 s by
//!   default), then limited by the policies of the direction (by default
//!   up: +100 % or +4 pods per 15 s, the larger; down: −100 % per 15 s),
//!   then clamped to min/max.

use std::time::Duration;

/// Kube's tolerance around the target.
pub const TOLERANCE: f64 = 0.1;

/// What one pod contributes for one resource.
#[derive(Clone, Debug, PartialEq)]
pub struct PodSample {
    /// Usage (millicores for CPU, bytes for memory); `None`: no metrics.
    pub usage: Option<i64>,
    /// Its containers' requests summed (`None` when one lacks a request).
    pub request: Option<i64>,
    /// Ready (an unready pod is left out of a CPU scale-up).
    pub ready: bool,
}

/// The target of one metric.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    /// Percent of the requests.
    Utilization(i32),
    /// An average per pod (millicores or bytes).
    AverageValue(i64),
}

/// What the metric says.
#[derive(Clone, Debug, PartialEq)]
pub struct Proposal {
    /// Replicas it asks for.
    pub replicas: i32,
    /// Current utilization, percent (for Utilization targets).
    pub utilization: Option<i32>,
    /// Current average per pod.
    pub average: i64,
}

/// The replicas a Resource metric asks for, or kube's error text.
pub fn replicas_for(
    current: i32,
    pods: &[PodSample],
    target: Target,
    resource: &str,
) -> Result<Proposal, String> {
    let with_metrics: Vec<&PodSample> = pods.iter().filter(|p| p.usage.is_some()).collect();
    if with_metrics.is_empty() {
        return Err("did not receive metrics for targeted pods (pods might be unready)".into());
    }
    let ready: Vec<&PodSample> = with_metrics
        .iter()
        .copied()
        .filter(|p| p.ready || resource != "cpu")
        .collect();
    let missing = pods.iter().filter(|p| p.usage.is_none()).count();
    let unready = with_metrics.len() - ready.len();
    let usage: i64 = ready.iter().filter_map(|p| p.usage).sum();
    let (ratio, utilization, average) = match target {
        Target::Utilization(t) => {
            let mut requests = 0i64;
            for p in &ready {
                match p.request {
                    Some(r) if r > 0 => requests += r,
                    _ => return Err(format!("missing request for {resource}")),
                }
            }
            if requests == 0 {
                return Err(format!("missing request for {resource}"));
            }
            let util = usage as f64 * 100.0 / requests as f64;
            (
                util / f64::from(t.max(1)),
                Some(util as i32),
                usage / ready.len().max(1) as i64,
            )
        }
        Target::AverageValue(v) => {
            let avg = usage as f64 / ready.len().max(1) as f64;
            (avg / v.max(1) as f64, None, avg as i64)
        }
    };
    let count = ready.len() as f64;
    if (ratio - 1.0).abs() <= TOLERANCE && missing == 0 && unready == 0 {
        return Ok(Proposal {
            replicas: current,
            utilization,
            average,
        });
    }
    if missing == 0 && unready == 0 {
        return Ok(Proposal {
            replicas: (ratio * count).ceil() as i32,
            utilization,
            average,
        });
    }
    // re-run with the missing (and, scaling up, the unready) pods
    // assumed: 0 % when scaling up, 100 % of the target when down
    let scaling_up = ratio > 1.0;
    let extra = missing + if scaling_up { unready } else { 0 };
    let new_ratio = if scaling_up {
        ratio * count / (count + extra as f64)
    } else {
        (ratio * count + missing as f64) / (count + missing as f64)
    };
    if (new_ratio - 1.0).abs() <= TOLERANCE || (new_ratio > 1.0) != scaling_up {
        return Ok(Proposal {
            replicas: current,
            utilization,
            average,
        });
    }
    let total = count + extra as f64;
    let replicas = (new_ratio * total).ceil() as i32;
    // never the opposite way of the unadjusted recommendation
    let replicas = if scaling_up {
        replicas.max(current)
    } else {
        replicas.min(current)
    };
    Ok(Proposal {
        replicas,
        utilization,
        average,
    })
}

/// A scaling policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Up to this many pods per period.
    Pods(i32, Duration),
    /// Up to this percent of the replicas per period.
    Percent(i32, Duration),
}

/// The rules of one direction.
#[derive(Clone, Debug, PartialEq)]
pub struct Rules {
    /// The stabilization window.
    pub window: Duration,
    /// The policies.
    pub policies: Vec<Policy>,
    /// `Max`, `Min` or `Disabled`.
    pub select: String,
}

impl Rules {
    /// kube's default scale-up rules.
    pub fn default_up() -> Rules {
        Rules {
            window: Duration::ZERO,
            policies: vec![
                Policy::Percent(100, Duration::from_secs(15)),
                Policy::Pods(4, Duration::from_secs(15)),
            ],
            select: "Max".into(),
        }
    }

    /// kube's default scale-down rules.
    pub fn default_down() -> Rules {
        Rules {
            window: Duration::from_secs(300),
            policies: vec![Policy::Percent(100, Duration::from_secs(15))],
            select: "Max".into(),
        }
    }
}

/// Why the count was limited, as the ScalingLimited condition says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limited {
    /// True when a limit applied.
    pub limited: bool,
    /// The condition's reason.
    pub reason: &'static str,
    /// Its message.
    pub message: &'static str,
}

/// The replicas to set: `proposal` stabilized over `recommendations`
/// (age, replicas), limited by the policies given the scale changes of
/// the recent past (`events`: age, replicas added (+) or removed (−)),
/// clamped to `bounds` (min..=max).
pub fn decide(
    current: i32,
    proposal: i32,
    recommendations: &[(Duration, i32)],
    events: &[(Duration, i32)],
    up: &Rules,
    down: &Rules,
    bounds: std::ops::RangeInclusive<i32>,
) -> (i32, Limited) {
    let (min, max) = (*bounds.start(), *bounds.end());
    // stabilization: up takes the lowest in its window, down the highest
    let mut up_rec = proposal;
    let mut down_rec = proposal;
    for (age, r) in recommendations {
        if *age <= up.window {
            up_rec = up_rec.min(*r);
        }
        if *age <= down.window {
            down_rec = down_rec.max(*r);
        }
    }
    let mut desired = current;
    if up_rec > current {
        desired = up_rec;
    }
    if down_rec < current {
        desired = down_rec;
    }
    // policies
    let period_change = |period: Duration, sign: i32| -> i32 {
        events
            .iter()
            .filter(|(age, n)| *age <= period && n.signum() == sign)
            .map(|(_, n)| n.abs())
            .sum()
    };
    if desired > current && up.select != "Disabled" {
        let limits: Vec<i32> = up
            .policies
            .iter()
            .map(|p| match p {
                Policy::Pods(n, per) => current - period_change(*per, 1) + n,
                Policy::Percent(pct, per) => {
                    let start = current - period_change(*per, 1);
                    (f64::from(start) * (1.0 + f64::from(*pct) / 100.0)).ceil() as i32
                }
            })
            .collect();
        let limit = if up.select == "Min" {
            limits.iter().copied().min()
        } else {
            limits.iter().copied().max()
        }
        .unwrap_or(desired);
        desired = desired.min(limit.max(current));
    } else if desired > current {
        desired = current;
    }
    if desired < current && down.select != "Disabled" {
        let limits: Vec<i32> = down
            .policies
            .iter()
            .map(|p| match p {
                Policy::Pods(n, per) => current + period_change(*per, -1) - n,
                Policy::Percent(pct, per) => {
                    let start = current + period_change(*per, -1);
                    (f64::from(start) * (1.0 - f64::from(*pct) / 100.0)).ceil() as i32
                }
            })
            .collect();
        let limit = if down.select == "Min" {
            limits.iter().copied().max()
        } else {
            limits.iter().copied().min()
        }
        .unwrap_or(desired);
        desired = desired.max(limit.min(current));
    } else if desired < current {
        desired = current;
    }
    if desired > max {
        return (
            max,
            Limited {
                limited: true,
                reason: "TooManyReplicas",
                message: "the desired replica count is more than the maximum replica count",
            },
        );
    }
    if desired < min {
        return (
            min,
            Limited {
                limited: true,
                reason: "TooFewReplicas",
                message: "the desired replica count is less than the minimum replica count",
            },
        );
    }
    (
        desired,
        Limited {
            limited: false,
            reason: "DesiredWithinRange",
            message: "the desired count is within the acceptable range",
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(usage: i64, request: i64) -> PodSample {
        PodSample {
            usage: Some(usage),
            request: Some(request),
            ready: true,
        }
    }

    #[test]
    fn the_ratio_sets_the_replicas() {
        // 2 pods at 100 % of their request, target 50 % → 4
        let p = replicas_for(
            2,
            &[pod(100, 100), pod(100, 100)],
            Target::Utilization(50),
            "cpu",
        )
        .unwrap();
        assert_eq!((p.replicas, p.utilization), (4, Some(100)));
        // within the tolerance: unchanged
        let p = replicas_for(
            2,
            &[pod(54, 100), pod(54, 100)],
            Target::Utilization(50),
            "cpu",
        )
        .unwrap();
        assert_eq!(p.replicas, 2);
        // average value
        let p = replicas_for(1, &[pod(300, 0)], Target::AverageValue(100), "cpu").unwrap();
        assert_eq!(p.replicas, 3);
    }

    #[test]
    fn missing_metrics_and_requests() {
        let none = PodSample {
            usage: None,
            request: Some(100),
            ready: true,
        };
        assert!(
            replicas_for(
                1,
                std::slice::from_ref(&none),
                Target::Utilization(50),
                "cpu"
            )
            .unwrap_err()
            .contains("did not receive metrics")
        );
        let e = replicas_for(
            1,
            &[PodSample {
                usage: Some(10),
                request: None,
                ready: true,
            }],
            Target::Utilization(50),
            "cpu",
        )
        .unwrap_err();
        assert_eq!(e, "missing request for cpu");
        // scaling up with a pod without metrics: it counts as 0 %
        let p = replicas_for(2, &[pod(200, 100), none], Target::Utilization(100), "cpu").unwrap();
        assert_eq!(p.replicas, 2, "200 % over 2 pods averages 100 %: no change");
    }

    #[test]
    fn behavior_limits_and_bounds() {
        let (up, down) = (Rules::default_up(), Rules::default_down());
        // up: from 1, at most max(2 × 1, 1 + 4) = 5 in one period
        assert_eq!(decide(1, 10, &[], &[], &up, &down, 1..=20).0, 5);
        // then clamped to max
        let (n, l) = decide(1, 10, &[], &[], &up, &down, 1..=3);
        assert_eq!((n, l.reason), (3, "TooManyReplicas"));
        // down: the highest recommendation of the last 5 minutes holds
        let recent = [(Duration::from_secs(60), 4)];
        assert_eq!(decide(4, 1, &recent, &[], &up, &down, 1..=10).0, 4);
        let old = [(Duration::from_secs(400), 4)];
        assert_eq!(decide(4, 1, &old, &[], &up, &down, 1..=10).0, 1);
        // min bound
        let (n, l) = decide(2, 0, &[], &[], &up, &down, 1..=10);
        assert_eq!((n, l.reason), (1, "TooFewReplicas"));
        // a scale-up already made in the period counts
        let events = [(Duration::from_secs(5), 4)];
        // (start of the period 1: +100 % → 2; +4 pods → 5: no more now)
        assert_eq!(decide(5, 30, &[], &events, &up, &down, 1..=100).0, 5);
    }
}
