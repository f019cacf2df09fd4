//! The taint eviction controller (upstream's NoExecuteTaintManager): a pod
//! on a node with a NoExecute taint it does not tolerate is deleted at
//! once; one it tolerates for `tolerationSeconds` is deleted when that time
//! has passed, unless the taint goes first. Each eviction first adds the
//! `DisruptionTarget` condition to the pod's status, then deletes the pod
//! (UID precondition, the pod's own grace period).
//!
//! One task owns the state, fed by one pod watch and one node watch; only
//! bound, non-terminating pods and each node's NoExecute taints are kept.

pub mod decide;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Client;
use serde_json::json;
use tokio::sync::mpsc;

use crate::events::{Record, Recorder};
use decide::{decide, Decision};

/// The event source, as upstream names it.
pub const COMPONENT: &str = "taint-eviction-controller";
/// Attempts at one eviction before it waits for the pod's next change.
const MAX_ATTEMPTS: u32 = 5;
const RETRY: Duration = Duration::from_secs(1);

struct PodInfo {
    uid: String,
    node: String,
    tolerations: Vec<Toleration>,
}

fn key(p: &Pod) -> String {
    format!(
        "{}/{}",
        p.metadata.namespace.as_deref().unwrap_or(""),
        p.metadata.name.as_deref().unwrap_or("")
    )
}

fn no_execute(n: &Node) -> Vec<Taint> {
    n.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .map(|t| {
            t.iter()
                .filter(|t| t.effect == "NoExecute")
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

struct State {
    client: Client,
    events: Recorder,
    taints: HashMap<String, Vec<Taint>>,
    pods: HashMap<String, PodInfo>,
    by_node: HashMap<String, HashSet<String>>,
    scheduled: HashMap<String, Timestamp>,
    /// Evictions in flight.
    evicting: HashSet<String>,
    failures: HashMap<String, u32>,
    done: mpsc::UnboundedSender<(String, bool)>,
    /// Keys seen during a relist in progress.
    relist_pods: Option<HashSet<String>>,
    relist_nodes: Option<HashSet<String>>,
}

fn pod_ref(key: &str, uid: &str) -> ObjectReference {
    let (ns, name) = key.split_once('/').unwrap_or(("", key));
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        namespace: Some(ns.into()),
        name: Some(name.into()),
        uid: Some(uid.into()),
        ..Default::default()
    }
}

async fn evict(client: Client, key: String, uid: String) -> bool {
    let (ns, name) = key.split_once('/').unwrap_or(("", &key));
    let api: Api<Pod> = Api::namespaced(client, ns);
    let cond = json!({ "status": { "conditions": [{
        "type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
        "message": "Taint manager: deleting due to NoExecute taint",
        "lastTransitionTime": Time(Timestamp::now()),
    }]}});
    match api
        .patch_status(name, &PatchParams::default(), &Patch::Strategic(&cond))
        .await
    {
        Err(kube::Error::Api(s)) if s.code == 404 => return true,
        // The condition is informative: the deletion goes ahead anyway.
        Err(e) => tracing::debug!(pod = %key, error = %e, "adding DisruptionTarget failed"),
        Ok(_) => {}
    }
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(name, &dp).await {
        Ok(_) => {
            tracing::info!(pod = %key, "pod evicted for a NoExecute taint");
            true
        }
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => true,
        Err(e) => {
            tracing::warn!(pod = %key, error = %e, "evicting a pod failed");
            false
        }
    }
}

impl State {
    fn upsert_pod(&mut self, p: &Pod) {
        let k = key(p);
        if let Some(r) = self.relist_pods.as_mut() {
            r.insert(k.clone());
        }
        let node = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        if node.is_empty() || p.metadata.deletion_timestamp.is_some() {
            self.remove_pod(&k);
            return;
        }
        let info = PodInfo {
            uid: p.metadata.uid.clone().unwrap_or_default(),
            node: node.clone(),
            tolerations: p
                .spec
                .as_ref()
                .and_then(|s| s.tolerations.clone())
                .unwrap_or_default(),
        };
        if let Some(old) = self.pods.insert(k.clone(), info) {
            if old.node != node {
                self.unindex(&old.node, &k);
            }
        }
        self.by_node.entry(node).or_default().insert(k.clone());
        self.evaluate(&k);
    }

    fn unindex(&mut self, node: &str, k: &str) {
        if let Some(s) = self.by_node.get_mut(node) {
            s.remove(k);
            if s.is_empty() {
                self.by_node.remove(node);
            }
        }
    }

    fn remove_pod(&mut self, k: &str) {
        if let Some(old) = self.pods.remove(k) {
            self.unindex(&old.node, k);
        }
        self.scheduled.remove(k);
        self.failures.remove(k);
    }

    fn upsert_node(&mut self, n: &Node) {
        let name = n.metadata.name.clone().unwrap_or_default();
        if let Some(r) = self.relist_nodes.as_mut() {
            r.insert(name.clone());
        }
        let t = no_execute(n);
        let same = self.taints.get(&name).is_some_and(|old| *old == t)
            || (t.is_empty() && !self.taints.contains_key(&name));
        if same {
            return;
        }
        if t.is_empty() {
            self.taints.remove(&name);
        } else {
            self.taints.insert(name.clone(), t);
        }
        let pods: Vec<String> = self
            .by_node
            .get(&name)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        pods.iter().for_each(|k| self.evaluate(k));
    }

    fn remove_node(&mut self, name: &str) {
        if self.taints.remove(name).is_some() {
            let pods: Vec<String> = self
                .by_node
                .get(name)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            pods.iter().for_each(|k| self.evaluate(k));
        }
    }

    /// Decide about pod `k` now.
    fn evaluate(&mut self, k: &str) {
        let Some(p) = self.pods.get(k) else { return };
        if self.evicting.contains(k) {
            return;
        }
        let taints = self.taints.get(&p.node).map(Vec::as_slice).unwrap_or(&[]);
        match decide(&p.tolerations, taints, Timestamp::now()) {
            Decision::Keep => {
                if self.scheduled.remove(k).is_some() {
                    self.events.record(Record {
                        object: pod_ref(k, &p.uid),
                        type_: "Normal",
                        reason: "TaintManagerEviction",
                        message: format!("Cancelling deletion of Pod {k}"),
                    });
                }
            }
            Decision::EvictAt(at) => {
                self.scheduled.insert(k.to_string(), at);
            }
            Decision::EvictNow => {
                self.scheduled.remove(k);
                self.evicting.insert(k.to_string());
                self.events.record(Record {
                    object: pod_ref(k, &p.uid),
                    type_: "Normal",
                    reason: "TaintManagerEviction",
                    message: format!("Marking for deletion Pod {k}"),
                });
                let (client, key, uid, done) = (
                    self.client.clone(),
                    k.to_string(),
                    p.uid.clone(),
                    self.done.clone(),
                );
                tokio::spawn(async move {
                    let ok = evict(client, key.clone(), uid).await;
                    let _ = done.send((key, ok));
                });
            }
        }
    }

    fn evicted(&mut self, k: String, ok: bool) {
        self.evicting.remove(&k);
        if ok {
            self.failures.remove(&k);
            return;
        }
        let n = self.failures.entry(k.clone()).or_default();
        *n += 1;
        if *n < MAX_ATTEMPTS {
            let at = Timestamp::now()
                + k8s_openapi::jiff::SignedDuration::try_from(RETRY).unwrap_or_default();
            self.scheduled.insert(k, at);
        }
    }

    fn next_due(&self) -> Option<Timestamp> {
        self.scheduled.values().min().copied()
    }

    fn fire_due(&mut self) {
        let now = Timestamp::now();
        let due: Vec<String> = self
            .scheduled
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            self.scheduled.remove(&k);
            self.evaluate(&k);
        }
    }
}

/// Run until the future is dropped.
pub async fn run(client: Client) {
    let (events, _writer) = Recorder::start(client.clone(), COMPONENT);
    let (done, mut results) = mpsc::unbounded_channel();
    let mut s = State {
        client: client.clone(),
        events,
        taints: HashMap::new(),
        pods: HashMap::new(),
        by_node: HashMap::new(),
        scheduled: HashMap::new(),
        evicting: HashSet::new(),
        failures: HashMap::new(),
        done,
        relist_pods: None,
        relist_nodes: None,
    };
    let pod_api: Api<Pod> = Api::all(client.clone());
    let node_api: Api<Node> = Api::all(client);
    let mut pods = std::pin::pin!(watcher(
        pod_api,
        watcher::Config::default().fields("spec.nodeName!=")
    )
    .default_backoff());
    let mut nodes = std::pin::pin!(watcher(node_api, watcher::Config::default()).default_backoff());
    loop {
        let wait = s.next_due().map(|at| {
            let d = at.duration_since(Timestamp::now());
            Duration::try_from(d).unwrap_or_default()
        });
        let sleep = tokio::time::sleep(wait.unwrap_or(Duration::from_secs(3600)));
        tokio::select! {
            ev = pods.next() => match ev {
                Some(Ok(watcher::Event::Init)) => s.relist_pods = Some(HashSet::new()),
                Some(Ok(watcher::Event::InitApply(p) | watcher::Event::Apply(p))) => s.upsert_pod(&p),
                Some(Ok(watcher::Event::InitDone)) => {
                    if let Some(seen) = s.relist_pods.take() {
                        let gone: Vec<String> = s.pods.keys().filter(|k| !seen.contains(*k)).cloned().collect();
                        gone.iter().for_each(|k| s.remove_pod(k));
                    }
                }
                Some(Ok(watcher::Event::Delete(p))) => s.remove_pod(&key(&p)),
                Some(Err(e)) => tracing::warn!(error = %e, "pod watch failed; retrying"),
                None => return,
            },
            ev = nodes.next() => match ev {
                Some(Ok(watcher::Event::Init)) => s.relist_nodes = Some(HashSet::new()),
                Some(Ok(watcher::Event::InitApply(n) | watcher::Event::Apply(n))) => s.upsert_node(&n),
                Some(Ok(watcher::Event::InitDone)) => {
                    if let Some(seen) = s.relist_nodes.take() {
                        let gone: Vec<String> = s.taints.keys().filter(|k| !seen.contains(*k)).cloned().collect();
                        gone.iter().for_each(|k| s.remove_node(k));
                    }
                }
                Some(Ok(watcher::Event::Delete(n))) => s.remove_node(n.metadata.name.as_deref().unwrap_or_default()),
                Some(Err(e)) => tracing::warn!(error = %e, "node watch failed; retrying"),
                None => return,
            },
            Some((k, ok)) = results.recv() => s.evicted(k, ok),
            _ = sleep, if wait.is_some() => s.fire_due(),
        }
    }
}
