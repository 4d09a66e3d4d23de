//! Caches fed by watches, and a wake-up shared by a controller's caches:
//! the loops of the node, volume, disruption, pod GC and ServiceAccount
//! controllers read whole caches each pass (level-triggered), woken by
//! any change or by their resync timer. (Edge-triggered controllers use
//! an [`Informer`](super::informer::Informer) and a work queue instead.)

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::Resource;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

/// Starts a watch of `api` into a cache; every event wakes `wake`.
pub fn cache<K>(api: Api<K>, wake: Arc<Notify>) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    cache_with(api, watcher::Config::default(), wake)
}

/// [`cache`] with a watch configuration (selectors).
pub fn cache_with<K>(api: Api<K>, config: watcher::Config, wake: Arc<Notify>) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    // managedFields are of no use to a controller: not kept in memory
    let stream = reflector::reflector(
        writer,
        watcher(api, config).modify(|o: &mut K| o.meta_mut().managed_fields = None),
    )
    .default_backoff();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            if let Err(e) = event {
                tracing::warn!(error = %e, kind = %K::kind(&K::DynamicType::default()), "watch");
            }
            wake.notify_one();
        }
    });
    reader
}

/// Waits until every cache has its first list (or `limit` passes, when
/// the loop runs with what it has and the next pass sees the rest).
pub async fn ready<K>(stores: &[&Store<K>], limit: Duration)
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    for store in stores {
        let _ = tokio::time::timeout(limit, store.wait_until_ready()).await;
    }
}

/// Waits for the wake-up or the resync period, whichever comes first.
pub async fn wait(wake: &Notify, resync: Duration) {
    tokio::select! {
        () = wake.notified() => {}
        () = tokio::time::sleep(resync) => {}
    }
}

/// The objects of a cache, owned.
pub fn all<K>(store: &Store<K>) -> Vec<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    store.state().iter().map(|o| (**o).clone()).collect()
}
