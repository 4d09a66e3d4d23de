//! The few nf_tables netlink messages the per-container path needs, sent
//! in-process instead of running `nft`: read a table's comment, and replace
//! the rules of one chain with DNAT rules in one atomic batch.
//!
//! The service proxy's changes are sent the same way ([`services`]).
//!
//! Everything else (creating and replacing the whole table) still goes
//! through `nft -f` ([`crate::nft`]); that happens when networks change, not
//! per container. Running `nft` costs 4 ms for the process alone and ~20 ms
//! for a table replace (its base chains' hooks are unregistered and
//! registered again); the messages here cost a fraction of a millisecond.
//!
//! The encoding follows `<linux/netfilter/nf_tables.h>` and is the one `nft`
//! itself sends for `[ip daddr A] tcp|udp dport P dnat to B:Q comment "C"`
//! (seen with `nft --debug=netlink`), so `nft list` shows the rules exactly
//! as if `nft` had added them.

use std::io;
use std::time::Duration;

use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};

use crate::ports::Proto;
use crate::rules::Dnat;

pub mod services;

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_GETTABLE: u16 = 1;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_DELRULE: u16 = 8;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_APPEND: u16 = 0x800;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 2;
const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;

const NFPROTO_UNSPEC: u8 = 0;
const NFPROTO_IPV4: u8 = 2;

const NFTA_TABLE_NAME: u16 = 1;
const NFTA_TABLE_USERDATA: u16 = 6;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_RULE_USERDATA: u16 = 7;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;

/// `NFTNL_UDATA_TABLE_COMMENT` and `NFTNL_UDATA_RULE_COMMENT`: the
/// userdata TLV `nft` reads a comment from.
const UDATA_COMMENT: u8 = 0;

/// The 16-byte registers `nft` uses for these rules (`NFT_REG_1`, `_2`).
const REG_1: u32 = 1;
const REG_2: u32 = 2;

/// A netfilter netlink socket in the calling thread's network namespace.
pub struct NfTables {
    sock: Socket,
    seq: u32,
}

/// A netlink message under construction: header, `nfgenmsg`, attributes.
struct Msg {
    buf: Vec<u8>,
    start: usize,
}

impl Msg {
    fn begin(buf: Vec<u8>, ty: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> Msg {
        let mut m = Msg {
            start: buf.len(),
            buf,
        };
        m.buf.extend_from_slice(&0u32.to_ne_bytes()); // length, patched in end()
        m.buf.extend_from_slice(&ty.to_ne_bytes());
        m.buf
            .extend_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
        m.buf.extend_from_slice(&seq.to_ne_bytes());
        m.buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
        m.buf.push(family);
        m.buf.push(0); // NFNETLINK_V0
        m.buf.extend_from_slice(&res_id.to_be_bytes());
        m
    }

    fn end(mut self) -> Vec<u8> {
        let len = (self.buf.len() - self.start) as u32;
        self.buf[self.start..self.start + 4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }

    fn attr(&mut self, ty: u16, data: &[u8]) {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !(self.buf.len() - self.start).is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    fn str(&mut self, ty: u16, s: &str) {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.attr(ty, &v);
    }

    fn u32(&mut self, ty: u16, v: u32) {
        self.attr(ty, &v.to_be_bytes());
    }

    /// A nested attribute filled by `f`.
    fn nest(&mut self, ty: u16, f: impl FnOnce(&mut Msg)) {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        f(self);
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// One expression of a rule: `NFTA_LIST_ELEM { NAME, DATA { f } }`.
    fn expr(&mut self, name: &str, f: impl FnOnce(&mut Msg)) {
        self.nest(NFTA_LIST_ELEM, |m| {
            m.str(NFTA_EXPR_NAME, name);
            m.nest(NFTA_EXPR_DATA, f);
        });
    }

    /// `[ cmp eq reg 1 <value> ]`.
    fn cmp_eq(&mut self, value: &[u8]) {
        self.expr("cmp", |m| {
            m.u32(1, REG_1); // NFTA_CMP_SREG
            m.u32(2, 0); // NFTA_CMP_OP: NFT_CMP_EQ
            m.nest(3, |m| m.attr(NFTA_DATA_VALUE, value)); // NFTA_CMP_DATA
        });
    }

    /// `[ payload load <len>b @ <base> header + <offset> => reg 1 ]`.
    fn payload(&mut self, base: u32, offset: u32, len: u32) {
        self.expr("payload", |m| {
            m.u32(1, REG_1); // NFTA_PAYLOAD_DREG
            m.u32(2, base); // NFTA_PAYLOAD_BASE
            m.u32(3, offset); // NFTA_PAYLOAD_OFFSET
            m.u32(4, len); // NFTA_PAYLOAD_LEN
        });
    }

    /// `[ immediate reg <reg> <value> ]`.
    fn immediate(&mut self, reg: u32, value: &[u8]) {
        self.expr("immediate", |m| {
            m.u32(1, reg); // NFTA_IMMEDIATE_DREG
            m.nest(2, |m| m.attr(NFTA_DATA_VALUE, value)); // NFTA_IMMEDIATE_DATA
        });
    }

    /// A userdata blob holding one comment TLV (at most 254 bytes, as a
    /// TLV's length is one byte).
    fn comment(&mut self, ty: u16, comment: &str) {
        let text = &comment.as_bytes()[..comment.len().min(254)];
        let mut v = vec![UDATA_COMMENT, (text.len() + 1) as u8];
        v.extend_from_slice(text);
        v.push(0);
        self.attr(ty, &v);
    }
}

const PAYLOAD_NETWORK_HEADER: u32 = 1;
const PAYLOAD_TRANSPORT_HEADER: u32 = 2;

/// Appends the expressions of one DNAT rule (`nft`'s own linearisation).
fn dnat_exprs(m: &mut Msg, r: &Dnat) {
    if let Some(ip) = r.host_ip {
        m.payload(PAYLOAD_NETWORK_HEADER, 16, 4); // ip daddr
        m.cmp_eq(&ip.octets());
    }
    m.expr("meta", |m| {
        m.u32(1, REG_1); // NFTA_META_DREG
        m.u32(2, 16); // NFTA_META_KEY: NFT_META_L4PROTO
    });
    m.cmp_eq(&[match r.proto {
        Proto::Tcp => libc::IPPROTO_TCP as u8,
        Proto::Udp => libc::IPPROTO_UDP as u8,
    }]);
    m.payload(PAYLOAD_TRANSPORT_HEADER, 2, 2); // th dport
    m.cmp_eq(&r.host_port.to_be_bytes());
    m.immediate(REG_1, &r.to.octets());
    m.immediate(REG_2, &r.to_port.to_be_bytes());
    m.expr("nat", |m| {
        m.u32(1, 1); // NFTA_NAT_TYPE: NFT_NAT_DNAT
        m.u32(2, u32::from(NFPROTO_IPV4)); // NFTA_NAT_FAMILY
        m.u32(3, REG_1); // NFTA_NAT_REG_ADDR_MIN
        m.u32(5, REG_2); // NFTA_NAT_REG_PROTO_MIN
        m.u32(7, 0x2); // NFTA_NAT_FLAGS: NF_NAT_RANGE_PROTO_SPECIFIED
    });
}

/// The batch that flushes `table`/`chain` and appends `rules`, each
/// message but the batch's begin and end asking for an acknowledgement.
/// Returns the bytes and how many acknowledgements to expect.
fn replace_batch(seq: u32, table: &str, chain: &str, rules: &[Dnat]) -> (Vec<u8>, usize) {
    let mut buf = Msg::begin(
        Vec::new(),
        NFNL_MSG_BATCH_BEGIN,
        0,
        seq,
        NFPROTO_UNSPEC,
        NFNL_SUBSYS_NFTABLES,
    )
    .end();
    let nft = |msg: u16| (NFNL_SUBSYS_NFTABLES << 8) | msg;
    let mut m = Msg::begin(
        buf,
        nft(NFT_MSG_DELRULE),
        NLM_F_ACK,
        seq + 1,
        NFPROTO_IPV4,
        0,
    );
    m.str(NFTA_RULE_TABLE, table);
    m.str(NFTA_RULE_CHAIN, chain);
    buf = m.end();
    for (i, r) in rules.iter().enumerate() {
        let flags = NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND;
        let mut m = Msg::begin(
            buf,
            nft(NFT_MSG_NEWRULE),
            flags,
            seq + 2 + i as u32,
            NFPROTO_IPV4,
            0,
        );
        m.str(NFTA_RULE_TABLE, table);
        m.str(NFTA_RULE_CHAIN, chain);
        m.nest(NFTA_RULE_EXPRESSIONS, |m| dnat_exprs(m, r));
        if !r.comment.is_empty() {
            m.comment(NFTA_RULE_USERDATA, &r.comment);
        }
        buf = m.end();
    }
    let end_seq = seq + 2 + rules.len() as u32;
    let buf = Msg::begin(
        buf,
        NFNL_MSG_BATCH_END,
        0,
        end_seq,
        NFPROTO_UNSPEC,
        NFNL_SUBSYS_NFTABLES,
    )
    .end();
    (buf, 1 + rules.len())
}

/// One message of a reply: its type, sequence number and payload.
struct Reply<'a> {
    ty: u16,
    seq: u32,
    payload: &'a [u8],
}

fn parse_replies(mut data: &[u8]) -> io::Result<Vec<Reply<'_>>> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed netlink reply");
    let mut out = Vec::new();
    while data.len() >= 16 {
        let len = u32::from_ne_bytes(data[0..4].try_into().expect("4 bytes")) as usize;
        if len < 16 || len > data.len() {
            return Err(bad());
        }
        out.push(Reply {
            ty: u16::from_ne_bytes(data[4..6].try_into().expect("2 bytes")),
            seq: u32::from_ne_bytes(data[8..12].try_into().expect("4 bytes")),
            payload: &data[16..len],
        });
        data = &data[((len + 3) & !3).min(data.len())..];
    }
    Ok(out)
}

/// The errno of an `NLMSG_ERROR` payload (0 is an acknowledgement).
fn error_code(payload: &[u8]) -> io::Result<i32> {
    payload
        .get(0..4)
        .map(|b| i32::from_ne_bytes(b.try_into().expect("4 bytes")))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "short netlink error"))
}

/// The attributes of a netlink payload: (type, value).
fn attrs(mut data: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while data.len() >= 4 {
        let len = u16::from_ne_bytes([data[0], data[1]]) as usize;
        let ty = u16::from_ne_bytes([data[2], data[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > data.len() {
            break;
        }
        out.push((ty, &data[4..len]));
        data = &data[((len + 3) & !3).min(data.len())..];
    }
    out
}

/// The comment in a userdata blob (TLVs of type, length, value).
fn udata_comment(mut data: &[u8]) -> Option<String> {
    while data.len() >= 2 {
        let (ty, len) = (data[0], data[1] as usize);
        let value = data.get(2..2 + len)?;
        if ty == UDATA_COMMENT {
            let s = value.strip_suffix(&[0]).unwrap_or(value);
            return Some(String::from_utf8_lossy(s).into_owned());
        }
        data = &data[2 + len..];
    }
    None
}

impl NfTables {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> io::Result<NfTables> {
        let mut sock = Socket::new(NETLINK_NETFILTER)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        // The kernel answers a request while it is being sent; a missing
        // answer must not hang the caller.
        rustix::net::sockopt::set_socket_timeout(
            &sock,
            rustix::net::sockopt::Timeout::Recv,
            Some(Duration::from_secs(5)),
        )?;
        Ok(NfTables { sock, seq: 0 })
    }

    fn next_seq(&mut self, n: u32) -> u32 {
        let seq = self.seq.wrapping_add(1);
        self.seq = seq.wrapping_add(n);
        seq
    }

    /// Sends `buf` and reads the replies to messages `seqs`: until `acks`
    /// of them are acknowledged, then whatever else is queued (the kernel
    /// answers while the request is being sent). The first error is
    /// returned; otherwise the payloads of the replies that are not
    /// acknowledgements.
    fn talk(
        &mut self,
        buf: &[u8],
        seqs: std::ops::Range<u32>,
        acks: usize,
    ) -> io::Result<Vec<(u16, Vec<u8>)>> {
        self.sock.send(buf, 0)?;
        let mut answered = 0;
        let mut out = Vec::new();
        loop {
            let mut data = Vec::with_capacity(64 * 1024);
            let flags = if answered < acks {
                0
            } else {
                libc::MSG_DONTWAIT
            };
            match self.sock.recv(&mut data, flags) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && answered >= acks => {
                    return Ok(out);
                }
                Err(e) => return Err(e),
            }
            for r in parse_replies(&data)? {
                if !seqs.contains(&r.seq) {
                    continue;
                }
                if r.ty == NLMSG_ERROR {
                    match error_code(r.payload)? {
                        0 => answered += 1,
                        code => return Err(io::Error::from_raw_os_error(-code)),
                    }
                } else {
                    out.push((r.ty, r.payload.to_vec()));
                }
            }
        }
    }

    /// The comment of table `ip <table>`; `Ok(None)` when the table does not
    /// exist, `Ok(Some(""))` when it has no comment.
    pub fn table_comment(&mut self, table: &str) -> io::Result<Option<String>> {
        let seq = self.next_seq(0);
        let mut m = Msg::begin(
            Vec::new(),
            (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE,
            NLM_F_ACK,
            seq,
            NFPROTO_IPV4,
            0,
        );
        m.str(NFTA_TABLE_NAME, table);
        let replies = match self.talk(&m.end(), seq..seq + 1, 1) {
            Ok(r) => r,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some((_, payload)) = replies.first() else {
            return Ok(None);
        };
        // the nfgenmsg, then the table's attributes
        let comment = attrs(payload.get(4..).unwrap_or_default())
            .into_iter()
            .find(|(ty, _)| *ty == NFTA_TABLE_USERDATA)
            .and_then(|(_, v)| udata_comment(v));
        Ok(Some(comment.unwrap_or_default()))
    }

    /// Sends `batch` ([`services::encode`]) as one transaction: every
    /// message applies, or none.
    pub fn send_batch(&mut self, batch: services::Batch) -> io::Result<()> {
        let services::Batch { mut buf, messages } = batch;
        let base = self.next_seq(messages.saturating_sub(1));
        // the batch was numbered from 0: move it past this socket's last
        let mut at = 0;
        while at + 16 <= buf.len() {
            let len = u32::from_ne_bytes(buf[at..at + 4].try_into().expect("4 bytes")) as usize;
            let seq = u32::from_ne_bytes(buf[at + 8..at + 12].try_into().expect("4 bytes"));
            buf[at + 8..at + 12].copy_from_slice(&base.wrapping_add(seq).to_ne_bytes());
            at += len.max(16);
        }
        // the whole batch goes in one message, and the kernel queues an
        // acknowledgement per message before this reads the first
        let room = buf.len() + 64 * 1024;
        if rustix::net::sockopt::socket_send_buffer_size(&self.sock)? < room {
            rustix::net::sockopt::set_socket_send_buffer_size_force(&self.sock, room)?;
        }
        let acks = messages.saturating_sub(2) as usize;
        let ack_room = acks * 2048 + 64 * 1024;
        if rustix::net::sockopt::socket_recv_buffer_size(&self.sock)? < ack_room {
            rustix::net::sockopt::set_socket_recv_buffer_size_force(&self.sock, ack_room)?;
        }
        self.talk(&buf, base..base.wrapping_add(messages), acks)
            .map(drop)
    }

    /// Replaces every rule of chain `chain` in table `ip <table>` with
    /// `rules`, atomically (one transaction: the kernel never shows the
    /// chain half-filled).
    pub fn replace_rules(&mut self, table: &str, chain: &str, rules: &[Dnat]) -> io::Result<()> {
        let seq = self.next_seq(rules.len() as u32 + 2);
        let (buf, acks) = replace_batch(seq, table, chain, rules);
        self.talk(&buf, seq..seq + rules.len() as u32 + 3, acks)
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dnat(host_ip: Option<&str>, proto: Proto, hp: u16, to: &str, cp: u16) -> Dnat {
        Dnat {
            host_ip: host_ip.map(|s| s.parse().unwrap()),
            proto,
            host_port: hp,
            to: to.parse::<std::net::Ipv4Addr>().unwrap(),
            to_port: cp,
            comment: "c0ffeec0ffee".into(),
        }
    }

    #[test]
    fn batch_layout() {
        let rules = [
            dnat(None, Proto::Tcp, 8080, "198.18.240.2", 80),
            dnat(Some("127.0.0.1"), Proto::Udp, 5353, "198.18.240.2", 53),
        ];
        let (buf, acks) = replace_batch(7, "tbl", "published", &rules);
        assert_eq!(acks, 3);
        let msgs = parse_replies(&buf).unwrap();
        let kinds: Vec<(u16, u32)> = msgs.iter().map(|m| (m.ty, m.seq)).collect();
        assert_eq!(
            kinds,
            [
                (0x10, 7),
                (0x0a08, 8),
                (0x0a06, 9),
                (0x0a06, 10),
                (0x11, 11)
            ]
        );
        // The batch begin names the nf_tables subsystem (big endian).
        assert_eq!(msgs[0].payload, [0, 0, 0, 10]);
        // The flush names only the table and the chain.
        let flush = attrs(&msgs[1].payload[4..]);
        assert_eq!(flush, [(1, &b"tbl\0"[..]), (2, &b"published\0"[..])]);
        // A rule: table, chain, expressions, the comment as nft writes it.
        let rule = attrs(&msgs[3].payload[4..]);
        assert_eq!(rule.len(), 4);
        assert_eq!(rule[3], (7, &b"\x00\x0dc0ffeec0ffee\x00"[..]));
        let names: Vec<String> = attrs(rule[2].1)
            .iter()
            .map(|(_, e)| String::from_utf8_lossy(attrs(e)[0].1).into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "payload\0",
                "cmp\0",
                "meta\0",
                "cmp\0",
                "payload\0",
                "cmp\0",
                "immediate\0",
                "immediate\0",
                "nat\0"
            ]
        );
        // Every message's length is a multiple of four (attributes padded).
        assert!(msgs.iter().all(|m| m.payload.len() % 4 == 0));
    }

    #[test]
    fn userdata_comments() {
        assert_eq!(udata_comment(b"\x00\x04abc\x00").as_deref(), Some("abc"));
        assert_eq!(
            udata_comment(b"\x01\x01x\x00\x03ab\x00").as_deref(),
            Some("ab")
        );
        assert_eq!(udata_comment(b"\x00\x09short"), None);
        assert_eq!(udata_comment(b""), None);
    }
}
