//! The nftables rule-set compiler: networks and endpoints in, a
//! [`Ruleset`] out. Pure; [`crate::nft`] applies the result.
//!
//! One table (family `ip`, named by [`NetConfig::table`]) holds all of a
//! root's rules:
//!
//! - `prerouting`/`output` (nat): packets to a local address jump to
//!   `published`, which DNATs each published port to its container (the
//!   output hook covers connections from the host itself, 127.0.0.1
//!   included).
//! - `postrouting` (nat): masquerade a network's traffic leaving through any
//!   other interface (not for internal networks); masquerade DNATed traffic
//!   that goes back into the bridge it came from (hairpin: a container
//!   reaching its own or a neighbour's published port through a host
//!   address), and 127.0.0.0/8 sources going into a bridge (host
//!   connections to `127.0.0.1:PORT`; needs `route_localnet=1` on the
//!   bridge).
//! - `forward` (filter): internal networks exchange nothing with other
//!   interfaces; established flows and published ports pass; different
//!   networks cannot reach each other (docker's isolation); the rest of a
//!   bridge's traffic is accepted.
//!
//! The set has two parts that change at different rates. The *base* —
//! every chain, and every rule but the DNATs — depends on the networks
//! only; the `published` chain's rules ([`Dnat`]) change with every
//! container that publishes a port. The table carries the base's
//! fingerprint ([`Ruleset::tag`]) as its comment, so an applier can tell
//! whether the kernel's base is current and then only replace the
//! `published` chain's rules (no hook is touched) instead of the whole
//! table. [`Ruleset::script`] is the whole table for `nft -f`, replaced in
//! one transaction.

use std::fmt::Write;
use std::net::Ipv4Addr;

use crate::config::NetConfig;
use crate::endpoint::Endpoint;
use crate::network::Network;
use crate::ports::Proto;

/// The chain holding the DNAT rules of published ports.
pub const PUBLISHED_CHAIN: &str = "published";

/// One published port: a rule of the `published` chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dnat {
    /// Only packets to this host address (all local addresses when `None`).
    pub host_ip: Option<Ipv4Addr>,
    /// `tcp` or `udp`.
    pub proto: Proto,
    /// The host port.
    pub host_port: u16,
    /// The container's address.
    pub to: Ipv4Addr,
    /// The port in the container.
    pub to_port: u16,
    /// The rule's comment: the container's short id.
    pub comment: String,
}

impl Dnat {
    /// The rule in `nft` syntax.
    pub fn to_nft(&self) -> String {
        let daddr = match self.host_ip {
            Some(ip) => format!("ip daddr {ip} "),
            None => String::new(),
        };
        format!(
            "{daddr}{proto} dport {hp} dnat to {to}:{cp} comment \"{c}\"",
            proto = self.proto,
            hp = self.host_port,
            to = self.to,
            cp = self.to_port,
            c = self.comment,
        )
    }
}

/// A compiled rule set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ruleset {
    /// The table's name (family `ip`).
    pub table: String,
    /// The DNAT rules of the `published` chain, in order.
    pub published: Vec<Dnat>,
    /// The table's chains in `nft` syntax, with `@PUBLISHED@` where the
    /// DNAT rules go.
    body: String,
}

const PUBLISHED_MARK: &str = "\t\t@PUBLISHED@\n";

impl Ruleset {
    /// The base's fingerprint, kept as the table's comment: FNV-1a over the
    /// chains without the DNAT rules.
    pub fn tag(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.table.bytes().chain([0]).chain(self.body.bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("berth:{h:016x}")
    }

    /// The `published` chain's rules in `nft` syntax, one a line (tab
    /// indented as in [`Ruleset::script`]).
    pub fn published_nft(&self) -> String {
        let mut s = String::new();
        for d in &self.published {
            let _ = writeln!(s, "\t\t{}", d.to_nft());
        }
        s
    }

    /// The whole table for `nft -f`: it first creates the table (so the
    /// delete that follows cannot fail), deletes it, then defines it anew,
    /// all in one atomic transaction.
    pub fn script(&self) -> String {
        let t = &self.table;
        format!(
            "table ip {t} {{}}\ndelete table ip {t}\ntable ip {t} {{\n\tcomment \"{tag}\"\n{body}}}\n",
            tag = self.tag(),
            body = self.body.replace(PUBLISHED_MARK, &self.published_nft()),
        )
    }
}

/// Compiles the rule set of `networks` and their `endpoints`.
pub fn build(cfg: &NetConfig, networks: &[Network], endpoints: &[Endpoint]) -> Ruleset {
    Ruleset {
        table: cfg.table.clone(),
        published: published(networks, endpoints),
        body: body(networks),
    }
}

/// The whole table's `nft -f` script ([`Ruleset::script`]).
pub fn compile(cfg: &NetConfig, networks: &[Network], endpoints: &[Endpoint]) -> String {
    build(cfg, networks, endpoints).script()
}

/// The DNAT rules: each published port of each endpoint on a network that
/// is not internal.
fn published(networks: &[Network], endpoints: &[Endpoint]) -> Vec<Dnat> {
    let mut out = Vec::new();
    for ep in endpoints {
        let Some(net) = networks.iter().find(|n| n.id == ep.network_id) else {
            continue;
        };
        if net.internal {
            continue;
        }
        for p in &ep.ports {
            out.push(Dnat {
                host_ip: (!p.host_ip.is_unspecified()).then_some(p.host_ip),
                proto: p.proto,
                host_port: p.host_port,
                to: ep.ip,
                to_port: p.container_port,
                comment: berth_types::short_id(&ep.container_id).to_string(),
            });
        }
    }
    out
}

/// The chains, with [`PUBLISHED_MARK`] in place of the DNAT rules.
fn body(networks: &[Network]) -> String {
    let mut s = String::new();

    // nat: published ports.
    // nft 1.0.6 accepts the `dstnat` keyword only in prerouting; -100 is
    // its value.
    for (chain, prio) in [("prerouting", "dstnat"), ("output", "-100")] {
        let _ = writeln!(s, "\tchain {chain} {{");
        let _ = writeln!(
            s,
            "\t\ttype nat hook {chain} priority {prio}; policy accept;"
        );
        let _ = writeln!(s, "\t\tfib daddr type local jump {PUBLISHED_CHAIN}");
        let _ = writeln!(s, "\t}}");
    }
    let _ = writeln!(s, "\tchain {PUBLISHED_CHAIN} {{");
    s.push_str(PUBLISHED_MARK);
    let _ = writeln!(s, "\t}}");

    // nat: source rewriting.
    let _ = writeln!(s, "\tchain postrouting {{");
    let _ = writeln!(
        s,
        "\t\ttype nat hook postrouting priority srcnat; policy accept;"
    );
    for n in networks {
        let br = quote(&n.bridge);
        if !n.internal {
            let _ = writeln!(
                s,
                "\t\toifname {br} ip saddr {} ct status dnat masquerade",
                n.subnet
            );
            let _ = writeln!(s, "\t\toifname {br} ip saddr 127.0.0.0/8 masquerade");
        }
        if n.masquerade() {
            let _ = writeln!(s, "\t\tip saddr {} oifname != {br} masquerade", n.subnet);
        }
    }
    let _ = writeln!(s, "\t}}");

    // filter: isolation.
    let _ = writeln!(s, "\tchain forward {{");
    let _ = writeln!(
        s,
        "\t\ttype filter hook forward priority filter; policy accept;"
    );
    for n in networks.iter().filter(|n| n.internal) {
        let br = quote(&n.bridge);
        let _ = writeln!(s, "\t\tiifname {br} oifname != {br} drop");
        let _ = writeln!(s, "\t\toifname {br} iifname != {br} drop");
    }
    let _ = writeln!(s, "\t\tct state established,related accept");
    let _ = writeln!(s, "\t\tct status dnat accept");
    for n in networks {
        let others: Vec<String> = networks
            .iter()
            .filter(|o| o.id != n.id)
            .map(|o| quote(&o.bridge))
            .collect();
        if !others.is_empty() {
            let _ = writeln!(
                s,
                "\t\tiifname {} oifname {{ {} }} drop",
                quote(&n.bridge),
                others.join(", ")
            );
        }
    }
    for n in networks {
        let _ = writeln!(s, "\t\tiifname {} accept", quote(&n.bridge));
    }
    let _ = writeln!(s, "\t}}");
    s
}

/// The script that removes the table entirely.
pub fn delete_table(cfg: &NetConfig) -> String {
    format!("table ip {t} {{}}\ndelete table ip {t}\n", t = cfg.table)
}

/// Interface names are validated to printable ASCII without quotes or
/// backslashes, so plain quoting is enough.
fn quote(s: &str) -> String {
    format!("\"{s}\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::{ENDPOINT_SCHEMA, format_mac, mac_for};
    use crate::network::{CreateNetwork, default_network, plan};
    use crate::ports::{PortBinding, Proto};
    use std::net::Ipv4Addr;
    use std::path::PathBuf;

    fn cfg() -> NetConfig {
        NetConfig {
            table: "tbl".into(),
            default_bridge: "bd0".into(),
            default_subnet: "198.18.240.0/24".parse().unwrap(),
            ..Default::default()
        }
    }

    fn net(name: &str, subnet: &str, internal: bool, id: char, existing: &[Network]) -> Network {
        let req = CreateNetwork {
            name: name.into(),
            subnet: Some(subnet.into()),
            internal,
            ..Default::default()
        };
        plan(&cfg(), &req, existing, id.to_string().repeat(64)).unwrap()
    }

    fn ep(n: &Network, ip: &str, ports: Vec<PortBinding>) -> Endpoint {
        let ip: Ipv4Addr = ip.parse().unwrap();
        Endpoint {
            schema: ENDPOINT_SCHEMA,
            id: "e".repeat(64),
            network_id: n.id.clone(),
            network_name: n.name.clone(),
            container_id: "c0ffee".repeat(10),
            container_name: "web".into(),
            aliases: vec![],
            ip,
            prefix: n.subnet.prefix(),
            gateway: n.gateway,
            mac: format_mac(&mac_for(ip)),
            host_veth: "vethx".into(),
            interface: "eth0".into(),
            netns: PathBuf::from("/run/x"),
            ports,
            created: String::new(),
        }
    }

    fn port(ip: &str, hp: u16, cp: u16, proto: Proto) -> PortBinding {
        PortBinding {
            host_ip: ip.parse().unwrap(),
            host_port: hp,
            container_port: cp,
            proto,
        }
    }

    #[test]
    fn empty_root_still_replaces_the_table() {
        let s = compile(&cfg(), &[], &[]);
        assert!(s.starts_with(
            "table ip tbl {}\ndelete table ip tbl\ntable ip tbl {\n\tcomment \"berth:"
        ));
        assert!(s.contains("type nat hook prerouting priority dstnat; policy accept;"));
        assert!(s.contains("type nat hook output priority -100; policy accept;"));
        assert!(!s.contains("masquerade"));
        assert_eq!(
            delete_table(&cfg()),
            "table ip tbl {}\ndelete table ip tbl\n"
        );
    }

    #[test]
    fn full_rule_set() {
        let d = default_network(&cfg(), "d".repeat(64));
        let a = net("a", "198.18.241.0/24", false, 'a', &[]);
        let i = net("i", "198.18.242.0/24", true, 'b', std::slice::from_ref(&a));
        let eps = vec![
            ep(
                &d,
                "198.18.240.2",
                vec![
                    port("0.0.0.0", 8080, 80, Proto::Tcp),
                    port("127.0.0.1", 5353, 53, Proto::Udp),
                ],
            ),
            ep(
                &a,
                "198.18.241.2",
                vec![port("0.0.0.0", 9090, 90, Proto::Tcp)],
            ),
            // Internal networks publish nothing.
            ep(
                &i,
                "198.18.242.2",
                vec![port("0.0.0.0", 7070, 70, Proto::Tcp)],
            ),
        ];
        let rs = build(&cfg(), &[d, a, i], &eps);
        let s = rs.script();
        let expected = r#"table ip tbl {}
delete table ip tbl
table ip tbl {
	comment "TAG"
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		fib daddr type local jump published
	}
	chain output {
		type nat hook output priority -100; policy accept;
		fib daddr type local jump published
	}
	chain published {
		tcp dport 8080 dnat to 198.18.240.2:80 comment "c0ffeec0ffee"
		ip daddr 127.0.0.1 udp dport 5353 dnat to 198.18.240.2:53 comment "c0ffeec0ffee"
		tcp dport 9090 dnat to 198.18.241.2:90 comment "c0ffeec0ffee"
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "bd0" ip saddr 198.18.240.0/24 ct status dnat masquerade
		oifname "bd0" ip saddr 127.0.0.0/8 masquerade
		ip saddr 198.18.240.0/24 oifname != "bd0" masquerade
		oifname "br-aaaaaaaaaaaa" ip saddr 198.18.241.0/24 ct status dnat masquerade
		oifname "br-aaaaaaaaaaaa" ip saddr 127.0.0.0/8 masquerade
		ip saddr 198.18.241.0/24 oifname != "br-aaaaaaaaaaaa" masquerade
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		iifname "br-bbbbbbbbbbbb" oifname != "br-bbbbbbbbbbbb" drop
		oifname "br-bbbbbbbbbbbb" iifname != "br-bbbbbbbbbbbb" drop
		ct state established,related accept
		ct status dnat accept
		iifname "bd0" oifname { "br-aaaaaaaaaaaa", "br-bbbbbbbbbbbb" } drop
		iifname "br-aaaaaaaaaaaa" oifname { "bd0", "br-bbbbbbbbbbbb" } drop
		iifname "br-bbbbbbbbbbbb" oifname { "bd0", "br-aaaaaaaaaaaa" } drop
		iifname "bd0" accept
		iifname "br-aaaaaaaaaaaa" accept
		iifname "br-bbbbbbbbbbbb" accept
	}
}
"#
        .replace("TAG", &rs.tag());
        assert_eq!(s, expected, "got:\n{s}");
        assert_eq!(
            compile(&cfg(), &rs_nets(), &[]),
            build(&cfg(), &rs_nets(), &[]).script()
        );
    }

    #[test]
    fn masquerade_can_be_turned_off() {
        let mut a = net("a", "198.18.243.0/24", false, 'a', &[]);
        a.options
            .insert(crate::network::OPT_MASQUERADE.into(), "false".into());
        let s = compile(&cfg(), &[a], &[]);
        assert!(!s.contains("oifname != "), "{s}");
        assert!(s.contains("ct status dnat masquerade"));
    }

    #[test]
    fn endpoints_of_unknown_networks_are_ignored() {
        let a = net("a", "198.18.244.0/24", false, 'a', &[]);
        let b = net("b", "198.18.245.0/24", false, 'b', &[]);
        let e = ep(&b, "198.18.245.2", vec![port("0.0.0.0", 1, 2, Proto::Tcp)]);
        let s = compile(&cfg(), &[a], &[e]);
        assert!(!s.contains("dnat to"), "{s}");
    }

    fn rs_nets() -> Vec<Network> {
        vec![default_network(&cfg(), "d".repeat(64))]
    }

    /// A script whose `published` chain holds `rules` instead of its own:
    /// what the kernel has after the applier replaced only that chain's
    /// rules in a table made from `script`.
    fn splice(script: &str, rules: &str) -> String {
        let open = "\tchain published {\n";
        let (head, body) = script.split_once(open).unwrap();
        let (_, tail) = body.split_once("\t}\n").unwrap();
        format!("{head}{open}{rules}\t}}\n{tail}")
    }

    #[test]
    fn the_tag_follows_the_networks_not_the_published_ports() {
        let d = default_network(&cfg(), "d".repeat(64));
        let a = net("a", "198.18.241.0/24", false, 'a', &[]);
        let bare = build(&cfg(), std::slice::from_ref(&d), &[]);
        let e = ep(
            &d,
            "198.18.240.2",
            vec![port("0.0.0.0", 80, 80, Proto::Tcp)],
        );
        let publishing = build(&cfg(), std::slice::from_ref(&d), std::slice::from_ref(&e));
        assert_eq!(bare.tag(), publishing.tag());
        assert_ne!(bare.script(), publishing.script());
        // endpoints without ports change nothing at all
        let quiet = ep(&d, "198.18.240.3", vec![]);
        assert_eq!(build(&cfg(), std::slice::from_ref(&d), &[quiet]), bare);

        let two = build(&cfg(), &[d.clone(), a.clone()], &[]);
        assert_ne!(two.tag(), bare.tag());
        let mut internal = a.clone();
        internal.internal = true;
        assert_ne!(build(&cfg(), &[d.clone(), internal], &[]).tag(), two.tag());
        let other_table = NetConfig {
            table: "tbl2".into(),
            ..cfg()
        };
        assert_ne!(build(&other_table, &[d], &[]).tag(), bare.tag());
        assert!(bare.tag().starts_with("berth:") && bare.tag().len() == 22);
    }

    #[test]
    fn replacing_the_published_rules_gives_the_full_compile() {
        let d = default_network(&cfg(), "d".repeat(64));
        let a = net("a", "198.18.241.0/24", false, 'a', &[]);
        let nets = [d.clone(), a.clone()];
        let e1 = ep(
            &d,
            "198.18.240.2",
            vec![port("0.0.0.0", 8080, 80, Proto::Tcp)],
        );
        let mut e2 = ep(
            &a,
            "198.18.241.2",
            vec![
                port("127.0.0.1", 5353, 53, Proto::Udp),
                port("0.0.0.0", 9090, 90, Proto::Tcp),
            ],
        );
        e2.container_id = "beef".repeat(16);
        let e3 = ep(&d, "198.18.240.3", vec![]);
        // every sequence of attaches and detaches: the table made by a full
        // compile of the first state, then only its published rules replaced,
        // equals the full compile of the second state
        let states: Vec<Vec<Endpoint>> = vec![
            vec![],
            vec![e1.clone()],
            vec![e1.clone(), e2.clone()],
            vec![e1.clone(), e2.clone(), e3.clone()],
            vec![e2.clone(), e3.clone()],
            vec![e3],
            vec![e2],
        ];
        for before in &states {
            let old = build(&cfg(), &nets, before);
            for after in &states {
                let new = build(&cfg(), &nets, after);
                assert_eq!(old.tag(), new.tag());
                let incremental = splice(&old.script(), &new.published_nft());
                assert_eq!(incremental, new.script(), "{before:?} -> {after:?}");
            }
        }
        let new = build(&cfg(), &nets, &[e1]);
        assert_eq!(
            new.published_nft(),
            "\t\ttcp dport 8080 dnat to 198.18.240.2:80 comment \"c0ffeec0ffee\"\n"
        );
    }
}
