//! PodTopologySpread: `whenUnsatisfiable: DoNotSchedule` constraints as a
//! filter, `ScheduleAnyway` ones as a score, and upstream's system default
//! constraints (hostname maxSkew 3, zone maxSkew 5, both ScheduleAnyway) for
//! pods a ReplicaSet, ReplicationController or StatefulSet controls when
//! they state none.
//!
//! Matching pods per node come from the index's incremental counts; the
//! per-pod work is one pass over the nodes per constraint.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use k8s_openapi::api::core::v1::{Pod, TopologySpreadConstraint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

use crate::index::{controller_uid, Index, Matcher, NsScope, Term};
use crate::plugins::{self, NodeInfo, Reason};

/// Upstream's reasons.
pub const CONSTRAINTS_NOT_MATCH: &str = "node(s) didn't match pod topology spread constraints";
/// See `CONSTRAINTS_NOT_MATCH`.
pub const MISSING_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

const HOSTNAME: &str = "kubernetes.io/hostname";
const ZONE: &str = "topology.kubernetes.io/zone";

/// One constraint, ready to evaluate.
#[derive(Clone, Debug)]
pub struct Constraint {
    max_skew: i64,
    key: String,
    hard: bool,
    matcher: Matcher,
    min_domains: i64,
    honor_affinity: bool,
    honor_taints: bool,
    self_match: bool,
}

/// A pod's constraints, and whether they are the system defaults.
pub struct Constraints {
    hard: Vec<Constraint>,
    soft: Vec<Constraint>,
    system_default: bool,
}

impl Constraints {
    /// The pod's constraints (or the system defaults).
    pub fn of(pod: &Pod) -> Constraints {
        let spec = pod.spec.as_ref();
        let listed = spec
            .and_then(|s| s.topology_spread_constraints.as_deref())
            .unwrap_or_default();
        let mut out = Constraints {
            hard: Vec::new(),
            soft: Vec::new(),
            system_default: false,
        };
        if listed.is_empty() {
            if let Some(owner) = defaulted_owner(pod) {
                out.system_default = true;
                for (key, skew) in [(HOSTNAME, 3), (ZONE, 5)] {
                    out.soft.push(Constraint {
                        max_skew: skew,
                        key: key.into(),
                        hard: false,
                        matcher: Matcher::Live(Box::new(Matcher::Owner(owner.to_string()))),
                        min_domains: 1,
                        honor_affinity: true,
                        honor_taints: false,
                        self_match: true,
                    });
                }
            }
            return out;
        }
        for c in listed {
            let c = constraint(pod, c);
            if c.hard {
                out.hard.push(c);
            } else {
                out.soft.push(c);
            }
        }
        out
    }

    /// Whether there is nothing to filter.
    pub fn no_filter(&self) -> bool {
        self.hard.is_empty()
    }

    /// Whether there is nothing to score.
    pub fn no_score(&self) -> bool {
        self.soft.is_empty()
    }
}

/// The controller whose pods the system defaults spread, if they apply.
fn defaulted_owner(pod: &Pod) -> Option<&str> {
    let uid = controller_uid(pod)?;
    let kind_ok = pod.metadata.owner_references.iter().flatten().any(|o| {
        o.uid == uid
            && matches!(
                o.kind.as_str(),
                "ReplicaSet" | "ReplicationController" | "StatefulSet"
            )
    });
    kind_ok.then_some(uid)
}

fn constraint(pod: &Pod, c: &TopologySpreadConstraint) -> Constraint {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    // matchLabelKeys: the pod's own values of those keys join the selector.
    let selector = c.label_selector.clone().map(|mut s| {
        let labels = pod.metadata.labels.as_ref();
        for k in c.match_label_keys.iter().flatten() {
            if let Some(v) = labels.and_then(|l| l.get(k)) {
                s.match_expressions
                    .get_or_insert_with(Vec::new)
                    .push(LabelSelectorRequirement {
                        key: k.clone(),
                        operator: "In".into(),
                        values: Some(vec![v.clone()]),
                    });
            }
        }
        s
    });
    let matcher = Matcher::Live(Box::new(Matcher::All(vec![Term {
        ns: NsScope::Set(BTreeSet::from([ns])),
        selector,
    }])));
    Constraint {
        max_skew: c.max_skew.max(1) as i64,
        key: c.topology_key.clone(),
        hard: c.when_unsatisfiable != "ScheduleAnyway",
        self_match: matcher.matches(pod),
        matcher,
        min_domains: c.min_domains.unwrap_or(1).max(1) as i64,
        honor_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
        honor_taints: c.node_taints_policy.as_deref() == Some("Honor"),
    }
}

fn labels_of(n: &NodeInfo) -> &BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    n.node.metadata.labels.as_ref().unwrap_or(&EMPTY)
}

/// Whether the node's pods count for the constraint (nodeAffinityPolicy,
/// nodeTaintsPolicy).
fn included(c: &Constraint, pod: &Pod, n: &NodeInfo) -> bool {
    (!c.honor_affinity || plugins::node_affinity(pod, n).is_ok())
        && (!c.honor_taints || plugins::taint_toleration(pod, n).is_ok())
}

/// A hard constraint with its matching pods per topology value.
#[derive(Debug)]
struct Counted {
    c: Constraint,
    per_value: HashMap<String, i64>,
    min: i64,
}

/// What the filter needs, computed once per pod.
#[derive(Debug)]
pub struct FilterState {
    hard: Vec<Counted>,
}

/// Per-pod work of the filter; `None` when there is nothing to check.
pub fn pre_filter(
    pod: &Pod,
    cs: &Constraints,
    idx: &mut Index,
    nodes: &BTreeMap<String, NodeInfo>,
) -> Option<FilterState> {
    if cs.hard.is_empty() {
        return None;
    }
    let mut hard = Vec::new();
    for c in &cs.hard {
        let counts = idx.counts(&c.matcher);
        let mut per_value: HashMap<String, i64> = HashMap::new();
        for n in nodes.values() {
            let labels = labels_of(n);
            // Only nodes with every constraint's key form domains.
            if !cs.hard.iter().all(|x| labels.contains_key(&x.key)) || !included(c, pod, n) {
                continue;
            }
            *per_value.entry(labels[&c.key].clone()).or_default() +=
                counts.get(n.name()).copied().unwrap_or(0);
        }
        let mut min = per_value.values().copied().min().unwrap_or(0);
        if (per_value.len() as i64) < c.min_domains {
            min = 0;
        }
        hard.push(Counted {
            c: c.clone(),
            per_value,
            min,
        });
    }
    Some(FilterState { hard })
}

/// The filter for one node.
pub fn filter(st: &FilterState, n: &NodeInfo) -> Result<(), Reason> {
    let labels = labels_of(n);
    if st.hard.iter().any(|h| !labels.contains_key(&h.c.key)) {
        return Err(MISSING_LABEL.into());
    }
    for h in &st.hard {
        let count = h.per_value.get(&labels[&h.c.key]).copied().unwrap_or(0);
        let skew = count + i64::from(h.c.self_match) - h.min;
        if skew > h.c.max_skew {
            return Err(CONSTRAINTS_NOT_MATCH.into());
        }
    }
    Ok(())
}

/// Scores 0–100 for the feasible nodes, in their order: fewer matching
/// pods in a node's domains score higher (upstream's weighting by the log
/// of the number of domains, then its normalization).
pub fn score(
    pod: &Pod,
    cs: &Constraints,
    idx: &mut Index,
    nodes: &BTreeMap<String, NodeInfo>,
    feasible: &[&NodeInfo],
) -> Vec<i64> {
    // Explicit constraints ignore nodes that lack a key; the defaults do not.
    let require_all = !cs.system_default;
    let has_all = |n: &NodeInfo| {
        let l = labels_of(n);
        cs.soft.iter().all(|c| l.contains_key(&c.key))
    };
    let mut tables: Vec<(HashMap<String, i64>, f64)> = Vec::new();
    for c in &cs.soft {
        let mut per_value: HashMap<String, i64> = HashMap::new();
        for n in feasible {
            if require_all && !has_all(n) {
                continue;
            }
            if let Some(v) = labels_of(n).get(&c.key) {
                per_value.insert(v.clone(), 0);
            }
        }
        let counts = idx.counts(&c.matcher);
        for n in nodes.values() {
            let Some(slot) = labels_of(n).get(&c.key).and_then(|v| per_value.get_mut(v)) else {
                continue;
            };
            if included(c, pod, n) {
                *slot += counts.get(n.name()).copied().unwrap_or(0);
            }
        }
        let weight = ((per_value.len() + 2) as f64).ln();
        tables.push((per_value, weight));
    }
    let raw: Vec<Option<i64>> = feasible
        .iter()
        .map(|n| {
            if require_all && !has_all(n) {
                return None;
            }
            let labels = labels_of(n);
            let mut s = 0.0;
            for (c, (per_value, weight)) in cs.soft.iter().zip(&tables) {
                if let Some(v) = labels.get(&c.key) {
                    let count = per_value.get(v).copied().unwrap_or(0);
                    s += count as f64 * weight + (c.max_skew - 1) as f64;
                }
            }
            Some(s.round() as i64)
        })
        .collect();
    let present = raw.iter().flatten();
    let min = present.clone().copied().min().unwrap_or(0);
    let max = present.copied().max().unwrap_or(0);
    raw.into_iter()
        .map(|s| match s {
            None => 0,
            Some(_) if max == 0 => 100,
            Some(s) => 100 * (max + min - s) / max,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Placed;
    use crate::plugins::Request;
    use serde_json::json;
    use std::sync::Arc;

    fn nodes(list: &[(&str, Option<&str>)]) -> BTreeMap<String, NodeInfo> {
        list.iter()
            .map(|(name, zone)| {
                let mut labels = json!({"kubernetes.io/hostname": name});
                if let Some(z) = zone {
                    labels["zone"] = json!(z);
                }
                let n =
                    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}}))
                        .unwrap();
                (name.to_string(), NodeInfo::new(Arc::new(n)))
            })
            .collect()
    }

    fn pod(spec: serde_json::Value, owner: Option<&str>) -> Pod {
        let mut meta = json!({"name": "p", "namespace": "default", "labels": {"app": "web"}});
        if let Some(o) = owner {
            meta["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": "rs", "uid": o, "controller": true}]);
        }
        let mut s = json!({"containers": []});
        s.as_object_mut()
            .unwrap()
            .extend(spec.as_object().unwrap().clone());
        serde_json::from_value(json!({"metadata": meta, "spec": s})).unwrap()
    }

    fn place(idx: &mut Index, uid: &str, node: &str, p: &Pod) {
        idx.add(
            uid.into(),
            Placed {
                node: node.into(),
                pod: Arc::new(p.clone()),
                request: Request::default(),
                priority: 0,
            },
        );
    }

    fn zone_spread(skew: i32, when: &str, extra: serde_json::Value) -> serde_json::Value {
        let mut c = json!({"maxSkew": skew, "topologyKey": "zone", "whenUnsatisfiable": when,
            "labelSelector": {"matchLabels": {"app": "web"}}});
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({"topologySpreadConstraints": [c]})
    }

    fn run(p: &Pod, idx: &mut Index, ns: &BTreeMap<String, NodeInfo>) -> Vec<Result<(), Reason>> {
        let cs = Constraints::of(p);
        let st = pre_filter(p, &cs, idx, ns);
        ns.values()
            .map(|n| st.as_ref().map_or(Ok(()), |s| filter(s, n)))
            .collect()
    }

    #[test]
    fn max_skew_across_zones() {
        let ns = nodes(&[("n1", Some("a")), ("n2", Some("b")), ("n3", None)]);
        let mut idx = Index::default();
        let p = pod(zone_spread(1, "DoNotSchedule", json!({})), None);
        assert_eq!(
            run(&p, &mut idx, &ns),
            vec![Ok(()), Ok(()), Err(MISSING_LABEL.into())]
        );
        place(&mut idx, "1", "n1", &p);
        assert_eq!(
            run(&p, &mut idx, &ns),
            vec![
                Err(CONSTRAINTS_NOT_MATCH.into()),
                Ok(()),
                Err(MISSING_LABEL.into())
            ]
        );
        place(&mut idx, "2", "n2", &p);
        assert_eq!(run(&p, &mut idx, &ns)[..2], [Ok(()), Ok(())]);
        // Pods of another namespace or selector do not count.
        let mut other = p.clone();
        other.metadata.namespace = Some("x".into());
        place(&mut idx, "3", "n1", &other);
        assert_eq!(run(&p, &mut idx, &ns)[..2], [Ok(()), Ok(())]);
    }

    #[test]
    fn min_domains_counts_missing_domains_as_empty() {
        let ns = nodes(&[("n1", Some("a")), ("n2", Some("b"))]);
        let mut idx = Index::default();
        let p = pod(
            zone_spread(1, "DoNotSchedule", json!({"minDomains": 3})),
            None,
        );
        place(&mut idx, "1", "n1", &p);
        place(&mut idx, "2", "n2", &p);
        // Global minimum is taken as 0 while fewer than 3 domains exist.
        assert_eq!(
            run(&p, &mut idx, &ns),
            vec![
                Err(CONSTRAINTS_NOT_MATCH.into()),
                Err(CONSTRAINTS_NOT_MATCH.into())
            ]
        );
    }

    #[test]
    fn node_affinity_policy_limits_the_domains() {
        let ns = nodes(&[("n1", Some("a")), ("n2", Some("b"))]);
        let mut idx = Index::default();
        let mut p = pod(zone_spread(1, "DoNotSchedule", json!({})), None);
        place(&mut idx, "1", "n1", &p);
        // Only zone a is eligible: its count is the minimum, so skew stays 1.
        p.spec.as_mut().unwrap().node_selector =
            Some(BTreeMap::from([("zone".into(), "a".into())]));
        assert_eq!(run(&p, &mut idx, &ns)[0], Ok(()));
    }

    #[test]
    fn schedule_anyway_and_system_defaults_score_emptier_domains_higher() {
        let ns = nodes(&[("n1", Some("a")), ("n2", Some("b"))]);
        let mut idx = Index::default();
        let p = pod(zone_spread(1, "ScheduleAnyway", json!({})), None);
        assert!(run(&p, &mut idx, &ns).iter().all(Result::is_ok));
        place(&mut idx, "1", "n1", &p);
        let cs = Constraints::of(&p);
        let feasible: Vec<&NodeInfo> = ns.values().collect();
        let s = score(&p, &cs, &mut idx, &ns, &feasible);
        assert!(s[1] > s[0], "{s:?}");
        // A ReplicaSet's pod without constraints spreads over hostnames.
        let owned = pod(json!({}), Some("rs1"));
        let cs = Constraints::of(&owned);
        assert!(cs.no_filter() && !cs.no_score());
        place(&mut idx, "2", "n2", &owned);
        place(&mut idx, "3", "n2", &owned);
        let s = score(&owned, &cs, &mut idx, &ns, &feasible);
        assert!(s[0] > s[1], "{s:?}");
        // A bare pod gets no defaults.
        assert!(Constraints::of(&pod(json!({}), None)).no_score());
    }
}
