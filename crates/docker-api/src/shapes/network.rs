//! Networks as `GET /networks` shows them.

use serde_json::{Value, json};

/// A network as `GET /networks/{id}` shows it (API 1.47: see
/// [`for_api`] for older versions). Options and IPAM settings are the
/// ones asked for, as docker reports them (berth's bridge interface name
/// is its own business unless the user chose it).
pub fn network(v: &berth_engine::network::NetworkView) -> Value {
    let mut containers = serde_json::Map::new();
    for e in &v.endpoints {
        containers.insert(
            e.container_id.clone(),
            json!({"Name": e.container_name, "EndpointID": e.id, "MacAddress": e.mac,
                   "IPv4Address": format!("{}/{}", e.ip, e.prefix), "IPv6Address": ""}),
        );
    }
    let (created, config, internal, attachable, labels, options, ipam_options) = match &v.network {
        Some(n) => (
            n.created.clone(),
            json!([ipam_config(n)]),
            n.internal,
            n.attachable,
            json!(n.labels),
            json!(n.options),
            json!(n.ipam_options),
        ),
        None => (
            "0001-01-01T00:00:00Z".to_owned(),
            json!([]),
            false,
            false,
            json!({}),
            json!({}),
            Value::Null,
        ),
    };
    json!({
        "Name": v.name, "Id": v.id, "Created": created, "Scope": "local", "Driver": v.driver,
        "EnableIPv4": true, "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": ipam_options, "Config": config},
        "Internal": internal, "Attachable": attachable, "Ingress": false,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": false,
        "Containers": containers, "Options": options, "Labels": labels,
    })
}

/// `IPAM.Config[0]`: the subnet, and the gateway unless the user chose
/// the subnet without one (docker shows what was configured).
fn ipam_config(n: &berth_net::Network) -> Value {
    let mut cfg = json!({"Subnet": n.subnet.to_string()});
    if !n.user_subnet || n.user_gateway {
        cfg["Gateway"] = json!(n.gateway.to_string());
    }
    if let Some(r) = &n.ip_range {
        cfg["IPRange"] = json!(r.to_string());
    }
    if !n.aux_addresses.is_empty() {
        cfg["AuxiliaryAddresses"] = json!(n.aux_addresses);
    }
    cfg
}

/// A network for a request at API minor version `minor`: `EnableIPv4`
/// arrived in 1.47.
pub fn for_api(mut v: Value, minor: u32) -> Value {
    if minor < 47
        && let Some(o) = v.as_object_mut()
    {
        o.remove("EnableIPv4");
    }
    v
}
