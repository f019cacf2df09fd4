//! The cluster state store.
//!
//! Every API object lives here, under a key such as `/registry/pods/default/web-0`.
//! The interface has etcd v3 semantics because the API server is written against
//! them: one cluster-wide revision that rises by exactly one per committed write,
//! per-key `create_revision`/`mod_revision`/`version`, compare-and-swap writes that
//! report the current value when they fail, ranges at a past revision, and ordered,
//! resumable watches that fail with [`Error::Compacted`] once history is gone.
//!
//! Two backends implement [`Store`]:
//! - [`SqliteStore`], the default: an embedded SQLite file in WAL mode with group
//!   commit and watch events pushed from the commit path;
//! - [`EtcdStore`], for HA, over a real etcd cluster.
//!
//! Both pass the same suite in [`conformance`].

mod error;
pub mod etcd;
pub mod sqlite;
mod watch;

pub mod conformance;

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

pub use error::{Error, Result};
pub use etcd::EtcdStore;
pub use sqlite::SqliteStore;
pub use watch::WatchStream;

/// The largest value a key may hold: 1.5 MiB, etcd's default `--max-request-bytes`.
pub const MAX_VALUE_BYTES: usize = 1536 * 1024;

/// One key at one revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: Vec<u8>,
    /// The value; empty for the `kv` of a delete event.
    pub value: Bytes,
    /// The revision at which the key was last created.
    pub create_revision: i64,
    /// The revision of the last change to the key.
    pub mod_revision: i64,
    /// Number of writes since the key was created (1 after create); 0 once deleted.
    pub version: i64,
}

impl KeyValue {
    /// The key as UTF-8, lossily; for messages.
    pub fn key_str(&self) -> String {
        String::from_utf8_lossy(&self.key).into_owned()
    }
}

/// A key range `[key, range_end)`, or the single `key` when `range_end` is `None`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRange {
    /// First key, inclusive.
    pub key: Vec<u8>,
    /// End, exclusive; `None` means just `key`.
    pub range_end: Option<Vec<u8>>,
}

impl KeyRange {
    /// Exactly one key.
    pub fn single(key: impl Into<Vec<u8>>) -> Self {
        KeyRange {
            key: key.into(),
            range_end: None,
        }
    }

    /// Every key starting with `prefix`.
    pub fn prefix(prefix: impl Into<Vec<u8>>) -> Self {
        let key = prefix.into();
        let range_end = prefix_end(&key);
        KeyRange {
            key,
            range_end: Some(range_end),
        }
    }

    /// Whether `k` falls in the range.
    pub fn contains(&self, k: &[u8]) -> bool {
        match &self.range_end {
            None => k == self.key.as_slice(),
            Some(end) => k >= self.key.as_slice() && (end.is_empty() || k < end.as_slice()),
        }
    }
}

/// The smallest key greater than every key with this prefix (etcd's `GetPrefix`
/// end). An empty result means "no upper bound".
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    Vec::new()
}

/// A range read.
#[derive(Clone, Debug)]
pub struct RangeRequest {
    /// The keys to read.
    pub range: KeyRange,
    /// Revision to read at; 0 reads the latest.
    pub revision: i64,
    /// Most keys to return; 0 means no limit.
    pub limit: i64,
}

impl RangeRequest {
    /// Read every key under `prefix` at the latest revision.
    pub fn prefix(prefix: impl Into<Vec<u8>>) -> Self {
        RangeRequest {
            range: KeyRange::prefix(prefix),
            revision: 0,
            limit: 0,
        }
    }

    /// Limit the page size.
    pub fn limit(mut self, limit: i64) -> Self {
        self.limit = limit;
        self
    }

    /// Read at a fixed revision.
    pub fn at_revision(mut self, revision: i64) -> Self {
        self.revision = revision;
        self
    }

    /// Continue after `last_key`, the final key of the previous page. Pair it with
    /// [`RangeRequest::at_revision`] and the previous page's revision for a
    /// consistent listing.
    pub fn after(mut self, last_key: &[u8]) -> Self {
        let mut k = last_key.to_vec();
        k.push(0);
        self.range.key = k;
        self
    }
}

/// The result of a range read.
#[derive(Clone, Debug)]
pub struct RangeResponse {
    /// Matching keys in key order, at most `limit` of them.
    pub kvs: Vec<KeyValue>,
    /// Whether keys beyond the limit exist.
    pub more: bool,
    /// Total number of keys in the range at `revision`.
    pub count: i64,
    /// The revision the read was served at.
    pub revision: i64,
}

/// The condition a write is guarded by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// Unconditional.
    None,
    /// The key must not exist (create).
    Absent,
    /// The key must exist with this `mod_revision` (update, delete).
    ModRevision(i64),
    /// The key must exist at the revision of a write this caller chained on
    /// (see [`Store::write_pipelined`]), and that write must have committed.
    Ticket(Ticket),
    /// Like [`Precondition::Ticket`], but naming the write by its
    /// [`PipelinedWrite::id`] instead of its revision, so the caller need not
    /// wait for the ticket: the key must be as that write left it (the write
    /// was applied, nothing wrote the key since, and its transaction has not
    /// failed). Only a write submitted with `followed` can be named; a
    /// backend that gives no ids refuses this precondition.
    After(WriteId),
}

/// A pipelined write as its store knows it, for [`Precondition::After`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WriteId(pub u64);

/// What a pipelined write is known by once its precondition held, before it
/// is durable: the revision it commits at, if its transaction commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket {
    /// The revision the write was given.
    pub revision: i64,
    /// The backend's count of failed transactions when the write was given
    /// its revision. A later failure may have taken the write away and let
    /// another write reuse the revision, so a [`Precondition::Ticket`] holds
    /// only while the count is unchanged (conservative: a failure elsewhere
    /// also voids it, and the caller simply reads again).
    pub epoch: u64,
}

/// The backend's ends of a [`PipelinedWrite`]: the ticket, then the outcome.
pub type PipelinedSenders = (
    tokio::sync::oneshot::Sender<Option<Ticket>>,
    tokio::sync::oneshot::Sender<Result<WriteOutcome>>,
);

/// A write handed to [`Store::write_pipelined`]: first whether it was
/// applied (and at which revision), then, later, its durable outcome.
pub struct PipelinedWrite {
    applied: tokio::sync::oneshot::Receiver<Option<Ticket>>,
    outcome: tokio::sync::oneshot::Receiver<Result<WriteOutcome>>,
    id: Option<WriteId>,
}

impl PipelinedWrite {
    /// A pair of channels: the backend sends the ticket (or `None`) on the
    /// first and the outcome on the second.
    pub fn channel() -> (PipelinedSenders, Self) {
        let (ta, applied) = tokio::sync::oneshot::channel();
        let (to, outcome) = tokio::sync::oneshot::channel();
        (
            (ta, to),
            PipelinedWrite {
                applied,
                outcome,
                id: None,
            },
        )
    }

    /// The same write, known to its store by `id`.
    pub fn with_id(mut self, id: WriteId) -> Self {
        self.id = Some(id);
        self
    }

    /// What the next write of the key can name in [`Precondition::After`]
    /// to chain on this one at once; `None` where the backend gives no ids.
    pub fn id(&self) -> Option<WriteId> {
        self.id
    }

    /// The write's ticket once its precondition held and it was given a
    /// revision; `None` if the precondition failed or the transaction
    /// failed before that. The write is not durable yet.
    pub async fn applied(&mut self) -> Option<Ticket> {
        (&mut self.applied).await.ok().flatten()
    }

    /// The durable outcome, as [`Store::write`] returns it.
    pub async fn outcome(self) -> Result<WriteOutcome> {
        self.outcome
            .await
            .map_err(|_| Error::Closed("store writer stopped".into()))?
    }
}

/// A single-key write.
#[derive(Clone, Debug)]
pub enum WriteOp {
    /// Set the key. With a TTL the key is deleted once it expires, which
    /// produces an ordinary delete event.
    Put {
        /// The key.
        key: Vec<u8>,
        /// The new value, at most [`MAX_VALUE_BYTES`].
        value: Bytes,
        /// Time to live.
        ttl: Option<Duration>,
    },
    /// Remove the key.
    Delete {
        /// The key.
        key: Vec<u8>,
    },
}

impl WriteOp {
    /// The key the operation touches.
    pub fn key(&self) -> &[u8] {
        match self {
            WriteOp::Put { key, .. } | WriteOp::Delete { key } => key,
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.key().is_empty() {
            return Err(Error::InvalidRequest("key must not be empty".into()));
        }
        if let WriteOp::Put { key, value, ttl } = self {
            if value.len() > MAX_VALUE_BYTES {
                return Err(Error::ValueTooLarge {
                    key: String::from_utf8_lossy(key).into_owned(),
                    size: value.len(),
                    limit: MAX_VALUE_BYTES,
                });
            }
            if let Some(ttl) = ttl {
                if ttl.is_zero() {
                    return Err(Error::InvalidRequest("ttl must be positive".into()));
                }
            }
        }
        Ok(())
    }
}

/// What a write did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The write committed at `revision`.
    Committed {
        /// The new revision.
        revision: i64,
        /// The key's new state; for a delete, the key with `mod_revision = revision`
        /// and `version = 0`.
        kv: KeyValue,
        /// The key's state before the write, if it existed.
        prev: Option<KeyValue>,
    },
    /// The precondition did not hold (or a delete found no key). Nothing was written.
    Failed {
        /// The key's current state, so the caller can report a conflict.
        current: Option<KeyValue>,
    },
}

impl WriteOutcome {
    /// The committed revision, if the write happened.
    pub fn revision(&self) -> Option<i64> {
        match self {
            WriteOutcome::Committed { revision, .. } => Some(*revision),
            WriteOutcome::Failed { .. } => None,
        }
    }
}

/// The kind of a watch event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A create or an update.
    Put,
    /// A delete, including TTL expiry.
    Delete,
}

/// One change seen by a watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Put or delete.
    pub kind: EventKind,
    /// The key after the change (for a delete: the key, the delete revision, no value).
    pub kv: KeyValue,
    /// The key before the change, unless history for it was compacted.
    pub prev_kv: Option<KeyValue>,
}

/// A watch request.
#[derive(Clone, Debug)]
pub struct WatchRequest {
    /// The keys to watch.
    pub range: KeyRange,
    /// First revision to deliver; 0 means changes after the current revision.
    pub start_revision: i64,
    /// Send [`WatchResponse::Progress`] while no events match, so the consumer
    /// can advance its resume point (Kubernetes bookmarks).
    pub progress_notify: bool,
}

impl WatchRequest {
    /// Watch every key under `prefix` from `start_revision` (0: from now).
    pub fn prefix(prefix: impl Into<Vec<u8>>, start_revision: i64) -> Self {
        WatchRequest {
            range: KeyRange::prefix(prefix),
            start_revision,
            progress_notify: false,
        }
    }
}

/// What a watch stream yields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchResponse {
    /// Changes, in revision order, each exactly once.
    Events(Vec<Event>),
    /// Every change up to `revision` has been delivered.
    Progress {
        /// The revision the watch has caught up to.
        revision: i64,
    },
}

/// Settings shared by both backends.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// History older than this is compacted (kube-apiserver's default is 5 minutes).
    /// `None` disables periodic compaction.
    pub compaction_interval: Option<Duration>,
    /// How often an idle watch with `progress_notify` reports progress.
    pub progress_interval: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            compaction_interval: Some(Duration::from_secs(300)),
            progress_interval: Duration::from_secs(5),
        }
    }
}

/// The storage interface the API server is written against.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Read a range of keys.
    async fn range(&self, req: RangeRequest) -> Result<RangeResponse>;

    /// Apply one guarded single-key write as one transaction.
    async fn write(&self, cond: Precondition, op: WriteOp) -> Result<WriteOutcome>;

    /// Like [`Store::write`], but the caller learns the write's revision as
    /// soon as its precondition held, before it is durable, so it can chain
    /// the next write of the key on it ([`Precondition::Ticket`]) while this
    /// one is being synced. The outcome still comes only once it is durable.
    /// By default the ticket comes with the outcome (no pipelining).
    ///
    /// `followed` says that another write of the key waits to chain on this
    /// one; a backend may then keep its transaction open a little longer
    /// for that write, so that the two share one sync.
    async fn write_pipelined(
        &self,
        cond: Precondition,
        op: WriteOp,
        followed: bool,
    ) -> Result<PipelinedWrite> {
        let _ = followed;
        let r = self.write(cond, op).await;
        let ((applied, outcome), w) = PipelinedWrite::channel();
        let ticket = match &r {
            Ok(WriteOutcome::Committed { revision, .. }) => Some(Ticket {
                revision: *revision,
                epoch: 0,
            }),
            _ => None,
        };
        let _ = applied.send(ticket);
        let _ = outcome.send(r);
        Ok(w)
    }

    /// Watch a key or range. A start revision at or below the compaction point
    /// yields [`Error::Compacted`] as the stream's first item.
    async fn watch(&self, req: WatchRequest) -> Result<WatchStream>;

    /// Drop history older than `revision`: ranges below it and watches starting at
    /// or below it fail with [`Error::Compacted`] afterwards.
    async fn compact(&self, revision: i64) -> Result<()>;

    /// The latest committed revision.
    async fn current_revision(&self) -> Result<i64>;

    /// The revision history was last compacted at (0 if never).
    async fn compacted_revision(&self) -> Result<i64>;

    /// Read one key at the latest revision; returns it and the store revision.
    async fn get(&self, key: &[u8]) -> Result<(Option<KeyValue>, i64)> {
        let resp = self
            .range(RangeRequest {
                range: KeyRange::single(key),
                revision: 0,
                limit: 1,
            })
            .await?;
        Ok((resp.kvs.into_iter().next(), resp.revision))
    }

    /// The `mod_revision` of one key at the latest revision (`None` if it
    /// does not exist): for a caller that holds a version's value already.
    /// A backend with an index of live keys answers without reading values.
    async fn mod_revision(&self, key: &[u8]) -> Result<Option<i64>> {
        Ok(self.get(key).await?.0.map(|kv| kv.mod_revision))
    }

    /// Number of keys in a range at the latest revision.
    async fn count(&self, range: KeyRange) -> Result<i64> {
        Ok(self
            .range(RangeRequest {
                range,
                revision: 0,
                limit: 1,
            })
            .await?
            .count)
    }

    /// Create `key` only if it does not exist.
    async fn create(
        &self,
        key: &[u8],
        value: Bytes,
        ttl: Option<Duration>,
    ) -> Result<WriteOutcome> {
        self.write(
            Precondition::Absent,
            WriteOp::Put {
                key: key.to_vec(),
                value,
                ttl,
            },
        )
        .await
    }

    /// Replace `key` only if its `mod_revision` is still `expected`.
    async fn update(
        &self,
        key: &[u8],
        expected: i64,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> Result<WriteOutcome> {
        self.write(
            Precondition::ModRevision(expected),
            WriteOp::Put {
                key: key.to_vec(),
                value,
                ttl,
            },
        )
        .await
    }

    /// Delete `key` only if its `mod_revision` is still `expected`.
    async fn delete(&self, key: &[u8], expected: i64) -> Result<WriteOutcome> {
        self.write(
            Precondition::ModRevision(expected),
            WriteOp::Delete { key: key.to_vec() },
        )
        .await
    }
}
