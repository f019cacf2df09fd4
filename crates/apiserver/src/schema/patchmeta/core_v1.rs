//! Patch and list metadata of core/v1 (`staging/src/k8s.io/api/core/v1/types.go`).

use super::*;

/// Field metadata.
pub(super) static FIELDS: &[FieldMeta] = &[
    // PersistentVolumeSpec
    atomic_list("io.k8s.api.core.v1.PersistentVolumeSpec", "accessModes"),
    map_type(
        "io.k8s.api.core.v1.PersistentVolumeSpec",
        "claimRef",
        "granular",
    ),
    atomic_list("io.k8s.api.core.v1.PersistentVolumeSpec", "mountOptions"),
    // PersistentVolumeClaimSpec
    atomic_list(
        "io.k8s.api.core.v1.PersistentVolumeClaimSpec",
        "accessModes",
    ),
    // VolumeHealthStatus
    merge_map(
        "io.k8s.api.core.v1.VolumeHealthStatus",
        "healthConditions",
        "status",
        &["status", "reason"],
    ),
    // PodVolumeHealth
    merge_map(
        "io.k8s.api.core.v1.PodVolumeHealth",
        "healthConditions",
        "status",
        &["status", "reason"],
    ),
    // PersistentVolumeClaimStatus
    atomic_list(
        "io.k8s.api.core.v1.PersistentVolumeClaimStatus",
        "accessModes",
    ),
    merge_map(
        "io.k8s.api.core.v1.PersistentVolumeClaimStatus",
        "conditions",
        "type",
        &["type"],
    ),
    map_type(
        "io.k8s.api.core.v1.PersistentVolumeClaimStatus",
        "allocatedResourceStatuses",
        "granular",
    ),
    // RBDVolumeSource
    atomic_list("io.k8s.api.core.v1.RBDVolumeSource", "monitors"),
    // RBDPersistentVolumeSource
    atomic_list("io.k8s.api.core.v1.RBDPersistentVolumeSource", "monitors"),
    // CephFSVolumeSource
    atomic_list("io.k8s.api.core.v1.CephFSVolumeSource", "monitors"),
    // CephFSPersistentVolumeSource
    atomic_list(
        "io.k8s.api.core.v1.CephFSPersistentVolumeSource",
        "monitors",
    ),
    // SecretVolumeSource
    atomic_list("io.k8s.api.core.v1.SecretVolumeSource", "items"),
    // SecretProjection
    atomic_list("io.k8s.api.core.v1.SecretProjection", "items"),
    // ISCSIVolumeSource
    atomic_list("io.k8s.api.core.v1.ISCSIVolumeSource", "portals"),
    // ISCSIPersistentVolumeSource
    atomic_list("io.k8s.api.core.v1.ISCSIPersistentVolumeSource", "portals"),
    // FCVolumeSource
    atomic_list("io.k8s.api.core.v1.FCVolumeSource", "targetWWNs"),
    atomic_list("io.k8s.api.core.v1.FCVolumeSource", "wwids"),
    // ConfigMapVolumeSource
    atomic_list("io.k8s.api.core.v1.ConfigMapVolumeSource", "items"),
    // ConfigMapProjection
    atomic_list("io.k8s.api.core.v1.ConfigMapProjection", "items"),
    // ProjectedVolumeSource
    atomic_list("io.k8s.api.core.v1.ProjectedVolumeSource", "sources"),
    // VolumeMount
    set_list("io.k8s.api.core.v1.VolumeMount", "bindMountOptions"),
    // HTTPGetAction
    atomic_list("io.k8s.api.core.v1.HTTPGetAction", "httpHeaders"),
    // ExecAction
    atomic_list("io.k8s.api.core.v1.ExecAction", "command"),
    // Capabilities
    atomic_list("io.k8s.api.core.v1.Capabilities", "add"),
    atomic_list("io.k8s.api.core.v1.Capabilities", "drop"),
    // ResourceRequirements
    map_list(
        "io.k8s.api.core.v1.ResourceRequirements",
        "claims",
        &["name"],
    ),
    // Container
    atomic_list("io.k8s.api.core.v1.Container", "command"),
    atomic_list("io.k8s.api.core.v1.Container", "args"),
    merge_map(
        "io.k8s.api.core.v1.Container",
        "ports",
        "containerPort",
        &["containerPort", "protocol"],
    ),
    atomic_list("io.k8s.api.core.v1.Container", "envFrom"),
    merge_map("io.k8s.api.core.v1.Container", "env", "name", &["name"]),
    atomic_list("io.k8s.api.core.v1.Container", "resizePolicy"),
    atomic_list("io.k8s.api.core.v1.Container", "restartPolicyRules"),
    merge_map(
        "io.k8s.api.core.v1.Container",
        "volumeMounts",
        "mountPath",
        &["mountPath"],
    ),
    merge_map(
        "io.k8s.api.core.v1.Container",
        "volumeDevices",
        "devicePath",
        &["devicePath"],
    ),
    // ContainerStatus
    merge_map(
        "io.k8s.api.core.v1.ContainerStatus",
        "volumeMounts",
        "mountPath",
        &["mountPath"],
    ),
    merge_map(
        "io.k8s.api.core.v1.ContainerStatus",
        "allocatedResourcesStatus",
        "name",
        &["name"],
    ),
    // ResourceStatus
    map_list(
        "io.k8s.api.core.v1.ResourceStatus",
        "resources",
        &["resourceID"],
    ),
    // LinuxContainerUser
    atomic_list(
        "io.k8s.api.core.v1.LinuxContainerUser",
        "supplementalGroups",
    ),
    // ContainerRestartRuleOnExitCodes
    set_list(
        "io.k8s.api.core.v1.ContainerRestartRuleOnExitCodes",
        "values",
    ),
    // NodeSelector
    atomic_list("io.k8s.api.core.v1.NodeSelector", "nodeSelectorTerms"),
    // NodeSelectorTerm
    atomic_list("io.k8s.api.core.v1.NodeSelectorTerm", "matchExpressions"),
    atomic_list("io.k8s.api.core.v1.NodeSelectorTerm", "matchFields"),
    // NodeSelectorRequirement
    atomic_list("io.k8s.api.core.v1.NodeSelectorRequirement", "values"),
    // PodAffinity
    atomic_list(
        "io.k8s.api.core.v1.PodAffinity",
        "requiredDuringSchedulingIgnoredDuringExecution",
    ),
    atomic_list(
        "io.k8s.api.core.v1.PodAffinity",
        "preferredDuringSchedulingIgnoredDuringExecution",
    ),
    // PodAntiAffinity
    atomic_list(
        "io.k8s.api.core.v1.PodAntiAffinity",
        "requiredDuringSchedulingIgnoredDuringExecution",
    ),
    atomic_list(
        "io.k8s.api.core.v1.PodAntiAffinity",
        "preferredDuringSchedulingIgnoredDuringExecution",
    ),
    // PodAffinityTerm
    atomic_list("io.k8s.api.core.v1.PodAffinityTerm", "namespaces"),
    atomic_list("io.k8s.api.core.v1.PodAffinityTerm", "matchLabelKeys"),
    atomic_list("io.k8s.api.core.v1.PodAffinityTerm", "mismatchLabelKeys"),
    // NodeAffinity
    atomic_list(
        "io.k8s.api.core.v1.NodeAffinity",
        "preferredDuringSchedulingIgnoredDuringExecution",
    ),
    // PodSpec
    FieldMeta {
        strategy: Some("merge,retainKeys"),
        ..merge_map("io.k8s.api.core.v1.PodSpec", "volumes", "name", &["name"])
    },
    merge_map(
        "io.k8s.api.core.v1.PodSpec",
        "initContainers",
        "name",
        &["name"],
    ),
    merge_map(
        "io.k8s.api.core.v1.PodSpec",
        "containers",
        "name",
        &["name"],
    ),
    merge_map(
        "io.k8s.api.core.v1.PodSpec",
        "ephemeralContainers",
        "name",
        &["name"],
    ),
    map_type("io.k8s.api.core.v1.PodSpec", "nodeSelector", "atomic"),
    merge_map(
        "io.k8s.api.core.v1.PodSpec",
        "imagePullSecrets",
        "name",
        &["name"],
    ),
    atomic_list("io.k8s.api.core.v1.PodSpec", "tolerations"),
    merge_map("io.k8s.api.core.v1.PodSpec", "hostAliases", "ip", &["ip"]),
    atomic_list("io.k8s.api.core.v1.PodSpec", "readinessGates"),
    merge_map(
        "io.k8s.api.core.v1.PodSpec",
        "topologySpreadConstraints",
        "topologyKey",
        &["topologyKey", "whenUnsatisfiable"],
    ),
    merge_map(
        "io.k8s.api.core.v1.PodSpec",
        "schedulingGates",
        "name",
        &["name"],
    ),
    FieldMeta {
        strategy: Some("merge,retainKeys"),
        ..merge_map(
            "io.k8s.api.core.v1.PodSpec",
            "resourceClaims",
            "name",
            &["name"],
        )
    },
    merge_map(
        "io.k8s.api.core.v1.PodSpec",
        "evictionResponders",
        "name",
        &["name"],
    ),
    // PodExtendedResourceClaimStatus
    atomic_list(
        "io.k8s.api.core.v1.PodExtendedResourceClaimStatus",
        "requestMappings",
    ),
    // TopologySpreadConstraint
    atomic_list(
        "io.k8s.api.core.v1.TopologySpreadConstraint",
        "matchLabelKeys",
    ),
    // HostAlias
    atomic_list("io.k8s.api.core.v1.HostAlias", "hostnames"),
    // PodSecurityContext
    atomic_list(
        "io.k8s.api.core.v1.PodSecurityContext",
        "supplementalGroups",
    ),
    atomic_list("io.k8s.api.core.v1.PodSecurityContext", "sysctls"),
    // PodDNSConfig
    atomic_list("io.k8s.api.core.v1.PodDNSConfig", "nameservers"),
    atomic_list("io.k8s.api.core.v1.PodDNSConfig", "searches"),
    atomic_list("io.k8s.api.core.v1.PodDNSConfig", "options"),
    // PodStatus
    merge_map(
        "io.k8s.api.core.v1.PodStatus",
        "conditions",
        "type",
        &["type"],
    ),
    merge_atomic("io.k8s.api.core.v1.PodStatus", "hostIPs", "ip"),
    merge_map("io.k8s.api.core.v1.PodStatus", "podIPs", "ip", &["ip"]),
    atomic_list("io.k8s.api.core.v1.PodStatus", "initContainerStatuses"),
    atomic_list("io.k8s.api.core.v1.PodStatus", "containerStatuses"),
    atomic_list("io.k8s.api.core.v1.PodStatus", "ephemeralContainerStatuses"),
    FieldMeta {
        strategy: Some("merge,retainKeys"),
        ..merge_map(
            "io.k8s.api.core.v1.PodStatus",
            "resourceClaimStatuses",
            "name",
            &["name"],
        )
    },
    merge_map(
        "io.k8s.api.core.v1.PodStatus",
        "nodeAllocatableResourceClaimStatuses",
        "resourceClaimName",
        &["resourceClaimName"],
    ),
    map_list("io.k8s.api.core.v1.PodStatus", "volumeHealth", &["name"]),
    // ReplicationControllerSpec
    map_type(
        "io.k8s.api.core.v1.ReplicationControllerSpec",
        "selector",
        "atomic",
    ),
    // ReplicationControllerStatus
    merge_map(
        "io.k8s.api.core.v1.ReplicationControllerStatus",
        "conditions",
        "type",
        &["type"],
    ),
    // ServiceStatus
    merge_map(
        "io.k8s.api.core.v1.ServiceStatus",
        "conditions",
        "type",
        &["type"],
    ),
    // LoadBalancerStatus
    atomic_list("io.k8s.api.core.v1.LoadBalancerStatus", "ingress"),
    // LoadBalancerIngress
    atomic_list("io.k8s.api.core.v1.LoadBalancerIngress", "ports"),
    // ServiceSpec
    merge_map(
        "io.k8s.api.core.v1.ServiceSpec",
        "ports",
        "port",
        &["port", "protocol"],
    ),
    map_type("io.k8s.api.core.v1.ServiceSpec", "selector", "atomic"),
    atomic_list("io.k8s.api.core.v1.ServiceSpec", "clusterIPs"),
    atomic_list("io.k8s.api.core.v1.ServiceSpec", "externalIPs"),
    atomic_list("io.k8s.api.core.v1.ServiceSpec", "loadBalancerSourceRanges"),
    atomic_list("io.k8s.api.core.v1.ServiceSpec", "ipFamilies"),
    // ServiceAccount
    merge_map(
        "io.k8s.api.core.v1.ServiceAccount",
        "secrets",
        "name",
        &["name"],
    ),
    atomic_list("io.k8s.api.core.v1.ServiceAccount", "imagePullSecrets"),
    // Endpoints
    atomic_list("io.k8s.api.core.v1.Endpoints", "subsets"),
    // EndpointSubset
    atomic_list("io.k8s.api.core.v1.EndpointSubset", "addresses"),
    atomic_list("io.k8s.api.core.v1.EndpointSubset", "notReadyAddresses"),
    atomic_list("io.k8s.api.core.v1.EndpointSubset", "ports"),
    // NodeSpec
    merge_set("io.k8s.api.core.v1.NodeSpec", "podCIDRs"),
    atomic_list("io.k8s.api.core.v1.NodeSpec", "taints"),
    // NodePodPreemptionPolicy
    set_list(
        "io.k8s.api.core.v1.NodePodPreemptionPolicy",
        "disableResizePreemption",
    ),
    // NodeStatus
    merge_map(
        "io.k8s.api.core.v1.NodeStatus",
        "conditions",
        "type",
        &["type"],
    ),
    merge_map(
        "io.k8s.api.core.v1.NodeStatus",
        "addresses",
        "type",
        &["type"],
    ),
    atomic_list("io.k8s.api.core.v1.NodeStatus", "images"),
    atomic_list("io.k8s.api.core.v1.NodeStatus", "volumesInUse"),
    atomic_list("io.k8s.api.core.v1.NodeStatus", "volumesAttached"),
    atomic_list("io.k8s.api.core.v1.NodeStatus", "runtimeHandlers"),
    atomic_list("io.k8s.api.core.v1.NodeStatus", "declaredFeatures"),
    // ContainerImage
    atomic_list("io.k8s.api.core.v1.ContainerImage", "names"),
    // NamespaceSpec
    atomic_list("io.k8s.api.core.v1.NamespaceSpec", "finalizers"),
    // NamespaceStatus
    merge_map(
        "io.k8s.api.core.v1.NamespaceStatus",
        "conditions",
        "type",
        &["type"],
    ),
    // LimitRangeSpec
    atomic_list("io.k8s.api.core.v1.LimitRangeSpec", "limits"),
    // ResourceQuotaSpec
    atomic_list("io.k8s.api.core.v1.ResourceQuotaSpec", "scopes"),
    // ScopeSelector
    atomic_list("io.k8s.api.core.v1.ScopeSelector", "matchExpressions"),
    // ScopedResourceSelectorRequirement
    atomic_list(
        "io.k8s.api.core.v1.ScopedResourceSelectorRequirement",
        "values",
    ),
    // DownwardAPIVolumeSource
    atomic_list("io.k8s.api.core.v1.DownwardAPIVolumeSource", "items"),
    // DownwardAPIProjection
    atomic_list("io.k8s.api.core.v1.DownwardAPIProjection", "items"),
    // NodeAllocatableResourceClaimStatus
    set_list(
        "io.k8s.api.core.v1.NodeAllocatableResourceClaimStatus",
        "containers",
    ),
    merge_map(
        "io.k8s.api.core.v1.NodeAllocatableResourceClaimStatus",
        "mapping",
        "name",
        &["name"],
    ),
    merge_map(
        "io.k8s.api.core.v1.NodeAllocatableResourceClaimStatus",
        "overhead",
        "name",
        &["name"],
    ),
    // EphemeralContainer
    atomic_list("io.k8s.api.core.v1.EphemeralContainer", "command"),
    atomic_list("io.k8s.api.core.v1.EphemeralContainer", "args"),
    merge_map(
        "io.k8s.api.core.v1.EphemeralContainer",
        "ports",
        "containerPort",
        &["containerPort", "protocol"],
    ),
    atomic_list("io.k8s.api.core.v1.EphemeralContainer", "envFrom"),
    merge_map(
        "io.k8s.api.core.v1.EphemeralContainer",
        "env",
        "name",
        &["name"],
    ),
    atomic_list("io.k8s.api.core.v1.EphemeralContainer", "resizePolicy"),
    atomic_list(
        "io.k8s.api.core.v1.EphemeralContainer",
        "restartPolicyRules",
    ),
    merge_map(
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeMounts",
        "mountPath",
        &["mountPath"],
    ),
    merge_map(
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeDevices",
        "devicePath",
        &["devicePath"],
    ),
];

/// Struct types marked `+structType=atomic`.
pub(super) static ATOMIC: &[&str] = &[
    "io.k8s.api.core.v1.SecretReference",
    "io.k8s.api.core.v1.FileKeySelector",
    "io.k8s.api.core.v1.ObjectFieldSelector",
    "io.k8s.api.core.v1.ResourceFieldSelector",
    "io.k8s.api.core.v1.ConfigMapKeySelector",
    "io.k8s.api.core.v1.SecretKeySelector",
    "io.k8s.api.core.v1.NodeSelector",
    "io.k8s.api.core.v1.NodeSelectorTerm",
    "io.k8s.api.core.v1.EvictionResponder",
    "io.k8s.api.core.v1.EndpointAddress",
    "io.k8s.api.core.v1.EndpointPort",
    "io.k8s.api.core.v1.ObjectReference",
    "io.k8s.api.core.v1.LocalObjectReference",
    "io.k8s.api.core.v1.TypedLocalObjectReference",
    "io.k8s.api.core.v1.ScopeSelector",
];
