//! Table-driven tests of strategic merge patch over the built-in schemas.
//! Expected results follow upstream's behaviour (including where new list
//! items land and the exact error messages).

use serde_json::{json, Value};

use crate::patch::meta::Schema;
use crate::patch::PatchError;

/// Apply `patch` to `original` as an object of `group/version kind`.
fn run(gvk: (&str, &str, &str), original: Value, patch: Value) -> Result<Value, PatchError> {
    let schemas = crate::schema::builtin();
    let def = schemas
        .definition_of(gvk.0, gvk.1, gvk.2)
        .expect("served kind");
    let node = schemas.definition(def).expect("definition");
    let (Value::Object(o), Value::Object(p)) = (original, patch) else {
        panic!("objects expected");
    };
    super::apply(o, p, Schema::root(node, def)).map(Value::Object)
}

/// Group, version and kind.
type Gvk = (&'static str, &'static str, &'static str);

const POD: (&str, &str, &str) = ("", "v1", "Pod");
const DEPLOYMENT: (&str, &str, &str) = ("apps", "v1", "Deployment");
const SERVICE: (&str, &str, &str) = ("", "v1", "Service");
const REVISION: (&str, &str, &str) = ("apps", "v1", "ControllerRevision");

/// A pod spec with these containers.
fn pod(containers: Value) -> Value {
    json!({"spec": {"containers": containers}})
}

/// Container names in order.
fn names(v: &Value, path: &str) -> Vec<String> {
    v.pointer(path)
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .map(|c| {
                    c.get("name")
                        .or(Some(c))
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default()
}

struct Case {
    name: &'static str,
    gvk: (&'static str, &'static str, &'static str),
    original: Value,
    patch: Value,
    want: Value,
}

fn merge_cases() -> Vec<Case> {
    vec![
        Case {
            name: "containers merge by name; the live order stays",
            gvk: POD,
            original: pod(json!([{"name": "a", "image": "x"}, {"name": "b", "image": "y"}])),
            patch: pod(json!([{"name": "b", "image": "z"}])),
            want: pod(json!([{"name": "a", "image": "x"}, {"name": "b", "image": "z"}])),
        },
        Case {
            name: "a new container goes before the server-only ones",
            gvk: POD,
            original: pod(json!([{"name": "a"}, {"name": "b"}])),
            patch: pod(json!([{"name": "c", "image": "n"}])),
            want: pod(json!([{"name": "c", "image": "n"}, {"name": "a"}, {"name": "b"}])),
        },
        Case {
            name: "$patch: delete removes the item with that key",
            gvk: POD,
            original: pod(json!([{"name": "a"}, {"name": "b"}])),
            patch: pod(json!([{"name": "a", "$patch": "delete"}])),
            want: pod(json!([{"name": "b"}])),
        },
        Case {
            name: "$patch: replace in a list replaces it with the other items",
            gvk: POD,
            original: pod(json!([{"name": "a"}, {"name": "b"}])),
            patch: pod(json!([{"$patch": "replace"}, {"name": "z", "image": "q"}])),
            want: pod(json!([{"name": "z", "image": "q"}])),
        },
        Case {
            name: "$setElementOrder orders merged and untouched items",
            gvk: POD,
            original: pod(json!([{"name": "a"}, {"name": "b"}])),
            patch: json!({"spec": {
                "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}, {"name": "c"}],
                "containers": [{"name": "c", "image": "z"}]}}),
            want: pod(json!([{"name": "b"}, {"name": "a"}, {"name": "c", "image": "z"}])),
        },
        Case {
            name: "$setElementOrder keeps a server-only item between its live neighbours",
            gvk: POD,
            original: pod(json!([{"name": "a"}, {"name": "sidecar"}, {"name": "b"}])),
            patch: json!({"spec": {
                "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}]}}),
            want: pod(json!([{"name": "a"}, {"name": "sidecar"}, {"name": "b"}])),
        },
        Case {
            name: "ports merge by containerPort",
            gvk: POD,
            original: pod(
                json!([{"name": "a", "ports": [{"containerPort": 80}, {"containerPort": 443}]}]),
            ),
            patch: pod(json!([{"name": "a", "ports": [{"containerPort": 443, "name": "https"}]}])),
            want: pod(
                json!([{"name": "a", "ports": [{"containerPort": 80}, {"containerPort": 443, "name": "https"}]}]),
            ),
        },
        Case {
            name: "env merges by name; a null member deletes inside an item",
            gvk: POD,
            original: pod(json!([{"name": "a", "env": [
                {"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}])),
            patch: pod(json!([{"name": "a", "env": [
                {"name": "B", "value": null, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "C", "value": "4"}]}])),
            want: pod(json!([{"name": "a", "env": [
                {"name": "A", "value": "1"},
                {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "C", "value": "4"}]}])),
        },
        Case {
            name: "tolerations have no strategy: replaced",
            gvk: POD,
            original: json!({"spec": {"tolerations": [{"key": "a"}, {"key": "b"}]}}),
            patch: json!({"spec": {"tolerations": [{"key": "c"}]}}),
            want: json!({"spec": {"tolerations": [{"key": "c"}]}}),
        },
        Case {
            name: "$retainKeys switches a Deployment to Recreate",
            gvk: DEPLOYMENT,
            original: json!({"spec": {"strategy": {"type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}}}),
            patch: json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}}),
            want: json!({"spec": {"strategy": {"type": "Recreate"}}}),
        },
        Case {
            name: "$retainKeys alone drops unlisted keys",
            gvk: DEPLOYMENT,
            original: json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}),
            patch: json!({"spec": {"strategy": {"$retainKeys": ["type"]}}}),
            want: json!({"spec": {"strategy": {"type": "RollingUpdate"}}}),
        },
        Case {
            name: "$retainKeys on a volume item switches its source",
            gvk: POD,
            original: json!({"spec": {"volumes": [{"name": "v", "emptyDir": {}}, {"name": "w", "emptyDir": {}}]}}),
            patch: json!({"spec": {"volumes": [{"name": "v", "$retainKeys": ["configMap", "name"], "configMap": {"name": "cm"}}]}}),
            want: json!({"spec": {"volumes": [{"name": "v", "configMap": {"name": "cm"}}, {"name": "w", "emptyDir": {}}]}}),
        },
        Case {
            name: "$deleteFromPrimitiveList removes finalizers",
            gvk: POD,
            original: json!({"metadata": {"finalizers": ["a", "b", "c"]}}),
            patch: json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "x"]}}),
            want: json!({"metadata": {"finalizers": ["a", "c"]}}),
        },
        Case {
            name: "finalizers merge as a set; new ones first",
            gvk: POD,
            original: json!({"metadata": {"finalizers": ["a", "b"]}}),
            patch: json!({"metadata": {"finalizers": ["c", "b"]}}),
            want: json!({"metadata": {"finalizers": ["c", "a", "b"]}}),
        },
        Case {
            name: "$setElementOrder of a primitive list",
            gvk: POD,
            original: json!({"metadata": {"finalizers": ["a", "b"]}}),
            patch: json!({"metadata": {"$setElementOrder/finalizers": ["b", "a", "c"], "finalizers": ["c"]}}),
            want: json!({"metadata": {"finalizers": ["b", "a", "c"]}}),
        },
        Case {
            name: "args have no strategy: replaced",
            gvk: POD,
            original: pod(json!([{"name": "a", "args": ["1", "2"]}])),
            patch: pod(json!([{"name": "a", "args": ["3"]}])),
            want: pod(json!([{"name": "a", "args": ["3"]}])),
        },
        Case {
            name: "null deletes a label; maps merge",
            gvk: POD,
            original: json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
            patch: json!({"metadata": {"labels": {"a": null, "c": "3"}}}),
            want: json!({"metadata": {"labels": {"b": "2", "c": "3"}}}),
        },
        Case {
            name: "$patch: replace on a map",
            gvk: POD,
            original: json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
            patch: json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}}),
            want: json!({"metadata": {"labels": {"c": "3"}}}),
        },
        Case {
            name: "$patch: delete on a map empties it",
            gvk: POD,
            original: json!({"metadata": {"labels": {"a": "1"}, "name": "p"}}),
            patch: json!({"metadata": {"labels": {"$patch": "delete"}}}),
            want: json!({"metadata": {"labels": {}, "name": "p"}}),
        },
        Case {
            name: "a map added whole loses its nulls and directive items",
            gvk: POD,
            original: json!({"metadata": {"name": "p"}}),
            patch: json!({"metadata": {"labels": {"a": "1", "b": null}},
                "spec": {"containers": [{"name": "x"}, {"name": "y", "$patch": "delete"}]}}),
            want: json!({"metadata": {"name": "p", "labels": {"a": "1"}},
                "spec": {"containers": [{"name": "x"}]}}),
        },
        Case {
            name: "service ports merge by port",
            gvk: SERVICE,
            original: json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}}),
            patch: json!({"spec": {"ports": [{"port": 443, "targetPort": 8443}]}}),
            want: json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443, "targetPort": 8443}]}}),
        },
        Case {
            name: "ownerReferences merge by uid",
            gvk: POD,
            original: json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}, {"uid": "2", "name": "b"}]}}),
            patch: json!({"metadata": {"ownerReferences": [{"uid": "2", "controller": true}]}}),
            want: json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}, {"uid": "2", "name": "b", "controller": true}]}}),
        },
        Case {
            name: "status conditions merge by type",
            gvk: POD,
            original: json!({"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "Initialized", "status": "True"}]}}),
            patch: json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
            want: json!({"status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Initialized", "status": "True"}]}}),
        },
        Case {
            name: "imagePullSecrets and hostAliases merge by name and ip",
            gvk: POD,
            original: json!({"spec": {"imagePullSecrets": [{"name": "a"}], "hostAliases": [{"ip": "1.1.1.1", "hostnames": ["a"]}]}}),
            patch: json!({"spec": {"imagePullSecrets": [{"name": "b"}], "hostAliases": [{"ip": "1.1.1.1", "hostnames": ["b"]}]}}),
            want: json!({"spec": {"imagePullSecrets": [{"name": "b"}, {"name": "a"}], "hostAliases": [{"ip": "1.1.1.1", "hostnames": ["b"]}]}}),
        },
        Case {
            name: "a deployment's pod template merges like a pod",
            gvk: DEPLOYMENT,
            original: json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "v1"}, {"name": "b", "image": "v1"}]}}}}),
            patch: json!({"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "v2"}]}}}}),
            want: json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "v1"}, {"name": "b", "image": "v2"}]}}}}),
        },
        Case {
            name: "a value of another type replaces",
            gvk: POD,
            original: json!({"metadata": {"labels": {"a": "1"}}}),
            patch: json!({"metadata": {"labels": "x"}}),
            want: json!({"metadata": {"labels": "x"}}),
        },
        Case {
            name: "a deletion list for a missing list does nothing; null clears the list",
            gvk: POD,
            original: json!({"metadata": {"name": "p", "finalizers": ["a"]}, "spec": {}}),
            patch: json!({"spec": {"$deleteFromPrimitiveList/x": ["a"]},
                "metadata": {"$deleteFromPrimitiveList/finalizers": null}}),
            want: json!({"metadata": {"name": "p"}, "spec": {}}),
        },
        Case {
            name: "an empty patch changes nothing",
            gvk: POD,
            original: pod(json!([{"name": "a"}])),
            patch: json!({}),
            want: pod(json!([{"name": "a"}])),
        },
    ]
}

#[test]
fn merges() {
    for c in merge_cases() {
        let got = run(c.gvk, c.original, c.patch);
        assert_eq!(got, Ok(c.want), "{}", c.name);
    }
}

#[test]
fn new_items_land_where_set_element_order_puts_them() {
    let original = pod(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]));
    let patch = json!({"spec": {
        "$setElementOrder/containers": [{"name": "a"}, {"name": "x"}, {"name": "b"}, {"name": "c"}],
        "containers": [{"name": "x"}]}});
    let got = run(POD, original, patch).unwrap();
    assert_eq!(names(&got, "/spec/containers"), ["a", "x", "b", "c"]);
}

#[test]
fn errors() {
    let cases: Vec<(&str, Gvk, Value, Value, PatchError)> = vec![
        (
            "unknown $patch on a map",
            POD,
            json!({"metadata": {"labels": {"a": "1"}}}),
            json!({"metadata": {"labels": {"$patch": "foo", "b": "2"}}}),
            PatchError::Internal("unknown patch type: foo in map: map[$patch:foo b:2]".into()),
        ),
        (
            "$patch: merge on a map is unknown too",
            POD,
            json!({"metadata": {}}),
            json!({"metadata": {"$patch": "merge"}}),
            PatchError::Internal("unknown patch type: merge in map: map[$patch:merge]".into()),
        ),
        (
            "unknown $patch in a list item",
            POD,
            pod(json!([{"name": "a"}])),
            pod(json!([{"name": "a", "$patch": 1}])),
            PatchError::Internal(
                "unknown patch type: %!s(int64=1) in map: map[$patch:1 name:a]".into(),
            ),
        ),
        (
            "$patch: merge in a list",
            POD,
            pod(json!([{"name": "a"}])),
            pod(json!([{"$patch": "merge"}])),
            PatchError::Internal("merging lists cannot yet be specified in the patch".into()),
        ),
        (
            "an item without its merge key",
            POD,
            pod(json!([{"name": "a"}])),
            pod(json!([{"image": "nginx"}])),
            PatchError::Internal(
                "map: map[image:nginx] does not contain declared merge key: name".into(),
            ),
        ),
        (
            "$retainKeys that is not a list",
            DEPLOYMENT,
            json!({"spec": {"strategy": {"type": "Recreate"}}}),
            json!({"spec": {"strategy": {"$retainKeys": "type"}}}),
            PatchError::BadRequest("invalid patch format of retainKeys".into()),
        ),
        (
            "a patched key missing from $retainKeys",
            DEPLOYMENT,
            json!({"spec": {"strategy": {"type": "Recreate"}}}),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 1}}}}),
            PatchError::BadRequest("invalid patch format of retainKeys".into()),
        ),
        (
            "a $setElementOrder key without a field",
            POD,
            json!({"metadata": {"finalizers": ["a"]}}),
            json!({"metadata": {"$setElementOrder": ["a"]}}),
            PatchError::BadRequest("invalid patch format of setElementOrder list".into()),
        ),
        (
            "a $deleteFromPrimitiveList key with another prefix",
            POD,
            json!({"metadata": {"finalizers": ["a"]}}),
            json!({"metadata": {"$deleteFromPrimitiveListX/finalizers": ["a"]}}),
            PatchError::BadRequest("invalid patch format of primitive list".into()),
        ),
        (
            "patch items out of the $setElementOrder order",
            POD,
            json!({"metadata": {"finalizers": ["a", "b"]}}),
            json!({"metadata": {"$setElementOrder/finalizers": ["a", "b"], "finalizers": ["b", "a"]}}),
            PatchError::Internal(
                "The order in patch list:\n[b a]\n doesn't match $setElementOrder list:\n[a b]\n"
                    .into(),
            ),
        ),
        (
            "a $setElementOrder that is not a list",
            POD,
            json!({"metadata": {"finalizers": ["a"]}}),
            json!({"metadata": {"$setElementOrder/finalizers": "a"}}),
            PatchError::Internal("expected a []interface {}, but received a string".into()),
        ),
        (
            "items of different types",
            POD,
            json!({"metadata": {"finalizers": ["a"]}}),
            json!({"metadata": {"finalizers": [1]}}),
            PatchError::Internal("list element types are not identical: [[a] [1]]".into()),
        ),
        (
            "a list of lists",
            POD,
            json!({"metadata": {"finalizers": []}}),
            json!({"metadata": {"finalizers": [["a"]]}}),
            PatchError::ListOfLists,
        ),
        (
            "descending into an opaque value",
            REVISION,
            json!({"data": {"spec": {"a": 1}}}),
            json!({"data": {"spec": {"b": 2}}}),
            PatchError::Internal(
                "unable to find api field in struct RawExtension for the json field \"spec\""
                    .into(),
            ),
        ),
    ];
    for (name, gvk, original, patch, want) in cases {
        assert_eq!(run(gvk, original, patch), Err(want), "{name}");
    }
}

#[test]
fn errors_become_upstream_statuses() {
    use crate::error::ApiError;
    let e: ApiError =
        PatchError::Internal("map: map[] does not contain declared merge key: name".into()).into();
    assert_eq!((e.code, e.reason), (500, ""));
    let e: ApiError = PatchError::BadRequest("invalid patch format of retainKeys".into()).into();
    assert_eq!((e.code, e.reason), (400, "BadRequest"));
    let e: ApiError = PatchError::ListOfLists.into();
    assert_eq!((e.code, e.reason), (422, "Invalid"));
    assert_eq!(
        e.message,
        "the server rejected our request due to an error in our request"
    );
}

#[test]
fn bodies_decode_as_upstream() {
    use crate::patch::decode_strategic;
    assert_eq!(decode_strategic(b"null").unwrap().len(), 0);
    assert_eq!(decode_strategic(br#"{"a":1}"#).unwrap()["a"], json!(1));
    let e = decode_strategic(b"{nope").unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (400, "invalid JSON patch"));
    let e = decode_strategic(b"[1]").unwrap_err();
    assert_eq!(
        e.message,
        "json: cannot unmarshal array into Go value of type map[string]interface {}"
    );
}
