//! Per-namespace objects kube's controllers keep: the `default`
//! ServiceAccount (kube's serviceaccount-controller, acting as
//! `kube-system/service-account-controller`) and the `kube-root-ca.crt`
//! ConfigMap ([`rootca`], acting as `kube-system/root-ca-cert-publisher`).
//!
//! The API server already creates `default` with each namespace; the
//! controller puts it back when it is deleted, as kube's does.

pub mod rootca;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::api::{Api, PostParams};
use kube::runtime::watcher;
use tokio::sync::Notify;

use crate::Clients;
use crate::util::cache;

/// The ServiceAccount controller's account.
pub const SERVICE_ACCOUNTS: &str = "service-account-controller";
/// The root CA publisher's account.
pub const ROOT_CA: &str = "root-ca-cert-publisher";
/// The ServiceAccount every namespace has.
pub const DEFAULT: &str = "default";
const RESYNC: Duration = Duration::from_secs(30);

/// The active namespaces' names.
fn active(namespaces: &[Namespace]) -> Vec<String> {
    namespaces
        .iter()
        .filter(|n| n.metadata.deletion_timestamp.is_none())
        .filter(|n| n.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Terminating"))
        .filter_map(|n| n.metadata.name.clone())
        .collect()
}

/// Namespaces (active) lacking an object of `name` among `present`
/// (namespace, name) pairs.
pub fn missing(
    namespaces: &[Namespace],
    present: &BTreeSet<(String, String)>,
    name: &str,
) -> Vec<String> {
    active(namespaces)
        .into_iter()
        .filter(|ns| !present.contains(&(ns.clone(), name.to_owned())))
        .collect()
}

/// Starts the ServiceAccount controller; it runs until the process ends.
pub fn spawn_service_accounts(clients: &Clients) {
    let client = clients(SERVICE_ACCOUNTS);
    tokio::spawn(async move {
        let wake = Arc::new(Notify::new());
        let namespaces = cache::cache(Api::<Namespace>::all(client.clone()), wake.clone());
        let accounts = cache::cache(Api::<ServiceAccount>::all(client.clone()), wake.clone());
        cache::ready(&[&namespaces], Duration::from_secs(10)).await;
        cache::ready(&[&accounts], Duration::from_secs(10)).await;
        loop {
            let present: BTreeSet<(String, String)> = cache::all(&accounts)
                .into_iter()
                .filter_map(|a| Some((a.metadata.namespace?, a.metadata.name?)))
                .collect();
            for ns in missing(&cache::all(&namespaces), &present, DEFAULT) {
                let mut account = ServiceAccount::default();
                account.metadata.name = Some(DEFAULT.to_owned());
                let api = Api::<ServiceAccount>::namespaced(client.clone(), &ns);
                match api.create(&PostParams::default(), &account).await {
                    Ok(_) => tracing::info!(namespace = %ns, "default ServiceAccount created"),
                    Err(kube::Error::Api(e)) if e.code == 409 || e.code == 403 => {}
                    Err(e) => {
                        tracing::debug!(namespace = %ns, error = %e, "creating the default ServiceAccount")
                    }
                }
            }
            cache::wait(&wake, RESYNC).await;
        }
    });
}

/// Starts the root CA publisher with the cluster CA (PEM); it runs
/// until the process ends.
pub fn spawn_root_ca_publisher(clients: &Clients, ca_pem: String) {
    let client = clients(ROOT_CA);
    tokio::spawn(async move {
        let wake = Arc::new(Notify::new());
        let namespaces = cache::cache(Api::<Namespace>::all(client.clone()), wake.clone());
        let maps = cache::cache_with(
            Api::<ConfigMap>::all(client.clone()),
            watcher::Config::default().fields(&format!("metadata.name={}", rootca::NAME)),
            wake.clone(),
        );
        cache::ready(&[&namespaces], Duration::from_secs(10)).await;
        cache::ready(&[&maps], Duration::from_secs(10)).await;
        loop {
            let current = cache::all(&maps);
            for ns in active(&cache::all(&namespaces)) {
                let existing = current.iter().find(|c| {
                    c.metadata.namespace.as_deref() == Some(&ns)
                        && c.metadata.name.as_deref() == Some(rootca::NAME)
                });
                let api = Api::<ConfigMap>::namespaced(client.clone(), &ns);
                let result = match rootca::plan(&ns, existing, &ca_pem) {
                    rootca::Action::None => continue,
                    rootca::Action::Create(cm) => api.create(&PostParams::default(), &cm).await,
                    rootca::Action::Update(cm) => {
                        api.replace(rootca::NAME, &PostParams::default(), &cm).await
                    }
                };
                match result {
                    Ok(_) => {}
                    // Already there, or the namespace is going away.
                    Err(kube::Error::Api(e)) if matches!(e.code, 409 | 403 | 404) => {}
                    Err(e) => {
                        tracing::debug!(namespace = %ns, error = %e, "publishing the root CA")
                    }
                }
            }
            cache::wait(&wake, RESYNC).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NamespaceStatus;

    #[test]
    fn active_namespaces_lacking_the_object() {
        let ns = |name: &str, phase: &str| {
            let mut n = Namespace {
                status: Some(NamespaceStatus {
                    phase: Some(phase.into()),
                    ..Default::default()
                }),
                ..Default::default()
            };
            n.metadata.name = Some(name.into());
            n
        };
        let namespaces = vec![
            ns("a", "Active"),
            ns("b", "Active"),
            ns("gone", "Terminating"),
        ];
        let present = BTreeSet::from([
            ("a".to_owned(), "default".to_owned()),
            ("b".to_owned(), "other".to_owned()),
        ]);
        assert_eq!(
            missing(&namespaces, &present, "default"),
            vec!["b".to_owned()]
        );
    }
}
