//! Recreate, as upstream's `recreate.go`: scale every old ReplicaSet to
//! zero, wait until none of their pods runs, then create (or scale up) the
//! new ReplicaSet. The new one is not even created before, so no new pod
//! ever runs next to an old one.

use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;

use super::replicasets as rsu;
use super::spec;
use super::status;
use super::sync::Syncer;
use super::Error;

/// Whether pods of the old ReplicaSets may still run: one still counts
/// active or terminating pods, or has not yet observed being scaled down.
///
/// Upstream looks at the pods themselves unless a pod replacement policy
/// is set, in which case it reads these same two status fields. The
/// ReplicaSet controller computes them from its pod cache, so watching
/// every pod here as well would only double the memory.
pub fn old_pods_running(old: &[ReplicaSet]) -> bool {
    if rsu::sum_actual(old) > 0 {
        return true;
    }
    let unobserved = old
        .iter()
        .any(|rs| rs.metadata.generation.unwrap_or(0) > rsu::observed_generation(rs));
    unobserved || rsu::sum_terminating(old).is_none_or(|n| n > 0)
}

impl Syncer<'_> {
    /// One step of a Recreate rollout.
    pub async fn rollout_recreate(&mut self) -> Result<Option<Duration>, Error> {
        // Not created yet, so nothing scales up before old pods are gone.
        let (new, old) = self.new_and_old(false).await?;
        let mut scaled_down = false;
        for rs in old.iter().filter(|rs| rsu::is_active(rs)) {
            scaled_down |= self.scale_rs_to(rs, 0).await?;
        }
        let old_now = self.split().1;
        if scaled_down || old_pods_running(&old_now) {
            return self.sync_rollout_status().await;
        }
        let new = match new {
            Some(rs) => rs,
            None => match self.new_and_old(true).await?.0 {
                Some(rs) => rs,
                None => return Err(Error::Invalid("no new replica set".into())),
            },
        };
        self.scale_rs_to(&new, spec::replicas(&self.d)).await?;
        if let Some(st) = self.d.status.as_ref() {
            if status::complete(&self.d, st) {
                let old = self.split().1;
                self.cleanup(&old).await?;
            }
        }
        self.sync_rollout_status().await
    }
}

#[cfg(test)]
mod tests {
    use super::super::replicasets::tests::rs;
    use super::*;
    use serde_json::json;

    #[test]
    fn old_pods_are_gone_only_when_every_old_replicaset_says_so() {
        let gone = || {
            rs(
                "a",
                0,
                "2024-01-01T00:00:00Z",
                |v| {
                    v["status"] =
                        json!({"replicas": 0, "terminatingReplicas": 0, "observedGeneration": 1})
                },
            )
        };
        assert!(!old_pods_running(&[gone(), gone()]));
        assert!(!old_pods_running(&[]));
        // Still active pods.
        let active = rs(
            "b",
            0,
            "2024-01-01T00:00:00Z",
            |v| {
                v["status"] =
                    json!({"replicas": 2, "terminatingReplicas": 0, "observedGeneration": 1})
            },
        );
        assert!(old_pods_running(&[gone(), active]));
        // Pods shutting down.
        let terminating =
            rs(
                "c",
                0,
                "2024-01-01T00:00:00Z",
                |v| {
                    v["status"] =
                        json!({"replicas": 0, "terminatingReplicas": 1, "observedGeneration": 1})
                },
            );
        assert!(old_pods_running(&[terminating]));
        // Scaled to zero but its controller has not acted on it yet.
        let unobserved = rs("d", 0, "2024-01-01T00:00:00Z", |v| {
            v["metadata"]["generation"] = json!(2);
            v["status"] = json!({"replicas": 0, "terminatingReplicas": 0, "observedGeneration": 1})
        });
        assert!(old_pods_running(&[unobserved]));
        // Synced without the terminating count: unknown, so wait.
        let unknown = rs("e", 0, "2024-01-01T00:00:00Z", |v| {
            v["status"] = json!({"replicas": 0, "observedGeneration": 1})
        });
        assert!(old_pods_running(&[unknown]));
    }
}
