//! Decoding of Kubernetes protobuf request bodies into JSON.
//!
//! kubectl's typed clients (`kubectl create deployment|secret|...`, `auth
//! can-i`, `auth whoami`, `create token`, `drain`, ...) send their bodies as
//! `application/vnd.kubernetes.protobuf`, while everything else in this server
//! works on JSON. [`decode`] turns such a body into the JSON object the same
//! request would have carried as JSON, so the handlers need not know. Only
//! requests need this: responses stay JSON, and client-go decodes a response
//! by its own `Content-Type`.
//!
//! The body is the magic `k8s\0` followed by a `runtime.Unknown` envelope
//! (`typeMeta`, `raw`, `contentEncoding`, `contentType`); `raw` is the
//! object's own message. Protobuf carries field numbers only, so the object is
//! decoded with tables of every kind we accept (one file per API group, in
//! the small language of [`schema`]). A field number a table does not know is
//! an error rather than skipped, since skipping it would silently drop what
//! the user sent.

mod decode;
pub mod schema;
mod time;
mod wire;

pub mod apps;
pub mod authn;
pub mod authz;
pub mod autoscaling;
pub mod autoscaling_v1;
pub mod batch;
pub mod certificates;
pub mod core;
pub mod meta;
pub mod networking;
pub mod node;
pub mod pod;
pub mod policy;
pub mod rbac;
pub mod scheduling;
pub mod volume;

#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use schema::Msg;
use wire::{Reader, WireType};

/// The media type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The four bytes every Kubernetes protobuf body starts with.
pub const MAGIC: &[u8; 4] = b"k8s\x00";

/// Why a protobuf body could not be decoded. The messages are meant for the
/// client, in a `Status`; [`ProtoError::http_status`] picks the code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// Not valid protobuf: truncated, a bad wire type or length, nesting
    /// deeper than 64, or a value that cannot be represented (e.g. a time
    /// outside the years 0000-9999).
    #[error("malformed protobuf body: {0}")]
    Malformed(String),
    /// A field number the server's table for that message does not know.
    #[error(
        "protobuf field {tag} of {message}{} is not known to this server; send the object as JSON instead",
        if path.is_empty() { String::new() } else { format!(" (at {path})") }
    )]
    UnknownField {
        /// The message, e.g. `apps/v1.DeploymentSpec`.
        message: String,
        /// The unknown field number.
        tag: u32,
        /// Where in the object, e.g. `spec.template.spec.containers[0]`; empty at the top.
        path: String,
    },
    /// An (apiVersion, kind) this server has no protobuf table for.
    #[error("protobuf encoding of {kind} ({api_version}) is not supported by this server; send it as JSON instead")]
    UnsupportedKind {
        /// From the envelope's `typeMeta`.
        api_version: String,
        /// From the envelope's `typeMeta`.
        kind: String,
    },
    /// The envelope names a content encoding or type other than plain
    /// Kubernetes protobuf.
    #[error("protobuf envelope with {0} is not supported; send the object as JSON instead")]
    UnsupportedEncoding(String),
}

impl ProtoError {
    /// The HTTP status for this error: 415 Unsupported Media Type when the
    /// body may well be valid but this server cannot read it in protobuf (the
    /// client can send JSON instead), 400 Bad Request when it is broken.
    pub fn http_status(&self) -> u16 {
        match self {
            ProtoError::Malformed(_) => 400,
            ProtoError::UnknownField { .. }
            | ProtoError::UnsupportedKind { .. }
            | ProtoError::UnsupportedEncoding(_) => 415,
        }
    }
}

/// Decode a Kubernetes protobuf request body (magic, `runtime.Unknown`
/// envelope, object) into the object's JSON, with `apiVersion` and `kind`
/// set from the envelope.
pub fn decode(body: &[u8]) -> Result<Value, ProtoError> {
    let envelope = Envelope::parse(body)?;
    let Some(msg) = schema_for(&envelope.api_version, &envelope.kind) else {
        return Err(ProtoError::UnsupportedKind {
            api_version: envelope.api_version,
            kind: envelope.kind,
        });
    };
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), Value::String(envelope.api_version));
    obj.insert("kind".into(), Value::String(envelope.kind));
    decode::decode_into(msg, envelope.raw, &mut obj, 1).map_err(decode::DecodeError::into_proto)?;
    Ok(Value::Object(obj))
}

/// The table for an (apiVersion, kind), if the server decodes it.
pub fn schema_for(api_version: &str, kind: &str) -> Option<&'static Msg> {
    // Every group version carries `DeleteOptions` (client-go stamps it with
    // the version of the client that sends it).
    if kind == "DeleteOptions" {
        return Some(&meta::DELETE_OPTIONS);
    }
    KINDS
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)
        .map(|(_, _, m)| *m)
}

/// The kinds [`decode`] accepts, by (apiVersion, kind).
pub static KINDS: &[(&str, &str, &Msg)] = &[
    ("v1", "Namespace", &core::NAMESPACE),
    ("v1", "ConfigMap", &core::CONFIG_MAP),
    ("v1", "Secret", &core::SECRET),
    ("v1", "ServiceAccount", &core::SERVICE_ACCOUNT),
    ("v1", "Service", &core::SERVICE),
    ("v1", "Pod", &core::POD),
    ("v1", "PodTemplate", &core::POD_TEMPLATE),
    ("v1", "ResourceQuota", &core::RESOURCE_QUOTA),
    ("v1", "LimitRange", &core::LIMIT_RANGE),
    (
        "v1",
        "PersistentVolumeClaim",
        &core::PERSISTENT_VOLUME_CLAIM,
    ),
    ("v1", "Endpoints", &core::ENDPOINTS),
    ("apps/v1", "Deployment", &apps::DEPLOYMENT),
    ("apps/v1", "ReplicaSet", &apps::REPLICA_SET),
    ("apps/v1", "StatefulSet", &apps::STATEFUL_SET),
    ("apps/v1", "DaemonSet", &apps::DAEMON_SET),
    ("batch/v1", "Job", &batch::JOB),
    ("batch/v1", "CronJob", &batch::CRON_JOB),
    ("rbac.authorization.k8s.io/v1", "Role", &rbac::ROLE),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        &rbac::CLUSTER_ROLE,
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        &rbac::ROLE_BINDING,
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        &rbac::CLUSTER_ROLE_BINDING,
    ),
    (
        "policy/v1",
        "PodDisruptionBudget",
        &policy::POD_DISRUPTION_BUDGET,
    ),
    ("policy/v1", "Eviction", &policy::EVICTION),
    // kubectl drain falls back to v1beta1 evictions, which have the same fields.
    ("policy/v1beta1", "Eviction", &policy::EVICTION),
    ("networking.k8s.io/v1", "Ingress", &networking::INGRESS),
    (
        "networking.k8s.io/v1",
        "IngressClass",
        &networking::INGRESS_CLASS,
    ),
    (
        "networking.k8s.io/v1",
        "NetworkPolicy",
        &networking::NETWORK_POLICY,
    ),
    ("node.k8s.io/v1", "RuntimeClass", &node::RUNTIME_CLASS),
    (
        "scheduling.k8s.io/v1",
        "PriorityClass",
        &scheduling::PRIORITY_CLASS,
    ),
    (
        "authentication.k8s.io/v1",
        "TokenRequest",
        &authn::TOKEN_REQUEST,
    ),
    (
        "authentication.k8s.io/v1",
        "TokenReview",
        &authn::TOKEN_REVIEW,
    ),
    (
        "authentication.k8s.io/v1",
        "SelfSubjectReview",
        &authn::SELF_SUBJECT_REVIEW,
    ),
    // kubectl auth whoami falls back to these, which have the same fields.
    (
        "authentication.k8s.io/v1beta1",
        "SelfSubjectReview",
        &authn::SELF_SUBJECT_REVIEW,
    ),
    (
        "authentication.k8s.io/v1alpha1",
        "SelfSubjectReview",
        &authn::SELF_SUBJECT_REVIEW,
    ),
    (
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
        &authz::SELF_SUBJECT_ACCESS_REVIEW,
    ),
    (
        "authorization.k8s.io/v1",
        "SelfSubjectRulesReview",
        &authz::SELF_SUBJECT_RULES_REVIEW,
    ),
    (
        "authorization.k8s.io/v1",
        "SubjectAccessReview",
        &authz::SUBJECT_ACCESS_REVIEW,
    ),
    (
        "authorization.k8s.io/v1",
        "LocalSubjectAccessReview",
        &authz::LOCAL_SUBJECT_ACCESS_REVIEW,
    ),
    (
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        &autoscaling::HORIZONTAL_POD_AUTOSCALER,
    ),
    (
        "autoscaling/v1",
        "HorizontalPodAutoscaler",
        &autoscaling_v1::HORIZONTAL_POD_AUTOSCALER,
    ),
    (
        "certificates.k8s.io/v1",
        "CertificateSigningRequest",
        &certificates::CERTIFICATE_SIGNING_REQUEST,
    ),
];

/// The `runtime.Unknown` envelope after the magic bytes.
struct Envelope<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
}

impl<'a> Envelope<'a> {
    fn parse(body: &'a [u8]) -> Result<Self, ProtoError> {
        let Some(rest) = body.strip_prefix(MAGIC) else {
            return Err(ProtoError::Malformed(
                "body does not start with the Kubernetes protobuf prefix \"k8s\\x00\"".into(),
            ));
        };
        let bad =
            |e: String| ProtoError::Malformed(format!("in the runtime.Unknown envelope: {e}"));
        let mut env = Envelope {
            api_version: String::new(),
            kind: String::new(),
            raw: &[],
        };
        let (mut encoding, mut content_type) = (String::new(), String::new());
        let mut r = Reader::new(rest);
        while !r.is_empty() {
            let (tag, wire) = r.key().map_err(bad)?;
            if !(1..=4).contains(&tag) {
                return Err(ProtoError::UnknownField {
                    message: "runtime.Unknown".into(),
                    tag,
                    path: String::new(),
                });
            }
            if wire != WireType::Len {
                return Err(bad(format!("field {tag} has wire type {}", wire.name())));
            }
            let payload = r.bytes().map_err(bad)?;
            match tag {
                1 => Self::parse_type_meta(payload, &mut env)?,
                2 => env.raw = payload,
                3 => encoding = String::from_utf8_lossy(payload).into_owned(),
                _ => content_type = String::from_utf8_lossy(payload).into_owned(),
            }
        }
        if !encoding.is_empty() {
            return Err(ProtoError::UnsupportedEncoding(format!(
                "contentEncoding {encoding:?}"
            )));
        }
        if !content_type.is_empty() && content_type != CONTENT_TYPE {
            return Err(ProtoError::UnsupportedEncoding(format!(
                "contentType {content_type:?}"
            )));
        }
        Ok(env)
    }

    /// `runtime.TypeMeta`: `{1: apiVersion, 2: kind}`.
    fn parse_type_meta(buf: &[u8], env: &mut Envelope<'_>) -> Result<(), ProtoError> {
        let bad = |e: String| ProtoError::Malformed(format!("in the envelope's typeMeta: {e}"));
        let mut r = Reader::new(buf);
        while !r.is_empty() {
            let (tag, wire) = r.key().map_err(bad)?;
            if !(1..=2).contains(&tag) {
                return Err(ProtoError::UnknownField {
                    message: "runtime.TypeMeta".into(),
                    tag,
                    path: String::new(),
                });
            }
            if wire != WireType::Len {
                return Err(bad(format!("field {tag} has wire type {}", wire.name())));
            }
            let s = String::from_utf8_lossy(r.bytes().map_err(bad)?).into_owned();
            if tag == 1 {
                env.api_version = s;
            } else {
                env.kind = s;
            }
        }
        Ok(())
    }
}
