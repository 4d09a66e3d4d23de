//! The engine handle and its errors.
//!
//! Layout: `<root>/containers/<id>/` holds `container.json` and
//! `state.json` (see `container`), `config.json` (the bundle), `rootfs/`
//! (the mount point), `upper/` and `work/` (the container's own changes),
//! `etc/` (hostname, hosts, resolv.conf), `rootfs.json` (the overlay), the
//! log and `image` (the image id, so the image cannot be removed while the
//! container exists).

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use berth_image::ImageStore;
use berth_types::{Digest, ErrorKind};

use crate::container::Store;

/// Errors of the engine. Each has a kind ([`Error::kind`]) that the edges
/// map to their own statuses.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad options or image configuration.
    #[error("{0}")]
    Invalid(String),
    /// The image store failed.
    #[error(transparent)]
    Image(#[from] berth_image::Error),
    /// The runtime failed.
    #[error(transparent)]
    Runtime(#[from] berth_runtime::Error),
    /// Networking failed.
    #[error(transparent)]
    Net(#[from] berth_net::Error),
    /// No such container (or other object).
    #[error("{0}")]
    NotFound(String),
    /// A name or state conflict.
    #[error("{0}")]
    Conflict(String),
    /// Refused in the object's present state (docker's 403).
    #[error("{0}")]
    Forbidden(String),
    /// Nothing to do (docker's 304: already started, already stopped).
    #[error("{0}")]
    NotModified(String),
    /// Asked for something berth does not do yet.
    #[error("not supported yet: {0}")]
    NotSupported(String),
    /// The container could not be started (its command, its mounts…).
    #[error("{0}")]
    Start(String),
    /// Something the host should provide is not there (a cgroup
    /// controller, a kernel feature).
    #[error("{0}")]
    Unavailable(String),
    /// berth's own failure (a broken record, a bug).
    #[error("{0}")]
    Internal(String),
    /// A file operation failed.
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
}

impl Error {
    /// The category edges map to a status.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid(_) | Error::Start(_) => ErrorKind::Invalid,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::Forbidden(_) => ErrorKind::Forbidden,
            Error::NotModified(_) => ErrorKind::NotModified,
            Error::NotSupported(_) => ErrorKind::NotSupported,
            Error::Unavailable(_) => ErrorKind::Unavailable,
            Error::Internal(_) | Error::Io(..) => ErrorKind::Internal,
            Error::Image(e) => e.kind(),
            Error::Runtime(e) => e.kind(),
            Error::Net(e) => e.kind(),
        }
    }
}

/// Result of engine operations.
pub type Result<T> = std::result::Result<T, Error>;

/// The engine over berth's root: images, containers, the runtime's state.
#[derive(Debug)]
pub struct Engine {
    pub(crate) root: PathBuf,
    pub(crate) images: ImageStore,
    pub(crate) store: Store,
}

/// A new container id: 64 random hex digits.
pub fn new_id() -> Result<String> {
    let mut b = [0u8; 32];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| Error::Io("read /dev/urandom".into(), e))?;
    Ok(hex::encode(b))
}

impl Engine {
    /// Opens the engine under berth's root.
    pub fn open(root: &Path) -> Result<Engine> {
        let images = ImageStore::open(root)?;
        let store = Store::open(root)?;
        let e = Engine {
            root: root.to_path_buf(),
            images,
            store,
        };
        // what killed creates left behind
        let swept = e.sweep();
        if !swept.is_empty() {
            tracing::info!("swept {} half-made containers or sandboxes", swept.len());
        }
        Ok(e)
    }

    /// The image store.
    pub fn images(&self) -> &ImageStore {
        &self.images
    }

    /// berth's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The runtime's state directory.
    pub fn runtime_root(&self) -> PathBuf {
        self.root.join("oci")
    }

    /// Images that containers use (they cannot be removed).
    pub fn images_in_use(&self) -> BTreeSet<Digest> {
        let mut used = BTreeSet::new();
        let Ok(dir) = fs::read_dir(self.root.join("containers")) else {
            return used;
        };
        for e in dir.flatten() {
            if let Ok(s) = fs::read_to_string(e.path().join("image"))
                && let Ok(d) = s.trim().parse::<Digest>()
            {
                used.insert(d);
            }
        }
        used
    }
}
