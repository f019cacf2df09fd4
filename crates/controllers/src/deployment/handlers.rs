//! Which Deployments a ReplicaSet change concerns, as upstream's
//! `addReplicaSet`/`updateReplicaSet`/`deleteReplicaSet`: a controlled
//! ReplicaSet wakes its Deployment (the old one too if the controller
//! changed); an orphan wakes every Deployment whose selector matches it, so
//! one may adopt it.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::core::{Selector, SelectorExt};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::ResourceExt;

use crate::cache::{controller_of, Change};

/// One Deployment a change concerns.
#[derive(Debug, PartialEq, Eq)]
pub enum Effect {
    /// The Deployment named by a controller reference (namespace, name, UID).
    Controller(String, String, String),
    /// Every Deployment in the namespace whose selector matches the orphan.
    Matching,
}

fn controller_effect(rs: &ReplicaSet) -> Option<Effect> {
    let r = controller_of(rs)?;
    let group = r.api_version.rsplit_once('/').map_or("", |(g, _)| g);
    (r.kind == "Deployment" && group == "apps").then(|| {
        Effect::Controller(
            rs.metadata.namespace.clone().unwrap_or_default(),
            r.name.clone(),
            r.uid.clone(),
        )
    })
}

/// The effects of a change on Deployments.
pub fn effects(old: Option<&ReplicaSet>, new: Option<&ReplicaSet>) -> Vec<Effect> {
    let mut out = Vec::new();
    match (old, new) {
        (None, Some(rs)) => {
            if let Some(e) = controller_effect(rs) {
                out.push(e);
            } else if controller_of(rs).is_none() && rs.metadata.deletion_timestamp.is_none() {
                out.push(Effect::Matching);
            }
        }
        (Some(o), Some(c)) => {
            if o.metadata.resource_version == c.metadata.resource_version {
                return out;
            }
            let controller_changed = controller_of(o) != controller_of(c);
            if controller_changed {
                out.extend(controller_effect(o));
            }
            if controller_of(c).is_some() {
                out.extend(controller_effect(c));
            } else if controller_changed || o.metadata.labels != c.metadata.labels {
                out.push(Effect::Matching);
            }
        }
        (Some(o), None) => out.extend(controller_effect(o)),
        (None, None) => {}
    }
    out
}

static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

/// Whether the Deployment's selector matches these labels; an empty or
/// invalid selector matches nothing here.
pub fn selects(d: &Deployment, labels: &BTreeMap<String, String>) -> bool {
    Selector::try_from(d.spec.selector.clone())
        .ok()
        .is_some_and(|s| !s.selects_all() && s.matches(labels))
}

/// The Deployments to sync for a change, resolved against the store.
pub fn deployments_for(
    ch: &Change<ReplicaSet>,
    store: &Store<Deployment>,
) -> Vec<ObjectRef<Deployment>> {
    let mut out = Vec::new();
    for e in effects(ch.old.as_deref(), ch.new.as_deref()) {
        match e {
            Effect::Controller(ns, name, uid) => {
                let r = ObjectRef::new(&name).within(&ns);
                // A controller reference to a Deployment since replaced by
                // another of the same name concerns nobody.
                if store
                    .get(&r)
                    .is_some_and(|d| d.uid().as_deref() == Some(uid.as_str()))
                {
                    out.push(r);
                }
            }
            Effect::Matching => {
                let Some(rs) = ch.new.as_deref() else {
                    continue;
                };
                let ns = rs.namespace();
                let labels = rs.metadata.labels.as_ref().unwrap_or(&NO_LABELS);
                out.extend(
                    store
                        .state_filter(|d| d.namespace() == ns && selects(d, labels))
                        .iter()
                        .map(|d| ObjectRef::from_obj(d.as_ref())),
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn rs(rv: &str, f: impl FnOnce(&mut Value)) -> ReplicaSet {
        let mut v = json!({"metadata": {"namespace": "ns", "name": "web-1", "resourceVersion": rv,
            "labels": {"app": "web"}}});
        f(&mut v);
        serde_json::from_value(v).unwrap()
    }

    fn owned(kind: &str, api: &str, name: &str, uid: &str) -> impl FnOnce(&mut Value) {
        let r = json!([{"apiVersion": api, "kind": kind, "name": name, "uid": uid, "controller": true}]);
        move |v: &mut Value| v["metadata"]["ownerReferences"] = r
    }

    fn ctl(name: &str, uid: &str) -> Effect {
        Effect::Controller("ns".into(), name.into(), uid.into())
    }

    #[test]
    fn controlled_replicasets_wake_their_deployment() {
        let a = rs("1", owned("Deployment", "apps/v1", "web", "u1"));
        assert_eq!(effects(None, Some(&a)), [ctl("web", "u1")]);
        assert_eq!(effects(Some(&a), None), [ctl("web", "u1")]);
        let status = rs("2", owned("Deployment", "apps/v1", "web", "u1"));
        assert_eq!(effects(Some(&a), Some(&status)), [ctl("web", "u1")]);
        assert!(effects(Some(&a), Some(&a.clone())).is_empty(), "a resync");
        let moved = rs("2", owned("Deployment", "apps/v1", "other", "u2"));
        assert_eq!(
            effects(Some(&a), Some(&moved)),
            [ctl("web", "u1"), ctl("other", "u2")]
        );
        // Other controllers' ReplicaSets concern no Deployment.
        let foreign = rs("1", owned("Deployment", "example.com/v1", "web", "u1"));
        assert!(effects(None, Some(&foreign)).is_empty());
        let rollout = rs("1", owned("Rollout", "argoproj.io/v1alpha1", "web", "u1"));
        assert!(effects(None, Some(&rollout)).is_empty());
    }

    #[test]
    fn orphans_wake_matching_deployments() {
        let o = rs("1", |_| {});
        assert_eq!(effects(None, Some(&o)), [Effect::Matching]);
        assert!(
            effects(Some(&o), Some(&rs("2", |_| {}))).is_empty(),
            "status only"
        );
        let relabelled = rs("2", |v| v["metadata"]["labels"] = json!({"app": "db"}));
        assert_eq!(effects(Some(&o), Some(&relabelled)), [Effect::Matching]);
        let a = rs("1", owned("Deployment", "apps/v1", "web", "u1"));
        let released = rs("2", |_| {});
        assert_eq!(
            effects(Some(&a), Some(&released)),
            [ctl("web", "u1"), Effect::Matching]
        );
        assert!(
            effects(Some(&o), None).is_empty(),
            "nobody waits for an orphan's deletion"
        );
        let dying = rs("1", |v| {
            v["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z")
        });
        assert!(effects(None, Some(&dying)).is_empty());
    }

    #[test]
    fn changes_resolve_to_deployments_in_the_store() {
        let (store, mut writer) = kube::runtime::reflector::store::<Deployment>();
        let d = |ns: &str, name: &str, uid: &str, app: &str| -> Deployment {
            serde_json::from_value(
                json!({"metadata": {"namespace": ns, "name": name, "uid": uid},
                "spec": {"selector": {"matchLabels": {"app": app}}, "template": {}}}),
            )
            .unwrap()
        };
        for x in [
            d("ns", "web", "u1", "web"),
            d("ns", "other", "u2", "db"),
            d("elsewhere", "web2", "u3", "web"),
        ] {
            writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(x));
        }
        let names = |ch: Change<ReplicaSet>| -> Vec<String> {
            deployments_for(&ch, &store)
                .into_iter()
                .map(|r| r.name)
                .collect()
        };
        let new = |f: Box<dyn FnOnce(&mut Value)>| Change {
            old: None,
            new: Some(std::sync::Arc::new(rs("1", f))),
        };
        assert_eq!(
            names(new(Box::new(owned("Deployment", "apps/v1", "web", "u1")))),
            ["web"]
        );
        // A controller reference to an older Deployment of the same name.
        assert!(names(new(Box::new(owned("Deployment", "apps/v1", "web", "old")))).is_empty());
        // An orphan: the matching Deployments of its namespace only.
        assert_eq!(names(new(Box::new(|_| {}))), ["web"]);
    }

    #[test]
    fn empty_selectors_select_nothing() {
        let d = |sel: Value| -> Deployment {
            serde_json::from_value(json!({"metadata": {"name": "d"},
                "spec": {"selector": sel, "template": {}}}))
            .unwrap()
        };
        let labels: BTreeMap<String, String> = [("app".to_string(), "web".to_string())].into();
        assert!(selects(&d(json!({"matchLabels": {"app": "web"}})), &labels));
        assert!(!selects(&d(json!({"matchLabels": {"app": "db"}})), &labels));
        assert!(!selects(&d(json!({})), &labels));
    }
}
