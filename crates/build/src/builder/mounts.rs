//! `RUN --mount=…` (BuildKit's syntax and semantics): `cache` (a directory
//! under berth's root kept across builds, by `id`, with `sharing`),
//! `bind` (a path of the build context, read-only unless `rw`, whose writes
//! are thrown away), `tmpfs`, and `secret` (a `--secret`'s bytes in a file
//! that never reaches a layer or the history). `ssh` is not supported yet.

use std::collections::BTreeMap;
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::PathBuf;

use berth_engine::config::{Mount, MountKind, MountOrigin};
use sha2::{Digest as _, Sha256};

use super::error::{BuildError, at};
use super::options::SecretSource;
use super::stage::{Builder, StageState, clean_path};

/// One parsed `--mount`.
#[derive(Clone, Debug)]
enum Spec {
    Cache {
        id: String,
        target: String,
        sharing: Sharing,
        read_only: bool,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Bind {
        source: String,
        target: String,
        read_write: bool,
        /// `from=`: the image (a stage's, or one by name) it comes from
        /// instead of the build context.
        from: Option<berth_types::Digest>,
    },
    Tmpfs {
        target: String,
        size: Option<u64>,
    },
    Secret {
        id: String,
        target: String,
        required: bool,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// The client's SSH agent socket (`--ssh ID=SOCKET`).
    Ssh {
        id: String,
        target: String,
        required: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sharing {
    Shared,
    Private,
    Locked,
}

/// A RUN's mounts, parsed (what goes into the cache key) and ready to
/// prepare.
#[derive(Debug, Default)]
pub(crate) struct Mounts {
    specs: Vec<Spec>,
    /// The mounts as cache-key inputs (a secret's id, not its bytes).
    pub key_parts: Vec<String>,
}

/// Mounts ready for a container, with what must live until it ran (lock
/// files, the context's fds, secret files, removed on drop).
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    pub mounts: Vec<Mount>,
    /// Environment entries the step gets (`SSH_AUTH_SOCK`).
    pub env: Vec<String>,
    _fds: Vec<OwnedFd>,
    _locks: Vec<fs::File>,
    secrets: Option<PathBuf>,
    /// Overlays of images mounted for `from=` binds (unmounted on drop).
    images: Vec<PathBuf>,
}

impl Drop for Prepared {
    fn drop(&mut self) {
        self._fds.clear();
        for m in &self.images {
            let _ = rustix::mount::unmount(m, rustix::mount::UnmountFlags::DETACH);
            let _ = fs::remove_dir(m);
        }
        if let Some(d) = &self.secrets {
            let _ = fs::remove_dir_all(d);
        }
    }
}

/// The `from=` of a `--mount` value, if any (for the stage plan).
pub(crate) fn from_of(m: &str) -> Option<String> {
    m.split(',')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("from"))
        .map(|(_, v)| v.trim().to_owned())
}

fn octal(v: &str, line: usize) -> Result<u32, BuildError> {
    u32::from_str_radix(v.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| at(line, format!("invalid mode {v:?} in --mount")))
}

fn number(v: &str, what: &str, line: usize) -> Result<u32, BuildError> {
    v.parse()
        .map_err(|_| at(line, format!("invalid {what} {v:?} in --mount")))
}

fn parse_bool(v: Option<&str>, key: &str, line: usize) -> Result<bool, BuildError> {
    match v.map(str::to_ascii_lowercase).as_deref() {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(o) => Err(at(
            line,
            format!("invalid value {o:?} for {key} in --mount"),
        )),
    }
}

fn parse_one(
    b: &mut Builder<'_>,
    st: &StageState,
    text: &str,
    line: usize,
) -> Result<Spec, BuildError> {
    let mut kv: BTreeMap<String, Option<String>> = BTreeMap::new();
    for part in text.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (k, v) = match part.split_once('=') {
            Some((k, v)) => (
                k.trim().to_ascii_lowercase(),
                Some(st.vars().word(v.trim(), b.escape, line)?),
            ),
            None => (part.to_ascii_lowercase(), None),
        };
        let k = match k.as_str() {
            "dst" | "destination" => "target".to_owned(),
            "src" => "source".to_owned(),
            "readonly" => "ro".to_owned(),
            "readwrite" => "rw".to_owned(),
            _ => k,
        };
        if kv.insert(k.clone(), v).is_some() {
            return Err(at(line, format!("--mount: {k} given twice")));
        }
    }
    let kind = kv.remove("type").flatten().unwrap_or_else(|| "bind".into());
    let from = kv.remove("from").flatten();
    if from.is_some() && kind != "bind" {
        return Err(BuildError::NotSupported(format!(
            "RUN --mount=type={kind} with from= (line {line}): only bind mounts come from \
             another stage or image"
        )));
    }
    let from = match from {
        None => None,
        Some(f) => Some(match b.stage_ref(&f, st.index, line)? {
            Some(j) => b
                .stage_result(j)
                .ok_or_else(|| at(line, format!("stage {f} was not built")))?,
            None => b.base_image(&f, line)?,
        }),
    };
    let target = |kv: &BTreeMap<String, Option<String>>| -> Result<String, BuildError> {
        let t = kv
            .get("target")
            .cloned()
            .flatten()
            .ok_or_else(|| at(line, "mount target is required (--mount …,target=PATH)"))?;
        let wd = &st.cc().working_dir;
        Ok(super::stage::join_workdir(wd, &t))
    };
    let known =
        |kv: &BTreeMap<String, Option<String>>, allowed: &[&str]| -> Result<(), BuildError> {
            for k in kv.keys() {
                if !allowed.contains(&k.as_str()) {
                    return Err(at(line, format!("unexpected key '{k}' in '{text}'")));
                }
            }
            Ok(())
        };
    let get = |kv: &BTreeMap<String, Option<String>>, k: &str| kv.get(k).cloned().flatten();
    // mode (octal), uid and gid of what a cache or secret mount makes
    let owner = (
        get(&kv, "mode").map(|m| octal(&m, line)).transpose()?,
        get(&kv, "uid")
            .map(|v| number(&v, "uid", line))
            .transpose()?
            .unwrap_or(0),
        get(&kv, "gid")
            .map(|v| number(&v, "gid", line))
            .transpose()?
            .unwrap_or(0),
    );
    Ok(match kind.as_str() {
        "cache" => {
            known(
                &kv,
                &[
                    "target", "id", "sharing", "ro", "rw", "mode", "uid", "gid", "source",
                ],
            )?;
            if kv.contains_key("source") {
                return Err(BuildError::NotSupported(format!(
                    "RUN --mount=type=cache with source= (line {line})"
                )));
            }
            let t = target(&kv)?;
            Spec::Cache {
                id: get(&kv, "id").unwrap_or_else(|| t.clone()),
                sharing: match get(&kv, "sharing").as_deref() {
                    None | Some("shared") => Sharing::Shared,
                    Some("private") => Sharing::Private,
                    Some("locked") => Sharing::Locked,
                    Some(o) => return Err(at(line, format!("unrecognized sharing {o}"))),
                },
                read_only: kv.contains_key("ro")
                    && parse_bool(get(&kv, "ro").as_deref(), "ro", line)?,
                mode: owner.0.unwrap_or(0o755),
                uid: owner.1,
                gid: owner.2,
                target: t,
            }
        }
        "bind" => {
            known(&kv, &["target", "source", "ro", "rw"])?;
            Spec::Bind {
                from,
                source: get(&kv, "source").unwrap_or_default(),
                read_write: kv.contains_key("rw")
                    && parse_bool(get(&kv, "rw").as_deref(), "rw", line)?,
                target: target(&kv)?,
            }
        }
        "tmpfs" => {
            known(&kv, &["target", "size"])?;
            Spec::Tmpfs {
                size: get(&kv, "size")
                    .map(|s| {
                        s.parse::<u64>()
                            .map_err(|_| at(line, format!("invalid tmpfs size {s:?}")))
                    })
                    .transpose()?,
                target: target(&kv)?,
            }
        }
        "secret" => {
            known(
                &kv,
                &["target", "id", "required", "mode", "uid", "gid", "env"],
            )?;
            if kv.contains_key("env") {
                return Err(BuildError::NotSupported(format!(
                    "RUN --mount=type=secret,env= (line {line})"
                )));
            }
            let id = match (get(&kv, "id"), get(&kv, "target")) {
                (Some(id), _) => id,
                (None, Some(t)) => t.rsplit('/').next().unwrap_or_default().to_owned(),
                (None, None) => return Err(at(line, "secret mount needs an id or a target")),
            };
            let t = match get(&kv, "target") {
                Some(_) => target(&kv)?,
                None => format!("/run/secrets/{id}"),
            };
            Spec::Secret {
                required: kv.contains_key("required")
                    && parse_bool(get(&kv, "required").as_deref(), "required", line)?,
                mode: owner.0.unwrap_or(0o400),
                uid: owner.1,
                gid: owner.2,
                target: t,
                id,
            }
        }
        "ssh" => {
            known(&kv, &["target", "id", "required", "mode", "uid", "gid"])?;
            for k in ["mode", "uid", "gid"] {
                if kv.contains_key(k) {
                    return Err(BuildError::NotSupported(format!(
                        "RUN --mount=type=ssh,{k}= (line {line}): the agent's socket is bound as it is"
                    )));
                }
            }
            Spec::Ssh {
                id: get(&kv, "id").unwrap_or_else(|| "default".into()),
                target: match get(&kv, "target") {
                    Some(_) => target(&kv)?,
                    None => "/run/buildkit/ssh_agent.0".into(),
                },
                required: kv.contains_key("required")
                    && parse_bool(get(&kv, "required").as_deref(), "required", line)?,
            }
        }
        other => return Err(at(line, format!("unsupported mount type {other:?}"))),
    })
}

/// Parses a RUN's `--mount` values.
pub(crate) fn parse_all(
    b: &mut Builder<'_>,
    st: &StageState,
    values: &[String],
    line: usize,
) -> Result<Mounts, BuildError> {
    let mut m = Mounts::default();
    for v in values {
        let spec = parse_one(b, st, v, line)?;
        let part = match &spec {
            Spec::Cache {
                id,
                target,
                read_only,
                ..
            } => format!("cache {id} {target} {read_only}"),
            Spec::Bind {
                source,
                target,
                read_write,
                from: None,
            } => {
                // the content of what is bound decides the result
                let plan_digest = b.ctx.digest_path(source).map_err(BuildError::from)?;
                format!("bind {source} {target} {read_write} {plan_digest}")
            }
            // an image's content is its id
            Spec::Bind {
                source,
                target,
                read_write,
                from: Some(id),
            } => format!("bind {id} {source} {target} {read_write}"),
            Spec::Tmpfs { target, size } => format!("tmpfs {target} {size:?}"),
            Spec::Secret { id, target, .. } => format!("secret {id} {target}"),
            Spec::Ssh { id, target, .. } => format!("ssh {id} {target}"),
        };
        m.key_parts.push(part);
        m.specs.push(spec);
    }
    Ok(m)
}

impl Mounts {
    /// Makes the mounts' host sides.
    pub fn prepare(&self, b: &Builder<'_>) -> Result<Prepared, BuildError> {
        let mut p = Prepared::default();
        let io = |what: &str, e: std::io::Error| BuildError::Io(what.to_owned(), e);
        for s in &self.specs {
            match s {
                Spec::Cache {
                    id,
                    target,
                    sharing,
                    read_only,
                    mode,
                    uid,
                    gid,
                } => {
                    let base = b.engine.root().join("build/mounts/cache");
                    let name = hex::encode(Sha256::digest(id.as_bytes()));
                    let dir = base.join(&name);
                    if !dir.exists() {
                        fs::create_dir_all(&base).map_err(|e| io("make the cache mount", e))?;
                        // made aside and renamed into place (never over one
                        // another build or stage made meanwhile)
                        let unique = berth_engine::run::new_id().map_err(BuildError::from)?;
                        let tmp = base.join(format!(".{name}.{unique}"));
                        fs::DirBuilder::new()
                            .mode(*mode)
                            .create(&tmp)
                            .map_err(|e| io("make the cache mount", e))?;
                        fs::set_permissions(&tmp, fs::Permissions::from_mode(*mode))
                            .map_err(|e| io("make the cache mount", e))?;
                        std::os::unix::fs::chown(&tmp, Some(*uid), Some(*gid))
                            .map_err(|e| io("make the cache mount", e))?;
                        if rustix::fs::renameat_with(
                            rustix::fs::CWD,
                            &tmp,
                            rustix::fs::CWD,
                            &dir,
                            rustix::fs::RenameFlags::NOREPLACE,
                        )
                        .is_err()
                        {
                            let _ = fs::remove_dir(&tmp);
                        }
                    }
                    let mut source = dir.clone();
                    let lock = fs::File::open(&dir).map_err(|e| io("open the cache mount", e))?;
                    match sharing {
                        Sharing::Shared => {}
                        Sharing::Locked => {
                            rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
                                .map_err(|e| io("lock the cache mount", e.into()))?;
                            p._locks.push(lock);
                        }
                        Sharing::Private => {
                            if rustix::fs::flock(
                                &lock,
                                rustix::fs::FlockOperation::NonBlockingLockExclusive,
                            )
                            .is_ok()
                            {
                                p._locks.push(lock);
                            } else {
                                // in use: this step gets a fresh one
                                source =
                                    base.join(format!("{name}.private.{}", std::process::id()));
                                let _ = fs::create_dir_all(&source);
                            }
                        }
                    }
                    p.mounts
                        .push(bind(source.display().to_string(), target, *read_only));
                }
                Spec::Bind {
                    source,
                    target,
                    read_write,
                    from,
                } => {
                    let fd = match from {
                        None => b.ctx.open_path(source).map_err(BuildError::from)?,
                        Some(id) => image_path(b, &mut p, id, source)?,
                    };
                    // resolved safely (in the tree's root) to an fd; the
                    // container's runtime binds it by its real path (a
                    // magic /proc link names a mount of berth's namespace,
                    // which the container's copy of it cannot clone)
                    let path = fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
                        .map_err(|e| io(&format!("resolve {source}"), e))?
                        .display()
                        .to_string();
                    p._fds.push(fd);
                    if *read_write {
                        return Err(BuildError::NotSupported(
                            "RUN --mount=type=bind,rw (writes to the context thrown away)".into(),
                        ));
                    }
                    p.mounts.push(bind(path, target, true));
                }
                Spec::Tmpfs { target, size } => p.mounts.push(Mount {
                    kind: MountKind::Tmpfs,
                    source: None,
                    target: clean_path(target),
                    tmpfs_options: size.map(|s| vec![format!("size={s}")]).unwrap_or_default(),
                    origin: MountOrigin::Mount,
                    ..Default::default()
                }),
                Spec::Ssh {
                    id,
                    target,
                    required,
                } => {
                    let Some(sock) = b.opts.ssh.iter().find(|s| &s.id == id) else {
                        if *required {
                            return Err(BuildError::Image(format!(
                                "no SSH key {id:?} forwarded from the client (berth build --ssh {id}=SOCKET)"
                            )));
                        }
                        continue;
                    };
                    let meta = fs::metadata(&sock.socket).map_err(|e| {
                        io(&format!("ssh agent socket {}", sock.socket.display()), e)
                    })?;
                    if !std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()) {
                        return Err(BuildError::NotSupported(format!(
                            "--ssh {id}={}: only an agent's socket can be forwarded, not key files",
                            sock.socket.display()
                        )));
                    }
                    if p.env.is_empty() {
                        p.env.push(format!("SSH_AUTH_SOCK={}", clean_path(target)));
                    }
                    p.mounts
                        .push(bind(sock.socket.display().to_string(), target, true));
                }
                Spec::Secret {
                    id,
                    target,
                    required,
                    mode,
                    uid,
                    gid,
                } => {
                    let Some(secret) = b.opts.secrets.iter().find(|s| &s.id == id) else {
                        if *required {
                            return Err(BuildError::Image(format!("secret {id} not found")));
                        }
                        continue;
                    };
                    let bytes = match &secret.source {
                        SecretSource::Bytes(v) => v.clone(),
                        SecretSource::File(f) => {
                            fs::read(f).map_err(|e| io(&format!("read secret {id}"), e))?
                        }
                    };
                    let dir = match &p.secrets {
                        Some(d) => d.clone(),
                        None => {
                            let d = b.engine.root().join(format!(
                                "build/tmp/secrets.{}.{}",
                                std::process::id(),
                                berth_engine::run::new_id().map_err(BuildError::from)?
                            ));
                            fs::DirBuilder::new()
                                .recursive(true)
                                .mode(0o700)
                                .create(&d)
                                .map_err(|e| io("make the secrets directory", e))?;
                            p.secrets = Some(d.clone());
                            d
                        }
                    };
                    let f = dir.join(hex::encode(Sha256::digest(id.as_bytes())));
                    fs::write(&f, &bytes).map_err(|e| io("write a secret", e))?;
                    fs::set_permissions(&f, fs::Permissions::from_mode(*mode))
                        .map_err(|e| io("write a secret", e))?;
                    std::os::unix::fs::chown(&f, Some(*uid), Some(*gid))
                        .map_err(|e| io("write a secret", e))?;
                    p.mounts.push(bind(f.display().to_string(), target, true));
                }
            }
        }
        Ok(p)
    }
}

fn bind(source: String, target: &str, read_only: bool) -> Mount {
    Mount {
        kind: MountKind::Bind,
        source: Some(source),
        target: clean_path(target),
        read_only,
        create_source: false,
        origin: MountOrigin::Mount,
        ..Default::default()
    }
}

/// `source` of image `id` as an `O_PATH` fd, for a `from=` bind: its one
/// layer's snapshot, or its layers overlaid (read-only) on a directory
/// under `<root>/build/tmp` that [`Prepared`] unmounts. `source` resolves
/// inside the image (symlinks never leave it).
fn image_path(
    b: &Builder<'_>,
    p: &mut Prepared,
    id: &berth_types::Digest,
    source: &str,
) -> Result<OwnedFd, BuildError> {
    let io = |what: &str, e: std::io::Error| BuildError::Io(what.to_owned(), e);
    let layers = b
        .engine
        .images()
        .prepare(id)
        .map_err(berth_engine::Error::from)?;
    let root = match layers.as_slice() {
        [] => {
            let empty = b.engine.root().join("snapshots/empty");
            fs::create_dir_all(&empty).map_err(|e| io("make the empty layer", e))?;
            empty
        }
        [one] => one.clone(),
        _ => {
            let dir = b.engine.root().join(format!(
                "build/tmp/mnt.{}.{}",
                std::process::id(),
                berth_engine::run::new_id().map_err(BuildError::from)?
            ));
            fs::create_dir_all(&dir).map_err(|e| io("make a mount point", e))?;
            let lower: Vec<String> = layers
                .iter()
                .rev()
                .map(|l| l.display().to_string())
                .collect();
            let data = std::ffi::CString::new(format!("lowerdir={}", lower.join(":")))
                .map_err(|_| BuildError::Image("a layer path holds a NUL byte".into()))?;
            if let Err(e) = rustix::mount::mount(
                "overlay",
                &dir,
                "overlay",
                rustix::mount::MountFlags::RDONLY,
                Some(data.as_c_str()),
            ) {
                let _ = fs::remove_dir(&dir);
                return Err(io("mount the image for a --mount from=", e.into()));
            }
            p.images.push(dir.clone());
            dir
        }
    };
    let rootfd = rustix::fs::open(
        &root,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| io("open the image", e.into()))?;
    berth_sys::paths::open(
        std::os::fd::AsFd::as_fd(&rootfd),
        std::path::Path::new(source),
    )
    .map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            BuildError::Image(format!(
                "failed to compute cache key: \"/{}\" not found in the mounted image",
                source.trim_start_matches('/')
            ))
        } else {
            io(&format!("open {source} in the image"), e)
        }
    })
}
