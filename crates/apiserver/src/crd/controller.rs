//! The API server's own CRD controllers, as upstream's apiextensions server
//! runs them in-process: naming (accept the requested names unless another
//! CRD of the group holds them; `NamesAccepted`), establishing
//! (`Established`), and finalizing (on deletion, delete every custom
//! resource, then drop the `customresourcecleanup.apiextensions.k8s.io`
//! finalizer so the CRD goes away).
//!
//! They write through the registry's status path like any client would, and
//! are level-triggered: every CRD is looked at whenever any CRD changes, and
//! again shortly after while a deletion waits for custom resources to go.

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::{json, Value};

use super::definition::{condition_true, Names};
use super::{CLEANUP_FINALIZER, CRD_PREFIX};
use crate::error::ApiResult;
use crate::registry::delete::DeleteOptions;
use crate::registry::{now_rfc3339, Registry, WriteOptions};
use crate::resources;
use crate::route::ResourcePath;
use crate::server::Ctx;

/// How long a deletion waits before looking at remaining custom resources again.
const RETRY: Duration = Duration::from_secs(2);
/// A resync even without changes, in case a write was lost to a race.
const RESYNC: Duration = Duration::from_secs(30);

/// Set (or update) a condition the way upstream's `SetCRDCondition` does:
/// the transition time moves only when the status changes.
pub fn set_condition(crd: &mut Value, ty: &str, status: &str, reason: &str, message: &str) {
    if !crd["status"].is_object() {
        crd["status"] = json!({});
    }
    let conds = &mut crd["status"]["conditions"];
    if !conds.is_array() {
        *conds = json!([]);
    }
    let list = conds.as_array_mut().expect("conditions is an array");
    match list.iter_mut().find(|c| c["type"] == ty) {
        Some(c) => {
            if c["status"] != status || c.get("lastTransitionTime").is_none_or(Value::is_null) {
                c["status"] = json!(status);
                c["lastTransitionTime"] = json!(now_rfc3339());
            }
            c["reason"] = json!(reason);
            c["message"] = json!(message);
        }
        None => list.push(json!({
            "type": ty,
            "status": status,
            "lastTransitionTime": now_rfc3339(),
            "reason": reason,
            "message": message,
        })),
    }
}

/// Start the controllers; they stop when the API server is dropped.
pub(crate) fn spawn(ctx: &Arc<Ctx>) {
    let weak: Weak<Ctx> = Arc::downgrade(ctx);
    tokio::spawn(async move {
        loop {
            let retry = {
                let Some(ctx) = weak.upgrade() else { return };
                reconcile_all(&ctx.registry).await
            };
            let wait = if retry { RETRY } else { RESYNC };
            tokio::select! {
                _ = super::wait_for_change() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    });
}

fn status_path(name: &str) -> Option<ResourcePath> {
    Some(ResourcePath {
        info: resources::lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")?,
        namespace: None,
        name: Some(name.to_string()),
        subresource: Some("status".into()),
    })
}

/// Look at every CRD once; true when something should be retried soon.
async fn reconcile_all(reg: &Registry) -> bool {
    reg.cache.sync().await;
    let (entries, _) = reg.cache.list(CRD_PREFIX);
    let crds: Vec<Value> = entries.iter().map(|e| e.value()).collect();
    let mut retry = false;
    for crd in &crds {
        let name = crd["metadata"]["name"].as_str().unwrap_or("").to_string();
        let deleting = crd["metadata"]
            .get("deletionTimestamp")
            .is_some_and(|d| !d.is_null());
        let result = if deleting {
            finalize(reg, crd, &name).await
        } else {
            accept_names(reg, crd, &crds, &name).await.map(|_| false)
        };
        match result {
            Ok(again) => retry |= again,
            Err(e) if e.code == 404 || e.code == 409 => retry = true,
            Err(e) => {
                tracing::warn!(crd = %name, error = %e.message, "CRD controller");
                retry = true;
            }
        }
    }
    retry
}

/// Names other CRDs of the group hold (resources, then kinds).
fn names_in_use(crds: &[Value], group: &str) -> (HashSet<String>, HashSet<String>) {
    let mut resources = HashSet::new();
    let mut kinds = HashSet::new();
    for c in crds.iter().filter(|c| c["spec"]["group"] == group) {
        let a = Names::parse(&c["status"]["acceptedNames"]);
        resources.insert(a.plural);
        resources.insert(a.singular);
        resources.extend(a.short_names);
        kinds.insert(a.kind);
        kinds.insert(a.list_kind);
    }
    resources.remove("");
    kinds.remove("");
    (resources, kinds)
}

/// Upstream's naming and establishing controllers, in one status write.
async fn accept_names(reg: &Registry, crd: &Value, all: &[Value], name: &str) -> ApiResult<()> {
    let requested = Names::parse(&crd["spec"]["names"]);
    let accepted = Names::parse(&crd["status"]["acceptedNames"]);
    let established = condition_true(crd, "Established");
    if requested == accepted && established {
        return Ok(());
    }
    let (used_resources, used_kinds) =
        names_in_use(all, crd["spec"]["group"].as_str().unwrap_or(""));
    let mut new = accepted.clone();
    let mut conflict: Option<(&str, String)> = None;
    let fresh = |req: &str, acc: &str, used: &HashSet<String>| req == acc || !used.contains(req);
    if fresh(&requested.plural, &accepted.plural, &used_resources) {
        new.plural = requested.plural.clone();
    } else {
        conflict = Some((
            "PluralConflict",
            format!("{:?} is already in use", requested.plural),
        ));
    }
    if fresh(&requested.singular, &accepted.singular, &used_resources) {
        new.singular = requested.singular.clone();
    } else {
        conflict = Some((
            "SingularConflict",
            format!("{:?} is already in use", requested.singular),
        ));
    }
    if requested.short_names != accepted.short_names {
        let taken: Vec<String> = requested
            .short_names
            .iter()
            .filter(|s| !accepted.short_names.contains(s) && used_resources.contains(*s))
            .map(|s| format!("{s:?} is already in use"))
            .collect();
        if taken.is_empty() {
            new.short_names = requested.short_names.clone();
        } else {
            let msg = if taken.len() == 1 {
                taken[0].clone()
            } else {
                format!("[{}]", taken.join(", "))
            };
            conflict = Some(("ShortNamesConflict", msg));
        }
    }
    if fresh(&requested.kind, &accepted.kind, &used_kinds) {
        new.kind = requested.kind.clone();
    } else {
        conflict = Some((
            "KindConflict",
            format!("{:?} is already in use", requested.kind),
        ));
    }
    if fresh(&requested.list_kind, &accepted.list_kind, &used_kinds) {
        new.list_kind = requested.list_kind.clone();
    } else {
        conflict = Some((
            "ListKindConflict",
            format!("{:?} is already in use", requested.list_kind),
        ));
    }
    new.categories = requested.categories.clone();
    let Some(rp) = status_path(name) else {
        return Ok(());
    };
    let names_json = new.to_json();
    reg.update_with(&rp, None, &WriteOptions::default(), move |old| {
        let mut out = old.clone();
        out["status"]["acceptedNames"] = names_json.clone();
        match &conflict {
            None => {
                set_condition(
                    &mut out,
                    "NamesAccepted",
                    "True",
                    "NoConflicts",
                    "no conflicts found",
                );
                // With one API server there is nothing to wait for: the
                // accepted names are served, so the CRD is established.
                if !condition_true(&out, "Established") {
                    set_condition(
                        &mut out,
                        "Established",
                        "True",
                        "InitialNamesAccepted",
                        "the initial names have been accepted",
                    );
                }
            }
            Some((reason, message)) => {
                set_condition(&mut out, "NamesAccepted", "False", reason, message);
                if !condition_true(&out, "Established") {
                    set_condition(
                        &mut out,
                        "Established",
                        "False",
                        "NotAccepted",
                        "not all names are accepted",
                    );
                }
            }
        }
        Ok(out)
    })
    .await?;
    Ok(())
}

/// Upstream's CRD finalizer: delete every custom resource, then let the CRD
/// go. True while custom resources remain.
async fn finalize(reg: &Registry, crd: &Value, name: &str) -> ApiResult<bool> {
    let has_finalizer = crd["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == CLEANUP_FINALIZER));
    if !has_finalizer {
        return Ok(false);
    }
    let Some(rp) = status_path(name) else {
        return Ok(false);
    };
    let opts = WriteOptions::default();
    let in_progress = crd["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter().any(|c| {
            c["type"] == "Terminating"
                && c["status"] == "True"
                && c["reason"] != "InstanceDeletionPending"
        })
    });
    if !in_progress {
        reg.update_with(&rp, None, &opts, |old| {
            let mut out = old.clone();
            set_condition(
                &mut out,
                "Terminating",
                "True",
                "InstanceDeletionInProgress",
                "CustomResource deletion is in progress",
            );
            Ok(out)
        })
        .await?;
    }
    let group = crd["spec"]["group"].as_str().unwrap_or("");
    let plural = crd["spec"]["names"]["plural"].as_str().unwrap_or("");
    // A CRD named like a built-in resource shares its storage: never empty it.
    let overlapping = resources::RESOURCES
        .iter()
        .any(|r| r.group == group && r.plural == plural);
    let condition = if overlapping {
        (
            "False",
            "OverlappingBuiltInResource",
            "instances overlap with built-in resources in storage".to_string(),
        )
    } else if condition_true(crd, "Established") {
        match delete_instances(reg, group, plural).await {
            Ok(0) => (
                "False",
                "InstanceDeletionCompleted",
                "removed all instances".to_string(),
            ),
            Ok(n) => {
                let msg =
                    format!("could not confirm zero CustomResources remaining: {n} remaining");
                reg.update_with(&rp, None, &opts, |old| {
                    let mut out = old.clone();
                    set_condition(
                        &mut out,
                        "Terminating",
                        "True",
                        "InstanceDeletionCheck",
                        &msg,
                    );
                    Ok(out)
                })
                .await?;
                return Ok(true);
            }
            Err(e) => {
                let msg = format!("could not issue all deletes: {}", e.message);
                reg.update_with(&rp, None, &opts, |old| {
                    let mut out = old.clone();
                    set_condition(
                        &mut out,
                        "Terminating",
                        "True",
                        "InstanceDeletionFailed",
                        &msg,
                    );
                    Ok(out)
                })
                .await?;
                return Ok(true);
            }
        }
    } else {
        (
            "False",
            "NeverEstablished",
            "resource was never established".to_string(),
        )
    };
    reg.update_with(&rp, None, &opts, move |old| {
        let mut out = old.clone();
        set_condition(
            &mut out,
            "Terminating",
            condition.0,
            condition.1,
            &condition.2,
        );
        if let Some(f) = out["metadata"]["finalizers"].as_array_mut() {
            f.retain(|x| x != CLEANUP_FINALIZER);
        }
        Ok(out)
    })
    .await?;
    Ok(false)
}

/// Delete every object of a custom resource; returns how many remain
/// (objects with finalizers of their own stay until those are removed).
async fn delete_instances(reg: &Registry, group: &str, plural: &str) -> ApiResult<usize> {
    let Some(info) = resources::by_group_resource(group, plural) else {
        return Ok(0);
    };
    let prefix = info.key_prefix();
    let (items, _) = reg.cache.list(&prefix);
    for e in &items {
        let rp = ResourcePath {
            info,
            namespace: e.namespace.clone(),
            name: Some(e.name.clone()),
            subresource: None,
        };
        match reg.delete(&rp, &DeleteOptions::default()).await {
            Ok(_) => {}
            Err(err) if err.code == 404 => {}
            Err(err) => return Err(err),
        }
    }
    reg.cache.sync().await;
    Ok(reg.cache.list(&prefix).0.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_move_transition_time_only_on_change() {
        let mut crd = json!({});
        set_condition(&mut crd, "Established", "False", "Installing", "a");
        set_condition(&mut crd, "NamesAccepted", "True", "NoConflicts", "b");
        let c = &crd["status"]["conditions"];
        assert_eq!(c.as_array().unwrap().len(), 2);
        assert_eq!(c[0]["reason"], "Installing");
        let t0 = c[0]["lastTransitionTime"].clone();
        crd["status"]["conditions"][0]["lastTransitionTime"] = json!("2000-01-01T00:00:00Z");
        set_condition(&mut crd, "Established", "False", "Other", "c");
        assert_eq!(
            crd["status"]["conditions"][0]["lastTransitionTime"],
            "2000-01-01T00:00:00Z"
        );
        assert_eq!(crd["status"]["conditions"][0]["reason"], "Other");
        set_condition(&mut crd, "Established", "True", "InitialNamesAccepted", "d");
        assert_ne!(
            crd["status"]["conditions"][0]["lastTransitionTime"],
            "2000-01-01T00:00:00Z"
        );
        assert!(t0.is_string());
    }

    #[test]
    fn names_in_use_per_group() {
        let crds = vec![
            json!({"spec": {"group": "a.io"}, "status": {"acceptedNames": {"plural": "foos", "singular": "foo", "kind": "Foo", "listKind": "FooList", "shortNames": ["f"]}}}),
            json!({"spec": {"group": "b.io"}, "status": {"acceptedNames": {"plural": "bars", "kind": "Bar"}}}),
        ];
        let (r, k) = names_in_use(&crds, "a.io");
        assert!(r.contains("foos") && r.contains("f") && !r.contains("bars"));
        assert!(k.contains("FooList") && !k.contains("Bar"));
    }
}
