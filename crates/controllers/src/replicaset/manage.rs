//! Keeping the replica count, as upstream's `manageReplicas`: too few pods
//! are created in slow-start batches (1, 2, 4, ... so a failing create, e.g.
//! over quota, fails once rather than N times), too many are deleted in the
//! ranking's order; at most [`BURST_REPLICAS`] per sync either way. Each
//! creation and deletion is announced to the expectations first.

use std::future::Future;
use std::sync::Arc;

use futures::future::join_all;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams, Preconditions};
use kube::ResourceExt;

use super::events::Record;
use super::kind::ReplicaOwner;
use super::podcache::{controller_uid, key};
use super::ranking;
use super::{Ctx, Error};

/// Pods created or deleted per sync at most (upstream's `BurstReplicas`).
pub const BURST_REPLICAS: usize = 500;
/// The first slow-start batch.
pub const SLOW_START_INITIAL_BATCH: usize = 1;

/// The sizes of the batches that create `count` pods: `initial`, then
/// doubling, the last one cut to what remains.
pub fn batch_sizes(count: usize, initial: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut remaining = count;
    let mut size = remaining.min(initial.max(1));
    while size > 0 {
        out.push(size);
        remaining -= size;
        size = (2 * size).min(remaining);
    }
    out
}

/// Call `f` `count` times, each batch concurrently; stop after the first
/// batch with a failure. Returns the successes and the first error.
pub async fn slow_start_batch<F, Fut, E>(count: usize, initial: usize, f: F) -> (usize, Option<E>)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let mut successes = 0;
    for size in batch_sizes(count, initial) {
        let results = join_all((0..size).map(|_| f())).await;
        let mut errors = results.into_iter().filter_map(Result::err);
        let first = errors.next();
        let failed = usize::from(first.is_some()) + errors.count();
        successes += size - failed;
        if first.is_some() {
            return (successes, first);
        }
    }
    (successes, None)
}

/// The owner reference that makes `owner` a pod's controller.
pub fn controller_ref<K: ReplicaOwner>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.name_any(),
        uid: owner.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The pod `owner` creates from its template: the template's labels,
/// annotations, finalizers and spec, a name generated from
/// `<owner-name>-`, and the owner as controller.
pub fn pod_from_template<K: ReplicaOwner>(owner: &K, template: &PodTemplateSpec) -> Pod {
    let meta = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", owner.name_any())),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![controller_ref(owner)]),
            ..ObjectMeta::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// Whether creating failed only because the namespace is terminating (the
/// `NamespaceTerminating` cause): nothing to retry or report then.
fn namespace_terminating(e: &Error) -> bool {
    let Error::Api(s) = e else { return false };
    s.details
        .as_ref()
        .is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating"))
}

async fn create_one<K: ReplicaOwner>(
    ctx: &Ctx<K>,
    owner: &K,
    template: &PodTemplateSpec,
) -> Result<(), Error> {
    let pod = pod_from_template(owner, template);
    if pod.metadata.labels.as_ref().is_none_or(|l| l.is_empty()) {
        return Err(Error::NoLabels);
    }
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &owner.namespace().unwrap_or_default());
    match api.create(&PostParams::default(), &pod).await {
        Ok(p) => {
            ctx.event(
                owner,
                "Normal",
                "SuccessfulCreate",
                format!("Created pod: {}", p.name_any()),
            );
            Ok(())
        }
        Err(e) => {
            let e = Error::from(e);
            if namespace_terminating(&e) {
                return Ok(());
            }
            ctx.event(
                owner,
                "Warning",
                "FailedCreate",
                format!("Error creating: {e}"),
            );
            Err(e)
        }
    }
}

async fn delete_one<K: ReplicaOwner>(ctx: &Ctx<K>, owner: &K, pod: &Pod) -> Result<(), Error> {
    let name = pod.name_any();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &owner.namespace().unwrap_or_default());
    // The UID precondition keeps a pod recreated under the same name safe.
    let dp = DeleteParams::default().preconditions(Preconditions {
        uid: pod.metadata.uid.clone(),
        resource_version: None,
    });
    match api.delete(&name, &dp).await {
        Ok(_) => {
            ctx.event(
                owner,
                "Normal",
                "SuccessfulDelete",
                format!("Deleted pod: {name}"),
            );
            Ok(())
        }
        Err(e) => {
            let e = Error::from(e);
            if e.gone() {
                return Err(e);
            }
            ctx.event(
                owner,
                "Warning",
                "FailedDelete",
                format!("Error deleting: {e}"),
            );
            Err(Error::Delete(Box::new(e)))
        }
    }
}

/// The pods of every owner of this kind under the same controller as
/// `owner` (e.g. all ReplicaSets of one Deployment); none without one.
fn related_pods<K: ReplicaOwner>(ctx: &Ctx<K>, owner: &K) -> Vec<Arc<Pod>> {
    let Some(parent) = owner.controller_uid() else {
        return Vec::new();
    };
    let ns = owner.namespace();
    ctx.owners
        .state_filter(|o| {
            o.namespace() == ns && o.controller_uid().as_deref() == Some(parent.as_str())
        })
        .iter()
        .filter_map(|o| o.uid())
        .flat_map(|uid| ctx.pods.controlled_by(&uid))
        .collect()
}

trait ControllerUid {
    fn controller_uid(&self) -> Option<String>;
}

impl<K: ReplicaOwner> ControllerUid for K {
    fn controller_uid(&self) -> Option<String> {
        self.owner_references()
            .iter()
            .find(|r| r.controller == Some(true))
            .map(|r| r.uid.clone())
    }
}

/// Create or delete pods so `active` (the pods the owner controls) reaches
/// `spec.replicas`.
pub async fn manage_replicas<K: ReplicaOwner>(
    ctx: &Ctx<K>,
    owner: &K,
    active: &[Arc<Pod>],
    now: Timestamp,
) -> Result<(), Error> {
    let uid = owner.uid().unwrap_or_default();
    let desired = usize::try_from(owner.replicas()).unwrap_or(0);
    let have = active.len();
    if have < desired {
        let Some(template) = owner.template() else {
            return Ok(());
        };
        let n = (desired - have).min(BURST_REPLICAS);
        tracing::debug!(owner = %owner.name_any(), need = desired, creating = n, "too few replicas");
        ctx.expectations.expect_creations(&uid, n);
        let (created, err) = slow_start_batch(n, SLOW_START_INITIAL_BATCH, || {
            create_one(ctx, owner, template)
        })
        .await;
        // Pods never created will never be observed.
        for _ in created..n {
            ctx.expectations.creation_observed(&uid);
        }
        return err.map_or(Ok(()), Err);
    }
    if have > desired {
        let n = (have - desired).min(BURST_REPLICAS);
        tracing::debug!(owner = %owner.name_any(), need = desired, deleting = n, "too many replicas");
        let related = related_pods(ctx, owner);
        let victims = ranking::pods_to_delete(active, &related, n, now);
        ctx.expectations
            .expect_deletions(&uid, victims.iter().map(|p| key(p.as_ref())));
        let results = join_all(victims.iter().map(|p| delete_one(ctx, owner, p))).await;
        let mut first = None;
        for (p, r) in victims.iter().zip(results) {
            if let Err(e) = r {
                // A failed deletion will never be observed.
                ctx.expectations.deletion_observed(&uid, &key(p.as_ref()));
                if !e.gone() && first.is_none() {
                    first = Some(e);
                }
            }
        }
        return first.map_or(Ok(()), Err);
    }
    Ok(())
}

/// Pods controlled by `uid` whose labels the selector matches (upstream's
/// `FilterClaimedPods`).
pub fn claimed_by(pods: &[Arc<Pod>], uid: &str, matches: impl Fn(&Pod) -> bool) -> Vec<Arc<Pod>> {
    pods.iter()
        .filter(|p| controller_uid(p.as_ref()) == Some(uid) && matches(p))
        .cloned()
        .collect()
}

impl<K: ReplicaOwner> Ctx<K> {
    pub(crate) fn event(
        &self,
        owner: &K,
        type_: &'static str,
        reason: &'static str,
        message: String,
    ) {
        self.events.record(Record {
            object: owner.object_ref(&()),
            type_,
            reason,
            message,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::ReplicaSet;
    use k8s_openapi::api::core::v1::ReplicationController;
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn batches_start_at_one_and_double() {
        assert_eq!(batch_sizes(0, 1), Vec::<usize>::new());
        assert_eq!(batch_sizes(1, 1), [1]);
        assert_eq!(batch_sizes(10, 1), [1, 2, 4, 3]);
        assert_eq!(batch_sizes(500, 1), [1, 2, 4, 8, 16, 32, 64, 128, 245]);
        assert_eq!(batch_sizes(7, 2), [2, 4, 1]);
    }

    #[tokio::test]
    async fn slow_start_stops_after_a_failing_batch() {
        let calls = AtomicUsize::new(0);
        // The 5th call fails: batches 1, 2 succeed, the batch of 4 has one
        // failure, and the rest is never tried.
        let (ok, err) = slow_start_batch(20, 1, || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 4 {
                    Err("quota")
                } else {
                    Ok(())
                }
            }
        })
        .await;
        assert_eq!((ok, err), (6, Some("quota")));
        assert_eq!(calls.load(Ordering::SeqCst), 7);

        let (ok, err) = slow_start_batch(5, 1, || async { Ok::<(), ()>(()) }).await;
        assert_eq!((ok, err), (5, None));
    }

    #[test]
    fn pods_come_from_the_template_with_a_controller_reference() {
        let rs: ReplicaSet = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "u1", "labels": {"own": "label"}},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
                "metadata": {"labels": {"app": "web"}, "annotations": {"a": "b"}, "finalizers": ["f/x"]},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
        }))
        .unwrap();
        let p = pod_from_template(&rs, rs.template().unwrap());
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["metadata"]["generateName"], "web-");
        assert!(v["metadata"].get("name").is_none());
        assert_eq!(v["metadata"]["labels"], json!({"app": "web"}));
        assert_eq!(v["metadata"]["annotations"], json!({"a": "b"}));
        assert_eq!(v["metadata"]["finalizers"], json!(["f/x"]));
        assert_eq!(
            v["metadata"]["ownerReferences"],
            json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "u1",
                "controller": true, "blockOwnerDeletion": true}])
        );
        assert_eq!(v["spec"]["containers"][0]["image"], "nginx");

        let rc: ReplicationController = serde_json::from_value(json!({
            "metadata": {"name": "old", "uid": "u2"},
            "spec": {"selector": {"app": "old"}, "template": {"metadata": {"labels": {"app": "old"}}}}
        }))
        .unwrap();
        let p = pod_from_template(&rc, rc.template().unwrap());
        let r = &p.metadata.owner_references.unwrap()[0];
        assert_eq!(
            (r.api_version.as_str(), r.kind.as_str()),
            ("v1", "ReplicationController")
        );
        assert_eq!(p.metadata.generate_name.as_deref(), Some("old-"));
    }

    #[test]
    fn namespace_termination_is_recognised_by_its_cause() {
        let s: kube::core::Status = serde_json::from_value(json!({
            "status": "Failure", "code": 403, "reason": "Forbidden",
            "message": "pods \"web-\" is forbidden: unable to create new content in namespace ns because it is being terminated",
            "details": {"name": "web-", "kind": "pods", "causes": [
                {"reason": "NamespaceTerminating", "message": "namespace ns is being terminated", "field": "metadata.namespace"}]}
        }))
        .unwrap();
        assert!(namespace_terminating(&Error::Api(Box::new(s.clone()))));
        let mut quota = s;
        quota.details = None;
        assert!(!namespace_terminating(&Error::Api(Box::new(quota))));
    }
}
