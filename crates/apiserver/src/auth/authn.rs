//! Authentication: who a request is, from its client certificate or its bearer token.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use serde::{Deserialize, Serialize};

use super::AuthError;
use super::token_file::StaticTokens;
use super::tokens::{ServiceAccountClaims, TokenSigner};

/// The group every authenticated user is in.
pub const ALL_AUTHENTICATED: &str = "system:authenticated";
/// The group of requests without credentials.
pub const ALL_UNAUTHENTICATED: &str = "system:unauthenticated";
/// The user name of requests without credentials.
pub const ANONYMOUS: &str = "system:anonymous";

/// A user as Kubernetes' `authentication.k8s.io/v1` `UserInfo` describes one (the JSON
/// field names and omit-when-empty rules are the same).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// The user's name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// A unique value that identifies the user across time (may be empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// The groups the user is in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Further information the authenticator provided.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// The user of a request that brought no credentials: `system:anonymous` in
    /// `system:unauthenticated`.
    pub fn anonymous() -> UserInfo {
        UserInfo {
            username: ANONYMOUS.to_string(),
            groups: vec![ALL_UNAUTHENTICATED.to_string()],
            ..UserInfo::default()
        }
    }

    /// Adds `system:authenticated` to the groups unless it is there already.
    pub(crate) fn with_authenticated_group(mut self) -> UserInfo {
        if !self.groups.iter().any(|g| g == ALL_AUTHENTICATED) {
            self.groups.push(ALL_AUTHENTICATED.to_string());
        }
        self
    }
}

/// What a bearer token authenticated as, with the ServiceAccount claims when it was a
/// ServiceAccount token, so the caller can check that the ServiceAccount (and a bound
/// Pod or Secret) still exists with the uid in the claims.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenAuthentication {
    /// A token from the static token file.
    Static(UserInfo),
    /// A ServiceAccount JWT whose signature, issuer, audience and times were valid.
    ServiceAccount {
        /// The ServiceAccount's user.
        user: UserInfo,
        /// The verified claims (boxed: they are large).
        claims: Box<ServiceAccountClaims>,
    },
}

impl TokenAuthentication {
    /// The authenticated user.
    pub fn user(&self) -> &UserInfo {
        match self {
            TokenAuthentication::Static(user) => user,
            TokenAuthentication::ServiceAccount { user, .. } => user,
        }
    }
}

/// Authenticates requests by client certificate (CN = user, O = groups), static token
/// or ServiceAccount JWT. Every user it returns is in `system:authenticated`.
#[derive(Default)]
pub struct Authenticator {
    client_ca: Option<Arc<dyn ClientCertVerifier>>,
    static_tokens: StaticTokens,
    service_accounts: Option<(Arc<TokenSigner>, Vec<String>)>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("client_ca", &self.client_ca.is_some())
            .field("static_tokens", &self.static_tokens.len())
            .field(
                "service_account_audiences",
                &self.service_accounts.as_ref().map(|(_, a)| a),
            )
            .finish()
    }
}

impl Authenticator {
    /// An authenticator that knows no credentials yet.
    pub fn new() -> Authenticator {
        Authenticator::default()
    }

    /// Verifies client certificate chains against `ca_der` in
    /// [`authenticate_cert`](Self::authenticate_cert) too. Without it, the chain is
    /// taken as already verified (rustls did, with [`Pki::server_config`](super::pki::Pki::server_config)).
    pub fn with_client_ca(mut self, ca_der: &[u8]) -> Result<Authenticator, AuthError> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(ca_der.to_vec()))
            .map_err(|e| AuthError::cert("the client CA", e))?;
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .map_err(|e| AuthError::Tls(format!("the client certificate verifier: {e}")))?;
        self.client_ca = Some(verifier);
        Ok(self)
    }

    /// Accepts the tokens of a static token file.
    pub fn with_static_tokens(mut self, tokens: StaticTokens) -> Authenticator {
        self.static_tokens = tokens;
        self
    }

    /// Accepts ServiceAccount JWTs signed by `signer`'s key and issuer that name one of
    /// `audiences` (the API server's audiences; empty means the issuer alone).
    pub fn with_service_account_tokens(
        mut self,
        signer: Arc<TokenSigner>,
        audiences: Vec<String>,
    ) -> Authenticator {
        let audiences = if audiences.is_empty() {
            vec![signer.issuer().to_string()]
        } else {
            audiences
        };
        self.service_accounts = Some((signer, audiences));
        self
    }

    /// The user of a TLS peer's certificate chain (leaf first, DER): CN = user name,
    /// O = groups, plus `system:authenticated`. None when there is no chain, the leaf
    /// has no CN, or (with [`with_client_ca`](Self::with_client_ca)) the chain does not
    /// verify.
    pub fn authenticate_cert(&self, peer_chain_der: &[Vec<u8>]) -> Option<UserInfo> {
        let (leaf, intermediates) = peer_chain_der.split_first()?;
        let leaf = CertificateDer::from(leaf.as_slice());
        if let Some(verifier) = &self.client_ca {
            let intermediates: Vec<CertificateDer<'_>> = intermediates
                .iter()
                .map(|c| CertificateDer::from(c.as_slice()))
                .collect();
            if let Err(e) = verifier.verify_client_cert(&leaf, &intermediates, UnixTime::now()) {
                tracing::debug!(error = %e, "client certificate rejected");
                return None;
            }
        }
        user_from_certificate(&leaf)
    }

    /// The user of a bearer token. `Ok(None)`: no authenticator knows the token (a 401,
    /// or anonymous if allowed). `Err`: a ServiceAccount token of ours that is expired,
    /// badly signed, malformed or for another audience (a 401).
    ///
    /// This does not check that the ServiceAccount still exists; use
    /// [`authenticate_bearer`](Self::authenticate_bearer) for that.
    pub fn authenticate_token(&self, token: &str) -> Result<Option<UserInfo>, AuthError> {
        Ok(self
            .authenticate_bearer(token)?
            .map(|auth| auth.user().clone()))
    }

    /// Like [`authenticate_token`](Self::authenticate_token), with the ServiceAccount
    /// claims of a ServiceAccount token so the caller can check that the ServiceAccount
    /// (`claims.kubernetes.serviceaccount.uid`) and any bound object still exist.
    pub fn authenticate_bearer(
        &self,
        token: &str,
    ) -> Result<Option<TokenAuthentication>, AuthError> {
        let token = token.trim();
        if token.is_empty() {
            return Ok(None);
        }
        if let Some(user) = self.static_tokens.get(token) {
            return Ok(Some(TokenAuthentication::Static(
                user.clone().with_authenticated_group(),
            )));
        }
        if let Some((signer, audiences)) = &self.service_accounts
            && let Some(claims) = signer.verify(token, audiences)?
        {
            return Ok(Some(TokenAuthentication::ServiceAccount {
                user: claims.user_info(),
                claims: Box::new(claims),
            }));
        }
        Ok(None)
    }
}

/// The user a client certificate names: CN = user name, every O a group, plus
/// `system:authenticated`. None if it does not parse or has no (or an empty) CN.
pub fn user_from_certificate(der: &[u8]) -> Option<UserInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let username = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())?
        .to_string();
    if username.is_empty() {
        return None;
    }
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .map(str::to_string)
        .collect();
    Some(
        UserInfo {
            username,
            groups,
            ..UserInfo::default()
        }
        .with_authenticated_group(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::pki::Pki;
    use rustls::pki_types::pem::PemObject;

    fn der_of(pem: &str) -> Vec<u8> {
        CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    }

    #[test]
    fn userinfo_serializes_like_kubernetes() {
        let mut user = UserInfo {
            username: "jane".into(),
            groups: vec!["devs".into()],
            ..UserInfo::default()
        };
        assert_eq!(
            serde_json::to_value(&user).unwrap(),
            serde_json::json!({"username": "jane", "groups": ["devs"]})
        );
        user.extra.insert("scopes".into(), vec!["a".into()]);
        user.uid = "42".into();
        let v = serde_json::to_value(&user).unwrap();
        assert_eq!(v["uid"], "42");
        assert_eq!(v["extra"]["scopes"][0], "a");
        let back: UserInfo = serde_json::from_value(v).unwrap();
        assert_eq!(back, user);
    }

    #[test]
    fn certificates_authenticate_as_cn_in_o_groups() {
        let tmp = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(tmp.path(), &[]).unwrap();
        let (cert, _) = pki
            .issue_client_cert("system:node:n1", &["system:nodes".into()])
            .unwrap();
        let authn = Authenticator::new();
        let user = authn.authenticate_cert(&[der_of(&cert)]).unwrap();
        assert_eq!(user.username, "system:node:n1");
        assert_eq!(user.groups, vec!["system:nodes", "system:authenticated"]);
        assert!(authn.authenticate_cert(&[]).is_none());
        assert!(authn.authenticate_cert(&[b"junk".to_vec()]).is_none());
    }

    #[test]
    fn with_a_ca_foreign_certificates_are_refused() {
        let ours = tempfile::tempdir().unwrap();
        let theirs = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(ours.path(), &[]).unwrap();
        let other = Pki::load_or_create(theirs.path(), &[]).unwrap();
        let authn = Authenticator::new()
            .with_client_ca(&pki.ca_der().unwrap())
            .unwrap();
        let (good, _) = pki.issue_client_cert("jane", &[]).unwrap();
        let (bad, _) = other.issue_client_cert("jane", &[]).unwrap();
        assert_eq!(
            authn
                .authenticate_cert(&[der_of(&good)])
                .map(|u| u.username),
            Some("jane".to_string())
        );
        assert!(authn.authenticate_cert(&[der_of(&bad)]).is_none());
    }

    #[test]
    fn tokens_static_then_service_account() {
        let tmp = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(tmp.path(), &[]).unwrap();
        let signer = Arc::new(
            TokenSigner::from_pkcs8_pem(
                pki.service_account_key_pem(),
                crate::auth::tokens::DEFAULT_ISSUER,
            )
            .unwrap(),
        );
        let tokens = StaticTokens::parse("s3cret,bob,1001,\"devs,ops\"\n", "<test>").unwrap();
        let authn = Authenticator::new()
            .with_static_tokens(tokens)
            .with_service_account_tokens(Arc::clone(&signer), vec![]);

        let bob = authn.authenticate_token("s3cret").unwrap().unwrap();
        assert_eq!(bob.username, "bob");
        assert_eq!(bob.uid, "1001");
        assert_eq!(bob.groups, vec!["devs", "ops", "system:authenticated"]);

        assert_eq!(authn.authenticate_token("nope").unwrap(), None);
        assert_eq!(authn.authenticate_token("").unwrap(), None);
        // A JWT from another issuer is not ours: unknown, not an error.
        assert_eq!(authn.authenticate_token("a.b.c").unwrap(), None);

        let (jwt, _) = signer
            .issue("default", "builder", "uid-1", &[], 3600, None)
            .unwrap();
        match authn.authenticate_bearer(&jwt).unwrap().unwrap() {
            TokenAuthentication::ServiceAccount { user, claims } => {
                assert_eq!(user.username, "system:serviceaccount:default:builder");
                assert_eq!(claims.kubernetes.serviceaccount.uid, "uid-1");
            }
            other => panic!("{other:?}"),
        }

        // Our issuer, wrong audience: an error (401), not "unknown".
        let (wrong_aud, _) = signer
            .issue("default", "builder", "uid-1", &["vault".into()], 3600, None)
            .unwrap();
        assert!(authn.authenticate_token(&wrong_aud).is_err());
    }
}
