//! `NetConfig`: names and address ranges, from `<root>/net.json` or defaults.

use std::net::Ipv4Addr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::subnet::Subnet;

/// Where the network layer puts things on the host. Every field can be
/// overridden in `<root>/net.json` (any subset, snake_case keys), so tests
/// and several berth roots on one host never share names or ranges.
///
/// ```json
/// {"table": "berth", "default_bridge": "berth0",
///  "default_subnet": "198.18.0.0/24", "pool": "198.19.64.0/18", "pool_prefix": 24}
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetConfig {
    /// The nftables table (family `ip`) that holds all of this root's rules.
    pub table: String,
    /// Interface name of the built-in `bridge` network.
    pub default_bridge: String,
    /// Subnet of the built-in `bridge` network.
    pub default_subnet: Subnet,
    /// Gateway of the built-in `bridge` network (default: first host).
    pub default_gateway: Option<Ipv4Addr>,
    /// Where user-defined networks without `--subnet` get their subnet.
    pub pool: Subnet,
    /// Prefix length of the subnets carved from `pool`.
    pub pool_prefix: u8,
    /// Prefix of user-defined networks' bridge names (`br-` + 12 hex of the
    /// id, docker's scheme); at most 3 characters so names fit in 15.
    pub bridge_prefix: String,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            table: "berth".into(),
            default_bridge: "berth0".into(),
            default_subnet: Subnet::new(Ipv4Addr::new(198, 18, 0, 0), 24).expect("static"),
            default_gateway: None,
            pool: Subnet::new(Ipv4Addr::new(198, 19, 64, 0), 18).expect("static"),
            pool_prefix: 24,
            bridge_prefix: "br-".into(),
        }
    }
}

impl NetConfig {
    /// Reads `<root>/net.json`, or the defaults when it does not exist.
    pub fn load(root: &Path) -> Result<NetConfig> {
        let path = root.join("net.json");
        let cfg = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => NetConfig::default(),
            Err(e) => return Err(Error::Io(format!("read {}", path.display()), e)),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// The default bridge's gateway address.
    pub fn default_gateway(&self) -> Ipv4Addr {
        self.default_gateway
            .unwrap_or_else(|| self.default_subnet.first_host())
    }

    /// Checks names and ranges for consistency.
    pub fn validate(&self) -> Result<()> {
        check_ifname(&self.default_bridge)?;
        if self.table.is_empty()
            || self.table.len() > 64
            || !self
                .table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            || !self.table.as_bytes()[0].is_ascii_alphabetic()
        {
            return Err(Error::Invalid(format!(
                "invalid nftables table name {:?}",
                self.table
            )));
        }
        if self.bridge_prefix.len() > 3 {
            return Err(Error::Invalid(format!(
                "bridge_prefix {:?} is longer than 3 characters",
                self.bridge_prefix
            )));
        }
        check_ifname(&format!("{}000000000000", self.bridge_prefix))?;
        if self.pool_prefix < self.pool.prefix() || self.pool_prefix > 30 {
            return Err(Error::Invalid(format!(
                "pool_prefix /{} does not fit pool {}",
                self.pool_prefix, self.pool
            )));
        }
        if self.default_subnet.prefix() > 30 {
            return Err(Error::Invalid(format!(
                "default_subnet {} is too small",
                self.default_subnet
            )));
        }
        if !self.default_subnet.is_host(self.default_gateway()) {
            return Err(Error::Invalid(format!(
                "default_gateway {} is not a host address of {}",
                self.default_gateway(),
                self.default_subnet
            )));
        }
        Ok(())
    }
}

/// Checks a Linux interface name: 1..=15 bytes, no `/`, whitespace or `:`.
pub fn check_ifname(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':' && b != b'"' && b != b'\\');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "invalid interface name {name:?}: 1 to 15 printable characters without / : \" \\"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let d = NetConfig::load(dir.path()).unwrap();
        assert_eq!(d, NetConfig::default());
        assert_eq!(d.table, "berth");
        assert_eq!(d.default_bridge, "berth0");
        assert_eq!(d.default_subnet.to_string(), "198.18.0.0/24");
        assert_eq!(d.default_gateway().to_string(), "198.18.0.1");
        assert_eq!(d.pool.to_string(), "198.19.64.0/18");
        assert_eq!(d.pool_prefix, 24);

        std::fs::write(
            dir.path().join("net.json"),
            r#"{"table":"t_x","default_bridge":"bt0","default_subnet":"198.18.201.0/24",
                "default_gateway":"198.18.201.254","pool":"198.18.224.0/20","pool_prefix":26,
                "bridge_prefix":"bt"}"#,
        )
        .unwrap();
        let c = NetConfig::load(dir.path()).unwrap();
        assert_eq!(c.table, "t_x");
        assert_eq!(c.default_gateway().to_string(), "198.18.201.254");
        assert_eq!(c.pool_prefix, 26);
        assert_eq!(c.bridge_prefix, "bt");
    }

    #[test]
    fn bad_configs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for bad in [
            r#"{"table":"no spaces"}"#,
            r#"{"default_bridge":"much-too-long-name"}"#,
            r#"{"default_subnet":"198.18.0.0"}"#,
            r#"{"default_gateway":"198.18.1.1"}"#,
            r#"{"pool":"198.19.64.0/18","pool_prefix":16}"#,
            r#"{"bridge_prefix":"long-"}"#,
            r#"{"unknown":1}"#,
        ] {
            std::fs::write(dir.path().join("net.json"), bad).unwrap();
            assert!(NetConfig::load(dir.path()).is_err(), "{bad}");
        }
    }

    #[test]
    fn interface_names() {
        check_ifname("berth0").unwrap();
        check_ifname("br-0123456789ab").unwrap();
        for bad in ["", "0123456789abcdef", "a/b", "a b", "a:b"] {
            assert!(check_ifname(bad).is_err(), "{bad:?}");
        }
    }
}
