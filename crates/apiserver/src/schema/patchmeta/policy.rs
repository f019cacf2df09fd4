//! Patch and list metadata of policy/v1 (`staging/src/k8s.io/api/policy/v1/types.go`).

use super::*;

/// Field metadata.
pub(super) static FIELDS: &[FieldMeta] = &[
    // PodDisruptionBudgetSpec
    strategy(
        "io.k8s.api.policy.v1.PodDisruptionBudgetSpec",
        "selector",
        "replace",
    ),
    // PodDisruptionBudgetStatus
    merge_map(
        "io.k8s.api.policy.v1.PodDisruptionBudgetStatus",
        "conditions",
        "type",
        &["type"],
    ),
];

/// Struct types marked `+structType=atomic`.
pub(super) static ATOMIC: &[&str] = &[];
