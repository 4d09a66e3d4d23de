//! The node's service proxy (kube-proxy's job): watches Services and
//! EndpointSlices and keeps the kernel's `berth-svc` nftables table in
//! line with them ([`berth_net::services`]). At start the whole table is
//! written in one transaction (rules a previous run left keep answering
//! until then: a restart makes no gap); after that each change is a small
//! transaction with only what changed, sent as one netlink batch from this
//! process (`nft` only for session affinity's sets), a few milliseconds
//! after the watch reports it. A failed change is followed by a full write.

pub mod model;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_net::services::{ProxyConfig, Services};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use tokio::sync::Notify;

use crate::blocking;

/// How the proxy runs.
#[derive(Clone, Debug)]
pub struct ProxySettings {
    /// This node's name (for `externalTrafficPolicy: Local`).
    pub node: String,
    /// berth's root (its network configuration names the pods' bridge).
    pub root: PathBuf,
    /// The service range, routed through the pods' bridge so the node
    /// itself reaches ClusterIPs without a default route.
    pub service_cidr: (Ipv4Addr, u8),
    /// The pods' range: traffic to a ClusterIP from elsewhere is
    /// masqueraded.
    pub cluster_cidr: Option<String>,
}

/// Settles a burst of watch events into one change.
const SETTLE: Duration = Duration::from_millis(5);

/// Runs for the agent's life.
pub async fn run(client: kube::Client, settings: ProxySettings) {
    let (svc_store, svc_writer) = reflector::store::<Service>();
    let (slice_store, slice_writer) = reflector::store::<EndpointSlice>();
    let wake = Arc::new(Notify::new());
    tokio::spawn(watch(
        Api::<Service>::all(client.clone()),
        svc_writer,
        wake.clone(),
    ));
    tokio::spawn(watch(
        Api::<EndpointSlice>::all(client.clone()),
        slice_writer,
        wake.clone(),
    ));
    let _ = svc_store.wait_until_ready().await;
    let _ = slice_store.wait_until_ready().await;
    // the table is the root's (its engine table's name + `-svc`), so
    // servers on separate roots of one host keep apart
    let table = berth_net::NetConfig::load(&settings.root)
        .map(|c| berth_net::services::table_for(&c))
        .unwrap_or_else(|_| berth_net::services::TABLE.into());
    let cfg = ProxyConfig {
        table,
        cluster_cidr: settings.cluster_cidr.clone(),
    };
    let mut applied: Option<Services> = None;
    // whether a watch event came since the model was last built
    let mut changed = true;
    loop {
        let s = settings.clone();
        let _ = blocking(move || route_service_range(&s)).await;
        // the model is rebuilt only after a watch event (or a failure):
        // with 1,000 Services that is most of an idle proxy's work
        let want = if changed || applied.is_none() {
            Some(model::build(
                &svc_store.state(),
                &slice_store.state(),
                &settings.node,
            ))
        } else {
            None
        };
        if let Some(want) = want.filter(|w| applied.as_ref() != Some(w)) {
            let t0 = Instant::now();
            let r = match &applied {
                // only what changed, in-process where it can be
                Some(old) => {
                    let ops = berth_net::services::diff_ops(&cfg, old, &want);
                    let table = cfg.table.clone();
                    blocking(move || berth_net::services::apply_ops(&table, &ops).map(drop)).await
                }
                None => {
                    let script = berth_net::services::full(&cfg, &want);
                    blocking(move || berth_net::nft::apply(&script)).await
                }
            };
            match r {
                Ok(Ok(())) => {
                    tracing::debug!(
                        ports = want.len(),
                        took_us = t0.elapsed().as_micros() as u64,
                        "service rules applied"
                    );
                    applied = Some(want);
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "service rules: the change failed; writing the whole table next");
                    applied = None;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "service rules");
                    applied = None;
                }
            }
        }
        // wait for a change (and look again every second: the route goes
        // when the bridge goes, and comes back with it)
        changed = tokio::time::timeout(Duration::from_secs(1), wake.notified())
            .await
            .is_ok();
        tokio::time::sleep(SETTLE).await;
    }
}

/// Mirrors `api` into `writer`, waking `wake` at each event.
pub(crate) async fn watch<K>(api: Api<K>, writer: reflector::store::Writer<K>, wake: Arc<Notify>)
where
    K: kube::Resource
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(|o: &mut K| o.meta_mut().managed_fields = None)
        .reflect(writer);
    futures::pin_mut!(stream);
    while let Some(ev) = stream.next().await {
        if let Err(e) = ev {
            tracing::debug!(error = %e, "service proxy watch");
        }
        wake.notify_one();
    }
}

/// Routes the service range through the pods' bridge when it exists, at a
/// metric of the bridge's own (several roots on one host each keep a
/// route, and one that goes with its bridge leaves the others).
fn route_service_range(s: &ProxySettings) {
    let Ok(cfg) = berth_net::NetConfig::load(&s.root) else {
        return;
    };
    let Ok(mut nl) = berth_net::netlink::Netlink::open() else {
        return;
    };
    if let Ok(Some(index)) = nl.link_index(&cfg.default_bridge)
        && let Err(e) =
            nl.replace_link_route(s.service_cidr.0, s.service_cidr.1, index, 1000 + index)
    {
        tracing::debug!(error = %e, "route the service range");
    }
}
