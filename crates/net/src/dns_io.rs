//! The socket side shared by berth's DNS servers (the docker networks'
//! embedded resolver, [`crate::dns`], and the cluster DNS,
//! [`crate::cluster_dns`]): `IP_FREEBIND` listeners, one thread per UDP
//! socket and per TCP connection, and forwarding to upstream resolvers.
//!
//! A server supplies a *local* answer function: raw query and asker in,
//! `Some(reply)` to answer, `None` to forward the query unchanged.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};

use crate::error::{Error, Result};

/// How long a blocked receive waits before the server looks at its
/// `alive` flag again.
pub const POLL: Duration = Duration::from_millis(200);

/// Where names that are not ours go.
#[derive(Clone, Debug, Default)]
pub struct Forwarder {
    /// The upstream resolvers, tried in order.
    pub upstreams: Vec<SocketAddr>,
    /// How long one upstream may take to answer.
    pub timeout: Duration,
}

impl Forwarder {
    /// Asks the upstreams over UDP; `None` when none answered.
    pub fn udp(&self, raw: &[u8]) -> Option<Vec<u8>> {
        for up in &self.upstreams {
            let bind: SocketAddr = if up.is_ipv4() {
                (Ipv4Addr::UNSPECIFIED, 0).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let Ok(sock) = UdpSocket::bind(bind) else {
                continue;
            };
            if sock.set_read_timeout(Some(self.timeout)).is_err()
                || sock.connect(up).is_err()
                || sock.send(raw).is_err()
            {
                continue;
            }
            let mut buf = vec![0u8; 65535];
            // Skip stray datagrams with another id until the timeout.
            while let Ok(n) = sock.recv(&mut buf) {
                if same_id(raw, &buf[..n]) {
                    return Some(buf[..n].to_vec());
                }
            }
        }
        None
    }

    /// Asks the upstreams over TCP; `None` when none answered.
    pub fn tcp(&self, raw: &[u8]) -> Option<Vec<u8>> {
        for up in &self.upstreams {
            let Ok(mut s) = TcpStream::connect_timeout(up, self.timeout) else {
                continue;
            };
            let _ = s.set_read_timeout(Some(self.timeout));
            if write_framed(&mut s, raw).is_err() {
                continue;
            }
            if let Ok(reply) = read_framed(&mut s)
                && same_id(raw, &reply)
            {
                return Some(reply);
            }
        }
        None
    }
}

/// A socket of `kind` bound to `addr` with `IP_FREEBIND` (the address may
/// not exist yet) and `SO_REUSEADDR`.
pub fn bind(addr: SocketAddrV4, kind: rustix::net::SocketType) -> Result<std::os::fd::OwnedFd> {
    let err = |what: &str| {
        let what = format!("{what} {addr}");
        move |e: rustix::io::Errno| Error::Io(what, e.into())
    };
    let fd = rustix::net::socket_with(
        rustix::net::AddressFamily::INET,
        kind,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .map_err(err("socket for"))?;
    rustix::net::sockopt::set_ip_freebind(&fd, true).map_err(err("IP_FREEBIND for"))?;
    rustix::net::sockopt::set_socket_reuseaddr(&fd, true).map_err(err("SO_REUSEADDR for"))?;
    rustix::net::bind(&fd, &addr).map_err(err("bind"))?;
    Ok(fd)
}

/// A UDP socket and a listening TCP socket on `addr`, both with receive
/// timeouts of [`POLL`].
pub fn listen(addr: SocketAddrV4) -> Result<(UdpSocket, TcpListener)> {
    let udp = bind(addr, rustix::net::SocketType::DGRAM)?;
    let tcp = bind(addr, rustix::net::SocketType::STREAM)?;
    rustix::net::listen(&tcp, 64).map_err(|e| Error::Io(format!("listen on {addr}"), e.into()))?;
    for fd in [&udp, &tcp] {
        rustix::net::sockopt::set_socket_timeout(
            fd,
            rustix::net::sockopt::Timeout::Recv,
            Some(POLL),
        )
        .map_err(|e| Error::Io(format!("set timeout on {addr}"), e.into()))?;
    }
    Ok((UdpSocket::from(udp), TcpListener::from(tcp)))
}

/// A SERVFAIL reply to `raw` (its id and question kept when parseable).
pub fn servfail(raw: &[u8]) -> Vec<u8> {
    match Message::from_vec(raw) {
        Ok(q) => {
            let mut m =
                Message::error_msg(q.metadata.id, q.metadata.op_code, ResponseCode::ServFail);
            m.add_queries(q.queries);
            m.to_vec().unwrap_or_default()
        }
        Err(_) => Vec::new(),
    }
}

/// A server's answer function: `Some(reply)` or `None` to forward.
pub trait Local: Send + Sync + 'static {
    /// Answers one raw query from `from`.
    fn local(&self, raw: &[u8], from: IpAddr) -> Option<Vec<u8>>;

    /// The reply to a query `local` gave up: forwarded over `tcp` or UDP.
    fn forward(&self, raw: &[u8], tcp: bool) -> Vec<u8>;
}

/// Serves `sock` until `alive` is cleared: local answers on this thread,
/// forwarded ones on a thread each (an upstream may take seconds).
pub fn serve_udp<L: Local>(local: Arc<L>, sock: UdpSocket, alive: Arc<AtomicBool>) {
    let mut buf = vec![0u8; 4096];
    while alive.load(Ordering::Relaxed) {
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let raw = buf[..n].to_vec();
        if let Some(reply) = local.local(&raw, from.ip()) {
            let _ = sock.send_to(&reply, from);
            continue;
        }
        let (local, sock) = (local.clone(), sock.try_clone());
        std::thread::spawn(move || {
            if let Ok(sock) = sock {
                let _ = sock.send_to(&local.forward(&raw, false), from);
            }
        });
    }
}

/// Accepts on `listener` until `alive` is cleared, a thread per connection.
pub fn serve_tcp<L: Local>(local: Arc<L>, listener: TcpListener, alive: Arc<AtomicBool>) {
    while alive.load(Ordering::Relaxed) {
        let Ok((stream, peer)) = listener.accept() else {
            continue;
        };
        let local = local.clone();
        std::thread::spawn(move || {
            let _ = serve_tcp_conn(&*local, stream, peer.ip());
        });
    }
}

fn serve_tcp_conn<L: Local>(local: &L, mut s: TcpStream, peer: IpAddr) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    loop {
        let Ok(raw) = read_framed(&mut s) else {
            return Ok(());
        };
        let reply = match local.local(&raw, peer) {
            Some(r) => r,
            None => local.forward(&raw, true),
        };
        write_framed(&mut s, &reply)?;
    }
}

/// Reads one length-prefixed DNS message (TCP framing).
pub fn read_framed(s: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len)?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut buf)?;
    Ok(buf)
}

/// Writes one length-prefixed DNS message (TCP framing).
pub fn write_framed(s: &mut impl Write, msg: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(msg.len()).map_err(|_| std::io::ErrorKind::InvalidData)?;
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(msg);
    s.write_all(&out)
}

/// Whether `reply` answers `query` (same id).
fn same_id(query: &[u8], reply: &[u8]) -> bool {
    query.len() >= 2 && reply.len() >= 2 && query[..2] == reply[..2]
}

/// `4.3.2.1.in-addr.arpa` → 1.2.3.4 (lowercase name, no trailing dot).
pub fn ptr_ip(qname: &str) -> Option<Ipv4Addr> {
    let rev = qname.strip_suffix(".in-addr.arpa")?;
    let parts: Vec<u8> = rev
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [d, c, b, a] = parts.as_slice() else {
        return None;
    };
    Some(Ipv4Addr::new(*a, *b, *c, *d))
}

/// 1.2.3.4 → `4.3.2.1.in-addr.arpa`.
pub fn ptr_name(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("{d}.{c}.{b}.{a}.in-addr.arpa")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names() {
        assert_eq!(
            ptr_ip("4.3.2.1.in-addr.arpa"),
            Some(Ipv4Addr::new(1, 2, 3, 4))
        );
        assert_eq!(ptr_ip("4.3.2.in-addr.arpa"), None);
        assert_eq!(
            ptr_name(Ipv4Addr::new(198, 19, 3, 4)),
            "4.3.19.198.in-addr.arpa"
        );
    }
}
