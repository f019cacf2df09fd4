//! Checks of a CRD version's `openAPIV3Schema` when the CRD is written:
//! the OpenAPI subset Kubernetes accepts, the rules that make a schema
//! "structural" (every field typed, value validations under
//! `allOf`/`anyOf`/`oneOf`/`not` only restricting what the structure
//! declares, `metadata` limited to `name` and `generateName`), the
//! `x-kubernetes-*` extension rules, and that every `default` is pruned and
//! valid. Messages and field paths are upstream's.

use serde_json::{Map, Value};

use super::openapi_rules::{openapi, root_fields_with_status};
use super::prune;
use super::schema::{compile_pattern, Schema};
use super::validate;
use crate::error::FieldError;

pub(super) const OPENAPI_TYPES: &[&str] =
    &["array", "boolean", "integer", "number", "object", "string"];
pub(super) const META_FIELDS: &[&str] = &["apiVersion", "kind", "metadata"];

/// Where a node sits, for the "type must not be empty" rule.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    Item,
    Field,
}

pub(super) fn key(path: &str, k: &str) -> String {
    format!("{path}[{k}]")
}

pub(super) fn get<'a>(v: &'a Value, k: &str) -> Option<&'a Value> {
    v.get(k).filter(|x| !x.is_null())
}

pub(super) fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

pub(super) fn truthy(v: &Value, k: &str) -> bool {
    v.get(k).and_then(Value::as_bool).unwrap_or(false)
}

pub(super) fn props(v: &Value) -> Option<&Map<String, Value>> {
    v.get("properties")
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty())
}

/// Validate one version's schema; `path` is e.g.
/// `spec.versions[0].schema.openAPIV3Schema`; `status_enabled` when the
/// version has a status subresource.
pub fn check(schema: &Value, path: &str, status_enabled: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if !schema.is_object() {
        errs.push(FieldError::invalid(
            path,
            schema.clone(),
            "must be an object",
        ));
        return errs;
    }
    if status_enabled {
        root_fields_with_status(schema, path, &mut errs);
    }
    if truthy(schema, "nullable") {
        errs.push(FieldError::forbidden(
            format!("{path}.nullable"),
            "nullable cannot be true at the root",
        ));
    }
    openapi(schema, path, true, false, None, &mut errs);
    if errs.is_empty() {
        let mut structural = Vec::new();
        invariants(schema, Level::Root, path, &mut structural);
        completeness(schema, Some(schema), path, path, &mut structural);
        structural.sort_by_key(FieldError::message);
        errs.extend(structural);
    }
    if errs.is_empty() {
        defaults(&Schema::parse(schema), schema, path, true, &mut errs);
    }
    errs
}

fn is_type_only(v: &Value, t: &str) -> bool {
    v.as_object()
        .is_some_and(|m| m.len() == 1 && m.get("type").and_then(Value::as_str) == Some(t))
}

/// `anyOf: [{type: integer}, {type: string}]`, which int-or-string fields carry.
fn is_int_or_string_any_of(v: &Value) -> bool {
    v.get("anyOf").and_then(Value::as_array).is_some_and(|a| {
        a.len() == 2 && is_type_only(&a[0], "integer") && is_type_only(&a[1], "string")
    })
}

/// The structural invariants of one node of the structure.
fn invariants(v: &Value, lvl: Level, path: &str, errs: &mut Vec<FieldError>) {
    let ty = s(v, "type");
    let items = get(v, "items").filter(|i| i.is_object());
    if ty == "array" && items.is_none() {
        errs.push(FieldError::required(
            format!("{path}.items"),
            "must be specified",
        ));
    }
    if let Some(it) = items {
        invariants(it, Level::Item, &format!("{path}.items"), errs);
    }
    if let Some(ps) = props(v) {
        for (k, p) in ps {
            invariants(
                p,
                Level::Field,
                &key(&format!("{path}.properties"), k),
                errs,
            );
        }
    }
    if let Some(ap) = get(v, "additionalProperties") {
        if lvl == Level::Root {
            errs.push(FieldError::forbidden(
                format!("{path}.additionalProperties"),
                "must not be used at the root",
            ));
        }
        if ap.is_object() {
            invariants(
                ap,
                Level::Field,
                &format!("{path}.additionalProperties"),
                errs,
            );
        }
    }
    let int_or_string = truthy(v, "x-kubernetes-int-or-string");
    let preserve = truthy(v, "x-kubernetes-preserve-unknown-fields");
    let embedded = truthy(v, "x-kubernetes-embedded-resource");
    if int_or_string && preserve {
        errs.push(FieldError::invalid(
            format!("{path}.x-kubernetes-preserve-unknown-fields"),
            true,
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    if int_or_string && embedded {
        errs.push(FieldError::invalid(
            format!("{path}.x-kubernetes-embedded-resource"),
            true,
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    let skip_any_of = is_int_or_string_any_of(v);
    let skip_first_all_of = v
        .get("allOf")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .is_some_and(is_int_or_string_any_of);
    value_validation(v, skip_any_of, skip_first_all_of, lvl, path, errs);
    if embedded && ty != "object" {
        if ty.is_empty() {
            errs.push(FieldError::required(
                format!("{path}.type"),
                "must be object if x-kubernetes-embedded-resource is true",
            ));
        } else {
            errs.push(FieldError::invalid(
                format!("{path}.type"),
                ty,
                "must be object if x-kubernetes-embedded-resource is true",
            ));
        }
    } else if ty.is_empty() && !int_or_string && !preserve {
        let why = match lvl {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        errs.push(FieldError::required(format!("{path}.type"), why));
    }
    if embedded && get(v, "additionalProperties").is_some() {
        errs.push(FieldError::forbidden(
            format!("{path}.additionalProperties"),
            "must not be used if x-kubernetes-embedded-resource is set",
        ));
    }
    if lvl == Level::Root && !ty.is_empty() && ty != "object" {
        errs.push(FieldError::invalid(
            format!("{path}.type"),
            ty,
            "must be object at the root",
        ));
    }
    let check_meta = lvl == Level::Root || embedded;
    if check_meta {
        for f in ["kind", "apiVersion"] {
            if let Some(p) = v.get("properties").and_then(|p| p.get(f)) {
                if s(p, "type") != "string" {
                    errs.push(FieldError::invalid(
                        format!("{path}.properties[{f}].type"),
                        s(p, "type"),
                        "must be string",
                    ));
                }
            }
        }
    }
    if let Some(meta) = v.get("properties").and_then(|p| p.get("metadata")) {
        let mp = format!("{path}.properties[metadata]");
        if check_meta && s(meta, "type") != "object" {
            errs.push(FieldError::invalid(
                format!("{mp}.type"),
                s(meta, "type"),
                "must be object",
            ));
        }
        if lvl == Level::Root && !root_metadata_ok(meta) {
            errs.push(FieldError::forbidden(mp, "must not specify anything other than name and generateName, but metadata is implicitly specified"));
        }
    }
    if embedded && !preserve && props(v).is_none() {
        errs.push(FieldError::required(format!("{path}.properties"), "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields"));
    }
}

/// The root's `metadata` schema may restrict `name` and `generateName` only.
fn root_metadata_ok(meta: &Value) -> bool {
    let Some(m) = meta.as_object() else {
        return true;
    };
    m.iter().all(|(k, v)| match k.as_str() {
        "type" | "description" => true,
        "properties" => v
            .as_object()
            .is_none_or(|p| p.keys().all(|k| k == "name" || k == "generateName")),
        _ => v.is_null(),
    })
}

/// Value validations (`allOf`, `anyOf`, `oneOf`, `not`) of a structural node.
fn value_validation(
    v: &Value,
    skip_any_of: bool,
    skip_first_all_of: bool,
    lvl: Level,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    if !skip_any_of {
        if let Some(list) = v.get("anyOf").and_then(Value::as_array) {
            for (i, n) in list.iter().enumerate() {
                nested(n, false, lvl, &format!("{path}.anyOf[{i}]"), errs);
            }
        }
    }
    if let Some(list) = v.get("allOf").and_then(Value::as_array) {
        for (i, n) in list.iter().enumerate() {
            nested(
                n,
                skip_first_all_of && i == 0,
                lvl,
                &format!("{path}.allOf[{i}]"),
                errs,
            );
        }
    }
    if let Some(list) = v.get("oneOf").and_then(Value::as_array) {
        for (i, n) in list.iter().enumerate() {
            nested(n, false, lvl, &format!("{path}.oneOf[{i}]"), errs);
        }
    }
    if let Some(n) = get(v, "not") {
        nested(n, false, lvl, &format!("{path}.not"), errs);
    }
    if let Some(p) = v.get("pattern").and_then(Value::as_str) {
        if let Err(e) = compile_pattern(p) {
            errs.push(FieldError::invalid(
                format!("{path}.pattern"),
                p,
                format!("must be a valid regular expression, but isn't: {e}"),
            ));
        }
    }
}

/// A node under a junctor: it may only restrict values.
fn nested(v: &Value, skip_any_of: bool, lvl: Level, path: &str, errs: &mut Vec<FieldError>) {
    value_validation(v, skip_any_of, false, lvl, path, errs);
    if let Some(it) = get(v, "items").filter(|i| i.is_object()) {
        nested(it, false, lvl, &format!("{path}.items"), errs);
    }
    if let Some(ps) = props(v) {
        for (k, p) in ps {
            nested(
                p,
                false,
                Level::Field,
                &key(&format!("{path}.properties"), k),
                errs,
            );
        }
    }
    let forbidden: [(&str, &str); 13] = [
        ("type", "must be empty to be structural"),
        ("additionalProperties", "must be undefined to be structural"),
        ("default", "must be undefined to be structural"),
        ("title", "must be empty to be structural"),
        ("description", "must be empty to be structural"),
        ("nullable", "must be false to be structural"),
        (
            "x-kubernetes-preserve-unknown-fields",
            "must be false to be structural",
        ),
        (
            "x-kubernetes-embedded-resource",
            "must be false to be structural",
        ),
        (
            "x-kubernetes-int-or-string",
            "must be false to be structural",
        ),
        (
            "x-kubernetes-list-map-keys",
            "must be empty to be structural",
        ),
        (
            "x-kubernetes-list-type",
            "must be undefined to be structural",
        ),
        (
            "x-kubernetes-map-type",
            "must be undefined to be structural",
        ),
        ("x-kubernetes-validations", "must be empty to be structural"),
    ];
    for (field, why) in forbidden {
        let set = match v.get(field) {
            None | Some(Value::Null) | Some(Value::Bool(false)) => false,
            Some(Value::String(s)) => {
                !s.is_empty()
                    || field == "x-kubernetes-list-type"
                    || field == "x-kubernetes-map-type"
            }
            Some(Value::Array(a)) => !a.is_empty(),
            Some(_) => true,
        };
        if set {
            errs.push(FieldError::forbidden(format!("{path}.{field}"), why));
        }
    }
    if v.get("properties")
        .and_then(|p| p.get("metadata"))
        .is_some()
    {
        errs.push(FieldError::forbidden(
            format!("{path}.properties[metadata]"),
            "must not be specified in a nested context",
        ));
    }
}

/// Every property a value validation names must exist in the structure.
fn completeness(
    v: &Value,
    structural: Option<&Value>,
    s_path: &str,
    v_path: &str,
    errs: &mut Vec<FieldError>,
) {
    for junctor in ["allOf", "anyOf", "oneOf"] {
        if let Some(list) = v.get(junctor).and_then(Value::as_array) {
            for (i, n) in list.iter().enumerate() {
                nested_complete(
                    n,
                    structural,
                    s_path,
                    &format!("{v_path}.{junctor}[{i}]"),
                    errs,
                );
            }
        }
    }
    if let Some(n) = get(v, "not") {
        nested_complete(n, structural, s_path, &format!("{v_path}.not"), errs);
    }
    // Recurse into the structure itself.
    if let Some(ps) = props(v) {
        for (k, p) in ps {
            let sp = key(&format!("{s_path}.properties"), k);
            completeness(p, Some(p), &sp, &sp, errs);
        }
    }
    if let Some(it) = get(v, "items").filter(|i| i.is_object()) {
        let sp = format!("{s_path}.items");
        completeness(it, Some(it), &sp, &sp, errs);
    }
    if let Some(ap) = get(v, "additionalProperties").filter(|a| a.is_object()) {
        let sp = format!("{s_path}.additionalProperties");
        completeness(ap, Some(ap), &sp, &sp, errs);
    }
}

fn nested_complete(
    n: &Value,
    structural: Option<&Value>,
    s_path: &str,
    v_path: &str,
    errs: &mut Vec<FieldError>,
) {
    let Some(st) = structural else {
        errs.push(FieldError::required(
            s_path,
            format!("because it is defined in {v_path}"),
        ));
        return;
    };
    for junctor in ["allOf", "anyOf", "oneOf"] {
        if let Some(list) = n.get(junctor).and_then(Value::as_array) {
            for (i, sub) in list.iter().enumerate() {
                nested_complete(
                    sub,
                    Some(st),
                    s_path,
                    &format!("{v_path}.{junctor}[{i}]"),
                    errs,
                );
            }
        }
    }
    if let Some(sub) = get(n, "not") {
        nested_complete(sub, Some(st), s_path, &format!("{v_path}.not"), errs);
    }
    if let Some(it) = get(n, "items").filter(|i| i.is_object()) {
        let s_items = get(st, "items").filter(|i| i.is_object());
        nested_complete(
            it,
            s_items,
            &format!("{s_path}.items"),
            &format!("{v_path}.items"),
            errs,
        );
    }
    if let Some(ps) = props(n) {
        for (k, p) in ps {
            let sp = key(&format!("{s_path}.properties"), k);
            let vp = key(&format!("{v_path}.properties"), k);
            match st.get("properties").and_then(|sp| sp.get(k)) {
                Some(sf) => nested_complete(p, Some(sf), &sp, &vp, errs),
                None => errs.push(FieldError::required(
                    sp,
                    format!("because it is defined in {vp}"),
                )),
            }
        }
    }
}

/// Every `default` must be pruned already and valid against its own schema;
/// defaults are not allowed in the root's metadata, apiVersion and kind.
fn defaults(s: &Schema, raw: &Value, path: &str, resource_root: bool, errs: &mut Vec<FieldError>) {
    if let Some(d) = &s.default {
        let mut pruned = d.clone();
        let mut root = s.clone();
        root.embedded = root.embedded || resource_root;
        prune_value(&mut pruned, &root);
        if &pruned != d {
            errs.push(FieldError::invalid(
                format!("{path}.default"),
                d.clone(),
                "must not have unknown fields",
            ));
        } else {
            errs.extend(validate::validate(d, s, &format!("{path}.default")));
        }
    }
    if let (Some(items), Some(raw_items)) = (&s.items, raw.get("items")) {
        defaults(items, raw_items, &format!("{path}.items"), false, errs);
    }
    for (k, p) in &s.properties {
        if let Some(raw_p) = raw.get("properties").and_then(|rp| rp.get(k)) {
            defaults(
                p,
                raw_p,
                &key(&format!("{path}.properties"), k),
                false,
                errs,
            );
        }
    }
    if let (Some(ap), Some(raw_ap)) = (s.additional_schema(), raw.get("additionalProperties")) {
        defaults(
            ap,
            raw_ap,
            &format!("{path}.additionalProperties"),
            false,
            errs,
        );
    }
}

/// Prune a value (not necessarily an object) against `s`.
fn prune_value(v: &mut Value, s: &Schema) {
    let mut wrapper = Value::Object(Map::from_iter([("v".to_string(), std::mem::take(v))]));
    let holder = Schema {
        ty: "object".into(),
        properties: [("v".to_string(), s.clone())].into_iter().collect(),
        ..Schema::default()
    };
    prune::prune(&mut wrapper, &holder);
    *v = wrapper
        .get_mut("v")
        .map(std::mem::take)
        .unwrap_or(Value::Null);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const P: &str = "spec.versions[0].schema.openAPIV3Schema";

    fn msgs(schema: Value, status: bool) -> Vec<String> {
        check(&schema, P, status)
            .iter()
            .map(FieldError::message)
            .collect()
    }

    #[test]
    fn accepts_typical_schemas() {
        let ok = json!({
            "type": "object",
            "properties": {
                "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20}}},
                "spec": {
                    "type": "object",
                    "properties": {
                        "replicas": {"type": "integer", "default": 1, "minimum": 0},
                        "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                        "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                                  "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}},
                        "raw": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "choice": {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
                                   "oneOf": [{"required": ["a"]}, {"required": ["b"]}]}
                    }
                },
                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
            }
        });
        assert_eq!(msgs(ok, true), Vec::<String>::new());
    }

    #[test]
    fn refuses_with_upstream_messages() {
        let cases = vec![
            (json!({"type": "object", "properties": {"spec": {"properties": {}}}}),
             vec![format!("{P}.properties[spec].type: Required value: must not be empty for specified object fields")]),
            (json!({"type": "object", "properties": {"list": {"type": "array"}}}),
             vec![format!("{P}.properties[list].items: Required value: must be specified")]),
            (json!({"type": "string"}), vec![format!("{P}.type: Invalid value: \"string\": must be object at the root")]),
            (json!({"type": "object", "properties": {"a": {"type": "object", "additionalProperties": {"type": "string"}, "properties": {"b": {"type": "string"}}}}}),
             vec![format!("{P}.properties[a].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive")]),
            (json!({"type": "object", "properties": {"metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}}}),
             vec![format!("{P}.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified")]),
            (json!({"type": "object", "properties": {"a": {"type": "string", "anyOf": [{"type": "string"}]}}}),
             vec![format!("{P}.properties[a].anyOf[0].type: Forbidden: must be empty to be structural")]),
            (json!({"type": "object", "properties": {"a": {"type": "object", "anyOf": [{"properties": {"x": {}}}]}}}),
             vec![format!("{P}.properties[a].properties[x]: Required value: because it is defined in {P}.properties[a].anyOf[0].properties[x]")]),
            (json!({"type": "object", "properties": {"a": {"type": "integer", "default": "x"}}}),
             vec![format!("{P}.properties[a].default: Invalid value: \"string\":  in body must be of type integer: \"string\"")]),
            (json!({"type": "object", "properties": {"a": {"type": "object", "default": {"zz": 1}, "properties": {"b": {"type": "string"}}}}}),
             vec![format!("{P}.properties[a].default: Invalid value: {{\"zz\":1}}: must not have unknown fields")]),
            (json!({"type": "object", "properties": {"a": {"type": "string", "pattern": "(unclosed"}}}),
             vec![format!("{P}.properties[a].pattern: Invalid value: \"(unclosed\": must be a valid regular expression, but isn't: ")]),
            (json!({"type": "object", "properties": {"a": {"type": "strin"}}}),
             vec![format!("{P}.properties[a].type: Unsupported value: \"strin\": supported values: \"array\", \"boolean\", \"integer\", \"number\", \"object\", \"string\"")]),
            (json!({"type": "object", "properties": {"a": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "map"}}}),
             vec![
                 format!("{P}.properties[a].x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map"),
                 format!("{P}.properties[a].items.type: Invalid value: \"string\": must be object if parent array's x-kubernetes-list-type is map"),
             ]),
            (json!({"type": "object", "properties": {"metadata": {"type": "object", "default": {}}}}),
             vec![format!("{P}.properties[metadata].default: Forbidden: must not be set in top-level metadata")]),
        ];
        for (schema, want) in cases {
            let got = msgs(schema.clone(), false);
            assert_eq!(got.len(), want.len(), "{schema}: {got:?}");
            for (g, w) in got.iter().zip(&want) {
                assert!(g.starts_with(w.as_str()), "{schema}:\n got {g}\nwant {w}");
            }
        }
    }

    #[test]
    fn status_subresource_root_rules() {
        let got = msgs(
            json!({"type": "object", "additionalProperties": true}),
            true,
        );
        assert!(
            got[0].contains(
                "fields are allowed at the root of the schema if the status subresource is enabled"
            ),
            "{got:?}"
        );
    }
}
