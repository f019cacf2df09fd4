//! A keyed work queue: the latest value per key, each key handled by one
//! worker at a time, so two updates of one pod never race.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

struct Inner<T> {
    latest: HashMap<String, T>,
    order: VecDeque<String>,
    active: HashSet<String>,
}

/// The queue; clones share it.
pub struct Keyed<T> {
    inner: Arc<Mutex<Inner<T>>>,
    ready: Arc<Notify>,
}

impl<T> Clone for Keyed<T> {
    fn clone(&self) -> Self {
        Keyed {
            inner: self.inner.clone(),
            ready: self.ready.clone(),
        }
    }
}

impl<T> Keyed<T> {
    /// An empty queue.
    pub fn new() -> Self {
        Keyed {
            inner: Arc::new(Mutex::new(Inner {
                latest: HashMap::new(),
                order: VecDeque::new(),
                active: HashSet::new(),
            })),
            ready: Arc::new(Notify::new()),
        }
    }

    /// Queue `value` for `key`, replacing a value not yet taken.
    pub fn push(&self, key: String, value: T) {
        let mut q = self.inner.lock().expect("queue lock");
        if q.latest.insert(key.clone(), value).is_none() {
            q.order.push_back(key);
        }
        drop(q);
        self.ready.notify_one();
    }

    /// The next key that no worker holds, with its latest value. The caller
    /// must call [`Keyed::done`] with the key when finished.
    pub async fn next(&self) -> Option<(String, T)> {
        loop {
            let notified = self.ready.notified();
            {
                let mut q = self.inner.lock().expect("queue lock");
                let q = &mut *q;
                if let Some(pos) = q.order.iter().position(|k| !q.active.contains(k)) {
                    let key = q.order.remove(pos).expect("position is in range");
                    let value = q.latest.remove(&key).expect("queued keys have values");
                    q.active.insert(key.clone());
                    return Some((key, value));
                }
            }
            notified.await;
        }
    }

    /// A worker finished `key`; a value queued meanwhile becomes available.
    pub fn done(&self, key: &str) {
        let mut q = self.inner.lock().expect("queue lock");
        q.active.remove(key);
        let more = q.latest.contains_key(key);
        drop(q);
        if more {
            self.ready.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn latest_value_wins_and_keys_do_not_overlap() {
        let q = Keyed::new();
        q.push("a".into(), 1);
        q.push("a".into(), 2);
        q.push("b".into(), 3);
        let (k, v) = q.next().await.unwrap();
        assert_eq!((k.as_str(), v), ("a", 2));
        // "a" is held: a new value for it waits; "b" comes first.
        q.push("a".into(), 4);
        let (k, v) = q.next().await.unwrap();
        assert_eq!((k.as_str(), v), ("b", 3));
        let blocked = tokio::time::timeout(std::time::Duration::from_millis(50), q.next()).await;
        assert!(blocked.is_err(), "a held key must not be handed out");
        q.done("a");
        let (k, v) = q.next().await.unwrap();
        assert_eq!((k.as_str(), v), ("a", 4));
    }
}
