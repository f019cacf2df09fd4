//! Pod states as the controller counts them (active, terminating, ready,
//! available), and the status a ReplicaSet or ReplicationController gets
//! from its pods, as upstream's `calculateStatus`. Pure functions.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// The condition set while creating or deleting pods fails.
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

/// A status condition, in the shape both kinds share.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Condition {
    pub type_: String,
    pub status: String,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub last_transition_time: Option<Time>,
}

/// The status of either kind.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplicaStatus {
    pub replicas: i32,
    pub fully_labeled: i32,
    pub ready: i32,
    pub available: i32,
    /// `None` where the kind does not report it.
    pub terminating: Option<i32>,
    pub observed_generation: Option<i64>,
    pub conditions: Vec<Condition>,
}

impl ReplicaStatus {
    /// Whether the two say the same, ignoring `observedGeneration`.
    pub fn same_as(&self, o: &ReplicaStatus) -> bool {
        self.replicas == o.replicas
            && self.fully_labeled == o.fully_labeled
            && self.ready == o.ready
            && self.available == o.available
            && self.terminating == o.terminating
            && self.conditions == o.conditions
    }
}

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Succeeded or Failed: the pod will not run again.
pub fn is_terminal(p: &Pod) -> bool {
    matches!(phase(p), "Succeeded" | "Failed")
}

/// Counted as a replica: not terminal and not being deleted.
pub fn is_active(p: &Pod) -> bool {
    !is_terminal(p) && p.metadata.deletion_timestamp.is_none()
}

/// Being deleted, and still running.
pub fn is_terminating(p: &Pod) -> bool {
    !is_terminal(p) && p.metadata.deletion_timestamp.is_some()
}

/// When the pod became ready, if it is ready (its `Ready` condition is
/// `True`); `Some(None)` when ready with no transition time.
pub fn ready_since(p: &Pod) -> Option<Option<Timestamp>> {
    p.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")
        .map(|c| c.last_transition_time.as_ref().map(|t| t.0))
}

/// `Ready=True`.
pub fn is_ready(p: &Pod) -> bool {
    ready_since(p).is_some()
}

fn seconds(n: i32) -> SignedDuration {
    SignedDuration::from_secs(i64::from(n))
}

/// Ready for at least `min_ready` seconds (upstream's `IsPodAvailable`: a
/// ready pod without a transition time is available only when no minimum is
/// asked).
pub fn is_available(p: &Pod, min_ready: i32, now: Timestamp) -> bool {
    match ready_since(p) {
        None => false,
        Some(_) if min_ready <= 0 => true,
        Some(None) => false,
        Some(Some(t)) => t + seconds(min_ready) < now,
    }
}

/// How long until the next ready pod becomes available, if any is waiting.
pub fn next_available_in(pods: &[Arc<Pod>], min_ready: i32, now: Timestamp) -> Option<Duration> {
    if min_ready <= 0 {
        return None;
    }
    pods.iter()
        .filter_map(|p| match ready_since(p) {
            Some(Some(t)) if !is_available(p, min_ready, now) => {
                let wait = (t + seconds(min_ready)).duration_since(now);
                Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
            }
            _ => None,
        })
        .min()
}

/// What the status is computed from.
pub struct Observed<'a> {
    /// `spec.replicas`.
    pub desired: i32,
    pub min_ready: i32,
    /// The template's labels: a pod carrying all of them is fully labeled.
    pub template_labels: &'a BTreeMap<String, String>,
    /// The active pods the owner controls.
    pub active: &'a [Arc<Pod>],
    /// How many of its pods are terminating, for kinds that report it.
    pub terminating: Option<usize>,
    /// Why creating or deleting pods failed in this sync.
    pub manage_error: Option<&'a str>,
    pub now: Timestamp,
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The new status from the current one and what was observed;
/// `observedGeneration` is left to the writer.
pub fn calculate(current: &ReplicaStatus, o: &Observed) -> ReplicaStatus {
    let mut s = current.clone();
    let mut fully = 0;
    let mut ready = 0;
    let mut available = 0;
    for p in o.active {
        let labels = p.metadata.labels.as_ref();
        if o.template_labels
            .iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
        {
            fully += 1;
        }
        if is_ready(p) {
            ready += 1;
            if is_available(p, o.min_ready, o.now) {
                available += 1;
            }
        }
    }
    let failing = s.conditions.iter().any(|c| c.type_ == REPLICA_FAILURE);
    match o.manage_error {
        Some(msg) if !failing => {
            let have = count(o.active.len());
            let reason = if have < o.desired {
                "FailedCreate"
            } else if have > o.desired {
                "FailedDelete"
            } else {
                ""
            };
            s.conditions.push(Condition {
                type_: REPLICA_FAILURE.into(),
                status: "True".into(),
                reason: Some(reason.into()),
                message: Some(msg.into()),
                last_transition_time: Some(Time(o.now)),
            });
        }
        None if failing => s.conditions.retain(|c| c.type_ != REPLICA_FAILURE),
        _ => {}
    }
    s.replicas = count(o.active.len());
    s.fully_labeled = fully;
    s.ready = ready;
    s.available = available;
    s.terminating = o.terminating.map(count);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn pod(labels: serde_json::Value, ready: Option<&str>) -> Arc<Pod> {
        let conds = match ready {
            Some(t) => json!([{"type": "Ready", "status": "True", "lastTransitionTime": t}]),
            None => json!([{"type": "Ready", "status": "False"}]),
        };
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": "p", "labels": labels},
                "status": {"phase": "Running", "conditions": conds}
            }))
            .unwrap(),
        )
    }

    #[test]
    fn active_terminating_and_terminal_pods() {
        let mut p: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}})).unwrap();
        assert!(is_active(&p) && !is_terminating(&p));
        p.metadata.deletion_timestamp = Some(Time(at("2024-01-01T00:00:00Z")));
        assert!(!is_active(&p) && is_terminating(&p));
        p.status = serde_json::from_value(json!({"phase": "Failed"})).unwrap();
        assert!(!is_active(&p) && !is_terminating(&p));
        p.metadata.deletion_timestamp = None;
        p.status = serde_json::from_value(json!({"phase": "Succeeded"})).unwrap();
        assert!(!is_active(&p));
    }

    #[test]
    fn availability_honours_min_ready_seconds() {
        let now = at("2024-01-01T00:00:10Z");
        let p = pod(json!({}), Some("2024-01-01T00:00:05Z"));
        assert!(is_available(&p, 0, now));
        assert!(is_available(&p, 4, now));
        // Exactly at the boundary is not yet available (strictly before now).
        assert!(!is_available(&p, 5, now));
        assert!(!is_available(&p, 30, now));
        let not_ready = pod(json!({}), None);
        assert!(!is_available(&not_ready, 0, now));
        let pods = vec![
            p.clone(),
            not_ready,
            pod(json!({}), Some("2024-01-01T00:00:08Z")),
        ];
        assert_eq!(
            next_available_in(&pods, 30, now),
            Some(Duration::from_secs(25))
        );
        assert_eq!(
            next_available_in(&pods, 4, now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(next_available_in(&pods, 0, now), None);
        assert_eq!(next_available_in(&pods, 1, now), None);
    }

    #[test]
    fn counts_replicas_labels_readiness_and_availability() {
        let now = at("2024-01-01T00:01:00Z");
        let tl: BTreeMap<String, String> =
            serde_json::from_value(json!({"app": "web", "tier": "fe"})).unwrap();
        let pods = vec![
            pod(
                json!({"app": "web", "tier": "fe"}),
                Some("2024-01-01T00:00:00Z"),
            ),
            pod(
                json!({"app": "web", "tier": "fe", "x": "1"}),
                Some("2024-01-01T00:00:55Z"),
            ),
            pod(json!({"app": "web"}), None),
        ];
        let o = Observed {
            desired: 3,
            min_ready: 10,
            template_labels: &tl,
            active: &pods,
            terminating: Some(2),
            manage_error: None,
            now,
        };
        let s = calculate(&ReplicaStatus::default(), &o);
        assert_eq!(
            (
                s.replicas,
                s.fully_labeled,
                s.ready,
                s.available,
                s.terminating
            ),
            (3, 2, 2, 1, Some(2))
        );
        assert!(s.conditions.is_empty());
    }

    #[test]
    fn replica_failure_is_set_once_and_cleared() {
        let now = at("2024-01-01T00:01:00Z");
        let tl = BTreeMap::new();
        let pods = vec![pod(json!({}), None)];
        let mut o = Observed {
            desired: 3,
            min_ready: 0,
            template_labels: &tl,
            active: &pods,
            terminating: None,
            manage_error: Some("pods \"web-\" is forbidden: exceeded quota"),
            now,
        };
        let s = calculate(&ReplicaStatus::default(), &o);
        assert_eq!(s.conditions.len(), 1);
        let c = &s.conditions[0];
        assert_eq!(
            (c.type_.as_str(), c.status.as_str()),
            (REPLICA_FAILURE, "True")
        );
        assert_eq!(c.reason.as_deref(), Some("FailedCreate"));
        assert_eq!(
            c.message.as_deref(),
            Some("pods \"web-\" is forbidden: exceeded quota")
        );
        // A later failure keeps the first condition (and its time).
        o.manage_error = Some("other");
        o.now = at("2024-01-01T00:02:00Z");
        let again = calculate(&s, &o);
        assert_eq!(again.conditions, s.conditions);
        // Too many pods: FailedDelete.
        o.desired = 0;
        let del = calculate(&ReplicaStatus::default(), &o);
        assert_eq!(del.conditions[0].reason.as_deref(), Some("FailedDelete"));
        // Success clears it.
        o.manage_error = None;
        assert!(calculate(&s, &o).conditions.is_empty());
    }
}
