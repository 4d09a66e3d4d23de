//! The image store's settings in berth's config file: `$BERTH_CONFIG`, else
//! `/etc/berth/daemon.json` (docker's daemon.json format; keys the image
//! store does not know are left to others). A missing file means the
//! defaults; a malformed one is an error naming the file.
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `max-layer-expansion` | 100 | a layer may expand to this many times its compressed size (but always to 64 MiB) |
//! | `max-layer-size` | 34359738368 (32 GiB) | most uncompressed bytes of one layer, in bytes |
//! | `registry-mirrors` | none | mirrors of Docker Hub, tried in order |
//! | `insecure-registries` | none | registries (`host:port`, CIDR) reached without TLS checks |
//! | `max-concurrent-downloads` | 3 | layers downloaded at once |
//! | `max-download-attempts` | 5 | tries per blob |
//!
//! Unpacking also stops when a layer would not fit in the free space of
//! the filesystem holding the snapshots.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::registry::RegistryOptions;
use crate::unpack::UnpackOptions;

/// The config file: `$BERTH_CONFIG`, else `/etc/berth/daemon.json`.
pub fn path() -> PathBuf {
    std::env::var_os("BERTH_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/berth/daemon.json"))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct File {
    #[serde(default)]
    max_layer_expansion: Option<u64>,
    #[serde(default)]
    max_layer_size: Option<u64>,
    #[serde(default)]
    registry_mirrors: Vec<String>,
    #[serde(default)]
    insecure_registries: Vec<String>,
    #[serde(default)]
    max_concurrent_downloads: Option<usize>,
    #[serde(default)]
    max_download_attempts: Option<u32>,
}

/// What the image store takes from the config file.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// Layer limits.
    pub unpack: UnpackOptions,
    /// How registries are reached.
    pub registry: RegistryOptions,
}

impl Settings {
    /// Reads the config file ([`path`]).
    pub fn load() -> Result<Settings> {
        let p = path();
        match std::fs::read(&p) {
            Ok(b) => Settings::parse(&b, &p),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(e) => Err(Error::Io {
                context: format!("read {}", p.display()),
                source: e,
            }),
        }
    }

    /// Parses the text of a config file (`source` names it in errors).
    pub fn parse(bytes: &[u8], source: &Path) -> Result<Settings> {
        let f: File = serde_json::from_slice(bytes)
            .map_err(|e| Error::Invalid(format!("{}: {e}", source.display())))?;
        let mut unpack = UnpackOptions::default();
        if let Some(x) = f.max_layer_expansion {
            if x == 0 {
                return Err(Error::Invalid(format!(
                    "{}: max-layer-expansion must be at least 1",
                    source.display()
                )));
            }
            unpack.max_expansion = x;
        }
        if let Some(x) = f.max_layer_size {
            if x == 0 {
                return Err(Error::Invalid(format!(
                    "{}: max-layer-size must be at least 1 byte",
                    source.display()
                )));
            }
            unpack.max_bytes = x;
        }
        let d = RegistryOptions::default();
        let registry = RegistryOptions {
            insecure_registries: f.insecure_registries,
            mirrors: f.registry_mirrors,
            max_concurrent: f
                .max_concurrent_downloads
                .unwrap_or(d.max_concurrent)
                .max(1),
            retries: f.max_download_attempts.map_or(d.retries, |a| a.max(1) - 1),
            ..d
        };
        Ok(Settings { unpack, registry })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_defaults_and_errors() {
        let p = Path::new("/etc/berth/daemon.json");
        let s = Settings::parse(b"{}", p).unwrap();
        assert_eq!(s.unpack.max_expansion, crate::unpack::DEFAULT_MAX_EXPANSION);
        assert_eq!(s.unpack.max_bytes, crate::unpack::DEFAULT_MAX_BYTES);
        assert_eq!(s.registry.max_concurrent, 3);
        let s = Settings::parse(
            br#"{"max-layer-expansion": 1000, "max-layer-size": 1099511627776, "live-restore": true,
                 "registry-mirrors": ["https://m.test"], "max-download-attempts": 2}"#,
            p,
        )
        .unwrap();
        assert_eq!(s.unpack.max_expansion, 1000);
        assert_eq!(s.unpack.max_bytes, 1 << 40);
        assert_eq!(s.registry.mirrors, ["https://m.test"]);
        assert_eq!(s.registry.retries, 1);
        for bad in [
            &br#"{"max-layer-expansion": 0}"#[..],
            br#"{"max-layer-size": "32g"}"#,
            br#"{"max-layer-size": -1}"#,
            b"{",
        ] {
            let e = Settings::parse(bad, p).unwrap_err().to_string();
            assert!(e.starts_with("/etc/berth/daemon.json: "), "{e}");
        }
    }
}
