//! The HTTP side of the registry client: endpoints (mirrors, HTTPS with
//! an HTTP fallback only for insecure registries), per-registry TLS roots,
//! authentication (anonymous, Basic, Bearer tokens) and the registry's
//! error documents.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};

use berth_types::DOCKER_HUB;

use super::auth::{self, AuthConfig, Challenge, Credentials, TokenResponse};
use crate::error::{Error, Result};

/// How berth reaches registries.
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    /// Registries (`host`, `host:port` or a CIDR like `127.0.0.0/8`) that
    /// may be reached over plain HTTP or HTTPS without certificate checks.
    /// Loopback registries always may (as with docker).
    pub insecure_registries: Vec<String>,
    /// Mirrors of Docker Hub (`https://mirror.example`), tried in order
    /// before Docker Hub itself.
    pub mirrors: Vec<String>,
    /// The Docker config file with credentials (`auths`).
    pub docker_config: Option<PathBuf>,
    /// Directories with per-registry CA certificates
    /// (`<dir>/<host:port>/*.crt`).
    pub certs_dirs: Vec<PathBuf>,
    /// Layers transferred at once.
    pub max_concurrent: usize,
    /// Attempts per blob transfer after a network failure.
    pub retries: u32,
    /// Pause before the first retry (doubled each time).
    pub retry_delay: Duration,
}

impl Default for RegistryOptions {
    fn default() -> RegistryOptions {
        RegistryOptions {
            insecure_registries: Vec::new(),
            mirrors: Vec::new(),
            docker_config: auth::default_config_path(),
            certs_dirs: vec![
                PathBuf::from("/etc/berth/certs.d"),
                PathBuf::from("/etc/docker/certs.d"),
            ],
            max_concurrent: 3,
            retries: 5,
            retry_delay: Duration::from_millis(500),
        }
    }
}

/// One place a repository can be reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `host[:port]`: the key for credentials, TLS roots and tokens.
    pub host: String,
    /// Scheme and authority, or a mirror's base URL, without a trailing `/`.
    /// Empty until the scheme is known.
    pub base: String,
    /// A pull-through mirror.
    pub mirror: bool,
}

#[derive(Default)]
struct Shared {
    http: HashMap<String, reqwest::Client>,
    base: HashMap<String, String>,
    challenge: HashMap<String, Option<Challenge>>,
    auth: HashMap<(String, String), String>,
}

/// A registry client (cheap to clone).
#[derive(Clone)]
pub struct Client {
    pub(crate) opts: Arc<RegistryOptions>,
    shared: Arc<Mutex<Shared>>,
    /// Credentials of this request, by registry host ([`Client::with_auth`]).
    request_auth: Arc<BTreeMap<String, AuthConfig>>,
}

/// How berth proves itself to one registry.
enum Secret {
    /// A user name and password.
    Basic(Credentials),
    /// An OAuth2 refresh token, for the token service.
    RefreshToken(String),
    /// A bearer token for the registry itself.
    RegistryToken(String),
}

/// The host a registry is reached at, from a reference's domain or
/// Docker's `ServerAddress` (`docker.io`, `index.docker.io`,
/// `https://index.docker.io/v1/` → `registry-1.docker.io`).
pub fn registry_host(name: &str) -> String {
    let n = name.trim();
    let n = n
        .strip_prefix("https://")
        .or_else(|| n.strip_prefix("http://"))
        .unwrap_or(n);
    let n = n.split('/').next().unwrap_or(n);
    match n {
        DOCKER_HUB | "index.docker.io" | "registry-1.docker.io" => {
            "registry-1.docker.io".to_owned()
        }
        other => other.to_owned(),
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

/// The error document registries send.
#[derive(serde::Deserialize)]
struct ErrorDoc {
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(serde::Deserialize)]
struct ErrorItem {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Installs the TLS crypto provider once per process.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') => h,
        _ => host,
    }
}

fn in_cidr(ip: IpAddr, cidr: &str) -> bool {
    let Some((net, bits)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

impl Client {
    /// A client with `opts`.
    pub fn new(opts: RegistryOptions) -> Client {
        install_crypto();
        Client {
            opts: Arc::new(opts),
            shared: Arc::new(Mutex::new(Shared::default())),
            request_auth: Arc::new(BTreeMap::new()),
        }
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `host` may be reached without TLS verification.
    pub fn is_insecure(&self, host: &str) -> bool {
        let bare = strip_port(host);
        let ip = if bare == "localhost" {
            Some(IpAddr::from([127, 0, 0, 1]))
        } else {
            bare.parse::<IpAddr>().ok()
        };
        if ip.is_some_and(|ip| ip.is_loopback()) {
            return true;
        }
        self.opts.insecure_registries.iter().any(|i| {
            let i = i
                .trim_start_matches("http://")
                .trim_start_matches("https://")
                .trim_end_matches('/');
            i == host || i == bare || ip.is_some_and(|ip| in_cidr(ip, i))
        })
    }

    fn http(&self, host: &str) -> Result<reqwest::Client> {
        if let Some(c) = self.shared().http.get(host) {
            return Ok(c.clone());
        }
        let mut b = reqwest::Client::builder()
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(120))
            .pool_max_idle_per_host(8)
            .no_proxy();
        for dir in &self.opts.certs_dirs {
            let d = dir.join(host);
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if name.ends_with(".crt") {
                    let pem = std::fs::read(&p).map_err(|e| Error::Io {
                        context: format!("read {}", p.display()),
                        source: e,
                    })?;
                    for c in reqwest::Certificate::from_pem_bundle(&pem)
                        .map_err(|e| Error::Invalid(format!("{}: {e}", p.display())))?
                    {
                        b = b.add_root_certificate(c);
                    }
                } else if name.ends_with(".cert") || name.ends_with(".key") {
                    tracing::warn!("{}: client certificates are not supported yet", p.display());
                }
            }
        }
        if self.is_insecure(host) {
            b = b.tls_danger_accept_invalid_certs(true);
        }
        let c = b
            .build()
            .map_err(|e| Error::Registry(format!("HTTP client for {host}: {e}")))?;
        self.shared().http.insert(host.to_owned(), c.clone());
        Ok(c)
    }

    /// Where a repository on `domain` is pulled from (mirrors first) or
    /// pushed to.
    pub fn endpoints(&self, domain: &str, for_pull: bool) -> Vec<Endpoint> {
        let mut v = Vec::new();
        let origin = registry_host(domain);
        if for_pull && domain == DOCKER_HUB {
            for m in &self.opts.mirrors {
                let base = m.trim_end_matches('/').to_owned();
                let host = base
                    .split("://")
                    .nth(1)
                    .unwrap_or(&base)
                    .split('/')
                    .next()
                    .unwrap_or("")
                    .to_owned();
                let base = if base.contains("://") {
                    base
                } else {
                    String::new()
                };
                v.push(Endpoint {
                    host,
                    base,
                    mirror: true,
                });
            }
        }
        v.push(Endpoint {
            host: origin,
            base: String::new(),
            mirror: false,
        });
        v
    }

    /// Finds the scheme (HTTPS; HTTP only for insecure registries) and the
    /// authentication challenge of an endpoint with `GET /v2/`.
    async fn ping(&self, ep: &Endpoint) -> Result<String> {
        if !ep.base.is_empty() && self.shared().challenge.contains_key(&ep.host) {
            return Ok(ep.base.clone());
        }
        if let Some(b) = self.shared().base.get(&ep.host) {
            return Ok(b.clone());
        }
        let http = self.http(&ep.host)?;
        let candidates: Vec<String> = if !ep.base.is_empty() {
            vec![ep.base.clone()]
        } else if self.is_insecure(&ep.host) {
            vec![
                format!("https://{}", ep.host),
                format!("http://{}", ep.host),
            ]
        } else {
            vec![format!("https://{}", ep.host)]
        };
        let mut last = None;
        for base in candidates {
            match http.get(format!("{base}/v2/")).send().await {
                Ok(resp) => {
                    let challenge = if resp.status() == StatusCode::UNAUTHORIZED {
                        let c = resp
                            .headers()
                            .get(WWW_AUTHENTICATE)
                            .and_then(|h| h.to_str().ok())
                            .and_then(auth::parse_challenge);
                        if c.is_none() {
                            return Err(Error::Registry(format!(
                                "{base}/v2/ answered 401 without an authentication challenge berth understands"
                            )));
                        }
                        c
                    } else if resp.status().is_success() {
                        None
                    } else if resp.status() == StatusCode::NOT_FOUND {
                        return Err(Error::Registry(format!(
                            "{base} is not an OCI distribution registry (GET /v2/ answered 404)"
                        )));
                    } else {
                        // some registries answer the ping oddly; carry on without a challenge
                        None
                    };
                    let mut s = self.shared();
                    s.base.insert(ep.host.clone(), base.clone());
                    s.challenge.insert(ep.host.clone(), challenge);
                    return Ok(base);
                }
                Err(e) => last = Some(get_error(&format!("{base}/v2/"), &ep.host, &e)),
            }
        }
        Err(Error::Registry(last.unwrap_or_else(|| {
            format!("cannot reach registry {}", ep.host)
        })))
    }

    /// A client for one request that authenticates to `registry` (a
    /// reference's domain such as `docker.io` or `host:port`, or Docker's
    /// `ServerAddress` such as `https://index.docker.io/v1/`) with `auth`
    /// instead of the Docker config file's credentials for it. Nothing else
    /// sees them: not other registries, not Docker Hub's mirrors, not a
    /// host a response redirects to; a token service gets them only when
    /// the registry's challenge names it, and only over HTTPS (or plain
    /// HTTP to a loopback or insecure registry). The new client shares no
    /// tokens with this one. An empty `auth` changes nothing.
    pub fn with_auth(&self, registry: &str, auth: AuthConfig) -> Client {
        let mut by_host = (*self.request_auth).clone();
        if !auth.is_empty() {
            by_host.insert(registry_host(registry), auth);
        }
        Client {
            opts: self.opts.clone(),
            shared: Arc::new(Mutex::new(Shared::default())),
            request_auth: Arc::new(by_host),
        }
    }

    /// What authenticates berth to `host`: the request's credentials, else
    /// the Docker config file's.
    fn secret(&self, host: &str) -> Result<Option<Secret>> {
        if let Some(a) = self.request_auth.get(host) {
            return Ok(Some(if !a.registry_token.is_empty() {
                Secret::RegistryToken(a.registry_token.clone())
            } else if !a.identity_token.is_empty() {
                Secret::RefreshToken(a.identity_token.clone())
            } else {
                Secret::Basic(Credentials {
                    username: a.username.clone(),
                    password: a.password.clone(),
                })
            }));
        }
        match &self.opts.docker_config {
            Some(p) => Ok(auth::lookup(p, host)?.map(Secret::Basic)),
            None => Ok(None),
        }
    }

    /// The `Authorization` value for `scope` on `ep` (fetching a token if
    /// the registry wants one); None when it wants none.
    async fn authorize(
        &self,
        ep: &Endpoint,
        scope: &str,
        fresh: Option<Challenge>,
    ) -> Result<Option<String>> {
        let key = (ep.host.clone(), scope.to_owned());
        if fresh.is_none()
            && let Some(a) = self.shared().auth.get(&key)
        {
            return Ok(Some(a.clone()));
        }
        let secret = self.secret(&ep.host)?;
        if let Some(Secret::RegistryToken(t)) = &secret {
            // a token for the registry itself: no challenge, no exchange
            return Ok(Some(format!("Bearer {t}")));
        }
        let challenge = match fresh {
            Some(c) => Some(c),
            None => self.shared().challenge.get(&ep.host).cloned().flatten(),
        };
        let value = match challenge {
            None => return Ok(None),
            Some(Challenge::Basic) => match secret {
                Some(Secret::Basic(c)) => c.basic(),
                Some(_) => {
                    return Err(Error::Unauthorized(format!(
                        "{} requires a user name and password (an identity token works only with token authentication)",
                        ep.host
                    )));
                }
                None => {
                    return Err(Error::Unauthorized(format!(
                        "{} requires a user name and password: put them in the Docker config file's auths",
                        ep.host
                    )));
                }
            },
            Some(Challenge::Bearer {
                realm,
                service,
                scope: _,
            }) => {
                self.token(ep, &realm, service.as_deref(), scope, secret)
                    .await?
            }
        };
        self.shared().auth.insert(key, value.clone());
        Ok(Some(value))
    }

    /// Whether credentials may go to a token service at `url`: over HTTPS,
    /// or plain HTTP to a loopback or insecure registry.
    fn may_carry_credentials(&self, url: &reqwest::Url) -> bool {
        let host = url.host_str().unwrap_or("");
        let key = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        };
        url.scheme() == "https" || self.is_insecure(&key)
    }

    /// A bearer token from the token service `realm` named in `ep`'s
    /// challenge (the Docker registry token protocol): `GET` with Basic
    /// credentials or none, `POST` with an OAuth2 refresh token.
    async fn token(
        &self,
        ep: &Endpoint,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        secret: Option<Secret>,
    ) -> Result<String> {
        self.token_with(ep, realm, service, scope, secret, false)
            .await
            .map(|(t, _)| t)
    }

    /// [`Client::token`], asking for a refresh token too when `offline`
    /// (as `docker login` does: `offline_token=true`, client `docker`).
    async fn token_with(
        &self,
        ep: &Endpoint,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        secret: Option<Secret>,
        offline: bool,
    ) -> Result<(String, Option<String>)> {
        let mut url = reqwest::Url::parse(realm)
            .map_err(|e| Error::Registry(format!("{}: bad token realm {realm:?}: {e}", ep.host)))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(Error::Registry(format!(
                "{}: token realm {realm:?} is not HTTP(S)",
                ep.host
            )));
        }
        let realm_host = url.host_str().unwrap_or("").to_owned();
        let realm_key = match url.port() {
            Some(p) => format!("{realm_host}:{p}"),
            None => realm_host,
        };
        if secret.is_some() && !self.may_carry_credentials(&url) {
            return Err(Error::Registry(format!(
                "{}: refusing to send credentials to the token service {realm} over plain HTTP",
                ep.host
            )));
        }
        let scopes: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
        let http = self.http(&realm_key)?;
        let req = match &secret {
            Some(Secret::RefreshToken(t)) => {
                let mut form = reqwest::Url::parse("http://form/")
                    .map_err(|e| Error::Registry(format!("token request: {e}")))?;
                form.query_pairs_mut()
                    .append_pair("grant_type", "refresh_token")
                    .append_pair("refresh_token", t)
                    .append_pair("client_id", "berth")
                    .append_pair("service", service.unwrap_or(""))
                    .append_pair("scope", &scopes.join(" "));
                http.post(url.clone())
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(form.query().unwrap_or("").to_owned())
            }
            other => {
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(s) = service {
                        q.append_pair("service", s);
                    }
                    for s in &scopes {
                        q.append_pair("scope", s);
                    }
                    if offline {
                        q.append_pair("offline_token", "true");
                        q.append_pair("client_id", "docker");
                    }
                }
                let mut req = http.get(url.clone());
                if let Some(Secret::Basic(c)) = other {
                    req = req.header(AUTHORIZATION, c.basic());
                }
                req
            }
        };
        let resp = req
            .send()
            .await
            .map_err(|e| Error::Registry(format!("token from {realm}: {}", error_chain(&e))))?;
        if resp.status() == StatusCode::UNAUTHORIZED || resp.status() == StatusCode::FORBIDDEN {
            return Err(Error::Unauthorized(format!(
                "{}: the token service refused the credentials",
                ep.host
            )));
        }
        if !resp.status().is_success() {
            return Err(Error::Registry(format!(
                "token from {realm}: HTTP {}",
                resp.status()
            )));
        }
        let body = read_limited(resp, 1 << 20).await?;
        let t: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
            Error::Registry(format!("token from {realm}: not a token document: {e}"))
        })?;
        let refresh = t.refresh_token.filter(|r| !r.is_empty());
        let token = t
            .token
            .or(t.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Error::Registry(format!("token from {realm}: the answer holds no token"))
            })?;
        Ok((format!("Bearer {token}"), refresh))
    }

    /// `docker login`: checks this client's credentials for `server` (a
    /// host, `host:port` or Docker's `ServerAddress`) with `GET /v2/`,
    /// as dockerd does: Basic credentials, or a token from the registry's
    /// token service (asking for a refresh token). A registry that wants
    /// no authentication accepts anything. Returns the identity token
    /// (empty when the token service gave none).
    pub async fn login(&self, server: &str) -> Result<String> {
        let host = registry_host(server);
        let ep = Endpoint {
            host: host.clone(),
            base: String::new(),
            mirror: false,
        };
        let base = self.ping(&ep).await?;
        let url = format!("{base}/v2/");
        let challenge = self.shared().challenge.get(&host).cloned().flatten();
        let secret = self.secret(&host)?;
        let (authorization, identity) = match challenge {
            None => return Ok(String::new()),
            Some(Challenge::Basic) => match secret {
                Some(Secret::Basic(c)) if !c.username.is_empty() => (c.basic(), None),
                _ => {
                    return Err(Error::Unauthorized(format!(
                        "Get {url:?}: no basic auth credentials"
                    )));
                }
            },
            Some(Challenge::Bearer { realm, service, .. }) => {
                self.token_with(&ep, &realm, service.as_deref(), "", secret, true)
                    .await?
            }
        };
        let resp = self
            .http(&host)?
            .get(&url)
            .header(
                AUTHORIZATION,
                HeaderValue::from_str(&authorization)
                    .map_err(|_| Error::Invalid("credentials that are no header value".into()))?,
            )
            .send()
            .await
            .map_err(|e| Error::Registry(get_error(&url, &host, &e)))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(Error::Unauthorized(format!(
                "login attempt to {url} failed with status: {} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            )));
        }
        Ok(identity.unwrap_or_default())
    }

    /// [`Client::login`] for callers without a runtime (blocking).
    pub fn login_blocking(&self, server: &str) -> Result<String> {
        super::pull::runtime()?.block_on(self.login(server))
    }

    /// Sends a request built by `make` (called again for a retry after
    /// authenticating), authenticated for `scope`.
    pub(crate) async fn send(
        &self,
        ep: &Endpoint,
        scope: &str,
        make: impl Fn(&reqwest::Client, &str) -> Result<RequestBuilder>,
    ) -> Result<Response> {
        let base = self.ping(ep).await?;
        let http = self.http(&ep.host)?;
        let mut auth = self.authorize(ep, scope, None).await?;
        for attempt in 0..2 {
            let mut rb = make(&http, &base)?;
            if let Some(a) = &auth {
                rb = rb.header(
                    AUTHORIZATION,
                    HeaderValue::from_str(a).map_err(|_| Error::Registry("bad token".into()))?,
                );
            }
            let resp = rb
                .send()
                .await
                .map_err(|e| Error::Registry(format!("{}: {}", ep.host, error_chain(&e))))?;
            if resp.status() == StatusCode::UNAUTHORIZED && attempt == 0 {
                let c = resp
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|h| h.to_str().ok())
                    .and_then(auth::parse_challenge);
                let Some(c) = c else {
                    return Err(Error::Unauthorized(format!("{}: unauthorized", ep.host)));
                };
                auth = self.authorize(ep, scope, Some(c)).await?;
                continue;
            }
            return Ok(resp);
        }
        Err(Error::Unauthorized(format!(
            "{}: authentication required",
            ep.host
        )))
    }

    /// The scheme and authority found for `host`, once pinged.
    pub(crate) fn base_of(&self, host: &str) -> Option<String> {
        self.shared().base.get(host).cloned()
    }

    /// A request against `base + path`.
    pub(crate) fn request(
        http: &reqwest::Client,
        method: Method,
        base: &str,
        path: &str,
    ) -> RequestBuilder {
        http.request(method, format!("{base}{path}"))
    }
}

/// The full cause of a reqwest error (its Display hides the interesting part).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

/// A failed `GET url` in dockerd's words (`Get "http://127.0.0.1:1/v2/":
/// dial tcp 127.0.0.1:1: connect: connection refused`), the full cause
/// otherwise.
pub(crate) fn get_error(url: &str, host: &str, e: &reqwest::Error) -> String {
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            let what = match io.kind() {
                std::io::ErrorKind::ConnectionRefused => Some("connection refused"),
                std::io::ErrorKind::NetworkUnreachable => Some("network is unreachable"),
                std::io::ErrorKind::HostUnreachable => Some("no route to host"),
                std::io::ErrorKind::TimedOut => Some("i/o timeout"),
                _ => None,
            };
            if let Some(w) = what {
                return format!("Get {url:?}: dial tcp {host}: connect: {w}");
            }
        }
        cur = c.source();
    }
    format!("Get {url:?}: {}", error_chain(e))
}

/// Reads a response body of at most `max` bytes.
pub(crate) async fn read_limited(mut resp: Response, max: usize) -> Result<Vec<u8>> {
    if resp.content_length().is_some_and(|l| l > max as u64) {
        return Err(Error::Limit(format!(
            "{} answered {} bytes; the limit is {max}",
            resp.url(),
            resp.content_length().unwrap_or(0)
        )));
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| Error::Registry(format!("{}: {}", resp.url(), error_chain(&e))))?
    {
        if out.len() + chunk.len() > max {
            return Err(Error::Limit(format!(
                "{} answered more than {max} bytes",
                resp.url()
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The error a registry's failure response means.
pub(crate) async fn failure(what: &str, resp: Response) -> Error {
    let status = resp.status();
    let body = read_limited(resp, 64 << 10).await.unwrap_or_default();
    let detail = serde_json::from_slice::<ErrorDoc>(&body)
        .ok()
        .and_then(|d| {
            let m: Vec<String> = d
                .errors
                .iter()
                .map(|e| {
                    if e.message.is_empty() {
                        e.code.to_lowercase().replace('_', " ")
                    } else {
                        e.message.clone()
                    }
                })
                .collect();
            (!m.is_empty()).then(|| m.join("; "))
        })
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(&body);
            let text = text.trim();
            if text.is_empty() || text.len() > 200 {
                status.canonical_reason().unwrap_or("error").to_lowercase()
            } else {
                text.to_owned()
            }
        });
    match status {
        StatusCode::NOT_FOUND => Error::NotFound(format!("{what}: {detail}")),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            Error::Unauthorized(format!("{what}: {detail} (HTTP {})", status.as_u16()))
        }
        StatusCode::PAYLOAD_TOO_LARGE => Error::Limit(format!("{what}: {detail}")),
        s if s.is_client_error() => {
            Error::Invalid(format!("{what}: {detail} (HTTP {})", s.as_u16()))
        }
        s => Error::Registry(format!("{what}: {detail} (HTTP {})", s.as_u16())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_registries() {
        let c = Client::new(RegistryOptions {
            insecure_registries: vec!["reg.test:5000".into(), "198.18.0.0/15".into()],
            ..Default::default()
        });
        for h in [
            "127.0.0.1:5000",
            "localhost",
            "localhost:5000",
            "[::1]:5000",
            "127.9.9.9",
            "reg.test:5000",
            "198.19.3.4:80",
        ] {
            assert!(c.is_insecure(h), "{h}");
        }
        for h in [
            "reg.test:5001",
            "registry-1.docker.io",
            "198.20.0.1",
            "example.com:5000",
        ] {
            assert!(!c.is_insecure(h), "{h}");
        }
    }

    #[test]
    fn request_credentials_go_to_their_registry_only() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config.json");
        std::fs::write(
            &cfg,
            r#"{"auths":{"reg.test:5000":{"username":"file","password":"f"},"other.test":{"username":"file2","password":"f2"}}}"#,
        )
        .unwrap();
        let base = Client::new(RegistryOptions {
            docker_config: Some(cfg),
            mirrors: vec!["https://mirror.test".into()],
            ..Default::default()
        });
        let c = base
            .with_auth("reg.test:5000", AuthConfig::basic("alice", "pw"))
            .with_auth(
                "https://index.docker.io/v1/",
                AuthConfig {
                    identity_token: "refresh".into(),
                    ..AuthConfig::default()
                },
            )
            .with_auth("empty.test", AuthConfig::default());
        let user = |c: &Client, h: &str| match c.secret(h).unwrap() {
            Some(Secret::Basic(b)) => b.username,
            Some(Secret::RefreshToken(t)) => format!("refresh:{t}"),
            Some(Secret::RegistryToken(t)) => format!("token:{t}"),
            None => "none".into(),
        };
        assert_eq!(
            user(&c, "reg.test:5000"),
            "alice",
            "the request's, not the file's"
        );
        assert_eq!(
            user(&base, "reg.test:5000"),
            "file",
            "the base client is unchanged"
        );
        assert_eq!(
            user(&c, "other.test"),
            "file2",
            "other registries keep the file's"
        );
        assert_eq!(user(&c, "registry-1.docker.io"), "refresh:refresh");
        assert_eq!(user(&c, "mirror.test"), "none", "mirrors never get them");
        assert_eq!(
            user(&c, "empty.test"),
            "none",
            "an empty AuthConfig changes nothing"
        );
        assert_eq!(registry_host("docker.io"), "registry-1.docker.io");
        assert_eq!(registry_host("index.docker.io"), "registry-1.docker.io");
        assert_eq!(registry_host("http://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
        // a token service named over plain HTTP gets credentials only on
        // loopback or an insecure registry
        let url = |u: &str| reqwest::Url::parse(u).unwrap();
        assert!(c.may_carry_credentials(&url("https://auth.example/token")));
        assert!(c.may_carry_credentials(&url("http://127.0.0.1:5001/token")));
        assert!(!c.may_carry_credentials(&url("http://auth.example/token")));
        assert!(!c.may_carry_credentials(&url("http://reg.test:5000/token")));
    }

    #[test]
    fn mirrors_only_for_docker_hub_pulls() {
        let c = Client::new(RegistryOptions {
            mirrors: vec!["http://127.0.0.1:5001/".into()],
            ..Default::default()
        });
        let eps = c.endpoints("docker.io", true);
        assert_eq!(eps.len(), 2);
        assert_eq!(
            eps[0],
            Endpoint {
                host: "127.0.0.1:5001".into(),
                base: "http://127.0.0.1:5001".into(),
                mirror: true
            }
        );
        assert_eq!(eps[1].host, "registry-1.docker.io");
        assert_eq!(
            c.endpoints("docker.io", false).len(),
            1,
            "pushes never go to a mirror"
        );
        assert_eq!(c.endpoints("127.0.0.1:5000", true).len(), 1);
    }
}
