//! A container's life: start (through a new monitor), stop, kill,
//! remove, wait, pause, rename, resize and update. Safe for several
//! processes at once (the CLI and a daemon on one root): state changes
//! happen under the container's lock and the running container belongs to
//! its monitor.

use std::time::{Duration, Instant};

use crate::config::{Resources, RestartPolicy, Signal};
use crate::container::{Record, Status};
use crate::monitor;
use crate::run::{Engine, Error, Result};

impl Engine {
    /// Records a container event.
    pub(crate) fn event(&self, r: &Record, action: &str, extra: &[(&str, String)]) {
        let mut a = crate::events::container_attributes(r);
        for (k, v) in extra {
            a.insert((*k).to_owned(), v.clone());
        }
        crate::events::emit(&self.root, "container", action, &r.id, a);
    }

    /// Starts a created or exited container through a new monitor.
    /// `before_start` runs when the container exists and waits (connect
    /// attach streams there).
    pub fn start(&self, key: &str, before_start: impl FnOnce() -> Result<()>) -> Result<()> {
        let mut c = self.container(key)?;
        let id = c.record.id.clone();
        // the monitor of the last run may still be finishing (its clients,
        // its clean-up): the next run starts once it is gone, so the two
        // never write the same state
        let end = Instant::now() + Duration::from_secs(10);
        while matches!(c.state.status, Status::Exited | Status::Created)
            && c.state.monitor_alive()
            && Instant::now() < end
        {
            std::thread::sleep(Duration::from_millis(5));
            c = self.container(&id)?;
        }
        match c.state.status {
            Status::Running | Status::Restarting if c.state.monitor_alive() => {
                return Err(Error::NotModified("container already started".into()));
            }
            Status::Paused => {
                return Err(Error::Conflict(
                    "cannot start a paused container, try unpause instead".into(),
                ));
            }
            Status::Removing | Status::Dead => {
                return Err(Error::Conflict(format!(
                    "container {id} is marked for removal and cannot be started"
                )));
            }
            _ => {}
        }
        if let crate::config::NetworkMode::Container(other) = &c.record.network {
            let running = self
                .container(other)
                .is_ok_and(|o| o.state.status == Status::Running);
            if !running {
                return Err(Error::Conflict(format!(
                    "cannot join network of a non running container: {other}"
                )));
            }
        }
        if let Err(e) = self.check_start(&c.record) {
            // dockerd removes an `--rm` container whose start failed
            if c.record.auto_remove {
                let _ = self.remove(&id, true, true);
            }
            return Err(e);
        }
        crate::exec::forget_ended(&self.root, &self.store.dir(&id));
        // The image must still be there (rmi refuses while we exist).
        monitor::spawn(&self.root, &id, before_start)
    }

    /// What must hold before a container starts: its links run, its pod
    /// sandbox is ready.
    fn check_start(&self, r: &Record) -> Result<()> {
        crate::network::check_links(&self.root, r)?;
        let pid_sandbox = match &r.namespaces.pid {
            crate::config::PidMode::Sandbox(sb) => Some(sb),
            _ => None,
        };
        if let Some(sb) = pid_sandbox
            && !crate::sandbox::PodRuntime::sandbox(self, sb)?.pause_alive()
        {
            return Err(Error::Conflict(format!(
                "the process namespace of the pod sandbox {sb} of container {} is gone \
                 (its pause process is not running)",
                r.id
            )));
        }
        if let crate::config::NetworkMode::Sandbox(sb) = &r.network
            && crate::sandbox::PodRuntime::sandbox(self, sb)?.state
                != crate::sandbox::SandboxState::Ready
        {
            return Err(Error::Conflict(format!(
                "the pod sandbox {sb} of container {} is not ready",
                r.id
            )));
        }
        Ok(())
    }

    /// Stops a container: its stop signal, then SIGKILL after `timeout`
    /// seconds (None: the container's stop timeout, or 10).
    pub fn stop(&self, key: &str, timeout: Option<i64>) -> Result<()> {
        let c = self.container(key)?;
        let id = c.record.id.clone();
        if !c.state.is_active() {
            return Err(Error::NotModified("container already stopped".into()));
        }
        self.store.update_state(&id, |s| s.manual_stop = true)?;
        let timeout = timeout.or(c.record.stop_timeout).unwrap_or(10);
        if c.state.status == Status::Restarting {
            // the monitor sees manual_stop while it waits
            self.wake(&id);
            self.wait_inactive(&id, Duration::from_secs(5));
            return Ok(());
        }
        let rt = self.runtime()?;
        if c.state.status == Status::Paused {
            let _ = rt.resume(&id);
        }
        let sig = c.record.stop_signal.unwrap_or(Signal::TERM).number();
        self.event(&c.record, "kill", &[("signal", sig.to_string())]);
        let _ = rt.kill(&id, sig, false);
        let limit = if timeout < 0 {
            Duration::from_secs(u64::MAX / 4)
        } else {
            Duration::from_secs(timeout as u64)
        };
        if !self.wait_inactive(&id, limit) {
            self.event(&c.record, "kill", &[("signal", "9".into())]);
            let killed = rt.kill(&id, 9, true);
            if !self.wait_inactive(&id, Duration::from_secs(10)) {
                let why = killed.err().map(|e| format!(": {e}")).unwrap_or_default();
                return Err(Error::Conflict(format!(
                    "cannot stop container {key}: it still runs after SIGKILL{why}"
                )));
            }
        }
        self.event(&c.record, "stop", &[]);
        Ok(())
    }

    fn wake(&self, id: &str) {
        let _ = monitor::connect(&self.store.dir(id), &monitor::Request::Wake);
    }

    /// Waits until the container's run is over (or `limit` passes).
    fn wait_inactive(&self, id: &str, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        loop {
            match self.store.state_raw(id) {
                Ok(s)
                    if matches!(s.status, Status::Running | Status::Paused)
                        && s.monitor_alive() => {}
                Ok(s) if s.status == Status::Restarting && s.monitor_alive() && !s.manual_stop => {}
                Ok(s) if s.status == Status::Restarting && s.monitor_alive() => {}
                _ => return true,
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends a signal (`None`: SIGKILL) to a running container.
    pub fn kill(&self, key: &str, signal: Option<Signal>) -> Result<()> {
        let c = self.container(key)?;
        let id = c.record.id.clone();
        let sig = signal.unwrap_or(Signal::KILL).number();
        if !c.state.is_active() || c.state.status == Status::Restarting {
            return Err(Error::Conflict(format!(
                "Cannot kill container: {key}: Container {id} is not running"
            )));
        }
        if sig == 9 {
            // docker: a killed container is not restarted by its policy
            self.store.update_state(&id, |s| s.manual_stop = true)?;
        }
        self.runtime()?.kill(&id, sig, false)?;
        self.event(&c.record, "kill", &[("signal", sig.to_string())]);
        if sig == 9 {
            self.wait_inactive(&id, Duration::from_secs(10));
        }
        Ok(())
    }

    /// Removes a container (`force`: even a running one; `volumes`: its
    /// anonymous volumes too, as `rm -v`).
    pub fn remove(&self, key: &str, force: bool, volumes: bool) -> Result<()> {
        let c = self.container(key)?;
        let id = c.record.id.clone();
        if c.state.is_active() {
            if !force {
                let what = if c.state.status == Status::Paused {
                    "paused"
                } else {
                    "running"
                };
                return Err(Error::Conflict(format!(
                    "You cannot remove a {what} container {id}. Stop the container before \
                     attempting removal or force remove"
                )));
            }
            self.store.update_state(&id, |s| s.manual_stop = true)?;
            let rt = self.runtime()?;
            if c.state.status == Status::Paused {
                let _ = rt.resume(&id);
            }
            let _ = rt.kill(&id, 9, true);
            self.wake(&id);
            if !self.wait_inactive(&id, Duration::from_secs(15)) {
                return Err(Error::Conflict(format!(
                    "could not kill running container {id}, cannot remove"
                )));
            }
            if c.record.auto_remove {
                // its monitor removes it
                let end = Instant::now() + Duration::from_secs(10);
                while self.store.dir(&id).exists() && Instant::now() < end {
                    std::thread::sleep(Duration::from_millis(10));
                }
                return Ok(());
            }
        }
        let _l = self.store.lock(&id)?;
        if let Ok(rt) = self.runtime() {
            let _ = rt.delete(&id, true);
        }
        if c.record.bridged() {
            crate::network::disconnect(&self.root, &self.store.dir(&id), &id);
        }
        self.store.remove(&c.record)?;
        self.event(&c.record, "destroy", &[]);
        if volumes {
            self.remove_anonymous_volumes(&c.record.mounts);
        }
        Ok(())
    }

    /// Sets the terminal size of a running container.
    pub fn resize(&self, key: &str, height: u16, width: u16) -> Result<()> {
        let c = self.container(key)?;
        if !c.state.is_active() {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                c.record.id
            )));
        }
        monitor::connect(
            &self.store.dir(&c.record.id),
            &monitor::Request::Resize(height, width),
        );
        self.event(
            &c.record,
            "resize",
            &[("height", height.to_string()), ("width", width.to_string())],
        );
        Ok(())
    }

    /// Renames a container.
    pub fn rename(&self, key: &str, new: &str) -> Result<()> {
        let c = self.container(key)?;
        let new = new.strip_prefix('/').unwrap_or(new);
        if new == c.record.name {
            return Err(Error::Invalid(
                "Renaming a container with the same name as its current name".into(),
            ));
        }
        self.store.claim_name(new, &c.record.id)?;
        let _l = self.store.lock(&c.record.id)?;
        let mut r = self.store.record(&c.record.id)?;
        let old = r.name.clone();
        r.name = new.to_owned();
        if let Err(e) = self.store.save_record(&r) {
            self.store.release_name(new, &c.record.id);
            return Err(e);
        }
        self.store.release_name(&old, &c.record.id);
        self.event(&r, "rename", &[("oldName", format!("/{old}"))]);
        Ok(())
    }

    /// Freezes a running container.
    pub fn pause(&self, key: &str) -> Result<()> {
        let c = self.container(key)?;
        if c.state.status == Status::Paused {
            return Err(Error::Conflict(format!(
                "Container {} is already paused",
                c.record.id
            )));
        }
        if c.state.status != Status::Running || !c.state.monitor_alive() {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                c.record.id
            )));
        }
        self.runtime()?.pause(&c.record.id)?;
        self.store
            .update_state(&c.record.id, |s| s.status = Status::Paused)?;
        self.event(&c.record, "pause", &[]);
        Ok(())
    }

    /// Thaws a paused container.
    pub fn unpause(&self, key: &str) -> Result<()> {
        let c = self.container(key)?;
        if c.state.status != Status::Paused {
            return Err(Error::Conflict(format!(
                "Container {} is not paused",
                c.record.id
            )));
        }
        self.runtime()?.resume(&c.record.id)?;
        self.store
            .update_state(&c.record.id, |s| s.status = Status::Running)?;
        self.event(&c.record, "unpause", &[]);
        Ok(())
    }

    /// `docker update`: new limits (the non-zero fields of `res`; a pids
    /// limit when given) written to the running container's cgroup and its
    /// bundle (so the next start keeps them), and a new restart policy.
    pub fn update(&self, key: &str, res: &Resources, restart: Option<RestartPolicy>) -> Result<()> {
        let c = self.container(key)?;
        let id = c.record.id.clone();
        let _l = self.store.lock(&id)?;
        let mut rec = self.store.record(&id)?;
        let mut r = rec.resources.clone();
        if res.memory > 0 && res.memory_swap == 0 && r.memory_swap > 0 && res.memory > r.memory_swap
        {
            return Err(Error::Conflict(format!(
                "Cannot update container {id}: Memory limit should be smaller than already set \
                 memoryswap limit, update the memoryswap at the same time"
            )));
        }
        for (dst, src) in [
            (&mut r.memory, res.memory),
            (&mut r.memory_swap, res.memory_swap),
            (&mut r.memory_reservation, res.memory_reservation),
            (&mut r.nano_cpus, res.nano_cpus),
            (&mut r.cpu_shares, res.cpu_shares),
            (&mut r.cpu_period, res.cpu_period),
            (&mut r.cpu_quota, res.cpu_quota),
        ] {
            if src != 0 {
                *dst = src;
            }
        }
        if !res.cpuset_cpus.is_empty() {
            r.cpuset_cpus = res.cpuset_cpus.clone();
        }
        if !res.cpuset_mems.is_empty() {
            r.cpuset_mems = res.cpuset_mems.clone();
        }
        if res.pids_limit.is_some() {
            r.pids_limit = res.pids_limit.filter(|p| *p > 0);
        }
        if res.blkio_weight != 0 {
            if !crate::create::blkio_weight_supported() {
                return Err(Error::Invalid(
                    "Your kernel does not support Block I/O weight or the cgroup is not mounted"
                        .into(),
                ));
            }
            r.blkio_weight = res.blkio_weight;
        }
        if res.nano_cpus > 0 {
            r.cpu_period = 0;
            r.cpu_quota = 0;
        }
        let mut limits = crate::oci::resources(&r).map_err(Error::Invalid)?;
        if let Some(p) = restart
            && rec.auto_remove
            && p != RestartPolicy::No
        {
            return Err(Error::Invalid(
                "Restart policy cannot be updated because AutoRemove is enabled for the container"
                    .into(),
            ));
        }
        // the bundle: limits for the next start, the device rules kept
        let cfg_path = self.store.dir(&id).join("config.json");
        let mut spec = crate::oci::read(&cfg_path)?;
        let linux = spec
            .linux_mut()
            .as_mut()
            .ok_or_else(|| Error::Internal("config.json has no linux section".into()))?;
        let devices = linux.resources().as_ref().and_then(|r| r.devices().clone());
        if c.state.is_active() {
            self.runtime()?.update(&id, &limits)?;
        }
        limits.set_devices(devices);
        linux.set_resources(Some(limits));
        crate::oci::write(&cfg_path, &spec)?;
        rec.resources = r;
        if let Some(p) = restart {
            rec.restart_policy = p;
        }
        self.store.save_record(&rec)?;
        self.event(&rec, "update", &[]);
        Ok(())
    }
}
