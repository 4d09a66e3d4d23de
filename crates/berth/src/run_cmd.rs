//! `berth run IMAGE [COMMAND] [ARG...]` and `berth create`: a container
//! from an image through the engine (no daemon needed): created, started
//! by its monitor, and (unless `-d`) attached until it exits.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use berth_engine::container::{LogConfig, RestartPolicy, parse_size};
use berth_engine::{CreateConfig, Engine, Resources};
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
                Some(v) => parse_size(v)
                    .map(|b| b as i64)
                    .ok_or_else(|| failed(format!("invalid {what}: {v}"))),
            }
        };
        Ok(Resources {
            memory: size(&self.memory, "memory")?,
            memory_swap: size(&self.memory_swap, "memory-swap")?,
            nano_cpus: self.cpus.map_or(0, |c| (c * 1e9) as i64),
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

/// The engine's configuration from the flags.
fn create_config(a: &RunArgs) -> Result<CreateConfig> {
    let mut unsupported = Vec::new();
    let env = environment(&a.env_file, &a.env)?;
    let labels = crate::format::key_values(&a.label);
    let mut nnp = false;
    let mut seccomp = None;
    let mut unconfined_paths = false;
    for o in &a.security_opt {
        match o.as_str() {
            "no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true" => nnp = true,
            o if o.starts_with("seccomp=") || o.starts_with("seccomp:") => {
                let v = &o["seccomp=".len()..];
                seccomp = Some(if v == "unconfined" {
                    v.to_owned()
                } else {
                    std::fs::read_to_string(v)
                        .map_err(|e| failed(format!("opening seccomp profile ({v}) failed: {e}")))?
                });
            }
            "systempaths=unconfined" => unconfined_paths = true,
            // berth applies no AppArmor profile or SELinux label
            "apparmor=unconfined" | "apparmor:unconfined" | "label=disable" | "label:disable" => {}
            other => unsupported.push(format!("--security-opt {other}")),
        }
    }
    let mut log_config = LogConfig {
        kind: a.log_driver.clone().unwrap_or_default(),
        config: BTreeMap::new(),
    };
    for o in &a.log_opt {
        let (k, v) = o
            .split_once('=')
            .ok_or_else(|| failed(format!("invalid log opt: {o}")))?;
        log_config.config.insert(k.to_owned(), v.to_owned());
    }
    let console_size = terminal_size(a.tty);
    if let Some(u) = unsupported.first() {
        return Err(failed(format!("not supported yet: {u}")));
    }
    let mounts = a
        .mount
        .iter()
        .map(|m| berth_engine::volumes::parse_mount_flag(m))
        .collect::<Result<Vec<_>, _>>()
        .map_err(failed)?;
    let tmpfs = a
        .tmpfs
        .iter()
        .map(|t| {
            let (p, o) = t.split_once(':').unwrap_or((t, ""));
            (p.to_owned(), o.to_owned())
        })
        .collect();
    let mut port_bindings = Vec::new();
    for p in &a.publish {
        port_bindings.extend(berth_engine::network::parse_publish(p).map_err(failed)?);
    }
    let mut exposed = a.expose.clone();
    for p in &port_bindings {
        exposed.push(format!("{}/{}", p.container_port, p.proto));
    }
    let dur = |v: &Option<String>| -> Result<i64> {
        v.as_deref()
            .map(berth_engine::health::parse_duration)
            .transpose()
            .map(|d| d.unwrap_or(0))
            .map_err(failed)
    };
    let healthcheck = if a.no_healthcheck {
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
    let mut sysctls = BTreeMap::new();
    for s in &a.sysctl {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| failed(format!("invalid sysctl: {s}")))?;
        sysctls.insert(k.to_owned(), v.to_owned());
    }
    Ok(CreateConfig {
        healthcheck,
        extra_hosts: a.add_host.clone(),
        dns: a.dns.clone(),
        dns_search: a.dns_search.clone(),
        dns_options: a.dns_option.clone(),
        ulimits: a.ulimit.clone(),
        sysctls,
        extra_networks: Vec::new(),
        privileged: a.privileged,
        init: a.init,
        devices: a.device.clone(),
        seccomp,
        port_bindings,
        publish_all: a.publish_all,
        aliases: a.network_alias.clone(),
        ipv4_address: a.ip.clone(),
        binds: a.volume.clone(),
        mounts,
        tmpfs,
        name: a.name.clone(),
        cmd: (!a.command.is_empty()).then(|| a.command.clone()),
        entrypoint: a
            .entrypoint
            .clone()
            .map(|e| if e.is_empty() { Vec::new() } else { vec![e] }),
        env,
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        hostname: a.hostname.clone(),
        domainname: a.domainname.clone(),
        host_options: berth_engine::container::HostOptions {
            pid_mode: a.pid.clone().unwrap_or_default(),
            ipc_mode: a.ipc.clone().unwrap_or_default(),
            uts_mode: a.uts.clone().unwrap_or_default(),
            cgroupns_mode: a.cgroupns.clone().unwrap_or_default(),
            shm_size: match &a.shm_size {
                None => 0,
                Some(v) => parse_size(v)
                    .map(|b| b as i64)
                    .ok_or_else(|| failed(format!("invalid shm-size: {v}")))?,
            },
            group_add: a.group_add.clone(),
            oom_score_adj: a.oom_score_adj.unwrap_or(0),
            device_cgroup_rules: a.device_cgroup_rule.clone(),
            masked_paths: unconfined_paths.then(Vec::new),
            readonly_paths: unconfined_paths.then(Vec::new),
        },
        volumes_from: a.volumes_from.clone(),
        tty: a.tty,
        open_stdin: a.interactive,
        stdin_once: a.interactive && !a.detach,
        attach: (a.interactive, !a.detach, !a.detach),
        labels,
        exposed_ports: exposed,
        stop_signal: a.stop_signal.clone(),
        stop_timeout: a.stop_timeout,
        auto_remove: a.rm,
        restart_policy: RestartPolicy::parse(&a.restart).map_err(failed)?,
        network_mode: a.network.clone(),
        read_only: a.read_only,
        no_new_privileges: nnp,
        cap_add: a.cap_add.clone(),
        cap_drop: a.cap_drop.clone(),
        resources: {
            let mut r = a.limits.resources()?;
            r.pids_limit = r.pids_limit.filter(|p| *p > 0);
            r.memory_swappiness = a.memory_swappiness;
            r.oom_kill_disable = a.oom_kill_disable;
            r
        },
        log_config,
        console_size,
        volumes: Vec::new(),
        unsupported,
    })
}

/// `berth create`: prints the new container's id.
pub fn create(root: &Path, a: RunArgs) -> Result<ExitCode> {
    let engine = Engine::open(root).map_err(failed)?;
    let cfg = create_config(&a)?;
    let image = crate::pull_cmd::ensure_image(engine.images(), &a.image, &a.pull, a.quiet)
        .map_err(|e| failed(format!("{e:#}")))?;
    let (id, warnings) = engine.create(&image, &a.image, &cfg).map_err(failed)?;
    for w in warnings {
        eprintln!("WARNING: {w}");
    }
    println!("{id}");
    Ok(ExitCode::SUCCESS)
}

/// Runs it; the exit code is the container's (125 for berth's own
/// failures, 126/127 when the command cannot be run or found).
pub fn run(root: &Path, a: RunArgs) -> Result<ExitCode> {
    if a.tty && !a.detach && !std::io::stdin().is_terminal() {
        return Err(failed("the input device is not a TTY"));
    }
    let engine = Engine::open(root).map_err(failed)?;
    let cfg = create_config(&a)?;
    let image = crate::pull_cmd::ensure_image(engine.images(), &a.image, &a.pull, a.quiet)
        .map_err(|e| failed(format!("{e:#}")))?;
    let (id, warnings) = engine.create(&image, &a.image, &cfg).map_err(failed)?;
    for w in warnings {
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
    match start_attached(
        &engine,
        root,
        &id,
        a.interactive,
        a.tty,
        a.sig_proxy && !a.tty,
    ) {
        Ok(code) => Ok(ExitCode::from(code.clamp(0, 255) as u8)),
        Err(e) => {
            if a.rm {
                let _ = engine.remove(&id, true, true);
            }
            start_failure(&e.to_string())
        }
    }
}

/// Starts a container (or joins it if it runs) attached to our stdio, and
/// returns its exit code (`run` without `-d`, `start -a`). Err: the start
/// failed.
pub(crate) fn start_attached(
    engine: &Engine,
    root: &Path,
    id: &str,
    interactive: bool,
    tty: bool,
    sig_proxy: bool,
) -> Result<i32, berth_engine::Error> {
    let dir = root.join("containers").join(id);
    let mut attach = None;
    let mut waiter = None;
    let started = engine.start(id, || {
        attach = engine.attach(id, interactive, true, true);
        waiter = berth_engine::monitor::connect(&dir, &serde_json::json!({"wait": true}));
        Ok(())
    });
    match started {
        Ok(()) => {}
        // already running: attach to it as it is
        Err(berth_engine::Error::NotModified(_)) => {
            attach = engine.attach(id, interactive, true, true);
            waiter = berth_engine::monitor::connect(&dir, &serde_json::json!({"wait": true}));
        }
        Err(e) => return Err(e),
    }
    if let Some(s) = attach {
        let _ = relay(engine, id, s, tty, interactive, sig_proxy);
    }
    let code = match waiter {
        Some(mut w) => {
            let mut line = String::new();
            let _ = w.read_to_string(&mut line);
            line.trim().parse::<i32>().ok()
        }
        None => None,
    };
    Ok(match code {
        Some(c) => c,
        None => engine
            .wait(id, berth_engine::WaitCondition::NotRunning, &|| false)
            .unwrap_or(125),
    })
}

fn start_failure(msg: &str) -> Result<ExitCode> {
    let code = berth_engine::monitor::start_failure_code(msg);
    if code == 125 {
        return Err(failed(msg));
    }
    eprintln!("berth: {msg}");
    Ok(ExitCode::from(code as u8))
}

/// Copies the monitor's frames to our stdout/stderr and our stdin to the
/// container until the container's output ends; forwards signals.
pub(crate) fn relay(
    engine: &Engine,
    id: &str,
    sock: std::os::unix::net::UnixStream,
    tty: bool,
    interactive: bool,
    sig_proxy: bool,
) -> Result<()> {
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
    let mut sock_r = sock.try_clone()?;
    let mut sock_w = Some(sock);
    let mut stdin_open = interactive;
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr();
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    loop {
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
        {
            let _ = engine.kill(id, &info.signo.to_string());
        }
        if stdin_ready {
            let n = std::io::stdin().lock().read(&mut buf).unwrap_or(0);
            match (&mut sock_w, n) {
                (Some(w), n) if n > 0 => {
                    if w.write_all(&buf[..n]).is_err() {
                        stdin_open = false;
                    }
                }
                (Some(w), _) => {
                    let _ = w.shutdown(std::net::Shutdown::Write);
                    stdin_open = false;
                }
                _ => stdin_open = false,
            }
        }
        if sock_ready {
            let n = sock_r.read(&mut buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            pending.extend_from_slice(&buf[..n]);
            while pending.len() >= 8 {
                let len =
                    u32::from_be_bytes([pending[4], pending[5], pending[6], pending[7]]) as usize;
                if pending.len() < 8 + len {
                    break;
                }
                let data = &pending[8..8 + len];
                if pending[0] == 2 {
                    let _ = err.write_all(data);
                } else {
                    let _ = out.write_all(data);
                    let _ = out.flush();
                }
                pending.drain(..8 + len);
            }
        }
    }
    let _ = sock_w.take();
    Ok(())
}
