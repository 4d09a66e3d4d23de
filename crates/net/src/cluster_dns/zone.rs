//! The cluster zone's records and the answers they give (pure).
//!
//! Names are kept lowercase without the trailing dot; queries match them
//! case-insensitively. Reverse names (`…in-addr.arpa`) live in the same
//! table. Answers, as CoreDNS's `kubernetes` plugin gives them:
//! - a name of the table: authoritative; its records of the asked type
//!   (all for ANY), a CNAME followed inside the table, SRV targets' A
//!   records as additional data; an empty NOERROR (NODATA, with the SOA)
//!   for another type;
//! - a missing name under the zone's domain: NXDOMAIN with the SOA, or
//!   NODATA for a name that has names below it (`default.svc.cluster.local`);
//! - anything else (reverse names not in the table included, CoreDNS's
//!   `fallthrough in-addr.arpa`): forwarded.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::{Arc, RwLock};

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME, PTR, SOA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::dns::Reply;

/// One record's data.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rdata {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// A service location.
    Srv {
        /// Priority (lower first).
        priority: u16,
        /// Relative weight among equal priorities.
        weight: u16,
        /// The port.
        port: u16,
        /// The target host name (no trailing dot).
        target: String,
    },
    /// A reverse pointer to a name (no trailing dot).
    Ptr(String),
    /// An alias for another name (no trailing dot).
    Cname(String),
}

impl Rdata {
    fn record_type(&self) -> RecordType {
        match self {
            Rdata::A(_) => RecordType::A,
            Rdata::Srv { .. } => RecordType::SRV,
            Rdata::Ptr(_) => RecordType::PTR,
            Rdata::Cname(_) => RecordType::CNAME,
        }
    }

    fn to_rdata(&self) -> Option<RData> {
        Some(match self {
            Rdata::A(ip) => RData::A(A(*ip)),
            Rdata::Srv {
                priority,
                weight,
                port,
                target,
            } => RData::SRV(SRV::new(*priority, *weight, *port, fqdn(target)?)),
            Rdata::Ptr(n) => RData::PTR(PTR(fqdn(n)?)),
            Rdata::Cname(n) => RData::CNAME(CNAME(fqdn(n)?)),
        })
    }
}

fn fqdn(name: &str) -> Option<Name> {
    Name::from_ascii(format!("{}.", name.trim_end_matches('.'))).ok()
}

/// Lowercase, without the trailing dot.
fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// A zone's records by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Zone {
    domain: String,
    names: HashMap<String, Vec<Rdata>>,
    /// Names with names below them inside the domain, and how many.
    parents: HashMap<String, usize>,
    serial: u32,
}

impl Zone {
    /// An empty zone for `domain` (`cluster.local`).
    pub fn new(domain: &str) -> Zone {
        Zone {
            domain: key(domain),
            serial: 1,
            ..Zone::default()
        }
    }

    /// A zone for `domain` holding `records`.
    pub fn from_records(domain: &str, records: impl IntoIterator<Item = (String, Rdata)>) -> Zone {
        let mut z = Zone::new(domain);
        for (n, r) in records {
            z.insert(&n, r);
        }
        z
    }

    /// The zone's domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// How many names hold records.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no name holds a record.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The records of `name`.
    pub fn get(&self, name: &str) -> Option<&[Rdata]> {
        self.names.get(&key(name)).map(Vec::as_slice)
    }

    /// Adds one record to `name` (a duplicate is kept once).
    pub fn insert(&mut self, name: &str, r: Rdata) {
        let k = key(name);
        if !self.names.contains_key(&k) {
            self.count_parents(&k, true);
        }
        let list = self.names.entry(k).or_default();
        if !list.contains(&r) {
            list.push(r);
        }
        self.serial = self.serial.wrapping_add(1);
    }

    /// Replaces the records of `name` (none: the name goes).
    pub fn set(&mut self, name: &str, records: Vec<Rdata>) {
        let k = key(name);
        let had = self.names.remove(&k).is_some();
        if had {
            self.count_parents(&k, false);
        }
        if !records.is_empty() {
            self.count_parents(&k, true);
            let mut records = records;
            records.dedup();
            self.names.insert(k, records);
        }
        self.serial = self.serial.wrapping_add(1);
    }

    fn count_parents(&mut self, name: &str, add: bool) {
        let mut rest = name;
        while let Some((_, parent)) = rest.split_once('.') {
            if !self.in_domain(parent) {
                break;
            }
            if add {
                *self.parents.entry(parent.to_owned()).or_default() += 1;
            } else if let Some(n) = self.parents.get_mut(parent) {
                *n -= 1;
                if *n == 0 {
                    self.parents.remove(parent);
                }
            }
            rest = parent;
        }
    }

    fn in_domain(&self, name: &str) -> bool {
        name == self.domain
            || name
                .strip_suffix(self.domain.as_str())
                .is_some_and(|p| p.ends_with('.'))
    }

    /// The records of the whole zone, sorted (for comparisons and logs).
    pub fn records(&self) -> BTreeMap<&str, Vec<&Rdata>> {
        self.names
            .iter()
            .map(|(k, v)| {
                let mut v: Vec<&Rdata> = v.iter().collect();
                v.sort();
                (k.as_str(), v)
            })
            .collect()
    }

    fn soa(&self, ttl: u32) -> Option<Record> {
        let apex = fqdn(&self.domain)?;
        let soa = SOA::new(
            fqdn(&format!("ns.dns.{}", self.domain))?,
            fqdn(&format!("hostmaster.{}", self.domain))?,
            self.serial,
            7200,
            1800,
            86400,
            ttl,
        );
        Some(Record::from_rdata(apex, ttl, RData::SOA(soa)))
    }
}

/// A zone shared between its feeder and the server: swapped as a whole
/// ([`ZoneHandle::replace`]) or changed per name ([`ZoneHandle::set`]);
/// readers see one version or the next, never half of a change.
#[derive(Clone, Debug)]
pub struct ZoneHandle(Arc<RwLock<Arc<Zone>>>);

impl ZoneHandle {
    /// A handle holding `zone`.
    pub fn new(zone: Zone) -> ZoneHandle {
        ZoneHandle(Arc::new(RwLock::new(Arc::new(zone))))
    }

    /// The zone as it is now.
    pub fn snapshot(&self) -> Arc<Zone> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts `zone` in place of the whole zone.
    pub fn replace(&self, zone: Zone) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(zone);
    }

    /// Replaces the records of one name (none: the name goes).
    pub fn set(&self, name: &str, records: Vec<Rdata>) {
        let mut g = self.0.write().unwrap_or_else(|e| e.into_inner());
        Arc::make_mut(&mut g).set(name, records);
    }
}

/// How many CNAMEs an answer follows inside the zone.
const MAX_CHAIN: usize = 8;

/// Answers `query` from `zone` with `ttl` (see the module's rules).
pub fn answer(query: &Message, zone: &Zone, ttl: u32) -> Reply {
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
    let qname = key(&q.name().to_ascii());
    let qtype = q.query_type();
    let mut resp = Message::response(id, OpCode::Query);
    resp.metadata.recursion_desired = query.metadata.recursion_desired;
    resp.metadata.recursion_available = true;
    resp.add_query(q.clone());

    if zone.names.contains_key(&qname) {
        resp.metadata.authoritative = true;
        let mut owner = q.name().clone();
        let mut name = qname;
        for _ in 0..MAX_CHAIN {
            let Some(records) = zone.names.get(&name) else {
                break;
            };
            let wanted: Vec<&Rdata> = records
                .iter()
                .filter(|r| qtype == RecordType::ANY || r.record_type() == qtype)
                .collect();
            if !wanted.is_empty() {
                for r in wanted {
                    if let Some(d) = r.to_rdata() {
                        resp.add_answer(Record::from_rdata(owner.clone(), ttl, d));
                    }
                    if let Rdata::Srv { target, .. } = r {
                        for a in zone.names.get(&key(target)).into_iter().flatten() {
                            if let (Rdata::A(_), Some(t), Some(d)) = (a, fqdn(target), a.to_rdata())
                            {
                                resp.add_additional(Record::from_rdata(t, ttl, d));
                            }
                        }
                    }
                }
                break;
            }
            let Some(c @ Rdata::Cname(target)) =
                records.iter().find(|r| matches!(r, Rdata::Cname(_)))
            else {
                break;
            };
            let (Some(d), Some(t)) = (c.to_rdata(), fqdn(target)) else {
                break;
            };
            resp.add_answer(Record::from_rdata(owner, ttl, d));
            owner = t;
            name = key(target);
        }
        if resp.answers.is_empty()
            && let Some(soa) = zone.soa(ttl)
        {
            resp.add_authority(soa);
        }
        return Reply::Local(resp);
    }
    if zone.in_domain(&qname) {
        resp.metadata.authoritative = true;
        if qname == zone.domain && (qtype == RecordType::SOA || qtype == RecordType::ANY) {
            if let Some(soa) = zone.soa(ttl) {
                resp.add_answer(soa);
            }
            return Reply::Local(resp);
        }
        if qname != zone.domain && !zone.parents.contains_key(&qname) {
            resp.metadata.response_code = ResponseCode::NXDomain;
        }
        if let Some(soa) = zone.soa(ttl) {
            resp.add_authority(soa);
        }
        return Reply::Local(resp);
    }
    Reply::Forward
}

/// The target of the last CNAME of `reply` when nothing answers the
/// question after it (an alias out of the zone: the server asks the
/// upstreams for it, as CoreDNS does for ExternalName Services).
pub fn dangling_cname(reply: &Message) -> Option<Name> {
    let q = reply.queries.first()?;
    if q.query_type() == RecordType::CNAME {
        return None;
    }
    let last = reply.answers.last()?;
    match &last.data {
        RData::CNAME(CNAME(target)) => Some(target.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;

    fn ask(name: &str, t: RecordType) -> Message {
        let mut m = Message::query();
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        m
    }

    fn local(r: Reply) -> Message {
        match r {
            Reply::Local(m) => m,
            Reply::Forward => panic!("forwarded"),
        }
    }

    fn zone() -> Zone {
        let ip = |s: &str| Rdata::A(s.parse().unwrap());
        Zone::from_records(
            "cluster.local",
            [
                ("web.default.svc.cluster.local".into(), ip("198.19.0.21")),
                (
                    "_http._tcp.web.default.svc.cluster.local".into(),
                    Rdata::Srv {
                        priority: 0,
                        weight: 100,
                        port: 80,
                        target: "web.default.svc.cluster.local".into(),
                    },
                ),
                (
                    "21.0.19.198.in-addr.arpa".into(),
                    Rdata::Ptr("web.default.svc.cluster.local".into()),
                ),
                (
                    "ext.default.svc.cluster.local".into(),
                    Rdata::Cname("example.org".into()),
                ),
                (
                    "alias.default.svc.cluster.local".into(),
                    Rdata::Cname("web.default.svc.cluster.local".into()),
                ),
            ],
        )
    }

    #[test]
    fn a_records_case_insensitive_with_the_default_ttl() {
        for name in [
            "web.default.svc.cluster.local.",
            "WEB.Default.svc.cluster.local",
        ] {
            let m = local(answer(&ask(name, RecordType::A), &zone(), 5));
            assert!(m.metadata.authoritative);
            assert_eq!(m.metadata.response_code, ResponseCode::NoError);
            assert_eq!(m.answers.len(), 1, "{name}");
            assert_eq!(m.answers[0].ttl, 5);
            assert_eq!(
                m.answers[0].data,
                RData::A(A(Ipv4Addr::new(198, 19, 0, 21)))
            );
            // the answer's owner is the name as asked
            assert_eq!(
                m.answers[0].name.to_ascii().trim_end_matches('.'),
                name.trim_end_matches('.')
            );
        }
    }

    #[test]
    fn srv_with_additional_addresses() {
        let m = local(answer(
            &ask("_http._tcp.web.default.svc.cluster.local.", RecordType::SRV),
            &zone(),
            5,
        ));
        let RData::SRV(srv) = &m.answers[0].data else {
            panic!("{m:?}");
        };
        assert_eq!(
            (srv.priority, srv.weight, srv.port),
            (0, 100, 80),
            "{srv:?}"
        );
        assert_eq!(srv.target.to_ascii(), "web.default.svc.cluster.local.");
        assert_eq!(m.additionals.len(), 1);
        assert_eq!(
            m.additionals[0].data,
            RData::A(A(Ipv4Addr::new(198, 19, 0, 21)))
        );
    }

    #[test]
    fn nodata_nxdomain_and_empty_parents() {
        let z = zone();
        // an existing name, another type: NOERROR, no answer, the SOA
        let m = local(answer(
            &ask("web.default.svc.cluster.local.", RecordType::AAAA),
            &z,
            5,
        ));
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty());
        assert!(matches!(m.authorities[0].data, RData::SOA(_)));
        // a missing name in the zone
        let m = local(answer(
            &ask("nope.default.svc.cluster.local.", RecordType::A),
            &z,
            5,
        ));
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        assert!(m.metadata.authoritative);
        let RData::SOA(soa) = &m.authorities[0].data else {
            panic!("{m:?}");
        };
        assert_eq!(soa.mname.to_ascii(), "ns.dns.cluster.local.");
        assert_eq!(soa.minimum, 5);
        // names with names below: NODATA
        for n in [
            "default.svc.cluster.local.",
            "svc.cluster.local.",
            "cluster.local.",
        ] {
            let m = local(answer(&ask(n, RecordType::A), &z, 5));
            assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{n}");
            assert!(m.answers.is_empty());
        }
        let m = local(answer(&ask("cluster.local.", RecordType::SOA), &z, 5));
        assert!(matches!(m.answers[0].data, RData::SOA(_)));
        let m = local(answer(
            &ask("other.svc.cluster.local.", RecordType::A),
            &z,
            5,
        ));
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    }

    #[test]
    fn reverse_and_outside_names() {
        let z = zone();
        let m = local(answer(
            &ask("21.0.19.198.in-addr.arpa.", RecordType::PTR),
            &z,
            5,
        ));
        assert_eq!(
            m.answers[0].data,
            RData::PTR(PTR(
                Name::from_ascii("web.default.svc.cluster.local.").unwrap()
            ))
        );
        // reverse names not in the table and other zones go upstream
        for (n, t) in [
            ("9.9.18.198.in-addr.arpa.", RecordType::PTR),
            ("example.org.", RecordType::A),
            ("cluster.local.example.org.", RecordType::A),
        ] {
            assert!(matches!(answer(&ask(n, t), &z, 5), Reply::Forward), "{n}");
        }
    }

    #[test]
    fn cnames_followed_inside_the_zone_or_left_dangling() {
        let z = zone();
        let m = local(answer(
            &ask("alias.default.svc.cluster.local.", RecordType::A),
            &z,
            5,
        ));
        assert_eq!(m.answers.len(), 2, "{m:?}");
        assert!(matches!(m.answers[0].data, RData::CNAME(_)));
        assert_eq!(
            m.answers[1].name.to_ascii(),
            "web.default.svc.cluster.local."
        );
        assert_eq!(dangling_cname(&m), None);
        let m = local(answer(
            &ask("ext.default.svc.cluster.local.", RecordType::A),
            &z,
            5,
        ));
        assert_eq!(m.answers.len(), 1);
        assert_eq!(dangling_cname(&m).unwrap().to_ascii(), "example.org.");
        // asked for the CNAME itself
        let m = local(answer(
            &ask("ext.default.svc.cluster.local.", RecordType::CNAME),
            &z,
            5,
        ));
        assert_eq!(m.answers.len(), 1);
        assert_eq!(dangling_cname(&m), None);
    }

    #[test]
    fn per_name_changes_and_whole_swaps() {
        let h = ZoneHandle::new(zone());
        let before = h.snapshot();
        h.set(
            "new.default.svc.cluster.local",
            vec![Rdata::A(Ipv4Addr::new(198, 19, 0, 30))],
        );
        assert!(before.get("new.default.svc.cluster.local").is_none());
        assert!(h.snapshot().get("NEW.default.svc.cluster.local.").is_some());
        h.set("web.default.svc.cluster.local", vec![]);
        h.set("_http._tcp.web.default.svc.cluster.local", vec![]);
        h.set("alias.default.svc.cluster.local", vec![]);
        h.set("ext.default.svc.cluster.local", vec![]);
        h.set("new.default.svc.cluster.local", vec![]);
        // no name left below default.svc: NXDOMAIN again
        let m = local(answer(
            &ask("default.svc.cluster.local.", RecordType::A),
            &h.snapshot(),
            5,
        ));
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        h.replace(Zone::new("cluster.local"));
        assert!(h.snapshot().is_empty());
    }
}
