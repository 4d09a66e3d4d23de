//! Containers on bridge networks, through `berth-net`: the networks a
//! container is on (its record's endpoint settings), its namespace and
//! endpoints for each run (set up by the monitor before the container is
//! created, taken down after it exits), its /etc/hosts and resolv.conf, and
//! the embedded DNS server of user-defined networks (one `berth
//! dns-server ROOT` process per root, started on demand).

use std::path::{Path, PathBuf};

use berth_net::{AttachRequest, Endpoint, Net, PortRequest};

use crate::config::{EndpointSpec, PortBinding, PortProto};
use crate::container::Record;
use crate::run::{Error, Result};

/// Name of the container's persistent network namespace in its directory.
pub const NETNS_FILE: &str = "netns";

/// Maps berth-net errors to the engine's (kept for callers that need a
/// plain conversion).
pub fn net_error(e: berth_net::Error) -> Error {
    Error::Net(e)
}

/// The port requests of a container: its published ports, and with `-P`
/// each exposed port on a free host port.
pub fn port_requests(
    ports: &[PortBinding],
    exposed: &[PortProto],
    publish_all: bool,
) -> Result<Vec<PortRequest>> {
    let mut v = Vec::new();
    for p in ports {
        let host_ip = match p.host_ip {
            None => None,
            Some(std::net::IpAddr::V4(ip)) => Some(ip),
            Some(std::net::IpAddr::V6(ip)) if ip.is_unspecified() => None,
            Some(std::net::IpAddr::V6(ip)) => {
                return Err(Error::NotSupported(format!(
                    "publishing on the IPv6 address {ip}"
                )));
            }
        };
        v.push(PortRequest {
            host_ip,
            host_port: p.host_port,
            container_port: p.container_port,
            proto: p.proto,
        });
    }
    if publish_all {
        for e in exposed {
            if !v
                .iter()
                .any(|x| x.container_port == e.port && x.proto == e.proto)
            {
                v.push(PortRequest {
                    host_ip: None,
                    host_port: 0,
                    container_port: e.port,
                    proto: e.proto,
                });
            }
        }
    }
    Ok(v)
}

/// Connects a container about to run: a fresh network namespace at
/// `<dir>/netns`, its endpoints on its networks (`eth0`, `eth1`…; published
/// ports on the first), /etc/hosts and resolv.conf for its address.
/// Undone by [`disconnect`].
pub fn connect(root: &Path, dir: &Path, r: &Record) -> Result<()> {
    let _t = berth_net::timing::span("engine.connect");
    let net = Net::open(root)?;
    let ns = dir.join(NETNS_FILE);
    // leftovers of a run whose monitor was killed
    let _ = net.release(&r.id, &ns);
    let ports = port_requests(&r.ports, &r.exposed_ports, r.publish_all)?;
    berth_net::netns::create(&ns)?;
    let undo = |e: Error| {
        let _ = net.release(&r.id, &ns);
        e
    };
    // the first network's address goes into /etc/hosts; the resolver is
    // the gateway of the first user-defined network
    let mut first: Option<(String, String)> = None;
    let mut dns_at = None;
    let mut links = Vec::new();
    let mut joined = Vec::new();
    for (i, x) in r.networks.iter().enumerate() {
        let ports = if i == 0 { ports.clone() } else { Vec::new() };
        let (ep, default) = attach(&net, r, &ns, x, i, ports).map_err(undo)?;
        let gateway = ep.gateway.to_string();
        if !default && dns_at.is_none() {
            dns_at = Some(gateway.clone());
        }
        first.get_or_insert((ep.ip.to_string(), gateway));
        links.extend(link_hosts(&net, root, x));
        joined.push(ep);
    }
    // docker's events of a start: one connect per network, before `start`
    for ep in &joined {
        network_event(
            root,
            "connect",
            &ep.network_id,
            &ep.network_name,
            Some(&r.id),
        );
    }
    let etc = dir.join("etc");
    let _ = std::fs::write(
        etc.join("hosts"),
        crate::oci::etc::hosts_file(
            &r.hostname,
            first.as_ref().map(|f| f.0.as_str()),
            &r.extra_hosts,
            first.as_ref().map(|f| f.1.as_str()),
            &links,
        ),
    );
    if let Some(dns_gw) = dns_at {
        // user-defined networks: the embedded resolver at the gateway
        // (unless --dns says otherwise)
        let servers = if r.dns.servers.is_empty() {
            vec![dns_gw]
        } else {
            crate::oci::etc::servers(&r.dns)
        };
        let _ = std::fs::write(
            etc.join("resolv.conf"),
            crate::oci::etc::resolv_conf(&servers, &r.dns),
        );
        ensure_dns_server(root);
    } else {
        // no user-defined network (any more): the host's servers or --dns,
        // never a resolver it can no longer reach
        let _ = std::fs::write(
            etc.join("resolv.conf"),
            crate::oci::etc::resolv_conf(&crate::oci::etc::servers(&r.dns), &r.dns),
        );
    }
    Ok(())
}

/// The /etc/hosts lines of a network's legacy links: (alias, [short id,
/// name], address) of each linked container that runs on the network.
fn link_hosts(net: &Net, root: &Path, x: &EndpointSpec) -> Vec<(String, Vec<String>, String)> {
    let mut out = Vec::new();
    if x.links.is_empty() {
        return out;
    }
    let Ok(store) = crate::container::Store::open(root) else {
        return out;
    };
    let eps = net.endpoints(&x.network).unwrap_or_default();
    for l in &x.links {
        let Ok(id) = store.resolve(&l.container) else {
            continue;
        };
        if let Some(ep) = eps.iter().find(|e| e.container_id == id) {
            let name = store.record(&id).map(|r| r.name).unwrap_or_default();
            let mut names = vec![id.get(..12).unwrap_or(&id).to_owned()];
            if !name.is_empty() && name != l.alias {
                names.push(name);
            }
            out.push((l.alias.clone(), names, ep.ip.to_string()));
        }
    }
    out
}

/// The environment docker gives a container for its links on the default
/// bridge (`ALIAS_NAME`, `ALIAS_PORT_80_TCP_ADDR`…, `ALIAS_ENV_KEY`), from
/// the linked containers as they run now.
pub fn link_env(root: &Path, r: &Record) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(net) = Net::open(root) else {
        return out;
    };
    let Ok(store) = crate::container::Store::open(root) else {
        return out;
    };
    for x in &r.networks {
        if x.links.is_empty() || !net.network(&x.network).is_ok_and(|n| n.default) {
            continue;
        }
        let eps = net.endpoints(&x.network).unwrap_or_default();
        for l in &x.links {
            let Ok(id) = store.resolve(&l.container) else {
                continue;
            };
            let Ok(t) = store.record(&id) else { continue };
            let Some(ep) = eps.iter().find(|e| e.container_id == id) else {
                continue;
            };
            let p: String = l
                .alias
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            out.push(format!("{p}_NAME=/{}/{}", r.name, l.alias));
            let mut ports = t.exposed_ports.clone();
            ports.sort();
            if let Some(first) = ports.first() {
                out.push(format!(
                    "{p}_PORT={}://{}:{}",
                    first.proto, ep.ip, first.port
                ));
            }
            for pp in &ports {
                let k = format!(
                    "{p}_PORT_{}_{}",
                    pp.port,
                    pp.proto.to_string().to_ascii_uppercase()
                );
                out.push(format!("{k}={}://{}:{}", pp.proto, ep.ip, pp.port));
                out.push(format!("{k}_ADDR={}", ep.ip));
                out.push(format!("{k}_PORT={}", pp.port));
                out.push(format!("{k}_PROTO={}", pp.proto));
            }
            for e in &t.env {
                let Some((k, v)) = e.split_once('=') else {
                    continue;
                };
                if matches!(k, "HOME" | "PATH" | "HOSTNAME") {
                    continue;
                }
                out.push(format!("{p}_ENV_{k}={v}"));
            }
        }
    }
    out
}

/// Checks the links of a container about to start: the linked containers
/// run and, on the default bridge, are on it (docker's rules).
pub fn check_links(root: &Path, r: &Record) -> Result<()> {
    let store = crate::container::Store::open(root)?;
    let net = Net::open(root)?;
    for x in &r.networks {
        let default = net.network(&x.network).is_ok_and(|n| n.default);
        for l in &x.links {
            let id = store.resolve(&l.container).map_err(|_| {
                Error::Invalid(format!(
                    "could not get container for {}: No such container: {}",
                    l.container, l.container
                ))
            })?;
            let st = store.state_raw(&id)?;
            if !st.is_active() {
                return Err(Error::Conflict(format!(
                    "Cannot link to a non running container: /{} AS /{}/{}",
                    l.container, r.name, l.alias
                )));
            }
            let t = store.record(&id)?;
            if default && !t.networks.iter().any(|y| y.network == x.network) {
                return Err(Error::Invalid(format!(
                    "Cannot link to /{}, as it does not belong to the default network",
                    l.container
                )));
            }
        }
    }
    Ok(())
}

/// Attaches container `r`'s namespace `ns` to the network of `x` as
/// `eth{index}`; the endpoint and whether it is on the default bridge.
fn attach(
    net: &Net,
    r: &Record,
    ns: &Path,
    x: &EndpointSpec,
    index: usize,
    ports: Vec<PortRequest>,
) -> Result<(Endpoint, bool)> {
    let req = AttachRequest {
        container_id: r.id.clone(),
        container_name: r.name.clone(),
        aliases: x.aliases.clone(),
        ip: x.ipv4_address,
        netns: ns.to_path_buf(),
        interface: format!("eth{index}"),
        ports,
        mac: x.mac_address.map(|m| m.0),
        link_local: x
            .link_local_ips
            .iter()
            .filter_map(|a| match a {
                std::net::IpAddr::V4(v4) => Some(*v4),
                // refused when the endpoint was asked for
                std::net::IpAddr::V6(_) => None,
            })
            .collect(),
    };
    let ep = net.attach(&x.network, &req)?;
    let default = net.network(&x.network).map(|n| n.default).unwrap_or(false);
    Ok((ep, default))
}

/// Checks the settings a container asks for on network `n` (docker's
/// rules: fixed addresses only where the user chose the subnet, aliases
/// only on user-defined networks).
pub(crate) fn check_endpoint(n: &berth_net::Network, ep: &EndpointSpec) -> Result<()> {
    if n.default {
        if ep.ipv4_address.is_some() {
            return Err(Error::Invalid(
                "user specified IP address is supported on user defined networks only".into(),
            ));
        }
        if !ep.aliases.is_empty() {
            return Err(Error::Invalid(
                "network-scoped alias is supported only for containers in user defined networks"
                    .into(),
            ));
        }
    }
    if let Some(ip) = ep.ipv4_address {
        if !n.user_subnet {
            return Err(Error::Invalid(
                "user specified IP address is supported only when connecting to networks with \
                 user configured subnets"
                    .into(),
            ));
        }
        if !n.subnet.is_host(ip) {
            return Err(Error::Invalid(format!(
                "invalid address {ip}: it does not belong to any of this network's subnets ({})",
                n.subnet
            )));
        }
    }
    for a in &ep.link_local_ips {
        if a.is_ipv6() {
            return Err(Error::NotSupported(format!(
                "IPv6 link-local addresses ({a})"
            )));
        }
        if a.is_unspecified() || a.is_multicast() || a.is_loopback() {
            return Err(Error::Invalid(format!(
                "invalid link-local IP address: {a}"
            )));
        }
    }
    Ok(())
}

impl crate::Engine {
    /// `docker network connect`: the container joins the network now if it
    /// runs, and at every start. As docker: connecting a running container
    /// again is refused (403), a stopped one keeps its first settings.
    pub fn network_connect(
        &self,
        network: &str,
        container: &str,
        mut ep: EndpointSpec,
    ) -> Result<()> {
        let v = self.network(network)?;
        let Some(n) = v.network.clone() else {
            return Err(Error::Invalid(format!(
                "container cannot be disconnected from host network or connected to host network ({})",
                v.name
            )));
        };
        let c = self.container(container)?;
        let id = c.record.id.clone();
        if !c.record.bridged() {
            return Err(Error::Invalid(format!(
                "container sharing network namespace with another container or host cannot be connected to any other network ({})",
                c.record.network.docker_name()
            )));
        }
        check_endpoint(&n, &ep)?;
        ep.network = n.id.clone();
        let _l = self.store.lock(&id)?;
        let mut rec = self.store.record(&id)?;
        let running = self.store.state_raw(&id)?.is_active();
        if rec
            .networks
            .iter()
            .any(|x| x.network == n.id || x.network == n.name)
        {
            if !running {
                // docker keeps the settings it has
                return Ok(());
            }
            return Err(Error::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                rec.name, n.name
            )));
        }
        rec.networks.push(ep.clone());
        if running {
            let net = Net::open(&self.root)?;
            let ns = self.store.dir(&id).join(NETNS_FILE);
            let held = net.container_endpoints(&id)?;
            // the lowest ethN free now (networks may have been left); the
            // published ports come along when no network holds them
            let used: Vec<String> = held.iter().map(|e| e.interface.clone()).collect();
            let index = (0..)
                .find(|i| !used.contains(&format!("eth{i}")))
                .unwrap_or(0);
            let ports = if held.iter().any(|e| !e.ports.is_empty()) {
                Vec::new()
            } else {
                port_requests(&rec.ports, &rec.exposed_ports, rec.publish_all)?
            };
            attach(&net, &rec, &ns, &ep, index, ports)?;
            if let Err(e) = self.store.save_record(&rec) {
                let _ = net.detach(&n.id, &id);
                return Err(e);
            }
            network_event(&self.root, "connect", &n.id, &n.name, Some(&id));
            return Ok(());
        }
        self.store.save_record(&rec)
    }

    /// `docker network disconnect`: off the network now if it runs, and
    /// at every start (the network it was created on included). With
    /// `force`, a container that no longer exists leaves its endpoint too.
    pub fn network_disconnect(&self, network: &str, container: &str, force: bool) -> Result<()> {
        let v = self.network(network)?;
        let c = match self.container(container) {
            Ok(c) => c,
            Err(Error::NotFound(_)) if force => return self.remove_stale_endpoint(&v, container),
            Err(e) => return Err(e),
        };
        let id = c.record.id.clone();
        if !c.record.bridged() {
            return Err(Error::Invalid(format!(
                "container {} is not connected to network {} (network mode {})",
                c.record.name,
                v.name,
                c.record.network.docker_name()
            )));
        }
        let _l = self.store.lock(&id)?;
        let mut rec = self.store.record(&id)?;
        let before = rec.networks.len();
        rec.networks
            .retain(|x| x.network != v.id && x.network != v.name);
        let found = rec.networks.len() != before;
        let running = self.store.state_raw(&id)?.is_active();
        let net = Net::open(&self.root)?;
        let attached = running
            && net
                .container_endpoints(&id)?
                .iter()
                .any(|e| e.network_id == v.id);
        if !found && !attached {
            // docker's words (and its 500) differ for a container that
            // does not run, force or not
            let the = if running { "" } else { "the " };
            return Err(Error::Internal(format!(
                "container {id} is not connected to {the}network {}",
                v.name
            )));
        }
        if attached {
            net.detach(&v.id, &id)?;
        }
        self.store.save_record(&rec)?;
        // docker reports it for a container that does not run too (though
        // not the connect of one)
        network_event(&self.root, "disconnect", &v.id, &v.name, Some(&id));
        Ok(())
    }

    /// `network disconnect --force` of a container that is gone: its
    /// endpoint on the network, found by the container's name or id, is
    /// taken away (docker's endpoint clean-up).
    fn remove_stale_endpoint(&self, v: &NetworkView, container: &str) -> Result<()> {
        let stale = v.endpoints.iter().find(|e| {
            !container.is_empty() && (e.container_name == container || e.container_id == container)
        });
        let Some(ep) = stale else {
            return Err(Error::NotFound(format!("endpoint {container} not found")));
        };
        Net::open(&self.root)?.detach(&v.id, &ep.container_id)?;
        network_event(
            &self.root,
            "disconnect",
            &v.id,
            &v.name,
            Some(&ep.container_id),
        );
        Ok(())
    }
}

/// Takes a container off its networks and removes its namespace
/// (idempotent; works after a crash).
pub fn disconnect(root: &Path, dir: &Path, id: &str) {
    let _t = berth_net::timing::span("engine.disconnect");
    let ns = dir.join(NETNS_FILE);
    match Net::open(root) {
        Ok(net) => match net.release(id, &ns) {
            Ok(released) => {
                for ep in released {
                    network_event(
                        root,
                        "disconnect",
                        &ep.network_id,
                        &ep.network_name,
                        Some(id),
                    );
                }
            }
            Err(e) => tracing::warn!("release the network of container {id}: {e}"),
        },
        Err(_) => {
            let _ = berth_net::netns::remove(&ns);
        }
    }
}

/// The endpoints a container holds now.
pub fn endpoints(root: &Path, id: &str) -> Vec<Endpoint> {
    Net::open(root)
        .and_then(|n| n.container_endpoints(id))
        .unwrap_or_default()
}

const DNS_LOCK: &str = "dns.lock";

/// Starts the root's DNS server unless one runs (it holds `dns.lock`).
pub fn ensure_dns_server(root: &Path) {
    let lock = root.join(DNS_LOCK);
    let Ok(f) = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
    else {
        return;
    };
    match rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockShared) {
        // nobody holds it exclusively: no server
        Ok(()) => {
            let _ = rustix::fs::flock(&f, rustix::fs::FlockOperation::Unlock);
        }
        Err(_) => return,
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join("dns-server.log"));
    let mut cmd = std::process::Command::new("/proc/self/exe");
    cmd.arg("dns-server")
        .arg(root)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    if let Ok(l) = log {
        cmd.stderr(l);
    }
    if let Ok(mut c) = cmd.spawn() {
        // it forks away at once; wait until it listens (holds the lock)
        let _ = c.wait();
        for _ in 0..100 {
            if rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockShared).is_err() {
                return;
            }
            let _ = rustix::fs::flock(&f, rustix::fs::FlockOperation::Unlock);
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// Entry point of `berth dns-server ROOT`: leaves its parent, takes the
/// lock, serves until no user-defined network has had an endpoint for a
/// minute. Never returns.
pub fn dns_server_main(root: &Path) -> ! {
    if crate::monitor::leave_parent().is_err() {
        berth_sys::fork::exit_now(1)
    }
    let code = match dns_server(root) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth dns-server: {e}");
            1
        }
    };
    berth_sys::fork::exit_now(code)
}

fn dns_server(root: &Path) -> Result<()> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(root.join(DNS_LOCK))
        .map_err(|e| Error::Io("open dns.lock".into(), e))?;
    if rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
        return Ok(()); // another one serves
    }
    // who serves, for whoever must stop it (tests, uninstall)
    let _ = f.set_len(0);
    let _ = std::io::Write::write_all(&mut &f, format!("{}\n", std::process::id()).as_bytes());
    let net = Net::open(root)?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watch_stop = stop.clone();
    let root2: PathBuf = root.to_path_buf();
    std::thread::spawn(move || {
        let mut idle = 0;
        loop {
            std::thread::sleep(std::time::Duration::from_secs(5));
            let busy = Net::open(&root2)
                .and_then(|n| {
                    let nets = n.networks()?;
                    Ok(n.all_endpoints()?
                        .iter()
                        .any(|e| nets.iter().any(|x| x.id == e.network_id && !x.default)))
                })
                .unwrap_or(false);
            idle = if busy { 0 } else { idle + 5 };
            if idle >= 60 {
                watch_stop.store(true, std::sync::atomic::Ordering::SeqCst);
                return;
            }
        }
    });
    Ok(berth_net::dns::serve(
        &net,
        &berth_net::dns::DnsOptions::from_host(),
        &stop,
    )?)
}

fn network_event(root: &Path, action: &str, id: &str, name: &str, container: Option<&str>) {
    let mut a = std::collections::BTreeMap::from([
        ("name".to_owned(), name.to_owned()),
        ("type".to_owned(), "bridge".to_owned()),
    ]);
    if let Some(c) = container {
        a.insert("container".to_owned(), c.to_owned());
    }
    crate::events::emit(root, "network", action, id, a);
}

/// A network as `network ls` / `inspect` show it: berth-net's bridge
/// networks plus docker's `host` and `none`, with the endpoints on it.
#[derive(Clone, Debug)]
pub struct NetworkView {
    /// Name.
    pub name: String,
    /// 64 hex digits.
    pub id: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    /// The bridge network (None for `host` and `none`).
    pub network: Option<berth_net::Network>,
    /// Containers on it now.
    pub endpoints: Vec<Endpoint>,
}

fn pseudo(name: &str) -> NetworkView {
    let id = format!(
        "{:0<64}",
        name.bytes().map(|b| format!("{b:02x}")).collect::<String>()
    );
    NetworkView {
        name: name.to_owned(),
        id,
        driver: if name == "host" { "host" } else { "null" }.to_owned(),
        network: None,
        endpoints: Vec::new(),
    }
}

impl crate::Engine {
    fn net(&self) -> Result<Net> {
        Ok(Net::open(&self.root)?)
    }

    /// Every network, the default `bridge` first, then `host` and `none`.
    pub fn networks(&self) -> Result<Vec<NetworkView>> {
        let net = self.net()?;
        let eps = net.all_endpoints()?;
        let mut v: Vec<NetworkView> = net
            .networks()?
            .into_iter()
            .map(|n| NetworkView {
                name: n.name.clone(),
                id: n.id.clone(),
                driver: "bridge".into(),
                endpoints: eps
                    .iter()
                    .filter(|e| e.network_id == n.id)
                    .cloned()
                    .collect(),
                network: Some(n),
            })
            .collect();
        v.insert(v.len().min(1), pseudo("host"));
        v.insert(v.len().min(2), pseudo("none"));
        Ok(v)
    }

    /// A network by name, id or id prefix.
    pub fn network(&self, key: &str) -> Result<NetworkView> {
        let all = self.networks()?;
        if let Some(n) = all.iter().find(|n| n.id == key || n.name == key) {
            return Ok(n.clone());
        }
        let matches: Vec<&NetworkView> = all.iter().filter(|n| n.id.starts_with(key)).collect();
        match matches.as_slice() {
            [one] if !key.is_empty() => Ok((*one).clone()),
            [] | [_] => Err(Error::NotFound(format!("network {key} not found"))),
            _ => Err(Error::Conflict(format!(
                "network {key} is ambiguous ({} matches found based on ID prefix)",
                matches.len()
            ))),
        }
    }

    /// `docker network create`.
    pub fn create_network(&self, req: &berth_net::CreateNetwork) -> Result<berth_net::Network> {
        if matches!(req.name.as_str(), "host" | "none" | "bridge" | "default") {
            return Err(Error::Conflict(format!(
                "network with name {} already exists",
                req.name
            )));
        }
        if !matches!(req.driver.as_str(), "" | "bridge") {
            return Err(Error::NotFound(format!(
                "plugin \"{}\" not found (berth has the bridge driver only)",
                req.driver
            )));
        }
        let n = self.net()?.create_network(req)?;
        network_event(&self.root, "create", &n.id, &n.name, None);
        Ok(n)
    }

    /// `docker network rm`.
    pub fn remove_network(&self, key: &str) -> Result<()> {
        let v = self.network(key)?;
        if v.network.as_ref().is_none_or(|n| n.default) {
            return Err(Error::Forbidden(format!(
                "{} is a pre-defined network and cannot be removed",
                v.name
            )));
        }
        if !v.endpoints.is_empty() {
            return Err(Error::Forbidden(format!(
                "error while removing network: network {} id {} has active endpoints",
                v.name, v.id
            )));
        }
        let n = self.net()?.remove_network(&v.id)?;
        network_event(&self.root, "destroy", &n.id, &n.name, None);
        Ok(())
    }

    /// The networks containers name (running or not), by id and name.
    fn networks_in_use(&self) -> std::collections::BTreeSet<String> {
        let mut used = std::collections::BTreeSet::new();
        for c in self.list() {
            for x in &c.record.networks {
                used.insert(x.network.clone());
                if let Some(n) = c.network_names.get(&x.network) {
                    used.insert(n.clone());
                }
            }
        }
        used
    }

    /// Networks that pass docker's `network ls` filters.
    pub fn networks_filtered(&self, f: &crate::filter::Filters) -> Result<Vec<NetworkView>> {
        f.check(&[
            "name", "id", "driver", "type", "label", "label!", "dangling", "scope",
        ])?;
        let dangling = f.boolean("dangling")?;
        let used = if dangling.is_some() {
            self.networks_in_use()
        } else {
            Default::default()
        };
        let mut out = Vec::new();
        for n in self.networks()? {
            let builtin = n.network.as_ref().is_none_or(|m| m.default);
            let labels = n
                .network
                .as_ref()
                .map(|m| m.labels.clone())
                .unwrap_or_default();
            let in_use = builtin
                || !n.endpoints.is_empty()
                || used.contains(&n.id)
                || used.contains(&n.name);
            let ok = f.any("name", |v| n.name.contains(v))
                && f.any("id", |v| n.id.starts_with(v))
                && f.any("driver", |v| n.driver == v)
                && f.any("scope", |v| v == "local")
                && f.any("type", |v| match v {
                    "builtin" => builtin,
                    "custom" => !builtin,
                    _ => false,
                })
                && f.labels(&labels)
                && dangling.is_none_or(|d| d != in_use);
            if ok {
                out.push(n);
            }
        }
        Ok(out)
    }

    /// `docker network prune`: user-defined networks no container names
    /// (filters `label`, `label!`; `until` as nanoseconds).
    pub fn prune_networks(
        &self,
        f: &crate::filter::Filters,
        until_ns: Option<i64>,
    ) -> Result<Vec<String>> {
        f.check(&["label", "label!", "until"])?;
        let used = self.networks_in_use();
        let mut removed = Vec::new();
        for v in self.networks()? {
            let Some(n) = &v.network else { continue };
            if n.default
                || used.contains(&n.name)
                || used.contains(&n.id)
                || !v.endpoints.is_empty()
                || !f.labels(&n.labels)
            {
                continue;
            }
            if let Some(u) = until_ns
                && crate::events::rfc3339_nanos(&n.created).is_none_or(|t| t >= u)
            {
                continue;
            }
            if self.remove_network(&n.id).is_ok() {
                removed.push(n.name.clone());
            }
        }
        // docker's event of a prune, whatever it removed (networks free
        // no space)
        crate::events::emit(
            &self.root,
            "network",
            "prune",
            "",
            std::collections::BTreeMap::from([("reclaimed".to_owned(), "0".to_owned())]),
        );
        Ok(removed)
    }
}
