//! Patch and list metadata of meta/v1 (`staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/types.go`) and
//! authentication.k8s.io/v1; autoscaling/v1 has none on `Scale`.

use super::*;

/// Field metadata.
pub(super) static FIELDS: &[FieldMeta] = &[
    // UserInfo
    atomic_list("io.k8s.api.authentication.v1.UserInfo", "groups"),
    // ObjectMeta
    merge_map(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "ownerReferences",
        "uid",
        &["uid"],
    ),
    merge_set(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "finalizers",
    ),
    atomic_list(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "managedFields",
    ),
    // DeleteOptions
    atomic_list(
        "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
        "dryRun",
    ),
    // StatusDetails
    atomic_list(
        "io.k8s.apimachinery.pkg.apis.meta.v1.StatusDetails",
        "causes",
    ),
    // LabelSelector
    atomic_list(
        "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
        "matchExpressions",
    ),
    // LabelSelectorRequirement
    atomic_list(
        "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelectorRequirement",
        "values",
    ),
];

/// Struct types marked `+structType=atomic`.
pub(super) static ATOMIC: &[&str] = &[
    "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference",
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
];
