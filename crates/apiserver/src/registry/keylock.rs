//! Per-key serialization of this server's read-modify-write cycles.
//!
//! Updates and patches without a resourceVersion read the object, change it
//! and compare-and-swap, retrying when another write got in first. When many
//! clients patch one object at once, most of those cycles would be wasted on
//! retries; queueing them per key makes each one succeed on its first try.
//! The compare-and-swap still guards against writers elsewhere (other
//! servers sharing the store, and creates and deletes, which do not queue).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::OwnedMutexGuard;

type KeyMutex = tokio::sync::Mutex<()>;

/// The locks of the keys being written, dropped when nobody holds them.
#[derive(Default)]
pub struct KeyLocks {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    locks: HashMap<String, Weak<KeyMutex>>,
    /// Sweep dead entries once the map reaches this size.
    sweep_at: usize,
}

impl KeyLocks {
    /// Wait for the turn of `key`; the turn ends when the guard drops.
    pub async fn lock(&self, key: &str) -> OwnedMutexGuard<()> {
        let m = {
            let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            match inner.locks.get(key).and_then(Weak::upgrade) {
                Some(m) => m,
                None => {
                    let m = Arc::new(KeyMutex::new(()));
                    inner.locks.insert(key.to_string(), Arc::downgrade(&m));
                    if inner.locks.len() >= inner.sweep_at {
                        inner.locks.retain(|_, w| w.strong_count() > 0);
                        inner.sweep_at = (inner.locks.len() * 2).max(64);
                    }
                    m
                }
            }
        };
        m.lock_owned().await
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .locks
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_writer_per_key_at_a_time_and_other_keys_are_free() {
        let locks = Arc::new(KeyLocks::default());
        let g = locks.lock("a").await;
        let l2 = locks.clone();
        let waiting = tokio::spawn(async move { l2.lock("a").await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "a second writer of one key waits");
        let _b = tokio::time::timeout(Duration::from_secs(1), locks.lock("b"))
            .await
            .expect("another key is not blocked");
        drop(g);
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("the waiter gets its turn")
            .unwrap();
    }

    #[tokio::test]
    async fn released_keys_are_forgotten() {
        let locks = KeyLocks::default();
        for i in 0..1000 {
            drop(locks.lock(&format!("k{i}")).await);
        }
        assert!(locks.tracked() < 200, "{} entries kept", locks.tracked());
    }
}
