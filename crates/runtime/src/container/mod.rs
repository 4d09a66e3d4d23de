//! Containers: the lifecycle operations of the OCI runtime, over a state
//! root directory.
//!
//! Process model: `create` (and `run`) clone the container's init straight
//! from the runtime process (no re-exec) with `clone3`, passing the new
//! namespaces, the cgroup (v2: `CLONE_INTO_CGROUP`) and a pidfd. The init
//! builds the rootfs and credentials, reports `Ready` over a socketpair,
//! and waits: for `run` on that socketpair, for `create` on a unix socket
//! in the state directory that `start` connects to. Its end of every
//! channel is close-on-exec, so end-of-file means "the container process
//! is running".

mod create;
mod exec;
mod init;
mod namespaces;
mod ops;
pub mod unix;
mod wait;

use std::cell::RefCell;
use std::path::{Path, PathBuf};

pub use create::CreateOptions;
pub use exec::ExecOptions;
pub use ops::Listed;
pub use wait::exit_code;

use crate::error::Result;
use crate::state::Root;

/// The OCI runtime over one state root.
#[derive(Debug)]
pub struct Runtime {
    root: Root,
    phases: RefCell<Vec<(String, u64)>>,
}

impl Runtime {
    /// Opens the runtime with state under `root` (created 0700 if missing).
    pub fn new(root: &Path) -> Result<Runtime> {
        let rt = Runtime {
            root: Root::open(root)?,
            phases: RefCell::new(Vec::new()),
        };
        rt.phase("open");
        Ok(rt)
    }

    /// The state root.
    pub fn root_dir(&self) -> &Path {
        self.root.path()
    }

    fn seccomp_cache(&self) -> PathBuf {
        self.root.path().join(".seccomp-cache")
    }

    /// Records the end of a phase (monotonic ns), for `--debug` timing.
    pub fn phase(&self, name: &str) {
        self.phases
            .borrow_mut()
            .push((name.to_owned(), crate::sync::monotonic_ns()));
    }

    fn child_phases(&self, p: Vec<(String, u64)>) {
        self.phases.borrow_mut().extend(p);
    }

    /// The phases recorded so far, in time order.
    pub fn phases(&self) -> Vec<(String, u64)> {
        let mut v = self.phases.borrow().clone();
        v.sort_by_key(|(_, t)| *t);
        v
    }
}
