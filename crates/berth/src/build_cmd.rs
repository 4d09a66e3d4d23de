//! `berth build`: a Dockerfile built with the engine library (no daemon),
//! docker's flags, and docker's classic output (`Step 1/4 : …`).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use berth_build::builder::{BuildOptions, Progress, Puller, Secret, SecretSource};
use berth_engine::Engine;
use berth_types::{Digest, Reference};
use clap::Args;

/// `berth build`.
#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Name and optionally a tag in the `name:tag` format.
    #[arg(short, long = "tag")]
    tag: Vec<String>,
    /// Name of the Dockerfile (default: `PATH/Dockerfile`; `-` reads it from STDIN).
    #[arg(short, long)]
    file: Option<String>,
    /// Set build-time variables (`KEY=VALUE`, or `KEY` to take it from the environment).
    #[arg(long = "build-arg")]
    build_arg: Vec<String>,
    /// Set the target build stage to build.
    #[arg(long)]
    target: Option<String>,
    /// Set metadata for an image (`KEY=VALUE`).
    #[arg(long)]
    label: Vec<String>,
    /// Do not use cache when building the image.
    #[arg(long)]
    no_cache: bool,
    /// Do not cache the specified stages.
    #[arg(long)]
    no_cache_filter: Vec<String>,
    /// Images to consider as cache sources.
    #[arg(long)]
    cache_from: Vec<String>,
    /// Always attempt to pull a newer version of the image.
    #[arg(long)]
    pull: bool,
    /// Set the networking mode for the RUN instructions during build.
    #[arg(long)]
    network: Option<String>,
    /// Add a custom host-to-IP mapping (`host:ip`).
    #[arg(long = "add-host")]
    add_host: Vec<String>,
    /// Secret to expose to the build (`id=mysecret[,src=/local/secret]` or `id=X,env=VAR`).
    #[arg(long)]
    secret: Vec<String>,
    /// SSH agent socket to expose to the build (`default` or `ID`, `=SOCKET`; default `$SSH_AUTH_SOCK`).
    #[arg(long)]
    ssh: Vec<String>,
    /// Set target platform for build.
    #[arg(long)]
    platform: Option<String>,
    /// Suppress the build output and print image ID on success.
    #[arg(short, long)]
    quiet: bool,
    /// Write the image ID to the file.
    #[arg(long)]
    iidfile: Option<PathBuf>,
    /// Type of progress output (`auto`, `plain`, `tty`).
    #[arg(long, default_value = "auto")]
    progress: String,
    /// Remove intermediate containers after a successful build.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    rm: bool,
    /// Always remove intermediate containers.
    #[arg(long)]
    force_rm: bool,
    /// Ulimit options (`nofile=1024:2048`).
    #[arg(long)]
    ulimit: Vec<String>,
    /// Memory nodes in which to allow execution (0-3, 0,1).
    #[arg(long)]
    cpuset_mems: Option<String>,
    /// Size of /dev/shm (`64m`).
    #[arg(long)]
    shm_size: Option<String>,
    /// Memory limit.
    #[arg(short, long)]
    memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap.
    #[arg(long)]
    memory_swap: Option<String>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long)]
    cpu_shares: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long)]
    cpuset_cpus: Option<String>,
    /// Limit the CPU CFS (Completely Fair Scheduler) period.
    #[arg(long)]
    cpu_period: Option<i64>,
    /// Limit the CPU CFS (Completely Fair Scheduler) quota.
    #[arg(long)]
    cpu_quota: Option<i64>,
    /// Squash newly built layers into a single new layer (not supported).
    #[arg(long)]
    squash: bool,
    /// PATH | URL | `-`
    context: String,
}

/// Classic output on stdout (or nothing with `-q`).
struct Plain {
    quiet: bool,
    out: std::io::Stdout,
}

impl Progress for Plain {
    fn stream(&mut self, text: &str) {
        if !self.quiet {
            let mut o = self.out.lock();
            let _ = o.write_all(text.as_bytes());
            let _ = o.flush();
        }
    }
    fn warning(&mut self, text: &str) {
        if !self.quiet {
            eprintln!("[Warning] {text}");
        }
    }
}

/// The live view on a terminal: a line per step with its state and time,
/// the last line of a running step's output under it; a failed step's
/// whole output is printed when it fails.
struct Live {
    multi: indicatif::MultiProgress,
    bar: Option<(indicatif::ProgressBar, String, std::time::Instant)>,
    output: String,
    partial: String,
}

impl Live {
    fn new() -> Live {
        Live {
            multi: indicatif::MultiProgress::with_draw_target(
                indicatif::ProgressDrawTarget::stdout(),
            ),
            bar: None,
            output: String::new(),
            partial: String::new(),
        }
    }

    fn finish(&mut self, state: &str) {
        if let Some((bar, title, start)) = self.bar.take() {
            bar.set_style(
                indicatif::ProgressStyle::with_template("{msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.finish_with_message(format!(
                "{title}  {state} {:.1}s",
                start.elapsed().as_secs_f64()
            ));
        }
        self.output.clear();
    }

    fn line(&mut self, line: &str) {
        if let Some(rest) = line.strip_prefix("Step ") {
            self.finish("done");
            let bar = self.multi.add(indicatif::ProgressBar::new_spinner());
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {prefix}  {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            let title = format!("[{}", rest.replacen(" : ", "] ", 1));
            bar.set_prefix(title.clone());
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            self.bar = Some((bar, title, std::time::Instant::now()));
        } else if line == " ---> Using cache" {
            self.finish("CACHED");
        } else if line.starts_with(" ---> Running in ") || line.starts_with("Removing intermediate")
        {
        } else if line.starts_with(" ---> ") {
            self.finish("done");
        } else if line.starts_with("Successfully ") || line.starts_with("[Warning]") {
            self.finish("done");
            let _ = self.multi.println(line);
        } else {
            self.output.push_str(line);
            self.output.push('\n');
            match &self.bar {
                Some((bar, _, _)) => bar.set_message(line.chars().take(100).collect::<String>()),
                None => {
                    let _ = self.multi.println(line);
                }
            }
        }
    }

    /// A failed step: its title and all it printed.
    fn failed(&mut self) {
        let out = std::mem::take(&mut self.output);
        self.finish("ERROR");
        for l in out.lines() {
            let _ = self.multi.println(format!("  {l}"));
        }
    }
}

impl Progress for Live {
    fn stream(&mut self, text: &str) {
        self.partial.push_str(text);
        while let Some(i) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=i).collect();
            self.line(line.trim_end_matches('\n'));
        }
    }
}

/// Pulls with berth's registry settings, as `berth pull` does.
struct CliPuller;

impl Puller for CliPuller {
    fn pull(
        &self,
        engine: &Engine,
        r: &Reference,
        platform: Option<&str>,
        _out: &mut dyn Progress,
    ) -> std::result::Result<Digest, String> {
        let platform = match platform {
            Some(p) => berth_types::image::Platform::parse(p)
                .ok_or_else(|| format!("invalid platform {p:?}"))?,
            None => berth_types::image::Platform::host(),
        };
        let client = berth_image::registry::Client::new(
            crate::pull_cmd::registry_options().map_err(|e| e.to_string())?,
        );
        crate::pull_cmd::pull_one(engine, &client, &r.to_string(), &platform, false, true)
            .map(|rec| rec.id)
            .map_err(|e| format!("{e:#}"))
    }
}

fn size(v: &Option<String>, what: &str) -> Result<i64> {
    match v {
        None => Ok(0),
        Some(s) if s == "-1" => Ok(-1),
        Some(s) => berth_docker_api::syntax::parse_size(s)
            .map(|n| n as i64)
            .map_err(|e| anyhow::anyhow!("invalid {what}: {e}")),
    }
}

fn options(a: &BuildArgs) -> Result<BuildOptions> {
    if a.squash {
        bail!("not supported yet: --squash");
    }
    let mut o = BuildOptions::default();
    for t in &a.tag {
        o.tags.push(Reference::parse(t).map_err(|e| {
            anyhow::anyhow!(
                "invalid argument {t:?} for \"-t, --tag\" flag: invalid reference format: {}",
                e.reason
            )
        })?);
    }
    let mut args = BTreeMap::new();
    for b in &a.build_arg {
        match b.split_once('=') {
            Some((k, v)) => {
                args.insert(k.to_owned(), Some(v.to_owned()));
            }
            None => {
                // docker: a name alone takes the value from the environment,
                // and is left out when the environment has none
                if let Ok(v) = std::env::var(b) {
                    args.insert(b.clone(), Some(v));
                }
            }
        }
    }
    o.build_args = args;
    for l in &a.label {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        o.labels.insert(k.to_owned(), v.to_owned());
    }
    o.target = a.target.clone();
    o.no_cache = a.no_cache;
    o.no_cache_filter = a.no_cache_filter.clone();
    o.cache_from = a.cache_from.clone();
    o.pull = a.pull;
    o.rm = a.rm;
    o.force_rm = a.force_rm;
    o.network = a.network.clone();
    for h in &a.add_host {
        o.extra_hosts
            .push(berth_docker_api::syntax::parse_add_host(h).map_err(anyhow::Error::msg)?);
    }
    for s in &a.secret {
        o.secrets.push(secret(s)?);
    }
    for s in &a.ssh {
        let (id, path) = match s.split_once('=') {
            Some((id, p)) => (id.to_owned(), PathBuf::from(p)),
            None => (
                s.clone(),
                std::env::var_os("SSH_AUTH_SOCK")
                    .map(PathBuf::from)
                    .ok_or_else(|| anyhow::anyhow!("--ssh {s}: SSH_AUTH_SOCK is not set"))?,
            ),
        };
        if path.to_string_lossy().contains(',') {
            bail!("not supported yet: --ssh {s} with several sockets or key files");
        }
        o.ssh
            .push(berth_build::builder::SshAgent { id, socket: path });
    }
    o.platform = a.platform.clone();
    let shm = size(&a.shm_size, "--shm-size")?;
    o.shm_size = (shm > 0).then_some(shm as u64);
    o.resources.memory = size(&a.memory, "--memory")?;
    o.resources.memory_swap = size(&a.memory_swap, "--memory-swap")?;
    o.resources.cpu_shares = a.cpu_shares.unwrap_or(0);
    o.resources.cpuset_cpus = a.cpuset_cpus.clone().unwrap_or_default();
    o.resources.cpuset_mems = a.cpuset_mems.clone().unwrap_or_default();
    for u in &a.ulimit {
        o.ulimits
            .push(berth_docker_api::syntax::parse_ulimit(u).map_err(anyhow::Error::msg)?);
    }
    o.resources.cpu_period = a.cpu_period.unwrap_or(0);
    o.resources.cpu_quota = a.cpu_quota.unwrap_or(0);
    o.puller = Some(Box::new(CliPuller));
    Ok(o)
}

/// `--secret id=…,src=…|env=…` (BuildKit's syntax; `source`, `type=file|env`).
fn secret(s: &str) -> Result<Secret> {
    let (mut id, mut src, mut env, mut kind) = (None, None, None, None);
    for part in s.split(',') {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("invalid secret {s:?}: expected key=value"))?;
        match k {
            "id" => id = Some(v.to_owned()),
            "src" | "source" => src = Some(v.to_owned()),
            "env" => env = Some(v.to_owned()),
            "type" => kind = Some(v.to_owned()),
            other => bail!("invalid secret {s:?}: unexpected key {other:?}"),
        }
    }
    let id = id
        .or_else(|| src.clone())
        .or_else(|| env.clone())
        .ok_or_else(|| anyhow::anyhow!("invalid secret {s:?}: no id"))?;
    let source = match (kind.as_deref(), src, env) {
        (Some("env"), Some(v), _) | (_, None, Some(v)) => SecretSource::Bytes(
            std::env::var(&v)
                .with_context(|| format!("secret {id}: environment variable {v} is not set"))?
                .into_bytes(),
        ),
        (_, Some(p), _) => SecretSource::File(PathBuf::from(p)),
        (_, None, None) => match std::env::var(&id) {
            Ok(v) => SecretSource::Bytes(v.into_bytes()),
            Err(_) => SecretSource::File(PathBuf::from(&id)),
        },
    };
    Ok(Secret { id, source })
}

/// `berth build`.
pub fn build(root: &std::path::Path, a: &BuildArgs) -> Result<ExitCode> {
    let opts = options(a)?;
    if !matches!(a.progress.as_str(), "auto" | "plain" | "tty") {
        bail!("invalid --progress {:?}: auto, plain or tty", a.progress);
    }
    if a.progress == "tty" && !std::io::stdout().is_terminal() {
        bail!("--progress tty needs a terminal");
    }
    let engine = Engine::open(root)?;
    berth_build::intake::sweep(root);
    let cancel = Arc::new(AtomicBool::new(false));
    let live = !a.quiet
        && (a.progress == "tty" || (a.progress == "auto" && std::io::stdout().is_terminal()));
    let mut plain = Plain {
        quiet: a.quiet,
        out: std::io::stdout(),
    };
    let mut tty = live.then(Live::new);
    let out: &mut dyn Progress = match &mut tty {
        Some(t) => t,
        None => &mut plain,
    };
    let stdin_dockerfile = a.file.as_deref() == Some("-");
    let received;
    let (dir, dockerfile_name, dockerfile_text) = if a.context == "-" {
        if stdin_dockerfile {
            bail!("invalid argument: can't use stdin for both build context and dockerfile");
        }
        received = berth_build::intake::receive(root, std::io::stdin().lock())?;
        (received.path().to_path_buf(), a.file.clone(), None)
    } else {
        let dir = PathBuf::from(&a.context);
        if !dir.is_dir() {
            bail!("unable to prepare context: path {:?} not found", a.context);
        }
        let text = if stdin_dockerfile {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("read the Dockerfile from STDIN")?;
            Some(s)
        } else {
            None
        };
        (dir, a.file.clone(), text)
    };
    let prepared = match dockerfile_text {
        Some(text) => berth_build::context::prepare_with_text(&dir, "-", text)?,
        None => {
            let name = dockerfile_name.unwrap_or_else(|| "Dockerfile".into());
            // docker: a relative -f is relative to the current directory
            // (then to the context); inside the context it is read from
            // there, outside it from where it is
            let p = PathBuf::from(&name);
            let abs = if p.is_absolute() {
                p
            } else {
                std::env::current_dir()?.join(&p)
            };
            let abs = if abs.exists() || a.file.is_none() {
                abs
            } else {
                dir.join(&name)
            };
            let abs = if a.file.is_none() {
                dir.join("Dockerfile")
            } else {
                abs
            };
            let cdir = dir.canonicalize().context("unable to prepare context")?;
            let cabs = abs.canonicalize().map_err(|_| {
                anyhow::anyhow!(
                    "unable to prepare context: unable to evaluate symlinks in Dockerfile path: \
                     lstat {}: no such file or directory",
                    abs.display()
                )
            })?;
            match cabs.strip_prefix(&cdir) {
                Ok(rel) => berth_build::context::prepare(&dir, &rel.to_string_lossy())?,
                Err(_) => {
                    let text = std::fs::read_to_string(&cabs)
                        .with_context(|| format!("unable to read Dockerfile {name}"))?;
                    berth_build::context::prepare_with_text(&dir, &name, text)?
                }
            }
        }
    };
    let r = berth_build::builder::build(
        &engine,
        &prepared.tree,
        &prepared.name,
        &prepared.text,
        &opts,
        out,
        &cancel,
    );
    match r {
        Ok(built) => {
            if a.quiet {
                println!("{}", built.id);
            }
            if let Some(f) = &a.iidfile {
                std::fs::write(f, built.id.to_string())
                    .with_context(|| format!("write {}", f.display()))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if let Some(t) = &mut tty {
                t.failed();
            }
            eprintln!("{e}");
            Ok(ExitCode::from(1))
        }
    }
}
