//! Bridge networking against the real kernel, as root: containers are
//! network namespaces the test makes; traffic stays on loopback and inside
//! those namespaces. Every test uses its own root, nft table, bridge names
//! and 198.18.2xx.0/24 subnets, so they run in parallel.

mod common;

use std::net::Ipv4Addr;

use berth_net::{netns, nft};
use common::*;

#[test]
fn containers_on_one_network_reach_each_other_and_leave_nothing_behind() {
    if !root_or_skip("containers_on_one_network_reach_each_other") {
        return;
    }
    let mut env = Env::new(200);
    let n = env.network("front", "198.18.202.0/24", false);
    let (a, b) = (env.netns("a"), env.netns("b"));
    let ea = env.attach("front", "aaaa", &a, vec![]);
    let eb = env.attach(&n.id[..8], "bbbb", &b, vec![]);
    assert_eq!(ea.ip, Ipv4Addr::new(198, 18, 202, 2));
    assert_eq!(eb.ip, Ipv4Addr::new(198, 18, 202, 3));
    assert_eq!(ea.mac, "02:42:c6:12:ca:02");
    assert!(link_exists(&n.bridge) && link_exists(&ea.host_veth));

    // Inside: eth0 with the address and MAC, lo up, default route via the gateway.
    let show = in_ns(&a, &["ip", "-o", "addr", "show", "eth0"]);
    let show = String::from_utf8_lossy(&show.stdout);
    assert!(show.contains("198.18.202.2/24"), "{show}");
    let link = String::from_utf8_lossy(&in_ns(&a, &["ip", "-o", "link", "show", "eth0"]).stdout)
        .into_owned();
    assert!(
        link.contains("02:42:c6:12:ca:02") && link.contains("UP"),
        "{link}"
    );
    let route = String::from_utf8_lossy(&in_ns(&a, &["ip", "route"]).stdout).into_owned();
    assert!(
        route.contains("default via 198.18.202.1 dev eth0"),
        "{route}"
    );
    assert!(ping(&a, Ipv4Addr::new(127, 0, 0, 1)), "lo is down");

    assert!(ping(&a, eb.ip), "a cannot reach b");
    assert!(ping(&b, ea.ip), "b cannot reach a");
    assert!(ping(&a, n.gateway), "a cannot reach its gateway");

    // Endpoints and allocations are visible to any reader of the root.
    let other = berth_net::Net::with_config(env.dir.path(), env.net.config().clone()).unwrap();
    assert_eq!(other.endpoints("front").unwrap().len(), 2);
    assert_eq!(other.allocations("front").unwrap().len(), 2);

    // A network with endpoints cannot be removed.
    let e = env.net.remove_network("front").unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "error while removing network: network front id {} has active endpoints",
            n.id
        )
    );

    env.net.detach("front", &ea.container_id).unwrap();
    env.net.detach("front", &ea.container_id).unwrap(); // idempotent
    env.net.detach_all(&eb.container_id).unwrap();
    assert!(!link_exists(&ea.host_veth) && !link_exists(&eb.host_veth));
    assert!(env.net.endpoints("front").unwrap().is_empty());
    assert!(env.net.allocations("front").unwrap().is_empty());
    let rules = nft::list_table(&env.net.config().table).unwrap().unwrap();
    assert!(!rules.contains("198.18.202.2"), "{rules}");

    env.net.remove_network("front").unwrap();
    assert!(!link_exists(&n.bridge), "bridge left behind");
    assert!(env.net.network("front").is_err());
    let rules = nft::list_table(&env.net.config().table).unwrap().unwrap();
    assert!(!rules.contains(&n.bridge), "{rules}");

    netns::remove(&a).unwrap();
    netns::remove(&b).unwrap();
    assert!(!netns::is_mounted(&a) && !a.exists());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(env.dir.path().to_str().unwrap()),
        "mount left behind"
    );

    env.net.teardown().unwrap();
    assert_eq!(nft::list_table(&env.net.config().table).unwrap(), None);
    assert!(host_links(&format!("bd{}", env.tag)).is_empty());
}

#[test]
fn published_ports_reach_the_container_from_loopback_gateway_and_hairpin() {
    if !root_or_skip("published_ports") {
        return;
    }
    let mut env = Env::new(204);
    let (a, b) = (env.netns("a"), env.netns("b"));
    let hp = free_port();
    let lo_port = free_port();
    // The default `bridge` network, made on first use.
    let ea = env.attach(
        "bridge",
        "web",
        &a,
        vec![
            tcp(None, hp, 80),
            tcp(Some("127.0.0.1"), lo_port, 80),
            tcp(None, 0, 80),
        ],
    );
    let eb = env.attach("bridge", "client", &b, vec![]);
    assert_eq!(ea.ip, Ipv4Addr::new(198, 18, 204, 2));
    let eph = ea.ports[2].host_port;
    assert!((32768..=60999).contains(&eph), "{eph}");
    env.http_server(&a, 80, "hello from a\n");

    let gw = "198.18.204.1";
    for addr in [
        format!("127.0.0.1:{hp}"),
        format!("{gw}:{hp}"),
        format!("127.0.0.1:{lo_port}"),
        format!("127.0.0.1:{eph}"),
    ] {
        let body = http_get(&addr).unwrap_or_else(|e| panic!("GET {addr}: {e}"));
        assert!(body.contains("hello from a\n"), "{addr}: {body}");
    }
    // Bound to 127.0.0.1 only: not published on the gateway address.
    assert!(http_get(&format!("{gw}:{lo_port}")).is_err());

    // Hairpin: the container reaches its own published port via the host.
    let own = wget_in(&a, gw, hp);
    assert_eq!(own.as_deref(), Some("hello from a\n"), "hairpin failed");
    // A neighbour on the same bridge too.
    let nb = wget_in(&b, gw, hp);
    assert_eq!(
        nb.as_deref(),
        Some("hello from a\n"),
        "neighbour via gateway failed"
    );

    // The second claim on the port fails like docker, and leaves nothing.
    let c = env.netns("c");
    let e = env
        .net
        .attach("bridge", &request("cccc", &c, vec![tcp(None, hp, 81)]))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("Bind for 0.0.0.0:{hp} failed: port is already allocated")
    );
    let e = env
        .net
        .attach(
            "bridge",
            &request("cccc", &c, vec![tcp(Some("127.0.0.1"), lo_port, 81)]),
        )
        .unwrap_err();
    assert!(e.to_string().contains("already allocated"), "{e}");
    assert_eq!(env.net.allocations("bridge").unwrap().len(), 2);
    assert_eq!(env.net.endpoints("bridge").unwrap().len(), 2);
    let in_c = String::from_utf8_lossy(&in_ns(&c, &["ip", "-o", "link"]).stdout).into_owned();
    assert!(!in_c.contains("eth0"), "{in_c}");

    // A port some host process holds is refused too.
    let held = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let held_port = held.local_addr().unwrap().port();
    let e = env
        .net
        .attach(
            "bridge",
            &request("cccc", &c, vec![tcp(None, held_port, 81)]),
        )
        .unwrap_err();
    assert!(e.to_string().contains("address already in use"), "{e}");
    drop(held);

    // Detach removes the DNAT rules.
    env.net.detach("bridge", &ea.container_id).unwrap();
    let rules = nft::list_table(&env.net.config().table).unwrap().unwrap();
    assert!(!rules.contains("dnat to"), "{rules}");
    assert!(http_get(&format!("127.0.0.1:{hp}")).is_err());
    env.net.detach_all(&eb.container_id).unwrap();
    assert!(env.net.allocations("bridge").unwrap().is_empty());
    // The default network cannot be removed.
    let e = env.net.remove_network("bridge").unwrap_err();
    assert!(e.to_string().contains("pre-defined"), "{e}");
}

#[test]
fn networks_are_isolated_from_each_other() {
    if !root_or_skip("networks_are_isolated") {
        return;
    }
    let mut env = Env::new(206);
    env.network("red", "198.18.207.0/24", false);
    env.network("blue", "198.18.208.0/24", false);
    let (r, b, b2) = (env.netns("r"), env.netns("b"), env.netns("b2"));
    let er = env.attach("red", "red1", &r, vec![]);
    let hp = free_port();
    let eb = env.attach("blue", "blue1", &b, vec![tcp(None, hp, 80)]);
    let eb2 = env.attach("blue", "blue2", &b2, vec![]);
    env.http_server(&b, 80, "blue web");

    assert!(ping(&b2, eb.ip), "same network must work");
    assert!(!ping(&r, eb.ip), "red reached blue directly");
    assert!(!ping(&b, er.ip), "blue reached red directly");
    assert!(wget_in(&r, &eb.ip.to_string(), 80).is_none());
    // Published ports stay reachable from other networks through the host.
    assert_eq!(wget_in(&r, "198.18.207.1", hp).as_deref(), Some("blue web"));
    // Each container still reaches the host through its own gateway.
    assert!(ping(&r, Ipv4Addr::new(198, 18, 207, 1)));
    assert!(ping(&b2, eb2.gateway));
}

#[test]
fn internal_networks_have_no_way_out() {
    if !root_or_skip("internal_networks") {
        return;
    }
    let mut env = Env::new(210);
    env.network("vault", "198.18.211.0/24", true);
    env.network("open", "198.18.212.0/24", false);
    let (v1, v2, o) = (env.netns("v1"), env.netns("v2"), env.netns("o"));
    let e1 = env.attach("vault", "vault1", &v1, vec![tcp(None, free_port(), 80)]);
    let e2 = env.attach("vault", "vault2", &v2, vec![]);
    let eo = env.attach("open", "open1", &o, vec![]);
    let route = String::from_utf8_lossy(&in_ns(&v1, &["ip", "route"]).stdout).into_owned();
    assert!(!route.contains("default"), "{route}");
    assert!(ping(&v1, e2.ip), "inside the internal network must work");
    assert!(!ping(&o, e1.ip), "open reached internal");
    let rules = nft::list_table(&env.net.config().table).unwrap().unwrap();
    assert!(
        !rules.contains("dnat to"),
        "internal networks publish nothing: {rules}"
    );
    assert!(
        !rules.contains("ip saddr 198.18.211.0/24 oifname"),
        "{rules}"
    );
    drop(eo);
}

#[test]
fn detach_works_after_the_namespace_is_gone() {
    if !root_or_skip("detach_after_netns_gone") {
        return;
    }
    let mut env = Env::new(214);
    env.network("gone", "198.18.215.0/24", false);
    let a = env.netns("a");
    let ep = env.attach("gone", "ghost", &a, vec![tcp(None, free_port(), 80)]);
    netns::remove(&a).unwrap();
    // The namespace dies with its last reference; its veth pair with it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while link_exists(&ep.host_veth) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    env.net.detach_all(&ep.container_id).unwrap();
    env.net.detach_all(&ep.container_id).unwrap();
    assert!(!link_exists(&ep.host_veth));
    assert!(env.net.endpoints("gone").unwrap().is_empty());
    assert!(env.net.allocations("gone").unwrap().is_empty());
    let rules = nft::list_table(&env.net.config().table).unwrap().unwrap();
    assert!(!rules.contains("dnat to"), "{rules}");
    env.net.remove_network("gone").unwrap();

    // Attaching to a namespace that does not exist fails cleanly.
    env.network("gone2", "198.18.216.0/24", false);
    let e = env
        .net
        .attach(
            "gone2",
            &request("nons", &env.dir.path().join("nope"), vec![]),
        )
        .unwrap_err();
    assert!(e.to_string().contains("does not exist"), "{e}");
    assert!(env.net.endpoints("gone2").unwrap().is_empty());
    assert!(env.net.allocations("gone2").unwrap().is_empty());
}

#[test]
fn requested_addresses_and_concurrent_attaches() {
    if !root_or_skip("requested_addresses") {
        return;
    }
    let mut env = Env::new(218);
    env.network("many", "198.18.219.0/24", false);
    let fixed = env.netns("fixed");
    let mut req = request("fixed", &fixed, vec![]);
    req.ip = Some(Ipv4Addr::new(198, 18, 219, 50));
    let ep = env.net.attach("many", &req).unwrap();
    assert_eq!(ep.ip, Ipv4Addr::new(198, 18, 219, 50));
    let other = env.netns("other");
    let mut req2 = request("other", &other, vec![]);
    req2.ip = Some(Ipv4Addr::new(198, 18, 219, 50));
    let e = env.net.attach("many", &req2).unwrap_err();
    assert!(e.to_string().contains("already in use"), "{e}");
    req2.ip = Some(Ipv4Addr::new(198, 18, 220, 5));
    let e = env.net.attach("many", &req2).unwrap_err();
    assert!(e.to_string().contains("does not belong"), "{e}");
    let e = env
        .net
        .attach("bridge", &{
            let mut r = request("other", &other, vec![]);
            r.ip = Some(Ipv4Addr::new(198, 18, 218, 9));
            r
        })
        .unwrap_err();
    assert!(e.to_string().contains("user defined networks only"), "{e}");

    // Several "processes" (each its own Net, its own lock fd) at once.
    let nss: Vec<_> = (0..4).map(|i| env.netns(&format!("p{i}"))).collect();
    let eps: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = nss
            .iter()
            .enumerate()
            .map(|(i, ns)| {
                let cfg = env.net.config().clone();
                let root = env.dir.path().to_path_buf();
                s.spawn(move || {
                    let net = berth_net::Net::with_config(root, cfg).unwrap();
                    net.attach("many", &request(&format!("p{i}"), ns, vec![]))
                        .unwrap()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut ips: Vec<_> = eps.iter().map(|e| e.ip).collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 4);
    assert!(ping(&nss[0], eps[3].ip));
    // A second attach of the same container to the same network is refused.
    let e = env
        .net
        .attach("many", &request("p0", &nss[0], vec![]))
        .unwrap_err();
    assert!(
        e.to_string().contains("already exists in network many"),
        "{e}"
    );
}

/// `nft -a list table ip TABLE` split into the table's handle line and the
/// rest without rule handles (those differ between two equal tables).
fn listing(table: &str) -> (String, String) {
    let out = std::process::Command::new("/usr/sbin/nft")
        .args(["-a", "list", "table", "ip", table])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let first = text.lines().next().unwrap_or_default().to_string();
    let rest: Vec<String> = text
        .lines()
        .skip(1)
        .map(|l| match l.find(" # handle ") {
            Some(i) => l[..i].to_string(),
            None => l.to_string(),
        })
        .collect();
    (first, rest.join("\n"))
}

#[test]
fn published_rules_change_in_place_and_equal_a_full_replace() {
    if !root_or_skip("published_rules_change_in_place") {
        return;
    }
    let mut env = Env::new(226);
    let table = env.net.config().table.clone();
    let (a, b) = (env.netns("a"), env.netns("b"));
    let (p1, p2, p3) = (free_port(), free_port(), free_port());
    let ea = env.attach("bridge", "pa", &a, vec![tcp(None, p1, 80)]);
    let (made, _) = listing(&table);
    assert!(made.contains("# handle "), "{made}");
    let eb = env.attach(
        "bridge",
        "pb",
        &b,
        vec![tcp(Some("127.0.0.1"), p2, 81), {
            let mut u = tcp(None, p3, 53);
            u.proto = berth_net::Proto::Udp;
            u
        }],
    );
    // The second attach changed the published rules only: the table is the
    // one the first made (same handle), holding both containers' rules.
    let (handle, fast) = listing(&table);
    assert_eq!(handle, made, "the table was replaced");
    for want in [
        format!("tcp dport {p1} dnat to {}:80 comment \"pa00000", ea.ip),
        format!("ip daddr 127.0.0.1 tcp dport {p2} dnat to {}:81", eb.ip),
        format!("udp dport {p3} dnat to {}:53", eb.ip),
    ] {
        assert!(fast.contains(&want), "{want} missing:\n{fast}");
    }
    // They work ...
    env.http_server(&b, 81, "via in-place rules");
    let got = http_get(&format!("127.0.0.1:{p2}")).unwrap_or_default();
    assert!(got.ends_with("\r\n\r\nvia in-place rules"), "{got}");
    // ... and read exactly as the table nft makes from the full compile.
    nft::apply(&env.net.ruleset().unwrap()).unwrap();
    let (replaced, full) = listing(&table);
    assert_ne!(replaced, made);
    assert_eq!(fast, full);

    // Detach: in place again, the same as a full compile.
    env.net.detach("bridge", &eb.container_id).unwrap();
    let (h2, fast) = listing(&table);
    assert_eq!(h2, replaced);
    assert!(!fast.contains(&eb.ip.to_string()), "{fast}");
    nft::apply(&env.net.ruleset().unwrap()).unwrap();
    assert_eq!(listing(&table).1, fast);

    // A table that is not ours (no matching comment) or gone is replaced
    // whole by the next change.
    nft::apply(&format!(
        "table ip {table} {{}}\ndelete table ip {table}\ntable ip {table} {{\n\tchain published {{\n\t}}\n}}\n"
    ))
    .unwrap();
    env.net.detach_all(&ea.container_id).unwrap();
    let (_, after) = listing(&table);
    assert!(after.contains("chain forward"), "{after}");
    nft::apply(&berth_net::rules::delete_table(env.net.config())).unwrap();
    env.attach("bridge", "pb", &b, vec![tcp(None, p1, 80)]);
    let (_, after) = listing(&table);
    assert!(after.contains(&format!("tcp dport {p1} dnat")), "{after}");
}

#[test]
fn a_released_run_leaves_its_veth_to_the_namespace_and_keeps_its_address_till_then() {
    if !root_or_skip("released_runs") {
        return;
    }
    let mut env = Env::new(230);
    env.network("rel", "198.18.231.0/24", false);
    let table = env.net.config().table.clone();
    let a = env.netns("a");
    let hp = free_port();
    let ea = env.attach("rel", "rela", &a, vec![tcp(None, hp, 80)]);
    // Something else holds the namespace: its veth pair outlives the release.
    let holder = std::fs::File::open(&a).unwrap();
    env.net.release(&ea.container_id, &a).unwrap();
    assert!(!netns::is_mounted(&a) && !a.exists());
    assert!(env.net.endpoints("rel").unwrap().is_empty());
    assert!(
        env.net
            .container_endpoints(&ea.container_id)
            .unwrap()
            .is_empty()
    );
    let rules = nft::list_table(&table).unwrap().unwrap();
    assert!(!rules.contains("dnat to"), "{rules}");
    assert!(link_exists(&ea.host_veth));
    // The address stays taken while a device with it may be on the bridge;
    // the host port is free at once.
    let owners: Vec<_> = env
        .net
        .allocations("rel")
        .unwrap()
        .into_iter()
        .map(|a| (a.ip, a.owner))
        .collect();
    assert_eq!(owners, [(ea.ip, ea.container_id.clone())]);
    let b = env.netns("b");
    let eb = env.attach("rel", "relb", &b, vec![tcp(None, hp, 80)]);
    assert_ne!(eb.ip, ea.ip);
    // Asking for that address finishes the parked endpoint first.
    let c = env.netns("c");
    let mut req = request("relc", &c, vec![]);
    req.ip = Some(ea.ip);
    let ec = env.net.attach("rel", &req).unwrap();
    assert_eq!(ec.ip, ea.ip);
    assert!(!link_exists(&ea.host_veth));
    drop(holder);

    // With nobody holding it, the namespace's end deletes the veth pair; the
    // next attach gives the address back.
    env.net.release(&eb.container_id, &b).unwrap();
    env.net.release(&eb.container_id, &b).unwrap(); // idempotent
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while link_exists(&eb.host_veth) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(!link_exists(&eb.host_veth), "the namespace kept its veth");
    let d = env.netns("d");
    let ed = env.attach("rel", "reld", &d, vec![]);
    assert_eq!(ed.ip, eb.ip, "the address was not given back");
    assert!(
        env.net
            .allocations("rel")
            .unwrap()
            .iter()
            .all(|a| a.owner != eb.container_id)
    );

    // detach_all finishes a container's parked endpoints at once.
    let held = std::fs::File::open(&d).unwrap();
    env.net.release(&ed.container_id, &d).unwrap();
    assert!(link_exists(&ed.host_veth));
    env.net.detach_all(&ed.container_id).unwrap();
    assert!(!link_exists(&ed.host_veth));
    assert!(
        env.net
            .allocations("rel")
            .unwrap()
            .iter()
            .all(|a| a.owner != ed.container_id)
    );
    drop(held);

    // Removing the network finishes them too.
    let held = std::fs::File::open(&c).unwrap();
    env.net.release(&ec.container_id, &c).unwrap();
    assert!(link_exists(&ec.host_veth));
    env.net.remove_network("rel").unwrap();
    assert!(!link_exists(&ec.host_veth));
    drop(held);
}

#[test]
fn a_failed_in_place_change_falls_back_to_a_full_replace() {
    if !root_or_skip("failed_in_place_change") {
        return;
    }
    let env = Env::new(234);
    let table = env.net.config().table.clone();
    let mut nf = berth_net::nft_netlink::NfTables::open().unwrap();
    assert_eq!(nf.table_comment(&table).unwrap(), None);
    env.net.apply_rules().unwrap();
    let script = env.net.ruleset().unwrap();
    let tag = script
        .lines()
        .find_map(|l| l.trim().strip_prefix("comment \""))
        .and_then(|l| l.strip_suffix('"'))
        .unwrap()
        .to_string();
    assert_eq!(nf.table_comment(&table).unwrap().as_deref(), Some(&*tag));
    // The kernel refuses a batch for a chain that does not exist; nothing
    // hangs, the error is the kernel's.
    let e = nf.replace_rules(&table, "nochain", &[]).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "{e}");
    // A table that carries our comment but lacks the published chain: the
    // in-place change fails and the whole table is replaced instead.
    nft::apply(&format!(
        "table ip {table} {{}}\ndelete table ip {table}\ntable ip {table} {{\n\tcomment \"{tag}\"\n\tchain other {{\n\t}}\n}}\n"
    ))
    .unwrap();
    env.net.apply_rules().unwrap();
    let (_, after) = listing(&table);
    assert!(
        after.contains("chain published") && after.contains("chain forward"),
        "{after}"
    );
    assert!(!after.contains("chain other"), "{after}");
}
