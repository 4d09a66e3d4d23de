//! `berth events`: the engine's event log, as `docker events` shows it.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use berth_engine::events::{Query, read};
use clap::Args;

/// `berth events` flags.
#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Show all events created since timestamp.
    #[arg(long)]
    since: Option<String>,
    /// Stream events until this timestamp.
    #[arg(long)]
    until: Option<String>,
    /// Filter output based on conditions provided (`type=container`, `event=start`, …).
    #[arg(short, long)]
    filter: Vec<String>,
    /// Format output using a Go-like template (`json` or a template).
    #[arg(long)]
    format: Option<String>,
}

fn when(s: &Option<String>) -> Result<Option<i64>> {
    match s {
        None => Ok(None),
        Some(v) => Ok(Some(
            berth_docker_api::syntax::parse_timestamp(v, crate::format::now_ns())
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        )),
    }
}

/// Runs `berth events` (until interrupted, or `--until`).
pub fn events(root: &Path, a: &EventsArgs) -> Result<()> {
    let mut filters: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in &a.filter {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("bad format of filter (expected name=value)"))?;
        filters.entry(k.to_owned()).or_default().push(v.to_owned());
    }
    let until = when(&a.until)?;
    let q = Query {
        since: when(&a.since)?.or(if until.is_some() {
            None
        } else {
            Some(crate::format::now_ns())
        }),
        until,
        filters,
    };
    read(root, &q, true, &|| false, &mut |e| {
        let secs = e.time_nano / 1_000_000_000;
        let nanos = (e.time_nano % 1_000_000_000) as u32;
        let time = berth_runtime::state::format_rfc3339(secs, nanos);
        let line = match a.format.as_deref() {
            Some("json") | Some("{{json .}}") => berth_docker_api::shapes::event(e).to_string(),
            Some(t) => {
                let mut f = BTreeMap::new();
                f.insert("Type".to_owned(), e.kind.clone());
                f.insert("Action".to_owned(), e.action.clone());
                f.insert("ID".to_owned(), e.id.clone());
                f.insert("Time".to_owned(), time.clone());
                let j = serde_json::to_value(e).unwrap_or_default();
                crate::format::render_template(t, &f, &j)
            }
            None => {
                let attrs: Vec<String> = e
                    .attributes
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                format!(
                    "{time} {} {} {} ({})",
                    e.kind,
                    e.action,
                    e.id,
                    attrs.join(", ")
                )
            }
        };
        println!("{line}");
        true
    })?;
    Ok(())
}
