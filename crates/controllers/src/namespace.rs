//! The namespace controller: empties a terminating namespace and then removes
//! the `kubernetes` finalizer from `spec.finalizers`, which lets the API server
//! delete it.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
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
    empty_namespace(&ctx.client, &name, true).await?;
    let remaining = empty_namespace(&ctx.client, &name, false).await?;
    if remaining > 0 {
        tracing::debug!(namespace = name, remaining, "namespace still has content");
        return Ok(Action::requeue(Duration::from_secs(2)));
    }
    // PUT /api/v1/namespaces/{name}/finalize with our finalizer removed.
    let mut updated = (*ns).clone();
    if let Some(spec) = updated.spec.as_mut() {
        spec.finalizers = Some(finalizers.into_iter().filter(|f| f != FINALIZER).collect());
    }
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    match api
        .replace_subresource("finalize", &name, &PostParams::default(), &updated)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => return Err(Error::Kube(e)),
    }
    tracing::info!(namespace = name, "namespace emptied and finalized");
    Ok(Action::await_change())
}

/// Count what is in the namespace, deleting it all when `delete` is set.
async fn empty_namespace(client: &Client, ns: &str, delete: bool) -> Result<usize, Error> {
    let discovery = Discovery::new(client.clone())
        .run_aggregated()
        .await
        .map_err(Error::Kube)?;
    let mut remaining = 0;
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            if caps.scope != Scope::Namespaced || !caps.supports_operation(verbs::LIST) {
                continue;
            }
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
            let list = match api.list_metadata(&ListParams::default()).await {
                Ok(l) => l,
                Err(kube::Error::Api(e)) if e.code == 404 || e.code == 405 => continue,
                Err(e) => return Err(Error::Kube(e)),
            };
            if list.items.is_empty() {
                continue;
            }
            remaining += list.items.len();
            if !delete {
                continue;
            }
            if caps.supports_operation(verbs::DELETE_COLLECTION) {
                match api
                    .delete_collection(&DeleteParams::background(), &ListParams::default())
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 || e.code == 405 => {}
                    Err(e) => return Err(Error::Kube(e)),
                }
            } else if caps.supports_operation(verbs::DELETE) {
                for item in list.items {
                    if let Some(n) = item.metadata.name {
                        let _ = api.delete(&n, &DeleteParams::background()).await;
                    }
                }
            }
        }
    }
    Ok(remaining)
}
