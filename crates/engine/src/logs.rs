//! Container logs in docker's json-file format: one JSON object per line,
//! `{"log":"hi\n","stream":"stdout","time":"2026-11-24T16:14:49.232197356Z"}`,
//! in `<dir>/container.log`, rotated to `container.log.1` … when
//! `max-size` is set. The monitor writes; any process reads.

use std::fs;
use std::io::{Read, Seek, Write};
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
    /// Nanoseconds since the epoch (0 if the time does not parse).
    pub time_nano: i64,
    /// The bytes, newline included when there was one.
    pub line: Vec<u8>,
}

fn parse(line: &[u8]) -> Option<Entry> {
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    let time = v.get("time")?.as_str()?.to_owned();
    let time_nano = crate::events::rfc3339_nanos(&time).unwrap_or(0);
    Some(Entry {
        stream: if v.get("stream")?.as_str()? == "stderr" {
            2
        } else {
            1
        },
        time,
        time_nano,
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
    /// Entries at or after this time (nanoseconds since the epoch).
    pub since: Option<i64>,
    /// Entries before this time (nanoseconds since the epoch).
    pub until: Option<i64>,
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
        }) && self.since.is_none_or(|s| e.time_nano >= s)
            && self.until.is_none_or(|u| e.time_nano < u)
    }
}

/// The log files of a container, oldest first.
fn files(dir: &Path) -> Vec<PathBuf> {
    let path = dir.join(LOG_FILE);
    let mut files: Vec<PathBuf> = (1..100)
        .map(|n| rotated(&path, n))
        .take_while(|p| p.exists())
        .collect();
    files.reverse();
    files.push(path);
    files
}

/// The last `n` whole lines of a file and where its whole lines end,
/// read backwards in blocks (a 2 GB log gives its last lines without
/// being read).
fn tail_lines(f: &mut fs::File, n: usize) -> std::io::Result<(Vec<Vec<u8>>, u64)> {
    let len = f.metadata()?.len();
    const BLOCK: u64 = 64 * 1024;
    let mut end = len;
    let mut buf: Vec<u8> = Vec::new();
    // whole lines only: the part after the last newline is still being written
    let mut whole_end = None;
    let mut pos = len;
    loop {
        let count = buf.iter().filter(|b| **b == b'\n').count();
        let have = match whole_end {
            Some(_) => count.saturating_sub(1),
            None => 0,
        };
        if pos == 0 || (whole_end.is_some() && have >= n) {
            break;
        }
        let start = pos.saturating_sub(BLOCK);
        let mut chunk = vec![0u8; (pos - start) as usize];
        f.seek(std::io::SeekFrom::Start(start))?;
        f.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&buf);
        buf = chunk;
        pos = start;
        if whole_end.is_none()
            && let Some(i) = buf.iter().rposition(|b| *b == b'\n')
        {
            whole_end = Some(pos + i as u64 + 1);
            end = pos + i as u64 + 1;
            buf.truncate(i + 1);
        }
    }
    let end = whole_end.unwrap_or(0).min(end);
    let text = &buf[..buf.len().min((end - pos) as usize)];
    let mut lines: Vec<Vec<u8>> = text
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    // a line cut by the block boundary at the start is not whole
    if pos > 0 && !lines.is_empty() {
        lines.remove(0);
    }
    let skip = lines.len().saturating_sub(n);
    Ok((lines.split_off(skip), end))
}

/// Where a follower is in a container's log.
#[derive(Debug)]
pub struct LogCursor {
    path: PathBuf,
    opts: LogOptions,
    /// The file being read (kept open across a rotation, so its rest is
    /// read before going on with the new one).
    file: Option<fs::File>,
    offset: u64,
    inode: u64,
    pending: Vec<u8>,
}

impl LogCursor {
    /// Reads what is there now (the last `tail` entries, or all of it)
    /// and stands at the end of the current file, ready to follow.
    pub fn open(dir: &Path, opts: &LogOptions) -> Result<(Vec<Entry>, LogCursor)> {
        let files = files(dir);
        let path = dir.join(LOG_FILE);
        let mut out: Vec<Entry> = Vec::new();
        let mut offset = 0;
        let mut inode = 0;
        let mut current = None;
        let last = files.len() - 1;
        // with a tail, files are read newest first until enough entries
        let mut want = opts.tail;
        let mut chunks: Vec<Vec<Entry>> = Vec::new();
        for (i, f) in files.iter().enumerate().rev() {
            let Ok(mut file) = fs::File::open(f) else {
                continue;
            };
            let meta = file
                .metadata()
                .map_err(|e| Error::Io(format!("stat {}", f.display()), e))?;
            let (lines, end) = match want {
                Some(n) => {
                    // a filter may drop lines: read a few more than asked
                    let (l, e) = tail_lines(&mut file, n.saturating_mul(2).max(n + 16))
                        .map_err(|e| Error::Io(format!("read {}", f.display()), e))?;
                    (l, e)
                }
                None => {
                    let mut b = Vec::new();
                    file.read_to_end(&mut b)
                        .map_err(|e| Error::Io(format!("read {}", f.display()), e))?;
                    let whole = b.iter().rposition(|c| *c == b'\n').map_or(0, |p| p + 1);
                    b.truncate(whole);
                    let lines = b
                        .split(|c| *c == b'\n')
                        .filter(|l| !l.is_empty())
                        .map(<[u8]>::to_vec)
                        .collect();
                    (lines, whole as u64)
                }
            };
            if i == last {
                offset = end;
                inode = std::os::unix::fs::MetadataExt::ino(&meta);
                current = file.try_clone().ok();
            }
            let entries: Vec<Entry> = lines
                .iter()
                .filter_map(|l| parse(l))
                .filter(|e| opts.wants(e))
                .collect();
            let got = entries.len();
            chunks.push(entries);
            if let Some(n) = want.as_mut() {
                if got >= *n {
                    break;
                }
                *n -= got;
            }
        }
        for c in chunks.into_iter().rev() {
            out.extend(c);
        }
        if let Some(n) = opts.tail {
            let skip = out.len().saturating_sub(n);
            out.drain(..skip);
        }
        Ok((
            out,
            LogCursor {
                path,
                opts: opts.clone(),
                file: current,
                offset,
                inode,
                pending: Vec::new(),
            },
        ))
    }

    /// The file a follower watches for new lines.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// New entries written since the last read (none is no error: the
    /// container may be quiet). A rotation starts on the new file.
    pub fn read_new(&mut self) -> Vec<Entry> {
        let mut out = Vec::new();
        self.read_file(&mut out);
        let now = fs::metadata(&self.path)
            .ok()
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m));
        if now.is_some_and(|n| n != self.inode || self.file.is_none()) {
            // rotated (or created): what reached the old file before
            // the rename and after the read above comes first
            self.read_file(&mut out);
            if let Ok(f) = fs::File::open(&self.path) {
                self.inode = f
                    .metadata()
                    .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
                    .unwrap_or(0);
                self.file = Some(f);
                self.offset = 0;
                self.pending.clear();
                self.read_file(&mut out);
            }
        }
        out
    }

    fn read_file(&mut self, out: &mut Vec<Entry>) {
        let Some(f) = self.file.as_mut() else {
            return;
        };
        if f.seek(std::io::SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut b = Vec::new();
        if f.read_to_end(&mut b).is_err() {
            return;
        }
        self.offset += b.len() as u64;
        self.pending.extend_from_slice(&b);
        while let Some(i) = self.pending.iter().position(|c| *c == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=i).collect();
            if let Some(e) = parse(&line[..i])
                && self.opts.wants(&e)
            {
                out.push(e);
            }
        }
    }
}

/// Reads a container's log; `emit` gets each entry in order. With
/// `follow`, keeps reading (woken by the file changing) until `running()`
/// turns false and the file has no more to give. `emit` returning false
/// stops.
pub fn read(
    dir: &Path,
    opts: &LogOptions,
    running: impl Fn() -> bool,
    mut emit: impl FnMut(&Entry) -> bool,
) -> Result<()> {
    let (first, mut cursor) = LogCursor::open(dir, opts)?;
    for e in &first {
        if !emit(e) {
            return Ok(());
        }
    }
    if !opts.follow {
        return Ok(());
    }
    let watch = crate::watch::FileWatch::new(dir).ok();
    loop {
        let alive = running();
        for e in cursor.read_new() {
            if !emit(&e) {
                return Ok(());
            }
        }
        if !alive {
            return Ok(());
        }
        match &watch {
            Some(w) => w.wait(Duration::from_millis(500)),
            None => std::thread::sleep(Duration::from_millis(50)),
        }
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
    fn a_follower_reads_the_rest_of_a_rotated_file_first() {
        let t = tempfile::tempdir().unwrap();
        let mut w = LogWriter::open(t.path(), Some((240, 3)), false).unwrap();
        w.write(1, b"first\n");
        let opts = LogOptions {
            stdout: true,
            ..Default::default()
        };
        let (got, mut cursor) = LogCursor::open(t.path(), &opts).unwrap();
        assert_eq!(got.len(), 1);
        // written while the follower waits: lines into the old file, a
        // rotation, lines into the new one
        for i in 0..4 {
            w.write(1, format!("line {i}\n").as_bytes());
        }
        assert!(t.path().join("container.log.1").exists(), "rotated");
        assert!(!t.path().join("container.log.2").exists(), "once");
        let lines: Vec<String> = cursor
            .read_new()
            .iter()
            .map(|e| String::from_utf8_lossy(&e.line).into_owned())
            .collect();
        assert_eq!(lines, ["line 0\n", "line 1\n", "line 2\n", "line 3\n"]);
    }
}
