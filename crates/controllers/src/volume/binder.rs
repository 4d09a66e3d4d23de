//! The binder (kube's persistentvolume-controller, acting as
//! `kube-system/persistent-volume-binder`) with the built-in local-path
//! provisioner: binds claims to volumes (static ones matched by
//! [`super::matching`], or provisioned), keeps both sides' phases, and
//! reclaims volumes whose claim is gone.

use std::collections::HashSet;

use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};

use super::consumers::{consumer_node, pick_node};
use super::{VolumeConfig, class, matching, provision};
use crate::util::events;
use kube::Resource;

/// Set on a claim when the binding is complete.
pub const BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
/// Set on the side this controller bound.
pub const BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
/// The node chosen for a claim that waits for its first consumer.
pub const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// The provisioner expected to make a claim's volume.
pub const STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
/// Its beta spelling, still set by kube.
pub const STORAGE_PROVISIONER_BETA: &str = "volume.beta.kubernetes.io/storage-provisioner";
/// The provisioner name k3s's local-path class uses, also served.
pub const RANCHER_LOCAL_PATH: &str = "rancher.io/local-path";

/// What one pass sees.
pub struct World {
    /// Every claim.
    pub claims: Vec<PersistentVolumeClaim>,
    /// Every volume.
    pub volumes: Vec<PersistentVolume>,
    /// Every class.
    pub classes: Vec<StorageClass>,
    /// Every node.
    pub nodes: Vec<Node>,
    /// Every pod.
    pub pods: Vec<Pod>,
}

/// The binder's clients and memory.
pub struct Binder {
    /// Acting as persistent-volume-binder.
    pub client: kube::Client,
    /// Settings.
    pub config: VolumeConfig,
    /// Events.
    pub recorder: kube::runtime::events::Recorder,
    /// Events of the built-in provisioner.
    pub provisioner_recorder: kube::runtime::events::Recorder,
    /// (claim uid, reason) already announced.
    pub announced: HashSet<(String, String)>,
}

pub(super) fn annotation<'a>(meta: &'a kube::api::ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

pub(super) fn phase_of_volume(pv: &PersistentVolume) -> &str {
    pv.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

pub(super) fn phase_of_claim(claim: &PersistentVolumeClaim) -> &str {
    claim
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

impl Binder {
    pub(super) fn ours(&self, provisioner: &str) -> bool {
        provisioner == self.config.provisioner || provisioner == RANCHER_LOCAL_PATH
    }

    /// One pass over every claim, then every volume.
    pub async fn pass(&mut self, world: &World) {
        for claim in &world.claims {
            if let Err(e) = self.sync_claim(world, claim).await {
                tracing::debug!(claim = ?claim.metadata.name, error = %e, "syncing a claim");
            }
        }
        for volume in &world.volumes {
            if let Err(e) = self.sync_volume(world, volume).await {
                tracing::debug!(volume = ?volume.metadata.name, error = %e, "syncing a volume");
            }
        }
    }

    fn claims(&self, claim: &PersistentVolumeClaim) -> Api<PersistentVolumeClaim> {
        Api::namespaced(
            self.client.clone(),
            claim.metadata.namespace.as_deref().unwrap_or("default"),
        )
    }

    pub(super) fn volumes(&self) -> Api<PersistentVolume> {
        Api::all(self.client.clone())
    }

    /// An event about a claim reported as the volume controller, once
    /// per claim and reason.
    async fn announce(
        &mut self,
        claim: &PersistentVolumeClaim,
        warning: bool,
        reason: &str,
        note: String,
    ) {
        self.announce_once(false, claim, warning, reason, note)
            .await;
    }

    /// An event reported by the provisioner (as the external provisioner
    /// reports its own), once per claim and reason.
    async fn announce_as_provisioner(
        &mut self,
        claim: &PersistentVolumeClaim,
        warning: bool,
        reason: &str,
        note: String,
    ) {
        self.announce_once(true, claim, warning, reason, note).await;
    }

    async fn announce_once(
        &mut self,
        as_provisioner: bool,
        claim: &PersistentVolumeClaim,
        warning: bool,
        reason: &str,
        note: String,
    ) {
        let key = (
            claim.metadata.uid.clone().unwrap_or_default(),
            reason.to_owned(),
        );
        if !self.announced.insert(key) {
            return;
        }
        let (recorder, action) = if as_provisioner {
            (&self.provisioner_recorder, "Provision")
        } else {
            (&self.recorder, "Binding")
        };
        events::publish(
            recorder,
            &claim.object_ref(&()),
            warning,
            reason,
            action,
            note,
        )
        .await;
    }

    async fn sync_claim(
        &mut self,
        world: &World,
        claim: &PersistentVolumeClaim,
    ) -> Result<(), kube::Error> {
        if claim.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let bound_name = claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.clone())
            .filter(|n| !n.is_empty());
        if let Some(name) = bound_name {
            let Some(pv) = world
                .volumes
                .iter()
                .find(|v| v.metadata.name.as_deref() == Some(&name))
            else {
                if phase_of_claim(claim) == "Bound" {
                    self.set_claim_phase(claim, "Lost", None).await?;
                    self.announce(
                        claim,
                        true,
                        "ClaimLost",
                        "Bound claim has lost its PersistentVolume. Data on the volume is lost!"
                            .into(),
                    )
                    .await;
                }
                return Ok(());
            };
            let free = pv
                .spec
                .as_ref()
                .and_then(|s| s.claim_ref.as_ref())
                .is_none();
            if free || matching::bound_to(pv, claim) {
                return self.bind(pv, claim).await;
            }
            self.announce(
                claim,
                true,
                "FailedBinding",
                format!("volume \"{name}\" already bound to a different claim."),
            )
            .await;
            return Ok(());
        }
        // Unbound: Pending (the API server defaults it; kube's binder
        // writes it too).
        if phase_of_claim(claim).is_empty() {
            self.set_claim_phase(claim, "Pending", None).await?;
            return Ok(());
        }
        // A claim without a class gets the default one, when
        // there is one (kube's retroactive default class assignment).
        let requested_class = claim
            .spec
            .as_ref()
            .and_then(|s| s.storage_class_name.clone());
        if requested_class.is_none()
            && let Some(default) = class::default_class(&world.classes)
        {
            let mut next = claim.clone();
            next.spec.get_or_insert_default().storage_class_name = default.metadata.name.clone();
            self.claims(claim)
                .replace(
                    claim.metadata.name.as_deref().unwrap_or(""),
                    &PostParams::default(),
                    &next,
                )
                .await?;
            return Ok(());
        }
        let class_name = requested_class.unwrap_or_default();
        let class = world
            .classes
            .iter()
            .find(|c| !class_name.is_empty() && c.metadata.name.as_deref() == Some(&class_name));
        let delayed =
            class.is_some_and(|c| c.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer"));
        let selected = annotation(&claim.metadata, SELECTED_NODE).map(str::to_owned);
        if delayed && selected.is_none() {
            if let Some(node) = consumer_node(&world.pods, claim) {
                let mut next = claim.clone();
                next.metadata
                    .annotations
                    .get_or_insert_default()
                    .insert(SELECTED_NODE.to_owned(), node);
                self.claims(claim)
                    .replace(
                        claim.metadata.name.as_deref().unwrap_or(""),
                        &PostParams::default(),
                        &next,
                    )
                    .await?;
            } else {
                self.announce(
                    claim,
                    false,
                    "WaitForFirstConsumer",
                    "waiting for first consumer to be created before binding".into(),
                )
                .await;
            }
            return Ok(());
        }
        let node = selected.as_deref().and_then(|n| {
            world
                .nodes
                .iter()
                .find(|x| x.metadata.name.as_deref() == Some(n))
        });
        if delayed && node.is_none() {
            // The chosen node is not (or no longer) there: wait for the
            // scheduler to choose again.
            return Ok(());
        }
        if let Some(pv) = matching::find(claim, &world.volumes, if delayed { node } else { None }) {
            return self.bind(pv, claim).await;
        }
        let Some(class) = class else {
            let note = if class_name.is_empty() {
                "no persistent volumes available for this claim and no storage class is set"
                    .to_owned()
            } else {
                format!("storageclass.storage.k8s.io \"{class_name}\" not found")
            };
            self.announce(claim, true, "FailedBinding", note).await;
            return Ok(());
        };
        if class.provisioner == "kubernetes.io/no-provisioner" {
            return Ok(());
        }
        // The built-in provisioner is external to the binder, as k3s's
        // local-path provisioner is to kube's: the same event first.
        self.mark_provisioner(claim, &class.provisioner).await?;
        self.announce(claim, false, "ExternalProvisioning", format!(
            "Waiting for a volume to be created either by the external provisioner '{}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered.",
            class.provisioner
        )).await;
        if !self.ours(&class.provisioner) {
            return Ok(());
        }
        // Immediate binding: the first ready node (berth runs one).
        let node = node.or_else(|| pick_node(&world.nodes));
        let Some(node) = node else {
            return Ok(());
        };
        self.provision(world, claim, class, node).await
    }

    async fn mark_provisioner(
        &self,
        claim: &PersistentVolumeClaim,
        provisioner: &str,
    ) -> Result<PersistentVolumeClaim, kube::Error> {
        if annotation(&claim.metadata, STORAGE_PROVISIONER) == Some(provisioner) {
            return Ok(claim.clone());
        }
        let mut next = claim.clone();
        let a = next.metadata.annotations.get_or_insert_default();
        a.insert(STORAGE_PROVISIONER.to_owned(), provisioner.to_owned());
        a.insert(STORAGE_PROVISIONER_BETA.to_owned(), provisioner.to_owned());
        self.claims(claim)
            .replace(
                claim.metadata.name.as_deref().unwrap_or(""),
                &PostParams::default(),
                &next,
            )
            .await
    }

    async fn provision(
        &mut self,
        world: &World,
        claim: &PersistentVolumeClaim,
        class: &StorageClass,
        node: &Node,
    ) -> Result<(), kube::Error> {
        let name = provision::volume_name(claim);
        if world
            .volumes
            .iter()
            .any(|v| v.metadata.name.as_deref() == Some(&name))
        {
            return Ok(());
        }
        let claim = self.mark_provisioner(claim, &class.provisioner).await?;
        let note = format!(
            "External provisioner is provisioning volume for claim \"{}/{}\"",
            claim.metadata.namespace.as_deref().unwrap_or(""),
            claim.metadata.name.as_deref().unwrap_or("")
        );
        self.announce_as_provisioner(&claim, false, "Provisioning", note)
            .await;
        let path = provision::directory(&self.config.data_dir, &claim, &name);
        if let Err(e) = provision::make_directory(&path) {
            self.announce_as_provisioner(
                &claim,
                true,
                "ProvisioningFailed",
                format!(
                    "failed to provision volume with StorageClass \"{}\": making {}: {e}",
                    class.metadata.name.as_deref().unwrap_or(""),
                    path.display()
                ),
            )
            .await;
            return Ok(());
        }
        let pv = provision::volume(&claim, class, &class.provisioner, node, &path);
        match self.volumes().create(&PostParams::default(), &pv).await {
            Ok(_) => {
                tracing::info!(volume = %name, path = %path.display(), "provisioned");
                self.announce_as_provisioner(
                    &claim,
                    false,
                    "ProvisioningSucceeded",
                    format!("Successfully provisioned volume {name}"),
                )
                .await;
                Ok(())
            }
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Binds both sides, each step only if needed: the volume's claimRef,
    /// its phase, the claim's volumeName and annotations, its status.
    async fn bind(
        &self,
        pv: &PersistentVolume,
        claim: &PersistentVolumeClaim,
    ) -> Result<(), kube::Error> {
        let pv_name = pv.metadata.name.clone().unwrap_or_default();
        let mut pv = pv.clone();
        let current_ref = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
        let needs_ref = current_ref.is_none_or(|r| {
            r.uid.as_deref().unwrap_or("").is_empty() || !matching::bound_to(&pv, claim)
        });
        if needs_ref {
            let was_free = current_ref.is_none();
            pv.spec.get_or_insert_default().claim_ref = Some(provision::claim_ref(claim));
            if was_free {
                pv.metadata
                    .annotations
                    .get_or_insert_default()
                    .insert(BOUND_BY_CONTROLLER.to_owned(), "yes".to_owned());
            }
            pv = self
                .volumes()
                .replace(&pv_name, &PostParams::default(), &pv)
                .await?;
        }
        if phase_of_volume(&pv) != "Bound" {
            let status = pv.status.get_or_insert_default();
            status.phase = Some("Bound".into());
            status.last_phase_transition_time = Some(Time(Timestamp::now()));
            pv = self
                .volumes()
                .replace_status(&pv_name, &PostParams::default(), &pv)
                .await?;
        }
        let claim_name = claim.metadata.name.clone().unwrap_or_default();
        let mut next = claim.clone();
        let spec = next.spec.get_or_insert_default();
        let set_name = spec.volume_name.as_deref() != Some(pv_name.as_str());
        if set_name {
            spec.volume_name = Some(pv_name.clone());
        }
        let annotations = next.metadata.annotations.get_or_insert_default();
        let mut changed = set_name;
        if annotations.get(BIND_COMPLETED).map(String::as_str) != Some("yes") {
            annotations.insert(BIND_COMPLETED.to_owned(), "yes".to_owned());
            changed = true;
        }
        if set_name {
            annotations.insert(BOUND_BY_CONTROLLER.to_owned(), "yes".to_owned());
        }
        if changed {
            next = self
                .claims(claim)
                .replace(&claim_name, &PostParams::default(), &next)
                .await?;
        }
        let pv_spec = pv.spec.clone().unwrap_or_default();
        let status = next.status.get_or_insert_default();
        if status.phase.as_deref() != Some("Bound")
            || status.capacity != pv_spec.capacity
            || status.access_modes != pv_spec.access_modes
        {
            status.phase = Some("Bound".into());
            status.capacity = pv_spec.capacity;
            status.access_modes = pv_spec.access_modes;
            self.claims(claim)
                .replace_status(&claim_name, &PostParams::default(), &next)
                .await?;
            tracing::info!(claim = %claim_name, volume = %pv_name, "bound");
        }
        Ok(())
    }

    async fn set_claim_phase(
        &self,
        claim: &PersistentVolumeClaim,
        phase: &str,
        _reason: Option<&str>,
    ) -> Result<(), kube::Error> {
        let mut next = claim.clone();
        next.status.get_or_insert_default().phase = Some(phase.into());
        self.claims(claim)
            .replace_status(
                claim.metadata.name.as_deref().unwrap_or(""),
                &PostParams::default(),
                &next,
            )
            .await
            .map(|_| ())
    }
}
