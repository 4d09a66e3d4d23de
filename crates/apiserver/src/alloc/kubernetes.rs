//! The `default/kubernetes` Service, its Endpoints and EndpointSlice, and
//! the default ServiceCIDR, as kube-apiserver keeps them: the Service
//! takes the first address of the range (port `https` 443 to the API
//! server's port), the endpoints name the API server's advertised address;
//! all are reconciled at every start.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

use serde_json::{Value, json};

use super::Ranges;
use crate::api::Api;
use crate::error::ApiError;
use crate::kinds::{self, FieldValidation, Op};
use crate::meta;
use crate::request::Target;
use crate::storage::Change;

/// The address the API server advertises when none is configured: the
/// bind address if it is one, else the host's address toward the default
/// route (no packet is sent), else loopback.
pub fn advertise_address(bind: SocketAddr) -> IpAddr {
    if !bind.ip().is_unspecified() {
        return bind.ip();
    }
    let routed = UdpSocket::bind("0.0.0.0:0").and_then(|s| {
        // TEST-NET-1: a route lookup only.
        s.connect((Ipv4Addr::new(192, 0, 2, 1), 9))?;
        s.local_addr()
    });
    match routed {
        Ok(a) if !a.ip().is_unspecified() => a.ip(),
        _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
    }
}

fn target(
    api: &Api,
    group: &str,
    plural: &str,
    namespace: &str,
    name: &str,
) -> Result<Target, ApiError> {
    let resource = api
        .registry
        .get(group, "v1", plural)
        .ok_or_else(|| ApiError::internal(format!("no resource {plural}")))?;
    Ok(Target {
        resource,
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        subresource: String::new(),
    })
}

fn stamp_new(obj: &mut Value, namespace: &str) {
    let m = meta::metadata_mut(obj);
    m.insert("uid".to_owned(), json!(meta::new_uid()));
    m.insert("creationTimestamp".to_owned(), json!(meta::now()));
    if !namespace.is_empty() {
        m.insert("namespace".to_owned(), json!(namespace));
    }
}

/// Creates `obj` or makes the stored one carry its labels and every
/// top-level field but metadata (and status unless `with_status`).
async fn upsert(
    api: &Api,
    group: &str,
    plural: &str,
    namespace: &str,
    mut obj: Value,
    with_status: bool,
) -> Result<(), ApiError> {
    let name = meta::meta_str(&obj, "name").to_owned();
    let t = target(api, group, plural, namespace, &name)?;
    if api.objects.get_key(&t.key()).await?.is_none() {
        stamp_new(&mut obj, namespace);
        kinds::prepare(
            api,
            &t.resource,
            Op::Create,
            None,
            &mut obj,
            FieldValidation::Ignore,
        )?;
        return match api.objects.create(&t, &obj, None).await {
            Ok(_) => Ok(()),
            Err(e) if e.reason == "AlreadyExists" => Ok(()),
            Err(e) => Err(e),
        };
    }
    let labels = meta::metadata(&obj).get("labels").cloned();
    api.objects
        .update(&t, None, None, |current| {
            let mut new = current.clone();
            if let (Some(map), Some(want)) = (new.as_object_mut(), obj.as_object()) {
                for (k, v) in want {
                    if k == "metadata" || (k == "status" && !with_status) {
                        continue;
                    }
                    map.insert(k.clone(), v.clone());
                }
            }
            if let Some(l) = &labels {
                meta::metadata_mut(&mut new).insert("labels".to_owned(), l.clone());
            }
            if new == current {
                Ok(Change::Keep)
            } else {
                Ok(Change::Put(new))
            }
        })
        .await?;
    Ok(())
}

fn service_ports(port: u16) -> Value {
    json!([{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}])
}

/// Creates or reconciles the `kubernetes` Service, its endpoints and the
/// default ServiceCIDR.
pub async fn reconcile(api: &Api, advertise: IpAddr, port: u16) -> Result<(), ApiError> {
    let ranges: Ranges = api.service_ranges();
    upsert(
        api,
        "networking.k8s.io",
        "servicecidrs",
        "",
        json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR",
            "metadata": {"name": "kubernetes"},
            "spec": {"cidrs": [ranges.cidr.to_string()]},
            "status": {"conditions": [{
                "type": "Ready", "status": "True", "reason": "",
                "message": "Kubernetes Service CIDR is ready",
                "lastTransitionTime": meta::now(),
            }]},
        }),
        false,
    )
    .await?;
    ensure_service(api, &ranges, port).await?;
    let ip = advertise.to_string();
    upsert(
        api,
        "",
        "endpoints",
        "default",
        json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": ip}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
        }),
        true,
    )
    .await?;
    upsert(
        api,
        "discovery.k8s.io",
        "endpointslices",
        "default",
        json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "kubernetes", "labels": {"kubernetes.io/service-name": "kubernetes"}},
            "addressType": if advertise.is_ipv6() { "IPv6" } else { "IPv4" },
            "endpoints": [{"addresses": [ip], "conditions": {"ready": true}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        }),
        true,
    )
    .await?;
    Ok(())
}

async fn ensure_service(api: &Api, ranges: &Ranges, port: u16) -> Result<(), ApiError> {
    let t = target(api, "", "services", "default", "kubernetes")?;
    if let Some((current, _)) = api.objects.get_key(&t.key()).await? {
        let want = service_ports(port);
        if current.pointer("/spec/ports") != Some(&want) {
            api.objects
                .update(&t, None, None, |cur| {
                    let mut new = cur.clone();
                    if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
                        spec.insert("ports".to_owned(), want.clone());
                    }
                    Ok(Change::Put(new))
                })
                .await?;
        }
        return Ok(());
    }
    let first = ranges.cidr.first().to_string();
    let mut svc = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"type": "ClusterIP", "clusterIP": first, "ports": service_ports(port)},
        "status": {"loadBalancer": {}},
    });
    stamp_new(&mut svc, "default");
    kinds::prepare(
        api,
        &t.resource,
        Op::Create,
        None,
        &mut svc,
        FieldValidation::Ignore,
    )?;
    // Another API server on the store may be creating it too: whoever
    // loses finds it there.
    let reserved = match super::reserve(api, None, &svc, false).await {
        Ok(r) => r,
        Err(_) if api.objects.get_key(&t.key()).await?.is_some() => return Ok(()),
        Err(e) => return Err(e),
    };
    super::assign(None, &mut svc, &reserved)?;
    match api.objects.create(&t, &svc, None).await {
        Ok(_) => Ok(()),
        Err(e) if e.reason == "AlreadyExists" => Ok(()),
        Err(e) => {
            reserved.release(api).await;
            Err(e)
        }
    }
}
