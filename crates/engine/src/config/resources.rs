//! Resource limits: cgroup limits, rlimits, devices and device rules.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// cgroup limits (0 or `None`: not limited).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resources {
    /// Memory limit in bytes.
    pub memory: i64,
    /// Memory + swap in bytes; -1: unlimited swap.
    pub memory_swap: i64,
    /// Memory soft limit in bytes.
    pub memory_reservation: i64,
    /// CPUs in units of 1e-9 CPUs.
    pub nano_cpus: i64,
    /// CPU shares (relative weight).
    pub cpu_shares: i64,
    /// CFS period in microseconds.
    pub cpu_period: i64,
    /// CFS quota in microseconds.
    pub cpu_quota: i64,
    /// CPUs the container may use (`0-3`, `0,1`).
    pub cpuset_cpus: String,
    /// Memory nodes the container may use.
    pub cpuset_mems: String,
    /// Most processes (`None` or ≤ 0: unlimited).
    pub pids_limit: Option<i64>,
    /// Swappiness 0..=100 (`None` or -1: the host's).
    pub memory_swappiness: Option<i64>,
    /// Do not OOM-kill the container.
    pub oom_kill_disable: bool,
    /// Block I/O weight 10..=1000 (0: unset).
    pub blkio_weight: u16,
}

impl Resources {
    /// The CFS quota and period `nano_cpus` means (period 100 ms).
    pub fn nano_cpus_quota(&self) -> Option<(i64, u64)> {
        const PERIOD: i64 = 100_000;
        (self.nano_cpus > 0).then(|| {
            // nano_cpus ≤ the host's CPUs × 1e9 (checked): no overflow
            let quota = self.nano_cpus.saturating_mul(PERIOD) / 1_000_000_000;
            (quota.max(1000), PERIOD as u64)
        })
    }

    /// Checks the limits as docker does.
    pub fn validate(&self) -> Result<(), String> {
        if self.memory < 0
            || self.memory_reservation < 0
            || self.cpu_shares < 0
            || self.nano_cpus < 0
            || self.cpu_period < 0
            || self.cpu_quota < 0
            || self.memory_swap < -1
        {
            return Err("resource limits cannot be negative".into());
        }
        if self.memory > 0 && self.memory < 6 * 1024 * 1024 {
            return Err("Minimum memory limit allowed is 6MB".into());
        }
        if self.memory_swap > 0 && self.memory > 0 && self.memory_swap < self.memory {
            return Err(
                "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
            );
        }
        if self.nano_cpus > 0 && (self.cpu_quota > 0 || self.cpu_period > 0) {
            return Err(
                "Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set".into(),
            );
        }
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
        if self.nano_cpus > cpus.saturating_mul(1_000_000_000) {
            return Err(format!(
                "range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available"
            ));
        }
        if self.cpu_period > 0 && !(1000..=1_000_000).contains(&self.cpu_period) {
            return Err("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)".into());
        }
        if self.cpu_quota > 0 && self.cpu_quota < 1000 {
            return Err("CPU cfs quota can not be less than 1ms (i.e. 1000)".into());
        }
        if let Some(sw) = self.memory_swappiness.filter(|s| *s != -1)
            && !(0..=100).contains(&sw)
        {
            return Err(format!(
                "invalid value: {sw}, valid memory swappiness range is 0-100"
            ));
        }
        if self.blkio_weight > 0 && !(10..=1000).contains(&self.blkio_weight) {
            return Err("Range of blkio weight is from 10 to 1000".into());
        }
        Ok(())
    }
}

/// An rlimit (`nofile`, soft and hard; -1 or `u64::MAX`: unlimited).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    /// Docker's name (`nofile`, `nproc`, `core`…).
    pub name: String,
    /// Soft limit.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

impl Ulimit {
    /// The names docker accepts.
    pub const NAMES: [&'static str; 16] = [
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
        "as",
    ];

    /// Checks the name and that soft ≤ hard.
    pub fn validate(&self) -> Result<(), String> {
        if !Ulimit::NAMES.contains(&self.name.as_str()) {
            return Err(format!("invalid ulimit type: {}", self.name));
        }
        if self.soft > self.hard {
            return Err(format!(
                "ulimit soft limit must be less than or equal to hard limit: {} > {}",
                self.soft, self.hard
            ));
        }
        Ok(())
    }
}

/// Device cgroup permissions (`rwm`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DevicePerms {
    /// Read.
    pub read: bool,
    /// Write.
    pub write: bool,
    /// mknod.
    pub mknod: bool,
}

impl Default for DevicePerms {
    fn default() -> Self {
        DevicePerms {
            read: true,
            write: true,
            mknod: true,
        }
    }
}

impl fmt::Display for DevicePerms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (on, c) in [(self.read, "r"), (self.write, "w"), (self.mknod, "m")] {
            if on {
                f.write_str(c)?;
            }
        }
        Ok(())
    }
}

impl FromStr for DevicePerms {
    type Err = String;

    fn from_str(s: &str) -> Result<DevicePerms, String> {
        if s.is_empty() || !s.chars().all(|c| "rwm".contains(c)) {
            return Err(format!("invalid device mode: {s}"));
        }
        Ok(DevicePerms {
            read: s.contains('r'),
            write: s.contains('w'),
            mknod: s.contains('m'),
        })
    }
}

impl Serialize for DevicePerms {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for DevicePerms {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<DevicePerms, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A host device in the container (`--device`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceMapping {
    /// The host's device node.
    pub host: String,
    /// Its path in the container.
    pub container: String,
    /// What the container may do with it.
    pub permissions: DevicePerms,
}

/// A device cgroup rule (`--device-cgroup-rule 'c 1:3 rwm'`): `None`
/// numbers match any.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRule {
    /// `a` (all), `b` (block) or `c` (character).
    pub kind: char,
    /// Major number.
    pub major: Option<i64>,
    /// Minor number.
    pub minor: Option<i64>,
    /// Access.
    pub access: DevicePerms,
}

impl fmt::Display for DeviceRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = |x: Option<i64>| x.map_or("*".to_owned(), |v| v.to_string());
        write!(
            f,
            "{} {}:{} {}",
            self.kind,
            n(self.major),
            n(self.minor),
            self.access
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_checked_like_docker() {
        let ok = Resources {
            memory: 64 << 20,
            nano_cpus: 500_000_000,
            ..Default::default()
        };
        assert!(ok.validate().is_ok());
        assert_eq!(ok.nano_cpus_quota(), Some((50_000, 100_000)));
        let huge = Resources {
            nano_cpus: i64::MAX - 10,
            ..Default::default()
        };
        assert!(huge.validate().unwrap_err().contains("range of CPUs"));
        assert!(
            Resources {
                memory: 1024,
                ..Default::default()
            }
            .validate()
            .is_err()
        );
        assert_eq!("rw".parse::<DevicePerms>().unwrap().to_string(), "rw");
        assert!("rx".parse::<DevicePerms>().is_err());
        assert!(
            Ulimit {
                name: "nofile".into(),
                soft: 2,
                hard: 1
            }
            .validate()
            .is_err()
        );
    }
}
