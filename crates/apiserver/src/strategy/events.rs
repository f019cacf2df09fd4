//! Events, in both APIs: core/v1 (validated leniently, as upstream keeps old
//! clients working) and events.k8s.io/v1 (strict for new events). Both are
//! checked through the core shape, as upstream validates the internal type.

use k8s_openapi::api::core::v1::Event as CoreEvent;
use k8s_openapi::api::events::v1::Event;
use serde_json::{json, Value};

use super::names::*;
use super::util::*;
use super::{unknown, Decoded, Strategy};
use crate::error::FieldError;

const LIMIT: usize = 128;
const NOTE_LIMIT: usize = 1024;

/// An events.k8s.io Event seen as the internal (core-shaped) Event.
fn core_view(e: &Value) -> Value {
    let g = |k: &str| e.get(k).cloned().unwrap_or(Value::Null);
    json!({
        "metadata": g("metadata"),
        "involvedObject": g("regarding"),
        "related": g("related"),
        "message": g("note"),
        "reason": g("reason"),
        "type": g("type"),
        "eventTime": g("eventTime"),
        "series": g("series"),
        "action": g("action"),
        "reportingComponent": g("reportingController"),
        "reportingInstance": g("reportingInstance"),
        "source": g("deprecatedSource"),
        "firstTimestamp": g("deprecatedFirstTimestamp"),
        "lastTimestamp": g("deprecatedLastTimestamp"),
        "count": g("deprecatedCount"),
    })
}

fn set(v: &Value, k: &str) -> bool {
    get(v, k).is_some_and(|x| x.as_str() != Some(""))
}

/// Upstream's `legacyValidateEvent`; `controller_field` names the reporting
/// controller as the request's API version spells it.
fn legacy(e: &Value, controller_field: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ns = e
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let involved = e.get("involvedObject").unwrap_or(&Value::Null);
    let ins = s(involved, "namespace");
    if !set(e, "eventTime") {
        let ok = if ins.is_empty() {
            ns.is_empty() || ns == "default"
        } else {
            ns == ins
        };
        if !ok {
            errs.push(FieldError::invalid(
                "involvedObject.namespace",
                ins,
                "does not match event.namespace",
            ));
        }
    } else {
        if ins.is_empty() && ns != "default" && ns != "kube-system" {
            errs.push(FieldError::invalid(
                "involvedObject.namespace",
                ins,
                "does not match event.namespace",
            ));
        }
        let rc = s(e, "reportingComponent");
        if rc.is_empty() {
            errs.push(FieldError::required(controller_field, ""));
        }
        errs.extend(invalid_each(controller_field, rc, is_qualified_name(rc)));
        for (k, limit) in [
            ("reportingInstance", LIMIT),
            ("action", LIMIT),
            ("reason", LIMIT),
        ] {
            let v = s(e, k);
            if v.is_empty() {
                errs.push(FieldError::required(k, ""));
            }
            if v.len() > limit {
                errs.push(FieldError::invalid(
                    k,
                    "",
                    format!("can have at most {limit} characters"),
                ));
            }
        }
        if s(e, "message").len() > NOTE_LIMIT {
            errs.push(FieldError::invalid(
                "message",
                "",
                format!("can have at most {NOTE_LIMIT} characters"),
            ));
        }
    }
    errs.extend(invalid_each("namespace", ns, is_dns1123_subdomain(ns)));
    errs
}

fn series(e: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(sr) = get(e, "series") {
        if int(sr, "count").unwrap_or(0) < 2 {
            errs.push(FieldError::invalid(
                "series.count",
                "",
                "should be at least 2",
            ));
        }
        if !set(sr, "lastObservedTime") {
            errs.push(FieldError::required("series.lastObservedTime", ""));
        }
    }
    errs
}

fn selectable(core: &Value) -> Vec<(&'static str, String)> {
    let io = core.get("involvedObject").unwrap_or(&Value::Null);
    let source = match core
        .pointer("/source/component")
        .and_then(Value::as_str)
        .unwrap_or("")
    {
        "" => s(core, "reportingComponent"),
        c => c,
    };
    vec![
        ("involvedObject.kind", s(io, "kind").to_string()),
        ("involvedObject.namespace", s(io, "namespace").to_string()),
        ("involvedObject.name", s(io, "name").to_string()),
        ("involvedObject.uid", s(io, "uid").to_string()),
        ("involvedObject.apiVersion", s(io, "apiVersion").to_string()),
        (
            "involvedObject.resourceVersion",
            s(io, "resourceVersion").to_string(),
        ),
        ("involvedObject.fieldPath", s(io, "fieldPath").to_string()),
        ("reason", s(core, "reason").to_string()),
        (
            "reportingComponent",
            s(core, "reportingComponent").to_string(),
        ),
        ("source", source.to_string()),
        ("type", s(core, "type").to_string()),
    ]
}

/// core/v1 Events.
pub struct CoreEventStrategy;

impl Strategy for CoreEventStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<CoreEvent>(obj)
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        legacy(obj, "reportingComponent")
    }

    fn selectable_fields(&self, obj: &Value) -> Vec<(&'static str, String)> {
        selectable(obj)
    }
}

/// events.k8s.io/v1 Events.
pub struct EventStrategy;

const EVENT_IMMUTABLE: &[&str] = &[
    "involvedObject",
    "reason",
    "message",
    "source",
    "firstTimestamp",
    "lastTimestamp",
    "count",
    "type",
    "eventTime",
    "action",
    "related",
    "reportingComponent",
    "reportingInstance",
];

impl Strategy for EventStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<Event>(obj)
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let e = core_view(obj);
        let mut errs = legacy(&e, "reportingController");
        errs.extend(series(&e));
        if !set(&e, "eventTime") {
            errs.push(FieldError::required("eventTime", ""));
        }
        let t = s(&e, "type");
        if t != "Normal" && t != "Warning" {
            errs.push(FieldError::invalid(
                "type",
                "",
                format!("has invalid value: {t}"),
            ));
        }
        for k in ["firstTimestamp", "lastTimestamp"] {
            if set(&e, k) {
                errs.push(FieldError::invalid(k, "", "needs to be unset"));
            }
        }
        if int(&e, "count").unwrap_or(0) != 0 {
            errs.push(FieldError::invalid("count", "", "needs to be unset"));
        }
        let src = e.get("source").unwrap_or(&Value::Null);
        if set(src, "component") || set(src, "host") {
            errs.push(FieldError::invalid(
                "deprecatedSource",
                "",
                "needs to be unset",
            ));
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let (n, o) = (core_view(new), core_view(old));
        let mut errs = legacy(&n, "reportingController");
        if !same(n.get("series"), o.get("series")) {
            errs.extend(series(&n));
        }
        for k in EVENT_IMMUTABLE {
            let field = if *k == "reportingComponent" {
                "reportingController"
            } else {
                k
            };
            errs.extend(immutable(&n, &o, k, field));
        }
        errs
    }

    fn selectable_fields(&self, obj: &Value) -> Vec<(&'static str, String)> {
        let core = core_view(obj);
        let mut f = selectable(&core);
        let io = core.get("involvedObject").unwrap_or(&Value::Null);
        for (name, k) in [
            ("regarding.kind", "kind"),
            ("regarding.namespace", "namespace"),
            ("regarding.name", "name"),
            ("regarding.uid", "uid"),
            ("regarding.apiVersion", "apiVersion"),
            ("regarding.resourceVersion", "resourceVersion"),
            ("regarding.fieldPath", "fieldPath"),
        ] {
            f.push((name, s(io, k).to_string()));
        }
        f.push((
            "reportingController",
            s(&core, "reportingComponent").to_string(),
        ));
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FieldErrorType;

    use crate::strategy::error_fields as fields;

    #[test]
    fn core_events_are_lenient() {
        let e = json!({ "apiVersion": "v1", "kind": "Event", "metadata": { "name": "web.17a", "namespace": "default" },
            "involvedObject": { "kind": "Pod", "name": "web", "namespace": "default" }, "reason": "Pulled", "message": "ok",
            "source": { "component": "kubelet", "host": "n1" }, "type": "Normal", "count": 1 });
        assert!(CoreEventStrategy.validate(&e).is_empty());
        let f = CoreEventStrategy.selectable_fields(&e);
        assert!(f.contains(&("involvedObject.name", "web".to_string())));
        assert!(f.contains(&("source", "kubelet".to_string())));
        let mut other = e.clone();
        other["involvedObject"]["namespace"] = json!("kube-system");
        assert_eq!(
            fields(CoreEventStrategy.validate(&other)),
            vec![("involvedObject.namespace".into(), FieldErrorType::Invalid)]
        );
    }

    #[test]
    fn new_events_need_their_fields() {
        let e = json!({ "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": { "name": "x", "namespace": "default" },
            "regarding": { "kind": "Pod", "name": "web", "namespace": "default" } });
        assert_eq!(
            fields(EventStrategy.validate(&e)),
            vec![
                ("eventTime".into(), FieldErrorType::Required),
                ("type".into(), FieldErrorType::Invalid),
            ]
        );
        let mut full = e.clone();
        full["eventTime"] = json!("2024-01-01T00:00:00.000000Z");
        full["type"] = json!("Normal");
        assert_eq!(
            fields(EventStrategy.validate(&full)),
            vec![
                ("reportingController".into(), FieldErrorType::Required),
                ("reportingController".into(), FieldErrorType::Invalid),
                ("reportingController".into(), FieldErrorType::Invalid),
                ("reportingInstance".into(), FieldErrorType::Required),
                ("action".into(), FieldErrorType::Required),
                ("reason".into(), FieldErrorType::Required),
            ]
        );
        for (k, v) in [
            ("reportingController", "example.com/ctl"),
            ("reportingInstance", "ctl-1"),
            ("action", "Scheduling"),
            ("reason", "Scheduled"),
        ] {
            full[k] = json!(v);
        }
        assert!(
            EventStrategy.validate(&full).is_empty(),
            "{:?}",
            EventStrategy.validate(&full)
        );
        let mut changed = full.clone();
        changed["note"] = json!("different");
        assert_eq!(
            fields(EventStrategy.validate_update(&changed, &full)),
            vec![("message".into(), FieldErrorType::Invalid)]
        );
    }
}
