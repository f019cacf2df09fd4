//! Kind-specific behaviour of the generic registry, like upstream's rest
//! strategies: what a create or update may set, defaults (v1 `defaults.go`),
//! validation (`pkg/apis/*/validation`), unknown-field detection and the
//! fields a field selector may use.
//!
//! Objects stay `serde_json::Value` (wire JSON) throughout: defaults are
//! applied to the Value, so fields the caller keeps per `fieldValidation` are
//! never re-shaped by a typed round trip. The k8s-openapi types are used only
//! to learn what a kind's schema knows (see [`unknown`]).

use serde_json::Value;

use crate::error::FieldError;
use crate::resources::ResourceInfo;

mod batch;
pub(crate) mod certificates;
mod config;
mod container;
mod crd;
pub(crate) mod custom;
mod endpoints;
mod events;
mod meta;
pub(crate) mod names;
mod networking;
mod node;
mod other;
mod pod;
mod pod_defaults;
mod podextra;
mod podspec;
pub(crate) mod quantity;
mod rbac;
mod sa_admission;
mod service;
mod sets;
mod storage;
mod unknown;
pub(crate) mod util;
mod volumes;
mod workloads;

pub use meta::{validate_object_meta, validate_object_meta_update};
pub use unknown::Decoded;

/// Kind-specific behaviour, like upstream's rest strategies.
pub trait Strategy: Send + Sync {
    /// Decode `obj` as the kind's type: the paths of fields its schema does
    /// not know, e.g. "spec.containers[0].imagePullPolcy" (for
    /// fieldValidation=Strict/Warn), and the first value of the wrong type,
    /// which upstream's decoder refuses. The caller has checked
    /// apiVersion/kind. The registry reports the type error along with
    /// [`Strategy::validate`]'s errors, so validation does not decode again.
    fn decode(&self, obj: &serde_json::Value) -> Decoded;
    /// The unknown fields of [`Strategy::decode`].
    fn unknown_fields(&self, obj: &serde_json::Value) -> Vec<String> {
        self.decode(obj).unknown
    }
    /// Whether metadata.generation is set to 1 on create and bumped when anything outside metadata and status changes (upstream: true for workloads, pods, services? — follow upstream per kind).
    fn tracks_generation(&self) -> bool {
        false
    }
    /// Drop what a create of the main resource may not set, e.g. status for kinds with a status subresource (upstream PrepareForCreate; pods get status {phase: Pending, qosClass}).
    fn prepare_for_create(&self, _obj: &mut serde_json::Value) {}
    /// Keep what an update of the main resource may not change (e.g. old status), upstream PrepareForUpdate.
    fn prepare_for_update(&self, _new: &mut serde_json::Value, _old: &serde_json::Value) {}
    /// Keep what a status update may not change (spec and most metadata except labels/annotations? follow upstream PrepareForUpdate of status strategies).
    fn prepare_for_status_update(&self, _new: &mut serde_json::Value, _old: &serde_json::Value) {}
    /// Apply upstream defaults (v1 defaults.go), on create and update.
    fn default(&self, _obj: &mut serde_json::Value) {}
    /// Kind-specific validation of a new object (object meta is validated separately by validate_object_meta).
    fn validate(&self, obj: &serde_json::Value) -> Vec<FieldError>;
    /// Validation of an update, including immutable fields; default: validate(new).
    fn validate_update(&self, new: &serde_json::Value, old: &serde_json::Value) -> Vec<FieldError> {
        let _ = old;
        self.validate(new)
    }
    /// Validation of a status update.
    fn validate_status_update(
        &self,
        new: &serde_json::Value,
        old: &serde_json::Value,
    ) -> Vec<FieldError> {
        let _ = (new, old);
        Vec::new()
    }
    /// Values of the kind's selectable fields for field selectors, besides metadata.name and metadata.namespace which the caller handles.
    fn selectable_fields(&self, obj: &serde_json::Value) -> Vec<(&'static str, String)>;
}

/// How metadata.name is validated for a kind (upstream's ValidateNameFunc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    /// `NameIsDNSSubdomain`: most kinds.
    Dns1123Subdomain,
    /// `NameIsDNSLabel`: namespaces (and services, which upstream holds to
    /// the stricter DNS-1035 label; see the service strategy).
    Dns1123Label,
    /// `ValidatePathSegmentName`: RBAC kinds and core Events.
    PathSegment,
}

/// The strategy for a served resource.
pub fn strategy_for(info: &ResourceInfo) -> &'static dyn Strategy {
    if !crate::resources::is_builtin(info) {
        // The served (interned) resource, whose CRD drives the strategy.
        return match crate::resources::lookup(info.group, info.version, info.plural) {
            Some(served) => custom::strategy_for(served),
            None => &Plain,
        };
    }
    match (info.group, info.kind) {
        ("apiextensions.k8s.io", "CustomResourceDefinition") => &crd::CrdStrategy,
        ("", "Pod") => &pod::PodStrategy,
        ("", "ConfigMap") => &config::ConfigMapStrategy,
        ("", "Secret") => &config::SecretStrategy,
        ("", "ServiceAccount") => &config::ServiceAccountStrategy,
        ("", "Namespace") => &config::NamespaceStrategy,
        ("", "LimitRange") => &config::LimitRangeStrategy,
        ("", "ResourceQuota") => &config::ResourceQuotaStrategy,
        ("", "Service") => &service::ServiceStrategy,
        ("", "Endpoints") => &endpoints::EndpointsStrategy,
        ("discovery.k8s.io", "EndpointSlice") => &endpoints::EndpointSliceStrategy,
        ("", "PersistentVolume") => &storage::PersistentVolumeStrategy,
        ("", "PersistentVolumeClaim") => &storage::PersistentVolumeClaimStrategy,
        ("", "Node") => &other::NodeStrategy,
        ("", "Event") => &events::CoreEventStrategy,
        ("events.k8s.io", "Event") => &events::EventStrategy,
        ("", "ReplicationController") => &workloads::ReplicationControllerStrategy,
        ("apps", "Deployment") => &workloads::DeploymentStrategy,
        ("apps", "ReplicaSet") => &workloads::ReplicaSetStrategy,
        ("apps", "StatefulSet") => &sets::StatefulSetStrategy,
        ("apps", "DaemonSet") => &sets::DaemonSetStrategy,
        ("apps", "ControllerRevision") => &workloads::ControllerRevisionStrategy,
        ("batch", "Job") => &batch::JobStrategy,
        ("batch", "CronJob") => &batch::CronJobStrategy,
        ("coordination.k8s.io", "Lease") => &other::LeaseStrategy,
        ("certificates.k8s.io", "CertificateSigningRequest") => &certificates::CsrStrategy,
        ("policy", "PodDisruptionBudget") => &other::PodDisruptionBudgetStrategy,
        ("scheduling.k8s.io", "PriorityClass") => &other::PriorityClassStrategy,
        ("node.k8s.io", "RuntimeClass") => &node::RuntimeClassStrategy,
        ("authentication.k8s.io", "SelfSubjectReview") => &other::SelfSubjectReviewStrategy,
        ("networking.k8s.io", "Ingress") => &networking::IngressStrategy,
        ("networking.k8s.io", "IngressClass") => &networking::IngressClassStrategy,
        ("networking.k8s.io", "NetworkPolicy") => &networking::NetworkPolicyStrategy,
        ("rbac.authorization.k8s.io", "Role") => &rbac::RoleStrategy,
        ("rbac.authorization.k8s.io", "ClusterRole") => &rbac::ClusterRoleStrategy,
        ("rbac.authorization.k8s.io", "RoleBinding") => &rbac::RoleBindingStrategy,
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => &rbac::ClusterRoleBindingStrategy,
        _ => &Plain,
    }
}

/// The name rule for a resource (namespaces and services: DNS-1123 label;
/// RBAC kinds and core Events: path segment; most: subdomain).
pub fn name_rule(info: &ResourceInfo) -> NameRule {
    match (info.group, info.kind) {
        ("", "Namespace") | ("", "Service") => NameRule::Dns1123Label,
        ("rbac.authorization.k8s.io", _) | ("", "Event") => NameRule::PathSegment,
        _ => NameRule::Dns1123Subdomain,
    }
}

/// Unknown fields of `obj` decoded as `T`.
/// `errs` plus a value of the wrong type that decoding found, which upstream
/// would have refused while decoding (reported once, unless already covered).
pub fn with_type_error(mut errs: Vec<FieldError>, decoded: Option<FieldError>) -> Vec<FieldError> {
    if let Some(e) = decoded {
        util::dedup_fields(&mut errs, vec![e]);
    }
    errs
}

/// The name of an object, for the `name` field some kinds select on.
fn object_name(obj: &Value) -> String {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// A resource with no kind-specific rules.
struct Plain;

impl Strategy for Plain {
    fn decode(&self, _obj: &Value) -> Decoded {
        Decoded::default()
    }

    fn validate(&self, _obj: &Value) -> Vec<FieldError> {
        Vec::new()
    }

    fn selectable_fields(&self, _obj: &Value) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

/// The field and type of each error, for tests to compare.
#[cfg(test)]
pub(crate) fn error_fields(errs: Vec<FieldError>) -> Vec<(String, crate::error::FieldErrorType)> {
    errs.into_iter().map(|e| (e.field, e.kind)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::RESOURCES;
    use serde_json::json;

    #[test]
    fn every_served_resource_has_a_strategy_that_accepts_a_sample() {
        let sample = json!({ "metadata": {}, "spec": {}, "status": {} });
        for info in RESOURCES {
            let s = strategy_for(info);
            // Field names must be learnable from an empty object.
            let names: Vec<_> = s
                .selectable_fields(&sample)
                .into_iter()
                .map(|(f, _)| f)
                .collect();
            let mut dedup = names.clone();
            dedup.dedup();
            assert_eq!(names, dedup, "{}", info.plural);
            let obj = json!({ "apiVersion": info.api_version(), "kind": info.kind, "metadata": { "name": "x" } });
            assert!(
                s.unknown_fields(&obj).is_empty(),
                "{}: {:?}",
                info.plural,
                s.unknown_fields(&obj)
            );
        }
    }

    /// Wrong types anywhere must never panic: every hook on hostile shapes.
    #[test]
    fn hostile_input_never_panics() {
        let weird = [json!(1), json!("x"), json!([1, "a", null, {}])];
        let keys = [
            "spec",
            "status",
            "metadata",
            "data",
            "subsets",
            "endpoints",
            "ports",
            "rules",
            "roleRef",
            "subjects",
            "regarding",
            "series",
            "value",
            "type",
            "schedule",
        ];
        let inner = [
            "containers",
            "initContainers",
            "volumes",
            "template",
            "selector",
            "ports",
            "tolerations",
            "jobTemplate",
            "updateStrategy",
            "strategy",
            "securityContext",
            "affinity",
            "resources",
            "clusterIPs",
            "finalizers",
            "limits",
            "hard",
            "capacity",
            "taints",
            "ingress",
            "egress",
            "podSelector",
            "volumeClaimTemplates",
        ];
        for info in RESOURCES {
            let s = strategy_for(info);
            let base = json!({ "apiVersion": info.api_version(), "kind": info.kind, "metadata": { "name": "x", "namespace": "d" } });
            for k in keys {
                for w in &weird {
                    let mut objs = vec![];
                    let mut o = base.clone();
                    o[k] = w.clone();
                    objs.push(o);
                    for ik in inner {
                        let mut o = base.clone();
                        o[k] = json!({ ik: w.clone(), "template": { "spec": { ik: w.clone() } } });
                        objs.push(o);
                        let mut o = base.clone();
                        o[k] = json!({ ik: [w.clone()], "containers": [{ ik: w.clone(), "ports": [w.clone()] }] });
                        objs.push(o);
                    }
                    for mut o in objs {
                        let old = o.clone();
                        let _ = s.unknown_fields(&o);
                        s.prepare_for_create(&mut o);
                        s.default(&mut o);
                        let _ = s.validate(&o);
                        let _ = validate_object_meta(&o, info);
                        let mut u = o.clone();
                        s.prepare_for_update(&mut u, &old);
                        s.default(&mut u);
                        let _ = s.validate_update(&u, &old);
                        s.prepare_for_status_update(&mut u, &old);
                        let _ = s.validate_status_update(&u, &old);
                        let _ = validate_object_meta_update(&u, &old, info);
                        let _ = s.selectable_fields(&u);
                    }
                }
            }
        }
    }

    #[test]
    fn name_rules() {
        let rule = |g: &str, p: &str| name_rule(crate::resources::lookup(g, "v1", p).unwrap());
        assert_eq!(rule("", "namespaces"), NameRule::Dns1123Label);
        assert_eq!(rule("", "services"), NameRule::Dns1123Label);
        assert_eq!(
            rule("rbac.authorization.k8s.io", "roles"),
            NameRule::PathSegment
        );
        assert_eq!(rule("apps", "deployments"), NameRule::Dns1123Subdomain);
    }
}
