//! RBAC, reviews, tokens, evictions, disruption budgets, priority classes,
//! runtime classes and ingresses.

use k8s_openapi::api::{
    authentication::v1 as oauthn, authorization::v1 as oauthz, networking::v1 as onet,
    node::v1 as onode, policy::v1 as opolicy, rbac::v1 as orbac, scheduling::v1 as osched,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as ometa;
use k8s_pb::api::core::v1 as pbcore;
use k8s_pb::api::{
    authentication::v1 as authn, authorization::v1 as authz, networking::v1 as net,
    node::v1 as node, policy::v1 as policy, rbac::v1 as rbac, scheduling::v1 as sched,
};
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

use super::*;

const RBAC: &str = "rbac.authorization.k8s.io/v1";

fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> rbac::PolicyRule {
    rbac::PolicyRule {
        verbs: strings(verbs),
        api_groups: strings(groups),
        resources: strings(resources),
        ..Default::default()
    }
}

#[test]
fn cluster_role_with_rules_and_aggregation() {
    // kubectl create clusterrole reader --verb=get,list --resource=pods,deployments.apps
    //   --resource-name=web --non-resource-url=/healthz --aggregation-rule=team=a
    let cr = rbac::ClusterRole {
        metadata: Some(go_meta("reader", "")),
        rules: vec![
            rbac::PolicyRule {
                resource_names: strings(&["web"]),
                ..rule(&["get", "list"], &[""], &["pods"])
            },
            rule(&["get", "list"], &["apps"], &["deployments"]),
            rbac::PolicyRule {
                verbs: strings(&["get"]),
                non_resource_ur_ls: strings(&["/healthz"]),
                ..Default::default()
            },
        ],
        aggregation_rule: Some(rbac::AggregationRule {
            cluster_role_selectors: vec![meta::LabelSelector {
                match_labels: string_map(&[("team", "a")]),
                match_expressions: vec![meta::LabelSelectorRequirement {
                    key: s("tier"),
                    operator: s("NotIn"),
                    values: strings(&["test"]),
                }],
            }],
        }),
    };
    let want = json!({
        "apiVersion": RBAC,
        "kind": "ClusterRole",
        "metadata": { "name": "reader", "creationTimestamp": null },
        "rules": [
            { "verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["web"] },
            { "verbs": ["get", "list"], "apiGroups": ["apps"], "resources": ["deployments"] },
            { "verbs": ["get"], "nonResourceURLs": ["/healthz"] }
        ],
        "aggregationRule": {
            "clusterRoleSelectors": [{
                "matchLabels": { "team": "a" },
                "matchExpressions": [{ "key": "tier", "operator": "NotIn", "values": ["test"] }]
            }]
        }
    });
    check::<orbac::ClusterRole>(&decoded(RBAC, "ClusterRole", &cr), want);

    let role = rbac::Role {
        metadata: Some(go_meta("pods", "dev")),
        rules: vec![rule(&["*"], &[""], &["pods"])],
    };
    let got = decoded(RBAC, "Role", &role);
    assert_eq!(
        got["rules"],
        json!([{ "verbs": ["*"], "apiGroups": [""], "resources": ["pods"] }])
    );
    check::<orbac::Role>(&got, got.clone());
}

#[test]
fn role_and_cluster_role_bindings() {
    // kubectl create rolebinding rb --clusterrole=view --user=alice --group=devs --serviceaccount=ci:robot -n dev
    let subjects = vec![
        rbac::Subject {
            kind: s("User"),
            api_group: s("rbac.authorization.k8s.io"),
            name: s("alice"),
            namespace: s(""),
        },
        rbac::Subject {
            kind: s("Group"),
            api_group: s("rbac.authorization.k8s.io"),
            name: s("devs"),
            namespace: s(""),
        },
        rbac::Subject {
            kind: s("ServiceAccount"),
            api_group: s(""),
            name: s("robot"),
            namespace: s("ci"),
        },
    ];
    let role_ref = rbac::RoleRef {
        api_group: s("rbac.authorization.k8s.io"),
        kind: s("ClusterRole"),
        name: s("view"),
    };
    let rb = rbac::RoleBinding {
        metadata: Some(go_meta("rb", "dev")),
        subjects: subjects.clone(),
        role_ref: Some(role_ref.clone()),
    };
    let want = json!({
        "apiVersion": RBAC,
        "kind": "RoleBinding",
        "metadata": { "name": "rb", "namespace": "dev", "creationTimestamp": null },
        "subjects": [
            { "kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice" },
            { "kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "devs" },
            { "kind": "ServiceAccount", "name": "robot", "namespace": "ci" }
        ],
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view" }
    });
    check::<orbac::RoleBinding>(&decoded(RBAC, "RoleBinding", &rb), want);

    let crb = rbac::ClusterRoleBinding {
        metadata: Some(go_meta("crb", "")),
        subjects,
        role_ref: Some(role_ref),
    };
    let got = decoded(RBAC, "ClusterRoleBinding", &crb);
    assert_eq!(got["roleRef"]["name"], "view");
    assert_eq!(got["subjects"][2]["namespace"], "ci");
    check::<orbac::ClusterRoleBinding>(&got, got.clone());
}

#[test]
fn pod_disruption_budget_with_a_percentage() {
    // kubectl create pdb web --selector=app=web --min-available=50%
    let pdb = policy::PodDisruptionBudget {
        metadata: Some(go_meta("web", "")),
        spec: Some(policy::PodDisruptionBudgetSpec {
            min_available: Some(IntOrString {
                r#type: Some(1),
                int_val: Some(0),
                str_val: s("50%"),
            }),
            selector: Some(meta::LabelSelector {
                match_labels: string_map(&[("app", "web")]),
                ..Default::default()
            }),
            max_unavailable: None,
            unhealthy_pod_eviction_policy: s("AlwaysAllow"),
        }),
        status: Some(policy::PodDisruptionBudgetStatus {
            observed_generation: Some(0),
            disruptions_allowed: Some(0),
            current_healthy: Some(0),
            desired_healthy: Some(0),
            expected_pods: Some(0),
            disrupted_pods: [("web-1".to_string(), time(1_704_164_645))].into(),
            ..Default::default()
        }),
    };
    let want = json!({
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": { "name": "web", "creationTimestamp": null },
        "spec": {
            "minAvailable": "50%",
            "selector": { "matchLabels": { "app": "web" } },
            "unhealthyPodEvictionPolicy": "AlwaysAllow"
        },
        "status": {
            "disruptionsAllowed": 0,
            "currentHealthy": 0,
            "desiredHealthy": 0,
            "expectedPods": 0,
            "disruptedPods": { "web-1": "2024-01-02T03:04:05Z" }
        }
    });
    check::<opolicy::PodDisruptionBudget>(&decoded("policy/v1", "PodDisruptionBudget", &pdb), want);

    // --max-unavailable=1
    let pdb = policy::PodDisruptionBudget {
        spec: Some(policy::PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString {
                r#type: Some(0),
                int_val: Some(1),
                str_val: s(""),
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        decoded("policy/v1", "PodDisruptionBudget", &pdb)["spec"],
        json!({ "maxUnavailable": 1 })
    );
}

#[test]
fn eviction_with_delete_options() {
    // kubectl drain node-1 --grace-period=30 (one eviction per pod)
    let ev = policy::Eviction {
        metadata: Some(go_meta("web-1", "prod")),
        delete_options: Some(meta::DeleteOptions {
            grace_period_seconds: Some(30),
            preconditions: Some(meta::Preconditions {
                uid: s("abc"),
                resource_version: s("42"),
            }),
            orphan_dependents: Some(false),
            propagation_policy: s("Foreground"),
            dry_run: strings(&["All"]),
            ignore_store_read_error_with_cluster_breaking_potential: None,
        }),
    };
    let want = json!({
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": { "name": "web-1", "namespace": "prod", "creationTimestamp": null },
        "deleteOptions": {
            "gracePeriodSeconds": 30,
            "preconditions": { "uid": "abc", "resourceVersion": "42" },
            "orphanDependents": false,
            "propagationPolicy": "Foreground",
            "dryRun": ["All"]
        }
    });
    check::<opolicy::Eviction>(&decoded("policy/v1", "Eviction", &ev), want);
    assert_eq!(
        decoded("policy/v1beta1", "Eviction", &ev)["deleteOptions"]["gracePeriodSeconds"],
        30
    );

    // A DELETE body on its own, stamped with the client's group version.
    let opts = meta::DeleteOptions {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    let got = decoded("v1", "DeleteOptions", &opts);
    check::<ometa::DeleteOptions>(
        &got,
        json!({ "apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0 }),
    );
}

#[test]
fn priority_class() {
    // kubectl create priorityclass high --value=1000 --description=important --preemption-policy=Never
    let pc = sched::PriorityClass {
        metadata: Some(go_meta("high", "")),
        value: Some(1000),
        global_default: Some(false),
        description: s("important"),
        preemption_policy: s("Never"),
    };
    let want = json!({
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": { "name": "high", "creationTimestamp": null },
        "value": 1000,
        "description": "important",
        "preemptionPolicy": "Never"
    });
    check::<osched::PriorityClass>(&decoded("scheduling.k8s.io/v1", "PriorityClass", &pc), want);
}

#[test]
fn runtime_class_with_overhead_and_scheduling() {
    let rc = node::RuntimeClass {
        metadata: Some(go_meta("gvisor", "")),
        handler: s("runsc"),
        overhead: Some(node::Overhead {
            pod_fixed: [("cpu".to_string(), Quantity { string: s("250m") })].into(),
        }),
        scheduling: Some(node::Scheduling {
            node_selector: [("runtime".to_string(), "gvisor".to_string())].into(),
            tolerations: vec![pbcore::Toleration {
                key: s("runtime"),
                operator: s("Equal"),
                value: s("gvisor"),
                effect: s("NoSchedule"),
                toleration_seconds: None,
            }],
        }),
    };
    let want = json!({
        "apiVersion": "node.k8s.io/v1",
        "kind": "RuntimeClass",
        "metadata": { "name": "gvisor", "creationTimestamp": null },
        "handler": "runsc",
        "overhead": { "podFixed": { "cpu": "250m" } },
        "scheduling": {
            "nodeSelector": { "runtime": "gvisor" },
            "tolerations": [{ "key": "runtime", "operator": "Equal", "value": "gvisor", "effect": "NoSchedule" }]
        }
    });
    check::<onode::RuntimeClass>(&decoded("node.k8s.io/v1", "RuntimeClass", &rc), want);
    // Go always sends the handler, even empty: it is not omitempty.
    let bare = node::RuntimeClass {
        metadata: Some(go_meta("x", "")),
        handler: s(""),
        ..Default::default()
    };
    assert_eq!(
        decoded("node.k8s.io/v1", "RuntimeClass", &bare)["handler"],
        json!("")
    );
}

#[test]
fn ingress_with_rules_tls_and_default_backend() {
    // kubectl create ingress web --class=nginx --rule="foo.com/bar*=svc:8080,tls=cert" --default-backend=def:http
    let backend = |name: &str, port: net::ServiceBackendPort| net::IngressBackend {
        service: Some(net::IngressServiceBackend {
            name: s(name),
            port: Some(port),
        }),
        resource: None,
    };
    let ing = net::Ingress {
        metadata: Some(go_meta("web", "")),
        spec: Some(net::IngressSpec {
            ingress_class_name: s("nginx"),
            default_backend: Some(backend(
                "def",
                net::ServiceBackendPort {
                    name: s("http"),
                    number: Some(0),
                },
            )),
            tls: vec![net::IngressTls {
                hosts: strings(&["foo.com"]),
                secret_name: s("cert"),
            }],
            rules: vec![net::IngressRule {
                host: s("foo.com"),
                ingress_rule_value: Some(net::IngressRuleValue {
                    http: Some(net::HttpIngressRuleValue {
                        paths: vec![net::HttpIngressPath {
                            path: s("/bar"),
                            path_type: s("Prefix"),
                            backend: Some(backend(
                                "svc",
                                net::ServiceBackendPort {
                                    name: s(""),
                                    number: Some(8080),
                                },
                            )),
                        }],
                    }),
                }),
            }],
        }),
        status: Some(net::IngressStatus {
            load_balancer: Some(net::IngressLoadBalancerStatus::default()),
        }),
    };
    let want = json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": { "name": "web", "creationTimestamp": null },
        "spec": {
            "ingressClassName": "nginx",
            "defaultBackend": { "service": { "name": "def", "port": { "name": "http" } } },
            "tls": [{ "hosts": ["foo.com"], "secretName": "cert" }],
            "rules": [{
                "host": "foo.com",
                "http": {
                    "paths": [{
                        "path": "/bar",
                        "pathType": "Prefix",
                        "backend": { "service": { "name": "svc", "port": { "number": 8080 } } }
                    }]
                }
            }]
        },
        "status": { "loadBalancer": {} }
    });
    check::<onet::Ingress>(&decoded("networking.k8s.io/v1", "Ingress", &ing), want);
}

#[test]
fn token_request_with_bound_object() {
    // kubectl create token robot --audience=api --duration=10m --bound-object-kind=Pod --bound-object-name=web-1
    let tr = authn::TokenRequest {
        metadata: Some(go_meta("robot", "ci")),
        spec: Some(authn::TokenRequestSpec {
            audiences: strings(&["api"]),
            expiration_seconds: Some(600),
            bound_object_ref: Some(authn::BoundObjectReference {
                kind: s("Pod"),
                api_version: s("v1"),
                name: s("web-1"),
                u_id: s("0b9c"),
            }),
        }),
        status: Some(authn::TokenRequestStatus {
            token: s(""),
            expiration_timestamp: Some(meta::Time::default()),
        }),
    };
    let got = decoded("authentication.k8s.io/v1", "TokenRequest", &tr);
    assert_eq!(
        got["spec"],
        json!({
            "audiences": ["api"],
            "expirationSeconds": 600,
            "boundObjectRef": { "kind": "Pod", "apiVersion": "v1", "name": "web-1", "uid": "0b9c" }
        })
    );
    // `token` has no omitempty upstream, and the zero time is null.
    assert_eq!(
        got["status"],
        json!({ "token": "", "expirationTimestamp": null })
    );
}

#[test]
fn self_subject_review_in_every_version_whoami_tries() {
    let ssr = authn::SelfSubjectReview {
        metadata: Some(go_meta("", "")),
        status: Some(authn::SelfSubjectReviewStatus {
            user_info: Some(authn::UserInfo {
                username: s("alice"),
                groups: strings(&["devs"]),
                extra: [(
                    "scopes".to_string(),
                    authn::ExtraValue {
                        items: strings(&["a", "b"]),
                    },
                )]
                .into(),
                ..Default::default()
            }),
        }),
    };
    for version in ["v1", "v1beta1", "v1alpha1"] {
        let api_version = format!("authentication.k8s.io/{version}");
        let got = decoded(&api_version, "SelfSubjectReview", &ssr);
        assert_eq!(got["metadata"], json!({ "creationTimestamp": null }));
        assert_eq!(got["apiVersion"], api_version.as_str());
        assert_eq!(
            got["status"],
            json!({ "userInfo": { "username": "alice", "groups": ["devs"], "extra": { "scopes": ["a", "b"] } } })
        );
    }
    let got = decoded("authentication.k8s.io/v1", "SelfSubjectReview", &ssr);
    check::<oauthn::SelfSubjectReview>(&got, got.clone());
}

#[test]
fn self_subject_access_reviews_as_can_i_sends_them() {
    // kubectl auth can-i list deployments.apps/scale --subresource=scale -n dev
    let resource = authz::SelfSubjectAccessReview {
        metadata: Some(go_meta("", "")),
        spec: Some(authz::SelfSubjectAccessReviewSpec {
            resource_attributes: Some(authz::ResourceAttributes {
                namespace: s("dev"),
                verb: s("list"),
                group: s("apps"),
                version: s(""),
                resource: s("deployments"),
                subresource: s("scale"),
                name: s("web"),
                field_selector: None,
                label_selector: None,
            }),
            non_resource_attributes: None,
        }),
        status: Some(authz::SubjectAccessReviewStatus {
            allowed: Some(false),
            denied: Some(false),
            reason: s(""),
            evaluation_error: s(""),
        }),
    };
    let want = json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "metadata": { "creationTimestamp": null },
        "spec": {
            "resourceAttributes": {
                "namespace": "dev",
                "verb": "list",
                "group": "apps",
                "resource": "deployments",
                "subresource": "scale",
                "name": "web"
            }
        },
        "status": { "allowed": false }
    });
    check::<oauthz::SelfSubjectAccessReview>(
        &decoded(
            "authorization.k8s.io/v1",
            "SelfSubjectAccessReview",
            &resource,
        ),
        want,
    );

    // kubectl auth can-i get /logs
    let non_resource = authz::SelfSubjectAccessReview {
        spec: Some(authz::SelfSubjectAccessReviewSpec {
            resource_attributes: None,
            non_resource_attributes: Some(authz::NonResourceAttributes {
                path: s("/logs"),
                verb: s("get"),
            }),
        }),
        ..Default::default()
    };
    let got = decoded(
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
        &non_resource,
    );
    assert_eq!(
        got["spec"],
        json!({ "nonResourceAttributes": { "path": "/logs", "verb": "get" } })
    );

    // kubectl auth can-i --list -n dev
    let rules = authz::SelfSubjectRulesReview {
        spec: Some(authz::SelfSubjectRulesReviewSpec {
            namespace: s("dev"),
        }),
        ..Default::default()
    };
    let got = decoded("authorization.k8s.io/v1", "SelfSubjectRulesReview", &rules);
    assert_eq!(got["spec"], json!({ "namespace": "dev" }));
}

#[test]
fn subject_access_review_with_extra() {
    let sar = authz::SubjectAccessReview {
        spec: Some(authz::SubjectAccessReviewSpec {
            user: s("bob"),
            groups: strings(&["ops"]),
            extra: [(
                "scopes".to_string(),
                authz::ExtraValue {
                    items: strings(&["x"]),
                },
            )]
            .into(),
            uid: s("7"),
            resource_attributes: Some(authz::ResourceAttributes {
                verb: s("get"),
                resource: s("pods"),
                ..Default::default()
            }),
            non_resource_attributes: None,
        }),
        ..Default::default()
    };
    let got = decoded("authorization.k8s.io/v1", "SubjectAccessReview", &sar);
    assert_eq!(
        got["spec"],
        json!({
            "user": "bob",
            "groups": ["ops"],
            "extra": { "scopes": ["x"] },
            "uid": "7",
            "resourceAttributes": { "verb": "get", "resource": "pods" }
        })
    );
    check::<oauthz::SubjectAccessReview>(&got, got.clone());
}
