//! `/exec/{ns}/{pod}/{container}` and `/attach/{ns}/{pod}/{container}`
//! over WebSocket: the process's stdio through its engine monitor, framed
//! by the channel protocol; the final status on the error channel.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use berth_engine::streams::{FrameReader, Stream as Out};
use futures::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use super::State;
use super::channel::{self, Incoming as Msg, Version};
use super::http::{Failure, flag, query_get, query_pairs};
use super::lookup::{self, Target};
use super::upgrade::{self, Socket};

/// Which stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A new process in the container.
    Exec,
    /// The container's own process.
    Attach,
}

/// The options of a stream request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamParams {
    /// `command` (exec only), in order.
    pub command: Vec<String>,
    /// Attach stdin.
    pub stdin: bool,
    /// Attach stdout.
    pub stdout: bool,
    /// Attach stderr.
    pub stderr: bool,
    /// A terminal.
    pub tty: bool,
}

impl StreamParams {
    /// Reads the query, checked as kubelet checks it.
    pub fn parse(query: Option<&str>, kind: Kind) -> Result<StreamParams, String> {
        let pairs = query_pairs(query);
        let get = |k: &str| query_get(&pairs, k);
        let p = StreamParams {
            command: pairs
                .iter()
                .filter(|(k, _)| k == "command")
                .map(|(_, v)| v.clone())
                .collect(),
            stdin: flag(get("stdin")),
            stdout: flag(get("stdout")),
            stderr: flag(get("stderr")),
            tty: flag(get("tty")),
        };
        if kind == Kind::Exec && p.command.is_empty() {
            return Err("you must specify at least one command for the container".into());
        }
        if !p.stdin && !p.stdout && !p.stderr {
            return Err("you must specify at least 1 of stdin, stdout, stderr".into());
        }
        if p.tty && p.stderr {
            // kube: a terminal has one output stream.
            return Ok(StreamParams { stderr: false, ..p });
        }
        Ok(p)
    }
}

/// Serves an exec or attach request.
pub(crate) async fn serve(
    state: &Arc<State>,
    kind: Kind,
    target: Target,
    mut request: Request<Incoming>,
) -> Result<Response<Body>, Failure> {
    let spdy = super::spdy_stream::is_spdy_upgrade(&request);
    if !spdy {
        upgrade::require_websocket(&request)?;
    }
    let params = StreamParams::parse(request.uri().query(), kind).map_err(Failure::bad_request)?;
    let negotiated = if spdy {
        let offered = super::spdy_stream::offered_versions(&request);
        Some(
            channel::negotiate(&offered, channel::STREAM_PROTOCOLS)
                .map_err(|m| Failure::new(403, m))?
                .ok_or_else(|| {
                    Failure::new(
                        403,
                        "unable to upgrade: no X-Stream-Protocol-Version was offered",
                    )
                })?,
        )
    } else {
        channel::negotiate(&upgrade::offered(&request), channel::STREAM_PROTOCOLS)
            .map_err(Failure::bad_request)?
    };
    let (protocol, version) = match negotiated {
        Some((name, v)) => (Some(name), v),
        None => (None, Version::V1),
    };
    let t = target.clone();
    let found = state
        .blocking(move |engine| lookup::find(engine, &t, false))
        .await?
        .map_err(|(code, message)| Failure::new(code, message))?;
    if !found.running {
        return Err(Failure::bad_request(format!(
            "container {:?} in pod {:?} is not running",
            target.container, target.pod
        )));
    }
    if spdy {
        let session = super::spdy_stream::Session {
            state: Arc::clone(state),
            kind,
            container_id: found.id,
            params,
            version,
        };
        return Ok(super::spdy_stream::upgrade(
            &mut request,
            protocol.unwrap_or_default(),
            session,
        ));
    }
    let (response, on_upgrade) = upgrade::accept(&mut request, protocol)?;
    let state = Arc::clone(state);
    tokio::spawn(async move {
        let Some(socket) = upgrade::open(on_upgrade).await else {
            return;
        };
        run(&state, kind, found.id, params, version, socket).await;
    });
    Ok(response)
}

/// Starts the process (or attaches) and relays until its output ends.
async fn run(
    state: &Arc<State>,
    kind: Kind,
    container_id: String,
    params: StreamParams,
    version: Version,
    socket: Socket,
) {
    let (mut sink, mut source) = socket.split();
    let p = params.clone();
    let cid = container_id.clone();
    let started = state
        .blocking(move |engine| start(engine, kind, &cid, &p))
        .await
        .unwrap_or_else(|f| Err(f.message));
    let (exec_id, attached) = match started {
        Ok(pair) => pair,
        Err(message) => {
            finish(&mut sink, version, &channel::error_status(&message)).await;
            return;
        }
    };
    let tty = attached.tty;
    let mon = attached.socket;
    let mon = match mon
        .set_nonblocking(true)
        .and_then(|()| tokio::net::UnixStream::from_std(mon))
    {
        Ok(m) => m,
        Err(e) => {
            let status = channel::error_status(&format!("the stream's socket: {e}"));
            finish(&mut sink, version, &status).await;
            return;
        }
    };
    let (mut mr, mut mw) = mon.into_split();

    // client to process: stdin, resize, the close signal
    let resize_state = Arc::clone(state);
    let resize_target = (kind, container_id.clone(), exec_id.clone());
    let input = tokio::spawn(async move {
        let mut stdin_open = true;
        while let Some(message) = source.next().await {
            let data = match message {
                Ok(Message::Binary(b)) => b,
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => continue,
            };
            match channel::parse(&data, version) {
                Msg::Data(channel::STDIN, bytes) if stdin_open => {
                    stdin_open = mw.write_all(bytes).await.is_ok();
                }
                Msg::Close(channel::STDIN) => {
                    stdin_open = false;
                    let _ = mw.shutdown().await;
                }
                Msg::Data(channel::RESIZE, bytes) => {
                    if let Some((width, height)) = channel::parse_resize(bytes) {
                        let (kind, cid, eid) = resize_target.clone();
                        let _ = resize_state
                            .blocking(move |engine| match (kind, eid) {
                                (Kind::Exec, Some(eid)) => engine.exec_resize(&eid, height, width),
                                _ => engine.resize(&cid, height, width),
                            })
                            .await;
                    }
                }
                _ => {}
            }
        }
        // the client is gone: the process sees the end of its input
        let _ = mw.shutdown().await;
    });

    // process to client: stdout and stderr
    let mut frames = FrameReader::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut client_gone = false;
    loop {
        let n = match mr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for (out, data) in frames.feed(&buf[..n]) {
            let ch = match out {
                Out::Stderr if !tty => channel::STDERR,
                _ => channel::STDOUT,
            };
            if sink
                .send(Message::Binary(channel::frame(ch, &data).into()))
                .await
                .is_err()
            {
                client_gone = true;
                break;
            }
        }
        if client_gone {
            break;
        }
    }
    input.abort();
    if client_gone {
        return;
    }
    let status = match (kind, exec_id) {
        (Kind::Exec, Some(eid)) => exit_status(state, &eid, &params.command).await,
        _ => channel::exit_status(&[], 0),
    };
    finish(&mut sink, version, &status).await;
}

/// Creates and starts the exec (attached before its process runs), or
/// attaches to the container. Blocking.
pub(super) fn start(
    engine: &berth_engine::Engine,
    kind: Kind,
    container_id: &str,
    p: &StreamParams,
) -> Result<(Option<String>, berth_engine::streams::AttachStream), String> {
    match kind {
        Kind::Attach => engine
            .attach(container_id, p.stdin, p.stdout, p.stderr)
            .map(|a| (None, a))
            .ok_or_else(|| format!("container {container_id} is not running")),
        Kind::Exec => {
            let record = berth_engine::exec::ExecRecord {
                schema: berth_engine::exec::EXEC_SCHEMA,
                cmd: p.command.clone(),
                tty: p.tty,
                attach_stdin: p.stdin,
                attach_stdout: p.stdout,
                attach_stderr: p.stderr,
                ..Default::default()
            };
            let eid = engine
                .exec_create(container_id, record)
                .map_err(|e| e.to_string())?;
            let mut attached = None;
            engine
                .exec_start(&eid, || {
                    attached = engine.exec_attach(&eid, p.stdin, p.stdout, p.stderr);
                    Ok(())
                })
                .map_err(|e| berth_engine::exec::failure_message(&e.to_string()))?;
            let attached = attached.ok_or_else(|| {
                format!("could not attach to the exec's streams in container {container_id}")
            })?;
            Ok((Some(eid), attached))
        }
    }
}

/// The exec's exit status once its monitor recorded it.
pub(super) async fn exit_status(state: &Arc<State>, eid: &str, command: &[String]) -> Value {
    for _ in 0..100 {
        let id = eid.to_owned();
        if let Ok(Ok(record)) = state.blocking(move |e| e.exec_inspect(&id)).await
            && let Some(code) = record.exit_code
            && !record.running
        {
            return channel::exit_status(command, code);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    channel::error_status(&format!("the exit code of exec {eid} was not recorded"))
}

/// Sends the final status (as the version wants it) and closes.
async fn finish(
    sink: &mut futures::stream::SplitSink<Socket, Message>,
    version: Version,
    status: &Value,
) {
    if let Some(frame) = channel::final_error(version, status) {
        let _ = sink.send(Message::Binary(frame.into())).await;
    }
    let _ = sink.send(upgrade::normal_close()).await;
    let _ = sink.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_parameters_keep_the_command_s_order() {
        let p = StreamParams::parse(
            Some("command=sh&command=-c&command=echo%20hi&stdin=true&stdout=true&stderr=true"),
            Kind::Exec,
        )
        .unwrap();
        assert_eq!(p.command, vec!["sh", "-c", "echo hi"]);
        assert!(p.stdin && p.stdout && p.stderr && !p.tty);
        let tty =
            StreamParams::parse(Some("command=sh&stdout=1&stderr=1&tty=1"), Kind::Exec).unwrap();
        assert!(tty.tty && tty.stdout && !tty.stderr);
    }

    #[test]
    fn exec_without_command_or_streams_is_refused() {
        assert_eq!(
            StreamParams::parse(Some("stdout=true"), Kind::Exec).unwrap_err(),
            "you must specify at least one command for the container"
        );
        assert_eq!(
            StreamParams::parse(Some("command=ls"), Kind::Exec).unwrap_err(),
            "you must specify at least 1 of stdin, stdout, stderr"
        );
        assert!(StreamParams::parse(Some("stdout=true"), Kind::Attach).is_ok());
    }
}
