//! A pod's volumes on the node: made under
//! `<root>/kubelet/pods/<uid>/volumes/<name>` before its containers start,
//! bound into them, and removed with the pod.
//!
//! ConfigMap, Secret, downward API and projected volumes are written as the
//! kubelet writes them: the files go into a fresh timestamped directory,
//! `..data` is switched to it with one rename, and each visible name is a
//! link through `..data` — a container never sees half an update.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::{KeyToPath, Pod, Volume};

use crate::env::{self, NodeAllocatable, Sources};

/// Why a volume could not be set up (the `FailedMount` event's text).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("MountVolume.SetUp failed for volume \"{volume}\" : {message}")]
pub struct MountError {
    /// The volume.
    pub volume: String,
    /// What went wrong.
    pub message: String,
}

/// A volume ready on the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ready {
    /// Where it is.
    pub path: PathBuf,
    /// Mounted read-only whatever the container asks (Secrets, ConfigMaps…).
    pub read_only: bool,
}

/// What the pod's PersistentVolumeClaims resolved to: claim name → the
/// host path of its bound volume (`None`: not bound yet).
pub type Claims = BTreeMap<String, Option<PathBuf>>;

/// The directory of a pod's volumes.
pub fn pod_dir(root: &Path, uid: &str) -> PathBuf {
    root.join("kubelet").join("pods").join(uid)
}

fn err(volume: &str, message: impl Into<String>) -> MountError {
    MountError {
        volume: volume.to_owned(),
        message: message.into(),
    }
}

/// A relative path that stays inside its directory (no `..`, not absolute).
pub fn safe_relative(p: &str) -> bool {
    !p.is_empty()
        && Path::new(p)
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// Sets up every volume of `pod` (again: updates of ConfigMaps and
/// Secrets are swapped in), returning them by name.
pub fn set_up(
    root: &Path,
    pod: &Pod,
    sources: &Sources,
    claims: &Claims,
    tokens: &BTreeMap<String, String>,
    node: &NodeAllocatable,
) -> Result<BTreeMap<String, Ready>, MountError> {
    let uid = pod.metadata.uid.as_deref().unwrap_or("none");
    let base = pod_dir(root, uid).join("volumes");
    let fs_group = pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.as_ref())
        .and_then(|s| s.fs_group);
    let mut out = BTreeMap::new();
    for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let dir = base.join(&v.name);
        let ready = set_up_one(&dir, pod, v, sources, claims, tokens, node, fs_group)?;
        out.insert(v.name.clone(), ready);
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn set_up_one(
    dir: &Path,
    pod: &Pod,
    v: &Volume,
    sources: &Sources,
    claims: &Claims,
    tokens: &BTreeMap<String, String>,
    node: &NodeAllocatable,
    fs_group: Option<i64>,
) -> Result<Ready, MountError> {
    let name = v.name.as_str();
    let io = |what: &str| {
        let what = what.to_owned();
        move |e: io::Error| err(name, format!("{what}: {e}"))
    };
    if let Some(e) = &v.empty_dir {
        if !dir.exists() {
            fs::create_dir_all(dir).map_err(io("create the directory"))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o777))
                .map_err(io("set its mode"))?;
            if e.medium.as_deref() == Some("Memory") {
                let size = match &e.size_limit {
                    Some(q) => {
                        berth_types::quantity::Quantity::parse(&q.0)
                            .map_err(|x| err(name, format!("sizeLimit: {x}")))?
                            .nanos()
                            / 1_000_000_000
                    }
                    None => 0,
                };
                let opts = if size > 0 {
                    format!("mode=1777,size={size}")
                } else {
                    "mode=1777".to_owned()
                };
                {
                    let data =
                        std::ffi::CString::new(opts).map_err(|e| err(name, e.to_string()))?;
                    rustix::mount::mount(
                        "tmpfs",
                        dir,
                        "tmpfs",
                        rustix::mount::MountFlags::empty(),
                        Some(data.as_c_str()),
                    )
                }
                .map_err(|e| err(name, format!("mount a tmpfs: {e}")))?;
            }
            if let Some(g) = fs_group {
                chown_group(dir, g).map_err(io("give it the pod's fsGroup"))?;
            }
        }
        return Ok(Ready {
            path: dir.to_owned(),
            read_only: false,
        });
    }
    if let Some(h) = &v.host_path {
        let path = PathBuf::from(&h.path);
        check_host_path(&path, h.type_.as_deref().unwrap_or("")).map_err(|m| err(name, m))?;
        return Ok(Ready {
            path,
            read_only: false,
        });
    }
    if let Some(c) = &v.persistent_volume_claim {
        return match claims.get(&c.claim_name).cloned().flatten() {
            Some(path) => Ok(Ready {
                path,
                read_only: c.read_only.unwrap_or(false),
            }),
            None => Err(err(
                name,
                format!(
                    "persistentvolumeclaim \"{}\" is not bound yet",
                    c.claim_name
                ),
            )),
        };
    }
    let mut files: BTreeMap<String, (Vec<u8>, u32)> = BTreeMap::new();
    let cm = |n: &str| sources.config_maps.get(n).and_then(Option::as_ref);
    let secret = |n: &str| sources.secrets.get(n).and_then(Option::as_ref);
    let mode_of = |m: Option<i32>| m.unwrap_or(0o644) as u32;
    if let Some(c) = &v.config_map {
        let optional = c.optional.unwrap_or(false);
        project(
            &mut files,
            cm(&c.name),
            c.items.as_deref(),
            mode_of(c.default_mode),
            optional,
            "configmap",
            &c.name,
        )
        .map_err(|m| err(name, m))?;
    } else if let Some(s) = &v.secret {
        let sname = s.secret_name.clone().unwrap_or_default();
        let optional = s.optional.unwrap_or(false);
        project(
            &mut files,
            secret(&sname),
            s.items.as_deref(),
            mode_of(s.default_mode),
            optional,
            "secret",
            &sname,
        )
        .map_err(|m| err(name, m))?;
    } else if let Some(d) = &v.downward_api {
        downward_items(
            &mut files,
            pod,
            d.items.as_deref(),
            mode_of(d.default_mode),
            node,
        )
        .map_err(|m| err(name, m))?;
    } else if let Some(p) = &v.projected {
        let mode = mode_of(p.default_mode);
        for src in p.sources.iter().flatten() {
            if let Some(c) = &src.config_map {
                let optional = c.optional.unwrap_or(false);
                project(
                    &mut files,
                    cm(&c.name),
                    c.items.as_deref(),
                    mode,
                    optional,
                    "configmap",
                    &c.name,
                )
                .map_err(|m| err(name, m))?;
            }
            if let Some(s) = &src.secret {
                let optional = s.optional.unwrap_or(false);
                project(
                    &mut files,
                    secret(&s.name),
                    s.items.as_deref(),
                    mode,
                    optional,
                    "secret",
                    &s.name,
                )
                .map_err(|m| err(name, m))?;
            }
            if let Some(d) = &src.downward_api {
                downward_items(&mut files, pod, d.items.as_deref(), mode, node)
                    .map_err(|m| err(name, m))?;
            }
            if let Some(t) = &src.service_account_token {
                let token = tokens
                    .get(&t.path)
                    .ok_or_else(|| err(name, format!("no token for {:?} yet", t.path)))?;
                insert_file(
                    &mut files,
                    &t.path,
                    token.clone().into_bytes(),
                    // the volume's mode, as the kubelet writes it (0644 by
                    // default: readable by a pod running as another user)
                    mode,
                )
                .map_err(|m| err(name, m))?;
            }
        }
    } else {
        return Err(err(name, "not supported yet: this volume type"));
    }
    write_atomic_dir(dir, &files, fs_group).map_err(io("write the files"))?;
    Ok(Ready {
        path: dir.to_owned(),
        read_only: true,
    })
}

fn check_host_path(path: &Path, kind: &str) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    let meta = fs::metadata(path);
    let failed = |what: &str| {
        format!(
            "hostPath type check failed: {} is not a {what}",
            path.display()
        )
    };
    match kind {
        "" => Ok(()),
        "DirectoryOrCreate" => {
            if meta.is_err() {
                fs::create_dir_all(path).map_err(|e| format!("create {}: {e}", path.display()))?;
                fs::set_permissions(path, fs::Permissions::from_mode(0o755))
                    .map_err(|e| format!("chmod {}: {e}", path.display()))?;
                return Ok(());
            }
            meta.ok()
                .filter(|m| m.is_dir())
                .map(|_| ())
                .ok_or_else(|| failed("directory"))
        }
        "Directory" => meta
            .ok()
            .filter(|m| m.is_dir())
            .map(|_| ())
            .ok_or_else(|| failed("directory")),
        "FileOrCreate" => {
            if meta.is_err() {
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent)
                        .map_err(|e| format!("create {}: {e}", parent.display()))?;
                }
                fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("create {}: {e}", path.display()))?;
                fs::set_permissions(path, fs::Permissions::from_mode(0o644))
                    .map_err(|e| format!("chmod {}: {e}", path.display()))?;
                return Ok(());
            }
            meta.ok()
                .filter(|m| m.is_file())
                .map(|_| ())
                .ok_or_else(|| failed("file"))
        }
        "File" => meta
            .ok()
            .filter(|m| m.is_file())
            .map(|_| ())
            .ok_or_else(|| failed("file")),
        "Socket" => meta
            .ok()
            .filter(|m| m.file_type().is_socket())
            .map(|_| ())
            .ok_or_else(|| failed("socket file")),
        "CharDevice" => meta
            .ok()
            .filter(|m| m.file_type().is_char_device())
            .map(|_| ())
            .ok_or_else(|| failed("character device")),
        "BlockDevice" => meta
            .ok()
            .filter(|m| m.file_type().is_block_device())
            .map(|_| ())
            .ok_or_else(|| failed("block device")),
        other => Err(format!("invalid hostPath type {other:?}")),
    }
}

fn insert_file(
    files: &mut BTreeMap<String, (Vec<u8>, u32)>,
    path: &str,
    data: Vec<u8>,
    mode: u32,
) -> Result<(), String> {
    if !safe_relative(path) || path.starts_with("..") {
        return Err(format!(
            "invalid path {path:?}: must be relative and may not contain '..'"
        ));
    }
    files.insert(path.to_owned(), (data, mode & 0o777));
    Ok(())
}

/// A ConfigMap's or Secret's data (`None`: it does not exist) written
/// into `files`, all keys or the `items` chosen; kube's errors when it or
/// a key is missing and not optional.
fn project(
    files: &mut BTreeMap<String, (Vec<u8>, u32)>,
    data: Option<&BTreeMap<String, Vec<u8>>>,
    items: Option<&[KeyToPath]>,
    mode: u32,
    optional: bool,
    kind: &str,
    name: &str,
) -> Result<(), String> {
    let Some(data) = data else {
        return if optional {
            Ok(())
        } else {
            Err(format!("{kind} \"{name}\" not found"))
        };
    };
    match items {
        None => {
            for (k, v) in data {
                insert_file(files, k, v.clone(), mode)?;
            }
        }
        Some(items) => {
            for item in items {
                match data.get(&item.key) {
                    Some(v) => insert_file(
                        files,
                        &item.path,
                        v.clone(),
                        item.mode.map_or(mode, |m| m as u32),
                    )?,
                    None if optional => {}
                    None => {
                        return Err(format!(
                            "configuration error: key {:?} not found in {kind} {name:?}",
                            item.key
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The downward API's `items` written into `files`.
fn downward_items(
    files: &mut BTreeMap<String, (Vec<u8>, u32)>,
    pod: &Pod,
    items: Option<&[k8s_openapi::api::core::v1::DownwardAPIVolumeFile]>,
    mode: u32,
    node: &NodeAllocatable,
) -> Result<(), String> {
    for item in items.into_iter().flatten() {
        let value = downward_item(pod, item, node)?;
        insert_file(
            files,
            &item.path,
            value.into_bytes(),
            item.mode.map_or(mode, |m| m as u32),
        )?;
    }
    Ok(())
}

fn downward_item(
    pod: &Pod,
    item: &k8s_openapi::api::core::v1::DownwardAPIVolumeFile,
    node: &NodeAllocatable,
) -> Result<String, String> {
    if let Some(f) = &item.field_ref {
        return env::field_value(pod, &f.field_path).map_err(|e| e.0);
    }
    if let Some(r) = &item.resource_field_ref {
        let name = r.container_name.as_deref().unwrap_or("");
        let c = pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .find(|c| c.name == name)
            .ok_or_else(|| format!("container {name:?} not found"))?;
        return env::resource_value(
            c,
            &r.resource,
            r.divisor.as_ref().map(|d| d.0.as_str()),
            node,
        )
        .map_err(|e| e.0);
    }
    Err(format!("downward API item {:?} names no field", item.path))
}

fn chown_group(path: &Path, gid: i64) -> io::Result<()> {
    let gid = u32::try_from(gid).map_err(|_| io::Error::other("fsGroup out of range"))?;
    std::os::unix::fs::chown(path, None, Some(gid))
}

/// Writes `files` as the kubelet's atomic writer does: a new `..<stamp>`
/// directory, `..data` renamed onto a link to it, visible names linking
/// through `..data`, the old directory removed. Unchanged content is left
/// alone.
fn write_atomic_dir(
    dir: &Path,
    files: &BTreeMap<String, (Vec<u8>, u32)>,
    fs_group: Option<i64>,
) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let data_link = dir.join("..data");
    let current = fs::read_link(&data_link).ok();
    if let Some(cur) = &current
        && same_content(&dir.join(cur), files)
    {
        return Ok(());
    }
    let stamp = format!(
        "..{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let staging = dir.join(&stamp);
    fs::create_dir_all(&staging)?;
    for (path, (data, mode)) in files {
        let target = staging.join(path);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&target, data)?;
        fs::set_permissions(&target, fs::Permissions::from_mode(*mode))?;
        if let Some(g) = fs_group {
            chown_group(&target, g)?;
        }
    }
    let tmp_link = dir.join("..data_tmp");
    let _ = fs::remove_file(&tmp_link);
    symlink(&stamp, &tmp_link)?;
    fs::rename(&tmp_link, &data_link)?;
    // visible names: the top-level entries, through ..data
    let mut tops: Vec<String> = files
        .keys()
        .filter_map(|p| p.split('/').next().map(str::to_owned))
        .collect();
    tops.dedup();
    for top in &tops {
        let link = dir.join(top);
        if fs::symlink_metadata(&link).is_err() {
            symlink(Path::new("..data").join(top), &link)?;
        }
    }
    // names no longer present
    for entry in fs::read_dir(dir)?.flatten() {
        let n = entry.file_name().to_string_lossy().into_owned();
        if n.starts_with("..") {
            if n != "..data" && n != stamp {
                let _ = fs::remove_dir_all(entry.path());
            }
        } else if !tops.contains(&n) {
            let _ = fs::remove_file(entry.path());
        }
    }
    Ok(())
}

fn same_content(dir: &Path, files: &BTreeMap<String, (Vec<u8>, u32)>) -> bool {
    files.iter().all(|(p, (data, mode))| {
        let f = dir.join(p);
        fs::read(&f).is_ok_and(|d| &d == data)
            && fs::metadata(&f).is_ok_and(|m| m.permissions().mode() & 0o777 == *mode)
    }) && count_files(dir) == files.len()
}

fn count_files(dir: &Path) -> usize {
    fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        count_files(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Removes a pod's volumes (a finished pod's: its emptyDirs free their
/// space; PersistentVolumes and host paths live elsewhere and stay).
pub fn tear_down_volumes(root: &Path, uid: &str) -> io::Result<()> {
    let vols = pod_dir(root, uid).join("volumes");
    if let Ok(rd) = fs::read_dir(&vols) {
        for e in rd.flatten() {
            // a Memory emptyDir is a tmpfs: unmount before removing
            let _ = rustix::mount::unmount(e.path(), rustix::mount::UnmountFlags::DETACH);
        }
    }
    match fs::remove_dir_all(&vols) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Unmounts and removes a pod's volume directories (not hostPath or
/// persistent volumes, which live elsewhere).
pub fn tear_down(root: &Path, uid: &str) -> io::Result<()> {
    let dir = pod_dir(root, uid);
    tear_down_volumes(root, uid)?;
    match fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The host path of `sub` inside volume `base` (subPath): created as a
/// directory when missing; refused when it leaves the volume.
pub fn sub_path(base: &Path, sub: &str) -> Result<PathBuf, String> {
    if !safe_relative(sub) {
        return Err(format!(
            "subPath {sub:?} must be a relative path without '..'"
        ));
    }
    let p = base.join(sub);
    // a link inside the volume may not lead out of it
    if let (Ok(real), Ok(real_base)) = (fs::canonicalize(&p), fs::canonicalize(base))
        && !real.starts_with(&real_base)
    {
        return Err(format!("subPath {sub:?} leads outside the volume"));
    }
    if !p.exists() {
        fs::create_dir_all(&p).map_err(|e| format!("create subPath {sub:?}: {e}"))?;
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writer_swaps_and_prunes() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("v");
        let mut files = BTreeMap::new();
        files.insert("a".to_owned(), (b"1".to_vec(), 0o644));
        files.insert("sub/b".to_owned(), (b"2".to_vec(), 0o600));
        write_atomic_dir(&dir, &files, None).unwrap();
        assert_eq!(fs::read(dir.join("a")).unwrap(), b"1");
        assert_eq!(fs::read(dir.join("sub/b")).unwrap(), b"2");
        let first = fs::read_link(dir.join("..data")).unwrap();
        write_atomic_dir(&dir, &files, None).unwrap();
        assert_eq!(
            fs::read_link(dir.join("..data")).unwrap(),
            first,
            "unchanged: left alone"
        );
        files.remove("sub/b");
        files.insert("a".to_owned(), (b"changed".to_vec(), 0o644));
        write_atomic_dir(&dir, &files, None).unwrap();
        assert_eq!(fs::read(dir.join("a")).unwrap(), b"changed");
        assert!(fs::symlink_metadata(dir.join("sub")).is_err());
        assert!(!dir.join(&first).exists(), "old data removed");
    }

    #[test]
    fn projection_of_missing_sources_and_keys() {
        let mut files = BTreeMap::new();
        let data = BTreeMap::from([("a".to_owned(), b"1".to_vec())]);
        assert_eq!(
            project(&mut files, None, None, 0o644, false, "configmap", "cm"),
            Err("configmap \"cm\" not found".to_owned())
        );
        assert_eq!(
            project(&mut files, None, None, 0o644, true, "secret", "s"),
            Ok(())
        );
        let items = [KeyToPath {
            key: "b".into(),
            path: "x".into(),
            mode: None,
        }];
        let e = project(
            &mut files,
            Some(&data),
            Some(&items),
            0o644,
            false,
            "secret",
            "s",
        )
        .unwrap_err();
        assert_eq!(
            e,
            "configuration error: key \"b\" not found in secret \"s\""
        );
        let items = [KeyToPath {
            key: "a".into(),
            path: "d/x".into(),
            mode: Some(0o600),
        }];
        project(
            &mut files,
            Some(&data),
            Some(&items),
            0o644,
            false,
            "secret",
            "s",
        )
        .unwrap();
        assert_eq!(files.get("d/x"), Some(&(b"1".to_vec(), 0o600)));
        let items = [KeyToPath {
            key: "a".into(),
            path: "../x".into(),
            mode: None,
        }];
        assert!(
            project(
                &mut files,
                Some(&data),
                Some(&items),
                0o644,
                false,
                "secret",
                "s"
            )
            .is_err()
        );
    }

    #[test]
    fn paths_stay_inside() {
        assert!(safe_relative("a/b"));
        assert!(!safe_relative("../x"));
        assert!(!safe_relative("/etc"));
        assert!(!safe_relative("a/../../x"));
        let d = tempfile::tempdir().unwrap();
        assert!(sub_path(d.path(), "../x").is_err());
        symlink("/", d.path().join("out")).unwrap();
        assert!(sub_path(d.path(), "out").is_err());
        assert!(sub_path(d.path(), "ok/deep").unwrap().is_dir());
    }
}
