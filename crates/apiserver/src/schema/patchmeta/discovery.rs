//! Patch and list metadata of discovery.k8s.io/v1 (`staging/src/k8s.io/api/discovery/v1/types.go`). events.k8s.io/v1,
//! coordination.k8s.io/v1 and scheduling.k8s.io/v1 have no such tags.

use super::*;

/// Field metadata.
pub(super) static FIELDS: &[FieldMeta] = &[
    // EndpointSlice
    atomic_list("io.k8s.api.discovery.v1.EndpointSlice", "endpoints"),
    atomic_list("io.k8s.api.discovery.v1.EndpointSlice", "ports"),
    // Endpoint
    set_list("io.k8s.api.discovery.v1.Endpoint", "addresses"),
    // EndpointHints
    atomic_list("io.k8s.api.discovery.v1.EndpointHints", "forZones"),
    atomic_list("io.k8s.api.discovery.v1.EndpointHints", "forNodes"),
];

/// Struct types marked `+structType=atomic`.
pub(super) static ATOMIC: &[&str] = &["io.k8s.api.discovery.v1.EndpointPort"];
