use std::fmt;

/// The short form of an object id as Docker prints it: its first 12
/// characters (the whole id when shorter; never splits a character).
pub fn short_id(id: &str) -> &str {
    let end = id.char_indices().nth(12).map_or(id.len(), |(i, _)| i);
    id.get(..end).unwrap_or(id)
}

/// A container identifier as runc accepts it: 1 to 1024 characters from
/// `[A-Za-z0-9_+.-]`, not `.` or `..` (the id names a directory).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerId(String);

/// Why a string is not a valid [`ContainerId`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidId {
    /// The rejected input.
    pub id: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for InvalidId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid container id {:?}: {}", self.id, self.reason)
    }
}

impl std::error::Error for InvalidId {}

impl ContainerId {
    /// Longest accepted id.
    pub const MAX_LEN: usize = 1024;

    /// Validates `id`.
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidId> {
        let id = id.into();
        let reason = if id.is_empty() {
            Some("it is empty")
        } else if id.len() > Self::MAX_LEN {
            Some("it is longer than 1024 characters")
        } else if id == "." || id == ".." {
            Some("it is a path component")
        } else if !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'))
        {
            Some("only letters, digits, '_', '+', '-' and '.' are allowed")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(InvalidId { id, reason }),
            None => Ok(ContainerId(id)),
        }
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ContainerId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_are_twelve_characters() {
        assert_eq!(short_id("0123456789abcdef"), "0123456789ab");
        assert_eq!(short_id("abc"), "abc");
        assert_eq!(short_id("ééééééééééééé"), "éééééééééééé");
    }

    #[test]
    fn accepts_runc_style_ids() {
        for id in ["a", "abc-123", "x_y.z+1", "A".repeat(1024).as_str()] {
            assert!(ContainerId::new(id).is_ok(), "{id}");
        }
    }

    #[test]
    fn rejects_paths_and_odd_characters() {
        for id in [
            "",
            ".",
            "..",
            "a/b",
            "../x",
            "a b",
            "ä",
            "a\0b",
            &"A".repeat(1025),
        ] {
            let err = ContainerId::new(id).unwrap_err();
            assert!(err.to_string().contains("invalid container id"), "{id}");
        }
    }
}
