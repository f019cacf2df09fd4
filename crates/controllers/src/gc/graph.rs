//! The dependency graph, built from object metadata only, as upstream's
//! `GraphBuilder` keeps it: every observed object is a node (identity, owner
//! references, deletion state), and an index maps each owner UID to the
//! objects that name it.
//!
//! Unlike upstream, an owner that has not been observed (upstream's
//! "virtual node") is not a node here: it is a UID present in the
//! dependents index without a node. So a dependent is never unlinked from
//! an owner by a verification that went wrong, and no identity has to be
//! guessed for an owner nobody observed.
//!
//! Applying a change is a pure function returning [`Effect`]s: which items
//! the workers must look at, which owners are known absent, which events to
//! report.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::discovery::ApiResource;

/// The finalizer of an Orphan deletion.
pub const ORPHAN: &str = "orphan";
/// The finalizer of a Foreground deletion.
pub const FOREGROUND: &str = "foregroundDeletion";

/// A resource the collector watches (or can look owners up in).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Resource {
    pub ar: ApiResource,
    pub namespaced: bool,
}

impl Resource {
    /// `group/version/plural`: one monitor per key.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.ar.group, self.ar.version, self.ar.plural)
    }

    /// Whether this is the resource of `key`, without building the key.
    pub fn has_key(&self, key: &str) -> bool {
        key.strip_prefix(self.ar.group.as_str())
            .and_then(|k| k.strip_prefix('/'))
            .and_then(|k| k.strip_prefix(self.ar.version.as_str()))
            .and_then(|k| k.strip_prefix('/'))
            == Some(self.ar.plural.as_str())
    }
}

/// What the graph needs of an object's metadata.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Meta {
    pub uid: String,
    pub name: String,
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    pub owners: Vec<OwnerReference>,
    /// `deletionTimestamp` is set.
    pub deleting: bool,
    pub finalizers: Vec<String>,
}

impl Meta {
    /// The parts of `m` the graph keeps; `None` without a UID.
    pub fn from_object_meta(m: &ObjectMeta) -> Option<Meta> {
        let uid = m.uid.clone().filter(|u| !u.is_empty())?;
        Some(Meta {
            uid,
            name: m.name.clone().unwrap_or_default(),
            namespace: m.namespace.clone().unwrap_or_default(),
            owners: m.owner_references.clone().unwrap_or_default(),
            deleting: m.deletion_timestamp.is_some(),
            finalizers: m.finalizers.clone().unwrap_or_default(),
        })
    }

    fn has_finalizer(&self, f: &str) -> bool {
        self.finalizers.iter().any(|x| x == f)
    }
}

/// Who an object is: its coordinates as an owner reference names them,
/// plus its namespace.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    pub uid: String,
}

impl Identity {
    /// The identity an owner reference names, for a dependent in `namespace`.
    pub fn of_ref(r: &OwnerReference, namespace: &str) -> Identity {
        Identity {
            api_version: r.api_version.clone(),
            kind: r.kind.clone(),
            name: r.name.clone(),
            namespace: namespace.to_string(),
            uid: r.uid.clone(),
        }
    }

    /// Whether `r` names exactly this object.
    pub fn matches(&self, r: &OwnerReference) -> bool {
        r.uid == self.uid
            && r.name == self.name
            && r.kind == self.kind
            && r.api_version == self.api_version
    }
}

impl fmt::Display for Identity {
    /// Upstream's `objectReference` format, as its events print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}/{}, namespace: {}, name: {}, uid: {}]",
            self.api_version, self.kind, self.namespace, self.name, self.uid
        )
    }
}

/// One observed object.
#[derive(Clone, Debug)]
pub struct Node {
    pub res: Arc<Resource>,
    pub id: Identity,
    pub owners: Vec<OwnerReference>,
    /// `deletionTimestamp` was seen; a one-way trip.
    pub being_deleted: bool,
    pub orphan_finalizer: bool,
    pub foreground_finalizer: bool,
}

impl Node {
    /// Deleted in the foreground: waits for its blocking dependents.
    pub fn deleting_dependents(&self) -> bool {
        self.being_deleted && self.foreground_finalizer
    }

    /// Deleted with Orphan: waits for its dependents to be released.
    pub fn orphaning(&self) -> bool {
        self.being_deleted && self.orphan_finalizer
    }
}

/// What a graph change asks of the collector.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Queue this UID for `attemptToDelete` (an object, or an owner nobody
    /// observed, to verify).
    AttemptToDelete(String),
    /// Queue this owner for `attemptToOrphan`.
    AttemptToOrphan(String),
    /// This owner is known not to exist.
    Absent(Identity),
    /// `dependent` names `owner`, observed in another namespace.
    InvalidNamespace {
        dependent: Identity,
        owner: OwnerReference,
    },
}

/// The graph: observed objects by UID, and dependents by owner UID.
#[derive(Default)]
pub struct Graph {
    nodes: HashMap<String, Node>,
    dependents: HashMap<String, BTreeSet<String>>,
}

fn blocks(r: &OwnerReference) -> bool {
    r.block_owner_deletion == Some(true)
}

/// Owner references added, removed and changed (old, new), by UID.
pub fn references_diffs(
    old: &[OwnerReference],
    new: &[OwnerReference],
) -> (
    Vec<OwnerReference>,
    Vec<OwnerReference>,
    Vec<(OwnerReference, OwnerReference)>,
) {
    let old_by_uid: HashMap<&str, &OwnerReference> =
        old.iter().map(|r| (r.uid.as_str(), r)).collect();
    let mut kept = HashSet::new();
    let (mut added, mut changed) = (Vec::new(), Vec::new());
    for r in new {
        match old_by_uid.get(r.uid.as_str()) {
            Some(o) => {
                kept.insert(r.uid.as_str());
                if *o != r {
                    changed.push(((*o).clone(), r.clone()));
                }
            }
            None => added.push(r.clone()),
        }
    }
    let removed = old
        .iter()
        .filter(|r| !kept.contains(r.uid.as_str()))
        .cloned()
        .collect();
    (added, removed, changed)
}

impl Graph {
    /// The observed object with this UID.
    pub fn node(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    /// Observed objects.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether nothing is observed.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The observed objects that name `uid` as an owner.
    pub fn dependents(&self, uid: &str) -> Vec<&Node> {
        self.dependents
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|d| self.nodes.get(d))
            .collect()
    }

    /// Dependents whose reference to `uid` has `blockOwnerDeletion`: the
    /// ones a foreground deletion of `uid` waits for.
    pub fn blocking_dependents(&self, uid: &str) -> Vec<&Node> {
        self.dependents(uid)
            .into_iter()
            .filter(|d| d.owners.iter().any(|r| r.uid == uid && blocks(r)))
            .collect()
    }

    /// Apply an object seen added or changed by the watch of `res`.
    pub fn upsert(&mut self, res: &Arc<Resource>, meta: Meta) -> Vec<Effect> {
        let mut fx = Vec::new();
        let id = Identity {
            api_version: res.ar.api_version.clone(),
            kind: res.ar.kind.clone(),
            name: meta.name.clone(),
            namespace: meta.namespace.clone(),
            uid: meta.uid.clone(),
        };
        let uid = meta.uid.clone();
        let old = self
            .nodes
            .get(&uid)
            .map(|n| (n.orphaning(), n.deleting_dependents()));
        let (added, removed) = match self.nodes.get_mut(&uid) {
            None => {
                self.first_observation(&id, &mut fx);
                let node = Node {
                    res: res.clone(),
                    id,
                    owners: meta.owners.clone(),
                    being_deleted: meta.deleting,
                    orphan_finalizer: meta.has_finalizer(ORPHAN),
                    foreground_finalizer: meta.has_finalizer(FOREGROUND),
                };
                self.nodes.insert(uid.clone(), node);
                (meta.owners, Vec::new())
            }
            Some(node) => {
                let (added, removed, changed) = references_diffs(&node.owners, &meta.owners);
                node.res = res.clone();
                node.owners = meta.owners.clone();
                node.being_deleted |= meta.deleting;
                node.orphan_finalizer = meta.has_finalizer(ORPHAN);
                node.foreground_finalizer = meta.has_finalizer(FOREGROUND);
                // An owner waiting for its blocking dependents is unblocked
                // when a reference to it goes or stops blocking.
                let unblocked = removed
                    .iter()
                    .filter(|r| blocks(r))
                    .map(|r| r.uid.clone())
                    .chain(
                        changed
                            .iter()
                            .filter(|(o, n)| blocks(o) && !blocks(n))
                            .map(|(_, n)| n.uid.clone()),
                    );
                for owner in unblocked.collect::<Vec<_>>() {
                    if self.nodes.contains_key(&owner) {
                        fx.push(Effect::AttemptToDelete(owner));
                    }
                }
                (added, removed)
            }
        };
        for r in &removed {
            self.unlink(&r.uid, &uid);
        }
        self.link(&uid, &added, &mut fx);
        self.transitions(&uid, old, &mut fx);
        fx
    }

    /// An object seen for the first time may have been named as an owner
    /// already: dependents whose reference does not match what was
    /// observed are looked at again (upstream's "bad child, good parent").
    fn first_observation(&self, id: &Identity, fx: &mut Vec<Effect>) {
        for dep in self.dependents(&id.uid) {
            if !id.namespace.is_empty() && dep.id.namespace != id.namespace {
                if let Some(r) = dep.owners.iter().find(|r| r.uid == id.uid) {
                    fx.push(Effect::InvalidNamespace {
                        dependent: dep.id.clone(),
                        owner: r.clone(),
                    });
                }
                fx.push(Effect::AttemptToDelete(dep.id.uid.clone()));
            } else if dep.owners.iter().any(|r| r.uid == id.uid && !id.matches(r)) {
                fx.push(Effect::AttemptToDelete(dep.id.uid.clone()));
            }
        }
    }

    /// Record `dep` as a dependent of `owners` (upstream's
    /// `addDependentToOwners`): an owner nobody observed is queued to be
    /// verified, and a reference that does not match the observed owner
    /// queues the dependent itself.
    fn link(&mut self, dep: &str, owners: &[OwnerReference], fx: &mut Vec<Effect>) {
        let Some(node) = self.nodes.get(dep) else {
            return;
        };
        let mut suspicious = false;
        for r in owners {
            match self.nodes.get(&r.uid) {
                None => fx.push(Effect::AttemptToDelete(r.uid.clone())),
                Some(_) if suspicious => {}
                Some(owner) => {
                    if !owner.id.namespace.is_empty() && owner.id.namespace != node.id.namespace {
                        // A namespaced owner is only ever in its dependent's namespace.
                        fx.push(Effect::InvalidNamespace {
                            dependent: node.id.clone(),
                            owner: r.clone(),
                        });
                        suspicious = true;
                    } else if !owner.id.matches(r) {
                        suspicious = true;
                    }
                }
            }
        }
        if suspicious {
            fx.push(Effect::AttemptToDelete(dep.to_string()));
        }
        for r in owners {
            self.dependents
                .entry(r.uid.clone())
                .or_default()
                .insert(dep.to_string());
        }
    }

    fn unlink(&mut self, owner: &str, dep: &str) {
        if let Some(set) = self.dependents.get_mut(owner) {
            set.remove(dep);
            if set.is_empty() {
                self.dependents.remove(owner);
            }
        }
    }

    /// Start the work a deletion with the `orphan` or `foregroundDeletion`
    /// finalizer asks for, once, when it begins.
    fn transitions(&self, uid: &str, old: Option<(bool, bool)>, fx: &mut Vec<Effect>) {
        let Some(node) = self.nodes.get(uid) else {
            return;
        };
        let (was_orphaning, was_deleting_dependents) = old.unwrap_or((false, false));
        if node.orphaning() && !was_orphaning {
            fx.push(Effect::AttemptToOrphan(uid.to_string()));
            return;
        }
        if node.deleting_dependents() && !was_deleting_dependents {
            for dep in self.dependents(uid) {
                fx.push(Effect::AttemptToDelete(dep.id.uid.clone()));
            }
            fx.push(Effect::AttemptToDelete(uid.to_string()));
        }
    }

    /// Apply an object seen deleted: its dependents are looked at (their
    /// owner is now known absent), and so are its owners that wait for
    /// their dependents to go.
    pub fn remove(&mut self, uid: &str) -> Vec<Effect> {
        let mut fx = Vec::new();
        let Some(node) = self.nodes.remove(uid) else {
            return fx;
        };
        for r in &node.owners {
            self.unlink(&r.uid, uid);
        }
        let deps: Vec<String> = self
            .dependents(uid)
            .iter()
            .map(|d| d.id.uid.clone())
            .collect();
        if !deps.is_empty() {
            fx.push(Effect::Absent(node.id.clone()));
        }
        fx.extend(deps.into_iter().map(Effect::AttemptToDelete));
        for r in &node.owners {
            if self
                .nodes
                .get(&r.uid)
                .is_some_and(Node::deleting_dependents)
            {
                fx.push(Effect::AttemptToDelete(r.uid.clone()));
            }
        }
        fx
    }

    /// A full list of the resource `key` returned exactly `seen`: objects
    /// of it not in the list were deleted while the watch was down.
    pub fn relisted(&mut self, key: &str, seen: &HashSet<String>) -> Vec<Effect> {
        let gone: Vec<String> = self
            .nodes
            .values()
            .filter(|n| n.res.has_key(key) && !seen.contains(&n.id.uid))
            .map(|n| n.id.uid.clone())
            .collect();
        gone.iter().flat_map(|uid| self.remove(uid)).collect()
    }
}

#[cfg(test)]
#[path = "graph_tests.rs"]
mod tests;
