//! Docker's command-line syntaxes, parsed once for berth's CLI and for the
//! string-valued fields of the Docker API (`Binds`, `ExtraHosts`,
//! `SecurityOpt`, `Tmpfs`, `DeviceCgroupRules`, port keys…): each turns a
//! docker string into the engine's typed value. Errors are docker's
//! messages. Nothing here does IO.
#![deny(clippy::string_slice)]

mod changes;
mod devices;
mod hosts;
mod modes;
mod mounts;
mod ports;
mod security;
mod time;
mod words;

pub use changes::apply_changes;
pub use devices::{parse_device, parse_device_cgroup_rule};
pub use hosts::parse_add_host;
pub use modes::{
    parse_cgroupns_mode, parse_ipc_mode, parse_network_mode, parse_pid_mode, parse_restart,
    parse_uts_mode,
};
pub use mounts::{parse_mount, parse_tmpfs, parse_volume, parse_volumes_from};
pub use ports::{parse_expose, parse_port_key, parse_publish};
pub use security::{SecurityOpt, parse_security_opt};
pub use time::{parse_duration, parse_timestamp};

use berth_engine::config::{LogConfig, LogDriver, Ulimit};

/// `10m`, `1g`, `512k`, `100` (bytes), `1.5g` as docker reads sizes
/// (binary units; a trailing `b` is allowed).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || format!("invalid size: {s:?}");
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'k')) => (t.get(..i).ok_or_else(bad)?, 1u64 << 10),
        Some((i, 'm')) => (t.get(..i).ok_or_else(bad)?, 1 << 20),
        Some((i, 'g')) => (t.get(..i).ok_or_else(bad)?, 1 << 30),
        Some((i, 't')) => (t.get(..i).ok_or_else(bad)?, 1 << 40),
        Some(_) => (t, 1),
        None => return Err(bad()),
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    if !n.is_finite() || n < 0.0 {
        return Err(bad());
    }
    let v = n * mult as f64;
    if v >= u64::MAX as f64 {
        return Err(format!("size {s:?} is too large"));
    }
    Ok(v as u64)
}

/// `KEY=VALUE` (`=VALUE` refused; a missing `=` is an error naming `what`).
pub fn key_value<'a>(s: &'a str, what: &str) -> Result<(&'a str, &'a str), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k, v)),
        _ => Err(format!("invalid {what}: {s:?} (KEY=VALUE)")),
    }
}

/// `--ulimit NAME=SOFT[:HARD]` (`-1` and `unlimited` mean no limit).
pub fn parse_ulimit(s: &str) -> Result<Ulimit, String> {
    let (name, val) = s
        .split_once('=')
        .ok_or_else(|| format!("invalid ulimit argument: {s}"))?;
    let num = |x: &str| -> Result<u64, String> {
        if x == "-1" || x == "unlimited" {
            Ok(u64::MAX)
        } else {
            x.parse::<u64>()
                .map_err(|_| format!("invalid ulimit argument: {s}"))
        }
    };
    let (soft, hard) = match val.split_once(':') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(val)?, num(val)?),
    };
    let u = Ulimit {
        name: name.to_owned(),
        soft,
        hard,
    };
    u.validate()?;
    Ok(u)
}

/// The log driver and `--log-opt`s, checked as docker's json-file and
/// local drivers check them (`max-file` alone is accepted, as dockerd
/// does: it only matters with `max-size`).
pub fn parse_log_config(
    driver: &str,
    opts: &std::collections::BTreeMap<String, String>,
) -> Result<LogConfig, String> {
    let driver = match driver {
        "" | "json-file" => LogDriver::JsonFile,
        "local" => LogDriver::Local,
        "none" => LogDriver::None,
        other => {
            return Err(format!(
                "not supported yet: log driver {other:?} (json-file, local and none are)"
            ));
        }
    };
    let known: &[&str] = match driver {
        LogDriver::JsonFile => &[
            "max-size",
            "max-file",
            "compress",
            "labels",
            "labels-regex",
            "env",
            "env-regex",
            "tag",
        ],
        LogDriver::Local => &["max-size", "max-file", "compress"],
        LogDriver::None => &[],
    };
    for k in opts.keys() {
        if !known.contains(&k.as_str()) {
            return Err(format!(
                "unknown log opt '{k}' for {} log driver",
                driver.name()
            ));
        }
    }
    let max_size = match opts.get("max-size") {
        None => None,
        Some(v) if v == "-1" => None,
        Some(v) => Some(parse_size(v).map_err(|_| format!("invalid max-size: {v}"))?),
    };
    let max_file = match opts.get("max-file") {
        None => None,
        Some(f) => Some(
            f.parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| format!("invalid max-file: {f}"))?,
        ),
    };
    if let Some(c) = opts.get("compress")
        && c.parse::<bool>().is_err()
    {
        return Err(format!("invalid compress: {c}"));
    }
    Ok(LogConfig {
        driver,
        max_size,
        max_file,
        options: opts.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_ulimits_and_logs() {
        assert_eq!(parse_size("10m"), Ok(10 << 20));
        assert_eq!(parse_size("1k"), Ok(1024));
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("1.5g"), Ok(3 << 29));
        for bad in ["x", "", "-1m", "1é", "é", "1e400", "nan"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        let u = parse_ulimit("nofile=1024:2048").unwrap();
        assert_eq!((u.soft, u.hard), (1024, 2048));
        assert_eq!(parse_ulimit("core=-1").unwrap().hard, u64::MAX);
        assert!(parse_ulimit("nofile=2:1").is_err());
        assert!(parse_ulimit("bogus=1").is_err());
        assert!(parse_ulimit("nofile").is_err());
        let mut o = std::collections::BTreeMap::new();
        o.insert("max-file".to_owned(), "3".to_owned());
        let l = parse_log_config("json-file", &o).unwrap();
        assert_eq!(l.rotation(), None, "max-file alone: accepted, no rotation");
        o.insert("max-size".to_owned(), "1k".to_owned());
        assert_eq!(
            parse_log_config("", &o).unwrap().rotation(),
            Some((1024, 3))
        );
        o.insert("bogus".to_owned(), "1".to_owned());
        assert!(parse_log_config("json-file", &o).is_err());
        assert!(parse_log_config("syslog", &Default::default()).is_err());
        assert!(key_value("=x", "label").is_err());
    }
}
