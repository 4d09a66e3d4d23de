//! `-v` / `HostConfig.Binds`, `--mount`, `--tmpfs` / `HostConfig.Tmpfs`
//! and `--volumes-from`, as docker reads them.

use std::collections::BTreeMap;

use berth_engine::config::{Mount, MountKind, MountOrigin, Propagation, VolumesFrom};

/// One `-v` / `HostConfig.Binds` entry: `[SRC:]DST[:MODE]`, SRC an
/// absolute host path (a bind) or a volume name; without SRC an anonymous
/// volume. MODE: `ro`, `rw`, `z`, `Z`, `nocopy` and a propagation, comma
/// separated.
pub fn parse_volume(spec: &str) -> Result<Mount, String> {
    let bad = || format!("invalid volume specification: '{spec}'");
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [d] => ("", *d, ""),
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => return Err(bad()),
    };
    if dst.is_empty() {
        return Err(bad());
    }
    let mut m = Mount {
        target: dst.to_owned(),
        mode: mode.to_owned(),
        origin: MountOrigin::Volume,
        ..Default::default()
    };
    let mut propagation = None;
    for o in mode.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => m.read_only = true,
            "rw" => m.read_only = false,
            "z" | "Z" => {}
            "nocopy" => m.no_copy = true,
            p => match Propagation::parse(p) {
                Some(p) => propagation = Some(p),
                None => return Err(format!("invalid mode: {mode}")),
            },
        }
    }
    if src.is_empty() {
        m.kind = MountKind::Volume;
    } else if src.starts_with('/') {
        // docker's -v makes a missing host directory
        m.kind = MountKind::Bind;
        m.source = Some(src.to_owned());
        m.create_source = true;
        m.propagation = propagation;
    } else {
        m.kind = MountKind::Volume;
        m.source = Some(src.to_owned());
    }
    if m.kind == MountKind::Volume && propagation.is_some() {
        return Err(format!("invalid mode: {mode} (propagation is for binds)"));
    }
    Ok(m)
}

/// A `--mount` flag (`type=bind,source=/a,target=/b,readonly`) as the
/// docker CLI reads it.
pub fn parse_mount(s: &str) -> Result<Mount, String> {
    let mut m = Mount {
        kind: MountKind::Volume,
        origin: MountOrigin::Mount,
        ..Default::default()
    };
    let mut driver_opts = BTreeMap::new();
    let mut tmpfs_size = None;
    let mut tmpfs_mode = None;
    let truth = |k: &str, v: Option<&str>| -> Result<bool, String> {
        match v.map(str::to_ascii_lowercase).as_deref() {
            None | Some("true") | Some("1") => Ok(true),
            Some("false") | Some("0") => Ok(false),
            Some(o) => Err(format!("invalid value for {k}: {o}")),
        }
    };
    for field in s.split(',').filter(|f| !f.is_empty()) {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let need = |v: Option<&str>| -> Result<String, String> {
            v.map(str::to_owned)
                .ok_or_else(|| format!("invalid field '{field}' must be a key=value pair"))
        };
        match k.as_str() {
            "type" => {
                m.kind = match need(v)?.as_str() {
                    "bind" => MountKind::Bind,
                    "volume" => MountKind::Volume,
                    "tmpfs" => MountKind::Tmpfs,
                    t @ ("npipe" | "cluster" | "image") => {
                        return Err(format!("not supported yet: mount type {t:?}"));
                    }
                    t => return Err(format!("invalid mount type: {t:?}")),
                }
            }
            "source" | "src" => m.source = Some(need(v)?).filter(|s| !s.is_empty()),
            "target" | "destination" | "dst" => m.target = need(v)?,
            "readonly" | "ro" => m.read_only = truth(&k, v)?,
            "bind-propagation" => {
                let p = need(v)?;
                m.propagation = Some(
                    Propagation::parse(&p)
                        .ok_or_else(|| format!("invalid propagation mode: {p}"))?,
                );
            }
            "bind-create-mountpoint" => m.create_source = truth(&k, v)?,
            "volume-nocopy" => m.no_copy = truth(&k, v)?,
            "volume-label" => {
                let kv = need(v)?;
                let (lk, lv) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
                m.volume_labels.insert(lk.to_owned(), lv.to_owned());
            }
            "volume-driver" => {
                let d = need(v)?;
                if d != "local" {
                    return Err("not supported yet: volume drivers other than local".into());
                }
            }
            "volume-opt" => {
                let kv = need(v)?;
                let (ok, ov) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
                driver_opts.insert(ok.to_owned(), ov.to_owned());
            }
            "tmpfs-size" => {
                let v = need(v)?;
                tmpfs_size = Some(
                    super::parse_size(&v)
                        .map_err(|_| format!("invalid value for tmpfs-size: {v}"))?,
                );
            }
            "tmpfs-mode" => {
                let v = need(v)?;
                tmpfs_mode = Some(
                    u32::from_str_radix(&v, 8)
                        .map_err(|_| format!("invalid value for tmpfs-mode: {v}"))?,
                );
            }
            "consistency" | "bind-nonrecursive" => {}
            _ => return Err(format!("unexpected key '{k}' in '{field}'")),
        }
    }
    m.volume_options = driver_opts;
    if m.target.is_empty() {
        return Err(format!(
            "invalid mount config for type \"{}\": field Target must not be empty",
            m.kind
        ));
    }
    if let Some(size) = tmpfs_size {
        m.tmpfs_options.push(format!("size={size}"));
    }
    if let Some(mode) = tmpfs_mode {
        m.tmpfs_options.push(format!("mode={:o}", mode & 0o7777));
    }
    Ok(m)
}

/// A `--tmpfs PATH[:OPTIONS]` flag, or one `HostConfig.Tmpfs` entry
/// (`path`, `options`).
pub fn parse_tmpfs(path: &str, options: &str) -> Mount {
    Mount {
        kind: MountKind::Tmpfs,
        target: path.to_owned(),
        tmpfs_options: options
            .split(',')
            .filter(|o| !o.is_empty())
            .map(str::to_owned)
            .collect(),
        origin: MountOrigin::Tmpfs,
        ..Default::default()
    }
}

/// `--volumes-from NAME[:MODE]`, MODE a comma list of `ro`/`rw` and the
/// SELinux relabel flags `z`/`Z` (nothing to relabel here).
pub fn parse_volumes_from(spec: &str) -> Result<VolumesFrom, String> {
    let (name, modes) = spec.split_once(':').unwrap_or((spec, ""));
    if name.is_empty() {
        return Err(format!("invalid volumes-from: {spec:?}"));
    }
    let mut read_only = None;
    for m in modes.split(',').filter(|m| !m.is_empty()) {
        match m {
            "ro" => read_only = Some(true),
            "rw" => read_only = Some(false),
            "z" | "Z" => {}
            _ => return Err(format!("invalid mode for volumes-from: {modes}")),
        }
    }
    Ok(VolumesFrom {
        container: name.to_owned(),
        read_only,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_parse_like_docker() {
        let m = parse_volume("/host/dir:/data:ro").unwrap();
        assert_eq!(
            (m.kind, m.source.as_deref(), m.target.as_str(), m.read_only),
            (MountKind::Bind, Some("/host/dir"), "/data", true)
        );
        assert!(m.create_source);
        let m = parse_volume("myvol:/data").unwrap();
        assert_eq!(
            (m.kind, m.source.as_deref(), m.read_only),
            (MountKind::Volume, Some("myvol"), false)
        );
        let m = parse_volume("/anon").unwrap();
        assert!(m.kind == MountKind::Volume && m.source.is_none());
        let m = parse_volume("v1:/x:nocopy,ro").unwrap();
        assert!(m.no_copy && m.read_only);
        let m = parse_volume("/h:/x:rslave").unwrap();
        assert_eq!(m.propagation, Some(Propagation::Rslave));
        assert!(
            parse_volume("/h:/x:bogus")
                .unwrap_err()
                .contains("invalid mode")
        );
        assert!(parse_volume("v:/x:rshared").is_err());
        assert!(parse_volume("a:b:c:d").is_err());
        assert!(parse_volume("a:").is_err());
    }

    #[test]
    fn mount_flags_and_tmpfs() {
        let m = parse_mount("type=bind,src=/tmp,dst=/x,readonly").unwrap();
        assert_eq!(
            (m.kind, m.source.as_deref(), m.read_only, m.create_source),
            (MountKind::Bind, Some("/tmp"), true, false)
        );
        let m = parse_mount("type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1777").unwrap();
        assert_eq!(m.tmpfs_options, ["size=1048576", "mode=1777"]);
        let m = parse_mount("type=volume,target=/v,volume-opt=type=tmpfs,volume-nocopy").unwrap();
        assert!(m.no_copy && m.volume_options["type"] == "tmpfs");
        assert!(parse_mount("type=bind,bogus=1").is_err());
        assert!(parse_mount("type=bind,src=/a").is_err(), "no target");
        assert!(
            parse_mount("type=image,dst=/x")
                .unwrap_err()
                .contains("not supported yet")
        );
        assert!(parse_mount("type=volume,dst=/x,volume-driver=nfs").is_err());
        let t = parse_tmpfs("/run", "size=64m,exec");
        assert_eq!(t.tmpfs_options, ["size=64m", "exec"]);
        let v = parse_volumes_from("db:ro,z").unwrap();
        assert_eq!((v.container.as_str(), v.read_only), ("db", Some(true)));
        assert!(parse_volumes_from("db:bogus").is_err());
    }
}
