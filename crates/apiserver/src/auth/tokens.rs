//! ServiceAccount tokens as signed JWTs (ES256), shaped like kube-apiserver's
//! TokenRequest tokens: `iss`, `sub` (`system:serviceaccount:NS:NAME`), `aud`, `exp`,
//! `iat`, `nbf`, `jti` and the `kubernetes.io` claim (namespace, serviceaccount, and the
//! bound pod, secret or node).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _};
use rustls::pki_types::PrivatePkcs8KeyDer;
use rustls::pki_types::pem::PemObject;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};

use super::AuthError;
use super::authn::{ALL_AUTHENTICATED, UserInfo};

/// The issuer kube-apiserver uses by default, and the default audience.
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// The shortest lifetime a token request may ask for (10 minutes, as Kubernetes).
pub const MIN_EXPIRATION_SECONDS: i64 = 600;
/// The longest lifetime a token request may ask for (2^32 seconds, as Kubernetes).
pub const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;
/// The group of every ServiceAccount.
pub const ALL_SERVICE_ACCOUNTS: &str = "system:serviceaccounts";
/// The prefix of ServiceAccount user names.
pub const SERVICE_ACCOUNT_USER_PREFIX: &str = "system:serviceaccount:";
/// How far a token's `nbf`/`iat` may lie in the future (clock skew).
const LEEWAY_SECONDS: i64 = 60;

/// The DER prefix of a P-256 SubjectPublicKeyInfo; the 65-byte point follows.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The user name of a ServiceAccount: `system:serviceaccount:NS:NAME`.
pub fn service_account_username(namespace: &str, name: &str) -> String {
    format!("{SERVICE_ACCOUNT_USER_PREFIX}{namespace}:{name}")
}

/// The group of a namespace's ServiceAccounts: `system:serviceaccounts:NS`.
pub fn service_account_namespace_group(namespace: &str) -> String {
    format!("{ALL_SERVICE_ACCOUNTS}:{namespace}")
}

/// A name and uid in the `kubernetes.io` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    /// The object's name.
    pub name: String,
    /// The object's uid.
    pub uid: String,
}

/// The `kubernetes.io` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesClaims {
    /// The ServiceAccount's namespace.
    pub namespace: String,
    /// The ServiceAccount.
    pub serviceaccount: ObjectRef,
    /// The Pod the token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<ObjectRef>,
    /// The Secret the token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<ObjectRef>,
    /// The Node the token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<ObjectRef>,
}

/// The claims of a ServiceAccount token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccountClaims {
    /// Issuer.
    pub iss: String,
    /// Subject: `system:serviceaccount:NS:NAME`.
    pub sub: String,
    /// Audiences (a JWT may carry one as a bare string; it reads as a list of one).
    #[serde(deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Not before, seconds since the epoch.
    pub nbf: i64,
    /// The token's unique id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jti: String,
    /// The Kubernetes claim.
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaims,
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

impl ServiceAccountClaims {
    /// The ServiceAccount's user: `system:serviceaccount:NS:NAME` with the
    /// ServiceAccount's uid, in `system:serviceaccounts`, `system:serviceaccounts:NS` and
    /// `system:authenticated`; `extra` holds `authentication.kubernetes.io/credential-id`
    /// (`JTI=…`) and the bound pod's or node's name and uid, as kube-apiserver does.
    pub fn user_info(&self) -> UserInfo {
        let k = &self.kubernetes;
        let mut extra = BTreeMap::new();
        if !self.jti.is_empty() {
            extra.insert(
                "authentication.kubernetes.io/credential-id".to_string(),
                vec![format!("JTI={}", self.jti)],
            );
        }
        if let Some(pod) = &k.pod {
            extra.insert(
                "authentication.kubernetes.io/pod-name".into(),
                vec![pod.name.clone()],
            );
            extra.insert(
                "authentication.kubernetes.io/pod-uid".into(),
                vec![pod.uid.clone()],
            );
        }
        if let Some(node) = &k.node {
            extra.insert(
                "authentication.kubernetes.io/node-name".into(),
                vec![node.name.clone()],
            );
            extra.insert(
                "authentication.kubernetes.io/node-uid".into(),
                vec![node.uid.clone()],
            );
        }
        UserInfo {
            username: service_account_username(&k.namespace, &k.serviceaccount.name),
            uid: k.serviceaccount.uid.clone(),
            groups: vec![
                ALL_SERVICE_ACCOUNTS.to_string(),
                service_account_namespace_group(&k.namespace),
                ALL_AUTHENTICATED.to_string(),
            ],
            extra,
        }
    }
}

/// Signs and verifies ServiceAccount tokens with one ECDSA P-256 key.
pub struct TokenSigner {
    key: EcdsaKeyPair,
    public_key: Vec<u8>,
    key_id: String,
    issuer: String,
    rng: SystemRandom,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("issuer", &self.issuer)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// A signer from a PKCS#8 PEM ECDSA P-256 private key (as
    /// [`Pki::service_account_key_pem`](super::pki::Pki::service_account_key_pem)) that
    /// issues tokens as `issuer`.
    pub fn from_pkcs8_pem(pem: &str, issuer: &str) -> Result<TokenSigner, AuthError> {
        let der = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| AuthError::cert("the ServiceAccount signing key", e))?;
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            der.secret_pkcs8_der(),
            &rng,
        )
        .map_err(|e| {
            AuthError::cert(
                "the ServiceAccount signing key",
                format!("not a PKCS#8 ECDSA P-256 key: {e}"),
            )
        })?;
        let public_key = key.public_key().as_ref().to_vec();
        let mut spki = P256_SPKI_PREFIX.to_vec();
        spki.extend_from_slice(&public_key);
        let key_id = URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, &spki));
        Ok(TokenSigner {
            key,
            public_key,
            key_id,
            issuer: issuer.to_string(),
            rng,
        })
    }

    /// The issuer (`iss`) of the tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The key id (`kid`): base64url of the SHA-256 of the public key's DER, as
    /// kube-apiserver computes it.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public key as a JSON Web Key Set, for `/openid/v1/jwks`.
    pub fn jwks(&self) -> Value {
        let (x, y) = match (self.public_key.get(1..33), self.public_key.get(33..65)) {
            (Some(x), Some(y)) => (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y)),
            _ => (String::new(), String::new()),
        };
        json!({"keys": [{
            "use": "sig", "kty": "EC", "kid": self.key_id, "crv": "P-256",
            "alg": "ES256", "x": x, "y": y,
        }]})
    }

    /// Issues a token for ServiceAccount `namespace/sa_name` (uid `sa_uid`) for
    /// `audiences` (empty: the issuer), valid `expiration_seconds` (600 to 2^32) from
    /// now, optionally bound to an object `(kind, name, uid)` of kind Pod, Secret or
    /// Node. Returns the token and its expiry as an RFC 3339 time
    /// (`2025-01-02T03:04:05Z`, TokenRequest's `status.expirationTimestamp`).
    pub fn issue(
        &self,
        namespace: &str,
        sa_name: &str,
        sa_uid: &str,
        audiences: &[String],
        expiration_seconds: i64,
        bound_object: Option<(&str, &str, &str)>,
    ) -> Result<(String, String), AuthError> {
        self.issue_at(
            unix_now(),
            namespace,
            sa_name,
            sa_uid,
            audiences,
            expiration_seconds,
            bound_object,
        )
    }

    /// [`issue`](Self::issue) at the time `now` (seconds since the epoch).
    #[allow(clippy::too_many_arguments)]
    pub fn issue_at(
        &self,
        now: i64,
        namespace: &str,
        sa_name: &str,
        sa_uid: &str,
        audiences: &[String],
        expiration_seconds: i64,
        bound_object: Option<(&str, &str, &str)>,
    ) -> Result<(String, String), AuthError> {
        if namespace.is_empty() || sa_name.is_empty() {
            return Err(AuthError::TokenRequest(
                "the ServiceAccount's namespace and name must not be empty".into(),
            ));
        }
        if expiration_seconds < MIN_EXPIRATION_SECONDS {
            return Err(AuthError::TokenRequest(format!(
                "expirationSeconds may not be less than {MIN_EXPIRATION_SECONDS} (10 minutes), got {expiration_seconds}"
            )));
        }
        if expiration_seconds > MAX_EXPIRATION_SECONDS {
            return Err(AuthError::TokenRequest(format!(
                "expirationSeconds may not be more than 2^32, got {expiration_seconds}"
            )));
        }
        let mut kubernetes = KubernetesClaims {
            namespace: namespace.to_string(),
            serviceaccount: ObjectRef {
                name: sa_name.to_string(),
                uid: sa_uid.to_string(),
            },
            pod: None,
            secret: None,
            node: None,
        };
        if let Some((kind, name, uid)) = bound_object {
            let object = Some(ObjectRef {
                name: name.to_string(),
                uid: uid.to_string(),
            });
            match kind {
                "Pod" => kubernetes.pod = object,
                "Secret" => kubernetes.secret = object,
                "Node" => kubernetes.node = object,
                other => {
                    return Err(AuthError::TokenRequest(format!(
                        "cannot bind a token to a {other:?}; only Pod, Secret and Node"
                    )));
                }
            }
        }
        let aud = if audiences.is_empty() {
            vec![self.issuer.clone()]
        } else {
            audiences.to_vec()
        };
        let exp = now.saturating_add(expiration_seconds);
        let claims = ServiceAccountClaims {
            iss: self.issuer.clone(),
            sub: service_account_username(namespace, sa_name),
            aud,
            exp,
            iat: now,
            nbf: now,
            jti: uuid::Uuid::new_v4().to_string(),
            kubernetes,
        };
        let header = json!({"alg": "ES256", "kid": self.key_id});
        let payload = serde_json::to_vec(&claims)
            .map_err(|e| AuthError::TokenRequest(format!("encoding the claims: {e}")))?;
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let sig = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .map_err(|_| AuthError::TokenRequest("signing the token failed".into()))?;
        let token = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()));
        Ok((token, rfc3339(exp)))
    }

    /// Verifies a token now: see [`verify_at`](Self::verify_at).
    pub fn verify(
        &self,
        token: &str,
        audiences: &[String],
    ) -> Result<Option<ServiceAccountClaims>, AuthError> {
        self.verify_at(token, audiences, unix_now())
    }

    /// Verifies `token` at time `now` for an API server with `audiences`.
    ///
    /// `Ok(None)`: not a JWT, or one from another issuer (someone else's token).
    /// `Err`: our issuer, but a bad signature or algorithm, malformed claims, expired,
    /// not yet valid, or none of `audiences` in `aud`. `Ok(Some)`: valid; the caller
    /// should still check that the ServiceAccount (and any bound object) exists with
    /// the uid in the claims.
    pub fn verify_at(
        &self,
        token: &str,
        audiences: &[String],
        now: i64,
    ) -> Result<Option<ServiceAccountClaims>, AuthError> {
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(sig_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Ok(None);
        };
        let (Ok(header), Ok(payload)) = (
            URL_SAFE_NO_PAD.decode(header_b64),
            URL_SAFE_NO_PAD.decode(payload_b64),
        ) else {
            return Ok(None);
        };
        let (Ok(header), Ok(payload)) = (
            serde_json::from_slice::<Value>(&header),
            serde_json::from_slice::<Value>(&payload),
        ) else {
            return Ok(None);
        };
        if payload.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Ok(None);
        }
        let invalid = |m: String| Err(AuthError::InvalidToken(m));
        match header.get("alg").and_then(Value::as_str) {
            Some("ES256") => {}
            other => return invalid(format!("unsupported signing algorithm {other:?}")),
        }
        let Ok(sig) = URL_SAFE_NO_PAD.decode(sig_b64) else {
            return invalid("the signature is not base64url".into());
        };
        let signing_input_len = header_b64.len() + 1 + payload_b64.len();
        let signing_input = token
            .as_bytes()
            .get(..signing_input_len)
            .unwrap_or_default();
        signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &self.public_key)
            .verify(signing_input, &sig)
            .map_err(|_| AuthError::InvalidToken("the signature does not match".into()))?;
        let claims: ServiceAccountClaims = match serde_json::from_value(payload) {
            Ok(c) => c,
            Err(e) => return invalid(format!("malformed claims: {e}")),
        };
        if claims.exp <= now {
            return invalid("service account token has expired".into());
        }
        if claims.nbf > now + LEEWAY_SECONDS || claims.iat > now + LEEWAY_SECONDS {
            return invalid("service account token is not valid yet".into());
        }
        if !claims.aud.iter().any(|a| audiences.contains(a)) {
            return invalid(format!(
                "token audiences {:?} is invalid for the target audiences {:?}",
                claims.aud, audiences
            ));
        }
        let k = &claims.kubernetes;
        if k.namespace.is_empty() || k.serviceaccount.name.is_empty() {
            return invalid("the kubernetes.io claim names no ServiceAccount".into());
        }
        if claims.sub != service_account_username(&k.namespace, &k.serviceaccount.name) {
            return invalid("the subject does not match the kubernetes.io claim".into());
        }
        Ok(Some(claims))
    }
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Seconds since the epoch as RFC 3339 in UTC (`2025-01-02T03:04:05Z`).
pub fn rfc3339(secs: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> TokenSigner {
        let key = rcgen::KeyPair::generate().unwrap();
        TokenSigner::from_pkcs8_pem(&key.serialize_pem(), DEFAULT_ISSUER).unwrap()
    }

    fn api() -> Vec<String> {
        vec![DEFAULT_ISSUER.to_string()]
    }

    const NOW: i64 = 1_750_000_000;

    #[test]
    fn issue_and_verify_round_trip() {
        let s = signer();
        let (token, exp) = s
            .issue_at(
                NOW,
                "default",
                "builder",
                "sa-uid",
                &[],
                3600,
                Some(("Pod", "web-1", "pod-uid")),
            )
            .unwrap();
        assert_eq!(exp, rfc3339(NOW + 3600));
        assert_eq!(exp, "2025-06-15T16:06:40Z");
        let claims = s.verify_at(&token, &api(), NOW + 10).unwrap().unwrap();
        assert_eq!(claims.iss, DEFAULT_ISSUER);
        assert_eq!(claims.sub, "system:serviceaccount:default:builder");
        assert_eq!(claims.aud, api());
        assert_eq!((claims.iat, claims.nbf, claims.exp), (NOW, NOW, NOW + 3600));
        assert_eq!(
            claims.kubernetes.pod.as_ref().map(|p| p.uid.as_str()),
            Some("pod-uid")
        );

        let user = claims.user_info();
        assert_eq!(user.username, "system:serviceaccount:default:builder");
        assert_eq!(user.uid, "sa-uid");
        assert_eq!(
            user.groups,
            vec![
                "system:serviceaccounts",
                "system:serviceaccounts:default",
                "system:authenticated"
            ]
        );
        assert_eq!(
            user.extra["authentication.kubernetes.io/pod-name"],
            vec!["web-1"]
        );
        assert!(user.extra["authentication.kubernetes.io/credential-id"][0].starts_with("JTI="));
    }

    #[test]
    fn the_token_is_a_jwt_with_kubes_claims() {
        let s = signer();
        let (token, _) = s
            .issue_at(
                NOW,
                "ns",
                "sa",
                "u",
                &["a".into(), "b".into()],
                600,
                Some(("Secret", "s", "su")),
            )
            .unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], s.key_id());
        let payload: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(payload["aud"], json!(["a", "b"]));
        assert_eq!(payload["kubernetes.io"]["namespace"], "ns");
        assert_eq!(
            payload["kubernetes.io"]["serviceaccount"],
            json!({"name": "sa", "uid": "u"})
        );
        assert_eq!(
            payload["kubernetes.io"]["secret"],
            json!({"name": "s", "uid": "su"})
        );
        assert!(payload["kubernetes.io"].get("pod").is_none());
        let jwks = s.jwks();
        assert_eq!(jwks["keys"][0]["kid"], s.key_id());
        assert_eq!(jwks["keys"][0]["crv"], "P-256");
    }

    #[test]
    fn expired_tokens_are_errors() {
        let s = signer();
        let (token, _) = s.issue_at(NOW, "ns", "sa", "u", &[], 600, None).unwrap();
        let err = s
            .verify_at(&token, &api(), NOW + 600)
            .unwrap_err()
            .to_string();
        assert!(err.contains("expired"), "{err}");
        let err = s
            .verify_at(&token, &api(), NOW - 3600)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not valid yet"), "{err}");
    }

    #[test]
    fn another_key_is_an_error_another_issuer_is_not_ours() {
        let s = signer();
        let other = signer();
        let (token, _) = other
            .issue_at(NOW, "ns", "sa", "u", &[], 600, None)
            .unwrap();
        let err = s.verify_at(&token, &api(), NOW).unwrap_err().to_string();
        assert!(err.contains("signature"), "{err}");

        let key = rcgen::KeyPair::generate().unwrap();
        let foreign =
            TokenSigner::from_pkcs8_pem(&key.serialize_pem(), "https://elsewhere").unwrap();
        let (token, _) = foreign
            .issue_at(NOW, "ns", "sa", "u", &[], 600, None)
            .unwrap();
        assert_eq!(s.verify_at(&token, &api(), NOW).unwrap(), None);
        assert_eq!(s.verify_at("not a jwt", &api(), NOW).unwrap(), None);
        assert_eq!(s.verify_at("a.b.c.d", &api(), NOW).unwrap(), None);
    }

    #[test]
    fn tampered_tokens_are_errors() {
        let s = signer();
        let (token, _) = s.issue_at(NOW, "ns", "sa", "u", &[], 600, None).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let mut payload: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        payload["kubernetes.io"]["serviceaccount"]["name"] = json!("admin");
        payload["sub"] = json!("system:serviceaccount:ns:admin");
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(payload.to_string()),
            parts[2]
        );
        let err = s.verify_at(&forged, &api(), NOW).unwrap_err().to_string();
        assert!(err.contains("signature does not match"), "{err}");

        // alg "none" with our issuer is refused outright.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            parts[1]
        );
        let err = s.verify_at(&none, &api(), NOW).unwrap_err().to_string();
        assert!(err.contains("algorithm"), "{err}");
    }

    #[test]
    fn audiences_must_intersect() {
        let s = signer();
        let (token, _) = s
            .issue_at(NOW, "ns", "sa", "u", &["vault".into()], 600, None)
            .unwrap();
        assert!(s.verify_at(&token, &api(), NOW).is_err());
        assert!(
            s.verify_at(&token, &["vault".into()], NOW)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn bad_requests_are_refused() {
        let s = signer();
        let short = s
            .issue_at(NOW, "ns", "sa", "u", &[], 599, None)
            .unwrap_err()
            .to_string();
        assert!(short.contains("less than 600"), "{short}");
        let kind = s
            .issue_at(
                NOW,
                "ns",
                "sa",
                "u",
                &[],
                600,
                Some(("ConfigMap", "c", "1")),
            )
            .unwrap_err()
            .to_string();
        assert!(kind.contains("ConfigMap"), "{kind}");
    }

    #[test]
    fn a_single_string_audience_reads_as_a_list() {
        let claims: ServiceAccountClaims = serde_json::from_value(json!({
            "iss": "i", "sub": "system:serviceaccount:a:b", "aud": "x", "exp": 2, "iat": 1, "nbf": 1,
            "kubernetes.io": {"namespace": "a", "serviceaccount": {"name": "b", "uid": "c"}}
        }))
        .unwrap();
        assert_eq!(claims.aud, vec!["x"]);
    }
}
