//! The on-disk state of a container under the runtime root:
//! `<root>/<id>/state.json` (schema-versioned) and, while the container is
//! created but not started, the `start.sock` its init waits on.
//!
//! Layout (schema 1):
//! ```text
//! <root>/                 0700
//!   <id>/                 0700, created with mkdir(2): ids are unique
//!     state.json          ContainerState, written atomically (tmp + rename)
//!     start.sock          exists from create until start
//! ```
//! Runtime state describes live processes: it is checked against them
//! (pid + start time + boot id) rather than trusted.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::cgroups::Cgroup;
use crate::error::{Context, Error, Result};
use crate::procfs;

/// Current state schema version.
pub const SCHEMA: u32 = 1;

/// Name of the state file.
pub const STATE_FILE: &str = "state.json";
/// Name of the socket a created container's init waits on for `start`.
pub const START_SOCKET: &str = "start.sock";

/// A container's lifecycle status (OCI runtime-spec terms, plus paused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Being created.
    Creating,
    /// Created, waiting for start.
    Created,
    /// The user process runs.
    Running,
    /// Frozen.
    Paused,
    /// The init process has exited.
    Stopped,
}

impl Status {
    /// The name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// What the runtime remembers about a container.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerState {
    /// Schema version of this record.
    pub schema: u32,
    /// Container id.
    pub id: String,
    /// Absolute bundle path.
    pub bundle: PathBuf,
    /// Absolute rootfs path.
    pub rootfs: PathBuf,
    /// Host pid of the container's init.
    pub pid: i32,
    /// Start time of that pid (clock ticks since boot).
    pub pid_start: u64,
    /// Boot in which the container was created.
    pub boot_id: String,
    /// Creation time, RFC 3339 (UTC, nanoseconds).
    pub created: String,
    /// Creating user.
    pub owner: String,
    /// The spec's annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// The container's cgroup.
    pub cgroup: Option<Cgroup>,
    /// The configuration the container was created from.
    pub config: Spec,
}

impl ContainerState {
    /// The current status, from the live process and cgroup.
    pub fn status(&self, dir: &Path) -> Status {
        if self.boot_id != procfs::boot_id() || !procfs::alive(self.pid, self.pid_start) {
            return Status::Stopped;
        }
        if dir.join(START_SOCKET).exists() {
            return Status::Created;
        }
        if self.cgroup.as_ref().is_some_and(Cgroup::is_frozen) {
            return Status::Paused;
        }
        Status::Running
    }

    /// The OCI state document (`berth oci state` output and hook stdin).
    pub fn oci_state(&self, status: Status) -> serde_json::Value {
        let pid = if status == Status::Stopped {
            0
        } else {
            self.pid
        };
        let mut v = serde_json::json!({
            "ociVersion": self.config.version(),
            "id": self.id,
            "pid": pid,
            "status": status.as_str(),
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": self.owner,
        });
        if !self.annotations.is_empty() {
            v["annotations"] = serde_json::to_value(&self.annotations).unwrap_or_default();
        }
        v
    }
}

/// The runtime root: one directory per container.
#[derive(Clone, Debug)]
pub struct Root {
    dir: PathBuf,
}

impl Root {
    /// Opens (creating if needed, mode 0700) the runtime root.
    pub fn open(dir: &Path) -> Result<Root> {
        if !dir.is_dir() {
            fs::create_dir_all(dir).ctx(|| format!("create runtime root {}", dir.display()))?;
            set_mode(dir, 0o700)?;
        }
        let dir = fs::canonicalize(dir).ctx(|| format!("runtime root {}", dir.display()))?;
        Ok(Root { dir })
    }

    /// The root directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The directory of container `id` (which may not exist).
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Claims `id` by creating its directory; fails if it exists.
    pub fn claim(&self, id: &str) -> Result<PathBuf> {
        let dir = self.container_dir(id);
        match fs::create_dir(&dir) {
            Ok(()) => {
                set_mode(&dir, 0o700)?;
                Ok(dir)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(Error::Exists(id.into())),
            Err(e) => Err(Error::Io {
                context: format!("create {}", dir.display()),
                source: e,
            }),
        }
    }

    /// Loads the state of `id`.
    pub fn load(&self, id: &str) -> Result<ContainerState> {
        let path = self.container_dir(id).join(STATE_FILE);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NotFound(id.into()));
            }
            Err(e) => {
                return Err(Error::Io {
                    context: format!("read {}", path.display()),
                    source: e,
                });
            }
        };
        decode(&bytes).map_err(|m| Error::Invalid(format!("{}: {m}", path.display())))
    }

    /// Writes the state of a container atomically.
    pub fn save(&self, st: &ContainerState) -> Result<()> {
        let dir = self.container_dir(&st.id);
        let tmp = dir.join(".state.json.tmp");
        let data =
            serde_json::to_vec(st).map_err(|e| Error::Invalid(format!("encode state: {e}")))?;
        fs::write(&tmp, data).ctx(|| format!("write {}", tmp.display()))?;
        fs::rename(&tmp, dir.join(STATE_FILE)).ctx(|| format!("rename {}", tmp.display()))
    }

    /// Ids of every container directory, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        for e in fs::read_dir(&self.dir).ctx(|| format!("list {}", self.dir.display()))? {
            let e = e.ctx(|| format!("list {}", self.dir.display()))?;
            if e.file_type().is_ok_and(|t| t.is_dir())
                && let Some(name) = e.file_name().to_str()
                && !name.starts_with('.')
            {
                ids.push(name.to_owned());
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Removes the directory of `id`.
    pub fn remove(&self, id: &str) -> Result<()> {
        let dir = self.container_dir(id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Io {
                context: format!("remove {}", dir.display()),
                source: e,
            }),
        }
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .ctx(|| format!("chmod {}", path.display()))
}

/// Decodes a state record, migrating older schemas.
pub fn decode(bytes: &[u8]) -> std::result::Result<ContainerState, String> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("corrupt state: {e}"))?;
    let schema = v.get("schema").and_then(|s| s.as_u64()).unwrap_or(0);
    match schema {
        1 => serde_json::from_value(v).map_err(|e| format!("corrupt state: {e}")),
        s if s > SCHEMA as u64 => Err(format!(
            "state schema {s} is newer than this berth understands ({SCHEMA}); use a newer berth"
        )),
        s => Err(format!("state schema {s} is unknown")),
    }
}

/// Now as RFC 3339 UTC with nanoseconds, as runc writes `created`.
pub fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format_rfc3339(now.as_secs() as i64, now.subsec_nanos())
}

pub use berth_types::time::format_rfc3339;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_checks() {
        assert!(decode(b"{").unwrap_err().contains("corrupt"));
        assert!(decode(br#"{"schema": 99}"#).unwrap_err().contains("newer"));
        assert!(decode(br#"{"schema": 0}"#).unwrap_err().contains("unknown"));
    }

    #[test]
    fn claim_is_exclusive() {
        let t = tempfile::tempdir().unwrap();
        let root = Root::open(&t.path().join("r")).unwrap();
        root.claim("a").unwrap();
        assert!(matches!(root.claim("a"), Err(Error::Exists(_))));
        assert_eq!(root.ids().unwrap(), vec!["a"]);
        assert!(matches!(root.load("a"), Err(Error::NotFound(_))));
        root.remove("a").unwrap();
        assert!(root.ids().unwrap().is_empty());
    }
}
