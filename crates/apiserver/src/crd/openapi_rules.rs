//! The OpenAPI v3 subset a CRD schema may use, and the rules of the
//! `x-kubernetes-*` extensions (upstream's
//! `ValidateCustomResourceDefinitionOpenAPISchema`), node by node.

use serde_json::Value;

use super::structural::{get, key, props, s, truthy, META_FIELDS, OPENAPI_TYPES};
use crate::error::FieldError;

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
pub(super) fn root_fields_with_status(schema: &Value, path: &str, errs: &mut Vec<FieldError>) {
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
pub(super) fn openapi(
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
        errs.push(FieldError::not_supported(
            format!("{path}.type"),
            ty,
            OPENAPI_TYPES,
        ));
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
            openapi(
                ap,
                &format!("{path}.additionalProperties"),
                false,
                inside_meta,
                reason,
                errs,
            );
        }
    }
    if let Some(ps) = props(v) {
        let embedded = truthy(v, "x-kubernetes-embedded-resource");
        for (k, p) in ps {
            let meta = (is_root || embedded) && META_FIELDS.contains(&k.as_str());
            let top = format!("in top-level {k}");
            let reason = if meta && is_root {
                Some(top.as_str())
            } else {
                forbid_defaults
            };
            openapi(
                p,
                &key(&format!("{path}.properties"), k),
                false,
                inside_meta || meta,
                reason,
                errs,
            );
        }
    }
    if let Some(not) = get(v, "not") {
        openapi(
            not,
            &format!("{path}.not"),
            false,
            inside_meta,
            forbid_defaults,
            errs,
        );
    }
    for junctor in ["allOf", "oneOf", "anyOf"] {
        if let Some(list) = v.get(junctor).and_then(Value::as_array) {
            for (i, sub) in list.iter().enumerate() {
                openapi(
                    sub,
                    &format!("{path}.{junctor}[{i}]"),
                    false,
                    inside_meta,
                    forbid_defaults,
                    errs,
                );
            }
        }
    }
    if let Some(items) = get(v, "items").filter(|i| i.is_object()) {
        openapi(
            items,
            &format!("{path}.items"),
            false,
            inside_meta,
            forbid_defaults,
            errs,
        );
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
                errs.push(FieldError::required(
                    format!("{path}.type"),
                    "must be object if x-kubernetes-map-type is specified",
                ));
            } else {
                errs.push(FieldError::invalid(
                    format!("{path}.type"),
                    ty,
                    "must be object if x-kubernetes-map-type is specified",
                ));
            }
        }
        if mt != "atomic" && mt != "granular" {
            errs.push(FieldError::not_supported(
                format!("{path}.x-kubernetes-map-type"),
                mt,
                &["atomic", "granular"],
            ));
        }
    }
    let list_type = v.get("x-kubernetes-list-type").and_then(Value::as_str);
    let items = get(v, "items").filter(|i| i.is_object());
    if let Some(lt) = list_type {
        if ty != "array" {
            if ty.is_empty() {
                errs.push(FieldError::required(
                    format!("{path}.type"),
                    "must be array if x-kubernetes-list-type is specified",
                ));
            } else {
                errs.push(FieldError::invalid(
                    format!("{path}.type"),
                    ty,
                    "must be array if x-kubernetes-list-type is specified",
                ));
            }
        } else if lt == "set" {
            if let Some(it) = items {
                match s(it, "type") {
                    "array" => {
                        if let Some(ilt) = it.get("x-kubernetes-list-type").and_then(Value::as_str)
                        {
                            if ilt != "atomic" {
                                errs.push(FieldError::invalid(format!("{path}.items.x-kubernetes-list-type"), ilt, "must be atomic as item of a list with x-kubernetes-list-type=set"));
                            }
                        }
                    }
                    "object"
                        if it.get("x-kubernetes-map-type").and_then(Value::as_str)
                            != Some("atomic") =>
                    {
                        errs.push(FieldError::invalid(
                            format!("{path}.items.x-kubernetes-map-type"),
                            Value::Null,
                            "must be atomic as item of a list with x-kubernetes-list-type=set",
                        ));
                    }
                    _ => {}
                }
            }
        }
        if !matches!(lt, "atomic" | "set" | "map") {
            errs.push(FieldError::not_supported(
                format!("{path}.x-kubernetes-list-type"),
                lt,
                &["atomic", "set", "map"],
            ));
        }
    }
    let map_keys: Vec<&str> = v
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !map_keys.is_empty() {
        match list_type {
            None => errs.push(FieldError::required(
                format!("{path}.x-kubernetes-list-type"),
                "must be map if x-kubernetes-list-map-keys is non-empty",
            )),
            Some(lt) if lt != "map" => errs.push(FieldError::invalid(
                format!("{path}.x-kubernetes-list-type"),
                lt,
                "must be map if x-kubernetes-list-map-keys is non-empty",
            )),
            _ => {}
        }
    }
    if list_type == Some("map") {
        if map_keys.is_empty() {
            errs.push(FieldError::required(
                format!("{path}.x-kubernetes-list-map-keys"),
                "must not be empty if x-kubernetes-list-type is map",
            ));
        }
        match items {
            None => errs.push(FieldError::required(
                format!("{path}.items"),
                "must have a schema if x-kubernetes-list-type is map",
            )),
            Some(it) if s(it, "type") != "object" => {
                errs.push(FieldError::invalid(
                    format!("{path}.items.type"),
                    s(it, "type"),
                    "must be object if parent array's x-kubernetes-list-type is map",
                ));
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
                        None => errs.push(FieldError::invalid(
                            format!("{path}.x-kubernetes-list-map-keys"),
                            all.clone(),
                            "entries must all be names of item properties",
                        )),
                    }
                    if seen.contains(k) {
                        errs.push(FieldError::invalid(
                            format!("{path}.x-kubernetes-list-map-keys"),
                            all.clone(),
                            "must not contain duplicate entries",
                        ));
                    }
                    seen.push(k);
                }
            }
        }
    }
    if let (Some(lt @ ("set" | "map")), Some(it)) = (list_type, items) {
        if truthy(it, "nullable") {
            errs.push(FieldError::forbidden(
                format!("{path}.items.nullable"),
                format!("cannot be nullable when x-kubernetes-list-type is {lt}"),
            ));
        }
        if lt == "map" {
            let required: Vec<&str> = it
                .get("required")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            for k in &map_keys {
                let Some(p) = it.get("properties").and_then(|p| p.get(*k)) else {
                    continue;
                };
                if !required.contains(k) && get(p, "default").is_none() {
                    errs.push(FieldError::required(format!("{path}.items.properties[{k}].default"), "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property"));
                }
                if truthy(p, "nullable") {
                    errs.push(FieldError::forbidden(
                        format!("{path}.items.properties[{k}].nullable"),
                        "this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
                    ));
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
                errs.push(FieldError::required(
                    format!("{p}.rule"),
                    "rule is not specified",
                ));
            } else if !msg.is_empty() && msg.trim().is_empty() {
                errs.push(FieldError::invalid(
                    format!("{p}.message"),
                    msg,
                    "must be non-empty if specified",
                ));
            } else if msg.trim().contains(['\n', '\r']) {
                errs.push(FieldError::invalid(
                    format!("{p}.message"),
                    msg,
                    "must not contain line breaks",
                ));
            } else if rule.contains(['\n', '\r']) && msg.trim().is_empty() {
                errs.push(FieldError::required(
                    format!("{p}.message"),
                    "message must be specified if rule contains line breaks",
                ));
            }
            let reason = s(r, "reason");
            if !reason.is_empty()
                && !matches!(
                    reason,
                    "FieldValueDuplicate"
                        | "FieldValueForbidden"
                        | "FieldValueInvalid"
                        | "FieldValueRequired"
                )
            {
                errs.push(FieldError::not_supported(
                    format!("{p}.reason"),
                    reason,
                    &[
                        "FieldValueDuplicate",
                        "FieldValueForbidden",
                        "FieldValueInvalid",
                        "FieldValueRequired",
                    ],
                ));
            }
        }
    }
}
