use super::*;
use crate::error::FieldErrorType;

/// What `kubectl create service clusterip web --tcp=80:8080` sends.
fn kubectl_service() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "labels": { "app": "web" }, "name": "web", "namespace": "default" },
        "spec": { "ports": [{ "name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080 }], "selector": { "app": "web" }, "type": "ClusterIP" },
        "status": { "loadBalancer": {} }
    })
}

fn created(mut obj: Value) -> Value {
    ServiceStrategy.prepare_for_create(&mut obj);
    ServiceStrategy.default(&mut obj);
    obj
}

/// What the caller's allocator adds after validation.
fn allocated(mut obj: Value, ip: &str) -> Value {
    obj["spec"]["clusterIP"] = json!(ip);
    obj["spec"]["clusterIPs"] = json!([ip]);
    obj
}

use crate::strategy::error_fields as fields;

fn update(mut new: Value, old: &Value) -> (Value, Vec<FieldError>) {
    ServiceStrategy.prepare_for_update(&mut new, old);
    ServiceStrategy.default(&mut new);
    let errs = ServiceStrategy.validate_update(&new, old);
    (new, errs)
}

#[test]
fn defaults_match_upstream() {
    let svc = created(kubectl_service());
    assert_eq!(
        svc["spec"],
        json!({
            "internalTrafficPolicy": "Cluster", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
            "ports": [{ "name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080 }],
            "selector": { "app": "web" }, "sessionAffinity": "None", "type": "ClusterIP"
        })
    );
    assert_eq!(svc["status"], json!({ "loadBalancer": {} }));
    assert!(
        ServiceStrategy.validate(&svc).is_empty(),
        "{:?}",
        ServiceStrategy.validate(&svc)
    );
    let mut np = kubectl_service();
    np["spec"]["type"] = json!("LoadBalancer");
    np["spec"]["ports"][0]
        .as_object_mut()
        .unwrap()
        .remove("targetPort");
    let np = created(np);
    assert_eq!(np["spec"]["externalTrafficPolicy"], "Cluster");
    assert_eq!(np["spec"]["allocateLoadBalancerNodePorts"], true);
    assert_eq!(np["spec"]["ports"][0]["targetPort"], 80);
}

#[test]
fn cluster_ip_may_not_change_but_survives_resubmission() {
    let old = allocated(created(kubectl_service()), "10.96.0.10");
    let mut changed = kubectl_service();
    changed["spec"]["clusterIP"] = json!("10.96.0.11");
    let (_, errs) = update(changed, &old);
    assert_eq!(
        fields(errs.clone()),
        vec![("spec.clusterIPs[0]".into(), FieldErrorType::Invalid)]
    );
    assert_eq!(errs[0].detail, "may not change once set");
    // `kubectl apply` of the original manifest keeps the allocated address.
    let (same_again, errs) = update(kubectl_service(), &old);
    assert!(errs.is_empty(), "{errs:?}");
    assert_eq!(same_again["spec"]["clusterIP"], "10.96.0.10");
    assert_eq!(same_again["spec"]["clusterIPs"], json!(["10.96.0.10"]));
}

#[test]
fn type_change_to_external_name_drops_the_address() {
    let old = allocated(created(kubectl_service()), "10.96.0.10");
    let mut ext = old.clone();
    ext["spec"]["type"] = json!("ExternalName");
    ext["spec"]["externalName"] = json!("example.com");
    let (new, errs) = update(ext, &old);
    assert!(errs.is_empty(), "{errs:?}");
    for k in [
        "clusterIP",
        "clusterIPs",
        "ipFamilies",
        "ipFamilyPolicy",
        "internalTrafficPolicy",
    ] {
        if k == "internalTrafficPolicy" {
            // Upstream keeps it (it is not type-dependent in dropTypeDependentFields).
            continue;
        }
        assert!(new["spec"].get(k).is_none(), "{k}");
    }
}

#[test]
fn port_rules() {
    let mut svc = created(kubectl_service());
    svc["spec"]["ports"] = json!([
        { "port": 80, "protocol": "TCP", "targetPort": 80, "nodePort": 30080 },
        { "name": "b", "port": 0, "protocol": "ICMP", "targetPort": "-x" }
    ]);
    assert_eq!(
        fields(ServiceStrategy.validate(&svc)),
        vec![
            ("spec.ports[0].name".into(), FieldErrorType::Required),
            ("spec.ports[1].port".into(), FieldErrorType::Invalid),
            (
                "spec.ports[1].protocol".into(),
                FieldErrorType::NotSupported
            ),
            ("spec.ports[1].targetPort".into(), FieldErrorType::Invalid),
            ("spec.ports[0].nodePort".into(), FieldErrorType::Forbidden),
        ]
    );
    let mut np = created(kubectl_service());
    np["spec"]["type"] = json!("NodePort");
    np["spec"]["externalTrafficPolicy"] = json!("Cluster");
    np["spec"]["ports"][0]["nodePort"] = json!(80);
    assert_eq!(
        fields(ServiceStrategy.validate(&np)),
        vec![("spec.ports[0].nodePort".into(), FieldErrorType::Invalid)]
    );
    let mut none = created(kubectl_service());
    none["spec"]["ports"] = json!([]);
    assert_eq!(
        fields(ServiceStrategy.validate(&none)),
        vec![("spec.ports".into(), FieldErrorType::Required)]
    );
    let mut headless = kubectl_service();
    headless["spec"]["clusterIP"] = json!("None");
    headless["spec"]["ports"] = json!([]);
    let headless = created(headless);
    assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
    assert!(
        ServiceStrategy.validate(&headless).is_empty(),
        "{:?}",
        ServiceStrategy.validate(&headless)
    );
}

#[test]
fn names_must_be_dns_1035() {
    let mut svc = created(kubectl_service());
    svc["metadata"]["name"] = json!("1web");
    let e = ServiceStrategy.validate(&svc);
    assert_eq!(
        fields(e.clone()),
        vec![("metadata.name".into(), FieldErrorType::Invalid)]
    );
    assert!(e[0].detail.starts_with("a DNS-1035 label"));
    assert_eq!(
        ServiceStrategy.selectable_fields(&allocated(svc, "10.0.0.1")),
        vec![
            ("spec.clusterIP", "10.0.0.1".to_string()),
            ("spec.type", "ClusterIP".to_string())
        ]
    );
}
