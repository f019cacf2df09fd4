//! The pod garbage collector, as upstream's PodGC, every `pod_gc_period`:
//!
//! - terminated pods (Succeeded or Failed) beyond
//!   `--terminated-pod-gc-threshold` are deleted, evicted ones first, then
//!   the oldest by creation time;
//! - pods bound to a node that does not exist are deleted once the node has
//!   been missing from the cache for the quarantine and a live GET of it
//!   says 404 (first marked Failed with a `DisruptionTarget` condition);
//! - terminating pods that were never scheduled, and terminating pods on a
//!   not-Ready node tainted `node.kubernetes.io/out-of-service`, are
//!   deleted.
//!
//! Every deletion is a force deletion (grace period 0) pinned to the pod's
//! UID, as upstream's.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Client;
use serde_json::json;

use crate::Config;

const OUT_OF_SERVICE: &str = "node.kubernetes.io/out-of-service";

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn terminated(p: &Pod) -> bool {
    matches!(phase(p), "Succeeded" | "Failed")
}

fn node_of(p: &Pod) -> &str {
    p.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

/// The terminated pods to delete so that at most `threshold` remain:
/// evicted pods first, then by creation time, oldest first (name breaks
/// ties). Pods already being deleted count, but are not picked.
pub fn terminated_to_delete(pods: &[Arc<Pod>], threshold: usize) -> Vec<Arc<Pod>> {
    if threshold == 0 {
        return Vec::new();
    }
    let mut t: Vec<&Arc<Pod>> = pods.iter().filter(|p| terminated(p)).collect();
    let excess = t.len().saturating_sub(threshold);
    if excess == 0 {
        return Vec::new();
    }
    let evicted = |p: &Pod| p.status.as_ref().and_then(|s| s.reason.as_deref()) == Some("Evicted");
    t.sort_by(|a, b| {
        evicted(b)
            .cmp(&evicted(a))
            .then_with(|| {
                let ca = a.metadata.creation_timestamp.as_ref().map(|t| t.0);
                let cb = b.metadata.creation_timestamp.as_ref().map(|t| t.0);
                ca.cmp(&cb)
            })
            .then_with(|| a.metadata.namespace.cmp(&b.metadata.namespace))
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
    t.into_iter()
        .take(excess)
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .cloned()
        .collect()
}

/// Whether a node is Ready and out of service.
fn out_of_service(n: &Node) -> bool {
    let tainted = n
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|t| t.iter().any(|t| t.key == OUT_OF_SERVICE));
    tainted && crate::nodelifecycle::health::ready(n) != Some("True")
}

struct Gc {
    client: Client,
    cfg: Config,
    pods: Store<Pod>,
    nodes: Store<Node>,
    /// Nodes missing from the cache, since when.
    missing: HashMap<String, Instant>,
}

impl Gc {
    async fn delete(&self, p: &Pod, why: &str) {
        let ns = p.metadata.namespace.clone().unwrap_or_default();
        let name = p.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: p.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&name, &dp).await {
            Ok(_) => tracing::info!(pod = %name, namespace = %ns, why, "PodGC force-deleted a pod"),
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => {
                tracing::warn!(pod = %name, namespace = %ns, error = %e, "PodGC delete failed")
            }
        }
    }

    /// Mark an orphaned pod Failed with the DisruptionTarget condition, then
    /// delete it.
    async fn delete_orphan(&self, p: &Pod) {
        if p.metadata.deletion_timestamp.is_none() && !terminated(p) {
            let ns = p.metadata.namespace.clone().unwrap_or_default();
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
            let patch = json!({ "status": {
                "phase": "Failed",
                "conditions": [{
                    "type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
                    "message": "PodGC: node no longer exists",
                    "lastTransitionTime": Time(Timestamp::now()),
                }],
            }});
            let name = p.metadata.name.clone().unwrap_or_default();
            if let Err(e) = api
                .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))
                .await
            {
                tracing::debug!(pod = %name, error = %e, "marking an orphaned pod Failed failed");
            }
        }
        self.delete(p, "node no longer exists").await;
    }

    async fn pass(&mut self) {
        let pods = self.pods.state();
        for p in terminated_to_delete(&pods, self.cfg.terminated_pod_gc_threshold) {
            self.delete(&p, "terminated pods beyond the threshold")
                .await;
        }

        // Orphans: quarantine the missing nodes, then check them live.
        let now = Instant::now();
        let mut missing_now = HashSet::new();
        for p in &pods {
            let n = node_of(p);
            if !n.is_empty() && self.nodes.get(&ObjectRef::new(n)).is_none() {
                missing_now.insert(n.to_string());
            }
        }
        self.missing.retain(|n, _| missing_now.contains(n));
        let mut deleted_nodes = HashSet::new();
        let api: Api<Node> = Api::all(self.client.clone());
        for n in missing_now {
            let since = *self.missing.entry(n.clone()).or_insert(now);
            if now.saturating_duration_since(since) < self.cfg.pod_gc_quarantine {
                continue;
            }
            match api.get_opt(&n).await {
                Ok(None) => {
                    deleted_nodes.insert(n);
                }
                Ok(Some(_)) => {}
                Err(e) => tracing::debug!(node = %n, error = %e, "PodGC node check failed"),
            }
        }
        for p in &pods {
            let n = node_of(p);
            if deleted_nodes.contains(n) {
                self.delete_orphan(p).await;
            } else if p.metadata.deletion_timestamp.is_some() {
                if n.is_empty() {
                    self.delete(p, "terminating and never scheduled").await;
                } else if self
                    .nodes
                    .get(&ObjectRef::new(n))
                    .is_some_and(|node| out_of_service(&node))
                {
                    self.delete(p, "terminating on an out-of-service node")
                        .await;
                }
            }
        }
    }
}

/// Run until the future is dropped.
pub async fn run(client: Client, cfg: Config) {
    let (pods, pw) = reflector::store::<Pod>();
    let (nodes, nw) = reflector::store::<Node>();
    let pod_api: Api<Pod> = Api::all(client.clone());
    let node_api: Api<Node> = Api::all(client.clone());
    let watch_pods = reflector::reflector(pw, watcher(pod_api, watcher::Config::default()))
        .default_backoff()
        .for_each(|ev| async move {
            if let Err(e) = ev {
                tracing::warn!(error = %e, "pod watch failed; retrying");
            }
        });
    let watch_nodes = reflector::reflector(nw, watcher(node_api, watcher::Config::default()))
        .default_backoff()
        .for_each(|ev| async move {
            if let Err(e) = ev {
                tracing::warn!(error = %e, "node watch failed; retrying");
            }
        });
    let _tasks = crate::AbortOnDrop(vec![tokio::spawn(watch_pods), tokio::spawn(watch_nodes)]);
    if pods.wait_until_ready().await.is_err() || nodes.wait_until_ready().await.is_err() {
        return;
    }
    let mut gc = Gc {
        client,
        cfg: cfg.clone(),
        pods,
        nodes,
        missing: HashMap::new(),
    };
    let mut tick = tokio::time::interval(cfg.pod_gc_period.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        gc.pass().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(
        name: &str,
        created: &str,
        phase: &str,
        f: impl FnOnce(&mut serde_json::Value),
    ) -> Arc<Pod> {
        let mut v = json!({"metadata": {"namespace": "ns", "name": name, "creationTimestamp": created},
            "status": {"phase": phase}});
        f(&mut v);
        Arc::new(serde_json::from_value(v).unwrap())
    }

    fn names(v: Vec<Arc<Pod>>) -> Vec<String> {
        v.iter().map(|p| p.metadata.name.clone().unwrap()).collect()
    }

    #[test]
    fn oldest_terminated_pods_go_first() {
        let pods = vec![
            pod("new", "2026-01-01T00:00:05Z", "Succeeded", |_| {}),
            pod("running", "2026-01-01T00:00:00Z", "Running", |_| {}),
            pod("old", "2026-01-01T00:00:01Z", "Failed", |_| {}),
            pod("mid-b", "2026-01-01T00:00:03Z", "Succeeded", |_| {}),
            pod("mid-a", "2026-01-01T00:00:03Z", "Succeeded", |_| {}),
        ];
        assert!(terminated_to_delete(&pods, 4).is_empty());
        assert!(terminated_to_delete(&pods, 0).is_empty(), "0 turns it off");
        assert_eq!(names(terminated_to_delete(&pods, 2)), ["old", "mid-a"]);
        assert_eq!(
            names(terminated_to_delete(&pods, 1)),
            ["old", "mid-a", "mid-b"]
        );
        // Evicted pods go before older ones; terminating ones count but stay.
        let mut more = pods.clone();
        more.push(pod("evicted", "2026-01-01T00:00:09Z", "Failed", |v| {
            v["status"]["reason"] = json!("Evicted")
        }));
        more.push(pod("going", "2026-01-01T00:00:00Z", "Failed", |v| {
            v["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:01:00Z")
        }));
        assert_eq!(names(terminated_to_delete(&more, 3)), ["evicted", "old"]);
    }

    #[test]
    fn out_of_service_needs_the_taint_and_not_ready() {
        let n = |ready: &str, taint: bool| -> Node {
            let taints = if taint {
                json!([{"key": OUT_OF_SERVICE, "effect": "NoExecute"}])
            } else {
                json!([])
            };
            serde_json::from_value(
                json!({"metadata": {"name": "n"}, "spec": {"taints": taints},
                "status": {"conditions": [{"type": "Ready", "status": ready}]}}),
            )
            .unwrap()
        };
        assert!(out_of_service(&n("False", true)));
        assert!(!out_of_service(&n("True", true)));
        assert!(!out_of_service(&n("Unknown", false)));
    }
}
