//! The compiled schema answers as the JSON schema does, on every built-in
//! kind and on a custom resource schema, and the apply functions give the
//! same results over both.

use std::collections::HashSet;

use serde_json::{json, Value};

use super::compiled::{Compiled, Node, Schema};
use super::typed::{added_fields_v1, compare, field_set, validate, Scope};
use crate::schema::SchemaNode;

/// Walk both trees side by side and compare every answer.
fn same_answers(raw: SchemaNode<'_>, c: Node<'_>, seen: &mut HashSet<*const Value>, at: &str) {
    if !seen.insert(raw.site as *const Value) {
        return;
    }
    for list in [false, true] {
        assert_eq!(raw.shape_of(list), c.shape_of(list), "shape at {at}");
    }
    assert_eq!(Schema::facts(&raw), c.facts(), "facts at {at}");
    let mut keys: Vec<String> = raw
        .value
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    keys.extend(["metadata", "protocol", "no-such-field"].map(String::from));
    for k in &keys {
        assert_eq!(
            Schema::is_named(&raw, k),
            c.is_named(k),
            "is_named {k} at {at}"
        );
        assert_eq!(
            Schema::key_default(&raw, k),
            c.key_default(k),
            "default {k} at {at}"
        );
        match (Schema::field(&raw, k), c.field(k)) {
            (None, None) => {}
            (Some(r), Some(n)) => same_answers(r, n, seen, &format!("{at}.{k}")),
            (r, n) => panic!("field {k} at {at}: {:?} vs {:?}", r.is_some(), n.is_some()),
        }
    }
    match (Schema::items(&raw), c.items()) {
        (None, None) => {}
        (Some(r), Some(n)) => same_answers(r, n, seen, &format!("{at}[]")),
        _ => panic!("items at {at}"),
    }
}

#[test]
fn compiled_builtin_kinds_answer_as_their_json_schemas() {
    let schemas = crate::schema::builtin();
    let mut kinds = 0;
    for (_, _, _, def) in schemas.kinds() {
        let raw = schemas.definition(def).expect("kinds name definitions");
        let c = Compiled::new(raw);
        same_answers(raw, c.root(), &mut HashSet::new(), def);
        kinds += 1;
    }
    assert!(kinds > 50, "{kinds} kinds");
}

fn custom_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "properties": {
                    "ports": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["port", "proto"],
                        "items": {"type": "object", "properties": {
                            "port": {"type": "integer"},
                            "proto": {"type": "string", "default": "TCP"},
                            "size": {"x-kubernetes-int-or-string": true},
                        }},
                    },
                    "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "atomic": {"type": "object", "x-kubernetes-map-type": "atomic", "properties": {"a": {"type": "string"}}},
                },
            },
        },
    })
}

#[test]
fn compiled_custom_schema_answers_as_its_json() {
    let v = custom_schema();
    let raw = SchemaNode::new(&crate::schema::builtin().defs, &v);
    let c = Compiled::new(raw);
    same_answers(raw, c.root(), &mut HashSet::new(), "custom");
    // The ObjectMeta rule: an open `metadata` of a kind is an ObjectMeta.
    let meta = c.root().field("metadata").unwrap();
    assert!(meta.is_named("labels"));
}

#[test]
fn apply_functions_agree_over_both_forms() {
    let schemas = crate::schema::builtin();
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "d", "labels": {"a": "b"}, "annotations": {"x": "y"}},
        "spec": {
            "containers": [
                {"name": "web", "image": "nginx", "ports": [{"containerPort": 80}, {"containerPort": 81, "protocol": "UDP"}],
                 "env": [{"name": "A", "value": "1"}, {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}],
                 "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
                {"name": "side", "image": "busybox", "args": ["a", "b"]}
            ],
            "tolerations": [{"key": "k", "operator": "Exists"}],
            "nodeSelector": {"zone": "a"},
        },
        "status": {"phase": "Pending"},
    });
    let mut pod2 = pod.clone();
    pod2["spec"]["containers"][0]["image"] = json!("nginx:2");
    pod2["spec"]["containers"][0]["env"][0]["value"] = json!("2");
    pod2["metadata"]["labels"]["c"] = json!("d");
    pod2["spec"]["containers"].as_array_mut().unwrap().remove(1);
    let raw = schemas.kind("", "v1", "Pod").unwrap();
    let c = Compiled::new(raw);
    let scope = Scope {
        skip_status: true,
        skip_spec: false,
    };
    let cases = [(raw, pod.clone(), pod2.clone())];
    for (raw, a, b) in cases {
        let n = Some(c.root());
        let r = Some(raw);
        assert_eq!(
            added_fields_v1(r, &a, &scope),
            added_fields_v1(n, &a, &scope)
        );
        let (x, y) = (compare(r, &a, &b, &scope), compare(n, &a, &b, &scope));
        assert_eq!(x.added, y.added);
        assert_eq!(x.modified, y.modified);
        assert_eq!(x.removed, y.removed);
        assert!(!x.modified.is_empty() && !x.removed.is_empty());
        assert_eq!(field_set(r, &b, &scope), field_set(n, &b, &scope));
        assert_eq!(validate(r, &a), validate(n, &a));
        let mut bad = a.clone();
        bad["spec"]["containers"][0]["ports"] = json!([{"containerPort": "x", "extra": 1}]);
        assert_eq!(validate(r, &bad), validate(n, &bad));
        assert!(validate(n, &bad).is_err());
    }
    let v = custom_schema();
    let raw = SchemaNode::new(&schemas.defs, &v);
    let c = Compiled::new(raw);
    let obj = json!({
        "apiVersion": "x/v1", "kind": "K", "metadata": {"name": "k", "labels": {"a": "b"}},
        "spec": {"ports": [{"port": 1}, {"port": 1, "proto": "UDP", "size": 3}], "tags": ["a", "b"],
                 "free": {"x": [1]}, "labels": {"q": "r"}, "atomic": {"a": "b"}},
    });
    let (r, n) = (Some(raw), Some(c.root()));
    let out = added_fields_v1(n, &obj, &Scope::default());
    assert_eq!(added_fields_v1(r, &obj, &Scope::default()), out);
    assert!(out["f:spec"]["f:ports"]
        .as_object()
        .unwrap()
        .contains_key("k:{\"port\":1,\"proto\":\"TCP\"}"));
    assert_eq!(
        field_set(r, &obj, &Scope::default()),
        field_set(n, &obj, &Scope::default())
    );
    let mut bad = obj.clone();
    bad["spec"]["ports"][0]["size"] = json!({"a": 1});
    bad["spec"]["nope"] = json!(1);
    assert_eq!(validate(r, &bad), validate(n, &bad));
    assert!(validate(n, &bad).is_err());
}
