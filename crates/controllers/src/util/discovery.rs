//! The API's resources, from its discovery documents (CRDs included), at
//! their preferred versions.

use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope};

/// A served resource and what it supports.
#[derive(Debug, Clone)]
pub struct Served {
    /// Group, version, kind and plural.
    pub resource: ApiResource,
    /// Whether it lives in namespaces.
    pub namespaced: bool,
    /// Its verbs (`list`, `watch`, `delete`, `deletecollection`…).
    pub verbs: Vec<String>,
}

impl Served {
    /// Whether it supports every verb of `verbs`.
    pub fn supports(&self, verbs: &[&str]) -> bool {
        verbs
            .iter()
            .all(|v| self.verbs.iter().any(|have| have == v))
    }

    /// `plural` for the core group, `plural.group` otherwise (kube's
    /// GroupResource string).
    pub fn group_resource(&self) -> String {
        if self.resource.group.is_empty() {
            self.resource.plural.clone()
        } else {
            format!("{}.{}", self.resource.plural, self.resource.group)
        }
    }
}

/// Every resource the API serves (preferred version of each group).
pub async fn resources(client: &kube::Client) -> Result<Vec<Served>, kube::Error> {
    let discovery = Discovery::new(client.clone()).run().await?;
    let mut out = Vec::new();
    for group in discovery.groups() {
        for (resource, caps) in group.recommended_resources() {
            out.push(served(resource, &caps));
        }
    }
    Ok(out)
}

fn served(resource: ApiResource, caps: &ApiCapabilities) -> Served {
    Served {
        resource,
        namespaced: caps.scope == Scope::Namespaced,
        verbs: caps.operations.clone(),
    }
}
