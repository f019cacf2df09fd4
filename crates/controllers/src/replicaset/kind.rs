//! What the controller needs to know of the two kinds it serves. Upstream runs
//! one implementation for both by converting ReplicationControllers to
//! ReplicaSets on the way in and out; here both kinds implement
//! [`ReplicaOwner`] and the controller is generic over it.

use std::collections::BTreeMap;
use std::fmt::Debug;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{
    PodTemplateSpec, ReplicationController, ReplicationControllerCondition,
    ReplicationControllerStatus,
};
use k8s_openapi::NamespaceResourceScope;
use kube::core::{ParseExpressionError, Selector};
use kube::Resource;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::status::{Condition, ReplicaStatus};

/// A ReplicaSet or a ReplicationController.
pub trait ReplicaOwner:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + DeserializeOwned
    + Serialize
    + Send
    + Sync
    + 'static
{
    /// The event source, as upstream's controller manager names it.
    const COMPONENT: &'static str;
    /// Whether `status.terminatingReplicas` is kept (ReplicaSets only, as
    /// upstream's `DeploymentReplicaSetTerminatingReplicas`, on by default).
    const TRACKS_TERMINATING: bool;

    /// `spec.replicas` (defaulted to 1 by the API server).
    fn replicas(&self) -> i32;
    /// `spec.minReadySeconds`.
    fn min_ready_seconds(&self) -> i32;
    /// The pod selector; an error means the object selects nothing.
    fn selector(&self) -> Result<Selector, ParseExpressionError>;
    /// The pod template.
    fn template(&self) -> Option<&PodTemplateSpec>;
    /// The status, in the shape both kinds share.
    fn replica_status(&self) -> ReplicaStatus;
    /// Replace the status.
    fn set_replica_status(&mut self, s: &ReplicaStatus);
}

/// The API group of an ownerReference's `apiVersion` (`""` for core).
fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("")
}

/// Whether an ownerReference (`apiVersion`, `kind`) names kind `K`.
pub fn refers_to<K: ReplicaOwner>(api_version: &str, kind: &str) -> bool {
    kind == K::kind(&()) && group_of(api_version) == K::group(&())
}

fn zero_none(n: i32) -> Option<i32> {
    (n != 0).then_some(n)
}

impl ReplicaOwner for ReplicaSet {
    const COMPONENT: &'static str = "replicaset-controller";
    const TRACKS_TERMINATING: bool = true;

    fn replicas(&self) -> i32 {
        self.spec.replicas.unwrap_or(1)
    }

    fn min_ready_seconds(&self) -> i32 {
        self.spec.min_ready_seconds.unwrap_or(0)
    }

    fn selector(&self) -> Result<Selector, ParseExpressionError> {
        Selector::try_from(self.spec.selector.clone())
    }

    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.template.as_ref()
    }

    fn replica_status(&self) -> ReplicaStatus {
        let Some(s) = self.status.as_ref() else {
            return ReplicaStatus::default();
        };
        ReplicaStatus {
            replicas: s.replicas,
            fully_labeled: s.fully_labeled_replicas.unwrap_or(0),
            ready: s.ready_replicas.unwrap_or(0),
            available: s.available_replicas.unwrap_or(0),
            terminating: s.terminating_replicas,
            observed_generation: s.observed_generation,
            conditions: s
                .conditions
                .iter()
                .flatten()
                .map(|c| Condition {
                    type_: c.type_.clone().unwrap_or_default(),
                    status: c.status.clone().unwrap_or_default(),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                    last_transition_time: c.last_transition_time.clone(),
                })
                .collect(),
        }
    }

    fn set_replica_status(&mut self, s: &ReplicaStatus) {
        self.status = Some(ReplicaSetStatus {
            replicas: s.replicas,
            fully_labeled_replicas: zero_none(s.fully_labeled),
            ready_replicas: zero_none(s.ready),
            available_replicas: zero_none(s.available),
            terminating_replicas: s.terminating,
            observed_generation: s.observed_generation,
            conditions: (!s.conditions.is_empty()).then(|| {
                s.conditions
                    .iter()
                    .map(|c| ReplicaSetCondition {
                        type_: Some(c.type_.clone()),
                        status: Some(c.status.clone()),
                        reason: c.reason.clone(),
                        message: c.message.clone(),
                        last_transition_time: c.last_transition_time.clone(),
                    })
                    .collect()
            }),
        });
    }
}

impl ReplicaOwner for ReplicationController {
    const COMPONENT: &'static str = "replication-controller";
    const TRACKS_TERMINATING: bool = false;

    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }

    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }

    fn selector(&self) -> Result<Selector, ParseExpressionError> {
        // The API server defaults an absent selector to the template's
        // labels; a map selector always parses.
        let map: BTreeMap<String, String> = self
            .spec
            .as_ref()
            .and_then(|s| s.selector.clone())
            .unwrap_or_default();
        Ok(map.into_iter().collect())
    }

    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().and_then(|s| s.template.as_ref())
    }

    fn replica_status(&self) -> ReplicaStatus {
        let Some(s) = self.status.as_ref() else {
            return ReplicaStatus::default();
        };
        ReplicaStatus {
            replicas: s.replicas,
            fully_labeled: s.fully_labeled_replicas.unwrap_or(0),
            ready: s.ready_replicas.unwrap_or(0),
            available: s.available_replicas.unwrap_or(0),
            terminating: None,
            observed_generation: s.observed_generation,
            conditions: s
                .conditions
                .iter()
                .flatten()
                .map(|c| Condition {
                    type_: c.type_.clone(),
                    status: c.status.clone(),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                    last_transition_time: c.last_transition_time.clone(),
                })
                .collect(),
        }
    }

    fn set_replica_status(&mut self, s: &ReplicaStatus) {
        self.status = Some(ReplicationControllerStatus {
            replicas: s.replicas,
            fully_labeled_replicas: zero_none(s.fully_labeled),
            ready_replicas: zero_none(s.ready),
            available_replicas: zero_none(s.available),
            observed_generation: s.observed_generation,
            conditions: (!s.conditions.is_empty()).then(|| {
                s.conditions
                    .iter()
                    .map(|c| ReplicationControllerCondition {
                        type_: c.type_.clone(),
                        status: c.status.clone(),
                        reason: c.reason.clone(),
                        message: c.message.clone(),
                        last_transition_time: c.last_transition_time.clone(),
                    })
                    .collect()
            }),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::SelectorExt;
    use serde_json::json;

    fn labels(v: serde_json::Value) -> BTreeMap<String, String> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn owner_references_are_matched_by_kind_and_group() {
        assert!(refers_to::<ReplicaSet>("apps/v1", "ReplicaSet"));
        assert!(!refers_to::<ReplicaSet>("extensions/v1beta1", "ReplicaSet"));
        assert!(!refers_to::<ReplicaSet>("apps/v1", "ReplicationController"));
        assert!(refers_to::<ReplicationController>(
            "v1",
            "ReplicationController"
        ));
        assert!(!refers_to::<ReplicationController>(
            "apps/v1",
            "ReplicationController"
        ));
    }

    #[test]
    fn selectors_of_both_kinds() {
        let rs: ReplicaSet = serde_json::from_value(json!({
            "metadata": {"name": "a"},
            "spec": {"selector": {"matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]}]},
                "template": {}}
        }))
        .unwrap();
        let sel = rs.selector().unwrap();
        assert!(sel.matches(&labels(json!({"app": "web", "tier": "fe", "x": "y"}))));
        assert!(!sel.matches(&labels(json!({"app": "web", "tier": "db"}))));
        assert!(!sel.matches(&labels(json!({"tier": "fe"}))));
        assert_eq!(rs.replicas(), 1);

        let rc: ReplicationController = serde_json::from_value(json!({
            "metadata": {"name": "a"},
            "spec": {"replicas": 3, "selector": {"app": "web"}, "minReadySeconds": 4}
        }))
        .unwrap();
        let sel = rc.selector().unwrap();
        assert!(sel.matches(&labels(json!({"app": "web", "x": "y"}))));
        assert!(!sel.matches(&labels(json!({"app": "db"}))));
        assert_eq!((rc.replicas(), rc.min_ready_seconds()), (3, 4));
    }

    #[test]
    fn status_round_trips_and_omits_zero_counts() {
        let mut rs = ReplicaSet::default();
        let s = ReplicaStatus {
            replicas: 0,
            ready: 2,
            terminating: Some(0),
            observed_generation: Some(3),
            ..ReplicaStatus::default()
        };
        rs.set_replica_status(&s);
        let v = serde_json::to_value(&rs).unwrap();
        assert_eq!(
            v["status"],
            json!({"replicas": 0, "readyReplicas": 2, "terminatingReplicas": 0, "observedGeneration": 3})
        );
        assert_eq!(rs.replica_status(), s);

        let mut rc = ReplicationController::default();
        rc.set_replica_status(&s);
        let v = serde_json::to_value(&rc).unwrap();
        assert!(v["status"].get("terminatingReplicas").is_none());
    }
}
