//! An informer: one watch per resource feeding an in-memory cache indexed by
//! namespace, and a callback with the old and new object of every change (the
//! shape of client-go's event handlers, which the mapping from pods to
//! services needs: a pod whose labels changed concerns the services it left).
//!
//! kube-rs's `reflector::Store` keeps one flat map and its handlers see only
//! the new object, so a sync would scan every pod in the cluster and a label
//! change would lose the old membership; hence this small cache.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::{watcher, WatchStreamExt};
use kube::Resource;
use serde::de::DeserializeOwned;

type Objects<K> = HashMap<String, HashMap<String, Arc<K>>>;

/// Objects of one resource by namespace (`""` for cluster-scoped) and name.
pub struct Cache<K> {
    objects: RwLock<Objects<K>>,
    ready: tokio::sync::watch::Sender<bool>,
}

impl<K> Default for Cache<K> {
    fn default() -> Self {
        Cache {
            objects: RwLock::new(HashMap::new()),
            ready: tokio::sync::watch::Sender::new(false),
        }
    }
}

fn key_of<K: Resource>(obj: &K) -> (String, String) {
    let m = obj.meta();
    (
        m.namespace.clone().unwrap_or_default(),
        m.name.clone().unwrap_or_default(),
    )
}

impl<K: Resource> Cache<K> {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Objects<K>> {
        self.objects.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Objects<K>> {
        self.objects.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The object `ns/name`, if cached.
    pub fn get(&self, ns: &str, name: &str) -> Option<Arc<K>> {
        self.read().get(ns).and_then(|m| m.get(name)).cloned()
    }

    /// The objects of namespace `ns` that `keep` accepts.
    pub fn list(&self, ns: &str, mut keep: impl FnMut(&K) -> bool) -> Vec<Arc<K>> {
        self.read()
            .get(ns)
            .map(|m| m.values().filter(|o| keep(o)).cloned().collect())
            .unwrap_or_default()
    }

    /// Resolves once the first full list has been loaded.
    pub async fn wait_ready(&self) {
        let mut rx = self.ready.subscribe();
        let _ = rx.wait_for(|r| *r).await;
    }

    fn insert(&self, obj: Arc<K>) -> Option<Arc<K>> {
        let (ns, name) = key_of(obj.as_ref());
        self.write().entry(ns).or_default().insert(name, obj)
    }

    fn remove(&self, ns: &str, name: &str) -> Option<Arc<K>> {
        let mut objects = self.write();
        let m = objects.get_mut(ns)?;
        let old = m.remove(name);
        if m.is_empty() {
            objects.remove(ns);
        }
        old
    }

    fn keys(&self) -> Vec<(String, String)> {
        self.read()
            .iter()
            .flat_map(|(ns, m)| m.keys().map(move |n| (ns.clone(), n.clone())))
            .collect()
    }
}

/// What a change handler receives: the object before and after (`None` when
/// it did not exist / no longer exists).
pub type Change<K> = (Option<Arc<K>>, Option<Arc<K>>);

/// Applies watch events to a cache and reports each change.
pub struct Feeder<K> {
    cache: Arc<Cache<K>>,
    /// During a (re)list: the keys listed so far.
    listing: Option<HashSet<(String, String)>>,
}

impl<K: Resource> Feeder<K> {
    /// A feeder for `cache`.
    pub fn new(cache: Arc<Cache<K>>) -> Self {
        Feeder {
            cache,
            listing: None,
        }
    }

    /// Apply one event, calling `on_change` for each object it changes.
    /// A relist updates objects as they arrive and, when complete, removes
    /// (and reports as deleted) whatever it did not list.
    pub fn apply(&mut self, ev: watcher::Event<K>, on_change: &mut impl FnMut(Change<K>)) {
        match ev {
            watcher::Event::Init => self.listing = Some(HashSet::new()),
            watcher::Event::InitApply(obj) => {
                if let Some(listed) = self.listing.as_mut() {
                    listed.insert(key_of(&obj));
                }
                self.applied(obj, on_change);
            }
            watcher::Event::InitDone => {
                if let Some(listed) = self.listing.take() {
                    for (ns, name) in self.cache.keys() {
                        if listed.contains(&(ns.clone(), name.clone())) {
                            continue;
                        }
                        if let Some(old) = self.cache.remove(&ns, &name) {
                            on_change((Some(old), None));
                        }
                    }
                }
                self.cache.ready.send_replace(true);
            }
            watcher::Event::Apply(obj) => self.applied(obj, on_change),
            watcher::Event::Delete(obj) => {
                let (ns, name) = key_of(&obj);
                let old = self
                    .cache
                    .remove(&ns, &name)
                    .unwrap_or_else(|| Arc::new(obj));
                on_change((Some(old), None));
            }
        }
    }

    fn applied(&mut self, obj: K, on_change: &mut impl FnMut(Change<K>)) {
        let new = Arc::new(obj);
        let old = self.cache.insert(new.clone());
        on_change((old, Some(new)));
    }
}

/// Keep `cache` in step with the objects `api` lists and watches, calling
/// `on_change` for every change. `trim` drops what the controllers never
/// read, before an object is stored. Runs until the process ends.
pub async fn run<K>(
    api: Api<K>,
    cfg: watcher::Config,
    cache: Arc<Cache<K>>,
    trim: fn(&mut K),
    mut on_change: impl FnMut(Change<K>) + Send,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let what = std::any::type_name::<K>()
        .rsplit("::")
        .next()
        .unwrap_or("?");
    let mut feeder = Feeder::new(cache);
    let mut events = std::pin::pin!(watcher(api, cfg).default_backoff());
    while let Some(ev) = events.next().await {
        match ev {
            Ok(ev) => feeder.apply(ev.modify(trim), &mut on_change),
            Err(e) => tracing::warn!(resource = what, error = %e, "watch failed; retrying"),
        }
    }
}

/// Drops `metadata.managedFields`, which no controller here reads.
pub fn trim_managed_fields<K: Resource>(obj: &mut K) {
    obj.meta_mut().managed_fields = None;
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::ObjectMeta;

    fn pod(ns: &str, name: &str, rv: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                resource_version: Some(rv.into()),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        }
    }

    fn rv(p: &Option<Arc<Pod>>) -> Option<String> {
        p.as_ref().and_then(|p| p.metadata.resource_version.clone())
    }

    #[test]
    fn changes_carry_old_and_new_objects() {
        let cache = Arc::new(Cache::default());
        let mut f = Feeder::new(cache.clone());
        let mut seen = Vec::new();
        let mut h = |(o, n): Change<Pod>| seen.push((rv(&o), rv(&n)));
        f.apply(watcher::Event::Apply(pod("a", "p", "1")), &mut h);
        f.apply(watcher::Event::Apply(pod("a", "p", "2")), &mut h);
        f.apply(watcher::Event::Delete(pod("a", "p", "3")), &mut h);
        assert_eq!(
            seen,
            vec![
                (None, Some("1".into())),
                (Some("1".into()), Some("2".into())),
                (Some("2".into()), None),
            ]
        );
        assert!(cache.get("a", "p").is_none());
    }

    #[test]
    fn a_relist_reports_what_vanished_and_marks_ready() {
        let cache = Arc::new(Cache::default());
        let mut f = Feeder::new(cache.clone());
        let mut gone = Vec::new();
        let mut h = |(o, n): Change<Pod>| {
            if n.is_none() {
                gone.push(o.unwrap().metadata.name.clone().unwrap());
            }
        };
        f.apply(watcher::Event::Init, &mut h);
        f.apply(watcher::Event::InitApply(pod("a", "keep", "1")), &mut h);
        f.apply(watcher::Event::InitApply(pod("b", "drop", "1")), &mut h);
        f.apply(watcher::Event::InitDone, &mut h);
        assert!(*cache.ready.borrow());
        f.apply(watcher::Event::Init, &mut h);
        f.apply(watcher::Event::InitApply(pod("a", "keep", "2")), &mut h);
        f.apply(watcher::Event::InitDone, &mut h);
        assert_eq!(gone, vec!["drop".to_string()]);
        assert_eq!(cache.list("a", |_| true).len(), 1);
        assert!(cache.list("b", |_| true).is_empty());
    }
}
