//! A hollow node's API objects: its Node (capacity, conditions, addresses,
//! nodeInfo) and its Lease in `kube-node-lease`, and the fake addresses it
//! hands out.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use serde_json::{json, Value};

/// Label on every hollow node: the `--prefix` of the process that runs it,
/// so several processes can share a cluster.
pub const PREFIX_LABEL: &str = "hollow.wharf.dev/prefix";
/// Label: `"true"` makes the node stop renewing its Lease and stop handling
/// pods, as if its kubelet hung (set it with `kubectl label node`).
pub const UNRESPONSIVE_LABEL: &str = "hollow.wharf.dev/unresponsive";

/// Label: `"true"` makes the node report `Ready=False` (reason
/// `KubeletNotReady`) while it keeps renewing its Lease, as a kubelet whose
/// container runtime is down does.
pub const NOT_READY_LABEL: &str = "hollow.wharf.dev/not-ready";

/// Turn the Ready condition of a [`node_status`] into `False`.
pub fn set_not_ready(status: &mut Value) {
    if let Some(conds) = status["conditions"].as_array_mut() {
        for c in conds.iter_mut().filter(|c| c["type"] == "Ready") {
            c["status"] = json!("False");
            c["reason"] = json!("KubeletNotReady");
            c["message"] = json!("container runtime is down (hollow node told to be not ready)");
        }
    }
}

/// Sizes a hollow node reports.
#[derive(Clone, Debug)]
pub struct Capacity {
    /// CPU, e.g. `4`.
    pub cpu: String,
    /// Memory, e.g. `16Gi`.
    pub memory: String,
    /// Pod slots, e.g. `110`.
    pub pods: u32,
}

/// The InternalIP of node `index`: 172.16.0.0/12, one per node.
pub fn node_ip(index: usize) -> Ipv4Addr {
    let i = index as u32 + 1;
    Ipv4Addr::from(u32::from(Ipv4Addr::new(172, 16, 0, 0)) + i)
}

/// The node's object as its kubelet registers it.
pub fn node_object(name: &str, prefix: &str, index: usize, cap: &Capacity) -> Value {
    let mut node = registered_node(name, "amd64", node_status(name, index, cap, &crate::now()));
    let labels = &mut node["metadata"]["labels"];
    labels["node.kubernetes.io/instance-type"] = json!("hollow");
    labels["type"] = json!("hollow");
    labels[PREFIX_LABEL] = json!(prefix);
    node
}

/// A Node as a kubelet (hollow or real) registers it: the well-known
/// hostname, os and arch labels, and `status`.
pub fn registered_node(name: &str, arch: &str, status: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": arch,
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": arch,
            },
            "annotations": { "node.alpha.kubernetes.io/ttl": "0" },
        },
        "spec": {},
        "status": status,
    })
}

/// The node's status, with heartbeats at `now`.
pub fn node_status(name: &str, index: usize, cap: &Capacity, now: &str) -> Value {
    let facts = NodeFacts {
        capacity: json!({
            "cpu": cap.cpu, "memory": cap.memory, "pods": cap.pods.to_string(),
            "ephemeral-storage": "100Gi",
        }),
        addresses: vec![
            ("InternalIP".into(), node_ip(index).to_string()),
            ("Hostname".into(), name.to_string()),
        ],
        node_info: json!({
            "machineID": format!("{:032x}", index + 1),
            "systemUUID": format!("00000000-0000-0000-0000-{:012x}", index + 1),
            "bootID": format!("hollow-{index}"),
            "kernelVersion": "6.1.0-hollow",
            "osImage": "wharf hollow node",
            "containerRuntimeVersion": "hollow://0.1.0",
            "kubeletVersion": "v1.37.0",
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": "amd64",
        }),
        ready: Ok(()),
        pressure: Pressure::default(),
    };
    status_from_facts(&facts, now)
}

/// What a kubelet (hollow or real) reports about its node.
#[derive(Clone, Debug)]
pub struct NodeFacts {
    /// `status.capacity` (also reported as allocatable: nothing is reserved).
    pub capacity: Value,
    /// `(type, address)` pairs: InternalIP, Hostname.
    pub addresses: Vec<(String, String)>,
    /// `status.nodeInfo`.
    pub node_info: Value,
    /// Ready, or the reason message for `Ready=False` (`KubeletNotReady`).
    pub ready: Result<(), String>,
    /// The resources the node is short of.
    pub pressure: Pressure,
}

/// The resources a node is short of, as its eviction signals show them:
/// each sets its condition (MemoryPressure, DiskPressure, PIDPressure) True.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pressure {
    pub memory: bool,
    pub disk: bool,
    pub pid: bool,
}

/// A node's status from its facts, with heartbeats at `now`, in the
/// upstream kubelet's condition order, reasons and messages.
pub fn status_from_facts(f: &NodeFacts, now: &str) -> Value {
    let cond = |t: &str, status: &str, reason: &str, message: &str| {
        json!({
            "type": t, "status": status, "reason": reason, "message": message,
            "lastHeartbeatTime": now, "lastTransitionTime": now,
        })
    };
    let ready = match &f.ready {
        Ok(()) => cond(
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
        ),
        Err(m) => cond("Ready", "False", "KubeletNotReady", m),
    };
    let addresses: Vec<Value> = f
        .addresses
        .iter()
        .map(|(t, a)| json!({ "type": t, "address": a }))
        .collect();
    json!({
        "capacity": f.capacity,
        "allocatable": f.capacity,
        "conditions": [
            if f.pressure.memory {
                cond("MemoryPressure", "True", "KubeletHasInsufficientMemory", "kubelet has insufficient memory available")
            } else {
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available")
            },
            if f.pressure.disk {
                cond("DiskPressure", "True", "KubeletHasDiskPressure", "kubelet has disk pressure")
            } else {
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure")
            },
            if f.pressure.pid {
                cond("PIDPressure", "True", "KubeletHasInsufficientPID", "kubelet has insufficient PID available")
            } else {
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available")
            },
            ready,
        ],
        "addresses": addresses,
        "daemonEndpoints": { "kubeletEndpoint": { "Port": 10250 } },
        "nodeInfo": f.node_info,
    })
}

/// The node's Lease, owned by the Node so it goes with it.
pub fn lease_object(name: &str, node_uid: &str, duration_seconds: i32, now: &str) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": name,
            "namespace": "kube-node-lease",
            "ownerReferences": [{
                "apiVersion": "v1", "kind": "Node", "name": name, "uid": node_uid,
            }],
        },
        "spec": {
            "holderIdentity": name,
            "leaseDurationSeconds": duration_seconds,
            "renewTime": now,
        },
    })
}

/// Pod addresses of one node: from its `podCIDR` once IPAM has set one
/// (a /24 or larger is assumed), else from 100.64.0.0/10, a /24 per node.
#[derive(Debug, Default)]
pub struct PodIps {
    base: Option<u32>,
    used: BTreeSet<u8>,
}

impl PodIps {
    /// Use this `podCIDR` (`a.b.c.d/len`) for addresses handed out from now on.
    pub fn set_cidr(&mut self, cidr: &str) {
        if let Some(ip) = cidr
            .split('/')
            .next()
            .and_then(|a| a.parse::<Ipv4Addr>().ok())
        {
            self.base = Some(u32::from(ip) & !0xff);
        }
    }

    /// A free address for a pod on node `index`.
    pub fn take(&mut self, index: usize) -> Option<Ipv4Addr> {
        let base = self.base.unwrap_or_else(|| {
            let i = index as u32;
            u32::from(Ipv4Addr::new(100, 64, 0, 0)) + ((i & 0x3fff) << 8)
        });
        let host = (2..=254u8).find(|h| !self.used.contains(h))?;
        self.used.insert(host);
        Some(Ipv4Addr::from(base | host as u32))
    }

    /// Mark `ip` as used (a pod that already has it from an earlier run).
    pub fn claim(&mut self, ip: Ipv4Addr) {
        self.used.insert(u32::from(ip) as u8);
    }

    /// Return an address.
    pub fn give_back(&mut self, ip: Ipv4Addr) {
        self.used.remove(&(u32::from(ip) as u8));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_objects_parse_as_nodes() {
        let cap = Capacity {
            cpu: "4".into(),
            memory: "16Gi".into(),
            pods: 110,
        };
        let v = node_object("hollow-7", "hollow", 7, &cap);
        let n: k8s_openapi::api::core::v1::Node = serde_json::from_value(v).unwrap();
        let st = n.status.unwrap();
        assert_eq!(st.capacity.unwrap()["pods"].0, "110");
        assert_eq!(st.addresses.unwrap()[0].address, "172.16.0.8");
        assert_eq!(st.conditions.unwrap().len(), 4);
        let l: k8s_openapi::api::coordination::v1::Lease =
            serde_json::from_value(lease_object("hollow-7", "uid", 40, &crate::now())).unwrap();
        assert_eq!(l.spec.unwrap().lease_duration_seconds, Some(40));
    }

    #[test]
    fn pod_ips_are_unique_and_reused() {
        let mut ips = PodIps::default();
        let a = ips.take(3).unwrap();
        let b = ips.take(3).unwrap();
        assert_ne!(a, b);
        assert_eq!(a, Ipv4Addr::new(100, 64, 3, 2));
        ips.give_back(a);
        assert_eq!(ips.take(3).unwrap(), a);
        ips.set_cidr("10.42.5.0/24");
        assert_eq!(ips.take(3).unwrap(), Ipv4Addr::new(10, 42, 5, 4));
        let mut full = PodIps::default();
        assert_eq!((0..300).filter_map(|_| full.take(0)).count(), 253);
    }
}
