//! Tables for `authentication.k8s.io/v1`: token requests (`kubectl create token`),
//! token reviews and self-subject reviews (`kubectl auth whoami`).
//!
//! Field numbers, JSON names and types follow upstream's `generated.proto`
//! and `types.go`; `omit` marks Go value fields tagged `omitempty`, whose zero
//! value means unset (see [`super::schema::Card`]).

use super::meta;
use super::schema::{map, msg, omit, opt, rep, Msg, BOOL, I64, STR, STR_LIST, TIME};

/// `authentication/v1.TokenRequest`.
pub static TOKEN_REQUEST: Msg = Msg {
    name: "authentication/v1.TokenRequest",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        opt(2, "spec", msg(&TOKEN_REQUEST_SPEC)),
        opt(3, "status", msg(&TOKEN_REQUEST_STATUS)),
    ],
};

/// `authentication/v1.SelfSubjectReview`.
pub static SELF_SUBJECT_REVIEW: Msg = Msg {
    name: "authentication/v1.SelfSubjectReview",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        opt(2, "status", msg(&SELF_SUBJECT_REVIEW_STATUS)),
    ],
};

/// `authentication/v1.TokenReview`.
pub static TOKEN_REVIEW: Msg = Msg {
    name: "authentication/v1.TokenReview",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        opt(2, "spec", msg(&TOKEN_REVIEW_SPEC)),
        opt(3, "status", msg(&TOKEN_REVIEW_STATUS)),
    ],
};

/// `authentication/v1.TokenRequestSpec`.
pub static TOKEN_REQUEST_SPEC: Msg = Msg {
    name: "authentication/v1.TokenRequestSpec",
    fields: &[
        rep(1, "audiences", STR),
        opt(4, "expirationSeconds", I64),
        opt(3, "boundObjectRef", msg(&BOUND_OBJECT_REFERENCE)),
        map(5, "attestations", STR_LIST),
    ],
};

/// `authentication/v1.TokenRequestStatus`.
pub static TOKEN_REQUEST_STATUS: Msg = Msg {
    name: "authentication/v1.TokenRequestStatus",
    fields: &[opt(1, "token", STR), opt(2, "expirationTimestamp", TIME)],
};

/// `authentication/v1.SelfSubjectReviewStatus`.
pub static SELF_SUBJECT_REVIEW_STATUS: Msg = Msg {
    name: "authentication/v1.SelfSubjectReviewStatus",
    fields: &[opt(1, "userInfo", msg(&USER_INFO))],
};

/// `authentication/v1.TokenReviewSpec`.
pub static TOKEN_REVIEW_SPEC: Msg = Msg {
    name: "authentication/v1.TokenReviewSpec",
    fields: &[omit(1, "token", STR), rep(2, "audiences", STR)],
};

/// `authentication/v1.TokenReviewStatus`.
pub static TOKEN_REVIEW_STATUS: Msg = Msg {
    name: "authentication/v1.TokenReviewStatus",
    fields: &[
        omit(1, "authenticated", BOOL),
        opt(2, "user", msg(&USER_INFO)),
        rep(4, "audiences", STR),
        omit(3, "error", STR),
    ],
};

/// `authentication/v1.BoundObjectReference`.
pub static BOUND_OBJECT_REFERENCE: Msg = Msg {
    name: "authentication/v1.BoundObjectReference",
    fields: &[
        omit(1, "kind", STR),
        omit(2, "apiVersion", STR),
        omit(3, "name", STR),
        omit(4, "uid", STR),
    ],
};

/// `authentication/v1.UserInfo`.
pub static USER_INFO: Msg = Msg {
    name: "authentication/v1.UserInfo",
    fields: &[
        omit(1, "username", STR),
        omit(2, "uid", STR),
        rep(3, "groups", STR),
        map(4, "extra", STR_LIST),
    ],
};
