//! The tables themselves, and the kinds outside `kubectl create`'s list.

use std::collections::HashSet;

use k8s_openapi::api::{autoscaling::v2 as oautoscaling, certificates::v1 as ocerts};
use k8s_pb::api::{autoscaling::v2 as autoscaling, certificates::v1 as certs};
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use serde_json::json;

use super::super::schema::{Card, Msg, Ty};
use super::super::KINDS;
use super::*;

/// Every message reachable from a kind: field numbers and JSON names are
/// unique, numbers are valid, and inline fields are messages.
#[test]
fn tables_are_well_formed() {
    let mut seen = HashSet::new();
    let mut stack: Vec<&'static Msg> = KINDS.iter().map(|(_, _, m)| *m).collect();
    while let Some(m) = stack.pop() {
        if !seen.insert(m as *const Msg) {
            continue;
        }
        let mut tags = HashSet::new();
        let mut names = HashSet::new();
        for f in m.fields {
            assert!(
                (1..(1 << 29)).contains(&f.tag),
                "{}: field number {}",
                m.name,
                f.tag
            );
            assert!(
                tags.insert(f.tag),
                "{}: field number {} twice",
                m.name,
                f.tag
            );
            if f.card == Card::Inline {
                assert!(
                    matches!(f.ty, Ty::Message(_)),
                    "{}: inline field {} is not a message",
                    m.name,
                    f.tag
                );
            } else {
                assert!(
                    !f.json.is_empty() && names.insert(f.json),
                    "{}: JSON name {:?}",
                    m.name,
                    f.json
                );
            }
            if f.card == Card::Omit {
                assert!(
                    !f.ty.is_message(),
                    "{}.{}: only scalars have an unset zero",
                    m.name,
                    f.json
                );
            }
            if let Ty::Message(inner) = f.ty {
                stack.push(inner);
            }
        }
    }
    assert!(seen.len() > 300, "only {} messages reachable", seen.len());
    let mut kinds = HashSet::new();
    for (v, k, _) in KINDS {
        assert!(kinds.insert((v, k)), "{v} {k} listed twice");
    }
}

#[test]
fn horizontal_pod_autoscaler_as_kubectl_autoscale_sends_it() {
    // kubectl autoscale deployment web --min=2 --max=5 --cpu=80%
    let hpa = autoscaling::HorizontalPodAutoscaler {
        metadata: Some(go_meta("web", "")),
        spec: Some(autoscaling::HorizontalPodAutoscalerSpec {
            scale_target_ref: Some(autoscaling::CrossVersionObjectReference {
                kind: s("Deployment"),
                name: s("web"),
                api_version: s("apps/v1"),
            }),
            min_replicas: Some(2),
            max_replicas: Some(5),
            metrics: vec![autoscaling::MetricSpec {
                r#type: s("Resource"),
                resource: Some(autoscaling::ResourceMetricSource {
                    name: s("cpu"),
                    target: Some(autoscaling::MetricTarget {
                        r#type: s("Utilization"),
                        average_utilization: Some(80),
                        ..Default::default()
                    }),
                }),
                ..Default::default()
            }],
            behavior: Some(autoscaling::HorizontalPodAutoscalerBehavior {
                scale_up: None,
                scale_down: Some(autoscaling::HpaScalingRules {
                    stabilization_window_seconds: Some(300),
                    select_policy: s("Max"),
                    policies: vec![autoscaling::HpaScalingPolicy {
                        r#type: s("Percent"),
                        value: Some(10),
                        period_seconds: Some(60),
                    }],
                    tolerance: Some(Quantity { string: s("50m") }),
                }),
            }),
        }),
        status: Some(autoscaling::HorizontalPodAutoscalerStatus {
            current_replicas: Some(0),
            desired_replicas: Some(0),
            ..Default::default()
        }),
    };
    let want = json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": { "name": "web", "creationTimestamp": null },
        "spec": {
            "scaleTargetRef": { "kind": "Deployment", "name": "web", "apiVersion": "apps/v1" },
            "minReplicas": 2,
            "maxReplicas": 5,
            "metrics": [{
                "type": "Resource",
                "resource": { "name": "cpu", "target": { "type": "Utilization", "averageUtilization": 80 } }
            }],
            "behavior": {
                "scaleDown": {
                    "stabilizationWindowSeconds": 300,
                    "selectPolicy": "Max",
                    "policies": [{ "type": "Percent", "value": 10, "periodSeconds": 60 }],
                    "tolerance": "50m"
                }
            }
        },
        // desiredReplicas has no omitempty upstream; currentReplicas has.
        "status": { "desiredReplicas": 0 }
    });
    check::<oautoscaling::HorizontalPodAutoscaler>(
        &decoded("autoscaling/v2", "HorizontalPodAutoscaler", &hpa),
        want,
    );
}

#[test]
fn certificate_signing_request_as_approve_sends_it() {
    // kubectl certificate approve csr-1: the whole object, with a new condition.
    let csr = certs::CertificateSigningRequest {
        metadata: Some(go_meta("csr-1", "")),
        spec: Some(certs::CertificateSigningRequestSpec {
            request: Some(b"-----BEGIN CERTIFICATE REQUEST-----".to_vec()),
            signer_name: s("kubernetes.io/kube-apiserver-client"),
            expiration_seconds: Some(86_400),
            usages: strings(&["client auth"]),
            username: s("alice"),
            uid: s(""),
            groups: strings(&["system:authenticated"]),
            extra: [(
                "scopes".to_string(),
                certs::ExtraValue {
                    items: strings(&["a"]),
                },
            )]
            .into(),
        }),
        status: Some(certs::CertificateSigningRequestStatus {
            conditions: vec![certs::CertificateSigningRequestCondition {
                r#type: s("Approved"),
                status: s("True"),
                reason: s("KubectlApprove"),
                message: s("This CSR was approved by kubectl certificate approve."),
                last_update_time: Some(time(1_704_164_645)),
                last_transition_time: Some(pbmeta::Time::default()),
            }],
            certificate: None,
        }),
    };
    let want = json!({
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": { "name": "csr-1", "creationTimestamp": null },
        "spec": {
            "request": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0=",
            "signerName": "kubernetes.io/kube-apiserver-client",
            "expirationSeconds": 86400,
            "usages": ["client auth"],
            "username": "alice",
            "groups": ["system:authenticated"],
            "extra": { "scopes": ["a"] }
        },
        "status": {
            "conditions": [{
                "type": "Approved",
                "status": "True",
                "reason": "KubectlApprove",
                "message": "This CSR was approved by kubectl certificate approve.",
                "lastUpdateTime": "2024-01-02T03:04:05Z",
                "lastTransitionTime": null
            }]
        }
    });
    check::<ocerts::CertificateSigningRequest>(
        &decoded("certificates.k8s.io/v1", "CertificateSigningRequest", &csr),
        want,
    );
}
