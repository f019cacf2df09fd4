//! StatefulSets and DaemonSets (apps/v1).

use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use serde_json::{json, Value};

use super::meta::{selector_matches, validate_label_selector};
use super::pod_defaults::default_template;
use super::storage::{default_pvc, validate_pvc_spec};
use super::util::*;
use super::workloads::{
    apps_selector, positive_int_or_percent, replica_status, spec_of, template_for_replicas,
    validate_pod_template, zero,
};
use super::{unknown, Decoded, Strategy};
use crate::error::FieldError;

/// StatefulSets.
pub struct StatefulSetStrategy;

const STS_MUTABLE: &[&str] = &[
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
];

impl Strategy for StatefulSetStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<StatefulSet>(obj)
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        put(
            obj,
            "status",
            json!({ "replicas": 0, "availableReplicas": 0 }),
        );
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_from_old(new, old, "status");
    }

    fn prepare_for_status_update(&self, new: &mut Value, old: &Value) {
        keep_all_but_status(new, old);
    }

    fn default(&self, obj: &mut Value) {
        let Some(spec) = obj_mut(obj, "spec") else {
            return;
        };
        set_default_str(spec, "podManagementPolicy", "OrderedReady");
        if let Some(us) = obj_mut(spec, "updateStrategy") {
            if s(us, "type").is_empty() {
                us["type"] = json!("RollingUpdate");
                set_default(us, "rollingUpdate", json!({}));
            }
            if s(us, "type") == "RollingUpdate" {
                if let Some(ru) = us.get_mut("rollingUpdate").filter(|r| r.is_object()) {
                    set_default(ru, "partition", json!(0));
                    // MaxUnavailableStatefulSet is beta (on by default) since 1.35.
                    set_default(ru, "maxUnavailable", json!(1));
                }
            }
        }
        if let Some(p) = obj_mut(spec, "persistentVolumeClaimRetentionPolicy") {
            set_default_str(p, "whenDeleted", "Retain");
            set_default_str(p, "whenScaled", "Retain");
        }
        set_default(spec, "replicas", json!(1));
        set_default(spec, "revisionHistoryLimit", json!(10));
        // The v1 conversion writes out each template's apiVersion and kind.
        each_mut(spec, "volumeClaimTemplates", |t| {
            set_default_str(t, "apiVersion", "v1");
            set_default_str(t, "kind", "PersistentVolumeClaim");
            default_pvc(t);
        });
        default_template(obj_mut(spec, "template"));
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let spec = spec_of(obj);
        let mut errs = Vec::new();
        match s(spec, "podManagementPolicy") {
            "" => errs.push(FieldError::required("spec.podManagementPolicy", "")),
            "OrderedReady" | "Parallel" => {}
            other => errs.push(FieldError::invalid(
                "spec.podManagementPolicy",
                other,
                "must be 'OrderedReady' or 'Parallel'",
            )),
        }
        let us = spec.get("updateStrategy").unwrap_or(&Value::Null);
        match s(us, "type") {
            "" => errs.push(FieldError::required("spec.updateStrategy", "")),
            "OnDelete" => {
                if let Some(ru) = get(us, "rollingUpdate") {
                    errs.push(FieldError::invalid(
                        "spec.updateStrategy.rollingUpdate",
                        ru.clone(),
                        "only allowed for updateStrategy 'RollingUpdate'",
                    ));
                }
            }
            "RollingUpdate" => {
                if let Some(ru) = get(us, "rollingUpdate") {
                    let p = "spec.updateStrategy.rollingUpdate";
                    errs.extend(nonnegative(ru, "partition", &child(p, "partition")));
                    if let Some(mu) = get(ru, "maxUnavailable") {
                        positive_int_or_percent(Some(mu), &child(p, "maxUnavailable"), &mut errs);
                        if zero(Some(mu)) {
                            errs.push(FieldError::invalid(
                                child(p, "maxUnavailable"),
                                mu.clone(),
                                "must be greater than 0",
                            ));
                        }
                    }
                }
            }
            other => errs.push(FieldError::invalid(
                "spec.updateStrategy",
                other,
                "must be 'RollingUpdate' or 'OnDelete'",
            )),
        }
        if let Some(p) = get(spec, "persistentVolumeClaimRetentionPolicy") {
            for k in ["whenDeleted", "whenScaled"] {
                errs.extend(one_of(
                    &child("spec.persistentVolumeClaimRetentionPolicy", k),
                    s(p, k),
                    &["Retain", "Delete"],
                    false,
                ));
            }
        }
        errs.extend(nonnegative(spec, "replicas", "spec.replicas"));
        errs.extend(nonnegative(spec, "minReadySeconds", "spec.minReadySeconds"));
        if let Some(o) = get(spec, "ordinals") {
            errs.extend(nonnegative(o, "start", "spec.ordinals.start"));
        }
        if let Ok(matches) = apps_selector(spec, "statefulset", &mut errs) {
            template_for_replicas(
                get(spec, "template"),
                matches,
                "spec.template",
                "StatefulSet",
                &mut errs,
            );
        }
        for (i, t) in arr(spec, "volumeClaimTemplates").iter().enumerate() {
            let p = index("spec.volumeClaimTemplates", i);
            errs.extend(validate_pvc_spec(
                t.get("spec").unwrap_or(&Value::Null),
                &child(&p, "spec"),
            ));
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        let mut clone = spec_of(new).clone();
        for k in STS_MUTABLE {
            keep_from_old(&mut clone, spec_of(old), k);
        }
        if !same(Some(&clone), Some(spec_of(old))) {
            errs.push(FieldError::forbidden(
                "spec",
                "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
            ));
        }
        errs
    }

    fn validate_status_update(&self, new: &Value, _old: &Value) -> Vec<FieldError> {
        replica_status(new, true)
    }

    fn selectable_fields(&self, _obj: &Value) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

/// DaemonSets.
pub struct DaemonSetStrategy;

/// Where apps/v1 keeps the internal `spec.templateGeneration`.
pub(super) const TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";

fn template_generation(obj: &Value) -> i64 {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(TEMPLATE_GENERATION))
        .and_then(Value::as_str)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn set_template_generation(obj: &mut Value, g: i64) {
    if let Some(a) = obj_mut(obj, "metadata").and_then(|m| obj_mut(m, "annotations")) {
        a[TEMPLATE_GENERATION] = json!(g.to_string());
    }
}

impl Strategy for DaemonSetStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<DaemonSet>(obj)
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        put(
            obj,
            "status",
            json!({ "currentNumberScheduled": 0, "desiredNumberScheduled": 0, "numberMisscheduled": 0, "numberReady": 0 }),
        );
        let g = template_generation(obj).max(1);
        set_template_generation(obj, g);
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_from_old(new, old, "status");
        let changed = !same(new.pointer("/spec/template"), old.pointer("/spec/template"));
        let g = template_generation(old) + i64::from(changed);
        set_template_generation(new, g.max(1));
    }

    fn prepare_for_status_update(&self, new: &mut Value, old: &Value) {
        keep_all_but_status(new, old);
    }

    fn default(&self, obj: &mut Value) {
        let Some(spec) = obj_mut(obj, "spec") else {
            return;
        };
        if let Some(us) = obj_mut(spec, "updateStrategy") {
            set_default_str(us, "type", "RollingUpdate");
            if s(us, "type") == "RollingUpdate" {
                if let Some(ru) = obj_mut(us, "rollingUpdate") {
                    set_default(ru, "maxUnavailable", json!(1));
                    set_default(ru, "maxSurge", json!(0));
                }
            }
        }
        set_default(spec, "revisionHistoryLimit", json!(10));
        default_template(obj_mut(spec, "template"));
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let spec = spec_of(obj);
        let sel = get(spec, "selector");
        let mut errs = sel
            .map(|s| validate_label_selector(s, "spec.selector"))
            .unwrap_or_default();
        if errs.is_empty() && !selector_matches(sel, spec.pointer("/template/metadata/labels")) {
            let labels = spec
                .pointer("/template/metadata/labels")
                .cloned()
                .unwrap_or(Value::Null);
            errs.push(FieldError::invalid(
                "spec.template.metadata.labels",
                labels,
                "`selector` does not match template `labels`",
            ));
        }
        if let Some(sel) =
            sel.filter(|s| !non_empty(s, "matchLabels") && !non_empty(s, "matchExpressions"))
        {
            errs.push(FieldError::invalid(
                "spec.selector",
                sel.clone(),
                "empty selector is invalid for daemonset",
            ));
        }
        errs.extend(validate_pod_template(
            spec.get("template").unwrap_or(&Value::Null),
            "spec.template",
        ));
        let rp = spec
            .pointer("/template/spec/restartPolicy")
            .and_then(Value::as_str)
            .unwrap_or("");
        if rp != "Always" {
            errs.push(FieldError::not_supported(
                "spec.template.spec.restartPolicy",
                rp,
                &["Always"],
            ));
        }
        if let Some(a) = spec
            .pointer("/template/spec/activeDeadlineSeconds")
            .filter(|v| !v.is_null())
        {
            errs.push(FieldError::invalid(
                "spec.template.spec.activeDeadlineSeconds",
                a.clone(),
                "activeDeadlineSeconds must be nil for daemonset",
            ));
        }
        errs.extend(nonnegative(spec, "minReadySeconds", "spec.minReadySeconds"));
        errs.extend(nonnegative(
            spec,
            "revisionHistoryLimit",
            "spec.revisionHistoryLimit",
        ));
        let us = spec.get("updateStrategy").unwrap_or(&Value::Null);
        match s(us, "type") {
            "OnDelete" => {}
            "RollingUpdate" => match get(us, "rollingUpdate") {
                None => errs.push(FieldError::required(
                    "spec.updateStrategy.rollingUpdate",
                    "",
                )),
                Some(ru) => {
                    let p = "spec.updateStrategy.rollingUpdate";
                    positive_int_or_percent(
                        ru.get("maxUnavailable"),
                        &child(p, "maxUnavailable"),
                        &mut errs,
                    );
                    positive_int_or_percent(ru.get("maxSurge"), &child(p, "maxSurge"), &mut errs);
                    match (zero(ru.get("maxUnavailable")), zero(ru.get("maxSurge"))) {
                        (false, false) => errs.push(FieldError::invalid(
                            child(p, "maxSurge"),
                            ru.get("maxSurge").cloned().unwrap_or(Value::Null),
                            "may not be set when maxUnavailable is non-zero",
                        )),
                        (true, true) => errs.push(FieldError::required(
                            child(p, "maxUnavailable"),
                            "cannot be 0 when maxSurge is 0",
                        )),
                        _ => {}
                    }
                }
            },
            other => errs.push(FieldError::not_supported(
                "spec.updateStrategy.type",
                other,
                &["RollingUpdate", "OnDelete"],
            )),
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        errs.extend(immutable(
            spec_of(new),
            spec_of(old),
            "selector",
            "spec.selector",
        ));
        errs
    }

    fn validate_status_update(&self, new: &Value, _old: &Value) -> Vec<FieldError> {
        replica_status(new, false)
    }

    fn selectable_fields(&self, _obj: &Value) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}
