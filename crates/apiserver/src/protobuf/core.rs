//! Tables for the core group (`v1`) kinds other than the pod spec: namespaces,
//! config maps, secrets, service accounts, services, resource quotas, limit
//! ranges, claims, endpoints, pod templates, and pod status.
//!
//! Field numbers, JSON names and types follow upstream's `generated.proto`
//! and `types.go`; `omit` marks Go value fields tagged `omitempty`, whose zero
//! value means unset (see [`super::schema::Card`]).

use super::schema::{
    map, msg, omit, opt, rep, Msg, BOOL, BYTES, I32, I64, INT_OR_STR, QTY, STR, TIME,
};
use super::{meta, pod, volume};

/// `core/v1.Namespace`.
pub static NAMESPACE: Msg = Msg {
    name: "core/v1.Namespace",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        opt(2, "spec", msg(&NAMESPACE_SPEC)),
        opt(3, "status", msg(&NAMESPACE_STATUS)),
    ],
};

/// `core/v1.ConfigMap`.
pub static CONFIG_MAP: Msg = Msg {
    name: "core/v1.ConfigMap",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        opt(4, "immutable", BOOL),
        map(2, "data", STR),
        map(3, "binaryData", BYTES),
    ],
};

/// `core/v1.Secret`.
pub static SECRET: Msg = Msg {
    name: "core/v1.Secret",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        opt(5, "immutable", BOOL),
        map(2, "data", BYTES),
        map(4, "stringData", STR),
        omit(3, "type", STR),
    ],
};

/// `core/v1.ServiceAccount`.
pub static SERVICE_ACCOUNT: Msg = Msg {
    name: "core/v1.ServiceAccount",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        rep(2, "secrets", msg(&OBJECT_REFERENCE)),
        rep(3, "imagePullSecrets", msg(&pod::LOCAL_OBJECT_REFERENCE)),
        opt(4, "automountServiceAccountToken", BOOL),
    ],
};

/// `core/v1.Service`.
pub static SERVICE: Msg = Msg {
    name: "core/v1.Service",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        opt(2, "spec", msg(&SERVICE_SPEC)),
        opt(3, "status", msg(&SERVICE_STATUS)),
    ],
};

/// `core/v1.Pod`.
pub static POD: Msg = Msg {
    name: "core/v1.Pod",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        opt(2, "spec", msg(&pod::POD_SPEC)),
        opt(3, "status", msg(&POD_STATUS)),
    ],
};

/// `core/v1.ResourceQuota`.
pub static RESOURCE_QUOTA: Msg = Msg {
    name: "core/v1.ResourceQuota",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        opt(2, "spec", msg(&RESOURCE_QUOTA_SPEC)),
        opt(3, "status", msg(&RESOURCE_QUOTA_STATUS)),
    ],
};

/// `core/v1.LimitRange`.
pub static LIMIT_RANGE: Msg = Msg {
    name: "core/v1.LimitRange",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        opt(2, "spec", msg(&LIMIT_RANGE_SPEC)),
    ],
};

/// `core/v1.PersistentVolumeClaim`.
pub static PERSISTENT_VOLUME_CLAIM: Msg = Msg {
    name: "core/v1.PersistentVolumeClaim",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        opt(2, "spec", msg(&volume::PERSISTENT_VOLUME_CLAIM_SPEC)),
        opt(3, "status", msg(&PERSISTENT_VOLUME_CLAIM_STATUS)),
    ],
};

/// `core/v1.Endpoints`.
pub static ENDPOINTS: Msg = Msg {
    name: "core/v1.Endpoints",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        rep(2, "subsets", msg(&ENDPOINT_SUBSET)),
    ],
};

/// `core/v1.PodTemplate`.
pub static POD_TEMPLATE: Msg = Msg {
    name: "core/v1.PodTemplate",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        opt(2, "template", msg(&POD_TEMPLATE_SPEC)),
    ],
};

/// `core/v1.NamespaceSpec`.
pub static NAMESPACE_SPEC: Msg = Msg {
    name: "core/v1.NamespaceSpec",
    fields: &[rep(1, "finalizers", STR)],
};

/// `core/v1.NamespaceStatus`.
pub static NAMESPACE_STATUS: Msg = Msg {
    name: "core/v1.NamespaceStatus",
    fields: &[
        omit(1, "phase", STR),
        rep(2, "conditions", msg(&NAMESPACE_CONDITION)),
    ],
};

/// `core/v1.ObjectReference`.
pub static OBJECT_REFERENCE: Msg = Msg {
    name: "core/v1.ObjectReference",
    fields: &[
        omit(1, "kind", STR),
        omit(2, "namespace", STR),
        omit(3, "name", STR),
        omit(4, "uid", STR),
        omit(5, "apiVersion", STR),
        omit(6, "resourceVersion", STR),
        omit(7, "fieldPath", STR),
    ],
};

/// `core/v1.ServiceSpec`.
pub static SERVICE_SPEC: Msg = Msg {
    name: "core/v1.ServiceSpec",
    fields: &[
        rep(1, "ports", msg(&SERVICE_PORT)),
        map(2, "selector", STR),
        omit(3, "clusterIP", STR),
        rep(18, "clusterIPs", STR),
        omit(4, "type", STR),
        rep(5, "externalIPs", STR),
        omit(7, "sessionAffinity", STR),
        omit(8, "loadBalancerIP", STR),
        rep(9, "loadBalancerSourceRanges", STR),
        omit(10, "externalName", STR),
        omit(11, "externalTrafficPolicy", STR),
        omit(12, "healthCheckNodePort", I32),
        omit(13, "publishNotReadyAddresses", BOOL),
        opt(14, "sessionAffinityConfig", msg(&SESSION_AFFINITY_CONFIG)),
        rep(19, "ipFamilies", STR),
        opt(17, "ipFamilyPolicy", STR),
        opt(20, "allocateLoadBalancerNodePorts", BOOL),
        opt(21, "loadBalancerClass", STR),
        opt(22, "internalTrafficPolicy", STR),
        opt(23, "trafficDistribution", STR),
    ],
};

/// `core/v1.ServiceStatus`.
pub static SERVICE_STATUS: Msg = Msg {
    name: "core/v1.ServiceStatus",
    fields: &[
        opt(1, "loadBalancer", msg(&LOAD_BALANCER_STATUS)),
        rep(2, "conditions", msg(&meta::CONDITION)),
    ],
};

/// `core/v1.PodStatus`.
pub static POD_STATUS: Msg = Msg {
    name: "core/v1.PodStatus",
    fields: &[
        omit(17, "observedGeneration", I64),
        omit(1, "phase", STR),
        rep(2, "conditions", msg(&POD_CONDITION)),
        omit(3, "message", STR),
        omit(4, "reason", STR),
        omit(11, "nominatedNodeName", STR),
        omit(5, "hostIP", STR),
        rep(16, "hostIPs", msg(&HOST_IP)),
        omit(6, "podIP", STR),
        rep(12, "podIPs", msg(&POD_IP)),
        opt(7, "startTime", TIME),
        rep(10, "initContainerStatuses", msg(&CONTAINER_STATUS)),
        rep(8, "containerStatuses", msg(&CONTAINER_STATUS)),
        omit(9, "qosClass", STR),
        rep(13, "ephemeralContainerStatuses", msg(&CONTAINER_STATUS)),
        omit(14, "resize", STR),
        rep(15, "resourceClaimStatuses", msg(&POD_RESOURCE_CLAIM_STATUS)),
        opt(
            18,
            "extendedResourceClaimStatus",
            msg(&POD_EXTENDED_RESOURCE_CLAIM_STATUS),
        ),
        map(19, "allocatedResources", QTY),
        opt(20, "resources", msg(&pod::RESOURCE_REQUIREMENTS)),
        rep(
            21,
            "nodeAllocatableResourceClaimStatuses",
            msg(&NODE_ALLOCATABLE_RESOURCE_CLAIM_STATUS),
        ),
        rep(22, "volumeHealth", msg(&POD_VOLUME_HEALTH)),
    ],
};

/// `core/v1.ResourceQuotaSpec`.
pub static RESOURCE_QUOTA_SPEC: Msg = Msg {
    name: "core/v1.ResourceQuotaSpec",
    fields: &[
        map(1, "hard", QTY),
        rep(2, "scopes", STR),
        opt(3, "scopeSelector", msg(&SCOPE_SELECTOR)),
    ],
};

/// `core/v1.ResourceQuotaStatus`.
pub static RESOURCE_QUOTA_STATUS: Msg = Msg {
    name: "core/v1.ResourceQuotaStatus",
    fields: &[map(1, "hard", QTY), map(2, "used", QTY)],
};

/// `core/v1.LimitRangeSpec`.
pub static LIMIT_RANGE_SPEC: Msg = Msg {
    name: "core/v1.LimitRangeSpec",
    fields: &[rep(1, "limits", msg(&LIMIT_RANGE_ITEM))],
};

/// `core/v1.PersistentVolumeClaimStatus`.
pub static PERSISTENT_VOLUME_CLAIM_STATUS: Msg = Msg {
    name: "core/v1.PersistentVolumeClaimStatus",
    fields: &[
        omit(1, "phase", STR),
        rep(2, "accessModes", STR),
        map(3, "capacity", QTY),
        rep(4, "conditions", msg(&PERSISTENT_VOLUME_CLAIM_CONDITION)),
        map(5, "allocatedResources", QTY),
        map(7, "allocatedResourceStatuses", STR),
        opt(8, "currentVolumeAttributesClassName", STR),
        opt(9, "modifyVolumeStatus", msg(&MODIFY_VOLUME_STATUS)),
        opt(10, "healthStatus", msg(&VOLUME_HEALTH_STATUS)),
    ],
};

/// `core/v1.EndpointSubset`.
pub static ENDPOINT_SUBSET: Msg = Msg {
    name: "core/v1.EndpointSubset",
    fields: &[
        rep(1, "addresses", msg(&ENDPOINT_ADDRESS)),
        rep(2, "notReadyAddresses", msg(&ENDPOINT_ADDRESS)),
        rep(3, "ports", msg(&ENDPOINT_PORT)),
    ],
};

/// `core/v1.PodTemplateSpec`.
pub static POD_TEMPLATE_SPEC: Msg = Msg {
    name: "core/v1.PodTemplateSpec",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        opt(2, "spec", msg(&pod::POD_SPEC)),
    ],
};

/// `core/v1.NamespaceCondition`.
pub static NAMESPACE_CONDITION: Msg = Msg {
    name: "core/v1.NamespaceCondition",
    fields: &[
        opt(1, "type", STR),
        opt(2, "status", STR),
        opt(4, "lastTransitionTime", TIME),
        omit(5, "reason", STR),
        omit(6, "message", STR),
    ],
};

/// `core/v1.ServicePort`.
pub static SERVICE_PORT: Msg = Msg {
    name: "core/v1.ServicePort",
    fields: &[
        omit(1, "name", STR),
        omit(2, "protocol", STR),
        opt(6, "appProtocol", STR),
        opt(3, "port", I32),
        opt(4, "targetPort", INT_OR_STR),
        omit(5, "nodePort", I32),
    ],
};

/// `core/v1.SessionAffinityConfig`.
pub static SESSION_AFFINITY_CONFIG: Msg = Msg {
    name: "core/v1.SessionAffinityConfig",
    fields: &[opt(1, "clientIP", msg(&CLIENT_IP_CONFIG))],
};

/// `core/v1.LoadBalancerStatus`.
pub static LOAD_BALANCER_STATUS: Msg = Msg {
    name: "core/v1.LoadBalancerStatus",
    fields: &[rep(1, "ingress", msg(&LOAD_BALANCER_INGRESS))],
};

/// `core/v1.PodCondition`.
pub static POD_CONDITION: Msg = Msg {
    name: "core/v1.PodCondition",
    fields: &[
        opt(1, "type", STR),
        omit(7, "observedGeneration", I64),
        opt(2, "status", STR),
        opt(3, "lastProbeTime", TIME),
        opt(4, "lastTransitionTime", TIME),
        omit(5, "reason", STR),
        omit(6, "message", STR),
    ],
};

/// `core/v1.HostIP`.
pub static HOST_IP: Msg = Msg {
    name: "core/v1.HostIP",
    fields: &[opt(1, "ip", STR)],
};

/// `core/v1.PodIP`.
pub static POD_IP: Msg = Msg {
    name: "core/v1.PodIP",
    fields: &[opt(1, "ip", STR)],
};

/// `core/v1.ContainerStatus`.
pub static CONTAINER_STATUS: Msg = Msg {
    name: "core/v1.ContainerStatus",
    fields: &[
        opt(1, "name", STR),
        opt(2, "state", msg(&CONTAINER_STATE)),
        opt(3, "lastState", msg(&CONTAINER_STATE)),
        opt(4, "ready", BOOL),
        opt(5, "restartCount", I32),
        opt(6, "image", STR),
        opt(7, "imageID", STR),
        omit(8, "containerID", STR),
        opt(9, "started", BOOL),
        map(10, "allocatedResources", QTY),
        opt(11, "resources", msg(&pod::RESOURCE_REQUIREMENTS)),
        rep(12, "volumeMounts", msg(&VOLUME_MOUNT_STATUS)),
        opt(13, "user", msg(&CONTAINER_USER)),
        rep(14, "allocatedResourcesStatus", msg(&RESOURCE_STATUS)),
        opt(15, "stopSignal", STR),
    ],
};

/// `core/v1.PodResourceClaimStatus`.
pub static POD_RESOURCE_CLAIM_STATUS: Msg = Msg {
    name: "core/v1.PodResourceClaimStatus",
    fields: &[opt(1, "name", STR), opt(2, "resourceClaimName", STR)],
};

/// `core/v1.PodExtendedResourceClaimStatus`.
pub static POD_EXTENDED_RESOURCE_CLAIM_STATUS: Msg = Msg {
    name: "core/v1.PodExtendedResourceClaimStatus",
    fields: &[
        rep(
            1,
            "requestMappings",
            msg(&CONTAINER_EXTENDED_RESOURCE_REQUEST),
        ),
        opt(2, "resourceClaimName", STR),
    ],
};

/// `core/v1.NodeAllocatableResourceClaimStatus`.
pub static NODE_ALLOCATABLE_RESOURCE_CLAIM_STATUS: Msg = Msg {
    name: "core/v1.NodeAllocatableResourceClaimStatus",
    fields: &[
        opt(1, "resourceClaimName", STR),
        rep(2, "containers", STR),
        rep(4, "mapping", msg(&NODE_ALLOCATABLE_MAPPED_RESOURCES)),
        rep(5, "overhead", msg(&NODE_ALLOCATABLE_OVERHEAD_RESOURCES)),
    ],
};

/// `core/v1.PodVolumeHealth`.
pub static POD_VOLUME_HEALTH: Msg = Msg {
    name: "core/v1.PodVolumeHealth",
    fields: &[
        opt(1, "name", STR),
        rep(2, "healthConditions", msg(&VOLUME_HEALTH_CONDITION)),
        opt(3, "lastTransitionTime", TIME),
    ],
};

/// `core/v1.ScopeSelector`.
pub static SCOPE_SELECTOR: Msg = Msg {
    name: "core/v1.ScopeSelector",
    fields: &[rep(
        1,
        "matchExpressions",
        msg(&SCOPED_RESOURCE_SELECTOR_REQUIREMENT),
    )],
};

/// `core/v1.LimitRangeItem`.
pub static LIMIT_RANGE_ITEM: Msg = Msg {
    name: "core/v1.LimitRangeItem",
    fields: &[
        opt(1, "type", STR),
        map(2, "max", QTY),
        map(3, "min", QTY),
        map(4, "default", QTY),
        map(5, "defaultRequest", QTY),
        map(6, "maxLimitRequestRatio", QTY),
    ],
};

/// `core/v1.PersistentVolumeClaimCondition`.
pub static PERSISTENT_VOLUME_CLAIM_CONDITION: Msg = Msg {
    name: "core/v1.PersistentVolumeClaimCondition",
    fields: &[
        opt(1, "type", STR),
        opt(2, "status", STR),
        opt(3, "lastProbeTime", TIME),
        opt(4, "lastTransitionTime", TIME),
        omit(5, "reason", STR),
        omit(6, "message", STR),
    ],
};

/// `core/v1.ModifyVolumeStatus`.
pub static MODIFY_VOLUME_STATUS: Msg = Msg {
    name: "core/v1.ModifyVolumeStatus",
    fields: &[
        omit(1, "targetVolumeAttributesClassName", STR),
        opt(2, "status", STR),
    ],
};

/// `core/v1.VolumeHealthStatus`.
pub static VOLUME_HEALTH_STATUS: Msg = Msg {
    name: "core/v1.VolumeHealthStatus",
    fields: &[
        rep(1, "healthConditions", msg(&VOLUME_HEALTH_CONDITION)),
        opt(2, "lastTransitionTime", TIME),
    ],
};

/// `core/v1.EndpointAddress`.
pub static ENDPOINT_ADDRESS: Msg = Msg {
    name: "core/v1.EndpointAddress",
    fields: &[
        opt(1, "ip", STR),
        omit(3, "hostname", STR),
        opt(4, "nodeName", STR),
        opt(2, "targetRef", msg(&OBJECT_REFERENCE)),
    ],
};

/// `core/v1.EndpointPort`.
pub static ENDPOINT_PORT: Msg = Msg {
    name: "core/v1.EndpointPort",
    fields: &[
        omit(1, "name", STR),
        opt(2, "port", I32),
        omit(3, "protocol", STR),
        opt(4, "appProtocol", STR),
    ],
};

/// `core/v1.ClientIPConfig`.
pub static CLIENT_IP_CONFIG: Msg = Msg {
    name: "core/v1.ClientIPConfig",
    fields: &[opt(1, "timeoutSeconds", I32)],
};

/// `core/v1.LoadBalancerIngress`.
pub static LOAD_BALANCER_INGRESS: Msg = Msg {
    name: "core/v1.LoadBalancerIngress",
    fields: &[
        omit(1, "ip", STR),
        omit(2, "hostname", STR),
        opt(3, "ipMode", STR),
        rep(4, "ports", msg(&PORT_STATUS)),
    ],
};

/// `core/v1.ContainerState`.
pub static CONTAINER_STATE: Msg = Msg {
    name: "core/v1.ContainerState",
    fields: &[
        opt(1, "waiting", msg(&CONTAINER_STATE_WAITING)),
        opt(2, "running", msg(&CONTAINER_STATE_RUNNING)),
        opt(3, "terminated", msg(&CONTAINER_STATE_TERMINATED)),
    ],
};

/// `core/v1.VolumeMountStatus`.
pub static VOLUME_MOUNT_STATUS: Msg = Msg {
    name: "core/v1.VolumeMountStatus",
    fields: &[
        opt(1, "name", STR),
        opt(2, "mountPath", STR),
        omit(3, "readOnly", BOOL),
        opt(4, "recursiveReadOnly", STR),
        opt(5, "volumeStatus", msg(&VOLUME_STATUS)),
    ],
};

/// `core/v1.ContainerUser`.
pub static CONTAINER_USER: Msg = Msg {
    name: "core/v1.ContainerUser",
    fields: &[opt(1, "linux", msg(&LINUX_CONTAINER_USER))],
};

/// `core/v1.ResourceStatus`.
pub static RESOURCE_STATUS: Msg = Msg {
    name: "core/v1.ResourceStatus",
    fields: &[
        opt(1, "name", STR),
        rep(2, "resources", msg(&RESOURCE_HEALTH)),
    ],
};

/// `core/v1.ContainerExtendedResourceRequest`.
pub static CONTAINER_EXTENDED_RESOURCE_REQUEST: Msg = Msg {
    name: "core/v1.ContainerExtendedResourceRequest",
    fields: &[
        opt(1, "containerName", STR),
        opt(2, "resourceName", STR),
        opt(3, "requestName", STR),
    ],
};

/// `core/v1.NodeAllocatableMappedResources`.
pub static NODE_ALLOCATABLE_MAPPED_RESOURCES: Msg = Msg {
    name: "core/v1.NodeAllocatableMappedResources",
    fields: &[opt(1, "name", STR), opt(2, "quantity", QTY)],
};

/// `core/v1.NodeAllocatableOverheadResources`.
pub static NODE_ALLOCATABLE_OVERHEAD_RESOURCES: Msg = Msg {
    name: "core/v1.NodeAllocatableOverheadResources",
    fields: &[
        opt(1, "name", STR),
        opt(2, "perPod", QTY),
        opt(3, "perContainer", QTY),
    ],
};

/// `core/v1.VolumeHealthCondition`.
pub static VOLUME_HEALTH_CONDITION: Msg = Msg {
    name: "core/v1.VolumeHealthCondition",
    fields: &[
        opt(1, "status", STR),
        opt(2, "reason", STR),
        omit(3, "message", STR),
    ],
};

/// `core/v1.ScopedResourceSelectorRequirement`.
pub static SCOPED_RESOURCE_SELECTOR_REQUIREMENT: Msg = Msg {
    name: "core/v1.ScopedResourceSelectorRequirement",
    fields: &[
        opt(1, "scopeName", STR),
        opt(2, "operator", STR),
        rep(3, "values", STR),
    ],
};

/// `core/v1.PortStatus`.
pub static PORT_STATUS: Msg = Msg {
    name: "core/v1.PortStatus",
    fields: &[
        opt(1, "port", I32),
        opt(2, "protocol", STR),
        opt(3, "error", STR),
    ],
};

/// `core/v1.ContainerStateWaiting`.
pub static CONTAINER_STATE_WAITING: Msg = Msg {
    name: "core/v1.ContainerStateWaiting",
    fields: &[omit(1, "reason", STR), omit(2, "message", STR)],
};

/// `core/v1.ContainerStateRunning`.
pub static CONTAINER_STATE_RUNNING: Msg = Msg {
    name: "core/v1.ContainerStateRunning",
    fields: &[opt(1, "startedAt", TIME)],
};

/// `core/v1.ContainerStateTerminated`.
pub static CONTAINER_STATE_TERMINATED: Msg = Msg {
    name: "core/v1.ContainerStateTerminated",
    fields: &[
        opt(1, "exitCode", I32),
        omit(2, "signal", I32),
        omit(3, "reason", STR),
        omit(4, "message", STR),
        opt(5, "startedAt", TIME),
        opt(6, "finishedAt", TIME),
        omit(7, "containerID", STR),
    ],
};

/// `core/v1.VolumeStatus`.
pub static VOLUME_STATUS: Msg = Msg {
    name: "core/v1.VolumeStatus",
    fields: &[opt(1, "image", msg(&IMAGE_VOLUME_STATUS))],
};

/// `core/v1.LinuxContainerUser`.
pub static LINUX_CONTAINER_USER: Msg = Msg {
    name: "core/v1.LinuxContainerUser",
    fields: &[
        opt(1, "uid", I64),
        opt(2, "gid", I64),
        rep(3, "supplementalGroups", I64),
    ],
};

/// `core/v1.ResourceHealth`.
pub static RESOURCE_HEALTH: Msg = Msg {
    name: "core/v1.ResourceHealth",
    fields: &[
        opt(1, "resourceID", STR),
        omit(2, "health", STR),
        opt(6, "message", STR),
    ],
};

/// `core/v1.ImageVolumeStatus`.
pub static IMAGE_VOLUME_STATUS: Msg = Msg {
    name: "core/v1.ImageVolumeStatus",
    fields: &[omit(1, "imageRef", STR)],
};
