//! A pod's spec as CRI configs: its sandbox and each container, with the
//! labels and annotations upstream's kubelet sets (so the pod is found
//! again after a restart) and cgroup resources from requests and limits.

use std::collections::HashMap;
use std::path::Path;

use k8s_openapi::api::core::v1::{Container, Pod};

use crate::cri::{api, labels};
use crate::volume::downward::{self, NodeFacts};
// Quantities are parsed as the scheduler parses them (exact integers).
use scheduler::quantity;

/// What the configs need besides the pod itself.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// The node's name.
    pub node_name: String,
    /// The node's address (`status.hostIP`).
    pub host_ip: String,
    /// The pod's address once its sandbox has one.
    pub pod_ip: String,
    /// The node's memory in bytes (for oom_score_adj, and a missing
    /// memory limit in the downward API).
    pub memory_capacity: i64,
    /// The node's CPUs in millicores (a missing cpu limit in the downward API).
    pub cpu_milli: i64,
    /// The node's ephemeral storage in bytes.
    pub ephemeral_storage: i64,
    /// The pod's provided volumes, by name.
    pub volumes: HashMap<String, crate::volume::Provided>,
}

impl Context {
    /// The node facts the downward API reads.
    pub fn facts(&self) -> NodeFacts {
        NodeFacts {
            node_name: self.node_name.clone(),
            host_ip: self.host_ip.clone(),
            pod_ip: self.pod_ip.clone(),
            cpu_milli: self.cpu_milli,
            memory: self.memory_capacity,
            ephemeral_storage: self.ephemeral_storage,
        }
    }
}

/// The pod's log directory under `root`: `<ns>_<name>_<uid>`, as upstream.
pub fn log_dir(root: &Path, pod: &Pod) -> std::path::PathBuf {
    let m = &pod.metadata;
    root.join(format!(
        "{}_{}_{}",
        m.namespace.as_deref().unwrap_or_default(),
        m.name.as_deref().unwrap_or_default(),
        m.uid.as_deref().unwrap_or_default()
    ))
}

fn host_network(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false)
}

fn namespace_options(pod: &Pod) -> api::NamespaceOption {
    let spec = pod.spec.clone().unwrap_or_default();
    let mode = |node: bool, otherwise: api::NamespaceMode| {
        if node {
            api::NamespaceMode::Node as i32
        } else {
            otherwise as i32
        }
    };
    api::NamespaceOption {
        network: mode(host_network(pod), api::NamespaceMode::Pod),
        pid: mode(
            spec.host_pid.unwrap_or(false),
            if spec.share_process_namespace.unwrap_or(false) {
                api::NamespaceMode::Pod
            } else {
                api::NamespaceMode::Container
            },
        ),
        ipc: mode(spec.host_ipc.unwrap_or(false), api::NamespaceMode::Pod),
        ..Default::default()
    }
}

/// The sandbox config of `pod`, attempt `attempt`.
pub fn sandbox_config(pod: &Pod, attempt: u32, log_root: &Path) -> api::PodSandboxConfig {
    let m = &pod.metadata;
    let spec = pod.spec.clone().unwrap_or_default();
    let mut lbl: HashMap<String, String> =
        m.labels.clone().unwrap_or_default().into_iter().collect();
    lbl.insert(labels::POD_NAME.into(), m.name.clone().unwrap_or_default());
    lbl.insert(
        labels::POD_NAMESPACE.into(),
        m.namespace.clone().unwrap_or_default(),
    );
    lbl.insert(labels::POD_UID.into(), m.uid.clone().unwrap_or_default());
    lbl.insert(labels::MANAGED_BY.into(), "true".into());
    let annotations = m
        .annotations
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let hostname = if host_network(pod) {
        String::new()
    } else {
        let h = spec
            .hostname
            .clone()
            .unwrap_or_else(|| m.name.clone().unwrap_or_default());
        h.chars()
            .take(63)
            .collect::<String>()
            .trim_end_matches(['-', '.'])
            .to_string()
    };
    let port_mappings = spec
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.host_port.unwrap_or(0) > 0)
        .map(|p| api::PortMapping {
            protocol: match p.protocol.as_deref() {
                Some("UDP") => api::Protocol::Udp as i32,
                Some("SCTP") => api::Protocol::Sctp as i32,
                _ => api::Protocol::Tcp as i32,
            },
            container_port: p.container_port,
            host_port: p.host_port.unwrap_or(0),
            host_ip: p.host_ip.clone().unwrap_or_default(),
        })
        .collect();
    api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: m.name.clone().unwrap_or_default(),
            uid: m.uid.clone().unwrap_or_default(),
            namespace: m.namespace.clone().unwrap_or_default(),
            attempt,
        }),
        hostname,
        log_directory: log_dir(log_root, pod).display().to_string(),
        dns_config: None,
        port_mappings,
        labels: lbl,
        annotations,
        linux: Some(api::LinuxPodSandboxConfig {
            security_context: Some(api::LinuxSandboxSecurityContext {
                namespace_options: Some(namespace_options(pod)),
                // As upstream: containerd refuses a privileged container in
                // a sandbox that is not privileged itself.
                privileged: has_privileged_container(pod),
                ..Default::default()
            }),
            ..Default::default()
        }),
        windows: None,
    }
}

/// Whether any container of the pod (init, app or ephemeral) is privileged.
fn has_privileged_container(pod: &Pod) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    let privileged = |sc: Option<&k8s_openapi::api::core::v1::SecurityContext>| {
        sc.and_then(|sc| sc.privileged) == Some(true)
    };
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .any(|c| privileged(c.security_context.as_ref()))
        || spec
            .ephemeral_containers
            .iter()
            .flatten()
            .any(|c| privileged(c.security_context.as_ref()))
}

/// The grace period the pod was given: the deletion's, else the spec's (30 s).
pub fn grace_period(pod: &Pod) -> i64 {
    pod.metadata
        .deletion_grace_period_seconds
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
        })
        .unwrap_or(30)
        .max(0)
}

/// The container's environment, in order: `envFrom`, then `env` (a later
/// variable of the same name replaces an earlier one). `value`s expand
/// `$(VAR)` references to variables defined before them (upstream's
/// rule); `fieldRef`, `resourceFieldRef` and the ConfigMap and Secret keys
/// in `resolved` are taken as they are.
pub fn envs(
    pod: &Pod,
    c: &Container,
    ctx: &Context,
    resolved: &super::env::Resolved,
) -> Vec<(String, String)> {
    let facts = ctx.facts();
    let mut out: Vec<(String, String)> = resolved.from.clone();
    for e in c.env.iter().flatten() {
        let value = match (&e.value, &e.value_from) {
            (Some(v), _) if !v.is_empty() => Some(super::env::expand(v, |k| {
                out.iter()
                    .rev()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.clone())
            })),
            (_, Some(from)) => {
                if let Some(f) = &from.field_ref {
                    downward::field_value(pod, &facts, &f.field_path)
                } else if let Some(r) = &from.resource_field_ref {
                    let name = r.container_name.as_deref().filter(|n| !n.is_empty());
                    let target = match name {
                        None => Some(c),
                        Some(n) => pod.spec.as_ref().and_then(|s| {
                            s.containers
                                .iter()
                                .chain(s.init_containers.iter().flatten())
                                .find(|x| x.name == n)
                        }),
                    };
                    let div = r.divisor.as_ref().map(|d| d.0.as_str());
                    match target.map(|t| downward::resource_value(t, &r.resource, div, &facts)) {
                        Some(Ok(v)) => Some(v),
                        other => {
                            tracing::warn!(var = %e.name, ?other, "resourceFieldRef not resolved");
                            None
                        }
                    }
                } else {
                    resolved.refs.get(&e.name).cloned()
                }
            }
            _ => Some(String::new()),
        };
        if let Some(v) = value {
            out.retain(|(k, _)| *k != e.name);
            out.push((e.name.clone(), v));
        }
    }
    out
}

/// `command` or `args` with `$(VAR)` expanded from the container's
/// environment (undefined references stay as written, `$$` is `$`).
fn expand_all(list: Option<&Vec<String>>, env: &[(String, String)]) -> Vec<String> {
    let map: HashMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    list.into_iter()
        .flatten()
        .map(|s| super::env::expand(s, |k| map.get(k).map(|v| v.to_string())))
        .collect()
}

/// cgroup settings from the container's requests and limits, as upstream:
/// shares from the cpu request (the limit when no request; 2 when neither),
/// a CFS quota from the cpu limit, the memory limit, and an oom_score_adj by
/// QoS class.
pub fn resources(pod: &Pod, c: &Container, memory_capacity: i64) -> api::LinuxContainerResources {
    let r = c.resources.as_ref();
    let get = |which: bool, res: &str| {
        r.and_then(|r| {
            if which {
                r.requests.as_ref()
            } else {
                r.limits.as_ref()
            }
        })
        .and_then(|m| m.get(res))
        .map(|q| q.0.clone())
    };
    let cpu_limit = get(false, "cpu").map(|q| quantity::cpu_milli(&q));
    let cpu_request = get(true, "cpu")
        .map(|q| quantity::cpu_milli(&q))
        .or(cpu_limit);
    let mem_limit = get(false, "memory").map(|q| quantity::units(&q));
    let mem_request = get(true, "memory")
        .map(|q| quantity::units(&q))
        .or(mem_limit);
    let shares = cpu_request.map(|m| (m * 1024 / 1000).max(2)).unwrap_or(2);
    let oom = match hollow::pod::qos_class(pod) {
        "Guaranteed" => -997,
        "BestEffort" => 1000,
        _ => {
            let req = mem_request.unwrap_or(0);
            let adj = if memory_capacity > 0 {
                1000 - (1000 * req as i128 / memory_capacity as i128) as i64
            } else {
                1000
            };
            // Upstream (pkg/kubelet/qos/policy.go): at least
            // 1000 + guaranteed's -997, and below best-effort's 1000.
            adj.clamp(3, 999)
        }
    };
    api::LinuxContainerResources {
        cpu_period: if cpu_limit.is_some() { 100_000 } else { 0 },
        cpu_quota: cpu_limit
            .map(|m| (m * 100_000 / 1000).max(1000))
            .unwrap_or(0),
        cpu_shares: shares,
        memory_limit_in_bytes: mem_limit.unwrap_or(0),
        oom_score_adj: oom,
        ..Default::default()
    }
}

/// The config of container `c`'s instance number `restart_count`.
pub fn container_config(
    pod: &Pod,
    c: &Container,
    restart_count: i32,
    ctx: &Context,
    resolved: &super::env::Resolved,
    mounts: Vec<api::Mount>,
) -> api::ContainerConfig {
    let env = envs(pod, c, ctx, resolved);
    let m = &pod.metadata;
    let mut lbl = HashMap::new();
    lbl.insert(labels::CONTAINER_NAME.to_string(), c.name.clone());
    lbl.insert(labels::POD_NAME.into(), m.name.clone().unwrap_or_default());
    lbl.insert(
        labels::POD_NAMESPACE.into(),
        m.namespace.clone().unwrap_or_default(),
    );
    lbl.insert(labels::POD_UID.into(), m.uid.clone().unwrap_or_default());
    let mut ann = HashMap::new();
    ann.insert(labels::RESTART_COUNT.to_string(), restart_count.to_string());
    ann.insert(
        labels::GRACE_PERIOD.to_string(),
        pod.spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(30)
            .to_string(),
    );
    ann.insert(
        labels::TERMINATION_MESSAGE_PATH.to_string(),
        c.termination_message_path
            .clone()
            .unwrap_or_else(|| "/dev/termination-log".into()),
    );
    let sc = c.security_context.clone().unwrap_or_default();
    let psc = pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.clone())
        .unwrap_or_default();
    let caps = sc.capabilities.clone().unwrap_or_default();
    api::ContainerConfig {
        metadata: Some(api::ContainerMetadata {
            name: c.name.clone(),
            attempt: restart_count.max(0) as u32,
        }),
        image: Some(api::ImageSpec {
            image: c.image.clone().unwrap_or_default(),
            ..Default::default()
        }),
        command: expand_all(c.command.as_ref(), &env),
        args: expand_all(c.args.as_ref(), &env),
        working_dir: c.working_dir.clone().unwrap_or_default(),
        envs: env
            .into_iter()
            .map(|(key, value)| api::KeyValue { key, value })
            .collect(),
        labels: lbl,
        annotations: ann,
        log_path: format!("{}/{restart_count}.log", c.name),
        mounts,
        stdin: c.stdin.unwrap_or(false),
        stdin_once: c.stdin_once.unwrap_or(false),
        tty: c.tty.unwrap_or(false),
        linux: Some(api::LinuxContainerConfig {
            resources: Some(resources(pod, c, ctx.memory_capacity)),
            security_context: Some(api::LinuxContainerSecurityContext {
                namespace_options: Some(namespace_options(pod)),
                privileged: sc.privileged.unwrap_or(false),
                readonly_rootfs: sc.read_only_root_filesystem.unwrap_or(false),
                run_as_user: sc
                    .run_as_user
                    .or(psc.run_as_user)
                    .map(|v| api::Int64Value { value: v }),
                run_as_group: sc
                    .run_as_group
                    .or(psc.run_as_group)
                    .map(|v| api::Int64Value { value: v }),
                capabilities: Some(api::Capability {
                    add_capabilities: caps.add.clone().unwrap_or_default(),
                    drop_capabilities: caps.drop.clone().unwrap_or_default(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn sandbox_has_upstream_labels_and_host_ports() {
        let p = pod(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "u1", "labels": {"app": "x"}},
            "spec": {"containers": [{"name": "c", "image": "i",
                "ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 81}]}]}
        }));
        let s = sandbox_config(&p, 2, Path::new("/logs"));
        assert_eq!(s.labels[labels::POD_UID], "u1");
        assert_eq!(s.labels["app"], "x");
        assert_eq!(s.metadata.unwrap().attempt, 2);
        assert_eq!(s.hostname, "web");
        assert_eq!(s.log_directory, "/logs/ns_web_u1");
        assert_eq!(s.port_mappings.len(), 1);
        assert_eq!(s.port_mappings[0].host_port, 8080);
        let ns = s
            .linux
            .unwrap()
            .security_context
            .unwrap()
            .namespace_options
            .unwrap();
        assert_eq!(ns.network, api::NamespaceMode::Pod as i32);
        assert!(!s_privileged(&p));
        let p = pod(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "u1"},
            "spec": {"initContainers": [{"name": "i", "image": "i",
                         "securityContext": {"privileged": true}}],
                     "containers": [{"name": "c", "image": "i"}]}
        }));
        assert!(
            s_privileged(&p),
            "a privileged init container needs a privileged sandbox"
        );
    }

    fn s_privileged(p: &Pod) -> bool {
        sandbox_config(p, 0, Path::new("/logs"))
            .linux
            .unwrap()
            .security_context
            .unwrap()
            .privileged
    }

    #[test]
    fn container_resources_and_env() {
        let p = pod(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "u1"},
            "spec": {"hostNetwork": true, "containers": [{"name": "c", "image": "i",
                "command": ["sh"], "args": ["-c", "x"], "workingDir": "/w",
                "env": [{"name": "A", "value": "1"},
                        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                        {"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}}}]}
        }));
        let ctx = Context {
            pod_ip: "10.1.0.5".into(),
            ..Default::default()
        };
        let c = container_config(
            &p,
            &p.spec.clone().unwrap().containers[0],
            3,
            &ctx,
            &Default::default(),
            Vec::new(),
        );
        assert_eq!(c.command, vec!["sh"]);
        assert_eq!(c.args, vec!["-c", "x"]);
        assert_eq!(c.log_path, "c/3.log");
        assert_eq!(c.annotations[labels::RESTART_COUNT], "3");
        let env: Vec<_> = c
            .envs
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(env, vec![("A", "1"), ("IP", "10.1.0.5"), ("N", "web")]);
        let l = c.linux.unwrap();
        let r = l.resources.unwrap();
        assert_eq!(
            (r.cpu_quota, r.cpu_period, r.cpu_shares),
            (50_000, 100_000, 512)
        );
        assert_eq!(r.memory_limit_in_bytes, 64 << 20);
        assert_eq!(
            r.oom_score_adj, -997,
            "limits only: requests default to them, Guaranteed"
        );
        let ns = l.security_context.unwrap().namespace_options.unwrap();
        assert_eq!(ns.network, api::NamespaceMode::Node as i32);
    }

    #[test]
    fn oom_score_adj_by_qos_class() {
        let adj = |res: serde_json::Value| {
            let p = pod(json!({
                "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
                "spec": {"containers": [{"name": "c", "image": "i", "resources": res}]}
            }));
            let c = p.spec.as_ref().unwrap().containers[0].clone();
            resources(&p, &c, 1000 << 20).oom_score_adj
        };
        assert_eq!(adj(json!({})), 1000);
        assert_eq!(adj(json!({"limits": {"memory": "64Mi", "cpu": "1"}})), -997);
        // Burstable: 1000 - 1000 * request / capacity, within 3..=999.
        assert_eq!(adj(json!({"requests": {"memory": "250Mi"}})), 750);
        assert_eq!(adj(json!({"requests": {"memory": "999Mi"}})), 3);
        assert_eq!(adj(json!({"requests": {"memory": "1"}})), 999);
    }

    #[test]
    fn env_expansion_and_resource_fields() {
        let p = pod(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "u1"},
            "spec": {"containers": [{"name": "c", "image": "i",
                "command": ["sh", "-c", "echo $(B) $$(B) $(NOPE)"], "args": ["$(FROM)"],
                "resources": {"limits": {"cpu": "1500m", "memory": "100Mi"}},
                "env": [{"name": "B", "value": "$(A)-b"},
                        {"name": "A", "value": "a"},
                        {"name": "C", "value": "$(A)$(FROM)"},
                        {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
                        {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1M"}}},
                        {"name": "REQ", "valueFrom": {"resourceFieldRef": {"containerName": "c", "resource": "requests.cpu", "divisor": "1m"}}}]}]}
        }));
        let resolved = super::super::env::Resolved {
            from: vec![("FROM".into(), "f".into())],
            ..Default::default()
        };
        let c = container_config(
            &p,
            &p.spec.clone().unwrap().containers[0],
            0,
            &Context::default(),
            &resolved,
            Vec::new(),
        );
        let env: Vec<_> = c
            .envs
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(
            env,
            vec![
                ("FROM", "f"),
                ("B", "$(A)-b"),
                ("A", "a"),
                ("C", "af"),
                ("CPU", "2"),
                ("MEM", "105"),
                ("REQ", "0"),
            ],
            "a reference to a later variable stays as written; limits round up"
        );
        assert_eq!(c.command, vec!["sh", "-c", "echo $(A)-b $(B) $(NOPE)"]);
        assert_eq!(c.args, vec!["f"]);
    }
}
