//! `attemptToDelete`, as upstream's `attemptToDeleteItem`: for one UID,
//!
//! - an owner nobody observed is looked up; if absent, its dependents are
//!   looked at;
//! - an object in foreground deletion loses its `foregroundDeletion`
//!   finalizer once no dependent blocks it, or has its blocking dependents
//!   looked at;
//! - any other object has its owner references classified by live reads
//!   (solid, dangling, or waiting for their dependents' deletion) and is
//!   kept, stripped of references to absent or waiting owners, or deleted.

use std::collections::{HashSet, VecDeque};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::PropagationPolicy;

use super::graph::{Identity, Node, FOREGROUND, ORPHAN};
use super::ops::{self, Error};
use super::Ctx;

/// Absent owners remembered (upstream's `absentOwnerCache` size).
const ABSENT_CAPACITY: usize = 500;

/// Owners known not to exist, by the coordinates dependents name them
/// with. A UID never comes back, so an entry never goes stale; the cache
/// is only bounded.
#[derive(Default)]
pub struct AbsentCache {
    set: HashSet<Identity>,
    order: VecDeque<Identity>,
}

impl AbsentCache {
    pub fn add(&mut self, id: Identity) {
        if self.set.insert(id.clone()) {
            self.order.push_back(id);
            if self.order.len() > ABSENT_CAPACITY {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }

    pub fn has(&self, id: &Identity) -> bool {
        self.set.contains(id)
    }
}

/// What to do with a work item afterwards.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Forget,
    /// Look again later (with backoff).
    Requeue,
}

/// An owner reference, by what a live read found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefState {
    /// The owner exists and is not waiting for its dependents.
    Solid,
    /// The owner does not exist.
    Dangling,
    /// The owner is being deleted in the foreground.
    Waiting,
}

/// What to do with an object, given its references.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    Keep,
    /// Remove the references to these owner UIDs.
    RemoveRefs(Vec<String>),
    Delete {
        policy: PropagationPolicy,
        /// First set every `blockOwnerDeletion` of the object to false.
        unblock_first: bool,
    },
}

/// Upstream's decision in `attemptToDeleteItem`. `has_dependents`: the
/// object owns something; `dependent_waits`: one of those is itself
/// deleting its dependents in the foreground.
pub fn decide(
    refs: &[(String, RefState)],
    has_dependents: bool,
    dependent_waits: bool,
    finalizers: &[String],
) -> Decision {
    let uids = |s: RefState| -> Vec<String> {
        refs.iter()
            .filter(|(_, st)| *st == s)
            .map(|(u, _)| u.clone())
            .collect()
    };
    let (dangling, waiting) = (uids(RefState::Dangling), uids(RefState::Waiting));
    if refs.iter().any(|(_, s)| *s == RefState::Solid) {
        // Waiting owners are dropped too, or they would wait forever.
        if dangling.is_empty() && waiting.is_empty() {
            return Decision::Keep;
        }
        return Decision::RemoveRefs(dangling.into_iter().chain(waiting).collect());
    }
    if !waiting.is_empty() && has_dependents {
        // Deleted in the foreground in turn, so the waiting owner goes only
        // after this object's own dependents. A dependent doing the same
        // may be a cycle: this object stops blocking its owners first.
        return Decision::Delete {
            policy: PropagationPolicy::Foreground,
            unblock_first: dependent_waits,
        };
    }
    let has = |f: &str| finalizers.iter().any(|x| x == f);
    let policy = if has(ORPHAN) {
        PropagationPolicy::Orphan
    } else if has(FOREGROUND) {
        PropagationPolicy::Foreground
    } else {
        PropagationPolicy::Background
    };
    Decision::Delete {
        policy,
        unblock_first: false,
    }
}

/// Process one UID of the `attemptToDelete` queue.
pub async fn attempt_to_delete(ctx: &Ctx, uid: &str) -> Result<Outcome, Error> {
    let (node, refs) = {
        let st = ctx.state();
        match st.graph.node(uid) {
            Some(n) => (Some(n.clone()), Vec::new()),
            None => {
                let mut refs: Vec<(OwnerReference, String)> = Vec::new();
                for d in st.graph.dependents(uid) {
                    for r in d.owners.iter().filter(|r| r.uid == uid) {
                        let named = (r.clone(), d.id.namespace.clone());
                        if !refs.contains(&named) {
                            refs.push(named);
                        }
                    }
                }
                (None, refs)
            }
        }
    };
    match node {
        Some(n) => attempt_observed(ctx, &n).await,
        None if refs.is_empty() => Ok(Outcome::Forget),
        None => verify_unobserved(ctx, uid, &refs).await,
    }
}

/// An owner named by dependents but never observed: if it does not exist,
/// its dependents are looked at; if it does, it is looked at again until
/// its monitor reports it.
async fn verify_unobserved(
    ctx: &Ctx,
    uid: &str,
    refs: &[(OwnerReference, String)],
) -> Result<Outcome, Error> {
    for (r, ns) in refs {
        match owner_of(ctx, r, ns).await {
            Ok(Some(_)) => return Ok(Outcome::Requeue),
            Ok(None) => {
                tracing::debug!(owner = %Identity::of_ref(r, ns), "owner not found; looking at its dependents");
                let deps: Vec<String> = ctx
                    .state()
                    .graph
                    .dependents(uid)
                    .iter()
                    .map(|d| d.id.uid.clone())
                    .collect();
                for d in deps {
                    ctx.attempt_to_delete.add(d);
                }
                return Ok(Outcome::Forget);
            }
            // Another dependent may name it in a way that can be checked.
            Err(Error::NamespacedOwnerOfClusterScoped) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(Outcome::Forget)
}

/// The live metadata of the owner `r` names for a dependent in
/// `namespace`, or `None` if it does not exist (upstream's `isDangling`).
async fn owner_of(
    ctx: &Ctx,
    r: &OwnerReference,
    namespace: &str,
) -> Result<Option<ObjectMeta>, Error> {
    let cluster_key = Identity::of_ref(r, "");
    let ns_key = Identity::of_ref(r, namespace);
    {
        let absent = ctx.absent.lock().unwrap_or_else(|p| p.into_inner());
        if absent.has(&cluster_key) || absent.has(&ns_key) {
            return Ok(None);
        }
    }
    let Some(res) = ctx.mapper().resolve(&r.api_version, &r.kind) else {
        ctx.refresh_discovery();
        return Err(Error::Unmapped {
            api_version: r.api_version.clone(),
            kind: r.kind.clone(),
        });
    };
    if res.namespaced && namespace.is_empty() {
        return Err(Error::NamespacedOwnerOfClusterScoped);
    }
    let key = if res.namespaced { ns_key } else { cluster_key };
    // A namespaced owner is looked up in its dependent's namespace only.
    let live = ops::get(&ctx.client, &res, namespace, &r.name).await?;
    match live {
        Some(m) if m.uid.as_deref() == Some(r.uid.as_str()) => Ok(Some(m)),
        // Absent, or a different object under that name.
        _ => {
            ctx.absent
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .add(key);
            Ok(None)
        }
    }
}

async fn attempt_observed(ctx: &Ctx, n: &Node) -> Result<Outcome, Error> {
    // Being deleted is a one-way trip: its dependents are looked at when
    // it is gone.
    if n.being_deleted && !n.deleting_dependents() {
        return Ok(Outcome::Forget);
    }
    let latest = ops::get(&ctx.client, &n.res, &n.id.namespace, &n.id.name).await?;
    let Some(latest) = latest.filter(|m| m.uid.as_deref() == Some(n.id.uid.as_str())) else {
        // Gone: its monitor will report the deletion.
        return Ok(Outcome::Forget);
    };
    if n.deleting_dependents() {
        finish_foreground(ctx, n).await?;
        return Ok(Outcome::Forget);
    }
    let owners = latest.owner_references.clone().unwrap_or_default();
    if owners.is_empty() {
        return Ok(Outcome::Forget);
    }
    let mut refs = Vec::with_capacity(owners.len());
    for r in &owners {
        let state = match owner_of(ctx, r, &n.id.namespace).await {
            Ok(None) => RefState::Dangling,
            Ok(Some(o))
                if o.deletion_timestamp.is_some()
                    && o.finalizers.iter().flatten().any(|f| f == FOREGROUND) =>
            {
                RefState::Waiting
            }
            Ok(Some(_)) => RefState::Solid,
            Err(Error::NamespacedOwnerOfClusterScoped) => {
                tracing::debug!(item = %n.id, owner = %Identity::of_ref(r, ""), "item is cluster-scoped, but refers to a namespaced owner");
                return Ok(Outcome::Forget);
            }
            Err(e) => return Err(e),
        };
        refs.push((r.uid.clone(), state));
    }
    let (has_dependents, dependent_waits) = {
        let st = ctx.state();
        let deps = st.graph.dependents(&n.id.uid);
        (
            !deps.is_empty(),
            deps.iter().any(|d| d.deleting_dependents()),
        )
    };
    let finalizers = latest.finalizers.unwrap_or_default();
    match decide(&refs, has_dependents, dependent_waits, &finalizers) {
        Decision::Keep => {}
        Decision::RemoveRefs(uids) => {
            tracing::debug!(item = %n.id, owners = ?uids, "removing references to absent or waiting owners");
            ops::patch_pinned(&ctx.client, &n.res, &n.id, |m| {
                ops::without_owners(m, &uids)
            })
            .await?;
        }
        Decision::Delete {
            policy,
            unblock_first,
        } => {
            if unblock_first {
                ops::patch_pinned(&ctx.client, &n.res, &n.id, ops::unblocked).await?;
            }
            tracing::debug!(item = %n.id, ?policy, "deleting item");
            ops::delete(&ctx.client, &n.res, &n.id, policy).await?;
        }
    }
    Ok(Outcome::Forget)
}

/// An owner deleted in the foreground: done once no dependent blocks it.
async fn finish_foreground(ctx: &Ctx, n: &Node) -> Result<(), Error> {
    let blocking: Vec<(String, bool)> = ctx
        .state()
        .graph
        .blocking_dependents(&n.id.uid)
        .iter()
        .map(|d| (d.id.uid.clone(), d.deleting_dependents()))
        .collect();
    if blocking.is_empty() {
        tracing::debug!(item = %n.id, "removing the foregroundDeletion finalizer");
        ops::patch_pinned(&ctx.client, &n.res, &n.id, |m| {
            ops::without_finalizer(m, FOREGROUND)
        })
        .await?;
        return Ok(());
    }
    for (uid, waits) in blocking {
        // One deleting its own dependents comes back when they are gone.
        if !waits {
            ctx.attempt_to_delete.add(uid);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use RefState::*;

    fn refs(states: &[(&str, RefState)]) -> Vec<(String, RefState)> {
        states.iter().map(|(u, s)| (u.to_string(), *s)).collect()
    }

    fn delete(policy: PropagationPolicy) -> Decision {
        Decision::Delete {
            policy,
            unblock_first: false,
        }
    }

    #[test]
    fn a_solid_owner_keeps_the_object() {
        assert_eq!(
            decide(&refs(&[("a", Solid)]), false, false, &[]),
            Decision::Keep
        );
    }

    #[test]
    fn with_a_solid_owner_only_dangling_and_waiting_references_go() {
        let d = decide(
            &refs(&[("a", Dangling), ("b", Solid), ("c", Waiting)]),
            true,
            false,
            &[],
        );
        assert_eq!(d, Decision::RemoveRefs(vec!["a".into(), "c".into()]));
    }

    #[test]
    fn all_owners_absent_deletes_in_the_background() {
        let d = decide(&refs(&[("a", Dangling), ("b", Dangling)]), true, false, &[]);
        assert_eq!(d, delete(PropagationPolicy::Background));
    }

    #[test]
    fn an_existing_gc_finalizer_sets_the_policy() {
        let r = refs(&[("a", Dangling)]);
        assert_eq!(
            decide(&r, false, false, &["orphan".into()]),
            delete(PropagationPolicy::Orphan)
        );
        assert_eq!(
            decide(&r, false, false, &["foregroundDeletion".into()]),
            delete(PropagationPolicy::Foreground)
        );
    }

    #[test]
    fn a_waiting_owner_deletes_an_owning_dependent_in_the_foreground() {
        let r = refs(&[("a", Waiting), ("b", Dangling)]);
        assert_eq!(
            decide(&r, true, false, &[]),
            delete(PropagationPolicy::Foreground)
        );
        assert_eq!(
            decide(&r, true, true, &[]),
            Decision::Delete {
                policy: PropagationPolicy::Foreground,
                unblock_first: true
            }
        );
        // Without dependents of its own: a plain background delete.
        assert_eq!(
            decide(&r, false, false, &[]),
            delete(PropagationPolicy::Background)
        );
    }

    fn id(uid: &str) -> Identity {
        Identity {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: "x".into(),
            namespace: "ns".into(),
            uid: uid.into(),
        }
    }

    #[test]
    fn the_absent_cache_is_bounded() {
        let mut c = AbsentCache::default();
        c.add(id("first"));
        c.add(id("first"));
        assert!(c.has(&id("first")));
        for i in 0..ABSENT_CAPACITY {
            c.add(id(&i.to_string()));
        }
        assert!(!c.has(&id("first")));
        assert!(c.has(&id("0")));
        assert_eq!(c.set.len(), ABSENT_CAPACITY);
        let mut other_ns = id("0");
        other_ns.namespace = "elsewhere".into();
        assert!(!c.has(&other_ns));
    }
}
