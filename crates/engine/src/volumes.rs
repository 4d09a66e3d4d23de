//! Volumes and mounts with docker's semantics: named volumes of the
//! `local` driver (`<root>/volumes/<name>/_data`, with `meta.json`),
//! anonymous volumes (image `VOLUME`s and `-v /path`), bind mounts and
//! tmpfs mounts, parsed from `-v`, `--mount` and `--tmpfs` the way docker
//! parses them.
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

use crate::run::{Engine, Error, Result, new_id};

/// The label docker puts on anonymous volumes.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// A named volume (`docker volume inspect`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Volume {
    /// Name.
    pub name: String,
    /// Always `local`.
    pub driver: String,
    /// Where its data lives on the host.
    pub mountpoint: String,
    /// RFC 3339.
    pub created_at: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Driver options (none are supported yet by the local driver).
    pub options: BTreeMap<String, String>,
    /// Always `local`.
    pub scope: String,
}

impl Volume {
    /// Whether it was made for one container (no name given).
    pub fn anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }
}

/// A mount of a container (`Mounts` in docker's inspect, plus what the
/// engine needs to set it up).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct MountPoint {
    /// `bind`, `volume` or `tmpfs`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// The volume's name (volumes only).
    pub name: String,
    /// The host path (binds and volumes).
    pub source: String,
    /// Path in the container.
    pub destination: String,
    /// Mode as the user wrote it (`ro`, `z`, …).
    pub mode: String,
    /// Writable.
    #[serde(rename = "RW")]
    pub rw: bool,
    /// Bind propagation (`rprivate` unless asked).
    pub propagation: String,
    /// Copy the image's content into an empty volume at first use.
    pub copy_up: bool,
    /// Created for this container only (removed with `rm -v` / `--rm`).
    pub anonymous: bool,
    /// tmpfs mount options (`size=…`, `mode=…`).
    pub tmpfs_options: Vec<String>,
    /// Local driver options for a volume this mount creates
    /// (`--mount …,volume-opt=type=tmpfs`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub volume_options: BTreeMap<String, String>,
}

/// `--mount` / `HostConfig.Mounts[]` as the API sends it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct MountRequest {
    /// `bind`, `volume`, `tmpfs`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// Host path or volume name.
    pub source: String,
    /// Path in the container.
    pub target: String,
    /// Read only.
    pub read_only: bool,
    /// Bind options.
    pub bind_options: Option<BindOptions>,
    /// Volume options.
    pub volume_options: Option<VolumeOptions>,
    /// tmpfs options.
    pub tmpfs_options: Option<TmpfsOptions>,
}

/// `BindOptions` of a mount request.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct BindOptions {
    /// Propagation.
    pub propagation: String,
    /// Create the source when missing.
    pub create_mountpoint: bool,
}

/// `VolumeOptions` of a mount request.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct VolumeOptions {
    /// Do not copy the image's content into the volume.
    pub no_copy: bool,
    /// Labels for a volume created by this mount.
    pub labels: BTreeMap<String, String>,
    /// Another driver (refused: not supported yet).
    pub driver_config: Option<serde_json::Value>,
}

/// `TmpfsOptions` of a mount request.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct TmpfsOptions {
    /// Size in bytes (0: the kernel's default).
    pub size_bytes: i64,
    /// Mode (octal bits).
    pub mode: u32,
}

const PROPAGATIONS: &[&str] = &[
    "shared", "rshared", "slave", "rslave", "private", "rprivate",
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

/// Parses one `-v` / `HostConfig.Binds` entry: `[SRC:]DST[:MODE]`.
pub fn parse_bind(spec: &str) -> Result<MountPoint> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [d] => ("", *d, ""),
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => {
            return Err(Error::Invalid(format!(
                "invalid volume specification: '{spec}'"
            )));
        }
    };
    if dst.is_empty() {
        return Err(Error::Invalid(format!(
            "invalid volume specification: '{spec}'"
        )));
    }
    let mut m = MountPoint {
        destination: clean(dst),
        mode: mode.to_owned(),
        rw: true,
        propagation: "rprivate".into(),
        copy_up: true,
        ..Default::default()
    };
    for o in mode.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => m.rw = false,
            "rw" => m.rw = true,
            "z" | "Z" => {}
            "nocopy" => m.copy_up = false,
            p if PROPAGATIONS.contains(&p) => m.propagation = p.to_owned(),
            _ => return Err(Error::Invalid(format!("invalid mode: {mode}"))),
        }
    }
    if src.is_empty() {
        m.kind = "volume".into();
        m.anonymous = true;
    } else if src.starts_with('/') {
        m.kind = "bind".into();
        m.source = clean(src);
        m.copy_up = false;
    } else {
        valid_volume_name(src)?;
        m.kind = "volume".into();
        m.name = src.to_owned();
    }
    check_destination(&m.kind, dst)?;
    if m.kind == "volume" {
        m.propagation.clear();
    }
    Ok(m)
}

/// A `--mount` / `HostConfig.Mounts` entry.
pub fn from_request(r: &MountRequest) -> Result<MountPoint> {
    let kind = r.kind.as_str();
    if r.target.is_empty() {
        return Err(Error::Invalid(format!(
            "invalid mount config for type \"{kind}\": field Target must not be empty"
        )));
    }
    let mut m = MountPoint {
        kind: kind.to_owned(),
        destination: clean(&r.target),
        rw: !r.read_only,
        mode: if r.read_only {
            "ro".into()
        } else {
            String::new()
        },
        ..Default::default()
    };
    match kind {
        "bind" => {
            if r.source.is_empty() {
                return Err(Error::Invalid(
                    "invalid mount config for type \"bind\": field Source must not be empty".into(),
                ));
            }
            if !r.source.starts_with('/') {
                return Err(Error::Invalid(format!(
                    "invalid mount config for type \"bind\": invalid mount path: '{}' mount \
                     path must be absolute",
                    r.source
                )));
            }
            let b = r.bind_options.clone().unwrap_or_default();
            if !Path::new(&r.source).exists() && !b.create_mountpoint {
                return Err(Error::Invalid(format!(
                    "invalid mount config for type \"bind\": bind source path does not exist: {}",
                    r.source
                )));
            }
            m.source = clean(&r.source);
            m.propagation = if b.propagation.is_empty() {
                "rprivate".into()
            } else if PROPAGATIONS.contains(&b.propagation.as_str()) {
                b.propagation.clone()
            } else {
                return Err(Error::Invalid(format!(
                    "invalid propagation mode: {}",
                    b.propagation
                )));
            };
        }
        "volume" => {
            let v = r.volume_options.clone().unwrap_or_default();
            if v.driver_config.as_ref().is_some_and(|d| {
                d.get("Name")
                    .and_then(|n| n.as_str())
                    .is_some_and(|n| !n.is_empty() && n != "local")
            }) {
                return Err(Error::Invalid(
                    "not supported yet: volume drivers other than local".into(),
                ));
            }
            if r.source.is_empty() {
                m.anonymous = true;
            } else {
                valid_volume_name(&r.source)?;
                m.name = r.source.clone();
            }
            m.copy_up = !v.no_copy;
            m.volume_options = v
                .driver_config
                .as_ref()
                .and_then(|d| d.get("Options"))
                .and_then(|o| o.as_object())
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            crate::volume_mount::validate(&m.volume_options)?;
        }
        "tmpfs" => {
            if !r.source.is_empty() {
                return Err(Error::Invalid(
                    "invalid mount config for type \"tmpfs\": field Source must not be specified"
                        .into(),
                ));
            }
            let t = r.tmpfs_options.clone().unwrap_or_default();
            if t.size_bytes < 0 {
                return Err(Error::Invalid("invalid tmpfs size: negative".into()));
            }
            if t.size_bytes > 0 {
                m.tmpfs_options.push(format!("size={}", t.size_bytes));
            }
            if t.mode != 0 {
                m.tmpfs_options.push(format!("mode={:o}", t.mode & 0o7777));
            }
        }
        "" => {
            return Err(Error::Invalid(
                "invalid mount config: mount type must be given (bind, volume or tmpfs)".into(),
            ));
        }
        "npipe" | "cluster" | "image" => {
            return Err(Error::Invalid(format!(
                "not supported yet: mount type {kind:?}"
            )));
        }
        other => {
            return Err(Error::Invalid(format!(
                "invalid mount config for type \"{other}\": mount type unknown"
            )));
        }
    }
    check_destination(kind, &r.target)?;
    Ok(m)
}

/// A `--tmpfs PATH[:OPTIONS]` / `HostConfig.Tmpfs` entry.
pub fn parse_tmpfs(path: &str, options: &str) -> Result<MountPoint> {
    check_destination("tmpfs", path)?;
    let mut m = MountPoint {
        kind: "tmpfs".into(),
        destination: clean(path),
        rw: true,
        ..Default::default()
    };
    for o in options.split(',').filter(|o| !o.is_empty()) {
        let key = o.split('=').next().unwrap_or(o);
        match key {
            "ro" => m.rw = false,
            "rw" => m.rw = true,
            "size" | "mode" | "uid" | "gid" | "nr_inodes" | "nr_blocks" | "exec" | "noexec"
            | "suid" | "nosuid" | "dev" | "nodev" | "atime" | "noatime" | "relatime"
            | "strictatime" | "nodiratime" | "diratime" => m.tmpfs_options.push(o.to_owned()),
            _ => {
                return Err(Error::Invalid(format!(
                    "invalid tmpfs option \"{o}\" for {path}"
                )));
            }
        }
    }
    Ok(m)
}

/// Parses a `--mount` flag (`type=bind,source=/a,target=/b,readonly`) the
/// way the docker CLI does before it sends `HostConfig.Mounts`.
pub fn parse_mount_flag(s: &str) -> Result<MountRequest> {
    let mut r = MountRequest {
        kind: "volume".into(),
        ..Default::default()
    };
    let truth = |k: &str, v: Option<&str>| -> Result<bool> {
        match v.map(str::to_ascii_lowercase).as_deref() {
            None | Some("true") | Some("1") => Ok(true),
            Some("false") | Some("0") => Ok(false),
            Some(o) => Err(Error::Invalid(format!("invalid value for {k}: {o}"))),
        }
    };
    for field in s.split(',').filter(|f| !f.is_empty()) {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let need = |v: Option<&str>| -> Result<String> {
            v.map(str::to_owned).ok_or_else(|| {
                Error::Invalid(format!("invalid field '{field}' must be a key=value pair"))
            })
        };
        match k.as_str() {
            "type" => r.kind = need(v)?,
            "source" | "src" => r.source = need(v)?,
            "target" | "destination" | "dst" => r.target = need(v)?,
            "readonly" | "ro" => r.read_only = truth(&k, v)?,
            "bind-propagation" => {
                r.bind_options
                    .get_or_insert_with(Default::default)
                    .propagation = need(v)?
            }
            "bind-create-mountpoint" => {
                r.bind_options
                    .get_or_insert_with(Default::default)
                    .create_mountpoint = truth(&k, v)?
            }
            "volume-nocopy" => {
                r.volume_options
                    .get_or_insert_with(Default::default)
                    .no_copy = truth(&k, v)?
            }
            "volume-label" => {
                let kv = need(v)?;
                let (lk, lv) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
                r.volume_options
                    .get_or_insert_with(Default::default)
                    .labels
                    .insert(lk.to_owned(), lv.to_owned());
            }
            "volume-driver" => {
                let d = need(v)?;
                let dc = r
                    .volume_options
                    .get_or_insert_with(Default::default)
                    .driver_config
                    .get_or_insert_with(|| serde_json::json!({}));
                dc["Name"] = d.into();
            }
            "volume-opt" => {
                let kv = need(v)?;
                let (ok, ov) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
                let dc = r
                    .volume_options
                    .get_or_insert_with(Default::default)
                    .driver_config
                    .get_or_insert_with(|| serde_json::json!({}));
                dc["Options"][ok] = ov.into();
            }
            "tmpfs-size" => {
                let v = need(v)?;
                let n = crate::container::parse_size(&v)
                    .ok_or_else(|| Error::Invalid(format!("invalid value for tmpfs-size: {v}")))?;
                r.tmpfs_options
                    .get_or_insert_with(Default::default)
                    .size_bytes = n as i64;
            }
            "tmpfs-mode" => {
                let v = need(v)?;
                let n = u32::from_str_radix(&v, 8)
                    .map_err(|_| Error::Invalid(format!("invalid value for tmpfs-mode: {v}")))?;
                r.tmpfs_options.get_or_insert_with(Default::default).mode = n;
            }
            "consistency" | "bind-nonrecursive" => {}
            _ => return Err(Error::Invalid(format!("unexpected key '{k}' in '{field}'"))),
        }
    }
    Ok(r)
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
pub fn spec_mount(m: &MountPoint) -> serde_json::Value {
    match m.kind.as_str() {
        "tmpfs" => {
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
            if !m.rw {
                opts.push("ro".into());
            }
            serde_json::json!({"destination": m.destination, "type": "tmpfs", "source": "tmpfs",
                "options": opts})
        }
        _ => {
            let mut opts = vec!["rbind".to_owned()];
            opts.push(if m.propagation.is_empty() {
                "rprivate".into()
            } else {
                m.propagation.clone()
            });
            if !m.rw {
                opts.push("ro".into());
            }
            serde_json::json!({"destination": m.destination, "type": "bind", "source": m.source,
                "options": opts})
        }
    }
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
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| Error::Invalid(format!("volume {name}: broken meta.json: {e}"))),
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
            name: name.clone(),
            driver: "local".into(),
            mountpoint: dir.join("_data").display().to_string(),
            created_at: berth_runtime::state::now_rfc3339(),
            labels: labels.clone(),
            options: options.clone(),
            scope: "local".into(),
        };
        let meta = serde_json::to_vec_pretty(&v).map_err(|e| Error::Invalid(e.to_string()))?;
        fs::write(tmp.join("meta.json"), meta)
            .map_err(|e| Error::Io("write the volume's meta.json".into(), e))?;
        fs::rename(&tmp, &dir).map_err(|e| Error::Io(format!("create volume {name}"), e))?;
        crate::events::emit(
            &self.root,
            "volume",
            "create",
            &name,
            BTreeMap::from([("driver".to_owned(), "local".to_owned())]),
        );
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
                    .map(|r| {
                        r.mounts
                            .iter()
                            .any(|m| m.kind == "volume" && m.name == name)
                    })
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

    /// `docker volume prune`: unused anonymous volumes (every unused
    /// volume with `all`), filtered by `label=…`. Returns names and bytes.
    pub fn prune_volumes(&self, all: bool, labels: &[String]) -> Result<(Vec<String>, u64)> {
        let _l = self.volumes_lock()?;
        let mut removed = Vec::new();
        let mut bytes = 0;
        for v in self.volumes() {
            if !all && !v.anonymous() {
                continue;
            }
            if !labels.iter().all(|f| label_matches(&v.labels, f)) {
                continue;
            }
            if !self.volume_users(&v.name).is_empty() {
                continue;
            }
            let size = crate::system::dir_size(Path::new(&v.mountpoint));
            if self.remove_volume_locked(&v.name, false).is_ok() {
                bytes += size;
                removed.push(v.name);
            }
        }
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
                    kind: "volume".into(),
                    destination: d,
                    rw: true,
                    copy_up: true,
                    anonymous: true,
                    ..Default::default()
                });
            }
        }
        for m in &mut mounts {
            match m.kind.as_str() {
                "volume" => {
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
                "bind" if !Path::new(&m.source).exists() => {
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
        for m in mounts.iter().filter(|m| m.kind == "volume" && m.anonymous) {
            if let Err(e) = self.remove_volume_locked(&m.name, true) {
                tracing::warn!("remove anonymous volume {}: {e}", m.name);
            }
        }
    }
}

/// Removes the anonymous volumes of `mounts` under `root` (for processes
/// that have no `Engine`, such as the monitor of a `--rm` container).
pub fn remove_anonymous_at(root: &Path, mounts: &[MountPoint]) {
    if !mounts.iter().any(|m| m.kind == "volume" && m.anonymous) {
        return;
    }
    if let Ok(e) = Engine::open(root) {
        e.remove_anonymous_volumes(mounts);
    }
}

/// `label=KEY` or `label=KEY=VALUE` (the `label=` already stripped).
pub fn label_matches(labels: &BTreeMap<String, String>, filter: &str) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(filter),
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
    fn binds_parse_like_docker() {
        let m = parse_bind("/host/dir:/data:ro").unwrap();
        assert_eq!(
            (
                m.kind.as_str(),
                m.source.as_str(),
                m.destination.as_str(),
                m.rw
            ),
            ("bind", "/host/dir", "/data", false)
        );
        let m = parse_bind("myvol:/data").unwrap();
        assert_eq!(
            (m.kind.as_str(), m.name.as_str(), m.rw),
            ("volume", "myvol", true)
        );
        let m = parse_bind("/anon").unwrap();
        assert!(m.anonymous && m.kind == "volume" && m.name.is_empty());
        let m = parse_bind("v1:/x:nocopy,ro").unwrap();
        assert!(!m.copy_up && !m.rw);
        assert!(
            parse_bind("rel/path:/x")
                .unwrap_err()
                .to_string()
                .contains("invalid characters for a local volume name")
        );
        assert!(
            parse_bind("/h:relative")
                .unwrap_err()
                .to_string()
                .contains("must be absolute")
        );
        assert!(
            parse_bind("/h:/")
                .unwrap_err()
                .to_string()
                .contains("can't be '/'")
        );
        assert!(
            parse_bind("/h:/x:bogus")
                .unwrap_err()
                .to_string()
                .contains("invalid mode")
        );
        assert!(parse_bind("a:b:c:d").is_err());
        assert_eq!(parse_bind("/h//x/:/y/./z/").unwrap().destination, "/y/z");
    }

    #[test]
    fn mount_requests_and_tmpfs() {
        let r: MountRequest = serde_json::from_str(
            r#"{"Type":"tmpfs","Target":"/t","TmpfsOptions":{"SizeBytes":1048576,"Mode":1023}}"#,
        )
        .unwrap();
        let m = from_request(&r).unwrap();
        assert_eq!(m.tmpfs_options, ["size=1048576", "mode=1777"]);
        let r: MountRequest = serde_json::from_str(
            r#"{"Type":"bind","Source":"/definitely/not/here","Target":"/x"}"#,
        )
        .unwrap();
        assert!(
            from_request(&r)
                .unwrap_err()
                .to_string()
                .contains("bind source path does not exist")
        );
        let r: MountRequest =
            serde_json::from_str(r#"{"Type":"volume","Target":"/x","ReadOnly":true}"#).unwrap();
        let m = from_request(&r).unwrap();
        assert!(m.anonymous && !m.rw);
        let r = parse_mount_flag("type=bind,src=/tmp,dst=/x,readonly").unwrap();
        let m = from_request(&r).unwrap();
        assert_eq!(
            (m.kind.as_str(), m.source.as_str(), m.rw),
            ("bind", "/tmp", false)
        );
        assert!(parse_mount_flag("type=bind,bogus=1").is_err());
        let m = parse_tmpfs("/run", "size=64m,exec").unwrap();
        let s = spec_mount(&m);
        let opts: Vec<&str> = s["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(
            opts.contains(&"size=64m") && !opts.contains(&"noexec") && opts.contains(&"nosuid")
        );
        assert!(parse_tmpfs("/run", "evil").is_err());
        assert!(parse_tmpfs("run", "").is_err());
    }

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
