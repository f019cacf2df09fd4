//! Checks of a CRD version's `openAPIV3Schema` when the CRD is written:
//! the OpenAPI subset Kubernetes accepts, the rules that make a schema
//! "structural" (every field typed, value validations under
//! `allOf`/`anyOf`/`oneOf`/`not` only restricting what the structure
//! declares, `metadata` limited to `name` and `generateName`), the
//! `x-kubernetes-*` extension rules, and that every `default` is pruned and
//! valid. Messages and field paths are upstream's.

use serde_json::{Map, Value};

use super::prune;
use super::schema::{compile_pattern, Schema};
use super::validate;
use crate::error::FieldError;

const OPENAPI_TYPES: &[&str] = &["array", "boolean", "integer", "number", "object", "string"];
const META_FIELDS: &[&str] = &["apiVersion", "kind", "metadata"];

/// Where a node sits, for the "type must not be empty" rule.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    Item,
    Field,
}

fn key(path: &str, k: &str) -> String {
    format!("{path}[{k}]")
}

fn get<'a>(v: &'a Value, k: &str) -> Option<&'a Value> {
    v.get(k).filter(|x| !x.is_null())
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn truthy(v: &Value, k: &str) -> bool {
    v.get(k).and_then(Value::as_bool).unwrap_or(false)
}

fn props(v: &Value) -> Option<&Map<String, Value>> {
    v.get("properties").and_then(Value::as_object).filter(|m| !m.is_empty())
}

/// Validate one version's schema; `path` is e.g.
/// `spec.versions[0].schema.openAPIV3Schema`; `status_enabled` when the
/// version has a status subresource.
pub fn check(schema: &Value, path: &str, status_enabled: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if !schema.is_object() {
        errs.push(FieldError::invalid(path, schema.clone(), "must be an object"));
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

const ALLOWED_AT_ROOT_WITH_STATUS: &[&str] = &[
    "description",
    "type",
    "format",
    "title",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "multipleOf",
    "required",
    "items",
    "properties",
    "externalDocs",
    "example",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-validations",
];

/// With a status subresource, the root may only carry fields that survive
/// extracting `properties.status` as the status schema.
fn root_fields_with_status(schema: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let Some(m) = schema.as_object() else { return };
    if let Some(t) = m.get("type").and_then(Value::as_str) {
        if t != "object" {
            errs.push(FieldError::invalid(
                format!("{path}.type"),
                t,
                "only \"object\" is allowed as the type at the root of the schema if the status subresource is enabled",
            ));
            return;
        }
    }
    let zero = |v: &Value| match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
    };
    if m.iter()
        .any(|(k, v)| !zero(v) && !ALLOWED_AT_ROOT_WITH_STATUS.contains(&k.as_str()))
    {
        errs.push(FieldError::invalid(
            path,
            schema.clone(),
            "only [Description Type Format Title Maximum ExclusiveMaximum Minimum ExclusiveMinimum MaxLength MinLength Pattern MaxItems MinItems UniqueItems MultipleOf Required Items Properties ExternalDocs Example XPreserveUnknownFields XValidations] fields are allowed at the root of the schema if the status subresource is enabled",
        ));
    }
}

/// Upstream's OpenAPI v3 subset and extension rules, over every node.
/// `forbid_defaults` is the reason defaults are refused here, if they are.
fn openapi(
    v: &Value,
    path: &str,
    is_root: bool,
    inside_meta: bool,
    forbid_defaults: Option<&str>,
    errs: &mut Vec<FieldError>,
) {
    let Some(m) = v.as_object() else { return };
    let ty = s(v, "type");
    if !ty.is_empty() && !OPENAPI_TYPES.contains(&ty) {
        errs.push(FieldError::not_supported(format!("{path}.type"), ty, OPENAPI_TYPES));
    }
    if get(v, "default").is_some() {
        if let Some(reason) = forbid_defaults {
            errs.push(FieldError::forbidden(
                format!("{path}.default"),
                format!("must not be set {reason}"),
            ));
        }
    }
    for (field, what) in [
        ("id", "id is not supported"),
        ("additionalItems", "additionalItems is not supported"),
        ("patternProperties", "patternProperties is not supported"),
        ("definitions", "definitions is not supported"),
        ("dependencies", "dependencies is not supported"),
        ("$ref", "$ref is not supported"),
    ] {
        let present = match m.get(field) {
            None | Some(Value::Null) => false,
            Some(Value::String(s)) => !s.is_empty(),
            Some(Value::Object(o)) => !o.is_empty() || field == "additionalItems",
            Some(_) => true,
        };
        if present {
            errs.push(FieldError::forbidden(format!("{path}.{field}"), what));
        }
    }
    if ty == "null" {
        errs.push(FieldError::forbidden(
            format!("{path}.type"),
            "type cannot be set to null, use nullable as an alternative",
        ));
    }
    if v.get("items").is_some_and(Value::is_array) {
        errs.push(FieldError::forbidden(
            format!("{path}.items"),
            "items must be a schema object and not an array",
        ));
    }
    if inside_meta && truthy(v, "x-kubernetes-embedded-resource") {
        errs.push(FieldError::forbidden(
            format!("{path}.x-kubernetes-embedded-resource"),
            "must not be used inside of resource meta",
        ));
    }
    if truthy(v, "uniqueItems") {
        errs.push(FieldError::forbidden(
            format!("{path}.uniqueItems"),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ));
    }
    if let Some(ap) = get(v, "additionalProperties") {
        if props(v).is_some() && ap != &Value::Bool(true) {
            errs.push(FieldError::forbidden(
                format!("{path}.additionalProperties"),
                "additionalProperties and properties are mutual exclusive",
            ));
        }
        if ap.is_object() {
            let reason = if inside_meta {
                Some("inside additionalProperties applying to object metadata")
            } else {
                forbid_defaults
            };
            openapi(ap, &format!("{path}.additionalProperties"), false, inside_meta, reason, errs);
        }
    }
    if let Some(ps) = props(v) {
        let embedded = truthy(v, "x-kubernetes-embedded-resource");
        for (k, p) in ps {
            let meta = (is_root || embedded) && META_FIELDS.contains(&k.as_str());
            let top = format!("in top-level {k}");
            let reason = if meta && is_root { Some(top.as_str()) } else { forbid_defaults };
            openapi(p, &key(&format!("{path}.properties"), k), false, inside_meta || meta, reason, errs);
        }
    }
    if let Some(not) = get(v, "not") {
        openapi(not, &format!("{path}.not"), false, inside_meta, forbid_defaults, errs);
    }
    for junctor in ["allOf", "oneOf", "anyOf"] {
        if let Some(list) = v.get(junctor).and_then(Value::as_array) {
            for (i, sub) in list.iter().enumerate() {
                openapi(sub, &format!("{path}.{junctor}[{i}]"), false, inside_meta, forbid_defaults, errs);
            }
        }
    }
    if let Some(items) = get(v, "items").filter(|i| i.is_object()) {
        openapi(items, &format!("{path}.items"), false, inside_meta, forbid_defaults, errs);
    }
    if v.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(false)) {
        errs.push(FieldError::invalid(
            format!("{path}.x-kubernetes-preserve-unknown-fields"),
            false,
            "must be true or undefined",
        ));
    }
    extensions(v, path, errs);
}

/// The `x-kubernetes-map-type`, `-list-type`, `-list-map-keys` and
/// `-validations` rules.
fn extensions(v: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let ty = s(v, "type");
    let map_type = v.get("x-kubernetes-map-type").and_then(Value::as_str);
    if let Some(mt) = map_type {
        if ty != "object" {
            if ty.is_empty() {
                errs.push(FieldError::required(format!("{path}.type"), "must be object if x-kubernetes-map-type is specified"));
            } else {
                errs.push(FieldError::invalid(format!("{path}.type"), ty, "must be object if x-kubernetes-map-type is specified"));
            }
        }
        if mt != "atomic" && mt != "granular" {
            errs.push(FieldError::not_supported(format!("{path}.x-kubernetes-map-type"), mt, &["atomic", "granular"]));
        }
    }
    let list_type = v.get("x-kubernetes-list-type").and_then(Value::as_str);
    let items = get(v, "items").filter(|i| i.is_object());
    if let Some(lt) = list_type {
        if ty != "array" {
            if ty.is_empty() {
                errs.push(FieldError::required(format!("{path}.type"), "must be array if x-kubernetes-list-type is specified"));
            } else {
                errs.push(FieldError::invalid(format!("{path}.type"), ty, "must be array if x-kubernetes-list-type is specified"));
            }
        } else if lt == "set" {
            if let Some(it) = items {
                match s(it, "type") {
                    "array" => {
                        if let Some(ilt) = it.get("x-kubernetes-list-type").and_then(Value::as_str) {
                            if ilt != "atomic" {
                                errs.push(FieldError::invalid(format!("{path}.items.x-kubernetes-list-type"), ilt, "must be atomic as item of a list with x-kubernetes-list-type=set"));
                            }
                        }
                    }
                    "object" => {
                        if it.get("x-kubernetes-map-type").and_then(Value::as_str) != Some("atomic") {
                            errs.push(FieldError::invalid(format!("{path}.items.x-kubernetes-map-type"), Value::Null, "must be atomic as item of a list with x-kubernetes-list-type=set"));
                        }
                    }
                    _ => {}
                }
            }
        }
        if !matches!(lt, "atomic" | "set" | "map") {
            errs.push(FieldError::not_supported(format!("{path}.x-kubernetes-list-type"), lt, &["atomic", "set", "map"]));
        }
    }
    let map_keys: Vec<&str> = v
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !map_keys.is_empty() {
        match list_type {
            None => errs.push(FieldError::required(format!("{path}.x-kubernetes-list-type"), "must be map if x-kubernetes-list-map-keys is non-empty")),
            Some(lt) if lt != "map" => errs.push(FieldError::invalid(format!("{path}.x-kubernetes-list-type"), lt, "must be map if x-kubernetes-list-map-keys is non-empty")),
            _ => {}
        }
    }
    if list_type == Some("map") {
        if map_keys.is_empty() {
            errs.push(FieldError::required(format!("{path}.x-kubernetes-list-map-keys"), "must not be empty if x-kubernetes-list-type is map"));
        }
        match items {
            None => errs.push(FieldError::required(format!("{path}.items"), "must have a schema if x-kubernetes-list-type is map")),
            Some(it) if s(it, "type") != "object" => {
                errs.push(FieldError::invalid(format!("{path}.items.type"), s(it, "type"), "must be object if parent array's x-kubernetes-list-type is map"));
            }
            Some(it) => {
                let item_props = it.get("properties").and_then(Value::as_object);
                let all = Value::Array(map_keys.iter().map(|k| Value::from(*k)).collect());
                let mut seen = Vec::new();
                for k in &map_keys {
                    match item_props.and_then(|p| p.get(*k)) {
                        Some(p) => {
                            let pt = s(p, "type");
                            if pt == "array" || pt == "object" {
                                errs.push(FieldError::invalid(format!("{path}.items.properties[{k}].type"), "object", "must be a scalar type if parent array's x-kubernetes-list-type is map"));
                            }
                        }
                        None => errs.push(FieldError::invalid(format!("{path}.x-kubernetes-list-map-keys"), all.clone(), "entries must all be names of item properties")),
                    }
                    if seen.contains(k) {
                        errs.push(FieldError::invalid(format!("{path}.x-kubernetes-list-map-keys"), all.clone(), "must not contain duplicate entries"));
                    }
                    seen.push(k);
                }
            }
        }
    }
    if let (Some(lt @ ("set" | "map")), Some(it)) = (list_type, items) {
        if truthy(it, "nullable") {
            errs.push(FieldError::forbidden(format!("{path}.items.nullable"), format!("cannot be nullable when x-kubernetes-list-type is {lt}")));
        }
        if lt == "map" {
            let required: Vec<&str> = it
                .get("required")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            for k in &map_keys {
                let Some(p) = it.get("properties").and_then(|p| p.get(*k)) else { continue };
                if !required.contains(k) && get(p, "default").is_none() {
                    errs.push(FieldError::required(format!("{path}.items.properties[{k}].default"), "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property"));
                }
                if truthy(p, "nullable") {
                    errs.push(FieldError::forbidden(format!("{path}.items.properties[{k}].nullable"), "this property is in x-kubernetes-list-map-keys, so it cannot be nullable"));
                }
            }
        }
    }
    if let Some(rules) = v.get("x-kubernetes-validations").and_then(Value::as_array) {
        for (i, r) in rules.iter().enumerate() {
            let p = format!("{path}.x-kubernetes-validations[{i}]");
            let rule = s(r, "rule").trim();
            let msg = s(r, "message");
            if rule.is_empty() {
                errs.push(FieldError::required(format!("{p}.rule"), "rule is not specified"));
            } else if !msg.is_empty() && msg.trim().is_empty() {
                errs.push(FieldError::invalid(format!("{p}.message"), msg, "must be non-empty if specified"));
            } else if msg.trim().contains(['\n', '\r']) {
                errs.push(FieldError::invalid(format!("{p}.message"), msg, "must not contain line breaks"));
            } else if rule.contains(['\n', '\r']) && msg.trim().is_empty() {
                errs.push(FieldError::required(format!("{p}.message"), "message must be specified if rule contains line breaks"));
            }
            let reason = s(r, "reason");
            if !reason.is_empty() && !matches!(reason, "FieldValueDuplicate" | "FieldValueForbidden" | "FieldValueInvalid" | "FieldValueRequired") {
                errs.push(FieldError::not_supported(format!("{p}.reason"), reason, &["FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired"]));
            }
        }
    }
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
        errs.push(FieldError::required(format!("{path}.items"), "must be specified"));
    }
    if let Some(it) = items {
        invariants(it, Level::Item, &format!("{path}.items"), errs);
    }
    if let Some(ps) = props(v) {
        for (k, p) in ps {
            invariants(p, Level::Field, &key(&format!("{path}.properties"), k), errs);
        }
    }
    if let Some(ap) = get(v, "additionalProperties") {
        if lvl == Level::Root {
            errs.push(FieldError::forbidden(format!("{path}.additionalProperties"), "must not be used at the root"));
        }
        if ap.is_object() {
            invariants(ap, Level::Field, &format!("{path}.additionalProperties"), errs);
        }
    }
    let int_or_string = truthy(v, "x-kubernetes-int-or-string");
    let preserve = truthy(v, "x-kubernetes-preserve-unknown-fields");
    let embedded = truthy(v, "x-kubernetes-embedded-resource");
    if int_or_string && preserve {
        errs.push(FieldError::invalid(format!("{path}.x-kubernetes-preserve-unknown-fields"), true, "must be false if x-kubernetes-int-or-string is true"));
    }
    if int_or_string && embedded {
        errs.push(FieldError::invalid(format!("{path}.x-kubernetes-embedded-resource"), true, "must be false if x-kubernetes-int-or-string is true"));
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
            errs.push(FieldError::required(format!("{path}.type"), "must be object if x-kubernetes-embedded-resource is true"));
        } else {
            errs.push(FieldError::invalid(format!("{path}.type"), ty, "must be object if x-kubernetes-embedded-resource is true"));
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
        errs.push(FieldError::forbidden(format!("{path}.additionalProperties"), "must not be used if x-kubernetes-embedded-resource is set"));
    }
    if lvl == Level::Root && !ty.is_empty() && ty != "object" {
        errs.push(FieldError::invalid(format!("{path}.type"), ty, "must be object at the root"));
    }
    let check_meta = lvl == Level::Root || embedded;
    if check_meta {
        for f in ["kind", "apiVersion"] {
            if let Some(p) = v.get("properties").and_then(|p| p.get(f)) {
                if s(p, "type") != "string" {
                    errs.push(FieldError::invalid(format!("{path}.properties[{f}].type"), s(p, "type"), "must be string"));
                }
            }
        }
    }
    if let Some(meta) = v.get("properties").and_then(|p| p.get("metadata")) {
        let mp = format!("{path}.properties[metadata]");
        if check_meta && s(meta, "type") != "object" {
            errs.push(FieldError::invalid(format!("{mp}.type"), s(meta, "type"), "must be object"));
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
    let Some(m) = meta.as_object() else { return true };
    m.iter().all(|(k, v)| match k.as_str() {
        "type" | "description" => true,
        "properties" => v
            .as_object()
            .is_none_or(|p| p.keys().all(|k| k == "name" || k == "generateName")),
        _ => v.is_null(),
    })
}

/// Value validations (`allOf`, `anyOf`, `oneOf`, `not`) of a structural node.
fn value_validation(v: &Value, skip_any_of: bool, skip_first_all_of: bool, lvl: Level, path: &str, errs: &mut Vec<FieldError>) {
    if !skip_any_of {
        if let Some(list) = v.get("anyOf").and_then(Value::as_array) {
            for (i, n) in list.iter().enumerate() {
                nested(n, false, lvl, &format!("{path}.anyOf[{i}]"), errs);
            }
        }
    }
    if let Some(list) = v.get("allOf").and_then(Value::as_array) {
        for (i, n) in list.iter().enumerate() {
            nested(n, skip_first_all_of && i == 0, lvl, &format!("{path}.allOf[{i}]"), errs);
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
            errs.push(FieldError::invalid(format!("{path}.pattern"), p, format!("must be a valid regular expression, but isn't: {e}")));
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
            nested(p, false, Level::Field, &key(&format!("{path}.properties"), k), errs);
        }
    }
    let forbidden: [(&str, &str); 13] = [
        ("type", "must be empty to be structural"),
        ("additionalProperties", "must be undefined to be structural"),
        ("default", "must be undefined to be structural"),
        ("title", "must be empty to be structural"),
        ("description", "must be empty to be structural"),
        ("nullable", "must be false to be structural"),
        ("x-kubernetes-preserve-unknown-fields", "must be false to be structural"),
        ("x-kubernetes-embedded-resource", "must be false to be structural"),
        ("x-kubernetes-int-or-string", "must be false to be structural"),
        ("x-kubernetes-list-map-keys", "must be empty to be structural"),
        ("x-kubernetes-list-type", "must be undefined to be structural"),
        ("x-kubernetes-map-type", "must be undefined to be structural"),
        ("x-kubernetes-validations", "must be empty to be structural"),
    ];
    for (field, why) in forbidden {
        let set = match v.get(field) {
            None | Some(Value::Null) | Some(Value::Bool(false)) => false,
            Some(Value::String(s)) => !s.is_empty() || field == "x-kubernetes-list-type" || field == "x-kubernetes-map-type",
            Some(Value::Array(a)) => !a.is_empty(),
            Some(_) => true,
        };
        if set {
            errs.push(FieldError::forbidden(format!("{path}.{field}"), why));
        }
    }
    if v.get("properties").and_then(|p| p.get("metadata")).is_some() {
        errs.push(FieldError::forbidden(format!("{path}.properties[metadata]"), "must not be specified in a nested context"));
    }
}

/// Every property a value validation names must exist in the structure.
fn completeness(v: &Value, structural: Option<&Value>, s_path: &str, v_path: &str, errs: &mut Vec<FieldError>) {
    for junctor in ["allOf", "anyOf", "oneOf"] {
        if let Some(list) = v.get(junctor).and_then(Value::as_array) {
            for (i, n) in list.iter().enumerate() {
                nested_complete(n, structural, s_path, &format!("{v_path}.{junctor}[{i}]"), errs);
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

fn nested_complete(n: &Value, structural: Option<&Value>, s_path: &str, v_path: &str, errs: &mut Vec<FieldError>) {
    let Some(st) = structural else {
        errs.push(FieldError::required(s_path, format!("because it is defined in {v_path}")));
        return;
    };
    for junctor in ["allOf", "anyOf", "oneOf"] {
        if let Some(list) = n.get(junctor).and_then(Value::as_array) {
            for (i, sub) in list.iter().enumerate() {
                nested_complete(sub, Some(st), s_path, &format!("{v_path}.{junctor}[{i}]"), errs);
            }
        }
    }
    if let Some(sub) = get(n, "not") {
        nested_complete(sub, Some(st), s_path, &format!("{v_path}.not"), errs);
    }
    if let Some(it) = get(n, "items").filter(|i| i.is_object()) {
        let s_items = get(st, "items").filter(|i| i.is_object());
        nested_complete(it, s_items, &format!("{s_path}.items"), &format!("{v_path}.items"), errs);
    }
    if let Some(ps) = props(n) {
        for (k, p) in ps {
            let sp = key(&format!("{s_path}.properties"), k);
            let vp = key(&format!("{v_path}.properties"), k);
            match st.get("properties").and_then(|sp| sp.get(k)) {
                Some(sf) => nested_complete(p, Some(sf), &sp, &vp, errs),
                None => errs.push(FieldError::required(sp, format!("because it is defined in {vp}"))),
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
            errs.push(FieldError::invalid(format!("{path}.default"), d.clone(), "must not have unknown fields"));
        } else {
            errs.extend(validate::validate(d, s, &format!("{path}.default")));
        }
    }
    if let (Some(items), Some(raw_items)) = (&s.items, raw.get("items")) {
        defaults(items, raw_items, &format!("{path}.items"), false, errs);
    }
    for (k, p) in &s.properties {
        if let Some(raw_p) = raw.get("properties").and_then(|rp| rp.get(k)) {
            defaults(p, raw_p, &key(&format!("{path}.properties"), k), false, errs);
        }
    }
    if let (Some(ap), Some(raw_ap)) = (s.additional_schema(), raw.get("additionalProperties")) {
        defaults(ap, raw_ap, &format!("{path}.additionalProperties"), false, errs);
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
    *v = wrapper.get_mut("v").map(std::mem::take).unwrap_or(Value::Null);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const P: &str = "spec.versions[0].schema.openAPIV3Schema";

    fn msgs(schema: Value, status: bool) -> Vec<String> {
        check(&schema, P, status).iter().map(FieldError::message).collect()
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
        let got = msgs(json!({"type": "object", "additionalProperties": true}), true);
        assert!(got[0].contains("fields are allowed at the root of the schema if the status subresource is enabled"), "{got:?}");
    }
}
