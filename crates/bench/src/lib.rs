//! Shared pieces of berth's control-plane benchmarks (`bench/kube.sh`):
//! latency summaries, process memory, and a small flag reader.
#![forbid(unsafe_code)]
#![deny(clippy::string_slice)]

use std::time::Duration;

pub mod dnsload;
pub mod server;
pub mod tcpload;

/// Latencies of one measured operation.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    values: Vec<Duration>,
}

impl Samples {
    /// No samples yet.
    pub fn new() -> Samples {
        Samples::default()
    }

    /// Adds one latency.
    pub fn push(&mut self, value: Duration) {
        self.values.push(value);
    }

    /// Adds every latency of `other`.
    pub fn extend(&mut self, other: Samples) {
        self.values.extend(other.values);
    }

    /// How many samples there are.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The `p`-quantile (0.0 ..= 1.0), nearest rank; zero when empty.
    pub fn quantile(&self, p: f64) -> Duration {
        if self.values.is_empty() {
            return Duration::ZERO;
        }
        let mut sorted = self.values.clone();
        sorted.sort_unstable();
        let last = sorted.len() - 1;
        let rank = ((last as f64) * p.clamp(0.0, 1.0)).round() as usize;
        sorted[rank.min(last)]
    }

    /// The largest sample.
    pub fn max(&self) -> Duration {
        self.values.iter().copied().max().unwrap_or_default()
    }

    /// `p50 … p99 … max` in milliseconds, for a report line.
    pub fn summary(&self) -> String {
        format!(
            "n={} p50={} p99={} max={}",
            self.len(),
            ms(self.quantile(0.50)),
            ms(self.quantile(0.99)),
            ms(self.max())
        )
    }
}

/// A duration in milliseconds with two decimals and the unit.
pub fn ms(d: Duration) -> String {
    format!("{:.2}ms", d.as_secs_f64() * 1000.0)
}

/// A `/proc/<pid>/status` field in kB (`VmRSS`, `VmHWM`), if readable.
pub fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Kilobytes as MiB with one decimal.
pub fn mib(kb: u64) -> String {
    format!("{:.1} MiB", kb as f64 / 1024.0)
}

/// `--name value` flags of the command line.
#[derive(Debug)]
pub struct Flags {
    args: Vec<String>,
}

impl Flags {
    /// The process's flags.
    pub fn from_env() -> Flags {
        Flags {
            args: std::env::args().skip(1).collect(),
        }
    }

    /// The value after `--name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        let flag = format!("--{name}");
        let at = self.args.iter().position(|a| *a == flag)?;
        self.args.get(at + 1).map(String::as_str)
    }

    /// `--name` parsed as a number, or `default`.
    pub fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> anyhow::Result<T> {
        match self.get(name) {
            None => Ok(default),
            Some(text) => text
                .parse()
                .map_err(|_| anyhow::anyhow!("--{name} {text:?} is not a number")),
        }
    }
}
