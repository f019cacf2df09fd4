//! Tables for `apps/v1`: deployments, replica sets, stateful sets and daemon sets.
//!
//! Field numbers, JSON names and types follow upstream's `generated.proto`
//! and `types.go`; `omit` marks Go value fields tagged `omitempty`, whose zero
//! value means unset (see [`super::schema::Card`]).

use super::schema::{msg, omit, opt, rep, Msg, BOOL, I32, I64, INT_OR_STR, STR, TIME};
use super::{core, meta};

/// `apps/v1.Deployment`.
pub static DEPLOYMENT: Msg = Msg {
    name: "apps/v1.Deployment",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        opt(2, "spec", msg(&DEPLOYMENT_SPEC)),
        opt(3, "status", msg(&DEPLOYMENT_STATUS)),
    ],
};

/// `apps/v1.ReplicaSet`.
pub static REPLICA_SET: Msg = Msg {
    name: "apps/v1.ReplicaSet",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        opt(2, "spec", msg(&REPLICA_SET_SPEC)),
        opt(3, "status", msg(&REPLICA_SET_STATUS)),
    ],
};

/// `apps/v1.StatefulSet`.
pub static STATEFUL_SET: Msg = Msg {
    name: "apps/v1.StatefulSet",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        opt(2, "spec", msg(&STATEFUL_SET_SPEC)),
        opt(3, "status", msg(&STATEFUL_SET_STATUS)),
    ],
};

/// `apps/v1.DaemonSet`.
pub static DAEMON_SET: Msg = Msg {
    name: "apps/v1.DaemonSet",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        opt(2, "spec", msg(&DAEMON_SET_SPEC)),
        opt(3, "status", msg(&DAEMON_SET_STATUS)),
    ],
};

/// `apps/v1.DeploymentSpec`.
pub static DEPLOYMENT_SPEC: Msg = Msg {
    name: "apps/v1.DeploymentSpec",
    fields: &[
        opt(1, "replicas", I32),
        opt(2, "selector", msg(&meta::LABEL_SELECTOR)),
        opt(3, "template", msg(&core::POD_TEMPLATE_SPEC)),
        opt(4, "strategy", msg(&DEPLOYMENT_STRATEGY)),
        omit(5, "minReadySeconds", I32),
        opt(6, "revisionHistoryLimit", I32),
        omit(7, "paused", BOOL),
        opt(9, "progressDeadlineSeconds", I32),
    ],
};

/// `apps/v1.DeploymentStatus`.
pub static DEPLOYMENT_STATUS: Msg = Msg {
    name: "apps/v1.DeploymentStatus",
    fields: &[
        omit(1, "observedGeneration", I64),
        omit(2, "replicas", I32),
        omit(3, "updatedReplicas", I32),
        omit(7, "readyReplicas", I32),
        omit(4, "availableReplicas", I32),
        omit(5, "unavailableReplicas", I32),
        opt(9, "terminatingReplicas", I32),
        rep(6, "conditions", msg(&DEPLOYMENT_CONDITION)),
        opt(8, "collisionCount", I32),
    ],
};

/// `apps/v1.ReplicaSetSpec`.
pub static REPLICA_SET_SPEC: Msg = Msg {
    name: "apps/v1.ReplicaSetSpec",
    fields: &[
        opt(1, "replicas", I32),
        omit(4, "minReadySeconds", I32),
        opt(2, "selector", msg(&meta::LABEL_SELECTOR)),
        opt(3, "template", msg(&core::POD_TEMPLATE_SPEC)),
    ],
};

/// `apps/v1.ReplicaSetStatus`.
pub static REPLICA_SET_STATUS: Msg = Msg {
    name: "apps/v1.ReplicaSetStatus",
    fields: &[
        opt(1, "replicas", I32),
        omit(2, "fullyLabeledReplicas", I32),
        omit(4, "readyReplicas", I32),
        omit(5, "availableReplicas", I32),
        opt(7, "terminatingReplicas", I32),
        omit(3, "observedGeneration", I64),
        rep(6, "conditions", msg(&REPLICA_SET_CONDITION)),
    ],
};

/// `apps/v1.StatefulSetSpec`.
pub static STATEFUL_SET_SPEC: Msg = Msg {
    name: "apps/v1.StatefulSetSpec",
    fields: &[
        opt(1, "replicas", I32),
        opt(2, "selector", msg(&meta::LABEL_SELECTOR)),
        opt(3, "template", msg(&core::POD_TEMPLATE_SPEC)),
        rep(
            4,
            "volumeClaimTemplates",
            msg(&core::PERSISTENT_VOLUME_CLAIM),
        ),
        opt(5, "serviceName", STR),
        omit(6, "podManagementPolicy", STR),
        opt(7, "updateStrategy", msg(&STATEFUL_SET_UPDATE_STRATEGY)),
        opt(8, "revisionHistoryLimit", I32),
        omit(9, "minReadySeconds", I32),
        opt(
            10,
            "persistentVolumeClaimRetentionPolicy",
            msg(&STATEFUL_SET_PERSISTENT_VOLUME_CLAIM_RETENTION_POLICY),
        ),
        opt(11, "ordinals", msg(&STATEFUL_SET_ORDINALS)),
    ],
};

/// `apps/v1.StatefulSetStatus`.
pub static STATEFUL_SET_STATUS: Msg = Msg {
    name: "apps/v1.StatefulSetStatus",
    fields: &[
        omit(1, "observedGeneration", I64),
        opt(2, "replicas", I32),
        omit(3, "readyReplicas", I32),
        omit(4, "currentReplicas", I32),
        omit(5, "updatedReplicas", I32),
        omit(6, "currentRevision", STR),
        omit(7, "updateRevision", STR),
        opt(9, "collisionCount", I32),
        rep(10, "conditions", msg(&STATEFUL_SET_CONDITION)),
        opt(11, "availableReplicas", I32),
    ],
};

/// `apps/v1.DaemonSetSpec`.
pub static DAEMON_SET_SPEC: Msg = Msg {
    name: "apps/v1.DaemonSetSpec",
    fields: &[
        opt(1, "selector", msg(&meta::LABEL_SELECTOR)),
        opt(2, "template", msg(&core::POD_TEMPLATE_SPEC)),
        opt(3, "updateStrategy", msg(&DAEMON_SET_UPDATE_STRATEGY)),
        omit(4, "minReadySeconds", I32),
        opt(6, "revisionHistoryLimit", I32),
    ],
};

/// `apps/v1.DaemonSetStatus`.
pub static DAEMON_SET_STATUS: Msg = Msg {
    name: "apps/v1.DaemonSetStatus",
    fields: &[
        opt(1, "currentNumberScheduled", I32),
        opt(2, "numberMisscheduled", I32),
        opt(3, "desiredNumberScheduled", I32),
        opt(4, "numberReady", I32),
        omit(5, "observedGeneration", I64),
        omit(6, "updatedNumberScheduled", I32),
        omit(7, "numberAvailable", I32),
        omit(8, "numberUnavailable", I32),
        opt(9, "collisionCount", I32),
        rep(10, "conditions", msg(&DAEMON_SET_CONDITION)),
    ],
};

/// `apps/v1.DeploymentStrategy`.
pub static DEPLOYMENT_STRATEGY: Msg = Msg {
    name: "apps/v1.DeploymentStrategy",
    fields: &[
        omit(1, "type", STR),
        opt(2, "rollingUpdate", msg(&ROLLING_UPDATE_DEPLOYMENT)),
    ],
};

/// `apps/v1.DeploymentCondition`.
pub static DEPLOYMENT_CONDITION: Msg = Msg {
    name: "apps/v1.DeploymentCondition",
    fields: &[
        opt(1, "type", STR),
        opt(2, "status", STR),
        opt(6, "lastUpdateTime", TIME),
        opt(7, "lastTransitionTime", TIME),
        omit(4, "reason", STR),
        omit(5, "message", STR),
    ],
};

/// `apps/v1.ReplicaSetCondition`.
pub static REPLICA_SET_CONDITION: Msg = Msg {
    name: "apps/v1.ReplicaSetCondition",
    fields: &[
        opt(1, "type", STR),
        opt(2, "status", STR),
        opt(3, "lastTransitionTime", TIME),
        omit(4, "reason", STR),
        omit(5, "message", STR),
    ],
};

/// `apps/v1.StatefulSetUpdateStrategy`.
pub static STATEFUL_SET_UPDATE_STRATEGY: Msg = Msg {
    name: "apps/v1.StatefulSetUpdateStrategy",
    fields: &[
        omit(1, "type", STR),
        opt(
            2,
            "rollingUpdate",
            msg(&ROLLING_UPDATE_STATEFUL_SET_STRATEGY),
        ),
    ],
};

/// `apps/v1.StatefulSetPersistentVolumeClaimRetentionPolicy`.
pub static STATEFUL_SET_PERSISTENT_VOLUME_CLAIM_RETENTION_POLICY: Msg = Msg {
    name: "apps/v1.StatefulSetPersistentVolumeClaimRetentionPolicy",
    fields: &[omit(1, "whenDeleted", STR), omit(2, "whenScaled", STR)],
};

/// `apps/v1.StatefulSetOrdinals`.
pub static STATEFUL_SET_ORDINALS: Msg = Msg {
    name: "apps/v1.StatefulSetOrdinals",
    fields: &[opt(1, "start", I32)],
};

/// `apps/v1.StatefulSetCondition`.
pub static STATEFUL_SET_CONDITION: Msg = Msg {
    name: "apps/v1.StatefulSetCondition",
    fields: &[
        opt(1, "type", STR),
        opt(2, "status", STR),
        opt(3, "lastTransitionTime", TIME),
        omit(4, "reason", STR),
        omit(5, "message", STR),
    ],
};

/// `apps/v1.DaemonSetUpdateStrategy`.
pub static DAEMON_SET_UPDATE_STRATEGY: Msg = Msg {
    name: "apps/v1.DaemonSetUpdateStrategy",
    fields: &[
        omit(1, "type", STR),
        opt(2, "rollingUpdate", msg(&ROLLING_UPDATE_DAEMON_SET)),
    ],
};

/// `apps/v1.DaemonSetCondition`.
pub static DAEMON_SET_CONDITION: Msg = Msg {
    name: "apps/v1.DaemonSetCondition",
    fields: &[
        opt(1, "type", STR),
        opt(2, "status", STR),
        opt(3, "lastTransitionTime", TIME),
        omit(4, "reason", STR),
        omit(5, "message", STR),
    ],
};

/// `apps/v1.RollingUpdateDeployment`.
pub static ROLLING_UPDATE_DEPLOYMENT: Msg = Msg {
    name: "apps/v1.RollingUpdateDeployment",
    fields: &[
        opt(1, "maxUnavailable", INT_OR_STR),
        opt(2, "maxSurge", INT_OR_STR),
    ],
};

/// `apps/v1.RollingUpdateStatefulSetStrategy`.
pub static ROLLING_UPDATE_STATEFUL_SET_STRATEGY: Msg = Msg {
    name: "apps/v1.RollingUpdateStatefulSetStrategy",
    fields: &[
        opt(1, "partition", I32),
        opt(2, "maxUnavailable", INT_OR_STR),
    ],
};

/// `apps/v1.RollingUpdateDaemonSet`.
pub static ROLLING_UPDATE_DAEMON_SET: Msg = Msg {
    name: "apps/v1.RollingUpdateDaemonSet",
    fields: &[
        opt(1, "maxUnavailable", INT_OR_STR),
        opt(2, "maxSurge", INT_OR_STR),
    ],
};
