//! Tables for `autoscaling/v1` horizontal pod autoscalers, which older
//! clients still create.
//!
//! Field numbers, JSON names and types follow upstream's `generated.proto`
//! and `types.go`; `omit` marks Go value fields tagged `omitempty`, whose zero
//! value means unset (see [`super::schema::Card`]).

use super::meta;
use super::schema::{msg, omit, opt, Msg, I32, I64, STR, TIME};

/// `autoscaling/v1.HorizontalPodAutoscaler`.
pub static HORIZONTAL_POD_AUTOSCALER: Msg = Msg {
    name: "autoscaling/v1.HorizontalPodAutoscaler",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        opt(2, "spec", msg(&HORIZONTAL_POD_AUTOSCALER_SPEC)),
        opt(3, "status", msg(&HORIZONTAL_POD_AUTOSCALER_STATUS)),
    ],
};

/// `autoscaling/v1.HorizontalPodAutoscalerSpec`.
pub static HORIZONTAL_POD_AUTOSCALER_SPEC: Msg = Msg {
    name: "autoscaling/v1.HorizontalPodAutoscalerSpec",
    fields: &[
        opt(1, "scaleTargetRef", msg(&CROSS_VERSION_OBJECT_REFERENCE)),
        opt(2, "minReplicas", I32),
        opt(3, "maxReplicas", I32),
        opt(4, "targetCPUUtilizationPercentage", I32),
    ],
};

/// `autoscaling/v1.HorizontalPodAutoscalerStatus`.
pub static HORIZONTAL_POD_AUTOSCALER_STATUS: Msg = Msg {
    name: "autoscaling/v1.HorizontalPodAutoscalerStatus",
    fields: &[
        opt(1, "observedGeneration", I64),
        opt(2, "lastScaleTime", TIME),
        opt(3, "currentReplicas", I32),
        opt(4, "desiredReplicas", I32),
        opt(5, "currentCPUUtilizationPercentage", I32),
    ],
};

/// `autoscaling/v1.CrossVersionObjectReference`.
pub static CROSS_VERSION_OBJECT_REFERENCE: Msg = Msg {
    name: "autoscaling/v1.CrossVersionObjectReference",
    fields: &[
        opt(1, "kind", STR),
        opt(2, "name", STR),
        omit(3, "apiVersion", STR),
    ],
};
