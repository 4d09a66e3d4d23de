//! `berth system df|prune` and `berth container prune`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use berth_engine::Engine;
use clap::Subcommand;

use crate::format::{Table, human_size};

/// `berth system …`.
#[derive(Subcommand, Debug)]
pub enum SystemCommand {
    /// Show docker disk usage.
    Df,
    /// Remove unused data.
    Prune {
        /// Remove all unused images not just dangling ones.
        #[arg(short, long)]
        all: bool,
        /// Prune anonymous volumes.
        #[arg(long)]
        volumes: bool,
        /// Do not prompt for confirmation.
        #[arg(short, long)]
        force: bool,
    },
}

/// `berth container …`.
#[derive(Subcommand, Debug)]
pub enum ContainerCommand {
    /// Remove all stopped containers.
    Prune {
        /// Do not prompt for confirmation.
        #[arg(short, long)]
        force: bool,
    },
}

/// Runs `berth container prune`.
pub fn container(root: &Path, c: ContainerCommand) -> Result<ExitCode> {
    let engine = Engine::open(root)?;
    let ContainerCommand::Prune { .. } = c;
    let (ids, bytes) = engine.prune_containers(&Default::default(), None)?;
    if !ids.is_empty() {
        println!("Deleted Containers:");
        for i in &ids {
            println!("{i}");
        }
        println!();
    }
    println!("Total reclaimed space: {}", human_size(bytes));
    Ok(ExitCode::SUCCESS)
}

/// Runs `berth system …`.
pub fn run(root: &Path, c: SystemCommand) -> Result<ExitCode> {
    let engine = Engine::open(root)?;
    match c {
        SystemCommand::Df => {
            let used = engine.images_in_use();
            let images = engine.images().list()?;
            let isize: u64 = images.iter().map(|s| s.record.size).sum();
            let ireclaim: u64 = images
                .iter()
                .filter(|s| !used.contains(&s.record.id))
                .map(|s| s.record.size)
                .sum();
            let cs = engine.container_usage();
            let csize: u64 = cs.iter().map(|u| u.size_rw).sum();
            let creclaim: u64 = cs
                .iter()
                .filter(|u| !u.container.state.is_active())
                .map(|u| u.size_rw)
                .sum();
            let vols = engine.volumes();
            let all = engine.list();
            let mut vsize = 0;
            let mut vreclaim = 0;
            let mut vactive = 0;
            for v in &vols {
                let s = berth_engine::system::dir_size(Path::new(&v.mountpoint));
                vsize += s;
                if all
                    .iter()
                    .any(|c| c.record.mounts.iter().any(|m| m.name == v.name))
                {
                    vactive += 1;
                } else {
                    vreclaim += s;
                }
            }
            let pct = |r: u64, t: u64| {
                format!(
                    "{} ({}%)",
                    human_size(r),
                    (r * 100).checked_div(t).unwrap_or(0)
                )
            };
            let mut t = Table::new(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]);
            t.row(vec![
                "Images".into(),
                images.len().to_string(),
                images
                    .iter()
                    .filter(|s| used.contains(&s.record.id))
                    .count()
                    .to_string(),
                human_size(isize),
                pct(ireclaim, isize),
            ]);
            t.row(vec![
                "Containers".into(),
                cs.len().to_string(),
                cs.iter()
                    .filter(|u| u.container.state.is_active())
                    .count()
                    .to_string(),
                human_size(csize),
                pct(creclaim, csize),
            ]);
            t.row(vec![
                "Local Volumes".into(),
                vols.len().to_string(),
                vactive.to_string(),
                human_size(vsize),
                pct(vreclaim, vsize),
            ]);
            t.row(vec![
                "Build Cache".into(),
                "0".into(),
                "0".into(),
                "0B".into(),
                "0B".into(),
            ]);
            print!("{}", t.render());
        }
        SystemCommand::Prune { all, volumes, .. } => {
            let (ids, cbytes) = engine.prune_containers(&Default::default(), None)?;
            let nets = engine.prune_networks(&Default::default(), None)?;
            let (vnames, vbytes) = if volumes {
                engine.prune_volumes(&Default::default(), false)?
            } else {
                (Vec::new(), 0)
            };
            let used = engine.images_in_use();
            let (removed, gc) = engine.images().prune(all, &|d| used.contains(d))?;
            for (title, list) in [
                ("Deleted Containers:", ids),
                ("Deleted Networks:", nets),
                ("Deleted Volumes:", vnames),
            ] {
                if !list.is_empty() {
                    println!("{title}");
                    for i in list {
                        println!("{i}");
                    }
                    println!();
                }
            }
            if !removed.is_empty() {
                println!("Deleted Images:");
                for r in &removed {
                    match r {
                        berth_image::Removed::Untagged(n) => println!("untagged: {n}"),
                        berth_image::Removed::Deleted(d) => println!("deleted: {d}"),
                    }
                }
                println!();
            }
            println!(
                "Total reclaimed space: {}",
                human_size(cbytes + vbytes + gc.bytes)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
