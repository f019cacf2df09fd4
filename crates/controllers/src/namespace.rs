//! The namespace controller: empties a terminating namespace and then removes
//! the `kubernetes` finalizer from `spec.finalizers`, which lets the API server
//! delete it. While content remains, the namespace's status conditions say
//! what is left and which finalizers hold it, as upstream's deleter does.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::discovery::{verbs, Discovery, Scope};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::Client;

/// The finalizer this controller owns.
pub const FINALIZER: &str = "kubernetes";

/// Errors of one reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the API server failed.
    #[error("API call failed: {0}")]
    Kube(#[source] kube::Error),
}

struct Ctx {
    client: Client,
}

/// Run until the process ends.
pub async fn run(client: Client) {
    let api: Api<Namespace> = Api::all(client.clone());
    let ctx = Arc::new(Ctx { client });
    Controller::new(api, watcher::Config::default())
        .run(reconcile, error_policy, ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "namespace reconcile");
            }
        })
        .await;
}

fn error_policy(_ns: Arc<Namespace>, e: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(error = %e, "namespace controller");
    Action::requeue(crate::ERROR_REQUEUE)
}

async fn reconcile(ns: Arc<Namespace>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let Some(name) = ns.metadata.name.clone() else {
        return Ok(Action::await_change());
    };
    if ns.metadata.deletion_timestamp.is_none() {
        return Ok(Action::await_change());
    }
    let finalizers = ns
        .spec
        .as_ref()
        .and_then(|s| s.finalizers.clone())
        .unwrap_or_default();
    if !finalizers.iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    let (content, failing) = match purge(&ctx.client, &name).await {
        Ok(c) => {
            let failing = c.failing();
            (Some(c), failing)
        }
        Err(e) => (
            None,
            vec![failure(
                DISCOVERY_FAILURE,
                "DiscoveryFailed",
                format!("Discovery failed: {e}"),
            )],
        ),
    };
    // The conditions say what blocks the deletion, as upstream's deleter
    // writes them (PUT of the status).
    let old = ns
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    if let Some(conditions) = updated_conditions(&old, &failing, now()) {
        let mut with = (*ns).clone();
        with.status.get_or_insert_with(Default::default).conditions = Some(conditions);
        match api
            .replace_status(&name, &PostParams::default(), &with)
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => return Err(Error::Kube(e)),
        }
    }
    match content {
        Some(c) if c.remaining.is_empty() && c.errors.is_empty() => {}
        _ => {
            tracing::debug!(namespace = name, "namespace still has content");
            return Ok(Action::requeue(Duration::from_secs(2)));
        }
    }
    // PUT /api/v1/namespaces/{name}/finalize with our finalizer removed.
    let mut updated = (*ns).clone();
    // The status write above moved the resourceVersion on.
    updated.metadata.resource_version = None;
    if let Some(spec) = updated.spec.as_mut() {
        spec.finalizers = Some(finalizers.into_iter().filter(|f| f != FINALIZER).collect());
    }
    match api
        .replace_subresource("finalize", &name, &PostParams::default(), &updated)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {
            return Ok(Action::requeue(Duration::from_secs(1)))
        }
        Err(e) => return Err(Error::Kube(e)),
    }
    tracing::info!(namespace = name, "namespace emptied and finalized");
    Ok(Action::await_change())
}

/// What is left in a namespace after a deletion pass.
#[derive(Debug, Default)]
struct Content {
    /// `<resource>.<group>` → objects left (upstream's wording).
    remaining: BTreeMap<String, usize>,
    /// Finalizer → objects left that carry it.
    finalizers: BTreeMap<String, usize>,
    /// One message per resource whose deletion failed.
    errors: Vec<String>,
}

impl Content {
    /// The conditions that report a problem (status True).
    fn failing(&self) -> Vec<NamespaceCondition> {
        let mut out = Vec::new();
        if !self.remaining.is_empty() {
            let list: Vec<String> = self
                .remaining
                .iter()
                .map(|(r, n)| format!("{r} has {n} resource instances"))
                .collect();
            out.push(failure(
                CONTENT_REMAINING,
                "SomeResourcesRemain",
                format!("Some resources are remaining: {}", list.join(", ")),
            ));
        }
        if !self.finalizers.is_empty() {
            let list: Vec<String> = self
                .finalizers
                .iter()
                .map(|(f, n)| format!("{f} in {n} resource instances"))
                .collect();
            out.push(failure(
                FINALIZERS_REMAINING,
                "SomeFinalizersRemain",
                format!(
                    "Some content in the namespace has finalizers remaining: {}",
                    list.join(", ")
                ),
            ));
        }
        if !self.errors.is_empty() {
            let mut errs = self.errors.clone();
            errs.sort();
            out.push(failure(
                CONTENT_FAILURE,
                "ContentDeletionFailed",
                format!(
                    "Failed to delete all resource types, {} remaining: {}",
                    errs.len(),
                    errs.join(", ")
                ),
            ));
        }
        out
    }
}

const DISCOVERY_FAILURE: &str = "NamespaceDeletionDiscoveryFailure";
const GV_PARSING_FAILURE: &str = "NamespaceDeletionGroupVersionParsingFailure";
const CONTENT_FAILURE: &str = "NamespaceDeletionContentFailure";
const CONTENT_REMAINING: &str = "NamespaceContentRemaining";
const FINALIZERS_REMAINING: &str = "NamespaceFinalizersRemaining";

/// The condition types the deleter keeps, each with its reason and message
/// for when nothing is wrong (status False), as upstream words them.
const KEPT: [(&str, &str, &str); 5] = [
    (
        DISCOVERY_FAILURE,
        "ResourcesDiscovered",
        "All resources successfully discovered",
    ),
    (
        GV_PARSING_FAILURE,
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed",
    ),
    (
        CONTENT_FAILURE,
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    (
        CONTENT_REMAINING,
        "ContentRemoved",
        "All content successfully removed",
    ),
    (
        FINALIZERS_REMAINING,
        "ContentHasNoFinalizers",
        "All content-preserving finalizers finished",
    ),
];

fn failure(kind: &str, reason: &str, message: String) -> NamespaceCondition {
    NamespaceCondition {
        type_: kind.into(),
        status: "True".into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_transition_time: None,
    }
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// The namespace's conditions with `failing` applied (every kept type not
/// failing reads as its "ok" variant), or `None` when nothing changed. A
/// condition's transition time moves only when its status does.
fn updated_conditions(
    old: &[NamespaceCondition],
    failing: &[NamespaceCondition],
    now: Time,
) -> Option<Vec<NamespaceCondition>> {
    let mut out = old.to_vec();
    let mut changed = false;
    for (kind, ok_reason, ok_message) in KEPT {
        let want = failing
            .iter()
            .find(|c| c.type_ == kind)
            .cloned()
            .unwrap_or_else(|| NamespaceCondition {
                type_: kind.into(),
                status: "False".into(),
                reason: Some(ok_reason.into()),
                message: Some(ok_message.into()),
                last_transition_time: None,
            });
        match out.iter_mut().find(|c| c.type_ == kind) {
            None => {
                out.push(NamespaceCondition {
                    last_transition_time: Some(now.clone()),
                    ..want
                });
                changed = true;
            }
            Some(c)
                if c.status != want.status
                    || c.reason != want.reason
                    || c.message != want.message =>
            {
                if c.status != want.status {
                    c.last_transition_time = Some(now.clone());
                }
                c.status = want.status;
                c.reason = want.reason;
                c.message = want.message;
                changed = true;
            }
            Some(_) => {}
        }
    }
    changed.then_some(out)
}

/// Delete everything in the namespace, then count what is still there (and
/// the finalizers holding it).
async fn purge(client: &Client, ns: &str) -> Result<Content, kube::Error> {
    let discovery = Discovery::new(client.clone()).run_aggregated().await?;
    let mut content = Content::default();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            if caps.scope != Scope::Namespaced || !caps.supports_operation(verbs::LIST) {
                continue;
            }
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
            let list = match api.list_metadata(&ListParams::default()).await {
                Ok(l) => l,
                Err(kube::Error::Api(e)) if e.code == 404 || e.code == 405 => continue,
                Err(e) => return Err(e),
            };
            if list.items.is_empty() {
                continue;
            }
            let what = format!("{}.{}", ar.plural, ar.group);
            if let Err(e) = delete_all(&api, &caps, list.items).await {
                content.errors.push(format!("{what}: {e}"));
            }
            let left = match api.list_metadata(&ListParams::default()).await {
                Ok(l) => l.items,
                Err(e) => {
                    content.errors.push(format!("{what}: {e}"));
                    continue;
                }
            };
            if left.is_empty() {
                continue;
            }
            content.remaining.insert(what, left.len());
            for item in &left {
                for f in item.metadata.finalizers.iter().flatten() {
                    *content.finalizers.entry(f.clone()).or_default() += 1;
                }
            }
        }
    }
    Ok(content)
}

async fn delete_all(
    api: &Api<DynamicObject>,
    caps: &kube::discovery::ApiCapabilities,
    items: Vec<kube::core::PartialObjectMeta<DynamicObject>>,
) -> Result<(), kube::Error> {
    if caps.supports_operation(verbs::DELETE_COLLECTION) {
        match api
            .delete_collection(&DeleteParams::background(), &ListParams::default())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 405 => Ok(()),
            Err(e) => Err(e),
        }
    } else if caps.supports_operation(verbs::DELETE) {
        for item in items {
            if let Some(n) = item.metadata.name {
                match api.delete(&n, &DeleteParams::background()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(secs).unwrap())
    }

    fn find<'a>(cs: &'a [NamespaceCondition], kind: &str) -> &'a NamespaceCondition {
        cs.iter().find(|c| c.type_ == kind).unwrap()
    }

    #[test]
    fn remaining_content_and_finalizers_are_named_then_cleared() {
        let mut c = Content::default();
        c.remaining.insert("configmaps.".into(), 2);
        c.remaining.insert("widgets.example.com".into(), 1);
        c.finalizers.insert("example.com/hold".into(), 3);
        let first = updated_conditions(&[], &c.failing(), at(10)).unwrap();
        assert_eq!(first.len(), 5);
        let r = find(&first, CONTENT_REMAINING);
        assert_eq!(r.status, "True");
        assert_eq!(r.reason.as_deref(), Some("SomeResourcesRemain"));
        assert_eq!(
            r.message.as_deref(),
            Some("Some resources are remaining: configmaps. has 2 resource instances, widgets.example.com has 1 resource instances")
        );
        let f = find(&first, FINALIZERS_REMAINING);
        assert_eq!(
            f.message.as_deref(),
            Some("Some content in the namespace has finalizers remaining: example.com/hold in 3 resource instances")
        );
        let d = find(&first, DISCOVERY_FAILURE);
        assert_eq!(
            (d.status.as_str(), d.reason.as_deref()),
            ("False", Some("ResourcesDiscovered"))
        );
        // The same again changes nothing.
        assert!(updated_conditions(&first, &c.failing(), at(20)).is_none());
        // Content gone: the ok variants, with new transition times only
        // where the status flipped.
        let done = updated_conditions(&first, &Content::default().failing(), at(30)).unwrap();
        let r = find(&done, CONTENT_REMAINING);
        assert_eq!(
            (r.status.as_str(), r.reason.as_deref()),
            ("False", Some("ContentRemoved"))
        );
        assert_eq!(r.last_transition_time, Some(at(30)));
        assert_eq!(
            find(&done, DISCOVERY_FAILURE).last_transition_time,
            Some(at(10))
        );
    }

    #[test]
    fn delete_failures_are_reported_sorted() {
        let c = Content {
            errors: vec!["b.: boom".into(), "a.: nope".into()],
            ..Default::default()
        };
        let cs = updated_conditions(&[], &c.failing(), at(1)).unwrap();
        assert_eq!(
            find(&cs, CONTENT_FAILURE).message.as_deref(),
            Some("Failed to delete all resource types, 2 remaining: a.: nope, b.: boom")
        );
    }
}
