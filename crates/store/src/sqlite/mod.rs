//! The embedded backend: one SQLite file in WAL mode.
//!
//! Layout: a single `kv` table is the log of every write, one row per revision,
//! with deletes as tombstones. An in-memory index holds the newest state of each
//! live key, so preconditions are checked without touching disk and reads at the
//! latest revision fetch values by revision (the table's primary key). Reads at
//! past revisions and watch catch-up read the log directly.
//!
//! Invariants:
//! - only the writer thread (`writer.rs`) writes to the file or changes the index;
//! - the index is updated after the commit is durable and before the caller is
//!   answered, so an acknowledged write is visible to every later read;
//! - watchers get committed batches pushed through a broadcast channel; one that
//!   falls behind catches up from the log, so a slow watcher never blocks a writer.

mod codec;
mod schema;
mod watcher;
mod writer;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, RwLock, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::{broadcast, oneshot};

use crate::{
    Error, KeyRange, KeyValue, PipelinedWrite, Precondition, RangeRequest, RangeResponse, Result,
    Store, StoreOptions, WatchRequest, WatchStream, WriteId, WriteOp, WriteOutcome,
};

/// Committed batches kept for watchers that are momentarily behind.
const BROADCAST_BATCHES: usize = 4096;
/// How often the WAL is folded back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// How often expired TTL keys are looked for.
const TTL_SWEEP: Duration = Duration::from_millis(200);

/// The newest state of one live key.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Live {
    mod_rev: i64,
    create_rev: i64,
    version: i64,
    expires_ms: Option<i64>,
}

/// What the writer publishes and readers consult.
pub(crate) struct State {
    index: BTreeMap<Vec<u8>, Live>,
    expiries: BTreeSet<(i64, Vec<u8>)>,
    rev: i64,
    compact_rev: i64,
}

/// Shared between the writer thread and the store handles.
pub(crate) struct Shared {
    state: RwLock<State>,
    events: broadcast::Sender<Arc<writer::Batch>>,
}

struct Inner {
    path: PathBuf,
    opts: StoreOptions,
    shared: Arc<Shared>,
    writer: Mutex<Option<mpsc::Sender<writer::Msg>>>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    /// Dropping the sender stops the checkpointer thread.
    checkpointer: Mutex<Option<(mpsc::Sender<()>, JoinHandle<()>)>>,
    readers: Mutex<Vec<Connection>>,
    /// The id of the next followed pipelined write.
    next_write_id: AtomicU64,
}

/// The embedded store. Cheap to clone; all clones share one writer.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl SqliteStore {
    /// Open (or create) the store in the file `path`. Must be called inside a
    /// tokio runtime: TTL expiry and periodic compaction run as tasks.
    ///
    /// A file that is not an intact store fails with [`Error::Corrupt`] naming it;
    /// it is never reset.
    pub async fn open(path: impl AsRef<Path>, opts: StoreOptions) -> Result<SqliteStore> {
        let path = path.as_ref().to_path_buf();
        let p = path.clone();
        let (conn, state) = tokio::task::spawn_blocking(move || -> Result<_> {
            let conn = schema::open_writer(&p)?;
            let state = schema::load_state(&conn, &p)?;
            Ok((conn, state))
        })
        .await
        .map_err(|e| Error::Closed(e.to_string()))??;
        tracing::info!(path = %path.display(), revision = state.rev, keys = state.index.len(), "store opened");
        let (events, _) = broadcast::channel(BROADCAST_BATCHES);
        let shared = Arc::new(Shared {
            state: RwLock::new(state),
            events,
        });
        let (tx, rx) = mpsc::channel();
        let s2 = shared.clone();
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer::run(conn, s2, rx))?;
        let ckpt_conn = schema::open_checkpointer(&path)?;
        let (stop_tx, stop_rx) = mpsc::channel();
        let ckpt = std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || checkpointer(ckpt_conn, stop_rx))?;
        let inner = Arc::new(Inner {
            path,
            opts,
            shared,
            writer: Mutex::new(Some(tx)),
            writer_thread: Mutex::new(Some(thread)),
            checkpointer: Mutex::new(Some((stop_tx, ckpt))),
            readers: Mutex::new(Vec::new()),
            next_write_id: AtomicU64::new(1),
        });
        tokio::spawn(ttl_sweeper(Arc::downgrade(&inner)));
        if let Some(every) = inner.opts.compaction_interval {
            tokio::spawn(periodic_compaction(Arc::downgrade(&inner), every));
        }
        Ok(SqliteStore { inner })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Stop the writer after the writes already queued, and wait for it to close
    /// the file. Later writes through any clone fail with [`Error::Closed`].
    pub async fn close(&self) {
        self.inner.writer.lock().expect("writer lock").take();
        let ckpt = self
            .inner
            .checkpointer
            .lock()
            .expect("checkpointer lock")
            .take();
        if let Some((stop, h)) = ckpt {
            drop(stop);
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
        let handle = self.inner.writer_thread.lock().expect("thread lock").take();
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
        self.inner.readers.lock().expect("readers lock").clear();
    }

    fn send(&self, msg: writer::Msg) -> Result<()> {
        let guard = self.inner.writer.lock().expect("writer lock");
        let tx = guard
            .as_ref()
            .ok_or_else(|| Error::Closed("store closed".into()))?;
        tx.send(msg)
            .map_err(|_| Error::Closed("store writer stopped".into()))
    }

    fn with_reader<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.inner.with_reader(f)
    }

    fn range_blocking(&self, req: &RangeRequest) -> Result<RangeResponse> {
        let (cur, compacted) = {
            let st = self.inner.shared.state.read().expect("state lock");
            (st.rev, st.compact_rev)
        };
        if req.revision > cur {
            return Err(Error::FutureRevision {
                requested: req.revision,
                current: cur,
            });
        }
        if req.revision > 0 && req.revision < compacted {
            return Err(Error::Compacted {
                requested: req.revision,
                compacted,
            });
        }
        if req.revision <= 0 || req.revision == cur {
            loop {
                if let Some(r) = self.range_latest(req)? {
                    return Ok(r);
                }
            }
        }
        self.range_past(req)
    }

    /// Keys come from the index; values by revision. Returns `None` if a row
    /// vanished under a concurrent compaction, in which case the caller retries.
    fn range_latest(&self, req: &RangeRequest) -> Result<Option<RangeResponse>> {
        let (start, end) = bounds(&req.range);
        let (page, count, rev) = {
            let st = self.inner.shared.state.read().expect("state lock");
            let mut count = 0i64;
            let mut page = Vec::new();
            for (k, l) in st
                .index
                .range::<[u8], _>((Bound::Included(start.as_slice()), end_bound(&end)))
            {
                if req.limit <= 0 || (page.len() as i64) < req.limit {
                    page.push((k.clone(), *l));
                }
                count += 1;
            }
            (page, count, st.rev)
        };
        let more = (page.len() as i64) < count;
        let kvs = self.with_reader(|conn| {
            let tx = conn.unchecked_transaction()?;
            let mut stmt = tx.prepare_cached("SELECT value, codec FROM kv WHERE rev = ?1")?;
            let mut kvs = Vec::with_capacity(page.len());
            for (key, l) in page {
                let v: Option<Option<Bytes>> = stmt
                    .query_row(params![l.mod_rev], |r| codec::value(r, 0))
                    .optional()?;
                let Some(Some(value)) = v else {
                    return Ok(None);
                };
                kvs.push(KeyValue {
                    key,
                    value,
                    create_revision: l.create_rev,
                    mod_revision: l.mod_rev,
                    version: l.version,
                });
            }
            Ok(Some(kvs))
        })?;
        Ok(kvs.map(|kvs| RangeResponse {
            kvs,
            more,
            count,
            revision: rev,
        }))
    }

    fn range_past(&self, req: &RangeRequest) -> Result<RangeResponse> {
        let (start, end) = bounds(&req.range);
        let end = if end.is_empty() { None } else { Some(end) };
        let at = req.revision;
        let resp = self.with_reader(|conn| {
            let tx = conn.unchecked_transaction()?;
            const VISIBLE: &str = "FROM kv AS a WHERE key >= ?1 AND (?2 IS NULL OR key < ?2) AND rev <= ?3
                AND NOT EXISTS (SELECT 1 FROM kv AS b WHERE b.key = a.key AND b.rev > a.rev AND b.rev <= ?3)
                AND value IS NOT NULL";
            let count: i64 = tx
                .prepare_cached(&format!("SELECT count(*) {VISIBLE}"))?
                .query_row(params![start, end, at], |r| r.get(0))?;
            let limit = if req.limit > 0 { req.limit } else { -1 };
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT key, rev, create_rev, version, value, codec {VISIBLE} ORDER BY key LIMIT ?4"
            ))?;
            let kvs = stmt
                .query_map(params![start, end, at, limit], |r| {
                    Ok(KeyValue {
                        key: r.get(0)?,
                        mod_revision: r.get(1)?,
                        create_revision: r.get(2)?,
                        version: r.get(3)?,
                        // The query takes no tombstones.
                        value: codec::value(r, 4)?.unwrap_or_default(),
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(RangeResponse { more: (kvs.len() as i64) < count, kvs, count, revision: at })
        })?;
        // Compaction publishes its revision before deleting anything, so if the
        // read raced a compaction past `at` this check sees it.
        let compacted = self
            .inner
            .shared
            .state
            .read()
            .expect("state lock")
            .compact_rev;
        if at < compacted {
            return Err(Error::Compacted {
                requested: at,
                compacted,
            });
        }
        Ok(resp)
    }
}

impl Inner {
    fn with_reader<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.readers.lock().expect("readers lock").pop();
        let conn = match conn {
            Some(c) => c,
            None => schema::open_reader(&self.path)?,
        };
        let r = f(&conn);
        let mut pool = self.readers.lock().expect("readers lock");
        if pool.len() < 16 {
            pool.push(conn);
        }
        r
    }
}

/// The range as `[start, end)`; an empty `end` means unbounded.
fn bounds(r: &KeyRange) -> (Vec<u8>, Vec<u8>) {
    match &r.range_end {
        None => {
            let mut end = r.key.clone();
            end.push(0);
            (r.key.clone(), end)
        }
        Some(end) => (r.key.clone(), end.clone()),
    }
}

/// A put's value packed for storage, here in the writing task rather than on
/// the writer thread.
fn pack(op: &WriteOp) -> Option<Vec<u8>> {
    match op {
        WriteOp::Put { value, .. } => codec::pack(value),
        WriteOp::Delete { .. } => None,
    }
}

fn end_bound(end: &[u8]) -> Bound<&[u8]> {
    if end.is_empty() {
        Bound::Unbounded
    } else {
        Bound::Excluded(end)
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn range(&self, req: RangeRequest) -> Result<RangeResponse> {
        if req.range.key.is_empty() && req.range.range_end.is_none() {
            return Err(Error::InvalidRequest("key must not be empty".into()));
        }
        // A single key is a quick index lookup; larger reads go off the runtime.
        if req.range.range_end.is_none() && req.revision <= 0 {
            return self.range_blocking(&req);
        }
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.range_blocking(&req))
            .await
            .map_err(|e| Error::Closed(e.to_string()))?
    }

    async fn write(&self, cond: Precondition, op: WriteOp) -> Result<WriteOutcome> {
        op.validate()?;
        let (reply, rx) = oneshot::channel();
        self.send(writer::Msg::Write(writer::Req {
            cond,
            packed: pack(&op),
            op,
            reply,
            applied: None,
            followed: false,
            id: None,
        }))?;
        rx.await
            .map_err(|_| Error::Closed("store writer stopped".into()))?
    }

    async fn write_pipelined(
        &self,
        cond: Precondition,
        op: WriteOp,
        followed: bool,
    ) -> Result<PipelinedWrite> {
        op.validate()?;
        let ((applied, reply), w) = PipelinedWrite::channel();
        // Only a followed write can be named by the write after it.
        let id = followed.then(|| self.inner.next_write_id.fetch_add(1, Ordering::Relaxed));
        self.send(writer::Msg::Write(writer::Req {
            cond,
            packed: pack(&op),
            op,
            reply,
            applied: Some(applied),
            followed,
            id,
        }))?;
        Ok(match id {
            Some(id) => w.with_id(WriteId(id)),
            None => w,
        })
    }

    async fn watch(&self, req: WatchRequest) -> Result<WatchStream> {
        Ok(watcher::start(
            &self.inner.shared,
            self.inner.clone_reader_source(),
            req,
            self.inner.opts.progress_interval,
        ))
    }

    async fn compact(&self, revision: i64) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.send(writer::Msg::Compact { revision, reply })?;
        rx.await
            .map_err(|_| Error::Closed("store writer stopped".into()))?
    }

    async fn current_revision(&self) -> Result<i64> {
        Ok(self.inner.shared.state.read().expect("state lock").rev)
    }

    async fn mod_revision(&self, key: &[u8]) -> Result<Option<i64>> {
        let st = self.inner.shared.state.read().expect("state lock");
        Ok(st.index.get(key).map(|l| l.mod_rev))
    }

    async fn compacted_revision(&self) -> Result<i64> {
        Ok(self
            .inner
            .shared
            .state
            .read()
            .expect("state lock")
            .compact_rev)
    }
}

/// What a watcher needs to read the log: a weak handle, so an open watch does
/// not keep a dropped store alive.
#[derive(Clone)]
pub(crate) struct ReaderSource(Weak<Inner>);

impl ReaderSource {
    pub(crate) fn with_reader<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let inner = self
            .0
            .upgrade()
            .ok_or_else(|| Error::Closed("store dropped".into()))?;
        inner.with_reader(f)
    }
}

impl Inner {
    fn clone_reader_source(self: &Arc<Self>) -> ReaderSource {
        ReaderSource(Arc::downgrade(self))
    }
}

/// Copies committed WAL frames into the database file off the commit path. A
/// PASSIVE checkpoint never waits for the writer; it leaves the writer's own
/// auto-checkpoint (which also lets the WAL restart) little to copy.
fn checkpointer(conn: Connection, stop: mpsc::Receiver<()>) {
    loop {
        match stop.recv_timeout(CHECKPOINT_EVERY) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "checkpoint failed");
        }
    }
}

/// Deletes keys whose TTL has passed, each guarded by the revision it expired
/// at, so a key rewritten meanwhile survives.
async fn ttl_sweeper(inner: Weak<Inner>) {
    let mut tick = tokio::time::interval(TTL_SWEEP);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let now = now_ms();
        let expired: Vec<(Vec<u8>, i64)> = {
            let st = inner.shared.state.read().expect("state lock");
            st.expiries
                .iter()
                .take_while(|(at, _)| *at <= now)
                .filter_map(|(_, k)| st.index.get(k).map(|l| (k.clone(), l.mod_rev)))
                .collect()
        };
        if expired.is_empty() {
            continue;
        }
        let store = SqliteStore { inner };
        for (key, rev) in expired {
            match store
                .write(
                    Precondition::ModRevision(rev),
                    WriteOp::Delete { key: key.clone() },
                )
                .await
            {
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, key = %String::from_utf8_lossy(&key), "ttl delete failed")
                }
            }
        }
    }
}

/// Every interval, compact to the revision that was current one interval ago, as
/// kube-apiserver does: history stays for at least one full interval.
async fn periodic_compaction(inner: Weak<Inner>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    let mut last_seen: Option<i64> = None;
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let store = SqliteStore { inner };
        let cur = store.current_revision().await.unwrap_or(0);
        if let Some(target) = last_seen {
            let compacted = store.compacted_revision().await.unwrap_or(0);
            if target > compacted {
                match store.compact(target).await {
                    Ok(()) => tracing::info!(revision = target, "compacted"),
                    Err(e) => {
                        tracing::warn!(error = %e, revision = target, "periodic compaction failed")
                    }
                }
            }
        }
        last_seen = Some(cur);
    }
}
