//! Device nodes and device cgroup rules: `--device`, `--device-cgroup-rule`
//! and the host's devices of a privileged container.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::PathBuf;

use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};

use crate::config::{DeviceMapping, DevicePerms, DeviceRule};

fn node(path: &str, typ: LinuxDeviceType, rdev: u64, mode: u32, uid: u32, gid: u32) -> LinuxDevice {
    let mut d = LinuxDevice::default();
    d.set_path(PathBuf::from(path))
        .set_typ(typ)
        .set_major(i64::from(rustix::fs::major(rdev)))
        .set_minor(i64::from(rustix::fs::minor(rdev)))
        .set_file_mode(Some(mode & 0o7777))
        .set_uid(Some(uid))
        .set_gid(Some(gid));
    d
}

/// An allow rule.
pub fn allow(
    typ: Option<LinuxDeviceType>,
    major: Option<i64>,
    minor: Option<i64>,
    access: DevicePerms,
) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(true)
        .set_typ(typ)
        .set_major(major)
        .set_minor(minor)
        .set_access(Some(access.to_string()));
    r
}

/// The rule that denies every device (the runtime's defaults are allowed
/// after it).
pub fn deny_all() -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(false).set_access(Some("rwm".into()));
    r
}

/// The host's device nodes (top of /dev and its subdirectories), for a
/// privileged container; the runtime's defaults (null, zero, …) left out.
pub fn host_devices() -> Vec<LinuxDevice> {
    const DEFAULTS: &[&str] = &[
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/random",
        "/dev/urandom",
        "/dev/tty",
        "/dev/console",
        "/dev/ptmx",
    ];
    let mut out = Vec::new();
    let mut dirs = vec![PathBuf::from("/dev")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let Ok(m) = p.symlink_metadata() else {
                continue;
            };
            let ft = m.file_type();
            if ft.is_dir() && !matches!(p.to_str(), Some("/dev/pts" | "/dev/shm" | "/dev/mqueue")) {
                dirs.push(p);
                continue;
            }
            let typ = if ft.is_char_device() {
                LinuxDeviceType::C
            } else if ft.is_block_device() {
                LinuxDeviceType::B
            } else {
                continue;
            };
            let Some(path) = p.to_str() else {
                continue;
            };
            if DEFAULTS.contains(&path) {
                continue;
            }
            out.push(node(path, typ, m.rdev(), m.mode(), m.uid(), m.gid()));
        }
    }
    out
}

/// `--device` entries as OCI device nodes and the cgroup rules that give
/// exactly their permissions.
pub fn devices(
    specs: &[DeviceMapping],
) -> Result<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>), String> {
    let mut nodes = Vec::new();
    let mut rules = Vec::new();
    for d in specs {
        if !d.host.starts_with('/') || !d.container.starts_with('/') {
            return Err(format!(
                "invalid device specification: {}:{} (paths must be absolute)",
                d.host, d.container
            ));
        }
        let m = std::fs::metadata(&d.host).map_err(|e| {
            format!(
                "error gathering device information while adding custom device \"{}\": {e}",
                d.host
            )
        })?;
        let ft = m.file_type();
        let typ = if ft.is_char_device() {
            LinuxDeviceType::C
        } else if ft.is_block_device() {
            LinuxDeviceType::B
        } else {
            return Err(format!("{} is not a device node", d.host));
        };
        let rdev = m.rdev();
        nodes.push(node(&d.container, typ, rdev, m.mode(), 0, 0));
        rules.push(allow(
            Some(typ),
            Some(i64::from(rustix::fs::major(rdev))),
            Some(i64::from(rustix::fs::minor(rdev))),
            d.permissions,
        ));
    }
    Ok((nodes, rules))
}

/// A `--device-cgroup-rule` as an OCI allow rule.
pub fn cgroup_rule(r: &DeviceRule) -> Result<LinuxDeviceCgroup, String> {
    let typ = match r.kind {
        'a' => LinuxDeviceType::A,
        'b' => LinuxDeviceType::B,
        'c' => LinuxDeviceType::C,
        other => return Err(format!("invalid device cgroup rule type: {other:?}")),
    };
    Ok(allow(Some(typ), r.major, r.minor, r.access))
}
