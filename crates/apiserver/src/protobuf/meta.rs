//! Tables for `meta.k8s.io/v1`: the object metadata every kind embeds,
//! label selectors, and `DeleteOptions` (also sent alone as a DELETE body).
//!
//! Field numbers, JSON names and types follow upstream's `generated.proto`
//! and `types.go`; `omit` marks Go value fields tagged `omitempty`, whose zero
//! value means unset (see [`super::schema::Card`]).

use super::schema::{map, msg, omit, opt, rep, Msg, BOOL, I64, RAW_JSON, STR, TIME};

/// `meta/v1.DeleteOptions`.
pub static DELETE_OPTIONS: Msg = Msg {
    name: "meta/v1.DeleteOptions",
    fields: &[
        opt(1, "gracePeriodSeconds", I64),
        opt(2, "preconditions", msg(&PRECONDITIONS)),
        opt(3, "orphanDependents", BOOL),
        opt(4, "propagationPolicy", STR),
        rep(5, "dryRun", STR),
        opt(6, "ignoreStoreReadErrorWithClusterBreakingPotential", BOOL),
    ],
};

/// `meta/v1.Preconditions`.
pub static PRECONDITIONS: Msg = Msg {
    name: "meta/v1.Preconditions",
    fields: &[opt(1, "uid", STR), opt(2, "resourceVersion", STR)],
};

/// `meta/v1.ObjectMeta`.
pub static OBJECT_META: Msg = Msg {
    name: "meta/v1.ObjectMeta",
    fields: &[
        omit(1, "name", STR),
        omit(2, "generateName", STR),
        omit(3, "namespace", STR),
        omit(4, "selfLink", STR),
        omit(5, "uid", STR),
        omit(6, "resourceVersion", STR),
        omit(7, "generation", I64),
        opt(8, "creationTimestamp", TIME),
        opt(9, "deletionTimestamp", TIME),
        opt(10, "deletionGracePeriodSeconds", I64),
        map(11, "labels", STR),
        map(12, "annotations", STR),
        rep(13, "ownerReferences", msg(&OWNER_REFERENCE)),
        rep(14, "finalizers", STR),
        rep(17, "managedFields", msg(&MANAGED_FIELDS_ENTRY)),
    ],
};

/// `meta/v1.OwnerReference`.
pub static OWNER_REFERENCE: Msg = Msg {
    name: "meta/v1.OwnerReference",
    fields: &[
        opt(5, "apiVersion", STR),
        opt(1, "kind", STR),
        opt(3, "name", STR),
        opt(4, "uid", STR),
        opt(6, "controller", BOOL),
        opt(7, "blockOwnerDeletion", BOOL),
    ],
};

/// `meta/v1.ManagedFieldsEntry`.
pub static MANAGED_FIELDS_ENTRY: Msg = Msg {
    name: "meta/v1.ManagedFieldsEntry",
    fields: &[
        omit(1, "manager", STR),
        omit(2, "operation", STR),
        omit(3, "apiVersion", STR),
        opt(4, "time", TIME),
        omit(6, "fieldsType", STR),
        opt(7, "fieldsV1", RAW_JSON),
        omit(8, "subresource", STR),
    ],
};

/// `meta/v1.Condition`.
pub static CONDITION: Msg = Msg {
    name: "meta/v1.Condition",
    fields: &[
        opt(1, "type", STR),
        opt(2, "status", STR),
        omit(3, "observedGeneration", I64),
        opt(4, "lastTransitionTime", TIME),
        opt(5, "reason", STR),
        opt(6, "message", STR),
    ],
};

/// `meta/v1.LabelSelector`.
pub static LABEL_SELECTOR: Msg = Msg {
    name: "meta/v1.LabelSelector",
    fields: &[
        map(1, "matchLabels", STR),
        rep(2, "matchExpressions", msg(&LABEL_SELECTOR_REQUIREMENT)),
    ],
};

/// `meta/v1.LabelSelectorRequirement`.
pub static LABEL_SELECTOR_REQUIREMENT: Msg = Msg {
    name: "meta/v1.LabelSelectorRequirement",
    fields: &[
        opt(1, "key", STR),
        opt(2, "operator", STR),
        rep(3, "values", STR),
    ],
};

/// `meta/v1.FieldSelectorRequirement`.
pub static FIELD_SELECTOR_REQUIREMENT: Msg = Msg {
    name: "meta/v1.FieldSelectorRequirement",
    fields: &[
        opt(1, "key", STR),
        opt(2, "operator", STR),
        rep(3, "values", STR),
    ],
};
