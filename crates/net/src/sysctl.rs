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

/// The switch that hands frames between ports of one bridge to the IP
/// hooks (`br_netfilter`).
const BRIDGE_NF: &str = "/proc/sys/net/bridge/bridge-nf-call-iptables";

/// `net.bridge.bridge-nf-call-iptables=1` (as kube-proxy and every
/// NetworkPolicy implementation on a bridge need): traffic between pods of
/// one bridge passes the IP family's hooks, so service replies are
/// translated back and policies see it. Loads `br_netfilter` first when
/// the switch is missing (a kernel where it is a module not yet loaded).
pub fn enable_bridge_netfilter() -> Result<()> {
    if !std::path::Path::new(BRIDGE_NF).exists() {
        for modprobe in ["/usr/sbin/modprobe", "/sbin/modprobe", "modprobe"] {
            let ran = std::process::Command::new(modprobe)
                .arg("br_netfilter")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
            if ran.is_ok() {
                break;
            }
        }
    }
    if !std::path::Path::new(BRIDGE_NF).exists() {
        return Err(Error::Nft(
            "the kernel has no br_netfilter (net.bridge.bridge-nf-call-iptables): traffic \
             between pods of one bridge cannot be filtered"
                .into(),
        ));
    }
    write(BRIDGE_NF, "1")
}
