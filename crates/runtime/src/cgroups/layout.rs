//! What cgroup hierarchies the host offers, read from `/proc/self/mountinfo`
//! and `/proc/self/cgroup` (never from fixed paths: controllers may be
//! co-mounted, missing, or moved to the unified hierarchy).

use std::path::{Path, PathBuf};

/// One mounted cgroup v1 hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hierarchy {
    /// Where it is mounted.
    pub mountpoint: PathBuf,
    /// The path inside the hierarchy that the mount shows as its root.
    pub mount_root: String,
    /// Controllers bound to it (`cpu`, `cpuacct`, ... or `name=systemd`).
    pub controllers: Vec<String>,
    /// This process's cgroup in the hierarchy (from `/proc/self/cgroup`).
    pub own_path: String,
}

impl Hierarchy {
    /// Key naming the hierarchy: its controllers joined by `,`.
    pub fn key(&self) -> String {
        self.controllers.join(",")
    }

    /// Whether it carries `controller`.
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }

    /// Whether it is a named hierarchy without controllers (`name=systemd`).
    pub fn is_named_only(&self) -> bool {
        self.controllers.iter().all(|c| c.starts_with("name="))
    }
}

/// The unified (cgroup2) hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unified {
    /// Where it is mounted.
    pub mountpoint: PathBuf,
    /// The path inside the hierarchy that the mount shows as its root.
    pub mount_root: String,
    /// This process's cgroup (the `0::` line).
    pub own_path: String,
    /// Controllers the root offers (`cgroup.controllers`).
    pub controllers: Vec<String>,
}

/// The host's cgroup setup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    /// cgroup v1 hierarchies (empty on a pure v2 host).
    pub v1: Vec<Hierarchy>,
    /// The cgroup2 hierarchy, if mounted.
    pub unified: Option<Unified>,
}

/// Which cgroup version containers are managed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Only cgroup v1 hierarchies.
    Legacy,
    /// v1 controllers plus a cgroup2 mount (which may own some controllers).
    Hybrid,
    /// Only cgroup2.
    Unified,
}

impl Layout {
    /// Reads the running system's layout.
    pub fn detect() -> std::io::Result<Layout> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
        let cgroup = std::fs::read_to_string("/proc/self/cgroup")?;
        let mut layout = Layout::parse_with(&mountinfo, &cgroup, mount_reachable);
        if let Some(u) = &mut layout.unified {
            let root_controllers = u.mountpoint.join("cgroup.controllers");
            if let Ok(s) = std::fs::read_to_string(root_controllers) {
                u.controllers = s.split_whitespace().map(str::to_owned).collect();
            }
        }
        Ok(layout)
    }

    /// Builds the layout from the text of `/proc/self/mountinfo` and
    /// `/proc/self/cgroup` (pure; `Unified::controllers` is left empty).
    pub fn parse(mountinfo: &str, proc_cgroup: &str) -> Layout {
        Layout::parse_with(mountinfo, proc_cgroup, |_, _| true)
    }

    /// [`Layout::parse`], keeping only the mounts `reachable` accepts
    /// (called with a mount point and the mount's device number).
    /// mountinfo also lists mounts that are hidden under another one (a
    /// tmpfs over /sys/fs/cgroup, or the fresh sysfs `ip netns exec`
    /// mounts over /sys): those cannot be used.
    pub fn parse_with(
        mountinfo: &str,
        proc_cgroup: &str,
        reachable: impl Fn(&Path, (u32, u32)) -> bool,
    ) -> Layout {
        let mut own_v1: Vec<(Vec<String>, String)> = Vec::new();
        let mut own_v2 = String::from("/");
        for line in proc_cgroup.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if ctrls.is_empty() {
                own_v2 = path.to_owned();
            } else {
                own_v1.push((
                    ctrls.split(',').map(str::to_owned).collect(),
                    path.to_owned(),
                ));
            }
        }
        let mut layout = Layout::default();
        for line in mountinfo.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let fields: Vec<&str> = left.split(' ').collect();
            let rfields: Vec<&str> = right.split(' ').collect();
            if fields.len() < 5 || rfields.len() < 3 {
                continue;
            }
            let root = unescape(fields[3]);
            let mountpoint = PathBuf::from(unescape(fields[4]));
            let is_cgroup = matches!(rfields[0], "cgroup" | "cgroup2");
            if is_cgroup && !parse_dev(fields[2]).is_some_and(|d| reachable(&mountpoint, d)) {
                continue;
            }
            match rfields[0] {
                "cgroup2" if layout.unified.is_none() => {
                    layout.unified = Some(Unified {
                        mountpoint,
                        mount_root: root,
                        own_path: own_v2.clone(),
                        controllers: Vec::new(),
                    });
                }
                "cgroup" => {
                    let controllers: Vec<String> = rfields[2]
                        .split(',')
                        .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains("release_agent"))
                        .filter(|o| is_controller_option(o))
                        .map(str::to_owned)
                        .collect();
                    if controllers.is_empty()
                        || layout.v1.iter().any(|h| h.controllers == controllers)
                    {
                        continue;
                    }
                    let own_path = own_v1
                        .iter()
                        .find(|(c, _)| {
                            let mut a = c.clone();
                            let mut b = controllers.clone();
                            a.sort();
                            b.sort();
                            a == b
                        })
                        .map(|(_, p)| p.clone())
                        .unwrap_or_else(|| "/".to_owned());
                    layout.v1.push(Hierarchy {
                        mountpoint,
                        mount_root: root,
                        controllers,
                        own_path,
                    });
                }
                _ => {}
            }
        }
        layout
    }

    /// Which version containers are managed with.
    pub fn mode(&self) -> Mode {
        match (self.v1.is_empty(), self.unified.is_some()) {
            (true, true) => Mode::Unified,
            (false, true) => Mode::Hybrid,
            _ => Mode::Legacy,
        }
    }

    /// The v1 hierarchy carrying `controller`, if any.
    pub fn v1_hierarchy(&self, controller: &str) -> Option<&Hierarchy> {
        self.v1.iter().find(|h| h.has(controller))
    }
}

/// `major:minor` of a mountinfo line.
fn parse_dev(s: &str) -> Option<(u32, u32)> {
    let (major, minor) = s.split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Whether `mountpoint` shows the mount with device number `dev` to this
/// process (and not a mount stacked over it, or nothing).
fn mount_reachable(mountpoint: &Path, dev: (u32, u32)) -> bool {
    rustix::fs::stat(mountpoint)
        .is_ok_and(|st| (rustix::fs::major(st.st_dev), rustix::fs::minor(st.st_dev)) == dev)
}

/// Mount options of a v1 cgroup mount that name controllers.
fn is_controller_option(o: &str) -> bool {
    const NOT_CONTROLLERS: &[&str] = &[
        "noprefix",
        "clone_children",
        "xattr",
        "cpuset_v2_mode",
        "favordynmods",
        "nsdelegate",
        "memory_recursiveprot",
        "memory_localevents",
        "relatime",
        "noatime",
        "nosuid",
        "nodev",
        "noexec",
    ];
    !NOT_CONTROLLERS.contains(&o) && !o.starts_with("release_agent=")
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = oct
                    .iter()
                    .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                out.push(v as u8);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Joins a cgroup path (absolute within its hierarchy) onto a mount,
/// accounting for a mount whose root is not the hierarchy root.
pub fn host_dir(mountpoint: &Path, mount_root: &str, cgroup_path: &str) -> PathBuf {
    let rel = cgroup_path
        .strip_prefix(mount_root.trim_end_matches('/'))
        .filter(|r| r.is_empty() || r.starts_with('/'))
        .unwrap_or(cgroup_path);
    let rel = rel.trim_start_matches('/');
    if rel.is_empty() {
        mountpoint.to_path_buf()
    } else {
        mountpoint.join(rel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_CGROUP: &str = "\
9:name=systemd:/
4:memory:/process_api/abc
2:cpuacct:/
1:cpu:/
0::/
";

    #[test]
    fn parses_the_hybrid_layout_of_this_machine() {
        let l = Layout::parse(HYBRID_MOUNTINFO, HYBRID_CGROUP);
        assert_eq!(l.mode(), Mode::Hybrid);
        assert_eq!(l.v1.len(), 4);
        let mem = l.v1_hierarchy("memory").unwrap();
        assert_eq!(mem.mountpoint, Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(mem.own_path, "/process_api/abc");
        assert!(l.v1_hierarchy("cpu").unwrap().own_path == "/");
        assert!(l.v1.iter().any(|h| h.is_named_only()));
        assert_eq!(
            l.unified.as_ref().unwrap().mountpoint,
            Path::new("/sys/fs/cgroup/unified")
        );
    }

    #[test]
    fn co_mounted_controllers_form_one_hierarchy() {
        let mi = "1 0 0:1 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
        let cg = "3:cpu,cpuacct:/user\n";
        let l = Layout::parse(mi, cg);
        assert_eq!(l.mode(), Mode::Legacy);
        let h = l.v1_hierarchy("cpuacct").unwrap();
        assert_eq!(h.key(), "cpu,cpuacct");
        assert_eq!(h.own_path, "/user");
    }

    #[test]
    fn pure_v2() {
        let mi = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        let l = Layout::parse(mi, "0::/user.slice/session-1.scope\n");
        assert_eq!(l.mode(), Mode::Unified);
        assert_eq!(l.unified.unwrap().own_path, "/user.slice/session-1.scope");
    }

    #[test]
    fn hidden_mounts_are_left_out() {
        // a tmpfs stacked over /sys/fs/cgroup hides every hierarchy below
        let visible =
            |p: &Path, dev: (u32, u32)| p == Path::new("/sys/fs/cgroup/memory") && dev == (0, 32);
        let l = Layout::parse_with(HYBRID_MOUNTINFO, HYBRID_CGROUP, visible);
        assert_eq!(l.v1.len(), 1);
        assert!(l.v1_hierarchy("memory").is_some());
        assert!(l.v1_hierarchy("cpu").is_none());
        assert!(l.unified.is_none());
        // a second mount of the same hierarchy that is reachable is used
        let mi =
            format!("{HYBRID_MOUNTINFO}50 23 0:32 / /run/memcg rw - cgroup cgroup rw,memory\n");
        let only_run = |p: &Path, _: (u32, u32)| p.starts_with("/run");
        let l = Layout::parse_with(&mi, HYBRID_CGROUP, only_run);
        assert_eq!(
            l.v1_hierarchy("memory").unwrap().mountpoint,
            Path::new("/run/memcg")
        );
    }

    #[test]
    fn host_dir_respects_mount_root() {
        let d = host_dir(
            Path::new("/sys/fs/cgroup/memory"),
            "/docker/x",
            "/docker/x/child",
        );
        assert_eq!(d, Path::new("/sys/fs/cgroup/memory/child"));
        let d = host_dir(Path::new("/sys/fs/cgroup/memory"), "/", "/a/b");
        assert_eq!(d, Path::new("/sys/fs/cgroup/memory/a/b"));
        assert_eq!(unescape("/a\\040b"), "/a b");
    }
}
