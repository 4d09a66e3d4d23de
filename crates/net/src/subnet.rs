//! IPv4 CIDR subnets: parsing, containment, overlap, host iteration.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::error::{Error, Result};

/// An IPv4 subnet in CIDR form, always normalised to its network address
/// (`198.18.0.7/24` parses to `198.18.0.0/24`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subnet {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Subnet {
    /// The subnet containing `addr` with `prefix` bits (0..=32).
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Subnet> {
        if prefix > 32 {
            return Err(Error::Invalid(format!(
                "invalid CIDR address: {addr}/{prefix}: prefix length must be at most 32"
            )));
        }
        Ok(Subnet {
            addr: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        })
    }

    /// The network address.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The network mask as an integer.
    pub fn mask(&self) -> u32 {
        mask(self.prefix)
    }

    /// The first address (the network address).
    pub fn first(&self) -> u32 {
        u32::from(self.addr)
    }

    /// The last address (the broadcast address).
    pub fn last(&self) -> u32 {
        self.first() | !self.mask()
    }

    /// The broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.last())
    }

    /// Number of addresses in the subnet.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    /// Whether `ip` lies inside the subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == self.first()
    }

    /// Whether `other` lies entirely inside this subnet.
    pub fn contains_subnet(&self, other: &Subnet) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }

    /// Whether the two subnets share any address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.contains(other.addr) || other.contains(self.addr)
    }

    /// Whether `ip` may be given to a host: inside the subnet and neither
    /// the network nor the broadcast address (for prefixes below /31).
    pub fn is_host(&self, ip: Ipv4Addr) -> bool {
        if !self.contains(ip) {
            return false;
        }
        if self.prefix >= 31 {
            return true;
        }
        let v = u32::from(ip);
        v != self.first() && v != self.last()
    }

    /// The first host address (docker's default gateway).
    pub fn first_host(&self) -> Ipv4Addr {
        if self.prefix >= 31 {
            self.addr
        } else {
            Ipv4Addr::from(self.first() + 1)
        }
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = Error;

    fn from_str(s: &str) -> Result<Subnet> {
        let bad = || Error::Invalid(format!("invalid CIDR address: {s}"));
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        if p.is_empty() || p.len() > 2 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        Subnet::new(addr, prefix)
    }
}

impl serde::Serialize for Subnet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Subnet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Subnet, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let s: Subnet = "198.18.0.7/24".parse().unwrap();
        assert_eq!(s.to_string(), "198.18.0.0/24");
        assert_eq!(s.broadcast(), Ipv4Addr::new(198, 18, 0, 255));
        assert_eq!(s.first_host(), Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(s.size(), 256);
        for bad in [
            "198.18.0.0",
            "198.18.0.0/33",
            "198.18.0/24",
            "fd00::/64",
            "x/24",
            "198.18.0.0/",
            "198.18.0.0/+4",
        ] {
            assert!(bad.parse::<Subnet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn containment_and_overlap() {
        let a: Subnet = "198.19.64.0/18".parse().unwrap();
        let b: Subnet = "198.19.65.0/24".parse().unwrap();
        let c: Subnet = "198.18.0.0/24".parse().unwrap();
        assert!(a.contains_subnet(&b));
        assert!(!b.contains_subnet(&a));
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
        assert!(b.is_host(Ipv4Addr::new(198, 19, 65, 2)));
        assert!(!b.is_host(Ipv4Addr::new(198, 19, 65, 0)));
        assert!(!b.is_host(Ipv4Addr::new(198, 19, 65, 255)));
        assert!(!b.is_host(Ipv4Addr::new(198, 19, 66, 1)));
    }
}
