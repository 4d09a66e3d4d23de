//! Persistent volumes: the binder with berth's built-in local-path
//! provisioner ([`binder`], [`provision`]), the default `local-path`
//! StorageClass ([`class`]), and the pvc/pv protection finalizers
//! ([`protection`]), each loop acting as its kube ServiceAccount.

pub mod binder;
pub mod class;
pub mod consumers;
pub mod matching;
pub mod protection;
pub mod provision;
pub mod quantity;
mod reclaim;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, ListParams, PostParams};
use tokio::sync::Notify;

use crate::Clients;
use crate::util::{cache, events};
use protection::Finalizer;

/// The binder's ServiceAccount.
pub const BINDER: &str = "persistent-volume-binder";
/// The claim protection's ServiceAccount.
pub const PVC_PROTECTION: &str = "pvc-protection-controller";
/// The volume protection's ServiceAccount.
pub const PV_PROTECTION: &str = "pv-protection-controller";
/// berth's provisioner name.
pub const PROVISIONER: &str = "berth.dev/local-path";

/// Settings of the volume controllers.
#[derive(Clone, Debug)]
pub struct VolumeConfig {
    /// Where provisioned volumes' directories go (`berth server` passes
    /// `<root>/storage`).
    pub data_dir: PathBuf,
    /// The provisioner name of the shipped class (`rancher.io/local-path`
    /// is served as well).
    pub provisioner: String,
    /// How often everything is re-examined without changes (kube's 15 s).
    pub resync: Duration,
}

impl VolumeConfig {
    /// The defaults, volumes under `data_dir`.
    pub fn new(data_dir: PathBuf) -> VolumeConfig {
        VolumeConfig {
            data_dir,
            provisioner: PROVISIONER.to_owned(),
            resync: Duration::from_secs(15),
        }
    }
}

/// Starts the binder (creating the `local-path` class if absent) and
/// the protection controllers; they run until the process ends.
pub fn spawn(clients: &Clients, config: VolumeConfig) {
    let binder = clients(BINDER);
    let resync = config.resync;
    tokio::spawn(async move { run_binder(binder, config).await });
    let pvc = clients(PVC_PROTECTION);
    tokio::spawn(async move { run_claim_protection(pvc, resync).await });
    let pv = clients(PV_PROTECTION);
    tokio::spawn(async move { run_volume_protection(pv, resync).await });
}

async fn ensure_class(client: &kube::Client, provisioner: &str) {
    let api = Api::<StorageClass>::all(client.clone());
    match api.get_opt(class::LOCAL_PATH).await {
        Ok(Some(_)) => {}
        Ok(None) => match api
            .create(&PostParams::default(), &class::local_path(provisioner))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => tracing::warn!(error = %e, "creating the local-path StorageClass"),
        },
        Err(e) => tracing::warn!(error = %e, "reading the local-path StorageClass"),
    }
}

async fn run_binder(client: kube::Client, config: VolumeConfig) {
    ensure_class(&client, &config.provisioner).await;
    let wake = Arc::new(Notify::new());
    let claims = cache::cache(
        Api::<PersistentVolumeClaim>::all(client.clone()),
        wake.clone(),
    );
    let volumes = cache::cache(Api::<PersistentVolume>::all(client.clone()), wake.clone());
    let classes = cache::cache(Api::<StorageClass>::all(client.clone()), wake.clone());
    let nodes = cache::cache(Api::<Node>::all(client.clone()), wake.clone());
    let pods = cache::cache(Api::<Pod>::all(client.clone()), wake.clone());
    let limit = Duration::from_secs(10);
    cache::ready(&[&claims], limit).await;
    cache::ready(&[&volumes], limit).await;
    cache::ready(&[&classes], limit).await;
    cache::ready(&[&nodes], limit).await;
    cache::ready(&[&pods], limit).await;
    let resync = config.resync;
    let mut binder = binder::Binder {
        recorder: events::reporter(client.clone(), "persistentvolume-controller"),
        provisioner_recorder: events::reporter(client.clone(), &config.provisioner),
        client,
        config,
        announced: HashSet::new(),
    };
    loop {
        let world = binder::World {
            claims: cache::all(&claims),
            volumes: cache::all(&volumes),
            classes: cache::all(&classes),
            nodes: cache::all(&nodes),
            pods: cache::all(&pods),
        };
        binder.pass(&world).await;
        cache::wait(&wake, resync).await;
    }
}

async fn run_claim_protection(client: kube::Client, resync: Duration) {
    let wake = Arc::new(Notify::new());
    let claims = cache::cache(
        Api::<PersistentVolumeClaim>::all(client.clone()),
        wake.clone(),
    );
    let pods = cache::cache(Api::<Pod>::all(client.clone()), wake.clone());
    cache::ready(&[&claims], Duration::from_secs(10)).await;
    cache::ready(&[&pods], Duration::from_secs(10)).await;
    loop {
        let all_pods = cache::all(&pods);
        for claim in cache::all(&claims) {
            let mut what = protection::for_claim(&claim, &all_pods);
            let ns = claim.metadata.namespace.clone().unwrap_or_default();
            let api = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns);
            if what == Finalizer::Remove {
                // The cache may lag: ask the API server for the pods.
                match Api::<Pod>::namespaced(client.clone(), &ns)
                    .list(&ListParams::default())
                    .await
                {
                    Ok(live) if protection::claim_in_use(&claim, &live.items) => {
                        what = Finalizer::Keep
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "listing pods");
                        what = Finalizer::Keep;
                    }
                }
            }
            if what == Finalizer::Keep {
                continue;
            }
            let mut next = claim.clone();
            next.metadata.finalizers = Some(protection::apply(
                &claim.metadata,
                protection::PVC_PROTECTION,
                &what,
            ));
            let name = claim.metadata.name.clone().unwrap_or_default();
            if let Err(e) = api.replace(&name, &PostParams::default(), &next).await {
                tracing::debug!(claim = %name, error = %e, "pvc-protection finalizer");
            }
        }
        cache::wait(&wake, resync).await;
    }
}

async fn run_volume_protection(client: kube::Client, resync: Duration) {
    let wake = Arc::new(Notify::new());
    let volumes = cache::cache(Api::<PersistentVolume>::all(client.clone()), wake.clone());
    cache::ready(&[&volumes], Duration::from_secs(10)).await;
    let api = Api::<PersistentVolume>::all(client.clone());
    loop {
        for pv in cache::all(&volumes) {
            let what = protection::for_volume(&pv);
            if what == Finalizer::Keep {
                continue;
            }
            let mut next = pv.clone();
            next.metadata.finalizers = Some(protection::apply(
                &pv.metadata,
                protection::PV_PROTECTION,
                &what,
            ));
            let name = pv.metadata.name.clone().unwrap_or_default();
            if let Err(e) = api.replace(&name, &PostParams::default(), &next).await {
                tracing::debug!(volume = %name, error = %e, "pv-protection finalizer");
            }
        }
        cache::wait(&wake, resync).await;
    }
}
