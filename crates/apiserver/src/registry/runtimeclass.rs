//! Upstream's RuntimeClass admission plugin, on pod creation: a pod naming a
//! `runtimeClassName` gets its class's `overhead.podFixed` as
//! `spec.overhead`, and its class's `scheduling` merged into its node
//! selector and tolerations. A class that does not exist, an overhead the
//! pod states that differs from its class's (or any overhead without a class
//! that defines one), and a node selector that conflicts with the class's
//! are refused with 403 Forbidden and upstream's wording.

use serde_json::{Map, Value};

use super::Registry;
use crate::error::{ApiError, ApiResult};
use crate::strategy::quantity;

/// `pods "<name>" is forbidden: <why>`, as upstream's `admission.NewForbidden`.
fn forbidden(name: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::forbidden(format!("pods \"{name}\" is forbidden: {why}"))
}

/// Whether two resource lists hold the same quantities (upstream's semantic
/// equality: `1000m` is `1`).
fn same_resources(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    let q = |v: &Value| v.as_str().map(quantity::parse);
    a.len() == b.len()
        && a.iter().all(|(k, va)| match (q(va), b.get(k).map(q)) {
            (Some(Ok(x)), Some(Some(Ok(y)))) => x == y,
            (_, Some(_)) => Some(va) == b.get(k),
            _ => false,
        })
}

/// A toleration's fields, with absent and empty alike (Go's zero values).
#[derive(PartialEq)]
struct Tol<'a> {
    key: &'a str,
    operator: &'a str,
    value: &'a str,
    effect: &'a str,
    seconds: Option<i64>,
}

impl<'a> Tol<'a> {
    fn of(t: &'a Value) -> Self {
        let s = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or("");
        Tol {
            key: s("key"),
            operator: s("operator"),
            value: s("value"),
            effect: s("effect"),
            seconds: t.get("tolerationSeconds").and_then(Value::as_i64),
        }
    }

    /// Whether `self` tolerates everything `t` tolerates (upstream's
    /// `isSuperset`).
    fn covers(&self, t: &Tol) -> bool {
        if self == t {
            return true;
        }
        if t.key != self.key && (!self.key.is_empty() || self.operator != "Exists") {
            return false;
        }
        if t.effect != self.effect && !self.effect.is_empty() {
            return false;
        }
        if self.effect == "NoExecute" {
            if let Some(max) = self.seconds {
                if t.seconds.is_none_or(|s| s > max) {
                    return false;
                }
            }
        }
        match self.operator {
            "Equal" | "" => t.operator == "Equal" && t.value == self.value,
            "Exists" => true,
            _ => false,
        }
    }
}

/// Upstream's `MergeTolerations`: the pod's tolerations then the class's,
/// dropping each one that another (kept earlier, or a different one later)
/// covers.
fn merge_tolerations(first: &[Value], second: &[Value]) -> Vec<Value> {
    let all: Vec<&Value> = first.iter().chain(second).collect();
    let mut merged: Vec<&Value> = Vec::new();
    for (i, t) in all.iter().enumerate() {
        let tt = Tol::of(t);
        if merged.iter().any(|m| Tol::of(m).covers(&tt)) {
            continue;
        }
        let later = all[i + 1..].iter().any(|t2| {
            let t2 = Tol::of(t2);
            t2 != tt && t2.covers(&tt)
        });
        if !later {
            merged.push(t);
        }
    }
    merged.into_iter().cloned().collect()
}

/// Admit (set overhead and scheduling) then validate (the overhead), as
/// upstream's plugin does in its mutating and validating phases. `class` is
/// the pod's RuntimeClass, if it names one.
fn admit(pod: &mut Value, name: &str, class: Option<&Value>) -> ApiResult<()> {
    let spec = &mut pod["spec"];
    let pod_overhead = spec
        .get("overhead")
        .and_then(Value::as_object)
        .filter(|o| !o.is_empty())
        .cloned();
    let class_overhead = class
        .and_then(|c| c.get("overhead"))
        .filter(|o| o.is_object())
        .map(|o| {
            o.get("podFixed")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        });
    const MISMATCH: &str =
        "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead";
    match (&class_overhead, &pod_overhead) {
        (Some(fixed), Some(own)) if !same_resources(fixed, own) => {
            return Err(forbidden(name, MISMATCH))
        }
        (Some(fixed), _) => {
            if fixed.is_empty() {
                spec.as_object_mut().map(|s| s.remove("overhead"));
            } else {
                spec["overhead"] = Value::Object(fixed.clone());
            }
        }
        (None, Some(_)) => return Err(forbidden(
            name,
            "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead",
        )),
        (None, None) => {}
    }
    let Some(sched) = class
        .and_then(|c| c.get("scheduling"))
        .filter(|s| s.is_object())
    else {
        return Ok(());
    };
    if let Some(wanted) = sched.get("nodeSelector").and_then(Value::as_object) {
        match spec.get_mut("nodeSelector").and_then(Value::as_object_mut) {
            None => {
                if !wanted.is_empty() {
                    spec["nodeSelector"] = Value::Object(wanted.clone());
                }
            }
            Some(own) => {
                for (k, v) in wanted {
                    if let Some(theirs) = own.get(k).filter(|p| *p != v) {
                        let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
                        return Err(forbidden(
                            name,
                            format!(
                                "conflict: runtimeClass.scheduling.nodeSelector[{k}] = {}; \
                                 pod.spec.nodeSelector[{k}] = {}",
                                s(v),
                                s(theirs)
                            ),
                        ));
                    }
                    own.insert(k.clone(), v.clone());
                }
            }
        }
    }
    let empty = Vec::new();
    let own = spec
        .get("tolerations")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let class_tolerations = sched
        .get("tolerations")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let merged = merge_tolerations(own, class_tolerations);
    if merged.is_empty() {
        spec.as_object_mut().map(|s| s.remove("tolerations"));
    } else {
        spec["tolerations"] = Value::Array(merged);
    }
    Ok(())
}

impl Registry {
    /// The RuntimeClass admission plugin for a pod about to be created.
    pub(super) async fn admit_pod_runtime_class(&self, pod: &mut Value) -> ApiResult<()> {
        let name = pod["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let class = match pod["spec"].get("runtimeClassName").and_then(Value::as_str) {
            None => None,
            Some(class) => {
                let info = crate::resources::lookup("node.k8s.io", "v1", "runtimeclasses")
                    .expect("runtimeclasses are served");
                let key = info.key(None, class);
                let entry = match self.cache.get(&key) {
                    Some(e) => Some(e),
                    None => {
                        // As upstream's live lookup when its informer lags:
                        // a class created a moment ago may not be cached yet.
                        self.cache.sync().await;
                        self.cache.get(&key)
                    }
                };
                match entry {
                    Some(e) => Some(e.value()),
                    None => {
                        return Err(forbidden(
                            &name,
                            format!("pod rejected: RuntimeClass \"{class}\" not found"),
                        ))
                    }
                }
            }
        };
        admit(pod, &name, class.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: Value) -> Value {
        json!({ "metadata": { "name": "p" }, "spec": spec })
    }

    #[test]
    fn overhead_comes_from_the_class() {
        let class = json!({ "handler": "runc", "overhead": { "podFixed": { "cpu": "250m", "memory": "64Mi" } } });
        let mut p = pod(json!({ "runtimeClassName": "c" }));
        admit(&mut p, "p", Some(&class)).unwrap();
        assert_eq!(
            p["spec"]["overhead"],
            json!({ "cpu": "250m", "memory": "64Mi" })
        );
        // The same overhead, written otherwise, is accepted.
        let mut p = pod(json!({ "overhead": { "cpu": "0.25", "memory": "64Mi" } }));
        admit(&mut p, "p", Some(&class)).unwrap();
        let mut p = pod(json!({ "overhead": { "cpu": "1" } }));
        let e = admit(&mut p, "p", Some(&class)).unwrap_err();
        assert_eq!((e.code, e.reason), (403, "Forbidden"));
        assert_eq!(
            e.message,
            "pods \"p\" is forbidden: pod rejected: Pod's Overhead doesn't match RuntimeClass's \
             defined Overhead"
        );
        // No class with an overhead: the pod may not state one.
        for class in [None, Some(&json!({ "handler": "runc" }))] {
            let mut p = pod(json!({ "overhead": { "cpu": "1" } }));
            let e = admit(&mut p, "p", class).unwrap_err();
            assert_eq!(
                e.message,
                "pods \"p\" is forbidden: pod rejected: Pod Overhead set without corresponding \
                 RuntimeClass defined Overhead"
            );
        }
        let mut p = pod(json!({ "overhead": {} }));
        admit(&mut p, "p", None).unwrap();
    }

    #[test]
    fn node_selectors_merge_and_conflicts_are_refused() {
        let class = json!({ "handler": "kata", "scheduling": { "nodeSelector": { "runtime": "kata", "zone": "a" } } });
        let mut p = pod(json!({}));
        admit(&mut p, "p", Some(&class)).unwrap();
        assert_eq!(
            p["spec"]["nodeSelector"],
            json!({ "runtime": "kata", "zone": "a" })
        );
        assert!(p["spec"].get("tolerations").is_none());
        let mut p = pod(json!({ "nodeSelector": { "disk": "ssd", "zone": "a" } }));
        admit(&mut p, "p", Some(&class)).unwrap();
        assert_eq!(
            p["spec"]["nodeSelector"],
            json!({ "disk": "ssd", "runtime": "kata", "zone": "a" })
        );
        let mut p = pod(json!({ "nodeSelector": { "zone": "b" } }));
        let e = admit(&mut p, "p", Some(&class)).unwrap_err();
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "pods \"p\" is forbidden: conflict: runtimeClass.scheduling.nodeSelector[zone] = a; \
             pod.spec.nodeSelector[zone] = b"
        );
    }

    #[test]
    fn tolerations_merge_as_upstream() {
        let exists = json!({ "key": "runtime", "operator": "Exists" });
        let equal = json!({ "key": "runtime", "operator": "Equal", "value": "kata", "effect": "NoSchedule" });
        let other = json!({ "key": "gpu", "operator": "Exists", "effect": "NoSchedule" });
        let class = json!({ "handler": "kata", "scheduling": { "tolerations": [equal, other] } });
        // The pod's broader toleration covers the class's narrower one.
        let mut p = pod(json!({ "tolerations": [exists] }));
        admit(&mut p, "p", Some(&class)).unwrap();
        assert_eq!(p["spec"]["tolerations"], json!([exists, other]));
        // A narrower pod toleration gives way to the class's broader one,
        // and an equal one is kept once.
        let class = json!({ "handler": "kata", "scheduling": { "tolerations": [exists, other] } });
        let mut p = pod(json!({ "tolerations": [equal, other] }));
        admit(&mut p, "p", Some(&class)).unwrap();
        assert_eq!(p["spec"]["tolerations"], json!([other, exists]));
        // NoExecute with seconds: the longer-lived toleration covers the
        // shorter one, whichever comes first.
        let short = json!({ "key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10 });
        let long = json!({ "key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 20 });
        assert_eq!(
            merge_tolerations(std::slice::from_ref(&long), std::slice::from_ref(&short)),
            vec![long.clone()]
        );
        assert_eq!(
            merge_tolerations(std::slice::from_ref(&short), std::slice::from_ref(&long)),
            vec![long.clone()]
        );
        let forever = json!({ "key": "k", "operator": "Exists", "effect": "NoExecute" });
        assert_eq!(
            merge_tolerations(std::slice::from_ref(&forever), std::slice::from_ref(&long)),
            vec![forever.clone()]
        );
        let all = json!({ "operator": "Exists" });
        assert_eq!(
            merge_tolerations(&[short, long], std::slice::from_ref(&all)),
            vec![all]
        );
    }
}
