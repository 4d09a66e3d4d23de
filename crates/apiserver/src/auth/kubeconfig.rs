//! kubeconfig files as kubectl writes them: one cluster, one user and one context, all
//! with the credentials inline (base64 `*-data` fields).

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::AuthError;
use super::fsutil::write_atomic;

/// The name of the cluster and the context in a kubeconfig made here.
pub const CONTEXT_NAME: &str = "default";

/// A kubeconfig (YAML) for `user` authenticating to `server_url` with a client
/// certificate: cluster and context named "default", current-context "default", the CA,
/// certificate and key inline as `certificate-authority-data`, `client-certificate-data`
/// and `client-key-data`.
pub fn kubeconfig(
    server_url: &str,
    ca_pem: &str,
    user: &str,
    cert_pem: &str,
    key_pem: &str,
) -> String {
    let ca = STANDARD.encode(ca_pem.as_bytes());
    let cert = STANDARD.encode(cert_pem.as_bytes());
    let key = STANDARD.encode(key_pem.as_bytes());
    let server = yaml_scalar(server_url);
    let user = yaml_scalar(user);
    let name = yaml_scalar(CONTEXT_NAME);
    format!(
        "apiVersion: v1\n\
         clusters:\n\
         - cluster:\n    certificate-authority-data: {ca}\n    server: {server}\n  name: {name}\n\
         contexts:\n\
         - context:\n    cluster: {name}\n    user: {user}\n  name: {name}\n\
         current-context: {name}\n\
         kind: Config\n\
         preferences: {{}}\n\
         users:\n\
         - name: {user}\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\n"
    )
}

/// Writes a kubeconfig to `path` with mode 0600, atomically (a temporary file in the same
/// directory, then a rename). The directory must exist.
pub fn write_kubeconfig(path: &Path, contents: &str) -> Result<(), AuthError> {
    write_atomic(path, contents.as_bytes(), 0o600)
}

/// `s` as a YAML scalar: plain when that reads back as the same string, double-quoted
/// (JSON escaping, which YAML accepts) otherwise.
fn yaml_scalar(s: &str) -> String {
    let plain_safe = !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':' | '@' | '+' | '=')
        })
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '/')
        && !s.contains(": ")
        && !s.ends_with(':')
        && !is_yaml_special(s);
    if plain_safe {
        s.to_string()
    } else {
        serde_json::Value::String(s.to_string()).to_string()
    }
}

/// Words a YAML 1.1 reader takes for something other than a string.
fn is_yaml_special(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    matches!(
        lower.as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "~"
    ) || s.parse::<f64>().is_ok()
        || s.chars()
            .all(|c| c.is_ascii_digit() || c == ':' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_yaml_ng::Value;
    use std::os::unix::fs::PermissionsExt;

    fn field<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
        path.iter().fold(v, |v, k| match k.parse::<usize>() {
            Ok(i) => &v[i],
            Err(_) => &v[*k],
        })
    }

    fn decode(v: &Value) -> String {
        String::from_utf8(STANDARD.decode(v.as_str().unwrap()).unwrap()).unwrap()
    }

    #[test]
    fn parses_as_yaml_with_kubectls_fields() {
        let text = kubeconfig(
            "https://127.0.0.1:6443",
            "CA PEM\n",
            "admin",
            "CERT PEM\n",
            "KEY PEM\n",
        );
        let v: Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(v["apiVersion"].as_str(), Some("v1"));
        assert_eq!(v["kind"].as_str(), Some("Config"));
        assert_eq!(v["current-context"].as_str(), Some("default"));
        assert_eq!(
            field(&v, &["clusters", "0", "name"]).as_str(),
            Some("default")
        );
        assert_eq!(
            field(&v, &["clusters", "0", "cluster", "server"]).as_str(),
            Some("https://127.0.0.1:6443")
        );
        assert_eq!(
            decode(field(
                &v,
                &["clusters", "0", "cluster", "certificate-authority-data"]
            )),
            "CA PEM\n"
        );
        assert_eq!(
            field(&v, &["contexts", "0", "name"]).as_str(),
            Some("default")
        );
        assert_eq!(
            field(&v, &["contexts", "0", "context", "cluster"]).as_str(),
            Some("default")
        );
        assert_eq!(
            field(&v, &["contexts", "0", "context", "user"]).as_str(),
            Some("admin")
        );
        assert_eq!(field(&v, &["users", "0", "name"]).as_str(), Some("admin"));
        assert_eq!(
            decode(field(
                &v,
                &["users", "0", "user", "client-certificate-data"]
            )),
            "CERT PEM\n"
        );
        assert_eq!(
            decode(field(&v, &["users", "0", "user", "client-key-data"])),
            "KEY PEM\n"
        );
    }

    #[test]
    fn odd_user_names_and_urls_survive_quoting() {
        for user in [
            "system:node:n1",
            "yes",
            "12",
            "ünïcode user",
            "a: b",
            "#x",
            "\"q\"",
        ] {
            let text = kubeconfig("https://[::1]:6443/x?y=1#z", "c", user, "d", "e");
            let v: Value = serde_yaml_ng::from_str(&text).unwrap();
            assert_eq!(
                field(&v, &["users", "0", "name"]).as_str(),
                Some(user),
                "{text}"
            );
            assert_eq!(
                field(&v, &["clusters", "0", "cluster", "server"]).as_str(),
                Some("https://[::1]:6443/x?y=1#z")
            );
        }
    }

    #[test]
    fn written_with_mode_0600_and_replaced_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config");
        write_kubeconfig(&path, "one").unwrap();
        write_kubeconfig(&path, "two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let leftovers = std::fs::read_dir(tmp.path()).unwrap().count();
        assert_eq!(leftovers, 1);
    }
}
