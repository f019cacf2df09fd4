//! Scaling a Deployment that has more than one active ReplicaSet, as
//! upstream's `scale`: the replicas added or removed are shared among the
//! ReplicaSets in proportion to their sizes, so a scale in the middle of a
//! rollout neither speeds it up nor slows it down (scaling only the new
//! ReplicaSet would push an untried template; only the old ones, hold it
//! back).

use std::cmp::Ordering;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};

use super::replicasets as rsu;
use super::spec;
use super::sync::Syncer;
use super::Error;

/// Upstream's `getReplicaSetFraction`: how many replicas `rs` gains (or
/// loses) when the Deployment goes to its current size, in proportion to
/// the size it was scaled for (`max-replicas`, else the Deployment's
/// current replica count).
fn fraction(rs: &ReplicaSet, d: &Deployment) -> i32 {
    let size = rsu::replicas(rs);
    if spec::replicas(d) == 0 {
        return -size;
    }
    let target = spec::replicas(d) + spec::max_surge(d);
    let annotated = rsu::max_replicas_annotation(rs)
        .unwrap_or_else(|| d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0));
    if annotated <= 0 {
        // Nothing to be proportional to (upstream never scales from zero).
        return 0;
    }
    let scaled = f64::from(size) * f64::from(target) / f64::from(annotated);
    // Go's math.Round: halves away from zero, as f64::round.
    (scaled.round() as i32).saturating_sub(size)
}

/// Upstream's `GetProportion`: the fraction, bounded by what is left of
/// `to_add` after `added` went to earlier ReplicaSets.
pub fn proportion(rs: &ReplicaSet, d: &Deployment, to_add: i32, added: i32) -> i32 {
    if rsu::replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let f = fraction(rs, d);
    let allowed = to_add - added;
    if to_add > 0 {
        f.min(allowed)
    } else {
        f.max(allowed)
    }
}

/// What scaling does: each ReplicaSet's new size, in the order to write
/// them, and the direction for the Events.
#[derive(Debug, PartialEq)]
pub struct Plan {
    pub sizes: Vec<(ReplicaSet, i32)>,
    pub op: &'static str,
}

/// The proportional plan over the active ReplicaSets (`active`, new and old
/// alike): `replicas + maxSurge` pods in all (none when scaling to zero),
/// the difference shared out largest first (newer first when growing,
/// older first when shrinking), the rounding leftover to the first.
pub fn plan(d: &Deployment, mut active: Vec<ReplicaSet>) -> Plan {
    let total = rsu::sum_replicas(active.iter());
    let allowed = if spec::replicas(d) > 0 {
        spec::replicas(d) + spec::max_surge(d)
    } else {
        0
    };
    let to_add = allowed - total;
    let op = match to_add.cmp(&0) {
        Ordering::Greater => {
            active.sort_by(rsu::by_size_newer);
            "up"
        }
        Ordering::Less => {
            active.sort_by(rsu::by_size_older);
            "down"
        }
        Ordering::Equal => "",
    };
    let mut added = 0;
    let mut sizes: Vec<(ReplicaSet, i32)> = active
        .into_iter()
        .map(|rs| {
            let p = proportion(&rs, d, to_add, added);
            added += p;
            let size = rsu::replicas(&rs) + p;
            (rs, size)
        })
        .collect();
    if to_add != 0 {
        if let Some(first) = sizes.first_mut() {
            first.1 = (first.1 + to_add - added).max(0);
        }
    }
    Plan { sizes, op }
}

impl Syncer<'_> {
    /// Upstream's `scale`.
    pub async fn scale(
        &mut self,
        new: Option<&ReplicaSet>,
        old: &[ReplicaSet],
    ) -> Result<(), Error> {
        let want = spec::replicas(&self.d);
        // One active ReplicaSet (or none): it takes the whole count.
        if let Some(rs) = rsu::active_or_latest(new, old) {
            if rsu::replicas(rs) != want {
                let rs = rs.clone();
                self.scale_rs_to(&rs, want).await?;
            }
            return Ok(());
        }
        // A saturated new ReplicaSet: the old ones go (e.g. after adopting
        // old ReplicaSets next to a finished rollout).
        if rsu::is_saturated(&self.d, new) {
            for rs in old.iter().filter(|rs| rsu::is_active(rs)) {
                self.scale_rs_to(rs, 0).await?;
            }
            return Ok(());
        }
        if !spec::is_rolling(&self.d) {
            return Ok(());
        }
        let active: Vec<ReplicaSet> = old
            .iter()
            .chain(new)
            .filter(|rs| rsu::is_active(rs))
            .cloned()
            .collect();
        let plan = plan(&self.d, active);
        for (rs, size) in plan.sizes {
            // Written even at the same size: the replica annotations record
            // the Deployment size this ReplicaSet is now proportioned to.
            self.scale_rs(&rs, size, plan.op).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::replicasets::tests::{deployment, rs};
    use super::super::replicasets::MAX_REPLICAS;
    use super::*;
    use serde_json::json;

    fn d(replicas: i32, surge: i32, unavailable: i32) -> Deployment {
        deployment(move |v| {
            v["spec"]["replicas"] = json!(replicas);
            v["spec"]["strategy"] = json!({"type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}});
        })
    }

    fn sized(name: &str, replicas: i32, max: i32, created: &str) -> ReplicaSet {
        rs(name, replicas, created, move |v| {
            v["metadata"]["annotations"] = json!({MAX_REPLICAS: max.to_string()})
        })
    }

    fn sizes(p: &Plan) -> Vec<(&str, i32)> {
        p.sizes
            .iter()
            .map(|(rs, n)| (rs.metadata.name.as_deref().unwrap(), *n))
            .collect()
    }

    #[test]
    fn scaling_up_mid_rollout_is_proportional() {
        // 10 replicas + 3 surge, mid-rollout: old 8, new 5 (13 pods).
        let old = sized("old", 8, 13, "2024-01-01T00:00:00Z");
        let new = sized("new", 5, 13, "2024-01-02T00:00:00Z");
        // Scaled to 20 (+3 surge = 23): +10 shared 8:5.
        let p = plan(&d(20, 3, 2), vec![old.clone(), new.clone()]);
        assert_eq!(p.op, "up");
        // old: 8*23/13 = 14.15 -> 14 (+6); new: 5*23/13 = 8.85 -> 9 (+4).
        assert_eq!(sizes(&p), [("old", 14), ("new", 9)]);
        let total: i32 = p.sizes.iter().map(|(_, n)| n).sum();
        assert_eq!(total, 23);
    }

    #[test]
    fn scaling_down_mid_rollout_is_proportional() {
        let old = sized("old", 8, 13, "2024-01-01T00:00:00Z");
        let new = sized("new", 5, 13, "2024-01-02T00:00:00Z");
        // Scaled to 5 (+3 surge = 8): -5 shared 8:5.
        let p = plan(&d(5, 3, 2), vec![new.clone(), old.clone()]);
        assert_eq!(p.op, "down");
        // old: 8*8/13 = 4.92 -> 5 (-3); new: 5*8/13 = 3.08 -> 3 (-2).
        assert_eq!(sizes(&p), [("old", 5), ("new", 3)]);
        // To zero: everything goes.
        let p = plan(&d(0, 3, 2), vec![new, old]);
        assert_eq!(sizes(&p), [("old", 0), ("new", 0)]);
    }

    #[test]
    fn leftovers_go_to_the_first_and_ties_follow_the_direction() {
        // Three equal ReplicaSets sized for 3 in all; scaled to 4: +1.
        let a = sized("a", 1, 3, "2024-01-01T00:00:00Z");
        let b = sized("b", 1, 3, "2024-01-02T00:00:00Z");
        let c = sized("c", 1, 3, "2024-01-03T00:00:00Z");
        // Each fraction is round(4/3) - 1 = 0: the leftover goes to the
        // first, which when growing is the newest.
        let p = plan(&d(4, 0, 1), vec![a.clone(), b.clone(), c.clone()]);
        assert_eq!(sizes(&p), [("c", 2), ("b", 1), ("a", 1)]);
        // Shrinking to 2: round(2/3) - 1 = 0 each, the oldest loses one.
        let p = plan(&d(2, 0, 1), vec![c, b, a]);
        assert_eq!(sizes(&p), [("a", 0), ("b", 1), ("c", 1)]);
    }

    #[test]
    fn proportions_are_bounded_by_what_is_left() {
        let x = sized("x", 10, 10, "2024-01-01T00:00:00Z");
        // Doubling would add 10; only 4 are left to give.
        let dd = d(20, 0, 1);
        assert_eq!(proportion(&x, &dd, 6, 2), 4);
        assert_eq!(proportion(&x, &dd, 6, 6), 0);
        let shrink = d(5, 0, 1);
        assert_eq!(proportion(&x, &shrink, -3, 0), -3);
        // A ReplicaSet without pods is never scaled up proportionally.
        let empty = sized("e", 0, 10, "2024-01-01T00:00:00Z");
        assert_eq!(proportion(&empty, &dd, 6, 0), 0);
        // Without the annotation, the Deployment's replica count is the base.
        let bare = rs("b", 5, "2024-01-01T00:00:00Z", |_| {});
        let mut dd2 = d(20, 0, 1);
        dd2.status = Some(serde_json::from_value(json!({"replicas": 10})).unwrap());
        assert_eq!(proportion(&bare, &dd2, 10, 0), 5);
    }
}
