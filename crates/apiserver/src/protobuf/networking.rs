//! Tables for `networking.k8s.io/v1`: ingresses, ingress classes and network policies.
//!
//! Field numbers, JSON names and types follow upstream's `generated.proto`
//! and `types.go`; `omit` marks Go value fields tagged `omitempty`, whose zero
//! value means unset (see [`super::schema::Card`]).

use super::schema::{inline, msg, omit, opt, rep, Msg, I32, INT_OR_STR, STR};
use super::{meta, volume};

/// `networking/v1.Ingress`.
pub static INGRESS: Msg = Msg {
    name: "networking/v1.Ingress",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        opt(2, "spec", msg(&INGRESS_SPEC)),
        opt(3, "status", msg(&INGRESS_STATUS)),
    ],
};

/// `networking/v1.IngressClass`.
pub static INGRESS_CLASS: Msg = Msg {
    name: "networking/v1.IngressClass",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        opt(2, "spec", msg(&INGRESS_CLASS_SPEC)),
    ],
};

/// `networking/v1.NetworkPolicy`.
pub static NETWORK_POLICY: Msg = Msg {
    name: "networking/v1.NetworkPolicy",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        opt(2, "spec", msg(&NETWORK_POLICY_SPEC)),
    ],
};

/// `networking/v1.IngressSpec`.
pub static INGRESS_SPEC: Msg = Msg {
    name: "networking/v1.IngressSpec",
    fields: &[
        opt(4, "ingressClassName", STR),
        opt(1, "defaultBackend", msg(&INGRESS_BACKEND)),
        rep(2, "tls", msg(&INGRESS_TLS)),
        rep(3, "rules", msg(&INGRESS_RULE)),
    ],
};

/// `networking/v1.IngressStatus`.
pub static INGRESS_STATUS: Msg = Msg {
    name: "networking/v1.IngressStatus",
    fields: &[opt(1, "loadBalancer", msg(&INGRESS_LOAD_BALANCER_STATUS))],
};

/// `networking/v1.IngressClassSpec`.
pub static INGRESS_CLASS_SPEC: Msg = Msg {
    name: "networking/v1.IngressClassSpec",
    fields: &[
        omit(1, "controller", STR),
        opt(2, "parameters", msg(&INGRESS_CLASS_PARAMETERS_REFERENCE)),
    ],
};

/// `networking/v1.NetworkPolicySpec`.
pub static NETWORK_POLICY_SPEC: Msg = Msg {
    name: "networking/v1.NetworkPolicySpec",
    fields: &[
        opt(1, "podSelector", msg(&meta::LABEL_SELECTOR)),
        rep(2, "ingress", msg(&NETWORK_POLICY_INGRESS_RULE)),
        rep(3, "egress", msg(&NETWORK_POLICY_EGRESS_RULE)),
        rep(4, "policyTypes", STR),
    ],
};

/// `networking/v1.IngressBackend`.
pub static INGRESS_BACKEND: Msg = Msg {
    name: "networking/v1.IngressBackend",
    fields: &[
        opt(4, "service", msg(&INGRESS_SERVICE_BACKEND)),
        opt(3, "resource", msg(&volume::TYPED_LOCAL_OBJECT_REFERENCE)),
    ],
};

/// `networking/v1.IngressTLS`.
pub static INGRESS_TLS: Msg = Msg {
    name: "networking/v1.IngressTLS",
    fields: &[rep(1, "hosts", STR), omit(2, "secretName", STR)],
};

/// `networking/v1.IngressRule`.
pub static INGRESS_RULE: Msg = Msg {
    name: "networking/v1.IngressRule",
    fields: &[omit(1, "host", STR), inline(2, msg(&INGRESS_RULE_VALUE))],
};

/// `networking/v1.IngressLoadBalancerStatus`.
pub static INGRESS_LOAD_BALANCER_STATUS: Msg = Msg {
    name: "networking/v1.IngressLoadBalancerStatus",
    fields: &[rep(1, "ingress", msg(&INGRESS_LOAD_BALANCER_INGRESS))],
};

/// `networking/v1.IngressClassParametersReference`.
pub static INGRESS_CLASS_PARAMETERS_REFERENCE: Msg = Msg {
    name: "networking/v1.IngressClassParametersReference",
    fields: &[
        opt(1, "apiGroup", STR),
        opt(2, "kind", STR),
        opt(3, "name", STR),
        opt(4, "scope", STR),
        opt(5, "namespace", STR),
    ],
};

/// `networking/v1.NetworkPolicyIngressRule`.
pub static NETWORK_POLICY_INGRESS_RULE: Msg = Msg {
    name: "networking/v1.NetworkPolicyIngressRule",
    fields: &[
        rep(1, "ports", msg(&NETWORK_POLICY_PORT)),
        rep(2, "from", msg(&NETWORK_POLICY_PEER)),
    ],
};

/// `networking/v1.NetworkPolicyEgressRule`.
pub static NETWORK_POLICY_EGRESS_RULE: Msg = Msg {
    name: "networking/v1.NetworkPolicyEgressRule",
    fields: &[
        rep(1, "ports", msg(&NETWORK_POLICY_PORT)),
        rep(2, "to", msg(&NETWORK_POLICY_PEER)),
    ],
};

/// `networking/v1.IngressServiceBackend`.
pub static INGRESS_SERVICE_BACKEND: Msg = Msg {
    name: "networking/v1.IngressServiceBackend",
    fields: &[
        opt(1, "name", STR),
        opt(2, "port", msg(&SERVICE_BACKEND_PORT)),
    ],
};

/// `networking/v1.IngressRuleValue`.
pub static INGRESS_RULE_VALUE: Msg = Msg {
    name: "networking/v1.IngressRuleValue",
    fields: &[opt(1, "http", msg(&HTTP_INGRESS_RULE_VALUE))],
};

/// `networking/v1.IngressLoadBalancerIngress`.
pub static INGRESS_LOAD_BALANCER_INGRESS: Msg = Msg {
    name: "networking/v1.IngressLoadBalancerIngress",
    fields: &[
        omit(1, "ip", STR),
        omit(2, "hostname", STR),
        rep(4, "ports", msg(&INGRESS_PORT_STATUS)),
    ],
};

/// `networking/v1.NetworkPolicyPort`.
pub static NETWORK_POLICY_PORT: Msg = Msg {
    name: "networking/v1.NetworkPolicyPort",
    fields: &[
        opt(1, "protocol", STR),
        opt(2, "port", INT_OR_STR),
        opt(3, "endPort", I32),
    ],
};

/// `networking/v1.NetworkPolicyPeer`.
pub static NETWORK_POLICY_PEER: Msg = Msg {
    name: "networking/v1.NetworkPolicyPeer",
    fields: &[
        opt(1, "podSelector", msg(&meta::LABEL_SELECTOR)),
        opt(2, "namespaceSelector", msg(&meta::LABEL_SELECTOR)),
        opt(3, "ipBlock", msg(&IP_BLOCK)),
    ],
};

/// `networking/v1.ServiceBackendPort`.
pub static SERVICE_BACKEND_PORT: Msg = Msg {
    name: "networking/v1.ServiceBackendPort",
    fields: &[omit(1, "name", STR), omit(2, "number", I32)],
};

/// `networking/v1.HTTPIngressRuleValue`.
pub static HTTP_INGRESS_RULE_VALUE: Msg = Msg {
    name: "networking/v1.HTTPIngressRuleValue",
    fields: &[rep(1, "paths", msg(&HTTP_INGRESS_PATH))],
};

/// `networking/v1.IngressPortStatus`.
pub static INGRESS_PORT_STATUS: Msg = Msg {
    name: "networking/v1.IngressPortStatus",
    fields: &[
        opt(1, "port", I32),
        opt(2, "protocol", STR),
        opt(3, "error", STR),
    ],
};

/// `networking/v1.IPBlock`.
pub static IP_BLOCK: Msg = Msg {
    name: "networking/v1.IPBlock",
    fields: &[opt(1, "cidr", STR), rep(2, "except", STR)],
};

/// `networking/v1.HTTPIngressPath`.
pub static HTTP_INGRESS_PATH: Msg = Msg {
    name: "networking/v1.HTTPIngressPath",
    fields: &[
        omit(1, "path", STR),
        opt(3, "pathType", STR),
        opt(2, "backend", msg(&INGRESS_BACKEND)),
    ],
};
