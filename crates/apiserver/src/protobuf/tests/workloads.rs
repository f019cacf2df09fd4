//! Pods and the workload kinds that carry pod templates.

use k8s_openapi::api::{apps::v1 as oapps, batch::v1 as obatch, core::v1 as ocore};
use k8s_pb::api::{apps::v1 as apps, batch::v1 as batch, core::v1 as core};
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

use super::*;

/// A container as Go writes it for `kubectl create deployment|job|cronjob`:
/// every value field present and mostly zero, `resources` an empty message.
fn go_container(name: &str, image: &str) -> core::Container {
    core::Container {
        name: s(name),
        image: s(image),
        working_dir: s(""),
        resources: Some(core::ResourceRequirements::default()),
        termination_message_path: s(""),
        termination_message_policy: s(""),
        image_pull_policy: s(""),
        stdin: Some(false),
        stdin_once: Some(false),
        tty: Some(false),
        ..Default::default()
    }
}

/// The value fields of a pod spec that Go always writes, all zero.
fn go_pod_spec(containers: Vec<core::Container>) -> core::PodSpec {
    core::PodSpec {
        containers,
        restart_policy: s(""),
        dns_policy: s(""),
        service_account_name: s(""),
        service_account: s(""),
        node_name: s(""),
        host_network: Some(false),
        host_pid: Some(false),
        host_ipc: Some(false),
        hostname: s(""),
        subdomain: s(""),
        scheduler_name: s(""),
        priority_class_name: s(""),
        ..Default::default()
    }
}

fn template(labels: &[(&str, &str)], spec: core::PodSpec) -> core::PodTemplateSpec {
    core::PodTemplateSpec {
        metadata: Some(labelled("", "", labels)),
        spec: Some(spec),
    }
}

#[test]
fn deployment_as_kubectl_create_deployment_sends_it() {
    // kubectl create deployment web --image=busybox --replicas=3 --port=8080
    let mut c = go_container("busybox", "busybox");
    c.ports = vec![core::ContainerPort {
        name: s(""),
        host_port: Some(0),
        container_port: Some(8080),
        protocol: s(""),
        host_ip: s(""),
    }];
    let d = apps::Deployment {
        metadata: Some(labelled("web", "", &[("app", "web")])),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(3),
            selector: Some(meta::LabelSelector {
                match_labels: string_map(&[("app", "web")]),
                ..Default::default()
            }),
            template: Some(template(&[("app", "web")], go_pod_spec(vec![c]))),
            strategy: Some(apps::DeploymentStrategy {
                r#type: s(""),
                rolling_update: None,
            }),
            min_ready_seconds: Some(0),
            paused: Some(false),
            ..Default::default()
        }),
        status: Some(apps::DeploymentStatus {
            observed_generation: Some(0),
            replicas: Some(0),
            updated_replicas: Some(0),
            ready_replicas: Some(0),
            available_replicas: Some(0),
            unavailable_replicas: Some(0),
            ..Default::default()
        }),
    };
    let want = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": "web", "labels": { "app": "web" }, "creationTimestamp": null },
        "spec": {
            "replicas": 3,
            "selector": { "matchLabels": { "app": "web" } },
            "template": {
                "metadata": { "labels": { "app": "web" }, "creationTimestamp": null },
                "spec": {
                    "containers": [{
                        "name": "busybox",
                        "image": "busybox",
                        "ports": [{ "containerPort": 8080 }],
                        "resources": {}
                    }]
                }
            },
            "strategy": {}
        },
        "status": {}
    });
    check::<oapps::Deployment>(&decoded("apps/v1", "Deployment", &d), want);
}

#[test]
fn zero_replicas_and_rolling_update_percentages_are_kept() {
    let d = apps::Deployment {
        metadata: Some(go_meta("web", "prod")),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(0),
            revision_history_limit: Some(0),
            progress_deadline_seconds: Some(600),
            strategy: Some(apps::DeploymentStrategy {
                r#type: s("RollingUpdate"),
                rolling_update: Some(apps::RollingUpdateDeployment {
                    max_unavailable: Some(IntOrString {
                        r#type: Some(1),
                        int_val: Some(0),
                        str_val: s("25%"),
                    }),
                    max_surge: Some(IntOrString {
                        r#type: Some(0),
                        int_val: Some(2),
                        str_val: s(""),
                    }),
                }),
            }),
            template: Some(template(
                &[],
                go_pod_spec(vec![go_container("app", "nginx")]),
            )),
            ..Default::default()
        }),
        status: None,
    };
    let got = decoded("apps/v1", "Deployment", &d);
    assert_eq!(
        got["metadata"],
        json!({ "name": "web", "namespace": "prod", "creationTimestamp": null })
    );
    assert_eq!(
        got["spec"]["replicas"], 0,
        "a pointer field's zero is a value"
    );
    assert_eq!(got["spec"]["revisionHistoryLimit"], 0);
    assert_eq!(got["spec"]["progressDeadlineSeconds"], 600);
    assert_eq!(
        got["spec"]["strategy"],
        json!({ "type": "RollingUpdate", "rollingUpdate": { "maxUnavailable": "25%", "maxSurge": 2 } })
    );
    check::<oapps::Deployment>(&got, got.clone());
}

/// A pod using much of what kubectl run and create can set.
pub(super) fn rich_pod() -> core::Pod {
    let qty = |v: &str| Quantity { string: s(v) };
    let container = core::Container {
        command: strings(&["sh", "-c"]),
        args: strings(&["sleep 3600"]),
        working_dir: s("/work"),
        env: vec![
            core::EnvVar {
                name: s("MODE"),
                value: s("fast"),
                value_from: None,
            },
            core::EnvVar {
                name: s("POD_NAME"),
                value: s(""),
                value_from: Some(core::EnvVarSource {
                    field_ref: Some(core::ObjectFieldSelector {
                        api_version: s("v1"),
                        field_path: s("metadata.name"),
                    }),
                    ..Default::default()
                }),
            },
            core::EnvVar {
                name: s("PASSWORD"),
                value: None,
                value_from: Some(core::EnvVarSource {
                    secret_key_ref: Some(core::SecretKeySelector {
                        local_object_reference: Some(core::LocalObjectReference { name: s("db") }),
                        key: s("password"),
                        optional: Some(false),
                    }),
                    ..Default::default()
                }),
            },
        ],
        env_from: vec![core::EnvFromSource {
            prefix: s("CFG_"),
            config_map_ref: Some(core::ConfigMapEnvSource {
                local_object_reference: Some(core::LocalObjectReference {
                    name: s("settings"),
                }),
                optional: None,
            }),
            secret_ref: None,
        }],
        resources: Some(core::ResourceRequirements {
            limits: [
                ("cpu".to_string(), qty("500m")),
                ("memory".to_string(), qty("128Mi")),
            ]
            .into(),
            requests: [("cpu".to_string(), qty("250m"))].into(),
            claims: vec![],
        }),
        volume_mounts: vec![
            core::VolumeMount {
                name: s("data"),
                mount_path: s("/data"),
                read_only: Some(false),
                ..Default::default()
            },
            core::VolumeMount {
                name: s("cfg"),
                mount_path: s("/etc/cfg"),
                read_only: Some(true),
                ..Default::default()
            },
        ],
        liveness_probe: Some(core::Probe {
            handler: Some(core::ProbeHandler {
                http_get: Some(core::HttpGetAction {
                    path: s("/healthz"),
                    port: Some(IntOrString {
                        r#type: Some(1),
                        int_val: Some(0),
                        str_val: s("http"),
                    }),
                    scheme: s("HTTP"),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            initial_delay_seconds: Some(5),
            period_seconds: Some(10),
            ..Default::default()
        }),
        security_context: Some(core::SecurityContext {
            run_as_user: Some(1000),
            run_as_non_root: Some(true),
            allow_privilege_escalation: Some(false),
            capabilities: Some(core::Capabilities {
                add: vec![],
                drop: strings(&["ALL"]),
            }),
            ..Default::default()
        }),
        image_pull_policy: s("IfNotPresent"),
        stdin: Some(true),
        tty: Some(true),
        ..go_container("app", "busybox:1.36")
    };
    let mut spec = go_pod_spec(vec![container]);
    spec.restart_policy = s("Never");
    spec.termination_grace_period_seconds = Some(0);
    spec.node_selector = string_map(&[("disk", "ssd")]);
    spec.enable_service_links = Some(false);
    spec.security_context = Some(core::PodSecurityContext {
        fs_group: Some(2000),
        ..Default::default()
    });
    spec.tolerations = vec![core::Toleration {
        key: s("dedicated"),
        operator: s("Equal"),
        value: s("gpu"),
        effect: s("NoSchedule"),
        toleration_seconds: None,
    }];
    spec.volumes = vec![
        core::Volume {
            name: s("data"),
            volume_source: Some(core::VolumeSource {
                empty_dir: Some(core::EmptyDirVolumeSource {
                    medium: s(""),
                    size_limit: Some(qty("1Gi")),
                }),
                ..Default::default()
            }),
        },
        core::Volume {
            name: s("cfg"),
            volume_source: Some(core::VolumeSource {
                config_map: Some(core::ConfigMapVolumeSource {
                    local_object_reference: Some(core::LocalObjectReference {
                        name: s("settings"),
                    }),
                    items: vec![core::KeyToPath {
                        key: s("a"),
                        path: s("a.conf"),
                        mode: Some(0o400),
                    }],
                    default_mode: Some(0o644),
                    optional: None,
                }),
                ..Default::default()
            }),
        },
        core::Volume {
            name: s("host"),
            volume_source: Some(core::VolumeSource {
                host_path: Some(core::HostPathVolumeSource {
                    path: s("/var/log"),
                    r#type: s("Directory"),
                }),
                ..Default::default()
            }),
        },
        core::Volume {
            name: s("tls"),
            volume_source: Some(core::VolumeSource {
                secret: Some(core::SecretVolumeSource {
                    secret_name: s("tls"),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        },
    ];
    core::Pod {
        metadata: Some(labelled("app", "default", &[("run", "app")])),
        spec: Some(spec),
        status: Some(core::PodStatus {
            phase: s(""),
            message: s(""),
            reason: s(""),
            host_ip: s(""),
            pod_ip: s(""),
            nominated_node_name: s(""),
            qos_class: s(""),
            ..Default::default()
        }),
    }
}

#[test]
fn pod_with_env_resources_volumes_and_probes() {
    let want = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": "app", "namespace": "default", "labels": { "run": "app" }, "creationTimestamp": null },
        "spec": {
            "containers": [{
                "name": "app",
                "image": "busybox:1.36",
                "command": ["sh", "-c"],
                "args": ["sleep 3600"],
                "workingDir": "/work",
                "env": [
                    { "name": "MODE", "value": "fast" },
                    { "name": "POD_NAME", "valueFrom": { "fieldRef": { "apiVersion": "v1", "fieldPath": "metadata.name" } } },
                    { "name": "PASSWORD", "valueFrom": { "secretKeyRef": { "name": "db", "key": "password", "optional": false } } }
                ],
                "envFrom": [{ "prefix": "CFG_", "configMapRef": { "name": "settings" } }],
                "resources": { "limits": { "cpu": "500m", "memory": "128Mi" }, "requests": { "cpu": "250m" } },
                "volumeMounts": [
                    { "name": "data", "mountPath": "/data" },
                    { "name": "cfg", "mountPath": "/etc/cfg", "readOnly": true }
                ],
                "livenessProbe": {
                    "httpGet": { "path": "/healthz", "port": "http", "scheme": "HTTP" },
                    "initialDelaySeconds": 5,
                    "periodSeconds": 10
                },
                "securityContext": {
                    "runAsUser": 1000,
                    "runAsNonRoot": true,
                    "allowPrivilegeEscalation": false,
                    "capabilities": { "drop": ["ALL"] }
                },
                "imagePullPolicy": "IfNotPresent",
                "stdin": true,
                "tty": true
            }],
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "nodeSelector": { "disk": "ssd" },
            "enableServiceLinks": false,
            "securityContext": { "fsGroup": 2000 },
            "tolerations": [{ "key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule" }],
            "volumes": [
                { "name": "data", "emptyDir": { "sizeLimit": "1Gi" } },
                { "name": "cfg", "configMap": { "name": "settings", "items": [{ "key": "a", "path": "a.conf", "mode": 256 }], "defaultMode": 420 } },
                { "name": "host", "hostPath": { "path": "/var/log", "type": "Directory" } },
                { "name": "tls", "secret": { "secretName": "tls" } }
            ]
        },
        "status": {}
    });
    check::<ocore::Pod>(&decoded("v1", "Pod", &rich_pod()), want);
}

fn job_spec() -> batch::JobSpec {
    let mut spec = go_pod_spec(vec![go_container("pi", "perl")]);
    spec.containers[0].command = strings(&["perl", "-e", "print 1"]);
    spec.restart_policy = s("OnFailure");
    batch::JobSpec {
        template: Some(template(&[], spec)),
        ..Default::default()
    }
}

#[test]
fn job_created_from_a_cronjob() {
    // kubectl create job run1 --from=cronjob/nightly
    let mut meta = go_meta("run1", "");
    meta.annotations = string_map(&[("cronjob.kubernetes.io/instantiate", "manual")]);
    meta.owner_references = vec![meta::OwnerReference {
        api_version: s("batch/v1"),
        kind: s("CronJob"),
        name: s("nightly"),
        uid: s("4f1c0a52-6f0e-4d4e-9a52-0c1f2b3d4e5f"),
        controller: Some(true),
        block_owner_deletion: None,
    }];
    let job = batch::Job {
        metadata: Some(meta),
        spec: Some(batch::JobSpec {
            backoff_limit: Some(0),
            suspend: Some(false),
            ..job_spec()
        }),
        status: Some(batch::JobStatus {
            active: Some(0),
            succeeded: Some(0),
            failed: Some(0),
            ..Default::default()
        }),
    };
    let want = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "run1",
            "annotations": { "cronjob.kubernetes.io/instantiate": "manual" },
            "ownerReferences": [{
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "name": "nightly",
                "uid": "4f1c0a52-6f0e-4d4e-9a52-0c1f2b3d4e5f",
                "controller": true
            }],
            "creationTimestamp": null
        },
        "spec": {
            "backoffLimit": 0,
            "suspend": false,
            "template": {
                "metadata": { "creationTimestamp": null },
                "spec": {
                    "containers": [{ "name": "pi", "image": "perl", "command": ["perl", "-e", "print 1"], "resources": {} }],
                    "restartPolicy": "OnFailure"
                }
            }
        },
        "status": {}
    });
    check::<obatch::Job>(&decoded("batch/v1", "Job", &job), want);
}

#[test]
fn cronjob_as_kubectl_create_cronjob_sends_it() {
    // kubectl create cronjob nightly --image=perl --schedule='*/5 * * * *' -- perl -e 'print 1'
    let cj = batch::CronJob {
        metadata: Some(go_meta("nightly", "")),
        spec: Some(batch::CronJobSpec {
            schedule: s("*/5 * * * *"),
            concurrency_policy: s(""),
            job_template: Some(batch::JobTemplateSpec {
                metadata: Some(go_meta("nightly", "")),
                spec: Some(job_spec()),
            }),
            ..Default::default()
        }),
        status: Some(batch::CronJobStatus {
            last_schedule_time: Some(time(1_704_164_645)),
            ..Default::default()
        }),
    };
    let want = json!({
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": { "name": "nightly", "creationTimestamp": null },
        "spec": {
            "schedule": "*/5 * * * *",
            "jobTemplate": {
                "metadata": { "name": "nightly", "creationTimestamp": null },
                "spec": {
                    "template": {
                        "metadata": { "creationTimestamp": null },
                        "spec": {
                            "containers": [{ "name": "pi", "image": "perl", "command": ["perl", "-e", "print 1"], "resources": {} }],
                            "restartPolicy": "OnFailure"
                        }
                    }
                }
            }
        },
        "status": { "lastScheduleTime": "2024-01-02T03:04:05Z" }
    });
    check::<obatch::CronJob>(&decoded("batch/v1", "CronJob", &cj), want);
}

#[test]
fn statefulset_daemonset_and_replicaset_share_the_pod_template() {
    let tpl = || {
        Some(template(
            &[("app", "db")],
            go_pod_spec(vec![go_container("db", "postgres")]),
        ))
    };
    let ss = apps::StatefulSet {
        metadata: Some(go_meta("db", "")),
        spec: Some(apps::StatefulSetSpec {
            replicas: Some(1),
            service_name: s("db"),
            template: tpl(),
            volume_claim_templates: vec![core::PersistentVolumeClaim {
                metadata: Some(go_meta("data", "")),
                spec: Some(core::PersistentVolumeClaimSpec {
                    access_modes: strings(&["ReadWriteOnce"]),
                    resources: Some(core::VolumeResourceRequirements {
                        requests: [("storage".to_string(), Quantity { string: s("1Gi") })].into(),
                        limits: Default::default(),
                    }),
                    storage_class_name: s(""),
                    ..Default::default()
                }),
                status: None,
            }],
            ..Default::default()
        }),
        status: None,
    };
    let got = decoded("apps/v1", "StatefulSet", &ss);
    assert_eq!(
        got["spec"]["volumeClaimTemplates"][0]["spec"],
        json!({ "accessModes": ["ReadWriteOnce"], "resources": { "requests": { "storage": "1Gi" } }, "storageClassName": "" }),
        "storageClassName is a pointer: \"\" (no class) is kept"
    );
    check::<oapps::StatefulSet>(&got, got.clone());

    let ds = apps::DaemonSet {
        metadata: Some(go_meta("agent", "")),
        spec: Some(apps::DaemonSetSpec {
            template: tpl(),
            ..Default::default()
        }),
        status: None,
    };
    let got = decoded("apps/v1", "DaemonSet", &ds);
    assert_eq!(
        got["spec"]["template"]["spec"]["containers"][0]["image"],
        "postgres"
    );
    check::<oapps::DaemonSet>(&got, got.clone());

    let rs = apps::ReplicaSet {
        metadata: Some(go_meta("web-1", "")),
        spec: Some(apps::ReplicaSetSpec {
            replicas: Some(2),
            template: tpl(),
            ..Default::default()
        }),
        status: None,
    };
    let got = decoded("apps/v1", "ReplicaSet", &rs);
    assert_eq!(got["spec"]["replicas"], 2);
    check::<oapps::ReplicaSet>(&got, got.clone());
}
