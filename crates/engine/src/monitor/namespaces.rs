//! Namespaces a container shares with another container or a pod sandbox,
//! and the environment its legacy links give it.

use super::*;

impl Monitor {
    /// Puts the environment of the container's links on the default
    /// bridge (as they run now) into the bundle, replacing what the last
    /// run added (its keys are kept in `link-env`); the container's own
    /// settings win.
    pub(super) fn apply_link_env(&self) -> Result<()> {
        let added_path = self.dir.join("link-env");
        let before: Vec<String> = fs::read(&added_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        if before.is_empty() && !self.record.networks.iter().any(|x| !x.links.is_empty()) {
            return Ok(());
        }
        let path = self.dir.join("config.json");
        let mut spec = crate::oci::read(&path)?;
        let key = |e: &str| e.split('=').next().unwrap_or(e).to_owned();
        let mut added = Vec::new();
        if let Some(p) = spec.process_mut() {
            let mut env: Vec<String> = p.env().clone().unwrap_or_default();
            env.retain(|e| !before.contains(&key(e)));
            let own: Vec<String> = env.iter().map(|e| key(e)).collect();
            for e in crate::network::link_env(&self.root, &self.record) {
                let k = key(&e);
                if !own.contains(&k) {
                    added.push(k);
                    env.push(e);
                }
            }
            p.set_env(Some(env));
        }
        crate::oci::write(&path, &spec)?;
        let json = serde_json::to_vec(&added).map_err(|e| Error::Internal(e.to_string()))?;
        crate::container::write_atomic(&added_path, &json).map_err(|e| sys_err("write link-env", e))
    }

    /// Points the namespaces this container shares with others
    /// (`container:` modes of `--network`, `--pid`, `--ipc`) at those
    /// containers' current inits, which must run; with the network come
    /// their /etc/hosts, resolv.conf and hostname, with IPC their /dev/shm.
    pub(super) fn join_shared_namespaces(&self) -> Result<()> {
        use crate::config::{IpcMode, NetworkMode, PidMode};
        use oci_spec::runtime::LinuxNamespaceType as T;
        let r = &self.record;
        let other = |m: Option<&String>| m.cloned();
        let shared = [
            (
                other(match &r.network {
                    NetworkMode::Container(c) => Some(c),
                    _ => None,
                }),
                T::Network,
                "network",
                "net",
            ),
            (
                other(match &r.namespaces.pid {
                    PidMode::Container(c) => Some(c),
                    _ => None,
                }),
                T::Pid,
                "pid",
                "pid",
            ),
            (
                other(match &r.namespaces.ipc {
                    IpcMode::Container(c) => Some(c),
                    _ => None,
                }),
                T::Ipc,
                "ipc",
                "ipc",
            ),
        ];
        if shared.iter().all(|(o, ..)| o.is_none()) {
            return Ok(());
        }
        let path = self.dir.join("config.json");
        let mut spec = crate::oci::read(&path)?;
        for (other, typ, kind, proc_name) in shared {
            let Some(other) = other else {
                continue;
            };
            let st = self.store.state_raw(&other).ok();
            let pid = st
                .filter(|s| matches!(s.status, Status::Running | Status::Paused) && s.pid > 0)
                .filter(|s| s.monitor_alive())
                .map(|s| s.pid)
                .ok_or_else(|| {
                    Error::Conflict(format!(
                        "cannot join {kind} namespace of a non running container: {other}"
                    ))
                })?;
            let ns = PathBuf::from(format!("/proc/{pid}/ns/{proc_name}"));
            if let Some(l) = spec.linux_mut()
                && let Some(list) = l.namespaces_mut()
            {
                for n in list.iter_mut().filter(|n| n.typ() == typ) {
                    n.set_path(Some(ns.clone()));
                }
            }
            if typ != T::Network {
                continue;
            }
            let other_etc = self.store.dir(&other).join("etc");
            for m in spec.mounts_mut().iter_mut().flatten() {
                let name = match m.destination().to_str() {
                    Some("/etc/hosts") => "hosts",
                    Some("/etc/resolv.conf") => "resolv.conf",
                    Some("/etc/hostname") => "hostname",
                    _ => continue,
                };
                m.set_source(Some(other_etc.join(name)));
            }
        }
        crate::oci::write(&path, &spec)
    }
}
