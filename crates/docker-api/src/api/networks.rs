//! Network endpoints.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::{Shared, blocking};
use crate::error::engine_error;
use crate::http::*;
use crate::shapes;

pub(super) async fn route(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    method: &Method,
    parts: &[&str],
) -> Response<Body> {
    let root = shared.root.clone();
    match (method.as_str(), parts) {
        ("GET", ["networks"]) => {
            let f = match filters(&query(&req)) {
                Ok(f) => f,
                Err(m) => return error(StatusCode::BAD_REQUEST, m),
            };
            match blocking(&root, move |e| e.networks()).await {
                Ok(list) => {
                    let v: Vec<Value> = list
                        .iter()
                        .filter(|n| {
                            f.iter().all(|(k, vals)| {
                                vals.iter().any(|x| match k.as_str() {
                                    "name" => n.name.contains(x.as_str()),
                                    "id" => n.id.starts_with(x.as_str()),
                                    "driver" => n.driver == *x,
                                    "type" => {
                                        (x == "builtin")
                                            == n.network.as_ref().is_none_or(|m| m.default)
                                    }
                                    "label" => n.network.as_ref().is_some_and(|m| {
                                        berth_engine::volumes::label_matches(&m.labels, x)
                                    }),
                                    _ => false,
                                })
                            })
                        })
                        .map(shapes::network)
                        .collect();
                    json_resp(StatusCode::OK, &Value::Array(v))
                }
                Err(e) => engine_error(e),
            }
        }
        ("GET", ["networks", key]) => {
            let key = key.to_string();
            match blocking(&root, move |e| e.network(&key)).await {
                Ok(n) => json_resp(StatusCode::OK, &shapes::network(&n)),
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["networks", "create"]) => {
            let body = match read_json(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let s = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            let map = |k: &str| string_map(body.get(k));
            if body
                .get("EnableIPv6")
                .and_then(Value::as_bool)
                .unwrap_or(false)
            {
                return error(StatusCode::BAD_REQUEST, "not supported yet: IPv6 networks");
            }
            let cfgs = body
                .get("IPAM")
                .and_then(|i| i.get("Config"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if cfgs.len() > 1 {
                return error(
                    StatusCode::BAD_REQUEST,
                    "not supported yet: more than one subnet per network",
                );
            }
            let c = cfgs.first().cloned().unwrap_or_default();
            let cs = |k: &str| {
                c.get(k)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .filter(|x| !x.is_empty())
            };
            let req = berth_net::CreateNetwork {
                name: s("Name"),
                driver: s("Driver"),
                subnet: cs("Subnet"),
                gateway: cs("Gateway"),
                ip_range: cs("IPRange"),
                internal: body
                    .get("Internal")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                attachable: body
                    .get("Attachable")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                labels: map("Labels"),
                options: map("Options"),
            };
            match blocking(&root, move |e| e.create_network(&req)).await {
                Ok(n) => json_resp(StatusCode::CREATED, &json!({"Id": n.id, "Warning": ""})),
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["networks", "prune"]) => match blocking(&root, move |e| e.prune_networks()).await
        {
            Ok(names) => json_resp(StatusCode::OK, &json!({"NetworksDeleted": names})),
            Err(e) => engine_error(e),
        },
        ("DELETE", ["networks", key]) => {
            let key = key.to_string();
            match blocking(&root, move |e| e.remove_network(&key)).await {
                Ok(()) => empty(StatusCode::NO_CONTENT),
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["networks", net, action @ ("connect" | "disconnect")]) => {
            let body = match read_json(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let container = body
                .get("Container")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let cfg = body.get("EndpointConfig").cloned().unwrap_or(Value::Null);
            let aliases: Vec<String> = cfg
                .get("Aliases")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let ip = cfg
                .get("IPAMConfig")
                .and_then(|i| i.get("IPv4Address"))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned);
            let force = body.get("Force").and_then(Value::as_bool).unwrap_or(false);
            let (net, connect) = (net.to_string(), *action == "connect");
            let r = blocking(&root, move |e| {
                if connect {
                    e.network_connect(&net, &container, aliases, ip)
                } else {
                    e.network_disconnect(&net, &container, force)
                }
            })
            .await;
            match r {
                Ok(()) => empty(StatusCode::OK),
                Err(e) => engine_error(e),
            }
        }
        _ => not_found(),
    }
}
