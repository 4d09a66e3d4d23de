//! `berth run IMAGE [COMMAND] [ARG...]`: a container from an image, in the
//! foreground, removed when it exits (the engine's `ps`/`rm`/`-d` arrive
//! with container management).

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use berth_engine::{Engine, Network, RunOptions};
use clap::Args;

/// An error of berth's own (not the container's): exit status 125.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RunFailed(pub String);

/// `berth run` flags (docker's names).
#[derive(Args, Debug)]
#[command(trailing_var_arg = true, disable_help_flag = true)]
pub struct RunArgs {
    /// Print help (`-h` is --hostname, as in docker).
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// Keep STDIN open.
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    tty: bool,
    /// Remove the container when it exits (always, for now: containers
    /// outlive `run` once the engine manages them).
    #[arg(long)]
    rm: bool,
    /// Run in the background.
    #[arg(short, long)]
    detach: bool,
    /// Set environment variables.
    #[arg(short, long = "env")]
    env: Vec<String>,
    /// Read in a file of environment variables.
    #[arg(long = "env-file")]
    env_file: Vec<std::path::PathBuf>,
    /// Working directory inside the container.
    #[arg(short, long)]
    workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short, long)]
    user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image.
    #[arg(long)]
    entrypoint: Option<String>,
    /// Container host name.
    #[arg(short = 'h', long)]
    hostname: Option<String>,
    /// Assign a name to the container.
    #[arg(long)]
    name: Option<String>,
    /// Mount the container's root filesystem as read only.
    #[arg(long)]
    read_only: bool,
    /// Connect a container to a network: `none` (default until the engine's
    /// bridge networks) or `host`.
    #[arg(long, visible_alias = "net", default_value = "none")]
    network: String,
    /// Pull image before running ("always", "missing", "never").
    #[arg(long, default_value = "missing")]
    pull: String,
    /// Publish a container's port(s) to the host.
    #[arg(short, long)]
    publish: Vec<String>,
    /// Publish all exposed ports to random ports.
    #[arg(short = 'P', long)]
    publish_all: bool,
    /// Bind mount a volume.
    #[arg(short, long)]
    volume: Vec<String>,
    /// Suppress the pull output.
    #[arg(short, long)]
    quiet: bool,
    /// The image.
    image: String,
    /// Command and arguments.
    #[arg(allow_hyphen_values = true)]
    command: Vec<String>,
}

fn unsupported(what: &str) -> anyhow::Error {
    RunFailed(format!(
        "not supported yet: {what} (arrives with the engine's container management)"
    ))
    .into()
}

fn env_file(path: &Path) -> Result<Vec<String>> {
    let s = std::fs::read_to_string(path).with_context(|| format!("open {}", path.display()))?;
    Ok(s.lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

/// Runs it; the exit code is the container's.
pub fn run(root: &Path, a: RunArgs) -> Result<ExitCode> {
    if a.detach {
        return Err(unsupported("detached containers (-d)"));
    }
    if !a.publish.is_empty() || a.publish_all {
        return Err(unsupported("publishing ports (-p/-P); use --network host"));
    }
    if !a.volume.is_empty() {
        return Err(unsupported("volumes (-v)"));
    }
    if a.name.is_some() {
        return Err(unsupported("named containers (--name)"));
    }
    let network = match a.network.as_str() {
        "none" => Network::None,
        "host" => Network::Host,
        other => {
            return Err(RunFailed(format!(
                "not supported yet: network {other:?} (none or host)"
            ))
            .into());
        }
    };
    if a.tty && !std::io::stdin().is_terminal() {
        return Err(RunFailed("the input device is not a TTY".into()).into());
    }
    let mut env = Vec::new();
    for f in &a.env_file {
        env.extend(env_file(f).map_err(|e| RunFailed(format!("{e:#}")))?);
    }
    env.extend(a.env.iter().cloned());
    let engine = Engine::open(root).map_err(|e| RunFailed(e.to_string()))?;
    let image = crate::pull_cmd::ensure_image(engine.images(), &a.image, &a.pull, a.quiet)
        .map_err(|e| RunFailed(format!("{e:#}")))?;
    let entrypoint = a
        .entrypoint
        .map(|e| if e.is_empty() { Vec::new() } else { vec![e] });
    let opts = RunOptions {
        cmd: a.command,
        entrypoint,
        env,
        workdir: a.workdir,
        user: a.user,
        hostname: a.hostname,
        tty: a.tty,
        interactive: a.interactive,
        read_only: a.read_only,
        network,
    };
    if !a.interactive {
        // docker run without -i: the container's stdin is empty
        let null = std::fs::File::open("/dev/null")?;
        rustix::stdio::dup2_stdin(&null)?;
    }
    let _ = a.rm;
    match engine.run_foreground(&image, &opts) {
        Ok(code) => Ok(ExitCode::from(code.clamp(0, 255) as u8)),
        Err(berth_engine::Error::Runtime(e)) => {
            let msg = e.to_string();
            // docker: 127 when the command is not found, 126 when it cannot be run
            let code = if msg.contains("No such file or directory") || msg.contains("not found") {
                127
            } else if msg.contains("Permission denied") || msg.contains("Exec format error") {
                126
            } else {
                bail!(RunFailed(msg))
            };
            eprintln!("berth: {msg}");
            Ok(ExitCode::from(code))
        }
        Err(e) => Err(RunFailed(e.to_string()).into()),
    }
}
