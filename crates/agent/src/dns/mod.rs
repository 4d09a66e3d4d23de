//! The node's cluster DNS (CoreDNS's job, one per node): Services,
//! EndpointSlices and Pods are watched and turned into the cluster zone
//! ([`model`]), which [`berth_net::cluster_dns`] serves at the node's
//! pods' gateway, port 53, forwarding other names to the node's
//! resolvers. The `kube-dns` Service (its ClusterIP in the pods'
//! resolv.conf) leads there through the service proxy. The zone is rebuilt
//! a few milliseconds after any change: a new Service answers well within
//! a second.

pub mod model;

use std::net::SocketAddrV4;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_net::cluster_dns::{ServerOptions, Zone, ZoneHandle};
use berth_net::dns_io::Forwarder;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::reflector;
use tokio::sync::Notify;

use crate::blocking;
use crate::proxy::watch;

/// How the node's DNS runs.
#[derive(Clone, Debug)]
pub struct DnsSettings {
    /// The cluster domain (`cluster.local`).
    pub domain: String,
    /// Where it listens (UDP and TCP): the pods' gateway, port 53.
    pub listen: SocketAddrV4,
    /// TTL of its answers.
    pub ttl: u32,
}

/// Settles a burst of watch events into one rebuild.
const SETTLE: Duration = Duration::from_millis(5);

/// Runs for the agent's life.
pub async fn run(client: kube::Client, settings: DnsSettings) {
    let (svc_store, svc_writer) = reflector::store::<Service>();
    let (slice_store, slice_writer) = reflector::store::<EndpointSlice>();
    let (pod_store, pod_writer) = reflector::store::<Pod>();
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
    tokio::spawn(watch(
        Api::<Pod>::all(client.clone()),
        pod_writer,
        wake.clone(),
    ));
    // the first answers come from a full zone (or after a while, a partial one)
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        let _ = svc_store.wait_until_ready().await;
        let _ = slice_store.wait_until_ready().await;
        let _ = pod_store.wait_until_ready().await;
    })
    .await;
    let zone = ZoneHandle::new(Zone::new(&settings.domain));
    let mut server = None;
    loop {
        let t0 = Instant::now();
        let built = model::build(
            &svc_store.state(),
            &slice_store.state(),
            &pod_store.state(),
            &settings.domain,
        );
        let names = built.len();
        zone.replace(built);
        tracing::trace!(
            names,
            took_us = t0.elapsed().as_micros() as u64,
            "cluster zone rebuilt"
        );
        if server.is_none() {
            let (z, s) = (zone.clone(), settings.clone());
            match blocking(move || start(&s, z)).await {
                Ok(Ok(srv)) => {
                    tracing::info!(addr = %settings.listen, "cluster DNS listening");
                    server = Some(srv);
                }
                Ok(Err(e)) => tracing::warn!(addr = %settings.listen, error = %e, "cluster DNS"),
                Err(e) => tracing::warn!(error = %e, "cluster DNS"),
            }
        }
        // a change, or a second (to retry the listener)
        let wait = if server.is_some() {
            Duration::from_secs(30)
        } else {
            Duration::from_secs(1)
        };
        let _ = tokio::time::timeout(wait, wake.notified()).await;
        tokio::time::sleep(SETTLE).await;
    }
}

fn start(s: &DnsSettings, zone: ZoneHandle) -> berth_net::Result<berth_net::cluster_dns::Server> {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    berth_net::cluster_dns::start(
        s.listen,
        zone,
        ServerOptions {
            ttl: s.ttl,
            forwarder: Forwarder {
                upstreams: berth_net::dns::upstreams_from_resolv_conf(&text),
                timeout: Duration::from_secs(2),
            },
        },
    )
}
