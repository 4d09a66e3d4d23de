//! Objects over the store: JSON in, JSON out, resourceVersion = the
//! store's revision, and the retrying read-modify-write every update uses.

use std::sync::Arc;

use berth_kv::{KeyValue, ListOptions, Revision, Store};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::meta;
use crate::request::Target;

/// Decodes a stored object and sets its resourceVersion.
pub fn decode(kv: &KeyValue) -> Result<Value, ApiError> {
    let mut obj: Value = serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::internal(format!("stored object {} is not JSON: {e}", kv.key)))?;
    meta::metadata_mut(&mut obj).insert(
        "resourceVersion".to_owned(),
        json!(kv.mod_revision.to_string()),
    );
    Ok(obj)
}

/// Encodes an object for the store (without its resourceVersion).
pub fn encode(obj: &Value) -> Result<Bytes, ApiError> {
    let mut obj = obj.clone();
    meta::metadata_mut(&mut obj).remove("resourceVersion");
    serde_json::to_vec(&obj)
        .map(Bytes::from)
        .map_err(|e| ApiError::internal(format!("encode: {e}")))
}

/// Parses a resourceVersion a client sent.
pub fn parse_rv(rv: &str) -> Result<Revision, ApiError> {
    rv.parse::<Revision>()
        .ok()
        .filter(|r| *r >= 0)
        .ok_or_else(|| ApiError::bad_request(format!("invalid resource version: \"{rv}\"")))
}

/// The objects of the cluster.
#[derive(Clone)]
pub struct Objects {
    store: Arc<dyn Store>,
}

impl std::fmt::Debug for Objects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Objects").finish_non_exhaustive()
    }
}

/// What an update function decides.
#[derive(Debug)]
pub enum Change {
    /// Store this object.
    Put(Value),
    /// Delete the object (a finalizer-held deletion that is now free).
    Delete,
    /// Leave it as it is.
    Keep,
}

impl Objects {
    /// Objects over a store.
    pub fn new(store: Arc<dyn Store>) -> Objects {
        Objects { store }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The object at `key`, with its revision.
    pub async fn get_key(&self, key: &str) -> Result<Option<(Value, Revision)>, ApiError> {
        let (_, kv) = self.store.get(key, 0).await?;
        kv.map(|kv| Ok((decode(&kv)?, kv.mod_revision))).transpose()
    }

    /// The target object, or kube's NotFound.
    pub async fn get(&self, target: &Target) -> Result<(Value, Revision), ApiError> {
        self.get_key(&target.key()).await?.ok_or_else(|| {
            ApiError::not_found(
                &target.resource.group,
                &target.resource.plural,
                &target.name,
            )
        })
    }

    /// Lists every object under a key prefix at a revision (0 = now).
    pub async fn list_all(
        &self,
        prefix: &str,
        revision: Revision,
    ) -> Result<(Vec<Value>, Revision), ApiError> {
        let page = self
            .store
            .list(
                prefix,
                &ListOptions {
                    revision,
                    ..ListOptions::default()
                },
            )
            .await?;
        let items = page
            .items
            .iter()
            .map(decode)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((items, page.revision))
    }

    /// Creates an object (expiring after `ttl` when one is given: Events);
    /// AlreadyExists when the key is taken.
    pub async fn create(
        &self,
        target: &Target,
        obj: &Value,
        ttl: Option<std::time::Duration>,
    ) -> Result<Value, ApiError> {
        let bytes = encode(obj)?;
        match self.store.create(&target.key(), bytes, ttl).await {
            Ok(kv) => {
                let mut obj = obj.clone();
                meta::metadata_mut(&mut obj).insert(
                    "resourceVersion".to_owned(),
                    json!(kv.mod_revision.to_string()),
                );
                Ok(obj)
            }
            Err(berth_kv::Error::Exists(_)) => Err(ApiError::already_exists(
                &target.resource.group,
                &target.resource.plural,
                &target.name,
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Read-modify-write: `change` gets the current object and decides.
    /// With `precondition` (a resourceVersion the client sent), a
    /// concurrent change is a 409; without, the change is retried on the
    /// new object. Returns the stored object (or the deleted one) and
    /// whether it was deleted.
    pub async fn update<F>(
        &self,
        target: &Target,
        precondition: Option<Revision>,
        ttl: Option<std::time::Duration>,
        mut change: F,
    ) -> Result<(Value, bool), ApiError>
    where
        F: FnMut(Value) -> Result<Change, ApiError>,
    {
        let key = target.key();
        let resource = &target.resource;
        for _ in 0..16 {
            let (current, revision) = self.get(target).await?;
            if let Some(expected) = precondition
                && expected != revision
            {
                return Err(ApiError::stale(
                    &resource.group,
                    &resource.plural,
                    &target.name,
                ));
            }
            let (written, gone) = match change(current.clone())? {
                Change::Keep => return Ok((current, false)),
                Change::Put(new) => {
                    let bytes = encode(&new)?;
                    (
                        self.store
                            .update(&key, bytes, revision, ttl)
                            .await
                            .map(|kv| (new, kv)),
                        false,
                    )
                }
                Change::Delete => (
                    self.store
                        .delete(&key, Some(revision))
                        .await
                        .map(|kv| (current, kv)),
                    true,
                ),
            };
            match written {
                Ok((mut obj, kv)) => {
                    meta::metadata_mut(&mut obj).insert(
                        "resourceVersion".to_owned(),
                        json!(kv.mod_revision.to_string()),
                    );
                    return Ok((obj, gone));
                }
                // Changed under us: without a precondition, read again.
                Err(berth_kv::Error::Conflict { .. }) if precondition.is_none() => continue,
                Err(berth_kv::Error::Conflict { .. }) => {
                    return Err(ApiError::stale(
                        &resource.group,
                        &resource.plural,
                        &target.name,
                    ));
                }
                Err(berth_kv::Error::NotFound(_)) => {
                    return Err(ApiError::not_found(
                        &resource.group,
                        &resource.plural,
                        &target.name,
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::conflict(
            &resource.group,
            &resource.plural,
            &target.name,
            "the object kept changing under the update; try again",
        ))
    }
}
