//! A container's networking: the mode, the networks it joins with their
//! aliases, addresses and links, published ports, DNS and /etc/hosts.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use berth_net::Proto;
use serde::{Deserialize, Serialize};

/// Whose network namespace the container uses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", content = "of", rename_all = "lowercase")]
pub enum NetworkMode {
    /// Its own namespace on bridge networks: the named one (`default` and
    /// `bridge` are the built-in bridge), plus those of its endpoints.
    Bridge(String),
    /// Its own namespace with loopback only.
    None,
    /// The host's.
    Host,
    /// Another container's (name or id; the id once created).
    Container(String),
    /// A pod sandbox's (its id).
    Sandbox(String),
}

impl Default for NetworkMode {
    fn default() -> Self {
        NetworkMode::Bridge("default".into())
    }
}

impl NetworkMode {
    /// Docker's `NetworkMode` text (`default`, `host`, `container:ID`).
    pub fn docker_name(&self) -> String {
        match self {
            NetworkMode::Bridge(n) => n.clone(),
            NetworkMode::None => "none".into(),
            NetworkMode::Host => "host".into(),
            NetworkMode::Container(c) => format!("container:{c}"),
            NetworkMode::Sandbox(s) => format!("sandbox:{s}"),
        }
    }

    /// The network (berth-net's name) of bridge mode; `default` is `bridge`.
    pub fn bridge_network(&self) -> Option<&str> {
        match self {
            NetworkMode::Bridge(n) if n.is_empty() || n == "default" => Some("bridge"),
            NetworkMode::Bridge(n) => Some(n),
            _ => None,
        }
    }

    /// Whether the container has a network namespace of its own.
    pub fn own_namespace(&self) -> bool {
        matches!(self, NetworkMode::Bridge(_) | NetworkMode::None)
    }
}

/// A port and its protocol (`80/tcp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortProto {
    /// The port.
    pub port: u16,
    /// The protocol.
    pub proto: Proto,
}

impl fmt::Display for PortProto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.port, self.proto)
    }
}

impl FromStr for PortProto {
    type Err = String;

    /// `80`, `80/tcp`, `53/udp`.
    fn from_str(s: &str) -> Result<PortProto, String> {
        let (port, proto) = s.split_once('/').unwrap_or((s, "tcp"));
        let proto = match proto.to_ascii_lowercase().as_str() {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            "sctp" => return Err(format!("not supported yet: sctp ports ({s})")),
            _ => return Err(format!("invalid proto: {proto}")),
        };
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("invalid port: {s:?}"))?;
        Ok(PortProto { port, proto })
    }
}

impl Serialize for PortProto {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for PortProto {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<PortProto, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A published port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortBinding {
    /// Port in the container.
    pub container_port: u16,
    /// Protocol.
    pub proto: Proto,
    /// Host address (`None`: all of them).
    #[serde(default)]
    pub host_ip: Option<IpAddr>,
    /// Host port (0: a free one).
    #[serde(default)]
    pub host_port: u16,
}

/// A MAC address (`02:42:c6:12:00:02`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MacAddress(pub [u8; 6]);

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl FromStr for MacAddress {
    type Err = String;

    fn from_str(s: &str) -> Result<MacAddress, String> {
        let bad = || format!("invalid MAC address: {s}");
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for b in &mut out {
            let p = parts.next().ok_or_else(bad)?;
            if p.len() != 2 {
                return Err(bad());
            }
            *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        if out[0] & 1 == 1 {
            return Err(format!("invalid MAC address: {s} is a multicast address"));
        }
        Ok(MacAddress(out))
    }
}

impl Serialize for MacAddress {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for MacAddress {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<MacAddress, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A legacy link (`--link other:alias`): `other` is reachable as `alias`
/// and its ports show in the environment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// The other container (name or id; its name once created).
    pub container: String,
    /// The name it has here.
    pub alias: String,
}

/// How the container joins one network.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointSpec {
    /// The network (name or id; its id once created).
    pub network: String,
    /// Names it also answers to on that network.
    pub aliases: Vec<String>,
    /// A fixed IPv4 address.
    pub ipv4_address: Option<Ipv4Addr>,
    /// A fixed MAC address.
    pub mac_address: Option<MacAddress>,
    /// Legacy links on this network.
    pub links: Vec<Link>,
    /// Driver options of the endpoint (kept and reported).
    pub driver_opts: BTreeMap<String, String>,
    /// Link-local addresses asked for (kept and reported).
    pub link_local_ips: Vec<IpAddr>,
}

/// An /etc/hosts address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostAddr {
    /// This address.
    Ip(IpAddr),
    /// The container's gateway (docker's `host-gateway`).
    HostGateway,
}

impl fmt::Display for HostAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostAddr::Ip(ip) => ip.fmt(f),
            HostAddr::HostGateway => f.write_str("host-gateway"),
        }
    }
}

/// An extra /etc/hosts line (`--add-host name:addr`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostEntry {
    /// The name.
    pub name: String,
    /// Its address.
    pub addr: HostAddr,
}

impl fmt::Display for HostEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.addr)
    }
}

impl Serialize for HostEntry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for HostEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<HostEntry, D::Error> {
        let s = String::deserialize(d)?;
        // name:addr; an IPv6 address holds colons itself
        let (name, addr) = s
            .split_once(':')
            .ok_or_else(|| serde::de::Error::custom(format!("bad host entry {s:?}")))?;
        let addr = match addr {
            "host-gateway" => HostAddr::HostGateway,
            a => HostAddr::Ip(a.parse().map_err(serde::de::Error::custom)?),
        };
        Ok(HostEntry {
            name: name.to_owned(),
            addr,
        })
    }
}

/// resolv.conf settings (empty: the host's, or the embedded server's).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Dns {
    /// Name servers.
    pub servers: Vec<IpAddr>,
    /// Search domains.
    pub search: Vec<String>,
    /// Options.
    pub options: Vec<String>,
}

/// A container's networking.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkSpec {
    /// Whose namespace.
    pub mode: NetworkMode,
    /// Settings per network: the mode's network (if it has one) and more
    /// networks to join at create.
    pub endpoints: Vec<EndpointSpec>,
    /// Published ports.
    pub ports: Vec<PortBinding>,
    /// Publish every exposed port on a free host port (`-P`).
    pub publish_all: bool,
    /// resolv.conf.
    pub dns: Dns,
    /// Extra /etc/hosts lines.
    pub extra_hosts: Vec<HostEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let m: MacAddress = "02:42:C6:12:00:02".parse().unwrap();
        assert_eq!(m.to_string(), "02:42:c6:12:00:02");
        for bad in [
            "02:42",
            "01:00:5e:00:00:01",
            "zz:42:c6:12:00:02",
            "02:42:c6:12:00:02:00",
            "é",
        ] {
            assert!(bad.parse::<MacAddress>().is_err(), "{bad}");
        }
        assert_eq!("53/udp".parse::<PortProto>().unwrap().to_string(), "53/udp");
        assert_eq!("80".parse::<PortProto>().unwrap().to_string(), "80/tcp");
        assert!("0/tcp".parse::<PortProto>().is_err());
        assert!("80/icmp".parse::<PortProto>().is_err());
        let h = HostEntry {
            name: "db".into(),
            addr: HostAddr::Ip("fe80::1".parse().unwrap()),
        };
        let j = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<HostEntry>(&j).unwrap(), h);
        let j = serde_json::to_string(&NetworkMode::Container("abc".into())).unwrap();
        assert_eq!(j, r#"{"mode":"container","of":"abc"}"#);
        assert_eq!(
            serde_json::from_str::<NetworkMode>(r#"{"mode":"host"}"#).unwrap(),
            NetworkMode::Host
        );
    }
}
