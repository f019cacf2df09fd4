//! Per-key serialization of this server's read-modify-write cycles.
//!
//! Updates and patches without a resourceVersion read the object, change it
//! and compare-and-swap, retrying when another write got in first. When many
//! clients patch one object at once, most of those cycles would be wasted on
//! retries; queueing them per key makes each one succeed on its first try.
//! The compare-and-swap still guards against writers elsewhere (other
//! servers sharing the store, and creates and deletes, which do not queue).
//!
//! A writer that hands the turn to a waiting one leaves it the object it
//! wrote ([`LastWrite`]), so the next writer need not decode the bytes it
//! just encoded. The turn passes as soon as the write is handed to the
//! store, before the store has even applied it: the next writer computes its
//! change while the store applies and syncs, and chains its write on the
//! previous one's ticket (waiting for it only then, or earlier if it needs
//! the resourceVersion), which holds only if that write commits. So a write from elsewhere in between,
//! or a failed commit, is never missed: the chained write fails and is
//! retried from a fresh read.
//!
//! A writer with nobody waiting keeps its object for a while ([`Kept`]), so
//! that the next write to the key, seconds later, starts from it instead of
//! reading and decoding the stored bytes, as upstream's GuaranteedUpdate
//! starts from the watch cache's copy. It is a guess, checked the same way:
//! the write is conditional on the kept write's revision, and a stale guess
//! costs one retry from a fresh read. The kept objects are bounded in count
//! and in encoded size.
//!
//! What a turn costs (late 2026, `wharf bench patch`, 32 clients on one
//! Deployment, release build, wall time per write from taking the turn to
//! handing it over, averages of 4,000 writes): for a strategic merge patch,
//! the merge 140-175 µs, preparing and defaulting 45-50, the managers of an
//! update 100-115, validation with the typed decode 65-70, encoding 40,
//! sending to the store 35; then 90-150 µs until the next writer runs.
//! For a server-side apply with 33 managers: the apply 310, validation 75,
//! encoding 80. One turn every ~0.5 ms is the rate (about 2,000/s), while
//! the machine (2 CPUs, the bench's client on it) still has ~0.5 CPU idle.
//! Tried without gain: handing the turn over before validation and encoding
//! (the next writer chaining on a write id still to come). The turn got
//! shorter (350-370 µs), but the woken writer waits in its worker's LIFO
//! slot until the previous one yields, so little ran in parallel and the
//! gap to it grew to ~265 µs: 610-640 µs per write against 490-650
//! before (branch `early-handover`); yielding right after the hand-over
//! made both slower.
//! Holding the store's transaction open shorter (0 or 0.5-1.5 ms instead
//! of 2-6 ms) changed nothing measurable then; measured again without HTTP
//! (`wharf bench patch --in-process`), 1 ms gave ~20 % more patches/s, and
//! it is the store's hold now.
//! Where a write's latency goes (the same in-process bench, SMP, per
//! write): waiting for the turn p50 3.7 / p99 9.7 ms, the turn 0.28 /
//! 0.78 ms, then waiting for the commit to be durable 6.1 / 20.9 ms. The
//! p99 is the store's sync: ~40 KB reach the disk per 8.5 KB object
//! written (WAL frames, then the checkpoint's copy), 80-90 MB/s while the
//! bench runs, and a sync behind a checkpoint's writes takes 20 ms and
//! more.
//! Where the time between turns goes (same bench, per 4,000 hand-overs
//! with a writer waiting): ~88 % take under 20 µs, but ~2 % take over
//! 1 ms (about 4 ms each, an OS time slice), and those make most of the
//! gap: about 10 % of the time, the key's queue waits while the next
//! writer is runnable. A turn's own length depends on the server's worker
//! threads (`TOKIO_WORKER_THREADS`), that is, on the OS sharing 2 CPUs:
//! 285-310 µs with one worker, 415-430 with two (the default here), 525-590
//! with four; with one worker the gaps grow instead (the next writer queues
//! behind every connection's work). So the turn is bound by how much CPU
//! its thread gets, not only by its own work. Running every patch on a
//! thread of its own (a current-thread runtime; an experiment, not kept)
//! gained nothing: 1,830-2,000/s on one Deployment against 1,925-2,380/s
//! without, and 2,085-2,144/s with that thread at nice -10.
//! Where a write's CPU goes besides its own work (perf with call graphs,
//! in process, both phases, late 2026): dropping the previous writer's
//! object when the last reference to it goes, ~11 % of the samples, a
//! third of that in mimalloc's free of blocks another thread allocated (the
//! object was built on the other worker), and the deep copy of the stored
//! object that a strategic merge starts from, ~9 %, much of it cache misses
//! on the allocator's free lists. An update needs the old object whole
//! beside the new one (validation, managedFields, generation), so both
//! stay as long as objects are `serde_json::Value` trees.
//! The same bench on tmpfs (no disk wait) needs less CPU per patch than on
//! disk (about 500 against 600 µs), and perf puts the difference in the
//! allocator (`_mi_page_malloc_zero`, `_mi_page_free_collect`): while writes
//! wait for the disk, each kept the tree it replaced, so more trees were
//! alive and their memory was colder when reused. A writer now frees the
//! replaced tree once the turn is handed on, not once it is durable: 4-6 %
//! less CPU in two perf-sampled pairs, and in 6 alternated runs median CPU
//! per patch SMP 511 µs against 550, SSA 584 against 596 (noise ±10 %).
//! Nor does the writer keep its new tree for its answer while it waits:
//! where the answer is the object's encoding (built-in kinds), the tree is
//! dropped once handed on ([`super::Written::Encoded`]), and lives only as
//! long as the next writer needs it. 4-8 % fewer perf samples in 3 pairs;
//! over HTTPS, 4 alternated runs, SMP median 2,566/s and p99 23.9 ms
//! against 2,370/s and 28.1 ms, SSA 2,412/s and 24.5 ms against 2,326/s and
//! 23.8 ms. Both changes together against neither (5 alternated in-process
//! runs, `perf stat -e task-clock` of the whole bench): median 7.64 s of
//! CPU against 8.33 s (lower in 4 of 5 pairs); CPU per patch SMP 448 µs
//! against 491, SSA 486 against 501.
//! Tried and not kept: writing each copy over the tree this thread freed
//! last (reusing its maps and strings instead of allocating): callgrind
//! counted 1 % fewer instructions and the alternated medians did not move
//! (SMP 593 µs against 567), since the copy still touches every node.
//! The managers of an update were the largest part of a strategic merge
//! patch's turn: the comparison of the old and new objects compared each
//! object for equality before walking it, so the part of it before a
//! change was compared again at every level above. It now walks each
//! object once and pairs the items of keyed lists by position
//! (`apply::typed::compare`), and a patch that does not name
//! managedFields does not compare them. Callgrind, in-process SMP phase
//! (2,000 patches and the set-up): 2.42 G instructions against 2.14 G,
//! the comparison 384 M against 171 M. In process, 4 alternated pairs
//! (with the list-order change of the same day): SMP 6,545-6,630
//! patches/s against 5,385-5,765, 199-205 µs of CPU per patch against
//! 225-241; SSA 229-240 µs against 231-248. That hour the machine ran
//! twice as fast as an hour before (the same build used 450-500 µs per
//! patch then): compare builds only within one run of alternated pairs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use serde_json::Value;
use tokio::sync::OwnedMutexGuard;

/// The ticket of a handed-over write: known, or still to come from the
/// store (`None`: the write was not applied).
pub enum TicketSlot {
    Known(Option<store::Ticket>),
    Pending(tokio::sync::oneshot::Receiver<Option<store::Ticket>>),
}

/// An object this server is writing to the key, as a read of it at the
/// write's revision would decode it (its `resourceVersion` may be missing
/// while the revision is not known yet).
pub struct LastWrite {
    /// The write's ticket: its revision, if it commits.
    pub ticket: TicketSlot,
    /// The write's id in the store, if it gives one: the next write names
    /// it ([`store::Precondition::After`]) instead of waiting for the ticket.
    pub chain: Option<Chained>,
    /// The object, shared with the writer that left it (which answers
    /// with it once the write commits).
    pub object: Arc<Value>,
    /// `object`'s `metadata.managedFields`, where an apply kept them out of
    /// it: their JSON, as stored (`managed` then holds them decoded).
    pub managed_fields: Option<bytes::Bytes>,
    /// Its managedFields decoded, where the writer had them at hand.
    pub managed: Option<crate::apply::managed::Managed>,
    /// Whether the write committed, told once it is durable; `None` if it
    /// was durable when handed over.
    pub durable: Option<tokio::sync::oneshot::Receiver<bool>>,
}

/// A write named by its id, and the line of writes it belongs to: writes
/// that chained on one another by id since the last read of the key.
pub struct Chained {
    pub id: store::WriteId,
    pub line: Line,
}

/// Writes chained by id are sent before the write they name is known to
/// have been applied. Once one of them was not, every later one fails too;
/// its writer breaks the line, so the next writer reads the key again
/// instead of building on a write that cannot commit.
#[derive(Clone, Default)]
pub struct Line(Arc<AtomicBool>);

impl Line {
    pub fn break_off(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn broken(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

impl LastWrite {
    /// Whether the write is in a broken line: it will not commit.
    pub fn doomed(&self) -> bool {
        self.chain.as_ref().is_some_and(|c| c.line.broken())
    }

    /// The write's ticket, once the store applied it; `None` if it was not
    /// applied (its precondition or its transaction failed).
    pub async fn ticket(&mut self) -> Option<store::Ticket> {
        if let TicketSlot::Pending(rx) = &mut self.ticket {
            let t = rx.await.ok().flatten();
            self.ticket = TicketSlot::Known(t);
        }
        match self.ticket {
            TicketSlot::Known(t) => t,
            TicketSlot::Pending(_) => None,
        }
    }

    /// Wait until the write is durable; false if it failed (or its writer
    /// went away before knowing), in which case the object is not to be
    /// served or built on.
    pub async fn committed(&mut self) -> bool {
        match self.durable.take() {
            None => true,
            Some(rx) => rx.await.unwrap_or(false),
        }
    }
}

type KeyMutex = tokio::sync::Mutex<Option<LastWrite>>;

/// The turn of one key: the previous writer's object, if it left one.
pub type Turn = OwnedMutexGuard<Option<LastWrite>>;

/// Whether another writer of the key is waiting for (or about to take) the
/// turn: only then is leaving it the object worth a copy.
pub fn has_waiters(turn: &Turn) -> bool {
    Arc::strong_count(OwnedMutexGuard::mutex(turn)) > 1
}

/// The locks of the keys being written, dropped when nobody holds them.
#[derive(Default)]
pub struct KeyLocks {
    inner: Mutex<Inner>,
    kept: Mutex<Kept>,
}

/// At most this many objects are kept after their writes ...
pub const KEPT_OBJECTS: usize = 128;
/// ... of at most this many encoded bytes in all; a bigger object is not
/// kept at all.
pub const KEPT_BYTES: usize = 1 << 20;

/// The last writes of keys nobody was waiting for, newest kept longest.
#[derive(Default)]
pub struct Kept {
    writes: HashMap<String, KeptWrite>,
    bytes: usize,
    seq: u64,
}

struct KeptWrite {
    last: LastWrite,
    /// Its encoded size, counted against [`KEPT_BYTES`].
    size: usize,
    /// When it was kept: the lowest goes first.
    seq: u64,
}

#[derive(Default)]
struct Inner {
    locks: HashMap<String, Weak<KeyMutex>>,
    /// Sweep dead entries once the map reaches this size.
    sweep_at: usize,
}

impl KeyLocks {
    /// Wait for the turn of `key`; the turn ends when the guard drops.
    pub async fn lock(&self, key: &str) -> Turn {
        let m = {
            let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            match inner.locks.get(key).and_then(Weak::upgrade) {
                Some(m) => m,
                None => {
                    let m = Arc::new(KeyMutex::new(None));
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

    /// Keep the last write of `key` (its `size` encoded bytes) for the next
    /// writer, in place of the one kept before. Call it holding the key's
    /// turn, so that what is kept is the newest write this server made.
    pub fn keep(&self, key: &str, last: LastWrite, size: usize) {
        let mut evicted = Vec::new();
        {
            let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
            let k = &mut *kept;
            if let Some(old) = k.writes.remove(key) {
                k.bytes -= old.size;
                evicted.push(old.last);
            }
            if size > KEPT_BYTES / 4 {
                return;
            }
            k.seq += 1;
            let seq = k.seq;
            k.writes
                .insert(key.to_string(), KeptWrite { last, size, seq });
            k.bytes += size;
            while k.writes.len() > KEPT_OBJECTS || k.bytes > KEPT_BYTES {
                let Some(oldest) = k
                    .writes
                    .iter()
                    .min_by_key(|(_, w)| w.seq)
                    .map(|(key, _)| key.clone())
                else {
                    break;
                };
                if let Some(w) = k.writes.remove(&oldest) {
                    k.bytes -= w.size;
                    evicted.push(w.last);
                }
            }
        }
        // Objects are freed outside the lock.
        drop(evicted);
    }

    /// The kept last write of `key`, taken: call it holding the key's turn.
    pub fn take_kept(&self, key: &str) -> Option<LastWrite> {
        let w = {
            let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
            let w = kept.writes.remove(key)?;
            kept.bytes -= w.size;
            w
        };
        Some(w.last)
    }

    /// Drop the kept write of `key`, if any (it was deleted).
    pub fn forget(&self, key: &str) {
        drop(self.take_kept(key));
    }

    #[cfg(test)]
    pub(crate) fn kept_count(&self) -> (usize, usize) {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        (kept.writes.len(), kept.bytes)
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
    async fn the_turn_passes_the_last_write_to_a_waiter() {
        let locks = Arc::new(KeyLocks::default());
        let mut g = locks.lock("a").await;
        assert!(g.is_none() && !has_waiters(&g));
        let l2 = locks.clone();
        let waiting = tokio::spawn(async move {
            let mut w = l2.lock("a").await.take()?;
            w.ticket().await.map(|t| t.revision)
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(has_waiters(&g));
        *g = Some(LastWrite {
            ticket: TicketSlot::Known(Some(store::Ticket {
                revision: 7,
                epoch: 0,
            })),
            chain: None,
            object: Arc::new(Value::Null),
            managed_fields: None,
            managed: None,
            durable: None,
        });
        drop(g);
        assert_eq!(waiting.await.unwrap(), Some(7));
        // Nobody held the key since: the entry and its object are gone.
        assert!(locks.lock("a").await.is_none());
    }

    fn last(tag: &str) -> LastWrite {
        LastWrite {
            ticket: TicketSlot::Known(None),
            chain: None,
            object: Arc::new(Value::String(tag.into())),
            managed_fields: None,
            managed: None,
            durable: None,
        }
    }

    #[test]
    fn kept_writes_are_bounded_and_the_oldest_go_first() {
        let locks = KeyLocks::default();
        for i in 0..KEPT_OBJECTS + 10 {
            locks.keep(&format!("k{i}"), last(&format!("w{i}")), 10);
        }
        assert_eq!(locks.kept_count(), (KEPT_OBJECTS, KEPT_OBJECTS * 10));
        assert!(locks.take_kept("k0").is_none(), "the oldest went first");
        let k10 = locks.take_kept("k10").expect("a newer one stays");
        assert_eq!(*k10.object, Value::String("w10".into()));
        assert!(locks.take_kept("k10").is_none(), "taken once");
        // A key kept again replaces its older write and counts once.
        locks.keep("k11", last("again"), 20);
        assert_eq!(locks.kept_count(), (KEPT_OBJECTS - 1, KEPT_OBJECTS * 10));
        assert_eq!(
            *locks.take_kept("k11").unwrap().object,
            Value::String("again".into())
        );
        // The byte bound: big objects push out old ones, and one too big to
        // keep is not kept (nor is the key's older write).
        let locks = KeyLocks::default();
        locks.keep("a", last("a"), KEPT_BYTES / 4);
        locks.keep("b", last("b"), KEPT_BYTES / 4);
        locks.keep("c", last("c"), KEPT_BYTES / 4);
        locks.keep("d", last("d"), KEPT_BYTES / 4);
        locks.keep("e", last("e"), KEPT_BYTES / 4);
        assert_eq!(locks.kept_count(), (4, KEPT_BYTES));
        assert!(locks.take_kept("a").is_none());
        locks.keep("b", last("huge"), KEPT_BYTES / 4 + 1);
        assert!(locks.take_kept("b").is_none());
        assert_eq!(locks.kept_count(), (3, 3 * (KEPT_BYTES / 4)));
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
