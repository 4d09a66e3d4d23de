//! Container verbs with docker's flags and output: `ps`, `logs`, `start`,
//! `stop`, `restart`, `kill`, `rm`, `inspect`, `wait`, `rename`, `pause`,
//! `unpause`, `top`. They call the engine directly: no daemon needed, and
//! what `berth daemon` serves is the same state.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, anyhow};
use berth_engine::logs::LogOptions;
use berth_engine::{Engine, WaitCondition};
use clap::Args;

/// `berth ps`.
#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    all: bool,
    /// Only display container IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Don't truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Filter output (name=, id=, status=, label=, ancestor=, exited=).
    #[arg(short, long)]
    filter: Vec<String>,
    /// Format output using a Go-template-like string (`table`, `json`).
    #[arg(long)]
    format: Option<String>,
    /// Show the n last created containers (includes all states).
    #[arg(short = 'n', long)]
    last: Option<usize>,
    /// Show the latest created container (includes all states).
    #[arg(short, long)]
    latest: bool,
}

/// `berth logs`.
#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Follow log output.
    #[arg(short, long)]
    follow: bool,
    /// Show logs since timestamp or relative (e.g. 42m).
    #[arg(long)]
    since: Option<String>,
    /// Show logs before a timestamp or relative (e.g. 42m).
    #[arg(long)]
    until: Option<String>,
    /// Number of lines to show from the end of the logs ("all").
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Show timestamps.
    #[arg(short, long)]
    timestamps: bool,
    /// Container.
    container: String,
}

/// Verbs over one or more containers.
#[derive(Args, Debug)]
pub struct ManyArgs {
    /// Seconds to wait before killing (stop, restart).
    #[arg(short = 't', long = "time", visible_alias = "timeout")]
    time: Option<i64>,
    /// Signal to send (kill).
    #[arg(short, long)]
    signal: Option<String>,
    /// Force the removal of a running container (rm).
    #[arg(short, long)]
    force: bool,
    /// Remove the container's anonymous volumes (rm).
    #[arg(short, long)]
    volumes: bool,
    /// Attach STDOUT/STDERR and forward signals (start).
    #[arg(short, long)]
    attach: bool,
    /// Attach the container's STDIN (start).
    #[arg(short, long)]
    interactive: bool,
    /// Override the key sequence for detaching a container (start).
    #[arg(long)]
    detach_keys: Option<String>,
    /// Containers.
    #[arg(required = true)]
    containers: Vec<String>,
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `berth ps`.
pub fn ps(root: &Path, a: &PsArgs) -> Result<()> {
    let engine = Engine::open(root)?;
    let list = engine.list();
    let show_all = a.all || a.last.is_some() || a.latest;
    let filters = berth_engine::filter::Filters::from_pairs(a.filter.iter().map(String::as_str))?;
    let mut kept = Vec::new();
    for c in list {
        if (show_all || c.state.is_active() || filters.has("status") || filters.has("exited"))
            && engine.container_matches(&c, &filters)?
        {
            kept.push(c);
        }
    }
    let mut list = kept;
    if a.latest {
        list.truncate(1);
    } else if let Some(n) = a.last {
        list.truncate(n);
    }
    if a.quiet {
        for c in &list {
            println!(
                "{}",
                if a.no_trunc {
                    &c.record.id
                } else {
                    berth_types::short_id(&c.record.id)
                }
            );
        }
        return Ok(());
    }
    let now = now_secs();
    let items: Vec<(BTreeMap<String, String>, serde_json::Value)> = list
        .iter()
        .map(|c| {
            let mut cmd = berth_docker_api::shapes::command_line(c);
            if !a.no_trunc && cmd.chars().count() > 20 {
                cmd = format!("{}…", cmd.chars().take(19).collect::<String>());
            }
            let mut f = BTreeMap::new();
            f.insert(
                "ID".into(),
                if a.no_trunc {
                    c.record.id.clone()
                } else {
                    berth_types::short_id(&c.record.id).to_owned()
                },
            );
            f.insert("Image".into(), c.record.image.clone());
            f.insert("Command".into(), format!("\"{cmd}\""));
            f.insert("CreatedAt".into(), c.record.created.clone());
            f.insert(
                "RunningFor".into(),
                format!(
                    "{} ago",
                    berth_docker_api::shapes::text::human_duration(
                        now - berth_docker_api::shapes::text::unix_secs(&c.record.created)
                            .unwrap_or(now)
                    )
                ),
            );
            f.insert(
                "Status".into(),
                berth_docker_api::shapes::status_text(c, now),
            );
            f.insert("State".into(), c.state.status.as_str().into());
            f.insert(
                "Ports".into(),
                c.endpoints
                    .iter()
                    .flat_map(|e| e.ports.iter())
                    .map(|b| {
                        format!(
                            "{}:{}->{}/{}",
                            b.host_ip, b.host_port, b.container_port, b.proto
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            f.insert("Names".into(), c.record.name.clone());
            f.insert(
                "Labels".into(),
                c.record
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(","),
            );
            let json = berth_docker_api::shapes::summary(c, now);
            (f, json)
        })
        .collect();
    let default = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";
    let fmt = match a.format.as_deref() {
        None | Some("table") => default,
        Some("json") => "{{json .}}",
        Some(f) => f,
    };
    let headers: BTreeMap<&str, &str> = [
        ("ID", "CONTAINER ID"),
        ("Image", "IMAGE"),
        ("Command", "COMMAND"),
        ("CreatedAt", "CREATED AT"),
        ("RunningFor", "CREATED"),
        ("Status", "STATUS"),
        ("State", "STATE"),
        ("Ports", "PORTS"),
        ("Names", "NAMES"),
        ("Labels", "LABELS"),
    ]
    .into_iter()
    .collect();
    crate::format::print_formatted(fmt, &items, &headers);
    Ok(())
}

/// `berth logs`.
pub fn logs(root: &Path, a: &LogsArgs) -> Result<()> {
    let engine = Engine::open(root)?;
    let mut opts = LogOptions {
        stdout: true,
        stderr: true,
        follow: a.follow,
        ..Default::default()
    };
    let now = crate::format::now_ns();
    if let Some(s) = &a.since {
        opts.since =
            Some(berth_docker_api::syntax::parse_timestamp(s, now).map_err(|e| anyhow!(e))?);
    }
    if let Some(u) = &a.until {
        opts.until =
            Some(berth_docker_api::syntax::parse_timestamp(u, now).map_err(|e| anyhow!(e))?);
    }
    if a.tail != "all" {
        match a.tail.parse::<i64>() {
            Ok(n) if n >= 0 => opts.tail = Some(n as usize),
            Ok(_) => {}
            Err(_) => return Err(anyhow!("invalid value for --tail: {}", a.tail)),
        }
    }
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr();
    engine.logs(&a.container, &opts, |e| {
        let ts = if a.timestamps {
            format!("{} ", e.time)
        } else {
            String::new()
        };
        let r = if e.stream == 2 {
            err.write_all(ts.as_bytes())
                .and_then(|()| err.write_all(&e.line))
        } else {
            out.write_all(ts.as_bytes())
                .and_then(|()| out.write_all(&e.line))
                .and_then(|()| out.flush())
        };
        r.is_ok()
    })?;
    Ok(())
}

/// Runs `f` on each container, printing its name as docker does; the exit
/// status is 1 if any failed.
fn each(names: &[String], mut f: impl FnMut(&str) -> Result<()>) -> Result<ExitCode> {
    let mut failed = false;
    for n in names {
        match f(n) {
            Ok(()) => println!("{n}"),
            Err(e) => {
                eprintln!("Error response from daemon: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn ignore_not_modified(r: berth_engine::Result<()>) -> Result<()> {
    match r {
        Ok(()) | Err(berth_engine::Error::NotModified(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// `berth start`.
pub fn start(root: &Path, a: &ManyArgs) -> Result<ExitCode> {
    let engine = Engine::open(root)?;
    if a.attach || a.interactive {
        let [name] = a.containers.as_slice() else {
            return Err(anyhow!(
                "you cannot start and attach multiple containers at once"
            ));
        };
        let c = engine.container(name)?;
        let keys = crate::run_cmd::detach_keys(a.detach_keys.as_deref())?;
        let ended = crate::run_cmd::start_attached(
            &engine,
            &c.record.id,
            a.interactive && c.record.open_stdin,
            c.record.tty,
            !c.record.tty,
            keys,
        )
        .map_err(|e| anyhow!("{e}"))?;
        return Ok(match ended {
            crate::run_cmd::Ended::Exited(code) => ExitCode::from(code.clamp(0, 255) as u8),
            crate::run_cmd::Ended::Detached => ExitCode::SUCCESS,
        });
    }
    each(&a.containers, |n| {
        ignore_not_modified(engine.start(n, || Ok(())))
    })
}

/// `berth stop`.
pub fn stop(root: &Path, a: &ManyArgs) -> Result<ExitCode> {
    let engine = Engine::open(root)?;
    each(&a.containers, |n| {
        ignore_not_modified(engine.stop(n, a.time))
    })
}

/// `berth restart`.
pub fn restart(root: &Path, a: &ManyArgs) -> Result<ExitCode> {
    let engine = Engine::open(root)?;
    each(&a.containers, |n| {
        ignore_not_modified(engine.stop(n, a.time))?;
        Ok(engine.start(n, || Ok(()))?)
    })
}

/// `berth kill`.
pub fn kill(root: &Path, a: &ManyArgs) -> Result<ExitCode> {
    let engine = Engine::open(root)?;
    let sig = match &a.signal {
        None => None,
        Some(s) => Some(
            s.parse::<berth_engine::config::Signal>()
                .map_err(|e| anyhow!("{e}"))?,
        ),
    };
    each(&a.containers, |n| Ok(engine.kill(n, sig)?))
}

/// `berth rm`.
pub fn rm(root: &Path, a: &ManyArgs) -> Result<ExitCode> {
    let engine = Engine::open(root)?;
    each(&a.containers, |n| Ok(engine.remove(n, a.force, a.volumes)?))
}

/// `berth pause` / `unpause`.
pub fn pause(root: &Path, a: &ManyArgs, pause: bool) -> Result<ExitCode> {
    let engine = Engine::open(root)?;
    each(&a.containers, |n| {
        if pause {
            engine.pause(n)?;
        } else {
            engine.unpause(n)?;
        }
        Ok(())
    })
}

/// `berth wait`: prints each exit code.
pub fn wait(root: &Path, a: &ManyArgs) -> Result<ExitCode> {
    let engine = Engine::open(root)?;
    let mut failed = false;
    for n in &a.containers {
        match engine.wait(n, WaitCondition::NotRunning, &|| false) {
            Ok(code) => println!("{code}"),
            Err(e) => {
                eprintln!("Error response from daemon: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `berth rename OLD NEW`.
pub fn rename(root: &Path, old: &str, new: &str) -> Result<()> {
    Ok(Engine::open(root)?.rename(old, new)?)
}

/// `berth top`.
pub fn top(root: &Path, container: &str) -> Result<()> {
    let engine = Engine::open(root)?;
    let top = engine.top(container, None)?;
    let titles: Vec<&str> = top.titles.iter().map(String::as_str).collect();
    let mut t = crate::format::Table::new(&titles);
    for row in top.processes {
        t.row(row);
    }
    print!("{}", t.render());
    Ok(())
}

/// `berth inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a Go-template-like string.
    #[arg(short, long)]
    format: Option<String>,
    /// Containers or images.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `berth inspect` (containers, then images, as docker's generic inspect).
pub fn inspect(root: &Path, a: &InspectArgs) -> Result<ExitCode> {
    let engine = Engine::open(root)?;
    let mut docs = Vec::new();
    let mut failed = false;
    for n in &a.containers {
        match engine.container(n) {
            Ok(c) => docs.push(berth_docker_api::shapes::inspect(&c)),
            Err(berth_engine::Error::NotFound(_)) => match engine.images().resolve(n) {
                Ok(rec) => docs.push(berth_docker_api::shapes::image_inspect(
                    engine.images(),
                    &rec.id,
                    99,
                )?),
                Err(_) => {
                    eprintln!("Error: No such object: {n}");
                    failed = true;
                }
            },
            Err(e) => return Err(e.into()),
        }
    }
    crate::format::print_inspect(&docs, a.format.as_deref())?;
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
