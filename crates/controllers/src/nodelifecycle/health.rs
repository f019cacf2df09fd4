//! Node health, pure: when a node counts as silent, and the conditions it
//! then gets (upstream's `tryUpdateNodeHealth`): every kubelet condition
//! becomes `Unknown`, with reason `NodeStatusUnknown` if the kubelet posted
//! it once, `NodeStatusNeverUpdated` if it never did.

use k8s_openapi::api::core::v1::{Node, NodeCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// The conditions the kubelet posts; Ready first.
pub const KUBELET_CONDITIONS: [&str; 4] =
    ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

pub const REASON_UNKNOWN: &str = "NodeStatusUnknown";
pub const MESSAGE_UNKNOWN: &str = "Kubelet stopped posting node status.";
pub const REASON_NEVER: &str = "NodeStatusNeverUpdated";
pub const MESSAGE_NEVER: &str = "Kubelet never posted node status.";

/// The node's condition of type `t`.
pub fn condition<'a>(n: &'a Node, t: &str) -> Option<&'a NodeCondition> {
    n.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == t)
}

/// The Ready condition's status: `True`, `False`, `Unknown`, or `None`
/// when the node has none yet.
pub fn ready(n: &Node) -> Option<&str> {
    condition(n, "Ready").map(|c| c.status.as_str())
}

/// What of a node shows its kubelet is alive: the Ready condition's
/// heartbeat (whether there is one, and its time) and the Lease's renew
/// time. A change in it is a sign of life, timed by our clock (the
/// kubelet's may be skewed). The condition's status is not part of it, so
/// the controller's own `Unknown` is no sign of life.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Heartbeat {
    pub ready: Option<Option<String>>,
    pub lease: Option<String>,
}

impl Heartbeat {
    pub fn of(n: &Node, lease_renew: Option<String>) -> Self {
        Heartbeat {
            ready: condition(n, "Ready")
                .map(|c| c.last_heartbeat_time.as_ref().map(|t| t.0.to_string())),
            lease: lease_renew,
        }
    }
}

/// The conditions of a node silent for longer than its grace period, or
/// `None` when they already say `Unknown`.
pub fn unknown_conditions(n: &Node, now: Timestamp) -> Option<Vec<NodeCondition>> {
    let mut conds: Vec<NodeCondition> = n
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let created = n.metadata.creation_timestamp.clone();
    let mut changed = false;
    for t in KUBELET_CONDITIONS {
        match conds.iter_mut().find(|c| c.type_ == t) {
            Some(c) if c.status == "Unknown" => {}
            Some(c) => {
                c.status = "Unknown".into();
                c.reason = Some(REASON_UNKNOWN.into());
                c.message = Some(MESSAGE_UNKNOWN.into());
                c.last_transition_time = Some(Time(now));
                changed = true;
            }
            None => {
                conds.push(NodeCondition {
                    type_: t.into(),
                    status: "Unknown".into(),
                    reason: Some(REASON_NEVER.into()),
                    message: Some(MESSAGE_NEVER.into()),
                    last_heartbeat_time: created.clone(),
                    last_transition_time: Some(Time(now)),
                });
                changed = true;
            }
        }
    }
    changed.then_some(conds)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::{json, Value};

    pub fn node(name: &str, f: impl FnOnce(&mut Value)) -> Node {
        let mut v = json!({
            "metadata": {"name": name, "resourceVersion": "5", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {},
            "status": {"conditions": [
                {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory",
                 "lastHeartbeatTime": "2026-01-01T00:00:10Z", "lastTransitionTime": "2026-01-01T00:00:10Z"},
                {"type": "Ready", "status": "True", "reason": "KubeletReady",
                 "lastHeartbeatTime": "2026-01-01T00:00:10Z", "lastTransitionTime": "2026-01-01T00:00:10Z"},
            ]}
        });
        f(&mut v);
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn silent_nodes_get_unknown_conditions() {
        let now: Timestamp = "2026-01-01T00:05:00Z".parse().unwrap();
        let n = node("n1", |_| {});
        let conds = unknown_conditions(&n, now).unwrap();
        assert_eq!(conds.len(), 4);
        let ready = conds.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.status, "Unknown");
        assert_eq!(ready.reason.as_deref(), Some("NodeStatusUnknown"));
        assert_eq!(
            ready.message.as_deref(),
            Some("Kubelet stopped posting node status.")
        );
        assert_eq!(ready.last_transition_time, Some(Time(now)));
        // The last heartbeat stays the kubelet's.
        assert_eq!(
            ready.last_heartbeat_time.as_ref().unwrap().0.to_string(),
            "2026-01-01T00:00:10Z"
        );
        // Conditions never posted are added as never updated.
        let disk = conds.iter().find(|c| c.type_ == "DiskPressure").unwrap();
        assert_eq!(disk.reason.as_deref(), Some("NodeStatusNeverUpdated"));
        assert_eq!(
            disk.last_heartbeat_time.as_ref().unwrap().0.to_string(),
            "2026-01-01T00:00:00Z"
        );
        // Once all are Unknown nothing changes.
        let mut marked = n.clone();
        marked.status.as_mut().unwrap().conditions = Some(conds);
        assert!(unknown_conditions(&marked, now).is_none());
        assert_eq!(ready_of(&marked), Some("Unknown"));
    }

    fn ready_of(n: &Node) -> Option<&str> {
        ready(n)
    }

    #[test]
    fn heartbeats_change_with_the_lease_or_the_ready_condition() {
        let n = node("n1", |_| {});
        let a = Heartbeat::of(&n, Some("t1".into()));
        assert_eq!(a, Heartbeat::of(&n, Some("t1".into())));
        assert_ne!(a, Heartbeat::of(&n, Some("t2".into())));
        let later = node("n1", |v| {
            v["status"]["conditions"][1]["lastHeartbeatTime"] = json!("2026-01-01T00:00:20Z")
        });
        assert_ne!(a, Heartbeat::of(&later, Some("t1".into())));
        // The controller's own Unknown is not a heartbeat.
        let marked = node("n1", |v| {
            v["status"]["conditions"][1]["status"] = json!("Unknown")
        });
        assert_eq!(a, Heartbeat::of(&marked, Some("t1".into())));
    }
}
