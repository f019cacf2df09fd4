//! Validation of a custom resource's values against its version's schema,
//! with the rules and messages of upstream's OpenAPI validator (kube-openapi's
//! `validate` package) as the apiextensions server converts them to field
//! errors: e.g. `spec.replicas: Invalid value: "string": spec.replicas in body
//! must be of type integer: "string"`.
//!
//! Names in messages are relative to where validation starts (the object
//! root, or `status` for a status update), while the field of each error is
//! prefixed with that start, exactly as upstream reports them.

use serde_json::Value;

use super::schema::{Additional, Schema};
use crate::error::{FieldError, FieldErrorType};

/// Validate `value` against `schema`; `prefix` is the field path of `value`
/// in the object (empty for the root).
pub fn validate(value: &Value, schema: &Schema, prefix: &str) -> Vec<FieldError> {
    let mut v = Validator {
        prefix,
        errs: Vec::new(),
    };
    v.node(value, schema, "");
    v.errs
}

struct Validator<'a> {
    prefix: &'a str,
    errs: Vec<FieldError>,
}

/// The JSON type of a value as go-openapi infers it: whole numbers decoded
/// from JSON are integers, others numbers.
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Go's `%q` of a string, near enough: JSON escaping.
fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// Go's `%v` of a float64: shortest form, exponent for very large or small values.
pub fn go_float(f: f64) -> String {
    if f == 0.0 || !f.is_finite() {
        return format!("{f}");
    }
    let abs = f.abs();
    if !(1e-4..1e21).contains(&abs) {
        let s = format!("{f:e}");
        // Rust writes `1e21` / `1.5e-7`; Go writes `1e+21` / `1.5e-07`.
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        let digits = if digits.len() < 2 {
            format!("0{digits}")
        } else {
            digits.to_string()
        };
        format!("{mant}e{sign}{digits}")
    } else {
        format!("{f}")
    }
}

/// A bound in a message: as an integer when the value checked is one
/// (upstream compares integers against the bound converted to int64).
fn bound(b: f64, int: bool) -> String {
    if int {
        (b as i64).to_string()
    } else {
        go_float(b)
    }
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Whether two JSON values are equal the way go-openapi's enum check sees
/// them: numbers by value.
pub fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

impl Validator<'_> {
    /// The error's field: the prefix, then the name without a leading dot.
    fn field(&self, name: &str) -> String {
        let name = name.trim_start_matches('.');
        match (self.prefix.is_empty(), name.is_empty()) {
            (true, _) => name.to_string(),
            (false, true) => self.prefix.to_string(),
            (false, false) => format!("{}.{name}", self.prefix),
        }
    }

    fn push(&mut self, kind: FieldErrorType, name: &str, value: Option<Value>, detail: String) {
        let field = self.field(name);
        self.errs.push(FieldError {
            field,
            kind,
            value,
            detail,
        });
    }

    /// An error of the value at `name`: `Invalid value: <value>: <name> in body <msg>`.
    fn invalid(&mut self, name: &str, value: Value, msg: &str) {
        let detail = format!("{name} in body {msg}");
        self.push(FieldErrorType::Invalid, name, Some(value), detail);
    }

    fn type_error(&mut self, name: &str, expected: &str, found: &str) {
        let detail = format!(
            "{name} in body must be of type {expected}: {}",
            quote(found)
        );
        self.push(
            FieldErrorType::TypeInvalid,
            name,
            Some(Value::String(found.to_string())),
            detail,
        );
    }

    /// Errors of `anyOf`/`oneOf`/`allOf`/`not`, which upstream reports at the
    /// validation root with an empty value.
    fn composite(&mut self, msg: String) {
        let field = self.prefix.to_string();
        self.errs.push(FieldError::invalid(
            field,
            Value::String(String::new()),
            msg,
        ));
    }

    fn sub(&self, v: &Value, s: &Schema, name: &str) -> Vec<FieldError> {
        let mut inner = Validator {
            prefix: self.prefix,
            errs: Vec::new(),
        };
        inner.node(v, s, name);
        inner.errs
    }

    fn node(&mut self, v: &Value, s: &Schema, name: &str) {
        let types = s.types();
        if v.is_null() {
            if !types.is_empty() && !s.nullable {
                self.type_error(name, &types.join(","), "null");
            }
            self.enumeration(v, s, name);
            return;
        }
        let found = json_type(v);
        let int_valued_float = found == "number"
            && v.as_f64()
                .is_some_and(|f| f.fract() == 0.0 && f.is_finite());
        let type_ok = types.is_empty()
            || types.contains(&found)
            || (int_valued_float && types.contains(&"integer"))
            || (found == "integer" && types.contains(&"number"));
        if !type_ok {
            self.type_error(name, &types.join(","), found);
        }
        self.junctors(v, s, name);
        match v {
            Value::String(text) => {
                self.string(text, s, name);
                self.format(text, s, name);
            }
            Value::Number(_) => self.number(v, s, name),
            Value::Array(items) => self.array(items, s, name),
            _ => {}
        }
        self.enumeration(v, s, name);
        if let Value::Object(m) = v {
            self.object(m, s, name);
        }
    }

    fn junctors(&mut self, v: &Value, s: &Schema, name: &str) {
        let quoted = quote(name);
        if !s.any_of.is_empty() {
            let mut best: Option<Vec<FieldError>> = None;
            let mut ok = false;
            for branch in &s.any_of {
                let errs = self.sub(v, branch, name);
                if errs.is_empty() {
                    ok = true;
                    break;
                }
                if best.as_ref().is_none_or(|b| errs.len() < b.len()) {
                    best = Some(errs);
                }
            }
            if !ok {
                self.composite(format!(
                    "{quoted} must validate at least one schema (anyOf)"
                ));
                self.errs.extend(best.unwrap_or_default());
            }
        }
        if !s.one_of.is_empty() {
            let mut valid = 0;
            let mut best: Option<Vec<FieldError>> = None;
            for branch in &s.one_of {
                let errs = self.sub(v, branch, name);
                if errs.is_empty() {
                    valid += 1;
                } else if valid == 0 && best.as_ref().is_none_or(|b| errs.len() < b.len()) {
                    best = Some(errs);
                }
            }
            if valid != 1 {
                let more = if valid == 0 {
                    "Found none valid".to_string()
                } else {
                    format!("Found {valid} valid alternatives")
                };
                self.composite(format!(
                    "{quoted} must validate one and only one schema (oneOf). {more}"
                ));
                if valid == 0 {
                    self.errs.extend(best.unwrap_or_default());
                }
            }
        }
        if !s.all_of.is_empty() {
            let mut valid = 0;
            for branch in &s.all_of {
                let errs = self.sub(v, branch, name);
                if errs.is_empty() {
                    valid += 1;
                }
                self.errs.extend(errs);
            }
            if valid != s.all_of.len() {
                let more = if valid == 0 { ". None validated" } else { "" };
                self.composite(format!(
                    "{quoted} must validate all the schemas (allOf){more}"
                ));
            }
        }
        if let Some(not) = &s.not {
            if self.sub(v, not, name).is_empty() {
                self.composite(format!("{quoted} must not validate the schema (not)"));
            }
        }
    }

    fn string(&mut self, text: &str, s: &Schema, name: &str) {
        let len = text.chars().count() as i64;
        if let Some(max) = s.max_length.filter(|m| len > *m) {
            self.push(
                FieldErrorType::TooLong,
                name,
                None,
                FieldError::too_long("", max.max(0) as usize).detail,
            );
            return;
        }
        if let Some(min) = s.min_length.filter(|m| len < *m) {
            self.invalid(
                name,
                Value::String(text.to_string()),
                &format!("should be at least {min} chars long"),
            );
            return;
        }
        if let Some(p) = &s.pattern {
            let matched = match &p.regex {
                Some(r) => r.is_match(text),
                None => false,
            };
            if !matched {
                self.invalid(
                    name,
                    Value::String(text.to_string()),
                    &format!("should match '{}'", p.source),
                );
            }
        }
    }

    fn format(&mut self, text: &str, s: &Schema, name: &str) {
        if s.format.is_empty() {
            return;
        }
        if let Some(ok) = super::formats::check(&s.format, text) {
            if !ok {
                let detail = format!(
                    "{name} in body must be of type {}: {}",
                    s.format,
                    quote(text)
                );
                self.push(
                    FieldErrorType::TypeInvalid,
                    name,
                    Some(Value::String(text.to_string())),
                    detail,
                );
            }
        }
    }

    fn number(&mut self, v: &Value, s: &Schema, name: &str) {
        let int = v.is_i64() || v.is_u64();
        let x = v.as_f64().unwrap_or(0.0);
        if let Some(m) = s.multiple_of {
            if m <= 0.0 {
                self.invalid(
                    name,
                    v.clone(),
                    &format!(
                        "factor MultipleOf declared for {name} must be positive: {}",
                        bound(m, int)
                    ),
                );
            } else {
                let q = x / m;
                let off = if int && m.fract() == 0.0 {
                    v.as_i64()
                        .zip(Some(m as i64))
                        .is_some_and(|(a, b)| b != 0 && a % b != 0)
                } else {
                    (q - q.round()).abs() > 1e-9 * q.abs().max(1.0)
                };
                if off {
                    self.invalid(
                        name,
                        v.clone(),
                        &format!("should be a multiple of {}", bound(m, int)),
                    );
                }
            }
        }
        if let Some(max) = s.maximum {
            let (over, shown) = if int {
                let b = max as i64;
                let xi = v.as_i64().unwrap_or(i64::MAX);
                (
                    if s.exclusive_maximum { xi >= b } else { xi > b },
                    b.to_string(),
                )
            } else {
                (
                    if s.exclusive_maximum {
                        x >= max
                    } else {
                        x > max
                    },
                    go_float(max),
                )
            };
            if over {
                let rel = if s.exclusive_maximum {
                    "less than"
                } else {
                    "less than or equal to"
                };
                self.invalid(name, v.clone(), &format!("should be {rel} {shown}"));
            }
        }
        if let Some(min) = s.minimum {
            let (under, shown) = if int {
                let b = min as i64;
                let xi = v.as_i64().unwrap_or(i64::MAX);
                (
                    if s.exclusive_minimum { xi <= b } else { xi < b },
                    b.to_string(),
                )
            } else {
                (
                    if s.exclusive_minimum {
                        x <= min
                    } else {
                        x < min
                    },
                    go_float(min),
                )
            };
            if under {
                let rel = if s.exclusive_minimum {
                    "greater than"
                } else {
                    "greater than or equal to"
                };
                self.invalid(name, v.clone(), &format!("should be {rel} {shown}"));
            }
        }
    }

    fn array(&mut self, items: &[Value], s: &Schema, name: &str) {
        if let Some(item_schema) = &s.items {
            for (i, item) in items.iter().enumerate() {
                self.node(item, item_schema, &format!("{name}[{i}]"));
            }
        }
        let n = items.len() as i64;
        if let Some(min) = s.min_items.filter(|m| n < *m) {
            self.invalid(
                name,
                Value::from(n),
                &format!("should have at least {min} items"),
            );
        }
        if let Some(max) = s.max_items.filter(|m| n > *m) {
            self.push(
                FieldErrorType::TooMany,
                name,
                Some(Value::from(n)),
                format!(
                    "must have at most {max} {}",
                    if max == 1 { "item" } else { "items" }
                ),
            );
        }
        if s.unique_items {
            let dup = items
                .iter()
                .enumerate()
                .any(|(i, a)| items[i + 1..].iter().any(|b| json_equal(a, b)));
            if dup {
                self.invalid(
                    name,
                    Value::String(String::new()),
                    "shouldn't contain duplicates",
                );
            }
        }
    }

    fn enumeration(&mut self, v: &Value, s: &Schema, name: &str) {
        let Some(allowed) = &s.enumeration else {
            return;
        };
        if allowed.is_empty() || allowed.iter().any(|a| json_equal(a, v)) {
            return;
        }
        let list = allowed
            .iter()
            .map(|a| match a {
                Value::String(s) => quote(s),
                other => quote(&other.to_string()),
            })
            .collect::<Vec<_>>()
            .join(", ");
        self.push(
            FieldErrorType::NotSupported,
            name,
            Some(v.clone()),
            format!("supported values: {list}"),
        );
    }

    fn object(&mut self, m: &serde_json::Map<String, Value>, s: &Schema, name: &str) {
        let n = m.len() as i64;
        if let Some(min) = s.min_properties.filter(|x| n < *x) {
            self.invalid(
                name,
                Value::from(n),
                &format!("should have at least {min} properties"),
            );
        }
        if let Some(max) = s.max_properties.filter(|x| n > *x) {
            self.push(
                FieldErrorType::TooMany,
                name,
                Some(Value::from(n)),
                format!(
                    "must have at most {max} {}",
                    if max == 1 { "item" } else { "items" }
                ),
            );
        }
        match &s.additional {
            Some(Additional::Bool(false)) => {
                for k in m.keys().filter(|k| !s.properties.contains_key(*k)) {
                    let detail = format!("{name}.{k} in body is a forbidden property");
                    self.push(
                        FieldErrorType::Invalid,
                        name,
                        Some(Value::String(String::new())),
                        detail,
                    );
                }
            }
            Some(Additional::Schema(extra)) => {
                for (k, value) in m.iter().filter(|(k, _)| !s.properties.contains_key(*k)) {
                    self.node(value, extra, &format!("{name}.{k}"));
                }
            }
            _ => {}
        }
        for (k, prop) in &s.properties {
            if let Some(value) = m.get(k) {
                self.node(value, prop, &child(name, k));
            }
        }
        for k in &s.required {
            if !m.contains_key(k) {
                self.push(
                    FieldErrorType::Required,
                    &format!("{name}.{k}"),
                    None,
                    String::new(),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Schema {
        Schema::parse(&json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["replicas"],
                    "properties": {
                        "replicas": {"type": "integer", "minimum": 1, "maximum": 10},
                        "ratio": {"type": "number", "exclusiveMaximum": true, "maximum": 1.5},
                        "mode": {"type": "string", "enum": ["fast", "slow"]},
                        "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5, "minLength": 2},
                        "port": {"x-kubernetes-int-or-string": true},
                        "tags": {"type": "array", "maxItems": 2, "minItems": 1, "items": {"type": "string"}},
                        "labels": {"type": "object", "additionalProperties": {"type": "integer"}},
                        "maybe": {"type": "string", "nullable": true},
                        "when": {"type": "string", "format": "date-time"},
                        "any": {"x-kubernetes-preserve-unknown-fields": true},
                        "choice": {"type": "string", "anyOf": [{"pattern": "^a"}, {"pattern": "^b"}]}
                    }
                },
                "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}
            }
        }))
    }

    fn messages(obj: Value) -> Vec<String> {
        validate(&obj, &schema(), "")
            .iter()
            .map(FieldError::message)
            .collect()
    }

    #[test]
    fn upstream_messages() {
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (json!({"spec": {"replicas": 3}}), vec![]),
            (
                json!({"spec": {"replicas": "3"}}),
                vec![r#"spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string""#],
            ),
            (json!({"spec": {}}), vec!["spec.replicas: Required value"]),
            (
                json!({"spec": {"replicas": 20}}),
                vec!["spec.replicas: Invalid value: 20: spec.replicas in body should be less than or equal to 10"],
            ),
            (
                json!({"spec": {"replicas": 0}}),
                vec!["spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1"],
            ),
            (
                json!({"spec": {"replicas": 2, "ratio": 1.5}}),
                vec!["spec.ratio: Invalid value: 1.5: spec.ratio in body should be less than 1.5"],
            ),
            (
                json!({"spec": {"replicas": 2, "mode": "medium"}}),
                vec![r#"spec.mode: Unsupported value: "medium": supported values: "fast", "slow""#],
            ),
            (
                json!({"spec": {"replicas": 2, "name": "Abc"}}),
                vec![r#"spec.name: Invalid value: "Abc": spec.name in body should match '^[a-z]+$'"#],
            ),
            (json!({"spec": {"replicas": 2, "name": "abcdefg"}}), vec!["spec.name: Too long: may not be more than 5 bytes"]),
            (
                json!({"spec": {"replicas": 2, "name": "a"}}),
                vec![r#"spec.name: Invalid value: "a": spec.name in body should be at least 2 chars long"#],
            ),
            (json!({"spec": {"replicas": 2, "port": 80}}), vec![]),
            (json!({"spec": {"replicas": 2, "port": "http"}}), vec![]),
            (
                json!({"spec": {"replicas": 2, "port": true}}),
                vec![r#"spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean""#],
            ),
            (json!({"spec": {"replicas": 2, "tags": ["a", "b", "c"]}}), vec!["spec.tags: Too many: 3: must have at most 2 items"]),
            (
                json!({"spec": {"replicas": 2, "tags": []}}),
                vec!["spec.tags: Invalid value: 0: spec.tags in body should have at least 1 items"],
            ),
            (
                json!({"spec": {"replicas": 2, "tags": [1]}}),
                vec![r#"spec.tags[0]: Invalid value: "integer": spec.tags[0] in body must be of type string: "integer""#],
            ),
            (
                json!({"spec": {"replicas": 2, "labels": {"a": "x"}}}),
                vec![r#"spec.labels.a: Invalid value: "string": spec.labels.a in body must be of type integer: "string""#],
            ),
            (json!({"spec": {"replicas": 2, "maybe": null}}), vec![]),
            (
                json!({"spec": {"replicas": 2, "mode": null}}),
                vec![
                    r#"spec.mode: Invalid value: "null": spec.mode in body must be of type string: "null""#,
                    r#"spec.mode: Unsupported value: null: supported values: "fast", "slow""#,
                ],
            ),
            (json!({"spec": {"replicas": 2, "when": "2024-01-02T03:04:05Z"}}), vec![]),
            (
                json!({"spec": {"replicas": 2, "when": "yesterday"}}),
                vec![r#"spec.when: Invalid value: "yesterday": spec.when in body must be of type date-time: "yesterday""#],
            ),
            (json!({"spec": {"replicas": 2, "any": {"x": [1, {"y": null}]}}}), vec![]),
            (json!({"spec": {"replicas": 2.0}}), vec![]),
            (json!({"spec": {"replicas": 2, "choice": "beta"}}), vec![]),
            (
                json!({"spec": {"replicas": 2, "choice": "gamma"}}),
                vec![
                    r#": Invalid value: "": "spec.choice" must validate at least one schema (anyOf)"#,
                    r#"spec.choice: Invalid value: "gamma": spec.choice in body should match '^a'"#,
                ],
            ),
            (
                json!({"spec": {"replicas": 2}, "status": {"ready": "yes"}}),
                vec![r#"status.ready: Invalid value: "string": status.ready in body must be of type boolean: "string""#],
            ),
        ];
        for (obj, want) in cases {
            assert_eq!(messages(obj.clone()), want, "{obj}");
        }
    }

    #[test]
    fn status_names_are_relative_to_status() {
        let s = schema();
        let errs = validate(&json!({"ready": 1}), &s.properties["status"], "status");
        assert_eq!(
            errs[0].message(),
            r#"status.ready: Invalid value: "integer": ready in body must be of type boolean: "integer""#
        );
    }

    #[test]
    fn go_float_formatting() {
        assert_eq!(go_float(10.0), "10");
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(0.00001), "1e-05");
    }

    #[test]
    fn causes_carry_upstream_reasons() {
        let errs = validate(&json!({"spec": {"replicas": "x"}}), &schema(), "");
        assert_eq!(errs[0].kind.cause_type(), "FieldValueTypeInvalid");
        let errs = validate(&json!({"spec": {}}), &schema(), "");
        assert_eq!(errs[0].kind.cause_type(), "FieldValueRequired");
    }
}
