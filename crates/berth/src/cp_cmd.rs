//! `berth cp`: files between a container and the host, with docker's
//! rules: `ctr:/dir` copied to an existing host directory lands inside it,
//! to a new name it becomes that name; the same the other way. The
//! container side goes through the engine's root-confined copy (see
//! `berth_engine::archive`); `-` streams a tar on stdin/stdout.

use std::os::fd::AsFd;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use berth_engine::Engine;
use berth_engine::archive::{extract_tar, write_tar};
use clap::Args;

/// `berth cp` arguments.
#[derive(Args, Debug)]
pub struct CpArgs {
    /// Archive mode (keep owners; berth always does).
    #[arg(short, long)]
    archive: bool,
    /// Always follow symbol link in SRC_PATH.
    #[arg(short = 'L', long)]
    follow_link: bool,
    /// Suppress progress output.
    #[arg(short, long)]
    quiet: bool,
    /// CONTAINER:SRC_PATH or SRC_PATH (`-`: a tar on stdin).
    src: String,
    /// DEST_PATH or CONTAINER:DEST_PATH (`-`: a tar on stdout).
    dst: String,
}

/// `CONTAINER:PATH` → (container, path); host paths have no colon before
/// a slash (docker's rule).
fn split(s: &str) -> Option<(&str, &str)> {
    if s.starts_with('/') || s.starts_with('.') {
        return None;
    }
    let (c, p) = s.split_once(':')?;
    (!c.is_empty() && !c.contains('/')).then_some((c, p))
}

fn base_name(p: &str) -> String {
    Path::new(p.trim_end_matches('/'))
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".".into())
}

/// Runs `berth cp`.
pub fn cp(root: &Path, a: &CpArgs) -> Result<ExitCode> {
    let engine = Engine::open(root)?;
    match (split(&a.src), split(&a.dst)) {
        (Some(_), Some(_)) => bail!("copying between containers is not supported"),
        (None, None) => bail!("must specify at least one container source"),
        (Some((ctr, path)), None) => {
            // -L: what the link at the path ends at, under the link's name
            let followed = if a.follow_link {
                Some(engine.archive_stat(ctr, path)?.link_target).filter(|t| !t.is_empty())
            } else {
                None
            };
            let from = followed.as_deref().unwrap_or(path);
            let top = followed.as_ref().map(|_| base_name(path));
            if a.dst == "-" {
                engine.archive_get_as(ctr, from, top.as_deref(), std::io::stdout().lock())?;
                return Ok(ExitCode::SUCCESS);
            }
            let dst = Path::new(&a.dst);
            let (into, rename) = if dst.is_dir() {
                (dst.to_path_buf(), top)
            } else {
                let parent = dst
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                if !parent.is_dir() {
                    bail!("destination directory {} does not exist", parent.display());
                }
                (parent.to_path_buf(), Some(base_name(&a.dst)))
            };
            let dir =
                std::fs::File::open(&into).with_context(|| format!("open {}", into.display()))?;
            // stream the archive through a pipe into the extractor
            let (r, w) = std::io::pipe()?;
            let reader = std::thread::spawn({
                let fd = dir.try_clone()?;
                move || extract_tar(fd.as_fd(), r, rename.as_deref())
            });
            let got = engine.archive_get(ctr, from, w);
            let extracted = reader
                .join()
                .map_err(|_| anyhow::anyhow!("the extractor panicked"))?;
            got?;
            extracted?;
        }
        (None, Some((ctr, path))) => {
            if a.src == "-" {
                engine.archive_put(ctr, path, std::io::stdin().lock(), None)?;
                return Ok(ExitCode::SUCCESS);
            }
            // -L: the file a host link points at, copied under the link's name
            let target = if a.follow_link {
                Some(
                    std::fs::canonicalize(&a.src)
                        .with_context(|| format!("follow the link {}", a.src))?,
                )
            } else {
                None
            };
            let src = target.as_deref().unwrap_or(Path::new(&a.src));
            let from_name = match &target {
                Some(t) => base_name(&t.display().to_string()),
                None => base_name(&a.src),
            };
            let name = base_name(&a.src);
            let parent = src
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            // into an existing directory, or as a new name in its parent
            let (dir, top) = match engine.archive_stat(ctr, path) {
                Ok(st) if st.mode & (1 << 31) != 0 => (path.to_owned(), name.clone()),
                Ok(_) => bail!("cannot overwrite non-directory {path} with directory or file"),
                Err(berth_engine::Error::NotFound(_)) => {
                    let p = Path::new(path);
                    let parent_in = p
                        .parent()
                        .map(|x| x.display().to_string())
                        .unwrap_or_else(|| "/".into());
                    (parent_in, base_name(path))
                }
                Err(e) => return Err(e.into()),
            };
            let pdir = std::fs::File::open(parent)
                .with_context(|| format!("open {}", parent.display()))?;
            let (r, w) = std::io::pipe()?;
            let writer = std::thread::spawn({
                let top = top.clone();
                move || write_tar(pdir.as_fd(), &from_name, &top, w)
            });
            let put = engine.archive_put(ctr, &dir, r, None);
            let written = writer
                .join()
                .map_err(|_| anyhow::anyhow!("the archiver panicked"))?;
            written.with_context(|| format!("read {}", src.display()))?;
            put?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `berth commit` flags.
#[derive(Args, Debug)]
pub struct CommitArgs {
    /// Author.
    #[arg(short, long)]
    author: Option<String>,
    /// Apply Dockerfile instruction to the created image.
    #[arg(short, long)]
    change: Vec<String>,
    /// Commit message.
    #[arg(short, long)]
    message: Option<String>,
    /// Pause container during commit.
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set)]
    pause: bool,
    /// The container.
    container: String,
    /// REPOSITORY[:TAG].
    name: Option<String>,
}

/// `berth commit`: prints the new image's id.
pub fn commit(root: &Path, a: &CommitArgs) -> Result<ExitCode> {
    let engine = Engine::open(root)?;
    let name = a
        .name
        .as_deref()
        .map(berth_types::Reference::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("invalid reference format: {e}"))?;
    let opts = berth_engine::CommitOptions {
        name: name.as_ref(),
        comment: a.message.as_deref(),
        author: a.author.as_deref(),
        pause: a.pause,
    };
    let id = engine.commit(&a.container, &opts, |from| {
        berth_docker_api::syntax::apply_changes(from, &a.change)
            .map_err(berth_engine::Error::Invalid)
    })?;
    println!("{id}");
    Ok(ExitCode::SUCCESS)
}

/// `berth diff`.
pub fn diff(root: &Path, container: &str) -> Result<ExitCode> {
    let engine = Engine::open(root)?;
    for c in engine.diff(container)? {
        let k = match c.kind {
            0 => 'C',
            1 => 'A',
            _ => 'D',
        };
        println!("{k} {}", c.path);
    }
    Ok(ExitCode::SUCCESS)
}

/// `berth export [-o FILE] CONTAINER`.
pub fn export(root: &Path, output: Option<&Path>, container: &str) -> Result<ExitCode> {
    let engine = Engine::open(root)?;
    match output {
        Some(p) => {
            let tmp = p.with_extension("partial");
            let f =
                std::fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
            engine.export(container, std::io::BufWriter::new(f))?;
            std::fs::rename(&tmp, p)?;
        }
        None => {
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            engine.export(container, std::io::stdout().lock())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `berth update` flags.
#[derive(Args, Debug)]
pub struct UpdateArgs {
    #[command(flatten)]
    limits: crate::run_cmd::LimitArgs,
    /// Restart policy to apply when a container exits.
    #[arg(long)]
    restart: Option<String>,
    /// Containers.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `berth update`.
pub fn update(root: &Path, a: &UpdateArgs) -> Result<ExitCode> {
    let engine = Engine::open(root)?;
    let res = a.limits.resources()?;
    let restart = a
        .restart
        .as_deref()
        .map(|r| berth_docker_api::syntax::parse_restart(r, None))
        .transpose()
        .map_err(|e| anyhow::anyhow!(e))?;
    let mut failed = false;
    for c in &a.containers {
        match engine.update(c, &res, restart) {
            Ok(()) => println!("{c}"),
            Err(e) => {
                eprintln!("Error: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
