//! The single writer thread: group commit, compaction in small steps, and the
//! hand-off of committed changes to the index and to watchers.
//!
//! Every write goes through here. Requests that queue up while a commit is
//! being synced are taken together into the next transaction, so concurrent
//! writers share one fsync. A request is answered only after its transaction is
//! durable and the index shows it.
//!
//! What the syncs cost (late 2026, `wharf bench patch --in-process`, 32
//! clients on one Deployment, alternated runs): the same build with every
//! fsync made a no-op (`eatmydata`, so not durable) gave 2,880-4,150
//! patches/s and a p99 of 12.5-18.6 ms against 2,330-3,090/s and 22.5-28.4
//! ms (7 pairs), a write's turn of its key 294-339 µs against 373-437 µs,
//! and 14-22 % less CPU for the process, most of it on the API server's
//! workers rather than on this thread: the disk's work slows the request
//! path's CPUs.
//! Tried without gain: `fdatasync` instead of `fsync` (SQLite built with
//! `HAVE_FDATASYNC`), holding a transaction open 2 or 3 ms instead of 1,
//! and an auto-checkpoint of 4,000 or 10,000 pages instead of 1,000. The
//! auto-checkpoint syncs the database file on this thread (one run under
//! strace, 2 × 4,000 patches: 14 such syncs of 5 ms median and 12 ms at
//! most, during which no write commits), besides its ~1,600 WAL syncs
//! (0.85 ms median).
//! Where the p99 comes from (the same bench, every write's turn taken,
//! handed over, applied and durable, and every transaction's BEGIN and
//! COMMIT, timed in a temporary build): each write slower than its phase's
//! p99 overlapped one of the transactions whose COMMIT took over 5 ms
//! (5-28 ms; 13-20 of ~1,200 a phase in most runs, up to 73 in a slower
//! hour; the median COMMIT is 0.6-0.7 ms).
//! A median write waits 7 ms for its turn, holds it 0.34 ms, then waits 1
//! ms to be applied and 1.8 ms to be durable; the slowest 1 % wait 6-13
//! ms to be applied and 7-9 ms to be durable. About 15 of those COMMITs a
//! phase are the auto-checkpoint copying and syncing ~1,000 frames (a
//! commit of ~7 writes puts ~13 frames in the WAL: 5 table leaf pages, the
//! rest page 1, the pointer map, interior and index pages and `meta`), but
//! not all: with no checkpoint at all during a run (auto-checkpoint off,
//! the checkpointer thread idle), 20-59 COMMITs a phase still took over 5
//! ms and the median COMMIT was longer (1.3-1.9 ms against 0.9-1.4, 3
//! alternated pairs), because the WAL then grows and a growing file's
//! syncs are slower. On this disk a file that grows also makes another
//! file's sync wait (a 100 KB sync: p90 0.6 ms alone, 4.5 ms while another
//! thread appends 3 MB and syncs, 1.4-2.9 ms while it overwrites 3 MB).
//! Tried without gain (alternated in-process runs): the checkpointer every
//! 5 or 10 ms instead of 100 (fewer long COMMITs in some phases, longer
//! median COMMITs and fewer patches/s), 4 KiB pages, no auto-vacuum (no
//! pointer-map frame), and both.
//! What the disk costs as a whole: the same bench with its data directory
//! on tmpfs (`--work-dir /dev/shm`, syncs that return at once), 3 pairs
//! alternated with the disk: SMP 2,895-3,647 patches/s and p99 15.9-18.5
//! ms against 2,423-2,692/s and 23.9-27.3 ms; SSA 2,824-3,791/s and
//! 16.5-19.3 ms against 2,411-2,574/s and 23.5-25.6 ms.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;

use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::oneshot;

use super::{codec, now_ms, Live, Shared};
use crate::{
    Error, Event, EventKind, KeyValue, Precondition, Result, Ticket, WriteOp, WriteOutcome,
};

/// Most requests folded into one transaction.
const MAX_BATCH: usize = 1024;
/// How long a transaction with a followed write waits for the next write,
/// and how long it may stay open in all (see [`apply_batch`]). A chained
/// writer needs a few hundred microseconds to compute its write; the
/// sync it saves costs about as much, and every write of the transaction
/// waits for it. Open longer, it makes every write of it wait longer:
/// with 32 clients patching one Deployment (`wharf bench patch
/// --in-process`, late 2026), 1 ms in all gave 3,005-3,151 patches/s
/// against 2,521-2,565 with 6 ms (over HTTPS, 2,087-2,413 against
/// 1,888-1,975), at the same p99.
const HOLD_STEP: std::time::Duration = std::time::Duration::from_micros(1000);
const HOLD_MAX: std::time::Duration = std::time::Duration::from_millis(1);
/// Each compaction step is its own short transaction run between write batches,
/// so a step's length bounds a writer's extra wait. The number of revisions a
/// step scans adapts to keep it near this long.
const COMPACT_STEP_TARGET: std::time::Duration = std::time::Duration::from_millis(2);
const COMPACT_STEP_MIN: i64 = 64;
const COMPACT_STEP_MAX: i64 = 8192;
/// Free pages handed back to the file system per vacuum step.
const VACUUM_STEP_PAGES: i64 = 256;

pub(super) enum Msg {
    Write(Req),
    Compact {
        revision: i64,
        reply: oneshot::Sender<Result<()>>,
    },
}

/// One write request.
pub(super) struct Req {
    pub cond: Precondition,
    pub op: WriteOp,
    pub reply: Reply,
    /// For a pipelined write: told the ticket (or `None`) after the batch's
    /// statements ran, before the COMMIT that makes it durable.
    pub applied: Option<oneshot::Sender<Option<Ticket>>>,
    /// Another write of the key is queued behind this one and will chain on
    /// its ticket: worth holding the transaction open for.
    pub followed: bool,
    /// The id a followed write can be named by ([`Precondition::After`]).
    pub id: Option<u64>,
    /// A put's value as `codec::pack` made it, by the writing task.
    pub packed: Option<Vec<u8>>,
}

/// Tickets of followed writes not yet chained on, at most this many: a
/// successor that never came leaves one behind, and the oldest go first (a
/// successor that comes that late fails its precondition and reads again).
const NAMED_MAX: usize = 1024;

/// What makes a ticket hold: the count of failed transactions, and the
/// tickets of followed writes by id, for the write that chains on one.
/// Also the values last written, which the next write of a key replaces.
#[derive(Default)]
struct Lineage {
    epoch: u64,
    named: HashMap<u64, Ticket>,
    order: VecDeque<u64>,
    recent: Recent,
}

/// Values this thread wrote last, by key, so that a write of a busy key does
/// not read back and unpack the value it replaces (for its `prev`). An entry
/// is used only if its revision is the key's current one.
#[derive(Default)]
struct Recent(HashMap<Vec<u8>, KeyValue>);

/// Keys kept in [`Recent`]; when it is full it starts over, and the busy keys
/// come back with their next write.
const RECENT_KEYS: usize = 128;
/// Larger values are not kept: the map holds at most 4 MiB of its own.
const RECENT_VALUE_MAX: usize = 32 * 1024;

impl Recent {
    fn get(&self, key: &[u8], live: &Live) -> Option<KeyValue> {
        self.0
            .get(key)
            .filter(|kv| kv.mod_revision == live.mod_rev)
            .cloned()
    }

    /// The key was deleted.
    fn forget(&mut self, key: &[u8]) {
        self.0.remove(key);
    }

    fn put(&mut self, kv: &KeyValue) {
        if kv.value.len() > RECENT_VALUE_MAX {
            self.0.remove(&kv.key);
            return;
        }
        if self.0.len() >= RECENT_KEYS && !self.0.contains_key(&kv.key) {
            self.0.clear();
        }
        self.0.insert(kv.key.clone(), kv.clone());
    }
}

impl Lineage {
    fn name(&mut self, id: u64, ticket: Ticket) {
        self.named.insert(id, ticket);
        self.order.push_back(id);
        while self.order.len() > NAMED_MAX {
            if let Some(old) = self.order.pop_front() {
                self.named.remove(&old);
            }
        }
    }

    /// The ticket of write `id`, once: a write is chained on at most once.
    fn take(&mut self, id: u64) -> Option<Ticket> {
        self.named.remove(&id)
    }
}

/// A batch of committed changes as watchers receive it.
pub(super) struct Batch {
    pub events: Vec<Event>,
    pub last_rev: i64,
}

struct Compaction {
    next_lo: i64,
    target: i64,
    /// Revisions the next step scans.
    step: i64,
}

/// Background work done in small steps between write batches.
enum Chore {
    Compact(Compaction),
    /// Steps left; bounded, because concurrent writes keep freeing pages.
    Vacuum(i64),
}

pub(super) fn run(conn: Connection, shared: Arc<Shared>, rx: Receiver<Msg>) {
    let mut chore: Option<Chore> = None;
    // Messages to handle before waiting for more: those received in a
    // batch, and those a held transaction left for the next one.
    let mut pending: Vec<Msg> = Vec::with_capacity(MAX_BATCH);
    // Failed transactions so far (a ticket from before a failure is void),
    // and the tickets that later writes may name.
    let mut lineage = Lineage::default();
    loop {
        if pending.is_empty() {
            let first = if chore.is_some() {
                match rx.try_recv() {
                    Ok(m) => Some(m),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(m) => Some(m),
                    Err(_) => break,
                }
            };
            pending.extend(first);
        }
        if !pending.is_empty() {
            while pending.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(m) => pending.push(m),
                    Err(_) => break,
                }
            }
            let msgs: Vec<Msg> = std::mem::take(&mut pending);
            let mut writes = Vec::with_capacity(msgs.len());
            for m in msgs {
                match m {
                    Msg::Write(req) => writes.push(req),
                    Msg::Compact { revision, reply } => {
                        // Writes queued before the compaction request go
                        // first, in a transaction that takes no later ones.
                        let ws = std::mem::take(&mut writes);
                        commit_batch(&conn, &shared, ws, &mut lineage, None);
                        let r = start_compaction(&conn, &shared, revision);
                        if r.is_ok() {
                            // Rows kept by an earlier compaction may be superseded
                            // now, so every pass starts from the oldest row.
                            let oldest: i64 = conn
                                .query_row("SELECT coalesce(min(rev), 1) - 1 FROM kv", [], |r| {
                                    r.get(0)
                                })
                                .unwrap_or(0);
                            chore = Some(Chore::Compact(Compaction {
                                next_lo: oldest,
                                target: revision,
                                step: 256,
                            }));
                        }
                        let _ = reply.send(r);
                    }
                }
            }
            commit_batch(
                &conn,
                &shared,
                writes,
                &mut lineage,
                Some((&rx, &mut pending)),
            );
        }
        let step_started = std::time::Instant::now();
        let had_chore = chore.is_some();
        chore = match chore.take() {
            Some(Chore::Compact(mut c)) => match compact_step(&conn, &mut c) {
                Ok(true) => {
                    match conn.query_row("PRAGMA freelist_count", [], |r| r.get::<_, i64>(0)) {
                        Ok(free) if free > 0 => Some(Chore::Vacuum(free / VACUUM_STEP_PAGES + 1)),
                        _ => None,
                    }
                }
                Ok(false) => Some(Chore::Compact(c)),
                Err(e) => {
                    tracing::error!(error = %e, "compaction step failed; the next compaction retries");
                    None
                }
            },
            Some(Chore::Vacuum(left)) => match vacuum_step(&conn) {
                Ok(true) => None,
                Ok(false) if left > 1 => Some(Chore::Vacuum(left - 1)),
                Ok(false) => None,
                Err(e) => {
                    tracing::warn!(error = %e, "vacuum step failed");
                    None
                }
            },
            None => None,
        };
        if had_chore {
            tracing::debug!(
                took_us = step_started.elapsed().as_micros() as u64,
                "maintenance step"
            );
        }
    }
    // Nothing else writes now: fold the WAL into the database and truncate it,
    // so a stopped store is one compact file.
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "final checkpoint failed");
    }
    tracing::debug!("store writer stopped");
}

fn fetch_kv(conn: &Connection, key: &[u8], live: &Live) -> Result<KeyValue> {
    let value: Option<Bytes> = conn
        .prepare_cached("SELECT value, codec FROM kv WHERE rev = ?1")?
        .query_row(params![live.mod_rev], |r| codec::value(r, 0))
        .optional()?
        .flatten();
    let value = value
        .ok_or_else(|| Error::Closed(format!("index names missing revision {}", live.mod_rev)))?;
    Ok(KeyValue {
        key: key.to_vec(),
        value,
        create_revision: live.create_rev,
        mod_revision: live.mod_rev,
        version: live.version,
    })
}

type Reply = oneshot::Sender<Result<WriteOutcome>>;

/// Where a transaction may wait for more writes: the queue, and the
/// messages it takes from it but leaves for later.
type Hold<'a> = Option<(&'a Receiver<Msg>, &'a mut Vec<Msg>)>;

fn commit_batch(
    conn: &Connection,
    shared: &Shared,
    mut writes: Vec<Req>,
    lineage: &mut Lineage,
    hold: Hold<'_>,
) {
    if writes.is_empty() {
        return;
    }
    let base_rev = shared.state.read().expect("state lock").rev;
    match apply_batch(conn, shared, base_rev, &mut writes, lineage, hold) {
        Ok(txn) => {
            {
                let mut st = shared.state.write().expect("state lock");
                for (key, live) in txn.overlay {
                    if let Some(old) = st.index.get(&key) {
                        if let Some(at) = old.expires_ms {
                            st.expiries.remove(&(at, key.clone()));
                        }
                    }
                    match live {
                        Some(l) => {
                            if let Some(at) = l.expires_ms {
                                st.expiries.insert((at, key.clone()));
                            }
                            st.index.insert(key, l);
                        }
                        None => {
                            st.index.remove(&key);
                        }
                    }
                }
                st.rev = txn.rev;
            }
            if !txn.events.is_empty() {
                // No receivers is fine: nobody is watching.
                let _ = shared.events.send(Arc::new(Batch {
                    events: txn.events,
                    last_rev: txn.rev,
                }));
            }
            for (req, outcome) in writes.into_iter().zip(txn.outcomes) {
                let _ = req.reply.send(Ok(outcome));
            }
        }
        Err(e) => {
            // Tickets of this batch may have gone out: void them, since the
            // revisions they name will be given to other writes.
            lineage.epoch += 1;
            lineage.recent = Recent::default();
            tracing::error!(error = %e, requests = writes.len(), "store transaction failed");
            let msg = e.to_string();
            for req in writes {
                let _ = req
                    .reply
                    .send(Err(Error::Closed(format!("write failed: {msg}"))));
            }
        }
    }
}

/// What the writes of an open transaction did so far.
struct Txn {
    /// One per write, in order.
    outcomes: Vec<WriteOutcome>,
    /// The keys written, as the index will show them after the commit.
    overlay: HashMap<Vec<u8>, Option<Live>>,
    events: Vec<Event>,
    /// The last revision given out.
    rev: i64,
}

/// Run `writes` in one transaction, and commit it. With a `hold`, while a
/// write of the transaction is followed (its writer has a successor that
/// chains on its ticket), the transaction stays open for a little while
/// and takes the writes that arrive, so that a chain of writes to one key
/// shares a sync instead of waiting for one per write.
fn apply_batch(
    conn: &Connection,
    shared: &Shared,
    base_rev: i64,
    writes: &mut Vec<Req>,
    lineage: &mut Lineage,
    hold: Hold<'_>,
) -> Result<Txn> {
    // BEGIN and COMMIT as cached statements: one transaction per batch, so
    // parsing them each time is a measurable part of a small batch.
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let opened = std::time::Instant::now();
    let mut txn = Txn {
        outcomes: Vec::with_capacity(writes.len()),
        overlay: HashMap::new(),
        events: Vec::new(),
        rev: base_rev,
    };
    let result = (|| {
        apply_round(conn, shared, &mut txn, writes, 0, lineage)?;
        if let Some((rx, deferred)) = hold {
            let mut from = 0;
            while writes.len() < MAX_BATCH && followed(&writes[from..], &txn.outcomes[from..]) {
                let Some(left) = HOLD_MAX.checked_sub(opened.elapsed()) else {
                    break;
                };
                match rx.recv_timeout(left.min(HOLD_STEP)) {
                    Ok(Msg::Write(req)) => {
                        from = writes.len();
                        writes.push(req);
                        while writes.len() < MAX_BATCH {
                            match rx.try_recv() {
                                Ok(Msg::Write(req)) => writes.push(req),
                                // Later messages wait behind this one.
                                Ok(m) => {
                                    deferred.push(m);
                                    break;
                                }
                                Err(_) => break,
                            }
                        }
                        apply_round(conn, shared, &mut txn, writes, from, lineage)?;
                    }
                    Ok(m) => {
                        deferred.push(m);
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
        if txn.rev != base_rev {
            conn.prepare_cached("UPDATE meta SET value = ?1 WHERE name = 'rev'")?
                .execute(params![txn.rev])?;
        }
        conn.prepare_cached("COMMIT")?.execute([])?;
        Ok(())
    })();
    match result {
        Ok(()) => Ok(txn),
        Err(e) => {
            // A failed statement or COMMIT leaves the transaction open.
            if !conn.is_autocommit() {
                if let Err(r) = conn.execute_batch("ROLLBACK") {
                    tracing::error!(error = %r, "rollback failed");
                }
            }
            Err(e)
        }
    }
}

/// Whether a successor chains on one of these applied writes.
fn followed(writes: &[Req], outcomes: &[WriteOutcome]) -> bool {
    writes
        .iter()
        .zip(outcomes)
        .any(|(w, o)| w.followed && matches!(o, WriteOutcome::Committed { .. }))
}

/// The statements of `writes[from..]` inside the open transaction; then
/// their tickets go out, so pipelined writers may compute their next write
/// while this one is being synced.
fn apply_round(
    tx: &Connection,
    shared: &Shared,
    txn: &mut Txn,
    writes: &mut [Req],
    from: usize,
    lineage: &mut Lineage,
) -> Result<()> {
    apply_writes(tx, shared, txn, &writes[from..], lineage)?;
    for (req, outcome) in writes[from..].iter_mut().zip(&txn.outcomes[from..]) {
        if let Some(tx) = req.applied.take() {
            let ticket = match outcome {
                WriteOutcome::Committed { revision, .. } => Some(Ticket {
                    revision: *revision,
                    epoch: lineage.epoch,
                }),
                WriteOutcome::Failed { .. } => None,
            };
            let _ = tx.send(ticket);
        }
    }
    Ok(())
}

/// The statements of some writes, inside the open transaction.
fn apply_writes(
    tx: &Connection,
    shared: &Shared,
    txn: &mut Txn,
    writes: &[Req],
    lineage: &mut Lineage,
) -> Result<()> {
    let Txn {
        outcomes,
        overlay,
        events,
        rev,
    } = txn;
    let now = now_ms();
    {
        let st = shared.state.read().expect("state lock");
        let mut insert = tx.prepare_cached(
            "INSERT INTO kv (rev, key, create_rev, version, value, expires_ms, codec) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for Req {
            cond,
            op,
            id,
            packed,
            ..
        } in writes
        {
            let key = op.key();
            let current: Option<Live> = match overlay.get(key) {
                Some(v) => *v,
                None => st.index.get(key).copied(),
            };
            let ok = match (cond, op) {
                (_, WriteOp::Delete { .. }) if current.is_none() => false,
                (Precondition::None, _) => true,
                (Precondition::Absent, _) => current.is_none(),
                (Precondition::ModRevision(r), _) => current.is_some_and(|l| l.mod_rev == *r),
                (Precondition::Ticket(t), _) => {
                    t.epoch == lineage.epoch && current.is_some_and(|l| l.mod_rev == t.revision)
                }
                (Precondition::After(after), _) => lineage.take(after.0).is_some_and(|t| {
                    t.epoch == lineage.epoch && current.is_some_and(|l| l.mod_rev == t.revision)
                }),
            };
            let prev = match &current {
                Some(l) => match lineage.recent.get(key, l) {
                    Some(kv) => Some(kv),
                    None => Some(fetch_kv(tx, key, l)?),
                },
                None => None,
            };
            if !ok {
                outcomes.push(WriteOutcome::Failed { current: prev });
                continue;
            }
            *rev += 1;
            let rev = *rev;
            let (kind, kv, live) = match op {
                WriteOp::Put { value, ttl, .. } => {
                    let live = Live {
                        mod_rev: rev,
                        create_rev: current.map_or(rev, |l| l.create_rev),
                        version: current.map_or(1, |l| l.version + 1),
                        expires_ms: ttl.map(|d| now + d.as_millis() as i64),
                    };
                    let (form, stored) = codec::stored(value, packed.as_deref());
                    insert.execute(params![
                        rev,
                        key,
                        live.create_rev,
                        live.version,
                        stored,
                        live.expires_ms,
                        form
                    ])?;
                    let kv = KeyValue {
                        key: key.to_vec(),
                        value: value.clone(),
                        create_revision: live.create_rev,
                        mod_revision: rev,
                        version: live.version,
                    };
                    (EventKind::Put, kv, Some(live))
                }
                WriteOp::Delete { .. } => {
                    insert.execute(params![
                        rev,
                        key,
                        0,
                        0,
                        Option::<&[u8]>::None,
                        Option::<i64>::None,
                        codec::RAW
                    ])?;
                    let kv = KeyValue {
                        key: key.to_vec(),
                        value: Bytes::new(),
                        create_revision: 0,
                        mod_revision: rev,
                        version: 0,
                    };
                    (EventKind::Delete, kv, None)
                }
            };
            match live {
                Some(_) => lineage.recent.put(&kv),
                None => lineage.recent.forget(key),
            }
            overlay.insert(key.to_vec(), live);
            events.push(Event {
                kind,
                kv: kv.clone(),
                prev_kv: prev.clone(),
            });
            if let Some(id) = id {
                lineage.name(
                    *id,
                    Ticket {
                        revision: rev,
                        epoch: lineage.epoch,
                    },
                );
            }
            outcomes.push(WriteOutcome::Committed {
                revision: rev,
                kv,
                prev,
            });
        }
    }
    Ok(())
}

/// Record the new compaction revision durably and in memory. From here on reads
/// below it fail, so the physical deletes that follow can never be observed.
fn start_compaction(conn: &Connection, shared: &Shared, revision: i64) -> Result<()> {
    {
        let st = shared.state.read().expect("state lock");
        if revision > st.rev {
            return Err(Error::FutureRevision {
                requested: revision,
                current: st.rev,
            });
        }
        if revision <= st.compact_rev {
            return Err(Error::Compacted {
                requested: revision,
                compacted: st.compact_rev,
            });
        }
    }
    conn.execute(
        "UPDATE meta SET value = ?1 WHERE name = 'compact_rev'",
        params![revision],
    )?;
    shared.state.write().expect("state lock").compact_rev = revision;
    tracing::debug!(revision, "compaction started");
    Ok(())
}

/// Delete, in one short transaction, the rows in the next slice of revisions
/// that are superseded at or below the target (and tombstones at or below it).
/// Returns true when the whole range is done.
fn compact_step(conn: &Connection, c: &mut Compaction) -> Result<bool> {
    let started = std::time::Instant::now();
    let hi = (c.next_lo + c.step).min(c.target);
    conn.prepare_cached(
        "DELETE FROM kv WHERE rev > ?1 AND rev <= ?2 AND (value IS NULL OR EXISTS
           (SELECT 1 FROM kv AS b WHERE b.key = kv.key AND b.rev > kv.rev AND b.rev <= ?3))",
    )?
    .execute(params![c.next_lo, hi, c.target])?;
    c.next_lo = hi;
    let took = started.elapsed();
    if took < COMPACT_STEP_TARGET / 2 {
        c.step = (c.step * 2).min(COMPACT_STEP_MAX);
    } else if took > COMPACT_STEP_TARGET * 2 {
        c.step = (c.step / 2).max(COMPACT_STEP_MIN);
    }
    Ok(hi >= c.target)
}

/// Give some freed pages back to the file system. Returns true when none are left.
fn vacuum_step(conn: &Connection) -> Result<bool> {
    conn.execute_batch(&format!("PRAGMA incremental_vacuum({VACUUM_STEP_PAGES});"))?;
    let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    Ok(free == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, rev: i64, len: usize) -> KeyValue {
        KeyValue {
            key: key.as_bytes().to_vec(),
            value: Bytes::from(vec![b'v'; len]),
            create_revision: 1,
            mod_revision: rev,
            version: rev,
        }
    }

    fn live(rev: i64) -> Live {
        Live {
            mod_rev: rev,
            create_rev: 1,
            version: rev,
            expires_ms: None,
        }
    }

    #[test]
    fn recent_values_answer_only_for_the_current_revision() {
        let mut r = Recent::default();
        r.put(&kv("/a", 5, 10));
        assert_eq!(r.get(b"/a", &live(5)), Some(kv("/a", 5, 10)));
        // The key moved on without this map knowing (never with one writer,
        // but a mismatch must read the file, not answer wrongly).
        assert_eq!(r.get(b"/a", &live(6)), None);
        assert_eq!(r.get(b"/b", &live(5)), None);
        r.put(&kv("/a", 7, 10));
        assert_eq!(r.get(b"/a", &live(5)), None);
        assert!(r.get(b"/a", &live(7)).is_some());
    }

    #[test]
    fn recent_values_stay_bounded() {
        let mut r = Recent::default();
        r.put(&kv("/big", 1, 10));
        r.put(&kv("/big", 2, RECENT_VALUE_MAX + 1));
        assert_eq!(r.get(b"/big", &live(1)), None, "the replaced value is gone");
        assert_eq!(r.get(b"/big", &live(2)), None, "too large to keep");
        for i in 0..RECENT_KEYS * 3 {
            r.put(&kv(&format!("/k/{i}"), i as i64 + 1, 10));
            assert!(r.0.len() <= RECENT_KEYS);
        }
        let last = RECENT_KEYS * 3 - 1;
        assert!(r
            .get(format!("/k/{last}").as_bytes(), &live(last as i64 + 1))
            .is_some());
    }
}
