//! The service account controller: every active namespace has a `default`
//! ServiceAccount, created when the namespace appears and again if deleted,
//! as upstream's `serviceaccount-controller` does.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::Client;

/// The account every namespace gets.
pub const DEFAULT: &str = "default";

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
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let accounts: Api<ServiceAccount> = Api::all(client.clone());
    let ctx = Arc::new(Ctx { client });
    Controller::new(namespaces, watcher::Config::default())
        // A deleted `default` account brings its namespace back to reconcile.
        .watches(
            accounts,
            watcher::Config::default().fields(&format!("metadata.name={DEFAULT}")),
            |sa: ServiceAccount| sa.metadata.namespace.map(|ns| ObjectRef::new(&ns)),
        )
        .run(reconcile, error_policy, ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "service account reconcile");
            }
        })
        .await;
}

fn error_policy(_ns: Arc<Namespace>, e: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(error = %e, "service account controller");
    Action::requeue(crate::ERROR_REQUEUE)
}

async fn reconcile(ns: Arc<Namespace>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let Some(name) = ns.metadata.name.clone() else {
        return Ok(Action::await_change());
    };
    // No new content in a terminating namespace.
    if ns.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &name);
    if api.get_opt(DEFAULT).await.map_err(Error::Kube)?.is_some() {
        return Ok(Action::await_change());
    }
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(DEFAULT.into()),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    };
    match api.create(&PostParams::default(), &sa).await {
        Ok(_) => {
            tracing::debug!(namespace = name, "created the default service account");
            Ok(Action::await_change())
        }
        // Someone else made it, or the namespace started terminating meanwhile.
        Err(kube::Error::Api(s)) if s.code == 409 || s.code == 403 => Ok(Action::await_change()),
        Err(e) => Err(Error::Kube(e)),
    }
}
