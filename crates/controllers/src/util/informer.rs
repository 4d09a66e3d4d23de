//! A shared informer: one watch of a kind, its objects in a local cache
//! ([`Store`]), and a handler told of every change with the object before
//! and after, so a controller can queue the keys a change concerns.
//! An `Api<PartialObjectMeta<K>>` watches metadata only (kube 5 asks the
//! server for PartialObjectMetadata by itself).

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use futures::StreamExt;
use kube::Resource;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{ObjectRef, Store, store::Writer};
use kube::runtime::watcher::{self, Event};
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;

/// Told of a change: `(old, new)`; `old` is `None` for an object new to
/// the cache, `new` is `None` for a deleted one.
pub type Handler<K> = Arc<dyn Fn(Option<&K>, Option<&K>) + Send + Sync>;

/// A running watch of one kind and its cache. Dropping it stops the watch.
pub struct Informer<K: Resource + 'static>
where
    K::DynamicType: Eq + Hash + Clone,
{
    store: Store<K>,
    task: JoinHandle<()>,
}

impl<K> Informer<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Default + Send + Sync,
{
    /// Watches `api` (all of it: use `Api::all` for every namespace),
    /// calling `handler` for each change.
    pub fn spawn(api: Api<K>, handler: Handler<K>) -> Self {
        Self::spawn_dynamic(api, Default::default(), handler)
    }
}

impl<K> Informer<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Send + Sync,
{
    /// As [`spawn`](Self::spawn), for a kind known at run time
    /// (`DynamicObject` with its `ApiResource`).
    pub fn spawn_dynamic(api: Api<K>, dyntype: K::DynamicType, handler: Handler<K>) -> Self {
        Self::spawn_with(api, dyntype, watcher::Config::default(), handler)
    }

    /// As [`spawn_dynamic`](Self::spawn_dynamic), watching only what
    /// `config` selects (labels, fields).
    pub fn spawn_with(
        api: Api<K>,
        dyntype: K::DynamicType,
        config: watcher::Config,
        handler: Handler<K>,
    ) -> Self {
        // managedFields are of no use to a controller: not kept in memory
        let events = watcher::watcher(api, config)
            .default_backoff()
            .modify(|o: &mut K| o.meta_mut().managed_fields = None)
            .boxed();
        Self::run(events, dyntype, handler)
    }

    fn run(
        mut events: futures::stream::BoxStream<'static, Result<Event<K>, watcher::Error>>,
        dyntype: K::DynamicType,
        handler: Handler<K>,
    ) -> Self {
        let mut writer = Writer::new(dyntype.clone());
        let store = writer.as_reader();
        let task = tokio::spawn(async move {
            while let Some(event) = events.next().await {
                match event {
                    Ok(event) => apply(&mut writer, &dyntype, &event, &handler),
                    Err(e) => tracing::debug!(error = %e, "watch restarts"),
                }
            }
        });
        Informer { store, task }
    }

    /// The cache (complete once [`ready`](Self::ready) returns).
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// Waits for the first complete listing.
    pub async fn ready(&self) {
        let _ = self.store.wait_until_ready().await;
    }
}

impl<K: Resource + 'static> Drop for Informer<K>
where
    K::DynamicType: Eq + Hash + Clone,
{
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn apply<K>(
    writer: &mut Writer<K>,
    dyntype: &K::DynamicType,
    event: &Event<K>,
    handler: &Handler<K>,
) where
    K: Resource + Clone,
    K::DynamicType: Eq + Hash + Clone,
{
    let reader = writer.as_reader();
    match event {
        Event::Apply(obj) | Event::InitApply(obj) => {
            let old = reader.get(&ObjectRef::from_obj_with(obj, dyntype.clone()));
            // Listed objects (InitApply) reach the cache at InitDone; the
            // runner waits for that before reconciling.
            writer.apply_watcher_event(event);
            handler(old.as_deref(), Some(obj));
        }
        Event::Delete(obj) => {
            // The object as it was when deleted.
            writer.apply_watcher_event(event);
            handler(Some(obj), None);
        }
        Event::Init => writer.apply_watcher_event(event),
        Event::InitDone => {
            // Objects gone while the watch was down: the new listing
            // lacks them; tell the handler they were deleted.
            let before = reader.state();
            writer.apply_watcher_event(event);
            for old in before {
                let key = ObjectRef::from_obj_with(old.as_ref(), dyntype.clone());
                if reader.get(&key).is_none() {
                    handler(Some(old.as_ref()), None);
                }
            }
        }
    }
}
