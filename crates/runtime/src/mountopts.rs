//! Parsing OCI mount options into mount flags, attributes, propagation and
//! filesystem data (pure).

use berth_sys::mount::attr;

/// Propagation type requested for a mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Propagation {
    /// MS_PRIVATE
    Private,
    /// MS_SHARED
    Shared,
    /// MS_SLAVE
    Slave,
    /// MS_UNBINDABLE
    Unbindable,
}

impl Propagation {
    /// The `MS_*` flag.
    pub fn ms_flag(self) -> u64 {
        match self {
            Propagation::Private => libc::MS_PRIVATE,
            Propagation::Shared => libc::MS_SHARED,
            Propagation::Slave => libc::MS_SLAVE,
            Propagation::Unbindable => libc::MS_UNBINDABLE,
        }
    }

    /// Parses `private`, `rshared`, ...; returns (type, recursive).
    pub fn parse(s: &str) -> Option<(Propagation, bool)> {
        let (rec, base) = match s.strip_prefix('r') {
            Some(b) if matches!(b, "private" | "shared" | "slave" | "unbindable") => (true, b),
            _ => (false, s),
        };
        let p = match base {
            "private" => Propagation::Private,
            "shared" => Propagation::Shared,
            "slave" => Propagation::Slave,
            "unbindable" => Propagation::Unbindable,
            _ => return None,
        };
        Some((p, rec))
    }
}

/// Parsed mount options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MountOptions {
    /// `bind` or `rbind` was given.
    pub bind: bool,
    /// `rbind`.
    pub recursive_bind: bool,
    /// `MOUNT_ATTR_*` bits to set on the mount itself.
    pub attr_set: u64,
    /// `MOUNT_ATTR_*` bits to clear on the mount itself.
    pub attr_clr: u64,
    /// Attribute bits to set on the whole tree (`rro`, `rnosuid`, ...).
    pub rec_attr_set: u64,
    /// Attribute bits to clear on the whole tree (`rrw`, ...).
    pub rec_attr_clr: u64,
    /// Superblock flags passed to the filesystem as flag options.
    pub sb_flags: Vec<&'static str>,
    /// Propagation change, and whether it is recursive.
    pub propagation: Option<(Propagation, bool)>,
    /// Filesystem-specific options (`mode=755`, `size=64k`, ...).
    pub data: Vec<String>,
    /// `tmpcopyup`: copy what the destination held into the new tmpfs.
    pub tmpcopyup: bool,
}

/// Parses `options` of one mount.
pub fn parse(options: &[String]) -> Result<MountOptions, String> {
    let mut o = MountOptions::default();
    for opt in options {
        let opt = opt.as_str();
        match opt {
            "bind" => o.bind = true,
            "rbind" => {
                o.bind = true;
                o.recursive_bind = true;
            }
            "defaults" => {}
            "ro" => set(&mut o, attr::RDONLY),
            "rw" => clr(&mut o, attr::RDONLY),
            "nosuid" => set(&mut o, attr::NOSUID),
            "suid" => clr(&mut o, attr::NOSUID),
            "nodev" => set(&mut o, attr::NODEV),
            "dev" => clr(&mut o, attr::NODEV),
            "noexec" => set(&mut o, attr::NOEXEC),
            "exec" => clr(&mut o, attr::NOEXEC),
            "nodiratime" => set(&mut o, attr::NODIRATIME),
            "diratime" => clr(&mut o, attr::NODIRATIME),
            "nosymfollow" => set(&mut o, attr::NOSYMFOLLOW),
            "symfollow" => clr(&mut o, attr::NOSYMFOLLOW),
            "relatime" => atime(&mut o, attr::RELATIME),
            "noatime" => atime(&mut o, attr::NOATIME),
            "strictatime" => atime(&mut o, attr::STRICTATIME),
            "atime" | "norelatime" | "nostrictatime" => {}
            "sync" | "dirsync" | "mand" | "lazytime" | "silent" | "iversion" => {
                o.sb_flags.push(match opt {
                    "sync" => "sync",
                    "dirsync" => "dirsync",
                    "mand" => "mand",
                    "lazytime" => "lazytime",
                    "silent" => "silent",
                    _ => "iversion",
                })
            }
            "async" | "nomand" | "nolazytime" | "loud" | "noiversion" => {}
            "tmpcopyup" => o.tmpcopyup = true,
            "remount" => return Err("the \"remount\" option is not valid for a new mount".into()),
            "idmap" | "ridmap" => {
                return Err(format!("not supported yet: id-mapped mounts ({opt:?})"));
            }
            _ => {
                if let Some(p) = Propagation::parse(opt) {
                    o.propagation = Some(p);
                } else if let Some(bits) = recursive_attr(opt) {
                    match bits {
                        (b, true) => {
                            o.rec_attr_set |= b;
                            o.rec_attr_clr &= !b;
                        }
                        (b, false) => {
                            o.rec_attr_clr |= b;
                            o.rec_attr_set &= !b;
                        }
                    }
                } else {
                    o.data.push(opt.to_owned());
                }
            }
        }
    }
    Ok(o)
}

fn set(o: &mut MountOptions, bit: u64) {
    o.attr_set |= bit;
    o.attr_clr &= !bit;
}

fn clr(o: &mut MountOptions, bit: u64) {
    o.attr_clr |= bit;
    o.attr_set &= !bit;
}

fn atime(o: &mut MountOptions, which: u64) {
    o.attr_set = (o.attr_set & !attr::ATIME_MASK) | which;
    o.attr_clr |= attr::ATIME_MASK;
}

/// `rro` → (RDONLY, set), `rrw` → (RDONLY, clear), ...
fn recursive_attr(opt: &str) -> Option<(u64, bool)> {
    Some(match opt {
        "rro" => (attr::RDONLY, true),
        "rrw" => (attr::RDONLY, false),
        "rnosuid" => (attr::NOSUID, true),
        "rsuid" => (attr::NOSUID, false),
        "rnodev" => (attr::NODEV, true),
        "rdev" => (attr::NODEV, false),
        "rnoexec" => (attr::NOEXEC, true),
        "rexec" => (attr::NOEXEC, false),
        "rnodiratime" => (attr::NODIRATIME, true),
        "rdiratime" => (attr::NODIRATIME, false),
        "rnosymfollow" => (attr::NOSYMFOLLOW, true),
        "rsymfollow" => (attr::NOSYMFOLLOW, false),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(opts: &[&str]) -> MountOptions {
        parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn flags_data_and_propagation() {
        let o = p(&["nosuid", "strictatime", "mode=755", "size=65536k", "ro"]);
        assert_eq!(o.attr_set, attr::NOSUID | attr::STRICTATIME | attr::RDONLY);
        assert_eq!(o.data, vec!["mode=755", "size=65536k"]);
        assert!(!o.bind);
        let o = p(&["rbind", "rprivate", "rro", "nodev"]);
        assert!(o.bind && o.recursive_bind);
        assert_eq!(o.propagation, Some((Propagation::Private, true)));
        assert_eq!(o.rec_attr_set, attr::RDONLY);
        assert_eq!(o.attr_set, attr::NODEV);
        let o = p(&["ro", "rw"]);
        assert_eq!(o.attr_set, 0);
        assert_eq!(o.attr_clr, attr::RDONLY);
        let o = p(&["bind", "shared"]);
        assert_eq!(o.propagation, Some((Propagation::Shared, false)));
    }

    #[test]
    fn refuses_what_it_cannot_do() {
        assert!(
            parse(&["idmap".to_string()])
                .unwrap_err()
                .contains("not supported yet")
        );
        assert!(parse(&["remount".to_string()]).is_err());
    }
}
