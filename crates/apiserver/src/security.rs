//! Authentication and authorization wired into requests: client
//! certificates and bearer tokens in, a user out; RBAC over the stored
//! Roles and bindings (a snapshot rebuilt when one of them changes).

use std::sync::{Arc, RwLock};

use axum::http::request::Parts;
use axum::http::{Method, header};
use serde_json::Value;

use crate::api::{Api, User};
use crate::auth::authn::{Authenticator, TokenAuthentication, UserInfo};
use crate::auth::rbac::{Attributes, RbacSnapshot};
use crate::auth::tokens::TokenSigner;
use crate::error::ApiError;
use crate::request::Target;
use crate::resources::Resource;
use crate::server::PeerCertificates;

/// The server's authentication and authorization.
pub struct Security {
    authn: Authenticator,
    signer: Arc<TokenSigner>,
    rbac: RwLock<Option<Arc<RbacSnapshot>>>,
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security").finish_non_exhaustive()
    }
}

/// Whether `namespace/name` of a core resource exists with `uid`.
async fn exists(api: &Api, plural: &str, namespace: &str, name: &str, uid: &str) -> bool {
    let Some(resource) = api.registry.get("", "v1", plural) else {
        return false;
    };
    match api.objects.get_key(&resource.key(namespace, name)).await {
        Ok(Some((obj, _))) => crate::meta::meta_str(&obj, "uid") == uid,
        _ => false,
    }
}

impl Security {
    /// Security from an authenticator and the ServiceAccount token signer.
    pub fn new(authn: Authenticator, signer: Arc<TokenSigner>) -> Security {
        Security {
            authn,
            signer,
            rbac: RwLock::new(None),
        }
    }

    /// The user of in-process calls (and of a server without security).
    pub fn admin_user() -> UserInfo {
        UserInfo {
            username: "system:admin".to_owned(),
            groups: vec![
                "system:masters".to_owned(),
                "system:authenticated".to_owned(),
            ],
            ..UserInfo::default()
        }
    }

    /// Who sent the request: a client certificate, else a bearer token,
    /// else anonymous. An invalid token is a 401; so is a ServiceAccount
    /// token whose ServiceAccount (or bound pod or secret) is gone or was
    /// recreated.
    pub async fn authenticate(&self, api: &Api, parts: &Parts) -> Result<UserInfo, ApiError> {
        if let Some(user) = parts.extensions.get::<crate::server::InProcessUser>() {
            return Ok(user.0.clone());
        }
        if let Some(chain) = parts.extensions.get::<PeerCertificates>()
            && !chain.0.is_empty()
            && let Some(user) = self.authn.authenticate_cert(&chain.0)
        {
            return Ok(user);
        }
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            });
        if let Some(token) = bearer {
            return match self.authn.authenticate_bearer(token) {
                Ok(Some(TokenAuthentication::Static(user))) => Ok(user),
                Ok(Some(TokenAuthentication::ServiceAccount { user, claims })) => {
                    let k = &claims.kubernetes;
                    let mut live = exists(
                        api,
                        "serviceaccounts",
                        &k.namespace,
                        &k.serviceaccount.name,
                        &k.serviceaccount.uid,
                    )
                    .await;
                    if let Some(pod) = &k.pod {
                        live = live && exists(api, "pods", &k.namespace, &pod.name, &pod.uid).await;
                    }
                    if let Some(secret) = &k.secret {
                        live = live
                            && exists(api, "secrets", &k.namespace, &secret.name, &secret.uid)
                                .await;
                    }
                    if live {
                        Ok(user)
                    } else {
                        Err(ApiError::unauthorized())
                    }
                }
                Ok(None) | Err(_) => Err(ApiError::unauthorized()),
            };
        }
        Ok(UserInfo::anonymous())
    }

    async fn snapshot(&self, api: &Api) -> Result<Arc<RbacSnapshot>, ApiError> {
        if let Some(snapshot) = self.rbac.read().unwrap_or_else(|p| p.into_inner()).clone() {
            return Ok(snapshot);
        }
        let load = |prefix: &'static str| async move {
            api.objects
                .list_all(prefix, 0)
                .await
                .map(|(items, _)| items)
        };
        let roles = load("/registry/roles/").await?;
        let cluster_roles = load("/registry/clusterroles/").await?;
        let role_bindings = load("/registry/rolebindings/").await?;
        let cluster_role_bindings = load("/registry/clusterrolebindings/").await?;
        let snapshot = Arc::new(RbacSnapshot::from_objects(
            roles,
            cluster_roles,
            role_bindings,
            cluster_role_bindings,
        ));
        *self.rbac.write().unwrap_or_else(|p| p.into_inner()) = Some(snapshot.clone());
        Ok(snapshot)
    }

    /// Impersonation (`kubectl --as`, `--as-group`, `--as-uid`): the
    /// `Impersonate-*` headers replace the user when the real user may
    /// `impersonate` each of them (kube's rules and messages).
    pub async fn impersonate(
        &self,
        api: &Api,
        user: UserInfo,
        parts: &Parts,
    ) -> Result<UserInfo, ApiError> {
        let header = |name: &str| -> Vec<String> {
            parts
                .headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(str::to_owned)
                .collect()
        };
        let users = header("impersonate-user");
        let groups = header("impersonate-group");
        let uids = header("impersonate-uid");
        let extras: Vec<(String, String)> = parts
            .headers
            .iter()
            .filter_map(|(k, v)| {
                let key = k.as_str().strip_prefix("impersonate-extra-")?;
                Some((key.to_owned(), v.to_str().ok()?.to_owned()))
            })
            .collect();
        if users.is_empty() {
            if !groups.is_empty() || !uids.is_empty() || !extras.is_empty() {
                return Err(ApiError::bad_request(
                    "requested impersonation of groups, uid or extra without impersonating a user",
                ));
            }
            return Ok(user);
        }
        let username = users[0].clone();
        let check =
            |verb: &str, group: &str, resource: &str, namespace: &str, name: &str| Attributes {
                user: user.clone(),
                verb: verb.to_owned(),
                api_group: group.to_owned(),
                resource: resource.to_owned(),
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                resource_request: true,
                ..Attributes::default()
            };
        let mut wanted = Vec::new();
        match username
            .strip_prefix("system:serviceaccount:")
            .and_then(|r| r.split_once(':'))
        {
            Some((ns, name)) => wanted.push(check("impersonate", "", "serviceaccounts", ns, name)),
            None => wanted.push(check("impersonate", "", "users", "", &username)),
        }
        for group in &groups {
            wanted.push(check("impersonate", "", "groups", "", group));
        }
        for uid in &uids {
            wanted.push(check(
                "impersonate",
                "authentication.k8s.io",
                "uids",
                "",
                uid,
            ));
        }
        for (key, value) in &extras {
            let mut a = check(
                "impersonate",
                "authentication.k8s.io",
                "userextras",
                "",
                value,
            );
            a.subresource = key.clone();
            wanted.push(a);
        }
        if !user.groups.iter().any(|g| g == "system:masters") {
            let snapshot = self.snapshot(api).await?;
            for attrs in &wanted {
                if !snapshot.authorize(attrs).allowed {
                    let what = if attrs.resource == "serviceaccounts" {
                        "serviceaccount"
                    } else {
                        attrs.resource.trim_end_matches('s')
                    };
                    return Err(ApiError::forbidden(format!(
                        "{what}s \"{}\" is forbidden: User \"{}\" cannot impersonate resource \"{}\" in API group \"{}\"{}",
                        attrs.name,
                        user.username,
                        attrs.resource,
                        attrs.api_group,
                        if attrs.namespace.is_empty() {
                            " at the cluster scope".to_owned()
                        } else {
                            format!(" in the namespace \"{}\"", attrs.namespace)
                        }
                    )));
                }
            }
        }
        let mut all_groups = groups;
        if let Some((ns, _)) = username
            .strip_prefix("system:serviceaccount:")
            .and_then(|r| r.split_once(':'))
        {
            for g in [
                "system:serviceaccounts".to_owned(),
                format!("system:serviceaccounts:{ns}"),
            ] {
                if !all_groups.contains(&g) {
                    all_groups.push(g);
                }
            }
        }
        if username != "system:anonymous" && !all_groups.iter().any(|g| g == "system:authenticated")
        {
            all_groups.push("system:authenticated".to_owned());
        }
        let mut extra = std::collections::BTreeMap::new();
        for (key, value) in extras {
            extra.entry(key).or_insert_with(Vec::new).push(value);
        }
        Ok(UserInfo {
            username,
            uid: uids.first().cloned().unwrap_or_default(),
            groups: all_groups,
            extra,
        })
    }

    /// Checks a resource request.
    pub async fn authorize_resource(
        &self,
        api: &Api,
        user: &User,
        verb: &str,
        target: &Target,
    ) -> Result<(), ApiError> {
        if user.groups.iter().any(|g| g == "system:masters") {
            return Ok(());
        }
        let attrs = Attributes {
            user: user.clone(),
            verb: verb.to_owned(),
            api_group: target.resource.group.clone(),
            resource: target.resource.plural.clone(),
            subresource: target.subresource.clone(),
            namespace: target.namespace.clone(),
            name: target.name.clone(),
            path: String::new(),
            resource_request: true,
        };
        let decision = self.snapshot(api).await?.authorize(&attrs);
        if decision.allowed {
            return Ok(());
        }
        // kube's wording: `pods is forbidden: User "bob" cannot list …`,
        // `pods "web" is forbidden: …` for a named object.
        let resource = if target.subresource.is_empty() {
            target.resource.plural.clone()
        } else {
            format!("{}/{}", target.resource.plural, target.subresource)
        };
        let qualified = crate::error::qualified(&target.resource.group, &resource);
        let message = if target.name.is_empty() {
            format!("{qualified} is forbidden: {}", decision.reason)
        } else {
            format!(
                "{qualified} \"{}\" is forbidden: {}",
                target.name, decision.reason
            )
        };
        let mut error = ApiError::forbidden(message);
        let mut details = serde_json::json!({"kind": resource, "name": target.name});
        if !target.resource.group.is_empty() {
            details["group"] = serde_json::json!(target.resource.group);
        }
        error.details = Some(details);
        Err(error)
    }

    /// The decision for arbitrary attributes (access reviews).
    pub async fn decide(&self, api: &Api, attrs: &Attributes) -> Result<(bool, String), ApiError> {
        let decision = self.snapshot(api).await?.authorize(attrs);
        Ok((decision.allowed, decision.reason))
    }

    /// The rules of a user in a namespace (SelfSubjectRulesReview).
    pub async fn rules(&self, api: &Api, user: &User, namespace: &str) -> Result<Value, ApiError> {
        let (resource, non_resource) = self.snapshot(api).await?.rules_for(user, namespace);
        Ok(serde_json::json!({
            "resourceRules": resource,
            "nonResourceRules": non_resource,
            "incomplete": false,
        }))
    }

    /// Checks a non-resource request (discovery, OpenAPI, metrics).
    pub fn authorize_path(&self, user: &User, method: &Method, path: &str) -> Result<(), ApiError> {
        if user.groups.iter().any(|g| g == "system:masters") {
            return Ok(());
        }
        // Discovery and OpenAPI are open to every authenticated user
        // (system:discovery); the rest goes through RBAC.
        let public = path == "/api"
            || path == "/apis"
            || path.starts_with("/api/")
            || path.starts_with("/apis/")
            || path.starts_with("/openapi/")
            || path == "/version";
        if public && user.groups.iter().any(|g| g == "system:authenticated") {
            return Ok(());
        }
        let snapshot = self.rbac.read().unwrap_or_else(|p| p.into_inner()).clone();
        let attrs = Attributes {
            user: user.clone(),
            verb: method.as_str().to_ascii_lowercase(),
            path: path.to_owned(),
            resource_request: false,
            ..Attributes::default()
        };
        match snapshot {
            Some(s) if s.authorize(&attrs).allowed => Ok(()),
            Some(s) => Err(ApiError::forbidden(s.authorize(&attrs).reason)),
            None => Err(ApiError::forbidden(crate::auth::rbac::forbidden_message(
                &attrs,
            ))),
        }
    }

    /// Writes the aggregated rules of every ClusterRole with an
    /// `aggregationRule` (the clusterrole-aggregation controller's job,
    /// done here whenever a ClusterRole changes).
    pub async fn aggregate(&self, api: &Api) -> Result<(), ApiError> {
        let (roles, _) = api.objects.list_all("/registry/clusterroles/", 0).await?;
        let Some(resource) = api
            .registry
            .get("rbac.authorization.k8s.io", "v1", "clusterroles")
        else {
            return Ok(());
        };
        for (name, rules) in crate::auth::aggregation::aggregate_cluster_roles(&roles) {
            let target = Target {
                resource: resource.clone(),
                namespace: String::new(),
                name,
                subresource: String::new(),
            };
            let rules = Value::Array(rules);
            api.objects
                .update(&target, None, None, |mut current| {
                    if current.get("rules") == Some(&rules) {
                        return Ok(crate::storage::Change::Keep);
                    }
                    current["rules"] = rules.clone();
                    Ok(crate::storage::Change::Put(current))
                })
                .await?;
        }
        *self.rbac.write().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(())
    }

    /// Forgets the RBAC snapshot when an RBAC object changed.
    pub fn after_write(&self, resource: &Resource) {
        if resource.group == "rbac.authorization.k8s.io" {
            *self.rbac.write().unwrap_or_else(|p| p.into_inner()) = None;
        }
    }

    /// Issues a ServiceAccount token.
    pub fn issue_token(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        audiences: &[String],
        seconds: i64,
        bound: Option<(String, String, String)>,
    ) -> Result<(String, String), ApiError> {
        let bound_ref = bound
            .as_ref()
            .map(|(k, n, u)| (k.as_str(), n.as_str(), u.as_str()));
        self.signer
            .issue(namespace, name, uid, audiences, seconds, bound_ref)
            .map_err(|e| ApiError::bad_request(e.to_string()))
    }

    /// Authenticates a token for a TokenReview.
    pub fn review_token(&self, token: &str) -> Option<UserInfo> {
        self.authn.authenticate_token(token).ok().flatten()
    }
}
