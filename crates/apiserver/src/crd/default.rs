//! Defaulting from `default` in the schema, upstream's algorithm: a missing
//! field (or a `null` in a field that is not nullable) of an object that is
//! present gets its default; defaults are applied top-down, so a defaulted
//! object then gets the defaults of its own fields. Objects that are absent
//! are not created unless they have a default themselves.

use serde_json::Value;

use super::schema::Schema;

/// Apply defaults to `x` (a whole resource, or any value) in place.
pub fn apply(x: &mut Value, s: &Schema) {
    match x {
        Value::Object(m) => {
            for (k, prop) in &s.properties {
                let Some(d) = &prop.default else { continue };
                let missing = match m.get(k) {
                    None => true,
                    Some(v) => v.is_null() && !prop.nullable,
                };
                if missing {
                    m.insert(k.clone(), d.clone());
                }
            }
            let additional = s.additional_schema();
            for (k, v) in m.iter_mut() {
                if let Some(prop) = s.properties.get(k) {
                    apply(v, prop);
                } else if let Some(extra) = additional {
                    if v.is_null() && !extra.nullable {
                        if let Some(d) = &extra.default {
                            *v = d.clone();
                        }
                    }
                    apply(v, extra);
                }
            }
        }
        Value::Array(items) => {
            let Some(item) = s.items.as_deref() else {
                return;
            };
            for v in items.iter_mut() {
                if v.is_null() && !item.nullable {
                    if let Some(d) = &item.default {
                        *v = d.clone();
                    }
                }
                apply(v, item);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_like_upstream() {
        let s = Schema::parse(&json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "default": {},
                    "properties": {
                        "replicas": {"type": "integer", "default": 1},
                        "mode": {"type": "string", "nullable": true, "default": "fast"},
                        "nested": {"type": "object", "properties": {"x": {"type": "integer", "default": 7}}},
                        "withDefault": {"type": "object", "default": {"y": 2}, "properties": {"y": {"type": "integer"}, "z": {"type": "integer", "default": 3}}},
                        "list": {"type": "array", "items": {"type": "object", "default": {"a": "b"}, "properties": {"n": {"type": "integer", "default": 0}}}},
                        "map": {"type": "object", "additionalProperties": {"type": "object", "properties": {"p": {"type": "string", "default": "q"}}}}
                    }
                }
            }
        }));
        let cases = vec![
            (
                json!({}),
                json!({"spec": {"replicas": 1, "mode": "fast", "withDefault": {"y": 2, "z": 3}}}),
            ),
            (
                json!({"spec": {"replicas": 5, "mode": null, "nested": {}}}),
                json!({"spec": {"replicas": 5, "mode": null, "nested": {"x": 7}, "withDefault": {"y": 2, "z": 3}}}),
            ),
            (
                json!({"spec": {"replicas": null, "list": [null, {"n": 4}, {}], "map": {"k": {}}}}),
                json!({"spec": {"replicas": 1, "mode": "fast", "withDefault": {"y": 2, "z": 3},
                                "list": [{"a": "b", "n": 0}, {"n": 4}, {"n": 0}], "map": {"k": {"p": "q"}}}}),
            ),
        ];
        for (mut input, want) in cases {
            apply(&mut input, &s);
            assert_eq!(input, want);
        }
    }
}
