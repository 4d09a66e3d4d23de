//! The repair pass (kube's ipallocator and portallocator repair loops):
//! allocations whose Service is gone (a crash between allocating and
//! writing the Service) are freed once older than a grace period (a
//! create in flight on another API server has not written its Service
//! yet), and what existing Services hold but the store does not record is
//! recorded again.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::{IP_ADDRESS_PREFIX, MANAGED_BY, NODE_PORT_PREFIX, Owner, record_owner, service};
use crate::api::Api;
use crate::error::ApiError;
use crate::meta;

/// How old an allocation without its Service must be to be freed.
pub const GRACE: Duration = Duration::from_secs(60);
/// How often the repair pass runs after start (kube's is 3 minutes).
pub const INTERVAL: Duration = Duration::from_secs(180);

/// What a repair pass changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Addresses freed.
    pub freed_ips: Vec<Ipv4Addr>,
    /// Node ports freed.
    pub freed_ports: Vec<u16>,
    /// Addresses recorded again.
    pub recorded_ips: Vec<Ipv4Addr>,
    /// Node ports recorded again.
    pub recorded_ports: Vec<u16>,
}

/// The age of a record in seconds: an IPAddress' creationTimestamp or a
/// node port record's `created`.
fn age_secs(record: &Value, now: i64) -> i64 {
    let created = record
        .get("created")
        .and_then(Value::as_i64)
        .or_else(|| {
            let ts = meta::meta_str(record, "creationTimestamp");
            berth_types::time::parse_rfc3339(ts).ok().map(|(s, _)| s)
        })
        .unwrap_or(0);
    now - created
}

/// One repair pass; `grace` = how old an orphan must be to be freed.
pub async fn repair(api: &Api, grace: Duration) -> Result<Report, ApiError> {
    let store = api.objects.store();
    let (services, _) = api.objects.list_all("/registry/services/", 0).await?;
    let mut ips: BTreeMap<Ipv4Addr, Owner> = BTreeMap::new();
    let mut ports: BTreeMap<u16, Owner> = BTreeMap::new();
    for svc in &services {
        let owner = Owner::of(svc);
        let held = service::held(svc);
        if let Some(ip) = held.ip {
            ips.insert(ip, owner.clone());
        }
        for p in held.ports {
            ports.insert(p, owner.clone());
        }
    }
    let now = meta::unix_now().0;
    let grace = i64::try_from(grace.as_secs()).unwrap_or(i64::MAX);
    let mut report = Report::default();

    let page = store
        .list(IP_ADDRESS_PREFIX, &berth_kv::ListOptions::default())
        .await?;
    for kv in page.items {
        let Some(ip) = kv
            .key
            .strip_prefix(IP_ADDRESS_PREFIX)
            .and_then(|s| s.parse::<Ipv4Addr>().ok())
        else {
            continue;
        };
        let record: Value = serde_json::from_slice(&kv.value).unwrap_or(Value::Null);
        let managed = record
            .pointer("/metadata/labels/ipaddress.kubernetes.io~1managed-by")
            .and_then(Value::as_str)
            == Some(MANAGED_BY);
        if !managed {
            ips.remove(&ip);
            continue;
        }
        let owner = record_owner(&record);
        if owner.is_some() && ips.get(&ip) == owner.as_ref() {
            ips.remove(&ip);
            continue;
        }
        if ips.contains_key(&ip) {
            tracing::warn!(%ip, "a Service's cluster IP is recorded for another object");
            ips.remove(&ip);
            continue;
        }
        if age_secs(&record, now) >= grace
            && store.delete(&kv.key, Some(kv.mod_revision)).await.is_ok()
        {
            report.freed_ips.push(ip);
        }
    }
    for (ip, owner) in ips {
        if super::take_ip(api, ip, &owner).await? {
            report.recorded_ips.push(ip);
        }
    }

    let page = store
        .list(NODE_PORT_PREFIX, &berth_kv::ListOptions::default())
        .await?;
    for kv in page.items {
        let Some(port) = kv
            .key
            .strip_prefix(NODE_PORT_PREFIX)
            .and_then(|s| s.parse::<u16>().ok())
        else {
            continue;
        };
        let record: Value = serde_json::from_slice(&kv.value).unwrap_or(Value::Null);
        let owner = record_owner(&record);
        if owner.is_some() && ports.get(&port) == owner.as_ref() {
            ports.remove(&port);
            continue;
        }
        if ports.contains_key(&port) {
            tracing::warn!(
                port,
                "a Service's node port is recorded for another Service"
            );
            ports.remove(&port);
            continue;
        }
        if age_secs(&record, now) >= grace
            && store.delete(&kv.key, Some(kv.mod_revision)).await.is_ok()
        {
            report.freed_ports.push(port);
        }
    }
    for (port, owner) in ports {
        if super::take_port(api, port, &owner).await? {
            report.recorded_ports.push(port);
        }
    }
    if report != Report::default() {
        tracing::info!(?report, "service allocations repaired");
    }
    Ok(report)
}

/// Runs [`repair`] every [`INTERVAL`].
pub fn spawn(api: Arc<Api>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(INTERVAL).await;
            if let Err(e) = repair(&api, GRACE).await {
                tracing::warn!(error = %e.message, "service allocation repair");
            }
        }
    });
}
