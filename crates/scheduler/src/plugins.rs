//! Filter and score plugins, as pure functions over a pod's needs and a
//! node's state. Each filter returns the upstream reason string when the node
//! does not fit, so the scheduler can build upstream's "0/3 nodes are
//! available: ..." message.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    Node, NodeSelectorRequirement, NodeSelectorTerm, Pod, Taint, Toleration,
};

use crate::quantity::{cpu_milli, units};

/// Requests used for scoring when a container states none (upstream's
/// `DefaultMilliCPURequest` and `DefaultMemoryRequest`).
const DEFAULT_SCORE_CPU: i64 = 100;
const DEFAULT_SCORE_MEMORY: i64 = 200 << 20;

/// A host port a pod claims: protocol, host IP (empty: all), port.
pub type HostPort = (String, String, i32);

/// What a pod asks of a node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// Requested CPU in millicores.
    pub cpu: i64,
    /// Requested memory in bytes.
    pub memory: i64,
    /// Requests with scoring defaults for containers that state none.
    pub score_cpu: i64,
    /// See `score_cpu`.
    pub score_memory: i64,
    /// Host ports.
    pub ports: Vec<HostPort>,
}

/// A pod's effective requests: the sum over its containers, at least the
/// largest init container's, plus its overhead.
pub fn request_of(pod: &Pod) -> Request {
    let Some(spec) = pod.spec.as_ref() else {
        return Request::default();
    };
    let get = |c: &k8s_openapi::api::core::v1::Container, r: &str| {
        c.resources
            .as_ref()
            .and_then(|x| x.requests.as_ref())
            .and_then(|m| m.get(r))
            .map(|q| q.0.clone())
    };
    let mut req = Request::default();
    for c in &spec.containers {
        let cpu = get(c, "cpu").map(|q| cpu_milli(&q));
        let mem = get(c, "memory").map(|q| units(&q));
        req.cpu += cpu.unwrap_or(0);
        req.memory += mem.unwrap_or(0);
        req.score_cpu += cpu.unwrap_or(DEFAULT_SCORE_CPU);
        req.score_memory += mem.unwrap_or(DEFAULT_SCORE_MEMORY);
        for p in c.ports.iter().flatten() {
            if let Some(hp) = p.host_port.filter(|&hp| hp > 0) {
                req.ports.push((
                    p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                    p.host_ip.clone().unwrap_or_default(),
                    hp,
                ));
            }
        }
    }
    for c in spec.init_containers.iter().flatten() {
        req.cpu = req
            .cpu
            .max(get(c, "cpu").map(|q| cpu_milli(&q)).unwrap_or(0));
        req.memory = req
            .memory
            .max(get(c, "memory").map(|q| units(&q)).unwrap_or(0));
    }
    if let Some(o) = spec.overhead.as_ref() {
        let cpu = o.get("cpu").map(|q| cpu_milli(&q.0)).unwrap_or(0);
        let mem = o.get("memory").map(|q| units(&q.0)).unwrap_or(0);
        req.cpu += cpu;
        req.memory += mem;
        req.score_cpu += cpu;
        req.score_memory += mem;
    }
    req
}

/// A node and what is placed on it.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    /// The node.
    pub node: Arc<Node>,
    /// Allocatable CPU (millicores), memory (bytes) and pods.
    pub alloc_cpu: i64,
    /// See `alloc_cpu`.
    pub alloc_memory: i64,
    /// See `alloc_cpu`.
    pub alloc_pods: i64,
    /// Sum of the requests placed here.
    pub used: Request,
    /// Pods placed here.
    pub pods: i64,
    /// Host ports in use.
    pub ports: HashSet<HostPort>,
}

impl NodeInfo {
    /// A node with nothing placed on it yet.
    pub fn new(node: Arc<Node>) -> NodeInfo {
        let alloc = node.status.as_ref().and_then(|s| s.allocatable.as_ref());
        let get = |r: &str| alloc.and_then(|a| a.get(r)).map(|q| q.0.clone());
        NodeInfo {
            alloc_cpu: get("cpu").map(|q| cpu_milli(&q)).unwrap_or(0),
            alloc_memory: get("memory").map(|q| units(&q)).unwrap_or(0),
            alloc_pods: get("pods").map(|q| units(&q)).unwrap_or(0),
            node,
            used: Request::default(),
            pods: 0,
            ports: HashSet::new(),
        }
    }

    /// Count a pod placed here.
    pub fn add(&mut self, r: &Request) {
        self.used.cpu += r.cpu;
        self.used.memory += r.memory;
        self.used.score_cpu += r.score_cpu;
        self.used.score_memory += r.score_memory;
        self.pods += 1;
        self.ports.extend(r.ports.iter().cloned());
    }

    /// Forget a pod placed here.
    pub fn remove(&mut self, r: &Request) {
        self.used.cpu -= r.cpu;
        self.used.memory -= r.memory;
        self.used.score_cpu -= r.score_cpu;
        self.used.score_memory -= r.score_memory;
        self.pods -= 1;
        for p in &r.ports {
            self.ports.remove(p);
        }
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        self.node.metadata.name.as_deref().unwrap_or_default()
    }

    fn labels(&self) -> Option<&BTreeMap<String, String>> {
        self.node.metadata.labels.as_ref()
    }
}

/// Why a node was filtered out: upstream's reason strings.
pub type Reason = String;

/// Run every filter; the first failing one's reasons.
pub fn filter(pod: &Pod, req: &Request, n: &NodeInfo) -> Result<(), Vec<Reason>> {
    node_unschedulable(pod, n)?;
    node_affinity(pod, n)?;
    taint_toleration(pod, n)?;
    node_ports(req, n)?;
    resources_fit(req, n)
}

fn tolerations(pod: &Pod) -> &[Toleration] {
    pod.spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or_default()
}

/// NodeUnschedulable.
fn node_unschedulable(pod: &Pod, n: &NodeInfo) -> Result<(), Vec<Reason>> {
    let cordoned = n
        .node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    let taint = Taint {
        key: "node.kubernetes.io/unschedulable".into(),
        effect: "NoSchedule".into(),
        ..Taint::default()
    };
    if cordoned && !tolerations(pod).iter().any(|t| tolerates(t, &taint)) {
        return Err(vec!["node(s) were unschedulable".into()]);
    }
    Ok(())
}

/// NodeAffinity: `nodeSelector` and required node affinity.
pub(crate) fn node_affinity(pod: &Pod, n: &NodeInfo) -> Result<(), Vec<Reason>> {
    let spec = pod.spec.as_ref();
    let empty = BTreeMap::new();
    let labels = n.labels().unwrap_or(&empty);
    let selector_ok = spec
        .and_then(|s| s.node_selector.as_ref())
        .is_none_or(|sel| sel.iter().all(|(k, v)| labels.get(k) == Some(v)));
    let required = spec
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    let affinity_ok = required.is_none_or(|r| {
        r.node_selector_terms
            .iter()
            .any(|t| term_matches(t, labels, n.name()))
    });
    if selector_ok && affinity_ok {
        Ok(())
    } else {
        Err(vec![
            "node(s) didn't match Pod's node affinity/selector".into()
        ])
    }
}

/// A node selector term: every expression and field requirement holds. An
/// empty term matches nothing, as upstream.
pub fn term_matches(t: &NodeSelectorTerm, labels: &BTreeMap<String, String>, name: &str) -> bool {
    let exprs = t.match_expressions.as_deref().unwrap_or_default();
    let fields = t.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs
        .iter()
        .all(|e| requirement_matches(e, labels.get(&e.key).map(String::as_str)))
        && fields.iter().all(|f| {
            let v = (f.key == "metadata.name").then_some(name);
            requirement_matches(f, v)
        })
}

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    let num = |s: &str| s.parse::<i64>().ok();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" => {
            matches!((value.and_then(num), values.first().and_then(|x| num(x))), (Some(a), Some(b)) if a > b)
        }
        "Lt" => {
            matches!((value.and_then(num), values.first().and_then(|x| num(x))), (Some(a), Some(b)) if a < b)
        }
        _ => false,
    }
}

/// Whether toleration `t` tolerates `taint`.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    let effect_ok = t
        .effect
        .as_deref()
        .is_none_or(|e| e.is_empty() || e == taint.effect);
    let key = t.key.as_deref().unwrap_or_default();
    let op = t.operator.as_deref().unwrap_or("Equal");
    if key.is_empty() {
        return op == "Exists" && effect_ok;
    }
    if key != taint.key || !effect_ok {
        return false;
    }
    match op {
        "Exists" => true,
        "Equal" => {
            t.value.as_deref().unwrap_or_default() == taint.value.as_deref().unwrap_or_default()
        }
        _ => false,
    }
}

/// TaintToleration: NoSchedule and NoExecute taints must be tolerated.
pub(crate) fn taint_toleration(pod: &Pod, n: &NodeInfo) -> Result<(), Vec<Reason>> {
    let taints = n
        .node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or_default();
    for taint in taints {
        if taint.effect != "NoSchedule" && taint.effect != "NoExecute" {
            continue;
        }
        if !tolerations(pod).iter().any(|t| tolerates(t, taint)) {
            return Err(vec![format!(
                "node(s) had untolerated taint {{{}: {}}}",
                taint.key,
                taint.value.as_deref().unwrap_or_default()
            )]);
        }
    }
    Ok(())
}

/// NodePorts: a host port conflicts when protocol and port match and either
/// side binds all addresses or both bind the same one.
pub(crate) fn node_ports(req: &Request, n: &NodeInfo) -> Result<(), Vec<Reason>> {
    let conflict = req.ports.iter().any(|(proto, ip, port)| {
        n.ports.iter().any(|(p2, ip2, port2)| {
            p2 == proto
                && port2 == port
                && (ip.is_empty()
                    || ip2.is_empty()
                    || ip == "0.0.0.0"
                    || ip2 == "0.0.0.0"
                    || ip == ip2)
        })
    });
    if conflict {
        Err(vec![
            "node(s) didn't have free ports for the requested pod ports".into(),
        ])
    } else {
        Ok(())
    }
}

/// NodeResourcesFit: every shortfall is a reason of its own.
pub(crate) fn resources_fit(req: &Request, n: &NodeInfo) -> Result<(), Vec<Reason>> {
    let mut reasons = Vec::new();
    if n.pods + 1 > n.alloc_pods {
        reasons.push("Too many pods".to_string());
    }
    if req.cpu > 0 && n.used.cpu + req.cpu > n.alloc_cpu {
        reasons.push("Insufficient cpu".into());
    }
    if req.memory > 0 && n.used.memory + req.memory > n.alloc_memory {
        reasons.push("Insufficient memory".into());
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons)
    }
}

/// LeastAllocated plus BalancedAllocation, each 0–100, over CPU and memory.
pub fn score(req: &Request, n: &NodeInfo) -> i64 {
    let frac = |used: i64, add: i64, alloc: i64| {
        if alloc <= 0 {
            1.0
        } else {
            ((used + add) as f64 / alloc as f64).min(1.0)
        }
    };
    let cpu = frac(n.used.score_cpu, req.score_cpu, n.alloc_cpu);
    let mem = frac(n.used.score_memory, req.score_memory, n.alloc_memory);
    let least = ((1.0 - cpu) + (1.0 - mem)) / 2.0 * 100.0;
    // The standard deviation of two fractions is half their difference.
    let balanced = (1.0 - (cpu - mem).abs() / 2.0) * 100.0;
    (least + balanced) as i64
}

/// Upstream's summary of why no node fits: "0/3 nodes are available: 1
/// Insufficient cpu, 2 node(s) had untolerated taint {k: v}." Reasons are
/// counted per node and listed in sorted order.
pub fn unschedulable_message(total: usize, reasons: &BTreeMap<String, usize>) -> String {
    let parts: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
    if parts.is_empty() {
        format!("0/{total} nodes are available.")
    } else {
        format!("0/{total} nodes are available: {}.", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(v: serde_json::Value) -> NodeInfo {
        let mut base = json!({
            "metadata": {"name": "n1", "labels": {"zone": "a", "disk": "ssd"}},
            "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "3"}}
        });
        merge(&mut base, v);
        NodeInfo::new(Arc::new(serde_json::from_value(base).unwrap()))
    }

    fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
        match (a, b) {
            (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
            (a, b) => *a = b,
        }
    }

    fn pod(spec: serde_json::Value) -> Pod {
        let mut base = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}});
        merge(&mut base["spec"], spec);
        serde_json::from_value(base).unwrap()
    }

    fn check(p: &Pod, n: &NodeInfo) -> Result<(), Vec<Reason>> {
        filter(p, &request_of(p), n)
    }

    #[test]
    fn requests_sum_containers_and_take_the_largest_init() {
        let p = pod(json!({
            "containers": [
                {"name": "a", "image": "x", "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}, "ports": [{"containerPort": 80, "hostPort": 8080}]},
                {"name": "b", "image": "x", "resources": {"requests": {"cpu": "250m"}}}
            ],
            "initContainers": [{"name": "i", "image": "x", "resources": {"requests": {"cpu": "1"}}}],
            "overhead": {"cpu": "10m"}
        }));
        let r = request_of(&p);
        assert_eq!(r.cpu, 1010);
        assert_eq!(r.memory, 64 << 20);
        assert_eq!(r.score_memory, (64 << 20) + (200 << 20));
        assert_eq!(r.ports, vec![("TCP".into(), "".into(), 8080)]);
    }

    #[test]
    fn filters_give_upstream_reasons() {
        let n = node(json!({}));
        assert!(check(&pod(json!({})), &n).is_ok());
        let big = pod(
            json!({"containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": "3", "memory": "8Gi"}}}]}),
        );
        assert_eq!(
            check(&big, &n),
            Err(vec![
                "Insufficient cpu".into(),
                "Insufficient memory".into()
            ])
        );
        let mut full = n.clone();
        for _ in 0..3 {
            full.add(&Request::default());
        }
        assert_eq!(
            check(&pod(json!({})), &full),
            Err(vec!["Too many pods".into()])
        );
        let cordoned = node(json!({"spec": {"unschedulable": true}}));
        assert_eq!(
            check(&pod(json!({})), &cordoned),
            Err(vec!["node(s) were unschedulable".into()])
        );
        let tainted = node(
            json!({"spec": {"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}}),
        );
        assert_eq!(
            check(&pod(json!({})), &tainted),
            Err(vec!["node(s) had untolerated taint {dedicated: gpu}".into()])
        );
        let tolerant = pod(
            json!({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu"}]}),
        );
        assert!(check(&tolerant, &tainted).is_ok());
        let prefer =
            node(json!({"spec": {"taints": [{"key": "k", "effect": "PreferNoSchedule"}]}}));
        assert!(check(&pod(json!({})), &prefer).is_ok());
    }

    #[test]
    fn selectors_and_affinity() {
        let n = node(json!({}));
        assert!(check(&pod(json!({"nodeSelector": {"zone": "a"}})), &n).is_ok());
        let miss = Err(vec![
            "node(s) didn't match Pod's node affinity/selector".to_string()
        ]);
        assert_eq!(
            check(&pod(json!({"nodeSelector": {"zone": "b"}})), &n),
            miss
        );
        let aff = |exprs: serde_json::Value| {
            pod(
                json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                {"nodeSelectorTerms": [{"matchExpressions": exprs}]}}}}),
            )
        };
        assert!(check(
            &aff(json!([{"key": "zone", "operator": "In", "values": ["a", "b"]}])),
            &n
        )
        .is_ok());
        assert!(check(
            &aff(json!([{"key": "gpu", "operator": "DoesNotExist"}])),
            &n
        )
        .is_ok());
        assert_eq!(
            check(
                &aff(json!([{"key": "zone", "operator": "NotIn", "values": ["a"]}])),
                &n
            ),
            miss
        );
        assert_eq!(
            check(
                &aff(json!([{"key": "disk", "operator": "Gt", "values": ["1"]}])),
                &n
            ),
            miss
        );
        let by_name = pod(
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}}}),
        );
        assert!(check(&by_name, &n).is_ok());
    }

    #[test]
    fn host_ports_conflict() {
        let mut n = node(json!({}));
        let p = pod(
            json!({"containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 80, "hostPort": 80}]}]}),
        );
        n.add(&request_of(&p));
        assert_eq!(
            check(&p, &n),
            Err(vec![
                "node(s) didn't have free ports for the requested pod ports".into()
            ])
        );
        let udp = pod(
            json!({"containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 80, "hostPort": 80, "protocol": "UDP"}]}]}),
        );
        assert!(check(&udp, &n).is_ok());
    }

    #[test]
    fn scores_prefer_emptier_and_balanced_nodes() {
        let empty = node(json!({}));
        let mut busy = node(json!({}));
        busy.add(&request_of(&pod(json!({"containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": "1", "memory": "2Gi"}}}]}))));
        let p = pod(json!({}));
        assert!(score(&request_of(&p), &empty) > score(&request_of(&p), &busy));
    }

    #[test]
    fn the_summary_message_counts_reasons() {
        let mut r = BTreeMap::new();
        r.insert("node(s) had untolerated taint {k: v}".to_string(), 2);
        r.insert("Insufficient cpu".to_string(), 1);
        assert_eq!(
            unschedulable_message(3, &r),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {k: v}."
        );
    }
}
