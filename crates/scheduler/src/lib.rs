//! The scheduler: places pending pods onto nodes and binds them through
//! `pods/binding`, as an API client (kube-rs) of the API server.
//!
//! One task owns the scheduling state: every Node, every pod placed on one
//! (from the pod watch, plus pods this scheduler has bound but not yet seen
//! bound, "assumed" as upstream says), namespace labels and PriorityClasses.
//! It takes the next pending pod by priority, filters the nodes, scores
//! those that fit, assumes the pod onto the best, and hands the binding to
//! a pool of tasks, so scheduling never waits on the network. A failed
//! binding forgets the assumption and queues the pod again.
//!
//! A pod that fits nowhere may preempt lower-priority pods (`preempt.rs`);
//! otherwise it gets `PodScheduled=False` (reason `Unschedulable`) with
//! upstream's "0/N nodes are available: ..." message and a
//! `FailedScheduling` event, and waits until something that could help
//! changes: a node is added or changed, or a placed pod goes away.

pub mod affinity;
mod cycle;
pub mod index;
pub mod plugins;
pub mod preempt;
pub mod quantity;
mod queue;
mod report;
pub mod selector;
pub mod spread;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::api::Api;
use kube::runtime::{watcher, WatchStreamExt};
use kube::Client;
use tokio::sync::mpsc;

use index::{Index, Placed};
use plugins::{NodeInfo, Request};

/// The scheduler's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Pods whose `spec.schedulerName` is this are ours.
    pub name: String,
    /// Bindings in flight at most.
    pub bind_concurrency: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            name: "default-scheduler".into(),
            bind_concurrency: 64,
        }
    }
}

enum Input {
    Pod(Box<watcher::Event<Pod>>),
    Node(Box<watcher::Event<Node>>),
    Namespace(Box<watcher::Event<Namespace>>),
    Class(Box<watcher::Event<PriorityClass>>),
    Budget(Box<watcher::Event<PodDisruptionBudget>>),
    /// A binding finished; `Err` carries the pod back.
    Bound(Result<String, Box<Pod>>),
}

/// A pod that preempted others and waits for them to go.
struct Nomination {
    node: String,
    priority: i32,
    request: Request,
    victims: Vec<String>,
    /// When it preempted.
    at: tokio::time::Instant,
}

/// A PriorityClass, as the scheduler needs it.
#[derive(Clone)]
struct Class {
    value: i32,
    global_default: bool,
    preemption_policy: Option<String>,
}

struct State {
    cfg: Config,
    client: Client,
    nodes: BTreeMap<String, NodeInfo>,
    /// Every pod placed, with per-matcher counts.
    index: Index,
    /// Namespace labels, for affinity terms' `namespaceSelector`.
    namespaces: HashMap<String, BTreeMap<String, String>>,
    classes: HashMap<String, Class>,
    /// PodDisruptionBudgets by namespace/name, which preemption avoids
    /// breaking.
    budgets: HashMap<String, preempt::Budget>,
    /// Preemptors by uid.
    nominated: HashMap<String, Nomination>,
    queue: queue::Queue,
    binds: mpsc::Sender<(Pod, String)>,
    /// Rotates the node scan, so equal scores spread.
    next_start: usize,
}

fn spawn_watch<K, F>(api: Api<K>, tx: mpsc::Sender<Input>, wrap: F) -> tokio::task::JoinHandle<()>
where
    K: kube::Resource
        + Clone
        + std::fmt::Debug
        + k8s_openapi::serde::de::DeserializeOwned
        + Send
        + 'static,
    K::DynamicType: Default,
    F: Fn(watcher::Event<K>) -> Input + Send + 'static,
{
    tokio::spawn(async move {
        let what = std::any::type_name::<K>();
        let mut s = std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff());
        while let Some(ev) = s.next().await {
            match ev {
                Ok(ev) => {
                    if tx.send(wrap(ev)).await.is_err() {
                        return;
                    }
                }
                Err(e) => tracing::warn!(error = %e, what, "watch failed; retrying"),
            }
        }
    })
}

/// Run until the future is dropped.
pub async fn run(client: Client, cfg: Config) {
    let (tx, mut rx) = mpsc::channel::<Input>(1024);
    let watches = vec![
        spawn_watch(Api::<Pod>::all(client.clone()), tx.clone(), |e| {
            Input::Pod(Box::new(e))
        }),
        spawn_watch(Api::<Node>::all(client.clone()), tx.clone(), |e| {
            Input::Node(Box::new(e))
        }),
        spawn_watch(Api::<Namespace>::all(client.clone()), tx.clone(), |e| {
            Input::Namespace(Box::new(e))
        }),
        spawn_watch(Api::<PriorityClass>::all(client.clone()), tx.clone(), |e| {
            Input::Class(Box::new(e))
        }),
        spawn_watch(
            Api::<PodDisruptionBudget>::all(client.clone()),
            tx.clone(),
            |e| Input::Budget(Box::new(e)),
        ),
    ];
    let (bind_tx, bind_rx) = mpsc::channel::<(Pod, String)>(cfg.bind_concurrency * 4);
    let binder = tokio::spawn(bind_pool(client.clone(), cfg.clone(), bind_rx, tx.clone()));
    let mut tasks = watches;
    tasks.push(binder);
    let _guard = AbortOnDrop(tasks);
    let mut st = State {
        cfg,
        client,
        nodes: BTreeMap::new(),
        index: Index::default(),
        namespaces: HashMap::new(),
        classes: HashMap::new(),
        budgets: HashMap::new(),
        nominated: HashMap::new(),
        queue: queue::Queue::default(),
        binds: bind_tx,
        next_start: 0,
    };
    loop {
        // Take in everything that happened before scheduling the next pod.
        while let Ok(input) = rx.try_recv() {
            st.apply(input);
        }
        let wait = st.queue.next_ready_in();
        match wait {
            Some(d) if d.is_zero() => {
                if let Some(pod) = st.queue.pop() {
                    st.schedule(pod).await;
                }
                continue;
            }
            _ => {}
        }
        let sleep = wait.unwrap_or(Duration::from_secs(3600));
        tokio::select! {
            input = rx.recv() => match input {
                Some(i) => st.apply(i),
                None => return,
            },
            _ = tokio::time::sleep(sleep) => {}
        }
    }
}

struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

fn uid(p: &Pod) -> String {
    p.metadata.uid.clone().unwrap_or_default()
}

fn priority(p: &Pod) -> i32 {
    p.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

impl State {
    fn ours(&self, p: &Pod) -> bool {
        let spec = p.spec.as_ref();
        spec.and_then(|s| s.node_name.as_deref())
            .unwrap_or_default()
            .is_empty()
            && spec
                .and_then(|s| s.scheduler_name.as_deref())
                .unwrap_or("default-scheduler")
                == self.cfg.name
            && p.metadata.deletion_timestamp.is_none()
            && !matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded") | Some("Failed")
            )
    }

    fn apply(&mut self, input: Input) {
        match input {
            Input::Pod(ev) => self.pod_event(*ev),
            Input::Node(ev) => self.node_event(*ev),
            Input::Namespace(ev) => self.namespace_event(*ev),
            Input::Class(ev) => self.class_event(*ev),
            Input::Budget(ev) => self.budget_event(*ev),
            Input::Bound(Ok(_)) => {}
            Input::Bound(Err(pod)) => {
                // The assumption was wrong: forget it and try again later,
                // unless the watch has meanwhile seen the pod bound (or
                // gone), which settled it.
                let id = uid(&pod);
                if self.queue.in_flight(&id) {
                    self.unplace(&id);
                    self.queue.push_backoff(*pod);
                }
            }
        }
    }

    fn pod_event(&mut self, ev: watcher::Event<Pod>) {
        match ev {
            watcher::Event::Apply(p) | watcher::Event::InitApply(p) => self.pod_seen(p),
            watcher::Event::Delete(p) => {
                let id = uid(&p);
                self.queue.remove(&id);
                self.nominated.remove(&id);
                if self.unplace(&id) {
                    self.queue.cluster_changed();
                }
            }
            _ => {}
        }
    }

    fn node_event(&mut self, ev: watcher::Event<Node>) {
        match ev {
            watcher::Event::Apply(n) | watcher::Event::InitApply(n) => {
                let name = n.metadata.name.clone().unwrap_or_default();
                let mut info = NodeInfo::new(Arc::new(n));
                if let Some(old) = self.nodes.remove(&name) {
                    info.used = old.used;
                    info.pods = old.pods;
                    info.ports = old.ports;
                }
                self.nodes.insert(name, info);
                self.queue.cluster_changed();
            }
            watcher::Event::Delete(n) => {
                self.nodes
                    .remove(n.metadata.name.as_deref().unwrap_or_default());
            }
            _ => {}
        }
    }

    fn namespace_event(&mut self, ev: watcher::Event<Namespace>) {
        match ev {
            watcher::Event::Apply(n) | watcher::Event::InitApply(n) => {
                let name = n.metadata.name.clone().unwrap_or_default();
                self.namespaces
                    .insert(name, n.metadata.labels.unwrap_or_default());
            }
            watcher::Event::Delete(n) => {
                self.namespaces
                    .remove(n.metadata.name.as_deref().unwrap_or_default());
            }
            _ => {}
        }
    }

    fn class_event(&mut self, ev: watcher::Event<PriorityClass>) {
        match ev {
            watcher::Event::Apply(c) | watcher::Event::InitApply(c) => {
                let name = c.metadata.name.clone().unwrap_or_default();
                self.classes.insert(
                    name,
                    Class {
                        value: c.value.unwrap_or(0),
                        global_default: c.global_default.unwrap_or(false),
                        preemption_policy: c.preemption_policy,
                    },
                );
            }
            watcher::Event::Delete(c) => {
                self.classes
                    .remove(c.metadata.name.as_deref().unwrap_or_default());
            }
            _ => {}
        }
    }

    fn budget_event(&mut self, ev: watcher::Event<PodDisruptionBudget>) {
        let key = |b: &PodDisruptionBudget| {
            format!(
                "{}/{}",
                b.metadata.namespace.as_deref().unwrap_or_default(),
                b.metadata.name.as_deref().unwrap_or_default()
            )
        };
        match ev {
            watcher::Event::Apply(b) | watcher::Event::InitApply(b) => {
                self.budgets.insert(key(&b), preempt::Budget::of(&b));
            }
            watcher::Event::Delete(b) => {
                self.budgets.remove(&key(&b));
            }
            _ => {}
        }
    }

    /// Fill in a pod's priority from its PriorityClass (or the global
    /// default class) when admission has not, as the Priority admission
    /// plugin would have.
    fn resolve_priority(&self, p: &mut Pod) {
        let Some(spec) = p.spec.as_mut() else {
            return;
        };
        if spec.priority.is_some() {
            return;
        }
        let class = match spec.priority_class_name.as_deref() {
            Some(name) if !name.is_empty() => self.classes.get(name),
            _ => self.classes.values().find(|c| c.global_default),
        };
        if let Some(c) = class {
            spec.priority = Some(c.value);
            if spec.preemption_policy.is_none() {
                spec.preemption_policy = c.preemption_policy.clone();
            }
        }
    }

    fn pod_seen(&mut self, mut p: Pod) {
        self.resolve_priority(&mut p);
        let id = uid(&p);
        let node = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        let finished = matches!(
            p.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded") | Some("Failed")
        );
        if !node.is_empty() {
            self.queue.remove(&id);
            self.nominated.remove(&id);
            if finished {
                // A finished pod no longer holds its requests.
                if self.unplace(&id) {
                    self.queue.cluster_changed();
                }
            } else if self.index.get(&id).is_none_or(|x| x.node != node) {
                // Bound where we did not assume (another scheduler, or a
                // nodeName set at creation): move its requests there.
                self.unplace(&id);
                let request = plugins::request_of(&p);
                self.place(id, node, request, Arc::new(p));
                self.queue.pod_placed();
            } else {
                // Labels may have changed (affinity and spread count them),
                // or the pod may have begun terminating (spread stops
                // counting it).
                let changed = self.index.get(&id).is_some_and(|x| {
                    x.pod.metadata.labels != p.metadata.labels
                        || x.pod.metadata.deletion_timestamp.is_some()
                            != p.metadata.deletion_timestamp.is_some()
                });
                if changed {
                    let request = plugins::request_of(&p);
                    self.unplace(&id);
                    self.place(id, node, request, Arc::new(p));
                    self.queue.cluster_changed();
                    self.queue.pod_placed();
                }
            }
            return;
        }
        if self.ours(&p) {
            // A pod placed here and not yet seen bound has its binding in
            // flight: it stays in the queue as it is.
            if !self.index.contains(&id) {
                self.queue.push(p);
            }
        } else {
            self.queue.remove(&id);
        }
    }

    fn place(&mut self, id: String, node: String, request: Request, pod: Arc<Pod>) {
        if let Some(n) = self.nodes.get_mut(&node) {
            n.add(&request);
        }
        let priority = priority(&pod);
        self.index.add(
            id,
            Placed {
                node,
                pod,
                request,
                priority,
            },
        );
    }

    /// Forget a placed pod; true if it was placed.
    fn unplace(&mut self, id: &str) -> bool {
        let Some(p) = self.index.remove(id) else {
            return false;
        };
        if let Some(n) = self.nodes.get_mut(&p.node) {
            n.remove(&p.request);
        }
        true
    }
}

/// Bind pods from the channel, `bind_concurrency` at a time.
async fn bind_pool(
    client: Client,
    cfg: Config,
    rx: mpsc::Receiver<(Pod, String)>,
    back: mpsc::Sender<Input>,
) {
    tokio_stream::wrappers::ReceiverStream::new(rx)
        .for_each_concurrent(cfg.bind_concurrency, |(pod, node)| {
            let (client, back, cfg) = (client.clone(), back.clone(), cfg.clone());
            async move {
                let res = report::bind(&client, &cfg, &pod, &node).await;
                let out = match res {
                    Ok(()) => Ok(uid(&pod)),
                    Err(e) => {
                        // 404: the pod is gone; 409: it is already bound
                        // (the watch will say where). Either way there is
                        // nothing to retry.
                        let gone = matches!(&e, kube::Error::Api(s) if s.code == 404 || s.code == 409);
                        tracing::debug!(pod = ?pod.metadata.name, node, error = %e, "binding failed");
                        if gone {
                            Ok(uid(&pod))
                        } else {
                            Err(Box::new(pod))
                        }
                    }
                };
                let _ = back.send(Input::Bound(out)).await;
            }
        })
        .await;
}
