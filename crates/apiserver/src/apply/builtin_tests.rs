//! Apply over the built-in schemas (and their list and map types from
//! `schema::patchmeta`).

use serde_json::{json, Value};

use super::operation::apply;
use super::tests::{fields_of, writer};
use super::typed::validate;

#[test]
fn pods_merge_containers_by_name_and_ports_by_port_and_protocol() {
    let info = crate::resources::lookup("", "v1", "pods").unwrap();
    let schema = super::schema_for(info);
    let ty = schema.node();
    let mut w = writer("a");
    w.api_version = "v1";
    let pod = |containers: Value| json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": containers}});
    let live = apply(
        ty,
        None,
        &pod(json!([{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}])),
        &w,
        false,
    )
    .unwrap();
    assert_eq!(
        fields_of(&live, "a").unwrap(),
        json!({"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {
            ".": {}, "f:image": {}, "f:name": {},
            "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}
        }}}})
    );
    // Another manager adds a sidecar and a port: merged, no conflict.
    let mut w2 = writer("b");
    w2.api_version = "v1";
    let out = apply(ty, Some(&live), &pod(json!([{"name": "web", "ports": [{"containerPort": 81, "protocol": "UDP"}]}, {"name": "side", "image": "busybox"}])), &w2, false).unwrap();
    let c = &out["spec"]["containers"];
    assert_eq!(c[0]["image"], "nginx");
    assert_eq!(c[0]["ports"].as_array().unwrap().len(), 2);
    assert_eq!(c[1]["name"], "side");
    // A different image for web conflicts, naming the container.
    let e = apply(
        ty,
        Some(&out),
        &pod(json!([{"name": "web", "image": "httpd"}])),
        &w2,
        false,
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        "Apply failed with 1 conflict: conflict with \"a\": .spec.containers[name=\"web\"].image"
    );
}

#[test]
fn real_manifests_fit_the_builtin_schemas() {
    let kinds: &[(&str, &str, &str, Value)] = &[
        (
            "apps",
            "v1",
            "deployments",
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "d", "labels": {"a": "b"}, "annotations": {"x": "y"}, "creationTimestamp": null},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"a": "b"}, "matchExpressions": [{"key": "k", "operator": "In", "values": ["v"]}]},
                    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                    "template": {
                        "metadata": {"labels": {"a": "b"}, "creationTimestamp": null},
                        "spec": {
                            "containers": [{
                                "name": "c", "image": "i", "command": ["sleep"], "args": ["1"],
                                "env": [{"name": "E", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                                "resources": {"limits": {"cpu": 1, "memory": "1Gi"}, "requests": {"cpu": "100m"}},
                                "ports": [{"containerPort": 80, "name": "http"}],
                                "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 5},
                                "volumeMounts": [{"name": "v", "mountPath": "/v"}]
                            }],
                            "volumes": [{"name": "v", "emptyDir": {"sizeLimit": "1Gi"}}],
                            "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
                            "nodeSelector": {"disk": "ssd"}
                        }
                    }
                },
                "status": {}
            }),
        ),
        (
            "",
            "v1",
            "services",
            json!({
                "apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                "spec": {"selector": {"a": "b"}, "ports": [{"port": 80, "targetPort": 8080}, {"name": "x", "port": 81, "targetPort": "web", "protocol": "UDP"}]}
            }),
        ),
        (
            "",
            "v1",
            "configmaps",
            json!({
                "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}, "binaryData": {"b": "AAAA"}
            }),
        ),
    ];
    for (group, version, plural, manifest) in kinds {
        let info = crate::resources::lookup(group, version, plural).unwrap();
        let schema = super::schema_for(info);
        let ty = schema.node();
        assert!(ty.is_some(), "{plural} has a schema");
        if let Err(e) = validate(ty, manifest) {
            panic!("{plural}: {e}");
        }
        // And an apply of it owns its fields without error.
        let mut w = writer("m");
        let version = info.api_version();
        w.api_version = &version;
        let out = apply(ty, None, manifest, &w, false).unwrap();
        assert!(out["metadata"]["managedFields"].is_array());
    }
    let info = crate::resources::lookup("", "v1", "pods").unwrap();
    let bad = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPrt": 1}]}]}});
    assert_eq!(
        validate(super::schema_for(info).node(), &bad).unwrap_err(),
        ".spec.containers[name=\"c\"].ports[containerPort=80,protocol=\"TCP\"].hostPrt: field not declared in schema"
    );
}

/// A patch `plain_patch` passes never adds an unknown field or a value of
/// the wrong type: merged into a clean Deployment, the typed decode finds
/// nothing. Patches it refuses include every one the decode flags.
#[test]
fn plain_patches_merge_into_objects_that_decode_cleanly() {
    let info = crate::resources::lookup("apps", "v1", "deployments").unwrap();
    let schema = super::schema_for(info);
    let ty = schema.node();
    let strat = crate::strategy::strategy_for(info);
    let live = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "n", "labels": {"app": "d"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "d"}},
            "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [
                {"name": "web", "image": "nginx", "env": [{"name": "A", "value": "1"}],
                 "ports": [{"containerPort": 80}]}]}}}});
    let clean = strat.decode(&live);
    assert!(clean.unknown.is_empty() && clean.error.is_none());
    let plain = [
        json!({"metadata": {"annotations": {"a": "b"}, "labels": {"x": null}}}),
        json!({"spec": {"replicas": 3, "paused": true, "minReadySeconds": 2147483647}}),
        json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "httpd",
            "env": [{"name": "B", "value": "2"}], "args": ["-x"]}]}}}}),
        json!({"spec": {"strategy": {"type": "Recreate", "rollingUpdate": null}}}),
    ];
    for p in &plain {
        assert!(super::plain_patch(ty, p), "{p}");
        let merged = crate::patch::apply_strategic(info, &live, p.as_object().unwrap()).unwrap();
        let d = strat.decode(&merged);
        assert!(
            d.unknown.is_empty() && d.error.is_none(),
            "{p}: {:?} {:?}",
            d.unknown,
            d.error
        );
    }
    let not_plain = [
        // Unknown fields, wrong types, out of range.
        json!({"spec": {"replicaz": 3}}),
        json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "imagee": "x"}]}}}}),
        json!({"spec": {"replicas": "3"}}),
        json!({"spec": {"replicas": 2147483648i64}}),
        json!({"spec": {"replicas": 1.5}}),
        json!({"metadata": {"labels": {"a": 1}}}),
        json!({"spec": {"paused": "yes"}}),
        json!({"$unknownDirective": 1}),
        // Formats and untyped scalars: left to the decode.
        json!({"metadata": {"creationTimestamp": "soon"}}),
        json!({"spec": {"strategy": {"rollingUpdate": {"maxSurge": "25%"}}}}),
        json!({"spec": {"template": {"spec": {"containers": [{"name": "web",
            "resources": {"limits": {"cpu": "1"}}}]}}}}),
        json!({"spec": {"template": {"spec": {"containers": [null]}}}}),
        // Directives: a map patch merged where the object has no such field
        // is taken whole, directives included, and the decode drops them.
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
        json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "$patch": "delete"}]}}}}),
    ];
    for p in &not_plain {
        assert!(!super::plain_patch(ty, p), "{p}");
    }
    // The first seven are what the decode reports.
    for p in &not_plain[..7] {
        let Ok(merged) = crate::patch::apply_strategic(info, &live, p.as_object().unwrap()) else {
            continue;
        };
        let d = strat.decode(&merged);
        assert!(!d.unknown.is_empty() || d.error.is_some(), "{p}");
    }
}
