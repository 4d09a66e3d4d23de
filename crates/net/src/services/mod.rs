//! The service proxy's rule set (kube-proxy's job, nftables mode): Service
//! ports in, nftables scripts out. Pure; [`crate::nft::apply`] applies.
//!
//! One table of its own (`ip <engine table>-svc`, `berth-svc` by default), apart from the
//! engine's, since it changes with every Service and endpoint:
//!
//! - `services` (reached from the nat `prerouting` and `output` hooks)
//!   looks the destination up in two verdict maps: `service-ips`
//!   (`clusterIP . proto . port`) and, for a local destination,
//!   `service-nodeports` (`proto . port`), and `external-ips` (a
//!   LoadBalancer's addresses, `ip . proto . port`); each element jumps to the
//!   Service port's chain `svc-<hash>`.
//! - `svc-<hash>` marks traffic from outside the cluster's pod range for
//!   masquerading, sends a client with session affinity back to its
//!   endpoint, else picks an endpoint evenly (`numgen random mod N`).
//! - `sep-<hash>` (one per endpoint) marks hairpin traffic (an endpoint
//!   reaching itself through the Service) for masquerading, records
//!   affinity, and DNATs.
//! - `postrouting` masquerades what was marked; the filter chains reject
//!   new connections to a Service port without endpoints (`no-endpoints`,
//!   `no-endpoint-nodeports`), as kube-proxy does (ICMP port unreachable,
//!   TCP reset).
//!
//! A change is a small transaction ([`diff`]): only the chains and map
//! elements of the Service ports that changed are written, so its cost
//! follows the change, not the cluster. [`full`] writes the whole table
//! (start, or after someone else touched it) in one atomic replace.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::Ipv4Addr;

use crate::ports::Proto;

pub mod ops;

pub use ops::{Key, Op, Rule, Verdict};

/// The default table.
pub const TABLE: &str = "berth-svc";
/// The mark of packets to masquerade (kube-proxy's bit).
pub const MASQ_MARK: u32 = 0x4000;

/// One port of one Service, as the proxy programs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePort {
    /// `namespace/name:port` (comments; the chain's hash is of this).
    pub name: String,
    /// The ClusterIP (`None`: a NodePort reached only through the node).
    pub cluster_ip: Option<Ipv4Addr>,
    /// The protocol.
    pub proto: Proto,
    /// The Service's port.
    pub port: u16,
    /// The node port, if any.
    pub node_port: Option<u16>,
    /// ClientIP session affinity with this timeout in seconds.
    pub affinity_timeout: Option<u32>,
    /// Node-port traffic goes to local endpoints only and keeps its source
    /// (`externalTrafficPolicy: Local`).
    pub local_only: bool,
    /// Ready endpoints: address and port.
    pub endpoints: Vec<(Ipv4Addr, u16)>,
    /// Node-local endpoints (for `local_only`), a subset of `endpoints`.
    pub local_endpoints: Vec<(Ipv4Addr, u16)>,
    /// Addresses the port is also served on, at `port`, treated as
    /// traffic from outside (a LoadBalancer's ingress addresses).
    pub external_ips: Vec<Ipv4Addr>,
}

/// What the table holds: Service ports by name.
pub type Services = BTreeMap<String, ServicePort>;

/// The table's fixed settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyConfig {
    /// The table's name.
    pub table: String,
    /// The cluster's pod range: traffic to a ClusterIP from outside it is
    /// masqueraded (replies must come back through this node).
    pub cluster_cidr: Option<String>,
}

/// A short stable hash (FNV-1a, 64 bits) for chain names.
pub(crate) fn hash(s: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn svc_chain(p: &ServicePort) -> String {
    format!("svc-{}", hash(&p.name))
}

fn sep_chain(p: &ServicePort, ep: (Ipv4Addr, u16)) -> String {
    format!("sep-{}", hash(&format!("{}@{}:{}", p.name, ep.0, ep.1)))
}

fn affinity_set(p: &ServicePort, ep: (Ipv4Addr, u16)) -> String {
    format!("aff-{}", hash(&format!("{}@{}:{}", p.name, ep.0, ep.1)))
}

/// nft string quoting for comments.
pub(crate) fn comment(s: &str) -> String {
    ops::quoted(s)
}

/// The whole table: replaces whatever is there in one transaction.
pub fn full(cfg: &ProxyConfig, services: &Services) -> String {
    let t = &cfg.table;
    let mut s = String::new();
    // create-then-delete makes the delete valid when the table is missing
    let _ = writeln!(s, "table ip {t}\ndelete table ip {t}\ntable ip {t} {{");
    for (name, key) in [
        ("service-ips", "ipv4_addr . inet_proto . inet_service"),
        ("service-nodeports", "inet_proto . inet_service"),
        ("external-ips", "ipv4_addr . inet_proto . inet_service"),
        ("no-endpoints", "ipv4_addr . inet_proto . inet_service"),
        ("no-endpoint-nodeports", "inet_proto . inet_service"),
    ] {
        let _ = writeln!(s, "\tmap {name} {{\n\t\ttype {key} : verdict\n\t}}");
    }
    for (chain, prio) in [("prerouting", "dstnat"), ("output", "-100")] {
        let _ = writeln!(
            s,
            "\tchain {chain} {{\n\t\ttype nat hook {chain} priority {prio}; policy accept;\n\t\tjump services\n\t}}"
        );
    }
    let _ = writeln!(
        s,
        "\tchain services {{\n\t\tip daddr . meta l4proto . th dport vmap @service-ips\n\t\tip daddr . meta l4proto . th dport vmap @external-ips\n\t\tfib daddr type local meta l4proto . th dport vmap @service-nodeports\n\t}}"
    );
    let _ = writeln!(
        s,
        "\tchain mark-for-masquerade {{\n\t\tmeta mark set meta mark | {MASQ_MARK:#x}\n\t}}"
    );
    let _ = writeln!(
        s,
        "\tchain postrouting {{\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\tmeta mark & {MASQ_MARK:#x} == {MASQ_MARK:#x} meta mark set meta mark & {:#x} masquerade fully-random\n\t}}",
        !MASQ_MARK
    );
    let _ = writeln!(s, "\tchain reject-chain {{\n\t\treject\n\t}}");
    for hook in ["input", "forward", "output"] {
        let _ = writeln!(
            s,
            "\tchain filter-{hook} {{\n\t\ttype filter hook {hook} priority -110; policy accept;\n\t\tct state new ip daddr . meta l4proto . th dport vmap @no-endpoints\n\t\tct state new fib daddr type local meta l4proto . th dport vmap @no-endpoint-nodeports\n\t}}"
        );
    }
    let _ = writeln!(s, "}}");
    let mut out = Vec::new();
    for p in services.values() {
        add_port(&mut out, cfg, p);
    }
    s.push_str(&ops::render(t, &out));
    s
}

/// The transaction that turns the table for `old` into the table for
/// `new` (both as last applied): only what changed, as `nft` script text.
pub fn diff(cfg: &ProxyConfig, old: &Services, new: &Services) -> String {
    ops::render(&cfg.table, &diff_ops(cfg, old, new))
}

/// [`diff`] as operations.
pub fn diff_ops(cfg: &ProxyConfig, old: &Services, new: &Services) -> Vec<Op> {
    let mut out = Vec::new();
    for (name, o) in old {
        match new.get(name) {
            Some(n) if n == o => {}
            _ => remove_port(&mut out, o),
        }
    }
    for (name, n) in new {
        if old.get(name) != Some(n) {
            add_port(&mut out, cfg, n);
        }
    }
    out
}

/// Applies the change from `old` to `new` ([`diff_ops`]) in one
/// transaction ([`apply_ops`]). Returns whether the netlink batch was used.
pub fn apply_diff(cfg: &ProxyConfig, old: &Services, new: &Services) -> crate::Result<bool> {
    apply_ops(&cfg.table, &diff_ops(cfg, old, new))
}

/// Applies `ops` to table `ip <table>` in one transaction: a netlink batch
/// sent in-process where every operation has an encoding there (no `nft`
/// process, no reading of the table's chains, whose number grows with the
/// cluster), else the script through `nft`. Returns whether the netlink
/// batch was used.
pub fn apply_ops(table: &str, ops: &[Op]) -> crate::Result<bool> {
    if ops.is_empty() {
        return Ok(true);
    }
    let Some(batch) = crate::nft_netlink::services::encode(table, ops) else {
        return crate::nft::apply(&ops::render(table, ops)).map(|()| false);
    };
    let _t = crate::timing::span("net.services.netlink");
    let failed = |e: std::io::Error| {
        crate::Error::Nft(format!(
            "service rules ({} operations on ip {table}) over netlink: {e}",
            ops.len()
        ))
    };
    let mut nf = crate::nft_netlink::NfTables::open().map_err(failed)?;
    nf.send_batch(batch).map_err(failed)?;
    Ok(true)
}

fn map_elements(p: &ServicePort) -> Vec<(&'static str, Key, bool)> {
    // (map, key, whether it leads to the service chain)
    let has = !p.endpoints.is_empty();
    let node_has = if p.local_only {
        !p.local_endpoints.is_empty()
    } else {
        has
    };
    let mut out = Vec::new();
    if let Some(ip) = p.cluster_ip {
        let key = Key::Addr(ip, p.proto, p.port);
        out.push((if has { "service-ips" } else { "no-endpoints" }, key, has));
    }
    if let Some(np) = p.node_port {
        let key = Key::Port(p.proto, np);
        out.push((
            if node_has {
                "service-nodeports"
            } else {
                "no-endpoint-nodeports"
            },
            key,
            node_has,
        ));
    }
    for ip in &p.external_ips {
        let key = Key::Addr(*ip, p.proto, p.port);
        out.push((
            if node_has {
                "external-ips"
            } else {
                "no-endpoints"
            },
            key,
            node_has,
        ));
    }
    out
}

/// The chain of traffic from outside: node ports and external addresses.
fn node_chain(p: &ServicePort) -> String {
    format!("ext-{}", hash(&p.name))
}

fn has_outside(p: &ServicePort) -> bool {
    p.node_port.is_some() || !p.external_ips.is_empty()
}

fn masquerade() -> Verdict {
    Verdict::Jump("mark-for-masquerade".into())
}

fn add_port(out: &mut Vec<Op>, cfg: &ProxyConfig, p: &ServicePort) {
    let rule = |out: &mut Vec<Op>, chain: &str, rule: Rule| {
        out.push(Op::AddRule {
            chain: chain.to_owned(),
            rule,
        })
    };
    let svc = svc_chain(p);
    let eps: Vec<(Ipv4Addr, u16)> = p.endpoints.clone();
    for ep in &eps {
        let sep = sep_chain(p, *ep);
        if let Some(timeout) = p.affinity_timeout {
            out.push(Op::AddSet {
                name: affinity_set(p, *ep),
                timeout,
            });
        }
        out.push(Op::AddChain(sep.clone()));
        rule(out, &sep, Rule::FromAddr(ep.0, masquerade()));
        if p.affinity_timeout.is_some() {
            rule(out, &sep, Rule::Remember(affinity_set(p, *ep)));
        }
        rule(
            out,
            &sep,
            Rule::Dnat {
                proto: p.proto,
                to: ep.0,
                port: ep.1,
                comment: p.name.clone(),
            },
        );
    }
    let pick = |list: &[(Ipv4Addr, u16)]| Rule::Spread {
        chains: list.iter().map(|ep| sep_chain(p, *ep)).collect(),
        comment: p.name.clone(),
    };
    let affinity_rules = |out: &mut Vec<Op>, chain: &str, list: &[(Ipv4Addr, u16)]| {
        if p.affinity_timeout.is_some() {
            for ep in list {
                rule(
                    out,
                    chain,
                    Rule::FromSet(affinity_set(p, *ep), Verdict::Goto(sep_chain(p, *ep))),
                );
            }
        }
    };
    if !eps.is_empty() {
        out.push(Op::AddChain(svc.clone()));
        if let Some(cidr) = &cfg.cluster_cidr {
            rule(out, &svc, Rule::FromOutside(cidr.clone(), masquerade()));
        }
        affinity_rules(out, &svc, &eps);
        rule(out, &svc, pick(&eps));
    }
    if has_outside(p) {
        let node_eps = if p.local_only {
            &p.local_endpoints
        } else {
            &eps
        };
        if !node_eps.is_empty() {
            let nc = node_chain(p);
            out.push(Op::AddChain(nc.clone()));
            if !p.local_only {
                // the source must be rewritten: replies come back here
                rule(out, &nc, Rule::Always(masquerade()));
            }
            affinity_rules(out, &nc, node_eps);
            rule(out, &nc, pick(node_eps));
        }
    }
    for (map, key, live) in map_elements(p) {
        let verdict = if !live {
            Verdict::Goto("reject-chain".into())
        } else if map == "service-nodeports" || map == "external-ips" {
            Verdict::Goto(node_chain(p))
        } else {
            Verdict::Goto(svc.clone())
        };
        out.push(Op::AddElem { map, key, verdict });
    }
}

fn remove_port(out: &mut Vec<Op>, p: &ServicePort) {
    for (map, key, _) in map_elements(p) {
        out.push(Op::DelElem { map, key });
    }
    if !p.endpoints.is_empty() {
        out.push(Op::DelChain(svc_chain(p)));
    }
    let node_eps = if p.local_only {
        &p.local_endpoints
    } else {
        &p.endpoints
    };
    if has_outside(p) && !node_eps.is_empty() {
        out.push(Op::DelChain(node_chain(p)));
    }
    for ep in &p.endpoints {
        out.push(Op::DelChain(sep_chain(p, *ep)));
        if p.affinity_timeout.is_some() {
            out.push(Op::DelSet(affinity_set(p, *ep)));
        }
    }
}

/// Writes the whole table (`full`) in one transaction.
pub fn full_apply(cfg: &ProxyConfig, services: &Services) -> crate::Result<()> {
    crate::nft::apply(&full(cfg, services))
}

/// The service table of a root: its engine table's name + `-svc`, so
/// roots on one host keep apart.
pub fn table_for(cfg: &crate::NetConfig) -> String {
    format!("{}-svc", cfg.table)
}

/// The script that removes the table.
pub fn delete(cfg: &ProxyConfig) -> String {
    format!("table ip {t}\ndelete table ip {t}\n", t = cfg.table)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(name: &str, ip: [u8; 4], eps: &[[u8; 4]]) -> ServicePort {
        ServicePort {
            name: name.into(),
            cluster_ip: Some(Ipv4Addr::from(ip)),
            proto: Proto::Tcp,
            port: 80,
            node_port: None,
            affinity_timeout: None,
            local_only: false,
            endpoints: eps.iter().map(|e| (Ipv4Addr::from(*e), 8080)).collect(),
            local_endpoints: Vec::new(),
            external_ips: Vec::new(),
        }
    }

    fn cfg() -> ProxyConfig {
        ProxyConfig {
            table: "t-svc".into(),
            cluster_cidr: Some("198.18.0.0/16".into()),
        }
    }

    #[test]
    fn a_service_spreads_over_its_endpoints() {
        let mut m = Services::new();
        m.insert(
            "a".into(),
            port(
                "default/web:http",
                [198, 19, 0, 10],
                &[[198, 18, 0, 2], [198, 18, 0, 3]],
            ),
        );
        let s = full(&cfg(), &m);
        assert!(s.starts_with("table ip t-svc\ndelete table ip t-svc\ntable ip t-svc {"));
        assert!(
            s.contains("numgen random mod 2 vmap { 0 : goto sep-"),
            "{s}"
        );
        assert!(s.contains("dnat to 198.18.0.2:8080"));
        assert!(
            s.contains("add element ip t-svc service-ips { 198.19.0.10 . tcp . 80 : goto svc-")
        );
        assert!(s.contains("ip saddr != 198.18.0.0/16 jump mark-for-masquerade"));
    }

    #[test]
    fn no_endpoints_rejects() {
        let mut m = Services::new();
        m.insert(
            "a".into(),
            port("default/empty:http", [198, 19, 0, 11], &[]),
        );
        let s = full(&cfg(), &m);
        assert!(s.contains(
            "add element ip t-svc no-endpoints { 198.19.0.11 . tcp . 80 : goto reject-chain }"
        ));
        assert!(!s.contains("add chain ip t-svc svc-"));
    }

    #[test]
    fn a_diff_touches_only_what_changed() {
        let mut old = Services::new();
        for i in 0..100u8 {
            old.insert(
                format!("s{i}"),
                port(
                    &format!("default/s{i}:http"),
                    [198, 19, 1, i],
                    &[[198, 18, 0, i]],
                ),
            );
        }
        let mut new = old.clone();
        assert_eq!(diff(&cfg(), &old, &new), "");
        new.get_mut("s7")
            .unwrap()
            .endpoints
            .push((Ipv4Addr::new(198, 18, 1, 7), 8080));
        new.remove("s9");
        let d = diff(&cfg(), &old, &new);
        assert!(!d.contains("198.19.1.8 "), "{d}");
        assert!(d.contains("delete element ip t-svc service-ips { 198.19.1.9 . tcp . 80 }"));
        assert!(d.contains("numgen random mod 2"));
        // elements are deleted before their chains
        let del_el = d
            .find("delete element ip t-svc service-ips { 198.19.1.7")
            .unwrap();
        let del_chain = d
            .find(&format!("delete chain ip t-svc {}", svc_chain(&old["s7"])))
            .unwrap();
        assert!(del_el < del_chain);
    }

    #[test]
    fn node_ports_affinity_and_local_traffic() {
        let mut p = port("default/np:http", [198, 19, 0, 12], &[[198, 18, 0, 2]]);
        p.node_port = Some(30080);
        p.affinity_timeout = Some(10800);
        p.local_only = true;
        let mut m = Services::new();
        m.insert("a".into(), p);
        let s = full(&cfg(), &m);
        assert!(s.contains("flags dynamic,timeout; timeout 10800s;"));
        assert!(s.contains("update @aff-"));
        // local only, no local endpoint: node traffic is rejected
        assert!(
            s.contains(
                "add element ip t-svc no-endpoint-nodeports { tcp . 30080 : goto reject-chain }"
            ),
            "{s}"
        );
    }

    #[test]
    fn comments_cannot_break_out() {
        assert_eq!(comment("a\"b\\c\nd"), "\"abcd\"");
    }
}
