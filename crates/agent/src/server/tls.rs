//! The kubelet API's TLS: its serving certificate, and a client certificate
//! signed by the cluster CA required of every caller.

use std::io;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The kubelet API's TLS material (PEM text).
#[derive(Clone)]
pub struct ServerTls {
    /// The serving certificate chain (the node's, signed by the cluster CA).
    pub cert_pem: String,
    /// Its private key.
    pub key_pem: String,
    /// The CA a client certificate must chain to (the cluster CA).
    pub client_ca_pem: String,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

fn invalid(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{what}: {e}"))
}

impl ServerTls {
    /// The rustls configuration: client certificates required and verified
    /// against the CA, ALPN `http/1.1` (the streams are HTTP/1.1 upgrades).
    pub fn server_config(&self) -> io::Result<Arc<rustls::ServerConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(self.client_ca_pem.as_bytes()) {
            let ca = ca.map_err(|e| invalid("the client CA certificate", e))?;
            roots
                .add(ca)
                .map_err(|e| invalid("the client CA certificate", e))?;
        }
        if roots.is_empty() {
            return Err(invalid("the client CA", "no certificate in the PEM text"));
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::clone(&provider),
        )
        .build()
        .map_err(|e| invalid("the client certificate verifier", e))?;
        let chain = CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid("the serving certificate", e))?;
        if chain.is_empty() {
            return Err(invalid(
                "the serving certificate",
                "no certificate in the PEM text",
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|e| invalid("the serving key", e))?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid("TLS versions", e))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|e| invalid("the serving certificate and key", e))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// Who called, from the client certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Caller {
    /// The common name (the user).
    pub user: String,
    /// The organizations (the groups).
    pub groups: Vec<String>,
}

/// The group the API server's kubelet-client certificate is in.
pub const MASTERS_GROUP: &str = "system:masters";
/// The user of the API server's kubelet-client certificate.
pub const KUBELET_CLIENT_USER: &str = "kube-apiserver-kubelet-client";

impl Caller {
    /// Reads the subject of a DER certificate (an unreadable one is nobody).
    pub fn from_der(der: &[u8]) -> Caller {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
            return Caller::default();
        };
        let subject = cert.subject();
        Caller {
            user: subject
                .iter_common_name()
                .find_map(|a| a.as_str().ok())
                .unwrap_or("")
                .to_owned(),
            groups: subject
                .iter_organization()
                .filter_map(|a| a.as_str().ok())
                .map(str::to_owned)
                .collect(),
        }
    }

    /// Whether the caller may use the kubelet API: the API server's
    /// kubelet client, or a member of `system:masters`.
    pub fn allowed(&self) -> bool {
        self.user == KUBELET_CLIENT_USER || self.groups.iter().any(|g| g == MASTERS_GROUP)
    }

    /// kubelet's 403 for a caller that is not allowed.
    pub fn refusal<B>(&self, request: &hyper::Request<B>) -> Option<super::http::Failure> {
        if self.allowed() {
            return None;
        }
        Some(self.forbidden(request))
    }

    /// kubelet's 403 for this caller and `request`.
    pub fn forbidden<B>(&self, request: &hyper::Request<B>) -> super::http::Failure {
        let (verb, subresource) = attributes(request);
        super::http::Failure::new(
            403,
            format!(
                "Forbidden (user={}, verb={verb}, resource=nodes, subresource={subresource})",
                self.user
            ),
        )
    }
}

/// The verb and the `nodes` subresource a kubelet API request is
/// authorized as, as the kubelet maps them: `/stats` → `stats`,
/// `/metrics…` → `metrics`, `/logs` → `log`, `/spec` → `spec`, anything
/// else (exec, logs of containers, port-forward…) → `proxy`.
pub fn attributes<B>(request: &hyper::Request<B>) -> (&'static str, &'static str) {
    let verb = match *request.method() {
        hyper::Method::POST => "create",
        hyper::Method::PUT => "update",
        hyper::Method::PATCH => "patch",
        hyper::Method::DELETE => "delete",
        _ => "get",
    };
    let path = request.uri().path();
    let under = |prefix: &str| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    let subresource = if under("/stats") {
        "stats"
    } else if under("/metrics") {
        "metrics"
    } else if under("/logs") {
        "log"
    } else if under("/spec") {
        "spec"
    } else {
        "proxy"
    };
    (verb, subresource)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_api_server_and_masters_are_served() {
        let apiserver = Caller {
            user: KUBELET_CLIENT_USER.into(),
            groups: vec![],
        };
        let admin = Caller {
            user: "admin".into(),
            groups: vec![MASTERS_GROUP.into()],
        };
        let jane = Caller {
            user: "jane".into(),
            groups: vec!["devs".into()],
        };
        assert!(apiserver.allowed() && admin.allowed() && !jane.allowed());
        let request = hyper::Request::get("/exec/a/b/c").body(()).unwrap();
        assert_eq!(
            jane.refusal(&request).unwrap().message,
            "Forbidden (user=jane, verb=get, resource=nodes, subresource=proxy)"
        );
        assert!(admin.refusal(&request).is_none());
        let request = hyper::Request::get("/metrics/cadvisor").body(()).unwrap();
        assert_eq!(
            jane.refusal(&request).unwrap().message,
            "Forbidden (user=jane, verb=get, resource=nodes, subresource=metrics)"
        );
        let sub = |p: &str| attributes(&hyper::Request::get(p).body(()).unwrap()).1;
        assert_eq!(sub("/metrics"), "metrics");
        assert_eq!(sub("/metricsx"), "proxy");
        assert_eq!(sub("/stats/summary"), "stats");
        assert_eq!(sub("/logs/"), "log");
        assert_eq!(sub("/containerLogs/a/b/c"), "proxy");
    }
}
