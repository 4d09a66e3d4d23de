//! The nftables rule-set compiler: networks and endpoints in, `nft -f`
//! script out. Pure; [`crate::nft`] applies the result.
//!
//! One table (family `ip`, named by [`NetConfig::table`]) holds all of a
//! root's rules and is replaced whole in one transaction, so the kernel
//! never sees a half-updated set:
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

use std::fmt::Write;

use crate::config::NetConfig;
use crate::endpoint::Endpoint;
use crate::network::Network;

/// Compiles the whole table for `networks` and their `endpoints`.
///
/// The script first creates the table (so the delete that follows cannot
/// fail), deletes it, then defines it anew: `nft -f` runs all of it as one
/// atomic transaction.
pub fn compile(cfg: &NetConfig, networks: &[Network], endpoints: &[Endpoint]) -> String {
    let t = &cfg.table;
    let mut s = String::new();
    let _ = writeln!(s, "table ip {t} {{}}");
    let _ = writeln!(s, "delete table ip {t}");
    let _ = writeln!(s, "table ip {t} {{");

    // nat: published ports.
    // nft 1.0.6 accepts the `dstnat` keyword only in prerouting; -100 is
    // its value.
    for (chain, prio) in [("prerouting", "dstnat"), ("output", "-100")] {
        let _ = writeln!(s, "\tchain {chain} {{");
        let _ = writeln!(
            s,
            "\t\ttype nat hook {chain} priority {prio}; policy accept;"
        );
        let _ = writeln!(s, "\t\tfib daddr type local jump published");
        let _ = writeln!(s, "\t}}");
    }
    let _ = writeln!(s, "\tchain published {{");
    for ep in endpoints {
        let Some(net) = networks.iter().find(|n| n.id == ep.network_id) else {
            continue;
        };
        if net.internal {
            continue;
        }
        for p in &ep.ports {
            let daddr = if p.host_ip.is_unspecified() {
                String::new()
            } else {
                format!("ip daddr {} ", p.host_ip)
            };
            let _ = writeln!(
                s,
                "\t\t{daddr}{proto} dport {hp} dnat to {ip}:{cp} comment \"{cid}\"",
                proto = p.proto,
                hp = p.host_port,
                ip = ep.ip,
                cp = p.container_port,
                cid = short(&ep.container_id),
            );
        }
    }
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
    let _ = writeln!(s, "}}");
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

fn short(id: &str) -> &str {
    let end = id.char_indices().nth(12).map_or(id.len(), |(i, _)| i);
    &id[..end]
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
        assert!(s.starts_with("table ip tbl {}\ndelete table ip tbl\ntable ip tbl {\n"));
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
        let s = compile(&cfg(), &[d, a, i], &eps);
        let expected = r#"table ip tbl {}
delete table ip tbl
table ip tbl {
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
"#;
        assert_eq!(s, expected, "got:\n{s}");
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
}
