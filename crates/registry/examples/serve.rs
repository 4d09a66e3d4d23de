//! Runs the registry in the foreground until Ctrl-C, for trying it out and
//! for running external suites (the distribution-spec conformance test)
//! against it: `cargo run -p berth-registry --example serve -- ADDR ROOT`.
//! Logs go to stderr; `RUST_LOG=debug` shows every request.

use std::path::PathBuf;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(root)) = (args.next(), args.next()) else {
        return Err("usage: serve ADDR ROOT".into());
    };
    let config = berth_registry::Config {
        addr: addr.parse()?,
        root: PathBuf::from(root),
        ..Default::default()
    };
    berth_registry::serve(config, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
