//! What the node has left, read from the kernel: memory from
//! `/proc/meminfo`, bytes and inodes from the filesystem of berth's root,
//! process ids from `pid_max` and the number of tasks.

use std::collections::HashMap;
use std::path::Path;

use super::thresholds::Signal;

/// One signal's reading: what is left of what capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading {
    /// Left.
    pub available: i64,
    /// All.
    pub capacity: i64,
}

/// Readings of every signal that could be taken.
pub type Observations = HashMap<Signal, Reading>;

/// Reads every signal (a signal that cannot be read is left out).
pub fn observe(root: &Path) -> Observations {
    let mut out = HashMap::new();
    if let Some(r) = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| memory(&t))
    {
        out.insert(Signal::MemoryAvailable, r);
    }
    if let Ok(st) = rustix::fs::statvfs(root) {
        let frsize = st.f_frsize.max(1) as i64;
        let bytes = Reading {
            available: (st.f_bavail as i64).saturating_mul(frsize),
            capacity: (st.f_blocks as i64).saturating_mul(frsize),
        };
        let inodes = Reading {
            available: st.f_favail as i64,
            capacity: st.f_files as i64,
        };
        out.insert(Signal::NodefsAvailable, bytes);
        out.insert(Signal::ImagefsAvailable, bytes);
        // a filesystem without an inode table (tmpfs with nr_inodes=0,
        // btrfs…) reports none: no inode signal then
        if inodes.capacity > 0 {
            out.insert(Signal::NodefsInodesFree, inodes);
            out.insert(Signal::ImagefsInodesFree, inodes);
        }
    }
    let max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|t| t.trim().parse::<i64>().ok());
    let tasks = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| tasks(&t));
    if let (Some(max), Some(tasks)) = (max, tasks) {
        out.insert(
            Signal::PidAvailable,
            Reading {
                available: max - tasks,
                capacity: max,
            },
        );
    }
    out
}

fn meminfo_kib(text: &str, key: &str) -> Option<i64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<i64>().ok())
        .map(|k| k.saturating_mul(1024))
}

fn memory(text: &str) -> Option<Reading> {
    Some(Reading {
        available: meminfo_kib(text, "MemAvailable")?,
        capacity: meminfo_kib(text, "MemTotal")?,
    })
}

/// The task count of `/proc/loadavg` (`0.00 0.01 0.05 2/517 1234`).
fn tasks(text: &str) -> Option<i64> {
    text.split_whitespace()
        .nth(3)?
        .split_once('/')?
        .1
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kernel_files() {
        let m = "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   20000000 kB\n";
        assert_eq!(
            memory(m),
            Some(Reading {
                available: 20_000_000 * 1024,
                capacity: 24_000_000 * 1024
            })
        );
        assert_eq!(memory("MemTotal: 1 kB\n"), None);
        assert_eq!(tasks("0.10 0.20 0.30 3/517 4242\n"), Some(517));
        assert_eq!(tasks("garbage"), None);
    }

    #[test]
    fn observes_this_machine() {
        let o = observe(Path::new("/"));
        let m = o[&Signal::MemoryAvailable];
        assert!(m.available > 0 && m.available <= m.capacity);
        let d = o[&Signal::NodefsAvailable];
        assert!(d.available >= 0 && d.available <= d.capacity);
        assert!(o[&Signal::PidAvailable].available > 0);
    }
}
