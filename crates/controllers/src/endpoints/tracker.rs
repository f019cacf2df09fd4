//! What the slice controller expects of its slices (upstream's
//! EndpointSliceTracker): the generation of each slice it wrote, and the
//! slices it deleted. The cache runs behind the writes; a sync that would
//! plan from an older view than its own writes must wait (a slice created
//! twice cannot be undone by a conflict, as an update can).

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::SERVICE_NAME_LABEL;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Generation(i64),
    Deletion,
}

/// Expectations per service key, per slice UID.
#[derive(Default)]
pub struct Tracker {
    by_service: Mutex<HashMap<String, HashMap<String, Expect>>>,
}

/// The key (`namespace/name`) of the service `slice` belongs to.
pub fn service_key(slice: &EndpointSlice) -> Option<String> {
    let name = slice.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL)?;
    let ns = slice.metadata.namespace.as_deref().unwrap_or("");
    (!name.is_empty()).then(|| format!("{ns}/{name}"))
}

fn uid(slice: &EndpointSlice) -> String {
    slice.metadata.uid.clone().unwrap_or_default()
}

fn generation(slice: &EndpointSlice) -> i64 {
    slice.metadata.generation.unwrap_or(0)
}

impl Tracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<String, Expect>>> {
        self.by_service.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remember a slice as written (the server's answer to a create or update).
    pub fn written(&self, slice: &EndpointSlice) {
        if let Some(key) = service_key(slice) {
            self.lock()
                .entry(key)
                .or_default()
                .insert(uid(slice), Expect::Generation(generation(slice)));
        }
    }

    /// Remember a slice as deleted.
    pub fn expect_deletion(&self, slice: &EndpointSlice) {
        if let Some(key) = service_key(slice) {
            self.lock()
                .entry(key)
                .or_default()
                .insert(uid(slice), Expect::Deletion);
        }
    }

    /// Whether a slice event needs its service synced: a slice we do not
    /// know, or one changed since we wrote it.
    pub fn should_sync(&self, slice: &EndpointSlice) -> bool {
        let Some(key) = service_key(slice) else {
            return false;
        };
        match self.lock().get(&key).and_then(|m| m.get(&uid(slice))) {
            Some(Expect::Generation(g)) => generation(slice) > *g,
            Some(Expect::Deletion) | None => true,
        }
    }

    /// A slice was deleted: forget it. Returns whether the service needs a
    /// sync, i.e. we knew the slice and did not delete it ourselves.
    pub fn deleted(&self, slice: &EndpointSlice) -> bool {
        let Some(key) = service_key(slice) else {
            return false;
        };
        let mut all = self.lock();
        let Some(m) = all.get_mut(&key) else {
            return false;
        };
        let was = m.remove(&uid(slice));
        if m.is_empty() {
            all.remove(&key);
        }
        matches!(was, Some(Expect::Generation(_)))
    }

    /// Whether `cached` (the cache's slices of service `key`) is older than
    /// our own writes: a slice at an older generation than we wrote, one we
    /// deleted still there, or one we wrote missing. Deletions the cache
    /// shows done are forgotten.
    pub fn stale(&self, key: &str, cached: &[std::sync::Arc<EndpointSlice>]) -> bool {
        let mut all = self.lock();
        let Some(m) = all.get_mut(key) else {
            return false;
        };
        let present: HashMap<String, i64> =
            cached.iter().map(|s| (uid(s), generation(s))).collect();
        m.retain(|u, e| *e != Expect::Deletion || present.contains_key(u));
        let stale = m.iter().any(|(u, e)| match (e, present.get(u)) {
            (Expect::Deletion, _) => true,
            (Expect::Generation(_), None) => true,
            (Expect::Generation(g), Some(have)) => have < g,
        });
        if m.is_empty() {
            all.remove(key);
        }
        stale
    }

    /// Forget a deleted service.
    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    fn slice(uid: &str, generation: i64) -> Arc<EndpointSlice> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": { "name": uid, "namespace": "n", "uid": uid, "generation": generation,
                              "labels": { SERVICE_NAME_LABEL: "web" } },
                "addressType": "IPv4", "endpoints": [],
            }))
            .unwrap(),
        )
    }

    #[test]
    fn the_cache_is_stale_until_it_shows_our_writes() {
        let t = Tracker::default();
        assert!(!t.stale("n/web", &[]));
        t.written(&slice("a", 2));
        // Created but not cached yet; then cached at an older generation.
        assert!(t.stale("n/web", &[]));
        assert!(t.stale("n/web", &[slice("a", 1)]));
        assert!(!t.stale("n/web", &[slice("a", 2)]));
        // Deleted but still cached.
        t.expect_deletion(&slice("a", 2));
        assert!(t.stale("n/web", &[slice("a", 2)]));
        assert!(!t.stale("n/web", &[]));
        // Seen gone, the deletion is forgotten.
        assert!(t.lock().is_empty());
    }

    #[test]
    fn only_foreign_changes_and_deletions_trigger_a_sync() {
        let t = Tracker::default();
        assert!(t.should_sync(&slice("a", 1)));
        t.written(&slice("a", 3));
        assert!(!t.should_sync(&slice("a", 3)));
        assert!(t.should_sync(&slice("a", 4)));
        // Someone else deleted it: sync; we deleted it: no sync.
        assert!(t.deleted(&slice("a", 3)));
        t.written(&slice("b", 1));
        t.expect_deletion(&slice("b", 1));
        assert!(!t.deleted(&slice("b", 1)));
        assert!(!t.deleted(&slice("c", 1)));
    }
}
