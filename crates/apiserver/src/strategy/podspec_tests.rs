use super::*;
use crate::error::FieldErrorType;
use serde_json::json;

fn spec(containers: Value) -> Value {
    json!({ "containers": containers, "restartPolicy": "Always", "dnsPolicy": "ClusterFirst" })
}

fn c(name: &str) -> Value {
    json!({ "name": name, "image": "nginx", "imagePullPolicy": "Always", "terminationMessagePolicy": "File" })
}

fn errs(spec: &Value) -> Vec<(String, FieldErrorType)> {
    validate_pod_spec(spec, "spec", true)
        .into_iter()
        .map(|e| (e.field, e.kind))
        .collect()
}

#[test]
fn valid_spec_passes() {
    let mut a = c("web");
    a["ports"] = json!([{ "name": "http", "containerPort": 80, "protocol": "TCP" }]);
    a["env"] = json!([{ "name": "A", "value": "1" }, { "name": "POD", "valueFrom": { "fieldRef": { "apiVersion": "v1", "fieldPath": "metadata.name" } } }]);
    a["resources"] = json!({ "requests": { "cpu": "100m", "memory": "64Mi" }, "limits": { "cpu": "1", "memory": "128Mi" } });
    a["volumeMounts"] = json!([{ "name": "data", "mountPath": "/data" }]);
    a["livenessProbe"] = json!({ "httpGet": { "path": "/", "port": 80, "scheme": "HTTP" }, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3 });
    let mut s = spec(json!([a]));
    s["volumes"] = json!([{ "name": "data", "emptyDir": {} }]);
    assert_eq!(errs(&s), vec![]);
}

#[test]
fn containers_required_and_unique() {
    assert_eq!(
        errs(&spec(json!([]))),
        vec![("spec.containers".into(), FieldErrorType::Required)]
    );
    let mut s = spec(json!([c("a"), c("a")]));
    s["initContainers"] = json!([c("a")]);
    assert_eq!(
        errs(&s),
        vec![
            ("spec.containers[1].name".into(), FieldErrorType::Duplicate),
            (
                "spec.initContainers[0].name".into(),
                FieldErrorType::Duplicate
            )
        ]
    );
    let mut bad = c("Web_1");
    bad["image"] = json!("");
    assert_eq!(
        errs(&spec(json!([bad]))),
        vec![
            ("spec.containers[0].name".into(), FieldErrorType::Invalid),
            ("spec.containers[0].image".into(), FieldErrorType::Required)
        ]
    );
}

#[test]
fn ports_env_and_mounts() {
    let mut a = c("a");
    a["ports"] = json!([
        { "name": "http", "containerPort": 70000, "protocol": "TCP" },
        { "name": "http", "containerPort": 81, "protocol": "ICMP" }
    ]);
    a["env"] = json!([{ "name": "" }, { "name": "X=Y" }]);
    a["volumeMounts"] = json!([{ "name": "missing", "mountPath": "/x" }]);
    let got = errs(&spec(json!([a])));
    assert_eq!(
        got,
        vec![
            (
                "spec.containers[0].ports[0].containerPort".into(),
                FieldErrorType::Invalid
            ),
            (
                "spec.containers[0].ports[1].name".into(),
                FieldErrorType::Duplicate
            ),
            (
                "spec.containers[0].ports[1].protocol".into(),
                FieldErrorType::NotSupported
            ),
            (
                "spec.containers[0].env[0].name".into(),
                FieldErrorType::Required
            ),
            (
                "spec.containers[0].env[1].name".into(),
                FieldErrorType::Invalid
            ),
            (
                "spec.containers[0].volumeMounts[0].name".into(),
                FieldErrorType::NotFound
            ),
        ]
    );
}

#[test]
fn requests_may_not_exceed_limits() {
    let mut a = c("a");
    a["resources"] = json!({ "requests": { "cpu": "2" }, "limits": { "cpu": "1" } });
    let e = validate_pod_spec(&spec(json!([a])), "spec", true);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].message(), "spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1");
    let mut g = c("g");
    g["resources"] = json!({ "requests": { "example.com/gpu": "1" } });
    assert_eq!(
        errs(&spec(json!([g]))),
        vec![(
            "spec.containers[0].resources.limits".into(),
            FieldErrorType::Required
        )]
    );
}

#[test]
fn policies_and_probes() {
    let mut a = c("a");
    a["livenessProbe"] = json!({ "successThreshold": 2 });
    let mut s = spec(json!([a]));
    s["restartPolicy"] = json!("Sometimes");
    s["dnsPolicy"] = json!("");
    assert_eq!(
        errs(&s),
        vec![
            (
                "spec.containers[0].livenessProbe".into(),
                FieldErrorType::Required
            ),
            (
                "spec.containers[0].livenessProbe.successThreshold".into(),
                FieldErrorType::Invalid
            ),
            ("spec.restartPolicy".into(), FieldErrorType::NotSupported),
            ("spec.dnsPolicy".into(), FieldErrorType::Required),
        ]
    );
    let mut i = c("init");
    i["readinessProbe"] = json!({ "exec": { "command": ["true"] } });
    let mut s = spec(json!([c("a")]));
    s["initContainers"] = json!([i]);
    assert_eq!(
        errs(&s),
        vec![(
            "spec.initContainers[0].readinessProbe".into(),
            FieldErrorType::Forbidden
        )]
    );
}
