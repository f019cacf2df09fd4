//! The new ReplicaSet and the revisions, as upstream's
//! `getAllReplicaSetsAndSyncRevision`/`getNewReplicaSet`: the ReplicaSet
//! whose template is the Deployment's gets the next revision (a rollback
//! moves an old one forward, its former revision kept in
//! `revision-history`), the Deployment gets its revision annotation, and,
//! when asked, a missing new ReplicaSet is created under a name made of the
//! template hash, so a retried creation is recognised instead of repeated.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
use kube::api::{ObjectMeta, PostParams};
use kube::ResourceExt;

use super::hash::{equal_ignore_hash, template_hash, HASH_LABEL};
use super::replicasets::{self as rsu, MAX_REVISION_HISTORY_CHARS, REVISION};
use super::rolling::new_rs_new_replicas;
use super::spec;
use super::status::{self, PROGRESSING};
use super::sync::Syncer;
use super::Error;
use crate::cache::controller_uid;

/// The longest object name (a DNS subdomain).
const MAX_NAME: usize = 253;

/// `<deployment>-<hash>`, the Deployment's name cut so the whole fits.
pub fn replicaset_name(deployment: &str, hash: &str) -> String {
    let max = MAX_NAME - 1 - hash.len();
    let base = match deployment.char_indices().nth(max) {
        Some((i, _)) => &deployment[..i],
        None => deployment,
    };
    format!("{base}-{hash}")
}

/// The new ReplicaSet for the Deployment's template: the template and the
/// selector carry the hash label, its labels are the template's, and the
/// Deployment is its controller. Replicas and annotations are set apart.
pub fn build(d: &Deployment, hash: &str) -> ReplicaSet {
    let spec = d.spec.clone();
    let mut template = spec.template;
    let meta = template.metadata.get_or_insert_with(Default::default);
    let labels = meta.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(HASH_LABEL.into(), hash.into());
    let labels = labels.clone();
    let mut selector: LabelSelector = spec.selector;
    selector
        .match_labels
        .get_or_insert_with(BTreeMap::new)
        .insert(HASH_LABEL.into(), hash.into());
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(replicaset_name(&d.name_any(), hash)),
            namespace: d.namespace(),
            owner_references: Some(vec![OwnerReference {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                name: d.name_any(),
                uid: d.uid().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        spec: ReplicaSetSpec {
            replicas: Some(0),
            min_ready_seconds: spec.min_ready_seconds,
            selector,
            template: Some(template),
        },
        status: None,
    }
}

/// Set the Deployment's revision annotation; whether it changed.
fn set_revision(d: &mut Deployment, revision: &str) -> bool {
    let ann = d.metadata.annotations.get_or_insert_with(BTreeMap::new);
    if ann.get(REVISION).map(String::as_str) == Some(revision) {
        return false;
    }
    ann.insert(REVISION.into(), revision.into());
    true
}

impl Syncer<'_> {
    /// The new ReplicaSet (created if `create` and missing) and the old
    /// ones, with the revisions brought up to date.
    pub async fn new_and_old(
        &mut self,
        create: bool,
    ) -> Result<(Option<ReplicaSet>, Vec<ReplicaSet>), Error> {
        let (existing, old) = self.split();
        let new_revision = rsu::max_revision(&old) + 1;
        if let Some(rs) = existing {
            return Ok((Some(self.sync_existing(rs, new_revision).await?), old));
        }
        if !create {
            return Ok((None, old));
        }
        let created = self.create_new(&old, new_revision).await?;
        Ok((Some(created), old))
    }

    /// The new ReplicaSet exists: bring its annotations and
    /// `minReadySeconds` up to date, else the Deployment's revision and
    /// `Progressing` condition.
    async fn sync_existing(
        &mut self,
        rs: ReplicaSet,
        new_revision: i64,
    ) -> Result<ReplicaSet, Error> {
        let mut copy = rs.clone();
        let annotated = rsu::set_new_rs_annotations(
            &self.d,
            &mut copy,
            new_revision,
            true,
            MAX_REVISION_HISTORY_CHARS,
        );
        let min_ready = spec::min_ready_seconds(&self.d);
        let spec = &mut copy.spec;
        let min_ready_differs = spec.min_ready_seconds.unwrap_or(0) != min_ready;
        if annotated || min_ready_differs {
            if min_ready_differs {
                spec.min_ready_seconds = Some(min_ready);
            }
            // The Deployment's revision follows on the next sync.
            return self.update_rs(copy).await;
        }
        let revision = copy
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION))
            .cloned()
            .unwrap_or_default();
        let mut needs_update = set_revision(&mut self.d, &revision);
        let mut st = self.d.status.clone().unwrap_or_default();
        // Someone just started caring about progress: count from now.
        if spec::progress_deadline(&self.d).is_some()
            && status::get(Some(&st), PROGRESSING).is_none()
        {
            let msg = format!("Found new replica set {:?}", copy.name_any());
            status::set(
                &mut st,
                status::condition(
                    PROGRESSING,
                    "True",
                    status::FOUND_NEW_RS,
                    msg,
                    status::now(),
                ),
            );
            needs_update = true;
        }
        if needs_update {
            self.write_status(st).await?;
        }
        Ok(copy)
    }

    /// Create the new ReplicaSet, or find the one an earlier try created.
    async fn create_new(
        &mut self,
        old: &[ReplicaSet],
        new_revision: i64,
    ) -> Result<ReplicaSet, Error> {
        let template = self.d.spec.template.clone();
        let collisions = self.d.status.as_ref().and_then(|s| s.collision_count);
        let hash = template_hash(&template, collisions);
        let mut rs = build(&self.d, &hash);
        let want = new_rs_new_replicas(&self.d, rsu::sum_replicas(old), 0);
        rs.spec.replicas = Some(want);
        rsu::set_new_rs_annotations(
            &self.d,
            &mut rs,
            new_revision,
            false,
            MAX_REVISION_HISTORY_CHARS,
        );
        let name = rs.name_any();
        let (created, already) = match self.rs_api().create(&PostParams::default(), &rs).await {
            Ok(c) => (c, false),
            Err(e) => {
                let e = Error::from(e);
                if e.already_exists() {
                    (self.existing_or_collision(&name, &template, e).await?, true)
                } else if e.namespace_terminating() {
                    return Err(e);
                } else {
                    let msg = format!("Failed to create new replica set {name:?}: {e}");
                    if spec::progress_deadline(&self.d).is_some() {
                        let mut st = self.d.status.clone().unwrap_or_default();
                        status::set(
                            &mut st,
                            status::condition(
                                PROGRESSING,
                                "False",
                                status::FAILED_RS_CREATE,
                                msg.clone(),
                                status::now(),
                            ),
                        );
                        // The creation error is the one to report.
                        let _ = self.write_status(st).await;
                    }
                    self.event("Warning", status::FAILED_RS_CREATE, msg);
                    return Err(e);
                }
            }
        };
        let created = self.remember(created);
        if !already && want > 0 {
            self.event(
                "Normal",
                "ScalingReplicaSet",
                format!("Scaled up replica set {name} from 0 to {want}"),
            );
        }
        let mut needs_update = set_revision(&mut self.d, &new_revision.to_string());
        let mut st = self.d.status.clone().unwrap_or_default();
        if !already && spec::progress_deadline(&self.d).is_some() {
            let msg = format!("Created new replica set {name:?}");
            status::set(
                &mut st,
                status::condition(
                    PROGRESSING,
                    "True",
                    status::NEW_REPLICASET,
                    msg,
                    status::now(),
                ),
            );
            needs_update = true;
        }
        if needs_update {
            self.write_status(st).await?;
        }
        Ok(created)
    }

    /// A ReplicaSet of that name exists: ours from an earlier try if the
    /// Deployment controls it and the template is the same; else a hash
    /// collision, counted in `status.collisionCount` so the next try hashes
    /// differently.
    async fn existing_or_collision(
        &mut self,
        name: &str,
        template: &k8s_openapi::api::core::v1::PodTemplateSpec,
        err: Error,
    ) -> Result<ReplicaSet, Error> {
        // Not in the cache yet: the retry will see it.
        let rs = self
            .ctx
            .replicasets
            .get(&self.namespace(), name)
            .ok_or(err)?;
        let same_template = rs
            .spec
            .template
            .as_ref()
            .is_some_and(|t| equal_ignore_hash(t, template));
        let ours = controller_uid(rs.as_ref()) == self.d.metadata.uid.as_deref();
        if ours && same_template {
            return Ok((*rs).clone());
        }
        let mut st = self.d.status.clone().unwrap_or_default();
        let before = st.collision_count.unwrap_or(0);
        st.collision_count = Some(before.saturating_add(1));
        self.write_status(st).await?;
        tracing::info!(deployment = %self.name(), collision_count = before + 1, "hash collision; bumped collisionCount");
        Err(Error::Invalid(format!(
            "replicaset {name:?} exists and is not the new replica set of deployment {:?}",
            self.name()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::super::replicasets::tests::deployment;
    use super::*;
    use serde_json::json;

    #[test]
    fn the_new_replicaset_carries_the_hash() {
        let d = deployment(|v| {
            v["spec"]["minReadySeconds"] = json!(3);
            v["spec"]["selector"]["matchExpressions"] =
                json!([{"key": "tier", "operator": "Exists"}]);
        });
        let rs = build(&d, "abc12");
        let v = serde_json::to_value(&rs).unwrap();
        assert_eq!(v["metadata"]["name"], "web-abc12");
        assert_eq!(v["metadata"]["namespace"], "ns");
        assert_eq!(
            v["metadata"]["labels"],
            json!({"app": "web", "pod-template-hash": "abc12"})
        );
        assert_eq!(
            v["metadata"]["ownerReferences"],
            json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "d-uid",
                "controller": true, "blockOwnerDeletion": true}])
        );
        assert_eq!(
            v["spec"]["selector"]["matchLabels"],
            json!({"app": "web", "pod-template-hash": "abc12"})
        );
        assert_eq!(v["spec"]["selector"]["matchExpressions"][0]["key"], "tier");
        assert_eq!(
            v["spec"]["template"]["metadata"]["labels"]["pod-template-hash"],
            "abc12"
        );
        assert_eq!(v["spec"]["minReadySeconds"], 3);
        // The Deployment's own template is untouched, and still equal.
        assert!(d
            .spec
            .template
            .metadata
            .as_ref()
            .unwrap()
            .labels
            .as_ref()
            .unwrap()
            .get(HASH_LABEL)
            .is_none());
        assert!(equal_ignore_hash(
            rs.spec.template.as_ref().unwrap(),
            &d.spec.template
        ));
    }

    #[test]
    fn long_names_are_cut_to_fit() {
        assert_eq!(replicaset_name("web", "5d8f7"), "web-5d8f7");
        let long = "a".repeat(260);
        let n = replicaset_name(&long, "5d8f7c9b4");
        assert_eq!(n.len(), 253);
        assert!(n.ends_with("a-5d8f7c9b4"));
    }

    #[test]
    fn the_deployment_revision_annotation() {
        let mut d = deployment(|_| {});
        assert!(set_revision(&mut d, "2"));
        assert!(!set_revision(&mut d, "2"));
        assert_eq!(
            d.metadata
                .annotations
                .unwrap()
                .get(REVISION)
                .map(String::as_str),
            Some("2")
        );
    }
}
