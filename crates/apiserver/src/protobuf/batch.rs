//! Tables for `batch/v1`: jobs and cron jobs.
//!
//! Field numbers, JSON names and types follow upstream's `generated.proto`
//! and `types.go`; `omit` marks Go value fields tagged `omitempty`, whose zero
//! value means unset (see [`super::schema::Card`]).

use super::schema::{msg, omit, opt, rep, Msg, BOOL, I32, I64, STR, TIME};
use super::{core, meta, scheduling};

/// `batch/v1.Job`.
pub static JOB: Msg = Msg {
    name: "batch/v1.Job",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        opt(2, "spec", msg(&JOB_SPEC)),
        opt(3, "status", msg(&JOB_STATUS)),
    ],
};

/// `batch/v1.CronJob`.
pub static CRON_JOB: Msg = Msg {
    name: "batch/v1.CronJob",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        opt(2, "spec", msg(&CRON_JOB_SPEC)),
        opt(3, "status", msg(&CRON_JOB_STATUS)),
    ],
};

/// `batch/v1.JobSpec`.
pub static JOB_SPEC: Msg = Msg {
    name: "batch/v1.JobSpec",
    fields: &[
        opt(1, "parallelism", I32),
        opt(2, "completions", I32),
        opt(3, "activeDeadlineSeconds", I64),
        opt(11, "podFailurePolicy", msg(&POD_FAILURE_POLICY)),
        opt(16, "successPolicy", msg(&SUCCESS_POLICY)),
        opt(7, "backoffLimit", I32),
        opt(12, "backoffLimitPerIndex", I32),
        opt(13, "maxFailedIndexes", I32),
        opt(4, "selector", msg(&meta::LABEL_SELECTOR)),
        opt(5, "manualSelector", BOOL),
        opt(6, "template", msg(&core::POD_TEMPLATE_SPEC)),
        opt(8, "ttlSecondsAfterFinished", I32),
        opt(9, "completionMode", STR),
        opt(10, "suspend", BOOL),
        opt(14, "podReplacementPolicy", STR),
        opt(15, "managedBy", STR),
        opt(17, "scheduling", msg(&JOB_SCHEDULING_CONFIGURATION)),
    ],
};

/// `batch/v1.JobStatus`.
pub static JOB_STATUS: Msg = Msg {
    name: "batch/v1.JobStatus",
    fields: &[
        rep(1, "conditions", msg(&JOB_CONDITION)),
        opt(2, "startTime", TIME),
        opt(3, "completionTime", TIME),
        omit(4, "active", I32),
        omit(5, "succeeded", I32),
        omit(6, "failed", I32),
        opt(11, "terminating", I32),
        omit(7, "completedIndexes", STR),
        opt(10, "failedIndexes", STR),
        opt(
            8,
            "uncountedTerminatedPods",
            msg(&UNCOUNTED_TERMINATED_PODS),
        ),
        opt(9, "ready", I32),
    ],
};

/// `batch/v1.CronJobSpec`.
pub static CRON_JOB_SPEC: Msg = Msg {
    name: "batch/v1.CronJobSpec",
    fields: &[
        opt(1, "schedule", STR),
        opt(8, "timeZone", STR),
        opt(2, "startingDeadlineSeconds", I64),
        omit(3, "concurrencyPolicy", STR),
        opt(4, "suspend", BOOL),
        opt(5, "jobTemplate", msg(&JOB_TEMPLATE_SPEC)),
        opt(6, "successfulJobsHistoryLimit", I32),
        opt(7, "failedJobsHistoryLimit", I32),
    ],
};

/// `batch/v1.CronJobStatus`.
pub static CRON_JOB_STATUS: Msg = Msg {
    name: "batch/v1.CronJobStatus",
    fields: &[
        rep(1, "active", msg(&core::OBJECT_REFERENCE)),
        opt(4, "lastScheduleTime", TIME),
        opt(5, "lastSuccessfulTime", TIME),
    ],
};

/// `batch/v1.PodFailurePolicy`.
pub static POD_FAILURE_POLICY: Msg = Msg {
    name: "batch/v1.PodFailurePolicy",
    fields: &[rep(1, "rules", msg(&POD_FAILURE_POLICY_RULE))],
};

/// `batch/v1.SuccessPolicy`.
pub static SUCCESS_POLICY: Msg = Msg {
    name: "batch/v1.SuccessPolicy",
    fields: &[rep(1, "rules", msg(&SUCCESS_POLICY_RULE))],
};

/// `batch/v1.JobSchedulingConfiguration`.
pub static JOB_SCHEDULING_CONFIGURATION: Msg = Msg {
    name: "batch/v1.JobSchedulingConfiguration",
    fields: &[
        opt(
            1,
            "schedulingPolicy",
            msg(&scheduling::WORKLOAD_POD_GROUP_SCHEDULING_POLICY),
        ),
        opt(
            2,
            "schedulingConstraints",
            msg(&scheduling::WORKLOAD_POD_GROUP_SCHEDULING_CONSTRAINTS),
        ),
        opt(
            3,
            "disruptionMode",
            msg(&scheduling::WORKLOAD_POD_GROUP_DISRUPTION_MODE),
        ),
        rep(
            4,
            "resourceClaims",
            msg(&scheduling::WORKLOAD_POD_GROUP_RESOURCE_CLAIM),
        ),
    ],
};

/// `batch/v1.JobCondition`.
pub static JOB_CONDITION: Msg = Msg {
    name: "batch/v1.JobCondition",
    fields: &[
        opt(1, "type", STR),
        opt(2, "status", STR),
        opt(3, "lastProbeTime", TIME),
        opt(4, "lastTransitionTime", TIME),
        omit(5, "reason", STR),
        omit(6, "message", STR),
    ],
};

/// `batch/v1.UncountedTerminatedPods`.
pub static UNCOUNTED_TERMINATED_PODS: Msg = Msg {
    name: "batch/v1.UncountedTerminatedPods",
    fields: &[rep(1, "succeeded", STR), rep(2, "failed", STR)],
};

/// `batch/v1.JobTemplateSpec`.
pub static JOB_TEMPLATE_SPEC: Msg = Msg {
    name: "batch/v1.JobTemplateSpec",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        opt(2, "spec", msg(&JOB_SPEC)),
    ],
};

/// `batch/v1.PodFailurePolicyRule`.
pub static POD_FAILURE_POLICY_RULE: Msg = Msg {
    name: "batch/v1.PodFailurePolicyRule",
    fields: &[
        opt(1, "action", STR),
        opt(
            2,
            "onExitCodes",
            msg(&POD_FAILURE_POLICY_ON_EXIT_CODES_REQUIREMENT),
        ),
        rep(
            3,
            "onPodConditions",
            msg(&POD_FAILURE_POLICY_ON_POD_CONDITIONS_PATTERN),
        ),
    ],
};

/// `batch/v1.SuccessPolicyRule`.
pub static SUCCESS_POLICY_RULE: Msg = Msg {
    name: "batch/v1.SuccessPolicyRule",
    fields: &[
        opt(1, "succeededIndexes", STR),
        opt(2, "succeededCount", I32),
    ],
};

/// `batch/v1.PodFailurePolicyOnExitCodesRequirement`.
pub static POD_FAILURE_POLICY_ON_EXIT_CODES_REQUIREMENT: Msg = Msg {
    name: "batch/v1.PodFailurePolicyOnExitCodesRequirement",
    fields: &[
        opt(1, "containerName", STR),
        opt(2, "operator", STR),
        rep(3, "values", I32),
    ],
};

/// `batch/v1.PodFailurePolicyOnPodConditionsPattern`.
pub static POD_FAILURE_POLICY_ON_POD_CONDITIONS_PATTERN: Msg = Msg {
    name: "batch/v1.PodFailurePolicyOnPodConditionsPattern",
    fields: &[opt(1, "type", STR), opt(2, "status", STR)],
};
