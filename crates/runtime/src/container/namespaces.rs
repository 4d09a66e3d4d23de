//! Namespaces: clone flags for new ones, fds for joined ones.

use std::os::fd::{AsFd, OwnedFd};

use oci_spec::runtime::{LinuxNamespaceType as T, Spec};
use rustix::fs::{Mode, OFlags};

use crate::error::{Error, Result};

/// The `CLONE_NEW*` flag of a namespace type.
pub fn clone_flag(t: T) -> u64 {
    (match t {
        T::Mount => libc::CLONE_NEWNS,
        T::Uts => libc::CLONE_NEWUTS,
        T::Ipc => libc::CLONE_NEWIPC,
        T::Network => libc::CLONE_NEWNET,
        T::Pid => libc::CLONE_NEWPID,
        T::User => libc::CLONE_NEWUSER,
        T::Cgroup => libc::CLONE_NEWCGROUP,
        T::Time => 0x80,
    }) as u64
}

/// The `setns` type of a namespace kind (so joining checks the file's type).
pub fn link_type(t: T) -> rustix::thread::LinkNameSpaceType {
    use rustix::thread::LinkNameSpaceType as L;
    match t {
        T::Pid => L::ProcessID,
        T::Network => L::Network,
        T::Mount => L::Mount,
        T::Ipc => L::InterProcessCommunication,
        T::Uts => L::HostNameAndNISDomainName,
        T::User => L::User,
        T::Cgroup => L::ControlGroup,
        T::Time => L::Time,
    }
}

/// The name the kernel uses for a namespace type (in `/proc/<pid>/ns`).
pub fn proc_name(t: T) -> &'static str {
    match t {
        T::Mount => "mnt",
        T::Uts => "uts",
        T::Ipc => "ipc",
        T::Network => "net",
        T::Pid => "pid",
        T::User => "user",
        T::Cgroup => "cgroup",
        T::Time => "time",
    }
}

/// The namespaces of a spec: flags for the new ones and opened fds for
/// the ones to join (each checked to be a namespace of the right type).
#[derive(Debug, Default)]
pub struct NamespacePlan {
    /// Flags of namespaces to create.
    pub new: u64,
    /// Namespaces to join, user first.
    pub join: Vec<(T, OwnedFd)>,
}

impl NamespacePlan {
    /// Reads `linux.namespaces`.
    pub fn from_spec(spec: &Spec) -> Result<NamespacePlan> {
        let mut plan = NamespacePlan::default();
        let list = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref());
        for ns in list.into_iter().flatten() {
            match ns.path() {
                None => {
                    if ns.typ() == T::Time {
                        return Err(Error::Unsupported("time namespaces".into()));
                    }
                    plan.new |= clone_flag(ns.typ());
                }
                Some(p) => {
                    let fd = rustix::fs::open(p, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
                        .map_err(|e| {
                        Error::Invalid(format!("namespace path {}: {e}", p.display()))
                    })?;
                    let link = rustix::fs::readlinkat(
                        rustix::fs::CWD,
                        berth_sys::paths::fd_path(fd.as_fd()),
                        Vec::new(),
                    )
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                    let want = proc_name(ns.typ());
                    // A bind-mounted namespace file (`ip netns`, berth's own)
                    // reads as its path; it is still nsfs, and its type is
                    // checked again when it is joined (setns with the type).
                    let nsfs = rustix::fs::fstatfs(&fd).is_ok_and(|s| {
                        #[allow(clippy::unnecessary_cast)]
                        let t = s.f_type as i64;
                        t == 0x6e73_6673
                    });
                    let bind_mounted = nsfs && !link.contains(":[");
                    if !bind_mounted && !link.starts_with(&format!("{want}:[")) {
                        return Err(Error::Invalid(format!(
                            "namespace path {} is not a {want} namespace ({})",
                            p.display(),
                            if link.is_empty() {
                                "not a namespace file".into()
                            } else {
                                link
                            }
                        )));
                    }
                    plan.join.push((ns.typ(), fd));
                }
            }
        }
        plan.join
            .sort_by_key(|(t, _)| if *t == T::User { 0 } else { 1 });
        Ok(plan)
    }

    /// Whether a namespace of type `t` is created.
    pub fn creates(&self, t: T) -> bool {
        self.new & clone_flag(t) != 0
    }

    /// Takes the fd of a joined namespace of type `t` out of the plan.
    pub fn take_join(&mut self, t: T) -> Option<OwnedFd> {
        let i = self.join.iter().position(|(k, _)| *k == t)?;
        Some(self.join.remove(i).1)
    }
}
