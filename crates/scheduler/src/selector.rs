//! Label selectors (metav1.LabelSelector) against a label set.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Whether the selector selects the labels: every `matchLabels` pair and
/// every expression holds. An empty selector selects everything; an
/// unknown operator selects nothing.
pub fn selector_matches(sel: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let pairs_ok = sel
        .match_labels
        .as_ref()
        .is_none_or(|m| m.iter().all(|(k, v)| labels.get(k) == Some(v)));
    pairs_ok
        && sel.match_expressions.iter().flatten().all(|e| {
            let values = e.values.as_deref().unwrap_or_default();
            let v = labels.get(&e.key);
            match e.operator.as_str() {
                "In" => v.is_some_and(|v| values.contains(v)),
                "NotIn" => v.is_none_or(|v| !values.contains(v)),
                "Exists" => v.is_some(),
                "DoesNotExist" => v.is_none(),
                _ => false,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sel(v: serde_json::Value) -> LabelSelector {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn selectors() {
        let labels = BTreeMap::from([("app".to_string(), "web".to_string())]);
        assert!(selector_matches(&sel(json!({})), &labels));
        assert!(selector_matches(
            &sel(json!({"matchLabels": {"app": "web"}})),
            &labels
        ));
        assert!(!selector_matches(
            &sel(json!({"matchLabels": {"app": "db"}})),
            &labels
        ));
        let e = |op: &str, vals: serde_json::Value| {
            sel(json!({"matchExpressions": [{"key": "app", "operator": op, "values": vals}]}))
        };
        assert!(selector_matches(&e("In", json!(["web", "x"])), &labels));
        assert!(!selector_matches(&e("NotIn", json!(["web"])), &labels));
        assert!(selector_matches(&e("Exists", json!(null)), &labels));
        assert!(!selector_matches(&e("DoesNotExist", json!(null)), &labels));
        assert!(!selector_matches(&e("Bogus", json!(null)), &labels));
    }
}
