//! Running a container from an image in the foreground (`berth run`):
//! the container's directory, its copy-on-write root filesystem over the
//! image's shared layers, its spec, and clean-up whatever happens.
//!
//! Layout: `<root>/containers/<id>/` holds `config.json` (the bundle),
//! `rootfs/` (the mount point), `upper/` and `work/` (the container's own
//! changes), `etc/` (hostname, hosts, resolv.conf) and `image` (the image
//! id, so the image cannot be removed while the container exists).

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use berth_image::ImageStore;
use berth_image::db::ImageRecord;
use berth_runtime::{CreateOptions, Runtime};
use berth_types::Digest;

use crate::spec::{RunSpec, build_spec, write_etc_files};
use crate::user;

/// Errors of running a container.
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
    /// A file operation failed.
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
}

/// Result of engine operations.
pub type Result<T> = std::result::Result<T, Error>;

/// The network a container gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Network {
    /// Its own network namespace with only loopback.
    #[default]
    None,
    /// The host's network namespace.
    Host,
}

/// What `run` was asked for, before the image is consulted.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Command (replaces the image's CMD).
    pub cmd: Vec<String>,
    /// Entrypoint (replaces the image's; `Some(empty)` clears it).
    pub entrypoint: Option<Vec<String>>,
    /// Extra environment (`KEY=value`, or `KEY` to take it from the caller).
    pub env: Vec<String>,
    /// Working directory.
    pub workdir: Option<String>,
    /// `USER` override.
    pub user: Option<String>,
    /// Hostname (default: the short container id).
    pub hostname: Option<String>,
    /// Allocate a terminal.
    pub tty: bool,
    /// Keep stdin open.
    pub interactive: bool,
    /// Read-only root filesystem.
    pub read_only: bool,
    /// Network mode.
    pub network: Network,
}

/// The engine over berth's root: images, containers, the runtime's state.
#[derive(Debug)]
pub struct Engine {
    root: PathBuf,
    images: ImageStore,
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
        // 0700: containers' upper layers may hold setuid files (CVE-2021-41091)
        let containers = root.join("containers");
        fs::create_dir_all(&containers)
            .map_err(|e| Error::Io(format!("create {}", containers.display()), e))?;
        fs::set_permissions(
            &containers,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .map_err(|e| Error::Io(format!("chmod {}", containers.display()), e))?;
        Ok(Engine {
            root: root.to_path_buf(),
            images,
        })
    }

    /// The image store.
    pub fn images(&self) -> &ImageStore {
        &self.images
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

    /// The runtime spec for `image` with `opts`, for a container whose
    /// directory is `dir`.
    fn spec_for(
        &self,
        image: &ImageRecord,
        opts: &RunOptions,
        id: &str,
        dir: &Path,
    ) -> Result<oci_spec::runtime::Spec> {
        let cfg = self.images.config(&image.id)?;
        let c = cfg.config.clone().unwrap_or_default();
        let user_spec = opts.user.clone().unwrap_or(c.user.clone());
        let read = |p: &str| -> Result<Option<String>> {
            Ok(self
                .images
                .read_file(&image.id, p, 4 << 20)?
                .map(|b| String::from_utf8_lossy(&b).into_owned()))
        };
        let user = user::resolve(
            &user_spec,
            read("/etc/passwd")?.as_deref(),
            read("/etc/group")?.as_deref(),
        )
        .map_err(Error::Invalid)?;
        let hostname = opts.hostname.clone().unwrap_or_else(|| id[..12].to_owned());
        let env = opts
            .env
            .iter()
            .filter_map(|e| {
                if e.contains('=') {
                    Some(e.clone())
                } else {
                    // `-e KEY` takes KEY from the caller's environment, or drops it
                    std::env::var(e)
                        .ok()
                        .map(|v| format!("{e}={v}"))
                        .or_else(|| Some(e.clone()))
                }
            })
            .collect();
        let run = RunSpec {
            cmd: opts.cmd.clone(),
            entrypoint: opts.entrypoint.clone(),
            env,
            workdir: opts.workdir.clone(),
            user,
            hostname: hostname.clone(),
            tty: opts.tty,
            interactive: opts.interactive,
            read_only: opts.read_only,
            cgroups_path: format!("/berth/{id}"),
        };
        let etc = dir.join("etc");
        fs::create_dir_all(&etc).map_err(|e| Error::Io(format!("create {}", etc.display()), e))?;
        write_etc_files(&etc, &hostname).map_err(|e| Error::Io("write /etc files".into(), e))?;
        let mut spec = build_spec(&cfg, &run, &dir.join("rootfs"), &etc).map_err(Error::Invalid)?;
        if opts.network == Network::Host
            && let Some(linux) = spec.linux_mut()
            && let Some(ns) = linux.namespaces_mut()
        {
            ns.retain(|n| n.typ() != oci_spec::runtime::LinuxNamespaceType::Network);
        }
        Ok(spec)
    }

    /// Runs a container from `image` in the foreground and removes it when
    /// it exits. Returns the container's exit code (128+n for a signal).
    /// The container's stdio is the caller's.
    pub fn run_foreground(&self, image: &ImageRecord, opts: &RunOptions) -> Result<i32> {
        let id = new_id()?;
        let dir = self.root.join("containers").join(&id);
        let made = (|| -> Result<CreateOptions> {
            for d in ["rootfs", "upper", "work"] {
                let p = dir.join(d);
                fs::create_dir_all(&p)
                    .map_err(|e| Error::Io(format!("create {}", p.display()), e))?;
            }
            fs::write(dir.join("image"), image.id.to_string())
                .map_err(|e| Error::Io("record the image".into(), e))?;
            let spec = self.spec_for(image, opts, &id, &dir)?;
            let json = serde_json::to_vec_pretty(&spec)
                .map_err(|e| Error::Invalid(format!("spec: {e}")))?;
            fs::write(dir.join("config.json"), json)
                .map_err(|e| Error::Io("write config.json".into(), e))?;
            let rootfs =
                self.images
                    .rootfs_mount(&image.id, &dir.join("upper"), &dir.join("work"))?;
            Ok(CreateOptions {
                id: id.clone(),
                bundle: dir.clone(),
                rootfs_mounts: vec![rootfs],
                ..Default::default()
            })
        })();
        let result = made.and_then(|create| {
            let rt = Runtime::new(&self.runtime_root())?;
            Ok(rt.run(&create, false)?)
        });
        if let Err(e) = berth_image::unpack::remove_tree(&dir) {
            tracing::warn!("remove container directory {}: {e}", dir.display());
        }
        result
    }
}
