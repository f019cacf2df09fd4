//! Every placed pod, by node, with per-node counts of the pods a matcher
//! selects kept up to date as pods come and go, so the affinity and spread
//! plugins never scan every pod for every node.
//!
//! A count table is built (one scan) the first time a matcher is asked
//! for, then adjusted on every placement and removal. Tables are dropped
//! all at once past `MAX_TABLES`, so one-off selectors cannot grow memory.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, PodAffinityTerm};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::plugins::Request;
use crate::selector::selector_matches;

const MAX_TABLES: usize = 1024;

/// A placed pod.
#[derive(Clone, Debug)]
pub struct Placed {
    /// The node it is on.
    pub node: String,
    /// The pod as last seen (or as bound, for an assumed pod).
    pub pod: Arc<Pod>,
    /// Its requests.
    pub request: Request,
    /// Its priority.
    pub priority: i32,
}

/// The namespaces an affinity term applies to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NsScope {
    /// Every namespace (an empty `namespaceSelector`).
    All,
    /// These namespaces.
    Set(BTreeSet<String>),
}

impl NsScope {
    fn contains(&self, ns: &str) -> bool {
        match self {
            NsScope::All => true,
            NsScope::Set(s) => s.contains(ns),
        }
    }

    /// The namespaces of an affinity term of a pod in `own`: the listed
    /// ones plus those `namespaceSelector` selects; the pod's own when
    /// both are unset (upstream's `GetNamespacesFromPodAffinityTerm`).
    pub fn of_term(
        t: &PodAffinityTerm,
        own: &str,
        ns_labels: &HashMap<String, BTreeMap<String, String>>,
    ) -> NsScope {
        let listed = t.namespaces.as_deref().unwrap_or_default();
        let Some(sel) = t.namespace_selector.as_ref() else {
            if listed.is_empty() {
                return NsScope::Set(BTreeSet::from([own.to_string()]));
            }
            return NsScope::Set(listed.iter().cloned().collect());
        };
        let empty = sel.match_labels.as_ref().is_none_or(|m| m.is_empty())
            && sel.match_expressions.as_ref().is_none_or(|m| m.is_empty());
        if empty {
            return NsScope::All;
        }
        let mut set: BTreeSet<String> = listed.iter().cloned().collect();
        for (name, labels) in ns_labels {
            if selector_matches(sel, labels) {
                set.insert(name.clone());
            }
        }
        NsScope::Set(set)
    }
}

/// One conjunct of a matcher: a namespace scope and a label selector.
#[derive(Clone, Debug, PartialEq)]
pub struct Term {
    /// Where.
    pub ns: NsScope,
    /// Which labels; none selects nothing, as upstream's nil selector.
    pub selector: Option<LabelSelector>,
}

impl Term {
    /// Whether the term selects the pod.
    pub fn matches(&self, p: &Pod) -> bool {
        let ns = p.metadata.namespace.as_deref().unwrap_or_default();
        if !self.ns.contains(ns) {
            return false;
        }
        let empty = BTreeMap::new();
        self.selector
            .as_ref()
            .is_some_and(|s| selector_matches(s, p.metadata.labels.as_ref().unwrap_or(&empty)))
    }
}

/// Which pods to count.
#[derive(Clone, Debug, PartialEq)]
pub enum Matcher {
    /// Pods every term selects.
    All(Vec<Term>),
    /// Pods whose controller is this owner (by uid): the system default
    /// spreading's stand-in for "the selector of the pod's ReplicaSet".
    Owner(String),
    /// Pods the inner matcher selects that are not terminating: topology
    /// spread does not count pods being deleted, as upstream.
    Live(Box<Matcher>),
}

impl Matcher {
    /// Whether the matcher selects the pod.
    pub fn matches(&self, p: &Pod) -> bool {
        match self {
            Matcher::All(ts) => ts.iter().all(|t| t.matches(p)),
            Matcher::Owner(uid) => controller_uid(p) == Some(uid.as_str()),
            Matcher::Live(m) => p.metadata.deletion_timestamp.is_none() && m.matches(p),
        }
    }

    fn key(&self) -> String {
        match self {
            Matcher::Owner(uid) => format!("owner:{uid}"),
            Matcher::Live(m) => format!("live:{}", m.key()),
            Matcher::All(ts) => {
                let parts: Vec<String> = ts
                    .iter()
                    .map(|t| {
                        format!(
                            "{:?}|{}",
                            t.ns,
                            serde_json::to_string(&t.selector).unwrap_or_default()
                        )
                    })
                    .collect();
                format!("terms:{}", parts.join("&"))
            }
        }
    }
}

/// The uid of the pod's controller owner.
pub fn controller_uid(p: &Pod) -> Option<&str> {
    p.metadata
        .owner_references
        .as_deref()?
        .iter()
        .find(|o| o.controller == Some(true))
        .map(|o| o.uid.as_str())
}

fn has_pod_affinity(p: &Pod) -> (bool, bool) {
    let a = p.spec.as_ref().and_then(|s| s.affinity.as_ref());
    let any = a.is_some_and(|a| a.pod_affinity.is_some() || a.pod_anti_affinity.is_some());
    let required_anti = a
        .and_then(|a| a.pod_anti_affinity.as_ref())
        .and_then(|x| {
            x.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .is_some_and(|v| !v.is_empty());
    (any, required_anti)
}

/// The index.
#[derive(Default)]
pub struct Index {
    pods: HashMap<String, Placed>,
    by_node: HashMap<String, HashSet<String>>,
    /// Placed pods with required anti-affinity terms.
    anti: HashSet<String>,
    /// Placed pods with any pod (anti-)affinity.
    affine: HashSet<String>,
    tables: HashMap<String, (Matcher, HashMap<String, i64>)>,
}

impl Index {
    /// The placed pod with this uid.
    pub fn get(&self, uid: &str) -> Option<&Placed> {
        self.pods.get(uid)
    }

    /// Whether a pod with this uid is placed.
    pub fn contains(&self, uid: &str) -> bool {
        self.pods.contains_key(uid)
    }

    /// The uids of the pods on a node.
    pub fn on_node(&self, node: &str) -> impl Iterator<Item = &Placed> {
        self.by_node
            .get(node)
            .into_iter()
            .flatten()
            .filter_map(|u| self.pods.get(u))
    }

    /// Placed pods with required anti-affinity.
    pub fn with_required_anti(&self) -> impl Iterator<Item = &Placed> {
        self.anti.iter().filter_map(|u| self.pods.get(u))
    }

    /// Placed pods with any pod affinity or anti-affinity.
    pub fn with_affinity(&self) -> impl Iterator<Item = &Placed> {
        self.affine.iter().filter_map(|u| self.pods.get(u))
    }

    /// Whether any placed pod has pod affinity or anti-affinity.
    pub fn any_affinity(&self) -> bool {
        !self.affine.is_empty()
    }

    /// Place a pod (replacing an earlier placement of the same uid).
    pub fn add(&mut self, uid: String, p: Placed) {
        self.remove(&uid);
        let (any, anti) = has_pod_affinity(&p.pod);
        if any {
            self.affine.insert(uid.clone());
        }
        if anti {
            self.anti.insert(uid.clone());
        }
        for (m, counts) in self.tables.values_mut() {
            if m.matches(&p.pod) {
                *counts.entry(p.node.clone()).or_default() += 1;
            }
        }
        self.by_node
            .entry(p.node.clone())
            .or_default()
            .insert(uid.clone());
        self.pods.insert(uid, p);
    }

    /// Forget a placed pod.
    pub fn remove(&mut self, uid: &str) -> Option<Placed> {
        let p = self.pods.remove(uid)?;
        self.anti.remove(uid);
        self.affine.remove(uid);
        if let Some(s) = self.by_node.get_mut(&p.node) {
            s.remove(uid);
            if s.is_empty() {
                self.by_node.remove(&p.node);
            }
        }
        for (m, counts) in self.tables.values_mut() {
            if m.matches(&p.pod) {
                if let Some(c) = counts.get_mut(&p.node) {
                    *c -= 1;
                    if *c <= 0 {
                        counts.remove(&p.node);
                    }
                }
            }
        }
        Some(p)
    }

    /// Per node, how many placed pods the matcher selects (nodes with none
    /// are absent).
    pub fn counts(&mut self, m: &Matcher) -> &HashMap<String, i64> {
        let key = m.key();
        if !self.tables.contains_key(&key) {
            if self.tables.len() >= MAX_TABLES {
                self.tables.clear();
            }
            let mut counts: HashMap<String, i64> = HashMap::new();
            for p in self.pods.values() {
                if m.matches(&p.pod) {
                    *counts.entry(p.node.clone()).or_default() += 1;
                }
            }
            self.tables.insert(key.clone(), (m.clone(), counts));
        }
        &self.tables[&key].1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn placed(node: &str, ns: &str, labels: serde_json::Value, owner: Option<&str>) -> Placed {
        let mut meta = json!({"name": "p", "namespace": ns, "labels": labels});
        if let Some(o) = owner {
            meta["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": o, "controller": true}]);
        }
        Placed {
            node: node.into(),
            pod: Arc::new(serde_json::from_value(json!({"metadata": meta})).unwrap()),
            request: Request::default(),
            priority: 0,
        }
    }

    fn app(v: &str) -> Matcher {
        Matcher::All(vec![Term {
            ns: NsScope::Set(BTreeSet::from(["default".to_string()])),
            selector: Some(serde_json::from_value(json!({"matchLabels": {"app": v}})).unwrap()),
        }])
    }

    #[test]
    fn counts_follow_placements_after_the_first_scan() {
        let mut idx = Index::default();
        idx.add(
            "a".into(),
            placed("n1", "default", json!({"app": "web"}), None),
        );
        idx.add(
            "b".into(),
            placed("n1", "other", json!({"app": "web"}), None),
        );
        assert_eq!(idx.counts(&app("web")).get("n1"), Some(&1));
        idx.add(
            "c".into(),
            placed("n2", "default", json!({"app": "web"}), None),
        );
        idx.add(
            "d".into(),
            placed("n2", "default", json!({"app": "db"}), None),
        );
        assert_eq!(idx.counts(&app("web")).get("n2"), Some(&1));
        idx.remove("a");
        assert_eq!(idx.counts(&app("web")).get("n1"), None);
        // Re-placing the same uid moves it.
        idx.add(
            "c".into(),
            placed("n3", "default", json!({"app": "web"}), None),
        );
        let c = idx.counts(&app("web"));
        assert_eq!((c.get("n2"), c.get("n3")), (None, Some(&1)));
        assert_eq!(idx.on_node("n3").count(), 1);
    }

    #[test]
    fn live_matchers_skip_terminating_pods() {
        let mut idx = Index::default();
        idx.add(
            "a".into(),
            placed("n1", "default", json!({"app": "web"}), None),
        );
        let mut going = placed("n1", "default", json!({"app": "web"}), None);
        let mut pod = (*going.pod).clone();
        pod.metadata.deletion_timestamp =
            Some(serde_json::from_value(json!("2026-01-01T00:00:00Z")).unwrap());
        going.pod = Arc::new(pod);
        idx.add("b".into(), going);
        let live = Matcher::Live(Box::new(app("web")));
        assert_eq!(idx.counts(&app("web")).get("n1"), Some(&2));
        assert_eq!(idx.counts(&live).get("n1"), Some(&1));
        // The table follows later placements too.
        idx.remove("a");
        assert_eq!(idx.counts(&live).get("n1"), None);
        assert_eq!(idx.counts(&app("web")).get("n1"), Some(&1));
    }

    #[test]
    fn owner_matchers_count_a_controller_s_pods() {
        let mut idx = Index::default();
        idx.add("a".into(), placed("n1", "default", json!({}), Some("rs1")));
        idx.add("b".into(), placed("n1", "default", json!({}), Some("rs2")));
        assert_eq!(
            idx.counts(&Matcher::Owner("rs1".into())).get("n1"),
            Some(&1)
        );
    }

    #[test]
    fn term_namespaces() {
        let t: PodAffinityTerm = serde_json::from_value(json!({"topologyKey": "k"})).unwrap();
        let none = HashMap::new();
        assert_eq!(
            NsScope::of_term(&t, "me", &none),
            NsScope::Set(BTreeSet::from(["me".to_string()]))
        );
        let all: PodAffinityTerm =
            serde_json::from_value(json!({"topologyKey": "k", "namespaceSelector": {}})).unwrap();
        assert_eq!(NsScope::of_term(&all, "me", &none), NsScope::All);
        let by_label: PodAffinityTerm = serde_json::from_value(json!({"topologyKey": "k",
            "namespaces": ["x"], "namespaceSelector": {"matchLabels": {"team": "a"}}}))
        .unwrap();
        let mut nsl = HashMap::new();
        nsl.insert(
            "y".to_string(),
            BTreeMap::from([("team".into(), "a".into())]),
        );
        nsl.insert("z".to_string(), BTreeMap::new());
        assert_eq!(
            NsScope::of_term(&by_label, "me", &nsl),
            NsScope::Set(BTreeSet::from(["x".to_string(), "y".to_string()]))
        );
    }
}
