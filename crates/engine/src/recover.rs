//! Putting a root back in order: [`Engine::sweep`] (at every open) removes
//! what killed operations left half-made; [`Engine::recover`] (when a
//! daemon, server or agent starts) also lays dead containers to rest,
//! restores the networks of living ones, and starts the containers whose
//! restart policy says so.

use std::fs;

use crate::config::RestartPolicy;
use crate::container::{CREATING, process_start};
use crate::run::Engine;

/// What [`Engine::recover`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Half-made containers and sandboxes removed.
    pub swept: Vec<String>,
    /// Containers started by their restart policy.
    pub restarted: Vec<String>,
    /// What could not be done (logged; recovery goes on).
    pub errors: Vec<String>,
}

/// Whether the `creating` mark in `dir` names a process that is gone.
fn creator_gone(dir: &std::path::Path) -> bool {
    match fs::read_to_string(dir.join(CREATING)) {
        Ok(s) => {
            let mut it = s.split_whitespace();
            let pid: i32 = it.next().and_then(|p| p.parse().ok()).unwrap_or(0);
            let start: u64 = it.next().and_then(|p| p.parse().ok()).unwrap_or(0);
            process_start(pid) != Some(start)
        }
        Err(_) => false,
    }
}

impl Engine {
    /// Removes containers and sandboxes whose creating process was killed
    /// before it finished (they never show in `ps -a`); returns their ids.
    /// Cheap when there are none: one directory read each.
    pub fn sweep(&self) -> Vec<String> {
        let mut swept = Vec::new();
        for e in fs::read_dir(self.root.join("containers"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let dir = e.path();
            if dir.join("container.json").exists() || !creator_gone(&dir) {
                continue;
            }
            let id = e.file_name().to_string_lossy().into_owned();
            // its name, if it claimed one
            for n in fs::read_dir(self.root.join("names"))
                .into_iter()
                .flatten()
                .flatten()
            {
                if fs::read_link(n.path()).is_ok_and(|t| t.as_os_str() == id.as_str()) {
                    let _ = fs::remove_file(n.path());
                }
            }
            let _ = self.runtime().map(|rt| rt.delete(&id, true));
            crate::network::disconnect(&self.root, &dir, &id);
            crate::container::unmount_shm(&dir);
            if berth_image::unpack::remove_tree(&dir).is_ok() {
                swept.push(id);
            }
        }
        for e in fs::read_dir(self.root.join("sandboxes"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let dir = e.path();
            if !creator_gone(&dir) {
                continue;
            }
            let id = e.file_name().to_string_lossy().into_owned();
            self.sweep_sandbox(&id);
            swept.push(id);
        }
        swept
    }

    /// Lays a root to rest after a restart: sweeps half-made objects,
    /// records containers whose monitor died as exited (taking them off
    /// their networks), restores the bridges and rules of the living ones
    /// (after a reboot the kernel has none), then starts `always`
    /// containers that do not run, and `unless-stopped` ones a user did not
    /// stop, as dockerd does at its start.
    pub fn recover(&self) -> Recovery {
        let mut r = Recovery {
            swept: self.sweep(),
            ..Default::default()
        };
        // listing buries the dead
        let all = self.list();
        if self.root.join("networks").exists()
            && let Err(e) = berth_net::Net::open(&self.root).and_then(|n| n.restore())
        {
            r.errors.push(format!("restore the networks: {e}"));
        }
        for c in all.iter().filter(|c| !c.state.is_active()) {
            let wanted = match c.record.restart_policy {
                RestartPolicy::Always => true,
                RestartPolicy::UnlessStopped => !c.state.manual_stop,
                _ => false,
            };
            // a pod's containers are the node agent's to start
            if !wanted || c.record.sandbox.is_some() {
                continue;
            }
            match self.start(&c.record.id, || Ok(())) {
                Ok(()) => r.restarted.push(c.record.name.clone()),
                Err(e) => r
                    .errors
                    .push(format!("restart {} by its policy: {e}", c.record.name)),
            }
        }
        r
    }
}
