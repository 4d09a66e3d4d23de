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

    /// The image a container was made from: its id and manifest.
    fn image_of(
        &self,
        c: &crate::Container,
    ) -> Result<(berth_types::Digest, berth_types::image::Manifest)> {
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
        Ok((image_id, base))
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

    /// The container's configuration as an image configuration, the way
    /// dockerd's container `Config` reads (what `docker commit` starts
    /// from, and records as the image's `container_config`).
    pub fn container_image_config(&self, key: &str) -> Result<ContainerConfig> {
        let c = self.container(key)?;
        let base = c
            .record
            .image_id
            .parse::<berth_types::Digest>()
            .ok()
            .and_then(|id| self.images.config(&id).ok())
            .and_then(|cfg| cfg.config)
            .unwrap_or_default();
        Ok(record_config(&c.record, &base))
    }

    /// `docker commit`: the container's changes as a layer over its
    /// image's. `config` turns the container's configuration
    /// ([`Engine::container_image_config`]) into the one asked for (a
    /// request's config, `--change` instructions); the container's fills
    /// in what that leaves unset, as dockerd merges them. Records the
    /// container and its configuration, and the image it was made from as
    /// the parent; reports the tag and `commit` events. Returns the new
    /// image id.
    pub fn commit(
        &self,
        key: &str,
        opts: &CommitOptions<'_>,
        config: impl FnOnce(ContainerConfig) -> Result<ContainerConfig>,
    ) -> Result<berth_types::Digest> {
        let (c, upper, lowers) = self.upper(key)?;
        let (image_id, base) = self.image_of(&c)?;
        let mut cfg = self.images.config(&image_id)?;
        let container_config = record_config(&c.record, &cfg.config.clone().unwrap_or_default());
        let wanted = merge(config(container_config.clone())?, &container_config);
        let paused_here =
            opts.pause && c.state.status == crate::Status::Running && self.pause(key).is_ok();
        // the layer blob belongs to the transaction: a failure below
        // removes it again
        let mut tx = self.images.begin()?;
        let layer = write_layer(&tx, &c.record, &upper, &lowers);
        if paused_here {
            let _ = self.unpause(key);
        }
        let (blob, size) = layer?;
        let r = &c.record;
        let now = berth_image::images::now();
        cfg.config = Some(wanted);
        cfg.created = Some(now.clone());
        cfg.author = opts.author.map(str::to_owned);
        cfg.extra.insert("container".into(), r.id.clone().into());
        cfg.extra.insert(
            "container_config".into(),
            serde_json::to_value(&container_config)
                .map_err(|e| Error::Internal(format!("container config: {e}")))?,
        );
        cfg.rootfs.diff_ids.push(blob.clone());
        cfg.history.push(History {
            created: Some(now),
            created_by: Some(
                std::iter::once(r.path.as_str())
                    .chain(r.args.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            comment: opts.comment.map(str::to_owned),
            author: opts.author.map(str::to_owned),
            ..Default::default()
        });
        let mut layers = base.layers.clone();
        layers.push(berth_types::image::Descriptor::new(
            berth_types::image::media::DOCKER_LAYER,
            blob,
            size,
        ));
        let names: Vec<berth_types::Reference> = opts.name.cloned().into_iter().collect();
        let new = tx.stage_new(&cfg, layers, &names, Some(&image_id))?;
        tx.commit()?;
        if let Some(n) = opts.name {
            self.image_event("tag", &new.id, &n.familiar());
        }
        let mut attrs = crate::events::container_attributes(r);
        attrs.insert("comment".into(), opts.comment.unwrap_or("").to_owned());
        attrs.insert("imageID".into(), new.id.to_string());
        attrs.insert(
            "imageRef".into(),
            opts.name.map(|n| n.familiar()).unwrap_or_default(),
        );
        crate::events::emit(&self.root, "container", "commit", &r.id, attrs);
        Ok(new.id)
    }

    /// A build step's commit: the container's changes as a layer over its
    /// image's, with exactly the configuration `cfg` (its layers and
    /// history are the parent's; this adds the new layer's diff id and
    /// `history`). Nothing of the container's own configuration is merged
    /// in, unlike `docker commit`. Returns the new image id.
    pub fn commit_build(
        &self,
        key: &str,
        mut cfg: berth_types::image::ImageConfig,
        history: History,
    ) -> Result<berth_types::Digest> {
        let (c, upper, lowers) = self.upper(key)?;
        let (image_id, base) = self.image_of(&c)?;
        let mut tx = self.images.begin()?;
        let (blob, size) = write_layer(&tx, &c.record, &upper, &lowers)?;
        cfg.created = history.created.clone().or(cfg.created);
        cfg.rootfs.diff_ids.push(blob.clone());
        cfg.history.push(history);
        let mut layers = base.layers.clone();
        layers.push(berth_types::image::Descriptor::new(
            berth_types::image::media::DOCKER_LAYER,
            blob,
            size,
        ));
        let new = tx.stage_new(&cfg, layers, &[], Some(&image_id))?;
        tx.commit()?;
        Ok(new.id)
    }

    /// A build step that changes only the configuration: an image with
    /// `parent`'s layers (none for `scratch`) and the configuration `cfg`
    /// (whose `rootfs` must list those layers), recorded as `parent`'s
    /// child. Returns its id.
    pub fn derive_image(
        &self,
        parent: Option<&berth_types::Digest>,
        cfg: &berth_types::image::ImageConfig,
    ) -> Result<berth_types::Digest> {
        self.derive_image_with(parent, cfg, Vec::new())
    }

    /// [`Engine::derive_image`] with layers (blobs already in the content
    /// store, e.g. another image's) added over the parent's: the builder
    /// reusing a step of a `--cache-from` image.
    pub fn derive_image_with(
        &self,
        parent: Option<&berth_types::Digest>,
        cfg: &berth_types::image::ImageConfig,
        extra: Vec<berth_types::image::Descriptor>,
    ) -> Result<berth_types::Digest> {
        let mut layers = match parent {
            Some(p) => {
                let rec = self
                    .images
                    .db()
                    .image(p)?
                    .ok_or_else(|| Error::NotFound(format!("No such image: {p}")))?;
                self.images.manifest(&rec)?.layers
            }
            None => Vec::new(),
        };
        layers.extend(extra);
        let mut tx = self.images.begin()?;
        let new = tx.stage_new(cfg, layers, &[], parent)?;
        tx.commit()?;
        Ok(new.id)
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

/// The upper directory `upper` of the container `r` as a layer blob of
/// the transaction `tx` (placeholders of mount points left out). Returns
/// the blob's digest (its diff id: the layer is not compressed) and size.
fn write_layer(
    tx: &berth_image::transaction::Transaction<'_>,
    r: &crate::Record,
    upper: &Path,
    lowers: &[PathBuf],
) -> Result<(berth_types::Digest, u64)> {
    let mut w = tx.content().writer(Default::default())?;
    {
        let mut tar = tar::Builder::new(&mut w);
        tar.follow_symlinks(false);
        let root = fs::File::open(upper).map_err(|e| io_err("open the upper layer", e))?;
        let skip = Skip {
            placeholders: placeholders(r),
            lowers,
        };
        layer_dir(&mut tar, root.as_fd(), Path::new(""), &skip, 0)?;
        tar.finish().map_err(|e| io_err("write the layer", e))?;
    }
    let size = w.written();
    Ok((w.commit()?, size))
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
/// What a commit leaves out of the upper directory: the runtime's mount
/// points, and directories that hold nothing else and are as the image
/// has them (made or copied up only to hold a mount point: Docker keeps
/// all of that in an "init" layer that commits never see).
struct Skip<'a> {
    placeholders: std::collections::BTreeSet<String>,
    /// The image's layers, top first.
    lowers: &'a [PathBuf],
}

impl Skip<'_> {
    /// Whether the directory `name` in `dir` (at `abs`) holds only mount
    /// points (at any depth) and has the mode and owner the image gives it
    /// (or the image has no such directory).
    fn only_mount_points(
        &self,
        abs: &str,
        dir: BorrowedFd<'_>,
        name: &str,
        st: &rustix::fs::Stat,
        depth: u32,
    ) -> bool {
        if depth > 32 {
            return false;
        }
        let Ok(d) = open_dir(dir, name) else {
            return false;
        };
        if is_opaque(d.as_fd()) {
            return false;
        }
        let Ok(names) = entries(d.as_fd()) else {
            return false;
        };
        let inside = names.iter().all(|n| {
            let Ok(cst) = rustix::fs::statat(&d, n.as_str(), AtFlags::SYMLINK_NOFOLLOW) else {
                return false;
            };
            let child = format!("{}/{n}", abs.trim_end_matches('/'));
            if is_whiteout(&cst) {
                return false;
            }
            is_placeholder(&self.placeholders, &child, &cst, d.as_fd(), n)
                || (FileType::from_raw_mode(cst.st_mode) == FileType::Directory
                    && self.only_mount_points(&child, d.as_fd(), n, &cst, depth + 1))
        });
        if !inside {
            return false;
        }
        let rel = abs.trim_start_matches('/');
        match self
            .lowers
            .iter()
            .find_map(|l| rustix::fs::lstat(l.join(rel)).ok())
        {
            None => true,
            Some(lower) => {
                lower.st_mode == st.st_mode
                    && lower.st_uid == st.st_uid
                    && lower.st_gid == st.st_gid
            }
        }
    }
}

fn layer_dir<W: Write>(
    tar: &mut tar::Builder<W>,
    dir: BorrowedFd<'_>,
    at: &Path,
    skip: &Skip<'_>,
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
        let abs = format!("/{}", p.display());
        if is_placeholder(&skip.placeholders, &abs, &st, dir, &name) {
            continue;
        }
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory
            && skip.only_mount_points(&abs, dir, &name, &st, 0)
        {
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

/// What `docker commit` is asked besides the configuration.
#[derive(Clone, Debug, Default)]
pub struct CommitOptions<'a> {
    /// The new image's name.
    pub name: Option<&'a berth_types::Reference>,
    /// The commit message (`-m`).
    pub comment: Option<&'a str>,
    /// The author (`-a`).
    pub author: Option<&'a str>,
    /// Pause a running container while its layer is written.
    pub pause: bool,
}

/// A container's configuration in an image configuration's terms, with
/// the keys dockerd's container `Config` has (`Hostname`, `Image`,
/// `AttachStdout`, …); `base` (its image's) gives what a container does not
/// record (the shell, ONBUILD triggers).
fn record_config(r: &crate::Record, base: &ContainerConfig) -> ContainerConfig {
    use serde_json::json;
    let mut cc = ContainerConfig {
        user: r.user.clone(),
        exposed_ports: r
            .exposed_ports
            .iter()
            .map(|p| (p.to_string(), json!({})))
            .collect(),
        env: r.env.clone(),
        entrypoint: (!r.entrypoint.is_empty()).then(|| r.entrypoint.clone()),
        cmd: (!r.cmd.is_empty()).then(|| r.cmd.clone()),
        volumes: r
            .mounts
            .iter()
            .filter(|m| m.anonymous || m.origin == crate::config::MountOrigin::Image)
            .map(|m| (m.destination.clone(), json!({})))
            .collect(),
        working_dir: if r.working_dir == "/" {
            String::new()
        } else {
            r.working_dir.clone()
        },
        labels: r.labels.clone(),
        // only a signal the container chose (the default is not baked in)
        stop_signal: r.stop_signal.map(|s| s.name()).unwrap_or_default(),
        healthcheck: r.healthcheck.clone(),
        shell: base.shell.clone(),
        on_build: base.on_build.clone(),
        extra: Default::default(),
    };
    for (k, v) in [
        ("Hostname", json!(r.hostname)),
        ("Domainname", json!(r.domainname)),
        ("AttachStdin", json!(r.attach.stdin)),
        ("AttachStdout", json!(r.attach.stdout)),
        ("AttachStderr", json!(r.attach.stderr)),
        ("Tty", json!(r.tty)),
        ("OpenStdin", json!(r.open_stdin)),
        ("StdinOnce", json!(r.stdin_once)),
        ("Image", json!(r.image)),
    ] {
        cc.extra.insert(k.to_owned(), v);
    }
    cc
}

/// What the committed image keeps: `user` (the configuration asked for),
/// with the container's `from` where `user` leaves something unset, as
/// dockerd's commit merges them (environment entries and labels are added
/// by name, ports and volumes joined; a command comes along only with no
/// entrypoint asked for).
fn merge(mut user: ContainerConfig, from: &ContainerConfig) -> ContainerConfig {
    if user.user.is_empty() {
        user.user = from.user.clone();
    }
    for (p, v) in &from.exposed_ports {
        user.exposed_ports.entry(p.clone()).or_insert(v.clone());
    }
    if user.env.is_empty() {
        user.env = from.env.clone();
    } else {
        for e in &from.env {
            let key = e.split('=').next().unwrap_or(e);
            if !user.env.iter().any(|u| u.split('=').next() == Some(key)) {
                user.env.push(e.clone());
            }
        }
    }
    for (k, v) in &from.labels {
        user.labels.entry(k.clone()).or_insert(v.clone());
    }
    if user.entrypoint.as_ref().is_none_or(Vec::is_empty) {
        if user.cmd.as_ref().is_none_or(Vec::is_empty) {
            user.cmd = from.cmd.clone();
        }
        if user.entrypoint.is_none() {
            user.entrypoint = from.entrypoint.clone();
        }
    }
    match (&mut user.healthcheck, &from.healthcheck) {
        (None, Some(h)) => user.healthcheck = Some(h.clone()),
        (Some(u), Some(h)) => {
            if u.test.is_empty() {
                u.test = h.test.clone();
            }
            for (mine, theirs) in [
                (&mut u.interval, h.interval),
                (&mut u.timeout, h.timeout),
                (&mut u.start_period, h.start_period),
                (&mut u.retries, h.retries),
            ] {
                if *mine == 0 {
                    *mine = theirs;
                }
            }
        }
        _ => {}
    }
    if user.working_dir.is_empty() {
        user.working_dir = from.working_dir.clone();
    }
    for (k, v) in &from.volumes {
        user.volumes.insert(k.clone(), v.clone());
    }
    if user.stop_signal.is_empty() {
        user.stop_signal = from.stop_signal.clone();
    }
    user
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_merges_like_dockerd() {
        let from = ContainerConfig {
            env: vec!["A=1".into(), "C=old".into()],
            cmd: Some(vec!["sh".into()]),
            labels: [("k".to_owned(), "v".to_owned())].into(),
            working_dir: "/w".into(),
            ..Default::default()
        };
        let user = ContainerConfig {
            env: vec!["C=3".into(), "D=4".into()],
            ..Default::default()
        };
        let m = merge(user, &from);
        assert_eq!(m.env, ["C=3", "D=4", "A=1"], "the asked-for entries first");
        assert_eq!(m.cmd.unwrap(), ["sh"]);
        assert_eq!(m.labels.get("k").unwrap(), "v");
        assert_eq!(m.working_dir, "/w");
        // an entrypoint asked for drops the container's command
        let user = ContainerConfig {
            entrypoint: Some(vec!["e".into()]),
            ..Default::default()
        };
        let m = merge(user, &from);
        assert_eq!((m.cmd, m.entrypoint.unwrap()), (None, vec!["e".to_owned()]));
        assert_eq!(m.env, ["A=1", "C=old"]);
    }
}
