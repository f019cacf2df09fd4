//! One sync of one owner, as upstream's `syncReplicaSet`: claim pods
//! (adopt and release), keep the replica count if the expectations allow,
//! and write the status.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::core::{Selector, SelectorExt};
use kube::runtime::controller::Action;
use kube::ResourceExt;

use super::claim::{self, Claim};
use super::kind::ReplicaOwner;
use super::manage::{claimed_by, manage_replicas};
use super::status::{self, is_active, is_terminating, Observed, ReplicaStatus};
use super::{Ctx, Error};

static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

fn labels(p: &Pod) -> &BTreeMap<String, String> {
    p.metadata.labels.as_ref().unwrap_or(&NO_LABELS)
}

/// Reconcile one owner.
pub async fn reconcile<K: ReplicaOwner>(owner: Arc<K>, ctx: Arc<Ctx<K>>) -> Result<Action, Error> {
    // Until the pods are listed every owner would look empty.
    ctx.pods.wait_ready().await;
    let uid = owner.uid().unwrap_or_default();
    let ns = owner.namespace().unwrap_or_default();
    let needs_sync = ctx.expectations.satisfied(&uid);
    let selector = match owner.selector() {
        Ok(s) => s,
        Err(e) => {
            // Validation makes this unreachable; nothing to do until fixed.
            tracing::warn!(owner = %owner.name_any(), error = %e, "invalid selector");
            return Ok(Action::await_change());
        }
    };
    let candidates = ctx.pods.controlled_or_orphans(&ns, &uid);
    let active: Vec<Arc<Pod>> = candidates
        .iter()
        .filter(|p| is_active(p))
        .cloned()
        .collect();
    let active = claim_pods(&ctx, &owner, &selector, active).await?;
    let terminating = K::TRACKS_TERMINATING.then(|| {
        let dying: Vec<Arc<Pod>> = candidates
            .iter()
            .filter(|p| is_terminating(p))
            .cloned()
            .collect();
        claimed_by(&dying, &uid, |p| selector.matches(labels(p))).len()
    });

    let now = Timestamp::now();
    let manage_error = if needs_sync && owner.meta().deletion_timestamp.is_none() {
        manage_replicas(&ctx, &owner, &active, now).await.err()
    } else {
        None
    };
    let template_labels = owner
        .template()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let message = manage_error.as_ref().map(ToString::to_string);
    let new = status::calculate(
        &owner.replica_status(),
        &Observed {
            desired: owner.replicas(),
            min_ready: owner.min_ready_seconds(),
            template_labels: &template_labels,
            active: &active,
            terminating,
            manage_error: message.as_deref(),
            now,
        },
    );
    update_status(&ctx, &owner, new).await?;
    if let Some(e) = manage_error {
        return Err(e);
    }

    // Wake up when a ready pod becomes available (plus a second against
    // clock skew, as upstream), or when expectations expire.
    let mut wake: Option<Duration> =
        status::next_available_in(&active, owner.min_ready_seconds(), now)
            .map(|d| d + Duration::from_secs(1));
    if let Some(d) = ctx.expectations.expires_in(&uid) {
        wake = Some(wake.map_or(d, |w| w.min(d)));
    }
    Ok(wake.map_or_else(Action::await_change, Action::requeue))
}

/// Adopt and release; returns the active pods the owner now controls.
async fn claim_pods<K: ReplicaOwner>(
    ctx: &Ctx<K>,
    owner: &K,
    selector: &Selector,
    active: Vec<Arc<Pod>>,
) -> Result<Vec<Arc<Pod>>, Error> {
    let uid = owner.uid().unwrap_or_default();
    let deleting = owner.meta().deletion_timestamp.is_some();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &owner.namespace().unwrap_or_default());
    let mut can_adopt: Option<Result<(), String>> = None;
    let mut claimed = Vec::with_capacity(active.len());
    let mut first_error = None;
    for p in active {
        let decision = claim::decide(p.as_ref(), &uid, deleting, selector.matches(labels(&p)));
        let pod_uid = p.metadata.uid.clone().unwrap_or_default();
        let res = match decision {
            Claim::Keep => {
                claimed.push(p);
                continue;
            }
            Claim::Ignore => continue,
            Claim::Adopt => {
                // Before the first adoption, check with a live read that the
                // owner is still the same object and not being deleted (the
                // cache may be behind a deletion).
                if can_adopt.is_none() {
                    can_adopt = Some(recheck(ctx, owner).await);
                }
                if let Some(Err(why)) = &can_adopt {
                    let e = Error::Adopt(
                        format!(
                            "{}/{} ({pod_uid})",
                            p.namespace().unwrap_or_default(),
                            p.name_any()
                        ),
                        why.clone(),
                    );
                    first_error.get_or_insert(e);
                    continue;
                }
                let body = claim::adopt_patch(
                    &K::api_version(&()),
                    &K::kind(&()),
                    &owner.name_any(),
                    &uid,
                    &pod_uid,
                );
                api.patch(
                    &p.name_any(),
                    &PatchParams::default(),
                    &Patch::Strategic(body),
                )
                .await
                .map(|_| true)
            }
            Claim::Release => {
                tracing::debug!(pod = %p.name_any(), owner = %owner.name_any(), "releasing a pod that no longer matches");
                let body = claim::release_patch(&uid, &pod_uid);
                match api
                    .patch(
                        &p.name_any(),
                        &PatchParams::default(),
                        &Patch::Strategic(body),
                    )
                    .await
                {
                    // Gone, or recreated (the UID no longer matches): fine.
                    Err(kube::Error::Api(s)) if s.code == 404 || s.code == 422 => Ok(false),
                    r => r.map(|_| false),
                }
            }
        };
        match res {
            Ok(true) => claimed.push(p),
            Ok(false) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                first_error.get_or_insert(Error::from(e));
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(claimed),
    }
}

/// Upstream's `RecheckDeletionTimestamp` over a live GET.
async fn recheck<K: ReplicaOwner>(ctx: &Ctx<K>, owner: &K) -> Result<(), String> {
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &owner.namespace().unwrap_or_default());
    let fresh = api
        .get(&owner.name_any())
        .await
        .map_err(|e| Error::from(e).to_string())?;
    let (want, got) = (
        owner.uid().unwrap_or_default(),
        fresh.uid().unwrap_or_default(),
    );
    if want != got {
        return Err(format!(
            "original {} {}/{} is gone: got uid {got}, wanted {want}",
            K::kind(&()),
            owner.namespace().unwrap_or_default(),
            owner.name_any()
        ));
    }
    if let Some(t) = &fresh.meta().deletion_timestamp {
        return Err(format!(
            "{}/{} has just been deleted at {}",
            owner.namespace().unwrap_or_default(),
            owner.name_any(),
            t.0
        ));
    }
    Ok(())
}

/// Write the status unless nothing changed, with one GET-and-retry on
/// failure (upstream's `updateReplicaSetStatus`). The PUT carries the
/// resourceVersion it read, so a concurrent writer is never overwritten.
async fn update_status<K: ReplicaOwner>(
    ctx: &Ctx<K>,
    owner: &K,
    mut new: ReplicaStatus,
) -> Result<(), Error> {
    let generation = owner.meta().generation;
    let cur = owner.replica_status();
    if cur.same_as(&new) && cur.observed_generation == generation {
        return Ok(());
    }
    new.observed_generation = generation;
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &owner.namespace().unwrap_or_default());
    let name = owner.name_any();
    let mut target = owner.clone();
    for attempt in 0..2 {
        target.set_replica_status(&new);
        match api
            .replace_status(&name, &PostParams::default(), &target)
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if attempt == 1 => return Err(e.into()),
            Err(e) => {
                tracing::debug!(owner = %name, error = %e, "status update failed; retrying on a fresh read");
                target = api.get(&name).await?;
            }
        }
    }
    Ok(())
}
