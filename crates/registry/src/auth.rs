//! HTTP Basic authentication.
//!
//! Credentials are `(user, secret)` pairs. A secret that begins with `$2a$`,
//! `$2b$` or `$2y$` is a bcrypt hash (what `htpasswd -B` writes, and the only
//! hash distribution accepts); any other secret is a plain password, compared
//! in constant time. Other htpasswd hashes (`{SHA}`, `$apr1$`, crypt) are
//! refused when the file is loaded rather than silently never matching.
//! Successful bcrypt checks are remembered (as a SHA-256 of user, password
//! and hash) so that each request does not pay for a bcrypt round.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::error::Error;

/// How clients must authenticate.
#[derive(Clone)]
pub enum Auth {
    /// HTTP Basic with these `(user, password or bcrypt hash)` pairs.
    Basic(Vec<(String, String)>),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Basic(users) => f
                .debug_tuple("Basic")
                .field(&users.iter().map(|(u, _)| u.as_str()).collect::<Vec<_>>())
                .finish(),
        }
    }
}

fn is_bcrypt(secret: &str) -> bool {
    ["$2a$", "$2b$", "$2y$", "$2x$"]
        .iter()
        .any(|p| secret.starts_with(p))
}

impl Auth {
    /// One user with a plain password, from `user:password` (as the
    /// `--auth` flag takes it).
    pub fn from_user_password(s: &str) -> Result<Auth, Error> {
        match s.split_once(':') {
            Some((user, password)) if !user.is_empty() && !password.is_empty() => {
                Ok(Auth::Basic(vec![(user.to_owned(), password.to_owned())]))
            }
            _ => Err(Error::Auth(
                "credentials must be given as user:password, both non-empty".into(),
            )),
        }
    }

    /// Reads an htpasswd file: `user:secret` lines, where the secret is a
    /// bcrypt hash or a plain password; blank lines and `#` comments are
    /// skipped.
    pub fn from_htpasswd(path: &Path) -> Result<Auth, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("read {}", path.display()), e))?;
        Auth::parse_htpasswd(&text).map_err(|m| Error::Auth(format!("{}: {m}", path.display())))
    }

    fn parse_htpasswd(text: &str) -> Result<Auth, String> {
        let mut users = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let Some((user, secret)) = line.split_once(':') else {
                return Err(format!("line {}: expected user:password", n + 1));
            };
            if user.is_empty() || secret.is_empty() {
                return Err(format!("line {}: empty user or password", n + 1));
            }
            if secret.starts_with("{SHA}") || secret.starts_with("$apr1$") {
                return Err(format!(
                    "line {}: user {user:?} has a {} hash; only bcrypt (htpasswd -B) and plain passwords are supported",
                    n + 1,
                    if secret.starts_with("{SHA}") {
                        "{SHA}"
                    } else {
                        "MD5 ($apr1$)"
                    }
                ));
            }
            users.push((user.to_owned(), secret.to_owned()));
        }
        if users.is_empty() {
            return Err("no users".into());
        }
        Ok(Auth::Basic(users))
    }
}

/// Checks `Authorization` headers against an [`Auth`].
pub(crate) struct Checker {
    auth: Auth,
    verified: Mutex<HashSet<[u8; 32]>>,
}

/// How many remembered bcrypt successes to keep before starting over.
const VERIFIED_CAP: usize = 1024;

fn fingerprint(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().into()
}

/// Compares in time independent of where the inputs differ (and, by
/// hashing first, of their lengths).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let (x, y) = (fingerprint(&[a]), fingerprint(&[b]));
    x.iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q))
        == 0
}

impl Checker {
    pub(crate) fn new(auth: Auth) -> Checker {
        Checker {
            auth,
            verified: Mutex::new(HashSet::new()),
        }
    }

    /// Whether the `Authorization` header value grants access. May run a
    /// bcrypt check; call it off the async runtime when `needs_blocking`.
    pub(crate) fn check(&self, header: Option<&str>) -> bool {
        let Some((user, password)) = header.and_then(parse_basic) else {
            return false;
        };
        let Auth::Basic(users) = &self.auth;
        // every entry is looked at, so timing does not reveal which users exist
        let mut ok = false;
        for (u, secret) in users {
            let user_ok = ct_eq(u.as_bytes(), user.as_bytes());
            let secret_ok = if is_bcrypt(secret) {
                user_ok && self.bcrypt_ok(&user, &password, secret)
            } else {
                ct_eq(secret.as_bytes(), password.as_bytes())
            };
            ok |= user_ok && secret_ok;
        }
        ok
    }

    /// Whether checking this header may take a bcrypt round (not yet
    /// remembered).
    pub(crate) fn needs_blocking(&self, header: Option<&str>) -> bool {
        let Auth::Basic(users) = &self.auth;
        let Some((user, password)) = header.and_then(parse_basic) else {
            return false;
        };
        users.iter().any(|(u, s)| {
            *u == user
                && is_bcrypt(s)
                && !self.remembered(&fingerprint(&[
                    user.as_bytes(),
                    password.as_bytes(),
                    s.as_bytes(),
                ]))
        })
    }

    fn remembered(&self, fp: &[u8; 32]) -> bool {
        self.verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(fp)
    }

    fn bcrypt_ok(&self, user: &str, password: &str, hash: &str) -> bool {
        let fp = fingerprint(&[user.as_bytes(), password.as_bytes(), hash.as_bytes()]);
        if self.remembered(&fp) {
            return true;
        }
        let ok = bcrypt::verify(password, hash).unwrap_or(false);
        if ok {
            let mut set = self.verified.lock().unwrap_or_else(|e| e.into_inner());
            if set.len() >= VERIFIED_CAP {
                set.clear();
            }
            set.insert(fp);
        }
        ok
    }
}

/// `Basic base64(user:password)` → `(user, password)`.
fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(u: &str, p: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        )
    }

    #[test]
    fn plain_and_bcrypt() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let auth = Auth::parse_htpasswd(&format!("# users\nalice:pw\n\nbob:{hash}\n")).unwrap();
        let c = Checker::new(auth);
        assert!(c.check(Some(&basic("alice", "pw"))));
        assert!(!c.check(Some(&basic("alice", "pw2"))));
        assert!(!c.check(Some(&basic("bob", "pw"))));
        assert!(c.needs_blocking(Some(&basic("bob", "s3cret"))));
        assert!(c.check(Some(&basic("bob", "s3cret"))));
        assert!(!c.needs_blocking(Some(&basic("bob", "s3cret"))));
        assert!(c.check(Some(&basic("bob", "s3cret"))));
        assert!(!c.check(Some(&basic("carol", "pw"))));
        assert!(!c.check(None));
        assert!(!c.check(Some("Bearer x")));
        assert!(!c.check(Some("Basic !!!")));
    }

    #[test]
    fn refuses_unsupported_hashes_and_bad_lines() {
        assert!(Auth::parse_htpasswd("a:{SHA}abc").is_err());
        assert!(Auth::parse_htpasswd("a:$apr1$x$y").is_err());
        assert!(Auth::parse_htpasswd("nocolon").is_err());
        assert!(Auth::parse_htpasswd("# only a comment\n").is_err());
        assert!(Auth::from_user_password("u:p").is_ok());
        assert!(Auth::from_user_password("u:").is_err());
        assert!(Auth::from_user_password("up").is_err());
        assert_eq!(
            format!("{:?}", Auth::from_user_password("u:secret").unwrap()),
            "Basic([\"u\"])"
        );
    }
}
