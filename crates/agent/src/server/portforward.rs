//! `/portForward/{ns}/{pod}?port=…` over WebSocket (kubelet's channel form:
//! `v4.channel.k8s.io`, or no protocol): two channels per port in the
//! order asked — data (2i) and error (2i+1) — each opened by the server
//! with the port as two little-endian bytes. A port is reached by a TCP
//! connection to localhost made *inside the pod's network namespace*
//! (a short-lived thread joins the sandbox's `ns/net`).
//!
//! kubectl (1.31+) tunnels SPDY inside WebSocket
//! (`SPDY/3.1+portforward.k8s.io`) and falls back to plain SPDY: both are
//! served by [`spdy_forward`](super::spdy_forward).

use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use futures::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::State;
use super::channel;
use super::http::{Failure, query_pairs};
use super::lookup;
use super::spdy_forward;
use super::upgrade;

/// The port-forward protocols served over WebSocket.
pub const PORT_FORWARD_PROTOCOLS: &[(&str, ())] = &[("v4.channel.k8s.io", ())];

/// The ports of a request, in order, checked as kubelet checks them.
pub fn parse_ports(query: Option<&str>) -> Result<Vec<u16>, String> {
    let pairs = query_pairs(query);
    let mut ports = Vec::new();
    for (_, value) in pairs.iter().filter(|(k, _)| k == "port") {
        for one in value.split(',') {
            let port: u16 = one
                .trim()
                .parse()
                .map_err(|e| format!("unable to parse {one:?} as a port: {e}"))?;
            if port == 0 {
                return Err(format!("port {one:?} must be > 0"));
            }
            ports.push(port);
        }
    }
    if ports.is_empty() {
        return Err("query parameter \"port\" is required".into());
    }
    Ok(ports)
}

/// The first message of a port's channels: the port, little-endian.
pub fn port_preamble(channel: u8, port: u16) -> Vec<u8> {
    channel::frame(channel, &port.to_le_bytes())
}

/// Connects to `port` on localhost in the network namespace at `netns`
/// (`None`: the host's, for a pod on the host network). Blocking.
pub fn connect_in(netns: Option<&Path>, port: u16) -> io::Result<TcpStream> {
    let ns = netns.map(File::open).transpose()?;
    std::thread::scope(|s| {
        s.spawn(|| -> io::Result<TcpStream> {
            if let Some(f) = &ns {
                rustix::thread::move_into_link_name_space(
                    f.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )
                .map_err(io::Error::from)?;
            }
            TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
                .or_else(|_| TcpStream::connect(SocketAddr::from((Ipv6Addr::LOCALHOST, port))))
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the namespace thread panicked")))
    })
}

/// Where the pod's network namespace is (`None` for the host's).
fn netns_of(state: &State, sandbox: &berth_engine::sandbox::Sandbox) -> Option<PathBuf> {
    if sandbox.network == berth_engine::sandbox::SandboxNetwork::Host {
        return None;
    }
    Some(berth_engine::sandbox::ns_path(
        &state.root.join("sandboxes").join(&sandbox.id),
        berth_engine::sandbox::Ns::Net,
    ))
}

/// Serves a port-forward request: SPDY tunnelled in WebSocket, plain
/// SPDY, or the WebSocket channel form.
pub(crate) async fn serve(
    state: &Arc<State>,
    namespace: &str,
    pod: &str,
    mut request: Request<Incoming>,
) -> Result<Response<Body>, Failure> {
    let upgrade = request
        .headers()
        .get(hyper::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_uppercase();
    let plain_spdy = upgrade.starts_with("SPDY/");
    if !plain_spdy {
        upgrade::require_websocket(&request)?;
    }
    let offered = upgrade::offered(&request);
    let tunnel = offered.iter().any(|p| p == spdy_forward::TUNNEL_PROTOCOL);
    let (ns, name) = (namespace.to_owned(), pod.to_owned());
    let sandbox = state
        .blocking(move |engine| lookup::sandbox_of(engine, &ns, &name))
        .await?
        .ok_or_else(|| Failure::not_found(format!("pod {pod:?} does not exist")))?;
    let target = spdy_forward::Target {
        netns: netns_of(state, &sandbox),
        pod: pod.to_owned(),
        uid: sandbox
            .labels
            .get(lookup::POD_UID)
            .cloned()
            .unwrap_or_else(|| sandbox.id.clone()),
    };
    if plain_spdy {
        return spdy_upgrade(request, target);
    }
    if tunnel {
        let (response, on_upgrade) =
            upgrade::accept(&mut request, Some(spdy_forward::TUNNEL_PROTOCOL))?;
        tokio::spawn(async move {
            if let Some(socket) = upgrade::open(on_upgrade).await {
                tunnel_spdy(socket, target).await;
            }
        });
        return Ok(response);
    }
    let protocol = channel::negotiate(&offered, PORT_FORWARD_PROTOCOLS)
        .map_err(Failure::bad_request)?
        .map(|(name, ())| name);
    let ports = parse_ports(request.uri().query()).map_err(Failure::bad_request)?;
    let (response, on_upgrade) = upgrade::accept(&mut request, protocol)?;
    tokio::spawn(async move {
        if let Some(socket) = upgrade::open(on_upgrade).await {
            relay(socket, ports, target.netns, target.pod, target.uid).await;
        }
    });
    Ok(response)
}

/// SPDY inside WebSocket binary messages.
async fn tunnel_spdy(socket: upgrade::Socket, target: spdy_forward::Target) {
    let (mut sink, source) = socket.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(64);
    let writer = tokio::spawn(async move {
        while let Some(frame) = out_rx.recv().await {
            if sink.send(Message::Binary(frame.into())).await.is_err() {
                return;
            }
        }
        let _ = sink.send(upgrade::normal_close()).await;
        let _ = sink.close().await;
    });
    let incoming = source
        .take_while(|m| futures::future::ready(matches!(m, Ok(m) if !m.is_close())))
        .filter_map(|m| {
            futures::future::ready(match m {
                Ok(Message::Binary(b)) => Some(b.to_vec()),
                _ => None,
            })
        });
    spdy_forward::serve(Box::pin(incoming), out_tx, target).await;
    writer.abort();
}

/// A plain `Upgrade: SPDY/3.1` with `X-Stream-Protocol-Version: portforward.k8s.io`.
fn spdy_upgrade(
    mut request: Request<Incoming>,
    target: spdy_forward::Target,
) -> Result<Response<Body>, Failure> {
    let versions: Vec<String> = request
        .headers()
        .get_all("x-stream-protocol-version")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_owned())
        .collect();
    if !versions.iter().any(|v| v == spdy_forward::PROTOCOL) {
        return Err(Failure::new(
            403,
            format!(
                "unable to upgrade: unable to negotiate protocol: client supports {versions:?}, server supports [\"{}\"]",
                spdy_forward::PROTOCOL
            ),
        ));
    }
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let (incoming, out_tx, writer) = super::spdy_stream::byte_pipes(upgraded);
        spdy_forward::serve(incoming, out_tx, target).await;
        let _ = writer.await;
    });
    Ok(super::spdy_stream::switching(spdy_forward::PROTOCOL))
}

async fn relay(
    socket: upgrade::Socket,
    ports: Vec<u16>,
    netns: Option<PathBuf>,
    pod: String,
    sandbox_id: String,
) {
    let (mut sink, mut source) = socket.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(64);
    let writer = tokio::spawn(async move {
        while let Some(frame) = out_rx.recv().await {
            if sink.send(Message::Binary(frame.into())).await.is_err() {
                return;
            }
        }
        let _ = sink.send(upgrade::normal_close()).await;
        let _ = sink.close().await;
    });
    let mut writers = Vec::new();
    let mut readers = Vec::new();
    for (i, port) in ports.iter().copied().enumerate() {
        let Ok(data_channel) = u8::try_from(2 * i) else {
            break;
        };
        let error_channel = data_channel + 1;
        let _ = out_tx.send(port_preamble(data_channel, port)).await;
        let _ = out_tx.send(port_preamble(error_channel, port)).await;
        let ns = netns.clone();
        let connected = tokio::task::spawn_blocking(move || connect_in(ns.as_deref(), port))
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e.to_string())))
            .and_then(|s| {
                s.set_nonblocking(true)?;
                tokio::net::TcpStream::from_std(s)
            });
        let conn = match connected {
            Ok(c) => c,
            Err(e) => {
                let text =
                    format!("error forwarding port {port} to pod {pod}, uid {sandbox_id}: {e}");
                let _ = out_tx
                    .send(channel::frame(error_channel, text.as_bytes()))
                    .await;
                writers.push(None);
                continue;
            }
        };
        let (mut r, w) = conn.into_split();
        writers.push(Some(w));
        let tx = out_tx.clone();
        readers.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match r.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx
                            .send(channel::frame(data_channel, &buf[..n]))
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            }
        }));
    }
    drop(out_tx);
    let input = async {
        while let Some(message) = source.next().await {
            let data = match message {
                Ok(Message::Binary(b)) => b,
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => continue,
            };
            if let channel::Incoming::Data(ch, bytes) = channel::parse(&data, channel::Version::V4)
                && ch % 2 == 0
                && let Some(Some(w)) = writers.get_mut(usize::from(ch / 2))
                && w.write_all(bytes).await.is_err()
            {
                writers[usize::from(ch / 2)] = None;
            }
        }
        for w in writers.iter_mut().flatten() {
            let _ = w.shutdown().await;
        }
    };
    let outputs = futures::future::join_all(readers);
    tokio::select! {
        _ = input => {}
        _ = outputs => {}
    }
    let _ = writer.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_read_in_order_and_bad_ones_are_refused() {
        assert_eq!(
            parse_ports(Some("port=8080&port=53")).unwrap(),
            vec![8080, 53]
        );
        assert_eq!(parse_ports(Some("port=1,2")).unwrap(), vec![1, 2]);
        assert_eq!(
            parse_ports(None).unwrap_err(),
            "query parameter \"port\" is required"
        );
        assert_eq!(
            parse_ports(Some("port=0")).unwrap_err(),
            "port \"0\" must be > 0"
        );
        assert!(
            parse_ports(Some("port=http"))
                .unwrap_err()
                .starts_with("unable to parse \"http\" as a port")
        );
    }

    #[test]
    fn each_channel_opens_with_its_port_little_endian() {
        assert_eq!(port_preamble(0, 8080), vec![0, 0x90, 0x1f]);
        assert_eq!(port_preamble(3, 80), vec![3, 80, 0]);
    }

    #[test]
    fn the_host_namespace_is_reached_directly() {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let conn = connect_in(None, port).unwrap();
        assert_eq!(conn.peer_addr().unwrap().port(), port);
    }
}
