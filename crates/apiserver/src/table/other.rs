//! The remaining printed kinds: leases, pod disruption budgets, priority
//! classes, runtime classes, and RBAC bindings. (Roles and cluster roles have no printer
//! upstream and get the default table.)

use serde_json::{json, Value};

use super::format::{arr, int, int_or_string, s, Clock};
use super::{Column, AGE, NAME};

/// Lease columns.
pub(super) const LEASE: &[Column] = &[
    NAME,
    Column::new(
        "Holder",
        "string",
        "holderIdentity contains the identity of the holder of a current lease.",
    ),
    AGE,
];

/// One Lease row.
pub(super) fn lease(lease: &Value, clock: &Clock) -> Vec<Value> {
    vec![
        json!(s(lease, "/metadata/name")),
        json!(s(lease, "/spec/holderIdentity")),
        json!(clock.age(lease)),
    ]
}

/// PodDisruptionBudget columns.
pub(super) const PDB: &[Column] = &[
    NAME,
    Column::new(
        "Min Available",
        "string",
        "The minimum number of pods that must be available.",
    ),
    Column::new(
        "Max Unavailable",
        "string",
        "The maximum number of pods that may be unavailable.",
    ),
    Column::new(
        "Allowed Disruptions",
        "integer",
        "Calculated number of pods that may be disrupted at this time.",
    ),
    AGE,
];

/// An `IntOrString` bound of a budget, or `N/A` when unset.
fn bound(pdb: &Value, pointer: &str) -> String {
    match pdb.pointer(pointer) {
        Some(v) if !v.is_null() => int_or_string(v),
        _ => "N/A".to_string(),
    }
}

/// One PodDisruptionBudget row.
pub(super) fn pod_disruption_budget(pdb: &Value, clock: &Clock) -> Vec<Value> {
    vec![
        json!(s(pdb, "/metadata/name")),
        json!(bound(pdb, "/spec/minAvailable")),
        json!(bound(pdb, "/spec/maxUnavailable")),
        json!(int(pdb, "/status/disruptionsAllowed")),
        json!(clock.age(pdb)),
    ]
}

/// PriorityClass columns. PREEMPTIONPOLICY is a default-view column upstream
/// (no priority), even though it is only filled in "wide" output, which the
/// API server always produces.
pub(super) const PRIORITY_CLASS: &[Column] = &[
    NAME,
    Column::new("Value", "integer", "value represents the integer value of this priority class."),
    Column::new(
        "Global-Default",
        "boolean",
        "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class.",
    ),
    AGE,
    Column::new(
        "PreemptionPolicy",
        "string",
        "preemptionPolicy is the Policy for preempting pods with lower priority.",
    ),
];

/// One PriorityClass row; the preemption policy defaults upstream to
/// `PreemptLowerPriority`.
pub(super) fn priority_class(pc: &Value, clock: &Clock) -> Vec<Value> {
    let global_default = pc
        .get("globalDefault")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    vec![
        json!(s(pc, "/metadata/name")),
        json!(int(pc, "/value")),
        json!(global_default),
        json!(clock.age(pc)),
        json!(pc
            .get("preemptionPolicy")
            .and_then(Value::as_str)
            .unwrap_or("PreemptLowerPriority")),
    ]
}

/// RuntimeClass columns. Upstream describes Handler with ObjectMeta's
/// (absent) `handler` doc, so its description is empty.
pub(super) const RUNTIME_CLASS: &[Column] = &[NAME, Column::new("Handler", "string", ""), AGE];

/// One RuntimeClass row.
pub(super) fn runtime_class(rc: &Value, clock: &Clock) -> Vec<Value> {
    vec![
        json!(s(rc, "/metadata/name")),
        json!(s(rc, "/handler")),
        json!(clock.age(rc)),
    ]
}

const RB_ROLE: &str = "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace.";

/// RoleBinding columns.
pub(super) const ROLE_BINDING: &[Column] = &[
    NAME,
    Column::new("Role", "string", RB_ROLE),
    AGE,
    Column::wide("Users", "string", "Users in the roleBinding"),
    Column::wide("Groups", "string", "Groups in the roleBinding"),
    Column::wide(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the roleBinding",
    ),
];

/// ClusterRoleBinding columns: the same as a RoleBinding's, described for cluster bindings.
pub(super) const CLUSTER_ROLE_BINDING: &[Column] = &[
    NAME,
    Column::new(
        "Role",
        "string",
        "RoleRef can only reference a ClusterRole in the global namespace.",
    ),
    AGE,
    Column::wide("Users", "string", "Users in the clusterRoleBinding"),
    Column::wide("Groups", "string", "Groups in the clusterRoleBinding"),
    Column::wide(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the clusterRoleBinding",
    ),
];

/// One RoleBinding or ClusterRoleBinding row: ROLE is `Kind/name`, and the
/// subjects are split by kind, each list joined by `, `; service accounts
/// print as `namespace/name`.
pub(super) fn role_binding(rb: &Value, clock: &Clock) -> Vec<Value> {
    let mut users = Vec::new();
    let mut groups = Vec::new();
    let mut service_accounts = Vec::new();
    for subject in arr(rb, "/subjects") {
        let name = s(subject, "/name");
        match s(subject, "/kind") {
            "ServiceAccount" => {
                service_accounts.push(format!("{}/{name}", s(subject, "/namespace")))
            }
            "User" => users.push(name.to_string()),
            "Group" => groups.push(name.to_string()),
            _ => {}
        }
    }
    vec![
        json!(s(rb, "/metadata/name")),
        json!(format!(
            "{}/{}",
            s(rb, "/roleRef/kind"),
            s(rb, "/roleRef/name")
        )),
        json!(clock.age(rb)),
        json!(users.join(", ")),
        json!(groups.join(", ")),
        json!(service_accounts.join(", ")),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{ago, cells, headers};
    use serde_json::json;

    const RBAC: &str = "rbac.authorization.k8s.io";

    #[test]
    fn lease() {
        assert_eq!(
            headers("coordination.k8s.io", "Lease"),
            vec![
                ("Name", "string", "name", 0),
                ("Holder", "string", "", 0),
                ("Age", "string", "", 0)
            ]
        );
        let l = json!({"metadata": {"name": "kube-scheduler", "namespace": "kube-system", "creationTimestamp": ago(7200 + 1800)},
            "spec": {"holderIdentity": "server-1_0b9c", "leaseDurationSeconds": 15}});
        assert_eq!(
            cells("coordination.k8s.io", "Lease", l),
            vec![
                json!("kube-scheduler"),
                json!("server-1_0b9c"),
                json!("150m")
            ]
        );
        let l = json!({"metadata": {"name": "free"}, "spec": {}});
        assert_eq!(cells("coordination.k8s.io", "Lease", l)[1], "");
    }

    #[test]
    fn pod_disruption_budget() {
        assert_eq!(
            headers("policy", "PodDisruptionBudget"),
            vec![
                ("Name", "string", "name", 0),
                ("Min Available", "string", "", 0),
                ("Max Unavailable", "string", "", 0),
                ("Allowed Disruptions", "integer", "", 0),
                ("Age", "string", "", 0),
            ]
        );
        let pdb = json!({"metadata": {"name": "web", "creationTimestamp": ago(100)},
            "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}, "status": {"disruptionsAllowed": 1}});
        assert_eq!(
            cells("policy", "PodDisruptionBudget", pdb),
            vec![
                json!("web"),
                json!("2"),
                json!("N/A"),
                json!(1),
                json!("100s")
            ]
        );
        let pdb = json!({"metadata": {"name": "db"}, "spec": {"maxUnavailable": "25%"}});
        assert_eq!(
            cells("policy", "PodDisruptionBudget", pdb)[1..4],
            [json!("N/A"), json!("25%"), json!(0)]
        );
    }

    #[test]
    fn priority_class() {
        assert_eq!(
            headers("scheduling.k8s.io", "PriorityClass"),
            vec![
                ("Name", "string", "name", 0),
                ("Value", "integer", "", 0),
                ("Global-Default", "boolean", "", 0),
                ("Age", "string", "", 0),
                ("PreemptionPolicy", "string", "", 0),
            ]
        );
        let pc = json!({"metadata": {"name": "system-node-critical", "creationTimestamp": ago(86400 * 9)},
            "value": 2000001000, "globalDefault": false, "preemptionPolicy": "PreemptLowerPriority"});
        assert_eq!(
            cells("scheduling.k8s.io", "PriorityClass", pc),
            vec![
                json!("system-node-critical"),
                json!(2000001000),
                json!(false),
                json!("9d"),
                json!("PreemptLowerPriority")
            ]
        );
        let pc = json!({"metadata": {"name": "batch"}, "value": -5, "globalDefault": true, "preemptionPolicy": "Never"});
        assert_eq!(
            cells("scheduling.k8s.io", "PriorityClass", pc)[1..],
            [json!(-5), json!(true), json!("<unknown>"), json!("Never")]
        );
    }

    #[test]
    fn runtime_class() {
        assert_eq!(
            headers("node.k8s.io", "RuntimeClass"),
            vec![
                ("Name", "string", "name", 0),
                ("Handler", "string", "", 0),
                ("Age", "string", "", 0),
            ]
        );
        // Upstream's Handler description is ObjectMeta's (missing) doc.
        assert_eq!(super::RUNTIME_CLASS[1].description, "");
        let rc = json!({"metadata": {"name": "gvisor", "creationTimestamp": ago(120)}, "handler": "runsc"});
        assert_eq!(
            cells("node.k8s.io", "RuntimeClass", rc),
            vec![json!("gvisor"), json!("runsc"), json!("2m")]
        );
    }

    #[test]
    fn role_bindings() {
        let want = vec![
            ("Name", "string", "name", 0),
            ("Role", "string", "", 0),
            ("Age", "string", "", 0),
            ("Users", "string", "", 1),
            ("Groups", "string", "", 1),
            ("ServiceAccounts", "string", "", 1),
        ];
        assert_eq!(headers(RBAC, "RoleBinding"), want);
        assert_eq!(headers(RBAC, "ClusterRoleBinding"), want);
        let rb = json!({"metadata": {"name": "dev-edit", "namespace": "dev", "creationTimestamp": ago(42)},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "edit"},
        "subjects": [
            {"kind": "User", "name": "alice", "apiGroup": RBAC},
            {"kind": "User", "name": "bob", "apiGroup": RBAC},
            {"kind": "Group", "name": "devs", "apiGroup": RBAC},
            {"kind": "ServiceAccount", "name": "ci", "namespace": "dev"}
        ]});
        assert_eq!(
            cells(RBAC, "RoleBinding", rb),
            vec![
                json!("dev-edit"),
                json!("ClusterRole/edit"),
                json!("42s"),
                json!("alice, bob"),
                json!("devs"),
                json!("dev/ci")
            ]
        );
        let crb = json!({"metadata": {"name": "cluster-admin", "creationTimestamp": ago(86400 * 30)},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "Group", "name": "system:masters", "apiGroup": RBAC}]});
        assert_eq!(
            cells(RBAC, "ClusterRoleBinding", crb),
            vec![
                json!("cluster-admin"),
                json!("ClusterRole/cluster-admin"),
                json!("30d"),
                json!(""),
                json!("system:masters"),
                json!("")
            ]
        );
    }
}
