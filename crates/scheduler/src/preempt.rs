//! Preemption (upstream's DefaultPreemption): for a pod that fits nowhere,
//! find the node where evicting the fewest and least important
//! lower-priority pods makes it fit, disrupting as few pods protected by a
//! PodDisruptionBudget as possible.
//!
//! Only nodes that failed for reasons removing pods can fix (pod count,
//! CPU, memory, host ports, anti-affinity either way, topology spread) are
//! candidates; on each, every lower-priority pod is removed, then pods are
//! given back from the most important down as long as the pod still fits
//! ("reprieved"): first those whose eviction would exceed a budget's
//! `disruptionsAllowed`, then the others. The rest are the victims. When the
//! pod has affinity or spread constraints (or existing pods' anti-affinity
//! concerns it), "fits" also re-runs those filters with the removed pods
//! gone from the index, as upstream's RemovePod/AddPod on the cycle state.

use std::collections::BTreeMap;

use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::index::{Index, Placed};
use crate::plugins::{self, NodeInfo, Request};

/// What preemption needs of a PodDisruptionBudget.
#[derive(Clone, Debug)]
pub struct Budget {
    namespace: String,
    /// `None` selects nothing (policy/v1: a null selector).
    selector: Option<LabelSelector>,
    /// `status.disruptionsAllowed`.
    allowed: i32,
}

impl Budget {
    pub fn of(pdb: &PodDisruptionBudget) -> Budget {
        Budget {
            namespace: pdb.metadata.namespace.clone().unwrap_or_default(),
            selector: pdb.spec.as_ref().and_then(|s| s.selector.clone()),
            allowed: pdb
                .status
                .as_ref()
                .and_then(|s| s.disruptions_allowed)
                .unwrap_or(0),
        }
    }

    fn covers(&self, p: &Placed) -> bool {
        let m = &p.pod.metadata;
        if m.namespace.as_deref().unwrap_or_default() != self.namespace {
            return false;
        }
        let empty = BTreeMap::new();
        self.selector.as_ref().is_some_and(|sel| {
            crate::selector::selector_matches(sel, m.labels.as_ref().unwrap_or(&empty))
        })
    }
}

/// Split `pods` (most important first) into those whose eviction would
/// exceed a budget and those that would not, counting each budget down as
/// pods are taken, as upstream's `filterPodsWithPDBViolation`.
fn split_by_budget<'a>(
    pods: Vec<&'a Placed>,
    budgets: &[Budget],
) -> (Vec<&'a Placed>, Vec<&'a Placed>) {
    let mut left: Vec<i32> = budgets.iter().map(|b| b.allowed).collect();
    let (mut violating, mut fine) = (Vec::new(), Vec::new());
    for p in pods {
        let mut violates = false;
        for (b, n) in budgets.iter().zip(left.iter_mut()) {
            if b.covers(p) {
                *n -= 1;
                if *n < 0 {
                    violates = true;
                }
            }
        }
        if violates {
            violating.push(p);
        } else {
            fine.push(p);
        }
    }
    (violating, fine)
}

/// Reasons that removing pods from a node can resolve (upstream's
/// `Unschedulable`, as opposed to `UnschedulableAndUnresolvable`).
pub fn resolvable(reason: &str) -> bool {
    matches!(
        reason,
        "Too many pods"
            | "Insufficient cpu"
            | "Insufficient memory"
            | "node(s) didn't have free ports for the requested pod ports"
    ) || reason == crate::affinity::ANTI_AFFINITY_NOT_MATCH
        || reason == crate::affinity::EXISTING_ANTI_AFFINITY_NOT_MATCH
        || reason == crate::spread::CONSTRAINTS_NOT_MATCH
}

/// Re-runs the filters that look at other pods (affinity, spread) for a
/// node, against the index as it stands; `None` when the pod has none.
pub type Recheck<'a> = Option<&'a mut dyn FnMut(&mut Index, &NodeInfo) -> bool>;

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

/// The victims on one node (with whether each breaks a budget), if
/// evicting lower-priority pods can make room. The index is left as it was.
fn victims_on(
    priority: i32,
    req: &Request,
    n: &NodeInfo,
    idx: &mut Index,
    budgets: &[Budget],
    recheck: &mut Recheck<'_>,
) -> Option<Vec<(i32, String, bool)>> {
    let mut lower: Vec<Placed> = idx
        .on_node(n.name())
        .filter(|p| p.priority < priority)
        .cloned()
        .collect();
    if lower.is_empty() {
        return None;
    }
    let mut info = n.clone();
    for p in &lower {
        info.remove(&p.request);
    }
    let rechecking = recheck.is_some();
    if rechecking {
        for p in &lower {
            idx.remove(uid(p));
        }
    }
    let mut ok = |idx: &mut Index, info: &NodeInfo| {
        fits(req, info) && recheck.as_mut().is_none_or(|r| r(idx, info))
    };
    if !ok(idx, &info) {
        if rechecking {
            for p in lower {
                idx.add(uid(&p).to_string(), p);
            }
        }
        return None;
    }
    // Most important first, so they are the likeliest to be reprieved.
    lower.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| uid(a).cmp(uid(b))));
    let (violating, fine) = split_by_budget(lower.iter().collect(), budgets);
    let mut victims = Vec::new();
    let mut gone = Vec::new();
    for (group, breaks) in [(violating, true), (fine, false)] {
        for p in group {
            info.add(&p.request);
            if rechecking {
                idx.add(uid(p).to_string(), p.clone());
            }
            if !ok(idx, &info) {
                info.remove(&p.request);
                if rechecking {
                    gone.push(idx.remove(uid(p)));
                }
                victims.push((p.priority, uid(p).to_string(), breaks));
            }
        }
    }
    for p in gone.into_iter().flatten() {
        idx.add(uid(&p).to_string(), p);
    }
    Some(victims)
}

/// The best candidate among `nodes`: the fewest budget violations, then the
/// lowest highest-priority victim, then the lowest sum of priorities, then
/// the fewest victims, then the first node.
pub fn select<'a>(
    priority: i32,
    req: &Request,
    nodes: impl IntoIterator<Item = &'a NodeInfo>,
    idx: &mut Index,
    budgets: &[Budget],
    mut recheck: Recheck<'_>,
) -> Option<Candidate> {
    let mut best: Option<((usize, i32, i64, usize), Candidate)> = None;
    for n in nodes {
        let Some(v) = victims_on(priority, req, n, idx, budgets, &mut recheck) else {
            continue;
        };
        if v.is_empty() {
            continue;
        }
        let key = (
            v.iter().filter(|(_, _, breaks)| *breaks).count(),
            v.iter().map(|(p, _, _)| *p).max().unwrap_or(i32::MIN),
            v.iter().map(|(p, _, _)| *p as i64).sum::<i64>(),
            v.len(),
        );
        if best.as_ref().is_none_or(|(k, _)| key < *k) {
            best = Some((
                key,
                Candidate {
                    node: n.name().to_string(),
                    victims: v.into_iter().map(|(_, u, _)| u).collect(),
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
        serde_json::from_value(json!({"metadata": {"name": uid, "uid": uid, "namespace": "default",
            "labels": {"app": uid.trim_end_matches(char::is_numeric)}},
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
            select(100, &req, &nodes, &mut idx, &[], None),
            Some(Candidate {
                node: "n2".into(),
                victims: vec!["d".into()]
            })
        );
        // Nothing of lower priority than 1 exists anywhere.
        assert_eq!(select(1, &req, &nodes, &mut idx, &[], None), None);
        // Evicting everything below 6 on n1 (b) frees only 1 CPU of 2 needed.
        let big = request_of(&pod("y", "2"));
        assert_eq!(select(6, &big, &nodes, &mut idx, &[], None), None);
        // A pod needing a whole node evicts both of n1's lower pods.
        let c = select(20, &big, &nodes, &mut idx, &[], None).unwrap();
        assert_eq!(c.node, "n1");
        assert_eq!(c.victims.len(), 2);
    }

    fn budget(app: &str, allowed: i32) -> Budget {
        Budget::of(
            &serde_json::from_value(json!({"metadata": {"name": app, "namespace": "default"},
                "spec": {"selector": {"matchLabels": {"app": app}}},
                "status": {"disruptionsAllowed": allowed, "currentHealthy": 0, "desiredHealthy": 0,
                           "expectedPods": 0}}))
            .unwrap(),
        )
    }

    #[test]
    fn budgets_steer_preemption_away_from_protected_pods() {
        let mut nodes = vec![node("n1"), node("n2")];
        let mut idx = Index::default();
        // Equal pods on both nodes; n1's are protected by a budget that
        // allows no disruption, n2's by none.
        place(&mut idx, &mut nodes, 0, "db1", "2", 1);
        place(&mut idx, &mut nodes, 1, "web1", "2", 5);
        let req = request_of(&pod("x", "1"));
        // Without budgets, n1's victim has the lower priority.
        assert_eq!(
            select(100, &req, &nodes, &mut idx, &[], None).unwrap().node,
            "n1"
        );
        // With one, preemption breaks no budget if it can: n2.
        let c = select(100, &req, &nodes, &mut idx, &[budget("db", 0)], None).unwrap();
        assert_eq!(c.node, "n2");
        // A budget with a disruption to spare protects nothing.
        assert_eq!(
            select(100, &req, &nodes, &mut idx, &[budget("db", 1)], None)
                .unwrap()
                .node,
            "n1"
        );
        // When only protected pods can make room, they are still preempted.
        let only = [nodes[0].clone()];
        let c = select(100, &req, &only, &mut idx, &[budget("db", 0)], None).unwrap();
        assert_eq!(c.victims, vec!["db1".to_string()]);
    }

    #[test]
    fn protected_pods_are_reprieved_first() {
        let mut nodes = vec![node("n1")];
        let mut idx = Index::default();
        // Two 1-CPU pods of equal priority on a full 2-CPU node; room for a
        // 1-CPU pod takes one of them: the unprotected one.
        place(&mut idx, &mut nodes, 0, "db1", "1", 1);
        place(&mut idx, &mut nodes, 0, "web1", "1", 1);
        let req = request_of(&pod("x", "1"));
        let c = select(100, &req, &nodes, &mut idx, &[budget("db", 0)], None).unwrap();
        assert_eq!(c.victims, vec!["web1".to_string()]);
        let c = select(100, &req, &nodes, &mut idx, &[budget("web", 0)], None).unwrap();
        assert_eq!(c.victims, vec!["db1".to_string()]);
    }

    #[test]
    fn anti_affinity_is_resolved_by_evicting_the_pods_it_rejects() {
        use std::collections::{BTreeMap, HashMap};
        let mk = |name: &str| {
            let n: k8s_openapi::api::core::v1::Node = serde_json::from_value(json!({
                "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
                "status": {"allocatable": {"cpu": "4", "memory": "4Gi", "pods": "10"}}}))
            .unwrap();
            (name.to_string(), NodeInfo::new(Arc::new(n)))
        };
        let mut nodes: BTreeMap<String, NodeInfo> = [mk("n1"), mk("n2")].into_iter().collect();
        let mut idx = Index::default();
        let mut put = |idx: &mut Index, uid: &str, node: &str, app: &str, prio: i32| {
            let p: Pod = serde_json::from_value(json!({"metadata": {"name": uid, "uid": uid,
                "namespace": "default", "labels": {"app": app}},
                "spec": {"containers": [{"name": "c", "image": "x",
                    "resources": {"requests": {"cpu": "100m"}}}]}}))
            .unwrap();
            let request = request_of(&p);
            nodes.get_mut(node).unwrap().add(&request);
            idx.add(
                uid.into(),
                Placed {
                    node: node.into(),
                    pod: Arc::new(p),
                    request,
                    priority: prio,
                },
            );
        };
        // A low-priority cache pod on n1, an important one and a low one on n2.
        put(&mut idx, "cache-low", "n1", "cache", 1);
        put(&mut idx, "cache-high", "n2", "cache", 1000);
        put(&mut idx, "other", "n2", "other", 1);
        let incoming: Pod = serde_json::from_value(json!({"metadata": {"name": "x", "uid": "x",
            "namespace": "default"}, "spec": {"containers": [], "affinity": {"podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "kubernetes.io/hostname",
                    "labelSelector": {"matchLabels": {"app": "cache"}}}]}}}}))
        .unwrap();
        let req = request_of(&incoming);
        let nsl = HashMap::new();
        let mut rerun = |idx: &mut Index, n: &NodeInfo| {
            crate::affinity::pre_filter(&incoming, idx, &nodes, &nsl)
                .is_none_or(|st| crate::affinity::filter(&st, n).is_ok())
        };
        // Both nodes fail on anti-affinity; only n1's blocker is evictable,
        // and only it goes (not n2's unrelated low pod).
        let c = select(100, &req, nodes.values(), &mut idx, &[], Some(&mut rerun)).unwrap();
        assert_eq!(
            c,
            Candidate {
                node: "n1".into(),
                victims: vec!["cache-low".into()]
            }
        );
        // The index is as it was.
        assert!(idx.contains("cache-low") && idx.contains("other") && idx.contains("cache-high"));
        // Without the re-check nothing would be evicted: resources fit already.
        assert_eq!(select(100, &req, nodes.values(), &mut idx, &[], None), None);
    }

    #[test]
    fn resolvable_reasons_are_upstreams_unschedulable_ones() {
        assert!(resolvable("Insufficient cpu"));
        assert!(!resolvable(
            "node(s) didn't match Pod's node affinity/selector"
        ));
        assert!(resolvable(crate::affinity::ANTI_AFFINITY_NOT_MATCH));
        assert!(!resolvable(crate::affinity::AFFINITY_NOT_MATCH));
    }
}
