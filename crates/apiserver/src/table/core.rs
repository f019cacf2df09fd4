//! Core (`v1`) kinds other than pods and events: services, nodes,
//! namespaces, configuration objects, endpoints, replication controllers,
//! quotas and volumes.
//!
//! Where upstream's defaulting always fills a field before anything is
//! stored (a service's type, a secret's type, a PV's reclaim policy...), a
//! missing field prints as its default, so a table never shows a blank that
//! upstream could not show.

use serde_json::{json, Value};

use super::format::{
    access_modes, arr, containers_and_images, format_labels, int, join_host_port,
    load_balancer_ingress, map_len, obj, opt_s, quantity, s, Clock,
};
use super::{Column, AGE, CONTAINERS, IMAGES, NAME};

/// ConfigMap columns.
pub(super) const CONFIG_MAP: &[Column] = &[
    NAME,
    Column::new("Data", "string", "Data contains the configuration data."),
    AGE,
];

/// One ConfigMap row: DATA counts `data` and `binaryData` keys.
pub(super) fn config_map(cm: &Value, clock: &Clock) -> Vec<Value> {
    let data = map_len(cm, "/data") + map_len(cm, "/binaryData");
    vec![
        json!(s(cm, "/metadata/name")),
        json!(data),
        json!(clock.age(cm)),
    ]
}

/// Secret columns.
pub(super) const SECRET: &[Column] = &[
    NAME,
    Column::new(
        "Type",
        "string",
        "Used to facilitate programmatic handling of secret data.",
    ),
    Column::new("Data", "string", "Data contains the secret data."),
    AGE,
];

/// One Secret row.
pub(super) fn secret(secret: &Value, clock: &Clock) -> Vec<Value> {
    let kind = match s(secret, "/type") {
        "" => "Opaque",
        t => t,
    };
    vec![
        json!(s(secret, "/metadata/name")),
        json!(kind),
        json!(map_len(secret, "/data")),
        json!(clock.age(secret)),
    ]
}

/// ServiceAccount columns.
pub(super) const SERVICE_ACCOUNT: &[Column] = &[
    NAME,
    Column::new(
        "Secrets",
        "string",
        "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.",
    ),
    AGE,
];

/// One ServiceAccount row: SECRETS is the number of listed secrets.
pub(super) fn service_account(sa: &Value, clock: &Clock) -> Vec<Value> {
    vec![
        json!(s(sa, "/metadata/name")),
        json!(arr(sa, "/secrets").len()),
        json!(clock.age(sa)),
    ]
}

/// Namespace columns.
pub(super) const NAMESPACE: &[Column] = &[
    NAME,
    Column::new("Status", "string", "The status of the namespace"),
    AGE,
];

/// One Namespace row; the phase defaults to Active upstream.
pub(super) fn namespace(ns: &Value, clock: &Clock) -> Vec<Value> {
    let phase = match s(ns, "/status/phase") {
        "" => "Active",
        p => p,
    };
    vec![
        json!(s(ns, "/metadata/name")),
        json!(phase),
        json!(clock.age(ns)),
    ]
}

/// Endpoints columns.
pub(super) const ENDPOINTS: &[Column] = &[
    NAME,
    Column::new(
        "Endpoints",
        "string",
        "The set of all endpoints is the union of all subsets.",
    ),
    AGE,
];

/// Upstream's `formatEndpoints`: up to three `ip:port` (or bare IPs for a
/// subset without ports), then `+ N more...`; `<none>` without subsets.
fn format_endpoints(ep: &Value) -> String {
    let subsets = arr(ep, "/subsets");
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0;
    for ss in subsets {
        let addresses = arr(ss, "/addresses");
        let ports = arr(ss, "/ports");
        if ports.is_empty() {
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(s(a, "/ip").to_string());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(join_host_port(s(a, "/ip"), int(port, "/port")));
            }
        }
    }
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", count - MAX);
    }
    ret
}

/// One Endpoints row.
pub(super) fn endpoints(ep: &Value, clock: &Clock) -> Vec<Value> {
    vec![
        json!(s(ep, "/metadata/name")),
        json!(format_endpoints(ep)),
        json!(clock.age(ep)),
    ]
}

/// Service columns.
pub(super) const SERVICE: &[Column] = &[
    NAME,
    Column::new("Type", "string", "type determines how the Service is exposed. Defaults to ClusterIP."),
    Column::new("Cluster-IP", "string", "clusterIP is the IP address of the service and is usually assigned randomly."),
    Column::new(
        "External-IP",
        "string",
        "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
    ),
    Column::new("Port(s)", "string", "The list of ports that are exposed by this service."),
    AGE,
    Column::wide(
        "Selector",
        "string",
        "Route service traffic to pods with label keys and values matching this selector.",
    ),
];

/// Upstream's `getServiceExternalIP` for the wide (server-side) output.
fn service_external_ip(svc: &Value, kind: &str) -> String {
    let external: Vec<&str> = arr(svc, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match kind {
        "ClusterIP" | "NodePort" => {
            if external.is_empty() {
                "<none>".to_string()
            } else {
                external.join(",")
            }
        }
        "LoadBalancer" => {
            let lb = load_balancer_ingress(arr(svc, "/status/loadBalancer/ingress"));
            if !external.is_empty() {
                let mut all: Vec<&str> = if lb.is_empty() {
                    Vec::new()
                } else {
                    lb.split(',').collect()
                };
                all.extend(external);
                return all.join(",");
            }
            if lb.is_empty() {
                "<pending>".to_string()
            } else {
                lb
            }
        }
        "ExternalName" => s(svc, "/spec/externalName").to_string(),
        _ => "<unknown>".to_string(),
    }
}

/// Upstream's `makePortString`: `port/proto`, or `port:nodePort/proto`.
fn service_ports(svc: &Value) -> String {
    let ports: Vec<String> = arr(svc, "/spec/ports")
        .iter()
        .map(|p| {
            let proto = match s(p, "/protocol") {
                "" => "TCP",
                proto => proto,
            };
            let node_port = int(p, "/nodePort");
            if node_port > 0 {
                format!("{}:{node_port}/{proto}", int(p, "/port"))
            } else {
                format!("{}/{proto}", int(p, "/port"))
            }
        })
        .collect();
    if ports.is_empty() {
        "<none>".to_string()
    } else {
        ports.join(",")
    }
}

/// One Service row.
pub(super) fn service(svc: &Value, clock: &Clock) -> Vec<Value> {
    let kind = match s(svc, "/spec/type") {
        "" => "ClusterIP",
        t => t,
    };
    let cluster_ip = match (s(svc, "/spec/clusterIPs/0"), s(svc, "/spec/clusterIP")) {
        ("", "") => "<none>",
        ("", ip) | (ip, _) => ip,
    };
    vec![
        json!(s(svc, "/metadata/name")),
        json!(kind),
        json!(cluster_ip),
        json!(service_external_ip(svc, kind)),
        json!(service_ports(svc)),
        json!(clock.age(svc)),
        json!(format_labels(obj(svc, "/spec/selector"))),
    ]
}

/// Node columns.
pub(super) const NODE: &[Column] = &[
    NAME,
    Column::new("Status", "string", "The status of the node"),
    Column::new("Roles", "string", "The roles of the node"),
    AGE,
    Column::new("Version", "string", "Kubelet Version reported by the node."),
    Column::wide("Internal-IP", "string", "List of addresses reachable to the node."),
    Column::wide("External-IP", "string", "List of addresses reachable to the node."),
    Column::wide("OS-Image", "string", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy))."),
    Column::wide("Kernel-Version", "string", "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."),
    Column::wide(
        "Container-Runtime",
        "string",
        "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
    ),
];

/// STATUS: only the Ready condition counts (`Ready`, `NotReady`, or
/// `Unknown` without one), then `SchedulingDisabled` for a cordoned node.
fn node_status(node: &Value) -> String {
    let mut status: Vec<&str> = Vec::new();
    if let Some(c) = arr(node, "/status/conditions")
        .iter()
        .rfind(|c| s(c, "/type") == "Ready")
    {
        status.push(if s(c, "/status") == "True" {
            "Ready"
        } else {
            "NotReady"
        });
    } else {
        status.push("Unknown");
    }
    if node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push("SchedulingDisabled");
    }
    status.join(",")
}

/// ROLES: every `node-role.kubernetes.io/<role>` label and the value of
/// `kubernetes.io/role`, sorted and de-duplicated; `<none>` without any.
fn node_roles(node: &Value) -> String {
    let mut roles: Vec<&str> = Vec::new();
    for (k, v) in obj(node, "/metadata/labels").into_iter().flatten() {
        if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
            if !role.is_empty() {
                roles.push(role);
            }
        } else if k == "kubernetes.io/role" {
            if let Some(v) = v.as_str().filter(|v| !v.is_empty()) {
                roles.push(v);
            }
        }
    }
    roles.sort_unstable();
    roles.dedup();
    if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.join(",")
    }
}

/// The first address of the given type, or `<none>`.
fn node_address<'a>(node: &'a Value, kind: &str) -> &'a str {
    arr(node, "/status/addresses")
        .iter()
        .find(|a| s(a, "/type") == kind)
        .map_or("<none>", |a| s(a, "/address"))
}

fn or_unknown(v: &str) -> &str {
    if v.is_empty() {
        "<unknown>"
    } else {
        v
    }
}

/// One Node row.
pub(super) fn node(node: &Value, clock: &Clock) -> Vec<Value> {
    vec![
        json!(s(node, "/metadata/name")),
        json!(node_status(node)),
        json!(node_roles(node)),
        json!(clock.age(node)),
        json!(s(node, "/status/nodeInfo/kubeletVersion")),
        json!(node_address(node, "InternalIP")),
        json!(node_address(node, "ExternalIP")),
        json!(or_unknown(s(node, "/status/nodeInfo/osImage"))),
        json!(or_unknown(s(node, "/status/nodeInfo/kernelVersion"))),
        json!(or_unknown(s(
            node,
            "/status/nodeInfo/containerRuntimeVersion"
        ))),
    ]
}

/// ReplicationController columns.
pub(super) const RC: &[Column] = &[
    NAME,
    Column::new(
        "Desired",
        "integer",
        "Replicas is the number of desired replicas.",
    ),
    Column::new(
        "Current",
        "integer",
        "Replicas is the most recently observed number of replicas.",
    ),
    Column::new(
        "Ready",
        "integer",
        "The number of ready replicas for this replication controller.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    Column::wide(
        "Selector",
        "string",
        "Selector is a label query over pods that should match the Replicas count.",
    ),
];

/// One ReplicationController row; replicas default to 1 as upstream defaults them.
pub(super) fn replication_controller(rc: &Value, clock: &Clock) -> Vec<Value> {
    let desired = rc
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let (names, images) = containers_and_images(arr(rc, "/spec/template/spec/containers"));
    vec![
        json!(s(rc, "/metadata/name")),
        json!(desired),
        json!(int(rc, "/status/replicas")),
        json!(int(rc, "/status/readyReplicas")),
        json!(clock.age(rc)),
        json!(names),
        json!(images),
        json!(format_labels(obj(rc, "/spec/selector"))),
    ]
}

/// ResourceQuota columns.
pub(super) const RESOURCE_QUOTA: &[Column] = &[
    NAME,
    Column::new(
        "Request",
        "string",
        "Request represents a minimum amount of cpu/memory that a container may consume.",
    ),
    Column::new(
        "Limit",
        "string",
        "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
    ),
    AGE,
];

/// One ResourceQuota row: `name: used/hard` for each hard limit, sorted by
/// name, `limits.*` in LIMIT and everything else in REQUEST.
pub(super) fn resource_quota(quota: &Value, clock: &Clock) -> Vec<Value> {
    let mut names: Vec<&String> = obj(quota, "/status/hard")
        .into_iter()
        .flat_map(|m| m.keys())
        .collect();
    names.sort();
    let mut requests = Vec::new();
    let mut limits = Vec::new();
    for name in names {
        let used = quantity(
            quota
                .pointer("/status/used")
                .and_then(|u| u.get(name.as_str())),
        );
        let hard = quantity(
            quota
                .pointer("/status/hard")
                .and_then(|h| h.get(name.as_str())),
        );
        let entry = format!("{name}: {used}/{hard}");
        let mut pieces = name.split('.');
        if pieces.next() == Some("limits") && pieces.next().is_some() {
            limits.push(entry);
        } else {
            requests.push(entry);
        }
    }
    vec![
        json!(s(quota, "/metadata/name")),
        json!(requests.join(", ")),
        json!(limits.join(", ")),
        json!(clock.age(quota)),
    ]
}

/// The storage class annotation that predates `storageClassName` and still wins over it.
const BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

fn storage_class_annotation(v: &Value) -> Option<&str> {
    v.pointer("/metadata/annotations")
        .and_then(|a| a.get(BETA_STORAGE_CLASS))
        .and_then(Value::as_str)
}

/// PersistentVolume columns.
pub(super) const PV: &[Column] = &[
    NAME,
    Column::new("Capacity", "string", "capacity is the description of the persistent volume's resources and capacity."),
    Column::new("Access Modes", "string", "accessModes contains all ways the volume can be mounted."),
    Column::new(
        "Reclaim Policy",
        "string",
        "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim.",
    ),
    Column::new("Status", "string", "phase indicates if a volume is available, bound to a claim, or released by a claim."),
    Column::new("Claim", "string", "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim."),
    Column::new("StorageClass", "string", "StorageClass of the pv"),
    Column::new("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv"),
    Column::new("Reason", "string", "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI."),
    AGE,
    Column::wide("VolumeMode", "string", "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state."),
];

/// One PersistentVolume row.
pub(super) fn pv(pv: &Value, clock: &Clock) -> Vec<Value> {
    let claim = match obj(pv, "/spec/claimRef") {
        Some(_) => format!(
            "{}/{}",
            s(pv, "/spec/claimRef/namespace"),
            s(pv, "/spec/claimRef/name")
        ),
        None => String::new(),
    };
    let phase = if pv
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        "Terminating"
    } else {
        match s(pv, "/status/phase") {
            "" => "Pending",
            p => p,
        }
    };
    let reclaim = match s(pv, "/spec/persistentVolumeReclaimPolicy") {
        "" => "Retain",
        p => p,
    };
    let class = storage_class_annotation(pv).unwrap_or(s(pv, "/spec/storageClassName"));
    vec![
        json!(s(pv, "/metadata/name")),
        json!(quantity(pv.pointer("/spec/capacity/storage"))),
        json!(access_modes(arr(pv, "/spec/accessModes"))),
        json!(reclaim),
        json!(phase),
        json!(claim),
        json!(class),
        json!(opt_s(pv, "/spec/volumeAttributesClassName").unwrap_or("<unset>")),
        json!(s(pv, "/status/reason")),
        json!(clock.age(pv)),
        json!(opt_s(pv, "/spec/volumeMode").unwrap_or("Filesystem")),
    ]
}

/// PersistentVolumeClaim columns.
pub(super) const PVC: &[Column] = &[
    NAME,
    Column::new(
        "Status",
        "string",
        "phase represents the current phase of PersistentVolumeClaim.",
    ),
    Column::new(
        "Volume",
        "string",
        "volumeName is the binding reference to the PersistentVolume backing this claim.",
    ),
    Column::new(
        "Capacity",
        "string",
        "capacity represents the actual resources of the underlying volume.",
    ),
    Column::new(
        "Access Modes",
        "string",
        "accessModes contains the actual access modes the volume backing the PVC has.",
    ),
    Column::new("StorageClass", "string", "StorageClass of the pvc"),
    Column::new(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pvc",
    ),
    AGE,
    Column::wide(
        "VolumeMode",
        "string",
        "volumeMode defines what type of volume is required by the claim.",
    ),
];

/// One PersistentVolumeClaim row: capacity and access modes only once bound.
pub(super) fn pvc(pvc: &Value, clock: &Clock) -> Vec<Value> {
    let phase = if pvc
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        "Terminating"
    } else {
        match s(pvc, "/status/phase") {
            "" => "Pending",
            p => p,
        }
    };
    let volume = s(pvc, "/spec/volumeName");
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(pvc.pointer("/status/capacity/storage")),
            access_modes(arr(pvc, "/status/accessModes")),
        )
    };
    let class = storage_class_annotation(pvc)
        .or(opt_s(pvc, "/spec/storageClassName"))
        .unwrap_or("");
    vec![
        json!(s(pvc, "/metadata/name")),
        json!(phase),
        json!(volume),
        json!(capacity),
        json!(modes),
        json!(class),
        json!(opt_s(pvc, "/spec/volumeAttributesClassName").unwrap_or("<unset>")),
        json!(clock.age(pvc)),
        json!(opt_s(pvc, "/spec/volumeMode").unwrap_or("Filesystem")),
    ]
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
