//! Service address and port allocation, as kube-apiserver 1.33 does it.
//!
//! Each allocated cluster IP is a `networking.k8s.io/v1` IPAddress object
//! named by the address, with a `parentRef` to its Service; each node port
//! a private key (`/registry/berth.dev/servicenodeports/<port>`; kube keeps
//! a bitmap there, which several servers could not share without a lock).
//! Both are taken with the store's atomic create-if-absent, so concurrent
//! creates and several API servers on one store never hand out one value
//! twice.
//!
//! A write reserves before its (synchronous) read-modify-write
//! ([`reserve`]), fills the object from what it reserved inside it
//! ([`assign`]), and afterwards releases what the written object does not
//! hold ([`finish`]); a failed write releases everything it reserved.
//! [`repair`] reconciles allocations with Services at start and every few
//! minutes; [`kubernetes`] keeps the `default/kubernetes` Service.

pub mod ip;
pub mod kubernetes;
pub mod port;
pub mod repair;
pub mod service;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use serde_json::{Value, json};

use crate::api::Api;
use crate::error::{ApiError, Cause};
use crate::meta;
use crate::request::Target;
pub use ip::{DEFAULT_SERVICE_CIDR, IpError, ServiceCidr};
pub use port::{PortError, PortRange};
use service::{Held, IpWant, PortWant};

/// Where node port allocations live.
pub const NODE_PORT_PREFIX: &str = "/registry/berth.dev/servicenodeports/";
/// Where IPAddress objects live.
pub const IP_ADDRESS_PREFIX: &str = "/registry/ipaddresses/";
/// The `managed-by` of IPAddresses the allocator owns.
pub const MANAGED_BY: &str = "ipallocator.k8s.io";

/// The Service ranges of a cluster.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ranges {
    /// `--service-cluster-ip-range`.
    pub cidr: ServiceCidr,
    /// `--service-node-port-range`.
    pub node_ports: PortRange,
}

/// Whether a write of `target` goes through the allocators (the main
/// resource of Services).
pub fn applies(target: &Target) -> bool {
    target.resource.group.is_empty()
        && target.resource.plural == "services"
        && target.subresource.is_empty()
}

/// The Service an allocation belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl Owner {
    /// The owner of `svc`.
    pub fn of(svc: &Value) -> Owner {
        Owner {
            namespace: meta::meta_str(svc, "namespace").to_owned(),
            name: meta::meta_str(svc, "name").to_owned(),
        }
    }
}

/// What a write reserved before its read-modify-write.
#[derive(Debug, Clone, Default)]
pub struct Reserved {
    /// Nothing was taken (dryRun): releasing is a no-op.
    pub dry_run: bool,
    /// The owner.
    pub owner: Option<Owner>,
    /// Requested addresses taken.
    pub ips: Vec<Ipv4Addr>,
    /// A dynamic address taken.
    pub ip_dynamic: Option<Ipv4Addr>,
    /// Requested node ports taken.
    pub ports: Vec<u16>,
    /// Dynamic node ports taken, in order of use.
    pub ports_dynamic: Vec<u16>,
}

impl Reserved {
    fn all_ips(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.ips.iter().copied().chain(self.ip_dynamic)
    }

    fn all_ports(&self) -> impl Iterator<Item = u16> + '_ {
        self.ports.iter().chain(&self.ports_dynamic).copied()
    }

    /// Releases everything reserved (a failed write).
    pub async fn release(&self, api: &Api) {
        self.release_except(api, &Held::default()).await;
    }

    /// Releases what is reserved but not in `kept`.
    pub async fn release_except(&self, api: &Api, kept: &Held) {
        if self.dry_run {
            return;
        }
        let Some(owner) = &self.owner else { return };
        for ip in self.all_ips() {
            if kept.ip != Some(ip) {
                release_ip(api, ip, Some(owner)).await;
            }
        }
        for p in self.all_ports() {
            if !kept.ports.contains(&p) {
                release_port(api, p, Some(owner)).await;
            }
        }
    }
}

/// The IPAddress key of an address.
pub fn ip_key(ip: Ipv4Addr) -> String {
    format!("{IP_ADDRESS_PREFIX}{ip}")
}

/// The key of a node port.
pub fn port_key(port: u16) -> String {
    format!("{NODE_PORT_PREFIX}{port}")
}

/// The IPAddress object kube's allocator writes for `ip`.
pub fn ip_address_object(ip: Ipv4Addr, owner: &Owner) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IPAddress",
        "metadata": {
            "name": ip.to_string(),
            "uid": meta::new_uid(),
            "creationTimestamp": meta::now(),
            "generation": 1,
            "labels": {
                "ipaddress.kubernetes.io/ip-family": "IPv4",
                "ipaddress.kubernetes.io/managed-by": MANAGED_BY,
            },
        },
        "spec": {"parentRef": {
            "group": "",
            "resource": "services",
            "namespace": owner.namespace,
            "name": owner.name,
        }},
    })
}

fn node_port_record(owner: &Owner) -> Value {
    json!({
        "namespace": owner.namespace,
        "name": owner.name,
        "created": meta::unix_now().0,
    })
}

/// The Service an allocation record names (IPAddress `parentRef` or a
/// node port record).
pub fn record_owner(record: &Value) -> Option<Owner> {
    let r = record.pointer("/spec/parentRef").unwrap_or(record);
    if let Some(res) = r.get("resource").and_then(Value::as_str)
        && res != "services"
    {
        return None;
    }
    Some(Owner {
        namespace: r.get("namespace")?.as_str()?.to_owned(),
        name: r.get("name")?.as_str()?.to_owned(),
    })
}

async fn create_key(api: &Api, key: &str, value: &Value) -> Result<bool, ApiError> {
    let bytes = crate::storage::encode(value)?;
    match api.objects.store().create(key, bytes, None).await {
        Ok(_) => Ok(true),
        Err(berth_kv::Error::Exists(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

async fn exists(api: &Api, key: &str) -> Result<bool, ApiError> {
    Ok(api.objects.store().get(key, 0).await?.1.is_some())
}

/// Takes `ip` for `owner`; false when another holds it.
pub async fn take_ip(api: &Api, ip: Ipv4Addr, owner: &Owner) -> Result<bool, ApiError> {
    create_key(api, &ip_key(ip), &ip_address_object(ip, owner)).await
}

/// Takes node port `port` for `owner`; false when another holds it.
pub async fn take_port(api: &Api, port: u16, owner: &Owner) -> Result<bool, ApiError> {
    create_key(api, &port_key(port), &node_port_record(owner)).await
}

async fn release_key(api: &Api, key: &str, owner: Option<&Owner>) {
    let store = api.objects.store();
    let current = match store.get(key, 0).await {
        Ok((_, Some(kv))) => kv,
        Ok((_, None)) => return,
        Err(e) => {
            tracing::warn!(key, error = %e, "release: read failed");
            return;
        }
    };
    if let Some(owner) = owner {
        let record: Value = serde_json::from_slice(&current.value).unwrap_or(Value::Null);
        if record_owner(&record).as_ref() != Some(owner) {
            return;
        }
    }
    match store.delete(key, Some(current.mod_revision)).await {
        Ok(_) | Err(berth_kv::Error::NotFound(_)) => {}
        Err(e) => tracing::warn!(key, error = %e, "release failed"),
    }
}

/// Frees `ip` (only if `owner` holds it, when given).
pub async fn release_ip(api: &Api, ip: Ipv4Addr, owner: Option<&Owner>) {
    release_key(api, &ip_key(ip), owner).await;
}

/// Frees node port `port` (only if `owner` holds it, when given).
pub async fn release_port(api: &Api, port: u16, owner: Option<&Owner>) {
    release_key(api, &port_key(port), owner).await;
}

/// Frees everything a deleted Service held.
pub async fn release_held(api: &Api, svc: &Value) {
    let owner = Owner::of(svc);
    let held = service::held(svc);
    if let Some(ip) = held.ip {
        release_ip(api, ip, Some(&owner)).await;
    }
    for p in held.ports {
        release_port(api, p, Some(&owner)).await;
    }
}

/// A random start offset below `n`.
fn random_below(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    let r = uuid::Uuid::new_v4().as_u128();
    u64::try_from(r % u128::from(n)).unwrap_or(0)
}

/// The keys under `prefix` now (to skip taken values without a write).
async fn taken(api: &Api, prefix: &str) -> Result<BTreeSet<String>, ApiError> {
    let page = api
        .objects
        .store()
        .list(prefix, &berth_kv::ListOptions::default())
        .await?;
    Ok(page
        .items
        .into_iter()
        .filter_map(|kv| kv.key.strip_prefix(prefix).map(str::to_owned))
        .collect())
}

async fn next_ip(api: &Api, ranges: &Ranges, owner: &Owner) -> Result<Ipv4Addr, ApiError> {
    let cidr = &ranges.cidr;
    let known = taken(api, IP_ADDRESS_PREFIX).await?;
    let upper = random_below(cidr.upper_len());
    let lower = random_below(cidr.static_band());
    for ip in cidr.dynamic_order(upper, lower) {
        if known.contains(&ip.to_string()) {
            continue;
        }
        // A collision with a concurrent writer moves on to the next.
        if take_ip(api, ip, owner).await? {
            return Ok(ip);
        }
    }
    Err(ApiError::internal(format!(
        "failed to allocate a serviceIP: {}",
        IpError::Full
    )))
}

async fn next_port(
    api: &Api,
    ranges: &Ranges,
    owner: Option<&Owner>,
    avoid: &BTreeSet<u16>,
) -> Result<u16, PortError> {
    let r = &ranges.node_ports;
    let known = taken(api, NODE_PORT_PREFIX)
        .await
        .map_err(|_| PortError::Full)?;
    let upper = u16::try_from(random_below(u64::from(r.upper_len()))).unwrap_or(0);
    let lower = u16::try_from(random_below(u64::from(r.static_band()))).unwrap_or(0);
    for p in r.dynamic_order(upper, lower) {
        if known.contains(&p.to_string()) || avoid.contains(&p) {
            continue;
        }
        match owner {
            None => return Ok(p),
            Some(owner) => {
                if take_port(api, p, owner)
                    .await
                    .map_err(|_| PortError::Full)?
                {
                    return Ok(p);
                }
            }
        }
    }
    Err(PortError::Full)
}

fn ip_error(svc: &Value, ip: Ipv4Addr, error: &IpError) -> ApiError {
    let listed: Vec<String> = svc
        .pointer("/spec/clusterIPs")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|s| format!("{s:?}"))
                .collect()
        })
        .filter(|l: &Vec<String>| !l.is_empty())
        .unwrap_or_else(|| vec![format!("\"{ip}\"")]);
    ApiError::invalid(
        "",
        "Service",
        meta::meta_str(svc, "name"),
        vec![Cause::new(
            "FieldValueInvalid",
            "spec.clusterIPs",
            format!(
                "Invalid value: []string{{{}}}: failed to allocate IP {ip}: {error}",
                listed.join(", ")
            ),
        )],
    )
}

fn port_error(svc: &Value, field: String, port: i64, error: &PortError) -> ApiError {
    ApiError::invalid(
        "",
        "Service",
        meta::meta_str(svc, "name"),
        vec![Cause::invalid(field, &json!(port), &error.to_string())],
    )
}

/// Reserves what `new` asks for and `old` (the current object on update)
/// does not hold, with kube's errors. Under dryRun nothing is taken: a
/// requested value is checked against the range (and, for ports, against
/// what is taken) and a dynamic address shows as the network address, as
/// kube's dry-run allocator answers.
pub async fn reserve(
    api: &Api,
    old: Option<&Value>,
    new: &Value,
    dry_run: bool,
) -> Result<Reserved, ApiError> {
    let ranges = api.service_ranges();
    let owner = Owner::of(new);
    let mut reserved = Reserved {
        dry_run,
        owner: Some(owner.clone()),
        ..Reserved::default()
    };
    let result = reserve_into(api, &ranges, old, new, dry_run, &owner, &mut reserved).await;
    if let Err(e) = result {
        reserved.release(api).await;
        return Err(e);
    }
    Ok(reserved)
}

async fn reserve_into(
    api: &Api,
    ranges: &Ranges,
    old: Option<&Value>,
    new: &Value,
    dry_run: bool,
    owner: &Owner,
    reserved: &mut Reserved,
) -> Result<(), ApiError> {
    let held = old.map(service::held).unwrap_or_default();
    let wants = service::wants(new);
    match wants.ip {
        IpWant::None => {}
        IpWant::Specific(ip) if held.ip == Some(ip) => {}
        IpWant::Specific(ip) => {
            ranges.cidr.check(ip).map_err(|e| ip_error(new, ip, &e))?;
            if !dry_run {
                if !take_ip(api, ip, owner).await? {
                    return Err(ip_error(new, ip, &IpError::Allocated));
                }
                reserved.ips.push(ip);
            }
        }
        IpWant::Any if dry_run => reserved.ip_dynamic = Some(ranges.cidr.network()),
        IpWant::Any => reserved.ip_dynamic = Some(next_ip(api, ranges, owner).await?),
    }
    let mut seen: BTreeSet<u16> = BTreeSet::new();
    let port_wants = wants
        .ports
        .iter()
        .map(|(i, w)| (format!("spec.ports[{i}].nodePort"), *w, false))
        .chain(
            wants
                .health
                .map(|w| ("spec.healthCheckNodePort".to_owned(), w, true)),
        );
    for (field, want, health) in port_wants {
        match want {
            PortWant::SameAs(_) => {}
            PortWant::Specific(n) => {
                let Ok(p) = ranges.node_ports.check(n) else {
                    let e = PortError::NotInRange(ranges.node_ports);
                    return Err(if health {
                        ApiError::internal(format!(
                            "failed to allocate requested HealthCheck NodePort {n}: {e}"
                        ))
                    } else {
                        port_error(new, field, n, &e)
                    });
                };
                if held.ports.contains(&p) || !seen.insert(p) {
                    continue;
                }
                let free = if dry_run {
                    !exists(api, &port_key(p)).await?
                } else {
                    take_port(api, p, owner).await?
                };
                if !free {
                    let e = PortError::Allocated;
                    return Err(if health {
                        ApiError::internal(format!(
                            "failed to allocate requested HealthCheck NodePort {n}: {e}"
                        ))
                    } else {
                        port_error(new, field, n, &e)
                    });
                }
                if !dry_run {
                    reserved.ports.push(p);
                }
            }
            PortWant::Any => {
                let mut avoid: BTreeSet<u16> = reserved.ports_dynamic.iter().copied().collect();
                avoid.extend(seen.iter().copied());
                let p = next_port(api, ranges, (!dry_run).then_some(owner), &avoid)
                    .await
                    .map_err(|e| {
                        if health {
                            ApiError::internal(format!(
                                "failed to allocate a HealthCheck NodePort 0: {e}"
                            ))
                        } else {
                            ApiError::internal(format!("failed to allocate a nodePort: {e}"))
                        }
                    })?;
                reserved.ports_dynamic.push(p);
            }
        }
    }
    Ok(())
}

/// Fills `new` from what was reserved (inside the read-modify-write; the
/// current object may have changed since [`reserve`]: what is then missing
/// is a conflict the client retries). Returns what `new` holds.
pub fn assign(old: Option<&Value>, new: &mut Value, reserved: &Reserved) -> Result<Held, ApiError> {
    let held = old.map(service::held).unwrap_or_default();
    let wants = service::wants(new);
    let name = meta::meta_str(new, "name").to_owned();
    let stale = || ApiError::stale("", "services", &name);
    match wants.ip {
        IpWant::None => {}
        IpWant::Specific(ip) => {
            if held.ip != Some(ip) && !reserved.dry_run && !reserved.ips.contains(&ip) {
                return Err(stale());
            }
        }
        IpWant::Any => {
            let ip = reserved.ip_dynamic.ok_or_else(stale)?;
            service::set_cluster_ip(new, &ip.to_string());
        }
    }
    let mut dynamic = reserved.ports_dynamic.iter().copied();
    let mut filled: Vec<(usize, i64)> = Vec::new();
    for (i, want) in &wants.ports {
        let value = match *want {
            PortWant::Specific(n) => {
                let ok = u16::try_from(n).is_ok_and(|p| {
                    held.ports.contains(&p) || reserved.dry_run || reserved.ports.contains(&p)
                });
                if !ok {
                    return Err(stale());
                }
                n
            }
            PortWant::SameAs(j) => filled
                .iter()
                .find(|(k, _)| *k == j)
                .map(|(_, v)| *v)
                .ok_or_else(stale)?,
            PortWant::Any => i64::from(dynamic.next().ok_or_else(stale)?),
        };
        filled.push((*i, value));
    }
    if let Some(list) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
        for (i, v) in &filled {
            if let Some(p) = list.get_mut(*i).and_then(Value::as_object_mut) {
                p.insert("nodePort".to_owned(), json!(v));
            }
        }
    }
    match wants.health {
        Some(PortWant::Any) => {
            let p = dynamic.next().ok_or_else(stale)?;
            if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert("healthCheckNodePort".to_owned(), json!(p));
            }
        }
        Some(PortWant::Specific(n)) => {
            let ok = u16::try_from(n).is_ok_and(|p| {
                held.ports.contains(&p) || reserved.dry_run || reserved.ports.contains(&p)
            });
            if !ok {
                return Err(stale());
            }
        }
        _ => {}
    }
    Ok(service::held(new))
}

/// After a write: releases what was reserved but not used and what the
/// old object held that the written one does not.
pub async fn finish(api: &Api, reserved: &Reserved, old: Option<&Value>, written: &Held) {
    if reserved.dry_run {
        return;
    }
    reserved.release_except(api, written).await;
    if let Some(old) = old {
        let owner = Owner::of(old);
        let before = service::held(old);
        if let Some(ip) = before.ip
            && written.ip != Some(ip)
        {
            release_ip(api, ip, Some(&owner)).await;
        }
        for p in before.ports.difference(&written.ports) {
            release_port(api, *p, Some(&owner)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(spec: Value) -> Value {
        json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec})
    }

    fn reserved(ips: &[&str], dynamic: Option<&str>, ports: &[u16], dyn_ports: &[u16]) -> Reserved {
        Reserved {
            dry_run: false,
            owner: None,
            ips: ips.iter().map(|s| s.parse().unwrap()).collect(),
            ip_dynamic: dynamic.map(|s| s.parse().unwrap()),
            ports: ports.to_vec(),
            ports_dynamic: dyn_ports.to_vec(),
        }
    }

    #[test]
    fn assign_fills_from_what_was_reserved() {
        // (old spec, new spec, reserved, expected new spec or a conflict)
        let cases = [
            (
                None,
                json!({"type": "ClusterIP", "ports": [{"port": 80}]}),
                reserved(&[], Some("198.19.4.4"), &[], &[]),
                Some(
                    json!({"type": "ClusterIP", "clusterIP": "198.19.4.4", "clusterIPs": ["198.19.4.4"], "ports": [{"port": 80}]}),
                ),
            ),
            (
                None,
                json!({"type": "NodePort", "clusterIP": "198.19.0.9", "ports": [{"port": 53, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}, {"port": 80, "nodePort": 30080}]}),
                reserved(&["198.19.0.9"], None, &[30080], &[31000]),
                Some(
                    json!({"type": "NodePort", "clusterIP": "198.19.0.9", "ports": [
                    {"port": 53, "protocol": "TCP", "nodePort": 31000},
                    {"port": 53, "protocol": "UDP", "nodePort": 31000},
                    {"port": 80, "nodePort": 30080}]}),
                ),
            ),
            (
                None,
                json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"port": 80}]}),
                reserved(&[], Some("198.19.4.5"), &[], &[31001, 31002]),
                Some(
                    json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "clusterIP": "198.19.4.5", "clusterIPs": ["198.19.4.5"], "healthCheckNodePort": 31002, "ports": [{"port": 80, "nodePort": 31001}]}),
                ),
            ),
            // Held values need nothing reserved.
            (
                Some(
                    json!({"type": "NodePort", "clusterIP": "198.19.0.9", "ports": [{"port": 80, "nodePort": 30080}]}),
                ),
                json!({"type": "NodePort", "clusterIP": "198.19.0.9", "ports": [{"port": 80, "nodePort": 30080}]}),
                reserved(&[], None, &[], &[]),
                Some(
                    json!({"type": "NodePort", "clusterIP": "198.19.0.9", "ports": [{"port": 80, "nodePort": 30080}]}),
                ),
            ),
            // The object changed since the reservation: a conflict.
            (
                None,
                json!({"type": "NodePort", "clusterIP": "198.19.0.9", "ports": [{"port": 80}]}),
                reserved(&["198.19.0.9"], None, &[], &[]),
                None,
            ),
            (
                None,
                json!({"type": "ClusterIP", "clusterIP": "198.19.0.9", "ports": [{"port": 80}]}),
                reserved(&[], None, &[], &[]),
                None,
            ),
        ];
        for (old, new, r, want) in cases {
            let old = old.map(svc);
            let mut n = svc(new.clone());
            let got = assign(old.as_ref(), &mut n, &r);
            match want {
                Some(spec) => {
                    assert!(got.is_ok(), "{new}: {got:?}");
                    assert_eq!(n["spec"], spec, "{new}");
                }
                None => {
                    let e = got.expect_err("a conflict");
                    assert_eq!(e.code, 409, "{new}");
                }
            }
        }
    }

    #[test]
    fn record_owners() {
        let owner = Owner {
            namespace: "default".to_owned(),
            name: "web".to_owned(),
        };
        let ip = ip_address_object("198.19.0.9".parse().unwrap(), &owner);
        assert_eq!(record_owner(&ip), Some(owner.clone()));
        assert_eq!(record_owner(&node_port_record(&owner)), Some(owner));
        assert_eq!(
            record_owner(
                &json!({"spec": {"parentRef": {"resource": "gateways", "namespace": "a", "name": "b"}}})
            ),
            None
        );
    }
}
