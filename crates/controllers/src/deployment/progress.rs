//! The `Progressing` condition during a rollout (upstream's
//! `syncRolloutStatus`), the paused/resumed conditions, and when to look
//! again for a missed deadline. Pure functions.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::replicasets as rsu;
use super::spec;
use super::status::{self, get, PROGRESSING};

/// What the Deployment is named by in the messages: its new ReplicaSet if
/// there is one.
fn subject(d: &Deployment, new: Option<&ReplicaSet>) -> String {
    match new {
        Some(rs) => format!("ReplicaSet {:?}", rs.metadata.name.as_deref().unwrap_or("")),
        None => format!("Deployment {:?}", d.metadata.name.as_deref().unwrap_or("")),
    }
}

/// The status after a rollout step: [`status::calculate`], then the
/// `Progressing` condition (complete, progressing, or timed out) when a
/// deadline is set, then the `ReplicaFailure` of the ReplicaSets.
pub fn rollout_status(
    all: &[&ReplicaSet],
    new: Option<&ReplicaSet>,
    d: &Deployment,
    now: Timestamp,
) -> DeploymentStatus {
    let mut s = status::calculate(all, new, d, now);
    if spec::progress_deadline(d).is_none() {
        status::remove(&mut s, PROGRESSING);
    }
    let cur = get(d.status.as_ref(), PROGRESSING);
    // A finished rollout re-synced: nothing to estimate.
    let finished = s.replicas == s.updated_replicas
        && cur.is_some_and(|c| c.reason.as_deref() == Some(status::NEW_RS_AVAILABLE));
    if spec::progress_deadline(d).is_some() && !finished {
        if status::complete(d, &s) {
            let msg = format!("{} has successfully progressed.", subject(d, new));
            status::set(
                &mut s,
                status::condition(PROGRESSING, "True", status::NEW_RS_AVAILABLE, msg, now),
            );
        } else if status::progressing(d, &s) {
            // Progress refreshes the update time even with the same reason:
            // it is what the deadline counts from.
            let msg = format!("{} is progressing.", subject(d, new));
            let mut c =
                status::condition(PROGRESSING, "True", status::REPLICASET_UPDATED, msg, now);
            if let Some(cur) = cur {
                if cur.status.as_deref() == Some("True") {
                    c.last_transition_time = cur.last_transition_time.clone();
                }
                status::remove(&mut s, PROGRESSING);
            }
            status::set(&mut s, c);
        } else if status::timed_out(d, &s, now) {
            let msg = format!("{} has timed out progressing.", subject(d, new));
            status::set(
                &mut s,
                status::condition(PROGRESSING, "False", status::TIMED_OUT, msg, now),
            );
        }
    }
    // The new ReplicaSet's failure first, else any old one's.
    let failure = new
        .into_iter()
        .chain(all.iter().copied())
        .flat_map(|rs| rs.status.iter().flat_map(|s| s.conditions.iter().flatten()))
        .find(|c| c.type_.as_deref() == Some(status::REPLICA_FAILURE));
    match failure {
        Some(c) => status::set(&mut s, status::from_replicaset(c)),
        None => status::remove(&mut s, status::REPLICA_FAILURE),
    }
    s
}

/// Upstream's `requeueStuckDeployment`: when a rollout without progress
/// should be looked at again to notice its deadline passing.
pub fn recheck_in(d: &Deployment, new: &DeploymentStatus, now: Timestamp) -> Option<Duration> {
    let deadline = spec::progress_deadline(d)?;
    let cur = get(d.status.as_ref(), PROGRESSING)?;
    if status::complete(d, new) || cur.reason.as_deref() == Some(status::TIMED_OUT) {
        return None;
    }
    let from = cur.last_update_time.as_ref()?.0;
    let after = (from + SignedDuration::from_secs(i64::from(deadline))).duration_since(now);
    // A second more against clock skew, as upstream; at once if overdue.
    Some(match Duration::try_from(after) {
        Ok(a) if a >= Duration::from_secs(1) => a + Duration::from_secs(1),
        _ => Duration::from_secs(1),
    })
}

/// Upstream's `checkPausedConditions`: the `Progressing` condition to set
/// when the Deployment was just paused or resumed, so the time spent
/// paused never counts towards the deadline.
pub fn paused_condition(d: &Deployment, now: Timestamp) -> Option<DeploymentStatus> {
    spec::progress_deadline(d)?;
    let cur = get(d.status.as_ref(), PROGRESSING);
    let reason = cur.and_then(|c| c.reason.as_deref());
    if reason == Some(status::TIMED_OUT) {
        // A reported timeout is not overwritten.
        return None;
    }
    let paused_shown = reason == Some(status::PAUSED);
    let c = match (spec::paused(d), paused_shown) {
        (true, false) => status::condition(
            PROGRESSING,
            "Unknown",
            status::PAUSED,
            "Deployment is paused".into(),
            now,
        ),
        (false, true) => status::condition(
            PROGRESSING,
            "Unknown",
            status::RESUMED,
            "Deployment is resumed".into(),
            now,
        ),
        _ => return None,
    };
    let mut s = d.status.clone().unwrap_or_default();
    status::set(&mut s, c);
    Some(s)
}

/// Upstream's `isScalingEvent`: an active ReplicaSet was last sized for a
/// different `spec.replicas` than the Deployment's.
pub fn is_scaling_event(d: &Deployment, all: &[&ReplicaSet]) -> bool {
    all.iter()
        .filter(|rs| rsu::is_active(rs))
        .filter_map(|rs| rsu::desired_replicas_annotation(rs))
        .any(|desired| desired != spec::replicas(d))
}

#[cfg(test)]
mod tests {
    use super::super::replicasets::tests::{deployment, rs};
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn progressing_reason(s: &DeploymentStatus) -> (Option<&str>, Option<&str>) {
        let c = get(Some(s), PROGRESSING).unwrap();
        (c.status.as_deref(), c.reason.as_deref())
    }

    #[test]
    fn a_rollout_progresses_completes_or_times_out() {
        let t0 = at("2024-01-01T00:00:00Z");
        let d = deployment(|v| {
            v["spec"]["replicas"] = json!(2);
            v["spec"]["progressDeadlineSeconds"] = json!(5);
            v["status"] = json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
                "conditions": [{"type": "Progressing", "status": "True", "reason": "NewReplicaSetCreated",
                    "message": "Created new replica set \"web-1\"",
                    "lastUpdateTime": "2024-01-01T00:00:00Z", "lastTransitionTime": "2024-01-01T00:00:00Z"}]});
        });
        // One more pod updated: progressing, refreshed now.
        let new = rs("web-1", 2, "2024-01-01T00:00:00Z", |v| {
            v["status"]["replicas"] = json!(2)
        });
        let t1 = at("2024-01-01T00:00:03Z");
        let s = rollout_status(&[&new], Some(&new), &d, t1);
        assert_eq!(
            progressing_reason(&s),
            (Some("True"), Some(status::REPLICASET_UPDATED))
        );
        let c = get(Some(&s), PROGRESSING).unwrap();
        assert_eq!(
            c.message.as_deref(),
            Some("ReplicaSet \"web-1\" is progressing.")
        );
        assert_eq!(c.last_update_time.as_ref().unwrap().0, t1);
        assert_eq!(c.last_transition_time.as_ref().unwrap().0, t0);

        // Nothing changes and the deadline passes: timed out.
        let same = rs("web-1", 2, "2024-01-01T00:00:00Z", |v| {
            v["status"]["replicas"] = json!(1)
        });
        let s = rollout_status(&[&same], Some(&same), &d, at("2024-01-01T00:00:04Z"));
        assert_eq!(
            progressing_reason(&s),
            (Some("True"), Some(status::NEW_REPLICASET))
        );
        assert_eq!(
            recheck_in(&d, &s, at("2024-01-01T00:00:04Z")),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            recheck_in(&d, &s, at("2024-01-01T00:00:09Z")),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            recheck_in(&d, &s, at("2024-01-01T00:00:01Z")),
            Some(Duration::from_secs(5))
        );
        let s = rollout_status(&[&same], Some(&same), &d, at("2024-01-01T00:00:06Z"));
        assert_eq!(
            progressing_reason(&s),
            (Some("False"), Some(status::TIMED_OUT))
        );
        assert_eq!(
            get(Some(&s), PROGRESSING).unwrap().message.as_deref(),
            Some("ReplicaSet \"web-1\" has timed out progressing.")
        );

        // All updated and available: complete.
        let done = rs(
            "web-1",
            2,
            "2024-01-01T00:00:00Z",
            |v| v["status"] = json!({"replicas": 2, "availableReplicas": 2, "readyReplicas": 2, "observedGeneration": 1}),
        );
        let s = rollout_status(&[&done], Some(&done), &d, t1);
        assert_eq!(
            progressing_reason(&s),
            (Some("True"), Some(status::NEW_RS_AVAILABLE))
        );
        assert_eq!(recheck_in(&d, &s, t1), None);
        assert_eq!(
            get(Some(&s), status::AVAILABLE).unwrap().status.as_deref(),
            Some("True")
        );
    }

    #[test]
    fn without_a_deadline_there_is_no_progressing_condition() {
        let d = deployment(|v| {
            v["status"] = json!({"conditions": [{"type": "Progressing", "status": "True", "reason": "NewReplicaSetCreated"}]});
        });
        let new = rs("web-1", 2, "2024-01-01T00:00:00Z", |_| {});
        let s = rollout_status(&[&new], Some(&new), &d, at("2024-01-01T00:00:00Z"));
        assert!(get(Some(&s), PROGRESSING).is_none());
        assert_eq!(recheck_in(&d, &s, at("2024-01-01T00:00:00Z")), None);
    }

    #[test]
    fn replicaset_failures_are_surfaced_new_first() {
        let d = deployment(|_| {});
        let fail = |msg: &str| {
            let m = msg.to_string();
            move |v: &mut serde_json::Value| {
                v["status"]["conditions"] = json!([{"type": "ReplicaFailure", "status": "True",
                    "reason": "FailedCreate", "message": m}])
            }
        };
        let old = rs("old", 1, "2024-01-01T00:00:00Z", fail("old quota"));
        let new = rs("new", 1, "2024-01-02T00:00:00Z", fail("new quota"));
        let s = rollout_status(&[&old, &new], Some(&new), &d, at("2024-01-03T00:00:00Z"));
        let c = get(Some(&s), status::REPLICA_FAILURE).unwrap();
        assert_eq!(c.message.as_deref(), Some("new quota"));
        let ok = rs("new", 1, "2024-01-02T00:00:00Z", |_| {});
        let s = rollout_status(&[&old, &ok], Some(&ok), &d, at("2024-01-03T00:00:00Z"));
        assert_eq!(
            get(Some(&s), status::REPLICA_FAILURE)
                .unwrap()
                .message
                .as_deref(),
            Some("old quota")
        );
        let mut d2 = d.clone();
        d2.status = Some(s);
        let s = rollout_status(&[&ok], Some(&ok), &d2, at("2024-01-03T00:00:00Z"));
        assert!(get(Some(&s), status::REPLICA_FAILURE).is_none());
    }

    #[test]
    fn pausing_and_resuming_set_an_unknown_progressing_condition() {
        let t = at("2024-01-01T00:00:00Z");
        let mut d = deployment(|v| {
            v["spec"]["progressDeadlineSeconds"] = json!(600);
            v["spec"]["paused"] = json!(true);
        });
        let s = paused_condition(&d, t).unwrap();
        assert_eq!(
            progressing_reason(&s),
            (Some("Unknown"), Some(status::PAUSED))
        );
        assert_eq!(
            get(Some(&s), PROGRESSING).unwrap().message.as_deref(),
            Some("Deployment is paused")
        );
        d.status = Some(s);
        assert!(paused_condition(&d, t).is_none(), "already shown");
        d.spec.paused = Some(false);
        let s = paused_condition(&d, t).unwrap();
        assert_eq!(
            progressing_reason(&s),
            (Some("Unknown"), Some(status::RESUMED))
        );
        // A timeout stays; no deadline, no condition.
        let mut timed = d.clone();
        timed.status = Some(DeploymentStatus::default());
        status::set(
            timed.status.as_mut().unwrap(),
            status::condition(PROGRESSING, "False", status::TIMED_OUT, "x".into(), t),
        );
        timed.spec.paused = Some(true);
        assert!(paused_condition(&timed, t).is_none());
        d.spec.progress_deadline_seconds = None;
        d.spec.paused = Some(true);
        assert!(paused_condition(&d, t).is_none());
    }

    #[test]
    fn scaling_events_are_seen_in_the_desired_replicas_annotation() {
        let d = deployment(|_| {});
        let sized = |n: &str, replicas: i32| {
            let n = n.to_string();
            rs("a", replicas, "2024-01-01T00:00:00Z", move |v| {
                v["metadata"]["annotations"] = json!({rsu::DESIRED_REPLICAS: n})
            })
        };
        assert!(!is_scaling_event(&d, &[&sized("10", 3)]));
        assert!(is_scaling_event(&d, &[&sized("8", 3)]));
        // Inactive ReplicaSets and missing annotations do not count.
        assert!(!is_scaling_event(&d, &[&sized("8", 0)]));
        assert!(!is_scaling_event(
            &d,
            &[&rs("b", 3, "2024-01-01T00:00:00Z", |_| {})]
        ));
    }
}
