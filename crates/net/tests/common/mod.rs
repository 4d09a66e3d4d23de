//! Shared harness for the privileged tests: a private root, test-only
//! names (bridges, nft table) and subnets, network namespaces the test makes
//! itself, and Drop guards that remove all of it even after a failed assert.
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use berth_net::{AttachRequest, CreateNetwork, Endpoint, Net, NetConfig, PortRequest, Proto};

pub const BUSYBOX: &str = "/bin/busybox";

/// Whether the test can run; prints why not when it cannot.
pub fn root_or_skip(test: &str) -> bool {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipping {test}: needs root (CI runs as root)");
        return false;
    }
    for tool in ["/usr/sbin/nft", "/usr/bin/nsenter", BUSYBOX] {
        if !Path::new(tool).exists() {
            eprintln!(
                "skipping {test}: {tool} is missing (apt-get install nftables util-linux busybox-static)"
            );
            return false;
        }
    }
    true
}

/// A short tag unique to this process and call, for interface and table names.
pub fn tag() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{:05x}{:x}",
        std::process::id() & 0xfffff,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A private root with test-only names; tears everything down on drop.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub net: Net,
    pub tag: String,
    netns: Vec<PathBuf>,
    children: Vec<Child>,
}

impl Env {
    /// `third` picks the default bridge subnet 198.18.<third>.0/24; user
    /// networks of this root come from 198.18.<pool_third>.0/24 upwards
    /// (a /26 pool split in /28s keeps tests apart).
    pub fn new(third: u8) -> Env {
        let tag = tag();
        let dir = tempfile::Builder::new()
            .prefix("berth-net-test-")
            .tempdir()
            .unwrap();
        let cfg = NetConfig {
            table: format!("berth_test_{tag}"),
            default_bridge: format!("bd{tag}"),
            default_subnet: format!("198.18.{third}.0/24").parse().unwrap(),
            default_gateway: None,
            pool: format!("198.18.{third}.0/24").parse().unwrap(),
            pool_prefix: 28,
            bridge_prefix: "bt".into(),
        };
        let net = Net::with_config(dir.path(), cfg).unwrap();
        Env {
            dir,
            net,
            tag,
            netns: Vec::new(),
            children: Vec::new(),
        }
    }

    /// A user network with an explicit /24 and a test bridge name.
    pub fn network(&self, name: &str, subnet: &str, internal: bool) -> berth_net::Network {
        let mut req = CreateNetwork {
            name: name.into(),
            subnet: Some(subnet.into()),
            internal,
            ..Default::default()
        };
        req.options.insert(
            "com.docker.network.bridge.name".into(),
            format!("b{}{}", &name[..name.len().min(3)], self.tag),
        );
        self.net.create_network(&req).unwrap()
    }

    /// A fresh network namespace under the test's root.
    pub fn netns(&mut self, name: &str) -> PathBuf {
        let p = self.dir.path().join("netns").join(name);
        berth_net::netns::create(&p).unwrap();
        self.netns.push(p.clone());
        p
    }

    /// Attaches a "container" (a namespace of ours) to a network.
    pub fn attach(&self, network: &str, id: &str, ns: &Path, ports: Vec<PortRequest>) -> Endpoint {
        self.net
            .attach(network, &request(id, ns, ports))
            .unwrap_or_else(|e| panic!("attach {id} to {network}: {e}"))
    }

    /// Starts a long-running command inside a namespace; killed on drop.
    pub fn spawn_in(&mut self, ns: &Path, args: &[&str]) -> u32 {
        let child = Command::new("nsenter")
            .arg(format!("--net={}", ns.display()))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        self.children.push(child);
        pid
    }

    /// Serves `body` over HTTP on `port` inside `ns` (busybox httpd).
    pub fn http_server(&mut self, ns: &Path, port: u16, body: &str) {
        let www = self
            .dir
            .path()
            .join(format!("www-{port}-{}", self.children.len()));
        std::fs::create_dir_all(&www).unwrap();
        std::fs::write(www.join("index.html"), body).unwrap();
        let www = www.to_str().unwrap().to_string();
        let listen = format!("0.0.0.0:{port}");
        self.spawn_in(ns, &[BUSYBOX, "httpd", "-f", "-p", &listen, "-h", &www]);
        // Wait until it listens.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if wget_in(ns, "127.0.0.1", port).is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("httpd on port {port} did not start");
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.net.teardown();
        for p in &self.netns {
            let _ = berth_net::netns::remove(p);
        }
    }
}

pub fn request(id: &str, ns: &Path, ports: Vec<PortRequest>) -> AttachRequest {
    AttachRequest {
        mac: None,
        container_id: format!("{id}{}", "0".repeat(64 - id.len().min(64))),
        container_name: id.into(),
        aliases: vec![format!("{id}-alias")],
        ip: None,
        netns: ns.to_path_buf(),
        interface: String::new(),
        ports,
        link_local: Vec::new(),
    }
}

pub fn tcp(host_ip: Option<&str>, host_port: u16, container_port: u16) -> PortRequest {
    PortRequest {
        host_ip: host_ip.map(|s| s.parse().unwrap()),
        host_port,
        container_port,
        proto: Proto::Tcp,
    }
}

/// Runs a command inside a namespace to completion.
pub fn in_ns(ns: &Path, args: &[&str]) -> Output {
    Command::new("timeout")
        .arg("10")
        .arg("nsenter")
        .arg(format!("--net={}", ns.display()))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

pub fn ping(ns: &Path, ip: Ipv4Addr) -> bool {
    in_ns(
        ns,
        &[BUSYBOX, "ping", "-c", "1", "-W", "2", &ip.to_string()],
    )
    .status
    .success()
}

/// An HTTP GET from inside a namespace (busybox nc; busybox wget crashes
/// in a fresh namespace); the response body or None.
pub fn wget_in(ns: &Path, ip: &str, port: u16) -> Option<String> {
    wget_in_within(ns, ip, port, 3)
}

/// [`wget_in`] with a connect timeout of `secs`.
pub fn wget_in_within(ns: &Path, ip: &str, port: u16, secs: u32) -> Option<String> {
    use std::io::Write;
    let mut child = Command::new("timeout")
        .arg("10")
        .arg("nsenter")
        .arg(format!("--net={}", ns.display()))
        .args([
            BUSYBOX,
            "nc",
            "-w",
            &secs.to_string(),
            ip,
            &port.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _ = child
        .stdin
        .take()
        .unwrap()
        .write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n");
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// A plain HTTP GET from the host (the test's own namespace).
pub fn http_get(addr: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let sa: std::net::SocketAddr = addr.parse().unwrap();
    let mut s = std::net::TcpStream::connect_timeout(&sa, Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    write!(s, "GET / HTTP/1.0\r\nHost: x\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// Names of host links starting with `prefix`.
pub fn host_links(prefix: &str) -> Vec<String> {
    berth_net::netlink::Netlink::open()
        .unwrap()
        .link_names(prefix)
        .unwrap()
}

pub fn link_exists(name: &str) -> bool {
    berth_net::netlink::Netlink::open()
        .unwrap()
        .link_index(name)
        .unwrap()
        .is_some()
}

/// A TCP port nothing on the host uses right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
