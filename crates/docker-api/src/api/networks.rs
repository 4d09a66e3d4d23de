//! Network endpoints.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::{Shared, blocking};
use crate::error::{bad_request, engine_error};
use crate::http::*;
use crate::model::network::{ConnectBody, NetworkCreateBody};
use crate::shapes;

pub(super) async fn route(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    method: &Method,
    parts: &[&str],
) -> Response<Body> {
    let root = shared.root.clone();
    let minor = api_minor(&req);
    let shape = move |n: &berth_engine::network::NetworkView| {
        shapes::network::for_api(shapes::network(n), minor)
    };
    match (method.as_str(), parts) {
        ("GET", ["networks"]) => {
            let f = match filters(&query(&req)) {
                Ok(f) => f,
                Err(m) => return bad_request(m),
            };
            match blocking(&root, move |e| e.networks_filtered(&f)).await {
                Ok(list) => {
                    // the list leaves the containers out (API 1.28 on)
                    let v: Vec<Value> = list
                        .iter()
                        .map(|n| {
                            let mut j = shape(n);
                            j["Containers"] = json!({});
                            j
                        })
                        .collect();
                    json_resp(StatusCode::OK, &Value::Array(v))
                }
                Err(e) => engine_error(e),
            }
        }
        ("GET", ["networks", key]) => {
            let key = key.to_string();
            match blocking(&root, move |e| e.network(&key)).await {
                Ok(n) => json_resp(StatusCode::OK, &shape(&n)),
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["networks", "create"]) => {
            let body: NetworkCreateBody = match read_body(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let req = match body.into_request() {
                Ok(r) => r,
                Err(m) => return bad_request(m),
            };
            match blocking(&root, move |e| e.create_network(&req)).await {
                Ok(n) => json_resp(StatusCode::CREATED, &json!({"Id": n.id, "Warning": ""})),
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["networks", "prune"]) => {
            let f = match filters(&query(&req)) {
                Ok(f) => f,
                Err(m) => return bad_request(m),
            };
            let until = match until_filter(&f) {
                Ok(u) => u,
                Err(m) => return bad_request(m),
            };
            match blocking(&root, move |e| e.prune_networks(&f, until)).await {
                // docker: null when nothing went
                Ok(names) => json_resp(
                    StatusCode::OK,
                    &json!({"NetworksDeleted": (!names.is_empty()).then_some(names)}),
                ),
                Err(e) => engine_error(e),
            }
        }
        ("DELETE", ["networks", key]) => {
            let key = key.to_string();
            match blocking(&root, move |e| e.remove_network(&key)).await {
                Ok(()) => empty(StatusCode::NO_CONTENT),
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["networks", net, action @ ("connect" | "disconnect")]) => {
            let body: ConnectBody = match read_body(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let container = body.container.unwrap_or_default();
            let force = body.force.unwrap_or(false);
            let ep = match body.endpoint_config.unwrap_or_default().into_endpoint(net) {
                Ok(e) => e,
                Err(m) => return bad_request(m),
            };
            let (net, connect) = (net.to_string(), *action == "connect");
            let r = blocking(&root, move |e| {
                if connect {
                    e.network_connect(&net, &container, ep)
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
