//! `berth pull` and `berth push`, their progress output (a line per layer
//! with a bar on a terminal, plain status lines otherwise, as docker
//! prints them), and the registry settings from berth's config file.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use berth_engine::Engine;
use berth_image::db::ImageRecord;
use berth_image::registry::{Client, Progress, RegistryOptions, Status};
use berth_types::Reference;
use berth_types::image::Platform;
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// `berth pull`.
#[derive(Args, Debug)]
pub struct PullArgs {
    /// Download all tagged images in the repository.
    #[arg(short, long)]
    all_tags: bool,
    /// Set platform if server is multi-platform capable (`linux/amd64`).
    #[arg(long)]
    platform: Option<String>,
    /// Suppress verbose output.
    #[arg(short, long)]
    quiet: bool,
    /// NAME[:TAG|@DIGEST]
    name: String,
}

/// `berth push`.
#[derive(Args, Debug)]
pub struct PushArgs {
    /// Push all tags of an image to the repository.
    #[arg(short, long)]
    all_tags: bool,
    /// Suppress verbose output.
    #[arg(short, long)]
    quiet: bool,
    /// NAME[:TAG]
    name: String,
}

/// Registry settings from berth's config file (`$BERTH_CONFIG`, else
/// `/etc/berth/daemon.json`; see `berth_image::config`).
pub fn registry_options() -> Result<RegistryOptions> {
    Ok(berth_image::config::Settings::load()?.registry)
}

/// Prints progress: bars on a terminal, status lines otherwise.
struct Printer {
    multi: Option<MultiProgress>,
    bars: Mutex<HashMap<String, ProgressBar>>,
    last: Mutex<HashMap<String, String>>,
    quiet: bool,
    to_stderr: bool,
}

fn status_text(s: &Status) -> String {
    s.text()
}

impl Printer {
    fn new(quiet: bool, to_stderr: bool) -> Printer {
        let tty = if to_stderr {
            std::io::stderr().is_terminal()
        } else {
            std::io::stdout().is_terminal()
        };
        let multi = (!quiet && tty).then(|| {
            let target = if to_stderr {
                indicatif::ProgressDrawTarget::stderr()
            } else {
                indicatif::ProgressDrawTarget::stdout()
            };
            MultiProgress::with_draw_target(target)
        });
        Printer {
            multi,
            bars: Mutex::new(HashMap::new()),
            last: Mutex::new(HashMap::new()),
            quiet,
            to_stderr,
        }
    }

    fn line(&self, line: &str) {
        if self.to_stderr {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }

    fn println(&self, line: &str) {
        if self.quiet {
            return;
        }
        match &self.multi {
            Some(m) => {
                let _ = m.println(line);
            }
            None => self.line(line),
        }
    }
}

impl Progress for Printer {
    fn layer(&self, id: &str, status: Status) {
        if self.quiet {
            return;
        }
        let text = status_text(&status);
        if let Some(m) = &self.multi {
            let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
            let bar = bars.entry(id.to_owned()).or_insert_with(|| {
                let b = m.add(ProgressBar::new(0));
                b.set_style(
                    ProgressStyle::with_template("{prefix}: {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                b.set_prefix(id.to_owned());
                b
            });
            match status {
                Status::Downloading { current, total } | Status::Pushing { current, total } => {
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{prefix}: {msg} [{bar:50}] {bytes}/{total_bytes}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    bar.set_length(total);
                    bar.set_position(current);
                    bar.set_message(text);
                }
                _ => {
                    bar.set_style(
                        ProgressStyle::with_template("{prefix}: {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    bar.set_message(text);
                    if matches!(
                        status,
                        Status::PullComplete
                            | Status::AlreadyExists
                            | Status::Pushed
                            | Status::LayerExists
                            | Status::Mounted(_)
                    ) {
                        bar.tick();
                    }
                }
            }
            return;
        }
        // plain lines: one per change of status, as docker prints when not on a terminal
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.get(id) != Some(&text) {
            last.insert(id.to_owned(), text.clone());
            self.line(&format!("{id}: {text}"));
        }
    }

    fn message(&self, line: &str) {
        self.println(line);
    }
}

impl Drop for Printer {
    fn drop(&mut self) {
        for b in self.bars.lock().unwrap_or_else(|p| p.into_inner()).values() {
            b.finish();
        }
    }
}

fn platform_of(p: Option<&str>) -> Result<Platform> {
    match p {
        Some(s) => Platform::parse(s)
            .with_context(|| format!("invalid platform {s:?} (os/arch[/variant])")),
        None => Ok(Platform::host()),
    }
}

fn has_explicit_tag(name: &str) -> bool {
    let last = name.rsplit('/').next().unwrap_or(name);
    last.contains(':') || name.contains('@')
}

/// Pulls `name`, printing as `docker pull` does (on stderr for `run`,
/// whose stdout is the container's). Returns the image.
pub fn pull_one(
    engine: &Engine,
    client: &Client,
    name: &str,
    platform: &Platform,
    quiet: bool,
    for_run: bool,
) -> Result<ImageRecord> {
    let r = Reference::parse(name)?;
    let printer = Arc::new(Printer::new(quiet, for_run));
    if !has_explicit_tag(name) {
        printer.message("Using default tag: latest");
    }
    let what = r
        .tag()
        .map(str::to_owned)
        .unwrap_or_else(|| r.digest().map(|d| d.to_string()).unwrap_or_default());
    printer.message(&format!("{what}: Pulling from {}", r.path()));
    let pulled = engine.pull_image(client, &r, platform, printer.clone())?;
    printer.message(&format!("Digest: {}", pulled.digest));
    let fam = r.familiar();
    if pulled.up_to_date {
        printer.message(&format!("Status: Image is up to date for {fam}"));
    } else {
        printer.message(&format!("Status: Downloaded newer image for {fam}"));
    }
    drop(printer);
    if !for_run {
        println!("{r}");
    }
    Ok(pulled.record)
}

/// `berth pull`.
pub fn pull(engine: &Engine, a: &PullArgs) -> Result<()> {
    if a.all_tags {
        bail!("not supported yet: pull --all-tags");
    }
    let client = Client::new(registry_options()?);
    pull_one(
        engine,
        &client,
        &a.name,
        &platform_of(a.platform.as_deref())?,
        a.quiet,
        false,
    )?;
    Ok(())
}

/// `berth push`.
pub fn push(engine: &Engine, a: &PushArgs) -> Result<()> {
    let store = engine.images();
    let r = Reference::parse(&a.name)?;
    if r.digest().is_some() {
        bail!("cannot push a digest reference");
    }
    let targets: Vec<Reference> = if a.all_tags {
        store
            .list()?
            .into_iter()
            .flat_map(|s| s.tags)
            .filter_map(|t| Reference::parse(&t).ok())
            .filter(|t| t.repository() == r.repository())
            .collect()
    } else {
        vec![r.clone()]
    };
    if targets.is_empty() {
        bail!(
            "An image does not exist locally with the tag: {}",
            r.familiar_repository()
        );
    }
    let client = Client::new(registry_options()?);
    if !a.quiet {
        println!("The push refers to repository [{}]", r.repository());
    }
    for t in targets {
        let name = t.to_string();
        store.resolve(&name).map_err(|_| {
            anyhow::anyhow!(
                "An image does not exist locally with the tag: {}",
                t.familiar()
            )
        })?;
        let printer = Arc::new(Printer::new(a.quiet, false));
        let pushed = engine.push_image(&client, &name, &t, printer.clone())?;
        drop(printer);
        if !a.quiet {
            println!(
                "{}: digest: {} size: {}",
                t.tag().unwrap_or("latest"),
                pushed.digest,
                pushed.size
            );
        } else {
            println!("{}", t.familiar());
        }
    }
    Ok(())
}

/// The image `run` uses: pulled first per `policy` (`missing`, `always`,
/// `never`).
pub fn ensure_image(engine: &Engine, name: &str, policy: &str, quiet: bool) -> Result<ImageRecord> {
    let local = engine.images().resolve(name);
    match (policy, local) {
        ("never", Ok(rec)) | ("missing", Ok(rec)) => Ok(rec),
        ("never", Err(e)) => Err(e.into()),
        ("missing", Err(e)) if e.kind() != berth_types::ErrorKind::NotFound => Err(e.into()),
        ("missing" | "always", _) => {
            let r = Reference::parse(name)?;
            if policy == "missing" {
                eprintln!("Unable to find image '{}' locally", r.familiar());
            }
            let client = Client::new(registry_options()?);
            pull_one(engine, &client, name, &Platform::host(), quiet, true)
        }
        (other, _) => bail!("invalid pull policy {other:?}: always, missing or never"),
    }
}
