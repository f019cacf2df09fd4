//! A work queue with client-go's guarantees: an item is queued at most once,
//! never handed to two workers at once (an item added while it is being
//! processed is queued again when that processing is done), and retried
//! with a per-item exponential backoff.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

/// The retry delay after `n` consecutive failures: client-go's per-item
/// exponential limiter, 5 ms doubling up to 1000 s.
pub fn backoff(n: u32) -> Duration {
    let ms = 5u64.saturating_mul(1u64 << n.min(30));
    Duration::from_millis(ms).min(Duration::from_secs(1000))
}

struct Inner<T> {
    queue: VecDeque<T>,
    queued: HashSet<T>,
    processing: HashSet<T>,
    /// Added while processing: queued again by `done`.
    dirty: HashSet<T>,
    failures: HashMap<T, u32>,
}

/// A deduplicating, rate-limited work queue.
pub struct Queue<T> {
    inner: Mutex<Inner<T>>,
    notify: Notify,
}

impl<T: Clone + Eq + Hash + Send + 'static> Default for Queue<T> {
    fn default() -> Self {
        Queue {
            inner: Mutex::new(Inner {
                queue: VecDeque::new(),
                queued: HashSet::new(),
                processing: HashSet::new(),
                dirty: HashSet::new(),
                failures: HashMap::new(),
            }),
            notify: Notify::new(),
        }
    }
}

impl<T: Clone + Eq + Hash + Send + 'static> Queue<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<T>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queue `item` unless it is queued already.
    pub fn add(&self, item: T) {
        let mut q = self.lock();
        if q.processing.contains(&item) {
            q.dirty.insert(item);
            return;
        }
        if q.queued.insert(item.clone()) {
            q.queue.push_back(item);
            drop(q);
            self.notify.notify_one();
        }
    }

    /// Queue `item` after `delay`.
    pub fn add_after(self: &Arc<Self>, item: T, delay: Duration) {
        if delay.is_zero() {
            self.add(item);
            return;
        }
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(q) = me.upgrade() {
                q.add(item);
            }
        });
    }

    /// Queue `item` again after its next backoff delay.
    pub fn add_rate_limited(self: &Arc<Self>, item: T) {
        let n = {
            let mut q = self.lock();
            let n = q.failures.entry(item.clone()).or_default();
            *n += 1;
            *n - 1
        };
        self.add_after(item, backoff(n));
    }

    /// Reset `item`'s backoff.
    pub fn forget(&self, item: &T) {
        self.lock().failures.remove(item);
    }

    /// How many times `item` was retried since it last succeeded.
    pub fn retries(&self, item: &T) -> u32 {
        self.lock().failures.get(item).copied().unwrap_or(0)
    }

    fn try_pop(&self) -> Option<T> {
        let mut q = self.lock();
        let item = q.queue.pop_front()?;
        q.queued.remove(&item);
        q.processing.insert(item.clone());
        Some(item)
    }

    /// The next item; the caller must call [`Queue::done`] with it.
    pub async fn get(&self) -> T {
        loop {
            // Registered before looking, so an add in between wakes us.
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(item) = self.try_pop() {
                return item;
            }
            notified.await;
        }
    }

    /// Processing of `item` is over.
    pub fn done(&self, item: &T) {
        let again = {
            let mut q = self.lock();
            q.processing.remove(item);
            q.dirty.remove(item)
        };
        if again {
            self.add(item.clone());
        }
    }

    /// Items queued and not yet taken.
    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    /// Whether no item waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_5ms_to_1000s() {
        assert_eq!(backoff(0), Duration::from_millis(5));
        assert_eq!(backoff(3), Duration::from_millis(40));
        assert_eq!(backoff(60), Duration::from_secs(1000));
    }

    #[tokio::test]
    async fn items_are_deduplicated_and_fifo() {
        let q: Queue<&str> = Queue::default();
        q.add("a");
        q.add("b");
        q.add("a");
        assert_eq!(q.len(), 2);
        assert_eq!(q.get().await, "a");
        assert_eq!(q.get().await, "b");
        assert!(q.is_empty());
    }

    #[tokio::test]
    async fn an_item_added_while_processing_comes_back_after_done() {
        let q: Queue<&str> = Queue::default();
        q.add("a");
        let a = q.get().await;
        q.add("a");
        // Not handed out again while the first worker holds it.
        assert!(q.is_empty());
        q.done(&a);
        assert_eq!(q.len(), 1);
        assert_eq!(q.get().await, "a");
        q.done(&"a");
        assert!(q.is_empty());
    }

    #[tokio::test]
    async fn a_waiting_worker_is_woken_by_add() {
        let q: Arc<Queue<u32>> = Arc::new(Queue::default());
        let w = {
            let q = q.clone();
            tokio::spawn(async move { q.get().await })
        };
        tokio::task::yield_now().await;
        q.add(7);
        assert_eq!(w.await.unwrap(), 7);
    }

    #[tokio::test]
    async fn rate_limited_adds_back_off_until_forgotten() {
        let q: Arc<Queue<u32>> = Arc::new(Queue::default());
        q.add_rate_limited(1);
        q.add_rate_limited(1);
        assert_eq!(q.retries(&1), 2);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(q.get().await, 1);
        q.done(&1);
        q.forget(&1);
        assert_eq!(q.retries(&1), 0);
    }
}
