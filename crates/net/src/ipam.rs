//! Address allocation inside one network.
//!
//! Each allocated address is a file `<network dir>/ipam/<a.b.c.d>` created
//! with `O_EXCL` and holding its owner's id (a container id), so two
//! processes can never hand out one address even without the root lock, and
//! everything a dead container held can be found by owner. The gateway, the
//! network and the broadcast address are never handed out.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;

use crate::error::{Error, Result};
use crate::network::Network;
use crate::store;

/// One allocated address and who holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocation {
    /// The address.
    pub ip: Ipv4Addr,
    /// The owner given at allocation (a container id).
    pub owner: String,
}

/// Every allocation of the network whose directory is `dir`.
pub fn allocations(dir: &Path) -> Result<Vec<Allocation>> {
    let ipam = dir.join("ipam");
    let mut out = Vec::new();
    for name in store::list_names(&ipam)? {
        let Ok(ip) = name.parse::<Ipv4Addr>() else {
            continue;
        };
        let owner = match std::fs::read_to_string(ipam.join(&name)) {
            Ok(s) => s.trim().to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::Io(format!("read {}", ipam.display()), e)),
        };
        out.push(Allocation { ip, owner });
    }
    out.sort_by_key(|a| u32::from(a.ip));
    Ok(out)
}

/// Allocates `requested`, or the lowest free address of the network's
/// range, for `owner`.
pub fn allocate(
    dir: &Path,
    net: &Network,
    requested: Option<Ipv4Addr>,
    owner: &str,
) -> Result<Ipv4Addr> {
    let ipam = dir.join("ipam");
    if let Some(ip) = requested {
        if !net.subnet.is_host(ip) {
            return Err(Error::Invalid(format!(
                "invalid address {ip}: it does not belong to any of this network's subnets ({})",
                net.subnet
            )));
        }
        if ip == net.gateway {
            return Err(Error::Conflict(format!(
                "address {ip} is already in use (it is the gateway of network {})",
                net.name
            )));
        }
        if let Some((name, _)) = net.aux_addresses.iter().find(|(_, a)| **a == ip) {
            return Err(Error::Conflict(format!(
                "address {ip} is reserved in network {} (auxiliary address {name})",
                net.name
            )));
        }
        return if try_take(&ipam, ip, owner)? {
            Ok(ip)
        } else {
            Err(Error::Conflict(format!(
                "address {ip} is already in use in network {}",
                net.name
            )))
        };
    }
    // the names say which are taken; the owners need not be read
    let taken: std::collections::HashSet<Ipv4Addr> = store::list_names(&ipam)?
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect();
    let range = net.pool();
    for v in range.first()..=range.last() {
        let ip = Ipv4Addr::from(v);
        if ip == net.gateway
            || !net.subnet.is_host(ip)
            || taken.contains(&ip)
            || net.aux_addresses.values().any(|a| *a == ip)
        {
            continue;
        }
        if try_take(&ipam, ip, owner)? {
            return Ok(ip);
        }
    }
    Err(Error::Exhausted(format!(
        "no available IPv4 addresses on network {} ({range})",
        net.name
    )))
}

/// Creates the allocation file; false when the address is taken already.
fn try_take(ipam: &Path, ip: Ipv4Addr, owner: &str) -> Result<bool> {
    std::fs::create_dir_all(ipam).map_err(Error::io(format!("create {}", ipam.display())))?;
    let path = ipam.join(ip.to_string());
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(mut f) => {
            f.write_all(owner.as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(Error::io(format!("write {}", path.display())))?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(Error::Io(format!("create {}", path.display()), e)),
    }
}

/// Frees one address (no error if it was free).
pub fn release(dir: &Path, ip: Ipv4Addr) -> Result<()> {
    store::remove_file(&dir.join("ipam").join(ip.to_string()))
}

/// Frees `ip` if `owner` holds it.
pub fn release_if_owner(dir: &Path, ip: Ipv4Addr, owner: &str) -> Result<()> {
    let path = dir.join("ipam").join(ip.to_string());
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim() == owner => store::remove_file(&path),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Io(format!("read {}", path.display()), e)),
    }
}

/// Frees every address `owner` holds in the network; returns how many.
pub fn release_owner(dir: &Path, owner: &str) -> Result<usize> {
    release_owner_except(dir, owner, &[])
}

/// Frees every address `owner` holds in the network but those in `keep`;
/// returns how many.
pub fn release_owner_except(dir: &Path, owner: &str, keep: &[Ipv4Addr]) -> Result<usize> {
    let mut n = 0;
    for a in allocations(dir)? {
        if a.owner == owner && !keep.contains(&a.ip) {
            release(dir, a.ip)?;
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NetConfig;
    use crate::network::{CreateNetwork, plan};

    fn net(subnet: &str, range: Option<&str>) -> Network {
        let req = CreateNetwork {
            name: "t".into(),
            subnet: Some(subnet.into()),
            ip_range: range.map(Into::into),
            ..Default::default()
        };
        plan(&NetConfig::default(), &req, &[], "ab".repeat(32)).unwrap()
    }

    #[test]
    fn allocates_lowest_free_and_skips_reserved() {
        let dir = tempfile::tempdir().unwrap();
        let n = net("198.18.220.0/30", None);
        // .0 network, .1 gateway, .3 broadcast: only .2 is free.
        assert_eq!(
            allocate(dir.path(), &n, None, "c1").unwrap().to_string(),
            "198.18.220.2"
        );
        let e = allocate(dir.path(), &n, None, "c2").unwrap_err();
        assert!(matches!(e, Error::Exhausted(_)), "{e}");
        release(dir.path(), "198.18.220.2".parse().unwrap()).unwrap();
        assert_eq!(
            allocate(dir.path(), &n, None, "c2").unwrap().to_string(),
            "198.18.220.2"
        );
        assert_eq!(
            allocations(dir.path()).unwrap(),
            vec![Allocation {
                ip: "198.18.220.2".parse().unwrap(),
                owner: "c2".into()
            }]
        );
    }

    #[test]
    fn explicit_requests() {
        let dir = tempfile::tempdir().unwrap();
        let n = net("198.18.221.0/24", None);
        let ip: Ipv4Addr = "198.18.221.77".parse().unwrap();
        assert_eq!(allocate(dir.path(), &n, Some(ip), "c1").unwrap(), ip);
        let e = allocate(dir.path(), &n, Some(ip), "c2").unwrap_err();
        assert!(e.to_string().contains("already in use"), "{e}");
        for bad in ["198.18.222.5", "198.18.221.0", "198.18.221.255"] {
            let e = allocate(dir.path(), &n, Some(bad.parse().unwrap()), "c2").unwrap_err();
            assert_eq!(e.kind(), berth_types::ErrorKind::Invalid, "{bad}: {e}");
        }
        let e = allocate(dir.path(), &n, Some(n.gateway), "c2").unwrap_err();
        assert!(e.to_string().contains("gateway"), "{e}");
        // Automatic allocation skips the explicitly taken one.
        assert_eq!(
            allocate(dir.path(), &n, None, "c2").unwrap().to_string(),
            "198.18.221.2"
        );
    }

    #[test]
    fn ip_range_and_release_by_owner() {
        let dir = tempfile::tempdir().unwrap();
        let n = net("198.18.223.0/24", Some("198.18.223.128/30"));
        let a = allocate(dir.path(), &n, None, "c1").unwrap();
        let b = allocate(dir.path(), &n, None, "c1").unwrap();
        let c = allocate(dir.path(), &n, None, "c2").unwrap();
        let d = allocate(dir.path(), &n, None, "c3").unwrap();
        let got: Vec<String> = [a, b, c, d].iter().map(|i| i.to_string()).collect();
        assert_eq!(
            got,
            [
                "198.18.223.128",
                "198.18.223.129",
                "198.18.223.130",
                "198.18.223.131"
            ]
        );
        assert!(allocate(dir.path(), &n, None, "c4").is_err());
        assert_eq!(release_owner_except(dir.path(), "c1", &[b]).unwrap(), 1);
        release_if_owner(dir.path(), b, "c2").unwrap();
        assert_eq!(allocations(dir.path()).unwrap().len(), 3);
        release_if_owner(dir.path(), b, "c1").unwrap();
        release_if_owner(dir.path(), b, "c1").unwrap();
        assert_eq!(release_owner(dir.path(), "c1").unwrap(), 0);
        assert_eq!(allocations(dir.path()).unwrap().len(), 2);
    }

    #[test]
    fn concurrent_allocations_never_collide() {
        let dir = tempfile::tempdir().unwrap();
        let n = net("198.18.224.0/26", None);
        let got = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for t in 0..8 {
                let (dir, n, got) = (dir.path(), &n, &got);
                s.spawn(move || {
                    for _ in 0..7 {
                        let ip = allocate(dir, n, None, &format!("c{t}")).unwrap();
                        got.lock().unwrap().push(ip);
                    }
                });
            }
        });
        let mut v = got.into_inner().unwrap();
        v.sort();
        let len = v.len();
        v.dedup();
        assert_eq!(v.len(), len);
        assert_eq!(len, 56);
    }
}
