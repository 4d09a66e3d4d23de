//! The service table's changes as typed operations: what [`super::full`]
//! and [`super::diff`] decide, before it becomes either `nft` script text
//! ([`render`]) or one netlink batch ([`crate::nft_netlink`]). Both say the
//! same thing; a listing of the table cannot tell which one wrote it.

use std::fmt;
use std::net::Ipv4Addr;

use crate::ports::Proto;

/// Where a rule or a map element sends a packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// `jump <chain>`: come back afterwards.
    Jump(String),
    /// `goto <chain>`: do not come back.
    Goto(String),
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Jump(c) => write!(f, "jump {c}"),
            Verdict::Goto(c) => write!(f, "goto {c}"),
        }
    }
}

/// The key of an element of the table's verdict maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// `address . proto . port` (`service-ips`, `external-ips`,
    /// `no-endpoints`).
    Addr(Ipv4Addr, Proto, u16),
    /// `proto . port` (`service-nodeports`, `no-endpoint-nodeports`).
    Port(Proto, u16),
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Addr(ip, proto, port) => write!(f, "{ip} . {proto} . {port}"),
            Key::Port(proto, port) => write!(f, "{proto} . {port}"),
        }
    }
}

/// One rule of a Service's chains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// `ip saddr <address> <verdict>` (hairpin traffic).
    FromAddr(Ipv4Addr, Verdict),
    /// `ip saddr != <cidr> <verdict>` (traffic from outside the pods).
    FromOutside(String, Verdict),
    /// `ip saddr @<set> <verdict>` (a client with affinity).
    FromSet(String, Verdict),
    /// `update @<set> { ip saddr }` (remember the client).
    Remember(String),
    /// `meta l4proto <proto> dnat to <address>:<port> comment "<comment>"`.
    Dnat {
        /// The protocol.
        proto: Proto,
        /// The endpoint.
        to: Ipv4Addr,
        /// Its port.
        port: u16,
        /// The Service port's name.
        comment: String,
    },
    /// `numgen random mod N vmap { 0 : goto <a>, … } comment "<comment>"`:
    /// one of the chains, evenly.
    Spread {
        /// The chains, in order.
        chains: Vec<String>,
        /// The Service port's name.
        comment: String,
    },
    /// A bare verdict.
    Always(Verdict),
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::FromAddr(ip, v) => write!(f, "ip saddr {ip} {v}"),
            Rule::FromOutside(cidr, v) => write!(f, "ip saddr != {cidr} {v}"),
            Rule::FromSet(set, v) => write!(f, "ip saddr @{set} {v}"),
            Rule::Remember(set) => write!(f, "update @{set} {{ ip saddr }}"),
            Rule::Dnat {
                proto,
                to,
                port,
                comment,
            } => write!(
                f,
                "meta l4proto {proto} dnat to {to}:{port} comment {}",
                quoted(comment)
            ),
            Rule::Spread { chains, comment } => {
                let arms: Vec<String> = chains
                    .iter()
                    .enumerate()
                    .map(|(i, c)| format!("{i} : goto {c}"))
                    .collect();
                write!(
                    f,
                    "numgen random mod {} vmap {{ {} }} comment {}",
                    chains.len(),
                    arms.join(", "),
                    quoted(comment)
                )
            }
            Rule::Always(v) => write!(f, "{v}"),
        }
    }
}

/// One change to the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// A set of client addresses that forgets each after `timeout` seconds.
    AddSet {
        /// The set.
        name: String,
        /// Seconds.
        timeout: u32,
    },
    /// Removes a set.
    DelSet(String),
    /// A regular chain.
    AddChain(String),
    /// Removes a chain with its rules.
    DelChain(String),
    /// Appends a rule to a chain.
    AddRule {
        /// The chain.
        chain: String,
        /// The rule.
        rule: Rule,
    },
    /// Adds an element to one of the table's verdict maps.
    AddElem {
        /// The map.
        map: &'static str,
        /// Its key.
        key: Key,
        /// Where it leads.
        verdict: Verdict,
    },
    /// Removes an element of a verdict map.
    DelElem {
        /// The map.
        map: &'static str,
        /// Its key.
        key: Key,
    },
}

/// The `nft` script of `ops` on table `ip <table>`, one command a line.
pub fn render(table: &str, ops: &[Op]) -> String {
    use std::fmt::Write;
    let t = table;
    let mut s = String::new();
    for op in ops {
        let _ = match op {
            Op::AddSet { name, timeout } => writeln!(
                s,
                "add set ip {t} {name} {{ type ipv4_addr; flags dynamic,timeout; timeout {timeout}s; }}"
            ),
            Op::DelSet(name) => writeln!(s, "delete set ip {t} {name}"),
            Op::AddChain(c) => writeln!(s, "add chain ip {t} {c}"),
            Op::DelChain(c) => writeln!(s, "delete chain ip {t} {c}"),
            Op::AddRule { chain, rule } => writeln!(s, "add rule ip {t} {chain} {rule}"),
            Op::AddElem { map, key, verdict } => {
                writeln!(s, "add element ip {t} {map} {{ {key} : {verdict} }}")
            }
            Op::DelElem { map, key } => writeln!(s, "delete element ip {t} {map} {{ {key} }}"),
        };
    }
    s
}

/// A comment's text as the table keeps it: no quotes, backslashes or
/// control characters (nft's string syntax has no escapes), at most 120
/// characters.
pub fn comment_text(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
        .take(120)
        .collect()
}

/// A comment in nft's script syntax.
pub(crate) fn quoted(s: &str) -> String {
    format!("\"{}\"", comment_text(s))
}
