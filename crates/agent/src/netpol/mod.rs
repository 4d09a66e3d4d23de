//! NetworkPolicy enforcement on the node: watches NetworkPolicies, pods
//! and namespaces and keeps the kernel's `<engine table>-pol` nftables table
//! in line with them ([`berth_net::policy`]); the whole table is replaced in
//! one transaction at each change (never half-applied), a few milliseconds
//! after the watch reports it, and only when the rules differ from what was
//! applied. At start, the table a previous run left keeps filtering until
//! the first write; no isolated pod: no table.
//!
//! Traffic between pods of one bridge reaches the IP hooks only with
//! `br_netfilter` (`net.bridge.bridge-nf-call-iptables=1`), which the node
//! turns on as kube-proxy's hosts need it too.

pub mod model;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_net::policy::{Policies, PolicyConfig};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::Api;
use kube::runtime::reflector;
use tokio::sync::Notify;

use crate::blocking;
use crate::proxy::watch;

/// Settles a burst of watch events into one change.
const SETTLE: Duration = Duration::from_millis(5);

/// Runs for the agent's life: `node`'s pods, berth's `root`.
pub async fn run(client: kube::Client, node: String, root: PathBuf) {
    let cfg = match berth_net::NetConfig::load(&root) {
        Ok(net) => PolicyConfig {
            table: berth_net::policy::table_for(&net),
            dns: vec![net.default_gateway()],
        },
        Err(e) => {
            tracing::error!(error = %e, "no NetworkPolicy enforcement on this node");
            return;
        }
    };
    match blocking(berth_net::sysctl::enable_bridge_netfilter).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "NetworkPolicies between pods of this node"),
        Err(e) => tracing::error!(error = %e, "NetworkPolicies"),
    }
    let (pol_store, pol_writer) = reflector::store::<NetworkPolicy>();
    let (pod_store, pod_writer) = reflector::store::<Pod>();
    let (ns_store, ns_writer) = reflector::store::<Namespace>();
    let wake = Arc::new(Notify::new());
    tokio::spawn(watch(
        Api::<NetworkPolicy>::all(client.clone()),
        pol_writer,
        wake.clone(),
    ));
    tokio::spawn(watch(
        Api::<Pod>::all(client.clone()),
        pod_writer,
        wake.clone(),
    ));
    tokio::spawn(watch(
        Api::<Namespace>::all(client.clone()),
        ns_writer,
        wake.clone(),
    ));
    let _ = pol_store.wait_until_ready().await;
    let _ = pod_store.wait_until_ready().await;
    let _ = ns_store.wait_until_ready().await;
    let mut applied: Option<Policies> = None;
    loop {
        let want = model::build(
            &pol_store.state(),
            &pod_store.state(),
            &ns_store.state(),
            &node,
        );
        if applied.as_ref() != Some(&want) {
            let t0 = Instant::now();
            let script = berth_net::policy::full(&cfg, &want);
            match blocking(move || berth_net::nft::apply(&script)).await {
                Ok(Ok(())) => {
                    tracing::debug!(
                        pods = want.len(),
                        took_us = t0.elapsed().as_micros() as u64,
                        "NetworkPolicy rules applied"
                    );
                    applied = Some(want);
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "NetworkPolicy rules: the change failed; trying again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
                Err(e) => tracing::warn!(error = %e, "NetworkPolicy rules"),
            }
        }
        wake.notified().await;
        tokio::time::sleep(SETTLE).await;
    }
}
