//! The catalog of served resources: names, scope, verbs and subresources, as
//! upstream publishes them in discovery.
//!
//! Built-in resources are the static [`RESOURCES`]. Custom resources (from
//! CustomResourceDefinitions, see [`crate::crd`]) live in a dynamic overlay
//! that [`lookup`], [`by_kind`], [`groups`] and discovery consult. Code keeps
//! `&'static ResourceInfo` everywhere: a dynamic definition is interned (leaked
//! once per distinct definition and reused when the same definition comes
//! back), so memory is bounded by the number of distinct definitions ever
//! served, not by how often CRDs are created and deleted.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
        // events.k8s.io Events are core Events (see `crate::convert`).
        let group = if self.group.is_empty()
            || (self.group == "events.k8s.io" && self.plural == "events")
        {
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
        Subresource { name: "attach", group: "", version: "", kind: "PodAttachOptions", verbs: &["create", "get"] },
        Subresource { name: "binding", group: "", version: "", kind: "Binding", verbs: &["create"] },
        Subresource { name: "eviction", group: "policy", version: "v1", kind: "Eviction", verbs: &["create"] },
        Subresource { name: "exec", group: "", version: "", kind: "PodExecOptions", verbs: &["create", "get"] },
        Subresource { name: "log", group: "", version: "", kind: "Pod", verbs: &["get"] },
        Subresource { name: "portforward", group: "", version: "", kind: "PodPortForwardOptions", verbs: &["create", "get"] },
        status("Pod")
    ]),
    res!("", "v1", "ReplicationController", "replicationcontrollers", "replicationcontroller", true, short: ["rc"], cat: ["all"],
         verbs: STANDARD_VERBS, sub: [scale(), status("ReplicationController")]),
    res!("", "v1", "ResourceQuota", "resourcequotas", "resourcequota", true, short: ["quota"], cat: [],
         verbs: STANDARD_VERBS, sub: [status("ResourceQuota")]),
    res!("", "v1", "Secret", "secrets", "secret", true, short: [], cat: [], verbs: STANDARD_VERBS, sub: []),
    res!("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", true, short: ["sa"], cat: [], verbs: STANDARD_VERBS, sub: [
        Subresource { name: "token", group: "authentication.k8s.io", version: "v1", kind: "TokenRequest", verbs: &["create"] }
    ]),
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
    // apiextensions.k8s.io/v1
    res!("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", "customresourcedefinition", false,
         short: ["crd", "crds"], cat: ["api-extensions"], verbs: STANDARD_VERBS, sub: [status("CustomResourceDefinition")]),
    // authentication.k8s.io/v1
    res!("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", "selfsubjectreview", false, short: [], cat: [],
         verbs: &["create"], sub: []),
    // batch/v1
    res!("batch", "v1", "CronJob", "cronjobs", "cronjob", true, short: ["cj"], cat: ["all"], verbs: STANDARD_VERBS, sub: [status("CronJob")]),
    res!("batch", "v1", "Job", "jobs", "job", true, short: [], cat: ["all"], verbs: STANDARD_VERBS, sub: [status("Job")]),
    // certificates.k8s.io/v1
    res!("certificates.k8s.io", "v1", "CertificateSigningRequest", "certificatesigningrequests", "certificatesigningrequest", false,
         short: ["csr"], cat: [], verbs: STANDARD_VERBS,
         sub: [Subresource { name: "approval", group: "", version: "", kind: "CertificateSigningRequest", verbs: &["get", "patch", "update"] },
               status("CertificateSigningRequest")]),
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
    // node.k8s.io/v1
    res!("node.k8s.io", "v1", "RuntimeClass", "runtimeclasses", "runtimeclass", false, short: [], cat: [], verbs: STANDARD_VERBS, sub: []),
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

/// Find a built-in resource by group, version and plural name.
pub fn lookup_builtin(group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Find a resource by group, version and plural name. Built-in resources win
/// over a custom resource of the same name, as upstream's handler chain does.
pub fn lookup(group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
    lookup_builtin(group, version, plural).or_else(|| {
        overlay()
            .served
            .iter()
            .copied()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
    })
}

/// Find a resource by group and kind (for a custom resource: its storage
/// version, which the overlay lists first).
pub fn by_kind(group: &str, kind: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.kind == kind)
        .or_else(|| {
            overlay()
                .served
                .iter()
                .copied()
                .find(|r| r.group == group && r.kind == kind)
        })
}

/// The resource whose objects live under `/registry/{group}/{plural}/`, in
/// any served version (for a custom resource: its storage version).
pub fn by_group_resource(group: &str, plural: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.plural == plural)
        .or_else(|| {
            overlay()
                .served
                .iter()
                .copied()
                .find(|r| r.group == group && r.plural == plural)
        })
}

/// Whether `info` is one of the built-in resources (not from a CRD).
pub fn is_builtin(info: &ResourceInfo) -> bool {
    let range = RESOURCES.as_ptr_range();
    let p = info as *const ResourceInfo;
    range.contains(&p) || lookup_builtin(info.group, info.version, info.plural).is_some()
}

/// Whether any resource is served (routable) in a group-version.
pub fn serves_group_version(group: &str, version: &str) -> bool {
    RESOURCES
        .iter()
        .any(|r| r.group == group && r.version == version)
        || overlay()
            .served
            .iter()
            .any(|r| r.group == group && r.version == version)
}

/// The resources discovery lists in a group-version, in discovery order.
pub fn in_group_version(group: &str, version: &str) -> Vec<&'static ResourceInfo> {
    let mut out: Vec<&'static ResourceInfo> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    out.extend(
        overlay()
            .discoverable
            .iter()
            .copied()
            .filter(|r| r.group == group && r.version == version),
    );
    out
}

/// The groups discovery lists, in discovery order, each with its versions
/// (preferred first): the built-in groups, then the groups of established
/// custom resources (versions in Kubernetes version order).
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
    for (g, vs) in overlay().groups.iter() {
        match out.iter_mut().find(|(name, _)| name == g) {
            // A custom resource in a built-in group: its versions follow.
            Some((_, have)) => {
                for v in vs {
                    if !have.contains(v) {
                        have.push(v)
                    }
                }
            }
            None => out.push((g, vs.clone())),
        }
    }
    out
}

/// Verbs of a custom resource, in upstream's discovery order.
pub const CUSTOM_VERBS: &[&str] = &[
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "create",
    "update",
    "watch",
];
/// Verbs of a custom resource whose definition is being deleted.
pub const CUSTOM_TERMINATING_VERBS: &[&str] =
    &["delete", "deletecollection", "get", "list", "watch"];

/// A dynamic resource to serve, with owned strings; see [`intern`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DynamicResource {
    /// API group.
    pub group: String,
    /// Version.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Plural resource name.
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names.
    pub short_names: Vec<String>,
    /// Categories.
    pub categories: Vec<String>,
    /// Whether the definition is terminating (fewer verbs).
    pub terminating: bool,
    /// A `status` subresource.
    pub status: bool,
    /// A `scale` subresource.
    pub scale: bool,
}

#[derive(Default)]
struct Interner {
    strs: HashSet<&'static str>,
    lists: HashMap<Vec<&'static str>, &'static [&'static str]>,
    subs: HashMap<Vec<Subresource>, &'static [Subresource]>,
    infos: HashMap<DynamicResource, &'static ResourceInfo>,
}

impl Interner {
    fn str(&mut self, s: &str) -> &'static str {
        if let Some(found) = self.strs.get(s) {
            return found;
        }
        let leaked: &'static str = Box::leak(s.to_string().into_boxed_str());
        self.strs.insert(leaked);
        leaked
    }

    fn list(&mut self, items: &[String]) -> &'static [&'static str] {
        let key: Vec<&'static str> = items.iter().map(|s| self.str(s)).collect();
        if let Some(found) = self.lists.get(&key) {
            return found;
        }
        let leaked: &'static [&'static str] = Box::leak(key.clone().into_boxed_slice());
        self.lists.insert(key, leaked);
        leaked
    }

    fn subs(&mut self, subs: Vec<Subresource>) -> &'static [Subresource] {
        if let Some(found) = self.subs.get(&subs) {
            return found;
        }
        let leaked: &'static [Subresource] = Box::leak(subs.clone().into_boxed_slice());
        self.subs.insert(subs, leaked);
        leaked
    }
}

fn interner() -> &'static Mutex<Interner> {
    static INTERNER: OnceLock<Mutex<Interner>> = OnceLock::new();
    INTERNER.get_or_init(Default::default)
}

/// Intern a string for the life of the process (bounded by distinct values).
pub fn intern_str(s: &str) -> &'static str {
    interner().lock().expect("interner lock").str(s)
}

/// The `&'static` form of a dynamic resource: the same pointer every time the
/// same definition is asked for.
pub fn intern(d: &DynamicResource) -> &'static ResourceInfo {
    let mut i = interner().lock().expect("interner lock");
    if let Some(found) = i.infos.get(d) {
        return found;
    }
    let kind = i.str(&d.kind);
    // Upstream's CRD discovery lists status before scale.
    let mut subs = Vec::new();
    if d.status {
        subs.push(status(kind));
    }
    if d.scale {
        subs.push(scale());
    }
    let info = ResourceInfo {
        group: i.str(&d.group),
        version: i.str(&d.version),
        kind,
        plural: i.str(&d.plural),
        singular: i.str(&d.singular),
        namespaced: d.namespaced,
        short_names: i.list(&d.short_names),
        categories: i.list(&d.categories),
        verbs: if d.terminating {
            CUSTOM_TERMINATING_VERBS
        } else {
            CUSTOM_VERBS
        },
        subresources: i.subs(subs),
    };
    let leaked: &'static ResourceInfo = Box::leak(Box::new(info));
    i.infos.insert(d.clone(), leaked);
    leaked
}

/// The dynamic part of the catalog.
#[derive(Default)]
struct Overlay {
    /// Routable resources (names accepted), storage versions first.
    served: Vec<&'static ResourceInfo>,
    /// Resources discovery lists (established).
    discoverable: Vec<&'static ResourceInfo>,
    /// Groups of `discoverable`, each with its versions, preferred first.
    groups: Vec<(&'static str, Vec<&'static str>)>,
}

fn overlay_lock() -> &'static RwLock<Arc<Overlay>> {
    static OVERLAY: OnceLock<RwLock<Arc<Overlay>>> = OnceLock::new();
    OVERLAY.get_or_init(Default::default)
}

fn overlay() -> Arc<Overlay> {
    overlay_lock().read().expect("overlay lock").clone()
}

/// Replace the dynamic resources: `served` are routable (the first of each
/// group-resource is where its objects are stored), `discoverable` are also
/// listed by discovery, and `groups` orders their groups and versions.
pub fn set_dynamic(
    served: Vec<&'static ResourceInfo>,
    discoverable: Vec<&'static ResourceInfo>,
    groups: Vec<(&'static str, Vec<&'static str>)>,
) {
    *overlay_lock().write().expect("overlay lock") = Arc::new(Overlay {
        served,
        discoverable,
        groups,
    });
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

    #[test]
    fn interning_and_the_dynamic_overlay() {
        let d = DynamicResource {
            group: "intern.test.io".into(),
            version: "v1".into(),
            kind: "Thing".into(),
            plural: "things".into(),
            singular: "thing".into(),
            namespaced: true,
            short_names: vec!["th".into()],
            categories: vec!["all".into()],
            terminating: false,
            status: true,
            scale: true,
        };
        let a = intern(&d);
        assert!(std::ptr::eq(a, intern(&d.clone())));
        assert_eq!(a.verbs, CUSTOM_VERBS);
        assert_eq!(
            a.subresources.iter().map(|s| s.name).collect::<Vec<_>>(),
            vec!["status", "scale"]
        );
        let t = intern(&DynamicResource {
            terminating: true,
            ..d.clone()
        });
        assert!(!std::ptr::eq(a, t));
        assert_eq!(t.verbs, CUSTOM_TERMINATING_VERBS);
        assert!(!is_builtin(a));
        assert!(is_builtin(lookup("apps", "v1", "deployments").unwrap()));

        // Routable but not yet discovered (names accepted, not established).
        set_dynamic(vec![a], vec![], vec![]);
        assert!(std::ptr::eq(
            lookup("intern.test.io", "v1", "things").unwrap(),
            a
        ));
        assert!(std::ptr::eq(
            by_group_resource("intern.test.io", "things").unwrap(),
            a
        ));
        assert!(serves_group_version("intern.test.io", "v1"));
        assert!(!groups().iter().any(|(g, _)| *g == "intern.test.io"));
        set_dynamic(vec![a], vec![a], vec![("intern.test.io", vec!["v1"])]);
        assert!(groups()
            .iter()
            .any(|(g, vs)| *g == "intern.test.io" && vs == &["v1"]));
        assert_eq!(in_group_version("intern.test.io", "v1"), vec![a]);
        set_dynamic(vec![], vec![], vec![]);
        assert!(lookup("intern.test.io", "v1", "things").is_none());
        assert!(!serves_group_version("intern.test.io", "v1"));
    }
}
