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

/// `o=` as mount(2) flags and the filesystem's own options (docker's
/// table of flag names; the rest goes to the filesystem).
fn flags_and_data(o: &str) -> (MountFlags, String) {
    let mut flags = MountFlags::empty();
    let mut data = Vec::new();
    for opt in o.split(',').filter(|x| !x.is_empty()) {
        match opt {
            "bind" => flags |= MountFlags::BIND,
            "rbind" => flags |= MountFlags::BIND | MountFlags::REC,
            "ro" => flags |= MountFlags::RDONLY,
            "nosuid" => flags |= MountFlags::NOSUID,
            "nodev" => flags |= MountFlags::NODEV,
            "noexec" => flags |= MountFlags::NOEXEC,
            "noatime" => flags |= MountFlags::NOATIME,
            "nodiratime" => flags |= MountFlags::NODIRATIME,
            "relatime" => flags |= MountFlags::RELATIME,
            "strictatime" => flags |= MountFlags::STRICTATIME,
            "sync" => flags |= MountFlags::SYNCHRONOUS,
            "dirsync" => flags |= MountFlags::DIRSYNC,
            // the defaults, spelled out
            "rw" | "defaults" | "suid" | "dev" | "exec" | "async" | "atime" | "diratime"
            | "norelatime" | "nostrictatime" | "nomand" | "auto" | "noauto" => {}
            other => data.push(other),
        }
    }
    (flags, data.join(","))
}

/// Whether volume `name` under `root` is one the driver mounts.
pub fn driver_mounted(root: &Path, name: &str) -> bool {
    read_volume(root, name).is_some_and(|v| mounted_kind(&v))
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

/// Whether anything is mounted at or below `dir` (from the mount table,
/// so a bind on the same filesystem counts; when the table cannot be read
/// the answer is yes: nothing is removed or skipped on a guess).
pub fn has_mounts(dir: &Path) -> bool {
    let Ok(table) = fs::read_to_string("/proc/self/mountinfo") else {
        return true;
    };
    let dir = dir.to_string_lossy();
    let below = format!("{dir}/");
    table.lines().any(|l| {
        l.split(' ')
            .nth(4)
            .map(unescape)
            .is_some_and(|m| m == *dir || m.starts_with(&below))
    })
}

/// Whether `<dir>/_data` is a mount point now.
pub fn is_mounted(dir: &Path) -> bool {
    has_mounts(&dir.join("_data"))
}

/// A mountinfo path with its octal escapes (`\040` for a space) undone.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && let Some(Ok(n)) = s.get(i + 1..i + 4).map(|o| u8::from_str_radix(o, 8))
        {
            out.push(n);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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
    for (i, name) in names.iter().enumerate() {
        if let Err(e) = acquire_one(root, name, user, pid, start) {
            for done in &names[..i] {
                release_one(root, done, user, pid);
            }
            return Err(e);
        }
    }
    Ok(())
}

fn acquire_one(root: &Path, name: &str, user: &str, pid: i32, start: u64) -> Result<()> {
    // read again under the lock: it may have been removed meanwhile
    let v = read_volume(root, name)
        .ok_or_else(|| Error::NotFound(format!("get {name}: no such volume")))?;
    let dir = volume_dir(root, name);
    let users = users_dir(root, name);
    match fs::create_dir(&users) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::Io(format!("create {}", users.display()), e)),
    }
    // the holder first: a mount is never left without one
    let holder = users.join(user);
    fs::write(&holder, format!("{pid} {start}\n"))
        .map_err(|e| Error::Io(format!("record the use of volume {name}"), e))?;
    if is_mounted(&dir) {
        return Ok(());
    }
    mount(&v, &dir.join("_data")).inspect_err(|_| {
        let _ = fs::remove_file(&holder);
    })
}

/// Mounts volume `v` at `target` with its options.
fn mount(v: &Volume, target: &Path) -> Result<()> {
    let typ = v.options.get("type").map(String::as_str).unwrap_or("");
    let device = v.options.get("device").map(String::as_str).unwrap_or("");
    let (flags, data) = flags_and_data(v.options.get("o").map(String::as_str).unwrap_or(""));
    let source = if device.is_empty() { typ } else { device };
    let bind = flags.contains(MountFlags::BIND);
    let data = std::ffi::CString::new(data)
        .map_err(|_| Error::Invalid("volume option o contains a NUL byte".into()))?;
    let failed = |e: rustix::io::Errno| {
        Error::Invalid(format!(
            "error while mounting volume {}: failed to mount local volume: mount {source}:{} \
             (type {typ}): {e}",
            v.name,
            target.display()
        ))
    };
    let fstype = if bind { "" } else { typ };
    rustix::mount::mount(source, target, fstype, flags, &*data).map_err(failed)?;
    // a bind takes ro, nosuid, nodev, noexec, … only through a remount
    let extra = flags - (MountFlags::BIND | MountFlags::REC);
    if bind
        && !extra.is_empty()
        && let Err(e) = rustix::mount::mount_remount(target, extra | MountFlags::BIND, "")
    {
        let _ = rustix::mount::unmount(target, UnmountFlags::DETACH);
        return Err(failed(e));
    }
    Ok(())
}

/// Records that `user` (process `pid`) no longer uses the driver-mounted
/// volumes among `mounts`, unmounting each that nobody alive uses.
/// Idempotent.
pub fn release(root: &Path, user: &str, pid: i32, mounts: &[MountPoint]) {
    let names = driver_volumes(root, mounts);
    if names.is_empty() {
        return;
    }
    let Ok(_l) = crate::volumes::lock_at(root) else {
        return;
    };
    for name in names {
        release_one(root, &name, user, pid);
    }
}

fn release_one(root: &Path, name: &str, user: &str, pid: i32) {
    let users = users_dir(root, name);
    let holder = users.join(user);
    // only our own hold, or one whose process is gone: a later run of the
    // same container holds it under the same name
    let ours = fs::read_to_string(&holder).is_ok_and(|s| {
        s.split_whitespace()
            .next()
            .and_then(|p| p.parse::<i32>().ok())
            == Some(pid)
    });
    if ours || !user_alive(&holder) {
        let _ = fs::remove_file(&holder);
    }
    if !in_use(root, name) {
        unmount(root, name);
    }
}

/// Whether a live process holds the volume.
pub fn in_use(root: &Path, name: &str) -> bool {
    fs::read_dir(users_dir(root, name))
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| user_alive(&e.path()))
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

/// The names of the volumes among `mounts` that the driver mounts.
fn driver_volumes(root: &Path, mounts: &[MountPoint]) -> Vec<String> {
    mounts
        .iter()
        .filter(|m| m.kind == crate::config::MountKind::Volume && !m.name.is_empty())
        .filter_map(|m| read_volume(root, &m.name))
        .filter(mounted_kind)
        .map(|v| v.name)
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
