//! An informer's cache of owned objects (pods for the ReplicaSet controllers,
//! ReplicaSets for the Deployment controller): every object, indexed by its
//! controller's UID and, for objects without a controller, by namespace (the
//! two lookups a sync needs, as upstream's `FilterPodsByOwner` with
//! orphans). A sync then touches its own objects and the namespace's
//! orphans, never every object.
//!
//! The cache is written by one task from a kube-rs watcher, and each write
//! returns the changes (old, new) it made, so the handlers run after the
//! cache shows the change, as upstream's informer handlers do: an owner
//! woken by a pod's creation always sees that pod.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::runtime::watcher;
use kube::Resource;

/// An object's `namespace/name`.
pub fn key<K: Resource>(p: &K) -> String {
    let m = p.meta();
    format!(
        "{}/{}",
        m.namespace.as_deref().unwrap_or(""),
        m.name.as_deref().unwrap_or("")
    )
}

/// The UID of the object's controller (the owner reference with
/// `controller: true`).
pub fn controller_uid<K: Resource>(p: &K) -> Option<&str> {
    controller_of(p).map(|r| r.uid.as_str())
}

/// The object's controller reference.
pub fn controller_of<K: Resource>(p: &K) -> Option<&OwnerReference> {
    p.meta()
        .owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// One change the cache made: an object appeared (`old` is `None`),
/// changed, or went away (`new` is `None`).
#[derive(Clone, Debug)]
pub struct Change<K = Pod> {
    pub old: Option<Arc<K>>,
    pub new: Option<Arc<K>>,
}

struct Inner<K> {
    pods: HashMap<String, Arc<K>>,
    by_controller: HashMap<String, HashSet<String>>,
    orphans: HashMap<String, HashSet<String>>,
    /// Objects of a relist in progress; swapped in when it completes.
    relist: Option<HashMap<String, Arc<K>>>,
}

impl<K> Default for Inner<K> {
    fn default() -> Self {
        Inner {
            pods: HashMap::new(),
            by_controller: HashMap::new(),
            orphans: HashMap::new(),
            relist: None,
        }
    }
}

impl<K: Resource> Inner<K> {
    fn index(&mut self, k: &str, p: &K) {
        let set = match controller_uid(p) {
            Some(uid) => self.by_controller.entry(uid.to_string()).or_default(),
            None => self
                .orphans
                .entry(p.meta().namespace.clone().unwrap_or_default())
                .or_default(),
        };
        set.insert(k.to_string());
    }

    fn unindex(&mut self, k: &str, p: &K) {
        let (map, at) = match controller_uid(p) {
            Some(uid) => (&mut self.by_controller, uid.to_string()),
            None => (
                &mut self.orphans,
                p.meta().namespace.clone().unwrap_or_default(),
            ),
        };
        if let Some(set) = map.get_mut(&at) {
            set.remove(k);
            if set.is_empty() {
                map.remove(&at);
            }
        }
    }

    fn insert(&mut self, p: Arc<K>) -> Option<Arc<K>> {
        let k = key(p.as_ref());
        let old = self.pods.insert(k.clone(), p.clone());
        if let Some(o) = &old {
            self.unindex(&k, o);
        }
        self.index(&k, &p);
        old
    }

    fn remove(&mut self, k: &str) -> Option<Arc<K>> {
        let old = self.pods.remove(k)?;
        self.unindex(k, &old);
        Some(old)
    }

    fn get_all<'a>(
        &'a self,
        keys: Option<&'a HashSet<String>>,
    ) -> impl Iterator<Item = Arc<K>> + 'a {
        keys.into_iter()
            .flatten()
            .filter_map(|k| self.pods.get(k).cloned())
    }
}

/// The cache of one kind of owned object.
pub struct OwnedCache<K> {
    inner: RwLock<Inner<K>>,
    ready: tokio::sync::watch::Sender<bool>,
}

/// The pod cache both ReplicaSet controllers share.
pub type PodCache = OwnedCache<Pod>;

impl<K> Default for OwnedCache<K> {
    fn default() -> Self {
        OwnedCache {
            inner: RwLock::new(Inner::default()),
            ready: tokio::sync::watch::Sender::new(false),
        }
    }
}

/// Drop what the controllers never read and would otherwise hold for every
/// object in the cluster. (An update sent without `managedFields` keeps the
/// stored ones.)
fn slim<K: Resource>(mut p: K) -> Arc<K> {
    p.meta_mut().managed_fields = None;
    Arc::new(p)
}

fn rv<K: Resource>(p: &K) -> Option<&str> {
    p.meta().resource_version.as_deref()
}

impl<K: Resource> OwnedCache<K> {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner<K>> {
        // Writers never panic mid-update (plain map operations).
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner<K>> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Apply one watcher event; returns what changed.
    pub fn apply(&self, ev: watcher::Event<K>) -> Vec<Change<K>> {
        let mut g = self.write();
        match ev {
            watcher::Event::Init => {
                g.relist = Some(HashMap::new());
                Vec::new()
            }
            watcher::Event::InitApply(p) => {
                let p = slim(p);
                g.relist
                    .get_or_insert_with(HashMap::new)
                    .insert(key(p.as_ref()), p);
                Vec::new()
            }
            watcher::Event::InitDone => {
                let fresh = g.relist.take().unwrap_or_default();
                let old = std::mem::take(&mut g.pods);
                g.by_controller.clear();
                g.orphans.clear();
                let mut changes = Vec::new();
                for (k, p) in fresh {
                    let before = old.get(&k).cloned();
                    // Unchanged pods need no handler (upstream's update
                    // handler ignores equal resource versions too).
                    if before
                        .as_ref()
                        .is_none_or(|b| rv(b.as_ref()) != rv(p.as_ref()))
                    {
                        changes.push(Change {
                            old: before,
                            new: Some(p.clone()),
                        });
                    }
                    g.insert(p);
                }
                for (k, p) in old {
                    if !g.pods.contains_key(&k) {
                        changes.push(Change {
                            old: Some(p),
                            new: None,
                        });
                    }
                }
                drop(g);
                self.ready.send_replace(true);
                changes
            }
            watcher::Event::Apply(p) => {
                let p = slim(p);
                let old = g.insert(p.clone());
                vec![Change { old, new: Some(p) }]
            }
            watcher::Event::Delete(p) => {
                let p = slim(p);
                g.remove(&key(p.as_ref()));
                vec![Change {
                    old: Some(p),
                    new: None,
                }]
            }
        }
    }

    /// Objects controlled by `uid`, and the orphans of `namespace`.
    pub fn controlled_or_orphans(&self, namespace: &str, uid: &str) -> Vec<Arc<K>> {
        let g = self.read();
        g.get_all(g.by_controller.get(uid))
            .chain(g.get_all(g.orphans.get(namespace)))
            .collect()
    }

    /// Objects controlled by `uid`.
    pub fn controlled_by(&self, uid: &str) -> Vec<Arc<K>> {
        let g = self.read();
        g.get_all(g.by_controller.get(uid)).collect()
    }

    /// The object `namespace/name`, if cached.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        self.read()
            .pods
            .get(&format!("{namespace}/{name}"))
            .cloned()
    }

    /// Wait for the first complete list.
    pub async fn wait_ready(&self) {
        let mut rx = self.ready.subscribe();
        // The sender lives as long as `self`.
        let _ = rx.wait_for(|r| *r).await;
    }

    /// Whether the first complete list arrived.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(ns: &str, name: &str, rv: &str, owner: Option<&str>) -> Pod {
        let refs = owner.map(|u| {
            json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": u, "controller": true}])
        });
        serde_json::from_value(json!({
            "metadata": {"namespace": ns, "name": name, "resourceVersion": rv,
                "ownerReferences": refs, "managedFields": [{"manager": "x"}]}
        }))
        .unwrap()
    }

    fn names(mut v: Vec<Arc<Pod>>) -> Vec<String> {
        v.sort_by_key(|p| key(p.as_ref()));
        v.iter().map(|p| key(p.as_ref())).collect()
    }

    #[tokio::test]
    async fn indexes_follow_ownership_changes() {
        let c = PodCache::default();
        assert!(!c.is_ready());
        c.apply(watcher::Event::Init);
        c.apply(watcher::Event::InitApply(pod("a", "p1", "1", Some("u1"))));
        c.apply(watcher::Event::InitApply(pod("a", "p2", "1", None)));
        c.apply(watcher::Event::InitApply(pod("b", "p3", "1", None)));
        assert!(
            c.controlled_by("u1").is_empty(),
            "not visible before the list completes"
        );
        let changes = c.apply(watcher::Event::InitDone);
        assert_eq!(changes.len(), 3);
        assert!(changes.iter().all(|ch| ch.old.is_none()));
        c.wait_ready().await;
        assert_eq!(names(c.controlled_or_orphans("a", "u1")), ["a/p1", "a/p2"]);
        assert!(c.controlled_by("u1")[0].metadata.managed_fields.is_none());

        // p2 is adopted, p1 released.
        let ch = c.apply(watcher::Event::Apply(pod("a", "p2", "2", Some("u1"))));
        assert_eq!(
            ch[0].old.as_ref().map(|p| rv(p.as_ref()).unwrap()),
            Some("1")
        );
        c.apply(watcher::Event::Apply(pod("a", "p1", "2", None)));
        assert_eq!(names(c.controlled_by("u1")), ["a/p2"]);
        assert_eq!(names(c.controlled_or_orphans("a", "u2")), ["a/p1"]);

        let ch = c.apply(watcher::Event::Delete(pod("a", "p2", "3", Some("u1"))));
        assert!(ch[0].new.is_none() && ch[0].old.is_some());
        assert!(c.controlled_by("u1").is_empty());
    }

    #[test]
    fn a_relist_reports_only_differences() {
        let c = PodCache::default();
        c.apply(watcher::Event::Init);
        c.apply(watcher::Event::InitApply(pod("a", "same", "1", Some("u"))));
        c.apply(watcher::Event::InitApply(pod(
            "a",
            "changed",
            "1",
            Some("u"),
        )));
        c.apply(watcher::Event::InitApply(pod("a", "gone", "1", Some("u"))));
        c.apply(watcher::Event::InitDone);
        c.apply(watcher::Event::Init);
        c.apply(watcher::Event::InitApply(pod("a", "same", "1", Some("u"))));
        c.apply(watcher::Event::InitApply(pod(
            "a",
            "changed",
            "2",
            Some("u"),
        )));
        c.apply(watcher::Event::InitApply(pod("a", "new", "2", Some("u"))));
        // Until the relist completes, the old view is served.
        assert_eq!(c.controlled_by("u").len(), 3);
        let mut got: Vec<(String, bool, bool)> = c
            .apply(watcher::Event::InitDone)
            .into_iter()
            .map(|ch| {
                let p = ch.new.as_ref().or(ch.old.as_ref()).unwrap();
                (key(p.as_ref()), ch.old.is_some(), ch.new.is_some())
            })
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                ("a/changed".to_string(), true, true),
                ("a/gone".to_string(), true, false),
                ("a/new".to_string(), false, true)
            ]
        );
        assert_eq!(
            names(c.controlled_by("u")),
            ["a/changed", "a/new", "a/same"]
        );
    }
}
