//! Tables for `v1.PodSpec` and what it holds (containers, probes, security
//! contexts, affinity, ...), shared by pods and every workload template.
//!
//! Field numbers, JSON names and types follow upstream's `generated.proto`
//! and `types.go`; `omit` marks Go value fields tagged `omitempty`, whose zero
//! value means unset (see [`super::schema::Card`]).

use super::schema::{inline, map, msg, omit, opt, rep, Msg, BOOL, I32, I64, INT_OR_STR, QTY, STR};
use super::{meta, volume};

/// `core/v1.LocalObjectReference`.
pub static LOCAL_OBJECT_REFERENCE: Msg = Msg {
    name: "core/v1.LocalObjectReference",
    fields: &[omit(1, "name", STR)],
};

/// `core/v1.PodSpec`.
pub static POD_SPEC: Msg = Msg {
    name: "core/v1.PodSpec",
    fields: &[
        rep(1, "volumes", msg(&volume::VOLUME)),
        rep(20, "initContainers", msg(&CONTAINER)),
        rep(2, "containers", msg(&CONTAINER)),
        rep(34, "ephemeralContainers", msg(&EPHEMERAL_CONTAINER)),
        omit(3, "restartPolicy", STR),
        opt(4, "terminationGracePeriodSeconds", I64),
        opt(5, "activeDeadlineSeconds", I64),
        omit(6, "dnsPolicy", STR),
        map(7, "nodeSelector", STR),
        omit(8, "serviceAccountName", STR),
        omit(9, "serviceAccount", STR),
        opt(21, "automountServiceAccountToken", BOOL),
        omit(10, "nodeName", STR),
        omit(11, "hostNetwork", BOOL),
        omit(12, "hostPID", BOOL),
        omit(13, "hostIPC", BOOL),
        opt(27, "shareProcessNamespace", BOOL),
        opt(14, "securityContext", msg(&POD_SECURITY_CONTEXT)),
        rep(15, "imagePullSecrets", msg(&LOCAL_OBJECT_REFERENCE)),
        omit(16, "hostname", STR),
        omit(17, "subdomain", STR),
        opt(18, "affinity", msg(&AFFINITY)),
        omit(19, "schedulerName", STR),
        rep(22, "tolerations", msg(&TOLERATION)),
        rep(23, "hostAliases", msg(&HOST_ALIAS)),
        omit(24, "priorityClassName", STR),
        opt(25, "priority", I32),
        opt(26, "dnsConfig", msg(&POD_DNS_CONFIG)),
        rep(28, "readinessGates", msg(&POD_READINESS_GATE)),
        opt(29, "runtimeClassName", STR),
        opt(30, "enableServiceLinks", BOOL),
        opt(31, "preemptionPolicy", STR),
        map(32, "overhead", QTY),
        rep(
            33,
            "topologySpreadConstraints",
            msg(&TOPOLOGY_SPREAD_CONSTRAINT),
        ),
        opt(35, "setHostnameAsFQDN", BOOL),
        opt(36, "os", msg(&POD_OS)),
        opt(37, "hostUsers", BOOL),
        rep(38, "schedulingGates", msg(&POD_SCHEDULING_GATE)),
        rep(39, "resourceClaims", msg(&POD_RESOURCE_CLAIM)),
        opt(40, "resources", msg(&RESOURCE_REQUIREMENTS)),
        opt(41, "hostnameOverride", STR),
        opt(43, "schedulingGroup", msg(&POD_SCHEDULING_GROUP)),
        rep(44, "evictionResponders", msg(&EVICTION_RESPONDER)),
    ],
};

/// `core/v1.Container`.
pub static CONTAINER: Msg = Msg {
    name: "core/v1.Container",
    fields: &[
        opt(1, "name", STR),
        omit(2, "image", STR),
        rep(3, "command", STR),
        rep(4, "args", STR),
        omit(5, "workingDir", STR),
        rep(6, "ports", msg(&CONTAINER_PORT)),
        rep(19, "envFrom", msg(&ENV_FROM_SOURCE)),
        rep(7, "env", msg(&ENV_VAR)),
        opt(8, "resources", msg(&RESOURCE_REQUIREMENTS)),
        rep(23, "resizePolicy", msg(&CONTAINER_RESIZE_POLICY)),
        opt(24, "restartPolicy", STR),
        rep(25, "restartPolicyRules", msg(&CONTAINER_RESTART_RULE)),
        rep(9, "volumeMounts", msg(&VOLUME_MOUNT)),
        rep(21, "volumeDevices", msg(&VOLUME_DEVICE)),
        opt(10, "livenessProbe", msg(&PROBE)),
        opt(11, "readinessProbe", msg(&PROBE)),
        opt(22, "startupProbe", msg(&PROBE)),
        opt(12, "lifecycle", msg(&LIFECYCLE)),
        omit(13, "terminationMessagePath", STR),
        omit(20, "terminationMessagePolicy", STR),
        omit(14, "imagePullPolicy", STR),
        opt(15, "securityContext", msg(&SECURITY_CONTEXT)),
        omit(16, "stdin", BOOL),
        omit(17, "stdinOnce", BOOL),
        omit(18, "tty", BOOL),
    ],
};

/// `core/v1.EphemeralContainer`.
pub static EPHEMERAL_CONTAINER: Msg = Msg {
    name: "core/v1.EphemeralContainer",
    fields: &[
        inline(1, msg(&EPHEMERAL_CONTAINER_COMMON)),
        omit(2, "targetContainerName", STR),
    ],
};

/// `core/v1.PodSecurityContext`.
pub static POD_SECURITY_CONTEXT: Msg = Msg {
    name: "core/v1.PodSecurityContext",
    fields: &[
        opt(1, "seLinuxOptions", msg(&SE_LINUX_OPTIONS)),
        opt(8, "windowsOptions", msg(&WINDOWS_SECURITY_CONTEXT_OPTIONS)),
        opt(2, "runAsUser", I64),
        opt(6, "runAsGroup", I64),
        opt(3, "runAsNonRoot", BOOL),
        rep(4, "supplementalGroups", I64),
        opt(12, "supplementalGroupsPolicy", STR),
        opt(5, "fsGroup", I64),
        rep(7, "sysctls", msg(&SYSCTL)),
        opt(9, "fsGroupChangePolicy", STR),
        opt(10, "seccompProfile", msg(&SECCOMP_PROFILE)),
        opt(11, "appArmorProfile", msg(&APP_ARMOR_PROFILE)),
        opt(13, "seLinuxChangePolicy", STR),
    ],
};

/// `core/v1.Affinity`.
pub static AFFINITY: Msg = Msg {
    name: "core/v1.Affinity",
    fields: &[
        opt(1, "nodeAffinity", msg(&NODE_AFFINITY)),
        opt(2, "podAffinity", msg(&POD_AFFINITY)),
        opt(3, "podAntiAffinity", msg(&POD_ANTI_AFFINITY)),
    ],
};

/// `core/v1.Toleration`.
pub static TOLERATION: Msg = Msg {
    name: "core/v1.Toleration",
    fields: &[
        omit(1, "key", STR),
        omit(2, "operator", STR),
        omit(3, "value", STR),
        omit(4, "effect", STR),
        opt(5, "tolerationSeconds", I64),
    ],
};

/// `core/v1.HostAlias`.
pub static HOST_ALIAS: Msg = Msg {
    name: "core/v1.HostAlias",
    fields: &[opt(1, "ip", STR), rep(2, "hostnames", STR)],
};

/// `core/v1.PodDNSConfig`.
pub static POD_DNS_CONFIG: Msg = Msg {
    name: "core/v1.PodDNSConfig",
    fields: &[
        rep(1, "nameservers", STR),
        rep(2, "searches", STR),
        rep(3, "options", msg(&POD_DNS_CONFIG_OPTION)),
    ],
};

/// `core/v1.PodReadinessGate`.
pub static POD_READINESS_GATE: Msg = Msg {
    name: "core/v1.PodReadinessGate",
    fields: &[opt(1, "conditionType", STR)],
};

/// `core/v1.TopologySpreadConstraint`.
pub static TOPOLOGY_SPREAD_CONSTRAINT: Msg = Msg {
    name: "core/v1.TopologySpreadConstraint",
    fields: &[
        opt(1, "maxSkew", I32),
        opt(2, "topologyKey", STR),
        opt(3, "whenUnsatisfiable", STR),
        opt(4, "labelSelector", msg(&meta::LABEL_SELECTOR)),
        opt(5, "minDomains", I32),
        opt(6, "nodeAffinityPolicy", STR),
        opt(7, "nodeTaintsPolicy", STR),
        rep(8, "matchLabelKeys", STR),
    ],
};

/// `core/v1.PodOS`.
pub static POD_OS: Msg = Msg {
    name: "core/v1.PodOS",
    fields: &[opt(1, "name", STR)],
};

/// `core/v1.PodSchedulingGate`.
pub static POD_SCHEDULING_GATE: Msg = Msg {
    name: "core/v1.PodSchedulingGate",
    fields: &[opt(1, "name", STR)],
};

/// `core/v1.PodResourceClaim`.
pub static POD_RESOURCE_CLAIM: Msg = Msg {
    name: "core/v1.PodResourceClaim",
    fields: &[
        opt(1, "name", STR),
        opt(3, "resourceClaimName", STR),
        opt(4, "resourceClaimTemplateName", STR),
    ],
};

/// `core/v1.ResourceRequirements`.
pub static RESOURCE_REQUIREMENTS: Msg = Msg {
    name: "core/v1.ResourceRequirements",
    fields: &[
        map(1, "limits", QTY),
        map(2, "requests", QTY),
        rep(3, "claims", msg(&RESOURCE_CLAIM)),
    ],
};

/// `core/v1.PodSchedulingGroup`.
pub static POD_SCHEDULING_GROUP: Msg = Msg {
    name: "core/v1.PodSchedulingGroup",
    fields: &[opt(1, "podGroupName", STR)],
};

/// `core/v1.EvictionResponder`.
pub static EVICTION_RESPONDER: Msg = Msg {
    name: "core/v1.EvictionResponder",
    fields: &[opt(1, "name", STR), opt(2, "priority", I32)],
};

/// `core/v1.ContainerPort`.
pub static CONTAINER_PORT: Msg = Msg {
    name: "core/v1.ContainerPort",
    fields: &[
        omit(1, "name", STR),
        omit(2, "hostPort", I32),
        opt(3, "containerPort", I32),
        omit(4, "protocol", STR),
        omit(5, "hostIP", STR),
    ],
};

/// `core/v1.EnvFromSource`.
pub static ENV_FROM_SOURCE: Msg = Msg {
    name: "core/v1.EnvFromSource",
    fields: &[
        omit(1, "prefix", STR),
        opt(2, "configMapRef", msg(&CONFIG_MAP_ENV_SOURCE)),
        opt(3, "secretRef", msg(&SECRET_ENV_SOURCE)),
    ],
};

/// `core/v1.EnvVar`.
pub static ENV_VAR: Msg = Msg {
    name: "core/v1.EnvVar",
    fields: &[
        opt(1, "name", STR),
        omit(2, "value", STR),
        opt(3, "valueFrom", msg(&ENV_VAR_SOURCE)),
    ],
};

/// `core/v1.ContainerResizePolicy`.
pub static CONTAINER_RESIZE_POLICY: Msg = Msg {
    name: "core/v1.ContainerResizePolicy",
    fields: &[opt(1, "resourceName", STR), opt(2, "restartPolicy", STR)],
};

/// `core/v1.ContainerRestartRule`.
pub static CONTAINER_RESTART_RULE: Msg = Msg {
    name: "core/v1.ContainerRestartRule",
    fields: &[
        omit(1, "action", STR),
        opt(2, "exitCodes", msg(&CONTAINER_RESTART_RULE_ON_EXIT_CODES)),
    ],
};

/// `core/v1.VolumeMount`.
pub static VOLUME_MOUNT: Msg = Msg {
    name: "core/v1.VolumeMount",
    fields: &[
        opt(1, "name", STR),
        omit(2, "readOnly", BOOL),
        opt(7, "recursiveReadOnly", STR),
        opt(3, "mountPath", STR),
        omit(4, "subPath", STR),
        opt(5, "mountPropagation", STR),
        omit(6, "subPathExpr", STR),
        rep(8, "bindMountOptions", STR),
    ],
};

/// `core/v1.VolumeDevice`.
pub static VOLUME_DEVICE: Msg = Msg {
    name: "core/v1.VolumeDevice",
    fields: &[opt(1, "name", STR), opt(2, "devicePath", STR)],
};

/// `core/v1.Probe`.
pub static PROBE: Msg = Msg {
    name: "core/v1.Probe",
    fields: &[
        inline(1, msg(&PROBE_HANDLER)),
        omit(2, "initialDelaySeconds", I32),
        omit(3, "timeoutSeconds", I32),
        omit(4, "periodSeconds", I32),
        omit(5, "successThreshold", I32),
        omit(6, "failureThreshold", I32),
        opt(7, "terminationGracePeriodSeconds", I64),
    ],
};

/// `core/v1.Lifecycle`.
pub static LIFECYCLE: Msg = Msg {
    name: "core/v1.Lifecycle",
    fields: &[
        opt(1, "postStart", msg(&LIFECYCLE_HANDLER)),
        opt(2, "preStop", msg(&LIFECYCLE_HANDLER)),
        opt(3, "stopSignal", STR),
    ],
};

/// `core/v1.SecurityContext`.
pub static SECURITY_CONTEXT: Msg = Msg {
    name: "core/v1.SecurityContext",
    fields: &[
        opt(1, "capabilities", msg(&CAPABILITIES)),
        opt(2, "privileged", BOOL),
        opt(3, "seLinuxOptions", msg(&SE_LINUX_OPTIONS)),
        opt(10, "windowsOptions", msg(&WINDOWS_SECURITY_CONTEXT_OPTIONS)),
        opt(4, "runAsUser", I64),
        opt(8, "runAsGroup", I64),
        opt(5, "runAsNonRoot", BOOL),
        opt(6, "readOnlyRootFilesystem", BOOL),
        opt(7, "allowPrivilegeEscalation", BOOL),
        opt(9, "procMount", STR),
        opt(11, "seccompProfile", msg(&SECCOMP_PROFILE)),
        opt(12, "appArmorProfile", msg(&APP_ARMOR_PROFILE)),
    ],
};

/// `core/v1.EphemeralContainerCommon`.
pub static EPHEMERAL_CONTAINER_COMMON: Msg = Msg {
    name: "core/v1.EphemeralContainerCommon",
    fields: &[
        opt(1, "name", STR),
        omit(2, "image", STR),
        rep(3, "command", STR),
        rep(4, "args", STR),
        omit(5, "workingDir", STR),
        rep(6, "ports", msg(&CONTAINER_PORT)),
        rep(19, "envFrom", msg(&ENV_FROM_SOURCE)),
        rep(7, "env", msg(&ENV_VAR)),
        opt(8, "resources", msg(&RESOURCE_REQUIREMENTS)),
        rep(23, "resizePolicy", msg(&CONTAINER_RESIZE_POLICY)),
        opt(24, "restartPolicy", STR),
        rep(25, "restartPolicyRules", msg(&CONTAINER_RESTART_RULE)),
        rep(9, "volumeMounts", msg(&VOLUME_MOUNT)),
        rep(21, "volumeDevices", msg(&VOLUME_DEVICE)),
        opt(10, "livenessProbe", msg(&PROBE)),
        opt(11, "readinessProbe", msg(&PROBE)),
        opt(22, "startupProbe", msg(&PROBE)),
        opt(12, "lifecycle", msg(&LIFECYCLE)),
        omit(13, "terminationMessagePath", STR),
        omit(20, "terminationMessagePolicy", STR),
        omit(14, "imagePullPolicy", STR),
        opt(15, "securityContext", msg(&SECURITY_CONTEXT)),
        omit(16, "stdin", BOOL),
        omit(17, "stdinOnce", BOOL),
        omit(18, "tty", BOOL),
    ],
};

/// `core/v1.SELinuxOptions`.
pub static SE_LINUX_OPTIONS: Msg = Msg {
    name: "core/v1.SELinuxOptions",
    fields: &[
        omit(1, "user", STR),
        omit(2, "role", STR),
        omit(3, "type", STR),
        omit(4, "level", STR),
    ],
};

/// `core/v1.WindowsSecurityContextOptions`.
pub static WINDOWS_SECURITY_CONTEXT_OPTIONS: Msg = Msg {
    name: "core/v1.WindowsSecurityContextOptions",
    fields: &[
        opt(1, "gmsaCredentialSpecName", STR),
        opt(2, "gmsaCredentialSpec", STR),
        opt(3, "runAsUserName", STR),
        opt(4, "hostProcess", BOOL),
    ],
};

/// `core/v1.Sysctl`.
pub static SYSCTL: Msg = Msg {
    name: "core/v1.Sysctl",
    fields: &[opt(1, "name", STR), opt(2, "value", STR)],
};

/// `core/v1.SeccompProfile`.
pub static SECCOMP_PROFILE: Msg = Msg {
    name: "core/v1.SeccompProfile",
    fields: &[opt(1, "type", STR), opt(2, "localhostProfile", STR)],
};

/// `core/v1.AppArmorProfile`.
pub static APP_ARMOR_PROFILE: Msg = Msg {
    name: "core/v1.AppArmorProfile",
    fields: &[opt(1, "type", STR), opt(2, "localhostProfile", STR)],
};

/// `core/v1.NodeAffinity`.
pub static NODE_AFFINITY: Msg = Msg {
    name: "core/v1.NodeAffinity",
    fields: &[
        opt(
            1,
            "requiredDuringSchedulingIgnoredDuringExecution",
            msg(&NODE_SELECTOR),
        ),
        rep(
            2,
            "preferredDuringSchedulingIgnoredDuringExecution",
            msg(&PREFERRED_SCHEDULING_TERM),
        ),
    ],
};

/// `core/v1.PodAffinity`.
pub static POD_AFFINITY: Msg = Msg {
    name: "core/v1.PodAffinity",
    fields: &[
        rep(
            1,
            "requiredDuringSchedulingIgnoredDuringExecution",
            msg(&POD_AFFINITY_TERM),
        ),
        rep(
            2,
            "preferredDuringSchedulingIgnoredDuringExecution",
            msg(&WEIGHTED_POD_AFFINITY_TERM),
        ),
    ],
};

/// `core/v1.PodAntiAffinity`.
pub static POD_ANTI_AFFINITY: Msg = Msg {
    name: "core/v1.PodAntiAffinity",
    fields: &[
        rep(
            1,
            "requiredDuringSchedulingIgnoredDuringExecution",
            msg(&POD_AFFINITY_TERM),
        ),
        rep(
            2,
            "preferredDuringSchedulingIgnoredDuringExecution",
            msg(&WEIGHTED_POD_AFFINITY_TERM),
        ),
    ],
};

/// `core/v1.PodDNSConfigOption`.
pub static POD_DNS_CONFIG_OPTION: Msg = Msg {
    name: "core/v1.PodDNSConfigOption",
    fields: &[omit(1, "name", STR), opt(2, "value", STR)],
};

/// `core/v1.ResourceClaim`.
pub static RESOURCE_CLAIM: Msg = Msg {
    name: "core/v1.ResourceClaim",
    fields: &[opt(1, "name", STR), omit(2, "request", STR)],
};

/// `core/v1.ConfigMapEnvSource`.
pub static CONFIG_MAP_ENV_SOURCE: Msg = Msg {
    name: "core/v1.ConfigMapEnvSource",
    fields: &[
        inline(1, msg(&LOCAL_OBJECT_REFERENCE)),
        opt(2, "optional", BOOL),
    ],
};

/// `core/v1.SecretEnvSource`.
pub static SECRET_ENV_SOURCE: Msg = Msg {
    name: "core/v1.SecretEnvSource",
    fields: &[
        inline(1, msg(&LOCAL_OBJECT_REFERENCE)),
        opt(2, "optional", BOOL),
    ],
};

/// `core/v1.EnvVarSource`.
pub static ENV_VAR_SOURCE: Msg = Msg {
    name: "core/v1.EnvVarSource",
    fields: &[
        opt(1, "fieldRef", msg(&OBJECT_FIELD_SELECTOR)),
        opt(2, "resourceFieldRef", msg(&RESOURCE_FIELD_SELECTOR)),
        opt(3, "configMapKeyRef", msg(&CONFIG_MAP_KEY_SELECTOR)),
        opt(4, "secretKeyRef", msg(&SECRET_KEY_SELECTOR)),
        opt(5, "fileKeyRef", msg(&FILE_KEY_SELECTOR)),
    ],
};

/// `core/v1.ContainerRestartRuleOnExitCodes`.
pub static CONTAINER_RESTART_RULE_ON_EXIT_CODES: Msg = Msg {
    name: "core/v1.ContainerRestartRuleOnExitCodes",
    fields: &[omit(1, "operator", STR), rep(2, "values", I32)],
};

/// `core/v1.ProbeHandler`.
pub static PROBE_HANDLER: Msg = Msg {
    name: "core/v1.ProbeHandler",
    fields: &[
        opt(1, "exec", msg(&EXEC_ACTION)),
        opt(2, "httpGet", msg(&HTTP_GET_ACTION)),
        opt(3, "tcpSocket", msg(&TCP_SOCKET_ACTION)),
        opt(4, "grpc", msg(&GRPC_ACTION)),
    ],
};

/// `core/v1.LifecycleHandler`.
pub static LIFECYCLE_HANDLER: Msg = Msg {
    name: "core/v1.LifecycleHandler",
    fields: &[
        opt(1, "exec", msg(&EXEC_ACTION)),
        opt(2, "httpGet", msg(&HTTP_GET_ACTION)),
        opt(3, "tcpSocket", msg(&TCP_SOCKET_ACTION)),
        opt(4, "sleep", msg(&SLEEP_ACTION)),
    ],
};

/// `core/v1.Capabilities`.
pub static CAPABILITIES: Msg = Msg {
    name: "core/v1.Capabilities",
    fields: &[rep(1, "add", STR), rep(2, "drop", STR)],
};

/// `core/v1.NodeSelector`.
pub static NODE_SELECTOR: Msg = Msg {
    name: "core/v1.NodeSelector",
    fields: &[rep(1, "nodeSelectorTerms", msg(&NODE_SELECTOR_TERM))],
};

/// `core/v1.PreferredSchedulingTerm`.
pub static PREFERRED_SCHEDULING_TERM: Msg = Msg {
    name: "core/v1.PreferredSchedulingTerm",
    fields: &[
        opt(1, "weight", I32),
        opt(2, "preference", msg(&NODE_SELECTOR_TERM)),
    ],
};

/// `core/v1.PodAffinityTerm`.
pub static POD_AFFINITY_TERM: Msg = Msg {
    name: "core/v1.PodAffinityTerm",
    fields: &[
        opt(1, "labelSelector", msg(&meta::LABEL_SELECTOR)),
        rep(2, "namespaces", STR),
        opt(3, "topologyKey", STR),
        opt(4, "namespaceSelector", msg(&meta::LABEL_SELECTOR)),
        rep(5, "matchLabelKeys", STR),
        rep(6, "mismatchLabelKeys", STR),
    ],
};

/// `core/v1.WeightedPodAffinityTerm`.
pub static WEIGHTED_POD_AFFINITY_TERM: Msg = Msg {
    name: "core/v1.WeightedPodAffinityTerm",
    fields: &[
        opt(1, "weight", I32),
        opt(2, "podAffinityTerm", msg(&POD_AFFINITY_TERM)),
    ],
};

/// `core/v1.ObjectFieldSelector`.
pub static OBJECT_FIELD_SELECTOR: Msg = Msg {
    name: "core/v1.ObjectFieldSelector",
    fields: &[omit(1, "apiVersion", STR), opt(2, "fieldPath", STR)],
};

/// `core/v1.ResourceFieldSelector`.
pub static RESOURCE_FIELD_SELECTOR: Msg = Msg {
    name: "core/v1.ResourceFieldSelector",
    fields: &[
        omit(1, "containerName", STR),
        opt(2, "resource", STR),
        opt(3, "divisor", QTY),
    ],
};

/// `core/v1.ConfigMapKeySelector`.
pub static CONFIG_MAP_KEY_SELECTOR: Msg = Msg {
    name: "core/v1.ConfigMapKeySelector",
    fields: &[
        inline(1, msg(&LOCAL_OBJECT_REFERENCE)),
        opt(2, "key", STR),
        opt(3, "optional", BOOL),
    ],
};

/// `core/v1.SecretKeySelector`.
pub static SECRET_KEY_SELECTOR: Msg = Msg {
    name: "core/v1.SecretKeySelector",
    fields: &[
        inline(1, msg(&LOCAL_OBJECT_REFERENCE)),
        opt(2, "key", STR),
        opt(3, "optional", BOOL),
    ],
};

/// `core/v1.FileKeySelector`.
pub static FILE_KEY_SELECTOR: Msg = Msg {
    name: "core/v1.FileKeySelector",
    fields: &[
        opt(1, "volumeName", STR),
        opt(2, "path", STR),
        opt(3, "key", STR),
        opt(4, "optional", BOOL),
    ],
};

/// `core/v1.ExecAction`.
pub static EXEC_ACTION: Msg = Msg {
    name: "core/v1.ExecAction",
    fields: &[rep(1, "command", STR)],
};

/// `core/v1.HTTPGetAction`.
pub static HTTP_GET_ACTION: Msg = Msg {
    name: "core/v1.HTTPGetAction",
    fields: &[
        omit(1, "path", STR),
        opt(2, "port", INT_OR_STR),
        omit(3, "host", STR),
        omit(4, "scheme", STR),
        rep(5, "httpHeaders", msg(&HTTP_HEADER)),
        opt(6, "protocol", STR),
    ],
};

/// `core/v1.TCPSocketAction`.
pub static TCP_SOCKET_ACTION: Msg = Msg {
    name: "core/v1.TCPSocketAction",
    fields: &[opt(1, "port", INT_OR_STR), omit(2, "host", STR)],
};

/// `core/v1.GRPCAction`.
pub static GRPC_ACTION: Msg = Msg {
    name: "core/v1.GRPCAction",
    fields: &[
        opt(1, "port", I32),
        opt(2, "service", STR),
        opt(3, "mode", STR),
    ],
};

/// `core/v1.SleepAction`.
pub static SLEEP_ACTION: Msg = Msg {
    name: "core/v1.SleepAction",
    fields: &[opt(1, "seconds", I64)],
};

/// `core/v1.NodeSelectorTerm`.
pub static NODE_SELECTOR_TERM: Msg = Msg {
    name: "core/v1.NodeSelectorTerm",
    fields: &[
        rep(1, "matchExpressions", msg(&NODE_SELECTOR_REQUIREMENT)),
        rep(2, "matchFields", msg(&NODE_SELECTOR_REQUIREMENT)),
    ],
};

/// `core/v1.HTTPHeader`.
pub static HTTP_HEADER: Msg = Msg {
    name: "core/v1.HTTPHeader",
    fields: &[opt(1, "name", STR), opt(2, "value", STR)],
};

/// `core/v1.NodeSelectorRequirement`.
pub static NODE_SELECTOR_REQUIREMENT: Msg = Msg {
    name: "core/v1.NodeSelectorRequirement",
    fields: &[
        opt(1, "key", STR),
        opt(2, "operator", STR),
        rep(3, "values", STR),
    ],
};
