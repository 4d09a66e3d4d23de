//! `berth volume create|ls|inspect|rm|prune` with docker's flags and
//! output, over the engine's volumes (no daemon needed).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use berth_engine::Engine;
use clap::{Args, Subcommand};

/// `berth volume …`.
#[derive(Subcommand, Debug)]
pub enum VolumeCommand {
    /// Create a volume.
    Create(CreateArgs),
    /// List volumes.
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes.
    Inspect(InspectArgs),
    /// Remove one or more volumes.
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove unused local volumes.
    Prune(PruneArgs),
}

/// `volume create`.
#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Specify volume driver name.
    #[arg(short, long, default_value = "local")]
    driver: String,
    /// Set driver specific options.
    #[arg(short, long = "opt")]
    opt: Vec<String>,
    /// Set metadata for a volume.
    #[arg(long)]
    label: Vec<String>,
    /// Volume name (random when absent).
    name: Option<String>,
}

/// `volume ls`.
#[derive(Args, Debug)]
pub struct LsArgs {
    /// Only display volume names.
    #[arg(short, long)]
    quiet: bool,
    /// Filter (`dangling=true|false`, `name=…`, `label=…`, `driver=…`).
    #[arg(short, long)]
    filter: Vec<String>,
    /// Format output using a Go-like template (`table`, `json`, or a template).
    #[arg(long)]
    format: Option<String>,
}

/// `volume inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a Go-like template.
    #[arg(short, long)]
    format: Option<String>,
    /// Volumes.
    #[arg(required = true)]
    volumes: Vec<String>,
}

/// `volume rm`.
#[derive(Args, Debug)]
pub struct RmArgs {
    /// Do not fail when a volume does not exist.
    #[arg(short, long)]
    force: bool,
    /// Volumes.
    #[arg(required = true)]
    volumes: Vec<String>,
}

/// `volume prune`.
#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones.
    #[arg(short, long)]
    all: bool,
    /// Filter (`label=…`).
    #[arg(long)]
    filter: Vec<String>,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    force: bool,
}

use crate::format::key_values as kv;

/// Runs a `volume` subcommand.
pub fn run(root: &Path, c: VolumeCommand) -> Result<ExitCode> {
    let engine = Engine::open(root)?;
    match c {
        VolumeCommand::Create(a) => {
            let v =
                engine.create_volume(a.name.as_deref(), &a.driver, &kv(&a.opt), &kv(&a.label))?;
            println!("{}", v.name);
        }
        VolumeCommand::Ls(a) => {
            let f = berth_engine::filter::Filters::from_pairs(a.filter.iter().map(String::as_str))?;
            let vols = engine.volumes_filtered(&f)?;
            if a.quiet {
                for v in &vols {
                    println!("{}", v.name);
                }
                return Ok(ExitCode::SUCCESS);
            }
            let items: Vec<_> = vols
                .iter()
                .map(|v| {
                    let mut f = BTreeMap::new();
                    f.insert("Name".to_owned(), v.name.clone());
                    f.insert("Driver".to_owned(), v.driver.clone());
                    f.insert("Scope".to_owned(), v.scope.clone());
                    f.insert("Mountpoint".to_owned(), v.mountpoint.clone());
                    f.insert(
                        "Labels".to_owned(),
                        v.labels
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(","),
                    );
                    (f, berth_docker_api::shapes::volume(v))
                })
                .collect();
            let fmt = match a.format.as_deref() {
                None | Some("table") => "table {{.Driver}}\t{{.Name}}",
                Some("json") => "{{json .}}",
                Some(f) => f,
            };
            let headers: BTreeMap<&str, &str> = [
                ("Driver", "DRIVER"),
                ("Name", "VOLUME NAME"),
                ("Scope", "SCOPE"),
                ("Mountpoint", "MOUNTPOINT"),
                ("Labels", "LABELS"),
            ]
            .into_iter()
            .collect();
            crate::format::print_formatted(fmt, &items, &headers);
        }
        VolumeCommand::Inspect(a) => {
            let mut docs = Vec::new();
            let mut failed = false;
            for n in &a.volumes {
                match engine.volume(n) {
                    Ok(v) => docs.push(berth_docker_api::shapes::volume(&v)),
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
        VolumeCommand::Rm(a) => {
            let mut failed = false;
            for n in &a.volumes {
                match engine.remove_volume(n, a.force) {
                    Ok(()) => println!("{n}"),
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
        VolumeCommand::Prune(a) => {
            let f = berth_engine::filter::Filters::from_pairs(a.filter.iter().map(String::as_str))?;
            let all = a.all || f.boolean("all")?.unwrap_or(false);
            let (names, bytes) = engine.prune_volumes(&f, all)?;
            if !names.is_empty() {
                println!("Deleted Volumes:");
                for n in &names {
                    println!("{n}");
                }
                println!();
            }
            println!(
                "Total reclaimed space: {}",
                crate::format::human_size(bytes)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
