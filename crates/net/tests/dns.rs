//! The embedded resolver against real sockets, as root: listeners on a test
//! network's gateway, queries from the host and from inside a container
//! namespace, forwarding to a fake upstream on 127.0.0.1.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use berth_net::dns::{DnsOptions, serve};
use common::*;
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};

const UPSTREAM_ANSWER: Ipv4Addr = Ipv4Addr::new(198, 18, 229, 99);

/// A fake upstream on 127.0.0.1: `upstream.test` has an address, every
/// other name is NXDOMAIN.
fn fake_upstream(stop: Arc<AtomicBool>) -> (SocketAddr, std::thread::JoinHandle<()>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let addr = sock.local_addr().unwrap();
    let h = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while !stop.load(Ordering::Relaxed) {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            let q = Message::from_vec(&buf[..n]).unwrap();
            let mut r = Message::response(q.metadata.id, q.metadata.op_code);
            r.add_queries(q.queries.clone());
            if q.queries[0].name().to_ascii() == "upstream.test." {
                r.add_answer(Record::from_rdata(
                    q.queries[0].name().clone(),
                    5,
                    RData::A(A(UPSTREAM_ANSWER)),
                ));
            } else {
                r.metadata.response_code = ResponseCode::NXDomain;
            }
            sock.send_to(&r.to_vec().unwrap(), from).unwrap();
        }
    });
    (addr, h)
}

fn query(name: &str) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    m.to_vec().unwrap()
}

fn parse(reply: &[u8]) -> (ResponseCode, Vec<Ipv4Addr>) {
    let m = Message::from_vec(reply).unwrap();
    let ips = m
        .answers
        .iter()
        .filter_map(|r| match r.data {
            RData::A(A(ip)) => Some(ip),
            _ => None,
        })
        .collect();
    (m.metadata.response_code, ips)
}

fn udp_lookup(server: Ipv4Addr, name: &str) -> Option<(ResponseCode, Vec<Ipv4Addr>)> {
    let s = UdpSocket::bind("0.0.0.0:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.send_to(&query(name), (server, 53)).unwrap();
    let mut buf = [0u8; 2048];
    let n = s.recv(&mut buf).ok()?;
    Some(parse(&buf[..n]))
}

fn tcp_lookup(server: Ipv4Addr, name: &str) -> (ResponseCode, Vec<Ipv4Addr>) {
    let mut s = TcpStream::connect((server, 53)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let q = query(name);
    let mut out = (q.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&q);
    s.write_all(&out).unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).unwrap();
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).unwrap();
    parse(&buf)
}

/// Polls until the resolver answers (it rescans networks periodically).
fn wait_for(server: Ipv4Addr, name: &str) -> (ResponseCode, Vec<Ipv4Addr>) {
    for _ in 0..50 {
        if let Some(r) = udp_lookup(server, name)
            && !r.1.is_empty()
        {
            return r;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no answer for {name} from {server}");
}

#[test]
fn containers_resolve_each_other_by_name_on_their_network_only() {
    if !root_or_skip("dns") {
        return;
    }
    let mut env = Env::new(226);
    let n = env.network("dnsnet", "198.18.227.0/24", false);
    env.network("othernet", "198.18.228.0/24", false);
    let (w, c, s) = (env.netns("web"), env.netns("client"), env.netns("stranger"));
    let web = env.attach("dnsnet", "web", &w, vec![]);
    let client = env.attach("dnsnet", "client", &c, vec![]);
    env.attach("othernet", "stranger", &s, vec![]);

    let stop = Arc::new(AtomicBool::new(false));
    let (upstream, up_thread) = fake_upstream(stop.clone());
    let opts = DnsOptions {
        port: 53,
        upstreams: vec![upstream],
        ttl: 5,
        rescan: Duration::from_millis(200),
        upstream_timeout: Duration::from_secs(2),
    };
    let net = env.net.clone();
    let stop2 = stop.clone();
    let server = std::thread::spawn(move || serve(&net, &opts, &stop2));
    struct Stop(Arc<AtomicBool>);
    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let _stop = Stop(stop.clone());

    let gw = n.gateway;
    assert_eq!(wait_for(gw, "web"), (ResponseCode::NoError, vec![web.ip]));
    assert_eq!(udp_lookup(gw, "web-alias").unwrap().1, vec![web.ip]);
    assert_eq!(udp_lookup(gw, "client.dnsnet").unwrap().1, vec![client.ip]);
    assert_eq!(
        udp_lookup(gw, &web.container_id[..12]).unwrap().1,
        vec![web.ip]
    );
    assert_eq!(tcp_lookup(gw, "web"), (ResponseCode::NoError, vec![web.ip]));
    // Containers of other networks are unknown here: the query goes upstream.
    assert_eq!(
        udp_lookup(gw, "stranger").unwrap(),
        (ResponseCode::NXDomain, vec![])
    );
    assert_eq!(
        udp_lookup(gw, "upstream.test").unwrap(),
        (ResponseCode::NoError, vec![UPSTREAM_ANSWER])
    );
    assert_eq!(
        tcp_lookup(gw, "upstream.test").0,
        ResponseCode::ServFail,
        "the fake upstream has no TCP"
    );

    // From inside a container, the way its resolv.conf would point.
    let o = in_ns(&c, &[BUSYBOX, "nslookup", "web", &gw.to_string()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(&web.ip.to_string()), "nslookup: {out}");

    // A container attached later (by any process) resolves at once.
    let l = env.netns("late");
    let late = env.attach("dnsnet", "late", &l, vec![]);
    assert_eq!(udp_lookup(gw, "late").unwrap().1, vec![late.ip]);
    env.net.detach("dnsnet", &late.container_id).unwrap();
    assert_eq!(udp_lookup(gw, "late").unwrap().0, ResponseCode::NXDomain);

    stop.store(true, Ordering::Relaxed);
    server.join().unwrap().unwrap();
    up_thread.join().unwrap();
    // The listeners are gone with the server.
    assert!(udp_lookup(gw, "web").is_none());
}
