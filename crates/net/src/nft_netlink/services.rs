//! The service proxy's changes ([`crate::services::Op`]) as one nf_tables
//! netlink batch, sent in-process: no `nft` process, and none of the cache
//! `nft` fills before every transaction (it lists every chain of the table
//! — 11,000 with 1,000 Services × 10 endpoints — to resolve the chains a
//! change names). The cost of a change follows the change.
//!
//! Each message is what `nft` 1.0.6 itself sends for the same command
//! (read with `nft --debug=netlink,mnl`), so `nft list` shows the table
//! exactly as if `nft` had written it; the net tests compare the two.
//! Session affinity's sets and rules are not encoded here: a change that
//! has them goes through `nft` ([`encode`] answers `None`).

use std::net::Ipv4Addr;

use super::{
    Msg, NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END, NFNL_SUBSYS_NFTABLES, NFPROTO_IPV4,
    NFPROTO_UNSPEC, NFT_MSG_NEWRULE, NFTA_DATA_VALUE, NFTA_RULE_CHAIN, NFTA_RULE_EXPRESSIONS,
    NFTA_RULE_TABLE, NFTA_RULE_USERDATA, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE,
    PAYLOAD_NETWORK_HEADER, REG_1, REG_2,
};
use crate::ports::Proto;
use crate::services::ops::{Key, Op, Rule, Verdict, comment_text};

const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_DELCHAIN: u16 = 5;
const NFT_MSG_NEWSET: u16 = 9;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;

const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;

const NFTA_SET_TABLE: u16 = 1;
const NFTA_SET_NAME: u16 = 2;
const NFTA_SET_FLAGS: u16 = 3;
const NFTA_SET_KEY_TYPE: u16 = 4;
const NFTA_SET_KEY_LEN: u16 = 5;
const NFTA_SET_DATA_TYPE: u16 = 6;
const NFTA_SET_DATA_LEN: u16 = 7;
const NFTA_SET_DESC: u16 = 9;
const NFTA_SET_ID: u16 = 10;
const NFTA_SET_USERDATA: u16 = 13;
const NFTA_SET_DESC_SIZE: u16 = 1;

const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_SET_ELEM_LIST_SET_ID: u16 = 4;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_LIST_ELEM: u16 = 1;

const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;
const NFT_JUMP: i32 = -3;
const NFT_GOTO: i32 = -4;
/// `NFT_REG_VERDICT`.
const REG_VERDICT: u32 = 0;

const NFT_CMP_EQ: u32 = 0;
const NFT_CMP_NEQ: u32 = 1;

/// `NFT_SET_ANONYMOUS | NFT_SET_CONSTANT | NFT_SET_MAP`.
const ANON_MAP_FLAGS: u32 = 0x1 | 0x2 | 0x8;
/// nft's `integer` datatype (a `numgen` value).
const TYPE_INTEGER: u32 = 4;
/// `NFT_DATA_VERDICT`.
const DATA_VERDICT: u32 = 0xffff_ff00;
/// `NFT_NG_RANDOM`.
const NUMGEN_RANDOM: u32 = 1;

/// More messages than this go through `nft` instead: the kernel queues an
/// acknowledgement per message before the first is read.
const MAX_MESSAGES: usize = 1000;

/// A batch ready to send: messages with sequence numbers from 0, which
/// [`super::NfTables::send_batch`] moves past its own.
#[derive(Debug)]
pub struct Batch {
    pub(super) buf: Vec<u8>,
    /// Messages, the batch's begin and end included.
    pub(super) messages: u32,
}

/// The batch for `ops` on table `ip <table>`, or `None` when one of them
/// has no encoding here (session affinity, an unusual address range) or
/// there are too many.
pub fn encode(table: &str, ops: &[Op]) -> Option<Batch> {
    let mut b = Builder {
        buf: Vec::new(),
        seq: 0,
        set_id: 0,
        table,
    };
    b.begin_batch();
    for op in ops {
        match op {
            Op::AddChain(c) => b.chain(NFT_MSG_NEWCHAIN, NLM_F_CREATE, c),
            Op::DelChain(c) => b.chain(NFT_MSG_DELCHAIN, 0, c),
            Op::AddRule { chain, rule } => b.rule(chain, rule)?,
            Op::AddElem { map, key, verdict } => {
                b.element(NFT_MSG_NEWSETELEM, map, key, Some(verdict))
            }
            Op::DelElem { map, key } => b.element(NFT_MSG_DELSETELEM, map, key, None),
            Op::AddSet { .. } | Op::DelSet(_) => return None,
        }
        if b.seq as usize > MAX_MESSAGES {
            return None;
        }
    }
    b.end_batch();
    Some(Batch {
        buf: b.buf,
        messages: b.seq,
    })
}

struct Builder<'a> {
    buf: Vec<u8>,
    /// The next message's sequence number.
    seq: u32,
    /// The last anonymous set's id in this batch.
    set_id: u32,
    table: &'a str,
}

fn nft(msg: u16) -> u16 {
    (NFNL_SUBSYS_NFTABLES << 8) | msg
}

impl Builder<'_> {
    /// Starts a message of the table's family asking for an acknowledgement.
    fn msg(&mut self, ty: u16, flags: u16) -> Msg {
        let seq = self.seq;
        self.seq += 1;
        Msg::begin(
            std::mem::take(&mut self.buf),
            nft(ty),
            NLM_F_ACK | flags,
            seq,
            NFPROTO_IPV4,
            0,
        )
    }

    fn done(&mut self, m: Msg) {
        self.buf = m.end();
    }

    fn begin_batch(&mut self) {
        let m = Msg::begin(
            std::mem::take(&mut self.buf),
            NFNL_MSG_BATCH_BEGIN,
            0,
            self.seq,
            NFPROTO_UNSPEC,
            NFNL_SUBSYS_NFTABLES,
        );
        self.seq += 1;
        self.done(m);
    }

    fn end_batch(&mut self) {
        let m = Msg::begin(
            std::mem::take(&mut self.buf),
            NFNL_MSG_BATCH_END,
            0,
            self.seq,
            NFPROTO_UNSPEC,
            NFNL_SUBSYS_NFTABLES,
        );
        self.seq += 1;
        self.done(m);
    }

    fn chain(&mut self, ty: u16, flags: u16, chain: &str) {
        let mut m = self.msg(ty, flags);
        m.str(NFTA_CHAIN_TABLE, self.table);
        m.str(NFTA_CHAIN_NAME, chain);
        self.done(m);
    }

    fn element(&mut self, ty: u16, map: &str, key: &Key, verdict: Option<&Verdict>) {
        let flags = if verdict.is_some() { NLM_F_CREATE } else { 0 };
        let mut m = self.msg(ty, flags);
        m.str(NFTA_SET_ELEM_LIST_TABLE, self.table);
        m.str(NFTA_SET_ELEM_LIST_SET, map);
        m.nest(NFTA_SET_ELEM_LIST_ELEMENTS, |m| {
            m.nest(NFTA_LIST_ELEM, |m| {
                m.nest(NFTA_SET_ELEM_KEY, |m| {
                    m.attr(NFTA_DATA_VALUE, &key_bytes(key))
                });
                if let Some(v) = verdict {
                    m.nest(NFTA_SET_ELEM_DATA, |m| verdict_data(m, v));
                }
            });
        });
        self.done(m);
    }

    /// The anonymous map `numgen` looks its index up in, with its
    /// elements; returns the map's id in this batch.
    fn spread_map(&mut self, chains: &[String]) -> u32 {
        self.set_id += 1;
        let id = self.set_id;
        let mut m = self.msg(NFT_MSG_NEWSET, NLM_F_CREATE);
        m.str(NFTA_SET_TABLE, self.table);
        m.str(NFTA_SET_NAME, "__map%d");
        m.u32(NFTA_SET_FLAGS, ANON_MAP_FLAGS);
        m.u32(NFTA_SET_KEY_TYPE, TYPE_INTEGER);
        m.u32(NFTA_SET_KEY_LEN, 4);
        m.u32(NFTA_SET_DATA_TYPE, DATA_VERDICT);
        m.u32(NFTA_SET_DATA_LEN, 0);
        m.u32(NFTA_SET_ID, id);
        m.nest(NFTA_SET_DESC, |m| {
            m.u32(NFTA_SET_DESC_SIZE, chains.len() as u32)
        });
        m.attr(NFTA_SET_USERDATA, &numgen_map_udata());
        self.done(m);
        let mut m = self.msg(NFT_MSG_NEWSETELEM, NLM_F_CREATE);
        m.str(NFTA_SET_ELEM_LIST_TABLE, self.table);
        m.str(NFTA_SET_ELEM_LIST_SET, "__map%d");
        m.u32(NFTA_SET_ELEM_LIST_SET_ID, id);
        m.nest(NFTA_SET_ELEM_LIST_ELEMENTS, |m| {
            for (i, c) in chains.iter().enumerate() {
                m.nest(NFTA_LIST_ELEM, |m| {
                    // numgen's value is in host byte order
                    m.nest(NFTA_SET_ELEM_KEY, |m| {
                        m.attr(NFTA_DATA_VALUE, &(i as u32).to_ne_bytes())
                    });
                    m.nest(NFTA_SET_ELEM_DATA, |m| {
                        verdict_data(m, &Verdict::Goto(c.clone()))
                    });
                });
            }
        });
        self.done(m);
        id
    }

    fn rule(&mut self, chain: &str, rule: &Rule) -> Option<()> {
        // checked before any message is written
        let outside = match rule {
            Rule::FromOutside(cidr, _) => Some(parse_cidr(cidr)?),
            Rule::FromSet(..) | Rule::Remember(_) => return None,
            _ => None,
        };
        let map = match rule {
            Rule::Spread { chains, .. } if !chains.is_empty() => Some(self.spread_map(chains)),
            Rule::Spread { .. } => return None,
            _ => None,
        };
        let mut m = self.msg(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND);
        m.str(NFTA_RULE_TABLE, self.table);
        m.str(NFTA_RULE_CHAIN, chain);
        let mut comment = None;
        m.nest(NFTA_RULE_EXPRESSIONS, |m| match rule {
            Rule::FromAddr(ip, v) => {
                m.payload(PAYLOAD_NETWORK_HEADER, 12, 4); // ip saddr
                cmp(m, NFT_CMP_EQ, &ip.octets());
                verdict_immediate(m, v);
            }
            Rule::FromOutside(_, v) => {
                let (net, prefix) = outside.expect("parsed above");
                let bytes = net.octets();
                if prefix % 8 == 0 {
                    // nft compares only the whole bytes of the prefix
                    let n = (prefix / 8) as usize;
                    m.payload(PAYLOAD_NETWORK_HEADER, 12, n as u32);
                    cmp(m, NFT_CMP_NEQ, &bytes[..n]);
                } else {
                    let mask = (u32::MAX << (32 - prefix)).to_be_bytes();
                    m.payload(PAYLOAD_NETWORK_HEADER, 12, 4);
                    bitwise(m, &mask);
                    cmp(m, NFT_CMP_NEQ, &bytes);
                }
                verdict_immediate(m, v);
            }
            Rule::Dnat {
                proto,
                to,
                port,
                comment: c,
            } => {
                m.expr("meta", |m| {
                    m.u32(1, REG_1); // NFTA_META_DREG
                    m.u32(2, 16); // NFTA_META_KEY: NFT_META_L4PROTO
                });
                cmp(m, NFT_CMP_EQ, &[proto_number(*proto)]);
                m.immediate(REG_1, &to.octets());
                m.immediate(REG_2, &port.to_be_bytes());
                m.expr("nat", |m| {
                    m.u32(1, 1); // NFTA_NAT_TYPE: NFT_NAT_DNAT
                    m.u32(2, u32::from(NFPROTO_IPV4)); // NFTA_NAT_FAMILY
                    m.u32(3, REG_1); // NFTA_NAT_REG_ADDR_MIN
                    m.u32(5, REG_2); // NFTA_NAT_REG_PROTO_MIN
                    m.u32(7, 0x2); // NFTA_NAT_FLAGS: NF_NAT_RANGE_PROTO_SPECIFIED
                });
                comment = Some(c);
            }
            Rule::Spread { chains, comment: c } => {
                m.expr("numgen", |m| {
                    m.u32(1, REG_1); // NFTA_NG_DREG
                    m.u32(2, chains.len() as u32); // NFTA_NG_MODULUS
                    m.u32(3, NUMGEN_RANDOM); // NFTA_NG_TYPE
                    m.u32(4, 0); // NFTA_NG_OFFSET
                });
                m.expr("lookup", |m| {
                    m.u32(2, REG_1); // NFTA_LOOKUP_SREG
                    m.u32(3, REG_VERDICT); // NFTA_LOOKUP_DREG
                    m.str(1, "__map%d"); // NFTA_LOOKUP_SET
                    m.u32(4, map.expect("made above")); // NFTA_LOOKUP_SET_ID
                });
                comment = Some(c);
            }
            Rule::Always(v) => verdict_immediate(m, v),
            Rule::FromSet(..) | Rule::Remember(_) => unreachable!("refused above"),
        });
        if let Some(c) = comment {
            m.comment(NFTA_RULE_USERDATA, &comment_text(c));
        }
        self.done(m);
        Some(())
    }
}

/// `[ cmp <op> reg 1 <value> ]`.
fn cmp(m: &mut Msg, op: u32, value: &[u8]) {
    m.expr("cmp", |m| {
        m.u32(1, REG_1); // NFTA_CMP_SREG
        m.u32(2, op); // NFTA_CMP_OP
        m.nest(3, |m| m.attr(NFTA_DATA_VALUE, value)); // NFTA_CMP_DATA
    });
}

/// `[ bitwise reg 1 = ( reg 1 & <mask> ) ^ 0 ]` on 4 bytes.
fn bitwise(m: &mut Msg, mask: &[u8; 4]) {
    m.expr("bitwise", |m| {
        m.u32(1, REG_1); // NFTA_BITWISE_SREG
        m.u32(2, REG_1); // NFTA_BITWISE_DREG
        m.u32(3, 4); // NFTA_BITWISE_LEN
        m.nest(4, |m| m.attr(NFTA_DATA_VALUE, mask)); // NFTA_BITWISE_MASK
        m.nest(5, |m| m.attr(NFTA_DATA_VALUE, &[0; 4])); // NFTA_BITWISE_XOR
    });
}

/// `[ immediate reg 0 jump|goto -> <chain> ]`.
fn verdict_immediate(m: &mut Msg, v: &Verdict) {
    m.expr("immediate", |m| {
        m.u32(1, REG_VERDICT); // NFTA_IMMEDIATE_DREG
        m.nest(2, |m| verdict_data(m, v)); // NFTA_IMMEDIATE_DATA
    });
}

/// `NFTA_DATA_VERDICT { CODE, CHAIN }`.
fn verdict_data(m: &mut Msg, v: &Verdict) {
    let (code, chain) = match v {
        Verdict::Jump(c) => (NFT_JUMP, c),
        Verdict::Goto(c) => (NFT_GOTO, c),
    };
    m.nest(NFTA_DATA_VERDICT, |m| {
        m.attr(NFTA_VERDICT_CODE, &code.to_be_bytes());
        m.str(NFTA_VERDICT_CHAIN, chain);
    });
}

fn proto_number(p: Proto) -> u8 {
    match p {
        Proto::Tcp => libc::IPPROTO_TCP as u8,
        Proto::Udp => libc::IPPROTO_UDP as u8,
    }
}

/// A map key as the kernel holds it: each part of a concatenation in
/// network order, padded to 4 bytes.
fn key_bytes(key: &Key) -> Vec<u8> {
    let mut v = Vec::with_capacity(12);
    let (proto, port) = match key {
        Key::Addr(ip, proto, port) => {
            v.extend_from_slice(&ip.octets());
            (proto, port)
        }
        Key::Port(proto, port) => (proto, port),
    };
    v.extend_from_slice(&[proto_number(*proto), 0, 0, 0]);
    v.extend_from_slice(&port.to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    v
}

/// The userdata `nft` gives a `numgen … vmap` map, which `nft list` reads
/// to print its keys as numbers: the key's byte order (host), the data's,
/// the key's `typeof` expression (numgen) and the merge flag.
fn numgen_map_udata() -> Vec<u8> {
    let mut v = Vec::with_capacity(28);
    // NFTNL_UDATA_SET_KEYBYTEORDER: BYTEORDER_HOST_ENDIAN
    v.extend_from_slice(&[0, 4]);
    v.extend_from_slice(&1u32.to_ne_bytes());
    // NFTNL_UDATA_SET_DATABYTEORDER: BYTEORDER_INVALID
    v.extend_from_slice(&[1, 4]);
    v.extend_from_slice(&0u32.to_ne_bytes());
    // NFTNL_UDATA_SET_KEY_TYPEOF: { expression type 1 (numgen), its data }
    v.extend_from_slice(&[4, 8, 0, 4]);
    v.extend_from_slice(&1u32.to_ne_bytes());
    v.extend_from_slice(&[1, 0]);
    // NFTNL_UDATA_SET_MERGE_ELEMENTS: no
    v.extend_from_slice(&[6, 4]);
    v.extend_from_slice(&0u32.to_ne_bytes());
    v
}

/// `a.b.c.d/n` with 0 < n ≤ 32 and no host bits.
fn parse_cidr(s: &str) -> Option<(Ipv4Addr, u32)> {
    let (ip, prefix) = s.split_once('/')?;
    let ip: Ipv4Addr = ip.parse().ok()?;
    let prefix: u32 = prefix.parse().ok()?;
    if prefix == 0 || prefix > 32 {
        return None;
    }
    let mask = u32::MAX << (32 - prefix);
    (u32::from(ip) & !mask == 0).then_some((ip, prefix))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nft_netlink::{attrs, parse_replies};

    fn dnat(to: [u8; 4]) -> Rule {
        Rule::Dnat {
            proto: Proto::Tcp,
            to: Ipv4Addr::from(to),
            port: 8080,
            comment: "ns/web:\"http\"".into(),
        }
    }

    #[test]
    fn a_batch_holds_one_message_per_operation_and_a_map_per_spread() {
        let ops = vec![
            Op::DelElem {
                map: "service-ips",
                key: Key::Addr(Ipv4Addr::new(198, 19, 0, 7), Proto::Tcp, 80),
            },
            Op::DelChain("svc-a".into()),
            Op::AddChain("sep-a".into()),
            Op::AddRule {
                chain: "sep-a".into(),
                rule: dnat([198, 18, 0, 5]),
            },
            Op::AddRule {
                chain: "svc-a".into(),
                rule: Rule::Spread {
                    chains: vec!["sep-a".into(), "sep-b".into()],
                    comment: "c".into(),
                },
            },
            Op::AddElem {
                map: "service-nodeports",
                key: Key::Port(Proto::Udp, 30053),
                verdict: Verdict::Goto("ext-a".into()),
            },
        ];
        let b = encode("t", &ops).unwrap();
        let msgs = parse_replies(&b.buf).unwrap();
        let kinds: Vec<(u16, u32)> = msgs.iter().map(|m| (m.ty, m.seq)).collect();
        assert_eq!(
            kinds,
            [
                (0x10, 0),
                (0x0a0e, 1),
                (0x0a05, 2),
                (0x0a03, 3),
                (0x0a06, 4),
                (0x0a09, 5),
                (0x0a0c, 6),
                (0x0a06, 7),
                (0x0a0c, 8),
                (0x11, 9)
            ]
        );
        assert_eq!(b.messages, 10);
        // the DNAT rule's comment lost its quotes, as nft's syntax would
        let rule = attrs(&msgs[4].payload[4..]);
        assert_eq!(rule[3], (7, &b"\x00\x0cns/web:http\x00"[..]));
        // the node port's key: proto and port, each padded to 4 bytes
        let el = attrs(&msgs[8].payload[4..]);
        let elems = attrs(el[2].1);
        let key = attrs(attrs(elems[0].1)[0].1);
        assert_eq!(key[0].1, [17, 0, 0, 0, 0x75, 0x65, 0, 0]);
        assert!(msgs.iter().all(|m| m.payload.len() % 4 == 0));
    }

    #[test]
    fn affinity_and_odd_ranges_are_left_to_nft() {
        let aff = [Op::AddSet {
            name: "aff-a".into(),
            timeout: 10,
        }];
        assert!(encode("t", &aff).is_none());
        let remember = [Op::AddRule {
            chain: "sep-a".into(),
            rule: Rule::Remember("aff-a".into()),
        }];
        assert!(encode("t", &remember).is_none());
        for cidr in [
            "0.0.0.0/0",
            "198.18.0.1/16",
            "198.18.0.0",
            "x/8",
            "198.18.0.0/33",
        ] {
            let op = [Op::AddRule {
                chain: "svc-a".into(),
                rule: Rule::FromOutside(cidr.into(), Verdict::Jump("m".into())),
            }];
            assert!(encode("t", &op).is_none(), "{cidr}");
        }
        assert_eq!(
            parse_cidr("198.18.0.0/15"),
            Some((Ipv4Addr::new(198, 18, 0, 0), 15))
        );
    }

    #[test]
    fn too_many_messages_are_left_to_nft() {
        let ops: Vec<Op> = (0..MAX_MESSAGES + 1)
            .map(|i| Op::AddChain(format!("c{i}")))
            .collect();
        assert!(encode("t", &ops).is_none());
        assert!(encode("t", &ops[..10]).is_some());
    }
}
