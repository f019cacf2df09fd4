//! Which pods go first when an owner has too many: upstream's
//! `ActivePodsWithRanks` order (with `PodDeletionCost` and
//! `LogarithmicScaleDown`, both on by default). Earlier in the order means
//! deleted first:
//!
//! 1. unscheduled before scheduled;
//! 2. Pending before Unknown before Running;
//! 3. not ready before ready;
//! 4. lower `controller.kubernetes.io/pod-deletion-cost` first;
//! 5. more pods of the same family on its node first (doubled up);
//! 6. of two ready pods, the one ready for a shorter time first;
//! 7. more container restarts first;
//! 8. newer before older.
//!
//! In 6 and 8 times compare on a logarithmic scale (powers of two of the
//! age), with the UID breaking ties, so among pods of similar age the
//! choice is pseudo-random rather than always the newest.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use super::status::{is_active, is_ready, ready_since};

/// The annotation that orders pods within the same state.
pub const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

fn node(p: &Pod) -> &str {
    p.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

/// Pending (and no phase) 0, Unknown 1, Running 2, as upstream's map (a
/// missing key reads as 0 there).
fn phase_ordinal(p: &Pod) -> u8 {
    match p.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Unknown") => 1,
        Some("Running") => 2,
        _ => 0,
    }
}

/// The deletion cost; absent or invalid counts as 0.
pub fn deletion_cost(p: &Pod) -> i32 {
    p.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DELETION_COST))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn max_restarts(p: &Pod) -> i32 {
    p.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .map(|c| c.restart_count)
        .max()
        .unwrap_or(0)
}

fn created(p: &Pod) -> Option<Timestamp> {
    p.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

fn uid(p: &Pod) -> &str {
    p.metadata.uid.as_deref().unwrap_or("")
}

/// floor(log2(age in nanoseconds)), -1 for no age.
fn log_age(t: Timestamp, now: Timestamp) -> i64 {
    let ns = now.duration_since(t).as_nanos();
    if ns <= 0 {
        -1
    } else {
        (ns as f64).log2() as i64
    }
}

/// Later first, a missing time before any (upstream's `afterOrZero`), or on
/// the logarithmic scale with the UID breaking ties.
fn newer_first(
    a: Option<Timestamp>,
    b: Option<Timestamp>,
    pa: &Pod,
    pb: &Pod,
    now: Timestamp,
) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => match log_age(a, now).cmp(&log_age(b, now)) {
            Ordering::Equal => uid(pa).cmp(uid(pb)),
            o => o,
        },
    }
}

/// The deletion order of two pods with their ranks (pods of the family on
/// the same node); `Less` means `a` goes first.
pub fn compare(a: &Pod, rank_a: usize, b: &Pod, rank_b: usize, now: Timestamp) -> Ordering {
    let (na, nb) = (node(a), node(b));
    if na != nb && (na.is_empty() || nb.is_empty()) {
        return if na.is_empty() {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    let o = phase_ordinal(a).cmp(&phase_ordinal(b));
    if o != Ordering::Equal {
        return o;
    }
    let (ra, rb) = (is_ready(a), is_ready(b));
    if ra != rb {
        return if ra {
            Ordering::Greater
        } else {
            Ordering::Less
        };
    }
    let o = deletion_cost(a).cmp(&deletion_cost(b));
    if o != Ordering::Equal {
        return o;
    }
    let o = rank_b.cmp(&rank_a);
    if o != Ordering::Equal {
        return o;
    }
    if ra && rb {
        let (ta, tb) = (ready_since(a).flatten(), ready_since(b).flatten());
        if ta != tb {
            return newer_first(ta, tb, a, b, now);
        }
    }
    let o = max_restarts(b).cmp(&max_restarts(a));
    if o != Ordering::Equal {
        return o;
    }
    let (ca, cb) = (created(a), created(b));
    if ca != cb {
        return newer_first(ca, cb, a, b, now);
    }
    Ordering::Equal
}

/// For each pod, how many active pods of `related` (the pods of every
/// owner under the same controller) share its node.
pub fn ranks(pods: &[Arc<Pod>], related: &[Arc<Pod>]) -> Vec<usize> {
    let mut on_node: HashMap<&str, usize> = HashMap::new();
    for p in related.iter().filter(|p| is_active(p)) {
        *on_node.entry(node(p)).or_default() += 1;
    }
    pods.iter()
        .map(|p| on_node.get(node(p)).copied().unwrap_or(0))
        .collect()
}

/// The `n` pods of `active` to delete first.
pub fn pods_to_delete(
    active: &[Arc<Pod>],
    related: &[Arc<Pod>],
    n: usize,
    now: Timestamp,
) -> Vec<Arc<Pod>> {
    if n >= active.len() {
        return active.to_vec();
    }
    let mut ranked: Vec<(Arc<Pod>, usize)> =
        active.iter().cloned().zip(ranks(active, related)).collect();
    merge_sort_by(&mut ranked, |(a, ra), (b, rb)| compare(a, *ra, b, *rb, now));
    ranked.into_iter().take(n).map(|(p, _)| p).collect()
}

/// A stable merge sort that, unlike the standard library's sorts, accepts a
/// comparison that is not a total order: the logarithmic buckets with UID
/// tie-breaks above are not transitive across rules (as upstream's are
/// not), and any order they yield is acceptable, a panic is not.
fn merge_sort_by<T: Clone>(v: &mut [T], cmp: impl Fn(&T, &T) -> Ordering + Copy) {
    if v.len() <= 1 {
        return;
    }
    let mid = v.len() / 2;
    merge_sort_by(&mut v[..mid], cmp);
    merge_sort_by(&mut v[mid..], cmp);
    let mut out = Vec::with_capacity(v.len());
    let (mut i, mut j) = (0, mid);
    while i < mid && j < v.len() {
        if cmp(&v[j], &v[i]) == Ordering::Less {
            out.push(v[j].clone());
            j += 1;
        } else {
            out.push(v[i].clone());
            i += 1;
        }
    }
    out.extend_from_slice(&v[i..mid]);
    out.extend_from_slice(&v[j..]);
    v.clone_from_slice(&out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const NOW: &str = "2024-01-01T12:00:00Z";

    fn now() -> Timestamp {
        NOW.parse().unwrap()
    }

    /// A pod named `name`; `f` fills in what the case needs.
    fn pod(name: &str, f: impl FnOnce(&mut Value)) -> Arc<Pod> {
        let mut v = json!({
            "metadata": {"name": name, "uid": format!("uid-{name}"),
                "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"nodeName": "n1", "containers": []},
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}]},
        });
        f(&mut v);
        Arc::new(serde_json::from_value(v).unwrap())
    }

    fn order(pods: &[Arc<Pod>], related: &[Arc<Pod>]) -> Vec<String> {
        pods_to_delete(pods, related, pods.len() - 1, now())
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect()
    }

    #[test]
    fn upstream_order_rule_by_rule() {
        let pods = vec![
            pod("old-ready", |_| {}),
            pod("restarted", |v| {
                v["status"]["containerStatuses"] = json!([{"name": "c", "image": "i", "imageID": "",
                    "ready": true, "restartCount": 3}]);
            }),
            pod("recently-ready", |v| {
                v["status"]["conditions"][0]["lastTransitionTime"] = json!("2024-01-01T11:59:00Z");
            }),
            pod("doubled-up", |v| v["spec"]["nodeName"] = json!("n2")),
            pod("cheap", |v| {
                v["metadata"]["annotations"] = json!({DELETION_COST: "-5"});
            }),
            pod("not-ready", |v| {
                v["status"]["conditions"][0]["status"] = json!("False")
            }),
            pod("unknown", |v| v["status"]["phase"] = json!("Unknown")),
            pod("pending", |v| v["status"]["phase"] = json!("Pending")),
            pod("unscheduled", |v| {
                v["spec"]["nodeName"] = json!(null);
                v["status"] = json!({"phase": "Pending"});
            }),
        ];
        // n2 carries eleven active pods of the family, n1 seven.
        let mut related = pods.clone();
        for i in 0..10 {
            related.push(pod(&format!("sibling-{i}"), |v| {
                v["spec"]["nodeName"] = json!("n2")
            }));
        }
        related.push(pod("gone", |v| {
            v["spec"]["nodeName"] = json!("n1");
            v["metadata"]["deletionTimestamp"] = json!(NOW);
        }));
        let mut reversed = pods.clone();
        reversed.reverse();
        let want = [
            "unscheduled",
            "pending",
            "unknown",
            "not-ready",
            "cheap",
            "doubled-up",
            "recently-ready",
            "restarted",
        ];
        assert_eq!(order(&pods, &related), want);
        assert_eq!(order(&reversed, &related), want);
    }

    #[test]
    fn newer_pods_go_first_on_a_logarithmic_scale() {
        let at = |name: &str, t: &str| {
            let t = t.to_string();
            pod(name, move |v| {
                v["metadata"]["creationTimestamp"] = json!(t);
                v["status"]["conditions"][0]["lastTransitionTime"] = json!("2024-01-01T00:00:00Z");
            })
        };
        // Created 1 h and 10 h ago: different powers of two.
        let young = at("young", "2024-01-01T11:00:00Z");
        let old = at("old", "2024-01-01T02:00:00Z");
        assert_eq!(compare(&young, 0, &old, 0, now()), Ordering::Less);
        assert_eq!(compare(&old, 0, &young, 0, now()), Ordering::Greater);
        // 1 h and 1 h 1 min ago: the same bucket, so the UID decides.
        let a = at("a", "2024-01-01T11:00:00Z");
        let b = at("b", "2024-01-01T10:59:00Z");
        assert_eq!(compare(&a, 0, &b, 0, now()), Ordering::Less);
        assert_eq!(compare(&b, 0, &a, 0, now()), Ordering::Greater);
        // No creation time goes first.
        let none = pod("none", |v| v["metadata"]["creationTimestamp"] = json!(null));
        assert_eq!(compare(&none, 0, &old, 0, now()), Ordering::Less);
        // Identical pods compare equal.
        assert_eq!(compare(&old, 0, &old, 0, now()), Ordering::Equal);
    }

    #[test]
    fn deletion_cost_parsing() {
        let with = |c: &str| {
            let c = c.to_string();
            deletion_cost(&pod("p", move |v| {
                v["metadata"]["annotations"] = json!({DELETION_COST: c})
            }))
        };
        assert_eq!(with("10"), 10);
        assert_eq!(with("-3"), -3);
        assert_eq!(with("x"), 0);
        assert_eq!(with("99999999999"), 0);
        assert_eq!(deletion_cost(&pod("p", |_| {})), 0);
    }

    #[test]
    fn all_pods_when_deleting_all_and_ranks_count_active_pods_per_node() {
        let pods = vec![
            pod("a", |_| {}),
            pod("b", |v| v["spec"]["nodeName"] = json!("n2")),
        ];
        assert_eq!(pods_to_delete(&pods, &[], 5, now()).len(), 2);
        let related = vec![
            pods[0].clone(),
            pods[1].clone(),
            pod("c", |v| v["spec"]["nodeName"] = json!("n2")),
            pod("done", |v| v["status"]["phase"] = json!("Succeeded")),
        ];
        assert_eq!(ranks(&pods, &related), vec![1, 2]);
        assert_eq!(ranks(&pods, &[]), vec![0, 0]);
    }

    #[test]
    fn a_non_transitive_comparison_does_not_panic() {
        // Pseudo-random comparisons: the sort must still finish.
        let mut v: Vec<u32> = (0..200).collect();
        merge_sort_by(&mut v, |a, b| {
            if (a * 7 + b * 13) % 3 == 0 {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        });
        assert_eq!(v.len(), 200);
        let mut w = vec![5, 3, 9, 1, 1, 7];
        merge_sort_by(&mut w, |a: &i32, b: &i32| a.cmp(b));
        assert_eq!(w, vec![1, 1, 3, 5, 7, 9]);
    }
}
