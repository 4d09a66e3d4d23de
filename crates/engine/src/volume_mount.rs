//! Volumes of the `local` driver created with options (`--opt type=tmpfs`,
//! `--opt type=none --opt o=bind --opt device=/srv/data`, NFS, …): like
//! docker's, such a volume is mounted at its `_data` while a container uses
//! it and unmounted when the last one stops. Each user holds a file
//! `<volume>/users/<id>` naming the process that holds it (pid and start
//! time), so a user that died without releasing is recognised and never
//! keeps the volume mounted; every change runs under the volumes lock.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use rustix::mount::{MountFlags, UnmountFlags};

use crate::run::{Error, Result};
use crate::volumes::{MountPoint, Volume};

/// The options the local driver knows.
const KEYS: &[&str] = &["type", "o", "device"];

/// Checks a new volume's options (docker's local driver rules).
pub fn validate(options: &BTreeMap<String, String>) -> Result<()> {
    if options.is_empty() {
        return Ok(());
    }
    for k in options.keys() {
        if !KEYS.contains(&k.as_str()) {
            return Err(Error::Invalid(format!(
                "invalid option key: {k:?} (the local driver knows type, o and device)"
            )));
        }
    }
    let typ = options.get("type").map(String::as_str).unwrap_or("");
    if typ.is_empty() {
        return Err(Error::Invalid("missing required option: \"type\"".into()));
    }
    let device = options.get("device").map(String::as_str).unwrap_or("");
    if device.is_empty() && typ != "tmpfs" {
        return Err(Error::Invalid("missing required option: \"device\"".into()));
    }
    let (flags, _) = flags_and_data(options.get("o").map(String::as_str).unwrap_or(""));
    if typ == "none" && !flags.contains(MountFlags::BIND) {
        return Err(Error::Invalid(
            "type \"none\" needs o=bind (a bind mount of device)".into(),
        ));
    }
    if flags.contains(MountFlags::BIND) && !device.starts_with('/') {
        return Err(Error::Invalid(format!(
            "the device of a bind volume must be an absolute host path: {device:?}"
        )));
    }
    Ok(())
}

/// `o=` as mount(2) flags and the filesystem's own options.
fn flags_and_data(o: &str) -> (MountFlags, String) {
    let mut flags = MountFlags::empty();
    let mut data = Vec::new();
    for opt in o.split(',').filter(|x| !x.is_empty()) {
        match opt {
            "bind" => flags |= MountFlags::BIND,
            "rbind" => flags |= MountFlags::BIND | MountFlags::REC,
            "ro" => flags |= MountFlags::RDONLY,
            "rw" | "defaults" => {}
            "nosuid" => flags |= MountFlags::NOSUID,
            "nodev" => flags |= MountFlags::NODEV,
            "noexec" => flags |= MountFlags::NOEXEC,
            "noatime" => flags |= MountFlags::NOATIME,
            "nodiratime" => flags |= MountFlags::NODIRATIME,
            "relatime" => flags |= MountFlags::RELATIME,
            "sync" => flags |= MountFlags::SYNCHRONOUS,
            other => data.push(other),
        }
    }
    (flags, data.join(","))
}

/// Whether the volume is one the driver mounts.
pub fn mounted_kind(v: &Volume) -> bool {
    !v.options.is_empty()
}

fn volume_dir(root: &Path, name: &str) -> PathBuf {
    root.join("volumes").join(name)
}

fn users_dir(root: &Path, name: &str) -> PathBuf {
    volume_dir(root, name).join("users")
}

fn read_volume(root: &Path, name: &str) -> Option<Volume> {
    let b = fs::read(volume_dir(root, name).join("meta.json")).ok()?;
    serde_json::from_slice(&b).ok()
}

/// Whether `<dir>/_data` is a mount point now (a bind of a directory on
/// the same filesystem included: the kernel's mount-root attribute, with
/// the device comparison where the kernel does not report it).
pub fn is_mounted(dir: &Path) -> bool {
    use rustix::fs::{AtFlags, StatxAttributes, StatxFlags};
    let data = dir.join("_data");
    if let Ok(x) = rustix::fs::statx(
        rustix::fs::CWD,
        &data,
        AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::BASIC_STATS,
    ) && x.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT)
    {
        return x.stx_attributes.contains(StatxAttributes::MOUNT_ROOT);
    }
    let (Ok(a), Ok(b)) = (rustix::fs::stat(&data), rustix::fs::stat(dir)) else {
        return false;
    };
    a.st_dev != b.st_dev
}

/// Whether the user file names a process that still runs.
fn user_alive(file: &Path) -> bool {
    let Ok(s) = fs::read_to_string(file) else {
        return false;
    };
    let mut it = s.split_whitespace();
    let (Some(pid), Some(start)) = (
        it.next().and_then(|p| p.parse::<i32>().ok()),
        it.next().and_then(|p| p.parse::<u64>().ok()),
    ) else {
        return false;
    };
    crate::container::process_start(pid) == Some(start)
}

/// Mounts the driver-mounted volumes among `mounts` (unless mounted) and
/// records `user` (held by process `pid`) as using them. On error nothing
/// stays acquired.
pub fn acquire(root: &Path, user: &str, pid: i32, mounts: &[MountPoint]) -> Result<()> {
    let names = driver_volumes(root, mounts);
    if names.is_empty() {
        return Ok(());
    }
    let _l = crate::volumes::lock_at(root)?;
    let start = crate::container::process_start(pid).unwrap_or(0);
    for (i, v) in names.iter().enumerate() {
        if let Err(e) = acquire_one(root, v, user, pid, start) {
            for done in &names[..i] {
                release_one(root, &done.name, user);
            }
            return Err(e);
        }
    }
    Ok(())
}

fn acquire_one(root: &Path, v: &Volume, user: &str, pid: i32, start: u64) -> Result<()> {
    let dir = volume_dir(root, &v.name);
    let users = users_dir(root, &v.name);
    fs::create_dir_all(&users).map_err(|e| Error::Io(format!("create {}", users.display()), e))?;
    if !is_mounted(&dir) {
        let typ = v.options.get("type").map(String::as_str).unwrap_or("");
        let device = v.options.get("device").map(String::as_str).unwrap_or("");
        let (flags, data) = flags_and_data(v.options.get("o").map(String::as_str).unwrap_or(""));
        let source = if device.is_empty() { typ } else { device };
        let fstype = if flags.contains(MountFlags::BIND) {
            None
        } else {
            Some(typ)
        };
        let data = std::ffi::CString::new(data)
            .map_err(|_| Error::Invalid("volume option o contains a NUL byte".into()))?;
        let target = dir.join("_data");
        let mounted = match fstype {
            Some(t) => rustix::mount::mount(source, &target, t, flags, &*data),
            None => rustix::mount::mount(source, &target, "", flags, &*data),
        };
        mounted.map_err(|e| {
            Error::Invalid(format!(
                "error while mounting volume {}: failed to mount local volume: mount {source}:{} \
                 (type {typ}): {e}",
                v.name,
                target.display()
            ))
        })?;
        // a read-only bind needs a remount to take
        if flags.contains(MountFlags::BIND) && flags.contains(MountFlags::RDONLY) {
            let _ = rustix::mount::mount_remount(&target, flags | MountFlags::BIND, "");
        }
    }
    fs::write(users.join(user), format!("{pid} {start}\n"))
        .map_err(|e| Error::Io(format!("record the use of volume {}", v.name), e))
}

/// Records that `user` no longer uses the driver-mounted volumes among
/// `mounts`, unmounting each that nobody alive uses. Idempotent.
pub fn release(root: &Path, user: &str, mounts: &[MountPoint]) {
    let names = driver_volumes(root, mounts);
    if names.is_empty() {
        return;
    }
    let Ok(_l) = crate::volumes::lock_at(root) else {
        return;
    };
    for v in names {
        release_one(root, &v.name, user);
    }
}

fn release_one(root: &Path, name: &str, user: &str) {
    let users = users_dir(root, name);
    let _ = fs::remove_file(users.join(user));
    let busy = fs::read_dir(&users)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| user_alive(&e.path()));
    if !busy {
        unmount(root, name);
    }
}

/// Unmounts a volume's `_data` and forgets its users (the caller holds the
/// volumes lock and knows no container runs with it).
pub fn unmount(root: &Path, name: &str) {
    let dir = volume_dir(root, name);
    while is_mounted(&dir) {
        if rustix::mount::unmount(dir.join("_data"), UnmountFlags::DETACH).is_err() {
            break;
        }
    }
    if let Ok(list) = fs::read_dir(users_dir(root, name)) {
        for e in list.flatten() {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// The volumes among `mounts` that the driver mounts.
fn driver_volumes(root: &Path, mounts: &[MountPoint]) -> Vec<Volume> {
    mounts
        .iter()
        .filter(|m| m.kind == "volume" && !m.name.is_empty())
        .filter_map(|m| read_volume(root, &m.name))
        .filter(mounted_kind)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn options_are_checked_like_the_local_driver() {
        assert!(validate(&opts(&[])).is_ok());
        assert!(validate(&opts(&[("type", "tmpfs"), ("o", "size=1m")])).is_ok());
        assert!(
            validate(&opts(&[
                ("type", "none"),
                ("o", "bind"),
                ("device", "/srv")
            ]))
            .is_ok()
        );
        let e = |kv: &[(&str, &str)]| validate(&opts(kv)).unwrap_err().to_string();
        assert!(e(&[("size", "1m")]).contains("invalid option key"));
        assert!(e(&[("o", "bind")]).contains("\"type\""));
        assert!(e(&[("type", "ext4")]).contains("\"device\""));
        assert!(e(&[("type", "none"), ("device", "/srv")]).contains("o=bind"));
        assert!(e(&[("type", "none"), ("o", "bind"), ("device", "srv")]).contains("absolute"));
        let (f, d) = flags_and_data("bind,ro,size=1m,uid=1000");
        assert!(f.contains(MountFlags::BIND | MountFlags::RDONLY));
        assert_eq!(d, "size=1m,uid=1000");
    }
}
