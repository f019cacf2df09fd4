//! The watch cache: every object under `/registry/` in memory, kept current by
//! one store watch, plus a window of recent events.
//!
//! Reads are served from here once the cache has caught up with the store's
//! current revision, so a read reflects every write acknowledged before it.
//! Watches start from the event window when they can, and from the store
//! otherwise (which answers "compacted", i.e. 410, when history is gone).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::{Bound, Range};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use store::{EventKind, KeyRange, RangeRequest, Store, WatchRequest, WatchResponse};
use tokio::sync::{broadcast, watch};

use crate::resources::{self, ResourceInfo};
use crate::stamp::{self, Slotted, Stamped};
use crate::strategy;

/// Every object lives under this prefix.
pub const REGISTRY_PREFIX: &str = "/registry/";
/// Events kept for watches that start a little in the past ...
const EVENT_WINDOW: usize = 20_000;
/// ... holding at most this many bytes of their objects' JSON: 20,000
/// events of a Deployment that 32 managers apply to (20 KB each) would
/// hold 400 MB. A watch from before the window is served by the store.
const EVENT_WINDOW_BYTES: usize = 64 << 20;
/// Cache events buffered per live watch subscriber before it is cut off.
const BROADCAST: usize = 8192;
/// Writes in flight whose prepared entries the cache holds at most; past
/// this, hints are dropped (the cache then decodes the store's events).
const MAX_HINTS: usize = 4096;
/// Writes of one key awaited at once (pipelined writes chain on each other).
const MAX_HINTS_PER_KEY: usize = 64;

/// One object as served: its JSON with `metadata.resourceVersion` set, and
/// what selectors need, extracted once.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Store key.
    pub key: String,
    /// The resource.
    pub info: &'static ResourceInfo,
    /// `mod_revision` (for a deleted object: the delete's revision).
    pub rev: i64,
    /// The object's JSON as served.
    pub raw: Bytes,
    /// Where the digits of `metadata.resourceVersion` are in `raw`, if known.
    pub rv_span: Option<Range<usize>>,
    /// Namespace, for namespaced kinds.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Selectable field values, including `metadata.name` and `metadata.namespace`.
    pub fields: Vec<(&'static str, String)>,
    /// Whether `metadata.deletionTimestamp` is set.
    pub deleting: bool,
}

impl Entry {
    /// A field's value for field selectors.
    pub fn field(&self, name: &str) -> Option<String> {
        self.fields
            .iter()
            .find(|(f, _)| *f == name)
            .map(|(_, v)| v.clone())
    }

    /// Parse the JSON.
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.raw).unwrap_or(Value::Null)
    }
}

/// Added, modified or deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// `ADDED`
    Added,
    /// `MODIFIED`
    Modified,
    /// `DELETED`
    Deleted,
}

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change to one object.
#[derive(Debug)]
pub struct Event {
    /// Revision of the change.
    pub rev: i64,
    /// What happened.
    pub kind: EventType,
    /// The object after the change (for a delete: its last state, at the delete's revision).
    pub entry: Arc<Entry>,
    /// The object before, if known.
    pub prev: Option<Arc<Entry>>,
    /// When the cache saw it; a watcher still behind an old event is stalled.
    pub at: std::time::Instant,
}

/// What flows to live watchers: changes, and progress when the store reports it.
#[derive(Clone, Debug)]
pub enum Update {
    /// A change.
    Event(Arc<Event>),
    /// Everything up to this revision has been delivered.
    Progress(i64),
}

struct State {
    objects: BTreeMap<String, Arc<Entry>>,
    events: VecDeque<Arc<Event>>,
    /// The cache reflects the store at this revision.
    rev: i64,
    /// The window holds every event after this revision.
    window_start: i64,
    /// The bytes the window's events hold ([`event_bytes`]).
    window_bytes: usize,
}

/// What an event in the window holds beyond the objects themselves: its
/// object's JSON (its previous state is the event before's, or gone).
fn event_bytes(e: &Event) -> usize {
    e.entry.raw.len() + e.entry.key.len()
}

impl State {
    /// Add an event to the window and drop the oldest ones past either bound.
    fn push_event(&mut self, e: Arc<Event>, max_events: usize, max_bytes: usize) {
        self.window_bytes += event_bytes(&e);
        self.events.push_back(e);
        while self.events.len() > max_events || self.window_bytes > max_bytes {
            let Some(old) = self.events.pop_front() else {
                break;
            };
            self.window_bytes -= event_bytes(&old);
            self.window_start = old.rev;
        }
    }
}

/// The cache. Cheap to share.
pub struct WatchCache {
    state: RwLock<State>,
    updates: broadcast::Sender<Update>,
    rev_tx: watch::Sender<i64>,
    store: Arc<dyn Store>,
    /// Writes in flight on this server, by key (see [`WatchCache::expect`]).
    hints: Mutex<HashMap<String, VecDeque<Arc<Prepared>>>>,
}

/// The resource a key belongs to: `/registry/{group|core}/{plural}/...`.
pub fn resource_of_key(key: &str) -> Option<&'static ResourceInfo> {
    let rest = key.strip_prefix(REGISTRY_PREFIX)?;
    let mut it = rest.splitn(3, '/');
    let group = it.next()?;
    let plural = it.next()?;
    let group = if group == "core" { "" } else { group };
    resources::by_group_resource(group, plural)
}

/// What selectors need from an object: name, namespace, labels and the
/// kind's selectable fields.
#[derive(Clone, Debug)]
struct Index {
    name: String,
    namespace: Option<String>,
    labels: BTreeMap<String, String>,
    fields: Vec<(&'static str, String)>,
    deleting: bool,
}

impl Index {
    fn of(info: &ResourceInfo, v: &Value) -> Option<Index> {
        let meta = v.get("metadata")?.as_object()?;
        let name = meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let namespace = meta
            .get("namespace")
            .and_then(Value::as_str)
            .map(str::to_string);
        let labels: BTreeMap<String, String> = meta
            .get("labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let mut fields = vec![("metadata.name", name.clone())];
        if info.namespaced {
            fields.push(("metadata.namespace", namespace.clone().unwrap_or_default()));
        }
        fields.extend(strategy::strategy_for(info).selectable_fields(v));
        let deleting = meta.get("deletionTimestamp").is_some_and(|d| !d.is_null());
        Some(Index {
            name,
            namespace,
            labels,
            fields,
            deleting,
        })
    }

    fn entry(self, key: &str, info: &'static ResourceInfo, rev: i64, s: Stamped) -> Entry {
        Entry {
            key: key.to_string(),
            info,
            rev,
            raw: s.raw,
            rv_span: s.rv,
            namespace: self.namespace,
            name: self.name,
            labels: self.labels,
            fields: self.fields,
            deleting: self.deleting,
        }
    }
}

/// Build a served entry from a stored value at `rev`.
pub fn make_entry(key: &str, stored: &[u8], rev: i64) -> Option<Entry> {
    let info = resource_of_key(key)?;
    let mut v: Value = serde_json::from_slice(stored).ok()?;
    crate::crd::decode_stored(info, &mut v);
    v.get_mut("metadata")?
        .as_object_mut()?
        .remove("resourceVersion");
    let index = Index::of(info, &v)?;
    let s = stamp::slotted(&v).ok()?;
    Some(index.entry(key, info, rev, s.stamp(rev)))
}

/// The entry of `e`'s object at another revision (a DELETED event carries the
/// last state at the delete's revision).
fn restamped(key: &str, e: &Entry, rev: i64) -> Option<Entry> {
    let s = Stamped {
        raw: e.raw.clone(),
        rv: e.rv_span.clone(),
    };
    match s.restamp(rev) {
        Some(s) => Some(Entry {
            rev,
            raw: s.raw,
            rv_span: s.rv,
            ..e.clone()
        }),
        None => make_entry(key, &e.raw, rev),
    }
}

/// An object that a write on this server is about to commit, encoded once.
/// The store gets [`Prepared::stored`], the client gets [`Prepared::stamp`],
/// and the watch cache builds its entry from here instead of decoding the
/// store's event again (see [`WatchCache::expect`]).
#[derive(Debug)]
pub struct Prepared {
    key: String,
    info: &'static ResourceInfo,
    slotted: Slotted,
    index: Index,
    /// The served JSON at the revision the write committed at, built once
    /// for both the client and the cache's entry.
    stamped: std::sync::OnceLock<(i64, stamp::Stamped)>,
}

impl Prepared {
    /// `None` where the stored form is not simply the served form without its
    /// resourceVersion (custom resources and events.k8s.io Events are
    /// converted on the way in and out), or `obj` is not an object.
    pub fn new(info: &'static ResourceInfo, key: &str, obj: &Value) -> Option<Prepared> {
        Prepared::with_managed_fields(info, key, obj, None)
    }

    /// [`Prepared::new`] of an object whose `metadata.managedFields` are
    /// kept out of `obj`, as their JSON (`managed_fields`), spliced into
    /// the encoding (see [`stamp::slotted_with`]).
    pub fn with_managed_fields(
        info: &'static ResourceInfo,
        key: &str,
        obj: &Value,
        managed_fields: Option<&[u8]>,
    ) -> Option<Prepared> {
        if !resources::is_builtin(info) || crate::convert::for_storage(info, obj).is_some() {
            return None;
        }
        // The cache's entry carries the resource its key names.
        let info = resource_of_key(key).filter(|i| i.plural == info.plural)?;
        let index = Index::of(info, obj)?;
        let slotted = stamp::slotted_with(obj, managed_fields).ok()??;
        Some(Prepared {
            key: key.to_string(),
            info,
            slotted,
            index,
            stamped: std::sync::OnceLock::new(),
        })
    }

    /// The bytes to write to the store.
    pub fn stored(&self) -> Bytes {
        self.slotted.bytes.clone()
    }

    /// The JSON as served once committed at `rev`.
    pub fn stamp(&self, rev: i64) -> Bytes {
        self.stamped(rev).raw
    }

    fn entry(&self, rev: i64) -> Entry {
        self.index
            .clone()
            .entry(&self.key, self.info, rev, self.stamped(rev))
    }

    /// The served copy at `rev`, shared with whoever asked for it before.
    fn stamped(&self, rev: i64) -> stamp::Stamped {
        match self.stamped.get() {
            Some((r, s)) if *r == rev => s.clone(),
            Some(_) => self.slotted.stamp(rev),
            None => {
                let s = self.slotted.stamp(rev);
                let _ = self.stamped.set((rev, s.clone()));
                s
            }
        }
    }
}

impl WatchCache {
    /// Load everything and start following the store.
    pub async fn start(store: Arc<dyn Store>) -> store::Result<Arc<WatchCache>> {
        let (updates, _) = broadcast::channel(BROADCAST);
        let (rev_tx, _) = watch::channel(0);
        let cache = Arc::new(WatchCache {
            state: RwLock::new(State {
                objects: BTreeMap::new(),
                events: VecDeque::new(),
                rev: 0,
                window_start: 0,
                window_bytes: 0,
            }),
            updates,
            rev_tx,
            store,
            hints: Mutex::new(HashMap::new()),
        });
        let rev = cache.relist().await?;
        tokio::spawn(follow(Arc::downgrade(&cache), rev));
        Ok(cache)
    }

    /// Replace the contents with a fresh list, announcing differences as events.
    async fn relist(&self) -> store::Result<i64> {
        let resp = self
            .store
            .range(RangeRequest::prefix(REGISTRY_PREFIX))
            .await?;
        let rev = resp.revision;
        // Events before the relist are gone: so are the hints that awaited them.
        self.hints.lock().expect("hints lock").clear();
        // CRDs first: they decide which custom resource keys can be decoded.
        crate::crd::observe_all(resp.kvs.iter().filter_map(|kv| {
            let key = std::str::from_utf8(&kv.key).ok()?;
            key.starts_with(crate::crd::CRD_PREFIX)
                .then_some((key, kv.value.as_ref()))
        }));
        let mut fresh = BTreeMap::new();
        for kv in resp.kvs {
            let key = String::from_utf8_lossy(&kv.key).into_owned();
            match make_entry(&key, &kv.value, kv.mod_revision) {
                Some(e) => {
                    fresh.insert(key, Arc::new(e));
                }
                None if key.starts_with(crate::alloc::INTERNAL_PREFIX) => {}
                None => tracing::warn!(key, "skipping undecodable object in the store"),
            }
        }
        let mut events = Vec::new();
        {
            let mut st = self.state.write().expect("cache lock");
            for (k, e) in &fresh {
                match st.objects.get(k) {
                    None => events.push(Event {
                        rev,
                        kind: EventType::Added,
                        entry: e.clone(),
                        prev: None,
                        at: std::time::Instant::now(),
                    }),
                    Some(old) if old.rev != e.rev => events.push(Event {
                        rev,
                        kind: EventType::Modified,
                        entry: e.clone(),
                        prev: Some(old.clone()),
                        at: std::time::Instant::now(),
                    }),
                    _ => {}
                }
            }
            for (k, old) in &st.objects {
                if !fresh.contains_key(k) {
                    events.push(Event {
                        rev,
                        kind: EventType::Deleted,
                        entry: old.clone(),
                        prev: Some(old.clone()),
                        at: std::time::Instant::now(),
                    });
                }
            }
            st.objects = fresh;
            st.events.clear();
            st.window_bytes = 0;
            st.rev = rev;
            st.window_start = rev;
        }
        for e in events {
            let _ = self.updates.send(Update::Event(Arc::new(e)));
        }
        self.rev_tx.send_replace(rev);
        tracing::info!(revision = rev, "watch cache listed");
        Ok(rev)
    }

    /// A write on this server is about to commit `p`: when its event comes
    /// back from the store with the same bytes, the entry is taken from `p`.
    pub fn expect(&self, p: Arc<Prepared>) {
        let mut hints = self.hints.lock().expect("hints lock");
        if hints.len() >= MAX_HINTS {
            hints.clear();
        }
        // Pipelined writes of one key put several in flight, in order.
        let q = hints.entry(p.key.clone()).or_default();
        if q.len() >= MAX_HINTS_PER_KEY {
            q.pop_front();
        }
        q.push_back(p);
    }

    /// The write of `p` did not commit.
    pub fn unexpect(&self, p: &Arc<Prepared>) {
        let mut hints = self.hints.lock().expect("hints lock");
        if let Some(q) = hints.get_mut(&p.key) {
            q.retain(|h| !Arc::ptr_eq(h, p));
            if q.is_empty() {
                hints.remove(&p.key);
            }
        }
    }

    /// The entry of a put at `rev`, from a hint when one matches. Writes of
    /// a key commit in the order they were expected, so hints before the
    /// matching one are of writes that will not come back.
    fn put_entry(&self, key: &str, value: &Bytes, rev: i64) -> Option<Entry> {
        let hint = {
            let mut hints = self.hints.lock().expect("hints lock");
            let mut found = None;
            if let Some(q) = hints.get_mut(key) {
                // The store hands back the very bytes it was given, so the
                // same pointer settles most lookups without comparing
                // kilobytes.
                let same = |b: &Bytes| {
                    (b.as_ptr() == value.as_ptr() && b.len() == value.len()) || b == value
                };
                if let Some(i) = q.iter().position(|h| same(&h.slotted.bytes)) {
                    q.drain(..i);
                    found = q.pop_front();
                }
                if q.is_empty() {
                    hints.remove(key);
                }
            }
            found
        };
        match hint {
            Some(h) => Some(h.entry(rev)),
            None => make_entry(key, value, rev),
        }
    }

    fn apply(&self, batch: Vec<store::Event>) {
        // Decode outside the lock, in store order (a CRD change decides how
        // later custom resources in the batch decode).
        let mut decoded = Vec::with_capacity(batch.len());
        for ev in batch {
            let key = String::from_utf8_lossy(&ev.kv.key).into_owned();
            crate::crd::observe(
                &key,
                (ev.kind == EventKind::Put).then_some(ev.kv.value.as_ref()),
            );
            let put = match ev.kind {
                EventKind::Put => {
                    let entry = self.put_entry(&key, &ev.kv.value, ev.kv.mod_revision);
                    if entry.is_none() && !key.starts_with(crate::alloc::INTERNAL_PREFIX) {
                        tracing::warn!(key, "skipping undecodable object in the store");
                    }
                    Some(entry)
                }
                EventKind::Delete => None,
            };
            decoded.push((key, ev, put));
        }
        let mut out = Vec::with_capacity(decoded.len());
        let mut last = 0;
        {
            let mut st = self.state.write().expect("cache lock");
            for (key, ev, put) in decoded {
                let rev = ev.kv.mod_revision;
                last = rev;
                let prev = st.objects.get(&key).cloned();
                let event = match put {
                    Some(None) => continue,
                    Some(Some(entry)) => {
                        let entry = Arc::new(entry);
                        st.objects.insert(key, entry.clone());
                        let kind = if prev.is_some() {
                            EventType::Modified
                        } else {
                            EventType::Added
                        };
                        Event {
                            rev,
                            kind,
                            entry,
                            prev,
                            at: std::time::Instant::now(),
                        }
                    }
                    None => {
                        st.objects.remove(&key);
                        let Some(last_state) = prev.clone().or_else(|| {
                            ev.prev_kv.as_ref().and_then(|p| {
                                make_entry(&key, &p.value, p.mod_revision).map(Arc::new)
                            })
                        }) else {
                            continue;
                        };
                        // The DELETED event carries the last state at the delete's revision.
                        let Some(entry) = restamped(&key, &last_state, rev).map(Arc::new) else {
                            continue;
                        };
                        Event {
                            rev,
                            kind: EventType::Deleted,
                            entry,
                            prev,
                            at: std::time::Instant::now(),
                        }
                    }
                };
                let event = Arc::new(event);
                st.push_event(event.clone(), EVENT_WINDOW, EVENT_WINDOW_BYTES);
                out.push(event);
            }
            if last > st.rev {
                st.rev = last;
            }
        }
        for e in out {
            let _ = self.updates.send(Update::Event(e));
        }
        if last > 0 {
            self.rev_tx.send_replace(last);
        }
    }

    fn progress(&self, rev: i64) {
        {
            let mut st = self.state.write().expect("cache lock");
            if rev <= st.rev {
                return;
            }
            st.rev = rev;
        }
        let _ = self.updates.send(Update::Progress(rev));
        self.rev_tx.send_replace(rev);
    }

    /// The revision the cache reflects.
    pub fn revision(&self) -> i64 {
        self.state.read().expect("cache lock").rev
    }

    /// Wait until the cache reflects at least `rev`; false on timeout.
    pub async fn wait_for(&self, rev: i64, timeout: Duration) -> bool {
        let mut rx = self.rev_tx.subscribe();
        let ok = matches!(
            tokio::time::timeout(timeout, rx.wait_for(|r| *r >= rev)).await,
            Ok(Ok(_))
        );
        ok
    }

    /// Wait until the cache reflects every write acknowledged so far.
    pub async fn sync(&self) -> bool {
        match self.store.current_revision().await {
            Ok(cur) => self.wait_for(cur, Duration::from_secs(5)).await,
            Err(_) => false,
        }
    }

    /// One object.
    pub fn get(&self, key: &str) -> Option<Arc<Entry>> {
        self.state
            .read()
            .expect("cache lock")
            .objects
            .get(key)
            .cloned()
    }

    /// Every object under `prefix`, in key order, and the revision they reflect.
    pub fn list(&self, prefix: &str) -> (Vec<Arc<Entry>>, i64) {
        let st = self.state.read().expect("cache lock");
        let end = store::prefix_end(prefix.as_bytes());
        let end = String::from_utf8_lossy(&end).into_owned();
        let items = st
            .objects
            .range::<str, _>((Bound::Included(prefix), Bound::Excluded(end.as_str())))
            .map(|(_, e)| e.clone())
            .collect();
        (items, st.rev)
    }

    /// Subscribe to live updates, and get the events after `from` that the
    /// window still holds. `None` if the window does not reach back that far.
    pub fn subscribe_from(
        &self,
        from: i64,
    ) -> Option<(Vec<Arc<Event>>, broadcast::Receiver<Update>, i64)> {
        let st = self.state.read().expect("cache lock");
        if from < st.window_start {
            return None;
        }
        let rx = self.updates.subscribe();
        let past = st.events.iter().filter(|e| e.rev > from).cloned().collect();
        Some((past, rx, st.rev))
    }

    /// The store behind the cache.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}

/// Follow the store from `rev`; on any failure, relist and start over.
async fn follow(cache: std::sync::Weak<WatchCache>, mut rev: i64) {
    loop {
        let Some(c) = cache.upgrade() else { return };
        let req = WatchRequest {
            range: KeyRange::prefix(REGISTRY_PREFIX),
            start_revision: rev + 1,
            progress_notify: true,
        };
        let mut stream = match c.store.watch(req).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "watch cache: store watch failed; retrying");
                drop(c);
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        drop(c);
        loop {
            let item = stream.next().await;
            let Some(c) = cache.upgrade() else { return };
            match item {
                Some(Ok(WatchResponse::Events(evs))) => {
                    if let Some(last) = evs.last() {
                        rev = last.kv.mod_revision;
                    }
                    c.apply(evs);
                }
                Some(Ok(WatchResponse::Progress { revision })) => {
                    rev = rev.max(revision);
                    c.progress(revision);
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "watch cache: store watch ended; relisting");
                    match c.relist().await {
                        Ok(r) => rev = r,
                        Err(e) => {
                            tracing::warn!(error = %e, "watch cache: relist failed");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                    break;
                }
                None => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn prepared(key: &str, image: &str) -> Arc<Prepared> {
        let info = resource_of_key(key).unwrap();
        let obj = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default", "uid": "u"},
            "spec": {"containers": [{"name": "c", "image": image}]},
        });
        Arc::new(Prepared::new(info, key, &obj).unwrap())
    }

    /// The client and the cache's entry share one served copy; another
    /// revision gets its own.
    #[test]
    fn the_served_copy_is_built_once_per_revision() {
        let p = prepared("/registry/core/pods/default/p", "i");
        let answer = p.stamp(7);
        let entry = p.entry(7);
        assert_eq!(answer, entry.raw);
        assert_eq!(answer.as_ptr(), entry.raw.as_ptr(), "one copy");
        let v: Value = serde_json::from_slice(&entry.raw).unwrap();
        assert_eq!(v["metadata"]["resourceVersion"], "7");
        let other = p.stamp(8);
        let v: Value = serde_json::from_slice(&other).unwrap();
        assert_eq!(v["metadata"]["resourceVersion"], "8");
        assert_eq!(&entry.raw[entry.rv_span.unwrap()], b"7");
    }

    /// The window keeps the newest events within both its count and its
    /// bytes, and starts after the last one it dropped.
    #[test]
    fn the_event_window_is_bounded_by_count_and_by_bytes() {
        let mut st = State {
            objects: BTreeMap::new(),
            events: VecDeque::new(),
            rev: 0,
            window_start: 0,
            window_bytes: 0,
        };
        let key = "/registry/core/pods/default/p";
        let small = prepared(key, "i");
        let big = prepared(key, &"x".repeat(4000));
        let event = |p: &Arc<Prepared>, rev| {
            Arc::new(Event {
                rev,
                kind: EventType::Modified,
                entry: Arc::new(p.entry(rev)),
                prev: None,
                at: std::time::Instant::now(),
            })
        };
        let small_bytes = event_bytes(&event(&small, 1));
        let big_bytes = event_bytes(&event(&big, 1));
        assert!(big_bytes > 4000);
        // By count: 5 events, at most 3 kept.
        for rev in 1..=5 {
            st.push_event(event(&small, rev), 3, usize::MAX);
        }
        let revs = |st: &State| st.events.iter().map(|e| e.rev).collect::<Vec<_>>();
        assert_eq!(revs(&st), [3, 4, 5]);
        assert_eq!((st.window_start, st.window_bytes), (2, 3 * small_bytes));
        // By bytes: a big event pushes out as many old ones as it must.
        let max = 3 * small_bytes + big_bytes - 1;
        st.push_event(event(&big, 6), 100, max);
        assert_eq!(revs(&st), [4, 5, 6]);
        assert_eq!(st.window_start, 3);
        assert_eq!(st.window_bytes, 2 * small_bytes + big_bytes);
        // One event bigger than the bound leaves the window empty, after it.
        st.push_event(event(&big, 7), 100, big_bytes - 1);
        assert!(st.events.is_empty());
        assert_eq!((st.window_start, st.window_bytes), (7, 0));
    }

    fn queued(c: &WatchCache, key: &str) -> usize {
        c.hints.lock().unwrap().get(key).map_or(0, VecDeque::len)
    }

    /// Pipelined writes of one key are expected in order, and each event
    /// that comes back takes its own hint (and drops the ones before it,
    /// whose writes will not come back); a failed write's hint is withdrawn.
    #[tokio::test]
    async fn each_write_in_flight_of_a_key_keeps_its_hint() {
        let dir = tempfile::tempdir().unwrap();
        let store = store::SqliteStore::open(dir.path().join("db"), Default::default())
            .await
            .unwrap();
        let c = WatchCache::start(Arc::new(store)).await.unwrap();
        let key = "/registry/core/pods/default/p";
        let (a, b, x, d) = (
            prepared(key, "a"),
            prepared(key, "b"),
            prepared(key, "x"),
            prepared(key, "d"),
        );
        for p in [&a, &b, &x, &d] {
            c.expect(p.clone());
        }
        assert_eq!(queued(&c, key), 4);
        c.unexpect(&x);
        assert_eq!(queued(&c, key), 3);
        // Bytes nobody expected (a write elsewhere) leave the hints alone.
        let other = prepared(key, "elsewhere").stored();
        assert!(c.put_entry(key, &other, 5).is_some());
        assert_eq!(queued(&c, key), 3);
        // `a` comes back, as a copy of its bytes (the etcd store decodes
        // them from the wire): its hint is used.
        let copy = Bytes::copy_from_slice(&a.stored());
        assert_ne!(copy.as_ptr(), a.stored().as_ptr());
        let e = c.put_entry(key, &copy, 6).unwrap();
        assert_eq!((e.rev, queued(&c, key)), (6, 2));
        // `d` comes back (b's write was lost): b's hint goes too.
        let e = c.put_entry(key, &d.stored(), 7).unwrap();
        assert_eq!(e.rev, 7);
        assert!(c.hints.lock().unwrap().get(key).is_none());
        // The entry from a hint is the one decoding would give.
        let decoded = make_entry(key, &d.stored(), 7).unwrap();
        assert_eq!(e.raw, decoded.raw);
    }
}
