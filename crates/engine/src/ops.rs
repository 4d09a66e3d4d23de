//! Container operations with docker's semantics: create, start, stop,
//! kill, remove, wait, list, inspect, logs, attach, resize, rename,
//! pause. Safe for several processes at once (the CLI and a daemon on one
//! root): state changes happen under the container's lock, names are
//! claimed atomically, and the running container belongs to its monitor.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use berth_image::db::ImageRecord;
use berth_runtime::Runtime;

use crate::container::{LogConfig, Record, RestartPolicy, SCHEMA, State, Status, random_name};
use crate::logs::{self, Entry, LogOptions};
use crate::monitor::{self, ROOTFS_FILE};
use crate::run::{Engine, Error, Result, new_id};
use crate::spec::{Resources, RunSpec, build_spec, write_etc_files};
use crate::user;
use crate::volumes::{self, MountPoint};

/// Whether the kernel offers a block I/O weight (docker discards
/// `--blkio-weight` with a warning where it does not).
fn blkio_weight_supported() -> bool {
    let v1 = Path::new("/sys/fs/cgroup/blkio");
    if v1.is_dir() {
        return ["blkio.weight", "blkio.bfq.weight"]
            .iter()
            .any(|f| v1.join(f).exists());
    }
    fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
        .is_ok_and(|c| c.split_whitespace().any(|x| x == "io"))
}

/// The mounts a create request asks for, parsed (nothing made yet).
fn requested_mounts(c: &CreateConfig) -> Result<Vec<MountPoint>> {
    let mut v = Vec::new();
    for b in &c.binds {
        v.push(volumes::parse_bind(b)?);
    }
    for m in &c.mounts {
        v.push(volumes::from_request(m)?);
    }
    for (path, opts) in &c.tmpfs {
        v.push(volumes::parse_tmpfs(path, opts)?);
    }
    for path in &c.volumes {
        let d = path.trim_end_matches('/');
        // a Config.Volumes entry that a bind already covers is no volume
        if !v.iter().any(|m| m.destination == d) {
            v.push(volumes::parse_bind(path)?);
        }
    }
    Ok(v)
}

/// Copies the image's content at each copy-up volume's destination into
/// the volume when the volume is still empty (docker's rule), reading the
/// image through a detached mount of the container's rootfs (nothing is
/// attached, so nothing can leak; paths resolve inside the rootfs only).
fn copy_up(rootfs: &berth_types::image::MountSpec, mounts: &[MountPoint]) -> Result<()> {
    let wanted: Vec<&MountPoint> = mounts
        .iter()
        .filter(|m| m.kind == "volume" && m.copy_up && volumes::is_empty_dir(Path::new(&m.source)))
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

/// What `docker create` / `POST /containers/create` asks for.
#[derive(Clone, Debug, Default)]
pub struct CreateConfig {
    /// `--name` (a random one when absent).
    pub name: Option<String>,
    /// Command (`None`: the image's).
    pub cmd: Option<Vec<String>>,
    /// Entrypoint (`None`: the image's; `Some([])` clears it).
    pub entrypoint: Option<Vec<String>>,
    /// `KEY=value` (or `KEY` to take it from the caller / drop it).
    pub env: Vec<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-u`.
    pub user: Option<String>,
    /// `-h` (default: the short id).
    pub hostname: Option<String>,
    /// `--domainname`.
    pub domainname: Option<String>,
    /// `-t`.
    pub tty: bool,
    /// `-i`.
    pub open_stdin: bool,
    /// Close stdin after the first attach ends (docker run -i sets it).
    pub stdin_once: bool,
    /// Attach flags (recorded).
    pub attach: (bool, bool, bool),
    /// `-l`.
    pub labels: BTreeMap<String, String>,
    /// `--expose`.
    pub exposed_ports: Vec<String>,
    /// `--stop-signal`.
    pub stop_signal: Option<String>,
    /// `--stop-timeout`.
    pub stop_timeout: Option<i64>,
    /// `--rm`.
    pub auto_remove: bool,
    /// `--restart`.
    pub restart_policy: RestartPolicy,
    /// `--network` (`default`, `bridge`, `none`, `host`, a network's name).
    pub network_mode: String,
    /// `-p`.
    pub port_bindings: Vec<crate::network::PortSpec>,
    /// `-P`.
    pub publish_all: bool,
    /// `--network-alias`.
    pub aliases: Vec<String>,
    /// `--ip`.
    pub ipv4_address: Option<String>,
    /// `--health-*` / `Config.Healthcheck` (over the image's).
    pub healthcheck: Option<berth_types::image::HealthConfig>,
    /// `--add-host NAME:IP`.
    pub extra_hosts: Vec<String>,
    /// `--dns`, `--dns-search`, `--dns-option`.
    pub dns: Vec<String>,
    /// See `dns`.
    pub dns_search: Vec<String>,
    /// See `dns`.
    pub dns_options: Vec<String>,
    /// `--ulimit NAME=SOFT[:HARD]`.
    pub ulimits: Vec<String>,
    /// `--sysctl KEY=VALUE` (namespaced ones only).
    pub sysctls: BTreeMap<String, String>,
    /// `--privileged`.
    pub privileged: bool,
    /// `--init`.
    pub init: bool,
    /// `--device`.
    pub devices: Vec<String>,
    /// `--security-opt seccomp=`: `unconfined` or a docker profile (JSON).
    pub seccomp: Option<String>,
    /// More networks at create (`EndpointsConfig` beyond the first):
    /// name, aliases, fixed address.
    pub extra_networks: Vec<(String, Vec<String>, Option<String>)>,
    /// `--read-only`.
    pub read_only: bool,
    /// `--security-opt no-new-privileges`.
    pub no_new_privileges: bool,
    /// `--cap-add`.
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    pub cap_drop: Vec<String>,
    /// Limits.
    pub resources: Resources,
    /// `--log-driver`, `--log-opt`.
    pub log_config: LogConfig,
    /// Terminal size (height, width).
    pub console_size: Option<(u16, u16)>,
    /// `-v` / `HostConfig.Binds`: `[SRC:]DST[:MODE]`.
    pub binds: Vec<String>,
    /// `--mount` / `HostConfig.Mounts`.
    pub mounts: Vec<crate::volumes::MountRequest>,
    /// `--tmpfs` / `HostConfig.Tmpfs`: path → options.
    pub tmpfs: BTreeMap<String, String>,
    /// `Config.Volumes`: anonymous volumes (`docker run -v /path` sends them here).
    pub volumes: Vec<String>,
    /// Namespace sharing and process options (`--pid`, `--ipc`, …).
    pub host_options: crate::container::HostOptions,
    /// `--volumes-from CONTAINER[:ro|rw]`.
    pub volumes_from: Vec<String>,
    /// Things asked for that berth cannot do yet; create refuses them with
    /// "not supported yet: …".
    pub unsupported: Vec<String>,
}

/// A container as `ps` and `inspect` see it.
#[derive(Clone, Debug)]
pub struct Container {
    /// Configuration.
    pub record: Record,
    /// State (ghosts already laid to rest).
    pub state: State,
    /// Its network endpoints while it runs on bridge networks.
    pub endpoints: Vec<berth_net::Endpoint>,
}

/// `wait` conditions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitCondition {
    /// Return at once if it is not running.
    NotRunning,
    /// The next exit (even if it is not running now).
    NextExit,
    /// After it is removed.
    Removed,
}

impl WaitCondition {
    /// Docker's names (`not-running` is the default).
    pub fn parse(s: &str) -> Result<WaitCondition> {
        match s {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            other => Err(Error::Invalid(format!("invalid condition: \"{other}\""))),
        }
    }
}

/// Signal numbers by docker's names (`TERM`, `SIGTERM`, `15`).
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return if (1..=64).contains(&n) {
            Ok(n)
        } else {
            Err(Error::Invalid(format!("Invalid signal: {s}")))
        };
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let n = match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "TRAP" => 5,
        "ABRT" | "IOT" => 6,
        "BUS" => 7,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        "STKFLT" => 16,
        "CHLD" => 17,
        "CONT" => 18,
        "STOP" => 19,
        "TSTP" => 20,
        "TTIN" => 21,
        "TTOU" => 22,
        "URG" => 23,
        "XCPU" => 24,
        "XFSZ" => 25,
        "VTALRM" => 26,
        "PROF" => 27,
        "WINCH" => 28,
        "IO" | "POLL" => 29,
        "PWR" => 30,
        "SYS" => 31,
        _ => {
            if let Some(rest) = name.strip_prefix("RTMIN+")
                && let Ok(k) = rest.parse::<i32>()
                && k <= 30
            {
                34 + k
            } else {
                return Err(Error::Invalid(format!("Invalid signal: {s}")));
            }
        }
    };
    Ok(n)
}

impl Engine {
    fn runtime(&self) -> Result<Runtime> {
        Ok(Runtime::new(&self.runtime_root())?)
    }

    /// The host copy of berth-init (`--init`), written once per build.
    fn init_binary(&self) -> Result<String> {
        match crate::embedded::install(&self.root, "berth-init", crate::embedded::INIT)? {
            Some(path) => Ok(path.display().to_string()),
            None => Err(Error::Invalid(
                "not supported yet: --init (berth-init was not built: no static C toolchain at \
                 build time)"
                    .into(),
            )),
        }
    }

    /// Records a container event.
    pub(crate) fn event(&self, r: &Record, action: &str, extra: &[(&str, String)]) {
        let mut a = crate::events::container_attributes(r);
        for (k, v) in extra {
            a.insert((*k).to_owned(), v.clone());
        }
        crate::events::emit(&self.root, "container", action, &r.id, a);
    }

    /// Resolves a container by id, name or id prefix.
    pub fn resolve(&self, key: &str) -> Result<String> {
        self.store.resolve(key)
    }

    /// Creates a container from `image` (already in the store; `image_name`
    /// as the user wrote it). Returns its id and docker-style warnings.
    pub fn create(
        &self,
        image: &ImageRecord,
        image_name: &str,
        c: &CreateConfig,
    ) -> Result<(String, Vec<String>)> {
        if let Some(u) = c.unsupported.first() {
            return Err(Error::Invalid(format!("not supported yet: {u}")));
        }
        c.restart_policy.validate()?;
        if c.auto_remove && !matches!(c.restart_policy.name.as_str(), "" | "no") {
            return Err(Error::Invalid(
                "Conflicting options: --restart and --rm".into(),
            ));
        }
        c.log_config.validate()?;
        let mut warnings = Vec::new();
        let mut adjusted = c.clone();
        self.check_host_options(&mut adjusted, &mut warnings)?;
        let c = &adjusted;
        let mut mode = c.network_mode.as_str();
        let mut host_network = mode == "host";
        // container:<name|id>: join the network namespace of the other
        // container (found at each start); one on the host's network
        // shares the host's
        let joined;
        if let Some(other) = mode.strip_prefix("container:") {
            let o = self.container(other)?;
            host_network = o.record.network_mode == "host";
            if !c.port_bindings.is_empty() || c.publish_all {
                return Err(Error::Invalid(
                    "conflicting options: port publishing and the container type network mode"
                        .into(),
                ));
            }
            joined = format!("container:{}", o.record.id);
            mode = joined.as_str();
        }
        let bridged = crate::network::is_bridge_mode(mode);
        if bridged {
            // the network must exist (its endpoint is made at each start)
            let net = berth_net::Net::open(&self.root).map_err(crate::network::net_error)?;
            let n = net
                .network(crate::network::network_key(mode))
                .map_err(crate::network::net_error)?;
            if n.default && (c.ipv4_address.is_some() || !c.aliases.is_empty()) {
                return Err(Error::Invalid(
                    "user specified IP address is supported on user defined networks only".into(),
                ));
            }
            if let Some(ip) = &c.ipv4_address
                && ip.parse::<std::net::Ipv4Addr>().is_err()
            {
                return Err(Error::Invalid(format!("invalid IPv4 address: {ip}")));
            }
        }
        let mut extra_networks = Vec::new();
        if !c.extra_networks.is_empty() {
            if !bridged {
                return Err(Error::Invalid(format!(
                    "container in network mode {mode} cannot join other networks"
                )));
            }
            for (name, aliases, ip) in &c.extra_networks {
                let v = self.network(name)?;
                if v.network.is_none() {
                    return Err(Error::Invalid(format!(
                        "container cannot be connected to network {}",
                        v.name
                    )));
                }
                extra_networks.push(crate::network::ExtraNetwork {
                    id: v.id,
                    aliases: aliases.clone(),
                    ipv4_address: ip.clone().unwrap_or_default(),
                });
            }
        }
        if !bridged && (!c.port_bindings.is_empty() || c.publish_all) {
            // docker publishes nothing without a bridge, and says so
            warnings.push(format!(
                "Published ports are discarded when using {mode} network mode"
            ));
        }
        if let Some(s) = &c.stop_signal {
            parse_signal(s)?;
        }
        let mut mounts = requested_mounts(c)?;
        self.volumes_from(c, &mut mounts)?;
        for h in &c.extra_hosts {
            let (name, ip) = h
                .split_once(':')
                .or_else(|| h.split_once('='))
                .ok_or_else(|| Error::Invalid(format!("bad format for add-host: {h:?}")))?;
            if name.is_empty() || (ip != "host-gateway" && ip.parse::<std::net::IpAddr>().is_err())
            {
                return Err(Error::Invalid(format!(
                    "invalid IP address in add-host: {ip:?}"
                )));
            }
            if ip == "host-gateway" && !crate::network::is_bridge_mode(mode) {
                return Err(Error::Invalid(
                    "host-gateway needs a bridge network (--add-host NAME:host-gateway)".into(),
                ));
            }
        }
        for d in &c.dns {
            if d.parse::<std::net::IpAddr>().is_err() {
                return Err(Error::Invalid(format!("{d} is not an ip address")));
            }
        }
        let id = new_id()?;
        // the directory and a "being created by pid" mark exist before the
        // name is claimed, so a concurrent claimer never mistakes the claim
        // for one left by a vanished container
        let dir = self.store.dir(&id);
        self.store.mark_creating(&id)?;
        let name = match &c.name {
            Some(n) => {
                let n = n.strip_prefix('/').unwrap_or(n).to_owned();
                if let Err(e) = self.store.claim_name(&n, &id) {
                    let _ = berth_image::unpack::remove_tree(&dir);
                    return Err(e);
                }
                n
            }
            None => {
                let mut tries = 0u8;
                loop {
                    let seed = hex::decode(&id[tries as usize * 2..tries as usize * 2 + 4])
                        .unwrap_or_default();
                    let mut n = random_name(&seed);
                    if tries > 8 {
                        n = format!("{n}_{}", &id[..6]);
                    }
                    match self.store.claim_name(&n, &id) {
                        Ok(()) => break n,
                        Err(Error::Conflict(_)) if tries < 12 => tries += 1,
                        Err(e) => {
                            let _ = berth_image::unpack::remove_tree(&dir);
                            return Err(e);
                        }
                    }
                }
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
                self.resolve_mounts(mounts.clone(), &image_volumes)
            })
            .and_then(|resolved| {
                let r = self.create_in(
                    &id,
                    &name,
                    image,
                    image_name,
                    c,
                    host_network,
                    &dir,
                    &resolved,
                    &extra_networks,
                );
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
        Ok((id, warnings))
    }

    #[allow(clippy::too_many_arguments)]
    fn create_in(
        &self,
        id: &str,
        name: &str,
        image: &ImageRecord,
        image_name: &str,
        c: &CreateConfig,
        host_network: bool,
        dir: &Path,
        mounts: &[MountPoint],
        extra_networks: &[crate::network::ExtraNetwork],
    ) -> Result<()> {
        for d in ["rootfs", "upper", "work", "etc"] {
            let p = dir.join(d);
            fs::create_dir_all(&p).map_err(|e| Error::Io(format!("create {}", p.display()), e))?;
        }
        fs::write(dir.join("image"), image.id.to_string())
            .map_err(|e| Error::Io("record the image".into(), e))?;
        let cfg = self.images.config(&image.id)?;
        let ic = cfg.config.clone().unwrap_or_default();
        let user_spec = c.user.clone().unwrap_or(ic.user.clone());
        let read = |p: &str| -> Result<Option<String>> {
            Ok(self
                .images
                .read_file(&image.id, p, 4 << 20)?
                .map(|b| String::from_utf8_lossy(&b).into_owned()))
        };
        let group = read("/etc/group")?;
        let mut user = user::resolve(
            &user_spec,
            read("/etc/passwd")?.as_deref(),
            group.as_deref(),
        )
        .map_err(Error::Invalid)?;
        user::add_groups(&mut user, &c.host_options.group_add, group.as_deref())
            .map_err(Error::Invalid)?;
        // docker: the host's name on the host's network or UTS namespace,
        // the other container's when sharing its network
        let shared_host = match c.network_mode.strip_prefix("container:") {
            Some(other) => Some(self.container(other)?.record.hostname),
            None => (host_network || c.host_options.uts_mode == "host").then(|| {
                rustix::system::uname()
                    .nodename()
                    .to_string_lossy()
                    .into_owned()
            }),
        };
        let hostname = c
            .hostname
            .clone()
            .filter(|h| !h.is_empty())
            .or(shared_host)
            .unwrap_or_else(|| id[..12].to_owned());
        let env: Vec<String> = c.env.clone();
        let run = RunSpec {
            cmd: c.cmd.clone().unwrap_or_default(),
            entrypoint: c.entrypoint.clone(),
            env,
            workdir: c.workdir.clone().filter(|w| !w.is_empty()),
            user,
            hostname: hostname.clone(),
            tty: c.tty,
            interactive: c.open_stdin,
            read_only: c.read_only,
            cgroups_path: format!("/berth/{id}"),
            resources: c.resources.clone(),
            host_network,
            no_new_privileges: c.no_new_privileges,
            cap_add: c.cap_add.clone(),
            cap_drop: c.cap_drop.clone(),
            mounts: mounts.iter().map(crate::volumes::spec_mount).collect(),
            ulimits: c.ulimits.clone(),
            sysctls: c.sysctls.clone(),
            privileged: c.privileged,
            init: if c.init {
                Some(self.init_binary()?)
            } else {
                None
            },
            devices: c.devices.clone(),
            seccomp: c.seccomp.clone(),
            // container:<id> joins the other's namespace, whose path is set
            // at each start (crate::spec::join_namespaces)
            netns_path: crate::network::is_bridge_mode(&c.network_mode)
                .then(|| dir.join(crate::network::NETNS_FILE).display().to_string()),
            host_options: c.host_options.clone(),
            shm_path: match c.host_options.ipc_mode.strip_prefix("container:") {
                Some(other) => Some(self.store.dir(other).join(crate::container::SHM_DIR)),
                None => (c.host_options.ipc_mode == "shareable")
                    .then(|| dir.join(crate::container::SHM_DIR)),
            }
            .map(|p| p.display().to_string()),
        };
        let etc = dir.join("etc");
        let etc_opts = crate::spec::EtcOptions {
            extra_hosts: c.extra_hosts.clone(),
            dns: c.dns.clone(),
            dns_search: c.dns_search.clone(),
            dns_options: c.dns_options.clone(),
        };
        write_etc_files(&etc, &hostname, &etc_opts)
            .map_err(|e| Error::Io("write /etc files".into(), e))?;
        let mut spec = build_spec(&cfg, &run, &dir.join("rootfs"), &etc).map_err(Error::Invalid)?;
        if let (Some((h, w)), Some(p)) = (
            c.console_size.filter(|(h, w)| *h > 0 && *w > 0),
            spec.process_mut(),
        ) {
            let b: oci_spec::runtime::Box =
                serde_json::from_value(serde_json::json!({"height": h, "width": w}))
                    .map_err(|e| Error::Invalid(e.to_string()))?;
            p.set_console_size(Some(b));
        }
        if let Some(d) = &c.domainname {
            spec.set_domainname(Some(d.clone()));
        }
        let process = spec.process().clone().unwrap_or_default();
        let args = process.args().clone().unwrap_or_default();
        let json =
            serde_json::to_vec_pretty(&spec).map_err(|e| Error::Invalid(format!("spec: {e}")))?;
        fs::write(dir.join("config.json"), json)
            .map_err(|e| Error::Io("write config.json".into(), e))?;
        let rootfs = self
            .images
            .rootfs_mount(&image.id, &dir.join("upper"), &dir.join("work"))?;
        fs::write(
            dir.join(ROOTFS_FILE),
            serde_json::to_vec(&rootfs).map_err(|e| Error::Invalid(e.to_string()))?,
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
        let healthcheck = crate::health::effective(ic.healthcheck.as_ref(), c.healthcheck.as_ref());
        if let Some(h) = &healthcheck {
            crate::health::command(h)?;
        }
        let mut labels: BTreeMap<String, String> = ic.labels.clone().into_iter().collect();
        labels.extend(c.labels.clone());
        let record = Record {
            schema: SCHEMA,
            id: id.to_owned(),
            name: name.to_owned(),
            created: berth_runtime::state::now_rfc3339(),
            image: image_name.to_owned(),
            image_id: image.id.to_string(),
            path: args.first().cloned().unwrap_or_default(),
            args: args.iter().skip(1).cloned().collect(),
            hostname,
            domainname: c.domainname.clone().unwrap_or_default(),
            user: c.user.clone().unwrap_or(ic.user.clone()),
            env: process.env().clone().unwrap_or_default(),
            cmd: c.cmd.clone().filter(|v| !v.is_empty()).unwrap_or_else(|| {
                if c.entrypoint.is_some() {
                    Vec::new()
                } else {
                    ic.cmd.clone().unwrap_or_default()
                }
            }),
            entrypoint: c
                .entrypoint
                .clone()
                .unwrap_or_else(|| ic.entrypoint.clone().unwrap_or_default()),
            working_dir: process.cwd().display().to_string(),
            labels,
            tty: c.tty,
            open_stdin: c.open_stdin,
            stdin_once: c.stdin_once,
            attach_stdin: c.attach.0,
            attach_stdout: c.attach.1,
            attach_stderr: c.attach.2,
            exposed_ports: {
                let mut p: Vec<String> = ic.exposed_ports.keys().cloned().collect();
                p.extend(c.exposed_ports.iter().cloned());
                p.sort();
                p.dedup();
                p
            },
            stop_signal: c
                .stop_signal
                .clone()
                .or_else(|| Some(ic.stop_signal.clone()).filter(|s| !s.is_empty()))
                .unwrap_or_else(|| "SIGTERM".into()),
            stop_timeout: c.stop_timeout,
            auto_remove: c.auto_remove,
            restart_policy: c.restart_policy.clone(),
            network_mode: if c.network_mode.is_empty() {
                "default".into()
            } else {
                c.network_mode.clone()
            },
            read_only: c.read_only,
            no_new_privileges: c.no_new_privileges,
            cap_add: c.cap_add.clone(),
            cap_drop: c.cap_drop.clone(),
            resources: c.resources.clone(),
            log_config: LogConfig {
                kind: if c.log_config.kind.is_empty() {
                    "json-file".into()
                } else {
                    c.log_config.kind.clone()
                },
                config: c.log_config.config.clone(),
            },
            console_size: c.console_size,
            mounts: mounts.to_vec(),
            port_bindings: if crate::network::is_bridge_mode(&c.network_mode) {
                c.port_bindings.clone()
            } else {
                Vec::new()
            },
            publish_all: c.publish_all && crate::network::is_bridge_mode(&c.network_mode),
            aliases: c.aliases.clone(),
            ipv4_address: c.ipv4_address.clone().unwrap_or_default(),
            healthcheck,
            extra_hosts: c.extra_hosts.clone(),
            dns: c.dns.clone(),
            dns_search: c.dns_search.clone(),
            dns_options: c.dns_options.clone(),
            extra_networks: extra_networks.to_vec(),
            primary_detached: false,
            privileged: c.privileged,
            init: c.init,
            host_options: c.host_options.clone(),
            volumes_from: c.volumes_from.clone(),
        };
        self.store.save_record(&record)?;
        self.store.save_state(id, &State::default())?;
        let _ = fs::remove_file(dir.join(crate::container::CREATING));
        self.event(&record, "create", &[]);
        Ok(())
    }

    /// Checks the namespace modes and process options of a create request,
    /// naming `container:` modes by full id; drops what this host cannot
    /// honour with docker's warning.
    fn check_host_options(&self, c: &mut CreateConfig, warnings: &mut Vec<String>) -> Result<()> {
        if let Some(other) = c.network_mode.strip_prefix("container:") {
            c.network_mode = format!("container:{}", self.container(other)?.record.id);
        }
        let ho = &mut c.host_options;
        let bad = |what: &str, m: &str| Error::Invalid(format!("invalid {what} mode: {m}"));
        if let Some(other) = ho.pid_mode.strip_prefix("container:") {
            ho.pid_mode = format!("container:{}", self.container(other)?.record.id);
        } else if !matches!(ho.pid_mode.as_str(), "" | "host") {
            return Err(bad("PID", &ho.pid_mode));
        }
        if let Some(other) = ho.ipc_mode.strip_prefix("container:") {
            let o = self.container(other)?;
            if !matches!(
                o.record.host_options.ipc_mode.as_str(),
                "shareable" | "host"
            ) {
                return Err(Error::Invalid(format!(
                    "non-shareable IPC (hint: use IpcMode:shareable for the donor container {})",
                    o.record.name
                )));
            }
            // a donor on the host's IPC namespace shares the host's
            ho.ipc_mode = if o.record.host_options.ipc_mode == "host" {
                "host".into()
            } else {
                format!("container:{}", o.record.id)
            };
        } else if !matches!(
            ho.ipc_mode.as_str(),
            "" | "private" | "shareable" | "host" | "none"
        ) {
            return Err(bad("IPC", &ho.ipc_mode));
        }
        if !matches!(ho.uts_mode.as_str(), "" | "host") {
            return Err(bad("UTS", &ho.uts_mode));
        }
        if !matches!(ho.cgroupns_mode.as_str(), "" | "private" | "host") {
            return Err(bad("cgroup namespace", &ho.cgroupns_mode));
        }
        let named = c.hostname.as_deref().is_some_and(|h| !h.is_empty());
        if named && ho.uts_mode == "host" {
            return Err(Error::Invalid(
                "Conflicting options: hostname and the UTS mode".into(),
            ));
        }
        if named && c.network_mode.starts_with("container:") {
            return Err(Error::Invalid(
                "conflicting options: hostname and the network mode".into(),
            ));
        }
        if ho.shm_size < 0 {
            return Err(Error::Invalid("SHM size can not be less than 0".into()));
        }
        if !(-1000..=1000).contains(&ho.oom_score_adj) {
            return Err(Error::Invalid(format!(
                "Invalid value {}, range for oom score adj is [-1000, 1000]",
                ho.oom_score_adj
            )));
        }
        for r in &ho.device_cgroup_rules {
            crate::spec::device_cgroup_rule(r).map_err(Error::Invalid)?;
        }
        // cgroup v2 has no per-cgroup swappiness and no OOM-killer switch
        let v1_memory = Path::new("/sys/fs/cgroup/memory").is_dir();
        if c.resources.memory_swappiness.is_some_and(|s| s != -1) && !v1_memory {
            warnings.push(
                "Your kernel does not support memory swappiness capabilities or the cgroup is \
                 not mounted. Memory swappiness discarded."
                    .into(),
            );
            c.resources.memory_swappiness = None;
        }
        if c.resources.oom_kill_disable && !v1_memory {
            warnings.push(
                "Your kernel does not support OomKillDisable. OomKillDisable discarded.".into(),
            );
            c.resources.oom_kill_disable = false;
        }
        if c.resources.blkio_weight > 0 && !blkio_weight_supported() {
            warnings.push(
                "Your kernel does not support Block I/O weight or the cgroup is not mounted. \
                 Weight discarded."
                    .into(),
            );
            c.resources.blkio_weight = 0;
        }
        Ok(())
    }

    /// Adds the volumes and binds of `--volumes-from` containers that the
    /// request's own mounts do not cover.
    fn volumes_from(&self, c: &CreateConfig, mounts: &mut Vec<MountPoint>) -> Result<()> {
        for spec in &c.volumes_from {
            // NAME[:MODE], MODE a comma list of ro|rw and the SELinux
            // relabel flags z|Z (nothing to relabel here)
            let (name, read_only) = match spec.split_once(':') {
                None => (spec.as_str(), None),
                Some((n, modes)) => {
                    let mut ro = None;
                    for m in modes.split(',') {
                        match m {
                            "ro" => ro = Some(true),
                            "rw" => ro = Some(false),
                            "z" | "Z" => {}
                            _ => {
                                return Err(Error::Invalid(format!(
                                    "invalid mode for volumes-from: {modes}"
                                )));
                            }
                        }
                    }
                    (n, ro)
                }
            };
            let o = self.container(name)?;
            for m in &o.record.mounts {
                if m.kind == "tmpfs" || mounts.iter().any(|x| x.destination == m.destination) {
                    continue;
                }
                let mut m = m.clone();
                // the other container's volume: never removed with this one
                m.anonymous = false;
                m.copy_up = false;
                // the mode can only take write access away (docker)
                if let Some(ro) = read_only {
                    m.rw = m.rw && !ro;
                    m.mode = if m.rw { "rw" } else { "ro" }.into();
                }
                mounts.push(m);
            }
        }
        Ok(())
    }

    /// A container with its state; a container whose monitor died is
    /// recorded as exited (no ghost "running").
    pub fn container(&self, key: &str) -> Result<Container> {
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
        let endpoints = if state.is_active() && crate::network::is_bridge_mode(&record.network_mode)
        {
            crate::network::endpoints(&self.root, &id)
        } else {
            Vec::new()
        };
        Ok(Container {
            record,
            state,
            endpoints,
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
        let mut v: Vec<Container> = self
            .store
            .ids()
            .into_iter()
            .filter_map(|id| self.container(&id).ok())
            .collect();
        v.sort_by(|a, b| b.record.created.cmp(&a.record.created));
        v
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
        if let Some(other) = c.record.network_mode.strip_prefix("container:") {
            let running = self
                .container(other)
                .is_ok_and(|o| o.state.status == Status::Running);
            if !running {
                return Err(Error::Conflict(format!(
                    "cannot join network of a non running container: {other}"
                )));
            }
        }
        crate::exec::forget_ended(&self.root, &self.store.dir(&id));
        // The image must still be there (rmi refuses while we exist).
        monitor::spawn(&self.root, &id, before_start)
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
        let sig = parse_signal(&c.record.stop_signal).unwrap_or(15);
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
        let _ = monitor::connect(&self.store.dir(id), &serde_json::json!({"wake": true}));
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

    /// Sends a signal to a running container.
    pub fn kill(&self, key: &str, signal: &str) -> Result<()> {
        let c = self.container(key)?;
        let id = c.record.id.clone();
        let sig = parse_signal(if signal.is_empty() { "KILL" } else { signal })?;
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

    /// Removes a container (`force`: kill it first if it runs).
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
        if crate::network::is_bridge_mode(&c.record.network_mode) {
            crate::network::disconnect(&self.root, &self.store.dir(&id), &id);
        }
        self.store.remove(&c.record)?;
        self.event(&c.record, "destroy", &[]);
        if volumes {
            self.remove_anonymous_volumes(&c.record.mounts);
        }
        Ok(())
    }

    /// Waits for a container per `cond`; returns its exit code.
    /// `cancelled` is polled so that a caller whose client left can stop.
    pub fn wait(
        &self,
        key: &str,
        cond: WaitCondition,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<i32> {
        let id = self.store.resolve(key)?;
        let dir = self.store.dir(&id);
        let initial = self.container(&id)?;
        let last_code = || self.store.state_raw(&id).map(|s| s.exit_code);
        if cond == WaitCondition::NotRunning && !initial.state.is_active() {
            return Ok(initial.state.exit_code);
        }
        if cond == WaitCondition::Removed
            && !initial.state.is_active()
            && !initial.record.auto_remove
        {
            // wait for someone to remove it
            loop {
                if !dir.exists() {
                    return Ok(initial.state.exit_code);
                }
                if cancelled() {
                    return Err(Error::Conflict("wait cancelled".into()));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // Connect to the monitor (for a container not started yet, once it is).
        let mut code: Option<i32> = None;
        loop {
            if cancelled() {
                return Err(Error::Conflict("wait cancelled".into()));
            }
            if let Some(mut s) = monitor::connect(&dir, &serde_json::json!({"wait": true})) {
                let mut line = String::new();
                let _ = s.read_to_string(&mut line);
                code = line.trim().parse().ok();
                break;
            }
            if !dir.exists() {
                break;
            }
            let st = self.store.state_raw(&id)?;
            if st.status == Status::Exited
                && st.finished_at.as_str() > initial.state.finished_at.as_str()
            {
                code = Some(st.exit_code);
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if cond == WaitCondition::Removed {
            while dir.exists() {
                if cancelled() {
                    return Err(Error::Conflict("wait cancelled".into()));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        match code {
            Some(c) => Ok(c),
            None => last_code().or(Ok(initial.state.exit_code)),
        }
    }

    /// Reads a container's log.
    pub fn logs(
        &self,
        key: &str,
        opts: &LogOptions,
        emit: impl FnMut(&Entry) -> bool,
    ) -> Result<()> {
        let id = self.store.resolve(key)?;
        let dir = self.store.dir(&id);
        logs::read(
            &dir,
            opts,
            || {
                self.store
                    .state_raw(&id)
                    .map(|s| s.is_active())
                    .unwrap_or(false)
            },
            emit,
        )
    }

    /// Attaches to a container's stdio through its monitor (`None` if it
    /// has no monitor, i.e. it is not running or starting).
    pub fn attach(
        &self,
        id: &str,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> Option<std::os::unix::net::UnixStream> {
        monitor::connect(
            &self.store.dir(id),
            &serde_json::json!({"attach": {"stdin": stdin, "stdout": stdout, "stderr": stderr}}),
        )
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
            &serde_json::json!({"resize": [height, width]}),
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

    /// `top`: (uid, pid, command line) of each process of a running container.
    pub fn top(&self, key: &str) -> Result<Vec<(String, i32, String)>> {
        Ok(self
            .pids(key)?
            .into_iter()
            .map(|p| {
                let cmd = fs::read(format!("/proc/{p}/cmdline"))
                    .map(|b| {
                        String::from_utf8_lossy(&b)
                            .trim_end_matches('\0')
                            .replace('\0', " ")
                    })
                    .unwrap_or_default();
                let uid = fs::read_to_string(format!("/proc/{p}/status"))
                    .ok()
                    .and_then(|s| {
                        s.lines()
                            .find(|l| l.starts_with("Uid:"))
                            .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
                    })
                    .unwrap_or_default();
                (uid, p, cmd)
            })
            .collect())
    }

    /// Cgroup statistics of a running container.
    pub fn stats(&self, key: &str) -> Result<berth_runtime::cgroups::stats::Stats> {
        let c = self.container(key)?;
        Ok(self.runtime()?.stats(&c.record.id)?)
    }
}

/// Docker's `ps` filters (`name`, `id`, `status`, `label`, `ancestor`,
/// `exited`): whether `c` matches one value of filter `key`; `None` for a
/// filter berth does not know.
pub fn filter_matches(c: &Container, key: &str, v: &str) -> Option<bool> {
    let status = c.state.status.as_str();
    Some(match key {
        "name" => c.record.name.contains(v.trim_start_matches('/')),
        "id" => c.record.id.starts_with(v),
        "status" => status == v,
        "label" => match v.split_once('=') {
            Some((k, val)) => c.record.labels.get(k).is_some_and(|x| x == val),
            None => c.record.labels.contains_key(v),
        },
        "ancestor" => c.record.image == v || c.record.image_id.contains(v),
        "exited" => status == "exited" && v.parse::<i32>().is_ok_and(|n| n == c.state.exit_code),
        _ => return None,
    })
}

/// Docker's `Status` text for `ps`: "Up 5 seconds", "Exited (0) 3 seconds ago".
pub fn status_text(s: &State, now_secs: i64) -> String {
    let secs = |t: &str| parse_rfc3339_secs(t).map(|v| now_secs - v);
    match s.status {
        Status::Created => "Created".into(),
        Status::Running => {
            let up = format!("Up {}", human(secs(&s.started_at).unwrap_or(0)));
            match s.health.as_ref().map(|h| h.status.as_str()) {
                Some("starting") => format!("{up} (health: starting)"),
                Some(h) if !h.is_empty() => format!("{up} ({h})"),
                _ => up,
            }
        }
        Status::Paused => format!("Up {} (Paused)", human(secs(&s.started_at).unwrap_or(0))),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            s.exit_code,
            human(secs(&s.finished_at).unwrap_or(0))
        ),
        Status::Exited => match secs(&s.finished_at) {
            Some(d) if s.finished_at != crate::container::ZERO_TIME => {
                format!("Exited ({}) {} ago", s.exit_code, human(d))
            }
            _ => format!("Exited ({})", s.exit_code),
        },
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
    }
}

/// Docker's human durations ("Less than a second", "5 seconds", "2 minutes").
pub fn human(secs: i64) -> String {
    let s = secs.max(0);
    if s < 1 {
        "Less than a second".into()
    } else if s == 1 {
        "1 second".into()
    } else if s < 60 {
        format!("{s} seconds")
    } else if s / 60 == 1 {
        "About a minute".into()
    } else if s < 3600 {
        format!("{} minutes", s / 60)
    } else if s / 3600 == 1 {
        "About an hour".into()
    } else if s < 48 * 3600 {
        format!("{} hours", s / 3600)
    } else if s < 14 * 86400 {
        format!("{} days", s / 86400)
    } else if s < 60 * 86400 {
        format!("{} weeks", s / (7 * 86400))
    } else if s < 730 * 86400 {
        format!("{} months", s / (30 * 86400))
    } else {
        format!("{} years", s / (365 * 86400))
    }
}

/// Seconds since the epoch of an RFC 3339 UTC time berth wrote.
pub fn parse_rfc3339_secs(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let n = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (h, mi, s) = (n(11..13)?, n(14..16)?, n(17..19)?);
    let days = berth_types::time::days_from_civil(y, mo, d);
    Some(days * 86400 + h * 3600 + mi * 60 + s)
}

impl Engine {
    /// `docker update`: new limits (the non-zero fields of `res`; a pids
    /// limit when given) written to the running container's cgroup and its
    /// bundle (so the next start keeps them), and a new restart policy.
    pub fn update(&self, key: &str, res: &Resources, restart: Option<RestartPolicy>) -> Result<()> {
        let c = self.container(key)?;
        let id = c.record.id.clone();
        let _l = self.store.lock(&id)?;
        let mut rec = self.store.record(&id)?;
        let mut r = rec.resources.clone();
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
            if !blkio_weight_supported() {
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
        let mut spec_res = r.to_spec().map_err(Error::Invalid)?;
        if let Some(p) = &restart {
            p.validate()?;
            if rec.auto_remove && !matches!(p.name.as_str(), "" | "no") {
                return Err(Error::Invalid(
                    "Restart policy cannot be updated because AutoRemove is enabled for the container"
                        .into(),
                ));
            }
        }
        // the bundle: limits for the next start, the device rules kept
        let cfg_path = self.store.dir(&id).join("config.json");
        let mut spec: serde_json::Value = serde_json::from_slice(
            &fs::read(&cfg_path).map_err(|e| Error::Io("read config.json".into(), e))?,
        )
        .map_err(|e| Error::Invalid(format!("config.json: {e}")))?;
        let devices = spec["linux"]["resources"]["devices"].clone();
        if let Some(o) = spec_res.as_object_mut() {
            o.remove("devices");
        }
        if c.state.is_active() {
            let lr: oci_spec::runtime::LinuxResources = serde_json::from_value(spec_res.clone())
                .map_err(|e| Error::Invalid(format!("resources: {e}")))?;
            self.runtime()?.update(&id, &lr)?;
        }
        spec_res["devices"] = devices;
        spec["linux"]["resources"] = spec_res;
        let tmp = cfg_path.with_extension("json.tmp");
        fs::write(
            &tmp,
            serde_json::to_vec_pretty(&spec).map_err(|e| Error::Invalid(e.to_string()))?,
        )
        .map_err(|e| Error::Io("write config.json".into(), e))?;
        fs::rename(&tmp, &cfg_path).map_err(|e| Error::Io("write config.json".into(), e))?;
        rec.resources = r;
        if let Some(p) = restart {
            rec.restart_policy = p;
        }
        self.store.save_record(&rec)?;
        self.event(&rec, "update", &[]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(parse_signal("TERM").unwrap(), 15);
        assert_eq!(parse_signal("SIGKILL").unwrap(), 9);
        assert_eq!(parse_signal("hup").unwrap(), 1);
        assert_eq!(parse_signal("10").unwrap(), 10);
        assert_eq!(parse_signal("RTMIN+1").unwrap(), 35);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("99").is_err());
    }

    #[test]
    fn times_and_status_texts() {
        assert_eq!(parse_rfc3339_secs("1970-01-01T00:00:10.5Z"), Some(10));
        assert_eq!(
            parse_rfc3339_secs("2023-11-14T22:13:20.000000000Z"),
            Some(1_700_000_000)
        );
        assert_eq!(human(0), "Less than a second");
        assert_eq!(human(5), "5 seconds");
        assert_eq!(human(90), "About a minute");
        let s = State {
            status: Status::Exited,
            exit_code: 3,
            finished_at: "2023-11-14T22:13:20.000000000Z".into(),
            ..Default::default()
        };
        assert_eq!(status_text(&s, 1_700_000_005), "Exited (3) 5 seconds ago");
        assert_eq!(WaitCondition::parse("").unwrap(), WaitCondition::NotRunning);
        assert!(WaitCondition::parse("soon").is_err());
    }
}
