//! Tables for `policy/v1`: pod disruption budgets and evictions (`kubectl drain`).
//!
//! Field numbers, JSON names and types follow upstream's `generated.proto`
//! and `types.go`; `omit` marks Go value fields tagged `omitempty`, whose zero
//! value means unset (see [`super::schema::Card`]).

use super::meta;
use super::schema::{map, msg, omit, opt, rep, Msg, I32, I64, INT_OR_STR, STR, TIME};

/// `policy/v1.PodDisruptionBudget`.
pub static POD_DISRUPTION_BUDGET: Msg = Msg {
    name: "policy/v1.PodDisruptionBudget",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        opt(2, "spec", msg(&POD_DISRUPTION_BUDGET_SPEC)),
        opt(3, "status", msg(&POD_DISRUPTION_BUDGET_STATUS)),
    ],
};

/// `policy/v1.Eviction`.
pub static EVICTION: Msg = Msg {
    name: "policy/v1.Eviction",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        opt(2, "deleteOptions", msg(&meta::DELETE_OPTIONS)),
    ],
};

/// `policy/v1.PodDisruptionBudgetSpec`.
pub static POD_DISRUPTION_BUDGET_SPEC: Msg = Msg {
    name: "policy/v1.PodDisruptionBudgetSpec",
    fields: &[
        opt(1, "minAvailable", INT_OR_STR),
        opt(2, "selector", msg(&meta::LABEL_SELECTOR)),
        opt(3, "maxUnavailable", INT_OR_STR),
        opt(4, "unhealthyPodEvictionPolicy", STR),
    ],
};

/// `policy/v1.PodDisruptionBudgetStatus`.
pub static POD_DISRUPTION_BUDGET_STATUS: Msg = Msg {
    name: "policy/v1.PodDisruptionBudgetStatus",
    fields: &[
        omit(1, "observedGeneration", I64),
        map(2, "disruptedPods", TIME),
        opt(3, "disruptionsAllowed", I32),
        opt(4, "currentHealthy", I32),
        opt(5, "desiredHealthy", I32),
        opt(6, "expectedPods", I32),
        rep(7, "conditions", msg(&meta::CONDITION)),
    ],
};
