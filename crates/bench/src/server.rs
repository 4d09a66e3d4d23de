//! `berth server` with its node agent, started for a benchmark: a root of
//! its own network ranges holding the offline busybox image, the server as
//! a child process (stopped by its PID when dropped), a kube-rs client.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams};

/// The network ranges of a benchmark's root (`<root>/net.json`).
#[derive(Debug, Clone)]
pub struct NetRanges {
    /// The engine's nftables table (the service proxy's is `<table>-svc`).
    pub table: &'static str,
    /// The pods' bridge.
    pub bridge: &'static str,
    /// The bridge's subnet (`198.18.x.0/24`); its first address is the
    /// pods' gateway, where the node's DNS listens.
    pub subnet: &'static str,
    /// The pool further networks come from.
    pub pool: &'static str,
}

/// A running `berth server` with its node (`bench`).
pub struct BenchServer {
    process: Process,
    /// berth's root.
    pub root: PathBuf,
    /// A client with the admin kubeconfig.
    pub client: kube::Client,
    /// The admin kubeconfig's path (for `kubectl`).
    pub kubeconfig: PathBuf,
    /// Time from the spawn to the node being Ready.
    pub ready_after: Duration,
}

/// The server process: stopped (TERM, then KILL after 10 s) and its root's
/// networks pruned when dropped.
struct Process {
    child: Child,
    berth: PathBuf,
    root: PathBuf,
}

impl BenchServer {
    /// Makes `<dir>/root` with `net`, imports the busybox root filesystem
    /// at `$BUSYBOX_ROOTFS` as `busybox:stable`, starts `berth server`
    /// (log in `<dir>/server.log`) and waits until node `bench` is Ready.
    pub async fn start(berth: &Path, dir: &Path, net: &NetRanges) -> Result<BenchServer> {
        let root = dir.join("root");
        std::fs::create_dir_all(&root)?;
        let cfg = serde_json::json!({
            "table": net.table, "default_bridge": net.bridge,
            "default_subnet": net.subnet, "pool": net.pool, "pool_prefix": 24,
        });
        std::fs::write(root.join("net.json"), cfg.to_string())?;
        import_busybox(berth, &root, dir)?;
        let port = free_port()?;
        let kport = free_port()?;
        let log = std::fs::File::create(dir.join("server.log"))?;
        let started = Instant::now();
        let child = Command::new(berth)
            .arg("--root")
            .arg(&root)
            .args([
                "server",
                "--https-port",
                &port.to_string(),
                "--node-name",
                "bench",
                "--node-ip",
                "127.0.0.1",
                "--kubelet-port",
                &kport.to_string(),
                // the build machine's disk is well used: the kubelet's 15 %
                // imagefs default would refuse the pods
                "--eviction-hard",
                "memory.available<100Mi,nodefs.available<5%",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {}", berth.display()))?;
        let kubeconfig = root.join("server").join("admin.kubeconfig");
        // from here on, a failure stops the child through Drop
        let process = Process {
            child,
            berth: berth.to_owned(),
            root: root.clone(),
        };
        while !kubeconfig.exists() {
            if started.elapsed() > Duration::from_secs(30) {
                bail!("no kubeconfig after 30 s (see {})", dir.display());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let kc = kube::config::Kubeconfig::read_from(&kubeconfig)?;
        let config =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await?;
        let client = kube::Client::try_from(config)?;
        let nodes: Api<Node> = Api::all(client.clone());
        loop {
            if let Ok(n) = nodes.get("bench").await
                && n.status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            {
                break;
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("node not Ready after 30 s");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(BenchServer {
            process,
            root,
            client,
            kubeconfig,
            ready_after: started.elapsed(),
        })
    }

    /// The server's PID.
    pub fn pid(&self) -> u32 {
        self.process.child.id()
    }

    /// Resident memory of the server, in kB.
    pub fn rss_kb(&self) -> u64 {
        crate::status_kb(self.pid(), "VmRSS").unwrap_or(0)
    }

    /// CPU seconds (user + system) the server has used.
    pub fn cpu_secs(&self) -> f64 {
        cpu_secs(self.pid()).unwrap_or(0.0)
    }

    /// CPU seconds (user + system) of the server's children that it has
    /// waited for (the `nft` runs of its service proxy, among others).
    pub fn children_cpu_secs(&self) -> f64 {
        stat_secs(self.pid(), 13).unwrap_or(0.0)
    }

    /// Deletes every Deployment and pod of namespace `default` and waits
    /// until the pods are gone (their containers outlive the server).
    pub async fn clear_pods(&self) -> Result<()> {
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), "default");
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), "default");
        let all = ListParams::default();
        deployments
            .delete_collection(&DeleteParams::default(), &all)
            .await?;
        pods.delete_collection(&DeleteParams::default(), &all)
            .await?;
        let t = Instant::now();
        while !pods.list(&all).await?.items.is_empty() {
            if t.elapsed() > Duration::from_secs(120) {
                bail!("pods still there after 120 s");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }

    /// The server's CPU use over `secs` seconds from now, in % of a core.
    pub async fn cpu_over(&self, secs: u64) -> f64 {
        let c0 = self.cpu_secs();
        tokio::time::sleep(Duration::from_secs(secs)).await;
        (self.cpu_secs() - c0) * 100.0 / secs as f64
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
            let t = Instant::now();
            let mut gone = false;
            while t.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = self.child.try_wait() {
                    gone = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if !gone {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        // the root's bridge and rules go with it
        let _ = Command::new(&self.berth)
            .arg("--root")
            .arg(&self.root)
            .args(["network", "prune", "-f"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// `berth import` of `$BUSYBOX_ROOTFS` as `busybox:stable`.
fn import_busybox(berth: &Path, root: &Path, dir: &Path) -> Result<()> {
    let tar = dir.join("busybox.tar");
    let rootfs =
        std::env::var("BUSYBOX_ROOTFS").context("BUSYBOX_ROOTFS: a busybox root filesystem")?;
    let st = Command::new("tar")
        .args(["-C", &rootfs, "--exclude=./.complete", "-cf"])
        .arg(&tar)
        .arg(".")
        .status()?;
    if !st.success() {
        bail!("tar {rootfs}");
    }
    let st = Command::new(berth)
        .arg("--root")
        .arg(root)
        .args(["import"])
        .arg(&tar)
        .arg("busybox:stable")
        .stdout(Stdio::null())
        .status()?;
    if !st.success() {
        bail!("berth import");
    }
    Ok(())
}

/// A free TCP port on loopback.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// CPU seconds (user + system) of a process.
pub fn cpu_secs(pid: u32) -> Option<f64> {
    stat_secs(pid, 11)
}

/// Two clock-tick fields of `/proc/<pid>/stat` (counted from after the
/// command's `) `) added, in seconds: 11 = utime + stime, 13 = cutime +
/// cstime.
fn stat_secs(pid: u32, first: usize) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(") ")?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(first)?.parse::<f64>().ok()? + f.get(first + 1)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}
