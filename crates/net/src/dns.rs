//! The embedded DNS resolver for user-defined networks (docker's
//! `127.0.0.11`, podman's aardvark-dns).
//!
//! [`serve`] listens on UDP and TCP port 53 at the gateway address of every
//! user-defined network of a root (the default `bridge` network has no
//! name resolution, as in docker). It answers A queries for the names,
//! aliases and short ids of the containers attached to *that* network, PTR
//! queries for their addresses, and forwards everything else to the host's
//! resolvers (`/etc/resolv.conf`). Endpoint records are re-read for every
//! query, so containers attached by any process are seen at once; the list
//! of networks is rescanned every second.
//!
//! A small blocking server on `hickory-proto` (the DNS wire format) rather
//! than `hickory-server`: the latter needs a tokio runtime, and this server
//! is a handful of sockets with one thread each, run by the engine as a
//! small per-root process (ADR 0011). Sockets use `IP_FREEBIND`, so a
//! network's listener is up before its bridge (and gateway address) exists.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::dns_io::{self, Forwarder, ptr_ip, servfail};
use crate::endpoint::{self, Endpoint};
use crate::error::Result;
use crate::network::{self, Network};
use crate::ops::Net;

/// How the resolver runs.
#[derive(Clone, Debug)]
pub struct DnsOptions {
    /// The port to listen on at each gateway (53).
    pub port: u16,
    /// Where unknown names are forwarded (the host's resolvers).
    pub upstreams: Vec<SocketAddr>,
    /// TTL of local answers, seconds (docker uses 600; containers come and
    /// go, so berth answers with a short one).
    pub ttl: u32,
    /// How often the list of networks is rescanned.
    pub rescan: Duration,
    /// How long one upstream may take to answer.
    pub upstream_timeout: Duration,
}

impl DnsOptions {
    /// Port 53, the upstreams of the host's `/etc/resolv.conf`.
    pub fn from_host() -> DnsOptions {
        let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        DnsOptions {
            port: 53,
            upstreams: upstreams_from_resolv_conf(&text),
            ttl: 10,
            rescan: Duration::from_secs(1),
            upstream_timeout: Duration::from_secs(2),
        }
    }
}

/// The `nameserver` lines of a resolv.conf, as port-53 socket addresses.
pub fn upstreams_from_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver")).then_some(())?;
            let ip: IpAddr = w.next()?.split('%').next()?.parse().ok()?;
            Some(SocketAddr::new(ip, 53))
        })
        .collect()
}

/// What to do with a query.
#[derive(Debug)]
pub enum Reply {
    /// Answer with this message.
    Local(Message),
    /// Not one of ours: ask the upstreams.
    Forward,
}

/// Answers `query` from the endpoints of `net` (pure; unit-tested).
///
/// A names match a container name, alias or 12-character short id, bare or
/// followed by `.<network name>`, case-insensitively. Other record types for
/// a known name get an empty NOERROR answer. Internal networks never
/// forward: unknown names get NXDOMAIN there.
pub fn answer(query: &Message, net: &Network, endpoints: &[Endpoint], ttl: u32) -> Reply {
    let id = query.metadata.id;
    if query.metadata.message_type != MessageType::Query || query.metadata.op_code != OpCode::Query
    {
        return Reply::Local(Message::error_msg(
            id,
            query.metadata.op_code,
            ResponseCode::NotImp,
        ));
    }
    let [q] = query.queries.as_slice() else {
        return Reply::Local(Message::error_msg(id, OpCode::Query, ResponseCode::FormErr));
    };
    let qname = q.name().to_ascii().to_ascii_lowercase();
    let qname = qname.trim_end_matches('.');
    let mut resp = Message::response(id, OpCode::Query);
    resp.metadata.recursion_desired = query.metadata.recursion_desired;
    resp.metadata.recursion_available = true;
    resp.add_query(q.clone());

    if q.query_type() == RecordType::PTR {
        if let Some(ip) = ptr_ip(qname)
            && let Some(ep) = endpoints.iter().find(|e| e.ip == ip)
        {
            resp.metadata.authoritative = true;
            let target = format!("{}.{}.", primary_name(ep), net.name);
            if let Ok(target) = Name::from_ascii(&target) {
                resp.add_answer(Record::from_rdata(
                    q.name().clone(),
                    ttl,
                    RData::PTR(PTR(target)),
                ));
            }
            return Reply::Local(resp);
        }
    } else {
        let suffix = format!(".{}", net.name.to_ascii_lowercase());
        let bare = qname.strip_suffix(&suffix).unwrap_or(qname);
        let hits: Vec<Ipv4Addr> = endpoints
            .iter()
            .filter(|e| {
                e.dns_names()
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(bare) || n.eq_ignore_ascii_case(qname))
            })
            .map(|e| e.ip)
            .collect();
        if !hits.is_empty() {
            resp.metadata.authoritative = true;
            if q.query_type() == RecordType::A || q.query_type() == RecordType::ANY {
                for ip in hits {
                    resp.add_answer(Record::from_rdata(q.name().clone(), ttl, RData::A(A(ip))));
                }
            }
            return Reply::Local(resp);
        }
    }
    if net.internal {
        resp.metadata.response_code = ResponseCode::NXDomain;
        return Reply::Local(resp);
    }
    Reply::Forward
}

fn primary_name(ep: &Endpoint) -> String {
    ep.dns_names()
        .into_iter()
        .next()
        .unwrap_or_else(|| ep.container_id.clone())
}

/// Runs the resolver for every user-defined network of `net`'s root until
/// `stop` is set. Blocking; the caller owns the thread (or process).
pub fn serve(net: &Net, opts: &DnsOptions, stop: &AtomicBool) -> Result<()> {
    let root = net.root().to_path_buf();
    let opts = Arc::new(opts.clone());
    let mut live: HashMap<String, Listener> = HashMap::new();
    while !stop.load(Ordering::Relaxed) {
        let nets: Vec<Network> = network::load_all(&root)?
            .into_iter()
            .filter(|n| !n.default)
            .collect();
        live.retain(|id, l| {
            let keep = nets.iter().any(|n| &n.id == id && n.gateway == l.gateway);
            if !keep {
                l.alive.store(false, Ordering::Relaxed);
            }
            keep
        });
        for n in &nets {
            if live.contains_key(&n.id) {
                continue;
            }
            match Listener::start(&root, n, &opts) {
                Ok(l) => {
                    tracing::debug!(network = %n.name, gateway = %n.gateway, "dns listening");
                    live.insert(n.id.clone(), l);
                }
                Err(e) => tracing::warn!(network = %n.name, "dns: {e}"),
            }
        }
        let mut slept = Duration::ZERO;
        while slept < opts.rescan && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
            slept += Duration::from_millis(50);
        }
    }
    for l in live.values() {
        l.alive.store(false, Ordering::Relaxed);
    }
    for (_, l) in live {
        for t in l.threads {
            let _ = t.join();
        }
    }
    Ok(())
}

/// One network's UDP and TCP sockets and their threads.
struct Listener {
    gateway: Ipv4Addr,
    alive: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Listener {
    fn start(root: &Path, n: &Network, opts: &Arc<DnsOptions>) -> Result<Listener> {
        let (udp, tcp) = dns_io::listen(SocketAddrV4::new(n.gateway, opts.port))?;
        let alive = Arc::new(AtomicBool::new(true));
        let ctx = Arc::new(Ctx {
            net_dir: network::dir(root, &n.id),
            forwarder: Forwarder {
                upstreams: opts.upstreams.clone(),
                timeout: opts.upstream_timeout,
            },
            ttl: opts.ttl,
        });
        let (ctx2, alive2, alive3) = (ctx.clone(), alive.clone(), alive.clone());
        let threads = vec![
            std::thread::spawn(move || dns_io::serve_udp(ctx, udp, alive2)),
            std::thread::spawn(move || dns_io::serve_tcp(ctx2, tcp, alive3)),
        ];
        Ok(Listener {
            gateway: n.gateway,
            alive,
            threads,
        })
    }
}

struct Ctx {
    net_dir: PathBuf,
    forwarder: Forwarder,
    ttl: u32,
}

impl dns_io::Local for Ctx {
    /// Answers one raw query from `from`; `None` to forward it. Names on
    /// this network come first; then, as docker's resolver does, names on
    /// the other user-defined networks the asking container is on.
    fn local(&self, raw: &[u8], from: IpAddr) -> Option<Vec<u8>> {
        let Ok(query) = Message::from_vec(raw) else {
            return None;
        };
        let net = crate::store::read_json::<Network>(&self.net_dir.join("network.json"))
            .ok()
            .flatten()?;
        let eps = endpoint::load_all(&self.net_dir).unwrap_or_default();
        let first = answer(&query, &net, &eps, self.ttl);
        if let Reply::Local(m) = &first
            && (m.metadata.authoritative || net.internal)
        {
            return Some(m.to_vec().unwrap_or_else(|_| servfail(raw)));
        }
        // the asking container, and its other networks
        let asker = eps
            .iter()
            .find(|e| IpAddr::V4(e.ip) == from)
            .map(|e| e.container_id.clone());
        if let (Some(cid), Some(all)) = (asker, self.net_dir.parent()) {
            for d in std::fs::read_dir(all).into_iter().flatten().flatten() {
                let dir = d.path();
                if dir == self.net_dir || !endpoint::path(&dir, &cid).exists() {
                    continue;
                }
                let Ok(Some(other)) = crate::store::read_json::<Network>(&dir.join("network.json"))
                else {
                    continue;
                };
                if other.default {
                    continue;
                }
                let oeps = endpoint::load_all(&dir).unwrap_or_default();
                if let Reply::Local(m) = answer(&query, &other, &oeps, self.ttl)
                    && m.metadata.authoritative
                {
                    return Some(m.to_vec().unwrap_or_else(|_| servfail(raw)));
                }
            }
        }
        match first {
            Reply::Local(m) => Some(m.to_vec().unwrap_or_else(|_| servfail(raw))),
            Reply::Forward => None,
        }
    }

    fn forward(&self, raw: &[u8], tcp: bool) -> Vec<u8> {
        let reply = if tcp {
            self.forwarder.tcp(raw)
        } else {
            self.forwarder.udp(raw)
        };
        reply.unwrap_or_else(|| servfail(raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NetConfig;
    use crate::endpoint::ENDPOINT_SCHEMA;
    use crate::network::{CreateNetwork, plan};
    use hickory_proto::op::Query;

    fn net(internal: bool) -> Network {
        let req = CreateNetwork {
            name: "appnet".into(),
            subnet: Some("198.18.250.0/24".into()),
            internal,
            ..Default::default()
        };
        plan(&NetConfig::default(), &req, &[], "ab".repeat(32)).unwrap()
    }

    fn ep(name: &str, id: &str, ip: [u8; 4], aliases: &[&str]) -> Endpoint {
        Endpoint {
            schema: ENDPOINT_SCHEMA,
            id: "e".repeat(64),
            network_id: "ab".repeat(32),
            network_name: "appnet".into(),
            container_id: id.repeat(64 / id.len()),
            container_name: name.into(),
            aliases: aliases.iter().map(|s| s.to_string()).collect(),
            ip: ip.into(),
            prefix: 24,
            gateway: [198, 18, 250, 1].into(),
            mac: String::new(),
            host_veth: String::new(),
            interface: "eth0".into(),
            netns: PathBuf::new(),
            ports: vec![],
            created: String::new(),
        }
    }

    fn ask(name: &str, t: RecordType) -> Message {
        let mut m = Message::query();
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        m
    }

    fn a_records(r: Reply) -> Vec<Ipv4Addr> {
        let Reply::Local(m) = r else {
            panic!("forwarded");
        };
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        m.answers
            .iter()
            .filter_map(|r| match r.data {
                RData::A(A(ip)) => Some(ip),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn answers_names_aliases_and_short_ids() {
        let n = net(false);
        let eps = vec![
            ep("web", "ab12", [198, 18, 250, 2], &["www", "shared"]),
            ep("db", "cd34", [198, 18, 250, 3], &["shared"]),
        ];
        let web = [Ipv4Addr::new(198, 18, 250, 2)];
        for q in ["web", "WEB.", "www", "web.appnet", "ab12ab12ab12"] {
            assert_eq!(
                a_records(answer(&ask(q, RecordType::A), &n, &eps, 5)),
                web,
                "{q}"
            );
        }
        let mut both = a_records(answer(&ask("shared", RecordType::A), &n, &eps, 5));
        both.sort();
        assert_eq!(both.len(), 2);
        // Known name, other type: empty NOERROR, not forwarded.
        assert!(a_records(answer(&ask("web", RecordType::AAAA), &n, &eps, 5)).is_empty());
        // Unknown names go upstream; on internal networks they do not.
        assert!(matches!(
            answer(&ask("example.org", RecordType::A), &n, &eps, 5),
            Reply::Forward
        ));
        let Reply::Local(m) = answer(&ask("example.org", RecordType::A), &net(true), &eps, 5)
        else {
            panic!("internal network forwarded");
        };
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    }

    #[test]
    fn reverse_lookups() {
        let n = net(false);
        let eps = vec![ep("web", "ab12", [198, 18, 250, 2], &[])];
        let Reply::Local(m) = answer(
            &ask("2.250.18.198.in-addr.arpa.", RecordType::PTR),
            &n,
            &eps,
            5,
        ) else {
            panic!("forwarded");
        };
        let RData::PTR(PTR(name)) = &m.answers[0].data else {
            panic!("{m:?}");
        };
        assert_eq!(name.to_ascii(), "web.appnet.");
        assert!(matches!(
            answer(
                &ask("9.250.18.198.in-addr.arpa.", RecordType::PTR),
                &n,
                &eps,
                5
            ),
            Reply::Forward
        ));
    }

    #[test]
    fn resolv_conf_upstreams() {
        let text = "# c\nsearch example.org\nnameserver 127.0.0.53\nnameserver ::1\noptions ndots:1\nnameserver bogus\n";
        let ups = upstreams_from_resolv_conf(text);
        assert_eq!(
            ups,
            vec![
                "127.0.0.53:53".parse::<SocketAddr>().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
    }
}
