//! The catalog of served resources: names, scope, verbs and subresources, as
//! upstream publishes them in discovery.

/// Verbs of an ordinary resource.
pub const STANDARD_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
/// Verbs of a `status` subresource.
pub const STATUS_VERBS: &[&str] = &["get", "patch", "update"];

/// A subresource such as `status` or `scale`.
#[derive(Clone, Copy, Debug)]
pub struct Subresource {
    /// The path segment after the object name, e.g. `status`.
    pub name: &'static str,
    /// Group of the kind the subresource speaks (empty: the parent's group).
    pub group: &'static str,
    /// Version of that kind (empty: the parent's version).
    pub version: &'static str,
    /// Kind it speaks, e.g. `Scale` for `scale`, the parent's kind for `status`.
    pub kind: &'static str,
    /// Verbs it supports.
    pub verbs: &'static [&'static str],
}

/// One served resource in one group-version.
#[derive(Clone, Copy, Debug)]
pub struct ResourceInfo {
    /// API group; empty for the core group.
    pub group: &'static str,
    /// Version, e.g. `v1`.
    pub version: &'static str,
    /// Kind, e.g. `Deployment`.
    pub kind: &'static str,
    /// Plural resource name used in paths, e.g. `deployments`.
    pub plural: &'static str,
    /// Singular name, e.g. `deployment`.
    pub singular: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Short names kubectl accepts, e.g. `deploy`.
    pub short_names: &'static [&'static str],
    /// Categories, e.g. `all`.
    pub categories: &'static [&'static str],
    /// Verbs on the resource itself.
    pub verbs: &'static [&'static str],
    /// Subresources.
    pub subresources: &'static [Subresource],
}

impl ResourceInfo {
    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The group-resource for error messages.
    pub fn group_resource(&self) -> crate::error::GroupResource<'static> {
        crate::error::GroupResource {
            group: self.group,
            resource: self.plural,
        }
    }

    /// The store prefix under which every object of this resource lives; the
    /// object's key is this plus `namespace/name` or `name`.
    pub fn key_prefix(&self) -> String {
        let group = if self.group.is_empty() {
            "core"
        } else {
            self.group
        };
        format!("/registry/{group}/{}/", self.plural)
    }

    /// The key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match (self.namespaced, namespace) {
            (true, Some(ns)) => format!("{}{ns}/{name}", self.key_prefix()),
            _ => format!("{}{name}", self.key_prefix()),
        }
    }

    /// Find a subresource by name.
    pub fn subresource(&self, name: &str) -> Option<&'static Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// Whether the resource has a `status` subresource, which splits spec from status.
    pub fn has_status(&self) -> bool {
        self.subresource("status").is_some()
    }
}

const fn status(kind: &'static str) -> Subresource {
    Subresource {
        name: "status",
        group: "",
        version: "",
        kind,
        verbs: STATUS_VERBS,
    }
}

const fn scale() -> Subresource {
    Subresource {
        name: "scale",
        group: "autoscaling",
        version: "v1",
        kind: "Scale",
        verbs: STATUS_VERBS,
    }
}

macro_rules! res {
    ($group:expr, $version:expr, $kind:expr, $plural:expr, $singular:expr, $namespaced:expr,
     short: [$($short:expr),*], cat: [$($cat:expr),*], verbs: $verbs:expr, sub: [$($sub:expr),*]) => {
        ResourceInfo {
            group: $group,
            version: $version,
            kind: $kind,
            plural: $plural,
            singular: $singular,
            namespaced: $namespaced,
            short_names: &[$($short),*],
            categories: &[$($cat),*],
            verbs: $verbs,
            subresources: &[$($sub),*],
        }
    };
}

/// Every resource served, in discovery order.
pub static RESOURCES: &[ResourceInfo] = &[
    // core/v1
    res!("", "v1", "ConfigMap", "configmaps", "configmap", true, short: ["cm"], cat: [], verbs: STANDARD_VERBS, sub: []),
    res!("", "v1", "Endpoints", "endpoints", "endpoints", true, short: ["ep"], cat: [], verbs: STANDARD_VERBS, sub: []),
    res!("", "v1", "Event", "events", "event", true, short: ["ev"], cat: [], verbs: STANDARD_VERBS, sub: []),
    res!("", "v1", "LimitRange", "limitranges", "limitrange", true, short: ["limits"], cat: [], verbs: STANDARD_VERBS, sub: []),
    res!("", "v1", "Namespace", "namespaces", "namespace", false, short: ["ns"], cat: [],
         verbs: &["create", "delete", "get", "list", "patch", "update", "watch"],
         sub: [Subresource { name: "finalize", group: "", version: "", kind: "Namespace", verbs: &["update"] }, status("Namespace")]),
    res!("", "v1", "Node", "nodes", "node", false, short: ["no"], cat: [], verbs: STANDARD_VERBS, sub: [status("Node")]),
    res!("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", "persistentvolumeclaim", true, short: ["pvc"], cat: [],
         verbs: STANDARD_VERBS, sub: [status("PersistentVolumeClaim")]),
    res!("", "v1", "PersistentVolume", "persistentvolumes", "persistentvolume", false, short: ["pv"], cat: [],
         verbs: STANDARD_VERBS, sub: [status("PersistentVolume")]),
    res!("", "v1", "Pod", "pods", "pod", true, short: ["po"], cat: ["all"], verbs: STANDARD_VERBS,
    sub: [
        Subresource { name: "binding", group: "", version: "", kind: "Binding", verbs: &["create"] },
        Subresource { name: "eviction", group: "policy", version: "v1", kind: "Eviction", verbs: &["create"] },
        status("Pod")
    ]),
    res!("", "v1", "ReplicationController", "replicationcontrollers", "replicationcontroller", true, short: ["rc"], cat: ["all"],
         verbs: STANDARD_VERBS, sub: [scale(), status("ReplicationController")]),
    res!("", "v1", "ResourceQuota", "resourcequotas", "resourcequota", true, short: ["quota"], cat: [],
         verbs: STANDARD_VERBS, sub: [status("ResourceQuota")]),
    res!("", "v1", "Secret", "secrets", "secret", true, short: [], cat: [], verbs: STANDARD_VERBS, sub: []),
    res!("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", true, short: ["sa"], cat: [], verbs: STANDARD_VERBS, sub: []),
    res!("", "v1", "Service", "services", "service", true, short: ["svc"], cat: ["all"],
         verbs: &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"], sub: [status("Service")]),
    // apps/v1
    res!("apps", "v1", "ControllerRevision", "controllerrevisions", "controllerrevision", true, short: [], cat: [], verbs: STANDARD_VERBS, sub: []),
    res!("apps", "v1", "DaemonSet", "daemonsets", "daemonset", true, short: ["ds"], cat: ["all"], verbs: STANDARD_VERBS, sub: [status("DaemonSet")]),
    res!("apps", "v1", "Deployment", "deployments", "deployment", true, short: ["deploy"], cat: ["all"],
         verbs: STANDARD_VERBS, sub: [scale(), status("Deployment")]),
    res!("apps", "v1", "ReplicaSet", "replicasets", "replicaset", true, short: ["rs"], cat: ["all"],
         verbs: STANDARD_VERBS, sub: [scale(), status("ReplicaSet")]),
    res!("apps", "v1", "StatefulSet", "statefulsets", "statefulset", true, short: ["sts"], cat: ["all"],
         verbs: STANDARD_VERBS, sub: [scale(), status("StatefulSet")]),
    // authentication.k8s.io/v1
    res!("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", "selfsubjectreview", false, short: [], cat: [],
         verbs: &["create"], sub: []),
    // batch/v1
    res!("batch", "v1", "CronJob", "cronjobs", "cronjob", true, short: ["cj"], cat: ["all"], verbs: STANDARD_VERBS, sub: [status("CronJob")]),
    res!("batch", "v1", "Job", "jobs", "job", true, short: [], cat: ["all"], verbs: STANDARD_VERBS, sub: [status("Job")]),
    // coordination.k8s.io/v1
    res!("coordination.k8s.io", "v1", "Lease", "leases", "lease", true, short: [], cat: [], verbs: STANDARD_VERBS, sub: []),
    // discovery.k8s.io/v1
    res!("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice", true, short: [], cat: [], verbs: STANDARD_VERBS, sub: []),
    // events.k8s.io/v1
    res!("events.k8s.io", "v1", "Event", "events", "event", true, short: ["ev"], cat: [], verbs: STANDARD_VERBS, sub: []),
    // networking.k8s.io/v1
    res!("networking.k8s.io", "v1", "IngressClass", "ingressclasses", "ingressclass", false, short: [], cat: [], verbs: STANDARD_VERBS, sub: []),
    res!("networking.k8s.io", "v1", "Ingress", "ingresses", "ingress", true, short: ["ing"], cat: [], verbs: STANDARD_VERBS, sub: [status("Ingress")]),
    res!("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", "networkpolicy", true, short: ["netpol"], cat: [], verbs: STANDARD_VERBS, sub: []),
    // policy/v1
    res!("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", "poddisruptionbudget", true, short: ["pdb"], cat: [],
         verbs: STANDARD_VERBS, sub: [status("PodDisruptionBudget")]),
    // rbac.authorization.k8s.io/v1
    res!("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", "clusterrolebinding", false, short: [], cat: [], verbs: STANDARD_VERBS, sub: []),
    res!("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", "clusterrole", false, short: [], cat: [], verbs: STANDARD_VERBS, sub: []),
    res!("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", "rolebinding", true, short: [], cat: [], verbs: STANDARD_VERBS, sub: []),
    res!("rbac.authorization.k8s.io", "v1", "Role", "roles", "role", true, short: [], cat: [], verbs: STANDARD_VERBS, sub: []),
    // scheduling.k8s.io/v1
    res!("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", "priorityclass", false, short: ["pc"], cat: [], verbs: STANDARD_VERBS, sub: []),
];

/// Find a resource by group, version and plural name.
pub fn lookup(group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Find a resource by group and kind.
pub fn by_kind(group: &str, kind: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.kind == kind)
}

/// The served groups in discovery order, each with its versions (preferred first).
pub fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for r in RESOURCES {
        match out.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, vs)) => {
                if !vs.contains(&r.version) {
                    vs.push(r.version)
                }
            }
            None => out.push((r.group, vec![r.version])),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_per_group_version() {
        for (i, a) in RESOURCES.iter().enumerate() {
            for b in &RESOURCES[i + 1..] {
                assert!(
                    !(a.group == b.group && a.version == b.version && a.plural == b.plural),
                    "{}",
                    a.plural
                );
            }
        }
    }

    #[test]
    fn keys() {
        let d = lookup("apps", "v1", "deployments").unwrap();
        assert_eq!(
            d.key(Some("default"), "web"),
            "/registry/apps/deployments/default/web"
        );
        let n = lookup("", "v1", "nodes").unwrap();
        assert_eq!(n.key(None, "n1"), "/registry/core/nodes/n1");
        assert_eq!(groups()[0].0, "");
    }
}
