//! `berth run IMAGE [COMMAND] [ARG...]` and `berth create`: a container
//! from an image through the engine (no daemon needed): created, started
//! by its monitor, and (unless `-d`) attached until it exits.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use berth_engine::Engine;
use berth_engine::config::{Attach, ConsoleSize, ContainerSpec, EndpointSpec, Resources};
use clap::Args;

/// An error of berth's own (not the container's): exit status 125.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RunFailed(pub String);

/// `berth run` flags (docker's names).
#[derive(Args, Debug)]
#[command(trailing_var_arg = true, disable_help_flag = true)]
pub struct RunArgs {
    /// Print help (`-h` is --hostname, as in docker).
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// Keep STDIN open.
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    tty: bool,
    /// Automatically remove the container when it exits.
    #[arg(long)]
    rm: bool,
    /// Run in the background.
    #[arg(short, long)]
    detach: bool,
    /// Set environment variables.
    #[arg(short, long = "env")]
    env: Vec<String>,
    /// Read in a file of environment variables.
    #[arg(long = "env-file")]
    env_file: Vec<std::path::PathBuf>,
    /// Working directory inside the container.
    #[arg(short, long)]
    workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short, long)]
    user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image.
    #[arg(long)]
    entrypoint: Option<String>,
    /// Container host name.
    #[arg(short = 'h', long)]
    hostname: Option<String>,
    /// Assign a name to the container.
    #[arg(long)]
    name: Option<String>,
    /// Mount the container's root filesystem as read only.
    #[arg(long)]
    read_only: bool,
    /// Run the container in a pod (`berth pod create`): its network, IPC,
    /// host name and cgroup parent.
    #[arg(long)]
    pod: Option<String>,
    /// Connect a container to a network (`default`/`bridge`, `none`, `host`, or a name).
    #[arg(long, visible_alias = "net", default_value = "default")]
    network: String,
    /// Restart policy (no, on-failure[:max-retries], always, unless-stopped).
    #[arg(long, default_value = "no")]
    restart: String,
    /// Set meta data on a container.
    #[arg(short, long = "label")]
    label: Vec<String>,
    #[command(flatten)]
    limits: LimitArgs,
    /// Add Linux capabilities.
    #[arg(long)]
    cap_add: Vec<String>,
    /// Drop Linux capabilities.
    #[arg(long)]
    cap_drop: Vec<String>,
    /// Security options (no-new-privileges).
    #[arg(long)]
    security_opt: Vec<String>,
    /// Signal to stop the container.
    #[arg(long)]
    stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container.
    #[arg(long)]
    stop_timeout: Option<i64>,
    /// Logging driver for the container.
    #[arg(long)]
    log_driver: Option<String>,
    /// Log driver options (max-size=10m, max-file=3).
    #[arg(long)]
    log_opt: Vec<String>,
    /// Expose a port or a range of ports.
    #[arg(long)]
    expose: Vec<String>,
    /// Proxy received signals to the process.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    sig_proxy: bool,
    /// Pull image before running ("always", "missing", "never").
    #[arg(long, default_value = "missing")]
    pull: String,
    /// Publish a container's port(s) to the host.
    #[arg(short, long)]
    publish: Vec<String>,
    /// Container IPv4 address (user-defined networks).
    #[arg(long)]
    ip: Option<String>,
    /// Add network-scoped alias for the container.
    #[arg(long)]
    network_alias: Vec<String>,
    /// Publish all exposed ports to random ports.
    #[arg(short = 'P', long)]
    publish_all: bool,
    /// Bind mount a volume (`[SRC:]DST[:ro]`).
    #[arg(short, long)]
    volume: Vec<String>,
    /// Attach a filesystem mount (`type=bind|volume|tmpfs,source=…,target=…`).
    #[arg(long)]
    mount: Vec<String>,
    /// Mount a tmpfs directory (`/path[:options]`).
    #[arg(long)]
    tmpfs: Vec<String>,
    /// Give extended privileges to this container (every capability and host device).
    #[arg(long)]
    privileged: bool,
    /// Run an init inside the container that forwards signals and reaps processes.
    #[arg(long)]
    init: bool,
    /// Ulimit options (NAME=SOFT[:HARD]).
    #[arg(long)]
    ulimit: Vec<String>,
    /// Sysctl options (namespaced ones: net.*, kernel.shm*, kernel.msg*, fs.mqueue.*).
    #[arg(long)]
    sysctl: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip, or host:host-gateway).
    #[arg(long)]
    add_host: Vec<String>,
    /// Set custom DNS search domains.
    #[arg(long)]
    dns_search: Vec<String>,
    /// Set DNS options.
    #[arg(long)]
    dns_option: Vec<String>,
    /// Add a host device (HOST[:CONTAINER[:rwm]]).
    #[arg(long)]
    device: Vec<String>,
    /// Set custom DNS servers.
    #[arg(long)]
    dns: Vec<String>,
    /// Command to run to check health.
    #[arg(long)]
    health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h).
    #[arg(long)]
    health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h).
    #[arg(long)]
    health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy.
    #[arg(long)]
    health_retries: Option<i64>,
    /// Start period for the container to initialize (ms|s|m|h).
    #[arg(long)]
    health_start_period: Option<String>,
    /// Time between checks during the start period (ms|s|m|h).
    #[arg(long)]
    health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK.
    #[arg(long)]
    no_healthcheck: bool,
    /// Suppress the pull output.
    #[arg(short, long)]
    quiet: bool,
    /// Container NIS domain name.
    #[arg(long)]
    domainname: Option<String>,
    /// PID namespace to use (`host`, `container:<name|id>`).
    #[arg(long)]
    pid: Option<String>,
    /// IPC mode to use (`none`, `private`, `shareable`, `host`, `container:<name|id>`).
    #[arg(long)]
    ipc: Option<String>,
    /// UTS namespace to use (`host`).
    #[arg(long)]
    uts: Option<String>,
    /// Cgroup namespace to use (`host`, `private`).
    #[arg(long)]
    cgroupns: Option<String>,
    /// Size of /dev/shm (e.g. 128m).
    #[arg(long)]
    shm_size: Option<String>,
    /// Add additional groups to join.
    #[arg(long)]
    group_add: Vec<String>,
    /// Tune host's OOM preferences (-1000 to 1000).
    #[arg(long, allow_hyphen_values = true)]
    oom_score_adj: Option<i64>,
    /// Disable OOM Killer.
    #[arg(long)]
    oom_kill_disable: bool,
    /// Tune container memory swappiness (0 to 100).
    #[arg(long, allow_hyphen_values = true)]
    memory_swappiness: Option<i64>,
    /// Add a rule to the cgroup allowed devices list (`c 1:3 rwm`).
    #[arg(long)]
    device_cgroup_rule: Vec<String>,
    /// Mount volumes from the specified container(s) (`NAME[:ro|rw]`).
    #[arg(long)]
    volumes_from: Vec<String>,
    /// Add a link to another container (`NAME[:ALIAS]`).
    #[arg(long)]
    link: Vec<String>,
    /// Container MAC address (e.g. 02:42:c6:12:00:09).
    #[arg(long)]
    mac_address: Option<String>,
    /// Optional parent cgroup for the container.
    #[arg(long)]
    cgroup_parent: Option<String>,
    /// Override the key sequence for detaching a container.
    #[arg(long)]
    detach_keys: Option<String>,
    /// The image.
    image: String,
    /// Command and arguments.
    #[arg(allow_hyphen_values = true)]
    command: Vec<String>,
}

/// The resource flags `run`, `create` and `update` share.
#[derive(Args, Debug)]
pub struct LimitArgs {
    /// Memory limit (e.g. 64m).
    #[arg(short, long)]
    memory: Option<String>,
    /// Memory + swap limit (-1: unlimited swap).
    #[arg(long)]
    memory_swap: Option<String>,
    /// Number of CPUs.
    #[arg(long)]
    cpus: Option<f64>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long)]
    cpu_shares: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long)]
    cpuset_cpus: Option<String>,
    /// Tune container pids limit (-1 for unlimited).
    #[arg(long)]
    pids_limit: Option<i64>,
    /// Memory soft limit.
    #[arg(long)]
    memory_reservation: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) period.
    #[arg(long)]
    cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota.
    #[arg(long)]
    cpu_quota: Option<i64>,
    /// MEMs in which to allow execution (0-3, 0,1).
    #[arg(long)]
    cpuset_mems: Option<String>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable.
    #[arg(long)]
    blkio_weight: Option<u16>,
}

impl LimitArgs {
    /// The engine's resources (0 / None: not asked for). The pids limit
    /// keeps -1 (unlimited) for `update`; `run` treats it as unset.
    pub fn resources(&self) -> Result<Resources> {
        let size = |s: &Option<String>, what: &str| -> Result<i64> {
            match s.as_deref() {
                None => Ok(0),
                Some("-1") => Ok(-1),
                Some(v) => berth_docker_api::syntax::parse_size(v)
                    .ok()
                    .and_then(|b| i64::try_from(b).ok())
                    .ok_or_else(|| failed(format!("invalid {what}: {v}"))),
            }
        };
        Ok(Resources {
            memory: size(&self.memory, "memory")?,
            memory_swap: size(&self.memory_swap, "memory-swap")?,
            nano_cpus: match self.cpus {
                None => 0,
                Some(c) if c.is_finite() && c >= 0.0 && c * 1e9 < i64::MAX as f64 => {
                    (c * 1e9) as i64
                }
                Some(c) => return Err(failed(format!("invalid value for --cpus: {c}"))),
            },
            cpu_shares: self.cpu_shares.unwrap_or(0),
            cpuset_cpus: self.cpuset_cpus.clone().unwrap_or_default(),
            pids_limit: self.pids_limit,
            memory_reservation: size(&self.memory_reservation, "memory-reservation")?,
            cpu_period: self.cpu_period.unwrap_or(0),
            cpu_quota: self.cpu_quota.unwrap_or(0),
            cpuset_mems: self.cpuset_mems.clone().unwrap_or_default(),
            blkio_weight: self.blkio_weight.unwrap_or(0),
            ..Default::default()
        })
    }
}

pub(crate) fn env_file(path: &Path) -> Result<Vec<String>> {
    let s = std::fs::read_to_string(path).with_context(|| format!("open {}", path.display()))?;
    Ok(s.lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

/// `--env-file`s, then `-e`s (`-e KEY` takes KEY from the caller's
/// environment; without it, KEY alone drops the variable).
pub(crate) fn environment(files: &[std::path::PathBuf], env: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for f in files {
        out.extend(env_file(f).map_err(|e| failed(format!("{e:#}")))?);
    }
    for e in env {
        match std::env::var(e) {
            Ok(v) if !e.contains('=') => out.push(format!("{e}={v}")),
            _ => out.push(e.clone()),
        }
    }
    Ok(out)
}

/// The size of our terminal, for a container or exec given one.
pub(crate) fn terminal_size(tty: bool) -> Option<(u16, u16)> {
    if !tty {
        return None;
    }
    rustix::termios::tcgetwinsize(std::io::stdin())
        .ok()
        .map(|w| (w.ws_row, w.ws_col))
}

fn failed(e: impl std::fmt::Display) -> anyhow::Error {
    RunFailed(e.to_string()).into()
}

/// The engine's request from the flags (docker's syntaxes parsed by
/// `berth_docker_api::syntax`, as the Docker API parses them).
fn container_spec(a: &RunArgs) -> Result<ContainerSpec> {
    use berth_docker_api::syntax;
    let f = |e: String| failed(e);
    let mut s = ContainerSpec {
        name: a.name.clone(),
        image: a.image.clone(),
        cmd: (!a.command.is_empty()).then(|| a.command.clone()),
        entrypoint: a
            .entrypoint
            .clone()
            .map(|e| if e.is_empty() { Vec::new() } else { vec![e] }),
        env: environment(&a.env_file, &a.env)?,
        working_dir: a.workdir.clone(),
        user: a.user.clone(),
        hostname: a.hostname.clone(),
        domainname: a.domainname.clone(),
        tty: a.tty,
        open_stdin: a.interactive,
        stdin_once: a.interactive && !a.detach,
        attach: Attach {
            stdin: a.interactive,
            stdout: !a.detach,
            stderr: !a.detach,
        },
        labels: crate::format::key_values(&a.label),
        auto_remove: a.rm,
        restart_policy: syntax::parse_restart(&a.restart, None).map_err(f)?,
        init: a.init,
        console_size: terminal_size(a.tty).map(|(height, width)| ConsoleSize { height, width }),
        stop_timeout: a.stop_timeout,
        ..Default::default()
    };
    if let Some(sig) = &a.stop_signal {
        s.stop_signal = Some(
            sig.parse::<berth_engine::config::Signal>()
                .map_err(|e| failed(e.to_string()))?,
        );
    }
    for e in &a.expose {
        s.exposed_ports.extend(syntax::parse_expose(e).map_err(f)?);
    }
    // security
    for o in &a.security_opt {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .map_err(|e| format!("opening seccomp profile ({p}) failed: {e}"))
        };
        match syntax::parse_security_opt(o, read).map_err(f)? {
            syntax::SecurityOpt::NoNewPrivileges(on) => s.security.no_new_privileges = on,
            syntax::SecurityOpt::Seccomp(p) => s.security.seccomp = p,
            syntax::SecurityOpt::UnconfinedPaths => {
                s.security.masked_paths = Some(Vec::new());
                s.security.readonly_paths = Some(Vec::new());
            }
            syntax::SecurityOpt::None => {}
        }
    }
    s.security.privileged = a.privileged;
    s.security.read_only_rootfs = a.read_only;
    s.security.cap_add = a.cap_add.clone();
    s.security.cap_drop = a.cap_drop.clone();
    // logs
    let mut opts = BTreeMap::new();
    for o in &a.log_opt {
        let (k, v) = syntax::key_value(o, "log opt").map_err(f)?;
        opts.insert(k.to_owned(), v.to_owned());
    }
    s.log = syntax::parse_log_config(a.log_driver.as_deref().unwrap_or(""), &opts).map_err(f)?;
    // mounts
    for v in &a.volume {
        s.mounts.push(syntax::parse_volume(v).map_err(f)?);
    }
    for m in &a.mount {
        s.mounts.push(syntax::parse_mount(m).map_err(f)?);
    }
    for t in &a.tmpfs {
        let (p, o) = t.split_once(':').unwrap_or((t, ""));
        s.mounts.push(syntax::parse_tmpfs(p, o));
    }
    for v in &a.volumes_from {
        s.volumes_from
            .push(syntax::parse_volumes_from(v).map_err(f)?);
    }
    // networking
    let n = &mut s.network;
    n.mode = syntax::parse_network_mode(&a.network).map_err(f)?;
    for p in &a.publish {
        n.ports.extend(syntax::parse_publish(p).map_err(f)?);
    }
    n.publish_all = a.publish_all;
    for h in &a.add_host {
        n.extra_hosts.push(syntax::parse_add_host(h).map_err(f)?);
    }
    for d in &a.dns {
        n.dns.servers.push(
            d.parse()
                .map_err(|_| failed(format!("{d} is not an ip address")))?,
        );
    }
    n.dns.search = a.dns_search.clone();
    n.dns.options = a.dns_option.clone();
    let mut links = Vec::new();
    for l in &a.link {
        links.push(berth_docker_api::model::container::parse_link(l).map_err(f)?);
    }
    let mac = match &a.mac_address {
        Some(m) => Some(m.parse().map_err(f)?),
        None => None,
    };
    let ip = match &a.ip {
        Some(ip) => Some(
            ip.parse()
                .map_err(|_| failed(format!("invalid IPv4 address: {ip}")))?,
        ),
        None => None,
    };
    if ip.is_some() || mac.is_some() || !a.network_alias.is_empty() || !links.is_empty() {
        n.endpoints.push(EndpointSpec {
            network: n.mode.docker_name(),
            aliases: a.network_alias.clone(),
            ipv4_address: ip,
            mac_address: mac,
            links,
            ..Default::default()
        });
    }
    // health
    let dur = |v: &Option<String>| -> Result<i64> {
        v.as_deref()
            .map(syntax::parse_duration)
            .transpose()
            .map(|d| d.unwrap_or(0))
            .map_err(f)
    };
    s.healthcheck = if a.no_healthcheck {
        Some(berth_types::image::HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        })
    } else {
        let h = berth_types::image::HealthConfig {
            test: a
                .health_cmd
                .as_ref()
                .map(|c| vec!["CMD-SHELL".to_owned(), c.clone()])
                .unwrap_or_default(),
            interval: dur(&a.health_interval)?,
            timeout: dur(&a.health_timeout)?,
            start_period: dur(&a.health_start_period)?,
            start_interval: dur(&a.health_start_interval)?,
            retries: a.health_retries.unwrap_or(0),
        };
        (h != berth_types::image::HealthConfig::default()).then_some(h)
    };
    // resources and process options
    for u in &a.ulimit {
        s.ulimits.push(syntax::parse_ulimit(u).map_err(f)?);
    }
    for kv in &a.sysctl {
        let (k, v) = syntax::key_value(kv, "sysctl").map_err(f)?;
        s.sysctls.insert(k.to_owned(), v.to_owned());
    }
    for d in &a.device {
        s.devices.push(syntax::parse_device(d).map_err(f)?);
    }
    for r in &a.device_cgroup_rule {
        s.device_cgroup_rules
            .push(syntax::parse_device_cgroup_rule(r).map_err(f)?);
    }
    s.resources = a.limits.resources()?;
    s.resources.pids_limit = s.resources.pids_limit.filter(|p| *p > 0);
    s.resources.memory_swappiness = a.memory_swappiness;
    s.resources.oom_kill_disable = a.oom_kill_disable;
    s.namespaces.pid = syntax::parse_pid_mode(a.pid.as_deref().unwrap_or("")).map_err(f)?;
    s.namespaces.ipc = syntax::parse_ipc_mode(a.ipc.as_deref().unwrap_or("")).map_err(f)?;
    s.namespaces.uts = syntax::parse_uts_mode(a.uts.as_deref().unwrap_or("")).map_err(f)?;
    s.namespaces.cgroupns =
        syntax::parse_cgroupns_mode(a.cgroupns.as_deref().unwrap_or("")).map_err(f)?;
    s.shm_size = match &a.shm_size {
        None => None,
        Some(v) => Some(syntax::parse_size(v).map_err(f)?),
    };
    s.group_add = a.group_add.clone();
    s.oom_score_adj = match a.oom_score_adj {
        None => 0,
        Some(v) => i32::try_from(v).map_err(|_| {
            failed(format!(
                "Invalid value {v}, range for oom score adj is [-1000, 1000]"
            ))
        })?,
    };
    s.cgroup_parent = a.cgroup_parent.clone().filter(|p| !p.is_empty());
    Ok(s)
}

/// Creates the container, in its pod with `--pod` (which owns the
/// network, IPC, host name and cgroup parent: flags for those conflict).
fn create_container(
    engine: &Engine,
    a: &RunArgs,
    spec: &ContainerSpec,
) -> Result<berth_engine::Created> {
    let Some(pod) = &a.pod else {
        return engine.create(spec).map_err(failed);
    };
    let conflicts = [
        ("--network", a.network != "default"),
        ("--publish", !a.publish.is_empty() || a.publish_all),
        ("--hostname", a.hostname.is_some()),
        ("--ipc", a.ipc.is_some()),
        ("--uts", a.uts.is_some()),
        ("--ip", a.ip.is_some()),
        ("--network-alias", !a.network_alias.is_empty()),
        ("--mac-address", a.mac_address.is_some()),
        ("--link", !a.link.is_empty()),
        ("--dns", !a.dns.is_empty()),
        ("--add-host", !a.add_host.is_empty()),
        ("--cgroup-parent", a.cgroup_parent.is_some()),
    ];
    if let Some((flag, _)) = conflicts.iter().find(|(_, set)| *set) {
        return Err(failed(format!(
            "{flag} cannot be used with --pod: the pod owns it"
        )));
    }
    berth_engine::PodRuntime::create_in_sandbox(engine, pod, spec).map_err(failed)
}

/// `berth create`: prints the new container's id.
pub fn create(root: &Path, a: RunArgs) -> Result<ExitCode> {
    let engine = Engine::open(root).map_err(failed)?;
    let spec = container_spec(&a)?;
    crate::pull_cmd::ensure_image(&engine, &a.image, &a.pull, a.quiet)
        .map_err(|e| failed(format!("{e:#}")))?;
    let created = create_container(&engine, &a, &spec)?;
    for w in created.warnings {
        eprintln!("WARNING: {w}");
    }
    println!("{}", created.id);
    Ok(ExitCode::SUCCESS)
}

/// Runs it; the exit code is the container's (125 for berth's own
/// failures, 126/127 when the command cannot be run or found).
pub fn run(root: &Path, a: RunArgs) -> Result<ExitCode> {
    if a.tty && !a.detach && !std::io::stdin().is_terminal() {
        return Err(failed("the input device is not a TTY"));
    }
    let engine = Engine::open(root).map_err(failed)?;
    let spec = container_spec(&a)?;
    crate::pull_cmd::ensure_image(&engine, &a.image, &a.pull, a.quiet)
        .map_err(|e| failed(format!("{e:#}")))?;
    let created = create_container(&engine, &a, &spec)?;
    let id = created.id;
    for w in created.warnings {
        if !a.quiet {
            eprintln!("WARNING: {w}");
        }
    }
    if a.detach {
        match engine.start(&id, || Ok(())) {
            Ok(()) => {
                println!("{id}");
                return Ok(ExitCode::SUCCESS);
            }
            Err(e) => {
                if a.rm {
                    let _ = engine.remove(&id, true, true);
                }
                return start_failure(&e.to_string());
            }
        }
    }
    let keys = detach_keys(a.detach_keys.as_deref())?;
    match start_attached(
        &engine,
        &id,
        a.interactive,
        a.tty,
        a.sig_proxy && !a.tty,
        keys,
    ) {
        Ok(Ended::Exited(code)) => Ok(ExitCode::from(code.clamp(0, 255) as u8)),
        Ok(Ended::Detached) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            if a.rm {
                let _ = engine.remove(&id, true, true);
            }
            start_failure(&e.to_string())
        }
    }
}

/// The detach keys: the flag, else the Docker config file's
/// `detachKeys`, else docker's `ctrl-p,ctrl-q`.
pub(crate) fn detach_keys(flag: Option<&str>) -> Result<Vec<u8>> {
    let from_config = || -> Option<String> {
        let dir = std::env::var_os("DOCKER_CONFIG")
            .map(std::path::PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".docker")))?;
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("config.json")).ok()?).ok()?;
        v.get("detachKeys")?.as_str().map(str::to_owned)
    };
    match flag.map(str::to_owned).or_else(from_config) {
        Some(k) => berth_docker_api::detach::parse_detach_keys(&k).map_err(failed),
        None => Ok(berth_docker_api::detach::DEFAULT.to_vec()),
    }
}

/// How an attached session ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    /// The process exited with this code.
    Exited(i32),
    /// The user typed the detach keys: the process runs on.
    Detached,
}

/// Starts a container (or joins it if it runs) attached to our stdio, and
/// returns how it ended (`run` without `-d`, `start -a`). Err: the start
/// failed.
pub(crate) fn start_attached(
    engine: &Engine,
    id: &str,
    interactive: bool,
    tty: bool,
    sig_proxy: bool,
    keys: Vec<u8>,
) -> Result<Ended, berth_engine::Error> {
    let mut attach = None;
    let mut waiter = None;
    let started = engine.start(id, || {
        attach = engine.attach(id, interactive, true, true);
        waiter = engine.exit_watch(id);
        Ok(())
    });
    match started {
        Ok(()) => {}
        // already running: attach to it as it is
        Err(berth_engine::Error::NotModified(_)) => {
            attach = engine.attach(id, interactive, true, true);
            waiter = engine.exit_watch(id);
        }
        Err(e) => return Err(e),
    }
    if let Some(s) = attach
        && let Ok(true) = relay(engine, id, s, tty, interactive, sig_proxy, keys)
    {
        return Ok(Ended::Detached);
    }
    let code = match waiter {
        Some(mut w) => {
            let mut line = String::new();
            let _ = w.read_to_string(&mut line);
            line.trim().parse::<i32>().ok()
        }
        None => None,
    };
    Ok(Ended::Exited(match code {
        Some(c) => c,
        None => engine
            .wait(id, berth_engine::WaitCondition::NotRunning, &|| false)
            .unwrap_or(125),
    }))
}

fn start_failure(msg: &str) -> Result<ExitCode> {
    let code = berth_engine::monitor::start_failure_code(msg);
    if code == 125 {
        return Err(failed(msg));
    }
    eprintln!("berth: {msg}");
    Ok(ExitCode::from(code as u8))
}

/// Copies the process's output to our stdout/stderr and our stdin to the
/// process until its output ends or the detach keys are typed (then
/// true); forwards signals.
pub(crate) fn relay(
    engine: &Engine,
    id: &str,
    mut stream: berth_engine::streams::AttachStream,
    tty: bool,
    interactive: bool,
    sig_proxy: bool,
    keys: Vec<u8>,
) -> Result<bool> {
    use rustix::event::{PollFd, PollFlags};
    let stdin = std::io::stdin();
    let _raw = if tty && stdin.is_terminal() {
        berth_runtime::console::RawMode::enter(stdin.as_fd()).ok()
    } else {
        None
    };
    let mut signals = None;
    if sig_proxy {
        let mut set = berth_sys::signal::SigSet::empty();
        for s in [1, 2, 3, 10, 12, 15] {
            set.add(s);
        }
        if berth_sys::signal::block(&set).is_ok() {
            signals = berth_sys::signal::signalfd(&set).ok();
        }
    }
    let mut detector =
        berth_docker_api::detach::Detector::new(if interactive { keys } else { Vec::new() });
    let mut frames = berth_engine::streams::FrameReader::default();
    let mut stdin_open = interactive;
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let sock_r = stream.socket.try_clone()?;
        let mut fds = vec![PollFd::new(&sock_r, PollFlags::IN)];
        if stdin_open {
            fds.push(PollFd::new(&stdin, PollFlags::IN));
        }
        let sig_idx = signals.as_ref().map(|s| {
            fds.push(PollFd::new(s, PollFlags::IN));
            fds.len() - 1
        });
        match rustix::event::poll(&mut fds, None) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        let sock_ready = !fds[0].revents().is_empty();
        let stdin_ready = stdin_open && !fds[1].revents().is_empty();
        let sig_ready = sig_idx.is_some_and(|i| !fds[i].revents().is_empty());
        drop(fds);
        if sig_ready
            && let Some(s) = &signals
            && let Ok(Some(info)) = berth_sys::signal::read_signalfd(s.as_fd())
            && let Ok(sig) = berth_engine::config::Signal::from_number(info.signo)
        {
            let _ = engine.kill(id, Some(sig));
        }
        if stdin_ready {
            let n = std::io::stdin().lock().read(&mut buf).unwrap_or(0);
            if n == 0 {
                stream.close_stdin();
                stdin_open = false;
            } else {
                let (pass, detached) = detector.feed(&buf[..n]);
                if !pass.is_empty() && stream.write_stdin(&pass).is_err() {
                    stdin_open = false;
                }
                if detached {
                    return Ok(true);
                }
            }
        }
        if sock_ready {
            let n = stream.socket.read(&mut buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            for (s, data) in frames.feed(&buf[..n]) {
                if s == berth_engine::streams::Stream::Stderr {
                    let _ = err.write_all(&data);
                } else {
                    let _ = out.write_all(&data);
                    let _ = out.flush();
                }
            }
        }
    }
    Ok(false)
}
