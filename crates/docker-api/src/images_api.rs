//! What the endpoints that move data share: a blocking reader over a
//! request body, a blocking writer into a streaming response, and docker's
//! JSON progress lines. No archive is held in memory.

use std::io::{self, Read, Write};

use berth_image::registry::{Progress, Status};
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// A blocking `Read` over a request body (read on a blocking thread).
pub struct BodyReader {
    rx: std::sync::mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
}

impl BodyReader {
    /// Starts pumping `body` into the reader.
    pub fn new(body: Incoming) -> BodyReader {
        let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Bytes>>(16);
        tokio::spawn(async move {
            let mut stream = body.into_data_stream();
            while let Some(chunk) = stream.next().await {
                let item = chunk.map_err(io::Error::other);
                let stop = item.is_err();
                let tx2 = tx.clone();
                // the channel is bounded: hand it over without blocking the runtime
                if tokio::task::spawn_blocking(move || tx2.send(item))
                    .await
                    .map(|r| r.is_err())
                    .unwrap_or(true)
                    || stop
                {
                    return;
                }
            }
        });
        BodyReader {
            rx,
            cur: Bytes::new(),
        }
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.recv() {
                Ok(Ok(b)) => self.cur = b,
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

/// A blocking `Write` into a streaming response body.
pub struct ChannelWriter(pub mpsc::Sender<Bytes>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .blocking_send(Bytes::copy_from_slice(buf))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Docker's JSON progress messages, one per line. A `head` line waits
/// for the first message (so that a pull failing before any progress can
/// still answer with an HTTP error, as dockerd's does).
pub struct JsonProgress {
    tx: mpsc::UnboundedSender<Bytes>,
    head: std::sync::Mutex<Option<Value>>,
    started: std::sync::atomic::AtomicBool,
}

impl JsonProgress {
    /// Progress into `tx`.
    pub fn new(tx: mpsc::UnboundedSender<Bytes>) -> JsonProgress {
        JsonProgress {
            tx,
            head: std::sync::Mutex::new(None),
            started: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// A line to send before the first message (none is sent without one).
    pub fn head(&self, v: Value) {
        if let Ok(mut h) = self.head.lock() {
            *h = Some(v);
        }
    }

    /// Whether anything was sent.
    pub fn started(&self) -> bool {
        self.started.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Sends one message (after the head line, if one waits).
    pub fn send(&self, v: Value) {
        if let Some(h) = self.head.lock().ok().and_then(|mut h| h.take()) {
            let _ = self.tx.send(Bytes::from(format!("{h}\r\n")));
        }
        self.started
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = self.tx.send(Bytes::from(format!("{v}\r\n")));
    }

    /// Sends docker's error line.
    pub fn error(&self, m: &str) {
        self.send(json!({"errorDetail": {"message": m}, "error": m}));
    }
}

fn bar(current: u64, total: u64) -> String {
    if total == 0 {
        return String::new();
    }
    let width = 50u64;
    let done = (current.min(total) * width / total) as usize;
    format!(
        "[{}>{}] {current}B/{total}B",
        "=".repeat(done),
        " ".repeat(width as usize - done)
    )
}

impl Progress for JsonProgress {
    fn layer(&self, id: &str, status: Status) {
        let v = match &status {
            Status::Downloading { current, total } | Status::Pushing { current, total } => json!({
                "status": if matches!(status, Status::Pushing { .. }) { "Pushing" } else { "Downloading" },
                "progressDetail": {"current": current, "total": total},
                "progress": bar(*current, *total),
                "id": id,
            }),
            s => json!({"status": status_text(s), "progressDetail": {}, "id": id}),
        };
        self.send(v);
    }
    fn message(&self, line: &str) {
        self.send(json!({"status": line}));
    }
}

fn status_text(s: &Status) -> String {
    s.text()
}
