//! One sync of one Deployment, as upstream's `syncDeployment`: claim its
//! ReplicaSets, then (in this order of precedence) only report status while
//! it is deleted, keep the replica count while it is paused, roll back when
//! the deprecated rollback annotation asks, scale proportionally when only
//! `spec.replicas` changed, and otherwise roll out with its strategy.
//!
//! [`Syncer`] carries the Deployment and its ReplicaSets through a sync and
//! replaces them with what the API server returns after each write, so a
//! later step never writes from a stale copy.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::core::{Selector, SelectorExt};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use super::history;
use super::progress;
use super::replicasets as rsu;
use super::spec;
use super::status;
use super::{Ctx, Error};
use crate::events::Record;
use crate::replicaset::claim::{self, Claim};

/// A Deployment and its ReplicaSets during one sync.
pub struct Syncer<'a> {
    pub ctx: &'a Ctx,
    pub d: Deployment,
    /// The ReplicaSets the Deployment controls.
    pub rs: Vec<ReplicaSet>,
}

/// Reconcile one Deployment.
pub async fn reconcile(d: Arc<Deployment>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    // Until the ReplicaSets are listed every Deployment would look new.
    ctx.replicasets.wait_ready().await;
    let mut s = Syncer {
        ctx: &ctx,
        d: (*d).clone(),
        rs: Vec::new(),
    };
    let selector = s.d.spec.selector.clone();
    let empty = selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(|m| m.is_empty());
    if empty {
        s.event(
            "Warning",
            "SelectingAll",
            "This deployment is selecting all pods. A non-empty selector is required.".into(),
        );
        let mut st = s.d.status.clone().unwrap_or_default();
        if st.observed_generation < s.d.metadata.generation {
            st.observed_generation = s.d.metadata.generation;
            s.write_status(st).await?;
        }
        return Ok(Action::await_change());
    }
    let selector = match Selector::try_from(selector) {
        Ok(sel) => sel,
        Err(e) => {
            // Validation makes this unreachable; nothing to do until fixed.
            tracing::warn!(deployment = %s.d.name_any(), error = %e, "invalid selector");
            return Ok(Action::await_change());
        }
    };
    s.rs = s.claim(&selector).await?;
    let wake = s.sync().await?;
    Ok(wake.map_or_else(Action::await_change, Action::requeue))
}

impl Syncer<'_> {
    /// Everything after claiming; returns when to look again.
    async fn sync(&mut self) -> Result<Option<Duration>, Error> {
        if self.d.metadata.deletion_timestamp.is_some() {
            let (new, old) = self.new_and_old(false).await?;
            self.sync_status(new.as_ref(), &old).await?;
            return Ok(None);
        }
        if let Some(st) = progress::paused_condition(&self.d, status::now()) {
            self.write_status(st).await?;
        }
        if spec::paused(&self.d) {
            return self.sync_scale().await;
        }
        if let Some(to) = history::rollback_to(&self.d) {
            self.rollback(to).await?;
            return Ok(None);
        }
        let (new, old) = self.new_and_old(false).await?;
        let all: Vec<&ReplicaSet> = old.iter().chain(new.as_ref()).collect();
        if progress::is_scaling_event(&self.d, &all) {
            return self.sync_scale().await;
        }
        if spec::is_rolling(&self.d) {
            self.rollout_rolling().await
        } else {
            self.rollout_recreate().await
        }
    }

    /// Upstream's `sync`: scaling (or pausing) only, no rollout.
    async fn sync_scale(&mut self) -> Result<Option<Duration>, Error> {
        let (new, old) = self.new_and_old(false).await?;
        self.scale(new.as_ref(), &old).await?;
        if spec::paused(&self.d) && history::rollback_to(&self.d).is_none() {
            let old = self.split().1;
            self.cleanup(&old).await?;
        }
        let (new, old) = self.split();
        self.sync_status(new.as_ref(), &old).await?;
        Ok(None)
    }

    pub fn namespace(&self) -> String {
        self.d.namespace().unwrap_or_default()
    }

    pub fn name(&self) -> String {
        self.d.name_any()
    }

    pub fn rs_api(&self) -> Api<ReplicaSet> {
        Api::namespaced(self.ctx.client.clone(), &self.namespace())
    }

    fn d_api(&self) -> Api<Deployment> {
        Api::namespaced(self.ctx.client.clone(), &self.namespace())
    }

    /// Record an Event about the Deployment.
    pub fn event(&self, type_: &'static str, reason: &'static str, message: String) {
        self.ctx.events.record(Record {
            object: self.d.object_ref(&()),
            type_,
            reason,
            message,
        });
    }

    /// The current new ReplicaSet and the old ones.
    pub fn split(&self) -> (Option<ReplicaSet>, Vec<ReplicaSet>) {
        rsu::split(&self.d, self.rs.clone())
    }

    /// Keep `rs` (just written) in place of the copy we had.
    pub fn remember(&mut self, mut rs: ReplicaSet) -> ReplicaSet {
        rs.metadata.managed_fields = None;
        match self
            .rs
            .iter_mut()
            .find(|r| r.metadata.uid == rs.metadata.uid)
        {
            Some(slot) => *slot = rs.clone(),
            None => self.rs.push(rs.clone()),
        }
        rs
    }

    /// Replace a ReplicaSet (optimistically: the write carries the
    /// resourceVersion it was read at).
    pub async fn update_rs(&mut self, rs: ReplicaSet) -> Result<ReplicaSet, Error> {
        let name = rs.name_any();
        let rs = self
            .rs_api()
            .replace(&name, &PostParams::default(), &rs)
            .await?;
        Ok(self.remember(rs))
    }

    /// Write the Deployment's status (and its annotations, which the status
    /// endpoint takes too: that is how the revision annotation is set).
    pub async fn write_status(&mut self, st: DeploymentStatus) -> Result<(), Error> {
        let mut d = self.d.clone();
        d.status = Some(st);
        let mut fresh = self
            .d_api()
            .replace_status(&self.name(), &PostParams::default(), &d)
            .await?;
        fresh.metadata.managed_fields = None;
        self.d = fresh;
        Ok(())
    }

    /// Write the whole Deployment (a rollback changes its template).
    pub async fn write_deployment(&mut self, d: Deployment) -> Result<(), Error> {
        let mut fresh = self
            .d_api()
            .replace(&self.name(), &PostParams::default(), &d)
            .await?;
        fresh.metadata.managed_fields = None;
        self.d = fresh;
        Ok(())
    }

    /// Upstream's `scaleReplicaSet`: set the size and the replica
    /// annotations if either differs; whether the size changed. The Event
    /// says `op` ("up" or "down").
    pub async fn scale_rs(&mut self, rs: &ReplicaSet, to: i32, op: &str) -> Result<bool, Error> {
        let desired = spec::replicas(&self.d);
        let max = desired + spec::max_surge(&self.d);
        let from = rsu::replicas(rs);
        let resize = from != to;
        if !resize && !rsu::replicas_annotations_need_update(rs, desired, max) {
            return Ok(false);
        }
        let mut copy = rs.clone();
        copy.spec.replicas = Some(to);
        rsu::set_replicas_annotations(&mut copy, desired, max);
        let written = self.update_rs(copy).await?;
        if resize {
            self.event(
                "Normal",
                "ScalingReplicaSet",
                format!(
                    "Scaled {op} replica set {} from {from} to {to}",
                    written.name_any()
                ),
            );
        }
        Ok(resize)
    }

    /// Upstream's `scaleReplicaSetAndRecordEvent`: nothing if the size is
    /// already right.
    pub async fn scale_rs_to(&mut self, rs: &ReplicaSet, to: i32) -> Result<bool, Error> {
        let from = rsu::replicas(rs);
        if from == to {
            return Ok(false);
        }
        let op = if from < to { "up" } else { "down" };
        self.scale_rs(rs, to, op).await
    }

    /// Upstream's `syncDeploymentStatus`: the counts, no progress estimate.
    pub async fn sync_status(
        &mut self,
        new: Option<&ReplicaSet>,
        old: &[ReplicaSet],
    ) -> Result<(), Error> {
        let all: Vec<&ReplicaSet> = old.iter().chain(new).collect();
        let st = status::calculate(&all, new, &self.d, status::now());
        if !same_status(self.d.status.as_ref(), &st) {
            self.write_status(st).await?;
        }
        Ok(())
    }

    /// Upstream's `syncRolloutStatus`, over the ReplicaSets as they are now;
    /// returns when to check the deadline again.
    pub async fn sync_rollout_status(&mut self) -> Result<Option<Duration>, Error> {
        let (new, old) = self.split();
        let all: Vec<&ReplicaSet> = old.iter().chain(new.as_ref()).collect();
        let now = status::now();
        let st = progress::rollout_status(&all, new.as_ref(), &self.d, now);
        if same_status(self.d.status.as_ref(), &st) {
            return Ok(progress::recheck_in(&self.d, &st, now));
        }
        self.write_status(st).await?;
        Ok(None)
    }

    /// Delete a ReplicaSet (gone already is fine).
    pub async fn delete_rs(&mut self, rs: &ReplicaSet) -> Result<(), Error> {
        let dp = DeleteParams::default().preconditions(Preconditions {
            uid: rs.metadata.uid.clone(),
            resource_version: None,
        });
        match self
            .rs_api()
            .delete(&rs.name_any(), &dp)
            .await
            .map_err(Error::from)
        {
            Ok(_) => {}
            Err(e) if e.not_found() => {}
            Err(e) => return Err(e),
        }
        self.rs.retain(|r| r.metadata.uid != rs.metadata.uid);
        Ok(())
    }

    /// Adopt and release ReplicaSets by the selector (upstream's
    /// `ClaimReplicaSets`); returns the ones the Deployment controls.
    async fn claim(&self, selector: &Selector) -> Result<Vec<ReplicaSet>, Error> {
        let uid = self.d.uid().unwrap_or_default();
        let ns = self.namespace();
        let deleting = self.d.metadata.deletion_timestamp.is_some();
        let api = self.rs_api();
        let mut can_adopt: Option<Result<(), String>> = None;
        let mut out = Vec::new();
        for rs in self.ctx.replicasets.controlled_or_orphans(&ns, &uid) {
            if rs.metadata.namespace.as_deref() != Some(ns.as_str()) {
                continue;
            }
            let labels = rs.metadata.labels.clone().unwrap_or_default();
            let rs_uid = rs.uid().unwrap_or_default();
            match claim::decide(rs.as_ref(), &uid, deleting, selector.matches(&labels)) {
                Claim::Keep => out.push((*rs).clone()),
                Claim::Ignore => {}
                Claim::Adopt => {
                    // The cache may be behind a deletion or a replacement
                    // of the Deployment: check live before the first one.
                    if can_adopt.is_none() {
                        can_adopt = Some(self.recheck().await);
                    }
                    if let Some(Err(why)) = &can_adopt {
                        return Err(Error::Invalid(format!(
                            "can't adopt ReplicaSet {ns}/{} ({rs_uid}): {why}",
                            rs.name_any()
                        )));
                    }
                    let body =
                        claim::adopt_patch("apps/v1", "Deployment", &self.name(), &uid, &rs_uid);
                    match api
                        .patch(
                            &rs.name_any(),
                            &PatchParams::default(),
                            &Patch::Strategic(body),
                        )
                        .await
                    {
                        Ok(mut adopted) => {
                            adopted.metadata.managed_fields = None;
                            out.push(adopted);
                        }
                        Err(kube::Error::Api(s)) if s.code == 404 => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Claim::Release => {
                    let body = claim::release_patch(&uid, &rs_uid);
                    match api
                        .patch(
                            &rs.name_any(),
                            &PatchParams::default(),
                            &Patch::Strategic(body),
                        )
                        .await
                    {
                        // Gone, or recreated (the UID no longer matches): fine.
                        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 422 => {}
                        r => {
                            r?;
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Upstream's `RecheckDeletionTimestamp` over a live GET.
    async fn recheck(&self) -> Result<(), String> {
        let fresh = self
            .d_api()
            .get(&self.name())
            .await
            .map_err(|e| Error::from(e).to_string())?;
        let (want, got) = (
            self.d.uid().unwrap_or_default(),
            fresh.uid().unwrap_or_default(),
        );
        if want != got {
            return Err(format!(
                "original Deployment {}/{} is gone: got uid {got}, wanted {want}",
                self.namespace(),
                self.name()
            ));
        }
        if let Some(t) = &fresh.metadata.deletion_timestamp {
            return Err(format!(
                "{}/{} has just been deleted at {}",
                self.namespace(),
                self.name(),
                t.0
            ));
        }
        Ok(())
    }
}

fn zero_none(v: Option<i32>) -> Option<i32> {
    v.filter(|&n| n != 0)
}

/// Whether two statuses say the same (a zero count written out equals one
/// left out).
pub fn same_status(cur: Option<&DeploymentStatus>, new: &DeploymentStatus) -> bool {
    let norm = |s: &DeploymentStatus| {
        let mut s = s.clone();
        for f in [
            &mut s.replicas,
            &mut s.updated_replicas,
            &mut s.ready_replicas,
            &mut s.available_replicas,
            &mut s.unavailable_replicas,
        ] {
            *f = zero_none(*f);
        }
        s.observed_generation = s.observed_generation.filter(|&g| g != 0);
        if s.conditions.as_ref().is_some_and(|c| c.is_empty()) {
            s.conditions = None;
        }
        s
    };
    norm(cur.unwrap_or(&DeploymentStatus::default())) == norm(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn statuses_compare_like_their_json() {
        let a: DeploymentStatus =
            serde_json::from_value(json!({"replicas": 0, "observedGeneration": 2,
            "terminatingReplicas": 0, "conditions": []}))
            .unwrap();
        let b: DeploymentStatus =
            serde_json::from_value(json!({"observedGeneration": 2, "terminatingReplicas": 0}))
                .unwrap();
        assert!(same_status(Some(&a), &b));
        // terminatingReplicas is a pointer upstream: 0 is not unknown.
        let c: DeploymentStatus = serde_json::from_value(json!({"observedGeneration": 2})).unwrap();
        assert!(!same_status(Some(&a), &c));
        assert!(same_status(None, &DeploymentStatus::default()));
        let d: DeploymentStatus = serde_json::from_value(json!({"observedGeneration": 3})).unwrap();
        assert!(!same_status(Some(&c), &d));
    }
}
