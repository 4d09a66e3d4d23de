//! Registry credentials and challenges: the Docker config file's `auths`,
//! `WWW-Authenticate` parsing, and the token exchange of the Docker
//! registry token protocol.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

use crate::error::{Error, Result};

/// A user name and password (or identity token).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name (`<token>` for an identity token).
    pub username: String,
    /// Password or token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <redacted>)", self.username)
    }
}

impl Credentials {
    /// The `Authorization: Basic` value.
    pub fn basic(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// Credentials a caller supplies for one request, as Docker's `AuthConfig`
/// holds them (from `X-Registry-Auth`, docker-py's `auth_config`, a
/// Kubernetes pull secret): given to [`crate::registry::Client::with_auth`]
/// for one registry, they win over the Docker config file for it, are
/// never written anywhere and never shown (`Debug` hides them).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AuthConfig {
    /// User name (Basic authentication, or for the token service).
    pub username: String,
    /// Password.
    pub password: String,
    /// An OAuth2 refresh token (`identitytoken`): exchanged at the token
    /// service the registry names for an access token (`POST`,
    /// `grant_type=refresh_token`), as dockerd does.
    pub identity_token: String,
    /// A bearer token for the registry itself (`registrytoken`), sent to
    /// it as is.
    pub registry_token: String,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |v: &str| if v.is_empty() { "" } else { "<redacted>" };
        f.debug_struct("AuthConfig")
            .field("username", &self.username)
            .field("password", &set(&self.password))
            .field("identity_token", &set(&self.identity_token))
            .field("registry_token", &set(&self.registry_token))
            .finish()
    }
}

impl AuthConfig {
    /// A user name and password.
    pub fn basic(username: &str, password: &str) -> AuthConfig {
        AuthConfig {
            username: username.to_owned(),
            password: password.to_owned(),
            ..AuthConfig::default()
        }
    }

    /// Whether nothing is set (then the config file's credentials apply).
    pub fn is_empty(&self) -> bool {
        self.username.is_empty()
            && self.password.is_empty()
            && self.identity_token.is_empty()
            && self.registry_token.is_empty()
    }
}

/// Decodes Docker's `auth` field (base64 of `user:password`, in config
/// files and `AuthConfig`) into a user name and password.
pub fn decode_auth(auth: &str) -> Result<(String, String)> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|e| Error::Invalid(format!("auth is not base64: {e}")))?;
    let raw = String::from_utf8(raw).map_err(|_| Error::Invalid("auth is not UTF-8".into()))?;
    let (u, p) = raw
        .split_once(':')
        .ok_or_else(|| Error::Invalid("auth is not user:password".into()))?;
    Ok((u.to_owned(), p.to_owned()))
}

#[derive(Deserialize, Default)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// The Docker config file berth reads credentials from:
/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn default_config_path() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(d).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
}

/// The key Docker files a registry's credentials under.
fn config_keys(host: &str) -> Vec<String> {
    if host == "docker.io" || host == "registry-1.docker.io" || host == "index.docker.io" {
        return vec![
            "https://index.docker.io/v1/".into(),
            "index.docker.io".into(),
            "docker.io".into(),
        ];
    }
    vec![
        host.to_owned(),
        format!("https://{host}"),
        format!("http://{host}"),
        format!("https://{host}/v1/"),
        format!("https://{host}/v2/"),
    ]
}

/// Credentials for `host` from the config file at `path`; none if the
/// file or the entry is missing. A malformed file is an error (as it is
/// for docker).
pub fn lookup(path: &Path, host: &str) -> Result<Option<Credentials>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::Io {
                context: format!("read {}", path.display()),
                source: e,
            });
        }
    };
    let cfg: ConfigFile = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
    for key in config_keys(host) {
        let Some(entry) = cfg.auths.get(&key) else {
            continue;
        };
        if let Some(token) = &entry.identitytoken
            && !token.is_empty()
        {
            return Ok(Some(Credentials {
                username: "<token>".into(),
                password: token.clone(),
            }));
        }
        if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
            let (username, password) = decode_auth(auth)
                .map_err(|e| Error::Invalid(format!("{}: auths.{key}.{e}", path.display())))?;
            return Ok(Some(Credentials { username, password }));
        }
        if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
            return Ok(Some(Credentials {
                username: u.clone(),
                password: p.clone(),
            }));
        }
    }
    if cfg.cred_helpers.contains_key(host) || cfg.creds_store.is_some() {
        tracing::warn!(
            "{}: credential helpers (credsStore/credHelpers) are not supported yet; using no credentials for {host}",
            path.display()
        );
    }
    Ok(None)
}

/// One `WWW-Authenticate` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm=...`
    Basic,
    /// `Bearer realm=...,service=...,scope=...`
    Bearer {
        /// Token endpoint.
        realm: String,
        /// Service name.
        service: Option<String>,
        /// Scope the registry asked for.
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` header (one challenge; quoted values may
/// hold commas).
pub fn parse_challenge(h: &str) -> Option<Challenge> {
    let h = h.trim();
    let (scheme, rest) = h.split_once(char::is_whitespace).unwrap_or((h, ""));
    let mut params = BTreeMap::new();
    let mut s = rest.trim();
    while !s.is_empty() {
        let (k, after) = s.split_once('=')?;
        let k = k.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (v, tail) = if let Some(q) = after.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            out.push(n);
                        }
                    }
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => out.push(c),
                }
            }
            (out, q.get(end?..)?)
        } else {
            match after.split_once(',') {
                Some((v, tail)) => (v.trim().to_owned(), tail),
                None => (after.trim().to_owned(), ""),
            }
        };
        params.insert(k, v);
        s = tail.trim_start().trim_start_matches(',').trim_start();
    }
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        }),
        _ => None,
    }
}

/// A token endpoint's answer.
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
    /// An OAuth2 refresh token (asked for with `offline_token=true` at
    /// login: docker's identity token).
    #[serde(default)]
    pub refresh_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull,push".into())
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="berth""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge("Bearer service=x"),
            None,
            "a bearer challenge needs a realm"
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(
            parse_challenge(r#"Bearer realm="http://127.0.0.1:1/t\"x""#),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:1/t\"x".into(),
                service: None,
                scope: None
            })
        );
    }

    #[test]
    fn config_file_credentials() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("config.json");
        assert_eq!(
            lookup(&p, "127.0.0.1:5000").unwrap(),
            None,
            "no file, no credentials"
        );
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cr:et");
        std::fs::write(
            &p,
            format!(r#"{{"auths":{{"127.0.0.1:5000":{{"auth":"{auth}"}},"https://index.docker.io/v1/":{{"username":"bob","password":"pw"}}}}}}"#),
        )
        .unwrap();
        let c = lookup(&p, "127.0.0.1:5000").unwrap().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("alice", "s3cr:et")
        );
        assert_eq!(lookup(&p, "docker.io").unwrap().unwrap().username, "bob");
        assert_eq!(lookup(&p, "other:1").unwrap(), None);
        assert!(
            !format!("{c:?}").contains("s3cr"),
            "Debug never shows the password"
        );
        std::fs::write(&p, r#"{"auths":{"h:1":{"auth":"bm9jb2xvbg=="}}}"#).unwrap();
        assert_eq!(
            lookup(&p, "h:1").unwrap_err().to_string(),
            format!("{}: auths.h:1.auth is not user:password", p.display())
        );
        assert_eq!(
            decode_auth("YWxpY2U6czNjcjpldA==").unwrap(),
            ("alice".to_owned(), "s3cr:et".to_owned())
        );
        let a = AuthConfig {
            identity_token: "refresh-me".into(),
            ..AuthConfig::basic("alice", "pw")
        };
        let shown = format!("{a:?}");
        assert!(
            shown.contains("alice") && !shown.contains("pw\"") && !shown.contains("refresh-me"),
            "{shown}"
        );
        std::fs::write(&p, "{not json").unwrap();
        assert!(
            lookup(&p, "x")
                .unwrap_err()
                .to_string()
                .contains("config.json")
        );
    }
}
