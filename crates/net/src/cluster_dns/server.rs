//! The cluster DNS server's sockets: UDP and TCP on one address, answers
//! from a [`ZoneHandle`], other names forwarded ([`crate::dns_io`]).

use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hickory_proto::op::{Message, Query};

use super::zone::{ZoneHandle, answer, dangling_cname};
use crate::dns::Reply;
use crate::dns_io::{self, Forwarder, servfail};
use crate::error::Result;

/// How the server answers.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// TTL of the zone's answers (and of its negative answers).
    pub ttl: u32,
    /// The node's resolvers, for every name outside the zone.
    pub forwarder: Forwarder,
}

/// A running server; it stops when dropped.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddrV4,
    alive: Arc<AtomicBool>,
}

impl Server {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddrV4 {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.alive.store(false, Ordering::Relaxed);
    }
}

/// Listens on `addr` (UDP and TCP; the address may not exist yet) and
/// answers from `zone` on threads of its own until the [`Server`] is
/// dropped. Upstreams equal to `addr` are left out (no loop to itself).
pub fn start(addr: SocketAddrV4, zone: ZoneHandle, opts: ServerOptions) -> Result<Server> {
    let (udp, tcp) = dns_io::listen(addr)?;
    let mut opts = opts;
    opts.forwarder
        .upstreams
        .retain(|u| *u != SocketAddr::V4(addr));
    let alive = Arc::new(AtomicBool::new(true));
    let ctx = Arc::new(Ctx { zone, opts });
    let (ctx2, a1, a2) = (ctx.clone(), alive.clone(), alive.clone());
    std::thread::Builder::new()
        .name("cluster-dns-udp".into())
        .spawn(move || dns_io::serve_udp(ctx, udp, a1))
        .map_err(|e| crate::Error::Io("start the cluster DNS".into(), e))?;
    std::thread::Builder::new()
        .name("cluster-dns-tcp".into())
        .spawn(move || dns_io::serve_tcp(ctx2, tcp, a2))
        .map_err(|e| crate::Error::Io("start the cluster DNS".into(), e))?;
    Ok(Server { addr, alive })
}

struct Ctx {
    zone: ZoneHandle,
    opts: ServerOptions,
}

impl Ctx {
    fn upstream(&self, raw: &[u8], tcp: bool) -> Option<Vec<u8>> {
        if tcp {
            self.opts.forwarder.tcp(raw)
        } else {
            self.opts.forwarder.udp(raw)
        }
    }

    /// A zone answer ending in an alias out of the zone: the alias's
    /// records asked upstream and appended (as CoreDNS resolves an
    /// ExternalName's target).
    fn chase(&self, mut reply: Message, tcp: bool) -> Message {
        let (Some(target), Some(q)) = (dangling_cname(&reply), reply.queries.first().cloned())
        else {
            return reply;
        };
        let mut ask = Message::query();
        ask.metadata.id = reply.metadata.id;
        ask.metadata.recursion_desired = true;
        ask.add_query(Query::query(target, q.query_type()));
        let Ok(raw) = ask.to_vec() else {
            return reply;
        };
        if let Some(up) = self.upstream(&raw, tcp)
            && let Ok(up) = Message::from_vec(&up)
        {
            reply.add_answers(up.answers);
        }
        reply
    }
}

impl dns_io::Local for Ctx {
    fn local(&self, raw: &[u8], _from: IpAddr) -> Option<Vec<u8>> {
        let query = Message::from_vec(raw).ok()?;
        let zone = self.zone.snapshot();
        match answer(&query, &zone, self.opts.ttl) {
            Reply::Local(m) => {
                // an out-of-zone alias needs the upstreams: not on the
                // receiving thread
                if dangling_cname(&m).is_some() && !self.opts.forwarder.upstreams.is_empty() {
                    return None;
                }
                Some(m.to_vec().unwrap_or_else(|_| servfail(raw)))
            }
            Reply::Forward => None,
        }
    }

    fn forward(&self, raw: &[u8], tcp: bool) -> Vec<u8> {
        if let Ok(query) = Message::from_vec(raw)
            && let Reply::Local(m) = answer(&query, &self.zone.snapshot(), self.opts.ttl)
        {
            return self
                .chase(m, tcp)
                .to_vec()
                .unwrap_or_else(|_| servfail(raw));
        }
        self.upstream(raw, tcp).unwrap_or_else(|| servfail(raw))
    }
}
