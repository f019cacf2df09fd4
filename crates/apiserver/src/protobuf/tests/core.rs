//! Core-group kinds that `kubectl create` makes.

use k8s_openapi::api::core::v1 as ocore;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

use super::*;

#[test]
fn namespace() {
    // kubectl create namespace team-a
    let ns = core::Namespace {
        metadata: Some(go_meta("team-a", "")),
        spec: Some(core::NamespaceSpec {
            finalizers: strings(&["kubernetes"]),
        }),
        status: Some(core::NamespaceStatus {
            phase: s(""),
            conditions: vec![],
        }),
    };
    let want = json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": { "name": "team-a", "creationTimestamp": null },
        "spec": { "finalizers": ["kubernetes"] },
        "status": {}
    });
    check::<ocore::Namespace>(&decoded("v1", "Namespace", &ns), want);
}

#[test]
fn configmap_with_binary_data() {
    // kubectl create configmap app --from-literal=mode=fast --from-file=logo.png
    let cm = core::ConfigMap {
        metadata: Some(go_meta("app", "default")),
        data: string_map(&[("mode", "fast"), ("empty", "")]),
        binary_data: [(
            "logo.png".to_string(),
            vec![0x89, b'P', b'N', b'G', 0x00, 0xff],
        )]
        .into(),
        immutable: Some(false),
    };
    let want = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": "app", "namespace": "default", "creationTimestamp": null },
        "data": { "mode": "fast", "empty": "" },
        "binaryData": { "logo.png": "iVBORwD/" },
        "immutable": false
    });
    check::<ocore::ConfigMap>(&decoded("v1", "ConfigMap", &cm), want);
}

#[test]
fn secret_with_binary_data() {
    // kubectl create secret generic db --from-literal=user=admin --from-file=key.bin
    let secret = core::Secret {
        metadata: Some(go_meta("db", "")),
        data: [
            ("user".to_string(), b"admin".to_vec()),
            ("key.bin".to_string(), vec![0, 1, 2, 0xfe, 0xff]),
        ]
        .into(),
        string_data: string_map(&[("note", "hi")]),
        r#type: s("Opaque"),
        immutable: Some(true),
    };
    let want = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": { "name": "db", "creationTimestamp": null },
        "data": { "user": "YWRtaW4=", "key.bin": "AAEC/v8=" },
        "stringData": { "note": "hi" },
        "type": "Opaque",
        "immutable": true
    });
    check::<ocore::Secret>(&decoded("v1", "Secret", &secret), want);

    // A secret with no type: Go sends "", which means unset.
    let untyped = core::Secret {
        metadata: Some(go_meta("x", "")),
        r#type: s(""),
        ..Default::default()
    };
    let got = decoded("v1", "Secret", &untyped);
    assert!(got.get("type").is_none(), "{got}");
}

#[test]
fn service_account() {
    let sa = core::ServiceAccount {
        metadata: Some(go_meta("robot", "ci")),
        secrets: vec![core::ObjectReference {
            name: s("robot-token"),
            ..Default::default()
        }],
        image_pull_secrets: vec![core::LocalObjectReference {
            name: s("registry"),
        }],
        automount_service_account_token: Some(false),
    };
    let want = json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": { "name": "robot", "namespace": "ci", "creationTimestamp": null },
        "secrets": [{ "name": "robot-token" }],
        "imagePullSecrets": [{ "name": "registry" }],
        "automountServiceAccountToken": false
    });
    check::<ocore::ServiceAccount>(&decoded("v1", "ServiceAccount", &sa), want);
}

#[test]
fn nodeport_service_with_named_target_port() {
    // kubectl create service nodeport web --tcp=80:http --node-port=30080
    let svc = core::Service {
        metadata: Some(labelled("web", "", &[("app", "web")])),
        spec: Some(core::ServiceSpec {
            ports: vec![
                core::ServicePort {
                    name: s("80-http"),
                    protocol: s("TCP"),
                    port: Some(80),
                    target_port: Some(IntOrString {
                        r#type: Some(1),
                        int_val: Some(0),
                        str_val: s("http"),
                    }),
                    node_port: Some(30080),
                    app_protocol: None,
                },
                core::ServicePort {
                    name: s("metrics"),
                    protocol: s("TCP"),
                    port: Some(9090),
                    target_port: Some(IntOrString {
                        r#type: Some(0),
                        int_val: Some(9091),
                        str_val: s(""),
                    }),
                    node_port: Some(0),
                    app_protocol: s("http"),
                },
            ],
            selector: string_map(&[("app", "web")]),
            cluster_ip: s(""),
            cluster_ips: strings(&["10.0.0.10", "fd00::10"]),
            r#type: s("NodePort"),
            external_ips: strings(&["203.0.113.5"]),
            session_affinity: s("ClientIP"),
            session_affinity_config: Some(core::SessionAffinityConfig {
                client_ip: Some(core::ClientIpConfig {
                    timeout_seconds: Some(600),
                }),
            }),
            load_balancer_ip: s(""),
            external_name: s(""),
            external_traffic_policy: s("Local"),
            internal_traffic_policy: s("Cluster"),
            ip_families: strings(&["IPv4", "IPv6"]),
            ip_family_policy: s("PreferDualStack"),
            allocate_load_balancer_node_ports: Some(false),
            publish_not_ready_addresses: Some(false),
            health_check_node_port: Some(0),
            ..Default::default()
        }),
        status: Some(core::ServiceStatus {
            load_balancer: Some(core::LoadBalancerStatus { ingress: vec![] }),
            conditions: vec![],
        }),
    };
    let want = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": "web", "labels": { "app": "web" }, "creationTimestamp": null },
        "spec": {
            "ports": [
                { "name": "80-http", "protocol": "TCP", "port": 80, "targetPort": "http", "nodePort": 30080 },
                { "name": "metrics", "protocol": "TCP", "port": 9090, "targetPort": 9091, "appProtocol": "http" }
            ],
            "selector": { "app": "web" },
            "clusterIPs": ["10.0.0.10", "fd00::10"],
            "type": "NodePort",
            "externalIPs": ["203.0.113.5"],
            "sessionAffinity": "ClientIP",
            "sessionAffinityConfig": { "clientIP": { "timeoutSeconds": 600 } },
            "externalTrafficPolicy": "Local",
            "internalTrafficPolicy": "Cluster",
            "ipFamilies": ["IPv4", "IPv6"],
            "ipFamilyPolicy": "PreferDualStack",
            // A pointer: false is kept. publishNotReadyAddresses, a plain
            // bool, and healthCheckNodePort, a plain int, are unset at zero.
            "allocateLoadBalancerNodePorts": false
        },
        "status": { "loadBalancer": {} }
    });
    check::<ocore::Service>(&decoded("v1", "Service", &svc), want);
}

#[test]
fn external_name_service() {
    // kubectl create service externalname db --external-name=db.example.com
    let svc = core::Service {
        metadata: Some(go_meta("db", "")),
        spec: Some(core::ServiceSpec {
            r#type: s("ExternalName"),
            external_name: s("db.example.com"),
            cluster_ip: s(""),
            ..Default::default()
        }),
        status: None,
    };
    let got = decoded("v1", "Service", &svc);
    assert_eq!(
        got["spec"],
        json!({ "type": "ExternalName", "externalName": "db.example.com" })
    );
    check::<ocore::Service>(&got, got.clone());
}

#[test]
fn resource_quota_with_quantities_and_scope_selector() {
    // kubectl create quota q --hard=cpu=1,memory=1G,pods=2 --scopes=BestEffort
    let qty = |v: &str| Quantity { string: s(v) };
    let rq = core::ResourceQuota {
        metadata: Some(go_meta("q", "")),
        spec: Some(core::ResourceQuotaSpec {
            hard: [
                ("cpu".to_string(), qty("1")),
                ("memory".to_string(), qty("1G")),
                ("pods".to_string(), qty("2")),
                ("requests.storage".to_string(), qty("")),
            ]
            .into(),
            scopes: strings(&["BestEffort"]),
            scope_selector: Some(core::ScopeSelector {
                match_expressions: vec![core::ScopedResourceSelectorRequirement {
                    scope_name: s("PriorityClass"),
                    operator: s("In"),
                    values: strings(&["high"]),
                }],
            }),
        }),
        status: Some(core::ResourceQuotaStatus::default()),
    };
    let want = json!({
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": { "name": "q", "creationTimestamp": null },
        "spec": {
            "hard": { "cpu": "1", "memory": "1G", "pods": "2", "requests.storage": "" },
            "scopes": ["BestEffort"],
            "scopeSelector": {
                "matchExpressions": [{ "scopeName": "PriorityClass", "operator": "In", "values": ["high"] }]
            }
        },
        "status": {}
    });
    assert_eq!(decoded("v1", "ResourceQuota", &rq), want);
    // An empty Quantity message is Go's zero quantity.
    let rq = core::ResourceQuota {
        spec: Some(core::ResourceQuotaSpec {
            hard: [("pods".to_string(), Quantity { string: None })].into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let got = decoded("v1", "ResourceQuota", &rq);
    check::<ocore::ResourceQuota>(
        &got,
        json!({
            "apiVersion": "v1", "kind": "ResourceQuota", "spec": { "hard": { "pods": "0" } }
        }),
    );
}
