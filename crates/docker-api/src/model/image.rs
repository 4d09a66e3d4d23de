//! Bodies of the image endpoints: the container configuration of
//! `POST /commit`, the `AuthConfig` of `POST /auth`, and the same
//! `AuthConfig` as the `X-Registry-Auth` header of pulls and pushes
//! (base64url of its JSON).

use std::collections::BTreeMap;

use base64::Engine as _;
use berth_image::registry::AuthConfig;
use berth_types::image::{ContainerConfig, HealthConfig};
use serde::Deserialize;

use super::StrSlice;

/// The configuration a commit asks for (docker's container `Config`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(missing_docs)]
pub struct CommitConfig {
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub user: Option<String>,
    pub attach_stdin: Option<bool>,
    pub attach_stdout: Option<bool>,
    pub attach_stderr: Option<bool>,
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    pub tty: Option<bool>,
    pub open_stdin: Option<bool>,
    pub stdin_once: Option<bool>,
    pub env: Option<Vec<String>>,
    pub cmd: Option<StrSlice>,
    pub healthcheck: Option<HealthConfig>,
    pub image: Option<String>,
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    pub working_dir: Option<String>,
    pub entrypoint: Option<StrSlice>,
    pub on_build: Option<Vec<String>>,
    pub labels: Option<BTreeMap<String, String>>,
    pub stop_signal: Option<String>,
    pub shell: Option<StrSlice>,
}

impl CommitConfig {
    /// Reads a commit body: `None` for an empty one, `null` or `{}` (then
    /// the container's configuration is the starting point, as dockerd
    /// takes it).
    pub fn parse(bytes: &[u8]) -> Result<Option<CommitConfig>, String> {
        let t = bytes.trim_ascii();
        if t.is_empty() || t == b"null" {
            return Ok(None);
        }
        let v: serde_json::Value = super::from_json(t)?;
        if v.as_object().is_some_and(serde_json::Map::is_empty) {
            return Ok(None);
        }
        super::from_json(t).map(Some)
    }

    /// As an image configuration.
    pub fn into_config(self) -> ContainerConfig {
        let mut extra = BTreeMap::new();
        for (k, v) in [
            ("Hostname", self.hostname.map(serde_json::Value::from)),
            ("Domainname", self.domainname.map(Into::into)),
            ("AttachStdin", self.attach_stdin.map(Into::into)),
            ("AttachStdout", self.attach_stdout.map(Into::into)),
            ("AttachStderr", self.attach_stderr.map(Into::into)),
            ("Tty", self.tty.map(Into::into)),
            ("OpenStdin", self.open_stdin.map(Into::into)),
            ("StdinOnce", self.stdin_once.map(Into::into)),
            ("Image", self.image.map(Into::into)),
        ] {
            if let Some(v) = v {
                extra.insert(k.to_owned(), v);
            }
        }
        ContainerConfig {
            user: self.user.unwrap_or_default(),
            exposed_ports: self.exposed_ports.unwrap_or_default(),
            env: self.env.unwrap_or_default(),
            entrypoint: self.entrypoint.map(|s| s.0),
            cmd: self.cmd.map(|s| s.0),
            volumes: self.volumes.unwrap_or_default(),
            working_dir: self.working_dir.unwrap_or_default(),
            labels: self.labels.unwrap_or_default(),
            stop_signal: self.stop_signal.unwrap_or_default(),
            healthcheck: self.healthcheck,
            shell: self.shell.map(|s| s.0).unwrap_or_default(),
            on_build: self.on_build.unwrap_or_default(),
            extra,
        }
    }
}

/// docker's `AuthConfig` (`POST /auth`, `X-Registry-Auth`).
#[derive(Clone, Default, Deserialize)]
#[serde(default)]
#[allow(missing_docs)]
pub struct AuthBody {
    pub username: Option<String>,
    pub password: Option<String>,
    /// base64 of `user:password`, used when `username` is empty.
    pub auth: Option<String>,
    pub email: Option<String>,
    pub serveraddress: Option<String>,
    pub identitytoken: Option<String>,
    pub registrytoken: Option<String>,
}

impl std::fmt::Debug for AuthBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthBody")
            .field("username", &self.username)
            .field("serveraddress", &self.serveraddress)
            .finish_non_exhaustive()
    }
}

impl AuthBody {
    /// The credentials, and the registry they are for (may be empty).
    pub fn into_auth(self) -> Result<(String, AuthConfig), String> {
        let mut username = self.username.unwrap_or_default();
        let mut password = self.password.unwrap_or_default();
        if username.is_empty()
            && let Some(a) = self.auth.filter(|a| !a.is_empty())
        {
            let (u, p) = berth_image::registry::auth::decode_auth(&a).map_err(|e| e.to_string())?;
            username = u;
            password = p;
        }
        Ok((
            self.serveraddress.unwrap_or_default(),
            AuthConfig {
                username,
                password,
                identity_token: self.identitytoken.unwrap_or_default(),
                registry_token: self.registrytoken.unwrap_or_default(),
            },
        ))
    }
}

/// The `X-Registry-Auth` header: base64url (the CLI pads it, some clients
/// do not; the standard alphabet is taken too) of an `AuthConfig`. An
/// empty header is no credentials; one that does not decode is refused.
pub fn registry_auth_header(value: &str) -> Result<AuthConfig, String> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(AuthConfig::default());
    }
    let bad = |why: String| format!("invalid X-Registry-Auth header: {why}");
    let raw = decode_base64(v).map_err(|e| bad(format!("not base64: {e}")))?;
    if !raw.trim_ascii_start().starts_with(b"{") {
        return Err(bad("not a JSON object".into()));
    }
    let body: AuthBody = super::from_json(&raw).map_err(bad)?;
    body.into_auth().map(|(_, a)| a).map_err(bad)
}

/// Base64 as the docker CLI and SDKs send it in headers: the URL-safe
/// alphabet, padded or not (the standard alphabet is taken too).
fn decode_base64(v: &str) -> Result<Vec<u8>, base64::DecodeError> {
    let normalized: String = v
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(normalized.as_bytes())
}

/// The `X-Registry-Config` header of `POST /build`: base64 of a JSON
/// object from registry to credentials (`{}` and an empty header: none).
pub fn registry_config_header(
    value: &str,
) -> Result<std::collections::BTreeMap<String, AuthConfig>, String> {
    let v = value.trim();
    let mut out = std::collections::BTreeMap::new();
    if v.is_empty() {
        return Ok(out);
    }
    let bad = |why: String| format!("invalid X-Registry-Config header: {why}");
    let raw = decode_base64(v).map_err(|e| bad(format!("not base64: {e}")))?;
    let map: std::collections::BTreeMap<String, AuthBody> = super::from_json(&raw).map_err(bad)?;
    for (registry, body) in map {
        let (_, a) = body.into_auth().map_err(bad)?;
        out.insert(registry, a);
    }
    Ok(out)
}

/// The name `repo` and `tag` parameters give (commit, import, tag), with
/// dockerd's messages for a bad one; `None` when `repo` is empty.
pub fn repo_tag(repo: &str, tag: &str) -> Result<Option<berth_types::Reference>, String> {
    if repo.is_empty() {
        return Ok(None);
    }
    let valid_tag = |t: &str| {
        let b = t.as_bytes();
        b.len() <= 128
            && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
    };
    let r = match berth_types::Reference::parse(repo) {
        Ok(r) => r,
        Err(e) if e.reason.contains("lowercase") => {
            return Err("invalid reference format: repository name must be lowercase".into());
        }
        Err(_) => return Err("invalid reference format".into()),
    };
    if tag.is_empty() {
        return Ok(Some(r));
    }
    if !valid_tag(tag) {
        return Err("invalid tag format".into());
    }
    // a tag given apart replaces the one in `repo`, as dockerd's does
    berth_types::Reference::parse(&format!("{}:{tag}", r.repository()))
        .map(Some)
        .map_err(|_| "invalid reference format".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_auth_headers() {
        assert!(registry_auth_header("").unwrap().is_empty());
        assert!(registry_auth_header("e30=").unwrap().is_empty(), "{{}}");
        // {"username":"alice","password":"s3cr?t>"} in base64url, padded
        // and not, and in the standard alphabet
        let json = br#"{"username":"alice","password":"s3cr?t>","serveraddress":"r"}"#;
        for engine in [
            base64::engine::general_purpose::URL_SAFE,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
            base64::engine::general_purpose::STANDARD,
        ] {
            let a = registry_auth_header(&engine.encode(json)).unwrap();
            assert_eq!(
                (a.username.as_str(), a.password.as_str()),
                ("alice", "s3cr?t>")
            );
        }
        // the `auth` field when no user name is given
        let h = base64::engine::general_purpose::URL_SAFE.encode(br#"{"auth":"Ym9iOnB3"}"#);
        assert_eq!(registry_auth_header(&h).unwrap().username, "bob");
        for bad in [
            "notbase64!!",
            "bm90anNvbg==",
            "W10=",
            "eyJ1c2VybmFtZSI6NX0=",
        ] {
            let e = registry_auth_header(bad).unwrap_err();
            assert!(
                e.starts_with("invalid X-Registry-Auth header"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn repo_and_tag_as_dockerd_reads_them() {
        let r = |a, b| repo_tag(a, b);
        assert_eq!(r("", "x").unwrap(), None);
        assert_eq!(r("a", "").unwrap().unwrap().familiar(), "a:latest");
        assert_eq!(r("a/b", "v1").unwrap().unwrap().familiar(), "a/b:v1");
        assert_eq!(
            r("UPPER", "x").unwrap_err(),
            "invalid reference format: repository name must be lowercase"
        );
        assert_eq!(r("a", "bad:tag").unwrap_err(), "invalid tag format");
        assert_eq!(r("a", "-x").unwrap_err(), "invalid tag format");
        assert_eq!(r("a b", "").unwrap_err(), "invalid reference format");
        assert_eq!(r("a:1", "2").unwrap().unwrap().familiar(), "a:2");
        assert_eq!(r("é", "").unwrap_err(), "invalid reference format");
    }

    #[test]
    fn commit_bodies() {
        assert!(CommitConfig::parse(b"").unwrap().is_none());
        assert!(CommitConfig::parse(b" null ").unwrap().is_none());
        assert!(CommitConfig::parse(b"{}").unwrap().is_none());
        let c = CommitConfig::parse(br#"{"Env":["C=3"],"Cmd":"x","Hostname":"h"}"#)
            .unwrap()
            .unwrap()
            .into_config();
        assert_eq!(c.env, ["C=3"]);
        assert_eq!(c.cmd.unwrap(), ["x"]);
        assert_eq!(c.extra.get("Hostname").unwrap(), "h");
        let e = CommitConfig::parse(br#"{"Env":"A=1"}"#).unwrap_err();
        assert!(e.contains("Env"), "{e}");
        assert!(CommitConfig::parse(b"notjson").is_err());
    }
}
