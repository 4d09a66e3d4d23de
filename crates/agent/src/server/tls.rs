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
