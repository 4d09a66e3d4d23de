//! `--add-host NAME:ADDR` / `HostConfig.ExtraHosts`.

use berth_engine::config::{HostAddr, HostEntry};

/// `NAME:IP`, `NAME=IP` or `NAME:host-gateway` (IPv6 addresses hold
/// colons themselves: the name ends at the first one).
pub fn parse_add_host(h: &str) -> Result<HostEntry, String> {
    let (name, ip) = h
        .split_once('=')
        .or_else(|| h.split_once(':'))
        .ok_or_else(|| format!("bad format for add-host: {h:?}"))?;
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(format!("bad format for add-host: {h:?}"));
    }
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    let addr = if ip == "host-gateway" {
        HostAddr::HostGateway
    } else {
        HostAddr::Ip(
            ip.parse()
                .map_err(|_| format!("invalid IP address in add-host: {ip:?}"))?,
        )
    };
    Ok(HostEntry {
        name: name.to_owned(),
        addr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_host() {
        assert_eq!(
            parse_add_host("db:198.18.7.7").unwrap().addr,
            HostAddr::Ip("198.18.7.7".parse().unwrap())
        );
        assert_eq!(
            parse_add_host("gw=host-gateway").unwrap().addr,
            HostAddr::HostGateway
        );
        assert!(parse_add_host("v6:fe80::1").is_ok());
        assert!(parse_add_host("nocolon").is_err());
        assert!(parse_add_host(":1.2.3.4").is_err());
        assert!(parse_add_host("x:notanip").is_err());
    }
}
