//! Node pressure and eviction, as the kubelet's eviction manager does it
//! with hard thresholds: every 10 s the signals ([`signals`]) are compared
//! with the thresholds ([`thresholds`]); a crossed one sets its node
//! condition (MemoryPressure, DiskPressure, PIDPressure — held for the
//! pressure transition period after it clears) and evicts one pod at a
//! time, ranked as the kubelet ranks them ([`rank`]): pods using more than
//! they requested first, then lower priority, then the larger use. An
//! evicted pod fails with reason `Evicted` and the kubelet's message; a
//! node under pressure refuses new pods the kubelet's way ([`admit`]).

pub(crate) mod manager;
pub mod signals;
pub mod thresholds;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;

use signals::{Observations, Reading};
use thresholds::{Condition, Signal, Threshold};

/// How the agent evicts.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Hard thresholds (`--eviction-hard`).
    pub hard: Vec<Threshold>,
    /// How long a pressure condition stays after its signal recovered
    /// (`--eviction-pressure-transition-period`, 5 min by default).
    pub transition: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            hard: thresholds::defaults(),
            transition: Duration::from_secs(300),
        }
    }
}

/// Which pressure conditions are true.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodePressure {
    /// MemoryPressure.
    pub memory: bool,
    /// DiskPressure.
    pub disk: bool,
    /// PIDPressure.
    pub pid: bool,
}

impl NodePressure {
    /// Whether `c` is true.
    pub fn has(&self, c: Condition) -> bool {
        match c {
            Condition::Memory => self.memory,
            Condition::Disk => self.disk,
            Condition::Pid => self.pid,
        }
    }

    fn set(&mut self, c: Condition) {
        match c {
            Condition::Memory => self.memory = true,
            Condition::Disk => self.disk = true,
            Condition::Pid => self.pid = true,
        }
    }

    /// The true conditions' types, in the kubelet's order.
    pub fn names(&self) -> Vec<&'static str> {
        [Condition::Memory, Condition::Disk, Condition::Pid]
            .into_iter()
            .filter(|c| self.has(*c))
            .map(Condition::type_name)
            .collect()
    }
}

/// A threshold the node is below, with the reading.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Crossed {
    /// The threshold.
    pub threshold: Threshold,
    /// What was read.
    pub reading: Reading,
}

impl Crossed {
    /// The kubelet's message head: `The node was low on resource: memory.
    /// Threshold quantity: 100Mi, available: 52Ki. `.
    pub fn message(&self) -> String {
        let s = self.threshold.signal;
        format!(
            "The node was low on resource: {}. Threshold quantity: {}, available: {}. ",
            s.resource(),
            self.threshold.show(self.reading.capacity),
            thresholds::show_amount(s, self.reading.available)
        )
    }
}

/// The thresholds `obs` crosses, memory first (the kubelet's order).
pub fn crossed(hard: &[Threshold], obs: &Observations) -> Vec<Crossed> {
    let mut out: Vec<Crossed> = hard
        .iter()
        .filter_map(|t| {
            let r = obs.get(&t.signal)?;
            (r.available < t.limit(r.capacity)).then_some(Crossed {
                threshold: *t,
                reading: *r,
            })
        })
        .collect();
    out.sort_by_key(|c| order(c.threshold.signal));
    out
}

fn order(s: Signal) -> u8 {
    match s {
        Signal::MemoryAvailable => 0,
        Signal::NodefsAvailable => 1,
        Signal::NodefsInodesFree => 2,
        Signal::ImagefsAvailable => 3,
        Signal::ImagefsInodesFree => 4,
        Signal::PidAvailable => 5,
    }
}

/// Remembers when each condition last saw its signal crossed, so a
/// condition stays for the transition period after recovery.
#[derive(Debug, Default)]
pub struct Tracker {
    last: HashMap<Condition, Instant>,
}

impl Tracker {
    /// The pressure after `crossed` was observed at `now`.
    pub fn update(
        &mut self,
        crossed: &[Crossed],
        now: Instant,
        transition: Duration,
    ) -> NodePressure {
        for c in crossed {
            self.last.insert(c.threshold.signal.condition(), now);
        }
        let mut p = NodePressure::default();
        for (c, at) in &self.last {
            if now.saturating_duration_since(*at) < transition
                || crossed.iter().any(|x| x.threshold.signal.condition() == *c)
            {
                p.set(*c);
            }
        }
        p
    }
}

/// One container's use of the resource under pressure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerUse {
    /// Its name.
    pub name: String,
    /// What it uses.
    pub usage: i64,
    /// What it requested (0: nothing).
    pub request: i64,
}

/// A pod's use of the resource under pressure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodUse {
    /// The pod's uid.
    pub uid: String,
    /// Its priority.
    pub priority: i32,
    /// What the whole pod uses (containers and its volumes).
    pub usage: i64,
    /// What its containers requested.
    pub request: i64,
    /// Per container.
    pub containers: Vec<ContainerUse>,
}

/// Orders pods for eviction: those using more than they requested, then
/// lower priority, then more use above the request.
pub fn rank(pods: &mut [PodUse]) {
    pods.sort_by(|a, b| {
        let exceeds = |p: &PodUse| p.usage <= p.request; // false (exceeds) sorts first
        exceeds(a)
            .cmp(&exceeds(b))
            .then(a.priority.cmp(&b.priority))
            .then((b.usage - b.request).cmp(&(a.usage - a.request)))
    });
}

/// The eviction message of `pod` for `crossed` (with the containers that
/// use more than they requested, as the kubelet names them).
pub fn eviction_message(crossed: &Crossed, pod: &PodUse) -> String {
    let s = crossed.threshold.signal;
    let mut m = crossed.message();
    for c in &pod.containers {
        if c.usage > c.request {
            m.push_str(&format!(
                "Container {} was using {}, request is {}, has larger consumption of {}. ",
                c.name,
                thresholds::show_amount(s, c.usage),
                thresholds::show_amount(s, c.request),
                s.resource()
            ));
        }
    }
    m
}

/// Priority from which a pod is critical (system-cluster-critical and up):
/// never evicted, always admitted.
pub const CRITICAL_PRIORITY: i32 = 2_000_000_000;

/// Whether the pod is critical.
pub fn is_critical(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.priority)
        .is_some_and(|p| p >= CRITICAL_PRIORITY)
}

/// The kubelet's admission under pressure: `Err(message)` when the pod is
/// refused (a BestEffort pod under memory pressure unless it tolerates
/// the memory-pressure taint; any pod under disk or PID pressure).
pub fn admit(pod: &Pod, pressure: &NodePressure, best_effort: bool) -> Result<(), String> {
    if (!pressure.memory && !pressure.disk && !pressure.pid) || is_critical(pod) {
        return Ok(());
    }
    if pressure.memory && !pressure.disk && !pressure.pid {
        let tolerates = pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.as_ref())
            .into_iter()
            .flatten()
            .any(|t| {
                let key_ok = t
                    .key
                    .as_deref()
                    .is_none_or(|k| k.is_empty() || k == "node.kubernetes.io/memory-pressure");
                let effect_ok = t
                    .effect
                    .as_deref()
                    .is_none_or(|e| e.is_empty() || e == "NoSchedule");
                let op_ok = t.operator.as_deref() == Some("Exists")
                    || t.key.as_deref() == Some("node.kubernetes.io/memory-pressure");
                key_ok && effect_ok && op_ok
            });
        if !best_effort || tolerates {
            return Ok(());
        }
    }
    Err(format!(
        "The node had condition: [{}]. ",
        pressure.names().join(" ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(signal: Signal, available: i64, capacity: i64) -> Observations {
        HashMap::from([(
            signal,
            Reading {
                available,
                capacity,
            },
        )])
    }

    #[test]
    fn thresholds_are_crossed_below_their_limit() {
        let hard = thresholds::parse("memory.available<100Mi,nodefs.available<10%").unwrap();
        assert!(crossed(&hard, &obs(Signal::MemoryAvailable, 200 << 20, 1 << 30)).is_empty());
        let c = crossed(&hard, &obs(Signal::MemoryAvailable, 52 << 10, 1 << 30));
        assert_eq!(c.len(), 1);
        assert_eq!(
            c[0].message(),
            "The node was low on resource: memory. Threshold quantity: 100Mi, available: 52Ki. "
        );
        let c = crossed(&hard, &obs(Signal::NodefsAvailable, 5, 100));
        assert_eq!(c[0].threshold.signal.condition(), Condition::Disk);
        assert!(crossed(&hard, &obs(Signal::NodefsAvailable, 10, 100)).is_empty());
    }

    #[test]
    fn pressure_holds_for_the_transition_period() {
        let hard = thresholds::parse("memory.available<100Mi").unwrap();
        let low = crossed(&hard, &obs(Signal::MemoryAvailable, 1, 1 << 30));
        let mut t = Tracker::default();
        let t0 = Instant::now();
        let period = Duration::from_secs(300);
        assert!(t.update(&low, t0, period).memory);
        assert!(t.update(&[], t0 + Duration::from_secs(299), period).memory);
        assert_eq!(
            t.update(&[], t0 + Duration::from_secs(300), period),
            NodePressure::default()
        );
        // a zero period drops it at once
        let mut t = Tracker::default();
        assert!(t.update(&low, t0, Duration::ZERO).memory);
        assert!(!t.update(&[], t0, Duration::ZERO).memory);
    }

    fn pod_use(uid: &str, priority: i32, usage: i64, request: i64) -> PodUse {
        PodUse {
            uid: uid.into(),
            priority,
            usage,
            request,
            containers: vec![ContainerUse {
                name: "c".into(),
                usage,
                request,
            }],
        }
    }

    #[test]
    fn ranks_as_the_kubelet() {
        let mut pods = vec![
            pod_use("guaranteed-under", 0, 50, 100),
            pod_use("besteffort-small", 0, 10, 0),
            pod_use("burstable-over", 0, 300, 100),
            pod_use("besteffort-high-priority", 1000, 500, 0),
        ];
        rank(&mut pods);
        let order: Vec<&str> = pods.iter().map(|p| p.uid.as_str()).collect();
        assert_eq!(
            order,
            [
                "burstable-over",
                "besteffort-small",
                "besteffort-high-priority",
                "guaranteed-under"
            ]
        );
    }

    #[test]
    fn messages_name_the_hungry_containers() {
        let hard = thresholds::parse("memory.available<100Mi").unwrap();
        let c = crossed(&hard, &obs(Signal::MemoryAvailable, 1 << 20, 1 << 30))[0];
        let m = eviction_message(&c, &pod_use("p", 0, 5392 << 10, 0));
        assert_eq!(
            m,
            "The node was low on resource: memory. Threshold quantity: 100Mi, available: 1Mi. \
             Container c was using 5392Ki, request is 0, has larger consumption of memory. "
        );
    }

    #[test]
    fn admission_under_pressure() {
        let be: Pod =
            serde_json::from_value(serde_json::json!({"spec": {"containers": []}})).unwrap();
        let tolerant: Pod = serde_json::from_value(serde_json::json!({"spec": {"containers": [],
            "tolerations": [{"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"}]}})).unwrap();
        let critical: Pod = serde_json::from_value(
            serde_json::json!({"spec": {"containers": [], "priority": 2000001000}}),
        )
        .unwrap();
        let none = NodePressure::default();
        let mem = NodePressure {
            memory: true,
            ..Default::default()
        };
        let disk = NodePressure {
            disk: true,
            ..Default::default()
        };
        assert!(admit(&be, &none, true).is_ok());
        assert_eq!(
            admit(&be, &mem, true),
            Err("The node had condition: [MemoryPressure]. ".into())
        );
        assert!(admit(&be, &mem, false).is_ok());
        assert!(admit(&tolerant, &mem, true).is_ok());
        assert_eq!(
            admit(&be, &disk, false),
            Err("The node had condition: [DiskPressure]. ".into())
        );
        assert!(admit(&critical, &disk, true).is_ok());
    }
}
