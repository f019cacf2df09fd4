//! The node IPAM controller (upstream's range allocator): every node gets
//! `spec.podCIDR` and `spec.podCIDRs` cut from the cluster CIDR, no CIDR
//! twice. The allocations are rebuilt from the nodes' own `podCIDR`s on
//! every full list, before anything is handed out, so a restart never
//! hands out a CIDR a node already has. A node's CIDR is released when the
//! node is deleted. When the range is exhausted the node gets a
//! `CIDRNotAvailable` event and waits until a CIDR is released.

pub mod cidrset;

use std::collections::{BTreeSet, HashMap};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Client;
use serde_json::json;

pub use cidrset::CidrSet;

use crate::events::{Record, Recorder};

/// The event source, as upstream names it.
pub const COMPONENT: &str = "cidrAllocator";

/// An event about a node, as upstream's `RecordNodeStatusChange` writes
/// it: the node's name stands in for its UID (which `kubectl describe node`
/// expects).
pub fn node_event(
    node: &str,
    type_: &'static str,
    reason: &'static str,
    message: String,
) -> Record {
    Record {
        object: k8s_openapi::api::core::v1::ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(node.to_string()),
            uid: Some(node.to_string()),
            ..Default::default()
        },
        type_,
        reason,
        message,
    }
}

fn pod_cidr(n: &Node) -> Option<&str> {
    let spec = n.spec.as_ref()?;
    spec.pod_cidr
        .as_deref()
        .or_else(|| spec.pod_cidrs.as_ref()?.first().map(String::as_str))
        .filter(|c| !c.is_empty())
}

/// What the allocator knows: the set, and which node holds which CIDR.
struct Allocator {
    set: CidrSet,
    /// The CIDR each node holds (or was just given).
    held: HashMap<String, String>,
    /// Nodes that found the range exhausted.
    waiting: BTreeSet<String>,
}

/// What to do after a node change.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Nothing,
    Assign(String, String),
    Exhausted(String),
}

impl Allocator {
    fn new(set: CidrSet) -> Self {
        Allocator {
            set,
            held: HashMap::new(),
            waiting: BTreeSet::new(),
        }
    }

    /// A node as listed or watched.
    fn seen(&mut self, name: &str, cidr: Option<&str>) -> Step {
        match cidr {
            Some(c) => {
                self.waiting.remove(name);
                match self.held.get(name) {
                    Some(h) if h == c => {}
                    Some(h) => {
                        // The node holds another CIDR than the one we meant
                        // for it (an earlier run's): keep what it has.
                        let h = h.clone();
                        let _ = self.set.release(&h);
                        self.occupy(name, c);
                    }
                    None => self.occupy(name, c),
                }
                Step::Nothing
            }
            None if self.held.contains_key(name) => Step::Nothing,
            None => match self.set.allocate_next() {
                Some(c) => {
                    self.waiting.remove(name);
                    self.held.insert(name.to_string(), c.clone());
                    Step::Assign(name.to_string(), c)
                }
                None => {
                    self.waiting.insert(name.to_string());
                    Step::Exhausted(name.to_string())
                }
            },
        }
    }

    fn occupy(&mut self, name: &str, c: &str) {
        match self.set.occupy(c) {
            Ok(()) => {
                self.held.insert(name.to_string(), c.to_string());
            }
            Err(e) => tracing::warn!(node = name, error = %e, "node CIDR not tracked"),
        }
    }

    /// The node is gone (or its assignment failed): free its CIDR.
    fn forget(&mut self, name: &str) {
        self.waiting.remove(name);
        if let Some(c) = self.held.remove(name) {
            let _ = self.set.release(&c);
        }
    }
}

async fn assign(client: &Client, node: &str, cidr: &str) -> Result<(), kube::Error> {
    let api: Api<Node> = Api::all(client.clone());
    let patch = json!({ "spec": { "podCIDR": cidr, "podCIDRs": [cidr] } });
    api.patch(node, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

/// Run until the future is dropped.
pub async fn run(client: Client, set: CidrSet) {
    let (events, _writer) = Recorder::start(client.clone(), COMPONENT);
    let mut a = Allocator::new(set);
    let api: Api<Node> = Api::all(client.clone());
    let mut stream = std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff());
    // A full list is gathered whole, so every node's CIDR is marked taken
    // before any node gets one.
    let mut listing: Option<Vec<Node>> = None;
    while let Some(ev) = stream.next().await {
        let batch = match ev {
            Ok(watcher::Event::Init) => {
                listing = Some(Vec::new());
                continue;
            }
            Ok(watcher::Event::InitApply(n)) => {
                listing.get_or_insert_with(Vec::new).push(n);
                continue;
            }
            Ok(watcher::Event::InitDone) => {
                let nodes = listing.take().unwrap_or_default();
                // Nodes deleted while the watch was down release theirs.
                let names: BTreeSet<String> = nodes
                    .iter()
                    .filter_map(|n| n.metadata.name.clone())
                    .collect();
                let gone: Vec<String> = a
                    .held
                    .keys()
                    .filter(|k| !names.contains(*k))
                    .cloned()
                    .collect();
                gone.iter().for_each(|g| a.forget(g));
                let (with, without): (Vec<Node>, Vec<Node>) =
                    nodes.into_iter().partition(|n| pod_cidr(n).is_some());
                with.into_iter().chain(without).collect()
            }
            Ok(watcher::Event::Apply(n)) => vec![n],
            Ok(watcher::Event::Delete(n)) => {
                a.forget(n.metadata.name.as_deref().unwrap_or_default());
                // A freed CIDR goes to a node that was waiting for one.
                let waiting: Vec<String> = a.waiting.iter().cloned().collect();
                let nodes: Api<Node> = Api::all(client.clone());
                let mut retry = Vec::new();
                for w in waiting {
                    if a.set.free() == 0 {
                        break;
                    }
                    if let Ok(Some(n)) = nodes.get_opt(&w).await {
                        retry.push(n);
                    } else {
                        a.waiting.remove(&w);
                    }
                }
                retry
            }
            Err(e) => {
                tracing::warn!(error = %e, "node watch failed; retrying");
                continue;
            }
        };
        for n in batch {
            let name = n.metadata.name.clone().unwrap_or_default();
            if n.metadata.deletion_timestamp.is_some() && pod_cidr(&n).is_none() {
                continue;
            }
            match a.seen(&name, pod_cidr(&n)) {
                Step::Nothing => {}
                Step::Assign(node, cidr) => match assign(&client, &node, &cidr).await {
                    Ok(()) => tracing::info!(node = %node, cidr = %cidr, "node CIDR assigned"),
                    Err(e) => {
                        tracing::warn!(node = %node, error = %e, "assigning the node CIDR failed");
                        // Freed; the node's next change (or the next
                        // relist) tries again.
                        a.forget(&node);
                    }
                },
                Step::Exhausted(node) => {
                    tracing::warn!(node = %node, "no node CIDR left in the cluster CIDR");
                    events.record(node_event(
                        &node,
                        "Normal",
                        "CIDRNotAvailable",
                        format!("Node {node} status is now: CIDRNotAvailable"),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_follow_nodes() {
        let mut a = Allocator::new(CidrSet::parse("10.42.0.0/23", 24).unwrap());
        // An existing node keeps its CIDR; a new one gets the other.
        assert_eq!(a.seen("n1", Some("10.42.1.0/24")), Step::Nothing);
        assert_eq!(
            a.seen("n2", None),
            Step::Assign("n2".into(), "10.42.0.0/24".into())
        );
        // The watch shows n2 before our patch: no second CIDR.
        assert_eq!(a.seen("n2", None), Step::Nothing);
        assert_eq!(a.seen("n2", Some("10.42.0.0/24")), Step::Nothing);
        assert_eq!(a.seen("n3", None), Step::Exhausted("n3".into()));
        assert!(a.waiting.contains("n3"));
        a.forget("n1");
        assert_eq!(
            a.seen("n3", None),
            Step::Assign("n3".into(), "10.42.1.0/24".into())
        );
        assert!(a.waiting.is_empty());
    }

    #[test]
    fn node_events_name_the_node_as_upstream_does() {
        let r = node_event("n1", "Normal", "CIDRNotAvailable", "x".into());
        assert_eq!(r.object.uid.as_deref(), Some("n1"));
        assert_eq!(r.object.namespace, None);
    }
}
