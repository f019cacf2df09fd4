//! Which `k8s-openapi` type each served kind is, and the generation of their
//! definitions.

use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value};

use k8s_openapi::api::{
    apps::v1 as apps, authentication::v1 as authn, autoscaling::v1 as autoscaling,
    batch::v1 as batch, certificates::v1 as certificates, coordination::v1 as coordination,
    core::v1 as core, discovery::v1 as discovery, events::v1 as events,
    networking::v1 as networking, node::v1 as node, policy::v1 as policy, rbac::v1 as rbac,
    scheduling::v1 as scheduling,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;

type Kinds = Vec<((String, String, String), String)>;

fn add<T: schemars::JsonSchema>(
    gen: &mut SchemaGenerator,
    kinds: &mut Kinds,
    group: &str,
    version: &str,
    kind: &str,
) {
    gen.subschema_for::<T>();
    kinds.push((
        (group.to_string(), version.to_string(), kind.to_string()),
        T::schema_name().into_owned(),
    ));
}

macro_rules! kinds {
    ($gen:expr, $kinds:expr; $( $group:literal $version:literal $kind:literal => $ty:ty ),* $(,)?) => {
        $( add::<$ty>($gen, $kinds, $group, $version, $kind); )*
    };
}

/// Every definition reachable from a served kind and from the meta types
/// operations use, and the kind-to-definition map.
pub(super) fn generate() -> (Map<String, Value>, Kinds) {
    let mut gen = SchemaGenerator::new(SchemaSettings::openapi3());
    let mut k = Vec::new();
    kinds!(&mut gen, &mut k;
        "" "v1" "ConfigMap" => core::ConfigMap,
        "" "v1" "Endpoints" => core::Endpoints,
        "" "v1" "Event" => core::Event,
        "" "v1" "LimitRange" => core::LimitRange,
        "" "v1" "Namespace" => core::Namespace,
        "" "v1" "Node" => core::Node,
        "" "v1" "PersistentVolumeClaim" => core::PersistentVolumeClaim,
        "" "v1" "PersistentVolume" => core::PersistentVolume,
        "" "v1" "Pod" => core::Pod,
        "" "v1" "ReplicationController" => core::ReplicationController,
        "" "v1" "ResourceQuota" => core::ResourceQuota,
        "" "v1" "Secret" => core::Secret,
        "" "v1" "ServiceAccount" => core::ServiceAccount,
        "" "v1" "Service" => core::Service,
        "" "v1" "Binding" => core::Binding,
        "" "v1" "Status" => meta::Status,
        "" "v1" "DeleteOptions" => meta::DeleteOptions,
        "apps" "v1" "ControllerRevision" => apps::ControllerRevision,
        "apps" "v1" "DaemonSet" => apps::DaemonSet,
        "apps" "v1" "Deployment" => apps::Deployment,
        "apps" "v1" "ReplicaSet" => apps::ReplicaSet,
        "apps" "v1" "StatefulSet" => apps::StatefulSet,
        "apiextensions.k8s.io" "v1" "CustomResourceDefinition" =>
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        "authentication.k8s.io" "v1" "SelfSubjectReview" => authn::SelfSubjectReview,
        "autoscaling" "v1" "Scale" => autoscaling::Scale,
        "batch" "v1" "CronJob" => batch::CronJob,
        "batch" "v1" "Job" => batch::Job,
        "certificates.k8s.io" "v1" "CertificateSigningRequest" => certificates::CertificateSigningRequest,
        "coordination.k8s.io" "v1" "Lease" => coordination::Lease,
        "discovery.k8s.io" "v1" "EndpointSlice" => discovery::EndpointSlice,
        "events.k8s.io" "v1" "Event" => events::Event,
        "networking.k8s.io" "v1" "IngressClass" => networking::IngressClass,
        "networking.k8s.io" "v1" "Ingress" => networking::Ingress,
        "networking.k8s.io" "v1" "NetworkPolicy" => networking::NetworkPolicy,
        "node.k8s.io" "v1" "RuntimeClass" => node::RuntimeClass,
        "policy" "v1" "PodDisruptionBudget" => policy::PodDisruptionBudget,
        "policy" "v1" "Eviction" => policy::Eviction,
        "rbac.authorization.k8s.io" "v1" "ClusterRoleBinding" => rbac::ClusterRoleBinding,
        "rbac.authorization.k8s.io" "v1" "ClusterRole" => rbac::ClusterRole,
        "rbac.authorization.k8s.io" "v1" "RoleBinding" => rbac::RoleBinding,
        "rbac.authorization.k8s.io" "v1" "Role" => rbac::Role,
        "scheduling.k8s.io" "v1" "PriorityClass" => scheduling::PriorityClass,
    );
    // Types that operations refer to without being a served kind: list
    // metadata for the synthesized lists, PATCH bodies, watch events and
    // the group-version's resource list.
    gen.subschema_for::<meta::ListMeta>();
    gen.subschema_for::<meta::Patch>();
    gen.subschema_for::<meta::WatchEvent<core::Pod>>();
    gen.subschema_for::<meta::APIResourceList>();
    (gen.take_definitions(true), k)
}
