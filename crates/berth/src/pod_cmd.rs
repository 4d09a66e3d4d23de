//! `berth pod create|ls|inspect|stop|rm`: pod sandboxes from the command
//! line (what the node agent makes for a Kubernetes pod, and what `podman
//! pod` offers): a network namespace with its address and published ports,
//! shared IPC and host name, and a cgroup parent by QoS class. Containers
//! join one with `berth run --pod POD` / `berth create --pod POD`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use berth_docker_api::syntax;
use berth_engine::sandbox::{QosClass, Sandbox, SandboxNetwork, SandboxSpec, SandboxState};
use berth_engine::{Engine, PodRuntime};
use clap::{Args, Subcommand};

use crate::format::Table;
use crate::run_cmd::LimitArgs;

/// `berth pod …`.
#[derive(Subcommand, Debug)]
pub enum PodCommand {
    /// Create a pod sandbox (ready for containers: `run --pod`).
    Create(Box<CreateArgs>),
    /// List pod sandboxes.
    #[command(visible_alias = "list", visible_alias = "ps")]
    Ls(LsArgs),
    /// Display detailed information on one or more pods.
    Inspect {
        /// Pods (name, id or id prefix).
        #[arg(required = true)]
        pods: Vec<String>,
    },
    /// Stop the pods' containers and give their addresses back.
    Stop {
        /// Seconds to wait for each container before killing it.
        #[arg(short = 't', long = "time", visible_alias = "timeout")]
        time: Option<i64>,
        /// Pods.
        #[arg(required = true)]
        pods: Vec<String>,
    },
    /// Remove pods (and, with --force, their running containers).
    #[command(visible_alias = "remove")]
    Rm {
        /// Remove running containers too.
        #[arg(short, long)]
        force: bool,
        /// Pods.
        #[arg(required = true)]
        pods: Vec<String>,
    },
}

/// `pod create`.
#[derive(Args, Debug)]
pub struct CreateArgs {
    /// The pod's name (default: a generated one).
    #[arg(long)]
    name: Option<String>,
    /// The pod's host name (default: its name).
    #[arg(long)]
    hostname: Option<String>,
    /// Network: `bridge` (default), `none`, `host`, or a network's name.
    #[arg(long, visible_alias = "net", default_value = "bridge")]
    network: String,
    /// Fixed IPv4 address on the network.
    #[arg(long)]
    ip: Option<String>,
    /// DNS alias on the network.
    #[arg(long)]
    network_alias: Vec<String>,
    /// Publish a port of the pod to the host.
    #[arg(short, long)]
    publish: Vec<String>,
    /// Custom DNS servers.
    #[arg(long)]
    dns: Vec<String>,
    /// DNS search domains.
    #[arg(long)]
    dns_search: Vec<String>,
    /// DNS options.
    #[arg(long)]
    dns_option: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip).
    #[arg(long)]
    add_host: Vec<String>,
    /// Quality-of-service class: guaranteed, burstable, besteffort.
    #[arg(long, default_value = "burstable")]
    qos: String,
    /// Size of /dev/shm (e.g. 64m).
    #[arg(long)]
    shm_size: Option<String>,
    /// Namespaced kernel parameters (net.*, kernel.shm*, kernel.msg*, ...).
    #[arg(long)]
    sysctl: Vec<String>,
    /// Metadata.
    #[arg(short, long)]
    label: Vec<String>,
    /// One process namespace for all the pod's containers, held by a
    /// pause process (Kubernetes' shareProcessNamespace).
    #[arg(long)]
    share_pid: bool,
    #[command(flatten)]
    limits: LimitArgs,
}

/// `pod ls`.
#[derive(Args, Debug)]
pub struct LsArgs {
    /// Only display pod IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Don't truncate output.
    #[arg(long)]
    no_trunc: bool,
}

/// Runs a `pod` verb.
pub fn run(root: &Path, c: PodCommand) -> Result<ExitCode> {
    let engine = Engine::open(root)?;
    match c {
        PodCommand::Create(a) => {
            let spec = sandbox_spec(&a)?;
            println!("{}", engine.run_sandbox(&spec)?);
        }
        PodCommand::Ls(a) => list(&engine, &a),
        PodCommand::Inspect { pods } => {
            let mut docs = Vec::new();
            let mut missing = None;
            for p in &pods {
                match engine.sandbox(p) {
                    Ok(s) => docs.push(inspect(&engine, &s)),
                    Err(e) => {
                        eprintln!("Error: {e}");
                        missing = Some(());
                    }
                }
            }
            crate::format::print_inspect(&docs, None)?;
            if missing.is_some() {
                return Ok(ExitCode::FAILURE);
            }
        }
        PodCommand::Stop { time, pods } => {
            return each(&pods, |p| engine.stop_sandbox(p, time).map_err(Into::into));
        }
        PodCommand::Rm { force, pods } => {
            return each(&pods, |p| {
                if !force {
                    let running: Vec<String> = engine
                        .sandbox_containers(p)?
                        .iter()
                        .filter(|c| c.state.is_active())
                        .map(|c| c.record.name.clone())
                        .collect();
                    if !running.is_empty() {
                        bail!(
                            "pod {p} has running containers ({}): stop them or use --force",
                            running.join(", ")
                        );
                    }
                }
                engine.remove_sandbox(p).map_err(Into::into)
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `f` on every pod, printing each name done (docker's style) and
/// each error; fails if any failed.
fn each(pods: &[String], mut f: impl FnMut(&str) -> Result<()>) -> Result<ExitCode> {
    let mut ok = true;
    for p in pods {
        match f(p) {
            Ok(()) => println!("{p}"),
            Err(e) => {
                eprintln!("Error: {e:#}");
                ok = false;
            }
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn sandbox_spec(a: &CreateArgs) -> Result<SandboxSpec> {
    let f = |e: String| anyhow!(e);
    let name = match &a.name {
        Some(n) => n.clone(),
        None => {
            let id = berth_engine::run::new_id()?;
            let byte = |i: usize| {
                id.get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .unwrap_or(0)
            };
            berth_engine::container::random_name(&[byte(0), byte(2)])
        }
    };
    let ip = match &a.ip {
        Some(ip) => Some(
            ip.parse()
                .map_err(|_| anyhow!("invalid IPv4 address: {ip}"))?,
        ),
        None => None,
    };
    let network = match a.network.as_str() {
        "none" | "host" if ip.is_some() || !a.network_alias.is_empty() => {
            bail!("--ip and --network-alias need a bridge network")
        }
        "none" => SandboxNetwork::None,
        "host" => SandboxNetwork::Host,
        "" | "default" => bail!("invalid network {:?}", a.network),
        n => SandboxNetwork::Bridge {
            network: n.to_owned(),
            aliases: a.network_alias.clone(),
            ip,
        },
    };
    let mut ports = Vec::new();
    for p in &a.publish {
        ports.extend(syntax::parse_publish(p).map_err(f)?);
    }
    let mut dns = berth_engine::config::Dns::default();
    for d in &a.dns {
        dns.servers
            .push(d.parse().map_err(|_| anyhow!("{d} is not an ip address"))?);
    }
    dns.search = a.dns_search.clone();
    dns.options = a.dns_option.clone();
    let mut extra_hosts = Vec::new();
    for h in &a.add_host {
        extra_hosts.push(syntax::parse_add_host(h).map_err(f)?);
    }
    let qos = match a.qos.as_str() {
        "guaranteed" | "Guaranteed" => QosClass::Guaranteed,
        "burstable" | "Burstable" => QosClass::Burstable,
        "besteffort" | "BestEffort" => QosClass::BestEffort,
        q => bail!("invalid QoS class {q:?}: guaranteed, burstable or besteffort"),
    };
    let shm_size = match &a.shm_size {
        Some(s) => Some(syntax::parse_size(s).map_err(f)?),
        None => None,
    };
    let mut sysctls = std::collections::BTreeMap::new();
    for s in &a.sysctl {
        let (k, v) = syntax::key_value(s, "sysctl").map_err(f)?;
        sysctls.insert(k.to_owned(), v.to_owned());
    }
    let mut resources = a.limits.resources()?;
    if resources.pids_limit == Some(-1) {
        resources.pids_limit = None;
    }
    Ok(SandboxSpec {
        hostname: a.hostname.clone().unwrap_or_else(|| name.clone()),
        fqdn: None,
        name,
        network,
        ports,
        dns,
        extra_hosts,
        qos,
        resources,
        shm_size,
        sysctls,
        labels: crate::format::key_values(&a.label),
        share_pid: a.share_pid,
    })
}

fn list(engine: &Engine, a: &LsArgs) {
    let mut pods = engine.sandboxes();
    pods.sort_by(|x, y| y.created.cmp(&x.created));
    let short = |id: &str| -> String {
        if a.no_trunc {
            id.to_owned()
        } else {
            id.chars().take(12).collect()
        }
    };
    if a.quiet {
        for s in &pods {
            println!("{}", short(&s.id));
        }
        return;
    }
    let mut t = Table::new(&[
        "POD ID",
        "NAME",
        "STATUS",
        "CREATED",
        "IP",
        "# OF CONTAINERS",
    ]);
    for s in &pods {
        let n = engine.sandbox_containers(&s.id).map_or(0, |c| c.len());
        t.row(vec![
            short(&s.id),
            s.name.clone(),
            state_text(s.state).to_owned(),
            crate::format::age_secs(&s.created)
                .map(|a| format!("{} ago", crate::format::human_duration(a)))
                .unwrap_or_default(),
            s.ip.map(|i| i.to_string()).unwrap_or_default(),
            n.to_string(),
        ]);
    }
    print!("{}", t.render());
}

fn state_text(s: SandboxState) -> &'static str {
    match s {
        SandboxState::Ready => "Ready",
        SandboxState::NotReady => "NotReady",
    }
}

fn inspect(engine: &Engine, s: &Sandbox) -> serde_json::Value {
    let mut v = serde_json::to_value(s).unwrap_or_default();
    let containers: Vec<serde_json::Value> = engine
        .sandbox_containers(&s.id)
        .unwrap_or_default()
        .iter()
        .map(|c| {
            serde_json::json!({
                "id": c.record.id,
                "name": c.record.name,
                "status": c.state.status.as_str(),
            })
        })
        .collect();
    v["containers"] = containers.into();
    v
}
