//! `berth network create|ls|inspect|rm|prune` and `berth port`, with
//! docker's flags and output, over the engine (no daemon needed).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use berth_engine::Engine;
use clap::{Args, Subcommand};

/// `berth network …`.
#[derive(Subcommand, Debug)]
pub enum NetworkCommand {
    /// Create a network.
    Create(CreateArgs),
    /// List networks.
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more networks.
    Inspect(InspectArgs),
    /// Remove one or more networks.
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove all unused networks.
    Prune(PruneArgs),
    /// Connect a container to a network.
    Connect {
        /// Add network-scoped alias for the container.
        #[arg(long)]
        alias: Vec<String>,
        /// IPv4 address.
        #[arg(long)]
        ip: Option<String>,
        /// Network.
        network: String,
        /// Container.
        container: String,
    },
    /// Disconnect a container from a network.
    Disconnect {
        /// Force the container to disconnect from a network.
        #[arg(short, long)]
        force: bool,
        /// Network.
        network: String,
        /// Container.
        container: String,
    },
}

/// `network create`.
#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Driver to manage the Network.
    #[arg(short, long, default_value = "bridge")]
    driver: String,
    /// Subnet in CIDR format that represents a network segment.
    #[arg(long)]
    subnet: Option<String>,
    /// IPv4 Gateway for the master subnet.
    #[arg(long)]
    gateway: Option<String>,
    /// Allocate container ip from a sub-range.
    #[arg(long)]
    ip_range: Option<String>,
    /// Restrict external access to the network.
    #[arg(long)]
    internal: bool,
    /// Enable manual container attachment.
    #[arg(long)]
    attachable: bool,
    /// Set metadata on a network.
    #[arg(long)]
    label: Vec<String>,
    /// Set driver specific options.
    #[arg(short, long = "opt")]
    opt: Vec<String>,
    /// Auxiliary IPv4 addresses used by the network driver (`NAME=IP`).
    #[arg(long)]
    aux_address: Vec<String>,
    /// Set IPAM driver specific options.
    #[arg(long)]
    ipam_opt: Vec<String>,
    /// Enable IPv6 networking.
    #[arg(long)]
    ipv6: bool,
    /// Network name.
    name: String,
}

/// `network ls`.
#[derive(Args, Debug)]
pub struct LsArgs {
    /// Only display network IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Do not truncate the output.
    #[arg(long)]
    no_trunc: bool,
    /// Filter (`name=…`, `driver=…`, `type=custom|builtin`).
    #[arg(short, long)]
    filter: Vec<String>,
    /// Format output using a Go-like template.
    #[arg(long)]
    format: Option<String>,
}

/// `network inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a Go-like template.
    #[arg(short, long)]
    format: Option<String>,
    /// Networks.
    #[arg(required = true)]
    networks: Vec<String>,
}

/// `network rm`.
#[derive(Args, Debug)]
pub struct RmArgs {
    /// Do not error if the network does not exist.
    #[arg(short, long)]
    force: bool,
    /// Networks.
    #[arg(required = true)]
    networks: Vec<String>,
}

/// `network prune`.
#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    force: bool,
}

use crate::format::key_values as kv;

/// Runs a `network` subcommand.
pub fn run(root: &Path, c: NetworkCommand) -> Result<ExitCode> {
    let engine = Engine::open(root)?;
    match c {
        NetworkCommand::Create(a) => {
            if a.ipv6 {
                anyhow::bail!("not supported yet: IPv6 networks");
            }
            let n = engine.create_network(&berth_net::CreateNetwork {
                name: a.name.clone(),
                driver: a.driver.clone(),
                subnet: a.subnet.clone(),
                gateway: a.gateway.clone(),
                ip_range: a.ip_range.clone(),
                internal: a.internal,
                attachable: a.attachable,
                labels: kv(&a.label),
                options: kv(&a.opt),
                aux_addresses: kv(&a.aux_address),
                ipam_options: Some(kv(&a.ipam_opt)),
            })?;
            println!("{}", n.id);
        }
        NetworkCommand::Ls(a) => {
            let f = berth_engine::filter::Filters::from_pairs(a.filter.iter().map(String::as_str))?;
            let list = engine.networks_filtered(&f)?;
            if a.quiet {
                for n in &list {
                    println!(
                        "{}",
                        if a.no_trunc {
                            &n.id
                        } else {
                            berth_types::short_id(&n.id)
                        }
                    );
                }
                return Ok(ExitCode::SUCCESS);
            }
            let items: Vec<_> = list
                .iter()
                .map(|n| {
                    let mut f = BTreeMap::new();
                    f.insert(
                        "ID".to_owned(),
                        if a.no_trunc {
                            n.id.clone()
                        } else {
                            berth_types::short_id(&n.id).to_owned()
                        },
                    );
                    f.insert("Name".to_owned(), n.name.clone());
                    f.insert("Driver".to_owned(), n.driver.clone());
                    f.insert("Scope".to_owned(), "local".to_owned());
                    f.insert(
                        "Internal".to_owned(),
                        n.network.as_ref().is_some_and(|m| m.internal).to_string(),
                    );
                    (f, berth_docker_api::shapes::network(n))
                })
                .collect();
            let fmt = match a.format.as_deref() {
                None | Some("table") => "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
                Some("json") => "{{json .}}",
                Some(f) => f,
            };
            let headers: BTreeMap<&str, &str> = [
                ("ID", "NETWORK ID"),
                ("Name", "NAME"),
                ("Driver", "DRIVER"),
                ("Scope", "SCOPE"),
                ("Internal", "INTERNAL"),
            ]
            .into_iter()
            .collect();
            crate::format::print_formatted(fmt, &items, &headers);
        }
        NetworkCommand::Inspect(a) => {
            let mut docs = Vec::new();
            let mut failed = false;
            for n in &a.networks {
                match engine.network(n) {
                    Ok(v) => docs.push(berth_docker_api::shapes::network(&v)),
                    Err(e) => {
                        eprintln!("Error: {e}");
                        failed = true;
                    }
                }
            }
            crate::format::print_inspect(&docs, a.format.as_deref())?;
            if failed {
                return Ok(ExitCode::from(1));
            }
        }
        NetworkCommand::Rm(a) => {
            let mut failed = false;
            for n in &a.networks {
                match engine.remove_network(n) {
                    Ok(()) => println!("{n}"),
                    Err(berth_engine::Error::NotFound(_)) if a.force => {}
                    Err(e) => {
                        eprintln!("Error: {e}");
                        failed = true;
                    }
                }
            }
            if failed {
                return Ok(ExitCode::from(1));
            }
        }
        NetworkCommand::Prune(_) => {
            let names = engine.prune_networks(&Default::default(), None)?;
            if !names.is_empty() {
                println!("Deleted Networks:");
                for n in names {
                    println!("{n}");
                }
            }
        }
        NetworkCommand::Connect {
            alias,
            ip,
            network,
            container,
        } => {
            let ipv4_address = match ip {
                Some(ip) => Some(
                    ip.parse()
                        .map_err(|_| anyhow::anyhow!("invalid IPv4 address: {ip}"))?,
                ),
                None => None,
            };
            let ep = berth_engine::config::EndpointSpec {
                network: network.clone(),
                aliases: alias,
                ipv4_address,
                ..Default::default()
            };
            engine.network_connect(&network, &container, ep)?
        }
        NetworkCommand::Disconnect {
            force,
            network,
            container,
        } => engine.network_disconnect(&network, &container, force)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `berth port CONTAINER [PRIVATE_PORT[/PROTO]]`.
pub fn port(root: &Path, container: &str, private: Option<&str>) -> Result<ExitCode> {
    let engine = Engine::open(root)?;
    let c = engine.container(container)?;
    let want = private.map(|p| {
        let (port, proto) = p.split_once('/').unwrap_or((p, "tcp"));
        (port.to_owned(), proto.to_owned())
    });
    let mut any = false;
    for e in &c.endpoints {
        for b in &e.ports {
            let proto = b.proto.to_string();
            match &want {
                Some((p, pr)) if *p != b.container_port.to_string() || *pr != proto => {}
                Some(_) => {
                    println!("{}:{}", b.host_ip, b.host_port);
                    any = true;
                }
                None => {
                    println!(
                        "{}/{proto} -> {}:{}",
                        b.container_port, b.host_ip, b.host_port
                    );
                    any = true;
                }
            }
        }
    }
    if let Some((p, pr)) = want
        && !any
    {
        anyhow::bail!("no public port '{p}/{pr}' published for {container}");
    }
    Ok(ExitCode::SUCCESS)
}
