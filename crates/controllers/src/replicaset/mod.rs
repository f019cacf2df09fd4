//! The ReplicaSet and ReplicationController controllers: one generic
//! implementation (over [`kind::ReplicaOwner`]) run once per kind, as
//! upstream runs its ReplicaSet controller for both.
//!
//! Shape:
//! - one pod watch feeds [`podcache::PodCache`], shared by both kinds and
//!   indexed by controller UID and by namespace for orphans; each change is
//!   handed to both kinds' [`handlers::Hooks`] after the cache shows it,
//!   which observe expectations and queue the owners concerned;
//! - per kind, a reflector keeps the owners, and kube-rs's `applier` runs
//!   [`sync::reconcile`] for queued owners, never two at once for one owner;
//! - [`events::Recorder`] writes the Events in the background.
//!
//! Nothing lists pods per sync: a sync reads its own pods and its
//! namespace's orphans from the cache.

pub mod claim;
pub mod expectations;
pub mod handlers;
pub mod kind;
pub mod manage;
pub mod ranking;
pub mod status;
pub mod sync;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::mpsc;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::api::Api;
use kube::runtime::controller::{self, Action};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Client, ResourceExt};

pub use crate::cache as podcache;
pub use crate::events;
use events::Recorder;
use expectations::Expectations;
use handlers::{Hooks, PodHandler};
use kind::ReplicaOwner;
use podcache::PodCache;

/// Owners synced at once per kind (upstream's `--concurrent-replicaset-syncs`).
const WORKERS: u16 = 5;

/// Errors of one sync. Messages are upstream's, since they end up in
/// Events and in the `ReplicaFailure` condition.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused, with this Status (shown as its message, as
    /// client-go prints a StatusError).
    #[error("{}", .0.message)]
    Api(Box<kube::core::Status>),
    /// The request did not get an answer.
    #[error("{0}")]
    Client(#[source] kube::Error),
    #[error("unable to create pods, no labels")]
    NoLabels,
    #[error("unable to delete pods: {0}")]
    Delete(#[source] Box<Error>),
    #[error("can't adopt Pod {0}: {1}")]
    Adopt(String, String),
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
    /// The pod was already gone (404), or was replaced by another of the
    /// same name (409 from the UID precondition).
    fn gone(&self) -> bool {
        matches!(self, Error::Api(s) if s.code == 404 || s.code == 409)
    }
}

/// What a sync of kind `K` works with.
pub struct Ctx<K: ReplicaOwner> {
    pub client: Client,
    pub pods: Arc<PodCache>,
    pub owners: Store<K>,
    pub expectations: Arc<Expectations>,
    pub events: Recorder,
    /// Consecutive failed syncs per owner UID, for the retry backoff.
    failures: Mutex<HashMap<String, u32>>,
}

/// The retry delay after `n` consecutive failures: upstream's per-item
/// exponential backoff, 5 ms doubling up to 1000 s.
pub fn backoff(n: u32) -> Duration {
    let ms = 5u64.saturating_mul(1u64 << n.min(30));
    Duration::from_millis(ms).min(Duration::from_secs(1000))
}

fn error_policy<K: ReplicaOwner>(owner: Arc<K>, e: &Error, ctx: Arc<Ctx<K>>) -> Action {
    let uid = owner.uid().unwrap_or_default();
    let n = {
        let mut f = ctx.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = f.entry(uid).or_default();
        *n += 1;
        *n - 1
    };
    match e {
        Error::Client(_) => {
            tracing::warn!(kind = %K::kind(&()), owner = %owner.name_any(), error = %e, "sync failed")
        }
        _ => {
            tracing::debug!(kind = %K::kind(&()), owner = %owner.name_any(), error = %e, "sync failed")
        }
    }
    Action::requeue(backoff(n))
}

async fn reconcile<K: ReplicaOwner>(owner: Arc<K>, ctx: Arc<Ctx<K>>) -> Result<Action, Error> {
    let uid = owner.uid().unwrap_or_default();
    let res = sync::reconcile(owner, ctx.clone()).await;
    if res.is_ok() {
        ctx.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&uid);
    }
    res
}

/// The informer side of one kind: its owner store and writer, and the
/// queue the pod handlers feed.
struct Kind<K: ReplicaOwner> {
    hooks: Arc<Hooks<K>>,
    writer: reflector::store::Writer<K>,
    queue: mpsc::UnboundedReceiver<ObjectRef<K>>,
}

impl<K: ReplicaOwner> Kind<K> {
    fn new() -> Self {
        let (store, writer) = reflector::store();
        let (tx, rx) = mpsc::unbounded();
        Kind {
            hooks: Arc::new(Hooks {
                owners: store,
                expectations: Arc::new(Expectations::default()),
                queue: tx,
            }),
            writer,
            queue: rx,
        }
    }

    /// Watch the owners and sync them, until the process ends.
    async fn run(self, client: Client, pods: Arc<PodCache>) {
        let (events, _writer) = Recorder::start(client.clone(), K::COMPONENT);
        let store = self.hooks.owners.clone();
        let ctx = Arc::new(Ctx {
            client: client.clone(),
            pods,
            owners: store.clone(),
            expectations: self.hooks.expectations.clone(),
            events,
            failures: Mutex::new(HashMap::new()),
        });
        let gone = ctx.clone();
        let api: Api<K> = Api::all(client);
        let owners = reflector::reflector(self.writer, watcher(api, watcher::Config::default()))
            .default_backoff()
            .filter_map(move |ev| {
                let out = match ev {
                    Ok(watcher::Event::Apply(o)) | Ok(watcher::Event::InitApply(o)) => {
                        Some(ObjectRef::from_obj(&o))
                    }
                    Ok(watcher::Event::Delete(o)) => {
                        // A recreated owner gets a new UID, so this only frees memory.
                        let uid = o.uid().unwrap_or_default();
                        gone.expectations.forget(&uid);
                        gone.failures
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&uid);
                        None
                    }
                    Ok(_) => None,
                    Err(e) => {
                        tracing::warn!(kind = %K::kind(&()), error = %e, "watch failed; retrying");
                        None
                    }
                };
                std::future::ready(out)
            });
        let queue = futures::stream::select(owners, self.queue).map(Ok::<_, Infallible>);
        let cfg = controller::Config::default().concurrency(WORKERS);
        controller::applier(
            |o, c| Box::pin(reconcile::<K>(o, c)),
            error_policy::<K>,
            ctx,
            store,
            queue,
            cfg,
        )
        .for_each(|r| async move {
            if let Err(e) = r {
                // Mostly an owner deleted while queued.
                tracing::trace!(error = %e, "replica controller queue");
            }
        })
        .await;
    }
}

/// Feed the shared pod cache and every kind's handlers.
async fn watch_pods(client: Client, pods: Arc<PodCache>, handlers: Vec<Arc<dyn PodHandler>>) {
    let api: Api<Pod> = Api::all(client);
    let mut stream = std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff());
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(ev) => {
                for ch in pods.apply(ev) {
                    for h in &handlers {
                        h.pod_changed(&ch);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "pod watch failed; retrying"),
        }
    }
}

/// Run both controllers until the future is dropped.
pub async fn run(client: Client) {
    let pods = Arc::new(PodCache::default());
    let rs = Kind::<ReplicaSet>::new();
    let rc = Kind::<ReplicationController>::new();
    let handlers: Vec<Arc<dyn PodHandler>> = vec![rs.hooks.clone(), rc.hooks.clone()];
    let mut tasks = crate::AbortOnDrop(vec![
        tokio::spawn(watch_pods(client.clone(), pods.clone(), handlers)),
        tokio::spawn(rs.run(client.clone(), pods.clone())),
        tokio::spawn(rc.run(client, pods)),
    ]);
    let _ = futures::future::join_all(tasks.0.iter_mut()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_backoff_doubles_from_5ms_to_1000s() {
        assert_eq!(backoff(0), Duration::from_millis(5));
        assert_eq!(backoff(1), Duration::from_millis(10));
        assert_eq!(backoff(10), Duration::from_millis(5120));
        assert_eq!(backoff(40), Duration::from_secs(1000));
    }

    #[test]
    fn errors_print_like_upstream() {
        let s: kube::core::Status = serde_json::from_value(serde_json::json!({
            "code": 403, "reason": "Forbidden",
            "message": "pods \"web-\" is forbidden: exceeded quota: q"
        }))
        .unwrap();
        let e = Error::Api(Box::new(s));
        assert_eq!(
            e.to_string(),
            "pods \"web-\" is forbidden: exceeded quota: q"
        );
        assert!(!e.gone());
        assert_eq!(
            Error::Delete(Box::new(e)).to_string(),
            "unable to delete pods: pods \"web-\" is forbidden: exceeded quota: q"
        );
    }
}
