//! The Service IP range (`--service-cluster-ip-range`): an IPv4 CIDR, its
//! usable addresses (neither the network nor the broadcast address) and
//! kube's split between a lower band for static requests and an upper
//! band that dynamic allocation prefers (KEP-3070).

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// The default Service range.
pub const DEFAULT_SERVICE_CIDR: &str = "198.19.0.0/20";

/// An IPv4 Service range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceCidr {
    network: Ipv4Addr,
    bits: u8,
}

impl Default for ServiceCidr {
    fn default() -> Self {
        ServiceCidr {
            network: Ipv4Addr::new(198, 19, 0, 0),
            bits: 20,
        }
    }
}

/// Why an address could not be allocated (kube's ipallocator errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpError {
    /// The address is outside the range.
    #[error("the provided IP ({ip}) is not in the valid range. The range of valid IPs is {range}")]
    NotInRange {
        /// The requested address.
        ip: Ipv4Addr,
        /// The range.
        range: ServiceCidr,
    },
    /// Another object holds it.
    #[error("provided IP is already allocated")]
    Allocated,
    /// No address is free.
    #[error("range is full")]
    Full,
}

impl FromStr for ServiceCidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid CIDR address: {s}");
        let (addr, bits) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| {
            if addr.contains(':') {
                format!("{s}: only IPv4 Service ranges are supported")
            } else {
                bad()
            }
        })?;
        let bits: u8 = bits.parse().map_err(|_| bad())?;
        if bits > 32 {
            return Err(bad());
        }
        if bits > 30 {
            return Err(format!(
                "{s}: the Service range must hold at least 2 addresses (a /30 or larger)"
            ));
        }
        let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
        Ok(ServiceCidr {
            network: Ipv4Addr::from(u32::from(addr) & mask),
            bits,
        })
    }
}

impl fmt::Display for ServiceCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.bits)
    }
}

impl ServiceCidr {
    /// How many addresses the CIDR spans (network and broadcast included).
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.bits))
    }

    fn base(&self) -> u32 {
        u32::from(self.network)
    }

    /// The first usable address (the `kubernetes` Service's).
    pub fn first(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base() + 1)
    }

    /// The last usable address (the one before the broadcast address).
    pub fn last(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base() + u32::try_from(self.size() - 2).unwrap_or(u32::MAX - 1))
    }

    /// The network address (what a dry run's dynamic allocation shows, as
    /// kube's does).
    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    /// Whether `ip` is a usable address of the range.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        ip >= self.first() && ip <= self.last()
    }

    /// Checks a requested address against the range.
    pub fn check(&self, ip: Ipv4Addr) -> Result<(), IpError> {
        if self.contains(ip) {
            Ok(())
        } else {
            Err(IpError::NotInRange { ip, range: *self })
        }
    }

    /// kube's static band: `min(max(16, size/16), 256)` addresses from the
    /// first usable one (0 when the range spans 16 addresses or fewer).
    pub fn static_band(&self) -> u64 {
        let size = self.size();
        if size <= 16 {
            return 0;
        }
        (size / 16).clamp(16, 256)
    }

    /// The order dynamic allocation tries addresses in: the upper band from
    /// `upper_start` (an offset into it, wrapping), then the lower (static)
    /// band from `lower_start`.
    pub fn dynamic_order(
        &self,
        upper_start: u64,
        lower_start: u64,
    ) -> impl Iterator<Item = Ipv4Addr> + use<> {
        let usable = self.size() - 2;
        let band = self.static_band().min(usable);
        let upper = usable - band;
        let first = u64::from(self.base()) + 1;
        let upper_first = first + band;
        let up = (0..upper).map(move |i| upper_first + (upper_start + i) % upper.max(1));
        let low = (0..band).map(move |i| first + (lower_start + i) % band.max(1));
        up.chain(low)
            .map(|n| Ipv4Addr::from(u32::try_from(n).unwrap_or(u32::MAX)))
    }

    /// How many addresses the upper (dynamic) band holds.
    pub fn upper_len(&self) -> u64 {
        (self.size() - 2) - self.static_band().min(self.size() - 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("198.19.0.0/20", Ok("198.19.0.0/20")),
            ("198.19.3.7/20", Ok("198.19.0.0/20")),
            ("198.18.0.0/15", Ok("198.18.0.0/15")),
            ("198.19.0.0", Err("invalid CIDR address: 198.19.0.0")),
            ("198.19.0.0/33", Err("invalid CIDR address: 198.19.0.0/33")),
            ("x/20", Err("invalid CIDR address: x/20")),
            (
                "fd00::/108",
                Err("fd00::/108: only IPv4 Service ranges are supported"),
            ),
        ];
        for (input, want) in cases {
            let got = input.parse::<ServiceCidr>().map(|c| c.to_string());
            assert_eq!(
                got.as_deref().map_err(String::as_str),
                want.map_err(|e| e),
                "{input}"
            );
        }
    }

    #[test]
    fn bounds_and_bands() {
        // (cidr, first, last, static band)
        let cases = [
            ("198.19.0.0/20", "198.19.0.1", "198.19.15.254", 256),
            ("198.19.0.0/24", "198.19.0.1", "198.19.0.254", 16),
            ("198.19.0.0/28", "198.19.0.1", "198.19.0.14", 0),
            ("198.19.0.0/27", "198.19.0.1", "198.19.0.30", 16),
            ("198.18.0.0/16", "198.18.0.1", "198.18.255.254", 256),
        ];
        for (cidr, first, last, band) in cases {
            let c: ServiceCidr = cidr.parse().unwrap();
            assert_eq!(c.first().to_string(), first, "{cidr}");
            assert_eq!(c.last().to_string(), last, "{cidr}");
            assert_eq!(c.static_band(), band, "{cidr}");
        }
    }

    #[test]
    fn dynamic_order_prefers_the_upper_band() {
        let c: ServiceCidr = "198.19.0.0/20".parse().unwrap();
        let order: Vec<Ipv4Addr> = c.dynamic_order(0, 0).collect();
        assert_eq!(order.len(), 4094);
        assert_eq!(order[0].to_string(), "198.19.1.1");
        assert_eq!(order[4094 - 256 - 1].to_string(), "198.19.15.254");
        assert_eq!(order[4094 - 256].to_string(), "198.19.0.1");
        assert_eq!(order[4093].to_string(), "198.19.1.0");
        // A start offset wraps within its band.
        let order: Vec<Ipv4Addr> = c.dynamic_order(c.upper_len() - 1, 255).collect();
        assert_eq!(order[0].to_string(), "198.19.15.254");
        assert_eq!(order[1].to_string(), "198.19.1.1");
        assert_eq!(order[4094 - 256].to_string(), "198.19.1.0");
        assert_eq!(order[4094 - 255].to_string(), "198.19.0.1");
        // Every address once.
        let mut all: Vec<Ipv4Addr> = c.dynamic_order(17, 3).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 4094);
    }

    #[test]
    fn errors_read_as_kube_s() {
        let c = ServiceCidr::default();
        assert_eq!(
            c.check("198.18.0.5".parse().unwrap())
                .unwrap_err()
                .to_string(),
            "the provided IP (198.18.0.5) is not in the valid range. The range of valid IPs is 198.19.0.0/20"
        );
        for ip in ["198.19.0.0", "198.19.15.255", "198.19.16.1"] {
            assert!(c.check(ip.parse().unwrap()).is_err(), "{ip}");
        }
        for ip in ["198.19.0.1", "198.19.15.254", "198.19.7.7"] {
            assert!(c.check(ip.parse().unwrap()).is_ok(), "{ip}");
        }
        assert_eq!(
            IpError::Allocated.to_string(),
            "provided IP is already allocated"
        );
        assert_eq!(IpError::Full.to_string(), "range is full");
    }
}
