//! Patch and list metadata of rbac.authorization.k8s.io/v1 (`staging/src/k8s.io/api/rbac/v1/types.go`).

use super::*;

/// Field metadata.
pub(super) static FIELDS: &[FieldMeta] = &[
    // PolicyRule
    atomic_list("io.k8s.api.rbac.v1.PolicyRule", "verbs"),
    atomic_list("io.k8s.api.rbac.v1.PolicyRule", "apiGroups"),
    atomic_list("io.k8s.api.rbac.v1.PolicyRule", "resources"),
    atomic_list("io.k8s.api.rbac.v1.PolicyRule", "resourceNames"),
    atomic_list("io.k8s.api.rbac.v1.PolicyRule", "nonResourceURLs"),
    // Role
    atomic_list("io.k8s.api.rbac.v1.Role", "rules"),
    // RoleBinding
    atomic_list("io.k8s.api.rbac.v1.RoleBinding", "subjects"),
    // ClusterRole
    atomic_list("io.k8s.api.rbac.v1.ClusterRole", "rules"),
    // AggregationRule
    atomic_list("io.k8s.api.rbac.v1.AggregationRule", "clusterRoleSelectors"),
    // ClusterRoleBinding
    atomic_list("io.k8s.api.rbac.v1.ClusterRoleBinding", "subjects"),
];

/// Struct types marked `+structType=atomic`.
pub(super) static ATOMIC: &[&str] = &["io.k8s.api.rbac.v1.Subject", "io.k8s.api.rbac.v1.RoleRef"];
