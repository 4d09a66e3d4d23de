//! NetworkPolicy enforcement's rule set: what each pod of the node may
//! receive and send, in, an nftables script out. Pure; [`crate::nft::apply`]
//! applies. The caller (the node agent) resolves the policies' selectors
//! into addresses; this module only knows addresses, protocols and ports.
//!
//! One table of its own (`ip <engine table>-pol`), written whole in one
//! atomic transaction at each change (a pod's rules are a handful of lines:
//! the table stays small next to the service table):
//!
//! - `forward` (routed traffic, and traffic between pods of one bridge,
//!   which the kernel hands to the IP hooks when `br_netfilter` calls them)
//!   lets replies and related packets of allowed connections pass, then
//!   looks the source up in `egress` and the destination in `ingress`:
//!   verdict maps from a selected pod's address to its chain. A pod no policy
//!   selects has no element: all traffic passes, as Kubernetes says.
//! - `eg-<hash>` returns for each allowed destination and port and drops the
//!   rest; `in-<hash>` accepts each allowed source and port and drops the
//!   rest. The packets are seen after the service proxy's DNAT, so rules
//!   apply to the endpoint reached, as with kube-proxy.
//! - `input` applies a pod's egress rules to traffic for the node itself,
//!   except DNS to the node's cluster DNS (the node answers the cluster's
//!   names: a pod under a default-deny egress policy still resolves).
//!
//! The node's own traffic to its pods (probes, the ingress controller,
//! NodePorts on 127.0.0.1) passes through the `output` hook, never these
//! chains: as in Kubernetes, a pod cannot block its node.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::Ipv4Addr;

/// A transport protocol a policy port names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    fn nft(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// A protocol and, optionally, a port range (inclusive; `None`: every
/// port of the protocol).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortMatch {
    /// The protocol.
    pub protocol: Protocol,
    /// The first and last port.
    pub ports: Option<(u16, u16)>,
}

/// An inclusive range of IPv4 addresses.
pub type AddrRange = (Ipv4Addr, Ipv4Addr);

/// One allow rule: traffic from (ingress) or to (egress) one of `peers`
/// on one of `ports`. `None` is "any"; an empty list matches nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rule {
    /// The peers' addresses.
    pub peers: Option<Vec<AddrRange>>,
    /// The ports.
    pub ports: Option<Vec<PortMatch>>,
}

/// A pod's rules. `None` for a direction no policy isolates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodRules {
    /// `namespace/name` (comments).
    pub name: String,
    /// What may reach the pod (any rule), when isolated for ingress.
    pub ingress: Option<Vec<Rule>>,
    /// What the pod may reach (any rule), when isolated for egress.
    pub egress: Option<Vec<Rule>>,
}

/// The node's pods by address.
pub type Policies = BTreeMap<Ipv4Addr, PodRules>;

/// The table's fixed settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyConfig {
    /// The table's name.
    pub table: String,
    /// The node's DNS server addresses, always reachable on port 53.
    pub dns: Vec<Ipv4Addr>,
}

/// The policy table of a root: its engine table's name + `-pol`.
pub fn table_for(cfg: &crate::NetConfig) -> String {
    format!("{}-pol", cfg.table)
}

/// The script that removes the table (valid when it does not exist).
pub fn delete(cfg: &PolicyConfig) -> String {
    format!("table ip {t}\ndelete table ip {t}\n", t = cfg.table)
}

/// The addresses of an `ipBlock`: `cidr` without the `except` ranges.
pub fn block(cidr: &str, except: &[String]) -> Result<Vec<AddrRange>, String> {
    let (first, last) = cidr_range(cidr)?;
    let mut out = vec![(first, last)];
    for e in except {
        let (a, b) = cidr_range(e)?;
        out = out
            .into_iter()
            .flat_map(|(s, t)| {
                if b < s || a > t {
                    return vec![(s, t)];
                }
                let mut keep = Vec::new();
                if a > s {
                    keep.push((s, a - 1));
                }
                if b < t {
                    keep.push((b + 1, t));
                }
                keep
            })
            .collect();
    }
    Ok(out
        .into_iter()
        .map(|(a, b)| (Ipv4Addr::from(a as u32), Ipv4Addr::from(b as u32)))
        .collect())
}

/// A CIDR's first and last address (as u64 so edges never overflow).
fn cidr_range(cidr: &str) -> Result<(u64, u64), String> {
    let (addr, prefix) = cidr
        .split_once('/')
        .ok_or_else(|| format!("invalid CIDR {cidr:?}: no prefix length"))?;
    let addr: Ipv4Addr = addr
        .parse()
        .map_err(|_| format!("invalid CIDR {cidr:?}: not an IPv4 address"))?;
    let prefix: u32 = prefix
        .parse()
        .ok()
        .filter(|p| *p <= 32)
        .ok_or_else(|| format!("invalid CIDR {cidr:?}: bad prefix length"))?;
    let size = 1u64 << (32 - prefix);
    let first = u64::from(u32::from(addr)) & !(size - 1);
    Ok((first, first + size - 1))
}

/// Sorted, merged ranges (nftables refuses overlapping interval elements).
fn merge(ranges: &[AddrRange]) -> Vec<(u32, u32)> {
    let mut v: Vec<(u32, u32)> = ranges
        .iter()
        .map(|(a, b)| (u32::from(*a), u32::from(*b)))
        .filter(|(a, b)| a <= b)
        .collect();
    v.sort_unstable();
    let mut out: Vec<(u32, u32)> = Vec::with_capacity(v.len());
    for (a, b) in v {
        match out.last_mut() {
            Some(last) if u64::from(a) <= u64::from(last.1) + 1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// An address match (`ip saddr …`) for merged ranges.
fn addr_match(dir: &str, ranges: &[(u32, u32)]) -> String {
    let items: Vec<String> = ranges
        .iter()
        .map(|(a, b)| {
            if a == b {
                Ipv4Addr::from(*a).to_string()
            } else {
                format!("{}-{}", Ipv4Addr::from(*a), Ipv4Addr::from(*b))
            }
        })
        .collect();
    if items.len() == 1 && !items[0].contains('-') {
        format!("ip {dir} {} ", items[0])
    } else {
        format!("ip {dir} {{ {} }} ", items.join(", "))
    }
}

/// The port matches of a rule, one per protocol (`None`: any traffic).
fn port_matches(ports: &[PortMatch]) -> Vec<String> {
    let mut by_proto: BTreeMap<Protocol, Option<Vec<(u16, u16)>>> = BTreeMap::new();
    for p in ports {
        let entry = by_proto
            .entry(p.protocol)
            .or_insert_with(|| Some(Vec::new()));
        match (entry.as_mut(), p.ports) {
            (Some(list), Some(r)) => list.push(r),
            // a protocol with any port absorbs its ranges
            (_, None) => *entry = None,
            (None, Some(_)) => {}
        }
    }
    by_proto
        .into_iter()
        .map(|(proto, ranges)| match ranges {
            None => format!("meta l4proto {} ", proto.nft()),
            Some(mut r) => {
                r.sort_unstable();
                r.dedup();
                let items: Vec<String> = r
                    .iter()
                    .map(|(a, b)| {
                        if a == b {
                            a.to_string()
                        } else {
                            format!("{}-{}", a.min(b), a.max(b))
                        }
                    })
                    .collect();
                format!(
                    "meta l4proto {} th dport {{ {} }} ",
                    proto.nft(),
                    items.join(", ")
                )
            }
        })
        .collect()
}

/// The lines of one direction's chain: each rule's matches then `verdict`,
/// and a drop at the end.
fn chain_body(rules: &[Rule], dir: &str, verdict: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for r in rules {
        let peers = match &r.peers {
            None => String::new(),
            Some(p) => {
                let m = merge(p);
                if m.is_empty() {
                    continue;
                }
                addr_match(dir, &m)
            }
        };
        match &r.ports {
            None => lines.push(format!("{peers}{verdict}")),
            Some(p) => {
                for m in port_matches(p) {
                    lines.push(format!("{peers}{m}{verdict}"));
                }
            }
        }
    }
    lines.push("counter drop".into());
    lines
}

fn chain_name(prefix: &str, ip: Ipv4Addr) -> String {
    format!("{prefix}-{}", crate::services::hash(&ip.to_string()))
}

/// The whole table for `policies`, replacing what is there in one
/// transaction; no isolated pod: the table is removed.
pub fn full(cfg: &PolicyConfig, policies: &Policies) -> String {
    let t = &cfg.table;
    let isolated = policies
        .values()
        .any(|p| p.ingress.is_some() || p.egress.is_some());
    if !isolated {
        return delete(cfg);
    }
    let mut s = String::new();
    let _ = writeln!(s, "table ip {t}\ndelete table ip {t}\ntable ip {t} {{");
    for (map, pick) in [("ingress", true), ("egress", false)] {
        let _ = writeln!(s, "\tmap {map} {{\n\t\ttype ipv4_addr : verdict");
        let elements: Vec<String> = policies
            .iter()
            .filter(|(_, p)| {
                if pick {
                    p.ingress.is_some()
                } else {
                    p.egress.is_some()
                }
            })
            .map(|(ip, _)| {
                let prefix = if pick { "in" } else { "eg" };
                format!("{ip} : jump {}", chain_name(prefix, *ip))
            })
            .collect();
        if !elements.is_empty() {
            let _ = writeln!(s, "\t\telements = {{ {} }}", elements.join(", "));
        }
        let _ = writeln!(s, "\t}}");
    }
    let _ = writeln!(
        s,
        "\tchain forward {{\n\t\ttype filter hook forward priority filter; policy accept;\n\t\tct state established,related accept\n\t\tip saddr vmap @egress\n\t\tip daddr vmap @ingress\n\t}}"
    );
    let dns = if cfg.dns.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = cfg.dns.iter().map(Ipv4Addr::to_string).collect();
        format!(
            "\t\tip daddr {{ {} }} meta l4proto {{ tcp, udp }} th dport 53 accept\n",
            list.join(", ")
        )
    };
    let _ = writeln!(
        s,
        "\tchain input {{\n\t\ttype filter hook input priority filter; policy accept;\n\t\tct state established,related accept\n{dns}\t\tip saddr vmap @egress\n\t}}"
    );
    for (ip, p) in policies {
        for (prefix, rules, dir, verdict) in [
            ("in", &p.ingress, "saddr", "accept"),
            ("eg", &p.egress, "daddr", "return"),
        ] {
            let Some(rules) = rules else { continue };
            let _ = writeln!(
                s,
                "\tchain {} {{\n\t\tcomment {}",
                chain_name(prefix, *ip),
                crate::services::comment(&format!("{} {ip}", p.name))
            );
            for line in chain_body(rules, dir, verdict) {
                let _ = writeln!(s, "\t\t{line}");
            }
            let _ = writeln!(s, "\t}}");
        }
    }
    let _ = writeln!(s, "}}");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn cfg() -> PolicyConfig {
        PolicyConfig {
            table: "t-pol".into(),
            dns: vec![ip("198.18.0.1")],
        }
    }

    #[test]
    fn blocks_subtract_their_exceptions() {
        assert_eq!(
            block("198.18.0.0/24", &["198.18.0.64/26".into()]).unwrap(),
            vec![
                (ip("198.18.0.0"), ip("198.18.0.63")),
                (ip("198.18.0.128"), ip("198.18.0.255"))
            ]
        );
        // edges and an exception outside the block
        assert_eq!(
            block(
                "198.18.0.0/24",
                &["198.18.0.0/25".into(), "198.19.0.0/24".into()]
            )
            .unwrap(),
            vec![(ip("198.18.0.128"), ip("198.18.0.255"))]
        );
        assert_eq!(
            block("198.18.0.0/24", &["198.18.0.128/25".into()]).unwrap(),
            vec![(ip("198.18.0.0"), ip("198.18.0.127"))]
        );
        assert_eq!(
            block("198.18.0.0/24", &["198.18.0.0/24".into()]).unwrap(),
            vec![]
        );
        assert_eq!(
            block("0.0.0.0/0", &[]).unwrap(),
            vec![(ip("0.0.0.0"), ip("255.255.255.255"))]
        );
        assert_eq!(
            block("198.18.0.7/32", &[]).unwrap(),
            vec![(ip("198.18.0.7"), ip("198.18.0.7"))]
        );
        // a host address inside the prefix is masked, as the kernel does
        assert_eq!(
            block("198.18.0.9/30", &[]).unwrap(),
            vec![(ip("198.18.0.8"), ip("198.18.0.11"))]
        );
        for bad in [
            "198.18.0.0",
            "198.18.0.0/33",
            "2001:db8::/64",
            "x/8",
            "198.18.0.0/-1",
        ] {
            assert!(block(bad, &[]).is_err(), "{bad}");
        }
        assert!(block("198.18.0.0/24", &["nope".into()]).is_err());
    }

    #[test]
    fn ranges_merge_and_ports_group_by_protocol() {
        let m = merge(&[
            (ip("198.18.0.10"), ip("198.18.0.20")),
            (ip("198.18.0.5"), ip("198.18.0.5")),
            (ip("198.18.0.15"), ip("198.18.0.30")),
            (ip("198.18.0.31"), ip("198.18.0.31")),
        ]);
        assert_eq!(
            addr_match("saddr", &m),
            "ip saddr { 198.18.0.5, 198.18.0.10-198.18.0.31 } "
        );
        let p = port_matches(&[
            PortMatch {
                protocol: Protocol::Tcp,
                ports: Some((80, 80)),
            },
            PortMatch {
                protocol: Protocol::Udp,
                ports: None,
            },
            PortMatch {
                protocol: Protocol::Udp,
                ports: Some((53, 53)),
            },
            PortMatch {
                protocol: Protocol::Tcp,
                ports: Some((8000, 9000)),
            },
            PortMatch {
                protocol: Protocol::Tcp,
                ports: Some((80, 80)),
            },
        ]);
        assert_eq!(
            p,
            vec![
                "meta l4proto tcp th dport { 80, 8000-9000 } ".to_string(),
                "meta l4proto udp ".to_string()
            ]
        );
    }

    #[test]
    fn no_isolated_pod_removes_the_table() {
        let mut p = Policies::new();
        p.insert(
            ip("198.18.0.5"),
            PodRules {
                name: "d/a".into(),
                ..Default::default()
            },
        );
        assert_eq!(full(&cfg(), &p), "table ip t-pol\ndelete table ip t-pol\n");
    }

    #[test]
    fn isolated_pods_get_chains() {
        let mut p = Policies::new();
        p.insert(
            ip("198.18.0.5"),
            PodRules {
                name: "d/web".into(),
                ingress: Some(vec![
                    Rule {
                        peers: Some(vec![(ip("198.18.0.6"), ip("198.18.0.6"))]),
                        ports: Some(vec![PortMatch {
                            protocol: Protocol::Tcp,
                            ports: Some((80, 80)),
                        }]),
                    },
                    // matches nothing: skipped
                    Rule {
                        peers: Some(vec![]),
                        ports: None,
                    },
                ]),
                egress: Some(vec![]),
            },
        );
        p.insert(
            ip("198.18.0.6"),
            PodRules {
                name: "d/client".into(),
                ..Default::default()
            },
        );
        let s = full(&cfg(), &p);
        let inc = chain_name("in", ip("198.18.0.5"));
        let egc = chain_name("eg", ip("198.18.0.5"));
        assert!(
            s.starts_with("table ip t-pol\ndelete table ip t-pol\ntable ip t-pol {\n"),
            "{s}"
        );
        assert!(
            s.contains(&format!("elements = {{ 198.18.0.5 : jump {inc} }}")),
            "{s}"
        );
        assert!(
            s.contains(&format!("elements = {{ 198.18.0.5 : jump {egc} }}")),
            "{s}"
        );
        assert!(!s.contains("198.18.0.6 : jump"), "{s}");
        assert!(
            s.contains("\t\tip saddr 198.18.0.6 meta l4proto tcp th dport { 80 } accept\n\t\tcounter drop\n"),
            "{s}"
        );
        assert!(
            s.contains(&format!(
                "chain {egc} {{\n\t\tcomment \"d/web 198.18.0.5\"\n\t\tcounter drop\n"
            )),
            "{s}"
        );
        assert!(
            s.contains("ip daddr { 198.18.0.1 } meta l4proto { tcp, udp } th dport 53 accept"),
            "{s}"
        );
        // egress rules return (the ingress side is still to be checked)
        let mut q = p.clone();
        q.get_mut(&ip("198.18.0.5")).unwrap().egress = Some(vec![Rule {
            peers: None,
            ports: None,
        }]);
        assert!(full(&cfg(), &q).contains("\t\treturn\n\t\tcounter drop\n"));
    }
}
