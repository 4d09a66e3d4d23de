//! Namespace modes (`--network`, `--pid`, `--ipc`, `--uts`, `--cgroupns`)
//! and restart policies (`--restart`).

use berth_engine::config::{CgroupnsMode, IpcMode, NetworkMode, PidMode, RestartPolicy, UtsMode};

/// `--network`: `default`, `bridge`, `none`, `host`, `container:NAME` or
/// a network's name or id.
pub fn parse_network_mode(s: &str) -> Result<NetworkMode, String> {
    Ok(match s {
        "" | "default" => NetworkMode::Bridge("default".into()),
        "none" => NetworkMode::None,
        "host" => NetworkMode::Host,
        m => match m.split_once(':') {
            Some(("container", c)) if !c.is_empty() => NetworkMode::Container(c.to_owned()),
            Some(("container", _)) => return Err(format!("invalid network mode: {m}")),
            _ => NetworkMode::Bridge(m.to_owned()),
        },
    })
}

/// `--pid`: `host` or `container:NAME` (empty: private).
pub fn parse_pid_mode(s: &str) -> Result<PidMode, String> {
    match s {
        "" | "private" => Ok(PidMode::Private),
        "host" => Ok(PidMode::Host),
        m => match m.strip_prefix("container:") {
            Some(c) if !c.is_empty() => Ok(PidMode::Container(c.to_owned())),
            _ => Err(format!("invalid PID mode: {m}")),
        },
    }
}

/// `--ipc`: `private`, `shareable`, `host`, `none` or `container:NAME`.
pub fn parse_ipc_mode(s: &str) -> Result<IpcMode, String> {
    match s {
        "" | "private" => Ok(IpcMode::Private),
        "shareable" => Ok(IpcMode::Shareable),
        "host" => Ok(IpcMode::Host),
        "none" => Ok(IpcMode::None),
        m => match m.strip_prefix("container:") {
            Some(c) if !c.is_empty() => Ok(IpcMode::Container(c.to_owned())),
            _ => Err(format!("invalid IPC mode: {m}")),
        },
    }
}

/// `--uts`: `host` (empty: private).
pub fn parse_uts_mode(s: &str) -> Result<UtsMode, String> {
    match s {
        "" => Ok(UtsMode::Private),
        "host" => Ok(UtsMode::Host),
        m => Err(format!("invalid UTS mode: {m}")),
    }
}

/// `--cgroupns`: `private` or `host`.
pub fn parse_cgroupns_mode(s: &str) -> Result<CgroupnsMode, String> {
    match s {
        "" | "private" => Ok(CgroupnsMode::Private),
        "host" => Ok(CgroupnsMode::Host),
        m => Err(format!("invalid cgroup namespace mode: {m}")),
    }
}

/// `--restart no|always|unless-stopped|on-failure[:N]`, or the API's name
/// and count.
pub fn parse_restart(name: &str, count: Option<i64>) -> Result<RestartPolicy, String> {
    let (name, count) = match (name.split_once(':'), count) {
        (Some((n, c)), _) => (
            n,
            Some(
                c.parse::<i64>()
                    .map_err(|_| format!("invalid restart policy format: {name}"))?,
            ),
        ),
        (None, c) => (name, c),
    };
    let count = count.unwrap_or(0);
    match name {
        "" | "no" | "always" | "unless-stopped" if count != 0 => Err(format!(
            "maximum retry count cannot be used with restart policy '{name}'"
        )),
        "" | "no" => Ok(RestartPolicy::No),
        "always" => Ok(RestartPolicy::Always),
        "unless-stopped" => Ok(RestartPolicy::UnlessStopped),
        "on-failure" => Ok(RestartPolicy::OnFailure {
            max_retries: u32::try_from(count)
                .map_err(|_| "maximum retry count cannot be negative".to_owned())?,
        }),
        other => Err(format!("invalid restart policy '{other}'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_policies() {
        assert_eq!(
            parse_network_mode("container:db").unwrap(),
            NetworkMode::Container("db".into())
        );
        assert_eq!(
            parse_network_mode("app").unwrap(),
            NetworkMode::Bridge("app".into())
        );
        assert!(parse_network_mode("container:").is_err());
        assert!(parse_pid_mode("bogus").is_err());
        assert_eq!(parse_ipc_mode("shareable").unwrap(), IpcMode::Shareable);
        assert_eq!(
            parse_restart("on-failure:3", None).unwrap(),
            RestartPolicy::OnFailure { max_retries: 3 }
        );
        assert_eq!(
            parse_restart("on-failure", Some(2)).unwrap(),
            RestartPolicy::OnFailure { max_retries: 2 }
        );
        assert!(parse_restart("always:2", None).is_err());
        assert!(parse_restart("sometimes", None).is_err());
        assert!(parse_restart("on-failure:x", None).is_err());
        assert!(parse_restart("on-failure", Some(-1)).is_err());
    }
}
