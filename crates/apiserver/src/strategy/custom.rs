//! Custom resources: the strategy is driven by the CRD's structural schema
//! for the version being served (upstream's `customResourceStrategy`).
//!
//! - Unknown fields are what pruning would remove (and unknown `metadata`
//!   fields, as ObjectMeta decoding drops them), so `fieldValidation` treats
//!   them like a typed kind's.
//! - Before anything else a write is coerced as upstream's decoder does:
//!   pruned, non-nullable `null`s dropped, defaulted.
//! - With a `status` subresource, the main resource cannot change status and
//!   `/status` can change nothing else; `metadata.generation` moves when
//!   anything but metadata changes (status included, without the subresource).
//! - Validation is the OpenAPI schema (with upstream's ratcheting: errors in
//!   values an update leaves unchanged are not reported), embedded resources'
//!   metadata, list-set/map uniqueness and the scale paths.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{json, Value};

use super::names::is_dns1035_label;
use super::unknown;
use super::util::keep_from_old;
use super::{Decoded, Strategy};
use crate::crd::{self, schema::Schema, CrdDef, VersionDef};
use crate::error::FieldError;
use crate::resources::ResourceInfo;

/// The strategy of one served custom resource version.
pub struct CustomStrategy {
    info: &'static ResourceInfo,
}

/// The strategy for `info`: one per interned resource, kept for the process.
pub fn strategy_for(info: &'static ResourceInfo) -> &'static dyn Strategy {
    static STRATEGIES: OnceLock<Mutex<HashMap<usize, &'static CustomStrategy>>> = OnceLock::new();
    let mut m = STRATEGIES
        .get_or_init(Default::default)
        .lock()
        .expect("custom strategies lock");
    let key = info as *const ResourceInfo as usize;
    *m.entry(key)
        .or_insert_with(|| Box::leak(Box::new(CustomStrategy { info })))
}

impl CustomStrategy {
    fn definition(&self) -> Option<(Arc<CrdDef>, Arc<VersionDef>)> {
        crd::version_of(self.info)
    }
}

/// Prune, drop non-nullable nulls and default, as upstream's decoder does.
fn coerce(obj: &mut Value, v: &VersionDef) {
    match &v.schema {
        Some(s) => {
            crd::prune::prune(obj, s);
            crd::prune::prune_nulls(obj, Some(s));
            crd::default::apply(obj, s);
        }
        None => {
            crd::prune::prune(obj, &Schema::default());
        }
    }
}

/// The value at a field path as errors name it (`a.b[0].c`, map keys after dots).
fn value_at<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = obj;
    if path.is_empty() {
        return Some(cur);
    }
    for part in path.split('.') {
        let (name, rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            cur = cur.get(name)?;
        }
        for idx in rest.split('[').filter(|s| !s.is_empty()) {
            let idx = idx.trim_end_matches(']');
            cur = match idx.parse::<usize>() {
                Ok(i) => cur.get(i)?,
                Err(_) => cur.get(idx)?,
            };
        }
    }
    Some(cur)
}

/// Upstream's validation ratcheting: an update is not refused for errors in
/// values it does not change.
fn ratchet(errs: Vec<FieldError>, new: &Value, old: &Value) -> Vec<FieldError> {
    errs.into_iter()
        .filter(|e| {
            if e.field.is_empty() {
                return true;
            }
            let target = match e.kind {
                crate::error::FieldErrorType::Required => {
                    e.field.rsplit_once('.').map(|(p, _)| p).unwrap_or("")
                }
                _ => e.field.as_str(),
            };
            match (value_at(new, target), value_at(old, target)) {
                (Some(a), Some(b)) => a != b,
                _ => true,
            }
        })
        .collect()
}

/// `x-kubernetes-embedded-resource` objects need apiVersion, kind and valid metadata.
fn validate_embedded(x: &Value, s: &Schema, path: &str, errs: &mut Vec<FieldError>) {
    let child = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match x {
        Value::Object(m) => {
            if s.embedded {
                for f in ["apiVersion", "kind"] {
                    match m.get(f) {
                        None => errs.push(FieldError::required(child(f), "")),
                        Some(Value::String(v)) if v.is_empty() => {
                            errs.push(FieldError::invalid(child(f), "", "must not be empty"))
                        }
                        Some(Value::String(v)) if f == "kind" => {
                            let bad = is_dns1035_label(&v.to_lowercase());
                            if !bad.is_empty() {
                                errs.push(FieldError::invalid(
                                    child(f),
                                    v.as_str(),
                                    format!(
                                        "may have mixed case, but should otherwise match: {}",
                                        bad.join(",")
                                    ),
                                ));
                            }
                        }
                        Some(Value::String(_)) => {}
                        Some(other) => errs.push(FieldError::invalid(
                            child(f),
                            other.clone(),
                            "must be a string",
                        )),
                    }
                }
                if let Some(meta) = m.get("metadata") {
                    if !meta.is_object() {
                        errs.push(FieldError::invalid(
                            child("metadata"),
                            meta.clone(),
                            "must be an object",
                        ));
                    } else if let Some(e) = unknown::decode::<ObjectMeta>(meta).error {
                        errs.push(FieldError {
                            field: format!("{}.{}", child("metadata"), e.field),
                            ..e
                        });
                    }
                }
            }
            for (k, v) in m {
                if let Some(sub) = s.field(k) {
                    validate_embedded(v, sub, &child(k), errs);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = s.items.as_deref() {
                for (i, v) in items.iter().enumerate() {
                    validate_embedded(v, item, &format!("{path}[{i}]"), errs);
                }
            }
        }
        _ => {}
    }
}

/// `x-kubernetes-list-type: set` items and `map` keys must be unique.
fn validate_lists(x: &Value, s: &Schema, path: &str, errs: &mut Vec<FieldError>) {
    match x {
        Value::Array(items) => {
            match s.list_type.as_deref() {
                Some("set") => {
                    for (i, a) in items.iter().enumerate() {
                        if items[..i].iter().any(|b| crd::validate::json_equal(a, b)) {
                            errs.push(FieldError::duplicate(format!("{path}[{i}]"), a.clone()));
                        }
                    }
                }
                Some("map") => {
                    let key_of = |item: &Value| -> Value {
                        let mut k = serde_json::Map::new();
                        for f in &s.list_map_keys {
                            let d = s
                                .items
                                .as_deref()
                                .and_then(|it| it.properties.get(f))
                                .and_then(|p| p.default.clone());
                            if let Some(v) = item.get(f).cloned().or(d) {
                                k.insert(f.clone(), v);
                            }
                        }
                        Value::Object(k)
                    };
                    for (i, a) in items.iter().enumerate() {
                        let ka = key_of(a);
                        if items[..i].iter().any(|b| key_of(b) == ka) {
                            errs.push(FieldError::duplicate(format!("{path}[{i}]"), ka));
                        }
                    }
                }
                _ => {}
            }
            if let Some(item) = s.items.as_deref() {
                for (i, v) in items.iter().enumerate() {
                    validate_lists(v, item, &format!("{path}[{i}]"), errs);
                }
            }
        }
        Value::Object(m) => {
            for (k, v) in m {
                if let Some(sub) = s.field(k) {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    validate_lists(v, sub, &p, errs);
                }
            }
        }
        _ => {}
    }
}

/// The value at a `.a.b` path, and whether it is an int64 (what the scale
/// subresource reads). `Err` carries upstream's message for a wrong type.
pub(crate) fn nested_int(obj: &Value, path: &str) -> Result<Option<i64>, String> {
    let mut cur = obj;
    let parts: Vec<&str> = path.trim_start_matches('.').split('.').collect();
    for (i, p) in parts.iter().enumerate() {
        match cur.get(*p) {
            Some(v) => cur = v,
            None => return Ok(None),
        }
        if i + 1 < parts.len() && !cur.is_object() {
            return Err(format!(
                "value cannot be found on non-map type at {}",
                parts[..=i].join(".")
            ));
        }
    }
    match cur {
        Value::Number(n) if n.is_i64() => Ok(n.as_i64()),
        Value::Null => Ok(None),
        other => Err(format!(
            ".{} accessor error: {} is of the type {}, expected int64",
            parts.join("."),
            other,
            match other {
                Value::String(_) => "string",
                Value::Bool(_) => "bool",
                Value::Number(_) => "float64",
                Value::Array(_) => "[]interface {}",
                Value::Object(_) => "map[string]interface {}",
                Value::Null => "nil",
            }
        )),
    }
}

fn validate_replicas(obj: &Value, path: &str, errs: &mut Vec<FieldError>) {
    match nested_int(obj, path) {
        Err(e) => errs.push(FieldError::invalid(path, 0, e)),
        Ok(Some(n)) if n < 0 => errs.push(FieldError::invalid(
            path,
            n,
            "should be a non-negative integer",
        )),
        Ok(Some(n)) if n > i32::MAX as i64 => errs.push(FieldError::invalid(
            path,
            n,
            format!("should be less than or equal to {}", i32::MAX),
        )),
        _ => {}
    }
}

fn validate_scale_status(obj: &Value, v: &VersionDef, errs: &mut Vec<FieldError>) {
    let Some(scale) = &v.scale else { return };
    validate_replicas(obj, &scale.status_replicas_path, errs);
    if let Some(sel) = &scale.label_selector_path {
        let found = sel
            .trim_start_matches('.')
            .split('.')
            .try_fold(obj, |cur, p| cur.get(p));
        if let Some(val) = found.filter(|x| !x.is_string() && !x.is_null()) {
            errs.push(FieldError::invalid(
                sel.as_str(),
                val.clone(),
                format!("{sel} accessor error: {val} is not a string"),
            ));
        }
    }
}

fn validate_whole(obj: &Value, v: &VersionDef) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(s) = &v.schema {
        errs.extend(crd::validate::validate(obj, s, ""));
        validate_embedded(obj, s, "", &mut errs);
        validate_lists(obj, s, "", &mut errs);
    }
    if let Some(scale) = &v.scale {
        validate_replicas(obj, &scale.spec_replicas_path, &mut errs);
    }
    validate_scale_status(obj, v, &mut errs);
    errs
}

impl Strategy for CustomStrategy {
    /// Unknown fields are those the structural schema prunes; values of the
    /// wrong type are the schema validation's to report.
    fn decode(&self, obj: &Value) -> Decoded {
        Decoded {
            unknown: self.unknown_fields(obj),
            error: None,
        }
    }

    fn unknown_fields(&self, obj: &Value) -> Vec<String> {
        let Some((_, v)) = self.definition() else {
            return Vec::new();
        };
        let mut copy = obj.clone();
        let mut paths = match &v.schema {
            Some(s) => crd::prune::prune(&mut copy, s),
            None => crd::prune::prune(&mut copy, &Schema::default()),
        };
        if let Some(meta) = obj.get("metadata").filter(|m| m.is_object()) {
            paths.extend(
                unknown::decode::<ObjectMeta>(meta)
                    .unknown
                    .into_iter()
                    .map(|u| format!("metadata.{u}")),
            );
        }
        paths
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        let Some((_, v)) = self.definition() else {
            return;
        };
        coerce(obj, &v);
        if v.status {
            if let Some(m) = obj.as_object_mut() {
                m.remove("status");
            }
        }
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        let Some((_, v)) = self.definition() else {
            return;
        };
        coerce(new, &v);
        if v.status {
            keep_from_old(new, old, "status");
        } else if new.get("status") != old.get("status") {
            // Without the subresource status is part of what generation tracks.
            let g = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                + 1;
            if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut) {
                m.insert("generation".into(), json!(g));
            }
        }
    }

    fn prepare_for_status_update(&self, new: &mut Value, old: &Value) {
        if let Some((_, v)) = self.definition() {
            coerce(new, &v);
        }
        // Everything but status comes from the stored object; managedFields
        // stay as the request's field manager computed them.
        let status = new.get("status").cloned();
        let managed = new.pointer("/metadata/managedFields").cloned();
        let mut out = old.clone();
        if let Some(m) = out.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
            match managed {
                Some(mf) => {
                    m.insert("managedFields".into(), mf);
                }
                None => {
                    m.remove("managedFields");
                }
            }
        }
        if let Some(o) = out.as_object_mut() {
            match status {
                Some(s) => {
                    o.insert("status".into(), s);
                }
                None => {
                    o.remove("status");
                }
            }
        }
        *new = out;
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        match self.definition() {
            Some((_, v)) => validate_whole(obj, &v),
            None => Vec::new(),
        }
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        match self.definition() {
            Some((_, v)) => ratchet(validate_whole(new, &v), new, old),
            None => Vec::new(),
        }
    }

    fn validate_status_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let Some((_, v)) = self.definition() else {
            return Vec::new();
        };
        let mut errs = Vec::new();
        if let (Some(status), Some(s)) = (new.get("status"), v.schema.as_ref()) {
            if let Some(status_schema) = s.properties.get("status") {
                errs.extend(crd::validate::validate(status, status_schema, "status"));
            }
        }
        validate_scale_status(new, &v, &mut errs);
        ratchet(errs, new, old)
    }

    fn selectable_fields(&self, obj: &Value) -> Vec<(&'static str, String)> {
        let Some((_, v)) = self.definition() else {
            return Vec::new();
        };
        v.selectable
            .iter()
            .map(|(name, path)| {
                let value = match path.find(obj).first() {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Null) | None => String::new(),
                    Some(other) => other.to_string(),
                };
                (*name, value)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratcheting_keeps_new_errors_only() {
        let old = json!({"spec": {"a": "bad", "b": 1}});
        let new = json!({"spec": {"a": "bad", "b": 2}});
        let errs = vec![
            FieldError::invalid("spec.a", "bad", "x"),
            FieldError::invalid("spec.b", 2, "y"),
            FieldError::required("spec.c", ""),
        ];
        let kept: Vec<String> = ratchet(errs.clone(), &new, &old)
            .into_iter()
            .map(|e| e.field)
            .collect();
        // spec changed, so its missing required field counts again.
        assert_eq!(kept, vec!["spec.b", "spec.c"]);
        let kept: Vec<String> = ratchet(errs, &old, &old)
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert!(kept.is_empty(), "{kept:?}");
    }

    #[test]
    fn nested_int_reads_like_unstructured() {
        let o = json!({"spec": {"replicas": 3, "s": "x", "f": 1.5}, "status": 1});
        assert_eq!(nested_int(&o, ".spec.replicas"), Ok(Some(3)));
        assert_eq!(nested_int(&o, ".spec.missing"), Ok(None));
        assert_eq!(
            nested_int(&o, ".spec.s"),
            Err(".spec.s accessor error: \"x\" is of the type string, expected int64".into())
        );
        assert!(nested_int(&o, ".status.replicas").is_err());
    }

    #[test]
    fn list_sets_and_maps_are_unique() {
        let s = Schema::parse(&json!({"type": "object", "properties": {
            "set": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "map": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                    "items": {"type": "object", "properties": {"name": {"type": "string"}, "v": {"type": "integer"}}}}}}));
        let mut errs = Vec::new();
        validate_lists(
            &json!({"set": ["a", "b", "a"], "map": [{"name": "x", "v": 1}, {"name": "x", "v": 2}]}),
            &s,
            "",
            &mut errs,
        );
        let msgs: Vec<String> = errs.iter().map(FieldError::message).collect();
        assert_eq!(
            msgs,
            vec![
                "map[1]: Duplicate value: {\"name\":\"x\"}".to_string(),
                "set[2]: Duplicate value: \"a\"".to_string(),
            ]
        );
    }

    /// Every schema-driven step on hostile shapes: never a panic.
    #[test]
    fn hostile_input_never_panics() {
        let crd = crate::crd::definition::tests::prepared(crate::crd::definition::tests::crontab());
        let mut versions: Vec<VersionDef> = CrdDef::parse(&crd)
            .versions
            .iter()
            .map(|v| v.as_ref().clone())
            .collect();
        let odd_schema = json!({"type": "object", "properties": {
            "spec": {"type": "array", "items": {"type": "object", "x-kubernetes-embedded-resource": true,
                     "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["k"]}},
            "status": {"x-kubernetes-int-or-string": true, "enum": [1, "a"], "anyOf": [{"maximum": 1}], "not": {"pattern": "("}}}});
        let mut odd = versions[0].clone();
        odd.schema = Some(Schema::parse(&odd_schema));
        versions.push(odd);
        let weird = [
            json!(null),
            json!(1),
            json!("x"),
            json!([1, null, {}]),
            json!({"a": [[]]}),
            json!(-1.5),
        ];
        for v in &versions {
            for w in &weird {
                for key in ["spec", "status", "metadata"] {
                    let mut obj = json!({"apiVersion": "stable.example.com/v1", "kind": "CronTab",
                                         "metadata": {"name": "x"}, "spec": {"replicas": 1}});
                    obj[key] = w.clone();
                    let old = obj.clone();
                    coerce(&mut obj, v);
                    let _ = validate_whole(&obj, v);
                    let _ = ratchet(validate_whole(&obj, v), &obj, &old);
                    let mut errs = Vec::new();
                    validate_scale_status(&obj, v, &mut errs);
                }
            }
        }
    }

    #[test]
    fn embedded_resources_need_type_meta() {
        let s = Schema::parse(&json!({"type": "object", "properties": {"template": {
            "type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true}}}));
        let mut errs = Vec::new();
        validate_embedded(
            &json!({"template": {"kind": "Pod", "metadata": {"labels": "x"}}}),
            &s,
            "",
            &mut errs,
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec!["template.apiVersion", "template.metadata.labels"]
        );
    }
}
