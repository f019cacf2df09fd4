//! InterPodAffinity: required pod affinity and anti-affinity as a filter,
//! existing pods' required anti-affinity against the incoming pod (the
//! symmetric check), and preferred terms as a score, as upstream's plugin.
//!
//! `pre_filter` does the per-pod work once: it turns the counts the index
//! keeps (pods per node per matcher) into counts per topology pair (label
//! key, value), so each node's check is a few map lookups. A pod without
//! pod (anti-)affinity, in a cluster where no placed pod has required
//! anti-affinity, costs nothing.

use std::collections::{BTreeMap, HashMap, HashSet};

use k8s_openapi::api::core::v1::{Pod, PodAffinityTerm, WeightedPodAffinityTerm};

use crate::index::{Index, Matcher, NsScope, Placed, Term};
use crate::plugins::{NodeInfo, Reason};

/// Upstream's reasons.
pub const AFFINITY_NOT_MATCH: &str = "node(s) didn't match pod affinity rules";
/// See `AFFINITY_NOT_MATCH`.
pub const ANTI_AFFINITY_NOT_MATCH: &str = "node(s) didn't match pod anti-affinity rules";
/// See `AFFINITY_NOT_MATCH`.
pub const EXISTING_ANTI_AFFINITY_NOT_MATCH: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";

/// Weight of an existing pod's required affinity term that the incoming
/// pod satisfies (upstream's `hardPodAffinityWeight` default).
const HARD_POD_AFFINITY_WEIGHT: i64 = 1;

type Pair = (String, String);
type Namespaces = HashMap<String, BTreeMap<String, String>>;

fn labels_of(n: &NodeInfo) -> &BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    n.node.metadata.labels.as_ref().unwrap_or(&EMPTY)
}

fn ns_of(p: &Pod) -> &str {
    p.metadata.namespace.as_deref().unwrap_or_default()
}

/// The four term lists of a pod: required affinity, required
/// anti-affinity, preferred affinity, preferred anti-affinity.
struct Terms<'a> {
    req_aff: &'a [PodAffinityTerm],
    req_anti: &'a [PodAffinityTerm],
    pref_aff: &'a [WeightedPodAffinityTerm],
    pref_anti: &'a [WeightedPodAffinityTerm],
}

fn terms(p: &Pod) -> Terms<'_> {
    let a = p.spec.as_ref().and_then(|s| s.affinity.as_ref());
    let aff = a.and_then(|a| a.pod_affinity.as_ref());
    let anti = a.and_then(|a| a.pod_anti_affinity.as_ref());
    Terms {
        req_aff: aff
            .and_then(|x| {
                x.required_during_scheduling_ignored_during_execution
                    .as_deref()
            })
            .unwrap_or_default(),
        req_anti: anti
            .and_then(|x| {
                x.required_during_scheduling_ignored_during_execution
                    .as_deref()
            })
            .unwrap_or_default(),
        pref_aff: aff
            .and_then(|x| {
                x.preferred_during_scheduling_ignored_during_execution
                    .as_deref()
            })
            .unwrap_or_default(),
        pref_anti: anti
            .and_then(|x| {
                x.preferred_during_scheduling_ignored_during_execution
                    .as_deref()
            })
            .unwrap_or_default(),
    }
}

fn term(t: &PodAffinityTerm, own_ns: &str, nsl: &Namespaces) -> Term {
    Term {
        ns: NsScope::of_term(t, own_ns, nsl),
        selector: t.label_selector.clone(),
    }
}

/// Add `weight × count` per topology pair of `key`, over the nodes the
/// counts name.
fn by_topology(
    counts: &HashMap<String, i64>,
    key: &str,
    weight: i64,
    nodes: &BTreeMap<String, NodeInfo>,
    out: &mut HashMap<Pair, i64>,
) {
    for (node, c) in counts {
        if let Some(v) = nodes.get(node).and_then(|n| labels_of(n).get(key)) {
            *out.entry((key.to_string(), v.clone())).or_default() += weight * c;
        }
    }
}

/// What the filter needs, computed once per pod.
#[derive(Debug, Default)]
pub struct FilterState {
    /// Pairs where an existing pod's required anti-affinity forbids the pod.
    existing_anti: HashSet<Pair>,
    /// Topology keys of the pod's required affinity terms.
    aff_keys: Vec<String>,
    /// Pods matching all required affinity terms, per pair.
    aff_counts: HashMap<Pair, i64>,
    /// Whether the pod matches all its own affinity terms.
    self_match: bool,
    /// Topology keys of the pod's required anti-affinity terms.
    anti_keys: Vec<String>,
    /// Pods matching an anti-affinity term, per pair of that term's key.
    anti_counts: HashMap<Pair, i64>,
}

/// Per-pod work of the filter; `None` when there is nothing to check.
pub fn pre_filter(
    pod: &Pod,
    idx: &mut Index,
    nodes: &BTreeMap<String, NodeInfo>,
    nsl: &Namespaces,
) -> Option<FilterState> {
    let t = terms(pod);
    let mut st = FilterState::default();
    for p in idx.with_required_anti() {
        let Some(labels) = nodes.get(&p.node).map(labels_of) else {
            continue;
        };
        for at in terms(&p.pod).req_anti {
            let Some(v) = labels.get(&at.topology_key) else {
                continue;
            };
            if term(at, ns_of(&p.pod), nsl).matches(pod) {
                st.existing_anti
                    .insert((at.topology_key.clone(), v.clone()));
            }
        }
    }
    if t.req_aff.is_empty() && t.req_anti.is_empty() && st.existing_anti.is_empty() {
        return None;
    }
    let ns = ns_of(pod);
    if !t.req_aff.is_empty() {
        let m = Matcher::All(t.req_aff.iter().map(|x| term(x, ns, nsl)).collect());
        st.self_match = m.matches(pod);
        let counts = idx.counts(&m);
        for x in t.req_aff {
            st.aff_keys.push(x.topology_key.clone());
            by_topology(counts, &x.topology_key, 1, nodes, &mut st.aff_counts);
        }
    }
    for x in t.req_anti {
        let m = Matcher::All(vec![term(x, ns, nsl)]);
        st.anti_keys.push(x.topology_key.clone());
        by_topology(
            idx.counts(&m),
            &x.topology_key,
            1,
            nodes,
            &mut st.anti_counts,
        );
    }
    Some(st)
}

/// The filter for one node.
pub fn filter(st: &FilterState, n: &NodeInfo) -> Result<(), Reason> {
    let labels = labels_of(n);
    if st
        .existing_anti
        .iter()
        .any(|(k, v)| labels.get(k) == Some(v))
    {
        return Err(EXISTING_ANTI_AFFINITY_NOT_MATCH.into());
    }
    for k in &st.anti_keys {
        if let Some(v) = labels.get(k) {
            if st
                .anti_counts
                .get(&(k.clone(), v.clone()))
                .copied()
                .unwrap_or(0)
                > 0
            {
                return Err(ANTI_AFFINITY_NOT_MATCH.into());
            }
        }
    }
    if !st.aff_keys.is_empty() {
        let mut pods_exist = true;
        for k in &st.aff_keys {
            match labels.get(k) {
                // A node without the key can never satisfy the term.
                None => return Err(AFFINITY_NOT_MATCH.into()),
                Some(v) => {
                    if st
                        .aff_counts
                        .get(&(k.clone(), v.clone()))
                        .copied()
                        .unwrap_or(0)
                        <= 0
                    {
                        pods_exist = false;
                    }
                }
            }
        }
        // The first pod of a group that selects itself may go anywhere the
        // keys exist, as long as no matching pod exists anywhere yet.
        let first_of_group = st.aff_counts.is_empty() && st.self_match;
        if !pods_exist && !first_of_group {
            return Err(AFFINITY_NOT_MATCH.into());
        }
    }
    Ok(())
}

/// Preferred terms as scores per topology pair, computed once per pod;
/// `None` when no term can score.
pub fn pre_score(
    pod: &Pod,
    idx: &mut Index,
    nodes: &BTreeMap<String, NodeInfo>,
    nsl: &Namespaces,
) -> Option<HashMap<Pair, i64>> {
    let t = terms(pod);
    if t.pref_aff.is_empty() && t.pref_anti.is_empty() && !idx.any_affinity() {
        return None;
    }
    let ns = ns_of(pod);
    let mut out: HashMap<Pair, i64> = HashMap::new();
    for (list, sign) in [(t.pref_aff, 1), (t.pref_anti, -1)] {
        for w in list {
            let x = &w.pod_affinity_term;
            let m = Matcher::All(vec![term(x, ns, nsl)]);
            by_topology(
                idx.counts(&m),
                &x.topology_key,
                sign * w.weight as i64,
                nodes,
                &mut out,
            );
        }
    }
    // The symmetric part: existing pods' terms that select this pod.
    let existing: Vec<&Placed> = idx.with_affinity().collect();
    for p in existing {
        let Some(labels) = nodes.get(&p.node).map(labels_of) else {
            continue;
        };
        let et = terms(&p.pod);
        let pns = ns_of(&p.pod);
        let mut add = |x: &PodAffinityTerm, w: i64| {
            if let Some(v) = labels.get(&x.topology_key) {
                if term(x, pns, nsl).matches(pod) {
                    *out.entry((x.topology_key.clone(), v.clone())).or_default() += w;
                }
            }
        };
        for x in et.req_aff {
            add(x, HARD_POD_AFFINITY_WEIGHT);
        }
        for w in et.pref_aff {
            add(&w.pod_affinity_term, w.weight as i64);
        }
        for w in et.pref_anti {
            add(&w.pod_affinity_term, -(w.weight as i64));
        }
    }
    out.retain(|_, v| *v != 0);
    (!out.is_empty()).then_some(out)
}

/// A node's raw score: the sum over the pairs its labels have.
pub fn score(pairs: &HashMap<Pair, i64>, n: &NodeInfo) -> i64 {
    let labels = labels_of(n);
    pairs
        .iter()
        .filter(|((k, v), _)| labels.get(k) == Some(v))
        .map(|(_, s)| s)
        .sum()
}

/// Raw scores to 0–100 by min-max, as upstream's NormalizeScore.
pub fn normalize(raw: &mut [i64]) {
    let (Some(&min), Some(&max)) = (raw.iter().min(), raw.iter().max()) else {
        return;
    };
    let diff = max - min;
    for s in raw.iter_mut() {
        *s = if diff > 0 { 100 * (*s - min) / diff } else { 0 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::Request;
    use serde_json::json;
    use std::sync::Arc;

    fn nodes(zones: &[(&str, &str)]) -> BTreeMap<String, NodeInfo> {
        zones
            .iter()
            .map(|(name, zone)| {
                let n = serde_json::from_value(json!({"metadata": {"name": name,
                    "labels": {"kubernetes.io/hostname": name, "zone": zone}}}))
                .unwrap();
                (name.to_string(), NodeInfo::new(Arc::new(n)))
            })
            .collect()
    }

    fn pod(labels: serde_json::Value, affinity: serde_json::Value) -> Pod {
        serde_json::from_value(
            json!({"metadata": {"name": "p", "namespace": "default", "labels": labels},
            "spec": {"containers": [], "affinity": affinity}}),
        )
        .unwrap()
    }

    fn place(idx: &mut Index, uid: &str, node: &str, p: Pod) {
        idx.add(
            uid.into(),
            Placed {
                node: node.into(),
                pod: Arc::new(p),
                request: Request::default(),
                priority: 0,
            },
        );
    }

    fn req(kind: &str, key: &str, app: &str) -> serde_json::Value {
        json!({kind: {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": key, "labelSelector": {"matchLabels": {"app": app}}}]}})
    }

    fn run(p: &Pod, idx: &mut Index, ns: &BTreeMap<String, NodeInfo>) -> Vec<Result<(), Reason>> {
        let st = pre_filter(p, idx, ns, &HashMap::new());
        ns.values()
            .map(|n| st.as_ref().map_or(Ok(()), |s| filter(s, n)))
            .collect()
    }

    #[test]
    fn anti_affinity_on_hostname_spreads_one_per_node() {
        let ns = nodes(&[("n1", "a"), ("n2", "a")]);
        let mut idx = Index::default();
        let web = || {
            pod(
                json!({"app": "web"}),
                req("podAntiAffinity", "kubernetes.io/hostname", "web"),
            )
        };
        assert_eq!(run(&web(), &mut idx, &ns), vec![Ok(()), Ok(())]);
        place(&mut idx, "a", "n1", web());
        let got = run(&web(), &mut idx, &ns);
        // n1 fails twice over: its pod's anti-affinity, and the new pod's.
        assert_eq!(
            got,
            vec![Err(EXISTING_ANTI_AFFINITY_NOT_MATCH.into()), Ok(())]
        );
        // A pod without affinity is still kept off by the existing pod's
        // anti-affinity when it matches it...
        let plain_web = pod(json!({"app": "web"}), json!(null));
        assert_eq!(
            run(&plain_web, &mut idx, &ns),
            vec![Err(EXISTING_ANTI_AFFINITY_NOT_MATCH.into()), Ok(())]
        );
        // ...and not when it does not.
        let other = pod(json!({"app": "db"}), json!(null));
        assert_eq!(run(&other, &mut idx, &ns), vec![Ok(()), Ok(())]);
        // The incoming pod's own anti-affinity against a pod without any.
        let mut idx2 = Index::default();
        place(&mut idx2, "x", "n2", plain_web.clone());
        let anti = pod(json!({"app": "db"}), req("podAntiAffinity", "zone", "web"));
        assert_eq!(
            run(&anti, &mut idx2, &ns),
            vec![
                Err(ANTI_AFFINITY_NOT_MATCH.into()),
                Err(ANTI_AFFINITY_NOT_MATCH.into())
            ]
        );
    }

    #[test]
    fn affinity_needs_a_matching_pod_in_the_topology_or_self_match_first() {
        let ns = nodes(&[("n1", "a"), ("n2", "b"), ("n3", "b")]);
        let mut idx = Index::default();
        let follower = pod(json!({"app": "cache"}), req("podAffinity", "zone", "web"));
        // Nothing matches anywhere and the pod does not match itself.
        assert_eq!(
            run(&follower, &mut idx, &ns),
            vec![Err(AFFINITY_NOT_MATCH.into()); 3]
        );
        // The first pod of a self-selecting group may go anywhere.
        let group = pod(json!({"app": "web"}), req("podAffinity", "zone", "web"));
        assert_eq!(run(&group, &mut idx, &ns), vec![Ok(()); 3]);
        place(&mut idx, "w", "n2", group.clone());
        assert_eq!(
            run(&follower, &mut idx, &ns),
            vec![Err(AFFINITY_NOT_MATCH.into()), Ok(()), Ok(())]
        );
        assert_eq!(
            run(&group, &mut idx, &ns),
            vec![Err(AFFINITY_NOT_MATCH.into()), Ok(()), Ok(())]
        );
        // Other namespaces only when the term names them.
        let mut elsewhere = follower.clone();
        elsewhere.metadata.namespace = Some("other".into());
        assert_eq!(
            run(&elsewhere, &mut idx, &ns),
            vec![Err(AFFINITY_NOT_MATCH.into()); 3]
        );
        let mut named = elsewhere.clone();
        named.spec.as_mut().unwrap().affinity = serde_json::from_value(json!({"podAffinity":
            {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "zone",
             "namespaces": ["default"], "labelSelector": {"matchLabels": {"app": "web"}}}]}}))
        .unwrap();
        assert_eq!(
            run(&named, &mut idx, &ns),
            vec![Err(AFFINITY_NOT_MATCH.into()), Ok(()), Ok(())]
        );
    }

    #[test]
    fn preferred_terms_score_by_weight() {
        let ns = nodes(&[("n1", "a"), ("n2", "b")]);
        let mut idx = Index::default();
        let plain = pod(json!({"app": "web"}), json!(null));
        assert!(pre_score(&plain, &mut idx, &ns, &HashMap::new()).is_none());
        place(&mut idx, "w", "n1", plain.clone());
        let p = pod(
            json!({}),
            json!({"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 10,
                "podAffinityTerm": {"topologyKey": "zone", "labelSelector": {"matchLabels": {"app": "web"}}}}]}}),
        );
        let pairs = pre_score(&p, &mut idx, &ns, &HashMap::new()).unwrap();
        let mut raw: Vec<i64> = ns.values().map(|n| score(&pairs, n)).collect();
        assert_eq!(raw, vec![10, 0]);
        normalize(&mut raw);
        assert_eq!(raw, vec![100, 0]);
        // Existing pods' preferred anti-affinity pushes matching pods away.
        let mut idx2 = Index::default();
        place(
            &mut idx2,
            "x",
            "n2",
            pod(
                json!({}),
                json!({"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 5,
                    "podAffinityTerm": {"topologyKey": "zone", "labelSelector": {"matchLabels": {"app": "web"}}}}]}}),
            ),
        );
        let pairs = pre_score(&plain, &mut idx2, &ns, &HashMap::new()).unwrap();
        let raw: Vec<i64> = ns.values().map(|n| score(&pairs, n)).collect();
        assert_eq!(raw, vec![0, -5]);
    }
}
