//! Containers on bridge networks, through `berth-net`: the network a
//! container asks for (`--network`, `-p`, `-P`, `--ip`, `--network-alias`),
//! its namespace and endpoint for each run (set up by the monitor before
//! the container is created, taken down after it exits), its /etc/hosts
//! and resolv.conf, and the embedded DNS server of user-defined networks
//! (one `berth dns-server ROOT` process per root, started on demand).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use berth_net::{AttachRequest, Endpoint, Net, PortRequest, Proto};
use serde::{Deserialize, Serialize};

use crate::container::Record;
use crate::run::{Error, Result};

/// Name of the container's persistent network namespace in its directory.
pub const NETNS_FILE: &str = "netns";

/// A published port as asked for (`-p [IP:][HOST:]CONTAINER[/PROTO]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct PortSpec {
    /// Port in the container.
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub proto: String,
    /// Host address (empty: all).
    pub host_ip: String,
    /// Host port (0: any free one).
    pub host_port: u16,
}

/// A network a container joined with `network connect`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ExtraNetwork {
    /// The network's id.
    pub id: String,
    /// Aliases on it.
    pub aliases: Vec<String>,
    /// A fixed address on it.
    pub ipv4_address: String,
}

/// Maps berth-net errors to the engine's.
pub fn net_error(e: berth_net::Error) -> Error {
    use berth_types::ErrorKind as K;
    match e.kind() {
        K::NotFound => Error::NotFound(e.to_string()),
        K::Conflict => Error::Conflict(e.to_string()),
        K::Invalid => Error::Invalid(e.to_string()),
        _ => Error::Start(e.to_string()),
    }
}

fn port_range(s: &str, what: &str, spec: &str) -> Result<(u16, u16)> {
    let bad = || Error::Invalid(format!("invalid {what} port in \"{spec}\""));
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u16 = a.parse().map_err(|_| bad())?;
    let b: u16 = b.parse().map_err(|_| bad())?;
    if a == 0 && what == "container" || b < a {
        return Err(bad());
    }
    Ok((a, b))
}

/// Parses `-p` the way the docker CLI does (ranges expand to one binding
/// per port).
pub fn parse_publish(spec: &str) -> Result<Vec<PortSpec>> {
    let (addr, proto) = match spec.rsplit_once('/') {
        Some((a, p)) => (a, p.to_ascii_lowercase()),
        None => (spec, "tcp".to_owned()),
    };
    if proto != "tcp" && proto != "udp" {
        return Err(Error::Invalid(format!("invalid proto: {proto}")));
    }
    let parts: Vec<&str> = addr.split(':').collect();
    let (ip, host, ctr) = match parts.as_slice() {
        [c] => ("", "", *c),
        [h, c] => ("", *h, *c),
        [i, h, c] => (*i, *h, *c),
        _ => {
            return Err(Error::Invalid(format!(
                "invalid port specification: \"{spec}\""
            )));
        }
    };
    if !ip.is_empty() && ip.parse::<Ipv4Addr>().is_err() {
        return Err(Error::Invalid(format!("invalid IP address: {ip}")));
    }
    let (c0, c1) = port_range(ctr, "container", spec)?;
    let (h0, h1) = if host.is_empty() {
        (0, 0)
    } else {
        port_range(host, "host", spec)?
    };
    if h0 != 0 && (h1 - h0) != (c1 - c0) && h0 != h1 {
        return Err(Error::Invalid(format!(
            "invalid ranges specified for container and host Ports: {ctr} and {host}"
        )));
    }
    Ok((c0..=c1)
        .enumerate()
        .map(|(i, c)| PortSpec {
            container_port: c,
            proto: proto.clone(),
            host_ip: ip.to_owned(),
            host_port: if h0 == 0 {
                0
            } else if h0 == h1 {
                h0
            } else {
                h0 + i as u16
            },
        })
        .collect())
}

/// Whether a network mode means a bridge network (not host/none/container).
pub fn is_bridge_mode(mode: &str) -> bool {
    !matches!(mode, "host" | "none") && !mode.starts_with("container:")
}

/// The berth-net name of a network mode (`default` is the `bridge` network).
pub fn network_key(mode: &str) -> &str {
    match mode {
        "" | "default" => "bridge",
        m => m,
    }
}

/// The port requests of a container: its `-p`s, and with `-P` each exposed
/// port on a free host port.
pub fn port_requests(r: &Record) -> Result<Vec<PortRequest>> {
    let mut v = Vec::new();
    let proto = |p: &str| -> Result<Proto> {
        match p {
            "" | "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            o => Err(Error::Invalid(format!("invalid proto: {o}"))),
        }
    };
    for p in &r.port_bindings {
        v.push(PortRequest {
            host_ip: if p.host_ip.is_empty() {
                None
            } else {
                Some(
                    p.host_ip.parse().map_err(|_| {
                        Error::Invalid(format!("invalid IP address: {}", p.host_ip))
                    })?,
                )
            },
            host_port: p.host_port,
            container_port: p.container_port,
            proto: proto(&p.proto)?,
        });
    }
    if r.publish_all {
        for e in &r.exposed_ports {
            let (port, pr) = e.split_once('/').unwrap_or((e, "tcp"));
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            let pr = proto(pr)?;
            if !v.iter().any(|x| x.container_port == port && x.proto == pr) {
                v.push(PortRequest {
                    host_ip: None,
                    host_port: 0,
                    container_port: port,
                    proto: pr,
                });
            }
        }
    }
    Ok(v)
}

/// Connects a container about to run: a fresh network namespace at
/// `<dir>/netns`, its endpoint on its network (unless it was disconnected
/// from it) and on the networks joined later, /etc/hosts and resolv.conf
/// for its address. Undone by [`disconnect`].
pub fn connect(root: &Path, dir: &Path, r: &Record) -> Result<()> {
    let _t = berth_net::timing::span("engine.connect");
    let net = Net::open(root).map_err(net_error)?;
    let ns = dir.join(NETNS_FILE);
    // leftovers of a run whose monitor was killed
    let _ = net.release(&r.id, &ns);
    let ports = port_requests(r)?;
    berth_net::netns::create(&ns).map_err(net_error)?;
    let undo = |e: Error| {
        let _ = net.release(&r.id, &ns);
        e
    };
    // the first network's address goes into /etc/hosts; the resolver is
    // the gateway of the first user-defined network
    let mut first: Option<(String, String)> = None;
    let mut dns_at = None;
    if !r.primary_detached {
        let key = network_key(&r.network_mode);
        let req = attach_request(r, &ns, 0, &r.aliases, &r.ipv4_address, ports.clone());
        let ep = req
            .and_then(|req| net.attach(key, &req).map_err(net_error))
            .map_err(undo)?;
        let network = net.network(key).map_err(net_error).map_err(undo)?;
        dns_at = (!network.default).then(|| ep.gateway.to_string());
        first = Some((ep.ip.to_string(), ep.gateway.to_string()));
    }
    // the networks joined later with `network connect`: eth1, eth2, …
    for (i, x) in r.extra_networks.iter().enumerate() {
        // published ports go to the first network it is on
        let ports = if first.is_none() {
            ports.clone()
        } else {
            Vec::new()
        };
        let (default, ip, gateway) = attach_extra(&net, r, &ns, x, i + 1, ports).map_err(undo)?;
        if !default && dns_at.is_none() {
            dns_at = Some(gateway.clone());
        }
        first.get_or_insert((ip, gateway));
    }
    let etc = dir.join("etc");
    let _ = std::fs::write(
        etc.join("hosts"),
        crate::spec::hosts_file(
            &r.hostname,
            first.as_ref().map(|f| f.0.as_str()),
            &r.extra_hosts,
            first.as_ref().map(|f| f.1.as_str()),
        ),
    );
    if let Some(dns_gw) = dns_at {
        // user-defined networks: the embedded resolver at the gateway
        // (unless --dns says otherwise)
        let servers = if r.dns.is_empty() {
            vec![dns_gw]
        } else {
            r.dns.clone()
        };
        let _ = std::fs::write(
            etc.join("resolv.conf"),
            crate::spec::resolv_conf(&servers, &r.dns_search, &r.dns_options),
        );
        ensure_dns_server(root);
    } else {
        // no user-defined network (any more): the host's servers or --dns,
        // never a resolver it can no longer reach
        let _ = std::fs::write(
            etc.join("resolv.conf"),
            crate::spec::resolv_conf(&r.dns, &r.dns_search, &r.dns_options),
        );
    }
    Ok(())
}

/// The request attaching container `r`'s namespace `ns` as `eth{index}`.
fn attach_request(
    r: &Record,
    ns: &Path,
    index: usize,
    aliases: &[String],
    ipv4: &str,
    ports: Vec<PortRequest>,
) -> Result<AttachRequest> {
    let ip = match ipv4 {
        "" => None,
        s => Some(
            s.parse::<Ipv4Addr>()
                .map_err(|_| Error::Invalid(format!("invalid IPv4 address: {s}")))?,
        ),
    };
    Ok(AttachRequest {
        container_id: r.id.clone(),
        container_name: r.name.clone(),
        aliases: aliases.to_vec(),
        ip,
        netns: ns.to_path_buf(),
        interface: format!("eth{index}"),
        ports,
    })
}

/// Attaches a running (or starting) container's namespace to one more
/// network as `eth{index}`; (whether it is the default bridge, the
/// container's address, the gateway).
fn attach_extra(
    net: &Net,
    r: &Record,
    ns: &Path,
    x: &ExtraNetwork,
    index: usize,
    ports: Vec<PortRequest>,
) -> Result<(bool, String, String)> {
    let req = attach_request(r, ns, index, &x.aliases, &x.ipv4_address, ports)?;
    let ep = net.attach(&x.id, &req).map_err(net_error)?;
    let default = net.network(&x.id).map(|n| n.default).unwrap_or(false);
    Ok((default, ep.ip.to_string(), ep.gateway.to_string()))
}

impl crate::Engine {
    /// `docker network connect`: the container joins the network now if it
    /// runs, and at every start.
    pub fn network_connect(
        &self,
        network: &str,
        container: &str,
        aliases: Vec<String>,
        ipv4: Option<String>,
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
        if !is_bridge_mode(&c.record.network_mode) {
            return Err(Error::Invalid(format!(
                "container sharing network namespace with another container or host cannot be connected to any other network ({})",
                c.record.network_mode
            )));
        }
        let primary = self.network(network_key(&c.record.network_mode))?;
        let on_primary = primary.id == n.id && !c.record.primary_detached;
        if on_primary || c.record.extra_networks.iter().any(|x| x.id == n.id) {
            return Err(Error::Conflict(format!(
                "endpoint with name {} already exists in network {}",
                c.record.name, n.name
            )));
        }
        if primary.id == n.id {
            // back on the network it was created on: its own settings and
            // published ports again
            if ipv4.is_some() || !aliases.is_empty() {
                return Err(Error::Invalid(format!(
                    "not supported yet: new aliases or address when reconnecting to {} (the \
                     network the container was created on)",
                    n.name
                )));
            }
            let _l = self.store.lock(&id)?;
            let mut rec = self.store.record(&id)?;
            rec.primary_detached = false;
            if c.state.is_active() {
                let net = Net::open(&self.root).map_err(net_error)?;
                let ns = self.store.dir(&id).join(NETNS_FILE);
                // the published ports stay where this run put them (they
                // come back to this network at the next start)
                let held = net
                    .container_endpoints(&id)
                    .map_err(net_error)?
                    .iter()
                    .any(|e| !e.ports.is_empty());
                let ports = if held {
                    Vec::new()
                } else {
                    port_requests(&rec)?
                };
                let req = attach_request(&rec, &ns, 0, &rec.aliases, &rec.ipv4_address, ports)?;
                net.attach(&n.id, &req).map_err(net_error)?;
            }
            self.store.save_record(&rec)?;
            network_event(&self.root, "connect", &n.id, &n.name, Some(&id));
            return Ok(());
        }
        if n.default && (ipv4.is_some() || !aliases.is_empty()) {
            return Err(Error::Invalid(
                "user specified IP address is supported on user defined networks only".into(),
            ));
        }
        let x = ExtraNetwork {
            id: n.id.clone(),
            aliases,
            ipv4_address: ipv4.unwrap_or_default(),
        };
        let _l = self.store.lock(&id)?;
        let mut rec = self.store.record(&id)?;
        rec.extra_networks.push(x.clone());
        if c.state.is_active() {
            let net = Net::open(&self.root).map_err(net_error)?;
            let ns = self.store.dir(&id).join(NETNS_FILE);
            // the lowest ethN free now (networks may have been left)
            let used: Vec<String> = net
                .container_endpoints(&id)
                .map_err(net_error)?
                .into_iter()
                .map(|e| e.interface)
                .collect();
            let index = (1..)
                .find(|i| !used.contains(&format!("eth{i}")))
                .unwrap_or(1);
            attach_extra(&net, &rec, &ns, &x, index, Vec::new())?;
        }
        self.store.save_record(&rec)?;
        network_event(&self.root, "connect", &n.id, &n.name, Some(&id));
        Ok(())
    }

    /// `docker network disconnect`: off the network now if it runs, and
    /// at every start (the network it was created on included).
    pub fn network_disconnect(&self, network: &str, container: &str, force: bool) -> Result<()> {
        let v = self.network(network)?;
        let c = self.container(container)?;
        let id = c.record.id.clone();
        if !is_bridge_mode(&c.record.network_mode) {
            return Err(Error::Invalid(format!(
                "container {} is not connected to network {} (network mode {})",
                c.record.name, v.name, c.record.network_mode
            )));
        }
        let primary = self.network(network_key(&c.record.network_mode))?;
        let _l = self.store.lock(&id)?;
        let mut rec = self.store.record(&id)?;
        let before = rec.extra_networks.len();
        rec.extra_networks.retain(|x| x.id != v.id);
        let mut found = rec.extra_networks.len() != before;
        if primary.id == v.id && !rec.primary_detached {
            rec.primary_detached = true;
            found = true;
        }
        if !found && !force {
            return Err(Error::Invalid(format!(
                "container {id} is not connected to network {}",
                v.name
            )));
        }
        if c.state.is_active() {
            let net = Net::open(&self.root).map_err(net_error)?;
            net.detach(&v.id, &id).map_err(net_error)?;
        }
        self.store.save_record(&rec)?;
        network_event(&self.root, "disconnect", &v.id, &v.name, Some(&id));
        Ok(())
    }
}

/// Takes a container off its networks and removes its namespace
/// (idempotent; works after a crash).
pub fn disconnect(root: &Path, dir: &Path, id: &str) {
    let _t = berth_net::timing::span("engine.disconnect");
    let ns = dir.join(NETNS_FILE);
    match Net::open(root) {
        Ok(net) => {
            if let Err(e) = net.release(id, &ns) {
                tracing::warn!("release the network of container {id}: {e}");
            }
        }
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
    let net = Net::open(root).map_err(net_error)?;
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
    berth_net::dns::serve(&net, &berth_net::dns::DnsOptions::from_host(), &stop).map_err(net_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_flags_parse_like_docker() {
        let p = parse_publish("8080:80").unwrap();
        assert_eq!(
            p,
            [PortSpec {
                container_port: 80,
                proto: "tcp".into(),
                host_ip: String::new(),
                host_port: 8080
            }]
        );
        let p = parse_publish("127.0.0.1:5000-5001:6000-6001/udp").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[1].host_port, p[1].container_port, p[1].proto.as_str()),
            (5001, 6001, "udp")
        );
        assert_eq!(parse_publish("80").unwrap()[0].host_port, 0);
        assert!(parse_publish("80/sctp").is_err());
        assert!(parse_publish("x:80").is_err());
        assert!(parse_publish("1.2.3:80:80").is_err());
        assert!(parse_publish("1000-1002:80-81").is_err());
    }
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
        Net::open(&self.root).map_err(net_error)
    }

    /// Every network, the default `bridge` first, then `host` and `none`.
    pub fn networks(&self) -> Result<Vec<NetworkView>> {
        let net = self.net()?;
        let eps = net.all_endpoints().map_err(net_error)?;
        let mut v: Vec<NetworkView> = net
            .networks()
            .map_err(net_error)?
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
        let n = self.net()?.create_network(req).map_err(net_error)?;
        network_event(&self.root, "create", &n.id, &n.name, None);
        Ok(n)
    }

    /// `docker network rm`.
    pub fn remove_network(&self, key: &str) -> Result<()> {
        let v = self.network(key)?;
        if v.network.as_ref().is_none_or(|n| n.default) {
            return Err(Error::Conflict(format!(
                "{} is a pre-defined network and cannot be removed",
                v.name
            )));
        }
        let n = self.net()?.remove_network(&v.id).map_err(net_error)?;
        network_event(&self.root, "destroy", &n.id, &n.name, None);
        Ok(())
    }

    /// `docker network prune`: user-defined networks no container names.
    pub fn prune_networks(&self) -> Result<Vec<String>> {
        // a network is in use by the containers on it, running or not:
        // the one each was created on (unless it left it) and those joined
        let mut used = std::collections::BTreeSet::new();
        for c in self.list() {
            if !c.record.primary_detached {
                used.insert(c.record.network_mode.clone());
            }
            used.extend(c.record.extra_networks.iter().map(|x| x.id.clone()));
        }
        let mut removed = Vec::new();
        for v in self.networks()? {
            let Some(n) = &v.network else { continue };
            if n.default
                || used.contains(&n.name)
                || used.contains(&n.id)
                || !v.endpoints.is_empty()
            {
                continue;
            }
            if self.remove_network(&n.id).is_ok() {
                removed.push(n.name.clone());
            }
        }
        Ok(removed)
    }
}
