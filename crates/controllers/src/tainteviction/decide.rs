//! Which pods a node's NoExecute taints evict, and when, pure (upstream's
//! `ToleratesTaint`, `GetMatchingTolerations` and `getMinTolerationTime`).

use k8s_openapi::api::core::v1::{Taint, Toleration};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// Whether `tol` tolerates `taint`.
pub fn tolerates(tol: &Toleration, taint: &Taint) -> bool {
    if let Some(e) = tol.effect.as_deref().filter(|e| !e.is_empty()) {
        if e != taint.effect {
            return false;
        }
    }
    let key = tol.key.as_deref().unwrap_or("");
    let op = tol.operator.as_deref().unwrap_or("Equal");
    if key.is_empty() {
        // An empty key with Exists matches every taint.
        return op == "Exists";
    }
    if key != taint.key {
        return false;
    }
    match op {
        "Exists" => true,
        "Equal" | "" => tol.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        _ => false,
    }
}

/// What to do with a pod on a node with these taints.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// No NoExecute taint, or every one tolerated for ever.
    Keep,
    /// A NoExecute taint is not tolerated.
    EvictNow,
    /// Tolerated until then.
    EvictAt(Timestamp),
}

/// The decision for a pod with `tolerations` on a node with `taints`, at
/// `now`. A tolerationSeconds counts from the taint's `timeAdded` (from
/// `now` when the taint has none), so a controller restart keeps the
/// deadline.
pub fn decide(tolerations: &[Toleration], taints: &[Taint], now: Timestamp) -> Decision {
    let mut deadline: Option<Timestamp> = None;
    let mut any = false;
    for t in taints.iter().filter(|t| t.effect == "NoExecute") {
        any = true;
        // The first toleration that matches counts, as upstream.
        let Some(tol) = tolerations.iter().find(|tol| tolerates(tol, t)) else {
            return Decision::EvictNow;
        };
        if let Some(secs) = tol.toleration_seconds {
            let from = t.time_added.as_ref().map_or(now, |t| t.0);
            let at = from + SignedDuration::from_secs(secs.max(0));
            deadline = Some(deadline.map_or(at, |d| d.min(at)));
        }
    }
    match deadline {
        _ if !any => Decision::Keep,
        None => Decision::Keep,
        Some(at) if at <= now => Decision::EvictNow,
        Some(at) => Decision::EvictAt(at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn taint(key: &str, effect: &str, added: Option<&str>) -> Taint {
        serde_json::from_value(json!({"key": key, "effect": effect, "timeAdded": added})).unwrap()
    }

    fn tol(v: serde_json::Value) -> Toleration {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn toleration_matching() {
        let t = Taint {
            key: "k".into(),
            value: Some("v".into()),
            effect: "NoExecute".into(),
            time_added: None,
        };
        assert!(tolerates(&tol(json!({"operator": "Exists"})), &t));
        assert!(!tolerates(&tol(json!({})), &t), "empty key needs Exists");
        assert!(tolerates(&tol(json!({"key": "k", "value": "v"})), &t));
        assert!(!tolerates(&tol(json!({"key": "k", "value": "w"})), &t));
        assert!(tolerates(
            &tol(json!({"key": "k", "operator": "Exists", "effect": "NoExecute"})),
            &t
        ));
        assert!(!tolerates(
            &tol(json!({"key": "k", "operator": "Exists", "effect": "NoSchedule"})),
            &t
        ));
        assert!(!tolerates(
            &tol(json!({"key": "x", "operator": "Exists"})),
            &t
        ));
    }

    #[test]
    fn decisions() {
        let now: Timestamp = "2026-01-01T00:01:00Z".parse().unwrap();
        let unreachable = taint(
            "node.kubernetes.io/unreachable",
            "NoExecute",
            Some("2026-01-01T00:00:00Z"),
        );
        let sched = taint("node.kubernetes.io/unreachable", "NoSchedule", None);
        assert_eq!(
            decide(&[], std::slice::from_ref(&sched), now),
            Decision::Keep
        );
        assert_eq!(
            decide(&[], &[sched, unreachable.clone()], now),
            Decision::EvictNow
        );
        let default_tol = tol(
            json!({"key": "node.kubernetes.io/unreachable", "operator": "Exists",
            "effect": "NoExecute", "tolerationSeconds": 300}),
        );
        assert_eq!(
            decide(
                std::slice::from_ref(&default_tol),
                std::slice::from_ref(&unreachable),
                now
            ),
            Decision::EvictAt("2026-01-01T00:05:00Z".parse().unwrap())
        );
        let short = tol(
            json!({"key": "node.kubernetes.io/unreachable", "operator": "Exists",
            "effect": "NoExecute", "tolerationSeconds": 30}),
        );
        // The first matching toleration counts.
        assert_eq!(
            decide(
                &[short.clone(), default_tol.clone()],
                std::slice::from_ref(&unreachable),
                now
            ),
            Decision::EvictNow
        );
        assert_eq!(
            decide(
                &[default_tol, short],
                std::slice::from_ref(&unreachable),
                now
            ),
            Decision::EvictAt("2026-01-01T00:05:00Z".parse().unwrap())
        );
        let forever = tol(json!({"operator": "Exists"}));
        assert_eq!(
            decide(&[forever], std::slice::from_ref(&unreachable), now),
            Decision::Keep
        );
        // A taint without timeAdded counts from now; one of two untolerated evicts.
        let other = taint("other", "NoExecute", None);
        let both =
            tol(json!({"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10}));
        assert_eq!(
            decide(&[both], &[unreachable.clone(), other.clone()], now),
            Decision::EvictNow,
            "the old taint's deadline passed"
        );
        let only_other =
            tol(json!({"key": "other", "operator": "Exists", "tolerationSeconds": 10}));
        assert_eq!(
            decide(&[only_other], &[unreachable, other], now),
            Decision::EvictNow
        );
    }
}
