//! Endpoints: a container's attachment to one network, as persisted in
//! `<root>/networks/<network-id>/endpoints/<container-id>.json`.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ports::{PortBinding, PortRequest};
use crate::store;

/// Schema version of endpoint records.
pub const ENDPOINT_SCHEMA: u32 = 1;

/// What the engine asks for when it connects a container to a network.
#[derive(Clone, Debug, Default)]
pub struct AttachRequest {
    /// The container's full id (owner of the address).
    pub container_id: String,
    /// The container's name (without docker's leading `/`), resolvable by
    /// DNS on user-defined networks.
    pub container_name: String,
    /// `--network-alias` names, resolvable by DNS on user-defined networks.
    pub aliases: Vec<String>,
    /// `--ip`; allocated automatically when `None`.
    pub ip: Option<Ipv4Addr>,
    /// The container's network namespace (a bind-mounted nsfs file, e.g.
    /// made by [`crate::netns::create`]).
    pub netns: PathBuf,
    /// Interface name inside the container; `eth0` when empty.
    pub interface: String,
    /// A fixed MAC address (`--mac-address`); `02:42:` + the address's
    /// bytes when `None`.
    pub mac: Option<[u8; 6]>,
    /// `-p` entries.
    pub ports: Vec<PortRequest>,
    /// Link-local addresses the interface gets besides its own
    /// (`--link-local-ip`; docker's /16 each).
    pub link_local: Vec<Ipv4Addr>,
}

/// A container attached to a network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Schema version ([`ENDPOINT_SCHEMA`]).
    pub schema: u32,
    /// 64 hex digits (docker's `EndpointID`).
    pub id: String,
    /// The network's id.
    pub network_id: String,
    /// The network's name at attach time.
    pub network_name: String,
    /// The container's id.
    pub container_id: String,
    /// The container's name.
    pub container_name: String,
    /// Extra DNS names.
    pub aliases: Vec<String>,
    /// The container's address.
    pub ip: Ipv4Addr,
    /// The subnet's prefix length.
    pub prefix: u8,
    /// The network's gateway.
    pub gateway: Ipv4Addr,
    /// The container interface's MAC address (`02:42:` + the IP's bytes).
    pub mac: String,
    /// Host side of the veth pair, enslaved to the bridge.
    pub host_veth: String,
    /// Interface name inside the container.
    pub interface: String,
    /// The network namespace the interface lives in.
    pub netns: PathBuf,
    /// Published ports.
    pub ports: Vec<PortBinding>,
    /// When the endpoint was made, RFC 3339.
    pub created: String,
}

impl Endpoint {
    /// The names DNS answers for this endpoint: the container name, the
    /// aliases and the 12-character short id.
    pub fn dns_names(&self) -> Vec<String> {
        let mut v = Vec::new();
        if !self.container_name.is_empty() {
            v.push(self.container_name.clone());
        }
        v.extend(self.aliases.iter().cloned());
        if self.container_id.len() >= 12 {
            v.push(berth_types::short_id(&self.container_id).to_owned());
        }
        v
    }
}

/// docker's MAC scheme: `02:42:` followed by the four address bytes.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// Formats a MAC address as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Checks a container id is usable as a file name.
pub fn check_container_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!("invalid container id {id:?}")))
    }
}

/// `<network dir>/endpoints/<container-id>.json`.
pub fn path(net_dir: &Path, container_id: &str) -> PathBuf {
    net_dir
        .join("endpoints")
        .join(format!("{container_id}.json"))
}

/// Every endpoint of the network whose directory is `net_dir`.
pub fn load_all(net_dir: &Path) -> Result<Vec<Endpoint>> {
    let dir = net_dir.join("endpoints");
    let mut out = Vec::new();
    for name in store::list_names(&dir)? {
        if !name.ends_with(".json") {
            continue;
        }
        if let Some(ep) = store::read_json::<Endpoint>(&dir.join(&name))? {
            out.push(ep);
        }
    }
    out.sort_by_key(|e| u32::from(e.ip));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_and_names() {
        let ip = Ipv4Addr::new(198, 18, 0, 2);
        assert_eq!(format_mac(&mac_for(ip)), "02:42:c6:12:00:02");
        let ep = Endpoint {
            schema: ENDPOINT_SCHEMA,
            id: "e".repeat(64),
            network_id: "n".into(),
            network_name: "n".into(),
            container_id: "0123456789abcdef".into(),
            container_name: "web".into(),
            aliases: vec!["www".into()],
            ip,
            prefix: 24,
            gateway: Ipv4Addr::new(198, 18, 0, 1),
            mac: String::new(),
            host_veth: "veth0".into(),
            interface: "eth0".into(),
            netns: PathBuf::from("/x"),
            ports: vec![],
            created: String::new(),
        };
        assert_eq!(ep.dns_names(), ["web", "www", "0123456789ab"]);
        check_container_id("0123abc").unwrap();
        assert!(check_container_id("../x").is_err());
        assert!(check_container_id("").is_err());
    }
}
