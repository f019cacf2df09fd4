//! Upstream's Priority admission plugin, on pod creation: the pod's
//! `priorityClassName` (or the cluster's global default class) is resolved to
//! `spec.priority` and `spec.preemptionPolicy`. A class that does not exist,
//! or a priority or policy the pod states that differs from its class's, is
//! refused with 403 Forbidden and upstream's wording.

use serde_json::{json, Value};

use super::Registry;
use crate::error::{ApiError, ApiResult};

/// What a class resolves to.
#[derive(Debug, PartialEq)]
struct Resolved {
    /// The class that gave it; `None` when no class applies (priority 0).
    class: Option<String>,
    value: i64,
    policy: String,
}

const DEFAULT_POLICY: &str = "PreemptLowerPriority";

/// How a class marked as the global default reads in its stored JSON.
const GLOBAL_DEFAULT: &[u8] = b"\"globalDefault\":true";

fn resolved(class: Option<String>, pc: &Value) -> Resolved {
    Resolved {
        class,
        value: pc["value"].as_i64().unwrap_or(0),
        policy: pc["preemptionPolicy"]
            .as_str()
            .unwrap_or(DEFAULT_POLICY)
            .to_string(),
    }
}

/// Among the classes marked `globalDefault`, the one upstream picks: the
/// lowest value.
fn global_default(classes: &[Value]) -> Option<&Value> {
    classes
        .iter()
        .filter(|pc| pc["globalDefault"].as_bool() == Some(true))
        .min_by_key(|pc| pc["value"].as_i64().unwrap_or(0))
}

/// Set what `r` resolves to on the pod, after checking what the pod already
/// states against it.
fn apply(pod: &mut Value, name: &str, r: Resolved) -> ApiResult<()> {
    let forbidden =
        |why: String| ApiError::forbidden(format!("pods \"{name}\" is forbidden: {why}"));
    let spec = &mut pod["spec"];
    if let Some(got) = spec.get("priority").and_then(Value::as_i64) {
        if got != r.value {
            return Err(forbidden(format!(
                "the integer value of priority ({got}) must not be provided in pod spec; priority \
                 admission controller computed {} from the given PriorityClass name",
                r.value
            )));
        }
    }
    if let Some(got) = spec.get("preemptionPolicy").and_then(Value::as_str) {
        if got != r.policy {
            return Err(forbidden(format!(
                "the string value of PreemptionPolicy ({got}) must not be provided in pod spec; \
                 priority admission controller computed {} from the given PriorityClass name",
                r.policy
            )));
        }
    }
    if let Some(class) = r.class {
        spec["priorityClassName"] = json!(class);
    }
    spec["priority"] = json!(r.value);
    spec["preemptionPolicy"] = json!(r.policy);
    Ok(())
}

impl Registry {
    /// The Priority admission plugin for a pod about to be created.
    pub(super) async fn admit_pod_priority(&self, pod: &mut Value) -> ApiResult<()> {
        let info = crate::resources::lookup("scheduling.k8s.io", "v1", "priorityclasses")
            .expect("priorityclasses are served");
        let name = pod["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let class = pod["spec"]["priorityClassName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let r = if class.is_empty() {
            let (entries, _) = self.cache.list(&info.key_prefix());
            // Only a class marked globalDefault can apply; most clusters
            // have none, so most pod creates decode no class at all.
            let classes: Vec<Value> = entries
                .iter()
                .filter(|e| {
                    e.raw
                        .windows(GLOBAL_DEFAULT.len())
                        .any(|w| w == GLOBAL_DEFAULT)
                })
                .map(|e| e.value())
                .collect();
            match global_default(&classes) {
                Some(pc) => resolved(pc["metadata"]["name"].as_str().map(str::to_string), pc),
                None => Resolved {
                    class: None,
                    value: 0,
                    policy: DEFAULT_POLICY.into(),
                },
            }
        } else {
            let key = info.key(None, &class);
            let entry = match self.cache.get(&key) {
                Some(e) => Some(e),
                None => {
                    // A class created a moment ago may not be cached yet.
                    self.cache.sync().await;
                    self.cache.get(&key)
                }
            };
            match entry {
                Some(e) => resolved(None, &e.value()),
                None => {
                    return Err(ApiError::forbidden(format!(
                        "pods \"{name}\" is forbidden: no PriorityClass with name {class} was found"
                    )))
                }
            }
        };
        apply(pod, &name, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(spec: Value) -> Value {
        json!({ "metadata": { "name": "p" }, "spec": spec })
    }

    #[test]
    fn a_class_sets_priority_and_policy() {
        let mut p = pod(json!({ "priorityClassName": "high" }));
        let pc = json!({ "value": 1000, "preemptionPolicy": "Never" });
        apply(&mut p, "p", resolved(None, &pc)).unwrap();
        assert_eq!(p["spec"]["priority"], 1000);
        assert_eq!(p["spec"]["preemptionPolicy"], "Never");
        assert_eq!(p["spec"]["priorityClassName"], "high");
    }

    #[test]
    fn stated_values_must_match_the_class() {
        let pc = json!({ "value": 1000 });
        let mut p = pod(json!({ "priorityClassName": "high", "priority": 5 }));
        let e = apply(&mut p, "p", resolved(None, &pc)).unwrap_err();
        assert_eq!((e.code, e.reason), (403, "Forbidden"));
        assert_eq!(
            e.message,
            "pods \"p\" is forbidden: the integer value of priority (5) must not be provided in pod \
             spec; priority admission controller computed 1000 from the given PriorityClass name"
        );
        let mut p = pod(json!({ "priority": 1000, "preemptionPolicy": "Never" }));
        let e = apply(&mut p, "p", resolved(None, &pc)).unwrap_err();
        assert!(
            e.message
                .contains("the string value of PreemptionPolicy (Never) must not be provided"),
            "{}",
            e.message
        );
        let mut p = pod(json!({ "priority": 1000 }));
        apply(&mut p, "p", resolved(None, &pc)).unwrap();
        assert_eq!(p["spec"]["preemptionPolicy"], DEFAULT_POLICY);
    }

    #[test]
    fn the_lowest_global_default_wins_and_names_the_pod_class() {
        let classes = vec![
            json!({ "metadata": { "name": "a" }, "value": 50, "globalDefault": true }),
            json!({ "metadata": { "name": "b" }, "value": 10, "globalDefault": true }),
            json!({ "metadata": { "name": "c" }, "value": 1 }),
        ];
        let pc = global_default(&classes).unwrap();
        assert_eq!(pc["metadata"]["name"], "b");
        let mut p = pod(json!({}));
        apply(&mut p, "p", resolved(Some("b".into()), pc)).unwrap();
        assert_eq!(p["spec"]["priorityClassName"], "b");
        assert_eq!(p["spec"]["priority"], 10);
        assert!(global_default(&classes[2..]).is_none());
    }
}
