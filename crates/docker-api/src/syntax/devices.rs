//! `--device` and `--device-cgroup-rule`.

use berth_engine::config::{DeviceMapping, DevicePerms, DeviceRule};

/// `--device HOST[:CONTAINER][:PERMISSIONS]`.
pub fn parse_device(d: &str) -> Result<DeviceMapping, String> {
    let parts: Vec<&str> = d.split(':').collect();
    let is_perms = |c: &str| !c.starts_with('/') && c.chars().all(|x| "rwm".contains(x));
    let (host, ctr, perms) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, c] if is_perms(c) => (*h, *h, *c),
        [h, c] => (*h, *c, "rwm"),
        [h, c, p] => (*h, *c, *p),
        _ => return Err(format!("invalid device specification: {d}")),
    };
    if !host.starts_with('/') || !ctr.starts_with('/') {
        return Err(format!(
            "invalid device specification: {d} (paths must be absolute)"
        ));
    }
    Ok(DeviceMapping {
        host: host.to_owned(),
        container: ctr.to_owned(),
        permissions: perms.parse::<DevicePerms>()?,
    })
}

/// `--device-cgroup-rule 'TYPE MAJOR:MINOR ACCESS'` (`*` for any number).
pub fn parse_device_cgroup_rule(rule: &str) -> Result<DeviceRule, String> {
    let bad = || format!("invalid device cgroup rule format: '{rule}'");
    let f: Vec<&str> = rule.split_whitespace().collect();
    let [kind, nums, access] = f.as_slice() else {
        return Err(bad());
    };
    let kind = match *kind {
        "a" => 'a',
        "b" => 'b',
        "c" => 'c',
        _ => return Err(bad()),
    };
    let (ma, mi) = nums.split_once(':').ok_or_else(bad)?;
    let num = |x: &str| -> Result<Option<i64>, String> {
        match x {
            "*" => Ok(None),
            n => n.parse::<i64>().map(Some).map_err(|_| bad()),
        }
    };
    Ok(DeviceRule {
        kind,
        major: num(ma)?,
        minor: num(mi)?,
        access: access.parse::<DevicePerms>().map_err(|_| bad())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_rules() {
        let d = parse_device("/dev/null:/dev/x:r").unwrap();
        assert_eq!(
            (d.container.as_str(), d.permissions.to_string()),
            ("/dev/x", "r".into())
        );
        assert_eq!(parse_device("/dev/null:rw").unwrap().container, "/dev/null");
        assert!(parse_device("dev/null").is_err());
        assert!(parse_device("/dev/null:/x:rwx").is_err());
        let r = parse_device_cgroup_rule("c 1:* rwm").unwrap();
        assert_eq!((r.kind, r.major, r.minor), ('c', Some(1), None));
        assert!(parse_device_cgroup_rule("x 1:1 r").is_err());
        assert!(parse_device_cgroup_rule("c 1 r").is_err());
        assert!(parse_device_cgroup_rule("c 1:1").is_err());
    }
}
