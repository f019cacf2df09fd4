//! delete and deletecollection, with preconditions, finalizers, propagation
//! policies and graceful pod deletion.

use bytes::Bytes;
use serde_json::{json, Value};
use store::WriteOutcome;

use super::meta::{meta_str, metadata_mut, now_secs, rfc3339};
use super::{store_error, ListOptions, Registry, WriteResult};
use crate::cache::make_entry;
use crate::error::{ApiError, ApiResult};
use crate::resources::ResourceInfo;
use crate::route::ResourcePath;

/// `DeleteOptions`, from the body and the query.
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    /// `gracePeriodSeconds`
    pub grace_period_seconds: Option<i64>,
    /// `propagationPolicy`
    pub propagation_policy: Option<String>,
    /// `orphanDependents` (deprecated; may not be set with a policy)
    pub orphan_dependents: Option<bool>,
    /// `preconditions.uid`
    pub precondition_uid: Option<String>,
    /// `preconditions.resourceVersion`
    pub precondition_rv: Option<String>,
    /// `dryRun=All`
    pub dry_run: bool,
}

impl DeleteOptions {
    /// Read a `DeleteOptions` body (may be empty) over query defaults.
    pub fn merge_body(mut self, body: &Value) -> ApiResult<DeleteOptions> {
        if body.is_null() {
            return Ok(self);
        }
        if !body.is_object() {
            return Err(ApiError::bad_request("DeleteOptions must be an object"));
        }
        if let Some(g) = body.get("gracePeriodSeconds").filter(|v| !v.is_null()) {
            self.grace_period_seconds =
                Some(g.as_i64().ok_or_else(|| {
                    ApiError::bad_request("gracePeriodSeconds must be an integer")
                })?);
        }
        if let Some(p) = body.get("propagationPolicy").and_then(Value::as_str) {
            self.propagation_policy = Some(p.to_string());
        }
        if let Some(o) = body.get("orphanDependents").and_then(Value::as_bool) {
            self.orphan_dependents = Some(o);
        }
        if let Some(p) = body.get("preconditions") {
            self.precondition_uid = p.get("uid").and_then(Value::as_str).map(str::to_string);
            self.precondition_rv = p
                .get("resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        if let Some(d) = body.get("dryRun").and_then(Value::as_array) {
            self.dry_run = d.iter().any(|v| v == "All");
        }
        Ok(self)
    }
}

impl DeleteOptions {
    /// Upstream's `ValidateDeleteOptions`: a known policy, and not both the
    /// policy and the deprecated `orphanDependents`.
    pub fn validate(&self) -> ApiResult<()> {
        let mut errs = Vec::new();
        if let (Some(_), Some(p)) = (self.orphan_dependents, &self.propagation_policy) {
            errs.push(crate::error::FieldError::invalid(
                "propagationPolicy",
                p.as_str(),
                "orphanDependents and deletionPropagation cannot be both set",
            ));
        }
        if let Some(p) = self.propagation_policy.as_deref() {
            if !matches!(p, "Orphan" | "Background" | "Foreground") {
                errs.push(crate::error::FieldError::not_supported(
                    "propagationPolicy",
                    p,
                    &["Foreground", "Background", "Orphan", "nil"],
                ));
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid("meta.k8s.io", "DeleteOptions", "", &errs))
        }
    }

    /// The propagation policy in force: `propagationPolicy`, or
    /// `orphanDependents` read as Orphan or Background.
    pub fn policy(&self) -> Option<&str> {
        self.propagation_policy
            .as_deref()
            .or(self
                .orphan_dependents
                .map(|o| if o { "Orphan" } else { "Background" }))
    }
}

/// Resources whose delete returns the object rather than a `Status`, as upstream.
pub(crate) fn returns_object(info: &ResourceInfo) -> bool {
    info.group.is_empty() && matches!(info.plural, "pods" | "services" | "namespaces")
}

fn success_status(info: &ResourceInfo, name: &str, uid: &str) -> Value {
    let mut details = json!({ "name": name, "kind": info.plural, "uid": uid });
    if !info.group.is_empty() {
        details["group"] = json!(info.group);
    }
    json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details })
}

impl Registry {
    /// DELETE of one object.
    pub async fn delete(&self, rp: &ResourcePath, opts: &DeleteOptions) -> ApiResult<WriteResult> {
        let info = rp.info;
        let name = rp
            .name
            .clone()
            .ok_or_else(|| ApiError::method_not_allowed("delete needs a name"))?;
        opts.validate()?;
        if opts.grace_period_seconds.is_some_and(|g| g < 0) {
            return Err(ApiError::invalid(
                "",
                "DeleteOptions",
                "",
                &[crate::error::FieldError::invalid(
                    "gracePeriodSeconds",
                    opts.grace_period_seconds.unwrap_or(0),
                    "must be greater than or equal to 0",
                )],
            ));
        }
        let key = info.key(rp.namespace.as_deref(), &name);
        for _ in 0..8 {
            let (kv, _) = self.store.get(key.as_bytes()).await.map_err(store_error)?;
            let kv = kv.ok_or_else(|| ApiError::not_found(info.group_resource(), &name))?;
            let entry = make_entry(&key, &kv.value, kv.mod_revision)
                .ok_or_else(|| ApiError::internal("undecodable stored object"))?;
            let obj = entry.value();
            let uid = meta_str(&obj, "uid").unwrap_or_default().to_string();
            if let Some(want) = &opts.precondition_uid {
                if *want != uid {
                    return Err(ApiError::conflict(info.group_resource(), &name, &format!("Precondition failed: UID in precondition: {want}, UID in object meta: {uid}")));
                }
            }
            if let Some(want) = &opts.precondition_rv {
                if *want != kv.mod_revision.to_string() {
                    return Err(ApiError::conflict(info.group_resource(), &name, &format!("Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in meta: {}", kv.mod_revision)));
                }
            }
            let (updated, delete_now) = plan_delete(info, &obj, opts);
            if opts.dry_run {
                let object = if delete_now && !returns_object(info) {
                    success_status(info, &name, &uid)
                } else {
                    updated.unwrap_or(obj)
                };
                return Ok(WriteResult {
                    raw: None,
                    object: object.into(),
                    code: 200,
                    warnings: vec![],
                });
            }
            if delete_now {
                match self
                    .store
                    .delete(key.as_bytes(), kv.mod_revision)
                    .await
                    .map_err(store_error)?
                {
                    WriteOutcome::Committed { revision, .. } => {
                        self.key_locks.forget(&key);
                        self.release_service_of(info, &obj).await;
                        let object = if returns_object(info) {
                            let mut o = obj;
                            metadata_mut(&mut o)
                                .insert("resourceVersion".into(), json!(revision.to_string()));
                            o
                        } else {
                            success_status(info, &name, &uid)
                        };
                        return Ok(WriteResult {
                            raw: None,
                            object: object.into(),
                            code: 200,
                            warnings: vec![],
                        });
                    }
                    WriteOutcome::Failed { .. } => continue,
                }
            }
            let Some(mut new) = updated else {
                // Already being deleted and nothing to change: report it as it is.
                return Ok(WriteResult {
                    raw: None,
                    object: obj.into(),
                    code: if opts.orphan_dependents == Some(false) {
                        202
                    } else {
                        200
                    },
                    warnings: vec![],
                });
            };
            metadata_mut(&mut new).remove("resourceVersion");
            let bytes = Bytes::from(
                serde_json::to_vec(&new).map_err(|e| ApiError::internal(e.to_string()))?,
            );
            match self
                .store
                .update(key.as_bytes(), kv.mod_revision, bytes, self.ttl_of(info))
                .await
                .map_err(store_error)?
            {
                WriteOutcome::Committed { revision, .. } => {
                    metadata_mut(&mut new)
                        .insert("resourceVersion".into(), json!(revision.to_string()));
                    // Upstream answers 202 for an object left in place only
                    // when the deprecated `orphanDependents: false` asked for
                    // cascading; a Foreground policy still gets 200.
                    let code = if opts.orphan_dependents == Some(false) {
                        202
                    } else {
                        200
                    };
                    return Ok(WriteResult {
                        raw: None,
                        object: new.into(),
                        code,
                        warnings: vec![],
                    });
                }
                WriteOutcome::Failed { .. } => continue,
            }
        }
        Err(ApiError::conflict(
            info.group_resource(),
            &name,
            "too many concurrent updates; try again",
        ))
    }

    /// DELETE of a collection: each matching object, with the same options.
    pub async fn delete_collection(
        &self,
        rp: &ResourcePath,
        list: &ListOptions,
        opts: &DeleteOptions,
    ) -> ApiResult<Value> {
        opts.validate()?;
        let found = self.list(rp, list).await?;
        let mut deleted = Vec::new();
        for e in &found.items {
            let one = ResourcePath {
                info: rp.info,
                namespace: e.namespace.clone(),
                name: Some(e.name.clone()),
                subresource: None,
            };
            match self.delete(&one, opts).await {
                Ok(r) => deleted.push(if r.object.kind() == Some("Status") {
                    crate::convert::to_served(rp.info, e.value())
                } else {
                    r.object.into_value()
                }),
                Err(err) if err.code == 404 => {}
                Err(err) => return Err(err),
            }
        }
        Ok(json!({
            "kind": format!("{}List", rp.info.kind),
            "apiVersion": rp.info.api_version(),
            "metadata": { "resourceVersion": found.revision.to_string() },
            "items": deleted,
        }))
    }
}

/// What a delete does to `obj`: the updated object to store (deletion
/// timestamp, finalizers) if any, and whether to remove it right away.
const ORPHAN: &str = "orphan";
const FOREGROUND: &str = "foregroundDeletion";

/// The garbage collector's finalizers after a DELETE, as upstream's store
/// decides them: an explicit policy (`propagationPolicy`, or
/// `orphanDependents` folded into it) replaces whichever of `orphan` and
/// `foregroundDeletion` the object carries; without one, a finalizer already
/// there stands, else the kind's default applies: core/v1
/// ReplicationControllers orphan their pods (kept for compatibility), every
/// other kind deletes dependents in the background (no finalizer).
fn gc_finalizers(
    info: &ResourceInfo,
    finalizers: Vec<String>,
    policy: Option<&str>,
) -> Vec<String> {
    let has = |f: &str| finalizers.iter().any(|x| x == f);
    let (orphan, foreground) = match policy {
        Some("Orphan") => (true, false),
        Some("Foreground") => (false, true),
        Some(_) => (false, false),
        None if has(ORPHAN) || has(FOREGROUND) => (has(ORPHAN), !has(ORPHAN) && has(FOREGROUND)),
        None => (
            info.group.is_empty() && info.plural == "replicationcontrollers",
            false,
        ),
    };
    let mut out: Vec<String> = finalizers
        .iter()
        .filter(|f| *f != ORPHAN && *f != FOREGROUND)
        .cloned()
        .collect();
    if orphan {
        out.push(ORPHAN.into());
    }
    if foreground {
        out.push(FOREGROUND.into());
    }
    // Unchanged as a set: keep the object's order.
    let same = out.len() == finalizers.len() && out.iter().all(|f| has(f));
    if same {
        finalizers
    } else {
        out
    }
}

fn plan_delete(info: &ResourceInfo, obj: &Value, opts: &DeleteOptions) -> (Option<Value>, bool) {
    let meta = &obj["metadata"];
    let mut finalizers: Vec<String> = meta["finalizers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let already = meta.get("deletionTimestamp").is_some_and(|d| !d.is_null());
    let is_pod = info.group.is_empty() && info.plural == "pods";
    let is_ns = info.group.is_empty() && info.plural == "namespaces";
    let is_crd = info.group == "apiextensions.k8s.io" && info.plural == "customresourcedefinitions";
    // A CRD always goes through its cleanup finalizer: its custom resources
    // are deleted before it is (upstream's CRD REST Delete).
    if is_crd
        && !already
        && !finalizers
            .iter()
            .any(|f| f == crate::crd::CLEANUP_FINALIZER)
    {
        finalizers.push(crate::crd::CLEANUP_FINALIZER.to_string());
    }
    let mut grace = 0;
    if is_pod {
        let phase = obj["status"]["phase"].as_str().unwrap_or("");
        let scheduled = obj["spec"]["nodeName"]
            .as_str()
            .is_some_and(|n| !n.is_empty());
        let default = obj["spec"]["terminationGracePeriodSeconds"]
            .as_i64()
            .unwrap_or(30);
        grace = opts.grace_period_seconds.unwrap_or(default);
        if !scheduled || matches!(phase, "Succeeded" | "Failed") {
            grace = 0;
        }
    }
    finalizers = gc_finalizers(info, finalizers, opts.policy());
    // A namespace always goes through Terminating: its controller empties it and
    // removes the `kubernetes` finalizer from spec.finalizers.
    let ns_pending = is_ns
        && obj["spec"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
    if already {
        if !is_pod && finalizers.is_empty() && !ns_pending {
            return (None, true);
        }
        let current_grace = meta["deletionGracePeriodSeconds"].as_i64().unwrap_or(0);
        if is_pod
            && finalizers.is_empty()
            && (grace == 0 || current_grace == 0)
            && opts.grace_period_seconds.is_some()
        {
            return (None, true);
        }
        if is_pod && grace < current_grace {
            let mut new = obj.clone();
            let m = metadata_mut(&mut new);
            m.insert("deletionGracePeriodSeconds".into(), json!(grace));
            m.insert(
                "deletionTimestamp".into(),
                json!(rfc3339(now_secs() + grace)),
            );
            return (Some(new), false);
        }
        // A second DELETE may still change the garbage collector's finalizers.
        let before: Vec<&str> = meta["finalizers"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if before != finalizers {
            let mut new = obj.clone();
            metadata_mut(&mut new).insert("finalizers".into(), json!(finalizers));
            return (Some(new), false);
        }
        return (None, false);
    }
    if finalizers.is_empty() && grace == 0 && !ns_pending {
        return (None, true);
    }
    let mut new = obj.clone();
    if ns_pending {
        new["status"]["phase"] = json!("Terminating");
    }
    if is_crd {
        crate::crd::controller::set_condition(
            &mut new,
            "Terminating",
            "True",
            "InstanceDeletionPending",
            "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
        );
    }
    let m = metadata_mut(&mut new);
    m.insert(
        "deletionTimestamp".into(),
        json!(rfc3339(now_secs() + grace)),
    );
    m.insert("deletionGracePeriodSeconds".into(), json!(grace));
    if !finalizers.is_empty() {
        m.insert("finalizers".into(), json!(finalizers));
    }
    (Some(new), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gc(plural: &str, fins: &[&str], policy: Option<&str>) -> Vec<String> {
        let info = crate::resources::RESOURCES
            .iter()
            .find(|r| r.plural == plural && r.group.is_empty())
            .expect("a core resource");
        gc_finalizers(info, fins.iter().map(|f| f.to_string()).collect(), policy)
    }

    #[test]
    fn explicit_policies_replace_the_gc_finalizers() {
        assert_eq!(
            gc("configmaps", &["a", "orphan"], Some("Background")),
            ["a"]
        );
        assert_eq!(
            gc("configmaps", &["orphan"], Some("Foreground")),
            ["foregroundDeletion"]
        );
        assert_eq!(
            gc("configmaps", &["foregroundDeletion", "a"], Some("Orphan")),
            ["a", "orphan"]
        );
        assert_eq!(gc("configmaps", &["a"], Some("Orphan")), ["a", "orphan"]);
    }

    #[test]
    fn without_a_policy_the_object_then_the_kind_decides() {
        assert!(gc("configmaps", &[], None).is_empty());
        assert_eq!(gc("replicationcontrollers", &[], None), ["orphan"]);
        assert_eq!(
            gc("replicationcontrollers", &["foregroundDeletion"], None),
            ["foregroundDeletion"]
        );
        assert_eq!(gc("configmaps", &["orphan", "b"], None), ["orphan", "b"]);
    }
}
