//! A work queue of service keys with client-go's guarantees: a key waits in
//! the queue at most once however often it is added, a key is never handed
//! to two workers at once (one added while being processed runs again
//! afterwards), and failed keys come back after a per-key exponential delay.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

/// The first retry delay; it doubles per consecutive failure.
const BASE_DELAY: Duration = Duration::from_millis(5);
/// Retries never wait longer than this.
const MAX_DELAY: Duration = Duration::from_secs(60);

#[derive(Default)]
struct State {
    queue: VecDeque<String>,
    /// Keys waiting to be processed (queued, or added while processing).
    dirty: HashSet<String>,
    processing: HashSet<String>,
    failures: HashMap<String, u32>,
    /// Keys waiting for the cache to show their last write.
    parked: HashSet<String>,
}

/// The queue; shared by an informer's handlers and a pool of workers.
#[derive(Default)]
pub struct Queue {
    state: Mutex<State>,
    notify: Notify,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ask for `key` to be processed.
    pub fn add(&self, key: &str) {
        let mut st = self.lock();
        if !st.dirty.insert(key.to_string()) {
            return;
        }
        if !st.processing.contains(key) {
            st.queue.push_back(key.to_string());
            drop(st);
            self.notify.notify_one();
        }
    }

    /// Add `key` once `delay` has passed.
    pub fn add_after(self: &Arc<Self>, key: String, delay: Duration) {
        let q = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            q.add(&key);
        });
    }

    /// The next key to process; call [`Queue::done`] when finished with it.
    pub async fn next(&self) -> String {
        loop {
            if let Some(key) = self.try_next() {
                return key;
            }
            self.notify.notified().await;
        }
    }

    fn try_next(&self) -> Option<String> {
        let mut st = self.lock();
        let key = st.queue.pop_front()?;
        st.dirty.remove(&key);
        st.processing.insert(key.clone());
        let more = !st.queue.is_empty();
        drop(st);
        // Pass the wake-up on, so an idle worker takes the next key.
        if more {
            self.notify.notify_one();
        }
        Some(key)
    }

    /// Processing of `key` finished; requeue it if it was added meanwhile.
    pub fn done(&self, key: &str) {
        let mut st = self.lock();
        st.processing.remove(key);
        if st.dirty.contains(key) {
            st.queue.push_back(key.to_string());
            drop(st);
            self.notify.notify_one();
        }
    }

    /// `key` failed: add it again after its backoff, which grows with each
    /// consecutive failure. Returns the delay.
    pub fn retry(self: &Arc<Self>, key: &str) -> Duration {
        let n = {
            let mut st = self.lock();
            let n = st.failures.entry(key.to_string()).or_insert(0);
            *n += 1;
            *n
        };
        let delay = backoff(n);
        self.add_after(key.to_string(), delay);
        delay
    }

    /// `key` found the cache behind its own last write: run it again when
    /// [`Queue::cache_moved`] says its objects changed, or after `fallback`.
    /// Not a failure: the backoff does not grow.
    pub fn park(self: &Arc<Self>, key: &str, fallback: Duration) {
        self.lock().parked.insert(key.to_string());
        self.add_after(key.to_string(), fallback);
    }

    /// An object of `key` changed in the cache: a parked key runs again.
    pub fn cache_moved(&self, key: &str) {
        let parked = self.lock().parked.remove(key);
        if parked {
            self.add(key);
        }
    }

    /// `key` succeeded: its next failure starts the backoff anew.
    pub fn forget(&self, key: &str) {
        self.lock().failures.remove(key);
    }
}

/// The delay before retry number `n` (1-based).
fn backoff(n: u32) -> Duration {
    let factor = 1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX);
    BASE_DELAY.saturating_mul(factor).min(MAX_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_is_queued_once_and_requeued_after_processing() {
        let q = Arc::new(Queue::default());
        q.add("a");
        q.add("b");
        q.add("a");
        assert_eq!(q.next().await, "a");
        // Added while being processed: not handed out until done.
        q.add("a");
        assert_eq!(q.next().await, "b");
        assert!(q.try_next().is_none());
        q.done("a");
        assert_eq!(q.next().await, "a");
        q.done("a");
        q.done("b");
        assert!(q.try_next().is_none());
    }

    #[tokio::test]
    async fn a_parked_key_runs_when_the_cache_moves() {
        let q = Arc::new(Queue::default());
        q.add("a");
        let k = q.next().await;
        q.park(&k, Duration::from_secs(3600));
        q.done(&k);
        q.cache_moved("b");
        assert!(q.try_next().is_none());
        q.cache_moved("a");
        assert_eq!(q.next().await, "a");
        q.done("a");
        // Woken once only.
        q.cache_moved("a");
        assert!(q.try_next().is_none());
        assert_eq!(q.retry("a"), Duration::from_millis(5));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(1), Duration::from_millis(5));
        assert_eq!(backoff(2), Duration::from_millis(10));
        assert_eq!(backoff(5), Duration::from_millis(80));
        assert_eq!(backoff(40), MAX_DELAY);
    }

    #[tokio::test]
    async fn a_failed_key_comes_back() {
        let q = Arc::new(Queue::default());
        q.add("a");
        let k = q.next().await;
        assert_eq!(q.retry(&k), Duration::from_millis(5));
        q.done(&k);
        let again = tokio::time::timeout(Duration::from_secs(2), q.next()).await;
        assert_eq!(again.unwrap(), "a");
        assert_eq!(q.retry("a"), Duration::from_millis(10));
        q.forget("a");
        assert_eq!(q.retry("a"), Duration::from_millis(5));
    }
}
