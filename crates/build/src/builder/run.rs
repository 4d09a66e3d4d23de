//! `RUN` (a container on the previous step's image, its output streamed,
//! its changes committed as a layer) and `WORKDIR` (the directory made when
//! it is missing).

use std::io::Read;

use berth_engine::config::{HealthConfig, NetworkMode};
use berth_engine::{ContainerSpec, Engine};
use berth_types::image::History;

use super::cache::Key;
use super::error::{BuildError, at};
use super::eval;
use super::mounts::{self, Prepared};
use super::output::short;
use super::stage::{Builder, StageState};
use crate::dockerfile::{Command, Instruction, Located, Run};

/// A build container, removed when dropped unless kept.
pub(crate) struct StepContainer<'e> {
    engine: &'e Engine,
    pub id: String,
    keep: bool,
}

impl Drop for StepContainer<'_> {
    fn drop(&mut self) {
        if !self.keep {
            let _ = self.engine.remove(&self.id, true, true);
        }
    }
}

impl<'e> StepContainer<'e> {
    /// Creates a container for a step (not started).
    pub fn create(
        engine: &'e Engine,
        spec: &ContainerSpec,
    ) -> Result<StepContainer<'e>, BuildError> {
        let c = engine.create(spec)?;
        Ok(StepContainer {
            engine,
            id: c.id,
            keep: false,
        })
    }

    /// Commits the container's changes as the step's image: `cfg` with a
    /// history entry `created_by` and the new layer.
    pub fn commit(
        &self,
        cfg: berth_types::image::ImageConfig,
        created_by: &str,
    ) -> Result<berth_types::Digest, BuildError> {
        Ok(self.engine.commit_build(
            &self.id,
            cfg,
            History {
                created: Some(berth_image::images::now()),
                created_by: Some(created_by.to_owned()),
                ..Default::default()
            },
        )?)
    }

    /// Leaves the container in place (a failed step without `forcerm`).
    pub fn keep(mut self) {
        self.keep = true;
    }
}

/// The container spec of a step on `st`'s image.
pub(crate) fn spec(b: &Builder<'_>, st: &StageState, cmd: Vec<String>) -> ContainerSpec {
    let mut spec = ContainerSpec {
        image: st.image.as_ref().map(|d| d.to_string()).unwrap_or_default(),
        cmd: Some(cmd),
        entrypoint: Some(Vec::new()),
        env: st.vars().run_env(),
        healthcheck: Some(HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        }),
        resources: b.opts.resources.clone(),
        ulimits: b.opts.ulimits.clone(),
        ..Default::default()
    };
    spec.network.extra_hosts = b.opts.extra_hosts.clone();
    spec.network.mode = network_mode(b.opts.network.as_deref());
    if let Some(s) = b.opts.shm_size {
        spec.shm_size = Some(s);
    }
    spec
}

fn network_mode(n: Option<&str>) -> NetworkMode {
    match n {
        None | Some("") | Some("default") | Some("bridge") => NetworkMode::default(),
        Some("none") => NetworkMode::None,
        Some("host") => NetworkMode::Host,
        Some(other) => NetworkMode::Bridge(other.to_owned()),
    }
}

/// The command line a RUN runs and the text Docker records for it.
fn command(r: &Run, shell: &[String]) -> Vec<String> {
    match &r.command {
        Command::Exec(v) => v.clone(),
        Command::Shell(s) => {
            let mut script = s.clone();
            let only_heredoc = r.heredocs.len() == 1
                && s.trim()
                    .trim_start_matches("<<-")
                    .trim_start_matches("<<")
                    .trim_matches(|c| c == '"' || c == '\'')
                    == r.heredocs[0].name;
            if only_heredoc {
                // the document is the script
                script = r.heredocs[0].content.clone();
            } else {
                for h in &r.heredocs {
                    script.push('\n');
                    script.push_str(&h.content);
                    script.push_str(&h.name);
                }
            }
            shell.iter().cloned().chain([script]).collect()
        }
    }
}

pub(crate) fn run(
    b: &mut Builder<'_>,
    st: &mut StageState,
    r: &Run,
    ins: &Located<Instruction>,
) -> Result<(), BuildError> {
    let line = ins.line;
    if r.security.as_deref().is_some_and(|s| s != "sandbox") {
        return Err(BuildError::NotSupported(format!(
            "RUN --security={} (line {line}): insecure build steps need an entitlement berth \
             does not grant",
            r.security.as_deref().unwrap_or("")
        )));
    }
    let shell = eval::shell_of(st.cc());
    let mut heredoc_expanded = r.clone();
    for h in &mut heredoc_expanded.heredocs {
        if h.expand {
            h.content = crate::dockerfile::shell::expand_heredoc(&h.content, b.escape, &|n| {
                st.vars().get(n)
            })
            .map_err(|e| at(line, e.to_string()))?;
        }
    }
    let argv = command(&heredoc_expanded, &shell);
    let run_env = st.vars().run_env();
    let shown: Vec<String> = run_env
        .iter()
        .filter(|e| {
            let k = e.split('=').next().unwrap_or("");
            !eval::PROXY_ARGS.contains(&k)
        })
        .cloned()
        .collect();
    let created_by = if shown.is_empty() {
        argv.join(" ")
    } else {
        format!("|{} {} {}", shown.len(), shown.join(" "), argv.join(" "))
    };
    let mounts = mounts::parse_all(b, st, &r.mounts, line)?;
    let mut key = Key::new(st.image.as_ref());
    key.add(
        "run",
        serde_json::to_vec(&argv).unwrap_or_default().as_slice(),
    );
    b.args_key(&mut key, st);
    for m in &mounts.key_parts {
        key.add("mount", m.as_bytes());
    }
    key.add("network", r.network.as_deref().unwrap_or("").as_bytes());
    key.describe(&created_by, Some(false));
    let cfg = st.config.clone();
    let net = r.network.clone();
    let mut spec = spec(b, st, argv.clone());
    b.finish_step(
        st,
        key,
        move |b, cfg| {
            if let Some(n) = &net {
                spec.network.mode = match n.as_str() {
                    "default" => spec.network.mode,
                    "none" => NetworkMode::None,
                    "host" => NetworkMode::Host,
                    other => {
                        return Err(at(line, format!("unsupported network mode {other:?}")));
                    }
                };
            }
            let prepared: Prepared = mounts.prepare(b)?;
            spec.mounts.extend(prepared.mounts.iter().cloned());
            spec.env.extend(prepared.env.iter().cloned());
            let c = StepContainer::create(b.engine, &spec)?;
            b.out
                .stream(&format!(" ---> Running in {}\n", short(&c.id)));
            let code = attach_run(b, &c.id)?;
            drop(prepared);
            if code != 0 {
                if !b.opts.force_rm {
                    c.keep();
                }
                return Err(BuildError::Failed {
                    command: argv.join(" "),
                    code,
                });
            }
            let id = c.commit(cfg.clone(), &created_by)?;
            if b.opts.rm || b.opts.force_rm {
                b.out.stream(&format!(
                    "Removing intermediate container {}\n",
                    short(&c.id)
                ));
            } else {
                c.keep();
            }
            Ok(id)
        },
        cfg,
    )
}

/// Starts container `id` attached; streams its output; returns its exit
/// code. A cancelled build kills it.
fn attach_run(b: &mut Builder<'_>, id: &str) -> Result<i32, BuildError> {
    use rustix::event::{PollFd, PollFlags};
    let engine = b.engine;
    let mut attach = None;
    let mut waiter = None;
    engine.start(id, || {
        attach = engine.attach(id, false, true, true);
        waiter = engine.exit_watch(id);
        Ok(())
    })?;
    if let Some(mut s) = attach {
        let mut frames = berth_engine::streams::FrameReader::default();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let mut fds = [PollFd::new(&s.socket, PollFlags::IN)];
            let ready = rustix::event::poll(
                &mut fds,
                Some(&rustix::event::Timespec {
                    tv_sec: 0,
                    tv_nsec: 200_000_000,
                }),
            )
            .unwrap_or(0);
            if super::cancelled(b.cancel).is_err() {
                let _ = engine.kill(id, None);
                return Err(BuildError::Cancelled);
            }
            if ready == 0 {
                continue;
            }
            let n = match s.socket.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            for (_, data) in frames.feed(&buf[..n]) {
                b.out.stream(&String::from_utf8_lossy(&data));
            }
        }
    }
    let code = match waiter {
        Some(mut w) => {
            let mut line = String::new();
            let _ = w.read_to_string(&mut line);
            line.trim().parse::<i32>().ok()
        }
        None => None,
    };
    Ok(match code {
        Some(c) => c,
        None => engine.wait(id, berth_engine::WaitCondition::NotRunning, &|| false)?,
    })
}

/// `WORKDIR`: the configuration's directory, made (as a layer) when the
/// image does not have it (an existing one adds no layer, as BuildKit).
pub(crate) fn workdir(
    b: &mut Builder<'_>,
    st: &mut StageState,
    dir: &str,
) -> Result<(), BuildError> {
    let shell = eval::shell_of(st.cc());
    let created_by = format!("{} #(nop) WORKDIR {dir}", shell.join(" "));
    let mut key = Key::new(st.image.as_ref());
    key.add("workdir", created_by.as_bytes());
    key.describe(&created_by, None);
    b.args_key(&mut key, st);
    let mut cfg = st.config.clone();
    cfg.config.get_or_insert_with(Default::default).working_dir = dir.to_owned();
    let mut spec = spec(b, st, vec!["#(nop) WORKDIR".into()]);
    spec.network.mode = NetworkMode::None;
    let parent = st.image.clone();
    let dir = dir.to_owned();
    b.finish_step(
        st,
        key,
        move |b, cfg| {
            let history = History {
                created: Some(berth_image::images::now()),
                created_by: Some(created_by.clone()),
                ..Default::default()
            };
            let c = StepContainer::create(b.engine, &spec)?;
            let exists = b
                .engine
                .archive_stat(&c.id, &dir)
                .is_ok_and(|s| s.mode & (1 << 31) != 0);
            if exists {
                let mut cfg = cfg.clone();
                cfg.created = history.created.clone();
                cfg.history.push(History {
                    empty_layer: true,
                    ..history
                });
                return Ok(b.engine.derive_image(parent.as_ref(), &cfg)?);
            }
            let mut tar = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            h.set_mtime(now_secs());
            tar.append_data(&mut h, dir.trim_start_matches('/'), std::io::empty())
                .map_err(|e| BuildError::Io("make the WORKDIR entry".into(), e))?;
            let bytes = tar
                .into_inner()
                .map_err(|e| BuildError::Io("make the WORKDIR entry".into(), e))?;
            b.engine.archive_put(&c.id, "/", bytes.as_slice(), None)?;
            Ok(b.engine.commit_build(&c.id, cfg.clone(), history)?)
        },
        cfg,
    )
}

pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
