//! Image endpoints that move data: `POST /images/create` (pull from a
//! registry with docker's JSON progress, or import a tarball body),
//! `POST /images/load`, `GET /images/get` and `GET /images/{name}/get`.
//! Bodies stream through a blocking reader or writer bridged to the
//! image store, so no archive is held in memory.

use std::io::{self, Read, Write};
use std::sync::Arc;

use berth_image::registry::{Client, Progress, RegistryOptions, Status};
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

/// Docker's JSON progress messages, one per line.
pub struct JsonProgress(pub mpsc::UnboundedSender<Bytes>);

impl JsonProgress {
    /// Sends one message.
    pub fn send(&self, v: Value) {
        let _ = self.0.send(Bytes::from(format!("{v}\r\n")));
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

/// Pulls `name` (with `tag`) into the store, reporting as docker does.
pub fn pull(
    store: &berth_image::ImageStore,
    registry: &RegistryOptions,
    from_image: &str,
    tag: &str,
    progress: Arc<JsonProgress>,
) {
    let name = if tag.is_empty() || from_image.contains('@') {
        from_image.to_owned()
    } else {
        format!("{from_image}:{tag}")
    };
    let r = match berth_types::Reference::parse(&name) {
        Ok(r) => r,
        Err(e) => {
            let m = format!("invalid reference format: {e}");
            progress.send(json!({"errorDetail": {"message": m}, "error": m}));
            return;
        }
    };
    let what = r
        .tag()
        .map(str::to_owned)
        .unwrap_or_else(|| r.digest().map(|d| d.to_string()).unwrap_or_default());
    progress.send(json!({"status": format!("Pulling from {}", r.path()), "id": what}));
    let client = Client::new(registry.clone());
    let platform = berth_types::image::Platform::host();
    match store.pull(&client, &r, &platform, progress.clone()) {
        Ok(p) => {
            progress.message(&format!("Digest: {}", p.digest));
            let fam = r.familiar();
            progress.message(&if p.up_to_date {
                format!("Status: Image is up to date for {fam}")
            } else {
                format!("Status: Downloaded newer image for {fam}")
            });
        }
        Err(e) => {
            let m = e.to_string();
            progress.send(json!({"errorDetail": {"message": m}, "error": m}));
        }
    }
}

/// Pushes `name` (with `tag`) to its registry, reporting as docker does.
pub fn push(
    store: &berth_image::ImageStore,
    registry: &RegistryOptions,
    name: &str,
    tag: &str,
    progress: Arc<JsonProgress>,
) {
    let full = if tag.is_empty() {
        name.to_owned()
    } else {
        format!("{name}:{tag}")
    };
    let fail = |m: String| progress.send(json!({"errorDetail": {"message": m}, "error": m}));
    let r = match berth_types::Reference::parse(&full) {
        Ok(r) => r,
        Err(e) => return fail(format!("invalid reference format: {e}")),
    };
    if store.resolve(&full).is_err() {
        return fail(format!(
            "An image does not exist locally with the tag: {}",
            r.familiar()
        ));
    }
    progress.message(&format!(
        "The push refers to repository [{}]",
        r.repository()
    ));
    let client = Client::new(registry.clone());
    match store.push(&client, &full, &r, progress.clone()) {
        Ok(p) => {
            progress.message(&format!(
                "{}: digest: {} size: {}",
                r.tag().unwrap_or("latest"),
                p.digest,
                p.size
            ));
            progress.send(
                json!({"progressDetail": {}, "aux": {"Tag": r.tag().unwrap_or("latest"),
                "Digest": p.digest.to_string(), "Size": p.size}}),
            );
        }
        Err(e) => fail(e.to_string()),
    }
}
