//! `apps/v1`: deployments, replica sets, stateful sets, daemon sets and
//! controller revisions.
//!
//! `spec.replicas` defaults to 1 upstream before anything is stored, so a
//! missing value prints as 1.

use serde_json::{json, Value};

use super::format::{
    arr, containers_and_images, format_label_selector, format_labels, int, obj, s, selector_string,
    Clock,
};
use super::{Column, AGE, CONTAINERS, IMAGES, NAME};

fn desired_replicas(v: &Value) -> i64 {
    v.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

fn template_containers(v: &Value) -> (String, String) {
    containers_and_images(arr(v, "/spec/template/spec/containers"))
}

/// Deployment columns.
pub(super) const DEPLOYMENT: &[Column] = &[
    NAME,
    Column::new("Ready", "string", "Number of the pod with ready state"),
    Column::new(
        "Up-to-date",
        "string",
        "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
    ),
    Column::new(
        "Available",
        "string",
        "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    Column::wide("Selector", "string", "Label selector for pods."),
];

/// One Deployment row. Unlike other workloads the selector prints empty
/// (not `<none>`) when there is none, and `<invalid>` when it cannot parse.
pub(super) fn deployment(d: &Value, clock: &Clock) -> Vec<Value> {
    let (names, images) = template_containers(d);
    let selector =
        selector_string(d.pointer("/spec/selector")).unwrap_or_else(|()| "<invalid>".to_string());
    vec![
        json!(s(d, "/metadata/name")),
        json!(format!(
            "{}/{}",
            int(d, "/status/readyReplicas"),
            desired_replicas(d)
        )),
        json!(int(d, "/status/updatedReplicas")),
        json!(int(d, "/status/availableReplicas")),
        json!(clock.age(d)),
        json!(names),
        json!(images),
        json!(selector),
    ]
}

/// ReplicaSet columns.
pub(super) const REPLICA_SET: &[Column] = &[
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
        "The number of ready replicas for this replica set.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    Column::wide(
        "Selector",
        "string",
        "Selector is a label query over pods that should match the replica count.",
    ),
];

/// One ReplicaSet row.
pub(super) fn replica_set(rs: &Value, clock: &Clock) -> Vec<Value> {
    let (names, images) = template_containers(rs);
    vec![
        json!(s(rs, "/metadata/name")),
        json!(desired_replicas(rs)),
        json!(int(rs, "/status/replicas")),
        json!(int(rs, "/status/readyReplicas")),
        json!(clock.age(rs)),
        json!(names),
        json!(images),
        json!(format_label_selector(rs.pointer("/spec/selector"))),
    ]
}

/// StatefulSet columns (no wide selector, unlike the other workloads).
pub(super) const STATEFUL_SET: &[Column] = &[
    NAME,
    Column::new("Ready", "string", "Number of the pod with ready state"),
    AGE,
    CONTAINERS,
    IMAGES,
];

/// One StatefulSet row.
pub(super) fn stateful_set(sts: &Value, clock: &Clock) -> Vec<Value> {
    let (names, images) = template_containers(sts);
    vec![
        json!(s(sts, "/metadata/name")),
        json!(format!(
            "{}/{}",
            int(sts, "/status/readyReplicas"),
            desired_replicas(sts)
        )),
        json!(clock.age(sts)),
        json!(names),
        json!(images),
    ]
}

/// DaemonSet columns.
pub(super) const DAEMON_SET: &[Column] = &[
    NAME,
    Column::new(
        "Desired",
        "integer",
        "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod).",
    ),
    Column::new(
        "Current",
        "integer",
        "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod.",
    ),
    Column::new(
        "Ready",
        "integer",
        "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.",
    ),
    Column::new("Up-to-date", "integer", "The total number of nodes that are running updated daemon pod"),
    Column::new(
        "Available",
        "integer",
        "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)",
    ),
    Column::new(
        "Node Selector",
        "string",
        "NodeSelector is a selector which must be true for the pod to fit on a node.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    Column::wide("Selector", "string", "A label query over pods that are managed by the daemon set."),
];

/// One DaemonSet row.
pub(super) fn daemon_set(ds: &Value, clock: &Clock) -> Vec<Value> {
    let (names, images) = template_containers(ds);
    vec![
        json!(s(ds, "/metadata/name")),
        json!(int(ds, "/status/desiredNumberScheduled")),
        json!(int(ds, "/status/currentNumberScheduled")),
        json!(int(ds, "/status/numberReady")),
        json!(int(ds, "/status/updatedNumberScheduled")),
        json!(int(ds, "/status/numberAvailable")),
        json!(format_labels(obj(ds, "/spec/template/spec/nodeSelector"))),
        json!(clock.age(ds)),
        json!(names),
        json!(images),
        json!(format_label_selector(ds.pointer("/spec/selector"))),
    ]
}

/// ControllerRevision columns.
pub(super) const CONTROLLER_REVISION: &[Column] = &[
    NAME,
    Column::new("Controller", "string", "Controller of the object"),
    Column::new(
        "Revision",
        "string",
        "Revision indicates the revision of the state represented by Data.",
    ),
    AGE,
];

/// CONTROLLER: the owner reference marked `controller: true`, as
/// `kind.group/name` in lower case (`daemonset.apps/fluentd`), or `<none>`.
fn controller_name(cr: &Value) -> String {
    let Some(owner) = arr(cr, "/metadata/ownerReferences")
        .iter()
        .find(|o| o.get("controller").and_then(Value::as_bool) == Some(true))
    else {
        return "<none>".to_string();
    };
    let api_version = s(owner, "/apiVersion");
    let group = match api_version.split_once('/') {
        Some((group, _)) => group,
        None => "",
    };
    let kind = s(owner, "/kind");
    let name = s(owner, "/name");
    let group_kind = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    if group_kind.is_empty() {
        return name.to_string();
    }
    format!("{}/{name}", group_kind.to_lowercase())
}

/// One ControllerRevision row.
pub(super) fn controller_revision(cr: &Value, clock: &Clock) -> Vec<Value> {
    vec![
        json!(s(cr, "/metadata/name")),
        json!(controller_name(cr)),
        json!(int(cr, "/revision")),
        json!(clock.age(cr)),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{ago, cells, headers};
    use serde_json::{json, Value};

    fn meta(name: &str, age: i64) -> Value {
        json!({"name": name, "namespace": "default", "creationTimestamp": ago(age)})
    }

    fn template() -> Value {
        json!({"metadata": {"labels": {"app": "web"}},
               "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}, {"name": "log", "image": "busybox"}]}})
    }

    #[test]
    fn deployment_three_of_three() {
        assert_eq!(
            headers("apps", "Deployment"),
            vec![
                ("Name", "string", "name", 0),
                ("Ready", "string", "", 0),
                ("Up-to-date", "string", "", 0),
                ("Available", "string", "", 0),
                ("Age", "string", "", 0),
                ("Containers", "string", "", 1),
                ("Images", "string", "", 1),
                ("Selector", "string", "", 1),
            ]
        );
        let d = json!({"metadata": meta("web", 86400 * 2 + 3600 * 5),
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template()},
            "status": {"replicas": 3, "readyReplicas": 3, "updatedReplicas": 3, "availableReplicas": 3}});
        assert_eq!(
            cells("apps", "Deployment", d),
            vec![
                json!("web"),
                json!("3/3"),
                json!(3),
                json!(3),
                json!("2d5h"),
                json!("nginx,log"),
                json!("nginx:1.25,busybox"),
                json!("app=web"),
            ]
        );
        // Freshly created: no status yet, replicas defaulted.
        let d = json!({"metadata": meta("new", 1), "spec": {"template": template()}});
        assert_eq!(
            cells("apps", "Deployment", d)[1..5],
            [json!("0/1"), json!(0), json!(0), json!("1s")]
        );
        let d = json!({"metadata": meta("scaled", 1), "spec": {"replicas": 0, "selector": {}}});
        assert_eq!(cells("apps", "Deployment", d)[1], "0/0");
    }

    #[test]
    fn replica_set() {
        assert_eq!(
            headers("apps", "ReplicaSet"),
            vec![
                ("Name", "string", "name", 0),
                ("Desired", "integer", "", 0),
                ("Current", "integer", "", 0),
                ("Ready", "integer", "", 0),
                ("Age", "string", "", 0),
                ("Containers", "string", "", 1),
                ("Images", "string", "", 1),
                ("Selector", "string", "", 1),
            ]
        );
        let rs = json!({"metadata": meta("web-5d4f8", 600),
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d4f8"}}, "template": template()},
            "status": {"replicas": 3, "readyReplicas": 2}});
        assert_eq!(
            cells("apps", "ReplicaSet", rs),
            vec![
                json!("web-5d4f8"),
                json!(3),
                json!(3),
                json!(2),
                json!("10m"),
                json!("nginx,log"),
                json!("nginx:1.25,busybox"),
                json!("app=web,pod-template-hash=5d4f8"),
            ]
        );
    }

    #[test]
    fn stateful_set() {
        assert_eq!(
            headers("apps", "StatefulSet"),
            vec![
                ("Name", "string", "name", 0),
                ("Ready", "string", "", 0),
                ("Age", "string", "", 0),
                ("Containers", "string", "", 1),
                ("Images", "string", "", 1),
            ]
        );
        let sts = json!({"metadata": meta("db", 45), "spec": {"replicas": 3, "template": template()}, "status": {"readyReplicas": 1}});
        assert_eq!(
            cells("apps", "StatefulSet", sts),
            vec![
                json!("db"),
                json!("1/3"),
                json!("45s"),
                json!("nginx,log"),
                json!("nginx:1.25,busybox")
            ]
        );
    }

    #[test]
    fn daemon_set() {
        assert_eq!(
            headers("apps", "DaemonSet"),
            vec![
                ("Name", "string", "name", 0),
                ("Desired", "integer", "", 0),
                ("Current", "integer", "", 0),
                ("Ready", "integer", "", 0),
                ("Up-to-date", "integer", "", 0),
                ("Available", "integer", "", 0),
                ("Node Selector", "string", "", 0),
                ("Age", "string", "", 0),
                ("Containers", "string", "", 1),
                ("Images", "string", "", 1),
                ("Selector", "string", "", 1),
            ]
        );
        let mut tpl = template();
        tpl["spec"]["nodeSelector"] = json!({"kubernetes.io/os": "linux"});
        let ds = json!({"metadata": meta("svclb", 3600 * 30),
            "spec": {"selector": {"matchLabels": {"app": "svclb"}}, "template": tpl},
            "status": {"desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberReady": 1,
                       "updatedNumberScheduled": 2, "numberAvailable": 1}});
        assert_eq!(
            cells("apps", "DaemonSet", ds),
            vec![
                json!("svclb"),
                json!(2),
                json!(2),
                json!(1),
                json!(2),
                json!(1),
                json!("kubernetes.io/os=linux"),
                json!("30h"),
                json!("nginx,log"),
                json!("nginx:1.25,busybox"),
                json!("app=svclb"),
            ]
        );
        let bare = json!({"metadata": meta("x", 1)});
        assert_eq!(cells("apps", "DaemonSet", bare)[6], "<none>");
    }

    #[test]
    fn controller_revision() {
        assert_eq!(
            headers("apps", "ControllerRevision"),
            vec![
                ("Name", "string", "name", 0),
                ("Controller", "string", "", 0),
                ("Revision", "string", "", 0),
                ("Age", "string", "", 0)
            ]
        );
        let cr = json!({"metadata": {"name": "fluentd-6b9c", "creationTimestamp": ago(20), "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "fluentd", "uid": "u", "controller": true}]},
            "revision": 2, "data": {}});
        assert_eq!(
            cells("apps", "ControllerRevision", cr),
            vec![
                json!("fluentd-6b9c"),
                json!("daemonset.apps/fluentd"),
                json!(2),
                json!("20s")
            ]
        );
        let cr =
            json!({"metadata": {"name": "orphan", "creationTimestamp": ago(20)}, "revision": 1});
        assert_eq!(cells("apps", "ControllerRevision", cr)[1], "<none>");
        let cr = json!({"metadata": {"name": "core", "ownerReferences": [
            {"apiVersion": "v1", "kind": "Pod", "name": "p", "controller": true}]}, "revision": 1});
        assert_eq!(cells("apps", "ControllerRevision", cr)[1], "pod/p");
    }
}
