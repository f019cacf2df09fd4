//! Workloads that run pods from a template: Deployments and ReplicaSets
//! (apps/v1), ReplicationControllers (core/v1), the ControllerRevisions they
//! keep history in, and the template and selector rules StatefulSets and
//! DaemonSets (see [`super::sets`]) share with them.

use k8s_openapi::api::apps::v1::{ControllerRevision, Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::ReplicationController;
use serde_json::{json, Value};

use super::meta::{
    map_selector_matches, selector_matches, validate_annotations, validate_label_selector,
    validate_labels,
};
use super::names::*;
use super::pod_defaults::default_template;
use super::podspec::validate_pod_spec;
use super::util::*;
use super::{unknown, Decoded, Strategy};
use crate::error::FieldError;

/// Upstream's `ValidatePodTemplateSpec` (labels and annotations are reported
/// at `<template>.labels`, as upstream does).
pub fn validate_pod_template(t: &Value, path: &str) -> Vec<FieldError> {
    let meta = t.get("metadata").unwrap_or(&Value::Null);
    let mut errs = validate_labels(meta.get("labels"), &child(path, "labels"));
    errs.extend(validate_annotations(
        meta.get("annotations"),
        &child(path, "annotations"),
    ));
    let spec = t.get("spec").unwrap_or(&Value::Null);
    errs.extend(validate_pod_spec(spec, &child(path, "spec"), false));
    if non_empty(spec, "ephemeralContainers") {
        errs.push(FieldError::forbidden(
            child(path, "spec.ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}

/// Upstream's `ValidatePodTemplateSpecForReplicaSet` (and its RC twin):
/// `matches` is `None` when the selector is empty and so not checked.
pub(super) fn template_for_replicas(
    t: Option<&Value>,
    matches: Option<bool>,
    path: &str,
    what: &str,
    errs: &mut Vec<FieldError>,
) {
    let Some(t) = t.filter(|t| !t.is_null()) else {
        errs.push(FieldError::required(path, ""));
        return;
    };
    if matches == Some(false) {
        let labels = t
            .pointer("/metadata/labels")
            .cloned()
            .unwrap_or(Value::Null);
        errs.push(FieldError::invalid(
            child(path, "metadata.labels"),
            labels,
            "`selector` does not match template `labels`",
        ));
    }
    errs.extend(validate_pod_template(t, path));
    let rp = t
        .pointer("/spec/restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or("");
    if rp != "Always" {
        errs.push(FieldError::not_supported(
            child(path, "spec.restartPolicy"),
            rp,
            &["Always"],
        ));
    }
    if t.pointer("/spec/activeDeadlineSeconds")
        .is_some_and(|v| !v.is_null())
    {
        errs.push(FieldError::forbidden(
            child(path, "spec.activeDeadlineSeconds"),
            format!("activeDeadlineSeconds in {what} is not Supported"),
        ));
    }
}

/// Selector checks shared by the apps kinds; returns whether the template
/// should be checked against it (`Some(matches)`), `None` when it is empty,
/// or `Err` when the selector itself is invalid.
pub(super) fn apps_selector(
    spec: &Value,
    what: &str,
    errs: &mut Vec<FieldError>,
) -> Result<Option<bool>, ()> {
    let sel = get(spec, "selector");
    let labels = spec.pointer("/template/metadata/labels");
    match sel {
        None => {
            errs.push(FieldError::required("spec.selector", ""));
            Ok(Some(false))
        }
        Some(sel) => {
            let sel_errs = validate_label_selector(sel, "spec.selector");
            let invalid = !sel_errs.is_empty();
            errs.extend(sel_errs);
            let empty = !non_empty(sel, "matchLabels") && !non_empty(sel, "matchExpressions");
            if empty {
                errs.push(FieldError::invalid(
                    "spec.selector",
                    sel.clone(),
                    format!("empty selector is invalid for {what}"),
                ));
            }
            if invalid {
                errs.push(FieldError::invalid(
                    "spec.selector",
                    sel.clone(),
                    "invalid label selector",
                ));
                return Err(());
            }
            Ok((!empty).then(|| selector_matches(Some(sel), labels)))
        }
    }
}

fn int_or_percent(v: &Value) -> Option<(i64, bool)> {
    match v {
        Value::Number(n) => n.as_i64().map(|n| (n, false)),
        Value::String(s) => s
            .strip_suffix('%')
            .and_then(|n| n.parse().ok())
            .map(|n| (n, true)),
        _ => None,
    }
}

/// Upstream's `ValidatePositiveIntOrPercent` and `IsNotMoreThan100Percent`.
pub fn positive_int_or_percent(v: Option<&Value>, path: &str, errs: &mut Vec<FieldError>) {
    match v {
        Some(Value::String(s)) => {
            errs.extend(invalid_each(path, s, is_valid_percent(s)));
            if int_or_percent(&json!(s)).is_some_and(|(n, _)| n > 100) {
                errs.push(FieldError::invalid(
                    path,
                    s.as_str(),
                    "must not be greater than 100%",
                ));
            }
        }
        Some(Value::Number(n)) if n.as_i64().unwrap_or(0) < 0 => {
            errs.push(FieldError::invalid(path, n.as_i64().unwrap_or(0), NEGATIVE));
        }
        _ => {}
    }
}

pub(super) fn zero(v: Option<&Value>) -> bool {
    v.and_then(int_or_percent).is_none_or(|(n, _)| n == 0)
}

/// Status counters may not be negative, nor exceed `replicas`.
pub(super) fn replica_status(obj: &Value, counted: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let st = obj.get("status").unwrap_or(&Value::Null);
    if let Some(m) = st.as_object() {
        for k in m.keys() {
            errs.extend(nonnegative(st, k, &child("status", k)));
        }
    }
    if counted {
        let replicas = int(st, "replicas").unwrap_or(0);
        for k in [
            "fullyLabeledReplicas",
            "currentReplicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
        ] {
            if let Some(n) = int(st, k).filter(|n| *n > replicas) {
                errs.push(FieldError::invalid(
                    child("status", k),
                    n,
                    "cannot be greater than status.replicas",
                ));
            }
        }
        if let Some(n) =
            int(st, "availableReplicas").filter(|n| *n > int(st, "readyReplicas").unwrap_or(0))
        {
            errs.push(FieldError::invalid(
                "status.availableReplicas",
                n,
                "cannot be greater than readyReplicas",
            ));
        }
    }
    errs
}

pub(super) fn spec_of(obj: &Value) -> &Value {
    obj.get("spec").unwrap_or(&Value::Null)
}

fn default_spec_template(obj: &mut Value) {
    if let Some(spec) = obj_mut(obj, "spec") {
        default_template(obj_mut(spec, "template"));
    }
}

/// Deployments.
pub struct DeploymentStrategy;

impl Strategy for DeploymentStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<Deployment>(obj)
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        put(obj, "status", json!({}));
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_from_old(new, old, "status");
        // Annotations are copied to ReplicaSets, so changing them is a new generation too.
        if !same(
            new.pointer("/metadata/annotations"),
            old.pointer("/metadata/annotations"),
        ) {
            let g = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                + 1;
            if let Some(m) = obj_mut(new, "metadata") {
                m["generation"] = json!(g);
            }
        }
    }

    fn prepare_for_status_update(&self, new: &mut Value, old: &Value) {
        keep_all_but_status(new, old);
        if let (Some(m), Some(om)) = (new.get_mut("metadata"), old.get("metadata")) {
            keep_from_old(m, om, "labels");
        }
    }

    fn default(&self, obj: &mut Value) {
        let Some(spec) = obj_mut(obj, "spec") else {
            return;
        };
        set_default(spec, "replicas", json!(1));
        if let Some(st) = obj_mut(spec, "strategy") {
            set_default_str(st, "type", "RollingUpdate");
            if s(st, "type") == "RollingUpdate" {
                if let Some(ru) = obj_mut(st, "rollingUpdate") {
                    set_default(ru, "maxUnavailable", json!("25%"));
                    set_default(ru, "maxSurge", json!("25%"));
                }
            }
        }
        set_default(spec, "revisionHistoryLimit", json!(10));
        set_default(spec, "progressDeadlineSeconds", json!(600));
        default_template(obj_mut(spec, "template"));
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let spec = spec_of(obj);
        let mut errs = nonnegative(spec, "replicas", "spec.replicas");
        if let Ok(matches) = apps_selector(spec, "deployment", &mut errs) {
            template_for_replicas(
                get(spec, "template"),
                matches,
                "spec.template",
                "ReplicaSet",
                &mut errs,
            );
        }
        let st = spec.get("strategy").unwrap_or(&Value::Null);
        match s(st, "type") {
            "Recreate" => {
                if get(st, "rollingUpdate").is_some() {
                    errs.push(FieldError::forbidden(
                        "spec.strategy.rollingUpdate",
                        "may not be specified when strategy `type` is 'Recreate'",
                    ));
                }
            }
            "RollingUpdate" => match get(st, "rollingUpdate") {
                None => errs.push(FieldError::required(
                    "spec.strategy.rollingUpdate",
                    "this should be defaulted and never be nil",
                )),
                Some(ru) => {
                    let p = "spec.strategy.rollingUpdate";
                    positive_int_or_percent(
                        ru.get("maxUnavailable"),
                        &child(p, "maxUnavailable"),
                        &mut errs,
                    );
                    positive_int_or_percent(ru.get("maxSurge"), &child(p, "maxSurge"), &mut errs);
                    if zero(ru.get("maxUnavailable")) && zero(ru.get("maxSurge")) {
                        errs.push(FieldError::invalid(
                            child(p, "maxUnavailable"),
                            ru.get("maxUnavailable").cloned().unwrap_or(json!(0)),
                            "may not be 0 when `maxSurge` is 0",
                        ));
                    }
                }
            },
            other => errs.push(FieldError::not_supported(
                "spec.strategy.type",
                other,
                &["Recreate", "RollingUpdate"],
            )),
        }
        errs.extend(nonnegative(spec, "minReadySeconds", "spec.minReadySeconds"));
        errs.extend(nonnegative(
            spec,
            "revisionHistoryLimit",
            "spec.revisionHistoryLimit",
        ));
        if let Some(pds) = int(spec, "progressDeadlineSeconds") {
            errs.extend(nonnegative(
                spec,
                "progressDeadlineSeconds",
                "spec.progressDeadlineSeconds",
            ));
            if pds <= int(spec, "minReadySeconds").unwrap_or(0) {
                errs.push(FieldError::invalid(
                    "spec.progressDeadlineSeconds",
                    pds,
                    "must be greater than minReadySeconds",
                ));
            }
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
        replica_status(new, true)
    }

    fn selectable_fields(&self, _obj: &Value) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

/// ReplicaSets.
pub struct ReplicaSetStrategy;

impl Strategy for ReplicaSetStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<ReplicaSet>(obj)
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        put(obj, "status", json!({ "replicas": 0 }));
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_from_old(new, old, "status");
    }

    fn prepare_for_status_update(&self, new: &mut Value, old: &Value) {
        keep_all_but_status(new, old);
    }

    fn default(&self, obj: &mut Value) {
        if let Some(spec) = obj_mut(obj, "spec") {
            set_default(spec, "replicas", json!(1));
        }
        default_spec_template(obj);
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let spec = spec_of(obj);
        let mut errs = nonnegative(spec, "replicas", "spec.replicas");
        errs.extend(nonnegative(spec, "minReadySeconds", "spec.minReadySeconds"));
        // Upstream says "deployment" here too.
        if let Ok(matches) = apps_selector(spec, "deployment", &mut errs) {
            template_for_replicas(
                get(spec, "template"),
                matches,
                "spec.template",
                "ReplicaSet",
                &mut errs,
            );
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
        replica_status(new, true)
    }

    fn selectable_fields(&self, obj: &Value) -> Vec<(&'static str, String)> {
        vec![(
            "status.replicas",
            int(obj.get("status").unwrap_or(&Value::Null), "replicas")
                .unwrap_or(0)
                .to_string(),
        )]
    }
}

/// ReplicationControllers (core/v1).
pub struct ReplicationControllerStrategy;

impl Strategy for ReplicationControllerStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<ReplicationController>(obj)
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        put(obj, "status", json!({ "replicas": 0 }));
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_from_old(new, old, "status");
    }

    fn prepare_for_status_update(&self, new: &mut Value, old: &Value) {
        keep_all_but_status(new, old);
    }

    fn default(&self, obj: &mut Value) {
        let labels = obj
            .pointer("/spec/template/metadata/labels")
            .filter(|l| l.is_object())
            .cloned();
        if let Some(labels) = labels {
            if let Some(spec) = obj_mut(obj, "spec") {
                if !non_empty(spec, "selector") {
                    spec["selector"] = labels.clone();
                }
            }
            if let Some(m) = obj_mut(obj, "metadata") {
                if !non_empty(m, "labels") {
                    m["labels"] = labels;
                }
            }
        }
        if let Some(spec) = obj_mut(obj, "spec") {
            set_default(spec, "replicas", json!(1));
        }
        default_spec_template(obj);
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let spec = spec_of(obj);
        let mut errs = nonnegative(spec, "minReadySeconds", "spec.minReadySeconds");
        let sel = get(spec, "selector");
        let empty = sel.and_then(Value::as_object).is_none_or(|m| m.is_empty());
        if empty {
            errs.push(FieldError::required("spec.selector", ""));
        }
        errs.extend(validate_labels(sel, "spec.selector"));
        errs.extend(nonnegative(spec, "replicas", "spec.replicas"));
        let matches =
            (!empty).then(|| map_selector_matches(sel, spec.pointer("/template/metadata/labels")));
        template_for_replicas(
            get(spec, "template"),
            matches,
            "spec.template",
            "ReplicationController",
            &mut errs,
        );
        errs
    }

    fn validate_status_update(&self, new: &Value, _old: &Value) -> Vec<FieldError> {
        replica_status(new, true)
    }

    fn selectable_fields(&self, obj: &Value) -> Vec<(&'static str, String)> {
        vec![(
            "status.replicas",
            int(obj.get("status").unwrap_or(&Value::Null), "replicas")
                .unwrap_or(0)
                .to_string(),
        )]
    }
}

/// ControllerRevisions: immutable snapshots of a template.
pub struct ControllerRevisionStrategy;

impl Strategy for ControllerRevisionStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<ControllerRevision>(obj)
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if get(obj, "data").is_none() {
            errs.push(FieldError::required("data", "data is mandatory"));
        }
        errs.extend(nonnegative(obj, "revision", "revision"));
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        errs.extend(immutable(new, old, "data", "data"));
        errs
    }

    fn selectable_fields(&self, _obj: &Value) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

#[cfg(test)]
#[path = "workloads_tests.rs"]
mod tests;
