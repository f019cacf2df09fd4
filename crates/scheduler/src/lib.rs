//! The scheduler: places pending pods onto nodes and binds them through
//! `pods/binding`, as an API client (kube-rs) of the API server.
//!
//! One task owns the scheduling state: every Node, and the requests of every
//! pod placed on one (from the pod watch, plus pods this scheduler has bound
//! but not yet seen bound, "assumed" as upstream says). It takes the next
//! pending pod by priority, filters the nodes, scores those that fit, assumes
//! the pod onto the best, and hands the binding to a pool of tasks, so
//! scheduling never waits on the network. A failed binding forgets the
//! assumption and queues the pod again.
//!
//! A pod that fits nowhere gets `PodScheduled=False` (reason `Unschedulable`)
//! with upstream's "0/N nodes are available: ..." message and a
//! `FailedScheduling` event, and waits until something that could help
//! changes: a node is added or changed, or a placed pod goes away.

pub mod plugins;
pub mod quantity;
mod queue;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Binding, Event, Node, ObjectReference, Pod};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Client;
use serde_json::json;
use tokio::sync::mpsc;

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

/// A pod placed on a node, as far as this scheduler knows.
struct Placed {
    node: String,
    request: Request,
}

enum Input {
    Pod(Box<watcher::Event<Pod>>),
    Node(Box<watcher::Event<Node>>),
    /// A binding finished; `Err` carries the pod back.
    Bound(Result<String, Box<Pod>>),
}

struct State {
    cfg: Config,
    client: Client,
    nodes: BTreeMap<String, NodeInfo>,
    /// Every pod placed (by uid).
    placed: HashMap<String, Placed>,
    queue: queue::Queue,
    binds: mpsc::Sender<(Pod, String)>,
    /// Rotates the node scan, so equal scores spread.
    next_start: usize,
}

/// Run until the future is dropped.
pub async fn run(client: Client, cfg: Config) {
    let (tx, mut rx) = mpsc::channel::<Input>(1024);
    let pods: Api<Pod> = Api::all(client.clone());
    let nodes: Api<Node> = Api::all(client.clone());
    let pod_tx = tx.clone();
    let pod_watch = tokio::spawn(async move {
        let mut s = std::pin::pin!(watcher(pods, watcher::Config::default()).default_backoff());
        while let Some(ev) = s.next().await {
            match ev {
                Ok(ev) => {
                    if pod_tx.send(Input::Pod(Box::new(ev))).await.is_err() {
                        return;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "pod watch failed; retrying"),
            }
        }
    });
    let node_tx = tx.clone();
    let node_watch = tokio::spawn(async move {
        let mut s = std::pin::pin!(watcher(nodes, watcher::Config::default()).default_backoff());
        while let Some(ev) = s.next().await {
            match ev {
                Ok(ev) => {
                    if node_tx.send(Input::Node(Box::new(ev))).await.is_err() {
                        return;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "node watch failed; retrying"),
            }
        }
    });
    let (bind_tx, bind_rx) = mpsc::channel::<(Pod, String)>(cfg.bind_concurrency * 4);
    let binder = tokio::spawn(bind_pool(client.clone(), cfg.clone(), bind_rx, tx.clone()));
    let _guard = AbortOnDrop(vec![pod_watch, node_watch, binder]);
    let mut st = State {
        cfg,
        client,
        nodes: BTreeMap::new(),
        placed: HashMap::new(),
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
            Input::Bound(Ok(_)) => {}
            Input::Bound(Err(pod)) => {
                // The assumption was wrong: forget it and try again later.
                self.unplace(&uid(&pod));
                self.queue.push_backoff(*pod);
            }
        }
    }

    fn pod_event(&mut self, ev: watcher::Event<Pod>) {
        match ev {
            watcher::Event::Apply(p) | watcher::Event::InitApply(p) => self.pod_seen(p),
            watcher::Event::Delete(p) => {
                self.queue.remove(&uid(&p));
                if self.unplace(&uid(&p)) {
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

    fn pod_seen(&mut self, p: Pod) {
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
            if finished {
                // A finished pod no longer holds its requests.
                if self.unplace(&id) {
                    self.queue.cluster_changed();
                }
            } else if !self.placed.contains_key(&id) {
                self.place(id, node, plugins::request_of(&p));
            }
            return;
        }
        if self.ours(&p) && !self.placed.contains_key(&id) {
            self.queue.push(p);
        } else {
            self.queue.remove(&id);
        }
    }

    fn place(&mut self, id: String, node: String, request: Request) {
        if let Some(n) = self.nodes.get_mut(&node) {
            n.add(&request);
        }
        self.placed.insert(id, Placed { node, request });
    }

    /// Forget a placed pod; true if it was placed.
    fn unplace(&mut self, id: &str) -> bool {
        let Some(p) = self.placed.remove(id) else {
            return false;
        };
        if let Some(n) = self.nodes.get_mut(&p.node) {
            n.remove(&p.request);
        }
        true
    }

    /// How many feasible nodes to look for before scoring: all of a small
    /// cluster, an adaptive share of a large one (upstream's
    /// percentageOfNodesToScore: 50% minus 1% per 125 nodes, at least 5% and
    /// at least 100 nodes).
    fn feasible_wanted(&self) -> usize {
        let n = self.nodes.len();
        if n <= 100 {
            return n;
        }
        let pct = (50 - (n as i64) / 125).max(5) as usize;
        (n * pct / 100).max(100)
    }

    async fn schedule(&mut self, pod: Pod) {
        let req = plugins::request_of(&pod);
        let total = self.nodes.len();
        let want = self.feasible_wanted();
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        let mut best: Option<(i64, &str)> = None;
        let mut ties = 0u32;
        let mut feasible = 0usize;
        let start = if total == 0 {
            0
        } else {
            self.next_start % total
        };
        for (i, n) in self
            .nodes
            .values()
            .cycle()
            .skip(start)
            .take(total)
            .enumerate()
        {
            match plugins::filter(&pod, &req, n) {
                Ok(()) => {
                    feasible += 1;
                    let s = plugins::score(&req, n);
                    match best {
                        Some((b, _)) if s < b => {}
                        Some((b, _)) if s == b => {
                            // Reservoir sampling among equal scores.
                            ties += 1;
                            if rand::random_range(0..=ties) == 0 {
                                best = Some((s, n.name()));
                            }
                        }
                        _ => {
                            ties = 0;
                            best = Some((s, n.name()));
                        }
                    }
                    if feasible >= want {
                        self.next_start = start + i + 1;
                        break;
                    }
                }
                Err(rs) => {
                    for r in rs {
                        *reasons.entry(r).or_default() += 1;
                    }
                }
            }
        }
        match best {
            Some((_, node)) => {
                let node = node.to_string();
                self.place(uid(&pod), node.clone(), req);
                if self.binds.send((pod, node)).await.is_err() {
                    tracing::warn!("the binder stopped");
                }
            }
            None => {
                let msg = plugins::unschedulable_message(total, &reasons);
                tracing::debug!(pod = ?pod.metadata.name, message = %msg, "unschedulable");
                let client = self.client.clone();
                let cfg = self.cfg.clone();
                let p = pod.clone();
                tokio::spawn(async move { report_unschedulable(client, &cfg, &p, &msg).await });
                self.queue.park(pod);
            }
        }
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
                let res = bind(&client, &cfg, &pod, &node).await;
                let out = match res {
                    Ok(()) => Ok(uid(&pod)),
                    Err(e) => {
                        let gone = matches!(&e, kube::Error::Api(s) if s.code == 404);
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

async fn bind(client: &Client, cfg: &Config, pod: &Pod, node: &str) -> Result<(), kube::Error> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let binding = Binding {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(ns.clone()),
            uid: pod.metadata.uid.clone(),
            ..ObjectMeta::default()
        },
        target: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(node.to_string()),
            ..ObjectReference::default()
        },
    };
    api.create_subresource::<Binding, serde_json::Value>(
        "binding",
        &name,
        &PostParams::default(),
        &binding,
    )
    .await?;
    event(
        client,
        cfg,
        pod,
        "Normal",
        "Scheduled",
        &format!("Successfully assigned {ns}/{name} to {node}"),
    )
    .await;
    Ok(())
}

/// `PodScheduled=False` and a `FailedScheduling` event.
async fn report_unschedulable(client: Client, cfg: &Config, pod: &Pod, msg: &str) {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let already = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"))
        .is_some_and(|c| c.status == "False" && c.message.as_deref() == Some(msg));
    if !already {
        let patch = json!({ "status": { "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": msg, "lastProbeTime": null,
            "lastTransitionTime": now(),
        }]}});
        if let Err(e) = api
            .patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
        {
            tracing::debug!(pod = name, error = %e, "setting PodScheduled=False failed");
        }
    }
    event(&client, cfg, pod, "Warning", "FailedScheduling", msg).await;
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

async fn event(client: &Client, cfg: &Config, pod: &Pod, kind: &str, reason: &str, msg: &str) {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let api: Api<Event> = Api::namespaced(client.clone(), &ns);
    let at = now();
    let ev: Event = match serde_json::from_value(json!({
        "metadata": { "generateName": format!("{name}.") },
        "involvedObject": {
            "apiVersion": "v1", "kind": "Pod", "namespace": ns, "name": name,
            "uid": pod.metadata.uid, "resourceVersion": pod.metadata.resource_version,
        },
        "reason": reason, "message": msg, "type": kind,
        "source": { "component": cfg.name },
        "reportingComponent": cfg.name, "reportingInstance": cfg.name,
        "firstTimestamp": at, "lastTimestamp": at, "count": 1,
    })) {
        Ok(e) => e,
        Err(_) => return,
    };
    if let Err(e) = api.create(&PostParams::default(), &ev).await {
        tracing::debug!(pod = name, error = %e, "recording an event failed");
    }
}
