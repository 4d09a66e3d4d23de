//! The volume side of the binder: phases follow the claim, and a volume
//! whose claim is gone is Released, then (reclaim policy Delete, made by
//! the built-in provisioner) removed with its directory.

use std::path::Path;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, PostParams};

use super::binder::{Binder, World, annotation, phase_of_volume};
use super::provision;
use crate::util::events;
use kube::Resource;

impl Binder {
    pub(super) async fn set_volume_phase(
        &self,
        pv: &PersistentVolume,
        phase: &str,
    ) -> Result<(), kube::Error> {
        if phase_of_volume(pv) == phase {
            return Ok(());
        }
        let mut next = pv.clone();
        let status = next.status.get_or_insert_default();
        status.phase = Some(phase.into());
        status.last_phase_transition_time = Some(Time(Timestamp::now()));
        self.volumes()
            .replace_status(
                pv.metadata.name.as_deref().unwrap_or(""),
                &PostParams::default(),
                &next,
            )
            .await
            .map(|_| ())
    }

    pub(super) async fn sync_volume(
        &self,
        world: &World,
        pv: &PersistentVolume,
    ) -> Result<(), kube::Error> {
        if pv.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let Some(r) = pv.spec.as_ref().and_then(|s| s.claim_ref.clone()) else {
            return self.set_volume_phase(pv, "Available").await;
        };
        let uid = r.uid.clone().unwrap_or_default();
        if uid.is_empty() {
            // Pre-bound by an administrator to a claim yet to come.
            return self.set_volume_phase(pv, "Available").await;
        }
        let ns = r.namespace.clone().unwrap_or_default();
        let name = r.name.clone().unwrap_or_default();
        let cached = world.claims.iter().find(|c| {
            c.metadata.namespace.as_deref() == Some(&ns)
                && c.metadata.name.as_deref() == Some(&name)
        });
        if let Some(claim) = cached.filter(|c| c.metadata.uid.as_deref() == Some(&uid)) {
            let claimed = claim.spec.as_ref().and_then(|s| s.volume_name.as_deref())
                == pv.metadata.name.as_deref();
            if claimed {
                return self.set_volume_phase(pv, "Bound").await;
            }
            return Ok(());
        }
        // The cache may lag: ask the API server before releasing.
        let live = Api::<PersistentVolumeClaim>::namespaced(self.client.clone(), &ns)
            .get_opt(&name)
            .await?;
        if live.is_some_and(|c| c.metadata.uid.as_deref() == Some(&uid)) {
            return Ok(());
        }
        if phase_of_volume(pv) != "Failed" {
            self.set_volume_phase(pv, "Released").await?;
        }
        let policy = pv
            .spec
            .as_ref()
            .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
            .unwrap_or("Retain");
        let provisioner = annotation(&pv.metadata, provision::PROVISIONED_BY).unwrap_or("");
        if policy != "Delete" || !self.ours(provisioner) {
            return Ok(());
        }
        self.reclaim(pv).await
    }

    /// Deletes a released volume of ours: its directory, then the object.
    async fn reclaim(&self, pv: &PersistentVolume) -> Result<(), kube::Error> {
        let pv_name = pv.metadata.name.clone().unwrap_or_default();
        if let Some(path) = pv
            .spec
            .as_ref()
            .and_then(|s| s.host_path.as_ref())
            .map(|h| h.path.clone())
            && let Err(e) = provision::remove_directory(&self.config.data_dir, Path::new(&path))
        {
            tracing::warn!(volume = %pv_name, error = %e, "removing the volume's directory");
            events::publish(
                &self.recorder,
                &pv.object_ref(&()),
                true,
                "VolumeFailedDelete",
                "Delete",
                format!("removing {path}: {e}"),
            )
            .await;
            return self.set_volume_phase(pv, "Failed").await;
        }
        match self
            .volumes()
            .delete(&pv_name, &DeleteParams::default())
            .await
        {
            Ok(_) => {
                tracing::info!(volume = %pv_name, "deleted with its claim");
                Ok(())
            }
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }
}
