//! The taints the node lifecycle controller keeps on nodes, pure:
//! NoSchedule taints mirror the conditions (and `spec.unschedulable`) at
//! once; NoExecute taints (`not-ready`, `unreachable`) follow the Ready
//! condition, added at the zone's eviction rate and removed at once.

use k8s_openapi::api::core::v1::{Node, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::health::condition;

pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
pub const MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
pub const DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
pub const PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
pub const NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";

/// Every NoSchedule taint this controller manages.
const MANAGED_NO_SCHEDULE: [&str; 7] = [
    NOT_READY,
    UNREACHABLE,
    UNSCHEDULABLE,
    MEMORY_PRESSURE,
    DISK_PRESSURE,
    PID_PRESSURE,
    NETWORK_UNAVAILABLE,
];

/// The NoExecute taint the node's Ready condition calls for.
pub fn no_execute_for(ready: Option<&str>) -> Option<&'static str> {
    match ready {
        Some("False") => Some(NOT_READY),
        Some("Unknown") => Some(UNREACHABLE),
        _ => None,
    }
}

/// The NoSchedule taints the node's conditions call for (upstream's
/// `doNoScheduleTaintingPass`).
pub fn no_schedule_for(n: &Node) -> Vec<&'static str> {
    let status = |t: &str| condition(n, t).map(|c| c.status.as_str());
    let mut out = Vec::new();
    match status("Ready") {
        Some("False") => out.push(NOT_READY),
        Some("Unknown") => out.push(UNREACHABLE),
        _ => {}
    }
    for (t, taint) in [
        ("MemoryPressure", MEMORY_PRESSURE),
        ("DiskPressure", DISK_PRESSURE),
        ("PIDPressure", PID_PRESSURE),
        ("NetworkUnavailable", NETWORK_UNAVAILABLE),
    ] {
        if status(t) == Some("True") {
            out.push(taint);
        }
    }
    if n.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        out.push(UNSCHEDULABLE);
    }
    out
}

fn taints(n: &Node) -> Vec<Taint> {
    n.spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
}

fn taint(key: &str, effect: &str, now: Option<Timestamp>) -> Taint {
    Taint {
        key: key.into(),
        effect: effect.into(),
        time_added: now.map(Time),
        value: None,
    }
}

/// The node's taints with the managed NoSchedule taints set to `want`;
/// `None` when nothing changes. Taints others set stay as they are.
pub fn with_no_schedule(n: &Node, want: &[&str]) -> Option<Vec<Taint>> {
    let cur = taints(n);
    let managed =
        |t: &Taint| t.effect == "NoSchedule" && MANAGED_NO_SCHEDULE.contains(&t.key.as_str());
    let have: Vec<&str> = cur
        .iter()
        .filter(|t| managed(t))
        .map(|t| t.key.as_str())
        .collect();
    if have.len() == want.len() && want.iter().all(|w| have.contains(w)) {
        return None;
    }
    let mut out: Vec<Taint> = cur
        .iter()
        .filter(|t| !managed(t) || want.contains(&t.key.as_str()))
        .cloned()
        .collect();
    for w in want {
        if !have.contains(w) {
            out.push(taint(w, "NoSchedule", None));
        }
    }
    Some(out)
}

/// The NoExecute taint (not-ready or unreachable) the node carries.
pub fn current_no_execute(n: &Node) -> Option<String> {
    taints(n)
        .into_iter()
        .find(|t| t.effect == "NoExecute" && (t.key == NOT_READY || t.key == UNREACHABLE))
        .map(|t| t.key)
}

/// The node's taints with the managed NoExecute taint set to `want`
/// (added with `timeAdded` = `now`); `None` when nothing changes.
pub fn with_no_execute(n: &Node, want: Option<&str>, now: Timestamp) -> Option<Vec<Taint>> {
    let cur = taints(n);
    let managed =
        |t: &Taint| t.effect == "NoExecute" && (t.key == NOT_READY || t.key == UNREACHABLE);
    let have: Vec<&Taint> = cur.iter().filter(|t| managed(t)).collect();
    if have.len() <= 1 && have.first().map(|t| t.key.as_str()) == want {
        return None;
    }
    let mut out: Vec<Taint> = cur.iter().filter(|t| !managed(t)).cloned().collect();
    if let Some(w) = want {
        out.push(taint(w, "NoExecute", Some(now)));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::super::health::tests::node;
    use super::*;
    use serde_json::json;

    fn keys(t: &[Taint]) -> Vec<String> {
        t.iter()
            .map(|t| format!("{}:{}", t.key, t.effect))
            .collect()
    }

    #[test]
    fn no_schedule_taints_mirror_conditions() {
        let ok = node("n", |_| {});
        assert!(no_schedule_for(&ok).is_empty());
        assert!(with_no_schedule(&ok, &[]).is_none());
        let bad = node("n", |v| {
            v["status"]["conditions"][1]["status"] = json!("Unknown");
            v["status"]["conditions"][0]["status"] = json!("True");
            v["spec"]["unschedulable"] = json!(true);
            v["spec"]["taints"] = json!([{"key": "user", "effect": "NoSchedule"}]);
        });
        let want = no_schedule_for(&bad);
        assert_eq!(want, [UNREACHABLE, MEMORY_PRESSURE, UNSCHEDULABLE]);
        let t = with_no_schedule(&bad, &want).unwrap();
        assert_eq!(
            keys(&t),
            [
                "user:NoSchedule",
                "node.kubernetes.io/unreachable:NoSchedule",
                "node.kubernetes.io/memory-pressure:NoSchedule",
                "node.kubernetes.io/unschedulable:NoSchedule"
            ]
        );
        // Recovered: only the user's taint stays.
        let mut back = ok.clone();
        back.spec.as_mut().unwrap().taints = Some(t);
        assert_eq!(
            keys(&with_no_schedule(&back, &[]).unwrap()),
            ["user:NoSchedule"]
        );
    }

    #[test]
    fn no_execute_taints_follow_ready() {
        let now: Timestamp = "2026-01-01T00:05:00Z".parse().unwrap();
        assert_eq!(no_execute_for(Some("True")), None);
        assert_eq!(no_execute_for(None), None);
        assert_eq!(no_execute_for(Some("False")), Some(NOT_READY));
        assert_eq!(no_execute_for(Some("Unknown")), Some(UNREACHABLE));
        let n = node(
            "n",
            |v| v["spec"]["taints"] = json!([{"key": NOT_READY, "effect": "NoExecute", "timeAdded": "2026-01-01T00:00:00Z"}]),
        );
        assert_eq!(current_no_execute(&n).as_deref(), Some(NOT_READY));
        assert!(with_no_execute(&n, Some(NOT_READY), now).is_none());
        // Swapped, with a fresh timeAdded.
        let t = with_no_execute(&n, Some(UNREACHABLE), now).unwrap();
        assert_eq!(keys(&t), ["node.kubernetes.io/unreachable:NoExecute"]);
        assert_eq!(t[0].time_added, Some(Time(now)));
        assert!(with_no_execute(&n, None, now).unwrap().is_empty());
    }
}
