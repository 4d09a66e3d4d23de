//! `--security-opt` / `HostConfig.SecurityOpt`.

use berth_engine::config::Seccomp;

/// One security option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecurityOpt {
    /// `no-new-privileges[:true|false]`.
    NoNewPrivileges(bool),
    /// `seccomp=unconfined` or a profile (the API carries its JSON; the
    /// CLI reads the file first).
    Seccomp(Seccomp),
    /// `systempaths=unconfined`: no masked or read-only paths.
    UnconfinedPaths,
    /// `apparmor=unconfined`, `label=disable`: what berth does anyway.
    None,
}

/// Parses one option. `read_profile` turns a seccomp profile reference
/// into its text (the CLI reads a file; the API has the text already).
pub fn parse_security_opt(
    opt: &str,
    read_profile: impl FnOnce(&str) -> Result<String, String>,
) -> Result<SecurityOpt, String> {
    let (k, v) = opt
        .split_once('=')
        .or_else(|| opt.split_once(':'))
        .unwrap_or((opt, ""));
    match (k, v) {
        ("no-new-privileges", "" | "true") => Ok(SecurityOpt::NoNewPrivileges(true)),
        ("no-new-privileges", "false") => Ok(SecurityOpt::NoNewPrivileges(false)),
        ("seccomp", "unconfined") => Ok(SecurityOpt::Seccomp(Seccomp::Unconfined)),
        ("seccomp", "builtin") => Ok(SecurityOpt::Seccomp(Seccomp::Default)),
        ("seccomp", p) if !p.is_empty() => {
            Ok(SecurityOpt::Seccomp(Seccomp::Profile(read_profile(p)?)))
        }
        ("systempaths", "unconfined") => Ok(SecurityOpt::UnconfinedPaths),
        // berth applies no AppArmor profile or SELinux label: asking for
        // none is what it does already
        ("apparmor", "unconfined") | ("label", "disable") => Ok(SecurityOpt::None),
        _ => Err(format!("not supported yet: --security-opt {opt}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let text = |p: &str| Ok::<_, String>(p.to_owned());
        assert_eq!(
            parse_security_opt("no-new-privileges", text).unwrap(),
            SecurityOpt::NoNewPrivileges(true)
        );
        assert_eq!(
            parse_security_opt("no-new-privileges:false", text).unwrap(),
            SecurityOpt::NoNewPrivileges(false)
        );
        assert_eq!(
            parse_security_opt("seccomp=unconfined", text).unwrap(),
            SecurityOpt::Seccomp(Seccomp::Unconfined)
        );
        assert_eq!(
            parse_security_opt("seccomp={}", text).unwrap(),
            SecurityOpt::Seccomp(Seccomp::Profile("{}".into()))
        );
        assert!(parse_security_opt("apparmor=myprofile", text).is_err());
        assert!(parse_security_opt("label=type:x", text).is_err());
    }
}
