//! Endpoints released with their namespace, whose veth pair the kernel
//! deletes on its own.
//!
//! Deleting a veth pair takes 15-20 ms (the kernel waits for RCU grace
//! periods while it unregisters the devices). When a container's run ends
//! its network namespace goes away too, and a dying namespace takes its
//! veth pairs with it in the kernel's own cleanup worker. So the run's
//! teardown ([`crate::Net::release`]) does not delete the veth: it *parks*
//! the endpoint — its record moves from `endpoints/` to `released/`, named
//! `<epoch-ms>-<host-veth>.json`, which takes it out of the rule set, DNS
//! and every listing — and keeps the endpoint's address allocated until the
//! veth is gone, so no other container gets the address while a device
//! with it may still be on the bridge.
//!
//! `reap` finishes parked endpoints under the root lock: the address is
//! freed once the veth has vanished; a veth still present after the caller's
//! deadline (something else holds the namespace, or the caller needs the
//! address or everything gone now) is deleted first.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::ipam;
use crate::netlink::Netlink;
use crate::store;

/// How long a parked endpoint's veth may take to go away with its
/// namespace before an attach deletes it itself.
pub const GRACE: Duration = Duration::from_secs(5);

/// `<network dir>/released`.
fn dir(net_dir: &Path) -> PathBuf {
    net_dir.join("released")
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
}

/// Parks endpoint `ep` of the network in `net_dir`, whose record is at
/// `record`: one rename, so a crash leaves it either attached or parked.
pub(crate) fn park(net_dir: &Path, record: &Path, ep: &Endpoint) -> Result<()> {
    let d = dir(net_dir);
    std::fs::create_dir_all(&d).map_err(Error::io(format!("create {}", d.display())))?;
    let to = d.join(format!("{}-{}.json", now_ms(), ep.host_veth));
    std::fs::rename(record, &to).map_err(Error::io(format!(
        "move {} to {}",
        record.display(),
        to.display()
    )))
}

/// One parked endpoint: its record's path, the endpoint, and how long ago
/// it was parked.
pub(crate) struct Parked {
    path: PathBuf,
    pub ep: Endpoint,
    pub age: Duration,
}

/// The endpoints parked in the network at `net_dir`.
pub(crate) fn parked(net_dir: &Path) -> Result<Vec<Parked>> {
    let d = dir(net_dir);
    let now = now_ms();
    let mut out = Vec::new();
    for name in store::list_names(&d)? {
        let Some(ms) = name
            .split_once('-')
            .and_then(|(ms, _)| ms.parse::<u128>().ok())
        else {
            continue;
        };
        let path = d.join(&name);
        if let Some(ep) = store::read_json::<Endpoint>(&path)? {
            let age = Duration::from_millis(now.saturating_sub(ms) as u64);
            out.push(Parked { path, ep, age });
        }
    }
    Ok(out)
}

/// Finishes the parked endpoints of the network at `net_dir` whose veth is
/// gone, and those `force` picks after deleting their veth. Returns the
/// addresses freed.
pub(crate) fn reap(net_dir: &Path, force: &dyn Fn(&Parked) -> bool) -> Result<Vec<Ipv4Addr>> {
    let all = parked(net_dir)?;
    if all.is_empty() {
        return Ok(Vec::new());
    }
    let mut nl = Netlink::open().map_err(Error::io("open netlink"))?;
    let mut freed = Vec::new();
    for p in all {
        let veth = &p.ep.host_veth;
        let present = nl
            .link_index(veth)
            .map_err(Error::io(format!("find veth {veth}")))?
            .is_some();
        if present {
            if !force(&p) {
                continue;
            }
            nl.del_link_by_name(veth)
                .map_err(Error::io(format!("delete veth {veth}")))?;
        }
        ipam::release_if_owner(net_dir, p.ep.ip, &p.ep.container_id)?;
        store::remove_file(&p.path)?;
        freed.push(p.ep.ip);
    }
    Ok(freed)
}

/// Whether the network at `net_dir` may hold an address no endpoint (attached
/// or parked) accounts for: each endpoint holds exactly one, so only when
/// there are more addresses than endpoints. Reads directories, no files.
pub(crate) fn strays_possible(net_dir: &Path) -> Result<bool> {
    let count = |d: PathBuf| store::list_names(&d).map(|v| v.len());
    let held = count(net_dir.join("ipam"))?;
    Ok(held > count(net_dir.join("endpoints"))? + count(dir(net_dir))?)
}

/// The addresses parked endpoints of `owner` hold in the network at
/// `net_dir`.
pub(crate) fn held_by(net_dir: &Path, owner: &str) -> Result<Vec<Ipv4Addr>> {
    Ok(parked(net_dir)?
        .into_iter()
        .filter(|p| p.ep.container_id == owner)
        .map(|p| p.ep.ip)
        .collect())
}
