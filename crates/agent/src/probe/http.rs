//! httpGet probes over HTTP and HTTPS. As the kubelet does, HTTPS probes do
//! not verify the server's certificate (the pod's own, usually
//! self-signed); a status from 200 to 399 passes.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::Outcome;

/// GETs `path` from `host:port` (over TLS when `tls`).
pub(super) async fn get(
    tls: bool,
    host: &str,
    port: u16,
    path: &str,
    headers: &[(String, String)],
) -> Outcome {
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let url = format!("{}://{addr}{path}", if tls { "https" } else { "http" });
    let tcp = match tokio::net::TcpStream::connect(&addr).await {
        Ok(s) => s,
        Err(e) => return Outcome::Failure(format!("Get \"{url}\": dial tcp {addr}: connect: {e}")),
    };
    if !tls {
        return exchange(tcp, &addr, &url, path, headers).await;
    }
    let name = match ServerName::try_from(host.to_owned()) {
        Ok(n) => n,
        Err(e) => return Outcome::Failure(format!("Get \"{url}\": {e}")),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(insecure_config()));
    match connector.connect(name, tcp).await {
        Ok(s) => exchange(s, &addr, &url, path, headers).await,
        Err(e) => Outcome::Failure(format!("Get \"{url}\": {e}")),
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    addr: &str,
    url: &str,
    path: &str,
    headers: &[(String, String)],
) -> Outcome {
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: kube-probe/1.33\r\nAccept: */*\r\nConnection: close\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    if let Err(e) = s.write_all(req.as_bytes()).await {
        return Outcome::Failure(format!("Get \"{url}\": {e}"));
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    // the status line is enough
    while !buf.windows(2).any(|w| w == b"\r\n") && buf.len() < 8192 {
        match s.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(e) => return Outcome::Failure(format!("Get \"{url}\": {e}")),
        }
    }
    let line = String::from_utf8_lossy(&buf);
    let code: Option<u16> = line.split_whitespace().nth(1).and_then(|c| c.parse().ok());
    match code {
        Some(c) if (200..400).contains(&c) => Outcome::Success,
        Some(c) => Outcome::Failure(format!("HTTP probe failed with statuscode: {c}")),
        None => Outcome::Failure(format!("Get \"{url}\": malformed HTTP response")),
    }
}

/// A TLS client that accepts any certificate (signatures are still
/// checked, so the handshake itself is sound).
fn insecure_config() -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(AnyCertificate(provider.clone()));
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|_| rustls::ClientConfig::builder())
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth()
}

#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-request HTTPS server with a self-signed certificate.
    async fn serve_once(status: u16) -> u16 {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let key =
            rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (tcp, _) = l.accept().await.unwrap();
            let mut s = acceptor.accept(tcp).await.unwrap();
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).await.unwrap();
            assert!(buf[..n].starts_with(b"GET /healthz HTTP/1.1\r\n"));
            let reply = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
            s.write_all(reply.as_bytes()).await.unwrap();
            let _ = s.shutdown().await;
        });
        port
    }

    #[tokio::test]
    async fn https_probes_skip_verification_and_read_the_status() {
        let port = serve_once(204).await;
        assert_eq!(
            get(true, "127.0.0.1", port, "/healthz", &[]).await,
            Outcome::Success
        );
        let port = serve_once(503).await;
        assert_eq!(
            get(true, "127.0.0.1", port, "/healthz", &[]).await,
            Outcome::Failure("HTTP probe failed with statuscode: 503".into())
        );
    }
}
