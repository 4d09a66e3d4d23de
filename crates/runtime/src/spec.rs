//! Reading a bundle's `config.json`, validating it, and the default spec
//! `berth oci spec` writes.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, Result};

/// A loaded bundle.
#[derive(Debug)]
pub struct Bundle {
    /// Absolute path of the bundle directory.
    pub dir: PathBuf,
    /// The parsed configuration.
    pub spec: Spec,
    /// Absolute, canonical path of the root filesystem.
    pub rootfs: PathBuf,
}

/// Reads and validates `<dir>/config.json`.
pub fn load_bundle(dir: &Path) -> Result<Bundle> {
    let dir = std::path::absolute(dir)
        .map_err(|e| Error::Invalid(format!("bundle path {}: {e}", dir.display())))?;
    match fs::metadata(&dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Error::Invalid(format!(
                "bundle {} is not a directory",
                dir.display()
            )));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::Invalid(format!(
                "bundle {} does not exist",
                dir.display()
            )));
        }
        Err(e) => return Err(Error::Invalid(format!("bundle {}: {e}", dir.display()))),
    }
    let path = dir.join("config.json");
    let text = match fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::Invalid(format!(
                "{} does not exist (a bundle needs a config.json; `berth oci spec` writes one)",
                path.display()
            )));
        }
        Err(e) => return Err(Error::Invalid(format!("read {}: {e}", path.display()))),
    };
    let spec = parse_spec(&text).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
    validate(&spec)?;
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::Invalid("config.json: root is required".into()))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        dir.join(root.path())
    };
    let rootfs = fs::canonicalize(&rootfs)
        .map_err(|e| Error::Invalid(format!("root.path {}: {e}", rootfs.display())))?;
    if !rootfs.is_dir() {
        return Err(Error::Invalid(format!(
            "root.path {} is not a directory",
            rootfs.display()
        )));
    }
    Ok(Bundle { dir, spec, rootfs })
}

/// Parses config.json text; the message names the field and position.
pub fn parse_spec(text: &[u8]) -> std::result::Result<Spec, String> {
    if text.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err("invalid config: the top level must be a JSON object".into());
    }
    serde_json::from_slice::<Spec>(text).map_err(|e| match e.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            format!("invalid JSON: {e}")
        }
        _ => format!("invalid config: {e}"),
    })
}

/// Namespaced sysctls and the namespace each one needs.
pub fn sysctl_namespace(key: &str) -> Option<LinuxNamespaceType> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        Some(LinuxNamespaceType::Ipc)
    } else if key.starts_with("net.") {
        Some(LinuxNamespaceType::Network)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some(LinuxNamespaceType::Uts)
    } else {
        None
    }
}

/// Whether the spec creates (not joins) a namespace of type `t`.
pub fn creates_ns(spec: &Spec, t: LinuxNamespaceType) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == t && n.path().is_none()))
}

/// Whether the spec has a namespace of type `t` (created or joined).
pub fn has_ns(spec: &Spec, t: LinuxNamespaceType) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == t))
}

/// Checks what can be checked without touching the system.
pub fn validate(spec: &Spec) -> Result<()> {
    let bad = |m: String| Err(Error::Invalid(format!("config.json: {m}")));
    let version = spec.version();
    if !version.starts_with("1.") {
        return bad(format!(
            "ociVersion {version:?} is not a 1.x runtime-spec version"
        ));
    }
    let Some(process) = spec.process() else {
        return bad("process is required".into());
    };
    if process.args().as_ref().is_none_or(|a| a.is_empty())
        && process.command_line().as_ref().is_none_or(|c| c.is_empty())
    {
        return bad("process.args must not be empty".into());
    }
    if !process.cwd().is_absolute() {
        return bad(format!(
            "process.cwd {:?} must be an absolute path",
            process.cwd()
        ));
    }
    for e in process.env().iter().flatten() {
        if !e.contains('=') {
            return bad(format!("process.env entry {e:?} is not KEY=value"));
        }
    }
    if let Some(adj) = process.oom_score_adj()
        && !(-1000..=1000).contains(&adj)
    {
        return bad(format!(
            "process.oomScoreAdj {adj} is out of range -1000..=1000"
        ));
    }
    let mut seen = HashSet::new();
    for r in process.rlimits().iter().flatten() {
        if !seen.insert(r.typ().to_string()) {
            return bad(format!("process.rlimits lists {:?} twice", r.typ()));
        }
        if r.soft() > r.hard() {
            return bad(format!(
                "process.rlimits {:?}: soft limit {} is above the hard limit {}",
                r.typ(),
                r.soft(),
                r.hard()
            ));
        }
    }
    let linux = spec.linux().as_ref();
    let namespaces = linux.and_then(|l| l.namespaces().as_ref());
    let mut types = HashSet::new();
    for ns in namespaces.iter().copied().flatten() {
        if !types.insert(ns.typ()) {
            return bad(format!("namespace {:?} is listed twice", ns.typ()));
        }
        if let Some(p) = ns.path()
            && !p.is_absolute()
        {
            return bad(format!("namespace path {} must be absolute", p.display()));
        }
    }
    let has_userns = types.contains(&LinuxNamespaceType::User);
    let has_maps = linux.is_some_and(|l| {
        l.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
            || l.gid_mappings().as_ref().is_some_and(|m| !m.is_empty())
    });
    if has_maps && !has_userns {
        return bad("uidMappings/gidMappings need a user namespace".into());
    }
    if creates_ns(spec, LinuxNamespaceType::User)
        && linux.is_none_or(|l| {
            l.uid_mappings().as_ref().is_none_or(|m| m.is_empty())
                || l.gid_mappings().as_ref().is_none_or(|m| m.is_empty())
        })
    {
        return bad("a new user namespace needs uidMappings and gidMappings".into());
    }
    if (spec.hostname().as_ref().is_some_and(|h| !h.is_empty())
        || spec.domainname().as_ref().is_some_and(|h| !h.is_empty()))
        && !types.contains(&LinuxNamespaceType::Uts)
    {
        return bad("hostname and domainname need a UTS namespace".into());
    }
    for (key, value) in linux
        .and_then(|l| l.sysctl().as_ref())
        .into_iter()
        .flatten()
    {
        let Some(need) = sysctl_namespace(key) else {
            return bad(format!(
                "sysctl {key:?} is not namespaced: a container may only set sysctls that \
                 belong to its own ipc, network or uts namespace"
            ));
        };
        if !creates_ns(spec, need) && !has_ns(spec, need) {
            return bad(format!("sysctl {key:?} needs a private {need:?} namespace"));
        }
        if key.contains('/') || key.contains("..") || key.contains('=') {
            return bad(format!("sysctl name {key:?} is malformed"));
        }
        if value.contains('+') || value.contains('=') || value.contains('\n') {
            return bad(format!(
                "sysctl {key:?}: value {value:?} contains '+', '=' or a newline"
            ));
        }
    }
    if let Some(hooks) = spec.hooks() {
        let all = [
            hooks.prestart(),
            hooks.create_runtime(),
            hooks.create_container(),
            hooks.start_container(),
            hooks.poststart(),
            hooks.poststop(),
        ];
        for h in all.into_iter().flatten().flatten() {
            if !h.path().is_absolute() {
                return bad(format!("hook path {} must be absolute", h.path().display()));
            }
            if h.timeout().is_some_and(|t| t <= 0) {
                return bad(format!("hook {} has a timeout <= 0", h.path().display()));
            }
        }
    }
    for m in spec.mounts().iter().flatten() {
        let d = m.destination();
        if d.as_os_str().is_empty() {
            return bad("a mount has an empty destination".into());
        }
    }
    Ok(())
}

/// The spec `berth oci spec` writes: runc's defaults, plus a cgroup
/// namespace.
pub fn default_spec_json(rootless: bool) -> String {
    let mut v: serde_json::Value = serde_json::from_str(DEFAULT_SPEC).expect("valid default spec");
    if rootless {
        let uid = rustix::process::getuid().as_raw();
        let gid = rustix::process::getgid().as_raw();
        let linux = v["linux"].as_object_mut().expect("linux");
        linux.insert(
            "uidMappings".into(),
            serde_json::json!([{"containerID": 0, "hostID": uid, "size": 1}]),
        );
        linux.insert(
            "gidMappings".into(),
            serde_json::json!([{"containerID": 0, "hostID": gid, "size": 1}]),
        );
        linux["namespaces"]
            .as_array_mut()
            .expect("namespaces")
            .retain(|n| n["type"] != "network" && n["type"] != "cgroup");
        linux["namespaces"]
            .as_array_mut()
            .expect("namespaces")
            .push(serde_json::json!({"type": "user"}));
        linux.remove("resources");
        let mounts = v["mounts"].as_array_mut().expect("mounts");
        mounts.retain(|m| m["type"] != "cgroup");
        for m in mounts.iter_mut() {
            if m["destination"] == "/sys" {
                *m = serde_json::json!({"destination": "/sys", "type": "none", "source": "/sys",
                    "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
            }
            if let Some(opts) = m["options"].as_array_mut() {
                opts.retain(|o| o != "gid=5");
            }
        }
    }
    serde_json::to_string_pretty(&v).expect("serialisable")
}

const DEFAULT_SPEC: &str = r#"{
  "ociVersion": "1.2.0",
  "process": {
    "terminal": true,
    "user": {"uid": 0, "gid": 0},
    "args": ["sh"],
    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
    "cwd": "/",
    "capabilities": {
      "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    },
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
    "noNewPrivileges": true
  },
  "root": {"path": "rootfs", "readonly": true},
  "hostname": "berth",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
     "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs",
     "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
     "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
  ],
  "linux": {
    "resources": {"devices": [{"allow": false, "access": "rwm"}]},
    "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"},
                   {"type": "mount"}, {"type": "cgroup"}],
    "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
      "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
      "/sys/firmware", "/proc/scsi"],
    "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
  }
}"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with(patch: impl FnOnce(&mut serde_json::Value)) -> Spec {
        let mut v: serde_json::Value = serde_json::from_str(DEFAULT_SPEC).unwrap();
        patch(&mut v);
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_default_spec_is_valid() {
        let s: Spec = serde_json::from_str(&default_spec_json(false)).unwrap();
        validate(&s).unwrap();
        let s: Spec = serde_json::from_str(&default_spec_json(true)).unwrap();
        validate(&s).unwrap();
    }

    #[test]
    fn rejects_non_namespaced_and_injected_sysctls() {
        let s = spec_with(|v| {
            v["linux"]["sysctl"] = serde_json::json!({"kernel.core_pattern": "|/evil"})
        });
        assert!(
            validate(&s)
                .unwrap_err()
                .to_string()
                .contains("not namespaced")
        );
        let s = spec_with(|v| {
            v["linux"]["sysctl"] =
                serde_json::json!({"kernel.shm_rmid_forced": "1+kernel.core_pattern=|/evil"})
        });
        assert!(
            validate(&s)
                .unwrap_err()
                .to_string()
                .contains("contains '+'")
        );
        let s = spec_with(|v| {
            v["linux"]["sysctl"] = serde_json::json!({"kernel.shm_rmid_forced": "1",
                "net.ipv4.ip_unprivileged_port_start": "0"})
        });
        validate(&s).unwrap();
        let s = spec_with(|v| {
            v["linux"]["namespaces"] = serde_json::json!([{"type": "mount"}, {"type": "uts"}]);
            v["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward": "1"});
        });
        assert!(validate(&s).unwrap_err().to_string().contains("private"));
    }

    #[test]
    fn rejects_bad_process_settings() {
        let s = spec_with(|v| v["process"]["args"] = serde_json::json!([]));
        assert!(validate(&s).is_err());
        let s = spec_with(|v| v["process"]["cwd"] = serde_json::json!("relative"));
        assert!(validate(&s).unwrap_err().to_string().contains("absolute"));
        let s = spec_with(|v| {
            v["process"]["rlimits"] =
                serde_json::json!([{"type": "RLIMIT_NOFILE", "hard": 10, "soft": 20}])
        });
        assert!(validate(&s).unwrap_err().to_string().contains("soft limit"));
        let s = spec_with(|v| v["process"]["oomScoreAdj"] = serde_json::json!(5000));
        assert!(validate(&s).is_err());
        let s = spec_with(|v| v["ociVersion"] = serde_json::json!("2.0.0"));
        assert!(validate(&s).is_err());
    }

    #[test]
    fn namespace_rules() {
        let s = spec_with(|v| {
            v["linux"]["namespaces"] = serde_json::json!([{"type": "mount"}, {"type": "mount"}])
        });
        assert!(validate(&s).unwrap_err().to_string().contains("twice"));
        let s = spec_with(|v| {
            v["linux"]["namespaces"] = serde_json::json!([{"type": "mount"}, {"type": "user"}])
        });
        assert!(
            validate(&s)
                .unwrap_err()
                .to_string()
                .contains("uidMappings")
        );
        let s = spec_with(|v| v["linux"]["namespaces"] = serde_json::json!([{"type": "mount"}]));
        assert!(validate(&s).unwrap_err().to_string().contains("UTS"));
    }

    #[test]
    fn parse_errors_name_the_problem() {
        assert!(
            parse_spec(b"{not json")
                .unwrap_err()
                .contains("invalid JSON")
        );
        assert!(parse_spec(b"[]").unwrap_err().contains("JSON object"));
        let e = parse_spec(br#"{"ociVersion":"1.0.0","process":{"args":"sh"}}"#).unwrap_err();
        assert!(e.contains("invalid config"), "{e}");
    }
}
