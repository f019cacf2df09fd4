//! Preemption (upstream's DefaultPreemption, without PodDisruptionBudgets):
//! for a pod that fits nowhere, find the node where evicting the fewest
//! and least important lower-priority pods makes it fit.
//!
//! Only nodes that failed for reasons removing pods can fix (pod count,
//! CPU, memory, host ports) are candidates; on each, every lower-priority
//! pod is removed, then pods are given back from the most important down
//! as long as the pod still fits ("reprieved"). The rest are the victims.

use crate::index::{Index, Placed};
use crate::plugins::{self, NodeInfo, Request};

/// Reasons that removing pods from a node can resolve.
pub fn resolvable(reason: &str) -> bool {
    matches!(
        reason,
        "Too many pods"
            | "Insufficient cpu"
            | "Insufficient memory"
            | "node(s) didn't have free ports for the requested pod ports"
    )
}

/// A node and the pods to evict there.
#[derive(Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The node.
    pub node: String,
    /// The victims' uids.
    pub victims: Vec<String>,
}

fn fits(req: &Request, n: &NodeInfo) -> bool {
    plugins::node_ports(req, n).is_ok() && plugins::resources_fit(req, n).is_ok()
}

fn uid(p: &Placed) -> &str {
    p.pod.metadata.uid.as_deref().unwrap_or_default()
}

/// The victims on one node, if evicting lower-priority pods can make room.
fn victims_on(
    priority: i32,
    req: &Request,
    n: &NodeInfo,
    idx: &Index,
) -> Option<Vec<(i32, String)>> {
    let mut lower: Vec<&Placed> = idx
        .on_node(n.name())
        .filter(|p| p.priority < priority)
        .collect();
    if lower.is_empty() {
        return None;
    }
    let mut info = n.clone();
    for p in &lower {
        info.remove(&p.request);
    }
    if !fits(req, &info) {
        return None;
    }
    // Most important first, so they are the likeliest to be reprieved.
    lower.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| uid(a).cmp(uid(b))));
    let mut victims = Vec::new();
    for p in lower {
        info.add(&p.request);
        if !fits(req, &info) {
            info.remove(&p.request);
            victims.push((p.priority, uid(p).to_string()));
        }
    }
    Some(victims)
}

/// The best candidate among `nodes`: the lowest highest-priority victim,
/// then the lowest sum of priorities, then the fewest victims, then the
/// first node.
pub fn select<'a>(
    priority: i32,
    req: &Request,
    nodes: impl IntoIterator<Item = &'a NodeInfo>,
    idx: &Index,
) -> Option<Candidate> {
    let mut best: Option<((i32, i64, usize), Candidate)> = None;
    for n in nodes {
        let Some(v) = victims_on(priority, req, n, idx) else {
            continue;
        };
        if v.is_empty() {
            continue;
        }
        let key = (
            v.iter().map(|(p, _)| *p).max().unwrap_or(i32::MIN),
            v.iter().map(|(p, _)| *p as i64).sum::<i64>(),
            v.len(),
        );
        if best.as_ref().is_none_or(|(k, _)| key < *k) {
            best = Some((
                key,
                Candidate {
                    node: n.name().to_string(),
                    victims: v.into_iter().map(|(_, u)| u).collect(),
                },
            ));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::request_of;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;
    use std::sync::Arc;

    fn node(name: &str) -> NodeInfo {
        NodeInfo::new(Arc::new(
            serde_json::from_value(json!({"metadata": {"name": name},
                "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "10"}}}))
            .unwrap(),
        ))
    }

    fn pod(uid: &str, cpu: &str) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": uid, "uid": uid},
            "spec": {"containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": cpu}}}]}}))
        .unwrap()
    }

    fn place(idx: &mut Index, nodes: &mut [NodeInfo], i: usize, uid: &str, cpu: &str, prio: i32) {
        let p = pod(uid, cpu);
        let request = request_of(&p);
        nodes[i].add(&request);
        idx.add(
            uid.into(),
            Placed {
                node: nodes[i].name().into(),
                pod: Arc::new(p),
                request,
                priority: prio,
            },
        );
    }

    #[test]
    fn evicts_the_least_important_pods_that_make_room() {
        let mut nodes = vec![node("n1"), node("n2")];
        let mut idx = Index::default();
        place(&mut idx, &mut nodes, 0, "a", "1", 10);
        place(&mut idx, &mut nodes, 0, "b", "1", 5);
        place(&mut idx, &mut nodes, 1, "c", "1", 50);
        place(&mut idx, &mut nodes, 1, "d", "1", 1);
        let req = request_of(&pod("x", "1"));
        // n1's highest victim would be 5, n2's 1: n2, evicting only d.
        assert_eq!(
            select(100, &req, &nodes, &idx),
            Some(Candidate {
                node: "n2".into(),
                victims: vec!["d".into()]
            })
        );
        // Nothing of lower priority than 1 exists anywhere.
        assert_eq!(select(1, &req, &nodes, &idx), None);
        // Evicting everything below 6 on n1 (b) frees only 1 CPU of 2 needed.
        let big = request_of(&pod("y", "2"));
        assert_eq!(select(6, &big, &nodes, &idx), None);
        // A pod needing a whole node evicts both of n1's lower pods.
        let c = select(20, &big, &nodes, &idx).unwrap();
        assert_eq!(c.node, "n1");
        assert_eq!(c.victims.len(), 2);
    }

    #[test]
    fn only_capacity_reasons_are_resolvable() {
        assert!(resolvable("Insufficient cpu"));
        assert!(!resolvable(
            "node(s) didn't match Pod's node affinity/selector"
        ));
    }
}
