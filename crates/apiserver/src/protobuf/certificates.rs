//! Tables for `certificates.k8s.io/v1` certificate signing requests
//! (`kubectl certificate approve|deny` sends the whole object).
//!
//! Field numbers, JSON names and types follow upstream's `generated.proto`
//! and `types.go`; `omit` marks Go value fields tagged `omitempty`, whose zero
//! value means unset (see [`super::schema::Card`]).

use super::meta;
use super::schema::{map, msg, omit, opt, rep, Msg, BYTES, I32, STR, STR_LIST, TIME};

/// `certificates/v1.CertificateSigningRequest`.
pub static CERTIFICATE_SIGNING_REQUEST: Msg = Msg {
    name: "certificates/v1.CertificateSigningRequest",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        opt(2, "spec", msg(&CERTIFICATE_SIGNING_REQUEST_SPEC)),
        opt(3, "status", msg(&CERTIFICATE_SIGNING_REQUEST_STATUS)),
    ],
};

/// `certificates/v1.CertificateSigningRequestSpec`.
pub static CERTIFICATE_SIGNING_REQUEST_SPEC: Msg = Msg {
    name: "certificates/v1.CertificateSigningRequestSpec",
    fields: &[
        opt(1, "request", BYTES),
        opt(7, "signerName", STR),
        opt(8, "expirationSeconds", I32),
        rep(5, "usages", STR),
        omit(2, "username", STR),
        omit(3, "uid", STR),
        rep(4, "groups", STR),
        map(6, "extra", STR_LIST),
    ],
};

/// `certificates/v1.CertificateSigningRequestStatus`.
pub static CERTIFICATE_SIGNING_REQUEST_STATUS: Msg = Msg {
    name: "certificates/v1.CertificateSigningRequestStatus",
    fields: &[
        rep(1, "conditions", msg(&CERTIFICATE_SIGNING_REQUEST_CONDITION)),
        omit(2, "certificate", BYTES),
    ],
};

/// `certificates/v1.CertificateSigningRequestCondition`.
pub static CERTIFICATE_SIGNING_REQUEST_CONDITION: Msg = Msg {
    name: "certificates/v1.CertificateSigningRequestCondition",
    fields: &[
        opt(1, "type", STR),
        opt(6, "status", STR),
        omit(2, "reason", STR),
        omit(3, "message", STR),
        opt(4, "lastUpdateTime", TIME),
        opt(5, "lastTransitionTime", TIME),
    ],
};
