//! Pruning: custom resources keep only the fields their schema declares,
//! like a typed decode drops unknown JSON fields. Upstream's algorithm:
//! `x-kubernetes-preserve-unknown-fields` keeps unknown fields below it (but
//! declared fields there are pruned as usual); at the object root and in
//! `x-kubernetes-embedded-resource` objects `apiVersion`, `kind` and
//! `metadata` are left alone (metadata is ObjectMeta's business).
//!
//! Also upstream's removal of `null` values where the schema says the field
//! is neither nullable nor defaulted, which runs right after pruning.

use serde_json::{Map, Value};

use super::schema::Schema;

const META_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// Prune `obj` (a whole resource) in place; returns the pruned paths, sorted,
/// in upstream's form (`spec.foo`, `spec.list[0].bar`).
pub fn prune(obj: &mut Value, schema: &Schema) -> Vec<String> {
    let mut out = Vec::new();
    prune_map_or_list(obj, Some(schema), true, "", &mut out);
    out.sort();
    out
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// `embedded`: the value is a resource (the root, or an embedded resource),
/// whose type and object meta are not pruned here.
fn prune_map_or_list(
    x: &mut Value,
    s: Option<&Schema>,
    embedded: bool,
    path: &str,
    out: &mut Vec<String>,
) {
    if let Some(s) = s.filter(|s| s.preserve_unknown) {
        skip_prune(x, s, embedded || s.embedded, path, out);
        return;
    }
    match x {
        Value::Object(m) => {
            let Some(s) = s else {
                for k in m.keys() {
                    out.push(join(path, k));
                }
                m.clear();
                return;
            };
            let embedded = embedded || s.embedded;
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                if embedded && META_FIELDS.contains(&k.as_str()) {
                    continue;
                }
                match s.field(&k) {
                    Some(sub) => {
                        let p = join(path, &k);
                        if let Some(v) = m.get_mut(&k) {
                            prune_map_or_list(v, Some(sub), false, &p, out);
                        }
                    }
                    None => {
                        // Type meta at the root is implicit, never reported.
                        if !(META_FIELDS.contains(&k.as_str()) && path.is_empty()) {
                            out.push(join(path, &k));
                        }
                        m.remove(&k);
                    }
                }
            }
        }
        Value::Array(items) => {
            let item_schema = s.and_then(|s| s.items.as_deref());
            for (i, v) in items.iter_mut().enumerate() {
                let p = format!("{path}[{i}]");
                prune_map_or_list(v, item_schema, false, &p, out);
            }
        }
        _ => {}
    }
}

fn skip_prune(x: &mut Value, s: &Schema, embedded: bool, path: &str, out: &mut Vec<String>) {
    match x {
        Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                if embedded && META_FIELDS.contains(&k.as_str()) {
                    continue;
                }
                if let Some(sub) = s.field(k) {
                    prune_map_or_list(v, Some(sub), false, &join(path, k), out);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = s.items.as_deref() {
                for (i, v) in items.iter_mut().enumerate() {
                    skip_prune(
                        v,
                        item_schema,
                        item_schema.embedded,
                        &format!("{path}[{i}]"),
                        out,
                    );
                }
            }
        }
        _ => {}
    }
}

/// Remove `null` map values whose schema is neither nullable nor defaulted
/// (defaulting fills the defaulted ones afterwards).
pub fn prune_nulls(x: &mut Value, s: Option<&Schema>) {
    match x {
        Value::Object(m) => prune_null_fields(m, s),
        Value::Array(items) => {
            let item_schema = s.and_then(|s| s.items.as_deref());
            for v in items {
                prune_nulls(v, item_schema);
            }
        }
        _ => {}
    }
}

fn prune_null_fields(m: &mut Map<String, Value>, s: Option<&Schema>) {
    let drop: Vec<String> = m
        .iter()
        .filter(|(k, v)| {
            let sub = s.and_then(|s| s.field(k));
            v.is_null() && sub.is_some_and(|sub| !sub.nullable && sub.default.is_none())
        })
        .map(|(k, _)| k.clone())
        .collect();
    for k in drop {
        m.remove(&k);
    }
    for (k, v) in m.iter_mut() {
        prune_nulls(v, s.and_then(|s| s.field(k)));
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
                    "properties": {
                        "a": {"type": "string"},
                        "list": {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "integer"}}}},
                        "map": {"type": "object", "additionalProperties": {"type": "object", "properties": {"v": {"type": "string"}}}},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                                 "properties": {"typed": {"type": "object", "properties": {"k": {"type": "string"}}}}},
                        "embedded": {"type": "object", "x-kubernetes-embedded-resource": true,
                                     "properties": {"spec": {"type": "object"}}},
                        "nullable": {"type": "string", "nullable": true},
                        "defaulted": {"type": "string", "default": "d"}
                    }
                }
            }
        }))
    }

    #[test]
    fn prunes_like_upstream() {
        let cases = vec![
            (
                json!({"apiVersion": "a/v1", "kind": "K", "metadata": {"name": "n", "odd": 1}, "spec": {"a": "x", "b": 1}, "extra": true}),
                json!({"apiVersion": "a/v1", "kind": "K", "metadata": {"name": "n", "odd": 1}, "spec": {"a": "x"}}),
                vec!["extra", "spec.b"],
            ),
            (
                json!({"spec": {"list": [{"x": 1, "y": 2}, {"z": 3}]}}),
                json!({"spec": {"list": [{"x": 1}, {}]}}),
                vec!["spec.list[0].y", "spec.list[1].z"],
            ),
            (
                json!({"spec": {"map": {"k1": {"v": "a", "w": "b"}}}}),
                json!({"spec": {"map": {"k1": {"v": "a"}}}}),
                vec!["spec.map.k1.w"],
            ),
            (
                json!({"spec": {"free": {"anything": {"deep": [1]}, "typed": {"k": "v", "drop": 1}}}}),
                json!({"spec": {"free": {"anything": {"deep": [1]}, "typed": {"k": "v"}}}}),
                vec!["spec.free.typed.drop"],
            ),
            (
                json!({"spec": {"embedded": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}, "status": {}}}}),
                json!({"spec": {"embedded": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}}}}),
                vec!["spec.embedded.status"],
            ),
            // An object where a string is declared: its fields are unknown
            // (validation then reports the type).
            (
                json!({"spec": {"a": {"unexpected": "object"}}}),
                json!({"spec": {"a": {}}}),
                vec!["spec.a.unexpected"],
            ),
        ];
        for (mut input, want, paths) in cases {
            let got = prune(&mut input, &schema());
            assert_eq!(input, want);
            assert_eq!(got, paths);
        }
    }

    #[test]
    fn null_pruning() {
        let mut v = json!({"spec": {"a": null, "nullable": null, "defaulted": null, "list": [{"x": null}]}});
        prune_nulls(&mut v, Some(&schema()));
        assert_eq!(
            v,
            json!({"spec": {"nullable": null, "defaulted": null, "list": [{}]}})
        );
    }
}
