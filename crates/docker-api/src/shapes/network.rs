//! Networks as `GET /networks` shows them.

use serde_json::{Value, json};

/// A network as `GET /networks/{id}` shows it.
pub fn network(v: &berth_engine::network::NetworkView) -> Value {
    let mut containers = serde_json::Map::new();
    for e in &v.endpoints {
        containers.insert(
            e.container_id.clone(),
            json!({"Name": e.container_name, "EndpointID": e.id, "MacAddress": e.mac,
                   "IPv4Address": format!("{}/{}", e.ip, e.prefix), "IPv6Address": ""}),
        );
    }
    let (created, config, internal, attachable, labels, mut options) = match &v.network {
        Some(n) => {
            let mut cfg = json!({"Subnet": n.subnet.to_string(), "Gateway": n.gateway.to_string()});
            if let Some(r) = &n.ip_range {
                cfg["IPRange"] = json!(r.to_string());
            }
            (
                n.created.clone(),
                json!([cfg]),
                n.internal,
                n.attachable,
                json!(n.labels),
                n.options.clone(),
            )
        }
        None => (
            "0001-01-01T00:00:00Z".to_owned(),
            json!([]),
            false,
            false,
            json!({}),
            Default::default(),
        ),
    };
    // user networks show the options they were made with, nothing more
    // (compose recreates a network whose options differ from its file)
    if let Some(n) = &v.network
        && n.default
    {
        options.insert("com.docker.network.bridge.name".into(), n.bridge.clone());
        options.insert(
            "com.docker.network.bridge.default_bridge".into(),
            "true".into(),
        );
    }
    json!({
        "Name": v.name, "Id": v.id, "Created": created, "Scope": "local", "Driver": v.driver,
        "EnableIPv4": true, "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": null, "Config": config},
        "Internal": internal, "Attachable": attachable, "Ingress": false,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": false,
        "Containers": containers, "Options": options, "Labels": labels,
    })
}
