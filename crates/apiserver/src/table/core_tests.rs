//! Cell-by-cell checks of the core printers against what upstream prints.

use super::super::testutil::{ago, cells, headers};
use serde_json::{json, Value};

fn meta(name: &str, age: i64) -> Value {
    json!({"name": name, "namespace": "default", "creationTimestamp": ago(age)})
}

#[test]
fn service_columns() {
    assert_eq!(
        headers("", "Service"),
        vec![
            ("Name", "string", "name", 0),
            ("Type", "string", "", 0),
            ("Cluster-IP", "string", "", 0),
            ("External-IP", "string", "", 0),
            ("Port(s)", "string", "", 0),
            ("Age", "string", "", 0),
            ("Selector", "string", "", 1),
        ]
    );
}

#[test]
fn node_port_service() {
    let svc = json!({
        "metadata": meta("web", 3600 * 5 + 120),
        "spec": {
            "type": "NodePort", "clusterIP": "10.43.0.15", "clusterIPs": ["10.43.0.15"],
            "selector": {"app": "web", "tier": "front"},
            "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]
        }
    });
    assert_eq!(
        cells("", "Service", svc),
        vec![
            json!("web"),
            json!("NodePort"),
            json!("10.43.0.15"),
            json!("<none>"),
            json!("80:30080/TCP,53/UDP"),
            json!("5h2m"),
            json!("app=web,tier=front"),
        ]
    );
}

#[test]
fn cluster_ip_headless_external_name_and_load_balancer() {
    let svc = json!({"metadata": meta("kubernetes", 86400 * 40), "spec": {"clusterIPs": ["10.43.0.1"], "ports": [{"port": 443}]}});
    assert_eq!(
        cells("", "Service", svc),
        vec![
            json!("kubernetes"),
            json!("ClusterIP"),
            json!("10.43.0.1"),
            json!("<none>"),
            json!("443/TCP"),
            json!("40d"),
            json!("<none>")
        ]
    );
    let headless = json!({"metadata": meta("db", 10), "spec": {"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"]}});
    assert_eq!(
        cells("", "Service", headless)[2..5],
        [json!("None"), json!("<none>"), json!("<none>")]
    );
    let ext = json!({"metadata": meta("ext", 10), "spec": {"type": "ExternalName", "externalName": "example.com"}});
    assert_eq!(
        cells("", "Service", ext)[1..5],
        [
            json!("ExternalName"),
            json!("<none>"),
            json!("example.com"),
            json!("<none>")
        ]
    );

    let mut lb = json!({"metadata": meta("lb", 10), "spec": {"type": "LoadBalancer", "clusterIPs": ["10.43.0.9"],
        "ports": [{"port": 80, "nodePort": 31000, "protocol": "TCP"}]}});
    assert_eq!(
        cells("", "Service", lb.clone())[3..5],
        [json!("<pending>"), json!("80:31000/TCP")]
    );
    lb["status"] = json!({"loadBalancer": {"ingress": [{"ip": "192.168.1.240"}, {"hostname": "lb.example.com"}]}});
    assert_eq!(
        cells("", "Service", lb.clone())[3],
        "192.168.1.240,lb.example.com"
    );
    lb["spec"]["externalIPs"] = json!(["1.2.3.4"]);
    assert_eq!(
        cells("", "Service", lb)[3],
        "192.168.1.240,lb.example.com,1.2.3.4"
    );
}

#[test]
fn node_columns() {
    assert_eq!(
        headers("", "Node"),
        vec![
            ("Name", "string", "name", 0),
            ("Status", "string", "", 0),
            ("Roles", "string", "", 0),
            ("Age", "string", "", 0),
            ("Version", "string", "", 0),
            ("Internal-IP", "string", "", 1),
            ("External-IP", "string", "", 1),
            ("OS-Image", "string", "", 1),
            ("Kernel-Version", "string", "", 1),
            ("Container-Runtime", "string", "", 1),
        ]
    );
}

#[test]
fn ready_node_with_roles() {
    let node = json!({
        "metadata": {"name": "server-1", "creationTimestamp": ago(86400 * 12),
            "labels": {"node-role.kubernetes.io/control-plane": "true", "node-role.kubernetes.io/master": "true",
                       "kubernetes.io/role": "etcd", "kubernetes.io/hostname": "server-1"}},
        "spec": {"unschedulable": true},
        "status": {
            "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
            "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}, {"type": "Hostname", "address": "server-1"}],
            "nodeInfo": {"kubeletVersion": "v1.31.2+wharf", "osImage": "Debian GNU/Linux 12 (bookworm)",
                         "kernelVersion": "6.1.0-18-amd64", "containerRuntimeVersion": "containerd://1.7.13"}
        }
    });
    assert_eq!(
        cells("", "Node", node),
        vec![
            json!("server-1"),
            json!("Ready,SchedulingDisabled"),
            json!("control-plane,etcd,master"),
            json!("12d"),
            json!("v1.31.2+wharf"),
            json!("192.168.1.10"),
            json!("<none>"),
            json!("Debian GNU/Linux 12 (bookworm)"),
            json!("6.1.0-18-amd64"),
            json!("containerd://1.7.13"),
        ]
    );
}

#[test]
fn not_ready_and_unknown_nodes() {
    let node = json!({"metadata": {"name": "n2", "creationTimestamp": ago(50)},
        "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
    let c = cells("", "Node", node);
    assert_eq!(
        c[1..5],
        [json!("NotReady"), json!("<none>"), json!("50s"), json!("")]
    );
    assert_eq!(
        c[5..],
        [
            json!("<none>"),
            json!("<none>"),
            json!("<unknown>"),
            json!("<unknown>"),
            json!("<unknown>")
        ]
    );
    let bare = json!({"metadata": {"name": "n3"}});
    assert_eq!(
        cells("", "Node", bare)[1..4],
        [json!("Unknown"), json!("<none>"), json!("<unknown>")]
    );
}

#[test]
fn namespaces_secrets_configmaps_service_accounts() {
    assert_eq!(
        headers("", "Namespace"),
        vec![
            ("Name", "string", "name", 0),
            ("Status", "string", "", 0),
            ("Age", "string", "", 0)
        ]
    );
    let ns = json!({"metadata": {"name": "kube-system", "creationTimestamp": ago(86400 * 3 + 3600 * 2)}, "status": {"phase": "Active"}});
    assert_eq!(
        cells("", "Namespace", ns),
        vec![json!("kube-system"), json!("Active"), json!("3d2h")]
    );
    let ns = json!({"metadata": {"name": "old", "creationTimestamp": ago(600), "deletionTimestamp": ago(1)}, "status": {"phase": "Terminating"}});
    assert_eq!(cells("", "Namespace", ns)[1], "Terminating");

    assert_eq!(
        headers("", "Secret"),
        vec![
            ("Name", "string", "name", 0),
            ("Type", "string", "", 0),
            ("Data", "string", "", 0),
            ("Age", "string", "", 0)
        ]
    );
    let tls = json!({"metadata": meta("tls", 7200), "type": "kubernetes.io/tls", "data": {"tls.crt": "eA==", "tls.key": "eA=="}});
    assert_eq!(
        cells("", "Secret", tls),
        vec![
            json!("tls"),
            json!("kubernetes.io/tls"),
            json!(2),
            json!("120m")
        ]
    );
    let opaque = json!({"metadata": meta("empty", 5)});
    assert_eq!(
        cells("", "Secret", opaque),
        vec![json!("empty"), json!("Opaque"), json!(0), json!("5s")]
    );

    assert_eq!(
        headers("", "ConfigMap"),
        vec![
            ("Name", "string", "name", 0),
            ("Data", "string", "", 0),
            ("Age", "string", "", 0)
        ]
    );
    let cm = json!({"metadata": meta("kube-root-ca.crt", 86400 * 400), "data": {"ca.crt": "x"}, "binaryData": {"b": "eA=="}});
    assert_eq!(
        cells("", "ConfigMap", cm),
        vec![json!("kube-root-ca.crt"), json!(2), json!("400d")]
    );

    assert_eq!(
        headers("", "ServiceAccount"),
        vec![
            ("Name", "string", "name", 0),
            ("Secrets", "string", "", 0),
            ("Age", "string", "", 0)
        ]
    );
    let sa = json!({"metadata": meta("default", 86400 * 365 * 3)});
    assert_eq!(
        cells("", "ServiceAccount", sa),
        vec![json!("default"), json!(0), json!("3y")]
    );
    let sa = json!({"metadata": meta("builder", 100), "secrets": [{"name": "builder-token"}]});
    assert_eq!(cells("", "ServiceAccount", sa)[1], 1);
}

#[test]
fn endpoints() {
    assert_eq!(
        headers("", "Endpoints"),
        vec![
            ("Name", "string", "name", 0),
            ("Endpoints", "string", "", 0),
            ("Age", "string", "", 0)
        ]
    );
    let ep = json!({"metadata": meta("web", 60), "subsets": [
        {"addresses": [{"ip": "10.42.0.5"}, {"ip": "10.42.0.6"}], "ports": [{"port": 8080, "name": "http"}, {"port": 8443, "name": "https"}]}
    ]});
    assert_eq!(
        cells("", "Endpoints", ep),
        vec![
            json!("web"),
            json!("10.42.0.5:8080,10.42.0.6:8080,10.42.0.5:8443 + 1 more..."),
            json!("60s")
        ]
    );
    let ep = json!({"metadata": meta("headless", 60), "subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 53}]}]});
    assert_eq!(cells("", "Endpoints", ep)[1], "[fd00::1]:53");
    let ep =
        json!({"metadata": meta("noports", 60), "subsets": [{"addresses": [{"ip": "10.0.0.1"}]}]});
    assert_eq!(cells("", "Endpoints", ep)[1], "10.0.0.1");
    assert_eq!(
        cells("", "Endpoints", json!({"metadata": meta("none", 60)}))[1],
        "<none>"
    );
}

#[test]
fn replication_controller() {
    assert_eq!(
        headers("", "ReplicationController"),
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
    let rc = json!({"metadata": meta("nginx", 30), "spec": {"replicas": 3, "selector": {"app": "nginx"},
        "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}]}}},
        "status": {"replicas": 3, "readyReplicas": 2}});
    assert_eq!(
        cells("", "ReplicationController", rc),
        vec![
            json!("nginx"),
            json!(3),
            json!(3),
            json!(2),
            json!("30s"),
            json!("nginx"),
            json!("nginx:1.25"),
            json!("app=nginx")
        ]
    );
}

#[test]
fn resource_quota() {
    assert_eq!(
        headers("", "ResourceQuota"),
        vec![
            ("Name", "string", "name", 0),
            ("Request", "string", "", 0),
            ("Limit", "string", "", 0),
            ("Age", "string", "", 0)
        ]
    );
    let q = json!({"metadata": meta("compute", 90), "status": {
        "hard": {"requests.cpu": "1", "limits.memory": "2Gi", "pods": "10", "limits.cpu": "2", "requests.memory": "1Gi"},
        "used": {"requests.cpu": "500m", "limits.cpu": "1", "pods": "3", "requests.memory": "256Mi"}
    }});
    assert_eq!(
        cells("", "ResourceQuota", q),
        vec![
            json!("compute"),
            json!("pods: 3/10, requests.cpu: 500m/1, requests.memory: 256Mi/1Gi"),
            json!("limits.cpu: 1/2, limits.memory: 0/2Gi"),
            json!("90s"),
        ]
    );
}

#[test]
fn persistent_volumes() {
    assert_eq!(
        headers("", "PersistentVolume"),
        vec![
            ("Name", "string", "name", 0),
            ("Capacity", "string", "", 0),
            ("Access Modes", "string", "", 0),
            ("Reclaim Policy", "string", "", 0),
            ("Status", "string", "", 0),
            ("Claim", "string", "", 0),
            ("StorageClass", "string", "", 0),
            ("VolumeAttributesClass", "string", "", 0),
            ("Reason", "string", "", 0),
            ("Age", "string", "", 0),
            ("VolumeMode", "string", "", 1),
        ]
    );
    let pv = json!({"metadata": {"name": "pvc-1234", "creationTimestamp": ago(3600)},
        "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"], "persistentVolumeReclaimPolicy": "Delete",
                 "storageClassName": "local-path", "claimRef": {"namespace": "default", "name": "data"}, "volumeMode": "Filesystem"},
        "status": {"phase": "Bound"}});
    assert_eq!(
        cells("", "PersistentVolume", pv),
        vec![
            json!("pvc-1234"),
            json!("10Gi"),
            json!("RWO"),
            json!("Delete"),
            json!("Bound"),
            json!("default/data"),
            json!("local-path"),
            json!("<unset>"),
            json!(""),
            json!("60m"),
            json!("Filesystem"),
        ]
    );

    // Quantities print canonically, whatever spelling was stored.
    let pv = json!({"metadata": {"name": "small"}, "spec": {"capacity": {"storage": "1024Mi"}}});
    assert_eq!(
        cells("", "PersistentVolume", pv)[1..5],
        [json!("1Gi"), json!(""), json!("Retain"), json!("Pending")]
    );

    assert_eq!(
        headers("", "PersistentVolumeClaim"),
        vec![
            ("Name", "string", "name", 0),
            ("Status", "string", "", 0),
            ("Volume", "string", "", 0),
            ("Capacity", "string", "", 0),
            ("Access Modes", "string", "", 0),
            ("StorageClass", "string", "", 0),
            ("VolumeAttributesClass", "string", "", 0),
            ("Age", "string", "", 0),
            ("VolumeMode", "string", "", 1),
        ]
    );
    let bound = json!({"metadata": meta("data", 3600),
        "spec": {"volumeName": "pvc-1234", "storageClassName": "local-path", "accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "5Gi"}}, "volumeMode": "Filesystem"},
        "status": {"phase": "Bound", "capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce", "ReadOnlyMany"]}});
    assert_eq!(
        cells("", "PersistentVolumeClaim", bound),
        vec![
            json!("data"),
            json!("Bound"),
            json!("pvc-1234"),
            json!("10Gi"),
            json!("RWO,ROX"),
            json!("local-path"),
            json!("<unset>"),
            json!("60m"),
            json!("Filesystem"),
        ]
    );
    let pending = json!({"metadata": {"name": "p", "creationTimestamp": ago(5),
        "annotations": {"volume.beta.kubernetes.io/storage-class": "old"}},
        "spec": {"storageClassName": "new"}, "status": {"phase": "Pending"}});
    assert_eq!(
        cells("", "PersistentVolumeClaim", pending)[1..6],
        [
            json!("Pending"),
            json!(""),
            json!(""),
            json!(""),
            json!("old")
        ]
    );
}
