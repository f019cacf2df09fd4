//! The Deployment controller: a Deployment runs its pods through
//! ReplicaSets, one per pod template, as upstream's. A rollout creates the
//! ReplicaSet of the new template and moves replicas over to it, either
//! step by step within `maxSurge` and `maxUnavailable` (RollingUpdate) or by
//! emptying the old ones first (Recreate). Old ReplicaSets are kept, scaled
//! to zero, as the revision history `kubectl rollout history` and
//! `kubectl rollout undo` read (`revisionHistoryLimit` of them).
//!
//! Shape:
//! - a reflector keeps the Deployments; one ReplicaSet watch feeds an
//!   [`OwnedCache`] indexed by controller UID and by namespace for orphans,
//!   and [`handlers`] queue the Deployments a ReplicaSet change concerns;
//! - kube-rs's `applier` runs [`sync::reconcile`] for queued Deployments,
//!   never two at once for one Deployment;
//! - no pod is watched: Recreate waits for old pods to be gone through the
//!   old ReplicaSets' `status.replicas` and `status.terminatingReplicas`
//!   (as upstream does with a pod replacement policy), so the controller's
//!   memory does not grow with the pods.
//!
//! Files: `sync.rs` (a sync, claiming ReplicaSets, the writes),
//! `newrs.rs` (finding or creating the new ReplicaSet, revisions),
//! `rolling.rs`, `recreate.rs`, `scale.rs` (proportional scaling),
//! `history.rs` (cleanup and the deprecated rollback), `progress.rs` and
//! `status.rs` (status and conditions), `replicasets.rs`, `spec.rs`,
//! `hash.rs` (the pure helpers).

pub mod handlers;
pub mod hash;
pub mod history;
pub mod newrs;
pub mod progress;
pub mod recreate;
pub mod replicasets;
pub mod rolling;
pub mod scale;
pub mod spec;
pub mod status;
pub mod sync;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use futures::channel::mpsc;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::Api;
use kube::runtime::controller::{self, Action};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Client, Resource, ResourceExt};

use crate::cache::OwnedCache;
use crate::events::Recorder;
use crate::replicaset::backoff;

/// The event source, as upstream's controller manager names it.
pub const COMPONENT: &str = "deployment-controller";
/// Deployments synced at once (upstream's `--concurrent-deployment-syncs`).
const WORKERS: u16 = 5;

/// Errors of one sync; messages are the API server's or upstream's.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused, with this Status.
    #[error("{}", .0.message)]
    Api(Box<kube::core::Status>),
    /// The request did not get an answer.
    #[error("{0}")]
    Client(#[source] kube::Error),
    /// Something in the objects the controller cannot work with.
    #[error("{0}")]
    Invalid(String),
}

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Self {
        match e {
            kube::Error::Api(s) => Error::Api(s),
            e => Error::Client(e),
        }
    }
}

impl Error {
    fn status(&self) -> Option<&kube::core::Status> {
        match self {
            Error::Api(s) => Some(s),
            _ => None,
        }
    }

    pub fn not_found(&self) -> bool {
        self.status().is_some_and(|s| s.code == 404)
    }

    pub fn already_exists(&self) -> bool {
        self.status()
            .is_some_and(|s| s.code == 409 && s.reason == "AlreadyExists")
    }

    /// Creating failed because the namespace is going away: retrying is
    /// pointless (upstream's `NamespaceTerminatingCause`).
    pub fn namespace_terminating(&self) -> bool {
        self.status()
            .and_then(|s| s.details.as_ref())
            .is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating"))
    }
}

/// What a sync works with.
pub struct Ctx {
    pub client: Client,
    pub deployments: Store<Deployment>,
    pub replicasets: Arc<OwnedCache<ReplicaSet>>,
    pub events: Recorder,
    /// Consecutive failed syncs per Deployment UID, for the retry backoff.
    failures: Mutex<HashMap<String, u32>>,
}

impl Ctx {
    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn error_policy(d: Arc<Deployment>, e: &Error, ctx: Arc<Ctx>) -> Action {
    if e.namespace_terminating() {
        return Action::await_change();
    }
    let n = {
        let mut f = ctx.failures();
        let n = f.entry(d.uid().unwrap_or_default()).or_default();
        *n += 1;
        *n - 1
    };
    match e {
        Error::Client(_) => tracing::warn!(deployment = %d.name_any(), error = %e, "sync failed"),
        _ => tracing::debug!(deployment = %d.name_any(), error = %e, "sync failed"),
    }
    Action::requeue(backoff(n))
}

async fn reconcile(d: Arc<Deployment>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let uid = d.uid().unwrap_or_default();
    let res = sync::reconcile(d, ctx.clone()).await;
    if res.is_ok() {
        ctx.failures().remove(&uid);
    }
    res
}

/// Keep the ReplicaSet cache and queue the Deployments each change
/// concerns.
async fn watch_replicasets(
    client: Client,
    cache: Arc<OwnedCache<ReplicaSet>>,
    deployments: Store<Deployment>,
    queue: mpsc::UnboundedSender<ObjectRef<Deployment>>,
) {
    let api: Api<ReplicaSet> = Api::all(client);
    let mut stream = std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff());
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(ev) => {
                for ch in cache.apply(ev) {
                    for r in handlers::deployments_for(&ch, &deployments) {
                        // Fails only when the controller has stopped.
                        let _ = queue.unbounded_send(r);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "replicaset watch failed; retrying"),
        }
    }
}

/// Run the controller until the future is dropped.
pub async fn run(client: Client) {
    let (store, writer) = reflector::store::<Deployment>();
    let (tx, rx) = mpsc::unbounded();
    let (events, events_task) = Recorder::start(client.clone(), COMPONENT);
    let replicasets = Arc::new(OwnedCache::default());
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        deployments: store.clone(),
        replicasets: replicasets.clone(),
        events,
        failures: Mutex::new(HashMap::new()),
    });
    let mut tasks = crate::AbortOnDrop(vec![
        events_task,
        tokio::spawn(watch_replicasets(
            client.clone(),
            replicasets,
            store.clone(),
            tx,
        )),
    ]);

    let gone = ctx.clone();
    let api: Api<Deployment> = Api::all(client);
    let deployments = watcher(api, watcher::Config::default())
        .default_backoff()
        // Managed fields are never read, and updates sent without them
        // keep the stored ones.
        .modify(|d| d.meta_mut().managed_fields = None)
        .reflect(writer)
        .filter_map(move |ev| {
            let out = match ev {
                Ok(watcher::Event::Apply(d)) | Ok(watcher::Event::InitApply(d)) => {
                    Some(ObjectRef::from_obj(&d))
                }
                Ok(watcher::Event::Delete(d)) => {
                    gone.failures().remove(&d.uid().unwrap_or_default());
                    None
                }
                Ok(_) => None,
                Err(e) => {
                    tracing::warn!(error = %e, "deployment watch failed; retrying");
                    None
                }
            };
            std::future::ready(out)
        });
    let queue = futures::stream::select(deployments, rx).map(Ok::<_, Infallible>);
    let cfg = controller::Config::default().concurrency(WORKERS);
    let run = controller::applier(
        |d, c| Box::pin(reconcile(d, c)),
        error_policy,
        ctx,
        store,
        queue,
        cfg,
    )
    .for_each(|r| async move {
        if let Err(e) = r {
            // Mostly a Deployment deleted while queued.
            tracing::trace!(error = %e, "deployment controller queue");
        }
    });
    tasks.0.push(tokio::spawn(run));
    let _ = futures::future::join_all(tasks.0.iter_mut()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(v: serde_json::Value) -> Error {
        Error::Api(Box::new(serde_json::from_value(v).unwrap()))
    }

    #[test]
    fn errors_are_classified_by_status() {
        let exists = status(serde_json::json!({"code": 409, "reason": "AlreadyExists",
            "message": "replicasets.apps \"web-1\" already exists"}));
        assert!(exists.already_exists() && !exists.not_found());
        assert_eq!(
            exists.to_string(),
            "replicasets.apps \"web-1\" already exists"
        );
        let conflict =
            status(serde_json::json!({"code": 409, "reason": "Conflict", "message": "x"}));
        assert!(!conflict.already_exists());
        let terminating = status(
            serde_json::json!({"code": 403, "reason": "Forbidden", "message": "x",
            "details": {"causes": [{"reason": "NamespaceTerminating", "message": "m"}]}}),
        );
        assert!(terminating.namespace_terminating());
        assert!(!conflict.namespace_terminating());
        assert!(
            status(serde_json::json!({"code": 404, "reason": "NotFound", "message": "x"}))
                .not_found()
        );
    }
}
