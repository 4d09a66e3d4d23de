//! Resource usage read from a container's cgroup, in the shape of runc's
//! `events --stats` output (the engine maps it to Docker's stats later).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Cgroup;

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// All statistics of one container.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// CPU time and throttling.
    pub cpu: Cpu,
    /// Memory usage and limits.
    pub memory: Memory,
    /// Process counts.
    pub pids: Pids,
    /// Block IO.
    pub blkio: Blkio,
    /// Huge pages, by page size.
    pub hugetlb: BTreeMap<String, Hugetlb>,
}

/// CPU statistics.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    /// Time used.
    pub usage: CpuUsage,
    /// CFS throttling.
    pub throttling: Throttling,
}

/// CPU time in nanoseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuUsage {
    /// Total.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub total: u64,
    /// Per CPU.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    /// In kernel mode.
    pub kernel: u64,
    /// In user mode.
    pub user: u64,
}

/// CFS bandwidth throttling.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Throttling {
    /// Enforcement periods elapsed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub periods: u64,
    /// Periods in which the group was throttled.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// Total throttled time (ns).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

/// Memory statistics (bytes).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    /// Page cache.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache: u64,
    /// Memory.
    pub usage: MemoryEntry,
    /// Memory + swap (v1) or swap (v2).
    pub swap: MemoryEntry,
    /// Kernel memory (v1).
    pub kernel: MemoryEntry,
    /// The raw `memory.stat` counters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

/// One memory counter.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryEntry {
    /// Limit (u64::MAX-like values when unlimited).
    pub limit: u64,
    /// Current usage.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage: u64,
    /// Peak usage.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max: u64,
    /// Times the limit was hit.
    pub failcnt: u64,
}

/// Process counts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Pids {
    /// Processes now.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub current: u64,
    /// Limit (0 = unlimited).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub limit: u64,
}

/// Block IO counters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Blkio {
    /// Bytes by device and operation.
    #[serde(
        rename = "ioServiceBytesRecursive",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    /// Operations by device and operation.
    #[serde(
        rename = "ioServicedRecursive",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

/// One block IO counter.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BlkioEntry {
    /// Device major.
    pub major: u64,
    /// Device minor.
    pub minor: u64,
    /// `Read`, `Write`, ...
    pub op: String,
    /// Value.
    pub value: u64,
}

/// Huge-page counters for one page size.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Hugetlb {
    /// Usage now.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage: u64,
    /// Peak usage.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max: u64,
    /// Times the limit was hit.
    pub failcnt: u64,
}

fn read_u64(path: &Path) -> u64 {
    fs::read_to_string(path)
        .ok()
        .map(|s| {
            let s = s.trim();
            if s == "max" {
                u64::MAX
            } else {
                s.parse().unwrap_or(0)
            }
        })
        .unwrap_or(0)
}

fn read_kv(path: &Path) -> BTreeMap<String, u64> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_owned(), v.trim().parse().ok()?))
        })
        .collect()
}

impl Cgroup {
    /// How many processes the kernel's OOM killer has killed in this cgroup
    /// (and its descendants) since it was made: `oom_kill` of
    /// `memory.oom_control` on v1, of `memory.events` on v2. None when the
    /// kernel does not count them or the memory controller is not there.
    /// Readable until the cgroup is removed, also after its last process
    /// exited.
    pub fn oom_kills(&self) -> Option<u64> {
        let file = match self {
            Cgroup::V1 { dirs, .. } => dirs.get("memory")?.join("memory.oom_control"),
            Cgroup::V2 { dir, .. } => dir.join("memory.events"),
        };
        read_kv(&file).get("oom_kill").copied()
    }

    /// Reads the current statistics. Missing files read as zero.
    pub fn stats(&self) -> Stats {
        match self {
            Cgroup::V1 { dirs, unified } => {
                let mut s = Stats::default();
                if let Some(d) = dirs.get("cpuacct") {
                    s.cpu.usage.total = read_u64(&d.join("cpuacct.usage"));
                    s.cpu.usage.percpu = fs::read_to_string(d.join("cpuacct.usage_percpu"))
                        .unwrap_or_default()
                        .split_whitespace()
                        .filter_map(|v| v.parse().ok())
                        .collect();
                    // cpuacct.stat is in USER_HZ ticks.
                    let st = read_kv(&d.join("cpuacct.stat"));
                    let tick = 1_000_000_000 / 100;
                    s.cpu.usage.user = st.get("user").copied().unwrap_or(0) * tick;
                    s.cpu.usage.kernel = st.get("system").copied().unwrap_or(0) * tick;
                }
                if let Some(d) = dirs.get("cpu") {
                    let st = read_kv(&d.join("cpu.stat"));
                    s.cpu.throttling.periods = st.get("nr_periods").copied().unwrap_or(0);
                    s.cpu.throttling.throttled_periods =
                        st.get("nr_throttled").copied().unwrap_or(0);
                    s.cpu.throttling.throttled_time =
                        st.get("throttled_time").copied().unwrap_or(0);
                }
                if let Some(d) = dirs.get("memory") {
                    let entry = |prefix: &str| MemoryEntry {
                        limit: read_u64(&d.join(format!("{prefix}.limit_in_bytes"))),
                        usage: read_u64(&d.join(format!("{prefix}.usage_in_bytes"))),
                        max: read_u64(&d.join(format!("{prefix}.max_usage_in_bytes"))),
                        failcnt: read_u64(&d.join(format!("{prefix}.failcnt"))),
                    };
                    s.memory.usage = entry("memory");
                    s.memory.swap = entry("memory.memsw");
                    s.memory.kernel = entry("memory.kmem");
                    s.memory.raw = read_kv(&d.join("memory.stat"));
                    s.memory.cache = s.memory.raw.get("cache").copied().unwrap_or(0);
                }
                if let Some(d) = dirs.get("pids") {
                    s.pids.current = read_u64(&d.join("pids.current"));
                    let l = read_u64(&d.join("pids.max"));
                    s.pids.limit = if l == u64::MAX { 0 } else { l };
                }
                if let Some(d) = dirs.get("blkio") {
                    s.blkio.io_service_bytes_recursive =
                        read_blkio_v1(&d.join("blkio.throttle.io_service_bytes_recursive"));
                    s.blkio.io_serviced_recursive =
                        read_blkio_v1(&d.join("blkio.throttle.io_serviced_recursive"));
                }
                if let Some(d) = dirs.get("hugetlb") {
                    s.hugetlb = read_hugetlb(d, "limit_in_bytes", "usage_in_bytes", true);
                } else if let Some(u) = unified {
                    s.hugetlb = read_hugetlb(u, "max", "current", false);
                }
                s
            }
            Cgroup::V2 { dir, .. } => {
                let mut s = Stats::default();
                let cpu = read_kv(&dir.join("cpu.stat"));
                let get = |m: &BTreeMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
                s.cpu.usage.total = get(&cpu, "usage_usec") * 1000;
                s.cpu.usage.user = get(&cpu, "user_usec") * 1000;
                s.cpu.usage.kernel = get(&cpu, "system_usec") * 1000;
                s.cpu.throttling.periods = get(&cpu, "nr_periods");
                s.cpu.throttling.throttled_periods = get(&cpu, "nr_throttled");
                s.cpu.throttling.throttled_time = get(&cpu, "throttled_usec") * 1000;
                s.memory.usage = MemoryEntry {
                    limit: read_u64(&dir.join("memory.max")),
                    usage: read_u64(&dir.join("memory.current")),
                    max: read_u64(&dir.join("memory.peak")),
                    failcnt: read_kv(&dir.join("memory.events"))
                        .get("max")
                        .copied()
                        .unwrap_or(0),
                };
                s.memory.swap = MemoryEntry {
                    limit: read_u64(&dir.join("memory.swap.max")),
                    usage: read_u64(&dir.join("memory.swap.current")),
                    ..Default::default()
                };
                s.memory.raw = read_kv(&dir.join("memory.stat"));
                s.memory.cache = s.memory.raw.get("file").copied().unwrap_or(0);
                s.pids.current = read_u64(&dir.join("pids.current"));
                let l = read_u64(&dir.join("pids.max"));
                s.pids.limit = if l == u64::MAX { 0 } else { l };
                let (bytes, ios) = read_io_stat_v2(&dir.join("io.stat"));
                s.blkio.io_service_bytes_recursive = bytes;
                s.blkio.io_serviced_recursive = ios;
                s.hugetlb = read_hugetlb(dir, "max", "current", false);
                s
            }
        }
    }
}

fn read_blkio_v1(path: &Path) -> Vec<BlkioEntry> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (dev, op, v) = (f.next()?, f.next()?, f.next()?);
            let (maj, min) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: maj.parse().ok()?,
                minor: min.parse().ok()?,
                op: op.to_owned(),
                value: v.parse().ok()?,
            })
        })
        .collect()
}

fn read_io_stat_v2(path: &Path) -> (Vec<BlkioEntry>, Vec<BlkioEntry>) {
    let mut bytes = Vec::new();
    let mut ios = Vec::new();
    for line in fs::read_to_string(path).unwrap_or_default().lines() {
        let mut f = line.split_whitespace();
        let Some((maj, min)) = f.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (maj.parse(), min.parse()) else {
            continue;
        };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut bytes, "Read"),
                "wbytes" => (&mut bytes, "Write"),
                "rios" => (&mut ios, "Read"),
                "wios" => (&mut ios, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_owned(),
                value,
            });
        }
    }
    (bytes, ios)
}

fn read_hugetlb(dir: &Path, limit: &str, usage: &str, v1: bool) -> BTreeMap<String, Hugetlb> {
    let mut out = BTreeMap::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("hugetlb.") else {
            continue;
        };
        let Some(size) = rest.strip_suffix(&format!(".{limit}")) else {
            continue;
        };
        if size.contains('.') {
            continue;
        }
        let h = if v1 {
            Hugetlb {
                usage: read_u64(&dir.join(format!("hugetlb.{size}.{usage}"))),
                max: read_u64(&dir.join(format!("hugetlb.{size}.max_usage_in_bytes"))),
                failcnt: read_u64(&dir.join(format!("hugetlb.{size}.failcnt"))),
            }
        } else {
            Hugetlb {
                usage: read_u64(&dir.join(format!("hugetlb.{size}.{usage}"))),
                max: 0,
                failcnt: read_kv(&dir.join(format!("hugetlb.{size}.events")))
                    .get("max")
                    .copied()
                    .unwrap_or(0),
            }
        };
        out.insert(size.to_owned(), h);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_stats_from_a_fake_tree() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        fs::write(
            d.join("cpu.stat"),
            "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n",
        )
        .unwrap();
        fs::write(d.join("memory.current"), "4096\n").unwrap();
        fs::write(d.join("memory.max"), "max\n").unwrap();
        fs::write(d.join("memory.events"), "low 0\nhigh 0\nmax 3\noom 1\n").unwrap();
        fs::write(d.join("pids.current"), "2\n").unwrap();
        fs::write(d.join("pids.max"), "10\n").unwrap();
        fs::write(
            d.join("io.stat"),
            "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0\n",
        )
        .unwrap();
        fs::write(d.join("hugetlb.2MB.max"), "max\n").unwrap();
        fs::write(d.join("hugetlb.2MB.current"), "0\n").unwrap();
        let cg = Cgroup::V2 {
            dir: d.to_path_buf(),
            root: d.to_path_buf(),
        };
        let s = cg.stats();
        assert_eq!(s.cpu.usage.total, 1_500_000);
        assert_eq!(s.cpu.usage.kernel, 500_000);
        assert_eq!(s.memory.usage.usage, 4096);
        assert_eq!(s.memory.usage.limit, u64::MAX);
        assert_eq!(s.memory.usage.failcnt, 3);
        assert_eq!(
            s.pids,
            Pids {
                current: 2,
                limit: 10
            }
        );
        assert_eq!(s.blkio.io_service_bytes_recursive.len(), 2);
        assert_eq!(s.blkio.io_serviced_recursive[1].value, 2);
        assert!(s.hugetlb.contains_key("2MB"));
        assert_eq!(cg.oom_kills(), None, "no oom_kill line");
        fs::write(
            d.join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n",
        )
        .unwrap();
        assert_eq!(cg.oom_kills(), Some(1));
    }

    #[test]
    fn v1_oom_kills_from_oom_control() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        let cg = Cgroup::V1 {
            dirs: [("memory".to_owned(), d.to_path_buf())].into(),
            unified: None,
        };
        assert_eq!(cg.oom_kills(), None);
        fs::write(
            d.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .unwrap();
        assert_eq!(cg.oom_kills(), Some(2));
        let no_memory = Cgroup::V1 {
            dirs: Default::default(),
            unified: None,
        };
        assert_eq!(no_memory.oom_kills(), None);
    }
}
