//! The node lifecycle controller, as upstream's: watches Nodes and their
//! Leases in `kube-node-lease`, and every `--node-monitor-period`
//!
//! - marks a node whose kubelet went silent (no Lease renewal and no status
//!   heartbeat for `--node-monitor-grace-period`) with `Unknown`
//!   conditions ([`health`]), records `NodeNotReady` and marks its pods not
//!   Ready;
//! - keeps the NoSchedule taints in line with the conditions, and queues
//!   the NoExecute taint (`unreachable` or `not-ready`, [`taints`]) that the
//!   taint eviction controller acts on. The queue is drained per zone at the
//!   zone's eviction rate ([`zones`]); removals are immediate.
//!
//! Timing uses this process's clock: a node gets a full grace period after
//! the controller (re)starts.

pub mod health;
pub mod taints;
pub mod zones;

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Client;
use serde_json::json;

use crate::events::{Record, Recorder};
use crate::nodeipam::node_event;
use crate::Config;
use health::Heartbeat;
use zones::{Bucket, ZoneState};

/// The event source, as upstream names it.
pub const COMPONENT: &str = "node-controller";
/// How often the NoExecute queue is drained (upstream's 100 ms).
const TAINT_TICK: Duration = Duration::from_millis(100);
const LEASE_NAMESPACE: &str = "kube-node-lease";

struct NodeHealth {
    beat: Heartbeat,
    probe: Instant,
}

/// The controller's state, owned by its one task.
struct Controller {
    client: Client,
    cfg: Config,
    events: Recorder,
    nodes: Store<Node>,
    leases: Store<Lease>,
    health: HashMap<String, NodeHealth>,
    /// Nodes waiting for their NoExecute taint, per zone.
    pending: HashMap<String, VecDeque<String>>,
    queued: HashSet<String>,
    buckets: HashMap<String, Bucket>,
    /// Each zone's eviction rate, from the last monitor pass.
    rates: HashMap<String, f64>,
    /// Every zone is fully disrupted: nothing is tainted NoExecute.
    all_disrupted: bool,
}

fn name_of(n: &Node) -> String {
    n.metadata.name.clone().unwrap_or_default()
}

/// Write the node's taints, pinned to the resourceVersion they were
/// computed from.
async fn write_taints(
    client: &Client,
    n: &Node,
    t: Vec<k8s_openapi::api::core::v1::Taint>,
) -> Result<Node, kube::Error> {
    let api: Api<Node> = Api::all(client.clone());
    let taints = if t.is_empty() { json!(null) } else { json!(t) };
    let patch = json!({
        "metadata": { "resourceVersion": n.metadata.resource_version },
        "spec": { "taints": taints },
    });
    api.patch(&name_of(n), &PatchParams::default(), &Patch::Merge(&patch))
        .await
}

/// Upstream's `MarkPodsNotReady`: the node's pods stop counting as Ready.
async fn mark_pods_not_ready(client: Client, events: Recorder, node: String) {
    let api: Api<Pod> = Api::all(client.clone());
    let lp = ListParams::default().fields(&format!("spec.nodeName={node}"));
    let pods = match api.list(&lp).await {
        Ok(l) => l.items,
        Err(e) => {
            tracing::warn!(node = %node, error = %e, "listing the pods of a not-ready node failed");
            return;
        }
    };
    let now = Timestamp::now();
    for p in pods {
        let ready = p
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
            .is_some_and(|c| c.status == "True");
        if !ready || p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let ns = p.metadata.namespace.clone().unwrap_or_default();
        let name = p.metadata.name.clone().unwrap_or_default();
        let patch = json!({
            "metadata": { "resourceVersion": p.metadata.resource_version },
            "status": { "conditions": [
                { "type": "Ready", "status": "False", "lastTransitionTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now) }
            ] }
        });
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
        match pods
            .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
        {
            Ok(_) => events.record(Record {
                object: k8s_openapi::api::core::v1::ObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    namespace: Some(ns),
                    name: Some(name),
                    uid: p.metadata.uid.clone(),
                    ..Default::default()
                },
                type_: "Warning",
                reason: "NodeNotReady",
                message: "Node is not ready".into(),
            }),
            Err(e) => tracing::debug!(pod = %name, error = %e, "marking a pod not ready failed"),
        }
    }
}

impl Controller {
    fn lease_renew(&self, name: &str) -> Option<String> {
        let l = self
            .leases
            .get(&ObjectRef::new(name).within(LEASE_NAMESPACE))?;
        l.spec
            .as_ref()?
            .renew_time
            .as_ref()
            .map(|t| t.0.to_string())
    }

    /// One pass over every node.
    async fn monitor(&mut self) {
        let now = Instant::now();
        let nodes = self.nodes.state();
        let names: HashSet<String> = nodes.iter().map(|n| name_of(n)).collect();
        let gone: Vec<String> = self
            .health
            .keys()
            .filter(|k| !names.contains(*k))
            .cloned()
            .collect();
        for g in gone {
            self.health.remove(&g);
            self.events.record(node_event(
                &g,
                "Normal",
                "RemovingNode",
                format!("Node {g} event: Removing Node {g} from Controller"),
            ));
        }
        // zone → (ready, not ready)
        let mut counts: HashMap<String, (usize, usize)> = HashMap::new();
        for n in nodes {
            let name = name_of(&n);
            let beat = Heartbeat::of(&n, self.lease_renew(&name));
            match self.health.get_mut(&name) {
                None => {
                    self.events.record(node_event(
                        &name,
                        "Normal",
                        "RegisteredNode",
                        format!("Node {name} event: Registered Node {name} in Controller"),
                    ));
                    self.health
                        .insert(name.clone(), NodeHealth { beat, probe: now });
                }
                Some(h) if h.beat != beat => {
                    h.beat = beat;
                    h.probe = now;
                }
                Some(_) => {}
            }
            let observed = health::ready(&n).map(str::to_string);
            let grace = if observed.is_none() {
                self.cfg.node_startup_grace_period
            } else {
                self.cfg.node_monitor_grace_period
            };
            let probe = self.health.get(&name).map_or(now, |h| h.probe);
            let mut cur: Node = (*n).clone();
            if now.saturating_duration_since(probe) > grace {
                if let Some(conds) = health::unknown_conditions(&cur, Timestamp::now()) {
                    match self.write_conditions(&cur, conds).await {
                        Ok(written) => {
                            tracing::info!(node = %name, "node stopped posting status; conditions set to Unknown");
                            cur = written;
                        }
                        Err(e) => {
                            tracing::warn!(node = %name, error = %e, "marking a node Unknown failed");
                            continue;
                        }
                    }
                }
            }
            let ready = health::ready(&cur).map(str::to_string);
            if observed.as_deref() == Some("True") && ready.as_deref() != Some("True") {
                self.events.record(node_event(
                    &name,
                    "Normal",
                    "NodeNotReady",
                    format!("Node {name} status is now: NodeNotReady"),
                ));
                tokio::spawn(mark_pods_not_ready(
                    self.client.clone(),
                    self.events.clone(),
                    name.clone(),
                ));
            }
            let c = counts.entry(zones::zone_of(&cur)).or_default();
            if ready.as_deref() == Some("True") {
                c.0 += 1;
            } else {
                c.1 += 1;
            }
            let want = taints::no_schedule_for(&cur);
            if let Some(t) = taints::with_no_schedule(&cur, &want) {
                match write_taints(&self.client, &cur, t).await {
                    Ok(w) => cur = w,
                    Err(e) => {
                        tracing::debug!(node = %name, error = %e, "updating NoSchedule taints failed");
                        continue;
                    }
                }
            }
            self.no_execute(&cur, ready.as_deref()).await;
        }
        self.zones(counts).await;
    }

    async fn write_conditions(
        &self,
        n: &Node,
        conds: Vec<k8s_openapi::api::core::v1::NodeCondition>,
    ) -> Result<Node, kube::Error> {
        let api: Api<Node> = Api::all(self.client.clone());
        let patch = json!({
            "metadata": { "resourceVersion": n.metadata.resource_version },
            "status": { "conditions": conds },
        });
        api.patch_status(&name_of(n), &PatchParams::default(), &Patch::Merge(&patch))
            .await
    }

    /// Queue, swap or remove the node's NoExecute taint.
    async fn no_execute(&mut self, n: &Node, ready: Option<&str>) {
        let name = name_of(n);
        let want = if self.all_disrupted {
            None
        } else {
            taints::no_execute_for(ready)
        };
        let have = taints::current_no_execute(n);
        match (want, have.as_deref()) {
            (Some(w), Some(h)) if w == h => self.dequeue(&name),
            // A tainted node changes from not-ready to unreachable (or
            // back): swapped at once, as upstream does.
            (Some(_), Some(_)) | (None, Some(_)) => {
                self.dequeue(&name);
                if let Some(t) = taints::with_no_execute(n, want, Timestamp::now()) {
                    match write_taints(&self.client, n, t).await {
                        Ok(_) if want.is_none() => {
                            tracing::info!(node = %name, "node reachable again; NoExecute taint removed")
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::debug!(node = %name, error = %e, "updating the NoExecute taint failed")
                        }
                    }
                }
            }
            (Some(_), None) => {
                if self.queued.insert(name.clone()) {
                    self.pending
                        .entry(zones::zone_of(n))
                        .or_default()
                        .push_back(name);
                }
            }
            (None, None) => self.dequeue(&name),
        }
    }

    fn dequeue(&mut self, name: &str) {
        if self.queued.remove(name) {
            for q in self.pending.values_mut() {
                q.retain(|n| n != name);
            }
        }
    }

    /// Zone states: the eviction rates, and the all-disrupted mode.
    async fn zones(&mut self, counts: HashMap<String, (usize, usize)>) {
        let states: HashMap<String, (ZoneState, usize)> = counts
            .iter()
            .map(|(z, &(r, nr))| {
                (
                    z.clone(),
                    (
                        zones::zone_state(r, nr, self.cfg.unhealthy_zone_threshold),
                        r + nr,
                    ),
                )
            })
            .collect();
        let all = !states.is_empty()
            && states
                .values()
                .all(|(s, _)| *s == ZoneState::FullDisruption);
        if all && !self.all_disrupted {
            tracing::warn!("every node is not Ready: assuming a control-plane network problem, no NoExecute taints");
            self.all_disrupted = true;
            self.pending.clear();
            self.queued.clear();
            for n in self.nodes.state() {
                if taints::current_no_execute(&n).is_some() {
                    self.no_execute(&n, None).await;
                }
            }
        } else if !all && self.all_disrupted {
            tracing::info!("some nodes are Ready again: NoExecute tainting resumes");
            self.all_disrupted = false;
            // Nodes get a full grace period from now.
            let now = Instant::now();
            self.health.values_mut().for_each(|h| h.probe = now);
        }
        self.rates = states
            .into_iter()
            .map(|(z, (s, size))| (z, zones::rate(&self.cfg, s, size)))
            .collect();
    }

    /// Add queued NoExecute taints, each zone at its rate.
    async fn taint(&mut self) {
        let now = Instant::now();
        let zones: Vec<String> = self.pending.keys().cloned().collect();
        for z in zones {
            let rate = self
                .rates
                .get(&z)
                .copied()
                .unwrap_or(self.cfg.node_eviction_rate);
            while let Some(name) = self.pending.get(&z).and_then(|q| q.front().cloned()) {
                let Some(n) = self.nodes.get(&ObjectRef::new(&name)) else {
                    self.dequeue(&name);
                    continue;
                };
                let want = taints::no_execute_for(health::ready(&n));
                if want.is_none() || taints::current_no_execute(&n).as_deref() == want {
                    self.dequeue(&name);
                    continue;
                }
                let bucket = self
                    .buckets
                    .entry(z.clone())
                    .or_insert_with(|| Bucket::new(now));
                if !bucket.take(rate, now) {
                    break;
                }
                self.dequeue(&name);
                if let Some(t) = taints::with_no_execute(&n, want, Timestamp::now()) {
                    match write_taints(&self.client, &n, t).await {
                        Ok(_) => {
                            tracing::info!(node = %name, taint = want.unwrap_or_default(), "node tainted NoExecute")
                        }
                        Err(e) => {
                            // The next monitor pass queues it again.
                            tracing::debug!(node = %name, error = %e, "adding the NoExecute taint failed")
                        }
                    }
                }
            }
        }
    }
}

/// Run until the future is dropped.
pub async fn run(client: Client, cfg: Config) {
    let (events, _writer) = Recorder::start(client.clone(), COMPONENT);
    let (nodes, nw) = reflector::store::<Node>();
    let (leases, lw) = reflector::store::<Lease>();
    let node_api: Api<Node> = Api::all(client.clone());
    let lease_api: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let watch_nodes = reflector::reflector(nw, watcher(node_api, watcher::Config::default()))
        .default_backoff()
        .for_each(|ev| async move {
            if let Err(e) = ev {
                tracing::warn!(error = %e, "node watch failed; retrying");
            }
        });
    let watch_leases = reflector::reflector(lw, watcher(lease_api, watcher::Config::default()))
        .default_backoff()
        .for_each(|ev| async move {
            if let Err(e) = ev {
                tracing::warn!(error = %e, "lease watch failed; retrying");
            }
        });
    let _tasks = crate::AbortOnDrop(vec![tokio::spawn(watch_nodes), tokio::spawn(watch_leases)]);
    if nodes.wait_until_ready().await.is_err() || leases.wait_until_ready().await.is_err() {
        return;
    }
    let mut c = Controller {
        client,
        cfg: cfg.clone(),
        events,
        nodes,
        leases,
        health: HashMap::new(),
        pending: HashMap::new(),
        queued: HashSet::new(),
        buckets: HashMap::new(),
        rates: HashMap::new(),
        all_disrupted: false,
    };
    let mut monitor =
        tokio::time::interval(cfg.node_monitor_period.max(Duration::from_millis(100)));
    monitor.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tainter = tokio::time::interval(TAINT_TICK);
    tainter.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // The tainter ticks only while nodes wait for a NoExecute taint, so
        // an idle cluster sees one wake-up per monitor period.
        let waiting = c.pending.values().any(|q| !q.is_empty());
        tokio::select! {
            _ = monitor.tick() => c.monitor().await,
            _ = tainter.tick(), if waiting => c.taint().await,
        }
    }
}
