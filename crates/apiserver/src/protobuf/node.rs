//! Tables for `node.k8s.io/v1`: runtime classes.
//!
//! Field numbers, JSON names and types follow upstream's `generated.proto`
//! and `types.go` (see [`super::schema::Card`] for `opt`/`omit`).

use super::meta;
use super::pod::TOLERATION;
use super::schema::{map, msg, opt, rep, Msg, QTY, STR};

/// `node/v1.RuntimeClass`.
pub static RUNTIME_CLASS: Msg = Msg {
    name: "node/v1.RuntimeClass",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        opt(2, "handler", STR),
        opt(3, "overhead", msg(&OVERHEAD)),
        opt(4, "scheduling", msg(&SCHEDULING)),
    ],
};

/// `node/v1.Overhead`.
pub static OVERHEAD: Msg = Msg {
    name: "node/v1.Overhead",
    fields: &[map(1, "podFixed", QTY)],
};

/// `node/v1.Scheduling`.
pub static SCHEDULING: Msg = Msg {
    name: "node/v1.Scheduling",
    fields: &[
        map(1, "nodeSelector", STR),
        rep(2, "tolerations", msg(&TOLERATION)),
    ],
};
