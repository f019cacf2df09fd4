use super::*;
use crate::error::FieldErrorType;
use crate::strategy::sets::*;

/// What `kubectl create deployment web --image=nginx` sends.
fn kubectl_deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": "web", "namespace": "default", "labels": { "app": "web" } },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": { "app": "web" } },
            "strategy": {},
            "template": {
                "metadata": { "labels": { "app": "web" } },
                "spec": { "containers": [{ "name": "nginx", "image": "nginx", "resources": {} }] }
            }
        },
        "status": {}
    })
}

fn created<S: Strategy>(s: &S, mut obj: Value) -> Value {
    s.prepare_for_create(&mut obj);
    s.default(&mut obj);
    obj
}

use crate::strategy::error_fields as fields;

#[test]
fn kubectl_create_deployment_is_stored_like_upstream() {
    let d = created(&DeploymentStrategy, kubectl_deployment());
    assert_eq!(
        d["spec"],
        json!({
            "progressDeadlineSeconds": 600, "replicas": 1, "revisionHistoryLimit": 10,
            "selector": { "matchLabels": { "app": "web" } },
            "strategy": { "rollingUpdate": { "maxSurge": "25%", "maxUnavailable": "25%" }, "type": "RollingUpdate" },
            "template": {
                "metadata": { "labels": { "app": "web" } },
                "spec": {
                    "containers": [{ "image": "nginx", "imagePullPolicy": "Always", "name": "nginx", "resources": {},
                                     "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File" }],
                    "dnsPolicy": "ClusterFirst", "restartPolicy": "Always", "schedulerName": "default-scheduler",
                    "securityContext": {}, "terminationGracePeriodSeconds": 30
                }
            }
        })
    );
    assert_eq!(d["status"], json!({}));
    assert!(
        DeploymentStrategy.validate(&d).is_empty(),
        "{:?}",
        DeploymentStrategy.validate(&d)
    );
    assert!(DeploymentStrategy.unknown_fields(&d).is_empty());
    assert!(DeploymentStrategy.tracks_generation());
}

#[test]
fn deployment_rules() {
    let mut d = created(&DeploymentStrategy, kubectl_deployment());
    d["spec"]["selector"] = json!({ "matchLabels": { "app": "other" } });
    d["spec"]["replicas"] = json!(-1);
    d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    d["spec"]["strategy"]["rollingUpdate"] = json!({ "maxSurge": 0, "maxUnavailable": "0%" });
    let e = DeploymentStrategy.validate(&d);
    assert_eq!(
        fields(e.clone()),
        vec![
            ("spec.replicas".into(), FieldErrorType::Invalid),
            (
                "spec.template.metadata.labels".into(),
                FieldErrorType::Invalid
            ),
            (
                "spec.template.spec.restartPolicy".into(),
                FieldErrorType::NotSupported
            ),
            (
                "spec.strategy.rollingUpdate.maxUnavailable".into(),
                FieldErrorType::Invalid
            ),
        ]
    );
    assert_eq!(
        e[1].message(),
        "spec.template.metadata.labels: Invalid value: {\"app\":\"web\"}: `selector` does not match template `labels`"
    );
    let mut none = created(&DeploymentStrategy, kubectl_deployment());
    none["spec"].as_object_mut().unwrap().remove("selector");
    assert_eq!(
        fields(DeploymentStrategy.validate(&none)),
        vec![
            ("spec.selector".into(), FieldErrorType::Required),
            (
                "spec.template.metadata.labels".into(),
                FieldErrorType::Invalid
            )
        ]
    );
}

#[test]
fn deployment_selector_is_immutable_and_annotations_bump_generation() {
    let mut old = created(&DeploymentStrategy, kubectl_deployment());
    old["metadata"]["generation"] = json!(3);
    let mut new = old.clone();
    new["spec"]["selector"]["matchLabels"]["tier"] = json!("x");
    new["spec"]["template"]["metadata"]["labels"]["tier"] = json!("x");
    let e = DeploymentStrategy.validate_update(&new, &old);
    assert_eq!(
        fields(e.clone()),
        vec![("spec.selector".into(), FieldErrorType::Invalid)]
    );
    assert_eq!(e[0].detail, "field is immutable");
    let mut ann = old.clone();
    ann["metadata"]["annotations"] = json!({ "a": "b" });
    ann["status"] = json!({ "replicas": 5 });
    DeploymentStrategy.prepare_for_update(&mut ann, &old);
    assert_eq!(ann["metadata"]["generation"], 4);
    assert_eq!(ann["status"], json!({}));
}

#[test]
fn status_updates_keep_spec_and_check_counts() {
    let old = created(&DeploymentStrategy, kubectl_deployment());
    let mut new = old.clone();
    new["spec"]["replicas"] = json!(5);
    new["metadata"]["labels"] = json!({ "changed": "yes" });
    new["status"] = json!({ "replicas": 1, "readyReplicas": 2, "availableReplicas": 1 });
    DeploymentStrategy.prepare_for_status_update(&mut new, &old);
    assert_eq!(new["spec"], old["spec"]);
    assert_eq!(new["metadata"]["labels"], old["metadata"]["labels"]);
    assert_eq!(
        fields(DeploymentStrategy.validate_status_update(&new, &old)),
        vec![("status.readyReplicas".into(), FieldErrorType::Invalid)]
    );
}

#[test]
fn statefulset_defaults_and_update_rules() {
    let sts = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": { "name": "db", "namespace": "default" },
        "spec": {
            "serviceName": "db", "selector": { "matchLabels": { "app": "db" } },
            "template": { "metadata": { "labels": { "app": "db" } }, "spec": { "containers": [{ "name": "db", "image": "postgres:16" }] } },
            "volumeClaimTemplates": [{ "metadata": { "name": "data" }, "spec": { "accessModes": ["ReadWriteOnce"], "resources": { "requests": { "storage": "1Gi" } } } }]
        }
    });
    let s = StatefulSetStrategy;
    let old = created(&s, sts);
    assert_eq!(old["spec"]["podManagementPolicy"], "OrderedReady");
    assert_eq!(
        old["spec"]["updateStrategy"],
        json!({ "type": "RollingUpdate", "rollingUpdate": { "partition": 0, "maxUnavailable": 1 } })
    );
    assert_eq!(
        old["spec"]["persistentVolumeClaimRetentionPolicy"],
        json!({ "whenDeleted": "Retain", "whenScaled": "Retain" })
    );
    assert_eq!(old["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(
        old["spec"]["volumeClaimTemplates"][0]["spec"]["volumeMode"],
        "Filesystem"
    );
    assert_eq!(
        old["spec"]["volumeClaimTemplates"][0]["status"],
        json!({ "phase": "Pending" })
    );
    assert_eq!(
        old["spec"]["volumeClaimTemplates"][0]["kind"],
        "PersistentVolumeClaim"
    );
    assert_eq!(
        old["status"],
        json!({ "replicas": 0, "availableReplicas": 0 })
    );
    assert!(s.validate(&old).is_empty(), "{:?}", s.validate(&old));
    let mut scaled = old.clone();
    scaled["spec"]["replicas"] = json!(3);
    assert!(s.validate_update(&scaled, &old).is_empty());
    let mut renamed = old.clone();
    renamed["spec"]["serviceName"] = json!("other");
    assert_eq!(
        fields(s.validate_update(&renamed, &old)),
        vec![("spec".into(), FieldErrorType::Forbidden)]
    );
}

#[test]
fn daemonset_defaults_and_template_generation() {
    let ds = json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": { "name": "agent", "namespace": "kube-system" },
        "spec": { "selector": { "matchLabels": { "app": "agent" } },
                  "template": { "metadata": { "labels": { "app": "agent" } }, "spec": { "containers": [{ "name": "a", "image": "agent:1" }] } } }
    });
    let s = DaemonSetStrategy;
    let old = created(&s, ds);
    assert_eq!(
        old["spec"]["updateStrategy"],
        json!({ "type": "RollingUpdate", "rollingUpdate": { "maxUnavailable": 1, "maxSurge": 0 } })
    );
    assert_eq!(old["metadata"]["annotations"][TEMPLATE_GENERATION], "1");
    assert!(s.validate(&old).is_empty(), "{:?}", s.validate(&old));
    let mut new = old.clone();
    new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("agent:2");
    s.prepare_for_update(&mut new, &old);
    assert_eq!(new["metadata"]["annotations"][TEMPLATE_GENERATION], "2");
    let mut both = old.clone();
    both["spec"]["updateStrategy"]["rollingUpdate"]["maxSurge"] = json!(1);
    assert_eq!(
        fields(s.validate(&both)),
        vec![(
            "spec.updateStrategy.rollingUpdate.maxSurge".into(),
            FieldErrorType::Invalid
        )]
    );
}

#[test]
fn replicaset_and_replication_controller() {
    let rs = json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": { "name": "r", "namespace": "default" },
        "spec": { "selector": { "matchLabels": { "a": "b" } },
                  "template": { "metadata": { "labels": { "a": "b" } }, "spec": { "containers": [{ "name": "c", "image": "i" }] } } }
    });
    let r = created(&ReplicaSetStrategy, rs);
    assert_eq!(r["spec"]["replicas"], 1);
    assert!(ReplicaSetStrategy.validate(&r).is_empty());
    assert_eq!(
        ReplicaSetStrategy.selectable_fields(&r),
        vec![("status.replicas", "0".to_string())]
    );
    let rc = json!({
        "apiVersion": "v1", "kind": "ReplicationController", "metadata": { "name": "rc", "namespace": "default" },
        "spec": { "template": { "metadata": { "labels": { "a": "b" } }, "spec": { "containers": [{ "name": "c", "image": "i" }] } } }
    });
    let c = created(&ReplicationControllerStrategy, rc);
    assert_eq!(c["spec"]["selector"], json!({ "a": "b" }));
    assert_eq!(c["metadata"]["labels"], json!({ "a": "b" }));
    assert!(
        ReplicationControllerStrategy.validate(&c).is_empty(),
        "{:?}",
        ReplicationControllerStrategy.validate(&c)
    );
}

#[test]
fn controller_revisions() {
    let s = ControllerRevisionStrategy;
    let cr = json!({ "apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": { "name": "x", "namespace": "d" }, "revision": 1 });
    assert_eq!(
        fields(s.validate(&cr)),
        vec![("data".into(), FieldErrorType::Required)]
    );
    let mut ok = cr.clone();
    ok["data"] = json!({ "spec": {} });
    let mut changed = ok.clone();
    changed["data"] = json!({ "spec": { "x": 1 } });
    assert_eq!(
        fields(s.validate_update(&changed, &ok)),
        vec![("data".into(), FieldErrorType::Invalid)]
    );
}
