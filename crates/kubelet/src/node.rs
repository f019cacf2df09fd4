//! The kubelet's Node: registration with the host's capacity, addresses and
//! nodeInfo, the Lease in `kube-node-lease` renewed every 10 s, and the
//! status (conditions) posted when it changes and at least every 5 min.
//! The object formats are shared with the hollow nodes (`hollow::node`).

use std::path::Path;
use std::time::{Duration, Instant};

use hollow::node::NodeFacts;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{json, Value};

use crate::{api_err, Result};

/// The Lease's duration (upstream's 40 s).
pub const LEASE_DURATION_SECS: i32 = 40;
/// How often the Lease is renewed and the status computed.
pub const RENEW_EVERY: Duration = Duration::from_secs(10);
/// A status that did not change is posted again after this long.
pub const REPORT_EVERY: Duration = Duration::from_secs(300);

/// The host as the Node shows it.
#[derive(Clone, Debug)]
pub struct Host {
    /// Logical CPUs.
    pub cpus: usize,
    /// Memory in bytes.
    pub memory: u64,
    /// Size of the filesystem of the data directory, bytes.
    pub ephemeral_storage: u64,
    /// The InternalIP.
    pub ip: String,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Measure the host. `ip` is the address to advertise.
pub fn host(data_dir: &Path, ip: String) -> Host {
    let memory = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        * 1024;
    Host {
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        memory,
        ephemeral_storage: fs_size(data_dir),
        ip,
    }
}

fn fs_size(p: &Path) -> u64 {
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else {
        return 0;
    };
    // SAFETY: statvfs with a NUL-terminated path and a zeroed out-struct.
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut st) != 0 {
            return 0;
        }
        st.f_blocks as u64 * st.f_frsize as u64
    }
}

/// `/etc/os-release`'s PRETTY_NAME.
fn os_image() -> String {
    read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into())
}

/// The node's facts: capacity from the host, nodeInfo from the host and
/// the runtime's version (`containerd://1.6.20`).
pub fn facts(
    name: &str,
    host: &Host,
    runtime_version: &str,
    ready: Result<(), String>,
) -> NodeFacts {
    NodeFacts {
        capacity: json!({
            "cpu": host.cpus.to_string(),
            "memory": format!("{}Ki", host.memory / 1024),
            "pods": "110",
            "ephemeral-storage": format!("{}Ki", host.ephemeral_storage / 1024),
        }),
        addresses: vec![
            ("InternalIP".into(), host.ip.clone()),
            ("Hostname".into(), name.into()),
        ],
        node_info: json!({
            "machineID": read("/etc/machine-id"),
            "systemUUID": read("/sys/class/dmi/id/product_uuid"),
            "bootID": read("/proc/sys/kernel/random/boot_id"),
            "kernelVersion": read("/proc/sys/kernel/osrelease"),
            "osImage": os_image(),
            "containerRuntimeVersion": runtime_version,
            "kubeletVersion": "v1.37.0",
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": arch(),
        }),
        ready,
    }
}

/// The Node object as the kubelet registers it.
pub fn node_object(name: &str, status: Value) -> Value {
    hollow::node::registered_node(name, arch(), status)
}

/// The architecture as Kubernetes names it.
fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    }
}

/// Keep each condition's `lastTransitionTime` from `old` when its status
/// did not change.
pub fn keep_transitions(new: &mut Value, old: Option<&Node>) {
    let Some(old) = old
        .and_then(|n| n.status.as_ref())
        .and_then(|s| s.conditions.as_ref())
    else {
        return;
    };
    for c in new["conditions"].as_array_mut().into_iter().flatten() {
        if let Some(o) = old.iter().find(|o| c["type"] == o.type_.as_str()) {
            if c["status"] == o.status.as_str() {
                if let Some(t) = &o.last_transition_time {
                    c["lastTransitionTime"] = serde_json::to_value(t).unwrap_or(Value::Null);
                }
            }
        }
    }
}

/// The part of a status that decides whether it must be posted now.
fn signature(status: &Value) -> Value {
    let conds: Vec<Value> = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| json!([c["type"], c["status"], c["message"]]))
        .collect();
    json!([
        conds,
        status["capacity"],
        status["addresses"],
        status["nodeInfo"]
    ])
}

/// Whether every condition of `ours` has the same status and message in
/// `server` (a node status as the API server holds it).
fn conditions_hold(ours: &Value, server: &Value) -> bool {
    let theirs = server["conditions"].as_array();
    ours["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|c| {
            theirs.into_iter().flatten().any(|s| {
                s["type"] == c["type"] && s["status"] == c["status"] && s["message"] == c["message"]
            })
        })
}

/// Create the Node (or take the existing one) and post its status, then
/// create or renew its Lease. Returns the Node.
pub async fn register(client: &Client, name: &str, status: Value) -> Result<Node> {
    let nodes: Api<Node> = Api::all(client.clone());
    let body: Node = serde_json::from_value(node_object(name, status.clone()))
        .map_err(|e| crate::Error::Runtime(format!("node object: {e}")))?;
    let node = match nodes.create(&PostParams::default(), &body).await {
        Ok(n) => n,
        Err(kube::Error::Api(s)) if s.code == 409 => {
            nodes.get(name).await.map_err(api_err("reading the node"))?
        }
        Err(e) => return Err(api_err("registering the node")(e)),
    };
    let node = post_status(&nodes, &node, status).await?;
    renew_lease(
        client,
        name,
        node.metadata.uid.as_deref().unwrap_or_default(),
    )
    .await?;
    Ok(node)
}

/// Post `status` over `cur`'s, keeping the transition times that still hold.
async fn post_status(nodes: &Api<Node>, cur: &Node, mut status: Value) -> Result<Node> {
    keep_transitions(&mut status, Some(cur));
    let name = cur.metadata.name.as_deref().unwrap_or_default();
    nodes
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
        .map_err(api_err("posting the node status"))
}

/// Renew the node's Lease, creating it when absent.
pub async fn renew_lease(client: &Client, name: &str, node_uid: &str) -> Result<()> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let patch = json!({ "spec": { "holderIdentity": name, "renewTime": hollow::now(),
        "leaseDurationSeconds": LEASE_DURATION_SECS } });
    match leases
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => {
            let lease: Lease = serde_json::from_value(hollow::node::lease_object(
                name,
                node_uid,
                LEASE_DURATION_SECS,
                &hollow::now(),
            ))
            .map_err(|e| crate::Error::Runtime(format!("lease object: {e}")))?;
            leases
                .create(&PostParams::default(), &lease)
                .await
                .map(|_| ())
                .map_err(api_err("creating the node lease"))
        }
        Err(e) => Err(api_err("renewing the node lease")(e)),
    }
}

/// Tracks when the status was last posted and what it said.
#[derive(Default)]
pub struct StatusReporter {
    last: Option<(Value, Instant)>,
}

impl StatusReporter {
    /// Post `status` if it differs from the last one posted or the last
    /// post is older than [`REPORT_EVERY`].
    pub async fn report(
        &mut self,
        client: &Client,
        name: &str,
        status: Value,
    ) -> Result<Option<Node>> {
        let sig = signature(&status);
        let nodes: Api<Node> = Api::all(client.clone());
        let cur = nodes.get(name).await.map_err(api_err("reading the node"))?;
        if let Some((last, at)) = &self.last {
            // The node lifecycle controller rewrites the conditions of a
            // node it has not heard from (Ready: Unknown): like upstream's
            // kubelet, compare with the server's copy, not only with what
            // was posted last, or a node that comes back stays NotReady.
            let held = serde_json::to_value(&cur.status)
                .is_ok_and(|server| conditions_hold(&status, &server));
            if *last == sig && at.elapsed() < REPORT_EVERY && held {
                return Ok(None);
            }
        }
        let node = post_status(&nodes, &cur, status).await?;
        self.last = Some((sig, Instant::now()));
        Ok(Some(node))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_changed_on_the_server_are_noticed() {
        let ours = json!({"conditions": [
            {"type": "Ready", "status": "True", "message": "kubelet is posting ready status"},
            {"type": "MemoryPressure", "status": "False", "message": "ok"}]});
        let mut server = json!({"conditions": [
            {"type": "MemoryPressure", "status": "False", "message": "ok"},
            {"type": "NetworkUnavailable", "status": "False", "message": "set by others"},
            {"type": "Ready", "status": "True", "message": "kubelet is posting ready status"}]});
        assert!(conditions_hold(&ours, &server));
        server["conditions"][2]["status"] = json!("Unknown");
        assert!(!conditions_hold(&ours, &server));
        assert!(!conditions_hold(&ours, &json!({})));
    }

    #[test]
    fn node_status_parses_and_reports_readiness() {
        let h = Host {
            cpus: 2,
            memory: 4 << 30,
            ephemeral_storage: 10 << 30,
            ip: "10.0.0.9".into(),
        };
        let f = facts(
            "n1",
            &h,
            "containerd://1.6.20",
            Err("runtime network not ready".into()),
        );
        let st = hollow::node::status_from_facts(&f, "2026-01-01T00:00:00Z");
        let n: Node = serde_json::from_value(node_object("n1", st)).unwrap();
        let st = n.status.unwrap();
        assert_eq!(st.capacity.as_ref().unwrap()["memory"].0, "4194304Ki");
        assert_eq!(st.capacity.as_ref().unwrap()["pods"].0, "110");
        assert_eq!(st.allocatable.unwrap()["cpu"].0, "2");
        let ready = st
            .conditions
            .unwrap()
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_deref()),
            ("False", Some("KubeletNotReady"))
        );
        assert_eq!(st.addresses.unwrap()[0].address, "10.0.0.9");
        assert_eq!(
            st.node_info.unwrap().container_runtime_version,
            "containerd://1.6.20"
        );
    }

    #[test]
    fn transitions_are_kept_while_the_status_holds() {
        let h = Host {
            cpus: 1,
            memory: 1 << 30,
            ephemeral_storage: 1 << 30,
            ip: "10.0.0.9".into(),
        };
        let old =
            hollow::node::status_from_facts(&facts("n", &h, "c", Ok(())), "2026-01-01T00:00:00Z");
        let old: Node = serde_json::from_value(node_object("n", old)).unwrap();
        let mut new = hollow::node::status_from_facts(
            &facts("n", &h, "c", Err("x".into())),
            "2026-01-02T00:00:00Z",
        );
        keep_transitions(&mut new, Some(&old));
        let t = |v: &Value, ty: &str| {
            v["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["type"] == ty)
                .unwrap()["lastTransitionTime"]
                .clone()
        };
        assert_eq!(t(&new, "MemoryPressure"), "2026-01-01T00:00:00Z");
        assert_eq!(t(&new, "Ready"), "2026-01-02T00:00:00Z");
    }
}
