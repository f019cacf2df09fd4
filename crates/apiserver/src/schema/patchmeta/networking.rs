//! Patch and list metadata of networking.k8s.io/v1 (`staging/src/k8s.io/api/networking/v1/types.go`).

use super::*;

/// Field metadata.
pub(super) static FIELDS: &[FieldMeta] = &[
    // NetworkPolicySpec
    atomic_list("io.k8s.api.networking.v1.NetworkPolicySpec", "ingress"),
    atomic_list("io.k8s.api.networking.v1.NetworkPolicySpec", "egress"),
    atomic_list("io.k8s.api.networking.v1.NetworkPolicySpec", "policyTypes"),
    // NetworkPolicyIngressRule
    atomic_list("io.k8s.api.networking.v1.NetworkPolicyIngressRule", "ports"),
    atomic_list("io.k8s.api.networking.v1.NetworkPolicyIngressRule", "from"),
    // NetworkPolicyEgressRule
    atomic_list("io.k8s.api.networking.v1.NetworkPolicyEgressRule", "ports"),
    atomic_list("io.k8s.api.networking.v1.NetworkPolicyEgressRule", "to"),
    // IPBlock
    atomic_list("io.k8s.api.networking.v1.IPBlock", "except"),
    // IngressSpec
    atomic_list("io.k8s.api.networking.v1.IngressSpec", "tls"),
    atomic_list("io.k8s.api.networking.v1.IngressSpec", "rules"),
    // IngressTLS
    atomic_list("io.k8s.api.networking.v1.IngressTLS", "hosts"),
    // IngressLoadBalancerStatus
    atomic_list(
        "io.k8s.api.networking.v1.IngressLoadBalancerStatus",
        "ingress",
    ),
    // IngressLoadBalancerIngress
    atomic_list(
        "io.k8s.api.networking.v1.IngressLoadBalancerIngress",
        "ports",
    ),
    // HTTPIngressRuleValue
    atomic_list("io.k8s.api.networking.v1.HTTPIngressRuleValue", "paths"),
];

/// Struct types marked `+structType=atomic`.
pub(super) static ATOMIC: &[&str] = &["io.k8s.api.networking.v1.ServiceBackendPort"];
