//! Tables for `rbac.authorization.k8s.io/v1`: roles, cluster roles and their bindings.
//!
//! Field numbers, JSON names and types follow upstream's `generated.proto`
//! and `types.go`; `omit` marks Go value fields tagged `omitempty`, whose zero
//! value means unset (see [`super::schema::Card`]).

use super::meta;
use super::schema::{msg, omit, opt, rep, Msg, STR};

/// `rbac/v1.Role`.
pub static ROLE: Msg = Msg {
    name: "rbac/v1.Role",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        rep(2, "rules", msg(&POLICY_RULE)),
    ],
};

/// `rbac/v1.ClusterRole`.
pub static CLUSTER_ROLE: Msg = Msg {
    name: "rbac/v1.ClusterRole",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        rep(2, "rules", msg(&POLICY_RULE)),
        opt(3, "aggregationRule", msg(&AGGREGATION_RULE)),
    ],
};

/// `rbac/v1.RoleBinding`.
pub static ROLE_BINDING: Msg = Msg {
    name: "rbac/v1.RoleBinding",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        rep(2, "subjects", msg(&SUBJECT)),
        opt(3, "roleRef", msg(&ROLE_REF)),
    ],
};

/// `rbac/v1.ClusterRoleBinding`.
pub static CLUSTER_ROLE_BINDING: Msg = Msg {
    name: "rbac/v1.ClusterRoleBinding",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        rep(2, "subjects", msg(&SUBJECT)),
        opt(3, "roleRef", msg(&ROLE_REF)),
    ],
};

/// `rbac/v1.PolicyRule`.
pub static POLICY_RULE: Msg = Msg {
    name: "rbac/v1.PolicyRule",
    fields: &[
        rep(1, "verbs", STR),
        rep(2, "apiGroups", STR),
        rep(3, "resources", STR),
        rep(4, "resourceNames", STR),
        rep(5, "nonResourceURLs", STR),
    ],
};

/// `rbac/v1.AggregationRule`.
pub static AGGREGATION_RULE: Msg = Msg {
    name: "rbac/v1.AggregationRule",
    fields: &[rep(1, "clusterRoleSelectors", msg(&meta::LABEL_SELECTOR))],
};

/// `rbac/v1.Subject`.
pub static SUBJECT: Msg = Msg {
    name: "rbac/v1.Subject",
    fields: &[
        opt(1, "kind", STR),
        omit(2, "apiGroup", STR),
        opt(3, "name", STR),
        omit(4, "namespace", STR),
    ],
};

/// `rbac/v1.RoleRef`.
pub static ROLE_REF: Msg = Msg {
    name: "rbac/v1.RoleRef",
    fields: &[
        opt(1, "apiGroup", STR),
        opt(2, "kind", STR),
        opt(3, "name", STR),
    ],
};
