//! Patch and list metadata of batch/v1 (`staging/src/k8s.io/api/batch/v1/types.go`).

use super::*;

/// Field metadata.
pub(super) static FIELDS: &[FieldMeta] = &[
    // PodFailurePolicyOnExitCodesRequirement
    set_list(
        "io.k8s.api.batch.v1.PodFailurePolicyOnExitCodesRequirement",
        "values",
    ),
    // PodFailurePolicyRule
    atomic_list(
        "io.k8s.api.batch.v1.PodFailurePolicyRule",
        "onPodConditions",
    ),
    // PodFailurePolicy
    atomic_list("io.k8s.api.batch.v1.PodFailurePolicy", "rules"),
    // SuccessPolicy
    atomic_list("io.k8s.api.batch.v1.SuccessPolicy", "rules"),
    // JobSchedulingConfiguration
    merge_map(
        "io.k8s.api.batch.v1.JobSchedulingConfiguration",
        "resourceClaims",
        "name",
        &["name"],
    ),
    // JobStatus
    merge_atomic("io.k8s.api.batch.v1.JobStatus", "conditions", "type"),
    // UncountedTerminatedPods
    set_list("io.k8s.api.batch.v1.UncountedTerminatedPods", "succeeded"),
    set_list("io.k8s.api.batch.v1.UncountedTerminatedPods", "failed"),
    // CronJobStatus
    atomic_list("io.k8s.api.batch.v1.CronJobStatus", "active"),
];

/// Struct types marked `+structType=atomic`.
pub(super) static ATOMIC: &[&str] = &[];
