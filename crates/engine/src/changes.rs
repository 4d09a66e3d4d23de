//! A container's changes to its image: `docker diff` (from its overlay
//! upper directory), `docker commit` (that directory as a new layer, with
//! overlay whiteouts turned into OCI `.wh.` entries, on top of the image's
//! layers) and `docker export` (its whole filesystem, without volumes or
//! the kernel filesystems mounted in it).

use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use berth_types::image::{ContainerConfig, History};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::run::{Engine, Error, Result};

/// One `docker diff` line: `A`, `C` or `D` and a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// 0 modified, 1 added, 2 deleted (docker's `Kind`).
    pub kind: u8,
    /// Absolute path in the container.
    pub path: String,
}

fn io_err(what: &str, e: impl Into<std::io::Error>) -> Error {
    Error::Io(what.to_owned(), e.into())
}

fn is_whiteout(st: &rustix::fs::Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice && st.st_rdev == 0
}

fn is_opaque(dir: BorrowedFd<'_>) -> bool {
    let mut v = [0u8; 4];
    matches!(
        rustix::fs::fgetxattr(dir, "trusted.overlay.opaque", &mut v),
        Ok(1) if v[0] == b'y'
    )
}

fn entries(dir: BorrowedFd<'_>) -> Result<Vec<String>> {
    let fd = rustix::fs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err("open a directory", e))?;
    let mut v: Vec<String> = rustix::fs::Dir::read_from(&fd)
        .map_err(|e| io_err("read a directory", e))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "." && n != "..")
        .collect();
    v.sort();
    Ok(v)
}

fn open_dir(parent: BorrowedFd<'_>, name: &str) -> Result<rustix::fd::OwnedFd> {
    rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err(&format!("open {name}"), e))
}

/// Mount points the runtime creates in the upper layer (empty files and
/// directories for /proc, /dev, /etc/hosts, volumes, …): not changes.
fn placeholders(r: &crate::Record) -> std::collections::BTreeSet<String> {
    let mut set: std::collections::BTreeSet<String> = [
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/proc",
        "/sys",
        "/sys/fs/cgroup",
        "/etc/hostname",
        "/etc/hosts",
        "/etc/resolv.conf",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for m in &r.mounts {
        set.insert(m.destination.clone());
    }
    set
}

/// Whether an upper entry is an empty placeholder at a mount point.
fn is_placeholder(
    set: &std::collections::BTreeSet<String>,
    abs: &str,
    st: &rustix::fs::Stat,
    dir: BorrowedFd<'_>,
    name: &str,
) -> bool {
    if !set.contains(abs) {
        return false;
    }
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => st.st_size == 0,
        FileType::Directory => open_dir(dir, name)
            .ok()
            .and_then(|d| entries(d.as_fd()).ok())
            .is_some_and(|e| e.is_empty()),
        _ => false,
    }
}

impl Engine {
    fn upper(&self, key: &str) -> Result<(crate::Container, PathBuf, Vec<PathBuf>)> {
        let c = self.container(key)?;
        let dir = self.store.dir(&c.record.id);
        let spec: berth_types::image::MountSpec = serde_json::from_slice(
            &fs::read(dir.join(crate::monitor::ROOTFS_FILE))
                .map_err(|e| io_err("read rootfs.json", e))?,
        )
        .map_err(|e| Error::Invalid(format!("rootfs.json: {e}")))?;
        let lowers: Vec<PathBuf> = spec
            .options
            .iter()
            .find_map(|o| o.strip_prefix("lowerdir="))
            .map(|l| l.split(':').map(PathBuf::from).collect())
            .unwrap_or_default();
        Ok((c, dir.join("upper"), lowers))
    }

    /// `docker diff`: what the container added (A), changed (C) and
    /// deleted (D), directories holding changes included as C.
    pub fn diff(&self, key: &str) -> Result<Vec<Change>> {
        let (c, upper, lowers) = self.upper(key)?;
        let skip = placeholders(&c.record);
        let root = fs::File::open(&upper).map_err(|e| io_err("open the upper layer", e))?;
        let mut out = Vec::new();
        let in_lower = |rel: &Path| {
            lowers
                .iter()
                .any(|l| l.join(rel).symlink_metadata().is_ok())
        };
        fn walk(
            dir: BorrowedFd<'_>,
            rel: &Path,
            in_lower: &dyn Fn(&Path) -> bool,
            skip: &std::collections::BTreeSet<String>,
            out: &mut Vec<Change>,
            depth: u32,
        ) -> Result<()> {
            if depth > 256 {
                return Err(Error::Invalid("directory tree too deep".into()));
            }
            for name in entries(dir)? {
                let p = rel.join(&name);
                let st = rustix::fs::statat(dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| io_err("stat", e))?;
                let abs = format!("/{}", p.display());
                if is_whiteout(&st) {
                    out.push(Change { kind: 2, path: abs });
                    continue;
                }
                let existed = in_lower(&p);
                if !existed && is_placeholder(skip, &abs, &st, dir, &name) {
                    continue;
                }
                out.push(Change {
                    kind: if existed { 0 } else { 1 },
                    path: abs,
                });
                if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                    let d = open_dir(dir, &name)?;
                    walk(d.as_fd(), &p, in_lower, skip, out, depth + 1)?;
                }
            }
            Ok(())
        }
        walk(root.as_fd(), Path::new(""), &in_lower, &skip, &mut out, 0)?;
        // a changed directory that only held placeholders changed nothing
        let all = out.clone();
        out.retain(|c| {
            let is_dir = upper.join(c.path.trim_start_matches('/')).is_dir();
            let below = format!("{}/", c.path);
            c.kind != 0 || !is_dir || all.iter().any(|o| o.path.starts_with(&below))
        });
        Ok(out)
    }

    /// `docker commit`: the container's changes as a layer over its
    /// image's, with its configuration (and `changes` applied); returns
    /// the new image id.
    pub fn commit(
        &self,
        key: &str,
        name: Option<&berth_types::Reference>,
        comment: Option<&str>,
        author: Option<&str>,
        changes: Option<ContainerConfig>,
        pause: bool,
    ) -> Result<berth_types::Digest> {
        let (c, upper, _) = self.upper(key)?;
        let image_id: berth_types::Digest = c
            .record
            .image_id
            .parse()
            .map_err(|_| Error::Invalid("the container's image id is unreadable".into()))?;
        let rec = self
            .images
            .db()
            .image(&image_id)?
            .ok_or_else(|| Error::NotFound(format!("No such image: {image_id}")))?;
        let base = self.images.manifest(&rec)?;
        let mut cfg = self.images.config(&image_id)?;
        let paused_here =
            pause && c.state.status == crate::Status::Running && self.pause(key).is_ok();
        // the layer blob belongs to the transaction: a failure below
        // removes it again
        let mut tx = self.images.begin()?;
        let layer = (|| -> Result<(berth_types::Digest, u64)> {
            let mut w = tx.content().writer(Default::default())?;
            {
                let mut tar = tar::Builder::new(&mut w);
                tar.follow_symlinks(false);
                let root = fs::File::open(&upper).map_err(|e| io_err("open the upper layer", e))?;
                layer_dir(
                    &mut tar,
                    root.as_fd(),
                    Path::new(""),
                    &placeholders(&c.record),
                    0,
                )?;
                tar.finish().map_err(|e| io_err("write the layer", e))?;
            }
            let size = w.written();
            Ok((w.commit()?, size))
        })();
        if paused_here {
            let _ = self.unpause(key);
        }
        let (blob, size) = layer?;
        // the container's configuration, as docker commit records it
        let mut cc = cfg.config.clone().unwrap_or_default();
        let r = &c.record;
        cc.cmd = (!r.cmd.is_empty()).then(|| r.cmd.clone());
        cc.entrypoint = (!r.entrypoint.is_empty()).then(|| r.entrypoint.clone());
        cc.env = r.env.clone();
        cc.working_dir = if r.working_dir == "/" {
            String::new()
        } else {
            r.working_dir.clone()
        };
        cc.user = r.user.clone();
        cc.labels = r.labels.clone().into_iter().collect();
        for p in &r.exposed_ports {
            cc.exposed_ports
                .insert(p.to_string(), serde_json::json!({}));
        }
        if let Some(ch) = changes {
            if ch.cmd.is_some() {
                cc.cmd = ch.cmd;
            }
            if ch.entrypoint.is_some() {
                cc.entrypoint = ch.entrypoint;
            }
            for e in ch.env {
                let k = e.split('=').next().unwrap_or(&e).to_owned();
                cc.env.retain(|x| x.split('=').next() != Some(&k));
                cc.env.push(e);
            }
            if !ch.working_dir.is_empty() {
                cc.working_dir = ch.working_dir;
            }
            if !ch.user.is_empty() {
                cc.user = ch.user;
            }
            cc.labels.extend(ch.labels);
            cc.exposed_ports.extend(ch.exposed_ports);
            cc.volumes.extend(ch.volumes);
            if !ch.stop_signal.is_empty() {
                cc.stop_signal = ch.stop_signal;
            }
        }
        cfg.config = Some(cc);
        cfg.created = Some(berth_image::images::now());
        if let Some(a) = author {
            cfg.author = Some(a.to_owned());
        }
        cfg.rootfs.diff_ids.push(blob.clone());
        cfg.history.push(History {
            created: Some(berth_image::images::now()),
            created_by: Some(
                std::iter::once(r.path.as_str())
                    .chain(r.args.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            comment: comment.map(str::to_owned),
            author: author.map(str::to_owned),
            ..Default::default()
        });
        let mut layers = base.layers.clone();
        layers.push(berth_types::image::Descriptor::new(
            berth_types::image::media::DOCKER_LAYER,
            blob,
            size,
        ));
        let names: Vec<berth_types::Reference> = name.cloned().into_iter().collect();
        let rec = tx.stage_new(&cfg, layers, &names)?;
        tx.commit()?;
        Ok(rec.id)
    }

    /// `docker export`: the container's filesystem (its image and changes,
    /// without volumes and kernel filesystems) as a tar stream.
    pub fn export(&self, key: &str, out: impl Write) -> Result<()> {
        let c = self.container(key)?;
        let dir = self.store.dir(&c.record.id);
        let mut tar = tar::Builder::new(out);
        tar.follow_symlinks(false);
        if c.state.is_active() && c.state.pid > 0 {
            // running: its own view, staying on the root filesystem's device
            let root = rustix::fs::open(
                format!("/proc/{}/root", c.state.pid),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| io_err("open the container's root", e))?;
            let dev = rustix::fs::fstat(&root)
                .map_err(|e| io_err("stat", e))?
                .st_dev;
            let walk = Walk {
                dev: Some(dev),
                devices: true,
            };
            tree(&mut tar, root.as_fd(), Path::new(""), walk, 0)?;
        } else {
            let spec: berth_types::image::MountSpec = serde_json::from_slice(
                &fs::read(dir.join(crate::monitor::ROOTFS_FILE))
                    .map_err(|e| io_err("read rootfs.json", e))?,
            )
            .map_err(|e| Error::Invalid(format!("rootfs.json: {e}")))?;
            let mnt = berth_runtime::rootfs::open_detached(&spec)?;
            let root = rustix::fs::openat(
                &mnt,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| io_err("open the root filesystem", e))?;
            let walk = Walk {
                dev: None,
                devices: true,
            };
            tree(&mut tar, root.as_fd(), Path::new(""), walk, 0)?;
        }
        tar.finish().map_err(|e| io_err("write the archive", e))
    }
}

fn header(st: &rustix::fs::Stat, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    h
}

/// How [`put`] walks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Walk {
    /// Stay on this device (mount points are left empty).
    pub dev: Option<u64>,
    /// Archive device nodes and fifos (`export`); `cp` leaves them out.
    pub devices: bool,
}

/// One entry (and what is below a directory) into `tar` at `at`; nothing
/// is followed (every open is relative to its parent with `O_NOFOLLOW`).
pub(crate) fn put<W: Write>(
    tar: &mut tar::Builder<W>,
    dir: BorrowedFd<'_>,
    name: &str,
    at: &Path,
    st: &rustix::fs::Stat,
    walk: Walk,
    depth: u32,
) -> Result<()> {
    if depth > 256 {
        return Err(Error::Invalid("directory tree too deep".into()));
    }
    let w = |e: std::io::Error| io_err("write the archive", e);
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => {
            let mut h = header(st, tar::EntryType::Directory);
            tar.append_data(&mut h, at, std::io::empty()).map_err(w)?;
            if walk.dev.is_none_or(|d| d == st.st_dev) {
                let d = open_dir(dir, name)?;
                tree(tar, d.as_fd(), at, walk, depth + 1)?;
            }
        }
        FileType::RegularFile => {
            let f = rustix::fs::openat(
                dir,
                name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| io_err(&format!("open {}", at.display()), e))?;
            let mut h = header(st, tar::EntryType::Regular);
            h.set_size(st.st_size as u64);
            tar.append_data(
                &mut h,
                at,
                std::io::Read::take(fs::File::from(f), st.st_size as u64),
            )
            .map_err(w)?;
        }
        FileType::Symlink => {
            let t = rustix::fs::readlinkat(dir, name, Vec::new())
                .map_err(|e| io_err(&format!("readlink {}", at.display()), e))?;
            let mut h = header(st, tar::EntryType::Symlink);
            tar.append_link(&mut h, at, t.to_string_lossy().as_ref())
                .map_err(w)?;
        }
        FileType::CharacterDevice | FileType::BlockDevice if walk.devices => {
            let kind = if FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice {
                tar::EntryType::Char
            } else {
                tar::EntryType::Block
            };
            let mut h = header(st, kind);
            h.set_device_major(rustix::fs::major(st.st_rdev))
                .map_err(w)?;
            h.set_device_minor(rustix::fs::minor(st.st_rdev))
                .map_err(w)?;
            tar.append_data(&mut h, at, std::io::empty()).map_err(w)?;
        }
        FileType::Fifo if walk.devices => {
            let mut h = header(st, tar::EntryType::Fifo);
            tar.append_data(&mut h, at, std::io::empty()).map_err(w)?;
        }
        _ => {}
    }
    Ok(())
}

/// Everything below the directory `dir` into `tar` under `at`.
pub(crate) fn tree<W: Write>(
    tar: &mut tar::Builder<W>,
    dir: BorrowedFd<'_>,
    at: &Path,
    walk: Walk,
    depth: u32,
) -> Result<()> {
    if depth > 256 {
        return Err(Error::Invalid("directory tree too deep".into()));
    }
    for name in entries(dir)? {
        let st = rustix::fs::statat(dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| io_err("stat", e))?;
        put(tar, dir, &name, &at.join(&name), &st, walk, depth)?;
    }
    Ok(())
}

/// The upper directory as an OCI layer: whiteouts (0/0 character devices)
/// become `.wh.NAME`, opaque directories get `.wh..wh..opq`.
fn layer_dir<W: Write>(
    tar: &mut tar::Builder<W>,
    dir: BorrowedFd<'_>,
    at: &Path,
    skip: &std::collections::BTreeSet<String>,
    depth: u32,
) -> Result<()> {
    if depth > 256 {
        return Err(Error::Invalid("directory tree too deep".into()));
    }
    let w = |e: std::io::Error| io_err("write the layer", e);
    if depth > 0 && is_opaque(dir) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(0);
        tar.append_data(&mut h, at.join(".wh..wh..opq"), std::io::empty())
            .map_err(w)?;
    }
    for name in entries(dir)? {
        let st = rustix::fs::statat(dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| io_err("stat", e))?;
        let p = at.join(&name);
        if is_placeholder(skip, &format!("/{}", p.display()), &st, dir, &name) {
            continue;
        }
        if is_whiteout(&st) {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(0);
            tar.append_data(&mut h, at.join(format!(".wh.{name}")), std::io::empty())
                .map_err(w)?;
            continue;
        }
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            let mut h = header(&st, tar::EntryType::Directory);
            tar.append_data(&mut h, &p, std::io::empty()).map_err(w)?;
            let d = open_dir(dir, &name)?;
            layer_dir(tar, d.as_fd(), &p, skip, depth + 1)?;
        } else {
            let walk = Walk {
                dev: None,
                devices: true,
            };
            put(tar, dir, &name, &p, &st, walk, depth)?;
        }
    }
    Ok(())
}

/// Docker's `--change` instructions for commit/import, parsed into the
/// fields they set.
pub fn parse_changes(changes: &[String]) -> Result<ContainerConfig> {
    let mut c = ContainerConfig::default();
    for ch in changes {
        let (instr, rest) = ch
            .trim()
            .split_once(char::is_whitespace)
            .unwrap_or((ch, ""));
        let rest = rest.trim();
        let list = |r: &str| -> Vec<String> {
            if r.starts_with('[') {
                serde_json::from_str(r)
                    .unwrap_or_else(|_| vec!["/bin/sh".into(), "-c".into(), r.into()])
            } else {
                vec!["/bin/sh".into(), "-c".into(), r.into()]
            }
        };
        match instr.to_ascii_uppercase().as_str() {
            "CMD" => c.cmd = Some(list(rest)),
            "ENTRYPOINT" => c.entrypoint = Some(list(rest)),
            "ENV" => c.env.push(match rest.split_once('=') {
                Some(_) => rest.to_owned(),
                None => rest.replacen(char::is_whitespace, "=", 1),
            }),
            "WORKDIR" => c.working_dir = rest.to_owned(),
            "USER" => c.user = rest.to_owned(),
            "EXPOSE" => {
                for p in rest.split_whitespace() {
                    let p = if p.contains('/') {
                        p.to_owned()
                    } else {
                        format!("{p}/tcp")
                    };
                    c.exposed_ports.insert(p, serde_json::json!({}));
                }
            }
            "LABEL" => {
                if let Some((k, v)) = rest.split_once('=') {
                    c.labels
                        .insert(k.trim().to_owned(), v.trim().trim_matches('"').to_owned());
                }
            }
            "VOLUME" => {
                let paths: Vec<String> = if rest.starts_with('[') {
                    serde_json::from_str(rest)
                        .map_err(|e| Error::Invalid(format!("VOLUME {rest}: {e}")))?
                } else {
                    rest.split_whitespace().map(str::to_owned).collect()
                };
                for p in paths {
                    if !p.starts_with('/') {
                        return Err(Error::Invalid(format!(
                            "VOLUME {p}: the path must be absolute"
                        )));
                    }
                    c.volumes.insert(p, serde_json::json!({}));
                }
            }
            "STOPSIGNAL" => c.stop_signal = rest.to_owned(),
            other => {
                return Err(Error::Invalid(format!(
                    "{other} is not a valid change command"
                )));
            }
        }
    }
    Ok(c)
}
