//! OCI `linux.resources` → the cgroup file writes that apply them (pure).
//!
//! The same spec maps to different files on cgroup v1 and v2; both mappings
//! live here so they can be unit-tested without any cgroupfs.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};

use super::CgroupError;

/// One write of `value` to `file` in the cgroup directory of `controller`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    /// The controller whose hierarchy (v1) or interface files (v2) it needs.
    pub controller: &'static str,
    /// File name inside the cgroup directory.
    pub file: String,
    /// Value to write.
    pub value: String,
}

fn w(controller: &'static str, file: impl Into<String>, value: impl ToString) -> Write {
    Write {
        controller,
        file: file.into(),
        value: value.to_string(),
    }
}

/// The writes for cgroup v1. `blkio_weight_file` is `blkio.weight` or
/// `blkio.bfq.weight`, whichever the kernel offers (None: neither).
pub fn v1_writes(
    r: &LinuxResources,
    blkio_weight_file: Option<&str>,
) -> Result<Vec<Write>, CgroupError> {
    let mut out = Vec::new();
    if let Some(m) = r.memory() {
        if let Some(limit) = m.limit() {
            out.push(w("memory", "memory.limit_in_bytes", limit));
        }
        if let Some(res) = m.reservation() {
            out.push(w("memory", "memory.soft_limit_in_bytes", res));
        }
        if let Some(swap) = m.swap() {
            // In OCI (and v1) "swap" is the memory+swap limit.
            if let (Some(limit), true) = (m.limit(), swap >= 0)
                && limit >= 0
                && swap < limit
            {
                return Err(CgroupError::Invalid(format!(
                    "memory+swap limit ({swap}) is lower than the memory limit ({limit})"
                )));
            }
            out.push(w("memory", "memory.memsw.limit_in_bytes", swap));
        }
        if let Some(tcp) = m.kernel_tcp() {
            out.push(w("memory", "memory.kmem.tcp.limit_in_bytes", tcp));
        }
        if let Some(sw) = m.swappiness() {
            if sw > 100 {
                return Err(CgroupError::Invalid(format!(
                    "memory swappiness {sw} is out of range 0..=100"
                )));
            }
            out.push(w("memory", "memory.swappiness", sw));
        }
        if m.disable_oom_killer() == Some(true) {
            out.push(w("memory", "memory.oom_control", 1));
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(shares) = c.shares() {
            out.push(w("cpu", "cpu.shares", shares));
        }
        if let Some(period) = c.period() {
            out.push(w("cpu", "cpu.cfs_period_us", period));
        }
        if let Some(quota) = c.quota() {
            out.push(w("cpu", "cpu.cfs_quota_us", quota));
        }
        if let Some(burst) = c.burst() {
            out.push(w("cpu", "cpu.cfs_burst_us", burst));
        }
        if let Some(p) = c.realtime_period() {
            out.push(w("cpu", "cpu.rt_period_us", p));
        }
        if let Some(rt) = c.realtime_runtime() {
            out.push(w("cpu", "cpu.rt_runtime_us", rt));
        }
        if let Some(idle) = c.idle() {
            out.push(w("cpu", "cpu.idle", idle));
        }
        if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            out.push(w("cpuset", "cpuset.cpus", cpus));
        }
        if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            out.push(w("cpuset", "cpuset.mems", mems));
        }
    }
    if let Some(p) = r.pids() {
        out.push(w("pids", "pids.max", pids_value(p.limit())));
    }
    if let Some(b) = r.block_io() {
        let weight_file = || {
            blkio_weight_file.ok_or_else(|| {
                CgroupError::Unsupported(
                    "blkio weight: the kernel offers neither blkio.weight nor blkio.bfq.weight"
                        .into(),
                )
            })
        };
        if let Some(weight) = b.weight() {
            out.push(w("blkio", weight_file()?, weight));
        }
        if let Some(lw) = b.leaf_weight() {
            out.push(w("blkio", "blkio.leaf_weight", lw));
        }
        for d in b.weight_device().iter().flatten() {
            if let Some(weight) = d.weight() {
                let file = format!("{}_device", weight_file()?);
                out.push(w(
                    "blkio",
                    file,
                    format!("{}:{} {}", d.major(), d.minor(), weight),
                ));
            }
            if let Some(lw) = d.leaf_weight() {
                out.push(w(
                    "blkio",
                    "blkio.leaf_weight_device",
                    format!("{}:{} {}", d.major(), d.minor(), lw),
                ));
            }
        }
        let throttles = [
            (
                "blkio.throttle.read_bps_device",
                b.throttle_read_bps_device(),
            ),
            (
                "blkio.throttle.write_bps_device",
                b.throttle_write_bps_device(),
            ),
            (
                "blkio.throttle.read_iops_device",
                b.throttle_read_iops_device(),
            ),
            (
                "blkio.throttle.write_iops_device",
                b.throttle_write_iops_device(),
            ),
        ];
        for (file, list) in throttles {
            for d in list.iter().flatten() {
                out.push(w(
                    "blkio",
                    file,
                    format!("{}:{} {}", d.major(), d.minor(), d.rate()),
                ));
            }
        }
    }
    for h in r.hugepage_limits().iter().flatten() {
        validate_page_size(h.page_size())?;
        out.push(w(
            "hugetlb",
            format!("hugetlb.{}.limit_in_bytes", h.page_size()),
            h.limit(),
        ));
    }
    if let Some(n) = r.network() {
        if let Some(id) = n.class_id() {
            out.push(w("net_cls", "net_cls.classid", id));
        }
        for p in n.priorities().iter().flatten() {
            out.push(w(
                "net_prio",
                "net_prio.ifpriomap",
                format!("{} {}", p.name(), p.priority()),
            ));
        }
    }
    if let Some(rdma) = r.rdma() {
        for (dev, l) in rdma {
            out.push(w(
                "rdma",
                "rdma.max",
                rdma_value(dev, l.hca_handles(), l.hca_objects()),
            ));
        }
    }
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(CgroupError::Unsupported(
            "linux.resources.unified needs cgroup v2, and this host manages containers with v1"
                .into(),
        ));
    }
    Ok(out)
}

/// The writes for cgroup v2 (devices are handled by an eBPF program, not
/// by files).
pub fn v2_writes(r: &LinuxResources) -> Result<Vec<Write>, CgroupError> {
    let mut out = Vec::new();
    if let Some(m) = r.memory() {
        if let Some(limit) = m.limit() {
            out.push(w("memory", "memory.max", max_or(limit)));
        }
        if let Some(res) = m.reservation() {
            out.push(w("memory", "memory.low", max_or(res)));
        }
        if let Some(swap) = m.swap() {
            // OCI's swap is memory+swap; v2's memory.swap.max is swap alone.
            let value = match (swap, m.limit()) {
                (-1, _) => "max".to_owned(),
                (0, _) => "0".to_owned(),
                (s, Some(l)) if l >= 0 => {
                    if s < l {
                        return Err(CgroupError::Invalid(format!(
                            "memory+swap limit ({s}) is lower than the memory limit ({l})"
                        )));
                    }
                    (s - l).to_string()
                }
                (_, _) => {
                    return Err(CgroupError::Invalid(
                        "a memory+swap limit needs a memory limit on cgroup v2".into(),
                    ));
                }
            };
            out.push(w("memory", "memory.swap.max", value));
        }
        if m.disable_oom_killer() == Some(true) {
            return Err(CgroupError::Unsupported(
                "disableOOMKiller does not exist on cgroup v2".into(),
            ));
        }
        if let Some(sw) = m.swappiness()
            && sw != 60
            && sw <= 100
        {
            return Err(CgroupError::Unsupported(
                "memory swappiness cannot be set per cgroup on cgroup v2".into(),
            ));
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(shares) = c.shares() {
            out.push(w("cpu", "cpu.weight", shares_to_weight(shares)));
        }
        if c.quota().is_some() || c.period().is_some() {
            let quota = match c.quota() {
                Some(q) if q > 0 => q.to_string(),
                _ => "max".to_owned(),
            };
            let period = c.period().unwrap_or(100_000);
            out.push(w("cpu", "cpu.max", format!("{quota} {period}")));
        }
        if let Some(burst) = c.burst() {
            out.push(w("cpu", "cpu.max.burst", burst));
        }
        if let Some(idle) = c.idle() {
            out.push(w("cpu", "cpu.idle", idle));
        }
        if c.realtime_runtime().is_some_and(|v| v != 0)
            || c.realtime_period().is_some_and(|v| v != 0)
        {
            return Err(CgroupError::Unsupported(
                "real-time CPU limits do not exist on cgroup v2".into(),
            ));
        }
        if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            out.push(w("cpuset", "cpuset.cpus", cpus));
        }
        if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            out.push(w("cpuset", "cpuset.mems", mems));
        }
    }
    if let Some(p) = r.pids() {
        out.push(w("pids", "pids.max", pids_value(p.limit())));
    }
    if let Some(b) = r.block_io() {
        if let Some(weight) = b.weight() {
            out.push(w("io", "io.weight", blkio_weight_to_io(weight)));
        }
        for d in b.weight_device().iter().flatten() {
            if let Some(weight) = d.weight() {
                out.push(w(
                    "io",
                    "io.weight",
                    format!("{}:{} {}", d.major(), d.minor(), blkio_weight_to_io(weight)),
                ));
            }
        }
        let throttles = [
            ("rbps", b.throttle_read_bps_device()),
            ("wbps", b.throttle_write_bps_device()),
            ("riops", b.throttle_read_iops_device()),
            ("wiops", b.throttle_write_iops_device()),
        ];
        for (key, list) in throttles {
            for d in list.iter().flatten() {
                let rate = if d.rate() == 0 {
                    "max".to_owned()
                } else {
                    d.rate().to_string()
                };
                out.push(w(
                    "io",
                    "io.max",
                    format!("{}:{} {key}={rate}", d.major(), d.minor()),
                ));
            }
        }
    }
    for h in r.hugepage_limits().iter().flatten() {
        validate_page_size(h.page_size())?;
        out.push(w(
            "hugetlb",
            format!("hugetlb.{}.max", h.page_size()),
            max_or(h.limit()),
        ));
    }
    if let Some(n) = r.network()
        && (n.class_id().is_some() || n.priorities().as_ref().is_some_and(|p| !p.is_empty()))
    {
        return Err(CgroupError::Unsupported(
            "net_cls/net_prio limits do not exist on cgroup v2".into(),
        ));
    }
    if let Some(rdma) = r.rdma() {
        for (dev, l) in rdma {
            out.push(w(
                "rdma",
                "rdma.max",
                rdma_value(dev, l.hca_handles(), l.hca_objects()),
            ));
        }
    }
    if let Some(unified) = r.unified() {
        let mut keys: Vec<_> = unified.keys().collect();
        keys.sort();
        for key in keys {
            let value = &unified[key];
            if key.contains('/') || key.starts_with('.') || !key.contains('.') {
                return Err(CgroupError::Invalid(format!(
                    "unified resource key {key:?}"
                )));
            }
            let controller = controller_of_v2_file(key).ok_or_else(|| {
                CgroupError::Invalid(format!(
                    "unified resource {key:?} names no known controller"
                ))
            })?;
            out.push(w(controller, key.clone(), value));
        }
    }
    Ok(out)
}

fn controller_of_v2_file(file: &str) -> Option<&'static str> {
    let prefix = file.split('.').next()?;
    Some(match prefix {
        "memory" => "memory",
        "cpu" => "cpu",
        "cpuset" => "cpuset",
        "io" => "io",
        "pids" => "pids",
        "hugetlb" => "hugetlb",
        "rdma" => "rdma",
        "misc" => "misc",
        "cgroup" => "cgroup",
        _ => return None,
    })
}

fn max_or(v: i64) -> String {
    if v < 0 {
        "max".to_owned()
    } else {
        v.to_string()
    }
}

fn pids_value(limit: i64) -> String {
    if limit > 0 {
        limit.to_string()
    } else {
        "max".to_owned()
    }
}

fn rdma_value(dev: &str, handles: Option<u32>, objects: Option<u32>) -> String {
    let mut s = dev.to_owned();
    if let Some(h) = handles {
        s.push_str(&format!(" hca_handle={h}"));
    }
    if let Some(o) = objects {
        s.push_str(&format!(" hca_object={o}"));
    }
    s
}

fn validate_page_size(size: &str) -> Result<(), CgroupError> {
    let digits = ["KB", "MB", "GB"].iter().find_map(|u| size.strip_suffix(u));
    let ok = digits.is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(CgroupError::Invalid(format!("hugepage size {size:?}")))
    }
}

/// cgroup v1 `cpu.shares` (2..262144) → v2 `cpu.weight` (1..10000), the
/// conversion runc and the kernel documentation use.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 100;
    }
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// blkio weight (10..1000) → io.weight (1..10000).
pub fn blkio_weight_to_io(weight: u16) -> u64 {
    let weight = u64::from(weight.clamp(10, 1000));
    1 + ((weight - 10) * 9999) / 990
}

/// Device rules every container gets after its own (runc's default list):
/// mknod of any device, and access to the standard character devices.
pub fn default_device_rules() -> Vec<DeviceRule> {
    let mut v = vec![
        DeviceRule {
            allow: true,
            kind: 'c',
            major: None,
            minor: None,
            access: "m".into(),
        },
        DeviceRule {
            allow: true,
            kind: 'b',
            major: None,
            minor: None,
            access: "m".into(),
        },
    ];
    for (major, minor) in [
        (1, 3),
        (1, 8),
        (1, 7),
        (5, 0),
        (1, 5),
        (1, 9),
        (5, 1),
        (5, 2),
    ] {
        v.push(DeviceRule {
            allow: true,
            kind: 'c',
            major: Some(major),
            minor: Some(minor),
            access: "rwm".into(),
        });
    }
    v.push(DeviceRule {
        allow: true,
        kind: 'c',
        major: Some(136),
        minor: None,
        access: "rwm".into(),
    });
    v
}

/// One device-cgroup rule in the kernel's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRule {
    /// Allow (true) or deny.
    pub allow: bool,
    /// `a` (all), `c` or `b`.
    pub kind: char,
    /// Major number; None = any.
    pub major: Option<i64>,
    /// Minor number; None = any.
    pub minor: Option<i64>,
    /// Some of `r`, `w`, `m`.
    pub access: String,
}

impl DeviceRule {
    /// Converts an OCI rule, validating the access string.
    pub fn from_oci(d: &LinuxDeviceCgroup) -> Result<Self, CgroupError> {
        let kind = match d.typ() {
            None => 'a',
            Some(t) => match t.as_str() {
                "a" => 'a',
                "c" | "u" => 'c',
                "b" => 'b',
                other => {
                    return Err(CgroupError::Invalid(format!("device rule type {other:?}")));
                }
            },
        };
        let access = d.access().clone().unwrap_or_else(|| "rwm".into());
        if access.is_empty() || !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
            return Err(CgroupError::Invalid(format!(
                "device rule access {access:?}"
            )));
        }
        Ok(DeviceRule {
            allow: d.allow(),
            kind,
            major: d.major().filter(|&m| m >= 0),
            minor: d.minor().filter(|&m| m >= 0),
            access,
        })
    }

    /// The v1 `devices.allow`/`devices.deny` line.
    pub fn v1_line(&self) -> String {
        if self.kind == 'a' {
            return "a".to_owned();
        }
        let num = |n: Option<i64>| n.map_or("*".to_owned(), |n| n.to_string());
        format!(
            "{} {}:{} {}",
            self.kind,
            num(self.major),
            num(self.minor),
            self.access
        )
    }
}

/// Whether `rules` let every access through (a privileged container's
/// `a *:* rwm` with only allow rules after it): nothing to enforce then.
pub fn allow_everything(rules: &[DeviceRule]) -> bool {
    let Some(last_all) = rules.iter().rposition(|r| r.kind == 'a') else {
        return false;
    };
    let all = &rules[last_all];
    all.allow
        && "rwm".chars().all(|c| all.access.contains(c))
        && rules[last_all..].iter().all(|r| r.allow)
}

/// The full rule list a container gets: its own rules, then the defaults,
/// then one allow rule per device the spec creates, unless the container's
/// own rules name that device exactly (then they decide its access, as
/// `--device /dev/x:/dev/x:r` asks).
pub fn container_device_rules(
    r: Option<&LinuxResources>,
    spec_devices: &[(char, i64, i64)],
) -> Result<Vec<DeviceRule>, CgroupError> {
    let mut rules = Vec::new();
    for d in r.and_then(|r| r.devices().as_ref()).into_iter().flatten() {
        rules.push(DeviceRule::from_oci(d)?);
    }
    let own = rules.len();
    rules.extend(default_device_rules());
    for &(kind, major, minor) in spec_devices {
        let named = rules[..own]
            .iter()
            .any(|r| r.kind == kind && r.major == Some(major) && r.minor == Some(minor));
        if named {
            continue;
        }
        rules.push(DeviceRule {
            allow: true,
            kind,
            major: Some(major),
            minor: Some(minor),
            access: "rwm".into(),
        });
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn only_an_unrestricted_rule_list_allows_everything() {
        let rules = |json: &str| container_device_rules(Some(&res(json)), &[]).unwrap();
        assert!(!allow_everything(&rules("{}")), "defaults only: deny");
        assert!(!allow_everything(&rules(
            r#"{"devices":[{"allow":false,"access":"rwm"}]}"#
        )));
        assert!(allow_everything(&rules(
            r#"{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"access":"rwm"}]}"#
        )));
        assert!(!allow_everything(&rules(
            r#"{"devices":[{"allow":true,"access":"rw"}]}"#
        )));
        assert!(!allow_everything(&rules(
            r#"{"devices":[{"allow":true,"access":"rwm"},
                {"allow":false,"type":"c","major":1,"minor":1,"access":"r"}]}"#
        )));
    }

    #[test]
    fn own_rule_for_a_spec_device_decides_its_access() {
        let r = res(r#"{"devices":[{"allow":false,"access":"rwm"},
            {"allow":true,"type":"c","major":10,"minor":200,"access":"r"}]}"#);
        let rules = container_device_rules(Some(&r), &[('c', 10, 200), ('c', 10, 229)]).unwrap();
        let lines: Vec<String> = rules.iter().map(DeviceRule::v1_line).collect();
        assert!(lines.contains(&"c 10:200 r".to_owned()));
        assert!(!lines.contains(&"c 10:200 rwm".to_owned()), "{lines:?}");
        // a spec device no rule names is granted in full
        assert!(lines.contains(&"c 10:229 rwm".to_owned()), "{lines:?}");
    }

    #[test]
    fn v1_memory_cpu_pids() {
        let r = res(
            r#"{"memory":{"limit":1048576,"swap":2097152,"reservation":512},
            "cpu":{"shares":512,"quota":50000,"period":100000,"cpus":"0"},"pids":{"limit":32}}"#,
        );
        let ws = v1_writes(&r, None).unwrap();
        let find = |f: &str| ws.iter().find(|w| w.file == f).map(|w| w.value.clone());
        assert_eq!(find("memory.limit_in_bytes").unwrap(), "1048576");
        assert_eq!(find("memory.memsw.limit_in_bytes").unwrap(), "2097152");
        assert_eq!(find("memory.soft_limit_in_bytes").unwrap(), "512");
        assert_eq!(find("cpu.shares").unwrap(), "512");
        assert_eq!(find("cpu.cfs_quota_us").unwrap(), "50000");
        assert_eq!(find("cpuset.cpus").unwrap(), "0");
        assert_eq!(find("pids.max").unwrap(), "32");
        // period must be written before quota
        let p = ws
            .iter()
            .position(|w| w.file == "cpu.cfs_period_us")
            .unwrap();
        let q = ws
            .iter()
            .position(|w| w.file == "cpu.cfs_quota_us")
            .unwrap();
        assert!(p < q);
    }

    #[test]
    fn v2_memory_cpu_pids_io() {
        let r = res(
            r#"{"memory":{"limit":1048576,"swap":3145728},"cpu":{"shares":1024,
            "quota":-1,"period":100000},"pids":{"limit":-1},
            "blockIO":{"weight":500,"throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1000}]},
            "hugepageLimits":[{"pageSize":"2MB","limit":4194304}],
            "unified":{"memory.high":"900000"}}"#,
        );
        let ws = v2_writes(&r).unwrap();
        let find = |f: &str| ws.iter().find(|w| w.file == f).map(|w| w.value.clone());
        assert_eq!(find("memory.max").unwrap(), "1048576");
        assert_eq!(find("memory.swap.max").unwrap(), "2097152");
        assert_eq!(find("cpu.weight").unwrap(), "39");
        assert_eq!(find("cpu.max").unwrap(), "max 100000");
        assert_eq!(find("pids.max").unwrap(), "max");
        assert_eq!(find("io.weight").unwrap(), "4950");
        assert_eq!(find("io.max").unwrap(), "8:0 rbps=1000");
        assert_eq!(find("hugetlb.2MB.max").unwrap(), "4194304");
        assert_eq!(find("memory.high").unwrap(), "900000");
    }

    #[test]
    fn conversions_match_the_kernel_docs() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(blkio_weight_to_io(10), 1);
        assert_eq!(blkio_weight_to_io(1000), 10_000);
    }

    #[test]
    fn bad_values_are_refused_with_a_reason() {
        let r = res(r#"{"memory":{"limit":2000,"swap":1000}}"#);
        assert!(
            v1_writes(&r, None)
                .unwrap_err()
                .to_string()
                .contains("lower than")
        );
        assert!(v2_writes(&r).is_err());
        let r = res(r#"{"hugepageLimits":[{"pageSize":"2XB","limit":1}]}"#);
        assert!(v1_writes(&r, None).is_err());
        let r = res(r#"{"unified":{"../escape":"1"}}"#);
        assert!(v2_writes(&r).is_err());
        let r = res(r#"{"unified":{"memory.high":"1"}}"#);
        assert!(
            v1_writes(&r, None)
                .unwrap_err()
                .to_string()
                .contains("cgroup v2")
        );
        let r = res(r#"{"blockIO":{"weight":100}}"#);
        assert!(
            v1_writes(&r, None)
                .unwrap_err()
                .to_string()
                .contains("blkio.weight")
        );
    }

    #[test]
    fn device_rules() {
        let r = res(r#"{"devices":[{"allow":false,"access":"rwm"},
            {"allow":true,"type":"c","major":10,"minor":229,"access":"rw"}]}"#);
        let rules = container_device_rules(Some(&r), &[('c', 4, 64)]).unwrap();
        assert_eq!(rules[0].v1_line(), "a");
        assert!(!rules[0].allow);
        assert_eq!(rules[1].v1_line(), "c 10:229 rw");
        assert!(rules.iter().any(|r| r.v1_line() == "c 1:3 rwm"));
        assert_eq!(rules.last().unwrap().v1_line(), "c 4:64 rwm");
        let bad = res(r#"{"devices":[{"allow":true,"access":"rwx"}]}"#);
        assert!(container_device_rules(Some(&bad), &[]).is_err());
    }
}
