//! Capability sets from the spec, as bit masks.

use oci_spec::runtime::{Capability, LinuxCapabilities};

/// Linux capability numbers by name (without `CAP_`).
const NAMES: &[(&str, u32)] = &[
    ("CHOWN", 0),
    ("DAC_OVERRIDE", 1),
    ("DAC_READ_SEARCH", 2),
    ("FOWNER", 3),
    ("FSETID", 4),
    ("KILL", 5),
    ("SETGID", 6),
    ("SETUID", 7),
    ("SETPCAP", 8),
    ("LINUX_IMMUTABLE", 9),
    ("NET_BIND_SERVICE", 10),
    ("NET_BROADCAST", 11),
    ("NET_ADMIN", 12),
    ("NET_RAW", 13),
    ("IPC_LOCK", 14),
    ("IPC_OWNER", 15),
    ("SYS_MODULE", 16),
    ("SYS_RAWIO", 17),
    ("SYS_CHROOT", 18),
    ("SYS_PTRACE", 19),
    ("SYS_PACCT", 20),
    ("SYS_ADMIN", 21),
    ("SYS_BOOT", 22),
    ("SYS_NICE", 23),
    ("SYS_RESOURCE", 24),
    ("SYS_TIME", 25),
    ("SYS_TTY_CONFIG", 26),
    ("MKNOD", 27),
    ("LEASE", 28),
    ("AUDIT_WRITE", 29),
    ("AUDIT_CONTROL", 30),
    ("SETFCAP", 31),
    ("MAC_OVERRIDE", 32),
    ("MAC_ADMIN", 33),
    ("SYSLOG", 34),
    ("WAKE_ALARM", 35),
    ("BLOCK_SUSPEND", 36),
    ("AUDIT_READ", 37),
    ("PERFMON", 38),
    ("BPF", 39),
    ("CHECKPOINT_RESTORE", 40),
];

/// The number of a capability.
pub fn number(c: &Capability) -> u32 {
    let name = c.to_string();
    let name = name.trim_start_matches("CAP_");
    NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .unwrap_or(u32::MAX)
}

/// The number of a capability name (`CAP_X` or `X`, any case).
pub fn number_of_name(name: &str) -> Option<u32> {
    let upper = name.to_ascii_uppercase();
    let name = upper.trim_start_matches("CAP_");
    NAMES.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// Every capability berth knows, as `CAP_X`.
pub fn all_names() -> Vec<String> {
    NAMES.iter().map(|(n, _)| format!("CAP_{n}")).collect()
}

/// The name (`CAP_X`) of a capability number.
pub fn name_of(n: u32) -> String {
    NAMES
        .iter()
        .find(|(_, v)| *v == n)
        .map_or(format!("CAP_{n}"), |(s, _)| format!("CAP_{s}"))
}

/// The five capability sets as masks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapPlan {
    /// Bounding set.
    pub bounding: u64,
    /// Effective set.
    pub effective: u64,
    /// Permitted set.
    pub permitted: u64,
    /// Inheritable set.
    pub inheritable: u64,
    /// Ambient set.
    pub ambient: u64,
}

fn mask(set: &Option<oci_spec::runtime::Capabilities>) -> u64 {
    set.iter()
        .flatten()
        .map(number)
        .filter(|&n| n < 64)
        .fold(0, |m, n| m | (1u64 << n))
}

impl CapPlan {
    /// From the spec's capabilities (absent sets are empty).
    pub fn from_spec(c: &LinuxCapabilities) -> CapPlan {
        CapPlan {
            bounding: mask(c.bounding()),
            effective: mask(c.effective()),
            permitted: mask(c.permitted()),
            inheritable: mask(c.inheritable()),
            ambient: mask(c.ambient()),
        }
    }

    /// Keeps only capabilities the kernel knows and `available` (what the
    /// runtime itself holds); returns the plan and what was dropped.
    pub fn restrict(self, last_cap: u32, available: u64) -> (CapPlan, u64) {
        let known = if last_cap >= 63 {
            u64::MAX
        } else {
            (1u64 << (last_cap + 1)) - 1
        };
        let keep = known & available;
        let all = self.bounding | self.effective | self.permitted | self.inheritable | self.ambient;
        let plan = CapPlan {
            bounding: self.bounding & keep,
            effective: self.effective & keep,
            permitted: self.permitted & keep,
            inheritable: self.inheritable & keep,
            ambient: self.ambient & keep,
        };
        (plan, all & known & !available)
    }
}

/// Names of the capabilities in `mask`.
pub fn names(mask: u64) -> Vec<String> {
    (0..64)
        .filter(|b| mask & (1 << b) != 0)
        .map(name_of)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_the_kernel() {
        let c: LinuxCapabilities = serde_json::from_str(
            r#"{"bounding":["CAP_KILL","CAP_SYS_ADMIN","CAP_CHECKPOINT_RESTORE"],"effective":["CAP_CHOWN"]}"#,
        )
        .unwrap();
        let p = CapPlan::from_spec(&c);
        assert_eq!(p.bounding, (1 << 5) | (1 << 21) | (1 << 40));
        assert_eq!(p.effective, 1);
        assert_eq!(p.inheritable, 0);
        let (r, dropped) = p.restrict(40, !(1 << 21));
        assert_eq!(r.bounding, (1 << 5) | (1 << 40));
        assert_eq!(names(dropped), vec!["CAP_SYS_ADMIN"]);
        let (r, _) = p.restrict(39, u64::MAX);
        assert_eq!(r.bounding, (1 << 5) | (1 << 21));
        assert_eq!(number_of_name("net_raw"), Some(13));
        assert_eq!(number_of_name("CAP_NOPE"), None);
    }
}
