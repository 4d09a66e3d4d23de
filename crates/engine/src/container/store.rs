//! Containers on disk: each one is a directory under `<root>/containers/`
//! holding its configuration (`container.json`, written once at create and
//! on rename/update) and its state (`state.json`, written by whichever
//! process changes it, under the directory's `lock`). Names are symlinks
//! `<root>/names/<name>` → id, created atomically, so two processes can
//! never take one name. See ADR 0010 for why this is files, not SQLite.

use std::fs;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use super::{Record, State, process_start};
use crate::run::{Error, Result};

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let mut f = fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}

/// The containers part of berth's root.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
    names: PathBuf,
}

/// An exclusive lock on one container's directory (released on drop).
#[derive(Debug)]
pub struct Lock(#[allow(dead_code)] fs::File);

impl Store {
    /// Opens (creating) `<root>/containers` and `<root>/names`.
    pub fn open(root: &Path) -> Result<Store> {
        let dir = root.join("containers");
        let names = root.join("names");
        for d in [&dir, &names] {
            fs::create_dir_all(d).map_err(|e| Error::Io(format!("create {}", d.display()), e))?;
            // 0700: containers' upper layers may hold setuid files (CVE-2021-41091)
            fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o700))
                .map_err(|e| Error::Io(format!("chmod {}", d.display()), e))?;
        }
        Ok(Store { dir, names })
    }

    /// A container's directory.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Takes the container lock.
    pub fn lock(&self, id: &str) -> Result<Lock> {
        let p = self.dir(id).join("lock");
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Error::NotFound(format!("No such container: {id}"))
                } else {
                    Error::Io(format!("open {}", p.display()), e)
                }
            })?;
        rustix::fs::flock(f.as_fd(), rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| Error::Io(format!("lock {}", p.display()), e.into()))?;
        Ok(Lock(f))
    }

    /// Every container id.
    pub fn ids(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
            .filter(|n| self.dir(n).join("container.json").is_file())
            .collect();
        v.sort();
        v
    }

    /// Reads a container's record (older schemas are migrated as they
    /// are read; the file is rewritten at its next change).
    pub fn record(&self, id: &str) -> Result<Record> {
        let p = self.dir(id).join("container.json");
        let b = fs::read(&p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::NotFound(format!("No such container: {id}"))
            } else {
                Error::Io(format!("read {}", p.display()), e)
            }
        })?;
        super::migrate::record(&b).map_err(|e| Error::Internal(format!("{}: {e}", p.display())))
    }

    /// Writes a container's record.
    pub fn save_record(&self, r: &Record) -> Result<()> {
        let p = self.dir(&r.id).join("container.json");
        let b = serde_json::to_vec_pretty(r).map_err(|e| Error::Internal(e.to_string()))?;
        write_atomic(&p, &b).map_err(|e| Error::Io(format!("write {}", p.display()), e))
    }

    /// Reads a container's state as recorded.
    pub fn state_raw(&self, id: &str) -> Result<State> {
        let p = self.dir(id).join("state.json");
        match fs::read(&p) {
            Ok(b) => super::migrate::state(&b)
                .map_err(|e| Error::Internal(format!("{}: {e}", p.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if self.dir(id).is_dir() {
                    Ok(State::default())
                } else {
                    Err(Error::NotFound(format!("No such container: {id}")))
                }
            }
            Err(e) => Err(Error::Io(format!("read {}", p.display()), e)),
        }
    }

    /// Writes a container's state (hold its lock).
    pub fn save_state(&self, id: &str, s: &State) -> Result<()> {
        let p = self.dir(id).join("state.json");
        let b = serde_json::to_vec(s).map_err(|e| Error::Internal(e.to_string()))?;
        write_atomic(&p, &b).map_err(|e| Error::Io(format!("write {}", p.display()), e))
    }

    /// Changes a container's state under its lock.
    pub fn update_state<T>(&self, id: &str, f: impl FnOnce(&mut State) -> T) -> Result<T> {
        let _l = self.lock(id)?;
        let mut s = self.state_raw(id)?;
        let out = f(&mut s);
        self.save_state(id, &s)?;
        Ok(out)
    }

    /// Takes `name` for `id`; a conflict names the holder as docker does.
    pub fn claim_name(&self, name: &str, id: &str) -> Result<()> {
        valid_name(name)?;
        let link = self.names.join(name);
        match std::os::unix::fs::symlink(id, &link) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let holder = fs::read_link(&link)
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if !holder.is_empty() && self.is_gone(&holder) {
                    // left by a container that is gone: take it over
                    let _ = fs::remove_file(&link);
                    return self.claim_name(name, id);
                }
                Err(Error::Conflict(format!(
                    "Conflict. The container name \"/{name}\" is already in use by container \"{holder}\". \
                     You have to remove (or rename) that container to be able to reuse that name."
                )))
            }
            Err(e) => Err(Error::Io(format!("create {}", link.display()), e)),
        }
    }

    /// Makes a new container's directory with a mark naming the creating
    /// process (pid and start time), before its name is claimed.
    pub fn mark_creating(&self, id: &str) -> Result<()> {
        let dir = self.dir(id);
        fs::create_dir_all(&dir).map_err(|e| Error::Io(format!("create {}", dir.display()), e))?;
        let me = std::process::id() as i32;
        let start = process_start(me).unwrap_or(0);
        fs::write(dir.join(CREATING), format!("{me} {start}\n"))
            .map_err(|e| Error::Io("mark the container as being created".into(), e))
    }

    /// Whether the container a name points at is gone: no record, and no
    /// live process still creating it.
    fn is_gone(&self, id: &str) -> bool {
        let dir = self.dir(id);
        if dir.join("container.json").is_file() {
            return false;
        }
        match fs::read_to_string(dir.join(CREATING)) {
            Ok(s) => {
                let mut it = s.split_whitespace();
                let pid: i32 = it.next().and_then(|p| p.parse().ok()).unwrap_or(0);
                let start: u64 = it.next().and_then(|p| p.parse().ok()).unwrap_or(0);
                process_start(pid) != Some(start)
            }
            Err(_) => true,
        }
    }

    /// Gives `name` up if `id` holds it.
    pub fn release_name(&self, name: &str, id: &str) {
        let link = self.names.join(name);
        if fs::read_link(&link).is_ok_and(|p| p.as_os_str() == id) {
            let _ = fs::remove_file(&link);
        }
    }

    /// The id `name` points at.
    pub fn by_name(&self, name: &str) -> Option<String> {
        let name = name.strip_prefix('/').unwrap_or(name);
        if valid_name(name).is_err() {
            return None;
        }
        let id = fs::read_link(self.names.join(name)).ok()?;
        let id = id.to_string_lossy().into_owned();
        self.dir(&id).join("container.json").is_file().then_some(id)
    }

    /// Resolves a full id, a name or a unique id prefix, as docker does.
    pub fn resolve(&self, key: &str) -> Result<String> {
        if key.is_empty() {
            return Err(Error::NotFound("No such container: ".into()));
        }
        if key.len() == 64 && self.dir(key).join("container.json").is_file() {
            return Ok(key.to_owned());
        }
        if let Some(id) = self.by_name(key) {
            return Ok(id);
        }
        if key.bytes().all(|b| b.is_ascii_hexdigit()) {
            let key = key.to_ascii_lowercase();
            let hits: Vec<String> = self
                .ids()
                .into_iter()
                .filter(|i| i.starts_with(&key))
                .collect();
            match hits.len() {
                1 => return Ok(hits.into_iter().next().unwrap_or_default()),
                0 => {}
                _ => {
                    return Err(Error::Invalid(format!(
                        "multiple IDs found with provided prefix: {key}"
                    )));
                }
            }
        }
        Err(Error::NotFound(format!("No such container: {key}")))
    }

    /// Removes a container's directory and name (the caller has stopped it).
    pub fn remove(&self, r: &Record) -> Result<()> {
        self.release_name(&r.name, &r.id);
        // the exec index entries of this container
        if let Some(root) = self.dir.parent() {
            for e in fs::read_dir(root.join("execs"))
                .into_iter()
                .flatten()
                .flatten()
            {
                if fs::read_link(e.path()).is_ok_and(|t| t.as_os_str() == r.id.as_str()) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        let dir = self.dir(&r.id);
        unmount_shm(&dir);
        // A monitor that is ending (or a health check's exec it ran) can
        // still write a file while the tree goes: try again briefly.
        let mut tries = 0;
        loop {
            match berth_image::unpack::remove_tree(&dir) {
                Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) && tries < 20 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(25));
                }
                other => {
                    return other.map_err(|e| Error::Io(format!("remove {}", dir.display()), e));
                }
            }
        }
    }
}

/// Where a container with `--ipc shareable` keeps its /dev/shm on the host
/// while it runs, so that others can bind it (`--ipc container:`).
pub const SHM_DIR: &str = "shm";

/// Mounts the host-side /dev/shm of a shareable container (a tmpfs of
/// `size` bytes at `<dir>/shm`), unless a previous run left it mounted.
pub fn mount_shm(dir: &Path, size: u64) -> std::io::Result<()> {
    use rustix::mount::{MountFlags, mount};
    let at = dir.join(SHM_DIR);
    fs::create_dir_all(&at)?;
    let parent = rustix::fs::stat(dir)?;
    if rustix::fs::stat(&at)?.st_dev != parent.st_dev {
        return Ok(());
    }
    let size = if size == 0 { 64 << 20 } else { size };
    mount(
        "shm",
        &at,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        &*std::ffi::CString::new(format!("mode=1777,size={size}")).unwrap_or_default(),
    )?;
    Ok(())
}

/// Unmounts a container's host-side /dev/shm (idempotent).
pub fn unmount_shm(dir: &Path) {
    let at = dir.join(SHM_DIR);
    if at.exists() {
        let _ = rustix::mount::unmount(&at, rustix::mount::UnmountFlags::DETACH);
    }
}

/// The mark of a container still being created (`pid start-time`).
pub const CREATING: &str = "creating";

/// Docker's container name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> Result<()> {
    let ok = name.len() >= 2
        && name.len() <= 253
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

const ADJECTIVES: &[&str] = &[
    "amber", "bold", "brisk", "calm", "clever", "cosmic", "crisp", "daring", "eager", "fair",
    "fleet", "gentle", "glad", "golden", "hardy", "jolly", "keen", "lively", "lucid", "merry",
    "mighty", "nimble", "noble", "plucky", "proud", "quick", "quiet", "rapid", "serene", "sharp",
    "sleek", "steady", "sunny", "swift", "tidy", "vivid", "warm", "witty", "young", "zesty",
];
const NOUNS: &[&str] = &[
    "anchor", "barge", "beacon", "buoy", "cabin", "canal", "cargo", "compass", "crane", "current",
    "delta", "dock", "ferry", "fjord", "gale", "harbor", "helm", "island", "jetty", "keel",
    "lagoon", "mast", "mooring", "oar", "pier", "quay", "reef", "rudder", "sail", "schooner",
    "shoal", "skiff", "sloop", "tide", "tugboat", "wake", "wharf", "yacht", "yawl", "zephyr",
];

/// A random `adjective_noun` name (docker's style, berth's words).
pub fn random_name(seed: &[u8]) -> String {
    let a = seed.first().copied().unwrap_or(0) as usize;
    let b = seed.get(1).copied().unwrap_or(0) as usize;
    format!(
        "{}_{}",
        ADJECTIVES[a % ADJECTIVES.len()],
        NOUNS[b % NOUNS.len()]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_claimed_once_and_resolved() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let id = "a".repeat(64);
        fs::create_dir_all(s.dir(&id)).unwrap();
        let r = Record {
            id: id.clone(),
            name: "web".into(),
            ..Default::default()
        };
        s.save_record(&r).unwrap();
        s.claim_name("web", &id).unwrap();
        assert!(matches!(
            s.claim_name("web", &"b".repeat(64)),
            Err(Error::Conflict(_))
        ));
        assert!(s.claim_name("-bad", &id).is_err());
        assert!(s.claim_name("../x", &id).is_err());
        assert_eq!(s.resolve("web").unwrap(), id);
        assert_eq!(s.resolve("/web").unwrap(), id);
        assert_eq!(s.resolve("aaaa").unwrap(), id);
        assert!(matches!(s.resolve("nosuch"), Err(Error::NotFound(_))));
        s.remove(&r).unwrap();
        assert!(s.resolve("web").is_err());
        s.claim_name("web", &"b".repeat(64)).unwrap();
    }

    #[test]
    fn dead_processes_have_no_start_time() {
        assert!(process_start(std::process::id() as i32).is_some());
        assert!(process_start(0).is_none());
        assert!(process_start(i32::MAX).is_none());
    }
}
