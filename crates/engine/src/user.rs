//! Resolving `USER` (`name`, `uid`, `name:group`, `uid:gid`) against an
//! image's /etc/passwd and /etc/group, with supplementary groups (CVE-2023-25173).

/// A resolved user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct User {
    /// uid.
    pub uid: u32,
    /// gid.
    pub gid: u32,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
    /// Home directory, if known.
    pub home: Option<String>,
}

/// Resolves `spec` with the image's passwd and group files (either may be
/// missing). Numeric ids need no entry; names do.
pub fn resolve(spec: &str, passwd: Option<&str>, group: Option<&str>) -> Result<User, String> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd_entries: Vec<Vec<&str>> = passwd
        .unwrap_or("")
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 7)
        .collect();
    let group_entries: Vec<Vec<&str>> = group
        .unwrap_or("")
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect();
    // no user: root, with root's home and groups from the image's files
    // (docker: HOME=/root)
    let u = if u.is_empty() { "0" } else { u };
    let (uid, mut gid, name, home) = if let Ok(uid) = u.parse::<u32>() {
        match passwd_entries
            .iter()
            .find(|f| f[2].parse::<u32>().ok() == Some(uid))
        {
            Some(f) => (
                uid,
                f[3].parse().unwrap_or(0),
                Some(f[0].to_owned()),
                Some(f[5].to_owned()),
            ),
            None if uid == 0 => (0, 0, Some("root".to_owned()), None),
            None => (uid, 0, None, None),
        }
    } else {
        let f = passwd_entries.iter().find(|f| f[0] == u).ok_or_else(|| {
            format!("unable to find user {u}: no matching entries in passwd file")
        })?;
        (
            f[2].parse().map_err(|_| format!("bad uid for user {u}"))?,
            f[3].parse().unwrap_or(0),
            Some(u.to_owned()),
            Some(f[5].to_owned()),
        )
    };
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group_entries.iter().find(|f| f[0] == g).ok_or_else(|| {
                format!("unable to find group {g}: no matching entries in group file")
            })?[2]
                .parse()
                .map_err(|_| format!("bad gid for group {g}"))?,
        };
    }
    // docker (runc) lists the primary group among the supplementary ones:
    // `id` shows groups=777 for `-u 12345:777`
    let mut additional = vec![gid];
    if let Some(name) = &name {
        for f in &group_entries {
            if f[3].split(',').any(|m| m == name)
                && let Ok(id) = f[2].parse::<u32>()
                && id != gid
                && !additional.contains(&id)
            {
                additional.push(id);
            }
        }
    }
    Ok(User {
        uid,
        gid,
        additional_gids: additional,
        home,
    })
}

/// Adds `--group-add` groups (numbers, or names from the image's
/// /etc/group) to `user`'s supplementary groups.
pub fn add_groups(user: &mut User, groups: &[String], group: Option<&str>) -> Result<(), String> {
    for g in groups {
        let id = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group
                .unwrap_or("")
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() >= 4 && f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    format!("Unable to find group {g}: no matching entries in group file")
                })?,
        };
        if !user.additional_gids.contains(&id) {
            user.additional_gids.push(id);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\napp:x:1000:\ng1:x:2001:app,other\ng2:x:2002:app\nstaff:x:50:\n";

    #[test]
    fn names_numbers_and_groups() {
        let u = resolve("app", Some(PASSWD), Some(GROUP)).unwrap();
        assert_eq!(
            (u.uid, u.gid, u.additional_gids.clone()),
            (1000, 1000, vec![1000, 2001, 2002])
        );
        assert_eq!(u.home.as_deref(), Some("/home/app"));
        let u = resolve("app:staff", Some(PASSWD), Some(GROUP)).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 50));
        let u = resolve("4242:4343", None, None).unwrap();
        assert_eq!((u.uid, u.gid), (4242, 4343));
        assert_eq!(u.additional_gids, [4343], "the primary group, as docker's");
        let root = resolve("", Some(PASSWD), None).unwrap();
        assert_eq!((root.uid, root.home.as_deref()), (0, Some("/root")));
        assert_eq!(resolve("", None, None).unwrap().home, None);
        assert!(
            resolve("nobody-here", Some(PASSWD), None)
                .unwrap_err()
                .contains("unable to find user")
        );
        let mut u = resolve("app", Some(PASSWD), Some(GROUP)).unwrap();
        add_groups(
            &mut u,
            &["staff".into(), "2001".into(), "777".into()],
            Some(GROUP),
        )
        .unwrap();
        assert_eq!(u.additional_gids, vec![1000, 2001, 2002, 50, 777]);
        assert!(
            add_groups(&mut u, &["nogroup".into()], Some(GROUP))
                .unwrap_err()
                .contains("Unable to find group nogroup")
        );
        assert!(
            resolve("app:nogroup", Some(PASSWD), Some(GROUP))
                .unwrap_err()
                .contains("unable to find group")
        );
    }
}
