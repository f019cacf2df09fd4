//! Patch and list metadata of apps/v1 (`staging/src/k8s.io/api/apps/v1/types.go`).

use super::*;

/// Field metadata.
pub(super) static FIELDS: &[FieldMeta] = &[
    // StatefulSetSpec
    atomic_list("io.k8s.api.apps.v1.StatefulSetSpec", "volumeClaimTemplates"),
    // StatefulSetStatus
    merge_map(
        "io.k8s.api.apps.v1.StatefulSetStatus",
        "conditions",
        "type",
        &["type"],
    ),
    // DeploymentSpec
    strategy(
        "io.k8s.api.apps.v1.DeploymentSpec",
        "strategy",
        "retainKeys",
    ),
    // DeploymentStatus
    merge_map(
        "io.k8s.api.apps.v1.DeploymentStatus",
        "conditions",
        "type",
        &["type"],
    ),
    // DaemonSetStatus
    merge_map(
        "io.k8s.api.apps.v1.DaemonSetStatus",
        "conditions",
        "type",
        &["type"],
    ),
    // ReplicaSetStatus
    merge_map(
        "io.k8s.api.apps.v1.ReplicaSetStatus",
        "conditions",
        "type",
        &["type"],
    ),
];

/// Struct types marked `+structType=atomic`.
pub(super) static ATOMIC: &[&str] = &[];
