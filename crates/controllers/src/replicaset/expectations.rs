//! Expectations, as upstream's `UIDTrackingControllerExpectations`: after
//! creating or deleting pods, an owner records how many pod creations and
//! which pod deletions it expects to see in the pod informer, and does not
//! manage its replicas again until it has seen them all (or five minutes
//! passed). The informer's cache lags behind the API server, so without
//! this an owner would count its fresh pods as missing and create them a
//! second time.
//!
//! Entries are keyed by the owner's UID (not its name), so a deleted and
//! recreated owner starts clean, and a pod's controllerRef is enough to
//! find the entry without resolving the owner.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long expectations hold before the owner syncs regardless.
pub const TTL: Duration = Duration::from_secs(5 * 60);

/// How often fulfilled or expired entries are dropped.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Entry {
    add: i64,
    del: i64,
    /// The keys (`namespace/name`) of pods whose deletion is expected; each
    /// lowers `del` once, whether seen as a deletion timestamp or a delete.
    deleting: HashSet<String>,
    set_at: Instant,
}

impl Entry {
    fn fulfilled(&self) -> bool {
        self.add <= 0 && self.del <= 0
    }

    fn expired(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.set_at) > TTL
    }
}

#[derive(Debug)]
struct Inner {
    entries: HashMap<String, Entry>,
    pruned_at: Instant,
}

/// The expectations of every owner of one kind.
#[derive(Debug)]
pub struct Expectations {
    inner: Mutex<Inner>,
}

impl Default for Expectations {
    fn default() -> Self {
        Expectations {
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                pruned_at: Instant::now(),
            }),
        }
    }
}

impl Expectations {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave an entry half-written: every
        // mutation is a single assignment.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the owner may manage its replicas: nothing is expected, all
    /// was seen, or the expectations expired.
    pub fn satisfied(&self, owner: &str) -> bool {
        self.satisfied_at(owner, Instant::now())
    }

    fn satisfied_at(&self, owner: &str, now: Instant) -> bool {
        self.lock()
            .entries
            .get(owner)
            .is_none_or(|e| e.fulfilled() || e.expired(now))
    }

    /// While unsatisfied, how long until the expectations expire.
    pub fn expires_in(&self, owner: &str) -> Option<Duration> {
        let now = Instant::now();
        let g = self.lock();
        let e = g.entries.get(owner)?;
        if e.fulfilled() || e.expired(now) {
            return None;
        }
        Some(TTL.saturating_sub(now.saturating_duration_since(e.set_at)))
    }

    fn set(&self, owner: &str, add: i64, deleting: HashSet<String>, now: Instant) {
        let mut g = self.lock();
        if now.saturating_duration_since(g.pruned_at) > PRUNE_EVERY {
            // Dropping a fulfilled or expired entry changes no answer.
            g.entries.retain(|_, e| !(e.fulfilled() || e.expired(now)));
            g.pruned_at = now;
        }
        let del = deleting.len() as i64;
        g.entries.insert(
            owner.to_string(),
            Entry {
                add,
                del,
                deleting,
                set_at: now,
            },
        );
    }

    /// The owner is about to create `n` pods.
    pub fn expect_creations(&self, owner: &str, n: usize) {
        self.set(owner, n as i64, HashSet::new(), Instant::now());
    }

    /// The owner is about to delete these pods (`namespace/name` keys).
    pub fn expect_deletions(&self, owner: &str, keys: impl IntoIterator<Item = String>) {
        self.set(owner, 0, keys.into_iter().collect(), Instant::now());
    }

    /// A pod of the owner appeared (or a creation will never happen).
    pub fn creation_observed(&self, owner: &str) {
        if let Some(e) = self.lock().entries.get_mut(owner) {
            e.add -= 1;
        }
    }

    /// A pod of the owner is being deleted or is gone (or its deletion
    /// failed); counted once per expected key.
    pub fn deletion_observed(&self, owner: &str, key: &str) {
        if let Some(e) = self.lock().entries.get_mut(owner) {
            if e.deleting.remove(key) {
                e.del -= 1;
            }
        }
    }

    /// The owner is gone.
    pub fn forget(&self, owner: &str) {
        self.lock().entries.remove(owner);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_owners_are_satisfied() {
        let e = Expectations::default();
        assert!(e.satisfied("u"));
        assert_eq!(e.expires_in("u"), None);
        // Observations without expectations are ignored.
        e.creation_observed("u");
        e.deletion_observed("u", "ns/p");
        assert!(e.satisfied("u"));
        assert_eq!(e.len(), 0);
    }

    #[test]
    fn creations_must_all_be_seen() {
        let e = Expectations::default();
        e.expect_creations("u", 3);
        assert!(!e.satisfied("u"));
        let left = e.expires_in("u").unwrap();
        assert!(left <= TTL && left > TTL - Duration::from_secs(5));
        e.creation_observed("u");
        e.creation_observed("u");
        assert!(!e.satisfied("u"));
        e.creation_observed("u");
        assert!(e.satisfied("u"));
        // Other owners are independent.
        e.expect_creations("v", 1);
        assert!(e.satisfied("u") && !e.satisfied("v"));
    }

    #[test]
    fn deletions_count_each_expected_pod_once() {
        let e = Expectations::default();
        e.expect_deletions("u", ["ns/a".to_string(), "ns/b".to_string()]);
        assert!(!e.satisfied("u"));
        // Seen first with a deletion timestamp, then as deleted: once.
        e.deletion_observed("u", "ns/a");
        e.deletion_observed("u", "ns/a");
        // A pod we did not delete does not count.
        e.deletion_observed("u", "ns/c");
        assert!(!e.satisfied("u"));
        e.deletion_observed("u", "ns/b");
        assert!(e.satisfied("u"));
    }

    #[test]
    fn expectations_expire_and_can_be_forgotten() {
        let e = Expectations::default();
        e.expect_creations("u", 2);
        let later = Instant::now() + TTL + Duration::from_secs(1);
        assert!(!e.satisfied_at("u", Instant::now()));
        assert!(e.satisfied_at("u", later));
        e.forget("u");
        assert!(e.satisfied("u"));
    }

    #[test]
    fn fulfilled_and_expired_entries_are_pruned() {
        let e = Expectations::default();
        let t0 = Instant::now();
        e.set("done", 1, HashSet::new(), t0);
        e.creation_observed("done");
        e.set("waiting", 1, HashSet::new(), t0);
        e.set("old", 1, HashSet::new(), t0);
        assert_eq!(e.len(), 3);
        // A minute later the fulfilled one goes; `waiting` is renewed.
        let t1 = t0 + PRUNE_EVERY + Duration::from_secs(1);
        e.set("waiting", 1, HashSet::new(), t1);
        assert_eq!(e.len(), 2);
        assert!(!e.satisfied_at("old", t1));
        // After the TTL the unrenewed one goes too.
        let t2 = t0 + TTL + Duration::from_secs(1);
        e.set("new", 1, HashSet::new(), t2);
        assert!(e.satisfied_at("old", t2));
        assert_eq!(e.len(), 2);
    }
}
