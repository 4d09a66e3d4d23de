//! `docker events`: what happened to containers, volumes, networks and
//! images, as one JSON line per event appended to `<root>/events.log` by
//! whichever process did it (the CLI, the daemon, a monitor). Lines are
//! written with one `write` on an `O_APPEND` file, so writers never
//! interleave; the log rotates to `events.log.1` past 4 MiB. Readers
//! (`events --since`, `--follow`) read both files and then follow the
//! current one, reopening it when it rotates.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::run::{Error, Result};

const LOG: &str = "events.log";
const OLD: &str = "events.log.1";
const ROTATE_AT: u64 = 4 << 20;

/// The schema of an event line (`v`); lines without one are schema 1,
/// which used docker's names (read through the aliases).
pub const EVENT_SCHEMA: u32 = 2;

/// One event.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Event {
    /// Schema version.
    pub v: u32,
    /// `container`, `image`, `volume`, `network`, `sandbox`.
    #[serde(alias = "Type")]
    pub kind: String,
    /// `create`, `start`, `die`, …
    #[serde(alias = "Action")]
    pub action: String,
    /// The object's id (or name, for volumes).
    #[serde(alias = "ID")]
    pub id: String,
    /// `name`, `image`, `exitCode`, labels, …
    #[serde(alias = "Attributes")]
    pub attributes: BTreeMap<String, String>,
    /// Nanoseconds since the epoch.
    #[serde(alias = "TimeNano")]
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
        v: EVENT_SCHEMA,
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

/// RFC 3339 → nanoseconds since the epoch.
pub fn rfc3339_nanos(t: &str) -> Option<i64> {
    let (secs, nanos) = berth_types::time::parse_rfc3339(t).ok()?;
    secs.checked_mul(1_000_000_000)?
        .checked_add(i64::from(nanos))
}

impl Query {
    /// An event line, if it matches.
    fn parse(&self, line: &[u8]) -> Option<Event> {
        let ev: Event = serde_json::from_slice(line).ok()?;
        (self.matches(&ev) && self.until.is_none_or(|u| ev.time_nano <= u)).then_some(ev)
    }

    /// Checks filter names.
    pub fn validate(&self) -> Result<()> {
        for k in self.filters.keys() {
            if !matches!(
                k.as_str(),
                "type" | "event" | "container" | "image" | "label" | "volume" | "network"
            ) {
                return Err(Error::Invalid(format!("Invalid filter '{k}'")));
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
                "image" => {
                    // image events name the image in `name` (or are it)
                    let attr = if ev.kind == "image" { "name" } else { "image" };
                    let strip = |s: &str| {
                        berth_types::Reference::parse(s)
                            .map_or_else(|_| s.to_owned(), |r| r.familiar_repository())
                    };
                    let named = ev.attributes.get(attr).map(String::as_str);
                    [Some(ev.id.as_str()), named]
                        .into_iter()
                        .flatten()
                        .any(|n| n == v || strip(n) == *v)
                }
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

/// A reader of the event log: what is recorded, then what is appended
/// (across rotations), without blocking; [`crate::watch::FileWatch`] on the
/// root says when to look again.
#[derive(Debug)]
pub struct EventCursor {
    path: PathBuf,
    query: Query,
    file: Option<fs::File>,
    pos: u64,
    partial: Vec<u8>,
}

impl EventCursor {
    /// The recorded events that match, and a cursor at the end of the log.
    pub fn open(root: &Path, q: &Query) -> Result<(Vec<Event>, EventCursor)> {
        q.validate()?;
        let mut out = Vec::new();
        if let Ok(b) = fs::read(root.join(OLD)) {
            for line in b.split(|c| *c == b'\n') {
                if let Some(ev) = q.parse(line) {
                    out.push(ev);
                }
            }
        }
        let path = root.join(LOG);
        let file = match fs::File::open(&path) {
            Ok(f) => Some(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::Io("open events.log".into(), e)),
        };
        let mut c = EventCursor {
            path,
            query: q.clone(),
            file,
            pos: 0,
            partial: Vec::new(),
        };
        out.extend(c.read_new());
        Ok((out, c))
    }

    /// How long until the query's `until` (`None`: no `until`).
    pub fn until_in(&self) -> Option<Duration> {
        let u = self.query.until?;
        Some(Duration::from_nanos(
            u.saturating_sub(now_nanos()).max(0) as u64
        ))
    }

    /// Whether the query's `until` has passed (nothing more will come).
    pub fn done(&self) -> bool {
        self.query.until.is_some_and(|u| now_nanos() > u)
    }

    /// The events appended since the last read that match.
    pub fn read_new(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        self.read_open(&mut out);
        // rotated (or created): the rest of the old file was read above;
        // go on with the new one
        let cur_ino = fs::metadata(&self.path).map(|m| m.ino()).ok();
        let open_ino = self
            .file
            .as_ref()
            .and_then(|x| x.metadata().ok())
            .map(|m| m.ino());
        if cur_ino != open_ino {
            // the rename comes after the write that crossed the limit:
            // read what reached the old file since the read above
            self.read_open(&mut out);
            self.file = fs::File::open(&self.path).ok();
            self.pos = 0;
            self.partial.clear();
            self.read_open(&mut out);
        }
        out
    }

    fn read_open(&mut self, out: &mut Vec<Event>) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        if file.seek(std::io::SeekFrom::Start(self.pos)).is_err() {
            return;
        }
        let mut b = Vec::new();
        if std::io::Read::read_to_end(file, &mut b).is_err() {
            return;
        }
        self.pos += b.len() as u64;
        self.partial.extend_from_slice(&b);
        while let Some(i) = self.partial.iter().position(|c| *c == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=i).collect();
            if let Some(ev) = self.query.parse(&line[..i]) {
                out.push(ev);
            }
        }
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
    let (first, mut cursor) = EventCursor::open(root, q)?;
    for ev in &first {
        if !out(ev) {
            return Ok(());
        }
    }
    let watch = crate::watch::FileWatch::new(root).ok();
    loop {
        if !follow || cursor.done() || cancelled() {
            return Ok(());
        }
        match &watch {
            Some(w) => w.wait(Duration::from_millis(100)),
            None => std::thread::sleep(Duration::from_millis(100)),
        }
        for ev in cursor.read_new() {
            if !out(&ev) {
                return Ok(());
            }
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
