//! A Deployment's ReplicaSets as upstream's `deployment/util` sees them:
//! counts, revisions and their annotations, which one is new (its template
//! is the Deployment's) and which are old, and the orders they are
//! processed in. Pure functions.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};

use super::hash::equal_ignore_hash;
use super::spec;

/// The rollout sequence number of a ReplicaSet (and of its Deployment).
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// Earlier revisions a ReplicaSet served (it is reused by a rollback).
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
/// `spec.replicas` of the Deployment when the ReplicaSet was last scaled.
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
/// `spec.replicas + maxSurge` then, for proportional scaling.
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// The annotation that carries the deprecated `spec.rollbackTo`.
pub const ROLLBACK_TO: &str = "deprecated.deployment.rollback.to";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// The longest `revision-history` kept (about a hundred revisions).
pub const MAX_REVISION_HISTORY_CHARS: usize = 2000;

/// `spec.replicas` (defaulted to 1 by the API server).
pub fn replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.replicas.unwrap_or(1)
}

/// `status.replicas`: its active pods.
pub fn actual(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map_or(0, |s| s.replicas)
}

pub fn ready(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

pub fn available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

pub fn observed_generation(rs: &ReplicaSet) -> i64 {
    rs.status
        .as_ref()
        .and_then(|s| s.observed_generation)
        .unwrap_or(0)
}

/// Upstream's `FilterActiveReplicaSets`: the ones asked to run pods.
pub fn is_active(rs: &ReplicaSet) -> bool {
    replicas(rs) > 0
}

/// The sum of `spec.replicas`.
pub fn sum_replicas<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i32 {
    rss.into_iter().map(replicas).sum()
}

/// The sum of `status.replicas`.
pub fn sum_actual<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i32 {
    rss.into_iter().map(actual).sum()
}

pub fn sum_ready<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i32 {
    rss.into_iter().map(ready).sum()
}

pub fn sum_available<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i32 {
    rss.into_iter().map(available).sum()
}

/// The sum of `status.terminatingReplicas`, as upstream's
/// `GetTerminatingReplicaCountForReplicaSets`: a ReplicaSet its controller
/// has not synced yet counts as none; one synced without the field makes
/// the sum unknown.
pub fn sum_terminating<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> Option<i32> {
    let mut total = 0;
    for rs in rss {
        let t = rs.status.as_ref().and_then(|s| s.terminating_replicas);
        match t {
            Some(n) => total += n,
            None if observed_generation(rs) == 0 => {}
            None => return None,
        }
    }
    Some(total)
}

fn annotation<'a>(rs: &'a ReplicaSet, key: &str) -> Option<&'a str> {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// The revision annotation: 0 when absent, an error when not a number.
pub fn revision(rs: &ReplicaSet) -> Result<i64, std::num::ParseIntError> {
    annotation(rs, REVISION).map_or(Ok(0), str::parse)
}

/// The highest revision (unparsable ones are skipped).
pub fn max_revision<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i64 {
    rss.into_iter()
        .filter_map(|rs| revision(rs).ok())
        .max()
        .unwrap_or(0)
        .max(0)
}

/// The second highest revision: the one before the current.
pub fn last_revision<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i64 {
    let (mut max, mut second) = (0, 0);
    for v in rss.into_iter().filter_map(|rs| revision(rs).ok()) {
        if v >= max {
            second = max;
            max = v;
        } else if v > second {
            second = v;
        }
    }
    second
}

/// `desired-replicas`, if set and a number.
pub fn desired_replicas_annotation(rs: &ReplicaSet) -> Option<i32> {
    annotation(rs, DESIRED_REPLICAS).and_then(|v| v.parse().ok())
}

/// `max-replicas`, if set and a number.
pub fn max_replicas_annotation(rs: &ReplicaSet) -> Option<i32> {
    annotation(rs, MAX_REPLICAS).and_then(|v| v.parse().ok())
}

/// Upstream's `ReplicaSetsByCreationTimestamp`: older first, then by name.
pub fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    let t = |rs: &ReplicaSet| rs.metadata.creation_timestamp.as_ref().map(|t| t.0);
    t(a).cmp(&t(b))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// Upstream's `ReplicaSetsByRevision`: lower revision first, equal ones by
/// creation. Upstream compares an unparsable revision by creation against
/// anything, which is no order at all (and Rust's sorts may panic on such);
/// here it counts as revision 0, the first to be cleaned up.
pub fn by_revision(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    let r = |rs: &ReplicaSet| revision(rs).unwrap_or(0);
    r(a).cmp(&r(b)).then_with(|| by_creation(a, b))
}

/// Larger first; among equals, newer first (where scaling up goes first).
pub fn by_size_newer(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    replicas(b)
        .cmp(&replicas(a))
        .then_with(|| by_creation(b, a))
}

/// Larger first; among equals, older first (where scaling down goes first).
pub fn by_size_older(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    replicas(b)
        .cmp(&replicas(a))
        .then_with(|| by_creation(a, b))
}

/// Upstream's `FindNewReplicaSet`: the oldest ReplicaSet whose template is
/// the Deployment's (ignoring the hash label). Returns its index.
pub fn find_new(d: &Deployment, rss: &[ReplicaSet]) -> Option<usize> {
    let template = &d.spec.template;
    let mut idx: Vec<usize> = (0..rss.len()).collect();
    idx.sort_by(|&a, &b| by_creation(&rss[a], &rss[b]));
    idx.into_iter().find(|&i| {
        rss[i]
            .spec
            .template
            .as_ref()
            .is_some_and(|t| equal_ignore_hash(t, template))
    })
}

/// Split `rss` into the new ReplicaSet and all the old ones.
pub fn split(d: &Deployment, mut rss: Vec<ReplicaSet>) -> (Option<ReplicaSet>, Vec<ReplicaSet>) {
    let new = find_new(d, &rss).map(|i| rss.remove(i));
    (new, rss)
}

/// Annotations a Deployment never passes on to its ReplicaSets (and a
/// rollback never takes from one).
pub fn skip_copy(key: &str) -> bool {
    matches!(
        key,
        LAST_APPLIED | REVISION | REVISION_HISTORY | DESIRED_REPLICAS | MAX_REPLICAS | ROLLBACK_TO
    )
}

/// Copy the Deployment's annotations (but the skipped ones) to the
/// ReplicaSet; whether anything changed. Nothing is removed, as upstream.
fn copy_annotations(d: &Deployment, rs: &mut ReplicaSet) -> bool {
    let mut changed = false;
    let ann = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if skip_copy(k) || ann.get(k) == Some(v) {
            continue;
        }
        ann.insert(k.clone(), v.clone());
        changed = true;
    }
    changed
}

/// Set `desired-replicas` and `max-replicas`; whether either changed.
pub fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let ann = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    for (k, v) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let v = v.to_string();
        if ann.get(k) != Some(&v) {
            ann.insert(k.into(), v);
            changed = true;
        }
    }
    changed
}

/// Whether `desired-replicas` or `max-replicas` would change.
pub fn replicas_annotations_need_update(rs: &ReplicaSet, desired: i32, max: i32) -> bool {
    annotation(rs, DESIRED_REPLICAS) != Some(desired.to_string().as_str())
        || annotation(rs, MAX_REPLICAS) != Some(max.to_string().as_str())
}

/// Upstream's `SetNewReplicaSetAnnotations`: copy the Deployment's
/// annotations, raise the revision to `new_revision` (keeping the one it
/// replaces in `revision-history`, bounded to `history_limit` characters),
/// and on creation set the replica annotations. Whether anything changed.
pub fn set_new_rs_annotations(
    d: &Deployment,
    rs: &mut ReplicaSet,
    new_revision: i64,
    exists: bool,
    history_limit: usize,
) -> bool {
    let mut changed = copy_annotations(d, rs);
    let ann = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let old = ann.get(REVISION).cloned();
    let old_n = match old.as_deref() {
        None | Some("") => 0,
        Some(s) => match s.parse::<i64>() {
            Ok(n) => n,
            Err(_) => {
                tracing::warn!(replicaset = ?rs.metadata.name, revision = s, "revision is not a number");
                return false;
            }
        },
    };
    if old_n < new_revision {
        ann.insert(REVISION.into(), new_revision.to_string());
        changed = true;
        // A ReplicaSet that had a revision is being rolled back to: keep
        // the revisions it served.
        if let Some(old) = old {
            let history = ann.get(REVISION_HISTORY).cloned().unwrap_or_default();
            if history.is_empty() {
                ann.insert(REVISION_HISTORY.into(), old);
            } else {
                let mut parts: Vec<&str> = history.split(',').collect();
                let mut len = history.len() + old.len() + 1;
                let mut start = 0;
                while len > history_limit && start < parts.len() {
                    len -= parts[start].len() + 1;
                    start += 1;
                }
                if len <= history_limit {
                    parts.drain(..start);
                    parts.push(&old);
                    let joined = parts.join(",");
                    ann.insert(REVISION_HISTORY.into(), joined);
                } else {
                    tracing::warn!(
                        limit = history_limit,
                        "revision history too long; not appending"
                    );
                }
            }
        }
    }
    if !exists {
        let desired = spec::replicas(d);
        changed |= set_replicas_annotations(rs, desired, desired + spec::max_surge(d));
    }
    changed
}

/// Upstream's `FindActiveOrLatest`: the only ReplicaSet asked to run pods,
/// or the newest one when none is; `None` when several are.
pub fn active_or_latest<'a>(
    new: Option<&'a ReplicaSet>,
    old: &'a [ReplicaSet],
) -> Option<&'a ReplicaSet> {
    let active: Vec<&ReplicaSet> = old.iter().chain(new).filter(|rs| is_active(rs)).collect();
    match active.len() {
        0 => new.or_else(|| old.iter().max_by(|a, b| by_creation(a, b))),
        1 => Some(active[0]),
        _ => None,
    }
}

/// Upstream's `IsSaturated`: the new ReplicaSet runs all the Deployment's
/// replicas, believes it should, and all are available.
pub fn is_saturated(d: &Deployment, rs: Option<&ReplicaSet>) -> bool {
    let Some(rs) = rs else { return false };
    let want = spec::replicas(d);
    replicas(rs) == want && desired_replicas_annotation(rs) == Some(want) && available(rs) == want
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// A ReplicaSet for tests: `f` fills in what the case needs.
    pub fn rs(name: &str, replicas: i32, created: &str, f: impl FnOnce(&mut Value)) -> ReplicaSet {
        let mut v = json!({
            "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"),
                "creationTimestamp": created, "generation": 1},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web", "pod-template-hash": name}},
                    "spec": {"containers": [{"name": "c", "image": name}]}}},
            "status": {"replicas": replicas, "observedGeneration": 1}
        });
        f(&mut v);
        serde_json::from_value(v).unwrap()
    }

    pub fn deployment(f: impl FnOnce(&mut Value)) -> Deployment {
        let mut v = json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "d-uid", "generation": 1},
            "spec": {"replicas": 10, "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "b"}]}}}
        });
        f(&mut v);
        serde_json::from_value(v).unwrap()
    }

    fn with_rev(rev: &str) -> impl FnOnce(&mut Value) {
        let rev = rev.to_string();
        move |v: &mut Value| v["metadata"]["annotations"] = json!({REVISION: rev})
    }

    fn names(rss: &[ReplicaSet]) -> Vec<&str> {
        rss.iter()
            .map(|r| r.metadata.name.as_deref().unwrap())
            .collect()
    }

    #[test]
    fn the_new_replicaset_is_the_oldest_with_the_deployments_template() {
        let d = deployment(|_| {});
        let rss = vec![
            rs("a", 3, "2024-01-01T00:00:00Z", |_| {}),
            rs("b", 0, "2024-01-03T00:00:00Z", |_| {}),
            // Same template as "b" but older: chosen.
            rs("c", 0, "2024-01-02T00:00:00Z", |v| {
                v["spec"]["template"]["spec"]["containers"][0]["image"] = json!("b")
            }),
        ];
        let (new, old) = split(&d, rss.clone());
        assert_eq!(new.unwrap().metadata.name.as_deref(), Some("c"));
        assert_eq!(names(&old), ["a", "b"]);
        // No match: no new ReplicaSet, all old.
        let d2 =
            deployment(|v| v["spec"]["template"]["spec"]["containers"][0]["image"] = json!("z"));
        let (new, old) = split(&d2, rss);
        assert!(new.is_none());
        assert_eq!(old.len(), 3);
    }

    #[test]
    fn revisions() {
        let rss = vec![
            rs("a", 0, "2024-01-01T00:00:00Z", with_rev("3")),
            rs("b", 0, "2024-01-01T00:00:00Z", with_rev("x")),
            rs("c", 0, "2024-01-01T00:00:00Z", with_rev("7")),
            rs("d", 0, "2024-01-01T00:00:00Z", |_| {}),
        ];
        assert_eq!(revision(&rss[0]), Ok(3));
        assert!(revision(&rss[1]).is_err());
        assert_eq!(revision(&rss[3]), Ok(0));
        assert_eq!(max_revision(&rss), 7);
        assert_eq!(last_revision(&rss), 3);
        assert_eq!(max_revision(&[]), 0);
        let mut sorted = rss.clone();
        sorted.sort_by(by_revision);
        assert_eq!(names(&sorted), ["b", "d", "a", "c"]);
    }

    #[test]
    fn new_replicaset_annotations_and_rollback_history() {
        let d = deployment(|v| {
            v["metadata"]["annotations"] = json!({"team": "a", REVISION: "9",
                LAST_APPLIED: "{}", "kubernetes.io/change-cause": "set image"})
        });
        // Creation: copied annotations, revision, replica annotations.
        let mut r = rs("n", 0, "2024-01-01T00:00:00Z", |_| {});
        assert!(set_new_rs_annotations(&d, &mut r, 4, false, 2000));
        let a = r.metadata.annotations.clone().unwrap();
        assert_eq!(a.get("team").map(String::as_str), Some("a"));
        assert_eq!(
            a.get("kubernetes.io/change-cause").map(String::as_str),
            Some("set image")
        );
        assert_eq!(a.get(REVISION).map(String::as_str), Some("4"));
        assert_eq!(a.get(DESIRED_REPLICAS).map(String::as_str), Some("10"));
        assert_eq!(a.get(MAX_REPLICAS).map(String::as_str), Some("13"));
        assert!(!a.contains_key(LAST_APPLIED) && !a.contains_key(REVISION_HISTORY));
        // Nothing new: unchanged.
        assert!(!set_new_rs_annotations(&d, &mut r, 4, true, 2000));
        // A lower revision never lowers it.
        assert!(!set_new_rs_annotations(&d, &mut r, 2, true, 2000));
        // Rolled back to: the old revision goes to the history.
        assert!(set_new_rs_annotations(&d, &mut r, 6, true, 2000));
        assert!(set_new_rs_annotations(&d, &mut r, 8, true, 2000));
        let a = r.metadata.annotations.clone().unwrap();
        assert_eq!(a.get(REVISION).map(String::as_str), Some("8"));
        assert_eq!(a.get(REVISION_HISTORY).map(String::as_str), Some("4,6"));
        // The history is bounded: the oldest entries go first.
        assert!(set_new_rs_annotations(&d, &mut r, 10, true, 4));
        assert_eq!(
            r.metadata
                .annotations
                .as_ref()
                .unwrap()
                .get(REVISION_HISTORY)
                .map(String::as_str),
            Some("6,8")
        );
        // An unparsable revision is left alone.
        let mut bad = rs("b", 0, "2024-01-01T00:00:00Z", with_rev("x"));
        assert!(!set_new_rs_annotations(&d, &mut bad, 3, true, 2000));
    }

    #[test]
    fn active_or_latest_and_saturation() {
        let old = vec![
            rs("a", 0, "2024-01-01T00:00:00Z", |_| {}),
            rs("b", 0, "2024-01-02T00:00:00Z", |_| {}),
        ];
        // None active: the new one, else the newest old one.
        let new = rs("n", 0, "2024-01-03T00:00:00Z", |_| {});
        assert_eq!(
            active_or_latest(Some(&new), &old)
                .unwrap()
                .metadata
                .name
                .as_deref(),
            Some("n")
        );
        assert_eq!(
            active_or_latest(None, &old)
                .unwrap()
                .metadata
                .name
                .as_deref(),
            Some("b")
        );
        // One active: that one; two: none.
        let old2 = vec![rs("a", 2, "2024-01-01T00:00:00Z", |_| {}), old[1].clone()];
        assert_eq!(
            active_or_latest(Some(&new), &old2)
                .unwrap()
                .metadata
                .name
                .as_deref(),
            Some("a")
        );
        let new2 = rs("n", 1, "2024-01-03T00:00:00Z", |_| {});
        assert!(active_or_latest(Some(&new2), &old2).is_none());

        let d = deployment(|_| {});
        let full = rs("n", 10, "2024-01-03T00:00:00Z", |v| {
            v["metadata"]["annotations"] = json!({DESIRED_REPLICAS: "10"});
            v["status"]["availableReplicas"] = json!(10);
        });
        assert!(is_saturated(&d, Some(&full)));
        let mut not_available = full.clone();
        not_available.status.as_mut().unwrap().available_replicas = Some(9);
        assert!(!is_saturated(&d, Some(&not_available)));
        let mut other_desired = full.clone();
        other_desired.metadata.annotations =
            Some([(DESIRED_REPLICAS.to_string(), "5".to_string())].into());
        assert!(!is_saturated(&d, Some(&other_desired)));
        assert!(!is_saturated(&d, None));
    }

    #[test]
    fn terminating_sums_skip_unsynced_replicasets() {
        let synced = |n: i32| {
            rs("s", 1, "2024-01-01T00:00:00Z", move |v| {
                v["status"]["terminatingReplicas"] = json!(n)
            })
        };
        let fresh = rs("f", 1, "2024-01-01T00:00:00Z", |v| {
            v["status"] = json!({"replicas": 0})
        });
        let unknown = rs("u", 1, "2024-01-01T00:00:00Z", |_| {});
        assert_eq!(
            sum_terminating(&[synced(2), synced(1), fresh.clone()]),
            Some(3)
        );
        assert_eq!(sum_terminating(&[synced(2), unknown]), None);
        assert_eq!(sum_terminating(&[]), Some(0));
    }

    #[test]
    fn size_orders() {
        let a = rs("a", 3, "2024-01-01T00:00:00Z", |_| {});
        let b = rs("b", 3, "2024-01-02T00:00:00Z", |_| {});
        let c = rs("c", 5, "2024-01-03T00:00:00Z", |_| {});
        let mut v = vec![a.clone(), b.clone(), c.clone()];
        v.sort_by(by_size_newer);
        assert_eq!(names(&v), ["c", "b", "a"]);
        v.sort_by(by_size_older);
        assert_eq!(names(&v), ["c", "a", "b"]);
    }
}
