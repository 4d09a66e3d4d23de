//! `berth stats`: live resource use of containers, with docker's table.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use berth_engine::Engine;
use berth_engine::stats::{Sample, cpu_percent};
use clap::Args;

/// `berth stats` flags.
#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    all: bool,
    /// Disable streaming stats and only pull the first result.
    #[arg(long)]
    no_stream: bool,
    /// Do not truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Format output using a Go-like template (`table`, `json`, or a template).
    #[arg(long)]
    format: Option<String>,
    /// Containers (default: all running).
    containers: Vec<String>,
}

/// Four significant digits, trailing zeros dropped (go-units' `%.4g`).
fn sig4(v: f64) -> String {
    let decimals = if v >= 1000.0 {
        0
    } else if v >= 100.0 {
        1
    } else if v >= 10.0 {
        2
    } else {
        3
    };
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// Binary units, as docker shows memory (`1.5MiB`).
fn binary(b: u64) -> String {
    const U: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b}B")
    } else {
        sig4(v) + U[i]
    }
}

/// Decimal units, as docker shows IO (`12.3kB`).
fn decimal(b: u64) -> String {
    const U: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1000.0 && i < U.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{b}B")
    } else {
        sig4(v) + U[i]
    }
}

fn row(
    id: &str,
    name: &str,
    pre: &Sample,
    cur: &Sample,
    no_trunc: bool,
) -> BTreeMap<String, String> {
    let mut f = BTreeMap::new();
    let used = cur.memory_used();
    let limit = cur.memory_limit();
    let (r, w) = cur.block_io();
    let run = cur.running;
    f.insert(
        "ID".into(),
        if no_trunc {
            id.to_owned()
        } else {
            berth_types::short_id(id).to_owned()
        },
    );
    f.insert("Container".into(), f["ID"].clone());
    f.insert("Name".into(), name.to_owned());
    f.insert(
        "CPUPerc".into(),
        if run {
            format!("{:.2}%", cpu_percent(pre, cur))
        } else {
            "--".into()
        },
    );
    f.insert(
        "MemUsage".into(),
        if run {
            format!("{} / {}", binary(used), binary(limit))
        } else {
            "-- / --".into()
        },
    );
    f.insert(
        "MemPerc".into(),
        if run && limit > 0 {
            format!("{:.2}%", used as f64 / limit as f64 * 100.0)
        } else {
            "--".into()
        },
    );
    f.insert(
        "NetIO".into(),
        if run {
            "0B / 0B".into()
        } else {
            "-- / --".into()
        },
    );
    f.insert(
        "BlockIO".into(),
        if run {
            format!("{} / {}", decimal(r), decimal(w))
        } else {
            "-- / --".into()
        },
    );
    f.insert(
        "PIDs".into(),
        if run {
            cur.stats.pids.current.to_string()
        } else {
            "--".into()
        },
    );
    f
}

/// Runs `berth stats`.
pub fn stats(root: &Path, a: &StatsArgs) -> Result<ExitCode> {
    let engine = Engine::open(root)?;
    let targets: Vec<(String, String)> = if a.containers.is_empty() {
        engine
            .list()
            .into_iter()
            .filter(|c| a.all || c.state.is_active())
            .map(|c| (c.record.id, c.record.name))
            .collect()
    } else {
        a.containers
            .iter()
            .map(|k| engine.container(k).map(|c| (c.record.id, c.record.name)))
            .collect::<Result<_, _>>()?
    };
    let fmt = match a.format.as_deref() {
        None | Some("table") => {
            "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
        }
        Some("json") => "{{json .}}",
        Some(f) => f,
    };
    let headers: BTreeMap<&str, &str> = [
        ("ID", "CONTAINER ID"),
        ("Container", "CONTAINER"),
        ("Name", "NAME"),
        ("CPUPerc", "CPU %"),
        ("MemUsage", "MEM USAGE / LIMIT"),
        ("MemPerc", "MEM %"),
        ("NetIO", "NET I/O"),
        ("BlockIO", "BLOCK I/O"),
        ("PIDs", "PIDS"),
    ]
    .into_iter()
    .collect();
    let sample_all = || -> Vec<Sample> {
        targets
            .iter()
            .map(|(id, _)| engine.stats_sample(id).unwrap_or_default())
            .collect()
    };
    let mut pre = sample_all();
    std::thread::sleep(Duration::from_millis(500));
    loop {
        let cur = sample_all();
        let items: Vec<_> = targets
            .iter()
            .zip(pre.iter().zip(cur.iter()))
            .map(|((id, name), (p, c))| {
                let f = row(id, name, p, c, a.no_trunc);
                let j = serde_json::to_value(&f).unwrap_or_default();
                (f, j)
            })
            .collect();
        if !a.no_stream {
            // clear the screen, as docker does
            print!("\x1b[2J\x1b[H");
        }
        crate::format::print_formatted(fmt, &items, &headers);
        if a.no_stream {
            return Ok(ExitCode::SUCCESS);
        }
        pre = cur;
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn units_like_docker() {
        assert_eq!(super::binary(512), "512B");
        assert_eq!(super::binary(1536 * 1024), "1.5MiB");
        assert_eq!(super::decimal(12_300), "12.3kB");
        assert_eq!(super::decimal(0), "0B");
        assert_eq!(super::binary(25_276_000_000), "23.54GiB");
    }
}
