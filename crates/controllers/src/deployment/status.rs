//! A Deployment's status from its ReplicaSets (upstream's
//! `calculateStatus`), its conditions, and the tests upstream's
//! `deployment/util` makes of them. Pure functions.

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetCondition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::replicasets as rsu;
use super::spec;

pub const PROGRESSING: &str = "Progressing";
pub const AVAILABLE: &str = "Available";
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

// Reasons, as upstream's `deployment/util`.
pub const REPLICASET_UPDATED: &str = "ReplicaSetUpdated";
pub const FAILED_RS_CREATE: &str = "ReplicaSetCreateError";
pub const NEW_REPLICASET: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub const PAUSED: &str = "DeploymentPaused";
pub const RESUMED: &str = "DeploymentResumed";
pub const MIN_AVAILABLE: &str = "MinimumReplicasAvailable";
pub const MIN_UNAVAILABLE: &str = "MinimumReplicasUnavailable";

/// Times are kept to the second, as they are stored, so a status computed
/// here compares equal to the same status read back.
pub fn now() -> Timestamp {
    let t = Timestamp::now();
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

/// A new condition, updated and transitioned `now`.
pub fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: Timestamp,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: Some(type_.into()),
        status: Some(status.into()),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// The condition of `type_`.
pub fn get<'a>(s: Option<&'a DeploymentStatus>, type_: &str) -> Option<&'a DeploymentCondition> {
    s?.conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_.as_deref() == Some(type_))
}

/// Upstream's `SetDeploymentCondition`: nothing happens if a condition of
/// the type has the same status and reason; a new one keeps the old
/// transition time if the status stays.
pub fn set(s: &mut DeploymentStatus, mut c: DeploymentCondition) {
    if let Some(cur) = get(Some(s), c.type_.as_deref().unwrap_or("")) {
        if cur.status == c.status && cur.reason == c.reason {
            return;
        }
        if cur.status == c.status {
            c.last_transition_time = cur.last_transition_time.clone();
        }
    }
    remove(s, c.type_.as_deref().unwrap_or(""));
    s.conditions.get_or_insert_with(Vec::new).push(c);
}

/// Remove the condition of `type_`.
pub fn remove(s: &mut DeploymentStatus, type_: &str) {
    if let Some(cs) = s.conditions.as_mut() {
        cs.retain(|c| c.type_.as_deref() != Some(type_));
        if cs.is_empty() {
            s.conditions = None;
        }
    }
}

/// A ReplicaSet's failure as the Deployment reports it.
pub fn from_replicaset(c: &ReplicaSetCondition) -> DeploymentCondition {
    DeploymentCondition {
        type_: c.type_.clone(),
        status: c.status.clone(),
        reason: c.reason.clone(),
        message: c.message.clone(),
        last_update_time: c.last_transition_time.clone(),
        last_transition_time: c.last_transition_time.clone(),
    }
}

fn none_if_zero(n: i32) -> Option<i32> {
    (n != 0).then_some(n)
}

/// Upstream's `calculateStatus`: the counts from all ReplicaSets (the new
/// one's for `updatedReplicas`), the conditions carried over, and
/// `Available` from the minimum availability. Zero counts are left out, as
/// Go's `omitempty` leaves them out.
pub fn calculate(
    all: &[&ReplicaSet],
    new: Option<&ReplicaSet>,
    d: &Deployment,
    now: Timestamp,
) -> DeploymentStatus {
    let available = rsu::sum_available(all.iter().copied());
    let total = rsu::sum_replicas(all.iter().copied());
    let unavailable = (total - available).max(0);
    let cur = d.status.as_ref();
    let mut s = DeploymentStatus {
        observed_generation: d.metadata.generation.filter(|&g| g != 0),
        replicas: none_if_zero(rsu::sum_actual(all.iter().copied())),
        updated_replicas: none_if_zero(new.map_or(0, rsu::actual)),
        ready_replicas: none_if_zero(rsu::sum_ready(all.iter().copied())),
        available_replicas: none_if_zero(available),
        unavailable_replicas: none_if_zero(unavailable),
        terminating_replicas: rsu::sum_terminating(all.iter().copied()),
        collision_count: cur.and_then(|s| s.collision_count),
        conditions: cur.and_then(|s| s.conditions.clone()),
    };
    if available >= spec::replicas(d) - spec::max_unavailable(d) {
        set(
            &mut s,
            condition(
                AVAILABLE,
                "True",
                MIN_AVAILABLE,
                "Deployment has minimum availability.".into(),
                now,
            ),
        );
    } else {
        set(
            &mut s,
            condition(
                AVAILABLE,
                "False",
                MIN_UNAVAILABLE,
                "Deployment does not have minimum availability.".into(),
                now,
            ),
        );
    }
    s
}

fn n(v: Option<i32>) -> i32 {
    v.unwrap_or(0)
}

/// Upstream's `DeploymentComplete`: every desired replica is updated and
/// available, no old one runs, and the spec was observed.
pub fn complete(d: &Deployment, s: &DeploymentStatus) -> bool {
    let want = spec::replicas(d);
    n(s.updated_replicas) == want
        && n(s.replicas) == want
        && n(s.available_replicas) == want
        && s.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// Upstream's `DeploymentProgressing`: compared with the status the
/// Deployment has, more pods were updated, old ones went away, or more
/// became ready or available.
pub fn progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let default = DeploymentStatus::default();
    let old = d.status.as_ref().unwrap_or(&default);
    let old_old = n(old.replicas) - n(old.updated_replicas);
    let new_old = n(new.replicas) - n(new.updated_replicas);
    n(new.updated_replicas) > n(old.updated_replicas)
        || new_old < old_old
        || n(new.ready_replicas) > n(old.ready_replicas)
        || n(new.available_replicas) > n(old.available_replicas)
}

/// Upstream's `DeploymentTimedOut`: no progress was reported for longer
/// than the deadline (or the timeout is already reported). A completed
/// rollout never times out.
pub fn timed_out(d: &Deployment, new: &DeploymentStatus, now: Timestamp) -> bool {
    let Some(deadline) = spec::progress_deadline(d) else {
        return false;
    };
    let Some(c) = get(Some(new), PROGRESSING) else {
        return false;
    };
    match c.reason.as_deref() {
        Some(NEW_RS_AVAILABLE) => false,
        Some(TIMED_OUT) => true,
        _ => c
            .last_update_time
            .as_ref()
            .is_some_and(|t| t.0 + SignedDuration::from_secs(i64::from(deadline)) < now),
    }
}

#[cfg(test)]
mod tests {
    use super::super::replicasets::tests::{deployment, rs};
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn status(v: serde_json::Value) -> DeploymentStatus {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn status_sums_the_replicasets() {
        let d = deployment(|v| v["metadata"]["generation"] = json!(4));
        let old = rs("old", 4, "2024-01-01T00:00:00Z", |v| {
            v["status"] = json!({"replicas": 5, "readyReplicas": 4, "availableReplicas": 4,
                "terminatingReplicas": 1, "observedGeneration": 2});
        });
        let new = rs("new", 8, "2024-01-02T00:00:00Z", |v| {
            v["status"] = json!({"replicas": 6, "readyReplicas": 3, "availableReplicas": 2,
                "terminatingReplicas": 0, "observedGeneration": 1});
        });
        let now = at("2024-01-03T00:00:00Z");
        let s = calculate(&[&old, &new], Some(&new), &d, now);
        assert_eq!(s.observed_generation, Some(4));
        assert_eq!(s.replicas, Some(11));
        assert_eq!(s.updated_replicas, Some(6));
        assert_eq!(s.ready_replicas, Some(7));
        assert_eq!(s.available_replicas, Some(6));
        // 12 asked for, 6 available.
        assert_eq!(s.unavailable_replicas, Some(6));
        assert_eq!(s.terminating_replicas, Some(1));
        // 10 desired, 2 may be unavailable: 6 < 8.
        let a = get(Some(&s), AVAILABLE).unwrap();
        assert_eq!(a.status.as_deref(), Some("False"));
        assert_eq!(a.reason.as_deref(), Some(MIN_UNAVAILABLE));
        assert_eq!(
            a.message.as_deref(),
            Some("Deployment does not have minimum availability.")
        );
        // No replica sets: all counts omitted, terminating known as 0.
        let v = serde_json::to_value(calculate(&[], None, &d, now)).unwrap();
        assert!(v.get("replicas").is_none() && v.get("unavailableReplicas").is_none());
        assert_eq!(v["terminatingReplicas"], 0);
    }

    #[test]
    fn conditions_keep_their_times_unless_something_changes() {
        let t0 = at("2024-01-01T00:00:00Z");
        let t1 = at("2024-01-01T00:10:00Z");
        let mut s = DeploymentStatus::default();
        set(
            &mut s,
            condition(PROGRESSING, "True", NEW_REPLICASET, "a".into(), t0),
        );
        // Same status and reason: untouched (even the message).
        set(
            &mut s,
            condition(PROGRESSING, "True", NEW_REPLICASET, "b".into(), t1),
        );
        let c = get(Some(&s), PROGRESSING).unwrap();
        assert_eq!(
            (c.message.as_deref(), c.last_update_time.clone()),
            (Some("a"), Some(Time(t0)))
        );
        // New reason, same status: the transition time stays.
        set(
            &mut s,
            condition(PROGRESSING, "True", REPLICASET_UPDATED, "c".into(), t1),
        );
        let c = get(Some(&s), PROGRESSING).unwrap();
        assert_eq!(c.last_transition_time, Some(Time(t0)));
        assert_eq!(c.last_update_time, Some(Time(t1)));
        // New status: a transition.
        set(
            &mut s,
            condition(PROGRESSING, "False", TIMED_OUT, "d".into(), t1),
        );
        assert_eq!(
            get(Some(&s), PROGRESSING).unwrap().last_transition_time,
            Some(Time(t1))
        );
        assert_eq!(s.conditions.as_ref().unwrap().len(), 1);
        remove(&mut s, PROGRESSING);
        assert!(s.conditions.is_none());
    }

    #[test]
    fn complete_progressing_and_timed_out() {
        let mut d = deployment(|v| {
            v["metadata"]["generation"] = json!(2);
            v["spec"]["progressDeadlineSeconds"] = json!(60);
            v["status"] = json!({"replicas": 12, "updatedReplicas": 5, "readyReplicas": 9, "availableReplicas": 8});
        });
        let done = status(
            json!({"replicas": 10, "updatedReplicas": 10, "availableReplicas": 10, "observedGeneration": 2}),
        );
        assert!(complete(&d, &done));
        let stale = status(
            json!({"replicas": 10, "updatedReplicas": 10, "availableReplicas": 10, "observedGeneration": 1}),
        );
        assert!(!complete(&d, &stale));

        let same = status(
            json!({"replicas": 12, "updatedReplicas": 5, "readyReplicas": 9, "availableReplicas": 8}),
        );
        assert!(!progressing(&d, &same));
        let more_updated = status(
            json!({"replicas": 12, "updatedReplicas": 6, "readyReplicas": 9, "availableReplicas": 8}),
        );
        assert!(progressing(&d, &more_updated));
        let fewer_old = status(
            json!({"replicas": 11, "updatedReplicas": 5, "readyReplicas": 9, "availableReplicas": 8}),
        );
        assert!(progressing(&d, &fewer_old));
        let more_ready = status(
            json!({"replicas": 12, "updatedReplicas": 5, "readyReplicas": 10, "availableReplicas": 8}),
        );
        assert!(progressing(&d, &more_ready));

        let t0 = at("2024-01-01T00:00:00Z");
        let mut s = same.clone();
        assert!(!timed_out(&d, &s, t0), "no Progressing condition, no base");
        set(
            &mut s,
            condition(PROGRESSING, "True", REPLICASET_UPDATED, "m".into(), t0),
        );
        assert!(
            !timed_out(&d, &s, at("2024-01-01T00:01:00Z")),
            "exactly at the deadline"
        );
        assert!(timed_out(&d, &s, at("2024-01-01T00:01:01Z")));
        d.spec.progress_deadline_seconds = Some(i32::MAX);
        assert!(
            !timed_out(&d, &s, at("2024-01-02T00:00:00Z")),
            "no deadline"
        );
        d.spec.progress_deadline_seconds = Some(60);
        let mut ok = same;
        set(
            &mut ok,
            condition(PROGRESSING, "True", NEW_RS_AVAILABLE, "m".into(), t0),
        );
        assert!(
            !timed_out(&d, &ok, at("2024-01-02T00:00:00Z")),
            "a completed rollout"
        );
    }
}
