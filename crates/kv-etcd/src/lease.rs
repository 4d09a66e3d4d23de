//! Leases for keys that expire.
//!
//! Each TTL needs an etcd lease. Granting one per write would leave etcd
//! with a lease per event object, so, as kube-apiserver does, a lease is
//! granted a little longer than asked (5 % of the TTL, at most a minute)
//! and reused by later writes of the same TTL for as long as it still
//! outlives their TTL: a key may live up to that margin past its TTL, never
//! less. The cache holds only lease ids of this process's own grants,
//! which no other writer changes; a lease that is gone anyway (revoked by
//! an operator) is forgotten and granted anew.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use berth_kv::Error;
use etcd_client as etcd;

use crate::convert::backend;

/// The longest extra life a reused lease may give a key.
const MAX_REUSE: Duration = Duration::from_secs(60);

/// More cached TTLs than this and the cache starts over.
const MAX_CACHED: usize = 64;

#[derive(Debug, Clone, Copy)]
struct Granted {
    id: i64,
    expires: Instant,
}

/// This process's reusable leases, by TTL in seconds.
#[derive(Debug, Default)]
pub(crate) struct Leases {
    by_ttl: Mutex<HashMap<i64, Granted>>,
}

/// A TTL in whole seconds, rounded up, at least 1.
pub(crate) fn ttl_seconds(ttl: Duration) -> i64 {
    let whole = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
    let seconds = if ttl.subsec_nanos() > 0 {
        whole.saturating_add(1)
    } else {
        whole
    };
    seconds.max(1)
}

/// How much longer than `ttl` a lease is granted, in whole seconds.
fn reuse_seconds(ttl: i64) -> i64 {
    let max = i64::try_from(MAX_REUSE.as_secs()).unwrap_or(i64::MAX);
    (ttl / 20).min(max)
}

impl Leases {
    /// A lease that lives at least `ttl`.
    pub(crate) async fn lease(&self, client: &etcd::Client, ttl: Duration) -> Result<i64, Error> {
        let ttl = ttl_seconds(ttl);
        let now = Instant::now();
        let wanted = now + Duration::from_secs(ttl.unsigned_abs());
        if let Some(granted) = self.lock().get(&ttl)
            && granted.expires >= wanted
        {
            return Ok(granted.id);
        }
        let granted_ttl = ttl.saturating_add(reuse_seconds(ttl));
        let response = client
            .lease_client()
            .grant(granted_ttl, None)
            .await
            .map_err(backend)?;
        // etcd may grant longer than asked (its minimum TTL), never shorter.
        let lived = response.ttl().max(granted_ttl);
        let granted = Granted {
            id: response.id(),
            expires: now + Duration::from_secs(lived.unsigned_abs()),
        };
        let mut cache = self.lock();
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(ttl, granted);
        Ok(granted.id)
    }

    /// Forgets `id` (etcd no longer knows it).
    pub(crate) fn forget(&self, id: i64) {
        self.lock().retain(|_, granted| granted.id != id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Granted>> {
        // The map is only ever replaced whole per entry: a poisoned lock
        // still holds usable entries.
        self.by_ttl
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_round_up_to_whole_seconds() {
        assert_eq!(ttl_seconds(Duration::from_millis(1)), 1);
        assert_eq!(ttl_seconds(Duration::ZERO), 1);
        assert_eq!(ttl_seconds(Duration::from_secs(2)), 2);
        assert_eq!(ttl_seconds(Duration::from_millis(2001)), 3);
    }

    #[test]
    fn reuse_is_five_percent_at_most_a_minute() {
        assert_eq!(reuse_seconds(1), 0);
        assert_eq!(reuse_seconds(100), 5);
        assert_eq!(reuse_seconds(3600), 60);
    }
}
