//! Published ports: requests, bindings, conflicts and host-port choice.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The first and last host port `-P` / host port 0 may pick (Linux's
/// default ephemeral range, as docker uses).
pub const EPHEMERAL: (u16, u16) = (32768, 60999);

/// A transport protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

impl std::str::FromStr for Proto {
    type Err = Error;
    fn from_str(s: &str) -> Result<Proto> {
        match s {
            "tcp" | "" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            other => Err(Error::Invalid(format!("invalid proto: {other}"))),
        }
    }
}

/// One `-p` entry (ranges are expanded by the caller into one per port).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRequest {
    /// Host address to publish on; `None` or 0.0.0.0 means every address.
    pub host_ip: Option<Ipv4Addr>,
    /// Host port; 0 picks a free one from [`EPHEMERAL`] (`-P`, `-p 80`).
    pub host_port: u16,
    /// The container's port.
    pub container_port: u16,
    /// tcp or udp.
    pub proto: Proto,
}

/// A published port as programmed: the host side fully decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortBinding {
    /// Host address; 0.0.0.0 means every local address.
    pub host_ip: Ipv4Addr,
    /// Host port.
    pub host_port: u16,
    /// The container's port.
    pub container_port: u16,
    /// tcp or udp.
    pub proto: Proto,
}

impl PortBinding {
    /// Whether two bindings would catch the same packets.
    pub fn collides(&self, other: &PortBinding) -> bool {
        self.proto == other.proto
            && self.host_port == other.host_port
            && (self.host_ip == other.host_ip
                || self.host_ip.is_unspecified()
                || other.host_ip.is_unspecified())
    }
}

/// Decides the host side of `requests` for a container at `container_ip`.
///
/// `existing` are the bindings every endpoint of the root already holds;
/// `host_free(proto, ip, port)` tells whether nothing on the host is bound
/// there (see [`host_port_free`]; tests pass a fake).
pub fn resolve(
    requests: &[PortRequest],
    existing: &[PortBinding],
    container_ip: Ipv4Addr,
    host_free: &dyn Fn(Proto, Ipv4Addr, u16) -> bool,
    start: u16,
) -> Result<Vec<PortBinding>> {
    let mut out: Vec<PortBinding> = Vec::new();
    for r in requests {
        if r.container_port == 0 {
            return Err(Error::Invalid("invalid container port: 0".into()));
        }
        let host_ip = r.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        let taken = |b: &PortBinding| {
            existing.iter().any(|e| e.collides(b)) || out.iter().any(|e| e.collides(b))
        };
        let binding = if r.host_port != 0 {
            let b = PortBinding {
                host_ip,
                host_port: r.host_port,
                container_port: r.container_port,
                proto: r.proto,
            };
            if taken(&b) {
                return Err(Error::Conflict(format!(
                    "Bind for {host_ip}:{} failed: port is already allocated",
                    r.host_port
                )));
            }
            if !host_free(r.proto, host_ip, r.host_port) {
                return Err(Error::Conflict(format!(
                    "failed to bind host port for {host_ip}:{}:{container_ip}:{}/{}: \
                     address already in use",
                    r.host_port, r.container_port, r.proto
                )));
            }
            b
        } else {
            let (lo, hi) = EPHEMERAL;
            let span = u32::from(hi - lo) + 1;
            let first = u32::from(start.clamp(lo, hi) - lo);
            let mut found = None;
            for k in 0..span {
                let port = lo + ((first + k) % span) as u16;
                let b = PortBinding {
                    host_ip,
                    host_port: port,
                    container_port: r.container_port,
                    proto: r.proto,
                };
                if !taken(&b) && host_free(r.proto, host_ip, port) {
                    found = Some(b);
                    break;
                }
            }
            found.ok_or_else(|| {
                Error::Exhausted(format!(
                    "no free host port in {lo}-{hi} for {host_ip}/{}",
                    r.proto
                ))
            })?
        };
        out.push(binding);
    }
    Ok(out)
}

/// Whether a socket can bind `ip:port` on the host right now (nothing else
/// listens there). Run in the host's network namespace.
pub fn host_port_free(proto: Proto, ip: Ipv4Addr, port: u16) -> bool {
    let addr = SocketAddrV4::new(ip, port);
    match proto {
        Proto::Tcp => TcpListener::bind(addr).is_ok(),
        Proto::Udp => UdpSocket::bind(addr).is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(ip: Option<&str>, hp: u16, cp: u16, proto: Proto) -> PortRequest {
        PortRequest {
            host_ip: ip.map(|s| s.parse().unwrap()),
            host_port: hp,
            container_port: cp,
            proto,
        }
    }
    const CIP: Ipv4Addr = Ipv4Addr::new(198, 18, 230, 2);

    #[test]
    fn explicit_ports_and_conflicts() {
        let free = |_: Proto, _: Ipv4Addr, _: u16| true;
        let b = resolve(&[req(None, 8080, 80, Proto::Tcp)], &[], CIP, &free, 40000).unwrap();
        assert_eq!(b[0].host_ip, Ipv4Addr::UNSPECIFIED);
        // Same port, same proto on any address: docker's message.
        let e = resolve(&[req(None, 8080, 81, Proto::Tcp)], &b, CIP, &free, 40000).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Bind for 0.0.0.0:8080 failed: port is already allocated"
        );
        let e = resolve(
            &[req(Some("127.0.0.1"), 8080, 81, Proto::Tcp)],
            &b,
            CIP,
            &free,
            1,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Bind for 127.0.0.1:8080 failed: port is already allocated"
        );
        // Other proto or other specific address: fine.
        resolve(&[req(None, 8080, 80, Proto::Udp)], &b, CIP, &free, 1).unwrap();
        let lo = resolve(
            &[req(Some("127.0.0.1"), 9090, 80, Proto::Tcp)],
            &[],
            CIP,
            &free,
            1,
        )
        .unwrap();
        resolve(
            &[req(Some("127.0.0.2"), 9090, 80, Proto::Tcp)],
            &lo,
            CIP,
            &free,
            1,
        )
        .unwrap();
        // Within one request list, too.
        let e = resolve(
            &[
                req(None, 7070, 80, Proto::Tcp),
                req(None, 7070, 81, Proto::Tcp),
            ],
            &[],
            CIP,
            &free,
            1,
        )
        .unwrap_err();
        assert!(e.to_string().contains("already allocated"));
        // Something else on the host holds the port.
        let busy = |_: Proto, _: Ipv4Addr, p: u16| p != 6060;
        let e = resolve(&[req(None, 6060, 80, Proto::Tcp)], &[], CIP, &busy, 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed to bind host port for 0.0.0.0:6060:198.18.230.2:80/tcp: address already in use"
        );
        assert!(resolve(&[req(None, 1, 0, Proto::Tcp)], &[], CIP, &free, 1).is_err());
    }

    #[test]
    fn ephemeral_ports_skip_taken_and_bound() {
        let busy = |_: Proto, _: Ipv4Addr, p: u16| p != 40001;
        let existing = [PortBinding {
            host_ip: Ipv4Addr::UNSPECIFIED,
            host_port: 40000,
            container_port: 1,
            proto: Proto::Tcp,
        }];
        let b = resolve(
            &[req(None, 0, 80, Proto::Tcp), req(None, 0, 81, Proto::Tcp)],
            &existing,
            CIP,
            &busy,
            40000,
        )
        .unwrap();
        assert_eq!(b[0].host_port, 40002);
        assert_eq!(b[1].host_port, 40003);
        // Wraps around the end of the range.
        let b = resolve(
            &[req(None, 0, 80, Proto::Udp)],
            &[],
            CIP,
            &|_, _, p| p == 60999,
            60999,
        )
        .unwrap();
        assert_eq!(b[0].host_port, 60999);
        let b = resolve(
            &[req(None, 0, 80, Proto::Udp)],
            &[],
            CIP,
            &|_, _, p| p < 33000,
            60000,
        )
        .unwrap();
        assert_eq!(b[0].host_port, 32768);
        let e = resolve(
            &[req(None, 0, 80, Proto::Udp)],
            &[],
            CIP,
            &|_, _, _| false,
            1,
        )
        .unwrap_err();
        assert!(matches!(e, Error::Exhausted(_)));
    }

    #[test]
    fn real_host_probe() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(!host_port_free(Proto::Tcp, Ipv4Addr::LOCALHOST, port));
        drop(l);
        assert!(host_port_free(Proto::Tcp, Ipv4Addr::LOCALHOST, port));
    }
}
