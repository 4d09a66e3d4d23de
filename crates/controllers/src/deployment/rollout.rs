//! The rollout procedures of a Deployment sync: kube's rolloutRolling,
//! rolloutRecreate, sync (scaling), status and cleanup, acting through
//! the API.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::DeleteParams;

use super::revision;
use super::rolling::{self, replicas, spec_replicas};
use super::status;
use super::sync::{Ctl, SyncError, refs, split};
use crate::util::api as apierr;
use crate::util::owner;
use crate::util::workers::Next;

impl Ctl {
    /// kube's sync(): scaling (proportional for RollingUpdate), cleanup
    /// while paused, status.
    pub(super) async fn sync_scale(
        &self,
        d: &mut Deployment,
        sets: &mut Vec<ReplicaSet>,
        paused: bool,
    ) -> Result<(), SyncError> {
        let (new, old) = self.sync_revision(d, sets, false).await?;
        self.scale_all(d, sets, new, &old).await?;
        if paused {
            self.cleanup(d, sets, &old).await?;
        }
        self.sync_status(d, sets).await
    }

    pub(super) async fn scale_all(
        &self,
        d: &Deployment,
        sets: &mut [ReplicaSet],
        new: Option<usize>,
        old: &[usize],
    ) -> Result<(), SyncError> {
        let want = replicas(d);
        // kube's FindActiveOrLatest.
        let mut old_sorted = old.to_vec();
        old_sorted.sort_by(|a, b| rolling::by_creation(&sets[*b], &sets[*a]));
        let active: Vec<usize> = old_sorted
            .iter()
            .copied()
            .chain(new)
            .filter(|i| spec_replicas(&sets[*i]) > 0)
            .collect();
        let only = match active.len() {
            0 => new.or(old_sorted.first().copied()),
            1 => Some(active[0]),
            _ => None,
        };
        if let Some(i) = only {
            if spec_replicas(&sets[i]) != want {
                self.scale(d, &mut sets[i], want, None).await?;
            }
            return Ok(());
        }
        if let Some(n) = new
            && is_saturated(d, &sets[n])
        {
            let active_old: Vec<usize> = old
                .iter()
                .copied()
                .filter(|i| spec_replicas(&sets[*i]) > 0)
                .collect();
            for i in active_old {
                self.scale(d, &mut sets[i], 0, None).await?;
            }
            return Ok(());
        }
        if rolling::is_rolling(d) {
            let active_refs: Vec<&ReplicaSet> = active.iter().map(|i| &sets[*i]).collect();
            let (plan, op) = rolling::proportional(d, &active_refs);
            let op = (!op.is_empty()).then_some(op);
            for (pos, size) in plan {
                let i = active[pos];
                self.scale(d, &mut sets[i], size, Some(op.unwrap_or("up")))
                    .await?;
            }
        }
        Ok(())
    }

    /// kube's syncDeploymentStatus: counts and Available only.
    pub(super) async fn sync_status(
        &self,
        d: &mut Deployment,
        sets: &[ReplicaSet],
    ) -> Result<(), SyncError> {
        let (new, old) = split(d, sets);
        let mut all = refs(sets, &old);
        if let Some(n) = new {
            all.push(&sets[n]);
        }
        let s = status::calculate_status(d, &all, new.map(|n| &sets[n]), Timestamp::now());
        if d.status.as_ref() == Some(&s) {
            return Ok(());
        }
        d.status = Some(s);
        self.update_status(d).await
    }

    /// kube's syncRolloutStatus; asks to look again before the progress
    /// deadline passes.
    pub(super) async fn sync_rollout_status(
        &self,
        d: &mut Deployment,
        sets: &[ReplicaSet],
        new: Option<usize>,
        old: &[usize],
    ) -> Result<Next, SyncError> {
        let mut all = refs(sets, old);
        if let Some(n) = new {
            all.push(&sets[n]);
        }
        let now = Timestamp::now();
        let s = status::rollout_status(d, &all, new.map(|n| &sets[n]), now);
        if d.status.as_ref() == Some(&s) {
            return Ok(status::requeue_stuck(d, &s, now)
                .map(Next::After)
                .unwrap_or_default());
        }
        d.status = Some(s);
        self.update_status(d).await?;
        Ok(Next::Done)
    }

    pub(super) async fn rollout_rolling(
        &self,
        d: &mut Deployment,
        sets: &mut Vec<ReplicaSet>,
    ) -> Result<Next, SyncError> {
        let (new, old) = self.sync_revision(d, sets, true).await?;
        let Some(n) = new else {
            return self.sync_rollout_status(d, sets, new, &old).await;
        };
        // reconcileNewReplicaSet.
        let want = replicas(d);
        let new_size = spec_replicas(&sets[n]);
        if new_size != want {
            let target = if new_size > want {
                want
            } else {
                let mut all = refs(sets, &old);
                all.push(&sets[n]);
                rolling::new_rs_new_replicas(d, &all, &sets[n])
            };
            if self.scale(d, &mut sets[n], target, None).await? {
                return self.sync_rollout_status(d, sets, new, &old).await;
            }
        }
        // reconcileOldReplicaSets.
        let active_old: Vec<usize> = old
            .iter()
            .copied()
            .filter(|i| spec_replicas(&sets[*i]) > 0)
            .collect();
        if !active_old.is_empty() {
            let mut all = refs(sets, &old);
            all.push(&sets[n]);
            let max_down = rolling::max_scaled_down(d, &all, Some(&sets[n]));
            if max_down > 0 {
                let mut scaled = false;
                let plan = rolling::cleanup_unhealthy(&refs(sets, &active_old), max_down);
                for (pos, size) in plan {
                    scaled |= self
                        .scale(d, &mut sets[active_old[pos]], size, None)
                        .await?;
                }
                let mut all = refs(sets, &active_old);
                all.push(&sets[n]);
                let plan = rolling::scale_down_old(d, &all, &refs(sets, &active_old));
                for (pos, size) in plan {
                    scaled |= self
                        .scale(d, &mut sets[active_old[pos]], size, None)
                        .await?;
                }
                if scaled {
                    return self.sync_rollout_status(d, sets, new, &old).await;
                }
            }
        }
        if status::complete(d, &d.status.clone().unwrap_or_default()) {
            self.cleanup(d, sets, &old).await?;
        }
        self.sync_rollout_status(d, sets, new, &old).await
    }

    pub(super) async fn rollout_recreate(
        &self,
        d: &mut Deployment,
        sets: &mut Vec<ReplicaSet>,
    ) -> Result<Next, SyncError> {
        let (mut new, mut old) = self.sync_revision(d, sets, false).await?;
        let mut scaled = false;
        for i in old.clone() {
            if spec_replicas(&sets[i]) > 0 {
                scaled |= self.scale(d, &mut sets[i], 0, None).await?;
            }
        }
        if scaled {
            return self.sync_rollout_status(d, sets, new, &old).await;
        }
        if self.old_pods_running(sets, new, &old) {
            return self.sync_rollout_status(d, sets, new, &old).await;
        }
        if new.is_none() {
            (new, old) = self.sync_revision(d, sets, true).await?;
        }
        if let Some(n) = new {
            let want = replicas(d);
            if spec_replicas(&sets[n]) != want {
                self.scale(d, &mut sets[n], want, None).await?;
            }
        }
        if status::complete(d, &d.status.clone().unwrap_or_default()) {
            self.cleanup(d, sets, &old).await?;
        }
        self.sync_rollout_status(d, sets, new, &old).await
    }

    /// kube's oldPodsRunning: old sets report pods, or pods of old sets
    /// (terminating ones too) have not finished.
    pub(super) fn old_pods_running(
        &self,
        sets: &[ReplicaSet],
        new: Option<usize>,
        old: &[usize],
    ) -> bool {
        if old.iter().map(|i| rolling::actual(&sets[*i])).sum::<i32>() > 0 {
            return true;
        }
        let new_uid = new.and_then(|n| sets[n].metadata.uid.clone());
        let old_uids: Vec<String> = old
            .iter()
            .filter_map(|i| sets[*i].metadata.uid.clone())
            .collect();
        self.pods.state().iter().any(|p: &Arc<Pod>| {
            let Some(r) = owner::controller_of(&p.metadata) else {
                return false;
            };
            if Some(&r.uid) == new_uid.as_ref() || !old_uids.contains(&r.uid) {
                return false;
            }
            !matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Failed" | "Succeeded")
            )
        })
    }

    /// kube's cleanupDeployment: deletes the oldest empty ReplicaSets
    /// beyond revisionHistoryLimit.
    pub(super) async fn cleanup(
        &self,
        d: &Deployment,
        sets: &[ReplicaSet],
        old: &[usize],
    ) -> Result<(), SyncError> {
        let Some(limit) = d.spec.as_ref().and_then(|s| s.revision_history_limit) else {
            return Ok(());
        };
        let mut alive: Vec<&ReplicaSet> = old
            .iter()
            .map(|i| &sets[*i])
            .filter(|r| r.metadata.deletion_timestamp.is_none())
            .collect();
        let diff = i64::try_from(alive.len()).unwrap_or(0) - i64::from(limit);
        if diff <= 0 {
            return Ok(());
        }
        alive.sort_by(|a, b| {
            revision::revision(a)
                .cmp(&revision::revision(b))
                .then_with(|| rolling::by_creation(a, b))
        });
        let ns = d.namespace().unwrap_or_default();
        for rs in alive.into_iter().take(usize::try_from(diff).unwrap_or(0)) {
            let observed = rs
                .status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .unwrap_or(0);
            if rolling::actual(rs) != 0
                || spec_replicas(rs) != 0
                || rs.metadata.generation.unwrap_or(0) > observed
            {
                continue;
            }
            match self
                .rs_api(&ns)
                .delete(&rs.name_any(), &DeleteParams::default())
                .await
            {
                Ok(_) => {}
                Err(e) if apierr::is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// kube's IsSaturated: the new set has all the Deployment's replicas, says
/// so in its desired-replicas annotation, and has them all available.
fn is_saturated(d: &Deployment, rs: &ReplicaSet) -> bool {
    let desired = rs
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(revision::DESIRED_REPLICAS))
        .and_then(|v| v.parse::<i32>().ok());
    let want = replicas(d);
    spec_replicas(rs) == want && desired == Some(want) && rolling::available(rs) == want
}
