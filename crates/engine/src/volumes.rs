//! Volumes and mounts with docker's semantics: named volumes of the
//! `local` driver (`<root>/volumes/<name>/_data`, with `meta.json`),
//! anonymous volumes (image `VOLUME`s and `-v /path`), bind mounts and
//! tmpfs mounts, checked and resolved from the typed requests of
//! [`crate::config::Mount`].
//!
//! Volume operations and container creation take `<root>/volumes/.lock`,
//! so a volume cannot be removed while a container that names it is being
//! created by another process.

use std::collections::BTreeMap;
use std::fs;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags};
use serde::{Deserialize, Serialize};

use crate::config::{Mount, MountKind, MountOrigin, Propagation};
use crate::run::{Engine, Error, Result, new_id};

/// The label docker puts on anonymous volumes.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// The schema of a volume's `meta.json` (schema 1 used docker's
/// PascalCase names and is read through the aliases).
pub const VOLUME_SCHEMA: u32 = 2;

/// A named volume, as `<root>/volumes/<name>/meta.json` keeps it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Volume {
    /// Schema version.
    #[serde(alias = "Schema")]
    pub schema: u32,
    /// Name.
    #[serde(alias = "Name")]
    pub name: String,
    /// Always `local`.
    #[serde(alias = "Driver")]
    pub driver: String,
    /// Where its data lives on the host.
    #[serde(alias = "Mountpoint")]
    pub mountpoint: String,
    /// RFC 3339.
    #[serde(alias = "CreatedAt")]
    pub created_at: String,
    /// Labels.
    #[serde(alias = "Labels")]
    pub labels: BTreeMap<String, String>,
    /// The local driver's options (`type`, `o`, `device`).
    #[serde(alias = "Options")]
    pub options: BTreeMap<String, String>,
    /// Always `local`.
    #[serde(alias = "Scope")]
    pub scope: String,
}

impl Volume {
    /// Whether it was made for one container (no name given).
    pub fn anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }
}

/// A mount of a container, resolved: volumes named (anonymous ones too)
/// and their host paths filled in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MountPoint {
    /// What is mounted.
    pub kind: MountKind,
    /// The volume's name (volumes only).
    pub name: String,
    /// The host path (binds and volumes).
    pub source: String,
    /// Path in the container.
    pub destination: String,
    /// The mode text the request gave (reported back as is).
    pub mode: String,
    /// Read-only.
    pub read_only: bool,
    /// Bind propagation (`None`: rprivate).
    pub propagation: Option<Propagation>,
    /// Copy the image's content into an empty volume at first use.
    pub copy_up: bool,
    /// Created for this container only (removed with `rm -v` / `--rm`).
    pub anonymous: bool,
    /// tmpfs mount options (`size=…`, `mode=…`).
    pub tmpfs_options: Vec<String>,
    /// Local driver options for a volume this mount creates.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub volume_options: BTreeMap<String, String>,
    /// Which request field it came from.
    pub origin: MountOrigin,
}

impl MountPoint {
    /// Whether it is the named volume `name`.
    pub fn is_volume(&self, name: &str) -> bool {
        self.kind == MountKind::Volume && self.name == name
    }
}

/// tmpfs options docker accepts.
const TMPFS_OPTIONS: &[&str] = &[
    "size",
    "mode",
    "uid",
    "gid",
    "nr_inodes",
    "nr_blocks",
    "exec",
    "noexec",
    "suid",
    "nosuid",
    "dev",
    "nodev",
    "atime",
    "noatime",
    "relatime",
    "strictatime",
    "nodiratime",
    "diratime",
    "ro",
    "rw",
];

/// Docker's rule for volume names.
pub fn valid_volume_name(name: &str) -> Result<()> {
    let ok = name.len() >= 2
        && name.len() <= 255
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "\"{name}\" includes invalid characters for a local volume name, only \
             \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host \
             directory, use absolute path"
        )))
    }
}

fn check_destination(kind: &str, dst: &str) -> Result<()> {
    if !dst.starts_with('/') {
        return Err(Error::Invalid(format!(
            "invalid mount config for type \"{kind}\": invalid mount path: '{dst}' mount path \
             must be absolute"
        )));
    }
    if Path::new(dst).components().count() <= 1 {
        return Err(Error::Invalid(format!(
            "invalid mount config for type \"{kind}\": invalid specification: destination can't \
             be '/'"
        )));
    }
    Ok(())
}

/// Checks a requested mount and gives its (unresolved) mount point.
pub fn mount_point(m: &Mount) -> Result<MountPoint> {
    let kind = m.kind;
    check_destination(kind.as_str(), &m.target)?;
    let mut p = MountPoint {
        kind,
        destination: clean(&m.target),
        read_only: m.read_only,
        mode: m.mode.clone(),
        origin: m.origin,
        ..Default::default()
    };
    match kind {
        MountKind::Bind => {
            let src = m.source.as_deref().unwrap_or("");
            if src.is_empty() {
                return Err(Error::Invalid(
                    "invalid mount config for type \"bind\": field Source must not be empty".into(),
                ));
            }
            if !src.starts_with('/') {
                return Err(Error::Invalid(format!(
                    "invalid mount config for type \"bind\": invalid mount path: '{src}' mount \
                     path must be absolute"
                )));
            }
            if !m.create_source && !Path::new(src).exists() {
                return Err(Error::Invalid(format!(
                    "invalid mount config for type \"bind\": bind source path does not exist: {src}"
                )));
            }
            p.source = clean(src);
            p.propagation = m.propagation;
        }
        MountKind::Volume => {
            match m.source.as_deref().filter(|s| !s.is_empty()) {
                Some(n) => {
                    valid_volume_name(n)?;
                    p.name = n.to_owned();
                }
                None => p.anonymous = true,
            }
            p.copy_up = !m.no_copy;
            p.volume_options = m.volume_options.clone();
            crate::volume_mount::validate(&p.volume_options)?;
        }
        MountKind::Tmpfs => {
            if m.source.as_deref().is_some_and(|s| !s.is_empty()) {
                return Err(Error::Invalid(
                    "invalid mount config for type \"tmpfs\": field Source must not be specified"
                        .into(),
                ));
            }
            for o in &m.tmpfs_options {
                let key = o.split('=').next().unwrap_or(o);
                if !TMPFS_OPTIONS.contains(&key) {
                    return Err(Error::Invalid(format!(
                        "invalid tmpfs option \"{o}\" for {}",
                        m.target
                    )));
                }
                match key {
                    "ro" => p.read_only = true,
                    "rw" => p.read_only = false,
                    _ => p.tmpfs_options.push(o.clone()),
                }
            }
        }
    }
    Ok(p)
}

/// `/a//b/` → `/a/b`.
fn clean(p: &str) -> String {
    let mut out = String::new();
    for c in p.split('/').filter(|c| !c.is_empty() && *c != ".") {
        out.push('/');
        out.push_str(c);
    }
    if out.is_empty() { "/".into() } else { out }
}

/// The OCI spec mount of `m` (volumes must have their source set).
pub fn spec_mount(m: &MountPoint) -> oci_spec::runtime::Mount {
    let (typ, source, mut opts) = match m.kind {
        MountKind::Tmpfs => {
            let mut opts: Vec<String> = vec!["nosuid".into(), "nodev".into(), "noexec".into()];
            for o in &m.tmpfs_options {
                let key = o.split('=').next().unwrap_or(o);
                // the user's exec/suid/dev win over the defaults
                match key {
                    "exec" => opts.retain(|x| x != "noexec"),
                    "suid" => opts.retain(|x| x != "nosuid"),
                    "dev" => opts.retain(|x| x != "nodev"),
                    _ => {}
                }
                opts.push(o.clone());
            }
            ("tmpfs", "tmpfs".to_owned(), opts)
        }
        MountKind::Bind | MountKind::Volume => (
            "bind",
            m.source.clone(),
            vec![
                "rbind".to_owned(),
                m.propagation.unwrap_or_default().as_str().to_owned(),
            ],
        ),
    };
    if m.read_only {
        opts.push("ro".into());
    }
    let mut out = oci_spec::runtime::Mount::default();
    out.set_destination(PathBuf::from(&m.destination))
        .set_typ(Some(typ.to_owned()))
        .set_source(Some(PathBuf::from(source)))
        .set_options(Some(opts));
    out
}

/// Takes the volumes lock of the root at `root` (for processes without an
/// `Engine`, such as monitors).
pub(crate) fn lock_at(root: &Path) -> Result<fs::File> {
    let dir = root.join("volumes");
    fs::create_dir_all(&dir).map_err(|e| Error::Io(format!("create {}", dir.display()), e))?;
    fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .map_err(|e| Error::Io(format!("chmod {}", dir.display()), e))?;
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".lock"))
        .map_err(|e| Error::Io("open the volumes lock".into(), e))?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| Error::Io("lock the volumes".into(), e.into()))?;
    Ok(f)
}

impl Engine {
    fn volumes_dir(&self) -> PathBuf {
        self.root.join("volumes")
    }

    /// Takes the volumes lock (held while volumes are created, removed or
    /// claimed by a new container).
    pub(crate) fn volumes_lock(&self) -> Result<fs::File> {
        lock_at(&self.root)
    }

    /// A volume by name.
    pub fn volume(&self, name: &str) -> Result<Volume> {
        if valid_volume_name(name).is_err() {
            return Err(Error::NotFound(format!("get {name}: no such volume")));
        }
        let p = self.volumes_dir().join(name).join("meta.json");
        match fs::read(&p) {
            Ok(b) => {
                let v: Volume = serde_json::from_slice(&b).map_err(|e| {
                    Error::Internal(format!("volume {name}: broken meta.json: {e}"))
                })?;
                if v.schema > VOLUME_SCHEMA {
                    return Err(Error::Internal(format!(
                        "volume {name}: meta.json schema {} is newer than this berth ({VOLUME_SCHEMA})",
                        v.schema
                    )));
                }
                Ok(v)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(Error::NotFound(format!("get {name}: no such volume")))
            }
            Err(e) => Err(Error::Io(format!("read {}", p.display()), e)),
        }
    }

    /// Every volume, by name.
    pub fn volumes(&self) -> Vec<Volume> {
        let mut v: Vec<Volume> = fs::read_dir(self.volumes_dir())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| self.volume(&e.file_name().to_string_lossy()).ok())
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// `docker volume create`: creating an existing volume returns it
    /// (docker does the same).
    pub fn create_volume(
        &self,
        name: Option<&str>,
        driver: &str,
        options: &BTreeMap<String, String>,
        labels: &BTreeMap<String, String>,
    ) -> Result<Volume> {
        if !matches!(driver, "" | "local") {
            return Err(Error::NotFound(format!(
                "error looking up volume plugin {driver}: plugin \"{driver}\" not found"
            )));
        }
        crate::volume_mount::validate(options)?;
        let _l = self.volumes_lock()?;
        self.create_volume_locked(name, labels, options)
    }

    pub(crate) fn create_volume_locked(
        &self,
        name: Option<&str>,
        labels: &BTreeMap<String, String>,
        options: &BTreeMap<String, String>,
    ) -> Result<Volume> {
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                valid_volume_name(n)?;
                if let Ok(v) = self.volume(n) {
                    // docker reports every create, of a volume that exists too
                    create_event(&self.root, n);
                    return Ok(v);
                }
                n.to_owned()
            }
            None => new_id()?,
        };
        let dir = self.volumes_dir().join(&name);
        let tmp = self.volumes_dir().join(format!(".new-{name}"));
        let _ = berth_image::unpack::remove_tree(&tmp);
        let data = tmp.join("_data");
        fs::create_dir_all(&data)
            .map_err(|e| Error::Io(format!("create {}", data.display()), e))?;
        fs::set_permissions(&data, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .map_err(|e| Error::Io("chmod _data".into(), e))?;
        let v = Volume {
            schema: VOLUME_SCHEMA,
            name: name.clone(),
            driver: "local".into(),
            mountpoint: dir.join("_data").display().to_string(),
            created_at: berth_runtime::state::now_rfc3339(),
            labels: labels.clone(),
            options: options.clone(),
            scope: "local".into(),
        };
        let meta = serde_json::to_vec_pretty(&v).map_err(|e| Error::Internal(e.to_string()))?;
        fs::write(tmp.join("meta.json"), meta)
            .map_err(|e| Error::Io("write the volume's meta.json".into(), e))?;
        fs::rename(&tmp, &dir).map_err(|e| Error::Io(format!("create volume {name}"), e))?;
        create_event(&self.root, &name);
        Ok(v)
    }

    /// Containers (ids) whose mounts name the volume.
    pub fn volume_users(&self, name: &str) -> Vec<String> {
        self.store
            .ids()
            .into_iter()
            .filter(|id| {
                self.store
                    .record(id)
                    .map(|r| r.mounts.iter().any(|m| m.is_volume(name)))
                    .unwrap_or(false)
            })
            .collect()
    }

    /// `docker volume rm`: refused while a container uses it (even with
    /// `force`, as docker does).
    pub fn remove_volume(&self, name: &str, force: bool) -> Result<()> {
        let _l = self.volumes_lock()?;
        self.remove_volume_locked(name, force)
    }

    fn remove_volume_locked(&self, name: &str, force: bool) -> Result<()> {
        match self.volume(name) {
            Ok(_) => {}
            Err(Error::NotFound(_)) if force => return Ok(()),
            Err(e) => return Err(e),
        }
        let users = self.volume_users(name);
        if !users.is_empty() {
            return Err(Error::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        let dir = self.volumes_dir().join(name);
        // a driver-mounted volume nobody uses: its mount goes first, and
        // the tree is never removed through a mount that stayed
        if crate::volume_mount::in_use(&self.root, name) {
            return Err(Error::Conflict(format!(
                "remove {name}: volume is in use (mounted for a container being created or run)"
            )));
        }
        crate::volume_mount::unmount(&self.root, name);
        if crate::volume_mount::has_mounts(&dir) {
            return Err(Error::Conflict(format!(
                "remove {name}: its mount at {}/_data could not be taken away",
                dir.display()
            )));
        }
        let gone = self.volumes_dir().join(format!(".rm-{name}"));
        fs::rename(&dir, &gone).map_err(|e| Error::Io(format!("remove volume {name}"), e))?;
        berth_image::unpack::remove_tree(&gone)
            .map_err(|e| Error::Io(format!("remove volume {name}"), e))?;
        crate::events::emit(
            &self.root,
            "volume",
            "destroy",
            name,
            BTreeMap::from([("driver".to_owned(), "local".to_owned())]),
        );
        Ok(())
    }

    /// Names of the volumes containers name (running or not).
    fn volumes_in_use(&self) -> std::collections::BTreeSet<String> {
        self.list()
            .iter()
            .flat_map(|c| {
                c.record
                    .mounts
                    .iter()
                    .filter(|m| m.kind == MountKind::Volume)
                    .map(|m| m.name.clone())
            })
            .collect()
    }

    /// Volumes that pass docker's `volume ls` filters.
    pub fn volumes_filtered(&self, f: &crate::filter::Filters) -> Result<Vec<Volume>> {
        f.check(&["dangling", "name", "label", "label!", "driver"])?;
        let dangling = f.boolean("dangling")?;
        let used = if dangling.is_some() {
            self.volumes_in_use()
        } else {
            Default::default()
        };
        Ok(self
            .volumes()
            .into_iter()
            .filter(|v| {
                f.any("name", |x| v.name.contains(x))
                    && f.any("driver", |x| v.driver == x)
                    && f.labels(&v.labels)
                    && dangling.is_none_or(|d| d != used.contains(&v.name))
            })
            .collect())
    }

    /// `docker volume prune`: unused anonymous volumes (every unused
    /// volume with `all`), filtered by `label`/`label!`. Returns names and
    /// bytes.
    pub fn prune_volumes(
        &self,
        f: &crate::filter::Filters,
        all: bool,
    ) -> Result<(Vec<String>, u64)> {
        f.check(&["label", "label!", "all"])?;
        let _l = self.volumes_lock()?;
        let used = self.volumes_in_use();
        let mut removed = Vec::new();
        let mut bytes = 0;
        for v in self.volumes() {
            if (!all && !v.anonymous()) || !f.labels(&v.labels) || used.contains(&v.name) {
                continue;
            }
            let size = crate::system::dir_size(Path::new(&v.mountpoint));
            if self.remove_volume_locked(&v.name, false).is_ok() {
                bytes += size;
                removed.push(v.name);
            }
        }
        // docker's event of a prune, whatever it removed
        crate::events::emit(
            &self.root,
            "volume",
            "prune",
            "",
            BTreeMap::from([("reclaimed".to_owned(), bytes.to_string())]),
        );
        Ok((removed, bytes))
    }

    /// Resolves a new container's mounts: names anonymous volumes, creates
    /// missing named ones, fills in sources, adds the image's `VOLUME`s
    /// that nothing else covers, refuses duplicate destinations. Call with
    /// the volumes lock held.
    pub(crate) fn resolve_mounts(
        &self,
        mut mounts: Vec<MountPoint>,
        image_volumes: &[String],
    ) -> Result<Vec<MountPoint>> {
        let mut seen = std::collections::BTreeSet::new();
        for m in &mounts {
            if !seen.insert(m.destination.clone()) {
                return Err(Error::Invalid(format!(
                    "Duplicate mount point: {}",
                    m.destination
                )));
            }
        }
        for v in image_volumes {
            let d = clean(v);
            if d != "/" && !seen.contains(&d) {
                seen.insert(d.clone());
                mounts.push(MountPoint {
                    kind: MountKind::Volume,
                    destination: d,
                    copy_up: true,
                    anonymous: true,
                    origin: MountOrigin::Image,
                    ..Default::default()
                });
            }
        }
        for m in &mut mounts {
            match m.kind {
                MountKind::Volume => {
                    let labels = if m.anonymous {
                        BTreeMap::from([(ANONYMOUS_LABEL.to_owned(), String::new())])
                    } else {
                        BTreeMap::new()
                    };
                    let v = self.create_volume_locked(
                        Some(m.name.as_str()).filter(|n| !n.is_empty()),
                        &labels,
                        &m.volume_options,
                    )?;
                    m.name = v.name;
                    m.source = v.mountpoint;
                }
                // docker's -v makes a missing host directory
                MountKind::Bind if !Path::new(&m.source).exists() => {
                    fs::create_dir_all(&m.source).map_err(|e| {
                        Error::Io(format!("create the bind source {}", m.source), e)
                    })?;
                }
                _ => {}
            }
        }
        Ok(mounts)
    }

    /// Removes the anonymous volumes of a removed container (`rm -v`,
    /// `--rm`).
    pub fn remove_anonymous_volumes(&self, mounts: &[MountPoint]) {
        let Ok(_l) = self.volumes_lock() else {
            return;
        };
        for m in mounts
            .iter()
            .filter(|m| m.kind == MountKind::Volume && m.anonymous)
        {
            if let Err(e) = self.remove_volume_locked(&m.name, true) {
                tracing::warn!("remove anonymous volume {}: {e}", m.name);
            }
        }
    }
}

/// docker's `volume create` event.
fn create_event(root: &Path, name: &str) {
    crate::events::emit(
        root,
        "volume",
        "create",
        name,
        BTreeMap::from([("driver".to_owned(), "local".to_owned())]),
    );
}

/// Removes the anonymous volumes of `mounts` under `root` (for processes
/// that have no `Engine`, such as the monitor of a `--rm` container).
pub fn remove_anonymous_at(root: &Path, mounts: &[MountPoint]) {
    if !mounts
        .iter()
        .any(|m| m.kind == MountKind::Volume && m.anonymous)
    {
        return;
    }
    if let Ok(e) = Engine::open(root) {
        e.remove_anonymous_volumes(mounts);
    }
}

/// Whether a directory is empty (a volume that never got content).
pub fn is_empty_dir(p: &Path) -> bool {
    fs::read_dir(p)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false)
}

/// Copies the tree under the directory `src` into the directory `dst`
/// (docker's copy-up of image content into a new volume): modes,
/// owners, symlinks as links, regular files, directories; device nodes,
/// sockets and fifos are skipped. Nothing is followed: every step opens
/// relative to its parent with `O_NOFOLLOW`.
pub fn copy_tree(src: BorrowedFd<'_>, dst: BorrowedFd<'_>) -> std::io::Result<()> {
    copy_dir(src, dst, 0)
}

fn copy_dir(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, depth: u32) -> std::io::Result<()> {
    if depth > 256 {
        return Err(std::io::Error::other("directory tree too deep"));
    }
    let dir_fd = rustix::fs::openat(
        src,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut dir = rustix::fs::Dir::read_from(&dir_fd)?;
    for entry in dir.by_ref() {
        let entry = entry?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let st = rustix::fs::statat(src, name, AtFlags::SYMLINK_NOFOLLOW)?;
        let mode = Mode::from_raw_mode(st.st_mode & 0o7777);
        let ft = rustix::fs::FileType::from_raw_mode(st.st_mode);
        match ft {
            rustix::fs::FileType::Directory => {
                match rustix::fs::mkdirat(dst, name, Mode::from_raw_mode(0o700)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                let s: OwnedFd = rustix::fs::openat(
                    src,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let d: OwnedFd = rustix::fs::openat(
                    dst,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                copy_dir(s.as_fd(), d.as_fd(), depth + 1)?;
                set_owner_mode(&d, st.st_uid, st.st_gid, mode)?;
            }
            rustix::fs::FileType::RegularFile => {
                let s = rustix::fs::openat(
                    src,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let d = rustix::fs::openat(
                    dst,
                    name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )?;
                let mut sf = fs::File::from(s);
                let mut df = fs::File::from(d);
                std::io::copy(&mut sf, &mut df)?;
                set_owner_mode(&df, st.st_uid, st.st_gid, mode)?;
            }
            rustix::fs::FileType::Symlink => {
                let target = rustix::fs::readlinkat(src, name, Vec::new())?;
                rustix::fs::symlinkat(target.as_c_str(), dst, name)?;
                let _ = rustix::fs::chownat(
                    dst,
                    name,
                    Some(rustix::fs::Uid::from_raw(st.st_uid)),
                    Some(rustix::fs::Gid::from_raw(st.st_gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                );
            }
            _ => {}
        }
    }
    Ok(())
}

fn set_owner_mode(fd: &impl AsFd, uid: u32, gid: u32, mode: Mode) -> std::io::Result<()> {
    rustix::fs::fchown(
        fd,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
    )?;
    // after chown, which clears set-id bits
    rustix::fs::fchmod(fd, mode)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_tree_copies_modes_and_links_without_following() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        fs::create_dir_all(src.path().join("a/b")).unwrap();
        fs::write(src.path().join("a/b/f"), "x").unwrap();
        fs::set_permissions(
            src.path().join("a/b/f"),
            std::os::unix::fs::PermissionsExt::from_mode(0o640),
        )
        .unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.path().join("a/link")).unwrap();
        let s = fs::File::open(src.path()).unwrap();
        let d = fs::File::open(dst.path()).unwrap();
        copy_tree(s.as_fd(), d.as_fd()).unwrap();
        assert_eq!(fs::read_to_string(dst.path().join("a/b/f")).unwrap(), "x");
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dst.path().join("a/b/f"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640);
        assert_eq!(
            fs::read_link(dst.path().join("a/link")).unwrap(),
            Path::new("/etc/passwd")
        );
    }
}
