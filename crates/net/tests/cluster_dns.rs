//! The cluster DNS server over loopback (no root needed): zone answers
//! over UDP and TCP, NXDOMAIN inside the zone, other names and aliases out
//! of the zone forwarded to a fake upstream on 127.0.0.1, zone changes seen
//! by the next query.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use berth_net::cluster_dns::{Rdata, ServerOptions, Zone, ZoneHandle, start};
use berth_net::dns_io::Forwarder;
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};

const UPSTREAM_ANSWER: Ipv4Addr = Ipv4Addr::new(198, 18, 229, 99);

/// A fake upstream: `upstream.test` has an address, other names NXDOMAIN.
fn fake_upstream(stop: Arc<AtomicBool>) -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let addr = sock.local_addr().unwrap();
    std::thread::spawn(move || {
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
                    30,
                    RData::A(A(UPSTREAM_ANSWER)),
                ));
            } else {
                r.metadata.response_code = ResponseCode::NXDomain;
            }
            sock.send_to(&r.to_vec().unwrap(), from).unwrap();
        }
    });
    addr
}

fn query(name: &str) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    m.to_vec().unwrap()
}

fn parse(reply: &[u8]) -> (ResponseCode, Vec<Ipv4Addr>, Vec<u32>) {
    let m = Message::from_vec(reply).unwrap();
    let ips = m
        .answers
        .iter()
        .filter_map(|r| match r.data {
            RData::A(A(ip)) => Some(ip),
            _ => None,
        })
        .collect();
    let ttls = m.answers.iter().map(|r| r.ttl).collect();
    (m.metadata.response_code, ips, ttls)
}

fn udp(server: SocketAddrV4, name: &str) -> (ResponseCode, Vec<Ipv4Addr>, Vec<u32>) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.send_to(&query(name), server).unwrap();
    let mut buf = [0u8; 4096];
    let n = s.recv(&mut buf).unwrap();
    parse(&buf[..n])
}

fn tcp(server: SocketAddrV4, name: &str) -> (ResponseCode, Vec<Ipv4Addr>, Vec<u32>) {
    let mut s = TcpStream::connect(server).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
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

/// A port free on 127.0.0.1 for both UDP and TCP (for a moment).
fn free_port() -> u16 {
    loop {
        let t = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = t.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

#[test]
fn answers_the_zone_and_forwards_the_rest() {
    let stop = Arc::new(AtomicBool::new(false));
    let upstream = fake_upstream(stop.clone());
    let web = Ipv4Addr::new(198, 19, 0, 21);
    let zone = ZoneHandle::new(Zone::from_records(
        "cluster.local",
        [
            ("web.default.svc.cluster.local".to_owned(), Rdata::A(web)),
            (
                "ext.default.svc.cluster.local".to_owned(),
                Rdata::Cname("upstream.test".into()),
            ),
        ],
    ));
    let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, free_port());
    let server = start(
        addr,
        zone.clone(),
        ServerOptions {
            ttl: 5,
            forwarder: Forwarder {
                // the server itself is left out of its upstreams
                upstreams: vec![SocketAddr::V4(addr), upstream],
                timeout: Duration::from_secs(2),
            },
        },
    )
    .unwrap();
    assert_eq!(server.addr(), addr);

    let want = (ResponseCode::NoError, vec![web], vec![5]);
    assert_eq!(udp(addr, "web.default.svc.cluster.local."), want);
    assert_eq!(tcp(addr, "web.default.svc.cluster.local."), want);
    for answer in [
        udp(addr, "nope.default.svc.cluster.local."),
        tcp(addr, "nope.default.svc.cluster.local."),
    ] {
        assert_eq!(answer.0, ResponseCode::NXDomain);
    }
    // outside the zone: the upstream's answer (the same transport as the
    // question: this upstream has no TCP, so that fails)
    let up = (ResponseCode::NoError, vec![UPSTREAM_ANSWER], vec![30]);
    assert_eq!(udp(addr, "upstream.test."), up);
    assert_eq!(tcp(addr, "upstream.test.").0, ResponseCode::ServFail);
    assert_eq!(udp(addr, "missing.test.").0, ResponseCode::NXDomain);
    // an alias out of the zone: the CNAME, then the upstream's address
    let (code, ips, _) = udp(addr, "ext.default.svc.cluster.local.");
    assert_eq!((code, ips), (ResponseCode::NoError, vec![UPSTREAM_ANSWER]));
    // a change is seen by the next query
    zone.set(
        "new.default.svc.cluster.local",
        vec![Rdata::A(Ipv4Addr::new(198, 19, 0, 30))],
    );
    assert_eq!(
        udp(addr, "new.default.svc.cluster.local.").1,
        [Ipv4Addr::new(198, 19, 0, 30)]
    );
    zone.replace(Zone::new("cluster.local"));
    assert_eq!(
        udp(addr, "web.default.svc.cluster.local.").0,
        ResponseCode::NXDomain
    );
    drop(server);
    stop.store(true, Ordering::Relaxed);
}
