//! Following the pods of one namespace: one watch (resumed from the last
//! resourceVersion when the server ends it, relisted after a 410) feeding a
//! [`Tracker`] that records when each pod was first seen, first seen bound
//! (`spec.nodeName` set) and first seen Running and Ready, and when each of
//! those counts reached the target.
//!
//! Times are taken as each event is read, in the watch's task, so how often
//! the benchmark looks at the tracker does not change the figures.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use futures::TryStreamExt;
use kube::core::WatchEvent;
use kube::Client;
use serde::Deserialize;
use tokio::task::JoinHandle;

use crate::apiserver::{call_ok, get};
use crate::cluster::SlimCondition;

/// Only what the tracker needs of a pod.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct SlimPod {
    #[serde(default)]
    metadata: PodMeta,
    #[serde(default)]
    spec: PodSpec,
    #[serde(default)]
    status: PodStatus,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodMeta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    resource_version: String,
    #[serde(default)]
    deletion_timestamp: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodSpec {
    #[serde(default)]
    node_name: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct PodStatus {
    #[serde(default)]
    phase: Option<String>,
    #[serde(default)]
    conditions: Vec<SlimCondition>,
}

impl SlimPod {
    fn bound(&self) -> bool {
        self.spec
            .node_name
            .as_deref()
            .is_some_and(|n| !n.is_empty())
    }

    fn running_ready(&self) -> bool {
        self.status.phase.as_deref() == Some("Running")
            && self
                .status
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
    }

    /// A short description for the diagnosis of a stuck run: phase, bound or
    /// not, the conditions that are not True.
    fn state(&self) -> String {
        let mut s = format!(
            "{}{}",
            self.status.phase.as_deref().unwrap_or("no phase"),
            if self.bound() { "" } else { ", unbound" }
        );
        if self.metadata.deletion_timestamp.is_some() {
            s.push_str(", terminating");
        }
        for c in &self.status.conditions {
            if c.status != "True" {
                s.push_str(&format!(", {}={}", c.type_, c.status));
            }
        }
        s
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Seen {
    pub(crate) bound: Option<Instant>,
    pub(crate) ready: Option<Instant>,
}

/// What the watch has seen of the pods.
#[derive(Debug)]
pub(crate) struct Tracker {
    target: usize,
    pub(crate) pods: HashMap<String, Seen>,
    /// The last state of every pod still there, for the diagnosis.
    states: HashMap<String, String>,
    pub(crate) bound: usize,
    pub(crate) ready: usize,
    pub(crate) deleted: usize,
    pub(crate) all_created: Option<Instant>,
    pub(crate) all_bound: Option<Instant>,
    pub(crate) all_ready: Option<Instant>,
    /// Pod events read (ADDED, MODIFIED, DELETED).
    pub(crate) events: usize,
    /// Times the watch was reopened, and relists after a 410.
    pub(crate) reopened: usize,
    pub(crate) relisted: usize,
}

impl Tracker {
    pub(crate) fn new(target: usize) -> Tracker {
        Tracker {
            target,
            pods: HashMap::with_capacity(target),
            states: HashMap::with_capacity(target),
            bound: 0,
            ready: 0,
            deleted: 0,
            all_created: None,
            all_bound: None,
            all_ready: None,
            events: 0,
            reopened: 0,
            relisted: 0,
        }
    }

    /// Pods seen so far.
    pub(crate) fn created(&self) -> usize {
        self.pods.len()
    }

    fn observe(&mut self, pod: &SlimPod, at: Instant) {
        self.events += 1;
        let name = &pod.metadata.name;
        let seen = self.pods.entry(name.clone()).or_insert(Seen {
            bound: None,
            ready: None,
        });
        if seen.bound.is_none() && pod.bound() {
            seen.bound = Some(at);
            self.bound += 1;
        }
        if seen.ready.is_none() && pod.running_ready() {
            seen.ready = Some(at);
            self.ready += 1;
        }
        self.states.insert(name.clone(), pod.state());
        let n = self.pods.len();
        for (count, when) in [
            (n, &mut self.all_created),
            (self.bound, &mut self.all_bound),
            (self.ready, &mut self.all_ready),
        ] {
            if when.is_none() && count >= self.target {
                *when = Some(at);
            }
        }
    }

    fn gone(&mut self, pod: &SlimPod) {
        self.events += 1;
        if self.states.remove(&pod.metadata.name).is_some() {
            self.deleted += 1;
        }
    }

    /// The pods still there by state, most frequent first: `2,494 Running;
    /// 506 Pending, Ready=False`.
    pub(crate) fn census(&self) -> String {
        let mut by: BTreeMap<&str, usize> = BTreeMap::new();
        for s in self.states.values() {
            *by.entry(s.as_str()).or_default() += 1;
        }
        let mut v: Vec<(&str, usize)> = by.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v.iter()
            .map(|(s, n)| format!("{n} {s}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// A few pods that are not yet Running and Ready, with their state.
    pub(crate) fn laggards(&self, n: usize) -> Vec<String> {
        let mut v: Vec<String> = self
            .pods
            .iter()
            .filter(|(_, s)| s.ready.is_none())
            .filter_map(|(name, _)| Some(format!("{name}: {}", self.states.get(name)?)))
            .collect();
        v.sort();
        v.truncate(n);
        v
    }
}

/// A running watch of one namespace's pods.
pub(crate) struct PodWatch {
    pub(crate) tracker: Arc<Mutex<Tracker>>,
    task: JoinHandle<Result<()>>,
}

impl Drop for PodWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PodWatch {
    /// List the namespace's pods (there should be none yet), then watch from
    /// that list's resourceVersion until dropped.
    pub(crate) async fn start(client: &Client, namespace: &str, target: usize) -> Result<PodWatch> {
        let tracker = Arc::new(Mutex::new(Tracker::new(target)));
        let path = format!("/api/v1/namespaces/{namespace}/pods");
        let rv = relist(client, &path, &tracker).await?;
        let task = tokio::spawn(follow(client.clone(), path, rv, tracker.clone()));
        Ok(PodWatch { tracker, task })
    }

    /// Fails if the watch's task stopped (it only stops on an error).
    pub(crate) fn check(&mut self) -> Result<()> {
        if self.task.is_finished() {
            return Err(anyhow!("the pod watch stopped"));
        }
        Ok(())
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Tracker> {
        self.tracker.lock().expect("tracker lock")
    }
}

#[derive(Deserialize)]
struct PodList {
    metadata: ListMeta,
    items: Vec<SlimPod>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListMeta {
    resource_version: String,
}

/// How the namespace's bound pods spread over nodes (from a fresh LIST):
/// `3,000 pods on 28 nodes, 101 to 110 per node`; and the message of the
/// first `PodScheduled=False` condition, if any. For the diagnosis of a
/// stuck run: the scheduler's view can then be compared with the API's.
pub(crate) async fn spread(client: &Client, namespace: &str) -> Result<(String, Option<String>)> {
    let path = format!("/api/v1/namespaces/{namespace}/pods");
    let body = call_ok(client, get(&path), "listing the pods").await?;
    let list: PodList = serde_json::from_slice(&body).context("parsing the pod list")?;
    Ok(spread_of(&list.items))
}

fn spread_of(pods: &[SlimPod]) -> (String, Option<String>) {
    let mut per_node: HashMap<&str, usize> = HashMap::new();
    for p in pods {
        if let Some(n) = p.spec.node_name.as_deref().filter(|n| !n.is_empty()) {
            *per_node.entry(n).or_default() += 1;
        }
    }
    let bound: usize = per_node.values().sum();
    let (lo, hi) = (
        per_node.values().min().copied().unwrap_or(0),
        per_node.values().max().copied().unwrap_or(0),
    );
    let message = pods
        .iter()
        .flat_map(|p| &p.status.conditions)
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
        .and_then(|c| c.message.clone());
    (
        format!(
            "{bound} pods bound on {} nodes, {lo} to {hi} per node",
            per_node.len()
        ),
        message,
    )
}

async fn relist(client: &Client, path: &str, tracker: &Mutex<Tracker>) -> Result<String> {
    let body = call_ok(client, get(path), "listing the pods").await?;
    let at = Instant::now();
    let list: PodList = serde_json::from_slice(&body).context("parsing the pod list")?;
    let mut t = tracker.lock().expect("tracker lock");
    for p in &list.items {
        t.observe(p, at);
    }
    Ok(list.metadata.resource_version)
}

async fn follow(
    client: Client,
    path: String,
    mut rv: String,
    tracker: Arc<Mutex<Tracker>>,
) -> Result<()> {
    loop {
        let uri = format!("{path}?watch=1&allowWatchBookmarks=true&resourceVersion={rv}");
        let stream = match client.request_events::<SlimPod>(get(&uri)).await {
            Ok(s) => s,
            Err(e) => {
                warn_reopening(&format!("opening the pod watch: {e}"));
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let mut stream = std::pin::pin!(stream);
        loop {
            let ev = match stream.try_next().await {
                Ok(Some(ev)) => ev,
                Ok(None) => break,
                Err(e) => {
                    warn_reopening(&format!("reading the pod watch: {e}"));
                    break;
                }
            };
            let at = Instant::now();
            match ev {
                WatchEvent::Added(p) | WatchEvent::Modified(p) => {
                    rv = p.metadata.resource_version.clone();
                    tracker.lock().expect("tracker lock").observe(&p, at);
                }
                WatchEvent::Deleted(p) => {
                    rv = p.metadata.resource_version.clone();
                    tracker.lock().expect("tracker lock").gone(&p);
                }
                WatchEvent::Bookmark(b) => rv = b.metadata.resource_version,
                WatchEvent::Error(s) if s.code == 410 => {
                    tracker.lock().expect("tracker lock").relisted += 1;
                    rv = relist(&client, &path, &tracker).await?;
                    break;
                }
                WatchEvent::Error(s) => {
                    return Err(anyhow!("pod watch error: {} ({})", s.message, s.reason))
                }
            }
        }
        tracker.lock().expect("tracker lock").reopened += 1;
    }
}

/// The benchmark reports progress on stderr, and so do its watches.
fn warn_reopening(msg: &str) {
    eprintln!("[bench] ! {msg}; reopening");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: &str) -> SlimPod {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn tracks_milestones_once() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut t = Tracker::new(2);
        let a0 = pod(r#"{"metadata":{"name":"a","resourceVersion":"1"},"spec":{}}"#);
        let a1 = pod(
            r#"{"metadata":{"name":"a"},"spec":{"nodeName":"n1"},"status":{"phase":"Pending"}}"#,
        );
        let a2 = pod(
            r#"{"metadata":{"name":"a"},"spec":{"nodeName":"n1"},"status":{"phase":"Running",
            "conditions":[{"type":"Ready","status":"True"},{"type":"PodScheduled","status":"True"}]}}"#,
        );
        let b0 = pod(r#"{"metadata":{"name":"b"},"spec":{"nodeName":""}}"#);
        let b1 = pod(
            r#"{"metadata":{"name":"b"},"spec":{"nodeName":"n2"},"status":{"phase":"Running",
            "conditions":[{"type":"Ready","status":"False"}]}}"#,
        );
        t.observe(&a0, at(1));
        t.observe(&a1, at(2));
        assert_eq!((t.created(), t.bound, t.ready), (1, 1, 0));
        assert!(t.all_created.is_none());
        t.observe(&b0, at(3));
        assert_eq!(t.all_created, Some(at(3)));
        assert_eq!(t.bound, 1, "an empty nodeName is not bound");
        t.observe(&a2, at(4));
        t.observe(&b1, at(5));
        assert_eq!((t.bound, t.ready), (2, 1), "Running but not Ready");
        assert_eq!(t.all_bound, Some(at(5)));
        assert!(t.all_ready.is_none());
        // Seeing a pod again changes no first times.
        t.observe(&a2, at(9));
        assert_eq!(t.pods["a"].bound, Some(at(2)));
        assert_eq!(t.pods["a"].ready, Some(at(4)));
        assert_eq!(t.census(), "1 Running; 1 Running, Ready=False");
        assert_eq!(t.laggards(5), vec!["b: Running, Ready=False".to_string()]);
        t.gone(&b1);
        t.gone(&b1);
        assert_eq!(t.deleted, 1);
        assert_eq!(t.census(), "1 Running");
    }

    #[test]
    fn spread_over_nodes() {
        let pods: Vec<SlimPod> = [
            r#"{"spec":{"nodeName":"n1"}}"#,
            r#"{"spec":{"nodeName":"n1"}}"#,
            r#"{"spec":{"nodeName":"n2"}}"#,
            r#"{"spec":{},"status":{"conditions":[{"type":"PodScheduled","status":"False","message":"0/2 nodes are available: 2 Too many pods."}]}}"#,
        ]
        .iter()
        .map(|j| pod(j))
        .collect();
        let (text, msg) = spread_of(&pods);
        assert_eq!(text, "3 pods bound on 2 nodes, 1 to 2 per node");
        assert_eq!(
            msg.as_deref(),
            Some("0/2 nodes are available: 2 Too many pods.")
        );
        assert_eq!(spread_of(&[]).0, "0 pods bound on 0 nodes, 0 to 0 per node");
    }

    #[test]
    fn pod_states() {
        let p = pod(
            r#"{"metadata":{"name":"x","deletionTimestamp":"2026-01-01T00:00:00Z"},
            "status":{"phase":"Pending","conditions":[{"type":"PodScheduled","status":"False"}]}}"#,
        );
        assert_eq!(
            p.state(),
            "Pending, unbound, terminating, PodScheduled=False"
        );
        assert_eq!(pod("{}").state(), "no phase, unbound");
    }
}
