//! The revision history: old ReplicaSets beyond `revisionHistoryLimit` are
//! deleted (upstream's `cleanupDeployment`), and the deprecated rollback
//! annotation (`spec.rollbackTo` of the old API groups) puts an old
//! revision's template back (upstream's `rollback.go`). `kubectl rollout
//! undo` does the same on the client side: it patches the template and the
//! annotations from the old ReplicaSet, the way [`rollback_template`] and
//! [`rollback_annotations`] compute them.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;

use super::hash::{equal_ignore_hash, HASH_LABEL};
use super::replicasets::{self as rsu, skip_copy, ROLLBACK_TO};
use super::spec;
use super::sync::Syncer;
use super::Error;

/// The old ReplicaSets to delete, oldest revision first: those beyond the
/// limit that run nothing, are not being deleted, and whose controller saw
/// them scaled down.
pub fn cleanup_victims<'a>(d: &Deployment, old: &'a [ReplicaSet]) -> Vec<&'a ReplicaSet> {
    let Some(limit) = spec::revision_history_limit(d) else {
        return Vec::new();
    };
    let mut alive: Vec<&ReplicaSet> = old
        .iter()
        .filter(|rs| rs.metadata.deletion_timestamp.is_none())
        .collect();
    let diff = alive.len() as i64 - i64::from(limit);
    if diff <= 0 {
        return Vec::new();
    }
    alive.sort_by(|a, b| rsu::by_revision(a, b));
    alive
        .into_iter()
        .take(diff as usize)
        .filter(|rs| {
            rsu::actual(rs) == 0
                && rsu::replicas(rs) == 0
                && rs.metadata.generation.unwrap_or(0) <= rsu::observed_generation(rs)
        })
        .collect()
}

/// The revision the deprecated rollback annotation asks for (0: the
/// previous one); an unparsable value is ignored, as upstream.
pub fn rollback_to(d: &Deployment) -> Option<i64> {
    d.metadata
        .annotations
        .as_ref()?
        .get(ROLLBACK_TO)
        .filter(|v| !v.is_empty())?
        .parse()
        .ok()
}

/// The template a rollback to `rs` puts in the Deployment: the
/// ReplicaSet's, without the hash label.
pub fn rollback_template(rs: &ReplicaSet) -> PodTemplateSpec {
    let mut t = rs.spec.template.clone().unwrap_or_default();
    if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(HASH_LABEL);
    }
    t
}

/// The annotations after a rollback to `rs`: the Deployment keeps its own
/// controller-managed ones and takes every other from the ReplicaSet
/// (e.g. `kubernetes.io/change-cause`), so the revision it becomes again
/// describes itself.
pub fn rollback_annotations(d: &Deployment, rs: &ReplicaSet) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = d
        .metadata
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| skip_copy(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in rs.metadata.annotations.iter().flatten() {
        if !skip_copy(k) {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

impl Syncer<'_> {
    /// Delete old ReplicaSets beyond the history limit.
    pub async fn cleanup(&mut self, old: &[ReplicaSet]) -> Result<(), Error> {
        let victims: Vec<ReplicaSet> = cleanup_victims(&self.d, old).into_iter().cloned().collect();
        for rs in victims {
            tracing::debug!(deployment = %self.name(), replicaset = ?rs.metadata.name, "cleaning up an old revision");
            // Stop at the first failure rather than hammer a struggling server.
            self.delete_rs(&rs).await?;
        }
        Ok(())
    }

    /// The deprecated rollback: find the revision, put its template back
    /// (unless it is the current one), and clear the annotation.
    pub async fn rollback(&mut self, to: i64) -> Result<(), Error> {
        let (new, old) = self.new_and_old(true).await?;
        let all: Vec<&ReplicaSet> = old.iter().chain(new.as_ref()).collect();
        let to = if to == 0 {
            rsu::last_revision(all.iter().copied())
        } else {
            to
        };
        let mut d = self.d.clone();
        if let Some(a) = d.metadata.annotations.as_mut() {
            a.remove(ROLLBACK_TO);
        }
        if to == 0 {
            self.event(
                "Warning",
                "DeploymentRollbackRevisionNotFound",
                "Unable to find last revision.".into(),
            );
            return self.write_deployment(d).await;
        }
        let Some(target) = all.iter().find(|rs| rsu::revision(rs).ok() == Some(to)) else {
            self.event(
                "Warning",
                "DeploymentRollbackRevisionNotFound",
                "Unable to find the revision to rollback to.".into(),
            );
            return self.write_deployment(d).await;
        };
        let template = rollback_template(target);
        let current = d.spec.template.clone();
        if equal_ignore_hash(&template, &current) {
            self.event(
                "Warning",
                "DeploymentRollbackTemplateUnchanged",
                format!(
                    "The rollback revision contains the same template as current deployment {:?}",
                    self.name()
                ),
            );
            return self.write_deployment(d).await;
        }
        let annotations = rollback_annotations(&d, target);
        d.metadata.annotations = Some(annotations);
        d.spec.template = template;
        self.write_deployment(d).await?;
        self.event(
            "Normal",
            "DeploymentRollback",
            format!("Rolled back deployment {:?} to revision {to}", self.name()),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::replicasets::tests::{deployment, rs};
    use super::super::replicasets::REVISION;
    use super::*;
    use serde_json::json;

    fn rev(name: &str, revision: &str, replicas: i32) -> ReplicaSet {
        let r = revision.to_string();
        rs(name, replicas, "2024-01-01T00:00:00Z", move |v| {
            v["metadata"]["annotations"] = json!({REVISION: r});
        })
    }

    fn names(v: &[&ReplicaSet]) -> Vec<String> {
        v.iter().map(|r| r.metadata.name.clone().unwrap()).collect()
    }

    #[test]
    fn history_beyond_the_limit_is_cleaned_oldest_first() {
        let d = deployment(|v| v["spec"]["revisionHistoryLimit"] = json!(2));
        let old = vec![
            rev("r3", "3", 0),
            rev("r1", "1", 0),
            rev("r4", "4", 0),
            rev("r2", "2", 0),
        ];
        assert_eq!(names(&cleanup_victims(&d, &old)), ["r1", "r2"]);
        // Limit 0 keeps nothing (of what can go).
        let d0 = deployment(|v| v["spec"]["revisionHistoryLimit"] = json!(0));
        assert_eq!(cleanup_victims(&d0, &old).len(), 4);
        // No limit field: nothing is cleaned.
        assert!(cleanup_victims(&deployment(|_| {}), &old).is_empty());
    }

    #[test]
    fn replicasets_still_running_or_unobserved_are_kept() {
        let d = deployment(|v| v["spec"]["revisionHistoryLimit"] = json!(0));
        let running = rev("running", "1", 2);
        let draining = rs("draining", 0, "2024-01-01T00:00:00Z", |v| {
            v["status"]["replicas"] = json!(1)
        });
        let unobserved = rs("unobserved", 0, "2024-01-01T00:00:00Z", |v| {
            v["metadata"]["generation"] = json!(3)
        });
        let dying = rs("dying", 0, "2024-01-01T00:00:00Z", |v| {
            v["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z")
        });
        let done = rev("done", "2", 0);
        let old = vec![running, draining, unobserved, dying, done];
        assert_eq!(names(&cleanup_victims(&d, &old)), ["done"]);
    }

    #[test]
    fn rollback_takes_the_template_and_annotations_of_the_revision() {
        let d = deployment(|v| {
            v["metadata"]["annotations"] = json!({REVISION: "3", "kubernetes.io/change-cause": "v3",
                "team": "x", ROLLBACK_TO: "1"})
        });
        assert_eq!(rollback_to(&d), Some(1));
        let target = rs("r1", 0, "2024-01-01T00:00:00Z", |v| {
            v["metadata"]["annotations"] = json!({REVISION: "1", "kubernetes.io/change-cause": "v1",
                rsu::DESIRED_REPLICAS: "10"})
        });
        let t = rollback_template(&target);
        let labels = t.metadata.as_ref().unwrap().labels.clone().unwrap();
        assert!(!labels.contains_key(HASH_LABEL));
        assert_eq!(labels.get("app").map(String::as_str), Some("web"));
        let a = rollback_annotations(&d, &target);
        assert_eq!(
            a.get("kubernetes.io/change-cause").map(String::as_str),
            Some("v1")
        );
        // The Deployment's own revision stays (the controller moves it);
        // its other annotations are replaced, and none of the ReplicaSet's
        // bookkeeping is taken.
        assert_eq!(a.get(REVISION).map(String::as_str), Some("3"));
        assert!(!a.contains_key("team"));
        assert!(!a.contains_key(rsu::DESIRED_REPLICAS));
        assert_eq!(a.get(ROLLBACK_TO).map(String::as_str), Some("1"));

        let bad = deployment(|v| v["metadata"]["annotations"] = json!({ROLLBACK_TO: "x"}));
        assert_eq!(rollback_to(&bad), None);
        assert_eq!(rollback_to(&deployment(|_| {})), None);
    }
}
