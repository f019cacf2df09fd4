//! The `endpoints.kubernetes.io/last-change-trigger-time` annotation: when
//! the earliest change happened that this sync publishes. A change is a pod
//! becoming ready or unready (its Ready condition's transition time) or the
//! service being created. Kept per service between syncs, per controller.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::jiff::Timestamp;

use super::pods;

#[derive(Default)]
struct Seen {
    pods: HashMap<String, Timestamp>,
    service: Option<Timestamp>,
}

/// Trigger times seen at each service's last sync.
#[derive(Default)]
pub struct TriggerTimes {
    seen: Mutex<HashMap<String, Seen>>,
}

fn earliest(a: Option<Timestamp>, b: Timestamp) -> Option<Timestamp> {
    Some(a.map_or(b, |a| a.min(b)))
}

impl TriggerTimes {
    /// The trigger time for syncing service `key` with `pods` now, and
    /// remember what was seen. `None`: nothing changed since the last sync
    /// (the annotation is then removed from what gets written).
    pub fn compute(&self, key: &str, svc: &Service, pods: &[Arc<Pod>]) -> Option<Timestamp> {
        let mut all = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let before = all.remove(key);
        let mut now = Seen::default();
        let mut changed = None;
        for p in pods {
            let Some(t) = pods::ready_transition(p) else {
                continue;
            };
            let name = p.metadata.name.clone().unwrap_or_default();
            let prev = before.as_ref().and_then(|b| b.pods.get(&name));
            if prev.is_none_or(|prev| t > *prev) {
                changed = earliest(changed, t);
            }
            now.pods.insert(name, t);
        }
        let created = svc.metadata.creation_timestamp.as_ref().map(|t| t.0);
        if let Some(c) = created {
            if before
                .as_ref()
                .and_then(|b| b.service)
                .is_none_or(|prev| c > prev)
            {
                changed = earliest(changed, c);
            }
        }
        now.service = created;
        let known = before.is_some();
        all.insert(key.to_string(), now);
        if known {
            changed
        } else {
            // A service seen for the first time: its endpoints date from it.
            created
        }
    }

    /// Forget a deleted service.
    pub fn forget(&self, key: &str) {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

/// A time as Go's RFC 3339 with nanoseconds writes it: UTC, and fractional
/// seconds only when there are some, without trailing zeros.
pub fn format(t: Timestamp) -> String {
    let secs = t.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.subsec_nanosecond();
    if nanos == 0 {
        return format!("{secs}Z");
    }
    let frac = format!("{nanos:09}");
    format!("{secs}.{}Z", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc() -> Service {
        serde_json::from_value(json!({
            "metadata": { "name": "s", "creationTimestamp": "2024-01-01T00:00:00Z" },
        }))
        .unwrap()
    }

    fn pod(name: &str, at: &str) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": { "name": name },
                "status": { "conditions": [{ "type": "Ready", "status": "True", "lastTransitionTime": at }] },
            }))
            .unwrap(),
        )
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn first_sync_uses_creation_then_only_changes_count() {
        let tt = TriggerTimes::default();
        let a = pod("a", "2024-01-01T00:00:05Z");
        assert_eq!(
            tt.compute("n/s", &svc(), std::slice::from_ref(&a)),
            Some(ts("2024-01-01T00:00:00Z"))
        );
        // Nothing new.
        assert_eq!(tt.compute("n/s", &svc(), std::slice::from_ref(&a)), None);
        // A new pod and a pod that changed: the earliest change.
        let a2 = pod("a", "2024-01-01T00:00:09Z");
        let b = pod("b", "2024-01-01T00:00:07Z");
        assert_eq!(
            tt.compute("n/s", &svc(), &[a2, b]),
            Some(ts("2024-01-01T00:00:07Z"))
        );
        tt.forget("n/s");
        assert_eq!(
            tt.compute("n/s", &svc(), &[]),
            Some(ts("2024-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn formats_like_go_rfc3339nano() {
        assert_eq!(format(ts("2024-01-01T00:00:05Z")), "2024-01-01T00:00:05Z");
        assert_eq!(
            format(ts("2024-01-01T00:00:05.120Z")),
            "2024-01-01T00:00:05.12Z"
        );
        assert_eq!(
            format(ts("2024-01-01T02:00:05+02:00")),
            "2024-01-01T00:00:05Z"
        );
    }
}
