//! Creating a container from a [`ContainerSpec`]: the request is checked
//! and resolved against the image and the other containers, a name is
//! claimed, volumes are made, the bundle (`config.json`, the overlay, the
//! /etc files) is written and the record saved. Nothing runs yet: the
//! monitor does that at start. A failed create leaves nothing behind.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use berth_image::db::ImageRecord;
use berth_types::image::ImageConfig;

use crate::config::{
    ContainerSpec, EndpointSpec, HostAddr, IpcMode, MountKind, NetworkMode, PidMode, PortProto,
    RestartPolicy, Signal, UtsMode,
};
use crate::container::{CREATING, Record, SHM_DIR, State, random_name};
use crate::monitor::ROOTFS_FILE;
use crate::run::{Engine, Error, Result, new_id};
use crate::volumes::{self, MountPoint};

/// A new container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    /// Its id.
    pub id: String,
    /// What was asked for but cannot be honoured here (docker's warnings).
    pub warnings: Vec<String>,
}

/// Whether the kernel offers a block I/O weight (docker discards
/// `--blkio-weight` with a warning where it does not).
pub(crate) fn blkio_weight_supported() -> bool {
    let v1 = Path::new("/sys/fs/cgroup/blkio");
    if v1.is_dir() {
        return ["blkio.weight", "blkio.bfq.weight"]
            .iter()
            .any(|f| v1.join(f).exists());
    }
    fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
        .is_ok_and(|c| c.split_whitespace().any(|x| x == "io"))
}

/// The process's argv: entrypoint + cmd as docker combines them, and
/// the `Cmd` and `Entrypoint` docker reports.
fn argv(image: &ImageConfig, s: &ContainerSpec) -> (Vec<String>, Vec<String>, Vec<String>) {
    let c = image.config.clone().unwrap_or_default();
    let entrypoint = s
        .entrypoint
        .clone()
        .unwrap_or_else(|| c.entrypoint.clone().unwrap_or_default());
    let cmd = match &s.cmd {
        Some(cmd) if !cmd.is_empty() => cmd.clone(),
        // --entrypoint resets the image's CMD
        _ if s.entrypoint.is_some() => Vec::new(),
        _ => c.cmd.clone().unwrap_or_default(),
    };
    let argv = entrypoint.iter().chain(cmd.iter()).cloned().collect();
    (argv, cmd, entrypoint)
}

/// docker's `Config.Env`: the container's entries (a bare `KEY` kept: it
/// removes KEY from the process's environment), then the image's whose
/// keys the container does not name.
fn config_env(image: &ImageConfig, own: &[String]) -> Vec<String> {
    let key = |e: &str| e.split('=').next().unwrap_or(e).to_owned();
    let mut env = own.to_vec();
    for e in image
        .config
        .as_ref()
        .map(|c| c.env.clone())
        .unwrap_or_default()
    {
        if !own.iter().any(|o| key(o) == key(&e)) {
            env.push(e);
        }
    }
    env
}

/// The environment the process gets (docker's defaults replaced or
/// extended by `Config.Env`; bare keys remove; `HOME` from the user).
pub fn process_env(
    config_env: &[String],
    hostname: &str,
    tty: bool,
    home: Option<&str>,
) -> Vec<String> {
    let key = |e: &str| e.split('=').next().unwrap_or(e).to_owned();
    let mut env: Vec<String> = vec![
        format!("PATH={}", berth_runtime::process::DEFAULT_PATH),
        format!("HOSTNAME={hostname}"),
    ];
    if tty {
        env.push("TERM=xterm".into());
    }
    for e in config_env {
        let k = key(e);
        let at = env.iter().position(|x| key(x) == k);
        match (e.contains('='), at) {
            (true, Some(i)) => env[i] = e.clone(),
            (true, None) => env.push(e.clone()),
            (false, Some(i)) => {
                env.remove(i);
            }
            (false, None) => {}
        }
    }
    if !env.iter().any(|e| key(e) == "HOME") {
        env.push(format!(
            "HOME={}",
            home.filter(|h| !h.is_empty()).unwrap_or("/")
        ));
    }
    env
}

/// Copies the image's content at each copy-up volume's destination into
/// the volume when the volume is still empty (docker's rule), reading the
/// image through a detached mount of the container's rootfs (nothing is
/// attached, so nothing can leak; paths resolve inside the rootfs only).
fn copy_up(rootfs: &berth_types::image::MountSpec, mounts: &[MountPoint]) -> Result<()> {
    let wanted: Vec<&MountPoint> = mounts
        .iter()
        .filter(|m| {
            m.kind == MountKind::Volume && m.copy_up && volumes::is_empty_dir(Path::new(&m.source))
        })
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let mnt = berth_runtime::rootfs::open_detached(rootfs)?;
    for m in wanted {
        let flags = rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY;
        let src = match berth_sys::paths::open_flags(
            std::os::fd::AsFd::as_fd(&mnt),
            Path::new(&m.destination),
            flags,
        ) {
            Ok(fd) => fd,
            // nothing there in the image (or not a directory): nothing to copy
            Err(_) => continue,
        };
        let dst = fs::File::open(&m.source)
            .map_err(|e| Error::Io(format!("open volume {}", m.source), e))?;
        volumes::copy_tree(
            std::os::fd::AsFd::as_fd(&src),
            std::os::fd::AsFd::as_fd(&dst),
        )
        .map_err(|e| {
            Error::Io(
                format!("copy the image's {} into volume {}", m.destination, m.name),
                e,
            )
        })?;
        // the volume's root takes the mode and owner of the image's directory
        let st = rustix::fs::fstat(&src).map_err(|e| Error::Io("stat".into(), e.into()))?;
        let _ = rustix::fs::fchown(
            &dst,
            Some(rustix::fs::Uid::from_raw(st.st_uid)),
            Some(rustix::fs::Gid::from_raw(st.st_gid)),
        );
        let _ = rustix::fs::fchmod(&dst, rustix::fs::Mode::from_raw_mode(st.st_mode & 0o7777));
    }
    Ok(())
}

/// What create resolved before anything is written.
struct Plan {
    spec: ContainerSpec,
    networks: Vec<EndpointSpec>,
    mounts: Vec<MountPoint>,
    /// `container:X` with X on the host's network.
    host_network: bool,
    warnings: Vec<String>,
}

impl Engine {
    /// The host copy of berth-init (`--init`), written once per build.
    pub(crate) fn init_binary(&self) -> Result<PathBuf> {
        match crate::embedded::install(&self.root, "berth-init", crate::embedded::INIT)? {
            Some(path) => Ok(path),
            None => Err(Error::NotSupported(
                "--init (berth-init was not built: no static C toolchain at build time)".into(),
            )),
        }
    }

    /// Creates a container from `spec` (its image must be in the store).
    pub fn create(&self, spec: &ContainerSpec) -> Result<Created> {
        let image = self.images.resolve(&spec.image).map_err(|e| match e {
            berth_image::Error::NotFound(_) => {
                Error::NotFound(format!("No such image: {}", spec.image))
            }
            other => Error::Image(other),
        })?;
        let plan = self.plan(spec)?;
        let id = new_id()?;
        // the directory and a "being created by pid" mark exist before the
        // name is claimed, so a concurrent claimer never mistakes the claim
        // for one left by a vanished container
        let dir = self.store.dir(&id);
        self.store.mark_creating(&id)?;
        let name = match self.claim(&id, spec.name.as_deref()) {
            Ok(n) => n,
            Err(e) => {
                let _ = berth_image::unpack::remove_tree(&dir);
                return Err(e);
            }
        };
        let made = self
            .volumes_lock()
            .and_then(|_l| {
                let image_volumes: Vec<String> = self
                    .images
                    .config(&image.id)?
                    .config
                    .map(|c| c.volumes.keys().cloned().collect())
                    .unwrap_or_default();
                self.resolve_mounts(plan.mounts.clone(), &image_volumes)
            })
            .and_then(|resolved| {
                let r = self.write_container(&id, &name, &image, &plan, &dir, &resolved);
                if r.is_err() {
                    self.remove_anonymous_volumes(&resolved);
                }
                r
            });
        if let Err(e) = made {
            self.store.release_name(&name, &id);
            let _ = berth_image::unpack::remove_tree(&dir);
            return Err(e);
        }
        Ok(Created {
            id,
            warnings: plan.warnings,
        })
    }

    /// Takes `name` (or a random one) for `id`.
    fn claim(&self, id: &str, name: Option<&str>) -> Result<String> {
        if let Some(n) = name {
            let n = n.strip_prefix('/').unwrap_or(n).to_owned();
            self.store.claim_name(&n, id)?;
            return Ok(n);
        }
        let mut tries = 0usize;
        loop {
            let seed = id
                .get(tries * 2..tries * 2 + 4)
                .and_then(|h| hex::decode(h).ok())
                .unwrap_or_default();
            let mut n = random_name(&seed);
            if tries > 8 {
                n = format!("{n}_{}", id.get(..6).unwrap_or(id));
            }
            match self.store.claim_name(&n, id) {
                Ok(()) => return Ok(n),
                Err(Error::Conflict(_)) if tries < 12 => tries += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// Checks a request and resolves its references (other containers to
    /// full ids, networks to ids); drops what this host cannot honour with
    /// docker's warning.
    fn plan(&self, spec: &ContainerSpec) -> Result<Plan> {
        let mut s = spec.clone();
        let mut warnings = Vec::new();
        if s.auto_remove && s.restart_policy != RestartPolicy::No {
            return Err(Error::Invalid(
                "Conflicting options: --restart and --rm".into(),
            ));
        }
        s.resources.validate().map_err(Error::Invalid)?;
        for u in &s.ulimits {
            u.validate().map_err(Error::Invalid)?;
        }
        if let Some(p) = &s.cgroup_parent
            && (p.split('/').any(|c| c == "..") || p.contains('\0'))
        {
            return Err(Error::Invalid(format!("invalid cgroup parent: {p:?}")));
        }
        if !(-1000..=1000).contains(&s.oom_score_adj) {
            return Err(Error::Invalid(format!(
                "Invalid value {}, range for oom score adj is [-1000, 1000]",
                s.oom_score_adj
            )));
        }
        if let Some(w) = &s.working_dir
            && !w.is_empty()
            && !w.starts_with('/')
        {
            return Err(Error::Invalid(format!(
                "the working directory '{w}' is invalid, it needs to be an absolute path"
            )));
        }
        self.plan_namespaces(&mut s)?;
        let (networks, host_network) = self.plan_network(&mut s, &mut warnings)?;
        let mut mounts = Vec::new();
        for m in &s.mounts {
            mounts.push(volumes::mount_point(m)?);
        }
        self.volumes_from(&s, &mut mounts)?;
        // cgroup v2 has no per-cgroup swappiness and no OOM-killer switch
        let v1_memory = Path::new("/sys/fs/cgroup/memory").is_dir();
        if s.resources.memory_swappiness.is_some_and(|v| v != -1) && !v1_memory {
            warnings.push(
                "Your kernel does not support memory swappiness capabilities or the cgroup is \
                 not mounted. Memory swappiness discarded."
                    .into(),
            );
            s.resources.memory_swappiness = None;
        }
        if s.resources.oom_kill_disable && !v1_memory {
            warnings.push(
                "Your kernel does not support OomKillDisable. OomKillDisable discarded.".into(),
            );
            s.resources.oom_kill_disable = false;
        }
        if s.resources.blkio_weight > 0 && !blkio_weight_supported() {
            warnings.push(
                "Your kernel does not support Block I/O weight or the cgroup is not mounted. \
                 Weight discarded."
                    .into(),
            );
            s.resources.blkio_weight = 0;
        }
        // docker: a memory limit without a swap limit allows as much swap
        // again (memory + swap = twice the memory), recorded as such
        if s.resources.memory > 0 && s.resources.memory_swap == 0 {
            s.resources.memory_swap = s.resources.memory.saturating_mul(2);
        }
        Ok(Plan {
            spec: s,
            networks,
            mounts,
            host_network,
            warnings,
        })
    }

    /// Names `container:` namespace modes by full id and checks the
    /// combinations docker refuses.
    fn plan_namespaces(&self, s: &mut ContainerSpec) -> Result<()> {
        let ns = &mut s.namespaces;
        if let PidMode::Container(other) = &ns.pid {
            ns.pid = PidMode::Container(self.container(other)?.record.id);
        }
        if let PidMode::Sandbox(key) = &ns.pid {
            let sb = crate::sandbox::PodRuntime::sandbox(self, key)?;
            if s.network.mode != NetworkMode::Sandbox(sb.id.clone())
                && s.network.mode != NetworkMode::Sandbox(key.clone())
            {
                return Err(Error::Invalid(format!(
                    "a container shares the process namespace of pod sandbox {} only as one \
                     of its containers (network mode sandbox:{})",
                    sb.name, sb.id
                )));
            }
            if !sb.share_pid {
                return Err(Error::Invalid(format!(
                    "pod sandbox {} does not share a process namespace among its containers",
                    sb.name
                )));
            }
            if !sb.pause_alive() {
                return Err(Error::Conflict(format!(
                    "the process namespace of pod sandbox {} is gone (its pause process \
                     is not running)",
                    sb.name
                )));
            }
            ns.pid = PidMode::Sandbox(sb.id);
        }
        if let IpcMode::Container(other) = &ns.ipc {
            let o = self.container(other)?;
            ns.ipc = match o.record.namespaces.ipc {
                // a donor on the host's IPC namespace shares the host's
                IpcMode::Host => IpcMode::Host,
                IpcMode::Shareable => IpcMode::Container(o.record.id),
                _ => {
                    return Err(Error::Invalid(format!(
                        "non-shareable IPC (hint: use IpcMode:shareable for the donor container {})",
                        o.record.name
                    )));
                }
            };
        }
        let named = s.hostname.as_deref().is_some_and(|h| !h.is_empty());
        if named && s.namespaces.uts == UtsMode::Host {
            return Err(Error::Invalid(
                "Conflicting options: hostname and the UTS mode".into(),
            ));
        }
        if named && matches!(s.network.mode, NetworkMode::Container(_)) {
            return Err(Error::Invalid(
                "conflicting options: hostname and the network mode".into(),
            ));
        }
        Ok(())
    }

    /// The networks a bridged container joins (ids), and whether a
    /// `container:` mode means the host's network.
    fn plan_network(
        &self,
        s: &mut ContainerSpec,
        warnings: &mut Vec<String>,
    ) -> Result<(Vec<EndpointSpec>, bool)> {
        let n = &mut s.network;
        let mut host_network = false;
        if let NetworkMode::Container(other) = &n.mode {
            let o = self.container(other)?;
            host_network = o.record.network == NetworkMode::Host;
            if !n.ports.is_empty() || n.publish_all {
                return Err(Error::Invalid(
                    "conflicting options: port publishing and the container type network mode"
                        .into(),
                ));
            }
            if !n.endpoints.is_empty() {
                return Err(Error::Invalid(
                    "conflicting options: networking settings and the container type network mode"
                        .into(),
                ));
            }
            n.mode = NetworkMode::Container(o.record.id);
        }
        if let NetworkMode::Sandbox(id) = &n.mode {
            let sb = crate::sandbox::PodRuntime::sandbox(self, id)?;
            host_network = sb.network == crate::sandbox::SandboxNetwork::Host;
            n.mode = NetworkMode::Sandbox(sb.id);
        }
        let bridge = n.mode.bridge_network().map(str::to_owned);
        for h in &n.extra_hosts {
            if h.addr == HostAddr::HostGateway && bridge.is_none() {
                return Err(Error::Invalid(
                    "host-gateway needs a bridge network (--add-host NAME:host-gateway)".into(),
                ));
            }
        }
        let Some(primary) = bridge else {
            if !n.endpoints.is_empty() && !matches!(n.mode, NetworkMode::Sandbox(_)) {
                return Err(Error::Invalid(format!(
                    "container in network mode {} cannot join other networks",
                    n.mode.docker_name()
                )));
            }
            if !n.ports.is_empty() || n.publish_all {
                // docker publishes nothing without a bridge, and says so
                warnings.push(format!(
                    "Published ports are discarded when using {} network mode",
                    n.mode.docker_name()
                ));
                n.ports.clear();
                n.publish_all = false;
            }
            return Ok((Vec::new(), host_network));
        };
        let net = berth_net::Net::open(&self.root)?;
        // the mode's network first (with the endpoint settings given for
        // it), then the others
        let mut out: Vec<EndpointSpec> = Vec::new();
        let primary_net = net.network(&primary)?;
        let mut given = std::mem::take(&mut n.endpoints);
        let at = given.iter().position(|e| {
            e.network == primary
                || e.network == primary_net.id
                || (primary_net.default && matches!(e.network.as_str(), "bridge" | "default"))
        });
        let mut first = at.map(|i| given.remove(i)).unwrap_or_default();
        first.network = primary_net.id.clone();
        self.check_link_targets(&mut first)?;
        crate::network::check_endpoint(&primary_net, &first)?;
        out.push(first);
        for mut e in given {
            self.check_link_targets(&mut e)?;
            let v = self.network(&e.network)?;
            let Some(m) = v.network else {
                return Err(Error::Invalid(format!(
                    "container cannot be connected to network {}",
                    v.name
                )));
            };
            if out.iter().any(|x| x.network == m.id) {
                continue;
            }
            crate::network::check_endpoint(&m, &e)?;
            e.network = m.id;
            out.push(e);
        }
        Ok((out, host_network))
    }

    /// Links name existing containers (by name afterwards).
    fn check_link_targets(&self, e: &mut EndpointSpec) -> Result<()> {
        for l in &mut e.links {
            let t = self.container(&l.container).map_err(|_| {
                Error::Invalid(format!(
                    "could not get container for {}: No such container: {}",
                    l.container, l.container
                ))
            })?;
            l.container = t.record.name;
        }
        Ok(())
    }

    /// Adds the volumes and binds of `--volumes-from` containers that the
    /// request's own mounts do not cover.
    fn volumes_from(&self, s: &ContainerSpec, mounts: &mut Vec<MountPoint>) -> Result<()> {
        for vf in &s.volumes_from {
            let o = self.container(&vf.container)?;
            for m in &o.record.mounts {
                if m.kind == MountKind::Tmpfs
                    || mounts.iter().any(|x| x.destination == m.destination)
                {
                    continue;
                }
                let mut m = m.clone();
                // the other container's volume: never removed with this one
                m.anonymous = false;
                m.copy_up = false;
                m.origin = crate::config::MountOrigin::VolumesFrom;
                // the mode can only take write access away (docker)
                if vf.read_only == Some(true) {
                    m.read_only = true;
                }
                mounts.push(m);
            }
        }
        Ok(())
    }

    /// Writes the new container: its bundle, /etc files, record and state.
    fn write_container(
        &self,
        id: &str,
        name: &str,
        image: &ImageRecord,
        plan: &Plan,
        dir: &Path,
        mounts: &[MountPoint],
    ) -> Result<()> {
        let s = &plan.spec;
        for d in ["rootfs", "upper", "work", "etc"] {
            let p = dir.join(d);
            fs::create_dir_all(&p).map_err(|e| Error::Io(format!("create {}", p.display()), e))?;
        }
        fs::write(dir.join("image"), image.id.to_string())
            .map_err(|e| Error::Io("record the image".into(), e))?;
        let cfg = self.images.config(&image.id)?;
        let ic = cfg.config.clone().unwrap_or_default();
        let user_spec = s.user.clone().unwrap_or(ic.user.clone());
        let read = |p: &str| -> Result<Option<String>> {
            Ok(self
                .images
                .read_file(&image.id, p, 4 << 20)?
                .map(|b| String::from_utf8_lossy(&b).into_owned()))
        };
        let group = read("/etc/group")?;
        let mut user = crate::user::resolve(
            &user_spec,
            read("/etc/passwd")?.as_deref(),
            group.as_deref(),
        )
        .map_err(Error::Invalid)?;
        crate::user::add_groups(&mut user, &s.group_add, group.as_deref())
            .map_err(Error::Invalid)?;
        // docker: the host's name on the host's network or UTS namespace,
        // the other container's when sharing its network
        let shared_host = match &s.network.mode {
            NetworkMode::Container(other) => Some(self.container(other)?.record.hostname),
            NetworkMode::Sandbox(sb) => {
                Some(crate::sandbox::PodRuntime::sandbox(self, sb)?.hostname)
            }
            NetworkMode::Host => Some(host_name()),
            _ if s.namespaces.uts == UtsMode::Host => Some(host_name()),
            _ => None,
        };
        let hostname = s
            .hostname
            .clone()
            .filter(|h| !h.is_empty())
            .or(shared_host)
            .unwrap_or_else(|| id.get(..12).unwrap_or(id).to_owned());
        let (argv, cmd, entrypoint) = argv(&cfg, s);
        if argv.is_empty() {
            return Err(Error::Invalid("No command specified".into()));
        }
        let working_dir = s
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .or_else(|| Some(ic.working_dir.clone()).filter(|w| !w.is_empty()))
            .unwrap_or_else(|| "/".into());
        let env = config_env(&cfg, &s.env);
        let etc = dir.join("etc");
        crate::oci::etc::write_etc_files(&etc, &hostname, &s.network.extra_hosts, &s.network.dns)
            .map_err(|e| Error::Io("write /etc files".into(), e))?;
        let healthcheck = crate::health::effective(ic.healthcheck.as_ref(), s.healthcheck.as_ref());
        if let Some(h) = &healthcheck {
            crate::health::command(h)?;
        }
        let mut labels: BTreeMap<String, String> = ic.labels.clone().into_iter().collect();
        labels.extend(s.labels.clone());
        let mut exposed: Vec<PortProto> = ic
            .exposed_ports
            .keys()
            .filter_map(|p| p.parse().ok())
            .collect();
        exposed.extend(s.exposed_ports.iter().copied());
        exposed.extend(s.network.ports.iter().map(|p| PortProto {
            port: p.container_port,
            proto: p.proto,
        }));
        exposed.sort();
        exposed.dedup();
        let bridged = matches!(s.network.mode, NetworkMode::Bridge(_));
        let record = Record {
            id: id.to_owned(),
            name: name.to_owned(),
            created: berth_runtime::state::now_rfc3339(),
            image: s.image.clone(),
            image_id: image.id.to_string(),
            path: argv.first().cloned().unwrap_or_default(),
            args: argv.iter().skip(1).cloned().collect(),
            cmd,
            entrypoint,
            env,
            working_dir,
            user: user_spec,
            hostname: hostname.clone(),
            domainname: s.domainname.clone().unwrap_or_default(),
            labels,
            tty: s.tty,
            open_stdin: s.open_stdin,
            stdin_once: s.stdin_once,
            attach: s.attach,
            exposed_ports: exposed,
            stop_signal: s
                .stop_signal
                .or_else(|| ic.stop_signal.parse::<Signal>().ok()),
            stop_timeout: s.stop_timeout,
            auto_remove: s.auto_remove,
            restart_policy: s.restart_policy,
            network: s.network.mode.clone(),
            networks: plan.networks.clone(),
            ports: if bridged {
                s.network.ports.clone()
            } else {
                Vec::new()
            },
            publish_all: s.network.publish_all && bridged,
            dns: s.network.dns.clone(),
            extra_hosts: s.network.extra_hosts.clone(),
            security: s.security.clone(),
            resources: s.resources.clone(),
            log: s.log.clone(),
            console_size: s.console_size,
            mounts: mounts.to_vec(),
            healthcheck,
            init: s.init,
            namespaces: s.namespaces.clone(),
            shm_size: s.shm_size,
            group_add: s.group_add.clone(),
            oom_score_adj: s.oom_score_adj,
            devices: s.devices.clone(),
            device_cgroup_rules: s.device_cgroup_rules.clone(),
            ulimits: s.ulimits.clone(),
            sysctls: s.sysctls.clone(),
            volumes_from: s.volumes_from.clone(),
            cgroup_parent: s.cgroup_parent.clone(),
            sandbox: match &s.network.mode {
                NetworkMode::Sandbox(sb) => Some(sb.clone()),
                _ => None,
            },
            ..Default::default()
        };
        let sandbox_dir = record.sandbox.as_deref().map(|sb| self.sandbox_dir(sb));
        let sandbox_ns = |ns| {
            sandbox_dir
                .as_deref()
                .map(|d| crate::sandbox::ns_path(d, ns))
        };
        let paths = crate::oci::Paths {
            rootfs: dir.join("rootfs"),
            etc: match &sandbox_dir {
                Some(d) => crate::sandbox::etc_dir(d),
                None => etc,
            },
            netns: self.netns_path(&record),
            ipc_ns: sandbox_ns(crate::sandbox::Ns::Ipc),
            uts_ns: sandbox_ns(crate::sandbox::Ns::Uts),
            pid_ns: match &record.namespaces.pid {
                PidMode::Sandbox(sb) => Some(crate::sandbox::ns_path(
                    &self.sandbox_dir(sb),
                    crate::sandbox::Ns::Pid,
                )),
                _ => None,
            },
            shm: match &record.namespaces.ipc {
                IpcMode::Container(other) => Some(self.store.dir(other).join(SHM_DIR)),
                IpcMode::Shareable => Some(dir.join(SHM_DIR)),
                IpcMode::Sandbox(sb) => Some(crate::sandbox::shm_dir(&self.sandbox_dir(sb))),
                _ => None,
            },
            init: if s.init {
                Some(self.init_binary()?)
            } else {
                None
            },
            host_network: plan.host_network,
        };
        let mut process_user = user.clone();
        process_user.home = user.home.clone();
        let mut spec = crate::oci::build(&record, &process_user, &paths).map_err(Error::Invalid)?;
        if let Some(p) = spec.process_mut() {
            p.set_env(Some(process_env(
                &record.env,
                &record.hostname,
                record.tty,
                user.home.as_deref(),
            )));
        }
        let json =
            serde_json::to_vec_pretty(&spec).map_err(|e| Error::Internal(format!("spec: {e}")))?;
        fs::write(dir.join("config.json"), json)
            .map_err(|e| Error::Io("write config.json".into(), e))?;
        let rootfs = self
            .images
            .rootfs_mount(&image.id, &dir.join("upper"), &dir.join("work"))?;
        fs::write(
            dir.join(ROOTFS_FILE),
            serde_json::to_vec(&rootfs).map_err(|e| Error::Internal(e.to_string()))?,
        )
        .map_err(|e| Error::Io("write rootfs.json".into(), e))?;
        // a driver-mounted volume is mounted while the image's content is
        // copied into it
        let creator = format!("create-{id}");
        let me = std::process::id() as i32;
        let copying: Vec<MountPoint> = mounts.iter().filter(|m| m.copy_up).cloned().collect();
        crate::volume_mount::acquire(&self.root, &creator, me, &copying)?;
        let copied = copy_up(&rootfs, mounts);
        crate::volume_mount::release(&self.root, &creator, me, &copying);
        copied?;
        self.store.save_record(&record)?;
        self.store.save_state(id, &State::default())?;
        let _ = fs::remove_file(dir.join(CREATING));
        self.event(&record, "create", &[]);
        Ok(())
    }

    /// The network namespace file a container's runs use: its own (bridge
    /// and none), or its sandbox's.
    pub(crate) fn netns_path(&self, r: &Record) -> Option<PathBuf> {
        match &r.network {
            NetworkMode::Bridge(_) => Some(self.store.dir(&r.id).join(crate::network::NETNS_FILE)),
            NetworkMode::Sandbox(sb) => {
                let dir = self.sandbox_dir(sb);
                let s = crate::sandbox::PodRuntime::sandbox(self, sb).ok()?;
                (s.network != crate::sandbox::SandboxNetwork::Host)
                    .then(|| crate::sandbox::ns_path(&dir, crate::sandbox::Ns::Net))
            }
            _ => None,
        }
    }
}

/// The host's name.
fn host_name() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(json: &str) -> ImageConfig {
        berth_types::image::parse_config(json.as_bytes()).unwrap()
    }

    #[test]
    fn entrypoint_cmd_and_env_like_docker() {
        let c = cfg(
            r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},
            "config":{"Entrypoint":["/ep"],"Cmd":["default"],"Env":["A=1","PATH=/x","C=3"],"WorkingDir":"/w"}}"#,
        );
        let mut s = ContainerSpec::default();
        assert_eq!(argv(&c, &s).0, ["/ep", "default"]);
        s.cmd = Some(vec!["other".into()]);
        assert_eq!(argv(&c, &s).0, ["/ep", "other"]);
        s.entrypoint = Some(vec!["/sh".into()]);
        s.cmd = None;
        assert_eq!(argv(&c, &s).0, ["/sh"], "--entrypoint resets CMD");
        s.entrypoint = Some(Vec::new());
        s.cmd = Some(vec!["x".into()]);
        assert_eq!(argv(&c, &s).0, ["x"]);
        // docker's Config.Env: the container's first, bare keys kept
        let env = config_env(&c, &["A=2".into(), "C".into(), "B=3".into()]);
        assert_eq!(env, ["A=2", "C", "B=3", "PATH=/x"]);
        let p = process_env(&env, "h", true, Some("/root"));
        assert_eq!(
            p,
            [
                "PATH=/x",
                "HOSTNAME=h",
                "TERM=xterm",
                "A=2",
                "B=3",
                "HOME=/root"
            ]
        );
        assert!(!p.iter().any(|e| e.starts_with("C")), "a bare key removes");
    }
}
