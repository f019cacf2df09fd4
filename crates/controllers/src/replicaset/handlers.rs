//! What a pod change means to the owners of one kind, as upstream's
//! `addPod`/`updatePod`/`deletePod`: which expectations it fulfils and which
//! owners must sync. A pod with a controller wakes only that controller; an
//! orphan wakes every owner whose selector matches it, so one may adopt it.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::channel::mpsc::UnboundedSender;
use k8s_openapi::api::core::v1::Pod;
use kube::core::SelectorExt;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::ResourceExt;

use super::expectations::Expectations;
use super::kind::{refers_to, ReplicaOwner};
use super::podcache::{controller_of, key, Change};

/// One consequence of a pod change.
#[derive(Debug, PartialEq, Eq)]
pub enum Effect {
    /// A pod of the owner with this UID appeared.
    Created(String),
    /// A pod (`namespace/name`) of the owner with this UID is being deleted
    /// or is gone.
    Deleted(String, String),
    /// Sync the owner `namespace`, `name`.
    Sync(String, String),
    /// Sync every owner whose selector matches this orphan.
    SyncMatching,
}

fn ns(p: &Pod) -> String {
    p.metadata.namespace.clone().unwrap_or_default()
}

/// The controller reference of `p` if it names kind `K`.
fn ours<K: ReplicaOwner>(
    p: &Pod,
) -> Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference> {
    controller_of(p).filter(|r| refers_to::<K>(&r.api_version, &r.kind))
}

fn deleted<K: ReplicaOwner>(p: &Pod, out: &mut Vec<Effect>) {
    // Nobody waits for an orphan's deletion.
    if let Some(r) = ours::<K>(p) {
        out.push(Effect::Deleted(r.uid.clone(), key(p)));
        out.push(Effect::Sync(ns(p), r.name.clone()));
    }
}

/// The effects of a pod change on owners of kind `K`.
pub fn effects<K: ReplicaOwner>(old: Option<&Pod>, new: Option<&Pod>) -> Vec<Effect> {
    let mut out = Vec::new();
    match (old, new) {
        (None, Some(p)) => {
            if p.metadata.deletion_timestamp.is_some() {
                // Seen for the first time already terminating (e.g. after a
                // restart): not a creation anyone waits for.
                deleted::<K>(p, &mut out);
            } else if let Some(r) = ours::<K>(p) {
                out.push(Effect::Created(r.uid.clone()));
                out.push(Effect::Sync(ns(p), r.name.clone()));
            } else if controller_of(p).is_none() {
                out.push(Effect::SyncMatching);
            }
        }
        (Some(o), Some(c)) => {
            if o.metadata.resource_version == c.metadata.resource_version {
                return out;
            }
            let labels_changed = o.metadata.labels != c.metadata.labels;
            if c.metadata.deletion_timestamp.is_some() {
                // A graceful deletion began: replace the pod now rather than
                // when the kubelet is done with it.
                deleted::<K>(c, &mut out);
                if labels_changed {
                    deleted::<K>(o, &mut out);
                }
                return out;
            }
            let (oc, cc) = (controller_of(o), controller_of(c));
            let controller_changed = oc != cc;
            if controller_changed {
                if let Some(r) = ours::<K>(o) {
                    out.push(Effect::Sync(ns(o), r.name.clone()));
                }
            }
            if cc.is_some() {
                if let Some(r) = ours::<K>(c) {
                    out.push(Effect::Sync(ns(c), r.name.clone()));
                }
            } else if labels_changed || controller_changed {
                out.push(Effect::SyncMatching);
            }
        }
        (Some(o), None) => deleted::<K>(o, &mut out),
        (None, None) => {}
    }
    out
}

/// What the pod informer calls for every change, once the cache shows it.
pub trait PodHandler: Send + Sync {
    fn pod_changed(&self, ch: &Change);
}

/// The pod handler of one kind.
pub struct Hooks<K: ReplicaOwner> {
    pub owners: Store<K>,
    pub expectations: Arc<Expectations>,
    pub queue: UnboundedSender<ObjectRef<K>>,
}

static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

impl<K: ReplicaOwner> Hooks<K> {
    fn sync(&self, ns: &str, name: &str) {
        // Fails only when the controller has stopped.
        let _ = self.queue.unbounded_send(ObjectRef::new(name).within(ns));
    }

    /// Owners in the pod's namespace whose selector matches it. An empty or
    /// invalid selector matches nothing here (upstream: "a nil or empty
    /// selector should match nothing, not everything").
    fn matching(&self, p: &Pod) -> Vec<Arc<K>> {
        let ns = ns(p);
        let labels = p.metadata.labels.as_ref().unwrap_or(&NO_LABELS);
        self.owners.state_filter(|o| {
            o.namespace().as_deref() == Some(ns.as_str())
                && o.selector()
                    .is_ok_and(|s| !s.selects_all() && s.matches(labels))
        })
    }
}

impl<K: ReplicaOwner> PodHandler for Hooks<K> {
    fn pod_changed(&self, ch: &Change) {
        for e in effects::<K>(ch.old.as_deref(), ch.new.as_deref()) {
            match e {
                Effect::Created(uid) => self.expectations.creation_observed(&uid),
                Effect::Deleted(uid, key) => self.expectations.deletion_observed(&uid, &key),
                Effect::Sync(ns, name) => self.sync(&ns, &name),
                Effect::SyncMatching => {
                    if let Some(p) = &ch.new {
                        for o in self.matching(p) {
                            self.sync(&ns(p), &o.name_any());
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::ReplicaSet;
    use k8s_openapi::api::core::v1::ReplicationController;
    use serde_json::{json, Value};

    fn pod(rv: &str, f: impl FnOnce(&mut Value)) -> Pod {
        let mut v = json!({"metadata": {"namespace": "ns", "name": "p", "resourceVersion": rv,
            "labels": {"app": "web"}}});
        f(&mut v);
        serde_json::from_value(v).unwrap()
    }

    fn owned_by(kind: &str, api: &str, name: &str, uid: &str) -> impl FnOnce(&mut Value) {
        let r = json!([{"apiVersion": api, "kind": kind, "name": name, "uid": uid, "controller": true}]);
        move |v: &mut Value| v["metadata"]["ownerReferences"] = r
    }

    fn sync(name: &str) -> Effect {
        Effect::Sync("ns".into(), name.into())
    }

    #[test]
    fn creations_and_deletions_of_owned_pods() {
        let p = pod("1", owned_by("ReplicaSet", "apps/v1", "web", "u1"));
        assert_eq!(
            effects::<ReplicaSet>(None, Some(&p)),
            [Effect::Created("u1".into()), sync("web")]
        );
        // The other kind ignores it.
        assert!(effects::<ReplicationController>(None, Some(&p)).is_empty());
        assert_eq!(
            effects::<ReplicaSet>(Some(&p), None),
            [Effect::Deleted("u1".into(), "ns/p".into()), sync("web")]
        );
        // A pod first seen terminating is a deletion, not a creation.
        let gone = pod("1", |v| {
            owned_by("ReplicaSet", "apps/v1", "web", "u1")(v);
            v["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        });
        assert_eq!(
            effects::<ReplicaSet>(None, Some(&gone)),
            [Effect::Deleted("u1".into(), "ns/p".into()), sync("web")]
        );
        // The deletion timestamp appearing counts as the deletion.
        let mut terminating = gone.clone();
        terminating.metadata.resource_version = Some("2".into());
        assert_eq!(
            effects::<ReplicaSet>(Some(&p), Some(&terminating)),
            [Effect::Deleted("u1".into(), "ns/p".into()), sync("web")]
        );
    }

    #[test]
    fn updates_wake_old_and_new_controllers() {
        let a = pod("1", owned_by("ReplicationController", "v1", "a", "ua"));
        let same = a.clone();
        assert!(effects::<ReplicationController>(Some(&a), Some(&same)).is_empty());
        let status_only = pod("2", owned_by("ReplicationController", "v1", "a", "ua"));
        assert_eq!(
            effects::<ReplicationController>(Some(&a), Some(&status_only)),
            [sync("a")]
        );
        let released = pod("2", |_| {});
        assert_eq!(
            effects::<ReplicationController>(Some(&a), Some(&released)),
            [sync("a"), Effect::SyncMatching]
        );
        let moved = pod("2", owned_by("ReplicationController", "v1", "b", "ub"));
        assert_eq!(
            effects::<ReplicationController>(Some(&a), Some(&moved)),
            [sync("a"), sync("b")]
        );
    }

    #[test]
    fn orphans_wake_matching_owners_only_when_something_changed() {
        let o = pod("1", |_| {});
        assert_eq!(
            effects::<ReplicaSet>(None, Some(&o)),
            [Effect::SyncMatching]
        );
        let status_only = pod("2", |_| {});
        assert!(effects::<ReplicaSet>(Some(&o), Some(&status_only)).is_empty());
        let relabelled = pod("2", |v| v["metadata"]["labels"] = json!({"app": "db"}));
        assert_eq!(
            effects::<ReplicaSet>(Some(&o), Some(&relabelled)),
            [Effect::SyncMatching]
        );
        // An orphan's deletion concerns nobody; nor does a pod another
        // kind of controller owns.
        assert!(effects::<ReplicaSet>(Some(&o), None).is_empty());
        let job = pod("1", owned_by("Job", "batch/v1", "j", "uj"));
        assert!(effects::<ReplicaSet>(None, Some(&job)).is_empty());
    }
}
