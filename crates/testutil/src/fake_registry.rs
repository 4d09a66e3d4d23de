//! A scriptable HTTP/1.1 server on loopback for registry-client tests:
//! each request goes to a handler that may answer anything — a token
//! challenge, a truncated body, garbage — and every request is recorded.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Request {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Headers, names lowercased.
    pub headers: BTreeMap<String, String>,
    /// The body (read when Content-Length says so).
    pub body: Vec<u8>,
}

impl Request {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// An answer.
#[derive(Clone, Debug, Default)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
    /// Send only this many body bytes (Content-Length still says all),
    /// then close: a truncated transfer.
    pub cut_after: Option<usize>,
    /// Send this many body bytes, then wait (holding the connection) until
    /// the flag is set, then close: a stalled transfer.
    pub stall_after: Option<(usize, Arc<std::sync::atomic::AtomicBool>)>,
}

impl Response {
    /// A status with a body.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            body: body.into(),
            ..Default::default()
        }
    }

    /// Adds a header.
    pub fn header(mut self, k: &str, v: &str) -> Response {
        self.headers.push((k.to_owned(), v.to_owned()));
        self
    }
}

type Handler = dyn Fn(&Request) -> Response + Send + Sync;

/// The server (stops accepting when dropped).
pub struct FakeServer {
    /// `127.0.0.1:port`.
    pub addr: String,
    /// Every request so far.
    pub log: Arc<Mutex<Vec<Request>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for FakeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FakeServer({})", self.addr)
    }
}

fn read_request(s: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if s.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        s.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

impl FakeServer {
    /// Starts serving with `handler`.
    pub fn start(handler: impl Fn(&Request) -> Response + Send + Sync + 'static) -> FakeServer {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        {
            let log = log.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                for conn in l.incoming() {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let log = log.clone();
                    let handler = handler.clone();
                    std::thread::spawn(move || {
                        let Ok(w) = conn.try_clone() else { return };
                        let mut r = BufReader::new(conn);
                        let mut w = w;
                        while let Some(req) = read_request(&mut r) {
                            log.lock().unwrap().push(req.clone());
                            let resp = handler(&req);
                            let mut head = format!(
                                "HTTP/1.1 {} X\r\nContent-Length: {}\r\n",
                                resp.status,
                                resp.body.len()
                            );
                            for (k, v) in &resp.headers {
                                head.push_str(&format!("{k}: {v}\r\n"));
                            }
                            let close = resp.cut_after.is_some();
                            if close {
                                head.push_str("Connection: close\r\n");
                            }
                            head.push_str("\r\n");
                            let _ = w.write_all(head.as_bytes());
                            if let Some((n, go)) = &resp.stall_after {
                                let _ = w.write_all(&resp.body[..(*n).min(resp.body.len())]);
                                let _ = w.flush();
                                while !go.load(std::sync::atomic::Ordering::Relaxed) {
                                    std::thread::sleep(std::time::Duration::from_millis(10));
                                }
                                let _ = w.shutdown(std::net::Shutdown::Both);
                                return;
                            }
                            if req.method != "HEAD" {
                                let n = resp
                                    .cut_after
                                    .unwrap_or(resp.body.len())
                                    .min(resp.body.len());
                                let _ = w.write_all(&resp.body[..n]);
                            }
                            let _ = w.flush();
                            if close {
                                let _ = w.shutdown(std::net::Shutdown::Both);
                                return;
                            }
                        }
                    });
                }
            });
        }
        FakeServer { addr, log, stop }
    }

    /// The requests so far.
    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = TcpStream::connect(&self.addr);
    }
}
