//! RuntimeClasses (node.k8s.io/v1), as upstream's
//! `pkg/apis/node/validation`: the handler is a DNS-1123 label and never
//! changes; the overhead is checked as container limits are; the scheduling
//! constraints as a pod's node selector and tolerations, without duplicate
//! tolerations.

use std::collections::HashSet;

use k8s_openapi::api::node::v1::RuntimeClass;
use serde_json::{json, Value};

use super::container::validate_resources;
use super::meta::validate_labels;
use super::names::name_is_dns_label;
use super::podextra::validate_tolerations;
use super::quantity::canonicalize_list;
use super::util::*;
use super::{unknown, Decoded, Strategy};
use crate::error::FieldError;

/// RuntimeClasses.
pub struct RuntimeClassStrategy;

impl Strategy for RuntimeClassStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<RuntimeClass>(obj)
    }

    fn default(&self, obj: &mut Value) {
        // Quantities are stored in canonical form, as upstream's round trip
        // through `resource.Quantity` writes them.
        canonicalize_list(at_mut(obj, &["overhead", "podFixed"]));
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let handler = s(obj, "handler");
        errs.extend(invalid_each(
            "handler",
            handler,
            name_is_dns_label(handler, false),
        ));
        if let Some(o) = get(obj, "overhead") {
            // Upstream reuses the container resource checks, as limits.
            let limits = json!({ "limits": o.get("podFixed").cloned().unwrap_or(Value::Null) });
            validate_resources(&limits, "overhead", &mut errs);
        }
        if let Some(sc) = get(obj, "scheduling") {
            errs.extend(validate_labels(
                sc.get("nodeSelector"),
                "scheduling.nodeSelector",
            ));
            let tolerations = arr(sc, "tolerations");
            let path = "scheduling.tolerations";
            validate_tolerations(tolerations, path, &mut errs);
            let mut seen = HashSet::new();
            for (i, t) in tolerations.iter().enumerate() {
                let k = (s(t, "key"), s(t, "operator"), s(t, "value"), s(t, "effect"));
                if !seen.insert(k) {
                    errs.push(FieldError::duplicate(index(path, i), t.clone()));
                }
            }
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        errs.extend(immutable(new, old, "handler", "handler"));
        errs
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

    fn rc(extra: Value) -> Value {
        let mut v = json!({ "apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
            "metadata": { "name": "gvisor" }, "handler": "runsc" });
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    }

    #[test]
    fn the_handler_is_a_dns_label() {
        assert!(RuntimeClassStrategy.validate(&rc(json!({}))).is_empty());
        for bad in ["", "Runsc", "run_sc", "-x"] {
            let errs = RuntimeClassStrategy.validate(&rc(json!({ "handler": bad })));
            assert_eq!(
                fields(errs.clone()),
                vec![("handler".into(), FieldErrorType::Invalid)],
                "{bad}"
            );
            assert!(
                errs[0]
                    .message()
                    .contains("a lowercase RFC 1123 label must consist of"),
                "{}",
                errs[0].message()
            );
        }
        let dotted = RuntimeClassStrategy.validate(&rc(json!({ "handler": "run.sc" })));
        assert_eq!(
            dotted[0].message(),
            "handler: Invalid value: \"run.sc\": must not contain dots"
        );
        let mut no_handler = rc(json!({}));
        no_handler.as_object_mut().unwrap().remove("handler");
        assert_eq!(
            fields(RuntimeClassStrategy.validate(&no_handler)),
            vec![("handler".into(), FieldErrorType::Invalid)]
        );
    }

    #[test]
    fn the_handler_is_immutable() {
        let old = rc(json!({}));
        let new = rc(json!({ "handler": "kata" }));
        let errs = RuntimeClassStrategy.validate_update(&new, &old);
        assert_eq!(
            fields(errs.clone()),
            vec![("handler".into(), FieldErrorType::Invalid)]
        );
        assert_eq!(
            errs[0].message(),
            "handler: Invalid value: \"kata\": field is immutable"
        );
        let mut labelled = old.clone();
        labelled["metadata"]["labels"] = json!({ "a": "b" });
        assert!(RuntimeClassStrategy
            .validate_update(&labelled, &old)
            .is_empty());
    }

    #[test]
    fn overhead_and_scheduling() {
        let mut ok = rc(json!({
            "overhead": { "podFixed": { "cpu": "250m", "memory": "0.5Gi" } },
            "scheduling": { "nodeSelector": { "runtime": "gvisor" },
                "tolerations": [{ "key": "runtime", "operator": "Equal", "value": "gvisor", "effect": "NoSchedule" }] }
        }));
        RuntimeClassStrategy.default(&mut ok);
        assert_eq!(ok["overhead"]["podFixed"]["memory"], "512Mi");
        assert!(RuntimeClassStrategy.validate(&ok).is_empty());
        let bad = rc(json!({
            "overhead": { "podFixed": { "cpu": "-1", "pods": "1" } },
            "scheduling": { "nodeSelector": { "bad key!": "v" },
                "tolerations": [
                    { "key": "a", "operator": "Exists", "effect": "NoSchedule" },
                    { "key": "a", "operator": "Exists", "effect": "NoSchedule" },
                    { "operator": "Equal", "value": "x" }
                ] }
        }));
        let got = fields(RuntimeClassStrategy.validate(&bad));
        for want in [
            ("overhead.limits[cpu]", FieldErrorType::Invalid),
            ("overhead.limits[pods]", FieldErrorType::Invalid),
            ("scheduling.nodeSelector", FieldErrorType::Invalid),
            ("scheduling.tolerations[1]", FieldErrorType::Duplicate),
            (
                "scheduling.tolerations[2].operator",
                FieldErrorType::Invalid,
            ),
        ] {
            assert!(
                got.contains(&(want.0.to_string(), want.1)),
                "{want:?} not in {got:?}"
            );
        }
    }
}
