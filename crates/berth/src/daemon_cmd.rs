//! `berth daemon`: the Docker Engine API on a unix socket (root only) over
//! the engine library. One daemon per root (a lock in the root); its PID in
//! `--pidfile`; SIGTERM or SIGINT shut it down cleanly. Containers keep
//! running across daemon restarts: they belong to their monitors.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;

/// `berth daemon` flags (dockerd's names).
#[derive(Args, Debug)]
pub struct DaemonArgs {
    /// Where to listen: `unix:///run/berth/docker.sock` (the default), or
    /// `tcp://127.0.0.1:2376` with --tlsverify (repeatable).
    #[arg(short = 'H', long)]
    host: Vec<String>,
    /// Require TLS client certificates signed by --tlscacert (TCP only).
    #[arg(long)]
    tlsverify: bool,
    /// Trust certs signed only by this CA.
    #[arg(long)]
    tlscacert: Option<PathBuf>,
    /// Path to TLS certificate file.
    #[arg(long)]
    tlscert: Option<PathBuf>,
    /// Path to TLS key file.
    #[arg(long)]
    tlskey: Option<PathBuf>,
    /// Path to use for the daemon PID file (default: <root>/daemon.pid).
    #[arg(short, long)]
    pidfile: Option<PathBuf>,
}

/// Runs the daemon until SIGTERM/SIGINT.
pub fn run(root: &Path, a: &DaemonArgs) -> Result<()> {
    berth_sys::malloc::tune_for_server();
    let hosts = if a.host.is_empty() {
        vec!["unix:///run/berth/docker.sock".to_owned()]
    } else {
        a.host.clone()
    };
    let mut unix = Vec::new();
    let mut tcp = Vec::new();
    for h in &hosts {
        if let Some(p) = h.strip_prefix("unix://") {
            unix.push(PathBuf::from(p));
        } else if let Some(addr) = h.strip_prefix("tcp://") {
            // the API runs containers as root: never without client certificates
            if !a.tlsverify {
                bail!(
                    "listening on {h} needs --tlsverify with --tlscacert, --tlscert and --tlskey \
                     (berth serves TCP only to clients with a certificate)"
                );
            }
            let addr: std::net::SocketAddr = addr
                .parse()
                .with_context(|| format!("invalid address in {h}"))?;
            tcp.push(addr);
        } else {
            bail!("invalid -H {h}: unix:///path or tcp://ADDR:PORT");
        }
    }
    let tls = if tcp.is_empty() {
        None
    } else {
        let need = |p: &Option<PathBuf>, f: &str| {
            p.clone().ok_or_else(|| anyhow!("--tlsverify needs --{f}"))
        };
        Some(berth_docker_api::mutual_tls(
            &need(&a.tlscacert, "tlscacert")?,
            &need(&a.tlscert, "tlscert")?,
            &need(&a.tlskey, "tlskey")?,
        )?)
    };
    std::fs::create_dir_all(root).with_context(|| format!("create {}", root.display()))?;
    // one daemon per root
    let lock_path = root.join("daemon.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("open {}", lock_path.display()))?;
    if rustix::fs::flock(
        lock.as_fd(),
        rustix::fs::FlockOperation::NonBlockingLockExclusive,
    )
    .is_err()
    {
        bail!(
            "another berth daemon is running on {} (it holds {})",
            root.display(),
            lock_path.display()
        );
    }
    // the engine creates its directories before the first request; dead
    // containers are laid to rest (and taken off their networks) before
    // the bridges and rules of the living ones are restored, and restart
    // policies apply (Engine::recover)
    let engine = berth_engine::Engine::open(root).map_err(|e| anyhow!("{e}"))?;
    let rec = engine.recover();
    for e in &rec.errors {
        tracing::warn!("{e}");
    }
    for sock in &unix {
        if let Some(dir) = sock.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        match std::fs::remove_file(sock) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("remove stale {}", sock.display())),
        }
    }
    let pidfile = a.pidfile.clone().unwrap_or_else(|| root.join("daemon.pid"));
    std::fs::write(&pidfile, format!("{}\n", std::process::id()))
        .with_context(|| format!("write {}", pidfile.display()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let root = root.to_path_buf();
    let unix2 = unix.clone();
    let registry = crate::pull_cmd::registry_options()?;
    let r: Result<()> = rt.block_on(async move {
        let mut listeners = Vec::new();
        for sock in &unix2 {
            // root only: the socket is 0600 (umask while binding)
            let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
            let listener = tokio::net::UnixListener::bind(sock);
            rustix::process::umask(old);
            let listener = listener.with_context(|| format!("listen on {}", sock.display()))?;
            tracing::info!("berth daemon listening on unix://{}", sock.display());
            eprintln!("berth daemon: API listening on unix://{}", sock.display());
            listeners.push(berth_docker_api::Listener::Unix(listener));
        }
        for addr in &tcp {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listen on {addr}"))?;
            eprintln!("berth daemon: API listening on tcp://{addr} (TLS, client certificates required)");
            listeners.push(berth_docker_api::Listener::Tls(
                l,
                tls.clone().expect("checked above"),
            ));
        }
        let engine_root = root.clone();
        let shutdown = async move {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            let int = tokio::signal::ctrl_c();
            let signal = tokio::select! {
                _ = async { match &mut term { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => "SIGTERM",
                _ = int => "SIGINT",
            };
            // live-restore: the containers belong to their monitors, not
            // to the daemon, and a later daemon (or the CLI) finds them
            let running = berth_engine::Engine::open(&engine_root)
                .map(|e| e.list().iter().filter(|c| c.state.is_active()).count())
                .unwrap_or(0);
            eprintln!(
                "berth daemon: {signal}: shutting down; containers keep running \
                 (live-restore: {running} running now, each held by its own monitor)"
            );
        };
        berth_docker_api::serve(listeners, root, registry, shutdown).await?;
        Ok(())
    });
    for sock in &unix {
        let _ = std::fs::remove_file(sock);
    }
    let _ = std::fs::remove_file(&pidfile);
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    drop(lock);
    r
}
