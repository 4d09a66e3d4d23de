//! The cluster store on etcd v3.
//!
//! [`EtcdStore`] implements the [`berth_kv::Store`] contract over an etcd
//! cluster, so several berth servers can share one etcd. Keys are stored
//! as the caller gives them (after the store's prefix, empty by default),
//! so `etcdctl get --prefix /registry/` reads what kube-apiserver would
//! have written; values are stored unchanged.
//!
//! Nothing is cached between calls: every read and write goes to etcd,
//! and compare-and-swap runs in etcd transactions, so other writers on the
//! same etcd are always seen. Revisions are etcd's, less one (see
//! `convert`): a fresh etcd is at revision 1 before its first write,
//! where the contract's empty store is at 0.
#![forbid(unsafe_code)]
#![deny(clippy::string_slice)]

mod convert;
mod lease;
#[cfg(feature = "testing")]
pub mod testing;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use berth_kv::{Error, KeyValue, ListOptions, ListResult, Revision, Store, WatchStream};
use bytes::Bytes;
use etcd_client as etcd;
use etcd_client::{Compare, CompareOp, DeleteOptions, GetOptions, PutOptions, Txn, TxnOp};

use crate::convert::{Failure, backend, failure, from_etcd, header_revision, key_value, to_etcd};
use crate::lease::Leases;

/// How long connecting to an endpoint may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the first request may take before connecting gives up.
const FIRST_ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/2 pings on idle connections, so a dead etcd ends watches.
const KEEP_ALIVE: Duration = Duration::from_secs(30);
/// How long a ping may go unanswered.
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// A [`Store`] on etcd. Cloning is cheap: clones share the connection.
#[derive(Clone)]
pub struct EtcdStore {
    client: etcd::Client,
    prefix: String,
    leases: Arc<Leases>,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// The largest response read from etcd (kube-apiserver's: `math.MaxInt32`).
const MAX_MESSAGE: usize = i32::MAX as usize;

impl EtcdStore {
    /// Connects to the etcd cluster at `endpoints` (`http://host:port`)
    /// and checks that it answers. Every key is stored under `prefix`
    /// (`""`: as given), so clusters can share one etcd.
    pub async fn connect(endpoints: &[String], prefix: &str) -> Result<EtcdStore, Error> {
        if endpoints.is_empty() {
            return Err(Error::Backend("no etcd endpoint given".to_owned()));
        }
        let options = etcd::ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_keep_alive(KEEP_ALIVE, KEEP_ALIVE_TIMEOUT)
            .with_keep_alive_while_idle(true)
            .with_require_leader(true);
        let client = etcd::Client::connect(endpoints, Some(options))
            .await
            .map_err(|e| {
                Error::Backend(format!(
                    "connecting to etcd at {}: {e}",
                    endpoints.join(",")
                ))
            })?;
        let store = EtcdStore {
            client,
            prefix: prefix.to_owned(),
            leases: Arc::default(),
        };
        let answer = tokio::time::timeout(FIRST_ANSWER_TIMEOUT, store.current_revision()).await;
        match answer {
            Ok(Ok(_)) => Ok(store),
            Ok(Err(e)) => Err(Error::Backend(format!(
                "etcd at {} does not answer: {e}",
                endpoints.join(",")
            ))),
            Err(_) => Err(Error::Backend(format!(
                "etcd at {} did not answer within {FIRST_ANSWER_TIMEOUT:?}",
                endpoints.join(",")
            ))),
        }
    }

    /// A KV client that reads responses of any size (tonic's default
    /// cap, 4 MiB, is less than a list of 10,000 objects; kube-apiserver
    /// lifts it the same way).
    fn kv(&self) -> etcd::KvClient {
        self.client
            .kv_client()
            .max_decoding_message_size(MAX_MESSAGE)
    }

    /// A watch client with the same limit.
    fn watcher(&self) -> etcd::WatchClient {
        self.client
            .watch_client()
            .max_decoding_message_size(MAX_MESSAGE)
    }

    /// The prefix every key is stored under.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The etcd key of the caller's `key`.
    fn full(&self, key: &str) -> Vec<u8> {
        let mut full = Vec::with_capacity(self.prefix.len() + key.len());
        full.extend_from_slice(self.prefix.as_bytes());
        full.extend_from_slice(key.as_bytes());
        full
    }

    /// The etcd range of every key under the caller's `prefix`: its start
    /// and its end (`\0`, "every key from the start", when no key is
    /// greater than all the prefix's keys).
    fn range(&self, prefix: &str) -> (Vec<u8>, Vec<u8>) {
        let full = format!("{}{prefix}", self.prefix);
        let end = berth_kv::prefix_end(&full).unwrap_or_else(|| vec![0]);
        let mut start = full.into_bytes();
        if start.is_empty() {
            start.push(0);
        }
        (start, end)
    }

    /// A range read; `requested` is the contract revision it is made at,
    /// for the compacted and future-revision errors.
    async fn read(
        &self,
        key: Vec<u8>,
        options: GetOptions,
        requested: Revision,
    ) -> Result<etcd::GetResponse, Error> {
        match self.kv().get(key, Some(options)).await {
            Ok(response) => Ok(response),
            Err(error) => Err(self.revision_error(error, requested).await),
        }
    }

    /// The contract's error for an etcd error about `requested`.
    async fn revision_error(&self, error: etcd::Error, requested: Revision) -> Error {
        match failure(error) {
            // etcd refuses a compaction at its compacted revision itself,
            // which it can still read: only the revision before is known
            // to be unreadable.
            Failure::Compacted => match self.compacted_after(to_etcd(requested) - 1).await {
                Ok(compacted) => Error::Compacted {
                    requested,
                    compacted,
                },
                Err(error) => error,
            },
            Failure::FutureRevision => match self.current_revision().await {
                Ok(current) => Error::FutureRevision { requested, current },
                Err(error) => error,
            },
            Failure::Other(error) => error,
        }
    }

    /// The compacted error for a revision below 0.
    async fn negative(&self, requested: Revision) -> Error {
        match self.compacted_revision().await {
            Ok(compacted) => Error::Compacted {
                requested,
                compacted,
            },
            Err(error) => error,
        }
    }

    /// Whether etcd can still read at its revision `revision`.
    async fn readable(&self, revision: Revision) -> Result<bool, Error> {
        let options = GetOptions::new().with_revision(revision).with_count_only();
        match self.kv().get(vec![0], Some(options)).await {
            Ok(_) => Ok(true),
            Err(error) => match failure(error) {
                Failure::Compacted => Ok(false),
                Failure::FutureRevision => Err(Error::Backend(format!(
                    "etcd calls its revision {revision} a future one while probing compaction"
                ))),
                Failure::Other(error) => Err(error),
            },
        }
    }

    /// The contract's compacted revision, knowing that etcd cannot read at
    /// its revision `unreadable` (1 or less: nothing known). etcd does not tell its
    /// compacted revision, only refuses reads below it: the oldest
    /// readable revision is searched for, one range request per halving.
    async fn compacted_after(&self, unreadable: Revision) -> Result<Revision, Error> {
        // The current revision in etcd's numbers.
        let current = to_etcd(self.current_revision().await?).max(1);
        let mut low = unreadable.max(1);
        if low == 1 && self.readable(1).await? {
            return Ok(0);
        }
        // etcd cannot read at `low` and can read at `high`.
        let mut high = current.max(low + 1);
        while high - low > 1 {
            let middle = low + (high - low) / 2;
            if self.readable(middle).await? {
                high = middle;
            } else {
                low = middle;
            }
        }
        Ok(from_etcd(high))
    }

    /// Runs a write transaction whose success branch puts `key` with a
    /// lease for `ttl`. A lease etcd no longer knows is forgotten and the
    /// write tried once more with a new one.
    async fn write(
        &self,
        key: &str,
        value: &Bytes,
        ttl: Option<Duration>,
        compare: Compare,
        otherwise: Vec<TxnOp>,
    ) -> Result<etcd::TxnResponse, Error> {
        let full = self.full(key);
        let mut tries = 0;
        loop {
            tries += 1;
            let mut put = PutOptions::new().with_prev_key();
            let lease = match ttl {
                Some(ttl) => Some(self.leases.lease(&self.client, ttl).await?),
                None => None,
            };
            if let Some(lease) = lease {
                put = put.with_lease(lease);
            }
            let txn = Txn::new()
                .when(vec![compare.clone()])
                .and_then(vec![TxnOp::put(full.clone(), value.to_vec(), Some(put))])
                .or_else(otherwise.clone());
            match self.kv().txn(txn).await {
                Ok(response) => return Ok(response),
                Err(error) => {
                    let lost_lease = matches!(&error, etcd::Error::GRpcStatus(status)
                        if status.message().contains("requested lease not found"));
                    match lease {
                        Some(lease) if lost_lease && tries < 2 => self.leases.forget(lease),
                        _ => return Err(backend(error)),
                    }
                }
            }
        }
    }

    /// The error of an update or delete whose compare failed: the key's
    /// current version from the failed branch's read.
    fn refused(
        &self,
        key: &str,
        expected: Revision,
        response: &etcd::TxnResponse,
    ) -> Result<Error, Error> {
        let current = response
            .op_responses()
            .into_iter()
            .find_map(|op| match op {
                etcd::TxnOpResponse::Get(get) => Some(get),
                _ => None,
            })
            .ok_or_else(|| Error::Backend("etcd's refused transaction has no read".to_owned()))?;
        match current.kvs().first() {
            None => Ok(Error::NotFound(key.to_owned())),
            Some(kv) => Ok(Error::Conflict {
                key: key.to_owned(),
                expected,
                current: Box::new(key_value(&self.prefix, kv)?),
            }),
        }
    }

    /// The error of an update or delete expecting a revision no key can
    /// have (0 or less).
    async fn impossible(&self, key: &str, expected: Revision) -> Error {
        match self.get(key, 0).await {
            Ok((_, None)) => Error::NotFound(key.to_owned()),
            Ok((_, Some(current))) => Error::Conflict {
                key: key.to_owned(),
                expected,
                current: Box::new(current),
            },
            Err(error) => error,
        }
    }
}

#[async_trait]
impl Store for EtcdStore {
    async fn current_revision(&self) -> Result<Revision, Error> {
        let response = self
            .kv()
            .get(vec![0], Some(GetOptions::new().with_count_only()))
            .await
            .map_err(backend)?;
        header_revision(response.header())
    }

    async fn compacted_revision(&self) -> Result<Revision, Error> {
        self.compacted_after(1).await
    }

    async fn get(
        &self,
        key: &str,
        revision: Revision,
    ) -> Result<(Revision, Option<KeyValue>), Error> {
        if revision < 0 {
            return Err(self.negative(revision).await);
        }
        let options = GetOptions::new().with_revision(to_etcd(revision));
        let response = self.read(self.full(key), options, revision).await?;
        let read_at = if revision == 0 {
            header_revision(response.header())?
        } else {
            revision
        };
        let found = response
            .kvs()
            .first()
            .map(|kv| key_value(&self.prefix, kv))
            .transpose()?;
        Ok((read_at, found))
    }

    async fn list(&self, prefix: &str, options: &ListOptions) -> Result<ListResult, Error> {
        if options.revision < 0 {
            return Err(self.negative(options.revision).await);
        }
        let (mut start, end) = self.range(prefix);
        if let Some(after) = &options.start_after
            && after.as_str() >= prefix
        {
            // The first key after `after`.
            start = self.full(after);
            start.push(0);
        }
        let mut get = GetOptions::new()
            .with_range(end)
            .with_revision(to_etcd(options.revision));
        if options.limit > 0 {
            get = get.with_limit(i64::try_from(options.limit).unwrap_or(i64::MAX));
        }
        let response = self.read(start, get, options.revision).await?;
        let revision = if options.revision == 0 {
            header_revision(response.header())?
        } else {
            options.revision
        };
        let items = response
            .kvs()
            .iter()
            .map(|kv| key_value(&self.prefix, kv))
            .collect::<Result<Vec<_>, _>>()?;
        let returned = i64::try_from(items.len()).unwrap_or(i64::MAX);
        let remaining = if response.more() {
            (response.count() - returned).max(0)
        } else {
            0
        };
        Ok(ListResult {
            revision,
            items,
            more: remaining > 0,
            remaining,
        })
    }

    async fn count(&self, prefix: &str) -> Result<(Revision, i64), Error> {
        let (start, end) = self.range(prefix);
        let options = GetOptions::new().with_range(end).with_count_only();
        let response = self.read(start, options, 0).await?;
        Ok((header_revision(response.header())?, response.count()))
    }

    async fn create(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> Result<KeyValue, Error> {
        let absent = Compare::create_revision(self.full(key), CompareOp::Equal, 0);
        let response = self.write(key, &value, ttl, absent, Vec::new()).await?;
        if !response.succeeded() {
            return Err(Error::Exists(key.to_owned()));
        }
        let revision = header_revision(response.header())?;
        Ok(KeyValue {
            key: key.to_owned(),
            value,
            create_revision: revision,
            mod_revision: revision,
        })
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
        ttl: Option<Duration>,
    ) -> Result<KeyValue, Error> {
        if expected <= 0 {
            return Err(self.impossible(key, expected).await);
        }
        let full = self.full(key);
        let unchanged = Compare::mod_revision(full.clone(), CompareOp::Equal, to_etcd(expected));
        let read = vec![TxnOp::get(full, None)];
        let response = self.write(key, &value, ttl, unchanged, read).await?;
        if !response.succeeded() {
            return Err(self.refused(key, expected, &response)?);
        }
        let revision = header_revision(response.header())?;
        let create_revision = response
            .op_responses()
            .into_iter()
            .find_map(|op| match op {
                etcd::TxnOpResponse::Put(put) => put.prev_key().map(|p| p.create_revision()),
                _ => None,
            })
            .map(from_etcd)
            .ok_or_else(|| {
                Error::Backend(format!(
                    "etcd's update of {key} did not return the previous version"
                ))
            })?;
        Ok(KeyValue {
            key: key.to_owned(),
            value,
            create_revision,
            mod_revision: revision,
        })
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue, Error> {
        let full = self.full(key);
        let compare = match expected {
            Some(expected) if expected <= 0 => return Err(self.impossible(key, expected).await),
            Some(expected) => vec![Compare::mod_revision(
                full.clone(),
                CompareOp::Equal,
                to_etcd(expected),
            )],
            None => Vec::new(),
        };
        let txn = Txn::new()
            .when(compare)
            .and_then(vec![TxnOp::delete(
                full.clone(),
                Some(DeleteOptions::new().with_prev_key()),
            )])
            .or_else(vec![TxnOp::get(full, None)]);
        let response = self.kv().txn(txn).await.map_err(backend)?;
        if !response.succeeded() {
            return Err(self.refused(key, expected.unwrap_or(0), &response)?);
        }
        let revision = header_revision(response.header())?;
        let deleted = response.op_responses().into_iter().find_map(|op| match op {
            etcd::TxnOpResponse::Delete(delete) => delete.prev_kvs().first().cloned(),
            _ => None,
        });
        let deleted = deleted.ok_or_else(|| Error::NotFound(key.to_owned()))?;
        Ok(KeyValue {
            mod_revision: revision,
            ..key_value(&self.prefix, &deleted)?
        })
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, Error> {
        if after < 0 {
            return Err(self.negative(after).await);
        }
        let (start, end) = self.range(prefix);
        // Reading at `after` checks it is neither compacted nor future,
        // which etcd's watch would not tell so plainly.
        let check = GetOptions::new()
            .with_range(end.clone())
            .with_revision(to_etcd(after))
            .with_count_only();
        let response = self.read(start.clone(), check, after).await?;
        let after = if after == 0 {
            header_revision(response.header())?
        } else {
            after
        };
        let options = etcd::WatchOptions::new()
            .with_range(end)
            .with_start_revision(to_etcd(after) + 1)
            .with_prev_key();
        let stream = self
            .watcher()
            .watch(start, Some(options))
            .await
            .map_err(backend)?;
        watch::events(stream, self.prefix.clone(), after).await
    }

    async fn compact(&self, revision: Revision) -> Result<(), Error> {
        if revision <= 0 {
            return Err(self.negative(revision).await);
        }
        match self.kv().compact(to_etcd(revision), None).await {
            Ok(_) => Ok(()),
            Err(error) => Err(self.revision_error(error, revision).await),
        }
    }
}
