//! Streaming bodies between the async HTTP side and blocking file IO:
//! request bodies are fed through a bounded channel to a [`BodyReader`]
//! that blocking code reads like a file, and files are served as streams of
//! chunks. Nothing holds a whole blob in memory.

use std::io::{self, Read, SeekFrom};

use axum::body::Body;
use bytes::Bytes;
use futures::StreamExt as _;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
use tokio::sync::mpsc;

use crate::error::{ApiError, Code};

/// How many body chunks may wait for the blocking side.
const QUEUE: usize = 16;
/// Size of the chunks a file is served in.
const CHUNK: usize = 256 * 1024;

/// A request body as a blocking [`Read`].
pub(crate) struct BodyReader {
    rx: mpsc::Receiver<Result<Bytes, ()>>,
    cur: Bytes,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(())) => {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "the request body failed",
                    ));
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

/// Runs `f` on a blocking thread with a reader over `body`. If the body
/// itself fails (the client went away, a bad chunked encoding), that error
/// is returned whatever `f` made of it.
pub(crate) async fn with_body_reader<T, F>(body: Body, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut BodyReader) -> Result<T, ApiError> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(QUEUE);
    let task = tokio::task::spawn_blocking(move || {
        let mut reader = BodyReader {
            rx,
            cur: Bytes::new(),
        };
        f(&mut reader)
    });
    let mut stream = body.into_data_stream();
    let mut failure = None;
    while let Some(next) = stream.next().await {
        match next {
            Ok(chunk) if chunk.is_empty() => {}
            Ok(chunk) => {
                if tx.send(Ok(chunk)).await.is_err() {
                    break; // the blocking side stopped reading (it failed)
                }
            }
            Err(e) => {
                let _ = tx.send(Err(())).await;
                failure = Some(e);
                break;
            }
        }
    }
    drop(tx);
    let result = task.await?;
    if let Some(e) = failure {
        return Err(ApiError::bad_request(
            Code::BlobUploadInvalid,
            format!("reading the request body: {e}"),
        ));
    }
    result
}

/// Reads a whole (small) body, refusing more than `max` bytes with 413.
pub(crate) async fn read_limited(body: Body, max: usize) -> Result<Vec<u8>, ApiError> {
    let mut stream = body.into_data_stream();
    let mut out = Vec::new();
    while let Some(next) = stream.next().await {
        let chunk = next.map_err(|e| {
            ApiError::bad_request(
                Code::ManifestInvalid,
                format!("reading the request body: {e}"),
            )
        })?;
        if out.len() + chunk.len() > max {
            return Err(too_large(max));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The 413 for a manifest over the limit.
pub(crate) fn too_large(max: usize) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::PAYLOAD_TOO_LARGE,
        Code::ManifestInvalid,
        format!("manifest is larger than the {max}-byte limit"),
    )
    .detail(serde_json::json!({ "limit": max }))
}

/// Serves `len` bytes of `file` from `start` as a body.
pub(crate) async fn file_body(file: std::fs::File, start: u64, len: u64) -> io::Result<Body> {
    let mut file = tokio::fs::File::from_std(file);
    if start > 0 {
        file.seek(SeekFrom::Start(start)).await?;
    }
    let stream = futures::stream::try_unfold((file, len), |(mut file, left)| async move {
        if left == 0 {
            return Ok::<_, io::Error>(None);
        }
        let want = left.min(CHUNK as u64) as usize;
        let mut buf = vec![0u8; want];
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the blob is shorter than its recorded size",
            ));
        }
        buf.truncate(n);
        Ok(Some((Bytes::from(buf), (file, left - n as u64))))
    });
    Ok(Body::from_stream(stream))
}
