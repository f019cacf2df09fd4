//! Patch and list metadata of node.k8s.io/v1 (`staging/src/k8s.io/api/node/v1/types.go`).

use super::*;

/// Field metadata.
pub(super) static FIELDS: &[FieldMeta] = &[
    // Scheduling
    map_type("io.k8s.api.node.v1.Scheduling", "nodeSelector", "atomic"),
    atomic_list("io.k8s.api.node.v1.Scheduling", "tolerations"),
];

/// Struct types marked `+structType=atomic`.
pub(super) static ATOMIC: &[&str] = &[];
