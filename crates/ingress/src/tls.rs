//! HTTPS certificates by server name (SNI): the Ingresses' TLS Secrets,
//! a `*.` wildcard for one label, and a self-signed fallback for names no
//! Secret covers (as ingress-nginx's "fake certificate").

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Certificates by host, swapped as the Ingresses change.
#[derive(Debug)]
pub struct Certs {
    by_host: RwLock<BTreeMap<String, Arc<CertifiedKey>>>,
    fallback: Arc<CertifiedKey>,
}

fn certified(chain_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, String> {
    let chain: Vec<_> = rustls_pemfile::certs(&mut &chain_pem[..])
        .collect::<Result<_, _>>()
        .map_err(|e| format!("tls.crt: {e}"))?;
    if chain.is_empty() {
        return Err("tls.crt holds no certificate".into());
    }
    let key = rustls_pemfile::private_key(&mut &key_pem[..])
        .map_err(|e| format!("tls.key: {e}"))?
        .ok_or("tls.key holds no private key")?;
    let key = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| format!("tls.key: {e}"))?;
    Ok(CertifiedKey::new(chain, key))
}

/// Whether a PEM chain and key load as a serving certificate (the
/// problem, if not).
pub fn check(chain_pem: &[u8], key_pem: &[u8]) -> Result<(), String> {
    certified(chain_pem, key_pem).map(|_| ())
}

impl Certs {
    /// Certificates with a self-signed fallback.
    pub fn new() -> Result<Certs, String> {
        let c = rcgen::generate_simple_self_signed(vec!["berth-ingress.invalid".to_owned()])
            .map_err(|e| e.to_string())?;
        let fallback = certified(
            c.cert.pem().as_bytes(),
            c.signing_key.serialize_pem().as_bytes(),
        )?;
        Ok(Certs {
            by_host: RwLock::new(BTreeMap::new()),
            fallback: Arc::new(fallback),
        })
    }

    /// Replaces the certificates (host → PEM chain and key); a pair that
    /// does not load is skipped with a warning.
    pub fn set(&self, pems: &BTreeMap<String, (Vec<u8>, Vec<u8>)>) {
        let mut map = BTreeMap::new();
        for (host, (crt, key)) in pems {
            match certified(crt, key) {
                Ok(c) => {
                    map.insert(host.clone(), Arc::new(c));
                }
                Err(e) => tracing::warn!(%host, error = %e, "ingress TLS secret"),
            }
        }
        *self.by_host.write().unwrap_or_else(|p| p.into_inner()) = map;
    }

    fn lookup(&self, name: &str) -> Arc<CertifiedKey> {
        let map = self.by_host.read().unwrap_or_else(|p| p.into_inner());
        let name = name.to_ascii_lowercase();
        if let Some(c) = map.get(&name) {
            return c.clone();
        }
        if let Some((_, rest)) = name.split_once('.')
            && let Some(c) = map.get(&format!("*.{rest}"))
        {
            return c.clone();
        }
        self.fallback.clone()
    }
}

impl ResolvesServerCert for Certs {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(match hello.server_name() {
            Some(n) => self.lookup(n),
            None => self.fallback.clone(),
        })
    }
}
