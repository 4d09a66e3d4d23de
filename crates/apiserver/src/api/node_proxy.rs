//! The streaming subresources, served by the node's kubelet API: the API
//! server finds the pod's node, dials the kubelet (HTTPS, the node's
//! InternalIP and `status.daemonEndpoints.kubeletEndpoint.Port`, as the
//! `kube-apiserver-kubelet-client`) and proxies:
//!
//! - `pods/log` → `GET /containerLogs/{ns}/{pod}/{container}`, the body
//!   streamed back as it comes (`follow` keeps it open);
//! - `pods/exec`, `pods/attach` → `/exec/…`, `/attach/…`, and
//!   `pods/portforward` → `/portForward/{ns}/{pod}`: upgrade requests
//!   (WebSocket), relayed byte for byte both ways after the kubelet's 101;
//! - `nodes/{name}/proxy/{path}` → `/{path}` on the node's kubelet.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, Uri, header};
use axum::response::Response;
use hyper_util::rt::TokioIo;
use serde_json::Value;

use super::{Api, Ctx};
use crate::error::{ApiError, Cause};
use crate::request::{Query, Target};

/// The kubelet port when a node does not say.
pub const DEFAULT_KUBELET_PORT: u16 = 10250;
/// How long dialing a kubelet may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a kubelet's error body is read.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Whether the request is one this module serves.
pub fn handles(target: &Target) -> bool {
    let r = &target.resource;
    r.group.is_empty()
        && ((r.plural == "pods"
            && matches!(
                target.subresource.as_str(),
                "log" | "exec" | "attach" | "portforward"
            ))
            || (r.plural == "nodes" && target.subresource == "proxy"))
}

/// Whether a request asks to switch protocols.
fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
}

/// Serves a streaming subresource (authorization done, except the
/// `create` check of WebSocket upgrades, done here).
pub async fn serve(
    api: &Arc<Api>,
    target: &Target,
    ctx: &Ctx,
    mut parts: Parts,
    body: Body,
) -> Result<Response, ApiError> {
    let upgrade = wants_upgrade(&parts.headers);
    let sub = target.subresource.as_str();
    if matches!(sub, "exec" | "attach" | "portforward") {
        // kube 1.31+: a WebSocket GET of exec/attach/portforward also needs
        // `create` (AuthorizePodWebsocketUpgradeCreatePermission).
        if parts.method == Method::GET
            && let Some(security) = &api.security
        {
            security
                .authorize_resource(api, &ctx.user, "create", target)
                .await?;
        }
        if !upgrade {
            return Err(ApiError::bad_request(
                "Upgrade request required: exec, attach and port-forward stream over WebSocket",
            ));
        }
    }
    let (node_name, path) = if target.resource.plural == "nodes" {
        let rest = proxy_rest(parts.uri.path(), &target.name);
        (target.name.clone(), format!("/{rest}"))
    } else {
        let mut whole = target.clone();
        whole.subresource.clear();
        let (pod, _) = api.objects.get(&whole).await?;
        let node = pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let path = pod_path(&pod, target, &ctx.query)?;
        if node.is_empty() {
            if sub == "log" {
                // kube: no host yet, no location: an empty log.
                return Ok(empty_ok());
            }
            return Err(ApiError::bad_request(format!(
                "pod {} does not have a host assigned",
                target.name
            )));
        }
        (node, path)
    };
    let nodes = api
        .registry
        .get("", "v1", "nodes")
        .ok_or_else(|| ApiError::internal("the nodes resource is not registered"))?;
    let node_target = Target {
        resource: nodes,
        namespace: String::new(),
        name: node_name.clone(),
        subresource: String::new(),
    };
    let (node, _) = api.objects.get(&node_target).await?;
    let addr = kubelet_address(&node)?;
    let path_and_query = match (target.resource.plural.as_str(), parts.uri.query()) {
        ("nodes", Some(q)) => format!("{path}?{q}"),
        _ => path,
    };
    let tls = api
        .kubelet_client()
        .ok_or_else(|| ApiError::unavailable("the API server has no kubelet client credentials"))?;
    let client_upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
    if upgrade && client_upgrade.is_none() {
        return Err(ApiError::bad_request(
            "this connection cannot be upgraded (streams need HTTP/1.1)",
        ));
    }
    let mut request = hyper::Request::builder()
        .method(parts.method.clone())
        .uri(
            path_and_query
                .parse::<Uri>()
                .map_err(|e| ApiError::bad_request(format!("the kubelet path: {e}")))?,
        )
        .body(if target.resource.plural == "nodes" {
            body
        } else {
            Body::empty()
        })
        .map_err(|e| ApiError::internal(format!("the kubelet request: {e}")))?;
    copy_headers(&parts.headers, request.headers_mut(), upgrade);
    if let Ok(host) = header::HeaderValue::from_str(&addr.to_string()) {
        request.headers_mut().insert(header::HOST, host);
    }
    let mut response = send(tls, addr, request).await?;
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = client_upgrade else {
            return Err(ApiError::internal("the kubelet switched protocols unasked"));
        };
        let upstream = hyper::upgrade::on(&mut response);
        tokio::spawn(async move {
            let (Ok(client), Ok(kubelet)) = tokio::join!(client_upgrade, upstream) else {
                return;
            };
            let mut client = TokioIo::new(client);
            let mut kubelet = TokioIo::new(kubelet);
            let _ = tokio::io::copy_bidirectional(&mut client, &mut kubelet).await;
        });
        let (head, _) = response.into_parts();
        return Ok(Response::from_parts(head, Body::empty()));
    }
    let status = response.status();
    if target.resource.plural == "pods" && !status.is_success() {
        let text = error_text(response).await;
        return Err(kubelet_error(status.as_u16(), &text, target));
    }
    let (mut head, incoming) = response.into_parts();
    for hop in [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        HeaderName::from_static("keep-alive"),
    ] {
        head.headers.remove(hop);
    }
    Ok(Response::from_parts(head, Body::new(incoming)))
}

fn empty_ok() -> Response {
    let mut r = Response::new(Body::empty());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain"),
    );
    r
}

/// What follows `/nodes/{name}/proxy` in a path.
pub fn proxy_rest<'a>(path: &'a str, name: &str) -> &'a str {
    let marker = format!("/nodes/{name}/proxy");
    match path.find(&marker) {
        Some(at) => path
            .get(at + marker.len()..)
            .unwrap_or("")
            .trim_start_matches('/'),
        None => "",
    }
}

/// The kubelet path (and query) of a pod subresource request.
pub fn pod_path(pod: &Value, target: &Target, query: &Query) -> Result<String, ApiError> {
    let (ns, name) = (&target.namespace, &target.name);
    Ok(match target.subresource.as_str() {
        "log" => {
            let container = choose_container(pod, name, query.get("container"), false)?;
            let q = log_query(query, name)?;
            format!("/containerLogs/{ns}/{name}/{container}{q}")
        }
        "exec" | "attach" => {
            let container = choose_container(pod, name, query.get("container"), true)?;
            let mut q = form_urlencoded::Serializer::new(String::new());
            if target.subresource == "exec" {
                for c in query.all("command") {
                    q.append_pair("command", c);
                }
            }
            for flag in ["stdin", "stdout", "stderr", "tty"] {
                if query.flag(flag) {
                    q.append_pair(flag, "1");
                }
            }
            let q = q.finish();
            let sep = if q.is_empty() { "" } else { "?" };
            format!("/{}/{ns}/{name}/{container}{sep}{q}", target.subresource)
        }
        "portforward" => {
            let mut q = form_urlencoded::Serializer::new(String::new());
            for p in query.all("ports") {
                q.append_pair("port", p);
            }
            let q = q.finish();
            let sep = if q.is_empty() { "" } else { "?" };
            format!("/portForward/{ns}/{name}{sep}{q}")
        }
        other => return Err(ApiError::no_route(other)),
    })
}

fn names(list: Option<&Value>) -> Vec<String> {
    list.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The container a request is for: the one asked (which must be in the
/// pod), else the pod's only container; kube's errors otherwise.
pub fn choose_container(
    pod: &Value,
    pod_name: &str,
    asked: Option<&str>,
    with_ephemeral: bool,
) -> Result<String, ApiError> {
    let containers = names(pod.pointer("/spec/containers"));
    let init = names(pod.pointer("/spec/initContainers"));
    let ephemeral = names(pod.pointer("/spec/ephemeralContainers"));
    match asked.filter(|c| !c.is_empty()) {
        Some(c) => {
            if containers
                .iter()
                .chain(&init)
                .chain(&ephemeral)
                .any(|n| n == c)
            {
                Ok(c.to_owned())
            } else {
                Err(ApiError::bad_request(format!(
                    "container {c} is not valid for pod {pod_name}"
                )))
            }
        }
        None => match containers.as_slice() {
            [only] => Ok(only.clone()),
            [] => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {pod_name}"
            ))),
            many => {
                let mut message = format!(
                    "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                    many.join(" ")
                );
                if !init.is_empty() {
                    message.push_str(&format!(
                        " or one of the init containers: [{}]",
                        init.join(" ")
                    ));
                }
                if with_ephemeral && !ephemeral.is_empty() {
                    message.push_str(&format!(
                        " or one of the ephemeral containers: [{}]",
                        ephemeral.join(" ")
                    ));
                }
                Err(ApiError::bad_request(message))
            }
        },
    }
}

/// The kubelet query of a log request (`?…` or empty), checked as kube
/// checks PodLogOptions.
pub fn log_query(query: &Query, pod_name: &str) -> Result<String, ApiError> {
    let tail = query.int("tailLines")?;
    let limit = query.int("limitBytes")?;
    let since_seconds = query.int("sinceSeconds")?;
    let since_time = query.get("sinceTime").filter(|v| !v.is_empty());
    let mut causes = Vec::new();
    if let Some(t) = tail.filter(|t| *t < 0) {
        causes.push(Cause::invalid(
            "tailLines",
            &serde_json::json!(t),
            "must be greater than or equal to 0",
        ));
    }
    if let Some(l) = limit.filter(|l| *l < 1) {
        causes.push(Cause::invalid(
            "limitBytes",
            &serde_json::json!(l),
            "must be greater than 0",
        ));
    }
    match (since_seconds, since_time) {
        (Some(_), Some(_)) => causes.push(Cause::forbidden(
            "",
            "at most one of `sinceTime` or `sinceSeconds` may be specified",
        )),
        (Some(s), None) if s < 1 => causes.push(Cause::invalid(
            "sinceSeconds",
            &serde_json::json!(s),
            "must be greater than 0",
        )),
        _ => {}
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid("", "PodLogOptions", pod_name, causes));
    }
    let mut q = form_urlencoded::Serializer::new(String::new());
    for flag in ["follow", "previous", "timestamps"] {
        if query.flag(flag) {
            q.append_pair(flag, "true");
        }
    }
    for (key, value) in [
        ("tailLines", tail),
        ("limitBytes", limit),
        ("sinceSeconds", since_seconds),
    ] {
        if let Some(v) = value {
            q.append_pair(key, &v.to_string());
        }
    }
    if let Some(t) = since_time {
        q.append_pair("sinceTime", t);
    }
    let q = q.finish();
    Ok(if q.is_empty() { q } else { format!("?{q}") })
}

/// The kubelet's address: the node's InternalIP (else ExternalIP) and
/// `status.daemonEndpoints.kubeletEndpoint.Port` (10250 when unset).
pub fn kubelet_address(node: &Value) -> Result<SocketAddr, ApiError> {
    let addresses: Vec<(String, String)> = node
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| {
                    let s = |k: &str| x.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                    (s("type"), s("address"))
                })
                .collect()
        })
        .unwrap_or_default();
    let ip = ["InternalIP", "ExternalIP"].iter().find_map(|kind| {
        addresses
            .iter()
            .filter(|(t, _)| t == kind)
            .find_map(|(_, a)| a.parse::<IpAddr>().ok())
    });
    let Some(ip) = ip else {
        let known: Vec<String> = addresses
            .iter()
            .map(|(t, a)| format!("{{{t} {a}}}"))
            .collect();
        return Err(ApiError::internal(format!(
            "no preferred addresses found; known addresses: [{}]",
            known.join(" ")
        )));
    };
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
        .unwrap_or(DEFAULT_KUBELET_PORT);
    Ok(SocketAddr::new(ip, port))
}

/// Request headers passed to the kubelet: not the caller's credentials,
/// not hop-by-hop ones unless the request is an upgrade.
fn copy_headers(from: &HeaderMap, to: &mut HeaderMap, upgrade: bool) {
    for (name, value) in from {
        let n = name.as_str();
        let skip = n == "authorization"
            || n.starts_with("impersonate-")
            || name == header::HOST
            || name == header::CONTENT_LENGTH && !upgrade
            || (!upgrade
                && (name == header::CONNECTION
                    || name == header::UPGRADE
                    || name == header::TE
                    || name == HeaderName::from_static("keep-alive")));
        if !skip {
            to.append(name.clone(), value.clone());
        }
    }
}

/// GETs `path` from `node`'s kubelet (as the API server's kubelet
/// client) and returns the body; a kubelet's error as an ApiError.
pub async fn kubelet_get(api: &Api, node: &Value, path: &str) -> Result<Vec<u8>, ApiError> {
    let addr = kubelet_address(node)?;
    let tls = api
        .kubelet_client()
        .ok_or_else(|| ApiError::unavailable("the API server has no kubelet client credentials"))?;
    let mut request = hyper::Request::builder()
        .method(hyper::Method::GET)
        .uri(path)
        .body(Body::empty())
        .map_err(|e| ApiError::internal(format!("the kubelet request: {e}")))?;
    if let Ok(host) = header::HeaderValue::from_str(&addr.to_string()) {
        request.headers_mut().insert(header::HOST, host);
    }
    let response = send(tls, addr, request).await?;
    if !response.status().is_success() {
        let code = response.status().as_u16();
        let text = error_text(response).await;
        return Err(ApiError::internal(format!(
            "the kubelet at {addr} answered {code}: {text}"
        )));
    }
    let body = Body::new(response.into_body());
    axum::body::to_bytes(body, 64 << 20)
        .await
        .map(|b| b.to_vec())
        .map_err(|e| ApiError::internal(format!("reading from the kubelet at {addr}: {e}")))
}

/// Dials the kubelet and sends one request.
async fn send(
    tls: Arc<rustls::ClientConfig>,
    addr: SocketAddr,
    request: hyper::Request<Body>,
) -> Result<hyper::Response<hyper::body::Incoming>, ApiError> {
    let dial_error = |e: String| ApiError::internal(format!("error dialing backend: {e}"));
    let tcp = tokio::time::timeout(DIAL_TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| dial_error(format!("dial tcp {addr}: i/o timeout")))?
        .map_err(|e| dial_error(format!("dial tcp {addr}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let server_name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    let stream = tokio::time::timeout(
        DIAL_TIMEOUT,
        tokio_rustls::TlsConnector::from(tls).connect(server_name, tcp),
    )
    .await
    .map_err(|_| dial_error(format!("TLS handshake with {addr}: timeout")))?
    .map_err(|e| dial_error(format!("TLS handshake with {addr}: {e}")))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| dial_error(format!("HTTP with {addr}: {e}")))?;
    tokio::spawn(async move {
        if let Err(e) = connection.with_upgrades().await {
            tracing::debug!(error = %e, "kubelet connection ended");
        }
    });
    sender
        .send_request(request)
        .await
        .map_err(|e| dial_error(format!("request to {addr}: {e}")))
}

/// The start of an error body.
async fn error_text(response: hyper::Response<hyper::body::Incoming>) -> String {
    let body = Body::new(response.into_body());
    match axum::body::to_bytes(body, MAX_ERROR_BODY).await {
        Ok(b) => String::from_utf8_lossy(&b).trim_end().to_owned(),
        Err(_) => String::new(),
    }
}

/// A kubelet's error answer as the API server reports it (kube's response
/// checker: 400 a BadRequest with the kubelet's text, 500 an internal error,
/// others their code).
pub fn kubelet_error(code: u16, text: &str, target: &Target) -> ApiError {
    let text = if text.is_empty() {
        format!("the kubelet answered {code} without more information")
    } else {
        text.to_owned()
    };
    match code {
        400 => ApiError::bad_request(text),
        404 => ApiError {
            code: 404,
            reason: "NotFound",
            message: text,
            details: Some(serde_json::json!({
                "name": target.name,
                "kind": format!("{}/{}", target.resource.plural, target.subresource),
            })),
        },
        403 => ApiError::forbidden(text),
        _ => ApiError::internal(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(containers: &[&str], init: &[&str]) -> Value {
        let c: Vec<Value> = containers.iter().map(|n| json!({"name": n})).collect();
        let i: Vec<Value> = init.iter().map(|n| json!({"name": n})).collect();
        json!({"spec": {"containers": c, "initContainers": i}})
    }

    #[test]
    fn the_only_container_is_the_default() {
        assert_eq!(
            choose_container(&pod(&["app"], &[]), "p", None, false).unwrap(),
            "app"
        );
        assert_eq!(
            choose_container(&pod(&["a", "b"], &["i"]), "p", Some("i"), false).unwrap(),
            "i"
        );
    }

    #[test]
    fn container_errors_are_kube_s() {
        let e = choose_container(&pod(&["a", "b"], &[]), "p", None, false).unwrap_err();
        assert_eq!(e.code, 400);
        assert_eq!(
            e.message,
            "a container name must be specified for pod p, choose one of: [a b]"
        );
        let e = choose_container(&pod(&["a", "b"], &["i"]), "p", None, false).unwrap_err();
        assert_eq!(
            e.message,
            "a container name must be specified for pod p, choose one of: [a b] or one of the init containers: [i]"
        );
        let e = choose_container(&pod(&["a"], &[]), "p", Some("x"), false).unwrap_err();
        assert_eq!(e.message, "container x is not valid for pod p");
    }

    #[test]
    fn log_options_are_checked_and_passed_on() {
        let q = Query::parse(Some(
            "container=c&follow=true&tailLines=5&timestamps=1&limitBytes=9&sinceSeconds=3",
        ));
        assert_eq!(
            log_query(&q, "p").unwrap(),
            "?follow=true&timestamps=true&tailLines=5&limitBytes=9&sinceSeconds=3"
        );
        assert_eq!(log_query(&Query::parse(None), "p").unwrap(), "");
        let e = log_query(&Query::parse(Some("tailLines=-1")), "p").unwrap_err();
        assert_eq!(e.code, 422);
        assert!(
            e.message
                .contains("tailLines: Invalid value: -1: must be greater than or equal to 0"),
            "{}",
            e.message
        );
        let e = log_query(
            &Query::parse(Some("sinceSeconds=1&sinceTime=2026-01-01T00:00:00Z")),
            "p",
        )
        .unwrap_err();
        assert!(
            e.message
                .contains("at most one of `sinceTime` or `sinceSeconds` may be specified"),
            "{}",
            e.message
        );
        assert_eq!(
            log_query(&Query::parse(Some("tailLines=x")), "p")
                .unwrap_err()
                .code,
            400
        );
    }

    #[test]
    fn the_kubelet_is_the_node_s_internal_ip_and_daemon_port() {
        let node = json!({"status": {
            "addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "198.18.9.5"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 11250}},
        }});
        assert_eq!(
            kubelet_address(&node).unwrap(),
            "198.18.9.5:11250".parse().unwrap()
        );
        let bare =
            json!({"status": {"addresses": [{"type": "InternalIP", "address": "198.18.9.6"}]}});
        assert_eq!(
            kubelet_address(&bare).unwrap(),
            "198.18.9.6:10250".parse().unwrap()
        );
        let none = json!({"status": {"addresses": [{"type": "Hostname", "address": "n1"}]}});
        assert_eq!(
            kubelet_address(&none).unwrap_err().message,
            "Internal error occurred: no preferred addresses found; known addresses: [{Hostname n1}]"
        );
    }

    #[test]
    fn the_proxy_path_is_what_follows_proxy() {
        assert_eq!(
            proxy_rest("/api/v1/nodes/n1/proxy/containerLogs/a/b/c", "n1"),
            "containerLogs/a/b/c"
        );
        assert_eq!(proxy_rest("/api/v1/nodes/n1/proxy", "n1"), "");
    }
}
