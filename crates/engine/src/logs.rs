//! Container logs in docker's json-file format: one JSON object per line,
//! `{"log":"hi\n","stream":"stdout","time":"2026-11-24T16:14:49.232197356Z"}`,
//! in `<dir>/container.log`, rotated to `container.log.1` … when
//! `max-size` is set. The monitor writes; any process reads.

use std::fs;
use std::io::{BufRead, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::run::{Error, Result};

/// The log file's name in the container's directory.
pub const LOG_FILE: &str = "container.log";
/// Longest line kept whole; longer output is split (docker: 16 KiB).
const MAX_LINE: usize = 16 * 1024;

/// The monitor's side.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    file: Option<fs::File>,
    size: u64,
    rotation: Option<(u64, u32)>,
    partial: [Vec<u8>; 2],
}

impl LogWriter {
    /// Opens (appending) the log of the container in `dir`.
    pub fn open(dir: &Path, rotation: Option<(u64, u32)>, disabled: bool) -> Result<LogWriter> {
        let path = dir.join(LOG_FILE);
        let file = if disabled {
            None
        } else {
            Some(
                fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|e| Error::Io(format!("open {}", path.display()), e))?,
            )
        };
        let size = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len());
        Ok(LogWriter {
            path,
            file,
            size,
            rotation,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Adds output of `stream` (1 stdout, 2 stderr).
    pub fn write(&mut self, stream: u8, data: &[u8]) {
        let i = usize::from(stream == 2);
        let mut rest = data;
        while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
            let mut line = std::mem::take(&mut self.partial[i]);
            line.extend_from_slice(&rest[..=nl]);
            self.record(i, &line);
            rest = &rest[nl + 1..];
        }
        self.partial[i].extend_from_slice(rest);
        while self.partial[i].len() >= MAX_LINE {
            let tail = self.partial[i].split_off(MAX_LINE);
            let head = std::mem::replace(&mut self.partial[i], tail);
            self.record(i, &head);
        }
    }

    /// Writes out incomplete lines (at exit).
    pub fn flush(&mut self) {
        for i in 0..2 {
            if !self.partial[i].is_empty() {
                let p = std::mem::take(&mut self.partial[i]);
                self.record(i, &p);
            }
        }
    }

    fn record(&mut self, i: usize, line: &[u8]) {
        if self.file.is_none() {
            return;
        }
        let mut rec = serde_json::json!({
            "log": String::from_utf8_lossy(line),
            "stream": if i == 0 { "stdout" } else { "stderr" },
            "time": berth_runtime::state::now_rfc3339(),
        })
        .to_string();
        rec.push('\n');
        if let Some((max, files)) = self.rotation
            && self.size > 0
            && self.size + rec.len() as u64 > max
        {
            self.rotate(files);
        }
        if let Some(f) = &mut self.file
            && f.write_all(rec.as_bytes()).is_ok()
        {
            self.size += rec.len() as u64;
        }
    }

    fn rotate(&mut self, files: u32) {
        self.file = None;
        if files <= 1 {
            let _ = fs::remove_file(&self.path);
        } else {
            for n in (1..files).rev() {
                let from = if n == 1 {
                    self.path.clone()
                } else {
                    rotated(&self.path, n - 1)
                };
                let _ = fs::rename(&from, rotated(&self.path, n));
            }
        }
        self.file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .ok();
        self.size = 0;
    }
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// One log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// 1 stdout, 2 stderr.
    pub stream: u8,
    /// RFC 3339 with nanoseconds.
    pub time: String,
    /// The bytes, newline included when there was one.
    pub line: Vec<u8>,
}

fn parse(line: &str) -> Option<Entry> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    Some(Entry {
        stream: if v.get("stream")?.as_str()? == "stderr" {
            2
        } else {
            1
        },
        time: v.get("time")?.as_str()?.to_owned(),
        line: v.get("log")?.as_str()?.as_bytes().to_vec(),
    })
}

/// What to read (`docker logs` options).
#[derive(Clone, Debug, Default)]
pub struct LogOptions {
    /// Include stdout.
    pub stdout: bool,
    /// Include stderr.
    pub stderr: bool,
    /// Entries at or after this RFC 3339 time.
    pub since: Option<String>,
    /// Entries before this RFC 3339 time.
    pub until: Option<String>,
    /// The last N entries only.
    pub tail: Option<usize>,
    /// Keep reading while the container runs.
    pub follow: bool,
}

impl LogOptions {
    fn wants(&self, e: &Entry) -> bool {
        (if e.stream == 2 {
            self.stderr
        } else {
            self.stdout
        }) && self
            .since
            .as_ref()
            .is_none_or(|s| e.time.as_str() >= s.as_str())
            && self
                .until
                .as_ref()
                .is_none_or(|u| e.time.as_str() < u.as_str())
    }
}

/// A docker time argument (`1700000000`, `1700000000.5`, RFC 3339, or a
/// duration like `10m` meaning that long ago) as RFC 3339.
pub fn parse_time(s: &str) -> Result<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    if let Ok(f) = s.parse::<f64>() {
        let secs = f.trunc() as i64;
        let nanos = ((f - f.trunc()) * 1e9).round() as u32;
        return Ok(berth_runtime::state::format_rfc3339(
            secs,
            nanos.min(999_999_999),
        ));
    }
    if let Some((secs, nanos)) = s.split_once('.')
        && let (Ok(a), Ok(b)) = (
            secs.parse::<i64>(),
            format!("{nanos:0<9}")[..9].parse::<u32>(),
        )
    {
        return Ok(berth_runtime::state::format_rfc3339(a, b));
    }
    let unit = |c: char| match c {
        's' => Some(1),
        'm' => Some(60),
        'h' => Some(3600),
        _ => None,
    };
    if let Some(last) = s.chars().last()
        && let Some(mult) = unit(last)
        && let Ok(n) = s[..s.len() - 1].parse::<u64>()
    {
        let t = now.saturating_sub(Duration::from_secs(n * mult));
        return Ok(berth_runtime::state::format_rfc3339(
            t.as_secs() as i64,
            t.subsec_nanos(),
        ));
    }
    if s.len() >= 20 && s.as_bytes().get(10) == Some(&b'T') && s.ends_with('Z') {
        // RFC 3339 UTC: normalise the fraction to 9 digits
        let (head, frac) = match s[..s.len() - 1].split_once('.') {
            Some((h, f)) => (h.to_owned(), format!("{f:0<9}")),
            None => (s[..s.len() - 1].to_owned(), "000000000".into()),
        };
        return Ok(format!("{head}.{}Z", &frac[..9]));
    }
    Err(Error::Invalid(format!(
        "invalid value for \"since\"/\"until\": {s:?} (a Unix timestamp, RFC 3339 time or duration)"
    )))
}

/// Reads a container's log; `emit` gets each entry in order. With
/// `follow`, keeps reading until `running()` turns false and the file has
/// no more to give. `emit` returning false stops.
pub fn read(
    dir: &Path,
    opts: &LogOptions,
    running: impl Fn() -> bool,
    mut emit: impl FnMut(&Entry) -> bool,
) -> Result<()> {
    let path = dir.join(LOG_FILE);
    let mut files: Vec<PathBuf> = (1..100)
        .map(|n| rotated(&path, n))
        .take_while(|p| p.exists())
        .collect();
    files.reverse();
    files.push(path.clone());
    let mut entries: Vec<Entry> = Vec::new();
    let mut offset = 0u64;
    let mut inode = 0u64;
    for (i, f) in files.iter().enumerate() {
        let Ok(mut file) = fs::File::open(f) else {
            continue;
        };
        let mut text = String::new();
        if file.read_to_string(&mut text).is_err() {
            continue;
        }
        if i + 1 == files.len() {
            // only whole lines; the rest is read when following
            let whole = text.rfind('\n').map_or(0, |p| p + 1);
            text.truncate(whole);
            offset = whole as u64;
            inode = std::os::unix::fs::MetadataExt::ino(
                &file
                    .metadata()
                    .map_err(|e| Error::Io(format!("stat {}", f.display()), e))?,
            );
        }
        entries.extend(text.lines().filter_map(parse).filter(|e| opts.wants(e)));
    }
    let skip = match opts.tail {
        Some(n) => entries.len().saturating_sub(n),
        None => 0,
    };
    for e in &entries[skip..] {
        if !emit(e) {
            return Ok(());
        }
    }
    if !opts.follow {
        return Ok(());
    }
    let mut pending = String::new();
    loop {
        let alive = running();
        // a rotation replaces the file: start on the new one
        let now_ino = fs::metadata(&path)
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
            .unwrap_or(inode);
        if now_ino != inode {
            inode = now_ino;
            offset = 0;
        }
        if let Ok(mut f) = fs::File::open(&path)
            && f.seek(std::io::SeekFrom::Start(offset)).is_ok()
        {
            let mut r = std::io::BufReader::new(f);
            loop {
                let mut l = String::new();
                match r.read_line(&mut l) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        offset += n as u64;
                        pending.push_str(&l);
                        if pending.ends_with('\n') {
                            if let Some(e) = parse(pending.trim_end())
                                && opts.wants(&e)
                                && !emit(&e)
                            {
                                return Ok(());
                            }
                            pending.clear();
                        }
                    }
                }
            }
        }
        if !alive {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_streams_rotation_and_tail() {
        let t = tempfile::tempdir().unwrap();
        let mut w = LogWriter::open(t.path(), Some((200, 3)), false).unwrap();
        w.write(1, b"one\ntw");
        w.write(2, b"err\n");
        w.write(1, b"o\n");
        for i in 0..20 {
            w.write(1, format!("line {i}\n").as_bytes());
        }
        w.write(1, b"partial");
        w.flush();
        assert!(t.path().join("container.log.1").exists());
        assert!(
            !t.path().join("container.log.3").exists(),
            "max-file 3 keeps 3 files"
        );
        let mut got = Vec::new();
        let opts = LogOptions {
            stdout: true,
            stderr: true,
            tail: Some(2),
            ..Default::default()
        };
        read(
            t.path(),
            &opts,
            || false,
            |e| {
                got.push(String::from_utf8_lossy(&e.line).into_owned());
                true
            },
        )
        .unwrap();
        assert_eq!(got, ["line 19\n", "partial"]);
        // no rotation: everything, stderr alone
        let t2 = tempfile::tempdir().unwrap();
        let mut w = LogWriter::open(t2.path(), None, false).unwrap();
        w.write(1, b"a\nb\n");
        w.write(2, b"c\n");
        let mut got = Vec::new();
        let opts = LogOptions {
            stderr: true,
            ..Default::default()
        };
        read(
            t2.path(),
            &opts,
            || false,
            |e| {
                got.push(e.line.clone());
                true
            },
        )
        .unwrap();
        assert_eq!(got, [b"c\n".to_vec()]);
        let long = vec![b'x'; MAX_LINE * 2 + 5];
        w.write(1, &long);
        w.flush();
    }

    #[test]
    fn docker_time_arguments() {
        assert_eq!(parse_time("0").unwrap(), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            parse_time("1700000000.5").unwrap(),
            "2023-11-14T22:13:20.500000000Z"
        );
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z").unwrap(),
            "2023-11-14T22:13:20.000000000Z"
        );
        assert!(parse_time("10m").unwrap().as_str() > "2026");
        assert!(parse_time("yesterday").is_err());
    }
}
