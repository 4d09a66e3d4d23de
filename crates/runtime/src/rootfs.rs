//! Building the container's filesystem view inside its new mount
//! namespace: the rootfs bind, the spec's mounts (new mount API, every
//! target an fd resolved inside the rootfs), /dev, pivot_root, masked and
//! read-only paths, and the read-only root.
//!
//! [`RootfsPlan::from_spec`] runs in the parent and catches bad input
//! before any process exists; the `apply_*` functions run in the child.

use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use berth_sys::mount::{AT_RECURSIVE, attr, mount_setattr};
use oci_spec::runtime::{LinuxDeviceType, Spec};
use rustix::fs::{Mode, OFlags};
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountPropagationFlags, MoveMountFlags,
    OpenTreeFlags, UnmountFlags,
};

use crate::cgroups::Cgroup;
use crate::error::{Context, Error, Result};
use crate::mountopts::{self, MountOptions, Propagation};
use berth_sys::paths::{self, Kind};

/// One mount of the spec, checked and parsed.
#[derive(Clone, Debug)]
pub struct MountEntry {
    /// Destination inside the container (absolute).
    pub dest: PathBuf,
    /// Filesystem type (`bind` for bind mounts).
    pub fstype: String,
    /// Source (a host path for binds).
    pub source: String,
    /// Parsed options.
    pub opts: MountOptions,
    /// For binds: the source is not a directory.
    pub source_is_file: bool,
}

impl MountEntry {
    /// Whether it is a bind mount.
    pub fn is_bind(&self) -> bool {
        self.opts.bind || self.fstype == "bind"
    }
}

/// A device node to create in the container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceNode {
    /// Absolute path in the container.
    pub path: PathBuf,
    /// `c`, `b`, `u` or `p`.
    pub kind: char,
    /// Major number.
    pub major: i64,
    /// Minor number.
    pub minor: i64,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// Everything the child needs to build the filesystem view.
#[derive(Clone, Debug)]
pub struct RootfsPlan {
    /// Host path of the rootfs.
    pub rootfs: PathBuf,
    /// Make the root read-only at the end.
    pub readonly: bool,
    /// The spec's mounts, in order.
    pub mounts: Vec<MountEntry>,
    /// Populate /dev (no bind mount over /dev in the spec).
    pub setup_dev: bool,
    /// Device nodes to create (defaults plus the spec's).
    pub devices: Vec<DeviceNode>,
    /// The spec mounts a devpts at /dev/pts.
    pub devpts: bool,
    /// Paths to hide.
    pub masked: Vec<PathBuf>,
    /// Paths to make read-only.
    pub readonly_paths: Vec<PathBuf>,
    /// `linux.rootfsPropagation`.
    pub root_propagation: Option<(Propagation, bool)>,
    /// Use MS_MOVE + chroot instead of pivot_root.
    pub no_pivot: bool,
    /// Inside a new user namespace (no mknod; bind host devices instead).
    pub userns: bool,
    /// The container's cgroup (for `cgroup` mounts).
    pub cgroup: Option<Cgroup>,
    /// A new cgroup namespace.
    pub cgroupns: bool,
    /// A new mount namespace (without one, mounts land in the host's
    /// namespace until `delete` removes them, and chroot replaces
    /// pivot_root).
    pub mountns: bool,
    /// The process's working directory, created if missing.
    pub cwd: Option<PathBuf>,
    /// Mounts that make the root filesystem (an image's overlay), mounted
    /// on the rootfs directory inside the container's mount namespace.
    pub rootfs_mounts: Vec<berth_types::image::MountSpec>,
}

const DEFAULT_DEVICES: &[(&str, i64, i64)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

impl RootfsPlan {
    /// Builds and checks the plan in the parent.
    pub fn from_spec(
        spec: &Spec,
        bundle: &Path,
        rootfs: &Path,
        no_pivot: bool,
        cgroup: Option<Cgroup>,
    ) -> Result<RootfsPlan> {
        let linux = spec.linux().as_ref();
        let mut mounts = Vec::new();
        for m in spec.mounts().iter().flatten() {
            let options: Vec<String> = m.options().clone().unwrap_or_default();
            let opts = mountopts::parse(&options).map_err(|e| {
                if e.starts_with("not supported yet: ") {
                    Error::Unsupported(format!(
                        "{} (mount on {})",
                        e.trim_start_matches("not supported yet: "),
                        m.destination().display()
                    ))
                } else {
                    Error::Invalid(format!("mount on {}: {e}", m.destination().display()))
                }
            })?;
            let fstype = m.typ().clone().unwrap_or_default();
            let dest = Path::new("/").join(paths::relative(m.destination()));
            let mut source = m
                .source()
                .as_ref()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut entry = MountEntry {
                dest,
                fstype,
                source: source.clone(),
                opts,
                source_is_file: false,
            };
            if entry.is_bind() {
                if source.is_empty() {
                    return Err(Error::Invalid(format!(
                        "bind mount on {} has no source",
                        entry.dest.display()
                    )));
                }
                if !Path::new(&source).is_absolute() {
                    source = bundle.join(&source).to_string_lossy().into_owned();
                }
                let meta = fs::metadata(&source).map_err(|e| {
                    Error::Invalid(format!(
                        "bind mount source {source} (for {}): {e}",
                        entry.dest.display()
                    ))
                })?;
                entry.source_is_file = !meta.is_dir();
                entry.source = source;
            } else if entry.fstype.is_empty() {
                return Err(Error::Invalid(format!(
                    "mount on {} has no type (and is not a bind mount)",
                    entry.dest.display()
                )));
            }
            if entry.opts.tmpcopyup && entry.fstype != "tmpfs" {
                return Err(Error::Invalid(format!(
                    "tmpcopyup on {} is only valid for tmpfs",
                    entry.dest.display()
                )));
            }
            crate::proc_mounts::check_lexically(&entry)?;
            mounts.push(entry);
        }
        let setup_dev = !mounts
            .iter()
            .any(|m| m.dest == Path::new("/dev") && m.is_bind());
        let devpts = mounts
            .iter()
            .any(|m| m.dest == Path::new("/dev/pts") && m.fstype == "devpts");

        let mut devices = Vec::new();
        let spec_devices = linux.and_then(|l| l.devices().as_ref());
        for d in spec_devices.into_iter().flatten() {
            let kind = match d.typ() {
                LinuxDeviceType::C | LinuxDeviceType::U => 'c',
                LinuxDeviceType::B => 'b',
                LinuxDeviceType::P => 'p',
                LinuxDeviceType::A => {
                    return Err(Error::Invalid(format!(
                        "device {} has type \"a\", which only device cgroup rules may use",
                        d.path().display()
                    )));
                }
            };
            if !d.path().is_absolute() {
                return Err(Error::Invalid(format!(
                    "device path {} must be absolute",
                    d.path().display()
                )));
            }
            if paths::relative(d.path())
                .components()
                .any(|c| c == std::path::Component::ParentDir)
            {
                return Err(Error::Invalid(format!(
                    "device path {} contains \"..\"",
                    d.path().display()
                )));
            }
            devices.push(DeviceNode {
                path: d.path().clone(),
                kind,
                major: d.major(),
                minor: d.minor(),
                mode: d.file_mode().unwrap_or(0o666) & 0o7777,
                uid: d.uid().unwrap_or(0),
                gid: d.gid().unwrap_or(0),
            });
        }
        if setup_dev {
            for (name, major, minor) in DEFAULT_DEVICES {
                let path = Path::new("/dev").join(name);
                if !devices.iter().any(|d| d.path == path) {
                    devices.push(DeviceNode {
                        path,
                        kind: 'c',
                        major: *major,
                        minor: *minor,
                        mode: 0o666,
                        uid: 0,
                        gid: 0,
                    });
                }
            }
        }
        let root_propagation = match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
            None | Some("") => None,
            Some(p) => Some(Propagation::parse(p).ok_or_else(|| {
                Error::Invalid(format!("rootfsPropagation {p:?} is not a propagation type"))
            })?),
        };
        let ns = |t| crate::spec::has_ns(spec, t);
        use oci_spec::runtime::LinuxNamespaceType as T;
        Ok(RootfsPlan {
            rootfs: rootfs.to_path_buf(),
            readonly: spec
                .root()
                .as_ref()
                .and_then(|r| r.readonly())
                .unwrap_or(false),
            mounts,
            setup_dev,
            devices,
            devpts,
            masked: linux
                .and_then(|l| l.masked_paths().clone())
                .unwrap_or_default()
                .into_iter()
                .map(PathBuf::from)
                .collect(),
            readonly_paths: linux
                .and_then(|l| l.readonly_paths().clone())
                .unwrap_or_default()
                .into_iter()
                .map(PathBuf::from)
                .collect(),
            root_propagation,
            no_pivot,
            userns: ns(T::User),
            cgroup,
            cgroupns: ns(T::Cgroup),
            mountns: ns(T::Mount),
            cwd: spec.process().as_ref().map(|p| p.cwd().clone()),
            rootfs_mounts: Vec::new(),
        })
    }
}

fn at(e: io::Error, what: &str, path: &Path) -> Error {
    Error::Io {
        context: format!("{what} {}", path.display()),
        source: e,
    }
}

/// Calls a once-only hook the first time it is asked to.
struct Once<'a> {
    hook: Option<&'a mut dyn FnMut() -> Result<()>>,
}

impl Once<'_> {
    fn call(&mut self) -> Result<()> {
        match self.hook.take() {
            Some(h) => h(),
            None => Ok(()),
        }
    }
}

/// Step 1 (in the new mount namespace): propagation, the rootfs bind, the
/// spec's mounts and /dev. Returns an fd of the rootfs. `in_cgroup` runs
/// once, before the first cgroup mount or after the last mount: it returns
/// when the process is in its cgroup (and cgroup namespace).
pub fn prepare(plan: &RootfsPlan, in_cgroup: &mut dyn FnMut() -> Result<()>) -> Result<OwnedFd> {
    let mut in_cgroup = Once {
        hook: Some(in_cgroup),
    };
    let root = if plan.mountns {
        prepare_in_mount_namespace(plan, &mut in_cgroup)?
    } else {
        prepare_in_host_namespace(plan, &mut in_cgroup)?
    };
    in_cgroup.call()?;
    Ok(root)
}

/// The order the spec's mounts are made in: the spec's, except that cgroup
/// mounts (and mounts below them) go last where no later mount covers
/// them, so the rest are made while the runtime joins the process to its
/// cgroup.
fn mount_order(mounts: &[MountEntry]) -> Vec<usize> {
    let is_cgroup = |m: &MountEntry| m.fstype.starts_with("cgroup");
    let mut deferred: Vec<usize> = Vec::new();
    let mut now: Vec<usize> = Vec::new();
    for (i, m) in mounts.iter().enumerate() {
        let under_deferred = deferred
            .iter()
            .any(|&d| m.dest.starts_with(&mounts[d].dest));
        // a later mount on or above it must still come after it
        let covered_later = mounts[i + 1..].iter().any(|n| m.dest.starts_with(&n.dest));
        if (is_cgroup(m) || under_deferred) && !covered_later {
            deferred.push(i);
        } else if under_deferred {
            // keep it after what it is mounted on: nothing moves
            return (0..mounts.len()).collect();
        } else {
            now.push(i);
        }
    }
    now.extend(deferred);
    now
}

/// Mounts the spec's mounts under `root`, calling `in_cgroup` before the
/// first cgroup mount.
fn mount_entries(root: BorrowedFd<'_>, plan: &RootfsPlan, in_cgroup: &mut Once<'_>) -> Result<()> {
    for m in mount_order(&plan.mounts)
        .into_iter()
        .map(|i| &plan.mounts[i])
    {
        if m.fstype.starts_with("cgroup") {
            in_cgroup.call()?;
        }
        mount_entry(root, m, plan).map_err(|e| match e {
            Error::Io { context, source } => Error::Io {
                context: format!("mount {} on {}: {context}", m.fstype, m.dest.display()),
                source,
            },
            other => other,
        })?;
    }
    Ok(())
}

fn prepare_in_mount_namespace(plan: &RootfsPlan, in_cgroup: &mut Once<'_>) -> Result<OwnedFd> {
    let base = match plan.root_propagation {
        Some((Propagation::Shared, _)) => MountPropagationFlags::SHARED,
        Some((Propagation::Private, _)) | Some((Propagation::Unbindable, _)) => {
            MountPropagationFlags::PRIVATE
        }
        _ => MountPropagationFlags::DOWNSTREAM,
    };
    rustix::mount::mount_change("/", base | MountPropagationFlags::REC)
        .ctx(|| "set the propagation of / in the container's mount namespace")?;
    if base == MountPropagationFlags::SHARED {
        make_parent_mount_private(&plan.rootfs)?;
    }
    mount_rootfs(plan)?;
    rustix::mount::mount_bind_recursive(&plan.rootfs, &plan.rootfs)
        .ctx(|| format!("bind the rootfs {} onto itself", plan.rootfs.display()))?;
    let root = rustix::fs::open(
        &plan.rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open rootfs {}", plan.rootfs.display()))?;
    mount_entries(root.as_fd(), plan, in_cgroup)?;
    if plan.setup_dev {
        setup_dev(root.as_fd(), plan)?;
    }
    create_cwd(root.as_fd(), plan)?;
    Ok(root)
}

/// Mounts the snapshotter's description of the root filesystem (an
/// overlay of image layers) on the rootfs directory.
fn mount_rootfs(plan: &RootfsPlan) -> Result<()> {
    for m in &plan.rootfs_mounts {
        let target = rustix::fs::open(
            &plan.rootfs,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| format!("open rootfs {}", plan.rootfs.display()))?;
        let opts = mountopts::parse(&m.options).map_err(Error::Invalid)?;
        let mnt = if m.fstype == "bind" || opts.bind {
            bind_tree(rustix::fs::CWD, &m.source, opts.recursive_bind)
                .map_err(|e| at(e, "open_tree", Path::new(&m.source)))?
        } else {
            new_fs(&m.fstype, &m.source, &opts).map_err(|e| {
                tracing::debug!("{} rootfs options: {:?}", m.fstype, m.options);
                at(e, &format!("{} rootfs for", m.fstype), &plan.rootfs)
            })?
        };
        attach(
            &mnt,
            target.as_fd(),
            &MountOptions {
                attr_set: 0,
                attr_clr: 0,
                ..opts
            },
            true,
        )
        .map_err(|e| at(e, "mount the rootfs on", &plan.rootfs))?;
    }
    Ok(())
}

/// Makes a detached mount of a snapshotter description (not attached
/// anywhere, so it can never leak: it goes when the fd is closed). The
/// engine reads image content through it (copy-up into new volumes).
pub fn open_detached(m: &berth_types::image::MountSpec) -> Result<OwnedFd> {
    let opts = mountopts::parse(&m.options).map_err(Error::Invalid)?;
    if m.fstype == "bind" || opts.bind {
        bind_tree(rustix::fs::CWD, &m.source, opts.recursive_bind)
            .map_err(|e| at(e, "open_tree", Path::new(&m.source)))
    } else {
        new_fs(&m.fstype, &m.source, &opts)
            .map_err(|e| at(e, &format!("mount {}", m.fstype), Path::new(&m.source)))
    }
}

fn create_cwd(root: BorrowedFd<'_>, plan: &RootfsPlan) -> Result<()> {
    if let Some(cwd) = &plan.cwd
        && let Err(e) = paths::create_all(root, cwd, Kind::Dir)
    {
        // A read-only rootfs without the directory: the process fails
        // later with a clear message; anything else is an error now.
        if e.raw_os_error() != Some(libc::EROFS) {
            return Err(at(e, "create the working directory", cwd));
        }
    }
    Ok(())
}

/// Without a mount namespace of its own the container shares the host's:
/// its mounts are made there (under the rootfs, removed again by
/// [`unmount_under`] at delete) and it is entered with chroot.
fn prepare_in_host_namespace(plan: &RootfsPlan, in_cgroup: &mut Once<'_>) -> Result<OwnedFd> {
    mount_rootfs(plan)?;
    if plan.readonly {
        rustix::mount::mount_bind_recursive(&plan.rootfs, &plan.rootfs)
            .ctx(|| format!("bind the rootfs {} onto itself", plan.rootfs.display()))?;
    }
    let root = rustix::fs::open(
        &plan.rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open rootfs {}", plan.rootfs.display()))?;
    mount_entries(root.as_fd(), plan, in_cgroup)?;
    if plan.setup_dev {
        setup_dev(root.as_fd(), plan)?;
    }
    create_cwd(root.as_fd(), plan)?;
    Ok(root)
}

/// Lazily unmounts every mount at or below `dir` in this mount namespace
/// (deepest first).
pub fn unmount_under(dir: &Path) -> Result<()> {
    let info = fs::read_to_string("/proc/self/mountinfo").ctx(|| "read /proc/self/mountinfo")?;
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(m.replace("\\040", " ")))
        .filter(|m| m.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    points.dedup();
    for p in points {
        match rustix::mount::unmount(&p, UnmountFlags::DETACH) {
            Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(at(e.into(), "unmount", &p)),
        }
    }
    Ok(())
}

/// pivot_root requires the rootfs's parent mount not to be shared.
fn make_parent_mount_private(rootfs: &Path) -> Result<()> {
    let info = fs::read_to_string("/proc/self/mountinfo").ctx(|| "read /proc/self/mountinfo")?;
    let parent = rootfs.parent().unwrap_or(Path::new("/"));
    let mut best: Option<PathBuf> = None;
    for line in info.lines() {
        let Some(mp) = line.split(' ').nth(4) else {
            continue;
        };
        let mp = PathBuf::from(mp.replace("\\040", " "));
        if parent.starts_with(&mp)
            && best
                .as_ref()
                .is_none_or(|b| mp.as_os_str().len() > b.as_os_str().len())
        {
            best = Some(mp);
        }
    }
    let mp = best.unwrap_or_else(|| PathBuf::from("/"));
    rustix::mount::mount_change(&mp, MountPropagationFlags::PRIVATE)
        .ctx(|| format!("make {} private", mp.display()))
}

fn attrs(set: u64) -> MountAttrFlags {
    MountAttrFlags::from_bits_retain(set as u32)
}

/// Attaches the detached mount `mnt` on `target` and applies attributes and
/// propagation to it.
fn attach(
    mnt: &OwnedFd,
    target: BorrowedFd<'_>,
    opts: &MountOptions,
    after_attach: bool,
) -> io::Result<()> {
    if !after_attach {
        set_attrs(mnt.as_fd(), opts)?;
    }
    rustix::mount::move_mount(
        mnt,
        "",
        target,
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )?;
    if after_attach {
        set_attrs(mnt.as_fd(), opts)?;
    }
    if let Some((p, rec)) = opts.propagation {
        let flags = libc::AT_EMPTY_PATH as u32 | if rec { AT_RECURSIVE } else { 0 };
        mount_setattr(mnt.as_fd(), c"", flags, 0, 0, p.ms_flag())?;
    }
    Ok(())
}

fn set_attrs(mnt: BorrowedFd<'_>, opts: &MountOptions) -> io::Result<()> {
    if opts.attr_set != 0 || opts.attr_clr != 0 {
        mount_setattr(
            mnt,
            c"",
            libc::AT_EMPTY_PATH as u32,
            opts.attr_set,
            opts.attr_clr,
            0,
        )?;
    }
    if opts.rec_attr_set != 0 || opts.rec_attr_clr != 0 {
        mount_setattr(
            mnt,
            c"",
            libc::AT_EMPTY_PATH as u32 | AT_RECURSIVE,
            opts.rec_attr_set,
            opts.rec_attr_clr,
            0,
        )?;
    }
    Ok(())
}

/// A new filesystem instance as a detached mount.
/// fsconfig takes string values of at most 255 bytes (the kernel copies
/// 256 with the NUL).
const FSCONFIG_MAX: usize = 255;

fn new_fs(fstype: &str, source: &str, opts: &MountOptions) -> io::Result<OwnedFd> {
    let fs = rustix::mount::fsopen(fstype, FsOpenFlags::FSOPEN_CLOEXEC)?;
    if !source.is_empty() {
        rustix::mount::fsconfig_set_string(&fs, "source", source)?;
    }
    for flag in &opts.sb_flags {
        rustix::mount::fsconfig_set_flag(&fs, *flag)?;
    }
    for d in &opts.data {
        match d.split_once('=') {
            // Long overlay layer lists: one "lowerdir+" per layer (Linux
            // 6.8+) has no length limit; older kernels take the whole list
            // only through mount(2)'s page of options.
            Some(("lowerdir", v)) if fstype == "overlay" && v.len() > FSCONFIG_MAX => {
                for (i, layer) in v.split(':').enumerate() {
                    if let Err(e) = rustix::mount::fsconfig_set_string(&fs, "lowerdir+", layer) {
                        if i == 0 {
                            return legacy_fs(fstype, source, opts);
                        }
                        return Err(e.into());
                    }
                }
            }
            Some((k, v)) => rustix::mount::fsconfig_set_string(&fs, k, v)?,
            None => rustix::mount::fsconfig_set_flag(&fs, d.as_str())?,
        }
    }
    rustix::mount::fsconfig_create(&fs)?;
    Ok(rustix::mount::fsmount(
        &fs,
        FsMountFlags::FSMOUNT_CLOEXEC,
        attrs(opts.attr_set),
    )?)
}

/// A detached mount made with mount(2) (whose options may fill a page),
/// for kernels whose fsconfig cannot take them: mounted on a fresh
/// directory, cloned as a detached tree, and unmounted again at once.
fn legacy_fs(fstype: &str, source: &str, opts: &MountOptions) -> io::Result<OwnedFd> {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        ".berth-mnt-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    fs::create_dir(&dir)?;
    let mut data: Vec<String> = opts.sb_flags.iter().map(|f| (*f).to_owned()).collect();
    data.extend(opts.data.iter().cloned());
    let data = std::ffi::CString::new(data.join(","))
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mounted = rustix::mount::mount(
        if source.is_empty() { fstype } else { source },
        &dir,
        fstype,
        rustix::mount::MountFlags::empty(),
        Some(data.as_c_str()),
    );
    let r = mounted.map_err(io::Error::from).and_then(|()| {
        let t = bind_tree(rustix::fs::CWD, &dir.to_string_lossy(), true);
        let _ = rustix::mount::unmount(&dir, rustix::mount::UnmountFlags::DETACH);
        t
    });
    let _ = fs::remove_dir(&dir);
    let fd = r?;
    if opts.attr_set != 0 {
        mount_setattr(
            fd.as_fd(),
            c"",
            libc::AT_EMPTY_PATH as u32,
            opts.attr_set,
            0,
            0,
        )?;
    }
    Ok(fd)
}

fn bind_tree(dirfd: BorrowedFd<'_>, path: &str, recursive: bool) -> io::Result<OwnedFd> {
    let mut flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= OpenTreeFlags::AT_RECURSIVE;
    }
    if path.is_empty() {
        flags |= OpenTreeFlags::AT_EMPTY_PATH;
    }
    Ok(rustix::mount::open_tree(dirfd, path, flags)?)
}

fn mount_entry(root: BorrowedFd<'_>, m: &MountEntry, plan: &RootfsPlan) -> Result<()> {
    if m.fstype == "proc" || m.fstype == "sysfs" {
        // /proc and /sys must be ordinary directories, never symlinks
        // (CVE-2019-16884, CVE-2023-28642).
        paths::create_all(root, &m.dest, Kind::Dir).map_err(|e| at(e, "create", &m.dest))?;
        paths::open_no_symlinks(root, &m.dest).map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) || e.raw_os_error() == Some(libc::ENOTDIR) {
                Error::Invalid(format!(
                    "{} is a symlink or not a directory in the rootfs: {} must be mounted on an \
                     ordinary directory",
                    m.dest.display(),
                    m.fstype
                ))
            } else {
                at(e, "open", &m.dest)
            }
        })?;
    }
    let kind = if m.is_bind() && m.source_is_file {
        Kind::File
    } else {
        Kind::Dir
    };
    let target = match paths::create_all(root, &m.dest, kind) {
        Ok(t) => t,
        Err(e) => {
            crate::proc_mounts::check_uncreated(root, m)?;
            return Err(at(e, "create mount point", &m.dest));
        }
    };
    crate::proc_mounts::check_target(root, target.as_fd(), m)?;
    if m.is_bind() {
        let tree = bind_tree(rustix::fs::CWD, &m.source, m.opts.recursive_bind)
            .map_err(|e| at(e, "open_tree", Path::new(&m.source)))?;
        return attach(&tree, target.as_fd(), &m.opts, false)
            .map_err(|e| at(e, "attach bind of", Path::new(&m.source)));
    }
    match m.fstype.as_str() {
        "cgroup" => mount_cgroup(root, target.as_fd(), m, plan),
        "cgroup2" if !plan.cgroupns => mount_cgroup(root, target.as_fd(), m, plan),
        _ => {
            let fs = match new_fs(&m.fstype, &m.source, &m.opts) {
                Ok(fs) => fs,
                Err(e) if e.raw_os_error() == Some(libc::EPERM) && m.fstype == "sysfs" => {
                    // Not allowed to mount sysfs (e.g. a user namespace
                    // without its own network namespace): bind the host's.
                    let tree = bind_tree(rustix::fs::CWD, "/sys", true)
                        .map_err(|e| at(e, "open_tree", Path::new("/sys")))?;
                    let mut o = m.opts.clone();
                    o.rec_attr_set |=
                        o.attr_set & (attr::RDONLY | attr::NOSUID | attr::NODEV | attr::NOEXEC);
                    return attach(&tree, target.as_fd(), &o, false)
                        .map_err(|e| at(e, "bind", Path::new("/sys")));
                }
                Err(e) => return Err(at(e, "create filesystem for", &m.dest)),
            };
            if m.opts.tmpcopyup {
                copy_up(target.as_fd(), fs.as_fd())
                    .map_err(|e| at(e, "tmpcopyup into", &m.dest))?;
            }
            attach(
                &fs,
                target.as_fd(),
                &MountOptions {
                    attr_set: 0,
                    attr_clr: 0,
                    ..m.opts.clone()
                },
                true,
            )
            .map_err(|e| at(e, "attach", &m.dest))
        }
    }
}

/// `tmpcopyup`: copies the directory that is about to be covered into the
/// new tmpfs (top level files, dirs and symlinks, recursively).
fn copy_up(from: BorrowedFd<'_>, to_mnt: BorrowedFd<'_>) -> io::Result<()> {
    let src = PathBuf::from(paths::fd_path(from));
    let dst = PathBuf::from(paths::fd_path(to_mnt));
    copy_dir(&src, &dst)
}

fn copy_dir(src: &Path, dst: &Path) -> io::Result<()> {
    for e in fs::read_dir(src)? {
        let e = e?;
        let ft = e.file_type()?;
        let to = dst.join(e.file_name());
        let meta = e.metadata()?;
        if ft.is_dir() {
            fs::create_dir(&to)?;
            copy_dir(&e.path(), &to)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(e.path())?, &to)?;
            continue;
        } else if ft.is_file() {
            fs::copy(e.path(), &to)?;
        } else {
            continue;
        }
        std::os::unix::fs::lchown(&to, Some(meta.uid()), Some(meta.gid()))?;
        fs::set_permissions(
            &to,
            std::os::unix::fs::PermissionsExt::from_mode(meta.mode() & 0o7777),
        )?;
    }
    Ok(())
}

/// A `cgroup` mount: with cgroup v1, a tmpfs holding one mount per
/// hierarchy; with v2, the cgroup2 filesystem. Inside a cgroup namespace
/// new cgroupfs instances show the container's own cgroup as the root;
/// otherwise the container's cgroup directories are bind-mounted.
fn mount_cgroup(
    root: BorrowedFd<'_>,
    target: BorrowedFd<'_>,
    m: &MountEntry,
    plan: &RootfsPlan,
) -> Result<()> {
    let ro = m.opts.attr_set & attr::RDONLY != 0;
    let mut sub_opts = m.opts.clone();
    sub_opts.data.clear();
    sub_opts.propagation = None;
    match &plan.cgroup {
        Some(Cgroup::V2 { dir, .. }) => {
            let mnt = if plan.cgroupns {
                new_fs("cgroup2", "cgroup", &sub_opts)
            } else {
                bind_tree(rustix::fs::CWD, &dir.to_string_lossy(), false)
            }
            .map_err(|e| at(e, "cgroup2 for", &m.dest))?;
            attach(&mnt, target, &sub_opts, !plan.cgroupns)
                .map_err(|e| at(e, "attach cgroup2 on", &m.dest))
        }
        Some(Cgroup::V1 { dirs, .. }) => {
            let mut tmpfs_opts = m.opts.clone();
            tmpfs_opts.attr_set &= !attr::RDONLY;
            tmpfs_opts.data = vec!["mode=755".into()];
            tmpfs_opts.propagation = None;
            let tmp =
                new_fs("tmpfs", "tmpfs", &tmpfs_opts).map_err(|e| at(e, "tmpfs for", &m.dest))?;
            attach(&tmp, target, &tmpfs_opts, true)
                .map_err(|e| at(e, "attach tmpfs on", &m.dest))?;
            // Group controllers by hierarchy directory.
            let mut groups: Vec<(Vec<String>, PathBuf)> = Vec::new();
            for (ctrl, dir) in dirs {
                match groups.iter_mut().find(|(_, d)| d == dir) {
                    Some((c, _)) => c.push(ctrl.clone()),
                    None => groups.push((vec![ctrl.clone()], dir.clone())),
                }
            }
            for (ctrls, dir) in &groups {
                let name = ctrls.join(",");
                let sub = m.dest.join(&name);
                let t =
                    paths::create_all(root, &sub, Kind::Dir).map_err(|e| at(e, "create", &sub))?;
                let mnt = if plan.cgroupns && !plan.userns {
                    let mut o = sub_opts.clone();
                    o.data = ctrls.clone();
                    new_fs("cgroup", "cgroup", &o)
                } else {
                    bind_tree(rustix::fs::CWD, &dir.to_string_lossy(), false)
                }
                .map_err(|e| at(e, "cgroup hierarchy for", &sub))?;
                attach(&mnt, t.as_fd(), &sub_opts, plan.userns || !plan.cgroupns)
                    .map_err(|e| at(e, "attach", &sub))?;
                if ctrls.len() > 1 {
                    for c in ctrls {
                        let link = m.dest.join(c);
                        let parent =
                            paths::open(root, &m.dest).map_err(|e| at(e, "open", &m.dest))?;
                        rustix::fs::symlinkat(name.as_str(), &parent, c.as_str())
                            .map_err(|e| at(e.into(), "symlink", &link))?;
                    }
                }
            }
            if ro {
                let t = paths::open(root, &m.dest).map_err(|e| at(e, "open", &m.dest))?;
                mount_setattr(
                    t.as_fd(),
                    c"",
                    libc::AT_EMPTY_PATH as u32,
                    attr::RDONLY,
                    0,
                    0,
                )
                .map_err(|e| at(e, "make read-only", &m.dest))?;
            }
            Ok(())
        }
        None => Err(Error::Invalid(format!(
            "a cgroup mount on {} needs the container to have a cgroup",
            m.dest.display()
        ))),
    }
}

/// Creates the device nodes, /dev symlinks and /dev/ptmx.
fn setup_dev(root: BorrowedFd<'_>, plan: &RootfsPlan) -> Result<()> {
    let old = rustix::process::umask(Mode::empty());
    let r = (|| {
        for d in &plan.devices {
            // A mount in the spec at a device's path wins over the device.
            if plan.mounts.iter().any(|m| m.dest == d.path) {
                continue;
            }
            make_device(root, d, plan.userns).map_err(|e| at(e, "create device", &d.path))?;
        }
        let dev = paths::create_all(root, Path::new("/dev"), Kind::Dir)
            .map_err(|e| at(e, "open", Path::new("/dev")))?;
        let mut links = vec![
            ("/proc/self/fd", "fd"),
            ("/proc/self/fd/0", "stdin"),
            ("/proc/self/fd/1", "stdout"),
            ("/proc/self/fd/2", "stderr"),
        ];
        if Path::new("/proc/kcore").exists() {
            links.push(("/proc/kcore", "core"));
        }
        for (target, name) in links {
            match rustix::fs::symlinkat(target, &dev, name) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(at(e.into(), "symlink /dev/", Path::new(name))),
            }
        }
        if plan.devpts
            && !plan
                .devices
                .iter()
                .any(|d| d.path == Path::new("/dev/ptmx"))
        {
            let _ = rustix::fs::unlinkat(&dev, "ptmx", rustix::fs::AtFlags::empty());
            rustix::fs::symlinkat("pts/ptmx", &dev, "ptmx")
                .map_err(|e| at(e.into(), "symlink", Path::new("/dev/ptmx")))?;
        }
        Ok(())
    })();
    rustix::process::umask(old);
    r
}

fn make_device(root: BorrowedFd<'_>, d: &DeviceNode, userns: bool) -> io::Result<()> {
    let parent_path = d.path.parent().unwrap_or(Path::new("/"));
    let name = d
        .path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "device path"))?;
    let parent = paths::create_all(root, parent_path, Kind::Dir)?;
    if userns {
        // mknod is not allowed in a user namespace: bind the host's node.
        let target = paths::create_all(root, &d.path, Kind::File)?;
        let tree = bind_tree(rustix::fs::CWD, &d.path.to_string_lossy(), false)?;
        rustix::mount::move_mount(
            &tree,
            "",
            &target,
            "",
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
        )?;
        return Ok(());
    }
    let kind = match d.kind {
        'b' => rustix::fs::FileType::BlockDevice,
        'p' => rustix::fs::FileType::Fifo,
        _ => rustix::fs::FileType::CharacterDevice,
    };
    let dev = rustix::fs::makedev(d.major as u32, d.minor as u32);
    match rustix::fs::mknodat(&parent, name, kind, Mode::from_raw_mode(d.mode), dev) {
        Ok(()) => {}
        Err(rustix::io::Errno::EXIST) => {
            rustix::fs::unlinkat(&parent, name, rustix::fs::AtFlags::empty())?;
            rustix::fs::mknodat(&parent, name, kind, Mode::from_raw_mode(d.mode), dev)?;
        }
        Err(e) => return Err(e.into()),
    }
    rustix::fs::chownat(
        &parent,
        name,
        Some(rustix::fs::Uid::from_raw(d.uid)),
        Some(rustix::fs::Gid::from_raw(d.gid)),
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}

/// Step 2: makes the rootfs the process's root (pivot_root, or MS_MOVE and
/// chroot with `--no-pivot`), leaving the host's tree unreachable.
pub fn enter(plan: &RootfsPlan, root: &OwnedFd) -> Result<()> {
    if !plan.mountns {
        rustix::process::fchdir(root).ctx(|| "chdir to the rootfs")?;
        rustix::process::chroot(".").ctx(|| "chroot into the rootfs")?;
    } else if plan.no_pivot {
        rustix::process::fchdir(root).ctx(|| "chdir to the rootfs")?;
        rustix::mount::mount_move(".", "/").ctx(|| "move the rootfs to /")?;
        rustix::process::chroot(".").ctx(|| "chroot into the rootfs")?;
    } else {
        let old = rustix::fs::open(
            "/",
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| "open the old root")?;
        rustix::process::fchdir(root).ctx(|| "chdir to the rootfs")?;
        rustix::process::pivot_root(".", ".").ctx(|| "pivot_root into the rootfs")?;
        rustix::process::fchdir(&old).ctx(|| "chdir to the old root")?;
        // Detach the old root without propagating the unmount to the host.
        rustix::mount::mount_change(
            ".",
            MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC,
        )
        .ctx(|| "make the old root a slave")?;
        rustix::mount::unmount(".", UnmountFlags::DETACH).ctx(|| "detach the old root")?;
    }
    rustix::process::chdir("/").ctx(|| "chdir to /")?;
    Ok(())
}

/// Step 3 (after pivot_root): masked paths, read-only paths, the root's
/// propagation and read-only root.
pub fn finish(plan: &RootfsPlan) -> Result<()> {
    let root = rustix::fs::open(
        "/",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open /")?;
    if !plan.masked.is_empty() {
        mask_paths(root.as_fd(), &plan.masked)?;
    }
    for p in &plan.readonly_paths {
        let target = match paths::open(root.as_fd(), p) {
            Ok(t) => t,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(at(e, "open read-only path", p)),
        };
        let tree = bind_tree(target.as_fd(), "", true).map_err(|e| at(e, "open_tree", p))?;
        mount_setattr(
            tree.as_fd(),
            c"",
            libc::AT_EMPTY_PATH as u32 | AT_RECURSIVE,
            attr::RDONLY,
            0,
            0,
        )
        .map_err(|e| at(e, "make read-only", p))?;
        rustix::mount::move_mount(
            &tree,
            "",
            &target,
            "",
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
        )
        .map_err(|e| at(e.into(), "attach read-only", p))?;
    }
    if let (Some((p, rec)), true) = (plan.root_propagation, plan.mountns) {
        let mut flags = match p {
            Propagation::Private => MountPropagationFlags::PRIVATE,
            Propagation::Shared => MountPropagationFlags::SHARED,
            Propagation::Slave => MountPropagationFlags::DOWNSTREAM,
            Propagation::Unbindable => MountPropagationFlags::UNBINDABLE,
        };
        if rec {
            flags |= MountPropagationFlags::REC;
        }
        rustix::mount::mount_change("/", flags).ctx(|| "set the propagation of the rootfs")?;
    }
    if plan.readonly {
        mount_setattr(
            root.as_fd(),
            c"",
            libc::AT_EMPTY_PATH as u32,
            attr::RDONLY,
            0,
            0,
        )
        .ctx(|| "make the rootfs read-only")?;
    }
    Ok(())
}

fn mask_paths(root: BorrowedFd<'_>, masked: &[PathBuf]) -> Result<()> {
    // Files are covered with the container's /dev/null, after checking it
    // really is the null device (CVE-2025-31133).
    let mut null: Option<OwnedFd> = None;
    for p in masked {
        let target = match paths::open(root, p) {
            Ok(t) => t,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(at(e, "open masked path", p)),
        };
        let st = rustix::fs::fstat(&target).map_err(|e| at(e.into(), "stat", p))?;
        let is_dir =
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory;
        let mnt = if is_dir {
            let o = MountOptions {
                attr_set: attr::RDONLY,
                data: vec!["size=0".into()],
                ..Default::default()
            };
            new_fs("tmpfs", "tmpfs", &o).map_err(|e| at(e, "tmpfs to mask", p))?
        } else {
            if null.is_none() {
                let fd = paths::open(root, Path::new("/dev/null"))
                    .map_err(|e| at(e, "open", Path::new("/dev/null")))?;
                let st = rustix::fs::fstat(&fd)
                    .map_err(|e| at(e.into(), "stat", Path::new("/dev/null")))?;
                let chr = rustix::fs::FileType::from_raw_mode(st.st_mode)
                    == rustix::fs::FileType::CharacterDevice;
                if !chr || st.st_rdev != rustix::fs::makedev(1, 3) {
                    return Err(Error::Invalid(format!(
                        "refusing to mask {}: the container's /dev/null is not the null device",
                        p.display()
                    )));
                }
                null = Some(fd);
            }
            bind_tree(null.as_ref().expect("set above").as_fd(), "", false)
                .map_err(|e| at(e, "bind /dev/null for", p))?
        };
        rustix::mount::move_mount(
            &mnt,
            "",
            &target,
            "",
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
        )
        .map_err(|e| at(e.into(), "mask", p))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(dest: &str, fstype: &str) -> MountEntry {
        MountEntry {
            dest: PathBuf::from(dest),
            fstype: fstype.into(),
            source: fstype.into(),
            opts: MountOptions::default(),
            source_is_file: false,
        }
    }

    fn order(mounts: &[(&str, &str)]) -> Vec<usize> {
        let m: Vec<MountEntry> = mounts.iter().map(|(d, t)| entry(d, t)).collect();
        mount_order(&m)
    }

    #[test]
    fn cgroup_mounts_go_last_unless_covered() {
        // docker's order: the cgroup mount moves after /dev/mqueue and /dev/shm
        assert_eq!(
            order(&[
                ("/proc", "proc"),
                ("/dev", "tmpfs"),
                ("/sys", "sysfs"),
                ("/sys/fs/cgroup", "cgroup"),
                ("/dev/mqueue", "mqueue"),
                ("/dev/shm", "tmpfs"),
            ]),
            [0, 1, 2, 4, 5, 3]
        );
        // a mount below the cgroup mount moves with it
        assert_eq!(
            order(&[
                ("/sys/fs/cgroup", "cgroup"),
                ("/sys/fs/cgroup/x", "bind"),
                ("/tmp", "tmpfs"),
            ]),
            [2, 0, 1]
        );
        // a later mount on or above it keeps the spec's order
        assert_eq!(
            order(&[
                ("/sys/fs/cgroup", "cgroup"),
                ("/sys", "sysfs"),
                ("/tmp", "tmpfs"),
            ]),
            [0, 1, 2]
        );
        assert_eq!(
            order(&[
                ("/sys/fs/cgroup", "cgroup"),
                ("/sys/fs/cgroup/x", "bind"),
                ("/sys/fs/cgroup/x", "tmpfs"),
            ]),
            [0, 1, 2]
        );
    }
}
