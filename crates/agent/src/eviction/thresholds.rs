//! Hard eviction thresholds in the kubelet's `--eviction-hard` syntax
//! (`memory.available<100Mi,nodefs.available<10%`), and the signals they
//! watch.

use berth_types::quantity::Quantity;

/// What a threshold watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Signal {
    /// Memory the node has left (`MemAvailable`).
    MemoryAvailable,
    /// Bytes free on the filesystem of berth's root.
    NodefsAvailable,
    /// Inodes free there.
    NodefsInodesFree,
    /// Bytes free where images live (the same filesystem as nodefs).
    ImagefsAvailable,
    /// Inodes free there.
    ImagefsInodesFree,
    /// Process ids left.
    PidAvailable,
}

/// The node condition a signal's pressure sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Condition {
    /// `MemoryPressure`.
    Memory,
    /// `DiskPressure`.
    Disk,
    /// `PIDPressure`.
    Pid,
}

impl Condition {
    /// The condition's type.
    pub fn type_name(self) -> &'static str {
        match self {
            Condition::Memory => "MemoryPressure",
            Condition::Disk => "DiskPressure",
            Condition::Pid => "PIDPressure",
        }
    }
}

const SIGNALS: [(&str, Signal); 6] = [
    ("memory.available", Signal::MemoryAvailable),
    ("nodefs.available", Signal::NodefsAvailable),
    ("nodefs.inodesFree", Signal::NodefsInodesFree),
    ("imagefs.available", Signal::ImagefsAvailable),
    ("imagefs.inodesFree", Signal::ImagefsInodesFree),
    ("pid.available", Signal::PidAvailable),
];

impl Signal {
    /// The kubelet's name.
    pub fn name(self) -> &'static str {
        SIGNALS
            .iter()
            .find(|(_, s)| *s == self)
            .map_or("", |(n, _)| n)
    }

    /// The condition it drives.
    pub fn condition(self) -> Condition {
        match self {
            Signal::MemoryAvailable => Condition::Memory,
            Signal::PidAvailable => Condition::Pid,
            _ => Condition::Disk,
        }
    }

    /// The resource eviction reclaims for it (as the kubelet's messages
    /// name it).
    pub fn resource(self) -> &'static str {
        match self {
            Signal::MemoryAvailable => "memory",
            Signal::NodefsAvailable | Signal::ImagefsAvailable => "ephemeral-storage",
            Signal::NodefsInodesFree | Signal::ImagefsInodesFree => "inodes",
            Signal::PidAvailable => "pids",
        }
    }

    /// Whether amounts of it are bytes (else counts).
    pub fn is_bytes(self) -> bool {
        matches!(
            self,
            Signal::MemoryAvailable | Signal::NodefsAvailable | Signal::ImagefsAvailable
        )
    }
}

/// How much of a signal must be left.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Amount {
    /// An absolute quantity (bytes or a count).
    Quantity(i64),
    /// A share of the capacity (0–100).
    Percent(f64),
}

/// One hard threshold: evict when the signal drops below the amount.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Threshold {
    /// The signal.
    pub signal: Signal,
    /// The amount.
    pub amount: Amount,
}

impl Threshold {
    /// The threshold as a quantity of a resource with `capacity`.
    pub fn limit(&self, capacity: i64) -> i64 {
        match self.amount {
            Amount::Quantity(q) => q,
            Amount::Percent(p) => (capacity as f64 * p / 100.0) as i64,
        }
    }

    /// The threshold as the kubelet prints it in eviction messages.
    pub fn show(&self, capacity: i64) -> String {
        show_amount(self.signal, self.limit(capacity))
    }
}

/// An amount of `signal` as the kubelet prints it (binary SI for bytes).
pub fn show_amount(signal: Signal, n: i64) -> String {
    if signal.is_bytes() {
        Quantity::from_bytes(n).to_string()
    } else {
        Quantity::from_int(n).to_string()
    }
}

/// The kubelet's defaults on Linux.
pub fn defaults() -> Vec<Threshold> {
    parse("memory.available<100Mi,nodefs.available<10%,nodefs.inodesFree<5%,imagefs.available<15%")
        .unwrap_or_default()
}

/// Parses `--eviction-hard` (comma-separated; empty: none).
pub fn parse(spec: &str) -> Result<Vec<Threshold>, String> {
    let mut out: Vec<Threshold> = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((name, value)) = item.split_once('<') else {
            return Err(format!(
                "invalid eviction threshold syntax {item}, expected <signal><operator><value>"
            ));
        };
        let signal = SIGNALS
            .iter()
            .find(|(n, _)| *n == name.trim())
            .map(|(_, s)| *s)
            .ok_or_else(|| format!("unsupported eviction signal {}", name.trim()))?;
        let value = value.trim();
        let amount = if let Some(p) = value.strip_suffix('%') {
            let p: f64 = p
                .parse()
                .map_err(|_| format!("invalid eviction threshold percentage {value}"))?;
            if !(0.0..=100.0).contains(&p) {
                return Err(format!(
                    "eviction percentage threshold {name} must be >= 0% and <= 100%: {value}"
                ));
            }
            Amount::Percent(p)
        } else {
            let q = Quantity::parse(value)
                .map_err(|e| format!("invalid eviction threshold {item}: {e}"))?;
            if q.nanos() < 0 {
                return Err(format!(
                    "eviction threshold {name} cannot be negative: {value}"
                ));
            }
            Amount::Quantity(q.value())
        };
        if out.iter().any(|t| t.signal == signal) {
            return Err(format!(
                "found duplicate eviction threshold for signal {name}"
            ));
        }
        out.push(Threshold { signal, amount });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kubelet_syntax() {
        let t = parse("memory.available<100Mi, nodefs.available<10%,pid.available<1k").unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t[0].signal, Signal::MemoryAvailable);
        assert_eq!(t[0].limit(1 << 40), 100 << 20);
        assert_eq!(t[0].show(0), "100Mi");
        assert_eq!(t[1].limit(1000), 100);
        assert_eq!(t[2].limit(0), 1000);
        assert_eq!(t[2].show(0), "1k");
        assert_eq!(defaults().len(), 4);
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn refuses_bad_thresholds() {
        for (bad, why) in [
            ("memory.available>1Gi", "invalid eviction threshold syntax"),
            (
                "cpu.available<1",
                "unsupported eviction signal cpu.available",
            ),
            ("nodefs.available<120%", "must be >= 0% and <= 100%"),
            ("memory.available<-1Mi", "cannot be negative"),
            ("memory.available<lots", "invalid eviction threshold"),
            ("memory.available<1Mi,memory.available<2Mi", "duplicate"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
