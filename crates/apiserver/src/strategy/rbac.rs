//! Roles, ClusterRoles and their bindings (rbac.authorization.k8s.io/v1).
//! Names are path segments (`system:controller:...`), rules need verbs, and
//! a binding's roleRef never changes.

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde_json::{json, Value};

use super::meta::validate_label_selector;
use super::names::*;
use super::util::*;
use super::{unknown, Decoded, Strategy};
use crate::error::FieldError;

const GROUP: &str = "rbac.authorization.k8s.io";

/// Upstream's `ValidatePolicyRule`.
fn validate_rules(obj: &Value, namespaced: bool, errs: &mut Vec<FieldError>) {
    for (i, r) in arr(obj, "rules").iter().enumerate() {
        let p = index("rules", i);
        if arr(r, "verbs").is_empty() {
            errs.push(FieldError::required(
                child(&p, "verbs"),
                "verbs must contain at least one value",
            ));
        }
        if non_empty(r, "nonResourceURLs") {
            let urls = r["nonResourceURLs"].clone();
            if namespaced {
                errs.push(FieldError::invalid(
                    child(&p, "nonResourceURLs"),
                    urls.clone(),
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if non_empty(r, "apiGroups")
                || non_empty(r, "resources")
                || non_empty(r, "resourceNames")
            {
                errs.push(FieldError::invalid(
                    child(&p, "nonResourceURLs"),
                    urls,
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if arr(r, "apiGroups").is_empty() {
            errs.push(FieldError::required(
                child(&p, "apiGroups"),
                "resource rules must supply at least one api group",
            ));
        }
        if arr(r, "resources").is_empty() {
            errs.push(FieldError::required(
                child(&p, "resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
}

fn validate_binding(obj: &Value, namespaced: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let rr = obj.get("roleRef").unwrap_or(&Value::Null);
    if s(rr, "apiGroup") != GROUP {
        errs.push(FieldError::not_supported(
            "roleRef.apiGroup",
            s(rr, "apiGroup"),
            &[GROUP],
        ));
    }
    let kinds: &[&str] = if namespaced {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    if !kinds.contains(&s(rr, "kind")) {
        errs.push(FieldError::not_supported(
            "roleRef.kind",
            s(rr, "kind"),
            kinds,
        ));
    }
    let name = s(rr, "name");
    if name.is_empty() {
        errs.push(FieldError::required("roleRef.name", ""));
    } else {
        errs.extend(invalid_each(
            "roleRef.name",
            name,
            path_segment_name(name, false),
        ));
    }
    for (i, sub) in arr(obj, "subjects").iter().enumerate() {
        let p = index("subjects", i);
        let name = s(sub, "name");
        if name.is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        }
        let group = s(sub, "apiGroup");
        match s(sub, "kind") {
            "ServiceAccount" => {
                if !name.is_empty() {
                    errs.extend(invalid_each(
                        &child(&p, "name"),
                        name,
                        name_is_dns_subdomain(name, false),
                    ));
                }
                if !group.is_empty() {
                    errs.push(FieldError::not_supported(
                        child(&p, "apiGroup"),
                        group,
                        &[""],
                    ));
                }
                if !namespaced && s(sub, "namespace").is_empty() {
                    errs.push(FieldError::required(child(&p, "namespace"), ""));
                }
            }
            "User" | "Group" => {
                if group != GROUP {
                    errs.push(FieldError::not_supported(
                        child(&p, "apiGroup"),
                        group,
                        &[GROUP],
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                child(&p, "kind"),
                other,
                &["ServiceAccount", "User", "Group"],
            )),
        }
    }
    errs
}

/// `SetDefaults_RoleBinding`/`ClusterRoleBinding` and `SetDefaults_Subject`.
fn default_binding(obj: &mut Value) {
    if let Some(rr) = obj_mut(obj, "roleRef") {
        set_default_str(rr, "apiGroup", GROUP);
    }
    each_mut(obj, "subjects", |sub| {
        if s(sub, "apiGroup").is_empty() && matches!(s(sub, "kind"), "User" | "Group") {
            sub["apiGroup"] = json!(GROUP);
        }
    });
}

fn role_validate(obj: &Value, namespaced: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    validate_rules(obj, namespaced, &mut errs);
    if let Some(agg) = get(obj, "aggregationRule") {
        let sels = arr(agg, "clusterRoleSelectors");
        if sels.is_empty() {
            errs.push(FieldError::required(
                "aggregationRule.clusterRoleSelectors",
                "at least one clusterRoleSelector required if aggregationRule is non-nil",
            ));
        }
        for (i, sel) in sels.iter().enumerate() {
            errs.extend(validate_label_selector(
                sel,
                &index("aggregationRule.clusterRoleSelectors", i),
            ));
        }
    }
    errs
}

fn binding_update(new: &Value, old: &Value, namespaced: bool) -> Vec<FieldError> {
    let mut errs = validate_binding(new, namespaced);
    if !same(new.get("roleRef"), old.get("roleRef")) {
        errs.push(FieldError::invalid(
            "roleRef",
            new.get("roleRef").cloned().unwrap_or(Value::Null),
            "cannot change roleRef",
        ));
    }
    errs
}

/// Roles.
pub struct RoleStrategy;

impl Strategy for RoleStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<Role>(obj)
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        role_validate(obj, true)
    }

    fn selectable_fields(&self, _obj: &Value) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

/// ClusterRoles.
pub struct ClusterRoleStrategy;

impl Strategy for ClusterRoleStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<ClusterRole>(obj)
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        role_validate(obj, false)
    }

    fn selectable_fields(&self, _obj: &Value) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

/// RoleBindings.
pub struct RoleBindingStrategy;

impl Strategy for RoleBindingStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<RoleBinding>(obj)
    }

    fn default(&self, obj: &mut Value) {
        default_binding(obj);
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        validate_binding(obj, true)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        binding_update(new, old, true)
    }

    fn selectable_fields(&self, _obj: &Value) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

/// ClusterRoleBindings.
pub struct ClusterRoleBindingStrategy;

impl Strategy for ClusterRoleBindingStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<ClusterRoleBinding>(obj)
    }

    fn default(&self, obj: &mut Value) {
        default_binding(obj);
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        validate_binding(obj, false)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        binding_update(new, old, false)
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
    fn roles_need_verbs_and_resources() {
        let role = json!({ "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": { "name": "r", "namespace": "d" },
            "rules": [{ "apiGroups": [""], "resources": ["pods"], "verbs": ["get"] }, { "apiGroups": [""] }, { "nonResourceURLs": ["/healthz"], "verbs": ["get"] }] });
        assert_eq!(
            fields(RoleStrategy.validate(&role)),
            vec![
                ("rules[1].verbs".into(), FieldErrorType::Required),
                ("rules[1].resources".into(), FieldErrorType::Required),
                ("rules[2].nonResourceURLs".into(), FieldErrorType::Invalid),
            ]
        );
        let cr = json!({ "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": { "name": "system:x" },
            "rules": [{ "nonResourceURLs": ["/healthz"], "verbs": ["get"] }] });
        assert!(ClusterRoleStrategy.validate(&cr).is_empty());
    }

    #[test]
    fn bindings_default_and_keep_role_ref() {
        let mut rb = json!({ "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": { "name": "b", "namespace": "d" },
            "roleRef": { "kind": "Role", "name": "r" }, "subjects": [{ "kind": "User", "name": "alice" }, { "kind": "ServiceAccount", "name": "default" }] });
        RoleBindingStrategy.default(&mut rb);
        assert_eq!(rb["roleRef"]["apiGroup"], GROUP);
        assert_eq!(rb["subjects"][0]["apiGroup"], GROUP);
        assert!(rb["subjects"][1].get("apiGroup").is_none());
        assert!(
            RoleBindingStrategy.validate(&rb).is_empty(),
            "{:?}",
            RoleBindingStrategy.validate(&rb)
        );
        let mut changed = rb.clone();
        changed["roleRef"]["name"] = json!("other");
        assert_eq!(
            fields(RoleBindingStrategy.validate_update(&changed, &rb)),
            vec![("roleRef".into(), FieldErrorType::Invalid)]
        );
        let crb = json!({ "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": { "name": "b" },
            "roleRef": { "apiGroup": GROUP, "kind": "Role", "name": "r" }, "subjects": [{ "kind": "ServiceAccount", "name": "default" }] });
        assert_eq!(
            fields(ClusterRoleBindingStrategy.validate(&crb)),
            vec![
                ("roleRef.kind".into(), FieldErrorType::NotSupported),
                ("subjects[0].namespace".into(), FieldErrorType::Required)
            ]
        );
    }
}
