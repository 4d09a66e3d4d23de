//! `docker events`: what happened to containers, volumes, networks and
//! images, as one JSON line per event appended to `<root>/events.log` by
//! whichever process did it (the CLI, the daemon, a monitor). Lines are
//! written with one `write` on an `O_APPEND` file, so writers never
//! interleave; the log rotates to `events.log.1` past 4 MiB. Readers
//! (`events --since`, `--follow`) read both files and then follow the
//! current one, reopening it when it rotates.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::run::{Error, Result};

const LOG: &str = "events.log";
const OLD: &str = "events.log.1";
const ROTATE_AT: u64 = 4 << 20;

/// One event.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Event {
    /// `container`, `image`, `volume`, `network`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// `create`, `start`, `die`, …
    #[serde(rename = "Action")]
    pub action: String,
    /// The object's id (or name, for volumes).
    #[serde(rename = "ID")]
    pub id: String,
    /// `name`, `image`, `exitCode`, labels, …
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
    /// Nanoseconds since the epoch.
    #[serde(rename = "TimeNano")]
    pub time_nano: i64,
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Records an event (failures are logged, never fatal: an operation that
/// worked is not undone because its event could not be written).
pub fn emit(root: &Path, kind: &str, action: &str, id: &str, attributes: BTreeMap<String, String>) {
    let ev = Event {
        kind: kind.to_owned(),
        action: action.to_owned(),
        id: id.to_owned(),
        attributes,
        time_nano: now_nanos(),
    };
    if let Err(e) = append(root, &ev) {
        tracing::warn!("record event {kind} {action}: {e}");
    }
}

/// Attributes docker gives container events: image, name and labels.
pub fn container_attributes(r: &crate::Record) -> BTreeMap<String, String> {
    let mut a = r.labels.clone();
    a.insert("image".into(), r.image.clone());
    a.insert("name".into(), r.name.clone());
    a
}

fn append(root: &Path, ev: &Event) -> std::io::Result<()> {
    let path = root.join(LOG);
    let mut line = serde_json::to_vec(ev)?;
    line.push(b'\n');
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    f.write_all(&line)?;
    if f.metadata()?.len() > ROTATE_AT {
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)?;
        // someone else may have rotated it meanwhile
        if fs::metadata(&path).is_ok_and(|m| m.ino() == f.metadata().map(|x| x.ino()).unwrap_or(0))
        {
            fs::rename(&path, root.join(OLD))?;
        }
    }
    Ok(())
}

/// What `events` asks for.
#[derive(Clone, Debug, Default)]
pub struct Query {
    /// Only events at or after this time (nanoseconds).
    pub since: Option<i64>,
    /// Only events before this time; reading stops there.
    pub until: Option<i64>,
    /// Docker's filters (`type`, `event`, `container`, `image`, `label`,
    /// `volume`, `network`); values of one key are alternatives.
    pub filters: BTreeMap<String, Vec<String>>,
}

/// RFC 3339 (from `logs::parse_time`) → nanoseconds.
pub fn rfc3339_nanos(t: &str) -> Option<i64> {
    let secs = crate::ops::parse_rfc3339_secs(t)?;
    let frac = t
        .get(19..)
        .and_then(|r| r.strip_prefix('.'))
        .map(|r| r.trim_end_matches(|c: char| !c.is_ascii_digit()))
        .and_then(|d| format!("{d:0<9}").get(..9)?.parse::<i64>().ok())
        .unwrap_or(0);
    Some(secs * 1_000_000_000 + frac)
}

impl Query {
    /// Checks filter names.
    pub fn validate(&self) -> Result<()> {
        for k in self.filters.keys() {
            if !matches!(
                k.as_str(),
                "type" | "event" | "container" | "image" | "label" | "volume" | "network"
            ) {
                return Err(Error::Invalid(format!("invalid filter '{k}'")));
            }
        }
        Ok(())
    }

    /// Whether `ev` passes.
    pub fn matches(&self, ev: &Event) -> bool {
        if self.since.is_some_and(|s| ev.time_nano < s) {
            return false;
        }
        if self.until.is_some_and(|u| ev.time_nano > u) {
            return false;
        }
        self.filters.iter().all(|(k, vals)| {
            vals.iter().any(|v| match k.as_str() {
                "type" => ev.kind == *v,
                "event" => ev.action == *v || ev.action.split(':').next() == Some(v),
                "container" => {
                    ev.kind == "container"
                        && (ev.id.starts_with(v.as_str())
                            || ev.attributes.get("name").is_some_and(|n| n == v))
                }
                "image" => ev.attributes.get("image").is_some_and(|i| i == v),
                "volume" => ev.kind == "volume" && ev.id == *v,
                "network" => {
                    ev.kind == "network"
                        && (ev.id.starts_with(v.as_str())
                            || ev.attributes.get("name").is_some_and(|n| n == v))
                }
                "label" => match v.split_once('=') {
                    Some((lk, lv)) => ev.attributes.get(lk).is_some_and(|x| x == lv),
                    None => ev.attributes.contains_key(v),
                },
                _ => false,
            })
        })
    }
}

/// Reads the recorded events that match, then (with `follow` and no
/// `until` in the past) waits for new ones until `cancelled` or `until`.
/// `out` returns false to stop.
pub fn read(
    root: &Path,
    q: &Query,
    follow: bool,
    cancelled: &dyn Fn() -> bool,
    out: &mut dyn FnMut(&Event) -> bool,
) -> Result<()> {
    q.validate()?;
    let mut emit = |line: &str| -> bool {
        match serde_json::from_str::<Event>(line) {
            Ok(ev) if q.matches(&ev) => out(&ev),
            _ => true,
        }
    };
    if let Ok(f) = fs::File::open(root.join(OLD)) {
        for line in std::io::BufReader::new(f).lines() {
            let Ok(line) = line else { break };
            if !emit(&line) {
                return Ok(());
            }
        }
    }
    let path: PathBuf = root.join(LOG);
    let mut f = match fs::File::open(&path) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::Io("open events.log".into(), e)),
    };
    let mut pos = 0u64;
    let mut partial = String::new();
    loop {
        if let Some(file) = f.as_mut() {
            let _ = file.seek(std::io::SeekFrom::Start(pos));
            let mut r = std::io::BufReader::new(&*file);
            loop {
                let mut line = String::new();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        pos += n as u64;
                        if !line.ends_with('\n') {
                            partial.push_str(&line);
                            continue;
                        }
                        let whole = std::mem::take(&mut partial) + &line;
                        if !emit(whole.trim_end()) {
                            return Ok(());
                        }
                    }
                }
            }
        }
        let past_until = q.until.is_some_and(|u| now_nanos() > u);
        if !follow || past_until || cancelled() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
        // rotated (or created): start on the new file
        let cur_ino = fs::metadata(&path).map(|m| m.ino()).ok();
        let open_ino = f.as_ref().and_then(|x| x.metadata().ok()).map(|m| m.ino());
        if cur_ino != open_ino {
            if let Some(file) = f.as_mut() {
                // the rest of the rotated file first
                let _ = file.seek(std::io::SeekFrom::Start(pos));
                for line in std::io::BufReader::new(&*file).lines() {
                    let Ok(line) = line else { break };
                    if !emit(&line) {
                        return Ok(());
                    }
                }
            }
            f = fs::File::open(&path).ok();
            pos = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_recorded_filtered_and_followed() {
        let d = tempfile::tempdir().unwrap();
        let attrs = BTreeMap::from([("name".to_owned(), "web".to_owned())]);
        emit(d.path(), "container", "create", "abc123", attrs.clone());
        emit(d.path(), "container", "start", "abc123", attrs);
        emit(d.path(), "volume", "create", "v1", BTreeMap::new());
        let mut got = Vec::new();
        let q = Query {
            filters: BTreeMap::from([("container".to_owned(), vec!["web".to_owned()])]),
            ..Default::default()
        };
        read(d.path(), &q, false, &|| false, &mut |e| {
            got.push(e.action.clone());
            true
        })
        .unwrap();
        assert_eq!(got, ["create", "start"]);
        let q = Query {
            filters: BTreeMap::from([("bogus".to_owned(), vec![])]),
            ..Default::default()
        };
        assert!(read(d.path(), &q, false, &|| false, &mut |_| true).is_err());
        // follow: an event written later arrives
        let root = d.path().to_path_buf();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            emit(&root, "volume", "destroy", "v1", BTreeMap::new());
        });
        let mut seen = Vec::new();
        let q = Query {
            filters: BTreeMap::from([("type".to_owned(), vec!["volume".to_owned()])]),
            ..Default::default()
        };
        read(d.path(), &q, true, &|| false, &mut |e| {
            seen.push(e.action.clone());
            seen.len() < 2
        })
        .unwrap();
        t.join().unwrap();
        assert_eq!(seen, ["create", "destroy"]);
        assert_eq!(
            rfc3339_nanos("2026-11-24T21:55:08.5Z"),
            Some(1_795_557_308_500_000_000)
        );
    }

    #[test]
    fn the_log_rotates_and_readers_follow_it_across() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().to_path_buf();
        let fill = |root: &Path| {
            // lines that are no events take the log to its limit
            let junk = "x".repeat(1023) + "\n";
            let mut f = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(root.join(LOG))
                .unwrap();
            for _ in 0..(ROTATE_AT / 1024) {
                f.write_all(junk.as_bytes()).unwrap();
            }
        };
        emit(&root, "volume", "create", "a", BTreeMap::new());
        fill(&root);
        emit(&root, "volume", "create", "b", BTreeMap::new());
        assert!(root.join(OLD).exists(), "rotated past {ROTATE_AT} bytes");
        assert!(!root.join(LOG).exists() || fs::metadata(root.join(LOG)).unwrap().len() == 0);
        emit(&root, "volume", "create", "c", BTreeMap::new());
        assert!(fs::metadata(root.join(LOG)).unwrap().len() < 1024);
        let all = |root: &Path| {
            let mut got = Vec::new();
            read(root, &Query::default(), false, &|| false, &mut |e| {
                got.push(e.id.clone());
                true
            })
            .unwrap();
            got
        };
        assert_eq!(all(&root), ["a", "b", "c"]);
        // a follower reading the current file sees what is written after it
        // rotates again: the rest of the old file, then the new one
        let writer_root = root.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(250));
            fill(&writer_root);
            emit(&writer_root, "volume", "create", "d", BTreeMap::new());
            std::thread::sleep(Duration::from_millis(250));
            emit(&writer_root, "volume", "create", "e", BTreeMap::new());
        });
        let mut seen = Vec::new();
        read(&root, &Query::default(), true, &|| false, &mut |e| {
            seen.push(e.id.clone());
            seen.len() < 5
        })
        .unwrap();
        t.join().unwrap();
        assert_eq!(seen, ["a", "b", "c", "d", "e"]);
        // the oldest events went with the second rotation
        assert_eq!(all(&root), ["c", "d", "e"]);
    }
}
