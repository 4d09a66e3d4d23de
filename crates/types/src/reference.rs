//! Image references, parsed and normalised as Docker does:
//! `busybox` → `docker.io/library/busybox:latest`,
//! `localhost:5000/team/app@sha256:...`, `ghcr.io/o/r:v1`.

use std::fmt;
use std::str::FromStr;

use crate::Digest;

/// The registry Docker Hub images live on.
pub const DOCKER_HUB: &str = "docker.io";

/// A parsed, normalised image reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Why a string is not a reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidReference {
    /// The input.
    pub input: String,
    /// What is wrong.
    pub reason: &'static str,
}

impl fmt::Display for InvalidReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid reference format {:?}: {}",
            self.input, self.reason
        )
    }
}

impl std::error::Error for InvalidReference {}

fn valid_component(c: &str) -> bool {
    // [a-z0-9]+ separated by one of ".", "_", "__" or any number of "-"
    if c.is_empty() {
        return false;
    }
    let b = c.as_bytes();
    if !b[0].is_ascii_lowercase() && !b[0].is_ascii_digit() {
        return false;
    }
    if !b[b.len() - 1].is_ascii_lowercase() && !b[b.len() - 1].is_ascii_digit() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let ch = b[i];
        if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && matches!(b[i], b'.' | b'_' | b'-') {
            i += 1;
        }
        let sep = b.get(start..i).unwrap_or_default();
        let ok = sep == b"."
            || sep == b"_"
            || sep == b"__"
            || (!sep.is_empty() && sep.iter().all(|&x| x == b'-'));
        if !ok {
            return false;
        }
    }
    true
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || d.starts_with('[') => (h, Some(p)),
        _ => (d, None),
    };
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.len() > 5)
    {
        return false;
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

impl Reference {
    /// Parses and normalises `s`.
    pub fn parse(s: &str) -> Result<Reference, InvalidReference> {
        let bad = |reason| InvalidReference {
            input: s.to_owned(),
            reason,
        };
        if s.is_empty() {
            return Err(bad("it is empty"));
        }
        if s.len() > 4096 {
            return Err(bad("it is too long"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (
                r,
                Some(
                    d.parse::<Digest>()
                        .map_err(|_| bad("the digest is malformed"))?,
                ),
            ),
            None => (s, None),
        };
        // The tag is after the last ':' that follows the last '/'.
        let (name, tag) = match rest.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => (n, Some(t)),
            _ => (rest, None),
        };
        if let Some(t) = tag
            && !valid_tag(t)
        {
            return Err(bad("the tag is malformed"));
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains('.')
                    || first.contains(':')
                    || first == "localhost"
                    || first.starts_with('[') =>
            {
                if !valid_domain(first) {
                    return Err(bad("the registry host is malformed"));
                }
                (first.to_owned(), remainder.to_owned())
            }
            _ => (DOCKER_HUB.to_owned(), name.to_owned()),
        };
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(bad("repository names must be lowercase"));
        }
        if path.is_empty() || !path.split('/').all(valid_component) {
            return Err(bad("the repository name is malformed"));
        }
        let domain = if domain == "index.docker.io" || domain == "registry-1.docker.io" {
            DOCKER_HUB.to_owned()
        } else {
            domain
        };
        let path = if domain == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        // on the normalised name, so that every accepted reference prints
        // to one that parses (found by the `reference` fuzz target)
        if domain.len() + 1 + path.len() > 255 {
            return Err(bad("the repository name is longer than 255 characters"));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_owned()),
            (None, None) => Some("latest".to_owned()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// The registry host (and port).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path in the registry (`library/busybox`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `domain/path`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// A copy with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Reference, InvalidReference> {
        if !valid_tag(tag) {
            return Err(InvalidReference {
                input: tag.to_owned(),
                reason: "the tag is malformed",
            });
        }
        Ok(Reference {
            tag: Some(tag.to_owned()),
            digest: None,
            ..self.clone()
        })
    }

    /// A copy naming `digest` (keeping no tag).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The short form Docker shows: `busybox:latest`, `myrepo/app:v1`,
    /// `localhost:5000/app:v1`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_repository();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
        s
    }

    /// The repository as Docker shows it (`busybox`, `localhost:5000/app`).
    pub fn familiar_repository(&self) -> String {
        if self.domain == DOCKER_HUB {
            // `library/` goes only from official images (`library/a/b`
            // stays), and the domain stays when the path would read as one
            // (`docker.io/localhost/x`)
            let first = self.path.split('/').next().unwrap_or_default();
            if self.path.contains('/')
                && (first.contains('.') || first.contains(':') || first == "localhost")
            {
                return self.repository();
            }
            match self.path.strip_prefix("library/") {
                Some(rest) if !rest.contains('/') => rest.to_owned(),
                _ => self.path.clone(),
            }
        } else {
            self.repository()
        }
    }
}

impl FromStr for Reference {
    type Err = InvalidReference;

    fn from_str(s: &str) -> Result<Reference, InvalidReference> {
        Reference::parse(s)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(norm("team/app"), "docker.io/team/app:latest");
        assert_eq!(
            norm("index.docker.io/library/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(norm("localhost/app"), "localhost/app:latest");
        assert_eq!(norm("localhost:5000/a/b:v1"), "localhost:5000/a/b:v1");
        assert_eq!(
            norm("127.0.0.1:5999/foo/new:latest"),
            "127.0.0.1:5999/foo/new:latest"
        );
        assert_eq!(norm("ghcr.io/o/r"), "ghcr.io/o/r:latest");
        let d = format!("sha256:{}", "e".repeat(64));
        assert_eq!(
            norm(&format!("busybox@{d}")),
            format!("docker.io/library/busybox@{d}")
        );
        assert_eq!(
            norm(&format!("busybox:1@{d}")),
            format!("docker.io/library/busybox:1@{d}")
        );
        assert_eq!(norm("[::1]:5000/x"), "[::1]:5000/x:latest");
    }

    #[test]
    fn familiar_forms() {
        assert_eq!(
            Reference::parse("busybox").unwrap().familiar(),
            "busybox:latest"
        );
        assert_eq!(
            Reference::parse("team/app:v2").unwrap().familiar(),
            "team/app:v2"
        );
        assert_eq!(
            Reference::parse("localhost:5000/app").unwrap().familiar(),
            "localhost:5000/app:latest"
        );
        // found by the `reference` fuzz target: familiar forms parse back
        for s in [
            "library/4/i",
            "docker.io/localhost/x",
            "docker.io/a.b/c",
            "library/x",
        ] {
            let r = Reference::parse(s).unwrap();
            assert_eq!(Reference::parse(&r.familiar()).unwrap(), r, "{s}");
        }
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "Busybox",
            "a//b",
            "a/",
            "-a",
            "a:",
            "a:-x",
            "a@sha256:zz",
            "a b",
            "a:b:c",
            "UPPER/x",
            "foo/..",
            "a__-b",
            "localhost:99999x/a",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
        assert!(Reference::parse(&"a".repeat(300)).is_err());
    }
}
