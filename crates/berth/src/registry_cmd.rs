//! `berth registry serve`: the OCI distribution registry, its data under
//! `<root>/registry` (apart from the image store, whose garbage collector
//! must never see the registry's blobs).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

/// `berth registry ...`
#[derive(Subcommand, Debug)]
pub enum RegistryCommand {
    /// Serve the OCI distribution API (docker push/pull, skopeo, oras...).
    Serve(ServeArgs),
}

/// `berth registry serve` flags.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (loopback by default; anything else should use
    /// TLS and authentication).
    #[arg(long, default_value = "127.0.0.1:5000")]
    addr: std::net::SocketAddr,
    /// TLS certificate chain (PEM).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require HTTP basic authentication with the users of this htpasswd
    /// file (bcrypt, `htpasswd -B`).
    #[arg(long, conflicts_with = "auth")]
    htpasswd: Option<PathBuf>,
    /// Require HTTP basic authentication as `user:password` (prefer
    /// --htpasswd or the BERTH_REGISTRY_AUTH variable: arguments are visible
    /// to every user of the machine).
    #[arg(long, env = "BERTH_REGISTRY_AUTH", hide_env_values = true)]
    auth: Option<String>,
    /// Largest manifest accepted, in bytes.
    #[arg(long, default_value_t = berth_registry::DEFAULT_MAX_MANIFEST_BYTES)]
    max_manifest_bytes: usize,
}

/// Runs a registry command.
pub fn run(root: &Path, cmd: RegistryCommand) -> Result<()> {
    match cmd {
        RegistryCommand::Serve(a) => serve(root, a),
    }
}

fn serve(root: &Path, a: ServeArgs) -> Result<()> {
    let auth = match (&a.htpasswd, &a.auth) {
        (Some(p), _) => Some(berth_registry::Auth::from_htpasswd(p)?),
        (None, Some(up)) => Some(berth_registry::Auth::from_user_password(up)?),
        (None, None) => None,
    };
    if !a.addr.ip().is_loopback() && (auth.is_none() || a.tls_cert.is_none()) {
        tracing::warn!(
            "the registry listens on {} without {}: anyone who can reach it can read and write images",
            a.addr,
            if a.tls_cert.is_none() {
                "TLS"
            } else {
                "authentication"
            }
        );
    }
    if a.max_manifest_bytes == 0 {
        bail!("--max-manifest-bytes must be positive");
    }
    let config = berth_registry::Config {
        addr: a.addr,
        root: root.join("registry"),
        tls: a.tls_cert.zip(a.tls_key),
        auth,
        max_manifest_bytes: a.max_manifest_bytes,
        ..Default::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    rt.block_on(async move {
        let server = berth_registry::bind(config).await?;
        eprintln!("berth registry listening on {}", server.local_addr());
        server.run(shutdown_signal()).await?;
        Ok::<(), anyhow::Error>(())
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
