use super::*;
use crate::error::FieldErrorType;

use crate::strategy::error_fields as fields;

#[test]
fn base64_round_trip_and_errors() {
    for s in ["", "a", "ab", "abc", "hello world"] {
        assert_eq!(b64_decode(&b64_encode(s.as_bytes())).unwrap(), s.as_bytes());
    }
    assert_eq!(b64_encode(b"admin"), "YWRtaW4=");
    assert_eq!(
        b64_decode("YWRtaW4"),
        Err("illegal base64 data at input byte 4".into())
    );
    assert_eq!(
        b64_decode("YW!t"),
        Err("illegal base64 data at input byte 2".into())
    );
    assert_eq!(b64_decode("YWRt\naW4="), Ok(b"admin".to_vec()));
}

#[test]
fn config_map_keys_and_immutability() {
    let s = ConfigMapStrategy;
    let cm = json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "c", "namespace": "default" },
                     "data": { "app.properties": "x", "bad/key": "y", "dup": "z" }, "binaryData": { "dup": "AAAA" } });
    assert_eq!(
        fields(s.validate(&cm)),
        vec![
            ("data[bad/key]".into(), FieldErrorType::Invalid),
            ("data[dup]".into(), FieldErrorType::Invalid)
        ]
    );
    let big = json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "c" }, "data": { "k": "x".repeat(MAX_SIZE + 1) } });
    assert_eq!(
        fields(s.validate(&big)),
        vec![("".into(), FieldErrorType::TooLong)]
    );
    let old = json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "c" }, "data": { "a": "1" }, "immutable": true });
    let mut new = old.clone();
    new["data"]["a"] = json!("2");
    assert_eq!(
        fields(s.validate_update(&new, &old)),
        vec![("data".into(), FieldErrorType::Forbidden)]
    );
}

#[test]
fn secrets() {
    let s = SecretStrategy;
    let mut sec = json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "s", "namespace": "default" },
                          "data": { "a": "YQ==" }, "stringData": { "password": "admin" } });
    s.default(&mut sec);
    assert_eq!(sec["type"], "Opaque");
    assert_eq!(sec["data"], json!({ "a": "YQ==", "password": "YWRtaW4=" }));
    assert!(sec.get("stringData").is_none());
    assert!(s.validate(&sec).is_empty());
    assert_eq!(
        s.selectable_fields(&sec),
        vec![("type", "Opaque".to_string())]
    );
    let mut tls = sec.clone();
    tls["type"] = json!("kubernetes.io/tls");
    assert_eq!(
        fields(s.validate(&tls)),
        vec![
            ("data[tls.crt]".into(), FieldErrorType::Required),
            ("data[tls.key]".into(), FieldErrorType::Required)
        ]
    );
    assert_eq!(
        fields(s.validate_update(&tls, &sec))[0],
        ("type".into(), FieldErrorType::Invalid)
    );
    let mut bad = sec.clone();
    bad["data"]["a"] = json!("%%%");
    assert_eq!(
        fields(s.validate(&bad)),
        vec![("data[a]".into(), FieldErrorType::Invalid)]
    );
    let mut docker = sec.clone();
    docker["type"] = json!("kubernetes.io/dockerconfigjson");
    docker["data"] = json!({ ".dockerconfigjson": b64_encode(b"not json") });
    assert_eq!(
        fields(s.validate(&docker)),
        vec![("data[.dockerconfigjson]".into(), FieldErrorType::Invalid)]
    );
}

#[test]
fn namespaces() {
    let s = NamespaceStrategy;
    let mut ns =
        json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "team-a" } });
    s.prepare_for_create(&mut ns);
    s.default(&mut ns);
    assert_eq!(ns["spec"], json!({ "finalizers": ["kubernetes"] }));
    assert_eq!(ns["status"], json!({ "phase": "Active" }));
    assert_eq!(
        ns["metadata"]["labels"],
        json!({ "kubernetes.io/metadata.name": "team-a" })
    );
    assert!(s.validate(&ns).is_empty());
    assert_eq!(
        s.selectable_fields(&ns),
        vec![
            ("status.phase", "Active".to_string()),
            ("name", "team-a".to_string())
        ]
    );
    let mut upd = ns.clone();
    upd["spec"]["finalizers"] = json!([]);
    upd["status"]["phase"] = json!("Terminating");
    s.prepare_for_update(&mut upd, &ns);
    assert_eq!(upd["spec"]["finalizers"], json!(["kubernetes"]));
    assert_eq!(upd["status"]["phase"], "Active");
    let mut st = ns.clone();
    st["status"]["phase"] = json!("Terminating");
    assert_eq!(
        fields(s.validate_status_update(&st, &ns)),
        vec![("status.Phase".into(), FieldErrorType::Invalid)]
    );
}

#[test]
fn limit_ranges_and_quotas() {
    let s = LimitRangeStrategy;
    let mut lr = json!({ "apiVersion": "v1", "kind": "LimitRange", "metadata": { "name": "l", "namespace": "default" },
        "spec": { "limits": [{ "type": "Container", "max": { "cpu": "2" }, "min": { "memory": "64Mi" } }] } });
    s.default(&mut lr);
    assert_eq!(lr["spec"]["limits"][0]["default"], json!({ "cpu": "2" }));
    assert_eq!(
        lr["spec"]["limits"][0]["defaultRequest"],
        json!({ "cpu": "2", "memory": "64Mi" })
    );
    assert!(s.validate(&lr).is_empty(), "{:?}", s.validate(&lr));
    lr["spec"]["limits"][0]["min"]["cpu"] = json!("3");
    assert_eq!(
        fields(s.validate(&lr)),
        vec![
            ("spec.limits[0].min[cpu]".into(), FieldErrorType::Invalid),
            (
                "spec.limits[0].defaultRequest[cpu]".into(),
                FieldErrorType::Invalid
            ),
            (
                "spec.limits[0].default[cpu]".into(),
                FieldErrorType::Invalid
            ),
        ]
    );
    let q = ResourceQuotaStrategy;
    let quota = json!({ "apiVersion": "v1", "kind": "ResourceQuota", "metadata": { "name": "q", "namespace": "default" },
        "spec": { "hard": { "pods": "10", "requests.cpu": "-1", "widgets": "1", "count/deployments.apps": "5" }, "scopes": ["Sometimes"] } });
    assert_eq!(
        fields(q.validate(&quota)),
        vec![
            ("spec.hard[requests.cpu]".into(), FieldErrorType::Invalid),
            ("spec.hard[widgets]".into(), FieldErrorType::Invalid),
            ("spec.scopes".into(), FieldErrorType::Invalid),
        ]
    );
}
