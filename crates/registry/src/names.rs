//! Repository names, tags and manifest references as the distribution-spec
//! defines them.

use berth_types::Digest;

/// Longest repository name accepted (what clients allow with a host).
pub(crate) const MAX_NAME_LEN: usize = 255;

/// Whether `name` matches the spec's
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
pub(crate) fn valid_repository(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME_LEN && name.split('/').all(valid_component)
}

/// One path component: alphanumeric runs joined by `.`, `_`, `__` or `-+`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    loop {
        // an alphanumeric run
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        // a separator
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// Whether `tag` matches `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub(crate) fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

/// The `<reference>` of a manifest URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reference {
    /// A tag.
    Tag(String),
    /// A digest.
    Digest(Digest),
}

/// Why a reference was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum BadReference {
    /// It has a `:` but is not a digest berth knows.
    Digest,
    /// It is not a valid tag.
    Tag,
}

impl Reference {
    /// Parses a tag or a digest (anything with a `:` is taken for a digest).
    pub(crate) fn parse(s: &str) -> Result<Reference, BadReference> {
        if s.contains(':') {
            s.parse()
                .map(Reference::Digest)
                .map_err(|_| BadReference::Digest)
        } else if valid_tag(s) {
            Ok(Reference::Tag(s.to_owned()))
        } else {
            Err(BadReference::Tag)
        }
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reference::Tag(t) => f.write_str(t),
            Reference::Digest(d) => write!(f, "{d}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names() {
        for ok in [
            "a",
            "library/busybox",
            "a.b/c_d/e__f/g-h/i---j",
            "0/1/2",
            "myorg/myrepo",
            "x.y.z",
        ] {
            assert!(valid_repository(ok), "{ok}");
        }
        for bad in [
            "",
            "A",
            "a/",
            "/a",
            "a//b",
            "a_",
            "a___b",
            "a..b",
            "-a",
            "a.-b",
            "a b",
            "_catalog",
            "a/Bc",
            &"a".repeat(256),
        ] {
            assert!(!valid_repository(bad), "{bad}");
        }
    }

    #[test]
    fn tags_and_references() {
        assert!(valid_tag("latest"));
        assert!(valid_tag("_x"));
        assert!(valid_tag("v1.2.3-rc_1"));
        assert!(valid_tag(&"a".repeat(128)));
        assert!(!valid_tag(&"a".repeat(129)));
        assert!(!valid_tag(".x"));
        assert!(!valid_tag("-x"));
        assert!(!valid_tag("a/b"));
        assert_eq!(Reference::parse("v1"), Ok(Reference::Tag("v1".into())));
        let d = format!("sha256:{}", "a".repeat(64));
        assert!(matches!(Reference::parse(&d), Ok(Reference::Digest(_))));
        assert_eq!(
            Reference::parse("sha256:baddigeststring"),
            Err(BadReference::Digest)
        );
        assert_eq!(Reference::parse("-x"), Err(BadReference::Tag));
    }
}
