//! [`Net`]: the operations the engine calls, tying the on-disk state, the
//! kernel (netlink, sysctls) and the rule set together. Every change holds
//! the root's lock; reads do not need it.

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::config::{NetConfig, check_ifname};
use crate::endpoint::{self, AttachRequest, ENDPOINT_SCHEMA, Endpoint};
use crate::error::{Error, Result};
use crate::ipam;
use crate::netlink::{Netlink, is_exists};
use crate::netns;
use crate::network::{self, CreateNetwork, Network};
use crate::nft;
use crate::ports::{self, EPHEMERAL, PortBinding};
use crate::release;
use crate::rules;
use crate::store::{self, Lock};
use crate::sysctl;
use crate::timing::span;

/// The prefix length docker gives a link-local address.
const LINK_LOCAL_PREFIX: u8 = 16;

/// A root's networks. Cheap to make; holds no open resources, so any number
/// of processes may each have one for the same root.
#[derive(Clone, Debug)]
pub struct Net {
    root: PathBuf,
    cfg: NetConfig,
}

impl Net {
    /// Opens `root` with the configuration in `<root>/net.json` (or the
    /// defaults).
    pub fn open(root: impl Into<PathBuf>) -> Result<Net> {
        let root = root.into();
        let cfg = NetConfig::load(&root)?;
        Ok(Net { root, cfg })
    }

    /// Opens `root` with an explicit configuration (tests, embedders).
    pub fn with_config(root: impl Into<PathBuf>, cfg: NetConfig) -> Result<Net> {
        cfg.validate()?;
        Ok(Net {
            root: root.into(),
            cfg,
        })
    }

    /// The state root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The configuration in force.
    pub fn config(&self) -> &NetConfig {
        &self.cfg
    }

    fn lock(&self) -> Result<Lock> {
        store::lock(&self.root)
    }

    /// All networks, the default `bridge` first (created on first use).
    pub fn networks(&self) -> Result<Vec<Network>> {
        let all = network::load_all(&self.root)?;
        if all.iter().any(|n| n.default) {
            return Ok(all);
        }
        let _l = self.lock()?;
        self.networks_locked()
    }

    /// Like [`Net::networks`], for callers holding the lock.
    fn networks_locked(&self) -> Result<Vec<Network>> {
        let mut all = network::load_all(&self.root)?;
        if !all.iter().any(|n| n.default) {
            let d = network::default_network(&self.cfg, store::random_hex(32));
            network::persist_new(&self.root, &d)?;
            all.insert(0, d);
        }
        Ok(all)
    }

    /// A network by full id, name, or unique id prefix.
    pub fn network(&self, key: &str) -> Result<Network> {
        let all = self.networks()?;
        network::find(&all, key).cloned()
    }

    /// `docker network create`: records a new network. Its bridge is made
    /// when the first container attaches.
    pub fn create_network(&self, req: &CreateNetwork) -> Result<Network> {
        let _l = self.lock()?;
        let all = self.networks_locked()?;
        let n = network::plan(&self.cfg, req, &all, store::random_hex(32))?;
        network::persist_new(&self.root, &n)?;
        self.apply_rules_locked()?;
        Ok(n)
    }

    /// `docker network rm`: refuses while containers are attached; deletes
    /// the bridge and the network's rules.
    pub fn remove_network(&self, key: &str) -> Result<Network> {
        let _l = self.lock()?;
        let all = self.networks_locked()?;
        let n = network::find(&all, key)?.clone();
        self.remove_locked(&n)?;
        self.apply_rules_locked()?;
        Ok(n)
    }

    fn remove_locked(&self, n: &Network) -> Result<()> {
        if n.default {
            return Err(Error::Conflict(format!(
                "{} is a pre-defined network and cannot be removed",
                n.name
            )));
        }
        if !endpoint::load_all(&network::dir(&self.root, &n.id))?.is_empty() {
            return Err(Error::Conflict(format!(
                "error while removing network: network {} id {} has active endpoints",
                n.name, n.id
            )));
        }
        release::reap(&network::dir(&self.root, &n.id), &|_| true)?;
        let mut nl = Netlink::open().map_err(Error::io("open netlink"))?;
        nl.del_link_by_name(&n.bridge)
            .map_err(Error::io(format!("delete bridge {}", n.bridge)))?;
        network::delete(&self.root, &n.id)
    }

    /// `docker network prune`: removes every user-defined network with no
    /// endpoints that `select` accepts (label/until filters); returns them.
    pub fn prune_networks(&self, select: &dyn Fn(&Network) -> bool) -> Result<Vec<Network>> {
        let _l = self.lock()?;
        let mut removed = Vec::new();
        for n in self.networks_locked()? {
            if n.default
                || !select(&n)
                || !endpoint::load_all(&network::dir(&self.root, &n.id))?.is_empty()
            {
                continue;
            }
            self.remove_locked(&n)?;
            removed.push(n);
        }
        if !removed.is_empty() {
            self.apply_rules_locked()?;
        }
        Ok(removed)
    }

    /// The endpoints of one network.
    pub fn endpoints(&self, key: &str) -> Result<Vec<Endpoint>> {
        let n = self.network(key)?;
        endpoint::load_all(&network::dir(&self.root, &n.id))
    }

    /// Every endpoint of every network.
    pub fn all_endpoints(&self) -> Result<Vec<Endpoint>> {
        let mut out = Vec::new();
        for n in network::load_all(&self.root)? {
            out.extend(endpoint::load_all(&network::dir(&self.root, &n.id))?);
        }
        Ok(out)
    }

    /// The endpoints a container has, on any network.
    pub fn container_endpoints(&self, container_id: &str) -> Result<Vec<Endpoint>> {
        Ok(self
            .all_endpoints()?
            .into_iter()
            .filter(|e| e.container_id == container_id)
            .collect())
    }

    /// Reserves an address on a network for `owner` without attaching
    /// anything (the engine may hold an address across restarts).
    pub fn allocate_ip(
        &self,
        key: &str,
        owner: &str,
        requested: Option<Ipv4Addr>,
    ) -> Result<Ipv4Addr> {
        endpoint::check_container_id(owner)?;
        let _l = self.lock()?;
        let all = self.networks_locked()?;
        let n = network::find(&all, key)?;
        ipam::allocate(&network::dir(&self.root, &n.id), n, requested, owner)
    }

    /// Frees one address of a network.
    pub fn release_ip(&self, key: &str, ip: Ipv4Addr) -> Result<()> {
        let _l = self.lock()?;
        let all = self.networks_locked()?;
        let n = network::find(&all, key)?;
        ipam::release(&network::dir(&self.root, &n.id), ip)
    }

    /// Frees every address `owner` holds on any network; returns how many.
    pub fn release_owner(&self, owner: &str) -> Result<usize> {
        let _l = self.lock()?;
        let mut count = 0;
        for n in network::load_all(&self.root)? {
            let dir = network::dir(&self.root, &n.id);
            count += release::reap(&dir, &|p| p.ep.container_id == owner)?.len();
            count += ipam::release_owner(&dir, owner)?;
        }
        Ok(count)
    }

    /// Every address allocation of a network.
    pub fn allocations(&self, key: &str) -> Result<Vec<ipam::Allocation>> {
        let n = self.network(key)?;
        ipam::allocations(&network::dir(&self.root, &n.id))
    }

    /// Connects a container's network namespace to a network: bridge (made
    /// if missing), veth pair, address, default route, published ports.
    /// On failure nothing is left behind.
    pub fn attach(&self, key: &str, req: &AttachRequest) -> Result<Endpoint> {
        endpoint::check_container_id(&req.container_id)?;
        let interface = if req.interface.is_empty() {
            "eth0".to_string()
        } else {
            req.interface.clone()
        };
        check_ifname(&interface)?;
        let _t = span("net.attach");
        let l = span("net.attach.lock");
        let _l = self.lock()?;
        drop(l);
        let all = self.networks_locked()?;
        let net = network::find(&all, key)?.clone();
        let dir = network::dir(&self.root, &net.id);
        let ep_path = endpoint::path(&dir, &req.container_id);
        if ep_path.exists() {
            let who = if req.container_name.is_empty() {
                &req.container_id
            } else {
                &req.container_name
            };
            return Err(Error::Conflict(format!(
                "endpoint with name {who} already exists in network {}",
                net.name
            )));
        }
        if req.ip.is_some() && net.default {
            return Err(Error::Invalid(
                "user specified IP address is supported on user defined networks only".into(),
            ));
        }
        let t = span("net.attach.ipam");
        // parked endpoints whose veth is gone give their address back; one
        // that holds the address asked for is finished now
        let wanted = req.ip;
        release::reap(&dir, &|p| {
            p.age >= release::GRACE || Some(p.ep.ip) == wanted
        })?;
        let ip = match ipam::allocate(&dir, &net, req.ip, &req.container_id) {
            Err(Error::Exhausted(_)) if !release::reap(&dir, &|_| true)?.is_empty() => {
                ipam::allocate(&dir, &net, req.ip, &req.container_id)?
            }
            r => r?,
        };
        drop(t);
        // every endpoint's ports, read only when this one publishes any
        let existing: Vec<PortBinding> = if req.ports.is_empty() {
            Vec::new()
        } else {
            self.all_endpoints()?
                .into_iter()
                .flat_map(|e| e.ports)
                .collect()
        };
        let start = EPHEMERAL.0
            + (u16::from_str_radix(&store::random_hex(2), 16).unwrap_or(0)
                % (EPHEMERAL.1 - EPHEMERAL.0 + 1));
        let ports = match ports::resolve(&req.ports, &existing, ip, &ports::host_port_free, start) {
            Ok(p) => p,
            Err(e) => {
                let _ = ipam::release(&dir, ip);
                return Err(e);
            }
        };
        let mac = req.mac.unwrap_or_else(|| endpoint::mac_for(ip));
        let ep = Endpoint {
            schema: ENDPOINT_SCHEMA,
            id: store::random_hex(32),
            network_id: net.id.clone(),
            network_name: net.name.clone(),
            container_id: req.container_id.clone(),
            container_name: req.container_name.clone(),
            aliases: req.aliases.clone(),
            ip,
            prefix: net.subnet.prefix(),
            gateway: net.gateway,
            mac: endpoint::format_mac(&mac),
            host_veth: format!("veth{}", store::random_hex(4)),
            interface,
            netns: req.netns.clone(),
            ports,
            created: store::now_rfc3339(),
        };
        // The record goes first: after a crash, detach finds the veth by it.
        let t = span("net.attach.record");
        if let Err(e) = store::write_json(&ep_path, &ep) {
            let _ = ipam::release(&dir, ip);
            return Err(e);
        }
        drop(t);
        let wired = self
            .wire(&net, &ep, mac, &req.link_local)
            .and_then(|()| self.apply_rules_locked());
        if let Err(e) = wired {
            let _ = self.detach_locked(&net, &req.container_id);
            let _ = self.apply_rules_locked();
            return Err(e);
        }
        Ok(ep)
    }

    /// The kernel half of attach: `link_local` addresses go on the
    /// container's interface too (with docker's /16).
    fn wire(
        &self,
        net: &Network,
        ep: &Endpoint,
        mac: [u8; 6],
        link_local: &[Ipv4Addr],
    ) -> Result<()> {
        let ns = std::fs::File::open(&ep.netns).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::NotFound(format!(
                    "network namespace {} does not exist",
                    ep.netns.display()
                ))
            } else {
                Error::Io(format!("open network namespace {}", ep.netns.display()), e)
            }
        })?;
        let _t = span("net.wire");
        let mut nl = Netlink::open().map_err(Error::io("open netlink"))?;
        let t = span("net.wire.bridge");
        let br = ensure_bridge(&mut nl, net)?;
        drop(t);
        let t = span("net.wire.veth");
        let mtu = net.mtu();
        nl.add_veth(&ep.host_veth, br, &ep.interface, ns.as_raw_fd(), mac, mtu)
            .map_err(Error::io(format!(
                "create veth pair {} / {} in {}",
                ep.host_veth,
                ep.interface,
                ep.netns.display()
            )))?;
        let host = nl
            .link_index(&ep.host_veth)
            .map_err(Error::io("find the host veth"))?
            .ok_or_else(|| Error::NotFound(format!("veth {} vanished", ep.host_veth)))?;
        nl.set_hairpin(host)
            .map_err(Error::io(format!("set hairpin mode on {}", ep.host_veth)))?;
        nl.set_up(host)
            .map_err(Error::io(format!("bring {} up", ep.host_veth)))?;
        drop(t);
        let _t = span("net.wire.inside");
        let (ifname, ip, prefix, gw, internal) =
            (&ep.interface, ep.ip, ep.prefix, ep.gateway, net.internal);
        netns::run_in(&ep.netns, move || {
            let mut nl = Netlink::open().map_err(Error::io("open netlink in the container"))?;
            let idx = nl
                .link_index(ifname)
                .map_err(Error::io(format!("find {ifname}")))?
                .ok_or_else(|| Error::NotFound(format!("{ifname} missing in the container")))?;
            nl.add_address(idx, ip, prefix)
                .map_err(Error::io(format!("add {ip}/{prefix} to {ifname}")))?;
            for ll in link_local {
                nl.add_address(idx, *ll, LINK_LOCAL_PREFIX)
                    .map_err(Error::io(format!(
                        "add the link-local address {ll}/{LINK_LOCAL_PREFIX} to {ifname}"
                    )))?;
            }
            nl.set_up(idx)
                .map_err(Error::io(format!("bring {ifname} up")))?;
            netns::loopback_up()?;
            if !internal {
                match nl.add_default_route(gw) {
                    Ok(()) => {}
                    // Another network already gave the container its default route.
                    Err(e) if is_exists(&e) => {}
                    Err(e) => return Err(Error::Io(format!("add default route via {gw}"), e)),
                }
            }
            Ok(())
        })
    }

    /// Disconnects a container from a network: deletes the veth, frees the
    /// address, removes the endpoint and its published ports. Idempotent;
    /// works when the namespace is already gone.
    pub fn detach(&self, key: &str, container_id: &str) -> Result<()> {
        endpoint::check_container_id(container_id)?;
        let _l = self.lock()?;
        let all = self.networks_locked()?;
        let net = network::find(&all, key)?.clone();
        self.detach_locked(&net, container_id)?;
        self.apply_rules_locked()
    }

    /// Disconnects a container from every network and frees every address
    /// it holds (the engine's cleanup at removal or after a crash).
    pub fn detach_all(&self, container_id: &str) -> Result<()> {
        endpoint::check_container_id(container_id)?;
        let _t = span("net.detach_all");
        let _l = self.lock()?;
        let mut first_err = None;
        for net in network::load_all(&self.root)? {
            if let Err(e) = self.detach_locked(&net, container_id) {
                first_err.get_or_insert(e);
            }
        }
        self.apply_rules_locked()?;
        first_err.map_or(Ok(()), Err)
    }

    fn detach_locked(&self, net: &Network, container_id: &str) -> Result<()> {
        let dir = network::dir(&self.root, &net.id);
        let path = endpoint::path(&dir, container_id);
        if let Some(ep) = store::read_json::<Endpoint>(&path)? {
            let _t = span("net.detach.veth");
            let mut nl = Netlink::open().map_err(Error::io("open netlink"))?;
            nl.del_link_by_name(&ep.host_veth)
                .map_err(Error::io(format!("delete veth {}", ep.host_veth)))?;
        }
        release::reap(&dir, &|p| p.ep.container_id == container_id)?;
        ipam::release_owner(&dir, container_id)?;
        store::remove_file(&path)
    }

    /// Ends a container's run: takes it off every network and removes its
    /// network namespace `netns` (made by [`netns::create`]), with the
    /// addresses it holds; returns the endpoints it took away. Idempotent;
    /// works after a crash and when the namespace is already gone.
    ///
    /// Unlike [`Net::detach_all`] it does not wait for the kernel to delete
    /// the veth pairs in that namespace: the endpoints are parked (see
    /// [`crate::release`]) and the namespace's end takes the veths with it,
    /// off the caller's path. An endpoint's address stays allocated until
    /// its veth is gone.
    pub fn release(&self, container_id: &str, netns: &Path) -> Result<Vec<Endpoint>> {
        endpoint::check_container_id(container_id)?;
        let _t = span("net.release");
        let _l = self.lock()?;
        let mut first_err = None;
        let mut changed = false;
        let mut released = Vec::new();
        for net in network::load_all(&self.root)? {
            match self.release_locked(&net, container_id, netns) {
                Ok((c, ep)) => {
                    changed |= c;
                    released.extend(ep);
                }
                Err(e) => {
                    changed = true;
                    first_err.get_or_insert(e);
                }
            }
        }
        // nothing released (the usual check for leftovers before a run):
        // the rules cannot have changed
        if changed && let Err(e) = self.apply_rules_locked() {
            first_err.get_or_insert(e);
        }
        if let Err(e) = netns::remove(netns) {
            first_err.get_or_insert(e);
        }
        first_err.map_or(Ok(released), Err)
    }

    /// Whether anything changed, and the endpoint taken away.
    fn release_locked(
        &self,
        net: &Network,
        container_id: &str,
        netns: &Path,
    ) -> Result<(bool, Option<Endpoint>)> {
        let dir = network::dir(&self.root, &net.id);
        let path = endpoint::path(&dir, container_id);
        let mut changed = false;
        let found = store::read_json::<Endpoint>(&path)?;
        if let Some(ep) = &found {
            changed = true;
            if ep.netns == netns {
                release::park(&dir, &path, ep)?;
            } else {
                // its veth does not go away with this namespace
                let mut nl = Netlink::open().map_err(Error::io("open netlink"))?;
                nl.del_link_by_name(&ep.host_veth)
                    .map_err(Error::io(format!("delete veth {}", ep.host_veth)))?;
                store::remove_file(&path)?;
            }
        }
        // addresses held with no endpoint (an attach cut short): the
        // owners' files are read only when there are more addresses than
        // endpoints
        if release::strays_possible(&dir)? {
            let keep = release::held_by(&dir, container_id)?;
            changed |= ipam::release_owner_except(&dir, container_id, &keep)? > 0;
        }
        changed |= !release::reap(&dir, &|p| p.age >= release::GRACE)?.is_empty();
        Ok((changed, found))
    }

    /// The rule set the current state compiles to, as an `nft -f` script.
    pub fn ruleset(&self) -> Result<String> {
        Ok(self.compiled()?.script())
    }

    /// The rule set the current state compiles to.
    fn compiled(&self) -> Result<rules::Ruleset> {
        let nets = network::load_all(&self.root)?;
        let mut eps = Vec::new();
        for n in &nets {
            eps.extend(endpoint::load_all(&network::dir(&self.root, &n.id))?);
        }
        Ok(rules::build(&self.cfg, &nets, &eps))
    }

    /// Recompiles and applies the rule set.
    pub fn apply_rules(&self) -> Result<()> {
        let _l = self.lock()?;
        self.apply_rules_locked()
    }

    fn apply_rules_locked(&self) -> Result<()> {
        let _t = span("net.nft");
        nft::apply_ruleset(&self.compiled()?)
    }

    /// Brings the kernel back in line with the state on disk (daemon start,
    /// after a reboot): sysctls, bridges of networks with endpoints, rules.
    pub fn restore(&self) -> Result<()> {
        let _l = self.lock()?;
        sysctl::enable_ip_forward()?;
        let mut nl = Netlink::open().map_err(Error::io("open netlink"))?;
        for n in network::load_all(&self.root)? {
            let dir = network::dir(&self.root, &n.id);
            // after a reboot no parked veth is left
            release::reap(&dir, &|_| false)?;
            if !endpoint::load_all(&dir)?.is_empty() {
                ensure_bridge(&mut nl, &n)?;
            }
        }
        self.apply_rules_locked()
    }

    /// Removes everything this root put in the kernel: its nftables table,
    /// its endpoints' veths and its bridges. The state on disk stays
    /// ([`Net::restore`] rebuilds from it). For uninstall and tests.
    pub fn teardown(&self) -> Result<()> {
        let _l = self.lock()?;
        let mut nl = Netlink::open().map_err(Error::io("open netlink"))?;
        for n in network::load_all(&self.root)? {
            release::reap(&network::dir(&self.root, &n.id), &|_| true)?;
            for ep in endpoint::load_all(&network::dir(&self.root, &n.id))? {
                nl.del_link_by_name(&ep.host_veth)
                    .map_err(Error::io(format!("delete veth {}", ep.host_veth)))?;
            }
            nl.del_link_by_name(&n.bridge)
                .map_err(Error::io(format!("delete bridge {}", n.bridge)))?;
        }
        nft::apply(&rules::delete_table(&self.cfg))?;
        // the service proxy's and the NetworkPolicy tables of this root,
        // if a node agent made them
        nft::apply(&crate::services::delete(&crate::services::ProxyConfig {
            table: crate::services::table_for(&self.cfg),
            cluster_cidr: None,
        }))?;
        nft::apply(&crate::policy::delete(&crate::policy::PolicyConfig {
            table: crate::policy::table_for(&self.cfg),
            dns: Vec::new(),
        }))
    }
}

/// Makes sure the network's bridge exists, has the gateway address and is
/// up; sets the sysctls it needs. Returns its index.
fn ensure_bridge(nl: &mut Netlink, net: &Network) -> Result<u32> {
    let name = &net.bridge;
    let idx = match nl.link_index(name).map_err(Error::io("find bridge"))? {
        Some(i) => i,
        None => {
            match nl.add_bridge(name, net.mtu()) {
                Ok(()) => {}
                Err(e) if is_exists(&e) => {}
                Err(e) => return Err(Error::Io(format!("create bridge {name}"), e)),
            }
            nl.link_index(name)
                .map_err(Error::io("find bridge"))?
                .ok_or_else(|| Error::NotFound(format!("bridge {name} vanished")))?
        }
    };
    let addrs = nl
        .addresses(idx)
        .map_err(Error::io(format!("list addresses of {name}")))?;
    if !addrs.contains(&(net.gateway, net.subnet.prefix())) {
        match nl.add_address(idx, net.gateway, net.subnet.prefix()) {
            Ok(()) => {}
            Err(e) if is_exists(&e) => {}
            Err(e) => {
                return Err(Error::Io(
                    format!("add {}/{} to {name}", net.gateway, net.subnet.prefix()),
                    e,
                ));
            }
        }
    }
    nl.set_up(idx)
        .map_err(Error::io(format!("bring {name} up")))?;
    sysctl::enable_ip_forward()?;
    sysctl::enable_route_localnet(name)?;
    Ok(idx)
}
