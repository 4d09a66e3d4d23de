//! `-p` / `--publish`, `--expose` and the `80/tcp` keys of the API.

use berth_engine::config::{PortBinding, PortProto, Proto};

fn proto(p: &str) -> Result<Proto, String> {
    match p.to_ascii_lowercase().as_str() {
        "tcp" => Ok(Proto::Tcp),
        "udp" => Ok(Proto::Udp),
        "sctp" => Err("not supported yet: sctp ports".into()),
        other => Err(format!("invalid proto: {other}")),
    }
}

fn port_range(s: &str, what: &str, spec: &str) -> Result<(u16, u16), String> {
    let bad = || format!("invalid {what} port in \"{spec}\"");
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u16 = a.parse().map_err(|_| bad())?;
    let b: u16 = b.parse().map_err(|_| bad())?;
    if (a == 0 && what == "container") || b < a {
        return Err(bad());
    }
    Ok((a, b))
}

/// An API port key (`80/tcp`, `53/udp`, `80`), or an `--expose` entry.
pub fn parse_port_key(key: &str) -> Result<PortProto, String> {
    let (port, p) = key.split_once('/').unwrap_or((key, "tcp"));
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("invalid port specification: \"{key}\""))?;
    Ok(PortProto {
        port,
        proto: proto(p)?,
    })
}

/// `--expose PORT[-PORT][/PROTO]`.
pub fn parse_expose(spec: &str) -> Result<Vec<PortProto>, String> {
    let (ports, p) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let (a, b) = port_range(ports, "container", spec)?;
    let p = proto(p)?;
    Ok((a..=b).map(|port| PortProto { port, proto: p }).collect())
}

/// `-p [IP:][HOST:]CONTAINER[/PROTO]` as the docker CLI reads it (ranges
/// give one binding per port; IPv6 addresses in brackets).
pub fn parse_publish(spec: &str) -> Result<Vec<PortBinding>, String> {
    let (addr, p) = match spec.rsplit_once('/') {
        Some((a, p)) => (a, p),
        None => (spec, "tcp"),
    };
    let p = proto(p)?;
    // [v6]:host:ctr
    let (ip, rest) = if let Some(r) = addr.strip_prefix('[') {
        let (ip, rest) = r
            .split_once("]:")
            .ok_or_else(|| format!("invalid port specification: \"{spec}\""))?;
        (ip, rest)
    } else {
        match addr.matches(':').count() {
            0 | 1 => ("", addr),
            2 => addr.split_once(':').unwrap_or(("", addr)),
            _ => return Err(format!("invalid port specification: \"{spec}\"")),
        }
    };
    let (host, ctr) = match rest.split_once(':') {
        Some((h, c)) => (h, c),
        None => ("", rest),
    };
    let host_ip = if ip.is_empty() {
        None
    } else {
        Some(
            ip.parse::<std::net::IpAddr>()
                .map_err(|_| format!("invalid IP address: {ip}"))?,
        )
    };
    let (c0, c1) = port_range(ctr, "container", spec)?;
    let (h0, h1) = if host.is_empty() {
        (0, 0)
    } else {
        port_range(host, "host", spec)?
    };
    if h0 != 0 && (h1 - h0) != (c1 - c0) && h0 != h1 {
        return Err(format!(
            "invalid ranges specified for container and host Ports: {ctr} and {host}"
        ));
    }
    Ok((c0..=c1)
        .enumerate()
        .map(|(i, c)| PortBinding {
            container_port: c,
            proto: p,
            host_ip,
            host_port: if h0 == 0 {
                0
            } else if h0 == h1 {
                h0
            } else {
                h0 + i as u16
            },
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_flags_parse_like_docker() {
        let p = parse_publish("8080:80").unwrap();
        assert_eq!(
            p,
            [PortBinding {
                container_port: 80,
                proto: Proto::Tcp,
                host_ip: None,
                host_port: 8080
            }]
        );
        let p = parse_publish("127.0.0.1:5000-5001:6000-6001/udp").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[1].host_port, p[1].container_port, p[1].proto),
            (5001, 6001, Proto::Udp)
        );
        assert_eq!(parse_publish("80").unwrap()[0].host_port, 0);
        assert_eq!(
            parse_publish("[::1]:80:80").unwrap()[0].host_ip,
            Some("::1".parse().unwrap())
        );
        assert!(
            parse_publish("80/sctp")
                .unwrap_err()
                .contains("not supported yet")
        );
        assert!(parse_publish("x:80").is_err());
        assert!(parse_publish("1.2.3:80:80").is_err());
        assert!(parse_publish("1000-1002:80-81").is_err());
        assert!(parse_publish("é:80").is_err());
        assert_eq!(parse_expose("8000-8002").unwrap().len(), 3);
        assert_eq!(parse_port_key("53/udp").unwrap().proto, Proto::Udp);
        assert!(parse_port_key("0/tcp").is_err());
    }
}
