//! The NodePort range (`--service-node-port-range`, `30000-32767` by
//! default) and kube's split between a lower band for static requests and
//! an upper band dynamic allocation prefers (KEP-3668).

use std::fmt;
use std::str::FromStr;

/// A NodePort range, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// The first port.
    pub base: u16,
    /// How many ports.
    pub size: u16,
}

impl Default for PortRange {
    fn default() -> Self {
        PortRange {
            base: 30000,
            size: 2768,
        }
    }
}

/// Why a port could not be allocated (kube's portallocator errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// The port is outside the range.
    #[error("provided port is not in the valid range. The range of valid ports is {0}")]
    NotInRange(PortRange),
    /// Another Service holds it.
    #[error("provided port is already allocated")]
    Allocated,
    /// No port is free.
    #[error("range is full")]
    Full,
}

impl FromStr for PortRange {
    type Err = String;

    /// `30000-32767`, `30000+2768` (base and size) or one port, as kube
    /// parses it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid port range: {s:?} (use e.g. 30000-32767)");
        let num = |t: &str| t.trim().parse::<u32>().map_err(|_| bad());
        let (low, high) = if let Some((a, b)) = s.split_once('-') {
            (num(a)?, num(b)?)
        } else if let Some((a, b)) = s.split_once('+') {
            let a = num(a)?;
            let n = num(b)?;
            if n == 0 {
                return Err(bad());
            }
            (a, a + n - 1)
        } else {
            let a = num(s)?;
            (a, a)
        };
        if low == 0 || high > 65535 || high < low {
            return Err(bad());
        }
        Ok(PortRange {
            base: u16::try_from(low).map_err(|_| bad())?,
            size: u16::try_from(high - low + 1).map_err(|_| bad())?,
        })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.base, self.last())
    }
}

impl PortRange {
    /// The last port.
    pub fn last(&self) -> u16 {
        self.base.saturating_add(self.size.saturating_sub(1))
    }

    /// Whether `port` is in the range.
    pub fn contains(&self, port: i64) -> bool {
        port >= i64::from(self.base) && port <= i64::from(self.last())
    }

    /// Checks a requested port against the range.
    pub fn check(&self, port: i64) -> Result<u16, PortError> {
        if self.contains(port) {
            u16::try_from(port).map_err(|_| PortError::NotInRange(*self))
        } else {
            Err(PortError::NotInRange(*self))
        }
    }

    /// kube's static band: `min(max(16, size/32), 128)` ports from the
    /// base (0 when the range holds 16 ports or fewer).
    pub fn static_band(&self) -> u16 {
        if self.size <= 16 {
            return 0;
        }
        (self.size / 32).clamp(16, 128)
    }

    /// How many ports the upper (dynamic) band holds.
    pub fn upper_len(&self) -> u16 {
        self.size - self.static_band()
    }

    /// The order dynamic allocation tries ports in: the upper band from
    /// `upper_start` (wrapping), then the lower band from `lower_start`.
    pub fn dynamic_order(
        &self,
        upper_start: u16,
        lower_start: u16,
    ) -> impl Iterator<Item = u16> + use<> {
        let band = u32::from(self.static_band());
        let upper = u32::from(self.size) - band;
        let base = u32::from(self.base);
        let (us, ls) = (u32::from(upper_start), u32::from(lower_start));
        let up = (0..upper).map(move |i| base + band + (us + i) % upper.max(1));
        let low = (0..band).map(move |i| base + (ls + i) % band.max(1));
        up.chain(low).map(|p| u16::try_from(p).unwrap_or(u16::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (input, parsed as base, size and printed form).
    type Case = (&'static str, Option<(u16, u16, &'static str)>);

    #[test]
    fn parses_and_prints() {
        let cases: &[Case] = &[
            ("30000-32767", Some((30000, 2768, "30000-32767"))),
            ("30000+2768", Some((30000, 2768, "30000-32767"))),
            ("31000", Some((31000, 1, "31000-31000"))),
            ("20000-20010", Some((20000, 11, "20000-20010"))),
            ("32767-30000", None),
            ("0-10", None),
            ("30000-70000", None),
            ("a-b", None),
        ];
        for (input, want) in cases {
            let got = input
                .parse::<PortRange>()
                .ok()
                .map(|r| (r.base, r.size, r.to_string()));
            assert_eq!(got, want.map(|(b, s, t)| (b, s, t.to_owned())), "{input}");
        }
    }

    #[test]
    fn bands() {
        let cases = [
            ("30000-32767", 86),
            ("30000-30015", 0),
            ("30000-30016", 16),
            ("20000-29999", 128),
        ];
        for (range, band) in cases {
            let r: PortRange = range.parse().unwrap();
            assert_eq!(r.static_band(), band, "{range}");
        }
        let r = PortRange::default();
        let order: Vec<u16> = r.dynamic_order(0, 0).collect();
        assert_eq!(order.len(), 2768);
        assert_eq!(order[0], 30086);
        assert_eq!(order[2768 - 86 - 1], 32767);
        assert_eq!(order[2768 - 86], 30000);
        assert_eq!(order[2767], 30085);
        let mut all: Vec<u16> = r.dynamic_order(1000, 40).collect();
        assert_eq!(all[0], 31086);
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 2768);
    }

    #[test]
    fn errors_read_as_kube_s() {
        let r = PortRange::default();
        let cases: &[(i64, Result<u16, &str>)] = &[
            (30080, Ok(30080)),
            (30000, Ok(30000)),
            (32767, Ok(32767)),
            (
                29999,
                Err(
                    "provided port is not in the valid range. The range of valid ports is 30000-32767",
                ),
            ),
            (
                32768,
                Err(
                    "provided port is not in the valid range. The range of valid ports is 30000-32767",
                ),
            ),
        ];
        for (port, want) in cases {
            let got = r.check(*port).map_err(|e| e.to_string());
            assert_eq!(got, want.map_err(str::to_owned), "{port}");
        }
        assert_eq!(
            PortError::Allocated.to_string(),
            "provided port is already allocated"
        );
    }
}
