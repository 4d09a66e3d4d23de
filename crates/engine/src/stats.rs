//! `docker stats`: samples of a container's cgroup with the host's CPU
//! time, and the figures the `stats` table shows (CPU %, memory use
//! without the page cache, block IO, pids), computed the way the docker
//! CLI computes them from two samples.

use std::collections::BTreeMap;
use std::time::SystemTime;

use berth_runtime::cgroups::stats::Stats;

use crate::run::{Engine, Result};

/// One sample.
#[derive(Clone, Debug)]
pub struct Sample {
    /// The cgroup's figures (zero when the container does not run).
    pub stats: Stats,
    /// The host's CPU time in nanoseconds (all CPUs, /proc/stat).
    pub system_cpu: u64,
    /// CPUs online.
    pub online_cpus: u32,
    /// When it was read.
    pub read: SystemTime,
    /// The host's memory, for an unlimited container's "limit".
    pub host_memory: u64,
    /// Whether the container runs.
    pub running: bool,
    /// The counters of each interface of its network namespace but `lo`
    /// (`None`: it runs in the host's, or has none other than `lo`).
    pub networks: Option<BTreeMap<String, NetDev>>,
}

/// One interface's counters (`/proc/<pid>/net/dev`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetDev {
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Received packets dropped.
    pub rx_dropped: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Send errors.
    pub tx_errors: u64,
    /// Packets dropped on sending.
    pub tx_dropped: u64,
}

/// Parses `/proc/net/dev`: every interface but `lo` (`None` when there
/// is no other). Lines that do not parse are skipped.
pub fn parse_net_dev(text: &str) -> Option<BTreeMap<String, NetDev>> {
    let mut out = BTreeMap::new();
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name == "lo" || name.is_empty() {
            continue;
        }
        let v: Vec<u64> = rest
            .split_whitespace()
            .map_while(|x| x.parse().ok())
            .collect();
        if v.len() < 12 {
            continue;
        }
        // rx: bytes packets errs drop fifo frame compressed multicast;
        // tx: bytes packets errs drop ...
        out.insert(
            name.to_owned(),
            NetDev {
                rx_bytes: v[0],
                rx_packets: v[1],
                rx_errors: v[2],
                rx_dropped: v[3],
                tx_bytes: v[8],
                tx_packets: v[9],
                tx_errors: v[10],
                tx_dropped: v[11],
            },
        );
    }
    (!out.is_empty()).then_some(out)
}

impl Sample {
    /// Memory use as docker shows it: usage minus inactive file pages
    /// (cgroup v1 `total_inactive_file`, v2 `inactive_file`).
    pub fn memory_used(&self) -> u64 {
        let m = &self.stats.memory;
        let inactive = m
            .raw
            .get("total_inactive_file")
            .or_else(|| m.raw.get("inactive_file"))
            .copied()
            .unwrap_or(0);
        m.usage.usage.saturating_sub(inactive)
    }

    /// The memory limit, or the host's memory when unlimited.
    pub fn memory_limit(&self) -> u64 {
        let l = self.stats.memory.usage.limit;
        if l == 0 || l >= self.host_memory {
            self.host_memory
        } else {
            l
        }
    }

    /// Bytes read and written.
    pub fn block_io(&self) -> (u64, u64) {
        let mut r = 0;
        let mut w = 0;
        for e in &self.stats.blkio.io_service_bytes_recursive {
            match e.op.to_ascii_lowercase().as_str() {
                "read" => r += e.value,
                "write" => w += e.value,
                _ => {}
            }
        }
        (r, w)
    }
}

impl Default for Sample {
    fn default() -> Sample {
        Sample {
            stats: Stats::default(),
            system_cpu: 0,
            online_cpus: 1,
            read: SystemTime::UNIX_EPOCH,
            host_memory: 0,
            running: false,
            networks: None,
        }
    }
}

/// CPU % between two samples, as the docker CLI computes it.
pub fn cpu_percent(pre: &Sample, cur: &Sample) -> f64 {
    let cpu = cur
        .stats
        .cpu
        .usage
        .total
        .saturating_sub(pre.stats.cpu.usage.total) as f64;
    let sys = cur.system_cpu.saturating_sub(pre.system_cpu) as f64;
    if cpu > 0.0 && sys > 0.0 {
        cpu / sys * f64::from(cur.online_cpus.max(1)) * 100.0
    } else {
        0.0
    }
}

/// The host's CPU time (nanoseconds) and online CPUs from /proc/stat.
pub fn host_cpu() -> (u64, u32) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let mut total = 0u64;
    let mut cpus = 0u32;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("cpu ") {
            // user nice system idle iowait irq softirq steal (guest is in user)
            total = rest
                .split_whitespace()
                .take(8)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum();
        } else if line.starts_with("cpu") {
            cpus += 1;
        }
    }
    let tick = rustix::param::clock_ticks_per_second().max(1);
    (total * (1_000_000_000 / tick), cpus.max(1))
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

impl Engine {
    /// A stats sample of a container (zeros when it does not run).
    pub fn stats_sample(&self, key: &str) -> Result<Sample> {
        let c = self.container(key)?;
        let running = c.state.is_active() && c.state.status != crate::Status::Restarting;
        let stats = if running {
            self.stats(&c.record.id).unwrap_or_default()
        } else {
            Stats::default()
        };
        // the counters of the container's own network namespace, read
        // through its first process (never the host's)
        let own_netns = !matches!(c.record.network, crate::config::NetworkMode::Host);
        let networks = if running && own_netns && c.state.pid > 0 {
            std::fs::read_to_string(format!("/proc/{}/net/dev", c.state.pid))
                .ok()
                .and_then(|t| parse_net_dev(&t))
        } else {
            None
        };
        let (system_cpu, online_cpus) = host_cpu();
        Ok(Sample {
            networks,
            stats,
            system_cpu,
            online_cpus,
            read: SystemTime::now(),
            host_memory: host_memory(),
            running,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_percent_and_memory_like_the_docker_cli() {
        let mut pre = Sample {
            online_cpus: 2,
            host_memory: 1000,
            ..Default::default()
        };
        pre.system_cpu = 1_000;
        pre.stats.cpu.usage.total = 100;
        let mut cur = pre.clone();
        cur.system_cpu = 2_000;
        cur.stats.cpu.usage.total = 350;
        assert!((cpu_percent(&pre, &cur) - 50.0).abs() < 1e-9);
        cur.stats.memory.usage.usage = 500;
        cur.stats
            .memory
            .raw
            .insert("total_inactive_file".into(), 200);
        assert_eq!(cur.memory_used(), 300);
        cur.stats.memory.usage.limit = u64::MAX;
        assert_eq!(cur.memory_limit(), 1000);
        cur.stats.memory.usage.limit = 64;
        assert_eq!(cur.memory_limit(), 64);
        let (sys, cpus) = host_cpu();
        assert!(sys > 0 && cpus >= 1);
    }

    #[test]
    fn net_dev_counters_without_lo() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
             lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0\n  \
             eth0:     736       8    1    2    0     0          0         0       42       1    3    4    0     0       0          0\n";
        let n = parse_net_dev(text).unwrap();
        assert_eq!(n.keys().collect::<Vec<_>>(), ["eth0"]);
        let e = n["eth0"];
        assert_eq!(
            (e.rx_bytes, e.rx_packets, e.rx_errors, e.rx_dropped),
            (736, 8, 1, 2)
        );
        assert_eq!(
            (e.tx_bytes, e.tx_packets, e.tx_errors, e.tx_dropped),
            (42, 1, 3, 4)
        );
        assert_eq!(parse_net_dev(&text.replace("eth0", "lo")), None, "only lo");
        assert_eq!(parse_net_dev(""), None);
        assert_eq!(parse_net_dev("a\nb\neth0: 1 2 x\n:\n"), None, "junk");
    }
}
