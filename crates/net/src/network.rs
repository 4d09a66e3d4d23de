//! Networks: the persisted record, creation options, validation and lookup.
//!
//! Everything here is pure or touches only `<root>/networks/`; the kernel
//! side (bridges, rules) is driven by [`crate::Net`].

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{NetConfig, check_ifname};
use crate::error::{Error, Result};
use crate::store;
use crate::subnet::Subnet;

/// Schema version of `network.json`.
pub const NETWORK_SCHEMA: u32 = 1;
/// Name of the built-in default bridge network.
pub const DEFAULT_NETWORK: &str = "bridge";
/// Docker's option naming a network's bridge interface.
pub const OPT_BRIDGE_NAME: &str = "com.docker.network.bridge.name";
/// Docker's option turning outbound masquerading off (`"false"`).
pub const OPT_MASQUERADE: &str = "com.docker.network.bridge.enable_ip_masquerade";
/// Docker's option marking the default bridge.
pub const OPT_DEFAULT_BRIDGE: &str = "com.docker.network.bridge.default_bridge";
/// Docker's option setting the MTU of a network's interfaces.
pub const OPT_MTU: &str = "com.docker.network.driver.mtu";
/// Docker's option allowing traffic between a network's containers.
pub const OPT_ICC: &str = "com.docker.network.bridge.enable_icc";
/// Docker's option giving the host address ports are published on.
pub const OPT_HOST_BINDING: &str = "com.docker.network.bridge.host_binding_ipv4";
/// Names docker reserves for its pseudo-networks (handled by the engine).
pub const RESERVED_NAMES: [&str; 3] = ["bridge", "host", "none"];

/// A bridge network, as stored in `<root>/networks/<id>/network.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// Schema version ([`NETWORK_SCHEMA`]).
    pub schema: u32,
    /// The network's name (unique in a root).
    pub name: String,
    /// 64 lower-case hex digits.
    pub id: String,
    /// Always `bridge`.
    pub driver: String,
    /// Always `local`.
    pub scope: String,
    /// Creation time, RFC 3339.
    pub created: String,
    /// The IPv4 subnet (docker's `IPAM.Config[0].Subnet`).
    pub subnet: Subnet,
    /// The bridge's address (docker's `IPAM.Config[0].Gateway`).
    pub gateway: Ipv4Addr,
    /// Where container addresses are allocated from (`--ip-range`); the
    /// whole subnet when `None`.
    pub ip_range: Option<Subnet>,
    /// No traffic in or out of the network except between its containers.
    pub internal: bool,
    /// Docker's `Attachable` (kept for parity; berth attaches anyway).
    pub attachable: bool,
    /// Always false: berth networks are IPv4 only.
    pub enable_ipv6: bool,
    /// User labels.
    pub labels: BTreeMap<String, String>,
    /// Driver options (`-o`), e.g. `com.docker.network.bridge.name`.
    pub options: BTreeMap<String, String>,
    /// The Linux bridge interface.
    pub bridge: String,
    /// Whether this is the built-in default `bridge` network.
    pub default: bool,
    /// Addresses kept out of allocation for other hosts (docker's IPAM
    /// `AuxiliaryAddresses`), by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aux_addresses: BTreeMap<String, Ipv4Addr>,
    /// IPAM driver options (kept and reported; `None` when none were
    /// given, which docker tells from an empty map).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam_options: Option<BTreeMap<String, String>>,
    /// Whether the subnet was asked for (docker's "user configured
    /// subnet": only then may a container ask for a fixed address).
    /// Records from before this field count as asked for.
    #[serde(default = "yes")]
    pub user_subnet: bool,
    /// Whether the gateway was asked for (docker reports the gateway of a
    /// user subnet only then). Records from before this field: yes.
    #[serde(default = "yes")]
    pub user_gateway: bool,
}

fn yes() -> bool {
    true
}

impl Network {
    /// Whether containers' traffic leaving via other interfaces is
    /// masqueraded (false for internal networks and
    /// `com.docker.network.bridge.enable_ip_masquerade=false`).
    pub fn masquerade(&self) -> bool {
        !self.internal
            && self
                .options
                .get(OPT_MASQUERADE)
                .is_none_or(|v| v != "false")
    }

    /// The first 12 hex digits of the id.
    pub fn short_id(&self) -> &str {
        berth_types::short_id(&self.id)
    }

    /// The range container addresses come from.
    pub fn pool(&self) -> Subnet {
        self.ip_range.unwrap_or(self.subnet)
    }

    /// The MTU of the network's interfaces (`com.docker.network.driver.mtu`;
    /// `None`: the kernel's default). Checked at creation.
    pub fn mtu(&self) -> Option<u32> {
        self.options.get(OPT_MTU).and_then(|m| parse_mtu(m).ok()?)
    }
}

/// docker's `com.docker.network.driver.mtu`: a number; 0 means the
/// default.
fn parse_mtu(v: &str) -> Result<Option<u32>> {
    let n: u64 = v.trim().parse().map_err(|_| {
        Error::Invalid(format!(
            "failed to parse {OPT_MTU} value: {v} (not a number)"
        ))
    })?;
    match n {
        0 => Ok(None),
        68..=65535 => Ok(Some(n as u32)),
        _ => Err(Error::Invalid(format!(
            "invalid MTU number: {n} (between 68 and 65535)"
        ))),
    }
}

/// Checks a new network's driver options: the ones berth implements
/// (bridge name, masquerading, MTU) and docker's other bridge options at
/// their defaults (any other value would be ignored silently); options
/// outside docker's namespace are kept as given, as docker keeps them.
fn check_options(options: &BTreeMap<String, String>) -> Result<()> {
    let boolean = |k: &str, v: &str| -> Result<bool> {
        v.parse::<bool>()
            .map_err(|_| Error::Invalid(format!("invalid value {v:?} for {k}: true or false")))
    };
    for (k, v) in options {
        let supported = match k.as_str() {
            OPT_BRIDGE_NAME => {
                check_ifname(v)?;
                true
            }
            OPT_MASQUERADE => boolean(k, v).map(|_| true)?,
            OPT_ICC => boolean(k, v)?,
            OPT_MTU => parse_mtu(v).map(|_| true)?,
            OPT_HOST_BINDING => v.is_empty() || v == "0.0.0.0",
            OPT_DEFAULT_BRIDGE => !boolean(k, v)?,
            _ => !k.starts_with("com.docker.network."),
        };
        if !supported {
            return Err(Error::NotSupported(format!("network option {k}={v}")));
        }
    }
    Ok(())
}

/// Fills in the options docker reports for its default bridge that
/// records from before berth kept them lack.
fn default_bridge_options(options: &mut BTreeMap<String, String>) {
    for (k, v) in [(OPT_HOST_BINDING, "0.0.0.0"), (OPT_MTU, "1500")] {
        options.entry(k.to_owned()).or_insert_with(|| v.to_owned());
    }
}

/// What `docker network create` asks for.
#[derive(Clone, Debug, Default)]
pub struct CreateNetwork {
    /// The new network's name.
    pub name: String,
    /// `--driver`: empty or `bridge`.
    pub driver: String,
    /// `--subnet`; carved from the pool when `None`.
    pub subnet: Option<String>,
    /// `--gateway`; the subnet's first host when `None`.
    pub gateway: Option<String>,
    /// `--ip-range`.
    pub ip_range: Option<String>,
    /// `--internal`.
    pub internal: bool,
    /// `--attachable`.
    pub attachable: bool,
    /// `--label`.
    pub labels: BTreeMap<String, String>,
    /// `--opt`.
    pub options: BTreeMap<String, String>,
    /// `--aux-address NAME=IP`: addresses never given to containers.
    pub aux_addresses: BTreeMap<String, String>,
    /// `--ipam-opt` (`None`: not given at all).
    pub ipam_options: Option<BTreeMap<String, String>>,
}

/// docker's rule for network names: anything but blank (the bridge and
/// interface names are berth's own, made from the id). Names are bounded
/// only so that a record stays small.
pub fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(Error::Invalid(format!("invalid name: {name}")));
    }
    if name.len() > MAX_NAME {
        return Err(Error::Invalid(format!(
            "invalid name: {}…: longer than {MAX_NAME} bytes",
            name.chars().take(32).collect::<String>()
        )));
    }
    Ok(())
}

/// The longest network name accepted, in bytes.
pub const MAX_NAME: usize = 4096;

/// Builds a new user-defined network from `req`, checked against the
/// networks that already exist. Pure: the caller persists it.
pub fn plan(
    cfg: &NetConfig,
    req: &CreateNetwork,
    existing: &[Network],
    id: String,
) -> Result<Network> {
    check_name(&req.name)?;
    check_options(&req.options)?;
    if !req.driver.is_empty() && req.driver != "bridge" {
        return Err(Error::Invalid(format!(
            "network driver {:?} is not supported: berth has only the bridge driver",
            req.driver
        )));
    }
    if RESERVED_NAMES.contains(&req.name.as_str()) || existing.iter().any(|n| n.name == req.name) {
        return Err(Error::Conflict(format!(
            "network with name {} already exists",
            req.name
        )));
    }
    let taken: Vec<Subnet> = existing
        .iter()
        .map(|n| n.subnet)
        .chain(std::iter::once(cfg.default_subnet))
        .collect();
    let subnet = match &req.subnet {
        Some(s) => {
            let subnet: Subnet = s.parse()?;
            if subnet.prefix() > 30 {
                return Err(Error::Invalid(format!(
                    "subnet {subnet} is too small: at most /30"
                )));
            }
            if let Some(t) = taken.iter().find(|t| t.overlaps(&subnet)) {
                return Err(Error::Conflict(format!(
                    "invalid pool request: Pool overlaps with other one on this address space \
                     (subnet {subnet} overlaps {t})"
                )));
            }
            subnet
        }
        None => carve(cfg, &taken)?,
    };
    let gateway = match &req.gateway {
        Some(g) => {
            let g: Ipv4Addr = g
                .parse()
                .map_err(|_| Error::Invalid(format!("invalid gateway address {g:?}")))?;
            if !subnet.is_host(g) {
                return Err(Error::Invalid(format!(
                    "gateway {g} is not a host address of subnet {subnet}"
                )));
            }
            g
        }
        None => subnet.first_host(),
    };
    let ip_range = match &req.ip_range {
        Some(r) => {
            let r: Subnet = r.parse()?;
            if !subnet.contains_subnet(&r) {
                return Err(Error::Invalid(format!(
                    "ip-range {r} is not inside subnet {subnet}"
                )));
            }
            Some(r)
        }
        None => None,
    };
    let bridge = match req.options.get(OPT_BRIDGE_NAME) {
        Some(b) => {
            check_ifname(b)?;
            b.clone()
        }
        None => format!("{}{}", cfg.bridge_prefix, berth_types::short_id(&id)),
    };
    if bridge == cfg.default_bridge || existing.iter().any(|n| n.bridge == bridge) {
        return Err(Error::Conflict(format!(
            "bridge interface {bridge} is already used by another network"
        )));
    }
    let mut aux_addresses = BTreeMap::new();
    for (name, a) in &req.aux_addresses {
        let ip: Ipv4Addr = a
            .parse()
            .map_err(|_| Error::Invalid(format!("invalid auxiliary address {name}={a:?}")))?;
        if !subnet.is_host(ip) {
            return Err(Error::Invalid(format!(
                "auxiliary address {name}={ip} is not in subnet {subnet}"
            )));
        }
        aux_addresses.insert(name.clone(), ip);
    }
    Ok(Network {
        schema: NETWORK_SCHEMA,
        name: req.name.clone(),
        id,
        driver: "bridge".into(),
        scope: "local".into(),
        created: store::now_rfc3339(),
        subnet,
        gateway,
        ip_range,
        internal: req.internal,
        attachable: req.attachable,
        enable_ipv6: false,
        labels: req.labels.clone(),
        options: req.options.clone(),
        bridge,
        default: false,
        aux_addresses,
        ipam_options: req.ipam_options.clone(),
        user_subnet: req.subnet.is_some(),
        user_gateway: req.gateway.is_some(),
    })
}

/// The built-in default network's record.
pub fn default_network(cfg: &NetConfig, id: String) -> Network {
    let mut options = BTreeMap::from([
        (OPT_DEFAULT_BRIDGE.to_string(), "true".to_string()),
        (OPT_BRIDGE_NAME.to_string(), cfg.default_bridge.clone()),
        (OPT_ICC.to_string(), "true".to_string()),
        (OPT_MASQUERADE.to_string(), "true".to_string()),
    ]);
    default_bridge_options(&mut options);
    Network {
        schema: NETWORK_SCHEMA,
        name: DEFAULT_NETWORK.into(),
        id,
        driver: "bridge".into(),
        scope: "local".into(),
        created: store::now_rfc3339(),
        subnet: cfg.default_subnet,
        gateway: cfg.default_gateway(),
        ip_range: None,
        internal: false,
        attachable: false,
        enable_ipv6: false,
        labels: BTreeMap::new(),
        options,
        bridge: cfg.default_bridge.clone(),
        default: true,
        aux_addresses: BTreeMap::new(),
        ipam_options: None,
        user_subnet: true,
        user_gateway: true,
    }
}

/// The first `pool_prefix` block of the pool that overlaps nothing taken.
fn carve(cfg: &NetConfig, taken: &[Subnet]) -> Result<Subnet> {
    let step = 1u64 << (32 - u32::from(cfg.pool_prefix));
    let mut at = u64::from(cfg.pool.first());
    while at + step - 1 <= u64::from(cfg.pool.last()) {
        let cand = Subnet::new(Ipv4Addr::from(at as u32), cfg.pool_prefix).expect("valid prefix");
        if !taken.iter().any(|t| t.overlaps(&cand)) {
            return Ok(cand);
        }
        at += step;
    }
    Err(Error::Exhausted(format!(
        "could not find an available, non-overlapping IPv4 address pool among the defaults \
         to assign to the network (pool {} is full)",
        cfg.pool
    )))
}

/// Finds a network by full id, exact name, or unique id prefix (docker's
/// order).
pub fn find<'a>(all: &'a [Network], key: &str) -> Result<&'a Network> {
    if let Some(n) = all.iter().find(|n| n.id == key) {
        return Ok(n);
    }
    if let Some(n) = all.iter().find(|n| n.name == key) {
        return Ok(n);
    }
    let by_prefix: Vec<&Network> = if key.is_empty() {
        Vec::new()
    } else {
        all.iter().filter(|n| n.id.starts_with(key)).collect()
    };
    match by_prefix.as_slice() {
        [one] => Ok(one),
        [] => Err(Error::NotFound(format!("network {key} not found"))),
        _ => Err(Error::Conflict(format!(
            "network {key} is ambiguous ({} matches found based on ID prefix)",
            by_prefix.len()
        ))),
    }
}

/// `<root>/networks/<id>`.
pub fn dir(root: &Path, id: &str) -> PathBuf {
    store::networks_dir(root).join(id)
}

/// Every network stored under the root (without creating the default).
pub fn load_all(root: &Path) -> Result<Vec<Network>> {
    let mut out = Vec::new();
    for id in store::list_names(&store::networks_dir(root))? {
        if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        if let Some(mut n) = store::read_json::<Network>(&dir(root, &id).join("network.json"))? {
            if n.default {
                default_bridge_options(&mut n.options);
            }
            if n.schema != NETWORK_SCHEMA {
                return Err(Error::Invalid(format!(
                    "network {id}: unsupported schema version {}",
                    n.schema
                )));
            }
            out.push(n);
        }
    }
    out.sort_by(|a, b| (!a.default, &a.name).cmp(&(!b.default, &b.name)));
    Ok(out)
}

/// Persists a new network: builds its directory under a dot-name and
/// renames it into place. The caller holds the lock.
pub fn persist_new(root: &Path, n: &Network) -> Result<()> {
    let final_dir = dir(root, &n.id);
    let tmp = store::networks_dir(root).join(format!(".new-{}", n.id));
    let mk =
        |p: &Path| std::fs::create_dir_all(p).map_err(Error::io(format!("create {}", p.display())));
    mk(&tmp.join("ipam"))?;
    mk(&tmp.join("endpoints"))?;
    store::write_json(&tmp.join("network.json"), n)?;
    std::fs::rename(&tmp, &final_dir)
        .map_err(Error::io(format!("rename {} into place", tmp.display())))
}

/// Removes a network's directory: renamed to a dot-name first so readers
/// stop seeing it at once. The caller holds the lock.
pub fn delete(root: &Path, id: &str) -> Result<()> {
    let d = dir(root, id);
    let gone = store::networks_dir(root).join(format!(".rm-{id}"));
    match std::fs::rename(&d, &gone) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::Io(format!("remove {}", d.display()), e)),
    }
    std::fs::remove_dir_all(&gone).map_err(Error::io(format!("remove {}", gone.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> String {
        format!("{n:02x}").repeat(32)
    }

    fn req(name: &str) -> CreateNetwork {
        CreateNetwork {
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn carves_subnets_from_the_pool() {
        let cfg = NetConfig::default();
        let a = plan(&cfg, &req("a"), &[], id(1)).unwrap();
        assert_eq!(a.subnet.to_string(), "198.19.64.0/24");
        assert_eq!(a.gateway.to_string(), "198.19.64.1");
        assert_eq!(a.bridge, "br-010101010101");
        assert_eq!(a.driver, "bridge");
        assert_eq!(a.scope, "local");
        let b = plan(&cfg, &req("b"), std::slice::from_ref(&a), id(2)).unwrap();
        assert_eq!(b.subnet.to_string(), "198.19.65.0/24");
    }

    #[test]
    fn pool_exhaustion_is_an_error() {
        let cfg = NetConfig {
            pool: "198.19.64.0/23".parse().unwrap(),
            ..Default::default()
        };
        let a = plan(&cfg, &req("a"), &[], id(1)).unwrap();
        let b = plan(&cfg, &req("b"), std::slice::from_ref(&a), id(2)).unwrap();
        let e = plan(&cfg, &req("c"), &[a, b], id(3)).unwrap_err();
        assert!(matches!(e, Error::Exhausted(_)), "{e}");
    }

    #[test]
    fn explicit_subnets_are_validated() {
        let cfg = NetConfig::default();
        let mut r = req("x");
        r.subnet = Some("198.18.210.0/24".into());
        r.gateway = Some("198.18.210.254".into());
        r.ip_range = Some("198.18.210.128/25".into());
        let n = plan(&cfg, &r, &[], id(1)).unwrap();
        assert_eq!(n.gateway.to_string(), "198.18.210.254");
        assert_eq!(n.pool().to_string(), "198.18.210.128/25");

        let e = plan(&cfg, &r, std::slice::from_ref(&n), id(2)).unwrap_err();
        assert_eq!(e.to_string(), "network with name x already exists");

        let mut o = req("y");
        o.subnet = Some("198.18.210.128/26".into());
        let e = plan(&cfg, &o, std::slice::from_ref(&n), id(2)).unwrap_err();
        assert!(e.to_string().contains("Pool overlaps"), "{e}");
        // The default bridge's subnet is taken too.
        o.subnet = Some("198.18.0.0/16".into());
        assert!(plan(&cfg, &o, &[], id(2)).is_err());

        for (subnet, gw, range) in [
            ("198.18.211.0", None, None),
            ("fd00::/64", None, None),
            ("198.18.211.0/31", None, None),
            ("198.18.211.0/24", Some("198.18.212.1"), None),
            ("198.18.211.0/24", Some("198.18.211.255"), None),
            ("198.18.211.0/24", Some("nope"), None),
            ("198.18.211.0/24", None, Some("198.18.212.0/25")),
        ] {
            let mut b = req("z");
            b.subnet = Some(subnet.into());
            b.gateway = gw.map(Into::into);
            b.ip_range = range.map(Into::into);
            let e = plan(&cfg, &b, &[], id(3)).unwrap_err();
            assert_eq!(
                e.kind(),
                berth_types::ErrorKind::Invalid,
                "{subnet} {gw:?}: {e}"
            );
        }
    }

    #[test]
    fn names_options_and_reserved() {
        let cfg = NetConfig::default();
        // docker takes any name that is not blank
        for bad in ["", " ", "\t\n"] {
            let e = plan(&cfg, &req(bad), &[], id(1)).unwrap_err();
            assert_eq!(e.to_string(), format!("invalid name: {bad}"));
        }
        assert!(plan(&cfg, &req(&"x".repeat(MAX_NAME + 1)), &[], id(1)).is_err());
        for good in [
            "-x",
            "a b",
            "a/b",
            "ü",
            "a\nb",
            "a\0b",
            "../..",
            &"y".repeat(MAX_NAME),
        ] {
            let n = plan(&cfg, &req(good), &[], id(1)).unwrap();
            assert_eq!(n.name, good);
            // the interface is berth's own, whatever the name
            assert_eq!(n.bridge, "br-010101010101");
        }
        for reserved in ["bridge", "host", "none"] {
            let e = plan(&cfg, &req(reserved), &[], id(1)).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("network with name {reserved} already exists")
            );
        }
        let mut r = req("named");
        r.options.insert(OPT_BRIDGE_NAME.into(), "btest0".into());
        let n = plan(&cfg, &r, &[], id(1)).unwrap();
        assert_eq!(n.bridge, "btest0");
        let mut r2 = req("named2");
        r2.options.insert(OPT_BRIDGE_NAME.into(), "btest0".into());
        assert!(plan(&cfg, &r2, &[n], id(2)).is_err());
        r2.options.insert(OPT_BRIDGE_NAME.into(), "berth0".into());
        assert!(plan(&cfg, &r2, &[], id(2)).is_err());
        r2.options
            .insert(OPT_BRIDGE_NAME.into(), "way-too-long-name".into());
        assert!(plan(&cfg, &r2, &[], id(2)).is_err());
        let mut d = req("d");
        d.driver = "macvlan".into();
        assert!(plan(&cfg, &d, &[], id(2)).is_err());
    }

    #[test]
    fn driver_options_are_checked_and_kept_as_given() {
        let cfg = NetConfig::default();
        let with = |pairs: &[(&str, &str)]| {
            let mut r = req("o");
            for (k, v) in pairs {
                r.options.insert((*k).into(), (*v).into());
            }
            plan(&cfg, &r, &[], id(1))
        };
        // nothing added to what was asked for
        assert!(with(&[]).unwrap().options.is_empty());
        let n = with(&[(OPT_MTU, "1400"), ("foo", "bar")]).unwrap();
        assert_eq!(n.mtu(), Some(1400));
        assert_eq!(n.options.len(), 2);
        assert_eq!(with(&[(OPT_MTU, "0")]).unwrap().mtu(), None);
        for ok in [
            (OPT_ICC, "true"),
            (OPT_HOST_BINDING, "0.0.0.0"),
            (OPT_MASQUERADE, "false"),
            (OPT_DEFAULT_BRIDGE, "false"),
        ] {
            assert!(with(&[ok]).is_ok(), "{ok:?}");
        }
        for (opt, kind) in [
            ((OPT_MTU, "abc"), berth_types::ErrorKind::Invalid),
            ((OPT_MTU, "-1"), berth_types::ErrorKind::Invalid),
            ((OPT_MTU, "67"), berth_types::ErrorKind::Invalid),
            ((OPT_MTU, "65536"), berth_types::ErrorKind::Invalid),
            (
                (OPT_MTU, "99999999999999999999999"),
                berth_types::ErrorKind::Invalid,
            ),
            ((OPT_ICC, "maybe"), berth_types::ErrorKind::Invalid),
            ((OPT_ICC, "false"), berth_types::ErrorKind::NotSupported),
            (
                (OPT_HOST_BINDING, "127.0.0.1"),
                berth_types::ErrorKind::NotSupported,
            ),
            (
                (OPT_DEFAULT_BRIDGE, "true"),
                berth_types::ErrorKind::NotSupported,
            ),
            (
                ("com.docker.network.container_iface_prefix", "x"),
                berth_types::ErrorKind::NotSupported,
            ),
        ] {
            let e = with(&[opt]).unwrap_err();
            assert_eq!(e.kind(), kind, "{opt:?}: {e}");
        }
        assert_eq!(
            with(&[(OPT_ICC, "false")]).unwrap_err().to_string(),
            format!("not supported yet: network option {OPT_ICC}=false")
        );
    }

    #[test]
    fn asked_for_subnets_and_gateways_are_remembered() {
        let cfg = NetConfig::default();
        let n = plan(&cfg, &req("auto"), &[], id(1)).unwrap();
        assert!(!n.user_subnet && !n.user_gateway);
        let mut r = req("sub");
        r.subnet = Some("198.18.213.0/24".into());
        let n = plan(&cfg, &r, &[], id(2)).unwrap();
        assert!(n.user_subnet && !n.user_gateway);
        r.gateway = Some("198.18.213.9".into());
        let n = plan(&cfg, &r, &[], id(2)).unwrap();
        assert!(n.user_subnet && n.user_gateway);
        // records from before the fields: asked for
        let mut j = serde_json::to_value(&n).unwrap();
        let o = j.as_object_mut().unwrap();
        o.remove("user_subnet");
        o.remove("user_gateway");
        let old: Network = serde_json::from_value(j).unwrap();
        assert!(old.user_subnet && old.user_gateway);
    }

    #[test]
    fn lookup_by_id_name_and_prefix() {
        let cfg = NetConfig::default();
        let a = plan(&cfg, &req("n1"), &[], "ab".repeat(32)).unwrap();
        let b = plan(&cfg, &req("n2"), std::slice::from_ref(&a), "ac".repeat(32)).unwrap();
        let all = vec![a, b];
        assert_eq!(find(&all, "n1").unwrap().name, "n1");
        assert_eq!(find(&all, &"ac".repeat(32)).unwrap().name, "n2");
        assert_eq!(find(&all, "abab").unwrap().name, "n1");
        assert!(matches!(find(&all, "a").unwrap_err(), Error::Conflict(_)));
        assert!(matches!(find(&all, "zz").unwrap_err(), Error::NotFound(_)));
        assert_eq!(
            find(&all, "n3").unwrap_err().to_string(),
            "network n3 not found"
        );
        assert!(find(&all, "").is_err());
    }

    #[test]
    fn masquerade_option() {
        let cfg = NetConfig::default();
        let mut r = req("m");
        assert!(plan(&cfg, &r, &[], id(1)).unwrap().masquerade());
        r.options.insert(OPT_MASQUERADE.into(), "false".into());
        assert!(!plan(&cfg, &r, &[], id(1)).unwrap().masquerade());
        r.options.clear();
        r.internal = true;
        assert!(!plan(&cfg, &r, &[], id(1)).unwrap().masquerade());
        let d = default_network(&cfg, id(9));
        assert!(d.default && d.masquerade());
        assert_eq!(d.bridge, "berth0");
        assert_eq!(d.options[OPT_HOST_BINDING], "0.0.0.0");
        assert_eq!(d.mtu(), Some(1500));
    }
}
