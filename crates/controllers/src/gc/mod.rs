//! The garbage collector: deletes objects whose owners are all gone, and
//! carries out the `Foreground` and `Orphan` propagation policies, as
//! upstream's garbage collector controller does.
//!
//! Shape:
//! - [`discovery`] finds every resource that can be listed, watched and
//!   deleted, and runs one metadata watch ("monitor") per resource;
//! - one task applies the monitors' changes to the [`graph::Graph`] in
//!   order, and queues what each change asks for;
//! - workers take UIDs from two [`queue::Queue`]s: [`attempt`] (delete an
//!   object whose owners are absent, drop dangling references, finish a
//!   foreground deletion) and [`orphan`] (release the dependents of an
//!   owner deleted with `Orphan`).
//!
//! The graph only decides what to look at: every decision is checked
//! against live reads of the object and its owners, and every write is
//! pinned to what was read (UID precondition on deletes, resourceVersion on
//! patches).

pub mod attempt;
pub mod discovery;
pub mod graph;
pub mod ops;
pub mod orphan;
pub mod queue;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use tokio::sync::mpsc;
use tokio::sync::Notify;

use crate::replicaset::events::{Record, Recorder};
use attempt::AbsentCache;
use discovery::Mapper;
use graph::{Effect, Graph, Meta, Resource};
use queue::Queue;

/// The event source, as upstream names it.
pub const COMPONENT: &str = "garbage-collector-controller";
/// Workers per queue (upstream's `--concurrent-gc-syncs` default).
const WORKERS: usize = 20;

/// A change seen by a monitor, applied to the graph in order.
#[derive(Debug)]
pub enum Change {
    /// An object added or modified.
    Upsert(Arc<Resource>, Meta),
    /// An object deleted, by UID.
    Delete(String),
    /// A full list of resource `key` is done: it held exactly `seen`.
    Relisted { key: String, seen: HashSet<String> },
    /// Resource `key` is no longer watched.
    Stopped(String),
}

/// The graph and which monitors have listed their resource into it.
#[derive(Default)]
pub struct State {
    pub graph: Graph,
    synced: HashSet<String>,
}

/// What the workers share.
pub struct Ctx {
    pub client: Client,
    state: Mutex<State>,
    pub attempt_to_delete: Arc<Queue<String>>,
    pub attempt_to_orphan: Arc<Queue<String>>,
    pub absent: Mutex<AbsentCache>,
    mapper: RwLock<Arc<Mapper>>,
    /// Asks discovery to run now.
    refresh: Notify,
    /// Workers hold it to read; discovery holds it to write while monitors list.
    pause: Arc<tokio::sync::RwLock<()>>,
    events: Recorder,
}

impl Ctx {
    /// The graph, locked (never across an await).
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current mapper.
    pub fn mapper(&self) -> Arc<Mapper> {
        self.mapper
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Ask for a discovery run soon (a kind could not be mapped).
    pub fn refresh_discovery(&self) {
        self.refresh.notify_one();
    }

    fn synced(&self, keys: &[String]) -> bool {
        let st = self.state();
        keys.iter().all(|k| st.synced.contains(k))
    }

    /// Carry out what a graph change asks for.
    fn apply(&self, fx: Vec<Effect>) {
        for e in fx {
            match e {
                Effect::AttemptToDelete(uid) => self.attempt_to_delete.add(uid),
                Effect::AttemptToOrphan(uid) => self.attempt_to_orphan.add(uid),
                Effect::Absent(id) => self
                    .absent
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .add(id),
                Effect::InvalidNamespace { dependent, owner } => {
                    let owner_id = graph::Identity::of_ref(&owner, &dependent.namespace);
                    tracing::debug!(item = %dependent, owner = %owner_id, "item references an owner but does not match namespaces");
                    self.events.record(Record {
                        object: ObjectReference {
                            api_version: Some(dependent.api_version.clone()),
                            kind: Some(dependent.kind.clone()),
                            name: Some(dependent.name.clone()),
                            namespace: Some(dependent.namespace.clone()),
                            uid: Some(dependent.uid.clone()),
                            ..ObjectReference::default()
                        },
                        type_: "Warning",
                        reason: "OwnerRefInvalidNamespace",
                        message: format!(
                            "ownerRef {owner_id} does not exist in namespace {:?}",
                            dependent.namespace
                        ),
                    });
                }
            }
        }
    }
}

/// Apply the monitors' changes to the graph, in order.
async fn build_graph(ctx: Arc<Ctx>, mut rx: mpsc::UnboundedReceiver<Change>) {
    while let Some(change) = rx.recv().await {
        let mut crd_changed = false;
        let fx = {
            let mut st = ctx.state();
            match change {
                Change::Upsert(res, meta) => {
                    crd_changed = is_crd(&res);
                    st.graph.upsert(&res, meta)
                }
                Change::Delete(uid) => {
                    crd_changed = st.graph.node(&uid).is_some_and(|n| is_crd(&n.res));
                    st.graph.remove(&uid)
                }
                Change::Relisted { key, seen } => {
                    let fx = st.graph.relisted(&key, &seen);
                    st.synced.insert(key);
                    fx
                }
                Change::Stopped(key) => {
                    st.synced.remove(&key);
                    st.graph.relisted(&key, &HashSet::new())
                }
            }
        };
        ctx.apply(fx);
        if crd_changed {
            // Custom resources come and go with their definitions: watch
            // them now rather than at the next periodic discovery.
            ctx.refresh_discovery();
        }
    }
}

fn is_crd(res: &Resource) -> bool {
    res.ar.group == "apiextensions.k8s.io" && res.ar.plural == "customresourcedefinitions"
}

async fn delete_worker(ctx: Arc<Ctx>) {
    loop {
        let uid = ctx.attempt_to_delete.get().await;
        let res = {
            let _running = ctx.pause.read().await;
            attempt::attempt_to_delete(&ctx, &uid).await
        };
        match res {
            Ok(attempt::Outcome::Forget) => ctx.attempt_to_delete.forget(&uid),
            Ok(attempt::Outcome::Requeue) => ctx.attempt_to_delete.add_rate_limited(uid.clone()),
            Err(e) => {
                e.log(&uid, ctx.attempt_to_delete.retries(&uid));
                ctx.attempt_to_delete.add_rate_limited(uid.clone());
            }
        }
        ctx.attempt_to_delete.done(&uid);
    }
}

async fn orphan_worker(ctx: Arc<Ctx>) {
    loop {
        let uid = ctx.attempt_to_orphan.get().await;
        let res = {
            let _running = ctx.pause.read().await;
            orphan::attempt_to_orphan(&ctx, &uid).await
        };
        match res {
            Ok(()) => ctx.attempt_to_orphan.forget(&uid),
            Err(e) => {
                e.log(&uid, ctx.attempt_to_orphan.retries(&uid));
                ctx.attempt_to_orphan.add_rate_limited(uid.clone());
            }
        }
        ctx.attempt_to_orphan.done(&uid);
    }
}

/// Run the collector until the future is dropped.
pub async fn run(client: Client) {
    let (events, writer) = Recorder::start(client.clone(), COMPONENT);
    let pause = Arc::new(tokio::sync::RwLock::new(()));
    // Held by discovery until every monitor has listed once.
    let first = pause.clone().write_owned().await;
    let ctx = Arc::new(Ctx {
        client,
        state: Mutex::new(State::default()),
        attempt_to_delete: Arc::new(Queue::default()),
        attempt_to_orphan: Arc::new(Queue::default()),
        absent: Mutex::new(AbsentCache::default()),
        mapper: RwLock::new(Arc::new(Mapper::default())),
        refresh: Notify::new(),
        pause,
        events,
    });
    let (tx, rx) = mpsc::unbounded_channel();
    let mut tasks = vec![
        writer,
        tokio::spawn(build_graph(ctx.clone(), rx)),
        tokio::spawn(discovery::sync(ctx.clone(), tx, first)),
    ];
    for _ in 0..WORKERS {
        tasks.push(tokio::spawn(delete_worker(ctx.clone())));
        tasks.push(tokio::spawn(orphan_worker(ctx.clone())));
    }
    let mut tasks = crate::AbortOnDrop(tasks);
    let _ = futures::future::join_all(tasks.0.iter_mut()).await;
}
