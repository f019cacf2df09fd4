//! The OpenAPI v3 schema of a custom resource version, parsed once from the
//! CRD's `openAPIV3Schema` JSON into a tree the validator, pruner and
//! defaulter walk.
//!
//! One type serves both the structural part of a schema (type, properties,
//! items, additionalProperties, the `x-kubernetes-*` extensions, defaults)
//! and the value validations nested under `allOf`/`anyOf`/`oneOf`/`not`,
//! which may only restrict values. Whether a schema keeps to those rules
//! (is "structural") is checked when the CRD is written, by
//! [`super::structural`]; here parsing is lenient and never fails on shape.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

/// A compiled `pattern`, keeping its source for messages.
#[derive(Clone, Debug)]
pub struct Pattern {
    /// The pattern as written.
    pub source: String,
    /// Compiled; `None` when it does not compile (the CRD was refused then,
    /// except for schemas stored before that check).
    pub regex: Option<Arc<regex::Regex>>,
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// `additionalProperties`: a boolean or a schema.
#[derive(Clone, Debug, PartialEq)]
pub enum Additional {
    /// `true` (anything) or `false` (nothing).
    Bool(bool),
    /// Values must match this schema.
    Schema(Box<Schema>),
}

/// One node of a schema.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Schema {
    /// `type`; empty when unset.
    pub ty: String,
    /// `format`.
    pub format: String,
    /// `nullable`.
    pub nullable: bool,
    /// `default`.
    pub default: Option<Value>,
    /// `properties`, by name.
    pub properties: BTreeMap<String, Schema>,
    /// `additionalProperties`.
    pub additional: Option<Additional>,
    /// `items` (a single schema; arrays of schemas are refused by CRD validation).
    pub items: Option<Box<Schema>>,
    /// `x-kubernetes-preserve-unknown-fields: true`.
    pub preserve_unknown: bool,
    /// `x-kubernetes-embedded-resource: true`.
    pub embedded: bool,
    /// `x-kubernetes-int-or-string: true`.
    pub int_or_string: bool,
    /// `x-kubernetes-list-type`.
    pub list_type: Option<String>,
    /// `x-kubernetes-list-map-keys`.
    pub list_map_keys: Vec<String>,
    /// `x-kubernetes-map-type`.
    pub map_type: Option<String>,
    /// `maximum`.
    pub maximum: Option<f64>,
    /// `exclusiveMaximum`.
    pub exclusive_maximum: bool,
    /// `minimum`.
    pub minimum: Option<f64>,
    /// `exclusiveMinimum`.
    pub exclusive_minimum: bool,
    /// `maxLength`.
    pub max_length: Option<i64>,
    /// `minLength`.
    pub min_length: Option<i64>,
    /// `pattern`.
    pub pattern: Option<Pattern>,
    /// `maxItems`.
    pub max_items: Option<i64>,
    /// `minItems`.
    pub min_items: Option<i64>,
    /// `uniqueItems`.
    pub unique_items: bool,
    /// `multipleOf`.
    pub multiple_of: Option<f64>,
    /// `enum`.
    pub enumeration: Option<Vec<Value>>,
    /// `maxProperties`.
    pub max_properties: Option<i64>,
    /// `minProperties`.
    pub min_properties: Option<i64>,
    /// `required`.
    pub required: Vec<String>,
    /// `allOf`.
    pub all_of: Vec<Schema>,
    /// `anyOf`.
    pub any_of: Vec<Schema>,
    /// `oneOf`.
    pub one_of: Vec<Schema>,
    /// `not`.
    pub not: Option<Box<Schema>>,
    /// Number of `x-kubernetes-validations` rules (CEL; not evaluated here).
    pub cel_rules: usize,
}

fn int(v: &Value, k: &str) -> Option<i64> {
    v.get(k)
        .and_then(|x| x.as_i64().or_else(|| x.as_f64().map(|f| f as i64)))
}

fn num(v: &Value, k: &str) -> Option<f64> {
    v.get(k).and_then(Value::as_f64)
}

fn flag(v: &Value, k: &str) -> bool {
    v.get(k).and_then(Value::as_bool).unwrap_or(false)
}

fn string(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or("").to_string()
}

fn list(v: &Value, k: &str) -> Vec<Schema> {
    v.get(k)
        .and_then(Value::as_array)
        .map(|a| a.iter().map(Schema::parse).collect())
        .unwrap_or_default()
}

/// Compile an OpenAPI (ECMA-262 flavoured) pattern. Upstream compiles it with
/// Go's RE2, whose syntax the `regex` crate shares; both are unanchored.
pub fn compile_pattern(p: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(p)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| e.to_string())
}

impl Schema {
    /// Parse a `JSONSchemaProps` object. Fields of the wrong JSON type read as
    /// unset; the CRD's own validation reports them.
    pub fn parse(v: &Value) -> Schema {
        let mut s = Schema {
            ty: string(v, "type"),
            format: string(v, "format"),
            nullable: flag(v, "nullable"),
            default: v.get("default").filter(|d| !d.is_null()).cloned(),
            preserve_unknown: flag(v, "x-kubernetes-preserve-unknown-fields"),
            embedded: flag(v, "x-kubernetes-embedded-resource"),
            int_or_string: flag(v, "x-kubernetes-int-or-string"),
            list_type: v
                .get("x-kubernetes-list-type")
                .and_then(Value::as_str)
                .map(str::to_string),
            list_map_keys: v
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|k| k.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            map_type: v
                .get("x-kubernetes-map-type")
                .and_then(Value::as_str)
                .map(str::to_string),
            maximum: num(v, "maximum"),
            exclusive_maximum: flag(v, "exclusiveMaximum"),
            minimum: num(v, "minimum"),
            exclusive_minimum: flag(v, "exclusiveMinimum"),
            max_length: int(v, "maxLength"),
            min_length: int(v, "minLength"),
            pattern: v.get("pattern").and_then(Value::as_str).map(|p| Pattern {
                source: p.to_string(),
                regex: compile_pattern(p).ok().map(Arc::new),
            }),
            max_items: int(v, "maxItems"),
            min_items: int(v, "minItems"),
            unique_items: flag(v, "uniqueItems"),
            multiple_of: num(v, "multipleOf"),
            enumeration: v.get("enum").and_then(Value::as_array).cloned(),
            max_properties: int(v, "maxProperties"),
            min_properties: int(v, "minProperties"),
            required: v
                .get("required")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|k| k.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            all_of: list(v, "allOf"),
            any_of: list(v, "anyOf"),
            one_of: list(v, "oneOf"),
            not: v
                .get("not")
                .filter(|n| n.is_object())
                .map(|n| Box::new(Schema::parse(n))),
            cel_rules: v
                .get("x-kubernetes-validations")
                .and_then(Value::as_array)
                .map(Vec::len)
                .unwrap_or(0),
            ..Schema::default()
        };
        if let Some(props) = v.get("properties").and_then(Value::as_object) {
            s.properties = props
                .iter()
                .map(|(k, p)| (k.clone(), Schema::parse(p)))
                .collect();
        }
        s.additional = match v.get("additionalProperties") {
            Some(Value::Bool(b)) => Some(Additional::Bool(*b)),
            Some(o @ Value::Object(_)) => Some(Additional::Schema(Box::new(Schema::parse(o)))),
            _ => None,
        };
        s.items = v
            .get("items")
            .filter(|i| i.is_object())
            .map(|i| Box::new(Schema::parse(i)));
        s
    }

    /// The schema of `additionalProperties`, when it is one.
    pub fn additional_schema(&self) -> Option<&Schema> {
        match &self.additional {
            Some(Additional::Schema(s)) => Some(s),
            _ => None,
        }
    }

    /// The schema that applies to the field `key` of an object: a declared
    /// property, or else `additionalProperties`.
    pub fn field(&self, key: &str) -> Option<&Schema> {
        self.properties
            .get(key)
            .or_else(|| self.additional_schema())
    }

    /// The effective types: `x-kubernetes-int-or-string` means integer or
    /// string, as upstream's conversion to go-openapi sets it.
    pub fn types(&self) -> Vec<&str> {
        if self.int_or_string {
            vec!["integer", "string"]
        } else if self.ty.is_empty() {
            vec![]
        } else {
            vec![self.ty.as_str()]
        }
    }

    /// Whether any node of the tree (value validations included) satisfies `pred`.
    pub fn any(&self, pred: &dyn Fn(&Schema) -> bool) -> bool {
        pred(self)
            || self.properties.values().any(|p| p.any(pred))
            || self.additional_schema().is_some_and(|a| a.any(pred))
            || self.items.as_deref().is_some_and(|i| i.any(pred))
            || self
                .all_of
                .iter()
                .chain(&self.any_of)
                .chain(&self.one_of)
                .any(|s| s.any(pred))
            || self.not.as_deref().is_some_and(|n| n.any(pred))
    }

    /// The schema at a dotted path of property names (e.g. `spec.replicas`).
    pub fn at_path(&self, path: &str) -> Option<&Schema> {
        let mut cur = self;
        for part in path.trim_start_matches('.').split('.') {
            if part.is_empty() {
                continue;
            }
            cur = cur.field(part)?;
        }
        Some(cur)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_structure_and_extensions() {
        let s = Schema::parse(&json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["replicas"],
                    "properties": {
                        "replicas": {"type": "integer", "minimum": 0, "maximum": 10, "default": 1},
                        "port": {"x-kubernetes-int-or-string": true},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "raw": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "name": {"type": "string", "pattern": "^[a-z]+$", "enum": ["a", "b"]}
                    }
                }
            }
        }));
        let spec = &s.properties["spec"];
        assert_eq!(spec.required, vec!["replicas"]);
        let r = &spec.properties["replicas"];
        assert_eq!(
            (r.minimum, r.maximum, r.default.clone()),
            (Some(0.0), Some(10.0), Some(json!(1)))
        );
        assert_eq!(spec.properties["port"].types(), vec!["integer", "string"]);
        assert_eq!(
            spec.properties["labels"].additional_schema().unwrap().ty,
            "string"
        );
        assert!(spec.properties["raw"].preserve_unknown);
        let n = &spec.properties["name"];
        assert!(n
            .pattern
            .as_ref()
            .unwrap()
            .regex
            .as_ref()
            .unwrap()
            .is_match("abc"));
        assert_eq!(n.enumeration.as_ref().unwrap().len(), 2);
        assert_eq!(s.at_path(".spec.replicas").unwrap().ty, "integer");
        assert_eq!(s.at_path("spec.labels.anything").unwrap().ty, "string");
        assert!(s.at_path("spec.nothing").is_none());
        assert!(s.any(&|n| n.int_or_string));
    }

    #[test]
    fn lenient_on_wrong_shapes() {
        let s = Schema::parse(
            &json!({"type": 3, "properties": [], "items": "x", "maximum": "9", "additionalProperties": false}),
        );
        assert_eq!(s.ty, "");
        assert!(s.properties.is_empty() && s.items.is_none() && s.maximum.is_none());
        assert_eq!(s.additional, Some(Additional::Bool(false)));
    }
}
