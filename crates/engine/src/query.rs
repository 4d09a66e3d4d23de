//! Reading containers: one by id, name or prefix (a container whose
//! monitor died is recorded as exited on the way: no ghost "running"), the
//! list, and what runs inside a running one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use berth_runtime::Runtime;

use crate::container::{Record, State, Status};
use crate::run::{Engine, Error, Result};

/// A container as `ps` and `inspect` see it.
#[derive(Clone, Debug)]
pub struct Container {
    /// Configuration.
    pub record: Record,
    /// State (ghosts already laid to rest).
    pub state: State,
    /// Its network endpoints while it runs on bridge networks.
    pub endpoints: Vec<berth_net::Endpoint>,
    /// Its directory.
    pub dir: PathBuf,
    /// The names of the networks it is on, by id.
    pub network_names: BTreeMap<String, String>,
    /// Which of them are the default bridge.
    pub network_defaults: BTreeSet<String>,
    /// Its execs (ids).
    pub exec_ids: Vec<String>,
}

impl Engine {
    pub(crate) fn runtime(&self) -> Result<Runtime> {
        Ok(Runtime::new(&self.runtime_root())?)
    }

    /// Resolves a container by id, name or id prefix.
    pub fn resolve(&self, key: &str) -> Result<String> {
        self.store.resolve(key)
    }

    /// A container with its state; a container whose monitor died is
    /// recorded as exited (no ghost "running").
    pub fn container(&self, key: &str) -> Result<Container> {
        let nets = self.network_index();
        self.container_with(key, &nets)
    }

    /// A container's state alone, by full id (no record, networks or
    /// execs read): what a poller needs. A container whose monitor died is
    /// recorded as exited first, as [`Engine::container`] does.
    pub fn container_state(&self, id: &str) -> Result<State> {
        let state = self.store.state_raw(id)?;
        if matches!(
            state.status,
            Status::Running | Status::Paused | Status::Restarting
        ) && !state.monitor_alive()
        {
            return self.bury(id);
        }
        Ok(state)
    }

    /// The bridge networks by id and name (id → (name, default)).
    fn network_index(&self) -> BTreeMap<String, (String, bool)> {
        let mut m = BTreeMap::new();
        if let Ok(net) = berth_net::Net::open(&self.root)
            && let Ok(list) = net.networks()
        {
            for n in list {
                m.insert(n.id.clone(), (n.name.clone(), n.default));
                m.insert(n.name, (n.id, n.default));
            }
        }
        m
    }

    fn container_with(
        &self,
        key: &str,
        nets: &BTreeMap<String, (String, bool)>,
    ) -> Result<Container> {
        let id = self.store.resolve(key)?;
        let record = self.store.record(&id)?;
        let mut state = self.store.state_raw(&id)?;
        if matches!(
            state.status,
            Status::Running | Status::Paused | Status::Restarting
        ) && !state.monitor_alive()
        {
            state = self.bury(&id)?;
        }
        let endpoints = if state.is_active() && record.bridged() {
            crate::network::endpoints(&self.root, &id)
        } else {
            Vec::new()
        };
        let mut network_names = BTreeMap::new();
        let mut network_defaults = BTreeSet::new();
        for x in &record.networks {
            // records hold network ids (old ones may hold names)
            let (nid, name, default) = match nets.get(&x.network) {
                Some((other, d)) if other.len() == 64 && x.network.len() != 64 => {
                    (other.clone(), x.network.clone(), *d)
                }
                Some((name, d)) => (x.network.clone(), name.clone(), *d),
                None => (x.network.clone(), x.network.clone(), false),
            };
            if default {
                network_defaults.insert(nid.clone());
                network_defaults.insert(x.network.clone());
            }
            network_names.insert(x.network.clone(), name.clone());
            network_names.insert(nid, name);
        }
        let dir = self.store.dir(&id);
        let exec_ids = crate::exec::ids(&dir);
        Ok(Container {
            record,
            state,
            endpoints,
            dir,
            network_names,
            network_defaults,
            exec_ids,
        })
    }

    /// Records a container whose monitor vanished as exited and removes
    /// what the runtime still holds for it.
    fn bury(&self, id: &str) -> Result<State> {
        let _l = self.store.lock(id)?;
        let mut s = self.store.state_raw(id)?;
        if !matches!(
            s.status,
            Status::Running | Status::Paused | Status::Restarting
        ) || s.monitor_alive()
        {
            return Ok(s);
        }
        if let Ok(rt) = self.runtime() {
            let _ = rt.delete(id, true);
        }
        crate::network::disconnect(&self.root, &self.store.dir(id), id);
        crate::container::unmount_shm(&self.store.dir(id));
        if let Ok(r) = self.store.record(id) {
            crate::volume_mount::release(&self.root, id, 0, &r.mounts);
        }
        s.status = Status::Exited;
        if s.exit_code == 0 {
            s.exit_code = 137;
        }
        s.pid = 0;
        s.error = "the container's monitor exited unexpectedly".into();
        s.finished_at = berth_runtime::state::now_rfc3339();
        s.monitor_pid = 0;
        self.store.save_state(id, &s)?;
        Ok(s)
    }

    /// Every container (`ps -a`), newest first.
    pub fn list(&self) -> Vec<Container> {
        let nets = self.network_index();
        let mut v: Vec<Container> = self
            .store
            .ids()
            .into_iter()
            .filter_map(|id| self.container_with(&id, &nets).ok())
            .collect();
        v.sort_by(|a, b| b.record.created.cmp(&a.record.created));
        v
    }

    /// The host pids of a running container's processes.
    pub fn pids(&self, key: &str) -> Result<Vec<i32>> {
        let c = self.container(key)?;
        if !c.state.is_active() {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                c.record.id
            )));
        }
        Ok(self.runtime()?.pids(&c.record.id)?)
    }

    /// Cgroup statistics of a running container.
    pub fn stats(&self, key: &str) -> Result<berth_runtime::cgroups::stats::Stats> {
        let c = self.container(key)?;
        Ok(self.runtime()?.stats(&c.record.id)?)
    }
}
