//! Tables for `authorization.k8s.io/v1`: access reviews (`kubectl auth can-i`)
//! and rules reviews (`kubectl auth can-i --list`).
//!
//! Field numbers, JSON names and types follow upstream's `generated.proto`
//! and `types.go`; `omit` marks Go value fields tagged `omitempty`, whose zero
//! value means unset (see [`super::schema::Card`]).

use super::meta;
use super::schema::{map, msg, omit, opt, rep, Msg, BOOL, STR, STR_LIST};

/// `authorization/v1.SelfSubjectAccessReview`.
pub static SELF_SUBJECT_ACCESS_REVIEW: Msg = Msg {
    name: "authorization/v1.SelfSubjectAccessReview",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        opt(2, "spec", msg(&SELF_SUBJECT_ACCESS_REVIEW_SPEC)),
        opt(3, "status", msg(&SUBJECT_ACCESS_REVIEW_STATUS)),
    ],
};

/// `authorization/v1.SelfSubjectRulesReview`.
pub static SELF_SUBJECT_RULES_REVIEW: Msg = Msg {
    name: "authorization/v1.SelfSubjectRulesReview",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        opt(2, "spec", msg(&SELF_SUBJECT_RULES_REVIEW_SPEC)),
        opt(3, "status", msg(&SUBJECT_RULES_REVIEW_STATUS)),
    ],
};

/// `authorization/v1.SubjectAccessReview`.
pub static SUBJECT_ACCESS_REVIEW: Msg = Msg {
    name: "authorization/v1.SubjectAccessReview",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        opt(2, "spec", msg(&SUBJECT_ACCESS_REVIEW_SPEC)),
        opt(3, "status", msg(&SUBJECT_ACCESS_REVIEW_STATUS)),
    ],
};

/// `authorization/v1.LocalSubjectAccessReview`.
pub static LOCAL_SUBJECT_ACCESS_REVIEW: Msg = Msg {
    name: "authorization/v1.LocalSubjectAccessReview",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        opt(2, "spec", msg(&SUBJECT_ACCESS_REVIEW_SPEC)),
        opt(3, "status", msg(&SUBJECT_ACCESS_REVIEW_STATUS)),
    ],
};

/// `authorization/v1.SelfSubjectAccessReviewSpec`.
pub static SELF_SUBJECT_ACCESS_REVIEW_SPEC: Msg = Msg {
    name: "authorization/v1.SelfSubjectAccessReviewSpec",
    fields: &[
        opt(1, "resourceAttributes", msg(&RESOURCE_ATTRIBUTES)),
        opt(2, "nonResourceAttributes", msg(&NON_RESOURCE_ATTRIBUTES)),
    ],
};

/// `authorization/v1.SubjectAccessReviewStatus`.
pub static SUBJECT_ACCESS_REVIEW_STATUS: Msg = Msg {
    name: "authorization/v1.SubjectAccessReviewStatus",
    fields: &[
        opt(1, "allowed", BOOL),
        omit(4, "denied", BOOL),
        omit(2, "reason", STR),
        omit(3, "evaluationError", STR),
    ],
};

/// `authorization/v1.SelfSubjectRulesReviewSpec`.
pub static SELF_SUBJECT_RULES_REVIEW_SPEC: Msg = Msg {
    name: "authorization/v1.SelfSubjectRulesReviewSpec",
    fields: &[omit(1, "namespace", STR)],
};

/// `authorization/v1.SubjectRulesReviewStatus`.
pub static SUBJECT_RULES_REVIEW_STATUS: Msg = Msg {
    name: "authorization/v1.SubjectRulesReviewStatus",
    fields: &[
        rep(1, "resourceRules", msg(&RESOURCE_RULE)),
        rep(2, "nonResourceRules", msg(&NON_RESOURCE_RULE)),
        opt(3, "incomplete", BOOL),
        omit(4, "evaluationError", STR),
    ],
};

/// `authorization/v1.SubjectAccessReviewSpec`.
pub static SUBJECT_ACCESS_REVIEW_SPEC: Msg = Msg {
    name: "authorization/v1.SubjectAccessReviewSpec",
    fields: &[
        opt(1, "resourceAttributes", msg(&RESOURCE_ATTRIBUTES)),
        opt(2, "nonResourceAttributes", msg(&NON_RESOURCE_ATTRIBUTES)),
        omit(3, "user", STR),
        rep(4, "groups", STR),
        map(5, "extra", STR_LIST),
        omit(6, "uid", STR),
    ],
};

/// `authorization/v1.ResourceAttributes`.
pub static RESOURCE_ATTRIBUTES: Msg = Msg {
    name: "authorization/v1.ResourceAttributes",
    fields: &[
        omit(1, "namespace", STR),
        omit(2, "verb", STR),
        omit(3, "group", STR),
        omit(4, "version", STR),
        omit(5, "resource", STR),
        omit(6, "subresource", STR),
        omit(7, "name", STR),
        opt(8, "fieldSelector", msg(&FIELD_SELECTOR_ATTRIBUTES)),
        opt(9, "labelSelector", msg(&LABEL_SELECTOR_ATTRIBUTES)),
    ],
};

/// `authorization/v1.NonResourceAttributes`.
pub static NON_RESOURCE_ATTRIBUTES: Msg = Msg {
    name: "authorization/v1.NonResourceAttributes",
    fields: &[omit(1, "path", STR), omit(2, "verb", STR)],
};

/// `authorization/v1.ResourceRule`.
pub static RESOURCE_RULE: Msg = Msg {
    name: "authorization/v1.ResourceRule",
    fields: &[
        rep(1, "verbs", STR),
        rep(2, "apiGroups", STR),
        rep(3, "resources", STR),
        rep(4, "resourceNames", STR),
    ],
};

/// `authorization/v1.NonResourceRule`.
pub static NON_RESOURCE_RULE: Msg = Msg {
    name: "authorization/v1.NonResourceRule",
    fields: &[rep(1, "verbs", STR), rep(2, "nonResourceURLs", STR)],
};

/// `authorization/v1.FieldSelectorAttributes`.
pub static FIELD_SELECTOR_ATTRIBUTES: Msg = Msg {
    name: "authorization/v1.FieldSelectorAttributes",
    fields: &[
        omit(1, "rawSelector", STR),
        rep(2, "requirements", msg(&meta::FIELD_SELECTOR_REQUIREMENT)),
    ],
};

/// `authorization/v1.LabelSelectorAttributes`.
pub static LABEL_SELECTOR_ATTRIBUTES: Msg = Msg {
    name: "authorization/v1.LabelSelectorAttributes",
    fields: &[
        omit(1, "rawSelector", STR),
        rep(2, "requirements", msg(&meta::LABEL_SELECTOR_REQUIREMENT)),
    ],
};
