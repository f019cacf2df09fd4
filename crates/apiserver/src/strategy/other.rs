//! Nodes, Leases, PodDisruptionBudgets, PriorityClasses and SelfSubjectReviews.

use std::collections::HashSet;

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use serde_json::{json, Value};

use super::container::resource_list;
use super::meta::validate_label_selector;
use super::names::*;
use super::quantity::canonicalize_list;
use super::util::*;
use super::workloads::positive_int_or_percent;
use super::{unknown, Decoded, Strategy};
use crate::error::FieldError;

/// Nodes.
pub struct NodeStrategy;

const NODE_CIDR_MSG: &str = "node updates may not change podCIDR except from \"\" to valid";

impl Strategy for NodeStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<Node>(obj)
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_from_old(new, old, "status");
    }

    fn prepare_for_status_update(&self, new: &mut Value, old: &Value) {
        keep_all_but_status(new, old);
    }

    fn default(&self, obj: &mut Value) {
        let Some(st) = obj.get_mut("status").filter(|s| s.is_object()) else {
            return;
        };
        canonicalize_list(st.get_mut("capacity"));
        canonicalize_list(st.get_mut("allocatable"));
        if get(st, "allocatable").is_none() {
            if let Some(c) = get(st, "capacity").cloned() {
                st["allocatable"] = c;
            }
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        let mut seen = HashSet::new();
        for (i, t) in arr(spec, "taints").iter().enumerate() {
            let p = index("spec.taints", i);
            let k = s(t, "key");
            errs.extend(invalid_each(&child(&p, "key"), k, is_qualified_name(k)));
            let msgs = is_valid_label_value(s(t, "value"));
            if !msgs.is_empty() {
                errs.push(FieldError::invalid(
                    child(&p, "value"),
                    s(t, "value"),
                    msgs.join(";"),
                ));
            }
            errs.extend(one_of(
                &child(&p, "effect"),
                s(t, "effect"),
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
                true,
            ));
            if !seen.insert((k, s(t, "effect"))) {
                let mut e = FieldError::duplicate(&p, t.clone());
                e.detail = "taints must be unique by key and effect pair".into();
                errs.push(e);
            }
        }
        let cidrs = strs(spec, "podCIDRs");
        for (i, c) in cidrs.iter().enumerate() {
            errs.extend(invalid_each(
                &index("spec.podCIDRs", i),
                c,
                is_valid_cidr(c),
            ));
        }
        if cidrs.len() > 1 {
            let fams: Vec<bool> = cidrs
                .iter()
                .filter_map(|c| parse_cidr(c))
                .map(|(ip, _)| ip.is_ipv4())
                .collect();
            if cidrs.len() > 2 || fams.len() == 2 && fams[0] == fams[1] {
                errs.push(FieldError::invalid(
                    "spec.podCIDRs",
                    spec["podCIDRs"].clone(),
                    "may specify no more than one CIDR for each IP family",
                ));
            }
        }
        let st = obj.get("status").unwrap_or(&Value::Null);
        for k in ["capacity", "allocatable"] {
            resource_list(st.get(k), &child("status", k), false, &mut errs);
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        let (ns, os) = (
            new.get("spec").unwrap_or(&Value::Null),
            old.get("spec").unwrap_or(&Value::Null),
        );
        let (n, o) = (strs(ns, "podCIDRs"), strs(os, "podCIDRs"));
        if !o.is_empty() {
            if n.len() != o.len() {
                errs.push(FieldError::forbidden("spec.podCIDRs", NODE_CIDR_MSG));
            } else {
                for (a, b) in n.iter().zip(&o) {
                    if a != b {
                        errs.push(FieldError::forbidden("spec.podCIDRs", NODE_CIDR_MSG));
                    }
                }
            }
        }
        let pid = s(os, "providerID");
        if !pid.is_empty() && pid != s(ns, "providerID") {
            errs.push(FieldError::forbidden(
                "spec.providerID",
                "node updates may not change providerID except from \"\" to valid",
            ));
        }
        errs
    }

    fn validate_status_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        self.validate_update(new, old)
    }

    fn selectable_fields(&self, obj: &Value) -> Vec<(&'static str, String)> {
        let u = obj
            .pointer("/spec/unschedulable")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        vec![("spec.unschedulable", u.to_string())]
    }
}

/// Leases (coordination.k8s.io/v1).
pub struct LeaseStrategy;

impl Strategy for LeaseStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<Lease>(obj)
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        if let Some(d) = int(spec, "leaseDurationSeconds").filter(|d| *d <= 0) {
            errs.push(FieldError::invalid(
                "spec.leaseDurationSeconds",
                d,
                "must be greater than 0",
            ));
        }
        if let Some(t) = int(spec, "leaseTransitions").filter(|t| *t < 0) {
            errs.push(FieldError::invalid("spec.leaseTransitions", t, NEGATIVE));
        }
        if let Some(st) = opt_s(spec, "strategy") {
            if st != "OldestEmulationVersion" {
                errs.extend(invalid_each("spec.strategy", st, is_qualified_name(st)));
                if !st.contains('/') {
                    errs.push(FieldError::not_supported(
                        "spec.strategy",
                        st,
                        &["OldestEmulationVersion"],
                    ));
                }
            }
        }
        if !s(spec, "preferredHolder").is_empty() && s(spec, "strategy").is_empty() {
            errs.push(FieldError::forbidden(
                "spec.preferredHolder",
                "may only be specified if `strategy` is defined",
            ));
        }
        errs
    }

    fn selectable_fields(&self, _obj: &Value) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

/// PodDisruptionBudgets (policy/v1).
pub struct PodDisruptionBudgetStrategy;

impl Strategy for PodDisruptionBudgetStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<PodDisruptionBudget>(obj)
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        put(
            obj,
            "status",
            json!({ "currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "expectedPods": 0 }),
        );
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_from_old(new, old, "status");
    }

    fn prepare_for_status_update(&self, new: &mut Value, old: &Value) {
        keep_all_but_status(new, old);
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        if get(spec, "minAvailable").is_some() && get(spec, "maxUnavailable").is_some() {
            errs.push(FieldError::invalid(
                "spec",
                spec.clone(),
                "minAvailable and maxUnavailable cannot be both set",
            ));
        }
        for k in ["minAvailable", "maxUnavailable"] {
            positive_int_or_percent(get(spec, k), &child("spec", k), &mut errs);
        }
        if let Some(sel) = get(spec, "selector") {
            errs.extend(validate_label_selector(sel, "spec.selector"));
        }
        if let Some(p) = opt_s(spec, "unhealthyPodEvictionPolicy") {
            errs.extend(one_of(
                "spec.unhealthyPodEvictionPolicy",
                p,
                &["AlwaysAllow", "IfHealthyBudget"],
                true,
            ));
        }
        errs
    }

    fn validate_status_update(&self, new: &Value, _old: &Value) -> Vec<FieldError> {
        let st = new.get("status").unwrap_or(&Value::Null);
        let mut errs = Vec::new();
        for k in [
            "disruptionsAllowed",
            "currentHealthy",
            "desiredHealthy",
            "expectedPods",
        ] {
            errs.extend(nonnegative(st, k, &child("status", k)));
        }
        errs
    }

    fn selectable_fields(&self, _obj: &Value) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

/// PriorityClasses (scheduling.k8s.io/v1).
pub struct PriorityClassStrategy;

/// `HighestUserDefinablePriority`.
const MAX_USER_PRIORITY: i64 = 1_000_000_000;

fn system_class(name: &str, value: i64, global: bool) -> Result<(), String> {
    let want = match name {
        "system-node-critical" => 2_000_001_000,
        "system-cluster-critical" => 2_000_000_000,
        _ => return Err(format!("{name} is not a known system priority class")),
    };
    if value != want {
        return Err(format!("value of {name} PriorityClass must be {want}"));
    }
    if global {
        return Err(format!(
            "globalDefault of {name} PriorityClass must be false"
        ));
    }
    Ok(())
}

impl Strategy for PriorityClassStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<PriorityClass>(obj)
    }

    fn default(&self, obj: &mut Value) {
        if obj.is_object() {
            set_default(obj, "preemptionPolicy", json!("PreemptLowerPriority"));
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let value = int(obj, "value").unwrap_or(0);
        if name.starts_with("system-") {
            if let Err(e) = system_class(name, value, flag(obj, "globalDefault").unwrap_or(false)) {
                errs.push(FieldError::forbidden("metadata.name", format!("priority class names with 'system-' prefix are reserved for system use only. error: {e}")));
            }
        } else if value > MAX_USER_PRIORITY {
            errs.push(FieldError::forbidden(
                "value",
                format!("maximum allowed value of a user defined priority is {MAX_USER_PRIORITY}"),
            ));
        }
        if let Some(p) = opt_s(obj, "preemptionPolicy") {
            errs.extend(one_of(
                "preemptionPolicy",
                p,
                &["PreemptLowerPriority", "Never"],
                true,
            ));
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if int(new, "value") != int(old, "value") {
            errs.push(FieldError::forbidden(
                "value",
                "may not be changed in an update.",
            ));
        }
        errs.extend(immutable(new, old, "preemptionPolicy", "preemptionPolicy"));
        errs
    }

    fn selectable_fields(&self, _obj: &Value) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

/// SelfSubjectReviews: create-only, never stored, nothing to check.
pub struct SelfSubjectReviewStrategy;

impl Strategy for SelfSubjectReviewStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<SelfSubjectReview>(obj)
    }

    fn validate(&self, _obj: &Value) -> Vec<FieldError> {
        Vec::new()
    }

    fn selectable_fields(&self, _obj: &Value) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FieldErrorType;

    use crate::strategy::error_fields as fields;

    #[test]
    fn nodes() {
        let s = NodeStrategy;
        let mut n = json!({ "apiVersion": "v1", "kind": "Node", "metadata": { "name": "n1" },
            "spec": { "podCIDRs": ["10.244.0.0/24"], "taints": [{ "key": "a", "effect": "NoSchedule" }, { "key": "a", "effect": "NoSchedule" }] },
            "status": { "capacity": { "cpu": "4", "memory": "8192Mi", "pods": "110" } } });
        s.default(&mut n);
        assert_eq!(
            n["status"]["allocatable"],
            json!({ "cpu": "4", "memory": "8Gi", "pods": "110" })
        );
        assert_eq!(
            fields(s.validate(&n)),
            vec![("spec.taints[1]".into(), FieldErrorType::Duplicate)]
        );
        let mut moved = n.clone();
        moved["spec"]["podCIDRs"] = json!(["10.244.1.0/24"]);
        assert!(fields(s.validate_update(&moved, &n))
            .contains(&("spec.podCIDRs".into(), FieldErrorType::Forbidden)));
        assert_eq!(
            s.selectable_fields(&n),
            vec![("spec.unschedulable", "false".to_string())]
        );
    }

    #[test]
    fn leases_pdbs_priority_classes() {
        let lease = json!({ "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": { "name": "l", "namespace": "kube-node-lease" },
            "spec": { "holderIdentity": "n1", "leaseDurationSeconds": 0 } });
        assert_eq!(
            fields(LeaseStrategy.validate(&lease)),
            vec![("spec.leaseDurationSeconds".into(), FieldErrorType::Invalid)]
        );
        let pdb = json!({ "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": { "name": "p", "namespace": "d" },
            "spec": { "minAvailable": "50%", "maxUnavailable": 1, "selector": { "matchLabels": { "app": "web" } } } });
        assert_eq!(
            fields(PodDisruptionBudgetStrategy.validate(&pdb)),
            vec![("spec".into(), FieldErrorType::Invalid)]
        );
        let mut one = pdb.clone();
        one["spec"]
            .as_object_mut()
            .unwrap()
            .remove("maxUnavailable");
        assert!(PodDisruptionBudgetStrategy.validate(&one).is_empty());
        let mut pc = json!({ "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": { "name": "high" }, "value": 1000 });
        PriorityClassStrategy.default(&mut pc);
        assert_eq!(pc["preemptionPolicy"], "PreemptLowerPriority");
        assert!(PriorityClassStrategy.validate(&pc).is_empty());
        let sys = json!({ "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": { "name": "system-x" }, "value": 1 });
        assert_eq!(
            fields(PriorityClassStrategy.validate(&sys)),
            vec![("metadata.name".into(), FieldErrorType::Forbidden)]
        );
        let mut up = pc.clone();
        up["value"] = json!(2000);
        assert_eq!(
            fields(PriorityClassStrategy.validate_update(&up, &pc)),
            vec![("value".into(), FieldErrorType::Forbidden)]
        );
    }
}
