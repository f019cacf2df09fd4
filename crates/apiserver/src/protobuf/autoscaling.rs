//! Tables for `autoscaling/v2` horizontal pod autoscalers (`kubectl autoscale`).
//!
//! Field numbers, JSON names and types follow upstream's `generated.proto`
//! and `types.go`; `omit` marks Go value fields tagged `omitempty`, whose zero
//! value means unset (see [`super::schema::Card`]).

use super::meta;
use super::schema::{msg, omit, opt, rep, Msg, I32, I64, QTY, STR, TIME};

/// `autoscaling/v2.HorizontalPodAutoscaler`.
pub static HORIZONTAL_POD_AUTOSCALER: Msg = Msg {
    name: "autoscaling/v2.HorizontalPodAutoscaler",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        opt(2, "spec", msg(&HORIZONTAL_POD_AUTOSCALER_SPEC)),
        opt(3, "status", msg(&HORIZONTAL_POD_AUTOSCALER_STATUS)),
    ],
};

/// `autoscaling/v2.HorizontalPodAutoscalerSpec`.
pub static HORIZONTAL_POD_AUTOSCALER_SPEC: Msg = Msg {
    name: "autoscaling/v2.HorizontalPodAutoscalerSpec",
    fields: &[
        opt(1, "scaleTargetRef", msg(&CROSS_VERSION_OBJECT_REFERENCE)),
        opt(2, "minReplicas", I32),
        opt(3, "maxReplicas", I32),
        rep(4, "metrics", msg(&METRIC_SPEC)),
        opt(5, "behavior", msg(&HORIZONTAL_POD_AUTOSCALER_BEHAVIOR)),
    ],
};

/// `autoscaling/v2.HorizontalPodAutoscalerStatus`.
pub static HORIZONTAL_POD_AUTOSCALER_STATUS: Msg = Msg {
    name: "autoscaling/v2.HorizontalPodAutoscalerStatus",
    fields: &[
        opt(1, "observedGeneration", I64),
        opt(2, "lastScaleTime", TIME),
        omit(3, "currentReplicas", I32),
        opt(4, "desiredReplicas", I32),
        rep(5, "currentMetrics", msg(&METRIC_STATUS)),
        rep(6, "conditions", msg(&HORIZONTAL_POD_AUTOSCALER_CONDITION)),
    ],
};

/// `autoscaling/v2.CrossVersionObjectReference`.
pub static CROSS_VERSION_OBJECT_REFERENCE: Msg = Msg {
    name: "autoscaling/v2.CrossVersionObjectReference",
    fields: &[
        opt(1, "kind", STR),
        opt(2, "name", STR),
        omit(3, "apiVersion", STR),
    ],
};

/// `autoscaling/v2.MetricSpec`.
pub static METRIC_SPEC: Msg = Msg {
    name: "autoscaling/v2.MetricSpec",
    fields: &[
        opt(1, "type", STR),
        opt(2, "object", msg(&OBJECT_METRIC_SOURCE)),
        opt(3, "pods", msg(&PODS_METRIC_SOURCE)),
        opt(4, "resource", msg(&RESOURCE_METRIC_SOURCE)),
        opt(
            7,
            "containerResource",
            msg(&CONTAINER_RESOURCE_METRIC_SOURCE),
        ),
        opt(5, "external", msg(&EXTERNAL_METRIC_SOURCE)),
    ],
};

/// `autoscaling/v2.HorizontalPodAutoscalerBehavior`.
pub static HORIZONTAL_POD_AUTOSCALER_BEHAVIOR: Msg = Msg {
    name: "autoscaling/v2.HorizontalPodAutoscalerBehavior",
    fields: &[
        opt(1, "scaleUp", msg(&HPA_SCALING_RULES)),
        opt(2, "scaleDown", msg(&HPA_SCALING_RULES)),
    ],
};

/// `autoscaling/v2.MetricStatus`.
pub static METRIC_STATUS: Msg = Msg {
    name: "autoscaling/v2.MetricStatus",
    fields: &[
        opt(1, "type", STR),
        opt(2, "object", msg(&OBJECT_METRIC_STATUS)),
        opt(3, "pods", msg(&PODS_METRIC_STATUS)),
        opt(4, "resource", msg(&RESOURCE_METRIC_STATUS)),
        opt(
            7,
            "containerResource",
            msg(&CONTAINER_RESOURCE_METRIC_STATUS),
        ),
        opt(5, "external", msg(&EXTERNAL_METRIC_STATUS)),
    ],
};

/// `autoscaling/v2.HorizontalPodAutoscalerCondition`.
pub static HORIZONTAL_POD_AUTOSCALER_CONDITION: Msg = Msg {
    name: "autoscaling/v2.HorizontalPodAutoscalerCondition",
    fields: &[
        opt(1, "type", STR),
        opt(2, "status", STR),
        opt(3, "lastTransitionTime", TIME),
        omit(4, "reason", STR),
        omit(5, "message", STR),
        opt(6, "observedGeneration", I64),
    ],
};

/// `autoscaling/v2.ObjectMetricSource`.
pub static OBJECT_METRIC_SOURCE: Msg = Msg {
    name: "autoscaling/v2.ObjectMetricSource",
    fields: &[
        opt(1, "describedObject", msg(&CROSS_VERSION_OBJECT_REFERENCE)),
        opt(2, "target", msg(&METRIC_TARGET)),
        opt(3, "metric", msg(&METRIC_IDENTIFIER)),
    ],
};

/// `autoscaling/v2.PodsMetricSource`.
pub static PODS_METRIC_SOURCE: Msg = Msg {
    name: "autoscaling/v2.PodsMetricSource",
    fields: &[
        opt(1, "metric", msg(&METRIC_IDENTIFIER)),
        opt(2, "target", msg(&METRIC_TARGET)),
    ],
};

/// `autoscaling/v2.ResourceMetricSource`.
pub static RESOURCE_METRIC_SOURCE: Msg = Msg {
    name: "autoscaling/v2.ResourceMetricSource",
    fields: &[opt(1, "name", STR), opt(2, "target", msg(&METRIC_TARGET))],
};

/// `autoscaling/v2.ContainerResourceMetricSource`.
pub static CONTAINER_RESOURCE_METRIC_SOURCE: Msg = Msg {
    name: "autoscaling/v2.ContainerResourceMetricSource",
    fields: &[
        opt(1, "name", STR),
        opt(2, "target", msg(&METRIC_TARGET)),
        opt(3, "container", STR),
    ],
};

/// `autoscaling/v2.ExternalMetricSource`.
pub static EXTERNAL_METRIC_SOURCE: Msg = Msg {
    name: "autoscaling/v2.ExternalMetricSource",
    fields: &[
        opt(1, "metric", msg(&METRIC_IDENTIFIER)),
        opt(2, "target", msg(&METRIC_TARGET)),
    ],
};

/// `autoscaling/v2.HPAScalingRules`.
pub static HPA_SCALING_RULES: Msg = Msg {
    name: "autoscaling/v2.HPAScalingRules",
    fields: &[
        opt(3, "stabilizationWindowSeconds", I32),
        opt(1, "selectPolicy", STR),
        rep(2, "policies", msg(&HPA_SCALING_POLICY)),
        opt(4, "tolerance", QTY),
    ],
};

/// `autoscaling/v2.ObjectMetricStatus`.
pub static OBJECT_METRIC_STATUS: Msg = Msg {
    name: "autoscaling/v2.ObjectMetricStatus",
    fields: &[
        opt(1, "metric", msg(&METRIC_IDENTIFIER)),
        opt(2, "current", msg(&METRIC_VALUE_STATUS)),
        opt(3, "describedObject", msg(&CROSS_VERSION_OBJECT_REFERENCE)),
    ],
};

/// `autoscaling/v2.PodsMetricStatus`.
pub static PODS_METRIC_STATUS: Msg = Msg {
    name: "autoscaling/v2.PodsMetricStatus",
    fields: &[
        opt(1, "metric", msg(&METRIC_IDENTIFIER)),
        opt(2, "current", msg(&METRIC_VALUE_STATUS)),
    ],
};

/// `autoscaling/v2.ResourceMetricStatus`.
pub static RESOURCE_METRIC_STATUS: Msg = Msg {
    name: "autoscaling/v2.ResourceMetricStatus",
    fields: &[
        opt(1, "name", STR),
        opt(2, "current", msg(&METRIC_VALUE_STATUS)),
    ],
};

/// `autoscaling/v2.ContainerResourceMetricStatus`.
pub static CONTAINER_RESOURCE_METRIC_STATUS: Msg = Msg {
    name: "autoscaling/v2.ContainerResourceMetricStatus",
    fields: &[
        opt(1, "name", STR),
        opt(2, "current", msg(&METRIC_VALUE_STATUS)),
        opt(3, "container", STR),
    ],
};

/// `autoscaling/v2.ExternalMetricStatus`.
pub static EXTERNAL_METRIC_STATUS: Msg = Msg {
    name: "autoscaling/v2.ExternalMetricStatus",
    fields: &[
        opt(1, "metric", msg(&METRIC_IDENTIFIER)),
        opt(2, "current", msg(&METRIC_VALUE_STATUS)),
    ],
};

/// `autoscaling/v2.MetricTarget`.
pub static METRIC_TARGET: Msg = Msg {
    name: "autoscaling/v2.MetricTarget",
    fields: &[
        opt(1, "type", STR),
        opt(2, "value", QTY),
        opt(3, "averageValue", QTY),
        opt(4, "averageUtilization", I32),
    ],
};

/// `autoscaling/v2.MetricIdentifier`.
pub static METRIC_IDENTIFIER: Msg = Msg {
    name: "autoscaling/v2.MetricIdentifier",
    fields: &[
        opt(1, "name", STR),
        opt(2, "selector", msg(&meta::LABEL_SELECTOR)),
    ],
};

/// `autoscaling/v2.HPAScalingPolicy`.
pub static HPA_SCALING_POLICY: Msg = Msg {
    name: "autoscaling/v2.HPAScalingPolicy",
    fields: &[
        opt(1, "type", STR),
        opt(2, "value", I32),
        opt(3, "periodSeconds", I32),
    ],
};

/// `autoscaling/v2.MetricValueStatus`.
pub static METRIC_VALUE_STATUS: Msg = Msg {
    name: "autoscaling/v2.MetricValueStatus",
    fields: &[
        opt(1, "value", QTY),
        opt(2, "averageValue", QTY),
        opt(3, "averageUtilization", I32),
    ],
};
