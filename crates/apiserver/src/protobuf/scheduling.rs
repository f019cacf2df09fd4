//! Tables for `scheduling.k8s.io`: priority classes (v1), and the
//! `v1alpha3` workload pod-group types that the v1 job spec already refers to.
//!
//! Field numbers, JSON names and types follow upstream's `generated.proto`
//! and `types.go`; `omit` marks Go value fields tagged `omitempty`, whose zero
//! value means unset (see [`super::schema::Card`]).

use super::meta;
use super::schema::{msg, omit, opt, rep, Msg, BOOL, I32, STR};

/// `scheduling/v1.PriorityClass`.
pub static PRIORITY_CLASS: Msg = Msg {
    name: "scheduling/v1.PriorityClass",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        opt(2, "value", I32),
        omit(3, "globalDefault", BOOL),
        omit(4, "description", STR),
        opt(5, "preemptionPolicy", STR),
    ],
};

/// `scheduling/v1alpha3.WorkloadPodGroupSchedulingPolicy`.
pub static WORKLOAD_POD_GROUP_SCHEDULING_POLICY: Msg = Msg {
    name: "scheduling/v1alpha3.WorkloadPodGroupSchedulingPolicy",
    fields: &[
        opt(1, "basic", msg(&WORKLOAD_POD_GROUP_BASIC_SCHEDULING_POLICY)),
        opt(2, "gang", msg(&WORKLOAD_POD_GROUP_GANG_SCHEDULING_POLICY)),
    ],
};

/// `scheduling/v1alpha3.WorkloadPodGroupSchedulingConstraints`.
pub static WORKLOAD_POD_GROUP_SCHEDULING_CONSTRAINTS: Msg = Msg {
    name: "scheduling/v1alpha3.WorkloadPodGroupSchedulingConstraints",
    fields: &[rep(1, "topology", msg(&TOPOLOGY_CONSTRAINT))],
};

/// `scheduling/v1alpha3.WorkloadPodGroupDisruptionMode`.
pub static WORKLOAD_POD_GROUP_DISRUPTION_MODE: Msg = Msg {
    name: "scheduling/v1alpha3.WorkloadPodGroupDisruptionMode",
    fields: &[
        opt(1, "single", msg(&WORKLOAD_POD_GROUP_SINGLE_DISRUPTION_MODE)),
        opt(2, "all", msg(&WORKLOAD_POD_GROUP_ALL_DISRUPTION_MODE)),
    ],
};

/// `scheduling/v1alpha3.WorkloadPodGroupResourceClaim`.
pub static WORKLOAD_POD_GROUP_RESOURCE_CLAIM: Msg = Msg {
    name: "scheduling/v1alpha3.WorkloadPodGroupResourceClaim",
    fields: &[
        opt(1, "name", STR),
        opt(2, "resourceClaimName", STR),
        opt(3, "resourceClaimTemplateName", STR),
    ],
};

/// `scheduling/v1alpha3.WorkloadPodGroupBasicSchedulingPolicy`.
pub static WORKLOAD_POD_GROUP_BASIC_SCHEDULING_POLICY: Msg = Msg {
    name: "scheduling/v1alpha3.WorkloadPodGroupBasicSchedulingPolicy",
    fields: &[],
};

/// `scheduling/v1alpha3.WorkloadPodGroupGangSchedulingPolicy`.
pub static WORKLOAD_POD_GROUP_GANG_SCHEDULING_POLICY: Msg = Msg {
    name: "scheduling/v1alpha3.WorkloadPodGroupGangSchedulingPolicy",
    fields: &[opt(1, "minCount", I32)],
};

/// `scheduling/v1alpha3.TopologyConstraint`.
pub static TOPOLOGY_CONSTRAINT: Msg = Msg {
    name: "scheduling/v1alpha3.TopologyConstraint",
    fields: &[opt(1, "key", STR)],
};

/// `scheduling/v1alpha3.WorkloadPodGroupSingleDisruptionMode`.
pub static WORKLOAD_POD_GROUP_SINGLE_DISRUPTION_MODE: Msg = Msg {
    name: "scheduling/v1alpha3.WorkloadPodGroupSingleDisruptionMode",
    fields: &[],
};

/// `scheduling/v1alpha3.WorkloadPodGroupAllDisruptionMode`.
pub static WORKLOAD_POD_GROUP_ALL_DISRUPTION_MODE: Msg = Msg {
    name: "scheduling/v1alpha3.WorkloadPodGroupAllDisruptionMode",
    fields: &[],
};
