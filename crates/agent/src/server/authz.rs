//! Delegated authorization of kubelet API callers other than the API
//! server, as the kubelet does it (`--authorization-mode=Webhook`): a
//! SubjectAccessReview of the caller's user and groups for the request's
//! verb on the node's `nodes/<subresource>` ([`tls::attributes`]).

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};

use super::http::Failure;
use super::tls::{self, Caller};

/// `None` when `caller` may make `request` on node `node`; otherwise the
/// kubelet's 403. Without `client` only the API server and
/// `system:masters` are served.
pub(super) async fn check<B>(
    client: Option<&kube::Client>,
    node: &str,
    caller: &Caller,
    request: &hyper::Request<B>,
) -> Option<Failure> {
    let refused = caller.refusal(request)?;
    let Some(client) = client.filter(|_| !caller.user.is_empty()) else {
        return Some(refused);
    };
    let (verb, subresource) = tls::attributes(request);
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(caller.user.clone()),
            groups: Some(caller.groups.clone()),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.to_owned()),
                resource: Some("nodes".to_owned()),
                subresource: Some(subresource.to_owned()),
                name: Some(node.to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: Api<SubjectAccessReview> = Api::all(client.clone());
    match api.create(&PostParams::default(), &review).await {
        Ok(r) if r.status.as_ref().is_some_and(|s| s.allowed) => None,
        Ok(_) => Some(refused),
        Err(e) => {
            tracing::warn!(user = %caller.user, error = %e, "kubelet API: the access review failed");
            Some(Failure::new(
                500,
                format!(
                    "Authorization error (user={}, verb={verb}, resource=nodes, subresource={subresource})",
                    caller.user
                ),
            ))
        }
    }
}
