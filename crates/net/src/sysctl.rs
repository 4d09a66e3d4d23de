//! The host sysctls bridge networking needs.

use crate::error::{Error, Result};

fn write(path: &str, value: &str) -> Result<()> {
    match std::fs::read_to_string(path) {
        Ok(v) if v.trim() == value => return Ok(()),
        _ => {}
    }
    std::fs::write(path, value).map_err(Error::io(format!("write {value} to {path}")))
}

/// `net.ipv4.ip_forward=1` (as docker sets it): containers' traffic is
/// routed between bridges and out of the host.
pub fn enable_ip_forward() -> Result<()> {
    write("/proc/sys/net/ipv4/ip_forward", "1")
}

/// `net.ipv4.conf.<bridge>.route_localnet=1`: lets DNATed connections from
/// 127.0.0.1 on the host leave through the bridge (then masqueraded).
pub fn enable_route_localnet(bridge: &str) -> Result<()> {
    write(
        &format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet"),
        "1",
    )
}
