//! Between etcd's terms and the contract's: revisions, keys, versions and
//! errors.
//!
//! Revisions: a fresh etcd is at revision 1 before any write, while the
//! contract's empty store is at 0 and its first write is revision 1. Every
//! etcd has gone through that same first revision, so the contract's
//! revision is etcd's minus one, the same for every client of one etcd and
//! nothing to remember: a write etcd numbers 2 is the contract's 1. Revision
//! 0 ("now") stays 0 both ways.

use berth_kv::{Error, KeyValue, Revision};
use bytes::Bytes;
use etcd_client as etcd;

/// What etcd's revisions are ahead of the contract's.
const OFFSET: Revision = 1;

/// The etcd revision of the contract's `revision` (0, "now", stays 0).
pub(crate) fn to_etcd(revision: Revision) -> Revision {
    if revision == 0 { 0 } else { revision + OFFSET }
}

/// The contract's revision of etcd's `revision` (0, "none", stays 0).
pub(crate) fn from_etcd(revision: Revision) -> Revision {
    if revision <= 0 { 0 } else { revision - OFFSET }
}

/// The contract's current revision from a response header.
pub(crate) fn header_revision(header: Option<&etcd::ResponseHeader>) -> Result<Revision, Error> {
    header
        .map(|h| from_etcd(h.revision()))
        .ok_or_else(|| Error::Backend("etcd answered without a response header".to_owned()))
}

/// The caller's key for an etcd key under the store's `prefix`.
pub(crate) fn caller_key(prefix: &str, key: &[u8]) -> Result<String, Error> {
    let key = key.strip_prefix(prefix.as_bytes()).ok_or_else(|| {
        Error::Backend(format!(
            "etcd returned the key {} outside the store's prefix {prefix:?}",
            String::from_utf8_lossy(key)
        ))
    })?;
    String::from_utf8(key.to_vec()).map_err(|_| {
        Error::Backend(format!(
            "etcd holds a key that is not UTF-8: {}",
            String::from_utf8_lossy(key)
        ))
    })
}

/// The contract's version of an etcd key-value.
pub(crate) fn key_value(prefix: &str, kv: &etcd::KeyValue) -> Result<KeyValue, Error> {
    Ok(KeyValue {
        key: caller_key(prefix, kv.key())?,
        value: Bytes::copy_from_slice(kv.value()),
        create_revision: from_etcd(kv.create_revision()),
        mod_revision: from_etcd(kv.mod_revision()),
    })
}

/// What an etcd error says, as far as the contract tells errors apart.
pub(crate) enum Failure {
    /// "required revision has been compacted".
    Compacted,
    /// "required revision is a future revision".
    FutureRevision,
    /// Anything else, as a backend error.
    Other(Error),
}

/// Sorts an etcd client error.
pub(crate) fn failure(error: etcd::Error) -> Failure {
    if let etcd::Error::GRpcStatus(status) = &error {
        let message = status.message();
        if message.contains("required revision has been compacted") {
            return Failure::Compacted;
        }
        if message.contains("required revision is a future revision") {
            return Failure::FutureRevision;
        }
    }
    Failure::Other(backend(error))
}

/// An etcd client error as the contract's backend error.
pub(crate) fn backend(error: etcd::Error) -> Error {
    Error::Backend(format!("etcd: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_map_both_ways() {
        assert_eq!(to_etcd(0), 0);
        assert_eq!(to_etcd(1), 2);
        assert_eq!(from_etcd(1), 0);
        assert_eq!(from_etcd(2), 1);
        assert_eq!(from_etcd(0), 0);
        for r in 1..100 {
            assert_eq!(from_etcd(to_etcd(r)), r);
        }
    }

    #[test]
    fn keys_lose_the_store_prefix() {
        assert_eq!(caller_key("", b"/registry/a").unwrap(), "/registry/a");
        assert_eq!(caller_key("/t1", b"/t1/registry/a").unwrap(), "/registry/a");
        assert!(caller_key("/t1", b"/t2/registry/a").is_err());
        assert!(caller_key("", b"/\xff").is_err());
    }
}
