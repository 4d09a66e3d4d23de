//! The cluster's PKI: a CA, the API server's serving certificate, the admin client
//! certificate and the ServiceAccount signing key, kept as PEM files in one directory.
//!
//! Files in the directory (mode 0700; keys 0600, certificates 0644):
//! `ca.crt`, `ca.key`, `apiserver.crt`, `apiserver.key`, `admin.crt`, `admin.key`,
//! `apiserver-kubelet-client.crt`, `apiserver-kubelet-client.key` (the API server's
//! client certificate towards the node agents' kubelet API), `sa.key` (PKCS#8 ECDSA
//! P-256) and `sa.pub` (its public key).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use ring::rand::SecureRandom;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;
use x509_parser::extensions::GeneralName;

use super::AuthError;
use super::fsutil::{private_dir, read_text, write_atomic};

/// The CA's common name.
pub const CA_COMMON_NAME: &str = "berth-ca";
/// The serving certificate's common name.
pub const SERVING_COMMON_NAME: &str = "kube-apiserver";
/// The admin client certificate's user name.
pub const ADMIN_USER: &str = "admin";
/// The admin client certificate's group: Kubernetes' superuser group.
pub const MASTERS_GROUP: &str = "system:masters";
/// The user name of the API server's client certificate towards kubelets (kube's).
pub const KUBELET_CLIENT_USER: &str = "kube-apiserver-kubelet-client";
/// The group of a node's kubelet serving certificate.
pub const NODES_GROUP: &str = "system:nodes";
/// The names and addresses every serving certificate holds.
pub const DEFAULT_SANS: &[&str] = &[
    "localhost",
    "127.0.0.1",
    "::1",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
    "198.19.0.1",
];

const CA_DAYS: i64 = 3650;
const LEAF_DAYS: i64 = 365;
/// A leaf certificate with less than this left is re-issued at start.
const RENEW_BEFORE_DAYS: i64 = 30;

const CA_CRT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";
const SERVING_CRT: &str = "apiserver.crt";
const SERVING_KEY: &str = "apiserver.key";
const ADMIN_CRT: &str = "admin.crt";
const ADMIN_KEY: &str = "admin.key";
const KUBELET_CLIENT_CRT: &str = "apiserver-kubelet-client.crt";
const KUBELET_CLIENT_KEY: &str = "apiserver-kubelet-client.key";
const SA_KEY: &str = "sa.key";
const SA_PUB: &str = "sa.pub";

/// The loaded PKI. Cheap to share behind an `Arc`; all accessors are read-only.
pub struct Pki {
    dir: PathBuf,
    ca_cert_pem: String,
    ca_key_pem: String,
    serving_cert_pem: String,
    admin_cert_pem: String,
    admin_key_pem: String,
    kubelet_client_cert_pem: String,
    kubelet_client_key_pem: String,
    sa_key_pem: String,
    sa_public_pem: String,
    server_config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Pki {
    /// Loads the PKI from `dir`, creating what is missing: the CA (ECDSA P-256, CN
    /// "berth-ca", 10 years) on first start, then the serving certificate (SANs:
    /// [`DEFAULT_SANS`] plus `sans`, IPs as IP SANs), the admin client certificate
    /// (CN "admin", O "system:masters") and the ServiceAccount signing key.
    ///
    /// A serving certificate whose SAN list differs from the wanted one, that another CA
    /// signed, or that expires within 30 days is issued anew; so is such an admin
    /// certificate. A CA certificate without its key (or the reverse) is an error: the
    /// directory is left alone rather than a new CA silently replacing the old.
    pub fn load_or_create(dir: &Path, sans: &[String]) -> Result<Pki, AuthError> {
        private_dir(dir)?;
        let (ca_cert_pem, ca_key_pem) = load_or_create_ca(dir)?;
        let ca = CaParts::parse(&ca_cert_pem, &ca_key_pem, dir)?;

        let wanted = wanted_sans(sans);
        let serving_path = dir.join(SERVING_CRT);
        let serving_key_path = dir.join(SERVING_KEY);
        let serving_ok = match (
            read_optional(&serving_path)?,
            read_optional(&serving_key_path)?,
        ) {
            (Some(cert), Some(_)) => {
                serving_cert_current(&cert, &ca.subject_der, &wanted, &serving_path)?
            }
            _ => false,
        };
        if !serving_ok {
            let (cert, key) = ca.issue_serving(&wanted)?;
            write_atomic(&serving_key_path, key.as_bytes(), 0o600)?;
            write_atomic(&serving_path, cert.as_bytes(), 0o644)?;
        }
        let serving_cert_pem = read_text(&serving_path)?;
        let serving_key_pem = read_text(&serving_key_path)?;

        let admin_path = dir.join(ADMIN_CRT);
        let admin_key_path = dir.join(ADMIN_KEY);
        let admin_ok = match (read_optional(&admin_path)?, read_optional(&admin_key_path)?) {
            (Some(cert), Some(_)) => leaf_current(&cert, &ca.subject_der, &admin_path)?,
            _ => false,
        };
        if !admin_ok {
            let (cert, key) = ca.issue_client(ADMIN_USER, &[MASTERS_GROUP.to_string()])?;
            write_atomic(&admin_key_path, key.as_bytes(), 0o600)?;
            write_atomic(&admin_path, cert.as_bytes(), 0o644)?;
        }
        let admin_cert_pem = read_text(&admin_path)?;
        let admin_key_pem = read_text(&admin_key_path)?;

        let kc_path = dir.join(KUBELET_CLIENT_CRT);
        let kc_key_path = dir.join(KUBELET_CLIENT_KEY);
        let kc_ok = match (read_optional(&kc_path)?, read_optional(&kc_key_path)?) {
            (Some(cert), Some(_)) => leaf_current(&cert, &ca.subject_der, &kc_path)?,
            _ => false,
        };
        if !kc_ok {
            let (cert, key) = ca.issue_client(KUBELET_CLIENT_USER, &[MASTERS_GROUP.to_string()])?;
            write_atomic(&kc_key_path, key.as_bytes(), 0o600)?;
            write_atomic(&kc_path, cert.as_bytes(), 0o644)?;
        }
        let kubelet_client_cert_pem = read_text(&kc_path)?;
        let kubelet_client_key_pem = read_text(&kc_key_path)?;

        let sa_path = dir.join(SA_KEY);
        let sa_key_pem = match read_optional(&sa_path)? {
            Some(pem) => pem,
            None => {
                let key = KeyPair::generate()
                    .map_err(|e| AuthError::cert("generating the ServiceAccount key", e))?;
                let pem = key.serialize_pem();
                write_atomic(&sa_path, pem.as_bytes(), 0o600)?;
                pem
            }
        };
        let sa_key = KeyPair::from_pem(&sa_key_pem).map_err(|e| AuthError::Pem {
            path: sa_path.clone(),
            reason: format!("not a PKCS#8 private key: {e}"),
        })?;
        let sa_public_pem = sa_key.public_key_pem();
        let sa_pub_path = dir.join(SA_PUB);
        if read_optional(&sa_pub_path)?.as_deref() != Some(sa_public_pem.as_str()) {
            write_atomic(&sa_pub_path, sa_public_pem.as_bytes(), 0o644)?;
        }

        let server_config = build_server_config(
            &ca.cert_der,
            &serving_cert_pem,
            &serving_key_pem,
            &serving_path,
        )?;
        Ok(Pki {
            dir: dir.to_path_buf(),
            ca_cert_pem,
            ca_key_pem,
            serving_cert_pem,
            admin_cert_pem,
            admin_key_pem,
            kubelet_client_cert_pem,
            kubelet_client_key_pem,
            sa_key_pem,
            sa_public_pem,
            server_config,
        })
    }

    /// The directory the PEM files live in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The TLS server configuration: the serving certificate, client certificates
    /// requested but not required and verified against the CA, ALPN `h2` and `http/1.1`.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        Arc::clone(&self.server_config)
    }

    /// The CA certificate (PEM).
    pub fn ca_pem(&self) -> &str {
        &self.ca_cert_pem
    }

    /// The CA certificate (DER), e.g. for a client's root store.
    pub fn ca_der(&self) -> Result<CertificateDer<'static>, AuthError> {
        CertificateDer::from_pem_slice(self.ca_cert_pem.as_bytes())
            .map_err(|e| AuthError::cert("the CA certificate", e))
    }

    /// The API server's serving certificate (PEM).
    pub fn serving_cert_pem(&self) -> &str {
        &self.serving_cert_pem
    }

    /// The admin client certificate (PEM; CN "admin", O "system:masters").
    pub fn admin_cert_pem(&self) -> &str {
        &self.admin_cert_pem
    }

    /// The admin client key (PKCS#8 PEM).
    pub fn admin_key_pem(&self) -> &str {
        &self.admin_key_pem
    }

    /// The API server's client certificate towards kubelets (PEM; CN
    /// "kube-apiserver-kubelet-client", O "system:masters", as kubeadm makes it).
    pub fn kubelet_client_cert_pem(&self) -> &str {
        &self.kubelet_client_cert_pem
    }

    /// The key of [`Pki::kubelet_client_cert_pem`] (PKCS#8 PEM).
    pub fn kubelet_client_key_pem(&self) -> &str {
        &self.kubelet_client_key_pem
    }

    /// The TLS client configuration the API server dials kubelets with: the
    /// kubelet-client certificate, the cluster CA as the only root (a kubelet's
    /// serving certificate comes from [`Pki::issue_kubelet_serving_cert`]), ALPN
    /// `http/1.1` (upgrades are HTTP/1.1).
    pub fn kubelet_client_config(&self) -> Result<Arc<rustls::ClientConfig>, AuthError> {
        client_config(
            &self.ca_cert_pem,
            &self.kubelet_client_cert_pem,
            &self.kubelet_client_key_pem,
        )
    }

    /// Issues a node's kubelet serving certificate (1 year, ECDSA P-256): CN
    /// `system:node:<node>`, O `system:nodes`, SANs the node name and `addresses`
    /// (as the kubelet's CSR-issued serving certificates are). Returns
    /// `(cert_pem, key_pem)`; nothing is written to the directory.
    pub fn issue_kubelet_serving_cert(
        &self,
        node: &str,
        addresses: &[IpAddr],
    ) -> Result<(String, String), AuthError> {
        if node.is_empty() {
            return Err(AuthError::cert(
                "a kubelet serving certificate",
                "the node name is empty",
            ));
        }
        let mut sans = vec![node.to_ascii_lowercase()];
        sans.extend(addresses.iter().map(IpAddr::to_string));
        let ca = CaParts::parse(&self.ca_cert_pem, &self.ca_key_pem, &self.dir)?;
        let what = format!("the kubelet serving certificate of node {node:?}");
        let mut params = CertificateParams::new(sans).map_err(|e| AuthError::cert(&what, e))?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("system:node:{node}"));
        dn.push(DnType::OrganizationName, NODES_GROUP);
        params.distinguished_name = dn;
        leaf_defaults(&mut params, ExtendedKeyUsagePurpose::ServerAuth)?;
        ca.sign(params, &what)
    }

    /// The ServiceAccount signing key (PKCS#8 PEM, ECDSA P-256); see
    /// [`TokenSigner::from_pkcs8_pem`](super::tokens::TokenSigner::from_pkcs8_pem).
    pub fn service_account_key_pem(&self) -> &str {
        &self.sa_key_pem
    }

    /// The ServiceAccount signing key's public key (SPKI PEM).
    pub fn service_account_public_pem(&self) -> &str {
        &self.sa_public_pem
    }

    /// Issues a client certificate signed by the CA (1 year, ECDSA P-256) with CN `cn`
    /// (the user name) and O `orgs` (the groups). Returns `(cert_pem, key_pem)`.
    ///
    /// At most two organizations can be written (a limit of the certificate writer).
    pub fn issue_client_cert(
        &self,
        cn: &str,
        orgs: &[String],
    ) -> Result<(String, String), AuthError> {
        let ca = CaParts::parse(&self.ca_cert_pem, &self.ca_key_pem, &self.dir)?;
        ca.issue_client(cn, orgs)
    }
}

/// The CA's certificate and key, ready to sign.
struct CaParts {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    subject_der: Vec<u8>,
    key: KeyPair,
}

impl CaParts {
    fn parse(cert_pem: &str, key_pem: &str, dir: &Path) -> Result<Self, AuthError> {
        let cert_der =
            CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| AuthError::Pem {
                path: dir.join(CA_CRT),
                reason: format!("no certificate: {e}"),
            })?;
        let subject_der = {
            let (_, parsed) =
                x509_parser::parse_x509_certificate(&cert_der).map_err(|e| AuthError::Pem {
                    path: dir.join(CA_CRT),
                    reason: format!("not an X.509 certificate: {e}"),
                })?;
            parsed.subject().as_raw().to_vec()
        };
        let key = KeyPair::from_pem(key_pem).map_err(|e| AuthError::Pem {
            path: dir.join(CA_KEY),
            reason: format!("not a PKCS#8 private key: {e}"),
        })?;
        Ok(CaParts {
            cert_pem: cert_pem.to_string(),
            cert_der,
            subject_der,
            key,
        })
    }

    fn issuer(&self) -> Result<Issuer<'static, &KeyPair>, AuthError> {
        Issuer::from_ca_cert_pem(&self.cert_pem, &self.key)
            .map_err(|e| AuthError::cert("reading the CA certificate", e))
    }

    fn issue_serving(&self, sans: &[String]) -> Result<(String, String), AuthError> {
        let mut params = CertificateParams::new(sans.to_vec())
            .map_err(|e| AuthError::cert("the serving certificate's names", e))?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, SERVING_COMMON_NAME);
        params.distinguished_name = dn;
        leaf_defaults(&mut params, ExtendedKeyUsagePurpose::ServerAuth)?;
        self.sign(params, "the serving certificate")
    }

    fn issue_client(&self, cn: &str, orgs: &[String]) -> Result<(String, String), AuthError> {
        if cn.is_empty() {
            return Err(AuthError::cert(
                "a client certificate",
                "the common name (user name) is empty",
            ));
        }
        if orgs.len() > 2 {
            return Err(AuthError::cert(
                format!("the client certificate for {cn:?}"),
                format!(
                    "{} organizations (groups) asked for; at most 2 can be written",
                    orgs.len()
                ),
            ));
        }
        let mut params = CertificateParams::new(Vec::<String>::new())
            .map_err(|e| AuthError::cert("a client certificate", e))?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        if let Some(o) = orgs.first() {
            dn.push(DnType::OrganizationName, o.as_str());
        }
        if let Some(o) = orgs.get(1) {
            // The map behind DistinguishedName holds one value per type; the same OID
            // under a custom type is a second, distinct entry.
            dn.push(DnType::CustomDnType(vec![2, 5, 4, 10]), o.as_str());
        }
        params.distinguished_name = dn;
        leaf_defaults(&mut params, ExtendedKeyUsagePurpose::ClientAuth)?;
        self.sign(params, &format!("the client certificate for {cn:?}"))
    }

    fn sign(&self, params: CertificateParams, what: &str) -> Result<(String, String), AuthError> {
        let key = KeyPair::generate().map_err(|e| AuthError::cert(what, e))?;
        let issuer = self.issuer()?;
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(|e| AuthError::cert(what, e))?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

fn load_or_create_ca(dir: &Path) -> Result<(String, String), AuthError> {
    let cert_path = dir.join(CA_CRT);
    let key_path = dir.join(CA_KEY);
    match (read_optional(&cert_path)?, read_optional(&key_path)?) {
        (Some(cert), Some(key)) => Ok((cert, key)),
        (None, None) => {
            let key = KeyPair::generate().map_err(|e| AuthError::cert("the CA key", e))?;
            let mut params = CertificateParams::new(Vec::<String>::new())
                .map_err(|e| AuthError::cert("the CA certificate", e))?;
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, CA_COMMON_NAME);
            params.distinguished_name = dn;
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            let now = OffsetDateTime::now_utc();
            params.not_before = now - Duration::from_secs(300);
            params.not_after = now + time::Duration::days(CA_DAYS);
            params.serial_number = Some(random_serial()?);
            let cert = params
                .self_signed(&key)
                .map_err(|e| AuthError::cert("the CA certificate", e))?;
            let (cert, key) = (cert.pem(), key.serialize_pem());
            write_atomic(&key_path, key.as_bytes(), 0o600)?;
            write_atomic(&cert_path, cert.as_bytes(), 0o644)?;
            Ok((cert, key))
        }
        (Some(_), None) => Err(AuthError::Pem {
            path: key_path,
            reason: format!(
                "missing, but {} exists; restore the key or remove both",
                CA_CRT
            ),
        }),
        (None, Some(_)) => Err(AuthError::Pem {
            path: cert_path,
            reason: format!(
                "missing, but {} exists; restore the certificate or remove both",
                CA_KEY
            ),
        }),
    }
}

fn leaf_defaults(
    params: &mut CertificateParams,
    usage: ExtendedKeyUsagePurpose,
) -> Result<(), AuthError> {
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::from_secs(300);
    params.not_after = now + time::Duration::days(LEAF_DAYS);
    params.serial_number = Some(random_serial()?);
    Ok(())
}

fn random_serial() -> Result<SerialNumber, AuthError> {
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AuthError::cert("a serial number", "the system's random source failed"))?;
    // Positive and without a leading zero byte.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

/// The default SANs plus `extra`, without duplicates, in order.
fn wanted_sans(extra: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    DEFAULT_SANS
        .iter()
        .map(|s| s.to_string())
        .chain(extra.iter().map(|s| s.trim().to_string()))
        .filter(|s| !s.is_empty())
        .filter(|s| seen.insert(normalize_san(s)))
        .collect()
}

fn normalize_san(s: &str) -> String {
    match s.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => s.to_ascii_lowercase(),
    }
}

fn read_optional(path: &Path) -> Result<Option<String>, AuthError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AuthError::io("reading", path, e)),
    }
}

/// Whether a leaf certificate was signed by the CA named `ca_subject` and has more than
/// [`RENEW_BEFORE_DAYS`] left. An unparseable certificate is not current (it is replaced).
fn leaf_current(pem: &str, ca_subject: &[u8], path: &Path) -> Result<bool, AuthError> {
    Ok(parse_leaf(pem, path).is_some_and(|leaf| leaf.current(ca_subject)))
}

fn serving_cert_current(
    pem: &str,
    ca_subject: &[u8],
    wanted: &[String],
    path: &Path,
) -> Result<bool, AuthError> {
    let Some(leaf) = parse_leaf(pem, path) else {
        return Ok(false);
    };
    let wanted: BTreeSet<String> = wanted.iter().map(|s| normalize_san(s)).collect();
    Ok(leaf.current(ca_subject) && leaf.sans == wanted)
}

struct Leaf {
    issuer: Vec<u8>,
    not_after: i64,
    sans: BTreeSet<String>,
}

impl Leaf {
    fn current(&self, ca_subject: &[u8]) -> bool {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        self.issuer == ca_subject && self.not_after - now > RENEW_BEFORE_DAYS * 86_400
    }
}

fn parse_leaf(pem: &str, path: &Path) -> Option<Leaf> {
    let der = match CertificateDer::from_pem_slice(pem.as_bytes()) {
        Ok(der) => der,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "unreadable certificate; issuing a new one");
            return None;
        }
    };
    let (_, cert) = match x509_parser::parse_x509_certificate(&der) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "unparseable certificate; issuing a new one");
            return None;
        }
    };
    let mut sans = BTreeSet::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(d) => {
                    sans.insert(d.to_ascii_lowercase());
                }
                GeneralName::IPAddress(bytes) => {
                    let ip = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from),
                        16 => <[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from),
                        _ => None,
                    };
                    if let Some(ip) = ip {
                        sans.insert(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    Some(Leaf {
        issuer: cert.issuer().as_raw().to_vec(),
        not_after: cert.validity().not_after.timestamp(),
        sans,
    })
}

fn build_server_config(
    ca_der: &CertificateDer<'static>,
    cert_pem: &str,
    key_pem: &str,
    cert_path: &Path,
) -> Result<Arc<rustls::ServerConfig>, AuthError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(ca_der.clone())
        .map_err(|e| AuthError::Tls(format!("adding the CA to the client roots: {e}")))?;
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::clone(&provider),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|e| AuthError::Tls(format!("the client certificate verifier: {e}")))?;
    let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| AuthError::Pem {
        path: cert_path.to_path_buf(),
        reason: format!("no certificate: {e}"),
    })?;
    let key =
        PrivatePkcs8KeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| AuthError::Pem {
            path: cert_path.with_file_name(SERVING_KEY),
            reason: format!("no PKCS#8 private key: {e}"),
        })?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| AuthError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert], PrivateKeyDer::Pkcs8(key))
        .map_err(|e| AuthError::Tls(format!("the serving certificate and key: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A TLS client configuration: `ca_pem` the only root, the client certificate and
/// key presented, ALPN `http/1.1`.
pub fn client_config(
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
) -> Result<Arc<rustls::ClientConfig>, AuthError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let ca = ca.map_err(|e| AuthError::Tls(format!("the CA certificate: {e}")))?;
        roots
            .add(ca)
            .map_err(|e| AuthError::Tls(format!("adding the CA to the roots: {e}")))?;
    }
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| AuthError::Tls(format!("the client certificate: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| AuthError::Tls(format!("the client key: {e}")))?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| AuthError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| AuthError::Tls(format!("the client certificate and key: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0)
    }

    fn sans_of(pem: &str) -> BTreeSet<String> {
        parse_leaf(pem, Path::new("test"))
            .map(|l| l.sans)
            .unwrap_or_default()
    }

    #[test]
    fn first_start_creates_everything_with_private_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("pki");
        let pki =
            Pki::load_or_create(&dir, &["berth.example".into(), "198.18.200.3".into()]).unwrap();
        assert_eq!(mode(&dir), 0o700);
        for key in [CA_KEY, SERVING_KEY, ADMIN_KEY, KUBELET_CLIENT_KEY, SA_KEY] {
            assert_eq!(mode(&dir.join(key)), 0o600, "{key}");
        }
        for crt in [CA_CRT, SERVING_CRT, ADMIN_CRT, KUBELET_CLIENT_CRT] {
            assert!(dir.join(crt).exists(), "{crt}");
        }
        let sans = sans_of(pki.serving_cert_pem());
        for want in [
            "localhost",
            "127.0.0.1",
            "::1",
            "kubernetes.default.svc.cluster.local",
            "198.19.0.1",
            "berth.example",
            "198.18.200.3",
        ] {
            assert!(sans.contains(want), "{want} missing from {sans:?}");
        }
        assert!(pki.ca_pem().contains("BEGIN CERTIFICATE"));
        assert!(pki.admin_key_pem().contains("PRIVATE KEY"));
        let config = pki.server_config();
        assert_eq!(
            config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }

    #[test]
    fn the_ca_is_a_ten_year_ecdsa_ca_named_berth_ca() {
        let tmp = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(tmp.path(), &[]).unwrap();
        let der = pki.ca_der().unwrap();
        let (_, ca) = x509_parser::parse_x509_certificate(&der).unwrap();
        let cn: Vec<_> = ca
            .subject()
            .iter_common_name()
            .filter_map(|a| a.as_str().ok())
            .collect();
        assert_eq!(cn, vec!["berth-ca"]);
        assert!(ca.is_ca());
        let years = (ca.validity().not_after.timestamp() - ca.validity().not_before.timestamp())
            / (365 * 86_400);
        assert_eq!(years, 10);
        assert_eq!(
            ca.public_key().algorithm.algorithm,
            x509_parser::oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY
        );
    }

    #[test]
    fn later_starts_load_the_same_files_and_reissue_on_san_change() {
        let tmp = tempfile::tempdir().unwrap();
        let first = Pki::load_or_create(tmp.path(), &["a.example".into()]).unwrap();
        let second = Pki::load_or_create(tmp.path(), &["A.example".into()]).unwrap();
        assert_eq!(first.ca_pem(), second.ca_pem());
        assert_eq!(first.serving_cert_pem(), second.serving_cert_pem());
        assert_eq!(first.admin_cert_pem(), second.admin_cert_pem());
        assert_eq!(
            first.service_account_key_pem(),
            second.service_account_key_pem()
        );

        let third = Pki::load_or_create(tmp.path(), &["b.example".into()]).unwrap();
        assert_eq!(first.ca_pem(), third.ca_pem());
        assert_ne!(first.serving_cert_pem(), third.serving_cert_pem());
        let sans = sans_of(third.serving_cert_pem());
        assert!(sans.contains("b.example") && !sans.contains("a.example"));
        assert_eq!(first.admin_cert_pem(), third.admin_cert_pem());
    }

    #[test]
    fn a_lone_ca_certificate_is_an_error_not_a_new_ca() {
        let tmp = tempfile::tempdir().unwrap();
        Pki::load_or_create(tmp.path(), &[]).unwrap();
        std::fs::remove_file(tmp.path().join(CA_KEY)).unwrap();
        let err = Pki::load_or_create(tmp.path(), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("ca.key") && err.contains("missing"), "{err}");
    }

    #[test]
    fn client_certificates_carry_cn_and_orgs_and_chain_to_the_ca() {
        let tmp = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(tmp.path(), &[]).unwrap();
        let (cert_pem, key_pem) = pki
            .issue_client_cert("jane", &["devs".into(), "ops".into()])
            .unwrap();
        assert!(key_pem.contains("PRIVATE KEY"));
        let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let cn: Vec<_> = cert
            .subject()
            .iter_common_name()
            .filter_map(|a| a.as_str().ok())
            .collect();
        let orgs: Vec<_> = cert
            .subject()
            .iter_organization()
            .filter_map(|a| a.as_str().ok())
            .collect();
        assert_eq!(cn, vec!["jane"]);
        assert_eq!(orgs, vec!["devs", "ops"]);

        // rustls' verifier (the one the server uses) accepts it.
        let ca = pki.ca_der().unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        verifier
            .verify_client_cert(&der, &[], rustls::pki_types::UnixTime::now())
            .unwrap();

        let err = pki
            .issue_client_cert("x", &["a".into(), "b".into(), "c".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("at most 2"), "{err}");
    }

    #[test]
    fn the_admin_certificate_is_admin_in_system_masters() {
        let tmp = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(tmp.path(), &[]).unwrap();
        let der = CertificateDer::from_pem_slice(pki.admin_cert_pem().as_bytes()).unwrap();
        let user = super::super::authn::user_from_certificate(&der).unwrap();
        assert_eq!(user.username, "admin");
        assert_eq!(user.groups, vec!["system:masters", "system:authenticated"]);
    }

    #[test]
    fn the_kubelet_client_is_kube_apiserver_kubelet_client_in_system_masters() {
        let tmp = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(tmp.path(), &[]).unwrap();
        let der = CertificateDer::from_pem_slice(pki.kubelet_client_cert_pem().as_bytes()).unwrap();
        let user = super::super::authn::user_from_certificate(&der).unwrap();
        assert_eq!(user.username, "kube-apiserver-kubelet-client");
        assert_eq!(user.groups, vec!["system:masters", "system:authenticated"]);
        let again = Pki::load_or_create(tmp.path(), &[]).unwrap();
        assert_eq!(
            pki.kubelet_client_cert_pem(),
            again.kubelet_client_cert_pem()
        );
        assert!(pki.kubelet_client_config().is_ok());
    }

    #[test]
    fn a_kubelet_serving_cert_names_the_node_and_its_addresses() {
        let tmp = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(tmp.path(), &[]).unwrap();
        let (cert, key) = pki
            .issue_kubelet_serving_cert("Node-1", &["198.18.9.7".parse().unwrap()])
            .unwrap();
        assert!(key.contains("PRIVATE KEY"));
        let sans = sans_of(&cert);
        assert_eq!(
            sans,
            ["node-1", "198.18.9.7"]
                .iter()
                .map(|s| s.to_string())
                .collect()
        );
        let der = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
        let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
        let cn: Vec<_> = parsed
            .subject()
            .iter_common_name()
            .filter_map(|a| a.as_str().ok())
            .collect();
        assert_eq!(cn, vec!["system:node:Node-1"]);
        let err = pki
            .issue_kubelet_serving_cert("", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("node name is empty"), "{err}");
    }
}
