//! RollingUpdate, as upstream's `rolling.go`: scale the new ReplicaSet up
//! as far as `maxSurge` allows, otherwise scale old ones down as far as
//! `maxUnavailable` allows (first the pods that are not available anyway),
//! one step per sync; the ReplicaSets' status changes drive the next step.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};

use super::replicasets as rsu;
use super::spec;
use super::status;
use super::sync::Syncer;
use super::Error;

/// Upstream's `NewRSNewReplicas`: the size the new ReplicaSet may have,
/// given all ReplicaSets' sizes (`all`, the new one's included) and its
/// own (`current`). A rolling update grows it up to `replicas + maxSurge`
/// pods in all, never past `replicas`; Recreate sizes it at once.
pub fn new_rs_new_replicas(d: &Deployment, all: i32, current: i32) -> i32 {
    let want = spec::replicas(d);
    if !spec::is_rolling(d) {
        return want;
    }
    let max_total = want + spec::max_surge(d);
    if all >= max_total {
        return current;
    }
    current + (max_total - all).min(want - current)
}

/// How far old ReplicaSets go down in one step: `(index, new size)` for
/// each to change, in the order to write them. `old` are the active old
/// ReplicaSets, oldest first; `new` the new ReplicaSet.
///
/// At most `all - minAvailable - (new's unavailable pods)` go: the new
/// ReplicaSet's unavailable pods count against the budget, so a new
/// template that never becomes available stops the rollout instead of
/// eating the old pods. Within that, first the old pods that are not
/// available anyway, then available ones down to `minAvailable`.
///
/// A ReplicaSet counts at most `spec.replicas` available pods. Upstream
/// takes `status.availableReplicas` as is, which right after a scale-down
/// (a proportional one, say) still counts the pods about to go, and then
/// removes too many old pods at once; the pods its own controller is
/// deleting are not available to rely on.
pub fn plan_scale_down(d: &Deployment, old: &[&ReplicaSet], new: &ReplicaSet) -> Vec<(usize, i32)> {
    let available = |rs: &ReplicaSet| rsu::available(rs).min(rsu::replicas(rs));
    let old_count = rsu::sum_replicas(old.iter().copied());
    if old_count == 0 {
        return Vec::new();
    }
    let all_count = old_count + rsu::replicas(new);
    let min_available = spec::replicas(d) - spec::max_unavailable(d);
    let new_unavailable = rsu::replicas(new) - available(new);
    let max_scaled_down = all_count - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return Vec::new();
    }
    let mut sizes: Vec<i32> = old.iter().map(|rs| rsu::replicas(rs)).collect();
    let mut plan = Vec::new();

    // Unhealthy replicas first: removing them costs no availability.
    let mut cleaned = 0;
    for (i, rs) in old.iter().enumerate() {
        if cleaned >= max_scaled_down {
            break;
        }
        let unhealthy = sizes[i] - available(rs);
        if sizes[i] == 0 || unhealthy <= 0 {
            continue;
        }
        let n = (max_scaled_down - cleaned).min(unhealthy);
        sizes[i] -= n;
        cleaned += n;
        plan.push((i, sizes[i]));
    }

    // Then available ones, keeping minAvailable.
    let available: i32 = old.iter().map(|rs| available(rs)).sum::<i32>() + available(new);
    if available > min_available {
        let budget = available - min_available;
        let mut done = 0;
        for (i, size) in sizes.iter_mut().enumerate() {
            if done >= budget {
                break;
            }
            if *size == 0 {
                continue;
            }
            let n = (*size).min(budget - done);
            *size -= n;
            done += n;
            plan.push((i, *size));
        }
    }
    plan
}

impl Syncer<'_> {
    /// One step of a rolling update.
    pub async fn rollout_rolling(&mut self) -> Result<Option<Duration>, Error> {
        let (new, old) = self.new_and_old(true).await?;
        let Some(new) = new else {
            return Err(Error::Invalid("no new replica set".into()));
        };
        // Scale up, if we can.
        let want = spec::replicas(&self.d);
        let current = rsu::replicas(&new);
        let scaled_up = if current > want {
            self.scale_rs_to(&new, want).await?
        } else if current < want {
            let all = rsu::sum_replicas(old.iter()) + current;
            self.scale_rs_to(&new, new_rs_new_replicas(&self.d, all, current))
                .await?
        } else {
            false
        };
        if scaled_up {
            return self.sync_rollout_status().await;
        }

        // Scale down, if we can.
        let mut active: Vec<&ReplicaSet> = old.iter().filter(|rs| rsu::is_active(rs)).collect();
        active.sort_by(|a, b| rsu::by_creation(a, b));
        let plan = plan_scale_down(&self.d, &active, &new);
        let scaled_down = !plan.is_empty();
        for (i, size) in plan {
            // Re-read: the same ReplicaSet may be written twice in a plan.
            let uid = active[i].metadata.uid.clone();
            let Some(cur) = self.rs.iter().find(|r| r.metadata.uid == uid).cloned() else {
                continue;
            };
            self.scale_rs_to(&cur, size).await?;
        }
        if scaled_down {
            return self.sync_rollout_status().await;
        }

        if let Some(st) = self.d.status.as_ref() {
            if status::complete(&self.d, st) {
                self.cleanup(&old).await?;
            }
        }
        self.sync_rollout_status().await
    }
}

#[cfg(test)]
mod tests {
    use super::super::replicasets::tests::{deployment, rs};
    use super::*;
    use serde_json::json;

    fn rolling(
        replicas: i32,
        surge: serde_json::Value,
        unavailable: serde_json::Value,
    ) -> Deployment {
        deployment(move |v| {
            v["spec"]["replicas"] = json!(replicas);
            v["spec"]["strategy"] = json!({"type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}});
        })
    }

    fn sized(name: &str, replicas: i32, available: i32, created: &str) -> ReplicaSet {
        rs(name, replicas, created, move |v| {
            v["status"]["availableReplicas"] = json!(available)
        })
    }

    #[test]
    fn the_new_replicaset_grows_within_the_surge() {
        // 10 replicas, 25% surge -> 3 extra pods.
        let d = rolling(10, json!("25%"), json!("25%"));
        assert_eq!(new_rs_new_replicas(&d, 10, 0), 3);
        assert_eq!(new_rs_new_replicas(&d, 12, 2), 3);
        assert_eq!(new_rs_new_replicas(&d, 13, 3), 3, "at the limit");
        assert_eq!(new_rs_new_replicas(&d, 14, 3), 3, "over the limit: stays");
        assert_eq!(new_rs_new_replicas(&d, 9, 9), 10, "never past replicas");
        // Surge rounds up: 1% of 10 is one pod.
        let d = rolling(10, json!("1%"), json!(0));
        assert_eq!(new_rs_new_replicas(&d, 10, 0), 1);
        // No surge: only what scaling down freed.
        let d = rolling(10, json!(0), json!(2));
        assert_eq!(new_rs_new_replicas(&d, 10, 0), 0);
        assert_eq!(new_rs_new_replicas(&d, 8, 0), 2);
        let d = deployment(|v| v["spec"]["strategy"] = json!({"type": "Recreate"}));
        assert_eq!(new_rs_new_replicas(&d, 40, 0), 10);
    }

    #[test]
    fn old_replicasets_shrink_within_max_unavailable() {
        // 10 replicas, maxUnavailable 25% -> 2 (rounded down); min 8 available.
        let d = rolling(10, json!("25%"), json!("25%"));
        let old = sized("old", 10, 10, "2024-01-01T00:00:00Z");
        // The new ReplicaSet has surged to 3, none available yet: 13 - 8 - 3 = 2.
        let new = sized("new", 3, 0, "2024-01-02T00:00:00Z");
        assert_eq!(plan_scale_down(&d, &[&old], &new), [(0, 8)]);
        // Its pods became available: 13 pods, 13 available -> down to 5.
        let new = sized("new", 3, 3, "2024-01-02T00:00:00Z");
        assert_eq!(plan_scale_down(&d, &[&old], &new), [(0, 5)]);
        // New pods never become available: nothing more goes.
        let old8 = sized("old", 8, 8, "2024-01-01T00:00:00Z");
        let stuck = sized("new", 5, 0, "2024-01-02T00:00:00Z");
        assert!(plan_scale_down(&d, &[&old8], &stuck).is_empty());
        // No old pods: nothing.
        let empty = sized("old", 0, 0, "2024-01-01T00:00:00Z");
        assert!(plan_scale_down(&d, &[&empty], &new).is_empty());
    }

    #[test]
    fn unhealthy_old_pods_go_first_oldest_replicaset_first() {
        let d = rolling(10, json!(3), json!(2));
        // Two old ReplicaSets, the older with 2 unavailable pods.
        let a = sized("a", 5, 3, "2024-01-01T00:00:00Z");
        let b = sized("b", 5, 5, "2024-01-02T00:00:00Z");
        let new = sized("new", 3, 3, "2024-01-03T00:00:00Z");
        // 13 pods, min 8, new all available: may remove 5. The 2 unhealthy
        // ones first (a: 5 -> 3), then available ones while 11 available > 8:
        // 3 more from the oldest (a: 3 -> 0).
        assert_eq!(plan_scale_down(&d, &[&a, &b], &new), [(0, 3), (0, 0)]);
        // With fewer available overall the second step stops at minAvailable.
        let new0 = sized("new", 3, 0, "2024-01-03T00:00:00Z");
        // 13 - 8 - 3 = 2: exactly the 2 unhealthy; then 8 available = min: stop.
        assert_eq!(plan_scale_down(&d, &[&a, &b], &new0), [(0, 3)]);
    }

    #[test]
    fn pods_being_removed_are_not_counted_available() {
        let d = rolling(5, json!(3), json!(2));
        // Just scaled from 14 to 5: its status still shows 8 available.
        let old = sized("old", 5, 8, "2024-01-01T00:00:00Z");
        let new = sized("new", 3, 0, "2024-01-02T00:00:00Z");
        // 8 pods, min 3, 3 new unavailable: 2 may go, and only 5 of the
        // old pods will remain to count, so 2 go (not all 5).
        assert_eq!(plan_scale_down(&d, &[&old], &new), [(0, 3)]);
    }

    #[test]
    fn zero_surge_and_zero_unavailable_rounding_still_progresses() {
        // 3 replicas, maxSurge 0, maxUnavailable 10% -> rounds to 0, then 1.
        let d = rolling(3, json!(0), json!("10%"));
        assert_eq!(spec::max_unavailable(&d), 1);
        let old = sized("old", 3, 3, "2024-01-01T00:00:00Z");
        let new = sized("new", 0, 0, "2024-01-02T00:00:00Z");
        assert_eq!(new_rs_new_replicas(&d, 3, 0), 0);
        assert_eq!(plan_scale_down(&d, &[&old], &new), [(0, 2)]);
        assert_eq!(new_rs_new_replicas(&d, 2, 0), 1);
    }
}
