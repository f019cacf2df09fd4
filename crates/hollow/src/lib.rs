//! Hollow nodes: N simulated kubelets in one process, in the role of KWOK or
//! kubemark. Each registers a Node with realistic capacity, renews its Lease
//! in `kube-node-lease`, takes the pods bound to it to Running (a fake pod IP,
//! Ready conditions, container statuses) and finishes their deletion. No
//! containers run.
//!
//! It is an API client like any kubelet. To stay small at thousands of nodes
//! it shares one pod watch and one node watch among all its nodes, keeps no
//! pod objects (only each pod's IP and start time), and renews Leases from one
//! task that spreads the renewals over the interval.
//!
//! Test controls: the annotations in [`pod`] choose readiness and exit codes
//! per pod, `--fail-percent` fails a share of pods, and the
//! [`node::UNRESPONSIVE_LABEL`] label (or `--unresponsive`) makes a node stop
//! renewing its Lease and handling pods, as a hung kubelet would;
//! [`node::NOT_READY_LABEL`] makes it report Ready=False.

pub mod node;
pub mod pod;
mod queue;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use serde_json::json;

/// Errors of the hollow nodes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request to the API server failed.
    #[error("{what}: {source}")]
    Api {
        /// What was being done.
        what: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn api_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let what = what.into();
    move |source| Error::Api { what, source }
}

/// What to simulate.
#[derive(Clone, Debug)]
pub struct Config {
    /// Number of nodes.
    pub count: usize,
    /// Node names are `<prefix>-<i>`.
    pub prefix: String,
    /// What each node reports.
    pub capacity: node::Capacity,
    /// Share of pods (0–100) whose containers fail (exit code 1).
    pub fail_percent: u8,
    /// This many nodes (the first ones) register and then never renew their
    /// Lease or handle a pod.
    pub unresponsive: usize,
    /// `leaseDurationSeconds` of the Leases.
    pub lease_duration: Duration,
    /// How often each Lease is renewed (the kubelet's 10 s).
    pub renew_every: Duration,
    /// How often each node's status is posted again when nothing changed
    /// (the kubelet's `nodeStatusReportFrequency`, 5 min).
    pub status_every: Duration,
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Whether the nodes take their pods to Running and finish their
    /// deletions. Off, they only keep their Nodes and Leases fresh, as
    /// upstream's scheduler_perf nodes (no kubelet) would.
    pub run_pods: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            count: 1,
            prefix: "hollow".into(),
            capacity: node::Capacity {
                cpu: "4".into(),
                memory: "16Gi".into(),
                pods: 110,
            },
            fail_percent: 0,
            unresponsive: 0,
            lease_duration: Duration::from_secs(40),
            renew_every: Duration::from_secs(10),
            status_every: Duration::from_secs(300),
            concurrency: 32,
            run_pods: true,
        }
    }
}

/// The current time as the API writes it (RFC 3339, microseconds, UTC).
pub fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S.%6fZ")
        .to_string()
}

/// Second-precision time, as `metav1.Time` fields are written.
fn now_seconds() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

struct NodeState {
    name: String,
    index: usize,
    host_ip: String,
    /// Set by `--unresponsive` or the label; such a node does nothing.
    hung: std::sync::atomic::AtomicBool,
    /// Set by the not-ready label: the node reports Ready=False.
    not_ready: std::sync::atomic::AtomicBool,
    ips: Mutex<node::PodIps>,
}

/// What the hollow kubelet remembers of a pod it started.
#[derive(Clone)]
struct Started {
    ip: std::net::Ipv4Addr,
    host_network: bool,
    at: String,
    node: usize,
}

struct Shared {
    cfg: Config,
    client: Client,
    nodes: Vec<NodeState>,
    by_name: HashMap<String, usize>,
    pods: Mutex<HashMap<String, Started>>,
}

/// Register the nodes and run them until the future is dropped.
pub async fn run(client: Client, cfg: Config) -> Result<()> {
    let nodes: Vec<NodeState> = (0..cfg.count)
        .map(|i| NodeState {
            name: format!("{}-{i}", cfg.prefix),
            index: i,
            host_ip: node::node_ip(i).to_string(),
            hung: (i < cfg.unresponsive).into(),
            not_ready: false.into(),
            ips: Mutex::new(node::PodIps::default()),
        })
        .collect();
    let by_name = nodes.iter().map(|n| (n.name.clone(), n.index)).collect();
    let shared = Arc::new(Shared {
        cfg,
        client,
        nodes,
        by_name,
        pods: Mutex::new(HashMap::new()),
    });
    register_all(&shared).await?;
    tracing::info!(
        nodes = shared.nodes.len(),
        prefix = %shared.cfg.prefix,
        "hollow nodes registered"
    );
    let leases = tokio::spawn(renew_leases(shared.clone()));
    let statuses = tokio::spawn(post_statuses(shared.clone()));
    let nodes = tokio::spawn(watch_nodes(shared.clone()));
    let _guard = AbortOnDrop(vec![leases, statuses, nodes]);
    if !shared.cfg.run_pods {
        // Leases and statuses go on in their tasks until the future is dropped.
        std::future::pending::<()>().await;
    }
    watch_pods(shared).await
}

struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// Create each Node (or refresh the one left by an earlier run) and its Lease.
async fn register_all(shared: &Arc<Shared>) -> Result<()> {
    let conc = shared.cfg.concurrency;
    futures::stream::iter(0..shared.nodes.len())
        .map(|i| register(shared, i))
        .buffer_unordered(conc)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

async fn register(shared: &Arc<Shared>, i: usize) -> Result<()> {
    let n = &shared.nodes[i];
    let nodes: Api<Node> = Api::all(shared.client.clone());
    let body = node::node_object(&n.name, &shared.cfg.prefix, i, &shared.cfg.capacity);
    let obj: Node = serde_json::from_value(body.clone()).expect("node objects are valid");
    let created = match nodes.create(&PostParams::default(), &obj).await {
        Ok(o) => o,
        Err(kube::Error::Api(s)) if s.code == 409 => nodes
            .get(&n.name)
            .await
            .map_err(api_err(format!("reading node {}", n.name)))?,
        Err(e) => return Err(api_err(format!("registering node {}", n.name))(e)),
    };
    // Status is the status subresource's: post it there, as a kubelet does.
    nodes
        .patch_status(
            &n.name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": body["status"] })),
        )
        .await
        .map_err(api_err(format!("posting the status of node {}", n.name)))?;
    if let Some(cidr) = created.spec.as_ref().and_then(|s| s.pod_cidr.as_deref()) {
        n.ips.lock().expect("ips lock").set_cidr(cidr);
    }
    let uid = created.metadata.uid.unwrap_or_default();
    let leases: Api<Lease> = Api::namespaced(shared.client.clone(), "kube-node-lease");
    let secs = shared.cfg.lease_duration.as_secs() as i32;
    let lease: Lease = serde_json::from_value(node::lease_object(&n.name, &uid, secs, &now()))
        .expect("lease objects are valid");
    match leases.create(&PostParams::default(), &lease).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => renew(shared, i).await,
        Err(e) => Err(api_err(format!("creating the lease of {}", n.name))(e)),
    }
}

async fn renew(shared: &Arc<Shared>, i: usize) -> Result<()> {
    let n = &shared.nodes[i];
    let leases: Api<Lease> = Api::namespaced(shared.client.clone(), "kube-node-lease");
    let patch = json!({ "spec": { "holderIdentity": n.name, "renewTime": now() } });
    leases
        .patch(&n.name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .map(|_| ())
        .map_err(api_err(format!("renewing the lease of {}", n.name)))
}

/// Slots of the renewal wheel per interval: each node renews in its slot.
const SLOTS: u32 = 100;

/// Renew every live node's Lease once per `renew_every`, spread evenly.
async fn renew_leases(shared: Arc<Shared>) {
    let tick = shared.cfg.renew_every / SLOTS;
    let mut interval = tokio::time::interval(tick.max(Duration::from_millis(1)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut slot = 0u32;
    loop {
        interval.tick().await;
        let due: Vec<usize> = shared
            .nodes
            .iter()
            .filter(|n| n.index as u32 % SLOTS == slot && !n.hung.load(ORD))
            .map(|n| n.index)
            .collect();
        slot = (slot + 1) % SLOTS;
        let conc = shared.cfg.concurrency;
        futures::stream::iter(due)
            .map(|i| {
                let shared = shared.clone();
                async move {
                    if let Err(e) = renew(&shared, i).await {
                        tracing::warn!(error = %e, "lease renewal failed");
                    }
                }
            })
            .buffer_unordered(conc)
            .collect::<Vec<()>>()
            .await;
    }
}

const ORD: std::sync::atomic::Ordering = std::sync::atomic::Ordering::Relaxed;

/// Post each live node's status again every `status_every`, spread evenly,
/// with fresh heartbeats.
async fn post_statuses(shared: Arc<Shared>) {
    let tick = shared.cfg.status_every / SLOTS;
    let mut interval = tokio::time::interval(tick.max(Duration::from_millis(1)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    let mut slot = 0u32;
    loop {
        interval.tick().await;
        for n in shared
            .nodes
            .iter()
            .filter(|n| n.index as u32 % SLOTS == slot)
        {
            if n.hung.load(ORD) {
                continue;
            }
            post_status(&shared, n).await;
        }
        slot = (slot + 1) % SLOTS;
    }
}

/// Post the node's conditions, with fresh heartbeats.
async fn post_status(shared: &Shared, n: &NodeState) {
    let nodes: Api<Node> = Api::all(shared.client.clone());
    let mut st = node::node_status(&n.name, n.index, &shared.cfg.capacity, &now_seconds());
    if n.not_ready.load(ORD) {
        node::set_not_ready(&mut st);
    }
    let patch = Patch::Merge(json!({ "status": { "conditions": st["conditions"] } }));
    if let Err(e) = nodes
        .patch_status(&n.name, &PatchParams::default(), &patch)
        .await
    {
        tracing::warn!(node = %n.name, error = %e, "node status update failed");
    }
}

/// Follow this process's Nodes for the unresponsive label and `podCIDR`.
async fn watch_nodes(shared: Arc<Shared>) {
    let nodes: Api<Node> = Api::all(shared.client.clone());
    let cfg =
        watcher::Config::default().labels(&format!("{}={}", node::PREFIX_LABEL, shared.cfg.prefix));
    let mut events = std::pin::pin!(watcher(nodes, cfg).default_backoff());
    while let Some(ev) = events.next().await {
        let n = match ev {
            Ok(watcher::Event::Apply(n)) | Ok(watcher::Event::InitApply(n)) => n,
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "node watch failed; retrying");
                continue;
            }
        };
        let Some(&i) = n.metadata.name.as_ref().and_then(|m| shared.by_name.get(m)) else {
            continue;
        };
        let labelled = n
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(node::UNRESPONSIVE_LABEL))
            .is_some_and(|v| v == "true");
        let state = &shared.nodes[i];
        if i >= shared.cfg.unresponsive {
            state.hung.store(labelled, ORD);
        }
        let not_ready = n
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(node::NOT_READY_LABEL))
            .is_some_and(|v| v == "true");
        // A change of readiness is posted at once, as a kubelet does.
        if state.not_ready.swap(not_ready, ORD) != not_ready && !state.hung.load(ORD) {
            post_status(&shared, state).await;
        }
        if let Some(cidr) = n.spec.as_ref().and_then(|s| s.pod_cidr.as_deref()) {
            state.ips.lock().expect("ips lock").set_cidr(cidr);
        }
    }
}

/// Follow every bound pod; handle those on this process's live nodes.
async fn watch_pods(shared: Arc<Shared>) -> Result<()> {
    let pods: Api<Pod> = Api::all(shared.client.clone());
    let cfg = watcher::Config::default().fields("spec.nodeName!=");
    let work = queue::Keyed::new();
    for _ in 0..shared.cfg.concurrency {
        let (shared, work) = (shared.clone(), work.clone());
        tokio::spawn(async move {
            while let Some((key, pod)) = work.next().await {
                handle(&shared, pod).await;
                work.done(&key);
            }
        });
    }
    let mut events = std::pin::pin!(watcher(pods, cfg).default_backoff());
    while let Some(ev) = events.next().await {
        match ev {
            Ok(watcher::Event::Apply(p)) | Ok(watcher::Event::InitApply(p)) => {
                let ours = p
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.as_ref())
                    .and_then(|n| shared.by_name.get(n))
                    .is_some_and(|&i| !shared.nodes[i].hung.load(ORD));
                if ours {
                    work.push(key_of(&p), p);
                }
            }
            Ok(watcher::Event::Delete(p)) => forget(&shared, &p),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "pod watch failed; retrying"),
        }
    }
    Ok(())
}

fn key_of(p: &Pod) -> String {
    format!(
        "{}/{}",
        p.metadata.namespace.as_deref().unwrap_or_default(),
        p.metadata.name.as_deref().unwrap_or_default()
    )
}

/// A pod is gone: return its address.
fn forget(shared: &Shared, p: &Pod) {
    let uid = p.metadata.uid.clone().unwrap_or_default();
    if let Some(s) = shared.pods.lock().expect("pods lock").remove(&uid) {
        if !s.host_network {
            shared.nodes[s.node]
                .ips
                .lock()
                .expect("ips lock")
                .give_back(s.ip);
        }
    }
}

/// Bring one pod to what its kubelet would report, or finish its deletion.
async fn handle(shared: &Arc<Shared>, p: Pod) {
    let (ns, name) = (
        p.metadata.namespace.clone().unwrap_or_default(),
        p.metadata.name.clone().unwrap_or_default(),
    );
    let api: Api<Pod> = Api::namespaced(shared.client.clone(), &ns);
    let uid = p.metadata.uid.clone().unwrap_or_default();
    if p.metadata.deletion_timestamp.is_some() {
        // The containers are "stopped" at once; finish the delete as the
        // kubelet does, for this very pod only.
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(uid),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        if let Err(e) = api.delete(&name, &dp).await {
            if !matches!(&e, kube::Error::Api(s) if s.code == 404 || s.code == 409) {
                tracing::warn!(pod = %name, namespace = %ns, error = %e, "finishing a delete failed");
            }
        }
        return;
    }
    let Some(i) = p
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_ref())
        .and_then(|n| shared.by_name.get(n).copied())
    else {
        return;
    };
    let Some(started) = start(shared, &p, i, &uid) else {
        tracing::warn!(node = %shared.nodes[i].name, "no pod address left on the node");
        return;
    };
    let at = pod::Placement {
        host_ip: shared.nodes[i].host_ip.clone(),
        pod_ip: if started.host_network {
            shared.nodes[i].host_ip.clone()
        } else {
            started.ip.to_string()
        },
    };
    let want = pod::status(
        &p,
        pod::behaviour(&p, shared.cfg.fail_percent),
        &at,
        &started.at,
        &now_seconds(),
    );
    if pod::up_to_date(&p, &want) {
        return;
    }
    if let Err(e) = api
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": want })),
        )
        .await
    {
        if !matches!(&e, kube::Error::Api(s) if s.code == 404) {
            tracing::warn!(pod = %name, namespace = %ns, error = %e, "posting pod status failed");
        }
    }
}

/// The pod's address and start time, given out on first sight.
fn start(shared: &Shared, p: &Pod, node: usize, uid: &str) -> Option<Started> {
    let mut pods = shared.pods.lock().expect("pods lock");
    if let Some(s) = pods.get(uid) {
        return Some(s.clone());
    }
    let host_network = p
        .spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false);
    // A pod posted by an earlier run keeps its address.
    let posted = p
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .and_then(|ip| ip.parse::<std::net::Ipv4Addr>().ok());
    let ip = match (host_network, posted) {
        (true, _) => node::node_ip(node),
        (false, Some(ip)) => {
            shared.nodes[node].ips.lock().expect("ips lock").claim(ip);
            ip
        }
        (false, None) => shared.nodes[node]
            .ips
            .lock()
            .expect("ips lock")
            .take(node)?,
    };
    // A pod posted by an earlier run keeps its start time.
    let at = p
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map(|t| t.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(now_seconds);
    let s = Started {
        ip,
        host_network,
        at,
        node,
    };
    pods.insert(uid.to_string(), s.clone());
    Some(s)
}
